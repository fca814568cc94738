@testable import PitchMessage
import Testing

struct TransferDecodingTests {
    // MARK: - Content-Transfer-Encoding labels

    @Test(arguments: [
        (nil, TransferEncoding.sevenBit),
        ("", .sevenBit),
        ("   ", .sevenBit),
        ("(only a comment)", .sevenBit),
        ("7bit", .sevenBit),
        ("7-BIT", .sevenBit),
        ("8bit", .eightBit),
        ("8-Bit", .eightBit),
        ("Binary", .binary),
        ("Quoted-Printable", .quotedPrintable),
        ("quoted_printable", .quotedPrintable),
        ("BASE64", .base64),
        (" base64 (encoded by Foo) ", .base64),
        ("(c) base64", .base64),
        ("base64 (a (nested) \\) comment)", .base64),
        ("\tbase64\r\n", .base64),
        ("x-uuencode", .unknown("x-uuencode")),
        ("X-Foo", .unknown("x-foo")),
    ] as [(String?, TransferEncoding)])
    func transferEncodingLabel(label: String?, expected: TransferEncoding) {
        #expect(TransferEncoding(label: label) == expected)
    }

    // MARK: - Base64

    private func decodeBase64(_ text: String) -> (bytes: [UInt8], kinds: [Defect.Kind]) {
        var defects: [Defect] = []
        let bytes = TransferDecoding.decodeBase64(ArraySlice(text.utf8), defects: &defects)
        #expect(defects.allSatisfy { $0.offset == nil })
        return (bytes, defects.map(\.kind))
    }

    /// A plain RFC 4648 encoder, so the decoder is checked against something independent of it.
    private func encodeBase64(_ bytes: [UInt8]) -> String {
        let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/")
        var text = ""
        var index = 0
        while index < bytes.count {
            let count = min(3, bytes.count - index)
            var value = UInt32(bytes[index]) << 16
            if count > 1 { value |= UInt32(bytes[index + 1]) << 8 }
            if count > 2 { value |= UInt32(bytes[index + 2]) }
            text.append(alphabet[Int(value >> 18 & 63)])
            text.append(alphabet[Int(value >> 12 & 63)])
            text.append(count > 1 ? alphabet[Int(value >> 6 & 63)] : "=")
            text.append(count > 2 ? alphabet[Int(value & 63)] : "=")
            index += 3
        }
        return text
    }

    @Test(arguments: [
        ("", "", []),
        ("SGVsbG8=", "Hello", []),
        ("SGVs\r\nbG8=\r\n", "Hello", []),
        ("SGVs\nbG8=\n", "Hello", []),
        ("  SG Vs\tbG8 = ", "Hello", []),
        // Missing padding: recorded, and the leftover bits still decode.
        ("SGVsbG8", "Hello", [.invalidBase64Padding]),
        ("SGVsbA", "Hell", [.invalidBase64Padding]),
        ("SGVsbG8h", "Hello!", []),
        ("SGk==", "Hi", []),
        ("SGVsbG8h=", "Hello!", []),
        ("====", "", []),
        // Garbage is skipped, recorded once.
        ("SGV*sb!G8=", "Hello", [.invalidBase64Characters]),
        ("S*G*V*s", "Hel", [.invalidBase64Characters]),
        ("!!!!", "", [.invalidBase64Characters]),
        // A single leftover sextet is an impossible length.
        ("SGVsb", "Hel", [.invalidBase64Padding]),
        ("S=", "", [.invalidBase64Padding]),
        // Padding in the middle: the rest decodes as another block.
        ("SGVsbG8=SGVsbG8=", "HelloHello", [.invalidBase64Padding]),
        ("SGk=\r\nSGk=", "HiHi", [.invalidBase64Padding]),
        ("S=SGk=", "Hi", [.invalidBase64Padding]),
        ("SG!k=S", "Hi", [.invalidBase64Characters, .invalidBase64Padding]),
    ] as [(String, String, [Defect.Kind])])
    func base64(input: String, expected: String, kinds: [Defect.Kind]) {
        let result = decodeBase64(input)
        #expect(result.bytes == Array(expected.utf8))
        #expect(result.kinds == kinds)
    }

    @Test(arguments: [256, 255, 254, 3, 2, 1])
    func base64RoundTripsEveryByteValue(length: Int) {
        let data = (0..<length).map { UInt8($0) }
        let result = decodeBase64(encodeBase64(data))
        #expect(result.bytes == data)
        #expect(result.kinds == [])
    }

    @Test func base64WrappedAtSeventySixColumnsWithCRLF() {
        let data = (0..<512).map { UInt8($0 & 0xFF) }
        var wrapped = ""
        for (index, character) in encodeBase64(data).enumerated() {
            wrapped.append(character)
            if index % 76 == 75 { wrapped += "\r\n" }
        }
        let result = decodeBase64(wrapped)
        #expect(result.bytes == data)
        #expect(result.kinds == [])
    }

    @Test func base64TruncatedInputDecodesAPrefixWithinBound() {
        let data = (0..<256).map { UInt8($0) }
        let encoded = Array(encodeBase64(data).utf8)
        for cut in 0...encoded.count {
            var defects: [Defect] = []
            let bytes = TransferDecoding.decodeBase64(encoded[0..<cut], defects: &defects)
            #expect(bytes.count <= cut * 3 / 4)
            #expect(bytes == Array(data.prefix(bytes.count)))
        }
    }

    @Test func base64DecodesASliceThatDoesNotStartAtZero() {
        let bytes = Array("xxSGk=yy".utf8)
        var defects: [Defect] = []
        #expect(TransferDecoding.decodeBase64(bytes[2..<6], defects: &defects) == Array("Hi".utf8))
        #expect(defects.isEmpty)
    }

    @Test func base64AppendsToExistingDefects() {
        var defects = [Defect(.mixedLineEndings, at: 7)]
        _ = TransferDecoding.decodeBase64(ArraySlice("S!".utf8), defects: &defects)
        #expect(defects.map(\.kind) == [.mixedLineEndings, .invalidBase64Characters, .invalidBase64Padding])
    }

    @Test func base64NeverExceedsThreeQuartersOfRandomInput() {
        var generator = SplitMix(seed: 1)
        for _ in 0..<2_000 {
            let count = Int(generator.next() % 64)
            let input = (0..<count).map { _ in UInt8(truncatingIfNeeded: generator.next()) }
            var defects: [Defect] = []
            let output = TransferDecoding.decodeBase64(input[...], defects: &defects)
            #expect(output.count <= count * 3 / 4)
            #expect(defects.count <= 2)
        }
    }

    // MARK: - Quoted-printable

    private func decodeQP(_ text: String, underscoreIsSpace: Bool = false) -> (text: String, kinds: [Defect.Kind]) {
        var defects: [Defect] = []
        let bytes = TransferDecoding.decodeQuotedPrintable(
            ArraySlice(text.utf8), underscoreIsSpace: underscoreIsSpace, defects: &defects)
        #expect(defects.allSatisfy { $0.offset == nil })
        return (String(decoding: bytes, as: UTF8.self), defects.map(\.kind))
    }

    @Test(arguments: [
        ("", "", []),
        ("Hello", "Hello", []),
        ("Caf=C3=A9", "Café", []),
        ("Caf=c3=a9", "Café", []),
        ("=3D=20", "= ", []),
        // Soft line breaks.
        ("soft=\nbreak", "softbreak", []),
        ("soft=\r\nbreak", "softbreak", []),
        ("soft=\t \nbreak", "softbreak", []),
        ("soft= \t\r\nbreak", "softbreak", []),
        ("a=\rb", "ab", []),
        ("end=", "end", []),
        ("end=  ", "end", []),
        ("=", "", []),
        // Trailing white space is transport padding; inner white space is text.
        ("line  \r\nnext\t\nlast", "line\r\nnext\nlast", []),
        ("trailing   ", "trailing", []),
        ("a b\tc", "a b\tc", []),
        ("a \r", "a\r", []),
        ("a \rb", "a \rb", []),
        // Hard line breaks stay as they are.
        ("hard\nbreak\r\nkept", "hard\nbreak\r\nkept", []),
        // Bad escapes are kept literally, recorded once.
        ("bad=ZZescape", "bad=ZZescape", [.invalidQuotedPrintable]),
        ("=4", "=4", [.invalidQuotedPrintable]),
        ("x=4 y", "x=4 y", [.invalidQuotedPrintable]),
        ("=ZZ=YY=41", "=ZZ=YYA", [.invalidQuotedPrintable]),
        ("= x", "= x", [.invalidQuotedPrintable]),
        ("==41", "=A", [.invalidQuotedPrintable]),
        ("a_b", "a_b", []),
    ] as [(String, String, [Defect.Kind])])
    func quotedPrintable(input: String, expected: String, kinds: [Defect.Kind]) {
        let result = decodeQP(input)
        #expect(result.text == expected)
        #expect(result.kinds == kinds)
    }

    @Test(arguments: [
        ("a_b", "a b"),
        ("a_b=5F", "a b_"),
        ("Gr=FC=DFe_aus_K=F6ln", "Gr\u{FC}\u{DF}e aus K\u{F6}ln"),
    ])
    func quotedPrintableUnderscoreMode(input: String, expected: String) {
        var defects: [Defect] = []
        let bytes = TransferDecoding.decodeQuotedPrintable(ArraySlice(input.utf8), underscoreIsSpace: true,
                                                           defects: &defects)
        // Compare bytes: the Latin-1 case is not UTF-8.
        let expectedBytes = expected.unicodeScalars.map { UInt8(truncatingIfNeeded: $0.value) }
        #expect(bytes == expectedBytes)
        #expect(defects.isEmpty)
    }

    @Test func quotedPrintablePassesRawBytesThrough() {
        var defects: [Defect] = []
        let bytes = TransferDecoding.decodeQuotedPrintable([0x00, 0xFF, 0x3D, 0x30, 0x30], defects: &defects)
        #expect(bytes == [0x00, 0xFF, 0x00])
        #expect(defects.isEmpty)
    }

    @Test func quotedPrintableNeverGrowsRandomInput() {
        var generator = SplitMix(seed: 2)
        for round in 0..<2_000 {
            let count = Int(generator.next() % 64)
            let input = (0..<count).map { _ in
                // Mostly the bytes the decoder cares about.
                let pick = generator.next()
                let special: [UInt8] = [0x3D, 0x20, 0x09, 0x0D, 0x0A, 0x5F, 0x41, 0x66]
                return pick & 1 == 0 ? special[Int((pick >> 1) % 8)] : UInt8(truncatingIfNeeded: pick >> 8)
            }
            var defects: [Defect] = []
            let output = TransferDecoding.decodeQuotedPrintable(input[...], underscoreIsSpace: round & 1 == 0,
                                                                defects: &defects)
            #expect(output.count <= count)
            #expect(defects.count <= 1)
        }
    }
}

/// A small deterministic generator, so a failing random case is the same on every run.
private struct SplitMix {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
