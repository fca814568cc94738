/// One step of the schema history, run in its own transaction that also sets `PRAGMA user_version`.
///
/// Append-only: databases in the field have already run every released migration, so a change to the schema is a
/// new migration, never an edit of an old one.
struct Migration: Sendable {
    let version: Int
    let sql: String
}

enum SQLiteSchema {
    static let migrations: [Migration] = [
        // Token ids are 64-bit hashes stored as Int64(bitPattern:) in the rowid, the fastest point lookup SQLite
        // has. The ledger is keyed by the message digest; WITHOUT ROWID stores each row once, inside its key's
        // B-tree. The tokenizer identity is written into `meta` by the same transaction.
        Migration(version: 1, sql: """
            CREATE TABLE meta (key TEXT PRIMARY KEY NOT NULL, value TEXT NOT NULL) WITHOUT ROWID;
            CREATE TABLE totals (class TEXT PRIMARY KEY NOT NULL, messages INTEGER NOT NULL) WITHOUT ROWID;
            INSERT INTO totals (class, messages) VALUES ('pitch', 0), ('ham', 0);
            CREATE TABLE tokens (id INTEGER PRIMARY KEY, pitch INTEGER NOT NULL, ham INTEGER NOT NULL);
            CREATE TABLE ledger (
                digest BLOB PRIMARY KEY NOT NULL,
                class TEXT NOT NULL,
                learned_at INTEGER NOT NULL
            ) WITHOUT ROWID;
            """),
        // The contact book (ContactBook): known addresses, and "@domain" keys for the domains they make known.
        Migration(version: 2, sql: """
            CREATE TABLE contacts (
                key TEXT PRIMARY KEY NOT NULL,
                source TEXT NOT NULL,
                added_at INTEGER NOT NULL
            ) WITHOUT ROWID;
            """),
        // The template memory (TemplateMemory): one row per band key of each message seen, oldest first by rowid
        // (since version 9, only the two newest per band, sender and recipient; the first two indexes are
        // dropped by version 11).
        Migration(version: 3, sql: """
            CREATE TABLE templates (
                band INTEGER NOT NULL,
                sender TEXT NOT NULL,
                recipient TEXT NOT NULL,
                seen_at INTEGER NOT NULL
            );
            CREATE INDEX templates_by_band ON templates (band, seen_at);
            CREATE INDEX templates_by_sender ON templates (sender, recipient, seen_at);
            CREATE INDEX templates_by_time ON templates (seen_at);
            """),
        // Which message a sighting is, so a message filtered and later trained is recorded once and never counts
        // as its own twin.
        Migration(version: 4, sql: """
            ALTER TABLE templates ADD COLUMN message INTEGER NOT NULL DEFAULT 0;
            CREATE INDEX templates_by_message ON templates (message);
            """),
        // The service's journal (MailboxJournal): what it did with each file of the Maildirs it watches, the
        // messages it quarantined, and the mailboxes whose existing mail it has taken stock of.
        Migration(version: 5, sql: """
            CREATE TABLE mailbox_files (
                folder TEXT NOT NULL,
                name TEXT NOT NULL,
                state TEXT NOT NULL,
                verdict TEXT,
                digest BLOB,
                at INTEGER NOT NULL,
                PRIMARY KEY (folder, name)
            ) WITHOUT ROWID;
            CREATE TABLE quarantine (
                id TEXT PRIMARY KEY NOT NULL,
                mailbox TEXT NOT NULL,
                folder TEXT NOT NULL,
                name TEXT NOT NULL,
                digest BLOB NOT NULL,
                message_id TEXT NOT NULL,
                sender TEXT NOT NULL,
                subject TEXT NOT NULL,
                score REAL NOT NULL,
                state TEXT NOT NULL,
                at INTEGER NOT NULL
            ) WITHOUT ROWID;
            CREATE INDEX quarantine_by_name ON quarantine (mailbox, name);
            CREATE INDEX quarantine_by_digest ON quarantine (digest);
            CREATE TABLE mailboxes (root TEXT PRIMARY KEY NOT NULL, inventoried_at INTEGER NOT NULL) WITHOUT ROWID;
            """),
        // Every message arriving in a watched INBOX is looked up by Message-ID too (a client may have changed
        // the bytes of a message it moved out of quarantine).
        Migration(version: 6, sql: """
            CREATE INDEX quarantine_by_message_id ON quarantine (mailbox, message_id);
            """),
        // The message-id memory of the reply signal (`ref:`), which issue 7's ablation found added nothing and which
        // is gone: ids of Message-ID fields hashed, with when they were seen. Nothing reads or writes it now. It is
        // left as it is, not emptied: a process still running an older version keeps filling it and asks it
        // whether a reply answers a known message, and an emptied table, refilled at once, would answer "unknown"
        // for every reply to older mail until that process restarts. A later migration drops it.
        Migration(version: 7, sql: """
            CREATE TABLE message_ids (id INTEGER PRIMARY KEY, seen_at INTEGER NOT NULL);
            CREATE INDEX message_ids_by_time ON message_ids (seen_at);
            """),
        // The history tokens each message was learned with (TrainingItem.history), as little-endian 64-bit ids:
        // a forget or move takes those back rather than what the mailbox's history says at that later time.
        Migration(version: 8, sql: """
            ALTER TABLE ledger ADD COLUMN history BLOB;
            """),
        // At most two sightings per band from one sender to one recipient (`SQLiteTokenStore.record`), found through
        // one index on all three, so that a sender mailing the same skeleton every day costs a lookup a few rows,
        // not a month of them: with 20,000 sightings of one notification, each of its messages took 33 ms to filter
        // instead of 8, and 42 MB instead of 21. Time and message are in the index too, so rows outside the window
        // are passed over in the index alone. Older rows are not trimmed here but at their key's next sighting:
        // trimming 400,000 rows (the most the memory keeps) took 4.3 s, near the pipe filter's deadline, where the
        // index alone takes 1 s. The two indexes it replaces stay: a service still running the previous version
        // names one in its queries until it restarts.
        Migration(version: 9, sql: """
            CREATE INDEX templates_by_key ON templates (band, sender, recipient, seen_at, message);
            """),
        // Which ham message made each sender known (ContactBook.addHamSenders): a correction of one message takes
        // its sender back only when no other ham message from them is left. Contacts from before this version
        // have no rows here, and go with their first correction, as they did.
        Migration(version: 10, sql: """
            CREATE TABLE ham_senders (digest BLOB PRIMARY KEY NOT NULL, key TEXT NOT NULL) WITHOUT ROWID;
            CREATE INDEX ham_senders_by_key ON ham_senders (key);
            """),
        // The two indexes templates_by_key replaced in version 9, kept then for a service still running an older
        // version (which named templates_by_sender in its queries). Every pipe filter run wrote their pages too:
        // each sighting's rows went into six B-trees, a run's write was ~27 pages of log, and the log reached the
        // checkpoint (with its fsyncs) every other run.
        Migration(version: 11, sql: """
            DROP INDEX IF EXISTS templates_by_band;
            DROP INDEX IF EXISTS templates_by_sender;
            """),
        // Which directory each folder of the Maildirs the service watches is (inode and birth time), by path
        // (MailboxJournal.folderIdentities): a folder renamed while the service was stopped is recognised at the next
        // start, as one renamed while it runs is, and its mail is taken stock of rather than learned from. A few rows
        // per mailbox.
        Migration(version: 12, sql: """
            CREATE TABLE mailbox_folders (
                path TEXT PRIMARY KEY NOT NULL, mailbox TEXT NOT NULL, inode INTEGER NOT NULL, born INTEGER NOT NULL
            ) WITHOUT ROWID;
            """),
        // A sighting's message is now named by its Message-ID and sender where it has an id
        // (`Engine.sightingIdentity`), no longer by its digest: a message recorded under its digest would find
        // that row again under its new name, as the same note sent before, and train a pitch's token into ham.
        // The memory holds 30 days; it starts again, as a new database's does. (A DELETE with no WHERE empties the
        // table at once, without visiting its rows.)
        Migration(version: 13, sql: """
            DELETE FROM templates;
            """),
        // Senders and recipients as 64-bit keys (`TemplateSighting`), not text: a row took as much room as the
        // addresses, which senders choose (found by an audit: 131-139 MB at the 400,000-row cap with 77-character
        // addresses, where the README said tens of megabytes). An INTEGER column, since a TEXT one would store the
        // keys as text; the memory starts again, as at version 13. (Dropping the table drops its indexes.) Only
        // integers: a service of the previous version still running (its statements prepared again on the new
        // table) would write addresses as text, which sort after every key and read as 0, and the lookup of other
        // senders went round them for ever (found in review); its writes fail instead, costing it sightings until it
        // is restarted.
        Migration(version: 14, sql: """
            DROP TABLE templates;
            CREATE TABLE templates (
                band INTEGER NOT NULL,
                sender INTEGER NOT NULL CHECK (typeof(sender) = 'integer'),
                recipient INTEGER NOT NULL CHECK (typeof(recipient) = 'integer'),
                seen_at INTEGER NOT NULL,
                message INTEGER NOT NULL
            );
            CREATE INDEX templates_by_time ON templates (seen_at);
            CREATE INDEX templates_by_message ON templates (message);
            CREATE INDEX templates_by_key ON templates (band, sender, recipient, seen_at, message);
            """),
    ]

    /// The `meta` key holding the identity of the tokenizer the database was built with.
    static let tokenizerKey = "tokenizer"
    /// The meta key of the starter agreement (`SQLiteTokenStore.recordStarterAgreement`).
    static let starterAgreementKey = "starter_agreement"
}
