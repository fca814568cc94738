@testable import PitchMessage
import Testing

// Byte values come from Python's codecs, e.g. `list('日本語'.encode('shift_jis'))`.

private let grusseLatin1: [UInt8] = [0x47, 0x72, 0xFC, 0xDF, 0x65] // "Grüße" in iso-8859-1 and windows-1252
private let nihongoShiftJIS: [UInt8] = [0x93, 0xFA, 0x96, 0x7B, 0x8C, 0xEA] // "日本語"

private func decode(_ bytes: [UInt8], _ label: String?, max: Int = Limits.default.maxDecodedTextBytes)
    -> (text: String, kinds: [Defect.Kind]) {
    let result = Charsets.decode(bytes[...], label: label, maxUTF8Bytes: max)
    #expect(result.defects.allSatisfy { $0.offset == nil })
    return (result.text, result.defects.map(\.kind))
}

struct CharsetTests {
    // MARK: - Names

    @Test(arguments: ["us-ascii", "utf-8", "iso-8859-1", "windows-1252"])
    func theCommonLabelsResolveAsTheAliasTableSays(_ label: String) {
        #expect(Charsets.resolve(label) == Charsets.aliases[label])
        #expect(Charsets.aliases[label] != nil)
    }

    @Test(arguments: [
        ("utf-8", "utf-8"), ("UTF8", "utf-8"), (" \"utf-8\" ", "utf-8"), ("'UTF-8'", "utf-8"), ("utf-8*en", "utf-8"),
        ("us-ascii", "us-ascii"), ("ASCII", "us-ascii"), ("ANSI_X3.4-1968", "us-ascii"), ("iso646-us", "us-ascii"),
        ("646", "us-ascii"),
        ("latin1", "iso-8859-1"), ("L1", "iso-8859-1"), ("iso8859-1", "iso-8859-1"), ("ISO_8859-1", "iso-8859-1"),
        ("iso-8859-1:1987", "iso-8859-1"), ("ISO_8859-1:1987", "iso-8859-1"), ("cp819", "iso-8859-1"),
        ("latin2", "iso-8859-2"), ("iso8859-2", "iso-8859-2"), ("latin5", "iso-8859-9"), ("latin9", "iso-8859-15"),
        ("latin10", "iso-8859-16"), ("l9", "iso-8859-15"), ("iso_8859-15", "iso-8859-15"),
        ("iso-8859-16", "iso-8859-16"), ("iso-8859-11", "iso-8859-11"), ("iso-8859-13", "iso-8859-13"),
        ("iso-8859-8-i", "iso-8859-8"),
        ("cp1252", "windows-1252"), ("x-cp1250", "windows-1250"), ("Windows-1258", "windows-1258"),
        ("cp1251", "windows-1251"),
        ("KOI8-R", "koi8-r"), ("koi8-u", "koi8-u"),
        ("gb2312", "gb18030"), ("euc-cn", "gb18030"), ("x-gbk", "gb18030"), ("GBK", "gb18030"), ("cp936", "gb18030"),
        ("GB18030", "gb18030"),
        ("big5", "big5"), ("Big5-HKSCS", "big5"), ("x-x-big5", "big5"), ("cn-big5", "big5"),
        ("Shift_JIS", "shift_jis"), ("sjis", "shift_jis"), ("x-sjis", "shift_jis"), ("MS_Kanji", "shift_jis"),
        ("shift-jis", "shift_jis"), ("windows-31j", "shift_jis"), ("cp932", "shift_jis"),
        ("EUC-JP", "euc-jp"), ("x-euc-jp", "euc-jp"),
        ("ISO-2022-JP", "iso-2022-jp"), ("iso-2022-jp-1", "iso-2022-jp-1"), ("ISO-2022-JP-2", "iso-2022-jp-2"),
        ("euc-kr", "euc-kr"), ("ks_c_5601-1987", "euc-kr"), ("cp949", "euc-kr"), ("KS_C_5601", "euc-kr"),
        ("UTF-16", "utf-16"), ("utf-16le", "utf-16le"), ("UTF-16BE", "utf-16be"), ("utf-7", "utf-7"),
        ("tis-620", "tis-620"), ("windows-874", "windows-874"),
        ("macintosh", "macintosh"), ("mac", "macintosh"), ("x-mac-roman", "macintosh"),
        // Not in the table, but glibc's iconv takes them as they are.
        ("UTF-32", "utf-32"), ("EBCDIC-US", "ebcdic-us"),
        // Unknown.
        ("x-foo-bar", nil), ("", nil), ("  ", nil), ("unknown-8bit", nil), ("x-user-defined", nil),
        // Never handed to iconv_open: its option suffixes, the locale's charset, non-ASCII.
        ("utf-8//TRANSLIT", nil), ("wchar_t", nil), ("ütf-8", nil),
    ] as [(String, String?)])
    func canonicalName(label: String, expected: String?) {
        #expect(Charsets.canonicalName(label) == expected)
        // The second lookup goes through the cache for iconv-probed names.
        #expect(Charsets.canonicalName(label) == expected)
    }

    // MARK: - Decoding

    @Test(arguments: [
        // us-ascii, declared or defaulted
        (Array("hello".utf8), nil, "hello", []),
        (Array("hello".utf8), "", "hello", []),
        (Array("hello".utf8), "us-ascii", "hello", []),
        (Array("Straße".utf8), nil, "Straße", [.invalidCharsetBytes]),
        (Array("Straße".utf8), "us-ascii", "Straße", [.invalidCharsetBytes]),
        (grusseLatin1, "us-ascii", "Grüße", [.invalidCharsetBytes]),
        ([0x93, 0x68, 0x69, 0x94], nil, "\u{201C}hi\u{201D}", [.invalidCharsetBytes]),
        // utf-8
        (Array("Straße".utf8), "utf-8", "Straße", []),
        ([0xEF, 0xBB, 0xBF] + Array("BOM".utf8), "utf-8", "BOM", []),
        ([0x61, 0xFF, 0x62], "utf-8", "a\u{FFFD}b", [.invalidCharsetBytes]),
        ([0x61, 0xE2, 0x82], "utf-8", "a\u{FFFD}", [.invalidCharsetBytes]),
        // iso-8859-1 and windows-1252, by hand
        (grusseLatin1, "iso-8859-1", "Grüße", []),
        (grusseLatin1, "latin1", "Grüße", []),
        ([0x80, 0x85, 0x9F], "iso-8859-1", "€…Ÿ", []),  // read as windows-1252, as WHATWG does
        (grusseLatin1, "windows-1252", "Grüße", []),
        ([0x80], "windows-1252", "€", []),
        ([0x93, 0x48, 0x94, 0x96, 0x99], "windows-1252", "\u{201C}H\u{201D}\u{2013}\u{2122}", []),
        ([0x80, 0x81, 0x8D, 0x8F, 0x90, 0x9D, 0x9F], "cp1252", "€\u{81}\u{8D}\u{8F}\u{90}\u{9D}Ÿ", []),
        // Other single-byte charsets, through iconv
        ([0xA4], "iso-8859-15", "€", []),
        ([0xA3, 0xF3, 0x64, 0xBC], "iso-8859-2", "Łódź", []),
        ([0xA3, 0xF3, 0x64, 0x9F], "windows-1250", "Łódź", []),
        ([0x81], "windows-1250", "\u{FFFD}", [.invalidCharsetBytes]),
        ([0xC5, 0xEB, 0xEB, 0xE7, 0xED, 0xE9, 0xEA, 0xDC], "iso-8859-7", "Ελληνικά", []),
        ([0xF9, 0xEC, 0xE5, 0xED], "iso-8859-8-i", "שלום", []),
        ([0xF0, 0xD2, 0xC9, 0xD7, 0xC5, 0xD4], "koi8-r", "Привет", []),
        ([0xF0, 0xD2, 0xC9, 0xD7, 0xA6, 0xD4], "koi8-u", "Привіт", []),
        ([0xCF, 0xF0, 0xE8, 0xE2, 0xE5, 0xF2], "windows-1251", "Привет", []),
        ([0xC0, 0xD2, 0xC9, 0xD2, 0xE4, 0xB7, 0xC2], "tis-620", "ภาษาไทย", []),
        ([0x80, 0xC0], "windows-874", "€ภ", []),
        ([0x43, 0x61, 0x66, 0x8E], "macintosh", "Café", []),
        // Japanese
        (nihongoShiftJIS, "shift_jis", "日本語", []),
        ([0x5C, 0x7E], "shift_jis", "\\~", []),
        ([0x87, 0x40, 0x87, 0x41, 0x87, 0x8A], "shift_jis", "①②㈱", []),
        ([0x93, 0xFA, 0x96], "shift_jis", "日\u{FFFD}", [.invalidCharsetBytes]),
        ([0xC6, 0xFC, 0xCB, 0xDC, 0xB8, 0xEC], "euc-jp", "日本語", []),
        ([0xAD, 0xA1], "euc-jp", "①", []),
        ([0x1B, 0x24, 0x42, 0x46, 0x7C, 0x4B, 0x5C, 0x38, 0x6C, 0x1B, 0x28, 0x42], "iso-2022-jp", "日本語", []),
        // No final ESC ( B: the converter's state is flushed at the end.
        ([0x1B, 0x24, 0x42, 0x46, 0x7C, 0x4B, 0x5C, 0x38, 0x6C], "iso-2022-jp", "日本語", []),
        ([0x1B, 0x28, 0x49, 0x31, 0x32, 0x33, 0x1B, 0x28, 0x42], "iso-2022-jp", "ｱｲｳ", []),
        // What Windows mailers send: NEC row 13 in JIS X 0208 mode, and raw Shift_JIS.
        ([0x1B, 0x24, 0x42, 0x2D, 0x21, 0x46, 0x7C, 0x1B, 0x28, 0x42], "iso-2022-jp", "①日", []),
        ([0x41, 0x93, 0xFA], "iso-2022-jp", "A日", []),
        // ISO-2022-JP-2 proper: Korean by ESC $ ( C.
        ([0x1B, 0x24, 0x28, 0x43, 0x47, 0x51, 0x1B, 0x28, 0x42], "iso-2022-jp-2", "한", []),
        // Chinese
        ([0xD6, 0xD0, 0xCE, 0xC4], "gb2312", "中文", []),
        ([0xD6, 0xD0, 0xCE, 0xC4], "gbk", "中文", []),
        ([0x95, 0x32, 0x83, 0x37], "gb18030", "𠀋", []),
        ([0xA4, 0xA4, 0xA4, 0xE5], "big5", "中文", []),
        ([0xA3, 0xE1], "big5", "€", []),
        // Korean
        ([0xC7, 0xD1, 0xB1, 0xB9, 0xBE, 0xEE], "euc-kr", "한국어", []),
        ([0xC7, 0xD1, 0xB1, 0xB9, 0xBE, 0xEE], "ks_c_5601-1987", "한국어", []),
        ([0x81, 0x41], "euc-kr", "갂", []),
        // Unicode
        ([0xFF, 0xFE, 0x48, 0x00, 0x69, 0x00, 0x20, 0x00, 0xAC, 0x20], "utf-16", "Hi €", []),
        ([0xFE, 0xFF, 0x00, 0x48, 0x00, 0x69], "utf-16", "Hi", []),
        ([0xFF, 0xFE, 0x48, 0x00, 0x69, 0x00], "utf-16le", "Hi", []),
        ([0x00, 0x48, 0x00, 0x69, 0x00, 0x20, 0x20, 0xAC], "utf-16be", "Hi €", []),
        ([0x48, 0x00, 0x69], "utf-16le", "H\u{FFFD}", [.invalidCharsetBytes]),
        ([0x48, 0x69, 0x20, 0x2B, 0x49, 0x4B, 0x77, 0x2D], "utf-7", "Hi €", []),
        // Unknown charsets
        (Array("Straße".utf8), "x-foo-bar", "Straße", [.unknownCharset]),
        (grusseLatin1, "x-foo-bar", "Grüße", [.unknownCharset]),
        (Array("plain".utf8), "x-foo-bar", "plain", [.unknownCharset]),
        // NUL passes through
        ([0x61, 0x00, 0x62], nil, "a\u{0}b", []),
        ([0x61, 0x00, 0x62], "utf-8", "a\u{0}b", []),
        ([0x61, 0x00, 0xFC], "iso-8859-1", "a\u{0}ü", []),
        ([0x61, 0x00, 0x62], "koi8-r", "a\u{0}b", []),
        ([0x61, 0x00, 0x62], "shift_jis", "a\u{0}b", []),
        // Empty
        ([], nil, "", []),
        ([], "utf-8", "", []),
        ([], "shift_jis", "", []),
    ] as [([UInt8], String?, String, [Defect.Kind])])
    func decodeCharset(bytes: [UInt8], label: String?, expected: String, kinds: [Defect.Kind]) {
        let result = decode(bytes, label)
        #expect(result.text == expected)
        #expect(result.kinds == kinds)
    }

    /// Converters are kept and reused: each text starts from the initial state, whatever the last one left (a
    /// shift into JIS X 0208 with no shift back, a UTF-16 byte order mark).
    @Test func aReusedConverterStartsAfresh() {
        let unfinished: [UInt8] = [0x1B, 0x24, 0x42, 0x46, 0x7C]  // ESC $ B, then 日, and no ESC ( B
        let ascii: [UInt8] = [0x41, 0x42]
        let bigEndian: [UInt8] = [0xFE, 0xFF, 0x00, 0x48]
        let littleEndian: [UInt8] = [0xFF, 0xFE, 0x48, 0x00]
        let noMark: [UInt8] = [0x48, 0x00, 0x00, 0x48]
        let unmarked = Charsets.decode(noMark[...], label: "utf-16").text
        for _ in 0..<3 {
            #expect(Charsets.decode(unfinished[...], label: "iso-2022-jp").text == "日")
            #expect(Charsets.decode(ascii[...], label: "iso-2022-jp").text == "AB")
            #expect(Charsets.decode(bigEndian[...], label: "utf-16").text == "H")
            #expect(Charsets.decode(noMark[...], label: "utf-16").text == unmarked)
            #expect(Charsets.decode(littleEndian[...], label: "utf-16").text == "H")
        }
    }

    @Test func defectDetails() {
        let unknown = Charsets.decode(grusseLatin1[...], label: " X-Foo-Bar ")
        #expect(unknown.defects == [Defect(.unknownCharset, detail: " X-Foo-Bar ")])
        let ascii = Charsets.decode(grusseLatin1[...], label: "us-ascii")
        #expect(ascii.defects == [Defect(.invalidCharsetBytes, detail: "8-bit bytes in us-ascii")])
        let windows = Charsets.decode([0x41, 0x81], label: "windows-1250")
        #expect(windows.defects == [Defect(.invalidCharsetBytes, detail: "0x81 in windows-1250")])
    }

    // MARK: - Truncation

    @Test(arguments: [
        (Array("hello".utf8), nil, 3, "hel", [.textTruncated]),
        (Array("hello".utf8), "utf-8", 5, "hello", []),
        (Array("aé".utf8), "utf-8", 2, "a", [.textTruncated]),
        (Array("a€".utf8), "utf-8", 3, "a", [.textTruncated]),
        (Array("a€".utf8), "utf-8", 4, "a€", []),
        (Array("aaa😀".utf8), "utf-8", 6, "aaa", [.textTruncated]),
        ([0x61, 0xFF, 0xFF], "utf-8", 4, "a\u{FFFD}", [.invalidCharsetBytes, .textTruncated]),
        (grusseLatin1, "iso-8859-1", 3, "Gr", [.textTruncated]),
        (grusseLatin1, "iso-8859-1", 4, "Grü", [.textTruncated]),
        ([0x61, 0x80], "windows-1252", 3, "a", [.textTruncated]),
        ([0x61, 0x80], "windows-1252", 4, "a€", []),
        (nihongoShiftJIS, "shift_jis", 7, "日本", [.textTruncated]),
        (nihongoShiftJIS, "shift_jis", 9, "日本語", []),
        (nihongoShiftJIS, "shift_jis", 0, "", [.textTruncated]),
        (Array("Straße".utf8), "x-foo-bar", 5, "Stra", [.unknownCharset, .textTruncated]),
        (Array("ab".utf8), "utf-8", -1, "", [.textTruncated]),
    ] as [([UInt8], String?, Int, String, [Defect.Kind])])
    func truncation(bytes: [UInt8], label: String?, limit: Int, expected: String, kinds: [Defect.Kind]) {
        let result = decode(bytes, label, max: limit)
        #expect(result.text == expected)
        #expect(result.kinds == kinds)
    }

    @Test func longIconvTextIsCutAtAScalarBoundary() {
        let bytes = Array([[UInt8]](repeating: nihongoShiftJIS, count: 20_000).joined())
        let result = decode(bytes, "shift_jis", max: 1_000)
        #expect(result.text.utf8.count == 999) // 333 three-byte scalars
        #expect(result.kinds == [.textTruncated])
    }

    @Test func garbageInAnIconvCharsetStaysWithinTheLimit() {
        let bytes = [UInt8](repeating: 0xFF, count: 1 << 20)
        let result = decode(bytes, "shift_jis", max: 4_096)
        #expect(result.text.utf8.count <= 4_096)
        #expect(result.kinds == [.invalidCharsetBytes, .textTruncated])
    }

    @Test(arguments: [
        nil, "utf-8", "us-ascii", "latin1", "cp1252", "shift_jis", "euc-jp", "iso-2022-jp", "big5", "gb2312", "euc-kr",
        "utf-16", "utf-16le", "utf-7", "koi8-r", "x-foo", "utf-32", "tis-620",
    ] as [String?])
    func randomBytesNeverTrapAndRespectTheLimit(label: String?) {
        var state: UInt64 = 0x1234_5678
        func next() -> UInt64 {
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            return state >> 33
        }
        for _ in 0..<500 {
            let bytes = (0..<Int(next() % 64)).map { _ in UInt8(truncatingIfNeeded: next()) }
            let limit = Int(next() % 80)
            let result = Charsets.decode(bytes[...], label: label, maxUTF8Bytes: limit)
            #expect(result.text.utf8.count <= limit)
        }
    }
}
