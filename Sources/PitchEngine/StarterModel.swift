import PitchClassifier
import PitchMessage
import PitchTokenizer

/// Token counts trained from the project's own samples (samples/corpus) and compiled into the executable,
/// so the first `pitchfilter filter` works before the user has trained anything.
///
/// Kept as a sorted array searched by bisection rather than a dictionary: a pipe filter lives for one message,
/// and building a 40,000-entry dictionary would cost more than all its lookups.
public struct StarterModel: Sendable {
    public let tokenizerIdentity: String
    public let totals: ClassTotals
    private let ids: [UInt64]
    private let counts: [TokenCounts]

    public var tokenCount: Int { ids.count }

    public init(tokenizerIdentity: String, totals: ClassTotals, tokens: [(TokenID, TokenCounts)]) {
        let sorted = tokens.sorted { $0.0 < $1.0 }
        self.tokenizerIdentity = tokenizerIdentity
        self.totals = totals
        self.ids = sorted.map(\.0.rawValue)
        self.counts = sorted.map(\.1)
    }

    public func counts(for id: TokenID) -> TokenCounts? {
        var low = 0
        var high = ids.count
        while low < high {
            let middle = (low + high) / 2
            if ids[middle] < id.rawValue { low = middle + 1 } else { high = middle }
        }
        return low < ids.count && ids[low] == id.rawValue ? counts[low] : nil
    }

    /// Adds the model's counts for `ids` to `counts` (one per id, in the same order) and its totals to `totals`.
    public func add(to counts: inout [TokenCounts], totals: inout ClassTotals, for ids: [TokenID]) {
        totals = totals + self.totals
        for (index, id) in ids.enumerated() {
            if let extra = self.counts(for: id) { counts[index] = counts[index] + extra }
        }
    }

    public var allTokens: [(TokenID, TokenCounts)] {
        zip(ids, counts).map { (TokenID(rawValue: $0), $1) }
    }

    // MARK: - Serialised form

    /// "PFM1", identity (u16 length + UTF-8), pitch and ham totals (u32 each), token count (u32), then per token
    /// its id (u64) and pitch and ham counts (u32 each); all little-endian.
    public func encoded() -> [UInt8] {
        var out = Array("PFM1".utf8)
        let identity = Array(tokenizerIdentity.utf8)
        Self.append(UInt64(identity.count), bytes: 2, to: &out)
        out += identity
        Self.append(UInt64(totals.pitch), bytes: 4, to: &out)
        Self.append(UInt64(totals.ham), bytes: 4, to: &out)
        Self.append(UInt64(ids.count), bytes: 4, to: &out)
        for (id, count) in zip(ids, counts) {
            Self.append(id, bytes: 8, to: &out)
            Self.append(UInt64(count.pitch), bytes: 4, to: &out)
            Self.append(UInt64(count.ham), bytes: 4, to: &out)
        }
        return out
    }

    public init?(encoded bytes: [UInt8]) {
        var reader = Reader(bytes: bytes)
        guard reader.take(4)?.elementsEqual("PFM1".utf8) == true,
              let identityLength = reader.integer(2), let identity = reader.take(Int(identityLength)),
              let pitch = reader.integer(4), let ham = reader.integer(4), let count = reader.integer(4),
              bytes.count == reader.offset + Int(count) * 16
        else { return nil }
        var ids: [UInt64] = []
        var counts: [TokenCounts] = []
        ids.reserveCapacity(Int(count))
        counts.reserveCapacity(Int(count))
        for _ in 0..<count {
            guard let id = reader.integer(8), let tokenPitch = reader.integer(4), let tokenHam = reader.integer(4)
            else { return nil }
            ids.append(id)
            counts.append(TokenCounts(pitch: UInt32(tokenPitch), ham: UInt32(tokenHam)))
        }
        guard zip(ids, ids.dropFirst()).allSatisfy({ $0 < $1 }) else { return nil }
        self.tokenizerIdentity = String(decoding: identity, as: UTF8.self)
        self.totals = ClassTotals(pitch: Int(pitch), ham: Int(ham))
        self.ids = ids
        self.counts = counts
    }

    private static func append(_ value: UInt64, bytes: Int, to out: inout [UInt8]) {
        for i in 0..<bytes { out.append(UInt8(truncatingIfNeeded: value >> (8 * UInt64(i)))) }
    }

    /// Reads little-endian integers in place. The pipe filter decodes the whole model whenever a user's database is
    /// young, so the 48,000 tokens must cost no allocation each: an array per field took 15 ms of a 20 ms run.
    private struct Reader {
        let bytes: [UInt8]
        var offset = 0

        mutating func take(_ count: Int) -> ArraySlice<UInt8>? {
            guard count >= 0, count <= bytes.count - offset else { return nil }
            defer { offset += count }
            return bytes[offset..<(offset + count)]
        }

        mutating func integer(_ count: Int) -> UInt64? {
            guard count >= 0, count <= 8, count <= bytes.count - offset else { return nil }
            var value: UInt64 = 0
            for i in 0..<count { value |= UInt64(bytes[offset + i]) << (8 * UInt64(i)) }
            offset += count
            return value
        }
    }

    /// The model compiled into this executable, or nil when the embedded data does not match this tokenizer
    /// (a build made before `Scripts/build-starter-model.sh` was rerun).
    public static let embedded: StarterModel? = {
        var ignored: [Defect] = []
        let bytes = TransferDecoding.decodeBase64(Array(StarterModelData.base64.utf8)[...], defects: &ignored)
        guard let model = StarterModel(encoded: bytes), model.tokenizerIdentity == Tokenizer.identity else {
            return nil
        }
        return model
    }()
}
