import PitchClassifier
import PitchTokenizer
import Testing

@testable import PitchStore

/// The contract of `TokenStore`, run against every backend: a backend is done when it passes all of these.
@Suite struct ConformanceTests {
    // Swift Testing makes a suite instance per test, so each test's SQLite file lives exactly as long as the test.
    let directory: TemporaryDirectory

    init() throws {
        directory = try TemporaryDirectory()
    }

    @Test(arguments: StoreKind.allCases)
    func learnAddsTokensTotalsAndLedger(kind: StoreKind) throws {
        let store = try kind.makeStore(in: directory)
        #expect(try store.train([TrainingItem(digest: digest(1), tokens: [token(1), token(2)], target: .pitch)])
            == [.learned])
        #expect(try counts(store, [1, 2, 3]) == [1: TokenCounts(pitch: 1), 2: TokenCounts(pitch: 1)])
        #expect(try store.lookup([]).totals == ClassTotals(pitch: 1, ham: 0))
        #expect(try store.ledgerClass(of: digest(1)) == .pitch)
        #expect(try store.ledgerClass(of: digest(2)) == nil)
    }

    /// History tokens (contacts, replies, templates) depend on when a message is learned: a forget or a move
    /// takes back those it was learned with, whatever the history says by then.
    @Test(arguments: StoreKind.allCases)
    func forgetAndMoveTakeBackTheHistoryTokensAsLearned(kind: StoreKind) throws {
        let store = try kind.makeStore(in: directory)
        func item(_ history: UInt64, _ target: MessageClass?) -> TrainingItem {
            TrainingItem(digest: digest(1), tokens: [token(1), token(history)], target: target,
                         history: [token(history)])
        }
        // Another message holds a count of token 11, which the first message's forget must leave alone.
        _ = try store.train([TrainingItem(digest: digest(2), tokens: [token(11)], target: .pitch)])
        #expect(try store.train([item(10, .pitch)]) == [.learned])
        // Moved when the history gives token 11 instead: 10 leaves the pitches, 11 joins the ham.
        #expect(try store.train([item(11, .ham)]) == [.moved])
        #expect(try counts(store, [1, 10, 11]) == [1: TokenCounts(ham: 1), 11: TokenCounts(pitch: 1, ham: 1)])
        // Forgotten when the history gives token 10 again: 11 as learned goes, 10 is not subtracted twice.
        #expect(try store.train([item(10, nil)]) == [.forgotten])
        #expect(try counts(store, [1, 10, 11]) == [11: TokenCounts(pitch: 1)])
        #expect(try store.lookup([]).totals == ClassTotals(pitch: 1, ham: 0))
    }

    /// A message learned under the digest it had before (`TrainingItem.formerDigest`) is the message: trained
    /// again it is known, its entry is filed under today's digest, and it moves and is forgotten as any other.
    @Test(arguments: StoreKind.allCases)
    func anEntryUnderTheFormerDigestIsTheMessages(kind: StoreKind) throws {
        let store = try kind.makeStore(in: directory)
        _ = try store.train([TrainingItem(digest: digest(1), tokens: [token(1), token(9)], target: .ham,
                                          history: [token(9)])])
        func item(_ target: MessageClass?) -> TrainingItem {
            TrainingItem(digest: digest(2), tokens: [token(1)], target: target, formerDigest: digest(1))
        }
        #expect(try store.train([item(.ham)]) == [.alreadyKnown])
        #expect(try store.ledgerClass(of: digest(1)) == nil)
        #expect(try store.ledgerClass(of: digest(2)) == .ham)
        #expect(try store.statistics().ledgerEntries == 1)
        // Filed under the digest with the history tokens it was learned with, which a move takes back.
        #expect(try store.train([item(.pitch)]) == [.moved])
        #expect(try counts(store, [1, 9]) == [1: TokenCounts(pitch: 1)])
        #expect(try store.lookup([]).totals == ClassTotals(pitch: 1, ham: 0))
        // Learned under both (from an mbox before, and since from a copy without the store's fields): the entry under
        // the former digest is taken back, with the history it was learned with, and the one under the digest stands.
        _ = try store.train([TrainingItem(digest: digest(3), tokens: [token(1), token(8)], target: .ham,
                                          history: [token(8)])])
        #expect(try store.train([TrainingItem(digest: digest(2), tokens: [token(1)], target: .pitch,
                                              formerDigest: digest(3))]) == [.alreadyKnown])
        #expect(try store.ledgerClass(of: digest(3)) == nil)
        #expect(try counts(store, [1, 8]) == [1: TokenCounts(pitch: 1)])
        #expect(try store.lookup([]).totals == ClassTotals(pitch: 1, ham: 0))
        // Forgotten through the former digest.
        _ = try store.train([TrainingItem(digest: digest(4), tokens: [token(4)], target: .pitch)])
        #expect(try store.train([TrainingItem(digest: digest(5), tokens: [token(4)], target: nil,
                                              formerDigest: digest(4))]) == [.forgotten])
        #expect(try store.statistics().ledgerEntries == 1)
        #expect(try store.lookup([]).totals == ClassTotals(pitch: 1, ham: 0))
    }

    @Test(arguments: StoreKind.allCases)
    func learningAgainChangesNothing(kind: StoreKind) throws {
        let store = try kind.makeStore(in: directory)
        let item = TrainingItem(digest: digest(1), tokens: [token(1), token(2)], target: .ham)
        #expect(try store.train([item]) == [.learned])
        #expect(try store.train([item]) == [.alreadyKnown])
        // The same message in one batch, too: the second sees the first.
        #expect(try store.train([item, item]) == [.alreadyKnown, .alreadyKnown])
        #expect(try counts(store, [1, 2]) == [1: TokenCounts(ham: 1), 2: TokenCounts(ham: 1)])
        #expect(try store.lookup([]).totals == ClassTotals(pitch: 0, ham: 1))
        #expect(try store.statistics().ledgerEntries == 1)
    }

    @Test(arguments: StoreKind.allCases)
    func moveShiftsCountsExactly(kind: StoreKind) throws {
        let store = try kind.makeStore(in: directory)
        _ = try store.train([
            TrainingItem(digest: digest(1), tokens: [token(1), token(2)], target: .pitch),
            TrainingItem(digest: digest(2), tokens: [token(2), token(3)], target: .pitch),
            TrainingItem(digest: digest(3), tokens: [token(3)], target: .ham),
        ])
        #expect(try store.train([TrainingItem(digest: digest(1), tokens: [token(1), token(2)], target: .ham)])
            == [.moved])
        #expect(try counts(store, [1, 2, 3]) == [
            1: TokenCounts(pitch: 0, ham: 1), 2: TokenCounts(pitch: 1, ham: 1), 3: TokenCounts(pitch: 1, ham: 1),
        ])
        #expect(try store.lookup([]).totals == ClassTotals(pitch: 1, ham: 2))
        #expect(try store.ledgerClass(of: digest(1)) == .ham)
        // And back again.
        #expect(try store.train([TrainingItem(digest: digest(1), tokens: [token(1), token(2)], target: .pitch)])
            == [.moved])
        #expect(try counts(store, [1, 2, 3]) == [
            1: TokenCounts(pitch: 1, ham: 0), 2: TokenCounts(pitch: 2, ham: 0), 3: TokenCounts(pitch: 1, ham: 1),
        ])
        #expect(try store.lookup([]).totals == ClassTotals(pitch: 2, ham: 1))
    }

    @Test(arguments: StoreKind.allCases)
    func forgetSubtractsAndDeletesEmptyTokens(kind: StoreKind) throws {
        let store = try kind.makeStore(in: directory)
        _ = try store.train([
            TrainingItem(digest: digest(1), tokens: [token(1), token(2)], target: .pitch),
            TrainingItem(digest: digest(2), tokens: [token(2)], target: .ham),
        ])
        #expect(try store.train([TrainingItem(digest: digest(1), tokens: [token(1), token(2)], target: nil)])
            == [.forgotten])
        #expect(try counts(store, [1, 2]) == [2: TokenCounts(pitch: 0, ham: 1)])
        #expect(try store.allTokens().map(\.0) == [token(2)])
        #expect(try store.lookup([]).totals == ClassTotals(pitch: 0, ham: 1))
        #expect(try store.ledgerClass(of: digest(1)) == nil)
        #expect(try store.statistics().ledgerEntries == 1)
        // Forgotten means unknown: forgetting again does nothing, learning again learns.
        #expect(try store.train([TrainingItem(digest: digest(1), tokens: [token(1)], target: nil)]) == [.notKnown])
        #expect(try store.train([TrainingItem(digest: digest(1), tokens: [token(1)], target: .ham)]) == [.learned])
    }

    @Test(arguments: StoreKind.allCases)
    func forgettingAnUnknownMessageChangesNothing(kind: StoreKind) throws {
        let store = try kind.makeStore(in: directory)
        _ = try store.train([TrainingItem(digest: digest(1), tokens: [token(1)], target: .pitch)])
        #expect(try store.train([TrainingItem(digest: digest(9), tokens: [token(1), token(5)], target: nil)])
            == [.notKnown])
        #expect(try counts(store, [1, 5]) == [1: TokenCounts(pitch: 1)])
        #expect(try store.lookup([]).totals == ClassTotals(pitch: 1, ham: 0))
    }

    @Test(arguments: StoreKind.allCases)
    func countsSaturateAtZero(kind: StoreKind) throws {
        let store = try kind.makeStore(in: directory)
        _ = try store.train([
            TrainingItem(digest: digest(1), tokens: [token(1)], target: .pitch),
            TrainingItem(digest: digest(2), tokens: [token(2)], target: .ham),
        ])
        // Forgotten with more tokens than it was learned with (a changed tokenizer would do this): the extra
        // tokens must neither go negative nor wrap around to 4 billion nor appear as zero rows.
        #expect(try store.train([
            TrainingItem(digest: digest(1), tokens: [token(1), token(2), token(3)], target: nil),
        ]) == [.forgotten])
        #expect(try counts(store, [1, 2, 3]) == [2: TokenCounts(pitch: 0, ham: 1)])
        // A move whose source class count is already zero still adds to the target.
        #expect(try store.train([TrainingItem(digest: digest(2), tokens: [token(2), token(4)], target: .pitch)])
            == [.moved])
        #expect(try counts(store, [2, 4]) == [2: TokenCounts(pitch: 1, ham: 0), 4: TokenCounts(pitch: 1, ham: 0)])
        #expect(try store.lookup([]).totals == ClassTotals(pitch: 1, ham: 0))
        #expect(try store.allTokens().allSatisfy { $0.1 != .zero })
    }

    /// Items apply in order even inside one batch: where a subtraction saturates, learning before or after it
    /// gives different counts (a backend that sums a batch's changes must not reorder them).
    @Test(arguments: StoreKind.allCases, [false, true])
    func itemsApplyInOrderWhereCountsSaturate(kind: StoreKind, learnFirst: Bool) throws {
        let store = try kind.makeStore(in: directory)
        _ = try store.train([
            TrainingItem(digest: digest(1), tokens: [token(2)], target: .pitch),
            TrainingItem(digest: digest(2), tokens: [token(1)], target: .ham),
        ])
        // Message 1 is forgotten with a token it was not learned with: token 1's pitch count saturates, unless
        // message 3 has added to it first.
        let learn = TrainingItem(digest: digest(3), tokens: [token(1)], target: .pitch)
        let forget = TrainingItem(digest: digest(1), tokens: [token(1), token(2)], target: nil)
        let outcomes = try store.train(learnFirst ? [learn, forget] : [forget, learn])
        #expect(outcomes == (learnFirst ? [.learned, .forgotten] : [.forgotten, .learned]))
        #expect(try counts(store, [1, 2]) == [1: learnFirst ? TokenCounts(pitch: 0, ham: 1)
                                                        : TokenCounts(pitch: 1, ham: 1)])
        #expect(try store.lookup([]).totals == ClassTotals(pitch: 1, ham: 1))
    }

    @Test(arguments: StoreKind.allCases)
    func lookupLeavesOutUnknownTokens(kind: StoreKind) throws {
        let store = try kind.makeStore(in: directory)
        let empty = try store.lookup([token(1), token(2)])
        #expect(empty.counts.isEmpty)
        #expect(empty.totals == ClassTotals())
        _ = try store.train([TrainingItem(digest: digest(1), tokens: [token(2)], target: .ham)])
        let found = try store.lookup([token(1), token(2), token(2), token(.max)])
        #expect(found.counts == [token(2): TokenCounts(ham: 1)])
        #expect(found.totals == ClassTotals(pitch: 0, ham: 1))
    }

    @Test(arguments: StoreKind.allCases)
    func mixedBatchHasExactOutcomesAndCounts(kind: StoreKind) throws {
        let store = try kind.makeStore(in: directory)
        let outcomes = try store.train([
            TrainingItem(digest: digest(1), tokens: [token(1), token(2)], target: .pitch),
            TrainingItem(digest: digest(2), tokens: [token(2), token(3)], target: .ham),
            TrainingItem(digest: digest(1), tokens: [token(1), token(2)], target: .pitch),
            TrainingItem(digest: digest(2), tokens: [token(2), token(3)], target: .pitch),
            TrainingItem(digest: digest(3), tokens: [token(3)], target: nil),
            TrainingItem(digest: digest(1), tokens: [token(1), token(2)], target: nil),
            TrainingItem(digest: digest(3), tokens: [token(3)], target: .ham),
        ])
        #expect(outcomes == [.learned, .learned, .alreadyKnown, .moved, .notKnown, .forgotten, .learned])
        #expect(try counts(store, [1, 2, 3]) == [2: TokenCounts(pitch: 1, ham: 0), 3: TokenCounts(pitch: 1, ham: 1)])
        #expect(try store.lookup([]).totals == ClassTotals(pitch: 1, ham: 1))
        #expect(try store.ledgerClass(of: digest(1)) == nil)
        #expect(try store.ledgerClass(of: digest(2)) == .pitch)
        #expect(try store.ledgerClass(of: digest(3)) == .ham)
        #expect(try store.train([]) == [])
    }

    @Test(arguments: StoreKind.allCases)
    func duplicateTokensCountOncePerMessage(kind: StoreKind) throws {
        let store = try kind.makeStore(in: directory)
        _ = try store.train([TrainingItem(digest: digest(1), tokens: [token(7), token(7), token(7)], target: .pitch)])
        #expect(try counts(store, [7]) == [7: TokenCounts(pitch: 1)])
        _ = try store.train([TrainingItem(digest: digest(1), tokens: [token(7), token(7)], target: nil)])
        #expect(try counts(store, [7]).isEmpty)
    }

    @Test(arguments: StoreKind.allCases)
    func anyDigestIsAKey(kind: StoreKind) throws {
        let store = try kind.makeStore(in: directory)
        // The engine always passes 32 bytes, but an empty or short digest must not turn into NULL or collide.
        #expect(try store.train([
            TrainingItem(digest: [], tokens: [token(1)], target: .pitch),
            TrainingItem(digest: [0], tokens: [token(1)], target: .ham),
            TrainingItem(digest: [], tokens: [token(1)], target: .pitch),
        ]) == [.learned, .learned, .alreadyKnown])
        #expect(try store.ledgerClass(of: []) == .pitch)
        #expect(try store.ledgerClass(of: [0]) == .ham)
    }

    @Test(arguments: StoreKind.allCases)
    func statisticsDescribeTheStore(kind: StoreKind) throws {
        let store = try kind.makeStore(in: directory)
        let empty = try store.statistics()
        #expect(empty.totals == ClassTotals())
        #expect(empty.tokens == 0)
        #expect(empty.ledgerEntries == 0)
        _ = try store.train([
            TrainingItem(digest: digest(1), tokens: [token(1), token(2)], target: .pitch),
            TrainingItem(digest: digest(2), tokens: [token(2), token(3), token(4)], target: .ham),
            TrainingItem(digest: digest(3), tokens: [token(4)], target: .ham),
        ])
        let statistics = try store.statistics()
        #expect(statistics.totals == ClassTotals(pitch: 1, ham: 2))
        #expect(statistics.tokens == 4)
        #expect(statistics.ledgerEntries == 3)
        #expect(statistics.tokenizerIdentity == testTokenizer)
        #expect(store.tokenizerIdentity == testTokenizer)
        switch kind {
        case .inMemory:
            #expect(statistics.schemaVersion == 0)
            #expect(statistics.sizeBytes == nil)
        case .sqlite:
            #expect(statistics.schemaVersion == SQLiteSchema.migrations.count)
            #expect((statistics.sizeBytes ?? 0) >= 4096)
        case .postgres, .sqliteWithSharedModel:
            #expect(statistics.schemaVersion == 1)
            #expect(statistics.sizeBytes == nil)
        }
    }

    @Test(arguments: StoreKind.allCases)
    func allTokensAreInUnsignedIdOrder(kind: StoreKind) throws {
        let store = try kind.makeStore(in: directory)
        // Ids of 2⁶³ and above are negative as SQLite integers; they must still sort after the small ones.
        let raws: [UInt64] = [5, 1 << 63 | 1, 1, .max, (1 << 63) - 1, 1 << 63, 0]
        _ = try store.train([TrainingItem(digest: digest(1), tokens: raws.map(token), target: .pitch)])
        _ = try store.train([TrainingItem(digest: digest(2), tokens: [token(5)], target: .ham)])
        let all = try store.allTokens()
        #expect(all.map(\.0.rawValue) == raws.sorted())
        #expect(all.first { $0.0 == token(5) }?.1 == TokenCounts(pitch: 1, ham: 1))
        #expect(try counts(store, [.max, 1 << 63]) == [.max: TokenCounts(pitch: 1), 1 << 63: TokenCounts(pitch: 1)])
    }

    /// The starter agreement a training measured is kept with the model: in a SQLite file's meta table, or in the
    /// shared model, where every host reads what another host's training measured. Snapshots carry it.
    @Test(arguments: StoreKind.allCases.filter { $0 != .inMemory })
    func theStarterAgreementIsKeptWithTheModel(kind: StoreKind) throws {
        let store = try kind.makeStore(in: directory)
        let record: (Double?) throws -> Void
        let snapshot: () throws -> TokenSnapshot
        switch store {
        case let file as SQLiteTokenStore: (record, snapshot) = (file.recordStarterAgreement, file.snapshot)
        case let shared as any SharedModel: (record, snapshot) = (shared.recordStarterAgreement, shared.snapshot)
        default: Issue.record("\(kind) keeps no agreement"); return
        }
        #expect(try store.starterAgreement() == nil)
        try record(0.6578)
        #expect(try store.starterAgreement() == 0.6578)
        #expect(try snapshot().agreement == 0.6578)
        if let shared = (store as? SQLiteTokenStore)?.sharedModel {
            #expect(try shared.starterAgreement() == 0.6578)
        }
        try record(-0.25)
        #expect(try store.starterAgreement() == -0.25)
        try record(nil)
        #expect(try store.starterAgreement() == nil)
        #expect(try snapshot().agreement == nil)
    }
}
