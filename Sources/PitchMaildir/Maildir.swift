import CLinuxCalls

#if canImport(Glibc)
import Glibc
#endif

/// A Maildir++ mailbox: the INBOX at the root and sub-folders `.Name` beside its `new/`, `cur/` and `tmp/`.
public struct Maildir: Hashable, Sendable {
    /// The root directory, without a trailing slash.
    public let root: String

    public init(root: String) {
        var root = root
        while root.count > 1, root.hasSuffix("/") { root.removeLast() }
        self.root = root
    }

    public var inbox: MaildirFolder { MaildirFolder(path: root, name: "INBOX") }

    /// A Maildir++ sub-folder: `name` is its directory name, with the leading dot (`.Pitches`, `.Sent`).
    public func folder(_ name: String) -> MaildirFolder {
        MaildirFolder(path: root + "/" + name, name: name)
    }

    /// The sub-folders that exist now: directories named `.Something` with a `cur/` inside, neither of them a
    /// symbolic link (`Directory.names(in:)` says why).
    public func subfolders() throws(MaildirError) -> [MaildirFolder] {
        try Directory.names(in: root, followingALink: true).filter { name in
            name.hasPrefix(".") && name != "." && name != ".."
                && Directory.isOwnDirectory(root + "/" + name) && Directory.isOwnDirectory(root + "/" + name + "/cur")
        }.sorted().map(folder)
    }

    /// INBOX and every sub-folder.
    public func allFolders() throws(MaildirError) -> [MaildirFolder] {
        [inbox] + (try subfolders())
    }
}

/// One folder of a Maildir: its `new/`, `cur/` and `tmp/`.
///
/// Every change is atomic as the Maildir specification asks: a new file is written and fsynced in `tmp/`, then
/// linked or renamed into place, and the directory is fsynced so the rename outlives a crash.
public struct MaildirFolder: Hashable, Sendable, CustomStringConvertible {
    public let path: String
    /// "INBOX" for the root, else the directory name (`.Pitches`).
    public let name: String

    public init(path: String, name: String) {
        self.path = path
        self.name = name
    }

    public enum Subdirectory: String, Sendable, CaseIterable {
        /// Delivered, not yet seen by a mail client.
        case new
        /// Seen by a client; names carry `:2,<flags>`.
        case cur
    }

    /// A message file in this folder.
    public struct Entry: Hashable, Sendable, CustomStringConvertible {
        public let folder: MaildirFolder
        public let subdirectory: Subdirectory
        public let name: MaildirName

        public init(folder: MaildirFolder, subdirectory: Subdirectory, name: MaildirName) {
            self.folder = folder
            self.subdirectory = subdirectory
            self.name = name
        }

        public var path: String { folder.path + "/" + subdirectory.rawValue + "/" + name.fileName }
        public var description: String { path }
    }

    public var description: String { name }

    public var exists: Bool { Directory.isDirectory(path + "/cur") }

    /// Creates the folder's directories (mode 0700, like every MDA) and, for a sub-folder, the `maildirfolder`
    /// marker file Maildir++ clients look for. Existing parts are left as they are.
    public func create() throws(MaildirError) {
        try Directory.make(path)
        try requireOwnDirectory()
        for sub in ["tmp", "new", "cur"] {
            try Directory.make(path + "/" + sub)
            guard Directory.isOwnDirectory(path + "/" + sub) else {
                throw MaildirError("use", path + "/" + sub, errno: ELOOP)
            }
        }
        if name != "INBOX" {
            let marker = path + "/maildirfolder"
            // Only a marker made here is given away: an existing one could be a link the folder's owner made.
            let fd = open(marker, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0o600)
            if fd < 0 {
                if errno == EEXIST { return }
                throw MaildirError("create", marker)
            }
            defer { close(fd) }
            try Ownership.give(fd, at: marker, likeThe: path)
        }
    }

    /// The messages in `new/` or `cur/`, in name order (oldest deliveries first for standard names). Names that
    /// are not UTF-8 are left out and given to `undecodable`.
    public func entries(in subdirectory: Subdirectory,
                        undecodable: ((String) -> Void)? = nil) throws(MaildirError) -> [Entry] {
        try requireOwnDirectory()
        return try Directory.names(in: path + "/" + subdirectory.rawValue, undecodable: undecodable)
            .filter { !$0.hasPrefix(".") }
            .sorted()
            .map { Entry(folder: self, subdirectory: subdirectory, name: MaildirName($0)) }
    }

    /// A sub-folder must be a directory of its own, not a symbolic link to another (`Directory.names(in:)` says
    /// why); the INBOX is the Maildir's root, which the configuration names and may be one.
    public static func isOwnDirectory(_ path: String) -> Bool { Directory.isOwnDirectory(path) }

    public func requireOwnDirectory() throws(MaildirError) {
        guard name != "INBOX", !Directory.isOwnDirectory(path) else { return }
        throw MaildirError("use", path, errno: Directory.isDirectory(path) ? ELOOP : ENOENT)
    }

    /// The entry in `new/` or `cur/` whose unique part is `unique`, if any.
    public func entry(unique: String) throws(MaildirError) -> Entry? {
        for subdirectory in Subdirectory.allCases {
            if let found = try entries(in: subdirectory).first(where: { $0.name.unique == unique }) { return found }
        }
        return nil
    }

    /// Writes `pieces` as a new message named `name` in `subdirectory`: tmp/, fsync, link into place, fsync.
    ///
    /// link(2) rather than rename(2), so an existing file of that name is never replaced: the call fails with
    /// EEXIST instead. If anything fails, the file in tmp/ is removed and nothing else has changed.
    @discardableResult
    public func deliver(_ pieces: [ArraySlice<UInt8>], into subdirectory: Subdirectory,
                        name: MaildirName) throws(MaildirError) -> Entry {
        try deliverWithIdentity(pieces, into: subdirectory, name: name).entry
    }

    /// `deliver`, and which file it made: to remove that one later, and never another that took its name.
    public func deliverWithIdentity(_ pieces: [ArraySlice<UInt8>], into subdirectory: Subdirectory,
                                    name: MaildirName) throws(MaildirError) -> (entry: Entry, identity: FileIdentity) {
        let (temporary, identity) = try writeTemporary(pieces, name: name)
        let entry = Entry(folder: self, subdirectory: subdirectory, name: name)
        defer { unlink(temporary) }
        if link(temporary, entry.path) != 0 { throw MaildirError("link into place", entry.path) }
        try Directory.sync(path + "/" + subdirectory.rawValue)
        return (entry, identity)
    }

    /// Removes `entry` if it is still the file `identity` names; returns whether it did. A user's `mv` may have
    /// put their own file under the name since (found in review: the only copy of a message went so).
    public func remove(_ entry: Entry, ifItIs identity: FileIdentity) throws(MaildirError) -> Bool {
        var info = stat()
        guard lstat(entry.path, &info) == 0, FileIdentity(info) == identity else { return false }
        if unlink(entry.path) != 0 {
            if errno == ENOENT { return false }
            throw MaildirError("remove", entry.path)
        }
        try Directory.sync(path + "/" + entry.subdirectory.rawValue)
        return true
    }

    /// Replaces `entry` with `pieces` under the name `name` (the same unique part, a new size): written in tmp/,
    /// then exchanged with the original in one step (renameat2, RENAME_EXCHANGE), which fails if the original is
    /// gone; under a new name, the exchanged file is then renamed to it. A crash leaves the original, or the
    /// replacement under the old name with the original in tmp/ (removed as any abandoned temporary); never
    /// neither, never both.
    ///
    /// A mail client may move or delete the original meanwhile (Dovecot moves new/ to cur/ as soon as a client has
    /// the folder open, and every file there when a client in IDLE is woken): the replacement must then not
    /// appear beside the client's copy, nor bring back one the user deleted. The error is then ENOENT
    /// (`isMissing`) and nothing is left of the replacement. Where a file system cannot exchange, the original is
    /// looked for right before a rename over it (same name), or removed after a link under the new name and the
    /// link undone if it was gone: a few microseconds for a client, instead of the whole classification.
    @discardableResult
    public func replace(_ entry: Entry, with pieces: [ArraySlice<UInt8>],
                        name: MaildirName) throws(MaildirError) -> Entry {
        let (temporary, _) = try writeTemporary(pieces, name: name)
        let replacement = Entry(folder: self, subdirectory: entry.subdirectory, name: name)
        let directory = path + "/" + entry.subdirectory.rawValue
        if pitchfilter_rename_exchange(temporary, entry.path) == 0 {
            // The original is at `temporary` now, the replacement in its place.
            unlink(temporary)
            if name != entry.name, rename(entry.path, replacement.path) != 0 {
                let error = MaildirError("rename into place", replacement.path)
                // A client moved it on already: the replacement is there once, under the old name's size.
                guard error.isMissing else { throw error }
            }
            try Directory.sync(directory)
            return replacement
        }
        let exchange = MaildirError("exchange with the original", entry.path)
        guard exchange.errno == EINVAL || exchange.errno == ENOSYS || exchange.errno == EOPNOTSUPP else {
            unlink(temporary)
            throw exchange.isMissing ? MaildirError("find the original of", entry.path, errno: ENOENT) : exchange
        }
        if name == entry.name {
            var original = stat()
            if lstat(entry.path, &original) != 0 {
                let error = MaildirError("find the original of", entry.path)
                unlink(temporary)
                throw error
            }
            if rename(temporary, replacement.path) != 0 {
                let error = MaildirError("rename into place", replacement.path)
                unlink(temporary)
                throw error
            }
        } else {
            defer { unlink(temporary) }
            if link(temporary, replacement.path) != 0 { throw MaildirError("link into place", replacement.path) }
            try Directory.sync(directory)
            if unlink(entry.path) != 0 {
                let error = MaildirError("remove", entry.path)
                if error.isMissing { unlink(replacement.path) }  // the client has the message: ours would be twice
                try Directory.sync(directory)
                throw error
            }
        }
        try Directory.sync(directory)
        return replacement
    }

    /// `replace`, or nil when a mail client moved or deleted the original meanwhile (then nothing is left of the
    /// replacement).
    public func replaceIfStillThere(_ entry: Entry, with pieces: [ArraySlice<UInt8>],
                                    name: MaildirName) throws(MaildirError) -> Entry? {
        do {
            return try replace(entry, with: pieces, name: name)
        } catch {
            // The original's absence, not any missing file (tmp/ itself, say).
            if error.isMissing && error.path == entry.path { return nil }
            throw error
        }
    }

    /// Removes a message file, as `remove`, and says whether it was still there: false when a client moved or
    /// deleted it first.
    public func take(_ entry: Entry) throws(MaildirError) -> Bool {
        if unlink(entry.path) != 0 {
            if errno == ENOENT { return false }
            throw MaildirError("remove", entry.path)
        }
        try Directory.sync(path + "/" + entry.subdirectory.rawValue)
        return true
    }

    /// Removes a message file; one already gone is not an error.
    public func remove(_ entry: Entry) throws(MaildirError) {
        if unlink(entry.path) != 0 && errno != ENOENT { throw MaildirError("remove", entry.path) }
        try Directory.sync(path + "/" + entry.subdirectory.rawValue)
    }

    /// Moves a message into another folder (of the same file system) with rename(2), keeping its bytes.
    @discardableResult
    public func move(_ entry: Entry, to folder: MaildirFolder, _ subdirectory: Subdirectory,
                     name: MaildirName) throws(MaildirError) -> Entry {
        let target = Entry(folder: folder, subdirectory: subdirectory, name: name)
        if link(entry.path, target.path) != 0 { throw MaildirError("link into place", target.path) }
        try Directory.sync(folder.path + "/" + subdirectory.rawValue)
        if unlink(entry.path) != 0 && errno != ENOENT { throw MaildirError("remove", entry.path) }
        try Directory.sync(path + "/" + entry.subdirectory.rawValue)
        return target
    }

    /// Files in tmp/ older than `seconds`: deliveries that crashed part-way (the Maildir specification's 36 hours
    /// is for cleaning up; the service only leaves its own there when it is killed mid-write).
    public func staleTemporaries(olderThan seconds: Int) throws(MaildirError) -> [String] {
        let directory = path + "/tmp"
        let now = time(nil)
        return try Directory.names(in: directory).filter { name in
            var info = stat()
            guard stat(directory + "/" + name, &info) == 0, info.st_mode & S_IFMT == S_IFREG else { return false }
            return now - info.st_mtim.tv_sec > seconds
        }.map { directory + "/" + $0 }
    }

    /// Removes what earlier pitchfilter processes left in tmp/ when they were killed mid-write: files named by
    /// `writeTemporary` whose process is gone. They are never the only copy of a message, since the original is
    /// removed only after its replacement is linked into place. Returns how many were removed.
    @discardableResult
    public func removeAbandonedTemporaries() throws(MaildirError) -> Int {
        let directory = path + "/tmp"
        var removed = 0
        for name in try Directory.names(in: directory) where name.hasSuffix(Self.temporarySuffix) {
            let parts = name.dropLast(Self.temporarySuffix.count).split(separator: ".")
            guard let last = parts.last, last.hasPrefix("P"), let pid = Int32(last.dropFirst()) else { continue }
            // kill(pid, 0) fails with ESRCH once the process is gone.
            if pid != getpid(), kill(pid, 0) != 0, errno == ESRCH, unlink(directory + "/" + name) == 0 { removed += 1 }
        }
        return removed
    }

    private static let temporarySuffix = ".pitchfilter"

    /// The unique part, or for one too long to leave room for ".P<pid>.pitchfilter" in a name (NAME_MAX, 255
    /// bytes) its first 200 bytes and a hash of the rest: such a message stayed unclassified, retried every 2 s
    /// for ever (found by an audit). Bytes, not characters: NAME_MAX counts bytes.
    static func temporaryStem(of unique: String) -> String {
        guard unique.utf8.count > 220 else { return unique }
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325  // FNV-1a: a name, not a secret
        for byte in unique.utf8 { hash = (hash ^ UInt64(byte)) &* 0x100_0000_01b3 }
        let head = String(decoding: unique.utf8.prefix(200), as: UTF8.self)  // may end in U+FFFD: still one name
        return head + "-" + String(hash, radix: 16)
    }

    private func writeTemporary(_ pieces: [ArraySlice<UInt8>],
                                name: MaildirName) throws(MaildirError) -> (path: String, identity: FileIdentity) {
        // The writer's pid in the name: a file left by a killed process never blocks the retry, and
        // `removeAbandonedTemporaries` can tell whose it was.
        // A link in tmp/'s place would have the copy written wherever it points (`Directory.names(in:)`).
        try requireOwnDirectory()
        guard Directory.isOwnDirectory(path + "/tmp") else {
            throw MaildirError("write into", path + "/tmp", errno: Directory.isDirectory(path + "/tmp") ? ELOOP : ENOENT)
        }
        let temporary = path + "/tmp/" + Self.temporaryStem(of: name.unique) + ".P\(getpid())" + Self.temporarySuffix
        let fd = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        if fd < 0 { throw MaildirError("create", temporary) }
        var written = stat()
        do throws(MaildirError) {
            try Ownership.give(fd, at: temporary, likeThe: path + "/tmp")
            for piece in pieces { try FileBytes.writeAll(fd, piece, path: temporary) }
            if fsync(fd) != 0 { throw MaildirError("fsync", temporary) }
            if fstat(fd, &written) != 0 { throw MaildirError("stat", temporary) }
        } catch {
            close(fd)
            unlink(temporary)
            throw error
        }
        if close(fd) != 0 {
            let error = MaildirError("close", temporary)
            unlink(temporary)
            throw error
        }
        return (temporary, FileIdentity(written))
    }
}

/// Which file a path named when we made it: device and inode, which a rename over the name changes.
public struct FileIdentity: Hashable, Sendable {
    let device: UInt64
    let inode: UInt64

    init(_ status: stat) {
        device = UInt64(status.st_dev)
        inode = UInt64(status.st_ino)
    }
}
