import CLinuxCalls
import ServiceLifecycle

/// Gives the heap's free memory back to the system now and then. glibc keeps what a burst of large messages freed:
/// its threshold for mapping a block on its own rises to the size of each large block freed (up to 32 MiB), so
/// after the first large messages theirs come from the heap's arenas, one per thread, which keep the pages. 40
/// milter sessions of 3 MB messages took the service from 19 MB to about 200 MB of RSS, and it stayed between 96
/// and 197 MB idle; `malloc_trim` brings it to 33–42 MB. Holding the threshold at 1 MiB instead (`mallopt`) kept it
/// at 40 MB too, but mapped and zeroed blocks on every message: 5 KB messages went about 12 % slower.
struct MemoryTrimmer: Service {
    /// Once a minute: a trim walks the arenas' free lists (8 ms after such a burst), and memory held a minute is no
    /// harm.
    var interval: Duration = .seconds(60)
    var trim: @Sendable () -> Void = { _ = pitchfilter_malloc_trim() }

    func run() async throws {
        let interval = interval
        while !Task.isCancelled && !Task.isShuttingDownGracefully {
            // The wait ends at once on a graceful shutdown (the sleep is cancelled): nothing is lost by skipping
            // the last trim.
            do { try await cancelWhenGracefulShutdown { try await Task.sleep(for: interval) } } catch { return }
            if Task.isCancelled || Task.isShuttingDownGracefully { return }
            trim()
        }
    }
}
