import ArgumentParser
import CLinuxCalls
import PitchCommandLine
import PitchMessage
import PitchStore

#if canImport(Glibc)
import Glibc
#endif

/// `pitchfilter backup DESTINATION`: a consistent copy of the database while the filter and the service go on using
/// it, which `cp` cannot give (bogofilter's `bogoutil -d` and SpamAssassin's `sa-learn --backup` answer the same need).
struct Backup: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "backup",
        abstract: "Copy the database to a new file, safely while it is in use.",
        discussion: """
            The copy is one consistent snapshot, taken while the filter, the service and training go on: the \
            training, the learned-message ledger, contacts, the template memory, the \
            quarantine's records and the service's journal. It is written under a temporary name beside \
            DESTINATION (.pitchfilter-backup.partial-…, removed if the run fails or is interrupted; only a run \
            killed with SIGKILL leaves it behind, and it may be deleted), checked with SQLite's \
            quick_check, synced to disk, and only then given its name, readable by its owner alone. DESTINATION \
            must not exist, nor its -wal, -shm or -journal. A shared PostgreSQL model is not in the file: back \
            that database up with pg_dump. `pitchfilter restore` puts a backup back.
            """)

    @OptionGroup var database: DatabaseOption
    @OptionGroup var configuration: ConfigurationOption
    @Argument(help: ArgumentHelp("The new file to write; it must not exist.", valueName: "destination"))
    var destination: String

    func validate() throws {
        if destination.isEmpty { throw ValidationError("the destination needs a path; an empty one is refused") }
        if destination.hasSuffix("/") { throw ValidationError("the destination names a directory; give a file name") }
        // Everywhere else "-" is a standard stream; a copy of a live database is a file SQLite writes and syncs, so
        // it cannot go to standard output (found by an audit: "-" made a file of that name).
        if destination == "-" {
            throw ValidationError("the destination must be a file; standard output (\"-\") cannot take a database copy, "
                + "give ./- for a file of that name")
        }
        // Its bytes reach us as U+FFFD, which would name another file (found by an audit).
        if Environment.lostBytes(destination) {
            throw ValidationError("the destination's name is not UTF-8; give one that is")
        }
    }

    func run() throws {
        let path = try database.path()
        do {
            let size = try Self.backUp(path, to: destination)
            try Stores.writeAnswer("backed up \(TerminalText.safe(path)) to \(TerminalText.safe(destination)): "
                + "\(size) bytes, checked")
        } catch let exit as ExitCode {
            throw exit
        } catch {
            Stores.report(error)
            throw ExitCode(3)
        }
        if (try? CommandLineConfiguration.current.get())?.sharedModel != nil {
            Stores.reportLine("note: the model's counts, totals and ledger are in the shared PostgreSQL model, not in "
                + "this file: back that database up with pg_dump")
        }
    }

    /// Where a destination path puts the copy: its directory, and the temporary name beside it. The name is not
    /// derived from the destination's, which may already be as long as a name can be.
    static func placement(of destination: String, suffix: String,
                          prefix: String = ".pitchfilter-backup.partial-") -> (directory: String, partial: String) {
        let partialName = prefix + suffix
        guard let slash = destination.lastIndex(of: "/") else { return (".", partialName) }
        let directory = slash == destination.startIndex ? "/" : String(destination[..<slash])
        return (directory, String(destination[...slash]) + partialName)
    }

    /// Writes the copy under a temporary name beside `destination`, syncs it, then gives it its name without ever
    /// replacing a file that appeared meanwhile. Whatever fails, no partial copy is left behind.
    static func backUp(_ path: String, to destination: String) throws -> Int {
        // A leftover log of an earlier file of this name would be replayed into the new copy on its first open.
        for suffix in ["", "-wal", "-shm", "-journal"] {
            var info = stat()
            if lstat(destination + suffix, &info) == 0 {
                // A link to a directory too (found in review): stat follows it.
                var target = stat()
                if suffix.isEmpty, stat(destination, &target) == 0, target.st_mode & S_IFMT == S_IFDIR {
                    throw BackupError.directory(path: destination)
                }
                throw BackupError.exists(path: destination + suffix)
            }
        }
        // Said as `stats` says it, not as no database at all (found by an audit).
        if SQLiteTokenStore.isEmptyFile(path) { throw BackupError.emptySource(path: path) }
        let (directory, partial) = try createPartial(for: destination)
        PartialCopy.removeOnSignal(partial)
        var published = false
        defer {
            PartialCopy.removeOnSignal(nil)
            if !published { unlink(partial) }
            for suffix in ["-journal", "-wal", "-shm"] { unlink(partial + suffix) }
        }
        let size = try SQLiteTokenStore.backUp(databaseAt: path, into: partial, destination: destination)
        try sync(partial, naming: destination)
        try publish(partial, as: destination)
        published = true
        do {
            try sync(directory, naming: directory)
        } catch BackupError.file(let directory, let what, let code) {
            throw BackupError.file(path: directory, what: "\(TerminalText.safe(destination)) was written, but " + what,
                                   code: code)
        }
        return size
    }

    /// The empty file the copy is written into, created here with the copy's permissions (it holds correspondents'
    /// addresses and the quarantine's records), under a name no other run can have chosen. `restore` makes its
    /// copy of a backup the same way, beside the database.
    static func createPartial(for destination: String, prefix: String = ".pitchfilter-backup.partial-") throws
        -> (directory: String, partial: String) {
        for _ in 0..<8 {
            let (directory, partial) = placement(of: destination,
                                                 suffix: String(UInt64.random(in: 0...UInt64.max), radix: 16),
                                                 prefix: prefix)
            let created = open(partial, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC | O_NOFOLLOW, 0o600)
            let reason = errno
            if created >= 0 {
                close(created)
                return (directory, partial)
            }
            if reason != EEXIST {
                throw BackupError.file(path: destination,
                                       what: "cannot create a file in \(TerminalText.safe(directory))", code: reason)
            }
        }
        throw BackupError.file(path: destination, what: "cannot create a file beside it", code: EEXIST)
    }

    /// The copy gets its name atomically and only if the name is free: renameat2's RENAME_NOREPLACE, else (a file
    /// system without it, such as NFS) a hard link, else (vfat and some FUSE mounts have no links) a rename after a
    /// last check, the one way left there.
    private static func publish(_ partial: String, as destination: String) throws {
        if pitchfilter_rename_noreplace(partial, destination) == 0 { return }
        var reason = errno
        if reason == EINVAL || reason == ENOSYS {
            if link(partial, destination) == 0 {
                unlink(partial)
                return
            }
            reason = errno
            if reason == EPERM || reason == ENOTSUP {
                var info = stat()
                guard lstat(destination, &info) != 0 else { throw BackupError.exists(path: destination) }
                if rename(partial, destination) == 0 { return }
                reason = errno
            }
        }
        if reason == EEXIST { throw BackupError.exists(path: destination) }
        throw BackupError.file(path: destination, what: "cannot give the copy this name", code: reason)
    }

    private static func sync(_ path: String, naming name: String) throws {
        let descriptor = open(path, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else {
            let reason = errno
            throw BackupError.file(path: name, what: "cannot open it to sync it to disk", code: reason)
        }
        defer { close(descriptor) }
        guard fsync(descriptor) == 0 else {
            let reason = errno
            throw BackupError.file(path: name, what: "cannot sync it to disk", code: reason)
        }
    }
}

/// Ctrl-C, SIGTERM or SIGHUP in the middle of a copy would otherwise leave a hidden file the size of the database
/// (found by an audit). The handler may only make async-signal-safe calls, so the paths wait in C strings made
/// before the copy starts.
enum PartialCopy {
    /// The copy and SQLite's three files beside it: plain pointers, which the handler reads without retaining.
    nonisolated(unsafe) private static let paths: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?> = {
        let paths = UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>.allocate(capacity: 4)
        paths.initialize(repeating: nil, count: 4)
        return paths
    }()
    nonisolated(unsafe) private static var armed = false

    /// Removes `path` and SQLite's files beside it if one of those signals ends the process; nil disarms.
    static func removeOnSignal(_ path: String?) {
        armed = false
        for index in 0..<4 {
            free(paths[index])
            paths[index] = nil
        }
        guard let path else { return }
        for (index, suffix) in ["", "-journal", "-wal", "-shm"].enumerated() { paths[index] = strdup(path + suffix) }
        armed = true
        for signal in [SIGINT, SIGTERM, SIGHUP] {
            Glibc.signal(signal) { received in
                if PartialCopy.armed {
                    for index in 0..<4 { if let path = PartialCopy.paths[index] { unlink(path) } }
                }
                Glibc.signal(received, SIG_DFL)
                raise(received)
            }
        }
    }
}

/// The backup's own files, beside SQLite's errors (`StoreError`).
enum BackupError: Error, CustomStringConvertible {
    case exists(path: String)
    case directory(path: String)
    case emptySource(path: String)
    case file(path: String, what: String, code: Int32)

    var description: String {
        switch self {
        case .exists(let path):
            "\(TerminalText.safe(path)) exists: a backup never replaces a file, give a new name"
        case .directory(let path):
            "\(TerminalText.safe(path)) is a directory: give the backup a file name (in it, say)"
        case .emptySource(let path):
            "\(TerminalText.safe(path)) is an empty file, not a database: nothing to back up (nothing has been "
                + "written to it, or it was emptied; if it held a database, restore it from a backup)"
        case let .file(path, what, code):
            "\(TerminalText.safe(path)): \(what): \(String(cString: strerror(code)))"
        }
    }
}
