import ArgumentParser
import PitchEngine
import PitchMaildir
import PitchMessage
import PitchStore
import PitchTokenizer
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// What the commands take from the configuration file when their flags and environment leave it open: the token
/// database (`[database] path`), the verdict cutoffs and whether to add X-Pitch-Reasons (`[classifier]`), and the
/// names of our header fields (`[header]`).
///
/// The file is the service's: `$PITCHFILTER_CONFIG`, else `/etc/pitchfilter/pitchfilter.toml` if this user may
/// read it (a file kept from other users, `0640 root:pitchfilter`, is the service's alone). The
/// command line does not parse it itself. The TOML library needs Foundation with ICU, which made every pipe-filter
/// run 1.5 ms slower before it moved to `pitchfilter-service`; so, only when a file exists, `pitchfilter` runs
/// `pitchfilter-service config-values`, which reads it with the service's own parser and checks and prints the
/// values as `key=value` lines. That program's start took a pipe-filter run from 6 ms to 17 ms (`perf stat`), so
/// its answer is kept in the user's cache directory for as long as the file stays the same (`ValuesCache`): then
/// a run with a file costs what one without does, within the noise.
public struct CommandLineConfiguration: Sendable, Equatable {
    public var databasePath: String?
    public var cutoffs: Cutoffs
    public var reasons: Bool
    public var ownFields: OwnFields
    /// `[database] shared_model`: the model in PostgreSQL that several hosts share.
    public var sharedModel: SharedModelSetting?

    public init(databasePath: String? = nil, cutoffs: Cutoffs = .standard, reasons: Bool = false,
                ownFields: OwnFields = .standard, sharedModel: SharedModelSetting? = nil) {
        self.databasePath = databasePath
        self.cutoffs = cutoffs
        self.reasons = reasons
        self.ownFields = ownFields
        self.sharedModel = sharedModel
    }

    /// The shared model in effect, if any: with no configuration file none, and nothing is run.
    public static func sharedModel() throws(ConfigurationUnavailable) -> SharedModelSetting? {
        guard file(environment: Environment.current) != nil else { return nil }
        return try current.get().sharedModel
    }

    public static let valuesCommand = "config-values"
    public static let systemFile = "/etc/pitchfilter/pitchfilter.toml"

    /// The file in effect, or nil for none. A file named by the variable must be readable; the system one is
    /// skipped when it is not.
    public static func file(environment: (String) -> String?, systemFile: String = systemFile) -> String? {
        if let path = environment("PITCHFILTER_CONFIG"), !path.isEmpty { return isNullDevice(path) ? nil : path }
        return access(systemFile, R_OK) == 0 ? systemFile : nil
    }

    /// Whether `path` is the null device (`/dev/null`, or another name of it): the configuration named so is none,
    /// the defaults, even where the system file is there, as an admin says "no file" to any Unix tool.
    public static func isNullDevice(_ path: String) -> Bool {
        var named = stat(), null = stat()
        return stat(path, &named) == 0 && named.st_mode & S_IFMT == S_IFCHR
            && stat("/dev/null", &null) == 0 && null.st_mode & S_IFMT == S_IFCHR && named.st_rdev == null.st_rdev
    }

    /// The file in effect for the service and its quarantine: the system one whenever it exists, readable or not.
    /// A user's commands skip a system file they may not read (it is the service's, kept `0640 root:pitchfilter`,
    /// and theirs is their own database); the service that cannot read its own file must say so and stop, not run
    /// on the defaults (found by a docs audit: the service user shut out of it was told "nothing to do: give
    /// --maildir PATH", and with `--maildir` ran on the default database, policy and milter settings).
    public static func serviceFile(environment: (String) -> String?, systemFile: String = systemFile) -> String? {
        if let path = environment("PITCHFILTER_CONFIG"), !path.isEmpty { return isNullDevice(path) ? nil : path }
        // Any answer but "no such file" (a directory shut to us, say) means there is a file to be read.
        return access(systemFile, F_OK) == 0 || errno != ENOENT ? systemFile : nil
    }

    /// The configuration of this process, read the first time it is needed.
    public static let current: Result<CommandLineConfiguration, ConfigurationUnavailable> = load(
        environment: Environment.current, services: ServiceCommands.candidates(),
        cacheDirectory: ValuesCache.directory(environment: Environment.current))

    /// The cutoffs in effect: with no configuration file the standard ones, and nothing is run.
    public static func cutoffs() throws(ConfigurationUnavailable) -> Cutoffs {
        guard file(environment: Environment.current) != nil else { return .standard }
        return try current.get().cutoffs
    }

    /// Whether to add X-Pitch-Reasons: with no configuration file, no, and nothing is run.
    public static func reasons() throws(ConfigurationUnavailable) -> Bool {
        guard file(environment: Environment.current) != nil else { return false }
        return try current.get().reasons
    }

    /// The names of the fields we write and remove: with no configuration file the standard ones, and nothing is
    /// run.
    public static func ownFields() throws(ConfigurationUnavailable) -> OwnFields {
        guard file(environment: Environment.current) != nil else { return .standard }
        return try current.get().ownFields
    }

    /// `ownFields()` for a command that reads or learns messages: a file that cannot be read is reported, and the
    /// command exits with status 3.
    public static func ownFieldsForCommand() throws(ExitCode) -> OwnFields {
        do {
            return try ownFields()
        } catch {
            Stores.report(error)
            throw ExitCode(3)
        }
    }

    /// `cutoffs()` for a command: a file that cannot be read is reported, and the command exits with status 3.
    public static func cutoffsForCommand() throws(ExitCode) -> Cutoffs {
        do {
            return try cutoffs()
        } catch {
            Stores.report(error)
            throw ExitCode(3)
        }
    }

    /// What `config-values` prints.
    public var lines: String {
        var text = databasePath.map { "database.path=\($0)\n" } ?? ""
        text += "classifier.pitch_cutoff=\(cutoffs.pitch)\nclassifier.ham_cutoff=\(cutoffs.ham)\n"
        text += "classifier.reasons=\(reasons)\n"
        text += "header.status_field=\(ownFields.status)\nheader.reasons_field=\(ownFields.reasons)\n"
        // Field names hold no commas (`OwnFields.problem`).
        text += "header.former_fields=\(ownFields.former.joined(separator: ","))\n"
        // A tag is one line of printable ASCII (`OwnFields.problem(withSubjectTag:)`).
        text += "header.subject_tag=\(ownFields.subjectTag)\n"
        // The milter's own and former ones, which the command line leaves out of what it reads too. A tag holds no
        // newline; the list is one line, its tags separated by a byte no tag holds.
        text += "header.other_subject_tags=\(ownFields.otherSubjectTags.joined(separator: "\u{1F}"))\n"
        if let sharedModel {
            // As written in the file, password and all: the cache holding these lines is the user's alone (0600).
            text += "database.shared_model=\(sharedModel.url)\n"
            if let file = sharedModel.passwordFile { text += "database.shared_model_password_file=\(file)\n" }
        }
        return text
    }

    /// `lines` read back; nil for anything else, and for lines without one of those `lines` always holds.
    public init?(lines: String) {
        var values: [String: String] = [:]
        for line in lines.split(separator: "\n") {
            guard let equals = line.firstIndex(of: "=") else { return nil }
            values[String(line[..<equals])] = String(line[line.index(after: equals)...])
        }
        // A cache cut short took the standard field names for those it lacked, and a forged field of the
        // configured name went through (found by an audit).
        guard Self.alwaysWritten.allSatisfy({ values[$0] != nil }) else { return nil }
        guard let pitch = values["classifier.pitch_cutoff"].flatMap(Double.init),
              let ham = values["classifier.ham_cutoff"].flatMap(Double.init),
              let cutoffs = Cutoffs(pitch: pitch, ham: ham) else { return nil }
        let reasons = values["classifier.reasons"] == "true"
        let former = values["header.former_fields"]!.split(separator: ",").map(String.init)
        guard let ownFields = try? OwnFields(status: values["header.status_field"]!,
                                             reasons: values["header.reasons_field"]!, former: former)
                .withSubjectTag(values["header.subject_tag"]!,
                                alsoOurs: values["header.other_subject_tags"]!.split(separator: "\u{1F}")
                                    .map(String.init))
        else { return nil }
        var sharedModel: SharedModelSetting?
        if let url = values["database.shared_model"] {
            guard let address = try? SharedModelAddress(parsing: url) else { return nil }
            sharedModel = SharedModelSetting(address: address, passwordFile: values["database.shared_model_password_file"])
        }
        self.init(databasePath: values["database.path"], cutoffs: cutoffs, reasons: reasons, ownFields: ownFields,
                  sharedModel: sharedModel)
    }

    /// The keys `lines` writes whatever the configuration.
    static let alwaysWritten = ["classifier.pitch_cutoff", "classifier.ham_cutoff", "classifier.reasons",
                                "header.status_field", "header.reasons_field", "header.former_fields",
                                "header.subject_tag", "header.other_subject_tags"]

    /// Runs the first of `services` that exists with `config-values` on the file in effect, unless the cache in
    /// `cacheDirectory` already holds its answer for this version of the file.
    /// `services` and `cacheDirectory` are only worked out when there is a file.
    static func load(environment: (String) -> String?, services: @autoclosure () -> [String],
                     cacheDirectory: @autoclosure () -> String?)
        -> Result<CommandLineConfiguration, ConfigurationUnavailable> {
        guard let file = file(environment: environment) else { return .success(CommandLineConfiguration()) }
        let cache = cacheDirectory().flatMap { ValuesCache(directory: $0, file: file) }
        // A file anyone may change is not taken from the cache either, but refused by `config-values` (found in
        // review: a directory made writable by all kept the file's cached answer, which is keyed by the file alone).
        if let cached = cache?.read(), !Self.anyoneMayChange(Self.absolute(file)) { return .success(cached) }
        guard let service = services().first(where: { access($0, X_OK) == 0 }) else {
            // A file that cannot be read is what to say first (found by an audit: a mistyped `--config` named only
            // the missing helper, and the user installed it to learn of the typo next).
            if access(file, R_OK) != 0 {
                return .failure(ConfigurationUnavailable(file: file, reason: "cannot read it: \(systemReason(errno))"))
            }
            return .failure(ConfigurationUnavailable(file: file, reason: "reading it needs "
                + "\(ServiceCommands.executableName), installed beside pitchfilter"))
        }
        let (status, output) = Subprocess.run([service, valuesCommand, "--config=" + file])
        guard status == 0 else {
            // Its last line says why, behind the "pitchfilter: " every error line starts with.
            var reason = output.split(separator: "\n").last.map(String.init) ?? "exit status \(status)"
            if reason.hasPrefix("pitchfilter: ") { reason.removeFirst("pitchfilter: ".count) }
            // A syntax error names the file itself, as `ConfigurationError` writes it (terminal-safe).
            let named = TerminalText.safe(file) + ": "
            if reason.hasPrefix(named) { reason.removeFirst(named.count) }
            return .failure(ConfigurationUnavailable(file: file, reason: reason))
        }
        guard let configuration = CommandLineConfiguration(lines: output) else {
            // Not repeated: the lines may hold a shared model's password, and this reason goes to the mail log.
            return .failure(ConfigurationUnavailable(
                file: file, reason: "\(service) printed values this pitchfilter cannot read (another version?)"))
        }
        cache?.write(configuration)
        return .success(configuration)
    }
}

extension CommandLineConfiguration {
    /// Whether anyone on the machine may change the file (`FileOwner.exposure`); a relative path that cannot be
    /// made absolute cannot be told.
    static func anyoneMayChange(_ file: String) -> Bool {
        guard file.hasPrefix("/") else { return true }
        if case .anyone = FileOwner.exposure(ofFile: file, user: geteuid()) { return true }
        return false
    }

    /// `path` from the current directory, as `config-values` reads it (found in review: a relative
    /// `$PITCHFILTER_CONFIG` was never answered from the cache); as it is if the directory cannot be told.
    public static func absolute(_ path: String) -> String {
        guard !path.hasPrefix("/") else { return path }
        var buffer = [CChar](repeating: 0, count: Int(PATH_MAX))
        guard getcwd(&buffer, buffer.count) != nil else { return path }
        let directory = String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        return (directory == "/" ? "" : directory) + "/" + path
    }
}

/// `config-values`' answer for one version of one configuration file: `config-values` in the user's cache
/// directory, its first line naming the program version and the file's path, device, inode, size and change time.
/// Any edit, replacement or upgrade changes that line, and the service executable is asked again. Only what the
/// user's own commands read is kept there, so a user can change nothing but their own verdicts with it.
struct ValuesCache {
    let path: String
    let key: String

    /// `$XDG_CACHE_HOME/pitchfilter`, else `~/.cache/pitchfilter`.
    static func directory(environment: (String) -> String?) -> String {
        if let cache = environment("XDG_CACHE_HOME"), cache.hasPrefix("/") { return cache + "/pitchfilter" }
        return DatabaseLocation.homeDirectory(environment) + "/.cache/pitchfilter"
    }

    /// Nil when the file cannot be looked at, or its path cannot be written on one line.
    init?(directory: String, file: String) {
        var status = stat()
        guard !file.contains("\n"), stat(file, &status) == 0 else { return nil }
        path = directory + "/config-values"
        key = "pitchfilter \(Engine.programVersion) values-\(Self.format) \(status.st_dev) \(status.st_ino) "
            + "\(status.st_size) \(status.st_ctim.tv_sec).\(status.st_ctim.tv_nsec) \(file)"
    }

    /// Changes with what `lines` holds, so that another build of the same version, sharing the cache, never reads
    /// an answer without the lines it needs (2: the `[header]` names; 3: its Subject tag; 4: the shared model;
    /// 5: the milter's Subject tag; 6: former Subject tags too; 7: the `end` line).
    static let format = 7

    /// The cache's last line: a file without it was cut short, and is asked for again rather than read.
    static let endLine = "end\n"

    func read() -> CommandLineConfiguration? {
        guard let directory = openDirectory() else { return nil }
        defer { close(directory) }
        let descriptor = openat(directory, "config-values", O_RDONLY | O_NOFOLLOW | O_CLOEXEC)
        guard descriptor >= 0 else { return nil }
        defer { close(descriptor) }
        var info = stat()
        guard fstat(descriptor, &info) == 0, info.st_mode & S_IFMT == S_IFREG, info.st_uid == geteuid(),
              info.st_size < 1 << 20 else { return nil }
        var bytes = [UInt8](repeating: 0, count: Int(info.st_size) + 1)
        var count = 0
        while count < bytes.count {
            let n = bytes.withUnsafeMutableBytes { Glibc.read(descriptor, $0.baseAddress! + count, $0.count - count) }
            if n < 0, errno == EINTR { continue }
            guard n > 0 else { break }
            count += n
        }
        let text = String(decoding: bytes[..<count], as: UTF8.self)
        guard let newline = text.firstIndex(of: "\n"), text[..<newline] == key,
              text.hasSuffix("\n" + Self.endLine) else { return nil }
        return CommandLineConfiguration(lines: String(text[text.index(after: newline)...].dropLast(Self.endLine.count)))
    }

    /// Best effort: a cache that cannot be written only means the next run asks again.
    func write(_ configuration: CommandLineConfiguration) {
        // The directory, and its parent (~/.cache may not exist yet), private as XDG asks.
        let directoryPath = String(path.dropLast("/config-values".count))
        if let slash = directoryPath.lastIndex(of: "/"), slash > directoryPath.startIndex {
            _ = mkdir(String(directoryPath[..<slash]), 0o700)
        }
        _ = mkdir(directoryPath, 0o700)
        guard let directory = openDirectory() else { return }
        defer { close(directory) }
        // Written beside it and renamed over it, so a concurrent reader sees the old answer or the new one. Made
        // anew, never through a link: one left by a process of this id that died is removed first.
        let temporary = "config-values.\(getpid())"
        var descriptor = openat(directory, temporary, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o600)
        if descriptor < 0, errno == EEXIST, unlinkat(directory, temporary, 0) == 0 {
            descriptor = openat(directory, temporary, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o600)
        }
        guard descriptor >= 0 else { return }
        let written = FileDescriptor.writeAll(descriptor,
                                              Array((key + "\n" + configuration.lines + Self.endLine).utf8)[...])
        close(descriptor)
        if !written || renameat(directory, temporary, directory, "config-values") != 0 {
            unlinkat(directory, temporary, 0)
        }
    }

    /// The cache's directory, opened, if it is this user's and nobody else may write in it; the file is then read
    /// and written through it, whatever happens to its path meanwhile. A directory of another's (a HOME or
    /// XDG_CACHE_HOME kept across `sudo -E` or `su`) could hold a link that had this run, as root say, overwrite a
    /// file of that user's choosing, or an answer of theirs (found by an audit): no cache is used there.
    private func openDirectory() -> Int32? {
        let directory = open(String(path.dropLast("/config-values".count)),
                             O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
        guard directory >= 0 else { return nil }
        var info = stat()
        guard fstat(directory, &info) == 0, info.st_uid == geteuid(), info.st_mode & 0o022 == 0 else {
            close(directory)
            return nil
        }
        return directory
    }
}

public struct ConfigurationUnavailable: Error, Equatable, CustomStringConvertible {
    public let file: String
    public let reason: String

    /// One line for a terminal or the mail log, whatever the file's name holds.
    public var description: String { "configuration \(TerminalText.safe(file)): \(TerminalText.safe(reason))" }
}

/// Runs a program to its end, its standard output and error read together. For the small outputs of our own
/// helper only: nothing here bounds the time or the size.
public enum Subprocess {
    /// The child `run` waits for, 0 when none: for a signal handler that must not leave it behind (the pipe
    /// filter's deadline, which exits at once). Atomic: a plain variable's access checks are no calls for a
    /// signal handler to make (found in review).
    public static let running = Atomic<pid_t>(0)

    static func run(_ arguments: [String]) -> (status: Int32, output: String) {
        var pipeEnds: [Int32] = [0, 0]
        guard pipe(&pipeEnds) == 0 else { return (-1, "pipe: \(systemReason(errno))") }
        // Not inherited by anything else this process starts (the dup2 below gives the child its own copies).
        for end in pipeEnds { _ = fcntl(end, F_SETFD, FD_CLOEXEC) }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        // Not our standard input: in the pipe filter that is the message.
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addclose(&actions, pipeEnds[0])
        posix_spawn_file_actions_adddup2(&actions, pipeEnds[1], 1)
        posix_spawn_file_actions_adddup2(&actions, pipeEnds[1], 2)
        posix_spawn_file_actions_addclose(&actions, pipeEnds[1])
        let argv = arguments.map { strdup($0) } + [nil]
        defer { argv.forEach { free($0) } }
        var child: pid_t = 0
        // A caller that ignores SIGCHLD (the disposition is inherited) would have the kernel reap the child, and
        // waitpid fail (found in review: every filter run then passed its message through).
        signal(SIGCHLD, SIG_DFL)
        let spawned = posix_spawn(&child, arguments[0], &actions, nil, argv, environ)
        close(pipeEnds[1])
        defer { close(pipeEnds[0]) }
        guard spawned == 0 else { return (-1, "\(arguments[0]): \(systemReason(spawned))") }
        running.store(child, ordering: .relaxed)
        var output: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4_096)
        while true {
            let count = read(pipeEnds[0], &chunk, chunk.count)
            if count > 0 {
                output += chunk[0..<count]
            } else if count == 0 || errno != EINTR {
                break
            }
        }
        var status: Int32 = 0
        var waited: pid_t
        repeat { waited = waitpid(child, &status, 0) } while waited == -1 && errno == EINTR
        // At once: once reaped, its pid may be another process's, and what follows allocates (a crash there, out
        // of memory, runs the filter's handler, which kills the pid held here).
        running.store(0, ordering: .relaxed)
        guard waited == child else { return (-1, "waitpid: \(systemReason(errno))") }
        let exitStatus = status & 0x7f == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f)
        return (exitStatus, String(decoding: output, as: UTF8.self))
    }
}
