import Logging
import PitchMessage
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// Log lines on standard error, one per event, with the syslog priority prefix (`<3>`) journald reads when the
/// service runs under systemd, and a plain level word in a terminal.
///
/// swift-log's StreamLogHandler prints a timestamp and label journald already records, and no priority, so every
/// line would land in the journal as "info".
public struct JournalLogHandler: LogHandler {
    /// Shared by every logger of the process, so that a reload's `log_level` reaches them all.
    let level: LogLevelSetting
    public var metadata: Logger.Metadata = [:]
    /// Under systemd with standard error connected to the journal (`$JOURNAL_STREAM` is set).
    let toJournal: Bool

    public init(level: LogLevelSetting, toJournal: Bool) {
        self.level = level
        self.toJournal = toJournal
    }

    public var logLevel: Logger.Level {
        get { level.value }
        set { level.value = newValue }
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        let merged = metadata.merging(event.metadata ?? [:]) { $1 }
        // Senders, subjects and file names come from outside: an escape sequence in one reached the terminal of
        // whoever read the log, and a newline in a file name split a line in two.
        let fields = merged.sorted { $0.key < $1.key }.map { "\($0.key)=\(TerminalText.safe("\($0.value)"))" }
            .joined(separator: " ")
        let prefix = toJournal ? "<\(Self.priority(event.level))>" : "pitchfilter \(event.level): "
        let line = prefix + TerminalText.safe("\(event.message)") + (fields.isEmpty ? "" : " " + fields) + "\n"
        let bytes = Array(line.utf8)
        // One write(2) per line, so lines from two threads never interleave.
        _ = bytes.withUnsafeBytes { write(2, $0.baseAddress, $0.count) }
    }

    /// syslog(3) priorities: what journald files the line under.
    static func priority(_ level: Logger.Level) -> Int {
        switch level {
        case .trace, .debug: 7
        case .info: 6
        case .notice: 5
        case .warning: 4
        case .error: 3
        case .critical: 2
        }
    }
}

/// The service's log level, which SIGHUP may change while every logger is in use (`[service] log_level`).
public final class LogLevelSetting: Sendable {
    private let raw: Atomic<Int>

    public init(_ level: Logger.Level) {
        raw = Atomic(Self.levels.firstIndex(of: level) ?? 0)
    }

    public var value: Logger.Level {
        get { Self.levels[raw.load(ordering: .relaxed)] }
        set { raw.store(Self.levels.firstIndex(of: newValue) ?? 0, ordering: .relaxed) }
    }

    private static let levels = Logger.Level.allCases
}

extension Logger.Level {
    public init(_ name: Configuration.LogLevelName) {
        self = switch name {
        case .trace: .trace
        case .debug: .debug
        case .info: .info
        case .notice: .notice
        case .warning: .warning
        case .error: .error
        case .critical: .critical
        }
    }
}
