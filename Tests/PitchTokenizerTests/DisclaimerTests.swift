import PitchMessage
@testable import PitchTokenizer
import Testing

/// A company's legal footer counts once, as `footer:disclaimer`, and its words are left out (`Disclaimers`).
@Suite struct DisclaimerTests {
    private static let footer = "This e-mail and any attachments are confidential and may be legally privileged.\n"
        + "If you are not the intended recipient, please notify the sender and delete it."

    /// What `Disclaimers.ranges` finds in each text, as the texts of those ranges.
    static let cases: [(String, [String])] = [
        ("Hi Ana,\n\nThe quote is attached.\n\nBest, Joe\n\n" + footer + "\n", [footer + "\n"]),
        // Quoted in a reply, and a paragraph ended by a quoted blank line.
        ("Thanks!\n\n> Old text\n>\n> " + footer.replacingOccurrences(of: "\n", with: "\n> ") + "\n",
         ["> " + footer.replacingOccurrences(of: "\n", with: "\n> ") + "\n"]),
        // German and Dutch footers.
        ("Grüße\n\nDiese E-Mail ist vertraulich. Wenn Sie nicht der richtige Empfänger sind, löschen Sie sie bitte.",
         ["Diese E-Mail ist vertraulich. Wenn Sie nicht der richtige Empfänger sind, löschen Sie sie bitte."]),
        ("Dit bericht is vertrouwelijk en alleen bestemd voor de geadresseerde. Verwijder het als u het abusievelijk "
            + "ontving.", ["Dit bericht is vertrouwelijk en alleen bestemd voor de geadresseerde. Verwijder het als u "
            + "het abusievelijk ontving."]),
        // One or two markers are a letter's words: "keep this confidential", "sent in error, please delete".
        ("Please keep this confidential until Friday.\n\nThanks", []),
        ("Sorry, I sent the last one in error - please delete it.", []),
        // A paragraph longer than any footer is a letter discussing these things.
        (String(repeating: "word ", count: 600) + footer, []),
        ("", []),
        // Only paragraphs that begin within the first `maxScannedBytes` are looked at.
        (String(repeating: "a\n\n", count: Disclaimers.maxScannedBytes / 3) + "b\n\n" + footer, []),
        (String(repeating: "a\n\n", count: Disclaimers.maxScannedBytes / 3 - 100) + footer, [footer]),
    ]

    @Test(arguments: cases)
    func footersAreParagraphsWithThreeMarkers(text: String, expected: [String]) {
        var text = text
        let found = text.withUTF8 { bytes in
            Disclaimers.ranges(in: bytes).map { String(decoding: bytes[$0], as: UTF8.self) }
        }
        #expect(found == expected)
    }

    @Test func theFootersWordsGiveWayToOneLocalToken() {
        let message = "From: joe@vendor.example\nTo: ana@shop.example\nSubject: Quote\n\nHi Ana, the quote is "
            + "attached.\n\n" + Self.footer + "\n\nJoe\n"
        let tokens = Set(Tokenizer().tokens(of: Message(bytes: Array(message.utf8))))
        #expect(tokens.contains("footer:disclaimer"))
        #expect(tokens.isSuperset(of: ["quote", "attached", "joe"]))
        #expect(tokens.isDisjoint(with: ["confidential", "privileged", "intended", "recipient", "notify", "delete"]))
        #expect(LocalTokens.contains("footer:disclaimer"))
        let plain = "From: joe@vendor.example\nTo: ana@shop.example\nSubject: Quote\n\nHi Ana, keep this "
            + "confidential.\n"
        let plainTokens = Set(Tokenizer().tokens(of: Message(bytes: Array(plain.utf8))))
        #expect(!plainTokens.contains("footer:disclaimer"))
        #expect(plainTokens.contains("confidential"))
    }

    /// The template fingerprint is taken without footers: colleagues' short notes under one company footer are
    /// no form letter, and a form letter is the same letter under any sender's footer.
    @Test func theFingerprintLeavesFootersOut() {
        func template(_ body: String) -> TemplateFingerprint? {
            let message = "From: joe@vendor.example\nTo: ana@shop.example\nSubject: Note\n\n" + body
            return Tokenizer().tokenize(Message(bytes: Array(message.utf8)), keepingTexts: false).template
        }
        let longFooter = Self.footer + " Any review, retransmission, dissemination or other use of this information "
            + "by persons other than the intended recipient is prohibited by law and may be unlawful."
        #expect(template("Ok, see below. I will call you after lunch.\n\n" + longFooter + "\n") == nil)
        let letter = "Hi Ana,\n\nTeams like yours cut their month-end close from ten days to four with our "
            + "reconciliation platform, which matches bank lines to invoices automatically and flags only the "
            + "exceptions your people need to look at. Worth a short call next week to see if it fits?\n\nJoe\n\n"
        let other = "Diese E-Mail ist vertraulich. Wenn Sie nicht der richtige Empfänger sind, löschen Sie sie bitte."
        #expect(template(letter + Self.footer + "\n") != nil)
        #expect(template(letter + Self.footer + "\n") == template(letter + other + "\n"))
    }
}
