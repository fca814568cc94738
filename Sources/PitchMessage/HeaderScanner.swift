/// One header field as byte ranges: where it sits in the raw message, its name, and its folded value.
public struct HeaderField: Hashable, Sendable {
    /// The whole field: name, colon, value, continuation lines and the final line break.
    public var range: Range<Int>
    /// The field name, without any white space before the colon.
    public var nameRange: Range<Int>
    /// The value as written: after the colon up to the end of the last line, folding line breaks included,
    /// final line break excluded.
    public var valueRange: Range<Int>
}

/// Walks the header block of one entity (a message or a MIME part) line by line.
///
/// The rules follow RFC 5322 §2.2 and, where mail breaks them, CPython's feedparser: a line starting with
/// white space continues the previous field; an empty line ends the header; a line that is neither ends the
/// header too, and belongs to the body (`missingHeaderBodySeparator`). A first line that continues nothing
/// is skipped (`firstLineIsContinuation`). It keeps no fields itself, so the editor can walk headers of any
/// size in constant memory while the parser records only what its limits allow.
struct HeaderScanner {
    let bytes: UnsafeBufferPointer<UInt8>
    let end: Int
    /// Where the next line starts.
    private(set) var cursor: Int
    /// Set once the header is over: where the body starts (`end` when there is no body).
    private(set) var bodyStart: Int?
    /// Leading lines that continue nothing, skipped before the first field.
    private(set) var orphanContinuationEnd: Int
    private(set) var defects: [Defect] = []
    /// Whether the header ended at a line that is not a field rather than at an empty line.
    private(set) var endedAtNonFieldLine = false

    /// - Parameter allowsEnvelope: a top-level message may begin with an mbox `From ` line; MIME parts may not.
    init(bytes: UnsafeBufferPointer<UInt8>, range: Range<Int>, allowsEnvelope: Bool) {
        self.bytes = bytes
        self.end = range.upperBound
        self.cursor = range.lowerBound
        if allowsEnvelope, let envelopeEnd = Self.envelopeEnd(bytes, range) {
            cursor = envelopeEnd
        }
        self.envelopeEnd = cursor
        self.orphanContinuationEnd = cursor
        skipOrphanContinuations()
    }

    /// Where the mbox envelope line ends (the entity's start when there is none).
    let envelopeEnd: Int

    /// An mbox `From ` line is "From" and a space, not followed by a colon after optional white space
    /// (`From : x` is a field in RFC 5322's obsolete syntax).
    private static func envelopeEnd(_ bytes: UnsafeBufferPointer<UInt8>, _ range: Range<Int>) -> Int? {
        let start = range.lowerBound
        guard range.count >= 5, bytes[start] == 0x46, bytes[start + 1] == 0x72, bytes[start + 2] == 0x6F,
              bytes[start + 3] == 0x6D, bytes[start + 4] == 0x20
        else { return nil }
        var i = start + 5
        while i < range.upperBound, ByteScanning.isWhitespace(bytes[i]) { i += 1 }
        if i < range.upperBound, bytes[i] == ByteScanning.colon { return nil }
        return ByteScanning.line(in: bytes, from: start, to: range.upperBound).next
    }

    private mutating func skipOrphanContinuations() {
        var recorded = false
        while cursor < end, ByteScanning.isWhitespace(bytes[cursor]) {
            let line = ByteScanning.line(in: bytes, from: cursor, to: end)
            if !recorded {
                defects.append(Defect(.firstLineIsContinuation, at: cursor))
                recorded = true
            }
            cursor = line.next
        }
        orphanContinuationEnd = cursor
    }

    /// The next field, or nil once the header is over (then `bodyStart` is set).
    mutating func next() -> HeaderField? {
        guard bodyStart == nil else { return nil }
        guard cursor < end else {
            bodyStart = end
            return nil
        }
        let fieldStart = cursor
        let first = ByteScanning.line(in: bytes, from: fieldStart, to: end)
        if first.contentEnd == fieldStart {
            bodyStart = first.next
            return nil
        }
        guard let (nameEnd, colon) = fieldName(from: fieldStart, to: first.contentEnd) else {
            defects.append(Defect(.missingHeaderBodySeparator, at: fieldStart))
            endedAtNonFieldLine = true
            bodyStart = fieldStart
            return nil
        }
        if nameEnd != colon { defects.append(Defect(.whitespaceBeforeColon, at: nameEnd)) }
        var valueEnd = first.contentEnd
        var next = first.next
        // A line of only white space continues the field too: RFC 5322's obsolete folding allows it, and
        // Dovecot and CPython read it so. Ending the header there would let a forged field below it survive.
        while next < end, ByteScanning.isWhitespace(bytes[next]) {
            let line = ByteScanning.line(in: bytes, from: next, to: end)
            valueEnd = line.contentEnd
            next = line.next
        }
        cursor = next
        return HeaderField(range: fieldStart..<next, nameRange: fieldStart..<nameEnd, valueRange: (colon + 1)..<valueEnd)
    }

    /// A field name is printable US-ASCII except the colon (RFC 5322 ftext); white space may stand before the
    /// colon (obsolete syntax). Returns the end of the name and the colon's offset.
    private func fieldName(from start: Int, to lineEnd: Int) -> (Int, Int)? {
        var i = start
        while i < lineEnd {
            let byte = bytes[i]
            guard byte > 0x20, byte < 0x7F, byte != ByteScanning.colon else { break }
            i += 1
        }
        let nameEnd = i
        guard nameEnd > start else { return nil }
        while i < lineEnd, ByteScanning.isWhitespace(bytes[i]) { i += 1 }
        guard i < lineEnd, bytes[i] == ByteScanning.colon else { return nil }
        return (nameEnd, i)
    }

    /// Scans to the end of the header without keeping anything, for fields past the parser's limits.
    mutating func skipToBody() -> Int {
        while next() != nil {}
        return bodyStart ?? end
    }
}
