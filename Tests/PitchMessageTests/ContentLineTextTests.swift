import Testing
@testable import PitchMessage

/// `ContentLineText`: an invitation or a card reads as the words it shows, not as its syntax.
@Suite struct ContentLineTextTests {
    static let calendar = ContentLineText.readableProperties(of: "text/calendar") ?? []
    static let card = ContentLineText.readableProperties(of: "text/vcard") ?? []

    static let cases: [(String, Set<String>, String)] = [
        // Keywords, identifiers and dates go; the summary, location and description stay, in order.
        ("BEGIN:VCALENDAR\r\nPRODID:-//Vendor//Events 2.0//EN\r\nBEGIN:VEVENT\r\nUID:8841@events.example\r\n"
            + "DTSTART;TZID=Europe/London:20260312T190000\r\nSUMMARY:CFO roundtable dinner\r\n"
            + "LOCATION:The Ivy\\, Leeds\r\nDESCRIPTION:Join peers\\nfor dinner.\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n",
         calendar, "CFO roundtable dinner\nThe Ivy, Leeds\nJoin peers\nfor dinner."),
        // A folded line (CRLF or LF, then a space or tab) continues the one before.
        ("SUMMARY:Quarterly\r\n  review\r\nDESCRIPTION:one\n\ttwo\n", calendar, "Quarterly review\nonetwo"),
        // Property names in any case, parameters before the value, a colon inside a quoted parameter.
        ("summary;LANGUAGE=en:Kick-off\nDESCRIPTION;ALTREP=\"cid:part1@x.example\":Agenda attached\n",
         calendar, "Kick-off\nAgenda attached"),
        // Escapes: \N and \n break lines, \; \, \\ are the characters; an unescaped ; separates components.
        ("COMMENT:a\\;b\\\\c\\Nd\n", calendar, "a;b\\c\nd"),
        ("ORG:Northgate Energy;Procurement\nFN:Dana Whitcomb\nTEL;TYPE=work:+1 555 0100\n", card,
         "Northgate Energy Procurement\nDana Whitcomb"),
        // The properties of the other format, empty values, lines without a colon and a lone fold are left out.
        ("FN:Someone\nSUMMARY:\nno colon here\n continued\n", calendar, ""),
        ("", calendar, ""),
    ]

    @Test(arguments: cases)
    func readsTheWordsAPersonSees(text: String, properties: Set<String>, expected: String) {
        #expect(ContentLineText.readable(text, properties: properties) == expected)
    }

    @Test func onlyContentLineTypesAreRead() {
        #expect(ContentLineText.readableProperties(of: "text/x-vcard") == Self.card)
        #expect(ContentLineText.readableProperties(of: "text/plain") == nil)
        #expect(ContentLineText.readableProperties(of: "text/html") == nil)
    }

    /// Through the message: an attached invitation, base64 as mailers send it, decodes to its words.
    @Test func anAttachedInvitationDecodesToItsWords() {
        let invitation = "BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nSUMMARY:Demo call\r\nDTSTART:20260301T100000Z\r\n"
            + "END:VEVENT\r\nEND:VCALENDAR\r\n"
        let message = "From: a@x.example\r\nTo: b@y.example\r\nSubject: invite\r\nMIME-Version: 1.0\r\n"
            + "Content-Type: multipart/mixed; boundary=\"b\"\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\n"
            + "See the invitation.\r\n--b\r\nContent-Type: text/calendar; method=REQUEST; charset=UTF-8\r\n"
            + "Content-Transfer-Encoding: base64\r\n\r\n" + base64(invitation) + "\r\n--b--\r\n"
        let parts = Message(bytes: Array(message.utf8)).decodeText()
        #expect(parts.map(\.text) == ["See the invitation.", "Demo call"])
        #expect(parts.map(\.mimeType) == ["text/plain", "text/calendar"])
    }

    private func base64(_ text: String) -> String {
        let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/")
        let bytes = Array(text.utf8)
        var out = ""
        for start in stride(from: 0, to: bytes.count, by: 3) {
            let chunk = bytes[start..<min(start + 3, bytes.count)]
            let value = chunk.enumerated().reduce(0) { $0 | Int($1.element) << (16 - 8 * $1.offset) }
            for index in 0..<4 { out.append(index <= chunk.count ? alphabet[value >> (18 - 6 * index) & 63] : "=") }
        }
        return out
    }
}
