import Testing

@testable import PitchStore

/// The contract of `TemplateMemory`, against every backend, and the snapshot of the SQLite one.
@Suite struct TemplateMemoryTests {
    enum Kind: String, CaseIterable, CustomTestStringConvertible {
        case inMemory
        case sqlite
        case sqliteSnapshot
        var testDescription: String { rawValue }
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
        return memory
    }

    static func sighting(_ bands: [UInt64], from sender: String, to recipient: String) -> TemplateSighting {
        TemplateSighting(bands: bands, sender: sender, recipient: recipient)
    }

    @Test(arguments: Kind.allCases)
    func anEmptyMemorySaysSo(kind: Kind) throws {
        let memory = try lookup(kind, recording: [])
        #expect(try memory.sightings(of: [1, 2], sender: "a@x.example", recipient: "me@y.example", since: 0)
            == TemplateSightings(otherSenders: 0, sameNoteBefore: false, memoryIsEmpty: true))
    }

    @Test(arguments: Kind.allCases)
    func otherSendersOfANearDuplicateAreCountedOnce(kind: Kind) throws {
        let memory = try lookup(kind, recording: [
            (Self.sighting([1, 2, 3, 4], from: "a@x.example", to: "me@y.example"), 100),
            (Self.sighting([9, 2, 8, 7], from: "b@z.example", to: "me@y.example"), 100),  // shares band 2
            (Self.sighting([9, 2, 8, 7], from: "b@z.example", to: "other@y.example"), 100),
            (Self.sighting([5, 6, 7, 8], from: "c@w.example", to: "me@y.example"), 100),  // only 7, 8 in common
        ])
        let seen = try memory.sightings(of: [1, 2, 3, 4], sender: "new@q.example", recipient: "me@y.example",
                                        since: 0)
        #expect(seen == TemplateSightings(otherSenders: 2, sameNoteBefore: false, memoryIsEmpty: false))
    }

    @Test(arguments: Kind.allCases)
    func theSameNoteAgainIsTheSameSenderToTheSameRecipient(kind: Kind) throws {
        let memory = try lookup(kind, recording: [
            (Self.sighting([1, 2, 3, 4], from: "a@x.example", to: "me@y.example"), 100),
        ])
        #expect(try memory.sightings(of: [1, 20, 30, 40], sender: "a@x.example", recipient: "me@y.example",
                                     since: 0).sameNoteBefore)
        #expect(try !memory.sightings(of: [1, 20, 30, 40], sender: "a@x.example", recipient: "you@y.example",
                                      since: 0).sameNoteBefore)
        #expect(try memory.sightings(of: [1, 20, 30, 40], sender: "a@x.example", recipient: "me@y.example",
                                     since: 0).otherSenders == 0)
    }

    @Test(arguments: Kind.allCases)
    func sightingsBeforeTheWindowDoNotCount(kind: Kind) throws {
        let memory = try lookup(kind, recording: [
            (Self.sighting([1, 2, 3, 4], from: "a@x.example", to: "me@y.example"), 100),
            (Self.sighting([1, 2, 3, 4], from: "b@x.example", to: "me@y.example"), 200),
        ])
        #expect(try memory.sightings(of: [1], sender: "c@x.example", recipient: "me@y.example", since: 150)
            .otherSenders == 1)
    }

    @Test func recordingForgetsWhatIsPastExpiry() throws {
        let memory = InMemoryTemplateMemory()
        memory.record([Self.sighting([1], from: "a@x.example", to: "me@y.example")], at: 100, expireBefore: 0)
        memory.record([Self.sighting([2], from: "b@x.example", to: "me@y.example")], at: 300, expireBefore: 200)
        #expect(memory.sightings(of: [1], sender: "c@x.example", recipient: "me@y.example", since: 0).otherSenders
            == 0)
    }
}
