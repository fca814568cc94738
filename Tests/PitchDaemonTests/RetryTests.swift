import Testing
@testable import PitchDaemon

/// How soon the Maildir loop tries a failed change again.
@Suite struct RetryTests {
    /// Found by an audit: a file held open by its writer, or a full disk, had every mailbox read whole every 2 s,
    /// back to back at 100,000 messages. The wait doubles while the failure comes back, up to the scan interval, and
    /// is 2 s again once nothing fails.
    @Test(arguments: [
        (2.0, true, 60, 4.0), (4.0, true, 60, 8.0), (32.0, true, 60, 60.0), (60.0, true, 60, 60.0),
        (60.0, false, 60, 2.0), (2.0, false, 60, 2.0),
        // A scan interval shorter than the first wait: no shorter than it.
        (2.0, true, 1, 2.0),
    ])
    func theRetryWaitDoublesWhileTheFailureComesBack(delay: Double, failing: Bool, interval: Int, next: Double) {
        #expect(MaildirService.retryDelay(after: delay, stillFailing: failing, scanInterval: interval) == next)
    }
}
