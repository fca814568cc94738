import PitchClassifier
import PitchMessage
import PitchStore
import PitchTokenizer

#if canImport(Glibc)
import Glibc
#endif

/// A verdict on one message, with what it was based on.
public struct Assessment: Sendable {
    public var classification: Classification
    /// Whether the starter model's counts were added to the user's (too little own training yet), or used alone
    /// (one class has no messages yet: `ModelSchedule.scoredOwnTotals`).
    public var usedStarterModel: Bool
    public var tokenCount: Int
}

/// Classify, train and forget: the steps between a parsed message and the token store.
///
/// Data flows one way: message → tokens → counts (one store round trip) → classifier. The engine reads no
/// configuration and opens no files; its caller hands it a store (or none) and the starter model.
public struct Engine: Sendable {
    public let tokenizer: Tokenizer
    /// When the starter model's counts are added, and the settings that score them.
    public var schedule: ModelSchedule
    public let store: (any TokenCountSource)?
    /// Where the relationship token comes from; without one, messages get no `rel:` token.
    public let contacts: (any ContactLookup)?
    /// Where the template tokens come from; without one, messages get no `tmpl:` tokens.
    public let templates: (any TemplateLookup)?
    /// Only evaluated when the user's own training is too small: decoding it costs more than the rest of a pipe
    /// filter's run on a trained database.
    private let starter: @Sendable () -> StarterModel?

    public init(store: (any TokenCountSource)?,
                starter: @autoclosure @escaping @Sendable () -> StarterModel? = .embedded,
                schedule: ModelSchedule = .standard, contacts: (any ContactLookup)? = nil,
                templates: (any TemplateLookup)? = nil,
                tokenizer: Tokenizer = Tokenizer()) {
        self.store = store
        self.tokenizer = tokenizer
        self.contacts = contacts
        self.templates = templates
        self.starter = starter
        self.schedule = schedule
    }

    /// `explaining`: keep the tokens' texts for the explanation; without it the evidence has ids' counts only
    /// and empty token names, which is all a verdict needs.
    public func assess(_ message: Message, explaining: Bool = true) throws -> Assessment {
        try assess(tokens(of: message, keepingTexts: explaining))
    }

    /// The tokenizer's tokens plus those of the mailbox's history: the relationship token (`rel:known-address`,
    /// `rel:known-domain` or `rel:first-contact` for the sender, once the contact book knows anybody; and
    /// `rel:own-domain` for a colleague, `Colleagues`) and the template tokens (`tmpl:`, `templateTokens`).
    ///
    /// There was a reply token too, `ref:known` or `ref:unknown` for a reply to a message this mailbox had or had
    /// never seen (a made-up References field). Issue 7's ablation found it added nothing: all nine English sets
    /// pooled, a young database flagged 718 of 750 pitches with it and 719 without (1−AUC 0.0471 % and 0.0469 %),
    /// and SpamAssassin 5-fold ranked 0.0154 % with it and 0.0155 % without. A sequence's follow-up threads itself
    /// to the sender's first letter, which the mailbox did receive, so it read as known as a genuine reply; and a
    /// reply to the owner's own mail comes from someone the owner wrote to, which `rel:` already says. Telling
    /// apart ids the owner sent, or the same sender's, helped by one pitch at most (718–719 flagged, 0.0466–0.0468 %),
    /// not enough for a memory that records where each id came from, so the token went, with the memory of every
    /// message id that fed it.
    public func tokens(of message: Message, keepingTexts: Bool) throws -> MessageTokens {
        try tokensAndHistory(of: message, Correspondents(of: message), keepingTexts: keepingTexts).tokens
    }

    /// All the tokens, and which of them came from the mailbox's history (training keeps those apart).
    /// `learning`: the digest of a message being learned, whose own earlier learning is not its history.
    private func tokensAndHistory(of message: Message, _ correspondents: Correspondents, keepingTexts: Bool,
                                  learning digest: [UInt8]? = nil) throws
        -> (tokens: MessageTokens, history: [String]) {
        var tokens = tokenizer.tokenize(message, keepingTexts: keepingTexts)
        let history = try historyTokens(tokens, correspondents, learning: digest) { self.digest(of: message) }
        for token in history { tokens.append(token) }
        return (tokens, history)
    }

    /// The tokens of the mailbox's history for a message the tokenizer gave `tokens`, whose correspondents and
    /// digest are known already: what `tokens(of:)` appends, for a replay that tokenized its messages as it read
    /// them and holds no message until they are in date order (`MailboxReplay`).
    public func historyTokens(for tokens: MessageTokens, _ correspondents: Correspondents,
                              digest: [UInt8]) throws -> [String] {
        try historyTokens(tokens, correspondents, learning: nil) { digest }
    }

    /// The tokens of the mailbox's history for a message the tokenizer gave `tokens`. `messageDigest` is called only
    /// for a message the template memory is asked about: one without a skeleton or a sender needs no hashing.
    private func historyTokens(_ tokens: MessageTokens, _ correspondents: Correspondents, learning digest: [UInt8]?,
                               messageDigest: () -> [UInt8]) throws -> [String] {
        var history: [String] = []
        let sender = correspondents.sender
        var relationship = Relationship.unknown
        if let contacts, let sender {
            // A message learned again (a correction, a move and back) would otherwise find its sender known
            // through its own earlier learning as ham, and teach that to the other class.
            relationship = try digest.map { try contacts.relationship(with: sender, apartFrom: $0) }
                ?? contacts.relationship(with: sender)
            // A first-time colleague otherwise looks like any stranger until the contact book learns the domain (from
            // the Sent folder, or from ham), and a mailbox trained without its Sent folder may never learn it. A token
            // of its own rather than `rel:known-domain`, so that a database keeps what it learned of that one; and
            // no `rel:first-contact` beside it, which issue 7 says must not fire for a colleague (found by an audit:
            // a colleague's first message scored unsure for it).
            let colleague = correspondents.isFromAColleague
            if relationship != .unknown, !(colleague && relationship == .firstContact) {
                history.append("rel:" + relationship.rawValue)
            }
            if colleague { history.append("rel:own-domain") }
        }
        if let templates, let sighting = Self.templateSighting(tokens, correspondents, digest: messageDigest) {
            let seen = try templates.sightings(like: sighting, since: Self.now() - TemplateWindow.seconds)
            history += Self.templateTokens(seen, sender: relationship, colleague: correspondents.isFromAColleague)
        }
        return history
    }

    /// `tmpl:others-N`, how many other senders sent the same skeleton lately, and `tmpl:same-note` if this sender
    /// sent it to this recipient before; nothing while the memory is empty, when no count would mean anything.
    /// `tmpl:stranger-others` when the sender is a first contact and others sent the same text: colleagues'
    /// invitations and share notices come from one generator too, but not from strangers, and the classifier
    /// weighs tokens one by one, so only a token of its own can say "both at once". A `colleague` (`rel:own-domain`)
    /// writing for the first time is no stranger either (found by an audit: a first-time colleague's invitation
    /// was called a stranger's). Where no delivery field says which recipient is the mailbox's owner, a stranger
    /// who copies a coworker of theirs counts as a colleague here as for `rel:own-domain` (`Colleagues`): one
    /// message is never called both (found in review).
    public static func templateTokens(_ seen: TemplateSightings, sender relationship: Relationship,
                                      colleague: Bool) -> [String] {
        guard !seen.memoryIsEmpty else { return [] }
        var tokens = ["tmpl:others-" + bucket(seen.otherSenders)]
        if seen.sameNoteBefore { tokens.append("tmpl:same-note") }
        if relationship == .firstContact, !colleague, seen.otherSenders > 0 { tokens.append("tmpl:stranger-others") }
        return tokens
    }

    /// What the template memory records for this message: its skeleton's bands, sender and first recipient.
    /// `correspondents` and `digest` save parsing and hashing again when the caller has them.
    public func templateSighting(of message: Message, _ tokens: MessageTokens, correspondents: Correspondents? = nil,
                                 digest: [UInt8]? = nil) -> TemplateSighting? {
        guard tokens.template != nil else { return nil }
        return Self.templateSighting(tokens, correspondents ?? Correspondents(of: message)) {
            digest ?? self.digest(of: message)
        }
    }

    /// The sighting of a message with these tokens and correspondents; `digest` is asked only for one that has a
    /// skeleton and a sender.
    static func templateSighting(_ tokens: MessageTokens, _ correspondents: Correspondents,
                                 digest: () -> [UInt8]) -> TemplateSighting? {
        guard let template = tokens.template, let sender = correspondents.sender else { return nil }
        return TemplateSighting(bands: template.bands, sender: addressKey(sender),
                                recipient: addressKey(correspondents.recipients.first ?? ""),
                                message: sightingIdentity(messageID: correspondents.messageID, sender: sender,
                                                          digest: digest))
    }

    /// An address as the template memory keeps it: the first 8 bytes of the SHA-256 of its lower-cased form. A
    /// hash, not an index into a table of addresses: two processes (a filter and the service) must give one address
    /// the same key without asking each other; 64 bits make two addresses sharing a key among a month's mail
    /// unlikely, and a sender who made one on purpose would gain nothing they do not have by sending from one address.
    static func addressKey(_ address: String) -> UInt64 {
        MessageDigest.sha256(Array("address\u{0}".utf8) + Array(address.lowercased().utf8))
            .prefix(8).reduce(0) { $0 << 8 | UInt64($1) }
    }

    /// Which message a sighting is, so that it is recorded once and never counts against itself: where it has a
    /// Message-ID, that id with its sender, else its digest. So a second delivery of one message (the copy through
    /// a list beside the one sent to you, another Received line and perhaps a footer, or through an alias) is the
    /// same message, not the same note sent again (found by an audit: the second copy of a colleague's mail got
    /// `tmpl:same-note`, a pitch's token). With the sender, an id one mailer puts on every copy of a campaign, or
    /// another sender's id taken on purpose, makes no two senders' letters one (found in review: such a campaign
    /// was recorded once, and never counted). A list that rewrites From ("Alice via Team") makes another sender,
    /// as it did by digest. The first 8 bytes of a SHA-256.
    static func sightingIdentity(messageID: [UInt8]?, sender: String, digest: () -> [UInt8]) -> UInt64 {
        guard let messageID else { return digest().prefix(8).reduce(0) { $0 << 8 | UInt64($1) } }
        let bytes = Array("message-id\u{0}".utf8) + messageID + [0] + Array(sender.lowercased().utf8)
        return MessageDigest.sha256(bytes).prefix(8).reduce(0) { $0 << 8 | UInt64($1) }
    }

    /// Records messages in the template memory, so later near-duplicates of them are known.
    public static func remember(_ sightings: [TemplateSighting], in memory: any TemplateMemory) throws {
        guard !sightings.isEmpty else { return }
        let now = Self.now()
        try memory.record(sightings, at: now, expireBefore: now - TemplateWindow.seconds)
    }

    static func now() -> Int64 { Int64(time(nil)) }

    /// Other senders of the same skeleton: 0, 1, 2, 3-4, 5-8, 9+.
    static func bucket(_ count: Int) -> String {
        switch count {
        case ..<3: String(max(count, 0))
        case 3...4: "3-4"
        case 5...8: "5-8"
        default: "9+"
        }
    }

    /// The first Message-ID field's value, unfolded and without the white space around it, if not empty.
    public static func messageID(of message: Message) -> [UInt8]? {
        let header = message.header
        guard let field = header.first(named: "message-id") else { return nil }
        let value = header.unfoldedValue(of: field)
        return value.isEmpty ? nil : Array(value)
    }

    /// The address in the first From field, if there is one.
    public static func sender(of message: Message) -> String? {
        let header = message.header
        guard let field = header.first(named: "from") else { return nil }
        var defects: [Defect] = []
        return AddressList.parse(header.unfoldedValue(of: field), defects: &defects).first?.address
    }

    /// The addresses a message was sent to: To's, then Cc's, then Bcc's, so that the first is the addressee
    /// whatever order the fields come in (found in review: a Cc above To made the sender's coworker the
    /// addressee). The owner's correspondents when the owner sent it.
    public static func recipients(of message: Message) -> [String] {
        let header = message.header
        var defects: [Defect] = []
        // Names compared in place: a String made and lowercased for each field of each message was a fifth of
        // this function's time (callgrind, training).
        return ["to", "cc", "bcc"].flatMap { name in
            header.fields.filter { header.field($0, isNamed: name) }
                .flatMap { AddressList.parse(header.unfoldedValue(of: $0), defects: &defects).map(\.address) }
        }
    }

    /// The correspondents a message the owner sent was written to: its recipients but `own` (the sender's address,
    /// and for the milter the envelope's), which a copy to oneself names (a Cc, a Bcc, a note to oneself). Known, the
    /// owner's own address vouched for every pitch forged in the owner's name (found by an audit: 7 of 100 held-out
    /// pitches with From set to their addressee went from pitch to unsure once a Sent folder with such copies was
    /// imported).
    /// Compared as the contact book keys them (`ContactKey`: lower case, a domain's trailing dot and its
    /// internationalized spellings one).
    public static func correspondents(writtenTo recipients: [String], own: [String]) -> [String] {
        let own = Set(own.compactMap(ContactKey.init))
        return recipients.filter { ContactKey($0).map { !own.contains($0) } ?? true }
    }

    /// `correspondents(writtenTo:own:)` of a message the owner sent.
    public static func correspondents(writtenToIn sent: Message) -> [String] {
        correspondents(writtenTo: recipients(of: sent), own: sender(of: sent).map { [$0] } ?? [])
    }

    /// Who a message is from and to, parsed once for the several questions asked of them.
    public struct Correspondents: Sendable {
        /// The address in the first From field.
        public let sender: String?
        /// To, Cc and Bcc's addresses.
        public let recipients: [String]
        /// The first Message-ID field's value, unfolded and trimmed; nil if there is none, or it is empty.
        public let messageID: [UInt8]?
        /// Whether the sender writes from a recipient's own domain (`Colleagues`): `rel:own-domain`, and no
        /// `tmpl:stranger-others`, in classifying and in training alike.
        public let isFromAColleague: Bool

        public init(of message: Message) {
            sender = Engine.sender(of: message)
            recipients = Engine.recipients(of: message)
            messageID = Engine.messageID(of: message)
            isFromAColleague = sender.map { [recipients] in
                Colleagues.isColleague($0, in: message.header, recipients: recipients)
            } ?? false
        }
    }

    /// The message's tokens and the verdict on them: every lookup one message needs. `explaining`: keep the
    /// tokens' texts, for `reasonsValue`.
    public func tokensAndAssessment(of message: Message, explaining: Bool = false) throws
        -> (MessageTokens, Assessment) {
        let tokens = try tokens(of: message, keepingTexts: explaining)
        return (tokens, try assess(tokens))
    }

    /// Classifies tokens already taken from a message.
    public func assess(_ tokens: MessageTokens) throws -> Assessment {
        var counts: [TokenCounts]
        var own = ClassTotals()  // the user's training
        if let store {
            (counts, own) = try store.counts(of: tokens.ids)
        } else {
            counts = Array(repeating: .zero, count: tokens.count)
        }
        var usedStarter = false
        var combined: CombinedCounts?
        // Measured after training; a store that cannot say is read as not agreeing, as before there was a measure.
        let agreement = (try? store?.starterAgreement()) ?? nil
        if schedule.addsStarter(to: own, agreement: agreement), let starter = starter() {
            usedStarter = true
            let scored = ModelSchedule.scoredOwnTotals(own)
            if scored != own {  // one class alone: the starter's counts only
                own = scored
                counts = Array(repeating: .zero, count: counts.count)
            }
            let both = starter.combined(with: counts, ownTotals: own, for: tokens.ids, isLocal: tokens.isLocal,
                                        ownHamWeight: schedule.ownHamWeight(for: own))
            (combined, counts) = (both, both.shown)
        }
        let evidence = tokens.texts.isEmpty
            ? counts.map { (token: "", counts: $0) }
            : zip(tokens.texts, counts).map { (token: $0, counts: $1) }
        // Which settings: the schedule's stage, the training's agreement, and whether the starter was added.
        let classifier = Classifier(parameters: schedule.parameters(for: own, agreement: agreement,
                                                                    withStarter: usedStarter))
        let classification = classifier.classify(evidence, weighed: combined?.weighed ?? counts.map(WeighedCounts.init),
                                                 totals: combined?.weighedTotals ?? WeighedCounts(own),
                                                 textStart: tokens.textStart, localTotals: usedStarter ? own : nil,
                                                 isLocal: tokens.isLocal, isSubject: tokens.isSubject)
        return Assessment(classification: classification, usedStarterModel: usedStarter, tokenCount: tokens.count)
    }

    /// Measures how far the store's training agrees with the starter model (`StarterAgreement`) and keeps the
    /// figure there, for the filter to read with each message: after every training, which is the only thing that
    /// changes it. Without an embedded starter model there is nothing to agree with, and the figure goes.
    public static func recordStarterAgreement(in store: SQLiteTokenStore,
                                              starter: StarterModel? = .embedded) throws {
        let agreement = try starter.flatMap { starter in
            StarterAgreement.measure(try store.allTokens(), totals: try store.statistics().totals, starter: starter)
        }
        try store.recordStarterAgreement(agreement)
    }

    /// What the store needs to learn (`target` a class) or forget (`target` nil) this message.
    public func trainingItem(for message: Message, as target: MessageClass?) throws -> TrainingItem {
        try learning(message, as: target).item
    }

    /// The training item, what the template memory should record of the message, its sender, and whether that is
    /// a colleague (`Colleagues.isColleague`).
    public func learning(_ message: Message, as target: MessageClass?) throws
        -> (item: TrainingItem, sighting: TemplateSighting?, sender: String?, colleague: Bool) {
        // Parsed once: three parses of From and two of To and Cc were 6 % of training's instructions (callgrind).
        let correspondents = Correspondents(of: message)
        let identity = identity(of: message)
        let digest = identity.digest
        let (tokens, history) = try tokensAndHistory(of: message, correspondents, keepingTexts: false,
                                                     learning: digest)
        return (TrainingItem(digest: digest, tokens: tokens.ids, target: target,
                             history: history.map { TokenID(hashing: $0) }, formerDigest: identity.former),
                templateSighting(of: message, tokens, correspondents: correspondents, digest: digest),
                correspondents.sender, correspondents.isFromAColleague)
    }

    /// The value of our X-Pitch-Status field: "pitch, score=0.9973, version=…".
    public static func statusValue(_ classification: Classification) -> String {
        "\(classification.verdict.rawValue), score=\(formatScore(classification.score)), version=\(version)"
    }

    /// The fields a message is tagged with: X-Pitch-Status, and X-Pitch-Reasons when asked for (or the names
    /// `[header]` gives them). `taggedWith`: the Subject tag the message goes out with, recorded in the status
    /// field (`OwnFields.taggedMarker`) so that a release from the quarantine can take back exactly that.
    public func fields(for classification: Classification, reasons: Bool, taggedWith tag: String? = nil)
        -> [NewField] {
        let marker = tag.map { OwnFields.taggedMarker + $0 } ?? ""
        var fields = [NewField(name: ownFields.status, value: Self.statusValue(classification) + marker)]
        if reasons, let value = Self.reasonsValue(classification) {
            fields.append(NewField(name: ownFields.reasons, value: value))
        }
        return fields
    }

    /// The fields this engine writes, and removes from what it reads.
    public var ownFields: OwnFields { tokenizer.ownFields }

    /// The message's identity in the training ledger, without our own fields.
    public func digest(of message: Message) -> [UInt8] {
        MessageDigest.of(message, ownFields: ownFields)
    }

    /// The message's digest, and its former one (`MessageDigest.former`), so a record written before still finds
    /// its message.
    public func identity(of message: Message) -> MessageDigest.Identity {
        MessageDigest.identity(of: message, ownFields: ownFields)
    }

    /// What happens to the Subject of a message classified so: a pitch gets `tag` (the configured one unless given;
    /// none if empty), unless its Subject already begins with it as it reads (`SubjectTagEdit.add`). A tag already
    /// there stays, whatever the verdict: nothing tells one an earlier filter of ours put in from a sender's own.
    public func subjectTagEdit(verdict: Verdict, tag: String? = nil) -> SubjectTagEdit {
        let tag = tag ?? ownFields.subjectTag
        return verdict == .pitch && !tag.isEmpty ? .add(tag) : .none
    }

    /// The message as it goes out: our fields (forged ones, or a verdict from before) taken out, this verdict's
    /// fields put in, and for a pitch the configured Subject tag.
    public func edit(_ message: Message, for classification: Classification, reasons: Bool) -> HeaderEdit {
        let tagging = subjectTagEdit(verdict: classification.verdict)
        let edit = message.edit(removing: ownFields.removalPatterns,
                                inserting: fields(for: classification, reasons: reasons), subjectTag: tagging)
        // Whether the tag went in is the edit's to say (it reads past the parser's limits): then the status field
        // records it, in a second plan over the same bytes.
        guard !edit.subjectTagInserted.isEmpty, let tag = tagging.added else { return edit }
        return message.edit(removing: ownFields.removalPatterns,
                            inserting: fields(for: classification, reasons: reasons, taggedWith: tag),
                            subjectTag: tagging)
    }

    /// The value of X-Pitch-Reasons: the tokens that moved the score most, strongest first, with their
    /// probabilities, as `classify --explain` lists them: `"quick call" 0.981, sig:greeting-blank 0.974, …`. Nil
    /// when the classification kept no token texts.
    ///
    /// Token texts come from the message, so they are made safe for a header field: a token with anything but
    /// letters, digits and `:._-` is quoted, and bytes outside printable ASCII (and `%`, `"`, `\`) are written
    /// %XX, so the field is ASCII on one line whatever the sender wrote. Each token is cut at 40 bytes and there
    /// are at most `limit`: the field stays well under 998 bytes.
    public static func reasonsValue(_ classification: Classification, limit: Int = 5) -> String? {
        let strongest = classification.strongestEvidence.prefix(limit)
        guard !strongest.isEmpty, !strongest.contains(where: { $0.token.isEmpty }) else { return nil }
        return strongest.map { evidence in
            "\(fieldSafe(evidence.token)) \(threeDecimals(evidence.probability))"
        }.joined(separator: ", ")
    }

    /// 0.981, 1.000, 0.002: without Foundation's formatting, which the pipe filter does not link.
    static func threeDecimals(_ value: Double) -> String {
        let thousandths = Int((min(max(value, 0), 1) * 1_000).rounded())
        let fraction = String(thousandths % 1_000)
        return "\(thousandths / 1_000)." + String(repeating: "0", count: 3 - fraction.count) + fraction
    }

    static func fieldSafe(_ token: String) -> String {
        let hex = Array("0123456789ABCDEF".utf8)
        var bare = true
        var out: [UInt8] = []
        for byte in token.utf8.prefix(40) {
            switch byte {
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
                 UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: ":"), UInt8(ascii: "."), UInt8(ascii: "_"),
                 UInt8(ascii: "-"):
                out.append(byte)
            case 0x20...0x7E where byte != UInt8(ascii: "%") && byte != UInt8(ascii: "\"") && byte != UInt8(ascii: "\\"):
                bare = false
                out.append(byte)
            default:
                bare = false
                out += [UInt8(ascii: "%"), hex[Int(byte >> 4)], hex[Int(byte & 0xF)]]
            }
        }
        let text = String(decoding: out, as: UTF8.self)
        return bare && !text.isEmpty ? text : "\"" + text + "\""
    }

    /// Four decimals, as bogofilter and SpamAssassin print scores; never "1.0000" for a score below 1.
    public static func formatScore(_ score: Double) -> String {
        let clamped = min(max(score, 0), 1)
        var tenThousandths = Int((clamped * 10_000).rounded())
        if tenThousandths == 10_000, clamped < 1 { tenThousandths = 9_999 }
        if tenThousandths == 0, clamped > 0 { tenThousandths = 1 }
        let fraction = String(tenThousandths % 10_000)
        return "\(tenThousandths / 10_000)." + String(repeating: "0", count: 4 - fraction.count) + fraction
    }

    /// The tokenizer databases must have been built with.
    public static let tokenizerIdentity = Tokenizer.identity

    /// Program and tokenizer version, so a header says which model judged it.
    public static let version = "pitchfilter-\(programVersion)/\(Tokenizer.identity)"
    public static let programVersion = "0.1.0"
}
