/// What the service did with the files of the Maildirs it watches, kept beside the token counts so one database
/// holds everything a restart needs.
///
/// The journal is how the service keeps its promise that a crash at any moment leaves every message exactly once:
/// before it changes a folder it writes down what it is about to do (`FileState.pending`, a quarantine entry in
/// state `moving`), and once the change is on disk it marks it done. A restart that finds a pending entry finishes
/// or undoes that one change instead of classifying the message again.
public protocol MailboxJournal: Sendable {
    /// Every record of files in `folder` (a folder's path), by the unique part of their names.
    func fileRecords(in folder: String) throws -> [String: FileRecord]
    /// Quarantine entries selected by `query`, newest first.
    func quarantineEntries(_ query: QuarantineQuery) throws -> [QuarantineEntry]
    /// Whether the mailbox's existing mail has been taken stock of (see `JournalChange.inventoried`).
    func isInventoried(mailbox root: String) throws -> Bool
    /// The folders of the mailbox at `root` (the root itself and its Maildir++ sub-folders, `root/.Name`) with
    /// records of files.
    func recordedFolders(mailbox root: String) throws -> [String]
    /// The folders of the mailbox at `root` as the service last saw them: which directory is at each path
    /// (`JournalChange.folderIdentity`).
    func folderIdentities(mailbox root: String) throws -> [String: FolderIdentity]
    /// Applies all `changes` in one transaction: all of them or none.
    func apply(_ changes: [JournalChange]) throws
}

/// One file the service has looked at.
public struct FileRecord: Hashable, Sendable {
    public var folder: String
    /// The unique part of the file name (`MaildirName.unique`): flags and sizes may change, this does not.
    public var name: String
    public var state: FileState
    /// The verdict the service gave it, if it classified it.
    public var verdict: String?
    /// The message digest, when the service read the file.
    public var digest: [UInt8]?

    public init(folder: String, name: String, state: FileState, verdict: String? = nil, digest: [UInt8]? = nil) {
        self.folder = folder
        self.name = name
        self.state = state
        self.verdict = verdict
        self.digest = digest
    }
}

public enum FileState: String, Sendable {
    /// The service has begun changing this file (tagging it, moving it to quarantine) and has not finished.
    case pending
    /// Nothing more to do: classified and acted on, learned from, or found there before the service started.
    case done
}

/// A message the service moved into a quarantine folder.
public struct QuarantineEntry: Hashable, Sendable {
    /// Opaque and random: the CLI takes ids, never paths, so nothing typed on a command line names a file.
    public var id: String
    /// The Maildir's root.
    public var mailbox: String
    /// The quarantine folder's name (`.Pitches`).
    public var folder: String
    /// The unique part of the file's name there.
    public var name: String
    public var digest: [UInt8]
    public var messageID: String
    public var sender: String
    public var subject: String
    /// The score the service gave it, or `filedByTheUser`.
    public var score: Double
    public var state: QuarantineState
    /// When it was quarantined (seconds since 1970); once released or deleted, when that happened, which the
    /// service's expiry of settled records counts from (`settled(as:at:)`).
    public var at: Int64

    public init(id: String, mailbox: String, folder: String, name: String, digest: [UInt8], messageID: String,
                sender: String, subject: String, score: Double, state: QuarantineState, at: Int64) {
        self.id = id
        self.mailbox = mailbox
        self.folder = folder
        self.name = name
        self.digest = digest
        self.messageID = messageID
        self.sender = sender
        self.subject = subject
        self.score = score
        self.state = state
        self.at = at
    }

    /// The score of a message the user filed into the quarantine folder, which the service never called a pitch:
    /// none. It was 1, and `quarantine list` showed a message the filter had scored 0.0001 at 1.0000 (found by an
    /// audit). No status field of ours was written into it, so no copy of it can be told from a new delivery
    /// (`MailboxWorker.isDeliveredAnew`).
    public static let filedByTheUser: Double = -1

    /// Whether the service scored the message (it is not one the user filed).
    public var wasScored: Bool { score >= 0 }

    /// The record once the message has left the quarantine as `state` (released or deleted) at `time`.
    public func settled(as state: QuarantineState, at time: Int64) -> QuarantineEntry {
        var entry = self
        entry.state = state
        entry.at = time
        return entry
    }
}

public enum QuarantineState: String, Sendable, CaseIterable {
    /// Being moved into the quarantine folder; a restart finishes the move.
    case moving
    /// In the quarantine folder.
    case held
    /// Taken out again, by the user's mail client or `quarantine release`, and learned as ham.
    case released
    /// Removed by `quarantine delete` or `purge`.
    case deleted
}

public enum QuarantineQuery: Sendable {
    case id(String)
    /// The entry for a file of that unique name in that mailbox.
    case file(mailbox: String, name: String)
    /// Entries of this message (by digest, else by Message-ID) in that mailbox; by its former digest too
    /// (`MessageDigest.former`), for entries written before.
    case message(mailbox: String, digest: [UInt8], messageID: String, formerDigest: [UInt8]? = nil)
    /// Every entry in one of `states`, in any mailbox.
    case states(Set<QuarantineState>)
    /// The entries held in one quarantine folder of one mailbox.
    case held(mailbox: String, folder: String)
}

/// Which directory a folder is: its inode number, and when it was made (nanoseconds since 1970, 0 where the file
/// system does not say). A rename keeps both; a directory made where another was deleted may get the deleted one's
/// number, but not its birth. Where the file system keeps no birth times, the number alone decides.
public struct FolderIdentity: Hashable, Sendable {
    public var inode: UInt64
    public var born: Int64

    public init(inode: UInt64, born: Int64) {
        self.inode = inode
        self.born = born
    }

    /// Whether the two are one directory: the same number, and the same birth where both are known (a file
    /// system that starts keeping birth times, after an upgrade, changes no folder's identity).
    public func isSameDirectory(as other: FolderIdentity) -> Bool {
        inode == other.inode && (born == other.born || born == 0 || other.born == 0)
    }
}

public enum JournalChange: Sendable {
    case file(FileRecord, at: Int64)
    case quarantine(QuarantineEntry)
    /// The record of a file that is gone from its folder (deleted or moved by the user).
    case forgetFile(folder: String, name: String)
    /// The finished records of a folder that is gone (deleted or renamed by the user). Pending ones stay: they
    /// describe a change still to be settled.
    case forgetFolder(String)
    /// The mailbox's existing files were recorded as found: from now on a file the service has no record of
    /// arrived while it was watching, or while it was stopped.
    case inventoried(mailbox: String, at: Int64)
    /// The records of messages quarantined before this time that have since been released or deleted: nothing
    /// looks for them once the message has settled elsewhere, and kept for good they grew with every pitch.
    case forgetSettledQuarantine(before: Int64)
    /// The directory at `path`, a folder of the mailbox at `mailbox`, is this one: so that a folder renamed while
    /// the service was stopped is known for the same folder at the next start.
    case folderIdentity(path: String, mailbox: String, identity: FolderIdentity)
    /// A folder that is gone: its identity is no longer what is at its path.
    case forgetFolderIdentity(path: String)
}
