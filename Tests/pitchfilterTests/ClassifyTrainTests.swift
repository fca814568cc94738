import Foundation
@testable import pitchfilter
import PitchClassifier
import PitchEngine
import PitchStore
import PitchTokenizer
import Testing

/// classify, train and stats as a person types them.
@Suite struct ClassifyTrainTests {
    static let pitch = """
        From: Growth Team <growth@leads.example>
        To: maya@example.com
        Subject: Quick question about your recruiting system

        Hi ,

        Thanks for connecting! Are you looking to enhance your recruiting system? If so, we can help!
        Do you have 15 minutes next week? Just bumping this to the top of your inbox.

        """

    static let ham = """
        From: Sam Ortiz <sam@example.org>
        To: maya@example.com
        Subject: Re: lunch on Friday

        Friday works for me. The usual place at 12:30? I'll bring the notes from the planning meeting.

        Sam

        """

    /// A correspondent stays one while any of their messages is trained as ham: correcting one of two (a pitch
    /// they forwarded, say) must not make them a stranger; correcting the other does.
    @Test func aCorrectionRemovesASenderOnlyWithTheirLastHam() throws {
        let scratch = try Scratch()
        let db = scratch.path("db.sqlite")
        let first = try scratch.write("first.eml", "From: Dana <dana@partner.example>\nSubject: Friday\n\nStill on for Friday?\n")
        let second = try scratch.write("second.eml", "From: dana@partner.example\nSubject: Fwd: offer\n\nSaw this.\n")
        #expect(try Run.pitchfilter(["train", "--db", db, "--ham", first, second]).status == 0)
        #expect(try Run.pitchfilter(["train", "--db", db, "--pitch", second]).text
            == "learned 0, already known 0, moved 1, forgotten 0, not known 0\n")
        #expect(try Run.pitchfilter(["contacts", "list", "--db", db]).text.hasPrefix("dana@partner.example ham "))
        #expect(try Run.pitchfilter(["train", "--db", db, "--forget", first]).status == 0)
        #expect(try Run.pitchfilter(["contacts", "list", "--db", db]).text == "")
    }

    /// A user's first training is often their pitches folder alone. The header fields every one of those pitches
    /// has (Date, Message-ID, one recipient) were then read as pitch evidence against no ham at all, and most of
    /// the user's ham was flagged: here 83 of samples/heldout's 100 ham, after its 100 pitches; and after its ham
    /// alone, none of its pitches. Until both classes have messages, the starter model scores alone
    /// (`ModelSchedule.scoredOwnTotals`), and the verdicts are those out of the box. (The training's history still
    /// counts: the ham's senders become contacts.)
    @Test(arguments: MessageClass.allCases)
    func trainingOneClassAloneLeavesTheOtherAsTheStarterModelScoresIt(trained: MessageClass) throws {
        let folder = trained.rawValue
        let heldout = EvalTests.samples.deletingLastPathComponent().appendingPathComponent("heldout")
        let scratch = try Scratch()
        let db = scratch.path("db.sqlite")
        let untrained = try Run.pitchfilter(["classify", "--db", db, heldout.appendingPathComponent("ham").path,
                                             heldout.appendingPathComponent("pitch").path]).text
        #expect(try Run.pitchfilter(["train", "--db", db, "--\(folder)",
                                     heldout.appendingPathComponent(folder).path]).status == 0)
        let other = heldout.appendingPathComponent(trained == .pitch ? "ham" : "pitch").path
        let verdicts = try Run.pitchfilter(["classify", "--db", db, other]).text.split(separator: "\n")
        #expect(verdicts.count == 100)
        // As out of the box: no ham flagged, or the pitches flagged as many as then.
        let flagged = verdicts.filter { $0.hasPrefix("pitch ") }.count
        let flaggedUntrained = untrained.split(separator: "\n").filter { $0.hasPrefix("pitch ") && $0.contains(other) }
        #expect(flagged == flaggedUntrained.count, "\(flagged) flagged, \(flaggedUntrained.count) out of the box")
    }

    /// A user's mail trained as ham beside a single pitch: the words all of that mail shares (the owner's name, the
    /// company's) stood in 100 ham and 1 pitch, and against the starter model's counts read as ham in every pitch
    /// sent there. samples/heldout's pitches flagged: 99 out of the box, 94 after its 100 ham and one pitch were
    /// trained; with the user's ham weighed as many as the pitches (`ModelSchedule.ownHamWeight`), 97.
    @Test func aMailboxOfHamBesideOnePitchFlagsNearlyWhatTheStarterModelFlags() throws {
        let heldout = EvalTests.samples.deletingLastPathComponent().appendingPathComponent("heldout")
        let pitches = heldout.appendingPathComponent("pitch")
        let scratch = try Scratch()
        let db = scratch.path("db.sqlite")
        func flagged() throws -> Int {
            let verdicts = try Run.pitchfilter(["classify", "--db", db, pitches.path]).text.split(separator: "\n")
            #expect(verdicts.count == 100)  // one line for each of the set's pitches
            return verdicts.filter { $0.hasPrefix("pitch ") }.count
        }
        let untrained = try flagged()
        #expect(untrained >= 95, "\(untrained) flagged out of the box")
        #expect(try Run.pitchfilter(["train", "--db", db, "--ham", heldout.appendingPathComponent("ham").path,
                                     "--pitch", pitches.appendingPathComponent("h-p-001.eml").path]).status == 0)
        let trained = try flagged()
        #expect(trained >= untrained - 2, "\(trained) flagged, \(untrained) out of the box")
    }

    /// The user's ham is weighed down beside the starter model while it outnumbers the user's pitches
    /// (`ModelSchedule.ownHamWeight`): an explanation that showed "ham 4" for a word scored as one message's worth
    /// read as four times the evidence it was. Both numbers are shown, and `--json` has the weighed one.
    @Test func anExplanationShowsTheHamCountAsItWasWeighed() throws {
        let scratch = try Scratch()
        let db = scratch.path("db.sqlite")
        let pitch = try scratch.write("pitch.eml", Self.pitch)
        for (index, day) in ["Monday", "Tuesday", "Wednesday", "Thursday"].enumerated() {
            try scratch.write("ham/\(index).eml", """
                From: Sam Ortiz <sam@example.org>
                To: maya@example.com
                Subject: zorblaxian rota

                The zorblaxian rota for \(day) is on the shared drive.

                """)
        }
        #expect(try Run.pitchfilter(["train", "--db", db, "--pitch", pitch, "--ham", scratch.path("ham")]).status == 0)
        let message = try scratch.write("new.eml", """
            From: Sam Ortiz <sam@example.org>
            To: maya@example.com
            Subject: zorblaxian

            zorblaxian

            """)
        // One pitch beside four ham: each ham weighs a quarter; the starter model has no such word.
        let text = try Run.pitchfilter(["classify", "--db", db, "--explain", message]).text
        let lines = text.split(separator: "\n").map { String($0.drop { $0 == " " }) }
        #expect(lines.contains { $0.hasSuffix("  pitch 0 ham 4 (weighed 1)  subj:zorblaxian") }, "\(text)")
        // The sender's address is a local token, the user's alone and scored against the user's own totals, unweighed.
        #expect(lines.contains { $0.hasSuffix("  pitch 0 ham 4  from:sam@example.org") }, "\(text)")
        let json = try Run.pitchfilter(["classify", "--db", db, "--explain", "--json", message])
        let object = try #require(try JSONSerialization.jsonObject(with: Data(json.stdout)) as? [String: Any])
        let tokens = try #require(object["tokens"] as? [[String: Any]])
        let subject = try #require(tokens.first { $0["token"] as? String == "subj:zorblaxian" })
        #expect(subject["ham"] as? Int == 4)
        #expect(subject["weighed_ham"] as? Double == 1)
        // A count the weighing left alone is shown once, and is the same number in JSON.
        #expect(!lines.contains { $0.contains("ham 0 (weighed") })
        let address = try #require(tokens.first { $0["token"] as? String == "from:sam@example.org" })
        #expect(address["weighed_ham"] as? Double == 4)
        #expect(tokens.allSatisfy { ($0["ham"] as? Int) == 0 ? ($0["weighed_ham"] as? Double) == 0 : true })
    }

    /// A folder whose mail is in subfolders gives no messages: `train` learns the rest, says which request gave
    /// none, and fails, as `classify` does. It learned nothing with status 0 before, and a pitches folder that read
    /// so trained the ham alone, which is held back unseen (`ModelSchedule.scoredOwnTotals`).
    /// A database moved away under a running `train` (a restore's `mv`) took what the run learned with it: the run
    /// says so, and does not go on to say what it learned.
    @Test func aDatabaseReplacedUnderTheRunIsAnErrorWithoutATally() throws {
        let scratch = try Scratch()
        let db = scratch.path("db.sqlite")
        let process = Process()
        process.executableURL = Run.executable
        process.arguments = ["train", "--db", db, "--pitch", "-"]
        process.environment = ProcessInfo.processInfo.environment.filter { !$0.key.hasPrefix("PITCHFILTER_") }
        let input = Pipe(), output = Pipe(), errors = Pipe()
        (process.standardInput, process.standardOutput, process.standardError) = (input, output, errors)
        try process.run()
        // The run opens the database, its writer's connection and its reader's, before it reads standard input:
        // wait until it holds the file twice.
        func holdsDatabase() -> Bool {
            let fds = "/proc/\(process.processIdentifier)/fd"
            return ((try? FileManager.default.contentsOfDirectory(atPath: fds)) ?? []).filter {
                (try? FileManager.default.destinationOfSymbolicLink(atPath: fds + "/" + $0)) == db
            }.count == 2
        }
        for _ in 0..<6_000 where !holdsDatabase() { usleep(10_000) }  // 60 s, for a loaded machine
        #expect(holdsDatabase())
        try scratch.write("replacement.sqlite", "")
        #expect(rename(scratch.path("replacement.sqlite"), db) == 0)
        input.fileHandleForWriting.write(Data(Self.pitch.utf8))
        try input.fileHandleForWriting.close()
        let out = output.fileHandleForReading.readDataToEndOfFile()
        let err = errors.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        #expect(process.terminationStatus == 3)
        #expect(out.isEmpty)
        #expect(String(decoding: err, as: UTF8.self).contains("was removed or replaced while it was open"))
    }

    /// Found by an audit: nothing but a new database forgot a correspondent (a `contacts import` of the wrong
    /// folder, say). `contacts remove` does, and says what it did not know; a database not there yet is not made.
    /// The sender's own address, copied (a Cc to oneself), is never one (found by an audit: known, it vouched for
    /// pitches forged in the owner's name).
    @Test func contactsRemoveForgetsCorrespondents() throws {
        let scratch = try Scratch()
        let db = scratch.path("db.sqlite")
        let sent = try scratch.write("sent.eml", "From: me@own.example\nTo: Ann <ann@partner.example>, bob@partner.example\n"
            + "Cc: carl@other.example, Me <ME@own.example.>\nSubject: hi\n\nhello\n")
        #expect(try Run.pitchfilter(["contacts", "import", "--db", db, sent]).status == 0)
        let run = try Run.pitchfilter(["contacts", "remove", "--db", db, "ANN@partner.example", "@other.example",
                                       "dan@partner.example"])
        #expect(run.status == 0)
        #expect(run.text == "removed 2 contacts (with 1 address at the domains removed); not known: dan@partner.example\n")
        // The database named before the subcommand's name, as admins write it too (found by an audit); given on
        // both sides, the last wins.
        let list = try Run.pitchfilter(["contacts", "--db", scratch.path("other.sqlite"), "list", "--db", db,
                                        "--domains"])
        #expect(list.text.split(separator: "\n").map { $0.split(separator: " ")[0] }
            == ["bob@partner.example", "@partner.example"])
        let none = try Run.pitchfilter(["contacts", "remove", "--db", scratch.path("none.sqlite"), "x@y.example"])
        #expect(none.status == 0)
        #expect(none.text == "removed 0 contacts; not known: x@y.example\n")
        #expect(!FileManager.default.fileExists(atPath: scratch.path("none.sqlite")))
        // An address and its domain given together: the domain went with the address, and was known.
        let together = try Run.pitchfilter(["contacts", "remove", "--db", db, "@partner.example", "bob@partner.example"])
        #expect(together.text == "removed 1 contact\n")
        for bad in ["bob", "@gmail.com"] {
            let refused = try Run.pitchfilter(["contacts", "remove", "--db", db, bad])
            #expect(refused.status == 64)
            #expect(refused.stderr.hasPrefix("Error: \(bad) is "))
        }
    }

    @Test func aRequestThatFindsNoMessagesFailsTheTraining() throws {
        let scratch = try Scratch()
        let db = scratch.path("db.sqlite")
        try scratch.write("pitch/2026/1.eml", Self.pitch)
        let ham = try scratch.write("ham/1.eml", Self.ham)
        let run = try Run.pitchfilter(["train", "--db", db, "--pitch", scratch.path("pitch"), "--ham", ham])
        #expect(run.status == 3)
        #expect(run.text == "learned 1, already known 0, moved 0, forgotten 0, not known 0\n")
        #expect(run.stderr.contains("1 subdirectory not read (2026)"))
        #expect(run.stderr.contains("cannot read \(scratch.path("pitch")): no messages found"))
        #expect(try Run.pitchfilter(["train", "--db", db, "--pitch", scratch.path("pitch/2026")]).status == 0)
        // A path that could not be read is said once, not again as a request that found nothing.
        let missing = try Run.pitchfilter(["train", "--db", db, "--pitch", scratch.path("none"), "--ham", ham])
        #expect(missing.status == 3)
        #expect(missing.stderr.contains("cannot read \(scratch.path("none")): "))
        #expect(!missing.stderr.contains("no messages found"))
    }

    /// An emptied Junk folder, an empty Maildir and an mbox after its expunge hold nothing to learn, which is no
    /// failure (found by an audit: a nightly `train` of an emptied folder exited 3 every night). Said as a note;
    /// `classify` still fails on them, having nothing to judge.
    @Test func anEmptyFolderOrMboxIsNothingToLearnAndNoFailure() throws {
        let scratch = try Scratch()
        let db = scratch.path("db.sqlite")
        let ham = try scratch.write("ham/1.eml", Self.ham)
        try FileManager.default.createDirectory(atPath: scratch.path("junk"), withIntermediateDirectories: true)
        for folder in ["cur", "new", "tmp"] {
            try FileManager.default.createDirectory(atPath: scratch.path("maildir/\(folder)"),
                                                    withIntermediateDirectories: true)
        }
        let mbox = try scratch.write("expunged.mbox", "")
        let empties = [scratch.path("junk"), scratch.path("maildir"), mbox]
        let run = try Run.pitchfilter(["train", "--db", db, "--pitch"] + empties + ["--ham", ham])
        #expect(run.status == 0)
        #expect(run.text == "learned 1, already known 0, moved 0, forgotten 0, not known 0\n")
        #expect(run.stderr == "pitchfilter: note: \(scratch.path("junk")): no messages found, nothing learned from it\n"
            + "pitchfilter: note: \(scratch.path("maildir")): no messages found, nothing learned from it\n"
            + "pitchfilter: note: \(mbox): the file is empty, nothing learned from it\n")
        let contacts = try Run.pitchfilter(["contacts", "import", "--db", db, scratch.path("junk")])
        #expect(contacts.status == 0)
        #expect(contacts.text == "read 0 messages, 0 new contacts\n")
        for empty in empties {
            #expect(try Run.pitchfilter(["classify", "--db", db, empty]).status == 3)
        }
    }

    /// Found by an audit: a PDF and Thunderbird's .msf index in a mail folder were learned as ham. They are
    /// skipped with a note (every Thunderbird folder has an .msf: a nightly `train` must not fail on it), on
    /// standard input too; `classify` names them as unread.
    @Test func aFileThatIsNoMailIsSkippedWithANote() throws {
        let scratch = try Scratch()
        let db = scratch.path("db.sqlite")
        try scratch.write("ham/1.eml", Self.ham)
        let pdf = try scratch.write("ham/doc.pdf", "%PDF-1.7\n1 0 obj\n")
        let msf = try scratch.write("ham/Inbox.msf", "// <!-- <mdb:mork:z v=\"1.4\"/> -->\n")
        let run = try Run.pitchfilter(["train", "--db", db, "--ham", scratch.path("ham")])
        #expect(run.status == 0)
        #expect(run.text == "learned 1, already known 0, moved 0, forgotten 0, not known 0\n")
        #expect(run.stderr == "pitchfilter: note: \(msf): a Thunderbird index (Mork), not a mail message, nothing "
            + "learned from it\npitchfilter: note: \(pdf): a PDF document, not a mail message, nothing learned from it\n")
        let piped = try Run.pitchfilter(["train", "--db", db, "--pitch", "-"], stdin: Array("%PDF-1.7\n".utf8))
        #expect(piped.status == 0)
        #expect(piped.text == "learned 0, already known 0, moved 0, forgotten 0, not known 0\n")
        #expect(try Run.pitchfilter(["classify", "--db", db, pdf]).status == 3)
    }

    @Test func trainingIsIdempotentAndMovesBetweenClasses() throws {
        let scratch = try Scratch()
        let db = scratch.path("db/pitchfilter.sqlite")
        let pitch = try scratch.write("pitch.eml", Self.pitch)
        let ham = try scratch.write("ham.eml", Self.ham)

        var run = try Run.pitchfilter(["train", "--db", db, "--pitch", pitch, "--ham", ham])
        #expect(run.status == 0)
        #expect(run.text == "learned 2, already known 0, moved 0, forgotten 0, not known 0\n")

        run = try Run.pitchfilter(["train", "--db", db, "--pitch", pitch])
        #expect(run.text == "learned 0, already known 1, moved 0, forgotten 0, not known 0\n")

        run = try Run.pitchfilter(["train", "--db", db, "--ham", pitch])
        #expect(run.text == "learned 0, already known 0, moved 1, forgotten 0, not known 0\n")

        run = try Run.pitchfilter(["train", "--db", db, "--forget", pitch, pitch])
        #expect(run.text == "learned 0, already known 0, moved 0, forgotten 1, not known 1\n")

        run = try Run.pitchfilter(["stats", "--db", db])
        #expect(run.status == 0)
        #expect(run.text.contains("messages: pitch 0, ham 1\n"))
        #expect(run.text.contains("learned messages: 1\n"))
        // The pitch's sender, learned as a correspondent with it as ham, went again when it was forgotten; the
        // pitch's skeleton is recorded once (one sighting, a row for each of its 4 bands) however often it was
        // trained, and the ham is too short to have one.
        #expect(run.text.contains("known correspondents: 1\n"))
        #expect(try Run.pitchfilter(["contacts", "list", "--db", db]).text.hasPrefix("sam@example.org ham "))
        #expect(run.text.contains("template sightings: 1 (last 30 days)\n"))
        #expect(run.text.contains("agreement with the starter model: not measured (too little training)\n"))
        // Ham alone: the starter model scores alone until a pitch is trained too.
        #expect(run.text.contains(
            "model: the starter model alone (own training counts once both classes have messages)\n"))
        #expect(try Run.pitchfilter(["train", "--db", db, "--pitch", pitch]).status == 0)
        let both = try Run.pitchfilter(["stats", "--db", db]).text
        #expect(both.contains("model: own training plus the starter model (until 500 of each class are trained)\n"))
        #expect(!both.contains("own ham weight"))  // 1 of each
        // More ham than pitches: the ham is weighed down to the pitches' number (`ModelSchedule.ownHamWeight`).
        let more = try (1...3).map { try scratch.write("more-\($0).eml", "From: kim\($0)@example.net\nSubject: r\($0)\n\nok \($0)\n") }
        #expect(try Run.pitchfilter(["train", "--db", db, "--ham"] + more).status == 0)
        #expect(try Run.pitchfilter(["stats", "--db", db]).text.contains(
            "own ham weight: 0.25 each beside the starter model (more ham trained than pitches)\n"))
    }

    /// `train` measures how far the training agrees with the starter model, and `stats` says what it makes of it:
    /// cold pitches against business mail agree.
    @Test func trainingMeasuresItsAgreementWithTheStarterModel() throws {
        let scratch = try Scratch()
        let db = scratch.path("pitchfilter.sqlite")
        let campaign = EvalTests.samples.deletingLastPathComponent().appendingPathComponent("campaign")
        let run = try Run.pitchfilter(["train", "--db", db, "--pitch", campaign.appendingPathComponent("pitch").path,
                                       "--ham", campaign.appendingPathComponent("ham").path])
        #expect(run.status == 0)
        let stats = try Run.pitchfilter(["stats", "--db", db]).text
        let line = try #require(stats.split(separator: "\n").first { $0.hasPrefix("agreement with the starter") })
        #expect(line.hasSuffix("(settings for pitches against business mail)"), "\(line)")
    }

    /// Found by an audit: a database that failed to open still got "database: PATH" on stdout, the first line
    /// of a report, before the error; a script reading the report could not tell.
    @Test func statsOfABrokenDatabaseGivesTheErrorAlone() throws {
        let scratch = try Scratch()
        let garbage = try scratch.write("garbage.sqlite", String(repeating: "not a database\n", count: 400))
        let run = try Run.pitchfilter(["stats", "--db", garbage])
        #expect(run.status == 3)
        #expect(run.stdout.isEmpty)
        #expect(run.stderr.contains("is not a pitchfilter database"))
    }

    @Test func tagAndEnvelopeDoNotMakeAnotherMessage() throws {
        let scratch = try Scratch()
        let db = scratch.path("pitchfilter.sqlite")
        let plain = try scratch.write("plain.eml", Self.ham)
        let wrapped = try scratch.write("wrapped.eml", "From sam@example.org Mon Jan  1 00:00:00 2024\n"
            + "X-Pitch-Status: ham, score=0.0100, version=x\n"
            + Self.ham.replacingOccurrences(of: "\n", with: "\r\n"))
        _ = try Run.pitchfilter(["train", "--db", db, "--ham", plain])
        let run = try Run.pitchfilter(["train", "--db", db, "--ham", wrapped])
        #expect(run.text == "learned 0, already known 1, moved 0, forgotten 0, not known 0\n")
    }

    @Test func exitStatusFollowsTheVerdictForOneMessage() throws {
        let scratch = try Scratch()
        let db = scratch.path("pitchfilter.sqlite")
        let pitch = try scratch.write("pitch.eml", Self.pitch)
        let ham = try scratch.write("ham.eml", Self.ham)
        _ = try Run.pitchfilter(["train", "--db", db, "--pitch", pitch, "--ham", ham])

        let pitchRun = try Run.pitchfilter(["classify", "--db", db, pitch])
        #expect(pitchRun.status == 0)
        #expect(pitchRun.text.hasPrefix("pitch "))
        #expect(pitchRun.text.hasSuffix(" \(pitch)\n"))

        let hamRun = try Run.pitchfilter(["classify", "--db", db, "-"], stdin: Array(Self.ham.utf8))
        #expect(hamRun.status == 1)
        #expect(hamRun.text.hasPrefix("ham "))
        #expect(hamRun.text.hasSuffix(" -\n"))

        let both = try Run.pitchfilter(["classify", "--db", db, pitch, ham])
        #expect(both.status == 0)
        #expect(both.text.split(separator: "\n").map { $0.split(separator: " ")[0] } == ["pitch", "ham"])

        let missing = try Run.pitchfilter(["classify", "--db", db, scratch.path("nope.eml")])
        #expect(missing.status == 3)
        #expect(missing.stderr.contains("no such file or directory"))
    }

    /// Without a database there is no contact book, but a colleague is still a colleague, as with a book that
    /// knows others.
    @Test func aColleagueIsKnownWithoutADatabase() throws {
        let scratch = try Scratch()
        let note = try scratch.write("note.eml", """
            From: Dana Ruiz <dana@example.com>
            To: maya@example.com
            Subject: Friday

            Are we still on for the planning meeting?

            """)
        let stranger = try scratch.write("stranger.eml", Self.ham)
        let sent = try scratch.write("sent.eml", "From: maya@example.com\nTo: bob@partner.example\nSubject: Hi\n\nHi Bob.\n")
        let withBook = scratch.path("book.sqlite")
        #expect(try Run.pitchfilter(["contacts", "import", "--db", withBook, sent]).status == 0)
        for db in [scratch.path("none/pitchfilter.sqlite"), withBook] {
            let run = try Run.pitchfilter(["classify", "--db", db, "--json", "--explain", note, stranger])
            let lines = run.text.split(separator: "\n").map(String.init)
            #expect(lines.count == 2)
            #expect(lines.first?.contains("\"rel:own-domain\"") == true)
            #expect(lines.last?.contains("rel:own-domain") == false)
        }
    }

    @Test func jsonLinesWithExplanation() throws {
        let scratch = try Scratch()
        let db = scratch.path("pitchfilter.sqlite")
        let pitch = try scratch.write("pitch.eml", Self.pitch)
        let ham = try scratch.write("ham.eml", Self.ham)
        _ = try Run.pitchfilter(["train", "--db", db, "--pitch", pitch, "--ham", ham])
        let run = try Run.pitchfilter(["classify", "--db", db, "--json", "--explain", pitch])
        let object = try #require(try JSONSerialization.jsonObject(with: Data(run.stdout)) as? [String: Any])
        #expect(object["path"] as? String == pitch)
        #expect(object["verdict"] as? String == "pitch")
        #expect((object["score"] as? Double ?? 0) >= 0.99)
        // Two trained messages are far below the threshold, so the starter model's counts are added: the
        // tokens carry counts from both, strongest first.
        let tokens = try #require(object["tokens"] as? [[String: Any]])
        #expect(!tokens.isEmpty)
        // Past the 25 strongest, only signals.
        #expect(tokens.dropFirst(Classify.explainedTokens).allSatisfy { Classify.isSignal($0["token"] as? String ?? "") })
        let strengths = tokens.compactMap { token in
            (token["probability"] as? Double).flatMap { p in (token["weight"] as? Double).map { $0 * abs(p - 0.5) } }
        }
        #expect(strengths.count == tokens.count)
        #expect(strengths == strengths.sorted(by: >))
        #expect(tokens.allSatisfy { $0["token"] is String && $0["pitch"] is Int && $0["ham"] is Int })
        // A young database is scored with the starter's settings, where the text's words count fully.
        #expect(tokens.allSatisfy { $0["weight"] as? Double == 1 })
    }

    /// Found by an audit: with --json, a path that could not be read gave a line on stderr only, so a program
    /// reading the lines could not tell it from a path it never asked about.
    @Test func anUnreadablePathGivesAnErrorLineInJSON() throws {
        let scratch = try Scratch()
        let ham = try scratch.write("ham.eml", Self.ham)
        let missing = scratch.path("missing.eml")
        let run = try Run.pitchfilter(["classify", "--db", scratch.path("db.sqlite"), "--json", missing, ham])
        #expect(run.status == 3)
        let objects = try run.text.split(separator: "\n").map {
            try #require(try JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any])
        }
        #expect(objects.count == 2)
        #expect(objects.first?["path"] as? String == missing)
        #expect(objects.first?["error"] as? String == "no such file or directory")
        // Every line has the keys issue 3 names (found by an audit): verdict "error", score null.
        #expect(objects.first?["verdict"] as? String == "error")
        #expect(objects.first?["score"] is NSNull)
        #expect(objects.last?["path"] as? String == ham)
        #expect(objects.last?["verdict"] as? String == "ham")
    }

    /// Found by an audit: a path that held no message beside one that held some was dropped unsaid. `classify`
    /// gave no line for it and exited 1 as for one ham; `contacts import` of a Maildir whose sent mail is in its
    /// `.Sent` read nothing and exited 0. Each names the path and exits 3, as `train` did only when all of a
    /// class's paths were empty; `train` and `contacts import` only when the path's mail is in folders they do
    /// not read: an empty folder is nothing to learn, and said as a note (`anEmptyFolderOrMboxIs…`).
    @Test(arguments: [["classify", "--json"], ["train", "--ham"], ["contacts", "import"]])
    func aPathWithNoMessageAmongOthersIsNamed(command: [String]) throws {
        let scratch = try Scratch()
        let ham = try scratch.write("ham.eml", Self.ham)
        let empty = scratch.path("empty")
        try FileManager.default.createDirectory(atPath: empty, withIntermediateDirectories: false)
        // The command's words, then the database, then its option for the paths, if it has one.
        let words = command.prefix { !$0.hasPrefix("-") }
        let run = try Run.pitchfilter(words + ["--db", scratch.path("db.sqlite")] + command.dropFirst(words.count)
            + [empty, ham])
        let learns = command[0] != "classify"
        #expect(run.status == (learns ? 0 : 3))
        #expect(run.stderr == (learns ? "pitchfilter: note: \(empty): no messages found, nothing learned from it\n"
                                      : "pitchfilter: cannot read \(empty): no messages found\n"))
        if learns {
            // Its mail in a subfolder, not read: a failure to learn what was meant.
            try scratch.write("empty/2026/1.eml", Self.ham)
            let nested = try Run.pitchfilter(words + ["--db", scratch.path("db.sqlite")]
                + command.dropFirst(words.count) + [empty, ham])
            #expect(nested.status == 3)
            #expect(nested.stderr.hasSuffix("pitchfilter: cannot read \(empty): no messages found\n"))
        }
        switch command[0] {
        case "classify":
            // The path's line in its place, before the message of the path after it.
            let lines = try run.text.split(separator: "\n").map {
                try #require(try JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any])
            }
            #expect(lines.map { $0["path"] as? String } == [empty, ham])
            #expect(lines.map { $0["verdict"] as? String } == ["error", "ham"])
            #expect(lines.first?["error"] as? String == "no messages found")
        case "train": #expect(run.text == "learned 1, already known 0, moved 0, forgotten 0, not known 0\n")
        default: #expect(run.text == "read 1 message, 1 new contact\n")
        }
    }

    /// Found by an audit: a folder's subfolders are not read (a tree is given folder by folder), and nothing said
    /// so: an archive of yearly folders trained nothing with status 0.
    /// Found by an audit: a folder whose mail is all in subfolders, with a README beside them, learned nothing and
    /// exited 0 (without the README, 3): the file that is no mail does not make the folder one that was read.
    @Test func aFolderOfSubfoldersAndNoMailBesideThemFailsTheTraining() throws {
        let scratch = try Scratch()
        _ = try scratch.write("set/pitch/a.eml", Self.pitch)
        _ = try scratch.write("set/ham/b.eml", Self.ham)
        _ = try scratch.write("set/README.md", "# About this set\n\nTwo folders.\n")
        let run = try Run.pitchfilter(["train", "--db", scratch.path("db.sqlite"), "--ham", scratch.path("set")])
        #expect(run.status == 3)
        #expect(run.text == "learned 0, already known 0, moved 0, forgotten 0, not known 0\n")
        #expect(run.stderr.contains("\(scratch.path("set")): no messages found"), "\(run.stderr)")
        #expect(run.stderr.contains("\(scratch.path("set/README.md")): no mail message"), "\(run.stderr)")
    }

    /// Names as the directory holds them, read in place: the longest a name may be, and the shortest.
    @Test func entryNamesAreReadWhole() throws {
        let scratch = try Scratch()
        let long = String(repeating: "n", count: 251) + ".eml"
        for name in [long, "a", "bb.eml"] { _ = try scratch.write("box/" + name, Self.ham + name + "\n") }
        let run = try Run.pitchfilter(["classify", "--db", scratch.path("db.sqlite"), scratch.path("box")])
        #expect(run.text.split(separator: "\n").map { $0.split(separator: " ").last.map(String.init) ?? "" }
            == ["a", "bb.eml", long].map { scratch.path("box/" + $0) })
    }

    @Test func subdirectoriesAreNamedAsNotRead() throws {
        let scratch = try Scratch()
        _ = try scratch.write("archive/a.eml", Self.ham)
        _ = try scratch.write("archive/2024/b.eml", Self.ham + "again\n")
        let run = try Run.pitchfilter(["train", "--db", scratch.path("db.sqlite"), "--ham", scratch.path("archive")])
        #expect(run.status == 0)
        #expect(run.text == "learned 1, already known 0, moved 0, forgotten 0, not known 0\n")
        #expect(run.stderr == "pitchfilter: note: \(scratch.path("archive")): 1 subdirectory not read (2024); give it "
            + "as a path of its own\n")
    }

    /// Found by an audit: a Maildir's own folders (.Sent, .Archive) were skipped unsaid, being hidden names.
    @Test func aMaildirsFoldersAreNamedAsNotRead() throws {
        let scratch = try Scratch()
        _ = try scratch.write("Maildir/new/1.a.host", Self.ham)
        _ = try scratch.write("Maildir/cur/.keep", "")
        _ = try scratch.write("Maildir/.Sent/cur/2.b.host", Self.ham + "again\n")
        _ = try scratch.write("Maildir/.Archive/new/3.c.host", Self.ham + "and again\n")
        _ = try scratch.write("Maildir/.Archive/cur/.keep", "")
        _ = try scratch.write("Maildir/.notafolder/x", "")
        let run = try Run.pitchfilter(["train", "--db", scratch.path("db.sqlite"), "--ham", scratch.path("Maildir/")])
        #expect(run.status == 0)
        #expect(run.text == "learned 1, already known 0, moved 0, forgotten 0, not known 0\n")
        #expect(run.stderr == "pitchfilter: note: \(scratch.path("Maildir")): 2 Maildir folders not read (.Archive, "
            + ".Sent); give each as a path of its own\n")
    }

    /// The lines come in the order of the paths, a failed one in its place (it came before the message read
    /// before it, as the reader reported failures ahead of its batch).
    @Test func linesFollowThePathsOrderWithAFailureInItsPlace() throws {
        let scratch = try Scratch()
        let ham = try scratch.write("ham.eml", Self.ham)
        let missing = scratch.path("missing.eml")
        for json in [true, false] {
            let run = try Run.pitchfilter(["classify", "--db", scratch.path("db.sqlite")] + (json ? ["--json"] : [])
                                          + [ham, missing, ham])
            #expect(run.status == 3)
            let lines = run.text.split(separator: "\n").map(String.init)
            if json {
                #expect(lines.map { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
                    .map { $0?["path"] as? String } == [ham, missing, ham])
            } else {
                // Without --json a failure goes to standard error only.
                #expect(lines.count == 2 && lines.allSatisfy { $0.hasSuffix(" " + ham) })
            }
        }
    }

    /// Found by an audit: the last message of an mbox kept the empty line its writer adds, so it was another
    /// message than itself once more mail was appended, or read from its own file; and ">From " quoting stayed.
    @Test func aMessageCountsOnceWhetherReadFromAGrowingMboxOrItsOwnFile() throws {
        let scratch = try Scratch()
        let file = try scratch.write("one.eml", Self.pitch + "From what I hear, you are busy.\n")
        let envelope = "From a@example.com Mon Jan  1 00:00:00 2024\n"
        let mbox = try scratch.write("box.mbox", envelope + Self.pitch + ">From what I hear, you are busy.\n\n")
        let db = scratch.path("db.sqlite")
        #expect(try Run.pitchfilter(["train", "--db", db, "--pitch", mbox]).text == "learned 1, already known 0, moved 0, forgotten 0, not known 0\n")
        try scratch.write("box.mbox", try String(contentsOfFile: mbox, encoding: .utf8) + envelope + Self.ham + "\n")
        #expect(try Run.pitchfilter(["train", "--db", db, "--pitch", mbox]).text == "learned 1, already known 1, moved 0, forgotten 0, not known 0\n")
        #expect(try Run.pitchfilter(["train", "--db", db, "--pitch", file]).text == "learned 0, already known 1, moved 0, forgotten 0, not known 0\n")
    }

    /// Found by an audit: mutt marks a message read by rewriting its Status field, Dovecot keeps X-UID and
    /// X-Keywords in an mbox, and a nightly `train` of the folder counted each rewritten message again. A mail
    /// store's fields are no part of the message (`MailStoreFields`).
    @Test func aMessageAMailStoreRewroteIsTheSameMessage() throws {
        let scratch = try Scratch()
        let envelope = "From a@example.com Mon Jan  1 00:00:00 2024\n"
        let box = try scratch.write("inbox", envelope + "Status: O\n" + Self.pitch + "\n"
                                    + envelope + "X-UID: 1\nStatus: O\n" + Self.ham + "\n")
        let db = scratch.path("db.sqlite")
        #expect(try Run.pitchfilter(["train", "--db", db, "--ham", box]).text == "learned 2, already known 0, moved 0, forgotten 0, not known 0\n")
        try scratch.write("inbox", envelope + "Status: RO\nX-Status: A\n" + Self.pitch + "\n"
                          + envelope + "X-UID: 1\nX-Keywords: $Label1\nStatus: RO\n" + Self.ham + "\n")
        #expect(try Run.pitchfilter(["train", "--db", db, "--ham", box]).text == "learned 0, already known 2, moved 0, forgotten 0, not known 0\n")
        // Filed to another folder by Thunderbird, and saved as a file: one message, moved.
        let filed = try scratch.write("junk", "From - Mon Jan  1 00:00:00 2024\nX-Mozilla-Status: 0001\n" + Self.pitch)
        #expect(try Run.pitchfilter(["train", "--db", db, "--pitch", filed]).text == "learned 0, already known 0, moved 1, forgotten 0, not known 0\n")
        #expect(try Run.pitchfilter(["train", "--db", db, "--pitch", try scratch.write("saved.eml", Self.pitch)]).text
            == "learned 0, already known 1, moved 0, forgotten 0, not known 0\n")
        #expect(try Run.pitchfilter(["stats", "--db", db]).text.contains("messages: pitch 1, ham 1\n"))
    }

    /// Found by an audit: a FIFO given as a message or as the database blocked for ever in open(2).
    @Test func aFIFOIsNeitherAMessageNorADatabase() throws {
        let scratch = try Scratch()
        let fifo = scratch.path("fifo")
        #expect(mkfifo(fifo, 0o600) == 0)
        let pitch = try scratch.write("p.eml", Self.pitch)
        let binary = Run.executable.path
        let asMessage = try Run.shell("timeout 120 '\(binary)' classify --db '\(scratch.path("none.sqlite"))' '\(fifo)'")
        #expect(asMessage.status == 3)
        #expect(asMessage.stderr == "pitchfilter: cannot read \(fifo): not a regular file\n")
        let asDatabase = try Run.shell("timeout 120 '\(binary)' classify --db '\(fifo)' '\(pitch)'")
        #expect(asDatabase.status == 3)
        #expect(asDatabase.stderr.contains("it is not a regular file"))
    }

    /// Found by audits: `stats` and `eval`, then `train`, `contacts import` and `backup`, printed their answer with
    /// `print`, which drops a failed write, and exited 0 with it lost; `contacts list` and `classify` failed without
    /// a word.
    @Test(arguments: ["stats", "eval", "train", "contacts", "contacts-list", "backup", "classify"])
    func anAnswerThatCannotBeWrittenIsAFailure(command: String) throws {
        let scratch = try Scratch()
        let pitches = scratch.path("pitch"), ham = scratch.path("ham"), db = scratch.path("db.sqlite")
        for (index, bytes) in [Self.pitch, Self.pitch].enumerated() { try scratch.write("pitch/\(index).eml", bytes) }
        for (index, bytes) in [Self.ham, Self.ham].enumerated() { try scratch.write("ham/\(index).eml", bytes) }
        #expect(try Run.pitchfilter(["train", "--db", db, "--ham", ham]).status == 0)
        func arguments(_ run: String) -> String {
            switch command {
            case "stats": "stats --db '\(db)'"
            case "eval": "eval --folds 2 --pitch '\(pitches)' --ham '\(ham)'"
            case "train": "train --db '\(db)' --pitch '\(pitches)'"
            case "contacts": "contacts import --db '\(db)' '\(ham)'"
            case "contacts-list": "contacts list --db '\(db)'"
            case "classify": "classify --db '\(db)' '\(ham)'"
            default: "backup --db '\(db)' '\(scratch.path("copy-\(run).sqlite"))'"
            }
        }
        let written = try Run.shell("'\(Run.executable.path)' \(arguments("written")) > /dev/null")
        #expect(written.status == 0)
        let full = try Run.shell("'\(Run.executable.path)' \(arguments("full")) > /dev/full")
        #expect(full.status == 3)
        #expect(full.stderr.hasSuffix("pitchfilter: cannot write to standard output: no space left on device\n"))
    }

    /// Found by an audit: a file whose name begins with "-h" was read as short options and printed the help with
    /// status 0, a pitch's to a script; any other such name was "Missing expected argument".
    @Test(arguments: ["-hello.eml", "-x.eml"])
    func aFileNameThatReadsAsShortOptionsIsAUsageError(name: String) throws {
        let scratch = try Scratch()
        try scratch.write(name, Self.ham)
        let binary = Run.executable.path, db = scratch.path("db.sqlite")
        let bare = try Run.shell("cd '\(scratch.path(""))' && '\(binary)' classify --db '\(db)' \(name)")
        #expect(bare.status == 64)
        #expect(bare.stdout.isEmpty)
        #expect(bare.stderr == "Error: unknown option '\(name)' (a file whose name begins with '-' is given as "
            + "./\(name), or after '--').\n")
        for given in ["./\(name)", "-- \(name)"] {
            let run = try Run.shell("cd '\(scratch.path(""))' && '\(binary)' classify --db '\(db)' \(given)")
            #expect(run.status == 1)
            #expect(run.text.hasPrefix("ham "))
        }
    }

    /// Found by an audit: a file whose name is not UTF-8 was skipped without a word.
    @Test func aFileWhoseNameIsNotUTF8IsReported() throws {
        let scratch = try Scratch()
        try scratch.write("Maildir/new/1.a.host", Self.pitch)
        let maildir = scratch.path("Maildir")
        #expect(try Run.shell("cp '\(maildir)/new/1.a.host' \"\(maildir)/new/1.b.h$(printf '\\366')st\"").status == 0)
        let run = try Run.pitchfilter(["classify", "--db", scratch.path("none.sqlite"), maildir + "/new"])
        #expect(run.status == 3)
        #expect(run.text == "pitch 0.9999 \(maildir)/new/1.a.host\n")
        #expect(run.stderr == "pitchfilter: cannot read \(maildir)/new/1.b.h\u{FFFD}st: its name is not UTF-8; "
            + "rename the file to read it\n")
        // Found by an audit: given as an argument, the same file was "no such file or directory".
        let given = try Run.shell("\(Run.executable.path) classify --db \(scratch.path("none.sqlite")) "
            + "\"\(maildir)/new/1.b.h$(printf '\\366')st\"")
        #expect(given.status == 3)
        #expect(given.stderr == "pitchfilter: cannot read \(maildir)/new/1.b.h\u{FFFD}st: its name is not UTF-8; "
            + "rename the file to read it\n")
    }

    /// Found by an audit: a database path that is not UTF-8 became another path, U+FFFD for its bytes; `train` made
    /// a new database in a new directory there and exited 0, and `filter` read the starter model alone, silently.
    @Test func aDatabasePathThatIsNotUTF8IsRefused() throws {
        let scratch = try Scratch()
        try scratch.write("pitch/1.eml", Self.pitch)
        #expect(try Run.shell("mkdir \"\(scratch.path("mail"))$(printf '\\351')\"").status == 0)
        let before = try FileManager.default.contentsOfDirectory(atPath: scratch.url.path).sorted()
        let db = "\"\(scratch.path("mail"))$(printf '\\351')/db.sqlite\""
        let refusal = "the database path from --db, \(scratch.path("mail"))\u{FFFD}/db.sqlite, is not UTF-8 (or "
            + "holds U+FFFD, which stands for bytes that are not): pitchfilter cannot open it as it is; give a path "
            + "whose names are UTF-8\n"
        let train = try Run.shell("'\(Run.executable.path)' train --db \(db) --pitch '\(scratch.path("pitch"))'")
        #expect(train.status == 3)
        #expect(train.stderr == "pitchfilter: " + refusal)
        let filter = try Run.shell("'\(Run.executable.path)' filter --db \(db) < '\(scratch.path("pitch/1.eml"))'")
        #expect(filter.status == 0)
        #expect(filter.text == Self.pitch)
        #expect(filter.stderr == "pitchfilter: passed through unchanged: " + refusal)
        #expect(try FileManager.default.contentsOfDirectory(atPath: scratch.url.path).sorted() == before)
        #expect(try Run.shell("ls -A \"\(scratch.path("mail"))$(printf '\\351')\"").text.isEmpty)
    }

    /// Found by an audit: a run while the database was read-only to its user left -wal and -shm files as
    /// read-only (SQLite gives them the database's mode), and once the database was writable again every write
    /// failed blaming "the file, its directory or the file system". Run as another user, since root may write
    /// anything.
    @Test func walAndShmFilesLeftReadOnlyAreNamed() throws {
        let scratch = try Scratch()
        let db = scratch.path("db.sqlite")
        try scratch.write("pitch/1.eml", Self.pitch)
        let ham = try scratch.write("ham/1.eml", Self.ham)
        #expect(try Run.pitchfilter(["train", "--db", db, "--pitch", scratch.path("pitch"), "--ham",
                                     scratch.path("ham")]).status == 0)
        try #require(chown(scratch.url.path, 4242, 4343) == 0 && chown(db, 4242, 4343) == 0 && chmod(db, 0o444) == 0)
        let asUser = "HOME='\(scratch.url.path)' setpriv --reuid=4242 --regid=4343 --clear-groups "
            + "'\(Run.executable.path)'"
        let filter = try Run.shell("\(asUser) filter --db '\(db)' < '\(ham)'")
        #expect(filter.status == 0 && filter.text.hasSuffix(Self.ham), "\(filter.stderr)")
        var info = stat()
        try #require(stat(db + "-shm", &info) == 0 && info.st_mode & 0o777 == 0o444, "no read-only -shm left")
        #expect(chmod(db, 0o644) == 0)
        let train = try Run.shell("\(asUser) train --db '\(db)' --ham '\(ham)'")
        #expect(train.status == 3)
        // The -wal is named too where the read-only run left one (else the failed run made it, writable).
        let left = [db + "-wal", db + "-shm"].filter { file in
            var info = stat()
            return stat(file, &info) == 0 && info.st_mode & 0o200 == 0
        }
        let (are, them) = left.count == 1 ? ("is", "it") : ("are", "them")
        #expect(train.stderr == "pitchfilter: cannot write database \(db): \(left.joined(separator: " and ")) \(are) "
            + "not writable by this user, though the database is (perhaps made while the database was read-only): "
            + "give \(them) the database's owner and mode (chown, chmod)\n")
        for file in left { #expect(chmod(file, 0o644) == 0) }
        #expect(try Run.shell("\(asUser) train --db '\(db)' --ham '\(ham)'").status == 0)
    }

    /// Found by an audit: a FIFO and a link to nothing in a folder were skipped without a word, and `train` exited 0.
    /// Each is named in its place in the folder's name order, its name shown safely.
    @Test func whatIsNeitherFileNorFolderIsReported() throws {
        let scratch = try Scratch()
        try scratch.write("mail/1.eml", Self.pitch)
        try scratch.write("mail/5.eml", "X-Another: copy\n" + Self.pitch)
        let folder = scratch.path("mail")
        #expect(mkfifo(folder + "/2.fifo", 0o600) == 0)
        #expect(symlink(scratch.path("gone.eml"), folder + "/3\n.link") == 0)
        #expect(symlink(folder + "/4.loop", folder + "/4.loop") == 0)
        let socket = try Run.shell("python3 -c \"import socket; socket.socket(socket.AF_UNIX).bind('\(folder)/6.sock')\"")
        #expect(socket.status == 0)
        let said = "pitchfilter: cannot read \(folder)/2.fifo: not a regular file but a FIFO\n"
            + "pitchfilter: cannot read \(folder)/3\\u{A}.link: a link to nothing\n"
            + "pitchfilter: cannot read \(folder)/4.loop: too many levels of symbolic links\n"
            + "pitchfilter: cannot read \(folder)/6.sock: not a regular file but a socket\n"
        let classified = try Run.pitchfilter(["classify", "--db", scratch.path("none.sqlite"), "--json", folder])
        #expect(classified.status == 3)
        #expect(classified.stderr == said)
        let paths = classified.text.split(separator: "\n").map { line in
            String(line.split(separator: "\"path\":\"").last!.split(separator: "\"").first!)
        }
        #expect(paths == ["1.eml", "2.fifo", "3\\n.link", "4.loop", "5.eml", "6.sock"].map { folder + "/" + $0 })
        let trained = try Run.pitchfilter(["train", "--db", scratch.path("db.sqlite"), "--pitch", folder])
        #expect(trained.status == 3)
        #expect(trained.text.hasPrefix("learned 2,"))
        #expect(trained.stderr == said)
        let imported = try Run.pitchfilter(["contacts", "import", "--db", scratch.path("db.sqlite"), folder])
        #expect(imported.status == 3)
        #expect(imported.stderr.hasPrefix(said))
    }

    /// Found by an audit: a newline in a file name split its line in two, and an escape sequence reached the
    /// terminal. The text output escapes them; `--json` has the name exact.
    @Test func aFileNameCannotForgeALine() throws {
        let scratch = try Scratch()
        let name = "a\nham 0.0000 b\u{1B}[31m.eml"
        let path = try scratch.write(name, Self.pitch)
        let run = try Run.pitchfilter(["classify", "--db", scratch.path("none.sqlite"), path])
        #expect(run.text == "pitch 0.9999 \(scratch.path("a"))\\u{A}ham 0.0000 b\\u{1B}[31m.eml\n")
        let json = try Run.pitchfilter(["classify", "--json", "--db", scratch.path("none.sqlite"), path])
        let line = try JSONSerialization.jsonObject(with: Data(json.stdout)) as? [String: Any]
        #expect(line?["path"] as? String == path)
    }

    /// Standard input is one message, envelope line or not: a message piped with its "From " line often has
    /// unquoted "From " lines in its body (found in review: an mbox reading cut it in two, and the exit status of
    /// one message's classification became that of several).
    @Test func standardInputIsOneMessageEvenWithAnEnvelopeLine() throws {
        let scratch = try Scratch()
        let message = "From a@example.com Mon Jan  1 00:00:00 2024\n" + Self.ham
            + "\nFrom 10:00 to 12:00 on Mon Jan  1 2024 the office is closed.\n"
        let run = try Run.pitchfilter(["classify", "--db", scratch.path("none.sqlite"), "-"], stdin: Array(message.utf8))
        #expect(run.text.split(separator: "\n").count == 1)
        #expect(run.text.hasSuffix(" -\n"))
        #expect(run.status == 1)
    }

    /// Found by an audit: classify and train read every file whole, so a 400 MB file took 415 MB. Messages over
    /// 32 MiB are skipped, as the filter and the service leave them alone, and an mbox is read a piece at a time:
    /// a message past the limit in the middle of one is read through, not kept, and the rest still read.
    @Test func messagesOverTheLimitAreSkippedAndTheRestOfTheirMboxRead() throws {
        let scratch = try Scratch()
        let line = String(repeating: "x", count: 79) + "\n"
        let huge = "Subject: big\n\n" + String(repeating: line, count: (40 << 20) / 80)
        let envelope = "From a@example.com Mon Jan  1 00:00:00 2024\n"
        let mbox = try scratch.write("big.mbox", envelope + Self.pitch + "\n" + envelope + huge + "\n"
            + envelope + Self.ham + "\n")
        let single = try scratch.write("big.eml", huge)
        // Found by an audit: the first message of an mbox was named by the file alone when skipped.
        let first = try scratch.write("first.mbox", envelope + huge + "\n" + envelope + Self.ham + "\n")
        let only = try scratch.write("only.mbox", envelope + huge)
        let run = try Run.pitchfilter(["classify", "--db", scratch.path("none.sqlite"), mbox, single, first, only])
        #expect(run.status == 3)
        #expect(run.text.split(separator: "\n").map { $0.split(separator: " ").last! } == [
            "\(mbox):1", "\(mbox):3", "\(first):2"])
        let skipped = "larger than 32 MiB, skipped (the filter and the service leave such mail alone)"
        #expect(run.stderr == "pitchfilter: cannot read \(mbox):2: \(skipped)\n"
            + "pitchfilter: cannot read \(single): \(skipped)\n"
            + "pitchfilter: cannot read \(first):1: \(skipped)\n"
            + "pitchfilter: cannot read \(only): \(skipped)\n")
    }

    /// Found by an audit: one message given as both classes ended as ham whatever the order typed, and nothing
    /// said so.
    @Test func aMessageGivenAsTwoClassesIsNamed() throws {
        let scratch = try Scratch()
        let first = try scratch.write("a.eml", Self.pitch)
        let again = try scratch.write("copy/a.eml", Self.pitch)
        let db = scratch.path("db.sqlite")
        let run = try Run.pitchfilter(["train", "--db", db, "--ham", first, "--pitch", again])
        #expect(run.status == 0)
        #expect(run.text == "learned 1, already known 0, moved 1, forgotten 0, not known 0\n")
        #expect(run.stderr == "pitchfilter: note: \(first) is the message \(again) again, given as --pitch there and "
                + "as --ham here: requests are carried out pitch, then ham, then forget, so the last of these stands\n")
        let check = try Run.pitchfilter(["train", "--db", db, "--ham", first])
        #expect(check.text == "learned 0, already known 1, moved 0, forgotten 0, not known 0\n")
        // The same class twice is no contradiction.
        let twice = try Run.pitchfilter(["train", "--db", db, "--ham", first, again])
        #expect(twice.stderr.isEmpty)
    }

    /// Found by an audit: a ham moved to pitch found its sender known through its own learning as ham, and taught
    /// `rel:known-address` as pitch evidence; moved back, the model was not what it had been.
    @Test func aCorrectionIsNotItsOwnEvidenceOfAKnownSender() throws {
        let scratch = try Scratch()
        let db = scratch.path("db.sqlite")
        // Someone else's ham first, so that the book knows somebody and the sender below is a first contact.
        let other = try scratch.write("other.eml", Self.ham
            .replacingOccurrences(of: "sam@example.org", with: "kim@elsewhere.example")
            .replacingOccurrences(of: "lunch on Friday", with: "the minutes"))
        let message = try scratch.write("m.eml", Self.ham)
        #expect(try Run.pitchfilter(["train", "--db", db, "--ham", other]).status == 0)
        let names = ["rel:known-address", "rel:first-contact"]
        func relationshipCounts() throws -> [TokenCounts] {
            let store = try SQLiteTokenStore(path: db, tokenizerIdentity: Engine.tokenizerIdentity, access: .readOnly)
            return try store.counts(of: names.map { TokenID(hashing: $0) }).counts
        }
        #expect(try Run.pitchfilter(["train", "--db", db, "--ham", message]).status == 0)
        let learned = try relationshipCounts()
        #expect(learned == [TokenCounts(pitch: 0, ham: 0), TokenCounts(pitch: 0, ham: 1)])
        #expect(try Run.pitchfilter(["train", "--db", db, "--pitch", message]).text.contains("moved 1"))
        #expect(try relationshipCounts() == [TokenCounts(pitch: 0, ham: 0), TokenCounts(pitch: 1, ham: 0)])
        #expect(try Run.pitchfilter(["train", "--db", db, "--ham", message]).text.contains("moved 1"))
        #expect(try relationshipCounts() == learned)
    }

    /// The addresses (and domains) `contacts list` prints, in its order.
    static func knownContacts(_ db: String, _ options: String...) throws -> [String] {
        try Run.pitchfilter(["contacts", "list", "--db", db] + options).text.split(separator: "\n")
            .map { $0.split(separator: " ").first.map(String.init) ?? "" }
    }

    /// Found by an audit: two of one sender's former ham moved to pitch in one run each found the sender still
    /// known through the other, and taught `rel:known-address` as pitch evidence twice, though the run left the
    /// sender unknown. Moved one run at a time, or trained so from the start, they teach a first contact.
    @Test func formerHamMovedTogetherIsJudgedByTheBookTheRunLeaves() throws {
        let scratch = try Scratch()
        let db = scratch.path("db.sqlite")
        let first = try scratch.write("first.eml", Self.ham)
        let second = try scratch.write("second.eml",
                                       Self.ham.replacingOccurrences(of: "lunch on Friday", with: "the minutes"))
        // Someone else stays known, so that the book is not empty and the sender is a first contact.
        let other = try scratch.write("other.eml", Self.ham
            .replacingOccurrences(of: "sam@example.org", with: "kim@elsewhere.example")
            .replacingOccurrences(of: "lunch on Friday", with: "your talk"))
        #expect(try Run.pitchfilter(["train", "--db", db, "--ham", first, second, other]).status == 0)
        #expect(try Run.pitchfilter(["train", "--db", db, "--pitch", first, second]).text
            == "learned 0, already known 0, moved 2, forgotten 0, not known 0\n")
        let names = ["rel:first-contact", "rel:known-address", "rel:known-domain"]
        let store = try SQLiteTokenStore(path: db, tokenizerIdentity: Engine.tokenizerIdentity, access: .readOnly)
        #expect(try store.counts(of: names.map { TokenID(hashing: $0) }).counts
            == [TokenCounts(pitch: 2, ham: 1), TokenCounts(pitch: 0, ham: 0), TokenCounts(pitch: 0, ham: 0)])
        #expect(try Self.knownContacts(db, "--domains") == ["kim@elsewhere.example", "@elsewhere.example"])
    }

    /// Found by an audit: a message given as ham and to forget in one run was forgotten (forget comes last), but
    /// its sender stayed known, and vouched for in the run's other messages.
    @Test func aMessageTheRunAlsoForgetsMakesNobodyKnown() throws {
        let scratch = try Scratch()
        let db = scratch.path("db.sqlite")
        let message = try scratch.write("m.eml", Self.ham)
        let other = try scratch.write("other.eml", Self.ham
            .replacingOccurrences(of: "sam@example.org", with: "kim@elsewhere.example")
            .replacingOccurrences(of: "lunch on Friday", with: "your talk"))
        let neighbour = try scratch.write("neighbour.eml", Self.ham
            .replacingOccurrences(of: "sam@example.org", with: "lee@example.org")
            .replacingOccurrences(of: "lunch on Friday", with: "the budget"))
        let run = try Run.pitchfilter(["train", "--db", db, "--ham", message, other, neighbour, "--forget", message])
        #expect(run.text == "learned 3, already known 0, moved 0, forgotten 1, not known 0\n")
        #expect(try Self.knownContacts(db) == ["kim@elsewhere.example", "lee@example.org"])
        // The neighbour was judged without the forgotten message: nobody at example.org was known to it.
        let names = ["rel:first-contact", "rel:known-address", "rel:known-domain"]
        let store = try SQLiteTokenStore(path: db, tokenizerIdentity: Engine.tokenizerIdentity, access: .readOnly)
        #expect(try store.counts(of: names.map { TokenID(hashing: $0) }).counts
            == [TokenCounts(pitch: 0, ham: 2), TokenCounts(pitch: 0, ham: 0), TokenCounts(pitch: 0, ham: 0)])
    }

    /// A new database trained in one run learns the relationship signal: each message is judged against the book
    /// as the run leaves it, apart from itself. Judged against the book before the run, which was empty, no message
    /// was a first contact or a known correspondent, and the filter later met tokens the training never taught.
    @Test func oneRunTeachesANewDatabaseWhoIsAStranger() throws {
        let scratch = try Scratch()
        let db = scratch.path("db.sqlite")
        let pitch = try scratch.write("pitch/1.eml", Self.pitch)
        _ = try scratch.write("ham/1.eml", Self.ham)
        _ = try scratch.write("ham/2.eml", Self.ham.replacingOccurrences(of: "lunch on Friday", with: "the minutes"))
        _ = try scratch.write("ham/3.eml", Self.ham  // someone who writes once: a first contact that was ham
            .replacingOccurrences(of: "sam@example.org", with: "kim@elsewhere.example")
            .replacingOccurrences(of: "lunch on Friday", with: "your talk"))
        _ = try scratch.write("ham/4.eml", Self.ham.replacingOccurrences(of: "sam@", with: "lee@"))
        let run = try Run.pitchfilter(["train", "--db", db, "--pitch", pitch, "--ham", scratch.path("ham")])
        #expect(run.text == "learned 5, already known 0, moved 0, forgotten 0, not known 0\n")
        let names = ["rel:first-contact", "rel:known-address", "rel:known-domain"]
        let store = try SQLiteTokenStore(path: db, tokenizerIdentity: Engine.tokenizerIdentity, access: .readOnly)
        #expect(try store.counts(of: names.map { TokenID(hashing: $0) }).counts
            == [TokenCounts(pitch: 1, ham: 1), TokenCounts(pitch: 0, ham: 2), TokenCounts(pitch: 0, ham: 1)])
    }

    @Test func anEmptyFileIsNoMessage() throws {
        let scratch = try Scratch()
        let empty = try scratch.write("empty.eml", "")
        let classify = try Run.pitchfilter(["classify", "--db", scratch.path("none.sqlite"), empty])
        #expect(classify.status == 3)
        #expect(classify.text.isEmpty)
        #expect(classify.stderr == "pitchfilter: cannot read \(empty): the file is empty\n")
    }

    /// Found by a check of the CLI from outside: a message whose lines end in bare CR (old Mac OS) was scored on
    /// nothing by `classify` and learned as one header line by `train`, while `filter` passed it on untagged. It is
    /// no message to any of them now, and each says so.
    @Test(arguments: [["classify", "--explain", "--db", "DB"], ["train", "--db", "DB", "--pitch"],
                      ["contacts", "import", "--db", "DB"]])
    func aMessageWhoseLinesEndInBareCRIsNotRead(command: [String]) throws {
        let scratch = try Scratch()
        let file = try scratch.write("mac.eml", Self.pitch.replacingOccurrences(of: "\n", with: "\r"))
        let db = scratch.path("db.sqlite")
        for path in [file, "-"] {
            let run = try Run.pitchfilter(command.map { $0 == "DB" ? db : $0 } + [path], stdin: Array(try String(contentsOfFile: file).utf8))
            #expect(run.status == 3)
            #expect(run.stderr == "pitchfilter: cannot read \(path): its lines end in bare CR, not LF or CRLF, so it "
                + "reads as one line; convert it first (tr '\\r' '\\n')\n")
        }
        if FileManager.default.fileExists(atPath: db) {
            let store = try SQLiteTokenStore(path: db, tokenizerIdentity: Engine.tokenizerIdentity, access: .readOnly)
            #expect(try store.statistics().totals == ClassTotals())
            #expect(try store.allContacts().isEmpty)
        }
    }

    /// `--db "$UNSET"` trained the default database; the pipe filter, which must not fail, leaves it to the
    /// parser too, and a non-zero status makes procmail and Dovecot keep their own copy.
    @Test(arguments: [["train", "--db", "", "--pitch"], ["classify", "--db", ""], ["filter", "--db", ""],
                      ["filter", "--db="]])
    func anEmptyDatabasePathIsRefused(arguments: [String]) throws {
        let scratch = try Scratch()
        let pitch = try scratch.write("p.eml", Self.pitch)
        let home = scratch.path("home")
        let run = try Run.pitchfilter(arguments + (arguments[0] == "filter" ? [] : [pitch]),
                                      stdin: Array(Self.pitch.utf8), environment: ["HOME": home, "PATH": "/usr/bin:/bin"])
        #expect(run.status == 64)
        #expect(run.text.isEmpty)
        #expect(run.stderr.contains(arguments.last == "--db=" ? "Missing value for '--db <path>'"
                                                              : "--db needs a path; an empty one is refused"))
        #expect(!FileManager.default.fileExists(atPath: home))
    }

    @Test func mboxAndMaildirAreReadMessageByMessage() throws {
        let scratch = try Scratch()
        let mbox = try scratch.write("box.mbox", "From a@example.com Mon Jan  1 00:00:00 2024\n" + Self.pitch
            + "\nFrom b@example.org Mon Jan  1 00:00:01 2024\n" + Self.ham)
        try scratch.write("Maildir/new/1.host", Self.ham)
        try scratch.write("Maildir/cur/2.host:2,S", Self.pitch)
        try scratch.write("Maildir/tmp/3.host", "half-delivered")
        let run = try Run.pitchfilter(["classify", "--db", scratch.path("none.sqlite"), mbox, scratch.path("Maildir")])
        let names = run.text.split(separator: "\n").map { String($0.split(separator: " ", maxSplits: 2)[2]) }
        #expect(names == [mbox + ":1", mbox + ":2", scratch.path("Maildir") + "/new/1.host",
                          scratch.path("Maildir") + "/cur/2.host:2,S"])
    }
}

@Suite struct StarterModelFreshnessTests {
    /// The model compiled in must be what the samples and this tokenizer give; otherwise the README's promise
    /// (first run works out of the box) silently decays.
    @Test func embeddedModelMatchesTheSamples() throws {
        let built = try StarterModelBuilder.build(pitch: [Samples.pitch], ham: [Samples.ham], sent: [Samples.sent])
        let embedded = try #require(StarterModel.embedded, "run Scripts/build-starter-model.sh")
        // The embedded text read back record by record and written again. Compared as one Bool: a failure would
        // otherwise print both models, megabytes of text.
        let matches = built.packedText() == embedded.packedText() && built.totals == embedded.totals
            && built.tokenizerIdentity == embedded.tokenizerIdentity
        #expect(matches, "samples or tokenizer changed: run Scripts/build-starter-model.sh")
    }

    /// Only what the samples say generalizes to other people's mail: words, subjects, form-letter signals and
    /// the header fields of list and bulk mail.
    @Test(arguments: [
        ("can help", true), ("you looking", true), (", would", true), ("subj:quick question", true),
        ("sig:greeting-blank", true), ("charset:us-ascii", false), ("fromdom:slotwise.example", false),
        ("rcvdip:209.85.205", false), ("hdr:x-mailer", false), ("url:calendly.example", false),
        ("href:meet", false), ("img:tiny", false), ("ct:text/plain", false),
        ("hdr:list-id", true), ("hdr:precedence", true), ("precedence:bulk", true), ("hdr:list-unsubscribe", false),
    ])
    func starterModelKeepsContentTokens(token: String, kept: Bool) {
        #expect(StarterModelBuilder.generalizes(token) == kept)
    }
}

@Suite struct SourceErrorTests {
    @Test func emptyStandardInputIsNoMessage() throws {
        let scratch = try Scratch()
        let classify = try Run.pitchfilter(["classify", "--db", scratch.path("db"), "-"])
        #expect(classify.status == 3)
        #expect(classify.stdout.isEmpty)
        #expect(classify.stderr == "pitchfilter: cannot read -: standard input is empty\n")
        // To `train`, a note, as an empty file is (found by an audit: a run fed nothing failed).
        let train = try Run.pitchfilter(["train", "--db", scratch.path("db"), "--ham", "-"])
        #expect(train.status == 0)
        #expect(train.stderr.contains("note: -: standard input is empty, nothing learned from it\n"))
        #expect(train.text == "learned 0, already known 0, moved 0, forgotten 0, not known 0\n")
    }

    /// Found by an audit: text without a header was refused from a file and classified and learned from standard
    /// input. The same from both, and a message with a header from standard input is still read.
    @Test(arguments: ["just text\nno header\n", "\nbody only after a blank line\n"])
    func textWithoutAHeaderIsNoMessageFromStandardInputEither(text: String) throws {
        let scratch = try Scratch()
        let file = try scratch.write("text.eml", text)
        for path in [file, "-"] {
            let classify = try Run.pitchfilter(["classify", "--db", scratch.path("db"), path], stdin: Array(text.utf8))
            #expect(classify.status == 3)
            #expect(classify.stdout.isEmpty)
            #expect(classify.stderr
                        == "pitchfilter: cannot read \(path): no mail message (its first line is no header field)\n")
            let train = try Run.pitchfilter(["train", "--db", scratch.path("db"), "--ham", path], stdin: Array(text.utf8))
            #expect(train.status == 0)
            #expect(train.text.hasPrefix("learned 0,"))
        }
        let mail = try Run.pitchfilter(["classify", "--db", scratch.path("db"), "-"],
                                       stdin: Array(("Subject: hello\n" + text).utf8))
        #expect(mail.text.hasSuffix(" -\n"))
    }

    /// Found by an audit: a run given only paths that are not there made the database all the same, empty, which
    /// switches the filter's template memory on. Said as before, and nothing made; with one path there, made.
    @Test func aRunGivenOnlyMissingPathsMakesNoDatabase() throws {
        let scratch = try Scratch()
        let db = scratch.path("new.sqlite")
        let (nope, nope2) = (scratch.path("nope.eml"), scratch.path("nope2.eml"))
        for (arguments, answer) in [(["train", "--ham", nope, "--forget", nope2],
                                     "learned 0, already known 0, moved 0, forgotten 0, not known 0\n"),
                                    (["contacts", "import", nope, nope2], "read 0 messages, 0 new contacts\n")] {
            let run = try Run.pitchfilter(arguments + ["--db", db])
            #expect(run.status == 3)
            #expect(run.text == answer)
            #expect(run.stderr == "pitchfilter: cannot read \(nope): no such file or directory\n"
                + "pitchfilter: cannot read \(nope2): no such file or directory\n")
            #expect(access(db, F_OK) != 0, "\(arguments[0]) made the database")
        }
        // A link to nothing, and a name under a file, are not there either (found in review).
        #expect(symlink(scratch.path("nothing"), scratch.path("dangling.eml")) == 0)
        let underAFile = scratch.path("new.sqlite-not/x.eml")
        _ = try scratch.write("new.sqlite-not", "a file")
        let odd = try Run.pitchfilter(["train", "--db", db, "--ham", scratch.path("dangling.eml"), underAFile])
        #expect(odd.status == 3)
        #expect(access(db, F_OK) != 0, "train made the database")
        let message = try scratch.write("there.eml", ClassifyTrainTests.ham)
        let run = try Run.pitchfilter(["train", "--db", db, "--ham", message, scratch.path("nope.eml")])
        #expect(run.status == 3)
        #expect(run.text == "learned 1, already known 0, moved 0, forgotten 0, not known 0\n")
        #expect(access(db, F_OK) == 0)
    }

    @Test func oneBadPathDoesNotStopTheOthers() throws {
        let scratch = try Scratch()
        let good = try scratch.write("mail/good.eml", ClassifyTrainTests.ham)
        try FileManager.default.createDirectory(atPath: scratch.path("mail/sub"), withIntermediateDirectories: true)
        let run = try Run.pitchfilter(["classify", "--db", scratch.path("db"), scratch.path("missing.eml"),
                                       scratch.path("mail")])
        #expect(run.status == 3)
        #expect(run.text.hasSuffix(" \(good)\n"))
        #expect(run.text.split(separator: "\n").count == 1)
        #expect(run.stderr.contains("missing.eml: no such file or directory"))
    }

    @Test func noMessagesAtAllIsAnError() throws {
        let scratch = try Scratch()
        try FileManager.default.createDirectory(atPath: scratch.path("empty"), withIntermediateDirectories: true)
        let run = try Run.pitchfilter(["classify", "--db", scratch.path("db"), scratch.path("empty")])
        #expect(run.status == 3)
        #expect(run.stderr.contains("no messages found"))
        // Found by an audit: with --json, a program reading the lines learned nothing of it.
        let json = try Run.pitchfilter(["classify", "--json", "--db", scratch.path("db"), scratch.path("empty")])
        #expect(json.status == 3)
        #expect(json.text == "{\"error\":\"no messages found\",\"path\":\"\(scratch.path("empty"))\",\"score\":null,"
                + "\"verdict\":\"error\"}\n")
    }
}

@Suite struct EvalTests {
    static let samples = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("samples/corpus")

    static func count(_ kind: String) throws -> Int {
        try FileManager.default.contentsOfDirectory(atPath: samples.appendingPathComponent(kind).path)
            .filter { !$0.hasPrefix(".") }.count
    }

    /// Figures in eval's and stats' lines: four decimals at most, unless a value inside (0, 1) would read as 0 or 1
    /// (found by an audit: cutoffs of 0.99999999 and 0.0000001 were shown as 1.0 and 0.0).
    @Test(arguments: [(0.9, "0.9"), (0.84123, "0.8412"), (1.0 / 3, "0.3333"), (0.99999999, "0.99999999"),
                      (0.0000001, "0.0000001"), (0.99996, "0.99996"), (1.0, "1.0"), (0.0, "0.0")])
    func figuresAreShortUnlessTheyWouldReadAsZeroOrOne(value: Double, shown: String) {
        #expect(Eval.short(value) == shown)
    }

    /// Found in review: the settings' help did not say what an option left out stands for. These are the values of
    /// `ClassifierParameters.default`, written out so that a change to them is seen here.
    @Test(arguments: [("--strength <s>", "0.2"), ("--prior <x>", "0.52"), ("--min-deviation <d>", "0.4"),
                      ("--pitch-cutoff <score>", "0.9"), ("--ham-cutoff <score>", "0.2"),
                      ("--text-weight <w>", "1/3 = 0.3333")])
    func helpShowsTheSettingsDefaults(option: String, shown: String) throws {
        let run = try Run.pitchfilter(["eval", "--help"])
        #expect(run.status == 0)
        // The help wraps its lines: compare with the whitespace made single spaces.
        let help = run.text.split(whereSeparator: { $0 == " " || $0 == "\n" }).joined(separator: " ")
        let entry = try #require(help.range(of: option + " ")).upperBound
        let rest = help[entry...]
        let opening = try #require(rest.range(of: "(default: "))
        #expect(!rest[..<opening.lowerBound].contains(" --"), "the first default after \(option) is another option's")
        let closing = try #require(rest[opening.upperBound...].firstIndex(of: ")"))
        #expect(rest[opening.upperBound..<closing] == shown)
    }

    @Test func crossValidatesTheSamplesAndReportsEveryFigure() throws {
        let run = try Run.pitchfilter(["eval", "--pitch", Self.samples.appendingPathComponent("pitch").path,
                                       "--ham", Self.samples.appendingPathComponent("ham").path, "--json"])
        #expect(run.status == 0)
        let object = try #require(try JSONSerialization.jsonObject(with: Data(run.stdout)) as? [String: Any])
        let pitch = try #require(object["pitch"] as? [String: Int])
        let ham = try #require(object["ham"] as? [String: Int])
        #expect(pitch.values.reduce(0, +) == (try Self.count("pitch")))
        #expect(ham.values.reduce(0, +) == (try Self.count("ham")))
        #expect(object["false_positives"] as? Int == ham["pitch"])
        #expect(object["false_negatives"] as? Int == pitch["ham"])
        #expect(object["folds"] as? Int == 5)
        // Each fold's model learned over 500 of each class, but of the very mail the starter model was built from:
        // it agrees with the starter, so the filter would still add the starter's counts.
        #expect(object["with_starter"] as? Bool == true)
        #expect((object["histogram"] as? [Any])?.count == 20)
        #expect(object["one_minus_auc_percent"] is Double)
        // Each class's mean lies within what its histogram allows, and pitches score higher than ham on average.
        let histogram = try #require(object["histogram"] as? [[String: Any]])
        for (key, counts) in [("pitch", pitch), ("ham", ham)] {
            let mean = try #require(object["mean_score_" + key] as? Double)
            let n = Double(counts.values.reduce(0, +))
            let low = histogram.reduce(0.0) { $0 + ($1["from"] as! Double) * Double($1[key] as! Int) } / n
            let high = histogram.reduce(0.0) { $0 + ($1["to"] as! Double) * Double($1[key] as! Int) } / n
            #expect(low <= mean && mean <= high, "\(key): \(mean) outside [\(low), \(high)]")
        }
        #expect(try #require(object["mean_score_pitch"] as? Double) > (try #require(object["mean_score_ham"] as? Double)) + 0.5)
    }

    /// Found by an audit: files given one by one (a shell glob) were folders of one message each, so all fell in
    /// fold 0 and every message came out unsure. They are one folder together, as their directory is.
    @Test func filesGivenOneByOneAreFoldedAsTheirDirectoryIs() throws {
        let scratch = try Scratch()
        let dev = Self.samples.deletingLastPathComponent().appendingPathComponent("dev")
        var files: [String: [String]] = [:]
        for kind in ["pitch", "ham"] {
            let names = try FileManager.default.contentsOfDirectory(atPath: dev.appendingPathComponent(kind).path)
                .filter { $0.hasSuffix(".eml") }.sorted().prefix(25)
            try FileManager.default.createDirectory(atPath: scratch.path(kind), withIntermediateDirectories: true)
            for name in names {
                let source = dev.appendingPathComponent(kind).appendingPathComponent(name).path
                try FileManager.default.copyItem(atPath: source, toPath: scratch.path(kind) + "/" + name)
            }
            // Reversed: the folds follow the names, not the order given.
            files[kind] = names.reversed().map { scratch.path(kind) + "/" + $0 }
        }
        // Without the starter model, which would score fold 0 well even with every message in it.
        let byDirectory = try Run.pitchfilter(["eval", "--json", "--without-starter", "--pitch", scratch.path("pitch"),
                                               "--ham", scratch.path("ham")])
        let byFile = try Run.pitchfilter(["eval", "--json", "--without-starter", "--pitch"] + files["pitch"]!
                                         + ["--ham"] + files["ham"]!)
        #expect(byDirectory.status == 0 && byFile.status == 0)
        #expect(byFile.stderr.isEmpty, "\(byFile.stderr)")
        #expect(byFile.text == byDirectory.text)
        let object = try #require(try JSONSerialization.jsonObject(with: Data(byFile.stdout)) as? [String: Any])
        #expect(try #require((object["pitch"] as? [String: Int])?["unsure"]) < 25)
    }

    /// The same message in both classes, or twice in one, is said: the figures count it as given.
    @Test func messagesGivenTwiceAreNamedInANote() throws {
        let scratch = try Scratch()
        let dev = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("samples/dev")
        for kind in ["pitch", "ham"] {
            try FileManager.default.createDirectory(atPath: scratch.path(kind), withIntermediateDirectories: true)
            for number in 1...4 {
                let name = String(format: "d1-\(kind == "pitch" ? "p" : "h")-%03d.eml", number)
                try FileManager.default.copyItem(atPath: dev.appendingPathComponent(kind + "/" + name).path,
                                                 toPath: scratch.path(kind + "/" + name))
            }
        }
        let alone = try Run.pitchfilter(["eval", "--folds", "2", "--pitch", scratch.path("pitch"), "--ham", scratch.path("ham")])
        #expect(alone.status == 0 && !alone.stderr.contains("note:"), "\(alone.stderr)")
        // A pitch filed in the ham too, and a ham saved twice (CRLF, an mbox envelope: the same message).
        try FileManager.default.copyItem(atPath: scratch.path("pitch/d1-p-001.eml"), toPath: scratch.path("ham/z-1.eml"))
        let ham = try String(contentsOfFile: scratch.path("ham/d1-h-002.eml"), encoding: .utf8)
        try scratch.write("ham/z-2.eml", ham.replacingOccurrences(of: "\n", with: "\r\n"))
        let run = try Run.pitchfilter(["eval", "--folds", "2", "--pitch", scratch.path("pitch"), "--ham", scratch.path("ham")])
        #expect(run.status == 0)
        #expect(run.stderr.contains("note: 1 message is given as both pitch and ham (the same message, by its digest): "
            + "no verdict can be right for both of its copies\n"), "\(run.stderr)")
        #expect(run.stderr.contains("note: 1 more copy of messages given in the same class: each counts as a message "
            + "of its own (train learns each message once)\n"), "\(run.stderr)")
        #expect(run.text.hasPrefix("2-fold cross-validation: 4 pitches, 6 ham;"))
        let replayed = try Run.pitchfilter(["eval", "--replay", "--folds", "2", "--pitch", scratch.path("pitch"),
                                            "--ham", scratch.path("ham")])
        #expect(replayed.stderr.contains("note: 1 message is given as both pitch and ham"), "\(replayed.stderr)")
        // A holdout scores its test sets alone: what repeats among the training sets is no concern, a test message
        // the model learned is.
        try FileManager.default.createDirectory(atPath: scratch.path("test"), withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: scratch.path("pitch/d1-p-002.eml"), toPath: scratch.path("test/p.eml"))
        try FileManager.default.copyItem(atPath: scratch.path("ham/d1-h-003.eml"), toPath: scratch.path("test/h.eml"))
        let holdout = try Run.pitchfilter(["eval", "--pitch", scratch.path("pitch"), "--ham", scratch.path("ham"),
                                           "--test-pitch", scratch.path("test/p.eml"),
                                           "--test-ham", scratch.path("test/h.eml")])
        #expect(holdout.status == 0)
        #expect(holdout.stderr.contains("note: 2 test messages are in the training sets too: the model is tested on "
            + "what it learned\n"), "\(holdout.stderr)")
        #expect(!holdout.stderr.contains("given as both") && !holdout.stderr.contains("more cop"), "\(holdout.stderr)")
    }

    /// Found in review: a file given twice got two numbers, so its copies fell in two folds and a model was tested
    /// on the message it had learned.
    @Test func aFileGivenTwiceHasOneFold() {
        let numbered = LooseFile.numbered([LooseFile("b.eml", 0), LooseFile("a.eml", 1), LooseFile("b.eml", 2),
                                           LooseFile("c.eml", 3)])
        #expect(numbered.map(\.position) == [0, 1, 2, 3])
        #expect(numbered.map(\.number) == [1, 0, 1, 2])
    }

    @Test func textReportHasTheConfusionTable() throws {
        let run = try Run.pitchfilter(["eval", "--folds", "3", "--pitch", Self.samples.appendingPathComponent("pitch").path,
                                       "--ham", Self.samples.appendingPathComponent("ham").path])
        #expect(run.status == 0)
        #expect(run.text.hasPrefix("3-fold cross-validation: \(try Self.count("pitch")) pitches, \(try Self.count("ham")) ham;"))
        #expect(run.text.contains("\nfalse positives (ham called pitch):  "))
        #expect(run.text.contains("\n1-AUC:   "))
        // Each count ends where its heading does (found by an audit: the rows stood five columns to the left).
        let lines = run.text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        let header = try #require(lines.firstIndex(of: "called as:   pitch  unsure     ham"))
        let ends = [18, 26, 34]
        for row in lines[(header + 1)...(header + 2)] {
            let chars = Array(row)
            #expect(chars.count == 34, "\(row)")
            for end in ends where end <= chars.count {
                #expect(chars[end - 1].isNumber && (end == 34 || chars[end] == " "), "\(row)")
            }
        }
    }

    /// Found by an audit: a second "-" said standard input was empty, where its message had gone to the first.
    @Test func aSecondDashSaysStandardInputWasReadAlready() throws {
        let scratch = try Scratch()
        let run = try Run.pitchfilter(["train", "--db", scratch.path("db.sqlite"), "--pitch", "-", "--ham", "-"],
                                      stdin: Array(ClassifyTrainTests.pitch.utf8))
        #expect(run.status == 3)
        #expect(run.stderr == "pitchfilter: cannot read -: standard input was read already, for an earlier \"-\"\n")
        #expect(run.text.hasPrefix("learned 1, "))
    }

    /// Found by an audit: "cannot list the directory" did not say why.
    @Test func aFolderThatCannotBeListedSaysWhy() throws {
        let scratch = try Scratch()
        try scratch.write("locked/1.eml", ClassifyTrainTests.pitch)
        try #require(chmod(scratch.url.path, 0o755) == 0 && chmod(scratch.path("locked"), 0o700) == 0)
        let run = try Run.shell("HOME='\(scratch.url.path)' setpriv --reuid=4242 --regid=4343 --clear-groups "
            + "'\(Run.executable.path)' classify --db '\(scratch.path("none.sqlite"))' '\(scratch.path("locked"))/'")
        #expect(run.status == 3)
        #expect(run.stderr == "pitchfilter: cannot read \(scratch.path("locked")): cannot list the directory: "
            + "permission denied\n")
    }

    @Test(arguments: [["eval", "--pitch", "x"], ["eval", "--ham", "x"], ["eval", "--pitch", "x", "--ham", "y", "--folds", "1"]])
    func missingClassOrBadFoldsIsAUsageError(arguments: [String]) throws {
        #expect(try Run.pitchfilter(arguments).status == 64)
    }

    /// Found by an audit: a negative value was taken for an option's name, and the message said "Missing value".
    @Test(arguments: [("--strength", "--strength must be above 0."), ("--text-weight", "--text-weight must be"),
                      ("--folds", "--folds must be between 2 and 100.")])
    func aNegativeSettingGetsItsRangeMessage(option: String, message: String) throws {
        let run = try Run.pitchfilter(["eval", "--pitch", "x", "--ham", "y", option, "-1"])
        #expect(run.status == 64)
        #expect(run.stderr.contains(message) && !run.stderr.contains("Missing value"), "\(run.stderr)")
    }

    /// Found by an audit: one empty or unreadable file in a folder made eval print nothing at all, where train
    /// learns the rest. The rest is measured, the file named on stderr and counted, and the status says so.
    @Test func anUnreadableFileLeavesTheRestToMeasure() throws {
        let scratch = try Scratch()
        let pitches = scratch.path("pitch")
        try FileManager.default.createDirectory(atPath: pitches, withIntermediateDirectories: true)
        let names = try FileManager.default.contentsOfDirectory(atPath: Self.samples.appendingPathComponent("pitch").path)
            .filter { !$0.hasPrefix(".") }.sorted().prefix(10)
        for name in names {
            try FileManager.default.copyItem(atPath: Self.samples.appendingPathComponent("pitch/\(name)").path,
                                             toPath: pitches + "/" + name)
        }
        try scratch.write("pitch/zz-empty.eml", "")
        let run = try Run.pitchfilter(["eval", "--pitch", pitches, "--ham", Self.samples.appendingPathComponent("ham").path,
                                       "--json"])
        #expect(run.status == 3)
        #expect(run.stderr.contains("zz-empty.eml: the file is empty"))
        let object = try #require(try JSONSerialization.jsonObject(with: Data(run.stdout)) as? [String: Any])
        #expect((object["pitch"] as? [String: Int])?.values.reduce(0, +) == names.count)
        #expect(object["unreadable_files"] as? Int == 1)
        #expect(object["false_positive_percent"] is Double)
    }

    /// Found in review: a fold with nothing of a class to classify measured nothing, and nothing said so. Three
    /// pitches in five folds leave two without one.
    @Test func foldsWithNothingToClassifyAreNoted() throws {
        let names = try FileManager.default.contentsOfDirectory(atPath: Self.samples.appendingPathComponent("pitch").path)
            .filter { !$0.hasPrefix(".") }.sorted().prefix(3)
        let run = try Run.pitchfilter(["eval", "--pitch"] + names.map { Self.samples.appendingPathComponent("pitch/\($0)").path }
                                      + ["--ham", Self.samples.appendingPathComponent("ham").path])
        #expect(run.status == 0)
        #expect(run.stderr == "pitchfilter: note: 2 of the 5 folds have no pitches to classify (folds are per PATH)\n")
    }

    @Test func unreadablePathFails() throws {
        let run = try Run.pitchfilter(["eval", "--pitch", "/nonexistent/pitch", "--ham",
                                       Self.samples.appendingPathComponent("ham").path])
        #expect(run.status == 3)
        #expect(run.stderr.contains("cannot read /nonexistent/pitch"))
    }
}

/// Runs of more than one batch read a snapshot of the database; smaller ones query it per message. Both must
/// give the same verdicts and scores.
@Suite struct BatchClassifyTests {
    @Test func snapshotAndPerMessageLookupsAgree() throws {
        let scratch = try Scratch()
        let db = scratch.url.appendingPathComponent("db.sqlite").path
        let samples = EvalTests.samples
        // A quarter of the corpus trained; a sixth of it classified, some of it trained and some not, and 50 of
        // those again under other names (the same messages: the template memory must not count them against
        // themselves): more than two batches of 256. The whole corpus took 50 s of the suite's 60 in a debug build.
        var training: [String: [String]] = [:]
        var classified: [String] = []
        for kind in ["pitch", "ham"] {
            let source = samples.appendingPathComponent(kind)
            let names = try FileManager.default.contentsOfDirectory(atPath: source.path).filter { $0.hasSuffix(".eml") }
                .sorted()
            for (index, name) in names.enumerated() {
                if index % 4 == 0 { training[kind, default: []].append(source.appendingPathComponent(name).path) }
                if index % 6 == 0 { classified.append(source.appendingPathComponent(name).path) }
            }
        }
        let train = try Run.pitchfilter(["train", "--db", db, "--pitch"] + training["pitch", default: []]
                                        + ["--ham"] + training["ham", default: []])
        #expect(train.status == 0, "train: \(train.stderr)")
        let folder = scratch.url.appendingPathComponent("again")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        for path in classified.prefix(50) {
            let copy = folder.appendingPathComponent("z-" + (path as NSString).lastPathComponent).path
            try FileManager.default.copyItem(atPath: path, toPath: copy)
            classified.append(copy)
        }
        #expect(classified.count > 2 * 256)
        let whole = try Run.pitchfilter(["classify", "--db", db] + classified)
        // Runs of 200 each fit in one batch, so they look every message up in the database.
        var pieces = ""
        for start in stride(from: 0, to: classified.count, by: 200) {
            let piece = try Run.pitchfilter(["classify", "--db", db]
                                            + classified[start..<min(start + 200, classified.count)])
            #expect(piece.status == 0, "classify from \(start): \(piece.stderr)")
            pieces += piece.text
        }
        #expect(whole.status == 0, "classify: \(whole.stderr)")
        // Hundreds of lines: a failure names the lines that differ, not both texts whole.
        let wholeLines = whole.text.split(separator: "\n", omittingEmptySubsequences: false)
        let pieceLines = pieces.split(separator: "\n", omittingEmptySubsequences: false)
        let differing = zip(wholeLines, pieceLines).filter { $0 != $1 }.prefix(5).map { "\($0) | \($1)" }
        #expect(differing.isEmpty && wholeLines.count == pieceLines.count,
                "\(wholeLines.count) lines against \(pieceLines.count); first differing: \(differing)")
        #expect(whole.text.split(separator: "\n").count == classified.count)
        // Both classes and both verdicts are among them, so the comparison covers more than one kind of score.
        #expect(wholeLines.contains { $0.hasPrefix("pitch ") } && wholeLines.contains { $0.hasPrefix("ham ") })
    }
}

@Suite struct FilterArgumentTests {
    @Test func bothSpellingsOfTheDatabaseOptionWork() throws {
        let scratch = try Scratch()
        let db = scratch.url.appendingPathComponent("db.sqlite").path
        let message = Array("Subject: hello\n\nThanks for connecting!\n".utf8)
        let separate = try Run.pitchfilter(["filter", "--db", db], stdin: message)
        let joined = try Run.pitchfilter(["filter", "--db=\(db)"], stdin: message)
        #expect(separate.status == 0 && joined.status == 0)
        #expect(separate.stdout == joined.stdout)
        #expect(separate.text.hasPrefix("X-Pitch-Status: "))
        #expect(separate.stdout.count > message.count)
    }

    @Test func helpStillGoesToTheArgumentParser() throws {
        let run = try Run.pitchfilter(["filter", "--help"])
        #expect(run.status == 0)
        #expect(run.text.contains("USAGE: pitchfilter filter"))
    }
}

@Suite struct PipeFilterArgumentTests {
    @Test(arguments: [
        (["filter"], .some(nil)),
        (["filter", "--db", "/x.sqlite"], .some("/x.sqlite")),
        (["filter", "--db=/x.sqlite"], .some("/x.sqlite")),
        (["filter", "--db="], nil),
        (["filter", "--db"], nil),
        (["filter", "--db", "--help"], nil),
        (["filter", "--help"], nil),
        (["filter", "extra", "words"], nil),
        (["classify", "--db", "/x.sqlite"], nil),
        ([], nil),
    ] as [([String], String??)])
    func onlyThePlainFormsTakeTheFastPath(arguments: [String], expected: String??) {
        #expect(PipeFilter.plainArguments(arguments) == expected)
    }
}

@Suite struct ContactsCommandTests {
    @Test func importLearnsRecipientsOfSentMailAndListShowsThem() throws {
        let scratch = try Scratch()
        let db = scratch.url.appendingPathComponent("db.sqlite").path
        let sent = scratch.url.appendingPathComponent("sent.eml")
        try Data("""
            From: Maya <maya@brightfield.example>
            To: Tom <tom@partner.example>, friend@gmail.com
            Cc: ann@partner.example
            Subject: notes

            See you Thursday.

            """.utf8).write(to: sent)
        let first = try Run.pitchfilter(["contacts", "import", "--db", db, sent.path])
        #expect(first.status == 0)
        #expect(first.text == "read 1 message, 3 new contacts\n")
        let again = try Run.pitchfilter(["contacts", "import", "--db", db, sent.path])
        #expect(again.text == "read 1 message, 0 new contacts\n")
        let list = try Run.pitchfilter(["contacts", "list", "--db", db])
        #expect(list.status == 0)
        let lines = list.text.split(separator: "\n").map { $0.split(separator: " ").prefix(2).joined(separator: " ") }
        #expect(lines == ["ann@partner.example sent", "friend@gmail.com sent", "tom@partner.example sent"])
        // Found by an audit: the domains the addresses make known were nowhere to be seen (gmail.com is not one).
        let withDomains = try Run.pitchfilter(["contacts", "list", "--domains", "--db", db])
        #expect(withDomains.text.split(separator: "\n").map { $0.split(separator: " ").prefix(2).joined(separator: " ") }
            == lines + ["@partner.example sent"])
    }

    @Test func listWithoutADatabaseIsEmpty() throws {
        let scratch = try Scratch()
        let run = try Run.pitchfilter(["contacts", "list", "--db", scratch.url.appendingPathComponent("none.sqlite").path])
        #expect(run.status == 0)
        #expect(run.text.isEmpty)
        // Found by an audit: an empty list said nothing. It says so, and how to fill it, on standard error.
        #expect(run.stderr == "pitchfilter: \(Contacts.List.noneYet)\n")
    }
}

@Suite struct ExplanationWeightTests {
    @Test(arguments: [(1.0 / 3, "1/3"), (0.5, "1/2"), (0.25, "1/4"), (0.2, "0.20"), (0.05, "0.05"), (0.999, "0.99")])
    func weightsPrintAsPeopleWriteThem(weight: Double, text: String) {
        #expect(Classify.formatWeight(weight) == text)
    }
}

@Suite struct EvalHoldoutTests {
    @Test func trainsOnOneSetAndTestsOnAnother() throws {
        let corpus = EvalTests.samples
        let heldout = corpus.deletingLastPathComponent().appendingPathComponent("heldout")
        let run = try Run.pitchfilter([
            "eval", "--pitch", corpus.appendingPathComponent("pitch").path, "--ham", corpus.appendingPathComponent("ham").path,
            "--test-pitch", heldout.appendingPathComponent("pitch").path,
            "--test-ham", heldout.appendingPathComponent("ham").path, "--json",
        ])
        #expect(run.status == 0)
        let object = try #require(try JSONSerialization.jsonObject(with: Data(run.stdout)) as? [String: Any])
        #expect(object["mode"] as? String == "holdout")
        #expect(object["folds"] is NSNull)  // written out, not left out (found in review)
        #expect(object["trained_pitch"] as? Int == (try EvalTests.count("pitch")))
        #expect(object["trained_ham"] as? Int == (try EvalTests.count("ham")))
        #expect((object["pitch"] as? [String: Int])?.values.reduce(0, +) == 100)
        #expect((object["ham"] as? [String: Int])?.values.reduce(0, +) == 100)
    }

    /// `eval --json` of samples/heldout in 2 folds: 50 of each learned per fold, few enough for the starter model's
    /// counts (which never saw these messages) to be added.
    static func heldoutInTwoFolds(_ extra: [String], environment: [String: String]? = nil) throws -> [String: Any] {
        let heldout = EvalTests.samples.deletingLastPathComponent().appendingPathComponent("heldout")
        let run = try Run.pitchfilter([
            "eval", "--pitch", heldout.appendingPathComponent("pitch").path,
            "--ham", heldout.appendingPathComponent("ham").path, "--folds", "2", "--json",
        ] + extra, environment: environment)
        #expect(run.status == 0, "\(run.stderr)")
        return try #require(try JSONSerialization.jsonObject(with: Data(run.stdout)) as? [String: Any])
    }

    /// The four cutoff fields of `heldoutInTwoFolds`: pitch lowest and highest, ham lowest and highest.
    static func cutoffs(_ extra: [String], environment: [String: String]? = nil) throws -> [Double?] {
        let object = try heldoutInTwoFolds(extra, environment: environment)
        return ["pitch_cutoff", "pitch_cutoff_highest", "ham_cutoff", "ham_cutoff_highest"].map {
            object[$0] as? Double
        }
    }

    @Test func theHeldOutSetTrainedOnItsFirstHalfIsScoredAsTheFilterWouldScoreIt() throws {
        // The starter model's counts flag more pitches than the 50 alone do.
        func verdicts(_ extra: [String]) throws -> (pitch: [String: Int], ham: [String: Int], starter: Bool?) {
            let object = try Self.heldoutInTwoFolds(extra)
            return (try #require(object["pitch"] as? [String: Int]), try #require(object["ham"] as? [String: Int]),
                    object["with_starter"] as? Bool)
        }
        // The filter's model is the default: `eval` answers what the user would see after that much training.
        let filter = try verdicts([])
        let own = try verdicts(["--without-starter"])
        #expect(own.starter == false && filter.starter == true)
        #expect(try verdicts(["--with-starter"]) == filter)
        #expect(filter.ham["pitch"] == 0)
        #expect(try #require(filter.pitch["pitch"]) > (try #require(own.pitch["pitch"])) + 10)
    }

    /// `--as-starter` builds each model as the starter model is built and scores it with the starter's settings.
    /// Pitches and ham that differ only in their header fields (the mailer, the sender's domain, enough of them for a
    /// pitch: `Classifier.minimumPitchEvidence`) teach a model of
    /// one's own to tell them apart, but a starter model nothing: the header says only how its samples were written.
    @Test func asStarterLearnsNothingFromHeaderFields() throws {
        let scratch = try Scratch()
        for index in 0..<8 {
            // The ham's senders are not the recipient's colleagues, whose mark (`rel:own-domain`) a starter model
            // keeps (`colleaguesAreMarkedWithoutAReplay`).
            for (kind, mailer, domain) in [("pitch", "BlastMail 3", "outreach.example"),
                                           ("ham", "Notes 6", "partner.example")] {
                try scratch.write("\(kind)/\(index).eml", """
                    From: Sam <sam\(index)@\(domain)>
                    To: me@y.example
                    Subject: Thursday
                    Date: Mon, 2 Mar 2026 09:0\(index):00 +0000
                    Message-ID: <\(index).thursday@\(domain)>
                    Reply-To: Sam <sam\(index)@\(domain)>
                    Organization: \(domain)
                    X-Mailer: \(mailer)

                    Are we still on for Thursday at ten? I will bring the figures.

                    """)
            }
        }
        func verdicts(_ extra: [String]) throws -> [String: Any] {
            let run = try Run.pitchfilter(["eval", "--json", "--folds", "2", "--pitch", scratch.path("pitch"),
                                           "--ham", scratch.path("ham")] + extra)
            #expect(run.status == 0, "\(run.stderr)")
            return try #require(try JSONSerialization.jsonObject(with: Data(run.stdout)) as? [String: Any])
        }
        let own = try verdicts(["--without-starter"])
        #expect(own["pitch"] as? [String: Int] == ["pitch": 8, "unsure": 0, "ham": 0])
        #expect(own["ham"] as? [String: Int] == ["pitch": 0, "unsure": 0, "ham": 8])
        #expect(own["as_starter"] as? Bool == false)
        let starter = try verdicts(["--as-starter"])
        #expect(starter["pitch"] as? [String: Int] == ["pitch": 0, "unsure": 8, "ham": 0])
        #expect(starter["ham"] as? [String: Int] == ["pitch": 0, "unsure": 8, "ham": 0])
        #expect(starter["as_starter"] as? Bool == true && starter["with_starter"] as? Bool == false)
        #expect(starter["pitch_cutoff"] as? Double == ClassifierParameters.starter.pitchCutoff)
        // One way of building the models at a time.
        #expect(try Run.pitchfilter(["eval", "--pitch", scratch.path("pitch"), "--ham", scratch.path("ham"),
                                     "--as-starter", "--with-starter"]).status == 64)
    }

    /// A cutoff given to `eval` applies at every stage, as `pitch_cutoff` in the configuration does in the filter,
    /// so that `eval --pitch-cutoff` answers what setting it would do: not a slide from the starter's own cutoff.
    /// Each cutoff on its own: `--ham-cutoff` alone leaves the pitch cutoff's slide.
    @Test func givenCutoffsApplyAtEveryStageAsTheConfigurationsDo() throws {
        // 50 of each learned per fold: the schedule's own cutoffs are the slide's, between the starter's and 0.9.
        let own = try Self.cutoffs([])
        #expect(try #require(own[0]) > ClassifierParameters.starter.pitchCutoff + 0.05 && (try #require(own[0])) < 0.9)
        #expect(try Self.cutoffs(["--pitch-cutoff", "0.7"]) == [0.7, 0.7, 0.2, 0.2])
        // A ham cutoff alone leaves the pitch cutoff's slide as it is (found in review), as in the filter.
        #expect(try Self.cutoffs(["--ham-cutoff", "0.3"]) == [own[0], own[1], 0.3, 0.3])
    }

    /// Found in review: `eval` said it scored as the filter would, but left out the configuration's cutoffs,
    /// which the filter uses. An option given still wins over the file's value of that cutoff.
    @Test func theConfigurationsCutoffsApplyUnlessOptionsAreGiven() throws {
        let scratch = try Scratch()
        let config = try scratch.write("pitchfilter.toml", "[classifier]\npitch_cutoff = 0.7\nham_cutoff = 0.3\n")
        let environment = ["PITCHFILTER_CONFIG": config, "HOME": scratch.path("home")]
        #expect(try Self.cutoffs([], environment: environment) == [0.7, 0.7, 0.3, 0.3])
        #expect(try Self.cutoffs(["--pitch-cutoff", "0.8"], environment: environment) == [0.8, 0.8, 0.3, 0.3])
        #expect(try Run.pitchfilter(["eval", "--pitch", "a", "--ham", "b", "--pitch-cutoff", "0.25"],
                                    environment: environment).status == 64)
    }

    @Test(arguments: [
        ["--pitch-cutoff", "0.2", "--ham-cutoff", "0.5"],
        ["--strength", "0"],
        ["--strength", "inf"],
        ["--pitch-cutoff", "0.15"],  // below the ham cutoff in effect (0.2), though that was not given
        ["--prior", "1"],
        ["--min-deviation", "0.5"],
    ])
    func settingsOutOfRangeAreUsageErrors(settings: [String]) throws {
        #expect(try Run.pitchfilter(["eval", "--pitch", "a", "--ham", "b"] + settings).status == 64)
    }

    /// Found by an audit: with a test set, --folds was taken and ignored.
    @Test func foldsWithATestSetIsAUsageError() throws {
        let run = try Run.pitchfilter(["eval", "--pitch", "a", "--ham", "b", "--test-pitch", "c", "--test-ham", "d",
                                       "--folds", "3"])
        #expect(run.status == 64)
        #expect(run.stderr.contains("--folds has no meaning with --test-pitch and --test-ham"), "\(run.stderr)")
    }

    /// Found by an audit: a folder given twice counted its messages twice in every fold; given as both classes, as
    /// both. A link to it, a path through "..", a hard link to a file, and a file in a folder given (or in a
    /// Maildir's new/) are the same messages again (the last two found in review).
    @Test(arguments: [("pitch", "pitch", "is given twice"), ("pitch", "link", "is %pitch again"),
                      ("pitch", "pitch/../pitch", "is %pitch again"), ("pitch/1.eml", "hard.eml", "is %pitch/1.eml again"),
                      ("pitch", "pitch/1.eml", "is in %pitch, which is given too"),
                      ("maildir", "maildir/new/2.eml", "is in %maildir, which is given too"),
                      ("maildir", "maildir/cur", "is in %maildir, which is given too")])
    func aPathGivenTwiceIsAUsageError(first: String, second: String, message: String) throws {
        let scratch = try Scratch()
        try scratch.write("pitch/1.eml", ClassifyTrainTests.pitch)
        try scratch.write("maildir/new/2.eml", ClassifyTrainTests.pitch)
        try scratch.write("maildir/cur/.keep", "")
        try FileManager.default.createSymbolicLink(atPath: scratch.path("link"), withDestinationPath: scratch.path("pitch"))
        try #require(link(scratch.path("pitch/1.eml"), scratch.path("hard.eml")) == 0)
        let run = try Run.pitchfilter(["eval", "--pitch", scratch.path(first), "--ham", scratch.path(second)])
        #expect(run.status == 64)
        let expected = message.replacingOccurrences(of: "%", with: scratch.url.path + "/")
        #expect(run.stderr.contains("\(scratch.path(second)) \(expected): its messages would be counted"), "\(run.stderr)")
    }

    /// A file given before its Maildir is found all the same; a file beside a folder given is not in it, nor one in
    /// a subfolder of a folder that is no Maildir.
    @Test func aFileBeforeItsFolderIsFoundAndANeighbourIsNot() {
        let scratch = try! Scratch()
        try! scratch.write("a/1.eml", ClassifyTrainTests.pitch)
        try! scratch.write("b/new/1.eml", ClassifyTrainTests.ham)
        #expect(Eval.pathGivenTwice([scratch.path("a"), scratch.path("b/new/1.eml"), scratch.path("b/new")])?.inside
            == true)
        #expect(Eval.pathGivenTwice([scratch.path("a/1.eml"), scratch.path("b")]) == nil)
        #expect(Eval.pathGivenTwice([scratch.path("b/new/1.eml"), scratch.path("a")]) == nil)
        // b has no cur/: no Maildir, and its new/ is a subfolder it does not read.
        #expect(Eval.pathGivenTwice([scratch.path("b"), scratch.path("b/new/1.eml")]) == nil)
    }

    /// Found by an audit: a compressed archive was one message of binary junk to `train`; on standard input too.
    @Test func aCompressedStandardInputIsNoMessage() throws {
        let scratch = try Scratch()
        let run = try Run.pitchfilter(["train", "--db", scratch.path("db.sqlite"), "--pitch", "-"],
                                      stdin: [0x1F, 0x8B, 0x08, 0x00, 0x00, 0x00])
        #expect(run.status == 3)
        #expect(run.stderr.contains("cannot read -: gzip-compressed; decompress it first"), "\(run.stderr)")
    }

    @Test func aTestSetNeedsBothClasses() throws {
        #expect(try Run.pitchfilter(["eval", "--pitch", "a", "--ham", "b", "--test-pitch", "c"]).status == 64)
    }

    @Test func everySignalCanBeLeftOutByItsOwnName() {
        #expect(Set(EvalSignal.allCases.map(\.rawValue))
            == Set(FormLetterSignal.allCases.map(\.rawValue) + HistorySignal.allCases.map(\.rawValue)))
        #expect(EvalSignal.allCases.allSatisfy { ($0.formLetter == nil) != ($0.history == nil) })
    }

    /// Without --replay there is no template memory: leaving the signal out is said to change nothing, and the
    /// figures are those with it, so that a script leaving out each signal in turn runs through.
    @Test func theTemplateSignalLeftOutWithoutAReplayChangesNothing() throws {
        let heldout = EvalTests.samples.deletingLastPathComponent().appendingPathComponent("heldout")
        func run(_ extra: [String]) throws -> Run {
            try Run.pitchfilter(["eval", "--folds", "2", "--pitch", heldout.appendingPathComponent("pitch").path,
                                 "--ham", heldout.appendingPathComponent("ham").path] + extra)
        }
        let with = try run([])
        let without = try run(["--without-signal", "template"])
        #expect(with.status == 0 && without.status == 0)
        #expect(without.stderr.contains("note: without --replay there is no template memory"))
        // The same figures; the first line names what was left out.
        #expect(with.text.split(separator: "\n").dropFirst() == without.text.split(separator: "\n").dropFirst())
        #expect(without.text.split(separator: "\n").first?.hasSuffix("; without template") == true)
    }

    /// Without --replay, `eval` reads each message as the filter does on a database that knows nobody: a
    /// colleague's mail is marked (`rel:own-domain`) all the same, as `classify` marks it on an empty database.
    /// Found when `eval --as-starter` flagged a colleague's ham that `classify` on an empty database did not.
    /// Pitches and ham here differ only in whether the sender shares the recipient's domain.
    @Test func colleaguesAreMarkedWithoutAReplay() throws {
        let scratch = try Scratch()
        for index in 0..<8 {
            for (kind, domain) in [("pitch", "outreach.example"), ("ham", "y.example")] {
                try scratch.write("\(kind)/\(index).eml", """
                    From: Sam <sam\(index)@\(domain)>
                    To: me@y.example
                    Subject: Thursday
                    Date: Mon, 2 Mar 2026 09:0\(index):00 +0000

                    Are we still on for Thursday at ten? I will bring the figures.

                    """)
            }
        }
        func verdicts(_ extra: [String]) throws -> [[String: Int]?] {
            let run = try Run.pitchfilter(["eval", "--json", "--folds", "2", "--as-starter", "--pitch",
                                           scratch.path("pitch"), "--ham", scratch.path("ham")] + extra)
            #expect(run.status == 0, "\(run.stderr)")
            let object = try #require(try JSONSerialization.jsonObject(with: Data(run.stdout)) as? [String: Any])
            return [object["pitch"] as? [String: Int], object["ham"] as? [String: Int]]
        }
        #expect(try verdicts([]) == [["pitch": 0, "unsure": 8, "ham": 0], ["pitch": 0, "unsure": 0, "ham": 8]])
        #expect(try verdicts(["--without-signal", "relationship"])
            == [["pitch": 0, "unsure": 8, "ham": 0], ["pitch": 0, "unsure": 8, "ham": 0]])
    }

    @Test func sentMailIsReplayedWithTheRest() throws {
        let corpus = EvalTests.samples
        let scratch = try Scratch()
        try scratch.write("sent/1.eml", """
            From: Owner <owner@copperleaf.example>
            To: Bob <bob@partner.example>
            Date: Mon, 2 Mar 2026 09:00:00 +0000
            Message-ID: <s1@copperleaf.example>
            Subject: Drawings

            Bob, the revised drawings are attached.

            """)
        let run = try Run.pitchfilter([
            "eval", "--pitch", corpus.appendingPathComponent("pitch").path,
            "--ham", corpus.appendingPathComponent("ham").path, "--sent", scratch.path("sent"),
            "--without-signal", "template", "--json",
        ])
        #expect(run.status == 0)
        let object = try #require(try JSONSerialization.jsonObject(with: Data(run.stdout)) as? [String: Any])
        #expect(object["replayed"] as? Bool == true)
        #expect(object["without_signals"] as? [String] == ["template"])
        // Sent mail is history only: the samples are the pitches and ham alone.
        #expect((object["pitch"] as? [String: Int])?.values.reduce(0, +) == (try EvalTests.count("pitch")))
        #expect((object["ham"] as? [String: Int])?.values.reduce(0, +) == (try EvalTests.count("ham")))
    }
}

/// The configuration file (`$PITCHFILTER_CONFIG`, else /etc/pitchfilter/pitchfilter.toml) as the command line
/// reads it: through `pitchfilter-service config-values`, which must be beside the executable.
@Suite struct ConfigurationFileTests {
    static let coldPitch = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("samples/messages/cold-pitch.eml").path

    /// A configuration file in `scratch` naming a database there and a pitch cutoff of 1: what each configured
    /// command then uses, and where.
    static func databaseAndCutoffOfOne(in scratch: Scratch) throws -> (db: String, config: String) {
        let db = scratch.path("configured/pitchfilter.sqlite")
        let config = try scratch.write("pitchfilter.toml", """
            [database]
            path = "\(db)"
            [classifier]
            pitch_cutoff = 1
            """)
        return (db, config)
    }

    /// The starter model scores the sample 0.9999 (the README's first command): a pitch at the standard cutoff
    /// of 0.9, unsure below a cutoff of 1.
    @Test func theFileGivesTheDatabaseAndTheCutoffs() throws {
        let scratch = try Scratch()
        let (db, config) = try Self.databaseAndCutoffOfOne(in: scratch)
        let configured = ["PITCHFILTER_CONFIG": config, "HOME": scratch.path("home")]
        var run = try Run.pitchfilter(["classify", Self.coldPitch], environment: configured)
        #expect(run.text == "unsure 0.9999 \(Self.coldPitch)\n")
        #expect(run.status == 2)
        run = try Run.pitchfilter(["classify", Self.coldPitch], environment: ["HOME": scratch.path("home")])
        #expect(run.text == "pitch 0.9999 \(Self.coldPitch)\n")
        #expect(run.status == 0)

        let bytes = Array(try Data(contentsOf: URL(fileURLWithPath: Self.coldPitch)))
        run = try Run.pitchfilter(["filter"], stdin: bytes, environment: configured)
        #expect(run.status == 0)
        #expect(run.text.hasPrefix("X-Pitch-Status: unsure, score=0.9999, "))

        // train without --db creates the configured database; --db and $PITCHFILTER_DB still come first.
        let ham = try scratch.write("ham.eml", ClassifyTrainTests.ham)
        run = try Run.pitchfilter(["train", "--ham", ham], environment: configured)
        #expect(run.status == 0)
        #expect(FileManager.default.fileExists(atPath: db))
        run = try Run.pitchfilter(["stats"], environment: configured)
        #expect(run.text.hasPrefix("database: \(db)\n"))
        run = try Run.pitchfilter(["stats"], environment: configured.merging(["PITCHFILTER_DB": "/env.sqlite"]) { $1 })
        #expect(run.text.hasPrefix("database: /env.sqlite (no file there yet)\n"))
    }

    /// A file every local user may change names no database and no cutoff for anyone (found in review: `serve`
    /// refused it, and the command line read it): each command says so and exits 3; the filter passes the message
    /// through, as for any configuration it cannot read.
    @Test func aFileEveryoneMayChangeIsRefusedByTheCommandLineToo() throws {
        let scratch = try Scratch()
        let (db, config) = try Self.databaseAndCutoffOfOne(in: scratch)
        #expect(chmod(scratch.url.path, 0o755) == 0 && chmod(config, 0o666) == 0)
        let configured = ["PITCHFILTER_CONFIG": config, "HOME": scratch.path("home")]
        let refusal = "\(config): anyone on this machine can change it"
        var run = try Run.pitchfilter(["classify", Self.coldPitch], environment: configured)
        #expect(run.status == 3)
        #expect(run.text.isEmpty && run.stderr.contains(refusal), "\(run.stderr)")
        let bytes = Array(try Data(contentsOf: URL(fileURLWithPath: Self.coldPitch)))
        run = try Run.pitchfilter(["filter"], stdin: bytes, environment: configured)
        #expect(run.status == 0)
        #expect(run.stdout == bytes)
        #expect(run.stderr.contains(refusal), "\(run.stderr)")
        #expect(!FileManager.default.fileExists(atPath: db))
        // Made private again, it is read, and its answer cached.
        #expect(chmod(config, 0o644) == 0)
        run = try Run.pitchfilter(["classify", Self.coldPitch], environment: configured)
        #expect(run.text == "unsure 0.9999 \(Self.coldPitch)\n")
        // Its directory made writable by all, the file itself unchanged: the cached answer is not taken (found in
        // review), the file is refused.
        #expect(chmod(scratch.url.path, 0o777) == 0)
        defer { chmod(scratch.url.path, 0o755) }
        run = try Run.pitchfilter(["classify", Self.coldPitch], environment: configured)
        #expect(run.status == 3)
        #expect(run.stderr.contains("\(scratch.url.path) is writable by all users"), "\(run.stderr)")
    }

    /// `--config FILE`, as `serve` and `quarantine` take it (found by a review against DESIGN.md's Config row): in
    /// place of `$PITCHFILTER_CONFIG` for every command that reads the file, and an empty one refused.
    @Test func eachCommandTakesTheFileAsAnOption() throws {
        let scratch = try Scratch()
        let (db, config) = try Self.databaseAndCutoffOfOne(in: scratch)
        let other = try scratch.write("other.toml", "[classifier]\npitch_cutoff = 0.95\n")
        // The option wins over the variable, as --db does over $PITCHFILTER_DB.
        let environment = ["HOME": scratch.path("home"), "PITCHFILTER_CONFIG": other]
        var run = try Run.pitchfilter(["classify", "--config", config, Self.coldPitch], environment: environment)
        #expect(run.text == "unsure 0.9999 \(Self.coldPitch)\n")
        let bytes = Array(try Data(contentsOf: URL(fileURLWithPath: Self.coldPitch)))
        run = try Run.pitchfilter(["filter", "--config=\(config)"], stdin: bytes, environment: environment)
        #expect(run.status == 0)
        #expect(run.text.hasPrefix("X-Pitch-Status: unsure, score=0.9999, "))
        let ham = try scratch.write("ham.eml", ClassifyTrainTests.ham)
        run = try Run.pitchfilter(["train", "--config", config, "--ham", ham], environment: environment)
        #expect(run.status == 0)
        #expect(FileManager.default.fileExists(atPath: db))
        for command in [["stats"], ["contacts", "list"], ["backup", scratch.path("copy.sqlite")]] {
            run = try Run.pitchfilter(command + ["--config", config], environment: environment)
            #expect(run.status == 0, "\(command): \(run.stderr)")
        }
        run = try Run.pitchfilter(["stats", "--config", config], environment: environment)
        #expect(run.text.hasPrefix("database: \(db)\n"))
        #expect(FileManager.default.fileExists(atPath: scratch.path("copy.sqlite")))
        for command in [["filter"], ["classify", Self.coldPitch], ["stats"]] {
            run = try Run.pitchfilter(command + ["--config", ""], stdin: bytes, environment: environment)
            #expect(run.status == 64)
            #expect(run.stdout.isEmpty)
            #expect(run.stderr.contains("--config needs a file; an empty one is refused"))
        }
    }

    /// `[classifier] reasons = true`: X-Pitch-Reasons under X-Pitch-Status, a forged one removed, every other byte
    /// as it came.
    @Test func theFileCanAskForReasons() throws {
        let scratch = try Scratch()
        let config = try scratch.write("pitchfilter.toml", "[classifier]\nreasons = true\n")
        let environment = ["PITCHFILTER_CONFIG": config, "HOME": scratch.path("home")]
        let bytes = Array(try Data(contentsOf: URL(fileURLWithPath: Self.coldPitch)))
        let forged = Array("X-Pitch-Reasons: nothing to see\n".utf8) + bytes
        let run = try Run.pitchfilter(["filter", "--db", scratch.path("none.sqlite")], stdin: forged,
                                      environment: environment)
        #expect(run.status == 0)
        let lines = run.text.split(separator: "\n", maxSplits: 2, omittingEmptySubsequences: false)
        #expect(lines[0].hasPrefix("X-Pitch-Status: pitch, score=0.9999, "))
        #expect(lines[1].hasPrefix("X-Pitch-Reasons: "))
        #expect(lines[1].split(separator: ",").count == 5)
        #expect(lines[1].allSatisfy { $0.isASCII && $0 != "\r" })
        #expect(Array(lines[2].utf8) == bytes)
        // Without the key, no reasons.
        let plain = try Run.pitchfilter(["filter", "--db", scratch.path("none.sqlite")], stdin: bytes,
                                        environment: ["HOME": scratch.path("home")])
        #expect(!plain.text.contains("X-Pitch-Reasons"))
    }

    /// `[header]` renames our fields: the filter writes and removes them under the new names (and still removes
    /// X-Pitch-*), and training counts a copy tagged under them as the message it is.
    @Test func theFileCanRenameOurFields() throws {
        let scratch = try Scratch()
        let config = try scratch.write("pitchfilter.toml", """
            [classifier]
            reasons = true
            [header]
            status_field = "X-Cold-Pitch"
            reasons_field = "X-Cold-Pitch-Reasons"
            """)
        let environment = ["PITCHFILTER_CONFIG": config, "HOME": scratch.path("home")]
        let bytes = Array(try Data(contentsOf: URL(fileURLWithPath: Self.coldPitch)))
        let forged = Array("X-Cold-Pitch: ham\nX-Pitch-Status: ham\nX-Cold-Pitch-Reasons: trust me\n".utf8) + bytes
        let db = scratch.path("pitchfilter.sqlite")
        let run = try Run.pitchfilter(["filter", "--db", db], stdin: forged, environment: environment)
        #expect(run.status == 0)
        let lines = run.stdout.split(separator: 0x0A, maxSplits: 2, omittingEmptySubsequences: false)
        #expect(String(decoding: lines[0], as: UTF8.self).hasPrefix("X-Cold-Pitch: pitch, score=0.9999, "))
        #expect(String(decoding: lines[1], as: UTF8.self).hasPrefix("X-Cold-Pitch-Reasons: "))
        #expect(Array(lines[2]) == bytes)

        try Self.expectLearnedOnce(original: bytes, tagged: run.stdout, db: db, in: scratch, environment: environment)
    }

    /// Training the original and the tagged copy counts one message.
    static func expectLearnedOnce(original: [UInt8], tagged: [UInt8], db: String, in scratch: Scratch,
                                  environment: [String: String]) throws {
        let plain = try scratch.write("plain.eml", String(decoding: original, as: UTF8.self))
        let copy = try scratch.write("tagged.eml", String(decoding: tagged, as: UTF8.self))
        for file in [plain, copy] {
            #expect(try Run.pitchfilter(["train", "--db", db, "--pitch", file], environment: environment).status == 0)
        }
        let stats = try Run.pitchfilter(["stats", "--db", db], environment: environment)
        #expect(stats.text.contains("\nmessages: pitch 1, ham 0\n"), "\(stats.text)")
        #expect(stats.text.contains("\nlearned messages: 1\n"), "\(stats.text)")
    }

    /// `[header] subject_tag`: a pitch's Subject gets the tag and every other byte stays; ham is left alone; and a
    /// tagged copy, trained or classified, is the message it was.
    @Test func theFileCanTagAPitchsSubject() throws {
        let scratch = try Scratch()
        let config = try scratch.write("pitchfilter.toml", """
            [header]
            subject_tag = "[PITCH]"
            """)
        let environment = ["PITCHFILTER_CONFIG": config, "HOME": scratch.path("home")]
        let bytes = Array(try Data(contentsOf: URL(fileURLWithPath: Self.coldPitch)))
        let db = scratch.path("pitchfilter.sqlite")
        let run = try Run.pitchfilter(["filter", "--db", db], stdin: bytes, environment: environment)
        #expect(run.status == 0)
        let lines = run.stdout.split(separator: 0x0A, maxSplits: 1, omittingEmptySubsequences: false)
        #expect(String(decoding: lines[0], as: UTF8.self).hasPrefix("X-Pitch-Status: pitch, score=0.9999, "))
        #expect(String(decoding: lines[0], as: UTF8.self).hasSuffix(", tagged=[PITCH]"))
        let expected = String(decoding: bytes, as: UTF8.self)
            .replacingOccurrences(of: "\nSubject: Re: quick question\n", with: "\nSubject: [PITCH] Re: quick question\n")
        #expect(expected != String(decoding: bytes, as: UTF8.self))
        #expect(Array(lines[1]) == Array(expected.utf8))

        // Filtered again, it is tagged once: the old field goes, the tag stays, and the new field records no tag,
        // since this run put none in.
        let again = try Run.pitchfilter(["filter", "--db", db], stdin: run.stdout, environment: environment)
        let againLines = again.stdout.split(separator: 0x0A, maxSplits: 1, omittingEmptySubsequences: false)
        #expect(String(decoding: againLines[0], as: UTF8.self).hasPrefix("X-Pitch-Status: pitch, score=0.9999, "))
        #expect(!String(decoding: againLines[0], as: UTF8.self).contains("tagged="))
        #expect(Array(againLines[1]) == Array(expected.utf8))

        // Ham keeps its Subject.
        let ham = Array(ClassifyTrainTests.ham.utf8)
        let hamRun = try Run.pitchfilter(["filter", "--db", db], stdin: ham, environment: environment)
        #expect(hamRun.text.contains("\nSubject: Re: lunch on Friday\n"))
        #expect(!hamRun.text.contains("[PITCH]"))

        // Found by two audits: a forged record in front of a Subject its sender began with the tag took that tag
        // off. The forged field goes; every byte of the Subject stays the sender's.
        let sendersOwn = ClassifyTrainTests.ham.replacingOccurrences(
            of: "\nSubject: Re: lunch on Friday\n", with: "\nSubject: [PITCH] Re: lunch on Friday\n")
        #expect(sendersOwn != ClassifyTrainTests.ham)
        let forged = try Run.pitchfilter(["filter", "--db", db], stdin: Array(
            ("X-Pitch-Status: pitch, score=0.9999, version=x, tagged=[PITCH]\n" + sendersOwn).utf8),
            environment: environment)
        let forgedLines = forged.stdout.split(separator: 0x0A, maxSplits: 1, omittingEmptySubsequences: false)
        #expect(String(decoding: forgedLines[0], as: UTF8.self).hasPrefix("X-Pitch-Status: ham, "))
        #expect(Array(forgedLines[1]) == Array(sendersOwn.utf8))

        // The tagged copy scores as the original did, and is learned as the same message.
        let scores = try Run.pitchfilter(["classify", "--db", scratch.path("none.sqlite"), Self.coldPitch, "-"],
                                         stdin: run.stdout, environment: environment)
        let verdicts = scores.text.split(separator: "\n").map { $0.split(separator: " ").prefix(2).joined(separator: " ") }
        #expect(verdicts.count == 2 && verdicts[0] == verdicts[1], "\(scores.text)")
        try Self.expectLearnedOnce(original: bytes, tagged: run.stdout, db: db, in: scratch, environment: environment)
    }

    /// A tag that cannot go into a header as it is stops the commands under its key; the mail still goes through.
    @Test func aSubjectTagThatCannotBeWrittenIsRefused() throws {
        let scratch = try Scratch()
        let config = try scratch.write("pitchfilter.toml", "[header]\nsubject_tag = \"[Kaltakquise \u{2709}]\"\n")
        let environment = ["PITCHFILTER_CONFIG": config, "HOME": scratch.path("home")]
        let run = try Run.pitchfilter(["classify", Self.coldPitch], environment: environment)
        #expect(run.status == 3)
        #expect(run.stderr.contains("header.subject_tag: \"[Kaltakquise \u{2709}]\" may hold only printable ASCII"),
                "\(run.stderr)")
        let bytes = Array(try Data(contentsOf: URL(fileURLWithPath: Self.coldPitch)))
        let filtered = try Run.pitchfilter(["filter", "--db", scratch.path("db.sqlite")], stdin: bytes,
                                           environment: environment)
        #expect(filtered.status == 0 && filtered.stdout == bytes)
    }

    /// A broken file: the commands say which key and exit 3; the pipe filter passes the message through.
    @Test func aBrokenFileStopsTheCommandsButNotTheMail() throws {
        let scratch = try Scratch()
        let config = try scratch.write("pitchfilter.toml", "[classifier]\npitch_cutoff = 2\n")
        let environment = ["PITCHFILTER_CONFIG": config, "HOME": scratch.path("home")]
        var run = try Run.pitchfilter(["classify", Self.coldPitch], environment: environment)
        #expect(run.status == 3)
        #expect(run.stderr.contains("classifier.pitch_cutoff: must be between 0.0 and 1.0"))

        let bytes = Array(try Data(contentsOf: URL(fileURLWithPath: Self.coldPitch)))
        run = try Run.pitchfilter(["filter"], stdin: bytes, environment: environment)
        #expect(run.status == 0)
        #expect(run.stdout == bytes)
        #expect(run.stderr.hasPrefix("pitchfilter: passed through unchanged: configuration \(config): "))
        #expect(run.stderr.split(separator: "\n").count == 1)
    }
}

@Suite struct BackupCommandTests {
    static let heldout = Samples.root.deletingLastPathComponent().appendingPathComponent("heldout")

    static func trainedDatabase(in scratch: Scratch) throws -> String {
        let db = scratch.path("db.sqlite")
        let run = try Run.pitchfilter(["train", "--db", db, "--pitch", heldout.appendingPathComponent("pitch").path,
                                       "--ham", heldout.appendingPathComponent("ham").path])
        #expect(run.status == 0)
        return db
    }

    static func statsWithoutPathAndSize(_ db: String) throws -> [Substring] {
        let run = try Run.pitchfilter(["stats", "--db", db])
        #expect(run.status == 0)
        return run.text.split(separator: "\n").filter { !$0.hasPrefix("database:") && !$0.hasPrefix("size:") }
    }

    /// Found by an audit: a new database was 0644 where the umask let it be, so every local user could read the
    /// senders and Subjects of quarantined mail and the owner's correspondents. Its owner's alone (and so its -wal
    /// and -shm while they are there; SQLite removes them as the last connection closes).
    @Test func aNewDatabaseIsItsOwnersAlone() throws {
        let scratch = try Scratch()
        let message = try scratch.write("1.eml", ClassifyTrainTests.ham)
        let run = try Run.shell("umask 022; '\(Run.executable.path)' train --db '\(scratch.path("db.sqlite"))' "
            + "--ham '\(message)'")
        #expect(run.status == 0, "\(run.stderr)")
        for file in ["db.sqlite", "db.sqlite-wal", "db.sqlite-shm"] where FileManager.default.fileExists(atPath: scratch.path(file)) {
            var info = stat()
            #expect(stat(scratch.path(file), &info) == 0 && info.st_mode & 0o777 == 0o600, "\(file)")
        }
    }

    /// Found by an audit: a mistyped --db read as a database with nothing trained.
    @Test func statsSaysWhenThereIsNoFileYet() throws {
        let scratch = try Scratch()
        let run = try Run.pitchfilter(["stats", "--db", scratch.path("typo/x.sqlite")])
        #expect(run.status == 0)
        #expect(run.text.hasPrefix("database: \(scratch.path("typo/x.sqlite")) (no file there yet)\n"
            + "messages: none trained yet (the starter model decides)\n"), "\(run.text)")
        #expect(!FileManager.default.fileExists(atPath: scratch.path("typo")))
    }

    /// The training is committed while another connection reads an older snapshot (as the service's may), so it
    /// stays in the write-ahead log: a `cp` of the main file has none of it, the backup all of it.
    @Test func theCopyHoldsWhatTheLogHoldsAndIsTheOwnersAlone() throws {
        let scratch = try Scratch()
        let db = scratch.path("db.sqlite")
        let copy = scratch.path("copy.sqlite")
        let reader = try SQLiteTokenStore(path: db, tokenizerIdentity: Engine.tokenizerIdentity, access: .readWrite)
        let backup = try reader.withSnapshot {
            #expect(try reader.statistics().totals == ClassTotals())
            #expect(try Self.trainedDatabase(in: scratch) == db)
            try FileManager.default.copyItem(atPath: db, toPath: scratch.path("cp.sqlite"))
            return try Run.pitchfilter(["backup", "--db", db, copy])
        }
        #expect(backup.status == 0, "\(backup.stderr)")
        #expect(backup.text.hasPrefix("backed up \(db) to \(copy): ") && backup.text.hasSuffix(" bytes, checked\n"))
        let plain = try Self.statsWithoutPathAndSize(scratch.path("cp.sqlite"))
        #expect(plain.contains("messages: none trained yet (the starter model decides)"), "\(plain)")
        let stats = try Self.statsWithoutPathAndSize(copy)
        #expect(stats.contains("messages: pitch 100, ham 100"))
        #expect(stats == (try Self.statsWithoutPathAndSize(db)))
        let sample = Samples.root.deletingLastPathComponent().appendingPathComponent("dev/pitch").path
        #expect(try Run.pitchfilter(["classify", "--db", copy, sample]).text
            == (try Run.pitchfilter(["classify", "--db", db, sample]).text))
        let mode = try FileManager.default.attributesOfItem(atPath: copy)[.posixPermissions] as? Int
        #expect(mode == 0o600)
        // Nothing left under the temporary name.
        let left = try FileManager.default.contentsOfDirectory(atPath: scratch.url.path)
        #expect(!left.contains { $0.contains("partial") })
    }

    /// Found by an audit: a directory, named without a trailing slash, was "a file" a backup never replaces.
    @Test func aDirectoryIsNoDestination() throws {
        let scratch = try Scratch()
        let db = try Self.trainedDatabase(in: scratch)
        try FileManager.default.createDirectory(atPath: scratch.path("backups"), withIntermediateDirectories: false)
        let run = try Run.pitchfilter(["backup", "--db", db, scratch.path("backups")])
        #expect(run.status == 3)
        #expect(run.stderr == "pitchfilter: \(scratch.path("backups")) is a directory: give the backup a file name "
            + "(in it, say)\n")
        // And a link to one (found in review).
        #expect(symlink(scratch.path("backups"), scratch.path("linked")) == 0)
        let linked = try Run.pitchfilter(["backup", "--db", db, scratch.path("linked")])
        #expect(linked.stderr == "pitchfilter: \(scratch.path("linked")) is a directory: give the backup a file name "
            + "(in it, say)\n")
    }

    /// Found by an audit: a signal weaker than the 25 strongest tokens (`rel:first-contact`, the 31st) was not
    /// shown. `--explain` lists the 25 strongest, then every signal among the rest, and nothing else.
    @Test func explainListsEverySignalBeyondTheStrongest() {
        let words = (0..<30).map { TokenEvidence(token: "word\($0)", counts: TokenCounts(pitch: 1, ham: 0),
                                                 probability: 0.99 - Double($0) * 0.01) }
        let signals = ["rel:first-contact", "sig:greeting-named", "tmpl:others-1"].enumerated().map {
            TokenEvidence(token: $1, counts: TokenCounts(pitch: 1, ham: 1), probability: 0.6 - Double($0) * 0.01)
        }
        let explained = Classify.explained(words + signals)
        #expect(explained.map(\.token) == words.prefix(25).map(\.token) + signals.map(\.token))
        #expect(Classify.explained(Array(words.prefix(10))).count == 10)
    }

    @Test(arguments: ["existing", "existing-wal", "existing-journal"])
    func anExistingFileOrLogIsNeverReplaced(present: String) throws {
        let scratch = try Scratch()
        let db = try Self.trainedDatabase(in: scratch)
        try scratch.write(present, "keep me\n")
        let run = try Run.pitchfilter(["backup", "--db", db, scratch.path("existing")])
        #expect(run.status == 3)
        #expect(run.stderr == "pitchfilter: \(scratch.path(present)) exists: a backup never replaces a file, "
            + "give a new name\n")
        #expect(try String(contentsOfFile: scratch.path(present), encoding: .utf8) == "keep me\n")
    }

    /// Found in review: the source's errors named the temporary copy, so an admin went to fix the wrong file.
    @Test(arguments: [
        ("missing.sqlite", "no token database at {db} yet (nothing trained)"),
        ("empty.sqlite", "{db} is an empty file, not a database: nothing to back up"),
        ("not-a-database", "{db} is not a pitchfilter database (not an SQLite file): move it away or use another --db"),
        ("fifo", "cannot open database {db}: it is not a regular file"),
    ])
    func aSourceThatCannotBeCopiedIsNamedAndNothingIsLeft(source: String, message: String) throws {
        let scratch = try Scratch()
        try scratch.write("not-a-database", "From: someone\n\nThis is mail, not a database.\n")
        try scratch.write("empty.sqlite", "")
        #expect(mkfifo(scratch.path("fifo"), 0o600) == 0)
        let before = try FileManager.default.contentsOfDirectory(atPath: scratch.url.path).sorted()
        let db = scratch.path(source)
        let run = try Run.pitchfilter(["backup", "--db", db, scratch.path("copy.sqlite")])
        #expect(run.status == 3)
        #expect(run.stderr.hasPrefix("pitchfilter: "))
        #expect(run.stderr.contains(message.replacingOccurrences(of: "{db}", with: db)), "\(run.stderr)")
        #expect(try FileManager.default.contentsOfDirectory(atPath: scratch.url.path).sorted() == before)
    }

    /// Found by an audit: damage that stopped SQLite's check named the temporary copy as the corrupt database.
    @Test func aDamagedSourceIsNamedAsTheCorruptOne() throws {
        let scratch = try Scratch()
        let db = scratch.path("db.sqlite")
        try scratch.write("pitch/1.eml", ClassifyTrainTests.pitch)
        try scratch.write("ham/1.eml", ClassifyTrainTests.ham)
        #expect(try Run.pitchfilter(["train", "--db", db, "--pitch", scratch.path("pitch"), "--ham",
                                     scratch.path("ham")]).status == 0)
        // The pages into the file: a trainer whose last connection closed as the process ended (seen once, under
        // load) left them in the log, and the file one page long.
        do {
            let store = try SQLiteTokenStore(path: db, tokenizerIdentity: Engine.tokenizerIdentity, access: .readWrite)
            store.checkpointIfLarge(thresholdBytes: 0)
        }
        // Every page after the first three overwritten: the tables' pages, not the header.
        let handle = try FileHandle(forUpdating: URL(fileURLWithPath: db))
        let size = try handle.seekToEnd()
        try #require(size > 4 * 4096)
        try handle.seek(toOffset: 3 * 4096)
        handle.write(Data(repeating: 0xFF, count: Int(size) - 3 * 4096))
        try handle.close()
        let run = try Run.pitchfilter(["backup", "--db", db, scratch.path("copy.sqlite")])
        #expect(run.status == 3)
        #expect(run.stderr.hasPrefix("pitchfilter: database \(db) is corrupt ("), "\(run.stderr)")
        let left = try FileManager.default.contentsOfDirectory(atPath: scratch.url.path)
        #expect(!left.contains { $0 == "copy.sqlite" || $0.hasPrefix(".pitchfilter-backup") }, "\(left)")
    }

    @Test(arguments: [
        ("copy", ".", ".pitchfilter-backup.partial-9"),
        ("/copy", "/", "/.pitchfilter-backup.partial-9"),
        ("./copy", ".", "./.pitchfilter-backup.partial-9"),
        ("backups/2026/copy.sqlite", "backups/2026", "backups/2026/.pitchfilter-backup.partial-9"),
    ])
    func theCopyIsWrittenBesideItsDestination(destination: String, directory: String, partial: String) {
        let placement = Backup.placement(of: destination, suffix: "9")
        #expect(placement.directory == directory && placement.partial == partial)
    }

    @Test(arguments: ["", "backups/", "copy\u{FFFD}.sqlite", "-"])
    func aDestinationThatNamesNoFileIsAUsageError(destination: String) throws {
        #expect(try Run.pitchfilter(["backup", destination]).status == 64)
    }

    /// `restore` puts a backup's training back: the database then says what the backup said, whatever was trained
    /// since, and classifies as the backup does; into a database not there yet as well. The backup is not changed,
    /// and no copy is left beside the database.
    @Test(arguments: [false, true])
    func aRestoreGivesBackTheBackupsTraining(intoNewDatabase: Bool) throws {
        let scratch = try Scratch()
        let db = try Self.trainedDatabase(in: scratch)
        let backup = scratch.path("backup.sqlite")
        #expect(try Run.pitchfilter(["backup", "--db", db, backup]).status == 0)
        let backedUp = try Self.statsWithoutPathAndSize(db)  // as the backup has it (read, it would get a -wal)
        let backupBytes = try Data(contentsOf: URL(fileURLWithPath: backup))
        let samples = Samples.root.deletingLastPathComponent()
        let target = intoNewDatabase ? scratch.path("new/db.sqlite") : db
        if !intoNewDatabase {
            let more = try Run.pitchfilter(["train", "--db", db,
                                            "--pitch", samples.appendingPathComponent("dev/pitch").path,
                                            "--ham", samples.appendingPathComponent("dev/ham").path])
            #expect(more.status == 0)
            #expect(try Self.statsWithoutPathAndSize(db) != backedUp)
        }
        let run = try Run.pitchfilter(["restore", "--db", target, backup])
        #expect(run.status == 0, "\(run.stderr)")
        // Found by an audit: the restore left the -wal and -shm its reading made beside the backup.
        #expect(!FileManager.default.fileExists(atPath: backup + "-wal"))
        #expect(!FileManager.default.fileExists(atPath: backup + "-shm"))
        let kept = "the quarantine's records and the service's journal kept as they were"
        #expect(run.text == "restored \(target) from \(backup): 100 pitch and 100 ham messages learned; \(kept)\n")
        #expect(try Self.statsWithoutPathAndSize(target) == backedUp)
        let sample = samples.appendingPathComponent("blind/pitch").path
        #expect(try Run.pitchfilter(["classify", "--db", target, sample]).text
            == (try Run.pitchfilter(["classify", "--db", backup, sample]).text))
        #expect(try Data(contentsOf: URL(fileURLWithPath: backup)) == backupBytes)
        let directory = (target as NSString).deletingLastPathComponent
        #expect(!(try FileManager.default.contentsOfDirectory(atPath: directory)).contains { $0.contains("partial") })
    }

    /// A backup that cannot be restored is said of the backup (not of the copy's temporary name, with no advice
    /// about --db), and the database is left as it was.
    @Test(arguments: [
        ("missing.sqlite", nil, "no such file"),
        ("message.eml", "Subject: hi\n\nhello\n", "it is no database (not an SQLite file)"),
        ("empty.sqlite", "", "it is an empty file, not a database"),
    ] as [(String, String?, String)])
    func aBackupThatCannotBeRestoredIsNamed(name: String, contents: String?, reason: String) throws {
        let scratch = try Scratch()
        let db = try Self.trainedDatabase(in: scratch)
        let before = try Self.statsWithoutPathAndSize(db)
        if let contents { try scratch.write(name, contents) }
        let run = try Run.pitchfilter(["restore", "--db", db, scratch.path(name)])
        #expect(run.status == 3)
        #expect(run.stdout.isEmpty)
        #expect(run.stderr == "pitchfilter: cannot restore from \(scratch.path(name)): \(reason)\n")
        #expect(try Self.statsWithoutPathAndSize(db) == before)
        #expect(!(try FileManager.default.contentsOfDirectory(atPath: scratch.url.path)).contains { $0.contains("partial") })
    }

    /// Found by an audit: every restore killed with SIGKILL left its copy of the backup beside the database, and
    /// nothing ever removed it. A later restore removes the copies no run holds (their run's flock is gone), made a
    /// minute ago or more; one a running restore holds, or one just made, stays.
    @Test func aRestoreRemovesTheCopiesKilledRunsLeft() throws {
        let scratch = try Scratch()
        let db = try Self.trainedDatabase(in: scratch)
        let backup = scratch.path("backup.sqlite")
        #expect(try Run.pitchfilter(["backup", "--db", db, backup]).status == 0)
        let old = timespec(tv_sec: time(nil) - 120, tv_nsec: 0)
        // The recent one an hour ahead: a loaded machine may take the minute that makes a copy old before the restore.
        let ahead = timespec(tv_sec: time(nil) + 3_600, tv_nsec: 0)
        let abandoned = scratch.path(".pitchfilter-restore.partial-a1"), held = scratch.path(".pitchfilter-restore.partial-b2")
        let recent = scratch.path(".pitchfilter-restore.partial-c3")
        for path in [abandoned, abandoned + "-wal", held, recent] {
            try Data("x".utf8).write(to: URL(fileURLWithPath: path))
            let times = path == recent ? ahead : old
            #expect(utimensat(AT_FDCWD, path, [times, times], 0) == 0)
        }
        let lock = open(held, O_RDONLY)
        defer { close(lock) }
        #expect(flock(lock, LOCK_EX) == 0)
        #expect(try Run.pitchfilter(["restore", "--db", db, backup]).status == 0)
        let left = try FileManager.default.contentsOfDirectory(atPath: scratch.url.path).filter { $0.contains("partial") }
        #expect(left.sorted() == [".pitchfilter-restore.partial-b2", ".pitchfilter-restore.partial-c3"])
    }

    /// The database itself, by its own name or another (a link), is no backup: refused before anything is done.
    @Test func theDatabaseItselfIsNoBackup() throws {
        let scratch = try Scratch()
        let db = try Self.trainedDatabase(in: scratch)
        #expect(symlink(db, scratch.path("link.sqlite")) == 0)
        for name in [db, scratch.path("link.sqlite")] {
            let run = try Run.pitchfilter(["restore", "--db", db, name])
            #expect(run.status == 3)
            #expect(run.stderr == "pitchfilter: \(name) is the database itself: give a backup\n")
        }
    }

    @Test(arguments: ["", "-", "copy\u{FFFD}.sqlite"])
    func aBackupThatNamesNoFileIsAUsageError(backup: String) throws {
        #expect(try Run.pitchfilter(["restore", backup]).status == 64)
    }
}
