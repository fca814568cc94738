#if PostgreSQL
import Logging
import NIOCore
import NIOPosix
import NIOSSL
import PitchClassifier
import PitchTokenizer
import PostgresNIO
import Dispatch
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// The shared model in PostgreSQL: four tables, created on first use by a host that may write.
///
///     pitchfilter_meta    (key text primary key, value text)      tokenizer identity, schema version, starter
///                                                                 agreement
///     pitchfilter_totals  (id int primary key = 1, pitch, ham)    messages learned per class
///     pitchfilter_tokens  (id bigint primary key, pitch, ham)     counts per token id (the id's 64 bits as bigint)
///     pitchfilter_ledger  (digest text primary key, class text, history text)
///
/// Classifying a message is one statement, so one round trip and one snapshot: the counts of its tokens and the
/// totals together; and a second, small one for the starter agreement, which only training changes. Training a batch takes the totals row's lock first, so trainers on any host go one at a time
/// while readers go on; it reads the batch's ledger rows and counts, applies `Training.apply` to them in memory (the
/// same rules as every backend), and writes back what changed: six round trips a batch, whatever its size.
///
/// The calls block, as the rest of the store does: they wait on postgres-nio's futures, so they must not run on an
/// event loop (the milter runs them on its thread pool, as it does SQLite's). The connection opens at the first
/// call and opens again after a failure. Every wait is bounded: connecting (TCP, TLS and authentication) by
/// `connectSeconds`, each statement by `statementSeconds`, after which the connection is closed and the call
/// fails; and for `retrySeconds` after a failed connection, calls fail at once instead of waiting again, so a
/// server that is down costs a busy milter one wait, not one per message.
final class PostgresTokenStore: SharedModel {
    let tokenizerIdentity: String
    private let address: SharedModelAddress
    private let readOnly: Bool
    private let password: @Sendable () throws -> String?
    private let state = Mutex<State>(State())

    private struct State: ~Copyable {
        var connection: PostgresConnection?
        /// The tables were found (or made) and checked on this connection's server.
        var prepared = false
        /// A reader found no tables yet: nothing has been trained, and every read says so until a writer makes them.
        var empty = false
    }

    static let schemaVersion = 1

    var location: String { address.description }
    /// Inside the pipe filter's 5 s, with room for the statements: a server that does not answer passes the mail
    /// through untagged.
    static let connectSeconds: Int64 = 3
    /// A message's statements (its counts, a ledger look-up): what a filter waits for.
    static let statementSeconds: Int64 = 5
    /// Training a batch (which may wait for another host's batch) and reading the whole model.
    static let longStatementSeconds: Int64 = 120
    static let retrySeconds = 5

    /// When the server at an address last failed to connect or to answer, and why: every store of the process
    /// (the milter has one per thread) fails at once with it for `retrySeconds` instead of waiting again.
    private static let failures = Mutex<[String: (at: ContinuousClock.Instant, error: StoreError)]>([:])
    private static let logger = Logger(label: "pitchfilter.postgres", factory: { _ in SwiftLogNoOpLogHandler() })

    init(address: SharedModelAddress, password: @escaping @Sendable () throws -> String?, tokenizerIdentity: String,
         readOnly: Bool) throws {
        self.address = address
        self.tokenizerIdentity = tokenizerIdentity
        self.readOnly = readOnly
        self.password = password
        Self.live.withLock { $0[ObjectIdentifier(self)] = Weak(store: self) }
    }

    /// Every store of the process, for `disconnectAll`.
    private static let live = Mutex<[ObjectIdentifier: Weak]>([:])
    private struct Weak: @unchecked Sendable {  // only read and written under `live`'s lock
        weak var store: PostgresTokenStore?
    }

    /// Closes every store's connection, for a process about to `_exit` (the pipe filter), which runs no deinit:
    /// the server then sees a goodbye, not a connection dropped, which it would log for every message.
    static func disconnectAll() {
        for store in live.withLock({ $0.values.compactMap(\.store) }) { store.disconnect() }
    }

    /// Closes the connection, if one is open; the next call opens another.
    func disconnect() {
        let open = state.withLock { state -> PostgresConnection? in
            defer { state.connection = nil; state.prepared = false }
            return state.connection
        }
        guard let open, !open.isClosed else { return }
        // Waiting blocks the thread: never an event loop's (the connection's own may be it), nor one of Swift
        // concurrency's few threads (the goodbye's task needs one to run).
        let mayWait = MultiThreadedEventLoopGroup.currentEventLoop == nil && !withUnsafeCurrentTask { $0 != nil }
        if mayWait {
            Self.sayGoodbye(open)
        } else {
            Self.closeInBackground(open)
        }
    }

    /// Closes with a Terminate message first, which postgres-nio sends only from its async `closeGracefully` (its
    /// `close` just drops the connection). Waits at most `goodbyeMilliseconds`, then leaves the closing to go on
    /// in the background.
    private static func sayGoodbye(_ connection: PostgresConnection) {
        let done = DispatchSemaphore(value: 0)
        Task {
            try? await connection.closeGracefully()
            done.signal()
        }
        if done.wait(timeout: .now() + .milliseconds(goodbyeMilliseconds)) == .timedOut {
            closeInBackground(connection)
        }
    }

    /// The goodbye, and TLS's close_notify exchange (`tlsShutdownMilliseconds`), take a round trip; a server that
    /// does not answer gets no longer than this.
    static let goodbyeMilliseconds = 1_000
    /// swift-nio-ssl waits 5 s by default for the server's close_notify before closing the socket.
    static let tlsShutdownMilliseconds: Int64 = 500

    /// The connection's settings, the password read now: only a call that needs the server reads its file.
    private func configuration() throws -> PostgresConnection.Configuration {
        let tls: PostgresConnection.Configuration.TLS
        do {
            var unchecked = TLSConfiguration.makeClientConfiguration()
            unchecked.certificateVerification = .none
            unchecked.shutdownTimeout = .milliseconds(Self.tlsShutdownMilliseconds)
            var checked = TLSConfiguration.makeClientConfiguration()
            checked.shutdownTimeout = .milliseconds(Self.tlsShutdownMilliseconds)
            if case .file(let path) = address.authorities {
                try checkReadable(authorities: path)
                checked.trustRoots = .file(path)
            }
            switch address.tls {
            case .disable: tls = .disable
            case .prefer: tls = .prefer(try NIOSSLContext(configuration: unchecked))
            case .require: tls = .require(try NIOSSLContext(configuration: unchecked))
            case .verifyCA:
                checked.certificateVerification = .noHostnameVerification
                tls = .require(try NIOSSLContext(configuration: checked))
            case .verifyFull: tls = .require(try NIOSSLContext(configuration: checked))
            }
        } catch let error as StoreError {
            throw error
        } catch {
            throw StoreError.sharedModel(path: address.description, detail: "TLS could not be set up: \(error)")
        }
        let password = try self.password() ?? address.password
        var configuration: PostgresConnection.Configuration
        switch address.endpoint {
        case .tcp(let host, let port):
            configuration = .init(host: host, port: port, username: address.user, password: password,
                                  database: address.database, tls: tls)
        case .unixSocket(let path):
            configuration = .init(unixSocketPath: path, username: address.user, password: password,
                                  database: address.database)
        }
        configuration.options.connectTimeout = .seconds(Self.connectSeconds)
        return configuration
    }

    /// `sslrootcert`'s file, with the reason in words when it cannot be used: swift-nio-ssl would report a missing
    /// file as `noSuchFilesystemObject`, and take a directory for a c_rehash'ed one.
    private func checkReadable(authorities path: String) throws {
        var info = stat()
        let descriptor = Glibc.open(path, O_RDONLY | O_CLOEXEC)
        defer { if descriptor >= 0 { Glibc.close(descriptor) } }
        guard descriptor >= 0, fstat(descriptor, &info) == 0 else {
            throw StoreError.sharedModel(path: address.description,
                                         detail: "cannot read sslrootcert \(path): \(String(cString: strerror(errno)))")
        }
        guard info.st_mode & S_IFMT == S_IFREG else {
            throw StoreError.sharedModel(path: address.description,
                                         detail: "sslrootcert \(path) is not a file of PEM certificates")
        }
    }

    /// Closed, since postgres-nio requires a connection to be closed before it goes: waited for where that is
    /// allowed, else kept alive by its own closing.
    deinit {
        disconnect()
        Self.live.withLock { _ = $0.removeValue(forKey: ObjectIdentifier(self)) }
    }

    // MARK: - TokenStore

    func lookup(_ tokens: [TokenID]) throws -> (counts: [TokenID: TokenCounts], totals: ClassTotals) {
        let ids = Array(Set(tokens)).map { Int64(bitPattern: $0.rawValue) }
        let rows = try read { connection in
            try Self.query(connection, """
                SELECT 0, id, pitch, ham FROM pitchfilter_tokens WHERE id = ANY(\(ids))
                UNION ALL SELECT 1, 0, pitch, ham FROM pitchfilter_totals WHERE id = 1
                """)
        }
        var counts: [TokenID: TokenCounts] = [:]
        var totals = ClassTotals()
        for row in rows ?? [] {
            let (kind, id, pitch, ham) = try decode(row, (Int32, Int64, Int64, Int64).self)
            if kind == 1 {
                totals = ClassTotals(pitch: Int(pitch), ham: Int(ham))
            } else {
                counts[TokenID(rawValue: UInt64(bitPattern: id))] =
                    TokenCounts(pitch: UInt32(clamping: pitch), ham: UInt32(clamping: ham))
            }
        }
        return (counts, totals)
    }

    func train(_ items: [TrainingItem]) throws -> [TrainingOutcome] {
        guard !items.isEmpty else { return [] }
        return try write { connection in
            // Waits for another host's batch: the long limit.
            let totalsRow = try Self.query(connection, seconds: Self.longStatementSeconds,
                                           "SELECT pitch, ham FROM pitchfilter_totals WHERE id = 1 FOR UPDATE")
            guard let row = totalsRow.first else {
                throw StoreError.sharedModel(path: address.description, detail: "pitchfilter_totals has no row")
            }
            var batch = Batch()
            let (pitch, ham) = try decode(row, (Int64, Int64).self)
            batch.totals = ClassTotals(pitch: Int(pitch), ham: Int(ham))
            let totalsBefore = batch.totals
            // Former digests too (`TrainingItem.formerDigest`): an entry under one is filed under the digest, which
            // the diff below writes as one row recorded and one erased.
            let digests = Array(Set(items.flatMap { [$0.digest] + ($0.formerDigest.map { [$0] } ?? []) }.map(Self.hex)))
            for row in try Self.query(connection, seconds: Self.longStatementSeconds, """
                SELECT digest, class, history FROM pitchfilter_ledger WHERE digest = ANY(\(digests))
                """) {
                let (digest, messageClass, history) = try decode(row, (String, String, String).self)
                guard let known = MessageClass(rawValue: messageClass) else {
                    throw StoreError.sharedModel(path: address.description,
                                                 detail: "the ledger holds an unknown class \"\(messageClass)\"")
                }
                batch.ledger[digest] = (known, Self.ids(history))
            }
            var touched = Set<TokenID>()
            for item in items {
                touched.formUnion(item.tokens)
                touched.formUnion(item.history)
            }
            for entry in batch.ledger.values { touched.formUnion(entry.history) }
            let ids = touched.map { Int64(bitPattern: $0.rawValue) }
            for row in try Self.query(connection, seconds: Self.longStatementSeconds, """
                SELECT id, pitch, ham FROM pitchfilter_tokens WHERE id = ANY(\(ids))
                """) {
                let (id, pitch, ham) = try decode(row, (Int64, Int64, Int64).self)
                batch.counts[TokenID(rawValue: UInt64(bitPattern: id))] =
                    TokenCounts(pitch: UInt32(clamping: pitch), ham: UInt32(clamping: ham))
            }
            let countsBefore = batch.counts
            let ledgerBefore = batch.ledger
            let outcomes = try Training.apply(items, to: &batch)

            // What changed, written back in one statement per kind.
            var upserted: (ids: [Int64], pitch: [Int64], ham: [Int64]) = ([], [], [])
            var deleted: [Int64] = []
            for id in touched where batch.counts[id] != countsBefore[id] {
                if let counts = batch.counts[id] {
                    upserted.ids.append(Int64(bitPattern: id.rawValue))
                    upserted.pitch.append(Int64(counts.pitch))
                    upserted.ham.append(Int64(counts.ham))
                } else {
                    deleted.append(Int64(bitPattern: id.rawValue))
                }
            }
            if !upserted.ids.isEmpty {
                try Self.query(connection, seconds: Self.longStatementSeconds, """
                    INSERT INTO pitchfilter_tokens (id, pitch, ham)
                    SELECT * FROM unnest(\(upserted.ids)::int8[], \(upserted.pitch)::int8[], \(upserted.ham)::int8[])
                    ON CONFLICT (id) DO UPDATE SET pitch = EXCLUDED.pitch, ham = EXCLUDED.ham
                    """)
            }
            if !deleted.isEmpty {
                try Self.query(connection, seconds: Self.longStatementSeconds, "DELETE FROM pitchfilter_tokens WHERE id = ANY(\(deleted))")
            }
            var recorded: (digests: [String], classes: [String], histories: [String]) = ([], [], [])
            var erased: [String] = []
            for digest in digests {
                let after = batch.ledger[digest]
                let before = ledgerBefore[digest]
                if after?.messageClass == before?.messageClass && after?.history == before?.history { continue }
                if let after {
                    recorded.digests.append(digest)
                    recorded.classes.append(after.messageClass.rawValue)
                    recorded.histories.append(after.history.map { String($0.rawValue) }.joined(separator: " "))
                } else {
                    erased.append(digest)
                }
            }
            if !recorded.digests.isEmpty {
                try Self.query(connection, seconds: Self.longStatementSeconds, """
                    INSERT INTO pitchfilter_ledger (digest, class, history)
                    SELECT * FROM unnest(\(recorded.digests)::text[], \(recorded.classes)::text[], \
                    \(recorded.histories)::text[])
                    ON CONFLICT (digest) DO UPDATE SET class = EXCLUDED.class, history = EXCLUDED.history
                    """)
            }
            if !erased.isEmpty {
                try Self.query(connection, seconds: Self.longStatementSeconds, "DELETE FROM pitchfilter_ledger WHERE digest = ANY(\(erased))")
            }
            if batch.totals != totalsBefore {
                let (pitch, ham) = (Int64(batch.totals.pitch), Int64(batch.totals.ham))
                try Self.query(connection, seconds: Self.longStatementSeconds, "UPDATE pitchfilter_totals SET pitch = \(pitch), ham = \(ham) WHERE id = 1")
            }
            return outcomes
        }
    }

    func ledgerClass(of digest: [UInt8]) throws -> MessageClass? {
        try ledgerClasses(of: [digest])[0]
    }

    func ledgerClasses(of digests: [[UInt8]]) throws -> [MessageClass?] {
        let hexes = digests.map(Self.hex)
        let rows = try read { connection in
            try Self.query(connection, "SELECT digest, class FROM pitchfilter_ledger WHERE digest = ANY(\(hexes))")
        }
        var found: [String: MessageClass] = [:]
        for row in rows ?? [] {
            let (digest, messageClass) = try decode(row, (String, String).self)
            found[digest] = MessageClass(rawValue: messageClass)
        }
        return hexes.map { found[$0] }
    }

    func statistics() throws -> StoreStatistics {
        let rows = try read { connection in
            try Self.query(connection, seconds: Self.longStatementSeconds, """
                SELECT pitch, ham, (SELECT count(*) FROM pitchfilter_tokens), (SELECT count(*) FROM pitchfilter_ledger)
                FROM pitchfilter_totals WHERE id = 1
                """)
        }
        guard let row = rows?.first else {
            return StoreStatistics(totals: ClassTotals(), tokens: 0, ledgerEntries: 0,
                                   tokenizerIdentity: tokenizerIdentity, schemaVersion: 0, sizeBytes: nil)
        }
        let (pitch, ham, tokens, ledger) = try decode(row, (Int64, Int64, Int64, Int64).self)
        return StoreStatistics(totals: ClassTotals(pitch: Int(pitch), ham: Int(ham)), tokens: Int(tokens),
                               ledgerEntries: Int(ledger), tokenizerIdentity: tokenizerIdentity,
                               schemaVersion: Self.schemaVersion, sizeBytes: nil)
    }

    func snapshot() throws -> TokenSnapshot {
        let rows = try read { connection in
            try Self.transaction(connection, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY") {
                (try Self.query(connection, "SELECT pitch, ham FROM pitchfilter_totals WHERE id = 1"),
                 try Self.query(connection, seconds: Self.longStatementSeconds,
                                "SELECT id, pitch, ham FROM pitchfilter_tokens"),
                 try Self.query(connection, "SELECT value FROM pitchfilter_meta WHERE key = \(Self.agreementKey)"))
            }
        }
        var totals = ClassTotals()
        if let row = rows?.0.first {
            let (pitch, ham) = try decode(row, (Int64, Int64).self)
            totals = ClassTotals(pitch: Int(pitch), ham: Int(ham))
        }
        var table = CountTable(minimumCapacity: rows?.1.count ?? 0)
        for row in rows?.1 ?? [] {
            let (id, pitch, ham) = try decode(row, (Int64, Int64, Int64).self)
            table[TokenID(rawValue: UInt64(bitPattern: id))] =
                TokenCounts(pitch: UInt32(clamping: pitch), ham: UInt32(clamping: ham))
        }
        return TokenSnapshot(table: table, totals: totals, agreement: try rows?.2.first.flatMap(agreement))
    }

    func starterAgreement() throws -> Double? {
        let rows = try read { connection in
            try Self.query(connection, "SELECT value FROM pitchfilter_meta WHERE key = \(Self.agreementKey)")
        }
        return try rows?.first.flatMap(agreement)
    }

    /// The figure in a meta row's value.
    private func agreement(_ row: PostgresRow) throws -> Double? {
        let text: String = try decode(row, String.self)
        return Double(text)
    }

    func recordStarterAgreement(_ agreement: Double?) throws {
        try write { connection in
            if let agreement, agreement.isFinite {
                try Self.query(connection, """
                    INSERT INTO pitchfilter_meta VALUES (\(Self.agreementKey), \(String(agreement)))
                    ON CONFLICT (key) DO UPDATE SET value = excluded.value
                    """)
            } else {
                try Self.query(connection, "DELETE FROM pitchfilter_meta WHERE key = \(Self.agreementKey)")
            }
        }
    }

    /// The same key as in a SQLite file's meta table.
    private static let agreementKey = SQLiteSchema.starterAgreementKey

    func allTokens() throws -> [(TokenID, TokenCounts)] {
        let rows = try read { connection in try Self.query(connection, seconds: Self.longStatementSeconds, "SELECT id, pitch, ham FROM pitchfilter_tokens") }
        var tokens: [(TokenID, TokenCounts)] = []
        tokens.reserveCapacity(rows?.count ?? 0)
        for row in rows ?? [] {
            let (id, pitch, ham) = try decode(row, (Int64, Int64, Int64).self)
            tokens.append((TokenID(rawValue: UInt64(bitPattern: id)),
                           TokenCounts(pitch: UInt32(clamping: pitch), ham: UInt32(clamping: ham))))
        }
        return tokens.sorted { $0.0 < $1.0 }
    }

    // MARK: - The batch in memory

    /// A training batch's rows as read, changed by `Training.apply` exactly as the in-memory store changes its own.
    private struct Batch: TrainingBackend {
        var counts: [TokenID: TokenCounts] = [:]
        var totals = ClassTotals()
        var ledger: [String: (messageClass: MessageClass, history: [TokenID])] = [:]

        func ledgerClass(of digest: [UInt8]) -> MessageClass? { ledger[PostgresTokenStore.hex(digest)]?.messageClass }

        func ledgerHistory(of digest: [UInt8]) -> [TokenID] { ledger[PostgresTokenStore.hex(digest)]?.history ?? [] }

        mutating func record(_ digest: [UInt8], as messageClass: MessageClass, history: [TokenID]) {
            ledger[PostgresTokenStore.hex(digest)] = (messageClass, history)
        }

        mutating func erase(_ digest: [UInt8]) { ledger[PostgresTokenStore.hex(digest)] = nil }

        mutating func adjust(_ tokens: [TokenID], pitch: Int, ham: Int) {
            Training.adjust(&counts, tokens, pitch: pitch, ham: ham)
        }
    }

    // MARK: - The connection

    /// `body` on a prepared connection; nil when a reader finds no tables yet (nothing trained anywhere).
    private func read<Result>(_ body: (PostgresConnection) throws -> Result) throws -> Result? {
        try withConnection { connection, empty in empty ? nil : try body(connection) }
    }

    /// `body` in one transaction, committed if it returns and rolled back if it throws.
    private func write<Result>(_ body: (PostgresConnection) throws -> Result) throws -> Result {
        guard !readOnly else {
            throw StoreError.readOnly(path: address.description, detail: "it was opened read-only (a bug: writing "
                + "needs read-write)")
        }
        return try withConnection { connection, _ in
            try Self.transaction(connection, "BEGIN ISOLATION LEVEL READ COMMITTED") { try body(connection) }
        }
    }

    private func withConnection<Result>(_ body: (PostgresConnection, _ empty: Bool) throws -> Result) throws -> Result {
        try state.withLock { state in
            if state.connection == nil || state.connection?.isClosed == true {
                if let failure = Self.failures.withLock({ $0[address.description] }),
                   ContinuousClock.now - failure.at < .seconds(Self.retrySeconds) {
                    throw failure.error
                }
                do {
                    // postgres-nio bounds TCP, TLS and authentication together by `connectTimeout`.
                    state.connection = try PostgresConnection.connect(
                        on: PostgresConnection.defaultEventLoopGroup.any(), configuration: try configuration(), id: 1,
                        logger: Self.logger
                    ).wait()
                    state.prepared = false
                } catch {
                    throw recordFailure(error)
                }
            }
            guard let connection = state.connection else {
                throw StoreError.sharedModel(path: address.description, detail: "no connection")
            }
            do {
                if !state.prepared || state.empty {
                    state.empty = try prepare(connection)
                    state.prepared = true
                }
                let result = try body(connection, state.empty)
                Self.failures.withLock { $0[address.description] = nil }
                return result
            } catch let error as StoreError {
                throw error
            } catch let error as Spoiled {
                // Closed (a statement past its time, a rollback that failed): the next call connects again, and
                // until then every store here fails at once.
                Self.closeInBackground(connection)
                state.connection = nil
                throw recordFailure(error)
            } catch {
                if connection.isClosed { state.connection = nil }
                throw StoreError.sharedModel(path: address.description, detail: Self.describe(error))
            }
        }
    }

    /// The failure as the caller sees it, remembered for `retrySeconds` for every store of this address.
    private func recordFailure(_ error: any Error) -> StoreError {
        let failure = error as? StoreError ?? StoreError.sharedModel(path: address.description,
                                                                    detail: Self.describe(error))
        Self.failures.withLock { $0[address.description] = (ContinuousClock.now, failure) }
        return failure
    }

    /// A connection that must not be used again.
    private struct Spoiled: Error, CustomStringConvertible {
        let description: String
    }

    /// Closes without waiting; the connection lives until its closing is done, as postgres-nio requires.
    private static func closeInBackground(_ connection: PostgresConnection) {
        let closing: EventLoopFuture<Void> = connection.close()
        closing.whenComplete { _ in withExtendedLifetime(connection) {} }
    }

    /// `body` between `begin` and COMMIT; rolled back if it throws, and the connection spoiled if even that fails.
    private static func transaction<Result>(_ connection: PostgresConnection, _ begin: PostgresQuery,
                                            seconds: Int64 = longStatementSeconds,
                                            _ body: () throws -> Result) throws -> Result {
        try query(connection, begin)
        do {
            let result = try body()
            try query(connection, seconds: seconds, "COMMIT")
            return result
        } catch {
            if (try? query(connection, "ROLLBACK")) == nil {
                throw Spoiled(description: "\(describe(error)); the rollback failed too")
            }
            throw error
        }
    }

    /// The future's value, or nil if it has none after `seconds`.
    private static func wait<Value: Sendable>(for future: EventLoopFuture<Value>, seconds: Int64) throws -> Value? {
        let done = DispatchSemaphore(value: 0)
        future.whenComplete { _ in done.signal() }
        guard done.wait(timeout: .now() + .seconds(Int(seconds))) == .success else { return nil }
        return try future.wait()
    }

    /// Checks the tables, making them first if there are none and this store may write. Returns true when a reader
    /// found none.
    private func prepare(_ connection: PostgresConnection) throws -> Bool {
        // Asked first, so that a reader before any training does not make the server log an error per message.
        let exists = try Self.query(connection, "SELECT to_regclass('pitchfilter_meta') IS NOT NULL")
        guard let row = exists.first, try decode(row, Bool.self) else {
            if readOnly { return true }
            try create(connection)
            return false
        }
        let rows = try Self.query(connection, "SELECT key, value FROM pitchfilter_meta")
        var meta: [String: String] = [:]
        for row in rows {
            let (key, value) = try decode(row, (String, String).self)
            meta[key] = value
        }
        if let schema = meta["schema"].flatMap(Int.init), schema > Self.schemaVersion {
            throw StoreError.schemaTooNew(path: address.description, found: schema, supported: Self.schemaVersion)
        }
        if let identity = meta["tokenizer"], identity != tokenizerIdentity {
            throw StoreError.tokenizerMismatch(path: address.description, database: identity,
                                               program: tokenizerIdentity)
        }
        return false
    }

    /// The tables, made once: hosts starting together wait for each other on an advisory lock.
    private func create(_ connection: PostgresConnection) throws {
        try Self.transaction(connection, "BEGIN") {
            try Self.query(connection, seconds: Self.longStatementSeconds, "SELECT pg_advisory_xact_lock(7031921405)")
            try Self.query(connection, """
                CREATE TABLE IF NOT EXISTS pitchfilter_meta (key text PRIMARY KEY, value text NOT NULL)
                """)
            try Self.query(connection, """
                CREATE TABLE IF NOT EXISTS pitchfilter_totals (
                    id int PRIMARY KEY CHECK (id = 1), pitch bigint NOT NULL, ham bigint NOT NULL)
                """)
            try Self.query(connection, """
                CREATE TABLE IF NOT EXISTS pitchfilter_tokens (
                    id bigint PRIMARY KEY, pitch bigint NOT NULL, ham bigint NOT NULL)
                """)
            try Self.query(connection, """
                CREATE TABLE IF NOT EXISTS pitchfilter_ledger (
                    digest text PRIMARY KEY, class text NOT NULL, history text NOT NULL)
                """)
            try Self.query(connection, "INSERT INTO pitchfilter_totals VALUES (1, 0, 0) ON CONFLICT DO NOTHING")
            let schema = String(Self.schemaVersion)
            try Self.query(connection, """
                INSERT INTO pitchfilter_meta VALUES ('tokenizer', \(tokenizerIdentity)), ('schema', \(schema))
                ON CONFLICT DO NOTHING
                """)
        }
        // Another host may have made them first, with another tokenizer.
        _ = try prepare(connection)
    }

    // MARK: - Helpers

    /// One statement, within `seconds`: past them the connection is closed (`Spoiled`), which ends the statement.
    @discardableResult
    private static func query(_ connection: PostgresConnection, seconds: Int64 = statementSeconds,
                              _ query: PostgresQuery) throws -> [PostgresRow] {
        guard let result = try wait(for: connection.query(query, logger: logger), seconds: seconds) else {
            throw Spoiled(description: "no answer within \(seconds) s")
        }
        return result.rows
    }

    private func decode<each Column: PostgresDecodable>(_ row: PostgresRow, _ types: (repeat each Column).Type)
        throws -> (repeat each Column) {
        do {
            return try row.decode(types, context: .default)
        } catch {
            throw StoreError.sharedModel(path: address.description, detail: "unexpected row: \(error)")
        }
    }

    private static func describe(_ error: any Error) -> String {
        guard let error = error as? PSQLError else { return "\(error)" }
        if let message = error.serverInfo?[.message] { return message }
        return "\(error.code)" + (error.underlying.map { ": \($0)" } ?? "")
    }

    static func hex(_ digest: [UInt8]) -> String {
        let digits = Array("0123456789abcdef".utf8)
        var text: [UInt8] = []
        text.reserveCapacity(digest.count * 2)
        for byte in digest {
            text.append(digits[Int(byte >> 4)])
            text.append(digits[Int(byte & 0x0F)])
        }
        return String(decoding: text, as: UTF8.self)
    }

    private static func ids(_ history: String) -> [TokenID] {
        history.split(separator: " ").compactMap { UInt64($0).map(TokenID.init(rawValue:)) }
    }
}
#endif
