import PitchMessage

/// The tokens of one message: `texts[i]` is the token whose id is `ids[i]`. The words and pairs of the text come
/// last, from `textStart` on: the classifier weighs them apart (`ClassifierParameters.textWeight`).
public struct MessageTokens: Sendable {
    /// Empty when the tokenizer was asked for ids only.
    public var texts: [String]
    public var ids: [TokenID]
    /// Where the words and pairs of the text begin in `ids` (and `texts`); `ids.count` when there are none.
    public var textStart: Int
    /// Whether each of `ids` is a local token (`LocalTokens`), which the starter model does not carry.
    public var isLocal: [Bool]
    /// Whether each of `ids` is one of the Subject's words or pairs: a pitch needs enough evidence beyond them
    /// (`Classifier.minimumPitchEvidence`), and without `texts` the names cannot say (found by an audit: only
    /// `classify --explain` applied that rule, and `filter`, the service and the milter called such messages pitches).
    public var isSubject: [Bool]
    /// The skeleton's fingerprint, for the template memory; nil when the text is too short to have one.
    public var template: TemplateFingerprint?

    /// `textStart` nil: no token is a word of the text. `isLocal` and `isSubject` nil: read from `texts` (none is
    /// local or the Subject's without them).
    public init(texts: [String], ids: [TokenID], textStart: Int? = nil, isLocal: [Bool]? = nil,
                isSubject: [Bool]? = nil, template: TemplateFingerprint? = nil) {
        precondition(isLocal.map { $0.count == ids.count } ?? true, "one isLocal per id")
        precondition(isSubject.map { $0.count == ids.count } ?? true, "one isSubject per id")
        self.texts = texts
        self.ids = ids
        self.textStart = min(max(textStart ?? ids.count, 0), ids.count)
        self.isLocal = isLocal ?? (texts.count == ids.count ? texts.map(LocalTokens.contains)
                                                            : Array(repeating: false, count: ids.count))
        self.isSubject = isSubject ?? (texts.count == ids.count ? texts.map { $0.hasPrefix("subj:") }
                                                                : Array(repeating: false, count: ids.count))
        self.template = template
    }

    public var count: Int { ids.count }

    /// Adds a token the tokenizer cannot know (the engine's relationship token), unless it is already there. It
    /// counts fully, so it goes before the text's words.
    public mutating func append(_ token: String) {
        let id = TokenID(hashing: token)
        guard !ids.contains(id) else { return }
        if texts.count == ids.count { texts.insert(token, at: textStart) }
        ids.insert(id, at: textStart)
        isLocal.insert(LocalTokens.contains(token), at: textStart)
        isSubject.insert(false, at: textStart)
        textStart += 1
    }
}

/// Turns a message into the tokens the classifier counts: the words and word pairs of its text and subject, what
/// its header says about the sender, the path and the sending software, where it links, and what it shows.
///
/// Every token is lower-cased and appears once per message, because the classifier counts in how many messages of
/// a class a token occurs, not how often. Work is bounded per part and per message (`Bounds`), so a hostile
/// message costs no more than a long honest one.
///
/// The tokens (the prefix says where a token came from, so "free" in a subject and in a body are different):
///
/// | Token | From |
/// |---|---|
/// | `word`, `word word`, `, word` | text of plain and HTML parts: words, adjacent pairs (`,` `!` `?` `:` pair too) |
/// | `subj:word`, `subj:word word`, `subj:none` | Subject |
/// | `from:addr`, `fromdom:`, `fromhost:`, `fromname:word`, `from:none` | From: address, domain, display-name words |
/// | `replyto:same`/`samedomain`/`other`, `replytodom:` | Reply-To compared with From |
/// | `rcpt:N`, `to:none` | number of To and Cc addresses, bucketed |
/// | `mailer:name` | X-Mailer and User-Agent without versions ("microsoft outlook express") |
/// | `precedence:`, `msgid:domain`/`none`/`noat`/`badhost` | Precedence, Message-ID |
/// | `rcvds:N`, `rcvd:domain`, `rcvdip:a.b.c`, `rcvdwith:proto` | Received chain: hop count, hosts, /24 networks |
/// | `hdr:name` | presence of each header field ("hdr:list-unsubscribe", "hdr:list-id") |
/// | `head:word` | words of other header fields (not dates, ids, addresses, MIME) |
/// | `ct:`, `part:`, `charset:`, `cte:` | MIME types of the root and the parts, charsets, transfer encodings |
/// | `url:domain`, `urlhost:host`, `url:ip`, `urls:N` | hosts of links and of URLs written in the text |
/// | `href:word`, `link:scheme`, `links:N` | words of link and image addresses, non-web links, link count |
/// | `imgs:N`, `img:tiny`, `img:hidden`, `imgdom:domain` | images: count, tracking pixels (≤ 2×2 or hidden), hosts |
/// | `defect:kind` | what was malformed (`Defect.Kind`) |
/// | `sig:…` | form-letter signals: merge remnants, unthreaded replies and opt-out wording (`FormLetterSignal`) |
///
/// Besides the tokens, `tokenize` returns the skeleton's `TemplateFingerprint`. From it and the store, the engine
/// adds `rel:` (does the owner know the sender?) and `tmpl:` (has this skeleton come from others, or from this
/// sender to this recipient, lately?), which need the mailbox's history.
///
/// Counts are bucketed (0, 1, 2, 3-4, 5-8, …, 65+). Words are 3–30 UTF-8 bytes; bare numbers are dropped.
///
/// Each choice was measured by 5-fold cross-validation (DESIGN.md, "Evaluation protocol") on the SpamAssassin
/// corpus (4,150 ham, 1,896 spam) and on samples/corpus (125 + 125). 1−AUC in %, the mean over six classifier
/// settings (s 0.05, 0.1, 0.2 × min_dev 0.375, 0.4), SpamAssassin / samples: this scheme 0.0280 / 0.130; single
/// words without pairs 0.0330 / 0.258; sparse bigrams of distance ≤ 2 or ≤ 3 instead of adjacent pairs 0.0513 /
/// 0.187 and 0.0462 / 0.223; without punctuation in pairs 0.0331 / 0.194; with only one part of each
/// multipart/alternative 0.0373 / 0.123; without "head:" words 0.0406 / 0.139; without Received tokens 0.0389 /
/// 0.117; without "hdr:" names 0.0297 / 0.136; with pairs across blank lines 0.0274 / 0.144. Where the corpora
/// disagree the larger one decided. Bare numbers measured the same within noise (0.0274 / 0.129 with them) and
/// are left out: mostly dates, times and ids, they would add 9 tokens a message that a database keeps.
public struct Tokenizer: Sendable {
    /// Changes whenever the tokens of the same message could change; databases record it and refuse another.
    /// 3: the tracking signal is gone (see `FormLetterSignal`), so a message's tokens differ from 2's.
    /// A change that only stops producing some tokens keeps it: every id still means what it meant, and the
    /// counts of the tokens no longer produced are never looked up again. So our own X-Pitch-* fields, which
    /// stopped being read after 3 was named, did not change it; nor do the names `[header]` gives them, which are
    /// skipped as they are (`OwnFields`).
    public static let identity = "pitch-tokens-3"

    /// The bounds on one message's work and tokens.
    struct Bounds: Sendable {
        /// Words shorter or longer than this (UTF-8 bytes, after lower-casing) give no token. 3, as bogofilter:
        /// two-byte words measured worse on the SpamAssassin corpus (0.0312 against 0.0280) though better on the
        /// samples (0.054 against 0.130: "open to", "if so", "we can" are pitch phrases), so the later
        /// pitch-signal tokens should carry those. 30: longer runs are encoded junk; 20 measured the same.
        var minWordBytes = 3
        var maxWordBytes = 30
        /// Distinct tokens per message. 5,000 caps 14 of the corpus's 6,046 messages and measured the same as no
        /// cap. The header comes first, and its fields' words may take 1,000 (`maxFieldTokens`), so a cut falls in
        /// the body, past its first words.
        var maxTokens = 5_000
        /// Words read in all of a message's text parts, short ones too: about 1.5 MB of prose, far past where new
        /// words still change a verdict, and within what the 16 MiB a message is analysed to bounds already. Every
        /// text part is read up to it. It was 20,000 words per part and 100 text parts, and a pitch behind 80 KB of
        /// filler words, or behind 100 near-empty text parts, was not read at all (found by an audit).
        var maxWords = 300_000
        /// Links and images looked at per text part.
        var maxReferences = 1_000

        static let standard = Bounds()
    }

    let bounds: Bounds
    /// The form-letter signals to emit: all of them, except when measuring what each adds (`pitchfilter eval
    /// --without-signal`). A database must always be trained with all of them.
    public let signals: Set<FormLetterSignal>
    /// The fields we write, which are never read as tokens (`OwnFields`).
    public let ownFields: OwnFields

    public init(signals: Set<FormLetterSignal> = Set(FormLetterSignal.allCases), ownFields: OwnFields = .standard) {
        self.bounds = .standard
        self.signals = signals
        self.ownFields = ownFields
    }

    init(bounds: Bounds) {
        self.bounds = bounds
        self.signals = Set(FormLetterSignal.allCases)
        self.ownFields = .standard
    }

    /// The distinct tokens of a message, each once: every token but the text's words and pairs in first-seen order,
    /// then those words and pairs in first-seen order.
    ///
    /// The header is read first and the body last, so when a huge message reaches the bound it is the end of its
    /// text that goes, never the header evidence.
    public func tokens(of message: Message) -> [String] {
        tokenize(message).texts
    }

    /// The distinct tokens of a message with their ids, as `tokens(of:)`; without `keepingTexts`, only the ids
    /// (`texts` is empty), which is all training and a plain verdict need.
    public func tokenize(_ message: Message, keepingTexts: Bool = true) -> MessageTokens {
        var collector = TokenCollector(limit: bounds.maxTokens, maxWordBytes: bounds.maxWordBytes,
                                       keepsTexts: keepingTexts)
        defer { collector.deallocate() }
        let header = message.header
        addHeaderTokens(header, message: message, to: &collector)
        // Asked once: it reads the header's addresses.
        let ownWordsOnly = readsOwnWordsOnly(message)
        // The Subject's tokens follow the header's in `ids`, one after the other (their prefix is theirs alone).
        let subjectStart = collector.ids.count
        addSubjectTokens(header, forwardPrefixOnly: ownWordsOnly, to: &collector)
        let subject = subjectStart..<collector.ids.count
        let template = addBodyTokens(message, readsOwnWordsOnly: ownWordsOnly, to: &collector)
        return MessageTokens(texts: collector.tokens + collector.textTokens, ids: collector.ids + collector.textIDs,
                             textStart: collector.ids.count,
                             isLocal: collector.local + Array(repeating: false, count: collector.textIDs.count),
                             isSubject: collector.ids.indices.map(subject.contains)
                                + Array(repeating: false, count: collector.textIDs.count),
                             template: template)
    }

    /// The Subject's text without our tags at its start (`OwnFields.subjectTags`), which say what we thought of the
    /// message, not what it is.
    func subject(of header: Header) -> String? {
        guard let subject = header["subject"] else { return nil }
        return OwnFields.untagged(subject: subject, leavingOut: ownFields.subjectTags)
    }

    /// Words and pairs of a subject; with `forwardPrefixOnly`, of its forward prefix ("Fwd:") alone, as the rest
    /// is the forwarded message's subject (`readsOwnWordsOnly`).
    func addSubjectTokens(_ header: Header, forwardPrefixOnly: Bool = false, to out: inout TokenCollector) {
        guard var subject = subject(of: header) else {
            out.add("subj:", "none")
            return
        }
        if forwardPrefixOnly, let prefix = FormLetterEvidence.replyPrefixAndEnd(subject), prefix.kind == .forward {
            subject = String(decoding: subject.utf8.prefix(prefix.end), as: UTF8.self)
        }
        subject.withUTF8 { bytes in
            var words = WordStream(bounds: bounds, prefix: "subj:", pairs: true, scratch: out.scratch)
            words.run(bytes, to: &out, maxWords: 200)
        }
    }

    /// Words only, no pairs: for header values and link addresses.
    func addWords(of value: String, prefix: StaticString, to out: inout TokenCollector, maxWords: Int) {
        var text = value
        text.withUTF8 { bytes in
            var words = WordStream(bounds: bounds, prefix: prefix, pairs: false, scratch: out.scratch)
            words.run(bytes, to: &out, maxWords: maxWords)
        }
    }
}
