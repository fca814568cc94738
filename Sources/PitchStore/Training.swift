import PitchClassifier
import PitchTokenizer

/// The primitive operations the ledger rules need, implemented by each backend inside its transaction.
///
/// Keeping the rules themselves in one place (`Training.apply`) is what guarantees every backend gives the same
/// outcomes and the same counts; the conformance suite then only has to catch mistakes in these primitives.
protocol TrainingBackend {
    /// Class totals as of the start of the batch; `Training.apply` updates them and the backend persists them.
    var totals: ClassTotals { get set }
    mutating func ledgerClass(of digest: [UInt8]) throws(StoreError) -> MessageClass?
    /// The history token ids `digest` was learned with (`TrainingItem.history`); empty if none or not learned.
    mutating func ledgerHistory(of digest: [UInt8]) throws(StoreError) -> [TokenID]
    /// Records `digest` as learned as `messageClass` with these history tokens, replacing any previous entry.
    mutating func record(_ digest: [UInt8], as messageClass: MessageClass, history: [TokenID]) throws(StoreError)
    mutating func erase(_ digest: [UInt8]) throws(StoreError)
    /// Adds `pitch` and `ham` (each -1, 0 or +1) to every token's counts, saturating at zero and at `UInt32.max`,
    /// and deletes tokens whose counts both become zero. `tokens` holds no duplicates.
    mutating func adjust(_ tokens: [TokenID], pitch: Int, ham: Int) throws(StoreError)
}

enum Training {
    /// The ledger rules of `TokenStore.train`, item by item, so an item later in a batch sees earlier ones (the same
    /// message twice in one batch is learned once).
    static func apply(
        _ items: [TrainingItem], to backend: inout some TrainingBackend
    ) throws(StoreError) -> [TrainingOutcome] {
        var outcomes: [TrainingOutcome] = []
        outcomes.reserveCapacity(items.count)
        for item in items {
            let known = try ledgerClass(of: item, filingFormerEntryIn: &backend)
            switch (known, item.target) {
            case (nil, nil):
                outcomes.append(.notKnown)
            case let (known?, target?) where known == target:
                outcomes.append(.alreadyKnown)
            case let (nil, target?):
                try backend.adjust(distinct(item.tokens), pitch: target == .pitch ? 1 : 0, ham: target == .ham ? 1 : 0)
                try backend.record(item.digest, as: target, history: distinct(item.history))
                backend.totals[target] += 1
                outcomes.append(.learned)
            case let (known?, target?):
                // The message's own tokens move; its history tokens as learned go, and those of now come.
                let learned = try backend.ledgerHistory(of: item.digest)
                try backend.adjust(distinct(item.content), pitch: target == .pitch ? 1 : -1,
                                   ham: target == .ham ? 1 : -1)
                try backend.adjust(distinct(learned), pitch: known == .pitch ? -1 : 0, ham: known == .ham ? -1 : 0)
                try backend.adjust(distinct(item.history), pitch: target == .pitch ? 1 : 0,
                                   ham: target == .ham ? 1 : 0)
                try backend.record(item.digest, as: target, history: distinct(item.history))
                backend.totals[known] = max(backend.totals[known] - 1, 0)
                backend.totals[target] += 1
                outcomes.append(.moved)
            case let (known?, nil):
                let learned = try backend.ledgerHistory(of: item.digest)
                try backend.adjust(distinct(item.content + learned), pitch: known == .pitch ? -1 : 0,
                                   ham: known == .ham ? -1 : 0)
                try backend.erase(item.digest)
                backend.totals[known] = max(backend.totals[known] - 1, 0)
                outcomes.append(.forgotten)
            }
        }
        return outcomes
    }

    /// The class `item`'s message was learned as: under its digest, or else under its former digest, whose entry
    /// is then filed under the digest (the ledger's rules go on from there as for any entry), so that each message
    /// has one entry however often it is trained. A former digest is only ever its own message's, so an entry under
    /// it beside one under the digest (learned once from an mbox before, and once since from a copy without the
    /// store's fields) is the message counted twice: it is taken back as a forget would take it, and the entry
    /// under the digest stands (found in review: moved, the message stayed in both classes).
    private static func ledgerClass(of item: TrainingItem, filingFormerEntryIn backend: inout some TrainingBackend)
        throws(StoreError) -> MessageClass? {
        let known = try backend.ledgerClass(of: item.digest)
        guard let former = item.formerDigest, former != item.digest,
              let formerClass = try backend.ledgerClass(of: former) else { return known }
        let history = try backend.ledgerHistory(of: former)
        try backend.erase(former)
        if let known {
            try backend.adjust(distinct(item.content + history), pitch: formerClass == .pitch ? -1 : 0,
                               ham: formerClass == .ham ? -1 : 0)
            backend.totals[formerClass] = max(backend.totals[formerClass] - 1, 0)
            return known
        }
        try backend.record(item.digest, as: formerClass, history: history)
        return formerClass
    }

    /// A token counts once per message even if a caller passes it twice; counting it twice would skew the
    /// probabilities and could not be undone exactly by a forget with the deduplicated list.
    static func distinct(_ tokens: [TokenID]) -> [TokenID] {
        var seen = Set<TokenID>(minimumCapacity: tokens.count)
        return tokens.filter { seen.insert($0).inserted }
    }

    /// `TrainingBackend.adjust` over counts held in a dictionary, as the in-memory store and a shared model's
    /// batch hold them: a token whose counts reach zero leaves it.
    static func adjust(_ counts: inout [TokenID: TokenCounts], _ tokens: [TokenID], pitch: Int, ham: Int) {
        for id in tokens {
            var updated = counts[id] ?? .zero
            updated.pitch = saturating(updated.pitch, pitch)
            updated.ham = saturating(updated.ham, ham)
            counts[id] = updated == .zero ? nil : updated
        }
    }

    /// `count + delta`, held within what a `TokenCounts` field can represent.
    static func saturating(_ count: UInt32, _ delta: Int) -> UInt32 {
        UInt32(clamping: Int64(count) + Int64(delta))
    }
}
