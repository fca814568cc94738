import Logging
import MilterClient
import NIOCore
import NIOEmbedded
import Testing

@testable import PitchMilter

/// One connection's pipeline on an embedded channel: when it asks the socket for more.
struct PipelineTests {
    /// Counts the reads the pipeline asks of the socket.
    final class ReadCounter: ChannelOutboundHandler {
        typealias OutboundIn = NIOAny
        var reads = 0
        func read(context: ChannelHandlerContext) {
            reads += 1
            context.read()
        }
    }

    struct Accepter: MilterHandler {
        func decide(_ message: MilterMessage) async -> [MilterReply] { [] }
    }

    @Test func repliesTheMTALeavesUnreadStopTheReading() throws {
        let channel = EmbeddedChannel()
        defer { _ = try? channel.finish() }
        let counter = ReadCounter()
        try channel.pipeline.syncOperations.addHandler(counter)
        try MilterServer.addSessionHandlers(
            to: channel, configuration: MilterServerConfiguration(address: .tcp(host: "127.0.0.1", port: 0)),
            handler: Accepter(), logger: Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() }),
            sessions: SessionRegistry())
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()

        try channel.writeInbound(ByteBuffer(bytes: MilterClient.packet(.negotiate, MilterClient.offer)))
        let reply = try #require(try channel.readOutbound(as: ByteBuffer.self))
        #expect(reply.getInteger(at: 4, as: UInt8.self) == MilterReplyCode.negotiate.rawValue)
        channel.read()
        #expect(counter.reads == 1)

        // The socket's send buffer is full: the MTA is not reading our replies.
        channel.isWritable = false
        channel.pipeline.fireChannelWritabilityChanged()
        channel.read()
        channel.read()
        #expect(counter.reads == 1)

        channel.isWritable = true
        channel.pipeline.fireChannelWritabilityChanged()
        #expect(counter.reads == 2)
    }
}
