#if canImport(Glibc)
import Glibc
#endif

/// A file-system call on a Maildir failed. Worded for the log line an admin reads: the operation, the path and
/// the system's reason.
public struct MaildirError: Error, Hashable, CustomStringConvertible {
    public let operation: String
    public let path: String
    public let errno: Int32

    public init(_ operation: String, _ path: String, errno: Int32 = Glibc.errno) {
        self.operation = operation
        self.path = path
        self.errno = errno
    }

    /// Out of disk or quota: worth a retry once space is freed, never a reason to give up on the message.
    public var isDiskFull: Bool { errno == ENOSPC || errno == EDQUOT }
    /// The file went away between listing and use: a client moved or deleted it, which is not an error.
    public var isMissing: Bool { errno == ENOENT }

    public var description: String {
        "cannot \(operation) \(path): \(String(cString: strerror(errno)))"
    }
}
