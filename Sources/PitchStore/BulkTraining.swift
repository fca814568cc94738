import PitchClassifier
import PitchTokenizer

#if canImport(Glibc)
import Glibc
#endif

/// Training a large run of messages (`pitchfilter train`) with one write per distinct token, not one per batch.
///
/// `train` sums a batch's additions per token and writes each once, so a token in every batch is written once per
/// batch: training the SpamAssassin corpus in batches of 1,000 wrote 1.2 million rows for its 566,000 distinct
/// tokens, and the thread writing them was the bottleneck of the run.
///
/// Here each item's outcome is first predicted from the ledger as it stands plus the run so far. Plain learning,
/// nearly all of a bulk run, only adds, and additions commute, so they are summed in memory as the items arrive
/// (on the caller's thread, while the next ones are tokenized): each call's into a sorted `CountRun`, and the
/// runs merged into one at the commit. `commit` writes everything in one transaction:
/// it checks that the ledger still holds what the predictions read (another trainer may have written since) and
/// then records the ledger rows, the summed counts and the totals; if the ledger changed, it replays the held
/// items through `Training.apply` instead. Either way the outcome is exactly what `train` would have given.
///
/// Moving and forgetting subtract, which saturates at zero and does not commute: such an item first commits what
/// is pending, and it and the rest of its `add` call go through `train` as they always did.
public struct BulkTraining {
    public let store: SQLiteTokenStore
    /// Token ids held before the next `add` commits them first (every pending item's, learned or not, since a
    /// replay needs them all): bounds the memory (the items' ids and the runs, about 30 bytes an id) and how long
    /// the commit holds the write lock, which another writer waits at most 2 s for. The whole SpamAssassin corpus
    /// (6,046 messages, 2.4 million ids, 565,000 distinct) fits, and commits in 0.4–0.85 s on this project's
    /// 2-core machine, by the moment; training it peaks at 125 MB.
    public let tokenLimit: Int

    /// Items not yet committed, each with the outcome predicted and what it was predicted from.
    private var pending: [PendingItem] = []
    /// The template sightings of the items handed over, written in the same transaction as the items: written
    /// apart, a run killed before its commit left the sightings of messages it never learned, and the run again
    /// saw each message's later twins as sent before it (found by an audit).
    private var pendingSightings: [TemplateSighting] = []
    /// The class each pending learned item will have in the ledger, for later items of the same message.
    private var learnedInRun: [[UInt8]: MessageClass] = [:]
    /// The sums of earlier calls, and this call's additions not yet sorted into a run.
    private var runs: [CountRun] = []
    private var pitchAdditions: [TokenID] = []
    private var hamAdditions: [TokenID] = []
    private var deduplicator = ItemDeduplicator()
    private var tokensHeld = 0
    /// The outcome of every item committed so far, in order: what a summary counts, also after a failure.
    public private(set) var committed: [TrainingOutcome] = []

    public init(store: SQLiteTokenStore, tokenLimit: Int = 3_000_000) {
        self.store = store
        self.tokenLimit = tokenLimit
    }

    /// Takes `items` in order, and returns the outcomes of whatever this call committed: items of earlier calls
    /// too, or none. Every item's outcome is returned once, in order, by `add` or `finish`. After a throw, what was
    /// not committed is lost (`committed` says what was) and the run must end: a caller that retried the same
    /// items would find some of them learned by itself.
    /// `sightings`: what the template memory is to record of these items, written by the commit that learns them
    /// (with a shared model, which this file's transactions cannot include, at once).
    @discardableResult
    public mutating func add(_ items: [TrainingItem], sightings: [TemplateSighting] = []) throws -> [TrainingOutcome] {
        // A shared model takes each call as one batch: its `train` already reads and writes each token once. The
        // sightings go to this file's memory, which no transaction there can include.
        if let model = store.sharedModel {
            let outcomes = try model.train(items)
            committed += outcomes
            if !sightings.isEmpty {
                let now = Int64(time(nil))
                try store.record(sightings, at: now, expireBefore: now - TemplateWindow.seconds)
            }
            return outcomes
        }
        let before = committed.count
        try predict(items)
        // After: a commit inside `predict` may hold only some of these items. Recorded with the next commit,
        // a kill between leaves learned messages' sightings unrecorded, never unlearned messages' recorded.
        pendingSightings += sightings
        return Array(committed[before...])
    }

    /// Commits what is pending, and `alsoCommitting`'s writes through the store in the same transaction (what the
    /// caller's run writes at its end), and returns the outcomes. If either fails, neither is written, and the
    /// outcomes of the rolled-back commit are not counted as committed.
    @discardableResult
    public mutating func finish(alsoCommitting: () throws -> Void = {}) throws -> [TrainingOutcome] {
        let before = committed.count
        do {
            try store.inOneWrite {
                try commit()
                try alsoCommitting()
            }
        } catch {
            committed.removeSubrange(before...)
            throw error
        }
        return Array(committed[before...])
    }

    private mutating func predict(_ items: [TrainingItem]) throws {
        // Past the limit, what is held is committed as more arrives, not as the limit is reached: the last call's
        // items then always wait for `finish`, and so commit with what the caller writes at the end of its run
        // (found by an audit: a run whose last batch reached the limit committed it alone, and a kill before the
        // run's contacts left the model without them).
        if tokensHeld >= tokenLimit { try commit() }
        // The ledger rows of the whole call in one read transaction. Only valid until something commits, which is
        // why every item after the first that cannot be predicted goes through `train`.
        let read = try store.ledgerClasses(of: items.map(\.digest))
        // An entry under a former digest is to be filed under the digest, or taken back beside one there, writes no
        // prediction makes: such an item goes through `train`, as a move does.
        let formers = items.indices.filter { items[$0].formerDigest != nil }
        let formerRead = try store.ledgerClasses(of: formers.map { items[$0].formerDigest! })
        let firstFiledUnderFormer = zip(formers, formerRead).first { $0.1 != nil }?.0
        for index in items.indices {
            let item = items[index]
            if index == firstFiledUnderFormer {
                try commit()
                committed += try store.train(Array(items[index...]))
                return
            }
            let inRun = learnedInRun[item.digest]
            let known = inRun ?? read[index]
            // What the commit must find in the ledger for the prediction to hold: nothing to check when it came
            // from an earlier item of the run.
            let expected: PendingItem.Expectation = inRun == nil ? .ledger(read[index]) : .run
            tokensHeld += item.tokens.count
            switch (known, item.target) {
            case let (nil, target?):
                // Learned: the only case that writes, and it only adds, each token once per message.
                deduplicator.nextItem(count: item.tokens.count)
                for id in item.tokens where deduplicator.isFirst(id.rawValue) {
                    if target == .pitch { pitchAdditions.append(id) } else { hamAdditions.append(id) }
                }
                learnedInRun[item.digest] = target
                pending.append(PendingItem(item: item, expected: expected, outcome: .learned))
            case let (known?, target?) where known == target:
                pending.append(PendingItem(item: item, expected: expected, outcome: .alreadyKnown))
            case (nil, nil):
                pending.append(PendingItem(item: item, expected: expected, outcome: .notKnown))
            default:
                try commit()
                committed += try store.train(Array(items[index...]))
                return
            }
        }
        closeRun()
    }

    private mutating func closeRun() {
        guard !pitchAdditions.isEmpty || !hamAdditions.isEmpty else { return }
        runs.append(CountRun(pitch: pitchAdditions, ham: hamAdditions))
        pitchAdditions = []
        hamAdditions = []
    }

    private mutating func commit() throws {
        closeRun()
        guard !pending.isEmpty || !pendingSightings.isEmpty else { return }
        committed += try store.commitBulk(pending, sums: CountRun.merging(runs), sightings: pendingSightings,
                                          at: Int64(time(nil)))
        pendingSightings = []
        pending = []
        learnedInRun = [:]
        runs = []
        tokensHeld = 0
    }
}

/// An item added to a `BulkTraining` and not yet committed.
struct PendingItem {
    enum Expectation {
        /// Predicted from this ledger class, read from the database.
        case ledger(MessageClass?)
        /// Predicted from an earlier item of the same run.
        case run
    }

    var item: TrainingItem
    var expected: Expectation
    var outcome: TrainingOutcome
}

extension SQLiteTokenStore {
    /// One transaction: the predicted outcomes if the ledger still reads as the predictions read it, else the
    /// exact replay; and the template sightings of the messages handed over (`TemplateWindow` from `time`).
    func commitBulk(_ pending: [PendingItem], sums: CountRun, sightings: [TemplateSighting],
                    at time: Int64) throws -> [TrainingOutcome] {
        guard access == .readWrite else {
            throw StoreError.readOnly(path: path, detail: "it was opened read-only (a bug: training needs read-write)")
        }
        return try connection.withLock { connection throws(StoreError) in
            try connection.transaction(immediate: true) { () throws(StoreError) in
                if !sightings.isEmpty {
                    try Self.record(sightings, at: time, expireBefore: time - TemplateWindow.seconds, on: connection)
                }
                var trainer = try SQLiteTrainer(connection)
                for entry in pending {
                    guard case .ledger(let read) = entry.expected else { continue }
                    // A former digest found the ledger empty too, and must still (`Training.apply` files its entry).
                    let formerRead = try entry.item.formerDigest.map { digest throws(StoreError) in
                        try trainer.ledgerClass(of: digest)
                    } ?? nil
                    if try trainer.ledgerClass(of: entry.item.digest) != read || formerRead != nil {
                        // Another trainer changed the ledger since the prediction: apply the rules for real.
                        let outcomes = try Training.apply(pending.map(\.item), to: &trainer)
                        try trainer.finish()
                        return outcomes
                    }
                }
                for entry in pending where entry.outcome == .learned {
                    guard let target = entry.item.target else { continue }
                    let history = Training.distinct(entry.item.history)
                    try trainer.record(entry.item.digest, as: target, history: history)
                    trainer.totals[target] += 1
                }
                try trainer.write(sums)
                try trainer.finish()
                return pending.map(\.outcome)
            }
        }
    }
}
