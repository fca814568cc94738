import Foundation
import InMemoryLogging
import Logging
import PitchMessage
import PitchMilter
import PitchStore
import PitchTokenizer
import Testing

@testable import PitchDaemon
@testable import PitchEngine

@Suite struct MilterFilterTests {
    static let samples = MailboxWorkerTests.samples
    let directory: TemporaryDirectory

    init() throws {
        directory = try TemporaryDirectory("MilterFilterTests")
    }

    @Test(arguments: [
        ("unix:/run/pitchfilter/milter.sock",
         MilterServerConfiguration.Address.unix(path: "/run/pitchfilter/milter.sock", mode: 0o660)),
        ("inet:127.0.0.1:8891", .tcp(host: "127.0.0.1", port: 8891)),
        ("inet:8891@127.0.0.1", .tcp(host: "127.0.0.1", port: 8891)),
        ("inet:[::1]:25", .tcp(host: "::1", port: 25)),
        ("inet:localhost:8891", .tcp(host: "127.0.0.1", port: 8891)),
    ])
    func addressesInPostfixAndLibmilterSyntax(text: String, address: MilterServerConfiguration.Address) throws {
        #expect(try MilterConfiguration.address(text, key: "milter.listen") == address)
        // Written back as Postfix writes it (found in review: "inet:::1:25").
        #expect(address.description == (text == "inet:8891@127.0.0.1" || text == "inet:localhost:8891"
            ? "inet:127.0.0.1:8891" : text))
    }

    @Test(arguments: [
        ("inet:0.0.0.0:8891", "milter.listen: must listen on loopback (127.0.0.1 or ::1), found \"0.0.0.0\": "
            + "the milter protocol has no authentication"),
        ("inet:192.0.2.1:8891", "milter.listen: must listen on loopback (127.0.0.1 or ::1), found \"192.0.2.1\": "
            + "the milter protocol has no authentication"),
        ("unix:milter.sock", "milter.listen: a unix socket needs an absolute path, found \"unix:milter.sock\""),
        ("tcp:8891", "milter.listen: must be unix:/path or inet:127.0.0.1:PORT, found \"tcp:8891\""),
        ("inet:127.0.0.1:99999", "milter.listen: \"99999\" is not a port number (1 to 65535)"),
        // Found by an audit: port 0 listened wherever the kernel chose; a path too long for a socket address
        // passed --check and failed only at start.
        ("inet:127.0.0.1:0", "milter.listen: \"0\" is not a port number (1 to 65535)"),
        ("unix:/" + String(repeating: "d", count: 107), "milter.listen: a unix socket's path may have at most 107 "
            + "bytes, \"/" + String(repeating: "d", count: 107) + "\" has 108"),
    ])
    func addressesAnyoneCouldReachAreRefused(text: String, message: String) {
        do {
            _ = try MilterConfiguration.address(text, key: "milter.listen")
            Issue.record("\(text) was accepted")
        } catch {
            #expect(error.description == message)
        }
    }

    @Test func theMilterTableIsReadAndChecked() throws {
        let configuration = try Configuration.parse("""
            [milter]
            listen = "unix:/run/pitchfilter/milter.sock"
            socket_mode = "0600"
            hold_pitches = true
            subject_tag = "[PITCH]"
            header_position = "top"
            max_sessions = 50
            max_message_mib = 20
            max_buffered_mib = 100
            """, file: "test.toml")
        let milter = try #require(configuration.milter)
        #expect(milter.address == .unix(path: "/run/pitchfilter/milter.sock", mode: 0o600))
        #expect(milter.holdPitches && milter.subjectTag == "[PITCH]" && milter.headerPosition == .top)
        #expect(milter.maximumSessions == 50)
        #expect(milter.maximumMessageBytes == 20 << 20 && milter.maximumBufferedBytes == 100 << 20)
        // Without a budget of its own, a max_message_mib above the default one (valid before the budget was) is.
        let large = try #require(try Configuration.parse(
            "[milter]\nlisten = \"inet:127.0.0.1:1\"\nmax_message_mib = 600", file: "t").milter)
        #expect(large.maximumBufferedBytes == 600 << 20)
        let tooSmall = "16 is below max_message_mib (32): a message of that size would never be kept"
        #expect(throws: ConfigurationError(key: "milter.max_buffered_mib", tooSmall)) {
            try Configuration.parse("[milter]\nlisten = \"inet:127.0.0.1:1\"\nmax_buffered_mib = 16", file: "t")
        }
        #expect(throws: ConfigurationError(key: "milter.socket_mode", "only for a unix socket")) {
            try Configuration.parse("[milter]\nlisten = \"inet:127.0.0.1:1\"\nsocket_mode = \"0600\"", file: "t")
        }
        #expect(throws: ConfigurationError(key: "milter.hold_pitches", "must be true or false")) {
            try Configuration.parse("[milter]\nlisten = \"inet:127.0.0.1:1\"\nhold_pitches = \"yes\"", file: "t")
        }
    }

    @Test func forgedFieldsAreDeletedHighestOccurrenceFirst() {
        #expect(MilterFilter.removingForgedFields(
            ["Received", "X-Pitch-Status", "Subject", "x-pitch-status", "X-Pitch-Reasons"], ownFields: .standard) == [
                .changeHeader(index: 1, name: "X-Pitch-Reasons", value: ""),
                .changeHeader(index: 2, name: "x-pitch-status", value: ""),
                .changeHeader(index: 1, name: "X-Pitch-Status", value: ""),
            ])
    }

    /// Renamed in `[header]`, our fields are forgeries under their new names too, and X-Pitch-* stays ours.
    @Test func forgedFieldsUnderConfiguredNamesAreDeleted() throws {
        let renamed = try OwnFields(status: "X-Cold-Pitch", reasons: "X-Cold-Pitch-Why")
        #expect(MilterFilter.removingForgedFields(
            ["X-Cold-Pitch", "X-Spam-Status", "x-cold-pitch-why", "X-Pitch-Status", "X-Cold"], ownFields: renamed) == [
                .changeHeader(index: 1, name: "X-Pitch-Status", value: ""),
                .changeHeader(index: 1, name: "x-cold-pitch-why", value: ""),
                .changeHeader(index: 1, name: "X-Cold-Pitch", value: ""),
            ])
    }

    /// A message as the session hands it over: CRLF, header, blank line, body.
    static func milterMessage(_ file: String, authenticated: Bool = false) throws -> MilterMessage {
        let raw = try Array(Data(contentsOf: samples.appendingPathComponent(file)))
        var bytes: [UInt8] = []
        var previous: UInt8 = 0
        for byte in raw {
            if byte == 0x0A, previous != 0x0D { bytes.append(0x0D) }
            bytes.append(byte)
            previous = byte
        }
        var envelope = MilterEnvelope()
        envelope.sender = "sender@example.org"
        envelope.recipients = ["nadia@example.org", "colleague@partner.example"]
        if authenticated { envelope.macros["{auth_authen}"] = "nadia" }
        return MilterMessage(envelope: envelope, bytes: bytes, headerNames: [], isTruncated: false, size: bytes.count)
    }

    func filter(hold: Bool = true, tag: String? = "[PITCH]", cutoffs: Cutoffs = .standard, reasons: Bool = false,
                position: MilterConfiguration.HeaderPosition = .end, learnOutbound: Bool = true,
                ownFields: OwnFields = .standard,
                logger: Logger = Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() }))
    throws -> (MilterFilter, String) {
        var configuration = MilterConfiguration(address: .tcp(host: "127.0.0.1", port: 0))
        configuration.holdPitches = hold
        configuration.learnOutbound = learnOutbound
        configuration.subjectTag = tag
        configuration.headerPosition = position
        let path = directory.path + "/db-\(UUID().uuidString).sqlite"
        return (MilterFilter(configuration: configuration, databasePath: path, cutoffs: cutoffs, reasons: reasons,
                             ownFields: ownFields, logger: logger, reportClock: { 1_000 }), path)
    }

    /// The value of the X-Pitch-Status field the replies add first, if they do.
    static func status(_ replies: [MilterReply]) -> String? {
        guard case .addHeader("X-Pitch-Status", let status) = replies.first else { return nil }
        return status
    }

    @Test func aPitchIsTaggedInItsSubjectAndHeld() async throws {
        let (filter, _) = try filter()
        let replies = await filter.decide(try Self.milterMessage("pitch/h-p-003.eml"))
        #expect(replies.count == 3)
        #expect(Self.status(replies)?.hasPrefix("pitch, score=0.9") == true)
        #expect(replies[1] == .changeHeader(index: 1, name: "Subject",
                                            value: " [PITCH] Photorealistic renders for your projects"))
        guard case .quarantine(let reason) = replies[2] else {
            Issue.record("not held: \(replies)")
            return
        }
        #expect(reason.hasPrefix("pitchfilter: pitch, score=0.9"))
    }

    /// Found by an audit: with `hold_pitches`, an MTA that did not agree to quarantine (SMFIF_QUARANTINE) had the
    /// pitch counted as held (the session then left the reply out, and the pitch was delivered). No hold is asked
    /// for, so none is counted; the field and tag still go.
    /// Said at once, then once a minute with the count; the last minute's count as the milter stops (found in
    /// review: it was dropped).
    @Test func aPitchIsNotHeldWhereTheMTADidNotAgree() async throws {
        let lines = InMemoryLogHandler.keepingAll
        let (filter, _) = try filter(logger: Logger(label: "test", factory: { _ in lines }))
        var message = try Self.milterMessage("pitch/h-p-003.eml")
        message.mayQuarantine = false
        for _ in 1...3 {
            let replies = await filter.decide(message)
            #expect(replies.count == 2)
            #expect(Self.status(replies)?.hasPrefix("pitch, score=0.9") == true)
            #expect(!replies.contains { if case .quarantine = $0 { true } else { false } })
        }
        await filter.finish()
        #expect(lines.all.filter { $0.contains("delivered, not held") }.map { $0.prefix(24) }
            == ["1 pitch was delivered, n", "2 pitches were delivered"])
    }

    /// The other once-a-minute counts: said at once, then their last minute's count as the milter stops.
    @Test func forgedFieldsKeptAndMessagesWithoutOurFieldAreCountedToTheEnd() async throws {
        let lines = InMemoryLogHandler.keepingAll
        let (filter, _) = try filter(hold: false, logger: Logger(label: "test", factory: { _ in lines }))
        let clean = try Self.milterMessage("ham/h-h-001.eml")
        var message = MilterMessage(envelope: clean.envelope, bytes: clean.bytes,
                                    headerNames: ["From", "X-Pitch-Status", "Subject"], isTruncated: false,
                                    size: clean.size, mayChangeHeaders: false)
        message.mayAddHeaders = false
        for _ in 1...3 { _ = await filter.decide(message) }
        await filter.finish()
        #expect(lines.all.filter { $0.contains("kept forged fields of ours") }.map { $0.prefix(12) }
            == ["1 message ke", "2 messages k"])
        #expect(lines.all.filter { $0.contains("went on without a field of ours") }.map { $0.prefix(12) }
            == ["1 message we", "2 messages w"])
    }

    /// Found by an audit: SIGHUP logged "configuration reloaded" but the milter kept holding and tagging as it
    /// started. A reload's settings apply to the next message.
    @Test func aReloadChangesWhatTheMilterDoesToTheNextMessage() async throws {
        let (filter, _) = try filter(hold: false, tag: "")
        #expect(await filter.decide(try Self.milterMessage("pitch/h-p-003.eml")).count == 1)
        var configuration = MilterConfiguration(address: .tcp(host: "127.0.0.1", port: 0))
        configuration.holdPitches = true
        configuration.subjectTag = "[PITCH]"
        filter.update(configuration: configuration, cutoffs: .standard, reasons: false, ownFields: .standard)
        let replies = await filter.decide(try Self.milterMessage("pitch/h-p-003.eml"))
        #expect(replies.count == 3)
        #expect(replies.dropFirst().first == .changeHeader(index: 1, name: "Subject",
                                                          value: " [PITCH] Photorealistic renders for your projects"))
        filter.update(configuration: configuration, cutoffs: Cutoffs(pitch: 1, ham: 0.2)!, reasons: false,
                      ownFields: .standard)
        #expect(Self.status(await filter.decide(try Self.milterMessage("pitch/h-p-003.eml")))?
            .hasPrefix("unsure, score=0.9") == true)
        // `[header]` renamed: the verdict goes out under the new name.
        filter.update(configuration: configuration, cutoffs: Cutoffs(pitch: 1, ham: 0.2)!, reasons: false,
                      ownFields: try OwnFields(status: "X-Cold-Pitch", reasons: "X-Cold-Pitch-Reasons"))
        guard case .addHeader("X-Cold-Pitch", let value) = await filter.decide(
            try Self.milterMessage("pitch/h-p-003.eml")).first else {
            Issue.record("no X-Cold-Pitch")
            return
        }
        #expect(value.hasPrefix("unsure, score=0.9"))
    }

    /// Without a tag of its own, the milter uses `[header] subject_tag`, as the other paths do; its own wins.
    @Test func theMilterTagsWithTheHeaderTableTagUnlessItHasItsOwn() async throws {
        let (filter, _) = try filter(hold: false, tag: nil)
        #expect(await filter.decide(try Self.milterMessage("pitch/h-p-003.eml")).count == 1)
        var configuration = MilterConfiguration(address: .tcp(host: "127.0.0.1", port: 0))
        let tagging = try OwnFields.standard.withSubjectTag("[PITCH]")
        filter.update(configuration: configuration, cutoffs: .standard, reasons: false, ownFields: tagging)
        #expect(await filter.decide(try Self.milterMessage("pitch/h-p-003.eml")).last
            == .changeHeader(index: 1, name: "Subject", value: " [PITCH] Photorealistic renders for your projects"))
        configuration.subjectTag = "*COLD*"
        filter.update(configuration: configuration, cutoffs: .standard, reasons: false, ownFields: tagging)
        #expect(await filter.decide(try Self.milterMessage("pitch/h-p-003.eml")).last
            == .changeHeader(index: 1, name: "Subject", value: " *COLD* Photorealistic renders for your projects"))
        configuration.subjectTag = ""
        filter.update(configuration: configuration, cutoffs: .standard, reasons: false, ownFields: tagging)
        #expect(await filter.decide(try Self.milterMessage("pitch/h-p-003.eml")).count == 1)
    }

    /// `[classifier]` cutoffs reach the milter's verdicts: above every score, the pitch is only unsure, so it is
    /// neither tagged in its Subject nor held.
    @Test func theConfiguredCutoffsDecide() async throws {
        let (filter, _) = try filter(cutoffs: Cutoffs(pitch: 1, ham: 0.2)!)
        let replies = await filter.decide(try Self.milterMessage("pitch/h-p-003.eml"))
        #expect(replies.count == 1)
        #expect(Self.status(replies)?.hasPrefix("unsure, score=0.9") == true)
    }

    /// `[classifier] reasons`: X-Pitch-Reasons right after X-Pitch-Status, at the end or at the top.
    @Test func reasonsFollowTheStatus() async throws {
        let (atEnd, _) = try filter(hold: false, tag: "", reasons: true)
        var replies = await atEnd.decide(try Self.milterMessage("ham/h-h-001.eml"))
        #expect(replies.count == 2)
        #expect(Self.status(replies)?.hasPrefix("ham, score=0.0") == true)
        guard case .addHeader("X-Pitch-Reasons", let reasons) = replies.last else {
            Issue.record("no reasons: \(replies)")
            return
        }
        #expect(reasons.split(separator: ",").count == 5)

        let (atTop, _) = try filter(hold: false, tag: "", reasons: true, position: .top)
        replies = await atTop.decide(try Self.milterMessage("ham/h-h-001.eml"))
        guard case .insertHeader(0, "X-Pitch-Reasons", _) = replies.first,
              case .insertHeader(0, "X-Pitch-Status", _) = replies.last, replies.count == 2 else {
            Issue.record("not reasons then status, both at 0 (so status reads first): \(replies)")
            return
        }
    }

    @Test func hamGetsOnlyItsHeaderField() async throws {
        let (filter, _) = try filter()
        let replies = await filter.decide(try Self.milterMessage("ham/h-h-001.eml"))
        #expect(replies.count == 1)
        #expect(Self.status(replies)?.hasPrefix("ham, score=0.0") == true)
    }

    /// With `learn_outbound = false` (found by an audit: on TCP any local user can say `{auth_authen}`) outbound
    /// mail is still let through unclassified, and teaches nothing. The sender's own addresses among the recipients
    /// (a copy to oneself) are not correspondents (found by an audit).
    @Test(arguments: [true, false])
    func outboundMailIsNotClassifiedAndTeachesItsRecipients(learning: Bool) async throws {
        let (filter, path) = try filter(learnOutbound: learning)
        var outbound = try Self.milterMessage("pitch/h-p-003.eml", authenticated: true)
        outbound.envelope.recipients += ["Sender@example.org", "milan@renderhaus-viz.example"]
        #expect(await filter.decide(outbound) == [])
        await filter.finish()
        let store = try SQLiteTokenStore(path: path, tokenizerIdentity: Engine.tokenizerIdentity, access: .readOnly)
        #expect(try store.allContacts().map(\.address)
                    == (learning ? ["colleague@partner.example", "nadia@example.org"] : []))
    }

    /// Found by an audit: with the database removed and made again (or a backup put back, as the log's advice on
    /// a corrupt one says) the milter went on reading the removed file until a restart, and wrote to the new one
    /// only through the connections it had not opened yet. The file now at the path is the one used.
    @Test func aDatabaseReplacedUnderTheMilterIsOpenedAgain() async throws {
        let (filter, path) = try filter()
        #expect(Self.status(await filter.decide(try Self.milterMessage("ham/h-h-001.eml")))?.hasPrefix("ham") == true)
        #expect(await filter.decide(try Self.milterMessage("pitch/h-p-003.eml", authenticated: true)) == [])
        try await Task.sleep(for: .milliseconds(600))  // past the half second that makes a batch due
        #expect(Self.status(await filter.decide(try Self.milterMessage("ham/h-h-001.eml")))?.hasPrefix("ham") == true)
        #expect(try Self.contacts(at: path) == ["colleague@partner.example", "nadia@example.org"])
        for suffix in ["", "-wal", "-shm"] { unlink(path + suffix) }
        _ = try SQLiteTokenStore(path: path, tokenizerIdentity: Engine.tokenizerIdentity, access: .readWrite)
        #expect(try Self.contacts(at: path).isEmpty)
        var message = try Self.milterMessage("pitch/h-p-003.eml", authenticated: true)
        message.envelope.recipients = ["new@partner.example"]
        #expect(await filter.decide(message) == [])
        try await Task.sleep(for: .milliseconds(600))
        #expect(Self.status(await filter.decide(try Self.milterMessage("ham/h-h-001.eml")))?.hasPrefix("ham") == true)
        #expect(try Self.contacts(at: path) == ["new@partner.example"])
    }

    /// Found in review: an outbound message let go over the sessions' budget (or over max_message_mib) taught
    /// nothing, though only its envelope is read.
    @Test(arguments: [(true, false), (true, true)])
    func outboundMailNotKeptStillTeachesItsRecipients(truncated: Bool, overBudget: Bool) async throws {
        let (filter, path) = try filter()
        var message = try Self.milterMessage("pitch/h-p-003.eml", authenticated: true)
        message.bytes = []
        message.isTruncated = truncated
        message.isOverBudget = overBudget
        #expect(await filter.decide(message) == [])
        let store = try SQLiteTokenStore(path: path, tokenizerIdentity: Engine.tokenizerIdentity, access: .readOnly)
        #expect(try store.allContacts().map(\.address) == ["colleague@partner.example", "nadia@example.org"])
    }

    /// Of a message not kept, the session keeps the names of our own fields alone: those under the configured
    /// names and every X-Pitch- one.
    @Test func theFieldNamesKeptOfAMessageNotKeptAreOurOwn() throws {
        let (filter, _) = try filter(ownFields: try OwnFields(status: "X-Cold-Pitch", reasons: "X-Cold-Pitch-Why"))
        #expect(["x-cold-pitch", "x-cold-pitch-why", "x-pitch-status", "x-pitch-whatever"].allSatisfy {
            filter.needsFieldName($0)
        })
        #expect(!filter.needsFieldName("subject") && !filter.needsFieldName("x-cold"))
    }

    /// Found by an audit: an MTA that grants adding header fields but not changing them keeps a sender's forged
    /// fields beside ours, and that went without a word. It is logged (once a minute at most), and only then.
    @Test(arguments: [(false, true), (true, false)])
    func forgedFieldsTheMTAWillNotLetGoAreLogged(mayChange: Bool, logged: Bool) async throws {
        let lines = InMemoryLogHandler.keepingAll
        var configuration = MilterConfiguration(address: .tcp(host: "127.0.0.1", port: 0))
        configuration.holdPitches = false
        let filter = MilterFilter(configuration: configuration,
                                  databasePath: directory.path + "/db-\(UUID().uuidString).sqlite",
                                  cutoffs: .standard, reasons: false, ownFields: .standard,
                                  logger: Logger(label: "test", factory: { _ in lines }))
        let clean = try Self.milterMessage("ham/h-h-001.eml")
        let forged = MilterMessage(envelope: clean.envelope, bytes: clean.bytes,
                                   headerNames: ["From", "X-Pitch-Status", "Subject"], isTruncated: false,
                                   size: clean.size, mayChangeHeaders: mayChange)
        let replies = await filter.decide(forged)
        #expect(replies.contains(.changeHeader(index: 1, name: "X-Pitch-Status", value: "")))
        await filter.finish()
        #expect(lines.all.contains { $0.contains("kept forged fields of ours") } == logged)
    }

    /// Found by an audit: a database that could not be opened was logged once, and nothing said when mail was
    /// classified again. Polled: the milter tries again every 5 seconds.
    @Test func aDatabaseThatOpensAgainIsSaidToHaveOpened() async throws {
        let lines = InMemoryLogHandler.keepingAll
        let path = directory.path + "/db-\(UUID().uuidString).sqlite"
        try Data("not a database at all, and long enough to be read as one".utf8).write(to: URL(fileURLWithPath: path))
        let filter = MilterFilter(configuration: MilterConfiguration(address: .tcp(host: "127.0.0.1", port: 0)),
                                  databasePath: path, cutoffs: .standard, reasons: false, ownFields: .standard,
                                  logger: Logger(label: "test", factory: { _ in lines }))
        _ = await filter.decide(try Self.milterMessage("ham/h-h-001.eml"))
        #expect(lines.all.contains { $0.hasPrefix("milter cannot open the database") })
        #expect(unlink(path) == 0)
        let deadline = Date().addingTimeInterval(60)
        while !lines.all.contains(where: { $0.hasPrefix("milter opened the database again") }), Date() < deadline {
            _ = await filter.decide(try Self.milterMessage("ham/h-h-001.eml"))
            try await Task.sleep(for: .milliseconds(200))
        }
        #expect(lines.all.filter { $0.hasPrefix("milter opened the database again") }.count == 1)
        await filter.finish()
    }

    /// Messages let go over the budget are reported at most once a minute, with how many.
    @Test func messagesOverTheBudgetAreReportedOnceAMinuteWithTheirCount() throws {
        let (filter, _) = try filter()
        #expect(filter.overBudgetToReport(now: 1_000) == 1)
        #expect(filter.overBudgetToReport(now: 1_010) == nil)
        #expect(filter.overBudgetToReport(now: 1_059) == nil)
        #expect(filter.overBudgetToReport(now: 1_060) == 3)
        #expect(filter.overBudgetToReport(now: 1_061) == nil)
    }

    /// Another process's writer, as a `train` run or a `sqlite3` shell would be: holds the write lock on the
    /// database at `path` (having added one contact) until the returned function is called, which returns once
    /// the lock is given up.
    enum HoldError: Error { case lockNotTaken }

    static func holdWriteLock(_ path: String) throws -> @Sendable () -> Void {
        let holder = try SQLiteTokenStore(path: path, tokenizerIdentity: Engine.tokenizerIdentity, access: .readWrite)
        let locked = DispatchSemaphore(value: 0)
        let release = DispatchSemaphore(value: 0)
        let done = DispatchSemaphore(value: 0)
        Thread.detachNewThread {
            try? holder.inOneWrite {
                _ = try holder.addContacts(["lock@holder.example"], source: .sent, at: 1)
                locked.signal()
                release.wait()
            }
            done.signal()
        }
        // Bounded, so that a lock that cannot be had fails the test instead of hanging it.
        guard locked.wait(timeout: .now() + 60) == .success else { throw HoldError.lockNotTaken }
        return {
            release.signal()
            done.wait()
        }
    }

    /// A milter with a database, and another process holding the database's write lock until `release`.
    func filterBehindALock(logger: Logger = Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() }))
    async throws -> (filter: MilterFilter, path: String, release: @Sendable () -> Void) {
        let (filter, path) = try filter(hold: false, tag: "", logger: logger)
        _ = await filter.decide(try Self.milterMessage("ham/h-h-001.eml"))  // the database now exists
        return (filter, path, try Self.holdWriteLock(path))
    }

    /// The contacts the database at `path` holds, read as another process would.
    static func contacts(at path: String) throws -> [String] {
        try SQLiteTokenStore(path: path, tokenizerIdentity: Engine.tokenizerIdentity, access: .readOnly)
            .allContacts().map(\.address)
    }

    /// Found by an audit: while another process held the write lock, the best-effort recording of each due batch
    /// waited out the store's 2 s on the message's thread, and the decisions queued behind it (20 decisions took
    /// 40 s). Each batch waits 100 ms: said by the failures logged, not timed, since a loaded machine's decisions
    /// alone can take seconds.
    @Test func aDatabaseLockedByAnotherWriterDoesNotHoldUpDecisions() async throws {
        let lines = InMemoryLogHandler.keepingAll
        let (filter, _, release) = try await filterBehindALock(logger: Logger(label: "test", factory: { _ in lines }))
        let message = try Self.milterMessage("ham/h-h-001.eml")
        for _ in 0..<20 {
            #expect(Self.status(await filter.decide(message))?.hasPrefix("ham, score=0.0") == true)
            try await Task.sleep(for: .milliseconds(60))  // past the half second that makes a batch due, twice
        }
        release()
        let failures = lines.all.filter { $0.hasPrefix("template sightings or recipients not recorded: ") }
        #expect(!failures.isEmpty)
        #expect(failures.allSatisfy { $0.hasSuffix("stayed locked by another process for 100 ms: try again later") },
                "\(failures)")
    }

    /// Found by an audit: outbound mail's recipients were written through the store's connection, so another
    /// process holding the write lock kept each outbound message 2 s on a thread decisions need. They wait for
    /// the next batch instead, and are not lost.
    @Test func outboundMailWhileTheDatabaseIsLockedWaitsForTheNextBatch() async throws {
        let outbound = try Self.milterMessage("pitch/h-p-003.eml", authenticated: true)
        let lines = InMemoryLogHandler.keepingAll
        let (filter, path, release) = try await filterBehindALock(logger: Logger(label: "test", factory: { _ in lines }))
        let inbound = try Self.milterMessage("ham/h-h-001.eml")
        for _ in 0..<5 { #expect(await filter.decide(outbound) == []) }
        release()
        // Through the batch's connection, which waits 100 ms, not the store's 2 s: said by the failure logged, not
        // timed (in a full, parallel run of the debug build a decision itself took up to 1.8 s).
        let kept = lines.all.filter { $0.hasPrefix("outbound mail's recipients not recorded yet, kept for a later batch") }
        #expect(!kept.isEmpty)
        #expect(kept.allSatisfy { $0.hasSuffix("stayed locked by another process for 100 ms: try again later") },
                "\(kept)")
        let reader = try SQLiteTokenStore(path: path, tokenizerIdentity: Engine.tokenizerIdentity, access: .readOnly)
        #expect(try reader.allContacts().map(\.address) == ["lock@holder.example"])
        // The next batch, due half a second later, writes them.
        try await Task.sleep(for: .milliseconds(600))
        _ = await filter.decide(inbound)
        #expect(try reader.allContacts().map(\.address)
            == ["colleague@partner.example", "lock@holder.example", "nadia@example.org"])
    }

    /// Recipients kept in memory through failed writes were lost when the service stopped: the milter's end
    /// writes them, waiting for a `train` run's lock longer than a batch does.
    @Test func outboundRecipientsStillWaitingAreWrittenAsTheMilterStops() async throws {
        let (filter, path, release) = try await filterBehindALock()
        #expect(await filter.decide(try Self.milterMessage("pitch/h-p-003.eml", authenticated: true)) == [])
        // The lock goes a second into the last write, well inside its wait. From a Dispatch timer, not a task: with
        // the rest of the suite running, the cooperative pool's threads were all busy past the wait, the release
        // came too late and the test failed (once, on this 2-core machine).
        let released = DispatchSemaphore(value: 0)
        DispatchQueue.global().asyncAfter(deadline: .now() + 1) {
            release()
            released.signal()
        }
        await filter.finish()
        await withCheckedContinuation { continuation in
            DispatchQueue.global().async {
                released.wait()
                continuation.resume()
            }
        }
        #expect(try Self.contacts(at: path) == ["colleague@partner.example", "lock@holder.example", "nadia@example.org"])
        // A second finish has nothing left to write, and leaves the contacts as they are.
        await filter.finish()
        #expect(try Self.contacts(at: path) == ["colleague@partner.example", "lock@holder.example", "nadia@example.org"])
    }

    /// When another service fails, the group cancels the milter's task: its last write must happen all the same.
    @Test func theLastWriteHappensInACancelledTaskToo() async throws {
        let (filter, path, release) = try await filterBehindALock()
        _ = await filter.decide(try Self.milterMessage("pitch/h-p-003.eml", authenticated: true))
        release()
        let finishing = Task {
            while !Task.isCancelled { await Task.yield() }
            await filter.finish()
        }
        finishing.cancel()
        await finishing.value
        #expect(try Self.contacts(at: path) == ["colleague@partner.example", "lock@holder.example", "nadia@example.org"])
    }

    @Test func aTruncatedMessageIsLeftAlone() async throws {
        let (filter, _) = try filter()
        var message = try Self.milterMessage("pitch/h-p-003.eml")
        message.isTruncated = true
        #expect(await filter.decide(message) == [])
    }

    /// Found by an audit: a message that was not classified (too large, outbound, no database) kept a sender's
    /// forged X-Pitch-Status, which Sieve or mail client rules then acted on.
    @Test func forgedFieldsAreDeletedFromMessagesThatAreNotClassified() async throws {
        let forged: [MilterReply] = [.changeHeader(index: 1, name: "X-Pitch-Status", value: "")]
        let (filter, _) = try filter()
        var message = try Self.milterMessage("pitch/h-p-003.eml")
        message.headerNames = ["Received", "X-Pitch-Status", "Subject"]
        message.isTruncated = true
        #expect(await filter.decide(message) == forged)

        var outbound = try Self.milterMessage("pitch/h-p-003.eml", authenticated: true)
        outbound.headerNames = message.headerNames
        #expect(await filter.decide(outbound) == forged)

        var configuration = MilterConfiguration(address: .tcp(host: "127.0.0.1", port: 0))
        configuration.subjectTag = "[PITCH]"
        let noDatabase = MilterFilter(configuration: configuration, databasePath: directory.path, logger: Logger(
            label: "test", factory: { _ in SwiftLogNoOpLogHandler() }))
        message.isTruncated = false
        #expect(await noDatabase.decide(message) == forged)
    }

    /// The Subject's value with the tag, as SMFIR_CHGHEADER sends it (raw, its leading blank included, so the MTA
    /// writes the bytes `HeaderEdit` would), or nil where a reply could not give the rest back byte for byte.
    @Test(arguments: [
        ("Subject: Quick question\r\n", " [PITCH] Quick question"),
        ("Subject: Caf\u{E9} call\r\n", " [PITCH] Caf\u{E9} call"),
        ("Subject: =?utf-8?q?caf=C3=A9?= call\r\n", " [PITCH] =?utf-8?q?caf=C3=A9?= call"),
        ("Subject: one\r\n two\r\n", " [PITCH] one\n two"),
        ("Subject:\r\n\tquick call\r\n", " [PITCH]\n\tquick call"),
        ("Subject:\r\n", " [PITCH]"),
        ("Subject:\tTabbed\r\n", " [PITCH]\tTabbed"),
        ("Subject: [PITCH] again\r\n", nil),  // tagged already, by an earlier filter or the sender: left alone
        ("Subject: [PITCH]again\r\n", " [PITCH] [PITCH]again"),
        ("Subject:NoBlank\r\n", nil),
        ("Subject: quick\rcall\r\n", nil),
        ("From: a@example.org\r\n", nil),
    ] as [(String, String?)])
    func subjectTags(header: String, tagged: String?) {
        let message = Message(bytes: Array((header + "\r\nBody\r\n").utf8))
        #expect(MilterFilter.subjectValue(message, after: .add("[PITCH]"))?.value == tagged)
    }

    /// Latin-1 bytes (not UTF-8) as a raw legacy mailer sends them: left alone, not turned into U+FFFD.
    @Test func aSubjectThatIsNotUTF8IsNotTagged() {
        let message = Message(bytes: Array("Subject: Caf".utf8) + [0xE9] + Array(" call\r\n\r\nBody\r\n".utf8))
        #expect(MilterFilter.subjectValue(message, after: .add("[PITCH]"))?.value == nil)
    }

    /// A message tagged upstream with a tag of ours (here the previous configuration's, `[OLD]`, still named):
    /// the field that records it goes, the tag stays (nothing tells it from a sender's own); a pitch gets this
    /// milter's tag in front, and the status it adds records that one.
    @Test(arguments: [("ham/h-h-001.eml", "Re: Q2", nil), ("pitch/h-p-003.eml", "Photorealistic", "*COLD*")]
          as [(String, String, String?)])
    func aRecordedTagStaysWhenItsFieldGoes(file: String, subjectStart: String, tag: String?) async throws {
        let (filter, _) = try filter(hold: false, tag: "*COLD*",
                                     ownFields: try OwnFields.standard.withSubjectTag("", alsoOurs: ["[OLD]"]))
        let original = try Self.milterMessage(file)
        let text = String(decoding: original.bytes, as: UTF8.self)
        let bytes = Array(text.replacingOccurrences(of: "\nSubject: \(subjectStart)",
                                                    with: "\nSubject: [OLD] \(subjectStart)").utf8)
        #expect(bytes.count == original.bytes.count + 6)
        var tagged = original
        tagged.bytes = Array("X-Pitch-Status: pitch, score=0.99, version=x, tagged=[OLD]\r\n".utf8) + bytes
        tagged.headerNames = ["X-Pitch-Status"] + original.headerNames
        let replies = await filter.decide(tagged)
        #expect(replies.first == .changeHeader(index: 1, name: "X-Pitch-Status", value: ""))
        let subject = replies.compactMap { reply -> String? in
            if case .changeHeader(_, "Subject", let value) = reply { value } else { nil }
        }
        if let tag {
            #expect(subject.count == 1 && subject[0].hasPrefix(" \(tag) [OLD] \(subjectStart)"), "\(subject)")
        } else {
            #expect(subject.isEmpty, "\(subject)")
        }
        let status = replies.compactMap { reply -> String? in
            if case .addHeader("X-Pitch-Status", let value) = reply { value } else { nil }
        }
        #expect(status.count == 1)
        #expect(status.first?.hasSuffix(tag.map { ", tagged=\($0)" } ?? "") == true, "\(status)")
        #expect(status.first?.contains("tagged=") == (tag != nil))

        // An MTA that did not agree to header changes, to adding the field that records the tag, or to sending
        // values with their leading blanks (found in review): no Subject change, and no record of one.
        for refusal in [\MilterMessage.mayChangeHeaders, \.mayAddHeaders, \.hasExactHeaderValues] {
            var refused = tagged
            refused[keyPath: refusal] = false
            let unchanged = await filter.decide(refused)
            #expect(!unchanged.contains { if case .changeHeader(_, "Subject", _) = $0 { true } else { false } })
            #expect(!unchanged.contains {
                if case .addHeader(_, let value) = $0 { value.contains("tagged=") } else { false }
            })
        }
    }

    /// Found in review: the Subject went back as "Subject" whatever the message called it, and the MTA writes the
    /// name it is given, so "SUBJECT: [PITCH] …" came out "Subject: [PITCH] …" and the tag could not be taken back
    /// to the original bytes.
    @Test func theSubjectKeepsItsNameAsTheMessageSpellsIt() async throws {
        let (filter, _) = try filter(hold: false, tag: "[PITCH]")
        var message = try Self.milterMessage("pitch/h-p-003.eml")
        let text = String(decoding: message.bytes, as: UTF8.self)
        try #require(text.contains("\nSubject: Photorealistic"))
        message.bytes = Array(text.replacingOccurrences(of: "\nSubject: Photorealistic",
                                                        with: "\nSUBJECT: Photorealistic").utf8)
        message.headerNames = ["From", "SUBJECT", "Subject"]  // as the MTA sent them; a second Subject is not ours
        let replies = await filter.decide(message)
        #expect(replies.contains { if case .changeHeader(1, "SUBJECT", let value) = $0 {
            value.hasPrefix(" [PITCH] Photorealistic") } else { false } })
        #expect(!replies.contains { if case .changeHeader(_, "Subject", _) = $0 { true } else { false } })
    }

    /// Found by audits: a sender's forged record took their own words off the Subject: "tagged=" a tag this
    /// installation does not write, one on a verdict other than pitch, and (with two audits, through Postfix) our
    /// own tag's text in front of a Subject the sender began with it. The field goes; the Subject stays theirs.
    @Test(arguments: [
        ("pitch, score=0.99, version=x, tagged=Re:", ""),
        ("ham, score=0.01, version=x, tagged=*COLD*", "*COLD* "),
        ("pitch, score=0.99, version=x, tagged=*COLD*", "*COLD* "),
        ("pitch, score=0.99, version=x, tagged=*COLD*", "*COLD* *COLD* "),
    ])
    func aForgedRecordTakesNothingOffTheSubject(forged: String, senderWrote: String) async throws {
        let (filter, _) = try filter(hold: false, tag: "*COLD*")
        let original = try Self.milterMessage("ham/h-h-001.eml")  // Subject: Re: Q2 …
        var message = original
        let subject = String(decoding: original.bytes, as: UTF8.self).contains("\nSubject: Re: Q2")
        #expect(subject)
        let bytes = String(decoding: original.bytes, as: UTF8.self)
            .replacingOccurrences(of: "\nSubject: Re: Q2", with: "\nSubject: \(senderWrote)Re: Q2")
        message.bytes = Array("X-Pitch-Status: \(forged)\r\n".utf8) + Array(bytes.utf8)
        message.headerNames = ["X-Pitch-Status"] + original.headerNames
        let replies = await filter.decide(message)
        #expect(replies.first == .changeHeader(index: 1, name: "X-Pitch-Status", value: ""))
        #expect(!replies.contains { if case .changeHeader(_, "Subject", _) = $0 { true } else { false } }, "\(replies)")
    }
}

