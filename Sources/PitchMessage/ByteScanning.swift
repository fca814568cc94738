#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Byte-level search over a message. Everything here works on an `UnsafeBufferPointer` the caller
/// holds for the duration of a parse, so the hot loops are libc's `memchr`/`memmem`, not Swift iterators.
enum ByteScanning {
    static let lf: UInt8 = 0x0A
    static let cr: UInt8 = 0x0D
    static let space: UInt8 = 0x20
    static let tab: UInt8 = 0x09
    static let colon: UInt8 = 0x3A
    static let dash: UInt8 = 0x2D

    @inline(__always)
    static func isWhitespace(_ byte: UInt8) -> Bool { byte == space || byte == tab }

    /// The offset of the next `byte` in `from..<to`, or nil.
    @inline(__always)
    static func find(_ byte: UInt8, in bytes: UnsafeBufferPointer<UInt8>, from: Int, to: Int) -> Int? {
        guard from < to, let base = bytes.baseAddress else { return nil }
        guard let hit = memchr(base + from, Int32(byte), to - from) else { return nil }
        return base.distance(to: hit.assumingMemoryBound(to: UInt8.self))
    }

    /// Whether `needle` stands at `offset`.
    @inline(__always)
    static func matches(
        _ needle: UnsafeBufferPointer<UInt8>, in bytes: UnsafeBufferPointer<UInt8>, at offset: Int, end: Int
    ) -> Bool {
        guard needle.count <= end - offset, let base = bytes.baseAddress, let needleBase = needle.baseAddress
        else { return false }
        return memcmp(base + offset, needleBase, needle.count) == 0
    }

    /// The end of the line starting at `from` (the offset of its line break, CR of a CRLF included) and the
    /// offset where the next line starts. A last line without a line break ends at `to`.
    @inline(__always)
    static func line(
        in bytes: UnsafeBufferPointer<UInt8>, from: Int, to: Int
    ) -> (contentEnd: Int, next: Int) {
        guard let newline = find(lf, in: bytes, from: from, to: to) else { return (to, to) }
        let contentEnd = newline > from && bytes[newline - 1] == cr ? newline - 1 : newline
        return (contentEnd, newline + 1)
    }

    /// ASCII case-insensitive comparison of a byte range with a lower-case ASCII literal.
    static func equalsLowercased(
        _ bytes: UnsafeBufferPointer<UInt8>, _ range: Range<Int>, _ lowercased: StaticString
    ) -> Bool {
        guard range.count == lowercased.utf8CodeUnitCount else { return false }
        let literal = lowercased.utf8Start
        for (i, offset) in range.enumerated() where asciiLowercase(bytes[offset]) != literal[i] {
            return false
        }
        return true
    }

    @inline(__always)
    static func asciiLowercase(_ byte: UInt8) -> UInt8 {
        byte &- 0x41 < 26 ? byte | 0x20 : byte
    }
}

/// How a message ends its lines. Inserted header fields use the message's own style.
public enum LineEnding: String, Hashable, Sendable {
    case lf
    case crlf

    public var bytes: [UInt8] { self == .lf ? [0x0A] : [0x0D, 0x0A] }

    /// The style of the first line break at or after `start`, else of the first one at all (LF when there is none).
    static func ofFirstLine(in bytes: UnsafeBufferPointer<UInt8>, from start: Int = 0) -> LineEnding {
        guard let lf = ByteScanning.find(ByteScanning.lf, in: bytes, from: start, to: bytes.count)
            ?? ByteScanning.find(ByteScanning.lf, in: bytes, from: 0, to: bytes.count)
        else { return .lf }
        return lf > 0 && bytes[lf - 1] == ByteScanning.cr ? .crlf : .lf
    }

    /// The style of the first line break in `range`, and whether the other style occurs too.
    /// No line break at all counts as LF, the Unix convention pipe filters see.
    static func detect(in bytes: UnsafeBufferPointer<UInt8>, range: Range<Int>) -> (first: LineEnding, mixed: Bool) {
        typealias Scan = ByteScanning
        guard let firstLF = Scan.find(Scan.lf, in: bytes, from: range.lowerBound, to: range.upperBound) else {
            return (.lf, false)
        }
        let first: LineEnding = firstLF > range.lowerBound && bytes[firstLF - 1] == Scan.cr ? .crlf : .lf
        if first == .lf {
            // Common case first: no CR anywhere means pure LF, found at memchr speed.
            var cursor = firstLF + 1
            while let cr = Scan.find(Scan.cr, in: bytes, from: cursor, to: range.upperBound) {
                if cr + 1 < range.upperBound, bytes[cr + 1] == Scan.lf { return (.lf, true) }
                cursor = cr + 1
            }
            return (.lf, false)
        }
        var cursor = firstLF + 1
        while let lf = Scan.find(Scan.lf, in: bytes, from: cursor, to: range.upperBound) {
            if bytes[lf - 1] != Scan.cr { return (.crlf, true) }
            cursor = lf + 1
        }
        return (.crlf, false)
    }
}
