import PitchClassifier
import PitchMessage
import PitchStore
import PitchTokenizer

#if canImport(Glibc)
import Glibc
#endif

/// The signals that come from a mailbox's history rather than from the message alone (see `Engine.tokens`).
public enum HistorySignal: String, CaseIterable, Hashable, Sendable {
    /// `rel:`: whether the owner has written to the sender, or to the sender's domain.
    case relationship
    /// `tmpl:`: whether other senders sent the same skeleton, or this sender sent it before.
    case template
}

/// A mailbox's history replayed in date order, so that evaluation sees the history signals as a user's mailbox
/// would have produced them.
///
/// Each message is tokenized as it is read; in date order, its history tokens are added from the memories as they
/// stood when it arrived, and it leaves its traces as the pipe filter and the service do: its skeleton is
/// remembered, and a ham's sender becomes a contact (the user kept the mail, or trained it as ham). The owner's sent mail, in the same timeline, makes its recipients contacts. Time
/// windows are not applied: every sighting counts, as in a mailbox
/// busy enough to keep its memories full.
public struct MailboxReplay: Sendable {
    public enum Entry: Sendable {
        /// A message the mailbox received, of known class.
        case received(Message, MessageClass)
        /// A message the owner sent.
        case sent(Message)

        var message: Message {
            switch self {
            case .received(let message, _), .sent(let message): message
            }
        }
    }

    /// An entry as the replay keeps it until its turn: what the message says of itself (its date, its own tokens,
    /// who wrote it to whom, its digest), without the message. A mailbox of gigabytes is replayed in the memory
    /// of its tokens, as `eval` without --replay measures it (found by an audit: the messages themselves, kept for
    /// the replay, took 2.6 GB for 2.5 GB of mail).
    public struct Arrival: Sendable {
        public enum Kind: Sendable {
            case received(MessageTokens, Engine.Correspondents, digest: [UInt8], MessageClass)
            case sent(recipients: [String])
        }

        public var date: Int64?
        public var kind: Kind
    }

    public let tokenizer: Tokenizer
    public let signals: Set<HistorySignal>

    public init(tokenizer: Tokenizer = Tokenizer(), signals: Set<HistorySignal> = Set(HistorySignal.allCases)) {
        self.tokenizer = tokenizer
        self.signals = signals
    }

    /// `entry` read for the replay: a received message tokenized (with its texts if `keepingTexts`).
    public func arrival(_ entry: Entry, keepingTexts: Bool = false) -> Arrival {
        let message = entry.message
        switch entry {
        case .sent:
            return Arrival(date: message.date, kind: .sent(recipients: Engine.correspondents(writtenToIn: message)))
        case .received(_, let truth):
            let tokens = tokenizer.tokenize(message, keepingTexts: keepingTexts)
            return Arrival(date: message.date,
                           kind: .received(tokens, Engine.Correspondents(of: message),
                                           digest: MessageDigest.of(message, ownFields: tokenizer.ownFields), truth))
        }
    }

    /// The tokens of every received entry, in the order given (sent entries give nil); with their texts if
    /// `keepingTexts`.
    public func tokens(of entries: [Entry], keepingTexts: Bool = false) throws -> [MessageTokens?] {
        try tokens(of: entries.map { arrival($0, keepingTexts: keepingTexts) })
    }

    /// The tokens of every received arrival, in the order given, each with its history tokens as the mailbox's
    /// memories stood when it arrived (sent arrivals give nil).
    public func tokens(of arrivals: [Arrival]) throws -> [MessageTokens?] {
        let contacts = InMemoryContactBook()
        let templates = InMemoryTemplateMemory()
        let engine = Engine(store: nil, starter: nil,
                            contacts: signals.contains(.relationship) ? contacts : nil,
                            templates: signals.contains(.template) ? templates : nil,
                            tokenizer: tokenizer)
        // Recorded now, so that the engine's window (which ends now) holds everything.
        let now = Int64(time(nil))
        var results = [MessageTokens?](repeating: nil, count: arrivals.count)
        for index in Self.chronologicalOrder(arrivals.map(\.date)) {
            switch arrivals[index].kind {
            case .sent(let recipients):
                contacts.addContacts(recipients, source: .sent, at: now)
            case .received(var tokens, let correspondents, let digest, let truth):
                for token in try engine.historyTokens(for: tokens, correspondents, digest: digest) {
                    tokens.append(token)
                }
                results[index] = tokens
                if let sighting = Engine.templateSighting(tokens, correspondents, digest: { digest }) {
                    templates.record([sighting], at: now, expireBefore: 0)
                }
                if truth == .ham, let sender = correspondents.sender {
                    contacts.addContacts([sender], source: .ham, at: now)
                }
            }
        }
        return results
    }

    /// Indices sorted by date. A message without a readable date arrives with the one before it in the input, so
    /// that a folder's order is kept where dates say nothing; ties keep the input order.
    static func chronologicalOrder(_ dates: [Int64?]) -> [Int] {
        var keys: [Int64] = []
        keys.reserveCapacity(dates.count)
        var previous = Int64.min
        for date in dates {
            previous = date ?? previous
            keys.append(previous)
        }
        return keys.indices.sorted { keys[$0] != keys[$1] ? keys[$0] < keys[$1] : $0 < $1 }
    }
}
