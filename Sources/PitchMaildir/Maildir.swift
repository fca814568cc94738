import CLinuxCalls

#if canImport(Glibc)
import Glibc
#endif

/// A Maildir++ mailbox: the INBOX at the root and sub-folders `.Name` beside its `new/`, `cur/` and `tmp/`.
public struct Maildir: Hashable, Sendable {
    /// The root directory, without a trailing slash.
    public let root: String
    /// Whose files these are, when this process is root: every file operation here acts as them
    /// (`FileOwner.acting`). Read when the value is made (`FileOwner.ofDirectory`); the service makes it again
    /// before each scan and arrival, so a Maildir given to its user is theirs from then on.
    public let owner: FileOwner?

    public init(root: String) {
        self.root = Self.trimmed(root)
        owner = FileOwner.ofDirectory(self.root)
    }

    /// `root` without trailing slashes: the path a Maildir is known by, with no look at the file system.
    public static func trimmed(_ root: String) -> String {
        var root = root
        while root.count > 1, root.hasSuffix("/") { root.removeLast() }
        return root
    }

    public var inbox: MaildirFolder { MaildirFolder(path: root, name: "INBOX", owner: owner) }

    /// Whether `name` is a Maildir++ sub-folder's directory name: a dot, then names joined by dots, none of them
    /// empty, without a slash or a control character, at most 255 bytes. ".Pitch\0es" would be ".Pitch" to the
    /// system calls, "..Pitches" or ".Pitches." a folder no client shows as named, and ".." or "./x" no sub-folder
    /// at all.
    public static func isSubfolderName(_ name: String) -> Bool {
        let parts = name.utf8.split(separator: UInt8(ascii: "."), omittingEmptySubsequences: false)
        return name.hasPrefix(".") && parts.count > 1 && parts.dropFirst().allSatisfy { !$0.isEmpty }
            && !name.utf8.contains { $0 == UInt8(ascii: "/") || $0 < 0x20 || $0 == 0x7F }
            && name.utf8.count <= 255
    }

    /// A Maildir++ sub-folder: `name` is its directory name, with the leading dot (`.Pitches`, `.Sent`).
    public func folder(_ name: String) -> MaildirFolder {
        MaildirFolder(path: root + "/" + name, name: name, owner: owner)
    }

    /// The sub-folders that exist now: directories named `.Something` with a `cur/` inside, neither of them a
    /// symbolic link (`Directory.names(in:)` says why).
    public func subfolders() throws(MaildirError) -> [MaildirFolder] {
        try FileOwner.acting(as: owner, in: root) { () throws(MaildirError) in
            try Directory.names(in: root, followingALink: true).filter(isSubfolderHere).sorted().map(folder)
        }
    }

    /// Whether `name` is one of `subfolders()` now.
    public func hasSubfolder(named name: String) -> Bool {
        (try? FileOwner.acting(as: owner, in: root) { () throws(MaildirError) -> Bool in isSubfolderHere(name) }) ?? false
    }

    /// A Maildir++ folder: a directory of its own with a cur/ of its own, named with a leading dot. As the owner.
    private func isSubfolderHere(_ name: String) -> Bool {
        name.hasPrefix(".") && name != "." && name != ".." && !name.contains("/")
            && Directory.isOwnDirectory(root + "/" + name)
            && Directory.isOwnDirectory(root + "/" + name + "/cur")
    }

    /// INBOX and every sub-folder.
    public func allFolders() throws(MaildirError) -> [MaildirFolder] {
        [inbox] + (try subfolders())
    }
}

/// One folder of a Maildir: its `new/`, `cur/` and `tmp/`.
///
/// Every change is atomic as the Maildir specification asks: a new file is written and fsynced in `tmp/`, then
/// linked or renamed into place, and the directory is fsynced so the rename outlives a crash. Every file operation
/// acts as the Maildir's `owner` when there is one (`FileOwner.acting`: root at work in a user's Maildir).
public struct MaildirFolder: Hashable, Sendable, CustomStringConvertible {
    public let path: String
    /// "INBOX" for the root, else the directory name (`.Pitches`).
    public let name: String
    /// The Maildir's owner, whom root acts as here (`Maildir.owner`); nil: as this process is.
    public let owner: FileOwner?

    public init(path: String, name: String, owner: FileOwner? = nil) {
        self.path = path
        self.name = name
        self.owner = owner
    }

    /// `body` with file accesses checked as the owner's (`FileOwner.acting`).
    func asOwner<T>(_ body: () throws(MaildirError) -> T) throws(MaildirError) -> T {
        try FileOwner.acting(as: owner, in: path, body)
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

        /// The message's bytes, as `FileBytes.read` reads them, as the Maildir's owner.
        public func read(limit: Int) throws(MaildirError) -> [UInt8]? {
            try folder.asOwner { () throws(MaildirError) in try FileBytes.read(path, limit: limit) }
        }

        /// `WriteInProgress.check`, as the Maildir's owner (false where root cannot act as them: the read fails).
        public var isBeingWritten: Bool { (try? folder.asOwner { WriteInProgress.check(path) }) ?? false }

        /// Whether it is a regular file, links not followed, as the Maildir's owner sees it (true where that cannot
        /// be told: gone meanwhile, or root cannot act as them).
        public var isRegularFile: Bool {
            (try? folder.asOwner { () -> Bool in
                var info = stat()
                return lstat(path, &info) != 0 || info.st_mode & S_IFMT == S_IFREG
            }) ?? true
        }

        /// `MaildirFolder.linkCount`, as the Maildir's owner (0 where root cannot act as them).
        public var linkCount: Int { (try? folder.asOwner { MaildirFolder.linkCount(path) }) ?? 0 }
    }

    public var description: String { name }

    /// False too where root cannot act as the Maildir's owner (`FileOwner.acting`); `existsAsOwner()` tells why.
    public var exists: Bool { (try? existsAsOwner()) ?? false }

    /// Whether the folder is there, or the error that root cannot act as the Maildir's owner to look.
    /// Throws when `cur/` cannot be looked at for another reason than its absence: a Maildir behind a directory
    /// shut to this user is there, and waiting for its first delivery would wait for ever (found by an audit).
    public func existsAsOwner() throws(MaildirError) -> Bool {
        try asOwner { () throws(MaildirError) -> Bool in
            var info = stat()
            if stat(path + "/cur", &info) == 0 { return info.st_mode & S_IFMT == S_IFDIR }
            if errno == ENOENT || errno == ENOTDIR { return false }
            throw MaildirError("look into", path + "/cur")
        }
    }

    /// Creates the folder's directories (mode 0700, like every MDA) and, for a sub-folder, the `maildirfolder`
    /// marker file Maildir++ clients look for. Existing parts are left as they are.
    public func create() throws(MaildirError) {
        try asOwner { () throws(MaildirError) in try createAsOwner() }
    }

    private func createAsOwner() throws(MaildirError) {
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
        try asOwner { () throws(MaildirError) in
            try requireOwnDirectory()
            return try Directory.names(in: path + "/" + subdirectory.rawValue, undecodable: undecodable)
                .filter { !$0.hasPrefix(".") }
                .sorted()
                .map { Entry(folder: self, subdirectory: subdirectory, name: MaildirName($0)) }
        }
    }

    /// A sub-folder must be a directory of its own, not a symbolic link to another (`Directory.names(in:)` says
    /// why); the INBOX is the Maildir's root, which the configuration names and may be one.
    public static func isOwnDirectory(_ path: String) -> Bool { Directory.isOwnDirectory(path) }

    public func requireOwnDirectory() throws(MaildirError) {
        try asOwner { () throws(MaildirError) in
            guard name != "INBOX", !Directory.isOwnDirectory(path) else { return }
            // Something else of the name (a file) is "not a directory", not missing (found by an audit).
            var info = stat()
            let there = lstat(path, &info) == 0
            throw MaildirError("use", path, errno: Directory.isDirectory(path) ? ELOOP : there ? ENOTDIR : ENOENT)
        }
    }

    /// How many names `subdirectory` holds, not counting those that begin with a dot: no entry made, none sorted.
    public func fileCount(in subdirectory: Subdirectory) throws(MaildirError) -> Int {
        try asOwner { () throws(MaildirError) -> Int in
            try requireOwnDirectory()
            return try Directory.names(in: path + "/" + subdirectory.rawValue,
                                       keeping: { $0.first != UInt8(ascii: ".") }).count
        }
    }

    /// The entry in `new/` or `cur/` whose unique part is `unique`, if any (the first by name, as `entries` lists
    /// them). Asked for every pitch quarantined: the names that do not begin with `unique` are passed over as bytes,
    /// unsorted (found measuring a backlog of 15,000: listing the quarantine folder whole, sorted, for each pitch
    /// was 29 % of the service's time once it held 3,400).
    public func entry(unique: String) throws(MaildirError) -> Entry? {
        for subdirectory in Subdirectory.allCases {
            if let first = try entries(in: subdirectory, unique: unique).first { return first }
        }
        return nil
    }

    /// The entries in `subdirectory` whose unique part is `unique`, by name (`entry(unique:)` says why the others
    /// are passed over as bytes).
    public func entries(in subdirectory: Subdirectory, unique: String) throws(MaildirError) -> [Entry] {
        let wanted = Array(unique.utf8)
        guard !unique.hasPrefix(".") else { return [] }
        func isWanted(_ name: [UInt8]) -> Bool {
            name.starts(with: wanted)
                && (name.count == wanted.count || name[wanted.count] == UInt8(ascii: ",")
                    || name[wanted.count] == UInt8(ascii: ":"))
        }
        return try asOwner { () throws(MaildirError) -> [Entry] in
            try requireOwnDirectory()
            return try Directory.names(in: path + "/" + subdirectory.rawValue, keeping: isWanted).sorted()
                .map { Entry(folder: self, subdirectory: subdirectory, name: MaildirName($0)) }
        }
    }

    /// Writes `pieces` as a new message named `name` in `subdirectory`: tmp/, fsync, link into place, fsync.
    ///
    /// link(2) rather than rename(2), so an existing file of that name is never replaced: the call fails with
    /// EEXIST instead. If anything fails, the file in tmp/ is removed and nothing else has changed.
    @discardableResult
    public func deliver(_ pieces: [ArraySlice<UInt8>], into subdirectory: Subdirectory,
                        name: MaildirName) throws(MaildirError) -> Entry {
        try asOwner { () throws(MaildirError) in
            let (temporary, _) = try writeTemporary(pieces, name: name)
            let entry = Entry(folder: self, subdirectory: subdirectory, name: name)
            defer { unlink(temporary) }
            if link(temporary, entry.path) != 0 { throw MaildirError("link into place", entry.path) }
            try Directory.sync(path + "/" + subdirectory.rawValue)
            return entry
        }
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
        try replace(entry, with: pieces, name: name, exchange: { pitchfilter_rename_exchange($0, $1) })
    }

    /// `replace` with `exchange` standing for renameat2's RENAME_EXCHANGE: tests pass another, to be a file system
    /// without it, or a mail client acting between the steps.
    func replace(_ entry: Entry, with pieces: [ArraySlice<UInt8>], name: MaildirName,
                 exchange: (String, String) -> Int32) throws(MaildirError) -> Entry {
        try asOwner { () throws(MaildirError) in
            try replaceAsOwner(entry, with: pieces, name: name, exchange: exchange)
        }
    }

    private func replaceAsOwner(_ entry: Entry, with pieces: [ArraySlice<UInt8>], name: MaildirName,
                                exchange: (String, String) -> Int32) throws(MaildirError) -> Entry {
        let (temporary, identity) = try writeTemporary(pieces, name: name)
        let replacement = Entry(folder: self, subdirectory: entry.subdirectory, name: name)
        let directory = path + "/" + entry.subdirectory.rawValue
        if exchange(temporary, entry.path) == 0 {
            // The original is at `temporary` now, the replacement in its place. Renamed first, removed after:
            // removing a large file takes time a client could use to move the replacement under its old size.
            defer { unlink(temporary) }
            let placed = name == entry.name
                ? replacement : try settleName(of: identity, placedAs: entry, to: name, size: pieces.reduce(0) { $0 + $1.count })
            try Directory.sync(directory)
            return placed
        }
        let exchangeError = MaildirError("exchange with the original", entry.path)
        if exchangeError.isMissing {
            // ENOENT names neither file. The original's absence is a client's doing; tmp/'s file's is not, and
            // taken for it, the message would be forgotten while still there (found in review).
            var original = stat()
            let originalIsGone = lstat(entry.path, &original) != 0 && errno == ENOENT
            unlink(temporary)
            throw originalIsGone ? MaildirError("find the original of", entry.path, errno: ENOENT)
                : MaildirError("exchange", temporary, errno: ENOENT)
        }
        // Any other error: a failed exchange changed nothing, so the way without it is tried, and fails with its
        // own error if the cause is not the exchange (a sandbox refusing renameat2 left messages untagged, retried
        // for ever: found in review).
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

    /// Gives the replacement exchanged in under `entry`'s name a name with its own size. A client may have renamed
    /// it first (Dovecot, woken by the exchange, moves new/ to cur/ and adds flags): it is then found by its inode,
    /// which a rename keeps, and given the client's name with the size put right; Dovecot trusts S=, and the old
    /// one would have stayed for good (found in review). Deleted by the client, it is left deleted.
    private func settleName(of identity: FileIdentity, placedAs entry: Entry, to name: MaildirName,
                            size: Int) throws(MaildirError) -> Entry {
        var current = entry
        var target = Entry(folder: self, subdirectory: entry.subdirectory, name: name)
        for _ in 0..<3 {
            if target.name == current.name || Self.renameWithoutReplacing(current.path, target.path) == 0 {
                return target
            }
            let error = MaildirError("rename into place", target.path)
            guard error.isMissing else { throw error }
            guard let moved = try file(identity, unique: entry.name.unique) else { return target }
            current = moved
            target = Entry(folder: self, subdirectory: moved.subdirectory, name: moved.name.resized(to: size))
        }
        throw MaildirError("rename into place", current.path, errno: EAGAIN)
    }

    /// rename(2), failing with EEXIST rather than replacing a file of the new name: the only one there could be
    /// is a twin of ours a crash left, which `recover` settles by its digest (found in review). Where a file
    /// system cannot tell (EINVAL), plain rename(2).
    private static func renameWithoutReplacing(_ from: String, _ to: String) -> Int32 {
        let renamed = pitchfilter_rename_noreplace(from, to)
        return renamed != 0 && errno == EINVAL ? rename(from, to) : renamed
    }

    /// The file `identity` names among the entries whose unique part is `unique`, if it is still there.
    private func file(_ identity: FileIdentity, unique: String) throws(MaildirError) -> Entry? {
        for subdirectory in Subdirectory.allCases {
            for candidate in try entries(in: subdirectory) where candidate.name.unique == unique {
                var info = stat()
                if lstat(candidate.path, &info) == 0, FileIdentity(info) == identity { return candidate }
            }
        }
        return nil
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

    /// Moves `entry` into `folder` with its content replaced by `pieces`, under its name with the new size: the
    /// quarantine's move of a tagged pitch. One file makes the whole journey, so a crash at any point leaves the
    /// message once: the replacement is written in this folder's tmp/, exchanged with the original (renameat2,
    /// RENAME_EXCHANGE; the original lands in tmp/ and is removed), then renamed into `folder`. (A copy into
    /// `folder` and the original's removal after it left the message twice when a crash came between and a
    /// client filed the original meanwhile; taking the original out of sight first left its only copy in tmp/:
    /// both found in review.) Where the file system cannot exchange, the replacement is renamed over the original
    /// instead; only a quarantine folder on another file system gets a copy and a removal.
    ///
    /// Returns nil when a mail client has the message: it deleted or moved it before the exchange or before the
    /// rename, or linked it elsewhere meanwhile. That is the first half of a client's move (Dovecot links into the
    /// new folder, then removes the old name) or a copy; the original then goes back under its name for the
    /// client to finish with. Renamed by a client meanwhile (Dovecot moving new/ to cur/), the replacement is
    /// found by its inode and moved from there. If the rename into `folder` fails, the original goes back too,
    /// with its own size in its name, and the error is thrown.
    ///
    /// `linksWhenRead`: the original's link count when it was read (`linkCount`), so that a link a client made
    /// while it was classified counts as the client's.
    public func move(_ entry: Entry, replacedWith pieces: [ArraySlice<UInt8>], to folder: MaildirFolder,
                     linksWhenRead: Int? = nil) throws(MaildirError) -> Entry? {
        try move(entry, replacedWith: pieces, to: folder, linksWhenRead: linksWhenRead,
                 exchange: { pitchfilter_rename_exchange($0, $1) })
    }

    /// `move` with `exchange` standing for renameat2's RENAME_EXCHANGE, as for `replace`.
    func move(_ entry: Entry, replacedWith pieces: [ArraySlice<UInt8>], to folder: MaildirFolder,
              linksWhenRead: Int? = nil, exchange: (String, String) -> Int32) throws(MaildirError) -> Entry? {
        try asOwner { () throws(MaildirError) in
            try moveAsOwner(entry, replacedWith: pieces, to: folder, linksWhenRead: linksWhenRead, exchange: exchange)
        }
    }

    private func moveAsOwner(_ entry: Entry, replacedWith pieces: [ArraySlice<UInt8>], to folder: MaildirFolder,
                             linksWhenRead: Int?, exchange: (String, String) -> Int32) throws(MaildirError) -> Entry? {
        let size = pieces.reduce(0) { $0 + $1.count }
        var original = stat()
        guard lstat(entry.path, &original) == 0 else {
            let error = MaildirError("find the original of", entry.path)
            if error.isMissing { return nil }
            throw error
        }
        // A link already there (a delivery to several mailboxes linked into each, a backup) is not a client's.
        let linksBefore = min(Int(original.st_nlink), linksWhenRead ?? Int.max)
        try requireOwnTemporaryDirectory()
        if !Directory.sameFileSystem(path + "/tmp", folder.path) {
            return try copyAndRemove(entry, as: pieces, size: size, to: folder, linksBefore: linksBefore)
        }
        let (temporary, identity) = try writeTemporary(pieces, name: entry.name)
        // Before the exchange, our replacement; after it, the original, by then in the way.
        defer { unlink(temporary) }
        var exchanged = true
        if exchange(temporary, entry.path) != 0 {
            let error = MaildirError("exchange with the original", entry.path)
            if error.isMissing {
                // As in `replace`: the original's absence, or tmp/'s file's.
                if lstat(entry.path, &original) != 0 && errno == ENOENT { return nil }
                throw MaildirError("exchange", temporary, errno: ENOENT)
            }
            // Any other error changed nothing. A client acting between this look and the rename keeps its copy
            // beside ours: microseconds, as in `replace`'s way without the exchange.
            if lstat(entry.path, &original) != 0 && errno == ENOENT { return nil }
            if Int(original.st_nlink) > linksBefore { return nil }  // a client's link: see below
            if rename(temporary, entry.path) != 0 { throw MaildirError("rename into place", entry.path) }
            exchanged = false
        }
        // The replacement is in the original's place; the original, exchanged, at `temporary`.
        func putTheOriginalBack(at path: String) {
            if exchanged { _ = exchange(temporary, path) }
        }
        if (exchanged && Self.linkCount(temporary) > linksBefore) || Self.linkCount(entry.path) > 1 {
            putTheOriginalBack(at: entry.path)
            return nil
        }
        var current = entry
        for _ in 0..<3 {
            let target = Entry(folder: folder, subdirectory: current.subdirectory, name: current.name.resized(to: size))
            if Self.renameWithoutReplacing(current.path, target.path) == 0 {
                try Directory.sync(folder.path + "/" + target.subdirectory.rawValue)
                try Directory.sync(path + "/" + current.subdirectory.rawValue)
                // Linked by a client between the look and the rename: the client's is the message.
                if Self.linkCount(target.path) > 1 {
                    try folder.remove(target)
                    return nil
                }
                return target
            }
            let error = MaildirError("move into", target.path)
            if error.errno == EXDEV {
                // Another mount of the same file system (a bind mount, a container's volume): no rename reaches.
                // It was stuck for good (found in review).
                putTheOriginalBack(at: current.path)
                guard exchanged else { throw error }
                return try copyAndRemove(current, as: pieces, size: size, to: folder, linksBefore: linksBefore)
            }
            if error.isMissing {
                // Gone from this folder: deleted, or moved elsewhere, by a client.
                guard let moved = try file(identity, unique: entry.name.unique) else { return nil }
                if moved.path != current.path {
                    current = moved
                    continue
                }
            }
            // The quarantine folder cannot take it (gone, not writable, full): retried with the events of these
            // exchanges, the move was a hot loop, and meanwhile the replacement sat under the original's size
            // (found in review).
            putTheOriginalBack(at: current.path)
            throw error
        }
        putTheOriginalBack(at: current.path)
        throw MaildirError("move", current.path, errno: EAGAIN)
    }

    /// `move` to a quarantine folder on another file system or mount, where no rename reaches: a copy there, then the
    /// original's removal (the way before `move`; a crash between leaves both, which the service settles by
    /// digest unless a client moved the copy meanwhile). If a client took the original first, the copy goes.
    private func copyAndRemove(_ entry: Entry, as pieces: [ArraySlice<UInt8>], size: Int, to folder: MaildirFolder,
                               linksBefore: Int) throws(MaildirError) -> Entry? {
        let copy = try folder.deliver(pieces, into: entry.subdirectory, name: entry.name.resized(to: size))
        // Held open, the original still tells after its removal whether it has another name: a client's link made
        // meanwhile (the first half of its move), up to the removal itself. The client then has the message.
        let original = open(entry.path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC)
        defer { if original >= 0 { close(original) } }
        if unlink(entry.path) != 0 {
            let error = MaildirError("remove", entry.path)
            guard error.isMissing else { throw error }
            try folder.remove(copy)
            return nil
        }
        try Directory.sync(path + "/" + entry.subdirectory.rawValue)
        var left = stat()
        if original >= 0, fstat(original, &left) == 0, Int(left.st_nlink) > linksBefore - 1 {
            try folder.remove(copy)
            return nil
        }
        return copy
    }

    /// How many names the file has; 0 when it is gone.
    public static func linkCount(_ path: String) -> Int {
        var info = stat()
        return lstat(path, &info) == 0 ? Int(info.st_nlink) : 0
    }

    /// Removes a message file; one already gone is not an error. Returns whether a file of that name was there.
    @discardableResult
    public func remove(_ entry: Entry) throws(MaildirError) -> Bool {
        try asOwner { () throws(MaildirError) -> Bool in
            let removed = unlink(entry.path) == 0
            if !removed && errno != ENOENT { throw MaildirError("remove", entry.path) }
            try Directory.sync(path + "/" + entry.subdirectory.rawValue)
            return removed
        }
    }

    /// Moves a message into another folder (of the same file system) with rename(2), keeping its bytes.
    @discardableResult
    public func move(_ entry: Entry, to folder: MaildirFolder, _ subdirectory: Subdirectory,
                     name: MaildirName) throws(MaildirError) -> Entry {
        try asOwner { () throws(MaildirError) in
            let target = Entry(folder: folder, subdirectory: subdirectory, name: name)
            if link(entry.path, target.path) != 0 { throw MaildirError("link into place", target.path) }
            try Directory.sync(folder.path + "/" + subdirectory.rawValue)
            if unlink(entry.path) != 0 && errno != ENOENT { throw MaildirError("remove", entry.path) }
            try Directory.sync(path + "/" + entry.subdirectory.rawValue)
            return target
        }
    }

    /// Files in tmp/ older than `seconds`: deliveries that crashed part-way (the Maildir specification's 36 hours
    /// is for cleaning up; the service only leaves its own there when it is killed mid-write).
    public func staleTemporaries(olderThan seconds: Int) throws(MaildirError) -> [String] {
        let directory = path + "/tmp"
        let now = time(nil)
        return try asOwner { () throws(MaildirError) in
            try Directory.names(in: directory).filter { name in
                var info = stat()
                guard stat(directory + "/" + name, &info) == 0, info.st_mode & S_IFMT == S_IFREG else { return false }
                return now - info.st_mtim.tv_sec > seconds
            }.map { directory + "/" + $0 }
        }
    }

    /// Removes what earlier pitchfilter processes left in tmp/ when they were killed mid-write: files named by
    /// `writeTemporary` whose process is gone. They are never the only copy of a message: a copy is linked into
    /// place before its original is removed, and a replacement exchanged with its original (or renamed over it)
    /// before the original, then in tmp/, is. Returns how many were removed.
    @discardableResult
    public func removeAbandonedTemporaries() throws(MaildirError) -> Int {
        let directory = path + "/tmp"
        return try asOwner { () throws(MaildirError) in
            var removed = 0
            for name in try Directory.names(in: directory) where name.hasSuffix(Self.temporarySuffix) {
                let parts = name.dropLast(Self.temporarySuffix.count).split(separator: ".")
                guard let last = parts.last, last.hasPrefix("P"), let pid = Int32(last.dropFirst()) else { continue }
                // kill(pid, 0) fails with ESRCH once the process is gone.
                if pid != getpid(), kill(pid, 0) != 0, errno == ESRCH, unlink(directory + "/" + name) == 0 {
                    removed += 1
                }
            }
            return removed
        }
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

    /// A link in tmp/'s place would have a copy written wherever it points (`Directory.names(in:)`).
    private func requireOwnTemporaryDirectory() throws(MaildirError) {
        try requireOwnDirectory()
        // Some tools drop empty directories (git, some restores): a missing tmp/ left pitches where they were,
        // retried for ever (found in review).
        if !Directory.isDirectory(path + "/tmp") { try Directory.make(path + "/tmp") }
        guard Directory.isOwnDirectory(path + "/tmp") else {
            throw MaildirError("write into", path + "/tmp", errno: Directory.isDirectory(path + "/tmp") ? ELOOP : ENOENT)
        }
    }

    private func writeTemporary(_ pieces: [ArraySlice<UInt8>],
                                name: MaildirName) throws(MaildirError) -> (path: String, identity: FileIdentity) {
        // The writer's pid in the name: a file left by a killed process never blocks the retry, and
        // `removeAbandonedTemporaries` can tell whose it was.
        try requireOwnTemporaryDirectory()
        let temporary = path + "/tmp/" + Self.temporaryStem(of: name.unique) + ".P\(getpid())" + Self.temporarySuffix
        var fd = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        if fd < 0 && errno == EEXIST {
            // Ours by name, but no write of this process is under way (each writes one file at a time): left by a
            // killed process that had the same pid, as a container's service has at every start. It blocked
            // every retry for good (found in review); it is never a message's only copy.
            unlink(temporary)
            fd = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        }
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
