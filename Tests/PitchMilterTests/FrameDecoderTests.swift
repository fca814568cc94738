import NIOCore
import NIOEmbedded
import NIOTestUtils
import Testing

@testable import PitchMilter

@Suite struct FrameDecoderTests {
    static func frame(_ code: UInt8, _ payload: [UInt8]) -> [UInt8] {
        MilterWire.bytes(UInt32(payload.count + 1)) + [code] + payload
    }

    @Test func packetsAreCutTheSameWhateverTheByteBoundaries() throws {
        // The verifier feeds each input whole, byte by byte, and in other splits, and checks the same packets
        // come out every time.
        let negotiate = MilterPacket(code: 0x4F, payload: MilterWire.bytes(6) + MilterWire.bytes(0x1FF)
            + MilterWire.bytes(0x1FFFFF))
        let header = MilterPacket(code: 0x4C, payload: Array("Subject\0 Hello\0".utf8))
        let empty = MilterPacket(code: 0x4E, payload: [])
        let body = MilterPacket(code: 0x42, payload: Array(repeating: 0x61, count: 3_000))
        var twoAtOnce = ByteBuffer(bytes: Self.frame(header.code, header.payload) + Self.frame(empty.code, []))
        try ByteToMessageDecoderVerifier.verifyDecoder(
            inputOutputPairs: [
                (ByteBuffer(bytes: Self.frame(negotiate.code, negotiate.payload)), [negotiate]),
                (twoAtOnce, [header, empty]),
                (ByteBuffer(bytes: Self.frame(body.code, body.payload)), [body]),
            ],
            decoderFactory: { MilterFrameDecoder() })
        twoAtOnce.clear()
    }

    @Test func anOversizeLengthIsRefusedBeforeItsBytesArrive() throws {
        let channel = EmbeddedChannel(handler: ByteToMessageHandler(MilterFrameDecoder(maximumPacketBytes: 1024)))
        // Only the length: 2 GiB announced.
        #expect(throws: MilterError.packetTooLarge(announced: 0x8000_0000, limit: 1024)) {
            try channel.writeInbound(ByteBuffer(bytes: [0x80, 0, 0, 0]))
        }
    }

    @Test func aZeroLengthIsRefused() throws {
        let channel = EmbeddedChannel(handler: ByteToMessageHandler(MilterFrameDecoder()))
        #expect(throws: MilterError.emptyPacket) { try channel.writeInbound(ByteBuffer(bytes: [0, 0, 0, 0])) }
    }

    @Test func aPacketCutShortByTheEndOfTheStreamIsDropped() throws {
        let channel = EmbeddedChannel(handler: ByteToMessageHandler(MilterFrameDecoder()))
        try channel.writeInbound(ByteBuffer(bytes: Self.frame(0x4E, []) + [0, 0, 0, 9, 0x4C, 0x41]))
        #expect(try channel.readInbound(as: MilterPacket.self) == MilterPacket(code: 0x4E, payload: []))
        _ = try? channel.finish()  // reports the half packet as left over
        #expect(try channel.readInbound(as: MilterPacket.self) == nil)
    }

    @Test func repliesAreFramedAsTheProtocolSays() throws {
        let channel = EmbeddedChannel(handler: MessageToByteHandler(MilterPacketEncoder()))
        try channel.writeOutbound(MilterReply.insertHeader(index: 0, name: "X-Pitch-Status", value: "ham").packet)
        let written = try #require(try channel.readOutbound(as: ByteBuffer.self))
        #expect(Array(written.readableBytesView) == [0, 0, 0, 24, UInt8(ascii: "i"), 0, 0, 0, 0]
            + Array("X-Pitch-Status\0ham\0".utf8))
    }
}

@Suite struct CommandTests {
    @Test(arguments: [
        (MilterPacket(code: 0x4F, payload: [0, 0, 0, 6, 0, 0, 1, 0xFF, 0, 0x1F, 0xFF, 0xFF]),
         MilterCommand.negotiate(version: 6, actions: MilterActions(rawValue: 0x1FF),
                                 protocol: MilterProtocolFlags(rawValue: 0x1FFFFF))),
        (MilterPacket(code: 0x44, payload: Array("Mi\0ABC123\0{auth_authen}\0alice\0".utf8)),
         .macros(for: 0x4D, ["i": "ABC123", "{auth_authen}": "alice"])),
        (MilterPacket(code: 0x4D, payload: Array("<a@example.org>\0SIZE=100\0".utf8)),
         .mail(["<a@example.org>", "SIZE=100"])),
        (MilterPacket(code: 0x52, payload: Array("<b@example.org>\0".utf8)), .recipient(["<b@example.org>"])),
        (MilterPacket(code: 0x4C, payload: Array("Subject\0 Hi\n\tthere\0".utf8)),
         .header(name: Array("Subject".utf8), value: Array(" Hi\n\tthere".utf8))),
        (MilterPacket(code: 0x42, payload: [1, 2, 0, 3]), .body([1, 2, 0, 3])),
        (MilterPacket(code: 0x45, payload: []), .endOfMessage(lastBody: [])),
        (MilterPacket(code: 0x41, payload: []), .abort),
        (MilterPacket(code: 0x51, payload: []), .quit),
    ])
    func packetsDecodeToCommands(packet: MilterPacket, command: MilterCommand) throws {
        #expect(try MilterCommand(packet) == command)
    }

    @Test(arguments: [
        (MilterPacket(code: 0x4F, payload: [0, 0, 0, 6]), MilterError.malformed(.negotiate, "4 bytes, not 12")),
        (MilterPacket(code: 0x4C, payload: Array("Subject".utf8)), .malformed(.header, "not a name and a value")),
        (MilterPacket(code: 0x4D, payload: []), .malformed(.mail, "no address")),
        (MilterPacket(code: 0x44, payload: []), .malformed(.macro, "no command byte")),
        (MilterPacket(code: 0x44, payload: Array("Mi\0".utf8)), .malformed(.macro, "a name without a value")),
        (MilterPacket(code: 0x7A, payload: []), .unknownCommand(0x7A)),
    ])
    func malformedPacketsAreErrors(packet: MilterPacket, error: MilterError) {
        #expect(throws: error) { try MilterCommand(packet) }
    }
}
