import Foundation
import PitchMessage
@testable import PitchTokenizer
import Testing

/// The tokens of `text` as a message, with LF or CRLF line endings.
private func tokens(_ text: String, crlf: Bool = false, bounds: Tokenizer.Bounds = .standard) -> [String] {
    var bytes = Array(text.utf8)
    if crlf {
        bytes = bytes.flatMap { $0 == 0x0A ? [0x0D, 0x0A] : [$0] }
    }
    return Tokenizer(bounds: bounds).tokens(of: Message(bytes: bytes))
}

/// The tokens `WordStream` makes of a text on its own.
private func wordTokens(_ text: String, pairs: Bool = false, prefix: StaticString = "") -> [String] {
    let bounds = Tokenizer.Bounds.standard
    var out = TokenCollector(limit: bounds.maxTokens, maxWordBytes: bounds.maxWordBytes)
    defer { out.deallocate() }
    var text = text
    text.withUTF8 { bytes in
        var stream = WordStream(bounds: bounds, prefix: prefix, pairs: pairs, scratch: out.scratch)
        stream.run(bytes, to: &out, maxWords: .max)
    }
    return out.tokens + out.textTokens
}

@Suite struct TokenIDTests {
    /// FNV-1a 64 test vectors (checked against an independent implementation).
    @Test(arguments: [
        ("", 0xcbf2_9ce4_8422_2325 as UInt64),
        ("a", 0xaf63_dc4c_8601_ec8c),
        ("foobar", 0x8594_4171_f739_67e8),
    ])
    func fnv1a(token: String, expected: UInt64) {
        #expect(TokenID(hashing: token).rawValue == expected)
    }

    @Test func descriptionIsSixteenHexDigits() {
        #expect(TokenID(rawValue: 0xab).description == "00000000000000ab")
        #expect(TokenID(hashing: "a").description == "af63dc4c8601ec8c")
    }

    @Test func identityIsVersioned() {
        #expect(Tokenizer.identity == "pitch-tokens-3")
    }
}

@Suite struct MessageTokenTests {
    static let coldPitch = """
        From: Greg Hollins <Greg@Mail.Apex-Hire.co.uk>
        To: maya@example.org
        Subject: Quick question
        Message-ID: <abc@mail.apex-hire.co.uk>
        X-Mailer: Microsoft Outlook 16.0.1234

        Hi , would you be open to a quick call?

        """

    @Test(arguments: [false, true])
    func plainMessage(crlf: Bool) {
        #expect(tokens(Self.coldPitch, crlf: crlf) == [
            "hdr:from", "hdr:to", "hdr:subject", "hdr:message-id", "hdr:x-mailer",
            "from:greg@mail.apex-hire.co.uk", "fromdom:apex-hire.co.uk", "fromhost:mail.apex-hire.co.uk",
            "fromname:greg", "fromname:hollins", "rcpt:1", "mailer:microsoft outlook", "msgid:apex-hire.co.uk",
            "rcvds:0",
            "subj:quick", "subj:question", "subj:quick question",
            "ct:text/plain",
            // "Hi ," is a merge that lost the name.
            "sig:greeting-blank",
            "links:0", "imgs:0", "urls:0",
            // The text's words and pairs come last (the classifier weighs them apart). "Hi", "be", "to" and "a" are
            // shorter than 3 bytes: no tokens, but "," still pairs with "would".
            "would", ", would", "you", "would you", "open", "you open", "quick", "open quick", "call", "quick call",
        ])
    }

    /// `textStart` divides the prefixed tokens from the text's words and pairs, and the engine's additions go
    /// before it with texts and ids kept aligned.
    @Test func textStartAndAppend() {
        var message = Tokenizer().tokenize(Message(bytes: Array(Self.coldPitch.utf8)))
        #expect(message.texts.count == message.ids.count)
        #expect(message.texts[..<message.textStart].allSatisfy { $0.contains(":") && !$0.hasPrefix(",") })
        #expect(Array(message.texts[message.textStart...]) == [
            "would", ", would", "you", "would you", "open", "you open", "quick", "open quick", "call", "quick call",
        ])
        let before = message.textStart
        message.append("rel:first-contact")
        message.append("rel:first-contact")  // once only
        message.append("quick")  // already there, as a word of the text
        #expect(message.textStart == before + 1)
        #expect(message.texts[before] == "rel:first-contact")
        #expect(message.ids.count == message.texts.count)
        #expect(zip(message.texts, message.ids).allSatisfy { TokenID(hashing: $0) == $1 })

        var idsOnly = Tokenizer().tokenize(Message(bytes: Array(Self.coldPitch.utf8)), keepingTexts: false)
        #expect(idsOnly.texts.isEmpty)
        #expect(idsOnly.ids == message.ids.filter { $0 != TokenID(hashing: "rel:first-contact") })
        idsOnly.append("rel:first-contact")
        #expect(idsOnly.texts.isEmpty)
        #expect(idsOnly.ids == message.ids)
        #expect(idsOnly.textStart == message.textStart)
    }

    /// Local tokens (how this mailbox's mail is written and sent) are marked as the tokenizer makes them, with or
    /// without texts: the starter model carries none of them. The engine's relationship token is not local.
    @Test func localTokensAreMarked() throws {
        let text = Self.coldPitch.replacingOccurrences(of: "X-Mailer", with: "List-Id: <team.example>\nX-Mailer")
        var message = Tokenizer().tokenize(Message(bytes: Array(text.utf8)))
        message.append("rel:first-contact")
        #expect(message.isLocal.count == message.ids.count)
        let local = zip(message.texts, message.isLocal).filter(\.1).map(\.0)
        #expect(local == [
            // The list's name is local; that there is a list is not.
            "hdr:from", "hdr:to", "hdr:subject", "hdr:message-id", "head:team.example", "hdr:x-mailer",
            "from:greg@mail.apex-hire.co.uk", "fromdom:apex-hire.co.uk", "fromhost:mail.apex-hire.co.uk",
            "fromname:greg", "fromname:hollins", "rcpt:1", "mailer:microsoft outlook", "msgid:apex-hire.co.uk",
            "rcvds:0", "ct:text/plain", "links:0", "imgs:0", "urls:0",
        ])
        // Not local: the Subject's words, the signals, the list's field, the relationship and the text.
        #expect(message.texts.contains("hdr:list-id") && message.texts.contains("sig:greeting-blank"))
        var idsOnly = Tokenizer().tokenize(Message(bytes: Array(text.utf8)), keepingTexts: false)
        idsOnly.append("rel:first-contact")
        #expect(idsOnly.isLocal == message.isLocal)
        #expect(MessageTokens(texts: message.texts, ids: message.ids).isLocal == message.isLocal)
    }

    static let bulkAlternative = """
        From: "Sales" <sales@vendor.example>
        Reply-To: leads@crm.example.net
        To: a@x.example, b@x.example
        Cc: c@x.example
        Subject: Re: =?utf-8?q?GR=C3=9CSSE?= aus Koeln
        Date: Tue, 25 Feb 2025 18:40:59 -0500
        Received: from mail.vendor.example (mail.vendor.example [203.0.113.45]) by mx.x.example
         with ESMTPS id ABC123 for <a@x.example>; Tue, 25 Feb 2025 15:41:05 -0800
        List-Unsubscribe: <https://u.vendor.example/x>
        Precedence: Bulk
        User-Agent: Mozilla/5.0 (X11; Linux x86_64) Thunderbird/102.0
        X-Campaign: Spring Promo
        MIME-Version: 1.0
        Content-Type: multipart/alternative; boundary="b"

        --b
        Content-Type: text/plain; charset=utf-8

        See https://www.Vendor.example/offer today.
        --b
        Content-Type: text/html; charset=utf-8
        Content-Transfer-Encoding: quoted-printable

        <p>See <a href=3D"https://track.vendor.example/c/offer">offer</a> today.</p>=
        <img src=3D"https://px.mailer.example.com/o.gif" width=3D"1" height=3D"1">=
        <img src=3D"cid:logo" style=3D"display:none">
        --b--

        """

    @Test(arguments: [false, true])
    func headerLinksAndImages(crlf: Bool) {
        #expect(tokens(Self.bulkAlternative, crlf: crlf) == [
            // One token per field name, in order; fields without a rule of their own add their words.
            "hdr:from", "hdr:reply-to", "hdr:to", "hdr:cc", "hdr:subject", "hdr:date", "hdr:received",
            "hdr:list-unsubscribe", "head:https", "head:u.vendor.example", "hdr:precedence", "hdr:user-agent",
            "hdr:x-campaign", "head:spring", "head:promo", "hdr:mime-version", "hdr:content-type",
            "from:sales@vendor.example", "fromdom:vendor.example", "fromname:sales",
            "replyto:other", "replytodom:example.net",
            "rcpt:3-4", "mailer:mozilla thunderbird", "precedence:bulk", "msgid:none",
            // The queue id and the "for" recipient are skipped; the recipient's domain still names a host.
            "rcvds:1", "rcvd:vendor.example", "rcvdip:203.0.113", "rcvd:x.example", "rcvdwith:esmtps",
            // "Re" is too short, but its colon pairs with the next word.
            "subj:grüsse", "subj:: grüsse", "subj:aus", "subj:grüsse aus", "subj:koeln", "subj:aus koeln",
            "ct:multipart/alternative", "part:text/plain", "charset:utf-8", "part:text/html",
            "cte:quoted-printable",
            // The HTML part's link and image addresses.
            "href:https", "href:track.vendor.example", "href:offer",
            "href:px.mailer.example.com", "href:o.gif", "img:tiny", "imgdom:example.com",
            "href:cid", "href:logo", "img:hidden",
            // A reply subject with nothing to reply to.
            "sig:reply-unthreaded",
            "links:1", "imgs:2", "urls:2",
            "url:vendor.example", "urlhost:www.vendor.example", "urlhost:track.vendor.example",
            // The words and pairs of both parts, last: the plain part's, then the HTML part's new ones (those seen
            // already count once).
            "see", "https", "see https", "www.vendor.example", ": www.vendor.example", "offer",
            "www.vendor.example offer", "today", "offer today",
            "see offer",
        ])
    }

    @Test func replyToComparedWithFrom() {
        let same = tokens("From: a@x.example\nReply-To: A@X.example\n\nbody\n")
        let sameDomain = tokens("From: a@mail.x.example\nReply-To: b@x.example\n\nbody\n")
        #expect(same.contains("replyto:same"))
        #expect(sameDomain.contains("replyto:samedomain"))
        #expect(!tokens("From: a@x.example\n\nbody\n").contains { $0.hasPrefix("replyto:") })
    }

    /// Our own fields, tagged or forged, are not evidence: the same tokens with them as without.
    @Test func ourOwnFieldsAreNotRead() {
        let plain = "From: a@x.example\nX-Campaign: spring offer\nSubject: hello\n\nbody text\n"
        let tagged = "X-Pitch-Status: ham, score=0.0001, version=x\nX-Pitch-Reasons: \"quick call\" 0.981\n"
            + "x-pitch-whatever: pitch\n" + plain
        #expect(tokens(tagged) == tokens(plain))
        #expect(tokens(plain).contains("head:spring"))
    }

    /// Renamed in `[header]`, our fields are not read under their new names either; under the standard names
    /// the same field is an ordinary one.
    @Test func ourRenamedFieldsAreNotRead() throws {
        let renamed = Tokenizer(ownFields: try OwnFields(status: "X-Cold-Pitch", reasons: "X-Cold-Why"))
        let plain = "From: a@x.example\nSubject: hello\n\nbody text\n"
        let tagged = "X-Cold-Pitch: pitch, score=0.9900, version=x\nx-cold-why: sig:greeting-blank 0.974\n" + plain
        func texts(_ tokenizer: Tokenizer, _ text: String) -> [String] {
            tokenizer.tokenize(Message(bytes: Array(text.utf8)), keepingTexts: true).texts
        }
        #expect(texts(renamed, tagged) == texts(renamed, plain))
        #expect(texts(Tokenizer(), tagged).contains("hdr:x-cold-pitch"))
    }

    @Test(arguments: [
        ("X-Pitch-Status", nil),
        ("X-Cold-Pitch", nil),
        ("x-cold-pitch-2", nil),
        ("Subject", "must start with \"X-\""),
        ("Received", "must start with \"X-\""),
        ("X-", "must start with \"X-\""),
        ("X-Pitch-", "must start with \"X-\""),
        ("X-Pitch Status", "may hold only ASCII letters, digits and hyphens"),
        ("X-Pitch:Status", "may hold only ASCII letters, digits and hyphens"),
        ("X-Pitch-Statüs", "may hold only ASCII letters, digits and hyphens"),
        ("", "must start with \"X-\""),
        ("X-" + String(repeating: "a", count: 63), "is longer than 64 characters"),
        // Fields other software acts on: removing incoming ones would break loop detection, delivery rules,
        // mailbox state or another filter's verdict.
        ("X-Loop", "is a field other mail software writes or reads"),
        ("x-original-to", "is a field other mail software writes or reads"),
        ("X-Mailer", "is a field other mail software writes or reads"),
        ("X-Spam-Status", "is a field other mail software writes or reads"),
        ("X-Spam", "is a field other mail software writes or reads"),
        ("X-Rspamd-Score", "is a field other mail software writes or reads"),
    ] as [(String, String?)])
    func ourFieldNamesAreXFieldsOfPlainCharacters(name: String, problem: String?) {
        let found = OwnFields.problem(with: name)
        if let problem {
            #expect(found?.hasPrefix(problem) == true, "\(name): \(found ?? "accepted")")
        } else {
            #expect(found == nil, "\(name): \(found ?? "")")
        }
    }

    /// `standard` skips the checks at every start, so they run here.
    /// A Subject tag of ours is what we thought of the message, not what its sender wrote: the tagged copy gives
    /// the same tokens as the original, signals that read the Subject's start included ("Re:" without a thread),
    /// with a record or without one (a filter puts no second tag in front of one already there, and records none).
    @Test func ourSubjectTagsAreNotRead() throws {
        let tagging = Tokenizer(ownFields: try OwnFields.standard.withSubjectTag("[PITCH]", alsoOurs: ["*COLD*"]))
        func texts(_ tokenizer: Tokenizer, _ text: String) -> [String] {
            tokenizer.tokenize(Message(bytes: Array(text.utf8)), keepingTexts: true).texts
        }
        let plain = "From: a@x.example\nSubject: Re: {{first_name}}, quick question\n\nHi ,\nbody text\n"
        for tag in ["[PITCH]", "*COLD*", "[PITCH] *COLD*"] {
            let untracked = plain.replacingOccurrences(of: "Subject: ", with: "Subject: \(tag) ")
            let tagged = "X-Pitch-Status: pitch, score=0.9990, version=x, tagged=\(tag)\n" + untracked
            #expect(texts(tagging, tagged) == texts(tagging, plain))
            #expect(texts(tagging, untracked) == texts(tagging, plain))
            // A configuration that tags with neither reads the tag as the sender's text.
            #expect(texts(Tokenizer(), tagged) != texts(Tokenizer(), plain))
        }
        #expect(texts(tagging, plain).contains("sig:reply-unthreaded"))
        #expect(texts(tagging, plain).contains("sig:placeholder"))
        #expect(texts(Tokenizer(), "Subject: [PITCH] hi\n\n").contains("subj:pitch"))
        #expect(!texts(tagging, "Subject: [PITCH] hi\n\n").contains("subj:pitch"))
    }

    /// Found by an audit: a sender's forged record took their own words off the Subject the tokenizer reads (and
    /// the filter's output), while a reader of the untouched message still saw them. A release believes a record
    /// only when it calls the message a pitch and names a tag this installation writes, and the tokenizer reads
    /// no record at all.
    @Test(arguments: [
        ("X-Pitch-Status: pitch, score=0.9990, version=x, tagged=[PITCH]\nSubject: [PITCH] hi\n\n", "[PITCH]"),
        ("X-Pitch-Status:pitch, score=0.9990, version=x, tagged=*COLD*\nSubject: *COLD* hi\n\n", "*COLD*"),
        ("X-Pitch-Status: ham, score=0.0100, version=x, tagged=[PITCH]\nSubject: [PITCH] hi\n\n", nil),
        ("X-Pitch-Status: unsure, tagged=[PITCH]\nSubject: [PITCH] hi\n\n", nil),
        ("X-Pitch-Status: pitch, score=0.9990, version=x, tagged=Re:\nSubject: Re: lunch\n\n", nil),
        ("X-Pitch-Status: pitch, tagged={{first_name}}, quick call?\nSubject: {{first_name}}, quick call?\n\n", nil),
        ("X-Pitch-Status: x, tagged=Re:\nSubject: Re: lunch\n\n", nil),
    ] as [(String, String?)])
    func onlyARecordOfOurOwnTagIsTakenBack(message: String, tag: String?) throws {
        let fields = try OwnFields.standard.withSubjectTag("[PITCH]", alsoOurs: ["*COLD*"])
        let header = Message(bytes: Array(message.utf8)).header
        #expect(fields.subjectTagToTakeBack(in: header) == tag)
        // Without a tag configured, nothing is taken back.
        #expect(OwnFields.standard.subjectTagToTakeBack(in: header) == nil)
        let tokens = Tokenizer(ownFields: fields).tokenize(Message(bytes: Array(message.utf8)), keepingTexts: true)
        #expect(tokens.texts.contains("subj:lunch") || !message.contains("lunch"))
        #expect(tokens.texts.contains("subj:quick") || !message.contains("quick"))
    }

    /// The record a release believes is read from the status field under any of its names, and only there.
    @Test(arguments: [
        ("X-Pitch-Status: pitch, score=0.9990, version=x, tagged=[PITCH]\nSubject: [PITCH] hi\n\n", "[PITCH]"),
        ("X-Cold: pitch, score=0.9990, version=x, tagged=*** COLD ***\nSubject: x\n\n", "*** COLD ***"),
        ("X-Old: pitch, score=0.9990, version=x, tagged=[OLD]\nSubject: x\n\n", "[OLD]"),
        ("X-Pitch-Status: pitch, score=0.9990, version=x\nSubject: [PITCH] hi\n\n", nil),
        ("X-Pitch-Reasons: a 0.9, tagged=[PITCH]\nSubject: [PITCH] hi\n\n", nil),
        ("X-Other: pitch, tagged=[PITCH]\nSubject: [PITCH] hi\n\n", nil),
        ("X-Pitch-Status: pitch, tagged=\nSubject: hi\n\n", nil),
    ] as [(String, String?)])
    func theStatusFieldRecordsTheTag(message: String, tag: String?) throws {
        let fields = try OwnFields(status: "X-Cold", reasons: "X-Cold-Why", former: ["X-Old"])
            .withSubjectTag("[PITCH]", alsoOurs: ["*** COLD ***", "[OLD]"])
        #expect(fields.subjectTagToTakeBack(in: Message(bytes: Array(message.utf8)).header) == tag)
    }

    @Test(arguments: [
        ("[PITCH]", nil),
        ("*** COLD PITCH ***", nil),
        ("", nil),
        (" [PITCH]", "may not start or end with a blank"),
        ("[PITCH] ", "may not start or end with a blank"),
        ("[PITCH]\n", "may hold only printable ASCII characters"),
        ("[PITCH]\t", "may hold only printable ASCII characters"),
        ("[Kaltakquise ✉]", "may hold only printable ASCII characters"),
        (String(repeating: "x", count: 65), "is longer than 64 characters"),
    ] as [(String, String?)])
    func subjectTagsAreChecked(tag: String, problem: String?) {
        let found = OwnFields.problem(withSubjectTag: tag)
        if let problem {
            #expect(found?.hasPrefix(problem) == true, "\(found ?? "nil")")
        } else {
            #expect(found == nil)
        }
    }

    @Test(arguments: [
        ("[PITCH] Quick question", " Quick question"),
        ("  [PITCH]\tQuick question", "\tQuick question"),
        ("[PITCH]", ""),
        ("[PITCH] *COLD* [PITCH] Quick", " Quick"),
        ("*COLD*  Re: [PITCH] Quick", "  Re: [PITCH] Quick"),
        ("[PITCH]Quick", "[PITCH]Quick"),
        ("Quick [PITCH] question", "Quick [PITCH] question"),
    ])
    func theTokenizerReadsTheSubjectWithoutOurTagsAtItsStart(subject: String, read: String) {
        #expect(OwnFields.untagged(subject: subject, leavingOut: ["[PITCH]", "*COLD*"]) == read)
        // Every tag tried, as the identity tries them: a shorter one that the text goes on from is not the tag.
        #expect(OwnFields.untagged(subject: "[P]! " + subject, leavingOut: ["[P]", "[P]!", "[PITCH]", "*COLD*"])
            == (read == subject ? " " + subject : read))
        #expect(OwnFields.untagged(subject: subject, leavingOut: []) == subject)
    }

    @Test func standardNamesPassTheirOwnChecks() {
        #expect(OwnFields.problem(with: OwnFields.standard.status) == nil)
        #expect(OwnFields.problem(with: OwnFields.standard.reasons) == nil)
        #expect(OwnFields.standard.status.lowercased() != OwnFields.standard.reasons.lowercased())
    }

    @Test func theTwoFieldsNeedTwoNames() {
        #expect(throws: OwnFields.InvalidName(name: "x-cold", problem: "is also the status field's name")) {
            try OwnFields(status: "X-Cold", reasons: "x-cold")
        }
        // Swapped, scripts written for the defaults would find a verdict where they look for reasons.
        #expect(throws: OwnFields.InvalidName(name: "X-Pitch-Reasons",
                                              problem: "is an X-Pitch- name other than X-Pitch-Status")) {
            try OwnFields(status: "X-Pitch-Reasons", reasons: "X-Pitch-Status")
        }
    }

    /// Names from before a rename stay ours: mail tagged under them reads as it did untagged.
    @Test func formerNamesAreNotReadEither() throws {
        let renamed = Tokenizer(ownFields: try OwnFields(status: "X-New-Pitch", reasons: "X-New-Why",
                                                         former: ["X-Old-Pitch"]))
        let plain = "From: a@x.example\nSubject: hello\n\nbody text\n"
        let tagged = "X-Old-Pitch: pitch, score=0.9900, version=x\n" + plain
        func texts(_ text: String) -> [String] {
            renamed.tokenize(Message(bytes: Array(text.utf8)), keepingTexts: true).texts
        }
        #expect(texts(tagged) == texts(plain))
        // Read by a tokenizer that does not know the name, the field would count.
        #expect(Tokenizer().tokenize(Message(bytes: Array(tagged.utf8)), keepingTexts: true).texts
            .contains("hdr:x-old-pitch"))
        #expect(renamed.ownFields.contains(lowercasedName: "x-old-pitch"))
        #expect(!renamed.ownFields.contains(lowercasedName: "x-old"))
    }

    @Test func missingHeaderFields() {
        #expect(tokens("\nbody text\n") == [
            "from:none", "rcpt:0", "to:none", "msgid:none", "rcvds:0", "subj:none", "ct:text/plain",
            "links:0", "imgs:0", "urls:0", "body", "text", "body text",
        ])
    }

    @Test(arguments: [
        ("<x@[10.0.0.1]>", "msgid:badhost"),
        ("no-at-sign", "msgid:noat"),
        ("<1234.5678@Mail.Example.CO.UK>", "msgid:example.co.uk"),
    ])
    func messageIDDomain(value: String, expected: String) {
        #expect(tokens("Message-ID: \(value)\n\nx\n").contains(expected))
    }

    @Test func receivedNetworksAndHops() {
        let received = """
            Received: from unknown (HELO relay.bulk.example) (198.51.100.7)
              by mx.example.org with SMTP; 1 Jan 2025 00:00:00 -0000
            Received: from [192.0.2.99] by relay.bulk.example id 1; 1 Jan 2025 00:00:00 -0000
            Subject: s

            x

            """
        let result = tokens(received)
        #expect(result.filter { $0.hasPrefix("rcvd") } == [
            "rcvds:2", "rcvd:bulk.example", "rcvdip:198.51.100", "rcvd:example.org", "rcvdwith:smtp",
            "rcvdip:192.0.2",
        ])
    }

    @Test func htmlOnlyLinksAndCounts() {
        let html = """
            Content-Type: text/html

            <p>Book <a href="HTTPS://Cal.Example.com/greg">a slot</a> or <a href="mailto:greg@x.example">write</a>
            or <a href="#top">read on</a>.</p><img src="http://198.51.100.7/p.gif" width="2px" height="2">

            """
        let result = tokens(html)
        #expect(result.filter { $0.hasPrefix("link") || $0.hasPrefix("url") || $0.hasPrefix("im") } == [
            "link:mailto", "link:relative", "img:tiny", "imgdom:198.51.100.7",
            "links:3-4", "imgs:1", "urls:1", "url:example.com", "urlhost:cal.example.com",
        ])
    }
}

@Suite struct WordTests {
    @Test(arguments: [
        // Unicode-aware case folding, ASCII fast path.
        ("GRÜSSE aus KÖLN", ["grüsse", "aus", "köln"]),
        ("ÇA VA ΣΟΦΙΑ", ["ça", "σοφια"]),
        // Connectors stay inside words only between word characters; U+2019 reads as an apostrophe.
        ("Don’t e-mail www.Example.COM. Done-", ["don't", "e-mail", "www.example.com", "done"]),
        ("snake_case it's", ["snake_case", "it's"]),
        // Prices stay; bare numbers, dates and times go.
        ("Only $25 until 2025-03-01, 10:30", ["only", "$25", "until"]),
        // Length bounds: 3 to 30 bytes (after lower-casing); "é" is two bytes.
        ("a to the é ée", ["the", "ée"]),
        (String(repeating: "x", count: 30) + " " + String(repeating: "y", count: 31),
         [String(repeating: "x", count: 30)]),
        // Each token once.
        ("Spam spam SPAM", ["spam"]),
        // Han and kana are words of their own.
        ("東京です", ["東", "京", "で", "す"]),
        // Emoji and symbols separate words.
        ("fast🚀growth ★★★ results", ["fast", "growth", "results"]),
    ])
    func words(text: String, expected: [String]) {
        #expect(wordTokens(text) == expected)
    }

    @Test func pairsKeepPunctuationAndStopAtParagraphs() {
        #expect(wordTokens("Hi , quick question!\nStill there?\n\nThanks", pairs: true) == [
            "quick", ", quick", "question", "quick question", "still", "! still", "there", "still there", "thanks",
        ])
    }

    @Test func pairsOfIdeographs() {
        #expect(wordTokens("東京", pairs: true) == ["東", "京", "東 京"])
    }

    @Test func prefixApplies() {
        #expect(wordTokens("Quick question", pairs: true, prefix: "subj:") == [
            "subj:quick", "subj:question", "subj:quick question",
        ])
    }

    @Test(arguments: [
        ("Microsoft Outlook Express 6.00.2600.0000", "microsoft outlook express"),
        ("Mozilla/5.0 (X11; U; Linux i686; en-US; rv:1.0.1) Gecko/20020823 Netscape/7.0", "mozilla gecko netscape"),
        ("Apple Mail (2.1084)", "apple mail"),
        ("KMail/1.4.1", "kmail"),
        ("QUALCOMM Windows Eudora Version 5.1 (((nested)) still)", "qualcomm windows eudora version"),
        ("1.0", "none"),
        ("", "none"),
    ])
    func mailerNormalisation(value: String, expected: String) {
        #expect(Tokenizer.normalizedMailer(value) == expected)
    }
}

@Suite struct DomainTests {
    @Test(arguments: [
        ("mail.example.co.uk", "example.co.uk"),
        ("example.co.uk", "example.co.uk"),
        ("a.b.example.com", "example.com"),
        ("example.com", "example.com"),
        ("x.y.example.de", "example.de"),
        ("192.0.2.10", "192.0.2.10"),
    ])
    func registrable(host: String, expected: String) {
        #expect(Array(Domains.registrable(Array(host.utf8))) == Array(expected.utf8))
    }

    @Test(arguments: [
        ("Example.COM.", "example.com" as String?),
        ("mx_1.example.org", "mx_1.example.org"),
        ("10.1.2.3", "10.1.2.3"),
        ("fetchmail-5.9.0", nil),
        ("localhost", nil),
        ("a..b", nil),
        (".example.com", nil),
        ("exa mple.com", nil),
        ("", nil),
    ])
    func normalizedHost(input: String, expected: String?) {
        #expect(Domains.normalizedHost(Array(input.utf8)).map { String(decoding: $0, as: UTF8.self) } == expected)
    }

    @Test(arguments: [
        ("https://user@Host.Example:8080/x?y#z", "host.example" as String?),
        ("HTTP://www.example.com", "www.example.com"),
        ("ftp://files.example.net/a", "files.example.net"),
        ("http:\\\\evil.example\\path", "evil.example"),
        ("mailto:someone@example.com", nil),
        ("javascript:void(0)", nil),
        ("/relative/path", nil),
    ])
    func urlHost(url: String, expected: String?) {
        #expect(Domains.host(ofURL: url).map { String(decoding: $0, as: UTF8.self) } == expected)
    }

    @Test(arguments: [(0, "0"), (1, "1"), (2, "2"), (3, "3-4"), (5, "5-8"), (16, "9-16"), (64, "33-64"), (65, "65+")])
    func buckets(count: Int, expected: String) {
        #expect(Bucket.label(count) == expected)
    }
}

@Suite struct BoundsTests {
    @Test func hugeLineGivesNoWordAndStaysCheap() {
        let message = Message(bytes: AdversarialMessages.hugeLine(bytes: 5_000_000))
        #expect(Tokenizer().tokens(of: message) == [
            "hdr:subject", "from:none", "rcpt:0", "to:none", "msgid:none", "rcvds:0",
            "subj:one", "subj:line", "subj:one line", "ct:text/plain", "defect:textTruncated",
            "links:0", "imgs:0", "urls:0",
        ])
    }

    @Test func distinctTokensAreCappedWithTheHeaderKept() {
        var body = "Subject: many\n\n"
        for i in 0..<20_000 { body += "word\(i) " }
        let result = tokens(body)
        #expect(result.count == Tokenizer.Bounds.standard.maxTokens)
        #expect(Array(result.prefix(3)) == ["hdr:subject", "from:none", "rcpt:0"])
        #expect(Set(result).count == result.count)
    }

    /// Found by an audit: a pitch behind 100 near-empty text parts, or behind 20,000 filler words in its own part,
    /// was not read at all, where the README promised 1,000 parts and 1 MiB of text per part.
    @Test func aPitchBehindFillerIsStillRead() {
        let pitch = "Are you looking to enhance your recruiting system?\n"
        var parts = "Subject: s\nMIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=B\n\n"
        for _ in 0..<150 { parts += "--B\nContent-Type: text/plain\n\n.\n" }
        parts += "--B\nContent-Type: text/plain\n\n" + pitch + "--B--\n"
        #expect(tokens(parts).contains("recruiting system"))
        let filler = "Subject: s\n\n" + String(repeating: "abc ", count: 25_000) + "\n" + pitch
        #expect(tokens(filler).contains("recruiting system"))
        // The bound is on words in all: past it, nothing more is read.
        var bounds = Tokenizer.Bounds.standard
        bounds.maxWords = 24_000
        #expect(!tokens(filler, bounds: bounds).contains("recruiting system"))
    }

    @Test func smallBoundIsExact() {
        var bounds = Tokenizer.Bounds.standard
        bounds.maxTokens = 4
        #expect(tokens(MessageTokenTests.coldPitch, bounds: bounds) == [
            "hdr:from", "hdr:to", "hdr:subject", "hdr:message-id",
        ])
    }

    /// Found by an audit: 100 fields of 50 junk words each filled the token bound before the Subject and the body
    /// were read, and a pitch came out unsure.
    @Test func junkFieldsLeaveTheSubjectAndTheBodyTheirRoom() {
        var text = ""
        for field in 0..<100 {
            text += "X-T\(field): " + (0..<50).map { "j\(field)x\($0)q" }.joined(separator: " ") + "\n"
        }
        text += "Subject: quick question\n\nAre you looking to enhance your recruiting system?\n"
        let result = tokens(text)
        // The fields' names still count (one each, 200 fields at most); their words stop at the bound.
        #expect(result.filter { $0.hasPrefix("head:") }.count + 20 == Tokenizer.maxFieldTokens)  // 20 names, 980 words
        #expect(result.contains("subj:quick question"))
        #expect(result.contains("recruiting system"))
    }

    /// A megabyte of markup in front of the text (a comment, a style sheet) does not push the text out.
    @Test func markupInFrontOfTheTextDoesNotHideIt() {
        let html = "Content-Type: text/html\n\n<html><!--" + String(repeating: "x", count: 1_100_000)
            + "--><p>Are you looking to enhance your recruiting system?</p></html>\n"
        #expect(tokens(html).contains("recruiting system"))
    }

    @Test func manyHeaderFieldsAreBounded() {
        let result = Tokenizer().tokens(of: Message(bytes: AdversarialMessages.manyFields(5_000)))
        #expect(result.filter { $0.hasPrefix("hdr:") }.count == 200)
        #expect(result.contains("head:value"))
    }

    @Test func manyLinksAreBounded() {
        var html = "Content-Type: text/html\n\n"
        for i in 0..<5_000 { html += "<a href=\"http://h\(i).example/\">x</a>" }
        let result = tokens(html)
        #expect(result.contains("links:65+"))
        #expect(result.filter { $0.hasPrefix("url:") }.count == Tokenizer.Bounds.standard.maxReferences)
    }

    @Test func everyTokenIsDistinctAndShort() {
        let result = tokens(MessageTokenTests.bulkAlternative)
        #expect(Set(result).count == result.count)
        #expect(result.allSatisfy { !$0.isEmpty && $0.utf8.count <= TokenCollector.maxTokenBytes })
    }
}
