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

/// A `--json` value that is written out as null when there is none. Swift's synthesized encoding leaves an absent
/// optional's key out, and a script reading a documented key found nothing (found in review: `eval --json`'s
/// `folds` in a holdout, its mean scores of a class with no message, `quarantine list --json`'s `path`).
@propertyWrapper
public struct NullWhenAbsent<Value: Encodable>: Encodable {
    public var wrappedValue: Value?

    public init(wrappedValue: Value?) { self.wrappedValue = wrappedValue }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        if let wrappedValue { try container.encode(wrappedValue) } else { try container.encodeNil() }
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
