import Testing
@testable import PitchMessage

/// One header value and what `EncodedWords.decode` must make of it.
struct EncodedWordCase: Sendable, CustomStringConvertible {
    var input: [UInt8]
    var expected: String
    var defects: Set<Defect.Kind>
    var maxUTF8Bytes: Int

    init(_ input: String, _ expected: String, _ defects: Set<Defect.Kind> = [], max: Int = 64 << 10) {
        self.init(bytes: Array(input.utf8), expected, defects, max: max)
    }

    init(bytes: [UInt8], _ expected: String, _ defects: Set<Defect.Kind> = [], max: Int = 64 << 10) {
        self.input = bytes
        self.expected = expected
        self.defects = defects
        self.maxUTF8Bytes = max
    }

    var description: String { String(decoding: input.prefix(80), as: UTF8.self) }
}

@Suite("RFC 2047 encoded words")
struct EncodedWordsTests {
    /// RFC 2047 §8, both the header examples and the white-space table.
    static let rfcExamples: [EncodedWordCase] = [
        .init("=?US-ASCII?Q?Keith_Moore?= <moore@cs.utk.edu>", "Keith Moore <moore@cs.utk.edu>"),
        .init("=?ISO-8859-1?Q?Keld_J=F8rn_Simonsen?= <keld@dkuug.dk>", "Keld J\u{F8}rn Simonsen <keld@dkuug.dk>"),
        .init("=?ISO-8859-1?Q?Andr=E9?= Pirard <PIRARD@vm1.ulg.ac.be>", "Andr\u{E9} Pirard <PIRARD@vm1.ulg.ac.be>"),
        .init(
            "=?ISO-8859-1?B?SWYgeW91IGNhbiByZWFkIHRoaXMgeW8=?= =?ISO-8859-2?B?dSB1bmRlcnN0YW5kIHRoZSBleGFtcGxlLg==?=",
            "If you can read this you understand the example."
        ),
        .init(
            "Nathaniel Borenstein <nsb@thumper.bellcore.com> (=?iso-8859-8?b?7eXs+SDv4SDp7Oj08A==?=)",
            "Nathaniel Borenstein <nsb@thumper.bellcore.com> (\u{5DD}\u{5D5}\u{5DC}\u{5E9} \u{5DF}\u{5D1} "
                + "\u{5D9}\u{5DC}\u{5D8}\u{5E4}\u{5E0})"
        ),
        .init("(=?ISO-8859-1?Q?a?=)", "(a)"),
        .init("(=?ISO-8859-1?Q?a?= b)", "(a b)"),
        .init("(=?ISO-8859-1?Q?a?= =?ISO-8859-1?Q?b?=)", "(ab)"),
        .init("(=?ISO-8859-1?Q?a?=  =?ISO-8859-1?Q?b?=)", "(ab)"),
        .init("(=?ISO-8859-1?Q?a?=\t  =?ISO-8859-1?Q?b?=)", "(ab)"),
        .init("(=?ISO-8859-1?Q?a_b?=)", "(a b)"),
        .init("(=?ISO-8859-1?Q?a?= =?ISO-8859-2?Q?_b?=)", "(a b)"),
    ]

    static let encodings: [EncodedWordCase] = [
        .init("=?UTF-8?B?SGVsbG8=?=", "Hello"),
        .init("=?utf-8?b?SGVsbG8=?=", "Hello"),
        .init("=?utf-8?b?SGVsbG8?=", "Hello", [.invalidEncodedWord]),  // padding left out: decoded, but recorded
        .init("=?UTF-8?Q?caf=C3=A9?=", "caf\u{E9}"),
        .init("=?utf-8?q?caf=c3=a9?=", "caf\u{E9}"),
        .init("=?utf-8?q?hello world?=", "hello world"),  // a raw space inside, as broken mailers write
        .init("=?utf-8?Q??=", ""),
        .init("=?iso-8859-1?q?Gr=FC=DFe?=", "Gr\u{FC}\u{DF}e"),
        .init("=?windows-1252?q?=93quoted=94_=80?=", "\u{201C}quoted\u{201D} \u{20AC}"),
        .init("=?US-ASCII*EN?Q?Keith_Moore?=", "Keith Moore"),
        .init("=?utf-8*de?b?R3LDvMOfZQ==?=", "Gr\u{FC}\u{DF}e"),
        .init("=?utf-8?b?SGV*sbG8=?=", "Hello", [.invalidEncodedWord]),
        .init("=?utf-8?q?a=00b?=", "ab", [.nulInHeader]),
    ]

    static let adjacency: [EncodedWordCase] = [
        .init("=?utf-8?q?a?==?utf-8?q?b?=", "ab"),
        .init("=?utf-8?q?a?= =?utf-8?q?b?=", "ab"),
        .init("=?utf-8?q?a?=   \t =?utf-8?q?b?=", "ab"),
        .init("=?utf-8?q?a?= b =?utf-8?q?c?=", "a b c"),
        .init("=?utf-8?q?a?=, =?utf-8?q?b?=", "a, b"),
        .init("=?utf-8?q?caf=C3?= =?utf-8?q?=A9?=", "caf\u{E9}"),  // a character split across two words
        .init("=?utf-8?b?4oI=?= =?UTF8?B?rA==?=", "\u{20AC}"),  // split, charset spelled two ways
        .init("=?iso-8859-1?q?=E9?= =?utf-8?q?=C3=A9?=", "\u{E9}\u{E9}"),
        .init("foo=?utf-8?q?bar?=", "foobar"),
        .init("=?utf-8?q?foo?=bar", "foobar"),
        .init("\"=?utf-8?q?J=C3=B6rg?=\" <j@x>", "\"J\u{F6}rg\" <j@x>"),
        .init("Re: =?utf-8?q?Hi?= there", "Re: Hi there"),
    ]

    static let unknownAndMalformed: [EncodedWordCase] = [
        .init("=?x-unknown?q?caf=C3=A9?=", "caf\u{E9}", [.unknownCharset]),
        .init("=?x-unknown?q?caf=E9?=", "caf\u{E9}", [.unknownCharset]),
        .init("=?utf-8?x?abc?=", "=?utf-8?x?abc?=", [.invalidEncodedWord]),
        .init("=?utf-8?q?abc", "=?utf-8?q?abc", [.invalidEncodedWord]),
        .init("=?utf-8?q?abc? def", "=?utf-8?q?abc? def", [.invalidEncodedWord]),
        .init("=?utf-8?", "=?utf-8?", [.invalidEncodedWord]),
        .init("=?utf-8?qq?abc?=", "=?utf-8?qq?abc?=", [.invalidEncodedWord]),
        .init("=?*en?q?abc?=", "=?*en?q?abc?=", [.invalidEncodedWord]),
        .init("=?utf-8?q?x =?utf-8?q?y?=", "=?utf-8?q?x y", [.invalidEncodedWord]),
        .init("a =? b", "a =? b"),
        .init("=??q?a?=", "=??q?a?="),
        .init("what?= is =?", "what?= is =?"),
        .init("", ""),
    ]

    static let rawBytes: [EncodedWordCase] = [
        .init("Gr\u{FC}\u{DF}e aus K\u{F6}ln", "Gr\u{FC}\u{DF}e aus K\u{F6}ln", [.eightBitHeader]),
        .init(bytes: [0x43, 0x61, 0x66, 0xE9], "Caf\u{E9}", [.eightBitHeader]),
        .init(bytes: [0x93, 0x68, 0x69, 0x94], "\u{201C}hi\u{201D}", [.eightBitHeader]),
        // Decided per run of 8-bit bytes: a UTF-8 "é" and a Latin-1 one in the same value.
        .init(bytes: [0xC3, 0xA9, 0x20, 0xE9], "\u{E9} \u{E9}", [.eightBitHeader]),
        .init(bytes: [0x61, 0x00, 0x62, 0x00, 0x63], "abc", [.nulInHeader]),
        .init(bytes: [0x00], "", [.nulInHeader]),
        .init(bytes: [0xE9, 0x00, 0x3D, 0x3F, 0x75, 0x74, 0x66, 0x2D, 0x38, 0x3F, 0x71, 0x3F, 0x61, 0x3F, 0x3D],
              "\u{E9}a", [.eightBitHeader, .nulInHeader]),
    ]

    static let truncation: [EncodedWordCase] = [
        .init("abcdef", "abc", [.textTruncated], max: 3),
        .init("abc", "abc", max: 3),
        .init("\u{E9}\u{E9}\u{E9}", "\u{E9}", [.eightBitHeader, .textTruncated], max: 3),
        .init("=?utf-8?q?=C3=A9=C3=A9?=", "\u{E9}", [.textTruncated], max: 3),
        .init("x", "", [.textTruncated], max: 0),
    ]

    @Test(arguments: rfcExamples + encodings + adjacency + unknownAndMalformed + rawBytes + truncation)
    func decodes(_ example: EncodedWordCase) {
        var defects: [Defect] = []
        let text = EncodedWords.decode(example.input[...], maxUTF8Bytes: example.maxUTF8Bytes, defects: &defects)
        #expect(text == example.expected)
        #expect(Set(defects.map(\.kind)) == example.defects)
        #expect(defects.allSatisfy { $0.offset == nil })
    }

    @Test func eachDefectKindIsRecordedOnce() {
        let value = Array(String(repeating: "=?utf-8?x?y?= \u{0}\u{E9} ", count: 1_000).utf8)
        var defects: [Defect] = []
        _ = EncodedWords.decode(value[...], defects: &defects)
        #expect(defects.map(\.kind).sorted { $0.rawValue < $1.rawValue }
            == [.eightBitHeader, .invalidEncodedWord, .nulInHeader])
    }

    @Test func worksOnASliceThatDoesNotStartAtZero() {
        let bytes = Array("Subject: =?utf-8?q?caf=C3=A9?=".utf8)
        var defects: [Defect] = []
        #expect(EncodedWords.decode(bytes[9...], defects: &defects) == "caf\u{E9}")
    }

    /// Found by an audit: words taking turns between charsets made glibc load a module for each. A field decodes
    /// eight charsets at most; the words of a ninth stay as written.
    @Test func aFieldDecodesAtMostEightCharsets() {
        let labels = ["iso-8859-2", "iso-8859-5", "koi8-r", "windows-1251", "big5", "euc-kr", "gb2312", "shift_jis",
                      "iso-8859-7"]
        let value = Array(labels.map { "=?\($0)?q?ab?=" }.joined(separator: " ").utf8)
        var defects: [Defect] = []
        let text = EncodedWords.decode(value[...], defects: &defects)
        #expect(text == String(repeating: "ab", count: 8) + " =?iso-8859-7?q?ab?=")
        #expect(defects == [Defect(.invalidEncodedWord, detail: "more than 8 charsets in one field")])
        // Labels decoded without iconv, and unknown ones, do not count: they cannot hide the words after them.
        let cheap = Array(((1...9).map { "=?x\($0)?q?a?=" } + ["=?us-ascii?q?b?=", "=?utf-8?q?quick?="])
            .joined(separator: " ").utf8)
        defects = []
        #expect(EncodedWords.decode(cheap[...], defects: &defects) == "aaaaaaaaabquick")
        #expect(!defects.contains { $0.detail.hasPrefix("more than") })
    }

    @Test func hostileValuesStayCheap() {
        var defects: [Defect] = []
        let starts: [UInt8] = (0..<(1 << 20)).map { $0 % 2 == 0 ? 0x3D : 0x3F }  // "=?=?=?…"
        let text = EncodedWords.decode(starts[...], defects: &defects)
        #expect(text.utf8.count == 64 << 10)
        let words = Array(String(repeating: "=?utf-8?b?QUJD?=", count: 100_000).utf8)
        let joined = EncodedWords.decode(words[...], maxUTF8Bytes: 1 << 20, defects: &defects)
        #expect(joined.utf8.count == 300_000)
    }
}
