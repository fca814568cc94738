import PitchMessage

/// The names of the header fields pitchfilter writes: `X-Pitch-Status` and `X-Pitch-Reasons`, or what the
/// configuration's `[header]` calls them (as bogofilter's `spam_header_name` renames X-Bogosity); and the tag a
/// pitch's Subject gets, if the configuration asks for one (`subject_tag`, as SpamAssassin's `rewrite_header`).
///
/// Whatever their names, these fields are never the message's own. They are no evidence about the sender (the
/// tokenizer skips them), no part of the message's identity (`MessageDigest`), and an incoming copy is a forgery
/// that every filter removes. So are fields of the names used before a rename (`former`), which mail tagged then
/// still carries, and fields named `X-Pitch-*`, whatever the names: a forged `X-Pitch-Status` cannot fool a Sieve
/// script written for the default. A Subject tag is no evidence either, nor part of the message's identity: the
/// tokenizer and the digest read the Subject without any of ours at its start (`subjectTags`), and a release from
/// the quarantine takes back the one our status field records (`subjectTagToTakeBack`).
public struct OwnFields: Sendable, Equatable {
    /// The verdict field: "pitch, score=0.9973, version=…".
    public let status: String
    /// The optional field that says why (`[classifier] reasons`).
    public let reasons: String
    /// Names these fields had before (`[header] former_fields`): still ours, never written.
    public let former: [String]
    private let lowercasedNames: Set<String>
    /// What the filters remove from an incoming message before they add their own: made once, since every digest
    /// and every edit of every message asks.
    public let removalPatterns: [FieldNamePattern]
    /// What the pipe filter, the Maildir service and the milter (unless it has its own) put in front of a pitch's
    /// Subject; empty for nothing.
    public private(set) var subjectTag = ""
    /// Tags another part of this installation writes or wrote (the milter's own `[milter] subject_tag`, and
    /// `former_subject_tags`): ours like `subjectTag` (`subjectTags`), never written by whoever uses these fields.
    public private(set) var otherSubjectTags: [String] = []

    /// Not checked by `problem(with:)`: every pipe-filter run starts with these, and building the reserved names'
    /// set for them cost it 25 µs (perf, 150 runs). `standardNamesPassTheirOwnChecks` checks them instead, and
    /// `init(status:reasons:former:)` takes this path for them too.
    public static let standard = OwnFields(unchecked: "X-Pitch-Status", reasons: "X-Pitch-Reasons")

    /// Every field whose name starts with this is ours, whatever the configuration says.
    public static let standardPrefix = "X-Pitch-"
    private static let lowercasedStandardPrefix = standardPrefix.lowercased()

    /// Each name must pass `problem(with:)`, and the two written must differ.
    public init(status: String, reasons: String, former: [String] = []) throws(InvalidName) {
        // The defaults, as a configuration file spells them out: nothing to check (see `standard`).
        if status == Self.standard.status, reasons == Self.standard.reasons, former.isEmpty {
            self = .standard
            return
        }
        for (name, standard) in [(status, "X-Pitch-Status"), (reasons, "X-Pitch-Reasons")] {
            if let problem = Self.problem(with: name) { throw InvalidName(name: name, problem: problem) }
            // The swapped pair would write a verdict where scripts written for the default look for reasons.
            if name.lowercased().hasPrefix(Self.lowercasedStandardPrefix), name.lowercased() != standard.lowercased() {
                throw InvalidName(name: name, problem: "is an X-Pitch- name other than \(standard)")
            }
        }
        guard status.lowercased() != reasons.lowercased() else {
            throw InvalidName(name: reasons, problem: "is also the status field's name")
        }
        for name in former {
            if let problem = Self.problem(with: name) { throw InvalidName(name: name, problem: problem) }
        }
        self.status = status
        self.reasons = reasons
        self.former = former
        lowercasedNames = Set(([status, reasons] + former).map { $0.lowercased() })
        removalPatterns = Self.patterns(for: [status, reasons] + former)
    }

    private init(unchecked status: String, reasons: String) {
        self.status = status
        self.reasons = reasons
        former = []
        lowercasedNames = [status.lowercased(), reasons.lowercased()]
        removalPatterns = Self.patterns(for: [status, reasons])
    }

    /// The same names with this Subject tag (empty for none), and the tags other parts of the installation write
    /// or wrote.
    public func withSubjectTag(_ tag: String, alsoOurs others: [String] = []) throws(InvalidName) -> OwnFields {
        for tag in [tag] + others {
            if let problem = Self.problem(withSubjectTag: tag) { throw InvalidName(name: tag, problem: problem) }
        }
        // "[PITCH]" and "[PITCH] (mx)": a Subject one put in would read as tagged with the other and the rest as
        // the sender's text, and the message and its tagged copy would be two messages (found in review).
        let ours = ([tag] + others).filter { !$0.isEmpty }
        for shorter in ours {
            if let longer = ours.first(where: { $0.hasPrefix(shorter + " ") }) {
                throw InvalidName(name: longer, problem: "begins with \"\(shorter)\" and a blank, and both are "
                    + "this installation's tags: a Subject tagged with it would read as tagged with the other")
            }
        }
        var fields = self
        fields.subjectTag = tag
        fields.otherSubjectTags = others.filter { !$0.isEmpty && $0 != tag }
        return fields
    }

    /// How the status field records the Subject tag it went in with: `pitch, score=…, version=…, tagged=[PITCH]`.
    /// Last, since the tag may hold anything printable.
    public static let taggedMarker = ", tagged="

    /// Every tag this installation writes or wrote (`subjectTag`, `otherSubjectTags`): no evidence and no part of a
    /// message's identity wherever they stand at the start of a Subject, whether a filter of ours or the sender
    /// put them there (nothing tells the two apart), so a message and each copy a filter tagged read the same.
    public var subjectTags: [String] {
        subjectTag.isEmpty ? otherSubjectTags : [subjectTag] + otherSubjectTags
    }

    /// The tag a release from the quarantine takes back: the one the status field records (`taggedMarker`), if the
    /// record also calls the message a pitch (only pitches are tagged) and names a tag this installation writes or
    /// wrote (`subjectTags`).
    ///
    /// Only a release asks, and only of the quarantined copy: the service's own field for a pitch it quarantined,
    /// written after it removed every incoming one (a message the user moved there from a folder the service
    /// does not watch keeps the one it came with). Filters of incoming mail never take a tag back: there a status
    /// field may be a sender's forgery, and a forged record took the sender's own "[PITCH]" off the Subject (found
    /// by two audits).
    public func subjectTagToTakeBack(in header: Header) -> String? {
        guard !subjectTag.isEmpty || !otherSubjectTags.isEmpty,
              let field = header.fields.first(where: { isStatusField(header, $0) }) else { return nil }
        let value = header.unfoldedValue(of: field)
        let verdict = value.drop { $0 == 0x20 || $0 == 0x09 }
        guard verdict.starts(with: Array("pitch,".utf8)),
              let tag = Self.tag(after: Array(Self.taggedMarker.utf8), in: value),
              subjectTags.contains(tag) else { return nil }
        return tag
    }

    /// The status field under any of its names: configured, former, or the standard one.
    private func isStatusField(_ header: Header, _ field: HeaderField) -> Bool {
        header.field(field, isNamed: status) || header.field(field, isNamed: Self.standard.status)
            || former.contains { header.field(field, isNamed: $0) }
    }

    private static func tag(after marker: [UInt8], in value: ArraySlice<UInt8>) -> String? {
        guard value.count > marker.count else { return nil }
        var start = value.startIndex
        while start + marker.count < value.endIndex {
            if value[start..<(start + marker.count)].elementsEqual(marker) {
                let tag = String(decoding: value[(start + marker.count)...], as: UTF8.self)
                return !tag.isEmpty && problem(withSubjectTag: tag) == nil ? tag : nil
            }
            start += 1
        }
        return nil
    }

    /// A Subject's decoded text without the tags at its start that this installation writes or wrote
    /// (`subjectTags`), however many: what the tokenizer reads (`SubjectTagEdit.untagged`).
    public static func untagged(subject: String, leavingOut tags: [String]) -> String {
        SubjectTagEdit.untagged(subject, leavingOut: tags)
    }

    /// Why `tag` cannot be a Subject tag, or nil when it can. Printable ASCII, since it goes into the header as it
    /// is (no RFC 2047 encoding), with no blank at either end, which would not survive a client's display, and
    /// short enough to leave the Subject its room.
    public static func problem(withSubjectTag tag: String) -> String? {
        guard tag.utf8.count <= 64 else { return "is longer than 64 characters" }
        guard tag.utf8.allSatisfy({ (0x20...0x7E).contains($0) }) else {
            return "may hold only printable ASCII characters (a header field carries no other bytes unencoded)"
        }
        guard tag.utf8.first != 0x20, tag.utf8.last != 0x20 else { return "may not start or end with a blank" }
        return nil
    }

    /// Why `name` cannot name one of our fields, or nil when it can. Incoming fields of that name are removed
    /// from every message, so it has to be an "X-" field (RFC 6648 deprecates the prefix for new standards, so no
    /// standard field has it) and none of the X- fields that mail software relies on (`reserved`). Letters,
    /// digits and hyphens, as the field names Sieve, procmail and mail clients match on, and short enough to
    /// leave a line its value.
    public static func problem(with name: String) -> String? {
        guard name.utf8.count <= 64 else { return "is longer than 64 characters" }
        guard name.utf8.allSatisfy({ byte in
            switch byte {
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
                 UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"): true
            default: false
            }
        }) else {
            return "may hold only ASCII letters, digits and hyphens"
        }
        let lowercased = name.lowercased()
        guard lowercased.hasPrefix("x-"), name.utf8.count > 2, !name.hasSuffix("-") else {
            return "must start with \"X-\" and go on after it: incoming fields of this name are removed from every "
                + "message, so it cannot be one that mail relies on"
        }
        if reserved.contains(lowercased) || reservedPrefixes.contains(where: { lowercased.hasPrefix($0) }) {
            return "is a field other mail software writes or reads, and incoming fields of this name would be removed"
        }
        return nil
    }

    /// X- fields with a meaning elsewhere: loop detection (procmail's X-Loop, Mailman's X-BeenThere), the
    /// delivery's own record (X-Original-To), what the tokenizer reads (X-Mailer), mailbox state kept in the
    /// message (mbox and Dovecot's X-UID, X-Keywords, X-Status, Thunderbird's X-Mozilla-*), and other filters'
    /// verdicts, which a rule elsewhere may act on.
    static let reserved: Set<String> = [
        "x-loop", "x-beenthere", "x-original-to", "x-delivered-to", "x-forwarded-to", "x-forwarded-for",
        "x-mailer", "x-priority", "x-msmail-priority", "x-uid", "x-keywords", "x-status", "x-imap", "x-imapbase",
        "x-bogosity", "x-spam", "x-spam-flag", "x-spam-status", "x-spam-level", "x-spam-score",
    ]
    static let reservedPrefixes = ["x-spam-", "x-rspamd-", "x-virus-", "x-mailman-", "x-mozilla-", "x-original-",
                                   "x-ms-exchange-", "x-google-", "x-gm-"]

    /// Whether a field of this name, lower-cased, is ours.
    public func contains(lowercasedName name: String) -> Bool {
        name.hasPrefix(Self.lowercasedStandardPrefix) || lowercasedNames.contains(name)
    }

    /// `X-Pitch-*` and each of `names`.
    private static func patterns(for names: [String]) -> [FieldNamePattern] {
        [FieldNamePattern(standardPrefix + "*")] + names.map { FieldNamePattern($0) }
    }

    /// A field name or Subject tag that cannot be ours, and why.
    public struct InvalidName: Error, Equatable, CustomStringConvertible {
        public let name: String
        public let problem: String

        public init(name: String, problem: String) {
            self.name = name
            self.problem = problem
        }

        public var description: String { "\"\(name)\" \(problem)" }
    }
}
