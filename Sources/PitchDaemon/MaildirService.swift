import Dispatch
import Logging
import PitchEngine
import PitchMaildir
import PitchStore
import ServiceLifecycle
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// Watches every configured Maildir: inotify for arrivals, a full scan at start-up and every `scan_interval`.
///
/// The work is blocking file-system and SQLite calls, so it runs on a thread of its own rather than on the
/// cooperative pool that the rest of the service shares. The Service's `run` waits for that thread; a graceful
/// shutdown sets a flag and wakes it, and the thread stops after the message in hand.
public final class MaildirService: Service, Sendable {
    private let settings: Settings
    private let logger: Logger
    private let control = LoopControl()
    private let wakeup: Wakeup

    /// What the loop needs besides the configuration: where things are, and how to reach systemd.
    public struct Settings: Sendable {
        public var configuration: Configuration
        public var databasePath: String
        /// Re-reads the configuration for SIGHUP; nil when the service was started from flags alone.
        public var reload: (@Sendable () throws -> Configuration)?
        public var notifier: SystemdNotifier
        /// What a reload's `log_level` changes; nil leaves logging alone.
        public var logLevel: LogLevelSetting?
        /// The milter's handler, which a reload gives the new `[milter]` and `[classifier]` settings.
        public var milter: MilterFilter?
        /// Where the loop says it is ready at the start, if others must be too; nil: it tells systemd itself.
        public var startup: SystemdNotifier.Startup?

        public init(configuration: Configuration, databasePath: String,
                    reload: (@Sendable () throws -> Configuration)?, notifier: SystemdNotifier) {
            self.configuration = configuration
            self.databasePath = databasePath
            self.reload = reload
            self.notifier = notifier
        }
    }

    public init(settings: Settings, logger: Logger) throws {
        self.settings = settings
        self.logger = logger
        wakeup = try Wakeup()
    }

    /// Asks the loop to re-read the configuration (SIGHUP).
    public func requestReload() {
        control.requestReload()
        wakeup.signal()
    }

    public func run() async throws {
        try await withGracefulShutdownHandler {
            try await withTaskCancellationHandler {
                try await runOnOwnThread()
            } onCancel: {
                self.stop()
            }
        } onGracefulShutdown: {
            self.stop()
        }
    }

    private func stop() {
        control.stop()
        wakeup.signal()
    }

    private func runOnOwnThread() async throws {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
            DispatchQueue(label: "pitchfilter.maildir").async {
                do {
                    let loop = try WatchLoop(settings: self.settings, logger: self.logger, wakeup: self.wakeup,
                                             control: self.control)
                    try loop.run()
                    continuation.resume()
                } catch {
                    continuation.resume(throwing: error)
                }
            }
        }
    }
}

extension MaildirService {
    /// How long the quarantine keeps the record of a message released or deleted, counted from then.
    static let settledRecordDays = 90

    /// Forgets the records of messages released or deleted `settledRecordDays` ago or more; at start, then once
    /// a day.
    static func forgetSettledRecords(in store: SQLiteTokenStore, now: Int64) throws {
        try store.apply([.forgetSettledQuarantine(before: now - Int64(settledRecordDays) * 86_400)])
    }
}

/// The flags another thread sets for the loop: stop, and reload.
final class LoopControl: Sendable {
    private struct State {
        var stopping = false
        var reloadRequested = false
    }

    private let state = Mutex(State())

    var stopping: Bool { state.withLock { $0.stopping } }
    func stop() { state.withLock { $0.stopping = true } }
    func requestReload() { state.withLock { $0.reloadRequested = true } }

    /// True once per request.
    func takeReloadRequest() -> Bool {
        state.withLock { state in
            defer { state.reloadRequested = false }
            return state.reloadRequested
        }
    }
}

/// When each mailbox with a failed change (a file its writer holds open, a full disk, a locked database) is tried
/// again: `firstWait` after the failure, then, while its retries fail too, after twice as long each time, up to
/// the scan interval. A retry reads its mailbox whole: every mailbox read every 2 s ran back to back at 100,000
/// messages and kept a core busy for as long as one file was held open (found by an audit). Each mailbox waits on
/// its own, and a change that fails outside a scan (an arrival) is tried `firstWait` later whatever its mailbox's
/// wait (found in review: one mailbox's stuck file held every other failure back, up to the scan interval).
struct Retries {
    static let firstWait = 2.0
    private var waits: [String: (delay: Double, due: Double)] = [:]

    /// After `mailbox` was scanned at `now`, failing still or not.
    mutating func scanned(_ mailbox: String, failing: Bool, at now: Double, scanInterval: Int) {
        guard failing else {
            waits[mailbox] = nil
            return
        }
        let longest = max(Self.firstWait, Double(scanInterval))
        let delay = waits[mailbox].map { min($0.delay * 2, longest) } ?? Self.firstWait
        waits[mailbox] = (delay, now + delay)
    }

    /// A change in `mailbox` failed at `now`, outside a scan.
    mutating func failed(_ mailbox: String, at now: Double) {
        let due = now + Self.firstWait
        waits[mailbox] = waits[mailbox].map { ($0.delay, min($0.due, due)) } ?? (Self.firstWait, due)
    }

    /// The mailboxes due for a retry at `now`, in order.
    func due(at now: Double) -> [String] {
        waits.filter { $0.value.due <= now }.keys.sorted()
    }

    /// When the next retry is due; nil with none waiting.
    var next: Double? { waits.values.map(\.due).min() }

    /// Whether `mailbox` waits for a retry.
    func waits(_ mailbox: String) -> Bool { waits[mailbox] != nil }
}

/// Events waiting to be handled, taken in turns by mailbox, each mailbox's in the order they came: a burst into one
/// mailbox held up every other's mail until its last message (found by an audit: one message to another mailbox
/// waited 25 s behind 8,000, and 69 s behind 17,000). The loop takes a few at a time and reads the queue again
/// between, so that what arrives meanwhile elsewhere takes its turn too.
struct Turns<Event> {
    private var queues: [String: (events: [Event], next: Int)] = [:]
    /// The mailboxes with events waiting, in the order their turns come.
    private var order: [String] = []
    private var turn = 0

    var isEmpty: Bool { order.isEmpty }

    /// Events one mailbox may have waiting. A scan lends the loop the thread (`WatchLoop.between(scanning:)`) and
    /// the inotify queue is read then, but the scanned mailbox's events wait, those its own changes make among them
    /// (five or so a message), with no bound (found in review: some 50,000 behind a backlog of 10,000). Past this
    /// many, as past the kernel's own limit, the mailbox is scanned instead.
    static var mailboxLimit: Int { 16_384 }

    /// Adds `events`; events whose mailbox is unknown (nil) wait in a queue of their own. Returns the mailboxes
    /// that went past `limit` events waiting: their events are dropped, and they are to be scanned instead.
    @discardableResult
    mutating func add(_ events: [Event], limit: Int = .max, by mailbox: (Event) -> String?) -> Set<String> {
        var dropped = Set<String>()
        for event in events {
            let key = mailbox(event) ?? ""
            if dropped.contains(key) { continue }
            if queues[key] == nil {
                queues[key] = ([], 0)
                order.append(key)
            }
            queues[key]!.events.append(event)
            if queues[key]!.events.count - queues[key]!.next > limit {
                dropped.insert(key)
                remove(key)
            }
        }
        return dropped
    }

    private mutating func remove(_ key: String) {
        guard let index = order.firstIndex(of: key) else { return }
        queues[key] = nil
        order.remove(at: index)
        if index < turn { turn -= 1 }
    }

    /// Up to `count` events, one mailbox's at a time; of the mailboxes `eligible` allows (the others' wait).
    mutating func take(_ count: Int, where eligible: (String) -> Bool = { _ in true }) -> [Event] {
        var taken: [Event] = []
        // Mailboxes passed over in a row: once every one waiting has been, none is eligible.
        var passedOver = 0
        while taken.count < count, passedOver < order.count {
            if turn >= order.count { turn = 0 }
            let key = order[turn]
            guard eligible(key) else {
                turn += 1
                passedOver += 1
                continue
            }
            passedOver = 0
            let (events, next) = queues[key]!
            taken.append(events[next])
            if next + 1 == events.count {
                queues[key] = nil
                order.remove(at: turn)
            } else {
                queues[key]!.next = next + 1
                turn += 1
            }
        }
        return taken
    }

    mutating func removeAll() {
        self = Turns()
    }
}

/// The loop itself, confined to the service's thread. A class: a scan lends it the thread between messages
/// (`between(scanning:)`), and the events it handles then change the loop's state.
private final class WatchLoop {
    let settings: MaildirService.Settings
    let logger: Logger
    let wakeup: Wakeup
    let control: LoopControl
    var configuration: Configuration
    let inotify: Inotify
    var workers: [String: MailboxWorker] = [:]
    /// inotify watch → the mailbox root and the folder and subdirectory it watches (nil subdirectory: the root,
    /// watched for new sub-folders).
    var watches: [Int32: (root: String, folder: MaildirFolder, subdirectory: MaildirFolder.Subdirectory?)] = [:]
    var retries = Retries()
    /// Events read and not yet handled.
    var waiting = Turns<Inotify.Event>()
    /// The kernel dropped events: every mailbox is to be scanned whole.
    var fullScanRequested = false
    /// Mailboxes with too many events waiting (`Turns.mailboxLimit`), dropped: each is to be scanned whole.
    var scansRequested: Set<String> = []
    /// When a scan last lent the loop the thread (`between(scanning:)`).
    var lentAt = 0.0
    /// The database, once open (`run`).
    var store: SQLiteTokenStore?
    /// The database file was found replaced during a scan: the loop stops the service once the scan has stopped.
    var databaseReplaced = false

    init(settings: MaildirService.Settings, logger: Logger, wakeup: Wakeup,
         control: LoopControl) throws {
        self.settings = settings
        self.logger = logger
        self.wakeup = wakeup
        self.control = control
        configuration = settings.configuration
        inotify = try Inotify()
    }

    var stopping: Bool { control.stopping }

    /// Events handled between two reads of the queue (`Turns`): about a tenth of a second's work.
    static let eventsAtATime = 32
    /// How often a scan lends the loop the thread, in seconds.
    static let lendingInterval = 0.1

    func run() throws {
        guard let store = openStore() else { return }
        self.store = store
        startWorkers(store: store)
        // Ready once every mailbox is watched, before the mail that arrived while the service was down is
        // classified: a backlog of thousands of messages took longer than systemd waits for a start (found by an
        // audit: 3,000 messages, READY after 30 s in a debug build), and the unit was killed and started again.
        let status = "watching \(workers.count) mailbox(es)"
        // Not while the service is being stopped: another part failed to start (found in review).
        if !control.stopping {
            if let startup = settings.startup {
                startup.ready(status: status)
            } else {
                settings.notifier.notify(ready: true, status: status)
            }
        }
        logger.info("watching", metadata: ["mailboxes": "\(workers.count)", "database": "\(settings.databasePath)"])
        scanAll()
        try stopIfReplaced(store)

        var nextScan = Monotonic.seconds() + Double(configuration.scanInterval)
        var nextTidy = tidy(store, retryAt: nextScan)
        while !stopping {
            let untilScan = max(0, nextScan - Monotonic.seconds())
            // A failed change is retried when its wait is over (`Retries`), not at every wake-up: the events a
            // failed attempt makes itself woke the loop at once, and a change that kept failing was tried in a hot
            // loop (found in review).
            let untilRetry = retries.next.map { max(0, $0 - Monotonic.seconds()) } ?? untilScan
            let wait = !waiting.isEmpty || fullScanRequested || !scansRequested.isEmpty ? 0 : min(untilScan, untilRetry)
            _ = Poll.readable([inotify.descriptor, wakeup.descriptor], milliseconds: Int32(wait * 1000))
            wakeup.drain()
            if stopping { break }
            try stopIfReplaced(store)
            if control.takeReloadRequest() { reload(store: store) }
            readEvents()
            handleWaiting()
            let now = Monotonic.seconds()
            if fullScanRequested || now >= nextScan {
                scanAll()
                nextScan = Monotonic.seconds() + Double(configuration.scanInterval)
            } else {
                // Only the mailboxes whose wait is over: another's failure is no reason to read them all.
                let due = Set(retries.due(at: now)).union(scansRequested)
                if !due.isEmpty { scanAll(only: due) }
            }
            try stopIfReplaced(store)
            if now >= nextTidy { nextTidy = tidy(store, retryAt: nextScan) }
            store.checkpointIfLarge()
        }
        // Everything learned goes from the write-ahead log into the database file itself, so that a backup
        // that copies only the .sqlite file of a stopped service has it all (found by an audit: the file held
        // none of it). Without waiting for a reader: one still at work leaves the rest for the next writer.
        store.checkpointIfLarge(thresholdBytes: 0)
        settings.notifier.notify(stopping: true)
        logger.info("stopped watching")
    }

    /// The database, opened read-write; waits and retries while it cannot be (a read-only file, a full disk, a
    /// permission an admin is fixing) rather than exiting, so the unit does not flap. Nil when stopped meanwhile.
    private func openStore() -> SQLiteTokenStore? {
        var lastError = ""
        while !stopping {
            do {
                let model = try settings.configuration.sharedModel?.open(tokenizerIdentity: Engine.tokenizerIdentity,
                                                                         readOnly: false)
                let store = try SQLiteTokenStore(path: settings.databasePath,
                                                 tokenizerIdentity: Engine.tokenizerIdentity, access: .readWrite,
                                                 sharedModel: model)
                if store.beganAsAnEmptyFile {
                    logger.warning("\(StoreError.emptyFileWarning)", metadata: ["database": "\(settings.databasePath)"])
                }
                return store
            } catch {
                let line = "\(error)"
                if line != lastError { logger.error("cannot open the database, retrying every 5 s: \(line)") }
                lastError = line
                settings.notifier.notify(status: "waiting for the database: \(line)")
                _ = Poll.readable([wakeup.descriptor], milliseconds: 5_000)
                wakeup.drain()
            }
        }
        return nil
    }

    /// Every record written from here on would be lost with the old file: the service stops with an error, and
    /// systemd starts it again on the file now at the path (or a new one), which it records afresh. Also when a scan
    /// saw it replaced and the file has been put back since (found in review: the scans stopped at once for good,
    /// and the loop, with work waiting, ran at 100 % CPU). Not with no mailbox to watch: a service that is only a
    /// milter keeps no records here, and the milter opens the file now at the path at its next message (found by an
    /// audit: the milter stopped a scan interval after it had gone over to the new file).
    private func stopIfReplaced(_ store: SQLiteTokenStore) throws {
        guard !workers.isEmpty || databaseReplaced else { return }
        if databaseReplaced || store.fileWasReplaced { throw StoreError.replacedWhileOpen(path: store.path) }
    }

    /// Adds what inotify has to the events waiting. When the kernel dropped some, a full scan handles every file:
    /// the events waiting say nothing more.
    private func readEvents() {
        let events = inotify.read()
        if events.contains(where: \.overflowed) {
            fullScanRequested = true
            waiting.removeAll()
            return
        }
        let watches = self.watches
        let dropped = waiting.add(events, limit: Turns<Inotify.Event>.mailboxLimit) { watches[$0.watch]?.root }
        scansRequested.formUnion(dropped.filter { workers[$0] != nil })
    }

    /// Handles a turn's worth of the events waiting, and notes the mailboxes whose change failed meanwhile for a
    /// retry. `busy`: the mailbox a scan is in the middle of; its events wait for the scan's end, as do those of a
    /// mailbox not yet scanned whole (its folders' renames are not known before).
    private func handleWaiting(except busy: String? = nil) {
        let workers = self.workers
        let failuresBefore = workers.mapValues(\.failures)
        // Nor, outside scans, those of a mailbox a reload added, before its first scan comes (found in review: a
        // folder renamed while it was not watched was taken for a new one, and its pitches learned as ham).
        let requested = scansRequested
        let events = busy == nil
            ? waiting.take(Self.eventsAtATime) { !requested.contains($0) || workers[$0]?.hasScannedAll != false }
            : waiting.take(Self.eventsAtATime) { $0 != busy && workers[$0]?.hasScannedAll == true }
        for event in events {
            if stopping { break }
            handle(event)
        }
        let now = Monotonic.seconds()
        // Failed since the last look, outside a scan (or a mailbox added by a reload that failed at once). The busy
        // mailbox's scan notes its own when it ends.
        for (root, worker) in workers where root != busy
            && worker.needsRetry && (worker.failures != failuresBefore[root] || !retries.waits(root)) {
            retries.failed(root, at: now)
        }
    }

    /// Asked by a scan of `worker` between its messages: whether to stop; and every `lendingInterval`, a reload
    /// asked for is made and the other mailboxes' events get a turn. A full scan, or one mailbox's retry, handled its
    /// whole backlog before the loop came back to the queue (found in review: one message to another mailbox waited
    /// 66 s behind 10,000), and a reload waited for it too (found by an audit: a mailbox removed went on being
    /// classified, and the policies changed were not applied, until a backlog of 8,000 was done).
    private func between(scanning worker: MailboxWorker) -> Bool {
        let root = worker.maildir.root
        // Asked again after a scan of one folder ends, and the answer must stay: the scan would go on to the next.
        // A mailbox removed by a reload (or removed and added again) is scanned no further.
        if stopping || databaseReplaced || workers[root] !== worker { return true }
        let now = Monotonic.seconds()
        guard now - lentAt >= Self.lendingInterval else { return false }
        // The loop stops the service on it; nothing more is written to the old file meanwhile.
        if store?.fileWasReplaced ?? false {
            databaseReplaced = true
            return true
        }
        if let store, control.takeReloadRequest() { reload(store: store) }
        guard workers[root] === worker else { return true }
        readEvents()
        handleWaiting(except: root)
        // From the end of the turn: counted from its start, a turn of a tenth of a second was followed by another
        // at the scan's next message, and a steady stream elsewhere left the scan one message in 32 (found in review).
        lentAt = Monotonic.seconds()
        return stopping
    }

    private func startWorkers(store: SQLiteTokenStore) {
        for mailbox in configuration.mailboxes {
            addWorker(mailbox, store: store)
            if stopping { return }
        }
    }

    /// A mailbox's worker, prepared and watched; its folders are looked through at the next full scan, or, added by a
    /// reload, at the loop's next turn (`scansRequested`): a reload may come while another mailbox's scan lends the
    /// thread, and scans do not nest.
    private func addWorker(_ mailbox: MailboxConfiguration, store: SQLiteTokenStore, scanning: Bool = false) {
        let maildir = Maildir(root: mailbox.path)
        let worker = MailboxWorker(maildir: maildir, policy: mailbox.policy, cutoffs: configuration.cutoffs,
                                   reasons: configuration.reasons, ownFields: configuration.ownFields, store: store,
                                   logger: logger)
        workers[maildir.root] = worker
        // Watched from when it is prepared: a Maildir not there yet, or a database locked now, are tried again
        // at every scan.
        _ = worker.prepareIfNeeded()
        watchFolders(of: worker)
        if scanning { scansRequested.insert(maildir.root) }
    }

    /// Watches the mailbox's root and every folder's new/, cur/ and tmp/ as they are now. Added again each time:
    /// inotify watches a directory, not its path, and one renamed away (a Maildir moved aside and made again from a
    /// backup) kept its watch while the path's new directory had none, its mail waiting for the periodic scan until
    /// a restart (found by an audit). A watch no path leads to any more is dropped: it would report the renamed
    /// directory's files under the old path.
    private func watchFolders(of worker: MailboxWorker) {
        guard worker.isPrepared else { return }
        let root = worker.maildir.root
        var current = Set<Int32>()
        if let watch = try? inotify.watch(root, mask: Inotify.rootChanges) {
            watches[watch] = (root, worker.maildir.inbox, nil)
            current.insert(watch)
        }
        let listed = try? worker.maildir.allFolders()
        for folder in listed ?? [worker.maildir.inbox] {
            current.formUnion(watch(folder, of: root))
        }
        // Only when every folder was listed: one left out is no folder gone.
        guard listed != nil else { return }
        for (watch, watched) in watches where watched.root == root && !current.contains(watch) {
            inotify.unwatch(watch)
            watches[watch] = nil
        }
    }

    /// Watches `folder`'s new/, cur/ and tmp/; returns the watches. `justMade`: a folder an event announced, which
    /// may be renamed again or not have all three yet (a client making it), unsaid: the next scan watches it.
    private func watch(_ folder: MaildirFolder, of root: String, justMade: Bool = false) -> [Int32] {
        var made: [Int32] = []
        for subdirectory in MaildirFolder.Subdirectory.allCases {
            do {
                let watch = try inotify.watch(folder.path + "/" + subdirectory.rawValue)
                watches[watch] = (root, folder, subdirectory)
                made.append(watch)
            } catch {
                if justMade, error.isMissing { continue }
                logger.warning("cannot watch \(folder.path)/\(subdirectory.rawValue): \(error); scans still cover it")
            }
        }
        return made
    }

    private func handle(_ event: Inotify.Event) {
        let control = self.control
        guard let (root, folder, subdirectory) = watches[event.watch], let worker = workers[root] else { return }
        if event.mask & UInt32(IN_IGNORED) != 0 {
            watches[event.watch] = nil  // the directory went away
            return
        }
        guard let subdirectory else {
            // Something appeared in the mailbox's root: maybe a new Maildir++ folder. Its cur/ may not exist yet
            // when the event arrives, so watch what exists now and scan; the periodic scan catches the rest.
            // That folder alone: every folder's watches added again at each of a burst of new folders cost a listing
            // and three calls per folder each time (found in review). The full scans add and drop the rest.
            if event.name.hasPrefix(".") {
                let folder = worker.maildir.folder(event.name)
                if worker.isPrepared, worker.maildir.hasSubfolder(named: event.name) {
                    _ = watch(folder, of: root, justMade: true)
                }
                worker.scan(folder, shouldStop: { control.stopping })
            }
            return
        }
        worker.arrived(in: folder, subdirectory, name: event.name)
    }

    /// Forgets settled quarantine records; returns when to do it next: in a day, or at `retryAt` after a failure
    /// (a lock held by a trainer, say).
    private func tidy(_ store: SQLiteTokenStore, retryAt: Double) -> Double {
        do {
            try MaildirService.forgetSettledRecords(in: store, now: Int64(time(nil)))
            return Monotonic.seconds() + 86_400
        } catch {
            logger.debug("old quarantine records not forgotten yet: \(error)")
            return retryAt
        }
    }

    /// Scans every mailbox, or those in `only`, and notes which still have something to retry.
    private func scanAll(only: Set<String>? = nil) {
        // Dropped events met after this point ask for another.
        if only == nil { fullScanRequested = false }
        for worker in (only == nil ? scanOrder() : workers.values.sorted { $0.maildir.root < $1.maildir.root })
        where only?.contains(worker.maildir.root) ?? true {
            // Nothing more written to a database file replaced meanwhile: the loop stops the service.
            if stopping || databaseReplaced { return }
            let root = worker.maildir.root
            // A reload during an earlier mailbox's scan may have removed it.
            guard workers[root] === worker else { continue }
            _ = worker.prepareIfNeeded()
            watchFolders(of: worker)
            // Its events from here on are read again: what was dropped before is this scan's.
            scansRequested.remove(root)
            worker.scanAll(shouldStop: { [unowned self] in between(scanning: worker) })
            if databaseReplaced { return }
            // Its events dropped during the scan were its own changes' (a failure's exchange and the exchange back
            // asked for a scan at once, which failed again, for ever, past its waits; found in review) and perhaps
            // new arrivals: the retry covers them all, after its wait (up to `scan_interval`).
            if worker.needsRetry { scansRequested.remove(root) }
            guard workers[root] === worker else {
                // Removed by a reload during its scan: nothing more to note of it.
                if workers[root] == nil {
                    retries.scanned(root, failing: false, at: 0, scanInterval: configuration.scanInterval)
                }
                continue
            }
            worker.scanSucceeded()
            retries.scanned(worker.maildir.root, failing: worker.needsRetry, at: Monotonic.seconds(),
                            scanInterval: configuration.scanInterval)
        }
        // A mailbox a reload removed has nothing more to retry or scan (its wait or request, left, would keep the loop
        // from sleeping).
        for root in only ?? [] where workers[root] == nil {
            retries.scanned(root, failing: false, at: 0, scanInterval: configuration.scanInterval)
            scansRequested.remove(root)
        }
    }

    /// The mailboxes in the order a full scan takes them: by path, but while any has not been scanned whole yet (at
    /// the start, or added by a reload), those with fewer files in the INBOX's new/ first. A mailbox's arrivals
    /// are handled during other mailboxes' scans only once it has been scanned whole, and a mailbox after a large
    /// backlog in path order waited for all of it at every start (found by an audit: a minute and more behind
    /// 15,000 messages in two others).
    private func scanOrder() -> [MailboxWorker] {
        let byPath = workers.values.sorted { $0.maildir.root < $1.maildir.root }
        guard byPath.contains(where: { !$0.hasScannedAll }) else { return byPath }
        let waiting = byPath.map { worker in
            worker.hasScannedAll ? 0 : (try? worker.maildir.inbox.fileCount(in: .new)) ?? 0
        }
        return zip(byPath, waiting).enumerated()
            .sorted { ($0.element.1, $0.offset) < ($1.element.1, $1.offset) }
            .map(\.element.0)
    }

    /// SIGHUP: read the file again; keep running on the old configuration if the new one is invalid. Policies
    /// change in place; mailboxes added are started, mailboxes removed stop being watched.
    private func reload(store: SQLiteTokenStore) {
        guard let read = settings.reload else {
            logger.notice("SIGHUP ignored: started without --config")
            return
        }
        // Not while the start is unfinished (the milter not yet listening): READY=1 would end it early.
        let started = settings.startup?.isComplete ?? true
        if started { settings.notifier.notify(reloading: true) }
        defer {
            settings.notifier.notify(ready: started, status: "watching \(workers.count) mailbox(es)")
        }
        let new: Configuration
        do {
            new = try read()
        } catch {
            logger.error("configuration not reloaded, keeping the running one: \(error)")
            return
        }
        // Against what the service runs on, not the last file read: a second reload of a changed path said
        // nothing, and putting the old path back warned of a change (found in review).
        if new.databasePath != settings.configuration.databasePath {
            logger.warning("the database path changed; restart the service to use it")
        }
        // Against what the service started with, as for the milter's listener.
        if new.metrics != settings.configuration.metrics {
            logger.warning("[metrics] changed: it takes effect when the service restarts")
        }
        if new.sharedModel != settings.configuration.sharedModel {
            logger.warning("[database] shared_model changed: it takes effect when the service restarts")
        }
        reloadMilter(new)
        settings.logLevel?.value = Logger.Level(new.logLevel)
        let roots = Set(new.mailboxes.map { Maildir.trimmed($0.path) })
        for (root, _) in workers where !roots.contains(root) {
            workers[root] = nil
            for (watch, target) in watches where target.root == root {
                inotify.unwatch(watch)
                watches[watch] = nil
            }
            logger.info("no longer watching", metadata: ["mailbox": "\(root)"])
        }
        configuration = new
        // Every mailbox's new settings before a new one's first scan, which lends the thread to the others' events
        // (found in review: handled meanwhile with the old settings).
        for mailbox in new.mailboxes {
            workers[Maildir.trimmed(mailbox.path)]?.update(policy: mailbox.policy, cutoffs: new.cutoffs,
                                                           reasons: new.reasons, ownFields: new.ownFields)
        }
        // A service that was only a milter may run on a database replaced meanwhile (`stopIfReplaced`): a mailbox
        // added now would take stock into the old file, and the loop stops the service instead (found in review).
        if !new.mailboxes.isEmpty, store.fileWasReplaced {
            databaseReplaced = true
            return
        }
        for mailbox in new.mailboxes where workers[Maildir.trimmed(mailbox.path)] == nil {
            addWorker(mailbox, store: store, scanning: true)
        }
        logger.info("configuration reloaded", metadata: ["mailboxes": "\(workers.count)"])
    }

    /// The milter's policy (hold, subject tag, header position, learning from outbound mail), cutoffs and field
    /// names change in place; its listener and limits belong to the running server, and a `[milter]` added or
    /// removed needs a restart too.
    private func reloadMilter(_ new: Configuration) {
        // Against what the server started with, not the last file read: a reload that removed [milter] and one
        // that put it back both concern the milter still listening.
        guard let filter = settings.milter, let running = settings.configuration.milter else {
            if new.milter != nil {
                logger.warning("[milter] was added: the milter starts when the service restarts")
            }
            return
        }
        guard var milter = new.milter else {
            // Its own settings stay; the cutoffs and field names are the service's, and both halves use the new
            // ones (found in review: the milter wrote the old field name while the Maildirs had the new one).
            logger.warning("[milter] was removed: the milter runs on until the service restarts")
            filter.update(configuration: filter.configuration, cutoffs: new.cutoffs, reasons: new.reasons,
                          ownFields: new.ownFields)
            return
        }
        if milter.address != running.address || milter.maximumSessions != running.maximumSessions
            || milter.maximumMessageBytes != running.maximumMessageBytes
            || milter.maximumBufferedBytes != running.maximumBufferedBytes {
            logger.warning("""
                [milter] listen, socket_mode, max_sessions, max_message_mib and max_buffered_mib take effect when the \
                service restarts
                """)
            milter.address = running.address
            milter.maximumSessions = running.maximumSessions
            milter.maximumMessageBytes = running.maximumMessageBytes
            milter.maximumBufferedBytes = running.maximumBufferedBytes
        }
        filter.update(configuration: milter, cutoffs: new.cutoffs, reasons: new.reasons, ownFields: new.ownFields)
    }

}

/// Seconds on the monotonic clock, for intervals: wall-clock time may jump.
enum Monotonic {
    static func seconds() -> Double {
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        return Double(now.tv_sec) + Double(now.tv_nsec) / 1e9
    }
}
