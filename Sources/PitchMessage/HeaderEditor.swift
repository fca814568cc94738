#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A header field to insert. The value is written on one line: line breaks in it become spaces, so no value
/// can smuggle a second field (or an early end of header) into the message.
public struct NewField: Hashable, Sendable {
    public var name: String
    public var value: String

    public init(name: String, value: String) {
        self.name = name
        self.value = value
    }

    func bytes(lineEnding: LineEnding) -> [UInt8] {
        let name = name.utf8.filter { $0 > 0x20 && $0 < 0x7F && $0 != ByteScanning.colon }
        let value = value.utf8.map { $0 == ByteScanning.cr || $0 == ByteScanning.lf ? ByteScanning.space : $0 }
        return name + Array(": ".utf8) + value + lineEnding.bytes
    }
}

/// Names of fields to remove: an exact name ("X-Pitch-Status") or a prefix ending in "*" ("X-Pitch-*"),
/// ignoring ASCII case as RFC 5322 field names do.
public struct FieldNamePattern: Hashable, Sendable, ExpressibleByStringLiteral {
    let lowercased: [UInt8]
    let isPrefix: Bool

    public init(_ pattern: String) {
        var bytes = pattern.utf8.map(ByteScanning.asciiLowercase)
        isPrefix = bytes.last == 0x2A  // "*"
        if isPrefix { bytes.removeLast() }
        lowercased = bytes
    }

    public init(stringLiteral value: String) { self.init(value) }

    func matches(_ bytes: UnsafeBufferPointer<UInt8>, _ name: Range<Int>) -> Bool {
        guard isPrefix ? name.count >= lowercased.count : name.count == lowercased.count else { return false }
        for (i, byte) in lowercased.enumerated() where ByteScanning.asciiLowercase(bytes[name.lowerBound + i]) != byte {
            return false
        }
        return true
    }
}

/// A tag in front of the text of a message's Subject (`subject_tag`, such as "[PITCH]"): put in, taken back, or left
/// out of what the message's identity reads.
///
/// A tag is a blank and the tag right after the colon of the first Subject field, followed by white space, a line
/// break or the end of the value: "Subject: Hi" becomes "Subject: [PITCH] Hi", an empty "Subject:" becomes
/// "Subject: [PITCH]", and a Subject folded right after its colon keeps its folding. A Subject whose text starts
/// right at the colon ("Subject:Hi") is not tagged: the tag would need a blank after it that the original did not
/// have, and could not be taken back exactly.
///
/// Filters of incoming mail only ever put a tag in (`add`), never take one out: a status field there may be a
/// sender's forgery, and whatever it records, the Subject's bytes are the sender's. Only a release from the
/// quarantine takes a tag back (`takeBack`), on the record of the quarantined copy's status field.
public enum SubjectTagEdit: Hashable, Sendable {
    case none
    /// Put the tag in, unless the Subject already begins with it as it reads (`readsAsTagged`: put in by an
    /// earlier filter, or by the sender): a message filtered twice carries the tag once, and the sender's bytes
    /// stay as they were.
    case add(String)
    /// Take back the one tag our record says we put in; left alone if it is not there.
    case takeBack(String)
    /// Leave out every one of these tags at the start of the Subject, however many and in any order: what the
    /// message's identity reads (`MessageDigest`), the same for a message and each copy a filter tagged.
    case leaveOut([String])

    /// The tag this edit puts in, if it puts one in.
    public var added: String? {
        if case .add(let tag) = self, !tag.isEmpty { tag } else { nil }
    }

    /// For the first Subject's value: the bytes to take out, and where the new tag goes.
    func plan(_ bytes: UnsafeBufferPointer<UInt8>, _ value: Range<Int>) -> (removed: Range<Int>?, insertAt: Int?) {
        switch self {
        case .none:
            return (nil, nil)
        case .add(let tag):
            guard !tag.isEmpty, value.isEmpty || ByteScanning.isWhitespace(bytes[value.lowerBound])
                    || bytes[value.lowerBound] == ByteScanning.cr || bytes[value.lowerBound] == ByteScanning.lf,
                  !Self.readsAsTagged(bytes, value, tag),
                  Self.lineLength(bytes, around: value.lowerBound) + 1 + tag.utf8.count <= Self.maxLineLength
            else { return (nil, nil) }
            return (nil, value.lowerBound)
        case .takeBack(let tag):
            guard let end = Self.tagEnd(bytes, value, from: value.lowerBound, Array(tag.utf8)) else { return (nil, nil) }
            return (value.lowerBound..<end, nil)
        case .leaveOut(let tags):
            let tags = tags.map { Array($0.utf8) }
            var end = value.lowerBound
            while let next = tags.lazy.compactMap({ Self.tagEnd(bytes, value, from: end, $0) }).first { end = next }
            return (end > value.lowerBound ? value.lowerBound..<end : nil, nil)
        }
    }

    /// RFC 5322's limit on a line, without its line break. A Subject line the tag would take past it is left
    /// untagged (found by an audit: a 998-octet line became 1,006). Folding after the tag would keep it in, but
    /// a release could not then tell our fold from a sender's "Subject:" folded right after its colon, and give the
    /// message back byte for byte.
    static let maxLineLength = 998

    /// The length of the line that holds `index`, without its line break: lines end at LF, as for the fields
    /// (a bare CR inside one is part of it; found in review: it was counted as the end).
    static func lineLength(_ bytes: UnsafeBufferPointer<UInt8>, around index: Int) -> Int {
        var start = index, end = index
        while start > 0, bytes[start - 1] != ByteScanning.lf { start -= 1 }
        while end < bytes.count, bytes[end] != ByteScanning.lf { end += 1 }
        if end > start, end < bytes.count, bytes[end - 1] == ByteScanning.cr { end -= 1 }
        return end - start
    }

    /// Whether the Subject's text, as people and the tokenizer read it (unfolded, encoded words decoded), begins
    /// with `tag` after any blanks (found by an audit: "Subject:\t[PITCH] Hi" and an encoded "[PITCH]" got a
    /// second tag, while `classify` read them as tagged).
    static func readsAsTagged(_ bytes: UnsafeBufferPointer<UInt8>, _ value: Range<Int>, _ tag: String) -> Bool {
        var unfolded: [UInt8] = []
        for byte in bytes[value] where byte != ByteScanning.cr && byte != ByteScanning.lf {
            guard unfolded.count < Limits.default.maxFieldValueBytes else { break }
            unfolded.append(byte)
        }
        var ignored: [Defect] = []
        let text = EncodedWords.decode(unfolded[...], defects: &ignored)
        return untagged(text, leavingOut: [tag]) != text
    }

    /// A Subject's text without the tags at its start that are one of `tags`, however many and in any order, each
    /// followed by a blank or the end: what the tokenizer reads of a Subject (`OwnFields.subjectTags`).
    public static func untagged(_ subject: String, leavingOut tags: [String]) -> String {
        var rest = Substring(subject)
        while true {
            var text = rest
            while let first = text.unicodeScalars.first, first == " " || first == "\t" { text = text.dropFirst() }
            // Each tag tried, as `leaveOut` tries them: "[P]" may stand before "[P]!".
            guard let after = tags.lazy.compactMap({ tag -> Substring? in
                guard !tag.isEmpty, text.hasPrefix(tag) else { return nil }
                let after = text.dropFirst(tag.count)
                if let next = after.unicodeScalars.first, next != " " && next != "\t" { return nil }
                return after
            }).first else { break }
            rest = after
        }
        return rest.startIndex == subject.startIndex ? subject : String(rest)
    }

    /// Where a blank and `tag` at `start` end, if they are there and followed by white space, a line break or the
    /// end of `value`.
    private static func tagEnd(_ bytes: UnsafeBufferPointer<UInt8>, _ value: Range<Int>, from start: Int,
                               _ tag: [UInt8]) -> Int? {
        let end = start + 1 + tag.count
        guard !tag.isEmpty, end <= value.upperBound, bytes[start] == ByteScanning.space else { return nil }
        for offset in 0..<tag.count where bytes[start + 1 + offset] != tag[offset] { return nil }
        guard end == value.upperBound || ByteScanning.isWhitespace(bytes[end]) || bytes[end] == ByteScanning.cr
            || bytes[end] == ByteScanning.lf else { return nil }
        return end
    }
}

extension Message {
    /// The first Subject's value with `edit` made, as raw bytes, and whether the tag went in (the status field
    /// says so only then); nil when there is no Subject or nothing changes. For the milter, which replaces a
    /// field's value rather than editing bytes.
    public func subjectValue(after edit: SubjectTagEdit) -> (value: ArraySlice<UInt8>, tagged: Bool)? {
        guard edit != .none, let field = header.first(named: "Subject") else { return nil }
        let (removed, insertAt) = raw.withUnsafeBufferPointer { edit.plan($0, field.valueRange) }
        guard removed != nil || insertAt != nil else { return nil }
        let rest = raw[(removed?.upperBound ?? field.valueRange.lowerBound)..<field.valueRange.upperBound]
        if let add = edit.added, insertAt != nil { return (([ByteScanning.space] + Array(add.utf8) + rest)[...], true) }
        return (rest, false)
    }
}

/// An edit of a message's top-level header, as a plan over the original bytes: where new fields go and which
/// fields come out. Every byte outside those stays as it was, line endings included. Pipe filters write
/// `pieces(of:)` straight to their output, so even a 100 MB message is never copied.
///
/// It walks the header itself instead of using a parsed `Message`, so it sees every field whatever the
/// parser's limits recorded: a forged field at position 50,001 is removed too.
public struct HeaderEdit: Hashable, Sendable {
    /// Where the new fields go: the top of the header block, after an mbox `From ` line (which must stay first
    /// for procmail) and after any lines that continue nothing (which would otherwise continue our field).
    public let insertAt: Int
    /// The new fields, written with the message's own line ending.
    public let inserted: [UInt8]
    /// True when fields were asked for but could not go in: the top of the header is not the start of a line (a
    /// message that is one envelope or continuation line with no line break), so a field there would merge into
    /// that line for good. The caller passes such a message on untagged.
    public let insertionSkipped: Bool
    /// The fields taken out, with their continuation lines and line breaks, and Subject tags taken back or left out,
    /// in order.
    public let removed: [Range<Int>]
    /// Where a Subject tag goes (`SubjectTagEdit.add`), and the blank and tag put there; empty for none.
    public let subjectTagAt: Int
    public let subjectTagInserted: [UInt8]
    /// True when the message has no line feed at all but carriage returns: its lines end in bare CR, which this
    /// edit (like procmail, Dovecot and Postfix) does not take for line ends. The whole message would be one
    /// header line to us, and taking out a forged field would take the message with it. Nothing is removed or
    /// inserted; the caller passes such a message on untagged. (No SMTP delivery ends its lines so.)
    public let bareCarriageReturns: Bool
    /// Whether the header block ends within the bytes, at an empty line with more after it, as the removal read it
    /// (false when nothing was to be removed: the header is then not read to its end). A message read in part (the
    /// pipe filter's first 32 MiB of a larger one) can have fields taken out only then: none is cut off at the end.
    public let headerEnded: Bool

    /// - Parameters:
    ///   - removing: fields to take out, e.g. incoming copies of our own fields, so a sender cannot forge a verdict.
    ///   - inserting: fields to add at the top of the header block, in order.
    ///   - subjectTag: a Subject tag to put in, take back or leave out.
    public init(of raw: [UInt8], removing: [FieldNamePattern], inserting: [NewField],
                subjectTag: SubjectTagEdit = .none) {
        bareCarriageReturns = Self.endsLinesInBareCR(raw)
        guard !bareCarriageReturns else {
            (insertAt, inserted, removed, insertionSkipped) = (0, [], [], !inserting.isEmpty)
            (subjectTagAt, subjectTagInserted, headerEnded) = (0, [], false)
            return
        }
        (insertAt, inserted, removed, insertionSkipped, subjectTagAt, subjectTagInserted, headerEnded) =
            raw.withUnsafeBufferPointer { bytes in
            let top = HeaderScanner(bytes: bytes, range: 0..<bytes.count, allowsEnvelope: true)
            let insertAt = top.orphanContinuationEnd
            var (removed, headerEnd, headerEnded) = Self.fields(bytes, removing: removing)
            let lineEnding: LineEnding = Self.insertedEndsLinesInLF(bytes, from: top.envelopeEnd, passing: removed)
                ? .lf : .crlf
            var insertion: (at: Int, bytes: [UInt8]) = (0, [])
            if let plan = Self.subjectPlan(bytes, without: removed, headerEnd: headerEnd, subjectTag) {
                if let range = plan.removed {
                    removed.append(range)
                    removed.sort { $0.lowerBound < $1.lowerBound }
                }
                if let at = plan.insertAt, let add = subjectTag.added {
                    insertion = (at, [ByteScanning.space] + Array(add.utf8))
                }
            }
            let atLineStart = insertAt == 0 || bytes[insertAt - 1] == ByteScanning.lf
            let inserted = atLineStart ? inserting.flatMap { $0.bytes(lineEnding: lineEnding) } : []
            return (insertAt, inserted, removed, !atLineStart && !inserting.isEmpty, insertion.at, insertion.bytes,
                    headerEnded)
        }
    }

    /// The fields named by `removing`, in order, where the header ends (its last pass's body start), and whether
    /// it ended at an empty line before the end of the bytes.
    private static func fields(_ bytes: UnsafeBufferPointer<UInt8>, removing: [FieldNamePattern])
        -> (removed: [Range<Int>], headerEnd: Int, ended: Bool) {
        var scanner = HeaderScanner(bytes: bytes, range: 0..<bytes.count, allowsEnvelope: true)
        guard !removing.isEmpty else { return ([], bytes.count, false) }
        let isOurs = { (name: Range<Int>) in removing.contains { $0.matches(bytes, name) } }
        let headerStart = scanner.envelopeEnd
        var removed: [Range<Int>] = []
        while true {
            while let field = scanner.next() {
                // Whole, to its line feed, whatever bare CRs it holds: procmail, Dovecot and Postfix end lines at
                // LF only (Postfix's header_checks IGNORE takes the same field). Cut at a bare CR, as a reader that
                // ends lines there would see it, the rest was left as new fields for all of them: a forged field
                // "X-Pitch-Status: x\rFrom: CEO" gave the message a second From (found by an audit).
                if isOurs(field.nameRange) { removed.append(field.range) }
            }
            guard let stop = scanner.bodyStart else { break }
            // procmail reads a header up to the first line that is empty to it, a lone LF: in a header whose lines
            // end in LF, a line of a lone CR (a CR before CRLF on the wire, kept by Postfix) is one more header
            // line to its recipes, though an empty one to us. Read on past it, or a forged field below it would
            // file the message (found by an audit). Not after a CRLF line, where it is a CRLF header's own empty
            // line (found in review: a CRLF message behind procmail's LF lines had its body read as header).
            if !scanner.endedAtNonFieldLine {
                // Only an empty line that was one (not the end of the bytes after a last CRLF field), with more
                // to read after it, so that every pass reads on from further down.
                guard stop < bytes.count, Self.isLoneCRLine(bytes, at: stop - 2, headerStart: headerStart),
                      Self.isLoneCRAmongLFLines(bytes, lineStart: stop - 2, headerStart: headerStart,
                                                passing: removed) else { break }
                scanner = HeaderScanner(bytes: bytes, range: stop..<bytes.count, allowsEnvelope: false)
                continue
            }
            // Dovecot and others keep reading fields past a line that is not one, up to the first empty
            // line; so must we, or a forged field hidden behind such a line would reach a Sieve script.
            var next = ByteScanning.line(in: bytes, from: stop, to: bytes.count).next
            // That line may itself be a forgery that only our strict reading refuses: Dovecot compares names
            // as C strings, so "X-Pitch-Status\0: pitch" is an X-Pitch-Status field to a Sieve script.
            if let name = Self.looseName(bytes, lineStart: stop), isOurs(name) {
                while next < bytes.count, ByteScanning.isWhitespace(bytes[next]) {
                    next = ByteScanning.line(in: bytes, from: next, to: bytes.count).next
                }
                removed.append(stop..<next)
            }
            scanner = HeaderScanner(bytes: bytes, range: next..<bytes.count, allowsEnvelope: false)
        }
        // Ended only at an empty line with bytes after it: the scanner also stops at the end of the bytes, in a
        // field that may go on past them.
        let end = scanner.bodyStart ?? bytes.count
        return (removed, end, end < bytes.count)
    }

    /// Whether the lone-CR line at `lineStart` stands among lines that end in a bare LF: the nearest line above it
    /// that is not a lone CR, nor in one of the fields `passing` (ours, which go), ends so; with none above, the
    /// header's first line that is not a lone CR (`headerEndsLinesInLF`), even one of ours. Judged on the header as
    /// it is left, so that the message and the filter's copy of it read alike (found in review: a forged CRLF field
    /// of ours above the lone CR hid a forged verdict below it, which procmail read, and the copy, read again, lost
    /// it: two identities). A forged CRLF field of ours as the header's first line, above the lone CR, still makes
    /// it a CRLF header's empty line, on every pass alike.
    private static func isLoneCRAmongLFLines(_ bytes: UnsafeBufferPointer<UInt8>, lineStart: Int,
                                             headerStart: Int, passing removed: [Range<Int>] = []) -> Bool {
        var start = lineStart
        while true {
            if isLoneCRLine(bytes, at: start - 2, headerStart: headerStart) {
                start -= 2
            } else if let field = removed.last(where: { $0.upperBound == start && $0.lowerBound < start }) {
                start = field.lowerBound
            } else {
                break
            }
        }
        if start > headerStart {
            // The line above ends at `start`: in a bare LF when no CR stands before that LF.
            return start - 2 < headerStart || bytes[start - 2] != ByteScanning.cr
        }
        return headerEndsLinesInLF(bytes, from: headerStart)
    }

    /// Whether the header's lines end in a bare LF, as its first line that is not a lone CR says (else the first
    /// line at all).
    private static func headerEndsLinesInLF(_ bytes: UnsafeBufferPointer<UInt8>, from start: Int) -> Bool {
        var lineStart = start
        while isLoneCRLine(bytes, at: lineStart, headerStart: start) { lineStart += 2 }
        return LineEnding.ofFirstLine(in: bytes, from: lineStart) == .lf
    }

    /// The line ending our fields get: the header's own (`headerEndsLinesInLF`), not that of the envelope line
    /// procmail adds (always LF), nor that of a lone-CR line, nor, where the header begins with fields of ours, that
    /// of those forged fields, which go (found by an audit: a forged first field ending in LF gave a CRLF message
    /// our field ending in LF): then the first line after them, unless it is a lone-CR line. Such a line is judged
    /// by the header's first line, ours or not, on every pass (`isLoneCRAmongLFLines`), and our field is that line
    /// in the filter's copy: it must end as the forged one did, or the copy reads otherwise than the message (found
    /// in review: a body line read as a forged field and taken out on the next pass).
    private static func insertedEndsLinesInLF(_ bytes: UnsafeBufferPointer<UInt8>, from start: Int,
                                              passing removed: [Range<Int>]) -> Bool {
        var lineStart = start
        // In order, from the top: walked once (50,000 forged fields are a test's).
        for field in removed {
            guard field.lowerBound == lineStart, !field.isEmpty else { break }
            lineStart = field.upperBound
        }
        guard lineStart > start, !isLoneCRLine(bytes, at: lineStart, headerStart: start) else {
            return headerEndsLinesInLF(bytes, from: start)
        }
        return LineEnding.ofFirstLine(in: bytes, from: lineStart) == .lf
    }

    /// Whether a whole line "\r\n" starts at `offset`: at the header's top or right after a line feed.
    private static func isLoneCRLine(_ bytes: UnsafeBufferPointer<UInt8>, at offset: Int, headerStart: Int) -> Bool {
        offset >= headerStart && offset + 1 < bytes.count && bytes[offset] == ByteScanning.cr
            && bytes[offset + 1] == ByteScanning.lf && (offset == headerStart || bytes[offset - 1] == ByteScanning.lf)
    }

    /// What `edit` does to the first Subject of the header that is left once `removed` is out, as the parser would
    /// read that header (fields past a line that is not one are not it), in offsets of `bytes`; nil for nothing
    /// to do.
    ///
    /// Decided on what is left, not on what came in: taking out a forged field can make another Subject the
    /// first one (a NUL in the forged name made a line no field), and the identity
    /// of the output, read with our fields gone, must see the Subject this edit saw (found in review: the
    /// message and the filter's copy of it were two messages, and the copy could not be released).
    private static func subjectPlan(_ bytes: UnsafeBufferPointer<UInt8>, without removed: [Range<Int>],
                                    headerEnd: Int, _ edit: SubjectTagEdit)
        -> (removed: Range<Int>?, insertAt: Int?)? {
        switch edit {
        case .none: return nil
        case .leaveOut(let tags) where tags.allSatisfy(\.isEmpty): return nil
        default: break
        }
        guard !removed.isEmpty else { return firstSubject(bytes, allowsEnvelope: true).map { edit.plan(bytes, $0) } }
        // The header as it is left, copied (only messages that carry fields of ours get here: an incoming copy, or
        // a filtered message read again), and where each piece of it came from.
        var left: [UInt8] = []
        var origins: [(leftStart: Int, rawStart: Int)] = []
        var cursor = 0
        for range in removed + [headerEnd..<headerEnd] {  // in order, as `fields` found them
            let keptEnd = min(range.lowerBound, headerEnd)
            if cursor < keptEnd {
                origins.append((left.count, cursor))
                left += bytes[cursor..<keptEnd]
            }
            cursor = max(cursor, range.upperBound)
        }
        return left.withUnsafeBufferPointer { header in
            // An mbox `From ` line is the message's first line or none: not one that a field taken out uncovered
            // (found in review).
            guard let value = firstSubject(header, allowsEnvelope: origins.first?.rawStart == 0) else { return nil }
            let plan = edit.plan(header, value)
            // A value's bytes all come from one piece: a field taken out takes its continuation lines with it.
            func raw(_ offset: Int) -> Int? {
                guard let origin = origins.last(where: { $0.leftStart <= offset }) else { return nil }
                return origin.rawStart + offset - origin.leftStart
            }
            guard let start = raw(value.lowerBound - 1).map({ $0 + 1 }),
                  let last = raw(value.upperBound - 1), last - start == value.count - 1 || value.isEmpty else {
                return nil
            }
            let shift = start - value.lowerBound
            return (plan.removed.map { ($0.lowerBound + shift)..<($0.upperBound + shift) },
                    plan.insertAt.map { $0 + shift })
        }
    }

    /// The value of the first Subject field in the header's first pass, as the parser reads it.
    private static func firstSubject(_ bytes: UnsafeBufferPointer<UInt8>, allowsEnvelope: Bool) -> Range<Int>? {
        var scanner = HeaderScanner(bytes: bytes, range: 0..<bytes.count, allowsEnvelope: allowsEnvelope)
        while let field = scanner.next() {
            if subject.matches(bytes, field.nameRange) { return field.valueRange }
        }
        return nil
    }

    private static let subject = FieldNamePattern("Subject")

    /// Whether `raw` has bare carriage returns and no line feed after its mbox envelope line, if it has one, but
    /// perhaps a last one: lines ended as old Mac OS ended them, which no SMTP delivery does and no mail program
    /// here reads as line ends. procmail writes its `From ` line with a line feed whatever the message's own line
    /// ends, and a transport may end the last line with one (found in review, twice: a forged field of ours at the
    /// top of such a message took all of it with it, that LF being the only one).
    public static func endsLinesInBareCR(_ raw: [UInt8]) -> Bool {
        raw.withUnsafeBufferPointer { buffer in
            let start = HeaderScanner(bytes: buffer, range: 0..<buffer.count, allowsEnvelope: true).envelopeEnd
            // Up to a last line feed (and the CR before it), which ends the whole message's one line.
            var end = buffer.count
            if end > start, buffer[end - 1] == ByteScanning.lf {
                end -= 1
                if end > start, buffer[end - 1] == ByteScanning.cr { end -= 1 }
            }
            guard let base = buffer.baseAddress, start < end,
                  memchr(base + start, Int32(ByteScanning.lf), end - start) == nil else {
                return false
            }
            return memchr(base + start, Int32(ByteScanning.cr), end - start) != nil
        }
    }

    /// A line's name as lenient readers see it: everything before the first colon, cut at a NUL byte, without
    /// trailing white space.
    private static func looseName(_ bytes: UnsafeBufferPointer<UInt8>, lineStart: Int) -> Range<Int>? {
        let lineEnd = ByteScanning.line(in: bytes, from: lineStart, to: bytes.count).contentEnd
        guard let colon = ByteScanning.find(ByteScanning.colon, in: bytes, from: lineStart, to: lineEnd) else {
            return nil
        }
        var nameEnd = ByteScanning.find(0, in: bytes, from: lineStart, to: colon) ?? colon
        while nameEnd > lineStart, ByteScanning.isWhitespace(bytes[nameEnd - 1]) { nameEnd -= 1 }
        return lineStart..<nameEnd
    }

    /// The result in order, as slices of the original and the inserted bytes.
    public func pieces(of raw: [UInt8]) -> [ArraySlice<UInt8>] {
        var pieces = [raw[0..<insertAt], inserted[...]]
        var cursor = insertAt
        // The Subject is never a field taken out, and comes after the top of the header: the tag goes in between.
        var tagPending = !subjectTagInserted.isEmpty
        for range in removed {
            if tagPending, subjectTagAt <= range.lowerBound {
                pieces += [raw[cursor..<subjectTagAt], subjectTagInserted[...]]
                cursor = subjectTagAt
                tagPending = false
            }
            pieces.append(raw[cursor..<range.lowerBound])
            cursor = range.upperBound
        }
        if tagPending {
            pieces += [raw[cursor..<subjectTagAt], subjectTagInserted[...]]
            cursor = subjectTagAt
        }
        pieces.append(raw[cursor..<raw.count])
        return pieces.filter { !$0.isEmpty }
    }

    /// The result as one array.
    public func apply(to raw: [UInt8]) -> [UInt8] {
        let pieces = pieces(of: raw)
        var output: [UInt8] = []
        output.reserveCapacity(pieces.reduce(0) { $0 + $1.count })
        for piece in pieces { output += piece }
        return output
    }
}

public enum HeaderEditor {
    /// The message with `removing` fields taken out and `inserting` fields added at the top; see `HeaderEdit`.
    public static func edit(_ raw: [UInt8], removing: [FieldNamePattern], inserting: [NewField],
                            subjectTag: SubjectTagEdit = .none) -> [UInt8] {
        HeaderEdit(of: raw, removing: removing, inserting: inserting, subjectTag: subjectTag).apply(to: raw)
    }
}

extension Message {
    /// The plan for removing and inserting fields in this message; see `HeaderEdit`.
    public func edit(removing: [FieldNamePattern], inserting: [NewField],
                     subjectTag: SubjectTagEdit = .none) -> HeaderEdit {
        HeaderEdit(of: raw, removing: removing, inserting: inserting, subjectTag: subjectTag)
    }
}
