/// What a person reads in an iCalendar invitation (RFC 5545) or a vCard (RFC 6350): the values of the properties a
/// calendar or address book shows (an event's summary, description, location and comment; a card's name, title,
/// role, organisation and note), unfolded and unescaped, one to a line.
///
/// The rest is syntax, identifiers and dates. Read as words, an invitation's keywords (`BEGIN:VCALENDAR`, `PRODID`,
/// `DTSTART`, `UID`, `TZID`, …) were a dozen strong pieces of evidence for one fact, that it carried an invitation;
/// every invitation in the samples came from a colleague, so a vendor's roundtable invitation with an `.ics`
/// attached scored 0.11 (samples/business bz-p-030). That a part is an invitation is still one token (`part:`).
public enum ContentLineText {
    /// The properties read for a part of this MIME type, or nil if the type is not written in content lines.
    public static func readableProperties(of mimeType: String) -> Set<String>? {
        switch mimeType {
        case "text/calendar": ["SUMMARY", "DESCRIPTION", "LOCATION", "COMMENT"]
        case "text/vcard", "text/x-vcard", "text/directory": ["FN", "TITLE", "ROLE", "ORG", "NOTE"]
        default: nil
        }
    }

    /// The values of `properties` in `text`, in order, one per line. Lines are unfolded first (a line that begins
    /// with a space or tab continues the one before); a value's escapes (`\n`, `\,`, `\;`, `\\`) are undone, and an
    /// ORG's components (separated by `;`) become words. Anything that is no content line is left out.
    public static func readable(_ text: String, properties: Set<String>) -> String {
        var values: [String] = []
        for line in unfolded(text) {
            guard let colon = valueStart(of: line) else { continue }
            let name = line[..<colon].prefix { $0 != ";" }.uppercased()
            guard properties.contains(name) else { continue }
            let value = unescaped(line[line.index(after: colon)...])
            if !value.isEmpty { values.append(value) }
        }
        return values.joined(separator: "\n")
    }

    /// The content lines with their continuations joined (RFC 5545 3.1): CRLF or LF, then one space or tab.
    static func unfolded(_ text: String) -> [Substring] {
        var lines: [Substring] = []
        var current = ""
        var started = false
        // `isNewline`: CRLF is one Character in Swift, and a lone CR or LF another.
        for line in text.split(omittingEmptySubsequences: false, whereSeparator: \.isNewline) {
            if let first = line.first, first == " " || first == "\t", started {
                current += line.dropFirst()
                continue
            }
            if started { lines.append(Substring(current)) }
            current = String(line)
            started = true
        }
        if started { lines.append(Substring(current)) }
        return lines
    }

    /// Where the value begins: the first colon outside a quoted parameter value (`ALTREP="http://…":…`).
    static func valueStart(of line: Substring) -> Substring.Index? {
        var quoted = false
        var index = line.startIndex
        while index < line.endIndex {
            switch line[index] {
            case "\"": quoted.toggle()
            case ":" where !quoted: return index
            default: break
            }
            index = line.index(after: index)
        }
        return nil
    }

    /// A TEXT value as written: `\n` and `\N` a line break, `\,` `\;` `\\` the character itself; an unescaped `;`
    /// (between an ORG's or a structured value's components) a space.
    static func unescaped(_ value: Substring) -> String {
        var result = ""
        var escaping = false
        for character in value {
            if escaping {
                result.append(character == "n" || character == "N" ? "\n" : character)
                escaping = false
            } else if character == "\\" {
                escaping = true
            } else {
                result.append(character == ";" ? " " : character)
            }
        }
        return result.trimmingSpaces()
    }
}

extension String {
    fileprivate func trimmingSpaces() -> String {
        let isSpace: (Character) -> Bool = { $0 == " " || $0 == "\t" || $0 == "\n" }
        guard let first = firstIndex(where: { !isSpace($0) }), let last = lastIndex(where: { !isSpace($0) }) else {
            return ""
        }
        return String(self[first...last])
    }
}
