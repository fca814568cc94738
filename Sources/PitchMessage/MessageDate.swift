/// The Date field (RFC 5322 §3.3) as seconds since 1970, UTC.
///
/// Written here because nothing in the dependency graph parses it: FoundationEssentials has ISO 8601 only, and
/// mail dates are RFC 5322's, with the obsolete forms old mail still carries (§4.3): two- and three-digit years,
/// time-zone names, comments, missing seconds. Anything else gives nil rather than a guess.
public enum MessageDate {
    public static func parse(_ value: some Collection<UInt8>) -> Int64? {
        var words = Self.words(value)
        // The optional day of the week, "Thu," (RFC 5322) or "Thu" (sloppy senders).
        if let first = words.first, first.count >= 3, Self.weekdays.contains(String(first.prefix(3))) {
            words.removeFirst()
        }
        guard words.count >= 4,
              let day = Self.number(words[0]), (1...31).contains(day),
              let month = Self.months.firstIndex(of: String(words[1].prefix(3))),
              var year = Self.number(words[2])
        else { return nil }
        // §4.3: two-digit years are 19xx from 50 on, 20xx below; three-digit years add 1900.
        switch words[2].count {
        case 2: year += year < 50 ? 2000 : 1900
        case 3: year += 1900
        case 4: break
        default: return nil
        }
        let clock = words[3].split(separator: ":", omittingEmptySubsequences: false).map { Self.number($0) }
        guard clock.count == 2 || clock.count == 3, clock.allSatisfy({ $0 != nil }),
              let hour = clock[0], let minute = clock[1], (0...23).contains(hour), (0...59).contains(minute)
        else { return nil }
        let second = clock.count == 3 ? clock[2]! : 0
        guard (0...60).contains(second) else { return nil }
        let offset = words.count > 4 ? Self.zoneOffset(words[4]) : 0
        guard let offset else { return nil }
        let days = Self.daysSinceEpoch(year: year, month: month + 1, day: day)
        return ((days * 24 + Int64(hour)) * 60 + Int64(minute)) * 60 + Int64(second) - offset
    }

    /// Words separated by white space or commas, with (comments) left out.
    static func words(_ value: some Collection<UInt8>) -> [String] {
        var words: [String] = []
        var current: [UInt8] = []
        var depth = 0
        for byte in value {
            switch byte {
            case UInt8(ascii: "("):
                depth += 1
            case UInt8(ascii: ")"):
                depth = max(depth - 1, 0)
            case UInt8(ascii: " "), UInt8(ascii: "\t"), UInt8(ascii: ","), 0x0D, 0x0A:
                if depth == 0, !current.isEmpty {
                    words.append(String(decoding: current, as: UTF8.self))
                    current.removeAll()
                }
            default:
                if depth == 0 { current.append(ByteScanning.asciiLowercase(byte)) }
            }
            if words.count > 8 { break }
        }
        if !current.isEmpty { words.append(String(decoding: current, as: UTF8.self)) }
        return words
    }

    /// Seconds east of UTC: "+0100", "-0500", or an obsolete zone name. Unknown names count as UTC, as §4.3
    /// says for the military zones; a malformed numeric zone is nil.
    static func zoneOffset(_ zone: String) -> Int64? {
        let bytes = Array(zone.utf8)
        if let sign = bytes.first, sign == UInt8(ascii: "+") || sign == UInt8(ascii: "-") {
            guard bytes.count == 5, let number = Self.number(zone.dropFirst()), number % 100 < 60 else { return nil }
            let seconds = Int64(number / 100 * 3600 + number % 100 * 60)
            return sign == UInt8(ascii: "-") ? -seconds : seconds
        }
        return Self.zoneNames[zone].map { Int64($0) * 3600 } ?? 0
    }

    /// ASCII digits only (Int() would take a sign), at most 4 of them: nothing in a date is longer.
    static func number(_ text: some StringProtocol) -> Int? {
        guard !text.isEmpty, text.utf8.count <= 4, text.utf8.allSatisfy({ $0 &- UInt8(ascii: "0") < 10 }) else {
            return nil
        }
        return Int(text)
    }

    static let zoneNames: [String: Int] = [
        "ut": 0, "utc": 0, "gmt": 0, "z": 0,
        "edt": -4, "est": -5, "cdt": -5, "cst": -6, "mdt": -6, "mst": -7, "pdt": -7, "pst": -8,
    ]

    static let weekdays: Set<String> = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
    static let months = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"]

    /// Days from 1970-01-01 to the given date in the proleptic Gregorian calendar (Howard Hinnant's algorithm).
    static func daysSinceEpoch(year: Int, month: Int, day: Int) -> Int64 {
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yearOfEra = y - era * 400
        let dayOfYear = (153 * (month > 2 ? month - 3 : month + 9) + 2) / 5 + day - 1
        let dayOfEra = yearOfEra * 365 + yearOfEra / 4 - yearOfEra / 100 + dayOfYear
        return Int64(era * 146_097 + dayOfEra - 719_468)
    }
}

extension Message {
    /// The first Date field, parsed; nil if there is none or it cannot be read.
    public var date: Int64? {
        let header = header
        return header.first(named: "Date").flatMap { MessageDate.parse(header.unfoldedValue(of: $0)) }
    }
}
