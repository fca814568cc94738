import Glibc
import PitchMessage
import PitchStore
import PitchTokenizer
import Testing
@testable import PitchEngine

@Suite struct ThreadReferenceTests {
    static func message(_ header: String) -> Message {
        Message(bytes: Array((header + "From: x@example.org\nSubject: Re: our call\n\nHello\n").utf8))
    }

    static func id(_ text: String) -> UInt64 { TokenID(hashing: text).rawValue }

    @Test func idsComeFromMessageIDInReplyToAndReferencesNewestFirst() {
        let references = ThreadReferences(of: Self.message("""
            Message-ID: <Reply.1@Example.ORG>
            In-Reply-To: <b@example.org>
            References: <a@example.org>
             <b@example.org> <not an id> <c@example.org>

            """))
        #expect(references.own == Self.id("<reply.1@example.org>"))
        #expect(references.answered == [Self.id("<b@example.org>"), Self.id("<c@example.org>"),
                                         Self.id("<a@example.org>")])
    }

    @Test func aMessageWithoutReferencesAnswersNothing() {
        let references = ThreadReferences(of: Self.message("Message-ID: <m@example.org>\n"))
        #expect(references.answered.isEmpty)
        #expect(ThreadReferences(of: Self.message("In-Reply-To: nothing useful\n")).answered.isEmpty)
    }

    @Test(arguments: [
        // memory contents, header of the message, the ref: token expected
        ([String](), "In-Reply-To: <a@example.org>\n", nil as String?),
        (["<a@example.org>"], "In-Reply-To: <A@example.org>\n", "ref:known"),
        (["<a@example.org>"], "References: <x@example.org> <a@example.org>\n", "ref:known"),
        (["<a@example.org>"], "In-Reply-To: <made-up.42@crm.example>\n", "ref:unknown"),
        (["<a@example.org>"], "Message-ID: <new@example.org>\n", nil),
    ])
    func repliesToWhatThisMailboxSawAreKnown(seen: [String], header: String, expected: String?) throws {
        let memory = InMemoryMessageIDMemory()
        memory.rememberMessageIDs(seen.map(Self.id), at: 100, expireBefore: 0)
        let engine = Engine(store: nil, starter: nil, threads: memory)
        let tokens = try engine.tokens(of: Self.message(header), keepingTexts: true).texts
        #expect(tokens.filter { $0.hasPrefix("ref:") } == (expected.map { [$0] } ?? []))
    }

    @Test func theSQLiteMemoryAgreesWithTheInMemoryOneAndForgets() throws {
        let path = "/tmp/ThreadReferenceTests-\(UInt64.random(in: 0...UInt64.max)).sqlite"
        defer { for suffix in ["", "-wal", "-shm"] { unlink(path + suffix) } }
        let store = try SQLiteTokenStore(path: path, tokenizerIdentity: Engine.tokenizerIdentity, access: .readWrite)
        #expect(try store.knowsAny(of: [1]) == nil)
        try store.rememberMessageIDs([1, 2], at: 100, expireBefore: 0)
        #expect(try store.knowsAny(of: [3, 2]) == true)
        #expect(try store.knowsAny(of: [3]) == false)
        try store.rememberMessageIDs([3], at: 200, expireBefore: 150)
        #expect(try store.knowsAny(of: [1]) == false)
        #expect(try store.knowsAny(of: [3]) == true)
    }
}
