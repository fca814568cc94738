import Dispatch
import PitchMaildir
import PitchMessage
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// One message found at a path the user gave.
public struct MailItem {
    /// How output lines name it: the file's path, or "mbox-path:N" (1-based) for the Nth message of an mbox.
    public var name: String
    public var bytes: [UInt8]

    public init(name: String, bytes: [UInt8]) {
        self.name = name
        self.bytes = bytes
    }
}

public enum MailSourceError: Error, CustomStringConvertible {
    case unreadable(String, String)
    /// The path holds no message: an empty folder, Maildir or file, or a file that is no mail (a PDF, Thunderbird's
    /// .msf index beside every folder). Learning from it is learning nothing, which is no failure (an emptied Junk
    /// folder, an mbox after its expunge), so `train` and `contacts import` say so as a note (found by an audit: a
    /// nightly `train` of an emptied folder exited 3); `classify` and `eval` still fail on it, as a path with
    /// nothing to judge.
    case noMail(String, String)

    public var description: String {
        switch self {
        // The path as a terminal or a log should show it: a newline in a file's name would forge a line.
        case .unreadable(let path, let reason), .noMail(let path, let reason):
            "cannot read \(TerminalText.safe(path)): \(reason)"
        }
    }

    /// Says it on standard error as `train` and `contacts import` do: a path with no mail as a note, anything else
    /// as the failure it is. Returns whether it was a failure.
    public func reportWhileLearning() -> Bool {
        guard case .noMail(let path, let reason) = self else {
            Stores.report(self)
            return true
        }
        Stores.reportLine("note: \(TerminalText.safe(path)): \(reason), nothing learned from it")
        return false
    }
}

/// The PATH arguments of classify and train: a message file, a directory of message files, a Maildir (its new/
/// and cur/), an mbox, or "-" for one message on standard input. Directories are read in byte-wise name order,
/// so runs are repeatable; hidden files and Maildir's tmp/ (deliveries in progress) are skipped.
public enum MailSource {
    /// Calls `body` for each message, loading one file at a time. A file or folder that cannot be read is
    /// reported to `unreadable` and the rest are still read; an error from `body` stops everything. A path that
    /// gave no message and no error (an empty folder, a Maildir whose mail is all in its own folders) is reported
    /// too, as "no messages found": given among others, it was dropped unsaid and `classify` exited as for one
    /// message (found by an audit). Such a path is `.noMail` when there was nothing in it to read, and unreadable
    /// when its mail is in folders not read (an archive's subfolders, a Maildir's own folders), which `train` must
    /// not take for an empty folder. `notes`: say what is not read and is no error (subfolders) on standard error,
    /// and report such a path; off for a second reading of the same paths.
    public static func forEach(
        at path: String, notes: Bool = true, unreadable: (MailSourceError) -> Void, _ body: (MailItem) throws -> Void
    ) rethrows {
        var gaveMessage = false, failed = false, notedNoMail = false
        let leftFolders = try forEachGiven(at: path, notes: notes, unreadable: { error in
            if case .noMail = error { notedNoMail = true } else { failed = true }
            unreadable(error)
        }) { item in
            gaveMessage = true
            try body(item)
        }
        // Files that are no mail beside the folders not read (an archive's README) do not make it a folder read
        // (found by an audit: `train` of such a folder learned nothing, and exited 0).
        guard notes, !gaveMessage, !failed else { return }
        if leftFolders {
            unreadable(.unreadable(path, noMessages))
        } else if !notedNoMail {
            unreadable(.noMail(path, noMessages))
        }
    }

    /// What a path that held no message is reported with.
    static let noMessages = "no messages found"

    /// Returns whether folders in it were left unread (said only with `notes`).
    private static func forEachGiven(
        at path: String, notes: Bool, unreadable: (MailSourceError) -> Void, _ body: (MailItem) throws -> Void
    ) rethrows -> Bool {
        if path == "-" {
            // One message, whatever its first line: what arrives on a pipe with an envelope line (procmail, Postfix's
            // pipe(8) with flags=F) often has unquoted "From " lines in its body, which an mbox reading would cut
            // it at (found in review).
            guard !standardInputTaken.exchange(true, ordering: .relaxed) else {
                // Not "empty": the message went to an earlier "-" (found by an audit, `--pitch - --ham -`).
                unreadable(.unreadable("-", "standard input was read already, for an earlier \"-\""))
                return false
            }
            switch readStandardInput() {
            case .success(let bytes) where HeaderEdit.endsLinesInBareCR(bytes):
                unreadable(.unreadable("-", bareCarriageReturns))
            case .success(let bytes): try body(MailItem(name: "-", bytes: bytes))
            case .failure(let error): unreadable(error)
            }
            return false
        }
        var status = stat()
        guard stat(path, &status) == 0 else {
            // An argument that is not UTF-8 reaches us with U+FFFD for its bytes, and names no file then. Said as a
            // folder's such file is (an audit found the advice to give its directory instead, where it is not read
            // either).
            let reason = errno == ENOENT && Environment.lostBytes(path)
                ? "its name is not UTF-8; rename the file to read it"
                : systemReason(errno)
            unreadable(.unreadable(path, reason))
            return false
        }
        if status.st_mode & S_IFMT != S_IFDIR {
            try forEachInFile(path, notes: notes, unreadable: unreadable, body)
            return false
        }
        var leftFolders = false
        let base = folderPath(path)
        let within = base == "/" ? "" : base
        let isMaildir = isMaildir(base)
        // A Maildir's own folders (.Sent, .Archive) are not read with it, as a folder's subfolders are not; said
        // the same way (found by an audit: they were skipped unsaid, being hidden names).
        if notes, isMaildir, case .success(let listing) = files(in: base, hidden: true) {
            // Maildir++'s ".Sent", or Dovecot's LAYOUT=fs "Sent" (found by an audit: those went unsaid).
            let folders = listing.subdirectories.filter {
                ($0.hasPrefix(".") || !["cur", "new", "tmp"].contains($0)) && access(within + "/" + $0 + "/cur", F_OK) == 0
            }
            if !folders.isEmpty {
                leftFolders = true
                let shown = folders.prefix(3).map { TerminalText.safe($0) }.joined(separator: ", ")
                    + (folders.count > 3 ? ", …" : "")
                let (plural, them) = folders.count == 1 ? ("", "it") : ("s", "each")
                Stores.reportLine("note: \(TerminalText.safe(base)): \(folders.count) Maildir folder\(plural) not "
                    + "read (\(shown)); give \(them) as a path of its own")
            }
        }
        // A Maildir's new/ and cur/ as one folder, in byte-wise order of the file names, as the evaluation protocol
        // puts a folder's messages in folds (found by an audit: all of new/, then all of cur/).
        var named: [(path: String, name: String, problem: String?)] = []
        for folder in isMaildir ? [within + "/new", within + "/cur"] : [base] {
            let entries: [(name: String, problem: String?)], subdirectories: [String]
            switch files(in: folder) {
            case .success(let listing): (entries, subdirectories) = listing
            case .failure(let failure):
                unreadable(.unreadable(folder, "cannot list the directory: \(failure.reason)"))
                continue
            }
            // Not read, and not an error: a tree of folders is given folder by folder. Said, so that an archive
            // of subfolders does not train nothing with status 0 unnoticed (found by an audit).
            if notes, !subdirectories.isEmpty {
                leftFolders = true
                let shown = subdirectories.prefix(3).map { TerminalText.safe($0) }.joined(separator: ", ")
                    + (subdirectories.count > 3 ? ", …" : "")
                Stores.reportLine("note: \(TerminalText.safe(folder)): \(subdirectories.count) "
                    + "subdirector\(subdirectories.count == 1 ? "y" : "ies") not read (\(shown)); give "
                    + "\(subdirectories.count == 1 ? "it" : "each") as a path of its own")
            }
            let prefix = folder == "/" ? "/" : folder + "/"
            named += entries.map { (prefix + $0.name, $0.name, $0.problem) }
        }
        if isMaildir { named.sort { $0.name.utf8.lexicographicallyPrecedes($1.name.utf8) } }
        // Deleted in a mail client and not yet expunged: a pitch the user deleted from the INBOX instead of moving
        // it to Junk would be learned as ham with the INBOX (found by an audit). In any folder, so also in a
        // Maildir's cur/ given as one (found by a later audit).
        let deleted = named.count(where: { isMarkedDeleted($0.name) })
        if deleted > 0 {
            named.removeAll { isMarkedDeleted($0.name) }
            if notes {
                Stores.reportLine("note: \(TerminalText.safe(base)): \(deleted) message\(deleted == 1 ? "" : "s") "
                    + "marked deleted (Maildir flag T, not yet expunged) not read")
            }
        }
        for entry in named {
            if let problem = entry.problem {
                unreadable(.unreadable(entry.path, problem))
            } else {
                try forEachInFile(entry.path, notes: notes, unreadable: unreadable, body)
            }
        }
        return leftFolders
    }

    /// Whether a Maildir file's name carries the T (trashed) flag: its info after ":2," (or "!2,", for file systems
    /// without colons), whose capitals are the flags (lower case letters are Dovecot's keywords).
    static func isMarkedDeleted(_ name: String) -> Bool {
        let bytes = Array(name.utf8)
        guard let info = bytes.indices.last(where: {
            $0 + 2 < bytes.count && (bytes[$0] == UInt8(ascii: ":") || bytes[$0] == UInt8(ascii: "!"))
                && bytes[$0 + 1] == UInt8(ascii: "2") && bytes[$0 + 2] == UInt8(ascii: ",")
        }) else { return false }
        return bytes[(info + 3)...].contains(UInt8(ascii: "T"))
    }

    /// Whether the folder at `path` is read as a Maildir: its new/ and cur/ together, as one folder.
    public static func isMaildir(_ path: String) -> Bool {
        let base = folderPath(path)
        return ["cur", "new"].allSatisfy { access((base == "/" ? "" : base) + "/" + $0, F_OK) == 0 }
    }

    /// A folder's path as messages in it are named from: without trailing slashes, but "/" stays itself (found
    /// by an audit: it was shown as "").
    static func folderPath(_ path: String) -> String {
        var path = Substring(path)
        while path.count > 1, path.hasSuffix("/") { path = path.dropLast() }
        return String(path)
    }

    /// Whether a "-" has taken standard input: it holds one message, for one "-".
    private static let standardInputTaken = Atomic(false)

    /// Standard input as one message; an empty or unreadable one is no message (never train on nothing).
    private static func readStandardInput() -> Result<[UInt8], MailSourceError> {
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 1 << 16)
        while true {
            let result = chunk.withUnsafeMutableBytes { StandardInput.readSome(into: $0.baseAddress!, $0.count) }
            switch result {
            case .bytes(let n):
                bytes += chunk[0..<n]
                if bytes.count > maxMessageBytes {
                    return .failure(.unreadable("-", "larger than \(maxMessageBytes >> 20) MiB, skipped (the filter "
                        + "and the service leave such mail alone)"))
                }
            case .end:
                // A note to `train`, as an empty file is (found by an audit: `--ham - < /dev/null` failed the run).
                if bytes.isEmpty { return .failure(.noMail("-", "standard input is empty")) }
                if let format = compression(of: bytes) {
                    return .failure(.unreadable("-", "\(format)-compressed; decompress it first"))
                }
                if let format = nonMailFormat(of: bytes) { return .failure(.noMail("-", "\(format), not a mail message")) }
                // As a file's (found by an audit: text without a header was refused from a file, and classified
                // and learned from standard input).
                guard MailFileFormats.beginsLikeMail(bytes) else {
                    return .failure(.noMail("-", "no mail message (its first line is no header field)"))
                }
                return .success(bytes)
            case .failed(let error): return .failure(.unreadable("-", error.description))
            }
        }
    }

    /// What `folder` holds, hidden names left out, in byte order of the names: the regular files (after symlinks:
    /// a FIFO or device in a mail folder would block or never end) to read, and, in their places, with why they
    /// are not read, what a path given as a Swift string cannot reach (a name that is not UTF-8, shown with U+FFFD)
    /// and what is neither file nor directory (a FIFO, a socket, a device, a link to nothing): reported rather
    /// than skipped unseen (audits found both skipped unsaid, and `train` exiting 0). Apart, the subdirectories.
    /// `hidden`: names starting with "." too ("." and ".." apart).
    private static func files(in folder: String, hidden: Bool = false)
        -> Result<(entries: [(name: String, problem: String?)], subdirectories: [String]), ListingFailure>
    {
        guard let directory = opendir(folder) else { return .failure(ListingFailure(reason: systemReason(errno))) }
        defer { closedir(directory) }
        var entries: [(bytes: [UInt8], name: String, problem: String?)] = []
        var subdirectories: [String] = []
        while let entry = readdir(directory) {
            let bytes = DirectoryEntry.nameBytes(entry)
            guard bytes.first != UInt8(ascii: ".") || hidden && bytes != [0x2E] && bytes != [0x2E, 0x2E] else { continue }
            var status = stat()
            let path = Array(folder.utf8) + [UInt8(ascii: "/")] + bytes + [0]
            let exists = path.withUnsafeBufferPointer { buffer in
                buffer.withMemoryRebound(to: CChar.self) { stat($0.baseAddress!, &status) == 0 }
            }
            let statError = errno
            let shown = String(decoding: bytes, as: UTF8.self)
            let problem: String?
            if !exists {
                problem = statError == ENOENT ? "a link to nothing" : systemReason(statError)
            } else if status.st_mode & S_IFMT == S_IFDIR {
                subdirectories.append(shown)
                continue
            } else if status.st_mode & S_IFMT != S_IFREG {
                problem = "not a regular file but \(kindOfFile(status.st_mode))"
            } else if String(validating: bytes, as: UTF8.self) == nil {
                problem = "its name is not UTF-8; rename the file to read it"
            } else {
                problem = nil
            }
            entries.append((bytes, shown, problem))
        }
        entries.sort { $0.bytes.lexicographicallyPrecedes($1.bytes) }
        return .success((entries.map { ($0.name, $0.problem) }, subdirectories.sorted()))
    }

    /// Why a folder could not be listed ("permission denied").
    private struct ListingFailure: Error {
        let reason: String
    }

    private static func kindOfFile(_ mode: mode_t) -> String {
        switch mode & S_IFMT {
        case S_IFIFO: "a FIFO"
        case S_IFSOCK: "a socket"
        case S_IFCHR: "a character device"
        case S_IFBLK: "a block device"
        default: "of an unknown kind"
        }
    }

    /// Larger messages are skipped, as the pipe filter, the service and the milter leave them alone.
    public static let maxMessageBytes = 32 << 20
    /// How much of a file is read at a time.
    static let pieceBytes = 4 << 20

    /// A message file, or an mbox read a piece at a time: an archive of any size needs the memory of one message.
    /// Why a message whose lines end in bare CR is not read: to us (and to procmail, Dovecot and Postfix) it is one
    /// header line, which `classify` would score on nothing and `train` would learn as nothing a message of mail
    /// holds; `filter` passes it on untagged for the same reason. Said, with the way out.
    static let bareCarriageReturns = "its lines end in bare CR, not LF or CRLF, so it reads as one line; "
        + "convert it first (tr '\\r' '\\n')"

    /// The compressor whose format `bytes` begin with, by its magic number; nil for anything else. Read as it is,
    /// a compressed mbox was one message of binary junk, which `train` learned (found by an audit: 5,000 tokens
    /// learned as ham from a gzipped archive). No message begins with these bytes: each magic number holds a byte
    /// that is not printable ASCII (0x8B, 0xB5, 0xFD, 0xBC, 0x03), which no header field's name does, but bzip2's,
    /// whose "BZh", block size and block (or end of stream) magic number no field's name is either.
    static func compression(of bytes: [UInt8]) -> String? {
        compressionMagics.first { format, magic in
            // bzip2's "BZh" is followed by the block size, "1" to "9", then the first block's magic number, or the
            // end of stream's for an empty file.
            bytes.starts(with: magic) && (format != "bzip2" || bytes.dropFirst(4).starts(with: [0x31, 0x41, 0x59])
                || bytes.dropFirst(4).starts(with: [0x17, 0x72, 0x45]))
        }?.0
    }

    /// What a file is, by its first bytes, when those say it is no message: a document, an image or a program's
    /// own data left in a mail folder (found by an audit: a PDF, a JPEG and Thunderbird's .msf index were learned as
    /// ham). Text of other kinds is known by its first line (`MailFileFormats.beginsLikeMail`).
    /// Skipped with a note, not an error, to `train`: a Thunderbird folder has an .msf beside every mbox.
    static func nonMailFormat(of bytes: [UInt8]) -> String? {
        nonMailMagics.first { bytes.starts(with: $0.1) }?.0
    }

    private static let nonMailMagics: [(String, [UInt8])] = [
        ("a PDF document", Array("%PDF-".utf8)), ("a PNG image", [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]),
        ("a JPEG image", [0xFF, 0xD8, 0xFF]), ("a GIF image", Array("GIF87a".utf8)), ("a GIF image", Array("GIF89a".utf8)),
        // Outlook's .msg and old Office files: save the message as .eml (RFC 822) to read it.
        ("an OLE compound file (an Outlook .msg or Office document)", [0xD0, 0xCF, 0x11, 0xE0, 0xA1, 0xB1, 0x1A, 0xE1]),
        ("a Thunderbird index (Mork)", Array("// <!-- <mdb:mork".utf8)),
        ("an SQLite database", Array("SQLite format 3\u{0}".utf8)), ("a program (ELF)", [0x7F, 0x45, 0x4C, 0x46]),
    ]

    /// Made once, not for every file read.
    private static let compressionMagics: [(String, [UInt8])] = [
        ("gzip", [0x1F, 0x8B]), ("bzip2", Array("BZh".utf8)), ("xz", [0xFD, 0x37, 0x7A, 0x58, 0x5A, 0x00]),
        ("zstd", [0x28, 0xB5, 0x2F, 0xFD]), ("zip", [0x50, 0x4B, 0x03, 0x04]),
        ("7z", [0x37, 0x7A, 0xBC, 0xAF, 0x27, 0x1C]),
    ]

    private static func forEachInFile(
        _ path: String, notes: Bool, unreadable: (MailSourceError) -> Void, _ body: (MailItem) throws -> Void
    ) rethrows {
        let file: PieceReader
        switch PieceReader.open(path) {
        case .success(let opened): file = opened
        case .failure(let error): return unreadable(error)
        }
        defer { file.close() }
        var buffer: [UInt8] = []
        var ended = false
        func readPiece() -> Bool {
            switch file.append(to: &buffer, limit: pieceBytes) {
            case .success(let more):
                ended = !more
                return true
            case .failure(let error):
                unreadable(error)
                return false
            }
        }
        guard readPiece() else { return }
        // As for standard input: nothing is no message, and training on it would teach an empty one.
        guard !buffer.isEmpty else { return unreadable(.noMail(path, "the file is empty")) }
        let tooLarge = "larger than \(maxMessageBytes >> 20) MiB, skipped (the filter and the service leave such mail alone)"
        if let format = Self.compression(of: buffer) {
            return unreadable(.unreadable(path, "\(format)-compressed; decompress it first"))
        }
        if let format = Self.nonMailFormat(of: buffer) {
            return unreadable(.noMail(path, "\(format), not a mail message"))
        }
        if let format = MailFileFormats.unsplitMailbox(buffer) { return unreadable(.unreadable(path, format)) }
        if let emlx = MailFileFormats.emlxMessage(in: buffer) {
            let end = emlx.start + emlx.length
            // To the end it gives, and past it to where Mail's property list begins (within the limit).
            let wanted = min(end, emlx.start + maxMessageBytes + 1) + 64
            while !ended, buffer.count < wanted { guard readPiece() else { return } }
            // A file shorter than its length line says is that, whatever the length (found by an audit: a length
            // past the limit was "larger than 32 MiB" in a file of a few bytes).
            if buffer.count < end, ended {
                return unreadable(.unreadable(path, "an Apple Mail .emlx shorter than the length its first line gives"))
            }
            if emlx.length > maxMessageBytes { return unreadable(.unreadable(path, tooLarge)) }
            // Only Mail's property list (or nothing) may follow: a length that ends elsewhere cuts the message short
            // or takes the list in as its text (found by an audit: any length was taken as it came).
            let after = buffer[end..<min(buffer.count, end + 64)].drop { $0 == 0x20 || $0 == 0x09 || $0 == 0x0D || $0 == 0x0A }
            if let next = after.first, next != UInt8(ascii: "<") {
                return unreadable(.unreadable(
                    path, "an Apple Mail .emlx whose first line does not give its message's length (no property list "
                        + "where the message ends)"))
            }
            let message = Array(buffer[emlx.start..<end])
            if HeaderEdit.endsLinesInBareCR(message) { return unreadable(.unreadable(path, bareCarriageReturns)) }
            return try body(MailItem(name: path, bytes: message))
        }
        guard let mboxStart = Mbox.firstStart(in: buffer) else {
            guard MailFileFormats.beginsLikeMail(buffer) else {
                return unreadable(.noMail(path, "no mail message (its first line is no header field)"))
            }
            while !ended, buffer.count <= maxMessageBytes { guard readPiece() else { return } }
            if buffer.count > maxMessageBytes { return unreadable(.unreadable(path, tooLarge)) }
            if HeaderEdit.endsLinesInBareCR(buffer) { return unreadable(.unreadable(path, bareCarriageReturns)) }
            return try body(MailItem(name: path, bytes: buffer))
        }

        // The buffer always begins where a message of the mbox begins.
        buffer.removeFirst(mboxStart)
        var number = 0
        // The first message, or why it is skipped, is held until the second is seen: it is named "path" if it is
        // the only one, else "path:1".
        var first: Result<[UInt8], MailSourceError>?
        // The first message of a Dovecot or UW-IMAP mbox may be the folder's own data: not mail, and not counted.
        var pastFolderData = false
        var markedDeleted = 0
        // What each message of the mbox comes to, and under which name, for the caller to hand on (`hand`). The
        // local function calls no closure: `body` is called only here, in the function that was given it. Called
        // from a local function, an error `body` threw reached the loop below as no error, and reading went on
        // with the loop's state gone (found by an audit's case: a trap or SIGSEGV in a debug build when training
        // failed while its reader was inside an mbox).
        func emit(_ message: ArraySlice<UInt8>) -> [(Result<[UInt8], MailSourceError>, String)] {
            defer { pastFolderData = true }
            if !pastFolderData, MailFileFormats.isFolderInternalData(message) { return [] }
            number += 1
            var ready: [(Result<[UInt8], MailSourceError>, String)] = []
            if number == 2, let held = first {
                first = nil
                ready.append((held, "\(path):1"))
            }
            // Named by its place in the file all the same, so the names of the messages after it stay theirs.
            if MailFileFormats.isMarkedDeleted(message) {
                markedDeleted += 1
                return ready
            }
            let outcome: Result<[UInt8], MailSourceError> =
                if Mbox.isOnlyAnEnvelope(message) {
                    .failure(.unreadable(path, "an empty message (only its From line)"))
                } else if message.count > maxMessageBytes {
                    .failure(.unreadable(path, tooLarge))
                } else {
                    .success(Mbox.unquoted(message))
                }
            if number == 1 { first = outcome } else { ready.append((outcome, "\(path):\(number)")) }
            return ready
        }
        reading: while true {
            let messages = Mbox.split(buffer)
            // All but the last are whole: the next one's From line was seen. The last is whole at the end.
            for range in messages.dropLast() { try hand(emit(buffer[range]), unreadable, body) }
            let last = messages[messages.count - 1]
            if ended {
                try hand(emit(buffer[last]), unreadable, body)
                break
            }
            buffer.removeFirst(last.lowerBound)
            if buffer.count > maxMessageBytes + pieceBytes {
                // One message past the limit: counted as skipped, and read through to the next From line
                // without being kept.
                try hand(emit(buffer[...]), unreadable, body)
                while true {
                    if let next = Mbox.nextStart(in: buffer, from: 1) {
                        buffer.removeFirst(next)
                        break
                    }
                    buffer.removeFirst(max(0, buffer.count - 1_024))  // a From line may span two pieces
                    if ended { break reading }
                    guard readPiece() else { break reading }
                }
                continue
            }
            // A read error is reported; the messages before it still count.
            guard readPiece() else { break }
        }
        if let only = first { try hand([(only, path)], unreadable, body) }
        if notes, markedDeleted > 0 {
            Stores.reportLine("note: \(TerminalText.safe(path)): \(markedDeleted) message\(markedDeleted == 1 ? "" : "s") "
                + "marked deleted (X-Status D, or expunged in X-Mozilla-Status; not yet expunged) not read")
        }
    }
}

extension MailSource {
    /// Hands each message on, or reports why it is not read, under its name.
    private static func hand(_ messages: [(Result<[UInt8], MailSourceError>, String)],
                             _ unreadable: (MailSourceError) -> Void, _ body: (MailItem) throws -> Void) rethrows {
        for (outcome, name) in messages {
            switch outcome {
            case .success(let bytes): try body(MailItem(name: name, bytes: bytes))
            case .failure(.unreadable(_, let reason)): unreadable(.unreadable(name, reason))
            case .failure(.noMail(_, let reason)): unreadable(.noMail(name, reason))
            }
        }
    }
}

/// A file opened for reading a piece at a time.
struct PieceReader {
    let descriptor: Int32
    let path: String
    /// The size fstat gave, to size the pieces: a small message is read in one piece of its own size, so the
    /// array that holds it is no larger than it.
    let size: Int

    /// Opened non-blocking (a FIFO would otherwise wait for a writer, for ever; for the regular files read here it
    /// changes nothing), and only if it is a regular file.
    static func open(_ path: String) -> Result<PieceReader, MailSourceError> {
        let descriptor = Glibc.open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK)
        guard descriptor >= 0 else { return .failure(.unreadable(path, systemReason(errno))) }
        var status = stat()
        guard fstat(descriptor, &status) == 0, status.st_mode & S_IFMT == S_IFREG else {
            Glibc.close(descriptor)
            return .failure(.unreadable(path, "not a regular file"))
        }
        return .success(PieceReader(descriptor: descriptor, path: path, size: max(Int(status.st_size), 0)))
    }

    func close() { Glibc.close(descriptor) }

    /// Appends the next piece, at most `limit` bytes; `false` once the file has ended. One byte more than fstat's
    /// size is asked for, so a file that grew since is still read to its end.
    func append(to buffer: inout [UInt8], limit: Int) -> Result<Bool, MailSourceError> {
        let unread = size - buffer.count
        let wanted = min(limit, unread >= 0 ? unread + 1 : 1 << 16)
        var failure: Int32 = 0
        let piece = [UInt8](unsafeUninitializedCapacity: wanted) { bytes, initialized in
            var filled = 0
            while filled < wanted {
                let n = read(descriptor, bytes.baseAddress! + filled, wanted - filled)
                if n > 0 { filled += n; continue }
                if n < 0, errno == EINTR { continue }
                if n < 0 { failure = errno }
                break
            }
            initialized = filled
        }
        if failure != 0 { return .failure(.unreadable(path, systemReason(failure))) }
        if buffer.isEmpty { buffer = piece } else { buffer += piece }
        return .success(piece.count == wanted)
    }
}

extension MailSource {
    public static let batchCount = 256

    /// The messages at `paths` in groups of at most `count` messages and about `bytes` bytes, in order: what one
    /// round of `Parallel.map` works on, holding a bounded amount of mail in memory. An unreadable path ends the
    /// batch before it, so `unreadable` and `body` together see the paths in the order given: a program reading
    /// `classify --json` gets a failed path's line between its neighbours' lines.
    public static func forEachBatch(
        at paths: [String], count: Int = batchCount, bytes: Int = 64 << 20, notes: Bool = true,
        unreadable: (MailSourceError) -> Void, _ body: ([MailItem]) throws -> Void
    ) rethrows {
        var batch: [MailItem] = []
        var batchBytes = 0
        // Failures met since the batch's last message, reported once the messages before them have gone.
        var failures: [MailSourceError] = []
        for path in paths {
            try forEach(at: path, notes: notes, unreadable: { failures.append($0) }) { item in
                if !failures.isEmpty {
                    if !batch.isEmpty { try body(batch) }
                    batch.removeAll(keepingCapacity: true)
                    batchBytes = 0
                    failures.forEach(unreadable)
                    failures.removeAll()
                }
                batch.append(item)
                batchBytes += item.bytes.count
                if batch.count >= count || batchBytes >= bytes {
                    try body(batch)
                    batch.removeAll(keepingCapacity: true)
                    batchBytes = 0
                }
            }
        }
        if !batch.isEmpty { try body(batch) }
        failures.forEach(unreadable)
    }

    /// A whole file (a configuration file, say), read as `PieceReader` reads messages: only a regular file, and
    /// into an array of its own size.
    public static func readFile(_ path: String) -> Result<[UInt8], MailSourceError> {
        let file: PieceReader
        switch PieceReader.open(path) {
        case .success(let opened): file = opened
        case .failure(let error): return .failure(error)
        }
        defer { file.close() }
        var bytes: [UInt8] = []
        while true {
            switch file.append(to: &bytes, limit: Int.max) {
            case .success(true): continue
            case .success(false): return .success(bytes)
            case .failure(let error): return .failure(error)
            }
        }
    }
}

/// strerror's text as the rest of our messages write it: "no such file or directory".
public func systemReason(_ code: Int32) -> String {
    let text = String(cString: strerror(code))
    return text.prefix(1).lowercased() + text.dropFirst()
}

/// mbox files (RFC 4155): messages start with a "From " line at the start of the file or after an empty line.
/// Each message keeps its own "From " line (the parser reads it as the envelope); the empty line that
/// separates it from the next belongs to neither, and neither does the one a writer puts after the last.
public enum Mbox {
    /// Whether `bytes` are an mbox: they begin with a "From " line, or with an envelope line after blank lines or
    /// a UTF-8 byte order mark, which some exports put first (Python's mailbox module reads those as an mbox too;
    /// taken for one message, a whole archive was learned as one).
    public static func isMbox(_ bytes: [UInt8]) -> Bool {
        firstStart(in: bytes) != nil
    }

    /// Where the first message of an mbox begins: 0 for a file that begins with "From ", past the blank lines and
    /// byte order mark before an envelope line otherwise; nil when the bytes are no mbox. A message file never
    /// begins with a blank line (its header comes first), so that is no message's start.
    public static func firstStart(in bytes: [UInt8]) -> Int? {
        if bytes.starts(with: from) { return 0 }
        let afterMark = bytes.starts(with: byteOrderMark) ? byteOrderMark.count : 0
        var index = afterMark
        // Only a short run of blank lines: past it, the bytes are something else.
        while index < min(bytes.count, 4_096), bytes[index] == 0x0A || bytes[index] == 0x0D || bytes[index] == 0x20 {
            index += 1
        }
        guard index < bytes.count, index == afterMark || bytes[index - 1] == 0x0A else { return nil }
        return bytes[index...].starts(with: from) && isEnvelopeLine(bytes[index...]) ? index : nil
    }

    private static let byteOrderMark: [UInt8] = [0xEF, 0xBB, 0xBF]

    static let from = Array("From ".utf8)

    /// The messages' ranges, each without its separating empty line.
    public static func split(_ bytes: [UInt8]) -> [Range<Int>] {
        guard let first = firstStart(in: bytes) else { return [0..<bytes.count] }
        var starts = [first]
        while let next = nextStart(in: bytes, from: starts[starts.count - 1] + 1) { starts.append(next) }
        return starts.indices.map { i in
            starts[i]..<withoutSeparator(bytes, start: starts[i], end: i + 1 < starts.count ? starts[i + 1] : bytes.count)
        }
    }

    /// Where the first message starting at or after `from` begins: after an empty line, a "From " envelope line.
    /// The scan starts at the line holding `from - 1`, which should be a line's start.
    static func nextStart(in bytes: [UInt8], from: Int) -> Int? {
        var index = max(from, 1) - 1
        while index < bytes.count, let newline = newline(in: bytes, from: index) {
            let next = newline + 1
            let lineStart = index
            let isBlank = newline == lineStart || (newline == lineStart + 1 && bytes[lineStart] == 0x0D)
            if isBlank, next >= from, bytes[next...].starts(with: Mbox.from), isEnvelopeLine(bytes[next...]) {
                return next
            }
            index = next
        }
        return nil
    }

    /// The first line feed at or after `start`: memchr, where a Swift loop over the bytes was a few percent of a
    /// training run over the SpamAssassin corpus (each of its files is an mbox of one message).
    static func newline(in bytes: [UInt8], from start: Int) -> Int? {
        bytes.withUnsafeBufferPointer { buffer in
            guard start < buffer.count, let base = buffer.baseAddress,
                  let hit = memchr(base + start, 0x0A, buffer.count - start) else { return nil }
            return base.distance(to: hit.assumingMemoryBound(to: UInt8.self))
        }
    }

    /// Whether a message of an mbox holds nothing after its "From " line but blank lines.
    static func isOnlyAnEnvelope(_ message: ArraySlice<UInt8>) -> Bool {
        guard let newline = message.firstIndex(of: 0x0A) else { return true }
        return message[(newline + 1)...].allSatisfy { $0 == 0x0A || $0 == 0x0D || $0 == 0x20 || $0 == 0x09 }
    }

    /// Whether the line at the start of `text` is an envelope line ("From sender date") rather than a paragraph
    /// that happens to begin with "From " in an mbox nobody quoted: after the sender, a ctime date as every mbox
    /// writer puts it (asctime(3): "Thu Jan  1 00:00:00 2026", perhaps with a zone before the year), so a weekday
    /// and a month of three letters each, then a day and a time (12:08) and a year (1970-2099); and it is not long.
    /// As mutt's reader, which a paragraph such as "From Monday 5 January 09:00 2026 we are open." does not fool
    /// (found by an audit: it cut the message there).
    static func isEnvelopeLine(_ text: ArraySlice<UInt8>) -> Bool {
        let line = text.prefix(while: { $0 != 0x0A }).prefix(400)
        guard line.count < 400 else { return false }
        func isDigit(_ byte: UInt8) -> Bool { byte >= 0x30 && byte <= 0x39 }
        let bytes = Array(line)
        let words = bytes.split(whereSeparator: { $0 == 0x20 || $0 == 0x09 || $0 == 0x0D })
        // words[0] is "From", words[1] the sender (any word, "-" for Thunderbird; a quoted one may hold blanks).
        func isDay(_ word: ArraySlice<UInt8>) -> Bool { (1...2).contains(word.count) && word.allSatisfy(isDigit) }
        func isMonth(_ word: ArraySlice<UInt8>) -> Bool { Self.isName(word, in: Self.months) }
        func isWeekday(_ word: ArraySlice<UInt8>) -> Bool {
            Self.isName(word.last == 0x2C ? word.dropLast() : word, in: Self.weekdays)
        }
        // Or, from a few writers, an RFC 5322 date: "Thu, 1 Jan 2026 00:00:00 +0000", with or without the weekday
        // and its comma. A weekday may stand at words[1]: mutt takes a line without a sender ("From  Thu Jan  1 …")
        // too. Without a weekday, only after a sender: "From 1 May 2024 09:00 to 17:00 we are closed." is a
        // paragraph (found in review).
        let hasDayAndMonth = words.indices.dropFirst().contains { i in
            guard i + 2 < words.count else { return false }
            if isWeekday(words[i]) {
                return (isMonth(words[i + 1]) && isDay(words[i + 2])) || (isDay(words[i + 1]) && isMonth(words[i + 2]))
            }
            return i >= 2 && isDay(words[i]) && isMonth(words[i + 1]) && words[i + 2].count == 4
                && words[i + 2].allSatisfy(isDigit)
        }
        guard hasDayAndMonth else { return false }
        var hasTime = false
        var hasYear = false
        for i in bytes.indices {
            if i + 4 < bytes.count, isDigit(bytes[i]), isDigit(bytes[i + 1]), bytes[i + 2] == 0x3A,
               isDigit(bytes[i + 3]), isDigit(bytes[i + 4]) {
                hasTime = true
            }
            let startsWord = i == 0 || bytes[i - 1] == 0x20
            let endsWord = i + 4 >= bytes.count || bytes[i + 4] == 0x20 || bytes[i + 4] == 0x0D
            if startsWord, endsWord, i + 3 < bytes.count, bytes[i...(i + 3)].allSatisfy(isDigit) {
                let year = bytes[i...(i + 3)].reduce(0) { $0 * 10 + Int($1 - 0x30) }
                if (1970...2099).contains(year) { hasYear = true }
            }
        }
        return hasTime && hasYear
    }

    private static let weekdays = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"].map { Array($0.utf8) }
    private static let months = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"]
        .map { Array($0.utf8) }

    /// Whether `word` is one of `names` (three lower-case letters), in any case.
    private static func isName(_ word: ArraySlice<UInt8>, in names: [[UInt8]]) -> Bool {
        word.count == 3 && names.contains { $0.elementsEqual(word.lazy.map { $0 &- 0x41 < 26 ? $0 | 0x20 : $0 }) }
    }

    /// `end` less the empty line just before it, if there is one after the message's own last line. Without
    /// this, the last message of a file kept the separator its writer added, and counted as another message
    /// than the same one read from its own file, or from the mbox once more had been appended to it.
    private static func withoutSeparator(_ bytes: [UInt8], start: Int, end: Int) -> Int {
        var cut = end
        guard cut > start, bytes[cut - 1] == 0x0A else { return end }
        cut -= 1
        if cut > start, bytes[cut - 1] == 0x0D { cut -= 1 }
        // What remains must still end its last line: the empty line was the separator, not the line's own end.
        guard cut > start, bytes[cut - 1] == 0x0A else { return end }
        return cut
    }

    /// The message as it was before an mbox writer quoted it: one ">" taken from each line that is ">"s then
    /// "From " (mboxrd; in mboxo only ">From " was quoted, and reading it so is what every reader does).
    public static func unquoted(_ message: ArraySlice<UInt8>) -> [UInt8] {
        // A quoted line ends its ">"s with ">From ": without one anywhere, the message is as it was written, and
        // one copy does (the line-by-line copy below was a few percent of a training run).
        let quoted = message.withUnsafeBufferPointer { buffer in
            guard let base = buffer.baseAddress else { return false }
            var start = 0
            while start < buffer.count, let hit = memchr(base + start, Int32(UInt8(ascii: ">")), buffer.count - start) {
                let after = base.distance(to: hit.assumingMemoryBound(to: UInt8.self)) + 1
                if buffer[after...].starts(with: from) { return true }
                start = after
            }
            return false
        }
        guard quoted else { return Array(message) }
        var result: [UInt8] = []
        result.reserveCapacity(message.count)
        var lineStart = message.startIndex
        while lineStart < message.endIndex {
            let lineEnd = message[lineStart...].firstIndex(of: 0x0A).map { $0 + 1 } ?? message.endIndex
            var quotes = lineStart
            while quotes < lineEnd, message[quotes] == UInt8(ascii: ">") { quotes += 1 }
            let isQuotedFrom = quotes > lineStart && message[quotes..<lineEnd].starts(with: from)
            result.append(contentsOf: message[(isQuotedFrom ? lineStart + 1 : lineStart)..<lineEnd])
            lineStart = lineEnd
        }
        return result
    }
}

extension MailSource {
    /// `forEachBatch` with the reading done one batch ahead, on a thread of its own: while `body` works on a batch
    /// on every core, the next one is already being read. Unreadable paths are reported on the caller's thread, in
    /// their place between the batches (`forEachBatch` ends a batch at each). At most two batches are in memory
    /// besides the one in `body`.
    public static func forEachBatchReadingAhead(
        at paths: [String], count: Int = batchCount, bytes: Int = 64 << 20, unreadable: (MailSourceError) -> Void,
        _ body: ([MailItem]) throws -> Void
    ) throws {
        try forEachBatchReadingAhead(inGroups: [paths], count: count, bytes: bytes, unreadable: unreadable) {
            try body($1)
        }
    }

    /// The same over several groups of paths read one after the other without a pause, each batch from one group
    /// only: `body` gets the group's index with it. `train` reads its pitches and its ham this way, so the first
    /// ham batch is read while the last pitches are tokenized.
    public static func forEachBatchReadingAhead(
        inGroups groups: [[String]], count: Int = batchCount, bytes: Int = 64 << 20,
        unreadable: (MailSourceError) -> Void, _ body: (Int, [MailItem]) throws -> Void
    ) throws {
        let handoff = BatchHandoff()
        // The reader touches only its own captures and the handoff, so nobody waits for it to stop: after a failure
        // it ends at its next hand-over (or at the end of a standard input it is still reading).
        DispatchQueue(label: "pitchfilter.mailsource.reader").async {
            var errors: [MailSourceError] = []
            do {
                for (group, paths) in groups.enumerated() {
                    try forEachBatch(at: paths, count: count, bytes: bytes, unreadable: { errors.append($0) }) {
                        try handoff.put(.batch($0, errors, group: group))
                        errors = []
                    }
                }
                try handoff.put(.end(errors))
            } catch {
                // Cancelled: the caller has stopped taking.
            }
        }
        defer { handoff.cancel() }
        while true {
            switch handoff.take() {
            case .batch(let batch, let errors, let group):
                errors.forEach(unreadable)
                try body(group, batch)
            case .end(let errors):
                errors.forEach(unreadable)
                return
            }
        }
    }
}

/// One slot between the reading thread and the caller, guarded by two semaphores: `free` while the slot may be
/// filled, `filled` while it holds something. `@unchecked Sendable` because the semaphores order every access.
private final class BatchHandoff: @unchecked Sendable {
    enum Item {
        case batch([MailItem], [MailSourceError], group: Int)
        case end([MailSourceError])
    }

    struct Cancelled: Error {}

    // Both start at 0: libdispatch traps when a semaphore is freed below the value it was created with, which a
    // `free` created at 1 would be after a failure with the slot full.
    private let free = DispatchSemaphore(value: 0)
    private let filled = DispatchSemaphore(value: 0)
    private var slot: Item?
    private let cancelled = Atomic(false)

    init() {
        free.signal()
    }

    /// On the reading thread: waits for the slot, then fills it. Throws once the caller has stopped taking.
    func put(_ item: Item) throws {
        free.wait()
        if cancelled.load(ordering: .acquiring) { throw Cancelled() }
        slot = item
        filled.signal()
    }

    /// On the caller's thread.
    func take() -> Item {
        filled.wait()
        let item = slot!
        slot = nil
        free.signal()
        return item
    }

    /// On the caller's thread, when it is done or failed: a reader waiting for the slot stops.
    func cancel() {
        cancelled.store(true, ordering: .releasing)
        free.signal()
    }
}
