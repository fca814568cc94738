#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A Content-Type value (RFC 2045 §5).
public struct ContentType: Hashable, Sendable {
    /// Lowercased, e.g. "text".
    public var type: String
    /// Lowercased, e.g. "plain".
    public var subtype: String
    /// Names lowercased; values unquoted and unescaped, RFC 2231 sections joined and decoded, RFC 2047 encoded
    /// words in "name" and "filename" decoded (Outlook writes them).
    public var parameters: [String: String]
    /// The boundary parameter as raw bytes, never charset-decoded: it is matched against the body bytes.
    /// nil when absent or empty.
    public var boundary: [UInt8]?

    public init(type: String, subtype: String, parameters: [String: String] = [:], boundary: [UInt8]? = nil) {
        self.type = type
        self.subtype = subtype
        self.parameters = parameters
        self.boundary = boundary
    }

    /// "type/subtype".
    public var mimeType: String { type + "/" + subtype }
    /// The charset parameter as written.
    public var charset: String? { parameters["charset"] }
    public var isMultipart: Bool { type == "multipart" }
    public var isText: Bool { type == "text" }
    /// Whether the body is itself a message to parse: message/rfc822 and message/global only (not
    /// message/delivery-status, message/partial, …).
    public var isMessage: Bool { type == "message" && (subtype == "rfc822" || subtype == "global") }

    /// RFC 2045 §5.2's default: text/plain; charset=us-ascii.
    /// No charset parameter is stored: `Charsets.decode` reads a missing label as us-ascii, and callers can tell
    /// a declared charset from the default one.
    public static let `default` = ContentType(type: "text", subtype: "plain")
    /// The default for the parts of a multipart/digest (RFC 2046 §5.1.5).
    public static let messageRFC822 = ContentType(type: "message", subtype: "rfc822")

    /// Parses an unfolded Content-Type value.
    ///
    /// Returns nil when there is no type/subtype at all; the caller then records `.invalidContentType` and
    /// uses `default`. A type without subtype is read as text/plain or multipart/mixed when the type is
    /// "text" or "multipart" (recording `.invalidContentType`), and nil otherwise. Tolerates white space and
    /// comments around "/", missing or extra semicolons, parameters without value (skipped), unquoted values
    /// with spaces, duplicates (the first wins), unterminated quotes (they run to the end) and any case.
    /// Never fails; linear in the size of `value`; each defect kind is recorded at most once per call.
    public static func parse(_ value: ArraySlice<UInt8>, defects: inout [Defect]) -> ContentType? {
        var log = HeaderDefectLog()
        defer { defects += log.defects }
        var cursor = MIMECursor(value)
        cursor.skipCFWS()
        let type = cursor.readToken()
        guard !type.isEmpty else { return nil }
        cursor.skipCFWS()
        var subtype: ArraySlice<UInt8> = []
        if cursor.peek == HeaderChar.slash {
            cursor.index += 1
            cursor.skipCFWS()
            subtype = cursor.readToken()
        }
        let typeName = RawHeaderText.asciiLowercased(type)
        var subtypeName = RawHeaderText.asciiLowercased(subtype)
        if subtypeName.isEmpty {
            switch typeName {
            case "text": subtypeName = "plain"
            case "multipart": subtypeName = "mixed"  // RFC 2046 §5.1.7: unknown multipart is mixed
            default: return nil
            }
            log.record(.invalidContentType, detail: "no subtype")
        }
        let parsed = MIMEParameterList.parse(value[cursor.index...], log: &log)
        var boundary = parsed.raw["boundary"]
        if boundary?.isEmpty == true { boundary = nil }
        return ContentType(type: typeName, subtype: subtypeName, parameters: parsed.values, boundary: boundary)
    }
}

/// A Content-Disposition value (RFC 2183).
public struct ContentDisposition: Hashable, Sendable {
    /// Lowercased "inline", "attachment", …; "" when missing.
    public var disposition: String
    /// The same rules as `ContentType.parameters` ("filename*", "filename*0*", … are joined into "filename").
    public var parameters: [String: String]

    public init(disposition: String, parameters: [String: String] = [:]) {
        self.disposition = disposition
        self.parameters = parameters
    }

    public var filename: String? { parameters["filename"] }

    /// Parses an unfolded Content-Disposition value leniently: a missing disposition ("filename=a.txt")
    /// gives "", and the parameters follow `ContentType.parse`'s rules. Never fails; linear.
    public static func parse(_ value: ArraySlice<UInt8>, defects: inout [Defect]) -> ContentDisposition {
        var log = HeaderDefectLog()
        defer { defects += log.defects }
        var cursor = MIMECursor(value)
        cursor.skipCFWS()
        let start = cursor.index
        let token = cursor.readToken()
        cursor.skipCFWS()
        var disposition = RawHeaderText.asciiLowercased(token)
        if cursor.peek == HeaderChar.equals {
            // No disposition type: what was read is the first parameter's name.
            disposition = ""
            cursor.index = start
        }
        let parsed = MIMEParameterList.parse(value[cursor.index...], log: &log)
        return ContentDisposition(disposition: disposition, parameters: parsed.values)
    }
}

/// A read position in a MIME header value.
struct MIMECursor {
    let value: ArraySlice<UInt8>
    var index: Int

    init(_ value: ArraySlice<UInt8>) {
        self.value = value
        self.index = value.startIndex
    }

    var isAtEnd: Bool { index >= value.endIndex }
    var peek: UInt8? { index < value.endIndex ? value[index] : nil }

    /// Skips white space and comments; comments nest (a depth counter, no recursion) and an unterminated one
    /// runs to the end.
    mutating func skipCFWS() {
        let end = value.endIndex
        while index < end {
            let byte = value[index]
            if HeaderChar.isWhitespace(byte) {
                index += 1
            } else if byte == HeaderChar.openParen {
                skipComment()
            } else {
                return
            }
        }
    }

    mutating func skipComment() {
        let end = value.endIndex
        var depth = 0
        while index < end {
            let byte = value[index]
            index += 1
            if byte == HeaderChar.backslash {
                index = min(index + 1, end)
            } else if byte == HeaderChar.openParen {
                depth += 1
            } else if byte == HeaderChar.closeParen {
                depth -= 1
                if depth == 0 { return }
            }
        }
    }

    /// An RFC 2045 token: printable ASCII except tspecials.
    mutating func readToken() -> ArraySlice<UInt8> {
        let start = index
        while index < value.endIndex, Self.isTokenByte(value[index]) { index += 1 }
        return value[start..<index]
    }

    static func isTokenByte(_ byte: UInt8) -> Bool {
        guard byte > 0x20, byte < 0x7F else { return false }
        switch byte {
        case HeaderChar.openParen, HeaderChar.closeParen, HeaderChar.less, HeaderChar.greater, HeaderChar.at,
            HeaderChar.comma, HeaderChar.semicolon, HeaderChar.colon, HeaderChar.backslash, HeaderChar.quote,
            HeaderChar.slash, HeaderChar.openBracket, HeaderChar.closeBracket, HeaderChar.question, HeaderChar.equals:
            return false
        default:
            return true
        }
    }
}

/// The parameter list shared by Content-Type and Content-Disposition (RFC 2045 §5.1, RFC 2231).
enum MIMEParameterList {
    /// Distinct parameter names kept; real headers carry a handful.
    static let maxParameters = 100
    /// RFC 2231 sections kept per parameter (numbers 0..<maxSections); real filenames need a few.
    static let maxSections = 100

    struct Parsed {
        /// Final values by lowercased name.
        var values: [String: String] = [:]
        /// The same values as bytes before any charset decoding (for the boundary).
        var raw: [String: [UInt8]] = [:]
    }

    private struct Piece {
        var value: [UInt8]
        var quoted: Bool
        /// RFC 2231 "*" after the name or section: charset'language'%XX encoding.
        var extended: Bool
    }

    private struct Collected {
        var plain: Piece?
        var extended: Piece?
        var sections: [Int: Piece] = [:]
    }

    static func parse(_ value: ArraySlice<UInt8>, log: inout HeaderDefectLog) -> Parsed {
        var order: [String] = []
        var collected: [String: Collected] = [:]
        var cursor = MIMECursor(value)
        let end = value.endIndex

        while true {
            skipSeparators(&cursor)
            guard !cursor.isAtEnd else { break }
            let nameStart = cursor.index
            while cursor.index < end, isNameByte(value[cursor.index]) { cursor.index += 1 }
            let name = value[nameStart..<cursor.index]
            if name.isEmpty {
                skipJunk(&cursor)  // "=x" or a stray quoted string: nothing to name it by
                continue
            }
            cursor.skipCFWS()
            guard cursor.peek == HeaderChar.equals else { continue }  // a name without value is skipped
            cursor.index += 1
            cursor.skipCFWS()
            let piece: Piece
            if cursor.peek == HeaderChar.quote {
                piece = Piece(value: readQuoted(&cursor), quoted: true, extended: false)
            } else {
                let bare = readUnquoted(&cursor)
                guard !bare.isEmpty else { continue }  // "charset=" has no value
                piece = Piece(value: bare, quoted: false, extended: false)
            }
            store(name, piece, order: &order, collected: &collected, log: &log)
        }

        var parsed = Parsed()
        for name in order {
            guard let entry = collected[name], let (bytes, text) = assemble(name, entry, log: &log) else { continue }
            parsed.values[name] = text
            parsed.raw[name] = bytes
        }
        return parsed
    }

    /// Files one name=value under its RFC 2231 name and section; the first of duplicates wins.
    private static func store(
        _ nameBytes: ArraySlice<UInt8>, _ piece: Piece, order: inout [String], collected: inout [String: Collected],
        log: inout HeaderDefectLog
    ) {
        var name = nameBytes
        var piece = piece
        if name.last == HeaderChar.star {
            piece.extended = true
            name = name.dropLast()
        }
        var section: Int?
        if let star = name.firstIndex(of: HeaderChar.star) {
            let digits = name[(star + 1)...]
            guard !digits.isEmpty, digits.count <= 9, digits.allSatisfy({ $0 &- 0x30 < 10 }) else {
                log.record(.invalidParameter, detail: "bad section number")
                return
            }
            let number = digits.reduce(0) { $0 * 10 + Int($1 - 0x30) }
            guard number < maxSections else {
                log.record(.invalidParameter, detail: "more than \(maxSections) sections")
                return
            }
            section = number
            name = name[..<star]
        }
        guard !name.isEmpty else { return }
        let key = RawHeaderText.asciiLowercased(name)
        var entry: Collected
        if let existing = collected[key] {
            entry = existing
        } else {
            guard order.count < maxParameters else {
                log.record(.invalidParameter, detail: "more than \(maxParameters) parameters")
                return
            }
            order.append(key)
            entry = Collected()
        }
        if let section {
            if entry.sections[section] == nil { entry.sections[section] = piece }
        } else if piece.extended {
            if entry.extended == nil { entry.extended = piece }
        } else if entry.plain == nil {
            entry.plain = piece
        }
        collected[key] = entry
    }

    /// The value's bytes before charset decoding, and its text. RFC 2231 forms win over the plain one: they
    /// are the precise spelling, the plain one a fallback for old readers.
    private static func assemble(
        _ name: String, _ entry: Collected, log: inout HeaderDefectLog
    ) -> ([UInt8], String)? {
        if !entry.sections.isEmpty {
            let numbers = entry.sections.keys.sorted()
            if numbers.first != 0 { log.record(.invalidParameter, detail: "\(name): no section 0") }
            var bytes: [UInt8] = []
            var charset: String?
            var expected = numbers.first ?? 0
            for number in numbers {
                guard number == expected, let piece = entry.sections[number] else {
                    log.record(.invalidParameter, detail: "\(name): section \(expected) missing")
                    break
                }
                if piece.extended {
                    var encoded = piece.value[...]
                    if number == 0 {
                        let split = splitCharset(encoded, log: &log)
                        charset = split.charset
                        encoded = split.rest
                    }
                    bytes += percentDecoded(encoded, log: &log)
                } else {
                    bytes += piece.value
                }
                expected += 1
            }
            return (bytes, text(bytes, charset: charset, log: &log))
        }
        if let piece = entry.extended {
            let split = splitCharset(piece.value[...], log: &log)
            let bytes = percentDecoded(split.rest, log: &log)
            return (bytes, text(bytes, charset: split.charset, log: &log))
        }
        if let piece = entry.plain {
            let text: String
            if name == "name" || name == "filename" {
                // Outlook and others RFC 2047-encode these, quoted or not.
                text = EncodedWords.decode(piece.value[...], maxUTF8Bytes: Limits.default.maxFieldValueBytes, log: &log)
            } else {
                text = RawHeaderText.string(piece.value[...], log: &log)
            }
            return (piece.value, text)
        }
        return nil
    }

    /// Splits "charset'language'rest"; without both apostrophes the whole is taken as encoded text.
    private static func splitCharset(
        _ value: ArraySlice<UInt8>, log: inout HeaderDefectLog
    ) -> (charset: String?, rest: ArraySlice<UInt8>) {
        guard let first = value.firstIndex(of: HeaderChar.apostrophe),
              let second = value[(first + 1)...].firstIndex(of: HeaderChar.apostrophe)
        else {
            log.record(.invalidParameter, detail: "no charset'language' prefix")
            return (nil, value)
        }
        let charset = value[..<first]
        return (charset.isEmpty ? nil : String(decoding: charset, as: UTF8.self), value[(second + 1)...])
    }

    private static func percentDecoded(_ value: ArraySlice<UInt8>, log: inout HeaderDefectLog) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(value.count)
        var index = value.startIndex
        while index < value.endIndex {
            let byte = value[index]
            if byte == HeaderChar.percent, index + 2 < value.endIndex,
               let high = HeaderChar.hexValue(value[index + 1]), let low = HeaderChar.hexValue(value[index + 2]) {
                out.append(high << 4 | low)
                index += 3
                continue
            }
            if byte == HeaderChar.percent { log.record(.invalidParameter, detail: "bad percent escape") }
            out.append(byte)
            index += 1
        }
        return out
    }

    private static func text(_ bytes: [UInt8], charset: String?, log: inout HeaderDefectLog) -> String {
        guard let charset else {
            // RFC 2231 without a charset: read like raw header bytes, but the bytes were escaped, not 8-bit.
            return RawHeaderText.string(bytes[...], log: &log, eightBitDefect: false)
        }
        let decoded = Charsets.decode(bytes[...], label: charset, maxUTF8Bytes: Limits.default.maxFieldValueBytes)
        for defect in decoded.defects { log.record(defect.kind, detail: defect.detail) }
        var out: [UInt8] = []
        RawHeaderText.appendText(decoded.text, to: &out, log: &log)
        return String(decoding: out, as: UTF8.self)
    }

    /// Parameter names are tokens, read loosely: anything up to "=", ";", white space, a comment or a quote.
    private static func isNameByte(_ byte: UInt8) -> Bool {
        switch byte {
        case HeaderChar.equals, HeaderChar.semicolon, HeaderChar.openParen, HeaderChar.quote: return false
        default: return !HeaderChar.isWhitespace(byte) && byte != HeaderChar.nul
        }
    }

    private static func skipSeparators(_ cursor: inout MIMECursor) {
        while !cursor.isAtEnd {
            cursor.skipCFWS()
            guard cursor.peek == HeaderChar.semicolon else { return }
            cursor.index += 1
        }
    }

    /// Skips to the next ";" outside quotes.
    private static func skipJunk(_ cursor: inout MIMECursor) {
        let end = cursor.value.endIndex
        while cursor.index < end {
            let byte = cursor.value[cursor.index]
            if byte == HeaderChar.semicolon { return }
            if byte == HeaderChar.quote {
                _ = readQuoted(&cursor)
            } else {
                cursor.index += 1
            }
        }
    }

    /// A quoted string from its opening quote, unescaped; unterminated, it runs to the end of the value.
    private static func readQuoted(_ cursor: inout MIMECursor) -> [UInt8] {
        let value = cursor.value
        var out: [UInt8] = []
        var index = cursor.index + 1
        while index < value.endIndex {
            let byte = value[index]
            index += 1
            if byte == HeaderChar.backslash, index < value.endIndex {
                out.append(value[index])
                index += 1
            } else if byte == HeaderChar.quote {
                break
            } else {
                out.append(byte)
            }
        }
        cursor.index = index
        return out
    }

    /// An unquoted value: up to ";", keeping inner spaces ("name=my file.txt"), but ending before a comment
    /// after white space ("us-ascii (Plain text)") or before what looks like the next parameter when the
    /// semicolon was forgotten ("utf-8 format=flowed"). Surrounding `\"` (PHP mailers escape twice) is removed.
    private static func readUnquoted(_ cursor: inout MIMECursor) -> [UInt8] {
        let value = cursor.value
        let end = value.endIndex
        let start = cursor.index
        var valueEnd = start
        var index = start
        while true {
            while index < end, value[index] != HeaderChar.semicolon, !HeaderChar.isWhitespace(value[index]) {
                index += 1
            }
            valueEnd = index
            var next = index
            while next < end, HeaderChar.isWhitespace(value[next]) { next += 1 }
            guard next > index, next < end, value[next] != HeaderChar.semicolon, value[next] != HeaderChar.openParen,
                  !startsParameter(value, at: next)
            else { break }
            index = next
        }
        cursor.index = valueEnd
        var bytes = value[start..<valueEnd]
        if bytes.count >= 4, bytes.starts(with: [HeaderChar.backslash, HeaderChar.quote]),
           bytes[bytes.endIndex - 2] == HeaderChar.backslash, bytes[bytes.endIndex - 1] == HeaderChar.quote {
            bytes = bytes.dropFirst(2).dropLast(2)
        }
        return Array(bytes)
    }

    /// Whether `name [white space] =` starts at `index`.
    private static func startsParameter(_ value: ArraySlice<UInt8>, at index: Int) -> Bool {
        var cursor = index
        while cursor < value.endIndex, isNameByte(value[cursor]) { cursor += 1 }
        guard cursor > index else { return false }
        while cursor < value.endIndex, HeaderChar.isWhitespace(value[cursor]) { cursor += 1 }
        return cursor < value.endIndex && value[cursor] == HeaderChar.equals
    }
}
