/// Explicit bounds on the work one message can cause. A message past a bound is never rejected: the
/// parser records a defect, stops analysing that part, and the message itself still passes through untouched.
/// Every default is chosen so that real mail never reaches it while hostile mail stays cheap.
public struct Limits: Hashable, Sendable {
    /// Bytes of the message that are analysed at all. 16 MiB: bigger mail is nearly always attachments,
    /// and its text parts come first; SpamAssassin's spamc stops at 500 KB, rspamd at 50 MB.
    public var maxAnalysisBytes: Int = 16 << 20
    /// Bytes of header fields recorded per header block. 256 KiB is 2.5 times Postfix's
    /// header_size_limit (102,400), which real mail already never reaches.
    public var maxHeaderBytes: Int = 256 << 10
    /// Header fields recorded per header block. 2,000: the largest header in the SpamAssassin corpus
    /// has well under 100 fields; list traffic with long Received chains stays under a few hundred.
    public var maxHeaderFields: Int = 2_000
    /// Bytes of one unfolded header value handed out as text. 64 KiB holds any real Subject or
    /// address list (Postfix's line_length_limit is 2,048).
    public var maxFieldValueBytes: Int = 64 << 10
    /// MIME nesting depth. 24: real mail nests multipart/mixed → alternative → related, plus a few
    /// forwarded messages; deeper structure is only ever an attack or a loop.
    public var maxDepth: Int = 24
    /// MIME parts per message. 1,000: a message with hundreds of attachments is still split out.
    public var maxParts: Int = 1_000
    /// Decoded text kept per text part, in UTF-8 bytes. 1 MiB is a long novel chapter; a pitch is
    /// a few hundred words, and the tokenizer's cost is linear in this.
    public var maxDecodedTextBytes: Int = 1 << 20
    /// Decoded HTML read per part before its text is taken out, in UTF-8 bytes. Markup, comments and styles take
    /// room the text does not: with the text's own bound, a megabyte of comment in front hid a pitch's words, and
    /// with any bound below `maxAnalysisBytes`, padding just past it would. So the same 16 MiB: text anywhere in
    /// what is analysed is read.
    public var maxDecodedHTMLBytes: Int = 16 << 20

    public init() {}

    /// The defaults, documented on each property.
    public static let `default` = Limits()
}
