import Foundation
import PitchClassifier
import PitchTokenizer
import Testing

@testable import PitchStore

/// Many pipe-filter processes read while `pitchfilter train` writes: each thread here has its own connection,
/// exactly as separate processes would.
@Suite struct ConcurrencyTests {
    let directory: TemporaryDirectory

    init() throws {
        directory = try TemporaryDirectory()
    }

    static let common: UInt64 = 1_000_000
    static func group(_ index: Int) -> UInt64 { 2_000_000 + UInt64(index % 10) }
    static func unique(_ index: Int) -> UInt64 { 3_000_000 + UInt64(index) }

    /// Item `index` is pitch when even, ham when odd; every item has the common token, its group's token (so a
    /// group is all one class) and a token of its own.
    static func item(_ index: Int) -> TrainingItem {
        TrainingItem(digest: digest(index), tokens: [token(common), token(group(index)), token(unique(index))],
                     target: index.isMultiple(of: 2) ? .pitch : .ham)
    }

    @Test func readersSeeConsistentSnapshotsWhileOneWriterTrains() throws {
        let path = directory.path("tokens.sqlite")
        let writer = try SQLiteTokenStore(path: path, tokenizerIdentity: testTokenizer, access: .readWrite)
        let finished = Box(false)
        let problems = Box<[String]>([])
        let lookups = Box(0)
        let ready = Box(0)
        let seen = Box<Set<Int>>([])
        let group = DispatchGroup()
        for _ in 0..<4 {
            spawn(group) {
                do {
                    let reader = try SQLiteTokenStore(path: path, tokenizerIdentity: testTokenizer,
                                                      access: .readOnly)
                    var previous = -1
                    var done = false
                    while !done {
                        done = finished.get()  // one more round after the writer finished
                        let tokens = [token(Self.common)] + (0..<10).map { token(Self.group($0)) }
                        let (counts, totals) = try reader.lookup(tokens)
                        let common = counts[token(Self.common)] ?? .zero
                        // One snapshot: the token in every message counts exactly the messages trained so far.
                        if Int(common.pitch) != totals.pitch || Int(common.ham) != totals.ham {
                            problems.update { $0.append("torn snapshot: \(common) vs \(totals)") }
                        }
                        let sum = totals.pitch + totals.ham
                        if sum < previous { problems.update { $0.append("went back from \(previous) to \(sum)") } }
                        if previous == -1 { ready.update { $0 += 1 } }
                        previous = sum
                        seen.update { _ = $0.insert(sum) }
                        lookups.update { $0 += 1 }
                    }
                } catch {
                    problems.update { $0.append("reader: \(error)") }
                }
            }
        }
        defer {
            finished.set(true)  // readers stop even when training throws
            group.wait()
        }
        // Start writing only once every reader is reading, so reads and writes really overlap.
        while ready.get() < 4, problems.get().isEmpty { usleep(1_000) }
        for start in stride(from: 0, to: 2_000, by: 100) {
            let outcomes = try writer.train((start..<start + 100).map(Self.item))
            #expect(outcomes == Array(repeating: .learned, count: 100))
        }
        finished.set(true)
        group.wait()
        #expect(problems.get() == [])
        #expect(lookups.get() >= 8)
        #expect(seen.get().contains(0) && seen.get().contains(2_000))
        let final = try SQLiteTokenStore(path: path, tokenizerIdentity: testTokenizer, access: .readOnly)
        try expectExactCounts(final, items: 2_000)
    }

    @Test func concurrentWritersWaitForEachOtherAndLoseNothing() throws {
        let path = directory.path("tokens.sqlite")
        _ = try SQLiteTokenStore(path: path, tokenizerIdentity: testTokenizer, access: .readWrite)
        let problems = Box<[String]>([])
        let group = DispatchGroup()
        for writerIndex in 0..<2 {
            spawn(group) {
                do {
                    let store = try SQLiteTokenStore(path: path, tokenizerIdentity: testTokenizer,
                                                     access: .readWrite)
                    // Interleaved batches of 50: writer 0 takes items 0..<50, 100..<150, …; writer 1 the others.
                    for start in stride(from: writerIndex * 50, to: 2_000, by: 100) {
                        let outcomes = try store.train((start..<start + 50).map(Self.item))
                        if outcomes != Array(repeating: .learned, count: 50) {
                            problems.update { $0.append("writer \(writerIndex): \(outcomes)") }
                        }
                    }
                } catch {
                    problems.update { $0.append("writer \(writerIndex): \(error)") }
                }
            }
        }
        group.wait()
        #expect(problems.get() == [])
        let final = try SQLiteTokenStore(path: path, tokenizerIdentity: testTokenizer, access: .readOnly)
        try expectExactCounts(final, items: 2_000)
    }

    /// A thread of its own, as a process would have: GCD's global queue runs only as many blocks at once as there
    /// are cores, and readers that wait for the writer would starve the others.
    private func spawn(_ group: DispatchGroup, _ body: @escaping @Sendable () -> Void) {
        group.enter()
        Thread {
            body()
            group.leave()
        }.start()
    }

    private func expectExactCounts(_ store: SQLiteTokenStore, items: Int) throws {
        let half = UInt32(items / 2)
        let statistics = try store.statistics()
        #expect(statistics.totals == ClassTotals(pitch: items / 2, ham: items / 2))
        #expect(statistics.ledgerEntries == items)
        #expect(statistics.tokens == 1 + 10 + items)
        let found = try counts(store, [Self.common] + (0..<10).map(Self.group) + [Self.unique(0), Self.unique(1)])
        #expect(found[Self.common] == TokenCounts(pitch: half, ham: half))
        for index in 0..<10 {
            let expected = UInt32(items / 10)
            #expect(found[Self.group(index)] == (index.isMultiple(of: 2)
                ? TokenCounts(pitch: expected) : TokenCounts(ham: expected)))
        }
        #expect(found[Self.unique(0)] == TokenCounts(pitch: 1))
        #expect(found[Self.unique(1)] == TokenCounts(ham: 1))
    }
}
