import PitchEngine
import PitchMaildir
import PitchMessage
import PitchMilter
import PitchStore
import PitchTokenizer
import TOMLKit

#if canImport(Glibc)
import Glibc
#endif

/// The service's configuration: `/etc/pitchfilter/pitchfilter.toml`, every key documented in
/// `samples/pitchfilter.toml`.
///
/// Parsed into plain values and checked whole before anything uses it, so a SIGHUP with a broken file keeps the
/// running configuration and logs which key is wrong.
public struct Configuration: Sendable, Equatable {
    /// The token database; nil: the caller's default (`--db`, `$PITCHFILTER_DB`, the per-user path).
    public var databasePath: String?
    /// The model several hosts share in PostgreSQL (`[database] shared_model`); nil: the database's own.
    public var sharedModel: SharedModelSetting?
    /// Seconds between full scans of every watched folder: what catches a change inotify missed.
    public var scanInterval: Int = 60
    public var logLevel: LogLevelName = .info
    public var mailboxes: [MailboxConfiguration] = []
    /// The milter listener (`[milter]`), if any.
    public var milter: MilterConfiguration?
    /// The `[defaults]` policy: every mailbox's starting point, and the policy of `--maildir` mailboxes.
    public var defaultPolicy = MailboxPolicy()
    /// `[classifier]`: where the verdicts change, for the service and for the command line.
    public var cutoffs = Cutoffs.standard
    /// `[classifier] reasons`: add X-Pitch-Reasons (`Engine.reasonsValue`) wherever X-Pitch-Status goes.
    public var reasons = false
    /// `[header]`: what our fields are called, for the service and for the command line.
    public var ownFields = OwnFields.standard
    /// `[metrics] listen`: where Prometheus scrapes the service's counters, if anywhere.
    public var metrics: MetricsAddress?

    public struct MetricsAddress: Sendable, Equatable {
        public var host: String
        public var port: Int

        public init(host: String, port: Int) {
            self.host = host
            self.port = port
        }
    }

    public init(databasePath: String? = nil, scanInterval: Int = 60, logLevel: LogLevelName = .info,
                mailboxes: [MailboxConfiguration] = []) {
        self.databasePath = databasePath
        self.scanInterval = scanInterval
        self.logLevel = logLevel
        self.mailboxes = mailboxes
    }

    public enum LogLevelName: String, Sendable, CaseIterable {
        case trace, debug, info, notice, warning, error, critical
    }
}

/// One watched Maildir and what happens to its mail.
public struct MailboxConfiguration: Sendable, Equatable {
    public var path: String
    public var policy: MailboxPolicy

    public init(path: String, policy: MailboxPolicy = MailboxPolicy()) {
        self.path = path
        self.policy = policy
    }
}

/// What the service does with each verdict, and which folders mean what. The defaults are what a user who never
/// read the documentation can live with: pitches go where the user can see them, nothing else moves.
public struct MailboxPolicy: Sendable, Equatable {
    public enum PitchAction: String, Sendable, CaseIterable {
        /// Move into the quarantine folder, tagged.
        case quarantine
        /// Add our header and leave it in the INBOX.
        case tag
        case leave
    }

    public enum OtherAction: String, Sendable, CaseIterable {
        case tag, leave
    }

    public var onPitch: PitchAction = .quarantine
    /// Tagged by default: an unsure message is the one a user wants a reason for.
    public var onUnsure: OtherAction = .tag
    public var onHam: OtherAction = .leave
    public var quarantineFolder = ".Pitches"
    public var sentFolder = ".Sent"
    /// Folders whose arrivals teach nothing: deleting a pitch moves it to Trash, which is not a claim that it
    /// is ham, and a Junk folder belongs to some other filter.
    public var ignoredFolders: [String] = [".Trash", ".Junk", ".Spam", ".Drafts"]
    /// Messages larger than this are left alone, like the pipe filter's limit.
    public var maxMessageBytes = 32 << 20

    public init() {}
}

public struct ConfigurationError: Error, Equatable, CustomStringConvertible {
    /// The key at fault, as a user would write it (`mailbox[2].on_pitch`), or the file for a syntax error.
    public let key: String
    public let problem: String

    public init(key: String, _ problem: String) {
        self.key = key
        self.problem = problem
    }

    /// One line, whatever the file holds: a value quoted in the problem may hold a newline or an escape sequence
    /// (found by an audit: `"[PI\nTCH]"` cut the line, and the key was lost).
    public var description: String { TerminalText.safe("\(key): \(problem)") }
}

extension Configuration {
    /// The first line holding a NUL byte or the escape of one, if any (in a comment or a literal string too: a
    /// false alarm there costs a rewording, a NUL let through a wrong setting). Split by bytes, since a Character
    /// holds CR and LF together.
    static func lineWithNUL(_ text: String) -> Int? {
        let lines = text.utf8.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false)
        let escapes = [Array("\\u0000".utf8), Array("\\U00000000".utf8)]
        for (index, line) in lines.enumerated() {
            let bytes = Array(line)
            if bytes.contains(0) || escapes.contains(where: { bytes.firstRange(of: $0) != nil }) { return index + 1 }
        }
        return nil
    }

    /// The first line holding a table header whose name begins with a character no key begins with (`[[[mailbox]]`,
    /// `[ .a]`), if any. The TOML library asserts on those rather than reporting them: a typo in the file aborted the
    /// service at its reload, and again at every start (found by an audit). Strings, comments and the brackets of
    /// values are followed, so that only a header is judged: a line of an array that begins with "[" is none.
    static func lineWithBadTableHeader(_ text: String) -> Int? {
        let bytes = Array(text.utf8)
        func isKeyStart(_ byte: UInt8) -> Bool {
            byte &- 0x30 < 10 || (byte | 0x20) &- 0x61 < 26 || [UInt8(ascii: "_"), UInt8(ascii: "-"),
                                                                  UInt8(ascii: "\""), UInt8(ascii: "'"),
                                                                  UInt8(ascii: "]")].contains(byte)
        }
        func isBlank(_ byte: UInt8) -> Bool { byte == UInt8(ascii: " ") || byte == UInt8(ascii: "\t") }
        func startsWith(_ text: String, at index: Int) -> Bool {
            let pattern = Array(text.utf8)
            return bytes.count - index >= pattern.count && Array(bytes[index..<index + pattern.count]) == pattern
        }
        var line = 1, depth = 0, index = startsWith("\u{FEFF}", at: 0) ? 3 : 0  // a byte order mark, as the library
        var lineStart = true  // nothing but blanks yet on this line
        while index < bytes.count {
            let byte = bytes[index]
            switch byte {
            case UInt8(ascii: "\n"):
                line += 1
                lineStart = true
                index += 1
                continue
            case _ where isBlank(byte) || byte == UInt8(ascii: "\r"):
                index += 1
                continue
            case UInt8(ascii: "#"):
                while index < bytes.count, bytes[index] != UInt8(ascii: "\n") { index += 1 }
                continue
            case UInt8(ascii: "[") where lineStart && depth == 0:
                var name = index + 1
                if name < bytes.count, bytes[name] == UInt8(ascii: "[") { name += 1 }
                while name < bytes.count, isBlank(bytes[name]) { name += 1 }
                if name < bytes.count, !isKeyStart(bytes[name]) { return line }
                // The header's own brackets and quoted names are no value's: the rest of its line is passed over.
                while index < bytes.count, bytes[index] != UInt8(ascii: "\n") { index += 1 }
                continue
            case UInt8(ascii: "["), UInt8(ascii: "{"):
                depth += 1
            case UInt8(ascii: "]"), UInt8(ascii: "}"):
                depth = max(0, depth - 1)
            case UInt8(ascii: "\""), UInt8(ascii: "'"):
                let quote = byte
                let triple = startsWith(String(repeating: String(UnicodeScalar(quote)), count: 3), at: index)
                index += triple ? 3 : 1
                while index < bytes.count {
                    if quote == UInt8(ascii: "\""), bytes[index] == UInt8(ascii: "\\") {
                        // An escape: the next byte cannot end the string (a line-ending backslash's is a line).
                        if index + 1 < bytes.count, bytes[index + 1] == UInt8(ascii: "\n") { line += 1 }
                        index += 2
                        continue
                    }
                    if bytes[index] == UInt8(ascii: "\n") {
                        if !triple { break }  // an unended string: the library says so
                        line += 1
                    }
                    if bytes[index] == quote, !triple || startsWith(String(repeating: String(UnicodeScalar(quote)),
                                                                           count: 3), at: index) {
                        index += triple ? 3 : 1
                        // Up to two quotes more end a multi-line string too ("""a"""" is a and a quote).
                        for _ in 0..<2 where triple && index < bytes.count && bytes[index] == quote { index += 1 }
                        break
                    }
                    index += 1
                }
                lineStart = false
                continue
            default:
                break
            }
            lineStart = false
            index += 1
        }
        return nil
    }

    /// What a `key = value` line the parser stopped in the value of was meant to say, where the value is a bare word
    /// that is no TOML value: the word quoted, or for a switch, that it takes true or false. The library's words
    /// for such a value were about floating point or booleans (found by an audit: `log_level = info` said "Error
    /// while parsing floating-point: expected value-terminator, saw 'o'"). None for a line inside a multi-line
    /// string, or an error before the value (found in review: the hint went to string content and to the line after
    /// an unclosed array).
    static func unquotedTextHint(line number: Int, column: Int, of text: String) -> String? {
        // "\r\n" is one Character in Swift.
        let lines = text.split(omittingEmptySubsequences: false) { $0 == "\n" || $0 == "\r\n" }
        guard number >= 1, number <= lines.count else { return nil }
        let before = lines[..<(number - 1)].joined(separator: "\n")
        guard before.components(separatedBy: "\"\"\"").count % 2 == 1,
              before.components(separatedBy: "\'\'\'").count % 2 == 1 else { return nil }
        var line = Substring(lines[number - 1])
        if line.hasSuffix("\r") { line = line.dropLast() }
        guard let equals = line.firstIndex(of: "="), column > line.distance(from: line.startIndex, to: equals) + 1
        else { return nil }
        func trimmed(_ part: Substring) -> Substring {
            var part = part.drop { $0 == " " || $0 == "\t" }
            while part.last == " " || part.last == "\t" { part = part.dropLast() }
            return part
        }
        let key = trimmed(line[..<equals])
        var value = line[line.index(after: equals)...]
        if let comment = value.firstIndex(of: "#") { value = value[..<comment] }
        let word = trimmed(value)
        guard !key.isEmpty, key.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || "_-.".contains($0)) }),
              let first = word.first, first.isASCII, first.isLetter || "/.~".contains(first),
              !word.contains("\""), !["true", "false", "inf", "nan"].contains(word) else { return nil }
        if Self.switches.contains(String(key)) { return "\(key) takes true or false" }
        // A backslash would start an escape in a basic string: a literal one keeps it.
        if word.contains("\\") { return word.contains("'") ? nil : "text needs quotes: \(key) = '\(word)'" }
        return "text needs quotes: \(key) = \"\(word)\""
    }

    /// The keys that take true or false.
    static let switches: Set<String> = ["reasons", "hold_pitches", "learn_outbound"]

    /// Reads and checks a configuration file's text. `file` names it in errors.
    public static func parse(_ text: String, file: String) throws(ConfigurationError) -> Configuration {
        // The TOML library hands strings over as C strings: a value with a NUL in it (`\u0000`) came back cut there
        // (found by an audit: ".Pitch\u0000es" made the service use ".Pitch"), and a NUL byte ends the text it reads.
        if let line = Self.lineWithNUL(text) {
            throw ConfigurationError(key: file, "line \(line): a NUL character (a NUL byte, or \\u0000) cannot be "
                + "part of the configuration")
        }
        if let line = Self.lineWithBadTableHeader(text) {
            throw ConfigurationError(key: file, "line \(line): a table header's name must begin with a letter, a "
                + "digit, \"_\", \"-\" or a quote (as [mailbox] or [[mailbox]])")
        }
        let table: TOMLTable
        do {
            table = try TOMLTable(string: text)
        } catch let error as TOMLParseError {
            let line = error.source.begin.line
            let hint = Self.unquotedTextHint(line: line, column: error.source.begin.column, of: text)
                .map { "; \($0)" } ?? ""
            throw ConfigurationError(key: file, "line \(line): \(error.description)\(hint)")
        } catch {
            throw ConfigurationError(key: file, "\(error)")
        }
        var reader = TableReader(table: table, path: "")
        var configuration = Configuration()

        if var database = try reader.table("database") {
            configuration.databasePath = try database.path("path")
            let passwordFile = try database.path("shared_model_password_file")
            if let url = try database.string("shared_model") {
                do {
                    configuration.sharedModel = SharedModelSetting(address: try SharedModelAddress(parsing: url),
                                                                   passwordFile: passwordFile)
                } catch {
                    throw ConfigurationError(key: "database.shared_model", error.problem)
                }
            } else if passwordFile != nil {
                throw ConfigurationError(key: "database.shared_model_password_file", "without shared_model")
            }
            try database.finish()
        }
        if var classifier = try reader.table("classifier") {
            let pitch = try classifier.number("pitch_cutoff", in: 0...1) ?? Cutoffs.standard.pitch
            let ham = try classifier.number("ham_cutoff", in: 0...1) ?? Cutoffs.standard.ham
            if let reasons = try classifier.bool("reasons") { configuration.reasons = reasons }
            // A misspelt key before the two are compared: "pitch_cutof" would otherwise be reported as the ham
            // cutoff not being below the default pitch cutoff (found in review).
            try classifier.finish()
            guard let cutoffs = Cutoffs(pitch: pitch, ham: ham) else {
                throw ConfigurationError(key: "classifier.ham_cutoff",
                                         "must be below classifier.pitch_cutoff (\(ham) is not below \(pitch))")
            }
            configuration.cutoffs = cutoffs
        }
        var subjectTag = ""
        var formerSubjectTags: [String] = []
        if var header = try reader.table("header") {
            configuration.ownFields = try header.ownFields()
            subjectTag = try header.subjectTag("subject_tag") ?? ""
            formerSubjectTags = try header.subjectTags("former_subject_tags")
            try header.finish()
        }
        if var metrics = try reader.table("metrics") {
            // Required though `serve --metrics` replaces it: every command reads this file, without the service's
            // command line (found in review, after a change that let --metrics stand in for it).
            guard let listen = try metrics.string("listen") else {
                throw ConfigurationError(key: "metrics.listen", "missing: HOST:PORT on loopback, such as "
                    + "\"127.0.0.1:9641\" (serve --metrics replaces it, but the table needs its own)")
            }
            configuration.metrics = try MetricsServer.address(listen, key: "metrics.listen")
            try metrics.finish()
        }
        if var service = try reader.table("service") {
            if let interval = try service.integer("scan_interval", in: 1...86_400) {
                configuration.scanInterval = interval
            }
            if let level = try service.choice("log_level", of: LogLevelName.self) { configuration.logLevel = level }
            try service.finish()
        }
        if var milter = try reader.table("milter") {
            // Required though `serve --milter` replaces it, as [metrics] listen is.
            guard let listen = try milter.string("listen") else {
                throw ConfigurationError(key: "milter.listen", "missing: unix:/path or inet:127.0.0.1:PORT (serve "
                    + "--milter replaces it, but the table needs its own)")
            }
            var settings = MilterConfiguration(address: try MilterConfiguration.address(listen, key: "milter.listen"))
            if let mode = try milter.string("socket_mode") {
                guard case .unix(let path, _) = settings.address else {
                    throw ConfigurationError(key: "milter.socket_mode", "only for a unix socket")
                }
                // Digits only (UInt32 would take "+660"), and the owner must keep reading and writing the socket.
                guard (3...4).contains(mode.count), mode.allSatisfy({ ("0"..."7").contains($0) }),
                      let bits = UInt32(mode, radix: 8), bits <= 0o777, bits & 0o600 == 0o600 else {
                    throw ConfigurationError(key: "milter.socket_mode",
                                             "must be octal such as \"0660\", with read and write for the owner; "
                                                 + "found \"\(mode)\"")
                }
                settings.address = .unix(path: path, mode: bits)
            }
            if let hold = try milter.bool("hold_pitches") { settings.holdPitches = hold }
            if let learn = try milter.bool("learn_outbound") { settings.learnOutbound = learn }
            if let position = try milter.choice("header_position", of: MilterConfiguration.HeaderPosition.self) {
                settings.headerPosition = position
            }
            settings.subjectTag = try milter.subjectTag("subject_tag")
            if let sessions = try milter.integer("max_sessions", in: 1...10_000) { settings.maximumSessions = sessions }
            if let megabytes = try milter.integer("max_message_mib", in: 1...1024) {
                settings.maximumMessageBytes = megabytes << 20
            }
            if let megabytes = try milter.integer("max_buffered_mib", in: 1...65_536) {
                settings.maximumBufferedBytes = megabytes << 20
            } else {
                // A max_message_mib above the default budget, valid before the budget was, stays valid.
                settings.maximumBufferedBytes = max(settings.maximumBufferedBytes, settings.maximumMessageBytes)
            }
            try milter.finish()
            guard settings.maximumBufferedBytes >= settings.maximumMessageBytes else {
                throw ConfigurationError(key: "milter.max_buffered_mib", """
                    \(settings.maximumBufferedBytes >> 20) is below max_message_mib \
                    (\(settings.maximumMessageBytes >> 20)): a message of that size would never be kept
                    """)
            }
            configuration.milter = settings
        }
        do {
            // The milter's own tag is ours too, and so are those used before: left out of a message's tokens and
            // identity like the filters' tag, and taken back by a release where our record names it.
            configuration.ownFields = try configuration.ownFields.withSubjectTag(
                subjectTag, alsoOurs: (configuration.milter?.subjectTag.map { [$0] } ?? []) + formerSubjectTags)
        } catch {
            // Each tag was checked on its own above; what is left is two tags of ours that clash.
            let key = error.name == subjectTag ? "header.subject_tag"
                : error.name == configuration.milter?.subjectTag ? "milter.subject_tag" : "header.former_subject_tags"
            throw ConfigurationError(key: key, error.description)
        }
        var defaults = MailboxPolicy()
        if var table = try reader.table("defaults") {
            defaults = try table.policy(startingFrom: defaults)
            try table.finish()
        }
        configuration.defaultPolicy = defaults
        for var mailbox in try reader.tables("mailbox") {
            guard let path = try mailbox.path("path") else {
                throw ConfigurationError(key: mailbox.path + "path", "missing: the Maildir's directory")
            }
            let policy = try mailbox.policy(startingFrom: defaults)
            try mailbox.finish()
            configuration.mailboxes.append(MailboxConfiguration(path: path, policy: policy))
        }
        try reader.finish()
        try requireDistinctMailboxes(configuration.mailboxes, key: "mailbox")
        return configuration
    }

    /// The same directory spelt twice ("/m/./a", "/m/b/../a", a symbolic link) would be two workers on one
    /// Maildir, each learning the other's quarantine moves as the user's. One inside another (a Maildir and its own
    /// `.Pitches`) would be two workers on one folder too: the inner one's quarantine is a folder of the outer's
    /// folder, which no mail client lists, and each pitch was quarantined twice (found by an audit). `key`: the
    /// table, or `--maildir`.
    public static func requireDistinctMailboxes(_ mailboxes: [MailboxConfiguration],
                                                key: String) throws(ConfigurationError) {
        let paths = mailboxes.map { canonical(Maildir.trimmed($0.path)) }
        if let duplicate = paths.first(where: { path in paths.filter { $0 == path }.count > 1 }) {
            throw ConfigurationError(key: key, "\(duplicate) is listed twice")
        }
        for outer in paths {
            let within = outer == "/" ? "/" : outer + "/"
            if let inner = paths.first(where: { $0.hasPrefix(within) }) {
                throw ConfigurationError(key: key, "\(inner) is inside \(outer), which is listed too: two workers "
                    + "would share its files; list one of them")
            }
        }
    }
}

extension Configuration {
    /// The path the file system resolves `path` to: its longest existing ancestor through realpath(3) (links
    /// followed), then the rest as written with "." dropped and ".." taking back a component (none of the rest
    /// exists yet, so none of it is a link). A Maildir the MDA has not made yet is the usual case.
    static func canonical(_ path: String) -> String {
        var rest: [Substring] = []
        var head = path
        while true {
            if let resolved = realpath(head.isEmpty ? "/" : head, nil) {
                defer { free(resolved) }
                var parts = String(cString: resolved).split(separator: "/")
                for part in rest.reversed() {
                    switch part {
                    case ".", "": continue
                    case "..": if !parts.isEmpty { parts.removeLast() }
                    default: parts.append(part)
                    }
                }
                return "/" + parts.joined(separator: "/")
            }
            guard let slash = head.lastIndex(of: "/") else { return path }
            rest.append(head[head.index(after: slash)...])
            head = String(head[..<slash])
        }
    }
}

/// Reads keys off one TOML table, remembering which were used so that `finish` can reject the rest: a misspelt
/// key (`on_pich`) must be an error, not a silently ignored line.
private struct TableReader {
    let table: TOMLTable
    /// `mailbox[1].` — the prefix for this table's keys in error messages.
    let path: String
    var used: Set<String> = []

    init(table: TOMLTable, path: String) {
        self.table = table
        self.path = path
    }

    private mutating func value(_ key: String) -> TOMLValueConvertible? {
        used.insert(key)
        return table[key]
    }

    mutating func table(_ key: String) throws(ConfigurationError) -> TableReader? {
        guard let value = value(key) else { return nil }
        guard let table = value.table else { throw ConfigurationError(key: path + key, "must be a table ([\(key)])") }
        return TableReader(table: table, path: path + key + ".")
    }

    mutating func tables(_ key: String) throws(ConfigurationError) -> [TableReader] {
        guard let value = value(key) else { return [] }
        guard let array = value.array else {
            throw ConfigurationError(key: path + key, "must be an array of tables ([[\(key)]])")
        }
        var readers: [TableReader] = []
        for (index, element) in array.enumerated() {
            guard let table = element.table else {
                throw ConfigurationError(key: "\(path)\(key)[\(index + 1)]", "must be a table")
            }
            readers.append(TableReader(table: table, path: "\(path)\(key)[\(index + 1)]."))
        }
        return readers
    }

    mutating func string(_ key: String) throws(ConfigurationError) -> String? {
        guard let value = value(key) else { return nil }
        guard let string = value.string else { throw ConfigurationError(key: path + key, "must be a string") }
        return string
    }

    /// An absolute path: the service's working directory is /, so a relative one would surprise.
    mutating func path(_ key: String) throws(ConfigurationError) -> String? {
        guard let string = try string(key) else { return nil }
        guard string.hasPrefix("/") else {
            throw ConfigurationError(key: path + key, "must be an absolute path, found \"\(string)\"")
        }
        return string
    }

    /// A Maildir++ folder name: a leading dot, then names separated by dots (".Pitches", ".Archive.2026"), none
    /// empty, with no slash or control character.
    mutating func folder(_ key: String) throws(ConfigurationError) -> String? {
        guard let string = try string(key) else { return nil }
        try Self.checkFolder(string, key: path + key)
        return string
    }

    static func checkFolder(_ name: String, key: String) throws(ConfigurationError) {
        // Found by an audit: ".Pitch\0es" made the service use ".Pitch" (the system calls end the name at the NUL),
        // and "..Pitches" or ".Pitches." a folder no Maildir++ client shows as named.
        guard Maildir.isSubfolderName(name) else {
            throw ConfigurationError(
                key: key, "must be a Maildir++ folder name such as \".Pitches\", found \"\(TerminalText.safe(name))\"")
        }
    }

    mutating func bool(_ key: String) throws(ConfigurationError) -> Bool? {
        guard let value = value(key) else { return nil }
        guard let bool = value.bool else { throw ConfigurationError(key: path + key, "must be true or false") }
        return bool
    }

    mutating func integer(_ key: String, in range: ClosedRange<Int>) throws(ConfigurationError) -> Int? {
        guard let value = value(key) else { return nil }
        guard let integer = value.int else { throw ConfigurationError(key: path + key, "must be an integer") }
        guard range.contains(integer) else {
            throw ConfigurationError(key: path + key, "must be between \(range.lowerBound) and \(range.upperBound)")
        }
        return integer
    }

    /// A number, integer or not ("1" and "1.0" both): TOML keeps the two apart, people writing a cutoff do not.
    mutating func number(_ key: String, in range: ClosedRange<Double>) throws(ConfigurationError) -> Double? {
        guard let value = value(key) else { return nil }
        guard let number = value.double ?? value.int.map(Double.init), number.isFinite else {
            throw ConfigurationError(key: path + key, "must be a number")
        }
        guard range.contains(number) else {
            throw ConfigurationError(key: path + key, "must be between \(range.lowerBound) and \(range.upperBound)")
        }
        return number
    }

    mutating func choice<Choice: RawRepresentable & CaseIterable>(
        _ key: String, of: Choice.Type
    ) throws(ConfigurationError) -> Choice? where Choice.RawValue == String {
        guard let string = try string(key) else { return nil }
        guard let choice = Choice(rawValue: string) else {
            let allowed = Choice.allCases.map(\.rawValue).joined(separator: ", ")
            throw ConfigurationError(key: path + key, "must be one of \(allowed); found \"\(string)\"")
        }
        return choice
    }

    mutating func policy(startingFrom defaults: MailboxPolicy) throws(ConfigurationError) -> MailboxPolicy {
        var policy = defaults
        if let action = try choice("on_pitch", of: MailboxPolicy.PitchAction.self) { policy.onPitch = action }
        if let action = try choice("on_unsure", of: MailboxPolicy.OtherAction.self) { policy.onUnsure = action }
        if let action = try choice("on_ham", of: MailboxPolicy.OtherAction.self) { policy.onHam = action }
        if let folder = try folder("quarantine_folder") { policy.quarantineFolder = folder }
        if let folder = try folder("sent_folder") { policy.sentFolder = folder }
        if let value = value("ignored_folders") {
            guard let array = value.array else {
                throw ConfigurationError(key: path + "ignored_folders", "must be an array of folder names")
            }
            var folders: [String] = []
            for (index, element) in array.enumerated() {
                let key = "\(path)ignored_folders[\(index + 1)]"
                guard let name = element.string else { throw ConfigurationError(key: key, "must be a string") }
                try Self.checkFolder(name, key: key)
                folders.append(name)
            }
            policy.ignoredFolders = folders
        }
        if let megabytes = try integer("max_message_mib", in: 1...1024) { policy.maxMessageBytes = megabytes << 20 }
        // A misspelt key first: "ignored_folder" reported as the quarantine folder being one of ignored_folders
        // sent the admin to the key they had just changed (found in review). Every key of the table is read by now.
        try finish()
        if policy.quarantineFolder == policy.sentFolder {
            throw ConfigurationError(key: path + "sent_folder", "must differ from quarantine_folder")
        }
        // The user's deletions would all be learned as pitches (found by an audit); so would a subfolder's, which
        // teaches nothing as its parent does (`.Trash.Pitches` under `.Trash`, found by another).
        if let ignored = policy.ignoredFolders.first(where: {
            policy.quarantineFolder == $0 || policy.quarantineFolder.hasPrefix($0 + ".")
        }) {
            let (which, remedy) = ignored == policy.quarantineFolder
                ? ("is one of ignored_folders", "take it out of ignored_folders to quarantine there")
                : ("is a folder of \(ignored), one of ignored_folders", "choose one outside \(ignored)")
            throw ConfigurationError(key: path + "quarantine_folder",
                                     "\(policy.quarantineFolder) \(which), whose mail teaches nothing "
                                        + "(a quarantine folder's teaches pitch): \(remedy)")
        }
        return policy
    }

    /// An array of Subject tags, empty when the key is absent.
    mutating func subjectTags(_ key: String) throws(ConfigurationError) -> [String] {
        guard let value = value(key) else { return [] }
        guard let array = value.array else { throw ConfigurationError(key: path + key, "must be an array of tags") }
        var tags: [String] = []
        for (index, element) in array.enumerated() {
            let elementKey = "\(path)\(key)[\(index + 1)]"
            guard let tag = element.string else { throw ConfigurationError(key: elementKey, "must be a string") }
            if let problem = OwnFields.problem(withSubjectTag: tag), !tag.isEmpty {
                throw ConfigurationError(key: elementKey, "\"\(tag)\" \(problem)")
            }
            if !tag.isEmpty { tags.append(tag) }
        }
        return tags
    }

    /// A Subject tag (`OwnFields.problem(withSubjectTag:)`), or nil when the key is absent.
    mutating func subjectTag(_ key: String) throws(ConfigurationError) -> String? {
        guard let tag = try string(key) else { return nil }
        if let problem = OwnFields.problem(withSubjectTag: tag) {
            throw ConfigurationError(key: path + key, OwnFields.InvalidName(name: tag, problem: problem).description)
        }
        return tag
    }

    /// `[header]`: each name checked on its own, under its own key, then the two written against each other.
    mutating func ownFields() throws(ConfigurationError) -> OwnFields {
        let status = try string("status_field")
        let reasons = try string("reasons_field")
        var former: [String] = []
        if let value = value("former_fields") {
            guard let array = value.array else {
                throw ConfigurationError(key: path + "former_fields", "must be an array of field names")
            }
            for (index, element) in array.enumerated() {
                let key = "\(path)former_fields[\(index + 1)]"
                guard let name = element.string else { throw ConfigurationError(key: key, "must be a string") }
                if let problem = OwnFields.problem(with: name) {
                    throw ConfigurationError(key: key, OwnFields.InvalidName(name: name, problem: problem).description)
                }
                former.append(name)
            }
        }
        // Each against the other's default first, so a mistake is reported under the key that has it.
        let standard = OwnFields.standard
        for (key, trial) in [("status_field", status.map { (status: $0, reasons: standard.reasons) }),
                             ("reasons_field", reasons.map { (status: standard.status, reasons: $0) })] {
            guard let trial else { continue }
            do {
                _ = try OwnFields(status: trial.status, reasons: trial.reasons)
            } catch {
                throw ConfigurationError(key: path + key, error.description)
            }
        }
        do {
            return try OwnFields(status: status ?? OwnFields.standard.status,
                                 reasons: reasons ?? OwnFields.standard.reasons, former: former)
        } catch {
            throw ConfigurationError(key: path + "reasons_field", error.description)
        }
    }

    func finish() throws(ConfigurationError) {
        if let unknown = table.keys.sorted().first(where: { !used.contains($0) }) {
            throw ConfigurationError(key: path + unknown, "unknown key (misspelt?)")
        }
    }
}
