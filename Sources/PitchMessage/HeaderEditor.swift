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
    /// The fields taken out, with their continuation lines and line breaks, in order.
    public let removed: [Range<Int>]
    /// True when the message has no line feed at all but carriage returns: its lines end in bare CR, which this
    /// edit (like procmail, Dovecot and Postfix) does not take for line ends. The whole message would be one
    /// header line to us, and taking out a forged field would take the message with it. Nothing is removed or
    /// inserted; the caller passes such a message on untagged. (No SMTP delivery ends its lines so.)
    public let bareCarriageReturns: Bool

    /// - Parameters:
    ///   - removing: fields to take out, e.g. incoming copies of our own fields, so a sender cannot forge a verdict.
    ///   - inserting: fields to add at the top of the header block, in order.
    public init(of raw: [UInt8], removing: [FieldNamePattern], inserting: [NewField]) {
        bareCarriageReturns = Self.endsLinesInBareCR(raw)
        guard !bareCarriageReturns else {
            (insertAt, inserted, removed, insertionSkipped) = (0, [], [], !inserting.isEmpty)
            return
        }
        (insertAt, inserted, removed, insertionSkipped) = raw.withUnsafeBufferPointer { bytes in
            var scanner = HeaderScanner(bytes: bytes, range: 0..<bytes.count, allowsEnvelope: true)
            let insertAt = scanner.orphanContinuationEnd
            // The header's own line ending, not that of the envelope line procmail adds (always LF).
            let lineEnding = LineEnding.ofFirstLine(in: bytes, from: scanner.envelopeEnd)
            var removed: [Range<Int>] = []
            while !removing.isEmpty {
                while let field = scanner.next() {
                    if removing.contains(where: { $0.matches(bytes, field.nameRange) }) {
                        removed.append(Self.upToBareCRLine(bytes, field.range))
                    }
                }
                // Dovecot and others keep reading fields past a line that is not one, up to the first empty
                // line; so must we, or a forged field hidden behind such a line would reach a Sieve script.
                guard scanner.endedAtNonFieldLine, let stop = scanner.bodyStart else { break }
                var next = ByteScanning.line(in: bytes, from: stop, to: bytes.count).next
                // That line may itself be a forgery that only our strict reading refuses: Dovecot compares names
                // as C strings, so "X-Pitch-Status\0: pitch" is an X-Pitch-Status field to a Sieve script.
                if let name = Self.looseName(bytes, lineStart: stop),
                   removing.contains(where: { $0.matches(bytes, name) }) {
                    while next < bytes.count, ByteScanning.isWhitespace(bytes[next]) {
                        next = ByteScanning.line(in: bytes, from: next, to: bytes.count).next
                    }
                    removed.append(Self.upToBareCRLine(bytes, stop..<next))
                }
                scanner = HeaderScanner(bytes: bytes, range: next..<bytes.count, allowsEnvelope: false)
            }
            let atLineStart = insertAt == 0 || bytes[insertAt - 1] == ByteScanning.lf
            let inserted = atLineStart ? inserting.flatMap { $0.bytes(lineEnding: lineEnding) } : []
            return (insertAt, inserted, removed, !atLineStart && !inserting.isEmpty)
        }
    }

    /// Whether `raw` has carriage returns and no line feed.
    static func endsLinesInBareCR(_ raw: [UInt8]) -> Bool {
        raw.withUnsafeBytes { bytes in
            guard let base = bytes.baseAddress, memchr(base, Int32(ByteScanning.lf), bytes.count) == nil else {
                return false
            }
            return memchr(base, Int32(ByteScanning.cr), bytes.count) != nil
        }
    }

    /// A field's range, cut after its first bare CR that a program reading CR as a line end would take for the end
    /// of a line (a bare CR followed by anything but white space): to such a program, what follows is other
    /// fields or the body, not this field. Its name goes, so no forged verdict is left; nothing else does.
    private static func upToBareCRLine(_ bytes: UnsafeBufferPointer<UInt8>, _ range: Range<Int>) -> Range<Int> {
        let cut = range.dropLast().first { index in
            bytes[index] == ByteScanning.cr && !ByteScanning.isWhitespace(bytes[index + 1])
                && bytes[index + 1] != ByteScanning.lf
        }
        return cut.map { range.lowerBound..<($0 + 1) } ?? range
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
        for range in removed {
            pieces.append(raw[cursor..<range.lowerBound])
            cursor = range.upperBound
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
    public static func edit(_ raw: [UInt8], removing: [FieldNamePattern], inserting: [NewField]) -> [UInt8] {
        HeaderEdit(of: raw, removing: removing, inserting: inserting).apply(to: raw)
    }
}

extension Message {
    /// The plan for removing and inserting fields in this message; see `HeaderEdit`.
    public func edit(removing: [FieldNamePattern], inserting: [NewField]) -> HeaderEdit {
        HeaderEdit(of: raw, removing: removing, inserting: inserting)
    }
}
