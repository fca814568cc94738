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
/// Each message is tokenized with the memories as they stood when it arrived, then leaves its traces as the pipe
/// filter and the service do: its skeleton is remembered, and a ham's sender becomes a contact (the user kept the
/// mail, or trained it as ham). The owner's sent mail, in the same timeline, makes its recipients contacts. Time
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

    public let tokenizer: Tokenizer
    public let signals: Set<HistorySignal>

    public init(tokenizer: Tokenizer = Tokenizer(), signals: Set<HistorySignal> = Set(HistorySignal.allCases)) {
        self.tokenizer = tokenizer
        self.signals = signals
    }

    /// The tokens of every received entry, in the order given (sent entries give nil); with their texts if
    /// `keepingTexts`.
    public func tokens(of entries: [Entry], keepingTexts: Bool = false) throws -> [MessageTokens?] {
        let contacts = InMemoryContactBook()
        let templates = InMemoryTemplateMemory()
        let engine = Engine(store: nil, starter: nil,
                            contacts: signals.contains(.relationship) ? contacts : nil,
                            templates: signals.contains(.template) ? templates : nil,
                            tokenizer: tokenizer)
        // Recorded now, so that the engine's window (which ends now) holds everything.
        let now = Int64(time(nil))
        var results = [MessageTokens?](repeating: nil, count: entries.count)
        for index in Self.chronologicalOrder(entries.map(\.message.date)) {
            switch entries[index] {
            case .sent(let message):
                contacts.addContacts(Engine.recipients(of: message), source: .sent, at: now)
            case .received(let message, let truth):
                let tokens = try engine.tokens(of: message, keepingTexts: keepingTexts)
                results[index] = tokens
                if let sighting = engine.templateSighting(of: message, tokens) {
                    templates.record([sighting], at: now, expireBefore: 0)
                }
                if truth == .ham, let sender = Engine.sender(of: message) {
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
