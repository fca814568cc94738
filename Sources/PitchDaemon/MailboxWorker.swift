import CLinuxCalls
import Logging
import PitchClassifier
import PitchEngine
import PitchMaildir
import PitchMessage
import PitchStore
import PitchTokenizer

#if canImport(Glibc)
import Glibc
#endif

/// Everything the service does to one Maildir: classify what arrives in the INBOX, quarantine and tag it, and
/// learn from what the user moves.
///
/// The worker is the only writer of the folders' files it acts on, and it follows one rule for every change:
/// write down in the journal what is about to happen, change the folder atomically, then mark it done. A restart
/// that finds a pending record finishes that one change (see `recover`), so a `kill -9` at any moment leaves
/// every message exactly once. What the worker does not understand it leaves where it is.
final class MailboxWorker {
    /// Made again before each scan (`refreshOwner`).
    private(set) var maildir: Maildir
    private(set) var policy: MailboxPolicy
    private let store: SQLiteTokenStore
    private var engine: Engine
    /// Whether tagged messages get X-Pitch-Reasons too (`[classifier] reasons`).
    private var reasons: Bool
    private let logger: Logger
    /// The journal's records, per folder path, so that a rescan of a large folder costs a directory listing.
    private var records: [String: [String: FileRecord]] = [:]
    private var deliveries = 0

    /// A change that could not be made now (a locked database, a full disk): the next scan tries again.
    private(set) var needsRetry = false {
        didSet { if needsRetry { failures &+= 1 } }
    }
    /// How many times a change failed, ever: the loop tells a failure new since it last looked (`Retries`).
    private(set) var failures = 0
    /// Whether a scan of every folder has gone to its end: until then, a renamed folder is not known for one.
    private(set) var hasScannedAll = false

    init(maildir: Maildir, policy: MailboxPolicy, cutoffs: Cutoffs = .standard, reasons: Bool = false,
         ownFields: OwnFields = .standard, store: SQLiteTokenStore, logger: Logger) {
        self.maildir = maildir
        self.policy = policy
        self.reasons = reasons
        self.store = store
        self.engine = Self.engine(store: store, cutoffs: cutoffs, ownFields: ownFields)
        var logger = logger
        logger[metadataKey: "mailbox"] = "\(maildir.root)"
        self.logger = logger
    }

    func update(policy: MailboxPolicy, cutoffs: Cutoffs, reasons: Bool, ownFields: OwnFields) {
        self.policy = policy
        self.reasons = reasons
        engine = Self.engine(store: store, cutoffs: cutoffs, ownFields: ownFields)
    }

    private static func engine(store: SQLiteTokenStore, cutoffs: Cutoffs, ownFields: OwnFields) -> Engine {
        Engine(store: store, schedule: ModelSchedule.standard.withCutoffs(cutoffs), contacts: store,
               templates: store, tokenizer: Tokenizer(ownFields: ownFields))
    }

    var quarantine: MaildirFolder { maildir.folder(policy.quarantineFolder) }

    /// Whether `prepare` has taken stock of the mailbox. Until it has, a scan only tries again: a scan before the
    /// mail already there was taken stock of would take all of it for new.
    private(set) var isPrepared = false
    private var reportedMissingMaildir = false
    /// Said once: the Maildir cannot be looked into (root cannot act as its owner or tell who that is, or this
    /// user may not).
    private var reportedRefusal = false

    /// Whose the Maildir is (`Maildir.owner`), read again: a Maildir missing at the start has an owner once it is
    /// delivered to, and one an admin made as root and then gave to its user (`maildirmake`, `chown -R`) is the
    /// user's from then on. It names a user only where no one else (but root) can change the way to it
    /// (`FileOwner.ofDirectory`), so reading it again gives no one else a say in whom root acts as.
    private func refreshOwner() {
        maildir = Maildir(root: maildir.root)
    }

    /// `folder` (as a watch or an earlier scan knew it) with the owner read again.
    private func current(_ folder: MaildirFolder) -> MaildirFolder {
        refreshOwner()
        return MaildirFolder(path: folder.path, name: folder.name, owner: maildir.owner)
    }

    /// Prepares the mailbox unless that is done; returns whether it is done.
    func prepareIfNeeded() -> Bool {
        refreshOwner()
        if isPrepared { return true }
        let exists: Bool
        do {
            exists = try maildir.inbox.existsAsOwner()
        } catch {
            // A Maildir that cannot be looked into (root cannot act as the owner or tell who that is, or this user
            // may not) is left alone, and why is said.
            if !reportedRefusal {
                logger.warning("cannot look into the Maildir: \(error)")
                reportedRefusal = true
            }
            return false
        }
        guard exists else {
            // An MDA creates the Maildir with its first delivery, with the owner and modes it needs; a Maildir
            // the service made would have the service's, and a mistyped path would look watched.
            if !reportedMissingMaildir {
                logger.notice("no Maildir here (no cur/): watched from when one is delivered to")
                reportedMissingMaildir = true
            }
            return false
        }
        do {
            try prepare()
            return true
        } catch {
            failed("cannot prepare the mailbox", error)
            return false
        }
    }

    /// Creates the quarantine folder and, the first time this mailbox is seen, takes stock of the mail already
    /// in it: those files are recorded as found, not classified or learned from. Only the INBOX's `new/` is left
    /// to be classified, and the Sent folder's recipients are learned.
    ///
    /// Only the stock-taking throws. The tidying before it is worth doing but not worth stopping the mailbox for
    /// (a folder without tmp/, a quarantine folder that cannot be made yet): its failures are logged.
    func prepare() throws {
        do {
            try quarantine.create()
        } catch {
            failed("cannot create the quarantine folder", error)
        }
        do {
            try removeAbandonedTemporaries()
        } catch {
            failed("cannot tidy the folders' tmp/", error)
        }
        settleInterruptedMoves()
        guard try !store.isInventoried(mailbox: maildir.root) else {
            isPrepared = true
            return
        }
        let now = Self.now()
        var changes: [JournalChange] = []
        var sentRecipients: [String] = []
        for folder in try maildir.allFolders() {
            for subdirectory in MaildirFolder.Subdirectory.allCases {
                if folder.name == "INBOX" && subdirectory == .new { continue }
                for entry in try folder.entries(in: subdirectory) {
                    if folder.name == policy.sentFolder,
                       let bytes = try? entry.read(limit: policy.maxMessageBytes) {
                        sentRecipients += Engine.correspondents(writtenToIn: Message(bytes: bytes))
                    }
                    let found = FileRecord(folder: folder.path, name: entry.name.unique, state: .done)
                    changes.append(.file(found, at: now))
                }
            }
        }
        changes.append(.inventoried(mailbox: maildir.root, at: now))
        try store.apply(changes)
        isPrepared = true
        let added = try store.addContacts(sentRecipients, source: .sent, at: now)
        logger.info("took stock of the mailbox", metadata: [
            "files": "\(changes.count - 1)", "contacts": "\(added)"])
    }

    /// What pitchfilter processes that were killed mid-write left in the folders' tmp/ (never a message's only
    /// copy: `MaildirFolder.removeAbandonedTemporaries`).
    private func removeAbandonedTemporaries() throws {
        for folder in try maildir.allFolders() {
            do {
                let removed = try folder.removeAbandonedTemporaries()
                if removed > 0 {
                    logger.notice("removed partial copies left in tmp/ by a stopped pitchfilter",
                                  metadata: ["folder": "\(folder.name)", "files": "\(removed)"])
                }
            } catch where !error.isMissing {  // a folder without tmp/ has nothing to tidy
                failed("cannot tidy \(folder.path)/tmp", error)
            } catch {}
        }
    }

    /// Quarantine moves that were interrupted after the message left the INBOX (`MaildirFolder.move`): only the
    /// journal's last step is missing. (A message still in the INBOX, tagged or not, is classified again when the
    /// scan meets it: moved again, or its record settled if it is no longer to be quarantined.) Run at every full
    /// scan: a database lock at that last step left the record "moving", refusing release and delete, until a
    /// restart (found by an audit). If the user moved the copy on meanwhile, or a client took the message before
    /// it left the INBOX, the record is settled as deleted and nothing is learned. One record that cannot be
    /// settled does not keep the others waiting.
    func settleInterruptedMoves() {
        let moving: [QuarantineEntry]
        do {
            moving = try store.quarantineEntries(.states([.moving])).filter { $0.mailbox == maildir.root }
        } catch {
            return failed("cannot read the quarantine's records", error)
        }
        for var entry in moving {
            do {
                guard try maildir.inbox.entry(unique: entry.name) == nil else { continue }
                // With the copy gone too, this is no move that happened: a mail client took the message before it
                // left the INBOX, and a crash came before the record said so (found in review). Held, a copy of
                // it the client has would be taken for a release. The copy is looked for where the record says
                // it went, whatever the quarantine folder is called now.
                let folder = maildir.folder(entry.folder)
                let copied = folder.exists ? try folder.entry(unique: entry.name) != nil : false
                entry.state = copied ? .held : .deleted
                let original = FileRecord(folder: maildir.inbox.path, name: entry.name, state: .done)
                try store.apply([.quarantine(entry), Self.forgetMoved(original)])
                forgetRecord(original)
            } catch {
                failed("cannot settle the interrupted quarantine move of \(entry.name)", error)
            }
        }
    }

    /// Looks at every file of every folder the journal has not finished with. `shouldStop` is asked between
    /// messages: a shutdown waits for at most the message in hand.
    func scanAll(shouldStop: () -> Bool) {
        needsRetry = false
        leftForTheNextScan = []
        guard prepareIfNeeded() else { return }
        do {
            // Also while running: a `quarantine release` killed mid-write leaves its copy in tmp/ (found by an
            // audit: until the service's next start).
            try removeAbandonedTemporaries()
        } catch {
            failed("cannot tidy the folders' tmp/", error)
        }
        settleInterruptedMoves()
        let folders: [MaildirFolder]
        do {
            folders = try maildir.allFolders()
        } catch {
            failed("cannot list the mailbox's folders", error)
            return
        }
        if knownFolders == nil {
            // As the journal last saw them, so that a folder renamed while the service was stopped (or while this
            // mailbox was not watched) is one known under another path, as a folder renamed while it runs is (found
            // by an audit: the quarantine folder renamed while the service was stopped had all its pitches learned
            // as ham at the next start). With none recorded (a first start, or a database from before they were),
            // as they are now.
            let recorded: [String: FolderIdentity]
            do {
                recorded = try store.folderIdentities(mailbox: maildir.root)
            } catch {
                return failed("cannot read the journal's record of the mailbox's folders", error)
            }
            knownFolders = recorded.isEmpty
                ? Dictionary(folders.compactMap { folder in Self.identity(of: folder).map { (folder.path, $0) } },
                             uniquingKeysWith: { first, _ in first })
                : recorded
            savedFolders = recorded
        }
        seenThisScan = []
        scanningAll = true
        defer { scanningAll = false }
        for folder in folders {
            if let present = scan(folder, shouldStop: shouldStop) {
                forgetRecords(in: folder, keeping: present)
                if role(of: folder) == .quarantine { closeRecordsOfDeleted(in: folder, keeping: present) }
            }
            if shouldStop() { return }
        }
        hasScannedAll = true
        let listed = Set(folders.map(\.path))
        knownFolders = knownFolders?.filter { listed.contains($0.key) }
        // Kept to the end of the next full scan: displaced during this one, by a folder the service made again
        // while the old one was renamed to a path this scan had not listed, it is met only later (found by an
        // audit: the quarantine folder renamed during a scan of a backlog, every pitch in it was learned as ham).
        displacedFolders = displacedFolders.compactMap { $0.scansEnded >= 1 ? nil : ($0.identity, $0.path, 1) }
        // A rename whose stock-taking failed is tried again at the next scan. It is dropped once the folder is back
        // at its old path, or has been met by none of two full scans in a row (gone; a single miss may be a second
        // rename during the scan, found in review: dropped then, the folder looked new when met again).
        unfinishedRenames = unfinishedRenames.compactMap { rename in
            let met = seenThisScan.filter { $0.identity.isSameDirectory(as: rename.identity) }
            if met.contains(where: { $0.path == rename.from }) { return nil }
            if met.isEmpty { return rename.missed >= 1 ? nil : (rename.identity, rename.from, rename.missed + 1) }
            return (rename.identity, rename.from, 0)
        }
        // Not written while a rename is unfinished: the journal keeps the folders as they were before it, so that
        // a restart meanwhile still sees the rename (found in review: the quarantine folder, made again at every
        // start, took the old path, and a renamed one whose stock-taking had failed looked new after a restart).
        if unfinishedRenames.isEmpty { saveFolderIdentities() }
        forgetVanishedFolders(keeping: listed)
        if learnedSinceAgreement > 0 { measureAgreement() }
    }

    /// Handles every file of `folder` the journal has not finished with; returns the unique names it found, or
    /// nil if it could not list the folder whole.
    @discardableResult
    func scan(_ folder: MaildirFolder, shouldStop: () -> Bool) -> Set<String>? {
        let folder = current(folder)
        guard recognise(folder) else { return nil }
        var present = Set<String>()
        // new/ before cur/: a message a client moves from new/ to cur/ while we list is then seen in one of them.
        for subdirectory in MaildirFolder.Subdirectory.allCases {
            let entries: [MaildirFolder.Entry]
            var undecodable: [String] = []
            do {
                entries = try folder.entries(in: subdirectory) { undecodable.append($0) }
            } catch {
                // A folder deleted by its user is no failure.
                if !error.isMissing { failed("cannot list \(folder.path)/\(subdirectory.rawValue)", error) }
                return nil
            }
            for name in undecodable {
                // Found by an audit: such a file stayed unclassified without a word, at every scan.
                let path = "\(folder.path)/\(subdirectory.rawValue)/\(name)"
                if reportedUndecodableNames.count < 1_000, reportedUndecodableNames.insert(path).inserted {
                    logger.warning("a file name that is not UTF-8 is left alone; rename the file to have it classified",
                                   metadata: ["file": "\(path)"])
                }
            }
            for entry in entries {
                if shouldStop() { return nil }
                present.insert(entry.name.unique)
                handle(entry)
            }
        }
        return present
    }

    /// Which directory `folder` is, against the folders seen so far: a folder renamed or moved (known under another
    /// path) is taken stock of before its mail is looked at. False when it is not to be scanned now (gone, or its
    /// stock-taking failed and is tried again). Nothing to compare with before the first full scan.
    private func recognise(_ folder: MaildirFolder) -> Bool {
        guard knownFolders != nil else { return true }
        // Gone: its identity (inode, and birth time where the file system keeps one) stays known under the old
        // path until the next full scan, so that the other half of a rename, seen after it, is recognised.
        guard let identity = Self.identity(of: folder) else { return false }
        if scanningAll { seenThisScan.append((identity, folder.path)) }
        let known = knownFolders?[folder.path]
        if let known, known.isSameDirectory(as: identity) {
            // A birth time known since (never one forgotten: a later statx without it changes nothing).
            if known.born == 0, identity.born != 0 { knownFolders?[folder.path] = identity }
        } else {
            // A directory already known under another path was renamed or moved (a folder deleted into the
            // Trash too); one never seen was made while the service runs, and what is moved into it teaches.
            // Known under another path: one still known, or one another directory has taken since (made there,
            // or renamed there: whichever of the two this scan meets first), or a rename not yet taken stock of.
            let elsewhere = displacedFolders.map { (identity: $0.identity, path: $0.path) }
                + unfinishedRenames.map { (identity: $0.identity, path: $0.from) }
            func isThisOne(_ other: FolderIdentity, at path: String) -> Bool {
                path != folder.path && other.isSameDirectory(as: identity)
            }
            let formerPath = knownFolders?.first { isThisOne($0.value, at: $0.key) }?.key
                ?? elsewhere.first { isThisOne($0.identity, at: $0.path) }?.path
            // This path's own directory until now, which may have been renamed to a path met later.
            if let known { displacedFolders.append((known, folder.path, 0)) }
            if let formerPath {
                guard takeStock(ofNew: folder, identity: identity) else {
                    // Tried again at the next scan, which must still see a renamed folder (found in review: the
                    // end of the full scan forgot the old path, and the retry learned its mail).
                    if !unfinishedRenames.contains(where: { $0.identity.isSameDirectory(as: identity) }) {
                        unfinishedRenames.append((identity, formerPath, 0))
                    }
                    return false
                }
                unfinishedRenames.removeAll { $0.identity.isSameDirectory(as: identity) }
                displacedFolders.removeAll { $0.identity.isSameDirectory(as: identity) }
                knownFolders = knownFolders?.filter {
                    $0.key == folder.path || !$0.value.isSameDirectory(as: identity)
                }
            } else {
                knownFolders = knownFolders?.filter { !$0.value.isSameDirectory(as: identity) }
                knownFolders?[folder.path] = identity
            }
        }
        return true
    }

    /// Files with names that are not UTF-8, reported once each.
    private var reportedUndecodableNames: Set<String> = []

    /// The folders seen so far: path → which directory it is, so that a folder renamed onto the path of one that
    /// was deleted is another folder. Nil until the first full scan lists them.
    private var knownFolders: [String: FolderIdentity]?
    /// Folders last known at a path that another directory has taken since (a folder made or renamed where one was
    /// renamed away), with that path, until the end of the next full scan: the renamed one may be met after it.
    /// `scansEnded`: full scans ended since (0 or 1).
    private var displacedFolders: [(identity: FolderIdentity, path: String, scansEnded: Int)] = []
    /// Renamed folders whose stock-taking failed, with their former paths: still renamed ones when it is tried again;
    /// `missed`, the full scans in a row that met it nowhere.
    private var unfinishedRenames: [(identity: FolderIdentity, from: String, missed: Int)] = []
    /// The folders the full scan under way has met, and where (the scans of single folders between full scans
    /// count for nothing, and so are not kept).
    private var seenThisScan: [(identity: FolderIdentity, path: String)] = []
    private var scanningAll = false
    /// `knownFolders` as last written to the journal.
    private var savedFolders: [String: FolderIdentity] = [:]

    /// Writes to the journal what changed in `knownFolders` since it was last written. A failure is tried again at
    /// the next full scan; meanwhile a restart sees the folders as they were written last.
    private func saveFolderIdentities() {
        guard let known = knownFolders, known != savedFolders else { return }
        var changes: [JournalChange] = savedFolders.keys.filter { known[$0] == nil }.sorted()
            .map { .forgetFolderIdentity(path: $0) }
        changes += known.filter { savedFolders[$0.key] != $0.value }.sorted { $0.key < $1.key }
            .map { .folderIdentity(path: $0.key, mailbox: maildir.root, identity: $0.value) }
        do {
            try store.apply(changes)
            savedFolders = known
        } catch {
            failed("cannot record the mailbox's folders in the journal", error)
        }
    }

    /// The folder's directory: its inode number, and when it was made, since a directory made where another was
    /// deleted often gets the deleted one's number (found in review: kept across a restart, a folder made while the
    /// service was stopped was taken for one deleted meanwhile, and what the user moved into it taught nothing).
    /// Nil where there is no directory, or statx fails: the folder is looked at again at the next scan.
    static func identity(of folder: MaildirFolder) -> FolderIdentity? {
        var inode: UInt64 = 0
        var born: Int64 = 0
        guard pitchfilter_directory_identity(folder.path, &inode, &born) == 0 else { return nil }
        return FolderIdentity(inode: inode, born: born)
    }

    /// A folder renamed or moved while the service runs (its directory known under another path) brings its mail
    /// with it rather than being filled by the user's moves: Thunderbird deleting `.Pitches` makes it
    /// `.Trash.Pitches`, and a user may rename it `.Archive`. Learning each message in it as released from
    /// quarantine taught every pitch as ham. Its mail is recorded as found, like a mailbox's at its first start;
    /// what arrives in it later teaches as usual. The Sent folder is read as always (its recipients are known
    /// correspondents however they came), and so is the INBOX. Returns whether the folder may be scanned now.
    private func takeStock(ofNew folder: MaildirFolder, identity: FolderIdentity) -> Bool {
        guard role(of: folder) != .sent, role(of: folder) != .inbox else {
            knownFolders?[folder.path] = identity
            return true
        }
        do {
            var found: [FileRecord] = []
            for subdirectory in MaildirFolder.Subdirectory.allCases {
                for entry in try folder.entries(in: subdirectory) where try record(of: entry) == nil {
                    found.append(FileRecord(folder: folder.path, name: entry.name.unique, state: .done))
                }
            }
            if !found.isEmpty {
                // Recorded in the journal first: records only in memory were lost with a restart, and the folder
                // then taught after all.
                let now = Self.now()
                try store.apply(found.map { .file($0, at: now) })
                for record in found { setRecord(record) }
                logger.info("a folder appeared with mail in it (renamed or moved): taken stock of, not learned from",
                            metadata: ["folder": "\(folder.name)", "files": "\(found.count)"])
            }
            knownFolders?[folder.path] = identity
            return true
        } catch let error as MaildirError where error.isMissing {
            return false  // renamed on, or away again: the next look decides
        } catch {
            failed("cannot take stock of \(folder.path)", error)
            return false
        }
    }

    /// Names missing at the previous full scan, per folder.
    private var missingBefore: [String: Set<String>] = [:]

    /// Keeps the journal as large as the mailbox, not as all the mail it ever held: a record is forgotten once its
    /// file has been missing from two full scans in a row (a listing taken during a client's rename can miss a
    /// file once). Pending records stay until the change they describe is settled.
    ///
    /// A folder's records are read for this even when none of its files has been met yet (found by an audit: a
    /// folder empty at a restart kept its records of files gone before it, and a message moved back under its
    /// old name was taken as handled, whenever it came).
    private func forgetRecords(in folder: MaildirFolder, keeping present: Set<String>) {
        let known: [String: FileRecord]
        do {
            known = try loadedRecords(in: folder.path)
        } catch {
            return failed("cannot read the journal's records of \(folder.path)", error)
        }
        let missing = Set(known.filter { $0.value.state == .done && !present.contains($0.key) }.map(\.key))
        let forgotten = missing.intersection(missingBefore[folder.path] ?? [])
        missingBefore[folder.path] = missing.subtracting(forgotten)
        guard !forgotten.isEmpty else { return }
        do {
            try store.apply(forgotten.sorted().map { .forgetFile(folder: folder.path, name: $0) })
            for name in forgotten { records[folder.path]?[name] = nil }
        } catch {
            failed("cannot tidy the journal", error)
        }
    }

    /// Held quarantine records whose file the last full scan missed, by id, and since when (`Monotonic` seconds).
    private var heldMissingSince: [String: Double] = [:]
    /// Held records whose file is elsewhere in the mailbox under its name, by id, and when that was found: not
    /// looked for again for `elsewhereRecheck`.
    private var heldElsewhere: [String: Double] = [:]
    /// How long a record whose file was found elsewhere stays out of the search: that copy may go too (the renamed
    /// quarantine folder deleted in turn), and the record was held until the service restarted (found in review).
    /// Once an hour, every other folder's names are read again for such records.
    var elsewhereRecheck: Double = 3600
    /// How long a quarantined file must have been missing, besides two full scans, before its record is closed:
    /// scans can come two seconds apart (a retry scans its mailbox whole), and a mail client or a sync tool
    /// (mbsync, offlineimap) may take its time to put a moved message in its new folder.
    var deletedCopyGrace: Double = 600

    /// A quarantined message deleted in a mail client, or moved into a folder whose mail teaches nothing (the
    /// Trash), is no longer in quarantine: its record is closed as `quarantine delete` closes it, once two full
    /// scans, `deletedCopyGrace` apart at least, have missed its file.
    /// They stayed held for ever: listed as "no longer in .Pitches", counted by `stats`, never expired (found by an
    /// audit). A move anywhere else is learned as a release when its folder is scanned (the INBOX first) or the
    /// file arrives; a file of the record's name anywhere in the mailbox (a release's copy in the INBOX, or the
    /// quarantine folder renamed, its mail with it) keeps the record held, as before: the message is still there,
    /// and moved back to the INBOX it is a release (found in review).
    private func closeRecordsOfDeleted(in folder: MaildirFolder, keeping present: Set<String>) {
        do {
            let now = Monotonic.seconds()
            heldElsewhere = heldElsewhere.filter { now - $0.value < elsewhereRecheck }
            let missing = try store.quarantineEntries(.held(mailbox: maildir.root, folder: folder.name))
                .filter { !present.contains($0.name) && heldElsewhere[$0.id] == nil }
            let confirmed = missing.filter { record in
                heldMissingSince[record.id].map { now - $0 >= deletedCopyGrace } ?? false
            }
            heldMissingSince = Dictionary(uniqueKeysWithValues: missing.map { ($0.id, heldMissingSince[$0.id] ?? now) })
            guard !confirmed.isEmpty else { return }
            // Every other folder's names, read once for all the records to close; not the Trash's (nor the other
            // folders whose mail teaches nothing): a message there is one the user deleted.
            var names = Set<String>()
            for other in try maildir.allFolders() where other.path != folder.path && role(of: other) != .ignored {
                for subdirectory in MaildirFolder.Subdirectory.allCases {
                    let entries: [MaildirFolder.Entry]
                    do {
                        entries = try other.entries(in: subdirectory)
                    } catch {
                        if error.isMissing { continue }  // a folder deleted meanwhile
                        throw error
                    }
                    names.formUnion(entries.map(\.name.unique))
                }
            }
            var deleted: [QuarantineEntry] = []
            for record in confirmed {
                heldMissingSince[record.id] = nil
                if names.contains(record.name) || names.contains(QuarantineDesk.releaseName(of: record)) {
                    heldElsewhere[record.id] = now
                } else {
                    deleted.append(record)
                }
            }
            guard !deleted.isEmpty else { return }
            try store.apply(deleted.map { .quarantine($0.settled(as: .deleted, at: Self.now())) })
            let named = deleted.prefix(20).map(\.id).joined(separator: ", ")
            logger.info("closed the quarantine records of messages deleted in a mail client", metadata: [
                "count": "\(deleted.count)", "ids": "\(deleted.count > 20 ? named + ", …" : named)"])
        } catch {
            failed("cannot close the quarantine records of deleted messages", error)
        }
    }

    /// Folders with records found missing, and since when (`Monotonic` seconds: a clock step is no absence).
    private var vanishedSince: [String: Double] = [:]
    /// How long a folder must have been missing, besides two full scans: failures make the service scan every
    /// mailbox every 2 seconds, and a client creating or renaming a folder leaves it without `cur/` for a moment.
    var vanishedFolderGrace: Double = 600

    /// A folder the user deleted or renamed takes its files' records with it once it has been missing from two full
    /// scans in a row, `vanishedFolderGrace` apart at least. Without this the journal kept a row per file of every
    /// folder the mailbox ever had, and the worker the same in memory.
    private func forgetVanishedFolders(keeping present: Set<String>) {
        do {
            let recorded = Set(try store.recordedFolders(mailbox: maildir.root)).union(records.keys)
            let now = Monotonic.seconds()
            var forgotten: [String] = []
            var stillMissing: [String: Double] = [:]
            for folder in recorded.subtracting(present) {
                if let since = vanishedSince[folder], now - since >= vanishedFolderGrace {
                    forgotten.append(folder)
                } else {
                    stillMissing[folder] = vanishedSince[folder] ?? now
                }
            }
            vanishedSince = stillMissing
            forgotten.sort()
            guard !forgotten.isEmpty else { return }
            try store.apply(forgotten.map { .forgetFolder($0) })
            for folder in forgotten {
                records[folder] = nil
                missingBefore[folder] = nil
            }
            logger.info("forgot the records of folders that are gone",
                        metadata: ["folders": "\(forgotten.joined(separator: ", "))"])
        } catch {
            failed("cannot tidy the journal", error)
        }
    }

    /// A file that inotify says arrived.
    func arrived(in folder: MaildirFolder, _ subdirectory: MaildirFolder.Subdirectory, name: String) {
        let folder = current(folder)
        guard !name.hasPrefix("."),
              // The watch was made on a directory of the folder's own; a link put in its place since is not followed.
              (try? folder.requireOwnDirectory()) != nil,
              MaildirFolder.isOwnDirectory(folder.path + "/" + subdirectory.rawValue) else { return }
        let entry = MaildirFolder.Entry(folder: folder, subdirectory: subdirectory, name: MaildirName(name))
        // A change that failed made events of its own (an exchange, and the exchange back): handled, they tried
        // it again at once, for ever. The retry is the scan's, when the mailbox's wait is over (`Retries`; found in
        // review).
        guard !leftForTheNextScan.contains(Self.scanKey(of: entry)) else { return }
        handle(entry)
    }

    /// Files (folder path and unique name) whose change failed, or was left to a mail client, since the last full
    /// scan.
    private var leftForTheNextScan: Set<String> = []

    /// Leaves `entry` to the next scan (the mailbox's retry, `Retries`), whatever events come for it meanwhile.
    private func leaveForTheNextScan(_ entry: MaildirFolder.Entry) {
        leftForTheNextScan.insert(Self.scanKey(of: entry))
        needsRetry = true
    }

    /// A file's key in `leftForTheNextScan`: its folder and unique name, which a client's rename keeps.
    private static func scanKey(of entry: MaildirFolder.Entry) -> String {
        entry.folder.path + "/" + entry.name.unique
    }

    // MARK: - One file

    private func handle(_ entry: MaildirFolder.Entry) {
        do {
            let record = try record(of: entry)
            if record?.state == .done { return }
            switch role(of: entry.folder) {
            case .inbox: try handleInbox(entry, record: record)
            case .quarantine: try handleQuarantine(entry)
            case .sent: try handleSent(entry)
            case .ignored: try finish(entry, verdict: nil, digest: nil)
            case .other: try handleOther(entry)
            }
        } catch let error as MaildirError where error.isMissing && error.path == entry.path {
            // Moved or deleted by a client between the listing and now; its new place gets its own event. (Only
            // the file's own absence: a missing tmp/ is a failure to log and retry, found in review.)
        } catch {
            leaveForTheNextScan(entry)
            failed("cannot handle \(entry.path), left where it is", error)
        }
    }

    private enum Role {
        case inbox, quarantine, sent, ignored, other
    }

    private func role(of folder: MaildirFolder) -> Role {
        if folder.name == "INBOX" { return .inbox }
        if folder.name == policy.quarantineFolder { return .quarantine }
        if folder.name == policy.sentFolder { return .sent }
        // Dovecot keeps a folder deleted into the Trash as `.Trash.Name`: inside an ignored folder is ignored too.
        if policy.ignoredFolders.contains(where: { folder.name == $0 || folder.name.hasPrefix($0 + ".") }) {
            return .ignored
        }
        return .other
    }

    private func handleInbox(_ entry: MaildirFolder.Entry, record: FileRecord?) throws {
        // Written straight into new/ (`cp`), not through tmp/: looked at again once the writer has closed it.
        if entry.subdirectory == .new, entry.isBeingWritten {
            needsRetry = true
            return
        }
        // How many names the file has as it is read: one a mail client adds while it is classified is the first
        // half of a move (or a copy), which `MaildirFolder.move` leaves to the client.
        let linksWhenRead = entry.linkCount
        guard let message = try read(entry) else { return }
        // Hashed once, with the former digest that records written before may hold.
        let identity = engine.identity(of: message)
        let digest = identity.digest
        if try learnIfReleased(message, identity, entry: entry) { return }
        if let record, record.state == .pending, try recover(entry, record: record, identity) { return }
        // Unseen mail is classified wherever it is: Dovecot moves new/ to cur/ as soon as a client looks at the
        // mailbox, often before the service gets to it. Mail the user has read is the user's business: moving it
        // now would surprise.
        guard entry.subdirectory == .new || !entry.name.flags.contains("S") || record?.state == .pending else {
            return try finish(entry, verdict: nil, digest: digest)
        }
        try classifyAndAct(entry, message: message, digest: digest, linksWhenRead: linksWhenRead)
    }

    private func classifyAndAct(_ entry: MaildirFolder.Entry, message: Message, digest: [UInt8],
                                linksWhenRead: Int) throws {
        let started = Monotonic.seconds()
        let (tokens, assessment) = try store.withSnapshot {
            try engine.tokensAndAssessment(of: message, explaining: reasons)
        }
        let classification = assessment.classification
        let verdict = classification.verdict
        let seconds = Monotonic.seconds() - started
        let edit = engine.edit(message, for: classification, reasons: reasons)
        var action = action(for: verdict)
        if action == .quarantine {
            try quarantine.create()
            if try quarantine.entry(unique: entry.name.unique) != nil {
                // Another message has this name in the quarantine folder (the user's: a copy of this one would
                // have been finished by `recover`), and is never replaced. Retried, the move failed for ever
                // (found in review); tagged, the pitch is marked where it is.
                logger.warning("the quarantine folder holds another message of this name: tagged in place instead",
                               metadata: ["file": "\(entry.name)", "folder": "\(quarantine.name)"])
                action = .tag
            }
        }
        whileClassified(entry)
        let pieces = edit.insertionSkipped ? [message.raw[...]] : edit.pieces(of: message.raw)
        let size = pieces.reduce(0) { $0 + $1.count }
        let file = FileRecord(folder: entry.folder.path, name: entry.name.unique, state: .pending,
                              verdict: verdict.rawValue, digest: digest)
        let now = Self.now()

        switch action {
        case .leave:
            try store.apply([.file(with(file) { $0.state = .done }, at: now)] + abandonedMoves(of: entry))
            setRecord(with(file) { $0.state = .done })
        case .tag:
            try store.apply([.file(file, at: now)])
            guard try entry.folder.replaceIfStillThere(entry, with: pieces, name: entry.name.resized(to: size)) != nil
            else {
                try store.apply([Self.forgetMoved(file)])
                forgetRecord(file)
                logger.info("moved or deleted by a mail client while it was classified: left as the client left it",
                            metadata: ["file": "\(entry.name)"])
                return
            }
            try store.apply([.file(with(file) { $0.state = .done }, at: Self.now())] + abandonedMoves(of: entry))
            setRecord(with(file) { $0.state = .done })
        case .quarantine:
            let held = try movesUnderWay(of: entry).first
            var quarantined = QuarantineEntry(
                id: held?.id ?? Self.newIdentifier(), mailbox: maildir.root, folder: policy.quarantineFolder,
                name: entry.name.unique, digest: digest, messageID: Self.messageID(of: message),
                sender: Engine.sender(of: message) ?? "", subject: Self.subject(of: message),
                score: classification.score, state: .moving, at: now)
            // The quarantine folder's copy is recorded as ours before it exists, so its arrival is never taken
            // for the user moving a message in.
            let copy = FileRecord(folder: quarantine.path, name: entry.name.unique, state: .done,
                                  verdict: verdict.rawValue, digest: digest)
            try store.apply([.quarantine(quarantined), .file(file, at: now), .file(copy, at: now)])
            setRecord(copy)
            guard try entry.folder.move(entry, replacedWith: pieces, to: quarantine, linksWhenRead: linksWhenRead) != nil
            else {
                // A mail client moved or deleted the original while it was classified (Dovecot moves new/ to cur/
                // as soon as a client has the folder open), or is moving it now: it has the message, and nothing
                // is quarantined.
                try store.apply([.quarantine(quarantined.settled(as: .deleted, at: Self.now())),
                                 Self.forgetMoved(file), Self.forgetMoved(copy)])
                forgetRecord(file)
                forgetRecord(copy)
                // The events of the exchange back had the message moved at once, ahead of the client's removal of
                // the old name, and it ended twice (found in review). By the next scan the client is done.
                leaveForTheNextScan(entry)
                logger.info("moved or deleted by a mail client while it was classified: not quarantined",
                            metadata: ["file": "\(entry.name)", "id": "\(quarantined.id)"])
                return
            }
            quarantined.state = .held
            try store.apply([.quarantine(quarantined), Self.forgetMoved(file)])
            forgetRecord(file)
            ServiceMetrics.quarantined(source: .maildir)
            logger.info("quarantined", metadata: [
                "id": "\(quarantined.id)", "score": "\(Engine.formatScore(classification.score))",
                "from": "\(quarantined.sender)"])
        }
        // Counted once done: a change that fails is tried again, and classifies the message again.
        ServiceMetrics.classified(verdict, source: .maildir, seconds: seconds)
        remember(message, tokens, digest: digest)
        logger.debug("classified", metadata: [
            "file": "\(entry.name)", "verdict": "\(verdict.rawValue)",
            "score": "\(Engine.formatScore(classification.score))", "action": "\(action)"])
    }

    /// A quarantine move a crash interrupted, of a message now classified otherwise (a score that moved, a
    /// changed `on_pitch`): settled as deleted, since it never happened. It stayed "moving" for good, refusing
    /// `quarantine delete` (found in review).
    /// Only a message whose record a crash left pending can have one, so other mail costs no query.
    private func abandonedMoves(of entry: MaildirFolder.Entry) throws -> [JournalChange] {
        guard try record(of: entry)?.state == .pending else { return [] }
        return try movesUnderWay(of: entry).map { .quarantine($0.settled(as: .deleted, at: Self.now())) }
    }

    /// The records of quarantine moves of `entry`'s message that have not finished ("moving").
    private func movesUnderWay(of entry: MaildirFolder.Entry) throws -> [QuarantineEntry] {
        try store.quarantineEntries(.file(mailbox: maildir.root, name: entry.name.unique)).filter { $0.state == .moving }
    }

    private enum Action: String {
        case quarantine, tag, leave
    }

    private func action(for verdict: Verdict) -> Action {
        switch verdict {
        case .pitch:
            switch policy.onPitch {
            case .quarantine: .quarantine
            case .tag: .tag
            case .leave: .leave
            }
        case .unsure: policy.onUnsure == .tag ? .tag : .leave
        case .ham: policy.onHam == .tag ? .tag : .leave
        }
    }

    /// A pending record: the service stopped part-way through changing this file. Returns true when the change
    /// was finished here; false when it never happened and the message is to be classified again.
    private func recover(_ entry: MaildirFolder.Entry, record: FileRecord, _ identity: MessageDigest.Identity) throws
        -> Bool {
        guard record.digest.map(identity.matches) ?? true else { return false }
        let digest = identity.digest
        // Moving to quarantine with a copy, then the original's removal (to a folder on another file system, or
        // by versions before `MaildirFolder.move`): if the copy is there, only the removal is missing. The copy is
        // looked for where the record says it went; a folder that is gone has none.
        let moves = try movesUnderWay(of: entry)
        let folders = moves.compactMap(quarantineFolder).filter(\.exists)
        if let copy = try folders.lazy.compactMap({ try $0.entry(unique: entry.name.unique) }).first,
           let copied = try copy.read(limit: policy.maxMessageBytes),
           engine.digest(of: Message(bytes: copied)) == digest {
            try entry.folder.remove(entry)
            var changes: [JournalChange] = [Self.forgetMoved(record)]
            for var held in moves {
                held.state = .held
                changes.append(.quarantine(held))
            }
            try store.apply(changes)
            forgetRecord(record)
            logger.notice("finished a quarantine move interrupted by a restart", metadata: ["file": "\(entry.name)"])
            return true
        }
        // Tagging in place under a new name where the file system cannot exchange: the tagged copy was linked, the
        // original not yet removed. The copy was written after the original was read, so it is the newer of two
        // files with the same content.
        let twins = try MaildirFolder.Subdirectory.allCases.flatMap { try entry.folder.entries(in: $0) }
            .filter { $0.name.unique == entry.name.unique }
        if twins.count > 1 {
            // A name whose S= is not the file's size loses to one whose is, whatever their ages: a replacement
            // left under the original's name beside its twin kept the wrong S= for good (found in review).
            let dated = twins.compactMap { twin -> (MaildirFolder.Entry, Int64, [UInt8])? in
                guard let bytes = try? twin.read(limit: policy.maxMessageBytes) else { return nil }
                let sizeIsRight = twin.name.fields.first { $0.key == "S" }.map { Int($0.value) == bytes.count } ?? true
                return (twin, (sizeIsRight ? 1 << 62 : 0) + Self.modificationTime(twin.path),
                        engine.digest(of: Message(bytes: bytes)))
            }
            guard dated.count == twins.count, dated.allSatisfy({ $0.2 == digest }) else { return false }
            for (older, _, _) in dated.sorted(by: { $0.1 < $1.1 }).dropLast() { try entry.folder.remove(older) }
            try finish(entry, verdict: record.verdict, digest: digest)
            logger.notice("finished a tag interrupted by a restart", metadata: ["file": "\(entry.name)"])
            return true
        }
        return false
    }

    /// A message the service quarantined is back outside the quarantine folder: the user says it is not a pitch.
    ///
    /// The file is that message if it bears the quarantined copy's name (a release, `mv`), or if it is the same
    /// message (its digest: a client's move keeps the bytes) and the quarantined copy has left the quarantine
    /// folder. While the copy is still there, this file is another one: the same message delivered twice (sent to
    /// two of the user's addresses), which is classified like any other once a client had time to expunge what
    /// it copied. A Message-ID alone says nothing: anyone can write one, and a pitch carrying a quarantined or
    /// released one's was learned as ham, or let through unclassified (found by an audit).
    private func learnIfReleased(_ message: Message, _ identity: MessageDigest.Identity, entry: MaildirFolder.Entry)
        throws -> Bool {
        let digest = identity.digest
        let matches = try store.quarantineEntries(
            .message(mailbox: maildir.root, digest: digest, messageID: Self.messageID(of: message),
                     formerDigest: identity.former))
            .filter { $0.state == .held || $0.state == .released }
            .filter { identity.matches($0.digest) || Self.isReturnedUnderItsName(entry, $0) }
        guard !matches.isEmpty else { return false }
        // While any held copy of the message is still in the quarantine, this file is not one come out of it, even
        // if another record's copy has gone: that record is stale (moved out and back in before a scan saw it),
        // and taking this file for its release learned ham for a message the user had just put back (found by an
        // audit).
        let aCopyIsHeld = try matches.contains { record in
            guard record.state == .held, identity.matches(record.digest) else { return false }
            return try quarantinedCopyRemains(record)
        }
        let returned = try matches.first { Self.isReturnedUnderItsName(entry, $0) }
            ?? (aCopyIsHeld ? nil : matches.first { try !quarantinedCopyRemains($0) })
        guard let quarantined = returned else {
            if waitsForExpunge(entry) { return true }
            logger.info("another copy of a message in quarantine: classified on its own", metadata: [
                "id": "\(matches[0].id)", "file": "\(entry.name)"])
            return false
        }
        if quarantined.state == .held, !Self.isReturnedUnderItsName(entry, quarantined),
           isDeliveredAnew(message, quarantined: quarantined) {
            // The user deleted the quarantined copy: its record is closed as a client's deletion is, and the message
            // is judged again as what it is, a new arrival.
            try store.apply(matches.filter { $0.state == .held && identity.matches($0.digest) }
                .map { .quarantine($0.settled(as: .deleted, at: Self.now())) })
            logger.info("the same message delivered again after its quarantined copy was deleted: classified anew",
                        metadata: ["id": "\(quarantined.id)", "file": "\(entry.name)"])
            return false
        }
        if quarantined.state == .held {
            try learn(message, as: .ham)
            try store.apply([.quarantine(quarantined.settled(as: .released, at: Self.now()))])
            ServiceMetrics.learnedFromUser(.ham)
            logger.info("learned as ham: moved out of quarantine", metadata: [
                "id": "\(quarantined.id)", "to": "\(entry.folder.name)"])
        } else {
            logger.debug("a message released from quarantine: not classified again, the user called it ham",
                         metadata: ["id": "\(quarantined.id)", "file": "\(entry.name)"])
        }
        // `quarantine release` stopped after its copy reached the INBOX (or is about to remove the quarantined copy,
        // and this scan came first): the quarantined copy is still there, and if the release stopped, nothing else
        // would ever remove it. Finishing the release leaves the message in one place.
        if Self.isReturnedUnderItsName(entry, quarantined), entry.folder.name == "INBOX",
           let copy = try? quarantineFolder(of: quarantined)?.entry(unique: quarantined.name),
           QuarantineDesk.isCopy(copy, of: quarantined, ownFields: engine.ownFields) {
            try copy.folder.remove(copy)
            // Most often the release is still running, a moment from removing it itself: said so in the debug log
            // alone (found by an audit: every release run as root logged that it had stopped half-way).
            if QuarantineDesk.isCommandRunning(databasePath: store.path) {
                logger.debug("a release under way: its quarantined copy is removed as its copy reached the INBOX",
                             metadata: ["id": "\(quarantined.id)"])
            } else {
                logger.info("finished a release that stopped before it removed the quarantined copy",
                            metadata: ["id": "\(quarantined.id)"])
            }
        }
        // Released by `quarantine release`, which already learned it.
        try finish(entry, verdict: nil, digest: digest)
        return true
    }

    /// Whether this file of a held message, under a name of its own, is the message as delivered rather than the
    /// quarantined copy come out: the service writes its status field into every copy it quarantines, with the
    /// score it recorded, and a client's move keeps it; a file of the same message without that field was never in
    /// the quarantine. The same bytes arrive again when a sending server retries a delivery it thinks failed, or
    /// a fetchmail run fetches a message twice; after the user had deleted the quarantined copy, that was learned
    /// as ham and left in the INBOX (found by an audit). The score, not any field of ours: a milter upstream tags
    /// every delivery, and a sender may add an `X-Pitch-` field to a resend (found in review). A message no field
    /// can go into (`HeaderEdit.insertionSkipped`: its lines end in bare CR) was quarantined as it came, so its
    /// copy cannot be told from it, and is taken for a release as before.
    /// A message the user filed into the quarantine was never written to by the service, so nothing tells its
    /// copy from a new delivery: taken for one, as when its record kept the score 1 (found in review: the score
    /// -1 that now marks it was written "0.0000", and matched a ham's status field).
    private func isDeliveredAnew(_ message: Message, quarantined: QuarantineEntry) -> Bool {
        guard quarantined.wasScored else { return true }
        let edit = message.edit(removing: engine.ownFields.removalPatterns,
                                inserting: [NewField(name: engine.ownFields.status, value: Verdict.pitch.rawValue)])
        guard !edit.insertionSkipped else { return false }
        let written = "score=\(Engine.formatScore(quarantined.score)),"
        let header = message.header
        return !header.fields.contains { field in
            engine.ownFields.contains(lowercasedName: header.name(of: field).lowercased())
                && String(decoding: header.unfoldedValue(of: field), as: UTF8.self).contains(written)
        }
    }

    /// The file bears the quarantined message's name, or the one `quarantine release` gives it when another
    /// message in the INBOX has that name.
    static func isReturnedUnderItsName(_ entry: MaildirFolder.Entry, _ quarantined: QuarantineEntry) -> Bool {
        entry.name.unique == quarantined.name || entry.name.unique == QuarantineDesk.releaseName(of: quarantined)
    }

    /// The folder a quarantine record names, if it names one (`QuarantineDesk` says why it is checked).
    private func quarantineFolder(of record: QuarantineEntry) -> MaildirFolder? {
        Maildir.isSubfolderName(record.folder) ? maildir.folder(record.folder) : nil
    }

    /// Whether the quarantined copy is still in the quarantine folder and not marked deleted: an IMAP client
    /// without MOVE copies, flags the original \Deleted (Maildir's T) and may expunge it much later.
    private func quarantinedCopyRemains(_ quarantined: QuarantineEntry) throws -> Bool {
        let copy: MaildirFolder.Entry?
        do {
            copy = try quarantineFolder(of: quarantined)?.entry(unique: quarantined.name)
        } catch where error.isMissing {
            return false  // the user deleted the whole folder: the copy went with it
        }
        guard let copy else { return false }
        return !copy.name.flags.contains("T")
    }

    /// Copies of quarantined messages waiting for their originals to go, by unique name, and since when
    /// (`Monotonic` seconds).
    private var copiesWaitingSince: [String: Double] = [:]
    /// How long such a copy waits: a client's copy and expunge are seconds apart, a second delivery stays.
    var copyGrace: Double = 30
    /// Runs after a message is classified, before its file is changed: for tests, to act as a mail client would
    /// in that moment.
    var whileClassified: (MaildirFolder.Entry) -> Void = { _ in }

    /// True while `entry` is within its grace (the mailbox's next retry looks again).
    private func waitsForExpunge(_ entry: MaildirFolder.Entry) -> Bool {
        let now = Monotonic.seconds()
        // Files that went elsewhere while waiting are not kept for ever.
        copiesWaitingSince = copiesWaitingSince.filter { now - $0.value < 10 * copyGrace }
        let since = copiesWaitingSince[entry.name.unique] ?? now
        guard now - since < copyGrace else {
            copiesWaitingSince[entry.name.unique] = nil
            return false
        }
        copiesWaitingSince[entry.name.unique] = since
        needsRetry = true
        return true
    }

    private func handleQuarantine(_ entry: MaildirFolder.Entry) throws {
        // A file still being written (a `cp` into cur/, not a client's rename): learned from half its bytes, its
        // record's digest matched no whole copy, and it could never be released (found in review).
        if entry.isBeingWritten {
            needsRetry = true
            return
        }
        guard let message = try read(entry) else { return }
        let identity = engine.identity(of: message)
        let digest = identity.digest
        let ours = try store.quarantineEntries(.file(mailbox: maildir.root, name: entry.name.unique))
            .contains { $0.state == .moving || $0.state == .held }
        if !ours {
            // The user put it here: a pitch we missed.
            try learn(message, as: .pitch)
            let records = try store.quarantineEntries(
                .message(mailbox: maildir.root, digest: digest, messageID: Self.messageID(of: message),
                     formerDigest: identity.former))
            // A held record of this message whose copy has left the quarantine is this file come back (moved out
            // and in again before a scan saw it): its record, not a second one, which left it held for ever and
            // took a later copy in the INBOX for its release (found by an audit).
            let stale = try records.first { record in
                guard record.state == .held, identity.matches(record.digest) else { return false }
                return try !quarantinedCopyRemains(record)
            }
            let earlier = stale ?? records.first
            // Else the id of the same message quarantined before and since released or deleted, so the user knows
            // it again; never that of a copy still held, whose record this would replace (found in review: the held
            // copy was left in the folder with no record, and releasing its id brought this one back).
            let reusable = stale?.id ?? earlier.flatMap { $0.state == .held || $0.state == .moving ? nil : $0.id }
            let held = QuarantineEntry(
                id: reusable ?? Self.newIdentifier(), mailbox: maildir.root, folder: entry.folder.name,
                name: entry.name.unique, digest: digest, messageID: Self.messageID(of: message),
                sender: Engine.sender(of: message) ?? "", subject: Self.subject(of: message),
                score: earlier?.score ?? QuarantineEntry.filedByTheUser, state: .held, at: Self.now())
            try store.apply([.quarantine(held)])
            ServiceMetrics.learnedFromUser(.pitch)
            logger.info("learned as pitch: moved into quarantine", metadata: ["id": "\(held.id)"])
        }
        try finish(entry, verdict: nil, digest: digest)
    }

    private func handleSent(_ entry: MaildirFolder.Entry) throws {
        guard let message = try read(entry) else { return }
        let added = try store.addContacts(Engine.correspondents(writtenToIn: message), source: .sent, at: Self.now())
        if added > 0 { logger.debug("learned correspondents from sent mail", metadata: ["new": "\(added)"]) }
        try finish(entry, verdict: nil, digest: nil)
    }

    private func handleOther(_ entry: MaildirFolder.Entry) throws {
        if entry.isBeingWritten {  // as in the quarantine: a half-written file would teach half a message
            needsRetry = true
            return
        }
        guard let message = try read(entry) else { return }
        let identity = engine.identity(of: message)
        if try learnIfReleased(message, identity, entry: entry) { return }
        try finish(entry, verdict: nil, digest: identity.digest)
    }

    // MARK: - Helpers

    /// The message, or nil for one over the size limit, which is recorded as done and left alone.
    private func read(_ entry: MaildirFolder.Entry) throws -> Message? {
        let result = Result { () throws(MaildirError) in try entry.read(limit: policy.maxMessageBytes) }
        if case .failure(let error) = result, error.isNotAMessageFile {
            // A FIFO would block the one thread every mailbox shares; a symbolic link could make the service copy
            // a file its owner may read into a mailbox whose owner may not.
            logger.notice("not a regular file, left alone", metadata: ["file": "\(entry.path)"])
            try finish(entry, verdict: nil, digest: nil)
            return nil
        }
        guard let bytes = try result.get() else {
            // Counted where it would have been classified (`handleInbox`): unseen mail in the INBOX.
            if entry.folder.name == "INBOX", entry.subdirectory == .new || !entry.name.flags.contains("S") {
                ServiceMetrics.passedUnclassified(source: .maildir)
            }
            logger.notice("message larger than \(policy.maxMessageBytes >> 20) MiB left alone",
                          metadata: ["file": "\(entry.path)"])
            try finish(entry, verdict: nil, digest: nil)
            return nil
        }
        guard !bytes.isEmpty else {
            // No message: a tag would make a file of one header line out of it. Said, as every other file left
            // alone is (found by an audit: the only one left unsaid).
            logger.notice("empty file, left alone", metadata: ["file": "\(entry.path)"])
            try finish(entry, verdict: nil, digest: nil)
            return nil
        }
        return Message(bytes: bytes)
    }

    /// Messages learned since the training's agreement with the starter model was last measured.
    private var learnedSinceAgreement = 0
    /// Measured again after this many, and at the end of every full scan after any: each measure reads every
    /// token of the database, too much to do for each of a hundred messages a user moves at once.
    static let learnedPerAgreement = 25

    /// Measures and keeps `StarterAgreement`. A figure for scoring, not part of what was learned: a failure is
    /// said, and the old figure stays until the next try.
    private func measureAgreement() {
        do {
            try Engine.recordStarterAgreement(in: store)
            learnedSinceAgreement = 0
        } catch {
            logger.warning("could not measure the training's agreement with the starter model",
                           metadata: ["error": "\(error)"])
        }
    }

    private func learn(_ message: Message, as target: MessageClass) throws {
        let learning = try engine.learning(message, as: target)
        // Or still vouching for its sender: a service stopped between learning and taking back, last time.
        let hamSender = learning.sender.map {
            HamSender(digest: learning.item.digest, address: $0, formerDigest: learning.item.formerDigest)
        }
        let wasHam = try target == .pitch
            && (store.ledgerClasses(of: [learning.item.digest], formerly: [learning.item.formerDigest])[0] == .ham
                || !store.vouchingMessages(among: hamSender?.digests ?? [learning.item.digest]).isEmpty)
        _ = try store.train([learning.item])
        learnedSinceAgreement += 1
        if learnedSinceAgreement >= Self.learnedPerAgreement { measureAgreement() }
        if let hamSender {
            if target == .ham { try store.addHamSenders([hamSender], at: Self.now()) }
            // Released, then put back in quarantine: this message no longer vouches for its sender.
            if wasHam { try store.removeHamSenders([hamSender]) }
        }
        if let sighting = learning.sighting { try? Engine.remember([sighting], in: store) }
    }

    /// Records the template of a classified message; a failure costs one sighting, never the message.
    private func remember(_ message: Message, _ tokens: MessageTokens, digest: [UInt8]) {
        guard let sighting = engine.templateSighting(of: message, tokens, digest: digest) else { return }
        do {
            try Engine.remember([sighting], in: store)
        } catch {
            logger.debug("template not recorded", metadata: ["error": "\(error)"])
        }
    }

    private func finish(_ entry: MaildirFolder.Entry, verdict: String?, digest: [UInt8]?) throws {
        let record = FileRecord(folder: entry.folder.path, name: entry.name.unique, state: .done,
                                verdict: verdict, digest: digest)
        try store.apply([.file(record, at: Self.now())])
        setRecord(record)
    }

    /// The journal's record of `entry`, its folder's records read once and kept up to date after. Throws when they
    /// cannot be read (a database locked past its timeout): read as none, they had every file of the folder look
    /// new for as long as the service ran, and every file of the quarantine folder moved in by the user.
    private func record(of entry: MaildirFolder.Entry) throws -> FileRecord? {
        try loadedRecords(in: entry.folder.path)[entry.name.unique]
    }

    /// A folder's records, read from the journal the first time they are asked for.
    private func loadedRecords(in folder: String) throws -> [String: FileRecord] {
        if let loaded = records[folder] { return loaded }
        let loaded = try store.fileRecords(in: folder)
        records[folder] = loaded
        return loaded
    }

    /// Notes a record the journal now holds. A folder whose records have not been read yet reads this one with the
    /// rest when they are: noted alone, it stood for the whole folder (found by an audit: at the first start, a
    /// pitch quarantined before the quarantine folder was scanned had the mail already there learned as pitches).
    private func setRecord(_ record: FileRecord) {
        guard records[record.folder] != nil else { return }
        records[record.folder]?[record.name] = record
    }

    private func forgetRecord(_ record: FileRecord) {
        records[record.folder]?[record.name] = nil
    }

    /// The last step of a move into quarantine: the original's record goes with the original. Kept as done, it
    /// made the same name arriving in the INBOX again look handled, and a user who moved the message back
    /// (keeping its file name, as `mv` and some clients do) taught nothing until two full scans had missed it.
    /// Without it, the message back in the INBOX is found in the quarantine's records and learned as ham.
    static func forgetMoved(_ original: FileRecord) -> JournalChange {
        .forgetFile(folder: original.folder, name: original.name)
    }

    /// Failures logged since the last scan that had none: a full disk must give one line per message, not one
    /// per message at every retry.
    private var loggedFailures: Set<String> = []
    /// How many of them were lines of their own (a file each), which stop at 100.
    private var ownLinesLogged = 0

    /// Logs a failure once until things work again, and asks for a retry.
    func failed(_ what: String, _ error: any Error) {
        needsRetry = true
        let line = "\(what): \(error)"
        // A full disk or quota fails every message alike: once is enough to say it (found by an audit: a line a
        // message, up to the cap). So does the database's failure, whatever it is (a full disk under it, a lock, a
        // damaged page): said once for each (found by a later audit: 100 lines, one a message, then silence
        // while hundreds more waited). And a directory that may not be changed (a file system mounted read-only,
        // a folder whose permissions were changed) fails every message in it alike: once for each directory.
        let key = (error as? MaildirError).flatMap(Self.failureKey) ?? (error as? StoreError).map { "database: \($0)" }
            ?? line
        // Lines of their own (a file each) stop at 100, those said once for many (a directory each) at 1,000: a
        // folder of unreadable files must not silence a full disk after it, nor many directories the files (found
        // in review).
        let saidOnceForMany = key != line
        let room = saidOnceForMany ? loggedFailures.count - ownLinesLogged < 1_000 : ownLinesLogged < 100
        if room, loggedFailures.insert(key).inserted {
            if !saidOnceForMany { ownLinesLogged += 1 }
            logger.warning("\(line)\(key == line ? "" : " (said once, for every message, until it works again)")")
        }
    }

    /// What a Maildir failure is said once for (`failed`); nil: each is said on its own.
    /// A change into a directory that may not be changed is the directory's failure; a file that may not be read is
    /// its own, and each is named (found in review: one line for a directory hid every other file an admin must fix).
    static func failureKey(of error: MaildirError) -> String? {
        if error.isDiskFull { return "disk full" }
        guard let slash = error.path.lastIndex(of: "/") else { return nil }
        let directory = error.path[..<slash]
        if error.errno == EROFS { return "read-only file system: \(directory)" }
        guard [EACCES, EPERM].contains(error.errno), Self.changesADirectory.contains(error.operation) else { return nil }
        return "\(error.errno) \(error.operation) in \(directory)"
    }

    /// `MaildirError` operations that add, rename or remove a name in a directory.
    private static let changesADirectory: Set<String> = [
        "create", "create directory", "link into place", "rename into place", "exchange", "exchange with the original",
        "move", "move into", "write into", "remove",
    ]

    /// After a scan that needed no retry: the failure memory is cleared, so the next failure is logged again.
    func scanSucceeded() {
        if !loggedFailures.isEmpty, !needsRetry {
            logger.notice("working again after the earlier failures")
            loggedFailures = []
            ownLinesLogged = 0
        }
    }

    static func now() -> Int64 { Int64(time(nil)) }

    static func modificationTime(_ path: String) -> Int64 {
        var info = stat()
        guard stat(path, &info) == 0 else { return 0 }
        return Int64(info.st_mtim.tv_sec) * 1_000_000_000 + Int64(info.st_mtim.tv_nsec)
    }

    /// 16 hex digits from the system's random source: unguessable, and meaningless outside the journal.
    static func newIdentifier() -> String {
        var generator = SystemRandomNumberGenerator()
        let value = generator.next() as UInt64
        let hex = String(value, radix: 16)
        return String(repeating: "0", count: 16 - hex.count) + hex
    }

    static func messageID(of message: Message) -> String {
        Engine.messageID(of: message).map { String(decoding: $0, as: UTF8.self) } ?? ""
    }

    static func subject(of message: Message) -> String {
        guard let field = message.header.first(named: "Subject") else { return "" }
        var defects: [Defect] = []
        return message.header.text(of: field, defects: &defects).trimmingWhitespace()
    }
}

func with<Value>(_ value: Value, _ change: (inout Value) -> Void) -> Value {
    var value = value
    change(&value)
    return value
}

extension String {
    func trimmingWhitespace() -> String {
        let isSpace: (Character) -> Bool = { $0 == " " || $0 == "\t" || $0 == "\r" || $0 == "\n" }
        guard let start = firstIndex(where: { !isSpace($0) }), let end = lastIndex(where: { !isSpace($0) }) else {
            return ""
        }
        return String(self[start...end])
    }
}
