#if canImport(Glibc)
import Glibc
#endif

/// Standard input, read whole into memory that the deadline's signal handler can reach.
public struct StandardInput {
    public let buffer: UnsafeMutableBufferPointer<UInt8>
    /// More than `limit` bytes arrived; the rest is still unread on standard input.
    public let isTruncated: Bool

    public struct ReadError: Error, CustomStringConvertible {
        public let errno: Int32
        public var description: String { String(cString: strerror(errno)) }
    }

    /// Reads to the end of input. Only a real end of file ends the message: an error part-way must not turn the
    /// part read so far into the whole message.
    public static func readAll(limit: Int) throws -> StandardInput {
        var capacity = 64 << 10
        var base = UnsafeMutablePointer<UInt8>.allocate(capacity: capacity)
        var count = 0
        while true {
            if count == capacity {
                // One byte past the limit tells a message of exactly `limit` bytes from a bigger one.
                if capacity > limit { return StandardInput(buffer: .init(start: base, count: count), isTruncated: true) }
                let grown = min(capacity * 2, limit + 1)
                let larger = UnsafeMutablePointer<UInt8>.allocate(capacity: grown)
                larger.update(from: base, count: count)
                base.deallocate()
                base = larger
                capacity = grown
            }
            switch readSome(into: base + count, capacity - count) {
            case .bytes(let n): count += n
            case .end: return StandardInput(buffer: .init(start: base, count: count), isTruncated: false)
            case .failed(let error):
                base.deallocate()
                throw error
            }
        }
    }

    public enum ReadResult {
        case bytes(Int)
        case end
        case failed(ReadError)
    }

    /// One read(2) that waits out EINTR and, for a non-blocking descriptor, EAGAIN (with poll).
    public static func readSome(into buffer: UnsafeMutableRawPointer, _ count: Int) -> ReadResult {
        while true {
            let n = read(0, buffer, count)
            if n > 0 { return .bytes(n) }
            if n == 0 { return .end }
            switch errno {
            case EINTR:
                continue
            case EAGAIN, EWOULDBLOCK:
                var descriptor = pollfd(fd: 0, events: Int16(POLLIN), revents: 0)
                _ = poll(&descriptor, 1, -1)
            default:
                return .failed(ReadError(errno: errno))
            }
        }
    }
}
