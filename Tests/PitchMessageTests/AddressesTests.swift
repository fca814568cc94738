import Testing
@testable import PitchMessage

/// One address-list value and the mailboxes `AddressList.parse` must find in it.
struct AddressCase: Sendable, CustomStringConvertible {
    var input: [UInt8]
    var expected: [MailAddress]
    var defects: Set<Defect.Kind>

    init(_ input: String, _ expected: [(String, String)], _ defects: Set<Defect.Kind> = []) {
        self.init(bytes: Array(input.utf8), expected, defects)
    }

    init(bytes: [UInt8], _ expected: [(String, String)], _ defects: Set<Defect.Kind> = []) {
        self.input = bytes
        self.expected = expected.map { MailAddress(displayName: $0.0, address: $0.1) }
        self.defects = defects
    }

    var description: String { String(decoding: input.prefix(80), as: UTF8.self) }
}

/// An address and the parts derived from it.
struct AddressPartsCase: Sendable, CustomStringConvertible {
    var address: String
    var localPart: String
    var domain: String

    var description: String { address }
}

@Suite("Address lists")
struct AddressesTests {
    static let mailboxes: [AddressCase] = [
        .init("john@example.com", [("", "john@example.com")]),
        .init("<john@example.com>", [("", "john@example.com")]),
        .init("  <john@example.com>  ", [("", "john@example.com")]),
        .init("John Smith <john@example.com>", [("John Smith", "john@example.com")]),
        .init("John Smith<john@example.com>", [("John Smith", "john@example.com")]),
        .init("\"John Smith\" <john@example.com>", [("John Smith", "john@example.com")]),
        .init("\"Smith, John\" <john@example.com>", [("Smith, John", "john@example.com")]),
        .init("\"John Smith \" <john@example.com>", [("John Smith", "john@example.com")]),
        .init("\"John \\\"Johnny\\\" Smith\" <j@x>", [("John \"Johnny\" Smith", "j@x")]),
        .init("\"Giant; \\\"Big\\\" Box\" <sysservices@example.net>",
              [("Giant; \"Big\" Box", "sysservices@example.net")]),
        .init("Joe Q. Public <john.q.public@example.com>", [("Joe Q. Public", "john.q.public@example.com")]),
        .init("john@example.com (John Smith)", [("John Smith", "john@example.com")]),
        .init("<john@example.com> (John Smith)", [("John Smith", "john@example.com")]),
        .init("John (middle) Smith <js@x>", [("John Smith", "js@x")]),
        .init("john@x ((nested (deep)) comment)", [("(nested (deep)) comment", "john@x")]),
        .init("John Smith", [("John Smith", "")]),
        .init("MAILER-DAEMON <>", [("MAILER-DAEMON", "")]),
        .init("John Smith john@x", [("John Smith", "john@x")]),
        .init("john @ example . com", [("", "john@example.com")]),
        .init("\"john doe\"@example.com", [("", "\"john doe\"@example.com")]),
        .init("[SPAM] John <j@x>", [("[SPAM] John", "j@x")]),
        .init("<@a.test,@b.test:john@c.test>", [("", "john@c.test")]),
        .init("John <@a.test:john@c.test>", [("John", "john@c.test")]),
        .init("<<john@x>>", [("", "john@x")]),
        // RFC 5322 appendix A.5
        .init(
            "Pete(A nice \\) chap) <pete(his account)@silly.test(his host)>",
            [("Pete", "pete@silly.test")]
        ),
    ]

    static let lists: [AddressCase] = [
        .init("a@x, b@y", [("", "a@x"), ("", "b@y")]),
        .init("a@x; b@y", [("", "a@x"), ("", "b@y")]),
        .init("a@x,, ,b@y,", [("", "a@x"), ("", "b@y")]),
        .init(",,,", []),
        .init("", []),
        .init("(comment only)", []),
        .init("<>", []),
        .init("Mary Smith <mary@x.test>, jdoe@example.org, Who? <one@y.test>", [
            ("Mary Smith", "mary@x.test"), ("", "jdoe@example.org"), ("Who?", "one@y.test"),
        ]),
        .init("<boss@nil.test>, \"Giant; \\\"Big\\\" Box\" <sysservices@example.net>", [
            ("", "boss@nil.test"), ("Giant; \"Big\" Box", "sysservices@example.net"),
        ]),
        .init("<a@x> <b@y>", [("", "a@x"), ("", "b@y")]),
        .init("John <john@x>;", [("John", "john@x")]),
    ]

    static let groups: [AddressCase] = [
        .init("undisclosed-recipients:;", []),
        .init("undisclosed-recipients: ;", []),
        .init("Team: a@x, b@y;", [("", "a@x"), ("", "b@y")]),
        .init("Team: a@x, b@y", [("", "a@x"), ("", "b@y")]),
        .init("Team: a@x, b@y; c@z", [("", "a@x"), ("", "b@y"), ("", "c@z")]),
        .init("Empty:;, c@z", [("", "c@z")]),
        // RFC 5322 appendix A.1.3
        .init(
            "A Group(Some people):Chris Jones <c@(Chris's host.)public.example>, joe@example.org, "
                + "John <jdoe@one.test> (my dear friend); (the end of the group)",
            [("Chris Jones", "c@public.example"), ("", "joe@example.org"), ("John", "jdoe@one.test")]
        ),
    ]

    static let broken: [AddressCase] = [
        .init("John <john@x", [("John", "john@x")]),
        .init("John <john@x, Mary <mary@y>", [("John", "john@x"), ("Mary", "mary@y")]),
        .init("\"John Smith <john@x>", [("John Smith", "john@x")]),
        .init("\"Smith, John <john@x>", [("Smith, John", "john@x")]),
        .init("\"John <j@x>, Mary <m@y>", [("John", "j@x"), ("Mary", "m@y")]),
        .init("\"John Smith john@x", [("John Smith", "john@x")]),
        .init("John (Smith <john@x>", [("John", "john@x")]),
        .init("john@x (John Smith", [("John Smith", "john@x")]),
        .init("John) Smith] <john@x>", [("John Smith", "john@x")]),
    ]

    static let encoded: [AddressCase] = [
        .init("=?utf-8?q?J=C3=B6rg?= <j@x>", [("J\u{F6}rg", "j@x")]),
        .init("\"=?utf-8?q?J=C3=B6rg?=\" <j@x>", [("J\u{F6}rg", "j@x")]),
        .init("=?utf-8?q?J=C3=B6rg?= =?utf-8?q?_M=C3=BCller?= <j@x>", [("J\u{F6}rg M\u{FC}ller", "j@x")]),
        .init("=?ISO-8859-1?Q?Andr=E9?= Pirard <PIRARD@vm1.ulg.ac.be>",
              [("Andr\u{E9} Pirard", "PIRARD@vm1.ulg.ac.be")]),
        .init("j@x (=?utf-8?b?SsO2cmc=?=)", [("J\u{F6}rg", "j@x")]),
        .init("J\u{F6}rg <j@x>", [("J\u{F6}rg", "j@x")], [.eightBitHeader]),
        .init(bytes: Array("J".utf8) + [0xF6] + Array("rg <j@x>".utf8), [("J\u{F6}rg", "j@x")], [.eightBitHeader]),
        .init("j\u{F6}rg@b\u{FC}cher.example", [("", "j\u{F6}rg@b\u{FC}cher.example")], [.eightBitHeader]),
        .init("=?utf-8?x?bad?= <j@x>", [("=?utf-8?x?bad?=", "j@x")], [.invalidEncodedWord]),
    ]

    @Test(arguments: mailboxes + lists + groups + broken + encoded)
    func parses(_ example: AddressCase) {
        var defects: [Defect] = []
        let addresses = AddressList.parse(example.input[...], defects: &defects)
        #expect(addresses == example.expected)
        #expect(Set(defects.map(\.kind)) == example.defects)
        #expect(defects.allSatisfy { $0.offset == nil })
    }

    static let parts: [AddressPartsCase] = [
        .init(address: "john@example.com", localPart: "john", domain: "example.com"),
        .init(address: "John.Smith@Example.COM.", localPart: "John.Smith", domain: "example.com"),
        .init(address: "\"a@b\"@Example.org", localPart: "\"a@b\"", domain: "example.org"),
        .init(address: "john", localPart: "", domain: ""),
        .init(address: "", localPart: "", domain: ""),
        .init(address: "john@[192.0.2.1]", localPart: "john", domain: "[192.0.2.1]"),
        .init(address: "J\u{F6}rg@B\u{DC}CHER.example..", localPart: "J\u{F6}rg", domain: "b\u{FC}cher.example"),
    ]

    @Test(arguments: parts)
    func derivesParts(_ example: AddressPartsCase) {
        let address = MailAddress(address: example.address)
        #expect(address.localPart == example.localPart)
        #expect(address.domain == example.domain)
    }

    @Test func parsedDomainIsLowercased() throws {
        var defects: [Defect] = []
        let parsed = AddressList.parse(Array("John <John@EXAMPLE.Com.>".utf8)[...], defects: &defects)
        let address = try #require(parsed.first)
        #expect(address.address == "John@EXAMPLE.Com.")
        #expect(address.localPart == "John")
        #expect(address.domain == "example.com")
    }

    @Test func stopsAtMaxAddresses() {
        var defects: [Defect] = []
        let value = Array("a@x, b@x, c@x".utf8)
        #expect(AddressList.parse(value[...], maxAddresses: 2, defects: &defects).map(\.address) == ["a@x", "b@x"])
        #expect(AddressList.parse(value[...], maxAddresses: 0, defects: &defects).isEmpty)
        let many = Array(String(repeating: "a@x,", count: 5_000).utf8)
        #expect(AddressList.parse(many[...], defects: &defects).count == 1_000)
    }

    @Test func hostileValuesStayCheap() {
        var defects: [Defect] = []
        let nested = Array((String(repeating: "(", count: 100_000) + "a@x").utf8)
        #expect(AddressList.parse(nested[...], defects: &defects).isEmpty)
        let balanced = Array((String(repeating: "(", count: 100_000) + String(repeating: ")", count: 100_000)
            + " a@x").utf8)
        #expect(AddressList.parse(balanced[...], defects: &defects).map(\.address) == ["a@x"])
        let commas = Array(String(repeating: ",", count: 100_000).utf8)
        #expect(AddressList.parse(commas[...], defects: &defects).isEmpty)
        let quotes = Array(String(repeating: "\"", count: 100_001).utf8)
        #expect(AddressList.parse(quotes[...], defects: &defects).isEmpty)
        let angles = Array(String(repeating: "<(", count: 50_000).utf8)
        #expect(AddressList.parse(angles[...], defects: &defects).isEmpty)
    }
}

/// Domains in the ASCII form the contact book compares (vectors from Python's punycode codec and RFC 3492 §7.1).
@Suite struct DomainNameTests {
    @Test(arguments: [
        ("partner.example", "partner.example"),
        ("Partner.EXAMPLE", "partner.example"),
        ("münchen.example", "xn--mnchen-3ya.example"),
        ("MÜNCHEN.example", "xn--mnchen-3ya.example"),
        ("xn--mnchen-3ya.example", "xn--mnchen-3ya.example"),
        ("XN--MNCHEN-3YA.example", "xn--mnchen-3ya.example"),
        ("bücher.faß.example", "xn--bcher-kva.xn--fa-hia.example"),
        ("ñandú.example", "xn--and-6ma2c.example"),
        ("äöü.example", "xn--4ca0bs.example"),
        ("他们为什么不说中文.example", "xn--ihqwcrb4cv8a8dqg056pqjye.example"),
        ("", ""),
    ])
    func asciiForm(domain: String, ascii: String) {
        #expect(DomainName.ascii(domain) == ascii)
    }

    /// Found by an audit: a stranger who copied a coworker of their own was the owner's colleague. Where the
    /// delivering servers wrote whose mailbox it is, only those addresses' domains count: every such field (work
    /// mail forwarded home keeps the work address below), none at a host name without a dot, subdomains alike.
    @Test(arguments: [
        // header, sender sdr@vendor.example is a colleague
        ("To: me@owner.example\nCc: ae@vendor.example\n", true),  // no delivery field: any recipient's
        ("Delivered-To: me@owner.example\nTo: me@owner.example\nCc: ae@vendor.example\n", false),
        ("X-Original-To: me@owner.example\nTo: sales@vendor.example\n", false),
        ("Envelope-To: me@owner.example\nTo: sales@vendor.example\n", false),
        ("Delivered-To: me@vendor.example\nTo: me@vendor.example\n", true),
        ("Delivered-To: me@home.example\nDelivered-To: me@vendor.example\nTo: me@vendor.example\n", true),
        ("Delivered-To: me@mail.vendor.example\nTo: me@vendor.example\n", true),
        ("Delivered-To: sdr@vendor.example\nTo: sdr@vendor.example\n", false),
        ("Delivered-To: <me@VENDOR.example>\nTo: list@lists.example\n", true),
        ("Delivered-To: me@localhost\nTo: me@owner.example\nCc: ae@vendor.example\n", true),
        ("Delivered-To: me@localhost\nTo: me@owner.example\n", false),
    ])
    func aColleagueIsTheOwnersWhenTheDeliveryNamesTheOwner(fields: String, colleague: Bool) {
        let header = Message(bytes: Array(("From: sdr@vendor.example\n" + fields + "Subject: x\n\nbody\n").utf8)).header
        let recipients = ["to", "cc"].flatMap { header.addresses($0).map(\.address) }
        #expect(Colleagues.isColleague("sdr@vendor.example", in: header, recipients: recipients) == colleague)
    }

    @Test(arguments: [
        ("corp.example", "corp.example", true), ("mail.corp.example", "corp.example", true),
        ("corp.example", "eu.corp.example", true), ("evil-corp.example", "corp.example", false),
        ("corp.example.net", "corp.example", false),
    ])
    func aSubdomainIsTheSameOrganisation(one: String, other: String, same: Bool) {
        #expect(Colleagues.sameOrganisation(one, other) == same)
    }

    @Test func aColleagueWritesFromTheOwnDomainInEitherForm() {
        #expect(Colleagues.isColleague("anna@xn--mnchen-3ya.example", of: ["me@münchen.example"]))
        #expect(Colleagues.isColleague("anna@münchen.example", of: ["me@XN--MNCHEN-3YA.example"]))
        #expect(!Colleagues.isColleague("anna@munchen.example", of: ["me@münchen.example"]))
    }
}
