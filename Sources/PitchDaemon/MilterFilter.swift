import Logging
import NIOPosix
import PitchEngine
import PitchMessage
import PitchMilter
import PitchStore
import PitchTokenizer
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// Where the milter listens and what it does to a pitch. `[milter]` in the configuration.
public struct MilterConfiguration: Sendable, Equatable {
    public var address: MilterServerConfiguration.Address
    /// Put pitches in Postfix's hold queue (SMFIR_QUARANTINE), where `postqueue`/`postsuper` release them.
    public var holdPitches = false
    /// Learn the recipients of outbound mail (`{auth_authen}` set) as known correspondents. Off on a host where
    /// users the MTA does not vouch for can connect: the macro is whatever the connecting side says (found by an
    /// audit: any local user could add correspondents through a loopback port).
    public var learnOutbound = true
    /// Put this before the Subject of a pitch ("[PITCH]"); empty: leave the Subject alone; nil: the tag of
    /// `[header]`, which the pipe filter and the Maildir service put there too.
    public var subjectTag: String?
    /// Where X-Pitch-Status (or the configured status field) goes. `end` (SMFIR_ADDHEADER) by default: every MTA
    /// and milter test tool understands it, where SMFIR_INSHEADER is invisible to some (OpenDKIM's miltertest
    /// reports it apart from added fields). `top` (SMFIR_INSHEADER at index 0) puts it above Received, as
    /// `pitchfilter filter` does.
    public var headerPosition = HeaderPosition.end
    public var maximumSessions = 256

    public enum HeaderPosition: String, Sendable, CaseIterable {
        case top, end
    }
    public var maximumMessageBytes = 32 << 20
    /// All sessions' messages in hand together (`MilterServerConfiguration.maximumBufferedBytes`).
    public var maximumBufferedBytes = 512 << 20

    public init(address: MilterServerConfiguration.Address) {
        self.address = address
    }

    /// `unix:/path`, Postfix's `inet:HOST:PORT` or libmilter's `inet:PORT@HOST`; TCP on loopback only, since
    /// the protocol has no authentication and whoever connects can read the mail.
    public static func address(_ text: String,
                               key: String) throws(ConfigurationError) -> MilterServerConfiguration.Address {
        if text.hasPrefix("unix:") {
            let path = String(text.dropFirst(5))
            guard path.hasPrefix("/") else {
                throw ConfigurationError(key: key, "a unix socket needs an absolute path, found \"\(text)\"")
            }
            // sockaddr_un holds 108 bytes with the terminating NUL: a longer path fails only when listening.
            guard path.utf8.count <= 107 else {
                throw ConfigurationError(key: key, "a unix socket's path may have at most 107 bytes, \"\(path)\" has "
                    + "\(path.utf8.count)")
            }
            return .unix(path: path, mode: 0o660)
        }
        guard text.hasPrefix("inet:") else {
            throw ConfigurationError(key: key, "must be unix:/path or inet:127.0.0.1:PORT, found \"\(text)\"")
        }
        let rest = String(text.dropFirst(5))
        var host: String
        var port: String
        if let at = rest.firstIndex(of: "@") {
            (port, host) = (String(rest[..<at]), String(rest[rest.index(after: at)...]))
        } else if let split = LoopbackAddress.split(rest) {
            (host, port) = split
        } else {
            throw ConfigurationError(key: key, "must be inet:HOST:PORT, found \"\(text)\"")
        }
        let checked = try LoopbackAddress.check(host: host, port: port, key: key,
                                                because: "the milter protocol has no authentication")
        return .tcp(host: checked.host, port: checked.port)
    }
}

/// The milter's handler: classify at end of message, tag, and hold pitches if asked. Outbound mail (SMTP AUTH)
/// is not classified; its recipients become known correspondents.
///
/// Never fails a message: on any trouble (no database, a locked one, a message over the limit) the answer is
/// "no changes", and the MTA delivers the message as it came.
public final class MilterFilter: MilterHandler {
    let databasePath: String
    let logger: Logger
    /// What to do with a message; a reload replaces it, and each message reads it once.
    private let policy: Mutex<Policy>

    private struct Policy {
        var configuration: MilterConfiguration
        /// The model schedule with the configured cutoffs.
        var schedule: ModelSchedule
        /// Whether the reasons field goes with the status field (`[classifier] reasons`).
        var reasons: Bool
        /// What our fields are called (`[header]`).
        var ownFields: OwnFields
    }
    /// SQLite calls block: they run on NIO's thread pool, never on the event loops or the cooperative pool.
    let pool: NIOThreadPool
    private let store = Mutex<StoreState>(StoreState())
    /// The model several hosts share, read by every decision through its reader's connection.
    private let sharedModel: SharedModelSetting?

    /// Messages let go over the sessions' budget, warned of once a minute: a warning each would pass journald's
    /// rate limit under load, which then drops the other warnings too (found in review).
    private let overBudget = Mutex(OncePerMinuteCount())
    /// Messages whose forged fields of ours stayed, the MTA not agreeing to header changes.
    private let forgedKept = Mutex(OncePerMinuteCount())
    /// Pitches `hold_pitches` would have held, and messages that went without our field, where the MTA did not
    /// agree to the action (found by an audit: the held count went up for pitches delivered, without a word).
    private let notHeld = Mutex(OncePerMinuteCount())
    private let notTagged = Mutex(OncePerMinuteCount())
    /// The seconds these counts are reported in: steady, and set by the tests, whose decisions can be a minute
    /// apart on a loaded machine.
    private let reportClock: @Sendable () -> Int64

    private struct StoreState {
        var store: SQLiteTokenStore?
        var lastAttempt: Int64 = 0
        var lastError = ""
    }

    public init(configuration: MilterConfiguration, databasePath: String, cutoffs: Cutoffs = .standard,
                reasons: Bool = false, ownFields: OwnFields = .standard, sharedModel: SharedModelSetting? = nil,
                logger: Logger, pool: NIOThreadPool = .singleton,
                reportClock: (@Sendable () -> Int64)? = nil) {
        self.sharedModel = sharedModel
        self.reportClock = reportClock ?? { Int64(Monotonic.seconds()) }
        policy = Mutex(Policy(configuration: configuration, schedule: ModelSchedule.standard.withCutoffs(cutoffs),
                              reasons: reasons, ownFields: Self.withItsTag(ownFields, configuration)))
        self.databasePath = databasePath
        self.logger = logger
        self.pool = pool
    }

    /// The milter's own settings in force (the last reload's, or the start's).
    public var configuration: MilterConfiguration { policy.withLock { $0.configuration } }

    /// A reload's settings, for the messages that end from now on.
    public func update(configuration: MilterConfiguration, cutoffs: Cutoffs, reasons: Bool, ownFields: OwnFields) {
        policy.withLock {
            $0 = Policy(configuration: configuration, schedule: ModelSchedule.standard.withCutoffs(cutoffs),
                        reasons: reasons, ownFields: Self.withItsTag(ownFields, configuration))
        }
    }

    /// The fields with this milter's own Subject tag among ours (a configuration file's already are:
    /// `Configuration`), so that the tokens and the identity of a message it tagged leave the tag out.
    static func withItsTag(_ ownFields: OwnFields, _ configuration: MilterConfiguration) -> OwnFields {
        guard let tag = configuration.subjectTag, !tag.isEmpty, tag != ownFields.subjectTag,
              !ownFields.otherSubjectTags.contains(tag) else { return ownFields }
        // Checked when the configuration was read.
        return (try? ownFields.withSubjectTag(ownFields.subjectTag, alsoOurs: ownFields.otherSubjectTags + [tag]))
            ?? ownFields
    }

    /// Counts a message let go over budget; returns how many to report when a report is due (the first, then at
    /// most once a minute).
    func overBudgetToReport(now: Int64? = nil) -> Int? {
        overBudget.withLock { $0.add(atSecond: now ?? reportClock()) }
    }

    /// Counts a message whose forged fields stayed; returns how many to report, as `overBudgetToReport` does.
    func forgedKeptToReport(now: Int64? = nil) -> Int? {
        forgedKept.withLock { $0.add(atSecond: now ?? reportClock()) }
    }

    public func decide(_ message: MilterMessage) async -> [MilterReply] {
        let policy = self.policy.withLock { $0 }
        let configuration = policy.configuration
        var logger = self.logger
        if let queueID = message.envelope.queueID { logger[metadataKey: "queue_id"] = "\(queueID)" }
        // Whatever happens to the message, a sender's copies of our fields never go through: only the header's
        // names are needed for that, and they are all there.
        let forged = Self.removingForgedFields(message.headerNames, ownFields: policy.ownFields)
        // An MTA that did not agree to header changes (SMFIF_CHGHDRS) keeps them: the one thing to do is to say so
        // (found by an audit: a forged "ham" stayed above our field, without a word).
        if !forged.isEmpty, !message.mayChangeHeaders, let count = forgedKeptToReport() {
            logger.warning("""
                \(count) message\(count == 1 ? "" : "s") kept forged fields of ours since the last report: the MTA \
                did not agree to header changes (SMFIF_CHGHDRS), so they cannot be deleted (reported at most once a \
                minute)
                """)
        }
        // Outbound mail is not read, only its envelope: the recipients are learned whatever its size.
        if message.isTruncated, message.envelope.authenticatedUser == nil {
            ServiceMetrics.passedUnclassified(source: .milter)
            if message.isOverBudget {
                if let count = overBudgetToReport() {
                    logger.warning("""
                        \(count) message\(count == 1 ? "" : "s") accepted unclassified since the last report: all \
                        sessions' messages in hand would have passed \(configuration.maximumBufferedBytes >> 20) MiB \
                        (max_buffered_mib; reported at most once a minute)
                        """)
                }
            } else {
                logger.notice("""
                    message of \(message.size) bytes accepted unclassified (limit \(configuration.maximumMessageBytes))
                    """)
            }
            return forged
        }
        let sessionLogger = logger
        do {
            return try await pool.runIfActive { [self] in
                forged + (try self.decideNow(message, policy: policy, logger: sessionLogger))
            }
        } catch {
            ServiceMetrics.passedUnclassified(source: .milter)
            logger.warning("message accepted unclassified: \(error)")
            return forged
        }
    }

    /// The changes besides removing forged fields.
    private func decideNow(_ message: MilterMessage, policy: Policy, logger: Logger) throws -> [MilterReply] {
        let (configuration, schedule, reasons) = (policy.configuration, policy.schedule, policy.reasons)
        let tokenizer = Tokenizer(ownFields: policy.ownFields)
        // Without a database (missing, or not openable for now) mail goes through untagged.
        guard openStore() != nil else {
            ServiceMetrics.passedUnclassified(source: .milter)
            return []
        }
        if let user = message.envelope.authenticatedUser {
            // Its recipients become known correspondents. Written at once through the batch's connection, so
            // another process holding the write lock costs this message 100 ms, not the store's 2 s on a thread
            // other decisions need; what could not be written waits, in memory, for a later batch.
            if configuration.learnOutbound {
                let own = [message.envelope.sender] + (Engine.sender(of: Message(bytes: message.bytes)).map { [$0] } ?? [])
                remember(nil, outbound: Engine.correspondents(writtenTo: message.envelope.recipients, own: own))
            }
            ServiceMetrics.outbound()
            logger.debug("outbound mail not classified", metadata: [
                "user": "\(user)", "recipients": "\(message.envelope.recipients.count)"])
            return []
        }
        let started = Monotonic.seconds()
        let parsed = Message(bytes: message.bytes)
        let (engine, tokens, classification) = try withReader { reader in
            let engine = Engine(store: reader, schedule: schedule, contacts: reader, templates: reader,
                                tokenizer: tokenizer)
            let (tokens, assessment) = try reader.withSnapshot {
                try engine.tokensAndAssessment(of: parsed, explaining: reasons)
            }
            return (engine, tokens, assessment.classification)
        }
        ServiceMetrics.classified(classification.verdict, source: .milter, seconds: Monotonic.seconds() - started)
        var replies: [MilterReply] = []
        let tagging = engine.subjectTagEdit(verdict: classification.verdict, tag: configuration.subjectTag)
        // Tagged only where the MTA agreed to the change and to the status field that records it (a tag nothing
        // records is one no reader can tell from the sender's), and sends values as they are (else the blanks after
        // the colon are its guess; found in review, "Subject:Hi" came back as "Subject: Hi").
        let subject = message.mayChangeHeaders && message.mayAddHeaders && message.hasExactHeaderValues
            ? Self.subjectValue(parsed, after: tagging) : nil
        let fields = engine.fields(for: classification, reasons: reasons,
                                   taggedWith: subject?.tagged == true ? tagging.added : nil)
        switch configuration.headerPosition {
        // Inserted at index 0 in reverse, so that they read in order at the top.
        case .top: replies += fields.reversed().map { .insertHeader(index: 0, name: $0.name, value: $0.value) }
        case .end: replies += fields.map { .addHeader(name: $0.name, value: $0.value) }
        }
        if let subject {
            // The field's name as the message spells it: the MTA writes the name it is given ("SUBJECT:" became
            // "Subject:"; found in review).
            let name = message.headerNames.first { $0.lowercased() == "subject" } ?? "Subject"
            replies.append(.changeHeader(index: 1, name: name, value: subject.value))
        }
        if !message.mayAddHeaders, let count = notTagged.withLock({ $0.add(atSecond: reportClock()) }) {
            logger.warning("""
                \(count) message\(count == 1 ? "" : "s") went on without a field of ours since the last report: the \
                MTA did not agree to adding header fields (SMFIF_ADDHDRS) (reported at most once a minute)
                """)
        }
        if classification.verdict == .pitch, configuration.holdPitches {
            if message.mayQuarantine {
                let score = Engine.formatScore(classification.score)
                replies.append(.quarantine(reason: "pitchfilter: pitch, score=\(score)"))
                ServiceMetrics.quarantined(source: .milter)
            } else if let count = notHeld.withLock({ $0.add(atSecond: reportClock()) }) {
                logger.warning("""
                    \(count) pitch\(count == 1 ? " was" : "es were") delivered, not held, since the last report: the \
                    MTA did not agree to quarantine (SMFIF_QUARANTINE) (reported at most once a minute)
                    """)
            }
        }
        // Every verdict at debug, as the Maildir side logs them: at info, a busy MTA's 2,500 messages a second
        // passed journald's default rate limit, which then drops the warnings too.
        logger.debug("classified", metadata: [
            "verdict": "\(classification.verdict.rawValue)", "score": "\(Engine.formatScore(classification.score))",
            "from": "\(message.envelope.sender)"])
        remember(engine.templateSighting(of: parsed, tokens))
        return replies
    }

    /// Incoming X-Pitch-* fields and fields with our configured names, deleted (CHGHEADER with an empty value) so
    /// a sender cannot forge a verdict. Highest occurrence first, so deleting one never renumbers the ones still to
    /// delete.
    static func removingForgedFields(_ names: [String], ownFields: OwnFields) -> [MilterReply] {
        var occurrences: [String: UInt32] = [:]
        var deletions: [MilterReply] = []
        for name in names {
            let key = name.lowercased()
            occurrences[key, default: 0] += 1
            if ownFields.contains(lowercasedName: key) {
                deletions.append(.changeHeader(index: occurrences[key]!, name: name, value: ""))
            }
        }
        return deletions.reversed()
    }

    /// The first Subject's new value after `edit` (this run's tag put in), as SMFIR_CHGHEADER sends it: the raw
    /// value with its leading blank, so that with SMFIP_HDR_LEADSPC the MTA writes exactly the bytes `HeaderEdit`
    /// would, and the message's identity, which leaves the tag out, is the one it came with (but for forged fields
    /// holding bare CRs, which the milter deletes whole where `HeaderEdit` cuts them). Nil when nothing
    /// changes, or where a reply could not give the rest back byte for byte (bytes that are not UTF-8, which raw
    /// legacy mailers send, and a CR that does not end a line).
    static func subjectValue(_ message: Message, after edit: SubjectTagEdit) -> (value: String, tagged: Bool)? {
        guard let (raw, tagged) = message.subjectValue(after: edit) else { return nil }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(raw.count)
        for index in raw.indices {
            if raw[index] == 0x0D {
                guard index + 1 < raw.endIndex, raw[index + 1] == 0x0A else { return nil }
                continue
            }
            bytes.append(raw[index])
        }
        // A value that starts at a line break, or is empty, cannot be given back as it was: the MTA puts a blank
        // after the colon (or takes an empty value for "delete").
        guard let value = String(validating: bytes, as: UTF8.self), value.hasPrefix(" ") || value.hasPrefix("\t")
        else { return nil }
        return (value, tagged)
    }

    /// Template sightings and outbound mail's recipients waiting to be written: one write transaction per message
    /// was a third of the milter's time under load, so they are written together, every `batch` messages or half
    /// a second, and at once when outbound mail brings recipients.
    private struct Pending {
        var sightings: [TemplateSighting] = []
        /// Outbound mail's recipients: kept through failed writes, up to `maximumWaiting`, where sightings are best
        /// effort. A correspondent lost is a reply later read as a stranger's.
        var contacts: [String] = []
        /// Outbound recipients arrived since the last attempt: the next message writes them, whatever the batch.
        var urgent = false
        var count = 0
        var lastWrite = 0.0
        /// A decision is writing a batch: no other starts one, and no other waits for it.
        var writing = false
        /// `finish` has run: a decision later than that writes what it leaves at once, since nothing else will.
        var finished = false
        /// When a failure to record outbound recipients was last logged: a `train` run holding the lock for
        /// minutes would otherwise log one line per attempt.
        var lastFailureLogged = -Double.infinity
    }
    private let pending = Mutex(Pending())
    static let batch = 64
    /// How long a batch waits for another process's write lock before the attempt fails. The write runs on the
    /// thread of the message that made it due: with the store's 2 s, a trainer or a `sqlite3` shell holding the
    /// lock made the decisions wait in turn, and 16 sessions got 88 messages through in 20 s.
    static let recordingBusyMilliseconds: Int32 = 100
    static let maximumWaiting = 10_000

    /// What one write records.
    private typealias Batch = (sightings: [TemplateSighting], contacts: [String])

    /// Queues what a message leaves to record, and writes the queue if it is due. `outbound`: the recipients of
    /// mail the user sent.
    private func remember(_ sighting: TemplateSighting?, outbound: [String]? = nil) {
        let clock = Monotonic.seconds()
        let due: Batch? = pending.withLock { queue in
            if let sighting { queue.sightings.append(sighting) }
            if let outbound {
                queue.contacts += outbound
                queue.urgent = true
            }
            queue.count += 1
            guard !queue.writing, queue.finished || queue.urgent || queue.count >= Self.batch
                || clock - queue.lastWrite >= 0.5 else { return nil }
            // Messages too short for a skeleton leave nothing: no transaction, which could wait for a lock.
            guard !(queue.sightings.isEmpty && queue.contacts.isEmpty) else {
                queue.urgent = false
                queue.count = 0
                queue.lastWrite = clock
                return nil
            }
            return Self.take(&queue, at: clock)
        }
        guard let due else { return }
        var failure: (any Error)?
        do {
            try write(due, through: try openRecorder())
        } catch {
            failure = error
        }
        let (logFailure, lost) = pending.withLock { queue -> (Bool, Bool) in
            queue.writing = false
            guard failure != nil, !due.contacts.isEmpty else { return (false, false) }
            if queue.finished { return (true, true) }  // nothing will retry it
            // Put back in front of what came meanwhile; retried when the next batch is due, not by every message.
            queue.contacts = Array((due.contacts + queue.contacts).suffix(Self.maximumWaiting))
            guard clock - queue.lastFailureLogged >= 60 else { return (false, false) }
            queue.lastFailureLogged = clock
            return (true, false)
        }
        guard let failure else { return }
        if lost {
            logger.warning("stopping: outbound mail's recipients could not be recorded and are lost: \(failure)",
                           metadata: ["recipients": "\(due.contacts.count)"])
        } else if logFailure {
            logger.notice("outbound mail's recipients not recorded yet, kept for a later batch: \(failure)",
                          metadata: ["recipients": "\(due.contacts.count)"])
        } else {
            logger.debug("template sightings or recipients not recorded: \(failure)")
        }
    }

    /// Everything queued, leaving the queue empty and marked as being written.
    private static func take(_ queue: inout Pending, at clock: Double) -> Batch {
        defer {
            queue.sightings = []
            queue.contacts = []
            queue.urgent = false
            queue.count = 0
            queue.lastWrite = clock
            queue.writing = true
        }
        return (queue.sightings, queue.contacts)
    }

    /// One write transaction for a batch.
    private func write(_ batch: Batch, through recorder: SQLiteTokenStore) throws {
        let added = try recorder.inOneWrite {
            let seconds = Int64(time(nil))
            let added = try recorder.addContacts(batch.contacts, source: .sent, at: seconds)
            try Engine.remember(batch.sightings, in: recorder)
            return added
        }
        if added > 0 { logger.debug("learned correspondents from outbound mail", metadata: ["new": "\(added)"]) }
        recorder.checkpointIfLarge()
    }

    /// How long the last write, as the service stops, waits for another process's lock: what it holds is lost
    /// after it, and systemd gives a stopping service 90 s.
    static let finalBusyMilliseconds: Int32 = 10_000

    /// Our own fields, whose forged copies are removed from every message, kept or not.
    public func needsFieldName(_ lowercasedName: String) -> Bool {
        policy.withLock { $0.ownFields }.contains(lowercasedName: lowercasedName)
    }

    /// The server has stopped and its sessions are gone: what waits in memory is written now (outbound mail's
    /// recipients kept through failed writes, and the last half second's sightings), waiting up to
    /// `finalBusyMilliseconds` for a `train` run's lock. On the thread pool, as every SQLite call.
    public func finish() async {
        let unreported = overBudget.withLock { $0.takeUnreported() }
        if unreported > 0 {
            logger.warning("""
                \(unreported) message\(unreported == 1 ? "" : "s") accepted unclassified since the last report: \
                all sessions' messages in hand would have passed max_buffered_mib
                """)
        }
        // The other counts said once a minute, their last minute said too (found in review: dropped at shutdown).
        func plural(_ count: Int, _ one: String, _ many: String) -> String { "\(count) \(count == 1 ? one : many)" }
        let forged = forgedKept.withLock { $0.takeUnreported() }
        if forged > 0 {
            logger.warning("""
                \(plural(forged, "message", "messages")) kept forged fields of ours since the last report: the MTA did \
                not agree to header changes (SMFIF_CHGHDRS)
                """)
        }
        let untagged = notTagged.withLock { $0.takeUnreported() }
        if untagged > 0 {
            logger.warning("""
                \(plural(untagged, "message", "messages")) went on without a field of ours since the last report: the \
                MTA did not agree to adding header fields (SMFIF_ADDHDRS)
                """)
        }
        let delivered = notHeld.withLock { $0.takeUnreported() }
        if delivered > 0 {
            logger.warning("""
                \(plural(delivered, "pitch was", "pitches were")) delivered, not held, since the last report: the MTA \
                did not agree to quarantine (SMFIF_QUARANTINE)
                """)
        }
        do {
            // The future form: the async one is skipped when the task is cancelled, as it is when another service
            // fails, which is when the queue matters most.
            try await pool.runIfActive(eventLoop: MultiThreadedEventLoopGroup.singleton.any()) { [self] in
                finishNow()
            }.get()
        } catch {
            logger.warning("stopping: what the milter kept in memory was not recorded: \(error)")
        }
    }

    private func finishNow() {
        // A decision that outlived the server's grace period may still be writing its batch (a lock waits at most
        // `recordingBusyMilliseconds`): it goes first. Slept through, since cancellation would cut a task's sleep.
        let deadline = Monotonic.seconds() + 5
        while pending.withLock({ $0.writing }), Monotonic.seconds() < deadline { usleep(20_000) }
        var first = true
        // Until the queue is empty: a decision later than this one may queue while it writes.
        while true {
            let (due, stillWriting): (Batch?, Bool) = pending.withLock { queue in
                queue.finished = true
                guard !queue.writing else { return (nil, true) }
                guard !(queue.sightings.isEmpty && queue.contacts.isEmpty) else { return (nil, false) }
                return (Self.take(&queue, at: Monotonic.seconds()), false)
            }
            if stillWriting, first { logger.warning("stopping: a decision is still writing its batch; it may be lost") }
            first = false
            guard let due else { return }
            do {
                let recorder = try openRecorder()
                recorder.setBusyTimeout(milliseconds: Self.finalBusyMilliseconds)
                defer { recorder.setBusyTimeout(milliseconds: Self.recordingBusyMilliseconds) }
                try write(due, through: recorder)
                if !due.contacts.isEmpty {
                    logger.info("outbound mail's recipients recorded as the milter stopped",
                                metadata: ["recipients": "\(due.contacts.count)"])
                }
            } catch where due.contacts.isEmpty {
                logger.debug("stopping: template sightings not recorded: \(error)")
            } catch {
                logger.warning("stopping: outbound mail's recipients could not be recorded and are lost: \(error)",
                               metadata: ["recipients": "\(due.contacts.count)"])
            }
            pending.withLock { $0.writing = false }
        }
    }

    /// The connection the batches are written through, with `recordingBusyMilliseconds`; opened with the store's.
    private let recorder = Mutex<SQLiteTokenStore?>(nil)

    private func openRecorder() throws -> SQLiteTokenStore {
        try recorder.withLock { recorder in
            if let recorder, !recorder.fileWasReplaced { return recorder }
            let opened = try SQLiteTokenStore(path: databasePath, tokenizerIdentity: Engine.tokenizerIdentity,
                                              access: .readWrite,
                                              busyTimeoutMilliseconds: Self.recordingBusyMilliseconds)
            recorder = opened
            return opened
        }
    }

    /// Read-only connections, one per message being classified: with one connection, concurrent sessions queued
    /// on its lock and the milter managed half the messages per second. WAL lets readers run beside the writer.
    private let readers = Mutex<[SQLiteTokenStore]>([])

    private func withReader<Result>(_ body: (SQLiteTokenStore) throws -> Result) throws -> Result {
        // One whose file was removed or replaced (`openStore`) is let go.
        let reader = try readers.withLock { readers in
            while let reader = readers.popLast() { if !reader.fileWasReplaced { return reader } }
            return nil
        }
            ?? SQLiteTokenStore(path: databasePath, tokenizerIdentity: Engine.tokenizerIdentity, access: .readOnly,
                                sharedModel: sharedModel?.open(tokenizerIdentity: Engine.tokenizerIdentity,
                                                               readOnly: true))
        defer { readers.withLock { $0.append(reader) } }
        return try body(reader)
    }

    private func openStore() -> SQLiteTokenStore? {
        store.withLock { state in
            if let store = state.store {
                guard store.fileWasReplaced else { return store }
                // Another file is at the path now (a backup put back, as the log's advice on a corrupt database
                // says, or a database made afresh): read and written from here on. Found by an audit: the milter
                // read the removed file until a restart, and wrote its contacts to the new one.
                logger.warning("the database file was removed or replaced: opening the one now at its path",
                               metadata: ["database": "\(databasePath)"])
                state.store = nil
                state.lastAttempt = 0
            }
            let now = Int64(time(nil))
            // After a failure, try again at most every 5 s; meanwhile mail goes through untagged.
            guard now - state.lastAttempt >= 5 else { return nil }
            state.lastAttempt = now
            do {
                let opened = try SQLiteTokenStore(
                    path: databasePath, tokenizerIdentity: Engine.tokenizerIdentity, access: .readWrite,
                    sharedModel: sharedModel?.open(tokenizerIdentity: Engine.tokenizerIdentity, readOnly: false))
                if opened.beganAsAnEmptyFile {
                    logger.warning("\(StoreError.emptyFileWarning)", metadata: ["database": "\(databasePath)"])
                }
                // The failure was said once; its end is said too (found by an audit: nothing told the admin that
                // mail was classified again).
                if !state.lastError.isEmpty {
                    logger.notice("milter opened the database again: classifying",
                                  metadata: ["database": "\(databasePath)"])
                    state.lastError = ""
                }
                state.store = opened
                return state.store
            } catch {
                if "\(error)" != state.lastError { logger.error("milter cannot open the database: \(error)") }
                state.lastError = "\(error)"
                return nil
            }
        }
    }
}
