import CLinuxCalls

#if canImport(Glibc)
import Glibc
#endif

/// Standard input, read whole into the array the message is parsed from, which the deadline's signal handler also
/// writes from: one copy of the message in memory, not a buffer for the handler and an array for the parser (that
/// took a 31 MB message's filter to 79 MB).
public struct StandardInput {
    public let bytes: [UInt8]
    /// Why reading stopped; unless at the end, the rest is still unread on standard input.
    public let stop: Stop

    public enum Stop {
        /// The whole message is in `bytes`.
        case end
        /// More than `limit` bytes arrived.
        case overLimit
        /// The next, larger array could not be had: out of memory, or past a limit on it (`ulimit -v`).
        case outOfMemory
    }

    public struct ReadError: Error, CustomStringConvertible {
        public let errno: Int32
        public var description: String { String(cString: strerror(errno)) }
    }

    /// Reads to the end of input. Only a real end of file ends the message: an error part-way must not turn the
    /// part read so far into the whole message.
    ///
    /// Arrays cannot be read into past their count, so each larger array is made with the last one's bytes
    /// copied in and filled by reading until it is full or the input ends.
    public static func readAll(limit: Int) throws -> StandardInput {
        var bytes: [UInt8] = []
        var capacity = 64 << 10
        while true {
            // A Swift array that cannot be had aborts the process, and the caller would get nothing but a signal;
            // a mapping made and taken back says so instead (64 KiB more than the array needs, for its header and
            // the allocator's). Then what was read, and the rest, pass through.
            guard pitchfilter_can_allocate(UInt(capacity + (64 << 10))) == 1 else {
                return StandardInput(bytes: bytes, stop: .outOfMemory)
            }
            var ended = false
            var failure: ReadError?
            let previous = bytes
            bytes = [UInt8](unsafeUninitializedCapacity: capacity) { buffer, count in
                let base = buffer.baseAddress!
                count = previous.withUnsafeBufferPointer { old in
                    if let start = old.baseAddress { base.initialize(from: start, count: old.count) }
                    return old.count
                }
                while count < capacity {
                    switch readSome(into: base + count, capacity - count) {
                    case .bytes(let n): count += n
                    case .end: ended = true; return
                    case .failed(let error): failure = error; return
                    }
                }
            }
            if let failure { throw failure }
            if ended { return StandardInput(bytes: bytes, stop: .end) }
            // Full. One byte past the limit tells a message of exactly `limit` bytes from a bigger one.
            if capacity > limit { return StandardInput(bytes: bytes, stop: .overLimit) }
            capacity = min(capacity * 2, limit + 1)
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
