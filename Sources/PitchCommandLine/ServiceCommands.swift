import ArgumentParser

#if canImport(Glibc)
import Glibc
#endif

/// The commands that live in the `pitchfilter-service` executable.
///
/// The service needs SwiftNIO, swift-service-lifecycle, TOMLKit and Foundation with ICU. Linked into `pitchfilter`,
/// they made every pipe-filter run, one per delivered message, 1.5 ms slower (4.7 ms against 3.2 ms for an
/// empty message), before it read a byte. So `pitchfilter serve …` and `pitchfilter quarantine …` replace the
/// process with `pitchfilter-service serve …`, as git runs its subcommands: the same process id, so systemd's
/// Type=notify and a supervisor's signals reach the service.
public enum ServiceCommands {
    public static let names: Set<String> = ["serve", "quarantine"]
    public static let executableName = "pitchfilter-service"
    public static let serveAbstract = "Run the service: watch Maildirs, quarantine pitches, learn from the user's moves."
    public static let quarantineAbstract = "List, show, release, delete or purge quarantined messages, by id."

    /// Whether `arguments` (without the program name) are for the service executable: `serve …`,
    /// `quarantine …`, or `help serve|quarantine …`.
    public static func isServiceCommand(_ arguments: [String]) -> Bool {
        guard let first = arguments.first else { return false }
        if names.contains(first) { return true }
        return first == "help" && arguments.count > 1 && names.contains(arguments[1])
    }

    /// Where the service executable is: beside this one (a build directory, /usr/bin), else in
    /// /usr/libexec/pitchfilter. "This one" is /proc/self/exe, or the path it was started by where there is no /proc.
    public static func candidates() -> [String] {
        var own = CommandLine.arguments.first ?? ""
        var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
        let length = readlink("/proc/self/exe", &buffer, Int(PATH_MAX))
        if length > 0 { own = String(decoding: buffer[0..<length].map { UInt8(bitPattern: $0) }, as: UTF8.self) }
        var candidates: [String] = []
        if let slash = own.utf8.lastIndex(of: UInt8(ascii: "/")) {
            candidates.append(String(own[...slash]) + executableName)
        }
        candidates.append("/usr/libexec/pitchfilter/" + executableName)
        return candidates
    }

    /// Replaces this process with the service executable; returns only to report why it could not.
    public static func exec(_ arguments: [String]) -> Never {
        var reasons: [String] = []
        for path in candidates() {
            let argv = ([path] + arguments).map { strdup($0) } + [nil]
            execv(path, argv)
            let failure = errno
            reasons.append("\(path): \(systemReason(failure))")
            argv.forEach { free($0) }
        }
        Stores.reportLine("\(arguments[0]) needs \(executableName), installed beside pitchfilter; "
            + reasons.joined(separator: "; "))
        exit(69)  // EX_UNAVAILABLE
    }
}

/// What a command that only groups others does when run without one of them. swift-argument-parser would print the
/// help on standard output and exit 0; from `:0 fw | pitchfilter` in a procmailrc (a subcommand forgotten), that
/// delivered the help text in place of the mail. A usage error, exit 64 with the usage on standard error, makes
/// procmail, maildrop and Sieve keep the message.
///
/// Said here rather than thrown: an error thrown from `run()` is reported with the root command's usage
/// ("Usage: pitchfilter <subcommand>" under `pitchfilter quarantine`), and `validate()`, which the parser reports
/// with the right one, runs for every command on the way to a subcommand too.
public func exitForMissingSubcommand(_ name: String, usage: String) -> Never {
    let message = """
        Error: '\(name)' needs a subcommand: see '\(name) --help'.
        Usage: \(usage)
          See '\(name) --help' for more information.

        """
    let bytes = Array(message.utf8)
    _ = bytes.withUnsafeBytes { write(2, $0.baseAddress, $0.count) }
    exit(64)  // EX_USAGE
}
