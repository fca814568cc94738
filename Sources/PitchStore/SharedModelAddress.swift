/// Where the model shared by several mail hosts lives (`[database] shared_model`): a PostgreSQL database named the
/// way libpq names one, `postgresql://USER[:PASSWORD]@HOST[:PORT]/DATABASE[?sslmode=MODE&sslrootcert=FILE]`, or over
/// a unix socket with `?host=/run/postgresql` (the directory holding `.s.PGSQL.PORT`).
///
/// Parsed by hand: the pipe filter links no Foundation, and libpq's URL is a small, fixed grammar.
public struct SharedModelAddress: Sendable, Equatable, CustomStringConvertible {
    public enum Endpoint: Sendable, Equatable {
        case tcp(host: String, port: Int)
        /// The socket file itself: the directory given, and `.s.PGSQL.PORT`.
        case unixSocket(path: String)
    }

    /// libpq's `sslmode`, as libpq means them: `prefer` (its default) uses TLS if the server offers it and goes
    /// on without it; `require` refuses to go on without it; neither checks the server's certificate (Debian's
    /// PostgreSQL comes with a self-signed one). `verify-ca` checks that a trusted authority signed it, and
    /// `verify-full` also that it names the host: what a model reached over a network it does not trust needs.
    public enum TLSMode: String, Sendable, Equatable, CaseIterable {
        case disable, prefer, require
        case verifyCA = "verify-ca"
        case verifyFull = "verify-full"

        /// Whether the server's certificate is checked against the trusted authorities.
        public var checksCertificate: Bool { self == .verifyCA || self == .verifyFull }
    }

    /// Which authorities `verify-ca` and `verify-full` trust (libpq's `sslrootcert`).
    public enum TrustedAuthorities: Sendable, Equatable {
        /// The system's trust store, as without `sslrootcert` (or with `sslrootcert=system`).
        case system
        /// The PEM certificates in this file, and no others: a private authority, such as the one that signed a
        /// database server's own certificate. Read when connecting, like the password file.
        case file(String)
    }

    public var endpoint: Endpoint
    public var user: String
    /// From the URL; a `shared_model_password_file` is better, since the configuration file is often readable.
    public var password: String?
    public var database: String
    public var tls: TLSMode
    public var authorities: TrustedAuthorities
    /// As written, password included: for handing on (`config-values`), never for a log.
    public let text: String

    public struct Invalid: Error, Equatable, CustomStringConvertible {
        public let problem: String
        public var description: String { problem }
    }

    public init(parsing text: String) throws(Invalid) {
        self.text = text
        // Such a byte would end a `config-values` line, or a log's, in the middle, password and all.
        guard !text.unicodeScalars.contains(where: { $0.value < 0x20 || $0.value == 0x7F }) else {
            throw Invalid(problem: "holds a control character")
        }
        var rest = Substring(text)
        guard let scheme = ["postgresql://", "postgres://"].first(where: { rest.hasPrefix($0) }) else {
            throw Invalid(problem: "must start with postgresql:// (postgresql://USER@HOST/DATABASE)")
        }
        rest = rest.dropFirst(scheme.count)
        var query = Substring("")
        if let mark = rest.firstIndex(of: "?") {
            query = rest[rest.index(after: mark)...]
            rest = rest[..<mark]
        }
        guard let slash = rest.firstIndex(of: "/") else {
            throw Invalid(problem: "names no database (postgresql://USER@HOST/DATABASE)")
        }
        database = try Self.decoded(rest[rest.index(after: slash)...], "the database name")
        guard !database.isEmpty else { throw Invalid(problem: "names no database (postgresql://USER@HOST/DATABASE)") }
        var authority = rest[..<slash]
        user = ""
        password = nil
        if let at = authority.lastIndex(of: "@") {
            let credentials = authority[..<at]
            authority = authority[authority.index(after: at)...]
            if let colon = credentials.firstIndex(of: ":") {
                user = try Self.decoded(credentials[..<colon], "the user name")
                password = try Self.decoded(credentials[credentials.index(after: colon)...], "the password")
            } else {
                user = try Self.decoded(credentials, "the user name")
            }
        }
        guard !user.isEmpty else { throw Invalid(problem: "names no user (postgresql://USER@HOST/DATABASE)") }
        var host = String(authority)
        var port = 5432
        if host.hasPrefix("[") {
            guard let close = host.firstIndex(of: "]") else { throw Invalid(problem: "has an unclosed [ in its host") }
            let after = host[host.index(after: close)...]
            if after.hasPrefix(":") { port = try Self.port(after.dropFirst()) } else if !after.isEmpty {
                throw Invalid(problem: "has \"\(after)\" after its host")
            }
            host = String(host[host.index(after: host.startIndex)..<close])
        } else if let colon = host.lastIndex(of: ":") {
            port = try Self.port(host[host.index(after: colon)...])
            host = String(host[..<colon])
        }
        var mode: TLSMode?
        var rootCertificates: String?
        var socketDirectory: String?
        for parameter in query.split(separator: "&") where !parameter.isEmpty {
            let pair = parameter.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            let value = pair.count == 2 ? try Self.decoded(pair[1], "a parameter") : ""
            switch pair[0] {
            case "sslmode":
                guard let given = TLSMode(rawValue: value) else {
                    throw Invalid(problem: "sslmode must be disable, prefer, require, verify-ca or verify-full, "
                        + "found \"\(value)\"")
                }
                mode = given
            case "sslrootcert":
                // A relative path would be read from wherever the service or a pipe filter happens to start.
                guard value == "system" || value.hasPrefix("/") else {
                    throw Invalid(problem: "sslrootcert must be a certificate file's absolute path, or system")
                }
                rootCertificates = value
            case "host":
                guard value.hasPrefix("/") else { throw Invalid(problem: "host= must be a socket directory") }
                socketDirectory = value
            default:
                throw Invalid(problem: "has an unknown parameter \"\(pair[0])\" (sslmode, sslrootcert and host are "
                    + "understood)")
            }
        }
        // libpq's rules, where they are safe. `sslrootcert=system` means verify-full and refuses anything weaker:
        // anyone can get a certificate a public authority signed for a name of their own, so verify-ca proves
        // nothing with those authorities. A file of authorities turns `require` into `verify-ca`; libpq then goes on
        // unchecked when the file is missing, where connecting fails here. With `prefer` (the default) or
        // `disable` a file is refused: it would look like a check that never happens.
        switch (rootCertificates, mode) {
        case ("system"?, nil), ("system"?, .verifyFull?):
            tls = .verifyFull
        case ("system"?, let given?):
            throw Invalid(problem: "sslrootcert=system needs sslmode=verify-full, found \"\(given.rawValue)\"")
        case (_?, .require?):
            tls = .verifyCA
        case (_?, nil), (_?, .prefer?), (_?, .disable?):
            throw Invalid(problem: "sslrootcert needs sslmode=verify-full, verify-ca or require (the certificate "
                + "is checked against it), found \"\((mode ?? .prefer).rawValue)\"")
        case (nil, .verifyCA?):
            // libpq fails without its root.crt; the system's authorities would make verify-ca prove nothing.
            throw Invalid(problem: "sslmode=verify-ca needs sslrootcert=FILE, the authority that signed the "
                + "server's certificate")
        default:
            tls = mode ?? .prefer
        }
        authorities = rootCertificates.map { $0 == "system" ? .system : .file($0) } ?? .system
        if let socketDirectory {
            guard host.isEmpty else { throw Invalid(problem: "names both a host and a socket directory") }
            endpoint = .unixSocket(path: socketDirectory + "/.s.PGSQL.\(port)")
        } else {
            guard !host.isEmpty else {
                throw Invalid(problem: "names no host (postgresql://USER@HOST/DATABASE, or ?host=/run/postgresql)")
            }
            endpoint = .tcp(host: host, port: port)
        }
    }

    /// The address without its password, for logs and `serve --check`.
    public var description: String {
        switch endpoint {
        case .tcp(let host, let port):
            let shown = host.contains(":") ? "[\(host)]" : host
            var shownAuthorities = ""
            if tls.checksCertificate, case .file(let path) = authorities { shownAuthorities = "&sslrootcert=\(path)" }
            return "postgresql://\(user)@\(shown):\(port)/\(database)?sslmode=\(tls.rawValue)\(shownAuthorities)"
        case .unixSocket(let path):
            return "postgresql://\(user)@/\(database) (socket \(path))"
        }
    }

    private static func port(_ text: Substring) throws(Invalid) -> Int {
        guard text.allSatisfy(\.isASCII) && text.allSatisfy(\.isNumber), let port = Int(text), (1...65_535).contains(port)
        else {
            throw Invalid(problem: "\"\(text)\" is not a port number (1 to 65535)")
        }
        return port
    }

    private static func isHexDigit(_ byte: UInt8) -> Bool {
        (0x30...0x39).contains(byte) || (0x41...0x46).contains(byte) || (0x61...0x66).contains(byte)
    }

    /// %XX escapes decoded, as URLs write "@", ":" and "/" in names and passwords.
    private static func decoded(_ text: Substring, _ what: String) throws(Invalid) -> String {
        var bytes: [UInt8] = []
        var index = text.utf8.startIndex
        while index < text.utf8.endIndex {
            let byte = text.utf8[index]
            if byte == UInt8(ascii: "%") {
                let digits = text.utf8[text.utf8.index(after: index)...].prefix(2)
                guard digits.count == 2, digits.allSatisfy({ Self.isHexDigit($0) }),
                      let value = UInt8(String(decoding: digits, as: UTF8.self), radix: 16) else {
                    throw Invalid(problem: "has a broken %-escape in \(what)")
                }
                bytes.append(value)
                index = text.utf8.index(index, offsetBy: 3)
            } else {
                bytes.append(byte)
                index = text.utf8.index(after: index)
            }
        }
        guard let decoded = String(validating: bytes, as: UTF8.self), !decoded.utf8.contains(0) else {
            throw Invalid(problem: "has \(what) that is not UTF-8 text")
        }
        return decoded
    }
}
