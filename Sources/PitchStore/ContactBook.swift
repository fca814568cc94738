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

    /// Takes back what ham training taught of each address: the address, and its domain unless another known
    /// address is there. For a message learned as ham then corrected (moved to pitch, or forgotten): otherwise one
    /// mistaken ham made its sender a known correspondent for good. Addresses the owner wrote to stay known.
    /// Returns how many addresses were removed.
    @discardableResult
    func removeHamContacts(_ addresses: [String]) throws -> Int

    /// Every known address, sorted, without the domain entries.
    func allContacts() throws -> [Contact]
}

/// The read side of a contact book, which is all classifying needs.
public protocol ContactLookup: Sendable {
    /// How the owner knows this sender.
    func relationship(with address: String) throws -> Relationship
}

/// A contact book's keys as of one moment, immutable: thousands of lookups from several threads need no lock.
public struct ContactSnapshot: ContactLookup {
    let keys: Set<String>

    /// The book of a mailbox with no database yet: it knows nobody, so it says nothing of a sender, and the
    /// relationship tokens that need no book (`rel:own-domain`) still come.
    public static let empty = ContactSnapshot(keys: [])

    public func relationship(with address: String) -> Relationship {
        guard !keys.isEmpty else { return .unknown }
        guard let parts = ContactKeys.of(address) else { return .firstContact }
        if keys.contains(parts.address) { return .knownAddress }
        if let domain = parts.domain, keys.contains(domain) { return .knownDomain }
        return .firstContact
    }
}

public enum ContactSource: String, Sendable, CaseIterable {
    /// The owner wrote to this address.
    case sent
    /// A message from this address was trained as ham.
    case ham
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
/// freemail provider's. Lower-cased; nil for something that is not an address.
enum ContactKeys {
    static func of(_ address: String) -> (address: String, domain: String?)? {
        let lower = address.lowercased()
        guard let at = lower.lastIndex(of: "@"), at > lower.startIndex else { return nil }
        let domain = String(lower[lower.index(after: at)...])
        guard !domain.isEmpty, domain.contains(".") else { return nil }
        return (lower, FreemailDomains.contains(domain) ? nil : "@" + domain)
    }
}

/// Mail providers where anybody can have an address: knowing one gmail.com address makes no other one known.
public enum FreemailDomains {
    public static func contains(_ domain: String) -> Bool {
        let lower = domain.lowercased()
        if names.contains(lower) { return true }
        // yahoo.co.uk, hotmail.fr, gmx.de, yandex.ru: the provider's name under any country's suffix (and under
        // .example, in test and sample mail).
        guard let dot = lower.firstIndex(of: ".") else { return false }
        return regional.contains(String(lower[..<dot]))
    }

    static let names: Set<String> = [
        "gmail.com", "googlemail.com", "outlook.com", "hotmail.com", "live.com", "msn.com", "aol.com",
        "icloud.com", "me.com", "mac.com", "proton.me", "protonmail.com", "pm.me", "fastmail.com", "zoho.com",
        "mail.com", "gmx.net", "web.de", "t-online.de", "mail.ru", "qq.com", "163.com", "126.com", "naver.com",
        "hey.com", "tutanota.com", "ymail.com", "rocketmail.com", "comcast.net", "verizon.net", "att.net",
    ]

    static let regional: Set<String> = [
        "yahoo", "hotmail", "outlook", "live", "gmx", "yandex", "libero", "orange", "gmail", "googlemail", "fastmail",
        "icloud", "aol", "protonmail", "zoho",
    ]
}

/// A contact book in memory, for tests and as the reference for every persistent one.
public final class InMemoryContactBook: ContactBook {
    private let entries = Mutex<[String: Contact]>([:])

    public init() {}

    @discardableResult
    public func addContacts(_ addresses: [String], source: ContactSource, at time: Int64) -> Int {
        entries.withLock { entries in
            var added = 0
            for address in addresses {
                guard let keys = ContactKeys.of(address) else { continue }
                if entries[keys.address] == nil {
                    entries[keys.address] = Contact(address: keys.address, source: source, addedAt: time)
                    added += 1
                } else if source == .sent {
                    entries[keys.address]?.source = .sent
                }
                if let domain = keys.domain {
                    if entries[domain] == nil {
                        entries[domain] = Contact(address: domain, source: source, addedAt: time)
                    } else if source == .sent {
                        entries[domain]?.source = .sent
                    }
                }
            }
            return added
        }
    }

    @discardableResult
    public func removeHamContacts(_ addresses: [String]) -> Int {
        entries.withLock { entries in
            var removed = 0
            for address in addresses {
                guard let keys = ContactKeys.of(address), entries[keys.address]?.source == .ham else { continue }
                entries[keys.address] = nil
                removed += 1
                if let domain = keys.domain, entries[domain]?.source == .ham,
                   !entries.keys.contains(where: { $0 != domain && $0.hasSuffix(domain) }) {
                    entries[domain] = nil
                }
            }
            return removed
        }
    }

    public func relationship(with address: String) -> Relationship {
        entries.withLock { entries in
            guard !entries.isEmpty else { return .unknown }
            guard let keys = ContactKeys.of(address) else { return .firstContact }
            if entries[keys.address] != nil { return .knownAddress }
            if let domain = keys.domain, entries[domain] != nil { return .knownDomain }
            return .firstContact
        }
    }

    public func allContacts() -> [Contact] {
        entries.withLock { entries in
            entries.values.filter { !$0.address.hasPrefix("@") }.sorted { $0.address < $1.address }
        }
    }
}
