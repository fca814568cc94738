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

/// Text from a message, for a terminal: token texts come from the sender, and an escape sequence in one would
/// reach the user's terminal (blinking text, a changed title, worse). Control characters (C0, DEL, C1) are
/// written as \u{1B}; everything printable, in any script, stays as it is.
public enum TerminalText {
    public static func safe(_ text: String) -> String {
        guard text.unicodeScalars.contains(where: isControl) else { return text }
        var out = ""
        for scalar in text.unicodeScalars {
            if isControl(scalar) {
                out += "\\u{" + String(scalar.value, radix: 16, uppercase: true) + "}"
            } else {
                out.unicodeScalars.append(scalar)
            }
        }
        return out
    }

    static func isControl(_ scalar: Unicode.Scalar) -> Bool {
        scalar.value < 0x20 || (0x7F...0x9F).contains(scalar.value)
    }
}
