/// Content-Transfer-Encoding (RFC 2045 §6).
public enum TransferEncoding: Hashable, Sendable {
    case sevenBit, eightBit, binary, quotedPrintable, base64
    /// A label nobody defines, lowercased; the body is taken as it is.
    case unknown(String)

    /// The RFC 2045 name ("7bit", "quoted-printable", …), or the unknown label as read.
    public var label: String {
        switch self {
        case .sevenBit: "7bit"
        case .eightBit: "8bit"
        case .binary: "binary"
        case .quotedPrintable: "quoted-printable"
        case .base64: "base64"
        case .unknown(let label): label
        }
    }

    /// Reads a Content-Transfer-Encoding value.
    ///
    /// A missing or empty label means 7bit, because RFC 2045 §6.1 makes that the default. Case, surrounding
    /// white space and RFC 822 comments are ignored, and the misspellings real mailers produce ("8-bit",
    /// "7-bit", "quoted_printable") are accepted, because mail clients accept them and a filter that reads less
    /// than the recipient sees is easy to evade. "x-uuencode" and other non-MIME encodings stay `unknown`.
    public init(label: String?) {
        guard let label else {
            self = .sevenBit
            return
        }
        let cleaned = TransferEncoding.normalize(label)
        switch cleaned {
        case "", "7bit", "7-bit":
            self = .sevenBit
        case "8bit", "8-bit":
            self = .eightBit
        case "binary":
            self = .binary
        case "quoted-printable", "quoted_printable":
            self = .quotedPrintable
        case "base64":
            self = .base64
        default:
            self = .unknown(cleaned)
        }
    }

    /// The label with comments removed, white space trimmed and ASCII letters lowercased.
    private static func normalize(_ label: String) -> String {
        var kept: [UInt8] = []
        kept.reserveCapacity(label.utf8.count)
        var depth = 0
        var escaped = false
        for byte in label.utf8 {
            if depth > 0 {
                // Inside a comment: only nesting and quoted-pairs matter (RFC 822 §3.4.3).
                if escaped {
                    escaped = false
                } else if byte == UInt8(ascii: "\\") {
                    escaped = true
                } else if byte == UInt8(ascii: "(") {
                    depth += 1
                } else if byte == UInt8(ascii: ")") {
                    depth -= 1
                }
                continue
            }
            if byte == UInt8(ascii: "(") {
                depth = 1
            } else if byte == 0x20 || byte == 0x09 || byte == 0x0D || byte == 0x0A {
                // Folding white space anywhere: "base 64" is not a thing, but "base64 \r\n" is.
                kept.append(0x20)
            } else if byte >= UInt8(ascii: "A") && byte <= UInt8(ascii: "Z") {
                kept.append(byte | 0x20)
            } else {
                kept.append(byte)
            }
        }
        var start = 0
        var end = kept.count
        while start < end && kept[start] == 0x20 { start += 1 }
        while end > start && kept[end - 1] == 0x20 { end -= 1 }
        return String(decoding: kept[start..<end], as: UTF8.self)
    }
}

/// Decoders for the two transfer encodings that change bytes. Both are lenient in the way mail clients are:
/// malformed input is decoded as well as it can be and the oddity is recorded as a `Defect` (offset nil; the
/// caller knows where the body starts).
public enum TransferDecoding {
    // Base64 byte classes: 0–63 are sextet values, the rest are markers.
    private static let b64Space: UInt8 = 0x40
    private static let b64Pad: UInt8 = 0x41
    private static let b64Invalid: UInt8 = 0xFF

    /// The 64 characters of RFC 4648 base64, in value order.
    public static let base64Alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8)

    /// Per byte, its value as a base64 character (0–63); above 63 for anything else (white space, "=", other).
    public static let base64Values: [UInt8] = {
        var table = [UInt8](repeating: b64Invalid, count: 256)
        for (value, byte) in base64Alphabet.enumerated() { table[Int(byte)] = UInt8(value) }
        for byte: UInt8 in [0x20, 0x09, 0x0A, 0x0D, 0x0B, 0x0C] { table[Int(byte)] = b64Space }
        table[Int(UInt8(ascii: "="))] = b64Pad
        return table
    }()

    /// Hex digit values (either case); 0xFF for anything else.
    private static let hexTable: [UInt8] = {
        var table = [UInt8](repeating: 0xFF, count: 256)
        for (value, byte) in "0123456789ABCDEF".utf8.enumerated() { table[Int(byte)] = UInt8(value) }
        for (value, byte) in "abcdef".utf8.enumerated() { table[Int(byte)] = UInt8(value + 10) }
        return table
    }()

    /// Decodes base64 leniently, the way mail clients do, because spam relies on clients being lenient.
    ///
    /// White space is skipped silently (line breaks are part of the format). Other bytes outside the alphabet
    /// are skipped and recorded once as `.invalidBase64Characters`. Missing padding at the end is recorded once as
    /// `.invalidBase64Padding`, but the leftover bits are still decoded (a single leftover sextet cannot encode a
    /// byte and is dropped); so is data after `=` padding, which is decoded as a further base64 block because
    /// concatenated base64 files are what it nearly always is. The output is never longer than 3/4 of the input.
    public static func decodeBase64(_ bytes: ArraySlice<UInt8>, defects: inout [Defect]) -> [UInt8] {
        let inputCount = bytes.count
        if inputCount == 0 { return [] }
        var badCharacters = false
        var badPadding = false
        let capacity = inputCount / 4 * 3 + 3
        let output = [UInt8](unsafeUninitializedCapacity: capacity) { out, initialized in
            var o = 0
            base64Values.withUnsafeBufferPointer { table in
                bytes.withUnsafeBufferPointer { input in
                    guard let p = input.baseAddress, let t = table.baseAddress, let w = out.baseAddress else { return }
                    let n = input.count
                    var i = 0
                    var accumulator: UInt32 = 0
                    var pending = 0          // sextets in `accumulator`
                    var afterPadding = false // saw '=' and no data since
                    while i < n {
                        if pending == 0 && !afterPadding {
                            // Fast path: whole quanta of alphabet characters, i.e. the body of every line.
                            while i &+ 4 <= n {
                                let a = t[Int(p[i])], b = t[Int(p[i &+ 1])]
                                let c = t[Int(p[i &+ 2])], d = t[Int(p[i &+ 3])]
                                if (a | b | c | d) & 0xC0 != 0 { break }
                                let v = UInt32(a) << 18 | UInt32(b) << 12 | UInt32(c) << 6 | UInt32(d)
                                w[o] = UInt8(truncatingIfNeeded: v >> 16)
                                w[o &+ 1] = UInt8(truncatingIfNeeded: v >> 8)
                                w[o &+ 2] = UInt8(truncatingIfNeeded: v)
                                o &+= 3
                                i &+= 4
                            }
                            if i >= n { break }
                        }
                        let value = t[Int(p[i])]
                        i &+= 1
                        if value < 64 {
                            if afterPadding {
                                badPadding = true
                                afterPadding = false
                            }
                            accumulator = accumulator << 6 | UInt32(value)
                            pending &+= 1
                            if pending == 4 {
                                w[o] = UInt8(truncatingIfNeeded: accumulator >> 16)
                                w[o &+ 1] = UInt8(truncatingIfNeeded: accumulator >> 8)
                                w[o &+ 2] = UInt8(truncatingIfNeeded: accumulator)
                                o &+= 3
                                pending = 0
                                accumulator = 0
                            }
                        } else if value == b64Space {
                            continue
                        } else if value == b64Pad {
                            if pending > 0 {
                                if flushPartial(accumulator, pending, w, &o) { badPadding = true }
                                pending = 0
                                accumulator = 0
                            }
                            afterPadding = true
                        } else {
                            badCharacters = true
                        }
                    }
                    if pending > 0 {
                        // RFC 2045 §6.8: the last group is padded to four characters; its bits still decode.
                        _ = flushPartial(accumulator, pending, w, &o)
                        badPadding = true
                    }
                }
            }
            initialized = o
        }
        if badCharacters { defects.append(Defect(.invalidBase64Characters)) }
        if badPadding { defects.append(Defect(.invalidBase64Padding)) }
        return output
    }

    /// Writes the bytes held by an incomplete quantum; returns true when it was a lone sextet, which holds none.
    @inline(__always)
    private static func flushPartial(
        _ accumulator: UInt32, _ pending: Int, _ w: UnsafeMutablePointer<UInt8>, _ o: inout Int
    ) -> Bool {
        switch pending {
        case 2:
            w[o] = UInt8(truncatingIfNeeded: accumulator >> 4)
            o &+= 1
            return false
        case 3:
            w[o] = UInt8(truncatingIfNeeded: accumulator >> 10)
            w[o &+ 1] = UInt8(truncatingIfNeeded: accumulator >> 2)
            o &+= 2
            return false
        default:
            return pending == 1
        }
    }

    /// Decodes quoted-printable (RFC 2045 §6.7) leniently.
    ///
    /// `=XX` takes hex digits in either case because real encoders emit lowercase. A soft line break is `=`
    /// followed by LF or CRLF, optionally with spaces or tabs in between (transport adds them). Spaces and tabs
    /// at the end of a line, including the last line of the input, are dropped, as §6.7 rule 3 requires.
    /// A malformed escape is kept literally (the `=` and what follows) and recorded once as
    /// `.invalidQuotedPrintable`, as mail clients show it; a lone `=` at the very end is a soft break and is
    /// dropped. Hard line breaks are kept exactly as they are in the input.
    ///
    /// - Parameter underscoreIsSpace: decode `_` as a space, for the RFC 2047 "Q" encoding of header words.
    public static func decodeQuotedPrintable(
        _ bytes: ArraySlice<UInt8>, underscoreIsSpace: Bool = false, defects: inout [Defect]
    ) -> [UInt8] {
        let inputCount = bytes.count
        if inputCount == 0 { return [] }
        var badEscape = false
        // Every construct decodes to at most as many bytes as it occupies.
        let output = [UInt8](unsafeUninitializedCapacity: inputCount) { out, initialized in
            var o = 0
            hexTable.withUnsafeBufferPointer { hex in
                bytes.withUnsafeBufferPointer { input in
                    guard let p = input.baseAddress, let h = hex.baseAddress, let w = out.baseAddress else { return }
                    let n = input.count
                    let underscore: UInt8 = underscoreIsSpace ? UInt8(ascii: "_") : UInt8(ascii: "=")
                    var i = 0
                    while i < n {
                        let byte = p[i]
                        // Everything but these four bytes is copied as is; that is nearly all of a QP body.
                        if byte != UInt8(ascii: "=") && byte != 0x20 && byte != 0x09 && byte != underscore {
                            w[o] = byte
                            o &+= 1
                            i &+= 1
                            continue
                        }
                        if byte == 0x20 || byte == 0x09 {
                            var j = i &+ 1
                            while j < n && (p[j] == 0x20 || p[j] == 0x09) { j &+= 1 }
                            if !isLineEnd(p, j, n) {
                                while i < j {
                                    w[o] = p[i]
                                    o &+= 1
                                    i &+= 1
                                }
                            }
                            i = j
                            continue
                        }
                        if byte != UInt8(ascii: "=") {
                            // The underscore, in "Q" mode only.
                            w[o] = 0x20
                            o &+= 1
                            i &+= 1
                            continue
                        }
                        if i &+ 2 < n {
                            let high = h[Int(p[i &+ 1])], low = h[Int(p[i &+ 2])]
                            if high < 16 && low < 16 {
                                w[o] = high << 4 | low
                                o &+= 1
                                i &+= 3
                                continue
                            }
                        }
                        // Soft line break: '=' [spaces/tabs] (LF | CRLF | CR | end of input).
                        var j = i &+ 1
                        while j < n && (p[j] == 0x20 || p[j] == 0x09) { j &+= 1 }
                        if j >= n {
                            i = n
                        } else if p[j] == 0x0A {
                            i = j &+ 1
                        } else if p[j] == 0x0D {
                            // A bare CR is taken as a line break too (old Mac line ends).
                            i = (j &+ 1 < n && p[j &+ 1] == 0x0A) ? j &+ 2 : j &+ 1
                        } else {
                            badEscape = true
                            w[o] = UInt8(ascii: "=")
                            o &+= 1
                            i &+= 1
                        }
                    }
                }
            }
            initialized = o
        }
        if badEscape { defects.append(Defect(.invalidQuotedPrintable)) }
        return output
    }

    /// True when position `j` is a line break (LF, CRLF, or a CR that ends the input) or the end of the input.
    @inline(__always)
    private static func isLineEnd(_ p: UnsafePointer<UInt8>, _ j: Int, _ n: Int) -> Bool {
        if j >= n { return true }
        if p[j] == 0x0A { return true }
        return p[j] == 0x0D && (j &+ 1 == n || p[j &+ 1] == 0x0A)
    }
}
