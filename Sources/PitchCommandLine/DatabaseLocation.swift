import ArgumentParser
import PitchMessage

#if canImport(Glibc)
import Glibc
#endif

public enum Environment {
    /// A variable of the process environment, read with getenv so it works in the bare environments MTAs give
    /// filters.
    public static func current(_ name: String) -> String? {
        getenv(name).map { String(cString: $0) }
    }

    /// Whether `text`, an argument or a variable, came with bytes that are not UTF-8: Swift's strings hold U+FFFD
    /// in their place, and as a path it names another file than the one meant (or none). One spelled with U+FFFD
    /// itself is taken for such a one too.
    public static func lostBytes(_ text: String) -> Bool {
        text.unicodeScalars.contains("\u{FFFD}")
    }
}

public enum DatabaseLocation {
    /// `--db`, else `$PITCHFILTER_DB`, else the configuration file's `[database] path`, else the XDG default.
    /// `configured` is asked only when the first two leave the path open. A path that is not UTF-8 is refused
    /// (`NotUTF8`).
    public static func resolve(option: String?, environment: (String) -> String?,
                               configured: () throws -> String?) throws -> String {
        let (path, source) = try unchecked(option: option, environment: environment, configured: configured)
        try check(path, from: source)
        try refuseAnothersName(path)
        return path
    }

    /// Refuses a database whose name, or its log's, another user took first in a sticky directory all may write
    /// (/tmp): a link of theirs had `train`, run as root, make a database where they chose, and a file of theirs
    /// is a model they read and change (found by an audit; the service refused both, the commands did not).
    public static func refuseAnothersName(_ path: String) throws(TakenByAnother) {
        let absolute = CommandLineConfiguration.absolute(path)
        let parent = absolute.utf8.lastIndex(of: UInt8(ascii: "/")).map { String(absolute[..<$0]) } ?? "."
        let directory = parent.isEmpty ? "/" : parent
        var folder = stat()
        guard stat(directory, &folder) == 0, folder.st_mode & S_ISVTX != 0, folder.st_mode & S_IWOTH != 0 else {
            return
        }
        for name in [absolute, absolute + "-wal", absolute + "-shm", absolute + "-journal"] {
            var info = stat()
            if lstat(name, &info) == 0, info.st_uid != 0, info.st_uid != geteuid() {
                throw TakenByAnother(path: name, owner: info.st_uid, directory: directory)
            }
        }
    }

    /// A database file (or link) of another user's in a sticky directory all may write (`refuseAnothersName`).
    public struct TakenByAnother: Error, CustomStringConvertible {
        public let path: String
        public let owner: UInt32
        public let directory: String

        public var description: String {
            "\(TerminalText.safe(path)) belongs to another user (uid \(owner)) in \(TerminalText.safe(directory)), "
                + "which all users may write, where anyone may have made it: not used as this user's database (give "
                + "it to root or this user, or keep the database in a directory of its own)"
        }
    }

    /// Refuses a path with U+FFFD in it (`NotUTF8`), for a path that came another way (`serve --db`).
    public static func check(_ path: String, from source: String) throws(NotUTF8) {
        if Environment.lostBytes(path) { throw NotUTF8(path: path, source: source) }
    }

    /// `resolve` without a configuration file.
    public static func resolve(option: String?, environment: (String) -> String?) throws(NotUTF8) -> String {
        let (path, source) = unchecked(option: option, environment: environment, configured: { nil })
        try check(path, from: source)
        return path
    }

    private static func unchecked(option: String?, environment: (String) -> String?,
                                  configured: () throws -> String?) rethrows -> (path: String, source: String) {
        if let option, !option.isEmpty { return (option, "--db") }
        if let path = environment("PITCHFILTER_DB"), !path.isEmpty { return (path, "$PITCHFILTER_DB") }
        if let path = try configured(), !path.isEmpty { return (path, "the configuration's [database] path") }
        if let data = environment("XDG_DATA_HOME"), data.hasPrefix("/") {
            return (data + "/pitchfilter/pitchfilter.sqlite", "$XDG_DATA_HOME")
        }
        return (homeDirectory(environment) + "/.local/share/pitchfilter/pitchfilter.sqlite", "the home directory")
    }

    /// A database path given in bytes that are not UTF-8. Arguments and the environment reach a Swift program as
    /// strings, with U+FFFD in place of such bytes, and the path with it names another file: `train` made a new
    /// database in a new directory beside the one named, and `filter` and `stats` read the starter model alone,
    /// all saying nothing (found by an audit). A path spelled with U+FFFD itself is refused too.
    public struct NotUTF8: Error, CustomStringConvertible {
        public let path: String
        /// Where the path came from: "--db", "$PITCHFILTER_DB", "the home directory"…
        public let source: String

        public var description: String {
            "the database path from \(source), \(TerminalText.safe(path)), is not UTF-8 (or holds U+FFFD, which "
                + "stands for bytes that are not): pitchfilter cannot open it as it is; give a path whose names are UTF-8"
        }
    }

    /// $HOME, else the password database: Dovecot and procmail set HOME, but a bare `env -i` caller may not. A
    /// relative HOME is passed over, as a relative XDG_DATA_HOME is (found by an audit: the database was then
    /// wherever the command was run from).
    static func homeDirectory(_ environment: (String) -> String?) -> String {
        if let home = environment("HOME"), home.hasPrefix("/") { return home }
        if let entry = getpwuid(getuid()), let directory = entry.pointee.pw_dir { return String(cString: directory) }
        return "/"
    }
}

/// Where the token database is: --db, else $PITCHFILTER_DB, else the configuration file's (see
/// `CommandLineConfiguration`), else $XDG_DATA_HOME/pitchfilter/pitchfilter.sqlite (XDG's default
/// $HOME/.local/share when unset).
public struct DatabaseOption: ParsableArguments {
    @Option(name: .long, help: ArgumentHelp(
        "The token database (default: $PITCHFILTER_DB, else [database] path in the configuration file, else "
            + "$XDG_DATA_HOME/pitchfilter/pitchfilter.sqlite).",
        valueName: "path"))
    public var db: String?

    /// `--db ""` (a script's unset variable) would otherwise mean the default database: the wrong one, silently.
    public func validate() throws {
        if db?.isEmpty == true { throw ValidationError("--db needs a path; an empty one is refused") }
    }

    /// When the path would be the configuration file's and the file cannot be read, reports why and throws
    /// exit status 3, like `Stores.openForWriting`.
    public func path() throws(ExitCode) -> String {
        do {
            return try DatabaseLocation.resolve(option: db, environment: Environment.current) {
                try CommandLineConfiguration.current.get().databasePath
            }
        } catch {
            Stores.report(error)
            throw ExitCode(3)
        }
    }

    public init() {}
}

/// `--config FILE`: the configuration file for this run, in place of `$PITCHFILTER_CONFIG` and the system file, as
/// `serve` and `quarantine` take it. It names the file as the variable does, for the whole process and the
/// `config-values` run that reads it, so it is set while the arguments are checked: before any command asks for
/// its configuration.
public struct ConfigurationOption: ParsableArguments {
    @Option(name: .long, help: ArgumentHelp(
        "The configuration file (default: $PITCHFILTER_CONFIG, else /etc/pitchfilter/pitchfilter.toml if readable).",
        valueName: "file"))
    public var config: String?

    public func validate() throws {
        guard let config else { return }
        // As for --db: a script's unset variable would otherwise mean the default file, silently.
        if config.isEmpty { throw ValidationError("--config needs a file; an empty one is refused") }
        setenv("PITCHFILTER_CONFIG", config, 1)
    }

    public init() {}
}
