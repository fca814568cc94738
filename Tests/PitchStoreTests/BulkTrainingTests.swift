import PitchClassifier
import PitchTokenizer
import Testing

@testable import PitchStore

/// `BulkTraining` must leave exactly what `train` leaves, batch for batch: the same outcomes in the same order, the
/// same counts, totals and ledger, whatever mix of learning, moving and forgetting it is given.
@Suite struct BulkTrainingTests {
    let directory: TemporaryDirectory

    init() throws {
        directory = try TemporaryDirectory()
    }

    func store(_ name: String, timeout: Int32 = 2_000) throws -> SQLiteTokenStore {
        try SQLiteTokenStore(path: directory.path(name), tokenizerIdentity: testTokenizer, access: .readWrite,
                             busyTimeoutMilliseconds: timeout)
    }

    static func item(_ n: Int, _ tokens: [UInt64], _ target: MessageClass?) -> TrainingItem {
        TrainingItem(digest: digest(n), tokens: tokens.map(token), target: target)
    }

    /// Batches as `train` receives them: learning with shared tokens and duplicates, a message twice, moves of a
    /// message learned in the same run and of one learned before it, forgetting, and learning after a forget.
    static let batches: [[TrainingItem]] = [
        [item(1, [1, 2, 3], .pitch), item(2, [2, 3, 4], .ham), item(3, [5, 5, 6], .pitch), item(1, [1, 2, 3], .pitch)],
        [item(4, [1, 7], .ham), item(2, [2, 3, 4], .ham), item(5, [8], nil)],
        [item(6, [2, 9], .pitch), item(1, [1, 2, 3], .ham), item(7, [1], .pitch), item(3, [5, 6], nil)],
        [item(8, [3, 10], .ham), item(0, [4], .ham), item(3, [5, 6], .pitch)],
        [item(9, [11], .pitch), item(9, [11], nil), item(10, [12], .ham)],
    ]

    /// What `train` gives, one batch per call, and what the store then holds.
    func reference() throws -> (outcomes: [TrainingOutcome], state: State) {
        let exact = try store("exact.sqlite")
        let outcomes = try Self.batches.flatMap { try exact.train($0) }
        return (outcomes, try State(exact))
    }

    struct State: Equatable {
        var tokens: [UInt64: TokenCounts]
        var totals: ClassTotals
        var ledger: [MessageClass?]

        init(_ store: SQLiteTokenStore) throws {
            tokens = Dictionary(uniqueKeysWithValues: try store.allTokens().map { ($0.0.rawValue, $0.1) })
            totals = try store.lookup([]).totals
            ledger = try (0...10).map { try store.ledgerClass(of: digest($0)) }
        }
    }

    @Test(arguments: [1, 4, 1_000_000])
    func givesWhatTrainGivesBatchForBatch(tokenLimit: Int) throws {
        let expected = try reference()
        #expect(expected.outcomes == [
            .learned, .learned, .learned, .alreadyKnown,
            .learned, .alreadyKnown, .notKnown,
            .learned, .moved, .learned, .forgotten,
            .learned, .learned, .learned,
            .learned, .forgotten, .learned,
        ])
        let bulk = try store("bulk.sqlite")
        var training = BulkTraining(store: bulk, tokenLimit: tokenLimit)
        var outcomes: [TrainingOutcome] = []
        for batch in Self.batches { outcomes += try training.add(batch) }
        outcomes += try training.finish()
        #expect(outcomes == expected.outcomes)
        #expect(try State(bulk) == expected.state)
        #expect(try training.finish() == [])
    }

    @Test func learningOnlyIsWrittenAtTheCommit() throws {
        let bulk = try store("bulk.sqlite")
        var training = BulkTraining(store: bulk)
        #expect(try training.add([Self.item(1, [1, 2], .pitch), Self.item(2, [2], .ham)]) == [])
        #expect(try training.add([Self.item(1, [1, 2], .pitch), Self.item(3, [3], nil)]) == [])
        // Nothing is in the database yet: the sums are held in memory until the commit.
        #expect(try bulk.lookup([]).totals == ClassTotals())
        #expect(try bulk.allTokens().isEmpty)
        #expect(try training.finish() == [.learned, .learned, .alreadyKnown, .notKnown])
        #expect(try counts(bulk, [1, 2, 3]) == [1: TokenCounts(pitch: 1), 2: TokenCounts(pitch: 1, ham: 1)])
        #expect(try bulk.lookup([]).totals == ClassTotals(pitch: 1, ham: 1))
    }

    /// Committed as the next call comes, not as the limit is reached: the last call's items always wait for
    /// `finish`, which the caller may wrap with the writes that end its run (found by an audit: a run whose last
    /// batch reached the limit committed without its contacts).
    @Test func theTokenLimitCommitsBetweenCalls() throws {
        let bulk = try store("bulk.sqlite")
        var training = BulkTraining(store: bulk, tokenLimit: 3)
        #expect(try training.add([Self.item(1, [1, 2], .pitch)]) == [])
        #expect(try training.add([Self.item(2, [3], .ham)]) == [])
        #expect(try bulk.lookup([]).totals == ClassTotals())
        // Messages already known are held too (a replay would need their tokens), so they count towards the limit.
        #expect(try training.add([Self.item(1, [1, 2], .pitch), Self.item(2, [3], .ham)]) == [.learned, .learned])
        #expect(try bulk.lookup([]).totals == ClassTotals(pitch: 1, ham: 1))
        #expect(try training.finish() == [.alreadyKnown, .alreadyKnown])
        #expect(training.committed == [.learned, .learned, .alreadyKnown, .alreadyKnown])
    }

    /// An item whose entry is under its former digest is filed under its digest by `train`, with the rest of its
    /// call after it; the items before it are predicted as usual. Trained again, all are known.
    @Test func anEntryUnderAFormerDigestGoesThroughTrain() throws {
        let bulk = try store("bulk.sqlite")
        _ = try bulk.train([Self.item(1, [1, 2], .pitch)])
        var former = Self.item(11, [1, 2], .pitch)
        former.formerDigest = digest(1)
        var unknownFormer = Self.item(12, [3], .ham)
        unknownFormer.formerDigest = digest(13)
        var training = BulkTraining(store: bulk)
        #expect(try training.add([unknownFormer, former, Self.item(2, [2], .ham)]) == [.learned, .alreadyKnown, .learned])
        #expect(try training.finish() == [])
        #expect(try bulk.ledgerClass(of: digest(1)) == nil)
        #expect(try bulk.ledgerClass(of: digest(11)) == .pitch)
        #expect(try bulk.lookup([]).totals == ClassTotals(pitch: 1, ham: 2))
        #expect(try counts(bulk, [1, 2, 3]) == [1: TokenCounts(pitch: 1), 2: TokenCounts(pitch: 1, ham: 1),
                                                3: TokenCounts(ham: 1)])
        var again = BulkTraining(store: bulk)
        #expect(try again.add([unknownFormer, former, Self.item(2, [2], .ham)]) == [])
        #expect(try again.finish() == [.alreadyKnown, .alreadyKnown, .alreadyKnown])
        // Known under both digests: the entry under the former one is taken back, though the digest is known.
        _ = try bulk.train([Self.item(14, [1, 2], .ham)])
        var twice = Self.item(11, [1, 2], .pitch)
        twice.formerDigest = digest(14)
        var third = BulkTraining(store: bulk)
        #expect(try third.add([twice]) == [.alreadyKnown])
        #expect(try bulk.ledgerClass(of: digest(14)) == nil)
        #expect(try bulk.lookup([]).totals == ClassTotals(pitch: 1, ham: 2))
        #expect(try counts(bulk, [1, 2, 3]) == [1: TokenCounts(pitch: 1), 2: TokenCounts(pitch: 1, ham: 1),
                                                3: TokenCounts(ham: 1)])
    }

    /// Another trainer writes the ledger between the prediction and the commit: the commit notices and applies the
    /// rules as the ledger then stands, as `train` would have at that moment.
    @Test func aLedgerChangedMeanwhileIsReplayedExactly() throws {
        let bulk = try store("shared.sqlite")
        let other = try store("shared.sqlite")
        var training = BulkTraining(store: bulk)
        #expect(try training.add([Self.item(1, [1, 2], .pitch), Self.item(2, [2, 3], .pitch)]) == [])
        #expect(try other.train([Self.item(2, [2, 3], .ham)]) == [.learned])
        #expect(try training.finish() == [.learned, .moved])
        #expect(try counts(bulk, [1, 2, 3]) == [
            1: TokenCounts(pitch: 1), 2: TokenCounts(pitch: 2), 3: TokenCounts(pitch: 1),
        ])
        #expect(try bulk.lookup([]).totals == ClassTotals(pitch: 2, ham: 0))
        #expect(try bulk.ledgerClass(of: digest(2)) == .pitch)
    }

    /// A commit that cannot take the write lock fails with nothing written, and the same items can be committed
    /// once the lock is free.
    @Test func aLockedDatabaseFailsTheCommitAndWritesNothing() throws {
        let bulk = try store("shared.sqlite", timeout: 50)
        let other = try store("shared.sqlite")
        var training = BulkTraining(store: bulk)
        #expect(try training.add([Self.item(1, [1, 2], .pitch)]) == [])
        let failed = try other.inOneWrite {
            #expect(throws: StoreError.self) { try training.finish() }
        }
        #expect(failed != nil)
        #expect(training.committed.isEmpty)
        #expect(try bulk.allTokens().isEmpty)
        #expect(try bulk.ledgerClass(of: digest(1)) == nil)
    }
}
