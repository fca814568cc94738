import Synchronization

/// The message ids this mailbox has seen (received, sent, trained): the memory behind `ref:unknown`, a reply to
/// something that never reached this mailbox. Bounded like the template memory: ids older than
/// `MessageIDWindow.seconds` are forgotten, and at most `MessageIDWindow.maxIDs` are kept.
public protocol MessageIDMemory: AnyObject, MessageIDLookup {
    /// Records ids (as `ThreadReferences` hashes them), all in one transaction; forgets those before `expireBefore`.
    func rememberMessageIDs(_ ids: [UInt64], at time: Int64, expireBefore: Int64) throws
}

/// The read side, which is all classifying needs.
public protocol MessageIDLookup: Sendable {
    /// Whether any of `ids` is known; nil when the memory is empty (then a reference says nothing either way).
    func knowsAny(of ids: [UInt64]) throws -> Bool?
}

public enum MessageIDWindow {
    /// A year: replies come weeks or months after the message they answer.
    public static let seconds: Int64 = 365 * 24 * 3600
    /// Ids kept at most: years of a busy mailbox, about 30 MB.
    public static let maxIDs = 1_000_000
}

/// The in-memory twin, for tests and as the reference.
public final class InMemoryMessageIDMemory: MessageIDMemory {
    private struct Storage {
        var ids: [UInt64: Int64] = [:]
        /// The earliest time in `ids`, so that a write with nothing to expire does not read them all.
        var oldest = Int64.max
    }

    private let storage = Mutex(Storage())

    public init() {}

    public func rememberMessageIDs(_ new: [UInt64], at time: Int64, expireBefore: Int64) {
        storage.withLock { storage in
            for id in new { storage.ids[id] = time }
            storage.oldest = min(storage.oldest, time)
            if storage.oldest < expireBefore {
                storage.ids = storage.ids.filter { $0.value >= expireBefore }
                storage.oldest = storage.ids.values.min() ?? .max
            }
            if storage.ids.count > MessageIDWindow.maxIDs {
                let excess = storage.ids.sorted(by: { $0.value < $1.value }).prefix(storage.ids.count - MessageIDWindow.maxIDs)
                for (id, _) in excess { storage.ids[id] = nil }
                storage.oldest = storage.ids.values.min() ?? .max
            }
        }
    }

    public func knowsAny(of query: [UInt64]) -> Bool? {
        storage.withLock { storage in storage.ids.isEmpty ? nil : query.contains { storage.ids[$0] != nil } }
    }
}

extension SQLiteTokenStore: MessageIDMemory {
    public func rememberMessageIDs(_ new: [UInt64], at time: Int64, expireBefore: Int64) throws {
        guard !new.isEmpty else { return }
        guard isWritable else {
            throw StoreError.readOnly(path: path,
                                      detail: "it was opened read-only (a bug: recording ids needs read-write)")
        }
        try connection.withLock { connection throws(StoreError) in
            try connection.transaction(immediate: true) { () throws(StoreError) in
                let insert = try connection.statement(
                    "INSERT OR REPLACE INTO message_ids (id, seen_at) VALUES (?1, ?2)")
                defer { insert.reset() }
                for id in new {
                    try insert.bind(1, Int64(bitPattern: id))
                    try insert.bind(2, time)
                    try insert.run()
                }
                try connection.execute("DELETE FROM message_ids WHERE seen_at < \(expireBefore)")
                // Counting the rows reads the whole table, which at the cap would be most of a pipe filter's run:
                // the cap is checked in one batch of 64 or so (ids are hashes, so their low bits are uniform), and
                // may be overshot by that little in between.
                if new.contains(where: { $0 & 63 == 0 }) {
                    try connection.execute("""
                        DELETE FROM message_ids WHERE id IN (SELECT id FROM message_ids ORDER BY seen_at
                            LIMIT max(0, (SELECT count(*) FROM message_ids) - \(MessageIDWindow.maxIDs)))
                        """)
                }
            }
        }
    }

    /// How many ids the memory holds, for `pitchfilter stats`.
    public func messageIDCount() throws -> Int {
        try connection.withLock { connection throws(StoreError) in
            let query = try connection.statement("SELECT count(*) FROM message_ids")
            defer { query.reset() }
            return try query.step() ? Int(query.int64(0)) : 0
        }
    }

    public func knowsAny(of query: [UInt64]) throws -> Bool? {
        try connection.withLock { connection throws(StoreError) in
            try connection.transaction(immediate: false) { () throws(StoreError) -> Bool? in
                let any = try connection.statement("SELECT 1 FROM message_ids LIMIT 1")
                defer { any.reset() }
                guard try any.step() else { return nil }
                let find = try connection.statement("SELECT 1 FROM message_ids WHERE id = ?1")
                defer { find.reset() }
                for id in query {
                    try find.bind(1, Int64(bitPattern: id))
                    defer { find.reset() }
                    if try find.step() { return true }
                }
                return false
            }
        }
    }
}
