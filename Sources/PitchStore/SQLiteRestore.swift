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

    /// Replaces this database's training (`trainingTables` and the starter agreement) with that of the database at
    /// `copyPath`: a copy of a backup, opened as a store of this program's tokenizer beforehand, so that it is a
    /// pitchfilter database of the same schema. With `withQuarantine`, the quarantine's records are taken from it
    /// too (for a new database, which has none of its own); the service's journal never is, so that the service
    /// takes stock of its Maildirs afresh rather than learning from a stale record of them. One write transaction:
    /// every reader sees the training as it was, or as restored. Returns the restored totals.
    public func restoreTraining(from copyPath: String, withQuarantine: Bool) throws(StoreError) -> ClassTotals {
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
            return try connection.transaction(immediate: true) { () throws(StoreError) -> ClassTotals in
                guard try Self.userVersion(of: "main", in: connection)
                        == Self.userVersion(of: "restored", in: connection) else {
                    throw StoreError.corrupt(path: copyPath, detail: "its schema is not this database's (a bug: the "
                        + "copy is opened as a store first)")
                }
                // The addresses written to since the backup stay known: the journal kept says their Sent mail was
                // read, so it is not read again, and whom one wrote to stays known whatever is corrected (found in
                // review: they were lost for good).
                try connection.execute("""
                    CREATE TEMP TABLE written_to AS SELECT key, added_at FROM main.contacts WHERE source = '\(ContactSource.sent.rawValue)';
                    """)
                defer { _ = try? connection.execute("DROP TABLE IF EXISTS temp.written_to") }
                for table in Self.trainingTables + (withQuarantine ? ["quarantine"] : []) {
                    let columns = try Self.columns(of: table, in: connection).joined(separator: ", ")
                    // The template memory in the order it was written: its expiry takes the lowest rowids for the
                    // oldest sightings. (The other tables are keyed, without rowids.)
                    let order = table == "templates" ? " ORDER BY rowid" : ""
                    try connection.execute("""
                        DELETE FROM main.\(table);
                        INSERT INTO main.\(table) (\(columns)) SELECT \(columns) FROM restored.\(table)\(order);
                        """)
                }
                try connection.execute("""
                    INSERT INTO main.contacts (key, source, added_at) SELECT key, '\(ContactSource.sent.rawValue)', added_at
                    FROM temp.written_to WHERE true ON CONFLICT (key) DO UPDATE SET source = excluded.source;
                    """)
                let key = SQLiteSchema.starterAgreementKey
                try connection.execute("""
                    DELETE FROM main.meta WHERE key = '\(key)';
                    INSERT INTO main.meta (key, value) SELECT key, value FROM restored.meta WHERE key = '\(key)';
                    """)
                let totals = try connection.statement("SELECT class, messages FROM main.totals")
                defer { totals.reset() }
                var restored = ClassTotals()
                while try totals.step() {
                    switch totals.text(0) {
                    case "pitch": restored.pitch = Int(totals.int64(1))
                    case "ham": restored.ham = Int(totals.int64(1))
                    default: break
                    }
                }
                return restored
            }
        }
    }

    private static func userVersion(of schema: String, in connection: SQLiteConnection) throws(StoreError) -> Int64 {
        let query = try connection.statement("PRAGMA \(schema).user_version")
        defer { query.reset() }
        return try query.step() ? query.int64(0) : 0
    }

    /// The columns of `table` as this database has them, in order: named rather than `SELECT *`, so a column
    /// could never land in another's place.
    private static func columns(of table: String, in connection: SQLiteConnection) throws(StoreError) -> [String] {
        let query = try connection.statement("PRAGMA main.table_info(\(table))")
        defer { query.reset() }
        var names: [String] = []
        while try query.step() { if let name = query.text(1) { names.append("\"\(name)\"") } }
        guard !names.isEmpty else {
            throw StoreError.corrupt(path: connection.path, detail: "it has no table \(table)")
        }
        return names
    }
}
