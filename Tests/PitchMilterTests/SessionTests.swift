import Testing

@testable import PitchMilter

/// The session state machine: every command in every state, and the message it puts together.
@Suite struct SessionTests {
    /// What an MTA that offers everything (Postfix 3.x) and one that offers no no-reply flags (an old Sendmail)
    /// put in OPTNEG.
    static let everything = MilterCommand.negotiate(version: 6, actions: MilterActions(rawValue: 0x1FF),
                                                    protocol: MilterProtocolFlags(rawValue: 0x1FFFFF))
    static let noNoReply = MilterCommand.negotiate(version: 2, actions: MilterActions(rawValue: 0x3F),
                                                   protocol: MilterProtocolFlags(rawValue: 0x7F))

    enum Stage: String, CaseIterable, CustomTestStringConvertible {
        case awaitingNegotiation, ready, inMessage, awaitingDecision, closed
        var testDescription: String { rawValue }
    }

    /// A session brought to `stage` by the commands an MTA would send.
    static func session(at stage: Stage, negotiatedWith negotiation: MilterCommand = everything) -> MilterSession {
        var session = MilterSession(maximumMessageBytes: 1 << 20)
        let steps: [MilterCommand] = switch stage {
        case .awaitingNegotiation: []
        case .ready: [negotiation]
        case .inMessage: [negotiation, .mail(["<a@example.org>"])]
        case .awaitingDecision: [negotiation, .mail(["<a@example.org>"]), .endOfMessage(lastBody: [])]
        case .closed: [negotiation, .quit]
        }
        for step in steps { _ = session.receive(step) }
        return session
    }

    /// What each command does in each state, when the MTA offered every no-reply flag. "fail" closes the
    /// connection; "continue" answers SMFIR_CONTINUE; "none" sends nothing.
    static let table: [(Stage, MilterCommand, String, MilterSession.State)] = {
        let commands: [(MilterCommand, [Stage: (String, MilterSession.State)])] = [
            (everything, [.awaitingNegotiation: ("negotiate", .ready)]),
            (.macros(for: 0x4D, ["i": "Q1"]), [.ready: ("none", .ready), .inMessage: ("none", .inMessage)]),
            // Steps the filter skipped, should an MTA send them anyway: answered, since no no-reply flag covers them.
            (.connect(hostname: "client"), [.ready: ("continue", .ready)]),
            (.helo("client"), [.ready: ("continue", .ready)]),
            (.mail(["<a@example.org>"]), [.ready: ("none", .inMessage)]),
            (.recipient(["<b@example.org>"]), [.inMessage: ("none", .inMessage)]),
            (.data, [.inMessage: ("continue", .inMessage)]),
            (.header(name: Array("Subject".utf8), value: Array(" Hi".utf8)), [.inMessage: ("none", .inMessage)]),
            (.endOfHeaders, [.inMessage: ("none", .inMessage)]),
            (.body(Array("Hello\r\n".utf8)), [.inMessage: ("none", .inMessage)]),
            (.endOfMessage(lastBody: []), [.inMessage: ("decide", .awaitingDecision)]),
            (.abort, [.ready: ("none", .ready), .inMessage: ("none", .ready), .awaitingDecision: ("none", .ready)]),
            (.unknown(Array("XYZZY".utf8)), [.ready: ("continue", .ready), .inMessage: ("continue", .inMessage)]),
            (.quit, [.awaitingNegotiation: ("close", .closed), .ready: ("close", .closed),
                     .inMessage: ("close", .closed), .awaitingDecision: ("close", .closed)]),
            (.quitNewConnection, [.ready: ("none", .ready), .inMessage: ("none", .ready),
                                  .awaitingDecision: ("none", .ready)]),
        ]
        var rows: [(Stage, MilterCommand, String, MilterSession.State)] = []
        for (command, outcomes) in commands {
            for stage in Stage.allCases {
                if let (kind, next) = outcomes[stage] {
                    rows.append((stage, command, kind, next))
                } else if stage == .closed {
                    rows.append((stage, command, "none", .closed))  // nothing after QUIT is answered
                } else {
                    rows.append((stage, command, "fail", .closed))
                }
            }
        }
        return rows
    }()

    static func kind(_ action: MilterAction) -> String {
        switch action {
        case .none: "none"
        case .reply(let replies):
            replies.first.map { if case .negotiate = $0 { "negotiate" } else { "\($0)" } } ?? "empty reply"
        case .decide: "decide"
        case .close: "close"
        case .fail: "fail"
        }
    }

    @Test(arguments: table)
    func everyCommandInEveryState(stage: Stage, command: MilterCommand, expected: String,
                                  next: MilterSession.State) {
        var session = Self.session(at: stage)
        #expect(Self.kind(session.receive(command)) == expected)
        #expect(session.state == next)
    }

    @Test func withoutNoReplyFlagsEveryStepIsAnsweredContinue() {
        var session = Self.session(at: .ready, negotiatedWith: Self.noNoReply)
        #expect(session.receive(.mail(["<a@example.org>"])) == .reply([.continue]))
        #expect(session.receive(.recipient(["<b@example.org>"])) == .reply([.continue]))
        #expect(session.receive(.header(name: Array("To".utf8), value: Array("b@example.org".utf8)))
            == .reply([.continue]))
        #expect(session.receive(.endOfHeaders) == .reply([.continue]))
        #expect(session.receive(.body(Array("x".utf8))) == .reply([.continue]))
    }

    @Test func negotiationAsksOnlyForWhatTheMTAOffersAndTheFilterNeeds() {
        var session = MilterSession(maximumMessageBytes: 1024)
        let action = session.receive(Self.noNoReply)
        #expect(action == .reply([.negotiate(version: 2, actions: [.addHeaders, .changeHeaders, .quarantine],
                                             protocol: [.noConnect, .noHelo])]))
        var modern = MilterSession(maximumMessageBytes: 1024)
        #expect(modern.receive(Self.everything) == .reply([.negotiate(
            version: 6, actions: [.addHeaders, .changeHeaders, .quarantine], protocol: MilterSession.wantedFlags)]))
        var ancient = MilterSession(maximumMessageBytes: 1024)
        #expect(ancient.receive(.negotiate(version: 1, actions: [], protocol: [])) == .fail(.versionTooOld(1)))
    }

    @Test func theMessageIsPutBackTogetherWithCRLFAndTheEnvelopeKept() {
        var session = Self.session(at: .ready)
        _ = session.receive(.macros(for: 0x4D, ["i": "4XyZ", "{auth_authen}": "alice"]))
        _ = session.receive(.mail(["<alice@example.org>", "SIZE=10"]))
        _ = session.receive(.recipient(["<bob@example.net>"]))
        _ = session.receive(.recipient(["<carol@example.net>"]))
        _ = session.receive(.header(name: Array("Subject".utf8), value: Array(" Hello\n\tworld".utf8)))
        _ = session.receive(.header(name: Array("X-Pitch-Status".utf8), value: Array(" ham".utf8)))
        _ = session.receive(.endOfHeaders)
        _ = session.receive(.body(Array("Line one\r\n".utf8)))
        guard case .decide(let message) = session.receive(.endOfMessage(lastBody: Array("Line two\r\n".utf8))) else {
            Issue.record("no decision asked for")
            return
        }
        #expect(message.bytes
            == Array("Subject: Hello\r\n\tworld\r\nX-Pitch-Status: ham\r\n\r\nLine one\r\nLine two\r\n".utf8))
        #expect(message.headerNames == ["Subject", "X-Pitch-Status"])
        #expect(message.envelope.sender == "alice@example.org")
        #expect(message.envelope.recipients == ["bob@example.net", "carol@example.net"])
        #expect(message.envelope.queueID == "4XyZ")
        #expect(message.envelope.authenticatedUser == "alice")
        #expect(!message.isTruncated)
        // Postfix agreed to SMFIP_HDR_LEADSPC, so it writes "X-Pitch-Status:" and the value exactly as sent.
        #expect(session.decided([.addHeader(name: "X-Pitch-Status", value: "ham"),
                                 .changeHeader(index: 1, name: "X-Pitch-Old", value: "")])
            == .reply([.addHeader(name: "X-Pitch-Status", value: " ham"),
                       .changeHeader(index: 1, name: "X-Pitch-Old", value: ""), .accept]))
        #expect(session.state == .ready)
    }

    /// Found by an audit: changes went out whatever the MTA had agreed to.
    @Test(arguments: [
        (0x00, [] as [MilterReply]),
        (0x01, [.addHeader(name: "X-Pitch-Status", value: " pitch")]),
        (0x11, [.addHeader(name: "X-Pitch-Status", value: " pitch"),
                .changeHeader(index: 1, name: "X-Pitch-Status", value: "")]),
        (0x31, [.addHeader(name: "X-Pitch-Status", value: " pitch"),
                .changeHeader(index: 1, name: "X-Pitch-Status", value: ""), .quarantine(reason: "pitch")]),
    ] as [(UInt32, [MilterReply])])
    func onlyChangesTheMTAAgreedToGoOut(offered: UInt32, sent: [MilterReply]) {
        let negotiation = MilterCommand.negotiate(version: 6, actions: MilterActions(rawValue: offered),
                                                  protocol: MilterProtocolFlags(rawValue: 0x1FFFFF))
        var session = Self.session(at: .awaitingDecision, negotiatedWith: negotiation)
        #expect(session.decided([.addHeader(name: "X-Pitch-Status", value: "pitch"),
                                 .changeHeader(index: 1, name: "X-Pitch-Status", value: ""),
                                 .quarantine(reason: "pitch")]) == .reply(sent + [.accept]))
    }

    @Test func withoutLeadingSpaceTheMTAAddsTheSpaceItself() {
        var session = Self.session(at: .ready, negotiatedWith: Self.noNoReply)
        _ = session.receive(.mail(["<a@example.org>"]))
        _ = session.receive(.endOfMessage(lastBody: []))
        #expect(session.decided([.addHeader(name: "X-Pitch-Status", value: "ham")])
            == .reply([.addHeader(name: "X-Pitch-Status", value: "ham"), .accept]))
    }

    /// A Subject's raw value keeps its leading blank (" [PITCH]\tHi"): with SMFIP_HDR_LEADSPC it goes out as it
    /// is, and without it one blank comes off, since the MTA then writes "Subject: " itself. Either way the MTA
    /// writes "Subject: [PITCH]\tHi", the bytes the pipe filter would.
    @Test func aSubjectValueKeepsItsBlanksExactlyOnTheWire() {
        let change = MilterReply.changeHeader(index: 1, name: "Subject", value: " [PITCH]\tHi")
        var spaced = Self.session(at: .awaitingDecision)
        #expect(spaced.decided([change]) == .reply([change, .accept]))
        var unspaced = Self.session(at: .ready, negotiatedWith: Self.noNoReply)
        _ = unspaced.receive(.mail(["<a@example.org>"]))
        _ = unspaced.receive(.endOfMessage(lastBody: []))
        #expect(unspaced.decided([change, .changeHeader(index: 1, name: "X-Pitch-Status", value: "")])
            == .reply([.changeHeader(index: 1, name: "Subject", value: "[PITCH]\tHi"),
                       .changeHeader(index: 1, name: "X-Pitch-Status", value: ""), .accept]))
    }

    /// The handler learns whether SMFIR_CHGHEADER and SMFIR_ADDHEADER will go out, so that it records only
    /// changes that are made, and whether the values it reads are exact (SMFIP_HDR_LEADSPC).
    @Test(arguments: [(0x1FF as UInt32, 0x1FFFFF as UInt32, true, true, true), (0x01, 0x1FFFFF, false, true, true),
                      (0x10, 0x1FFFFF, true, false, true), (0x1FF, 0x0FFFFF, true, true, false)])
    func theMessageSaysWhatMayChange(offered: UInt32, flags: UInt32, change: Bool, add: Bool, exact: Bool) {
        let negotiation = MilterCommand.negotiate(version: 6, actions: MilterActions(rawValue: offered),
                                                  protocol: MilterProtocolFlags(rawValue: flags))
        var session = Self.session(at: .inMessage, negotiatedWith: negotiation)
        guard case .decide(let message) = session.receive(.endOfMessage(lastBody: [])) else {
            Issue.record("no decision")
            return
        }
        #expect(message.mayChangeHeaders == change)
        #expect(message.mayAddHeaders == add)
        #expect(message.hasExactHeaderValues == exact)
    }

    /// Found by an audit: the first 32 MiB of an oversized message stayed in memory until its end, unused.
    @Test func aMessageOverTheLimitIsNotKeptAndIsMarked() {
        var session = MilterSession(maximumMessageBytes: 16)
        _ = session.receive(Self.everything)
        _ = session.receive(.mail(["<a@example.org>"]))
        _ = session.receive(.endOfHeaders)
        _ = session.receive(.body(Array(repeating: 0x61, count: 100)))
        guard case .decide(let message) = session.receive(.endOfMessage(lastBody: [])) else {
            Issue.record("no decision asked for")
            return
        }
        #expect(message.bytes.isEmpty)
        #expect(message.size == 102)
        #expect(message.isTruncated)
    }

    /// A message let go because the sessions' shared budget is spent: nothing kept from then on, the size still
    /// counted, the field names still there (our forged fields are removed from it too), and the next message
    /// kept again.
    @Test func aMessageLetGoIsMarkedOverBudgetAndTheNextIsKept() {
        var session = Self.session(at: .inMessage)
        _ = session.receive(.header(name: Array("Subject".utf8), value: Array(" Hi".utf8)))
        let nameCost = MilterSession.cost(ofName: 7)  // "Subject"
        #expect(session.keptBytes == 13 + nameCost)
        #expect(session.isKeepingMessage)
        session.stopKeepingMessage()
        #expect(session.keptBytes == nameCost)  // the names stay, for our forged fields
        #expect(!session.isKeepingMessage)
        _ = session.receive(.header(name: Array("X-Pitch-Status".utf8), value: Array(" ham".utf8)))
        _ = session.receive(.endOfHeaders)
        _ = session.receive(.body(Array("Body\r\n".utf8)))
        #expect(session.keptBytes == nameCost + MilterSession.cost(ofName: 14))
        guard case .decide(let message) = session.receive(.endOfMessage(lastBody: [])) else {
            Issue.record("no decision asked for")
            return
        }
        #expect(message.bytes.isEmpty)
        #expect(message.size == 13 + 21 + 2 + 6)
        #expect(message.headerNames == ["Subject", "X-Pitch-Status"])
        #expect(message.isTruncated && message.isOverBudget)
        #expect(session.keptBytes == 0)  // handed over with the decision

        _ = session.decided([])
        #expect(session.keptBytes == 0)
        _ = session.receive(.mail(["<a@example.org>"]))
        _ = session.receive(.header(name: Array("Subject".utf8), value: Array(" Hi".utf8)))
        guard case .decide(let next) = session.receive(.endOfMessage(lastBody: Array("Body\r\n".utf8))) else {
            Issue.record("no decision asked for")
            return
        }
        #expect(next.bytes == Array("Subject: Hi\r\n\r\nBody\r\n".utf8))
        #expect(session.keptBytes == 0)
        #expect(!next.isTruncated && !next.isOverBudget)
    }

    /// A message over `maximumMessageBytes` is over its own limit, not the budget, even if also let go.
    @Test func aMessageOverItsOwnLimitIsNotCalledOverBudget() {
        var session = MilterSession(maximumMessageBytes: 16)
        _ = session.receive(Self.everything)
        _ = session.receive(.mail(["<a@example.org>"]))
        _ = session.receive(.body(Array(repeating: 0x61, count: 100)))
        session.stopKeepingMessage()
        guard case .decide(let message) = session.receive(.endOfMessage(lastBody: [])) else {
            Issue.record("no decision asked for")
            return
        }
        #expect(message.isTruncated && !message.isOverBudget)
    }

    /// Found by an audit: 512 macros of 1 MiB held 516 MiB for one session.
    @Test func macroValuesAndNamesAreBounded() {
        var session = Self.session(at: .ready)
        let long = String(repeating: "é", count: 2_000)
        _ = session.receive(.macros(for: 0x4D, ["{auth_authen}": long, String(repeating: "n", count: 65): "x"]))
        _ = session.receive(.mail(["<a@example.org>"]))
        guard case .decide(let message) = session.receive(.endOfMessage(lastBody: [])) else {
            Issue.record("no decision asked for")
            return
        }
        #expect(message.envelope.macros.keys.sorted() == ["{auth_authen}"])
        #expect(message.envelope.macros["{auth_authen}"]?.utf8.count ?? 0 <= MilterSession.maximumMacroValueBytes)
        #expect(message.envelope.macros["{auth_authen}"]?.hasPrefix("éé") == true)
    }

    /// Found in review: a recipient was kept whole, and 300 of 1 MiB held 300 MB; cut to fit, a longer one taught
    /// a false domain. One longer than RFC 5321's longest path is left out, a sender too.
    @Test func anAddressLongerThanSMTPAllowsIsLeftOut() {
        var session = Self.session(at: .inMessage)
        _ = session.receive(.recipient(["<" + String(repeating: "é", count: 200) + "@example.org>"]))
        _ = session.receive(.recipient(["<" + String(repeating: "a", count: 242) + "@example.org>"]))  // 256
        _ = session.receive(.recipient(["<b@example.org>"]))
        guard case .decide(let message) = session.receive(.endOfMessage(lastBody: [])) else {
            Issue.record("no decision asked for")
            return
        }
        #expect(message.envelope.recipients == [String(repeating: "a", count: 242) + "@example.org", "b@example.org"])
        var other = Self.session(at: .ready)
        _ = other.receive(.mail(["<" + String(repeating: "s", count: 300) + "@example.org>"]))
        guard case .decide(let second) = other.receive(.endOfMessage(lastBody: [])) else {
            Issue.record("no decision asked for")
            return
        }
        #expect(second.envelope.sender == "")
    }

    /// What a message can make the session hold is bounded, whatever the MTA (or a client on the socket) sends.
    @Test func recipientsMacrosAndHeaderNamesAreBounded() {
        var session = MilterSession(maximumMessageBytes: 64, needsFieldName: { $0 == "x-f7" })
        _ = session.receive(Self.everything)
        for connect in 0..<300 { _ = session.receive(.macros(for: 0x43, ["c\(connect)": "x"])) }
        _ = session.receive(.macros(for: 0x43, ["c0": "changed"]))  // a name already kept still changes
        _ = session.receive(.macros(for: 0x4D, ["i": "Q1"]))
        _ = session.receive(.mail(["<a@example.org>"]))
        for recipient in 0..<(MilterSession.maximumRecipients + 500) {
            _ = session.receive(.recipient(["<r\(recipient)@example.org>"]))
        }
        for field in 0..<10 {
            _ = session.receive(.header(name: Array("X-F\(field)".utf8), value: Array(" 1234567".utf8)))
        }
        _ = session.receive(.endOfHeaders)
        guard case .decide(let message) = session.receive(.endOfMessage(lastBody: [])) else {
            Issue.record("no decision asked for")
            return
        }
        #expect(message.envelope.recipients.count == MilterSession.maximumRecipients)
        #expect(message.envelope.recipients.last == "r\(MilterSession.maximumRecipients - 1)@example.org")
        // The connection's 256 names and the message's own "i" (a message's macros are kept apart and merged).
        #expect(message.envelope.macros.count == MilterSession.maximumMacros + 1)
        #expect(message.envelope.macros["c0"] == "changed")
        #expect(message.envelope.queueID == "Q1")
        // Each field is 15 bytes: the fifth begins inside the 64 kept and is named, the rest begin past them, and
        // of those only the one the handler needs (its own field's, for forged copies) is named.
        #expect(message.headerNames == ["X-F0", "X-F1", "X-F2", "X-F3", "X-F4", "X-F7"])
        #expect(message.bytes.isEmpty)
        #expect(message.isTruncated)
    }

    @Test func anAbortedMessageLeavesNothingBehindForTheNext() {
        var session = Self.session(at: .ready)
        _ = session.receive(.mail(["<first@example.org>"]))
        _ = session.receive(.header(name: Array("Subject".utf8), value: Array(" first".utf8)))
        _ = session.receive(.abort)
        _ = session.receive(.mail(["<second@example.org>"]))
        _ = session.receive(.endOfHeaders)
        guard case .decide(let message) = session.receive(.endOfMessage(lastBody: [])) else {
            Issue.record("no decision asked for")
            return
        }
        #expect(message.bytes == Array("\r\n".utf8))
        #expect(message.envelope.sender == "second@example.org")
        #expect(message.headerNames.isEmpty)
    }

    @Test func aDecisionArrivingAfterAnAbortIsDropped() {
        var session = Self.session(at: .awaitingDecision)
        _ = session.receive(.abort)
        #expect(session.decided([.addHeader(name: "X-Pitch-Status", value: "ham")]) == .none)
    }
}
