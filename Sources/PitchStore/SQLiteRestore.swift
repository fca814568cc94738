import CSQLite
import PitchClassifier

/// Putting a backup's training back into a database in use. Replacing the file is no way to do it while anything
/// has the database open: SQLite applies the old file's write-ahead log to whatever file is then at the path. And a
/// backup's journal of the Maildirs is out of date: the service, finding a message it quarantined since the backup
/// without a record, takes it for one the user filed there and learns it as a pitch (found by an audit: 171 of its
/// own verdicts learned after a restore). So the training is copied into the live file, in one write transaction,
/// and the service's records stay as they are: they describe the Maildirs as they are now.
extension SQLiteTokenStore {
    /// What a restore copies: the token counts and totals, the learned-message ledger, the contact book (with the ham
    /// that vouches for each sender) and the template memory; and the starter agreement measured on those counts.
    public static let trainingTables = ["totals", "tokens", "ledger", "contacts", "ham_senders", "templates"]

    /// What a restore did besides the training: how many quarantine records it took from the backup, nil when it
    /// took none (the database's own were kept, or the backup had none).
    public struct Restored: Equatable, Sendable {
        public var totals: ClassTotals
        public var quarantineRecordsTaken: Int?
    }

    /// Makes the copy of a backup at `copyPath` (`backUp(databaseAt:into:destination:)`) ready to restore from:
    /// a pitchfilter database of this tokenizer, brought up to this program's schema. An SQLite file without any
    /// schema version is refused, not made a new database (found by an audit: an empty one was "restored", and all
    /// the training was gone).
    public static func prepareRestoreCopy(at copyPath: String, tokenizerIdentity: String) throws {
        if try schemaVersion(of: copyPath) == 0 { throw StoreError.notPitchfilterDatabase(path: copyPath) }
        // Closed before the restore reads it: its connection's log then holds nothing the restore would miss.
        _ = try SQLiteTokenStore(path: copyPath, tokenizerIdentity: tokenizerIdentity, access: .readWrite)
    }

    /// Replaces this database's training (`trainingTables` and the starter agreement) with that of the database at
    /// `copyPath`, made ready by `prepareRestoreCopy`. The addresses written to (`ContactSource.sent`) since the
    /// backup stay known besides the backup's. The quarantine's records are taken from it only into a database
    /// with no records and no journal of its own (a new one, or one a restore stopped before it was filled); the
    /// service's journal never is, so that the service takes
    /// stock of its Maildirs afresh rather than learning from a stale record of them. One write transaction: every
    /// reader sees the training as it was, or as restored.
    public func restoreTraining(from copyPath: String) throws(StoreError) -> Restored {
        guard access == .readWrite else {
            throw StoreError.readOnly(path: path, detail: "it was opened read-only (a bug: a restore writes)")
        }
        return try connection.withLock { connection throws(StoreError) in
            let attach = try connection.statement("ATTACH DATABASE ?1 AS restored")
            try attach.bind(1, copyPath)
            do throws(StoreError) {
                try attach.run()
                attach.reset()
            } catch {
                attach.reset()
                throw error
            }
            defer { _ = try? connection.execute("DETACH DATABASE restored") }
            return try connection.transaction(immediate: true) { () throws(StoreError) -> Restored in
                // Only into a database the service has not kept yet: one whose own records of released and deleted
                // messages have expired would take back the backup's held ones for messages long released (found
                // in review).
                var kept = 0
                for table in ["main.quarantine", "main.mailboxes", "main.mailbox_files"] {
                    kept += try Self.count(of: table, in: connection)
                }
                let takesQuarantine = kept == 0
                let tables = Self.trainingTables + (takesQuarantine ? ["quarantine"] : [])
                // Each table as this database has it: a backup with one missing or changed (by hand) is refused
                // before anything is replaced.
                var columns: [String: String] = [:]
                for table in tables {
                    let own = try Self.columns(of: table, in: "main", connection)
                    guard try Self.columns(of: table, in: "restored", connection) == own, !own.isEmpty else {
                        throw StoreError.corrupt(path: copyPath, detail: "its table \(table) is not a pitchfilter "
                            + "database's")
                    }
                    columns[table] = own.joined(separator: ", ")
                }
                // The addresses written to since the backup stay known: the journal kept says their Sent mail was
                // read, so it is not read again, and whom one wrote to stays known whatever is corrected (found in
                // review: they were lost for good).
                // Since the backup: added after anything the backup learned (all of them would keep a mistaken
                // `contacts import` made before it, which the restore is to undo; found in review). In the second of
                // the last thing it learned too: times are whole seconds, and an import made in that second after
                // the backup was lost (found by an audit). One made in that second before the backup is in the backup
                // anyway; only a mistaken import into another database in that very second would be kept.
                let sent = ContactSource.sent.rawValue
                try connection.execute("""
                    CREATE TEMP TABLE written_to AS SELECT key, added_at FROM main.contacts WHERE source = '\(sent)'
                    AND added_at >= max((SELECT coalesce(max(added_at), 0) FROM restored.contacts),
                                       (SELECT coalesce(max(learned_at), 0) FROM restored.ledger));
                    """)
                defer { _ = try? connection.execute("DROP TABLE IF EXISTS temp.written_to") }
                for table in tables {
                    let named = columns[table]!
                    // The template memory in the order it was written: its expiry takes the lowest rowids for the
                    // oldest sightings. (The other tables are keyed, without rowids.)
                    let order = table == "templates" ? " ORDER BY rowid" : ""
                    try connection.execute("""
                        DELETE FROM main.\(table);
                        INSERT INTO main.\(table) (\(named)) SELECT \(named) FROM restored.\(table)\(order);
                        """)
                }
                try connection.execute("""
                    INSERT INTO main.contacts (key, source, added_at) SELECT key, '\(sent)', added_at
                    FROM temp.written_to WHERE true ON CONFLICT (key) DO UPDATE SET source = excluded.source;
                    """)
                let key = SQLiteSchema.starterAgreementKey
                try connection.execute("""
                    DELETE FROM main.meta WHERE key = '\(key)';
                    INSERT INTO main.meta (key, value) SELECT key, value FROM restored.meta WHERE key = '\(key)';
                    """)
                let totals = try connection.statement("SELECT class, messages FROM main.totals")
                defer { totals.reset() }
                var restored = Restored(totals: ClassTotals(), quarantineRecordsTaken: nil)
                while try totals.step() {
                    switch totals.text(0) {
                    case "pitch": restored.totals.pitch = Int(totals.int64(1))
                    case "ham": restored.totals.ham = Int(totals.int64(1))
                    default: break
                    }
                }
                if takesQuarantine {
                    let taken = try Self.count(of: "main.quarantine", in: connection)
                    restored.quarantineRecordsTaken = taken > 0 ? taken : nil
                }
                return restored
            }
        }
    }

    /// The file's `user_version`, read through a connection of its own that is closed on return.
    private static func schemaVersion(of path: String) throws(StoreError) -> Int {
        try SQLiteConnection(path: path, flags: SQLITE_OPEN_READONLY, busyTimeoutMilliseconds: 2_000).userVersion()
    }

    private static func count(of table: String, in connection: SQLiteConnection) throws(StoreError) -> Int {
        let query = try connection.statement("SELECT count(*) FROM \(table)")
        defer { query.reset() }
        return try query.step() ? Int(query.int64(0)) : 0
    }

    /// The columns of `table` in `schema`, in order: named rather than `SELECT *`, so a column could never land in
    /// another's place. None for a table that is not there.
    private static func columns(of table: String, in schema: String,
                                _ connection: SQLiteConnection) throws(StoreError) -> [String] {
        let query = try connection.statement("PRAGMA \(schema).table_info(\(table))")
        defer { query.reset() }
        var names: [String] = []
        while try query.step() { if let name = query.text(1) { names.append("\"\(name)\"") } }
        return names
    }
}
