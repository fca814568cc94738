import COpenSSL
import PitchMessage

/// The identity of a message in the training ledger: SHA-256 over the message as its sender wrote it.
///
/// The same message reaches us in different wrappings: with or without an mbox `From ` line, with CRLF from
/// Dovecot's Sieve filter or LF from a Maildir, with or without our own X-Pitch-* fields. All of those are
/// taken away before hashing, so learning a message from any of them counts once.
public enum MessageDigest {
    public static func of(_ message: Message) -> [UInt8] {
        let start = message.envelope?.upperBound ?? 0
        var normalised: [UInt8] = []
        normalised.reserveCapacity(message.raw.count)
        for piece in message.edit(removing: ownFields, inserting: []).pieces(of: message.raw) {
            let kept = piece.indices.clamped(to: start..<max(start, piece.endIndex))
            var previous: UInt8 = 0
            for byte in piece[kept] {
                // CRLF → LF: the CR is dropped when the LF arrives.
                if byte == 0x0A, previous == 0x0D { normalised.removeLast() }
                normalised.append(byte)
                previous = byte
            }
        }
        return sha256(normalised)
    }

    /// Our own header fields, which never belong to the message itself.
    public static let ownFields: [FieldNamePattern] = ["X-Pitch-*"]

    public static func sha256(_ bytes: [UInt8]) -> [UInt8] {
        var context = SHA256_CTX()
        var digest = [UInt8](repeating: 0, count: Int(SHA256_DIGEST_LENGTH))
        // The low-level calls cannot fail on a valid context: they only copy and compress.
        _ = SHA256_Init(&context)
        _ = bytes.withUnsafeBytes { SHA256_Update(&context, $0.baseAddress, $0.count) }
        _ = SHA256_Final(&digest, &context)
        return digest
    }
}
