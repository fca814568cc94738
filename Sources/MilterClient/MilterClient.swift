import PitchMilter

#if canImport(Glibc)
import Glibc
#endif

/// A small blocking milter client, playing the MTA's side: for the load tool and the server's tests.
///
/// One instance is one connection, used from one thread. It negotiates like Postfix (offering every step and
/// every no-reply flag), then sends each message as Postfix does and collects the end-of-message actions.
public final class MilterClient {
    public struct Failure: Error, CustomStringConvertible {
        public let description: String
        init(_ description: String) { self.description = description }
    }

    /// The end-of-message answer: the modifications, then the final reply code.
    public struct Outcome: Sendable, Equatable {
        public var modifications: [MilterPacket]
        public var final: UInt8
    }

    private let fd: Int32
    public private(set) var flags = MilterProtocolFlags()
    public private(set) var actions = MilterActions()

    /// Connects to 127.0.0.1:`port`. `sendTimeoutSeconds`: how long a write may block before it fails (0: no
    /// limit); `receiveBufferBytes`: a small kernel buffer, for tests of a client that does not read.
    public init(port: Int, receiveTimeoutSeconds: Int = 30, sendTimeoutSeconds: Int = 0,
                receiveBufferBytes: Int32? = nil) throws {
        fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw Failure("socket: \(String(cString: strerror(errno)))") }
        if var bytes = receiveBufferBytes {
            // Before connect, so the window announced to the server is small from the start.
            setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &bytes, socklen_t(MemoryLayout<Int32>.size))
        }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard connected == 0 else {
            let reason = String(cString: strerror(errno))
            close(fd)
            throw Failure("connect to port \(port): \(reason)")
        }
        var timeout = timeval(tv_sec: receiveTimeoutSeconds, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var sendTimeout = timeval(tv_sec: sendTimeoutSeconds, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &sendTimeout, socklen_t(MemoryLayout<timeval>.size))
        var one: Int32 = 1
        setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
    }

    deinit { close(fd) }

    /// Version 6, every action and every protocol flag: what a modern Postfix offers in OPTNEG.
    public static let offer = MilterWire.bytes(6) + MilterWire.bytes(0x1FF) + MilterWire.bytes(0x1FFFFF)

    /// OPTNEG, offering everything a modern Postfix offers.
    public func negotiate() throws {
        try send(MilterPacket(code: MilterCommandCode.negotiate.rawValue, payload: Self.offer))
        let reply = try receive()
        guard reply.code == MilterReplyCode.negotiate.rawValue, reply.payload.count >= 12 else {
            throw Failure("negotiation answered with 0x\(String(reply.code, radix: 16))")
        }
        actions = MilterActions(rawValue: MilterWire.number(reply.payload, at: 4))
        flags = MilterProtocolFlags(rawValue: MilterWire.number(reply.payload, at: 8))
    }

    /// One message through every step the filter asked for; returns the end-of-message answer.
    public func send(message: [UInt8], from sender: String, to recipients: [String],
                     macros: [String: String] = [:]) throws -> Outcome {
        let (fields, body) = Self.split(message)
        let macroPairs = macros.flatMap { MilterWire.string($0.key) + MilterWire.string($0.value) }
        try command(.macro, [MilterCommandCode.mail.rawValue] + macroPairs, expectsReply: false)
        if !flags.contains(.noMail) {
            try command(.mail, MilterWire.string("<\(sender)>"), expectsReply: !flags.contains(.noReplyMail))
        }
        for recipient in recipients where !flags.contains(.noRecipient) {
            try command(.recipient, MilterWire.string("<\(recipient)>"),
                        expectsReply: !flags.contains(.noReplyRecipient))
        }
        if !flags.contains(.noData) { try command(.data, [], expectsReply: !flags.contains(.noReplyData)) }
        if !flags.contains(.noHeaders) {
            for (name, value) in fields {
                // Without SMFIP_HDR_LEADSPC the MTA strips the space after the colon.
                let sent = flags.contains(.headerLeadingSpace) ? value : Array(value.drop { $0 == 0x20 || $0 == 0x09 })
                try command(.header, name + [0] + sent + [0], expectsReply: !flags.contains(.noReplyHeader))
            }
        }
        if !flags.contains(.noEndOfHeaders) {
            try command(.endOfHeaders, [], expectsReply: !flags.contains(.noReplyEndOfHeaders))
        }
        if !flags.contains(.noBody) {
            var offset = 0
            while offset < body.count {
                let end = min(body.count, offset + 65_535)
                try command(.body, Array(body[offset..<end]), expectsReply: !flags.contains(.noReplyBody))
                offset = end
            }
        }
        try send(MilterPacket(code: MilterCommandCode.endOfMessage.rawValue, payload: []))
        return try receiveOutcome()
    }

    /// The next end-of-message answer: the modifications, then the final reply.
    public func receiveOutcome() throws -> Outcome {
        var modifications: [MilterPacket] = []
        while true {
            let reply = try receive()
            switch reply.code {
            case MilterReplyCode.accept.rawValue, MilterReplyCode.continue.rawValue, MilterReplyCode.tempfail.rawValue,
                 UInt8(ascii: "r"), UInt8(ascii: "d"), UInt8(ascii: "y"):
                return Outcome(modifications: modifications, final: reply.code)
            case MilterReplyCode.progress.rawValue:
                continue
            default:
                modifications.append(reply)
            }
        }
    }

    /// A whole session as raw bytes, negotiation to QUIT, sent without waiting for replies: the material the
    /// fuzzer mutates.
    public static func sessionBytes(message: [UInt8], from sender: String, to recipient: String) -> [UInt8] {
        packet(.negotiate, offer) + messageBytes(message: message, from: sender, to: recipient) + packet(.quit, [])
    }

    /// One message as raw bytes, its macros to its end, as a client that does not wait for replies sends it.
    public static func messageBytes(message: [UInt8], from sender: String, to recipient: String) -> [UInt8] {
        let (fields, body) = split(message)
        var bytes = packet(.macro, [MilterCommandCode.mail.rawValue] + MilterWire.string("i") + MilterWire.string("FUZZ"))
        bytes += packet(.mail, MilterWire.string("<\(sender)>"))
        bytes += packet(.recipient, MilterWire.string("<\(recipient)>"))
        for (name, value) in fields { bytes += packet(.header, name + [0] + value + [0]) }
        bytes += packet(.endOfHeaders, [])
        bytes += packet(.body, body)
        bytes += packet(.endOfMessage, [])
        return bytes
    }

    /// One command as raw bytes.
    public static func packet(_ code: MilterCommandCode, _ payload: [UInt8]) -> [UInt8] {
        MilterWire.bytes(UInt32(payload.count + 1)) + [code.rawValue] + payload
    }

    public func quit() {
        try? send(MilterPacket(code: MilterCommandCode.quit.rawValue, payload: []))
    }

    /// Raw bytes, for tests that feed garbage. Throws once a write fails or times out (`sendTimeoutSeconds`).
    public func write(raw bytes: [UInt8]) throws {
        var offset = 0
        while offset < bytes.count {
            let n = bytes[offset...].withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            guard n > 0 else { throw Failure("send: \(String(cString: strerror(errno)))") }
            offset += n
        }
    }

    /// True once the server has closed the connection (read returns end of file).
    public func isClosedByPeer() -> Bool {
        var byte: UInt8 = 0
        return recv(fd, &byte, 1, 0) == 0
    }

    private func command(_ code: MilterCommandCode, _ payload: [UInt8], expectsReply: Bool) throws {
        try send(MilterPacket(code: code.rawValue, payload: payload))
        guard expectsReply else { return }
        let reply = try receive()
        guard reply.code == MilterReplyCode.continue.rawValue else {
            throw Failure("\(code) answered with 0x\(String(reply.code, radix: 16))")
        }
    }

    private func send(_ packet: MilterPacket) throws {
        try write(raw: MilterWire.bytes(UInt32(packet.payload.count + 1)) + [packet.code] + packet.payload)
    }

    private func receive() throws -> MilterPacket {
        let header = try read(count: 5)
        let length = Int(MilterWire.number(header, at: 0))
        guard length >= 1 else { throw Failure("an empty reply packet") }
        return MilterPacket(code: header[4], payload: try read(count: length - 1))
    }

    private func read(count: Int) throws -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: count)
        var offset = 0
        while offset < count {
            let n = bytes.withUnsafeMutableBytes { recv(fd, $0.baseAddress! + offset, count - offset, 0) }
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else {
                throw Failure(n == 0 ? "the server closed the connection" : "recv: \(String(cString: strerror(errno)))")
            }
            offset += n
        }
        return bytes
    }

    /// Header fields as Postfix sends them (value with its leading space when asked for, folds joined by LF,
    /// no CR), and the body with CRLF line ends.
    static func split(_ message: [UInt8]) -> (fields: [([UInt8], [UInt8])], body: [UInt8]) {
        var lines: [[UInt8]] = []
        var start = 0
        var bodyStart = message.count
        var index = 0
        while index < message.count {
            if message[index] == 0x0A {
                var line = Array(message[start..<index])
                if line.last == 0x0D { line.removeLast() }
                start = index + 1
                if line.isEmpty {
                    bodyStart = start
                    break
                }
                lines.append(line)
            }
            index += 1
        }
        var fields: [([UInt8], [UInt8])] = []
        for line in lines {
            if let first = line.first, first == 0x20 || first == 0x09, !fields.isEmpty {
                fields[fields.count - 1].1 += [0x0A] + line
            } else if let colon = line.firstIndex(of: UInt8(ascii: ":")) {
                fields.append((Array(line[..<colon]), Array(line[(colon + 1)...])))
            }
        }
        var body: [UInt8] = []
        var previous: UInt8 = 0
        for byte in message[min(bodyStart, message.count)...] {
            if byte == 0x0A && previous != 0x0D { body.append(0x0D) }
            body.append(byte)
            previous = byte
        }
        return (fields, body)
    }
}
