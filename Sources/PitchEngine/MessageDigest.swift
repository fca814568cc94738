import COpenSSL
import PitchMessage
import PitchTokenizer

#if canImport(Glibc)
import Glibc
#endif

/// The identity of a message in the training ledger: SHA-256 over the message as its sender wrote it.
///
/// The same message reaches us in different wrappings: with or without an mbox `From ` line, with CRLF from
/// Dovecot's Sieve filter or LF from a Maildir, with or without our own fields and Subject tag (`OwnFields`; a tag is
/// one this installation writes or wrote, `subject_tag` and `former_subject_tags`). All of those are taken away
/// before hashing, so learning a message from any of them counts once. (So a sender's own "[PITCH] Hi" is the
/// same message as their "Hi": a price paid only by a sender who begins a Subject with our tag.) So are the
/// fields a mail store keeps in its messages and rewrites as their user reads and files them (`MailStoreFields`):
/// mutt's Status, Dovecot's X-UID, Thunderbird's X-Mozilla-Status.
public enum MessageDigest {
    public static func of(_ message: Message, ownFields: OwnFields) -> [UInt8] {
        hash(message, message.edit(removing: ownFields.removalPatterns + MailStoreFields.patterns, inserting: [],
                                   subjectTag: .leaveOut(ownFields.subjectTags)))
    }

    /// The digest as it was taken before the mail store's fields (`MailStoreFields`) were left out, or nil where it
    /// is `of(_:ownFields:)`, for a message with none of them (nearly every one outside an mbox). A ledger, a
    /// contact book and a quarantine written before know a message by it: training looks it up and files the entry
    /// under today's (`TrainingItem.formerDigest`), so an mbox learned before is not learned again. It finds the
    /// message only while the store's fields are what they were then: one mutt or Dovecot has rewritten since is new
    /// to such a database once.
    public static func former(of message: Message, ownFields: OwnFields) -> [UInt8]? {
        identity(of: message, ownFields: ownFields).former
    }

    /// A message's digest and, if another, its former one: what a record written at any time may hold.
    public struct Identity: Sendable {
        public let digest: [UInt8]
        public let former: [UInt8]?

        /// Whether `recorded`, a digest a ledger, quarantine or journal holds, is this message's.
        public func matches(_ recorded: [UInt8]) -> Bool { recorded == digest || recorded == former }
    }

    /// `of` and `former` of the message, its header edited twice, not three times.
    public static func identity(of message: Message, ownFields: OwnFields) -> Identity {
        let formerEdit = message.edit(removing: ownFields.removalPatterns, inserting: [],
                                      subjectTag: .leaveOut(ownFields.subjectTags))
        // The removals the edit itself finds, as it reads the header (past a line that is no field, say).
        let edit = message.edit(removing: ownFields.removalPatterns + MailStoreFields.patterns, inserting: [],
                                subjectTag: .leaveOut(ownFields.subjectTags))
        return Identity(digest: hash(message, edit),
                        former: edit.removed == formerEdit.removed ? nil : hash(message, formerEdit))
    }

    private static func hash(_ message: Message, _ edit: HeaderEdit) -> [UInt8] {
        let start = message.envelope?.upperBound ?? 0
        var context = SHA256_CTX()
        _ = SHA256_Init(&context)
        // Every tag of ours at the Subject's start, whatever a status field records (`.leaveOut`): a filter puts
        // its tag in only where the Subject does not begin with it, so the message and its tagged copy read the
        // same only so.
        for piece in edit.pieces(of: message.raw) {
            let kept = piece.indices.clamped(to: start..<max(start, piece.endIndex))
            piece[kept].withUnsafeBytes { hashDroppingCarriageReturns($0, into: &context) }
        }
        var digest = [UInt8](repeating: 0, count: Int(SHA256_DIGEST_LENGTH))
        _ = SHA256_Final(&digest, &context)
        return digest
    }

    /// CRLF → LF: the runs between the CRs that come right before an LF are hashed, and those CRs are not. Fed to
    /// SHA-256 in place; copying the message byte by byte first was 3 % of a training run.
    private static func hashDroppingCarriageReturns(_ bytes: UnsafeRawBufferPointer, into context: inout SHA256_CTX) {
        guard let base = bytes.baseAddress else { return }
        var runStart = 0
        var searchFrom = 0
        while searchFrom < bytes.count, let found = memchr(base + searchFrom, 0x0D, bytes.count - searchFrom) {
            let carriageReturn = base.distance(to: UnsafeRawPointer(found))
            if carriageReturn + 1 < bytes.count, bytes[carriageReturn + 1] == 0x0A {
                _ = SHA256_Update(&context, base + runStart, carriageReturn - runStart)
                runStart = carriageReturn + 1
            }
            searchFrom = carriageReturn + 1
        }
        _ = SHA256_Update(&context, base + runStart, bytes.count - runStart)
    }

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
