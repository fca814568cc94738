#if canImport(Glibc)
import Glibc
#endif

/// A Maildir file name: `<unique>[,<key>=<value>…][:2,<flags>]`.
///
/// The unique part identifies the message for as long as it stays in its folder: a client that changes flags
/// renames `new/X` to `cur/X:2,S`, and Dovecot appends `,S=<size>,W=<virtual size>`. Everything the service
/// remembers about a file is keyed by `unique`, so none of those renames makes it look like a new message.
public struct MaildirName: Hashable, Sendable, CustomStringConvertible {
    public let fileName: String

    public init(_ fileName: String) {
        self.fileName = fileName
    }

    /// The part before the first `,` or `:`.
    public var unique: String {
        String(fileName.prefix { $0 != "," && $0 != ":" })
    }

    /// The info after `:`, flags included (`2,FS`), or nil for a message not yet seen by a client.
    public var info: String? {
        fileName.firstIndex(of: ":").map { String(fileName[fileName.index(after: $0)...]) }
    }

    /// The `:2,` flags (`S` seen, `R` replied, `F` flagged, `T` trashed, `D` draft, `P` passed).
    public var flags: String {
        guard let info, info.hasPrefix("2,") else { return "" }
        return String(info.dropFirst(2))
    }

    /// The `,key=value` fields between the unique part and the info.
    public var fields: [(key: String, value: String)] {
        let beforeInfo = fileName.prefix { $0 != ":" }
        return beforeInfo.split(separator: ",").dropFirst().compactMap { field in
            guard let equals = field.firstIndex(of: "=") else { return nil }
            return (String(field[..<equals]), String(field[field.index(after: equals)...]))
        }
    }

    /// The same name for a file whose size changed: Dovecot trusts `S=` as the file's size and `W=` as its size
    /// with CRLF line ends, and reports a corrupted cache when they are wrong. `S=` is set to the new size if the
    /// name had one; `W=` is dropped (Dovecot computes it when it is missing); everything else stays.
    public func resized(to size: Int) -> MaildirName {
        guard fileName.contains(",") else { return self }
        let resized = rewritingSize(to: size)
        // A name past NAME_MAX cannot be linked into place. Dovecot trusts S= (a wrong one is a corrupted cache to
        // it), so the field goes rather than stay wrong: without it Dovecot counts the size itself.
        return resized.fileName.utf8.count > 255 ? rewritingSize(to: nil) : resized
    }

    /// With S= set to `size`, or left out for nil; W= left out either way.
    private func rewritingSize(to size: Int?) -> MaildirName {
        let beforeInfo = fileName.prefix { $0 != ":" }
        let infoPart = fileName[beforeInfo.endIndex...]
        var parts = beforeInfo.split(separator: ",", omittingEmptySubsequences: false).map(String.init)
        parts = [parts[0]] + parts.dropFirst().compactMap { field in
            if field.hasPrefix("S=") { return size.map { "S=\($0)" } }
            if field.hasPrefix("W=") { return nil }
            return field
        }
        return MaildirName(parts.joined(separator: ",") + infoPart)
    }

    /// The name with new info (`2,S`), or without info when `info` is nil: for a message moved into `cur/`.
    public func withInfo(_ info: String?) -> MaildirName {
        let beforeInfo = String(fileName.prefix { $0 != ":" })
        return MaildirName(info.map { beforeInfo + ":" + $0 } ?? beforeInfo)
    }

    /// The name without one of the `:2,` flags; unchanged when it does not have it.
    public func without(flag: Character) -> MaildirName {
        guard let info, info.hasPrefix("2,"), flags.contains(flag) else { return self }
        return withInfo("2," + flags.filter { $0 != flag })
    }

    public var description: String { fileName }

    /// A name no other delivery can have, per the Maildir specification: `<seconds>.M<microseconds>P<pid>Q<n>.<host>`.
    /// The counter tells apart deliveries by this process within one microsecond; `/` and `:` in the host name
    /// are written as `\057` and `\072` because they cannot appear in a file name's unique part.
    public static func unique(sequence: Int) -> MaildirName {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        var host = [CChar](repeating: 0, count: 256)
        let hostName = gethostname(&host, host.count - 1) == 0
            ? String(decoding: host.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self) : "localhost"
        let safeHost = hostName.replacingOccurrences(of: "/", with: "\\057")
            .replacingOccurrences(of: ":", with: "\\072")
        return MaildirName("\(now.tv_sec).M\(now.tv_nsec / 1000)P\(getpid())Q\(sequence).\(safeHost)")
    }
}

extension String {
    fileprivate func replacingOccurrences(of target: String, with replacement: String) -> String {
        guard contains(target) else { return self }
        return split(separator: target, omittingEmptySubsequences: false).joined(separator: replacement)
    }
}
