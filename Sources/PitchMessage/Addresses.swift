#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// One mailbox of an address list: who it claims to be and where it points.
public struct MailAddress: Hashable, Sendable {
    /// The phrase before the angle brackets, RFC 2047-decoded, quotes removed, quoted-pairs unescaped; without
    /// a phrase, the first RFC 822 comment ("john@x (John Smith)"); "" when there is neither.
    public var displayName: String
    /// The addr-spec as written, angle brackets, comments, surrounding white space and any source route
    /// ("@a,@b:") removed; "" when the mailbox has none.
    public var address: String

    public init(displayName: String = "", address: String = "") {
        self.displayName = displayName
        self.address = address
    }

    /// Everything before the last "@" ("" without one).
    public var localPart: String {
        guard let at = address.lastIndex(of: "@") else { return "" }
        return String(address[..<at])
    }

    /// Everything after the last "@", lowercased, trailing dots removed ("" without an "@").
    public var domain: String {
        guard let at = address.lastIndex(of: "@") else { return "" }
        var domain = Substring(address[address.index(after: at)...])
        while domain.last == "." { domain.removeLast() }
        return domain.lowercased()
    }
}

/// RFC 5322 §3.4 address lists, read the way mail clients read them rather than the way the grammar says.
public enum AddressList {
    /// Parses an unfolded address-list value (From, To, Cc, Reply-To, …).
    ///
    /// Accepts mailboxes, name-addrs, bare addr-specs, groups (whose names are dropped; an empty group
    /// gives nothing), nested comments anywhere, quoted strings with commas inside, a missing ">" or closing
    /// quote, obsolete forms ("john@x (John Smith)", source routes, white space around "@" and the domain's
    /// dots), a bare name without an address (address ""), empty members (skipped), ";" as a separator, and
    /// RFC 2047 encoded words in names and comments. A member holding only a comment, or only "<>", gives nothing.
    /// Returns at most `maxAddresses` entries. Never fails; linear in the size of `value`; each defect
    /// kind is recorded at most once per call, with offset nil.
    public static func parse(
        _ value: ArraySlice<UInt8>, maxAddresses: Int = 1_000, defects: inout [Defect]
    ) -> [MailAddress] {
        var log = HeaderDefectLog()
        var tokens = AddressTokenizer(value)
        var result: [MailAddress] = []
        var member = Member()

        func finish() {
            if let address = member.build(value, log: &log) { result.append(address) }
            member = Member()
        }

        while result.count < maxAddresses, let token = tokens.next() {
            switch token.kind {
            case .comment:
                if member.comment == nil, !token.content.allSatisfy(HeaderChar.isWhitespace) {
                    member.comment = token.content
                }
            case .word, .quoted, .literal:
                member.add(token)
            case .special:
                switch token.special {
                case HeaderChar.less:
                    if member.inAngle { continue }  // "<<a@x>>": the inner bracket is noise
                    if member.angle != nil { finish() }  // "<a@x> <b@y>": a second mailbox
                    member.inAngle = true
                    member.angle = []
                case HeaderChar.greater:
                    member.inAngle = false
                case HeaderChar.comma:
                    if member.inAngle, member.inRoute {
                        member.add(token)
                    } else {
                        finish()  // inside "<…" too: the ">" is missing
                    }
                case HeaderChar.colon:
                    if member.inAngle {
                        if member.inRoute {
                            member.angle = []  // obsolete source route "@a,@b:" is dropped
                            member.inRoute = false
                        } else {
                            member.add(token)
                        }
                    } else if member.angle != nil {
                        finish()
                    } else {
                        member = Member()  // a group's display name says nothing about its members
                    }
                case HeaderChar.semicolon:
                    finish()  // ends a group, or separates like "," in lists written with semicolons
                default:  // "@" and "."
                    if member.inAngle, token.special == HeaderChar.at, member.angle?.isEmpty == true {
                        member.inRoute = true
                    }
                    member.add(token)
                }
            }
        }
        if result.count < maxAddresses { finish() }
        defects += log.defects
        return result
    }
}

/// One lexical unit of an address list.
struct AddressToken {
    enum Kind {
        /// A run of atom text (any byte but white space, specials and controls of the grammar).
        case word
        /// A quoted string; `content` holds it unquoted and unescaped.
        case quoted
        /// A domain literal "[…]" (or an unquoted "[tag]" in a display name).
        case literal
        /// A comment; `content` holds its inside (nested parentheses kept), unescaped.
        case comment
        /// One of `< > , : ; @ .`
        case special
    }

    var kind: Kind
    /// The bytes as written, quotes and brackets included.
    var raw: Range<Int>
    var content: [UInt8] = []
    var special: UInt8 = 0
    /// Whether white space or a comment came before it (names keep one space there, addresses none).
    var spaceBefore: Bool

    var isSpecial: Bool { kind == .special }
}

/// Splits an address list into tokens in one pass. Unterminated quotes and comments are recovered at the
/// first "<" after them once; after that a further unterminated comment runs to the end, so the total work
/// stays linear even for "((((…", and a quoted string with neither closing quote nor "<" ends every later one.
struct AddressTokenizer {
    private let value: ArraySlice<UInt8>
    private var index: Int
    private var spacePending = false
    private var recoveredComment = false
    /// A quoted string ran to the end with no "<" after it: so does every later one, whose quote mark the first
    /// scan read as escaped ("\\\"") and whose scan therefore reads the rest as it did. Without this, each of
    /// 32,000 escaped quotes in a 64 KiB field began a scan to its end: seconds per field, past the pipe filter's
    /// deadline, so a pitch went through untagged (found by an audit).
    private var quotesRunToTheEnd = false

    init(_ value: ArraySlice<UInt8>) {
        self.value = value
        self.index = value.startIndex
    }

    mutating func next() -> AddressToken? {
        let end = value.endIndex
        while index < end {
            let start = index
            let byte = value[index]
            switch byte {
            case _ where HeaderChar.isWhitespace(byte), HeaderChar.closeParen, HeaderChar.closeBracket:
                // Stray closers are noise; treat them like white space.
                spacePending = true
                index += 1
            case HeaderChar.openParen:
                let content = readComment()
                defer { spacePending = true }
                return AddressToken(kind: .comment, raw: start..<index, content: content, spaceBefore: spacePending)
            case HeaderChar.quote:
                guard let content = readQuoted() else {
                    // No closing quote and no "<" after it: ignore the quote mark itself.
                    index = start + 1
                    continue
                }
                return token(.quoted, start, content: content)
            case HeaderChar.openBracket:
                readLiteral()
                return token(.literal, start)
            case HeaderChar.less, HeaderChar.greater, HeaderChar.comma, HeaderChar.colon, HeaderChar.semicolon,
                HeaderChar.at, HeaderChar.dot:
                index += 1
                var special = token(.special, start)
                special.special = byte
                return special
            default:
                while index < end, Self.isWordByte(value[index]) { index += 1 }
                return token(.word, start)
            }
        }
        return nil
    }

    private mutating func token(_ kind: AddressToken.Kind, _ start: Int, content: [UInt8] = []) -> AddressToken {
        defer { spacePending = false }
        return AddressToken(kind: kind, raw: start..<index, content: content, spaceBefore: spacePending)
    }

    static func isWordByte(_ byte: UInt8) -> Bool {
        switch byte {
        case HeaderChar.openParen, HeaderChar.closeParen, HeaderChar.less, HeaderChar.greater, HeaderChar.openBracket,
            HeaderChar.closeBracket, HeaderChar.colon, HeaderChar.semicolon, HeaderChar.at, HeaderChar.comma,
            HeaderChar.dot, HeaderChar.quote:
            return false
        default:
            return !HeaderChar.isWhitespace(byte)
        }
    }

    /// Reads a comment from its "(" with a depth counter (never recursion), leaving `index` past it.
    private mutating func readComment() -> [UInt8] {
        let start = index
        let end = value.endIndex
        var content: [UInt8] = []
        var depth = 0
        var cursor = start
        while cursor < end {
            let byte = value[cursor]
            cursor += 1
            if byte == HeaderChar.backslash, cursor < end {
                content.append(value[cursor])
                cursor += 1
                continue
            }
            if byte == HeaderChar.openParen {
                depth += 1
                if depth == 1 { continue }
            } else if byte == HeaderChar.closeParen {
                depth -= 1
                if depth == 0 {
                    index = cursor
                    return content
                }
            }
            content.append(byte)
        }
        // Unterminated: "(John <john@x>" most likely meant the comment to end before the address.
        if !recoveredComment {
            recoveredComment = true
            if let less = value[(start + 1)...].firstIndex(of: HeaderChar.less) {
                index = less
                return Self.unescaped(value[(start + 1)..<less])
            }
        }
        index = end
        return content
    }

    /// Reads a quoted string from its opening quote. Unterminated, it ends at the next "<" ("\"John <j@x>");
    /// with no "<" either, nil.
    private mutating func readQuoted() -> [UInt8]? {
        if quotesRunToTheEnd { return nil }
        let end = value.endIndex
        var content: [UInt8] = []
        var cursor = index + 1
        while cursor < end {
            let byte = value[cursor]
            cursor += 1
            if byte == HeaderChar.backslash, cursor < end {
                content.append(value[cursor])
                cursor += 1
            } else if byte == HeaderChar.quote {
                index = cursor
                return content
            } else {
                content.append(byte)
            }
        }
        // The scan saw no quote up to the end, so this happens at most once per value.
        guard let less = value[(index + 1)...].firstIndex(of: HeaderChar.less) else {
            quotesRunToTheEnd = true
            return nil
        }
        let recovered = Self.unescaped(value[(index + 1)..<less])
        index = less
        return recovered
    }

    private mutating func readLiteral() {
        let end = value.endIndex
        var cursor = index + 1
        while cursor < end {
            let byte = value[cursor]
            cursor += 1
            if byte == HeaderChar.backslash {
                cursor = min(cursor + 1, end)
            } else if byte == HeaderChar.closeBracket {
                break
            }
        }
        index = cursor
    }

    private static func unescaped(_ bytes: ArraySlice<UInt8>) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count)
        var escaped = false
        for byte in bytes {
            if byte == HeaderChar.backslash, !escaped {
                escaped = true
                continue
            }
            escaped = false
            out.append(byte)
        }
        return out
    }
}

/// The tokens of one address-list member while it is being read.
private struct Member {
    /// Tokens outside angle brackets: the display name, or a bare addr-spec with its surroundings.
    var phrase: [AddressToken] = []
    /// Tokens inside angle brackets; nil until a "<" is seen.
    var angle: [AddressToken]?
    var inAngle = false
    var inRoute = false
    var comment: [UInt8]?

    mutating func add(_ token: AddressToken) {
        if inAngle {
            angle?.append(token)
        } else {
            phrase.append(token)
        }
    }

    func build(_ value: ArraySlice<UInt8>, log: inout HeaderDefectLog) -> MailAddress? {
        var nameTokens = phrase[...]
        var addressTokens: ArraySlice<AddressToken> = []
        var trailing: ArraySlice<AddressToken> = []
        if let angle {
            addressTokens = angle[...]
        } else if let at = phrase.firstIndex(where: { $0.isSpecial && $0.special == HeaderChar.at }) {
            // A bare addr-spec, maybe with words around it ("John Smith john@x"): the addr-spec is what touches
            // the "@" (white space allowed right next to it, obsolete style) and what is glued to that.
            var low = at
            var high = at
            if low > phrase.startIndex, Self.isAddressPart(phrase[low - 1]) { low -= 1 }
            while low > phrase.startIndex, low < at, !phrase[low].spaceBefore, Self.isAddressPart(phrase[low - 1]) {
                low -= 1
            }
            if high + 1 < phrase.endIndex, Self.isAddressPart(phrase[high + 1]) { high += 1 }
            // In the domain, white space around "." is obsolete syntax too ("john @ example . com"); in the
            // local part it is not followed, or "Joe Q. john@x" would lose the "Q.".
            while high > at, high + 1 < phrase.endIndex {
                let next = phrase[high + 1]
                let glued = !next.spaceBefore || next.special == HeaderChar.dot
                    || phrase[high].special == HeaderChar.dot
                guard glued, Self.isAddressPart(next) || next.special == HeaderChar.at else { break }
                high += 1
            }
            addressTokens = phrase[low...high]
            nameTokens = phrase[..<low]
            trailing = phrase[(high + 1)...]
        }
        let address = Self.renderAddress(addressTokens, value, log: &log)
        var displayName = Self.renderName(Array(nameTokens) + trailing, value, log: &log)
        let hasName = !displayName.isEmpty
        if !hasName, let comment {
            displayName = Self.trimmed(EncodedWords.decode(
                comment[...], maxUTF8Bytes: Limits.default.maxFieldValueBytes, log: &log
            ))
        }
        guard hasName || !address.isEmpty else { return nil }
        return MailAddress(displayName: displayName, address: address)
    }

    private static func isAddressPart(_ token: AddressToken) -> Bool {
        token.kind != .comment && (!token.isSpecial || token.special == HeaderChar.dot)
    }

    private static func isWordLike(_ token: AddressToken) -> Bool {
        token.kind == .word || token.kind == .quoted || token.kind == .literal
    }

    /// The addr-spec as written: comments and white space around "@" and "." dropped, quoted local parts kept
    /// with their quotes, one space between words that white space separated.
    private static func renderAddress(
        _ tokens: ArraySlice<AddressToken>, _ value: ArraySlice<UInt8>, log: inout HeaderDefectLog
    ) -> String {
        var bytes: [UInt8] = []
        var previous: AddressToken?
        for token in tokens where token.kind != .comment {
            if token.spaceBefore, let previous, isWordLike(previous), isWordLike(token) {
                bytes.append(HeaderChar.space)
            }
            bytes += value[token.raw]
            previous = token
        }
        return trimmed(RawHeaderText.string(bytes[...], log: &log))
    }

    /// The display name: words joined by one space where the source had white space, quoted strings
    /// unquoted, then RFC 2047-decoded (also inside quotes, as Outlook and others write it).
    private static func renderName(
        _ tokens: [AddressToken], _ value: ArraySlice<UInt8>, log: inout HeaderDefectLog
    ) -> String {
        guard !tokens.isEmpty else { return "" }
        var bytes: [UInt8] = []
        for token in tokens where token.kind != .comment {
            if token.spaceBefore, !bytes.isEmpty { bytes.append(HeaderChar.space) }
            if token.kind == .quoted {
                bytes += token.content
            } else {
                bytes += value[token.raw]
            }
        }
        return trimmed(EncodedWords.decode(bytes[...], maxUTF8Bytes: Limits.default.maxFieldValueBytes, log: &log))
    }

    static func trimmed(_ text: String) -> String {
        let scalars = text.unicodeScalars
        guard let first = scalars.firstIndex(where: { !isSpace($0) }),
              let last = scalars.lastIndex(where: { !isSpace($0) })
        else { return "" }
        return String(scalars[first...last])
    }

    private static func isSpace(_ scalar: Unicode.Scalar) -> Bool {
        scalar == " " || scalar == "\t" || scalar == "\r" || scalar == "\n"
    }
}
