#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// RFC 2047 encoded words in unstructured header text (Subject, display names, comments).
public enum EncodedWords {
    /// Decodes a header value for people and the tokenizer.
    ///
    /// `value` is one unfolded field value as raw bytes. RFC 2047 encoded words (`=?charset?B?…?=`,
    /// `=?charset?Q?…?=`, either letter case, charset optionally followed by an RFC 2231 `*lang`) become text.
    /// White space between two adjacent encoded words is dropped (RFC 2047 §6.2), and adjacent words in the
    /// same charset are joined as bytes before charset decoding, so a character split across two words
    /// survives. Like real mail clients, encoded words are also found inside other text and inside quoted
    /// strings. A malformed word stays literal and records `.invalidEncodedWord`. Raw 8-bit bytes are read as
    /// UTF-8 where valid and windows-1252 otherwise (`.eightBitHeader`); NUL bytes are removed (`.nulInHeader`).
    /// The result is cut at `maxUTF8Bytes` (`.textTruncated`). Each defect kind is recorded at most once per
    /// call, with offset nil. Never fails; linear in the size of `value`.
    public static func decode(
        _ value: ArraySlice<UInt8>, maxUTF8Bytes: Int = Limits.default.maxFieldValueBytes, defects: inout [Defect]
    ) -> String {
        var log = HeaderDefectLog()
        let text = decode(value, maxUTF8Bytes: maxUTF8Bytes, log: &log)
        defects += log.defects
        return text
    }

    /// The same, recording into a log shared with the caller (address and parameter parsing).
    static func decode(_ value: ArraySlice<UInt8>, maxUTF8Bytes: Int, log: inout HeaderDefectLog) -> String {
        let limit = max(0, maxUTF8Bytes)
        var out: [UInt8] = []
        out.reserveCapacity(min(value.count, limit) + 4)
        var run = PendingRun()
        var charsets: [String] = []
        var rawStart = value.startIndex
        var index = value.startIndex
        let end = value.endIndex

        while index < end, out.count <= limit {
            guard value[index] == HeaderChar.equals, index + 1 < end, value[index + 1] == HeaderChar.question else {
                index += 1
                continue
            }
            switch parseWord(value, at: index) {
            case .notAWord:
                index += 1
            case .malformed(let detail):
                log.record(.invalidEncodedWord, detail: detail)
                index += 1
            case .word(let word):
                if !charsets.contains(word.key), Charsets.usesIconv(word.label) {
                    // Each new iconv charset can cost glibc a module load; no field needs more than a few. Those
                    // decoded here, and unknown labels, cost nothing and do not count: else eight bogus labels
                    // in front would hide a Subject's words.
                    guard charsets.count < maxCharsetsPerValue else {
                        log.record(.invalidEncodedWord, detail: "more than \(maxCharsetsPerValue) charsets in one field")
                        index += 1
                        continue
                    }
                    charsets.append(word.key)
                }
                var found: [Defect] = []
                let payload = word.isBase64
                    ? TransferDecoding.decodeBase64(word.text, defects: &found)
                    : TransferDecoding.decodeQuotedPrintable(word.text, underscoreIsSpace: true, defects: &found)
                if payload.isEmpty, found.contains(where: { $0.kind == .invalidBase64Characters }) {
                    // Nothing but garbage: show the word as written rather than make it vanish.
                    log.record(.invalidEncodedWord, detail: "not base64")
                    index += 1
                    continue
                }
                let between = value[rawStart..<index]
                // RFC 2047 §6.2: only white space between two encoded words is dropped.
                if !(run.isActive && between.allSatisfy(HeaderChar.isWhitespace)) {
                    flush(&run, into: &out, limit: limit, log: &log)
                    RawHeaderText.append(between, to: &out, limit: limit, log: &log)
                }
                if !found.isEmpty {
                    // Bad base64 or quoted-printable inside a header is a malformed encoded word.
                    log.record(.invalidEncodedWord, detail: found[0].kind.rawValue)
                }
                if !(run.isActive && run.key == word.key) {
                    flush(&run, into: &out, limit: limit, log: &log)
                    run = PendingRun(label: word.label, key: word.key, isActive: true)
                }
                // Bytes past what the output can hold are never shown (no charset needs 4 bytes for less
                // than one UTF-8 byte); stop copying them.
                if run.bytes.count / 4 <= limit { run.bytes += payload }
                index = word.end
                rawStart = index
            }
        }
        flush(&run, into: &out, limit: limit, log: &log)
        if out.count <= limit {
            RawHeaderText.append(value[rawStart..<end], to: &out, limit: limit, log: &log)
        }
        if out.count > limit {
            RawHeaderText.cut(&out, to: limit)
            log.record(.textTruncated, detail: "header value cut at \(limit) bytes")
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// Adjacent encoded words in one charset, waiting to be charset-decoded together.
    private struct PendingRun {
        var label = ""
        var key = ""
        var isActive = false
        var bytes: [UInt8] = []
    }

    private struct Word {
        var label: String
        var key: String
        var isBase64: Bool
        var text: ArraySlice<UInt8>
        var end: Int
    }

    private enum ParseResult {
        case notAWord
        case malformed(String)
        case word(Word)
    }

    /// Charsets decoded through iconv in one field; the words of any further one are shown as written.
    static let maxCharsetsPerValue = 8

    /// Longest charset (with language) accepted; RFC 2047 caps a whole encoded word at 75 characters.
    private static let maxCharsetLength = 75

    /// Reads the encoded word starting with the "=?" at `start`. Work is bounded: the charset scan stops after
    /// `maxCharsetLength` bytes and the text scan at the first "?", which no later start scans past again.
    private static func parseWord(_ value: ArraySlice<UInt8>, at start: Int) -> ParseResult {
        let end = value.endIndex
        var cursor = start + 2
        while cursor < end, cursor - start - 2 <= maxCharsetLength, isCharsetByte(value[cursor]) { cursor += 1 }
        guard cursor < end, value[cursor] == HeaderChar.question, cursor > start + 2,
              cursor - start - 2 <= maxCharsetLength
        else { return .notAWord }
        let charset = value[(start + 2)..<cursor]
        let letterIndex = cursor + 1
        guard letterIndex + 1 < end, value[letterIndex + 1] == HeaderChar.question else {
            return .malformed("no encoding after charset")
        }
        let letter = value[letterIndex] | 0x20
        guard letter == 0x62 || letter == 0x71 else {  // "b" or "q"
            return .malformed("unknown encoding letter")
        }
        let textStart = letterIndex + 2
        var textEnd = textStart
        // Spaces inside the text are tolerated (broken mailers write them); "?" ends it.
        while textEnd < end, value[textEnd] != HeaderChar.question { textEnd += 1 }
        guard textEnd + 1 < end, value[textEnd + 1] == HeaderChar.equals else {
            return .malformed("no \"?=\" terminator")
        }
        // RFC 2231 §5: "charset*language".
        let labelBytes = charset.prefix { $0 != HeaderChar.star }
        guard !labelBytes.isEmpty else { return .malformed("empty charset") }
        let label = String(decoding: labelBytes, as: UTF8.self)
        let key = Charsets.canonicalName(label) ?? RawHeaderText.asciiLowercased(labelBytes)
        return .word(Word(
            label: label, key: key, isBase64: letter == 0x62, text: value[textStart..<textEnd], end: textEnd + 2
        ))
    }

    private static func isCharsetByte(_ byte: UInt8) -> Bool {
        byte > 0x20 && byte < 0x7F && byte != HeaderChar.question
    }

    private static func flush(
        _ run: inout PendingRun, into out: inout [UInt8], limit: Int, log: inout HeaderDefectLog
    ) {
        guard run.isActive else { return }
        defer { run = PendingRun() }
        guard out.count <= limit else { return }
        let decoded = Charsets.decode(run.bytes[...], label: run.label, maxUTF8Bytes: limit - out.count)
        for defect in decoded.defects {
            log.record(defect.kind, detail: defect.detail)
        }
        RawHeaderText.appendText(decoded.text, to: &out, log: &log)
    }
}

/// ASCII bytes the header parsers look for.
enum HeaderChar {
    static let nul: UInt8 = 0x00
    static let tab: UInt8 = 0x09
    static let lf: UInt8 = 0x0A
    static let cr: UInt8 = 0x0D
    static let space: UInt8 = 0x20
    static let quote: UInt8 = 0x22
    static let percent: UInt8 = 0x25
    static let apostrophe: UInt8 = 0x27
    static let openParen: UInt8 = 0x28
    static let closeParen: UInt8 = 0x29
    static let star: UInt8 = 0x2A
    static let comma: UInt8 = 0x2C
    static let dot: UInt8 = 0x2E
    static let slash: UInt8 = 0x2F
    static let colon: UInt8 = 0x3A
    static let semicolon: UInt8 = 0x3B
    static let less: UInt8 = 0x3C
    static let equals: UInt8 = 0x3D
    static let greater: UInt8 = 0x3E
    static let question: UInt8 = 0x3F
    static let at: UInt8 = 0x40
    static let openBracket: UInt8 = 0x5B
    static let backslash: UInt8 = 0x5C
    static let closeBracket: UInt8 = 0x5D

    /// Space, tab, and stray CR/LF left over from unfolding.
    @inline(__always)
    static func isWhitespace(_ byte: UInt8) -> Bool {
        byte == space || byte == tab || byte == cr || byte == lf
    }

    @inline(__always)
    static func lowercase(_ byte: UInt8) -> UInt8 {
        byte &- 0x41 < 26 ? byte | 0x20 : byte
    }

    @inline(__always)
    static func hexValue(_ byte: UInt8) -> UInt8? {
        switch byte {
        case 0x30...0x39: return byte - 0x30
        case 0x41...0x46: return byte - 0x41 + 10
        case 0x61...0x66: return byte - 0x61 + 10
        default: return nil
        }
    }
}

/// Defects of one header value, each kind recorded once (a hostile value could otherwise yield millions).
struct HeaderDefectLog {
    private(set) var defects: [Defect] = []

    mutating func record(_ kind: Defect.Kind, detail: @autoclosure () -> String = "") {
        // A handful of kinds at most: a linear scan beats hashing on the hot malformed-word path.
        for defect in defects where defect.kind == kind { return }
        defects.append(Defect(kind, detail: detail()))
    }
}

/// Raw header bytes that are not encoded words: ASCII as is, 8-bit runs as UTF-8 or windows-1252.
enum RawHeaderText {
    /// Appends `bytes` to the UTF-8 `out`, stopping once `out` holds more than `limit` bytes.
    static func append(
        _ bytes: ArraySlice<UInt8>, to out: inout [UInt8], limit: Int, log: inout HeaderDefectLog,
        eightBitDefect: Bool = true
    ) {
        var index = bytes.startIndex
        let end = bytes.endIndex
        while index < end, out.count <= limit {
            let byte = bytes[index]
            if byte == HeaderChar.nul {
                log.record(.nulInHeader)
                index += 1
            } else if byte < 0x80 {
                // Copy the whole ASCII run at once, one byte past the room left so the caller sees the cut.
                var runEnd = index + 1
                while runEnd < end, bytes[runEnd] != HeaderChar.nul, bytes[runEnd] < 0x80 { runEnd += 1 }
                let room = limit - out.count
                let take = runEnd - index <= room ? runEnd - index : room + 1
                out += bytes[index..<(index + take)]
                index += take
            } else {
                // Decide per run of 8-bit bytes: a UTF-8 sequence never spans ASCII, and a header mixing
                // a UTF-8 list tag with a Latin-1 subject keeps both readable.
                var runEnd = index + 1
                while runEnd < end, bytes[runEnd] >= 0x80 { runEnd += 1 }
                let run = bytes[index..<runEnd]
                if eightBitDefect { log.record(.eightBitHeader) }
                if isValidUTF8(run) {
                    out += run
                } else {
                    let decoded = Charsets.decode(run, label: "windows-1252", maxUTF8Bytes: 4 * run.count + 4)
                    appendText(decoded.text, to: &out, log: &log)
                }
                index = runEnd
            }
        }
    }

    /// Appends decoded text, dropping U+0000 (a NUL smuggled through an encoded word is still a NUL).
    static func appendText(_ text: String, to out: inout [UInt8], log: inout HeaderDefectLog) {
        for byte in text.utf8 {
            if byte == HeaderChar.nul {
                log.record(.nulInHeader)
            } else {
                out.append(byte)
            }
        }
    }

    /// Raw bytes as a string, with the same rules, cut at `limit` UTF-8 bytes (`.textTruncated`).
    static func string(
        _ bytes: ArraySlice<UInt8>, limit: Int = Limits.default.maxFieldValueBytes, log: inout HeaderDefectLog,
        eightBitDefect: Bool = true
    ) -> String {
        let limit = max(0, limit)
        var out: [UInt8] = []
        out.reserveCapacity(min(bytes.count, limit) + 4)
        append(bytes, to: &out, limit: limit, log: &log, eightBitDefect: eightBitDefect)
        if out.count > limit {
            cut(&out, to: limit)
            log.record(.textTruncated, detail: "header value cut at \(limit) bytes")
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// Cuts UTF-8 `bytes` to at most `limit` bytes on a scalar boundary.
    static func cut(_ bytes: inout [UInt8], to limit: Int) {
        guard bytes.count > limit else { return }
        var cut = limit
        while cut > 0, bytes[cut] & 0xC0 == 0x80 { cut -= 1 }
        bytes.removeSubrange(cut...)
    }

    static func asciiLowercased(_ bytes: some Sequence<UInt8>) -> String {
        String(decoding: bytes.map(HeaderChar.lowercase), as: UTF8.self)
    }

    /// Whether `bytes` is well-formed UTF-8 (no overlongs, surrogates or values past U+10FFFF).
    static func isValidUTF8(_ bytes: ArraySlice<UInt8>) -> Bool {
        var index = bytes.startIndex
        let end = bytes.endIndex
        while index < end {
            let lead = bytes[index]
            if lead < 0x80 {
                index += 1
                continue
            }
            let length: Int
            var low: UInt8 = 0x80
            var high: UInt8 = 0xBF
            switch lead {
            case 0xC2...0xDF: length = 2
            case 0xE0: length = 3; low = 0xA0
            case 0xE1...0xEC, 0xEE...0xEF: length = 3
            case 0xED: length = 3; high = 0x9F
            case 0xF0: length = 4; low = 0x90
            case 0xF1...0xF3: length = 4
            case 0xF4: length = 4; high = 0x8F
            default: return false
            }
            guard end - index >= length else { return false }
            let second = bytes[index + 1]
            guard second >= low, second <= high else { return false }
            for offset in 2..<max(2, length) where bytes[index + offset] & 0xC0 != 0x80 { return false }
            index += length
        }
        return true
    }
}
