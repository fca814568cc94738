import PitchClassifier
import PitchMessage
import PitchTokenizer

/// Token counts trained from the project's own samples (samples/corpus) and compiled into the executable,
/// so the first `pitchfilter filter` works before the user has trained anything.
///
/// Kept sorted by token id and searched by bisection rather than put in a dictionary: a pipe filter lives for one
/// message, and building a 100,000-entry dictionary would cost more than all its lookups. The embedded model is
/// not even decoded: it is searched where it lies in the executable (`PackedRecords`).
public struct StarterModel: Sendable {
    public let tokenizerIdentity: String
    public let totals: ClassTotals
    private let records: Records

    /// Decoded arrays for a model built in this process; the packed text for the one compiled in.
    private enum Records: Sendable {
        case arrays(ids: [UInt64], counts: [TokenCounts])
        case packed(PackedRecords)
    }

    public init(tokenizerIdentity: String, totals: ClassTotals, tokens: [(TokenID, TokenCounts)]) {
        let sorted = tokens.sorted { $0.0 < $1.0 }
        self.tokenizerIdentity = tokenizerIdentity
        self.totals = totals
        self.records = .arrays(ids: sorted.map(\.0.rawValue), counts: sorted.map(\.1))
    }

    /// A model whose records are `packed` (`packedText()` wrote them, sorted by id).
    public init(tokenizerIdentity: String, totals: ClassTotals, packed: PackedRecords) {
        self.tokenizerIdentity = tokenizerIdentity
        self.totals = totals
        self.records = .packed(packed)
    }

    public var tokenCount: Int {
        switch records {
        case .arrays(let ids, _): ids.count
        case .packed(let packed): packed.count
        }
    }

    public func counts(for id: TokenID) -> TokenCounts? {
        switch records {
        case .arrays(let ids, let counts):
            let index = Self.firstIndex(notBelow: id.rawValue, count: ids.count) { ids[$0] }
            return index < ids.count && ids[index] == id.rawValue ? counts[index] : nil
        case .packed(let packed):
            return packed.counts(for: id.rawValue)
        }
    }

    private static func firstIndex(notBelow target: UInt64, count: Int, id: (Int) -> UInt64) -> Int {
        var low = 0
        var high = count
        while low < high {
            let middle = (low + high) / 2
            if id(middle) < target { low = middle + 1 } else { high = middle }
        }
        return low
    }

    /// The user's counts for `ids` (`own`, one per id, in the same order; `ownTotals`) with the model's added, as
    /// the classifier weighs them: the user's ham at `ownHamWeight` each (`ModelSchedule.ownHamWeight`), the rest at
    /// one, in every token but those `isLocal` marks: the model carries none of those, and they are the user's
    /// alone, at one, scored against the user's own totals. `shown` has the plain sums, for explanations.
    public func combined(with own: [TokenCounts], ownTotals: ClassTotals, for ids: [TokenID], isLocal: [Bool] = [],
                         ownHamWeight: Double = 1) -> CombinedCounts {
        var shown = own
        var weighed = own.map(WeighedCounts.init)
        for (index, id) in ids.enumerated() where index >= isLocal.count || !isLocal[index] {
            weighed[index].ham *= ownHamWeight
            guard let extra = counts(for: id) else { continue }
            shown[index] = shown[index] + extra
            weighed[index].pitch += Double(extra.pitch)
            weighed[index].ham += Double(extra.ham)
        }
        let weighedTotals = WeighedCounts(pitch: Double(ownTotals.pitch + totals.pitch),
                                          ham: Double(ownTotals.ham) * ownHamWeight + Double(totals.ham))
        return CombinedCounts(shown: shown, weighed: weighed, weighedTotals: weighedTotals)
    }

    public var allTokens: [(TokenID, TokenCounts)] {
        switch records {
        case .arrays(let ids, let counts):
            zip(ids, counts).map { (TokenID(rawValue: $0), $1) }
        case .packed(let packed):
            (0..<packed.count).map { (TokenID(rawValue: packed.id(at: $0)), packed.counts(at: $0)) }
        }
    }

    /// The records as `PackedRecords` reads them, or nil if a count does not fit in its 16 bits.
    public func packedText() -> String? {
        PackedRecords.text(of: allTokens)
    }

    /// The model compiled into this executable, or nil when the embedded data does not match this tokenizer
    /// (a build made before `Scripts/build-starter-model.sh` was rerun).
    public static let embedded: StarterModel? = {
        guard StarterModelData.tokenizerIdentity == Tokenizer.identity,
              let packed = PackedRecords(text: StarterModelData.records, count: StarterModelData.tokenCount)
        else { return nil }
        return StarterModel(tokenizerIdentity: StarterModelData.tokenizerIdentity,
                            totals: ClassTotals(pitch: StarterModelData.pitchMessages,
                                                ham: StarterModelData.hamMessages),
                            packed: packed)
    }()
}

/// A starter model's records as base64 text, read in place: each record is 12 bytes (token id as u64, pitch and
/// ham counts as u16, little-endian), so exactly 16 characters, six to a line.
///
/// Compiled into the executable as a `StaticString`, the text sits in read-only memory and a lookup decodes only
/// the records its bisection touches, about 17 per token. Decoded whole first, as a base64 blob of 100,000
/// tokens, the model made a pipe run on a young database take 8.8 ms of CPU instead of 2.9, and 17 MB instead of 9.
public struct PackedRecords: @unchecked Sendable {
    // @unchecked: `start` points at bytes nobody writes to, either the executable's literal or `owner`'s copy.
    static let recordLength = 16
    static let recordsPerLine = 6
    static let lineLength = recordsPerLine * recordLength + 1

    public let count: Int
    private let start: UnsafePointer<UInt8>
    private let owner: Buffer?

    /// The text compiled in; nil if its length is not that of `count` records.
    public init?(text: StaticString, count: Int) {
        guard count >= 0, text.hasPointerRepresentation, text.utf8CodeUnitCount == Self.length(of: count) else {
            return nil
        }
        self.count = count
        self.start = text.utf8Start
        self.owner = nil
    }

    /// A copy of `text`; nil if its length is not that of `count` records.
    public init?(text: String, count: Int) {
        let bytes = Array(text.utf8)
        guard count >= 0, bytes.count == Self.length(of: count) else { return nil }
        let buffer = Buffer(bytes)
        self.count = count
        self.start = UnsafePointer(buffer.pointer)
        self.owner = buffer
    }

    static func length(of count: Int) -> Int {
        guard count > 0 else { return 0 }
        let lines = (count + recordsPerLine - 1) / recordsPerLine
        return count * recordLength + lines - 1
    }

    public func id(at index: Int) -> UInt64 {
        decode(index).id
    }

    /// The counts of the record for `id`. A lookup is on every token of every message classified against a
    /// young database, so it decodes only the ids of the records it passes, and it guesses where to look: ids
    /// are hashes, spread evenly, so interpolating between the bounds finds a record of 100,000 in two or three
    /// probes where bisection takes seventeen. After four guesses it bisects, whatever the ids look like.
    public func counts(for id: UInt64) -> TokenCounts? {
        guard count > 0 else { return nil }
        return TransferDecoding.base64Values.withUnsafeBufferPointer { values in
            func recordID(at index: Int) -> UInt64 { Self.id(at: characters(of: index), values) }
            // The record, if there is one, lies in low...high.
            var low = 0
            var high = count - 1
            var lowID = recordID(at: low)
            var highID = recordID(at: high)
            var guesses = 0
            while low < high, lowID < highID {
                guard lowID <= id, id <= highID else { return nil }
                var middle = (low + high) / 2
                if guesses < 4 {
                    guesses += 1
                    let fraction = Double(id - lowID) / Double(highID - lowID)
                    middle = low + min(high - low, Int(fraction * Double(high - low)))
                }
                let middleID = recordID(at: middle)
                if middleID == id { return counts(at: middle) }
                // lowID <= id <= highID keeps middle + 1 and middle - 1 inside the bounds.
                if middleID < id {
                    low = middle + 1
                    lowID = recordID(at: low)
                } else {
                    high = middle - 1
                    highID = recordID(at: high)
                }
            }
            return lowID == id ? counts(at: low) : nil
        }
    }

    private func characters(of index: Int) -> UnsafePointer<UInt8> {
        precondition(index >= 0 && index < count, "record index out of range")
        return start + index / Self.recordsPerLine * Self.lineLength + index % Self.recordsPerLine * Self.recordLength
    }

    /// The id's eight little-endian bytes are the first 64 bits of the record's base64: ten characters carry 60
    /// of them, the eleventh's upper four bits the rest.
    private static func id(at characters: UnsafePointer<UInt8>, _ values: UnsafeBufferPointer<UInt8>) -> UInt64 {
        var bits: UInt64 = 0
        var position = 0
        while position < 10 {
            bits = bits << 6 | UInt64(values[Int(characters[position])] & 0x3F)
            position += 1
        }
        bits = bits << 4 | UInt64((values[Int(characters[10])] & 0x3F) >> 2)
        return bits.byteSwapped
    }

    public func counts(at index: Int) -> TokenCounts {
        let record = decode(index)
        return TokenCounts(pitch: UInt32(record.pitch), ham: UInt32(record.ham))
    }

    /// Four characters make three bytes. A character outside the alphabet decodes as something, never out of
    /// bounds: the text is generated, and a test checks it decodes to what the samples give.
    private func decode(_ index: Int) -> (id: UInt64, pitch: UInt16, ham: UInt16) {
        let characters = characters(of: index)
        let values = TransferDecoding.base64Values
        var id: UInt64 = 0
        var tail: UInt32 = 0
        for group in 0..<4 {
            var bits: UInt32 = 0
            for k in 0..<4 { bits = bits << 6 | UInt32(values[Int(characters[group * 4 + k])] & 0x3F) }
            for k in 0..<3 {
                let byte = (bits >> (16 - 8 * UInt32(k))) & 0xFF
                let position = group * 3 + k
                if position < 8 {
                    id |= UInt64(byte) << (8 * UInt64(position))
                } else {
                    tail |= byte << (8 * UInt32(position - 8))
                }
            }
        }
        return (id, UInt16(tail & 0xFFFF), UInt16(tail >> 16))
    }

    /// The text for these records, sorted by id; nil if a count does not fit in 16 bits.
    static func text(of tokens: [(TokenID, TokenCounts)]) -> String? {
        var text: [UInt8] = []
        text.reserveCapacity(length(of: tokens.count))
        for (index, (id, counts)) in tokens.sorted(by: { $0.0 < $1.0 }).enumerated() {
            guard counts.pitch <= UInt16.max, counts.ham <= UInt16.max else { return nil }
            if index > 0, index % recordsPerLine == 0 { text.append(UInt8(ascii: "\n")) }
            var bytes: [UInt8] = (0..<8).map { UInt8(truncatingIfNeeded: id.rawValue >> (8 * UInt64($0))) }
            bytes += [UInt8(truncatingIfNeeded: counts.pitch), UInt8(truncatingIfNeeded: counts.pitch >> 8),
                      UInt8(truncatingIfNeeded: counts.ham), UInt8(truncatingIfNeeded: counts.ham >> 8)]
            for group in 0..<4 {
                let bits = UInt32(bytes[group * 3]) << 16 | UInt32(bytes[group * 3 + 1]) << 8 | UInt32(bytes[group * 3 + 2])
                for k in 0..<4 {
                    text.append(TransferDecoding.base64Alphabet[Int((bits >> (18 - 6 * UInt32(k))) & 0x3F)])
                }
            }
        }
        return String(decoding: text, as: UTF8.self)
    }

    /// Owns the copy a `String` was read into.
    private final class Buffer {
        let pointer: UnsafeMutablePointer<UInt8>

        init(_ bytes: [UInt8]) {
            pointer = UnsafeMutablePointer<UInt8>.allocate(capacity: max(bytes.count, 1))
            pointer.initialize(from: bytes, count: bytes.count)
        }

        deinit { pointer.deallocate() }
    }
}

/// A message's tokens counted in the user's training and the starter model's together (`StarterModel.combined`).
public struct CombinedCounts: Sendable {
    /// Each token's counts, plainly summed.
    public var shown: [TokenCounts]
    /// Each token's counts as the classifier weighs them.
    public var weighed: [WeighedCounts]
    /// The class totals the weighed counts are scored against (the local tokens': the user's own).
    public var weighedTotals: WeighedCounts
}
