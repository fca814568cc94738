/// A packet from the MTA, decoded. Strings on the wire are NUL-terminated; they stay bytes here where the
/// message itself is concerned (header fields, body) and become Strings only for envelope values.
public enum MilterCommand: Sendable, Equatable {
    case negotiate(version: UInt32, actions: MilterActions, protocol: MilterProtocolFlags)
    /// Macros the MTA sends ahead of the command `for`.
    case macros(for: UInt8, [String: String])
    case connect(hostname: String)
    case helo(String)
    /// MAIL FROM: the address, then ESMTP arguments.
    case mail([String])
    /// RCPT TO: the address, then ESMTP arguments.
    case recipient([String])
    case data
    case header(name: [UInt8], value: [UInt8])
    case endOfHeaders
    case body([UInt8])
    /// The end of the message, with a last piece of body (Sendmail may send one here; Postfix sends none).
    case endOfMessage(lastBody: [UInt8])
    case abort
    case quit
    case quitNewConnection
    case unknown([UInt8])

    public init(_ packet: MilterPacket) throws(MilterError) {
        guard let code = MilterCommandCode(rawValue: packet.code) else { throw .unknownCommand(packet.code) }
        var reader = NullTerminated(packet.payload)
        switch code {
        case .negotiate:
            guard packet.payload.count >= 12 else { throw .malformed(code, "\(packet.payload.count) bytes, not 12") }
            self = .negotiate(version: MilterWire.number(packet.payload, at: 0),
                              actions: MilterActions(rawValue: MilterWire.number(packet.payload, at: 4)),
                              protocol: MilterProtocolFlags(rawValue: MilterWire.number(packet.payload, at: 8)))
        case .macro:
            guard let stage = packet.payload.first else { throw .malformed(code, "no command byte") }
            reader = NullTerminated(Array(packet.payload.dropFirst()))
            var macros: [String: String] = [:]
            while let name = reader.next() {
                guard let value = reader.next() else { throw .malformed(code, "a name without a value") }
                macros[String(decoding: name, as: UTF8.self)] = String(decoding: value, as: UTF8.self)
            }
            self = .macros(for: stage, macros)
        case .connect:
            // hostname, then family, port and address, which this filter has no use for.
            self = .connect(hostname: String(decoding: reader.next() ?? [], as: UTF8.self))
        case .helo:
            self = .helo(String(decoding: reader.next() ?? [], as: UTF8.self))
        case .mail, .recipient:
            var arguments: [String] = []
            while let argument = reader.next() { arguments.append(String(decoding: argument, as: UTF8.self)) }
            guard !arguments.isEmpty else { throw .malformed(code, "no address") }
            self = code == .mail ? .mail(arguments) : .recipient(arguments)
        case .header:
            guard let name = reader.next(), let value = reader.next() else {
                throw .malformed(code, "not a name and a value")
            }
            self = .header(name: name, value: value)
        case .data: self = .data
        case .endOfHeaders: self = .endOfHeaders
        case .body: self = .body(packet.payload)
        case .endOfMessage: self = .endOfMessage(lastBody: packet.payload)
        case .abort: self = .abort
        case .quit: self = .quit
        case .quitNewConnection: self = .quitNewConnection
        case .unknown: self = .unknown(packet.payload)
        }
    }
}

/// Reads NUL-terminated strings off a byte array; a last string without its NUL still counts.
struct NullTerminated {
    private let bytes: [UInt8]
    private var offset = 0

    init(_ bytes: [UInt8]) {
        self.bytes = bytes
    }

    mutating func next() -> [UInt8]? {
        guard offset < bytes.count else { return nil }
        let end = bytes[offset...].firstIndex(of: 0) ?? bytes.count
        defer { offset = end + 1 }
        return Array(bytes[offset..<end])
    }
}

/// A reply to the MTA.
public enum MilterReply: Sendable, Equatable {
    case negotiate(version: UInt32, actions: MilterActions, protocol: MilterProtocolFlags)
    case `continue`
    case accept
    case tempfail
    case progress
    /// SMFIR_INSHEADER: `index` 0 puts the field above all others.
    case insertHeader(index: UInt32, name: String, value: String)
    /// SMFIR_ADDHEADER: at the end of the header.
    case addHeader(name: String, value: String)
    /// SMFIR_CHGHEADER: the `index`th (from 1) field of that name; an empty value deletes it.
    case changeHeader(index: UInt32, name: String, value: String)
    case quarantine(reason: String)

    /// A header field's value without the one blank the MTA puts after the colon itself (no SMFIP_HDR_LEADSPC).
    /// A value that would be left empty keeps it, since an empty SMFIR_CHGHEADER value deletes the field.
    var withoutLeadingSpace: MilterReply {
        mappingValue { $0.hasPrefix(" ") && $0.count > 1 ? String($0.dropFirst()) : $0 }
    }

    /// A header field's value with one space in front (an empty value, which deletes, stays empty).
    var withLeadingSpace: MilterReply {
        mappingValue { $0.isEmpty || $0.hasPrefix(" ") || $0.hasPrefix("\t") ? $0 : " " + $0 }
    }

    /// The same reply with its header field's value changed; replies without one as they are.
    private func mappingValue(_ transform: (String) -> String) -> MilterReply {
        switch self {
        case .insertHeader(let index, let name, let value):
            .insertHeader(index: index, name: name, value: transform(value))
        case .addHeader(let name, let value): .addHeader(name: name, value: transform(value))
        case .changeHeader(let index, let name, let value):
            .changeHeader(index: index, name: name, value: transform(value))
        default: self
        }
    }

    /// The reply framed for the wire.
    public var packet: MilterPacket {
        switch self {
        case .negotiate(let version, let actions, let flags):
            MilterPacket(code: MilterReplyCode.negotiate.rawValue,
                         payload: MilterWire.bytes(version) + MilterWire.bytes(actions.rawValue)
                            + MilterWire.bytes(flags.rawValue))
        case .continue: MilterPacket(code: MilterReplyCode.continue.rawValue, payload: [])
        case .accept: MilterPacket(code: MilterReplyCode.accept.rawValue, payload: [])
        case .tempfail: MilterPacket(code: MilterReplyCode.tempfail.rawValue, payload: [])
        case .progress: MilterPacket(code: MilterReplyCode.progress.rawValue, payload: [])
        case .insertHeader(let index, let name, let value):
            MilterPacket(code: MilterReplyCode.insertHeader.rawValue,
                         payload: MilterWire.bytes(index) + MilterWire.string(name) + MilterWire.string(value))
        case .addHeader(let name, let value):
            MilterPacket(code: MilterReplyCode.addHeader.rawValue,
                         payload: MilterWire.string(name) + MilterWire.string(value))
        case .changeHeader(let index, let name, let value):
            MilterPacket(code: MilterReplyCode.changeHeader.rawValue,
                         payload: MilterWire.bytes(index) + MilterWire.string(name) + MilterWire.string(value))
        case .quarantine(let reason):
            MilterPacket(code: MilterReplyCode.quarantine.rawValue, payload: MilterWire.string(reason))
        }
    }
}
