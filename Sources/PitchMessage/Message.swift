/// One entity of a message: the message itself (part 0) or a MIME part inside it, as ranges into the raw bytes.
public struct Part: Sendable {
    /// How the part's body was read.
    public enum Structure: Hashable, Sendable {
        /// A body of its own: text, an attachment, or a container the parser did not open (see the defects).
        case leaf
        /// multipart/*: the body was split at its boundary into `children`.
        case multipart
        /// message/rfc822 or message/global: the body is one embedded message, `children[0]`.
        case message
    }

    /// Position in `Message.parts`, which lists parts in pre-order (document order).
    public let index: Int
    public let parent: Int?
    /// 0 for the message itself.
    public let depth: Int
    /// Header and body of this entity.
    public let range: Range<Int>
    /// This entity's fields, as positions in `Message.fields`.
    public let fieldIndices: Range<Int>
    public let bodyRange: Range<Int>
    /// The declared type, or the default where none was declared or it could not be read.
    public let contentType: ContentType
    /// Whether a Content-Transfer-Encoding field was present (the encoding is 7bit either way when absent).
    public let declaresTransferEncoding: Bool
    public let transferEncoding: TransferEncoding
    public let disposition: ContentDisposition?
    public internal(set) var structure: Structure
    public internal(set) var children: [Int] = []
    /// Whether the body is text to read: a text/* leaf, or a multipart whose boundary is missing or never
    /// appears (its body is then all there is to read, and a broken boundary must not hide a sender's words).
    /// A container left unopened for nesting too deep is not text.
    public internal(set) var isText: Bool

    /// The file name offered for the part, from Content-Disposition or the older Content-Type "name".
    public var filename: String? {
        disposition?.filename ?? contentType.parameters["name"]
    }
}

/// A message parsed from its raw bytes. The bytes are kept once; header fields and MIME parts are
/// ranges into them, and decoding happens only when asked for (`textParts()`, `Header.text(of:)`).
/// Parsing never fails: whatever is wrong with the message is recorded in `defects`.
public struct Message: Sendable {
    public let raw: [UInt8]
    public let limits: Limits
    /// The mbox `From ` line procmail hands to filters in delivery mode, line break included.
    public let envelope: Range<Int>?
    /// The style of the message's first line break; new header fields are written in it.
    public let lineEnding: LineEnding
    /// Every part in pre-order; `parts[0]` is the message itself.
    public let parts: [Part]
    /// The recorded header fields of every part; `Part.fieldIndices` says whose are whose.
    public let fields: [HeaderField]
    /// What was odd about the structure. Decoding adds its own (see `TextPart.defects`).
    public let defects: [Defect]

    public init(bytes: [UInt8], limits: Limits = .default) {
        var parser = MIMEParser(raw: bytes, limits: limits)
        bytes.withUnsafeBufferPointer { parser.parse($0) }
        self.raw = bytes
        self.limits = limits
        self.envelope = parser.envelope
        self.lineEnding = parser.lineEnding
        self.parts = parser.parts
        self.fields = parser.fields
        self.defects = parser.defects
    }

    public var root: Part { parts[0] }

    /// Whether the part is, or is inside, a message embedded in this one (message/rfc822, message/global): a
    /// forwarded message attached, whose words are another sender's.
    public func isInsideEmbeddedMessage(_ part: Part) -> Bool {
        var parent = part.parent
        while let index = parent {
            if parts[index].structure == .message { return true }
            parent = parts[index].parent
        }
        return false
    }

    /// Whether the message carries another message embedded in it.
    public var embedsAMessage: Bool { parts.contains { $0.structure == .message } }

    /// The message's own header.
    public var header: Header { header(of: root) }

    public func header(of part: Part) -> Header {
        Header(raw: raw, fields: fields[part.fieldIndices], limits: limits)
    }

    /// The part's body as bytes after transfer decoding (base64, quoted-printable), before charset decoding.
    public func decodedBody(of part: Part, defects: inout [Defect]) -> [UInt8] {
        decodedBody(of: part, maxInputBytes: .max, defects: &defects)
    }

    func decodedBody(of part: Part, maxInputBytes: Int, defects: inout [Defect]) -> [UInt8] {
        let body = raw[part.bodyRange.lowerBound..<(part.bodyRange.lowerBound + min(part.bodyRange.count, maxInputBytes))]
        var found: [Defect] = []
        let decoded: [UInt8]
        switch part.transferEncoding {
        case .base64: decoded = TransferDecoding.decodeBase64(body, defects: &found)
        case .quotedPrintable: decoded = TransferDecoding.decodeQuotedPrintable(body, defects: &found)
        case .sevenBit, .eightBit, .binary: decoded = Array(body)
        case .unknown(let label):
            found.append(Defect(.unknownTransferEncoding, detail: label))
            decoded = Array(body)
        }
        defects += found.map { Defect($0.kind, at: $0.offset ?? part.bodyRange.lowerBound, detail: $0.detail) }
        return decoded
    }
}

/// Builds the part tree without recursion: an explicit stack of entities still to read, so hostile nesting
/// costs a bounded amount of work rather than the call stack.
private struct MIMEParser {
    let raw: [UInt8]
    let limits: Limits
    var envelope: Range<Int>?
    var lineEnding: LineEnding = .lf
    var parts: [Part] = []
    var fields: [HeaderField] = []
    var defects: [Defect] = []

    private struct Entity {
        var range: Range<Int>
        var parent: Int?
        var depth: Int
        var defaultType: ContentType
    }

    init(raw: [UInt8], limits: Limits) {
        self.raw = raw
        self.limits = limits
    }

    mutating func parse(_ bytes: UnsafeBufferPointer<UInt8>) {
        let analysed = min(bytes.count, max(limits.maxAnalysisBytes, 0))
        if analysed < bytes.count {
            defects.append(Defect(.truncatedForAnalysis, at: analysed, detail: "\(bytes.count) bytes"))
        }
        let endings = LineEnding.detect(in: bytes, range: 0..<analysed)
        lineEnding = endings.first
        if endings.mixed { defects.append(Defect(.mixedLineEndings)) }

        var pending = [Entity(range: 0..<analysed, parent: nil, depth: 0, defaultType: .default)]
        var reportedTooManyParts = false
        while let entity = pending.popLast() {
            guard parts.count < limits.maxParts else {
                if !reportedTooManyParts {
                    defects.append(Defect(.tooManyParts, at: entity.range.lowerBound))
                    reportedTooManyParts = true
                }
                continue
            }
            var part = read(entity, bytes)
            let children = childEntities(of: &part, bytes)
            parts.append(part)
            if let parent = entity.parent { parts[parent].children.append(part.index) }
            pending += children.reversed()
        }
    }

    /// Reads one entity's header and decides how its body is structured.
    private mutating func read(_ entity: Entity, _ bytes: UnsafeBufferPointer<UInt8>) -> Part {
        var scanner = HeaderScanner(bytes: bytes, range: entity.range, allowsEnvelope: entity.parent == nil)
        if entity.parent == nil, scanner.envelopeEnd > entity.range.lowerBound {
            envelope = entity.range.lowerBound..<scanner.envelopeEnd
        }
        let headerStart = scanner.envelopeEnd
        let firstField = fields.count
        var overLimit = false
        while let field = scanner.next() {
            if fields.count - firstField >= limits.maxHeaderFields {
                defects.append(Defect(.tooManyHeaderFields, at: field.range.lowerBound))
                overLimit = true
            } else if field.range.upperBound - headerStart > limits.maxHeaderBytes {
                defects.append(Defect(.headerTooLong, at: field.range.lowerBound))
                overLimit = true
            } else {
                fields.append(field)
                continue
            }
            break
        }
        let bodyStart = overLimit ? scanner.skipToBody() : (scanner.bodyStart ?? entity.range.upperBound)
        defects += scanner.defects
        let fieldIndices = firstField..<fields.count
        recordHeaderByteDefects(fieldIndices, bytes)

        let header = Header(raw: raw, fields: fields[fieldIndices], limits: limits)
        var contentType = entity.defaultType
        if let field = header.first(named: "content-type") {
            var found: [Defect] = []
            if let parsed = ContentType.parse(header.unfoldedValue(of: field), defects: &found) {
                contentType = parsed
            } else {
                defects.append(Defect(.invalidContentType, at: field.range.lowerBound))
            }
            defects += found.map { Defect($0.kind, at: field.range.lowerBound, detail: $0.detail) }
        }
        let encodingField = header.first(named: "content-transfer-encoding")
        let transferEncoding = TransferEncoding(
            label: encodingField.map { String(decoding: header.unfoldedValue(of: $0), as: UTF8.self) })
        var disposition: ContentDisposition?
        if let field = header.first(named: "content-disposition") {
            var found: [Defect] = []
            disposition = ContentDisposition.parse(header.unfoldedValue(of: field), defects: &found)
            defects += found.map { Defect($0.kind, at: field.range.lowerBound, detail: $0.detail) }
        }

        let structure: Part.Structure
        var isText = contentType.isText
        let opensAsContainer = contentType.isMultipart
            || (contentType.isMessage && transferEncoding.isIdentity)
        if !opensAsContainer {
            structure = .leaf
        } else if entity.depth >= limits.maxDepth {
            defects.append(Defect(.nestingTooDeep, at: entity.range.lowerBound))
            structure = .leaf
        } else if contentType.isMultipart && contentType.boundary == nil {
            defects.append(Defect(.multipartWithoutBoundary, at: entity.range.lowerBound))
            structure = .leaf
            isText = true
        } else {
            structure = contentType.isMultipart ? .multipart : .message
        }
        return Part(
            index: parts.count, parent: entity.parent, depth: entity.depth, range: entity.range,
            fieldIndices: fieldIndices, bodyRange: bodyStart..<entity.range.upperBound, contentType: contentType,
            declaresTransferEncoding: encodingField != nil, transferEncoding: transferEncoding,
            disposition: disposition, structure: structure, isText: isText)
    }

    /// At most one defect of each kind per header block: 50,000 fields with 8-bit bytes say nothing more than one.
    private mutating func recordHeaderByteDefects(_ indices: Range<Int>, _ bytes: UnsafeBufferPointer<UInt8>) {
        var sawEightBit = false
        var sawNUL = false
        for field in fields[indices] {
            for offset in field.range {
                let byte = bytes[offset]
                if byte >= 0x80, !sawEightBit {
                    defects.append(Defect(.eightBitHeader, at: offset))
                    sawEightBit = true
                } else if byte == 0, !sawNUL {
                    defects.append(Defect(.nulInHeader, at: offset))
                    sawNUL = true
                }
            }
            if sawEightBit && sawNUL { return }
        }
    }

    private mutating func childEntities(of part: inout Part, _ bytes: UnsafeBufferPointer<UInt8>) -> [Entity] {
        switch part.structure {
        case .leaf:
            return []
        case .message:
            return [Entity(range: part.bodyRange, parent: part.index, depth: part.depth + 1, defaultType: .default)]
        case .multipart:
            guard let boundary = part.contentType.boundary else { return [] }
            let split = MultipartSplitter.split(bytes, body: part.bodyRange, boundary: boundary, maxParts: limits.maxParts)
            if split.bodies.isEmpty {
                defects.append(Defect(.multipartWithoutParts, at: part.bodyRange.lowerBound))
                part.structure = .leaf
                part.isText = true
            } else if !split.closed {
                defects.append(Defect(.missingClosingBoundary, at: part.bodyRange.upperBound))
            }
            // RFC 2046 §5.1.5: in a digest, a part without Content-Type is a message.
            let defaultType: ContentType = part.contentType.subtype == "digest" ? .messageRFC822 : .default
            return split.bodies.map {
                Entity(range: $0, parent: part.index, depth: part.depth + 1, defaultType: defaultType)
            }
        }
    }
}

extension TransferEncoding {
    /// Whether the body is stored as it is, so an embedded message can be read in place.
    var isIdentity: Bool {
        switch self {
        case .sevenBit, .eightBit, .binary: true
        case .quotedPrintable, .base64, .unknown: false
        }
    }
}

/// Finds the parts of a multipart body (RFC 2046 §5.1.1).
enum MultipartSplitter {
    /// A delimiter is "--" and the boundary at the start of a line, then optionally "--" (the close), then only
    /// spaces or tabs up to the line break. The line break before a delimiter belongs to the delimiter.
    /// Preamble and epilogue are not parts. Without a close delimiter the last part runs to the end.
    static func split(
        _ bytes: UnsafeBufferPointer<UInt8>, body: Range<Int>, boundary: [UInt8], maxParts: Int
    ) -> (bodies: [Range<Int>], closed: Bool) {
        let needle = [ByteScanning.dash, ByteScanning.dash] + boundary
        return needle.withUnsafeBufferPointer { needle in
            var bodies: [Range<Int>] = []
            var partStart: Int?
            var lineStart = body.lowerBound
            // One pass over line starts: delimiters can only stand there, and memchr finds the next one fast.
            while lineStart < body.upperBound {
                let delimiter = ByteScanning.matches(needle, in: bytes, at: lineStart, end: body.upperBound)
                    ? delimiterLine(bytes, at: lineStart, length: needle.count, end: body.upperBound) : nil
                guard let delimiter else {
                    guard let lf = ByteScanning.find(ByteScanning.lf, in: bytes, from: lineStart, to: body.upperBound)
                    else { break }
                    lineStart = lf + 1
                    continue
                }
                if let start = partStart {
                    var end = lineStart
                    if end > start, bytes[end - 1] == ByteScanning.lf {
                        end -= 1
                        if end > start, bytes[end - 1] == ByteScanning.cr { end -= 1 }
                    }
                    bodies.append(start..<end)
                    guard bodies.count < maxParts else { return (bodies, false) }
                }
                if delimiter.closes { return (bodies, partStart != nil) }
                partStart = delimiter.next
                lineStart = delimiter.next
            }
            if let start = partStart { bodies.append(start..<body.upperBound) }
            return (bodies, false)
        }
    }

    /// Reads the rest of a line that starts with "--" and the boundary: it is a delimiter if only "--" (the close)
    /// and then spaces or tabs follow before the line break.
    private static func delimiterLine(
        _ bytes: UnsafeBufferPointer<UInt8>, at start: Int, length: Int, end: Int
    ) -> (closes: Bool, next: Int)? {
        var i = start + length
        var closes = false
        if i + 1 < end, bytes[i] == ByteScanning.dash, bytes[i + 1] == ByteScanning.dash {
            closes = true
            i += 2
        }
        while i < end, ByteScanning.isWhitespace(bytes[i]) { i += 1 }
        if i == end { return (closes, end) }
        if bytes[i] == ByteScanning.lf { return (closes, i + 1) }
        if bytes[i] == ByteScanning.cr, i + 1 == end || bytes[i + 1] == ByteScanning.lf {
            return (closes, min(i + 2, end))
        }
        return nil
    }
}
