import ArgumentParser

#if canImport(Glibc)
import Glibc
#endif

public enum Environment {
    /// A variable of the process environment, read with getenv so it works in the bare environments MTAs give
    /// filters.
    public static func current(_ name: String) -> String? {
        getenv(name).map { String(cString: $0) }
    }
}

public enum DatabaseLocation {
    /// `--db`, else `$PITCHFILTER_DB`, else the configuration file's `[database] path`, else the XDG default.
    /// `configured` is asked only when the first two leave the path open.
    public static func resolve(option: String?, environment: (String) -> String?,
                               configured: () throws -> String?) rethrows -> String {
        if let option, !option.isEmpty { return option }
        if let path = environment("PITCHFILTER_DB"), !path.isEmpty { return path }
        if let path = try configured(), !path.isEmpty { return path }
        if let data = environment("XDG_DATA_HOME"), data.hasPrefix("/") {
            return data + "/pitchfilter/pitchfilter.sqlite"
        }
        return homeDirectory(environment) + "/.local/share/pitchfilter/pitchfilter.sqlite"
    }

    /// `resolve` without a configuration file.
    public static func resolve(option: String?, environment: (String) -> String?) -> String {
        resolve(option: option, environment: environment, configured: { nil })
    }

    /// $HOME, else the password database: Dovecot and procmail set HOME, but a bare `env -i` caller may not.
    static func homeDirectory(_ environment: (String) -> String?) -> String {
        if let home = environment("HOME"), !home.isEmpty { return home }
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
