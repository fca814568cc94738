import CSQLite
import Glibc

/// `SQLITE_TRANSIENT` is a macro casting -1 to a function pointer, which Swift does not import: it tells SQLite to
/// copy bound bytes, since Swift's buffers only live for the duration of the `withUnsafe…` call.
private let transient = unsafeBitCast(-1, to: sqlite3_destructor_type.self)

/// One SQLite connection and its prepared statements.
///
/// Not thread-safe on its own (opened with SQLITE_OPEN_NOMUTEX): `SQLiteTokenStore` keeps it inside a Mutex, which
/// is cheaper than SQLite's own per-call mutex and also covers the statement cache.
final class SQLiteConnection {
    let path: String
    let handle: OpaquePointer
    /// What `sqlite3_busy_timeout` was last given, for error messages and to restore it after a moment at 0.
    var busyTimeoutMilliseconds: Int32
    // Keyed by SQL text; the store uses a handful of fixed statements, so preparing each once per connection
    // removes parsing from every lookup and every training item.
    private var statements: [String: OpaquePointer] = [:]

    /// `immutable`: the file is read as it is, with no locks and no -wal or -shm (SQLite's `immutable=1`), which only
    /// a file nothing writes may be.
    init(path: String, flags: Int32, busyTimeoutMilliseconds: Int32, immutable: Bool = false) throws(StoreError) {
        self.path = path
        self.busyTimeoutMilliseconds = busyTimeoutMilliseconds
        var opened: OpaquePointer?
        // "file://" before an absolute path: "file:" and a path beginning "//" would name a host (found in review).
        let name = immutable
            ? (path.hasPrefix("/") ? "file://" : "file:") + Self.percentEncoded(path) + "?immutable=1" : path
        let code = sqlite3_open_v2(name, &opened, flags | SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_EXRESCODE
                                       | (immutable ? SQLITE_OPEN_URI : 0), nil)
        guard code == SQLITE_OK, let opened else {
            let error = StoreError(code: code, path: path,
                                   message: opened.map { String(cString: sqlite3_errmsg($0)) } ?? "out of memory",
                                   systemErrno: opened.map { sqlite3_system_errno($0) } ?? 0,
                                   busyTimeoutMilliseconds: busyTimeoutMilliseconds)
            sqlite3_close_v2(opened)
            throw error
        }
        handle = opened
        sqlite3_busy_timeout(handle, busyTimeoutMilliseconds)
    }

    /// A path as a URI's path: every byte but letters, digits, `/`, `.`, `_`, `~` and `-` as `%XX`.
    static func percentEncoded(_ path: String) -> String {
        var encoded = ""
        for byte in path.utf8 {
            switch byte {
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
                 UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "/"), UInt8(ascii: "."), UInt8(ascii: "_"),
                 UInt8(ascii: "~"), UInt8(ascii: "-"):
                encoded.append(Character(Unicode.Scalar(byte)))
            default:
                encoded += "%" + (byte < 16 ? "0" : "") + String(byte, radix: 16, uppercase: true)
            }
        }
        return encoded
    }

    deinit {
        for statement in statements.values { sqlite3_finalize(statement) }
        sqlite3_close_v2(handle)
    }

    /// The error SQLite just reported on this connection.
    func failure(_ code: Int32) -> StoreError {
        StoreError(code: code, path: path, message: String(cString: sqlite3_errmsg(handle)),
                   systemErrno: sqlite3_system_errno(handle), busyTimeoutMilliseconds: busyTimeoutMilliseconds)
    }

    /// A cached prepared statement, ready to bind and step.
    func statement(_ sql: String) throws(StoreError) -> Statement {
        if let cached = statements[sql] {
            sqlite3_reset(cached)  // normally a no-op: every use ends with reset()
            return Statement(handle: cached, connection: self)
        }
        var prepared: OpaquePointer?
        let code = sqlite3_prepare_v3(handle, sql, -1, UInt32(SQLITE_PREPARE_PERSISTENT), &prepared, nil)
        guard code == SQLITE_OK, let prepared else { throw failure(code) }
        statements[sql] = prepared
        return Statement(handle: prepared, connection: self)
    }

    /// Runs SQL that may hold several statements and returns no rows (schema migrations, pragmas).
    func execute(_ sql: String) throws(StoreError) {
        let code = sqlite3_exec(handle, sql, nil, nil, nil)
        guard code == SQLITE_OK else { throw failure(code) }
    }

    /// Runs `body` in one transaction: committed if it returns, rolled back if anything throws, so nothing is ever
    /// half-applied. `immediate` takes the write lock up front: a deferred transaction that reads and then writes
    /// would fail with SQLITE_BUSY at once in WAL mode instead of waiting for the busy timeout.
    ///
    /// Inside a transaction already open (`SQLiteTokenStore.withSnapshot`, `inOneWrite`), `body` joins it and
    /// leaves committing to its owner: a read joins any, a write only one that holds the write lock (BEGIN
    /// IMMEDIATE inside a snapshot fails).
    func transaction<Result>(immediate: Bool, _ body: () throws(StoreError) -> Result) throws(StoreError) -> Result {
        if sqlite3_get_autocommit(handle) == 0, !immediate || sqlite3_txn_state(handle, nil) == SQLITE_TXN_WRITE {
            return try body()
        }
        try statement(immediate ? "BEGIN IMMEDIATE" : "BEGIN").run()
        do {
            let result = try body()
            try statement("COMMIT").run()
            return result
        } catch {
            rollback()
            throw error
        }
    }

    private func rollback() {
        // SQLite may already have rolled back by itself (on SQLITE_FULL, SQLITE_IOERR, …); a second ROLLBACK would
        // only fail with "no transaction is active".
        guard sqlite3_get_autocommit(handle) == 0 else { return }
        sqlite3_exec(handle, "ROLLBACK", nil, nil, nil)
    }

    /// `PRAGMA user_version`: the schema version of this database, 0 for a new or foreign one.
    func userVersion() throws(StoreError) -> Int {
        let query = try statement("PRAGMA user_version")
        defer { query.reset() }
        return try query.step() ? Int(query.int64(0)) : 0
    }
}

/// A borrowed view of a cached prepared statement. Every use ends with `reset()`, which releases the statement's
/// read snapshot; a statement left mid-iteration would keep an implicit transaction open.
struct Statement {
    let handle: OpaquePointer
    let connection: SQLiteConnection

    func bind(_ index: Int32, _ value: Int64) throws(StoreError) {
        try check(sqlite3_bind_int64(handle, index, value))
    }

    func bind(_ index: Int32, _ text: String) throws(StoreError) {
        try check(sqlite3_bind_text(handle, index, text, -1, transient))
    }

    func bind(_ index: Int32, _ bytes: [UInt8]) throws(StoreError) {
        // An empty array has no base address and sqlite3_bind_blob would bind NULL instead of an empty blob.
        let code = bytes.withUnsafeBytes { buffer in
            if let base = buffer.baseAddress {
                sqlite3_bind_blob(handle, index, base, Int32(clamping: buffer.count), transient)
            } else {
                sqlite3_bind_zeroblob(handle, index, 0)
            }
        }
        try check(code)
    }

    /// Advances to the next row: true if there is one, false when done.
    func step() throws(StoreError) -> Bool {
        switch sqlite3_step(handle) {
        case SQLITE_ROW: return true
        case SQLITE_DONE: return false
        case let code: throw connection.failure(code)
        }
    }

    /// Runs a statement that returns no rows, then resets it.
    func run() throws(StoreError) {
        defer { reset() }
        while try step() {}
    }

    func bind(_ index: Int32, _ value: Double) throws(StoreError) {
        try check(sqlite3_bind_double(handle, index, value))
    }

    func bindNull(_ index: Int32) throws(StoreError) {
        try check(sqlite3_bind_null(handle, index))
    }

    func int64(_ column: Int32) -> Int64 { sqlite3_column_int64(handle, column) }

    func double(_ column: Int32) -> Double { sqlite3_column_double(handle, column) }

    /// A blob column, nil for NULL.
    func bytes(_ column: Int32) -> [UInt8]? {
        guard sqlite3_column_type(handle, column) != SQLITE_NULL else { return nil }
        let length = Int(sqlite3_column_bytes(handle, column))
        guard length > 0, let base = sqlite3_column_blob(handle, column) else { return [] }
        return Array(UnsafeRawBufferPointer(start: base, count: length))
    }

    /// A count as stored, held within what `TokenCounts` can represent whatever the file holds.
    func count(_ column: Int32) -> UInt32 { UInt32(clamping: sqlite3_column_int64(handle, column)) }

    func text(_ column: Int32) -> String? {
        guard let bytes = sqlite3_column_text(handle, column) else { return nil }
        let length = Int(sqlite3_column_bytes(handle, column))
        return String(decoding: UnsafeBufferPointer(start: bytes, count: length), as: UTF8.self)
    }

    /// Ends this use. Bindings are kept: every caller binds every parameter before stepping.
    func reset() {
        sqlite3_reset(handle)
    }

    private func check(_ code: Int32) throws(StoreError) {
        guard code == SQLITE_OK else { throw connection.failure(code) }
    }
}
