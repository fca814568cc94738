/// Host names as evidence: the full host says which server, the registrable part which organisation.
enum Domains {
    /// Second-level labels under which country registries sell names ("example.co.uk", "example.com.au"), so the
    /// registrable part is three labels there. A short list instead of the Public Suffix List: it covers the
    /// suffixes that matter in mail, and a miss only makes the token a little broader.
    private static let secondLevels: [[UInt8]] = [
        "co", "com", "net", "org", "gov", "edu", "ac", "ne", "or", "go", "ltd", "plc", "mil", "gob", "nic", "sch",
        "nhs", "info", "biz",
    ].map { Array($0.utf8) }

    /// Lower-cases and checks a host name: letters, digits, `-`, `_` and dots, at least one dot, no empty label,
    /// and a top-level label that is not all digits unless the whole is an IPv4 address ("fetchmail-5.9.0" is a
    /// version, not a host). A trailing dot is dropped. Returns nil for anything else (IPv6 literals, junk).
    static func normalizedHost(_ bytes: some Collection<UInt8>) -> [UInt8]? {
        // Validate before allocating: most words handed in are no host at all.
        var dots = 0
        var previous: UInt8 = 0x2E
        var count = 0
        for byte in bytes {
            if byte == 0x2E {
                guard previous != 0x2E else { return nil }
                dots += 1
            } else {
                guard WordScanner.isASCIIWordByte(byte) || byte == 0x2D || byte == 0x5F else { return nil }
            }
            previous = byte
            count += 1
            guard count <= 254 else { return nil }
        }
        let trailingDot = count > 0 && previous == 0x2E
        guard dots - (trailingDot ? 1 : 0) >= 1 else { return nil }
        var host: [UInt8] = []
        host.reserveCapacity(count)
        for byte in bytes { host.append(byte &- 0x41 < 26 ? byte | 0x20 : byte) }
        if trailingDot { host.removeLast() }
        if let lastDot = host.lastIndex(of: 0x2E), host[(lastDot + 1)...].allSatisfy(WordScanner.isDigit) {
            guard isIPv4(host) else { return nil }
        }
        return host
    }

    /// Whether the host is a dotted-quad IPv4 address.
    static func isIPv4(_ host: [UInt8]) -> Bool {
        var parts = 0
        var digits = 0
        for byte in host {
            if byte == 0x2E {
                guard digits > 0 else { return false }
                parts += 1
                digits = 0
            } else if byte &- 0x30 < 10 {
                digits += 1
                guard digits <= 3 else { return false }
            } else {
                return false
            }
        }
        return parts == 3 && digits > 0
    }

    /// The /24 network of an IPv4 address ("209.85.146"): neighbouring senders share a reputation.
    static func network(ofIPv4 host: [UInt8]) -> ArraySlice<UInt8> {
        guard let lastDot = host.lastIndex(of: 0x2E) else { return host[...] }
        return host[..<lastDot]
    }

    /// The registrable part of a normalized host: the last two labels, or three under a country's second level
    /// ("mail.example.co.uk" → "example.co.uk"). IPv4 addresses stay whole.
    static func registrable(_ host: [UInt8]) -> ArraySlice<UInt8> {
        guard !isIPv4(host) else { return host[...] }
        // The last three dots, from the end.
        var last = -1, second = -1, third = -1
        var i = host.count - 1
        while i >= 0, third < 0 {
            if host[i] == 0x2E {
                if last < 0 { last = i } else if second < 0 { second = i } else { third = i }
            }
            i -= 1
        }
        guard second >= 0 else { return host[...] }
        let secondLevel = host[(second + 1)..<last]
        if host.count - last - 1 == 2, secondLevels.contains(where: { $0.elementsEqual(secondLevel) }) {
            return third >= 0 ? host[(third + 1)...] : host[...]
        }
        return host[(second + 1)...]
    }

    /// The host of an absolute http(s) or ftp URL ("https://user@Host.Example:8080/x" → "host.example").
    static func host(ofURL url: some StringProtocol) -> [UInt8]? {
        let bytes = Array(url.utf8.prefix(2_048))
        guard let colon = bytes.firstIndex(of: 0x3A), colon <= 5 else { return nil }
        let scheme = bytes[..<colon].map { $0 | 0x20 }
        guard scheme == Array("http".utf8) || scheme == Array("https".utf8) || scheme == Array("ftp".utf8) else {
            return nil
        }
        var start = colon + 1
        while start < bytes.count, bytes[start] == 0x2F || bytes[start] == 0x5C { start += 1 }
        var end = start
        while end < bytes.count {
            let byte = bytes[end]
            if byte == 0x2F || byte == 0x3F || byte == 0x23 || byte == 0x5C || byte <= 0x20 { break }
            end += 1
        }
        var authority = bytes[start..<end]
        if let at = authority.lastIndex(of: 0x40) { authority = authority[(at + 1)...] }
        if let port = authority.firstIndex(of: 0x3A) { authority = authority[..<port] }
        return normalizedHost(authority)
    }

    /// The scheme of a link, lower-cased, when it has one of letters ("mailto", "tel", "javascript").
    static func scheme(ofLink link: some StringProtocol) -> String? {
        var scheme: [UInt8] = []
        for byte in link.utf8.prefix(16) {
            if byte == 0x3A { return scheme.isEmpty ? nil : String(decoding: scheme, as: UTF8.self) }
            guard (byte | 0x20) &- 0x61 < 26 else { return nil }
            scheme.append(byte | 0x20)
        }
        return nil
    }
}
