#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The readable text of one text part: transfer-decoded, charset-decoded, HTML turned into text, an invitation or a
/// card into the words it shows (`ContentLineText`).
public struct TextPart: Sendable {
    public let partIndex: Int
    /// "text/plain", "text/html", …
    public let mimeType: String
    /// Lines end in LF whatever the message used, so the same words read the same in any transport.
    public let text: String
    /// For HTML parts: the links and images the tokenizer looks at (tracking pixels, link domains).
    public let links: [String]
    public let images: [ImageReference]
    /// For HTML parts: where `text` holds what the reader is not shown (`HTMLText.hiddenRanges`).
    public var hiddenRanges: [Range<Int>] = []
    public let defects: [Defect]
}

extension Message {
    /// The parts whose bodies are text, in document order.
    public var textParts: [Part] { parts.filter(\.isText) }

    /// Decodes every text part. This is the expensive step; the tokenizer calls it once per message.
    public func decodeText() -> [TextPart] {
        textParts.map(decodeText(of:))
    }

    public func decodeText(of part: Part) -> TextPart {
        var defects: [Defect] = []
        let isHTML = part.contentType.subtype == "html"
        let decodedLimit = isHTML ? max(limits.maxDecodedHTMLBytes, limits.maxDecodedTextBytes) : limits.maxDecodedTextBytes
        // Every transfer and charset encoding turns 4 bytes into at least one UTF-8 byte, so 4 × the decoded limit
        // of input is all that can reach the limit; the rest of a huge body is never copied or decoded.
        let inputLimit = decodedLimit.multipliedReportingOverflow(by: 4)
        let bodyLimit = inputLimit.overflow ? Int.max : inputLimit.partialValue
        if part.bodyRange.count > bodyLimit {
            defects.append(Defect(.textTruncated, at: part.bodyRange.lowerBound + bodyLimit))
        }
        let body = decodedBody(of: part, maxInputBytes: bodyLimit, defects: &defects)
        let decoded = Charsets.decode(body[...], label: part.contentType.charset, maxUTF8Bytes: decodedLimit)
        defects += decoded.defects.map { Defect($0.kind, at: $0.offset ?? part.bodyRange.lowerBound, detail: $0.detail) }
        let mimeType = part.contentType.mimeType
        if let properties = ContentLineText.readableProperties(of: mimeType) {
            return TextPart(partIndex: part.index, mimeType: mimeType,
                            text: ContentLineText.readable(decoded.text, properties: properties),
                            links: [], images: [], defects: defects)
        }
        guard isHTML else {
            return TextPart(partIndex: part.index, mimeType: mimeType, text: Self.withLFLineEndings(decoded.text),
                            links: [], images: [], defects: defects)
        }
        let html = HTMLText(html: decoded.text, maxTextBytes: limits.maxDecodedTextBytes)
        defects += html.defects.map { Defect($0.kind, at: $0.offset ?? part.bodyRange.lowerBound, detail: $0.detail) }
        return TextPart(partIndex: part.index, mimeType: mimeType, text: html.text, links: html.links,
                        images: html.images, hiddenRanges: html.hiddenRanges, defects: defects)
    }

    /// CRLF (and a lone CR, old Mac mail) become LF.
    static func withLFLineEndings(_ text: String) -> String {
        // memchr on the string's own storage: a generic `contains` over the UTF-8 view was 2 % of tokenizing.
        let hasCR = text.utf8.withContiguousStorageIfAvailable { bytes in
            bytes.baseAddress.map { memchr($0, Int32(ByteScanning.cr), bytes.count) != nil } ?? false
        } ?? text.utf8.contains(ByteScanning.cr)
        guard hasCR else { return text }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(text.utf8.count)
        var previousWasCR = false
        for byte in text.utf8 {
            if byte == ByteScanning.cr {
                bytes.append(ByteScanning.lf)
                previousWasCR = true
                continue
            }
            if !(byte == ByteScanning.lf && previousWasCR) { bytes.append(byte) }
            previousWasCR = false
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}
