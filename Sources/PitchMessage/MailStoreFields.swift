/// The header fields a mail store writes into the messages it keeps, which no sender wrote and which change while
/// the message sits there: the read and answered flags of mbox readers (Status, X-Status: mutt, Alpine, UW-IMAP,
/// Dovecot), the IMAP uid and keywords Dovecot and UW-IMAP keep in an mbox (X-UID, X-Keywords, and X-IMAP or
/// X-IMAPbase on a folder's first message), the lengths of mboxcl, mboxcl2 and Dovecot's mbox (Content-Length,
/// Lines), Thunderbird's flags (X-Mozilla-Status, X-Mozilla-Status2, X-Mozilla-Keys), Evolution's (X-Evolution),
/// and the labels of a Gmail Takeout export (X-Gmail-Labels).
///
/// A client rewrites them when its user reads, flags or files a message, so they are neither part of the message's
/// identity (a nightly `train` of an mbox that mutt rewrote counted every message it had marked read again) nor
/// evidence about its sender (whether the user keeps mail in an mbox says nothing of who wrote it). The fields a
/// delivery adds once (Return-Path, Delivered-To, Received) stay: they do not change when a client rewrites.
public enum MailStoreFields {
    /// Lower-cased.
    public static let names: Set<String> = [
        "status", "x-status", "x-uid", "x-keywords", "x-imap", "x-imapbase", "content-length", "lines",
        "x-mozilla-status", "x-mozilla-status2", "x-mozilla-keys", "x-evolution", "x-gmail-labels",
    ]

    /// The names as an edit removes them (`HeaderEdit`).
    public static let patterns: [FieldNamePattern] = names.sorted().map { FieldNamePattern($0) }
}
