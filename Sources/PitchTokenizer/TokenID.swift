/// The name of a token in storage: 64-bit FNV-1a over the token's UTF-8 bytes.
///
/// Persisted ids must never change between builds or machines, so this is a fixed, documented hash with test
/// vectors, never Swift's `Hasher` (which is seeded per process). FNV-1a is tiny, fast on short strings and
/// well studied; at 64 bits, a user's few hundred thousand tokens collide with odds around 10⁻⁹.
public struct TokenID: Hashable, Comparable, Sendable, CustomStringConvertible {
    public let rawValue: UInt64

    public init(rawValue: UInt64) { self.rawValue = rawValue }

    /// FNV-1a, 64-bit: offset basis 0xcbf29ce484222325, prime 0x100000001b3.
    public init(hashing token: some StringProtocol) {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in token.utf8 {
            hash ^= UInt64(byte)
            hash &*= 0x0000_0100_0000_01b3
        }
        rawValue = hash
    }

    public static func < (lhs: TokenID, rhs: TokenID) -> Bool { lhs.rawValue < rhs.rawValue }

    public var description: String {
        let hex = String(rawValue, radix: 16)
        return String(repeating: "0", count: 16 - hex.count) + hex
    }
}
