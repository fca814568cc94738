#if canImport(Glibc)
import Glibc
#endif

/// A file-system call on a Maildir failed. Worded for the log line an admin reads: the operation, the path and
/// the system's reason.
public struct MaildirError: Error, Hashable, CustomStringConvertible {
    public let operation: String
    public let path: String
    public let errno: Int32
    /// The file is a FIFO, device, socket or directory, where a message file should be (no errno says that).
    public let isNotARegularFile: Bool

    public init(_ operation: String, _ path: String, errno: Int32 = Glibc.errno) {
        self.operation = operation
        self.path = path
        self.errno = errno
        isNotARegularFile = false
    }

    private init(notARegularFile path: String) {
        operation = "read"
        self.path = path
        errno = 0
        isNotARegularFile = true
    }

    public static func notARegularFile(_ path: String) -> MaildirError { MaildirError(notARegularFile: path) }

    /// Out of disk or quota: worth a retry once space is freed, never a reason to give up on the message.
    public var isDiskFull: Bool { errno == ENOSPC || errno == EDQUOT }
    /// The file went away between listing and use: a client moved or deleted it, which is not an error.
    public var isMissing: Bool { errno == ENOENT }

    /// A symbolic link, FIFO, device or socket where a message file should be (`FileBytes.read`).
    public var isNotAMessageFile: Bool { errno == ELOOP || isNotARegularFile }

    private static func isLink(_ path: String) -> Bool {
        var info = stat()
        return lstat(path, &info) == 0 && info.st_mode & S_IFMT == S_IFLNK
    }

    public var description: String {
        // Met through O_NOFOLLOW, or a check before it, where the name itself is a link: not a loop (found by an
        // audit: "too many levels of symbolic links" for a .Pitches that was one link). A genuine loop, or one on
        // the way to the name, keeps the system's words (found in review).
        let reason = isNotARegularFile ? "not a regular file"
            : errno == ELOOP && Self.isLink(path) ? "it is a symbolic link, which pitchfilter does not follow in a Maildir"
            : String(cString: strerror(errno))
        return "cannot \(operation) \(path): \(reason)"
    }
}
