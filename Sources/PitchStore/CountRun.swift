import PitchClassifier
import PitchTokenizer

/// Additions to token counts as one sorted run: each id once, in the order of the tokens table's rowids (the id's
/// bit pattern as a signed integer), with what it adds to each class.
///
/// Bulk training sums millions of additions. Summing them into one hash table missed the cache on nearly every
/// addition once the table outgrew it (the SpamAssassin corpus has 566,000 distinct tokens): it was 6 % of a
/// training run. Sorting each batch's ids into a run and merging the runs reads and writes memory in order, and
/// leaves the sums in the order SQLite writes them fastest.
struct CountRun: Equatable {
    private(set) var ids: [Int64] = []
    private(set) var counts: [TokenCounts] = []

    var count: Int { ids.count }

    init() {}

    /// Each occurrence of an id in `pitch` adds one pitch, in `ham` one ham.
    init(pitch: [TokenID], ham: [TokenID]) {
        let pitch = IDSort.sorted(pitch.map { Int64(bitPattern: $0.rawValue) })
        let ham = IDSort.sorted(ham.map { Int64(bitPattern: $0.rawValue) })
        ids.reserveCapacity(max(pitch.count, ham.count))
        counts.reserveCapacity(max(pitch.count, ham.count))
        var p = 0
        var h = 0
        while p < pitch.count || h < ham.count {
            let id = h == ham.count || (p < pitch.count && pitch[p] < ham[h]) ? pitch[p] : ham[h]
            var sum = TokenCounts.zero
            while p < pitch.count, pitch[p] == id {
                sum.pitch = Training.saturating(sum.pitch, 1)
                p += 1
            }
            while h < ham.count, ham[h] == id {
                sum.ham = Training.saturating(sum.ham, 1)
                h += 1
            }
            ids.append(id)
            counts.append(sum)
        }
    }

    /// The sums of a table, sorted.
    init(_ table: CountTable) {
        let entries = table.entries.map { (id: Int64(bitPattern: $0.0.rawValue), counts: $0.1) }
            .sorted { $0.id < $1.id }
        ids = entries.map(\.id)
        counts = entries.map(\.counts)
    }

    /// One run holding the sums of all of `runs`, merged two at a time so each element is copied about log2(k)
    /// times.
    static func merging(_ runs: [CountRun]) -> CountRun {
        var level = runs
        while level.count > 1 {
            var next: [CountRun] = []
            next.reserveCapacity((level.count + 1) / 2)
            for index in stride(from: 0, to: level.count, by: 2) {
                next.append(index + 1 < level.count ? merged(level[index], level[index + 1]) : level[index])
            }
            level = next
        }
        return level.first ?? CountRun()
    }

    static func merged(_ a: CountRun, _ b: CountRun) -> CountRun {
        var result = CountRun()
        result.ids.reserveCapacity(a.count + b.count)
        result.counts.reserveCapacity(a.count + b.count)
        var i = 0
        var j = 0
        while i < a.count || j < b.count {
            if j == b.count || (i < a.count && a.ids[i] < b.ids[j]) {
                result.ids.append(a.ids[i])
                result.counts.append(a.counts[i])
                i += 1
            } else if i == a.count || b.ids[j] < a.ids[i] {
                result.ids.append(b.ids[j])
                result.counts.append(b.counts[j])
                j += 1
            } else {
                result.ids.append(a.ids[i])
                result.counts.append(TokenCounts(
                    pitch: Training.saturating(a.counts[i].pitch, Int(b.counts[j].pitch)),
                    ham: Training.saturating(a.counts[i].ham, Int(b.counts[j].ham))))
                i += 1
                j += 1
            }
        }
        return result
    }
}

/// Tells the first occurrence of each id within one item, for many items in a row, without a Set per item: each
/// slot is stamped with the number of the item that filled it, so starting the next item clears nothing.
struct ItemDeduplicator {
    private var keys: [UInt64] = Array(repeating: 0, count: 1_024)
    private var stamps: [UInt32] = Array(repeating: 0, count: 1_024)
    private var stamp: UInt32 = 0

    /// Starts the next item, of at most `count` ids.
    mutating func nextItem(count: Int) {
        if count * 2 > keys.count {
            var capacity = keys.count
            while count * 2 > capacity { capacity *= 2 }
            keys = Array(repeating: 0, count: capacity)
            stamps = Array(repeating: 0, count: capacity)
            stamp = 0
        }
        if stamp == .max {
            stamps = Array(repeating: 0, count: stamps.count)
            stamp = 0
        }
        stamp += 1
    }

    /// Whether `id` is new in the current item.
    mutating func isFirst(_ id: UInt64) -> Bool {
        let mask = keys.count - 1
        var index = CountTable.slot(of: id, mask: mask)
        while stamps[index] == stamp {
            if keys[index] == id { return false }
            index = (index + 1) & mask
        }
        keys[index] = id
        stamps[index] = stamp
        return true
    }
}
