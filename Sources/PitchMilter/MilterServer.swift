import CLinuxCalls
import CoreMetrics
import Logging
import NIOCore
import NIOPosix
import ServiceLifecycle
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// What the filter does with a complete message. Everything about classification lives behind this protocol.
public protocol MilterHandler: Sendable {
    /// The changes to make before the message is accepted (header fields, quarantine); [] for none. Must not
    /// fail: on any internal trouble, return [] and the message goes on untouched.
    func decide(_ message: MilterMessage) async -> [MilterReply]
    /// Called once when the server has stopped and its sessions are closed: the place to write what the
    /// handler keeps in memory. Nothing by default.
    func finish() async
    /// Whether a header field of this name (lower-cased) must be known even in a message that is not kept (over
    /// `maximumMessageBytes` or the sessions' budget): the handler's own fields, whose forged copies it removes
    /// from every message. Every name by default.
    func needsFieldName(_ lowercasedName: String) -> Bool
}

extension MilterHandler {
    public func finish() async {}
    public func needsFieldName(_ lowercasedName: String) -> Bool { true }
}

public struct MilterServerConfiguration: Sendable {
    public enum Address: Sendable, Equatable, CustomStringConvertible {
        /// A unix socket, created with `mode` (0660: the MTA's group may connect, nobody else).
        case unix(path: String, mode: UInt32)
        /// TCP; the caller makes sure it is loopback.
        case tcp(host: String, port: Int)

        public var description: String {
            switch self {
            case .unix(let path, _): "unix:\(path)"
            // An IPv6 host in brackets, as Postfix writes it: "inet:::1:8891" read as nothing anyone writes.
            case .tcp(let host, let port): host.contains(":") ? "inet:[\(host)]:\(port)" : "inet:\(host):\(port)"
            }
        }
    }

    public var address: Address
    /// Called once the listener is bound: from then on the MTA can connect (READY=1 waits for it).
    public var onListening: (@Sendable () -> Void)?
    /// The clock the once-a-minute reports count on; the tests stop it, their sessions can be a minute apart on a
    /// loaded machine.
    var reportClock: @Sendable () -> NIODeadline = { .now() }
    /// Sessions at once; a connection beyond this is closed at once and the MTA applies its
    /// `milter_default_action` (accept, in the recommended configuration) to that message, unless a session has
    /// been silent between messages for `evictableAfter`: that one is closed to make room.
    public var maximumSessions = 256
    /// How long a session must have been silent between messages before a new connection may take its place when
    /// all are taken. Any local user can connect to a loopback port: 256 connections that negotiated and then said
    /// nothing held every session for the whole `idleTimeout`, and all mail went by unfiltered (found by an
    /// audit). An MTA's session between messages waits for its SMTP client; closed, its next message gets the
    /// MTA's default action, as a refused connection's would. Macros alone are no sign of life (found in review:
    /// a macro every 20 s kept a session from being taken).
    public var evictableAfter = TimeAmount.seconds(30)
    /// The same for a session in a message, when none between messages can be taken: the MTA is silent while its
    /// client sends DATA, so only a silence far longer than a slow client's (found in review: a MAIL and nothing
    /// more held a session for good).
    public var evictableInMessageAfter = TimeAmount.seconds(600)
    /// A session silent for this long is closed. The MTA is silent while its SMTP client sends DATA, which a large
    /// message on a slow line can make last many minutes, and a closed session gets the MTA's default action:
    /// untagged, or deferred. So libmilter's own default; idle sessions cost little, and `maximumSessions` caps them.
    public var idleTimeout = TimeAmount.seconds(7_210)
    /// A connection that has not negotiated options by then is closed. An MTA negotiates the moment it connects
    /// (Postfix gives up on a milter after its own `milter_connect_timeout`, 30 s); a connection that stays silent
    /// from the start only holds one of `maximumSessions`, and 256 of them kept all mail out.
    public var negotiationTimeout = TimeAmount.seconds(30)
    /// Bytes kept of one message; beyond this the message is accepted untouched.
    public var maximumMessageBytes = 32 << 20
    /// Bytes kept of all sessions' messages together, from their first header field until they are decided; a
    /// message that would take the sum past this is let go and accepted untouched. `maximumMessageBytes` alone
    /// bounded the whole only by sessions × message: 60 sessions sending 20 MB each took the service to 1.8 GB.
    /// (Over by at most one packet per session, a packet being counted before it is kept, and by the names of the
    /// handler's own fields in messages that are not kept: `MilterHandler.needsFieldName`.)
    public var maximumBufferedBytes = 512 << 20
    public var maximumPacketBytes = MilterFrameDecoder.defaultMaximumPacketBytes
    /// How long a graceful shutdown waits for sessions in the middle of a message.
    public var shutdownGrace = TimeAmount.seconds(10)

    public init(address: Address) {
        self.address = address
    }
}

/// The milter server: a SwiftNIO listener, one `MilterSession` per connection, the handler at end of message.
public final class MilterServer: Service, Sendable {
    let configuration: MilterServerConfiguration
    let handler: any MilterHandler
    let logger: Logger
    let group: any EventLoopGroup
    let sessions: SessionRegistry
    private let boundAddress = Mutex<SocketAddress?>(nil)
    /// The unix socket file this server made (device and inode), which it alone removes when it stops.
    private let socketFile = Mutex<FileIdentity?>(nil)

    public init(configuration: MilterServerConfiguration, handler: any MilterHandler, logger: Logger,
                group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton) {
        self.configuration = configuration
        self.handler = handler
        self.logger = logger
        self.group = group
        sessions = SessionRegistry(maximumBufferedBytes: configuration.maximumBufferedBytes,
                                   reportClock: configuration.reportClock)
    }

    /// Said of a unix socket whose mode lets others write to it, which is all connecting takes: the protocol has
    /// no authentication, so every local user could hand it mail and read what it says (found by an audit: such a
    /// mode passed without a word). A warning, not a refusal, so that an upgrade does not stop a running setup.
    public static func worldConnectable(_ mode: UInt32) -> String {
        "socket_mode " + String(mode, radix: 8).leftPadded(to: 4) + " lets every local user connect to the milter; "
            + "0660, with the MTA's user in the service's group, is enough"
    }

    /// Where the server listens once `run` has bound it (port 0 becomes the port the system chose).
    public var localAddress: SocketAddress? { boundAddress.withLock { $0 } }

    public func run() async throws {
        let channel = try await bind()
        boundAddress.withLock { $0 = channel.localAddress }
        logger.info("milter listening", metadata: ["address": "\(configuration.address)"])
        configuration.onListening?()
        if case .unix(_, let mode) = configuration.address, mode & 0o002 != 0 {
            logger.warning("\(MilterServer.worldConnectable(mode))")
        }
        // Cancelled too: when another service fails, the group cancels the rest, and only waiting for a graceful
        // shutdown kept the process alive.
        await withTaskCancellationOrGracefulShutdownHandler {
            try? await channel.closeFuture.get()
        } onCancelOrGracefulShutdown: {
            // Stop taking connections; sessions in the middle of a message finish it.
            channel.close(promise: nil)
        }
        let cut = await sessions.closeWhenIdle(grace: configuration.shutdownGrace)
        if cut > 0 {
            // Not lost: the MTA decides them as when the filter is down (found by an audit: nothing was said).
            logger.warning("""
                milter cut \(cut) \(cut == 1 ? "session" : "sessions") short as it stopped, in the middle of a \
                message: the MTA's milter_default_action decides \(cut == 1 ? "it" : "them") (Postfix's tempfail \
                defers the mail, and its client sends it again)
                """)
        }
        reportUnreported()
        // Only the socket this server made: another instance started since (by hand, say) may have the path now.
        if case .unix(let path, _) = configuration.address, let made = socketFile.withLock({ $0 }),
           FileIdentity(of: path) == made {
            unlink(path)
        }
        await handler.finish()
        logger.info("milter stopped")
    }

    /// The once-a-minute counts not yet said, said as the server stops (found in review: they were dropped, and a
    /// flood's last minute went unsaid).
    private func reportUnreported() {
        let unreported = sessions.takeUnreported()
        func times(_ count: Int, _ one: String, _ many: String) -> String { "\(count) \(count == 1 ? one : many)" }
        if unreported.refused > 0 {
            logger.warning("""
                milter sessions refused since the last report: \(times(unreported.refused, "connection", "connections")) \
                found \(configuration.maximumSessions) already open
                """)
        }
        if unreported.acceptFailed > 0 {
            logger.warning("""
                milter could not accept connections since the last report: \
                \(times(unreported.acceptFailed, "failure", "failures"))
                """)
        }
        if unreported.evicted > 0 {
            logger.notice("""
                milter sessions full since the last report: \(times(unreported.evicted, "session", "sessions")) \
                silent longest closed for new connections
                """)
        }
        if unreported.failed > 0 {
            logger.warning("""
                milter sessions closed for errors since the last report: \(unreported.failed) (each logged at debug \
                level)
                """)
        }
    }

    /// Ends the graceful shutdown's wait for sessions in the middle of a message now, not when its grace is over:
    /// a second SIGTERM or SIGINT, from an admin who will not wait.
    public func cutSessionsShort() {
        sessions.cutShort()
    }

    private func bind() async throws -> any Channel {
        let configuration = self.configuration
        let handler = self.handler
        let logger = self.logger
        let sessions = self.sessions
        let bootstrap = ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 256)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .serverChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(AcceptPause { error in
                        if let failed = sessions.acceptFailureToReport() {
                            logger.warning("""
                                milter cannot accept connections: \(error.description); trying again each second \
                                (raise the service's file descriptor limit, LimitNOFILE, above max_sessions)
                                """, metadata: ["failed": "\(failed)", "sessions": "\(sessions.count)"])
                        }
                    })
                }
            }
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    let admission = sessions.admit(channel, limit: configuration.maximumSessions,
                                                   evictableAfter: configuration.evictableAfter,
                                                   inMessageAfter: configuration.evictableInMessageAfter)
                    if case .admittedClosing(let silent, let heard, let seconds) = admission {
                        // On its own event loop, where its commands are read: one that spoke meanwhile (a MAIL
                        // just come) is kept, and the new session is one over the bound for a while (found in
                        // review: closed from here, a session that had just begun a message lost it).
                        silent.eventLoop.execute {
                            guard sessions.confirmEviction(of: silent, heardAt: heard) else { return }
                            silent.close(promise: nil)
                            if let closed = sessions.evictionToReport() {
                                logger.notice("""
                                    milter sessions full: closed the one silent longest (\(seconds) s) for a new \
                                    connection
                                    """, metadata: ["closed": "\(closed)"])
                            }
                        }
                    }
                    guard admission.admitted else {
                        // Once a minute at most, with how many were refused: a flood of connections would
                        // otherwise write a log line each.
                        if let refused = sessions.refusalToReport() {
                            logger.warning("milter sessions refused: \(configuration.maximumSessions) already open",
                                           metadata: ["refused": "\(refused)"])
                        }
                        channel.close(promise: nil)
                        return
                    }
                    channel.closeFuture.whenComplete { _ in sessions.remove(channel) }
                    try Self.addSessionHandlers(to: channel, configuration: configuration, handler: handler,
                                                logger: logger, sessions: sessions)
                }
            }
        func cannotListen(_ reason: String) -> MilterError {
            .cannotListen(address: configuration.address.description, reason: reason)
        }
        do {
            switch configuration.address {
            case .tcp(let host, let port):
                return try await bootstrap.bind(host: host, port: port).get()
            case .unix(let path, let mode):
                var info = stat()
                if lstat(path, &info) == 0 {
                    // Something else than a socket is no stale socket: named, and left alone (bind said only
                    // "Address already in use"; found by an audit).
                    guard info.st_mode & S_IFMT == S_IFSOCK else {
                        throw cannotListen("something other than a socket is there (\(Self.kind(of: info.st_mode))): "
                            + "remove it, or listen elsewhere")
                    }
                    // Another user's socket is theirs, stale or not: root removed one a local user had put in a
                    // sticky directory (found by an audit).
                    guard info.st_uid == geteuid() else {
                        throw cannotListen("a socket of another user (uid \(info.st_uid)) is there: remove it if it "
                            + "is stale, or listen elsewhere")
                    }
                    // A socket left by a previous run (killed before it could remove it) would make bind fail; one
                    // another process still listens on is that process's, and the MTA's way to it (found in
                    // review: a second `serve` took the running service's socket, then removed it as it stopped).
                    if let taken = Self.whyTaken(path) { throw cannotListen(taken) }
                    unlink(path)
                }
                // Made here, not by NIO: NIO removes the path of a unix socket it made when it closes it, whatever
                // socket is at the path by then.
                let descriptor = try Self.listeningUnixSocket(at: path, mode: mode_t(mode), backlog: 256)
                let made = FileIdentity(of: path)
                socketFile.withLock { $0 = made }
                do {
                    let channel = try await bootstrap.withBoundSocket(descriptor).get()
                    // NIO listens again with its default backlog (128) as it takes the socket over: ours again.
                    listen(descriptor, 256)
                    return channel
                } catch {
                    if FileIdentity(of: path) == made { unlink(path) }
                    throw error
                }
            }
        } catch let error as MilterError {
            throw error
        } catch let error as IOError {
            // NIO's own wording names the system call, not the address or the setting.
            throw cannotListen(String(cString: strerror(error.errnoCode)))
        } catch {
            throw cannotListen("\(error)")
        }
    }

    /// Why the unix socket at `path` is not a stale one to replace, or nil when it is: only a refused connection
    /// says nobody listens. Taken (a listener whose backlog is full answers EAGAIN at once: the probe does not
    /// block), or not ours to judge (a socket we may not connect to is another user's: found in review, a `serve`
    /// run as another user replaced root's).
    static func whyTaken(_ path: String) -> String? {
        guard var address = unixAddress(path) else { return nil }
        let descriptor = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue)
            | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard descriptor >= 0 else { return "cannot check the socket there: \(String(cString: strerror(errno)))" }
        defer { close(descriptor) }
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(descriptor, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) == 0
            }
        }
        if connected || errno == EAGAIN { return "another process is listening there" }
        if errno == ECONNREFUSED || errno == ENOENT { return nil }
        let reason = String(cString: strerror(errno))
        return "a socket is there that cannot be checked (\(reason)): remove it if it is stale"
    }

    /// Whether a listener is at `path` (`whyTaken`, for tests).
    static func someoneListens(on path: String) -> Bool { whyTaken(path) != nil }

    /// What a file of `mode` is, for a message.
    private static func kind(of mode: mode_t) -> String {
        switch mode & S_IFMT {
        case S_IFREG: "a regular file"
        case S_IFDIR: "a directory"
        case S_IFLNK: "a symbolic link"
        case S_IFIFO: "a FIFO"
        default: "a device or other special file"
        }
    }

    /// A unix stream socket bound to `path` with `mode`, and listening, non-blocking, for NIO to take over.
    ///
    /// The mode is set before the socket listens, so nobody connects while it has the umask's; and on the file
    /// bound, not on whatever the path names a moment later: opened without following a link, checked to be a
    /// socket of ours, and changed through that descriptor. A chmod by path followed a link that a user who may
    /// write the directory put in the socket's place after bind, and a service run as root gave the link's target
    /// the socket's mode (found by an audit).
    static func listeningUnixSocket(at path: String, mode: mode_t, backlog: Int32) throws(MilterError) -> Int32 {
        let address = "unix:\(path)"
        guard var socketAddress = unixAddress(path) else {
            throw .cannotListen(address: address, reason: "the path is longer than a unix socket's 107 bytes")
        }
        let descriptor = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue)
            | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard descriptor >= 0 else { throw .cannotListen(address: address, reason: String(cString: strerror(errno))) }
        let bound = withUnsafePointer(to: &socketAddress) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                Glibc.bind(descriptor, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) == 0
            }
        }
        guard bound else {
            let reason = String(cString: strerror(errno))
            close(descriptor)
            throw .cannotListen(address: address, reason: reason)
        }
        if let problem = setMode(mode, ofSocketAt: path) {
            close(descriptor)
            throw .cannotListen(address: address, reason: problem)
        }
        guard listen(descriptor, backlog) == 0 else {
            let reason = String(cString: strerror(errno))
            unlink(path)
            close(descriptor)
            throw .cannotListen(address: address, reason: reason)
        }
        return descriptor
    }

    /// Gives the socket this process just bound at `path` its mode (`listeningUnixSocket`); why not, if it cannot.
    private static func setMode(_ mode: mode_t, ofSocketAt path: String) -> String? {
        let file = pitchfilter_open_path_nofollow(path)
        guard file >= 0 else { return "cannot open the socket just made: \(String(cString: strerror(errno)))" }
        defer { close(file) }
        var info = stat()
        // One link only: where hard links to others' files are allowed (fs.protected_hardlinks=0), another socket
        // of this user linked into the path would pass the other checks (found in review).
        guard fstat(file, &info) == 0, info.st_mode & S_IFMT == S_IFSOCK, info.st_uid == geteuid(),
              info.st_nlink == 1 else {
            // Not ours: taken away and replaced between bind and here. Left to whoever put it there.
            return "the socket just made was replaced by something else at its path before its mode was set"
        }
        // chmod through /proc's link to the descriptor acts on the file opened, never on a link: fchmod on an
        // O_PATH descriptor is refused, and fchmodat's AT_SYMLINK_NOFOLLOW goes the same way inside glibc.
        guard chmod("/proc/self/fd/\(file)", mode) == 0 else {
            // The socket stays (unlinking by path could remove another's file now); the next start replaces it.
            let octal = String(mode, radix: 8)
            return "cannot set the socket's mode 0\(octal) through /proc/self/fd (is /proc mounted?): "
                + String(cString: strerror(errno))
        }
        return nil
    }

    /// `path` as a unix socket address; nil when it is too long for one.
    private static func unixAddress(_ path: String) -> sockaddr_un? {
        var address = sockaddr_un()
        let bytes = Array(path.utf8)
        guard bytes.count < MemoryLayout.size(ofValue: address.sun_path) else { return nil }
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { $0.copyBytes(from: bytes + [0]) }
        return address
    }
}

/// A file as the file system knows it, whatever its name: its device and inode.
struct FileIdentity: Equatable, Sendable {
    let device: UInt64
    let inode: UInt64

    init?(of path: String) {
        var info = stat()
        guard lstat(path, &info) == 0 else { return nil }
        device = UInt64(info.st_dev)
        inode = UInt64(info.st_ino)
    }
}

extension MilterServer {
    /// One connection's pipeline: bytes to commands to the session, its replies back to bytes.
    static func addSessionHandlers(to channel: any Channel, configuration: MilterServerConfiguration,
                                   handler: any MilterHandler, logger: Logger, sessions: SessionRegistry) throws {
        try channel.pipeline.syncOperations.addHandlers([
            // Replies the MTA does not read stop our reading: without it, a client sending 40 MB of HELO commands
            // and reading none of the answers grew the service to 479 MB (24 MB with it).
            BackPressureHandler(),
            IdleStateHandler(readTimeout: configuration.idleTimeout),
            ByteToMessageHandler(MilterFrameDecoder(maximumPacketBytes: configuration.maximumPacketBytes)),
            MessageToByteHandler(MilterPacketEncoder()),
            MilterChannelHandler(
                session: MilterSession(maximumMessageBytes: configuration.maximumMessageBytes,
                                       needsFieldName: { handler.needsFieldName($0) }),
                handler: handler, logger: logger, sessions: sessions,
                negotiationTimeout: configuration.negotiationTimeout),
        ])
    }
}

/// Frames replies for the wire.
struct MilterPacketEncoder: MessageToByteEncoder {
    typealias OutboundIn = MilterPacket

    func encode(data: MilterPacket, out: inout ByteBuffer) {
        out.writeInteger(UInt32(data.payload.count + 1), endianness: .big)
        out.writeInteger(data.code)
        out.writeBytes(data.payload)
    }
}

/// Carries out a session's actions on its channel.
///
/// One decision at a time per connection. Commands the MTA sends behind an end-of-message, before its answer, wait
/// here and are handled in turn once it is sent, as libmilter (which reads a connection's commands one after the
/// other) handles them. Only an abort or a quit is acted on at once, when nothing is held before it (once a command
/// waits, the socket is not read until the answer is out, so a later abort or hang-up is seen then). The MTA may
/// abort a message while its decision is still being made; the session then forgets it (its answer is never sent),
/// but the handler cannot be stopped halfway. Commands after such an abort wait here, and the socket is not read,
/// until that decision has finished: otherwise a client could start a classification per message without waiting
/// for any: 40 aborted 8 MB messages sent while the database was locked took the service to 84 MB, against 42 MB
/// with one decision at a time.
final class MilterChannelHandler: ChannelDuplexHandler {
    typealias InboundIn = MilterPacket
    typealias OutboundIn = MilterPacket
    typealias OutboundOut = MilterPacket

    private var session: MilterSession
    /// Set once the handler leaves the pipeline: a decision that arrives later (the MTA hung up meanwhile) is
    /// dropped instead of written through a context that no longer exists.
    private var removed = false
    /// Whether the handler is deciding a message, wanted or aborted.
    private var deciding = false
    /// Commands that arrived while a decision was being made: behind the end-of-message whose answer is pending,
    /// or after an abort of it. At most what one read of the socket held: no read is asked for while any wait.
    private var held = CircularBuffer<MilterPacket>()
    /// A read the pipeline asked for while commands were held; passed on once they are handled.
    private var readWanted = false
    /// Set when this handler closes the connection: commands still held then are dropped, not acted on.
    private var closing = false
    private let handler: any MilterHandler
    private let logger: Logger
    private let sessions: SessionRegistry
    private let negotiationTimeout: TimeAmount
    /// Bytes of the sessions' shared budget (`SessionRegistry.reserve`) this session's message in hand holds.
    private var reserved = 0

    init(session: MilterSession, handler: any MilterHandler, logger: Logger, sessions: SessionRegistry,
         negotiationTimeout: TimeAmount) {
        self.session = session
        self.handler = handler
        self.logger = logger
        self.sessions = sessions
        self.negotiationTimeout = negotiationTimeout
    }

    /// The negotiation deadline starts when the connection does: in `handlerAdded` if the channel is already
    /// active then (as `IdleStateHandler` does), else in `channelActive`.
    private var negotiationDeadlineSet = false

    func handlerAdded(context: ChannelHandlerContext) {
        if context.channel.isActive { setNegotiationDeadline(context: context) }
    }

    func channelActive(context: ChannelHandlerContext) {
        setNegotiationDeadline(context: context)
        context.fireChannelActive()
    }

    private func setNegotiationDeadline(context: ChannelHandlerContext) {
        guard !negotiationDeadlineSet else { return }
        negotiationDeadlineSet = true
        let timeout = negotiationTimeout
        // Cancelled once the options are agreed and when the handler goes: the task (through its context) held the
        // handler, and the message in hand with it, for the whole timeout after its connection had gone (found in
        // review: 100 connections hanging up in 4 MiB messages held 400 MB for 30 s).
        negotiationDeadline = context.eventLoop.assumeIsolated().scheduleTask(in: timeout) {
            guard self.session.state == .awaitingNegotiation, !self.closing, !self.removed else { return }
            let seconds = Double(timeout.nanoseconds) / 1e9
            self.logger.notice("milter session closed: no option negotiation within \(seconds) s")
            self.close(context)
        }
    }
    private var negotiationDeadline: Scheduled<Void>?

    /// Commands wait while a decision the session no longer wants is being made. While the session still wants
    /// it, an abort or a quit is acted on at once, and anything else waits for the answer (`waitsForTheAnswer`).
    private var mustHold: Bool { deciding && session.state != .awaitingDecision }

    /// Whether the packet waits for the pending end-of-message answer: anything but an abort or a quit does (found
    /// in review: a MAIL sent behind the end-of-message, which libmilter answers in turn, closed the session, and a
    /// QUIT_NC there dropped the answer the MTA was still to read).
    private func waitsForTheAnswer(_ packet: MilterPacket) -> Bool {
        session.state == .awaitingDecision && !Self.actedOnAtOnce.contains(packet.code)
    }

    private static let actedOnAtOnce: Set<UInt8> = [MilterCommandCode.abort.rawValue, MilterCommandCode.quit.rawValue]

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let packet = unwrapInboundIn(data)
        if closing { return }  // read before the close took effect: the MTA is gone for this session
        if mustHold || !held.isEmpty || waitsForTheAnswer(packet) {
            held.append(packet)
        } else {
            handle(packet, context: context)
        }
    }

    func read(context: ChannelHandlerContext) {
        if mustHold || !held.isEmpty {
            readWanted = true
        } else {
            context.read()
        }
    }

    private func handle(_ packet: MilterPacket, context: ChannelHandlerContext) {
        // Room for the whole packet before the session keeps any of it; without room, the message is let go.
        if session.isKeepingMessage, Self.keptCodes.contains(packet.code) {
            if sessions.reserve(packet.payload.count) {
                reserved += packet.payload.count
            } else {
                session.stopKeepingMessage()
            }
        }
        let action: MilterAction
        do {
            action = session.receive(try MilterCommand(packet))
        } catch {
            action = .fail(error)
        }
        if session.state != .awaitingNegotiation, let deadline = negotiationDeadline {
            deadline.cancel()
            negotiationDeadline = nil
        }
        // Macros come before the commands they go with: alone, they are no sign of life.
        if packet.code != MilterCommandCode.macro.rawValue { noteActivity(context) }
        var decisionShare = 0
        if case .decide = action {
            // The session handed the message over: its share of the budget goes with it, until the decision ends.
            decisionShare = reserved
            reserved = 0
        }
        settleReservation()
        perform(action, context: context, decisionShare: decisionShare)
    }

    /// Tells the registry the session was heard from, and whether it is now between messages (the one kind of
    /// session a new connection may take the place of).
    private func noteActivity(_ context: ChannelHandlerContext) {
        let between = !deciding && (session.state == .awaitingNegotiation || session.state == .ready)
        sessions.heard(context.channel, betweenMessages: between)
    }

    /// The commands whose payload a session keeps as part of the message.
    private static let keptCodes: Set<UInt8> = Set([MilterCommandCode.header, .endOfHeaders, .body, .endOfMessage]
        .map(\.rawValue))

    /// The reservation made equal to what the session keeps: a header field is kept with a few bytes more than
    /// its packet, most packets add nothing, and a decided or aborted message gives everything back.
    private func settleReservation() {
        let kept = session.keptBytes
        if kept != reserved { sessions.adjustReserved(by: kept - reserved) }
        reserved = kept
    }

    /// `decisionShare`: the bytes of the budget the message to decide holds, given back when the decision ends,
    /// wanted or not (after an abort, QUIT_NC or a hang-up the handler still holds the message until then).
    private func perform(_ action: MilterAction, context: ChannelHandlerContext, decisionShare: Int = 0) {
        switch action {
        case .none:
            break
        case .reply(let replies):
            for reply in replies { context.write(wrapOutboundOut(reply.packet), promise: nil) }
            context.flush()
            if session.state == .ready, sessions.isClosing { close(context) }
        case .decide(let message):
            let handler = self.handler
            deciding = true
            let decision = context.eventLoop.makeFutureWithTask { await handler.decide(message) }
            let sessions = self.sessions
            decision.whenComplete { _ in sessions.adjustReserved(by: -decisionShare) }
            decision.assumeIsolated().whenSuccess { changes in
                guard !self.removed else { return }
                self.deciding = false
                let action = self.session.decided(changes)
                self.settleReservation()
                self.noteActivity(context)
                self.perform(action, context: context)
                self.handleHeld(context: context)
            }
        case .close:
            close(context)
        case .fail(let error):
            reportFailure(error)
            close(context)
        }
    }

    private func close(_ context: ChannelHandlerContext) {
        closing = true
        context.close(promise: nil)
    }

    /// The commands held during a decision, in order, until one starts another decision.
    private func handleHeld(context: ChannelHandlerContext) {
        while let next = held.first, !mustHold, !waitsForTheAnswer(next), !removed, !closing {
            handle(held.removeFirst(), context: context)
        }
        guard held.isEmpty, !mustHold, !removed, !closing else { return }
        if session.state == .ready, sessions.isClosing { close(context) }
        if readWanted {
            readWanted = false
            context.read()
        }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        removed = true
        negotiationDeadline?.cancel()
        session.release()
        held.removeAll()
        settleReservation()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if event is IdleStateHandler.IdleStateEvent {
            logger.notice("milter session closed after \(session.state) went silent")
            close(context)
        } else {
            context.fireUserInboundEventTriggered(event)
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        // The MTA going away (a reset, a broken pipe) ends a session as its QUIT does: said at debug level, in words
        // (found by an audit: a warning naming NIO's read call, its parentheses unbalanced, for each such session).
        if let error = error as? IOError, [ECONNRESET, EPIPE].contains(error.errnoCode) {
            logger.debug("milter session closed by the MTA (\(String(cString: strerror(error.errnoCode))))")
        } else {
            reportFailure(error)
        }
        close(context)
    }

    /// A session closed for what it sent, or for a failure of its own: the first said at once with its reason, then
    /// at most once a minute with how many there were, the others at debug level (found by an audit: whoever could
    /// reach the socket wrote a warning per malformed session, 64,000 lines a minute, past journald's rate limit,
    /// which then drops the warnings that matter too).
    private func reportFailure(_ error: any Error) {
        guard let failed = sessions.failureToReport() else {
            logger.debug("milter session closed: \(error)")
            return
        }
        let count = failed == 1 ? "" : """
             (\(failed) sessions closed for errors since the last report, the others logged at debug level; reported \
            at most once a minute)
            """
        logger.warning("milter session closed: \(error)\(count)")
    }

    /// Shutdown asked this session to close once it is between messages.
    func closeIfIdle(context: ChannelHandlerContext) {
        if !deciding, session.state != .inMessage, session.state != .awaitingDecision { close(context) }
    }
}

/// The open sessions: bounded in number and in the bytes of the messages they keep, and closed between messages
/// at shutdown.
final class SessionRegistry: Sendable {
    private struct Session {
        let channel: any Channel
        /// When it last sent a command other than macros, or its decision ended.
        var lastHeard: NIODeadline
        /// Negotiating, or between messages, its last decision made.
        var betweenMessages = true
        /// Chosen to make room, and not yet closed (`confirmEviction`).
        var evicting = false
    }

    private struct State {
        var channels: [ObjectIdentifier: Session] = [:]
        var closing = false
        /// The wait for sessions to end is over (`cutShort`).
        var cuttingShort = false
        /// Bytes the sessions' messages in hand hold (`reserve`).
        var kept = 0
        /// Connections refused, and sessions closed to make room, since the last report of each.
        var refused = OncePerMinuteCount()
        var evicted = OncePerMinuteCount()
        /// Accepts that failed for want of file descriptors or memory.
        var acceptFailed = OncePerMinuteCount()
        /// Sessions closed for a protocol error or a failure of their own.
        var failed = OncePerMinuteCount()
    }

    /// Whole seconds of `deadline`, the clock `OncePerMinuteCount` counts in.
    private static func seconds(_ deadline: NIODeadline) -> Int64 {
        Int64(deadline.uptimeNanoseconds / 1_000_000_000)
    }

    enum Admission {
        case admitted
        /// Admitted in the place of a session silent for `seconds`, which the caller closes if it is still silent
        /// since `heardAt` (`confirmEviction`).
        case admittedClosing(any Channel, heardAt: NIODeadline, seconds: Int)
        case full
        case closing

        var admitted: Bool {
            switch self {
            case .admitted, .admittedClosing: true
            case .full, .closing: false
            }
        }
    }

    private let state = Mutex(State())
    let maximumBufferedBytes: Int
    private let reportClock: @Sendable () -> NIODeadline

    /// `maximumBufferedBytes`: the sessions' shared budget (`MilterServerConfiguration.maximumBufferedBytes`);
    /// none unless given.
    init(maximumBufferedBytes: Int = .max, reportClock: @escaping @Sendable () -> NIODeadline = { .now() }) {
        self.maximumBufferedBytes = maximumBufferedBytes
        self.reportClock = reportClock
    }

    /// Takes `bytes` of the budget for a session's message in hand, if they fit.
    func reserve(_ bytes: Int) -> Bool {
        state.withLock { state in
            guard state.kept <= maximumBufferedBytes - bytes else { return false }
            state.kept += bytes
            return true
        }
    }

    /// Gives back (negative) or takes what a session keeps beyond its reservation, unconditionally.
    func adjustReserved(by bytes: Int) {
        state.withLock { $0.kept += bytes }
    }

    /// Bytes the sessions' messages in hand hold now.
    var keptBytes: Int { state.withLock { $0.kept } }

    /// The sessions open, and those refused at the limit, for the service's metrics (swift-metrics; no-ops
    /// unless the service shows them).
    private let open = Gauge(label: "pitchfilter_milter_sessions")
    private let refused = Counter(label: "pitchfilter_milter_sessions_refused_total")

    /// Admits a session if there is room, or room can be made: the session silent longest between messages, if
    /// for at least `evictableAfter`, else the one silent longest in a message, if for `inMessageAfter`, is chosen
    /// for the caller to close. Sessions chosen and not yet closed do not count against `limit`.
    func admit(_ channel: any Channel, limit: Int, evictableAfter: TimeAmount = .seconds(30),
               inMessageAfter: TimeAmount = .seconds(600), now: NIODeadline = .now()) -> Admission {
        let admission = state.withLock { state -> Admission in
            guard !state.closing else { return .closing }
            var admission = Admission.admitted
            if state.channels.values.count(where: { !$0.evicting }) >= limit {
                func silentLongest(betweenMessages: Bool, for least: TimeAmount) -> (ObjectIdentifier, Session)? {
                    state.channels.filter {
                        !$0.value.evicting && $0.value.betweenMessages == betweenMessages
                            && now - $0.value.lastHeard >= least
                    }
                    .min { $0.value.lastHeard < $1.value.lastHeard }.map { ($0.key, $0.value) }
                }
                guard let (key, silent) = silentLongest(betweenMessages: true, for: evictableAfter)
                    ?? silentLongest(betweenMessages: false, for: inMessageAfter) else { return .full }
                state.channels[key]?.evicting = true
                let seconds = Int((now - silent.lastHeard).nanoseconds / 1_000_000_000)
                admission = .admittedClosing(silent.channel, heardAt: silent.lastHeard, seconds: seconds)
            }
            state.channels[ObjectIdentifier(channel)] = Session(channel: channel, lastHeard: now)
            open.record(state.channels.count)
            return admission
        }
        if case .full = admission { refused.increment() }
        return admission
    }

    /// Whether a session chosen to make room is still silent since `heardAt`, as it was chosen; if not, it is
    /// no longer being evicted. Called on the session's own event loop, where `heard` is.
    func confirmEviction(of channel: any Channel, heardAt: NIODeadline) -> Bool {
        state.withLock { state in
            guard let session = state.channels[ObjectIdentifier(channel)] else { return false }
            if session.lastHeard == heardAt { return true }
            state.channels[ObjectIdentifier(channel)]?.evicting = false
            return false
        }
    }

    /// Notes that a session was heard from, and whether it is between messages now.
    func heard(_ channel: any Channel, betweenMessages: Bool, now: NIODeadline = .now()) {
        state.withLock { state in
            // Nothing for a session no longer registered (closed meanwhile).
            state.channels[ObjectIdentifier(channel)]?.lastHeard = now
            state.channels[ObjectIdentifier(channel)]?.betweenMessages = betweenMessages
        }
    }

    /// Counts a refused connection; returns how many to report when a report is due (the first, then at most once a
    /// minute).
    func refusalToReport(now: NIODeadline? = nil) -> Int? { count(\.refused, now: now) }

    /// Counts an accept that failed; returns how many to report, as `refusalToReport` does.
    func acceptFailureToReport(now: NIODeadline? = nil) -> Int? { count(\.acceptFailed, now: now) }

    /// Counts a session closed to make room; returns how many to report, as `refusalToReport` does.
    func evictionToReport(now: NIODeadline? = nil) -> Int? { count(\.evicted, now: now) }

    /// Counts a session closed for an error; returns how many to report, as `refusalToReport` does.
    func failureToReport(now: NIODeadline? = nil) -> Int? { count(\.failed, now: now) }

    private func count(_ events: WritableKeyPath<State, OncePerMinuteCount>, now: NIODeadline?) -> Int? {
        let now = Self.seconds(now ?? reportClock())
        return state.withLock { $0[keyPath: events].add(atSecond: now) }
    }

    /// What was counted and not yet reported, for the last lines as the server stops: the counts start again.
    func takeUnreported() -> (refused: Int, acceptFailed: Int, evicted: Int, failed: Int) {
        state.withLock { state in
            (state.refused.takeUnreported(), state.acceptFailed.takeUnreported(), state.evicted.takeUnreported(),
             state.failed.takeUnreported())
        }
    }

    func remove(_ channel: any Channel) {
        state.withLock { state in
            state.channels.removeValue(forKey: ObjectIdentifier(channel))
            open.record(state.channels.count)
        }
    }

    var isClosing: Bool { state.withLock { $0.closing } }

    var count: Int { state.withLock { $0.channels.count } }

    /// Sessions in the middle of a message.
    var inMessage: Int { state.withLock { $0.channels.values.count { !$0.betweenMessages } } }

    /// Ends `closeWhenIdle`'s wait, now or as soon as it begins.
    func cutShort() {
        state.withLock { $0.cuttingShort = true }
    }

    /// Closes each session as soon as it is between messages, and waits for all to end (at most `grace`, or until
    /// `cutShort`); closes those left, and returns how many of them were in the middle of a message.
    @discardableResult
    func closeWhenIdle(grace: TimeAmount) async -> Int {
        let channels = state.withLock { state in
            state.closing = true
            return state.channels.values.map(\.channel)
        }
        for channel in channels {
            channel.eventLoop.execute {
                if let handler = try? channel.pipeline.syncOperations.handler(type: MilterChannelHandler.self),
                   let context = try? channel.pipeline.syncOperations.context(handlerType: MilterChannelHandler.self) {
                    handler.closeIfIdle(context: context)
                }
            }
        }
        let deadline = NIODeadline.now() + grace
        while count > 0, NIODeadline.now() < deadline, !state.withLock({ $0.cuttingShort }) {
            // Not Task.sleep: when another service failed, the group cancelled this task, and Task.sleep returned at
            // once each time, spinning a core for the whole grace (found in review).
            try? await MultiThreadedEventLoopGroup.singleton.any().scheduleTask(in: .milliseconds(20)) {}
                .futureResult.get()
        }
        // Those between messages were asked to close and may not have yet: only those in a message are cut (found
        // in review: a second signal at once counted every idle session Postfix keeps).
        let (left, inMessage) = state.withLock { state in
            (state.channels.values.map(\.channel), state.channels.values.count { !$0.betweenMessages })
        }
        for channel in left { channel.close(promise: nil) }
        return inMessage
    }
}

/// Pauses accepting for a second after an accept failed: out of file descriptors (EMFILE, ENFILE) or memory, NIO
/// tried again at once, for ever, a core spun, the connections waiting hung and nothing was logged (found by an
/// audit, with more sessions than `ulimit -n`). NIO's `AcceptBackoffHandler` delays the next read, but a failed accept
/// leaves the listening channel registered for reading, and the pause never came; turning `autoRead` off takes it
/// off the event loop's watch, and back on a second later. The connections wait in the listen backlog meanwhile.
final class AcceptPause: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = any Channel

    private let failed: (IOError) -> Void
    private var paused = false

    init(failed: @escaping (IOError) -> Void) {
        self.failed = failed
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        guard let error = error as? IOError else {
            context.fireErrorCaught(error)
            return
        }
        failed(error)
        guard !paused, let options = context.channel.syncOptions else { return }
        paused = true
        try? options.setOption(.autoRead, value: false)
        context.eventLoop.assumeIsolated().scheduleTask(in: .seconds(1)) {
            self.paused = false
            try? options.setOption(.autoRead, value: true)
        }
    }
}

/// Like events logged at most once a minute, with how many there were: the first at once, then the count since, a
/// minute later at the earliest. A flood (refused connections, messages past the budget) would otherwise write a
/// line each, past journald's rate limit, which then drops the warnings that matter too.
public struct OncePerMinuteCount: Sendable {
    private var count = 0
    private var lastReport: Int64?

    public init() {}

    /// Counts one at `now` (seconds on any steady clock); how many to report when a report is due, else nil.
    public mutating func add(atSecond now: Int64) -> Int? {
        count += 1
        if let lastReport, now - lastReport < 60 { return nil }
        lastReport = now
        defer { count = 0 }
        return count
    }

    /// What was counted since the last report, for a last line as the service stops; the count starts again.
    public mutating func takeUnreported() -> Int {
        defer { count = 0 }
        return count
    }
}

extension String {
    fileprivate func leftPadded(to width: Int) -> String {
        count >= width ? self : String(repeating: "0", count: width - count) + self
    }
}
