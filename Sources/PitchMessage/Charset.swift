import Glibc
import Synchronization

/// Text decoded from some charset, plus what was odd about it.
public struct DecodedText: Hashable, Sendable {
    public var text: String
    public var defects: [Defect]

    public init(text: String, defects: [Defect] = []) {
        self.text = text
        self.defects = defects
    }
}

/// Charset names and decoding. The four charsets that carry nearly all mail (us-ascii, utf-8, iso-8859-1,
/// windows-1252) are decoded here by hand (iso-8859-1 as its superset windows-1252);
/// everything else goes through glibc's iconv(3).
public enum Charsets {
    /// How a charset is decoded.
    enum Method: Hashable, Sendable {
        case ascii
        case utf8
        case windows1252
        /// glibc iconv with `name`; when that finds bad bytes, `fallback` (if any) is tried and the reading
        /// with fewer bad sequences wins. Used where no single glibc converter is the superset mail needs.
        case iconv(String, fallback: String?)
        /// ISO-2022-JP-2 through iconv, falling back to a CP50221-style reading (NEC and IBM extensions,
        /// raw Shift_JIS bytes) when glibc rejects the text, as it does for "①" or "㈱" from Windows mailers.
        case iso2022JP
    }

    struct Resolved: Hashable, Sendable {
        var name: String
        var method: Method
    }

    // MARK: - Names

    /// The canonical lower-case name for a label as found in mail, or nil if unknown.
    ///
    /// White space and quotes around the label and an RFC 2231 language suffix ("utf-8*en") are ignored, and
    /// the aliases mailers really use map to one name per charset. Where mail labels a charset but means its
    /// Microsoft superset (gb2312 → gb18030, ks_c_5601-1987 → euc-kr read as CP949, shift_jis read as CP932),
    /// the name is the one the text is decoded as. A label that is none of these but that glibc's iconv accepts
    /// as it is, is returned lowercased.
    public static func canonicalName(_ label: String) -> String? {
        guard let key = normalize(label), !key.isEmpty else { return nil }
        return resolve(key)?.name
    }

    /// The label trimmed of white space and quotes, ASCII-lowercased, without an RFC 2231 language suffix;
    /// nil when it holds non-ASCII bytes (no charset name does).
    static func normalize(_ label: String) -> String? {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(label.utf8.count)
        for byte in label.utf8 {
            if byte >= 0x80 { return nil }
            if byte == UInt8(ascii: "*") { break }
            bytes.append(byte >= UInt8(ascii: "A") && byte <= UInt8(ascii: "Z") ? byte | 0x20 : byte)
        }
        func isTrimmed(_ byte: UInt8) -> Bool {
            byte == 0x20 || byte == 0x09 || byte == 0x0D || byte == 0x0A
                || byte == UInt8(ascii: "\"") || byte == UInt8(ascii: "'")
        }
        var start = 0
        var end = bytes.count
        while start < end && isTrimmed(bytes[start]) { start += 1 }
        while end > start && isTrimmed(bytes[end - 1]) { end -= 1 }
        return String(decoding: bytes[start..<end], as: UTF8.self)
    }

    /// Whether text in `label` goes through iconv: not the charsets decoded here, and not an unknown label.
    static func usesIconv(_ label: String) -> Bool {
        guard let key = normalize(label), !key.isEmpty, let method = resolve(key)?.method else { return false }
        switch method {
        case .ascii, .utf8, .windows1252: return false
        case .iconv, .iso2022JP: return true
        }
    }

    /// Resolves a normalized, non-empty label.
    static func resolve(_ key: String) -> Resolved? {
        // Nearly all mail says one of these. Answering them directly spares the pipe filter, which lives for one
        // message, building the alias table (0.05 ms, about 1 % of its run).
        switch key {
        case "us-ascii": return Resolved(name: key, method: .ascii)
        case "utf-8": return Resolved(name: key, method: .utf8)
        case "iso-8859-1", "windows-1252": return Resolved(name: key, method: .windows1252)
        default: break
        }
        if let known = aliases[key] { return known }
        // ISO names carry an optional registration year: "iso-8859-1:1987", "iso_8859-15:1998".
        if key.hasPrefix("iso"), let colon = key.utf8.firstIndex(of: UInt8(ascii: ":")),
           let known = aliases[String(decoding: key.utf8[..<colon], as: UTF8.self)] {
            return known
        }
        return iconvAccepts(key) ? Resolved(name: key, method: .iconv(key, fallback: nil)) : nil
    }

    /// Every alias mapped to its canonical name and decoding method.
    static let aliases: [String: Resolved] = {
        var table: [String: Resolved] = [:]
        func add(_ name: String, _ method: Method, _ labels: [String] = []) {
            let resolved = Resolved(name: name, method: method)
            table[name] = resolved
            for label in labels { table[label] = resolved }
        }
        add("us-ascii", .ascii, [
            "ascii", "ansi_x3.4-1968", "ansi_x3.4-1986", "iso646-us", "iso_646.irv:1991", "646", "us",
            "iso-ir-6", "cp367", "ibm367", "csascii",
        ])
        add("utf-8", .utf8, ["utf8", "unicode-1-1-utf-8", "x-unicode20utf8"])
        add("windows-1252", .windows1252, ["cp1252", "x-cp1252", "win-1252", "ms-ansi"])
        // ISO 8859: every spelling mailers produce, for the parts that exist (12 was abandoned).
        let latinNumbers: [Int: Int] = [1: 1, 2: 2, 3: 3, 4: 4, 5: 9, 6: 10, 7: 13, 8: 14, 9: 15, 10: 16]
        for part in [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 14, 15, 16] {
            let name = "iso-8859-\(part)"
            var labels = ["iso8859-\(part)", "iso_8859-\(part)", "iso8859_\(part)", "iso_8859_\(part)",
                          "iso-8859_\(part)", "iso8859\(part)"]
            for (latin, latinPart) in latinNumbers where latinPart == part {
                labels += ["latin\(latin)", "latin-\(latin)", "l\(latin)", "iso-latin-\(latin)"]
            }
            let method: Method
            switch part {
            case 1:
                // Mail labelled ISO-8859-1 with bytes in 0x80–0x9F means windows-1252's quotes, dashes and euro
                // sign (Outlook's habit); WHATWG decodes the label as windows-1252 for that reason, and so do we.
                method = .windows1252
                labels += ["cp819", "ibm819", "iso-ir-100", "csisolatin1"]
            case 11:
                // CP874 is TIS-620 plus the Windows punctuation at 0x80–0x9F, which Thai mail uses.
                method = .iconv("CP874", fallback: nil)
            default:
                method = .iconv("ISO-8859-\(part)", fallback: nil)
            }
            add(name, method, labels)
        }
        // The bidi variants only say how the text is ordered, not which bytes mean what.
        add("iso-8859-6", .iconv("ISO-8859-6", fallback: nil), ["iso-8859-6-i", "iso-8859-6-e", "iso_8859-6-i"])
        if let hebrew = table["iso-8859-8"] {
            for label in ["iso-8859-8-i", "iso-8859-8-e", "iso_8859-8-i", "logical", "visual"] {
                table[label] = hebrew
            }
        }
        for last in 0...8 where last != 2 {
            let name = "windows-125\(last)"
            add(name, .iconv("CP125\(last)", fallback: nil), ["cp125\(last)", "x-cp125\(last)", "win-125\(last)"])
        }
        add("koi8-r", .iconv("KOI8-R", fallback: nil), ["koi8r", "cskoi8r", "koi8"])
        add("koi8-u", .iconv("KOI8-U", fallback: nil), ["koi8u"])
        // GB18030 decodes everything GB2312 and GBK do.
        add("gb18030", .iconv("GB18030", fallback: nil), [
            "gb2312", "euc-cn", "x-euc-cn", "x-gbk", "gbk", "cp936", "ms936", "windows-936", "csgb2312",
            "gb_2312-80", "gb_2312", "chinese", "iso-ir-58", "csiso58gb231280",
        ])
        // glibc's BIG5-HKSCS lacks a few CP950 codes (the euro sign at 0xA3E1 among them); CP950 covers those.
        add("big5", .iconv("BIG5-HKSCS", fallback: "CP950"), [
            "big5-hkscs", "x-x-big5", "cn-big5", "csbig5", "x-big5", "big-5", "big-five", "bigfive", "cp950",
            "x-cp950",
        ])
        // What mail calls Shift_JIS is Microsoft's CP932: backslash not yen, plus the NEC and IBM rows.
        add("shift_jis", .iconv("CP932", fallback: nil), [
            "sjis", "x-sjis", "ms_kanji", "shift-jis", "shiftjis", "windows-31j", "cp932", "ms932", "x-ms-cp932",
            "csshiftjis", "cswindows31j",
        ])
        // EUC-JP-MS reads plain EUC-JP the same way, plus the NEC rows Windows mailers emit.
        add("euc-jp", .iconv("EUC-JP-MS", fallback: nil), ["x-euc-jp", "eucjp", "cseucpkdfmtjapanese", "ujis"])
        add("iso-2022-jp", .iso2022JP, ["csiso2022jp"])
        add("iso-2022-jp-1", .iso2022JP)
        add("iso-2022-jp-2", .iso2022JP, ["csiso2022jp2"])
        // CP949 (Unified Hangul) is EUC-KR plus the rest of the precomposed syllables.
        add("euc-kr", .iconv("CP949", fallback: nil), [
            "ks_c_5601-1987", "ks_c_5601-1989", "ks_c_5601", "ksc5601", "ksc_5601", "cp949", "windows-949",
            "x-windows-949", "uhc", "korean", "csksc56011987", "cseuckr", "iso-ir-149",
        ])
        add("utf-16", .iconv("UTF-16", fallback: nil), ["utf16", "csutf16"])
        add("utf-16le", .iconv("UTF-16LE", fallback: nil), ["utf16le", "csutf16le"])
        add("utf-16be", .iconv("UTF-16BE", fallback: nil), ["utf16be", "csutf16be"])
        add("utf-7", .iconv("UTF-7", fallback: nil), ["utf7", "unicode-1-1-utf-7", "csunicode11utf7"])
        add("tis-620", .iconv("CP874", fallback: nil), ["tis620", "tis-620-2533"])
        add("windows-874", .iconv("CP874", fallback: nil), ["cp874", "x-cp874", "dos-874"])
        add("macintosh", .iconv("MACINTOSH", fallback: nil), ["mac", "x-mac-roman", "macroman", "csmacintosh"])
        return table
    }()

    /// Labels already tried with iconv_open. Bounded, because every message can bring a new label.
    private static let probed = Mutex<[String: Bool]>([:])
    private static let maxProbedLabels = 1_024

    /// Whether glibc's iconv_open accepts a normalized label as it is.
    static func iconvAccepts(_ key: String) -> Bool {
        // Charset names are short tokens. '/' and ',' would reach glibc's "//TRANSLIT,IGNORE" suffix parser,
        // and the locale-dependent pseudo-names would make decoding depend on the host.
        guard key.utf8.count <= 40, key != "char", key != "wchar_t" else { return false }
        for byte in key.utf8 {
            let allowed = (byte >= UInt8(ascii: "a") && byte <= UInt8(ascii: "z"))
                || (byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9"))
                || byte == UInt8(ascii: "-") || byte == UInt8(ascii: "_") || byte == UInt8(ascii: ".")
                || byte == UInt8(ascii: ":") || byte == UInt8(ascii: "+")
            if !allowed { return false }
        }
        if let known = probed.withLock({ $0[key] }) { return known }
        let descriptor = iconv_open("UTF-8", key)
        let accepted = descriptor != nil && descriptor != iconv_t(bitPattern: -1)
        if accepted { iconv_close(descriptor) }
        probed.withLock { table in
            if table.count < maxProbedLabels { table[key] = accepted }
        }
        return accepted
    }

    // MARK: - Decoding

    /// Decodes bytes in the labelled charset. Never fails, never traps.
    ///
    /// - No label means us-ascii (RFC 2045 §5.2). Declared or defaulted us-ascii with 8-bit bytes is read as
    ///   UTF-8 when it is valid UTF-8 and as windows-1252 otherwise, with `.invalidCharsetBytes`, because that
    ///   is what such mail nearly always is.
    /// - utf-8 drops a leading byte order mark; bad bytes become U+FFFD with `.invalidCharsetBytes`.
    /// - iso-8859-1 is read as windows-1252 (WHATWG), which maps its five undefined bytes to the
    ///   C1 controls, as WHATWG does, without a defect.
    /// - Other charsets go through glibc's iconv: bad bytes become U+FFFD with one `.invalidCharsetBytes`.
    /// - An unknown label gets `.unknownCharset` and is read as UTF-8 when valid, else as windows-1252.
    ///
    /// The text is cut to at most `maxUTF8Bytes` UTF-8 bytes at a Unicode scalar boundary, with `.textTruncated`.
    /// The default comes from `Limits`: decoding cost, and everything downstream of it, is linear in it.
    public static func decode(
        _ bytes: ArraySlice<UInt8>, label: String?, maxUTF8Bytes: Int = Limits.default.maxDecodedTextBytes
    ) -> DecodedText {
        let limit = max(0, maxUTF8Bytes)
        var defects: [Defect] = []
        var name = "us-ascii"
        var method: Method? = .ascii
        if let label {
            if let key = normalize(label) {
                if !key.isEmpty {
                    let resolved = resolve(key)
                    name = resolved?.name ?? key
                    method = resolved?.method
                }
            } else {
                method = nil
            }
            if method == nil { defects.append(Defect(.unknownCharset, detail: label)) }
        }
        var truncated = false
        let text = bytes.withUnsafeBufferPointer { input -> String in
            guard let method else { return decodeGuessing(input, limit: limit, truncated: &truncated) }
            switch method {
            case .ascii:
                if firstNonASCII(input) == input.count {
                    return decodeASCII(input, limit: limit, truncated: &truncated)
                }
                defects.append(Defect(.invalidCharsetBytes, detail: "8-bit bytes in us-ascii"))
                return decodeGuessing(input, limit: limit, truncated: &truncated)
            case .utf8:
                let (text, valid) = decodeUTF8(input, limit: limit, truncated: &truncated)
                if !valid { defects.append(Defect(.invalidCharsetBytes, detail: "invalid utf-8")) }
                return text
            case .windows1252:
                return windows1252Table.withUnsafeBufferPointer { table in
                    decodeSingleByte(input, table: table, limit: limit, truncated: &truncated)
                }
            case .iconv(let glibcName, let fallback):
                return decodeIconv(input, name: name, converters: [glibcName, fallback],
                                   limit: limit, truncated: &truncated, defects: &defects)
            case .iso2022JP:
                return decodeISO2022JP(input, name: name, limit: limit, truncated: &truncated, defects: &defects)
            }
        }
        if truncated { defects.append(Defect(.textTruncated)) }
        return DecodedText(text: text, defects: defects)
    }

    /// Text of no known charset: UTF-8 when the bytes are valid UTF-8, else windows-1252, which assigns a
    /// character to every byte and is the commonest 8-bit charset.
    private static func decodeGuessing(
        _ input: UnsafeBufferPointer<UInt8>, limit: Int, truncated: inout Bool
    ) -> String {
        if firstNonASCII(input) == input.count { return decodeASCII(input, limit: limit, truncated: &truncated) }
        var utf8Truncated = false
        let (text, valid) = decodeUTF8(input, limit: limit, truncated: &utf8Truncated)
        if valid {
            truncated = truncated || utf8Truncated
            return text
        }
        return windows1252Table.withUnsafeBufferPointer { table in
            decodeSingleByte(input, table: table, limit: limit, truncated: &truncated)
        }
    }

    /// Index of the first byte ≥ 0x80, or the count when there is none; eight bytes at a time.
    static func firstNonASCII(_ input: UnsafeBufferPointer<UInt8>) -> Int {
        guard let p = input.baseAddress else { return 0 }
        let n = input.count
        var i = 0
        let raw = UnsafeRawPointer(p)
        while i &+ 8 <= n {
            if raw.loadUnaligned(fromByteOffset: i, as: UInt64.self) & 0x8080_8080_8080_8080 != 0 { break }
            i &+= 8
        }
        while i < n && p[i] < 0x80 { i &+= 1 }
        return i
    }

    private static func decodeASCII(
        _ input: UnsafeBufferPointer<UInt8>, limit: Int, truncated: inout Bool
    ) -> String {
        if input.count <= limit { return String(decoding: input, as: UTF8.self) }
        truncated = true
        return String(decoding: UnsafeBufferPointer(rebasing: input[0..<limit]), as: UTF8.self)
    }

    /// Where to cut UTF-8 `bytes` (longer than `limit`) at most `limit` bytes in without splitting a scalar.
    private static func scalarBoundary(_ bytes: UnsafeBufferPointer<UInt8>, limit: Int) -> Int {
        var cut = limit
        // At most three continuation bytes follow a lead byte; beyond that the bytes are invalid anyway.
        while cut > 0 && limit &- cut < 3 && bytes[cut] & 0xC0 == 0x80 { cut &-= 1 }
        return cut
    }

    /// Cuts valid UTF-8 text to at most `limit` bytes at a scalar boundary.
    private static func cut(_ text: String, limit: Int, truncated: inout Bool) -> String {
        if text.utf8.count <= limit { return text }
        truncated = true
        var text = text
        return text.withUTF8 { bytes in
            String(decoding: UnsafeBufferPointer(rebasing: bytes[0..<scalarBoundary(bytes, limit: limit)]),
                   as: UTF8.self)
        }
    }

    /// UTF-8 without a leading byte order mark; `valid` is false when bad bytes were replaced by U+FFFD.
    private static func decodeUTF8(
        _ input: UnsafeBufferPointer<UInt8>, limit: Int, truncated: inout Bool
    ) -> (text: String, valid: Bool) {
        var body = input
        if body.count >= 3 && body[0] == 0xEF && body[1] == 0xBB && body[2] == 0xBF {
            body = UnsafeBufferPointer(rebasing: body[3...])
        }
        // Valid UTF-8 is as long as its decoding and U+FFFD is at least as long as what it replaces, so nothing
        // past `limit` input bytes can be kept.
        if body.count > limit {
            truncated = true
            body = UnsafeBufferPointer(rebasing: body[0..<scalarBoundary(body, limit: limit)])
        }
        if let text = String(validating: body, as: UTF8.self) { return (text, true) }
        return (cut(String(decoding: body, as: UTF8.self), limit: limit, truncated: &truncated), false)
    }

    // MARK: Single-byte charsets

    /// A byte's UTF-8 encoding packed as bytes 0–2 plus its length in the top byte.
    private static func packedUTF8(_ scalar: UInt32) -> UInt32 {
        switch scalar {
        case 0..<0x80:
            return 1 << 24 | scalar
        case 0x80..<0x800:
            return 2 << 24 | (0x80 | scalar & 0x3F) << 8 | (0xC0 | scalar >> 6)
        default:
            return 3 << 24 | (0x80 | scalar & 0x3F) << 16 | (0x80 | scalar >> 6 & 0x3F) << 8 | (0xE0 | scalar >> 12)
        }
    }

    private static let windows1252Table: [UInt32] = {
        // 0x80–0x9F; 0x81, 0x8D, 0x8F, 0x90 and 0x9D are unassigned and map to the C1 control, as in WHATWG.
        let high: [UInt32] = [
            0x20AC, 0x0081, 0x201A, 0x0192, 0x201E, 0x2026, 0x2020, 0x2021,
            0x02C6, 0x2030, 0x0160, 0x2039, 0x0152, 0x008D, 0x017D, 0x008F,
            0x0090, 0x2018, 0x2019, 0x201C, 0x201D, 0x2022, 0x2013, 0x2014,
            0x02DC, 0x2122, 0x0161, 0x203A, 0x0153, 0x009D, 0x017E, 0x0178,
        ]
        return (0..<256).map { byte in packedUTF8(byte >= 0x80 && byte < 0xA0 ? high[byte - 0x80] : UInt32(byte)) }
    }()

    private static func decodeSingleByte(
        _ input: UnsafeBufferPointer<UInt8>, table: UnsafeBufferPointer<UInt32>, limit: Int, truncated: inout Bool
    ) -> String {
        guard let p = input.baseAddress, let t = table.baseAddress, table.count == 256 else { return "" }
        let n = input.count
        let source = UnsafeRawPointer(p)
        // Exact output size first, so the string is allocated once and not oversized.
        var total = 0
        var i = 0
        while i < n {
            if i &+ 8 <= n && source.loadUnaligned(fromByteOffset: i, as: UInt64.self) & 0x8080_8080_8080_8080 == 0 {
                total &+= 8
                i &+= 8
                continue
            }
            total &+= Int(t[Int(p[i])] >> 24)
            i &+= 1
        }
        var end = n
        if total > limit {
            truncated = true
            total = 0
            end = 0
            while end < n {
                let length = Int(t[Int(p[end])] >> 24)
                if total &+ length > limit { break }
                total &+= length
                end &+= 1
            }
        }
        if total == 0 { return "" }
        return String(unsafeUninitializedCapacity: total) { out in
            guard let w = out.baseAddress, out.count >= total else { return 0 }
            let target = UnsafeMutableRawPointer(w)
            var i = 0
            var o = 0
            while i < end {
                if i &+ 8 <= end {
                    // Runs of ASCII, i.e. most of any Western text, are copied a word at a time.
                    let word = source.loadUnaligned(fromByteOffset: i, as: UInt64.self)
                    if word & 0x8080_8080_8080_8080 == 0 {
                        target.storeBytes(of: word, toByteOffset: o, as: UInt64.self)
                        i &+= 8
                        o &+= 8
                        continue
                    }
                }
                let packed = t[Int(p[i])]
                let length = packed >> 24
                w[o] = UInt8(truncatingIfNeeded: packed)
                if length > 1 {
                    w[o &+ 1] = UInt8(truncatingIfNeeded: packed >> 8)
                    if length > 2 { w[o &+ 2] = UInt8(truncatingIfNeeded: packed >> 16) }
                }
                o &+= Int(length)
                i &+= 1
            }
            return o
        }
    }

    // MARK: iconv

    /// The result of one iconv pass.
    private struct Converted {
        var utf8: [UInt8]
        /// Bad or truncated sequences, each replaced by U+FFFD.
        var badSequences: Int
        /// The first bad byte, for the defect's detail.
        var firstBadByte: UInt8?
        var endedInsideSequence: Bool
        var truncated: Bool
    }

    /// Decodes with the first converter, and when that finds bad bytes, also with the second, keeping the better.
    private static func decodeIconv(
        _ input: UnsafeBufferPointer<UInt8>, name: String, converters: [String?], limit: Int,
        truncated: inout Bool, defects: inout [Defect]
    ) -> String {
        var best: Converted?
        for case let glibcName? in converters {
            guard let result = convert(input, from: glibcName, limit: limit) else { continue }
            if best.map({ result.badSequences < $0.badSequences }) ?? true { best = result }
            if result.badSequences == 0 { break }
        }
        return finish(best, input: input, name: name, limit: limit, truncated: &truncated, defects: &defects)
    }

    /// Turns a conversion into text and defects; without one (iconv refused the name), reads the bytes as an
    /// unknown charset.
    private static func finish(
        _ converted: Converted?, input: UnsafeBufferPointer<UInt8>, name: String, limit: Int,
        truncated: inout Bool, defects: inout [Defect]
    ) -> String {
        guard let converted else {
            defects.append(Defect(.unknownCharset, detail: name))
            return decodeGuessing(input, limit: limit, truncated: &truncated)
        }
        if converted.badSequences > 0 {
            let detail: String
            if let byte = converted.firstBadByte {
                detail = "0x" + String(byte, radix: 16, uppercase: true) + " in " + name
            } else {
                detail = "incomplete sequence at the end of " + name
            }
            defects.append(Defect(.invalidCharsetBytes, detail: detail))
        }
        truncated = truncated || converted.truncated
        return converted.utf8.withUnsafeBufferPointer { bytes in
            var body = bytes
            // A byte order mark that the converter passed on (UTF-16LE/BE labels) is not text.
            if body.count >= 3 && body[0] == 0xEF && body[1] == 0xBB && body[2] == 0xBF {
                body = UnsafeBufferPointer(rebasing: body[3...])
            }
            if body.count > limit {
                truncated = true
                body = UnsafeBufferPointer(rebasing: body[0..<scalarBoundary(body, limit: limit)])
            }
            return String(decoding: body, as: UTF8.self)
        }
    }

    /// Runs iconv(3) from `glibcName` to UTF-8 over the whole input, replacing bad sequences with U+FFFD.
    /// Stops once the output passes `limit`. Returns nil when iconv_open refuses the name.
    private static func convert(_ input: UnsafeBufferPointer<UInt8>, from glibcName: String, limit: Int) -> Converted? {
        guard let descriptor = Converters.take(glibcName) else { return nil }
        defer { Converters.putBack(descriptor, name: glibcName) }
        var result = Converted(utf8: [], badSequences: 0, firstBadByte: nil, endedInsideSequence: false,
                               truncated: false)
        guard let base = input.baseAddress, input.count > 0 else { return result }
        let n = input.count
        // Room for the longest output a few input bytes can make, past the limit, so E2BIG then means "done".
        let ceiling = limit > Int.max / 2 ? Int.max / 2 : limit + 64
        var output = [UInt8](repeating: 0, count: min(min(n, Int.max / 4) * 2 + 64, ceiling))
        var produced = 0
        var consumed = 0
        let source = UnsafeMutableRawPointer(mutating: base).assumingMemoryBound(to: CChar.self)

        func grow(atLeast extra: Int) {
            let wanted = max(produced + extra, min(output.count * 2, ceiling), output.count + 64)
            output.append(contentsOf: repeatElement(0, count: wanted - output.count))
        }
        func replace() {
            if output.count - produced < 3 { grow(atLeast: 3) }
            output[produced] = 0xEF
            output[produced + 1] = 0xBF
            output[produced + 2] = 0xBD
            produced += 3
            result.badSequences += 1
        }

        var complete = true
        while consumed < n {
            var inLeft = n - consumed
            var error: Int32 = 0
            let status = output.withUnsafeMutableBufferPointer { buffer -> Int in
                guard let out = buffer.baseAddress else { return -1 }
                var inPointer: UnsafeMutablePointer<CChar>? = source + consumed
                var outPointer: UnsafeMutablePointer<CChar>? =
                    UnsafeMutableRawPointer(out + produced).assumingMemoryBound(to: CChar.self)
                var outLeft = buffer.count - produced
                let status = iconv(descriptor, &inPointer, &inLeft, &outPointer, &outLeft)
                if status == -1 { error = errno }
                produced = buffer.count - outLeft
                return status
            }
            consumed = n - inLeft
            if status != -1 { break }
            if produced > limit {
                complete = false
                break
            }
            switch error {
            case E2BIG:
                grow(atLeast: 64)
            case EILSEQ:
                if result.firstBadByte == nil { result.firstBadByte = base[consumed] }
                replace()
                consumed += 1
            default:
                // EINVAL: the input ends inside a multibyte sequence.
                result.endedInsideSequence = true
                replace()
                consumed = n
            }
        }
        if complete && produced <= limit {
            // Stateful charsets (ISO-2022-*) may owe output at the end; conversions to UTF-8 rarely do.
            if output.count - produced < 64 { grow(atLeast: 64) }
            output.withUnsafeMutableBufferPointer { buffer in
                guard let out = buffer.baseAddress else { return }
                var outPointer: UnsafeMutablePointer<CChar>? =
                    UnsafeMutableRawPointer(out + produced).assumingMemoryBound(to: CChar.self)
                var outLeft = buffer.count - produced
                _ = iconv(descriptor, nil, nil, &outPointer, &outLeft)
                produced = buffer.count - outLeft
            }
        }
        result.truncated = !complete || consumed < n
        output.removeLast(output.count - produced)
        result.utf8 = output
        return result
    }

    // MARK: ISO-2022-JP

    private static func decodeISO2022JP(
        _ input: UnsafeBufferPointer<UInt8>, name: String, limit: Int, truncated: inout Bool,
        defects: inout [Defect]
    ) -> String {
        var best = convert(input, from: "ISO-2022-JP-2", limit: limit)
        if let first = best, first.badSequences > 0, let sjis = transcodeISO2022JPToCP932(input) {
            let second = sjis.withUnsafeBufferPointer { convert($0, from: "CP932", limit: limit) }
            if let second, second.badSequences < first.badSequences { best = second }
        }
        return finish(best, input: input, name: name, limit: limit, truncated: &truncated, defects: &defects)
    }

    /// Rewrites ISO-2022-JP as Windows mailers write it (CP50221: JIS X 0208 with the NEC and IBM rows,
    /// half-width katakana by ESC ( I or SO/SI, stray Shift_JIS bytes) as CP932 bytes. Returns nil on an escape
    /// sequence of ISO-2022-JP-2 proper (Chinese, Korean, ISO 8859), which only glibc's reading handles.
    static func transcodeISO2022JPToCP932(_ input: UnsafeBufferPointer<UInt8>) -> [UInt8]? {
        enum Mode { case ascii, jis0208, katakana }
        var mode = Mode.ascii
        var shiftedOut = false
        var output: [UInt8] = []
        output.reserveCapacity(input.count)
        let n = input.count
        var i = 0
        while i < n {
            let byte = input[i]
            if byte == 0x1B {
                guard i + 2 < n else { return nil }
                switch (input[i + 1], input[i + 2]) {
                case (UInt8(ascii: "("), UInt8(ascii: "B")), (UInt8(ascii: "("), UInt8(ascii: "J")),
                     (UInt8(ascii: "("), UInt8(ascii: "H")):
                    mode = .ascii
                case (UInt8(ascii: "("), UInt8(ascii: "I")):
                    mode = .katakana
                case (UInt8(ascii: "$"), UInt8(ascii: "@")), (UInt8(ascii: "$"), UInt8(ascii: "B")):
                    mode = .jis0208
                case (UInt8(ascii: "&"), UInt8(ascii: "@")):
                    break // announces the 1990 revision of JIS X 0208; ESC $ B follows
                default:
                    return nil
                }
                i += 3
                continue
            }
            i += 1
            switch byte {
            case 0x0E:
                shiftedOut = true
                continue
            case 0x0F:
                shiftedOut = false
                continue
            case 0x0A, 0x0D:
                output.append(byte)
                continue
            default:
                break
            }
            if byte >= 0x80 {
                output.append(byte)
            } else if shiftedOut || mode == .katakana {
                output.append(byte >= 0x21 && byte <= 0x5F ? byte + 0x80 : byte)
            } else if mode == .jis0208 && byte >= 0x21 && byte <= 0x7E && i < n && input[i] >= 0x21
                        && input[i] <= 0x7E {
                let row = byte, cell = input[i]
                i += 1
                var lead = (row - 0x21) >> 1 + 0x81
                if lead > 0x9F { lead += 0x40 }
                var trail: UInt8
                if row & 1 == 1 {
                    trail = cell + 0x1F
                    if trail >= 0x7F { trail += 1 }
                } else {
                    trail = cell + 0x7E
                }
                output.append(lead)
                output.append(trail)
            } else {
                output.append(byte)
            }
        }
        return output
    }
}

/// Open iconv converters to UTF-8, kept for the next text in the same charset. glibc unloads a charset's module
/// when its last converter closes and loads it again at the next iconv_open: a message whose encoded words took
/// turns between four charsets had glibc map and unmap modules for every word (91,000 opens, 5 s for 1 MB). A
/// converter serves one thread at a time: taken out of the pool, then put back, reset, for the next.
enum Converters {
    /// An iconv_t is a pointer to glibc's state; it moves between threads only through the pool's lock.
    private struct Pooled: @unchecked Sendable {
        var name: String
        var descriptor: iconv_t
    }

    /// Least recently used first. Enough for every charset one message is likely to hold, on every core.
    private static let pool = Mutex<[Pooled]>([])
    static let capacity = 32

    /// The Unicode encodings read a byte order mark only in a converter's first call, and a reset does not bring
    /// that back: they are opened for each text. glibc builds them in, so opening them loads nothing.
    static func isReusable(_ glibcName: String) -> Bool {
        let name = glibcName.uppercased()
        return !["UTF-16", "UTF16", "UTF-32", "UTF32", "UCS", "UNICODE", "UTF-7", "UTF7", "CSUNICODE"]
            .contains { name.hasPrefix($0) }
    }

    /// A converter from `glibcName` to UTF-8 in its initial state, or nil if iconv does not know the name.
    static func take(_ glibcName: String) -> iconv_t? {
        let pooled = pool.withLock { pool -> iconv_t? in
            guard let index = pool.lastIndex(where: { $0.name == glibcName }) else { return nil }
            return pool.remove(at: index).descriptor
        }
        if let pooled { return pooled }
        guard let opened = iconv_open("UTF-8", glibcName), opened != iconv_t(bitPattern: -1) else { return nil }
        return opened
    }

    /// Returns a converter taken from `take`; the least recently used one is closed when the pool is full.
    static func putBack(_ descriptor: iconv_t, name: String) {
        guard isReusable(name) else {
            iconv_close(descriptor)
            return
        }
        _ = iconv(descriptor, nil, nil, nil, nil)  // back to the initial shift state
        let evicted = pool.withLock { pool -> iconv_t? in
            pool.append(Pooled(name: name, descriptor: descriptor))
            return pool.count > capacity ? pool.removeFirst().descriptor : nil
        }
        if let evicted { iconv_close(evicted) }
    }
}
