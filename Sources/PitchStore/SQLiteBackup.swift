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
    /// as it was (found by audits). A -wal already there is read as usual.
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
        // A database open anywhere has its -shm beside it: then not at rest, whatever was said (found in review:
        // a live database left with an empty -wal after a checkpoint, read without locks while it was written).
        var log = stat()
        let immutable = atRest && !(stat(path + "-wal", &log) == 0 && log.st_size > 0) && stat(path + "-shm", &log) != 0
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
