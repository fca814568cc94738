import Foundation
import PitchEngine
import PitchMessage
import PitchStore
import PitchTokenizer
import Testing

/// The pipe filter as procmail and Dovecot run it: bytes in, the same bytes plus one field out, exit 0.
@Suite struct FilterTests {
    /// Matched by Unicode scalars: as Characters, "\r\n" is one grapheme that `[^\r\n]` would swallow.
    static var statusPattern: Regex<(Substring, Substring)> {
        #/^X-Pitch-Status: (pitch|unsure|ham), score=[01]\.\d{4}, version=pitchfilter-[^\r\n]+\r?\n/#
            .matchingSemantics(.unicodeScalar)
    }

    struct Case: CustomTestStringConvertible, Sendable {
        var name: String
        var input: String
        /// The output with our field taken out again.
        var rest: String
        var testDescription: String { name }
    }

    static let cases: [Case] = [
        Case(name: "LF", input: "Subject: hi\nFrom: a@example.com\n\nHello\n",
             rest: "Subject: hi\nFrom: a@example.com\n\nHello\n"),
        Case(name: "CRLF", input: "Subject: hi\r\n\r\nHello\r\n", rest: "Subject: hi\r\n\r\nHello\r\n"),
        Case(name: "forged fields removed", input: "X-Pitch-Status: ham, score=0.0000\nSubject: hi\n"
                + "X-Pitch-Reasons: none\n\nX-Pitch-Status: in the body stays\n",
             rest: "Subject: hi\n\nX-Pitch-Status: in the body stays\n"),
        // Found by an audit: a forged record of a Subject tag took the sender's own words off the Subject.
        Case(name: "forged tag record", input: "X-Pitch-Status: ham, tagged=Re:\nFrom: a@b.example\n"
                + "Subject: Re: lunch\nx-pitch-status: pitch, tagged=Re: lunch\n\nare we still on for lunch\n",
             rest: "From: a@b.example\nSubject: Re: lunch\n\nare we still on for lunch\n"),
        Case(name: "no final newline", input: "Subject: hi\n\nno newline", rest: "Subject: hi\n\nno newline"),
        Case(name: "headers only", input: "Subject: hi\n", rest: "Subject: hi\n"),
        Case(name: "8-bit and NUL bytes", input: "Subject: Grüße\n\na\u{0}b ü\n", rest: "Subject: Grüße\n\na\u{0}b ü\n"),
    ]

    @Test(arguments: cases)
    func tagsAndKeepsEveryOtherByte(_ c: Case) throws {
        let scratch = try Scratch()
        let run = try Run.pitchfilter(["filter", "--db", scratch.path("none.sqlite")], stdin: Array(c.input.utf8))
        #expect(run.status == 0)
        #expect(run.stderr.isEmpty)
        let output = run.text
        let match = try #require(output.prefixMatch(of: Self.statusPattern), "\(output)")
        #expect(String(output[match.range.upperBound...]) == c.rest)
    }

    @Test func envelopeLineStaysFirst() throws {
        let scratch = try Scratch()
        let input = "From sender@example.com Mon Jan  1 00:00:00 2024\nSubject: hi\n\nbody\n"
        let run = try Run.pitchfilter(["filter", "--db", scratch.path("none.sqlite")], stdin: Array(input.utf8))
        let lines = run.text.split(separator: "\n", omittingEmptySubsequences: false)
        #expect(lines[0] == "From sender@example.com Mon Jan  1 00:00:00 2024")
        #expect(lines[1].hasPrefix("X-Pitch-Status: "))
        #expect(lines[2...].joined(separator: "\n") == "Subject: hi\n\nbody\n")
    }

    @Test func corruptDatabasePassesTheMessageThroughUnchanged() throws {
        let scratch = try Scratch()
        let db = try scratch.write("bad.sqlite", String(repeating: "not a database ", count: 100))
        let input = Array("Subject: hi\n\nHello\n".utf8)
        let run = try Run.pitchfilter(["filter", "--db", db], stdin: input)
        #expect(run.status == 0)
        #expect(run.stdout == input)
        #expect(run.stderr.hasPrefix("pitchfilter: passed through unchanged: "))
        #expect(run.stderr.split(separator: "\n").count == 1)
    }

    /// Found by an audit: procmail delivered our field alone for a bare-CR message that began with a forged one.
    @Test func aMessageWithBareCRLineEndsPassesThroughUnchanged() throws {
        let scratch = try Scratch()
        let input = Array("X-Pitch-Status: ham\rFrom: Bob <bob@example.org>\rSubject: Contract\r\rHi,\rBob\r".utf8)
        let run = try Run.pitchfilter(["filter", "--db", scratch.path("none.sqlite")], stdin: input)
        #expect(run.status == 0)
        #expect(run.stdout == input)
        #expect(run.stderr == "pitchfilter: passed through unchanged: lines end in bare CR, not LF or CRLF\n")
    }

    @Test func emptyInputGivesOnlyOurField() throws {
        let scratch = try Scratch()
        let run = try Run.pitchfilter(["filter", "--db", scratch.path("none.sqlite")])
        #expect(run.status == 0)
        #expect(run.text.wholeMatch(of: Self.statusPattern) != nil)
    }

    @Test func oversizeMessagePassesThroughUnchanged() throws {
        let scratch = try Scratch()
        var input = Array("Subject: big\n\n".utf8)
        input += [UInt8](repeating: UInt8(ascii: "x"), count: (32 << 20) + 10)
        let run = try Run.pitchfilter(["filter", "--db", scratch.path("none.sqlite")], stdin: input)
        #expect(run.status == 0)
        #expect(run.stdout == input)
        #expect(run.stderr.contains("larger than 32 MiB"))
    }

    @Test func worksWithAnEmptyEnvironment() throws {
        let scratch = try Scratch()
        let run = try Run.pitchfilter(["filter"], stdin: Array("Subject: hi\n\nHello\n".utf8),
                                      environment: ["HOME": scratch.url.path])
        #expect(run.status == 0)
        #expect(run.text.hasPrefix("X-Pitch-Status: "))
        #expect(run.text.hasSuffix("Subject: hi\n\nHello\n"))
    }
}

/// Found in review: a read error is not the end of the message.
@Suite struct FilterInputErrorTests {
    @Test func unreadableStandardInputWritesNothingAndFails() throws {
        let scratch = try Scratch()
        // A directory as standard input: read(2) fails with EISDIR.
        let run = try Run.shell("'\(Run.executable.path)' filter --db '\(scratch.path("db"))' < '\(scratch.url.path)'")
        #expect(run.status == 75)
        #expect(run.stdout.isEmpty)
        #expect(run.stderr.hasPrefix("pitchfilter: cannot read the message: "))
    }
}

/// Found by an audit of the README: a failed write ended with status 74 and no word on standard error.
@Suite struct FilterOutputErrorTests {
    @Test func aFailedWriteSaysWhyAndFails() throws {
        let scratch = try Scratch()
        let message = scratch.path("message.eml")
        try Data("Subject: hi\n\nHello\n".utf8).write(to: URL(fileURLWithPath: message))
        for database in [scratch.path("db"), "postgres://nowhere/db"] {  // tagged, then passed through
            let run = try Run.shell(
                "'\(Run.executable.path)' filter --db '\(database)' < '\(message)' > /dev/full")
            #expect(run.status == 74)
            #expect(run.stderr.hasSuffix("pitchfilter: cannot write the message to standard output (No space left on "
                + "device); exit status 74, so the caller keeps its copy\n"))
        }
    }
}

/// The pipe filter remembers each message's skeleton once it has written the message out.
@Suite struct FilterTemplateMemoryTests {
    static func letter(from sender: String) -> [UInt8] {
        Array("""
            From: <\(sender)>
            To: <maya@brightfield.example>
            Subject: quick question

            Hi Maya,
            we help growing teams cut their cloud bill without changing any code, and most of our customers see
            results within two weeks. Would you be open to a short call next week to see whether it fits?

            """.utf8)
    }

    @Test func aFilteredMessageIsRecordedAndItsTwinFromAnotherSenderSeesIt() throws {
        let scratch = try Scratch()
        let db = scratch.url.appendingPathComponent("db.sqlite").path
        let message = scratch.url.appendingPathComponent("m.eml")
        try Data(Self.letter(from: "seed@seed.example")).write(to: message)
        #expect(try Run.pitchfilter(["train", "--db", db, "--ham", message.path]).status == 0)
        let first = try Run.pitchfilter(["filter", "--db", db], stdin: Self.letter(from: "dan@slotwise.example"))
        #expect(first.status == 0 && first.stderr.isEmpty)
        let store = try SQLiteTokenStore(path: db, tokenizerIdentity: Engine.tokenizerIdentity, access: .readOnly)
        let engine = Engine(store: nil, starter: nil, templates: store)
        let twin = Message(bytes: Self.letter(from: "amy@leadrocket.example"))
        let tokens = try engine.tokens(of: twin, keepingTexts: true).texts.filter { $0.hasPrefix("tmpl:") }
        #expect(tokens == ["tmpl:others-2"])  // the trained message and the filtered one
    }

    /// A fresh database's memory is empty, yet one training run of a folder of form letters must teach what the
    /// template tokens mean: each copy is judged against the copies before it in the run.
    @Test func oneTrainingRunTeachesTheTemplateTokensOfItsOwnCopies() throws {
        let scratch = try Scratch()
        let db = scratch.path("db.sqlite")
        let folder = scratch.url.appendingPathComponent("pitches")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        // Read in name order: three senders, then the first sender's second copy to the same recipient.
        for (name, sender) in [("1", "dan@slotwise.example"), ("2", "amy@leadrocket.example"),
                               ("3", "raj@growthly.example"), ("4", "dan@slotwise.example")] {
            var letter = Self.letter(from: sender)
            letter += Array("Reference \(name)\n".utf8)  // a different message each time, same skeleton
            try Data(letter).write(to: folder.appendingPathComponent(name))
        }
        #expect(try Run.pitchfilter(["train", "--db", db, "--pitch", folder.path]).status == 0)

        let store = try SQLiteTokenStore(path: db, tokenizerIdentity: Engine.tokenizerIdentity, access: .readOnly)
        let names = ["tmpl:others-0", "tmpl:others-1", "tmpl:others-2", "tmpl:same-note"]
        let (counts, totals) = try store.counts(of: names.map { TokenID(hashing: $0) })
        #expect(totals.pitch == 4)
        // 1: nothing before it. 2: dan. 3: dan and amy. 4: amy and raj besides dan himself, who sent it before.
        #expect(counts.map(\.pitch) == [0, 1, 2, 1])
        #expect(counts.map(\.ham) == [0, 0, 0, 0])

        // The first copy was learned with no template token; forgotten now, when the memory holds its twins, it
        // must not take theirs away.
        #expect(try Run.pitchfilter(["train", "--db", db, "--forget", folder.appendingPathComponent("1").path])
            .status == 0)
        let after = try SQLiteTokenStore(path: db, tokenizerIdentity: Engine.tokenizerIdentity, access: .readOnly)
        #expect(try after.counts(of: names.map { TokenID(hashing: $0) }).counts.map(\.pitch) == [0, 1, 2, 1])
        #expect(try after.counts(of: []).totals.pitch == 3)
    }

    /// A run reads the memory's sightings of its own messages' bands only; a later run of one message still sees
    /// what earlier runs recorded, and a memory holding only other texts still counts as a memory.
    @Test func aLaterTrainingRunOfOneMessageSeesWhatEarlierRunsRecorded() throws {
        let scratch = try Scratch()
        let db = scratch.path("db.sqlite")
        let other = try scratch.write("other.eml", "From: <news@paper.example>\nTo: <maya@brightfield.example>\n"
            + "Subject: today\n\n" + String(repeating: "the weather and the markets and the games of today ", count: 8)
            + "\n")
        #expect(try Run.pitchfilter(["train", "--db", db, "--ham", other]).status == 0)
        var files: [String] = []
        for (name, sender) in [("1", "dan@slotwise.example"), ("2", "amy@leadrocket.example")] {
            let path = scratch.url.appendingPathComponent(name).path
            try Data(Self.letter(from: sender)).write(to: URL(fileURLWithPath: path))
            files.append(path)
        }
        for file in files { #expect(try Run.pitchfilter(["train", "--db", db, "--pitch", file]).status == 0) }

        let store = try SQLiteTokenStore(path: db, tokenizerIdentity: Engine.tokenizerIdentity, access: .readOnly)
        let names = ["tmpl:others-0", "tmpl:others-1"]
        // 1: the memory held the newspaper's text only. 2: dan's copy, recorded by the run before.
        #expect(try store.counts(of: names.map { TokenID(hashing: $0) }).counts.map(\.pitch) == [1, 1])
    }

    /// With a contact book, the run tells a stranger's copy of a text others sent from a colleague's.
    @Test func oneTrainingRunTellsAStrangersCopyFromAColleagues() throws {
        let scratch = try Scratch()
        let db = scratch.path("db.sqlite")
        let sent = try scratch.write("sent.eml", "From: <maya@brightfield.example>\nTo: <jo@brightfield.example>\n"
            + "Subject: lunch\n\nNoon?\n")
        #expect(try Run.pitchfilter(["contacts", "import", "--db", db, sent]).status == 0)
        let pitches = scratch.url.appendingPathComponent("pitches")
        let ham = scratch.url.appendingPathComponent("ham")
        for folder in [pitches, ham] { try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true) }
        try Data(Self.letter(from: "dan@slotwise.example")).write(to: pitches.appendingPathComponent("1"))
        try Data(Self.letter(from: "amy@leadrocket.example")).write(to: pitches.appendingPathComponent("2"))
        try Data(Self.letter(from: "boss@brightfield.example")).write(to: ham.appendingPathComponent("3"))
        #expect(try Run.pitchfilter(["train", "--db", db, "--pitch", pitches.path, "--ham", ham.path]).status == 0)

        let store = try SQLiteTokenStore(path: db, tokenizerIdentity: Engine.tokenizerIdentity, access: .readOnly)
        let names = ["tmpl:others-1", "tmpl:others-2", "tmpl:stranger-others"]
        let (counts, _) = try store.counts(of: names.map { TokenID(hashing: $0) })
        // Amy's copy is a second stranger's; the boss, at a domain the owner writes to, sent the third.
        #expect(counts.map(\.pitch) == [1, 0, 1])
        #expect(counts.map(\.ham) == [0, 1, 0])
    }
}
