import PitchClassifier
import PitchTokenizer
import Synchronization

/// A token store that lives and dies with the process: for tests, for building the embedded starter model, and as
/// the reference every persistent backend is checked against.
public final class InMemoryTokenStore: TokenStore {
    public let tokenizerIdentity: String
    // One lock around all state makes every method one consistent snapshot or one atomic batch, as the protocol
    // requires; contention is irrelevant for the uses above.
    private let state = Mutex(State())

    public init(tokenizerIdentity: String) {
        self.tokenizerIdentity = tokenizerIdentity
    }

    public func lookup(_ tokens: [TokenID]) throws -> (counts: [TokenID: TokenCounts], totals: ClassTotals) {
        state.withLock { state in
            var counts: [TokenID: TokenCounts] = [:]
            for id in tokens {
                if let found = state.counts[id] { counts[id] = found }
            }
            return (counts, state.totals)
        }
    }

    public func train(_ items: [TrainingItem]) throws -> [TrainingOutcome] {
        // The in-memory primitives cannot fail, so applying in place is already all-or-nothing.
        try state.withLock { state in try Training.apply(items, to: &state) }
    }

    public func ledgerClass(of digest: [UInt8]) throws -> MessageClass? {
        state.withLock { $0.ledger[digest]?.messageClass }
    }

    public func statistics() throws -> StoreStatistics {
        state.withLock { state in
            StoreStatistics(totals: state.totals, tokens: state.counts.count, ledgerEntries: state.ledger.count,
                            tokenizerIdentity: tokenizerIdentity, schemaVersion: 0, sizeBytes: nil)
        }
    }

    public func allTokens() throws -> [(TokenID, TokenCounts)] {
        state.withLock { state in state.counts.sorted { $0.key < $1.key }.map { ($0.key, $0.value) } }
    }

    private struct State: TrainingBackend {
        var counts: [TokenID: TokenCounts] = [:]
        var totals = ClassTotals()
        var ledger: [[UInt8]: (messageClass: MessageClass, history: [TokenID])] = [:]

        func ledgerClass(of digest: [UInt8]) -> MessageClass? { ledger[digest]?.messageClass }

        func ledgerHistory(of digest: [UInt8]) -> [TokenID] { ledger[digest]?.history ?? [] }

        mutating func record(_ digest: [UInt8], as messageClass: MessageClass, history: [TokenID]) {
            ledger[digest] = (messageClass, history)
        }

        mutating func erase(_ digest: [UInt8]) { ledger[digest] = nil }

        mutating func adjust(_ tokens: [TokenID], pitch: Int, ham: Int) {
            Training.adjust(&counts, tokens, pitch: pitch, ham: ham)
        }
    }
}
