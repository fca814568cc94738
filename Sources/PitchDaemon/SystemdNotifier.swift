import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// sd_notify(3) without libsystemd: one datagram to the socket systemd names in `$NOTIFY_SOCKET`.
///
/// libsystemd-dev is not a dependency worth taking for twenty lines, and installing it on the build host upgrades
/// systemd packages. Outside systemd (`$NOTIFY_SOCKET` unset) every call does nothing.
public struct SystemdNotifier: Sendable {
    let socketPath: String?

    public init(environment: (String) -> String?) {
        socketPath = environment("NOTIFY_SOCKET").flatMap { $0.isEmpty ? nil : $0 }
    }

    public static let disabled = SystemdNotifier(environment: { _ in nil })

    /// READY=1 once each of `parts` has said it is ready: the Maildir loop watching, the milter and the metrics
    /// listening. Sent by the loop alone, it could come before the milter was bound, or had failed to bind (found by
    /// an audit: the unit, which starts before the MTA so that the milter is there when Postfix connects, was
    /// started, and the MTA let through, with the port taken by another process).
    public final class Startup: Sendable {
        private let notifier: SystemdNotifier
        private let state: Mutex<(waiting: Int, status: String?)>

        public init(notifier: SystemdNotifier, parts: Int) {
            self.notifier = notifier
            state = Mutex((parts, nil))
        }

        /// Whether READY=1 has been sent: until then a reload says neither RELOADING=1 nor READY=1, which systemd
        /// would take for the end of the start (found in review).
        public var isComplete: Bool { state.withLock { $0.waiting <= 0 } }

        /// One part is ready; `status` is what systemd shows for the unit, the latest given.
        public func ready(status: String? = nil) {
            let (done, status) = state.withLock { state -> (Bool, String?) in
                state.waiting -= 1
                if let status { state.status = status }
                return (state.waiting == 0, state.status)
            }
            if done { notifier.notify(ready: true, status: status) }
        }
    }

    public func notify(ready: Bool = false, reloading: Bool = false, stopping: Bool = false, status: String? = nil) {
        var lines: [String] = []
        if ready { lines.append("READY=1") }
        if reloading { lines.append("RELOADING=1") }
        if stopping { lines.append("STOPPING=1") }
        if let status { lines.append("STATUS=" + status.filter { $0 != "\n" }) }
        send(lines.joined(separator: "\n"))
    }

    private func send(_ text: String) {
        guard let socketPath, !text.isEmpty else { return }
        // "@name" is an abstract socket: its address starts with a zero byte instead of the "@".
        var path = Array(socketPath.utf8)
        if path.first == UInt8(ascii: "@") { path[0] = 0 }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        guard path.count < MemoryLayout.size(ofValue: address.sun_path) else { return }
        withUnsafeMutableBytes(of: &address.sun_path) { $0.copyBytes(from: path) }
        let fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { return }
        defer { close(fd) }
        let length = socklen_t(MemoryLayout<sa_family_t>.size + path.count)
        let bytes = Array(text.utf8)
        _ = withUnsafePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { socketAddress in
                sendto(fd, bytes, bytes.count, Int32(MSG_NOSIGNAL), socketAddress, length)
            }
        }
    }
}
