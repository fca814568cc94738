/// The envelope of one message, as the MTA described it.
public struct MilterEnvelope: Sendable, Equatable {
    /// Every macro the MTA sent for this connection and message; later stages override earlier ones.
    public var macros: [String: String] = [:]
    /// MAIL FROM, without angle brackets.
    public var sender = ""
    public var recipients: [String] = []

    public init() {}

    /// The SMTP AUTH user, from `{auth_authen}`: mail from one of our own users on its way out.
    public var authenticatedUser: String? {
        macros["{auth_authen}"].flatMap { $0.isEmpty ? nil : $0 }
    }

    /// The MTA's queue id (`i`), for log lines an admin can match with the MTA's.
    public var queueID: String? { macros["i"] }
}

/// One message, put back together from the header fields and body chunks the MTA sent.
public struct MilterMessage: Sendable, Equatable {
    public var envelope: MilterEnvelope
    /// The header fields (CRLF line ends, as on the wire in SMTP), a blank line, then the body.
    public var bytes: [UInt8]
    /// Field names in the order received: SMFIR_CHGHEADER counts occurrences of a name.
    public var headerNames: [String]
    /// More than the buffer limit arrived, or the sessions' shared budget was spent (`isOverBudget`); `bytes` is
    /// then empty, as such a message is accepted untouched.
    public var isTruncated: Bool
    /// The message was not kept because the sessions together held `maximumBufferedBytes` already.
    public var isOverBudget: Bool
    public var size: Int
    /// Whether the MTA agreed to SMFIR_CHGHEADER: a change it did not agree to is not sent, so a handler must not
    /// record one as made.
    public var mayChangeHeaders: Bool
    /// Whether the MTA agreed to SMFIR_ADDHEADER and SMFIR_INSHEADER: without them no field of ours goes out.
    public var mayAddHeaders: Bool
    /// Whether the MTA agreed to SMFIR_QUARANTINE: without it no pitch is held.
    public var mayQuarantine: Bool
    /// Whether `bytes` holds each field's value as it was, the blanks after the colon included (SMFIP_HDR_LEADSPC
    /// agreed). Without it the MTA takes one blank off, or none where there was none, and the field is put back
    /// with one: "Subject:Hi" and "Subject:  Hi" read as "Subject: Hi".
    public var hasExactHeaderValues: Bool

    public init(envelope: MilterEnvelope, bytes: [UInt8], headerNames: [String], isTruncated: Bool, size: Int,
                isOverBudget: Bool = false, mayChangeHeaders: Bool = true, mayAddHeaders: Bool = true,
                mayQuarantine: Bool = true, hasExactHeaderValues: Bool = true) {
        self.envelope = envelope
        self.bytes = bytes
        self.headerNames = headerNames
        self.isTruncated = isTruncated || isOverBudget
        self.isOverBudget = isOverBudget
        self.size = size
        self.mayChangeHeaders = mayChangeHeaders
        self.mayAddHeaders = mayAddHeaders
        self.mayQuarantine = mayQuarantine
        self.hasExactHeaderValues = hasExactHeaderValues
    }
}

/// What the connection should do next; the session itself does no I/O.
public enum MilterAction: Sendable, Equatable {
    /// Nothing to send (a command negotiated as needing no reply, or macros).
    case none
    case reply([MilterReply])
    /// The message is complete: ask the handler, then call `decided` with its changes.
    case decide(MilterMessage)
    /// The MTA said goodbye.
    case close
    /// A protocol violation: close the connection, log why.
    case fail(MilterError)
}

/// The milter session state machine: commands in, actions out.
///
/// One per connection. It negotiates, collects the envelope and the message, and hands the whole message to the
/// handler at its end. It never touches the network; the channel handler carries out the actions it returns.
public struct MilterSession: Sendable {
    public enum State: Sendable, Equatable {
        case awaitingNegotiation
        /// Connected, between messages.
        case ready
        /// MAIL FROM seen: recipients, then the message.
        case inMessage
        /// The message went to the handler; only its answer (or an abort) may come next. The channel handler holds
        /// the commands the MTA sends behind the end-of-message until the answer is out.
        case awaitingDecision
        case closed
    }

    public private(set) var state = State.awaitingNegotiation
    /// What was agreed in OPTNEG.
    public private(set) var protocolFlags = MilterProtocolFlags()
    public private(set) var actions = MilterActions()
    let maximumMessageBytes: Int

    private var connectionMacros: [String: String] = [:]
    private var envelope = MilterEnvelope()
    private var message: [UInt8] = []
    private var headerNames: [String] = []
    private var headerEnded = false
    private var size = 0
    /// The message in hand is no longer kept (`stopKeepingMessage`): it will be accepted untouched.
    private var keepingStopped = false

    /// Bytes kept of the message in hand: its bytes and its field names (`cost(ofName:)`). What the connection
    /// counts against the sessions' shared budget. Zero once the message is handed to the handler
    /// (`MilterAction.decide`): the connection counts it for the decision instead.
    public var keptBytes: Int { message.count + headerNameBytes }
    private var headerNameBytes = 0

    /// Whether the next part of the message in hand would be kept: in a message, neither let go nor oversized.
    public var isKeepingMessage: Bool { state == .inMessage && !keepingStopped && size <= maximumMessageBytes }

    /// The actions this filter asks for: add our field, change forged ones, quarantine.
    public static let wantedActions: MilterActions = [.addHeaders, .changeHeaders, .quarantine]
    /// Steps skipped and replies not sent, when the MTA offers it: fewer round trips per message.
    public static let wantedFlags: MilterProtocolFlags = [
        .noConnect, .noHelo, .noUnknown, .noData,
        .noReplyMail, .noReplyRecipient, .noReplyHeader, .noReplyEndOfHeaders, .noReplyBody,
        .headerLeadingSpace,
    ]

    /// Recipients kept per message: Postfix's own default limit (`smtpd_recipient_limit`). Later ones are dropped;
    /// they would only have become contacts of an outbound message. Without a bound, 50,000 recipients of 2 KB
    /// sent on the socket held 100 MB for one message.
    public static let maximumRecipients = 1_000
    /// The longest address kept, sender or recipient: RFC 5321's longest path (256 octets with its angle brackets).
    /// A longer one is no address and is left out (found in review: 300 recipients of 1 MiB held 300 MB; cut to
    /// fit, one taught a false domain as a contact).
    public static let maximumAddressBytes = 256
    /// Distinct macro names kept per connection and per message: an MTA sends a dozen or two.
    public static let maximumMacros = 256
    /// Bytes kept of one macro's value: an MTA's are addresses, host names and ids. Without it, 512 macros of 1 MiB
    /// held 516 MiB for one session.
    public static let maximumMacroValueBytes = 1_024
    /// "{auth_authen}", "{client_addr}", "i": an MTA's macro names are short.
    public static let maximumMacroNameBytes = 64

    /// Whether a field's name (lower-cased) is kept for a message that is not: `MilterHandler.needsFieldName`.
    let needsFieldName: @Sendable (String) -> Bool

    /// `maximumMessageBytes`: how much of one message is kept; the rest is counted, not stored. `needsFieldName`:
    /// the names kept of a message that is not (over that limit or let go), for the forged fields it may carry.
    public init(maximumMessageBytes: Int, needsFieldName: @escaping @Sendable (String) -> Bool = { _ in true }) {
        self.maximumMessageBytes = maximumMessageBytes
        self.needsFieldName = needsFieldName
    }

    /// What a kept field name costs: its slot, and past 15 bytes (kept inline) its storage and allocation. Found in
    /// review: names of 16 bytes took about 89 bytes each.
    static func cost(ofName bytes: Int) -> Int {
        MemoryLayout<String>.stride + (bytes > 15 ? bytes + 48 : 0)
    }

    public mutating func receive(_ command: MilterCommand) -> MilterAction {
        switch (state, command) {
        case (.closed, _):
            return .none
        case (_, .quit):
            state = .closed
            return .close
        case (.awaitingNegotiation, .negotiate(let version, let offeredActions, let offeredFlags)):
            guard version >= 2 else { return fail(.versionTooOld(version)) }
            actions = Self.wantedActions.intersection(offeredActions)
            protocolFlags = Self.wantedFlags.intersection(offeredFlags)
            state = .ready
            return .reply([.negotiate(version: min(version, MilterWire.version), actions: actions,
                                      protocol: protocolFlags)])
        case (.awaitingNegotiation, _):
            return fail(.unexpected(command.code, state: "waiting for the option negotiation"))

        case (_, .quitNewConnection):
            // The MTA reuses the connection for a new SMTP session: forget everything but the negotiation.
            connectionMacros = [:]
            resetMessage()
            state = .ready
            return .none
        case (.awaitingDecision, .abort), (.inMessage, .abort), (.ready, .abort):
            resetMessage()
            state = .ready
            return .none
        case (.awaitingDecision, _):
            return fail(.unexpected(command.code, state: "the end-of-message answer is pending"))

        case (_, .macros(let stage, let macros)):
            if stage == MilterCommandCode.connect.rawValue || stage == MilterCommandCode.helo.rawValue {
                Self.merge(macros, into: &connectionMacros)
            } else {
                Self.merge(macros, into: &envelope.macros)
            }
            return .none
        case (.ready, .connect), (.ready, .helo):
            return continueUnless(command.code == .connect ? .noReplyConnect : .noReplyHelo)
        case (_, .unknown):
            return continueUnless(.noReplyUnknown)
        case (.ready, .mail(let arguments)):
            let macros = envelope.macros  // sent just before MAIL, for this message
            resetMessage()
            envelope.macros = connectionMacros.merging(macros) { $1 }
            envelope.sender = Self.boundedAddress(arguments[0]) ?? ""
            state = .inMessage
            return continueUnless(.noReplyMail)
        case (.inMessage, .recipient(let arguments)):
            if envelope.recipients.count < Self.maximumRecipients {
                if let address = Self.boundedAddress(arguments[0]) { envelope.recipients.append(address) }
            }
            return continueUnless(.noReplyRecipient)
        case (.inMessage, .data):
            return continueUnless(.noReplyData)
        case (.inMessage, .header(let name, let value)):
            // Every name while the message is kept; of one that is not (oversized, let go), only the names whose
            // forged copies the handler removes: the others (100,000 fields of 2 KB held 234 MB, 8 sessions of 8
            // million tiny ones 1.1 GB past the budget) would only be memory.
            let fieldName = String(decoding: name, as: UTF8.self)
            if isKeepingMessage || needsFieldName(fieldName.lowercased()) {
                headerNames.append(fieldName)
                headerNameBytes += Self.cost(ofName: name.count)
            }
            var field = name + [UInt8(ascii: ":")]
            if !protocolFlags.contains(.headerLeadingSpace) { field.append(UInt8(ascii: " ")) }
            // Folded values arrive with bare LF between their lines.
            for byte in value {
                if byte == 0x0A { field.append(0x0D) }
                field.append(byte)
            }
            append(field + [0x0D, 0x0A])
            return continueUnless(.noReplyHeader)
        case (.inMessage, .endOfHeaders):
            endHeader()
            return continueUnless(.noReplyEndOfHeaders)
        case (.inMessage, .body(let chunk)):
            endHeader()
            append(chunk)
            return continueUnless(.noReplyBody)
        case (.inMessage, .endOfMessage(let lastBody)):
            endHeader()
            append(lastBody)
            state = .awaitingDecision
            // Handed over, not shared: the handler holds the bytes while it decides, and the session keeps none.
            defer { message = []; headerNames = []; headerNameBytes = 0 }
            return .decide(MilterMessage(envelope: envelope, bytes: message, headerNames: headerNames,
                                         isTruncated: size > maximumMessageBytes, size: size,
                                         isOverBudget: keepingStopped && size <= maximumMessageBytes,
                                         mayChangeHeaders: actions.contains(.changeHeaders),
                                         mayAddHeaders: actions.contains(.addHeaders),
                                         mayQuarantine: actions.contains(.quarantine),
                                         hasExactHeaderValues: protocolFlags.contains(.headerLeadingSpace)))
        case (.ready, _), (.inMessage, _):
            return fail(.unexpected(command.code, state: state == .ready ? "between messages" : "in a message"))
        }
    }

    /// The handler's changes for the message just decided: they go out, then the message is accepted.
    ///
    /// Handlers give field values as they read (`ham, score=…`), or with the blank that follows the colon where
    /// it matters (a Subject's raw value). With SMFIP_HDR_LEADSPC agreed, the MTA writes `name:` and the value
    /// exactly as sent, so the space that belongs after the colon is added here if missing; without it, the MTA
    /// writes `name: ` and the value, so one leading blank is taken off. A change
    /// of a kind the MTA did not agree to in OPTNEG is not sent: Sendmail honours one while logging that the
    /// filter lied, and a stricter MTA would fail the message.
    public mutating func decided(_ changes: [MilterReply]) -> MilterAction {
        guard state == .awaitingDecision else { return .none }  // aborted or closed meanwhile
        resetMessage()
        state = .ready
        let spaced = protocolFlags.contains(.headerLeadingSpace)
        return .reply(changes.filter(isAgreed).map { spaced ? $0.withLeadingSpace : $0.withoutLeadingSpace }
            + [.accept])
    }

    private func isAgreed(_ change: MilterReply) -> Bool {
        switch change {
        case .addHeader, .insertHeader: actions.contains(.addHeaders)
        case .changeHeader: actions.contains(.changeHeaders)
        case .quarantine: actions.contains(.quarantine)
        case .negotiate, .continue, .accept, .tempfail, .progress: true
        }
    }

    private mutating func fail(_ error: MilterError) -> MilterAction {
        state = .closed
        return .fail(error)
    }

    private func continueUnless(_ noReply: MilterProtocolFlags) -> MilterAction {
        protocolFlags.contains(noReply) ? .none : .reply([.continue])
    }

    private mutating func endHeader() {
        guard !headerEnded else { return }
        headerEnded = true
        append([0x0D, 0x0A])
    }

    /// Lets go of the message in hand, which is then accepted untouched: the connection found the sessions'
    /// shared budget spent. Its size is still counted, and the names the handler needs still kept (forged fields
    /// of ours are removed from every message).
    public mutating func stopKeepingMessage() {
        guard state == .inMessage else { return }
        keepingStopped = true
        message = []
    }

    /// The connection is gone: nothing of it is kept (its handler may outlive it for a while).
    public mutating func release() {
        state = .closed
        connectionMacros = [:]
        resetMessage()
    }

    private mutating func append(_ bytes: [UInt8]) {
        size += bytes.count
        // An oversized message is accepted untouched, so none of it is needed: the memory goes back at once (40
        // sessions sending 33 MiB each held 1.85 GB until their end of message).
        guard size <= maximumMessageBytes, !keepingStopped else {
            if !message.isEmpty { message = [] }
            return
        }
        message.append(contentsOf: bytes)
    }

    private mutating func resetMessage() {
        envelope = MilterEnvelope()
        message = []
        headerNames = []
        headerNameBytes = 0
        headerEnded = false
        size = 0
        keepingStopped = false
    }

    /// Later values replace earlier ones; new names beyond `maximumMacros` are left out, and values are cut at
    /// `maximumMacroValueBytes`; names longer than `maximumMacroNameBytes` are no MTA's and are left out.
    private static func merge(_ macros: [String: String], into kept: inout [String: String]) {
        for (name, value) in macros where name.utf8.count <= maximumMacroNameBytes
            && (kept[name] != nil || kept.count < maximumMacros) {
            kept[name] = value.utf8.count <= maximumMacroValueBytes
                ? value : String(decoding: value.utf8.prefix(maximumMacroValueBytes), as: UTF8.self)
        }
    }

    /// `address(argument)` if it is no longer than `maximumAddressBytes`.
    static func boundedAddress(_ argument: String) -> String? {
        argument.utf8.count <= maximumAddressBytes ? address(argument) : nil
    }

    /// `<user@example.org>` → `user@example.org`.
    static func address(_ argument: String) -> String {
        var address = Substring(argument)
        if address.hasPrefix("<") { address = address.dropFirst() }
        if address.hasSuffix(">") { address = address.dropLast() }
        return String(address)
    }
}

extension MilterCommand {
    /// The command byte, for error messages.
    public var code: MilterCommandCode {
        switch self {
        case .negotiate: .negotiate
        case .macros: .macro
        case .connect: .connect
        case .helo: .helo
        case .mail: .mail
        case .recipient: .recipient
        case .data: .data
        case .header: .header
        case .endOfHeaders: .endOfHeaders
        case .body: .body
        case .endOfMessage: .endOfMessage
        case .abort: .abort
        case .quit: .quit
        case .quitNewConnection: .quitNewConnection
        case .unknown: .unknown
        }
    }
}
