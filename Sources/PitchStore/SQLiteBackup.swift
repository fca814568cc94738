import CSQLite

#if canImport(Glibc)
import Glibc
#endif

/// Copying a live database. The database is in WAL mode, so a plain `cp` of the main file alone leaves out every
/// commit still in the write-ahead log, and a copy taken while the service writes can be torn. SQLite's online
/// backup copies the pages as one read transaction sees them: a consistent snapshot, while the filter, the service
/// and `train` go on reading and writing.
extension SQLiteTokenStore {
    /// Copies the database at `path` into the file at `copyPath`, which must exist and be empty (the caller creates
    /// it, with the permissions a copy of the user's mail metadata needs), then checks the copy with
    /// `PRAGMA quick_check`. Returns the copy's size in bytes. The copy is a database of its own in WAL mode; it has
    /// not been synced to disk when this returns. Errors about the copy name `destination`, where the caller will
    /// put it, rather than its temporary name.
    ///
    /// The source is opened as a plain SQLite file, not as a store: a database of another tokenizer or a newer
    /// schema is exactly what one backs up before an upgrade or a downgrade.
    ///
    /// `atRest`: the source is a file nothing writes (a backup being restored). It is read as it is, without the
    /// -wal and -shm files WAL mode makes beside a database even to read it, which a read-only directory refuses, a
    /// file this user may not write was left with, and any other backup was too, though a restore leaves the backup
    /// as it was (found by audits). A file that shows signs of use (`isAtRest`) is read as usual, and so is one
    /// that showed them by the end of the copy, again.
    public static func backUp(databaseAt path: String, into copyPath: String, destination: String,
                              atRest: Bool = false) throws(StoreError) -> Int {
        if isURL(path) { throw .unsupportedLocation(path: path) }
        // As the store checks before opening: SQLite would block on a FIFO, and an empty file is no database yet.
        var info = stat()
        guard stat(path, &info) == 0 else {
            let reason = errno
            if reason == ENOENT { throw .missing(path: path) }
            throw .cannotOpen(path: path, detail: String(cString: strerror(reason)))
        }
        try refuseUnlessRegularFile(info, at: path)
        guard info.st_size > 0 else { throw .missing(path: path) }
        // Read without locks, the file must not be written meanwhile: a database used now and then, given as the
        // backup, whose next run began during the copy, is read again with them (found in review).
        if atRest, isAtRest(path, as: info) {
            do {
                let size = try copyPages(of: path, into: copyPath, destination: destination, immutable: true)
                if isAtRest(path, as: info) { return size }
            } catch {
                if isAtRest(path, as: info) { throw error }
            }
        }
        return try copyPages(of: path, into: copyPath, destination: destination, immutable: false)
    }

    /// Whether the database file at `path` shows no sign of use and is as `before` found it: no -shm (every
    /// connection to a database in WAL mode keeps one: found in review, a live database left with an empty -wal
    /// after a checkpoint was read without locks while it was written), no -wal with content, no -journal (a
    /// writer's in rollback mode, or one a crash left), and the same inode, size and times.
    private static func isAtRest(_ path: String, as before: stat) -> Bool {
        var log = stat(), now = stat()
        return !(stat(path + "-wal", &log) == 0 && log.st_size > 0) && stat(path + "-shm", &log) != 0
            && stat(path + "-journal", &log) != 0 && stat(path, &now) == 0 && now.st_ino == before.st_ino
            && now.st_size == before.st_size && now.st_mtim.tv_sec == before.st_mtim.tv_sec
            && now.st_mtim.tv_nsec == before.st_mtim.tv_nsec && now.st_ctim.tv_sec == before.st_ctim.tv_sec
            && now.st_ctim.tv_nsec == before.st_ctim.tv_nsec
    }

    /// `backUp`'s copy: `immutable`, the source is read without locks and without making its -wal and -shm.
    private static func copyPages(of path: String, into copyPath: String, destination: String,
                                  immutable: Bool) throws(StoreError) -> Int {
        let source = try SQLiteConnection(path: path, flags: SQLITE_OPEN_READONLY, busyTimeoutMilliseconds: 2_000,
                                          immutable: immutable)
        // The read transaction is opened here, so that a source that is no database, is locked or cannot be read
        // fails with its own name and reason: the backup step reports those on the copy's connection. The step
        // then copies inside this transaction: still one snapshot.
        try source.execute("BEGIN")
        defer { sqlite3_exec(source.handle, "ROLLBACK", nil, nil, nil) }
        try source.execute("SELECT count(*) FROM sqlite_schema")
        let copy = try SQLiteConnection(path: copyPath, flags: SQLITE_OPEN_READWRITE, busyTimeoutMilliseconds: 2_000)
        func failure(_ code: Int32) -> StoreError {
            StoreError(code: code, path: destination, message: String(cString: sqlite3_errmsg(copy.handle)),
                       systemErrno: sqlite3_system_errno(copy.handle), busyTimeoutMilliseconds: 2_000)
        }
        guard let backup = sqlite3_backup_init(copy.handle, "main", source.handle, "main") else {
            throw failure(sqlite3_errcode(copy.handle))
        }
        let stepped = sqlite3_backup_step(backup, -1)
        let finished = sqlite3_backup_finish(backup)
        guard stepped == SQLITE_DONE else { throw failure(finished != SQLITE_OK ? finished : stepped) }
        guard finished == SQLITE_OK else { throw failure(finished) }
        // A backup is only worth keeping if it can be read back: the copy's pages, checked the cheap way (its
        // indexes against their tables is what the full integrity_check adds, at many times the cost).
        var problems: [String] = []
        do {
            let check = try copy.statement("PRAGMA quick_check")
            defer { check.reset() }
            while try check.step() {
                // A problem may span lines ("*** in database main ***", then the page): one line each, for the log.
                if let line = check.text(0), line != "ok" {
                    problems.append(line.split(separator: "\n").joined(separator: " "))
                }
            }
        } catch .corrupt(_, let detail) {
            // Damage too bad for the check to report named the temporary copy (found by an audit): it is the
            // source's, copied page for page.
            problems.append(detail)
        }
        guard problems.isEmpty else {
            // SQLite may give the whole report as one row: kilobytes for one log line.
            let report = problems.joined(separator: "; ")
            throw .corrupt(path: path, detail: "its copy failed SQLite's check: "
                + (report.count > 300 ? report.prefix(300) + " …" : report))
        }
        let size = try copy.statement("SELECT page_count * page_size FROM pragma_page_count(), pragma_page_size()")
        defer { size.reset() }
        return try size.step() ? Int(size.int64(0)) : 0
    }
}
