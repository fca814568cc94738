import ArgumentParser
import CLinuxCalls
import PitchClassifier
import PitchCommandLine
import PitchEngine
import PitchMessage
import PitchStore

#if canImport(Glibc)
import Glibc
#endif

/// `pitchfilter restore BACKUP`: a backup's training put back into the database while the filter and the service
/// go on using it, as `sa-learn --restore` and bogofilter's `bogoutil -l` put theirs back. The README's way before
/// it (stop every writer, remove the log, move the file into place) left the service learning as pitches the
/// messages it had quarantined since the backup, for want of their records (found by an audit).
struct Restore: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "restore",
        abstract: "Put a backup's training back into the database, safely while it is in use.",
        discussion: """
            BACKUP (a file `pitchfilter backup` wrote) is checked with SQLite's quick_check and copied beside the \
            database (.pitchfilter-restore.partial-…, removed when the run ends or is interrupted; one a run \
            killed with SIGKILL leaves is removed by a later restore once it is a minute old), where one from an \
            earlier version is \
            brought up to date; BACKUP itself is never changed. Then, in one transaction, the database's token \
            counts, learned-message ledger, contacts and template memory are replaced by the backup's: the filter \
            and the service go on meanwhile, and each message is scored with the training as it was or as \
            restored. The quarantine's records and the service's journal of the Maildirs stay as they are, since \
            they describe the mail as it is now, and so do the addresses you wrote to since the backup, which stay \
            known; into a new database (no quarantine records and no journal), the backup's records are taken \
            too. What was trained since the backup is lost, as with any restore; let no `train` run meanwhile. \
            With a shared PostgreSQL model the training is not in the file: restore that database with pg_restore.
            """)

    @OptionGroup var database: DatabaseOption
    @OptionGroup var configuration: ConfigurationOption
    @Argument(help: ArgumentHelp("The backup to restore from.", valueName: "backup"))
    var backup: String

    func validate() throws {
        if backup.isEmpty { throw ValidationError("the backup needs a path; an empty one is refused") }
        // A database is a file SQLite opens, not a stream (found by an audit of `backup`: "-" made a file).
        if backup == "-" {
            throw ValidationError("the backup must be a file; standard input (\"-\") cannot be opened as a database, "
                + "give ./- for a file of that name")
        }
        if Environment.lostBytes(backup) { throw ValidationError("the backup's name is not UTF-8; give one that is") }
    }

    func run() throws {
        let path = try database.path()
        // The file holds a shared model's contacts and template memory alone; its training is PostgreSQL's, and
        // putting back the rest beside a model restored otherwise (or not) is no restore an admin would expect.
        if (try? CommandLineConfiguration.current.get())?.sharedModel != nil {
            Stores.report(ValidationError("the training is in the shared PostgreSQL model, not in "
                + "\(TerminalText.safe(path)): restore that database with pg_restore"))
            throw ExitCode(3)
        }
        var info = stat(), backupInfo = stat()
        if stat(path, &info) == 0, stat(backup, &backupInfo) == 0, backupInfo.st_dev == info.st_dev,
           backupInfo.st_ino == info.st_ino {
            Stores.report(ValidationError("\(TerminalText.safe(backup)) is the database itself: give a backup"))
            throw ExitCode(3)
        }
        let restored: SQLiteTokenStore.Restored
        do {
            restored = try Self.restore(backup, into: path)
        } catch {
            Stores.report(Self.liveFailure(error))
            throw ExitCode(3)
        }
        let quarantine = restored.quarantineRecordsTaken.map {
            "the database had no quarantine records, and the backup's \($0) were taken"
        } ?? "the quarantine's records and the service's journal kept as they were"
        try Stores.writeAnswer("restored \(TerminalText.safe(path)) from \(TerminalText.safe(backup)): "
            + "\(restored.totals.pitch) pitch and \(restored.totals.ham) ham messages learned; \(quarantine)")
    }

    /// A database too damaged to be written is no place to restore into; "restore it from a backup", the advice
    /// every other command gives, is what failed (found by an audit).
    static func liveFailure(_ error: any Error) -> any Error {
        guard case StoreError.corrupt(let path, let detail) = error else { return error }
        return ValidationError("database \(TerminalText.safe(path)) is damaged (\(detail)): restore into a new --db, "
            + "then put that file in its place with the service and deliveries stopped (README.md says how)")
    }

    /// Copies the backup beside the database, makes the copy ready (a pitchfilter database of this tokenizer, an
    /// older schema brought up to date), then opens the database (made if it is not there yet: a backup that cannot
    /// be restored leaves no new database behind, only the folders on its way, made as `train` makes them) and
    /// restores into it.
    static func restore(_ backup: String, into path: String) throws -> SQLiteTokenStore.Restored {
        if SQLiteTokenStore.isEmptyFile(backup) {
            throw RestoreError.backup(path: backup, reason: "it is an empty file, not a database")
        }
        try SQLiteTokenStore.createParentDirectory(of: path)
        RestoreCopy.removeAbandoned(in: Backup.placement(of: path, suffix: "").directory)
        let copy = try RestoreCopy(beside: path)
        PartialCopy.removeOnSignal(copy.path)
        defer {
            PartialCopy.removeOnSignal(nil)
            copy.remove()
        }
        let copyPath = copy.path
        // Errors naming the copy or the backup are said of what failed; the database's own, as they are.
        func said(_ error: any Error) -> any Error {
            guard let error = error as? StoreError, error.path == copyPath || error.path == backup else { return error }
            return failure(error, copy: copyPath, backup: backup)
        }
        do {
            _ = try SQLiteTokenStore.backUp(databaseAt: backup, into: copyPath, destination: copyPath, atRest: true)
            try SQLiteTokenStore.prepareRestoreCopy(at: copyPath, tokenizerIdentity: Engine.tokenizerIdentity)
            let store = try SQLiteTokenStore(path: path, tokenizerIdentity: Engine.tokenizerIdentity, access: .readWrite)
            let restored = try store.restoreTraining(from: copyPath)
            store.checkpointIfLarge()
            return restored
        } catch {
            throw said(error)
        }
    }
}

/// The backup's copy beside the database, which a restore reads from. Its run holds an flock on it, so that a later
/// run knows a copy nobody holds for one a run killed with SIGKILL left behind, and removes it (found by an audit:
/// 31 files, 15 MB each, beside a service's database).
struct RestoreCopy {
    static let prefix = ".pitchfilter-restore.partial-"
    let path: String
    private let lock: Int32

    init(beside database: String) throws {
        for _ in 0..<8 {
            let (_, path) = Backup.placement(of: database, suffix: String(UInt64.random(in: 0...UInt64.max), radix: 16),
                                             prefix: Self.prefix)
            let descriptor = open(path, O_CREAT | O_EXCL | O_RDWR | O_CLOEXEC | O_NOFOLLOW, 0o600)
            let reason = errno
            if descriptor >= 0 {
                // Unlocked, a later restore could take it for a killed run's once it is a minute old.
                guard flock(descriptor, LOCK_EX) == 0 else {
                    let reason = errno
                    close(descriptor)
                    unlink(path)
                    throw RestoreError.copy(path: path, reason: "cannot lock it: \(String(cString: strerror(reason)))")
                }
                self.path = path
                lock = descriptor
                return
            }
            if reason != EEXIST {
                throw RestoreError.copy(path: path, reason: String(cString: strerror(reason)))
            }
        }
        throw RestoreError.copy(path: database, reason: "no free name for it")
    }

    /// Removes the copy and SQLite's files beside it, then lets go of the lock.
    func remove() {
        for suffix in ["", "-journal", "-wal", "-shm"] { unlink(path + suffix) }
        close(lock)
    }

    /// Removes the copies in `directory` that no run holds, made a minute ago or more (a run that has just made its
    /// copy takes the lock a moment later).
    static func removeAbandoned(in directory: String) {
        guard let listing = opendir(directory) else { return }
        defer { closedir(listing) }
        var abandoned: [String] = []
        while let entry = readdir(listing) {
            guard let raw = pitchfilter_dirent_name(entry) else { continue }
            let name = String(cString: raw)  // in place, up to its NUL (`pitchfilter_dirent_name` says why)
            // Only the names `init` gives: ASCII hex digits after the prefix (Character.isHexDigit also takes the
            // fullwidth forms).
            let suffix = name.utf8.dropFirst(prefix.utf8.count)
            guard name.hasPrefix(prefix), !suffix.isEmpty,
                  suffix.allSatisfy({ $0 &- 0x30 < 10 || $0 &- 0x61 < 6 }) else { continue }
            abandoned.append(directory + "/" + name)
        }
        for path in abandoned {
            // Not blocking on a FIFO someone put there under such a name.
            let descriptor = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK)
            guard descriptor >= 0 else { continue }
            defer { close(descriptor) }
            var info = stat()
            guard fstat(descriptor, &info) == 0, info.st_mode & S_IFMT == S_IFREG,
                  time(nil) - info.st_mtim.tv_sec >= 60, flock(descriptor, LOCK_EX | LOCK_NB) == 0 else { continue }
            for suffix in ["", "-journal", "-wal", "-shm"] { unlink(path + suffix) }
        }
    }
}

extension Restore {
    /// A failure of the copy, said of what failed: the backup's content (found when the copy is opened, under its
    /// temporary name), the backup's file, or the copy's writing beside the database (a full disk there is no fault
    /// of the backup's; found in review).
    static func failure(_ error: StoreError, copy: String, backup: String) -> RestoreError {
        switch error {
        case .notADatabase, .notPitchfilterDatabase, .corrupt, .tokenizerMismatch, .schemaTooNew:
            return .backup(path: backup, reason: reason(error, copy: copy, backup: backup))
        default:
            if error.path == copy {
                return .copy(path: copy, reason: "\(error)")
            }
            return .backup(path: backup, reason: reason(error, copy: copy, backup: backup))
        }
    }

    /// What is wrong with the backup, said of the backup: the errors name the copy's temporary name, and advise on
    /// a database in use (`--db`), which the backup is not.
    static func reason(_ error: StoreError, copy: String, backup: String) -> String {
        switch error {
        case .missing: "no such file"
        case .notADatabase: "it is no database (not an SQLite file)"
        case .notPitchfilterDatabase: "it is an SQLite database of some other program"
        case .corrupt(_, let detail): "it is damaged (\(detail)): restore an older backup"
        case .tokenizerMismatch(_, let database, let program):
            "it was made with tokenizer \(database), and this pitchfilter uses \(program): its counts are of other "
                + "tokens; retrain instead"
        case .schemaTooNew(_, let found, let supported):
            "a newer pitchfilter made it (schema version \(found); this one understands \(supported)): upgrade "
                + "pitchfilter to restore it"
        default: "\(error)".replacingOccurrences(of: copy, with: backup)
        }
    }
}

enum RestoreError: Error, CustomStringConvertible {
    case backup(path: String, reason: String)
    /// The backup's copy beside the database could not be written.
    case copy(path: String, reason: String)

    var description: String {
        switch self {
        case .backup(let path, let reason):
            "cannot restore from \(TerminalText.safe(path)): \(reason)"
        case .copy(let path, let reason):
            "cannot restore: the backup's copy beside the database (\(TerminalText.safe(path))) could not be "
                + "written: \(reason)"
        }
    }
}
