import ArgumentParser
import Dispatch
import PitchClassifier
import PitchCommandLine
import PitchEngine
import PitchMessage
import PitchStore
import PitchTokenizer
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

struct Train: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "train",
        abstract: "Learn messages as pitches or ham, or forget them.",
        discussion: """
            Training is idempotent: a message learned twice counts once, and learning it as the other class \
            moves it. PATH is a message file, a directory of message files, a Maildir, an mbox, or - for standard \
            input (one message, as procmail or a mail client pipes it, even when it begins with a "From " line). \
            Exit status 0; 3 when a file could not be read, a path's mail is in folders not read (an empty folder or \
            mbox, or a file that is no mail, is a note, not a failure) or the database could not be opened or \
            written; 64 for a wrong command line.
            """)

    @OptionGroup var database: DatabaseOption
    @OptionGroup var configuration: ConfigurationOption
    @Option(parsing: .upToNextOption, help: ArgumentHelp("Messages to learn as pitches.", valueName: "path"))
    var pitch: [String] = []
    @Option(parsing: .upToNextOption, help: ArgumentHelp("Messages to learn as ham.", valueName: "path"))
    var ham: [String] = []
    @Option(parsing: .upToNextOption, help: ArgumentHelp("Messages to unlearn.", valueName: "path"))
    var forget: [String] = []

    func validate() throws {
        if pitch.isEmpty && ham.isEmpty && forget.isEmpty {
            throw ValidationError("Give messages with --pitch, --ham or --forget.")
        }
    }

    /// Messages per hand-over to the writer, which learns them while the next batch is tokenized. Transactions are
    /// `BulkTraining`'s (one at the end, one per `BulkTraining.tokenLimit` token ids, one per run of moves or
    /// forgets), and one per batch for its template sightings.
    static let batchSize = 1_000

    /// Who sent the messages at `paths`, read ahead of the run for the book it judges senders by (`run`); only
    /// each message's header and digest are needed. Standard input cannot be read twice, so a message given as
    /// `-` is not in that book for the run's other messages. Unreadable paths and subfolders are the run's to report.
    static func senders(at paths: [String], ownFields: OwnFields) -> [HamSender] {
        var senders: [HamSender] = []
        MailSource.forEachBatch(at: paths.filter { $0 != "-" }, count: batchSize, notes: false,
                                unreadable: { _ in }) { batch in
            senders += Parallel.map(batch) { item -> HamSender? in
                let message = Message(bytes: item.bytes)
                return Engine.sender(of: message).map {
                    let identity = MessageDigest.identity(of: message, ownFields: ownFields)
                    return HamSender(digest: identity.digest, address: $0, formerDigest: identity.former)
                }
            }.compactMap { $0 }
        }
        return senders
    }

    /// A class as the command line asks for it.
    static func request(_ target: MessageClass?) -> String {
        switch target {
        case .pitch: "--pitch"
        case .ham: "--ham"
        case nil: "--forget"
        }
    }

    func run() throws {
        let path = try database.path()
        if Stores.onlyMissing(pitch + ham + forget, noDatabaseAt: path) {
            try Stores.writeAnswer(Progress().summary)
            throw ExitCode(3)
        }
        let store = try Stores.openForWriting(path)
        let ownFields = try CommandLineConfiguration.ownFieldsForCommand()
        // Senders are looked up in a copy of the contact book (the store's connection is busy with the writer), as
        // the run will leave it: every message is judged against the book with the run's ham senders in it, apart
        // from what the message itself vouches for. That is how the filter will see the next message from each of
        // them, and it does not hang on the order of the folders (a book updated as the run went taught that
        // strangers' mail is ham whenever the ham came after the pitches). The book as it was before the run
        // taught a new database nothing of relationships: empty, it knows nobody, so no message was a first contact.
        // The run's requests are carried out pitch, then ham, then forget, so a message stays ham unless the run
        // also forgets it; and the senders that former ham made known go as the end of the run takes them back
        // (found by an audit: several of one sender's former ham moved to pitch at once each found the sender still
        // known through the others, and `--ham X --forget X` left X's sender known). Read ahead only when some
        // message is judged and someone could be taken back: training a new database's pitches and ham reads no
        // message more than before.
        let contacts: ContactSnapshot
        do {
            let before = try store.contactSnapshot()
            let judges = !pitch.isEmpty || !ham.isEmpty
            let forgotten = judges && (!ham.isEmpty || before.hasHamContacts)
                ? Self.senders(at: forget, ownFields: ownFields) : []
            let forgottenDigests = Set(forgotten.map(\.digest))
            let keptHam = Self.senders(at: ham, ownFields: ownFields).filter { !forgottenDigests.contains($0.digest) }
            let keptDigests = Set(keptHam.map(\.digest))
            let corrected = judges && before.hasHamContacts ? Self.senders(at: pitch, ownFields: ownFields) : []
            // As the end of the run decides (`removeHamSenders` below): what the ledger said was ham, and what
            // still vouches though it says otherwise.
            let candidates = (corrected + forgotten).filter { !keptDigests.contains($0.digest) }
            // In batches, as the run asks: a shared model's query has seconds, not minutes.
            var classes: [MessageClass?] = []
            for start in stride(from: 0, to: candidates.count, by: Self.batchSize) {
                let batch = candidates[start..<min(start + Self.batchSize, candidates.count)]
                classes += try store.ledgerClasses(of: batch.map(\.digest), formerly: batch.map(\.formerDigest))
            }
            let vouching = candidates.isEmpty ? [] : before.vouchingMessages
            let takenBack = zip(candidates, classes).filter { sender, known in
                known == .ham || sender.digests.contains { vouching.contains($0) }
            }.map(\.0)
            contacts = before.adding(keptHam).removing(takenBack)
        } catch {
            Stores.report(error)
            throw ExitCode(3)
        }
        // Each batch's template bands and earlier classes are looked up through a read-only connection of their
        // own: through the writer's, each lookup waited for the lock while a commit ran (both tokenizing threads
        // stood still for it). The connection holds one read transaction for the run (below), so it reads what the
        // run began with.
        // Only in WAL mode: with a rollback journal, a reader would wait for the writer's commits all the same, and
        // could give up after its busy timeout.
        let reader: SQLiteTokenStore
        do {
            reader = store.usesWriteAheadLog
                ? try SQLiteTokenStore(path: store.path, tokenizerIdentity: Engine.tokenizerIdentity, access: .readOnly,
                                       sharedModel: store.sharedModel)
                : store
        } catch {
            Stores.report(error)
            throw ExitCode(3)
        }
        // Messages are looked up in a copy of the template memory as it stood when the run began, to which the run
        // adds its own (see below). With a connection of its own (WAL), each batch reads the bands it needs inside
        // one read transaction held for the whole run: a run of one message reads four bands, not up to 400,000
        // sightings, and a late batch still sees what the writer's expiry has since removed. Without one, the whole
        // memory is copied at the start.
        let readsBands = reader !== store
        var templates = TemplateSnapshot.empty  // filled below: each batch's bands, or the whole memory at once
        do {
            if !readsBands { templates = try store.templateSnapshot() }
        } catch {
            Stores.report(error)
            throw ExitCode(3)
        }
        var bandsRead = Set<UInt64>()
        let engine = Engine(store: store, starter: nil, contacts: contacts, templates: nil,
                            tokenizer: Tokenizer(ownFields: ownFields))
        let now = Int64(time(nil))
        var hamSenders: [HamSender] = []
        // The messages the run forgets, which no ham request of the same run keeps.
        var forgottenInRun = Set<[UInt8]>()
        var formerHamSenders: [HamSender] = []
        // Every message learned as a pitch or forgotten, for what an earlier run stopped half-way left behind.
        var notHamSenders: [HamSender] = []
        // Each message's first request in the run, to say so when another class names it too; kept only when
        // more than one class is asked for (a digest and a name a message).
        let severalClasses = [pitch, ham, forget].filter { !$0.isEmpty }.count > 1
        var firstGiven: [[UInt8]: (target: MessageClass?, name: String)] = [:]
        let writer = OverlappedWriter(store: store)
        var failed = 0
        // The folders of each class one after the other, read ahead without a pause at the change of class.
        let requests: [(paths: [String], target: MessageClass?)] = [(pitch, .pitch), (ham, .ham), (forget, nil)]
        func readAll() throws {
            try MailSource.forEachBatchReadingAhead(inGroups: requests.map(\.paths), count: Self.batchSize,
                                                    unreadable: { error in
                if error.reportWhileLearning() { failed += 1 }
            }) { group, batch in
                let target = requests[group].target
                // Both classes' sums are written together at the end, not each class's as the next one is
                // tokenized: the tokenizers leave no core idle to write meanwhile, and the ham's sums written into a
                // table already holding the pitches' took twice as long a row as both written into an empty one
                // (its rows fall between theirs, so pages split). The SpamAssassin corpus: 6.8 % fewer instructions
                // (callgrind), the same rows.
                // Tokenizing and hashing is most of the work and runs on every core, while the writer adds up the
                // previous batches (up to `OverlappedWriter.maxQueued`).
                let prepared = Parallel.map(batch) { item in
                    Result { () throws -> (TrainingItem, String?, TemplateSighting?, colleague: Bool) in
                        let message = Message(bytes: item.bytes)
                        let learning = try engine.learning(message, as: target)
                        return (learning.item, learning.sender, learning.sighting, learning.colleague)
                    }
                }
                var items = try prepared.map { try $0.get() }
                // The same message in two classes is a contradiction the run settles by its order, whatever the
                // command line's: an admin who typed it should hear which class stands (found by an audit).
                for (item, mail) in zip(items, batch) where severalClasses {
                    guard let earlier = firstGiven[item.0.digest] else {
                        firstGiven[item.0.digest] = (target, mail.name)
                        continue
                    }
                    guard earlier.target != target else { continue }
                    Stores.reportLine("note: \(TerminalText.safe(mail.name)) is the message "
                        + "\(TerminalText.safe(earlier.name)) again, given as \(Self.request(earlier.target)) there "
                        + "and as \(Self.request(target)) here: requests are carried out pitch, then ham, then forget, "
                        + "so the last of these stands")
                }
                // A correction takes back the contact that learning the message as ham had added: the ledger as
                // the run began says which messages were ham.
                if target != .ham {
                    let before = try reader.ledgerClasses(of: items.map(\.0.digest),
                                                          formerly: items.map(\.0.formerDigest))
                    for (item, was) in zip(items, before) {
                        guard let sender = item.1 else { continue }
                        let hamSender = HamSender(digest: item.0.digest, address: sender,
                                                  formerDigest: item.0.formerDigest)
                        if was == .ham { formerHamSenders.append(hamSender) } else { notHamSenders.append(hamSender) }
                    }
                }
                if readsBands {
                    let newBands = Set(items.compactMap(\.2).flatMap(\.bands)).subtracting(bandsRead)
                    templates.add(try reader.templateSnapshot(bands: newBands))
                    bandsRead.formUnion(newBands)
                }
                // The template signal, in the order the messages are read (pitches, then ham): a folder of pitches
                // holds the same form letter from several senders, and each copy after the first must say so, or
                // training would never teach what "others sent this too" means (a fresh database's memory is empty
                // before the run). Only twins match, so the order matters only where one text is in both classes
                // (the ham copy sees the pitch copies); every sighting of the run counts as seen now, as the
                // writer records them, so an archive's form letters count across its whole span.
                for index in items.indices {
                    guard let sighting = items[index].2 else { continue }
                    let seen = templates.sightings(like: sighting, since: now - TemplateWindow.seconds)
                    // As the engine judged the sender: never known through this message's own learning as ham.
                    let relationship = items[index].1.map {
                        contacts.relationship(with: $0, apartFrom: items[index].0.digest)
                    } ?? .unknown
                    for token in Engine.templateTokens(seen, sender: relationship, colleague: items[index].colleague) {
                        let id = TokenID(hashing: token)
                        items[index].0.tokens.append(id)
                        items[index].0.history.append(id)  // so a later forget takes back what was learned
                    }
                    if target != nil { templates.add(sighting, at: now) }
                }
                // The writer records the batch's skeletons in the store with the commit that learns the batch: a
                // run stopped before a commit leaves none of the messages it did not learn.
                try writer.submit(items.map(\.0), sightings: target == nil ? [] : items.compactMap(\.2))
                // Whoever the owner keeps mail from is no stranger: the store's book learns them at the end of the
                // run (the messages were judged against a copy that already knew them, above).
                if target == .ham {
                    hamSenders += items.compactMap { item in
                        item.1.map { HamSender(digest: item.0.digest, address: $0, formerDigest: item.0.formerDigest) }
                    }
                }
                if target == nil { forgottenInRun.formUnion(items.map(\.0.digest)) }
            }
        }
        do {
            if readsBands {
                // Ended before the checkpoint below, which waits for readers.
                try reader.withSnapshot {
                    templates = try reader.templateSnapshot(bands: [])  // the first read fixes the snapshot
                    try readAll()
                }
            } else {
                try readAll()
            }
            try writer.finish {
                let keptHam = hamSenders.filter { !forgottenInRun.contains($0.digest) }
                try store.addHamSenders(keptHam, at: now)
                // A run killed after committing a correction but before this step left the message vouching for
                // its sender while the ledger already says pitch (or nothing): running it again finishes that.
                let stale = try store.vouchingMessages(among: notHamSenders.flatMap(\.digests))
                let takenBack = formerHamSenders + notHamSenders.filter { $0.digests.contains { stale.contains($0) } }
                // A message given as ham in this run stays ham unless the run forgets it too (forget comes last).
                let stillHam = Set(keptHam.map(\.digest))
                try store.removeHamSenders(takenBack.filter { !stillHam.contains($0.digest) })
                // What the training now says about the user's mail, for the filter to score with
                // (`StarterAgreement`), measured on the counts this transaction is about to commit: a measure
                // left for later was lost with a kill, and the model scored as one that disagrees. It holds the
                // write lock a moment longer (0.3 s for 780,000 tokens).
                if store.sharedModel == nil { try Engine.recordStarterAgreement(in: store) }
            }
            // A shared model's counts and agreement are PostgreSQL's: no transaction here spans them.
            if store.sharedModel != nil { try Engine.recordStarterAgreement(in: store) }
            store.checkpointIfLarge()
            if store.fileWasReplaced { throw StoreError.replacedWhileOpen(path: store.path) }
        } catch {
            // What is still pending is dropped, not committed without the run's end (its contacts): running the
            // command again learns it, and learning twice counts once (found in review).
            writer.abandon()
            writer.progress.finish()
            Stores.report(error)
            // What was committed before the failure is learned, and said; into a file replaced meanwhile, it is not
            // (found by the concurrency audit: "learned 50" after "what was written since went with the old file").
            if case StoreError.replacedWhileOpen = error {} else { print(writer.progress.summary) }
            throw ExitCode(3)
        }
        let progress = writer.progress
        progress.finish()
        // Exit 3 when it cannot be written (`> /dev/full`), as every command that answers on standard output.
        try Stores.writeAnswer(progress.summary)
        if failed > 0 { throw ExitCode(3) }
    }
}

/// Hands training batches to `BulkTraining` on a thread of its own, in order, so the next batches are tokenized
/// meanwhile.
///
/// Up to `maxQueued` batches (counting the one being written) are handed over at once; `submit` blocks only while
/// all are taken. Waiting for each write before handing over the next batch stalled tokenizing whenever one write
/// ran long (a commit at `BulkTraining.tokenLimit`, or a batch's template sightings). `BulkTraining` is only
/// touched on the writer's serial queue (and by `finish`, after the queue has drained); `reading` only by the
/// caller; `failure` behind its lock. That is why the class can be `@unchecked Sendable`.
final class OverlappedWriter: @unchecked Sendable {
    /// Batches handed over and not yet written, the one being written included. A batch holds its messages'
    /// token ids (about 3 MB for 1,000 messages of the SpamAssassin corpus), so this bounds the memory the writer
    /// can fall behind by.
    static let maxQueued = 3

    private var training: BulkTraining
    private let queue = DispatchQueue(label: "pitchfilter.train.writer")
    private let pending = DispatchGroup()
    private let slots = DispatchSemaphore(value: maxQueued)
    private let failure = Mutex<(any Error)?>(nil)
    private var reading = Progress()

    /// What was read, and the outcomes of what was committed. Read it after `finish`.
    var progress: Progress {
        var progress = reading
        progress.count(training.committed)
        return progress
    }

    /// `tokenLimit`: `BulkTraining`'s, for tests that need commits in mid-run.
    init(store: SQLiteTokenStore, tokenLimit: Int? = nil) {
        training = tokenLimit.map { BulkTraining(store: store, tokenLimit: $0) } ?? BulkTraining(store: store)
    }

    /// Rethrows the failure of an earlier batch; a batch after a failed one is never written.
    func submit(_ items: [TrainingItem], sightings: [TemplateSighting]) throws {
        if let error = failure.withLock({ $0 }) { throw error }
        reading.read(items.count)
        enqueue { try $0.add(items, sightings: sightings) }
    }

    /// Commits what is pending, and `alsoCommitting` in the same transaction: what the run's end writes (its
    /// contacts, the starter agreement) is written with its last commit or not at all. Written after it, a run
    /// killed or out of disk between the two left a model that looked complete, with no contact known and no
    /// agreement measured, and scored far worse (found by an audit). After a failure, commits nothing more:
    /// `progress` then counts what was committed.
    func finish(alsoCommitting: () throws -> Void = {}) throws {
        pending.wait()
        if let error = failure.withLock({ $0 }) { throw error }
        do {
            try training.finish(alsoCommitting: alsoCommitting)
        } catch {
            failure.withLock { $0 = error }
            throw error
        }
    }

    /// Waits for what was handed over and commits nothing more: the run failed.
    func abandon() {
        pending.wait()
    }

    /// Runs `work` on the writer's queue after everything handed over before it, unless something failed.
    private func enqueue(_ work: @escaping @Sendable (inout BulkTraining) throws -> Void) {
        slots.wait()
        pending.enter()
        queue.async { [self] in
            defer {
                slots.signal()
                pending.leave()
            }
            guard failure.withLock({ $0 == nil }) else { return }
            do {
                try work(&training)
            } catch {
                failure.withLock { $0 = error }
            }
        }
    }
}

/// Outcome counts of what was committed, and a running count of the messages read on standard error when it is
/// a terminal (big runs take a while).
struct Progress {
    private var outcomes: [TrainingOutcome: Int] = [:]
    private var total = 0
    private let showsProgress = isatty(2) == 1

    mutating func read(_ count: Int) {
        let before = total
        total += count
        if showsProgress, total / 100 > before / 100 {
            FileDescriptor.writeAll(2, Array("\r\(total) messages".utf8)[...])
        }
    }

    mutating func count(_ committed: [TrainingOutcome]) {
        for outcome in committed { outcomes[outcome, default: 0] += 1 }
    }

    func finish() {
        if showsProgress, total >= 100 { FileDescriptor.writeAll(2, [0x0D][...]) }
    }

    var summary: String {
        "learned \(outcomes[.learned] ?? 0), already known \(outcomes[.alreadyKnown] ?? 0), "
            + "moved \(outcomes[.moved] ?? 0), forgotten \(outcomes[.forgotten] ?? 0), "
            + "not known \(outcomes[.notKnown] ?? 0)"
    }
}
