/// Something odd about a message. Malformed mail is data, not an error: the parser records what it
/// found and carries on with a best-effort reading, the way CPython's email package does.
public struct Defect: Hashable, Sendable, CustomStringConvertible {
    public enum Kind: String, Hashable, Sendable, CaseIterable {
        // Header block
        /// The first header line starts with white space, so it continues nothing.
        case firstLineIsContinuation
        /// A line in the header block is neither a field nor a continuation; the body is taken to start there.
        case missingHeaderBodySeparator
        /// A field name is followed by white space before the colon (RFC 5322 obsolete syntax).
        case whitespaceBeforeColon
        /// A header field contains bytes above 0x7F that are not RFC 2047 encoded.
        case eightBitHeader
        /// A header field contains a NUL byte.
        case nulInHeader
        /// Header fields past `Limits.maxHeaderFields` were not recorded (they are still passed through).
        case tooManyHeaderFields
        /// Header bytes past `Limits.maxHeaderBytes` were not recorded (they are still passed through).
        case headerTooLong
        /// Lines end in both LF and CRLF.
        case mixedLineEndings

        // RFC 2047 / RFC 2231
        /// An encoded word is malformed (bad encoding letter, missing terminator, bad base64).
        case invalidEncodedWord
        /// An RFC 2231 parameter is malformed (missing continuation section, bad percent escape).
        case invalidParameter

        // MIME structure
        /// A multipart has no boundary parameter; its body is read as text.
        case multipartWithoutBoundary
        /// The closing boundary of a multipart never appears.
        case missingClosingBoundary
        /// A multipart body never uses its boundary; the body is read as text.
        case multipartWithoutParts
        /// A Content-Type value cannot be read as type/subtype; text/plain is assumed.
        case invalidContentType
        /// MIME nesting deeper than `Limits.maxDepth`; deeper parts are read as opaque bodies.
        case nestingTooDeep
        /// More parts than `Limits.maxParts`; the rest are not split out.
        case tooManyParts
        /// The message is larger than `Limits.maxAnalysisBytes`; only its beginning was analysed.
        case truncatedForAnalysis

        // Transfer encoding
        /// An unknown Content-Transfer-Encoding; the body is taken as it is.
        case unknownTransferEncoding
        /// Base64 with characters outside the alphabet; they were skipped.
        case invalidBase64Characters
        /// Base64 whose length is not a multiple of four, or with data after the padding.
        case invalidBase64Padding
        /// Quoted-printable with an `=` not followed by two hex digits or a line break.
        case invalidQuotedPrintable

        // Text
        /// A charset nobody knows; the text was decoded as UTF-8 or windows-1252, whichever fits.
        case unknownCharset
        /// Bytes that are invalid in the declared charset (including 8-bit bytes in "us-ascii").
        case invalidCharsetBytes
        /// Decoded text was cut at `Limits.maxDecodedTextBytes`.
        case textTruncated
        /// HTML nested or attributed past the converter's limits.
        case htmlTooComplex
    }

    public var kind: Kind
    /// Byte offset into the raw message where the defect was seen, when it is known.
    public var offset: Int?
    /// A short note for people (the unknown charset's name, the bad bytes); empty when the kind says it all.
    public var detail: String

    public init(_ kind: Kind, at offset: Int? = nil, detail: String = "") {
        self.kind = kind
        self.offset = offset
        self.detail = detail
    }

    public var description: String {
        var text = kind.rawValue
        if let offset { text += "@\(offset)" }
        if !detail.isEmpty { text += " (\(detail))" }
        return text
    }
}
