import PitchClassifier
import PitchTokenizer

/// One message to learn or unlearn. The digest (32-byte SHA-256, computed by the engine) identifies the message
/// in the ledger; the tokens are its distinct tokens.
///
/// The store never sees the message itself: the digest is what makes training idempotent (a message learned twice
/// counts once) and the tokens are what it adds or subtracts.
public struct TrainingItem: Hashable, Sendable {
    public var digest: [UInt8]
    /// Each token counts once per message; duplicates are ignored rather than counted twice.
    public var tokens: [TokenID]
    /// The class to learn the message as, or nil to forget it.
    public var target: MessageClass?
    /// Those of `tokens` that came from the mailbox's history (`rel:`, `tmpl:`) rather than the message.
    /// They depend on when the message was learned, so the ledger keeps them, and a later forget or move takes
    /// back what was added then instead of what the history says now.
    public var history: [TokenID]
    /// The digest the message had before the digest left a mail store's fields out (`MessageDigest.former`), if
    /// another: a ledger entry under it is the message's, and moves to `digest` when the message is trained again.
    public var formerDigest: [UInt8]?

    public init(digest: [UInt8], tokens: [TokenID], target: MessageClass?, history: [TokenID] = [],
                formerDigest: [UInt8]? = nil) {
        self.digest = digest
        self.tokens = tokens
        self.target = target
        self.history = history
        self.formerDigest = formerDigest
    }

    /// `tokens` without `history`: what the message gives whenever it is tokenized.
    var content: [TokenID] {
        guard !history.isEmpty else { return tokens }
        let history = Set(self.history)
        return tokens.filter { !history.contains($0) }
    }
}

/// What training did with one item, so the CLI can report "learned 12, already known 3, moved 1".
public enum TrainingOutcome: String, Hashable, Sendable {
    /// Not in the ledger before: its tokens were added to the target class.
    case learned
    /// Already learned as the target class: nothing changed.
    case alreadyKnown
    /// Learned as the other class before: its tokens moved to the target class.
    case moved
    /// Forgotten: its tokens were subtracted and its ledger row deleted.
    case forgotten
    /// Asked to forget a message that was never learned: nothing changed.
    case notKnown
}

/// What a store holds, for `pitchfilter stats` and for deciding whether the user's own training is enough yet.
public struct StoreStatistics: Hashable, Sendable {
    public var totals: ClassTotals
    /// Distinct tokens with a non-zero count.
    public var tokens: Int
    /// Messages in the learned-message ledger (equal to the totals' sum unless the totals were imported).
    public var ledgerEntries: Int
    public var tokenizerIdentity: String
    /// `PRAGMA user_version` for SQLite; 0 for stores that persist nothing.
    public var schemaVersion: Int
    /// Bytes the database occupies, or nil for stores that are not files.
    public var sizeBytes: Int?

    public init(totals: ClassTotals, tokens: Int, ledgerEntries: Int, tokenizerIdentity: String, schemaVersion: Int,
                sizeBytes: Int?) {
        self.totals = totals
        self.tokens = tokens
        self.ledgerEntries = ledgerEntries
        self.tokenizerIdentity = tokenizerIdentity
        self.schemaVersion = schemaVersion
        self.sizeBytes = sizeBytes
    }
}

/// Token counts, class totals and the learned-message ledger.
///
/// One protocol with an in-memory implementation beside every backend, and one conformance suite they all pass, so
/// the engine and its tests never depend on which backend is configured. Every method is one round trip to the
/// backend: classifying a message is one `lookup`, training a batch is one `train`.
public protocol TokenStore: AnyObject, TokenCountSource {
    /// The tokenizer whose token ids this store holds; ids from another tokenizer would be meaningless here.
    var tokenizerIdentity: String { get }

    /// Counts for these tokens (tokens never seen are left out) and the class totals, from ONE consistent snapshot
    /// (one read transaction), so a concurrent training batch is seen entirely or not at all.
    func lookup(_ tokens: [TokenID]) throws -> (counts: [TokenID: TokenCounts], totals: ClassTotals)

    /// Learns, moves or forgets each item in order, ALL IN ONE TRANSACTION (callers batch bulk training, e.g. 500
    /// items): one commit per batch is what makes bulk training fast, and nothing is ever half-applied.
    ///
    /// Ledger semantics per item: target == ledger class → `alreadyKnown` (no change); ledger has the other class →
    /// `moved` (tokens subtracted from the other class and added to the target, totals adjusted); not in the ledger
    /// → `learned` (tokens added, ledger row inserted); target nil and in the ledger → `forgotten` (tokens
    /// subtracted, row deleted); target nil and not in the ledger → `notKnown`. Counts never go below zero (they
    /// saturate) and tokens whose counts are both zero are deleted.
    func train(_ items: [TrainingItem]) throws -> [TrainingOutcome]

    /// The class a message was learned as, or nil if it was never learned (or was forgotten).
    func ledgerClass(of digest: [UInt8]) throws -> MessageClass?

    func statistics() throws -> StoreStatistics

    /// Every token with its counts, in id order (used to build the embedded starter model and for export).
    func allTokens() throws -> [(TokenID, TokenCounts)]
}
