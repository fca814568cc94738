import PitchClassifier
import PitchTokenizer

/// Where the engine reads counts from when it classifies: a store (one read transaction per message) or a snapshot
/// of one held in memory.
public protocol TokenCountSource: Sendable {
    /// The counts of each of `tokens`, in the same order (zero for a token never seen), and the class totals, from
    /// one consistent state.
    func counts(of tokens: [TokenID]) throws -> (counts: [TokenCounts], totals: ClassTotals)

    /// How far this training agrees with the starter model, as last measured after training (`StarterAgreement`
    /// in PitchEngine); nil if never measured, or not kept by this source.
    func starterAgreement() throws -> Double?
}

extension TokenCountSource {
    public func starterAgreement() throws -> Double? { nil }
}

extension TokenStore {
    public func counts(of tokens: [TokenID]) throws -> (counts: [TokenCounts], totals: ClassTotals) {
        let (found, totals) = try lookup(tokens)
        return (tokens.map { found[$0] ?? .zero }, totals)
    }
}

/// Token counts in memory, keyed by id.
///
/// Open addressing over two flat arrays rather than a `Dictionary`: a batch run looks up millions of ids, and the
/// ids are already well-mixed 64-bit hashes, so a multiply-shift slot and a linear probe beat hashing them again.
public struct CountTable: Sendable {
    /// 0 marks an empty slot; the id 0 itself is kept in `zeroID`.
    private var keys: [UInt64]
    private var values: [TokenCounts]
    private var zeroID: TokenCounts?
    private var used = 0

    public init(minimumCapacity: Int = 1_024) {
        var capacity = 1_024
        while capacity < minimumCapacity * 2 { capacity *= 2 }
        keys = Array(repeating: 0, count: capacity)
        values = Array(repeating: .zero, count: capacity)
    }

    /// Ids held (including any whose counts went back to zero).
    public var count: Int { used + (zeroID == nil ? 0 : 1) }

    public subscript(id: TokenID) -> TokenCounts {
        get {
            if id.rawValue == 0 { return zeroID ?? .zero }
            var slot = slot(of: id.rawValue)
            while true {
                let key = keys[slot]
                if key == id.rawValue { return values[slot] }
                if key == 0 { return .zero }
                slot = (slot + 1) & (keys.count - 1)
            }
        }
        set {
            if id.rawValue == 0 {
                zeroID = newValue
                return
            }
            var slot = slot(of: id.rawValue)
            while true {
                let key = keys[slot]
                if key == id.rawValue { break }
                if key == 0 {
                    keys[slot] = id.rawValue
                    used += 1
                    break
                }
                slot = (slot + 1) & (keys.count - 1)
            }
            values[slot] = newValue
            if used * 2 > keys.count { grow() }
        }
    }

    /// Every id held with its counts, in no particular order.
    public var entries: [(TokenID, TokenCounts)] {
        var result: [(TokenID, TokenCounts)] = []
        result.reserveCapacity(count)
        if let zeroID { result.append((TokenID(rawValue: 0), zeroID)) }
        for index in keys.indices where keys[index] != 0 {
            result.append((TokenID(rawValue: keys[index]), values[index]))
        }
        return result
    }

    @inline(__always)
    private func slot(of key: UInt64) -> Int {
        Self.slot(of: key, mask: keys.count - 1)
    }

    /// The first slot to probe for an id in a table of `mask + 1` slots. Ids are FNV-1a hashes, whose low bits are
    /// poorly mixed, so the slot comes from a multiplicative hash of the whole id.
    @inline(__always)
    static func slot(of key: UInt64, mask: Int) -> Int {
        Int(truncatingIfNeeded: ((key ^ (key >> 29)) &* 0x9E37_79B9_7F4A_7C15) >> 32) & mask
    }

    private mutating func grow() {
        let oldKeys = keys
        let oldValues = values
        keys = Array(repeating: 0, count: oldKeys.count * 2)
        values = Array(repeating: .zero, count: oldKeys.count * 2)
        for index in oldKeys.indices where oldKeys[index] != 0 {
            var slot = slot(of: oldKeys[index])
            while keys[slot] != 0 { slot = (slot + 1) & (keys.count - 1) }
            keys[slot] = oldKeys[index]
            values[slot] = oldValues[index]
        }
    }
}

/// A store's counts and totals as of one moment, held in memory: what a run over thousands of messages reads
/// instead of querying the database a few hundred times per message. Immutable, so any number of threads share it.
public struct TokenSnapshot: TokenCountSource {
    public let table: CountTable
    public let totals: ClassTotals
    /// The store's starter agreement as of the same moment.
    public let agreement: Double?

    public init(table: CountTable, totals: ClassTotals, agreement: Double? = nil) {
        self.table = table
        self.totals = totals
        self.agreement = agreement
    }

    public func counts(of tokens: [TokenID]) -> (counts: [TokenCounts], totals: ClassTotals) {
        (tokens.map { table[$0] }, totals)
    }

    public func starterAgreement() throws -> Double? { agreement }
}
