extension SQLiteTokenStore: MailboxJournal {
    public func fileRecords(in folder: String) throws -> [String: FileRecord] {
        try connection.withLock { connection throws(StoreError) in
            let query = try connection.statement(
                "SELECT name, state, verdict, digest FROM mailbox_files WHERE folder = ?1")
            defer { query.reset() }
            try query.bind(1, folder)
            var records: [String: FileRecord] = [:]
            while try query.step() {
                guard let name = query.text(0), let state = query.text(1).flatMap(FileState.init(rawValue:)) else {
                    throw StoreError.corrupt(path: path, detail: "the mailbox_files table holds a row it cannot read")
                }
                records[name] = FileRecord(folder: folder, name: name, state: state, verdict: query.text(2),
                                           digest: query.bytes(3))
            }
            return records
        }
    }

    public func quarantineEntries(_ selection: QuarantineQuery) throws -> [QuarantineEntry] {
        let columns = "id, mailbox, folder, name, digest, message_id, sender, subject, score, state, at"
        return try connection.withLock { connection throws(StoreError) in
            let query: Statement
            switch selection {
            case .id(let id):
                query = try connection.statement("SELECT \(columns) FROM quarantine WHERE id = ?1")
                try query.bind(1, id)
            case .file(let mailbox, let name):
                query = try connection.statement(
                    "SELECT \(columns) FROM quarantine WHERE mailbox = ?1 AND name = ?2 ORDER BY at DESC")
                try query.bind(1, mailbox)
                try query.bind(2, name)
            case .message(let mailbox, let digest, let messageID, let formerDigest):
                // The digest identifies the message exactly; the Message-ID finds it again after a client changed
                // its bytes (some add a Status or X-Keywords field), but an empty one matches nothing.
                // A UNION rather than an OR, so that each half uses its index, named: left to itself the planner
                // read the digest half through (mailbox, message_id), i.e. every row of the mailbox, and quarantine
                // rows are kept (deleted is a state). Every file the service looks at asks this: with 100,000 rows
                // it took 230 ms a file, and 0.01 ms through the digest's index.
                query = try connection.statement("""
                    SELECT \(columns) FROM quarantine INDEXED BY quarantine_by_digest
                    WHERE digest IN (?2, ?4) AND mailbox = ?1
                    UNION
                    SELECT \(columns) FROM quarantine INDEXED BY quarantine_by_message_id
                    WHERE ?3 != '' AND mailbox = ?1 AND message_id = ?3
                    ORDER BY at DESC
                    """)
                try query.bind(1, mailbox)
                try query.bind(2, digest)
                try query.bind(3, messageID)
                try query.bind(4, formerDigest ?? digest)
            case .held(let mailbox, let folder):
                query = try connection.statement("""
                    SELECT \(columns) FROM quarantine INDEXED BY quarantine_by_name
                    WHERE mailbox = ?1 AND folder = ?2 AND state = 'held' ORDER BY at DESC, id
                    """)
                try query.bind(1, mailbox)
                try query.bind(2, folder)
            case .states(let states):
                let list = states.map { "'\($0.rawValue)'" }.sorted().joined(separator: ", ")
                query = try connection.statement(
                    "SELECT \(columns) FROM quarantine WHERE state IN (\(list)) ORDER BY at DESC, id")
            }
            defer { query.reset() }
            var entries: [QuarantineEntry] = []
            while try query.step() {
                guard let id = query.text(0), let mailbox = query.text(1), let folder = query.text(2),
                      let name = query.text(3), let digest = query.bytes(4),
                      let state = query.text(9).flatMap(QuarantineState.init(rawValue:)) else {
                    throw StoreError.corrupt(path: path, detail: "the quarantine table holds a row it cannot read")
                }
                entries.append(QuarantineEntry(
                    id: id, mailbox: mailbox, folder: folder, name: name, digest: digest,
                    messageID: query.text(5) ?? "", sender: query.text(6) ?? "", subject: query.text(7) ?? "",
                    score: query.double(8), state: state, at: query.int64(10)))
            }
            return entries
        }
    }

    public func isInventoried(mailbox root: String) throws -> Bool {
        try connection.withLock { connection throws(StoreError) in
            let query = try connection.statement("SELECT 1 FROM mailboxes WHERE root = ?1")
            defer { query.reset() }
            try query.bind(1, root)
            return try query.step()
        }
    }

    /// One seek per folder, in the primary key's order: the table holds a row per file of every mailbox.
    public func recordedFolders(mailbox root: String) throws -> [String] {
        try connection.withLock { connection throws(StoreError) in
            var folders: [String] = []
            let exact = try connection.statement("SELECT 1 FROM mailbox_files WHERE folder = ?1 LIMIT 1")
            defer { exact.reset() }
            try exact.bind(1, root)
            if try exact.step() { folders.append(root) }
            // Maildir++ sub-folders are "root/.Name": they sort between "root/." and "root//" ("/" follows "."),
            // and nothing else does. Not "root-old" or "root2", nor a mailbox configured inside this one
            // ("root/bob", "root/bob/.Sent"), whose records are its own worker's.
            let next = try connection.statement(
                "SELECT folder FROM mailbox_files WHERE folder > ?1 AND folder < ?2 ORDER BY folder LIMIT 1")
            defer { next.reset() }
            var after = root + "/."
            while true {
                next.reset()
                try next.bind(1, after)
                try next.bind(2, root + "//")
                guard try next.step(), let folder = next.text(0) else { break }
                folders.append(folder)
                after = folder
            }
            return folders
        }
    }

    public func folderIdentities(mailbox root: String) throws -> [String: FolderIdentity] {
        try connection.withLock { connection throws(StoreError) in
            let query = try connection.statement("SELECT path, inode, born FROM mailbox_folders WHERE mailbox = ?1")
            defer { query.reset() }
            try query.bind(1, root)
            var identities: [String: FolderIdentity] = [:]
            while try query.step() {
                guard let path = query.text(0) else { continue }
                identities[path] = FolderIdentity(inode: UInt64(bitPattern: query.int64(1)), born: query.int64(2))
            }
            return identities
        }
    }

    public func apply(_ changes: [JournalChange]) throws {
        guard !changes.isEmpty else { return }
        guard access == .readWrite else {
            throw StoreError.readOnly(path: path,
                                      detail: "it was opened read-only (a bug: the journal needs read-write)")
        }
        try connection.withLock { connection throws(StoreError) in
            try connection.transaction(immediate: true) { () throws(StoreError) in
                let file = try connection.statement("""
                    INSERT OR REPLACE INTO mailbox_files (folder, name, state, verdict, digest, at)
                    VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                    """)
                defer { file.reset() }
                let quarantine = try connection.statement("""
                    INSERT OR REPLACE INTO quarantine
                        (id, mailbox, folder, name, digest, message_id, sender, subject, score, state, at)
                    VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)
                    """)
                defer { quarantine.reset() }
                let mailbox = try connection.statement(
                    "INSERT OR IGNORE INTO mailboxes (root, inventoried_at) VALUES (?1, ?2)")
                defer { mailbox.reset() }
                let forget = try connection.statement("DELETE FROM mailbox_files WHERE folder = ?1 AND name = ?2")
                defer { forget.reset() }
                let forgetFolder = try connection.statement(
                    "DELETE FROM mailbox_files WHERE folder = ?1 AND state = '\(FileState.done.rawValue)'")
                defer { forgetFolder.reset() }
                let forgetSettled = try connection.statement("""
                    DELETE FROM quarantine WHERE at < ?1
                        AND state IN ('\(QuarantineState.released.rawValue)', '\(QuarantineState.deleted.rawValue)')
                    """)
                defer { forgetSettled.reset() }
                let folderIdentity = try connection.statement(
                    "INSERT OR REPLACE INTO mailbox_folders (path, mailbox, inode, born) VALUES (?1, ?2, ?3, ?4)")
                defer { folderIdentity.reset() }
                let forgetFolderIdentity = try connection.statement("DELETE FROM mailbox_folders WHERE path = ?1")
                defer { forgetFolderIdentity.reset() }
                for change in changes {
                    switch change {
                    case .file(let record, let at):
                        try file.bind(1, record.folder)
                        try file.bind(2, record.name)
                        try file.bind(3, record.state.rawValue)
                        if let verdict = record.verdict { try file.bind(4, verdict) } else { try file.bindNull(4) }
                        if let digest = record.digest { try file.bind(5, digest) } else { try file.bindNull(5) }
                        try file.bind(6, at)
                        try file.run()
                    case .quarantine(let entry):
                        try quarantine.bind(1, entry.id)
                        try quarantine.bind(2, entry.mailbox)
                        try quarantine.bind(3, entry.folder)
                        try quarantine.bind(4, entry.name)
                        try quarantine.bind(5, entry.digest)
                        try quarantine.bind(6, entry.messageID)
                        try quarantine.bind(7, entry.sender)
                        try quarantine.bind(8, entry.subject)
                        try quarantine.bind(9, entry.score)
                        try quarantine.bind(10, entry.state.rawValue)
                        try quarantine.bind(11, entry.at)
                        try quarantine.run()
                    case .forgetFile(let folder, let name):
                        try forget.bind(1, folder)
                        try forget.bind(2, name)
                        try forget.run()
                    case .forgetFolder(let folder):
                        try forgetFolder.bind(1, folder)
                        try forgetFolder.run()
                    case .inventoried(let root, let at):
                        try mailbox.bind(1, root)
                        try mailbox.bind(2, at)
                        try mailbox.run()
                    case .forgetSettledQuarantine(let before):
                        try forgetSettled.bind(1, before)
                        try forgetSettled.run()
                    case .folderIdentity(let path, let mailbox, let identity):
                        try folderIdentity.bind(1, path)
                        try folderIdentity.bind(2, mailbox)
                        try folderIdentity.bind(3, Int64(bitPattern: identity.inode))
                        try folderIdentity.bind(4, identity.born)
                        try folderIdentity.run()
                    case .forgetFolderIdentity(let path):
                        try forgetFolderIdentity.bind(1, path)
                        try forgetFolderIdentity.run()
                    }
                }
            }
        }
    }
}
