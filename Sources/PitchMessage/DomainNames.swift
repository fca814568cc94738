/// A mail domain in the one form the contact book keeps and compares: lowercased, each label in ASCII, a label
/// with other letters written as its "xn--" form (Punycode, RFC 3492, as IDNA puts it in the DNS, RFC 5891).
///
/// A correspondent's domain reaches us in both forms: most headers, and the Sent folder of most clients, carry
/// the ASCII one; mail sent with SMTPUTF8 (RFC 6532) the Unicode one. Compared as written, a known correspondent
/// was a stranger in the other form (found by an audit). ASCII is the form kept because contact books written
/// before held the domains as the headers gave them, nearly always so.
///
/// Written here rather than taken from libidn2, a system library for one function: the encoder is RFC 3492's
/// few lines. Lowercasing stands in for UTS #46's mapping, and the text is taken as its sender's client wrote it
/// (precomposed, NFC, as clients write it): the two differ only for characters no one writes in a mail domain.
public enum DomainName {
    /// `domain` lowercased, with each label that is not ASCII in its "xn--" form. A label too long to be one
    /// (over 63 letters) is left as it is: it names nothing in the DNS either way.
    public static func ascii(_ domain: String) -> String {
        let lower = domain.lowercased()
        guard !lower.utf8.allSatisfy({ $0 < 0x80 }) else { return lower }
        return lower.split(separator: ".", omittingEmptySubsequences: false).map { label in
            let scalars = label.unicodeScalars.map(\.value)
            guard scalars.contains(where: { $0 >= 0x80 }), scalars.count <= 63 else { return String(label) }
            return "xn--" + Punycode.encode(scalars)
        }.joined(separator: ".")
    }
}

/// RFC 3492's Bootstring with Punycode's parameters, the encoder only.
enum Punycode {
    static let base = 36, tMin = 1, tMax = 26, skew = 38, damp = 700, initialBias = 72, initialN = 128

    /// The label's code points as Punycode: its ASCII letters first, then a "-" and the deltas that insert the
    /// others. Every count stays far below Int's range for a label of at most 63 code points.
    static func encode(_ input: [UInt32]) -> String {
        var output = input.filter { $0 < 0x80 }.map { UInt8($0) }
        let basic = output.count
        if basic > 0 { output.append(UInt8(ascii: "-")) }
        var n = initialN
        var delta = 0
        var bias = initialBias
        var handled = basic
        while handled < input.count {
            // The smallest code point not yet inserted, and the insertions to skip to reach it.
            let next = Int(input.filter { Int($0) >= n }.min()!)
            delta += (next - n) * (handled + 1)
            n = next
            for codePoint in input.map(Int.init) {
                if codePoint < n { delta += 1 }
                guard codePoint == n else { continue }
                var q = delta
                var k = base
                while true {
                    let t = k <= bias ? tMin : (k >= bias + tMax ? tMax : k - bias)
                    if q < t { break }
                    output.append(digit(t + (q - t) % (base - t)))
                    q = (q - t) / (base - t)
                    k += base
                }
                output.append(digit(q))
                bias = adapt(delta, points: handled + 1, first: handled == basic)
                delta = 0
                handled += 1
            }
            delta += 1
            n += 1
        }
        return String(decoding: output, as: UTF8.self)
    }

    private static func digit(_ value: Int) -> UInt8 {
        value < 26 ? UInt8(ascii: "a") + UInt8(value) : UInt8(ascii: "0") + UInt8(value - 26)
    }

    private static func adapt(_ delta: Int, points: Int, first: Bool) -> Int {
        var delta = first ? delta / damp : delta / 2
        delta += delta / points
        var k = 0
        while delta > ((base - tMin) * tMax) / 2 {
            delta /= base - tMin
            k += base
        }
        return k + (base - tMin + 1) * delta / (delta + skew)
    }
}
