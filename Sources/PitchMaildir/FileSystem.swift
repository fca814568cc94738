import CLinuxCalls

#if canImport(Glibc)
import Glibc
#endif

/// The few directory calls the Maildir code needs, over the C library (Foundation's FileManager hides errno,
/// which is what tells a full disk from a missing file).
enum Directory {
    /// The names in `path`. A name that is not UTF-8 cannot be opened again through a String (decoding would
    /// replace its bytes), so it goes to `undecodable`, shown with U+FFFD where its bytes were.
    ///
    /// `followingALink`: whether `path` itself may be a symbolic link. Only a Maildir's root may (an admin's
    /// choice, in the configuration): a link where its `new/`, `cur/` or a folder should be is the mailbox owner's
    /// doing, and would have a service that reads several users' mail read and move another's (found by an
    /// audit).
    /// `keeping`: only the names whose bytes it accepts, looked at before a String is made of any.
    static func names(in path: String, followingALink: Bool = false, keeping: (([UInt8]) -> Bool)? = nil,
                      undecodable: ((String) -> Void)? = nil) throws(MaildirError) -> [String] {
        let descriptor = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC | (followingALink ? 0 : O_NOFOLLOW))
        guard descriptor >= 0 else { throw MaildirError("list", path) }
        guard let directory = fdopendir(descriptor) else {
            let error = MaildirError("list", path)
            close(descriptor)
            throw error
        }
        defer { closedir(directory) }
        var names: [String] = []
        while let entry = readdir(directory) {
            let bytes = DirectoryEntry.nameBytes(entry)
            if let keeping, !keeping(bytes) { continue }
            guard let name = String(validating: bytes, as: UTF8.self) else {
                undecodable?(String(decoding: bytes, as: UTF8.self))
                continue
            }
            if name != "." && name != ".." { names.append(name) }
        }
        return names
    }

    /// Whether a rename can take a file from `first` to `second`.
    static func sameFileSystem(_ first: String, _ second: String) -> Bool {
        var one = stat(), other = stat()
        return stat(first, &one) == 0 && stat(second, &other) == 0 && one.st_dev == other.st_dev
    }

    static func isDirectory(_ path: String) -> Bool {
        var info = stat()
        return stat(path, &info) == 0 && info.st_mode & S_IFMT == S_IFDIR
    }

    /// A directory, and not through a symbolic link at its last component (`names(in:)` says why).
    static func isOwnDirectory(_ path: String) -> Bool {
        var info = stat()
        return lstat(path, &info) == 0 && info.st_mode & S_IFMT == S_IFDIR
    }

    /// Creates the directory (mode 0700, like every MDA), owned like its parent (`Ownership`).
    static func make(_ path: String) throws(MaildirError) {
        if mkdir(path, 0o700) != 0 {
            if errno == EEXIST { return }
            throw MaildirError("create directory", path)
        }
        guard let slash = path.utf8.lastIndex(of: UInt8(ascii: "/")) else { return }
        let parent = slash == path.utf8.startIndex ? "/" : String(path[..<slash])
        try Ownership.give(path, likeThe: parent)
    }

    /// fsync on the directory: makes a rename or link in it durable.
    static func sync(_ path: String) throws(MaildirError) {
        let fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if fd < 0 { throw MaildirError("open directory", path) }
        defer { close(fd) }
        if fsync(fd) != 0 { throw MaildirError("fsync", path) }
    }
}

/// Whose a Maildir is: the user and group its root belongs to, whom root acts as there (`acting`).
public struct FileOwner: Hashable, Sendable {
    public let user: UInt32
    public let group: UInt32

    public init(user: UInt32, group: UInt32) {
        self.user = user
        self.group = group
    }

    /// Root cannot tell whose the Maildir is: nothing is done there (`acting` refuses).
    public static let undetermined = FileOwner(user: UInt32.max, group: UInt32.max)

    /// Whom root acts as in the Maildir at `path`: the user it belongs to, where no one but that user and root
    /// can change the way to it (`onlyTheyOrRootCanRedirect`), with that user's own group; nil for this process as
    /// it is: not root (it can do only what its own user may), or root in a Maildir of root's own, or one not made
    /// yet, in root's directory. `undetermined` otherwise: a user who can redirect the way would otherwise choose
    /// whom root acts as (their link to another user's Maildir, or to /, read as that user's or root's), and
    /// could switch it back between two reads.
    public static func ofDirectory(_ path: String) -> FileOwner? {
        guard geteuid() == 0 else { return nil }
        var info = stat()
        let user: UInt32 = stat(path, &info) == 0 ? info.st_uid : 0
        guard onlyTheyOrRootCanRedirect(path, user: user) else { return .undetermined }
        guard user != 0 else { return nil }
        // The user's own group, as an MDA delivering as them has: the directory's may be one they are not in (a
        // Maildir chowned to the user alone stays group root).
        var entry = passwd()
        var result: UnsafeMutablePointer<passwd>?
        var buffer = [CChar](repeating: 0, count: 4_096)
        guard getpwuid_r(user, &entry, &buffer, buffer.count, &result) == 0 else { return .undetermined }
        if result != nil { return FileOwner(user: user, group: entry.pw_gid) }
        return info.st_gid != 0 ? FileOwner(user: user, group: info.st_gid) : .undetermined
    }

    /// Whether no one but `user` and root can change where `path` leads: walked one part at a time, each link read
    /// and followed where it points, every directory on the way (and the last one) theirs and writable by no one
    /// else; a sticky one (/tmp) only where the next part is there and theirs, since anyone may make a name in it.
    /// A part that is not there yet can then be made only by them. Relative paths, and more than 40 links, are
    /// not trusted.
    static func onlyTheyOrRootCanRedirect(_ path: String, user: UInt32) -> Bool {
        let theirs: (UInt32) -> Bool = { $0 == 0 || $0 == user }
        let rule = WayRule(trusted: theirs, trustedInSticky: theirs, writeBits: S_IWGRP | S_IWOTH)
        return whereOthersCanChange(path, under: rule, endingIn: S_IFDIR) == nil
    }

    /// Who besides its owner and root can change what a file says: for a file that directs the service, its
    /// configuration, as sshd's StrictModes and `postfix check` ask of theirs.
    public enum FileExposure: Equatable, Sendable {
        /// Its owner (root or `user`) and root alone.
        case ownerAndRootAlone
        /// Its group, or another user than root and `user`: the file, or a directory on the way, named.
        case othersToo(String)
        /// Anyone on the machine: the file, or a directory on the way, is writable by all (not sticky), named.
        case anyone(String)
    }

    /// How exposed the regular file at the absolute `path` is, for a process running as `user` (links followed).
    /// A file that is not there, or no regular file, is `ownerAndRootAlone`: reading it says what is wrong.
    public static func exposure(ofFile path: String, user: UInt32) -> FileExposure {
        var info = stat()
        guard path.hasPrefix("/"), stat(path, &info) == 0, info.st_mode & S_IFMT == S_IFREG else {
            return .ownerAndRootAlone
        }
        let theirs: (UInt32) -> Bool = { $0 == 0 || $0 == user }
        // Whoever owns a name in a sticky directory that all may write (/tmp) may be anyone who made it first
        // (found in review: another user's directory in /tmp only warned of).
        let anyone = WayRule(trusted: { _ in true }, trustedInSticky: theirs, writeBits: S_IWOTH)
        if let fault = whereOthersCanChange(path, under: anyone, endingIn: S_IFREG) { return .anyone(fault) }
        let others = WayRule(trusted: theirs, trustedInSticky: theirs, writeBits: S_IWGRP | S_IWOTH)
        if let fault = whereOthersCanChange(path, under: others, endingIn: S_IFREG) { return .othersToo(fault) }
        return .ownerAndRootAlone
    }

    /// How exposed the directory at the absolute `path` is, for a process running as `user` (links followed): who
    /// besides its owner and root may remove or replace what is in it, and so a socket the service listens on.
    /// A sticky directory at the end (/tmp) is no exposure: others may add names there, not take ours away.
    public static func exposure(ofDirectory path: String, user: UInt32) -> FileExposure {
        let theirs: (UInt32) -> Bool = { $0 == 0 || $0 == user }
        let anyone = WayRule(trusted: { _ in true }, trustedInSticky: theirs, writeBits: S_IWOTH)
        if let fault = whereOthersCanChange(path, under: anyone, endingIn: S_IFDIR, stickyEnd: true) {
            return .anyone(fault)
        }
        let others = WayRule(trusted: theirs, trustedInSticky: theirs, writeBits: S_IWGRP | S_IWOTH)
        if let fault = whereOthersCanChange(path, under: others, endingIn: S_IFDIR, stickyEnd: true) {
            return .othersToo(fault)
        }
        return .ownerAndRootAlone
    }

    /// Whose directories and files a walk accepts (in a sticky directory others may write, whose names in it),
    /// and which of their write bits let someone else in.
    private struct WayRule {
        let trusted: (UInt32) -> Bool
        let trustedInSticky: (UInt32) -> Bool
        let writeBits: mode_t
    }

    /// Where someone outside `rule` could change where `path` leads, or what it holds: the first directory or
    /// file at fault, or nil. The walk of `onlyTheyOrRootCanRedirect`, ending in a directory or (`S_IFREG`) a
    /// regular file that must be a trusted owner's and writable by no one else.
    private static func whereOthersCanChange(_ path: String, under rule: WayRule, endingIn last: mode_t,
                                             stickyEnd: Bool = false) -> String? {
        guard path.hasPrefix("/") else { return path }
        var parts = path.split(separator: "/").map(String.init).reversed() as [String]  // a stack, next part last
        var directory = "/"
        var linksFollowed = 0
        while let part = parts.popLast() {
            guard let kind = kind(of: directory, under: rule) else { return directory }
            if part.isEmpty || part == "." { continue }
            if part == ".." {
                // `directory` has no links in it (each was followed), so its parent is the one walked through.
                directory = String(directory[..<directory.lastIndex(of: "/")!])
                if directory.isEmpty { directory = "/" }
                continue
            }
            let next = (directory == "/" ? "" : directory) + "/" + part
            var info = stat()
            guard lstat(next, &info) == 0 else {
                // Not there: made later by whoever may write here, which must be them alone.
                return errno == ENOENT && kind == .theirsAlone ? nil : directory
            }
            // A name others may make or replace here (a sticky directory's) must be theirs.
            if kind == .sticky && !rule.trustedInSticky(info.st_uid) { return next }
            switch info.st_mode & S_IFMT {
            case S_IFLNK:
                linksFollowed += 1
                var target = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
                let length = readlink(next, &target, Int(PATH_MAX))
                guard linksFollowed <= 40, length > 0, length < Int(PATH_MAX) else { return next }
                let destination = String(decoding: target[..<length].map { UInt8(bitPattern: $0) }, as: UTF8.self)
                if destination.hasPrefix("/") { directory = "/" }
                parts += destination.split(separator: "/").map(String.init).reversed()
            case S_IFDIR:
                directory = next
            case S_IFREG where last == S_IFREG && parts.isEmpty:
                return rule.trusted(info.st_uid) && info.st_mode & rule.writeBits == 0 ? nil : next
            default:
                return next
            }
        }
        guard last == S_IFDIR else { return path }  // a file was asked for, and the way ended in a directory
        let end = kind(of: directory, under: rule)
        return end == .theirsAlone || (stickyEnd && end == .sticky) ? nil : directory
    }

    /// A directory of a trusted owner's: writable by them alone, or by others too but sticky (they may add names,
    /// and rename or remove only their own).
    private enum DirectoryKind { case theirsAlone, sticky }

    /// Nil where `path` is no directory of an owner `rule` trusts, or others may rename or remove what is in it.
    private static func kind(of path: String, under rule: WayRule) -> DirectoryKind? {
        var info = stat()
        guard lstat(path, &info) == 0, info.st_mode & S_IFMT == S_IFDIR, rule.trusted(info.st_uid) else { return nil }
        if info.st_mode & rule.writeBits == 0 { return .theirsAlone }
        return info.st_mode & S_ISVTX != 0 ? .sticky : nil
    }

    /// Runs `body` with this thread's file accesses checked as `owner`'s (setfsuid, setfsgid), then as before.
    ///
    /// Root works in directories their owner controls: between a check that `new/` is a directory and the rename
    /// into it, the owner can put a symbolic link there, and a rename, link or write made as root would land
    /// wherever it points (a file of the owner's choosing in /etc; another user's mail removed: found in review).
    /// The checks cannot close that gap; acting as the owner does, as every MDA delivers as the recipient: the
    /// owner's links then reach only what the owner could change anyway. The thread's file-system identity alone
    /// changes, so the database and signals are untouched, and the body must not suspend (it is synchronous) so
    /// that it runs on this thread throughout. Nil owner: `body` as it is. An owner root cannot act as (no
    /// CAP_SETUID, a system-call filter without @setuid) or cannot tell (`undetermined`): nothing is done, and the
    /// error names `path`.
    public static func acting<T>(as owner: FileOwner?, in path: String,
                                 _ body: () throws(MaildirError) -> T) throws(MaildirError) -> T {
        guard let owner, owner.user != 0 else { return try body() }
        guard owner != .undetermined else { throw MaildirError("tell whose Maildir holds", path, errno: EACCES) }
        guard rootsGroupsDropped else { throw MaildirError("act as the owner of", path, errno: EPERM) }
        let formerGroup = pitchfilter_setfsgid(owner.group)
        let formerUser = pitchfilter_setfsuid(owner.user)
        defer {
            _ = pitchfilter_setfsuid(formerUser)
            _ = pitchfilter_setfsgid(formerGroup)
        }
        // Each returns the former id whether or not it took: asked again (with an id never valid), it says which
        // is in force.
        guard currentFileSystemUser == owner.user, pitchfilter_setfsgid(UInt32.max) == owner.group else {
            throw MaildirError("act as the owner of", path, errno: EPERM)
        }
        return try body()
    }

    /// setfsgid changes one group: root's supplementary groups (0 under sudo) would still count while acting as
    /// the owner, and a link could reach a file of group root's. Root, with its capabilities, needs none of them,
    /// so they go, process-wide, before root first acts as anyone; false if they are there and cannot go.
    private static let rootsGroupsDropped: Bool = setgroups(0, nil) == 0 || getgroups(0, nil) == 0

    /// The user this thread's file accesses are checked as: the effective user, unless `acting` changed it.
    static var currentFileSystemUser: UInt32 {
        // setfsuid returns the current id; given one it refuses (-1 is never a user), it changes nothing.
        pitchfilter_setfsuid(UInt32.max)
    }
}

/// Who owns what the Maildir code creates when root works as itself (`FileOwner.ofDirectory`: a Maildir of root's
/// own): the owner of the directory it is made in, should an admin have given that one away. Acting as the
/// Maildir's owner, what is made is theirs already. Only root can give a file away, and only root needs to.
enum Ownership {
    /// Gives the open file `fd` (at `path`, for errors) the owner and group of `directory`, when run as root.
    /// Acting as the Maildir's owner (`FileOwner.acting`), the file is the owner's already; a group the owner is
    /// no member of is then left as the file was made.
    static func give(_ fd: Int32, at path: String, likeThe directory: String) throws(MaildirError) {
        guard geteuid() == 0 else { return }
        var owner = stat()
        guard stat(directory, &owner) == 0 else { throw MaildirError("stat", directory) }
        if fchown(fd, owner.st_uid, owner.st_gid) != 0 {
            if errno == EPERM && FileOwner.currentFileSystemUser != 0 { return }
            throw MaildirError("give to the Maildir's owner", path)
        }
    }

    /// The same for the directory at `path`, which we just made. The owner of `directory` could have put
    /// something else under the name since (found in review: a hard link to any file, which lchown would have
    /// given them), so what is given away is what opens as a directory, not through a link (a hard link is never
    /// one, and a symbolic link does not open), is still ours, and has no subdirectories: another directory of
    /// theirs renamed onto the name is not ours (found in review).
    static func give(_ path: String, likeThe directory: String) throws(MaildirError) {
        guard geteuid() == 0 else { return }
        let descriptor = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
        guard descriptor >= 0 else { throw MaildirError("open the directory just made", path) }
        defer { close(descriptor) }
        var made = stat()
        guard fstat(descriptor, &made) == 0, made.st_uid == FileOwner.currentFileSystemUser,
              made.st_nlink <= 2 else {  // 1 on btrfs
            throw MaildirError("give away the directory just made", path, errno: EPERM)
        }
        try give(descriptor, at: path, likeThe: directory)
    }
}

/// Whether a file is still being written: open for writing by some process, as `cp` into new/ leaves it until it
/// is done. The Maildir protocol writes in tmp/ and renames, but not every writer follows it, and a message read
/// half-written would be tagged or moved half: the rest, written into the file replaced, lost (found by an
/// audit). Linux tells through a read lease, which is refused (EAGAIN) while anyone has the file open for
/// writing; taken, it is given back at once.
public enum WriteInProgress {
    /// True only when Linux says so; where it cannot (the file is not ours to lease, a file system without
    /// leases), false, as before.
    public static func check(_ path: String) -> Bool {
        _ = ignoringLeaseBreaks
        let descriptor = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC)
        guard descriptor >= 0 else { return false }
        defer { close(descriptor) }
        if fcntl(descriptor, setLease, F_RDLCK) == 0 {
            _ = fcntl(descriptor, setLease, F_UNLCK)
            return false
        }
        return errno == EAGAIN
    }

    /// F_SETLEASE (F_LINUX_SPECIFIC_BASE + 0): fcntl.h defines it only with _GNU_SOURCE, which the Glibc module
    /// does not set.
    private static let setLease: Int32 = 1024

    /// A writer opening the file while we hold the lease (a few microseconds) makes the kernel send SIGIO, whose
    /// default action ends the process; the lease is given back at once anyway.
    private static let ignoringLeaseBreaks: Void = { _ = signal(SIGIO, SIG_IGN) }()
}

public enum FileBytes {
    /// The whole file, or nil when it is larger than `limit` bytes (the caller leaves such messages alone).
    ///
    /// Only a regular file is read: a symbolic link is not followed and a FIFO or device is not opened for good
    /// (`MaildirError.isNotAMessageFile`). Whoever may write into a Maildir must not make the reader block, nor
    /// read a file for them that only the reader may read.
    public static func read(_ path: String, limit: Int) throws(MaildirError) -> [UInt8]? {
        let fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK)
        if fd < 0 { throw MaildirError("open", path) }
        defer { close(fd) }
        var info = stat()
        if fstat(fd, &info) != 0 { throw MaildirError("stat", path) }
        if info.st_mode & S_IFMT != S_IFREG { throw .notARegularFile(path) }
        if Int(info.st_size) > limit { return nil }
        // One byte more than fstat's size, so that the read seeing the end finds room and nothing grows.
        var bytes = [UInt8](repeating: 0, count: Int(info.st_size) + 1)
        var count = 0
        while true {
            if count == bytes.count {
                // The file has grown since fstat: read on until the real end.
                if count > limit { return nil }
                bytes += [UInt8](repeating: 0, count: max(4096, count / 2))
            }
            let n = bytes.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress! + count, $0.count - count) }
            if n < 0 {
                if errno == EINTR { continue }
                throw MaildirError("read", path)
            }
            if n == 0 { break }
            count += n
        }
        bytes.removeSubrange(count...)
        return count > limit ? nil : bytes
    }

    static func writeAll(_ fd: Int32, _ bytes: ArraySlice<UInt8>, path: String) throws(MaildirError) {
        let failure: MaildirError? = bytes.withUnsafeBytes { buffer in
            guard let base = buffer.baseAddress else { return nil }
            var offset = 0
            while offset < buffer.count {
                let n = write(fd, base + offset, buffer.count - offset)
                if n < 0 {
                    if errno == EINTR { continue }
                    return MaildirError("write", path)
                }
                offset += n
            }
            return nil
        }
        if let failure { throw failure }
    }
}

/// Reading a directory's entries.
public enum DirectoryEntry {
    /// The bytes of the name of an entry readdir(3) returned, up to its NUL, read in place
    /// (`pitchfilter_dirent_name` says why not through `entry.pointee`).
    public static func nameBytes(_ entry: UnsafePointer<dirent>) -> [UInt8] {
        guard let name = pitchfilter_dirent_name(entry) else { return [] }
        return Array(UnsafeRawBufferPointer(start: name, count: strlen(name)))
    }
}
