import FoundationEssentials

#if canImport(Glibc)
import Glibc
#endif

/// `--json` output: one object per line, keys sorted so lines are stable to compare.
public enum JSON {
    public static func line(_ value: some Encodable) -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        // Our values always encode; an empty object rather than a crash if that ever changed.
        return (try? encoder.encode(value)).map { String(decoding: $0, as: UTF8.self) } ?? "{}"
    }
}

/// YYYY-MM-DD in UTC, as lists of contacts and quarantined messages print dates.
public enum CalendarDay {
    public static func of(_ seconds: Int64) -> String {
        var time = time_t(seconds)
        var parts = tm()
        gmtime_r(&time, &parts)
        func two(_ n: Int32) -> String { n < 10 ? "0\(n)" : "\(n)" }
        return "\(parts.tm_year + 1900)-\(two(parts.tm_mon + 1))-\(two(parts.tm_mday))"
    }
}
