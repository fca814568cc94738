import PitchMessage

/// The names of the header fields pitchfilter writes: `X-Pitch-Status` and `X-Pitch-Reasons`, or what the
/// configuration's `[header]` calls them (as bogofilter's `spam_header_name` renames X-Bogosity).
///
/// Whatever their names, these fields are never the message's own. They are no evidence about the sender (the
/// tokenizer skips them), no part of the message's identity (`MessageDigest`), and an incoming copy is a forgery
/// that every filter removes. Fields named `X-Pitch-*` stay ours under any names, so mail tagged before a rename
/// is still recognised, and a forged `X-Pitch-Status` cannot fool a Sieve script written for the default.
public struct OwnFields: Sendable, Equatable {
    /// The verdict field: "pitch, score=0.9973, version=…".
    public let status: String
    /// The optional field that says why (`[classifier] reasons`).
    public let reasons: String
    private let lowercasedStatus: String
    private let lowercasedReasons: String

    public static let standard = try! OwnFields(status: "X-Pitch-Status", reasons: "X-Pitch-Reasons")

    /// Every field whose name starts with this is ours, whatever the configuration says.
    public static let standardPrefix = "X-Pitch-"
    private static let lowercasedStandardPrefix = standardPrefix.lowercased()

    /// Both names must pass `problem(with:)` and differ.
    public init(status: String, reasons: String) throws(InvalidName) {
        if let problem = Self.problem(with: status) { throw InvalidName(name: status, problem: problem) }
        if let problem = Self.problem(with: reasons) { throw InvalidName(name: reasons, problem: problem) }
        guard status.lowercased() != reasons.lowercased() else {
            throw InvalidName(name: reasons, problem: "is also the status field's name")
        }
        self.status = status
        self.reasons = reasons
        lowercasedStatus = status.lowercased()
        lowercasedReasons = reasons.lowercased()
    }

    /// Why `name` cannot name one of our fields, or nil when it can. Incoming fields of that name are removed
    /// from every message, so it has to be one no mail relies on: an "X-" field (RFC 6648 deprecates the prefix
    /// for new standards, which is why no standard field has it). Letters, digits and hyphens, as every header
    /// field name that Sieve, procmail and mail clients match on, and short enough to leave a line its value.
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
        guard name.lowercased().hasPrefix("x-"), name.utf8.count > 2, !name.hasSuffix("-") else {
            return "must start with \"X-\" and go on after it: incoming fields of this name are removed from every "
                + "message, so it cannot be one that mail relies on"
        }
        return nil
    }

    /// Whether a field of this name, lower-cased, is ours.
    public func contains(lowercasedName name: String) -> Bool {
        name.hasPrefix(Self.lowercasedStandardPrefix) || name == lowercasedStatus || name == lowercasedReasons
    }

    /// What the filters remove from an incoming message before they add their own.
    public var removalPatterns: [FieldNamePattern] {
        [FieldNamePattern(Self.standardPrefix + "*"), FieldNamePattern(status), FieldNamePattern(reasons)]
    }

    public struct InvalidName: Error, Equatable, CustomStringConvertible {
        public let name: String
        public let problem: String

        public var description: String { "\"\(name)\" \(problem)" }
    }
}
