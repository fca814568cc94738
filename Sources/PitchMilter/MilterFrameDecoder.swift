import NIOCore

/// Cuts the byte stream into packets: a 4-byte big-endian length, then that many bytes (command byte and data).
///
/// The length is checked the moment it is known, before a byte of the packet is buffered: a peer that announces
/// 4 GiB gets its connection closed, not 4 GiB of memory.
public struct MilterFrameDecoder: ByteToMessageDecoder, Sendable {
    public typealias InboundOut = MilterPacket

    /// The largest packet accepted. The MTA sends body chunks of at most 64 KiB (MILTER_CHUNK_SIZE) and Postfix
    /// limits a header to 100 KiB (header_size_limit); 1 MiB leaves room for any honest peer.
    public static let defaultMaximumPacketBytes = 1 << 20

    public let maximumPacketBytes: Int

    public init(maximumPacketBytes: Int = MilterFrameDecoder.defaultMaximumPacketBytes) {
        self.maximumPacketBytes = maximumPacketBytes
    }

    public mutating func decode(context: ChannelHandlerContext, buffer: inout ByteBuffer) throws -> DecodingState {
        guard let packet = try Self.nextPacket(from: &buffer, maximumPacketBytes: maximumPacketBytes) else {
            return .needMoreData
        }
        context.fireChannelRead(wrapInboundOut(packet))
        return .continue
    }

    public mutating func decodeLast(context: ChannelHandlerContext, buffer: inout ByteBuffer,
                                    seenEOF: Bool) throws -> DecodingState {
        // A packet cut short by the peer closing is dropped: half a command means nothing.
        while try decode(context: context, buffer: &buffer) == .continue {}
        return .needMoreData
    }

    /// The next whole packet in `buffer`, consuming it; nil (consuming nothing) while more bytes are needed.
    static func nextPacket(from buffer: inout ByteBuffer, maximumPacketBytes: Int) throws -> MilterPacket? {
        guard let length = buffer.getInteger(at: buffer.readerIndex, endianness: .big, as: UInt32.self) else {
            return nil
        }
        guard length >= 1 else { throw MilterError.emptyPacket }
        guard length <= maximumPacketBytes else {
            throw MilterError.packetTooLarge(announced: Int(length), limit: maximumPacketBytes)
        }
        guard buffer.readableBytes >= 4 + Int(length) else { return nil }
        buffer.moveReaderIndex(forwardBy: 4)
        let code = buffer.readInteger(as: UInt8.self)!
        let payload = buffer.readBytes(length: Int(length) - 1)!
        return MilterPacket(code: code, payload: payload)
    }
}

/// Everything that can go wrong on a milter connection. Each closes that connection; the MTA then applies its
/// `milter_default_action` to that one message, and every other session carries on. And the one thing that can go
/// wrong before any: the listener cannot be set up, which stops the service.
public enum MilterError: Error, Equatable, CustomStringConvertible {
    case cannotListen(address: String, reason: String)
    case emptyPacket
    case packetTooLarge(announced: Int, limit: Int)
    case unknownCommand(UInt8)
    case malformed(MilterCommandCode, String)
    case unexpected(MilterCommandCode, state: String)
    case versionTooOld(UInt32)

    public var description: String {
        switch self {
        case .cannotListen(let address, let reason): "the milter cannot listen on \(address): \(reason)"
        case .emptyPacket: "a packet of length 0"
        case .packetTooLarge(let announced, let limit): "a packet of \(announced) bytes (the limit is \(limit))"
        case .unknownCommand(let code): "unknown command byte 0x\(String(code, radix: 16))"
        case .malformed(let command, let reason): "malformed \(command) command: \(reason)"
        case .unexpected(let command, let state): "\(command) command while \(state)"
        case .versionTooOld(let version): "the MTA speaks milter protocol version \(version); 2 or later is needed"
        }
    }
}
