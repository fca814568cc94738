#if canImport(Glibc)
import Glibc
#endif

/// Linux inotify for Maildir directories: tells the watcher a file arrived instead of making it list directories.
///
/// Events are a hint, never the record: the queue can overflow and nothing is delivered while the service is
/// stopped, so the watcher also scans at start-up and periodically. Written over the C API because no Swift
/// package here wraps inotify, and the call sequence is short.
public final class Inotify {
    public struct Event: Sendable {
        public let watch: Int32
        public let mask: UInt32
        public let name: String

        /// The kernel dropped events: everything must be rescanned.
        public var overflowed: Bool { mask & UInt32(IN_Q_OVERFLOW) != 0 }
    }

    /// File arrivals (link, rename by an MDA or a client) and directory removal.
    /// IN_CLOSE_WRITE: a file written straight into new/ (not through tmp/) is complete only then.
    /// IN_DONT_FOLLOW: a link in place of new/ would have the service watch, and then read and move, whatever it
    /// points to (found in review).
    public static let arrivals = UInt32(IN_CREATE | IN_MOVED_TO | IN_CLOSE_WRITE | IN_DELETE_SELF | IN_ONLYDIR
                                        | IN_DONT_FOLLOW)

    /// The mailbox root's changes (folders made, renamed, removed). The root may be a link, the admin's choice
    /// (`Maildir.subfolders` follows it too): IN_DONT_FOLLOW would make that watch fail with ENOTDIR, and new
    /// folders wait for the periodic scan (found in review).
    public static let rootChanges = arrivals & ~UInt32(IN_DONT_FOLLOW)

    public let descriptor: Int32

    public init() throws(MaildirError) {
        descriptor = inotify_init1(Int32(IN_NONBLOCK | IN_CLOEXEC))
        if descriptor < 0 { throw MaildirError("start", "inotify") }
    }

    deinit { close(descriptor) }

    public func watch(_ path: String, mask: UInt32 = Inotify.arrivals) throws(MaildirError) -> Int32 {
        let watch = inotify_add_watch(descriptor, path, mask)
        if watch < 0 { throw MaildirError("watch", path) }
        return watch
    }

    public func unwatch(_ watch: Int32) {
        inotify_rm_watch(descriptor, watch)
    }

    /// The events queued now; empty when there are none (the descriptor is non-blocking).
    public func read() -> [Event] {
        var events: [Event] = []
        var buffer = [UInt8](repeating: 0, count: 64 << 10)
        while true {
            let count = buffer.withUnsafeMutableBytes { Glibc.read(descriptor, $0.baseAddress!, $0.count) }
            if count < 0 && errno == EINTR { continue }
            guard count > 0 else { return events }
            buffer.withUnsafeBytes { raw in
                var offset = 0
                let header = MemoryLayout<inotify_event>.size
                while offset + header <= count {
                    // Events are packed with variable-length names, so they may sit at any alignment.
                    let event = raw.loadUnaligned(fromByteOffset: offset, as: inotify_event.self)
                    let nameBytes = raw[(offset + header)..<min(count, offset + header + Int(event.len))]
                    events.append(Event(watch: event.wd, mask: event.mask,
                                        name: String(decoding: nameBytes.prefix { $0 != 0 }, as: UTF8.self)))
                    offset += header + Int(event.len)
                }
            }
        }
    }
}

/// A way to wake a thread sleeping in poll(2) from another thread: a pipe whose read end the sleeper also polls.
/// (Glibc's module does not export eventfd.) Both ends are non-blocking: a full pipe already means "wake up".
public final class Wakeup: Sendable {
    public let descriptor: Int32
    private let writeEnd: Int32

    public init() throws(MaildirError) {
        var ends: [Int32] = [0, 0]
        if pipe(&ends) != 0 { throw MaildirError("start", "a wake-up pipe") }
        for end in ends {
            _ = fcntl(end, F_SETFL, fcntl(end, F_GETFL) | O_NONBLOCK)
            _ = fcntl(end, F_SETFD, FD_CLOEXEC)
        }
        descriptor = ends[0]
        writeEnd = ends[1]
    }

    deinit {
        close(descriptor)
        close(writeEnd)
    }

    public func signal() {
        var one: UInt8 = 1
        _ = write(writeEnd, &one, 1)
    }

    public func drain() {
        var buffer = [UInt8](repeating: 0, count: 64)
        while buffer.withUnsafeMutableBytes({ Glibc.read(descriptor, $0.baseAddress!, $0.count) }) > 0 {}
    }
}

public enum Poll {
    /// Waits until one of `descriptors` is readable or `milliseconds` pass; returns the readable ones.
    public static func readable(_ descriptors: [Int32], milliseconds: Int32) -> Set<Int32> {
        var entries = descriptors.map { pollfd(fd: $0, events: Int16(POLLIN), revents: 0) }
        let count = poll(&entries, nfds_t(entries.count), milliseconds)
        guard count > 0 else { return [] }
        return Set(entries.filter { $0.revents != 0 }.map(\.fd))
    }
}
