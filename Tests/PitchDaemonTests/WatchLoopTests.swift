import Testing
@testable import PitchDaemon

/// How the Maildir loop orders its work: retries, and the events of several mailboxes.
@Suite struct WatchLoopTests {
    /// Found by an audit: a file held open by its writer, or a full disk, had every mailbox read whole every 2 s,
    /// back to back at 100,000 messages. A mailbox's wait doubles while its retries fail, up to the scan interval,
    /// and is gone once nothing fails; found in review: one mailbox's wait held back every other's failures. Each
    /// waits on its own, and a failure outside a scan is tried 2 s later whatever its mailbox's wait.
    @Test func eachMailboxWaitsOnItsOwnAndLongerWhileItKeepsFailing() {
        var retries = Retries()
        retries.scanned("a", failing: true, at: 0, scanInterval: 60)
        #expect(retries.next == 2 && retries.due(at: 1.9) == [] && retries.due(at: 2) == ["a"])
        for (now, due) in [(2.0, 6.0), (6.0, 14.0), (14.0, 30.0), (30.0, 62.0), (62.0, 122.0), (122.0, 182.0)] {
            retries.scanned("a", failing: true, at: now, scanInterval: 60)
            #expect(retries.next == due)
        }
        // Another mailbox's failure, and a new one in the first: 2 s each.
        retries.failed("b", at: 130)
        #expect(retries.due(at: 132) == ["b"])
        retries.failed("a", at: 140)
        #expect(retries.due(at: 142) == ["a", "b"])
        retries.scanned("b", failing: false, at: 142, scanInterval: 60)
        #expect(retries.due(at: 142) == ["a"] && !retries.waits("b"))
        // The wait it had goes on doubling while it fails; nothing failing, it is gone.
        retries.scanned("a", failing: true, at: 142, scanInterval: 60)
        #expect(retries.next == 202)
        retries.scanned("a", failing: false, at: 202, scanInterval: 60)
        #expect(retries.next == nil)
        // A scan interval shorter than the first wait: no shorter than it.
        retries.scanned("c", failing: true, at: 0, scanInterval: 1)
        retries.scanned("c", failing: true, at: 2, scanInterval: 1)
        #expect(retries.next == 4)
    }

    /// Found by an audit: one message to another mailbox waited 25 s behind a burst of 8,000 into the first. The
    /// events take turns by mailbox, each mailbox's in their order, also across reads of the queue.
    @Test func eachMailboxsEventsTakeTheirTurn() {
        var turns = Turns<String>()
        func mailbox(_ event: String) -> String? { event.hasPrefix("x") ? nil : String(event.prefix(1)) }
        turns.add(["a1", "a2", "a3", "a4", "b1", "x1", "a5", "b2"], by: mailbox)
        #expect(turns.take(5) == ["a1", "b1", "x1", "a2", "b2"])
        turns.add(["c1", "c2", "b3"], by: mailbox)
        #expect(turns.take(3) == ["c1", "b3", "a3"])
        #expect(!turns.isEmpty)
        #expect(turns.take(10) == ["c2", "a4", "a5"])
        #expect(turns.isEmpty)
        #expect(turns.take(1) == [])
    }

    /// Found in review: a scan handled its mailbox's whole backlog before the loop came back to the queue, and one
    /// message to another mailbox waited 66 s behind 10,000. A scan now lends the loop the thread for the other
    /// mailboxes' events; the scanned mailbox's events wait, in their order and in their place in the turns.
    @Test func aScanLetsTheOtherMailboxesEventsTakeTheirTurn() {
        var turns = Turns<String>()
        turns.add(["a1", "b1", "a2", "c1", "b2", "c2"]) { String($0.prefix(1)) }
        #expect(turns.take(3) { $0 != "a" } == ["b1", "c1", "b2"])
        #expect(turns.take(3) { $0 == "z" } == [])
        #expect(turns.take(3) { $0 != "a" } == ["c2"])
        #expect(!turns.isEmpty)
        #expect(turns.take(3) == ["a1", "a2"])
        #expect(turns.isEmpty)
    }

    /// Found in review: while a scan lends the loop the thread, the scanned mailbox's events wait, those its own
    /// changes make among them, and they piled up without bound. Past the limit a mailbox's events are dropped and
    /// it is to be scanned instead, as at the kernel's own limit; the others keep theirs and their turns.
    @Test func aMailboxWithTooManyEventsWaitingIsScannedInstead() {
        var turns = Turns<String>()
        func mailbox(_ event: String) -> String? { String(event.prefix(1)) }
        #expect(turns.add(["a1", "b1", "a2", "c1"], limit: 2, by: mailbox) == [])
        #expect(turns.take(1) == ["a1"])
        #expect(turns.add(["a3", "a4", "b2", "a5"], limit: 2, by: mailbox) == ["a"])
        #expect(turns.take(10) == ["b1", "c1", "b2"])
        #expect(turns.isEmpty)
        // Its later events wait again.
        #expect(turns.add(["a6"], limit: 2, by: mailbox) == [])
        #expect(turns.take(10) == ["a6"])
    }
}
