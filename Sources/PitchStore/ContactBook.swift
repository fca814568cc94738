import PitchMessage
import Synchronization

/// Who the mailbox's owner corresponds with: the relationship signal's memory.
///
/// A cold pitch comes from a stranger; the people you have written to are not strangers. Addresses are recorded
/// from mail the owner sent (`pitchfilter contacts import`, the Sent folder) and from messages trained as ham.
/// Each address also makes its domain known, except at freemail providers, where one address says nothing about
/// the next (`FreemailDomains`).
public protocol ContactBook: AnyObject, ContactLookup {
    /// Records each address (and its domain) as known; returns how many addresses were new. An address known
    /// from ham that the owner writes to becomes one of `.sent`, which no correction removes.
    @discardableResult
    func addContacts(_ addresses: [String], source: ContactSource, at time: Int64) throws -> Int

    /// Records the senders of messages learned as ham as known, as `addContacts(source: .ham)` does, and which
    /// message vouches for each; returns how many addresses were new.
    @discardableResult
    func addHamSenders(_ senders: [HamSender], at time: Int64) throws -> Int

    /// Takes back what these messages, learned as ham and now corrected (moved to pitch, or forgotten), taught:
    /// each one's sender, and the sender's domain unless another known address is there; otherwise one mistaken
    /// ham made its sender a known correspondent for good. A sender another ham message still vouches for stays,
    /// and so does everyone the owner wrote to. Returns how many addresses were removed.
    @discardableResult
    func removeHamSenders(_ senders: [HamSender]) throws -> Int

    /// Which of these messages still vouch for their senders: after a run stopped between learning a correction
    /// and taking back what the message taught, the ledger no longer says the message was ham, but this does.
    func vouchingMessages(among digests: [[UInt8]]) throws -> Set<[UInt8]>

    /// Every known address, sorted, without the domain entries.
    func allContacts() throws -> [Contact]

    /// Forgets these correspondents, however they became known (a mistaken `contacts import`, a correspondent
    /// turned pitcher): an address, with the ham messages that vouch for it, and its domain when no other address
    /// there is known; a domain ("@example.org"), with every address there. Returns the keys that were known.
    @discardableResult
    func removeContacts(_ keys: [ContactKey]) throws -> [ContactKey]
}

/// A correspondent to forget: an address, or a domain and everyone there.
public enum ContactKey: Hashable, Sendable, CustomStringConvertible {
    case address(String)
    case domain(String)

    /// "name@example.org" is an address, "@example.org" a domain, as `contacts list --domains` prints them; each
    /// as the book keys it (lower case, an internationalized domain in its ASCII form). Nil for neither.
    public init?(_ text: String) {
        if text.hasPrefix("@") {
            guard let keys = ContactKeys.of("x" + text), let domain = keys.domain else { return nil }
            self = .domain(domain)
        } else {
            guard let keys = ContactKeys.of(text) else { return nil }
            self = .address(keys.address)
        }
    }

    /// The domain's key ("@example.org") an address makes known, or the domain's own; nil for a freemail address.
    public var domain: String? {
        switch self {
        case .address(let key): ContactKeys.of(key)?.domain
        case .domain(let key): key
        }
    }

    /// The key in the book: the address, or "@" and the domain.
    public var description: String {
        switch self {
        case .address(let key), .domain(let key): key
        }
    }
}

/// The read side of a contact book, which is all classifying needs.
public protocol ContactLookup: Sendable {
    /// How the owner knows this sender.
    func relationship(with address: String) throws -> Relationship

    /// How the owner would know this sender had the message with `digest` never vouched for them: what
    /// `removeHamSenders` of that message would leave. Learning a message again (a correction, or a move and back)
    /// must not count its own earlier learning as ham as evidence that its sender is known (found by an audit).
    func relationship(with address: String, apartFrom digest: [UInt8]) throws -> Relationship
}

/// A contact book's keys as of one moment, immutable: thousands of lookups from several threads need no lock.
public struct ContactSnapshot: ContactLookup {
    let keys: Set<String>
    /// The keys known from ham alone (`ContactSource.ham`), which a correction may take back.
    let fromHam: Set<String>
    /// The messages vouching for each address key.
    let vouchers: [String: Set<[UInt8]>]
    /// How many address keys each domain key has.
    let addressesAtDomain: [String: Int]

    init(keys: Set<String>, fromHam: Set<String> = [], vouchers: [String: Set<[UInt8]>] = [:]) {
        self.keys = keys
        self.fromHam = fromHam
        self.vouchers = vouchers
        var counts: [String: Int] = [:]
        for key in keys where !key.hasPrefix("@") {
            if let at = key.lastIndex(of: "@") { counts[String(key[at...]), default: 0] += 1 }
        }
        addressesAtDomain = counts
    }

    /// The book of a mailbox with no database yet: it knows nobody, so it says nothing of a sender, and the
    /// relationship tokens that need no book (`rel:own-domain`) still come.
    public static let empty = ContactSnapshot(keys: [])

    /// The book as it will be once these messages are learned as ham (what `addHamSenders` adds).
    public func adding(_ senders: [HamSender]) -> ContactSnapshot {
        guard !senders.isEmpty else { return self }
        var keys = keys
        var fromHam = fromHam
        var vouchers = vouchers
        for sender in senders {
            guard let parts = ContactKeys.of(sender.address) else { continue }
            for key in [parts.address] + (parts.domain.map { [$0] } ?? []) where keys.insert(key).inserted {
                fromHam.insert(key)
            }
            if let former = sender.formerDigest { vouchers[parts.address]?.remove(former) }
            vouchers[parts.address, default: []].insert(sender.digest)
        }
        return ContactSnapshot(keys: keys, fromHam: fromHam, vouchers: vouchers)
    }

    /// Whether any contact is known from ham: until one is, no correction can take anyone back.
    public var hasHamContacts: Bool { !fromHam.isEmpty }

    /// The messages vouching for their senders: learned as ham (a correction stopped half-way may have left one
    /// vouching, `SQLiteTokenStore.vouchingMessages`).
    public var vouchingMessages: Set<[UInt8]> {
        vouchers.values.reduce(into: Set<[UInt8]>()) { $0.formUnion($1) }
    }

    /// The book as it will be once `removeHamSenders` has taken these messages back: each stops vouching for its
    /// sender, an address known from ham alone goes when no message vouches for it any more (one learned before
    /// messages were recorded vouching never had one), and its domain with it when no other address there is
    /// known.
    public func removing(_ senders: [HamSender]) -> ContactSnapshot {
        guard !senders.isEmpty else { return self }
        var keys = keys
        var fromHam = fromHam
        var vouchers = vouchers
        var removedAtDomain: [String: Int] = [:]
        for sender in senders {
            guard let parts = ContactKeys.of(sender.address) else { continue }
            for digest in sender.digests { vouchers[parts.address]?.remove(digest) }
            if vouchers[parts.address]?.isEmpty == true { vouchers[parts.address] = nil }
        }
        for sender in senders {
            guard let parts = ContactKeys.of(sender.address), vouchers[parts.address] == nil,
                  fromHam.contains(parts.address), keys.remove(parts.address) != nil else { continue }
            fromHam.remove(parts.address)
            guard let domain = parts.domain else { continue }
            removedAtDomain[domain, default: 0] += 1
            let othersThere = addressesAtDomain[domain, default: 0] - removedAtDomain[domain, default: 0]
            if fromHam.contains(domain), othersThere <= 0 {
                keys.remove(domain)
                fromHam.remove(domain)
            }
        }
        return ContactSnapshot(keys: keys, fromHam: fromHam, vouchers: vouchers)
    }

    public func relationship(with address: String) -> Relationship {
        guard !keys.isEmpty else { return .unknown }
        guard let parts = ContactKeys.of(address) else { return .firstContact }
        if keys.contains(parts.address) { return .knownAddress }
        if let domain = parts.domain, keys.contains(domain) { return .knownDomain }
        return .firstContact
    }

    public func relationship(with address: String, apartFrom digest: [UInt8]) -> Relationship {
        guard let parts = ContactKeys.of(address), fromHam.contains(parts.address),
              vouchers[parts.address] == [digest] else {
            return relationship(with: address)
        }
        // The address goes, and its domain with it unless it is the owner's word or another address is there.
        var gone = [parts.address]
        if let domain = parts.domain, fromHam.contains(domain), addressesAtDomain[domain, default: 0] <= 1 {
            gone.append(domain)
        }
        guard keys.count > gone.count else { return .unknown }
        if let domain = parts.domain, keys.contains(domain), !gone.contains(domain) { return .knownDomain }
        return .firstContact
    }
}

public enum ContactSource: String, Sendable, CaseIterable {
    /// The owner wrote to this address.
    case sent
    /// A message from this address was trained as ham.
    case ham
}

/// A message learned as ham, by its digest, and the address it came from.
public struct HamSender: Hashable, Sendable {
    public var digest: [UInt8]
    public var address: String
    /// The message's digest as taken before (`TrainingItem.formerDigest`), if another: a book written then has the
    /// message vouching under it. Adding the message files its vouching under `digest`; removing it removes both.
    public var formerDigest: [UInt8]?

    public init(digest: [UInt8], address: String, formerDigest: [UInt8]? = nil) {
        self.digest = digest
        self.address = address
        self.formerDigest = formerDigest
    }

    /// The digests a book may know the message by.
    public var digests: [[UInt8]] { [digest] + (formerDigest.map { [$0] } ?? []) }
}

public struct Contact: Hashable, Sendable {
    public var address: String
    public var source: ContactSource
    /// Seconds since 1970 when it was first recorded.
    public var addedAt: Int64

    public init(address: String, source: ContactSource, addedAt: Int64) {
        self.address = address
        self.source = source
        self.addedAt = addedAt
    }
}

public enum Relationship: String, Sendable, CaseIterable {
    /// The owner has written to (or kept mail from) this very address.
    case knownAddress = "known-address"
    /// Not this address, but someone else at its domain.
    case knownDomain = "known-domain"
    /// Nobody at this address or domain.
    case firstContact = "first-contact"
    /// The book is empty: nothing can be said either way.
    case unknown
}

/// The keys a contact book stores for one address: the address itself, and "@domain" unless the domain is a
/// freemail provider's. Lower-cased, the domain in its ASCII form (`DomainName`); nil for something that is not an
/// address.
enum ContactKeys {
    /// The address's key and its domain's ("@example.org"; none for freemail), or nil for no usable address.
    /// A domain's trailing dot (the root's, "partner.example.") is dropped, so the two spellings are one contact;
    /// a local part with an "@" of its own ("bob@@partner.example", a typo) is no address, and makes no domain known.
    static func of(_ address: String) -> (address: String, domain: String?)? {
        let lower = address.lowercased()
        guard let at = lower.lastIndex(of: "@"), at > lower.startIndex else { return nil }
        let local = lower[..<at]
        guard local.first == "\"" || !local.contains("@") else { return nil }
        // In its ASCII form: an internationalized domain is one contact however a header spelt it.
        var domain = DomainName.ascii(String(lower[lower.index(after: at)...]))
        if domain.hasSuffix(".") { domain.removeLast() }
        guard !domain.isEmpty, domain.contains("."), !domain.hasPrefix("."), !domain.contains("..") else {
            return nil
        }
        return (local + "@" + domain, FreemailDomains.contains(domain) ? nil : "@" + domain)
    }
}


/// A contact book in memory, for tests and as the reference for every persistent one.
public final class InMemoryContactBook: ContactBook {
    private struct Book {
        var entries: [String: Contact] = [:]
        /// The address key of each ham message's sender, by digest.
        var hamSenders: [[UInt8]: String] = [:]
    }

    private let book = Mutex(Book())

    public init() {}

    @discardableResult
    public func addContacts(_ addresses: [String], source: ContactSource, at time: Int64) -> Int {
        book.withLock { book in
            var added = 0
            for address in addresses {
                guard let keys = ContactKeys.of(address) else { continue }
                for key in [keys.address] + (keys.domain.map { [$0] } ?? []) {
                    if book.entries[key] == nil {
                        book.entries[key] = Contact(address: key, source: source, addedAt: time)
                        if key == keys.address { added += 1 }
                    } else if source == .sent {
                        book.entries[key]?.source = .sent
                    }
                }
            }
            return added
        }
    }

    @discardableResult
    public func addHamSenders(_ senders: [HamSender], at time: Int64) -> Int {
        book.withLock { book in
            for sender in senders {
                guard let keys = ContactKeys.of(sender.address) else { continue }
                if let former = sender.formerDigest { book.hamSenders[former] = nil }
                book.hamSenders[sender.digest] = keys.address
            }
        }
        return addContacts(senders.map(\.address), source: .ham, at: time)
    }

    @discardableResult
    public func removeHamSenders(_ senders: [HamSender]) -> Int {
        book.withLock { book in
            for sender in senders {
                for digest in sender.digests { book.hamSenders[digest] = nil }
            }
            let vouched = Set(book.hamSenders.values)
            var removed = 0
            for sender in senders {
                guard let keys = ContactKeys.of(sender.address), !vouched.contains(keys.address),
                      book.entries[keys.address]?.source == .ham else { continue }
                book.entries[keys.address] = nil
                removed += 1
                if let domain = keys.domain, book.entries[domain]?.source == .ham,
                   !book.entries.keys.contains(where: { $0 != domain && $0.hasSuffix(domain) }) {
                    book.entries[domain] = nil
                }
            }
            return removed
        }
    }

    public func vouchingMessages(among digests: [[UInt8]]) -> Set<[UInt8]> {
        book.withLock { book in Set(digests.filter { book.hamSenders[$0] != nil }) }
    }

    public func relationship(with address: String, apartFrom digest: [UInt8]) -> Relationship {
        // The reference: what the book would say after the correction, if the message vouches for this sender.
        let state = book.withLock { $0 }
        guard let key = ContactKeys.of(address)?.address, state.hamSenders[digest] == key else {
            return relationship(with: address)
        }
        let copy = InMemoryContactBook()
        copy.book.withLock { $0 = state }
        copy.removeHamSenders([HamSender(digest: digest, address: address)])
        return copy.relationship(with: address)
    }

    public func relationship(with address: String) -> Relationship {
        book.withLock { book in
            let entries = book.entries
            guard !entries.isEmpty else { return .unknown }
            guard let keys = ContactKeys.of(address) else { return .firstContact }
            if entries[keys.address] != nil { return .knownAddress }
            if let domain = keys.domain, entries[domain] != nil { return .knownDomain }
            return .firstContact
        }
    }

    public func allContacts() -> [Contact] {
        book.withLock { book in
            book.entries.values.filter { !$0.address.hasPrefix("@") }.sorted { $0.address < $1.address }
        }
    }

    @discardableResult
    public func removeContacts(_ keys: [ContactKey]) -> [ContactKey] {
        book.withLock { book in
            var known: [ContactKey] = []
            for key in keys {
                let removed: [String]
                switch key {
                case .address(let address):
                    removed = book.entries[address] == nil ? [] : [address]
                case .domain(let domain):
                    removed = book.entries.keys.filter { $0 == domain || (!$0.hasPrefix("@") && $0.hasSuffix(domain)) }
                }
                guard !removed.isEmpty else { continue }
                known.append(key)
                for entry in removed { book.entries[entry] = nil }
                book.hamSenders = book.hamSenders.filter { !removed.contains($0.value) }
                if case .address(let address) = key, let domain = ContactKeys.of(address)?.domain,
                   !book.entries.keys.contains(where: { $0 != domain && $0.hasSuffix(domain) }) {
                    book.entries[domain] = nil
                }
            }
            return known
        }
    }
}
