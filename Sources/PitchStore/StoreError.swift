import CSQLite
import Glibc

/// Everything that can go wrong with a token database, worded for the mail admin reading a log line: each message
/// names the database path and says what to do.
public enum StoreError: Error, Hashable, CustomStringConvertible {
    /// A read-only open of a database that does not exist (or is still empty): nothing has been trained yet, and
    /// callers fall back to the embedded starter model.
    case missing(path: String)
    /// The file is not an SQLite database at all.
    case notADatabase(path: String)
    /// An SQLite database, but not one of ours; we refuse to add tables to someone else's data.
    case notPitchfilterDatabase(path: String)
    case corrupt(path: String, detail: String)
    /// Another process held the write lock (or, rarely, blocked a reader) for longer than the busy timeout.
    case locked(path: String, waitedMilliseconds: Int32)
    case tokenizerMismatch(path: String, database: String, program: String)
    case schemaTooNew(path: String, found: Int, supported: Int)
    /// An older schema, opened for reading by a user who may not write the file: upgrading it is its owner's to do.
    case schemaNeedsUpgrade(path: String, found: Int, supported: Int)
    /// A write to a read-only file, directory or file system, or through a read-only connection.
    case readOnly(path: String, detail: String)
    case diskFull(path: String)
    /// The file was removed or replaced while it was open: what was written since went with the old file.
    case replacedWhileOpen(path: String)
    case io(path: String, detail: String)
    /// The file or its directory could not be opened or created (permissions, not a directory, …).
    case cannotOpen(path: String, detail: String)
    /// Any other SQLite failure, with its result code for a bug report.
    case sqlite(path: String, code: Int32, detail: String)
    /// A URL (`postgres://…`) where a file path belongs: the host's own database is an SQLite file, and a
    /// PostgreSQL model is `[database] shared_model`.
    case unsupportedLocation(path: String)
    /// A shared model configured in a build without PostgreSQL.
    case sharedModelNotBuilt(path: String)
    /// The shared model's server refused, failed or could not be reached; `path` is its address without the
    /// password.
    case sharedModel(path: String, detail: String)

    public var path: String {
        switch self {
        case .missing(let path), .notADatabase(let path), .notPitchfilterDatabase(let path), .diskFull(let path),
             .replacedWhileOpen(let path),
             .unsupportedLocation(let path), .sharedModelNotBuilt(let path), .sharedModel(let path, _):
            path
        case .corrupt(let path, _), .locked(let path, _), .tokenizerMismatch(let path, _, _),
             .schemaTooNew(let path, _, _), .schemaNeedsUpgrade(let path, _, _), .readOnly(let path, _), .io(let path, _), .cannotOpen(let path, _),
             .sqlite(let path, _, _):
            path
        }
    }

    public var description: String {
        switch self {
        case .missing(let path):
            "no token database at \(path) yet (nothing trained)"
        case .notADatabase(let path):
            "\(path) is not a pitchfilter database (not an SQLite file): move it away or use another --db"
        case .notPitchfilterDatabase(let path):
            "\(path) is an SQLite database of some other program, left untouched: use another --db"
        case .corrupt(let path, let detail):
            "database \(path) is corrupt (\(detail)): restore it from a backup or retrain into a new --db"
        case .locked(let path, let waited):
            "database \(path) stayed locked by another process for \(waited) ms: try again later"
        case .tokenizerMismatch(let path, let database, let program):
            "database \(path) was built with tokenizer \(database); this pitchfilter uses \(program): "
                + "retrain or use another --db"
        case .schemaTooNew(let path, let found, let supported):
            "database \(path) has schema version \(found), newer than this pitchfilter understands "
                + "(\(supported)): upgrade pitchfilter or use another --db"
        case .schemaNeedsUpgrade(let path, let found, let supported):
            "database \(path) has schema version \(found), older than this pitchfilter's (\(supported)), and this "
                + "user may not upgrade it: run any pitchfilter command once as the database's owner, or start "
                + "the service, and it is upgraded; nothing was changed"
        case .readOnly(let path, let detail):
            "cannot write database \(path): \(detail)"
        case .diskFull(let path):
            "cannot write database \(path): the disk or quota is full"
        case .replacedWhileOpen(let path):
            "database \(path) was removed or replaced while it was open: what was written since went with the old "
                + "file, which is gone"
        case .io(let path, let detail):
            "I/O error on database \(path): \(detail)"
        case .cannotOpen(let path, let detail):
            "cannot open database \(path): \(detail)"
        case .sqlite(let path, let code, let detail):
            "database \(path): SQLite error \(code): \(detail)"
        case .unsupportedLocation(let path):
            "\(path) is a URL: the database is an SQLite file on this host (a model shared in PostgreSQL is "
                + "[database] shared_model, in a build with the PostgreSQL trait)"
        case .sharedModelNotBuilt(let path):
            "the shared model \(path) is in PostgreSQL, which this pitchfilter was built without: build it with "
                + "`swift build -c release --static-swift-stdlib --traits PostgreSQL` (README: \"Several mail "
                + "hosts, one model\")"
        case .sharedModel(let path, let detail):
            "shared model \(path): \(detail)"
        }
    }

    /// What the service logs, and `train` and `contacts import` say, when a database was made of an empty file
    /// (`SQLiteTokenStore.beganAsAnEmptyFile`).
    public static let emptyFileWarning =
        "the database was an empty file and is a new database now (if it held one, restore that from a backup)"

    /// Maps an SQLite result code (primary or extended) to the case an admin can act on.
    ///
    /// `message` is `sqlite3_errmsg`; `systemErrno` is `sqlite3_system_errno`, which says *why* an open or a write
    /// failed ("Permission denied", "Read-only file system") far better than SQLite's own text.
    init(code: Int32, path: String, message: String, systemErrno: Int32, busyTimeoutMilliseconds: Int32) {
        let system = systemErrno == 0 ? nil : String(cString: strerror(systemErrno))
        let detail = system.map { "\(message): \($0)" } ?? message
        switch code & 0xff {
        case SQLITE_BUSY, SQLITE_LOCKED, SQLITE_PROTOCOL:
            // SQLITE_PROTOCOL: in WAL mode, a lock on the -shm file that another process kept (a stuck SQLite
            // client), after SQLite's own retries; found by an audit as "SQLite error 15: locking protocol".
            self = .locked(path: path, waitedMilliseconds: busyTimeoutMilliseconds)
        case SQLITE_NOTADB:
            self = .notADatabase(path: path)
        case SQLITE_CORRUPT:
            self = .corrupt(path: path, detail: message)
        case SQLITE_FULL:
            self = .diskFull(path: path)
        case SQLITE_READONLY:
            self = .readOnly(path: path, detail: Self.readOnlyReason(code: code, path: path, system: system))
        case SQLITE_IOERR where systemErrno == ENOSPC || systemErrno == EDQUOT:
            self = .diskFull(path: path)
        case SQLITE_IOERR where systemErrno == EROFS:
            self = .readOnly(path: path, detail: system ?? message)
        case SQLITE_IOERR where systemErrno == EISDIR:
            self = .cannotOpen(path: path, detail: "it is a directory, not a database file")
        case SQLITE_IOERR:
            self = .io(path: path, detail: detail)
        case SQLITE_CANTOPEN where Self.isOnReadOnlyFileSystem(path):
            // SQLite's last system call was its fallback open of the -wal file read-only, whose ENOENT said the
            // database was not there (found by an audit).
            self = .cannotOpen(path: path, detail: "its file system is read-only, and SQLite's WAL mode must create "
                + "its -wal and -shm files beside it, even to read (copy it somewhere writable)")
        case SQLITE_CANTOPEN, SQLITE_PERM, SQLITE_AUTH:
            self = .cannotOpen(path: path, detail: system ?? message)
        default:
            self = .sqlite(path: path, code: code, detail: message)
        }
    }

    /// Whether the file at `path` is there, on a file system mounted read-only.
    private static func isOnReadOnlyFileSystem(_ path: String) -> Bool {
        var info = statvfs()
        return access(path, F_OK) == 0 && statvfs(path, &info) == 0 && info.f_flag & UInt(ST_RDONLY) != 0
    }

    /// SQLite's extended codes say which part is read-only; the admin needs to know which permission to fix.
    private static func readOnlyReason(code: Int32, path: String, system: String?) -> String {
        let directory = path.utf8.lastIndex(of: UInt8(ascii: "/")).map { String(path[..<$0]) } ?? "."
        switch code >> 8 {
        case 6:  // SQLITE_READONLY_DIRECTORY
            return "its directory \(directory.isEmpty ? "/" : directory) is not writable, and SQLite's WAL mode "
                + "must create its -wal and -shm files there, even to read"
        case 5:  // SQLITE_READONLY_CANTINIT
            return "its -shm file is not writable by this user, and SQLite's WAL mode needs it, even to read"
        case 0:  // plain SQLITE_READONLY
            // SQLite makes them with the database's mode: a run while the database was read-only leaves them so,
            // and writes fail after the database is made writable (found by an audit: the message blamed the
            // database, its directory or the file system).
            let stale = [path + "-wal", path + "-shm"].filter { (file: String) in
                access(file, F_OK) == 0 && !isWritable(file)
            }
            if !stale.isEmpty, isWritable(path) {
                let them = stale.count == 1 ? "it" : "them"
                return "\(stale.joined(separator: " and ")) \(stale.count == 1 ? "is" : "are") not writable by this "
                    + "user, though the database is (perhaps made while the database was read-only): give \(them) "
                    + "the database's owner and mode (chown, chmod)"
            }
            return system ?? "the file, its directory or the file system is read-only"
        default:
            return system ?? "the file, its directory or the file system is read-only"
        }
    }

    /// Whether this process may write `path`, by its effective ids (`access` asks for the real ones).
    private static func isWritable(_ path: String) -> Bool {
        faccessat(AT_FDCWD, path, W_OK, AT_EACCESS) == 0
    }
}
