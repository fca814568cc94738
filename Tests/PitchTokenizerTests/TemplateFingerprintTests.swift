@testable import PitchTokenizer
import Testing

private func fingerprint(_ text: String) -> TemplateFingerprint? {
    Array(text.utf8).withUnsafeBufferPointer { TemplateFingerprint.of(text: $0) }
}

@Suite struct TemplateFingerprintTests {
    static func letter(name: String, company: String, seats: Int, link: String) -> String {
        """
        Hi \(name),

        I noticed that \(company) has been growing quickly and wanted to reach out. We help teams like yours
        cut their cloud bill by up to \(seats)% without changing a single line of code, and most of our customers
        see results in the first two weeks of the engagement. Would you be open to a short call next week to see
        whether it could work for you as well? Here is my calendar: \(link)

        Best regards,
        Jordan
        """
    }

    @Test func theSameLetterWithOtherNamesNumbersAndLinksSharesABand() throws {
        let first = try #require(fingerprint(Self.letter(name: "Maya", company: "Brightfield", seats: 30,
                                                         link: "https://cal.example/j1")))
        let second = try #require(fingerprint(Self.letter(name: "Tom", company: "Brightfield", seats: 45,
                                                          link: "https://cal.example/zz9")))
        #expect(Set(first.bands).intersection(second.bands).count == first.bands.count)
    }

    @Test func differentTextsShareNoBand() throws {
        let letter = try #require(fingerprint(Self.letter(name: "Maya", company: "Brightfield", seats: 30,
                                                          link: "https://cal.example/j1")))
        let reply = try #require(fingerprint("""
            Thanks for the notes from Tuesday. The migration plan looks right to me, but I would move the database
            cut-over to the weekend so that the support team is not caught out by the short outage, and we should
            tell the two customers on the old API before we switch anything off. Can you draft that email?
            """))
        #expect(Set(letter.bands).isDisjoint(with: reply.bands))
    }

    @Test func shortNotesHaveNoFingerprint() {
        #expect(fingerprint("Thanks, see you at 3 tomorrow in the usual room.") == nil)
        #expect(fingerprint("") == nil)
    }

    @Test func theGreetingLineIsNotPartOfTheSkeleton() throws {
        let body = String(repeating: "we help teams save money on their cloud bill every month ", count: 3)
        let toMaya = try #require(fingerprint("Hi Maya,\n" + body))
        #expect(toMaya == fingerprint("Hello Tom Lindqvist!\n" + body))
        #expect(TemplateFingerprint.skeleton(Array("Hi Maya,\nsave money".utf8).withUnsafeBufferPointer { $0 })
            .count == 2)
    }
}
