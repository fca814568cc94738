import Logging
import NIOCore
import NIOHTTP1
import NIOPosix
import Prometheus
import ServiceLifecycle
import Synchronization

/// `GET /metrics` on a loopback TCP port, in Prometheus's text format: what `ServiceMetrics` counted.
///
/// A scrape endpoint and nothing else: another path gets 404, another method 405, each connection answers one
/// request and closes, a request's head may hold 8 KiB, a connection is closed after 10 s whatever it sends,
/// and more than `maximumConnections` at once are answered 503 (as many again, for a second) or closed: the
/// process's file descriptors are the milter's and the mailboxes' too. Loopback only (`[metrics] listen`): the counters say how much mail came and
/// went, which is no business of the network.
public final class MetricsServer: Service, Sendable {
    public let host: String
    public let port: Int
    let registry: PrometheusCollectorRegistry
    let logger: Logger
    let group: any EventLoopGroup
    private let boundAddress = Mutex<SocketAddress?>(nil)
    private let connections = Mutex(0)
    private let busyConnections = Mutex(0)
    /// A scraper needs one; a few more for a second Prometheus or a person with curl.
    static let maximumConnections = 16

    /// Called once the listener is bound: for READY=1, which waits for it (`SystemdNotifier.Startup`).
    let onListening: (@Sendable () -> Void)?

    public init(host: String, port: Int, registry: PrometheusCollectorRegistry, logger: Logger,
                group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
                onListening: (@Sendable () -> Void)? = nil) {
        self.onListening = onListening
        self.host = host
        self.port = port
        self.registry = registry
        self.logger = logger
        self.group = group
    }

    /// Where the server listens once `run` has bound it (port 0 becomes the port the system chose).
    public var localAddress: SocketAddress? { boundAddress.withLock { $0 } }

    public func run() async throws {
        let shownHost = host.contains(":") ? "[\(host)]" : host
        let channel: any Channel
        do {
            channel = try await bind()
        } catch let error as IOError {
            // NIO's own wording names the system call, not the address or the setting.
            throw ConfigurationError(key: "metrics.listen", "cannot listen on \(shownHost):\(port): "
                + String(cString: strerror(error.errnoCode)))
        }
        boundAddress.withLock { $0 = channel.localAddress }
        logger.info("metrics listening",
                    metadata: ["address": "http://\(shownHost):\(channel.localAddress?.port ?? port)/metrics"])
        onListening?()
        // Cancelled too, not only shut down: when another service fails, the group cancels the rest, and waiting
        // for a graceful shutdown that never comes kept the process alive.
        await withTaskCancellationOrGracefulShutdownHandler {
            try? await channel.closeFuture.get()
        } onCancelOrGracefulShutdown: {
            channel.close(promise: nil)
        }
    }

    private func bind() async throws -> any Channel {
        let registry = self.registry
        return try await ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 16)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { [self] channel in
                guard admit() else {
                    // As many again are told 503, for a second at most; past those, a flood of connections that
                    // send nothing would hold descriptors, and is closed at once.
                    guard admit(busy: true) else { return channel.close() }
                    channel.closeFuture.whenComplete { [self] _ in busyConnections.withLock { $0 -= 1 } }
                    return channel.eventLoop.makeCompletedFuture {
                        channel.eventLoop.scheduleTask(in: .seconds(1)) { channel.close(promise: nil) }
                        try channel.pipeline.syncOperations.addHandler(BusyHandler())
                    }
                }
                channel.closeFuture.whenComplete { [self] _ in connections.withLock { $0 -= 1 } }
                return channel.eventLoop.makeCompletedFuture {
                    // A whole scrape takes milliseconds; a client trickling bytes must not keep its slot.
                    channel.eventLoop.scheduleTask(in: .seconds(10)) { channel.close(promise: nil) }
                    var limits = NIOHTTPDecoderLimitConfiguration()
                    limits.maxHeaderFieldSize = 8_192
                    limits.maxHeaderListSize = 8_192
                    limits.maxHeaderFieldCount = 64
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline(
                        withPipeliningAssistance: false, withErrorHandling: true, withOutboundHeaderValidation: true,
                        withEncoderConfiguration: .init(), withDecoderLimitConfiguration: limits)
                    try channel.pipeline.syncOperations.addHandler(ScrapeHandler(registry: registry))
                }
            }
            .bind(host: host, port: port).get()
    }

    private func admit(busy: Bool = false) -> Bool {
        func take(_ count: inout Int) -> Bool {
            guard count < Self.maximumConnections else { return false }
            count += 1
            return true
        }
        return busy ? busyConnections.withLock { take(&$0) } : connections.withLock { take(&$0) }
    }

    /// Parses `[metrics] listen`: "127.0.0.1:9641", "[::1]:9641" or "localhost:9641".
    public static func address(_ text: String,
                               key: String) throws(ConfigurationError) -> Configuration.MetricsAddress {
        guard let (host, port) = LoopbackAddress.split(text) else {
            throw ConfigurationError(key: key, "must be HOST:PORT on loopback, such as \"127.0.0.1:9641\"; "
                + "found \"\(text)\"")
        }
        let checked = try LoopbackAddress.check(host: host, port: port, key: key,
                                                because: "the counters are nobody else's business")
        return Configuration.MetricsAddress(host: checked.host, port: checked.port)
    }
}

/// A TCP listener's host and port, checked to be loopback: what the milter and the metrics accept.
enum LoopbackAddress {
    /// "HOST:PORT" at the port's colon; nil without one. A bracketed IPv6 host's own colons are not the port's
    /// ("[::]" was cut to the host "[:"; found by an audit).
    static func split(_ text: String) -> (host: String, port: String)? {
        let colon = text.hasPrefix("[")
            ? text.firstIndex(of: "]").flatMap { close in
                text[close...].dropFirst().first == ":" ? text.index(after: close) : nil
            }
            : text.lastIndex(of: ":")
        return colon.map { (String(text[..<$0]), String(text[text.index(after: $0)...])) }
    }

    /// "[::1]" taken as "::1" and "localhost" as "127.0.0.1"; `because` says why anything else is refused.
    static func check(host: String, port: String, key: String,
                      because reason: String) throws(ConfigurationError) -> (host: String, port: Int) {
        var host = host
        if host.hasPrefix("["), host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        guard ["127.0.0.1", "::1", "localhost"].contains(host) else {
            throw ConfigurationError(key: key, "must listen on loopback (127.0.0.1 or ::1), found \"\(host)\": "
                + reason)
        }
        // Port 0 would listen wherever the kernel chose, and no client would know where.
        guard let number = Int(port), (1...65_535).contains(number) else {
            throw ConfigurationError(key: key, "\"\(port)\" is not a port number (1 to 65535)")
        }
        return (host == "localhost" ? "127.0.0.1" : host, number)
    }
}

/// One request per connection: the metrics for GET /metrics, an error status for anything else.
private final class ScrapeHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    let registry: PrometheusCollectorRegistry
    private var status: HTTPResponseStatus?

    init(registry: PrometheusCollectorRegistry) {
        self.registry = registry
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            let path = head.uri.split(separator: "?", maxSplits: 1).first.map(String.init) ?? head.uri
            if path != "/metrics" {
                status = .notFound
            } else if head.method != .GET {
                status = .methodNotAllowed
            } else {
                status = .ok
            }
        case .body:
            break  // a scrape has none; whatever came is read and dropped
        case .end:
            respond(context: context)
        }
    }

    /// A request NIO could not parse: its error handler has answered 400 (Connection: close); this closes.
    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }

    private func respond(context: ChannelHandlerContext) {
        let status = self.status ?? .badRequest
        let body = status == .ok
            ? MetricsHelp.inserted(into: registry.emitToBuffer())
            : Array("\(status.code) \(status.reasonPhrase)\n".utf8)
        var headers = HTTPHeaders()
        // Prometheus's text exposition format, version 0.0.4.
        headers.add(name: "Content-Type",
                    value: status == .ok ? "text/plain; version=0.0.4; charset=utf-8" : "text/plain; charset=utf-8")
        headers.add(name: "Content-Length", value: String(body.count))
        headers.add(name: "Connection", value: "close")
        if status == .methodNotAllowed { headers.add(name: "Allow", value: "GET") }
        context.write(wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: status, headers: headers))),
                      promise: nil)
        context.write(wrapOutboundOut(.body(.byteBuffer(context.channel.allocator.buffer(bytes: body)))),
                      promise: nil)
        let channel = context.channel
        context.writeAndFlush(wrapOutboundOut(.end(nil))).whenComplete { _ in channel.close(promise: nil) }
    }
}

/// A connection past `MetricsServer.maximumConnections`: 503 once its request has come (closed with the request
/// unread, the scraper would see its connection reset, not why), and closed. Nothing of it is parsed.
private final class BusyHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer
    private var answered = false

    static let response = Array(("HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain; charset=utf-8\r\n"
        + "Content-Length: 24\r\nRetry-After: 1\r\nConnection: close\r\n\r\n503 Service Unavailable\n").utf8)

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !answered else { return }
        answered = true
        let channel = context.channel
        context.writeAndFlush(wrapOutboundOut(channel.allocator.buffer(bytes: Self.response))).whenComplete { _ in
            channel.close(promise: nil)
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }
}

/// What each series means, as the `# HELP` line a Prometheus UI shows beside it. The registry writes help text only
/// for metrics made through its own API with some, and the swift-metrics factory the service counts through gives
/// none: a metric registered with help beforehand and then made again through the factory traps on the mismatch.
/// So the lines are put in as the text goes out, above each series' `# TYPE` line.
enum MetricsHelp {
    static let texts: [String: String] = [
        "pitchfilter_messages_total": "Messages classified, by where (maildir, milter) and verdict.",
        "pitchfilter_classification_seconds": "Time to classify one message, by where.",
        "pitchfilter_messages_unclassified_total":
            "Messages passed on untouched without a verdict: too large, or a failure the log names.",
        "pitchfilter_quarantined_total": "Pitches moved to a quarantine folder or held in the MTA's queue.",
        "pitchfilter_learned_from_moves_total": "Messages learned from the user's moves, by class.",
        "pitchfilter_outbound_messages_total": "Outbound messages seen by the milter, whose recipients become contacts.",
        "pitchfilter_milter_sessions": "Milter sessions open now.",
        "pitchfilter_milter_sessions_refused_total": "Milter connections closed at once, at max_sessions.",
    ]

    /// The exposition text with a `# HELP` line above each `# TYPE` line of a series in `texts`.
    static func inserted(into exposition: [UInt8], texts: [String: String] = texts) -> [UInt8] {
        let typePrefix = Array("# TYPE ".utf8)
        var out: [UInt8] = []
        out.reserveCapacity(exposition.count + texts.count * 80)
        for line in exposition.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false) {
            if line.starts(with: typePrefix) {
                let name = line.dropFirst(typePrefix.count).prefix { $0 != UInt8(ascii: " ") }
                if let help = texts[String(decoding: name, as: UTF8.self)] {
                    out += Array("# HELP ".utf8) + name + Array(" \(help)\n".utf8)
                }
            }
            out += line
            out.append(UInt8(ascii: "\n"))
        }
        // The split's last piece follows the text's final line feed: it got one it did not have.
        out.removeLast()
        return out
    }
}
