import Synchronization

/// Which skeletons this mailbox has seen lately, from whom and to whom: the memory behind the "template seen
/// before" and "same note again" signals.
///
/// A sighting is a message's band keys (`TemplateFingerprint`) with its sender and recipient. Sightings older
/// than `TemplateWindow.seconds` are forgotten, and at most `TemplateWindow.maxSightings` are kept, so the memory
/// stays bounded whatever the mail volume; and every sighting is the same few numbers (addresses as keys, not text),
/// so it stays bounded whatever the addresses are.
public protocol TemplateMemory: AnyObject, TemplateLookup {
    /// Records messages, all in one transaction; forgets sightings before `expireBefore`.
    func record(_ messages: [TemplateSighting], at time: Int64, expireBefore: Int64) throws
}

/// The read side of a template memory, which is all classifying needs.
public protocol TemplateLookup: Sendable {
    /// What the memory holds about the skeleton of `message`, not counting sightings before `since` or sightings of
    /// this very message (a message filtered and later trained is one message, not a note sent twice).
    func sightings(like message: TemplateSighting, since: Int64) throws -> TemplateSightings
}

/// A copy of a template memory, indexed by band: a batch run's thousands of lookups need neither the database nor
/// a lock. A run adds its own messages as it goes (`add`), while the store records them in its own time. A copy may
/// hold only some bands (`SQLiteTokenStore.templateSnapshot(bands:)`), joined by `add(_:)` as a run needs them:
/// every band of a message must be read in before the message is looked up or added.
public struct TemplateSnapshot: TemplateLookup {
    struct Entry: Hashable, Sendable {
        var sender: UInt64
        var recipient: UInt64
        var time: Int64
        var message: UInt64
    }

    private(set) var byBand: [UInt64: [Entry]]
    /// The messages in `byBand`, so that adding one twice costs no scan of its bands.
    private var messages: Set<UInt64>
    /// Whose sightings the memory this was copied from held, in bands copied or not: a memory with no message's
    /// but the one asked about says nothing either way (`TemplateSightings.memoryIsEmpty`).
    private var copiedFrom: HeldMessages

    /// Whose sightings a template memory holds, as far as telling an empty one goes.
    enum HeldMessages: Hashable, Sendable {
        case none
        case only(UInt64)
        case several

        func joined(_ other: HeldMessages) -> HeldMessages {
            switch (self, other) {
            case (.none, let held), (let held, .none): held
            case (.only(let one), .only(let another)) where one == another: self
            default: .several
            }
        }
    }

    /// `memoryHeld`: for a copy of some bands, whose sightings the whole memory held; a whole copy knows by itself.
    init(byBand: [UInt64: [Entry]], memoryHeld: HeldMessages = .none) {
        self.byBand = byBand
        messages = Set(byBand.values.joined().map(\.message))
        copiedFrom = memoryHeld
    }

    /// Whether neither this copy nor the memory it came from holds a sighting but `message`'s own.
    private func holdsNothingBut(_ message: UInt64) -> Bool {
        switch copiedFrom {
        case .several: return false
        case .only(let one) where one != message: return false
        default: return messages.isEmpty || messages == [message]
        }
    }

    /// A copy of an empty memory, for a run to fill.
    public static let empty = TemplateSnapshot(byBand: [:])

    /// Joins a copy of other bands of the same memory: a message already here under a band is not added under it
    /// again (a band read twice, or a store that by then holds messages the run added itself).
    public mutating func add(_ other: TemplateSnapshot) {
        for (band, entries) in other.byBand {
            let present = Set((byBand[band] ?? []).map(\.message))
            byBand[band, default: []] += entries.filter { !present.contains($0.message) }
        }
        messages.formUnion(other.messages)
        copiedFrom = copiedFrom.joined(other.copiedFrom)
    }

    /// Adds a message seen at `time`, unless it is already there.
    public mutating func add(_ message: TemplateSighting, at time: Int64) {
        guard messages.insert(message.message).inserted else { return }
        let entry = Entry(sender: message.sender, recipient: message.recipient, time: time, message: message.message)
        for band in message.bands { byBand[band, default: []].append(entry) }
    }

    public func sightings(like message: TemplateSighting, since: Int64) -> TemplateSightings {
        guard !holdsNothingBut(message.message) else {
            return TemplateSightings(otherSenders: 0, sameNoteBefore: false, memoryIsEmpty: true)
        }
        var others = Set<UInt64>()
        var again = false
        for band in message.bands {
            for entry in byBand[band] ?? [] where entry.time >= since && entry.message != message.message {
                if entry.sender == message.sender {
                    if entry.recipient == message.recipient { again = true }
                } else if others.count < TemplateSightings.countedOtherSenders {
                    others.insert(entry.sender)
                }
                if again && others.count == TemplateSightings.countedOtherSenders { break }
            }
        }
        return TemplateSightings(otherSenders: others.count, sameNoteBefore: again, memoryIsEmpty: false)
    }
}

/// One message for the template memory.
public struct TemplateSighting: Hashable, Sendable {
    public var bands: [UInt64]
    /// The sender's and the first recipient's addresses as keys (`Engine.addressKey`): the memory only asks whether
    /// two are the same. Kept as text, a row took as much room as the addresses did, which a sender chooses (found
    /// by an audit: 131-139 MB for the 400,000 rows with addresses of 77 characters).
    public var sender: UInt64
    public var recipient: UInt64
    /// Which message this is (the first 8 bytes of its digest): it is recorded once, and never counts against itself.
    public var message: UInt64

    public init(bands: [UInt64], sender: UInt64, recipient: UInt64, message: UInt64) {
        self.bands = bands
        self.sender = sender
        self.recipient = recipient
        self.message = message
    }
}

public struct TemplateSightings: Hashable, Sendable {
    /// Distinct senders other than this one that sent a near-duplicate (counted up to `countedOtherSenders`).
    public var otherSenders: Int
    /// This sender sent a near-duplicate to this recipient before.
    public var sameNoteBefore: Bool
    /// Whether the memory holds no sighting but this message's own (then the signal says nothing either way): a
    /// message learned into an empty memory, then moved to the other class, finds only itself there, and got a
    /// `tmpl:others-0` it had not had (found by an audit).
    public var memoryIsEmpty: Bool

    /// Other senders are counted up to this many, in every memory: ten is already "many", and counting stops there
    /// so that a skeleton thousands share costs no more to look up than one ten share.
    public static let countedOtherSenders = 10

    public init(otherSenders: Int, sameNoteBefore: Bool, memoryIsEmpty: Bool) {
        self.otherSenders = otherSenders
        self.sameNoteBefore = sameNoteBefore
        self.memoryIsEmpty = memoryIsEmpty
    }
}

public enum TemplateWindow {
    /// How long a sighting counts: a cold campaign's sends and follow-ups fall within a month.
    public static let seconds: Int64 = 30 * 24 * 3600
    /// Sightings kept at most (four per message): months of a busy mailbox, about 60 MB of database at most.
    public static let maxSightings = 400_000
}

/// The in-memory twin: for tests, as the reference, and for replaying a mailbox's history in `eval`.
public final class InMemoryTemplateMemory: TemplateMemory {
    private struct Sighting {
        var band: UInt64
        var sender: UInt64
        var recipient: UInt64
        var time: Int64
        var message: UInt64
    }

    private struct Storage {
        var all: [Sighting] = []
        /// Positions in `all` by band, so a lookup reads only the sightings that share a band with the message.
        var byBand: [UInt64: [Int]] = [:]
        var messages: Set<UInt64> = []
        /// The earliest time in `all`, so that a write with nothing to expire does not read them all.
        var oldest = Int64.max

        mutating func rebuildIndex() {
            byBand = [:]
            messages = []
            oldest = .max
            for (position, sighting) in all.enumerated() {
                byBand[sighting.band, default: []].append(position)
                messages.insert(sighting.message)
                oldest = min(oldest, sighting.time)
            }
        }
    }

    private let storage = Mutex(Storage())

    public init() {}

    public func sightings(like message: TemplateSighting, since: Int64) -> TemplateSightings {
        storage.withLock { storage in
            let candidates = Set(message.bands.flatMap { storage.byBand[$0] ?? [] })
            let matching = candidates.map { storage.all[$0] }.filter {
                $0.time >= since && $0.message != message.message
            }
            return TemplateSightings(
                otherSenders: min(Set(matching.map(\.sender).filter { $0 != message.sender }).count,
                                  TemplateSightings.countedOtherSenders),
                sameNoteBefore: matching.contains { $0.sender == message.sender && $0.recipient == message.recipient },
                memoryIsEmpty: storage.messages.isEmpty || storage.messages == [message.message])
        }
    }

    public func record(_ messages: [TemplateSighting], at time: Int64, expireBefore: Int64) {
        storage.withLock { storage in
            if storage.oldest < expireBefore {
                storage.all.removeAll { $0.time < expireBefore }
                storage.rebuildIndex()
            }
            for message in messages where !storage.messages.contains(message.message) {
                storage.messages.insert(message.message)
                storage.oldest = min(storage.oldest, time)
                for band in message.bands {
                    storage.byBand[band, default: []].append(storage.all.count)
                    storage.all.append(Sighting(band: band, sender: message.sender, recipient: message.recipient,
                                                time: time, message: message.message))
                }
            }
            if storage.all.count > TemplateWindow.maxSightings {
                storage.all.removeFirst(storage.all.count - TemplateWindow.maxSightings)
                storage.rebuildIndex()
            }
        }
    }
}
