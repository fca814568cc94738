import Testing

@testable import PitchStore

/// The contract of `TemplateMemory`, against every backend, and the snapshot of the SQLite one.
@Suite struct TemplateMemoryTests {
    enum Kind: String, CaseIterable, CustomTestStringConvertible {
        case inMemory
        case sqlite
        case sqliteSnapshot
        /// Copies of the asked message's bands only, read as `pitchfilter train` reads them, joined to an empty copy.
        case sqliteBandCopies
        var testDescription: String { rawValue }
    }

    /// Answers from copies of the asked message's bands, read when asked.
    struct BandCopies: TemplateLookup {
        let store: SQLiteTokenStore
        func sightings(like message: TemplateSighting, since: Int64) throws -> TemplateSightings {
            var copy = TemplateSnapshot.empty
            copy.add(try store.templateSnapshot(bands: Set(message.bands.prefix(2))))
            copy.add(try store.templateSnapshot(bands: Set(message.bands)))  // read again: joined without twins
            return copy.sightings(like: message, since: since)
        }
    }

    let directory: TemporaryDirectory

    init() throws {
        directory = try TemporaryDirectory()
    }

    /// Records, then answers through the backend (for the snapshot: one taken after recording).
    func lookup(_ kind: Kind, recording: [(TemplateSighting, Int64)]) throws -> any TemplateLookup {
        let memory: any TemplateMemory = kind == .inMemory
            ? InMemoryTemplateMemory()
            : try SQLiteTokenStore(path: directory.path("t.sqlite"), tokenizerIdentity: testTokenizer,
                                   access: .readWrite)
        for (sighting, time) in recording { try memory.record([sighting], at: time, expireBefore: 0) }
        if kind == .sqliteSnapshot, let store = memory as? SQLiteTokenStore { return try store.templateSnapshot() }
        if kind == .sqliteBandCopies, let store = memory as? SQLiteTokenStore { return BandCopies(store: store) }
        return memory
    }

    /// A sighting; `message` tells messages apart (by default each sighting is a message of its own).
    static func sighting(_ bands: [UInt64], from sender: String, to recipient: String,
                         message: UInt64? = nil) -> TemplateSighting {
        var hasher = Hasher()
        hasher.combine(bands)
        hasher.combine(sender)
        hasher.combine(recipient)
        return TemplateSighting(bands: bands, sender: key(sender), recipient: key(recipient),
                                message: message ?? UInt64(truncatingIfNeeded: hasher.finalize()))
    }

    /// An address as a key of the memory (the engine's are SHA-256 based; any hash tells these apart).
    static func key(_ address: String) -> UInt64 {
        var hasher = Hasher()
        hasher.combine(address)
        return UInt64(truncatingIfNeeded: hasher.finalize())
    }

    @Test(arguments: Kind.allCases)
    func anEmptyMemorySaysSo(kind: Kind) throws {
        let memory = try lookup(kind, recording: [])
        #expect(try memory.sightings(like: Self.sighting([1, 2], from: "a@x.example", to: "me@y.example", message: 999), since: 0)
            == TemplateSightings(otherSenders: 0, sameNoteBefore: false, memoryIsEmpty: true))
    }

    /// Keys are 64-bit hashes stored as signed integers: on both sides of the sign bit, each other sender counts once
    /// (the SQLite memory walks them in index order, `sender > previous`), and the one asked about not at all.
    @Test(arguments: Kind.allCases)
    func keysOnBothSidesOfTheSignBitAreEachCounted(kind: Kind) throws {
        let senders: [UInt64] = [.max, 1 << 63, (1 << 63) + 1, 0, 1, UInt64(Int64.max)]
        let memory = try lookup(kind, recording: senders.enumerated().map { index, sender in
            (TemplateSighting(bands: [1, 2], sender: sender, recipient: 7, message: UInt64(100 + index)), 100)
        })
        let asked = TemplateSighting(bands: [1, 2], sender: 1 << 63, recipient: 7, message: 999)
        #expect(try memory.sightings(like: asked, since: 0)
            == TemplateSightings(otherSenders: 5, sameNoteBefore: true, memoryIsEmpty: false))
    }

    @Test(arguments: Kind.allCases)
    func otherSendersOfANearDuplicateAreCountedOnce(kind: Kind) throws {
        let memory = try lookup(kind, recording: [
            (Self.sighting([1, 2, 3, 4], from: "a@x.example", to: "me@y.example"), 100),
            (Self.sighting([9, 2, 8, 7], from: "b@z.example", to: "me@y.example"), 100),  // shares band 2
            (Self.sighting([9, 2, 8, 7], from: "b@z.example", to: "other@y.example"), 100),
            (Self.sighting([5, 6, 7, 8], from: "c@w.example", to: "me@y.example"), 100),  // only 7, 8 in common
        ])
        let seen = try memory.sightings(like: Self.sighting([1, 2, 3, 4], from: "new@q.example", to: "me@y.example", message: 999), since: 0)
        #expect(seen == TemplateSightings(otherSenders: 2, sameNoteBefore: false, memoryIsEmpty: false))
    }

    @Test(arguments: Kind.allCases)
    func theSameNoteAgainIsTheSameSenderToTheSameRecipient(kind: Kind) throws {
        let memory = try lookup(kind, recording: [
            (Self.sighting([1, 2, 3, 4], from: "a@x.example", to: "me@y.example"), 100),
        ])
        #expect(try memory.sightings(like: Self.sighting([1, 20, 30, 40], from: "a@x.example", to: "me@y.example", message: 999), since: 0).sameNoteBefore)
        #expect(try !memory.sightings(like: Self.sighting([1, 20, 30, 40], from: "a@x.example", to: "you@y.example", message: 999), since: 0).sameNoteBefore)
        #expect(try memory.sightings(like: Self.sighting([1, 20, 30, 40], from: "a@x.example", to: "me@y.example", message: 999), since: 0).otherSenders == 0)
    }

    @Test(arguments: Kind.allCases)
    func sightingsBeforeTheWindowDoNotCount(kind: Kind) throws {
        let memory = try lookup(kind, recording: [
            (Self.sighting([1, 2, 3, 4], from: "a@x.example", to: "me@y.example"), 100),
            (Self.sighting([1, 2, 3, 4], from: "b@x.example", to: "me@y.example"), 200),
        ])
        #expect(try memory.sightings(like: Self.sighting([1], from: "c@x.example", to: "me@y.example", message: 999), since: 150)
            .otherSenders == 1)
    }

    @Test(arguments: Kind.allCases)
    func aMessageIsRecordedOnceAndNeverCountsAgainstItself(kind: Kind) throws {
        let letter = Self.sighting([1, 2, 3, 4], from: "a@x.example", to: "me@y.example", message: 42)
        // Filtered, then trained: the same message twice.
        let memory = try lookup(kind, recording: [(letter, 100), (letter, 200)])
        // A memory of this message alone is empty to it (found by an audit: moved to the other class, the first
        // message learned got a `tmpl:others-0` it had not had), and not to another.
        #expect(try memory.sightings(like: letter, since: 0)
            == TemplateSightings(otherSenders: 0, sameNoteBefore: false, memoryIsEmpty: true))
        // The same note as another message is still the same note again.
        var again = letter
        again.message = 43
        #expect(try memory.sightings(like: again, since: 0)
            == TemplateSightings(otherSenders: 0, sameNoteBefore: true, memoryIsEmpty: false))
        // With another's sighting beside it, in any band, the memory is no longer empty to it.
        let other = try lookup(kind, recording: [(letter, 100),
                                                 (Self.sighting([7, 8], from: "b@x.example", to: "me@y.example"), 100)])
        #expect(try other.sightings(like: letter, since: 0)
            == TemplateSightings(otherSenders: 0, sameNoteBefore: false, memoryIsEmpty: false))
    }

    /// A sender mailing one skeleton day after day (a notification, a newsletter): the answers stay those of the
    /// whole history, in every backend, though the database keeps only the newest two per band (`record`).
    @Test(arguments: Kind.allCases)
    func aSkeletonSentOftenIsAnsweredAsFromTheWholeHistory(kind: Kind) throws {
        let daily = (0..<30).map { day in
            (Self.sighting([1, 2, 3, 4], from: "notify@service.example", to: "me@y.example", message: UInt64(100 + day)),
             Int64(1_000 + day))
        }
        let memory = try lookup(kind, recording: daily + [
            (Self.sighting([1, 2, 3, 4], from: "notify@service.example", to: "you@y.example", message: 200), 1_030),
            (Self.sighting([9, 9, 9, 4], from: "b@z.example", to: "me@y.example", message: 300), 1_031),
        ])
        let newest = daily.last!.0
        // The newest again (filtered, then classified): the day before is still the same note before.
        #expect(try memory.sightings(like: newest, since: 0)
            == TemplateSightings(otherSenders: 1, sameNoteBefore: true, memoryIsEmpty: false))
        // Tomorrow's, from the same sender and from a stranger.
        var tomorrow = newest
        tomorrow.message = 999
        #expect(try memory.sightings(like: tomorrow, since: 0)
            == TemplateSightings(otherSenders: 1, sameNoteBefore: true, memoryIsEmpty: false))
        let stranger = Self.sighting([1, 2, 3, 4], from: "new@q.example", to: "me@y.example", message: 998)
        #expect(try memory.sightings(like: stranger, since: 0)
            == TemplateSightings(otherSenders: 2, sameNoteBefore: false, memoryIsEmpty: false))
        // Only the last day inside the window: the same sender's note yesterday is still there.
        #expect(try memory.sightings(like: tomorrow, since: 1_029).sameNoteBefore)
    }

    /// One sender's notice to hundreds of local users, and a dozen other senders of the same text: other senders are
    /// counted up to ten whichever side of the big sender they sort on, and the big sender counts as none of them.
    @Test(arguments: Kind.allCases)
    func oneSenderToManyRecipientsAmongManyOtherSenders(kind: Kind) throws {
        let notices = (0..<300).map { user in
            (Self.sighting([1, 2, 3, 4], from: "m@list.example", to: "user\(user)@y.example",
                           message: UInt64(1_000 + user)), Int64(100))
        }
        let others = ["a", "b", "c", "d", "e", "f", "x", "y", "z", "za", "zb", "zc"].enumerated().map { index, name in
            (Self.sighting([9, 9, 9, index.isMultiple(of: 2) ? 1 : 4], from: "\(name)@other.example",
                           to: "me@y.example", message: UInt64(2_000 + index)), Int64(100))
        }
        let memory = try lookup(kind, recording: notices + others)
        let fromTheList = Self.sighting([1, 2, 3, 4], from: "m@list.example", to: "user7@y.example", message: 999)
        #expect(try memory.sightings(like: fromTheList, since: 0)
            == TemplateSightings(otherSenders: 10, sameNoteBefore: true, memoryIsEmpty: false))
        // Only the list sent band 3, so a stranger sharing just that band has one other sender: the list.
        let third = Self.sighting([50, 60, 3, 70], from: "new@q.example", to: "me@y.example", message: 998)
        #expect(try memory.sightings(like: third, since: 0)
            == TemplateSightings(otherSenders: 1, sameNoteBefore: false, memoryIsEmpty: false))
        // Outside the window nothing counts.
        #expect(try memory.sightings(like: fromTheList, since: 101)
            == TemplateSightings(otherSenders: 0, sameNoteBefore: false, memoryIsEmpty: false))
    }

    /// A band twice in one message (found in review): recording it must not trim away the earlier message.
    @Test(arguments: Kind.allCases)
    func aBandRepeatedInOneMessageKeepsTheEarlierNote(kind: Kind) throws {
        let earlier = Self.sighting([5], from: "a@x.example", to: "me@y.example", message: 1)
        let repeated = Self.sighting([5, 5], from: "a@x.example", to: "me@y.example", message: 2)
        let memory = try lookup(kind, recording: [(earlier, 100), (repeated, 200)])
        #expect(try memory.sightings(like: repeated, since: 0).sameNoteBefore)
    }

    /// Sightings recorded out of time order (found in review: each process reads the clock before it waits for
    /// the write lock): the newest by time is the one kept, so a window that holds it still sees the note.
    @Test(arguments: Kind.allCases)
    func theNewestByTimeIsKeptWhateverTheOrderOfRecording(kind: Kind) throws {
        let notes = [(1, 300), (2, 100), (3, 100)].map { message, time in
            (Self.sighting([1, 2, 3, 4], from: "a@x.example", to: "me@y.example", message: UInt64(message)),
             Int64(time))
        }
        let memory = try lookup(kind, recording: notes)
        let next = Self.sighting([1, 2, 3, 4], from: "a@x.example", to: "me@y.example", message: 4)
        #expect(try memory.sightings(like: next, since: 200)
            == TemplateSightings(otherSenders: 0, sameNoteBefore: true, memoryIsEmpty: false))
    }

    @Test func theDatabaseKeepsTwoSightingsPerBandSenderAndRecipient() throws {
        let store = try SQLiteTokenStore(path: directory.path("t.sqlite"), tokenizerIdentity: testTokenizer,
                                         access: .readWrite)
        for day in 0..<30 {
            try store.record([Self.sighting([1, 2, 3, 4], from: "notify@service.example", to: "me@y.example",
                                            message: UInt64(100 + day))], at: Int64(1_000 + day), expireBefore: 0)
        }
        try store.record([Self.sighting([1, 5, 6, 7], from: "notify@service.example", to: "you@y.example",
                                        message: 200)], at: 1_030, expireBefore: 0)
        let names = [Self.key("me@y.example"): "me@y.example", Self.key("you@y.example"): "you@y.example"]
        let rows = try store.withConnection { connection throws(StoreError) in
            let query = try connection.statement("SELECT band, recipient, message FROM templates")
            defer { query.reset() }
            var rows: [String] = []
            while try query.step() {
                let recipient = names[UInt64(bitPattern: query.int64(1))] ?? "?"
                rows.append("\(query.int64(0)) \(recipient) \(query.int64(2))")
            }
            return rows
        }
        #expect(rows.sorted { ($0.split(separator: " ")[1], $0) < ($1.split(separator: " ")[1], $1) } == [
            "1 me@y.example 128", "1 me@y.example 129", "2 me@y.example 128", "2 me@y.example 129",
            "3 me@y.example 128", "3 me@y.example 129", "4 me@y.example 128", "4 me@y.example 129",
            "1 you@y.example 200", "5 you@y.example 200", "6 you@y.example 200", "7 you@y.example 200",
        ])
    }

    @Test func recordingForgetsWhatIsPastExpiry() throws {
        let memory = InMemoryTemplateMemory()
        memory.record([Self.sighting([1], from: "a@x.example", to: "me@y.example")], at: 100, expireBefore: 0)
        memory.record([Self.sighting([2], from: "b@x.example", to: "me@y.example")], at: 300, expireBefore: 200)
        #expect(memory.sightings(like: Self.sighting([1], from: "c@x.example", to: "me@y.example", message: 999), since: 0).otherSenders
            == 0)
    }
}
