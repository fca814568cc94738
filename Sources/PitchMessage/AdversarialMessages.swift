/// Generators for hostile messages, shared by the tests (which assert outcomes) and `pitch-bench adversarial`
/// (which times them and measures memory), so both always look at the same inputs.
public enum AdversarialMessages {
    /// multipart/mixed inside multipart/mixed, `levels` deep, every level properly closed.
    public static func deepNesting(levels: Int) -> [UInt8] {
        var out: [UInt8] = []
        for level in 0..<levels {
            out += Array("Content-Type: multipart/mixed; boundary=\"b\(level)\"\n\n--b\(level)\n".utf8)
        }
        out += Array("Content-Type: text/plain\n\ninnermost\n".utf8)
        for level in (0..<levels).reversed() { out += Array("--b\(level)--\n".utf8) }
        return out
    }

    /// A short header and one body line of `bytes` bytes with no line break.
    public static func hugeLine(bytes: Int) -> [UInt8] {
        let header = Array("Subject: one line\n\n".utf8)
        var out = header
        out.reserveCapacity(header.count + bytes)
        out += repeatElement(UInt8(ascii: "a"), count: bytes)
        return out
    }

    /// `count` header fields named X-Field-N, then a body.
    public static func manyFields(_ count: Int) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(count * 20)
        for i in 0..<count { out += Array("X-Field-\(i): value\n".utf8) }
        out += Array("\nbody\n".utf8)
        return out
    }

    /// NUL bytes in field values, in a field name (which makes that line no field, so the body starts there)
    /// and in the body.
    public static func nulEverywhere() -> [UInt8] {
        Array("Subject: hi\u{0} there\nX-Nul: \u{0}\u{0}\nX-\u{0}Bad: 1\na\u{0}b\u{0}c\n".utf8)
    }

    /// A base64 part cut one character into a quartet and a quoted-printable part cut after a soft break.
    public static func truncatedEncodings() -> [UInt8] {
        Array("""
            Content-Type: multipart/mixed; boundary=x

            --x
            Content-Transfer-Encoding: base64

            SGVsbG8sIHdvc
            --x
            Content-Transfer-Encoding: quoted-printable

            soft break=
             then cut=
            --x--

            """.utf8)
    }

    /// From, To and Cc each a quoted string of `escapedQuotes` escaped quote marks, never closed, with the address
    /// past the field's 64 KiB that the parser reads: every escaped quote could begin a quoted string of its own.
    public static func escapedQuotes(_ escapedQuotes: Int) -> [UInt8] {
        let value = "\"" + String(repeating: "\\\"", count: escapedQuotes) + " <sender@example.com>"
        return Array("From: \(value)\nTo: \(value)\nCc: \(value)\nSubject: hi\n\nbody\n".utf8)
    }

    /// `parts` delimiters and never a close.
    public static func unclosedBoundary(parts: Int) -> [UInt8] {
        var out = Array("Content-Type: multipart/mixed; boundary=\"open\"\n\n".utf8)
        for i in 0..<parts { out += Array("--open\nContent-Type: text/plain\n\npart \(i)\n".utf8) }
        return out
    }

    /// Lines that start like the boundary but are not delimiters ("--bx…"), which a naive splitter
    /// would re-examine again and again.
    public static func boundaryLookalikes(lines: Int) -> [UInt8] {
        var out = Array("Content-Type: multipart/mixed; boundary=\"b\"\n\n--b\n\n".utf8)
        out.reserveCapacity(out.count + lines * 5)
        for _ in 0..<lines { out += [0x2D, 0x2D, 0x62, 0x78, 0x0A] }
        out += Array("--b--\n".utf8)
        return out
    }
}
