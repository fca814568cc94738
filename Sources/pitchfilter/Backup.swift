import ArgumentParser
import PitchCommandLine
import PitchMessage
import PitchStore

#if canImport(Glibc)
import Glibc
#endif

/// `pitchfilter backup DEST`: a consistent copy of the database while the filter and the service go on using it,
/// which `cp` cannot give (bogofilter's `bogoutil -d` and SpamAssassin's `sa-learn --backup` answer the same need).
struct Backup: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "backup",
        abstract: "Copy the database to a new file, safely while it is in use.",
        discussion: """
            The copy is one consistent snapshot, taken while the filter, the service and training go on: the \
            training, the learned-message ledger, contacts, the template and message-id memories, the \
            quarantine's records and the service's journal. It is checked with SQLite's quick_check, synced to \
            disk and only then given its name, readable by its owner alone; DESTINATION must not exist. A shared \
            PostgreSQL model is not in the file: back that database up with pg_dump. To restore, stop the \
            service, remove the database's -wal and -shm files, and copy the backup into its place.
            """)

    @OptionGroup var database: DatabaseOption
    @Argument(help: ArgumentHelp("The new file to write; it must not exist.", valueName: "destination"))
    var destination: String

    func validate() throws {
        if destination.isEmpty { throw ValidationError("the destination needs a path; an empty one is refused") }
    }

    func run() throws {
        let path = try database.path()
        var info = stat()
        guard lstat(destination, &info) != 0 else {
            Stores.reportLine("\(TerminalText.safe(destination)) exists: a backup never replaces a file, give a new name")
            throw ExitCode(3)
        }
        let size: Int
        do {
            size = try Self.backUp(path, to: destination)
        } catch {
            Stores.report(error)
            throw ExitCode(3)
        }
        print("backed up \(path) to \(destination): \(size) bytes, checked")
        if (try? CommandLineConfiguration.current.get())?.sharedModel != nil {
            Stores.reportLine("note: the model's counts, totals and ledger are in the shared PostgreSQL model, not in "
                + "this file: back that database up with pg_dump")
        }
    }

    /// Writes the copy under a temporary name beside `destination`, syncs it, then links it to its name, which
    /// fails rather than replace a file that appeared meanwhile. Whatever fails, no partial copy is left behind.
    static func backUp(_ path: String, to destination: String) throws -> Int {
        let slash = destination.lastIndex(of: "/")
        let directory = slash.map { $0 == destination.startIndex ? "/" : String(destination[..<$0]) } ?? "."
        let name = slash.map { String(destination[destination.index(after: $0)...]) } ?? destination
        let partial = (directory == "/" ? "" : directory) + "/.\(name).partial-\(getpid())"
        // Created here so that SQLite opens an empty file with these permissions: the copy holds correspondents'
        // addresses and the quarantine's records.
        let created = open(partial, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC | O_NOFOLLOW, 0o600)
        guard created >= 0 else {
            throw BackupError.file(destination, "cannot create a file in \(TerminalText.safe(directory))", errno)
        }
        close(created)
        defer {
            for suffix in ["", "-journal", "-wal", "-shm"] { unlink(partial + suffix) }
        }
        let size = try SQLiteTokenStore.backUp(databaseAt: path, into: partial)
        try sync(partial)
        guard link(partial, destination) == 0 else {
            throw BackupError.file(destination, errno == EEXIST ? "it appeared while the copy was written"
                                                                : "cannot give the copy this name", errno)
        }
        try sync(directory)
        return size
    }

    private static func sync(_ path: String) throws {
        let descriptor = open(path, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else { throw BackupError.file(path, "cannot open it to sync", errno) }
        defer { close(descriptor) }
        guard fsync(descriptor) == 0 else { throw BackupError.file(path, "cannot sync it to disk", errno) }
    }
}

/// A file of the backup itself, beside SQLite's errors (`StoreError`).
enum BackupError: Error, CustomStringConvertible {
    case file(String, String, Int32)

    var description: String {
        switch self {
        case let .file(path, what, code): "\(TerminalText.safe(path)): \(what): \(String(cString: strerror(code)))"
        }
    }
}
