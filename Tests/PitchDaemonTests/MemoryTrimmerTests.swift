import Logging
import ServiceLifecycle
import Synchronization
import Testing
@testable import PitchDaemon

@Suite struct MemoryTrimmerTests {
    struct TimedOut: Error {}

    /// Runs `trimmer` in a service group, calls `then` while it runs, shuts the group down gracefully, and waits
    /// for it to stop: throws `TimedOut` if all that takes more than 30 seconds.
    static func run(_ trimmer: MemoryTrimmer, then: @escaping @Sendable () async throws -> Void) async throws {
        enum Done { case stopped, shutDown }
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
                return .shutDown
            }
            tasks.addTask {
                try await Task.sleep(for: .seconds(30))
                throw TimedOut()
            }
            while try await tasks.next() != .stopped {}
        }
    }

    @Test func trimsAtItsInterval() async throws {
        let trims = Atomic<Int>(0)
        try await Self.run(MemoryTrimmer(interval: .milliseconds(20)) { trims.add(1, ordering: .relaxed) }) {
            while trims.load(ordering: .relaxed) < 3 { try await Task.sleep(for: .milliseconds(10)) }
        }
        #expect(trims.load(ordering: .relaxed) >= 3)
    }

    /// A minute's sleep would hold up the service's stop: the graceful shutdown cancels it.
    @Test func aGracefulShutdownEndsTheWaitAtOnce() async throws {
        let trims = Atomic<Int>(0)
        try await Self.run(MemoryTrimmer(interval: .seconds(3_600)) { trims.add(1, ordering: .relaxed) }) {
            try await Task.sleep(for: .milliseconds(50))
        }
        #expect(trims.load(ordering: .relaxed) == 0)
    }
}
