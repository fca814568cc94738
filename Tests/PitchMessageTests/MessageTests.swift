import Testing
@testable import PitchMessage

private func message(_ text: String, limits: Limits = .default) -> Message {
    Message(bytes: Array(text.utf8), limits: limits)
}

private func kinds(_ defects: [Defect]) -> Set<Defect.Kind> { Set(defects.map(\.kind)) }

@Suite struct HeaderParsingTests {
    struct Case: CustomTestStringConvertible, Sendable {
        var name: String
        var raw: String
        var fields: [String]          // "name=unfolded value"
        var body: String
        var defects: Set<Defect.Kind> = []
        var testDescription: String { name }
    }

    static let cases: [Case] = [
        Case(name: "simple", raw: "Subject: hi\nFrom: a@example.com\n\nbody\n",
             fields: ["Subject=hi", "From=a@example.com"], body: "body\n"),
        Case(name: "folded with tab and spaces", raw: "Subject: one\n\ttwo\n   three\nX: y\n\nb",
             fields: ["Subject=one\ttwo   three", "X=y"], body: "b"),
        Case(name: "whitespace-only line continues the field (obs-FWS)", raw: "A: 1\n \nB: 2\n\nb",
             fields: ["A=1", "B=2"], body: "b"),
        Case(name: "space before colon", raw: "Subject : hi\n\nb",
             fields: ["Subject=hi"], body: "b", defects: [.whitespaceBeforeColon]),
        Case(name: "empty value", raw: "Subject:\nX:   \n\nb", fields: ["Subject=", "X="], body: "b"),
        Case(name: "headers only, final newline", raw: "Subject: hi\n", fields: ["Subject=hi"], body: ""),
        Case(name: "headers only, no final newline", raw: "Subject: hi", fields: ["Subject=hi"], body: ""),
        Case(name: "no header at all", raw: "\nbody only\n", fields: [], body: "body only\n"),
        Case(name: "empty message", raw: "", fields: [], body: ""),
        Case(name: "non-field line starts the body", raw: "Subject: hi\nthis is text\nmore\n",
             fields: ["Subject=hi"], body: "this is text\nmore\n", defects: [.missingHeaderBodySeparator]),
        Case(name: "first line is text", raw: "Hello there\n\nbody",
             fields: [], body: "Hello there\n\nbody", defects: [.missingHeaderBodySeparator]),
        Case(name: "first line continues nothing", raw: "  stray\nSubject: hi\n\nb",
             fields: ["Subject=hi"], body: "b", defects: [.firstLineIsContinuation]),
        Case(name: "mbox envelope", raw: "From someone@example.com Sat Jan  3 01:05:34 1996\nSubject: hi\n\nb",
             fields: ["Subject=hi"], body: "b"),
        Case(name: "obsolete From with space before colon is a field", raw: "From : a@example.com\n\nb",
             fields: ["From=a@example.com"], body: "b", defects: [.whitespaceBeforeColon]),
        Case(name: "8-bit value", raw: "Subject: Grüße\n\nb",
             fields: ["Subject=Grüße"], body: "b", defects: [.eightBitHeader]),
        Case(name: "CRLF", raw: "Subject: a\r\n b\r\nX: y\r\n\r\nbody\r\n",
             fields: ["Subject=a b", "X=y"], body: "body\r\n"),
        Case(name: "name with 8-bit byte is no field", raw: "Sübject: x\n\nb",
             fields: [], body: "Sübject: x\n\nb", defects: [.missingHeaderBodySeparator]),
    ]

    @Test(arguments: cases)
    func parses(_ c: Case) {
        let m = message(c.raw)
        let header = m.header
        let fields = header.fields.map { field in
            header.name(of: field) + "=" + String(decoding: header.unfoldedValue(of: field), as: UTF8.self)
        }
        #expect(fields == c.fields)
        #expect(String(decoding: m.raw[m.root.bodyRange], as: UTF8.self) == c.body)
        #expect(kinds(m.defects) == c.defects)
    }

    @Test func envelopeRangeIsTheFirstLine() {
        let m = message("From a@b Mon Jan  1 00:00:00 2024\nSubject: x\n\nb")
        #expect(m.envelope == 0..<34)
    }

    @Test func lookupIsCaseInsensitiveAndKeepsEveryOccurrence() {
        let m = message("Received: one\nSubject: s\nRECEIVED: two\nreceived: three\n\n")
        let values = m.header.fields(named: "received").map { String(decoding: m.header.unfoldedValue(of: $0), as: UTF8.self) }
        #expect(values == ["one", "two", "three"])
        #expect(m.header["SUBJECT"] == "s")
        #expect(m.header["X-Missing"] == nil)
    }

    @Test func lineEndings() {
        #expect(message("A: b\n\nc\n").lineEnding == .lf)
        #expect(message("A: b\r\n\r\nc\r\n").lineEnding == .crlf)
        #expect(message("A: b").lineEnding == .lf)
        #expect(kinds(message("A: b\r\n\nc\n").defects) == [.mixedLineEndings])
        #expect(kinds(message("A: b\n\nc\r\n").defects) == [.mixedLineEndings])
        #expect(kinds(message("A: b\r\n\r\nc\r\n").defects).isEmpty)
    }

    @Test func fieldLimitStopsRecordingButFindsTheBody() {
        var limits = Limits()
        limits.maxHeaderFields = 3
        let m = message("A: 1\nB: 2\nC: 3\nD: 4\nE: 5\n\nbody", limits: limits)
        #expect(m.header.count == 3)
        #expect(String(decoding: m.raw[m.root.bodyRange], as: UTF8.self) == "body")
        #expect(kinds(m.defects) == [.tooManyHeaderFields])
    }

    @Test func headerByteLimitStopsRecordingButFindsTheBody() {
        var limits = Limits()
        limits.maxHeaderBytes = 12
        let m = message("A: 1\nB: 2\nC: 3\n\nbody", limits: limits)
        #expect(m.header.count == 2)
        #expect(String(decoding: m.raw[m.root.bodyRange], as: UTF8.self) == "body")
        #expect(kinds(m.defects) == [.headerTooLong])
    }

    @Test func unfoldedValueIsCutAtTheLimit() {
        var limits = Limits()
        limits.maxFieldValueBytes = 5
        let m = message("Subject: abcdefgh\n\n", limits: limits)
        #expect(Array(m.header.unfoldedValue(of: m.header.fields[0])) == Array("abcde".utf8))
    }
}

@Suite struct MultipartTests {
    static func bodies(_ body: String, boundary: String = "b") -> ([String], Bool) {
        let bytes = Array(body.utf8)
        return bytes.withUnsafeBufferPointer { buffer in
            let split = MultipartSplitter.split(buffer, body: 0..<bytes.count, boundary: Array(boundary.utf8), maxParts: 100)
            return (split.bodies.map { String(decoding: bytes[$0], as: UTF8.self) }, split.closed)
        }
    }

    @Test func preambleAndEpilogueAreNotParts() {
        let (parts, closed) = Self.bodies("preamble\n--b\none\n--b\ntwo\n--b--\nepilogue\n")
        #expect(parts == ["one", "two"])
        #expect(closed)
    }

    @Test func lineBreakBeforeADelimiterBelongsToTheDelimiter() {
        #expect(Self.bodies("--b\r\none\r\n\r\n--b--\r\n").0 == ["one\r\n"])
        #expect(Self.bodies("--b\n\n--b\n--b--").0 == ["", ""])
    }

    @Test func delimiterNeedsLineStartAndOnlyWhitespaceAfter() {
        let (parts, closed) = Self.bodies("--b\nsee --b here\n--bc not mine\n--b  \t\nsecond\n--b-- \n")
        #expect(parts == ["see --b here\n--bc not mine", "second"])
        #expect(closed)
    }

    @Test func missingCloseRunsToTheEnd() {
        let (parts, closed) = Self.bodies("--b\none\n--b\ntwo\n")
        #expect(parts == ["one", "two\n"])
        #expect(!closed)
    }

    @Test func noDelimiterNoParts() {
        let (parts, closed) = Self.bodies("just text\n")
        #expect(parts.isEmpty)
        #expect(!closed)
    }

    @Test func treeIsPreOrderWithDepths() {
        let m = message("""
            Content-Type: multipart/mixed; boundary=outer

            --outer
            Content-Type: multipart/alternative; boundary=inner

            --inner
            Content-Type: text/plain

            plain
            --inner
            Content-Type: text/html

            <p>html</p>
            --inner--
            --outer
            Content-Type: message/rfc822

            Subject: inside

            embedded
            --outer--

            """)
        #expect(m.parts.map(\.contentType.mimeType) == [
            "multipart/mixed", "multipart/alternative", "text/plain", "text/html", "message/rfc822", "text/plain",
        ])
        #expect(m.parts.map(\.depth) == [0, 1, 2, 2, 1, 2])
        #expect(m.parts.map(\.parent) == [nil, 0, 1, 1, 0, 4])
        #expect(m.root.children == [1, 4])
        #expect(m.header(of: m.parts[5])["subject"] == "inside")
        #expect(m.decodeText().map(\.text) == ["plain", "html", "embedded"])
        #expect(m.defects.isEmpty)
    }

    @Test func digestPartsDefaultToMessages() {
        let m = message("Content-Type: multipart/digest; boundary=d\n\n--d\n\nSubject: one\n\nhi\n--d--\n")
        #expect(m.parts.map(\.contentType.mimeType) == ["multipart/digest", "message/rfc822", "text/plain"])
    }

    @Test func encodedEmbeddedMessageIsALeaf() {
        let m = message("Content-Type: message/rfc822\nContent-Transfer-Encoding: base64\n\nU3ViamVjdDogeA0KDQp5\n")
        #expect(m.parts.count == 1)
        #expect(m.root.structure == .leaf)
    }
}

@Suite struct HeaderEditorTests {
    static let ours: [FieldNamePattern] = ["X-Pitch-*"]
    static let status = [NewField(name: "X-Pitch-Status", value: "test")]

    struct Case: CustomTestStringConvertible, Sendable {
        var name: String
        var input: String
        var output: String
        var testDescription: String { name }
    }

    static let cases: [Case] = [
        Case(name: "insert at top, LF", input: "Subject: x\n\nbody\n",
             output: "X-Pitch-Status: test\nSubject: x\n\nbody\n"),
        Case(name: "insert at top, CRLF", input: "Subject: x\r\n\r\nbody\r\n",
             output: "X-Pitch-Status: test\r\nSubject: x\r\n\r\nbody\r\n"),
        Case(name: "after the mbox envelope", input: "From a@b Mon Jan  1 00:00:00 2024\nSubject: x\n\nb",
             output: "From a@b Mon Jan  1 00:00:00 2024\nX-Pitch-Status: test\nSubject: x\n\nb"),
        Case(name: "forged fields removed, folded ones whole", input:
                "X-Pitch-Status: ham\nSubject: x\nx-pitch-reasons: a,\n b\nX-Pitchfork: y\nX-Other: z\n\nX-Pitch-Status: body\n",
             output: "X-Pitch-Status: test\nSubject: x\nX-Pitchfork: y\nX-Other: z\n\nX-Pitch-Status: body\n"),
        Case(name: "forged last field without final newline", input: "Subject: x\nX-Pitch-Status: ham",
             output: "X-Pitch-Status: test\nSubject: x\n"),
        Case(name: "empty message", input: "", output: "X-Pitch-Status: test\n"),
        Case(name: "no line break at all", input: "Subject: x", output: "X-Pitch-Status: test\nSubject: x"),
        Case(name: "body only", input: "\nbody\n", output: "X-Pitch-Status: test\n\nbody\n"),
        Case(name: "forged fields after a line that is no field, up to the empty line",
             input: "hello\nX-Pitch-Status: ham\nA: 1\nx-pitch-x: 2\n  more\n\nX-Pitch-Status: body\n",
             output: "X-Pitch-Status: test\nhello\nA: 1\n\nX-Pitch-Status: body\n"),
        Case(name: "below orphan continuation lines", input: " stray\nSubject: x\n\nb",
             output: " stray\nX-Pitch-Status: test\nSubject: x\n\nb"),
        Case(name: "forged field with a NUL in its name (Dovecot reads names as C strings)",
             input: "Subject: x\nX-Pitch-Status\u{0}: pitch\n more\nX-Pitch-Status\u{0}x : ham\nA: 1\n\nb",
             output: "X-Pitch-Status: test\nSubject: x\nA: 1\n\nb"),
        Case(name: "CRLF message behind procmail's LF envelope line",
             input: "From a@b Mon Jan  1 00:00:00 2024\nSubject: x\r\n\r\nb\r\n",
             output: "From a@b Mon Jan  1 00:00:00 2024\nX-Pitch-Status: test\r\nSubject: x\r\n\r\nb\r\n"),
        Case(name: "forged field behind a whitespace-only line", input: "A: 1\n \nX-Pitch-Status: pitch\n\nb",
             output: "X-Pitch-Status: test\nA: 1\n \n\nb"),
        // Found by an audit: procmail's header runs to the first "\n\n", so a lone-CR line in an LF header is a
        // header line to its recipes, and a forged verdict below it filed the message.
        Case(name: "forged field behind a lone-CR line in an LF header",
             input: "From: a\nSubject: x\n\r\nX-Pitch-Status: pitch\nA: 1\n\nX-Pitch-Status: body\n",
             output: "X-Pitch-Status: test\nFrom: a\nSubject: x\n\r\nA: 1\n\nX-Pitch-Status: body\n"),
        Case(name: "forged field behind a lone-CR first line and an envelope",
             input: "From a@b Mon Jan  1 00:00:00 2024\n\r\nX-Pitch-Status: ham\nSubject: x\n\nb\n",
             output: "From a@b Mon Jan  1 00:00:00 2024\nX-Pitch-Status: test\n\r\nSubject: x\n\nb\n"),
        Case(name: "forged field behind two lone-CR lines",
             input: "Subject: x\n\r\n\r\nX-Pitch-Status: ham\n\nb\n",
             output: "X-Pitch-Status: test\nSubject: x\n\r\n\r\n\nb\n"),
        // Found by the test suite: a pass that ended at the end of the bytes read on from there for ever.
        Case(name: "a lone-CR line last", input: "Subject: x\n\r\n", output: "X-Pitch-Status: test\nSubject: x\n\r\n"),
        Case(name: "a CRLF field last in an LF header", input: "Subject: x\nX-Pitch-Status: ham\r\n",
             output: "X-Pitch-Status: test\nSubject: x\n"),
        Case(name: "a lone-CR line before a last CRLF field", input: "Subject: x\n\r\nX-Pitch-Status: ham\r\n",
             output: "X-Pitch-Status: test\nSubject: x\n\r\n"),
        // Found in review: behind procmail's LF lines, a CRLF header's empty line was read past, and the body's
        // quoted fields were taken out.
        Case(name: "a CRLF header behind LF lines ends at its empty line",
             input: "From a@b Mon Jan  1 00:00:00 2024\nX-Pitch-Status: ham\nSubject: x\r\n\r\nX-Pitch-Status: quoted\r\n",
             output: "From a@b Mon Jan  1 00:00:00 2024\nX-Pitch-Status: test\r\nSubject: x\r\n\r\nX-Pitch-Status: quoted\r\n"),
        // Found by an audit: the line ending was the forged first field's.
        Case(name: "our field ends its line as the header left ends them, not as a forged field of ours did",
             input: "X-Pitch-Status: ham\nX-Pitch-Reasons: none\r\nSubject: x\r\nFrom: a\r\n\r\nbody\r\n",
             output: "X-Pitch-Status: test\r\nSubject: x\r\nFrom: a\r\n\r\nbody\r\n"),
        Case(name: "and the other way round",
             input: "X-Pitch-Status: ham\r\nSubject: x\nFrom: a\n\nbody\n",
             output: "X-Pitch-Status: test\nSubject: x\nFrom: a\n\nbody\n"),
        // Found in review: a lone-CR line right below forged fields of ours is judged by the first of them, on every
        // pass; ended as the line below it, our field made the copy read otherwise than the message.
        Case(name: "a lone-CR line below a forged CRLF first field keeps that field's line ending for ours",
             input: "X-Pitch-Status: ham\r\n\r\nX-Pitch-Status: pitch\nSubject: x\n\nbody\n",
             output: "X-Pitch-Status: test\r\n\r\nX-Pitch-Status: pitch\nSubject: x\n\nbody\n"),
        Case(name: "a lone-CR line below a forged LF first field keeps that field's line ending for ours",
             input: "X-Pitch-Status: ham\n\r\nX-Pitch-Status: pitch\r\nSubject: x\r\n\r\nbody\r\n",
             output: "X-Pitch-Status: test\n\r\nSubject: x\r\n\r\nbody\r\n"),
        Case(name: "a lone-CR line after a CRLF line is that header's empty line",
             input: "Subject: x\nA: 1\r\n\r\nX-Pitch-Status: body\n",
             output: "X-Pitch-Status: test\nSubject: x\nA: 1\r\n\r\nX-Pitch-Status: body\n"),
        // Found in review: a forged CRLF field of ours above the lone CR made it a CRLF header's empty line, which
        // its removal then was not: the forged verdict below stayed for procmail, and went on the next pass.
        Case(name: "a lone-CR line below a CRLF field of ours is judged without it",
             input: "From: a\nX-Pitch-Foo: x\r\n\r\nX-Pitch-Status: pitch\n\nbody\n",
             output: "X-Pitch-Status: test\nFrom: a\n\r\n\nbody\n"),
        Case(name: "a lone-CR line below a CR CR LF field of ours is judged without it",
             input: "Subject: y\nX-Pitch-Status: x\r\r\n\r\nX-Pitch-Status: x\n\nbody\n",
             output: "X-Pitch-Status: test\nSubject: y\n\r\n\nbody\n"),
        Case(name: "a CRLF header's empty line ends it",
             input: "Subject: x\r\n\r\nX-Pitch-Status: body\n\nb\r\n",
             output: "X-Pitch-Status: test\r\nSubject: x\r\n\r\nX-Pitch-Status: body\n\nb\r\n"),
    ]

    @Test(arguments: cases)
    func edits(_ c: Case) {
        let output = HeaderEditor.edit(Array(c.input.utf8), removing: Self.ours, inserting: Self.status)
        #expect(String(decoding: output, as: UTF8.self) == c.output)
        // Taking our field out again gives back the input minus the forged fields.
        let restored = HeaderEditor.edit(output, removing: Self.ours, inserting: [])
        let stripped = HeaderEditor.edit(Array(c.input.utf8), removing: Self.ours, inserting: [])
        #expect(restored == stripped)
    }

    /// Found by the fuzzer: with no line start to insert at, a field would merge into the line above for good.
    @Test(arguments: [" X-Broken: one line, no line break", "From a@b Mon Jan  1 00:00:00 2024"])
    func noLineStartNoInsertion(_ input: String) {
        let edit = HeaderEdit(of: Array(input.utf8), removing: Self.ours, inserting: Self.status)
        #expect(edit.insertionSkipped)
        #expect(edit.apply(to: Array(input.utf8)) == Array(input.utf8))
        let withBreak = HeaderEdit(of: Array((input + "\n").utf8), removing: Self.ours, inserting: Self.status)
        #expect(!withBreak.insertionSkipped)
        #expect(String(decoding: withBreak.apply(to: Array((input + "\n").utf8)), as: UTF8.self)
            == input + "\nX-Pitch-Status: test\n")
    }

    /// Found by an audit: a message whose lines end in bare CR is one header line to us; when it began with a
    /// forged field, taking that field out took the whole message, and the filter passed on our field alone.
    /// Found in review, too: behind procmail's envelope line, which ends in a line feed whatever the message's own
    /// line ends, the forged field took the whole message.
    /// And with a last line feed (or CRLF) that a transport put at its end.
    @Test(arguments: [("", ""), ("From bob@example.org Mon Jan  1 00:00:00 2024\n", ""), ("", "\n"), ("", "\r\n"),
                      ("From bob@example.org Mon Jan  1 00:00:00 2024\n", "\r\n")])
    func bareCROnlyMessagesAreLeftAsTheyAre(envelope: String, end: String) {
        let input = Array((envelope
            + "X-Pitch-Status: ham\rFrom: Bob <bob@example.org>\rSubject: Contract\r\rHi,\rterms below.\r" + end).utf8)
        let edit = HeaderEdit(of: input, removing: Self.ours, inserting: Self.status)
        #expect(edit.bareCarriageReturns)
        #expect(edit.insertionSkipped)
        #expect(edit.apply(to: input) == input)
        // Taking our fields out (a digest's view) leaves it whole too, so two such messages stay two.
        #expect(HeaderEditor.edit(input, removing: Self.ours, inserting: []) == input)
    }

    /// A forged field holding bare CRs in a message that has line feeds goes whole, to its line feed, as procmail,
    /// Dovecot and Postfix (whose header_checks IGNORE does the same) read it. Found by an audit: cut at the bare
    /// CR, as a CR-reading program would see it, the rest became new fields for all of them (a second From).
    @Test(arguments: [
        ("X-Pitch-Status: x\rFrom: CEO <ceo@victim.example>\nFrom: Mallory <m@evil.example>\nSubject: pay\n\nbody\n",
         "X-Pitch-Status: test\nFrom: Mallory <m@evil.example>\nSubject: pay\n\nbody\n"),
        ("X-Pitch-Status: x\rFrom: CEO <ceo@victim.example>\r\nFrom: Mallory <m@evil.example>\r\n\r\nbody\r\n",
         "X-Pitch-Status: test\r\nFrom: Mallory <m@evil.example>\r\n\r\nbody\r\n"),
        // After a continuation line, and twice in one header.
        ("From: M <m@evil.example>\nX-Pitch-Status: x\n folded\rSubject: injected\nSubject: real\n\nbody\n",
         "X-Pitch-Status: test\nFrom: M <m@evil.example>\nSubject: real\n\nbody\n"),
        ("From: M\nX-Pitch-Status: x\rTo: ceo@victim.example\nX-Pitch-Status: y\rSubject: URGENT\nSubject: hi\n\nb",
         "X-Pitch-Status: test\nFrom: M\nSubject: hi\n\nb"),
        // A bare CR in the name, or a run of them, leaves nothing behind.
        ("From: a@b.example\nX-Pitch-Status\r: x\n\nbody\n", "X-Pitch-Status: test\nFrom: a@b.example\n\nbody\n"),
        ("From: a@b.example\nX-Pitch-Status: x\r\rX-Pitch-Status: ham, forged\nSubject: hi\n\nbody\n",
         "X-Pitch-Status: test\nFrom: a@b.example\nSubject: hi\n\nbody\n"),
        ("X-Pitch-Status: ham\rFrom: bob@example.org\r\rHi, the terms.\nSubject: x\n\nbody\n",
         "X-Pitch-Status: test\nSubject: x\n\nbody\n"),
        ("Received: x\nX-Pitch-Status: ham\rFrom: bob\rSubject: terms\r", "X-Pitch-Status: test\nReceived: x\n"),
        // Behind a line that is no field (Dovecot reads on), with a NUL in the name.
        ("From: a@b.example\nbogus line\nX-Pitch-Status\u{0}: ham\r\rImportant\rline two\n\nreal body\n",
         "X-Pitch-Status: test\nFrom: a@b.example\nbogus line\n\nreal body\n"),
        ("X-Pitch-Status: ham\r more\nSubject: x\n\nb", "X-Pitch-Status: test\nSubject: x\n\nb"),
        // CR CR LF (a CRLF message converted again) ends the line: the whole field goes, the fields after it stay
        // fields (found by an audit: the CR LF left behind ended the header).
        ("X-Pitch-Status: ham\r\r\nFrom: carol@example.org\r\r\nSubject: Lunch\r\r\n\r\r\nSee you\r\r\n",
         "X-Pitch-Status: test\r\nFrom: carol@example.org\r\r\nSubject: Lunch\r\r\n\r\r\nSee you\r\r\n"),
        ("From: c@example.org\r\r\nX-Pitch-Status: ham\r\r\r\nSubject: Lunch\r\r\n\r\r\nb",
         "X-Pitch-Status: test\r\nFrom: c@example.org\r\r\nSubject: Lunch\r\r\n\r\r\nb"),
        ("X-Pitch-Status: ham\r\rFrom: bob\nSubject: x\n\nb", "X-Pitch-Status: test\nSubject: x\n\nb"),
        ("From: a\nX-Pitch-Foo: x\rX-Pitch-Status: pitch, score=1.0000\nSubject: Hi\n\nbody\n",
         "X-Pitch-Status: test\nFrom: a\nSubject: Hi\n\nbody\n"),
        ("X-Pitch-Foo: x\rX-Pitch-Status: pitch\rx-pitch-reasons\u{0}: y\rFrom: bob\nSubject: x\n\nb",
         "X-Pitch-Status: test\nSubject: x\n\nb"),
        ("X-Pitch-Foo: x\rA: 1\rX-Pitch-Status: pitch\nSubject: x\n\nb", "X-Pitch-Status: test\nSubject: x\n\nb"),
    ])
    func aForgedFieldGoesWholeWhateverBareCRsItHolds(input: String, output: String) {
        let edited = HeaderEditor.edit(Array(input.utf8), removing: Self.ours, inserting: Self.status)
        #expect(String(decoding: edited, as: UTF8.self) == output)
        #expect(!HeaderEdit(of: Array(input.utf8), removing: Self.ours, inserting: Self.status).bareCarriageReturns)
        // What is left has nothing of ours to a line-feed reader: taking ours out again changes nothing.
        let left = HeaderEditor.edit(Array(input.utf8), removing: Self.ours, inserting: [])
        #expect(HeaderEditor.edit(left, removing: Self.ours, inserting: []) == left)
    }

    @Test func lineBreaksInValuesCannotAddFields() {
        let output = HeaderEditor.edit(Array("S: x\n\n".utf8), removing: [],
                                       inserting: [NewField(name: "X-A:\nB", value: "1\r\nX-Pitch-Status: ham")])
        #expect(String(decoding: output, as: UTF8.self) == "X-AB: 1  X-Pitch-Status: ham\nS: x\n\n")
    }

    @Test func removesForgedFieldsPastTheParserLimits() {
        var text = ""
        for i in 0..<3_000 { text += "X-Filler-\(i): v\n" }
        text += "X-Pitch-Status: pitch\n\nbody\n"
        let output = HeaderEditor.edit(Array(text.utf8), removing: Self.ours, inserting: [])
        #expect(!String(decoding: output, as: UTF8.self).contains("X-Pitch-Status"))
        #expect(output.count == text.utf8.count - "X-Pitch-Status: pitch\n".utf8.count)
    }

    @Test func eightBitAndNULBytesSurvive() {
        let input: [UInt8] = Array("Subject: ".utf8) + [0xFF, 0x00, 0xE9] + Array("\n\nb\u{0}dy\r\n".utf8)
        let output = HeaderEditor.edit(input, removing: Self.ours, inserting: Self.status)
        #expect(output == Array("X-Pitch-Status: test\n".utf8) + input)
    }
}
