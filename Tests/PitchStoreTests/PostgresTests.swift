import PitchClassifier
import PitchTokenizer
import Synchronization
import Testing

@testable import PitchStore

/// What only the shared model in PostgreSQL does; run by Scripts/postgres-check.sh, which starts a server.
@Suite(.enabled(if: PostgresTest.server != nil)) struct PostgresTests {
    /// Before any host has trained, a reader finds no tables: it sees an empty model, creates nothing, and sees
    /// the model once a writer has made it.
    @Test func aReaderBeforeAnyTrainingSeesAnEmptyModel() throws {
        let address = try PostgresTest.freshDatabase()
        let reader = try SharedModels.open(address, password: { nil }, tokenizerIdentity: testTokenizer, readOnly: true)
        #expect(try reader.lookup([token(1)]).counts.isEmpty)
        #expect(try reader.statistics().totals == ClassTotals())
        #expect(try reader.ledgerClass(of: digest(1)) == nil)
        #expect(throws: StoreError.self) {
            _ = try reader.train([TrainingItem(digest: digest(1), tokens: [token(1)], target: .pitch)])
        }
        let writer = try SharedModels.open(address, password: { nil }, tokenizerIdentity: testTokenizer, readOnly: false)
        #expect(try writer.train([TrainingItem(digest: digest(1), tokens: [token(1)], target: .pitch)]) == [.learned])
        #expect(try reader.lookup([token(1)]).counts == [token(1): TokenCounts(pitch: 1)])
        #expect(try reader.snapshot().totals == ClassTotals(pitch: 1, ham: 0))
    }

    /// A model built with another tokenizer is refused, as a SQLite file's is.
    @Test func aModelOfAnotherTokenizerIsRefused() throws {
        let address = try PostgresTest.freshDatabase()
        let first = try SharedModels.open(address, password: { nil }, tokenizerIdentity: testTokenizer, readOnly: false)
        _ = try first.train([TrainingItem(digest: digest(1), tokens: [token(1)], target: .ham)])
        let other = try SharedModels.open(address, password: { nil }, tokenizerIdentity: "other-tokens-9", readOnly: true)
        #expect(throws: StoreError.tokenizerMismatch(path: address.description, database: testTokenizer,
                                                     program: "other-tokens-9")) {
            _ = try other.lookup([token(1)])
        }
    }

    /// Two hosts training at once: every message counts once, and the totals add up.
    @Test func twoTrainersAtOnceLoseNothing() async throws {
        let address = try PostgresTest.freshDatabase()
        let hosts = try (0..<2).map { _ in
            try SharedModels.open(address, password: { nil }, tokenizerIdentity: testTokenizer, readOnly: false)
        }
        try await withThrowingTaskGroup(of: Void.self) { group in
            for (index, host) in hosts.enumerated() {
                group.addTask {
                    for batch in 0..<20 {
                        // Both hosts learn messages 0..<200 (as pitches) and their own 100 (as ham).
                        let shared = (0..<10).map { TrainingItem(digest: digest(batch * 10 + $0),
                                                                 tokens: [token(1), token(2)], target: .pitch) }
                        let own = (0..<5).map { TrainingItem(digest: digest(10_000 * (index + 1) + batch * 5 + $0),
                                                             tokens: [token(2), token(3)], target: .ham) }
                        _ = try host.train(shared + own)
                    }
                }
            }
            try await group.waitForAll()
        }
        let statistics = try hosts[0].statistics()
        #expect(statistics.totals == ClassTotals(pitch: 200, ham: 200))
        #expect(statistics.ledgerEntries == 400)
        #expect(try counts(hosts[1], [1, 2, 3])
            == [1: TokenCounts(pitch: 200), 2: TokenCounts(pitch: 200, ham: 200), 3: TokenCounts(ham: 200)])
    }

    /// The password is read when connecting, from the function given, and a wrong one is the server's refusal.
    @Test(.enabled(if: PostgresTest.passwordServer != nil))
    func aWrongPasswordIsRefusedByTheServer() throws {
        let address = try SharedModelAddress(parsing: try #require(PostgresTest.passwordServer)
            + "/postgres?sslmode=disable")
        let asked = Mutex(0)
        let wrong = try SharedModels.open(address, password: { asked.withLock { $0 += 1 }; return "not-the-password" },
                                          tokenizerIdentity: testTokenizer, readOnly: true)
        let error = #expect(throws: StoreError.self) { _ = try wrong.lookup([]) }
        #expect(asked.withLock { $0 } >= 1)
        // The server's own refusal (SQLSTATE 28P01), not a connection that failed for another reason.
        guard case .sharedModel(_, let detail)? = error else {
            Issue.record("not the shared model's refusal: \(String(describing: error))")
            return
        }
        #expect(detail.hasPrefix("password authentication failed"), "\(detail)")
    }
}
