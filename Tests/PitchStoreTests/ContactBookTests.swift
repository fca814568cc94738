import Testing

import PitchMessage
@testable import PitchStore

/// The contract of `ContactBook`, run against every backend.
@Suite struct ContactBookTests {
    enum Kind: String, CaseIterable, CustomTestStringConvertible {
        case inMemory
        case sqlite
        var testDescription: String { rawValue }
    }

    let directory: TemporaryDirectory

    init() throws {
        directory = try TemporaryDirectory()
    }

    func makeBook(_ kind: Kind, file: String = "contacts.sqlite") throws -> any ContactBook {
        switch kind {
        case .inMemory: InMemoryContactBook()
        case .sqlite:
            try SQLiteTokenStore(path: directory.path(file), tokenizerIdentity: testTokenizer,
                                 access: .readWrite)
        }
    }

    @Test(arguments: Kind.allCases)
    func anEmptyBookKnowsNothingEitherWay(kind: Kind) throws {
        #expect(try makeBook(kind).relationship(with: "maya@brightfield.example") == .unknown)
    }

    /// Found by an audit: a domain imported in its ASCII ("xn--") form was unknown in its Unicode form, which
    /// SMTPUTF8 mail carries, and the other way round.
    @Test(arguments: Kind.allCases)
    func anInternationalizedDomainIsOneContactInEitherForm(kind: Kind) throws {
        let book = try makeBook(kind)
        #expect(try book.addContacts(["p@xn--mnchen-3ya.example", "user@Bücher.example"], source: .sent, at: 100) == 2)
        #expect(try book.relationship(with: "p@münchen.example") == .knownAddress)
        #expect(try book.relationship(with: "P@MÜNCHEN.EXAMPLE") == .knownAddress)
        #expect(try book.relationship(with: "user@xn--bcher-kva.example") == .knownAddress)
        #expect(try book.relationship(with: "other@bücher.example") == .knownDomain)
        #expect(try book.relationship(with: "other@bucher.example") == .firstContact)
    }

    /// `contacts remove`: an address goes however it became known, with the ham that vouches for it, and its domain
    /// with its last address there; a domain goes with everyone there. What was not known is said so.
    @Test(arguments: Kind.allCases)
    func removedContactsAreStrangersAgain(kind: Kind) throws {
        let book = try makeBook(kind)
        try book.addContacts(["maya@brightfield.example", "tom@brightfield.example", "ann@slotwise.example",
                              "zoe@gmail.com"], source: .sent, at: 100)
        try book.addHamSenders([HamSender(digest: [1], address: "dan@vendor.example")], at: 100)
        try book.addContacts(["ivy@vendor.example"], source: .sent, at: 100)
        let keys = ["Maya@Brightfield.example", "@slotwise.example", "dan@vendor.example", "zoe@gmail.com",
                    "nobody@nowhere.example", "@nowhere.example"].map { ContactKey($0)! }
        #expect(try book.removeContacts(keys).map(\.description)
            == ["maya@brightfield.example", "@slotwise.example", "dan@vendor.example", "zoe@gmail.com"])
        #expect(try book.relationship(with: "maya@brightfield.example") == .knownDomain, "tom is still known there")
        #expect(try book.relationship(with: "tom@brightfield.example") == .knownAddress)
        #expect(try book.relationship(with: "ann@slotwise.example") == .firstContact)
        #expect(try book.relationship(with: "dan@vendor.example") == .knownDomain)
        #expect(try book.relationship(with: "zoe@gmail.com") == .firstContact)
        #expect(try book.vouchingMessages(among: [[1]]).isEmpty, "the ham no longer vouches for dan")
        #expect(try book.allContacts().map(\.address) == ["ivy@vendor.example", "tom@brightfield.example"])
        // The last address at a domain takes the domain with it.
        #expect(try book.removeContacts([ContactKey("tom@brightfield.example")!]).count == 1)
        #expect(try book.relationship(with: "maya@brightfield.example") == .firstContact)
    }

    @Test(arguments: [("x@Example.ORG", "x@example.org"), ("@Bücher.example", "@xn--bcher-kva.example"),
                      ("@example.org.", "@example.org")])
    func aContactKeyIsSpeltAsTheBookKeysIt(text: String, key: String) {
        #expect(ContactKey(text)?.description == key)
    }

    @Test(arguments: ["", "@", "x", "@gmail.com", "a@@b.example", "@nodot"])
    func aContactKeyIsAnAddressOrADomain(text: String) {
        #expect(ContactKey(text) == nil)
    }

    @Test(arguments: Kind.allCases)
    func addressesAndTheirDomainsBecomeKnown(kind: Kind) throws {
        let book = try makeBook(kind)
        #expect(try book.addContacts(["Maya@Brightfield.example", "not an address"], source: .sent, at: 100) == 1)
        #expect(try book.relationship(with: "maya@brightfield.example") == .knownAddress)
        #expect(try book.relationship(with: "MAYA@BRIGHTFIELD.EXAMPLE") == .knownAddress)
        // A colleague of someone the owner writes to.
        #expect(try book.relationship(with: "tom@brightfield.example") == .knownDomain)
        #expect(try book.relationship(with: "dan@slotwise.example") == .firstContact)
        #expect(try book.relationship(with: "") == .firstContact)
    }

    /// Found by an audit: "bob@partner.example." and "bob@partner.example" were two contacts, and a typo's
    /// "bob@@partner.example" made partner.example a known domain.
    @Test(arguments: Kind.allCases)
    func aTrailingDotIsTheSameAddressAndADoubleAtIsNone(kind: Kind) throws {
        let book = try makeBook(kind)
        #expect(try book.addContacts(["bob@partner.example.", "bad@@typo.example", "x@.example", "y@a..example"],
                                     source: .sent, at: 100) == 1)
        #expect(try book.relationship(with: "bob@partner.example") == .knownAddress)
        #expect(try book.relationship(with: "Bob@Partner.example.") == .knownAddress)
        #expect(try book.relationship(with: "ann@typo.example") == .firstContact)
        #expect(try book.allContacts().map(\.address) == ["bob@partner.example"])
    }

    @Test(arguments: Kind.allCases)
    func freemailAddressesAreKnownOneByOne(kind: Kind) throws {
        let book = try makeBook(kind)
        try book.addContacts(["friend@gmail.com", "pal@yahoo.co.uk"], source: .sent, at: 100)
        #expect(try book.relationship(with: "friend@gmail.com") == .knownAddress)
        #expect(try book.relationship(with: "stranger@gmail.com") == .firstContact)
        #expect(try book.relationship(with: "stranger@yahoo.co.uk") == .firstContact)
    }

    @Test(arguments: Kind.allCases)
    func addingAgainChangesNothingAndTheFirstSourceStays(kind: Kind) throws {
        let book = try makeBook(kind)
        #expect(try book.addContacts(["maya@brightfield.example"], source: .sent, at: 100) == 1)
        #expect(try book.addContacts(["maya@brightfield.example", "tom@brightfield.example"], source: .ham, at: 200)
            == 1)
        #expect(try book.allContacts() == [
            Contact(address: "maya@brightfield.example", source: .sent, addedAt: 100),
            Contact(address: "tom@brightfield.example", source: .ham, addedAt: 200),
        ])
    }

    static func ham(_ number: UInt8, from address: String) -> HamSender {
        HamSender(digest: [UInt8](repeating: number, count: 32), address: address)
    }

    /// A correction takes back a contact that ham training made, and only that: a domain another known address
    /// still makes known stays, and so does everyone the owner wrote to.
    @Test(arguments: Kind.allCases)
    func correctingAHamTakesBackOnlyWhatItTaught(kind: Kind) throws {
        let book = try makeBook(kind)
        try book.addContacts(["maya@brightfield.example"], source: .sent, at: 100)
        let learned = [Self.ham(1, from: "tom@brightfield.example"), Self.ham(2, from: "dan@slotwise.example"),
                       Self.ham(3, from: "lea@quayside.example"), Self.ham(4, from: "pal@gmail.com")]
        #expect(try book.addHamSenders(learned, at: 200) == 4)
        // Known from ham first, then written to: the owner's word stands.
        try book.addHamSenders([Self.ham(5, from: "ana@quayside.example")], at: 200)
        try book.addContacts(["ANA@quayside.example"], source: .sent, at: 300)
        #expect(try book.removeHamSenders(learned.map { HamSender(digest: $0.digest, address: $0.address.uppercased()) }
                                          + [Self.ham(5, from: "ana@quayside.example"),
                                             Self.ham(6, from: "Maya@Brightfield.example"),
                                             Self.ham(7, from: "nobody@nowhere.example"),
                                             Self.ham(8, from: "not an address")])
            == 4)
        #expect(try book.allContacts() == [Contact(address: "ana@quayside.example", source: .sent, addedAt: 200),
                                           Contact(address: "maya@brightfield.example", source: .sent, addedAt: 100)])
        #expect(try book.relationship(with: "tom@brightfield.example") == .knownDomain)
        #expect(try book.relationship(with: "dan@slotwise.example") == .firstContact)
        #expect(try book.relationship(with: "lea@quayside.example") == .knownDomain)
        #expect(try book.relationship(with: "pal@gmail.com") == .firstContact)
    }

    /// Found in review: correcting one of a correspondent's messages made them a stranger, though other ham from
    /// them was still trained. A sender goes only with the last message that vouched for them.
    @Test(arguments: Kind.allCases)
    func aSenderStaysWhileAnotherHamMessageVouchesForThem(kind: Kind) throws {
        let book = try makeBook(kind)
        try book.addHamSenders([Self.ham(1, from: "dana@partner.example"), Self.ham(2, from: "Dana@Partner.example"),
                                Self.ham(3, from: "lee@other.example")], at: 100)
        // The same message learned again vouches once.
        try book.addHamSenders([Self.ham(1, from: "dana@partner.example")], at: 150)
        #expect(try book.removeHamSenders([Self.ham(1, from: "dana@partner.example")]) == 0)
        #expect(try book.relationship(with: "dana@partner.example") == .knownAddress)
        #expect(try book.removeHamSenders([Self.ham(1, from: "dana@partner.example")]) == 0)
        #expect(try book.removeHamSenders([Self.ham(2, from: "dana@partner.example")]) == 1)
        #expect(try book.relationship(with: "dana@partner.example") == .firstContact)
        #expect(try book.relationship(with: "lee@other.example") == .knownAddress)
    }

    /// A message that vouched under its former digest (`HamSender.formerDigest`) vouches under its digest once
    /// learned again, not under both; and a correction takes it back under either.
    @Test(arguments: Kind.allCases)
    func aMessageVouchesOnceUnderItsDigestAndFormerDigest(kind: Kind) throws {
        let book = try makeBook(kind)
        try book.addHamSenders([Self.ham(1, from: "dana@partner.example")], at: 100)
        var again = Self.ham(2, from: "dana@partner.example")
        again.formerDigest = Self.ham(1, from: "").digest
        try book.addHamSenders([again], at: 200)
        #expect(try book.vouchingMessages(among: [Self.ham(1, from: "").digest, again.digest]) == [again.digest])
        #expect(try book.removeHamSenders([again]) == 1)
        #expect(try book.relationship(with: "dana@partner.example") == .unknown)
        // Taken back by a correction that reads it before it was learned again: under the former digest.
        try book.addContacts(["maya@brightfield.example"], source: .sent, at: 100)
        try book.addHamSenders([Self.ham(3, from: "lee@other.example")], at: 300)
        var corrected = Self.ham(4, from: "lee@other.example")
        corrected.formerDigest = Self.ham(3, from: "").digest
        #expect(try book.removeHamSenders([corrected]) == 1)
        #expect(try book.relationship(with: "lee@other.example") == .firstContact)
    }

    /// Found by an audit: a correction killed after its commit left the message vouching for its sender; the
    /// book says so, so that running the correction again can take the sender back.
    @Test(arguments: Kind.allCases)
    func theMessagesThatStillVouchAreKnown(kind: Kind) throws {
        let book = try makeBook(kind)
        try book.addHamSenders([Self.ham(1, from: "dana@partner.example"), Self.ham(2, from: "lee@other.example")],
                               at: 100)
        #expect(try book.vouchingMessages(among: [Self.ham(1, from: "").digest, Self.ham(3, from: "").digest])
            == [Self.ham(1, from: "").digest])
        try book.removeHamSenders([Self.ham(1, from: "dana@partner.example")])
        #expect(try book.vouchingMessages(among: [Self.ham(1, from: "").digest]).isEmpty)
    }

    /// Found by an audit: a message learned as ham and then moved to pitch found its sender known through its own
    /// learning, and taught `rel:known-address` as pitch evidence. Apart from one message, the book answers as it
    /// would once that message's vouch is taken back, through the store, its snapshot and the reference alike.
    @Test(arguments: Kind.allCases)
    func aMessageIsNoEvidenceForItsOwnSender(kind: Kind) throws {
        let book = try makeBook(kind)
        try book.addContacts(["maya@brightfield.example"], source: .sent, at: 100)
        try book.addHamSenders([Self.ham(1, from: "tom@brightfield.example"), Self.ham(2, from: "dan@slotwise.example"),
                                Self.ham(3, from: "dana@partner.example"), Self.ham(4, from: "Dana@Partner.example"),
                                Self.ham(5, from: "pal@gmail.com"), Self.ham(6, from: "ana@quayside.example"),
                                Self.ham(7, from: "lea@quayside.example"), Self.ham(8, from: "maya@brightfield.example")],
                               at: 200)
        let cases: [(address: String, apartFrom: UInt8, expected: Relationship)] = [
            ("tom@brightfield.example", 1, .knownDomain),  // the owner writes to a colleague of theirs
            ("dan@slotwise.example", 2, .firstContact),
            ("dan@slotwise.example", 9, .knownAddress),  // another message: it never vouched for them
            ("dana@partner.example", 3, .knownAddress),  // message 4 still vouches
            ("pal@gmail.com", 5, .firstContact),
            ("ana@quayside.example", 6, .knownDomain),  // lea is at the same domain
            ("maya@brightfield.example", 8, .knownAddress),  // the owner's word stands
        ]
        var lookups: [any ContactLookup] = [book]
        if let store = book as? SQLiteTokenStore { lookups.append(try store.contactSnapshot()) }
        for lookup in lookups {
            for item in cases {
                let digest = [UInt8](repeating: item.apartFrom, count: 32)
                #expect(try lookup.relationship(with: item.address, apartFrom: digest) == item.expected,
                        "\(type(of: lookup)) \(item.address) apart from \(item.apartFrom)")
            }
        }
        // A book that knows only what one message taught knows nothing apart from it.
        let alone = try makeBook(kind, file: "alone.sqlite")
        try alone.addHamSenders([Self.ham(1, from: "tom@brightfield.example")], at: 200)
        lookups = [alone]
        if let store = alone as? SQLiteTokenStore { lookups.append(try store.contactSnapshot()) }
        for lookup in lookups {
            #expect(try lookup.relationship(with: "tom@brightfield.example", apartFrom: [UInt8](repeating: 1, count: 32))
                == .unknown)
            #expect(try lookup.relationship(with: "tom@brightfield.example") == .knownAddress)
        }
    }

    /// `train` judges each message against the book as the run will leave it (`ContactSnapshot.adding`): it must
    /// answer, for every sender and apart from every message, as the store's own book does once the run is learned.
    @Test func aSnapshotAheadOfTheRunAnswersAsTheBookAfterIt() throws {
        let store = try SQLiteTokenStore(path: directory.path("ahead.sqlite"), tokenizerIdentity: testTokenizer,
                                         access: .readWrite)
        try store.addContacts(["maya@brightfield.example"], source: .sent, at: 100)
        try store.addHamSenders([Self.ham(3, from: "dana@partner.example")], at: 100)
        let run = [Self.ham(1, from: "tom@brightfield.example"), Self.ham(2, from: "dan@slotwise.example"),
                   Self.ham(4, from: "Dana@Partner.example"), Self.ham(5, from: "pal@gmail.com"),
                   Self.ham(6, from: "ana@quayside.example"), Self.ham(7, from: "lea@quayside.example"),
                   Self.ham(8, from: "maya@brightfield.example"), Self.ham(9, from: "not an address")]
        let before = try store.contactSnapshot()
        let ahead = before.adding(run)
        try store.addHamSenders(run, at: 200)
        let after = try store.contactSnapshot()
        let senders = run.map(\.address) + ["dana@partner.example", "sam@slotwise.example", "kim@elsewhere.example"]
        var firstContacts = 0
        for sender in senders {
            #expect(ahead.relationship(with: sender) == after.relationship(with: sender), "\(sender)")
            if after.relationship(with: sender) == .firstContact { firstContacts += 1 }
            for number in UInt8(1)...10 {
                let digest = [UInt8](repeating: number, count: 32)
                #expect(ahead.relationship(with: sender, apartFrom: digest)
                    == after.relationship(with: sender, apartFrom: digest), "\(sender) apart from \(number)")
            }
        }
        #expect(firstContacts == 2)  // the bad address and kim; pal's freemail domain makes nobody else known
        #expect(before.relationship(with: "dan@slotwise.example") == .firstContact)
        #expect(ahead.relationship(with: "dan@slotwise.example") == .knownAddress)
        #expect(ahead.relationship(with: "dan@slotwise.example", apartFrom: [UInt8](repeating: 2, count: 32))
            == .firstContact)
    }

    /// The same for what a run takes back (`ContactSnapshot.removing`, `removeHamSenders`): an address with one
    /// message left, one with none, a domain with an address the owner wrote to, a domain with nobody left, a
    /// freemail address, and a contact from ham that no message vouches for (learned before they were recorded).
    @Test func aSnapshotWithoutTheRunsCorrectionsAnswersAsTheBookAfterThem() throws {
        let store = try SQLiteTokenStore(path: directory.path("taken.sqlite"), tokenizerIdentity: testTokenizer,
                                         access: .readWrite)
        try store.addContacts(["maya@brightfield.example"], source: .sent, at: 100)
        try store.addContacts(["old@legacy.example"], source: .ham, at: 50)
        let ham = [Self.ham(1, from: "tom@brightfield.example"), Self.ham(2, from: "dan@slotwise.example"),
                   Self.ham(3, from: "dana@partner.example"), Self.ham(4, from: "Dana@Partner.example"),
                   Self.ham(5, from: "pal@gmail.com"), Self.ham(6, from: "ana@quayside.example"),
                   Self.ham(7, from: "lea@quayside.example")]
        try store.addHamSenders(ham, at: 100)
        let takenBack = [ham[0], ham[1], ham[2], ham[4], ham[5], Self.ham(9, from: "old@legacy.example")]
        let before = try store.contactSnapshot()
        let ahead = before.removing(takenBack)
        try store.removeHamSenders(takenBack)
        let after = try store.contactSnapshot()
        let senders = ham.map(\.address) + ["maya@brightfield.example", "kim@slotwise.example", "x@quayside.example",
                                            "old@legacy.example", "x@legacy.example"]
        for sender in senders {
            #expect(ahead.relationship(with: sender) == after.relationship(with: sender), "\(sender)")
            for number in UInt8(1)...9 {
                let digest = [UInt8](repeating: number, count: 32)
                #expect(ahead.relationship(with: sender, apartFrom: digest)
                    == after.relationship(with: sender, apartFrom: digest), "\(sender) apart from \(number)")
            }
        }
        #expect(ahead.relationship(with: "kim@slotwise.example") == .firstContact)
        #expect(ahead.relationship(with: "tom@brightfield.example") == .knownDomain)
        #expect(ahead.relationship(with: "dana@partner.example") == .knownAddress)
        #expect(ahead.relationship(with: "x@quayside.example") == .knownDomain)
        #expect(ahead.relationship(with: "old@legacy.example") == .firstContact)
        #expect(before.relationship(with: "old@legacy.example") == .knownAddress)
        #expect(before.removing([]).relationship(with: "dan@slotwise.example") == .knownAddress)
        #expect(before.vouchingMessages == Set((1...7).map { [UInt8](repeating: $0, count: 32) }))
    }

    @Test(arguments: [
        ("gmail.com", true), ("GoogleMail.com", true), ("yahoo.fr", true), ("gmx.de", true), ("gmail.example", true),
        ("fastmail.example", true), ("groupmail.example", false),
        ("brightfield.example", false), ("mail.example", false), ("yahoo-finance.example", false),
        // Found missing by an audit: national providers and ISPs.
        ("free.fr", true), ("btinternet.com", true), ("wp.pl", true), ("seznam.cz", true), ("inbox.ru", true),
        ("hanmail.net", true), ("sina.com", true), ("duck.com", true), ("laposte.net", true),
        ("zohomail.com", true), ("aim.com", true), ("tuta.com", true), ("mailfence.com", true),
        ("yahoo.co.uk", true), ("outlook.com.br", true),
        // A provider's name at the start of a domain of someone else's is not the provider.
        ("gmail.com.evil.example", false), ("yahoo.brightfield.example", false), ("gmx.partners", false),
    ])
    func freemailDomains(domain: String, expected: Bool) {
        #expect(FreemailDomains.contains(domain) == expected)
    }
}

@Suite struct ColleaguesTests {
    @Test(arguments: [
        ("dana@copperleaf.example", ["sam@copperleaf.example"], true),
        ("DANA@Copperleaf.Example", ["sam@copperleaf.example"], true),
        ("dana@copperleaf.example", ["bob@partner.example", "sam@copperleaf.example"], true),
        ("dana@copperleaf.example", ["bob@partner.example"], false),
        // A subdomain is another organisation's as far as a sender's address can say.
        ("lee@copperleaf.example.net", ["sam@copperleaf.example"], false),
        // Freemail: anybody can have an address there.
        ("kim@gmail.com", ["owner@gmail.com"], false),
        // Addressed to the sender alone (a letter to many in Bcc); the owner's own copy of mail to others is.
        ("lee@hirewell.example", ["lee@hirewell.example"], false),
        ("lee@hirewell.example", ["lee@hirewell.example", "kim@hirewell.example"], true),
        ("nobody", ["sam@copperleaf.example"], false),
    ])
    func aColleagueWritesFromARecipientsOwnDomain(sender: String, recipients: [String], expected: Bool) {
        #expect(Colleagues.isColleague(sender, of: recipients) == expected)
    }
}
