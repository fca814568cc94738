import CSQLite
import Glibc
import PitchClassifier
import PitchTokenizer
import Synchronization

/// The default token store: one SQLite file in WAL mode, shared by many short-lived pipe-filter processes, the CLI
/// and the daemon.
///
/// WAL lets readers (every classified message) proceed while a writer (training) commits, and one transaction per
/// lookup or per training batch keeps both consistent. Opening is cheap by design, since the pipe filter opens the
/// database once per message: when the schema is current it costs one query besides the file opens.
public final class SQLiteTokenStore: TokenStore, ContactBook, TemplateMemory {
    public enum Access: Sendable {
        /// For classifying: never writes, and a missing database throws `StoreError.missing` so the caller can
        /// fall back to the embedded starter model instead of creating an empty database.
        case readOnly
        /// For training: creates the file (and its parent directory, mode 0700, as the XDG base directory spec
        /// asks for per-user data) if missing.
        case readWrite
    }

    public let path: String
    public let tokenizerIdentity: String
    let access: Access
    // Each instance is used from one thread at a time, but the engine shares it as `Sendable`; the Mutex makes that
    // true and also guards the statement cache. Concurrency between processes is SQLite's job (WAL and locks).
    let connection: Mutex<SQLiteConnection>
    /// Where the counts, totals and ledger are when several hosts share them (`SharedModel`): then every model call
    /// goes there, and this file holds the mailbox's history and the service's records only.
    public let sharedModel: (any SharedModel)?

    /// Whether this opening made a database of an empty file: one just created, or one that held a database
    /// until it was truncated, which whoever opened it should say (SQLite takes an empty file for a new database).
    public let beganAsAnEmptyFile: Bool

    /// Opens (and for `.readWrite` creates or upgrades) the database at `path`.
    ///
    /// - Parameter busyTimeoutMilliseconds: how long a writer waits for another writer before throwing
    ///   `StoreError.locked`. Two seconds outlasts a training batch of a few hundred messages, yet stays well
    ///   inside the time an MTA allows a pipe filter.
    public convenience init(path: String, tokenizerIdentity: String, access: Access,
                            busyTimeoutMilliseconds: Int32 = 2_000, sharedModel: (any SharedModel)? = nil) throws {
        try self.init(path: path, tokenizerIdentity: tokenizerIdentity, access: access,
                      busyTimeoutMilliseconds: busyTimeoutMilliseconds, migrations: SQLiteSchema.migrations,
                      sharedModel: sharedModel)
    }

    /// `migrations` is a parameter so tests can play a newer or older program against the same file.
    init(path: String, tokenizerIdentity: String, access: Access, busyTimeoutMilliseconds: Int32,
         migrations: [Migration], sharedModel: (any SharedModel)? = nil) throws(StoreError) {
        // "postgres://host/db" is a valid relative path; opened as one, it became a stray file where the user
        // meant a server.
        if Self.isURL(path) { throw .unsupportedLocation(path: path) }
        beganAsAnEmptyFile = access == .readWrite && Self.isEmptyFile(path) && !Self.isJustMade(path)
        self.path = path
        self.tokenizerIdentity = tokenizerIdentity
        self.access = access
        self.sharedModel = sharedModel
        let opened = try Self.open(path: path, tokenizerIdentity: tokenizerIdentity, access: access,
                                   busyTimeoutMilliseconds: busyTimeoutMilliseconds, migrations: migrations)
        connection = Mutex(opened)
    }

    /// Whether `path` is an empty regular file: SQLite takes it for a new database, so it holds no database yet,
    /// or held one until it was truncated (which whoever reads or makes one of it says).
    public static func isEmptyFile(_ path: String) -> Bool {
        var info = stat()
        return stat(path, &info) == 0 && info.st_mode & S_IFMT == S_IFREG && info.st_size == 0
    }

    /// Whether the file was changed in the last few seconds: an empty one is then another process's new database,
    /// which it is about to write, not one that lost what it held (found by an audit: ten `train` runs starting on
    /// a new database at once said, some of them, that it had been an empty file, and to restore a backup).
    /// A change time in the future (a clock stepped back) is no evidence of a new file (found in review).
    static func isJustMade(_ path: String, now: Int = time(nil)) -> Bool {
        var info = stat()
        guard stat(path, &info) == 0 else { return false }
        let age = now - info.st_mtim.tv_sec
        return 0 <= age && age < 5
    }

    /// Whether `location` begins with a URL scheme (RFC 3986: a letter, then letters, digits, "+", "-", ".")
    /// and "://".
    static func isURL(_ location: String) -> Bool {
        let scheme = location.prefix { $0.isASCII && ($0.isLetter || $0.isNumber || "+-.".contains($0)) }
        guard let first = scheme.first, first.isLetter else { return false }
        return location[scheme.endIndex...].hasPrefix("://")
    }

    // MARK: - TokenStore

    public func lookup(_ tokens: [TokenID]) throws -> (counts: [TokenID: TokenCounts], totals: ClassTotals) {
        if let sharedModel { return try sharedModel.lookup(tokens) }
        // A prepared point query per token, in rowid order so neighbouring ids share B-tree pages: measured, 500
        // tokens take about 0.3 ms on an open connection and 0.8 ms on a fresh one, so nothing cleverer is needed.
        let ids = Set(tokens).sorted { Int64(bitPattern: $0.rawValue) < Int64(bitPattern: $1.rawValue) }
        return try connection.withLock { connection throws(StoreError) in
            try connection.transaction(immediate: false) { () throws(StoreError) in
                let totals = try Self.readTotals(connection)
                var counts: [TokenID: TokenCounts] = [:]
                counts.reserveCapacity(ids.count)
                let query = try connection.statement("SELECT pitch, ham FROM tokens WHERE id = ?1")
                defer { query.reset() }
                for id in ids {
                    try query.bind(1, Int64(bitPattern: id.rawValue))
                    if try query.step() { counts[id] = TokenCounts(pitch: query.count(0), ham: query.count(1)) }
                    query.reset()
                }
                return (counts, totals)
            }
        }
    }

    /// Runs `body` in one read transaction: every lookup it makes (counts, contacts, templates) sees
    /// the same snapshot of the database, and the connection takes SQLite's locks once instead of once per lookup.
    /// `body` must only read, and only through this store, from this thread.
    public func withSnapshot<Result>(_ body: () throws -> Result) throws -> Result {
        try inOpenTransaction("BEGIN", body)
    }

    /// Runs `body` in one write transaction: the writes it makes through this store (template sightings, message
    /// ids, contacts) commit together or not at all, with one commit instead of one each. `body` must use only
    /// this store, from this thread.
    public func inOneWrite<Result>(_ body: () throws -> Result) throws -> Result {
        guard access == .readWrite else {
            throw StoreError.readOnly(path: path, detail: "it was opened read-only (a bug: writing needs read-write)")
        }
        return try inOpenTransaction("BEGIN IMMEDIATE", body)
    }

    /// A transaction that the store's own calls inside `body` join (`SQLiteConnection.transaction`). The lock is
    /// released while `body` runs, since those calls take it themselves. Whatever goes wrong, the connection leaves
    /// the transaction: a long-lived one (the milter's readers, the service) must never stay inside it.
    private func inOpenTransaction<Result>(_ begin: String, _ body: () throws -> Result) throws -> Result {
        try connection.withLock { connection throws(StoreError) in try connection.statement(begin).run() }
        do {
            let result = try body()
            try connection.withLock { connection throws(StoreError) in try connection.statement("COMMIT").run() }
            return result
        } catch {
            connection.withLock { connection in
                if sqlite3_get_autocommit(connection.handle) == 0 {
                    sqlite3_exec(connection.handle, "ROLLBACK", nil, nil, nil)
                }
            }
            throw error
        }
    }

    /// `lookup` without the dictionary: the pipe filter's one query, in the order the engine wants.
    public func counts(of tokens: [TokenID]) throws -> (counts: [TokenCounts], totals: ClassTotals) {
        if let sharedModel { return try sharedModel.counts(of: tokens) }
        // Rowid order, so neighbouring ids share B-tree pages; a repeated id is looked up once.
        let order = tokens.indices.sorted {
            Int64(bitPattern: tokens[$0].rawValue) < Int64(bitPattern: tokens[$1].rawValue)
        }
        return try connection.withLock { connection throws(StoreError) in
            try connection.transaction(immediate: false) { () throws(StoreError) in
                let totals = try Self.readTotals(connection)
                var counts = [TokenCounts](repeating: .zero, count: tokens.count)
                let query = try connection.statement("SELECT pitch, ham FROM tokens WHERE id = ?1")
                defer { query.reset() }
                var previous: (id: TokenID, counts: TokenCounts)?
                for index in order {
                    let id = tokens[index]
                    if let previous, previous.id == id {
                        counts[index] = previous.counts
                        continue
                    }
                    try query.bind(1, Int64(bitPattern: id.rawValue))
                    let found = try query.step() ? TokenCounts(pitch: query.count(0), ham: query.count(1)) : .zero
                    query.reset()
                    counts[index] = found
                    previous = (id, found)
                }
                return (counts, totals)
            }
        }
    }

    /// The starter agreement `recordStarterAgreement` kept, from the meta table (or the shared model's).
    public func starterAgreement() throws -> Double? {
        if let sharedModel { return try sharedModel.starterAgreement() }
        return try connection.withLock { connection throws(StoreError) in try Self.readAgreement(connection) }
    }

    static func readAgreement(_ connection: SQLiteConnection) throws(StoreError) -> Double? {
        let query = try connection.statement("SELECT value FROM meta WHERE key = ?1")
        defer { query.reset() }
        try query.bind(1, SQLiteSchema.starterAgreementKey)
        return try query.step() ? query.text(0).flatMap(Double.init) : nil
    }

    /// Keeps the starter agreement measured after training (nil: none, the training is too small to tell).
    public func recordStarterAgreement(_ agreement: Double?) throws {
        if let sharedModel { return try sharedModel.recordStarterAgreement(agreement) }
        guard access == .readWrite else {
            throw StoreError.readOnly(path: path, detail: "it was opened read-only (a bug: training needs read-write)")
        }
        try connection.withLock { connection throws(StoreError) in
            try connection.transaction(immediate: true) { () throws(StoreError) in
                if let agreement, agreement.isFinite {
                    let upsert = try connection.statement(
                        "INSERT INTO meta (key, value) VALUES (?1, ?2) ON CONFLICT (key) DO UPDATE SET value = ?2")
                    defer { upsert.reset() }
                    try upsert.bind(1, SQLiteSchema.starterAgreementKey)
                    try upsert.bind(2, String(agreement))
                    try upsert.run()
                } else {
                    let delete = try connection.statement("DELETE FROM meta WHERE key = ?1")
                    defer { delete.reset() }
                    try delete.bind(1, SQLiteSchema.starterAgreementKey)
                    try delete.run()
                }
            }
        }
    }

    public func train(_ items: [TrainingItem]) throws -> [TrainingOutcome] {
        guard !items.isEmpty else { return [] }
        if let sharedModel { return try sharedModel.train(items) }
        guard access == .readWrite else {
            throw StoreError.readOnly(path: path, detail: "it was opened read-only (a bug: training needs read-write)")
        }
        return try connection.withLock { connection throws(StoreError) in
            try connection.transaction(immediate: true) { () throws(StoreError) in
                var trainer = try SQLiteTrainer(connection)
                let outcomes = try Training.apply(items, to: &trainer)
                try trainer.finish()
                return outcomes
            }
        }
    }

    public func ledgerClass(of digest: [UInt8]) throws -> MessageClass? {
        try ledgerClasses(of: [digest])[0]
    }

    /// `ledgerClasses(of:)`, each found under the message's former digest where its digest has none
    /// (`TrainingItem.formerDigest`): the class a message was learned as, whenever it was.
    public func ledgerClasses(of digests: [[UInt8]], formerly formers: [[UInt8]?]) throws -> [MessageClass?] {
        var classes = try ledgerClasses(of: digests)
        let unknown = classes.indices.filter { classes[$0] == nil && formers[$0] != nil }
        guard !unknown.isEmpty else { return classes }
        for (index, known) in zip(unknown, try ledgerClasses(of: unknown.map { formers[$0]! })) {
            classes[index] = known
        }
        return classes
    }

    /// `ledgerClass` of each digest, from one read transaction.
    public func ledgerClasses(of digests: [[UInt8]]) throws -> [MessageClass?] {
        if let sharedModel { return try sharedModel.ledgerClasses(of: digests) }
        return try connection.withLock { connection throws(StoreError) in
            try connection.transaction(immediate: false) { () throws(StoreError) in
                let query = try connection.statement(SQLiteTrainer.findLedgerSQL)
                defer { query.reset() }
                return try digests.map { digest throws(StoreError) in
                    defer { query.reset() }
                    try query.bind(1, digest)
                    guard try query.step() else { return nil }
                    return try SQLiteTrainer.messageClass(query.text(0), connection)
                }
            }
        }
    }

    public func statistics() throws -> StoreStatistics {
        if let sharedModel { return try sharedModel.statistics() }
        return try connection.withLock { connection throws(StoreError) in
            try connection.transaction(immediate: false) { () throws(StoreError) in
                let totals = try Self.readTotals(connection)
                let tokens = try Self.integer(connection, "SELECT count(*) FROM tokens")
                let ledger = try Self.integer(connection, "SELECT count(*) FROM ledger")
                let pages = try Self.integer(connection, "PRAGMA page_count")
                let pageSize = try Self.integer(connection, "PRAGMA page_size")
                let version = try connection.userVersion()
                return StoreStatistics(totals: totals, tokens: tokens, ledgerEntries: ledger,
                                       tokenizerIdentity: tokenizerIdentity, schemaVersion: version,
                                       sizeBytes: pages.multipliedReportingOverflow(by: pageSize).partialValue)
            }
        }
    }

    /// All counts and the totals from one read transaction, for runs over many messages (`TokenSnapshot`).
    public func snapshot() throws -> TokenSnapshot {
        if let sharedModel { return try sharedModel.snapshot() }
        return try connection.withLock { connection throws(StoreError) in
            try connection.transaction(immediate: false) { () throws(StoreError) -> TokenSnapshot in
                let totals = try Self.readTotals(connection)
                let expected = try Self.integer(connection, "SELECT count(*) FROM tokens")
                var table = CountTable(minimumCapacity: expected)
                let query = try connection.statement("SELECT id, pitch, ham FROM tokens")
                defer { query.reset() }
                while try query.step() {
                    table[TokenID(rawValue: UInt64(bitPattern: query.int64(0)))] =
                        TokenCounts(pitch: query.count(1), ham: query.count(2))
                }
                return TokenSnapshot(table: table, totals: totals, agreement: try Self.readAgreement(connection))
            }
        }
    }

    public func allTokens() throws -> [(TokenID, TokenCounts)] {
        if let sharedModel { return try sharedModel.allTokens() }
        return try connection.withLock { connection throws(StoreError) in
            try connection.transaction(immediate: false) { () throws(StoreError) -> [(TokenID, TokenCounts)] in
                let query = try connection.statement("SELECT id, pitch, ham FROM tokens ORDER BY id")
                defer { query.reset() }
                // SQLite orders the signed bit patterns: ids of 2⁶³ and above come first. Both halves are already
                // in unsigned order within themselves, so putting the high half last gives TokenID order.
                var low: [(TokenID, TokenCounts)] = []
                var high: [(TokenID, TokenCounts)] = []
                while try query.step() {
                    let stored = query.int64(0)
                    let entry = (TokenID(rawValue: UInt64(bitPattern: stored)),
                                 TokenCounts(pitch: query.count(1), ham: query.count(2)))
                    if stored < 0 { high.append(entry) } else { low.append(entry) }
                }
                return low + high
            }
        }
    }

    // MARK: - ContactBook

    @discardableResult
    public func addContacts(_ addresses: [String], source: ContactSource, at time: Int64) throws -> Int {
        try addContacts(addresses, source: source, at: time, vouchedBy: [])
    }

    @discardableResult
    public func addHamSenders(_ senders: [HamSender], at time: Int64) throws -> Int {
        try addContacts(senders.map(\.address), source: .ham, at: time, vouchedBy: senders)
    }

    private func addContacts(_ addresses: [String], source: ContactSource, at time: Int64,
                             vouchedBy senders: [HamSender]) throws -> Int {
        guard access == .readWrite else {
            throw StoreError.readOnly(path: path, detail: "it was opened read-only (a bug: adding contacts needs read-write)")
        }
        return try connection.withLock { connection throws(StoreError) in
            try connection.transaction(immediate: true) { () throws(StoreError) -> Int in
                let vouch = try connection.statement(
                    "INSERT INTO ham_senders (digest, key) VALUES (?1, ?2) ON CONFLICT (digest) DO UPDATE SET key = ?2")
                defer { vouch.reset() }
                // A message that vouched under its former digest vouches under its digest now: one row each.
                let unvouch = try connection.statement("DELETE FROM ham_senders WHERE digest = ?1")
                defer { unvouch.reset() }
                for sender in senders {
                    guard let keys = ContactKeys.of(sender.address) else { continue }
                    if let former = sender.formerDigest {
                        try unvouch.bind(1, former)
                        try unvouch.run()
                    }
                    try vouch.bind(1, sender.digest)
                    try vouch.bind(2, keys.address)
                    try vouch.run()
                }
                let insert = try connection.statement(
                    "INSERT INTO contacts (key, source, added_at) VALUES (?1, ?2, ?3) ON CONFLICT (key) DO NOTHING")
                defer { insert.reset() }
                // Someone known from a ham message whom the owner then writes to is known for good: a correction
                // of that ham (`removeHamSenders`) must not take them away.
                let confirm = try connection.statement(
                    "UPDATE contacts SET source = 'sent' WHERE key = ?1 AND source = 'ham'")
                defer { confirm.reset() }
                var added = 0
                for address in addresses {
                    guard let keys = ContactKeys.of(address) else { continue }
                    for key in [keys.address] + (keys.domain.map { [$0] } ?? []) {
                        try insert.bind(1, key)
                        try insert.bind(2, source.rawValue)
                        try insert.bind(3, time)
                        try insert.run()
                        let inserted = sqlite3_changes(connection.handle) > 0
                        if key == keys.address, inserted { added += 1 }
                        if !inserted, source == .sent {
                            try confirm.bind(1, key)
                            try confirm.run()
                        }
                    }
                }
                return added
            }
        }
    }

    @discardableResult
    public func removeHamSenders(_ senders: [HamSender]) throws -> Int {
        guard access == .readWrite else {
            throw StoreError.readOnly(path: path, detail: "it was opened read-only (a bug: removing contacts needs read-write)")
        }
        return try connection.withLock { connection throws(StoreError) in
            try connection.transaction(immediate: true) { () throws(StoreError) -> Int in
                let unvouch = try connection.statement("DELETE FROM ham_senders WHERE digest = ?1")
                defer { unvouch.reset() }
                for digest in senders.flatMap(\.digests) {
                    try unvouch.bind(1, digest)
                    try unvouch.run()
                }
                let vouched = try connection.statement("SELECT 1 FROM ham_senders WHERE key = ?1 LIMIT 1")
                defer { vouched.reset() }
                let remove = try connection.statement("DELETE FROM contacts WHERE key = ?1 AND source = 'ham'")
                defer { remove.reset() }
                // Keys of addresses end in "@domain", the domain's own key is exactly that.
                let neighbour = try connection.statement(
                    "SELECT 1 FROM contacts WHERE key != ?1 AND substr(key, -length(?1)) = ?1 LIMIT 1")
                defer { neighbour.reset() }
                var removed = 0
                for sender in senders {
                    guard let keys = ContactKeys.of(sender.address) else { continue }
                    try vouched.bind(1, keys.address)
                    let stillVouched = try vouched.step()
                    vouched.reset()
                    if stillVouched { continue }
                    try remove.bind(1, keys.address)
                    try remove.run()
                    guard sqlite3_changes(connection.handle) > 0 else { continue }
                    removed += 1
                    guard let domain = keys.domain else { continue }
                    try neighbour.bind(1, domain)
                    let othersThere = try neighbour.step()
                    neighbour.reset()
                    if !othersThere {
                        try remove.bind(1, domain)
                        try remove.run()
                    }
                }
                return removed
            }
        }
    }

    @discardableResult
    public func removeContacts(_ keys: [ContactKey]) throws -> [ContactKey] {
        guard access == .readWrite else {
            throw StoreError.readOnly(path: path, detail: "it was opened read-only (a bug: removing contacts needs read-write)")
        }
        return try connection.withLock { connection throws(StoreError) in
            try connection.transaction(immediate: true) { () throws(StoreError) -> [ContactKey] in
                // An address's key is itself; a domain's is "@domain", and every address there ends in it.
                let address = try connection.statement("DELETE FROM contacts WHERE key = ?1")
                defer { address.reset() }
                let domain = try connection.statement(
                    "DELETE FROM contacts WHERE key = ?1 OR substr(key, -length(?1)) = ?1")
                defer { domain.reset() }
                let unvouch = try connection.statement("DELETE FROM ham_senders WHERE key = ?1")
                defer { unvouch.reset() }
                let unvouchDomain = try connection.statement(
                    "DELETE FROM ham_senders WHERE substr(key, -length(?1)) = ?1")
                defer { unvouchDomain.reset() }
                let neighbour = try connection.statement(
                    "SELECT 1 FROM contacts WHERE key != ?1 AND substr(key, -length(?1)) = ?1 LIMIT 1")
                defer { neighbour.reset() }
                var known: [ContactKey] = []
                for key in keys {
                    switch key {
                    case .address(let key):
                        try address.bind(1, key)
                        try address.run()
                        guard sqlite3_changes(connection.handle) > 0 else { continue }
                        try unvouch.bind(1, key)
                        try unvouch.run()
                        if let at = ContactKeys.of(key)?.domain {
                            try neighbour.bind(1, at)
                            let othersThere = try neighbour.step()
                            neighbour.reset()
                            if !othersThere {
                                try address.bind(1, at)
                                try address.run()
                            }
                        }
                    case .domain(let key):
                        try domain.bind(1, key)
                        try domain.run()
                        guard sqlite3_changes(connection.handle) > 0 else { continue }
                        try unvouchDomain.bind(1, key)
                        try unvouchDomain.run()
                    }
                    known.append(key)
                }
                return known
            }
        }
    }

    public func vouchingMessages(among digests: [[UInt8]]) throws -> Set<[UInt8]> {
        try connection.withLock { connection throws(StoreError) in
            try connection.transaction(immediate: false) { () throws(StoreError) -> Set<[UInt8]> in
                let find = try connection.statement("SELECT 1 FROM ham_senders WHERE digest = ?1")
                defer { find.reset() }
                var found = Set<[UInt8]>()
                for digest in digests {
                    try find.bind(1, digest)
                    if try find.step() { found.insert(digest) }
                    find.reset()
                }
                return found
            }
        }
    }

    public func relationship(with address: String) throws -> Relationship {
        try connection.withLock { connection throws(StoreError) in
            try connection.transaction(immediate: false) { () throws(StoreError) -> Relationship in
                try Self.relationship(with: address, in: connection)
            }
        }
    }

    private static func relationship(with address: String,
                                      in connection: SQLiteConnection) throws(StoreError) -> Relationship {
        let find = try connection.statement("SELECT 1 FROM contacts WHERE key = ?1")
        defer { find.reset() }
        func known(_ key: String) throws(StoreError) -> Bool {
            try find.bind(1, key)
            defer { find.reset() }
            return try find.step()
        }
        let any = try connection.statement("SELECT 1 FROM contacts LIMIT 1")
        defer { any.reset() }
        guard try any.step() else { return .unknown }
        guard let keys = ContactKeys.of(address) else { return .firstContact }
        if try known(keys.address) { return .knownAddress }
        if let domain = keys.domain, try known(domain) { return .knownDomain }
        return .firstContact
    }

    public func relationship(with address: String, apartFrom digest: [UInt8]) throws -> Relationship {
        try connection.withLock { connection throws(StoreError) in
            // One read transaction: a writer between the two lookups could otherwise change the answer's premises.
            try connection.transaction(immediate: false) { () throws(StoreError) -> Relationship in
                let plain = try Self.relationship(with: address, in: connection)
                guard plain == .knownAddress, let keys = ContactKeys.of(address) else { return plain }
                // What `removeHamSenders` of this message would leave: the address goes if only this message
                // vouches for it and the owner never wrote to it, and its domain with it unless the owner's word
                // or another address keeps it.
                let vouchers = try connection.statement("SELECT digest FROM ham_senders WHERE key = ?1 LIMIT 2")
                defer { vouchers.reset() }
                try vouchers.bind(1, keys.address)
                var found: [[UInt8]] = []
                while try vouchers.step() { found.append(vouchers.bytes(0) ?? []) }
                let source = try connection.statement("SELECT source FROM contacts WHERE key = ?1")
                defer { source.reset() }
                func sourceOf(_ key: String) throws(StoreError) -> String? {
                    try source.bind(1, key)
                    defer { source.reset() }
                    return try source.step() ? source.text(0) : nil
                }
                let ham = ContactSource.ham.rawValue
                guard found == [digest], try sourceOf(keys.address) == ham else { return .knownAddress }
                var gone = [keys.address]
                let domainSource = try keys.domain.flatMap { domain throws(StoreError) in try sourceOf(domain) }
                if let domain = keys.domain, domainSource == ham {
                    let neighbour = try connection.statement(
                        "SELECT 1 FROM contacts WHERE key != ?1 AND key != ?2 AND substr(key, -length(?1)) = ?1 LIMIT 1")
                    defer { neighbour.reset() }
                    try neighbour.bind(1, domain)
                    try neighbour.bind(2, keys.address)
                    if try !neighbour.step() { gone.append(domain) }
                }
                let others = try connection.statement("SELECT 1 FROM contacts WHERE key != ?1 AND key != ?2 LIMIT 1")
                defer { others.reset() }
                try others.bind(1, gone[0])
                try others.bind(2, gone.count > 1 ? gone[1] : gone[0])
                guard try others.step() else { return .unknown }
                if let domain = keys.domain, domainSource != nil, !gone.contains(domain) { return .knownDomain }
                return .firstContact
            }
        }
    }

    /// The whole book in memory, for runs that look up thousands of senders while this connection is busy writing.
    public func contactSnapshot() throws -> ContactSnapshot {
        try connection.withLock { connection throws(StoreError) in
            let query = try connection.statement("SELECT key, source FROM contacts")
            defer { query.reset() }
            var keys = Set<String>()
            var fromHam = Set<String>()
            while try query.step() {
                guard let key = query.text(0) else { continue }
                keys.insert(key)
                if query.text(1) == ContactSource.ham.rawValue { fromHam.insert(key) }
            }
            let vouching = try connection.statement("SELECT key, digest FROM ham_senders")
            defer { vouching.reset() }
            var vouchers: [String: Set<[UInt8]>] = [:]
            while try vouching.step() {
                guard let key = vouching.text(0), let digest = vouching.bytes(1) else { continue }
                vouchers[key, default: []].insert(digest)
            }
            return ContactSnapshot(keys: keys, fromHam: fromHam, vouchers: vouchers)
        }
    }

    public func allContacts() throws -> [Contact] {
        try readContacts("SELECT key, source, added_at FROM contacts WHERE key NOT LIKE '@%' ORDER BY key")
    }

    /// The domains the book knows ("@example.org"), each with the source and time of its first address.
    public func allDomains() throws -> [Contact] {
        try readContacts("SELECT key, source, added_at FROM contacts WHERE key LIKE '@%' ORDER BY key")
    }

    /// Rows of `contacts` selected by `sql` (key, source, added_at).
    private func readContacts(_ sql: String) throws -> [Contact] {
        try connection.withLock { connection throws(StoreError) in
            let query = try connection.statement(sql)
            defer { query.reset() }
            var contacts: [Contact] = []
            while try query.step() {
                guard let key = query.text(0), let source = query.text(1).flatMap(ContactSource.init(rawValue:)) else {
                    throw StoreError.corrupt(path: path, detail: "the contacts table holds a row it cannot read")
                }
                contacts.append(Contact(address: key, source: source, addedAt: query.int64(2)))
            }
            return contacts
        }
    }

    /// Known addresses (not counting the domains they make known) and template sightings from `since` on (the
    /// window's: older ones are kept until the next write prunes them, but count no more; found by an audit), for
    /// `pitchfilter stats`.
    public func memoryCounts(sightingsSince since: Int64) throws -> (contacts: Int, templateSightings: Int) {
        try connection.withLock { connection throws(StoreError) in
            try connection.transaction(immediate: false) { () throws(StoreError) in
                (try Self.integer(connection, "SELECT count(*) FROM contacts WHERE key NOT LIKE '@%'"),
                 // A sighting is a row per band of its skeleton: counted once (found by an audit, which saw 16
                 // sightings for 4 messages).
                 try Self.integer(connection, """
                    SELECT count(*) FROM (SELECT DISTINCT message, sender, recipient, seen_at FROM templates
                    WHERE seen_at >= \(since))
                    """))
            }
        }
    }

    /// Whether the file at `path` is no longer the one open here: removed (`rm` to start afresh) or another file
    /// put in its place (`mv` of a backup over it). Everything written since went to a file no one will open again
    /// (found by an audit: `train` said it had learned thousands of messages, and the service quarantined pitches
    /// that no `quarantine list` could show). SQLite compares the inode at the path with the open one (a stat), so
    /// a `cp` over the file, which keeps its inode, is not noticed. Cheap enough to ask before each message.
    public var fileWasReplaced: Bool {
        connection.withLock { connection in
            var moved: Int32 = 0
            return sqlite3_file_control(connection.handle, "main", SQLITE_FCNTL_HAS_MOVED, &moved) == SQLITE_OK
                && moved != 0
        }
    }

    /// Checkpoints the write-ahead log into the database and truncates it, once it has grown past
    /// `walCheckpointBytes`. Call after writing.
    ///
    /// SQLite's own automatic checkpoint relies on one long-lived connection: when every write comes from a short
    /// process (a pipe filter per message, a trainer), the log is copied back but never restarted, and grows by
    /// every commit. Readers then pull ever more pages out of it with read(2); 900 filter runs took 4.2 s, 5.3 s,
    /// 6.1 s per 300 messages. A TRUNCATE checkpoint resets the log; it costs a few milliseconds once per megabytes
    /// of log, and never waits for another process (see below).
    public func checkpointIfLarge(thresholdBytes: Int = walCheckpointBytes) {
        var info = stat()
        guard access == .readWrite, stat(path + "-wal", &info) == 0, info.st_size >= thresholdBytes else {
            return
        }
        connection.withLock { connection in
            // Without waiting: a TRUNCATE checkpoint holds the writer lock while it waits for readers, and a
            // trainer reads one snapshot for its whole run, so a few filters checkpointing in a row kept its
            // commits waiting past their timeout and the run failed. Not waiting, it copies what it can, like a
            // PASSIVE one, and a later write tries again.
            sqlite3_busy_timeout(connection.handle, 0)
            _ = sqlite3_wal_checkpoint_v2(connection.handle, nil, SQLITE_CHECKPOINT_TRUNCATE, nil, nil)
            sqlite3_busy_timeout(connection.handle, connection.busyTimeoutMilliseconds)
        }
    }

    /// 4 MiB: SQLite's default automatic checkpoint size (1,000 pages of 4 KiB).
    public static let walCheckpointBytes = 4 << 20

    /// Whether this store may write (opened `.readWrite`).
    public var isWritable: Bool { access == .readWrite }

    /// Whether the database is in write-ahead-log mode, where readers never wait for a writer. Set at creation, but
    /// a database restored from a backup copy may be back in rollback-journal mode until a moment with no other
    /// connection lets the switch happen.
    public var usesWriteAheadLog: Bool {
        (try? connection.withLock { connection throws(StoreError) in
            try Self.string(connection, "PRAGMA journal_mode")
        })?.lowercased() == "wal"
    }

    /// How long the next statements wait for another process's lock.
    public func setBusyTimeout(milliseconds: Int32) {
        connection.withLock { connection in
            connection.busyTimeoutMilliseconds = milliseconds
            _ = sqlite3_busy_timeout(connection.handle, milliseconds)
        }
    }

    // MARK: - TemplateMemory

    public func sightings(like message: TemplateSighting, since: Int64) throws -> TemplateSightings {
        let bands = message.bands
        return try connection.withLock { connection throws(StoreError) in
            try connection.transaction(immediate: false) { () throws(StoreError) -> TemplateSightings in
                // At most a message's bands of its own rows are stepped over.
                let any = try connection.statement("SELECT 1 FROM templates WHERE message <> ?1 LIMIT 1")
                defer { any.reset() }
                try any.bind(1, Int64(bitPattern: message.message))
                guard try any.step() else {
                    return TemplateSightings(otherSenders: 0, sameNoteBefore: false, memoryIsEmpty: true)
                }
                // Both bounded, so that a skeleton many messages share (a list's footer, a campaign, one sender's
                // daily notice to thousands of local users) costs a few index seeks, not a row per sighting.
                // Other senders: each band's distinct senders in index order, one seek each (`sender > previous`),
                // until enough others are found (`TemplateSightings.countedOtherSenders`); the sender asked about is
                // stepped over the same way, however many rows it has.
                let firstSender = try connection.statement("""
                    SELECT sender FROM templates INDEXED BY templates_by_key
                    WHERE band = ?1 AND seen_at >= ?2 AND message <> ?3 ORDER BY sender LIMIT 1
                    """)
                defer { firstSender.reset() }
                let nextSender = try connection.statement("""
                    SELECT sender FROM templates INDEXED BY templates_by_key
                    WHERE band = ?1 AND sender > ?4 AND seen_at >= ?2 AND message <> ?3 ORDER BY sender LIMIT 1
                    """)
                defer { nextSender.reset() }
                var others = Set<UInt64>()
                nextBand: for band in bands {
                    var previous: Int64?
                    while others.count < TemplateSightings.countedOtherSenders {
                        let query = previous == nil ? firstSender : nextSender
                        defer { query.reset() }
                        try query.bind(1, Int64(bitPattern: band))
                        try query.bind(2, since)
                        try query.bind(3, Int64(bitPattern: message.message))
                        if let previous { try query.bind(4, previous) }
                        // Each step past the one before, whatever the rows hold: the walk always ends.
                        guard try query.step(), previous.map({ query.int64(0) > $0 }) ?? true else { continue nextBand }
                        let sender = query.int64(0)
                        if UInt64(bitPattern: sender) != message.sender { others.insert(UInt64(bitPattern: sender)) }
                        previous = sender
                    }
                }
                // The same note before: at most two rows per band for this sender and recipient (`record`).
                let placeholders = bands.indices.map { "?\($0 + 5)" }.joined(separator: ", ")
                let again = try connection.statement("""
                    SELECT 1 FROM templates INDEXED BY templates_by_key
                    WHERE band IN (\(placeholders)) AND sender = ?1 AND recipient = ?2 AND seen_at >= ?3
                        AND message <> ?4 LIMIT 1
                    """)
                defer { again.reset() }
                try again.bind(1, Int64(bitPattern: message.sender))
                try again.bind(2, Int64(bitPattern: message.recipient))
                try again.bind(3, since)
                try again.bind(4, Int64(bitPattern: message.message))
                for (index, band) in bands.enumerated() { try again.bind(Int32(index + 5), Int64(bitPattern: band)) }
                return TemplateSightings(otherSenders: others.count, sameNoteBefore: try again.step(),
                                         memoryIsEmpty: false)
            }
        }
    }

    /// The sightings of these bands only, for a run that does not know how many messages it will read: training one
    /// message need not read a memory of 400,000 sightings (0.6-2 s and 300 MB when it did). Join the copies with
    /// `TemplateSnapshot.add`.
    public func templateSnapshot(bands: Set<UInt64>) throws -> TemplateSnapshot {
        try connection.withLock { connection throws(StoreError) in
            try connection.transaction(immediate: false) { () throws(StoreError) -> TemplateSnapshot in
                let first = try connection.statement("SELECT message FROM templates LIMIT 1")
                defer { first.reset() }
                let other = try connection.statement("SELECT 1 FROM templates WHERE message <> ?1 LIMIT 1")
                defer { other.reset() }
                var memoryHeld = TemplateSnapshot.HeldMessages.none
                if try first.step() {
                    let message = first.int64(0)
                    try other.bind(1, message)
                    memoryHeld = try other.step() ? .several : .only(UInt64(bitPattern: message))
                }
                let held = memoryHeld != .none
                let query = try connection.statement("""
                    SELECT sender, recipient, seen_at, message FROM templates INDEXED BY templates_by_key
                    WHERE band = ?1
                    """)
                defer { query.reset() }
                var byBand: [UInt64: [TemplateSnapshot.Entry]] = [:]
                for band in bands where held {
                    defer { query.reset() }
                    try query.bind(1, Int64(bitPattern: band))
                    while try query.step() {
                        byBand[band, default: []].append(
                            TemplateSnapshot.Entry(sender: UInt64(bitPattern: query.int64(0)),
                                                   recipient: UInt64(bitPattern: query.int64(1)),
                                                   time: query.int64(2), message: UInt64(bitPattern: query.int64(3))))
                    }
                }
                return TemplateSnapshot(byBand: byBand, memoryHeld: memoryHeld)
            }
        }
    }

    /// The whole template memory in memory, for runs over many messages.
    public func templateSnapshot() throws -> TemplateSnapshot {
        try connection.withLock { connection throws(StoreError) in
            let query = try connection.statement("SELECT band, sender, recipient, seen_at, message FROM templates")
            defer { query.reset() }
            var byBand: [UInt64: [TemplateSnapshot.Entry]] = [:]
            while try query.step() {
                byBand[UInt64(bitPattern: query.int64(0)), default: []].append(
                    TemplateSnapshot.Entry(sender: UInt64(bitPattern: query.int64(1)),
                                           recipient: UInt64(bitPattern: query.int64(2)),
                                           time: query.int64(3), message: UInt64(bitPattern: query.int64(4))))
            }
            return TemplateSnapshot(byBand: byBand)
        }
    }

    public func record(_ messages: [TemplateSighting], at time: Int64, expireBefore: Int64) throws {
        guard access == .readWrite else {
            throw StoreError.readOnly(path: path, detail: "it was opened read-only (a bug: recording needs read-write)")
        }
        try connection.withLock { connection throws(StoreError) in
            try connection.transaction(immediate: true) { () throws(StoreError) in
                try Self.record(messages, at: time, expireBefore: expireBefore, on: connection)
            }
        }
    }

    /// `record`'s writes, on a connection inside a write transaction (`commitBulk` records a training batch's
    /// sightings with the batch).
    static func record(_ messages: [TemplateSighting], at time: Int64, expireBefore: Int64,
                       on connection: SQLiteConnection) throws(StoreError) {
        let insert = try connection.statement(
            "INSERT INTO templates (band, sender, recipient, seen_at, message) VALUES (?1, ?2, ?3, ?4, ?5)")
        defer { insert.reset() }
        let known = try connection.statement("SELECT 1 FROM templates WHERE message = ?1 LIMIT 1")
        defer { known.reset() }
        // Before each new row, the older sightings of its band from the same sender to the same recipient go,
        // all but the newest (by time, then rowid: processes take their time before waiting for the lock).
        // The questions asked of the memory need no more: another sender counts once however often it sent,
        // and "the same note before" needs one earlier message besides the one asked about, which may itself
        // be the newest (filtered, then classified or trained). A message whose rows were trimmed is new to
        // the memory if it is recorded again (trained weeks after it was filtered): that only refreshes its
        // time, and it still never counts against itself.
        let trim = try connection.statement("""
            DELETE FROM templates WHERE band = ?1 AND sender = ?2 AND recipient = ?3 AND rowid <> (
                SELECT rowid FROM templates INDEXED BY templates_by_key
                WHERE band = ?1 AND sender = ?2 AND recipient = ?3 ORDER BY seen_at DESC, rowid DESC LIMIT 1)
            """)
        defer { trim.reset() }
        for message in messages {
            try known.bind(1, Int64(bitPattern: message.message))
            let recorded = try known.step()
            known.reset()
            if recorded { continue }
            // Each band once: a second pass over a band would trim away the earlier message it keeps.
            var bands = Set<UInt64>()
            for band in message.bands where bands.insert(band).inserted {
                try trim.bind(1, Int64(bitPattern: band))
                try trim.bind(2, Int64(bitPattern: message.sender))
                try trim.bind(3, Int64(bitPattern: message.recipient))
                try trim.run()
                try insert.bind(1, Int64(bitPattern: band))
                try insert.bind(2, Int64(bitPattern: message.sender))
                try insert.bind(3, Int64(bitPattern: message.recipient))
                try insert.bind(4, time)
                try insert.bind(5, Int64(bitPattern: message.message))
                try insert.run()
            }
        }
        // Expiry by age, then by count: rowids grow with each insert, so the oldest rows have the lowest.
        let expire = try connection.statement("DELETE FROM templates WHERE seen_at < ?1")
        defer { expire.reset() }
        try expire.bind(1, expireBefore)
        try expire.run()
        try connection.execute("""
            DELETE FROM templates WHERE rowid <= (SELECT max(rowid) FROM templates) - \(TemplateWindow.maxSightings)
            """)
    }

    // MARK: - Test support

    /// Runs `body` on this store's connection: tests use it to hold locks or install failure triggers.
    func withConnection<Result: Sendable>(
        _ body: (SQLiteConnection) throws(StoreError) -> Result
    ) throws(StoreError) -> Result {
        try connection.withLock { connection throws(StoreError) in try body(connection) }
    }

    // MARK: - Opening

    /// A directory, a FIFO or a device where a database belongs is refused before SQLite opens it: a FIFO or a
    /// device would block the open, or never end, and the pipe filter would wait for its deadline.
    static func refuseUnlessRegularFile(_ info: stat, at path: String) throws(StoreError) {
        switch info.st_mode & S_IFMT {
        case S_IFREG: return
        case S_IFDIR: throw .cannotOpen(path: path, detail: "it is a directory, not a database file")
        default: throw .cannotOpen(path: path, detail: "it is not a regular file")
        }
    }

    /// SQLite's -wal and -shm files beside the database, where they exist, must be regular files too: a directory
    /// or a link there was blamed on the database file ("Is a directory", "read-only", "too many levels of
    /// symbolic links"; found by an audit). Beside the file a link to the database leads to, where SQLite keeps
    /// them (found in review: a database moved to another disk and linked, its logs beside it, was refused).
    static func refuseUnlessRegularCompanions(of path: String) throws(StoreError) {
        guard let resolved = realpath(path, nil) else { return }
        let real = String(cString: resolved)
        free(resolved)
        for suffix in ["-wal", "-shm"] {
            var info = stat()
            guard lstat(real + suffix, &info) == 0, info.st_mode & S_IFMT != S_IFREG else { continue }
            let kind = switch info.st_mode & S_IFMT {
            case S_IFDIR: "a directory"
            case S_IFLNK: "a symbolic link, which SQLite does not follow"
            default: "not a regular file"
            }
            throw .cannotOpen(path: path, detail: "its \(suffix) file, \(real + suffix), is \(kind): move it away")
        }
    }

    /// How much of the file a reader maps: more than a user's database grows to in years of training.
    static var readerMapBytes: Int { mapsFiles.load(ordering: .relaxed) ? 1 << 30 : 0 }

    /// Whether connections map the database file (off by default): a mapped file that shrinks under the process (a
    /// `cp` of a smaller file over it, `: >` on it) raises SIGBUS at the next read of a page past its new end, where
    /// read(2) returns an error SQLite reports. The service, `train` and `classify` died of it without a word (found
    /// by an audit and a review). Only the pipe filter, which passes its message through on SIGBUS (`Deadline`),
    /// turns it on: mapped, its reads of a large database do not copy every page through the kernel.
    public static let mapsFiles = Atomic<Bool>(false)

    /// Why the service could not open the database at `path`, found without changing it (`serve --check`):
    /// not a database, another program's or tokenizer's, a newer schema, corrupt. Nil when it would open, or is
    /// not there yet (the service makes it); an older schema is upgraded at the start, and is no problem.
    /// What is read is what every open reads (the header, the schema version, the tokenizer): a check that read
    /// every page (`quick_check`) took seconds on a large database, and `systemctl reload` runs the check (found in
    /// review). A file this user may not read is not judged: the service's user may.
    public static func problem(at path: String, tokenizerIdentity: String) -> StoreError? {
        guard Glibc.access(path, R_OK) == 0 || errno == ENOENT else { return nil }
        do {
            _ = try open(path: path, tokenizerIdentity: tokenizerIdentity, access: .readOnly,
                         busyTimeoutMilliseconds: 2_000, migrations: SQLiteSchema.migrations, upgrading: false)
            return nil
        } catch .missing {
            return nil
        } catch {
            return error
        }
    }

    private static func open(path: String, tokenizerIdentity: String, access: Access, busyTimeoutMilliseconds: Int32,
                             migrations: [Migration], upgrading: Bool = true) throws(StoreError) -> SQLiteConnection {
        let latest = migrations.last?.version ?? 0
        var info = stat()
        let statError = stat(path, &info) == 0 ? 0 : errno
        if statError == 0 {
            try refuseUnlessRegularFile(info, at: path)
            try refuseUnlessRegularCompanions(of: path)
        }
        let connection: SQLiteConnection
        switch access {
        case .readOnly:
            // SQLite would report a missing file as a generic "unable to open".
            if statError == ENOENT { throw .missing(path: path) }
            connection = try SQLiteConnection(path: path, flags: SQLITE_OPEN_READONLY,
                                              busyTimeoutMilliseconds: busyTimeoutMilliseconds)
            // Readers map the file instead of copying each page through read(2): a classify run spent a third of
            // its time in the kernel copying pages. SQLite maps only for reading, so writers are unaffected.
            try connection.execute("PRAGMA mmap_size = \(Self.readerMapBytes)")
        case .readWrite:
            if statError == ENOENT || statError == ENOTDIR {  // ENOTDIR: createParentDirectory says which
                try createParentDirectory(of: path)
                try createFile(path)
            }
            connection = try openForWriting(path: path, flags: SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE,
                                            busyTimeoutMilliseconds: busyTimeoutMilliseconds)
        }

        // The fast path, taken on every open but the first: schema version and tokenizer in one query. It fails to
        // prepare only when `meta` does not exist, i.e. for a new, foreign or broken file.
        var recorded: (version: Int, tokenizer: String?)?
        do {
            let query = try connection.statement("""
                SELECT user_version, (SELECT value FROM meta WHERE key = '\(SQLiteSchema.tokenizerKey)')
                FROM pragma_user_version
                """)
            defer { query.reset() }
            if try query.step() { recorded = (Int(query.int64(0)), query.text(1)) }
        } catch .sqlite(_, let code, _) where code & 0xff == SQLITE_ERROR {
            recorded = nil
        }
        if let recorded, recorded.version == latest {
            try checkTokenizer(recorded.tokenizer, expected: tokenizerIdentity, path: path)
            if access == .readWrite {
                // Set at creation and stored in the file, but a database restored from a backup copy may be back
                // in rollback-journal mode, where every filter waits for the trainer. A no-op when it is already
                // WAL; best effort, since switching needs a moment with no other connection.
                try? connection.execute("PRAGMA journal_mode = WAL")
            }
            return connection
        }

        // The slow path: create, upgrade, or explain why not.
        // Both in one statement, one snapshot: read apart, another process creating the database could commit its
        // first tables in between, and a version 0 with tables read as another program's database (found by an
        // audit: one of ten trains starting at once on a new database said so).
        let (version, tables) = try versionAndTableCount(connection)
        if version > latest { throw .schemaTooNew(path: path, found: version, supported: latest) }
        if version == 0 {
            if tables > 0 { throw .notPitchfilterDatabase(path: path) }
            // An empty file: a database another process is creating right now, or a stray `touch`. Either way
            // nothing is trained yet.
            if access == .readOnly { throw .missing(path: path) }
        } else if version < latest {
            // Many programs set user_version: before upgrading a file as an older pitchfilter database, make sure
            // it is one (found by an audit: another program's database got our tables and version 7).
            let ours = try? string(connection, "SELECT value FROM meta WHERE key = '\(SQLiteSchema.tokenizerKey)'")
            if ours == nil { throw .notPitchfilterDatabase(path: path) }
        }
        if version < latest {
            switch access {
            case .readWrite:
                try migrate(connection, tokenizerIdentity: tokenizerIdentity, migrations: migrations)
            case .readOnly where !upgrading:
                break
            case .readOnly:
                // A newer pitchfilter meets an older database: upgrading it here keeps the pipe filter working
                // after a package upgrade instead of failing until someone trains. A user who may only read it
                // (`quarantine list` as another user) is told that, not that a write failed (found by an audit).
                let writer: SQLiteConnection
                do {
                    writer = try openForWriting(path: path, flags: SQLITE_OPEN_READWRITE,
                                                busyTimeoutMilliseconds: busyTimeoutMilliseconds)
                } catch .readOnly {
                    throw .schemaNeedsUpgrade(path: path, found: version, supported: latest)
                }
                try migrate(writer, tokenizerIdentity: tokenizerIdentity, migrations: migrations)
            }
        }
        let tokenizer: String?
        do {
            tokenizer = try string(connection, "SELECT value FROM meta WHERE key = '\(SQLiteSchema.tokenizerKey)'")
        } catch .sqlite(_, let code, _) where code & 0xff == SQLITE_ERROR {
            throw .notPitchfilterDatabase(path: path)  // a user_version but no meta table
        }
        try checkTokenizer(tokenizer, expected: tokenizerIdentity, path: path)
        return connection
    }

    private static func openForWriting(path: String, flags: Int32,
                                       busyTimeoutMilliseconds: Int32) throws(StoreError) -> SQLiteConnection {
        let connection = try SQLiteConnection(path: path, flags: flags,
                                              busyTimeoutMilliseconds: busyTimeoutMilliseconds)
        // SQLite quietly opens a file it may not write read-only; say so now rather than at the first commit.
        if sqlite3_db_readonly(connection.handle, "main") == 1 {
            throw .readOnly(path: path, detail: "the file or its file system is read-only, or not ours to write")
        }
        // Both settings are per connection, not stored. synchronous = NORMAL is durable across process crashes in
        // WAL mode and only risks the last commits on power loss, which retraining repairs; FULL would fsync on
        // every training batch. A 32 MiB page cache (allocated as used; the default is 2 MiB) holds a typical
        // user's whole database, which measured 25-40 % faster bulk training.
        try connection.execute("""
            PRAGMA synchronous = NORMAL; PRAGMA cache_size = -32768; PRAGMA mmap_size = \(readerMapBytes)
            """)
        return connection
    }

    private static func migrate(_ connection: SQLiteConnection, tokenizerIdentity: String,
                                migrations: [Migration]) throws(StoreError) {
        let start = try connection.userVersion()
        if start == 0 {
            // Stored in the file, so set once at creation; it cannot change inside a transaction.
            try connection.execute("PRAGMA journal_mode = WAL")
        }
        for migration in migrations where migration.version > start {
            try connection.transaction(immediate: true) { () throws(StoreError) in
                // Re-read under the write lock: another process may have run this migration meanwhile.
                let current = try connection.userVersion()
                guard current < migration.version else { return }
                if current == 0, try integer(connection, "SELECT count(*) FROM sqlite_schema") > 0 {
                    throw .notPitchfilterDatabase(path: connection.path)
                }
                try connection.execute(migration.sql)
                if current == 0 {
                    let insert = try connection.statement("INSERT INTO meta (key, value) VALUES (?1, ?2)")
                    defer { insert.reset() }
                    try insert.bind(1, SQLiteSchema.tokenizerKey)
                    try insert.bind(2, tokenizerIdentity)
                    try insert.run()
                }
                try connection.execute("PRAGMA user_version = \(migration.version)")
            }
        }
    }

    private static func checkTokenizer(_ recorded: String?, expected: String, path: String) throws(StoreError) {
        guard let recorded else { throw .corrupt(path: path, detail: "no tokenizer identity recorded") }
        guard recorded == expected else {
            throw .tokenizerMismatch(path: path, database: recorded, program: expected)
        }
    }

    /// Creates the empty file SQLite will turn into a database. SQLite could create it itself, but when that fails
    /// it retries read-only and reports the retry's "No such file or directory" rather than the real reason.
    private static func createFile(_ path: String, links: Int = 0) throws(StoreError) {
        // Its owner's alone: it holds the senders and Subjects of quarantined mail and the owner's correspondents
        // (0644, SQLite's own mode, let every local user read them where the umask allowed; found by an audit).
        // SQLite gives the -wal and -shm files the same mode.
        let descriptor = Glibc.open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0o600)
        if descriptor >= 0 {
            defer { close(descriptor) }
            try giveToTheDirectorysOwner(descriptor, path: path)
            return
        }
        let reason = errno
        switch reason {
        case EEXIST:
            // A symbolic link to a file that is not there yet (a database kept on another disk): SQLite would make
            // that file itself, with its own mode (found by an audit: 0644, readable by every local user). It is
            // made here, where the link points, as any new database is. Otherwise another process created it first.
            if links < 8, let target = danglingLinkTarget(path) { try createFile(target, links: links + 1) }
            return
        case EROFS: throw .readOnly(path: path, detail: String(cString: strerror(reason)))
        case ENOSPC, EDQUOT: throw .diskFull(path: path)
        default: throw .cannotOpen(path: path, detail: "cannot create it: \(String(cString: strerror(reason)))")
        }
    }

    /// Where the symbolic link at `path` points, when that is no file yet; nil for anything else.
    private static func danglingLinkTarget(_ path: String) -> String? {
        var info = stat()
        guard lstat(path, &info) == 0, info.st_mode & S_IFMT == S_IFLNK, stat(path, &info) != 0, errno == ENOENT
        else { return nil }
        var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
        let length = readlink(path, &buffer, Int(PATH_MAX))
        guard length > 0 else { return nil }
        let target = String(decoding: buffer[..<length].map { UInt8(bitPattern: $0) }, as: UTF8.self)
        if target.hasPrefix("/") { return target }
        guard let slash = path.utf8.lastIndex(of: UInt8(ascii: "/")) else { return target }
        return String(path[...slash]) + target
    }

    /// Run as root, a new database belongs to the owner of its directory: an admin's first `train` into
    /// /var/lib/pitchfilter would otherwise leave a file the service's user cannot write, and the service could
    /// not start. SQLite gives the -wal and -shm files the database's owner in turn. A file that already has that
    /// owner is left as it is: root's own directory needs no chown, which the service's unit may forbid (its
    /// system call filter denies `@chown` unless the several-users drop-in allows it; found by an audit: the
    /// service as root could not create its database there).
    private static func giveToTheDirectorysOwner(_ descriptor: Int32, path: String) throws(StoreError) {
        guard geteuid() == 0 else { return }
        let slash = path.utf8.lastIndex(of: UInt8(ascii: "/"))
        let directory = slash.map { $0 == path.utf8.startIndex ? "/" : String(path[..<$0]) } ?? "."
        var owner = stat()
        var file = stat()
        guard stat(directory, &owner) == 0, fstat(descriptor, &file) == 0 else {
            let reason = String(cString: strerror(errno))
            unlink(path)
            throw .cannotOpen(path: path, detail: "cannot give it to the owner of \(directory): \(reason)")
        }
        // Its owner already: the group too, if that may be done (mode 0600 leaves the group out of it anyway).
        if file.st_uid == owner.st_uid {
            if file.st_gid != owner.st_gid { _ = fchown(descriptor, owner.st_uid, owner.st_gid) }
            return
        }
        guard fchown(descriptor, owner.st_uid, owner.st_gid) == 0 else {
            let reason = String(cString: strerror(errno))
            unlink(path)
            throw .cannotOpen(path: path, detail: "cannot give it to the owner of \(directory): \(reason)")
        }
    }

    /// `mkdir -p` with mode 0700 for every directory it has to create (`restore` makes them before the database).
    public static func createParentDirectory(of path: String) throws(StoreError) {
        guard let slash = path.utf8.lastIndex(of: UInt8(ascii: "/")) else { return }
        let parent = String(path[..<slash])
        guard !parent.isEmpty else { return }
        try createDirectory(parent, for: path)
    }

    private static func createDirectory(_ directory: String, for path: String) throws(StoreError) {
        var info = stat()
        if stat(directory, &info) == 0 {
            guard info.st_mode & S_IFMT == S_IFDIR else {
                throw .cannotOpen(path: path, detail: "\(directory) is not a directory")
            }
            return
        }
        if let slash = directory.utf8.lastIndex(of: UInt8(ascii: "/")), slash != directory.startIndex {
            try createDirectory(String(directory[..<slash]), for: path)
        }
        if mkdir(directory, 0o700) != 0, errno != EEXIST {
            let reason = String(cString: strerror(errno))
            throw .cannotOpen(path: path, detail: "cannot create directory \(directory): \(reason)")
        }
    }

    // MARK: - Queries

    static func readTotals(_ connection: SQLiteConnection) throws(StoreError) -> ClassTotals {
        let query = try connection.statement("SELECT class, messages FROM totals")
        defer { query.reset() }
        var totals = ClassTotals()
        while try query.step() {
            if let name = query.text(0), let messageClass = MessageClass(rawValue: name) {
                // A count no training reaches (a token's count saturates at 2^32 − 1) is damage: taken as it was, it
                // overflowed the sums with the starter's totals, and `classify` died of it (found by an audit).
                let messages = query.int64(1)
                guard messages <= Int64(UInt32.max) else {
                    throw .corrupt(path: connection.path, detail: "it says \(messages) \(name) messages were trained")
                }
                totals[messageClass] = Int(max(messages, 0))
            }
        }
        return totals
    }

    private static func versionAndTableCount(_ connection: SQLiteConnection) throws(StoreError)
        -> (version: Int, tables: Int) {
        let query = try connection.statement(
            "SELECT user_version, (SELECT count(*) FROM sqlite_schema) FROM pragma_user_version")
        defer { query.reset() }
        guard try query.step() else { return (0, 0) }
        return (Int(query.int64(0)), Int(query.int64(1)))
    }

    private static func integer(_ connection: SQLiteConnection, _ sql: String) throws(StoreError) -> Int {
        let query = try connection.statement(sql)
        defer { query.reset() }
        return try query.step() ? Int(query.int64(0)) : 0
    }

    private static func string(_ connection: SQLiteConnection, _ sql: String) throws(StoreError) -> String? {
        let query = try connection.statement(sql)
        defer { query.reset() }
        return try query.step() ? query.text(0) : nil
    }
}

/// The training primitives in SQL, with their statements fetched once per batch.
struct SQLiteTrainer: TrainingBackend {
    static let findLedgerSQL = "SELECT class FROM ledger WHERE digest = ?1"

    /// `addCounts` for 64 rows at once: a large batch's sums are written with one statement step per 64 tokens.
    /// The per-statement work (step, reset, the VDBE's set-up and halt) was a third of writing a row: the 417,000
    /// ham tokens of the SpamAssassin corpus took 0.38–0.47 s instead of 0.61–0.76 s.
    static let rowsPerInsert = 0..<64
    static let addCountsInRowsSQL = """
        INSERT INTO tokens (id, pitch, ham) VALUES \(
            rowsPerInsert.map { "(?\(3 * $0 + 1), ?\(3 * $0 + 2), ?\(3 * $0 + 3))" }.joined(separator: ", "))
        ON CONFLICT (id) DO UPDATE
            SET pitch = min(pitch + excluded.pitch, 4294967295), ham = min(ham + excluded.ham, 4294967295)
        """

    let connection: SQLiteConnection
    var totals: ClassTotals
    private let learnedAt = Int64(time(nil))
    private let findLedger: Statement
    private let findHistory: Statement
    private let recordLedger: Statement
    private let eraseLedger: Statement
    private let addCounts: Statement
    private let addCountsInRows: Statement
    private let moveCounts: Statement
    private let subtractCounts: Statement
    private let deleteEmptyToken: Statement
    private var pendingAdditions = CountTable()

    init(_ connection: SQLiteConnection) throws(StoreError) {
        self.connection = connection
        totals = try SQLiteTokenStore.readTotals(connection)
        findLedger = try connection.statement(Self.findLedgerSQL)
        findHistory = try connection.statement("SELECT history FROM ledger WHERE digest = ?1")
        recordLedger = try connection.statement("""
            INSERT INTO ledger (digest, class, learned_at, history) VALUES (?1, ?2, ?3, ?4)
            ON CONFLICT (digest) DO UPDATE
                SET class = excluded.class, learned_at = excluded.learned_at, history = excluded.history
            """)
        eraseLedger = try connection.statement("DELETE FROM ledger WHERE digest = ?1")
        // Learning only adds: no saturation below, and the hot path of bulk training. Counts stop at UInt32.max,
        // the most a TokenCounts can hold.
        addCounts = try connection.statement("""
            INSERT INTO tokens (id, pitch, ham) VALUES (?1, ?2, ?3)
            ON CONFLICT (id) DO UPDATE SET pitch = min(pitch + ?2, 4294967295), ham = min(ham + ?3, 4294967295)
            """)
        addCountsInRows = try connection.statement(Self.addCountsInRowsSQL)
        // A move adds to one class and subtracts (saturating) from the other. An upsert, because the token may
        // have been saturated away; never leaves both counts zero, since the target class gains one.
        moveCounts = try connection.statement("""
            INSERT INTO tokens (id, pitch, ham) VALUES (?1, max(?2, 0), max(?3, 0))
            ON CONFLICT (id) DO UPDATE
                SET pitch = min(max(pitch + ?2, 0), 4294967295), ham = min(max(ham + ?3, 0), 4294967295)
            """)
        // A forget only subtracts; a token left at zero in both classes is deleted, so it reads as never seen.
        // Two statements are faster than one with RETURNING, and the second finds the page already cached.
        subtractCounts = try connection.statement(
            "UPDATE tokens SET pitch = max(pitch + ?2, 0), ham = max(ham + ?3, 0) WHERE id = ?1")
        deleteEmptyToken = try connection.statement("DELETE FROM tokens WHERE id = ?1 AND pitch = 0 AND ham = 0")
    }

    static func messageClass(_ text: String?, _ connection: SQLiteConnection) throws(StoreError) -> MessageClass {
        guard let text, let messageClass = MessageClass(rawValue: text) else {
            throw .corrupt(path: connection.path, detail: "the ledger holds an unknown class \"\(text ?? "NULL")\"")
        }
        return messageClass
    }

    func ledgerClass(of digest: [UInt8]) throws(StoreError) -> MessageClass? {
        defer { findLedger.reset() }
        try findLedger.bind(1, digest)
        guard try findLedger.step() else { return nil }
        return try Self.messageClass(findLedger.text(0), connection)
    }

    func ledgerHistory(of digest: [UInt8]) throws(StoreError) -> [TokenID] {
        defer { findHistory.reset() }
        try findHistory.bind(1, digest)
        guard try findHistory.step(), let bytes = findHistory.bytes(0) else { return [] }
        guard bytes.count % 8 == 0 else {
            throw .corrupt(path: connection.path, detail: "a ledger row's history is \(bytes.count) bytes long")
        }
        return stride(from: 0, to: bytes.count, by: 8).map { start in
            TokenID(rawValue: bytes[start..<(start + 8)].reversed().reduce(0) { $0 << 8 | UInt64($1) })
        }
    }

    func record(_ digest: [UInt8], as messageClass: MessageClass, history: [TokenID]) throws(StoreError) {
        try recordLedger.bind(1, digest)
        try recordLedger.bind(2, messageClass.rawValue)
        try recordLedger.bind(3, learnedAt)
        if history.isEmpty {
            try recordLedger.bindNull(4)
        } else {
            let bytes = history.flatMap { id in (0..<8).map { UInt8(truncatingIfNeeded: id.rawValue >> ($0 * 8)) } }
            try recordLedger.bind(4, bytes)
        }
        try recordLedger.run()
    }

    func erase(_ digest: [UInt8]) throws(StoreError) {
        try eraseLedger.bind(1, digest)
        try eraseLedger.run()
    }

    mutating func adjust(_ tokens: [TokenID], pitch: Int, ham: Int) throws(StoreError) {
        if pitch >= 0, ham >= 0 {
            // Additions commute (nothing saturates at zero, and the cap at UInt32.max gives the same result in any
            // order), so a batch's additions are summed per token and written once: a token in 300 of a batch's
            // 500 messages costs one write instead of 300.
            // Sums stop at UInt32.max like the stored counts, so the result is the same as adding one by one.
            for id in tokens {
                let sum = pendingAdditions[id]
                pendingAdditions[id] = TokenCounts(pitch: Training.saturating(sum.pitch, pitch),
                                                   ham: Training.saturating(sum.ham, ham))
            }
            return
        }
        // A subtraction saturates at zero, which does not commute with additions: apply those made so far first.
        try writePendingAdditions()
        let forgetting = pitch <= 0 && ham <= 0
        let update = forgetting ? subtractCounts : moveCounts
        // Rowid order touches each B-tree page once instead of jumping around.
        for id in tokens.map({ Int64(bitPattern: $0.rawValue) }).sorted() {
            try update.bind(1, id)
            try update.bind(2, Int64(pitch))
            try update.bind(3, Int64(ham))
            try update.run()
            if forgetting {
                try deleteEmptyToken.bind(1, id)
                try deleteEmptyToken.run()
            }
        }
    }

    private mutating func writePendingAdditions() throws(StoreError) {
        guard pendingAdditions.count > 0 else { return }
        try write(CountRun(pendingAdditions))
        pendingAdditions = CountTable()
    }

    /// Adds a run's sums to the stored counts, in rowid order so each B-tree page is visited once.
    func write(_ run: CountRun) throws(StoreError) {
        var start = 0
        let rows = Self.rowsPerInsert.count
        while run.count - start >= rows {
            for row in 0..<rows {
                try addCountsInRows.bind(Int32(3 * row + 1), run.ids[start + row])
                try addCountsInRows.bind(Int32(3 * row + 2), Int64(run.counts[start + row].pitch))
                try addCountsInRows.bind(Int32(3 * row + 3), Int64(run.counts[start + row].ham))
            }
            try addCountsInRows.run()
            start += rows
        }
        for index in start..<run.count {
            try addCounts.bind(1, run.ids[index])
            try addCounts.bind(2, Int64(run.counts[index].pitch))
            try addCounts.bind(3, Int64(run.counts[index].ham))
            try addCounts.run()
        }
    }

    /// Writes what is still pending and the totals; the last step before COMMIT.
    mutating func finish() throws(StoreError) {
        try writePendingAdditions()
        try saveTotals()
    }

    private func saveTotals() throws(StoreError) {
        let update = try connection.statement("UPDATE totals SET messages = ?2 WHERE class = ?1")
        for messageClass in MessageClass.allCases {
            try update.bind(1, messageClass.rawValue)
            try update.bind(2, Int64(totals[messageClass]))
            try update.run()
        }
    }
}
