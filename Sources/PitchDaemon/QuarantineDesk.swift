import PitchEngine
import PitchMaildir
import PitchMessage
import PitchStore
import PitchTokenizer

#if canImport(Glibc)
import Glibc
#endif

/// `pitchfilter quarantine …`: what the service quarantined, by opaque id.
///
/// Ids come from the journal and every path is built from the journal's record, never from input, so a command
/// line can name a quarantined message but no other file. Each operation is safe to repeat after a crash: a
/// release that was interrupted finishes when run again.
public struct QuarantineDesk {
    let store: SQLiteTokenStore
    /// Our fields, which a release takes off the message (`[header]`).
    let ownFields: OwnFields

    /// Runs just before the quarantined copy is removed: for tests, to act as a mail client would in that moment.
    var beforeRemoving: (MaildirFolder.Entry) -> Void = { _ in }
    /// Runs just before a file listed as the message's is read: for tests, to rename it as a mail client would.
    var beforeReading: (MaildirFolder.Entry) -> Void = { _ in }
    /// Runs each time the quarantine lock is found held by another: for tests, to know a command is waiting.
    var whileTheLockIsHeld: () -> Void = {}
    /// How long a command waits for another to let the quarantine lock go, in seconds: a purge of thousands of
    /// messages holds it for a while, a release or a delete for moments.
    var lockWait = 120.0
    /// How many messages a purge removes before it looks for copies of them and closes their records: a purge that
    /// stops (a database failure, a kill) leaves at most these held with their files gone.
    var purgeClosesEvery = 256

    public init(store: SQLiteTokenStore, ownFields: OwnFields) {
        self.store = store
        self.ownFields = ownFields
    }

    public enum Failure: Error, Equatable, CustomStringConvertible {
        case unknownID(String)
        case notHeld(String, QuarantineState)
        case fileMissing(String, folder: String)
        case beingMoved(String, folder: String)
        /// No longer in the quarantine folder but in the INBOX, at `path`: moved back by hand (`byHand`: it bears
        /// a field of ours), or under its name with none (a message the user filed, moved back with `mv`; or a
        /// release that stopped half-way, which takes our fields off: the two cannot be told apart).
        case backInTheInbox(String, path: String, byHand: Bool)
        case otherHeaderSettings(String)
        /// A file of its name that is no regular file (a link, say), which no command opens.
        case notAFile(String, path: String)
        /// The record names no Maildir++ folder: the database was changed by hand, or is damaged.
        case noFolder(String, folder: String)
        case lockHeld(String, seconds: Double)
        /// Back in the INBOX, at `path`, but the rest of the release failed (`reason`): running it again finishes.
        case releasedNotFinished(String, path: String, reason: String)
        /// Still in `folder` after it was removed, or read, and looked for again a few times: a client renames it as
        /// fast.
        case keptRenaming(String, folder: String)

        public var description: String {
            switch self {
            case .unknownID(let id): "no quarantined message has the id \(id) (see `pitchfilter quarantine list`)"
            case .notHeld(let id, let state): "message \(id) is not in quarantine any more (\(state.rawValue))"
            case .fileMissing(let id, let folder):
                "message \(id) is no longer in \(folder): it was moved or deleted in a mail client"
            case .beingMoved(let id, let folder):
                "message \(id) is still being moved into \(folder) by the service: try again in a moment (if "
                    + "the service is stopped, starting it finishes the move)"
            case .backInTheInbox(let id, let path, let byHand):
                "message \(id) is back in the INBOX (\(TerminalText.safe(path))), "
                    + (byHand ? "moved there in a mail client: `release` learns it as ham now (the service does when "
                                  + "it sees the move, unless the file came back under the name it left with)"
                              : "moved there under the name it had in quarantine, or by a release that stopped "
                                  + "half-way: `release` learns it as ham and finishes")
                    + "; nothing was deleted"
            case .noFolder(let id, let folder):
                "the record of message \(id) names no Maildir folder (\"\(TerminalText.safe(folder))\"): the database was "
                    + "changed by hand or is damaged; nothing was done"
            case .otherHeaderSettings(let id):
                "message \(id) does not match its record once the fields and Subject tag of this configuration are "
                    + "taken off: give the service's configuration (--config), whose [header] settings tagged it; "
                    + "if subject_tag has changed since, list the old tag in former_subject_tags (or the file of its "
                    + "name is another message, which is left alone)"
            case .notAFile(let id, let path):
                "message \(id)'s file \(TerminalText.safe(path)) is not a regular file (a symbolic link, say): it is "
                    + "not opened, and nothing was done"
            case .lockHeld(let path, let seconds):
                "another quarantine command has held \(path) for \(Int(seconds)) s (a long purge, or a process that "
                    + "keeps it open: see `fuser \(path)`); nothing was done, try again later"
            case .keptRenaming(let id, let folder):
                "message \(id) was renamed in \(folder) as fast as it was read or removed (a mail client at work on "
                    + "the folder): it is still there; try again in a moment"
            case .releasedNotFinished(let id, let path, let reason):
                "message \(id) is back in the INBOX (\(TerminalText.safe(path))), but the release could not finish: "
                    + "\(reason); run it again to finish it (the service also will)"
            }
        }
    }

    public struct Item: Sendable {
        public var entry: QuarantineEntry
        /// Where the file is now; nil when a client moved or deleted it, or when the folder could not be read.
        public var path: String?
        /// Why the folder could not be read (no permission, say): then whether the file is there is unknown.
        public var unreadable: String?
        /// Where a release stopped half-way left the message, back in the INBOX (the record still held).
        public var releasedTo: String?
        /// Whether that copy still bears a field of ours: moved back by hand (a client, `mv`), not by a release,
        /// which takes them off (found by an audit: listed as a release stopped half-way).
        public var movedBackByHand = false
    }

    /// Messages in quarantine, newest first.
    public func list() throws -> [Item] {
        let folders = FolderListings()
        return try store.quarantineEntries(.states([.held, .moving])).map { entry in
            do {
                // By its name where none of its namesakes reads as the message: a listing run without the
                // service's [header] settings shows where the file is rather than calling every message gone.
                let found = try file(of: entry, folders: folders) ?? namesakes(of: entry, folders: folders).first
                // Not "gone" when a release stopped half-way (found in review: listed as if a client had moved it),
                // and not only "held" when it stopped before it removed the quarantined copy (found by an audit).
                // With the quarantined file there, an INBOX that cannot be read says nothing of it.
                let copy = entry.state != .held ? nil
                    : found == nil ? try stoppedReleaseCopy(of: entry, inboxes: folders)
                    : try? stoppedReleaseCopy(of: entry, inboxes: folders)
                var item = Item(entry: entry, path: found?.path, releasedTo: copy?.path)
                if let copy { item.movedBackByHand = try bearsOurFields(copy) }
                return item
            } catch {
                return Item(entry: entry, path: nil, unreadable: "\(error)")
            }
        }
    }

    /// The message's bytes as they are in the quarantine folder (with our header).
    public func show(_ id: String) throws -> [UInt8] {
        let (_, found) = try held(id, allowMissingFile: false, allowMoving: true)
        guard let entry = found, let bytes = try entry.read(limit: Int.max) else { return [] }
        return bytes
    }

    /// Moves the message back into the INBOX as it arrived (our header and Subject tag removed) and learns it as
    /// ham.
    @discardableResult
    public func release(_ id: String) throws -> String {
        try oneAtATime { () throws -> String in try releaseAlone(id) }
    }

    private func releaseAlone(_ id: String) throws -> String {
        let started = time(nil)
        if let finished = try finishStoppedRelease(id) { return finished }
        try waitForTheDatabase()
        let (found, entry) = try releasable(id)
        let record = found
        guard let bytes = try entry.read(limit: Int.max) else { throw Failure.unknownID(id) }
        let message = Message(bytes: bytes)
        // The record's digest leaves out the fields and Subject tag the service wrote. Read with other [header]
        // settings (a release without the service's configuration), the copy would go back with them still on,
        // and be learned as another message than the one the service learned (found by an audit).
        guard MessageDigest.identity(of: message, ownFields: ownFields).matches(record.digest) else {
            throw Failure.otherHeaderSettings(id)
        }
        let untagging = ownFields.subjectTagToTakeBack(in: message.header).map(SubjectTagEdit.takeBack) ?? .none
        let original = message.edit(removing: ownFields.removalPatterns, inserting: [], subjectTag: untagging)
            .pieces(of: message.raw)
        let size = original.reduce(0) { $0 + $1.count }
        let inbox = Maildir(root: record.mailbox).inbox
        // The same unique name it had in the INBOX. The service sees it arrive, finds it in the quarantine's
        // records and does not classify it again; if it gets there before this learns the message, it learns it
        // itself, and the ledger counts the message once.
        var released: MaildirFolder.Entry
        var ourInode: ino_t?  // the copy this run delivered, known by its inode wherever a client renames it
        let sameName = try inbox.entry(unique: entry.name.unique)
        let ownName = try inbox.entry(unique: Self.releaseName(of: record))
        if let delivered = [sameName, ownName].compactMap({ $0 })
            .first(where: { Self.isCopy($0, of: record, ownFields: ownFields) }) {
            // Delivered by a release that was interrupted before it removed the quarantined copy (and perhaps
            // since moved to cur/ by a client): one copy in the INBOX is enough.
            released = delivered
        } else {
            // Another message with the same name (two deliveries that chose one) gets to keep it: taking it for
            // this one would remove the only copy of this one. Not marked deleted (T), as a client marks the
            // quarantined copy before it expunges it: back in the INBOX so, the next expunge there removed the
            // message the user had just asked to keep (found by an audit).
            let kept = entry.name.without(flag: "T")
            let name = sameName == nil ? kept : MaildirName(Self.releaseName(of: record)).withInfo(kept.info)
            released = MaildirFolder.Entry(folder: inbox, subdirectory: entry.subdirectory,
                                           name: name.resized(to: size))
            do {
                try inbox.deliver(original, into: released.subdirectory, name: released.name)
                var delivered = stat()
                if lstat(released.path, &delivered) == 0 { ourInode = delivered.st_ino }
            } catch {
                // EEXIST: delivered meanwhile, by another release of the same message.
                guard error.errno == EEXIST else { throw error }
            }
        }
        // From here the message is in the INBOX: a failure says so, rather than read as nothing done (found by an
        // audit: a full disk failed the learning, and the command said only that the database could not be
        // written).
        do {
            if try !removeQuarantined(entry, of: record), let ourInode {
                let copies = try inboxCopies(of: record, named: entry.name.unique, since: started, ours: ourInode)
                if let theirs = copies.theirs {
                    // The user moved the quarantined copy to the INBOX while this ran: theirs is the one their client
                    // shows, and this one goes (found by an audit: both stayed, 6 of 60 tries with a move 0-30 ms
                    // after the release began), found by its inode where a client renamed it meanwhile (found in
                    // review). Theirs keeps our field and tag, and the answer says so.
                    if let ours = copies.ours { try inbox.remove(ours) }
                    released = theirs
                }
            }
            try learnReleased(original.flatMap { $0 }, record: record)
        } catch {
            throw Failure.releasedNotFinished(id, path: released.path, reason: "\(error)")
        }
        return released.path
    }

    /// Takes the database's write lock once and lets it go, before any file is touched: a database another writer
    /// holds (a long `train`) failed the command only after the message had moved, and `list` then blamed a mail
    /// client (found in review). It can still be taken between this and the last write; running the command again
    /// finishes it then.
    private func waitForTheDatabase() throws {
        try store.inOneWrite {}
    }

    /// Removes the quarantined copy, following it where a mail client renamed it meanwhile (new/ to cur/, a flag
    /// added): the name read being gone is not the end of it (found in review: the record was settled and the
    /// renamed copy stayed in the folder unlisted, a duplicate after a release and mail not deleted after a
    /// delete).
    ///
    /// Returns whether it removed any file: none when the copy left the folder on its own meanwhile.
    @discardableResult
    private func removeQuarantined(_ entry: MaildirFolder.Entry, of record: QuarantineEntry) throws -> Bool {
        beforeRemoving(entry)
        let removed = try entry.folder.remove(entry)
        return try followCopies(of: record, afterRemoving: removed) || removed
    }

    /// The message's copy the user moved into the INBOX since `since` (`theirs`): under its quarantined name (a
    /// rename), or under any name a file has had since then (a client that copies, as IMAP's MOVE does), found by
    /// what it holds; and the file whose inode is `ours`, a release's own copy, wherever a client renamed it. Looked
    /// for only when the quarantined copy left its folder on its own during a release or a removal.
    private func inboxCopies(of record: QuarantineEntry, named unique: String, since: time_t,
                             ours inode: ino_t?) throws -> (theirs: MaildirFolder.Entry?, ours: MaildirFolder.Entry?) {
        let inbox = Maildir(root: record.mailbox).inbox
        var found: (theirs: MaildirFolder.Entry?, ours: MaildirFolder.Entry?) = (nil, nil)
        for file in try MaildirFolder.Subdirectory.allCases.flatMap({ try inbox.entries(in: $0) }) {
            var info = stat()
            guard lstat(file.path, &info) == 0 else { continue }
            if info.st_ino == inode {
                found.ours = file
            } else if found.theirs == nil, file.name.unique == unique || info.st_ctim.tv_sec >= since,
                      Self.isCopy(file, of: record, ownFields: ownFields) {
                found.theirs = file
            }
        }
        return found
    }

    /// Looks for the message again after a removal, and removes what it finds: looked for even when the name
    /// removed was the file's last (tried, and taken back: a copy a client or the user made under the same name, a
    /// separate file, was left behind, its record closed; found by an audit). `removedOne`: whether the removal
    /// found a file of the name. `firstLook`: the folders as read afresh once for many messages (a purge's).
    /// Returns whether it removed any file.
    @discardableResult
    private func followCopies(of record: QuarantineEntry, afterRemoving removedOne: Bool,
                              firstLook: FolderListings? = nil) throws -> Bool {
        var removedOne = removedOne
        var removedAny = false
        // A few renames at most in the moment between two looks. Only the message itself (`file(of:)`): the user's
        // own file of that name beside it stays. After a removal that found no file of the name (a client renamed
        // it), one empty look is not taken for gone: a directory read while a rename in it goes on may show the
        // file under neither name (found by an audit: beside a client renaming in a tight loop, purges said
        // "deleted" of files left in the folder).
        for look in 0..<8 {
            let listed = look == 0 ? firstLook : nil
            guard let renamed = try self.file(of: record, folders: listed) ?? (removedOne ? nil : self.file(of: record))
            else { return removedAny }
            removedOne = try renamed.folder.remove(renamed)
            removedAny = removedAny || removedOne
        }
        // A client renaming it for ever is not followed, and the message is not called deleted while it is there
        // (found by an audit: a purge beside a client renaming in a tight loop said "deleted" of files left).
        if try self.file(of: record) != nil { throw Failure.keptRenaming(record.id, folder: record.folder) }
        return removedAny
    }

    /// Learns the released message as ham, its sender as a correspondent, and settles its record.
    private func learnReleased(_ bytes: [UInt8], record: QuarantineEntry) throws {
        let engine = Engine(store: store, contacts: store, templates: store, tokenizer: Tokenizer(ownFields: ownFields))
        let ham = Message(bytes: bytes)
        let item = try engine.trainingItem(for: ham, as: .ham)
        _ = try store.train([item])
        // A figure for scoring, not part of what was learned: the release stands whether or not it is measured.
        try? Engine.recordStarterAgreement(in: store)
        if let sender = Engine.sender(of: ham) {
            let hamSender = HamSender(digest: item.digest, address: sender, formerDigest: item.formerDigest)
            _ = try store.addHamSenders([hamSender], at: Int64(time(nil)))
        }
        try store.apply([.quarantine(record.settled(as: .released, at: Int64(time(nil))))])
    }

    /// A release stopped after it removed the quarantined copy, before it learned: the record is still held, and
    /// the message is in the INBOX under the name the release gave it. Running the release again finishes there
    /// (found by an audit: it said a mail client had moved the message, and exited 3). Nil for any other case.
    private func finishStoppedRelease(_ id: String) throws -> String? {
        guard Self.isIdentifier(id), let record = try store.quarantineEntries(.id(id.lowercased())).first,
              record.state == .held, try file(of: record) == nil, let copy = try stoppedReleaseCopy(of: record),
              let bytes = try copy.read(limit: Int.max) else { return nil }
        do {
            try learnReleased(bytes, record: record)
        } catch {
            throw Failure.releasedNotFinished(id, path: copy.path, reason: "\(error)")
        }
        return copy.path
    }

    /// Folders' files as a command that looks for many messages listed them once, by unique name. For each record,
    /// `list` read its quarantine folder whole (found by an audit: 110 s at 5,471 records) and looked in the INBOX
    /// (found in review: 34 s for 300 records beside an INBOX of 30,000, and `purge` held the quarantine lock as
    /// long).
    final class FolderListings {
        private var listed: [String: Result<[String: [MaildirFolder.Entry]], any Error>] = [:]

        func namesakes(_ name: String, in folder: MaildirFolder,
                       listing: () throws -> [MaildirFolder.Entry]) throws -> [MaildirFolder.Entry] {
            let byName = listed[folder.path] ?? Result { Dictionary(grouping: try listing(), by: \.name.unique) }
            listed[folder.path] = byName
            return try byName.get()[name] ?? []
        }
    }

    /// The message's copy in the INBOX, under either name a release gives it, if one is there. `inboxes`: the
    /// INBOX as a command listed it once, to pass over a message with no file of either name there.
    private func stoppedReleaseCopy(of record: QuarantineEntry,
                                    inboxes: FolderListings? = nil) throws -> MaildirFolder.Entry? {
        let inbox = Maildir(root: record.mailbox).inbox
        if let inboxes {
            func everyFile() throws -> [MaildirFolder.Entry] {
                try MaildirFolder.Subdirectory.allCases.flatMap { try inbox.entries(in: $0) }
            }
            guard try !inboxes.namesakes(record.name, in: inbox, listing: everyFile).isEmpty
                || !inboxes.namesakes(Self.releaseName(of: record), in: inbox, listing: everyFile).isEmpty
            else { return nil }
        }
        let named = [try inbox.entry(unique: record.name), try inbox.entry(unique: Self.releaseName(of: record))]
        return named.compactMap { $0 }.first { Self.isCopy($0, of: record, ownFields: ownFields) }
    }

    /// Removes the message for good. A message back in the INBOX is left to the service, which learns a move back
    /// as ham (`Failure.backInTheInbox`): settled as deleted here, the user's correction was lost, and the command
    /// said "deleted" with the message in the INBOX (found by an audit). One a client deleted has its record closed.
    public func delete(_ id: String) throws {
        try oneAtATime { () throws in
            if case .backInTheInbox(let path, let byHand) = try deleteAlone(id) {
                throw Failure.backInTheInbox(id, path: path, byHand: byHand)
            }
        }
    }

    enum Deletion: Equatable {
        case deleted
        /// The record closed, its file gone from the quarantine folder and not in the INBOX (a client deleted it).
        case alreadyGone
        /// Left held: the message is back in the INBOX.
        case backInTheInbox(path: String, byHand: Bool)
        /// Left held: its file is gone from the quarantine folder, and a purge decides it once it has read the INBOX
        /// afresh (`leavingGone`).
        case gone
        /// Left held: its file removed where it was listed, and a purge looks for a copy a client renamed or made
        /// meanwhile once it has read the folders afresh (`leavingGone`), then closes the record.
        case removed(QuarantineEntry)
        /// As `gone`, its file having left the quarantine folder during the purge, just as it was to be removed.
        case vanished
    }

    /// `movedSince`: the file left the quarantine folder on its own after this moment (during a purge), and a copy
    /// in the INBOX changed since then is looked for by what it holds, as one moved back under a new name.
    private func deleteAlone(_ id: String, inboxes: FolderListings? = nil, folders: FolderListings? = nil,
                             leavingGone: Bool = false, movedSince: time_t? = nil) throws -> Deletion {
        let started = time(nil)
        let (record, entry) = try held(id, allowMissingFile: true, allowMoving: false, folders: folders)
        if entry == nil, leavingGone { return .gone }
        // Also while the quarantined copy is still there: a release that stopped before it could remove it (found
        // by an audit: `delete` removed it and closed the record, and the INBOX copy was never learned as ham).
        if let copy = try stoppedReleaseCopy(of: record, inboxes: inboxes) {
            return .backInTheInbox(path: copy.path, byHand: try bearsOurFields(copy))
        }
        if entry == nil, let movedSince,
           let copy = try inboxCopies(of: record, named: record.name, since: movedSince, ours: nil).theirs {
            return .backInTheInbox(path: copy.path, byHand: try bearsOurFields(copy))
        }
        try waitForTheDatabase()
        var removedAny = false
        if let entry {
            beforeRemoving(entry)
            let removedOne = try entry.folder.remove(entry)
            // A purge looks again for its messages a few hundred at a time: a folder read for each removal made it
            // quadratic (found by an audit: 9,836 messages beside a hard-linked backup, 30-37 s).
            if removedOne, leavingGone { return .removed(record) }
            removedAny = try followCopies(of: record, afterRemoving: removedOne) || removedOne
            if !removedAny {
                // Gone from the quarantine folder on its own while this ran: moved back to the INBOX meanwhile, it
                // is the service's to learn, as a message found back there before (found by an audit: a purge
                // closed it as deleted, and the user's correction was never learned).
                if leavingGone { return .vanished }
                // Under its name, or under a new one (IMAP's MOVE; found in review).
                if let copy = try stoppedReleaseCopy(of: record)
                    ?? inboxCopies(of: record, named: record.name, since: started, ours: nil).theirs {
                    return .backInTheInbox(path: copy.path, byHand: try bearsOurFields(copy))
                }
            }
        }
        try settleDeleted(record)
        return removedAny ? .deleted : .alreadyGone
    }

    /// Closes the record as deleted, unless the service has changed it since it was read: it reuses a held record
    /// for the same message quarantined again under another name, and closing that one left the new file in the
    /// folder unlisted, for no purge to find (found in review, once a purge closed its records at its end). Returns
    /// whether it closed it.
    @discardableResult
    private func settleDeleted(_ record: QuarantineEntry) throws -> Bool {
        try store.inOneWrite {
            guard try store.quarantineEntries(.id(record.id)).first == record else { return false }
            try store.apply([.quarantine(record.settled(as: .deleted, at: Int64(time(nil))))])
            return true
        }
    }

    /// Whether the message file at `path` (one `release` returned) still bears a field of ours: moved back to the
    /// INBOX by hand before the release, which then only learned it; its field and Subject tag stay (found by an
    /// audit: the command said "released" as for any other).
    public func bearsOurFields(atPath path: String) -> Bool {
        guard let bytes = try? FileBytes.read(path, limit: Int.max) else { return false }
        return bearsOurFields(bytes)
    }

    /// `bearsOurFields(atPath:)` for a file of a Maildir, read as its owner.
    private func bearsOurFields(_ file: MaildirFolder.Entry) throws -> Bool {
        guard let bytes = try file.read(limit: Int.max) else { return false }
        return bearsOurFields(bytes)
    }

    /// Whether the message has a field of ours (a name in force or a former one).
    private func bearsOurFields(_ bytes: [UInt8]) -> Bool {
        let header = Message(bytes: bytes).header
        return header.fields.contains { ownFields.contains(lowercasedName: header.name(of: $0).lowercased()) }
    }

    /// Deletes what has been in quarantine longer than `days`: how many files were removed, how many records
    /// were closed whose file a client had already deleted, how many were left because the message is back in the
    /// INBOX (for the service to learn, or a release to finish), and how many because no file of their name is the
    /// message once this desk's own fields are taken off (`Failure.otherHeaderSettings`).
    ///
    /// A record whose quarantine folder is gone (renamed in a mail client, its mail with it) is left and counted
    /// (`folderGone`): `delete` of its id closes it, but a purge run by cron must not close what may be in the
    /// renamed folder, whose move back to the INBOX the service learns as a release (found in review).
    ///
    /// A message that fails on its own (a file of its name that is no regular file, one a client keeps renaming, a
    /// file that may not be removed) is left and counted in `failed`, the first such reason in `firstFailure`, and
    /// the purge goes on: one symbolic link in a quarantine folder stopped every purge of every mailbox, for good
    /// (found by an audit). A database that fails ends it, once the records of what it removed are closed where the
    /// database lets them be.
    public func purge(olderThan days: Int, now: Int64 = Int64(time(nil))) throws -> Purge {
        // Days past what 64-bit seconds hold (found by an audit: an overflow trap) mean "older than anything".
        let (seconds, overflow) = Int64(clamping: days).multipliedReportingOverflow(by: 86_400)
        let (cutoff, below) = now.subtractingReportingOverflow(seconds)
        guard !overflow, !below else { return Purge() }
        var purged = Purge()
        let inboxes = FolderListings()  // a delete leaves the INBOX as it was
        // Each folder listed once, not once for every record (found by an audit, for `list`: minutes at a few
        // thousand); a file not found as listed is looked for afresh (`held`).
        let folders = FolderListings()
        var gone: [String] = []
        var vanished: Set<String> = []  // of those, the files that left during the purge
        let started = time(nil)
        var removed: [QuarantineEntry] = []
        /// A message's failure counted, the purge going on; a database failure ends it.
        func counting(_ id: String, _ body: () throws -> Void) throws {
            do {
                try body()
            } catch Failure.otherHeaderSettings {
                purged.notMatching += 1  // left held, for `delete` to say why
            } catch let failure as Failure {
                purged.failed += 1
                purged.firstFailure = purged.firstFailure ?? failure.description
            } catch let failure as MaildirError {
                purged.failed += 1
                purged.firstFailure = purged.firstFailure ?? "message \(id): \(failure)"
            }
        }
        func deleteAndCount(_ id: String, inboxes: FolderListings, folders: FolderListings?,
                            movedSince: time_t? = nil) throws {
            // Released or deleted by another command, or settled by the service, meanwhile: not this purge's to count.
            guard let current = try store.quarantineEntries(.id(id)).first, current.state == .held else { return }
            if Maildir.isSubfolderName(current.folder), !Maildir(root: current.mailbox).folder(current.folder).exists {
                purged.folderGone += 1
                return
            }
            try counting(id) {
                switch try deleteAlone(id, inboxes: inboxes, folders: folders, leavingGone: folders != nil,
                                       movedSince: movedSince) {
                case .deleted: purged.deleted += 1
                case .alreadyGone: purged.alreadyGone += 1
                case .backInTheInbox: purged.backInTheInbox += 1
                case .gone: gone.append(id)
                case .vanished:
                    gone.append(id)
                    vanished.insert(id)
                case .removed(let record): removed.append(record)
                }
            }
        }
        /// Those removed where they were listed, against their folders read afresh, once for every few hundred
        /// (`purgeClosesEvery`): a copy a client renamed or made meanwhile is followed and removed too before the
        /// record is closed. One the service settled or changed meanwhile (a copy moved to the INBOX and learned as
        /// a release, the message quarantined again under another name) is left as the service has it, and not
        /// counted.
        func closeRemoved() throws {
            let foldersAfresh = FolderListings()
            while let record = removed.popLast() {
                try counting(record.id) {
                    try followCopies(of: record, afterRemoving: true, firstLook: foldersAfresh)
                    if try settleDeleted(record) { purged.deleted += 1 }
                }
            }
        }
        try oneAtATime {
            do {
                for entry in try store.quarantineEntries(.states([.held])) where entry.at < cutoff {
                    try deleteAndCount(entry.id, inboxes: inboxes, folders: folders)
                    if removed.count >= purgeClosesEvery { try closeRemoved() }
                }
                try closeRemoved()
            } catch {
                // What was removed is closed if the database lets it, before the purge says why it stopped.
                try? closeRemoved()
                throw error
            }
            // Those whose file had gone, against the INBOX's names read afresh, once: against the names read at the
            // start, a message moved back to the INBOX during a long purge was taken for one a client deleted (found
            // in review), and asked of the INBOX one by one, thousands of them cost a listing each.
            let afresh = FolderListings()
            for id in gone {
                try deleteAndCount(id, inboxes: afresh, folders: nil, movedSince: vanished.contains(id) ? started : nil)
            }
        }
        return purged
    }

    /// What a purge did, message by message (`purge(olderThan:)`).
    public struct Purge: Equatable, Sendable {
        public var deleted = 0
        public var alreadyGone = 0
        public var backInTheInbox = 0
        public var notMatching = 0
        public var folderGone = 0
        public var failed = 0
        public var firstFailure: String?

        public init(deleted: Int = 0, alreadyGone: Int = 0, backInTheInbox: Int = 0, notMatching: Int = 0,
                    folderGone: Int = 0, failed: Int = 0, firstFailure: String? = nil) {
            (self.deleted, self.alreadyGone, self.backInTheInbox) = (deleted, alreadyGone, backInTheInbox)
            (self.notMatching, self.folderGone, self.failed, self.firstFailure) = (notMatching, folderGone, failed,
                                                                                 firstFailure)
        }
    }

    /// Runs `body` while no other quarantine command of this database runs: each reads the record, acts on the
    /// files, then settles the record, and a release and a delete of one message in two shells both acted and both
    /// said so (found in review: the delete, settling last, undid the release, and the service quarantined the
    /// message again). An flock on a file beside the database (SQLite's own locks are POSIX locks, which a second
    /// descriptor of the database file would drop when closed), readable by all (flock needs only a read-only
    /// descriptor, so every user who may run the commands shares it). Where it cannot be made or opened, the
    /// command runs as before, unserialised: a release must not fail for want of a lock.
    private func oneAtATime<T>(_ body: () throws -> T) throws -> T {
        guard let descriptor = Self.openLock(Self.lockPath(databasePath: store.path), databasePath: store.path) else {
            return try body()
        }
        defer { close(descriptor) }
        // Polled, not waited for: anyone who may read the database may open the lock file and hold it (found by an
        // audit: a command then waited for ever, saying nothing, and a purge run by cron never ended).
        var waited = 0.0
        while flock(descriptor, LOCK_EX | LOCK_NB) != 0 {
            guard errno == EWOULDBLOCK || errno == EINTR else { return try body() }
            guard waited < lockWait else {
                throw Failure.lockHeld(Self.lockPath(databasePath: store.path), seconds: lockWait)
            }
            whileTheLockIsHeld()
            usleep(50_000)
            waited += 0.05
        }
        return try body()
    }

    /// The lock every quarantine command holds while it runs, beside the database.
    static func lockPath(databasePath: String) -> String { databasePath + "-quarantine.lock" }

    /// Whether a quarantine command holds its lock now: the service, finding a released copy in the INBOX before
    /// the release removed the quarantined one, tells a release under way from one that stopped. Only looked at:
    /// the lock is neither made nor kept.
    public static func isCommandRunning(databasePath: String) -> Bool {
        let descriptor = open(lockPath(databasePath: databasePath), O_RDONLY | O_CLOEXEC | O_NOFOLLOW)
        guard descriptor >= 0 else { return false }
        defer { close(descriptor) }
        return flock(descriptor, LOCK_SH | LOCK_NB) != 0 && errno == EWOULDBLOCK
    }

    /// The lock file, made if it is not there. Only a file this call made is given to the database's owner when
    /// root runs it: whatever the service's user put at the path (a hard link to /etc/shadow) is opened read-only
    /// and never changed (found in review).
    private static func openLock(_ path: String, databasePath: String) -> Int32? {
        let made = open(path, O_RDONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0o644)
        if made >= 0 {
            _ = fchmod(made, 0o644)  // whatever the umask: every user of the database takes the same lock
            var database = stat()
            if geteuid() == 0, stat(databasePath, &database) == 0 {
                _ = fchown(made, database.st_uid, database.st_gid)
            }
            return made
        }
        guard errno == EEXIST else { return nil }
        let existing = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK)
        guard existing >= 0 else { return nil }
        var info = stat()
        guard fstat(existing, &info) == 0, info.st_mode & S_IFMT == S_IFREG else {
            close(existing)
            return nil
        }
        return existing
    }

    /// A held message, or one whose release was interrupted after its copy reached the INBOX: the service may then
    /// have learned it and marked it released already, while its quarantined copy is still there to remove.
    private func releasable(_ id: String) throws -> (QuarantineEntry, MaildirFolder.Entry) {
        if Self.isIdentifier(id), let record = try store.quarantineEntries(.id(id.lowercased())).first,
           record.state == .released, let entry = try file(of: record) {
            let inbox = Maildir(root: record.mailbox).inbox
            if try inbox.entry(unique: entry.name.unique) != nil || inbox.entry(unique: Self.releaseName(of: record)) != nil {
                return (record, entry)
            }
        }
        return try held(id)
    }

    private func held(_ id: String) throws -> (QuarantineEntry, MaildirFolder.Entry) {
        let (record, entry) = try held(id, allowMissingFile: false, allowMoving: false)
        return (record, entry!)
    }

    /// A message the service is still moving (still in the INBOX, tagged or not) is not to be released or
    /// deleted: a release took the original for an earlier release's copy, removed the quarantined copy, and the
    /// service then removed the original.
    /// `folders`: the folders as a command listed them once; a file not found there as listed (a client renamed it
    /// since, as it does when it first shows a message) is looked for afresh.
    private func held(_ id: String, allowMissingFile: Bool, allowMoving: Bool,
                      folders: FolderListings? = nil) throws -> (QuarantineEntry, MaildirFolder.Entry?) {
        guard Self.isIdentifier(id) else { throw Failure.unknownID(id) }
        guard let record = try store.quarantineEntries(.id(id.lowercased())).first else { throw Failure.unknownID(id) }
        guard record.state == .held || record.state == .moving else { throw Failure.notHeld(id, record.state) }
        if record.state == .moving, !allowMoving { throw Failure.beingMoved(id, folder: record.folder) }
        var entry = try folders.flatMap { try file(of: record, folders: $0) } ?? file(of: record)
        // Files of its name, none of them the message: another message put there, or this configuration's
        // [header] settings not the service's. Nothing is done to them either way. A link there is said as one
        // (found by an audit: it was "another configuration's", which sent the admin looking in the wrong place).
        if entry == nil {
            let namesakes = try namesakes(of: record)
            if let link = namesakes.first(where: { !$0.isRegularFile }), namesakes.count == 1 {
                throw Failure.notAFile(id, path: link.path)
            }
            // Read once more: a file a client renamed into view since the look above is the message after all.
            if !namesakes.isEmpty {
                guard let renamed = try file(of: record) else { throw Failure.otherHeaderSettings(id) }
                entry = renamed
            }
        }
        if entry == nil && !allowMissingFile {
            // Not there yet, rather than gone (found by an audit: `show` of a move a kill interrupted said a mail
            // client had moved or deleted it).
            if record.state == .moving { throw Failure.beingMoved(id, folder: record.folder) }
            throw Failure.fileMissing(id, folder: record.folder)
        }
        return (record, entry)
    }

    /// The INBOX name of a release whose own name another message has taken there. Fixed by the record, so that
    /// a release run again after a crash, and the service, know the copy; a valid Maildir unique name.
    public static func releaseName(of record: QuarantineEntry) -> String {
        // Room kept for ".R", the id and a client's ":2,FLAGS" within a file name's 255 bytes: a long unique name
        // could otherwise never be released beside another of its name (found in review: ENAMETOOLONG at every
        // try). Cut the same way every time, so a rerun and the service find the copy.
        var base = Substring(record.name)
        // Names that always fitted are left as they were, so a copy an earlier version delivered is still known.
        while base.utf8.count > 225 { base = base.dropLast() }
        return base + ".R" + record.id
    }

    /// Whether `file` holds the quarantined message (the digest is taken without our own fields).
    static func isCopy(_ file: MaildirFolder.Entry, of record: QuarantineEntry, ownFields: OwnFields) -> Bool {
        (try? holdsCopy(file, of: record, ownFields: ownFields)) ?? false
    }

    /// `isCopy`, saying why a file could not be read: one gone since it was listed was renamed or removed.
    private static func holdsCopy(_ file: MaildirFolder.Entry, of record: QuarantineEntry,
                                  ownFields: OwnFields) throws(MaildirError) -> Bool {
        guard let bytes = try file.read(limit: Int.max) else { return false }
        return MessageDigest.identity(of: Message(bytes: bytes), ownFields: ownFields).matches(record.digest)
    }

    /// Ids are 16 hex digits; anything else cannot be one, whatever the database holds.
    public static func isIdentifier(_ id: String) -> Bool {
        // ASCII only: Character.isHexDigit also takes the fullwidth forms.
        id.utf8.count == 16 && id.utf8.allSatisfy { $0 &- 0x30 < 10 || ($0 | 0x20) &- 0x61 < 6 }
    }

    /// The quarantined message's file: of the files in its folder with the record's unique name, the one that is
    /// the message (`isCopy`). A client's rename keeps the name, and so may a user's `mv` of another message: taken
    /// by its name alone, `delete` removed the user's own message in `new/` while the quarantined copy sat in
    /// `cur/` (found in review). Nil when no file of the name is the message.
    ///
    /// A file gone between the folder's read and its own (a client renaming it) has the folder read again: taken
    /// for another message, it had the command blame the [header] settings (found by an audit, beside a client
    /// renaming in a tight loop). One renamed as fast as it is read, at every look, is `Failure.keptRenaming`.
    private func file(of record: QuarantineEntry, folders: FolderListings? = nil) throws -> MaildirFolder.Entry? {
        var listed = folders
        for _ in 0..<8 {
            var vanished = false
            for namesake in try namesakes(of: record, folders: listed) {
                do {
                    beforeReading(namesake)
                    if try Self.holdsCopy(namesake, of: record, ownFields: ownFields) { return namesake }
                } catch {
                    vanished = vanished || error.isMissing
                }
            }
            guard vanished else { return nil }
            listed = nil
        }
        throw Failure.keptRenaming(record.id, folder: record.folder)
    }

    /// Every file in the record's folder with its unique name, new/ first; `folders`: as listed once for them all.
    private func namesakes(of record: QuarantineEntry, folders: FolderListings? = nil) throws -> [MaildirFolder.Entry] {
        // The folder comes from the database, which another program may have written: read as a path, "../.."
        // took `delete` out of the mailbox (found by an audit).
        guard Maildir.isSubfolderName(record.folder) else { throw Failure.noFolder(record.id, folder: record.folder) }
        let folder = Maildir(root: record.mailbox).folder(record.folder)
        guard let folders else { return try Self.files(in: folder, of: record, named: record.name) }
        return try folders.namesakes(record.name, in: folder) { try Self.files(in: folder, of: record) }
    }

    /// The files in a record's folder, or those with the unique name `named`, new/ first: the others passed over
    /// as bytes (a removal looks again for a copy a client renamed, for every record a purge deletes).
    private static func files(in folder: MaildirFolder, of record: QuarantineEntry,
                              named: String? = nil) throws -> [MaildirFolder.Entry] {
        var found: [MaildirFolder.Entry] = []
        for subdirectory in MaildirFolder.Subdirectory.allCases {
            let entries: [MaildirFolder.Entry]
            do {
                if let named {
                    entries = try folder.entries(in: subdirectory, unique: named)
                } else {
                    entries = try folder.entries(in: subdirectory)
                }
            } catch {
                // The folder renamed or deleted in a mail client: its messages are no longer in it, and `delete`
                // closes their records (found by an audit: every command failed on the folder, and nothing could).
                // The whole mailbox gone (a copy of the database on another host, say) is said as it is.
                if error.isMissing, Maildir(root: record.mailbox).inbox.exists { continue }
                throw error
            }
            found += entries
        }
        return found
    }
}
