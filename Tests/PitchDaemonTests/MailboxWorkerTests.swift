import Foundation
import InMemoryLogging
import Logging
import PitchClassifier
import PitchMaildir
import PitchMessage
import PitchStore
import PitchTokenizer
import Synchronization
import Testing

@testable import PitchDaemon
@testable import PitchEngine

/// The worker against real Maildirs and a real SQLite database in a temporary directory.
@Suite struct MailboxWorkerTests {
    static let samples = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("samples/heldout")
    /// The starter model scores this one 0.9999 and the ham 0.0009: far from the thresholds.
    static let pitch = try! Array(Data(contentsOf: samples.appendingPathComponent("pitch/h-p-003.eml")))
    static let ham = try! Array(Data(contentsOf: samples.appendingPathComponent("ham/h-h-001.eml")))

    /// Whether a directory made where the tests make theirs has a birth time (statx's STATX_BTIME).
    static let fileSystemKeepsBirthTimes: Bool = {
        guard let directory = try? TemporaryDirectory("PitchDaemonTests-birth") else { return false }
        return MailboxWorker.identity(of: Maildir(root: directory.path).inbox).map { $0.born > 0 } ?? false
    }()

    let directory: TemporaryDirectory
    var root: String { directory.path }
    let maildir: Maildir
    let store: SQLiteTokenStore

    init() throws {
        directory = try TemporaryDirectory("PitchDaemonTests")
        maildir = Maildir(root: directory.path + "/Maildir")
        try maildir.inbox.create()
        store = try SQLiteTokenStore(path: directory.path + "/db.sqlite", tokenizerIdentity: Engine.tokenizerIdentity,
                                     access: .readWrite)
    }

    func worker(cutoffs: Cutoffs = .standard, reasons: Bool = false, ownFields: OwnFields = .standard,
                _ change: (inout MailboxPolicy) -> Void = { _ in }) throws -> MailboxWorker {
        var policy = MailboxPolicy()
        change(&policy)
        let worker = MailboxWorker(maildir: maildir, policy: policy, cutoffs: cutoffs, reasons: reasons,
                                   ownFields: ownFields, store: store,
                                   logger: Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() }))
        try worker.prepare()
        return worker
    }

    @discardableResult
    func deliver(_ bytes: [UInt8], _ name: String, into folder: MaildirFolder? = nil,
                 _ subdirectory: MaildirFolder.Subdirectory = .new) throws -> MaildirFolder.Entry {
        try (folder ?? maildir.inbox).deliver([bytes[...]], into: subdirectory, name: MaildirName(name))
    }

    func files(_ folder: MaildirFolder) throws -> [String: [UInt8]] {
        var files: [String: [UInt8]] = [:]
        for subdirectory in MaildirFolder.Subdirectory.allCases {
            for entry in try folder.entries(in: subdirectory) {
                let key = subdirectory.rawValue + "/" + entry.name.fileName
                files[key] = try FileBytes.read(entry.path, limit: 1 << 30)
            }
        }
        return files
    }

    /// `bytes` written into `path` as `cp` writes, not through tmp/: the first half now, the file left open; the
    /// function returned writes the rest and closes it.
    func startWriting(_ bytes: [UInt8], at path: String) -> () -> Void {
        let descriptor = open(path, O_WRONLY | O_CREAT | O_EXCL, 0o600)
        #expect(descriptor >= 0)
        let half = bytes.count / 2
        #expect(bytes[..<half].withUnsafeBytes { write(descriptor, $0.baseAddress, half) } == half)
        return {
            let rest = bytes.count - half
            #expect(bytes[half...].withUnsafeBytes { write(descriptor, $0.baseAddress, rest) } == rest)
            close(descriptor)
        }
    }

    /// The message with our one header line above it: the only change tagging may make.
    func expectTagged(_ bytes: [UInt8]?, verdict: String, original: [UInt8]) {
        guard let bytes, let lineEnd = bytes.firstIndex(of: 0x0A) else {
            Issue.record("no message")
            return
        }
        let header = String(decoding: bytes[..<lineEnd], as: UTF8.self)
        #expect(header.hasPrefix("X-Pitch-Status: \(verdict), score="))
        #expect(Array(bytes[(lineEnd + 1)...]) == original)
    }

    @Test func aPitchIsQuarantinedWithOurHeaderAndNothingElseChanged() throws {
        try deliver(Self.pitch, "1.M1P1Q1.test")
        try worker().scanAll(shouldStop: { false })
        #expect(try files(maildir.inbox).isEmpty)
        let quarantined = try files(maildir.folder(".Pitches"))
        #expect(Array(quarantined.keys) == ["new/1.M1P1Q1.test"])
        expectTagged(quarantined["new/1.M1P1Q1.test"], verdict: "pitch", original: Self.pitch)
        let entries = try store.quarantineEntries(.states([.held]))
        #expect(entries.count == 1)
        #expect(entries.first?.sender == "milan@renderhaus-viz.example")
        #expect(entries.first?.subject == "Photorealistic renders for your projects")
        #expect(try store.quarantineEntries(.states([.moving])).isEmpty)
    }

    /// With `[classifier] pitch_cutoff = 1` the same pitch is only unsure: tagged where it is, not quarantined;
    /// a reload that brings the standard cutoffs back quarantines the next one.
    @Test func theConfiguredCutoffsDecideAndAReloadChangesThem() throws {
        try deliver(Self.pitch, "1.M1P1Q1.test")
        let worker = try worker(cutoffs: Cutoffs(pitch: 1, ham: 0.2)!)
        worker.scanAll(shouldStop: { false })
        let inbox = try files(maildir.inbox)
        #expect(Array(inbox.keys) == ["new/1.M1P1Q1.test"])
        expectTagged(inbox["new/1.M1P1Q1.test"], verdict: "unsure", original: Self.pitch)
        #expect(try files(maildir.folder(".Pitches")).isEmpty)

        worker.update(policy: MailboxPolicy(), cutoffs: .standard, reasons: false, ownFields: .standard)
        try deliver(Self.pitch, "2.M2P2Q2.test")
        worker.scanAll(shouldStop: { false })
        #expect(Array(try files(maildir.folder(".Pitches")).keys) == ["new/2.M2P2Q2.test"])
    }

    @Test func hamIsLeftAsItIsByDefault() throws {
        try deliver(Self.ham, "1.M1P1Q1.test")
        try worker().scanAll(shouldStop: { false })
        #expect(try files(maildir.inbox) == ["new/1.M1P1Q1.test": Self.ham])
        #expect(try store.fileRecords(in: maildir.inbox.path)["1.M1P1Q1.test"]?.verdict == "ham")
    }

    @Test func taggingInPlaceUpdatesDovecotsSizeAndRemovesForgedFields() throws {
        let forged = Array("X-Pitch-Status: ham, score=0.0000\n".utf8) + Self.ham
        try deliver(forged, "1.M1P1Q1.test,S=\(forged.count),W=\(forged.count + 40)")
        try worker { $0.onHam = .tag }.scanAll(shouldStop: { false })
        let inbox = try files(maildir.inbox)
        #expect(inbox.count == 1)
        let (name, bytes) = try #require(inbox.first)
        expectTagged(bytes, verdict: "ham", original: Self.ham)
        #expect(name == "new/1.M1P1Q1.test,S=\(bytes.count)")
    }

    @Test func reasonsFollowTheStatusWhenAskedFor() throws {
        let forged = Array("X-Pitch-Reasons: trust me\n".utf8) + Self.ham
        try deliver(forged, "1.M1P1Q1.test")
        try worker(reasons: true) { $0.onHam = .tag }.scanAll(shouldStop: { false })
        let bytes = try #require(try files(maildir.inbox).values.first)
        let lines = bytes.split(separator: 0x0A, maxSplits: 2, omittingEmptySubsequences: false)
        #expect(String(decoding: lines[0], as: UTF8.self).hasPrefix("X-Pitch-Status: ham, score="))
        #expect(String(decoding: lines[1], as: UTF8.self).hasPrefix("X-Pitch-Reasons: "))
        #expect(Array(lines[2]) == Self.ham)
    }

    /// The second worker classifies nothing: the same bytes alone would not show it, since classifying the tagged
    /// message again writes the same field back.
    @Test func eachMessageIsClassifiedOnceAcrossRestarts() throws {
        try deliver(Self.ham, "1.M1P1Q1.test")
        var classified = 0
        let first = try worker { $0.onHam = .tag }
        first.whileClassified = { _ in classified += 1 }
        first.scanAll(shouldStop: { false })
        #expect(classified == 1)
        let once = try files(maildir.inbox)
        let restarted = try worker { $0.onHam = .tag }
        restarted.whileClassified = { _ in classified += 1 }
        restarted.scanAll(shouldStop: { false })
        #expect(classified == 1)
        #expect(try files(maildir.inbox) == once)
    }

    @Test func existingMailIsTakenStockOfAndSentMailTeachesCorrespondents() throws {
        try deliver(Self.pitch, "1.M1P1Q1.test:2,S", .cur)
        let sent = maildir.folder(".Sent")
        try sent.create()
        let sentMessage = "From: me@example.org\nTo: Friend <friend@elsewhere.example>\n"
            + "Message-ID: <sent.1@example.org>\n\nhello\n"
        try deliver(Array(sentMessage.utf8), "2.M1P1Q1.test:2,S", into: sent, .cur)
        try worker().scanAll(shouldStop: { false })
        #expect(try files(maildir.inbox) == ["cur/1.M1P1Q1.test:2,S": Self.pitch])
        #expect(try store.allContacts().map(\.address) == ["friend@elsewhere.example"])
    }

    /// Found by an audit: a pitch waiting in the INBOX at the first start was quarantined before the quarantine
    /// folder was scanned, and the mail already in that folder was then learned as pitches the user had moved in.
    /// After a restart, any pitch quarantined first did the same.
    @Test func mailAlreadyInTheQuarantineFolderTeachesNothingWhenAPitchIsQuarantinedFirst() throws {
        let pitches = maildir.folder(".Pitches")
        try pitches.create()
        try deliver(Self.ham, "1.M1P1Q1.test:2,S", into: pitches, .cur)
        try deliver(Self.pitch, "2.M1P1Q1.test")
        try worker().scanAll(shouldStop: { false })
        #expect(try pitches.entry(unique: "2.M1P1Q1.test") != nil)
        #expect(try store.statistics().totals == ClassTotals())
        #expect(try store.quarantineEntries(.states([.held])).map(\.name) == ["2.M1P1Q1.test"])

        let another = try Array(Data(contentsOf: Self.samples.appendingPathComponent("pitch/h-p-005.eml")))
        try deliver(another, "3.M1P1Q1.test")
        try worker().scanAll(shouldStop: { false })
        #expect(try pitches.entry(unique: "3.M1P1Q1.test") != nil)
        #expect(try store.statistics().totals == ClassTotals())
        #expect(try store.quarantineEntries(.states([.held])).map(\.name).sorted()
            == ["2.M1P1Q1.test", "3.M1P1Q1.test"])
    }

    @Test func unseenMailInCurIsClassifiedAndReadMailIsLeft() throws {
        let worker = try worker()
        // As Dovecot leaves them once a client has synced the mailbox: unseen ":2," and read ":2,S".
        try deliver(Self.pitch, "1.M1P1Q1.test:2,", .cur)
        try deliver(Self.pitch, "2.M1P1Q1.test:2,S", .cur)
        worker.scanAll(shouldStop: { false })
        #expect(try files(maildir.inbox) == ["cur/2.M1P1Q1.test:2,S": Self.pitch])
        expectTagged(try files(maildir.folder(".Pitches"))["cur/1.M1P1Q1.test:2,"], verdict: "pitch",
                     original: Self.pitch)
    }

    @Test func recordsOfFilesGoneForTwoFullScansAreForgotten() throws {
        let entry = try deliver(Self.ham, "1.M1P1Q1.test")
        let worker = try worker()
        worker.scanAll(shouldStop: { false })
        #expect(try store.fileRecords(in: maildir.inbox.path).keys.sorted() == ["1.M1P1Q1.test"])
        try maildir.inbox.remove(entry)
        worker.scanAll(shouldStop: { false })
        #expect(try store.fileRecords(in: maildir.inbox.path).keys.sorted() == ["1.M1P1Q1.test"])
        worker.scanAll(shouldStop: { false })
        #expect(try store.fileRecords(in: maildir.inbox.path).isEmpty)
    }

    @Test func recordsOfAFolderGoneForTwoFullScansAreForgotten() throws {
        let archive = maildir.folder(".Archive")
        try archive.create()
        try deliver(Self.ham, "1.M1P1Q1.test", into: archive, .cur)
        let worker = try worker()
        try deliver(Self.ham, "2.M1P1Q1.test", into: archive, .cur)
        worker.scanAll(shouldStop: { false })
        #expect(try store.fileRecords(in: archive.path).keys.sorted() == ["1.M1P1Q1.test", "2.M1P1Q1.test"])

        // The user renames the folder: its files are new to the journal under the new name.
        let renamed = maildir.folder(".Archive-2025")
        #expect(rename(archive.path, renamed.path) == 0)
        worker.scanAll(shouldStop: { false })
        #expect(try store.fileRecords(in: archive.path).count == 2)
        #expect(try store.fileRecords(in: renamed.path).count == 2)
        // Scans in quick succession (a retry every 2 s) are not enough: the folder must stay gone a while.
        worker.scanAll(shouldStop: { false })
        #expect(try store.fileRecords(in: archive.path).count == 2)
        worker.vanishedFolderGrace = 0
        worker.scanAll(shouldStop: { false })
        #expect(try store.fileRecords(in: archive.path).isEmpty)
        #expect(try store.recordedFolders(mailbox: maildir.root) == [renamed.path])
    }

    /// Found by an audit: `serve --maildir /typo` created a Maildir there, and a mailbox configured before its
    /// first delivery got one with the service's owner and modes.
    @Test func aMaildirNotThereYetIsLeftAloneUntilItsFirstDelivery() throws {
        let later = Maildir(root: root + "/later/Maildir")
        let worker = MailboxWorker(maildir: later, policy: MailboxPolicy(), store: store,
                                   logger: Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() }))
        worker.scanAll(shouldStop: { false })
        #expect(!worker.isPrepared)
        #expect(!worker.needsRetry)
        #expect(!FileManager.default.fileExists(atPath: root + "/later"))

        // What an MDA does: create the Maildir and deliver into new/.
        try FileManager.default.createDirectory(atPath: later.root, withIntermediateDirectories: true)
        try later.inbox.create()
        try later.inbox.deliver([Self.pitch[...]], into: .new, name: MaildirName("1.M1P1Q1.test"))
        worker.scanAll(shouldStop: { false })
        #expect(worker.isPrepared)
        #expect(try files(later.inbox).isEmpty)
        expectTagged(try files(later.folder(".Pitches"))["new/1.M1P1Q1.test"], verdict: "pitch", original: Self.pitch)
    }

    /// Found in review: whose a Maildir is was read once, so one an admin made as root and then gave to its user
    /// (`maildirmake`, then `chown -R`) was worked on as root for good, where the user can put links.
    @Test(.enabled(if: geteuid() == 0, "only root acts as a Maildir's owner"))
    func whoseTheMaildirIsIsReadAgainAtEveryScan() throws {
        #expect(chmod(root, 0o755) == 0)
        let given = Maildir(root: root + "/given/Maildir")
        try FileManager.default.createDirectory(atPath: given.root, withIntermediateDirectories: true)
        try given.inbox.create()
        let worker = MailboxWorker(maildir: given, policy: MailboxPolicy(), store: store,
                                   logger: Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() }))
        worker.scanAll(shouldStop: { false })
        #expect(worker.isPrepared)
        #expect(worker.maildir.owner == nil)  // root's own, in root's directory
        // chown -R, with whatever the first scan made (the quarantine folder).
        let made = try FileManager.default.subpathsOfDirectory(atPath: given.root)
        for sub in [""] + made.map({ "/" + $0 }) { #expect(chown(given.root + sub, 4242, 4343) == 0) }
        try Maildir(root: given.root).inbox.deliver([Self.pitch[...]], into: .new, name: MaildirName("1.M1P1Q1.test"))
        worker.scanAll(shouldStop: { false })
        #expect(worker.maildir.owner == FileOwner(user: 4242, group: 4343))
        // What the scan wrote, as the owner, is the owner's.
        var info = stat()
        #expect(stat(given.root + "/.Pitches/new/1.M1P1Q1.test", &info) == 0 && info.st_uid == 4242)
        expectTagged(try files(given.folder(".Pitches"))["new/1.M1P1Q1.test"], verdict: "pitch", original: Self.pitch)
    }

    /// Found in review: any failure while tidying before the stock-taking (here a folder without tmp/) left the
    /// whole mailbox unprepared, so nothing in it was ever classified.
    @Test func aFolderThatCannotBeTidiedDoesNotStopTheMailbox() throws {
        for subdirectory in ["cur", "new"] {
            try FileManager.default.createDirectory(atPath: root + "/Maildir/.Archive/" + subdirectory,
                                                    withIntermediateDirectories: true)
        }
        let worker = try worker()
        #expect(worker.isPrepared)
        try deliver(Self.pitch, "1.M1P1Q1.test")
        worker.scanAll(shouldStop: { false })
        #expect(try files(maildir.folder(".Pitches")).keys.sorted() == ["new/1.M1P1Q1.test"])
    }

    @Test func movingOutOfQuarantineTeachesHamAndMovingInTeachesPitch() throws {
        try deliver(Self.pitch, "1.M1P1Q1.test")
        try deliver(Self.ham, "2.M1P1Q1.test")
        let worker = try worker()
        worker.scanAll(shouldStop: { false })
        let pitches = maildir.folder(".Pitches")
        let quarantined = try #require(try pitches.entry(unique: "1.M1P1Q1.test"))
        let hamEntry = try #require(try maildir.inbox.entry(unique: "2.M1P1Q1.test"))
        // A figure from before: what the learning below measures again (too little training to tell: none).
        try store.recordStarterAgreement(0.9)
        // What a mail client does: rename into the other folder under a new name, in cur/ with flags.
        try pitches.move(quarantined, to: maildir.inbox, .cur, name: MaildirName("3.M1P1Q1.client:2,S"))
        try maildir.inbox.move(hamEntry, to: pitches, .cur, name: MaildirName("4.M1P1Q1.client:2,S"))
        worker.scanAll(shouldStop: { false })
        #expect(try store.statistics().totals == ClassTotals(pitch: 1, ham: 1))
        #expect(try store.starterAgreement() == nil)
        #expect(try store.ledgerClass(of: MessageDigest.of(Message(bytes: Self.pitch), ownFields: .standard)) == .ham)
        #expect(try store.ledgerClass(of: MessageDigest.of(Message(bytes: Self.ham), ownFields: .standard)) == .pitch)
        #expect(try store.quarantineEntries(.states([.released])).count == 1)
        // Learning happens once: another scan changes nothing.
        worker.scanAll(shouldStop: { false })
        #expect(try store.statistics().totals == ClassTotals(pitch: 1, ham: 1))
    }

    /// Found by an audit: renaming the quarantine folder (or deleting it into the Trash, which Dovecot keeps as
    /// `.Trash.Pitches`) taught every pitch in it as ham. A folder that appears holding mail teaches nothing;
    /// what is moved into it afterwards does.
    @Test(arguments: [".Archive", ".Trash.Pitches"])
    func aRenamedQuarantineFolderTeachesNothing(renamedTo name: String) throws {
        try deliver(Self.pitch, "1.M1P1Q1.test")
        let worker = try worker()
        worker.scanAll(shouldStop: { false })
        #expect(try store.quarantineEntries(.states([.held])).count == 1)
        let pitches = maildir.folder(".Pitches")
        #expect(rename(pitches.path, maildir.folder(name).path) == 0)
        worker.scanAll(shouldStop: { false })
        worker.scanAll(shouldStop: { false })
        #expect(try store.statistics().totals == ClassTotals(pitch: 0, ham: 0))
        #expect(try store.quarantineEntries(.states([.released])).isEmpty)
        // A pitch quarantined now and moved into that folder afterwards is a lesson, unless it went to the Trash.
        let another = try Array(Data(contentsOf: Self.samples.appendingPathComponent("pitch/h-p-001.eml")))
        try deliver(another, "2.M1P1Q1.test")
        worker.scanAll(shouldStop: { false })
        let held = try #require(try pitches.entry(unique: "2.M1P1Q1.test"))
        try pitches.move(held, to: maildir.folder(name), .cur, name: MaildirName("2.M1P1Q1.test:2,S"))
        worker.scanAll(shouldStop: { false })
        let expected = name.hasPrefix(".Trash") ? ClassTotals(pitch: 0, ham: 0) : ClassTotals(pitch: 0, ham: 1)
        #expect(try store.statistics().totals == expected)
    }

    /// Found by an audit: the folders' identities were known only while the service ran, so the quarantine folder
    /// renamed while it was stopped was a folder it knew at the next start, and every pitch in it was learned as
    /// ham. Named after `.Pitches` too, where the folder made again in its place is met first.
    @Test(arguments: [".Archive", ".Trash.Pitches", ".Zed"])
    func aQuarantineFolderRenamedWhileStoppedTeachesNothing(renamedTo name: String) throws {
        try deliver(Self.pitch, "1.M1P1Q1.test")
        try worker().scanAll(shouldStop: { false })
        #expect(try store.quarantineEntries(.states([.held])).count == 1)
        #expect(rename(maildir.folder(".Pitches").path, maildir.folder(name).path) == 0)
        let restarted = try worker()
        restarted.scanAll(shouldStop: { false })
        restarted.scanAll(shouldStop: { false })
        #expect(try store.statistics().totals == ClassTotals(pitch: 0, ham: 0))
        #expect(try store.quarantineEntries(.states([.released])).isEmpty)
        #expect(try maildir.folder(name).entry(unique: "1.M1P1Q1.test") != nil)
    }

    /// Found by an audit: the quarantine folder renamed while a full scan worked through the INBOX's backlog. The
    /// next pitch made `.Pitches` again, the scan met the new one at the old path and forgot the old directory at
    /// its end, and `.Archive`, which it had not listed, looked new when met later: every pitch in it was learned
    /// as ham. Met by the next full scan, or by the event of its arrival first.
    @Test(arguments: [true, false])
    func theQuarantineFolderRenamedDuringAScanTeachesNothing(metByAFullScan: Bool) throws {
        let another = try Array(Data(contentsOf: Self.samples.appendingPathComponent("pitch/h-p-005.eml")))
        try deliver(Self.pitch, "1.M1P1Q1.test")
        let running = try worker()
        running.scanAll(shouldStop: { false })
        #expect(try store.quarantineEntries(.states([.held])).count == 1)
        try deliver(another, "2.M1P1Q1.test")
        try deliver(Self.pitch + Array("\nA second copy.\n".utf8), "3.M1P1Q1.test")
        var renamed = false
        running.scanAll(shouldStop: {
            // Between the INBOX's messages: after the first is quarantined, before the second is.
            if !renamed, (try? self.maildir.folder(".Pitches").entry(unique: "2.M1P1Q1.test")) != nil {
                renamed = rename(self.maildir.folder(".Pitches").path, self.maildir.folder(".Archive").path) == 0
            }
            return false
        })
        #expect(renamed)
        #expect(try maildir.folder(".Pitches").entry(unique: "3.M1P1Q1.test") != nil)  // made again for it
        if metByAFullScan {
            running.scanAll(shouldStop: { false })
        } else {
            running.scan(maildir.folder(".Archive"), shouldStop: { false })
        }
        running.scanAll(shouldStop: { false })
        #expect(try store.statistics().totals == ClassTotals(pitch: 0, ham: 0))
        #expect(try store.quarantineEntries(.states([.released])).isEmpty)
        #expect(try maildir.folder(".Archive").entry(unique: "1.M1P1Q1.test") != nil)
    }

    /// Found in review: with the service stopped, the quarantine folder renamed to `.Zed` and another renamed into
    /// its place. Met first, the one in its place took the path's identity, and `.Zed` then looked new: its pitches
    /// were learned as ham.
    @Test func twoFoldersRenamedWhileStoppedTeachNothingWhicheverIsMetFirst() throws {
        let archive = maildir.folder(".Archive")
        try archive.create()
        try deliver(Self.ham, "1.M1P1Q1.test:2,S", into: archive, .cur)
        let another = try Array(Data(contentsOf: Self.samples.appendingPathComponent("pitch/h-p-005.eml")))
        try deliver(another, "2.M1P1Q1.test")
        try worker().scanAll(shouldStop: { false })
        #expect(try store.quarantineEntries(.states([.held])).count == 1)
        let pitches = maildir.folder(".Pitches")
        #expect(rename(pitches.path, maildir.folder(".Zed").path) == 0)
        #expect(rename(archive.path, pitches.path) == 0)
        let restarted = try worker()
        restarted.scanAll(shouldStop: { false })
        restarted.scanAll(shouldStop: { false })
        #expect(try store.statistics().totals == ClassTotals(pitch: 0, ham: 0))
        #expect(try store.quarantineEntries(.states([.released])).isEmpty)
    }

    /// Found in review: a renamed folder whose stock-taking failed (a database locked past its timeout) was
    /// forgotten under its old path at the end of the full scan, and the next scan learned its pitches as ham.
    @Test func aRenamedFolderWhoseStockTakingFailedIsTakenStockOfLater() throws {
        try deliver(Self.pitch, "1.M1P1Q1.test")
        try worker().scanAll(shouldStop: { false })
        #expect(rename(maildir.folder(".Pitches").path, maildir.folder(".Zed").path) == 0)
        let restarted = try worker()
        let release = try MilterFilterTests.holdWriteLock(store.path)
        restarted.scanAll(shouldStop: { false })
        release()
        #expect(try store.fileRecords(in: maildir.folder(".Zed").path).isEmpty)  // the stock-taking failed
        restarted.scanAll(shouldStop: { false })
        restarted.scanAll(shouldStop: { false })
        #expect(try store.statistics().totals == ClassTotals(pitch: 0, ham: 0))
        #expect(try store.quarantineEntries(.states([.released])).isEmpty)
        #expect(try store.fileRecords(in: maildir.folder(".Zed").path).keys.sorted() == ["1.M1P1Q1.test"])
    }

    /// Found in review: while a renamed folder's stock-taking kept failing, the end of each full scan wrote the
    /// folders as they then were, the quarantine folder made again at the old path among them, so after a restart
    /// the renamed one looked new and its pitches were learned as ham. Nothing is written while a rename is
    /// unfinished.
    /// A pitch quarantined, then (the service stopped) its folder renamed to `.Zed`, the pitch read by a client
    /// (new/ to cur/), and the folder's new/ made a file: its stock-taking fails until `unblock` is called.
    func quarantineRenamedWhileStoppedWithAFailingStockTaking()
        throws -> (zed: MaildirFolder, unblock: () throws -> Void) {
        try deliver(Self.pitch, "1.M1P1Q1.test")
        try worker().scanAll(shouldStop: { false })
        let zed = maildir.folder(".Zed")
        #expect(rename(maildir.folder(".Pitches").path, zed.path) == 0)
        let held = try #require(try zed.entry(unique: "1.M1P1Q1.test"))
        try zed.move(held, to: zed, .cur, name: MaildirName("1.M1P1Q1.test:2,S"))
        #expect(rmdir(zed.path + "/new") == 0)
        #expect(FileManager.default.createFile(atPath: zed.path + "/new", contents: Data()))
        return (zed, {
            try FileManager.default.removeItem(atPath: zed.path + "/new")
            #expect(mkdir(zed.path + "/new", 0o700) == 0)
        })
    }

    @Test func aRestartWhileARenamesStockTakingFailsStillSeesTheRename() throws {
        let (zed, unblock) = try quarantineRenamedWhileStoppedWithAFailingStockTaking()
        let failing = try worker()
        failing.scanAll(shouldStop: { false })
        failing.scanAll(shouldStop: { false })
        #expect(try store.fileRecords(in: zed.path).isEmpty)
        try unblock()
        let restarted = try worker()
        restarted.scanAll(shouldStop: { false })
        restarted.scanAll(shouldStop: { false })
        #expect(try store.statistics().totals == ClassTotals(pitch: 0, ham: 0))
        #expect(try store.quarantineEntries(.states([.released])).isEmpty)
        #expect(try store.fileRecords(in: zed.path).keys.sorted() == ["1.M1P1Q1.test"])
    }

    /// Found in review: an unfinished rename was dropped at the end of any full scan that did not meet it failing
    /// again, so a folder missed by one scan (renamed again meanwhile, or its cur/ gone for a moment) looked new
    /// when it was met next, and its pitches were learned as ham. It is dropped after two scans that miss it.
    @Test func anUnfinishedRenameMissedByOneScanIsStillARename() throws {
        let (zed, unblock) = try quarantineRenamedWhileStoppedWithAFailingStockTaking()
        let restarted = try worker()
        restarted.scanAll(shouldStop: { false })  // the stock-taking fails
        #expect(rename(zed.path + "/cur", zed.path + "/away") == 0)
        restarted.scanAll(shouldStop: { false })  // not a folder for this scan
        #expect(rename(zed.path + "/away", zed.path + "/cur") == 0)
        try unblock()
        restarted.scanAll(shouldStop: { false })
        restarted.scanAll(shouldStop: { false })
        #expect(try store.statistics().totals == ClassTotals(pitch: 0, ham: 0))
        #expect(try store.quarantineEntries(.states([.released])).isEmpty)
        #expect(try store.fileRecords(in: zed.path).keys.sorted() == ["1.M1P1Q1.test"])
    }

    /// Found in review: a directory made where another was deleted often gets its inode number, and kept across a
    /// restart the number alone took a folder made while the service was stopped for the deleted one, renamed:
    /// a release the user made into it taught nothing. Its birth time tells them apart.
    @Test(.enabled(if: fileSystemKeepsBirthTimes, "where the file system keeps no birth time, the number decides"))
    func aFolderMadeWhileStoppedWithADeletedOnesInodeStillTeaches() throws {
        try deliver(Self.pitch, "1.M1P1Q1.test")
        let old = maildir.folder(".Old")
        try old.create()
        try worker().scanAll(shouldStop: { false })
        let pitches = maildir.folder(".Pitches")
        let work = maildir.folder(".Work")
        try work.create()
        let held = try #require(try pitches.entry(unique: "1.M1P1Q1.test"))
        try pitches.move(held, to: work, .cur, name: MaildirName("1.M1P1Q1.test:2,S"))
        let deleted = try #require(MailboxWorker.identity(of: old))
        try FileManager.default.removeItem(atPath: old.path)
        // What the file system may well have done: `.Old`'s number given to `.Work`, recorded as `.Old`'s.
        let made = try #require(MailboxWorker.identity(of: work))
        #expect(made.born != deleted.born)
        try store.apply([.folderIdentity(path: old.path, mailbox: maildir.root,
                                         identity: FolderIdentity(inode: made.inode, born: deleted.born))])
        try worker().scanAll(shouldStop: { false })
        #expect(try store.statistics().totals == ClassTotals(pitch: 0, ham: 1))
        #expect(try store.quarantineEntries(.states([.released])).count == 1)
    }

    /// The audit's other way round: with the service stopped, the user deletes the empty quarantine folder and
    /// renames a folder of ham, there before the first start, into its place. Its mail is not learned as pitches.
    @Test func aFolderRenamedIntoTheQuarantinesPlaceWhileStoppedTeachesNothing() throws {
        let archive = maildir.folder(".Archive")
        try archive.create()
        try deliver(Self.ham, "1.M1P1Q1.test:2,S", into: archive, .cur)
        try worker().scanAll(shouldStop: { false })
        let pitches = maildir.folder(".Pitches")
        #expect(try files(pitches).isEmpty)
        try FileManager.default.removeItem(atPath: pitches.path)
        #expect(rename(archive.path, pitches.path) == 0)
        try worker().scanAll(shouldStop: { false })
        #expect(try store.statistics().totals == ClassTotals(pitch: 0, ham: 0))
        #expect(try store.quarantineEntries(.states([.held])).isEmpty)
        #expect(try pitches.entry(unique: "1.M1P1Q1.test") != nil)
    }

    /// Found in review: a folder made while the service runs, then filled by the user's moves, was taken for a
    /// renamed one and its lessons lost; and a folder renamed onto the path of a deleted one taught every pitch in
    /// it as ham, as the path was known.
    @Test func aNewFolderTeachesWhatIsMovedIntoItAndARenameOntoAnOldPathTeachesNothing() throws {
        try deliver(Self.pitch, "1.M1P1Q1.test")
        let worker = try worker()
        worker.scanAll(shouldStop: { false })
        let work = maildir.folder(".Work")
        // The root's inotify event comes before the client has made cur/ and new/.
        #expect(mkdir(work.path, 0o700) == 0)
        worker.scan(work, shouldStop: { false })
        try work.create()
        let pitches = maildir.folder(".Pitches")
        let held = try #require(try pitches.entry(unique: "1.M1P1Q1.test"))
        try pitches.move(held, to: work, .cur, name: MaildirName("1.M1P1Q1.test:2,S"))
        worker.scanAll(shouldStop: { false })
        #expect(try store.statistics().totals == ClassTotals(pitch: 0, ham: 1))

        let another = try Array(Data(contentsOf: Self.samples.appendingPathComponent("pitch/h-p-001.eml")))
        try deliver(another, "2.M1P1Q1.test")
        worker.scanAll(shouldStop: { false })
        #expect(try store.quarantineEntries(.states([.held])).count == 1)
        try FileManager.default.removeItem(atPath: work.path)
        #expect(rename(pitches.path, work.path) == 0)
        // The root's events in their order: the old name gone first, then the new one.
        worker.scan(pitches, shouldStop: { false })
        worker.scan(work, shouldStop: { false })
        worker.scanAll(shouldStop: { false })
        #expect(try store.statistics().totals == ClassTotals(pitch: 0, ham: 1))
    }

    /// Found in review: a folder made and filled by a client's "move to a new folder" before the service looked
    /// (a burst, a full scan) was taken for a renamed one and the lesson lost. Its directory was never seen
    /// under another name: what is in it teaches.
    @Test func aFolderMadeAndFilledBeforeTheServiceLooksTeaches() throws {
        try deliver(Self.pitch, "1.M1P1Q1.test")
        let worker = try worker()
        worker.scanAll(shouldStop: { false })
        let work = maildir.folder(".Work")
        try work.create()
        let pitches = maildir.folder(".Pitches")
        try pitches.move(try #require(try pitches.entry(unique: "1.M1P1Q1.test")), to: work, .cur,
                         name: MaildirName("1.M1P1Q1.test:2,S"))
        worker.scanAll(shouldStop: { false })
        #expect(try store.statistics().totals == ClassTotals(pitch: 0, ham: 1))
    }

    /// A Maildir made again under the running service (moved away, a new one in its place) is a new folder at
    /// the INBOX's path: its new mail is still classified, not taken stock of.
    @Test func aMaildirMadeAgainHasItsNewMailClassified() throws {
        let worker = try worker()
        worker.scanAll(shouldStop: { false })
        #expect(rename(maildir.root, root + "/Maildir.old") == 0)
        try maildir.inbox.create()
        try deliver(Self.pitch, "1.M1P1Q1.test")
        worker.scanAll(shouldStop: { false })
        #expect(try files(maildir.inbox).isEmpty)
        #expect(try files(maildir.folder(".Pitches")).count == 1)
    }

    /// The pitch quarantined, and another message delivered to the INBOX under the pitch's name.
    func quarantinedWithItsNameTaken(name: String = "1.M1P1Q1.test") throws -> QuarantineEntry {
        try deliver(Self.pitch, name)
        try worker().scanAll(shouldStop: { false })
        try deliver(Self.ham, name)
        return try #require(try QuarantineDesk(store: store, ownFields: .standard).list().first?.entry)
    }

    /// Found in review: a release killed after delivering under the fresh name it needed (another message had its
    /// own) delivered a second copy when run again.
    @Test func aReleaseUnderAFreshNameIsFinishedByRunningItAgain() throws {
        let record = try quarantinedWithItsNameTaken()
        let desk = QuarantineDesk(store: store, ownFields: .standard)
        // What the killed release had done: its copy in the INBOX under the fresh name, the quarantined one left.
        try deliver(Self.pitch, QuarantineDesk.releaseName(of: record))
        let path = try desk.release(record.id)
        #expect(path.hasSuffix("/new/" + QuarantineDesk.releaseName(of: record)))
        let inbox = try files(maildir.inbox)
        #expect(inbox.count == 2)
        #expect(inbox["new/1.M1P1Q1.test"] == Self.ham)
        #expect(inbox["new/" + QuarantineDesk.releaseName(of: record)] == Self.pitch)
        #expect(try files(maildir.folder(".Pitches")).isEmpty)
    }

    /// Found by an audit: a FIFO in new/ blocked the thread every mailbox shares (SIGTERM too); a symbolic link
    /// was followed and its target copied into the mailbox with our header; an empty file became a file of one
    /// header line. Each is left as it is, and the rest of the folder is classified.
    @Test func fifosLinksAndEmptyFilesAreLeftAlone() throws {
        let new = maildir.inbox.path + "/new/"
        #expect(mkfifo(new + "fifo.M1P1Q1.test", 0o600) == 0)
        let secret = root + "/secret.txt"
        try Data("password=hunter2\n".utf8).write(to: URL(fileURLWithPath: secret))
        #expect(symlink(secret, new + "link.M1P1Q1.test") == 0)
        try deliver([], "empty.M1P1Q1.test")
        try deliver(Self.ham, "ham.M1P1Q1.test")
        let worker = try worker { $0.onHam = .tag }
        worker.scanAll(shouldStop: { false })
        var info = stat()
        #expect(lstat(new + "fifo.M1P1Q1.test", &info) == 0 && info.st_mode & S_IFMT == S_IFIFO)
        #expect(lstat(new + "link.M1P1Q1.test", &info) == 0 && info.st_mode & S_IFMT == S_IFLNK)
        #expect(try FileBytes.read(new + "empty.M1P1Q1.test", limit: 10) == [])
        expectTagged(try FileBytes.read(new + "ham.M1P1Q1.test", limit: 1 << 20), verdict: "ham", original: Self.ham)
        #expect(throws: MaildirError.notARegularFile(new + "fifo.M1P1Q1.test")) {
            try FileBytes.read(new + "fifo.M1P1Q1.test", limit: 10)
        }
    }

    @Test func movingAPitchBackToTheInboxUnderItsOwnNameTeachesHam() throws {
        try deliver(Self.pitch, "1.M1P1Q1.test")
        let worker = try worker()
        worker.scanAll(shouldStop: { false })
        let pitches = maildir.folder(".Pitches")
        let quarantined = try #require(try pitches.entry(unique: "1.M1P1Q1.test"))
        // `mv .Pitches/new/1.M1P1Q1.test "cur/1.M1P1Q1.test:2,S"`, and inotify reports it at once.
        try pitches.move(quarantined, to: maildir.inbox, .cur, name: MaildirName("1.M1P1Q1.test:2,S"))
        worker.arrived(in: maildir.inbox, .cur, name: "1.M1P1Q1.test:2,S")
        #expect(try store.statistics().totals == ClassTotals(pitch: 0, ham: 1))
        #expect(try store.ledgerClass(of: MessageDigest.of(Message(bytes: Self.pitch), ownFields: .standard)) == .ham)
        #expect(try store.quarantineEntries(.states([.released])).count == 1)
        // Left where the user put it, untouched, and learned once.
        expectTagged(try files(maildir.inbox)["cur/1.M1P1Q1.test:2,S"], verdict: "pitch", original: Self.pitch)
        worker.scanAll(shouldStop: { false })
        #expect(try store.statistics().totals == ClassTotals(pitch: 0, ham: 1))
        #expect(try files(pitches).isEmpty)
    }

    /// Found by an audit: released with `mv` while the service was stopped, the pitch left the quarantine folder
    /// empty at the restart, and that folder's record of it stayed for as long as the service ran, so moving it
    /// back under its old name, however much later, was taken as handled and taught nothing.
    @Test func aMessageMovedBackAfterARestartTeachesAgain() throws {
        try deliver(Self.pitch, "1.M1P1Q1.test")
        try worker().scanAll(shouldStop: { false })
        let pitches = maildir.folder(".Pitches")
        let quarantined = try #require(try pitches.entry(unique: "1.M1P1Q1.test"))
        try pitches.move(quarantined, to: maildir.inbox, .cur, name: MaildirName("1.M1P1Q1.test:2,S"))
        let restarted = try worker()
        restarted.scanAll(shouldStop: { false })
        #expect(try store.statistics().totals == ClassTotals(pitch: 0, ham: 1))
        // Two full scans without it, and the quarantine folder has forgotten it.
        restarted.scanAll(shouldStop: { false })
        restarted.scanAll(shouldStop: { false })
        #expect(try store.fileRecords(in: pitches.path).isEmpty)
        let released = try #require(try maildir.inbox.entry(unique: "1.M1P1Q1.test"))
        try maildir.inbox.move(released, to: pitches, .cur, name: MaildirName("1.M1P1Q1.test:2,S"))
        restarted.scanAll(shouldStop: { false })
        #expect(try store.statistics().totals == ClassTotals(pitch: 1, ham: 0))
        #expect(try store.quarantineEntries(.states([.held])).map(\.name) == ["1.M1P1Q1.test"])
    }

    /// Found by an audit: `delete` of a message the user had moved back while the service was stopped said
    /// "deleted", removed nothing, and settled the record, so the restarted service learned nothing from the move.
    /// It is refused, and the service learns the move as ham.
    @Test func deleteOfAMessageMovedBackIsRefusedAndTheMoveStillTeaches() throws {
        try deliver(Self.pitch, "1.M1P1Q1.test")
        try worker().scanAll(shouldStop: { false })
        let pitches = maildir.folder(".Pitches")
        let quarantined = try #require(try pitches.entry(unique: "1.M1P1Q1.test"))
        try pitches.move(quarantined, to: maildir.inbox, .cur, name: MaildirName("1.M1P1Q1.test:2,S"))
        let desk = QuarantineDesk(store: store, ownFields: .standard)
        let id = try #require(try store.quarantineEntries(.states([.held])).first?.id)
        #expect(throws: QuarantineDesk.Failure.backInTheInbox(
            id, path: maildir.inbox.path + "/cur/1.M1P1Q1.test:2,S", byHand: true)) { try desk.delete(id) }
        #expect(try files(maildir.inbox).count == 1)
        // Listed as moved back, not as a release stopped half-way.
        let listed = try #require(try desk.list().first)
        #expect(listed.releasedTo != nil && listed.movedBackByHand)
        #expect(desk.bearsOurFields(atPath: try #require(listed.releasedTo)))
        try worker().scanAll(shouldStop: { false })
        #expect(try store.statistics().totals == ClassTotals(pitch: 0, ham: 1))
    }

    /// Found in review: one a client deleted (expunged, no copy anywhere) is still deleted: its record closes.
    @Test func deleteOfAMessageAClientDeletedClosesItsRecord() throws {
        try deliver(Self.pitch, "1.M1P1Q1.test")
        try worker().scanAll(shouldStop: { false })
        let pitches = maildir.folder(".Pitches")
        try pitches.remove(try #require(try pitches.entry(unique: "1.M1P1Q1.test")))
        let desk = QuarantineDesk(store: store, ownFields: .standard)
        let id = try #require(try store.quarantineEntries(.states([.held])).first?.id)
        try desk.delete(id)
        #expect(try desk.list().isEmpty)
        #expect(throws: QuarantineDesk.Failure.notHeld(id, .deleted)) { try desk.delete(id) }
    }

    /// Found by an audit: a quarantined pitch the user deleted in a mail client (or moved to the Trash, whose mail
    /// teaches nothing) kept its record held for ever, listed as "no longer in .Pitches" and counted by `stats`.
    /// Two full scans that miss it (`deletedCopyGrace` apart) close it, as `quarantine delete` would; one moved back
    /// is a release, as before.
    @Test(arguments: ["deleted", "trashed", "moved back"])
    func aQuarantinedMessageDeletedInAClientHasItsRecordClosed(how: String) throws {
        try deliver(Self.pitch, "1.M1P1Q1.test")
        let worker = try worker()
        worker.deletedCopyGrace = 0
        worker.scanAll(shouldStop: { false })
        let pitches = maildir.folder(".Pitches")
        let held = try #require(try pitches.entry(unique: "1.M1P1Q1.test"))
        switch how {
        case "deleted": try pitches.remove(held)
        case "trashed":
            let trash = maildir.folder(".Trash")
            try trash.create()
            try pitches.move(held, to: trash, .cur, name: MaildirName("1.M1P1Q1.test:2,S"))
        default: try pitches.move(held, to: maildir.inbox, .cur, name: MaildirName("2.M2P2Q2.test:2,S"))
        }
        let learned = try store.statistics().totals
        worker.scanAll(shouldStop: { false })
        if how != "moved back" {
            #expect(try store.quarantineEntries(.states([.held])).count == 1, "one scan's miss may be a rename")
        }
        worker.scanAll(shouldStop: { false })
        worker.scanAll(shouldStop: { false })
        #expect(try store.quarantineEntries(.states([.held])).isEmpty)
        let settled = how == "moved back" ? QuarantineState.released : .deleted
        #expect(try store.quarantineEntries(.states([settled])).map(\.name) == ["1.M1P1Q1.test"])
        if how != "moved back" { #expect(try store.statistics().totals == learned, "nothing learned") }
        #expect(try QuarantineDesk(store: store, ownFields: .standard).list().isEmpty)
    }

    /// Found in review: the quarantine folder renamed (its mail with it) had every record closed as deleted, and a
    /// message moved from there back to the INBOX was classified again rather than learned as a release. A file of
    /// the record's name anywhere in the mailbox keeps it held; nor is a record closed within the grace.
    @Test func aRecordIsKeptWhileItsMessageIsElsewhereOrWithinTheGrace() throws {
        try deliver(Self.pitch, "1.M1P1Q1.test")
        let worker = try worker()
        worker.scanAll(shouldStop: { false })
        #expect(rename(root + "/Maildir/.Pitches", root + "/Maildir/.Archive") == 0)
        let desk = QuarantineDesk(store: store, ownFields: .standard)
        #expect(try desk.purge(olderThan: 0, now: Int64(time(nil)) + 86_400)
            == QuarantineDesk.Purge(deleted: 0, alreadyGone: 0, backInTheInbox: 0, notMatching: 0, folderGone: 1))
        // The service makes the quarantine folder again (as at its next pitch): it lacks the record's file.
        try maildir.folder(".Pitches").create()
        worker.deletedCopyGrace = 0
        for _ in 0..<3 { worker.scanAll(shouldStop: { false }) }
        #expect(try store.quarantineEntries(.states([.held])).map(\.name) == ["1.M1P1Q1.test"])
        let archive = maildir.folder(".Archive")
        let entry = try #require(try archive.entry(unique: "1.M1P1Q1.test"))
        try archive.move(entry, to: maildir.inbox, .cur, name: MaildirName("2.M2P2Q2.test:2,S"))
        worker.scanAll(shouldStop: { false })
        #expect(try store.quarantineEntries(.states([.released])).map(\.name) == ["1.M1P1Q1.test"])

        // Within the grace, a missing file is not taken for a deletion.
        try deliver(Array("Message-ID: <third@example.com>\n".utf8) + Self.pitch, "3.M3P3Q3.test")
        let graced = try self.worker()
        graced.scanAll(shouldStop: { false })
        let pitches = maildir.folder(".Pitches")
        try pitches.remove(try #require(try pitches.entry(unique: "3.M3P3Q3.test")))
        for _ in 0..<3 { graced.scanAll(shouldStop: { false }) }
        #expect(try store.quarantineEntries(.states([.held])).map(\.name) == ["3.M3P3Q3.test"])
    }

    /// A record kept for its file in another folder (the quarantine folder renamed) is looked at again: once that
    /// folder is deleted too, the record is closed as deleted. It stayed held until the service restarted.
    @Test func aRecordKeptForACopyElsewhereIsClosedOnceTheCopyIsGone() throws {
        try deliver(Self.pitch, "1.M1P1Q1.test")
        let worker = try worker()
        worker.scanAll(shouldStop: { false })
        #expect(rename(root + "/Maildir/.Pitches", root + "/Maildir/.Archive") == 0)
        try maildir.folder(".Pitches").create()
        worker.deletedCopyGrace = 0
        for _ in 0..<3 { worker.scanAll(shouldStop: { false }) }
        #expect(try store.quarantineEntries(.states([.held])).map(\.name) == ["1.M1P1Q1.test"])
        try FileManager.default.removeItem(atPath: root + "/Maildir/.Archive")
        worker.elsewhereRecheck = 0
        for _ in 0..<3 { worker.scanAll(shouldStop: { false }) }
        #expect(try store.quarantineEntries(.states([.held])).isEmpty)
        #expect(try store.quarantineEntries(.states([.deleted])).map(\.name) == ["1.M1P1Q1.test"])
    }

    /// Found by an audit: the quarantine commands read a record's folder as a path, and a database written by
    /// another program (".Pitches/../..") took `delete` out of the mailbox. Here the path leads back into the
    /// quarantine folder, so that only the check stands between the command and the file.
    @Test(arguments: [".Pitches/../.Pitches", "..", ".", ".Pitches/", ""])
    func aRecordWhoseFolderIsNoMaildirFolderIsNotActedOn(folder: String) throws {
        try deliver(Self.pitch, "1.M1P1Q1.test")
        try worker().scanAll(shouldStop: { false })
        var record = try #require(try store.quarantineEntries(.states([.held])).first)
        record.folder = folder
        try store.apply([.quarantine(record)])
        let desk = QuarantineDesk(store: store, ownFields: .standard)
        for command in [desk.delete, { _ = try desk.show($0) }, { _ = try desk.release($0) }] as [(String) throws -> Void] {
            #expect(throws: QuarantineDesk.Failure.noFolder(record.id, folder: folder)) { try command(record.id) }
        }
        #expect(try desk.list().map(\.unreadable) == [QuarantineDesk.Failure.noFolder(record.id, folder: folder).description])
        #expect(try files(maildir.folder(".Pitches")).count == 1)
        #expect(try files(maildir.inbox).isEmpty)
    }

    /// Found by an audit: a backup put in place of the database (the README's way then) had the service learn as
    /// pitches the messages it had quarantined since the backup, for want of their records. A restore replaces the
    /// training alone: the journal and the quarantine's records stay, and the service learns nothing.
    @Test func aRestoreWhileTheServiceRunsTeachesItNothing() throws {
        let worker = try worker()
        try deliver(Self.pitch, "1.M1P1Q1.test")
        worker.scanAll(shouldStop: { false })
        let backup = root + "/backup.sqlite", copy = root + "/copy.sqlite"
        #expect(creat(backup, 0o600) >= 0)
        _ = try SQLiteTokenStore.backUp(databaseAt: store.path, into: backup, destination: backup)
        // Trained since the backup, and a second pitch quarantined.
        _ = try store.train([TrainingItem(digest: Array(repeating: 7, count: 32), tokens: [TokenID(rawValue: 1)],
                                          target: .ham)])
        let second = Array("Message-ID: <second@example.com>\n".utf8) + Self.pitch
        try deliver(second, "2.M2P2Q2.test")
        worker.scanAll(shouldStop: { false })
        let held = try store.quarantineEntries(.states([.held])).map(\.name).sorted()
        #expect(held == ["1.M1P1Q1.test", "2.M2P2Q2.test"])

        #expect(creat(copy, 0o600) >= 0)
        _ = try SQLiteTokenStore.backUp(databaseAt: backup, into: copy, destination: copy)
        try SQLiteTokenStore.prepareRestoreCopy(at: copy, tokenizerIdentity: Engine.tokenizerIdentity)
        let restored = try store.restoreTraining(from: copy).totals
        let backedUp = try SQLiteTokenStore(path: backup, tokenizerIdentity: Engine.tokenizerIdentity,
                                            access: .readOnly)
        #expect(restored == (try backedUp.statistics().totals))
        #expect(try store.statistics().totals == restored)
        #expect(try store.ledgerClass(of: Array(repeating: 7, count: 32)) == nil, "what was trained since is gone")

        for _ in 0..<3 { worker.scanAll(shouldStop: { false }) }
        // And after a restart, with nothing of the journal in memory.
        let restarted = try self.worker()
        for _ in 0..<3 { restarted.scanAll(shouldStop: { false }) }
        #expect(try store.statistics().totals == restored, "nothing learned")
        #expect(try store.quarantineEntries(.states([.held])).map(\.name).sorted() == held)
        #expect(try files(maildir.folder(".Pitches")).count == 2)
    }

    /// The held pitch as delivered a second time, to another of the user's addresses: the same Message-ID, one
    /// more trace field, so another digest.
    static let pitchAgain = Array("Delivered-To: ines.alias@copperleaf-studio.example\n".utf8) + pitch

    /// Found in review: a second delivery of a held pitch was taken for the user moving it out, and learned as ham.
    /// Another digest with the same Message-ID is another message (found by an audit: a pitch carrying a held,
    /// trashed or released one's Message-ID was learned as ham, or let through): classified at once.
    @Test func aSecondDeliveryOfAHeldPitchIsClassifiedOnItsOwn() throws {
        try deliver(Self.pitch, "1.M1P1Q1.test")
        let worker = try worker()
        worker.scanAll(shouldStop: { false })
        try deliver(Self.pitchAgain, "2.M1P1Q1.test")
        worker.scanAll(shouldStop: { false })
        #expect(!worker.needsRetry)
        #expect(try files(maildir.inbox).isEmpty)
        let quarantined = try files(maildir.folder(".Pitches"))
        #expect(quarantined.keys.sorted() == ["new/1.M1P1Q1.test", "new/2.M1P1Q1.test"])
        expectTagged(quarantined["new/2.M1P1Q1.test"], verdict: "pitch", original: Self.pitchAgain)
        #expect(try store.statistics().totals == ClassTotals(pitch: 0, ham: 0))
        #expect(try store.quarantineEntries(.states([.held])).count == 2)

        // The user then moves the first copy out, under a client's name: that one, and only that one, is released.
        let pitches = maildir.folder(".Pitches")
        try pitches.move(try #require(try pitches.entry(unique: "1.M1P1Q1.test")), to: maildir.inbox, .cur,
                         name: MaildirName("3.M1P1Q1.client:2,S"))
        worker.scanAll(shouldStop: { false })
        #expect(try store.statistics().totals == ClassTotals(pitch: 0, ham: 1))
        #expect(try store.quarantineEntries(.states([.released])).map(\.name) == ["1.M1P1Q1.test"])
        #expect(try store.quarantineEntries(.states([.held])).map(\.name) == ["2.M1P1Q1.test"])
    }

    /// Found in review: a second copy of a held pitch that the user filed into the quarantine took over the held
    /// copy's record (the same message, so the same id), and the held copy stayed in the folder with none: not
    /// listed, never purged, and releasing the id listed brought back the other copy.
    @Test func aCopyTheUserFilesBesideAHeldOneGetsARecordOfItsOwn() throws {
        try deliver(Self.pitch, "1.M1P1Q1.test")
        let worker = try worker()
        worker.scanAll(shouldStop: { false })
        let first = try #require(try store.quarantineEntries(.states([.held])).first)
        try deliver(Self.pitch, "2.M1P1Q1.client:2,S", into: maildir.folder(".Pitches"), .cur)
        worker.scanAll(shouldStop: { false })
        let held = try store.quarantineEntries(.states([.held]))
        #expect(held.map(\.name).sorted() == ["1.M1P1Q1.test", "2.M1P1Q1.client"])
        #expect(Set(held.map(\.id)).count == 2)
        #expect(held.first { $0.name == "1.M1P1Q1.test" }?.id == first.id)
    }

    /// Found in review: with the quarantine folder deleted by the user, looking for the held copy failed, and a
    /// second delivery of it was left unhandled at every scan, without a word.
    @Test func aSecondDeliveryIsHandledWhenTheQuarantineFolderIsGone() throws {
        try deliver(Self.pitch, "1.M1P1Q1.test")
        let worker = try worker()
        worker.scanAll(shouldStop: { false })
        try FileManager.default.removeItem(atPath: maildir.folder(".Pitches").path)
        try deliver(Self.pitchAgain, "2.M1P1Q1.test")
        worker.scanAll(shouldStop: { false })
        #expect(!worker.needsRetry)
        #expect(try files(maildir.inbox).isEmpty)
        #expect(try files(maildir.folder(".Pitches")).keys.sorted() == ["new/2.M1P1Q1.test"])
    }

    /// Found by an audit: after a release, a pitch carrying the released message's Message-ID was let through
    /// unclassified; after the quarantined copy went to the Trash, it was learned as ham.
    @Test(arguments: ["release", "trash"])
    func aMessageIDIsNoProofOfARelease(first: String) throws {
        try deliver(Self.pitch, "1.M1P1Q1.test")
        let worker = try worker()
        worker.scanAll(shouldStop: { false })
        let pitches = maildir.folder(".Pitches")
        let held = try #require(try pitches.entry(unique: "1.M1P1Q1.test"))
        if first == "release" {
            try QuarantineDesk(store: store, ownFields: .standard).release(try #require(try store
                .quarantineEntries(.states([.held])).first?.id))
            worker.scanAll(shouldStop: { false })
        } else {
            let trash = maildir.folder(".Trash")
            try trash.create()
            try pitches.move(held, to: trash, .cur, name: MaildirName("1.M1P1Q1.test:2,ST"))
        }
        let learned = try store.statistics().totals
        // Another pitch, with the first one's Message-ID.
        let text = String(decoding: Self.pitch, as: UTF8.self)
        let other = Array(text.replacingOccurrences(of: "\n\n", with: "\n\nA different pitch, same Message-ID.\n",
                                                    options: [], range: text.range(of: "\n\n")).utf8)
        #expect(MessageDigest.of(Message(bytes: other), ownFields: .standard)
                != MessageDigest.of(Message(bytes: Self.pitch), ownFields: .standard))
        try deliver(other, "2.M1P1Q1.test")
        worker.scanAll(shouldStop: { false })
        #expect(try store.statistics().totals == learned, "nothing learned from it")
        // Classified: quarantined, or (after a release made its sender known) left with its verdict recorded;
        // which of the two is the classifier's business, not this test's.
        let verdict = try store.fileRecords(in: maildir.inbox.path)["2.M1P1Q1.test"]?.verdict
        let quarantined = try files(pitches)["new/2.M1P1Q1.test"] != nil
        let inInbox = try files(maildir.inbox)["new/2.M1P1Q1.test"] != nil
        #expect(quarantined != inInbox, "in one place")
        #expect(quarantined || verdict != nil, "classified")
    }

    /// Found by an audit: a held pitch moved out and back in under a new name before a scan saw it kept its record
    /// held for ever, beside a second one for the new file; a second delivery of the message was then taken for
    /// the first record's release and learned as ham, while the user's copy sat in the quarantine. The file come
    /// back takes over its record, and the delivery waits for the held copy's expunge, as any copy does.
    @Test func aPitchMovedOutAndBackInBeforeAScanKeepsOneRecord() throws {
        try deliver(Self.pitch, "1.M1P1Q1.test")
        let worker = try worker()
        worker.scanAll(shouldStop: { false })
        let first = try #require(try store.quarantineEntries(.states([.held])).first)
        let pitches = maildir.folder(".Pitches")
        let out = try pitches.move(try #require(try pitches.entry(unique: "1.M1P1Q1.test")), to: maildir.inbox, .cur,
                                   name: MaildirName("2.M1P1Q1.client:2,S"))
        _ = try maildir.inbox.move(out, to: pitches, .cur, name: MaildirName("3.M1P1Q1.client:2,S"))
        worker.scanAll(shouldStop: { false })
        let held = try store.quarantineEntries(.states([.held]))
        #expect(held.map(\.name) == ["3.M1P1Q1.client"])
        #expect(held.map(\.id) == [first.id])
        #expect(try store.statistics().totals == ClassTotals(pitch: 1, ham: 0))

        try deliver(Self.pitch, "4.M1P1Q1.test")
        worker.scanAll(shouldStop: { false })
        #expect(worker.needsRetry, "waits for a client's expunge of the held copy")
        #expect(try store.statistics().totals == ClassTotals(pitch: 1, ham: 0))
        #expect(try store.quarantineEntries(.states([.held])).map(\.name) == ["3.M1P1Q1.client"])
    }

    /// Found by an audit: a client without MOVE copied a held pitch to the INBOX (put off while the original was
    /// there), then copied it back into the quarantine before it expunged the INBOX copy. The INBOX copy was then
    /// taken for the first record's release, and ham learned for the message the user had just put back.
    @Test func aCopyPutOffWhileTheUserPutsTheMessageBackTeachesNoHam() throws {
        try deliver(Self.pitch, "1.M1P1Q1.test")
        let worker = try worker()
        worker.scanAll(shouldStop: { false })
        let pitches = maildir.folder(".Pitches")
        let quarantined = try #require(try files(pitches)["new/1.M1P1Q1.test"])
        try deliver(quarantined, "2.M1P1Q1.client:2,S", into: maildir.inbox, .cur)
        worker.scanAll(shouldStop: { false })
        #expect(worker.needsRetry, "put off while the quarantined copy is there")
        try pitches.remove(try #require(try pitches.entry(unique: "1.M1P1Q1.test")))
        try deliver(quarantined, "3.M1P1Q1.client:2,S", into: pitches, .cur)
        // Its arrival seen first (inotify), then the retry scan meets the INBOX copy again.
        worker.arrived(in: pitches, .cur, name: "3.M1P1Q1.client:2,S")
        worker.scanAll(shouldStop: { false })
        #expect(try store.statistics().totals == ClassTotals(pitch: 1, ham: 0))
        #expect(try store.quarantineEntries(.states([.held])).map(\.name) == ["3.M1P1Q1.client"])
        // The client expunges its INBOX copy: the message is where the user left it, learned as a pitch.
        try maildir.inbox.remove(try #require(try maildir.inbox.entry(unique: "2.M1P1Q1.client")))
        worker.scanAll(shouldStop: { false })
        #expect(try store.statistics().totals == ClassTotals(pitch: 1, ham: 0))
    }

    /// An IMAP client without MOVE: it copies the message into the INBOX (a new name, the same bytes) and flags
    /// the original \Deleted, which it may expunge much later.
    @Test func aCopyWhoseQuarantinedOriginalIsFlaggedDeletedTeachesHam() throws {
        try deliver(Self.pitch, "1.M1P1Q1.test")
        let worker = try worker()
        worker.scanAll(shouldStop: { false })
        let pitches = maildir.folder(".Pitches")
        let quarantined = try #require(try pitches.entry(unique: "1.M1P1Q1.test"))
        try deliver(try #require(try files(pitches)["new/1.M1P1Q1.test"]), "3.M1P1Q1.client:2,S", into: maildir.inbox,
                    .cur)
        try pitches.move(quarantined, to: pitches, .cur, name: MaildirName("1.M1P1Q1.test:2,ST"))
        worker.scanAll(shouldStop: { false })
        #expect(!worker.needsRetry)
        #expect(try store.statistics().totals == ClassTotals(pitch: 0, ham: 1))
        #expect(try store.quarantineEntries(.states([.released])).count == 1)
        #expect(try files(maildir.inbox).keys.sorted() == ["cur/3.M1P1Q1.client:2,S"])
    }

    /// Found by an audit: the user deleted a quarantined pitch, then its sender's server delivered the same bytes
    /// again. Taken for the copy moved out, it was learned as ham and left in the INBOX. With no field of ours, it
    /// never was in the quarantine: it is classified (quarantined again) and the first record closed as deleted.
    /// The copy itself, moved out under a client's name, is still a release.
    /// Found in review: any field of ours made it a release, and a milter upstream tags every delivery (a sender
    /// may add one too): only the status the service wrote, with the score it recorded, is the copy's.
    @Test(arguments: [(false, ""), (true, ""), (false, "X-Pitch-Status: ham, score=0.0100, version=upstream\n"),
                      (false, "X-Pitch-Anything: 1\n")])
    func theSameBytesDeliveredAgainAfterTheCopyWasDeletedAreNoRelease(movedOut: Bool, upstream: String) throws {
        try deliver(Self.pitch, "1.M1P1Q1.test")
        let worker = try worker()
        worker.scanAll(shouldStop: { false })
        let first = try #require(try store.quarantineEntries(.states([.held])).first)
        let pitches = maildir.folder(".Pitches")
        let copy = try #require(try files(pitches)["new/1.M1P1Q1.test"])
        try pitches.remove(try #require(try pitches.entry(unique: "1.M1P1Q1.test")))
        if movedOut {
            try deliver(copy, "2.M1P1Q1.client:2,S", into: maildir.inbox, .cur)
        } else {
            try deliver(Array(upstream.utf8) + Self.pitch, "2.M1P1Q1.test")
        }
        worker.scanAll(shouldStop: { false })
        #expect(!worker.needsRetry)
        if movedOut {
            #expect(try store.statistics().totals == ClassTotals(pitch: 0, ham: 1))
            #expect(try store.quarantineEntries(.states([.released])).map(\.id) == [first.id])
            #expect(try files(maildir.inbox).keys.sorted() == ["cur/2.M1P1Q1.client:2,S"])
            #expect(try files(pitches).isEmpty)
        } else {
            #expect(try store.statistics().totals == ClassTotals(pitch: 0, ham: 0))
            #expect(try store.quarantineEntries(.states([.deleted])).map(\.id) == [first.id])
            let held = try store.quarantineEntries(.states([.held]))
            #expect(held.map(\.name) == ["2.M1P1Q1.test"])
            #expect(held.map(\.id) != [first.id])
            #expect(try files(maildir.inbox).isEmpty)
            // Quarantined as the service tags any message: the upstream field of ours replaced by its own.
            expectTagged(try files(pitches)["new/2.M1P1Q1.test"], verdict: "pitch", original: Self.pitch)
        }
    }

    /// Quarantines a pitch, then puts the original back in the INBOX and the journal back to "moving", as if the
    /// service had been killed part-way; `withCopy: false` also removes the quarantined copy. Returns the entry.
    func interruptedQuarantine(withCopy: Bool) throws -> QuarantineEntry {
        try deliver(Self.pitch, "1.M1P1Q1.test")
        try worker().scanAll(shouldStop: { false })
        let pitches = maildir.folder(".Pitches")
        if !withCopy { try pitches.remove(try #require(try pitches.entry(unique: "1.M1P1Q1.test"))) }
        try deliver(Self.pitch, "1.M1P1Q1.test")
        var entry = try #require(try store.quarantineEntries(.states([.held])).first)
        entry.state = .moving
        // A finished move keeps no record of the original; an interrupted one left it pending.
        #expect(try store.fileRecords(in: maildir.inbox.path)["1.M1P1Q1.test"] == nil)
        try store.apply([.quarantine(entry), .file(FileRecord(folder: maildir.inbox.path, name: "1.M1P1Q1.test",
                                                              state: .pending, verdict: "pitch",
                                                              digest: MessageDigest.of(Message(bytes: Self.pitch), ownFields: .standard)),
                                                   at: 0)])
        return entry
    }

    /// Found by an audit: `show` of a move a kill interrupted before the copy said a mail client had moved or
    /// deleted the message; like `release` and `delete`, it says the move is under way.
    @Test func showOfAMoveInterruptedBeforeTheCopySaysItIsUnderWay() throws {
        let entry = try interruptedQuarantine(withCopy: false)
        let desk = QuarantineDesk(store: store, ownFields: .standard)
        #expect(throws: QuarantineDesk.Failure.beingMoved(entry.id, folder: ".Pitches")) { try desk.show(entry.id) }
        #expect(throws: QuarantineDesk.Failure.beingMoved(entry.id, folder: ".Pitches")) { try desk.delete(entry.id) }
    }

    @Test func aRestartFinishesAQuarantineMoveInterruptedAfterTheCopy() throws {
        let entry = try interruptedQuarantine(withCopy: true)
        try worker().scanAll(shouldStop: { false })
        #expect(try files(maildir.inbox).isEmpty)
        #expect(try files(maildir.folder(".Pitches")).count == 1)
        #expect(try store.quarantineEntries(.states([.held])).map(\.id) == [entry.id])
    }

    @Test func aRestartRedoesAQuarantineMoveThatNeverHappened() throws {
        let entry = try interruptedQuarantine(withCopy: false)
        try worker().scanAll(shouldStop: { false })
        #expect(try files(maildir.inbox).isEmpty)
        expectTagged(try files(maildir.folder(".Pitches"))["new/1.M1P1Q1.test"], verdict: "pitch", original: Self.pitch)
        #expect(try store.quarantineEntries(.states([.held, .moving])).map(\.id) == [entry.id])
    }

    @Test func aRestartKeepsTheTaggedCopyWhenTheOriginalWasNotYetRemoved() throws {
        let name = "1.M1P1Q1.test,S=\(Self.ham.count)"
        try deliver(Self.ham, name)
        try worker { $0.onHam = .tag }.scanAll(shouldStop: { false })
        let tagged = try files(maildir.inbox)
        // The original is back beside its tagged copy, older, and the journal says the tag was under way.
        try deliver(Self.ham, name)
        let old = timespec(tv_sec: 1_000_000, tv_nsec: 0)
        _ = utimensat(AT_FDCWD, maildir.inbox.path + "/new/" + name, [old, old], 0)
        let record = try #require(try store.fileRecords(in: maildir.inbox.path)["1.M1P1Q1.test"])
        try store.apply([.file(FileRecord(folder: record.folder, name: record.name, state: .pending,
                                          verdict: record.verdict, digest: record.digest), at: 0)])
        try worker { $0.onHam = .tag }.scanAll(shouldStop: { false })
        #expect(try files(maildir.inbox) == tagged)
    }

    /// Found in review: of two tagged twins, the newer was kept even under the original's name, whose S= is not
    /// its size; Dovecot trusts S=. The one whose name is right is kept.
    @Test func ofTwoTaggedTwinsTheOneWhoseSizeIsRightIsKept() throws {
        let name = "1.M1P1Q1.test,S=\(Self.ham.count)"
        try deliver(Self.ham, name)
        try worker { $0.onHam = .tag }.scanAll(shouldStop: { false })
        let tagged = try files(maildir.inbox)
        let bytes = try #require(tagged.values.first)
        // The same tagged copy also under the original's name, newer, as a replacement left there would be.
        try deliver(bytes, name)
        let old = timespec(tv_sec: 1_000_000, tv_nsec: 0)
        _ = utimensat(AT_FDCWD, maildir.inbox.path + "/new/" + tagged.keys.first!.dropFirst(4), [old, old], 0)
        let record = try #require(try store.fileRecords(in: maildir.inbox.path)["1.M1P1Q1.test"])
        try store.apply([.file(FileRecord(folder: record.folder, name: record.name, state: .pending,
                                          verdict: record.verdict, digest: record.digest), at: 0)])
        try worker { $0.onHam = .tag }.scanAll(shouldStop: { false })
        #expect(try files(maildir.inbox) == tagged)
    }

    /// The service forgets a released or deleted message's record 90 days after its quarantine.
    @Test func settledRecordsAreForgottenAfterNinetyDays() throws {
        let now: Int64 = 1_800_000_000
        let day: Int64 = 86_400
        let records: [(String, QuarantineState, Int64)] = [
            ("released-old", .released, now - 91 * day), ("released-new", .released, now - 89 * day),
            ("deleted-old", .deleted, now - 91 * day), ("held-old", .held, now - 400 * day),
        ]
        try store.apply(records.map { id, state, at in
            .quarantine(QuarantineEntry(id: id, mailbox: maildir.root, folder: ".Pitches", name: id, digest: [1],
                                        messageID: "", sender: "", subject: "", score: 1, state: state, at: at))
        })
        try MaildirService.forgetSettledRecords(in: store, now: now)
        #expect(try store.quarantineEntries(.states(Set(QuarantineState.allCases))).map(\.id).sorted()
            == ["held-old", "released-new"])
    }

    /// Found by an audit: a mail client moving a new message to cur/ (Dovecot does, as soon as it has the INBOX
    /// open) or deleting it while the service classified it got it back twice, or back from the dead; and the
    /// untagged twin of a quarantined pitch was then taken for a release and learned as ham.
    @Test(arguments: [
        ("1.M1P1Q1.test", "quarantine", "move"), ("1.M1P1Q1.test,S=1000", "quarantine", "move"),
        ("1.M1P1Q1.test", "quarantine", "delete"),
        ("1.M1P1Q1.test", "tag", "move"), ("1.M1P1Q1.test,S=1000", "tag", "move"),
        ("1.M1P1Q1.test", "tag", "delete"), ("1.M1P1Q1.test,S=1000", "tag", "delete"),
    ])
    func aMessageAClientTakesWhileItIsClassifiedIsLeftAsTheClientLeftIt(name: String, onPitch: String,
                                                                         client: String) throws {
        try deliver(Self.pitch, name)
        let worker = try worker { $0.onPitch = onPitch == "tag" ? .tag : .quarantine }
        worker.whileClassified = { entry in
            if client == "move" {
                #expect(rename(entry.path, self.maildir.inbox.path + "/cur/" + entry.name.fileName + ":2,S") == 0)
            } else {
                #expect(unlink(entry.path) == 0)
            }
        }
        worker.scanAll(shouldStop: { false })
        worker.whileClassified = { _ in }
        worker.scanAll(shouldStop: { false })
        worker.scanAll(shouldStop: { false })
        let inbox = try files(maildir.inbox)
        #expect(inbox == (client == "move" ? ["cur/\(name):2,S": Self.pitch] : [:]), "\(inbox.keys.sorted())")
        #expect(try files(maildir.folder(".Pitches")).isEmpty)
        #expect(try store.statistics().totals == ClassTotals(pitch: 0, ham: 0), "nothing learned")
        #expect(try QuarantineDesk(store: store, ownFields: .standard).list().isEmpty)
    }

    /// Found by an audit: what a killed `quarantine release` left in tmp/ stayed there until the service's next
    /// start. Every full scan tidies it now.
    @Test func partialCopiesOfAKilledProcessAreRemovedWhileTheServiceRuns() throws {
        let worker = try worker()
        worker.scanAll(shouldStop: { false })
        var dead: pid_t = 4_000_000
        while kill(dead, 0) == 0 || errno != ESRCH { dead -= 1 }
        let left = maildir.inbox.path + "/tmp/1.M1P1Q1.test.P\(dead).pitchfilter"
        #expect(FileManager.default.createFile(atPath: left, contents: Data(Self.pitch)))
        let ours = maildir.inbox.path + "/tmp/2.M1P1Q1.mda"  // an MDA's, being written: not ours to touch
        #expect(FileManager.default.createFile(atPath: ours, contents: Data(Self.pitch)))
        worker.scanAll(shouldStop: { false })
        #expect(!FileManager.default.fileExists(atPath: left))
        #expect(FileManager.default.fileExists(atPath: ours))
    }

    /// Found by an audit: a message written straight into new/ (`cp`, not through tmp/) was classified half-written
    /// and tagged or moved so: the rest, written into the file replaced, was lost.
    @Test func aMessageStillBeingWrittenIntoNewIsLeftUntilItIsWhole() throws {
        let worker = try worker()
        let finishWriting = startWriting(Self.pitch, at: maildir.inbox.path + "/new/1.M1P1Q1.cp")
        worker.scanAll(shouldStop: { false })
        #expect(worker.needsRetry)
        #expect(try files(maildir.inbox) == ["new/1.M1P1Q1.cp": Array(Self.pitch[..<(Self.pitch.count / 2)])])
        finishWriting()
        worker.scanAll(shouldStop: { false })
        #expect(!worker.needsRetry)
        #expect(try files(maildir.inbox).isEmpty)
        expectTagged(try files(maildir.folder(".Pitches"))["new/1.M1P1Q1.cp"], verdict: "pitch", original: Self.pitch)
    }

    /// Found in review: a file written into the quarantine's cur/ by hand was learned from half its bytes, and its
    /// record named a digest no whole copy had, so it could never be released. It waits until it is whole.
    @Test func aMessageStillBeingWrittenIntoTheQuarantineIsLeftUntilItIsWhole() throws {
        let worker = try worker()
        worker.scanAll(shouldStop: { false })
        let pitches = maildir.folder(".Pitches")
        try pitches.create()
        let finishWriting = startWriting(Self.pitch, at: pitches.path + "/cur/1.M1P1Q1.cp:2,S")
        worker.scanAll(shouldStop: { false })
        #expect(worker.needsRetry)
        #expect(try store.statistics().totals == ClassTotals())
        #expect(try store.quarantineEntries(.states([.held])).isEmpty)
        finishWriting()
        worker.scanAll(shouldStop: { false })
        #expect(!worker.needsRetry)
        #expect(try store.statistics().totals == ClassTotals(pitch: 1, ham: 0))
        let held = try #require(try store.quarantineEntries(.states([.held])).first)
        let released = try QuarantineDesk(store: store, ownFields: .standard).release(held.id)
        #expect(try FileBytes.read(released, limit: 1 << 20) == Self.pitch)
    }

    /// Found by an audit: a database lock at a quarantine move's last step left its record "moving" (release and
    /// delete refused) until a restart; if the user moved the message out meanwhile, for good.
    @Test(arguments: [false, true])
    func aMoveStuckAtItsLastStepIsSettledAtTheNextScan(userMovedItOut: Bool) throws {
        try deliver(Self.pitch, "1.M1P1Q1.test")
        let worker = try worker()
        worker.scanAll(shouldStop: { false })
        var held = try #require(try store.quarantineEntries(.states([.held])).first)
        held.state = .moving  // as if the last write had failed
        try store.apply([.quarantine(held)])
        if userMovedItOut {
            let pitches = maildir.folder(".Pitches")
            try pitches.move(try #require(try pitches.entry(unique: "1.M1P1Q1.test")), to: maildir.inbox, .cur,
                             name: MaildirName("7.M1P1Q1.client:2,S"))
        }
        worker.scanAll(shouldStop: { false })
        let state = try #require(try store.quarantineEntries(.id(held.id)).first?.state)
        // Moved on by the user, it cannot be told from a copy a client kept while a crash interrupted an undone
        // move (see settleInterruptedMoves): settled, nothing learned, and the message there once.
        #expect(state == (userMovedItOut ? .deleted : .held))
        #expect(try store.statistics().totals == ClassTotals(pitch: 0, ham: 0))
        let copies = try files(maildir.inbox).count + files(maildir.folder(".Pitches")).count
        #expect(copies == 1)
    }

    /// Found in review: a crash between the quarantined copy and the original's removal, and a client filing the
    /// original meanwhile, left the message twice and learned the copy as a release. One file makes the move now:
    /// stopped after it was exchanged with the original (`exchanged`, tagged in the INBOX) or after it was renamed
    /// into quarantine (`moved`), the original left in tmp/ by the dead process, and a client acting meanwhile or
    /// not, the message ends once, and nothing is learned.
    @Test(arguments: [("exchanged", "none"), ("exchanged", "read"), ("moved", "none"), ("moved", "file")])
    func aQuarantineMoveStoppedAtAnyStepLeavesTheMessageOnce(step: String, client: String) throws {
        try deliver(Self.pitch, "1.M1P1Q1.test")
        try worker().scanAll(shouldStop: { false })
        let pitches = maildir.folder(".Pitches")
        let copy = try #require(try pitches.entry(unique: "1.M1P1Q1.test"))
        var held = try #require(try store.quarantineEntries(.states([.held])).first)
        // The state a kill -9 leaves: the record still moving, the original's pending, the original in tmp/ under
        // a dead process's name.
        held.state = .moving
        try store.apply([.quarantine(held), .file(FileRecord(folder: maildir.inbox.path, name: "1.M1P1Q1.test",
                                                              state: .pending, verdict: "pitch", digest: held.digest),
                                                   at: 1)])
        var dead: pid_t = 4_000_000
        while kill(dead, 0) == 0 || errno != ESRCH { dead -= 1 }
        #expect(FileManager.default.createFile(atPath: maildir.inbox.path + "/tmp/1.M1P1Q1.test.P\(dead).pitchfilter",
                                               contents: Data(Self.pitch)))
        if step == "exchanged" {
            let where_ = client == "read" ? "/cur/1.M1P1Q1.test:2," : "/new/1.M1P1Q1.test"
            #expect(rename(copy.path, maildir.inbox.path + where_) == 0)
        } else if client == "file" {
            let archive = maildir.folder(".Archive")
            try archive.create()
            #expect(rename(copy.path, archive.path + "/cur/1.M1P1Q1.test:2,S") == 0)
        }
        let restarted = try worker()
        restarted.scanAll(shouldStop: { false })
        restarted.scanAll(shouldStop: { false })
        #expect(try files(maildir.inbox).isEmpty)
        #expect(try FileManager.default.contentsOfDirectory(atPath: maildir.inbox.path + "/tmp").isEmpty)
        let quarantined = try files(pitches)
        let records = try store.quarantineEntries(.states(Set(QuarantineState.allCases)))
        if client == "file" {
            #expect(quarantined.isEmpty)
            #expect(try files(maildir.folder(".Archive")).count == 1)
            #expect(records.map(\.state) == [.deleted])
        } else {
            #expect(quarantined.count == 1, "\(quarantined.keys.sorted())")
            expectTagged(quarantined.values.first, verdict: "pitch", original: Self.pitch)
            #expect(records.filter { $0.state != .deleted }.map(\.state) == [.held])
        }
        #expect(try store.statistics().totals == ClassTotals(pitch: 0, ham: 0), "nothing learned")
    }

    /// Found in review: a move that kept failing made events of its own (the exchange, and the exchange back),
    /// which had it tried again at once, for ever. Until the next scan, events for it are left alone.
    @Test func aMoveThatFailsIsNotTriedAgainByItsOwnEvents() throws {
        try deliver(Self.pitch, "1.M1P1Q1.test")
        let worker = try worker()
        let pitches = maildir.folder(".Pitches")
        var attempts = 0
        worker.whileClassified = { _ in
            attempts += 1
            _ = rmdir(pitches.path + "/new")  // the folder cannot take it
        }
        worker.scanAll(shouldStop: { false })
        #expect(attempts == 1)
        #expect(worker.needsRetry)
        for _ in 0..<3 { worker.arrived(in: maildir.inbox, .new, name: "1.M1P1Q1.test") }
        #expect(attempts == 1, "not tried again by events")
        #expect(try files(maildir.inbox) == ["new/1.M1P1Q1.test": Self.pitch])
        worker.whileClassified = { _ in attempts += 1 }
        worker.scanAll(shouldStop: { false })
        #expect(attempts == 2, "tried again by the scan")
        #expect(try files(maildir.inbox).isEmpty)
        #expect(try files(pitches).count == 1)
    }

    /// Found in review: a client moving the message as Dovecot does (a link in the new folder, then the old name
    /// removed) while it was classified got it back twice: the events of the move given back had the service
    /// move it again before the client's removal. Those events are left for the next scan.
    @Test func aClientsMoveInProgressIsLeftToTheClient() throws {
        try deliver(Self.pitch, "1.M1P1Q1.test")
        let worker = try worker()
        let archive = maildir.folder(".Archive")
        try archive.create()
        var attempts = 0
        worker.whileClassified = { entry in
            attempts += 1
            if attempts == 1 { #expect(link(entry.path, archive.path + "/cur/2.M1P1Q1.client:2,S") == 0) }
        }
        worker.scanAll(shouldStop: { false })
        for _ in 0..<3 { worker.arrived(in: maildir.inbox, .new, name: "1.M1P1Q1.test") }
        #expect(attempts == 1)
        #expect(unlink(maildir.inbox.path + "/new/1.M1P1Q1.test") == 0, "the client's second half")
        worker.scanAll(shouldStop: { false })
        #expect(try files(maildir.inbox).isEmpty)
        #expect(try files(maildir.folder(".Pitches")).isEmpty)
        #expect(try files(archive) == ["cur/2.M1P1Q1.client:2,S": Self.pitch])
        #expect(try store.statistics().totals == ClassTotals(pitch: 0, ham: 0))
    }

    /// Found in review: a move a crash interrupted, of a message then classified otherwise, stayed "moving" for
    /// good, and `quarantine delete` refused it.
    @Test func anInterruptedMoveOfAMessageNoLongerQuarantinedIsSettled() throws {
        let entry = try interruptedQuarantine(withCopy: false)
        try worker { $0.onPitch = .leave }.scanAll(shouldStop: { false })
        #expect(try store.quarantineEntries(.id(entry.id)).first?.state == .deleted)
        #expect(try files(maildir.inbox) == ["new/1.M1P1Q1.test": Self.pitch])
    }

    /// A file of another message under the name in the quarantine folder is never replaced; the pitch is tagged
    /// where it is (found in review: retried, the move spun for ever).
    @Test func aNameTakenInTheQuarantineLeavesTheMessageWhereItWas() throws {
        let pitches = maildir.folder(".Pitches")
        try pitches.create()
        try deliver(Self.ham, "1.M1P1Q1.test", into: pitches)
        try deliver(Self.pitch, "1.M1P1Q1.test")
        let worker = try worker()
        worker.scanAll(shouldStop: { false })
        #expect(!worker.needsRetry, "tagged at once, not retried for ever")
        let inbox = try files(maildir.inbox)
        #expect(inbox.count == 1)
        expectTagged(inbox["new/1.M1P1Q1.test,S=\(inbox.values.first?.count ?? 0)"] ?? inbox["new/1.M1P1Q1.test"],
                     verdict: "pitch", original: Self.pitch)
        #expect(try files(pitches) == ["new/1.M1P1Q1.test": Self.ham])
    }

    /// Found in review: a user who moved the message into the quarantine folder under its own name while it was
    /// classified had their file, the only copy, removed as if it were the service's.
    @Test func theUsersOwnFileInTheQuarantineIsNeverTakenForOurs() throws {
        try deliver(Self.pitch, "1.M1P1Q1.test")
        let worker = try worker()
        let pitches = maildir.folder(".Pitches")
        try pitches.create()
        worker.whileClassified = { entry in
            #expect(rename(entry.path, pitches.path + "/new/" + entry.name.fileName) == 0)
        }
        worker.scanAll(shouldStop: { false })
        #expect(try files(maildir.inbox).isEmpty)
        #expect(try files(pitches) == ["new/1.M1P1Q1.test": Self.pitch])
    }

    /// Found by an audit: a `quarantine release` killed after it removed the quarantined copy, before it learned,
    /// failed when run again ("moved or deleted in a mail client"). Run again, it finishes.
    @Test func aStoppedReleaseIsFinishedByRunningItAgain() throws {
        try deliver(Self.pitch, "1.M1P1Q1.test")
        try worker().scanAll(shouldStop: { false })
        let held = try #require(try store.quarantineEntries(.states([.held])).first)
        let pitches = maildir.folder(".Pitches")
        let quarantined = try #require(try pitches.entry(unique: "1.M1P1Q1.test"))
        // What the release had done: its copy in the INBOX, the quarantined one removed; nothing learned yet.
        try deliver(Self.pitch, "1.M1P1Q1.test")
        try pitches.remove(quarantined)
        let desk = QuarantineDesk(store: store, ownFields: .standard)
        let path = try desk.release(held.id)
        #expect(path == maildir.inbox.path + "/new/1.M1P1Q1.test")
        #expect(!desk.bearsOurFields(atPath: path))
        #expect(try store.quarantineEntries(.id(held.id)).first?.state == .released)
        #expect(try store.statistics().totals == ClassTotals(pitch: 0, ham: 1))
        #expect(try files(maildir.inbox) == ["new/1.M1P1Q1.test": Self.pitch])
        // Run once more, it has nothing left to do.
        #expect(throws: QuarantineDesk.Failure.self) { try desk.release(held.id) }
    }

    /// Found by an audit: a quarantine folder `list` could not read (no permission) showed every message as gone.
    @Test func aFolderThatCannotBeReadIsNotCalledEmpty() throws {
        try deliver(Self.pitch, "1.M1P1Q1.test")
        try worker().scanAll(shouldStop: { false })
        let desk = QuarantineDesk(store: store, ownFields: .standard)
        #expect(try desk.list().map(\.unreadable) == [nil])
        // Root reads any directory, so the folder's new/ is made unreadable another way: a file in its place (the
        // message itself read by a client, in cur/).
        let folder = maildir.folder(".Pitches").path
        #expect(rename(folder + "/new/1.M1P1Q1.test", folder + "/cur/1.M1P1Q1.test:2,S") == 0)
        #expect(rmdir(folder + "/new") == 0)
        #expect(FileManager.default.createFile(atPath: folder + "/new", contents: Data()))
        let item = try #require(try desk.list().first)
        #expect(item.path == nil)
        #expect(item.unreadable?.contains("Not a directory") == true, "\(item.unreadable ?? "nil")")
    }

    @Test func releaseRestoresTheOriginalBytesAndTeachesHam() throws {
        try deliver(Self.pitch, "1.M1P1Q1.test")
        let worker = try worker()
        worker.scanAll(shouldStop: { false })
        let desk = QuarantineDesk(store: store, ownFields: .standard)
        let held = try #require(try desk.list().first?.entry)
        let id = held.id
        try store.apply([.quarantine(with(held) { $0.at = 1_000 })])  // quarantined long ago
        let before = Int64(time(nil))
        try desk.release(id)
        #expect(try files(maildir.inbox) == ["new/1.M1P1Q1.test": Self.pitch])
        // Stamped with the release, which the expiry of settled records counts from.
        #expect(try #require(try store.quarantineEntries(.id(id)).first).at >= before)
        #expect(try files(maildir.folder(".Pitches")).isEmpty)
        #expect(try store.statistics().totals == ClassTotals(pitch: 0, ham: 1))
        // The service sees the released message arrive and leaves it alone.
        worker.scanAll(shouldStop: { false })
        #expect(try files(maildir.inbox) == ["new/1.M1P1Q1.test": Self.pitch])
        #expect(throws: QuarantineDesk.Failure.notHeld(id, .released)) { try desk.release(id) }
    }

    /// Found by an audit: a client marks a message deleted (T) before it expunges it. Released with the mark, the
    /// message was expunged from the INBOX next; the release gives it back unmarked, its other flags kept.
    @Test(arguments: [("ST", "S"), ("T", ""), ("FS", "FS")])
    func aReleaseGivesTheMessageBackNotMarkedDeleted(flags: String, released: String) throws {
        try deliver(Self.pitch, "1.M1P1Q1.test")
        let worker = try worker()
        worker.scanAll(shouldStop: { false })
        let desk = QuarantineDesk(store: store, ownFields: .standard)
        let id = try #require(try desk.list().first?.entry.id)
        let pitches = maildir.folder(".Pitches")
        let copy = try #require(try pitches.entry(unique: "1.M1P1Q1.test"))
        _ = try pitches.move(copy, to: pitches, .cur, name: MaildirName("1.M1P1Q1.test:2," + flags))
        try desk.release(id)
        #expect(try files(maildir.inbox) == ["cur/1.M1P1Q1.test:2," + released: Self.pitch])
        #expect(try files(pitches).isEmpty)
    }

    /// Found in review: with another writer holding the database (a long `train`), a release moved the message to
    /// the INBOX and a delete removed it, and only then failed; `list` blamed a mail client. Both now fail before
    /// touching a file, and work once the lock is free.
    @Test func aLockedDatabaseFailsReleaseAndDeleteBeforeAnyFileMoves() throws {
        try deliver(Self.pitch, "1.M1P1Q1.test")
        let worker = try worker()
        worker.scanAll(shouldStop: { false })
        let id = try #require(try store.quarantineEntries(.states([.held])).first?.id)
        let pitches = maildir.folder(".Pitches")
        let before = try files(pitches)
        let release = try MilterFilterTests.holdWriteLock(store.path)
        let desk = QuarantineDesk(store: store, ownFields: .standard)
        #expect(throws: StoreError.self) { try desk.release(id) }
        #expect(throws: StoreError.self) { try desk.delete(id) }
        #expect(try files(pitches) == before)
        #expect(try files(maildir.inbox).isEmpty)
        release()
        try desk.release(id)
        #expect(try files(maildir.inbox) == ["new/1.M1P1Q1.test": Self.pitch])
    }

    /// Found in review: a purge asked the INBOX's names as it read them at its start, and a message the user moved
    /// back there during the purge was taken for one a client deleted, its record closed and the correction lost.
    /// Those whose file has gone are decided at the end, against the INBOX read afresh.
    @Test func aMessageMovedBackDuringAPurgeIsLeftForTheService() throws {
        try deliver(Self.pitch, "1.M1P1Q1.test")
        try deliver(Array("Message-ID: <second@example.com>\n".utf8) + Self.pitch, "2.M1P1Q1.test")
        try worker().scanAll(shouldStop: { false })
        let pitches = maildir.folder(".Pitches")
        let held = try store.quarantineEntries(.states([.held]))
        #expect(held.count == 2)
        var desk = QuarantineDesk(store: store, ownFields: .standard)
        var movedBack: QuarantineEntry?
        desk.beforeRemoving = { [maildir] removing in
            guard movedBack == nil, let other = held.first(where: { $0.name != removing.name.unique }),
                  let file = try? pitches.entry(unique: other.name) else { return }
            movedBack = other
            _ = try? pitches.move(file, to: maildir.inbox, .cur, name: MaildirName(other.name + ":2,S"))
        }
        #expect(try desk.purge(olderThan: 0, now: Int64(time(nil)) + 86_400)
            == QuarantineDesk.Purge(deleted: 1, alreadyGone: 0, backInTheInbox: 1, notMatching: 0, folderGone: 0))
        let back = try #require(movedBack)
        #expect(try store.quarantineEntries(.states([.held])).map(\.id) == [back.id])
        #expect(try files(maildir.inbox).keys.sorted() == ["cur/" + back.name + ":2,S"])
        #expect(try files(pitches).isEmpty)
    }

    /// Found in review: a delete removed the first file of the record's name, and following a renamed copy every
    /// one: the user's own message of that name too, above all in new/ while the quarantined copy had been
    /// renamed into cur/ (Dovecot does so when the folder is opened). Only the message itself is removed or
    /// shown; where no file of the name is the message, nothing is done.
    @Test(arguments: [false, true])
    func aDeleteLeavesTheUsersOwnFileOfTheSameName(quarantinedCopyRenamed: Bool) throws {
        try deliver(Self.pitch, "1.M1P1Q1.test")
        let worker = try worker()
        worker.scanAll(shouldStop: { false })
        let pitches = maildir.folder(".Pitches")
        let id = try #require(try store.quarantineEntries(.states([.held])).first?.id)
        let held = try #require(try pitches.entry(unique: "1.M1P1Q1.test"))
        let tagged = try #require(try held.read(limit: 1 << 20))
        var expected: [String: [UInt8]]
        if quarantinedCopyRenamed {
            try pitches.move(held, to: pitches, .cur, name: MaildirName("1.M1P1Q1.test:2,S"))
            try deliver(Self.ham, "1.M1P1Q1.test", into: pitches, .new)
            expected = ["new/1.M1P1Q1.test": Self.ham]
        } else {
            try deliver(Self.ham, "1.M1P1Q1.test:2,S", into: pitches, .cur)
            expected = ["cur/1.M1P1Q1.test:2,S": Self.ham]
        }
        let desk = QuarantineDesk(store: store, ownFields: .standard)
        #expect(try desk.show(id) == tagged)
        try desk.delete(id)
        #expect(try files(pitches) == expected)

        // Only the user's file of that name left, and another message quarantined under it: refused, kept.
        try deliver(Self.pitchAgain, "5.M1P1Q1.test")
        worker.scanAll(shouldStop: { false })
        let second = try #require(try store.quarantineEntries(.states([.held])).first)
        try pitches.remove(try #require(try pitches.entry(unique: second.name)))
        try deliver(Self.ham, second.name, into: pitches, .new)
        #expect(throws: QuarantineDesk.Failure.otherHeaderSettings(second.id)) { try desk.delete(second.id) }
        // A purge passes it by, leaving it held and counted, and does not stop there.
        #expect(try desk.purge(olderThan: 0, now: Int64(time(nil)) + 86_400)
            == QuarantineDesk.Purge(deleted: 0, alreadyGone: 0, backInTheInbox: 0, notMatching: 1, folderGone: 0))
        #expect(try store.quarantineEntries(.states([.held])).map(\.id) == [second.id])
        #expect(try files(pitches)["new/" + second.name] == Self.ham)
    }

    /// Found in review: run as root, the quarantine lock's file was given to the database's owner whatever it was,
    /// and the service's user could put a hard link to a file of root's there. Only a lock file root makes is
    /// given away; one found there is opened read-only and left as it is.
    @Test(.enabled(if: geteuid() == 0))
    func asRootOnlyALockFileItMadeIsGivenToTheDatabasesOwner() throws {
        let lock = store.path + "-quarantine.lock"
        try #require(chown(store.path, 4242, 4242) == 0)
        let desk = QuarantineDesk(store: store, ownFields: .standard)
        #expect(throws: QuarantineDesk.Failure.unknownID("0123456789abcdef")) { try desk.delete("0123456789abcdef") }
        var info = stat()
        #expect(stat(lock, &info) == 0 && info.st_uid == 4242 && info.st_mode & 0o777 == 0o644)

        unlink(lock)
        let rootsOwn = root + "/roots-own"
        try Data("secret".utf8).write(to: URL(fileURLWithPath: rootsOwn))
        try #require(chmod(rootsOwn, 0o600) == 0 && link(rootsOwn, lock) == 0)
        #expect(throws: QuarantineDesk.Failure.unknownID("0123456789abcdef")) { try desk.delete("0123456789abcdef") }
        #expect(stat(rootsOwn, &info) == 0 && info.st_uid == 0 && info.st_mode & 0o777 == 0o600)
    }

    /// Found in review: a client renaming the quarantined copy (new/ to cur/ with a flag, as Dovecot does when the
    /// folder is opened) while a release or delete removed it left the renamed copy there, unlisted: after a
    /// release a duplicate, after a delete mail not deleted. The removal follows the rename.
    @Test(arguments: [true, false])
    func aCopyRenamedByAClientWhileReleasedOrDeletedIsStillRemoved(releasing: Bool) throws {
        try deliver(Self.pitch, "1.M1P1Q1.test")
        let worker = try worker()
        worker.scanAll(shouldStop: { false })
        var desk = QuarantineDesk(store: store, ownFields: .standard)
        let id = try #require(try desk.list().first?.entry.id)
        let pitches = maildir.folder(".Pitches")
        var renamed = false
        desk.beforeRemoving = { entry in
            if (try? pitches.move(entry, to: pitches, .cur, name: MaildirName("1.M1P1Q1.test:2,S"))) != nil {
                renamed = true
            }
        }
        defer { #expect(renamed, "the client's rename did not happen: the case was not tried") }
        if releasing {
            try desk.release(id)
            #expect(try files(maildir.inbox) == ["new/1.M1P1Q1.test": Self.pitch])
        } else {
            try desk.delete(id)
            #expect(try files(maildir.inbox).isEmpty)
        }
        #expect(try files(pitches).isEmpty)
    }

    /// Found by an audit: a message the user moved back to the INBOX just as a purge or a delete removed it (the removal
    /// found no file) had its record closed as deleted, and the move was never learned as ham. It is left held, for the
    /// service, as one found back there before.
    /// Moved under its name, or copied under a new one as IMAP's MOVE does (found in review).
    @Test(arguments: [false, true], [false, true])
    func aMessageMovedBackAsItIsRemovedIsLeftForTheService(purging: Bool, underANewName: Bool) throws {
        try deliver(Self.pitch, "1.M1P1Q1.test")
        try worker().scanAll(shouldStop: { false })
        var desk = QuarantineDesk(store: store, ownFields: .standard)
        let id = try #require(try desk.list().first?.entry.id)
        let name = underANewName ? "7.M7P7Q7.test:2,S" : "1.M1P1Q1.test:2,S"
        let back = maildir.inbox.path + "/cur/" + name
        var moved = false
        desk.beforeRemoving = { entry in
            moved = underANewName
                ? FileManager.default.createFile(atPath: back, contents: FileManager.default.contents(atPath: entry.path))
                    && unlink(entry.path) == 0
                : rename(entry.path, back) == 0
        }
        if purging {
            #expect(try desk.purge(olderThan: 0, now: Int64(time(nil)) + 86_400)
                == QuarantineDesk.Purge(backInTheInbox: 1))
        } else {
            #expect(throws: QuarantineDesk.Failure.backInTheInbox(id, path: back, byHand: true)) { try desk.delete(id) }
        }
        #expect(moved, "the user's move was not made: the case was not tried")
        #expect(try store.quarantineEntries(.id(id)).first?.state == .held)
        #expect(try files(maildir.inbox).keys.sorted() == ["cur/" + name])
    }

    /// Found by an audit: the user moving the quarantined copy to the INBOX while a release ran left the message there
    /// twice, the release's copy and theirs (6 of 60 tries with a move 0-30 ms after the release began). Theirs
    /// stays, moved by a rename or copied under a new name (as IMAP's MOVE does), and the release's goes; the answer
    /// names theirs, which keeps our field.
    /// Ours is known by its inode where the user's client renamed it meanwhile (new/ to cur/; found in review).
    @Test(arguments: [false, true], [false, true])
    func aReleaseLeavesOneCopyWhenTheUserMovesTheMessageMeanwhile(copiedUnderANewName: Bool, oursRenamed: Bool) throws {
        try deliver(Self.pitch, "1.M1P1Q1.test")
        try worker().scanAll(shouldStop: { false })
        var desk = QuarantineDesk(store: store, ownFields: .standard)
        let id = try #require(try desk.list().first?.entry.id)
        let theirs = maildir.inbox.path + (copiedUnderANewName ? "/cur/7.M7P7Q7.test:2,S" : "/cur/1.M1P1Q1.test:2,S")
        var moved = false
        let inbox = maildir.inbox.path
        desk.beforeRemoving = { entry in
            if copiedUnderANewName {
                moved = FileManager.default.createFile(atPath: theirs, contents: FileManager.default.contents(
                    atPath: entry.path)) && unlink(entry.path) == 0
            } else {
                moved = rename(entry.path, theirs) == 0
            }
            if oursRenamed {
                moved = moved && rename(inbox + "/new/1.M1P1Q1.test", inbox + "/cur/1.M1P1Q1.test:2,") == 0
            }
        }
        let path = try desk.release(id)
        #expect(moved, "the user's move was not made: the case was not tried")
        #expect(path == theirs)
        #expect(try files(maildir.inbox).keys.sorted() == [String(theirs.dropFirst(maildir.inbox.path.count + 1))])
        #expect(desk.bearsOurFields(atPath: path))
        #expect(try files(maildir.folder(".Pitches")).isEmpty)
        #expect(try store.quarantineEntries(.id(id)).first?.state == .released)
    }

    /// A client that renames by link and unlink, caught between the two, or that copies: the other file of the
    /// message is removed too (found by an audit: a copy was left, its record closed as deleted, by a removal that
    /// did not look again once the name it removed was the file's last). A purge looks once for all its messages,
    /// at its end.
    @Test(arguments: [false, true], [false, true])
    func aDeleteFollowsACopyUnderAnotherName(copied: Bool, purging: Bool) throws {
        try deliver(Self.pitch, "1.M1P1Q1.test")
        try worker().scanAll(shouldStop: { false })
        var desk = QuarantineDesk(store: store, ownFields: .standard)
        let id = try #require(try desk.list().first?.entry.id)
        let pitches = maildir.folder(".Pitches")
        var linked = false
        desk.beforeRemoving = { entry in
            let other = pitches.path + "/cur/1.M1P1Q1.test:2,S"
            linked = copied ? FileManager.default.createFile(atPath: other, contents: FileManager.default.contents(
                atPath: entry.path)) : link(entry.path, other) == 0
        }
        if purging {
            #expect(try desk.purge(olderThan: 0, now: Int64(time(nil)) + 86_400) == QuarantineDesk.Purge(deleted: 1))
        } else {
            try desk.delete(id)
        }
        #expect(linked, "the client's link was not made: the case was not tried")
        #expect(try files(pitches).isEmpty)
        #expect(try files(maildir.inbox).isEmpty)
        #expect(try store.quarantineEntries(.id(id)).first?.state == .deleted)
    }

    /// Found in review: a purge closes the records of the messages it removed at its end, and the service may have
    /// reused one meanwhile for the same message quarantined again under another name. Closed from what the purge
    /// had read, the record lost the new name, and the new file stayed in the folder, unlisted, for no purge to find.
    @Test func aPurgeLeavesARecordTheServiceReusedMeanwhile() throws {
        try deliver(Self.pitch, "1.M1P1Q1.test")
        try deliver(Array("Message-ID: <second@example.com>\n".utf8) + Self.pitch, "2.M2P2Q2.test")
        try worker().scanAll(shouldStop: { false })
        let pitches = maildir.folder(".Pitches")
        var desk = QuarantineDesk(store: store, ownFields: .standard)
        var first: (name: String, bytes: [UInt8])?
        var reused: QuarantineEntry?
        desk.beforeRemoving = { [store, maildir] entry in
            guard let earlier = first else {
                first = (entry.name.unique, (try? entry.read(limit: 1 << 20)) ?? [])
                return
            }
            guard reused == nil, var record = try? store.quarantineEntries(.states([.held]))
                .first(where: { $0.name == earlier.name }) else { return }
            record.name = "9.M9P9Q9.test"
            record.at = Int64(time(nil))
            _ = try? maildir.folder(".Pitches").deliver([earlier.bytes[...]], into: .cur,
                                                        name: MaildirName("9.M9P9Q9.test:2,S"))
            try? store.apply([.quarantine(record)])
            reused = record
        }
        #expect(try desk.purge(olderThan: 0, now: Int64(time(nil)) + 86_400) == QuarantineDesk.Purge(deleted: 1))
        let record = try #require(reused, "the record was not reused: the case was not tried")
        #expect(try store.quarantineEntries(.id(record.id)).first == record)
        #expect(try files(pitches).keys.sorted() == ["cur/9.M9P9Q9.test:2,S"])
        #expect(try desk.list().map(\.path) == [pitches.path + "/cur/9.M9P9Q9.test:2,S"])
    }

    /// A purge that stops part-way (here the database locked by another writer) has closed the records of what it
    /// removed before, a few hundred at a time, rather than leaving them all held with their files gone; the next
    /// purge closes the last.
    @Test func aPurgeThatStopsHasClosedWhatItRemovedBefore() throws {
        for n in 1...3 {
            try deliver(Array("Message-ID: <m\(n)@example.com>\n".utf8) + Self.pitch, "\(n).M\(n)P\(n)Q\(n).test")
        }
        try worker().scanAll(shouldStop: { false })
        let impatient = try SQLiteTokenStore(path: store.path, tokenizerIdentity: Engine.tokenizerIdentity,
                                             access: .readWrite, busyTimeoutMilliseconds: 50)
        var desk = QuarantineDesk(store: impatient, ownFields: .standard)
        desk.purgeClosesEvery = 1
        var removals = 0
        var letGo: (() -> Void)?
        desk.beforeRemoving = { _ in
            removals += 1
            if removals == 3 { letGo = try? MilterFilterTests.holdWriteLock(self.store.path) }
        }
        #expect(throws: StoreError.self) { try desk.purge(olderThan: 0, now: Int64(time(nil)) + 86_400) }
        let held = try #require(letGo, "the write lock was not taken: the case was not tried")
        held()
        #expect(try store.quarantineEntries(.states([.deleted])).count == 2)
        #expect(try store.quarantineEntries(.states([.held])).count == 1)
        #expect(try files(maildir.folder(".Pitches")).isEmpty)
        #expect(try desk.purge(olderThan: 0, now: Int64(time(nil)) + 86_400) == QuarantineDesk.Purge(alreadyGone: 1))
    }

    /// Found by an audit: a client renaming the quarantined file between the folder's read and the file's had the
    /// command take it for another message and blame the [header] settings. It is looked for again; one renamed at
    /// every look is said to be.
    @Test(arguments: [1, Int.max])
    func aFileRenamedAsItIsReadIsLookedForAgain(renames: Int) throws {
        try deliver(Self.pitch, "1.M1P1Q1.test")
        try worker().scanAll(shouldStop: { false })
        var desk = QuarantineDesk(store: store, ownFields: .standard)
        let id = try #require(try desk.list().first?.entry.id)
        let pitches = maildir.folder(".Pitches")
        var renamed = 0
        desk.beforeReading = { entry in
            guard renamed < renames else { return }
            let flags = entry.name.fileName.hasSuffix(",S") ? "" : "S"
            if (try? pitches.move(entry, to: pitches, .cur, name: MaildirName("1.M1P1Q1.test:2," + flags))) != nil {
                renamed += 1
            }
        }
        if renames == 1 {
            try desk.delete(id)
            #expect(renamed == 1)
            #expect(try files(pitches).isEmpty)
            #expect(try store.quarantineEntries(.id(id)).first?.state == .deleted)
        } else {
            #expect(throws: QuarantineDesk.Failure.keptRenaming(id, folder: ".Pitches")) { try desk.delete(id) }
            #expect(try files(pitches).count == 1)
            #expect(try store.quarantineEntries(.id(id)).first?.state == .held)
        }
    }

    /// Found by an audit: one symbolic link where a quarantined file was stopped every purge, for good, after some
    /// messages had gone, and said nothing was done. The others are deleted, the link left, and it is counted.
    @Test func aPurgeGoesOnPastAMessageItCannotDelete() throws {
        try deliver(Self.pitch, "1.M1P1Q1.test")
        try deliver(Array("Message-ID: <second@example.com>\n".utf8) + Self.pitch, "2.M2P2Q2.test")
        try worker().scanAll(shouldStop: { false })
        let pitches = maildir.folder(".Pitches")
        let first = try #require(try pitches.entry(unique: "1.M1P1Q1.test"))
        #expect(unlink(first.path) == 0 && symlink("/dev/null", first.path) == 0)
        let desk = QuarantineDesk(store: store, ownFields: .standard)
        let purged = try desk.purge(olderThan: 0, now: Int64(time(nil)) + 86_400)
        #expect(purged.deleted == 1 && purged.failed == 1 && purged.alreadyGone == 0)
        #expect(purged.firstFailure?.contains("is not a regular file") == true)
        let left = try MaildirFolder.Subdirectory.allCases.flatMap { try pitches.entries(in: $0) }
        #expect(left.map(\.path) == [first.path] && !left[0].isRegularFile)
        #expect(try store.quarantineEntries(.states([.held])).map(\.name) == ["1.M1P1Q1.test"])
    }

    /// Found by an audit: a release that failed to learn (a full disk) after the message was back in the INBOX
    /// said only that the database could not be written. It says where the message is and to run it again, which
    /// finishes it.
    @Test func aReleaseThatCannotFinishSaysTheMessageIsBackAndFinishesWhenRunAgain() throws {
        try deliver(Self.pitch, "1.M1P1Q1.test")
        let worker = try worker()
        worker.scanAll(shouldStop: { false })
        let impatient = try SQLiteTokenStore(path: store.path, tokenizerIdentity: Engine.tokenizerIdentity,
                                             access: .readWrite, busyTimeoutMilliseconds: 50)
        var desk = QuarantineDesk(store: impatient, ownFields: .standard)
        let id = try #require(try desk.list().first?.entry.id)
        let learned = try store.statistics().totals
        var letGo: (() -> Void)?
        desk.beforeRemoving = { _ in letGo = try? MilterFilterTests.holdWriteLock(self.store.path) }
        let inbox = maildir.inbox.path + "/new/1.M1P1Q1.test"
        do {
            try desk.release(id)
            Issue.record("the release finished with the database locked")
        } catch let failure as QuarantineDesk.Failure {
            guard case .releasedNotFinished(id, inbox, let reason) = failure else {
                Issue.record("\(failure)")
                return
            }
            #expect(failure.description.hasPrefix("message \(id) is back in the INBOX (\(inbox)), but the release "
                + "could not finish: \(reason); run it again"))
        }
        let held = try #require(letGo, "the write lock was not taken: the case was not tried")
        held()
        #expect(try files(maildir.inbox) == ["new/1.M1P1Q1.test": Self.pitch])
        #expect(try store.statistics().totals == learned)
        // Listed as back in the INBOX, not as gone.
        let listed = try #require(try desk.list().first)
        #expect(listed.path == nil && listed.releasedTo == inbox && !listed.movedBackByHand)
        desk.beforeRemoving = { _ in }
        #expect(try desk.release(id) == inbox)
        #expect(try files(maildir.inbox) == ["new/1.M1P1Q1.test": Self.pitch])
        #expect(try files(maildir.folder(".Pitches")).isEmpty)
        #expect(try store.statistics().totals.ham == learned.ham + 1)
        #expect(try store.quarantineEntries(.states([.released])).count == 1)
    }

    /// Found by an audit: a release that delivered its copy but could not remove the quarantined one (an immutable
    /// folder) was listed as plainly held, and `delete` then removed the quarantined copy and closed the record: the
    /// INBOX copy stayed, never learned as ham. It is listed as back in the INBOX, `delete` leaves it, and the
    /// release run again finishes.
    @Test func aReleaseStoppedBeforeItRemovedTheQuarantinedCopyIsNotDeleted() throws {
        try deliver(Self.pitch, "1.M1P1Q1.test")
        let worker = try worker()
        worker.scanAll(shouldStop: { false })
        var desk = QuarantineDesk(store: store, ownFields: .standard)
        let id = try #require(try desk.list().first?.entry.id)
        let learned = try store.statistics().totals
        // A directory in the file's place: the removal fails, as in a folder it may not change.
        let moved = maildir.root + "/set-aside"
        var quarantined = ""
        desk.beforeRemoving = { entry in
            quarantined = entry.path
            #expect(rename(entry.path, moved) == 0 && mkdir(entry.path, 0o700) == 0)
        }
        let inbox = maildir.inbox.path + "/new/1.M1P1Q1.test"
        #expect(throws: QuarantineDesk.Failure.self) { try desk.release(id) }
        #expect(rmdir(quarantined) == 0 && rename(moved, quarantined) == 0)
        desk.beforeRemoving = { _ in }
        #expect(try files(maildir.inbox) == ["new/1.M1P1Q1.test": Self.pitch])
        let listed = try #require(try desk.list().first)
        #expect(listed.path == quarantined && listed.releasedTo == inbox && !listed.movedBackByHand)
        do {
            try desk.delete(id)
            Issue.record("deleted while its release had delivered it")
        } catch let failure as QuarantineDesk.Failure {
            guard case .backInTheInbox(id, inbox, byHand: false) = failure else {
                Issue.record("\(failure)")
                return
            }
        }
        #expect(try files(maildir.folder(".Pitches")).count == 1)
        #expect(try store.quarantineEntries(.states([.held])).map(\.id) == [id])
        #expect(try desk.release(id) == inbox)
        #expect(try files(maildir.inbox) == ["new/1.M1P1Q1.test": Self.pitch])
        #expect(try files(maildir.folder(".Pitches")).isEmpty)
        #expect(try store.statistics().totals.ham == learned.ham + 1)
    }

    /// Found by an audit: the service, seeing a released copy reach the INBOX before the release removed the
    /// quarantined one, removed it itself and logged that the release had stopped half-way, after every release
    /// run as root. A release under way holds the quarantine lock: the service still removes the copy, and says so
    /// in the debug log alone; a release that stopped is still said.
    @Test func theServiceTellsAReleaseUnderWayFromOneThatStopped() throws {
        try deliver(Self.pitch, "1.M1P1Q1.test")
        let lines = InMemoryLogHandler.keepingAll
        let worker = MailboxWorker(maildir: maildir, policy: MailboxPolicy(), cutoffs: .standard, reasons: false,
                                   ownFields: .standard, store: store,
                                   logger: Logger(label: "test", factory: { _ in lines }))
        try worker.prepare()
        worker.scanAll(shouldStop: { false })
        var desk = QuarantineDesk(store: store, ownFields: .standard)
        let id = try #require(try desk.list().first?.entry.id)
        #expect(!QuarantineDesk.isCommandRunning(databasePath: store.path))
        var scanned = false
        desk.beforeRemoving = { _ in
            #expect(QuarantineDesk.isCommandRunning(databasePath: self.store.path))
            worker.scanAll(shouldStop: { false })
            scanned = true
        }
        try desk.release(id)
        #expect(scanned)
        #expect(try files(maildir.inbox) == ["new/1.M1P1Q1.test": Self.pitch])
        #expect(try files(maildir.folder(".Pitches")).isEmpty)
        #expect(try store.quarantineEntries(.states([.released])).map(\.id) == [id])
        #expect(lines.all.contains { $0.hasPrefix("a release under way: ") })
        #expect(!lines.all.contains { $0.hasPrefix("finished a release") })

        // A release that stopped before it removed the quarantined copy (a directory in the file's place, as in a
        // folder it may not change): the service finishes it, and says so.
        try deliver(Array("Message-ID: <second@example.com>\n".utf8) + Self.pitch, "2.M2P2Q2.test")
        worker.scanAll(shouldStop: { false })
        let second = try #require(try desk.list().first?.entry.id)
        let moved = maildir.root + "/set-aside"
        var quarantined = ""
        desk.beforeRemoving = { entry in
            quarantined = entry.path
            #expect(rename(entry.path, moved) == 0 && mkdir(entry.path, 0o700) == 0)
        }
        #expect(throws: QuarantineDesk.Failure.self) { try desk.release(second) }
        #expect(rmdir(quarantined) == 0 && rename(moved, quarantined) == 0)
        worker.scanAll(shouldStop: { false })
        #expect(try files(maildir.folder(".Pitches")).isEmpty)
        #expect(try files(maildir.inbox).count == 2)
        #expect(lines.all.contains { $0.hasPrefix("finished a release that stopped before it removed") })
    }

    /// Found by an audit: a full disk was logged once for every message it stopped (up to the cap of 100 lines),
    /// where the README says the service logs the problem once. Other failures are still said one by one.
    @Test func aFullDiskOrAReadOnlyFolderIsLoggedOnceForAllTheMessagesItStops() throws {
        let lines = InMemoryLogHandler.keepingAll
        let worker = MailboxWorker(maildir: maildir, policy: MailboxPolicy(), cutoffs: .standard, reasons: false,
                                   ownFields: .standard, store: store,
                                   logger: Logger(label: "test", factory: { _ in lines }))
        for name in ["1.a.host", "2.b.host", "3.c.host"] {
            worker.failed("cannot handle \(name), left where it is",
                          MaildirError("write", maildir.inbox.path + "/tmp/" + name, errno: ENOSPC))
        }
        worker.failed("cannot handle 4.d.host, left where it is", MaildirError("open", "4.d.host", errno: EACCES))
        worker.failed("cannot handle 5.e.host, left where it is", MaildirError("open", "5.e.host", errno: EACCES))
        let said = lines.all
        #expect(said.count == 3, "\(said)")
        #expect(said.first?.hasPrefix("cannot handle 1.a.host, left where it is: ") == true)
        #expect(said.first?.hasSuffix(" (said once, for every message, until it works again)") == true)
        #expect(said.dropFirst().allSatisfy { !$0.contains("said once") && $0.contains("host, left where it is") })
        // The database's failures too: once for each.
        for name in ["6.f.host", "7.g.host"] {
            worker.failed("cannot handle \(name), left where it is", StoreError.diskFull(path: "/var/lib/db.sqlite"))
            worker.failed("cannot handle \(name), left where it is", StoreError.locked(path: "/var/lib/db.sqlite",
                                                                                      waitedMilliseconds: 2_000))
        }
        let database = lines.all.dropFirst(3)
        #expect(database.count == 2, "\(database)")
        #expect(database.first?.hasPrefix("cannot handle 6.f.host, left where it is: cannot write database ") == true)
        #expect(database.allSatisfy { $0.hasSuffix(" (said once, for every message, until it works again)") })
        // A directory that may not be changed (found by an audit: a read-only file system, a line a message): once
        // for each directory and reason. A file that may not be read is named each time (found in review).
        let tmp = maildir.inbox.path + "/tmp/"
        for (name, errno) in [("8.h.host", EROFS), ("9.i.host", EROFS), ("10.j.host", EACCES), ("11.k.host", EACCES)] {
            worker.failed("cannot handle \(name), left where it is", MaildirError("create", tmp + name, errno: errno))
        }
        worker.failed("cannot handle 12.l.host, left where it is",
                      MaildirError("create", maildir.folder(".Pitches").path + "/tmp/12.l.host", errno: EACCES))
        for name in ["13.m.host", "14.n.host"] {
            worker.failed("cannot handle \(name), left where it is",
                          MaildirError("open", maildir.inbox.path + "/new/" + name, errno: EACCES))
        }
        let directories = lines.all.dropFirst(5)
        #expect(directories.map { $0.prefix(while: { $0 != "," }) } == [
            "cannot handle 8.h.host", "cannot handle 10.j.host", "cannot handle 12.l.host", "cannot handle 13.m.host",
            "cannot handle 14.n.host",
        ], "\(directories)")
        #expect(directories.prefix(3).allSatisfy { $0.hasSuffix(" (said once, for every message, until it works again)") })
        #expect(directories.dropFirst(3).allSatisfy { !$0.contains("said once") })
        // Lines of their own stop at 100 in all (four above), and those said once for many neither count against
        // them nor are silenced by them (found in review: a folder of unreadable files silenced the full disk after
        // it).
        for index in 0..<150 {
            worker.failed("cannot handle \(index).x.host, left where it is",
                          MaildirError("open", maildir.inbox.path + "/new/\(index).x.host", errno: EACCES))
        }
        worker.failed("cannot handle 15.o.host, left where it is",
                      MaildirError("create", maildir.folder(".Sent").path + "/tmp/15.o.host", errno: EROFS))
        let later = lines.all.dropFirst(10)
        #expect(later.count == 100 - 4 + 1, "\(later.count)")
        #expect(later.last?.hasPrefix("cannot handle 15.o.host") == true)
    }

    /// Found in review: a release and a delete of one message from two shells each checked the record, both
    /// acted, both said so, and the one that settled last won. Quarantine commands now take turns: one waits while
    /// another holds the database's quarantine lock, then finds the record as the other left it.
    @Test func quarantineCommandsTakeTurns() throws {
        try deliver(Self.pitch, "1.M1P1Q1.test")
        let worker = try worker()
        worker.scanAll(shouldStop: { false })
        let desk = QuarantineDesk(store: store, ownFields: .standard)
        let id = try #require(try desk.list().first?.entry.id)

        let lock = open(store.path + "-quarantine.lock", O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        try #require(lock >= 0 && flock(lock, LOCK_EX) == 0)
        let released = Mutex<Result<String, any Error>?>(nil)
        let waiting = Mutex(false)
        let path = store.path
        Thread.detachNewThread {
            let outcome = Result { () throws -> String in
                let own = try SQLiteTokenStore(path: path, tokenizerIdentity: Engine.tokenizerIdentity,
                                               access: .readWrite)
                var desk = QuarantineDesk(store: own, ownFields: .standard)
                desk.whileTheLockIsHeld = { waiting.withLock { $0 = true } }
                return try desk.release(id)
            }
            released.withLock { $0 = outcome }
        }
        var waitedForTheLock = 0.0
        while !waiting.withLock({ $0 }), released.withLock({ $0 }) == nil, waitedForTheLock < 60 {
            Thread.sleep(forTimeInterval: 0.02)
            waitedForTheLock += 0.02
        }
        // Waiting for the lock: nothing moved yet.
        #expect(waiting.withLock { $0 })
        #expect(released.withLock { $0 } == nil)
        #expect(try files(maildir.folder(".Pitches")).count == 1)
        flock(lock, LOCK_UN)
        close(lock)
        var waited = 0.0
        while released.withLock({ $0 }) == nil, waited < 60 {  // long: a loaded CI machine is slow
            Thread.sleep(forTimeInterval: 0.02)
            waited += 0.02
        }
        #expect(try released.withLock { $0 }?.get().hasSuffix("/Maildir/new/1.M1P1Q1.test") == true)
        #expect(throws: QuarantineDesk.Failure.notHeld(id, .released)) { try desk.delete(id) }
        #expect(try files(maildir.inbox) == ["new/1.M1P1Q1.test": Self.pitch])
    }

    /// Found by an audit: the lock file is readable by all, so anyone who may read the database could hold it, and
    /// a command then waited for ever without a word. It waits a while, then says who to look for.
    @Test func aQuarantineLockHeldTooLongIsSaidAndNothingIsDone() throws {
        try deliver(Self.pitch, "1.M1P1Q1.test")
        let worker = try worker()
        worker.scanAll(shouldStop: { false })
        var desk = QuarantineDesk(store: store, ownFields: .standard)
        desk.lockWait = 0.3
        let id = try #require(try desk.list().first?.entry.id)
        let path = store.path + "-quarantine.lock"
        let lock = open(path, O_RDONLY | O_CREAT | O_CLOEXEC, 0o644)
        defer { close(lock) }
        try #require(lock >= 0 && flock(lock, LOCK_SH) == 0)
        #expect(throws: QuarantineDesk.Failure.lockHeld(path, seconds: 0.3)) { try desk.release(id) }
        #expect(throws: QuarantineDesk.Failure.lockHeld(path, seconds: 0.3)) { try desk.delete(id) }
        #expect(try files(maildir.folder(".Pitches")).count == 1)
        #expect(try files(maildir.inbox).isEmpty)
        flock(lock, LOCK_UN)
        try desk.delete(id)
    }

    /// Fields renamed in `[header]`: the quarantined copy carries the new name (and a forged one is gone), a
    /// release takes it off again, and the message is learned once.
    @Test func renamedFieldsAreWrittenAndTakenOffAgain() throws {
        let renamed = try OwnFields(status: "X-Cold-Pitch", reasons: "X-Cold-Pitch-Reasons")
        let forged = Array("X-Cold-Pitch: ham, score=0.0000\n".utf8) + Self.pitch
        try deliver(forged, "1.M1P1Q1.test")
        let worker = try worker(ownFields: renamed)
        worker.scanAll(shouldStop: { false })
        let held = try #require(try files(maildir.folder(".Pitches")).values.first)
        let lineEnd = try #require(held.firstIndex(of: 0x0A))
        #expect(String(decoding: held[..<lineEnd], as: UTF8.self).hasPrefix("X-Cold-Pitch: pitch, score="))
        #expect(Array(held[(lineEnd + 1)...]) == Self.pitch)

        let desk = QuarantineDesk(store: store, ownFields: renamed)
        try desk.release(try #require(try desk.list().first?.entry.id))
        #expect(try files(maildir.inbox) == ["new/1.M1P1Q1.test": Self.pitch])
        #expect(try store.statistics().totals == ClassTotals(pitch: 0, ham: 1))

        // Renamed again by a reload: the next message gets the new name, and a field forged under the old one goes.
        worker.update(policy: MailboxPolicy(), cutoffs: .standard, reasons: false,
                      ownFields: try OwnFields(status: "X-New", reasons: "X-New-Why", former: ["X-Cold-Pitch"]))
        let another = try Array(Data(contentsOf: Self.samples.appendingPathComponent("pitch/h-p-010.eml")))
        try deliver(Array("X-Cold-Pitch: ham\n".utf8) + another, "2.M1P1Q1.test")
        worker.scanAll(shouldStop: { false })
        // Held in its turn (with only a ham trained, the starter model scores alone, `ModelSchedule.scoredOwnTotals`).
        #expect(try files(maildir.inbox).keys.sorted() == ["new/1.M1P1Q1.test"])
        let second = try #require(try files(maildir.folder(".Pitches")).values.first)
        let end = try #require(second.firstIndex(of: 0x0A))
        #expect(String(decoding: second[..<end], as: UTF8.self).hasPrefix("X-New: pitch, score="))
        #expect(Array(second[(end + 1)...]) == another)
    }

    /// Found by an audit: a link put in place of the quarantined file was refused as "another configuration's",
    /// which sent the admin looking at the settings. Said as what it is, for every command; nothing is done.
    @Test func aLinkInPlaceOfTheQuarantinedFileIsSaidToBeOne() throws {
        try deliver(Self.pitch, "1.M1P1Q1.test")
        try worker().scanAll(shouldStop: { false })
        let held = try files(maildir.folder(".Pitches"))
        let name = try #require(held.keys.first)
        let path = maildir.folder(".Pitches").path + "/" + name
        let secret = directory.path + "/secret"
        try "not mail\n".write(toFile: secret, atomically: false, encoding: .utf8)
        #expect(unlink(path) == 0 && symlink(secret, path) == 0)
        let desk = QuarantineDesk(store: store, ownFields: .standard)
        let id = try #require(try desk.list().first?.entry.id)
        #expect(throws: QuarantineDesk.Failure.notAFile(id, path: path)) { try desk.release(id) }
        #expect(throws: QuarantineDesk.Failure.notAFile(id, path: path)) { try desk.delete(id) }
        #expect(try String(contentsOfFile: secret, encoding: .utf8) == "not mail\n")
        #expect(try files(maildir.inbox).isEmpty)
    }

    /// Found by an audit: `quarantine release` without the service's configuration read the copy with the
    /// standard field name and no Subject tag, gave it back with the service's field and tag still on, and learned
    /// it as a second message. It is refused instead, and the pitch stays where it is.
    @Test func aReleaseWithOtherHeaderSettingsIsRefused() throws {
        let configured = try OwnFields(status: "X-Cold-Pitch", reasons: "X-Cold-Pitch-Reasons")
            .withSubjectTag("[PITCH]")
        try deliver(Self.pitch, "1.M1P1Q1.test")
        try worker(ownFields: configured).scanAll(shouldStop: { false })
        let held = try files(maildir.folder(".Pitches"))
        #expect(held.count == 1)
        let id = try #require(try QuarantineDesk(store: store, ownFields: configured).list().first?.entry.id)
        let before = try store.statistics().totals

        #expect(throws: QuarantineDesk.Failure.otherHeaderSettings(id)) {
            try QuarantineDesk(store: store, ownFields: .standard).release(id)
        }
        #expect(try files(maildir.folder(".Pitches")) == held)
        #expect(try files(maildir.inbox).isEmpty)
        #expect(try store.statistics().totals == before)

        try QuarantineDesk(store: store, ownFields: configured).release(id)
        #expect(try files(maildir.inbox) == ["new/1.M1P1Q1.test": Self.pitch])
        #expect(try store.statistics().totals == ClassTotals(pitch: 0, ham: 1))
    }

    /// `[header] subject_tag`: the quarantined pitch's Subject carries the tag, a release gives the message back
    /// exactly as it came, and it is learned once. A pitch tagged where it is gets it too; ham does not.
    @Test func theSubjectTagIsWrittenAndTakenOffAgain() throws {
        let tagging = try OwnFields.standard.withSubjectTag("[PITCH]")
        try deliver(Self.pitch, "1.M1P1Q1.test")
        let worker = try worker(ownFields: tagging)
        worker.scanAll(shouldStop: { false })
        let held = try #require(try files(maildir.folder(".Pitches")).values.first)
        let lineEnd = try #require(held.firstIndex(of: 0x0A))
        #expect(String(decoding: held[..<lineEnd], as: UTF8.self).hasPrefix("X-Pitch-Status: pitch, score="))
        let original = String(decoding: Self.pitch, as: UTF8.self)
        let subject = "\nSubject: Photorealistic renders for your projects\n"
        #expect(original.contains(subject))
        #expect(String(decoding: held[(lineEnd + 1)...], as: UTF8.self)
            == original.replacingOccurrences(of: subject, with: "\nSubject: [PITCH] Photorealistic renders for your projects\n"))

        let desk = QuarantineDesk(store: store, ownFields: tagging)
        try desk.release(try #require(try desk.list().first?.entry.id))
        #expect(try files(maildir.inbox) == ["new/1.M1P1Q1.test": Self.pitch])
        #expect(try store.statistics().totals == ClassTotals(pitch: 0, ham: 1))

        // Tagged where it is: the pitch policy "tag" leaves it in the INBOX with the tag; ham keeps its Subject.
        var policy = MailboxPolicy()
        (policy.onPitch, policy.onUnsure, policy.onHam) = (.tag, .tag, .tag)
        worker.update(policy: policy, cutoffs: Cutoffs(pitch: 0.5, ham: 0.2)!, reasons: false, ownFields: tagging)
        let another = try Array(Data(contentsOf: Self.samples.appendingPathComponent("pitch/h-p-010.eml")))
        try deliver(another, "2.M1P1Q1.test")
        try deliver(Self.ham, "3.M1P1Q1.test")
        worker.scanAll(shouldStop: { false })
        let inbox = try files(maildir.inbox)
        let second = String(decoding: try #require(inbox["new/2.M1P1Q1.test"]), as: UTF8.self)
        #expect(second.hasPrefix("X-Pitch-Status: pitch, score="), "\(second.prefix(80))")
        #expect(second.contains("\nSubject: [PITCH] "))
        let third = String(decoding: try #require(inbox["new/3.M1P1Q1.test"]), as: UTF8.self)
        #expect(third.hasPrefix("X-Pitch-Status: ") && !third.hasPrefix("X-Pitch-Status: pitch"), "\(third.prefix(80))")
        #expect(!third.contains("[PITCH]"))
    }

    /// Found by two audits: a sender who began a Subject with our tag and forged a record of it lost the tag from
    /// the Subject. Now the service's edit takes no tag out and puts no second one in, its field records none, and
    /// a release gives the message back as it came, less the forged field: the sender's tag included.
    @Test func aSendersOwnTagStaysThroughTheQuarantineAndARelease() throws {
        let tagging = try OwnFields.standard.withSubjectTag("[PITCH]")
        let subject = "\nSubject: Photorealistic renders for your projects\n"
        let sendersOwn = String(decoding: Self.pitch, as: UTF8.self)
            .replacingOccurrences(of: subject, with: "\nSubject: [PITCH] Photorealistic renders for your projects\n")
        #expect(sendersOwn != String(decoding: Self.pitch, as: UTF8.self))
        try deliver(Array(("X-Pitch-Status: pitch, score=0.9999, version=x, tagged=[PITCH]\n" + sendersOwn).utf8),
                    "1.M1P1Q1.test")
        try worker(ownFields: tagging).scanAll(shouldStop: { false })
        let held = String(decoding: try #require(try files(maildir.folder(".Pitches")).values.first), as: UTF8.self)
        let lines = held.split(separator: "\n", maxSplits: 1, omittingEmptySubsequences: false)
        #expect(lines[0].hasPrefix("X-Pitch-Status: pitch, score=") && !lines[0].contains("tagged="), "\(lines[0])")
        #expect(lines.count == 2 && lines[1] == sendersOwn)

        let desk = QuarantineDesk(store: store, ownFields: tagging)
        try desk.release(try #require(try desk.list().first?.entry.id))
        #expect(try files(maildir.inbox) == ["new/1.M1P1Q1.test": Array(sendersOwn.utf8)])
    }

    /// Found in review: a release stopped after its INBOX delivery, which the service then learned and marked
    /// released, could not be finished, and left the message in both folders. Found by an audit: and no command
    /// showed it any more. The service finishes it: the quarantined copy goes.
    @Test func aReleaseInterruptedAfterItsDeliveryIsFinishedByTheService() throws {
        try deliver(Self.pitch, "1.M1P1Q1.test")
        let worker = try worker()
        worker.scanAll(shouldStop: { false })
        let desk = QuarantineDesk(store: store, ownFields: .standard)
        let id = try #require(try desk.list().first?.entry.id)
        // What the release had done when it was stopped: the original back in the INBOX, the copy still held.
        try deliver(Self.pitch, "1.M1P1Q1.test")
        // A client moves it to cur/, and the service learns it from there.
        try maildir.inbox.move(try #require(try maildir.inbox.entry(unique: "1.M1P1Q1.test")), to: maildir.inbox,
                               .cur, name: MaildirName("1.M1P1Q1.test:2,S"))
        worker.scanAll(shouldStop: { false })
        #expect(try store.quarantineEntries(.states([.released])).map(\.id) == [id])
        #expect(try files(maildir.inbox) == ["cur/1.M1P1Q1.test:2,S": Self.pitch])
        #expect(try files(maildir.folder(".Pitches")).isEmpty)
        #expect(try store.statistics().totals == ClassTotals(pitch: 0, ham: 1))
        #expect(throws: QuarantineDesk.Failure.notHeld(id, .released)) { try desk.release(id) }
    }

    /// Found by an audit: `release` while the service was moving the message took the original, still in the
    /// INBOX, for an earlier release's copy and removed the quarantined one; the service then removed the original.
    @Test func aMessageStillBeingMovedIsNotReleasedOrDeleted() throws {
        let entry = try interruptedQuarantine(withCopy: true)
        let desk = QuarantineDesk(store: store, ownFields: .standard)
        #expect(throws: QuarantineDesk.Failure.beingMoved(entry.id, folder: ".Pitches")) { try desk.release(entry.id) }
        #expect(throws: QuarantineDesk.Failure.beingMoved(entry.id, folder: ".Pitches")) { try desk.delete(entry.id) }
        #expect(try files(maildir.inbox).count == 1)
        #expect(try files(maildir.folder(".Pitches")).count == 1)
    }

    /// Found by an audit: a release found another message under the same name in the INBOX, took it for its own
    /// copy and removed the quarantined one. Both stay, under two names.
    /// Also for a unique name near a file name's 255 bytes, which the fresh name once overran (found in review).
    @Test(arguments: ["1.M1P1Q1.test", "1.M1P1Q1." + String(repeating: "h", count: 230)])
    func aReleaseDoesNotTakeAnotherMessageWithTheSameNameForItsCopy(name: String) throws {
        let id = try quarantinedWithItsNameTaken(name: name).id
        let desk = QuarantineDesk(store: store, ownFields: .standard)
        let path = try desk.release(id)
        #expect(!path.hasSuffix("/" + name))
        let inbox = try files(maildir.inbox)
        #expect(inbox.count == 2)
        #expect(inbox["new/" + name] == Self.ham)
        #expect(inbox.values.contains(Self.pitch))
        #expect(try files(maildir.folder(".Pitches")).isEmpty)
    }

    @Test(arguments: ["../../etc/passwd", "0123456789abcdeg", "", "0123456789abcdef"])
    func anythingButAKnownIdIsRefused(id: String) throws {
        let desk = QuarantineDesk(store: store, ownFields: .standard)
        #expect(throws: QuarantineDesk.Failure.unknownID(id)) { try desk.show(id) }
        #expect(throws: QuarantineDesk.Failure.unknownID(id)) { try desk.delete(id) }
    }

    @Test func purgeDeletesOnlyWhatIsOlderThanTheCutoff() throws {
        try deliver(Self.pitch, "1.M1P1Q1.test")
        try worker().scanAll(shouldStop: { false })
        let desk = QuarantineDesk(store: store, ownFields: .standard)
        #expect(try desk.purge(olderThan: 1) == QuarantineDesk.Purge(deleted: 0, alreadyGone: 0, backInTheInbox: 0, notMatching: 0, folderGone: 0))
        // Found by an audit: days past what 64-bit seconds hold trapped on overflow.
        #expect(try desk.purge(olderThan: Int.max) == QuarantineDesk.Purge(deleted: 0, alreadyGone: 0, backInTheInbox: 0, notMatching: 0, folderGone: 0))
        #expect(try desk.purge(olderThan: 1, now: Int64(Date().timeIntervalSince1970) + 2 * 86_400) == QuarantineDesk.Purge(deleted: 1, alreadyGone: 0, backInTheInbox: 0, notMatching: 0, folderGone: 0))
        #expect(try files(maildir.folder(".Pitches")).isEmpty)
        #expect(try desk.list().isEmpty)
    }

    /// Found by an audit: purge counted as deleted a message a client had already moved out of the folder.
    @Test func purgeSaysWhatWasAlreadyGone() throws {
        try deliver(Self.pitch, "1.M1P1Q1.test")
        try worker().scanAll(shouldStop: { false })
        let pitches = maildir.folder(".Pitches")
        try pitches.remove(try #require(try pitches.entry(unique: "1.M1P1Q1.test")))
        let desk = QuarantineDesk(store: store, ownFields: .standard)
        #expect(try desk.purge(olderThan: 0, now: Int64(Date().timeIntervalSince1970) + 10) == QuarantineDesk.Purge(deleted: 0, alreadyGone: 1, backInTheInbox: 0, notMatching: 0, folderGone: 0))
    }

    /// Found in review: a purge closed the record of a message the user had moved back to the INBOX while the
    /// service was stopped, and the move then taught nothing. It is left for the service, and counted.
    @Test func purgeLeavesAMessageMovedBackToTheService() throws {
        try deliver(Self.pitch, "1.M1P1Q1.test")
        try worker().scanAll(shouldStop: { false })
        let pitches = maildir.folder(".Pitches")
        try pitches.move(try #require(try pitches.entry(unique: "1.M1P1Q1.test")), to: maildir.inbox, .cur,
                         name: MaildirName("1.M1P1Q1.test:2,S"))
        let desk = QuarantineDesk(store: store, ownFields: .standard)
        #expect(try desk.purge(olderThan: 0, now: Int64(Date().timeIntervalSince1970) + 10) == QuarantineDesk.Purge(deleted: 0, alreadyGone: 0, backInTheInbox: 1, notMatching: 0, folderGone: 0))
        try worker().scanAll(shouldStop: { false })
        #expect(try store.statistics().totals == ClassTotals(pitch: 0, ham: 1))
    }
}

extension InMemoryLogHandler {
    /// Every level kept, for the tests that check what was said; `all`, the messages as text.
    static var keepingAll: Self { var handler = Self(); handler.logLevel = .trace; return handler }
    var all: [String] { entries.map { "\($0.message)" } }
}
