/// Which tokens are local: they say how one mailbox's mail is written and delivered (its header fields, the path
/// it took, its MIME structure, its addresses, names and hosts), not what a pitch says. "rcvd:outlook.com" means
/// one thing in a mailbox whose colleagues use Outlook and another where only strangers do.
///
/// The embedded starter model carries no local token (`StarterModelBuilder` in the command-line target), since
/// in the project's samples they say only how the samples were written. So while a young database borrows the
/// starter's counts, a local token's counts are the user's own, and it is scored against the user's own totals
/// (`Classifier.classify`'s `localTotals`). Scored against the totals with the starter's added, a field in every
/// message of 155 trained pitches and 2,075 trained ham read as ham evidence (155 of 1,340 pitches against 2,075
/// of 3,284 ham).
public enum LocalTokens {
    /// Prefixes of the tokens about form rather than content: the header's, the structure's and the links'. Not
    /// the Subject's words (`subj:`) or the form-letter signals (`sig:`), which are content.
    static let prefixes: [StaticString] = [
        "from:", "fromdom:", "fromhost:", "fromname:", "replyto:", "replytodom:", "rcpt:", "to:", "mailer:",
        "precedence:", "msgid:", "rcvds:", "rcvd:", "rcvdip:", "rcvdwith:", "hdr:", "head:", "ct:", "part:",
        "charset:", "cte:", "url:", "urlhost:", "urls:", "href:", "link:", "links:", "img:", "imgs:", "imgdom:",
        "defect:",
        // A company's legal footer (`Disclaimers`): how its mail is sent, as its mailer is.
        "footer:",
    ]

    /// Fields of the form that mean the same in everyone's mail, so the starter model keeps them: a mailing list's
    /// List-Id and a bulk sender's Precedence.
    static let portable: [StaticString] = ["hdr:list-id", "hdr:precedence", "precedence:"]

    public static func contains(_ token: String) -> Bool {
        var token = token
        return token.withUTF8 { contains($0) }
    }

    /// The same for a token's bytes (the tokenizer asks before it has made a String).
    static func contains(_ token: UnsafeBufferPointer<UInt8>) -> Bool {
        // Every prefix ends in a colon, and most tokens of a message are words with none.
        guard token.contains(UInt8(ascii: ":")) else { return false }
        return prefixes.contains { token.starts(with: $0) } && !portable.contains { token.starts(with: $0) }
    }
}

extension UnsafeBufferPointer<UInt8> {
    fileprivate func starts(with prefix: StaticString) -> Bool {
        let length = prefix.utf8CodeUnitCount
        guard count >= length else { return false }
        let start = prefix.utf8Start
        for index in 0..<length where self[index] != start[index] { return false }
        return true
    }
}
