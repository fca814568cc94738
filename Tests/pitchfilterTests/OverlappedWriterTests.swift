@testable import pitchfilter
import PitchClassifier
import PitchEngine
import PitchStore
import PitchTokenizer
import Testing

/// The training writer when a write fails: the failure comes back to the caller, nothing after it is written,
/// and nobody waits forever for a slot or for the queue.
@Suite struct OverlappedWriterTests {
    static func batch(_ name: String, count: Int) -> [TrainingItem] {
        (0..<count).map { index in
            TrainingItem(digest: MessageDigest.sha256(Array("\(name)-\(index)".utf8)),
                         tokens: [TokenID(hashing: "\(name)-\(index)"), TokenID(hashing: "shared")], target: .pitch)
        }
    }

    @Test func aFailedCommitStopsTheRunWithNothingCommitted() throws {
        let scratch = try Scratch()
        let path = scratch.path("db.sqlite")
        _ = try SQLiteTokenStore(path: path, tokenizerIdentity: Engine.tokenizerIdentity, access: .readWrite)
        // A read-only connection predicts from the ledger like any other, and fails at the first commit.
        let store = try SQLiteTokenStore(path: path, tokenizerIdentity: Engine.tokenizerIdentity, access: .readOnly)
        // The first batch's 20 token ids reach the limit: its commit fails.
        let writer = OverlappedWriter(store: store, tokenLimit: 15)
        try writer.submit(Self.batch("a", count: 10), sightings: [])
        // More work than there are slots: whatever was queued after the failure is skipped, not run. A submit
        // waiting for a slot gets it once the failed write has ended, so the one after it sees the failure.
        var refused = 0
        for round in 0..<(2 * OverlappedWriter.maxQueued) {
            do { try writer.submit(Self.batch("b\(round)", count: 10), sightings: []) } catch { refused += 1 }
        }
        #expect(refused > 0)
        #expect(throws: StoreError.self) { try writer.finish() }
        #expect(throws: StoreError.self) { try writer.submit(Self.batch("c", count: 1), sightings: []) }
        #expect(writer.progress.summary == "learned 0, already known 0, moved 0, forgotten 0, not known 0")
        let check = try SQLiteTokenStore(path: path, tokenizerIdentity: Engine.tokenizerIdentity, access: .readOnly)
        #expect(try check.counts(of: [TokenID(hashing: "shared")]).totals == ClassTotals())
    }

    /// Found by an audit: a run killed (or out of disk) after its last commit and before its end's writes left a
    /// model that looked complete with no contact and no agreement; and a run killed before any commit left the
    /// template sightings of messages it never learned. The end's writes, the items and their sightings now
    /// commit together or not at all.
    @Test(arguments: [false, true])
    func theRunsEndItsLastItemsAndTheirSightingsCommitTogether(endFails: Bool) throws {
        struct Refused: Error {}
        let scratch = try Scratch()
        let path = scratch.path("db.sqlite")
        let store = try SQLiteTokenStore(path: path, tokenizerIdentity: Engine.tokenizerIdentity, access: .readWrite)
        let writer = OverlappedWriter(store: store)
        let sighting = TemplateSighting(bands: [1, 2, 3, 4], sender: 1, recipient: 2,
                                        message: 7)
        try writer.submit(Self.batch("a", count: 10), sightings: [sighting])
        let finishing = {
            try writer.finish {
                _ = try store.addHamSenders([HamSender(digest: [1], address: "b@friend.example")], at: 1)
                if endFails { throw Refused() }
            }
        }
        if endFails {
            #expect(throws: Refused.self) { try finishing() }
        } else {
            try finishing()
        }
        #expect(writer.progress.summary == "learned \(endFails ? 0 : 10), already known 0, moved 0, forgotten 0, "
            + "not known 0")
        let check = try SQLiteTokenStore(path: path, tokenizerIdentity: Engine.tokenizerIdentity, access: .readOnly)
        #expect(try check.counts(of: [TokenID(hashing: "shared")]).totals
            == (endFails ? ClassTotals() : ClassTotals(pitch: 10, ham: 0)))
        let other = TemplateSighting(bands: [1, 2, 3, 4], sender: 3, recipient: 2,
                                     message: 8)
        #expect(try check.sightings(like: other, since: 0).memoryIsEmpty == endFails)
        #expect(try check.relationship(with: "b@friend.example") == (endFails ? .unknown : .knownAddress))
    }

    /// Found in review: a run that failed while reading committed what was pending on its way out, without the
    /// run's end (its contacts). Abandoned, it commits nothing more.
    @Test func anAbandonedRunCommitsNothingMore() throws {
        let scratch = try Scratch()
        let store = try SQLiteTokenStore(path: scratch.path("db.sqlite"), tokenizerIdentity: Engine.tokenizerIdentity,
                                         access: .readWrite)
        let writer = OverlappedWriter(store: store)
        try writer.submit(Self.batch("a", count: 10), sightings: [])
        writer.abandon()
        #expect(writer.progress.summary == "learned 0, already known 0, moved 0, forgotten 0, not known 0")
        #expect(try store.counts(of: [TokenID(hashing: "shared")]).totals == ClassTotals())
    }

    @Test func batchesQueuedBehindTheWriterAreAllCommittedInOrder() throws {
        let scratch = try Scratch()
        let store = try SQLiteTokenStore(path: scratch.path("db.sqlite"), tokenizerIdentity: Engine.tokenizerIdentity,
                                         access: .readWrite)
        // A commit every third batch (10 token ids each), while later batches wait in the queue.
        let writer = OverlappedWriter(store: store, tokenLimit: 25)
        for round in 0..<(3 * OverlappedWriter.maxQueued) {
            try writer.submit(Self.batch("r\(round)", count: 5), sightings: [])
        }
        // The first message again after the others, as ham: moved, so long as it comes after its first learning.
        // Committed out of order, it would be learned as ham and then moved back to a pitch.
        let first = try #require(Self.batch("r0", count: 1).first)
        try writer.submit([TrainingItem(digest: first.digest, tokens: first.tokens, target: .ham)], sightings: [])
        try writer.finish()
        #expect(writer.progress.summary == "learned 45, already known 0, moved 1, forgotten 0, not known 0")
        #expect(try store.ledgerClass(of: first.digest) == .ham)
        let shared = try store.counts(of: [TokenID(hashing: "shared")])
        #expect(shared.totals == ClassTotals(pitch: 44, ham: 1))
        #expect(shared.counts == [TokenCounts(pitch: 44, ham: 1)])
    }
}
