/// The header fields of one entity (the message or a MIME part), as ranges into the raw message.
/// Values are decoded only when asked for.
public struct Header: Sendable {
    /// The raw message the ranges point into (shared storage, never copied).
    public let raw: [UInt8]
    /// The fields in order of appearance, as far as `Limits` allowed recording them.
    public let fields: ArraySlice<HeaderField>
    let limits: Limits

    init(raw: [UInt8], fields: ArraySlice<HeaderField>, limits: Limits) {
        self.raw = raw
        self.fields = fields
        self.limits = limits
    }

    public var count: Int { fields.count }

    /// The field's name as written (ASCII by construction).
    public func name(of field: HeaderField) -> String {
        String(decoding: raw[field.nameRange], as: UTF8.self)
    }

    /// Whether the field's name is `name`, ignoring ASCII case.
    public func field(_ field: HeaderField, isNamed name: String) -> Bool {
        // Most names differ in length, which a native String knows without a scan: the byte loop below was 1 % of
        // training (callgrind) until this check came first.
        guard field.nameRange.count == name.utf8.count else { return false }
        var wanted = name.utf8.makeIterator()
        for offset in field.nameRange {
            guard let byte = wanted.next(),
                  ByteScanning.asciiLowercase(raw[offset]) == ByteScanning.asciiLowercase(byte)
            else { return false }
        }
        return wanted.next() == nil
    }

    /// Every field with this name, in order (RFC 5322 allows several Received, Comments, …).
    public func fields(named name: String) -> [HeaderField] {
        fields.filter { field($0, isNamed: name) }
    }

    public func first(named name: String) -> HeaderField? {
        fields.first { field($0, isNamed: name) }
    }

    /// The value with folding removed (RFC 5322 §2.2.3: a line break followed by white space is just the
    /// white space) and surrounding white space trimmed, cut at `Limits.maxFieldValueBytes`.
    public func unfoldedValue(of field: HeaderField) -> ArraySlice<UInt8> {
        var start = field.valueRange.lowerBound
        var end = field.valueRange.upperBound
        while start < end, Self.isFoldingWhitespace(raw[start]) { start += 1 }
        while end > start, Self.isFoldingWhitespace(raw[end - 1]) { end -= 1 }
        let slice = raw[start..<end]
        if !slice.contains(ByteScanning.lf) && !slice.contains(ByteScanning.cr) && slice.count <= limits.maxFieldValueBytes {
            return slice
        }
        var value: [UInt8] = []
        value.reserveCapacity(min(slice.count, limits.maxFieldValueBytes))
        for byte in slice where byte != ByteScanning.lf && byte != ByteScanning.cr {
            guard value.count < limits.maxFieldValueBytes else { break }
            value.append(byte)
        }
        return value[...]
    }

    private static func isFoldingWhitespace(_ byte: UInt8) -> Bool {
        byte == ByteScanning.space || byte == ByteScanning.tab || byte == ByteScanning.lf || byte == ByteScanning.cr
    }

    /// The value for people and the tokenizer: unfolded, RFC 2047 encoded words decoded, raw 8-bit bytes
    /// read as UTF-8 or windows-1252.
    public func text(of field: HeaderField, defects: inout [Defect]) -> String {
        var found: [Defect] = []
        let text = EncodedWords.decode(unfoldedValue(of: field), maxUTF8Bytes: limits.maxFieldValueBytes, defects: &found)
        defects += found.map { Defect($0.kind, at: field.range.lowerBound, detail: $0.detail) }
        return text
    }

    /// The decoded value of the first field with this name.
    public subscript(name: String) -> String? {
        var ignored: [Defect] = []
        return first(named: name).map { text(of: $0, defects: &ignored) }
    }

    /// The addresses of every field with this name (From, To, Cc, Reply-To, Sender, …), parsed leniently.
    public func addresses(_ name: String, defects: inout [Defect]) -> [MailAddress] {
        var result: [MailAddress] = []
        for field in fields(named: name) {
            var found: [Defect] = []
            result += AddressList.parse(unfoldedValue(of: field), defects: &found)
            defects += found.map { Defect($0.kind, at: field.range.lowerBound, detail: $0.detail) }
        }
        return result
    }

    public func addresses(_ name: String) -> [MailAddress] {
        var ignored: [Defect] = []
        return addresses(name, defects: &ignored)
    }
}
