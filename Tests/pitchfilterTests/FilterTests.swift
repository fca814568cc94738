import Foundation
import PitchClassifier
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

    /// Found by an audit: an empty file at the database's path (one that was truncated, say) became a new
    /// database at the first message filtered, and `stats` then showed an empty one; `classify` and `stats` read
    /// it as no database. The filter does too, and leaves it as it is.
    @Test func anEmptyDatabaseFileIsNoDatabaseAndIsLeftEmpty() throws {
        let scratch = try Scratch()
        let db = try scratch.write("empty.sqlite", "")
        // Emptied a while ago: one changed in the last few seconds is another process's new database.
        try FileManager.default.setAttributes([.modificationDate: Date(timeIntervalSinceNow: -60)], ofItemAtPath: db)
        let input = Array("From: growth@leads.example\nSubject: hi\n\nHi ,\nAre you looking to enhance your recruiting system?\n".utf8)
        let run = try Run.pitchfilter(["filter", "--db", db], stdin: input)
        let alone = try Run.pitchfilter(["filter", "--db", scratch.path("none.sqlite")], stdin: input)
        #expect(run.status == 0 && run.stderr.isEmpty)
        #expect(run.stdout == alone.stdout, "the starter model decides, as with no file")
        #expect(try FileManager.default.contentsOfDirectory(atPath: scratch.url.path) == ["empty.sqlite"])
        #expect(try FileManager.default.attributesOfItem(atPath: db)[.size] as? Int == 0)
        let stats = try Run.pitchfilter(["stats", "--db", db])
        #expect(stats.status == 0)
        // `train` makes a database of it, and says so (found in review).
        let train = try Run.pitchfilter(["train", "--db", db, "--pitch", "-"], stdin: input)
        #expect(train.status == 0)
        #expect(train.stderr == "pitchfilter: note: \(db): the database was an empty file and is a new database now "
            + "(if it held one, restore that from a backup)\n")
        #expect(stats.text.hasPrefix("database: \(db) (an empty file: nothing has been written to it, or it was "
            + "emptied; if it held a database, restore it from a backup)\nmessages: none trained yet (the starter "
            + "model decides)\n"))
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

    /// Found by an audit: a standard output the caller made non-blocking (Python's asyncio does) said EAGAIN
    /// once its pipe was full, and the filter gave up after 64 KiB with exit 74.
    @Test func aNonBlockingStandardOutputGetsTheWholeMessage() throws {
        let scratch = try Scratch()
        // 480 KB, seven times the pipe: enough to fill it, and classified well inside the 5 s deadline on a loaded
        // machine (4.8 MB took 0.45 s unloaded in a debug build).
        let message = "From: a@b.example\nSubject: x\n\n" + String(repeating: "hello world ", count: 40_000)
        let input = try scratch.write("big.eml", message)
        let ends = try Self.closeOnExecPipe()
        _ = fcntl(ends[1], F_SETFL, fcntl(ends[1], F_GETFL) | O_NONBLOCK)
        let child = try Spawned(Run.executable.path, ["filter", "--db", scratch.path("none.sqlite")],
                                stdin: input, stdout: ends[1])
        close(ends[1])
        // The reader comes late: the pipe fills, and write(2) says EAGAIN.
        var queued: Int32 = 0
        for _ in 0..<3_000 {
            _ = ioctl(ends[0], UInt(FIONREAD), &queued)
            if queued >= 60_000 { break }  // 64 KiB, less what the pipe's pages hold back
            usleep(20_000)
        }
        #expect(queued >= 60_000, "the filter never filled its output")
        let output = Self.readToEnd(ends[0])
        #expect(child.wait() == 0)
        let text = String(decoding: output, as: UTF8.self)
        let match = try #require(text.prefixMatch(of: Self.statusPattern))
        #expect(String(text[match.range.upperBound...]) == message)
    }

    /// Found in review: a message over the size limit has its forged fields taken out once the configuration is
    /// read, which may take a helper; a hung one is the deadline's, which passes the part read and the rest on.
    @Test func aMessageOverTheLimitPassesWholeWhenTheConfigurationHangs() throws {
        let scratch = try Scratch()
        let helper = try HungHelper(in: scratch)
        let message = Array("X-Pitch-Status: ham\nSubject: big\n\n".utf8)
            + [UInt8](repeating: UInt8(ascii: "x"), count: (32 << 20) + 100_000)
        let input = scratch.path("in.eml")
        #expect(FileManager.default.createFile(atPath: input, contents: Data(message)))
        let output = scratch.path("out.eml")
        let errors = scratch.path("err.txt")
        let child = try Spawned(helper.executable, ["filter", "--db", scratch.path("none.sqlite")], stdin: input,
                                stdoutPath: output, stderrPath: errors, environment: helper.environment)
        #expect(child.wait() == 0)
        #expect(try String(contentsOfFile: errors, encoding: .utf8)
            == "pitchfilter: deadline passed, message passed through unchanged\n")
        #expect(Self.same(Array(try Data(contentsOf: URL(fileURLWithPath: output)))[...], message))
    }

    /// Found by an audit: started with SIGALRM blocked (a signal mask is inherited), the filter waited for a hung
    /// configuration helper past its 5 s deadline, which Dovecot's 10 s kill then ends without the message; and
    /// when the deadline did come, the helper was left running.
    @Test func theDeadlineComesWithSIGALRMBlockedAndTakesAHungHelperAlong() throws {
        let scratch = try Scratch()
        let helper = try HungHelper(in: scratch)
        let message = "From: a@b.example\nSubject: hi\n\nHello\n"
        let input = try scratch.write("in.eml", message)
        let output = scratch.path("out.eml")
        let errors = scratch.path("err.txt")
        let child = try Spawned(helper.executable, ["filter", "--db", scratch.path("none.sqlite")], stdin: input,
                                stdoutPath: output, stderrPath: errors, blockingSIGALRM: true,
                                environment: helper.environment)
        #expect(child.wait() == 0)
        // The deadline's own word: with SIGALRM left blocked, the filter would wait for the helper for ever.
        #expect(try String(contentsOfFile: errors, encoding: .utf8)
            == "pitchfilter: deadline passed, message passed through unchanged\n")
        #expect(try String(contentsOfFile: output, encoding: .utf8) == message)
        let pid = try #require(helper.startedHelper())
        var gone = false
        for _ in 0..<50 where !gone {
            let state = (try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8))?
                .split(separator: ")").last?.split(separator: " ").first
            gone = state == nil || state == "Z"  // reaped, or killed and waiting for a parent that does not reap
            if !gone { usleep(100_000) }
        }
        #expect(gone, "the hung helper \(pid) still runs")
        if !gone { kill(pid, SIGKILL) }
    }

    /// A pipe whose ends close on exec, so that no other test's child keeps the write end open and the reader
    /// waiting (a spawn's dup2 onto 1 clears the flag there). Glibc's pipe2 is not visible to Swift.
    static func closeOnExecPipe() throws -> [Int32] {
        var ends: [Int32] = [0, 0]
        guard pipe(&ends) == 0 else { throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO) }
        for end in ends { _ = fcntl(end, F_SETFD, FD_CLOEXEC) }
        return ends
    }

    /// Everything until end of file; closes `fd`.
    static func readToEnd(_ fd: Int32) -> [UInt8] {
        var output: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 1 << 16)
        while true {
            let count = read(fd, &chunk, chunk.count)
            if count < 0 && errno == EINTR { continue }
            guard count > 0 else { break }
            output += chunk[..<count]
        }
        close(fd)
        return output
    }

    /// Found in review: a crash's copy of the message, written to a reader slower than the deadline, was cut short
    /// by it (exit 75, part of the message out, nothing said). The pipe stays full past the 5 s deadline here.
    @Test func aCrashsCopyForASlowReaderIsWrittenWholePastTheDeadline() async throws {
        let scratch = try Scratch()
        let helper = try HungHelper(in: scratch)
        let message = "From: a@b.example\nSubject: x\n\n" + String(repeating: "hello world ", count: 100_000)
        let input = try scratch.write("big.eml", message)
        let errors = scratch.path("err.txt")
        let ends = try Self.closeOnExecPipe()
        let child = try Spawned(helper.executable, ["filter", "--db", scratch.path("none.sqlite")], stdin: input,
                                stdout: ends[1], stderrPath: errors, environment: helper.environment)
        close(ends[1])
        #expect(helper.startedHelper() != nil, "the configuration helper never started")
        kill(child.pid, SIGSEGV)
        try await Task.sleep(for: .seconds(6))  // not a blocking sleep, which would hold one of the test pool's few threads
        let output = Self.readToEnd(ends[0])
        #expect(child.wait() == 0)
        #expect(output == Array(message.utf8))
        #expect(try String(contentsOfFile: errors, encoding: .utf8)
            == "pitchfilter: crashed (SIGSEGV) while classifying, message passed through unchanged\n")
    }

    /// Found in review: a crash while the message was being written ended by the signal, part of the message out
    /// and nothing said. The caller keeps its copy on 74, and hears why.
    @Test func aCrashWhileWritingIsAFailureToWrite() async throws {
        let scratch = try Scratch()
        let message = "From: a@b.example\nSubject: x\n\n" + String(repeating: "hello world ", count: 100_000)
        let input = try scratch.write("big.eml", message)
        let errors = scratch.path("err.txt")
        let ends = try Self.closeOnExecPipe()
        let child = try Spawned(Run.executable.path, ["filter", "--db", scratch.path("none.sqlite")], stdin: input,
                                stdout: ends[1], stderrPath: errors)
        close(ends[1])
        // Writing: the pipe holds all it can, and nobody reads it.
        var queued: Int32 = 0
        for _ in 0..<500 {
            _ = ioctl(ends[0], UInt(FIONREAD), &queued)
            if queued >= 60_000 { break }  // 64 KiB, less what the pipe's pages hold back
            try await Task.sleep(for: .milliseconds(20))
        }
        #expect(queued >= 60_000, "the filter never filled its output")
        try await Task.sleep(for: .milliseconds(100))
        kill(child.pid, SIGSEGV)
        let output = Self.readToEnd(ends[0])
        #expect(child.wait() == 74)
        #expect(output.count < message.utf8.count)
        #expect(try String(contentsOfFile: errors, encoding: .utf8)
            == "pitchfilter: crashed while writing the message; exit status 74, so the caller keeps its copy\n")
    }

    /// A crash while the message is classified (memory runs out and the runtime aborts, a trap, a bad access) is a
    /// failure like any other: the message as it came, a line saying why, status 0. The filter is stopped in a hung
    /// configuration helper and sent the signal the crash would raise.
    @Test(arguments: [SIGABRT, SIGILL, SIGTRAP, SIGSEGV, SIGBUS, SIGFPE])
    func aCrashWhileClassifyingPassesTheMessageThrough(signal: Int32) throws {
        let scratch = try Scratch()
        let helper = try HungHelper(in: scratch)
        let message = "From: a@b.example\r\nSubject: hi\r\n\r\nHello\r\n"
        let input = try scratch.write("in.eml", message)
        let output = scratch.path("out.eml")
        let errors = scratch.path("err.txt")
        let child = try Spawned(helper.executable, ["filter", "--db", scratch.path("none.sqlite")], stdin: input,
                                stdoutPath: output, stderrPath: errors, environment: helper.environment)
        // The helper has started: the message is read and being classified.
        let helperPID = helper.startedHelper()
        #expect(helperPID != nil, "the configuration helper never started")
        kill(child.pid, signal)
        #expect(child.wait() == 0)
        #expect(try String(contentsOfFile: output, encoding: .utf8) == message)
        let name = [SIGABRT: "SIGABRT", SIGILL: "SIGILL", SIGTRAP: "SIGTRAP", SIGSEGV: "SIGSEGV", SIGBUS: "SIGBUS",
                    SIGFPE: "SIGFPE"][signal] ?? "?"
        let said = try String(contentsOfFile: errors, encoding: .utf8)
        #expect(said == "pitchfilter: crashed (\(name)) while classifying, message passed through unchanged\n",
                "\(said)")
        if let helperPID { kill(helperPID, SIGKILL) }
    }

    /// Found in review: started with SIGCHLD ignored (inherited), the configuration helper was reaped by the
    /// kernel, waitpid failed, and every message passed through untagged.
    @Test func aCallerIgnoringSIGCHLDStillGetsItsMessageTagged() throws {
        let scratch = try Scratch()
        let config = try scratch.write("pitchfilter.toml", "[header]\nsubject_tag = \"[PITCH]\"\n")
        let input = try scratch.write("in.eml", "From: a@b.example\nSubject: hi\n\nHello\n")
        // bash, since dash gives the program it execs SIGCHLD's default back.
        let run = try Run.program(URL(fileURLWithPath: "/bin/bash"), ["-c",
            "trap '' CHLD; PITCHFILTER_CONFIG=\(config) XDG_CACHE_HOME=\(scratch.path("cache")) "
            + "exec \(Run.executable.path) filter --db \(scratch.path("none.sqlite")) < \(input)"])
        #expect(run.status == 0)
        #expect(run.stderr.isEmpty, "\(run.stderr)")
        #expect(run.text.hasPrefix("X-Pitch-Status: "))
    }

    /// No bytes is no message: nothing comes out, as nothing went in (two audits found a lone status line).
    @Test func emptyInputPassesThroughAsNothing() throws {
        let scratch = try Scratch()
        let run = try Run.pitchfilter(["filter", "--db", scratch.path("none.sqlite")])
        #expect(run.status == 0)
        #expect(run.stdout.isEmpty)
        #expect(run.stderr == "pitchfilter: empty input: no message, passed through unchanged\n")
    }

    /// Untagged, but without the fields of ours a sender wrote into it, where its header ends in the part read
    /// (found by an audit: a forged verdict went through in every message over the limit). A header that goes on
    /// past that part is left as it is: a field of ours could be cut there.
    @Test(arguments: [
        ("Subject: big\n\n", "Subject: big\n\n", ""),
        ("X-Pitch-Status: ham, score=0.0001\r\nSubject: big\r\nx-pitch-reasons: a\r\n b\r\n\r\n", "Subject: big\r\n\r\n",
         " but for 2 incoming fields of ours taken out"),
        ("X-Pitch-Status: ham\nX-Long: ", "X-Pitch-Status: ham\nX-Long: ", ""),
    ])
    func oversizeMessagePassesThroughUntagged(header: String, expected: String, note: String) throws {
        let scratch = try Scratch()
        let body = [UInt8](repeating: UInt8(ascii: "x"), count: (32 << 20) + 10)
        let run = try Run.pitchfilter(["filter", "--db", scratch.path("none.sqlite")], stdin: Array(header.utf8) + body)
        #expect(run.status == 0)
        #expect(Self.same(run.stdout[...], Array(expected.utf8) + body))
        #expect(run.stderr == "pitchfilter: message larger than 32 MiB, passed through unchanged\(note)\n")
    }

    /// Compared by memcmp, as a Bool: a debug build's generic comparison of 32 MiB takes seconds, and a failure
    /// printing two such arrays would be no help.
    static func same(_ output: ArraySlice<UInt8>, _ input: [UInt8]) -> Bool {
        output.count == input.count && output.withUnsafeBytes { out in
            input.withUnsafeBytes { out.count == 0 || memcmp(out.baseAddress!, $0.baseAddress!, input.count) == 0 }
        }
    }

    /// Standard input is read into arrays of 64 KiB, then twice as large each time, up to one byte past the limit:
    /// a message ending just before, at and after a stage's end, and one of exactly the limit, are read whole and
    /// tagged.
    @Test(arguments: [65_535, 65_536, 65_537, 131_072, 131_073, 32 << 20])
    func aMessageOfAnySizeUpToTheLimitIsReadWhole(size: Int) throws {
        let scratch = try Scratch()
        let header = "From: a@b.example\nSubject: sizes\n\n"
        let line = "Thanks for connecting, are you the right person?\n"
        var input = Array((header + String(repeating: line, count: (size - header.utf8.count) / line.utf8.count)).utf8)
        input += [UInt8](repeating: UInt8(ascii: "x"), count: size - input.count)
        let run = try Run.pitchfilter(["filter", "--db", scratch.path("none.sqlite")], stdin: input)
        #expect(run.status == 0)
        #expect(run.stderr.isEmpty, "\(run.stderr)")
        let statusLine = run.stdout.firstIndex(of: UInt8(ascii: "\n")).map { $0 + 1 } ?? 0
        #expect(run.stdout.starts(with: Array("X-Pitch-Status: ".utf8)))
        let unchanged = Self.same(run.stdout[statusLine...], input)
        #expect(unchanged, "\(run.stdout.count - statusLine) bytes after the status line, \(input.count) sent")
    }

    /// Under a limit on its memory (`ulimit -v`; Dovecot's `vsz_limit`, 256 MB by default, is one for its services,
    /// LMTP's Sieve filters included), a large message that does not fit is passed through unchanged with status 0,
    /// where the runtime's abort on a failed allocation left the caller a signal and nothing written. At every limit
    /// under which the filter passes a small message, the large one comes out tagged, or unchanged with a line
    /// saying why, and status 0.
    @Test func aMessageTooLargeForTheMemoryLimitPassesThrough() throws {
        let scratch = try Scratch()
        let line = "Thanks for connecting, are you the right person for a quick call next week?\n"
        let text = "From: a@b.example\nSubject: big\n\n" + String(repeating: line, count: 340_000)
        let input = Array(text.utf8)
        let large = try scratch.write("large.eml", text)
        let small = try scratch.write("small.eml", "From: a@b.example\nSubject: small\n\nHello\n")
        var outOfMemory = 0
        var tagged = 0
        for limit in stride(from: 80_000, through: 200_000, by: 10_000) {
            func filter(_ file: String) throws -> Run {
                try Run.shell("ulimit -v \(limit); exec '\(Run.executable.path)' filter "
                    + "--db '\(scratch.path("none.sqlite"))' < '\(file)'")
            }
            guard try filter(small).status == 0 else { continue }  // too little to start at all
            let run = try filter(large)
            let statusLine = run.stdout.firstIndex(of: UInt8(ascii: "\n")).map { $0 + 1 } ?? 0
            let unchanged = Self.same(run.stdout[...], input)
            let isTagged = run.stdout.starts(with: Array("X-Pitch-Status: ".utf8))
                && Self.same(run.stdout[statusLine...], input)
            #expect(run.status == 0 && (isTagged || unchanged && run.stderr.contains("passed through unchanged")),
                    "ulimit -v \(limit): status \(run.status), \(run.stdout.count) bytes out, \(run.stderr.prefix(200))")
            if unchanged, run.stderr.contains("out of memory after") { outOfMemory += 1 }
            if isTagged { tagged += 1 }
        }
        #expect(outOfMemory > 0 && tagged > 0, "\(outOfMemory) passed through for memory, \(tagged) tagged")
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

/// Found by an audit: a procmail recipe missing its subcommand (`:0 fw` then `| pitchfilter`) got the help text on
/// standard output with status 0, and delivered it in place of the message. A usage error makes procmail keep it.
@Suite struct MissingSubcommandTests {
    /// The usage line is the command's own: an error thrown from `run()` printed "Usage: pitchfilter <subcommand>"
    /// under `pitchfilter quarantine` and `pitchfilter contacts` (docs audit).
    @Test(arguments: [([], "pitchfilter", ""), (["contacts"], "pitchfilter contacts", "[--db <path>] [--config <file>] "),
                      (["quarantine"], "pitchfilter quarantine", "[--config <file>] [--db <path>] ")])
    func isAUsageErrorWithNothingOnStandardOutput(arguments: [String], name: String, options: String) throws {
        let run = try Run.pitchfilter(arguments, stdin: Array("Subject: hello\n\nhi\n".utf8))
        #expect(run.status == 64)
        #expect(run.stdout.isEmpty)
        #expect(run.stderr == """
            Error: '\(name)' needs a subcommand: see '\(name) --help'.
            Usage: \(name) \(options)<subcommand>
              See '\(name) --help' for more information.

            """)
    }

    /// Found by a check of the CLI from outside: swift-argument-parser's `help` answers a topic it does not know
    /// with the top-level help and status 0, and so did `--help` after a name that is no command (an audit's
    /// `pitchfilter forget --help`).
    @Test(arguments: [(["help", "nosuch"], "nosuch"), (["help", "contacts", "nosuch"], "nosuch"),
                      (["help", "train", "extra"], "extra"), (["forget", "--help"], "forget"),
                      (["bogus", "-h"], "bogus"), (["contacts", "nosuch", "--help"], "nosuch")])
    func helpForNoSuchCommandIsAUsageError(arguments: [String], topic: String) throws {
        let run = try Run.pitchfilter(arguments)
        #expect(run.status == 64)
        #expect(run.stdout.isEmpty)
        #expect(run.stderr == "Error: no command '\(topic)': see 'pitchfilter --help'.\n")
    }

    @Test(arguments: [["help"], ["help", "train"], ["help", "contacts", "import"], ["help", "classify", "--help"],
                      ["help", "help"], ["--help"], ["train", "--help"], ["contacts", "import", "-h"],
                      ["classify", "--db", "x", "--help"]])
    func helpForACommandStillHelps(arguments: [String]) throws {
        let run = try Run.pitchfilter(arguments)
        #expect(run.status == 0)
        #expect(run.text.contains("USAGE: pitchfilter"))
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

    /// Found in review: `train` judged a corrected message's template tokens by a relationship its own learning as
    /// ham had made, so a stranger's form letter moved to pitch lost `tmpl:stranger-others`.
    @Test func aCorrectedFormLetterIsStillFromAStranger() throws {
        let scratch = try Scratch()
        let db = scratch.path("db.sqlite")
        // Someone known, so that the book can call a sender a first contact; then two copies from other senders.
        let known = try scratch.write("known.eml", "From: <kim@elsewhere.example>\nTo: <maya@brightfield.example>\n"
            + "Subject: minutes\n\nThe minutes are attached.\n")
        #expect(try Run.pitchfilter(["train", "--db", db, "--ham", known]).status == 0)
        for (name, sender) in [("a.eml", "dan@slotwise.example"), ("b.eml", "amy@leadrocket.example")] {
            try Data(Self.letter(from: sender)).write(to: URL(fileURLWithPath: scratch.path(name)))
            #expect(try Run.pitchfilter(["train", "--db", db, "--pitch", scratch.path(name)]).status == 0)
        }
        let message = scratch.path("m.eml")
        try Data(Self.letter(from: "raj@growthly.example")).write(to: URL(fileURLWithPath: message))
        func strangerOthers() throws -> TokenCounts {
            let store = try SQLiteTokenStore(path: db, tokenizerIdentity: Engine.tokenizerIdentity, access: .readOnly)
            return try store.counts(of: [TokenID(hashing: "tmpl:stranger-others")]).counts[0]
        }
        let before = try strangerOthers()
        #expect(try Run.pitchfilter(["train", "--db", db, "--ham", message]).status == 0)
        #expect(try strangerOthers() == TokenCounts(pitch: before.pitch, ham: before.ham + 1))
        #expect(try Run.pitchfilter(["train", "--db", db, "--pitch", message]).text.contains("moved 1"))
        #expect(try strangerOthers() == TokenCounts(pitch: before.pitch + 1, ham: before.ham))
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

/// A child started with posix_spawn, for what Foundation's Process cannot set up: a non-blocking pipe as standard
/// output, an inherited signal mask.
struct Spawned {
    let pid: pid_t

    init(_ path: String, _ arguments: [String], stdin: String, stdout: Int32? = nil, stdoutPath: String? = nil,
         stderrPath: String? = nil, blockingSIGALRM: Bool = false, environment: [String]? = nil) throws {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, stdin, O_RDONLY, 0)
        if let stdout { posix_spawn_file_actions_adddup2(&actions, stdout, 1) }
        if let stdoutPath { posix_spawn_file_actions_addopen(&actions, 1, stdoutPath, O_WRONLY | O_CREAT | O_TRUNC, 0o600) }
        posix_spawn_file_actions_addopen(&actions, 2, stderrPath ?? "/dev/null", O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        // Nothing else of this process's: tests run side by side, and a child (or the hung helper it starts) that
        // kept another test's pipe or half-written file open would hold that test's reader, or fail its exec with
        // ETXTBSY. Glibc's closefrom action is not visible to Swift: the descriptors open now are listed instead.
        let keep = Set([stdout].compactMap { $0 })
        for name in (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd")) ?? [] {
            guard let fd = Int32(name), fd > 2, !keep.contains(fd) else { continue }
            posix_spawn_file_actions_addclose(&actions, fd)
        }
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        if blockingSIGALRM {
            var mask = sigset_t()
            sigemptyset(&mask)
            sigaddset(&mask, SIGALRM)
            posix_spawnattr_setsigmask(&attributes, &mask)
            posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK))
        }
        let argv = ([path] + arguments).map { strdup($0) } + [nil]
        defer { argv.forEach { free($0) } }
        var child: pid_t = 0
        // Without the runner's own settings for pitchfilter (as `Run.program`).
        let inherited = ProcessInfo.processInfo.environment
            .filter { !$0.key.hasPrefix("PITCHFILTER_") && $0.key != "XDG_DATA_HOME" }.map { "\($0.key)=\($0.value)" }
        var envp = (environment ?? inherited).map { strdup($0) } + [nil]
        defer { envp.forEach { free($0) } }
        var spawned: Int32 = 0
        // ETXTBSY: a file just written may still be open for writing in a child another test forked meanwhile.
        for _ in 0..<50 {
            spawned = posix_spawn(&child, path, &actions, &attributes, argv, &envp)
            guard spawned == ETXTBSY else { break }
            usleep(20_000)
        }
        guard spawned == 0 else { throw POSIXError(POSIXErrorCode(rawValue: spawned) ?? .EIO) }
        pid = child
    }

    /// The exit status (128 + the signal for a killed child).
    func wait() -> Int32 {
        var status: Int32 = 0
        while waitpid(pid, &status, 0) == -1 && errno == EINTR {}
        return status & 0x7f == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f)
    }
}

/// pitchfilter in `scratch`/bin beside a configuration helper (`pitchfilter-service`) that writes its pid to
/// `scratch`/helper.pid and hangs for 15 s, and a configuration file that makes the filter run it: the filter, once
/// it has read the message, waits there. The executable is linked, not copied where it can be, and the script is
/// written close-on-exec: a file open for writing for a moment, inherited by a child another test spawns and kept
/// by the hung helper that child starts, failed exec with ETXTBSY.
struct HungHelper {
    let executable: String
    let pidPath: String
    let environment: [String]

    init(in scratch: Scratch) throws {
        let bin = scratch.path("bin")
        try FileManager.default.createDirectory(atPath: bin, withIntermediateDirectories: true)
        executable = bin + "/pitchfilter"
        if link(Run.executable.path, executable) != 0 {
            try FileManager.default.copyItem(atPath: Run.executable.path, toPath: executable)
        }
        pidPath = scratch.path("helper.pid")
        // Renamed into place, so that the test never reads a half-written pid.
        let script = Array(("#!/bin/sh\necho $$ > \(pidPath).new\nmv \(pidPath).new \(pidPath)\n"
                            + "exec sleep 15\n").utf8)
        let fd = open(bin + "/pitchfilter-service", O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o755)
        guard fd >= 0 else { throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO) }
        let written = write(fd, script, script.count)
        close(fd)
        guard written == script.count else { throw POSIXError(.EIO) }
        let config = try scratch.write("pitchfilter.toml", "[header]\nsubject_tag = \"[PITCH]\"\n")
        environment = ["PITCHFILTER_CONFIG=\(config)", "HOME=\(scratch.path("home"))",
                       "XDG_CACHE_HOME=\(scratch.path("cache"))"]
    }

    /// The helper's pid, once it has started (waiting up to 4 s, inside the filter's 5 s deadline).
    func startedHelper() -> pid_t? {
        for _ in 0..<200 {
            if let text = try? String(contentsOfFile: pidPath, encoding: .utf8),
               let pid = pid_t(text.trimmingCharacters(in: .whitespacesAndNewlines)) {
                return pid
            }
            usleep(20_000)
        }
        return nil
    }
}
