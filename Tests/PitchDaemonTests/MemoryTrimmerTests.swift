import Logging
import ServiceLifecycle
import Synchronization
import Testing
@testable import PitchDaemon

@Suite struct MemoryTrimmerTests {
    struct TimedOut: Error {}

    /// Runs `trimmer` in a service group, calls `then` while it runs, shuts the group down gracefully, and waits
    /// for it to stop: throws `TimedOut` if it has not 30 seconds after the shutdown began. (Counted from then, not
    /// from the start: the suite's other tests may keep these tasks waiting for their turn far longer.)
    static func run(_ trimmer: MemoryTrimmer, then: @escaping @Sendable () async throws -> Void) async throws {
        enum Done { case stopped }
        let group = ServiceGroup(services: [trimmer], logger: Logger(label: "test"))
        try await withThrowingTaskGroup(of: Done.self) { tasks in
            defer { tasks.cancelAll() }
            tasks.addTask {
                try await group.run()
                return .stopped
            }
            tasks.addTask {
                try await then()
                await group.triggerGracefulShutdown()
                try await Task.sleep(for: .seconds(30))
                throw TimedOut()
            }
            _ = try await tasks.next()  // the group's run, stopped; or TimedOut
        }
    }

    @Test func trimsAtItsInterval() async throws {
        let trims = Atomic<Int>(0)
        try await Self.run(MemoryTrimmer(interval: .milliseconds(20)) { trims.add(1, ordering: .relaxed) }) {
            // At most 3,000 turns of 10 ms: a trimmer that never trims fails below rather than hang.
            for _ in 0..<3_000 where trims.load(ordering: .relaxed) < 3 { try await Task.sleep(for: .milliseconds(10)) }
        }
        #expect(trims.load(ordering: .relaxed) >= 3)
    }

    /// A minute's sleep (an hour's here) would hold up the service's stop: the graceful shutdown cancels it, and
    /// `run` returns rather than throw `TimedOut`.
    @Test func aGracefulShutdownEndsTheWaitAtOnce() async throws {
        try await Self.run(MemoryTrimmer(interval: .seconds(3_600)) {}) {
            try await Task.sleep(for: .milliseconds(50))
        }
    }
}
