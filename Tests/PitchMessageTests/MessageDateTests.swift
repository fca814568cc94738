import Testing
@testable import PitchMessage

@Suite("Date fields")
struct MessageDateTests {
    /// Expected values from Python's email.utils.parsedate_tz + mktime_tz, except where RFC 5322 and Python differ
    /// (noted).
    static let cases: [(String, Int64?)] = [
        ("Thu, 22 Aug 2002 18:26:25 +0100", 1_030_037_185),
        ("22 Aug 2002 18:26:25 -0700", 1_030_065_985),
        ("Mon, 2 Mar 2026 09:05 +0000", 1_772_442_300),  // no seconds
        ("Tue, 29 Feb 2000 23:59:60 +0000", 951_868_800),  // a leap second
        ("Fri, 13 Sep 02 10:00:00 EDT", 1_031_925_600),  // two-digit year, zone name
        ("Thu, 22 Aug 102 18:26:25 +0100", 1_030_037_185),  // three-digit year: 1900 + 102
        ("Wed, 31 Dec 1969 23:59:59 +0000", -1),
        ("Thu, 22 Aug 2002 18:26:25 +0100 (BST)", 1_030_037_185),  // a comment
        ("thu,22 aug 2002 18:26:25 +0100", 1_030_037_185),  // case and missing space
        ("Thu, 22 Aug 2002 18:26:25", 1_030_040_785),  // no zone: UTC
        ("Thu, 22 Aug 2002 18:26:25 A", 1_030_040_785),  // a military zone counts as UTC (§4.3)
        ("Sat, 1 Jan 1 00:00:00 GMT", nil),  // one-digit year (Python guesses 2001)
        ("Thu, 32 Aug 2002 18:26:25 +0100", nil),
        ("Thu, 22 Foo 2002 18:26:25 +0100", nil),
        ("Thu, 22 Aug 2002 24:00:00 +0100", nil),
        ("Thu, 22 Aug 2002 18:26:25 +01", nil),
        ("Thu, 22 Aug 2002 18:xx:25 +0100", nil),
        ("Thu, 22 Aug -99 18:26:25 +0100", nil),  // a sign is no digit
        ("Thu, 22 Aug 2002 18:26:25 +-100", nil),
        ("Thu, 22 Aug 2002 18:26:25 +0099", nil),  // 99 minutes
        ("Thu, 22 Aug 2002 18:26:+5 +0100", nil),
        ("Thu, 22 Aug 99999999999999999999 18:26:25 +0100", nil),
        ("yesterday", nil),
        ("", nil),
    ]

    @Test(arguments: cases)
    func parsesRFC5322Dates(_ value: String, _ expected: Int64?) {
        #expect(MessageDate.parse(Array(value.utf8)) == expected)
    }

    @Test func aMessageDateComesFromItsFirstDateField() {
        let message = Message(bytes: Array("Date: Thu, 22 Aug 2002\r\n 18:26:25 +0100\r\nDate: bogus\r\n\r\nbody".utf8))
        #expect(message.date == 1_030_037_185)
        #expect(Message(bytes: Array("Subject: none\n\nbody".utf8)).date == nil)
    }
}
