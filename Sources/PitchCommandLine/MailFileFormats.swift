/// What the first bytes of a file in a mail folder say it holds, beyond "a message" and "an mbox": the files mail
/// clients and servers keep beside their mail, the formats of other mail stores, and the marks a store leaves in
/// the messages of an mbox. Found by an audit of the folders users point `train` at: each was learned as mail.
enum MailFileFormats {
    /// Whether the file begins as a message does, after a byte order mark and blank lines (read as they always
    /// were): with a header field ("Name:", the name printable ASCII without a colon or blank), a line continuing
    /// one, or an mbox envelope line (quoted too, ">From "), or with a header field on one of its next few lines
    /// (Exchange's exports put "Microsoft Mail Internet Headers Version 2.0" first). What begins otherwise is some
    /// program's file in a mail folder: Dovecot's dovecot-uidlist and index logs, Thunderbird's popstate.dat and
    /// msgFilterRules.dat, an Apple Mail bundle's Info.plist and table_of_contents, an IMAP server's subscriptions.
    /// A message whose header was lost (a body saved alone) is no message to learn from either: its sender,
    /// Subject and structure are gone.
    static func beginsLikeMail(_ bytes: ArraySlice<UInt8>) -> Bool {
        var start = bytes.starts(with: [0xEF, 0xBB, 0xBF]) ? bytes.startIndex + 3 : bytes.startIndex
        while start < bytes.endIndex, bytes[start] == 0x0A || bytes[start] == 0x0D { start += 1 }
        guard start < bytes.endIndex else { return false }
        let text = bytes[start...]
        if text.first == 0x20 || text.first == 0x09 || text.starts(with: Mbox.from) || text.starts(with: quotedFrom) {
            return true
        }
        // The first lines up to a blank one: a field among them.
        var lineStart = text.startIndex
        for _ in 0..<linesLookedAt {
            guard lineStart < text.endIndex else { return false }
            if isField(text[lineStart...]) { return true }
            guard let newline = text[lineStart...].prefix(1_000).firstIndex(of: 0x0A) else { return false }
            lineStart = newline + 1
            if lineStart < text.endIndex, text[lineStart] == 0x0A || text[lineStart] == 0x0D { return false }
        }
        return false
    }

    static func beginsLikeMail(_ bytes: [UInt8]) -> Bool { beginsLikeMail(bytes[...]) }

    /// How many lines the search for a first field reads.
    private static let linesLookedAt = 5
    private static let quotedFrom = Array(">From ".utf8)

    /// Whether the line at the start of `line` is a header field: a name and a colon, perhaps blanks between.
    private static func isField(_ line: ArraySlice<UInt8>) -> Bool {
        var index = line.startIndex
        let end = min(line.endIndex, line.startIndex + 1_000)
        while index < end, isNameByte(line[index]) { index += 1 }
        guard index > line.startIndex else { return false }
        while index < end, line[index] == 0x20 || line[index] == 0x09 { index += 1 }
        return index < end && line[index] == UInt8(ascii: ":")
    }

    /// A header field name's bytes (RFC 5322 ftext): printable ASCII but the colon.
    private static func isNameByte(_ byte: UInt8) -> Bool {
        byte >= 33 && byte <= 126 && byte != UInt8(ascii: ":")
    }

    /// A mailbox format this reader does not split, by its first bytes, with the way to read it: MMDF (mutt's
    /// mbox_type=MMDF, SCO), whose messages lie between lines of four Control-A, and UW-IMAP's mbx, which begins
    /// "*mbx*". Read as one message, a folder of either was learned as one.
    static func unsplitMailbox(_ bytes: [UInt8]) -> String? {
        if bytes.starts(with: [0x01, 0x01, 0x01, 0x01, 0x0A]) || bytes.starts(with: [0x01, 0x01, 0x01, 0x01, 0x0D, 0x0A]) {
            return "an MMDF mailbox (messages between lines of ^A^A^A^A); convert it to an mbox first "
                + "(mutt: set mbox_type=mbox, then copy its messages to a new folder)"
        }
        if bytes.starts(with: Array("*mbx*".utf8)) {
            return "a UW-IMAP mbx mailbox; convert it to an mbox first (mailutil copy)"
        }
        return nil
    }

    /// Apple Mail's .emlx: the message's length in bytes on a line of its own (digits, perhaps blanks after them),
    /// the message, then a property list of Mail's own. Returns where the message starts and its length, or nil for
    /// a file that does not begin so.
    static func emlxMessage(in bytes: [UInt8]) -> (start: Int, length: Int)? {
        var index = 0
        var length = 0
        while index < min(bytes.count, 12), bytes[index] >= 0x30, bytes[index] <= 0x39 {
            length = length * 10 + Int(bytes[index] - 0x30)
            index += 1
        }
        guard index > 0, index < 12 else { return nil }
        while index < bytes.count, bytes[index] == 0x20 || bytes[index] == 0x09 { index += 1 }
        if index < bytes.count, bytes[index] == 0x0D { index += 1 }
        guard index < bytes.count, bytes[index] == 0x0A, length > 0 else { return nil }
        // And a message where it says: a file of a year and notes is no .emlx (found in review).
        guard beginsLikeMail(bytes[(index + 1)...]) else { return nil }
        return (index + 1, length)
    }

    /// What the first message of an mbox is when it is the folder's internal data, not mail: the message Dovecot and
    /// UW-IMAP (and Pine) keep first in an mbox, "DON'T DELETE THIS MESSAGE -- FOLDER INTERNAL DATA", with the
    /// folder's IMAP uid state in X-IMAP or X-IMAPbase, which they never show. Its text changes as mail arrives.
    static func isFolderInternalData(_ message: ArraySlice<UInt8>) -> Bool {
        let fields = headerFields(of: message, named: ["x-imap", "x-imapbase", "subject"])
        return (fields["x-imap"] != nil || fields["x-imapbase"] != nil)
            && fields["subject"].map { $0.contains("FOLDER INTERNAL DATA") } == true
    }

    /// Whether an mbox message is marked deleted by its store and not yet expunged: D in the X-Status of Dovecot's,
    /// UW-IMAP's and Pine's mbox, or Thunderbird's expunged flag (0x0008 of X-Mozilla-Status). An IMAP client that
    /// moves a message copies it and marks the original so, and Thunderbird leaves a moved message in its folder
    /// until it compacts: read, a pitch moved from the INBOX to Junk was learned as ham too.
    static func isMarkedDeleted(_ message: ArraySlice<UInt8>) -> Bool {
        let fields = headerFields(of: message, named: ["x-status", "x-mozilla-status"])
        if let flags = fields["x-status"], flags.contains("D") { return true }
        if let status = fields["x-mozilla-status"], let value = UInt32(status, radix: 16) {
            return value & 0x0008 != 0
        }
        return false
    }

    /// The first value of each of these fields (lower-case names) in the header at the start of `message` (after an
    /// envelope line), unfolded no further than its first line: enough for the short fields of a mail store.
    private static func headerFields(of message: ArraySlice<UInt8>, named names: Set<String>) -> [String: String] {
        var found: [String: String] = [:]
        var lineStart = message.startIndex
        if message.starts(with: Mbox.from), let newline = message.firstIndex(of: 0x0A) { lineStart = newline + 1 }
        // A store's fields are near the top; a header is read no further than 64 KiB.
        let end = min(message.endIndex, lineStart + 65_536)
        while lineStart < end {
            let lineEnd = message[lineStart..<end].firstIndex(of: 0x0A) ?? end
            var line = message[lineStart..<lineEnd]
            if line.last == 0x0D { line = line.dropLast() }
            if line.isEmpty { break }
            if let colon = line.firstIndex(of: UInt8(ascii: ":")) {
                let name = String(decoding: trimmed(line[..<colon]), as: UTF8.self).lowercased()
                if names.contains(name), found[name] == nil {
                    found[name] = String(decoding: trimmed(line[(colon + 1)...]), as: UTF8.self)
                }
            }
            lineStart = lineEnd + 1
        }
        return found
    }

    private static func trimmed(_ bytes: ArraySlice<UInt8>) -> ArraySlice<UInt8> {
        let isBlank = { (byte: UInt8) in byte == 0x20 || byte == 0x09 }
        guard let first = bytes.firstIndex(where: { !isBlank($0) }), let last = bytes.lastIndex(where: { !isBlank($0) })
        else { return [] }
        return bytes[first...last]
    }
}
