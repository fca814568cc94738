import CSQLite

#if canImport(Glibc)
import Glibc
#endif

/// Copying a live database. The database is in WAL mode, so a plain `cp` of the main file alone leaves out every
/// commit still in the write-ahead log, and a copy taken while the service writes can be torn. SQLite's online
/// backup copies the pages as one read transaction sees them: a consistent snapshot, while the filter, the service
/// and `train` go on reading and writing.
extension SQLiteTokenStore {
    /// Copies the database at `path` into the file at `destination`, which must exist and be empty (the caller
    /// creates it, with the permissions a copy of the user's mail metadata needs), then checks the copy with
    /// `PRAGMA quick_check`. Returns the copy's size in bytes. The copy is a database of its own in WAL mode; it has
    /// not been synced to disk when this returns.
    ///
    /// The source is opened as a plain SQLite file, not as a store: a database of another tokenizer or a newer
    /// schema is exactly what one backs up before an upgrade or a downgrade.
    public static func backUp(databaseAt path: String, into destination: String) throws(StoreError) -> Int {
        if isURL(path) { throw .unsupportedLocation(path: path) }
        var info = stat()
        guard stat(path, &info) == 0 else {
            if errno == ENOENT { throw .missing(path: path) }
            throw .cannotOpen(path: path, detail: String(cString: strerror(errno)))
        }
        let source = try SQLiteConnection(path: path, flags: SQLITE_OPEN_READONLY, busyTimeoutMilliseconds: 2_000)
        let copy = try SQLiteConnection(path: destination, flags: SQLITE_OPEN_READWRITE,
                                        busyTimeoutMilliseconds: 2_000)
        guard let backup = sqlite3_backup_init(copy.handle, "main", source.handle, "main") else {
            throw copy.failure(sqlite3_errcode(copy.handle))
        }
        // All pages in one step: one read transaction, so one snapshot. A writer elsewhere is not blocked (WAL).
        let stepped = sqlite3_backup_step(backup, -1)
        let finished = sqlite3_backup_finish(backup)
        guard stepped == SQLITE_DONE else {
            // The source's own error (not a database, a corrupt page, a lock) is on its connection.
            let sourceCode = sqlite3_errcode(source.handle)
            throw sourceCode != SQLITE_OK ? source.failure(sourceCode) : copy.failure(stepped)
        }
        guard finished == SQLITE_OK else { throw copy.failure(finished) }
        // A backup is only worth keeping if it can be read back: the copy's pages, checked the cheap way (its
        // indexes against their tables is what the full integrity_check adds, at many times the cost).
        let check = try copy.statement("PRAGMA quick_check")
        defer { check.reset() }
        var problems: [String] = []
        while try check.step() {
            // A problem may span lines ("*** in database main ***" then the page): one line each, for the log.
            if let line = check.text(0), line != "ok" { problems.append(line.split(separator: "\n").joined(separator: " ")) }
        }
        guard problems.isEmpty else {
            throw .corrupt(path: path, detail: "its copy failed SQLite's check: "
                + problems.prefix(3).joined(separator: "; "))
        }
        let size = try copy.statement("SELECT page_count * page_size FROM pragma_page_count(), pragma_page_size()")
        defer { size.reset() }
        return try size.step() ? Int(size.int64(0)) : 0
    }
}
