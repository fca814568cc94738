import Testing
@testable import PitchMessage

/// One Content-Type value and its expected reading (nil: no type/subtype at all).
struct ContentTypeCase: Sendable, CustomStringConvertible {
    var input: [UInt8]
    var expected: ContentType?
    var defects: Set<Defect.Kind>

    init(
        _ input: String, _ mimeType: String?, _ parameters: [String: String] = [:], boundary: [UInt8]? = nil,
        _ defects: Set<Defect.Kind> = []
    ) {
        self.init(bytes: Array(input.utf8), mimeType, parameters, boundary: boundary, defects)
    }

    init(
        bytes: [UInt8], _ mimeType: String?, _ parameters: [String: String] = [:], boundary: [UInt8]? = nil,
        _ defects: Set<Defect.Kind> = []
    ) {
        self.input = bytes
        self.expected = mimeType.map { mimeType in
            let parts = mimeType.split(separator: "/", maxSplits: 1).map(String.init)
            return ContentType(type: parts[0], subtype: parts[1], parameters: parameters, boundary: boundary)
        }
        self.defects = defects
    }

    var description: String { String(decoding: input.prefix(80), as: UTF8.self) }
}

/// One Content-Disposition value and its expected reading.
struct DispositionCase: Sendable, CustomStringConvertible {
    var input: [UInt8]
    var expected: ContentDisposition
    var defects: Set<Defect.Kind>

    init(
        _ input: String, _ disposition: String, _ parameters: [String: String] = [:], _ defects: Set<Defect.Kind> = []
    ) {
        self.init(bytes: Array(input.utf8), disposition, parameters, defects)
    }

    init(
        bytes: [UInt8], _ disposition: String, _ parameters: [String: String] = [:], _ defects: Set<Defect.Kind> = []
    ) {
        self.input = bytes
        self.expected = ContentDisposition(disposition: disposition, parameters: parameters)
        self.defects = defects
    }

    var description: String { String(decoding: input.prefix(80), as: UTF8.self) }
}

@Suite("MIME parameters")
struct MIMEParametersTests {
    static let common: [ContentTypeCase] = [
        .init("text/plain", "text/plain"),
        .init("text/plain; charset=us-ascii", "text/plain", ["charset": "us-ascii"]),
        .init("text/plain; charset=\"UTF-8\"", "text/plain", ["charset": "UTF-8"]),
        .init("text/plain; charset=\\\"UTF-8\\\"", "text/plain", ["charset": "UTF-8"]),  // PHP's double escape
        .init("TEXT/HTML; CHARSET=\"ISO-8859-1\"", "text/html", ["charset": "ISO-8859-1"]),
        .init("Text/Html;Charset=utf-8", "text/html", ["charset": "utf-8"]),
        .init("text / plain ; charset = utf-8", "text/plain", ["charset": "utf-8"]),
        .init("text/plain (Plain text); charset=us-ascii (Plain text)", "text/plain", ["charset": "us-ascii"]),
        .init("(comment) text (more) / (and more) plain", "text/plain"),
        .init("text/plain; format=flowed; delsp=yes; charset=utf-8", "text/plain", [
            "format": "flowed", "delsp": "yes", "charset": "utf-8",
        ]),
        .init("application/vnd.openxmlformats-officedocument.wordprocessingml.document; name=\"a.docx\"",
              "application/vnd.openxmlformats-officedocument.wordprocessingml.document", ["name": "a.docx"]),
        .init("image/svg+xml", "image/svg+xml"),
        .init("message/rfc822", "message/rfc822"),
    ]

    static let boundaries: [ContentTypeCase] = [
        .init("multipart/mixed; boundary=simple", "multipart/mixed", ["boundary": "simple"],
              boundary: Array("simple".utf8)),
        .init("multipart/mixed; boundary=\"simple boundary\"", "multipart/mixed", ["boundary": "simple boundary"],
              boundary: Array("simple boundary".utf8)),
        .init("multipart/alternative; boundary=\"----=_Part_0_1234.5678\"", "multipart/alternative",
              ["boundary": "----=_Part_0_1234.5678"], boundary: Array("----=_Part_0_1234.5678".utf8)),
        .init("multipart/mixed; boundary=\"a:b,c;d=e (f) \\\"g\\\" \\\\h\"", "multipart/mixed",
              ["boundary": "a:b,c;d=e (f) \"g\" \\h"], boundary: Array("a:b,c;d=e (f) \"g\" \\h".utf8)),
        .init("multipart/alternative; boundary=----=_NextPart_000_0012_01D5", "multipart/alternative",
              ["boundary": "----=_NextPart_000_0012_01D5"], boundary: Array("----=_NextPart_000_0012_01D5".utf8)),
        .init("multipart/mixed;\tboundary=   abc  ;", "multipart/mixed", ["boundary": "abc"],
              boundary: Array("abc".utf8)),
        .init("multipart/mixed; boundary=\"\"", "multipart/mixed", ["boundary": ""]),
        .init(bytes: Array("multipart/mixed; boundary=\"caf".utf8) + [0xE9, 0x22], "multipart/mixed",
              ["boundary": "caf\u{E9}"], boundary: [0x63, 0x61, 0x66, 0xE9], [.eightBitHeader]),
        .init("multipart/mixed; boundary=\"=?utf-8?q?x?=\"", "multipart/mixed", ["boundary": "=?utf-8?q?x?="],
              boundary: Array("=?utf-8?q?x?=".utf8)),
    ]

    static let lenient: [ContentTypeCase] = [
        .init("text", "text/plain", [:], [.invalidContentType]),
        .init("text/", "text/plain", [:], [.invalidContentType]),
        .init("TEXT; charset=utf-8", "text/plain", ["charset": "utf-8"], [.invalidContentType]),
        .init("multipart; boundary=x", "multipart/mixed", ["boundary": "x"], boundary: [0x78], [.invalidContentType]),
        .init("text/plain;;;charset=", "text/plain"),
        .init("text/plain; charset", "text/plain"),
        .init("text/plain; foo; charset=utf-8", "text/plain", ["charset": "utf-8"]),
        .init("text/plain charset=utf-8", "text/plain", ["charset": "utf-8"]),
        .init("text/plain; charset=utf-8 format=flowed", "text/plain", ["charset": "utf-8", "format": "flowed"]),
        .init("text/plain; charset=utf-8; charset=iso-8859-1", "text/plain", ["charset": "utf-8"]),
        .init("text/plain; Charset=utf-8; CHARSET=iso-8859-1", "text/plain", ["charset": "utf-8"]),
        .init("application/pdf; name=my file.pdf", "application/pdf", ["name": "my file.pdf"]),
        .init("application/pdf; name=file(1).pdf", "application/pdf", ["name": "file(1).pdf"]),
        .init("text/plain; name=\"unterminated; charset=x", "text/plain", ["name": "unterminated; charset=x"]),
        .init("text/plain; =junk; \"x\"; charset=utf-8", "text/plain", ["charset": "utf-8"]),
        .init("text/plain; charset=\"utf-8\"junk", "text/plain", ["charset": "utf-8"]),
        .init("application/pdf; name=\"=?utf-8?B?w6kucGRm?=\"", "application/pdf", ["name": "\u{E9}.pdf"]),
        .init("application/pdf; name==?utf-8?B?w6kucGRm?=", "application/pdf", ["name": "\u{E9}.pdf"]),
        .init("text/plain; title=\"=?utf-8?B?w6kucGRm?=\"", "text/plain", ["title": "=?utf-8?B?w6kucGRm?="]),
    ]

    static let invalid: [ContentTypeCase] = [
        .init("", nil),
        .init("   ", nil),
        .init("(just a comment)", nil),
        .init("; charset=utf-8", nil),
        .init("/plain", nil),
        .init("image", nil),
        .init("charset=utf-8", nil),
        .init("\"text/plain\"", nil),
    ]

    static let rfc2231: [ContentTypeCase] = [
        // RFC 2231 §3
        .init(
            "message/external-body; access-type=URL; URL*0=\"ftp://\"; "
                + "URL*1=\"cs.utk.edu/pub/moore/bulk-mailer/bulk-mailer.tar\"",
            "message/external-body",
            ["access-type": "URL", "url": "ftp://cs.utk.edu/pub/moore/bulk-mailer/bulk-mailer.tar"]
        ),
        // RFC 2231 §4
        .init("application/x-stuff; title*=us-ascii'en-us'This%20is%20%2A%2A%2Afun%2A%2A%2A",
              "application/x-stuff", ["title": "This is ***fun***"]),
        // RFC 2231 §4.1
        .init(
            "application/x-stuff; title*0*=us-ascii'en'This%20is%20even%20more%20; "
                + "title*1*=%2A%2A%2Afun%2A%2A%2A%20; title*2=\"isn't it!\"",
            "application/x-stuff", ["title": "This is even more ***fun*** isn't it!"]
        ),
        .init("application/x-stuff; title*2=\"c\"; title*0=\"a\"; title*1=\"b\"", "application/x-stuff",
              ["title": "abc"]),
        .init("application/x-stuff; title*0=\"a\"; title*2=\"c\"", "application/x-stuff", ["title": "a"],
              [.invalidParameter]),
        .init("application/x-stuff; title*1=\"b\"; title*2=\"c\"", "application/x-stuff", ["title": "bc"],
              [.invalidParameter]),
        .init("application/x-stuff; title*0=\"a\"; title*0=\"z\"; title*1=\"b\"", "application/x-stuff",
              ["title": "ab"]),
        .init("application/x-stuff; title*x=\"a\"; title*=\"b\"", "application/x-stuff", ["title": "b"],
              [.invalidParameter]),
        .init("application/x-stuff; name*0*=UTF-8''%E2%82; name*1*=%AC.txt", "application/x-stuff",
              ["name": "\u{20AC}.txt"]),
        .init("application/x-stuff; name*0*=UTF-8''%E2%82%AC; name*1=%41", "application/x-stuff",
              ["name": "\u{20AC}%41"]),
        .init("application/x-stuff; name*=utf-8''100%.txt", "application/x-stuff", ["name": "100%.txt"],
              [.invalidParameter]),
        .init("application/x-stuff; name*=caf%C3%A9", "application/x-stuff", ["name": "caf\u{E9}"],
              [.invalidParameter]),
        .init("application/x-stuff; name*=x-unknown''caf%E9", "application/x-stuff", ["name": "caf\u{E9}"],
              [.unknownCharset]),
        .init("application/x-stuff; name*=''%41", "application/x-stuff", ["name": "A"]),
        .init("multipart/mixed; boundary*0=\"ab\"; boundary*1=\"cd\"", "multipart/mixed", ["boundary": "abcd"],
              boundary: Array("abcd".utf8)),
    ]

    @Test(arguments: common + boundaries + lenient + invalid + rfc2231)
    func parsesContentType(_ example: ContentTypeCase) {
        var defects: [Defect] = []
        let parsed = ContentType.parse(example.input[...], defects: &defects)
        #expect(parsed == example.expected)
        #expect(Set(defects.map(\.kind)) == example.defects)
        #expect(defects.allSatisfy { $0.offset == nil })
    }

    static let dispositions: [DispositionCase] = [
        .init("inline", "inline"),
        .init("attachment; filename=report.pdf", "attachment", ["filename": "report.pdf"]),
        .init("ATTACHMENT; FILENAME=\"Report.PDF\"", "attachment", ["filename": "Report.PDF"]),
        .init("attachment;filename=\"a b.txt\";size=1234", "attachment", ["filename": "a b.txt", "size": "1234"]),
        .init("filename=a.txt", "", ["filename": "a.txt"]),
        .init("", ""),
        .init("; filename=a.txt", "", ["filename": "a.txt"]),
        .init("attachment; filename*=UTF-8''%E2%82%AC%20rates.txt", "attachment", ["filename": "\u{20AC} rates.txt"]),
        .init("attachment; filename*=iso-8859-1'de'Gr%FC%DFe.txt", "attachment", ["filename": "Gr\u{FC}\u{DF}e.txt"]),
        .init("attachment; filename=\"fallback.txt\"; filename*=UTF-8''real.txt", "attachment",
              ["filename": "real.txt"]),
        .init("attachment; filename*0*=UTF-8''%E2%82%AC; filename*1=\" rates\"; filename*2=.txt", "attachment",
              ["filename": "\u{20AC} rates.txt"]),
        .init("attachment; filename=\"=?UTF-8?B?R3LDvMOfZQ==?=.txt\"", "attachment",
              ["filename": "Gr\u{FC}\u{DF}e.txt"]),
        .init("attachment; filename=\"Gr\u{FC}\u{DF}e.txt\"", "attachment", ["filename": "Gr\u{FC}\u{DF}e.txt"],
              [.eightBitHeader]),
        .init(bytes: Array("attachment; filename=\"Gr".utf8) + [0xFC, 0xDF] + Array("e.txt\"".utf8), "attachment",
              ["filename": "Gr\u{FC}\u{DF}e.txt"], [.eightBitHeader]),
        .init("attachment; filename=\"a\\\\b\\\".txt\"", "attachment", ["filename": "a\\b\".txt"]),
    ]

    @Test(arguments: dispositions)
    func parsesContentDisposition(_ example: DispositionCase) {
        var defects: [Defect] = []
        let parsed = ContentDisposition.parse(example.input[...], defects: &defects)
        #expect(parsed == example.expected)
        #expect(parsed.filename == example.expected.parameters["filename"])
        #expect(Set(defects.map(\.kind)) == example.defects)
    }

    static let messageTypes: [(String, Bool)] = [
        ("message/rfc822", true), ("message/global", true), ("message/delivery-status", false),
        ("message/partial", false), ("text/plain", false), ("Message/RFC822", true),
    ]

    @Test(arguments: messageTypes)
    func isMessage(_ mimeType: String, _ expected: Bool) throws {
        var defects: [Defect] = []
        let parsed = try #require(ContentType.parse(Array(mimeType.utf8)[...], defects: &defects))
        #expect(parsed.isMessage == expected)
        #expect(parsed.mimeType == mimeType.lowercased())
    }

    @Test func derivedProperties() throws {
        var defects: [Defect] = []
        let parsed = try #require(
            ContentType.parse(Array("Multipart/Related; boundary=\"b\"; charset=utf-8".utf8)[...], defects: &defects)
        )
        #expect(parsed.isMultipart && !parsed.isText && !parsed.isMessage)
        #expect(parsed.mimeType == "multipart/related")
        #expect(parsed.charset == "utf-8")
        #expect(parsed.boundary == [0x62])
        #expect(ContentType.default.mimeType == "text/plain")
        #expect(ContentType.default.charset == nil)  // us-ascii is implied: Charsets.decode reads nil so
        #expect(ContentType.default.isText)
        #expect(ContentType.messageRFC822.isMessage)
        #expect(ContentType.messageRFC822.parameters.isEmpty)
    }

    @Test func hostileValuesStayCheap() throws {
        var defects: [Defect] = []
        var sections = "application/x-stuff"
        for number in (0..<10_000).reversed() { sections += "; title*\(number)=\"x\"" }
        let parsed = try #require(ContentType.parse(Array(sections.utf8)[...], defects: &defects))
        #expect(parsed.parameters["title"] == String(repeating: "x", count: MIMEParameterList.maxSections))
        #expect(defects.map(\.kind) == [.invalidParameter])

        var names = "text/plain"
        for number in 0..<10_000 { names += "; p\(number)=v" }
        defects = []
        let many = try #require(ContentType.parse(Array(names.utf8)[...], defects: &defects))
        #expect(many.parameters.count == MIMEParameterList.maxParameters)

        let nested = Array(("text/plain; " + String(repeating: "(", count: 100_000)).utf8)
        #expect(ContentType.parse(nested[...], defects: &defects)?.parameters.isEmpty == true)
        let semicolons = Array(("text/plain" + String(repeating: ";", count: 100_000)).utf8)
        #expect(ContentType.parse(semicolons[...], defects: &defects)?.parameters.isEmpty == true)
        let spaces = Array(("text/plain; title=" + String(repeating: "a ", count: 100_000) + "; x=y").utf8)
        defects = []
        let long = try #require(ContentType.parse(spaces[...], defects: &defects))
        #expect(long.parameters["title"]?.utf8.count == 64 << 10)  // values are cut like header values
        #expect(long.parameters["x"] == "y")
        #expect(defects.map(\.kind) == [.textTruncated])
    }
}
