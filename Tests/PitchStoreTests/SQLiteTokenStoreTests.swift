import Glibc
import CSQLite
import Foundation
import PitchClassifier
import PitchTokenizer
import Testing

@testable import PitchStore

/// What only a database file can get wrong: persistence, the schema, errors from the file system, and locks.
@Suite struct SQLiteTokenStoreTests {
    let directory: TemporaryDirectory
    let path: String
    let tokenizer = testTokenizer

    init() throws {
        directory = try TemporaryDirectory()
        path = directory.path("tokens.sqlite")
    }

    func open(_ access: SQLiteTokenStore.Access, timeout: Int32 = 2_000,
              migrations: [Migration] = SQLiteSchema.migrations) throws(StoreError) -> SQLiteTokenStore {
        try SQLiteTokenStore(path: path, tokenizerIdentity: tokenizer, access: access,
                             busyTimeoutMilliseconds: timeout, migrations: migrations)
    }

    /// The starter agreement training measured: kept in the file, in snapshots, and read through the protocol
    /// the engine uses (where a snapshot's own answer was once hidden behind the protocol's default of nil).
    @Test func theStarterAgreementIsKeptReadAndTakenBack() throws {
        let writer = try open(.readWrite)
        #expect(try writer.starterAgreement() == nil)
        try writer.recordStarterAgreement(0.6578)
        let reader = try open(.readOnly)
        #expect(try reader.starterAgreement() == 0.6578)
        let sources: [any TokenCountSource] = [reader, try reader.snapshot()]
        for source in sources { #expect(try source.starterAgreement() == 0.6578) }
        try writer.recordStarterAgreement(-0.25)
        #expect(try reader.starterAgreement() == -0.25)
        try writer.recordStarterAgreement(nil)
        #expect(try reader.starterAgreement() == nil)
        let snapshot: any TokenCountSource = try reader.snapshot()
        #expect(try snapshot.starterAgreement() == nil)
        #expect(throws: StoreError.self) { try reader.recordStarterAgreement(0.5) }
    }

    @Test func lookupsInsideASnapshotSeeOneStateOfTheDatabase() throws {
        let writer = try open(.readWrite)
        let reader = try open(.readOnly)
        let item = { (n: Int) in TrainingItem(digest: digest(n), tokens: [token(1)], target: .pitch) }
        _ = try writer.train([item(1)])
        let (before, after) = try reader.withSnapshot {
            let before = try reader.counts(of: [token(1)])
            _ = try writer.train([item(2)])  // another connection commits meanwhile
            return (before, try reader.counts(of: [token(1)]))
        }
        // Both lookups inside the snapshot see the database as it was when it began.
        #expect(before.counts == after.counts)
        #expect(before.totals.pitch == 1 && after.totals.pitch == 1)
        // Outside the snapshot the new message is there, and the reader is not left in a transaction.
        #expect(try reader.counts(of: [token(1)]).counts == [TokenCounts(pitch: 2, ham: 0)])
        _ = try writer.train([item(3)])
        #expect(try reader.counts(of: [token(1)]).totals.pitch == 3)
    }

    @Test func writesInOneWriteCommitTogetherOrNotAtAll() throws {
        struct Interrupted: Error {}
        let writer = try open(.readWrite)
        let reader = try open(.readOnly)
        let sighting = TemplateSighting(bands: [1, 2, 3], sender: 1, recipient: 2,
                                        message: 7)
        #expect(throws: Interrupted.self) {
            try writer.inOneWrite {
                try writer.record([sighting], at: 100, expireBefore: 0)
                _ = try writer.addContacts(["c@example.com"], source: .sent, at: 100)
                throw Interrupted()
            }
        }
        #expect(try reader.memoryCounts(sightingsSince: 0).templateSightings == 0)
        #expect(try reader.memoryCounts(sightingsSince: 0).contacts == 0)
        try writer.inOneWrite {
            try writer.record([sighting], at: 100, expireBefore: 0)
            _ = try writer.addContacts(["c@example.com"], source: .sent, at: 100)
            // Not visible to another connection before the commit.
            #expect(try reader.memoryCounts(sightingsSince: 0).contacts == 0)
        }
        #expect(try reader.memoryCounts(sightingsSince: 0).templateSightings == 1)  // one sighting, a row for each of its 3 bands
        // Out of the window, it is not counted, though the next write has yet to prune it.
        #expect(try reader.memoryCounts(sightingsSince: 101).templateSightings == 0)
        #expect(try reader.memoryCounts(sightingsSince: 0).contacts > 0)
        // The writer is out of its transaction: a snapshot can begin.
        #expect(try writer.withSnapshot { try writer.memoryCounts(sightingsSince: 0).contacts } > 0)
    }

    func error(_ body: () throws -> Void) -> StoreError? {
        do {
            try body()
            return nil
        } catch let error as StoreError {
            return error
        } catch {
            Issue.record("not a StoreError: \(error)")
            return nil
        }
    }

    /// The schema this program writes, and a migration a newer program would add after it.
    static let latest = SQLiteSchema.migrations.count
    static let extraMigration = Migration(version: latest + 1, sql: "CREATE TABLE extra (x INTEGER);")

    @Test func aLargeWriteAheadLogIsCheckpointedAndTruncated() throws {
        let store = try open(.readWrite)
        func logSize() -> Int {
            var info = stat()
            return stat(path + "-wal", &info) == 0 ? Int(info.st_size) : 0
        }
        func addresses(_ range: ClosedRange<Int>) -> [String] { range.map { "a\($0)@example.com" } }
        _ = try store.addContacts(addresses(1...5_000), source: .sent, at: 1)
        let small = logSize()
        store.checkpointIfLarge()
        #expect(logSize() == small)  // under the threshold: left to SQLite
        _ = try store.addContacts(addresses(5_001...150_000), source: .sent, at: 1)
        #expect(logSize() >= SQLiteTokenStore.walCheckpointBytes)
        store.checkpointIfLarge()
        #expect(logSize() == 0)
        #expect(try store.relationship(with: "a149999@example.com") == .knownAddress)
    }

    /// An admin's first `train` (as root) into the service's directory must leave a database the service's user
    /// can write: the file, and the -wal and -shm files SQLite makes beside it, get the directory's owner.
    @Test(.enabled(if: geteuid() == 0, "only root can give files away; CI runs as root"))
    func asRootANewDatabaseBelongsToItsDirectorysOwner() throws {
        let serviceDirectory = directory.path("service")
        #expect(mkdir(serviceDirectory, 0o755) == 0 && chown(serviceDirectory, 4242, 4343) == 0)
        let database = serviceDirectory + "/pitchfilter.sqlite"
        let store = try SQLiteTokenStore(path: database, tokenizerIdentity: tokenizer, access: .readWrite)
        _ = try store.train([TrainingItem(digest: digest(1), tokens: [token(1)], target: .pitch)])
        for path in [database, database + "-wal", database + "-shm"] {
            var info = stat()
            #expect(stat(path, &info) == 0 && info.st_uid == 4242 && info.st_gid == 4343, "\(path)")
        }
        // In a directory of root's own, root's.
        _ = try open(.readWrite)
        var info = stat()
        #expect(stat(path, &info) == 0 && info.st_uid == 0)
    }

    /// Found by an audit: class totals past anything training reaches overflowed the sums with the starter's, and
    /// `classify` died of it. They are damage, named as such.
    @Test func implausibleTotalsAreCorruption() throws {
        let store = try open(.readWrite)
        let item = { (n: Int) in TrainingItem(digest: digest(n), tokens: [token(1)], target: .pitch) }
        _ = try store.train([item(1)])
        try store.withConnection { connection throws(StoreError) in
            try connection.execute("UPDATE totals SET messages = 9223372036854775807 WHERE class = 'pitch'")
        }
        let reader = try open(.readOnly)
        let damage = StoreError.corrupt(path: path, detail: "it says 9223372036854775807 pitch messages were trained")
        #expect(throws: damage) {
            try reader.counts(of: [token(1)])
        }
        #expect(throws: StoreError.self) { try store.train([item(2)]) }
    }

    @Test func trainingPersistsAcrossReopening() throws {
        do {
            let store = try open(.readWrite)
            _ = try store.train([
                TrainingItem(digest: digest(1), tokens: [token(1), token(2)], target: .pitch),
                TrainingItem(digest: digest(2), tokens: [token(2)], target: .ham),
            ])
        }
        for access in [SQLiteTokenStore.Access.readOnly, .readWrite] {
            let store = try open(access)
            #expect(try counts(store, [1, 2]) == [1: TokenCounts(pitch: 1), 2: TokenCounts(pitch: 1, ham: 1)])
            #expect(try store.lookup([]).totals == ClassTotals(pitch: 1, ham: 1))
            #expect(try store.ledgerClass(of: digest(1)) == .pitch)
            #expect(try store.statistics().ledgerEntries == 2)
        }
        let store = try open(.readWrite)
        #expect(try store.train([TrainingItem(digest: digest(1), tokens: [token(1), token(2)], target: .pitch)])
            == [.alreadyKnown])
    }

    @Test func tokenizerMismatchIsExplained() throws {
        _ = try open(.readWrite)
        for access in [SQLiteTokenStore.Access.readOnly, .readWrite] {
            let caught = error { _ = try SQLiteTokenStore(path: path, tokenizerIdentity: "other-2", access: access) }
            #expect(caught == .tokenizerMismatch(path: path, database: tokenizer, program: "other-2"))
            #expect(caught?.description == "database \(path) was built with tokenizer \(tokenizer); "
                + "this pitchfilter uses other-2: retrain or use another --db")
        }
    }

    /// A URL is refused before anything is created: opened as a relative path, "postgres://host/db" became a
    /// directory "postgres:" in the working directory, with a database in it.
    @Test func aURLIsNotAFilePath() throws {
        let caught = error {
            _ = try SQLiteTokenStore(path: "postgres://localhost/pitch", tokenizerIdentity: tokenizer, access: .readWrite)
        }
        #expect(caught == .unsupportedLocation(path: "postgres://localhost/pitch"))
        #expect(access("postgres:", F_OK) != 0)
    }

    @Test(arguments: [
        ("postgres://localhost/pitch", true), ("postgresql://u@h:5432/db", true), ("sqlite+x.y-z://a", true),
        ("/var/lib/pitchfilter/pitchfilter.sqlite", false), ("./a://b", false), ("://x", false), ("db:x", false),
    ])
    func urlsAreToldFromPaths(location: String, isURL: Bool) {
        #expect(SQLiteTokenStore.isURL(location) == isURL)
    }

    @Test func schemaVersionJournalModeAndTokenizerAreRecorded() throws {
        let store = try open(.readWrite)
        let recorded = try store.withConnection { connection throws(StoreError) in
            let version = try connection.userVersion()
            let mode = try connection.statement("PRAGMA journal_mode")
            defer { mode.reset() }
            _ = try mode.step()
            let meta = try connection.statement("SELECT key, value FROM meta")
            defer { meta.reset() }
            var rows: [String: String] = [:]
            while try meta.step() { rows[meta.text(0) ?? ""] = meta.text(1) }
            return (version, mode.text(0), rows)
        }
        #expect(recorded.0 == Self.latest)
        #expect(recorded.1 == "wal")
        // Every index of the template memory is written by every pipe-filter run: only those its queries use.
        let indexes = try store.withConnection { connection throws(StoreError) in
            let query = try connection.statement(
                "SELECT group_concat(name) FROM (SELECT name FROM sqlite_schema WHERE type = 'index' AND tbl_name = 'templates' ORDER BY name)")
            defer { query.reset() }
            return try query.step() ? query.text(0) : nil
        }
        #expect(indexes == "templates_by_key,templates_by_message,templates_by_time")
        #expect(recorded.2 == ["tokenizer": tokenizer])
        #expect(SQLiteSchema.migrations.map(\.version) == Array(1...SQLiteSchema.migrations.count))
    }

    /// Version 13 names sightings anew (`Engine.sightingIdentity`): the memory of a database from before it starts
    /// again, so that no message finds its own row under its former name as the same note sent before (found in
    /// review); and version 14 keeps addresses as keys, not text. What else the database holds stays.
    @Test func theTemplateMemoryStartsAgainAtVersions13And14() throws {
        do {
            let old = try open(.readWrite, migrations: Array(SQLiteSchema.migrations.prefix(12)))
            _ = try old.train([TrainingItem(digest: digest(1), tokens: [token(1)], target: .ham)])
            try old.record([TemplateSighting(bands: [1, 2], sender: 1, recipient: 2, message: 7)], at: 100,
                           expireBefore: 0)
            #expect(try old.memoryCounts(sightingsSince: 0).templateSightings == 1)
        }
        do {
            let store = try open(.readWrite, migrations: Array(SQLiteSchema.migrations.prefix(13)))
            #expect(try store.memoryCounts(sightingsSince: 0).templateSightings == 0)
            try store.withConnection { connection throws(StoreError) in
                try connection.execute("""
                    INSERT INTO templates (band, sender, recipient, seen_at, message)
                    VALUES (1, 'a@x.example', 'b@y.example', 100, 7)
                    """)
            }
            #expect(try store.memoryCounts(sightingsSince: 0).templateSightings == 1)
        }
        let store = try open(.readWrite)
        #expect(try store.statistics().schemaVersion == 14)
        #expect(try store.memoryCounts(sightingsSince: 0).templateSightings == 0)
        #expect(try counts(store, [1]) == [1: TokenCounts(ham: 1)])
        // An address as text, as a service of version 13 still running would write it, is refused: read as 0, it
        // sent the lookup of other senders round for ever.
        #expect(throws: StoreError.self) {
            try store.withConnection { connection throws(StoreError) in
                try connection.execute("""
                    INSERT INTO templates (band, sender, recipient, seen_at, message)
                    VALUES (1, 'a@x.example', 5, 100, 7)
                    """)
            }
        }
        try store.record([TemplateSighting(bands: [1, 2], sender: 1, recipient: 2, message: 7)], at: 100,
                         expireBefore: 0)
        #expect(try store.memoryCounts(sightingsSince: 0).templateSightings == 1)
    }

    /// A restore copies a backup's training into the database in use: counts, totals, ledger and contacts become the
    /// backup's, what was trained since goes (but the addresses written to since stay known), and the service's
    /// records stay; into a new database, the backup's quarantine records come too. The backup, from an older
    /// schema, is read through a copy brought up to date, as `pitchfilter restore` does; it is left unchanged.
    @Test func aRestoreReplacesTheTrainingAndKeepsTheServicesRecords() throws {
        let backupPath = directory.path("backup.sqlite"), copyPath = directory.path("copy.sqlite")
        let backupsLast = Int64(time(nil)) + 500  // the last thing the backup learned, an address written to
        do {
            let old = try SQLiteTokenStore(path: backupPath, tokenizerIdentity: tokenizer, access: .readWrite,
                                           busyTimeoutMilliseconds: 2_000,
                                           migrations: Array(SQLiteSchema.migrations.prefix(12)))
            _ = try old.train([TrainingItem(digest: digest(1), tokens: [token(1)], target: .ham)])
            _ = try old.addContacts(["kept@kept.example"], source: .sent, at: backupsLast)
            try old.apply([.quarantine(QuarantineEntry(
                id: "fedcba9876543210", mailbox: "/m", folder: ".Pitches", name: "0.M0.x", digest: digest(4),
                messageID: "", sender: "", subject: "", score: 1, state: .held, at: 1))])
        }
        let store = try open(.readWrite)
        _ = try store.train([TrainingItem(digest: digest(2), tokens: [token(1), token(2)], target: .pitch)])
        _ = try store.addContacts(["since@since.example"], source: .sent, at: Int64(time(nil)) + 1_000)
        // In the second of the last thing the backup learned, after the backup (times are whole seconds): kept.
        _ = try store.addContacts(["same@same.example"], source: .sent, at: backupsLast)
        // Written to before the backup was taken (an import the restore is to undo), and not in it: gone.
        _ = try store.addContacts(["before@before.example"], source: .sent, at: 2)
        _ = try store.addHamSenders([HamSender(digest: digest(2), address: "ham@ham.example")], at: 2)
        let held = QuarantineEntry(id: "0123456789abcdef", mailbox: "/m", folder: ".Pitches", name: "1.M1.x",
                                   digest: digest(3), messageID: "", sender: "", subject: "", score: 1, state: .held,
                                   at: 3)
        try store.apply([.quarantine(held)])
        #expect(creat(copyPath, 0o600) >= 0)
        _ = try SQLiteTokenStore.backUp(databaseAt: backupPath, into: copyPath, destination: copyPath)
        try SQLiteTokenStore.prepareRestoreCopy(at: copyPath, tokenizerIdentity: tokenizer)
        #expect(try store.restoreTraining(from: copyPath)
            == SQLiteTokenStore.Restored(totals: ClassTotals(ham: 1), quarantineRecordsTaken: nil))
        #expect(try counts(store, [1, 2]) == [1: TokenCounts(ham: 1)])
        #expect(try store.ledgerClass(of: digest(1)) == .ham)
        #expect(try store.ledgerClass(of: digest(2)) == nil)
        #expect(try store.contactSnapshot().relationship(with: "kept@kept.example", apartFrom: []) == .knownAddress)
        #expect(try store.contactSnapshot().relationship(with: "since@since.example", apartFrom: []) == .knownAddress)
        #expect(try store.contactSnapshot().relationship(with: "same@same.example", apartFrom: []) == .knownAddress)
        #expect(try store.contactSnapshot().relationship(with: "ham@ham.example", apartFrom: []) == .firstContact)
        #expect(try store.contactSnapshot().relationship(with: "before@before.example", apartFrom: []) == .firstContact)
        #expect(try store.quarantineEntries(.states([.held])) == [held])
        let fresh = try SQLiteTokenStore(path: directory.path("fresh.sqlite"), tokenizerIdentity: tokenizer,
                                         access: .readWrite)
        #expect(try fresh.restoreTraining(from: copyPath)
            == SQLiteTokenStore.Restored(totals: ClassTotals(ham: 1), quarantineRecordsTaken: 1))
        #expect(try fresh.quarantineEntries(.states([.held])).map(\.id) == ["fedcba9876543210"])
        let backup = try SQLiteTokenStore(path: backupPath, tokenizerIdentity: tokenizer, access: .readOnly,
                                          busyTimeoutMilliseconds: 2_000,
                                          migrations: Array(SQLiteSchema.migrations.prefix(12)))
        #expect(try backup.statistics().schemaVersion == 12)
    }

    /// A backup restored from a read-only mount or another user's file is read as it is (SQLite's immutable), by a
    /// URI: a name with a space, "%", "?" or "#" still names the file, and no -wal or -shm is made beside it.
    @Test func aFileAtRestIsReadWithoutMakingItsLogFiles() throws {
        let odd = directory.path("back up %41?#1.sqlite")
        do {
            let store = try SQLiteTokenStore(path: odd, tokenizerIdentity: tokenizer, access: .readWrite)
            _ = try store.train([TrainingItem(digest: digest(1), tokens: [token(1)], target: .ham)])
        }
        #expect(!FileManager.default.fileExists(atPath: odd + "-wal"), "closed, the log is gone")
        let connection = try SQLiteConnection(path: odd, flags: SQLITE_OPEN_READONLY, busyTimeoutMilliseconds: 100,
                                              immutable: true)
        let query = try connection.statement("SELECT messages FROM totals WHERE class = 'ham'")
        defer { query.reset() }
        #expect(try query.step() && query.int64(0) == 1)
        #expect(!FileManager.default.fileExists(atPath: odd + "-shm"))
        #expect(!FileManager.default.fileExists(atPath: odd + "-wal"))
    }

    /// Found by an audit: an SQLite file without pitchfilter's schema (an empty one) was made a new database and
    /// "restored", and the training was gone; one with a table missing is refused too, before anything changes.
    @Test(arguments: ["empty", "table dropped"])
    func aCopyThatIsNoPitchfilterDatabaseIsNotRestored(kind: String) throws {
        let copyPath = directory.path("copy.sqlite")
        let store = try open(.readWrite)
        _ = try store.train([TrainingItem(digest: digest(1), tokens: [token(1)], target: .ham)])
        if kind == "empty" {
            #expect(creat(copyPath, 0o600) >= 0)
            _ = try SQLiteConnection(path: copyPath, flags: SQLITE_OPEN_READWRITE, busyTimeoutMilliseconds: 100)
                .execute("CREATE TABLE t (x); DROP TABLE t;")
            #expect(throws: StoreError.notPitchfilterDatabase(path: copyPath)) {
                try SQLiteTokenStore.prepareRestoreCopy(at: copyPath, tokenizerIdentity: tokenizer)
            }
        } else {
            _ = try SQLiteTokenStore(path: copyPath, tokenizerIdentity: tokenizer, access: .readWrite)
            try SQLiteConnection(path: copyPath, flags: SQLITE_OPEN_READWRITE, busyTimeoutMilliseconds: 100)
                .execute("DROP TABLE ham_senders")
            try SQLiteTokenStore.prepareRestoreCopy(at: copyPath, tokenizerIdentity: tokenizer)
            #expect(throws: StoreError.corrupt(path: copyPath, detail: "its table ham_senders is not a pitchfilter "
                + "database's")) { try store.restoreTraining(from: copyPath) }
        }
        #expect(try store.statistics().totals == ClassTotals(ham: 1))
    }

    /// What `serve --check` asks, without changing the file: found by an audit, the check passed every database
    /// the service then could not open.
    @Test func aProblemIsFoundWithoutChangingTheFile() throws {
        func problem() -> StoreError? { SQLiteTokenStore.problem(at: path, tokenizerIdentity: tokenizer) }
        #expect(problem() == nil, "not there yet: the service makes it")
        do {
            let old = try open(.readWrite, migrations: Array(SQLiteSchema.migrations.prefix(12)))
            _ = try old.train([TrainingItem(digest: digest(1), tokens: [token(1)], target: .ham)])
        }
        #expect(problem() == nil, "an older schema is upgraded at the start")
        #expect(try open(.readWrite, migrations: Array(SQLiteSchema.migrations.prefix(12))).statistics()
            .schemaVersion == 12, "and the check left it as it was")
        _ = try open(.readWrite, migrations: SQLiteSchema.migrations + [Self.extraMigration])
        #expect(problem() == .schemaTooNew(path: path, found: Self.latest + 1, supported: Self.latest))
        // Truncated to its first page: the header and schema read, the pages behind them are gone.
        #expect(truncate(path, 4_096) == 0)
        guard case .corrupt = problem() else {
            Issue.record("\(String(describing: problem()))")
            return
        }
        try Data("not a database\n".utf8).write(to: URL(fileURLWithPath: path))
        #expect(problem() == .notADatabase(path: path))
    }

    /// Found by an audit and a review: a database file that shrank under a process that had mapped it (a `cp` of a
    /// smaller file over it, `: >` on it) killed `serve`, `train` and `classify` with SIGBUS and no word. Unmapped
    /// (`SQLiteTokenStore.mapsFiles`, off but in the pipe filter), the pages it lost are an error. Mapped, this test
    /// dies of SIGBUS.
    @Test func aDatabaseThatShrinksUnderAReaderIsAnErrorNotASignal() throws {
        do {
            let writer = try open(.readWrite)
            _ = try writer.train((0..<20_000).map {
                TrainingItem(digest: digest($0), tokens: [token(UInt64($0) * 7_919)], target: .pitch)
            })
            writer.checkpointIfLarge(thresholdBytes: 0)
        }
        let mapped = SQLiteTokenStore.mapsFiles.load(ordering: .relaxed)
        #expect(!mapped)
        let reader = try open(.readOnly)
        // Inside one read transaction, as `train` and the service read: a new one would map the file anew.
        let caught = error {
            try reader.withSnapshot {
                _ = try reader.lookup([token(0)])
                #expect(truncate(path, 8_192) == 0)
                _ = try reader.lookup((10_000..<20_000).map { token(UInt64($0) * 7_919) })
            }
        }
        guard case .corrupt = caught else {
            Issue.record("\(String(describing: caught))")
            return
        }
    }

    @Test func aFileRemovedOrReplacedWhileOpenIsNoticed() throws {
        let store = try open(.readWrite)
        #expect(!store.fileWasReplaced)
        #expect(unlink(path) == 0)
        #expect(store.fileWasReplaced)
        let again = try open(.readWrite)
        #expect(!again.fileWasReplaced)
        #expect(rename(path, path + ".moved") == 0 && link(path + ".moved", path) == 0)
        #expect(!again.fileWasReplaced, "the same file under the same name")
    }

    @Test func aNewerSchemaIsRefused() throws {
        _ = try open(.readWrite, migrations: SQLiteSchema.migrations + [Self.extraMigration])
        for access in [SQLiteTokenStore.Access.readOnly, .readWrite] {
            let caught = error { _ = try open(access) }
            #expect(caught == .schemaTooNew(path: path, found: Self.latest + 1, supported: Self.latest))
            #expect(caught?.description.contains("upgrade pitchfilter") == true)
        }
    }

    @Test(arguments: [SQLiteTokenStore.Access.readOnly, .readWrite])
    func anOlderSchemaIsUpgradedOnOpen(access: SQLiteTokenStore.Access) throws {
        do {
            let old = try open(.readWrite)
            _ = try old.train([TrainingItem(digest: digest(1), tokens: [token(1)], target: .ham)])
        }
        let store = try open(access, migrations: SQLiteSchema.migrations + [Self.extraMigration])
        #expect(try store.statistics().schemaVersion == Self.latest + 1)
        #expect(try counts(store, [1]) == [1: TokenCounts(ham: 1)])
        let tables = try store.withConnection { connection throws(StoreError) in
            let query = try connection.statement("SELECT count(*) FROM sqlite_schema WHERE name = 'extra'")
            defer { query.reset() }
            return try query.step() ? query.int64(0) : -1
        }
        #expect(tables == 1)
    }

    /// A key's sightings beyond its newest two (rows from before version 9, when nothing trimmed them, or a daily
    /// notice's month) answer as before, and are trimmed when the key is next recorded.
    @Test func aKeysOlderSightingsAreTrimmedAtItsNextSighting() throws {
        let store = try open(.readWrite)
        let notice: Int64 = 5, other: Int64 = 6, me: Int64 = 9
        try store.withConnection { connection throws(StoreError) in
            try connection.execute("""
                WITH RECURSIVE day(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM day WHERE n < 40)
                INSERT INTO templates (band, sender, recipient, seen_at, message)
                SELECT band, \(notice), \(me), 1000 + n, n FROM day, (SELECT 11 AS band UNION ALL SELECT 22);
                INSERT INTO templates (band, sender, recipient, seen_at, message) VALUES (11, \(other), \(me), 1000, 77);
                """)
        }
        func rows() throws -> [String] {
            try store.withConnection { connection throws(StoreError) in
                let query = try connection.statement("SELECT band, sender, message FROM templates ORDER BY 1, 2, 3")
                defer { query.reset() }
                var rows: [String] = []
                while try query.step() { rows.append("\(query.int64(0)) \(query.int64(1)) \(query.int64(2))") }
                return rows
            }
        }
        #expect(try rows().count == 81)
        let tomorrow = TemplateSighting(bands: [11, 22], sender: UInt64(notice), recipient: UInt64(me), message: 41)
        #expect(try store.sightings(like: tomorrow, since: 0)
            == TemplateSightings(otherSenders: 1, sameNoteBefore: true, memoryIsEmpty: false))
        try store.record([tomorrow], at: 1_041, expireBefore: 0)
        #expect(try rows() == ["11 5 40", "11 5 41", "11 6 77", "22 5 40", "22 5 41"])
    }

    /// Found in review: a database restored in rollback-journal mode made filters wait for the trainer.
    @Test func readWriteOpenRestoresWAL() throws {
        func journalMode(_ store: SQLiteTokenStore) throws -> String? {
            try store.withConnection { connection throws(StoreError) in
                let query = try connection.statement("PRAGMA journal_mode")
                defer { query.reset() }
                return try query.step() ? query.text(0) : nil
            }
        }
        do {
            let store = try open(.readWrite)
            #expect(try journalMode(store) == "wal")
            try store.withConnection { connection throws(StoreError) in
                try connection.execute("PRAGMA journal_mode = DELETE")
            }
            #expect(try journalMode(store) == "delete")
        }
        #expect(try journalMode(try open(.readWrite)) == "wal")
    }

    @Test func readOnlyOpenOfAMissingFileThrowsMissingAndCreatesNothing() throws {
        let caught = error { _ = try open(.readOnly) }
        #expect(caught == .missing(path: path))
        #expect(!FileManager.default.fileExists(atPath: path))
        let nested = directory.path("no/such/dir/tokens.sqlite")
        #expect(error { _ = try SQLiteTokenStore(path: nested, tokenizerIdentity: tokenizer, access: .readOnly) }
            == .missing(path: nested))
    }

    /// Found by an audit: made through a symbolic link to a file not there yet, the database (and its -wal and
    /// -shm) had SQLite's mode, 0644 under the usual umask, where any other is its owner's alone.
    @Test(arguments: ["absolute", "relative", "chained"])
    func aDatabaseMadeThroughALinkIsItsOwnersAlone(link: String) throws {
        let previous = umask(0o022)
        defer { umask(previous) }
        try FileManager.default.createDirectory(atPath: directory.path("elsewhere"), withIntermediateDirectories: false)
        let target = directory.path("elsewhere/tokens.sqlite")
        let linked = directory.path("linked.sqlite")
        switch link {
        case "absolute": #expect(symlink(target, linked) == 0)
        case "relative": #expect(symlink("elsewhere/tokens.sqlite", linked) == 0)
        default:
            #expect(symlink("elsewhere/middle.sqlite", linked) == 0)
            #expect(symlink("tokens.sqlite", directory.path("elsewhere/middle.sqlite")) == 0)
        }
        let store = try SQLiteTokenStore(path: linked, tokenizerIdentity: tokenizer, access: .readWrite)
        _ = try store.train([TrainingItem(digest: digest(1), tokens: [token(1)], target: .ham)])
        for file in [target, target + "-wal", target + "-shm"] {
            var info = stat()
            #expect(lstat(file, &info) == 0, "\(file) is there")
            #expect(info.st_mode & S_IFMT == S_IFREG && info.st_mode & 0o777 == 0o600, "\(file)")
        }
    }

    @Test func readWriteCreatesParentDirectoriesPrivately() throws {
        let nested = directory.path("data/pitchfilter/tokens.sqlite")
        let store = try SQLiteTokenStore(path: nested, tokenizerIdentity: tokenizer, access: .readWrite)
        #expect(try store.statistics().tokens == 0)
        for created in ["data", "data/pitchfilter"] {
            var info = stat()
            #expect(stat(directory.path(created), &info) == 0)
            #expect(info.st_mode & 0o777 == 0o700)
        }
        #expect(FileManager.default.fileExists(atPath: nested))
    }

    @Test(arguments: [SQLiteTokenStore.Access.readOnly, .readWrite])
    func aFileThatIsNotSQLiteIsNotADatabase(access: SQLiteTokenStore.Access) throws {
        let garbage = Data(String(repeating: "From: someone\nSubject: not a database\n\n", count: 200).utf8)
        try garbage.write(to: URL(fileURLWithPath: path))
        let caught = error { _ = try open(access) }
        #expect(caught == .notADatabase(path: path))
        #expect(caught?.description.contains(path) == true)
        // Never "repaired" into a database.
        #expect(try Data(contentsOf: URL(fileURLWithPath: path)) == garbage)
    }

    /// Found by an audit: a database of another program that sets user_version (1 to 9 here) was taken for an
    /// older pitchfilter database and "upgraded" with our tables, by classify and filter too.
    @Test(arguments: [(SQLiteTokenStore.Access.readOnly, 0), (.readWrite, 0), (.readOnly, 1), (.readWrite, 7)])
    func anotherProgramsDatabaseIsLeftAlone(access: SQLiteTokenStore.Access, userVersion: Int) throws {
        do {
            let foreign = try SQLiteConnection(path: path, flags: SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE,
                                               busyTimeoutMilliseconds: 100)
            try foreign.execute("CREATE TABLE places (url TEXT); PRAGMA user_version = \(userVersion)")
        }
        let caught = error { _ = try open(access) }
        #expect(caught == .notPitchfilterDatabase(path: path))
        let tables = try SQLiteConnection(path: path, flags: SQLITE_OPEN_READONLY, busyTimeoutMilliseconds: 100)
        let query = try tables.statement("SELECT group_concat(name) FROM sqlite_schema")
        #expect(try query.step())
        #expect(query.text(0) == "places")
        query.reset()
        #expect(try tables.userVersion() == userVersion)
    }

    @Test func anEmptyFileIsNothingTrainedYet() throws {
        #expect(FileManager.default.createFile(atPath: path, contents: Data()))
        #expect(error { _ = try open(.readOnly) } == .missing(path: path))
        let store = try open(.readWrite)
        #expect(try store.train([TrainingItem(digest: digest(1), tokens: [token(1)], target: .pitch)]) == [.learned])
    }

    @Test(.enabled(if: filePermissionsCanApply, "needs a user that permission bits apply to"))
    func aDirectoryThatCannotBeWrittenGivesAClearError() throws {
        let locked = directory.path("locked")
        try FileManager.default.createDirectory(atPath: locked, withIntermediateDirectories: false)
        chmod(locked, 0o555)
        let inside = locked + "/tokens.sqlite"
        let deeper = locked + "/sub/tokens.sqlite"
        let tokenizer = tokenizer
        let outcome = withoutFilePrivileges { () -> [StoreError?] in
            [inside, deeper].map { path in
                do {
                    _ = try SQLiteTokenStore(path: path, tokenizerIdentity: tokenizer, access: .readWrite)
                    return nil
                } catch {
                    return error as? StoreError
                }
            }
        }
        try #require(outcome != nil)
        #expect(outcome?[0] == .cannotOpen(path: inside, detail: "cannot create it: Permission denied"))
        #expect(outcome?[0]?.description == "cannot open database \(inside): cannot create it: Permission denied")
        #expect(outcome?[1]
            == .cannotOpen(path: deeper, detail: "cannot create directory \(locked)/sub: Permission denied"))
    }

    @Test(.enabled(if: filePermissionsCanApply, "needs a user that permission bits apply to"))
    func aFileThatCannotBeWrittenGivesAClearError() throws {
        do {
            let store = try open(.readWrite)
            _ = try store.train([TrainingItem(digest: digest(1), tokens: [token(1)], target: .pitch)])
        }
        chmod(path, 0o444)
        // The directory belongs to the unprivileged user, so only the file itself is read-only for them.
        chown(directory.url.path, 65_534, 65_534)
        let path = path
        let tokenizer = tokenizer
        let outcome = withoutFilePrivileges { () -> (StoreError?, String?) in
            do {
                _ = try SQLiteTokenStore(path: path, tokenizerIdentity: tokenizer, access: .readWrite)
                return (nil, nil)
            } catch {
                // Reading still works for the same user.
                let counts = try? SQLiteTokenStore(path: path, tokenizerIdentity: tokenizer, access: .readOnly)
                    .lookup([token(1)]).counts
                return (error as? StoreError, counts.map { "\($0.count)" })
            }
        }
        try #require(outcome != nil)
        guard case .readOnly(path, _)? = outcome?.0 else {
            Issue.record("expected readOnly, got \(String(describing: outcome?.0))")
            return
        }
        #expect(outcome?.0?.description.hasPrefix("cannot write database \(path): ") == true)
        #expect(outcome?.1 == "1")
    }

    @Test(.enabled(if: filePermissionsCanApply, "needs a user that permission bits apply to"))
    func aDatabaseInADirectoryThatCannotBeWrittenGivesAClearError() throws {
        let locked = directory.path("locked")
        try FileManager.default.createDirectory(atPath: locked, withIntermediateDirectories: false)
        let path = locked + "/tokens.sqlite"
        do {
            let store = try SQLiteTokenStore(path: path, tokenizerIdentity: tokenizer, access: .readWrite)
            _ = try store.train([TrainingItem(digest: digest(1), tokens: [token(1)], target: .pitch)])
        }
        // The file is theirs and writable, the directory is not: WAL cannot create its -wal and -shm files.
        chown(path, 65_534, 65_534)
        chmod(locked, 0o555)
        let tokenizer = tokenizer
        let outcome = withoutFilePrivileges { () -> [StoreError?] in
            [SQLiteTokenStore.Access.readWrite, .readOnly].map { access in
                do {
                    _ = try SQLiteTokenStore(path: path, tokenizerIdentity: tokenizer, access: access)
                    return nil
                } catch {
                    return error as? StoreError
                }
            }
        }
        try #require(outcome != nil)
        let expected = StoreError.readOnly(path: path, detail: "its directory \(locked) is not writable, and SQLite's "
            + "WAL mode must create its -wal and -shm files there, even to read")
        #expect(outcome == [expected, expected])
    }

    @Test func aParentThatIsAFileGivesAClearError() throws {
        #expect(FileManager.default.createFile(atPath: directory.path("plain"), contents: Data("x".utf8)))
        let nested = directory.path("plain/db/tokens.sqlite")
        let caught = error { _ = try SQLiteTokenStore(path: nested, tokenizerIdentity: tokenizer, access: .readWrite) }
        #expect(caught == .cannotOpen(path: nested, detail: "\(directory.path("plain")) is not a directory"))
    }

    @Test func aDirectoryInPlaceOfTheFileCannotBeOpened() throws {
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: false)
        for access in [SQLiteTokenStore.Access.readOnly, .readWrite] {
            #expect(error { _ = try open(access) }
                == .cannotOpen(path: path, detail: "it is a directory, not a database file"))
        }
    }

    @Test func trainingThroughAReadOnlyStoreIsRefused() throws {
        _ = try open(.readWrite)
        let reader = try open(.readOnly)
        let caught = error { _ = try reader.train([TrainingItem(digest: digest(1), tokens: [], target: .ham)]) }
        guard case .readOnly(path, _)? = caught else {
            Issue.record("expected readOnly, got \(String(describing: caught))")
            return
        }
        #expect(try reader.train([]) == [])
    }

    @Test func aSecondWriterGivesUpAfterTheBusyTimeout() throws {
        let holder = try open(.readWrite)
        _ = try holder.train([TrainingItem(digest: digest(1), tokens: [token(1)], target: .pitch)])
        let waiter = try open(.readWrite, timeout: 100)
        let reader = try open(.readOnly, timeout: 100)
        try holder.withConnection { connection throws(StoreError) in
            try connection.execute("BEGIN IMMEDIATE")
            try connection.execute("UPDATE totals SET messages = 99 WHERE class = 'ham'")
        }
        let started = ContinuousClock.now
        let caught = error { _ = try waiter.train([TrainingItem(digest: digest(2), tokens: [], target: .ham)]) }
        let waited = ContinuousClock.now - started
        #expect(caught == .locked(path: path, waitedMilliseconds: 100))
        #expect(caught?.description == "database \(path) stayed locked by another process for 100 ms: try again later")
        #expect(waited >= .milliseconds(90))  // waited, and for the timeout: no upper bound on a busy machine
        // Readers are not blocked by the writer, and do not see its uncommitted change.
        #expect(try reader.lookup([token(1)]).totals == ClassTotals(pitch: 1, ham: 0))
        try holder.withConnection { connection throws(StoreError) in try connection.execute("ROLLBACK") }
        #expect(try waiter.train([TrainingItem(digest: digest(2), tokens: [], target: .ham)]) == [.learned])
        #expect(try reader.lookup([]).totals == ClassTotals(pitch: 1, ham: 1))
    }

    @Test func aFailedBatchLeavesNothingApplied() throws {
        let store = try open(.readWrite)
        _ = try store.train([TrainingItem(digest: digest(1), tokens: [token(1), token(2)], target: .pitch)])
        let before = try store.allTokens().map { "\($0.0.rawValue):\($0.1.pitch)/\($0.1.ham)" }
        // A temporary trigger lives only on this connection: a real SQLite error in the middle of the batch,
        // after several items have already written.
        let poison = digest(666)
        let hex = poison.map { String($0, radix: 16).count == 1 ? "0" + String($0, radix: 16) : String($0, radix: 16) }
        try store.withConnection { connection throws(StoreError) in
            try connection.execute("""
                CREATE TEMP TRIGGER poison BEFORE INSERT ON main.ledger WHEN NEW.digest = x'\(hex.joined())'
                BEGIN SELECT RAISE(ABORT, 'injected failure'); END
                """)
        }
        let caught = error {
            _ = try store.train([
                TrainingItem(digest: digest(2), tokens: [token(2), token(3)], target: .ham),
                TrainingItem(digest: digest(1), tokens: [token(1), token(2)], target: .ham),
                TrainingItem(digest: digest(3), tokens: [token(4)], target: .pitch),
                TrainingItem(digest: poison, tokens: [token(5)], target: .pitch),
                TrainingItem(digest: digest(4), tokens: [token(6)], target: .pitch),
            ])
        }
        guard case .sqlite(path, _, let detail)? = caught else {
            Issue.record("expected an SQLite error, got \(String(describing: caught))")
            return
        }
        #expect(detail == "injected failure")
        #expect(try store.allTokens().map { "\($0.0.rawValue):\($0.1.pitch)/\($0.1.ham)" } == before)
        #expect(try store.lookup([]).totals == ClassTotals(pitch: 1, ham: 0))
        #expect(try store.ledgerClass(of: digest(1)) == .pitch)
        #expect(try store.ledgerClass(of: digest(2)) == nil)
        #expect(try store.ledgerClass(of: digest(3)) == nil)
        #expect(try store.statistics().ledgerEntries == 1)
        // The connection is usable afterwards: no transaction was left open.
        #expect(try store.train([TrainingItem(digest: digest(2), tokens: [token(2)], target: .ham)]) == [.learned])
        let other = try open(.readWrite, timeout: 100)
        #expect(try other.train([TrainingItem(digest: digest(3), tokens: [], target: .ham)]) == [.learned])
    }

    /// Found by an audit: trains starting at once on a new database, each finding the file another had just made,
    /// said it had been an empty file to restore from a backup. An empty file changed in the last few seconds is
    /// another process's new database; one changed earlier, or in the future (a clock stepped back), is not.
    @Test(arguments: [(0, true), (4, true), (5, false), (60, false), (-100, false)])
    func anEmptyFileJustMadeIsAnotherProcesssNewDatabase(age: Int, justMade: Bool) throws {
        #expect(FileManager.default.createFile(atPath: path, contents: nil))
        var info = stat()
        #expect(stat(path, &info) == 0)
        #expect(SQLiteTokenStore.isJustMade(path, now: info.st_mtim.tv_sec + age) == justMade)
        // Opened long after it was made, it is said to have been an empty file.
        let long = Date(timeIntervalSinceNow: -60)
        try FileManager.default.setAttributes([.modificationDate: long], ofItemAtPath: path)
        #expect(try open(.readWrite).beganAsAnEmptyFile)
    }

    /// Found by an audit: a directory or a link where SQLite keeps its -wal or -shm file was blamed on the
    /// database file. It is named.
    @Test(arguments: [("-wal", "a directory"), ("-shm", "a directory"),
                      ("-wal", "a symbolic link, which SQLite does not follow")])
    func aCompanionFileThatIsNoFileIsNamed(suffix: String, kind: String) throws {
        _ = try open(.readWrite)
        if kind == "a directory" {
            try FileManager.default.createDirectory(atPath: path + suffix, withIntermediateDirectories: false)
        } else {
            #expect(symlink(directory.path("elsewhere"), path + suffix) == 0)
        }
        #expect(throws: StoreError.cannotOpen(path: path, detail: "its \(suffix) file, \(path + suffix), is \(kind): "
            + "move it away")) { _ = try open(.readOnly) }
    }

    /// Found in review: a database moved elsewhere and linked keeps its -wal and -shm beside the file the link leads
    /// to, where SQLite puts them; links beside the link (an admin linked them too) are none of SQLite's, and were
    /// refused. The check looks beside the real file.
    @Test func aLinkedDatabaseIsCheckedBesideTheFileItLeadsTo() throws {
        _ = try open(.readWrite)
        let link = directory.path("linked.sqlite")
        #expect(symlink(path, link) == 0)
        #expect(symlink(path + "-wal", link + "-wal") == 0 && symlink(path + "-shm", link + "-shm") == 0)
        let store = try SQLiteTokenStore(path: link, tokenizerIdentity: tokenizer, access: .readWrite)
        #expect(try store.statistics().totals == ClassTotals())
    }

    @Test func errorsNameThePathAndMapSQLiteCodes() {
        // Extended codes are macros Swift does not import: primary | (n << 8).
        let busySnapshot = SQLITE_BUSY | 2 << 8
        let ioErrorWrite = SQLITE_IOERR | 3 << 8
        let cases: [(Int32, Int32, StoreError)] = [
            (SQLITE_BUSY, 0, .locked(path: "/db", waitedMilliseconds: 7)),
            (busySnapshot, 0, .locked(path: "/db", waitedMilliseconds: 7)),
            (SQLITE_PROTOCOL, 0, .locked(path: "/db", waitedMilliseconds: 7)),
            (SQLITE_NOTADB, 0, .notADatabase(path: "/db")),
            (SQLITE_CORRUPT, 0, .corrupt(path: "/db", detail: "msg")),
            (SQLITE_FULL, 0, .diskFull(path: "/db")),
            (ioErrorWrite, ENOSPC, .diskFull(path: "/db")),
            (ioErrorWrite, EIO, .io(path: "/db", detail: "msg: Input/output error")),
            (SQLITE_READONLY, EROFS, .readOnly(path: "/db", detail: "Read-only file system")),
            (SQLITE_CANTOPEN, EACCES, .cannotOpen(path: "/db", detail: "Permission denied")),
            (SQLITE_CONSTRAINT, 0, .sqlite(path: "/db", code: SQLITE_CONSTRAINT, detail: "msg")),
        ]
        for (code, systemErrno, expected) in cases {
            let mapped = StoreError(code: code, path: "/db", message: "msg", systemErrno: systemErrno,
                                    busyTimeoutMilliseconds: 7)
            #expect(mapped == expected)
            #expect(mapped.path == "/db")
            #expect(mapped.description.contains("/db"))
        }
    }
}
