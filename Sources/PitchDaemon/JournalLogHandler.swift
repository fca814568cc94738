import Logging

#if canImport(Glibc)
import Glibc
#endif

/// Log lines on standard error, one per event, with the syslog priority prefix (`<3>`) journald reads when the
/// service runs under systemd, and a plain level word in a terminal.
///
/// swift-log's StreamLogHandler prints a timestamp and label journald already records, and no priority, so every
/// line would land in the journal as "info".
public struct JournalLogHandler: LogHandler {
    public var logLevel: Logger.Level
    public var metadata: Logger.Metadata = [:]
    /// Under systemd with standard error connected to the journal (`$JOURNAL_STREAM` is set).
    let toJournal: Bool

    public init(level: Logger.Level, toJournal: Bool) {
        logLevel = level
        self.toJournal = toJournal
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        let merged = metadata.merging(event.metadata ?? [:]) { $1 }
        let fields = merged.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " ")
        let prefix = toJournal ? "<\(Self.priority(event.level))>" : "pitchfilter \(event.level): "
        let line = prefix + "\(event.message)" + (fields.isEmpty ? "" : " " + fields) + "\n"
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
