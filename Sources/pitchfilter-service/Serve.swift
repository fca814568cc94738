import ArgumentParser
import Logging
import PitchCommandLine
import PitchDaemon
import PitchEngine
import PitchMaildir
import PitchMessage
import PitchMilter
import PitchStore
import PitchTokenizer

#if canImport(Glibc)
import Glibc
#endif

/// `pitchfilter serve`: the long-running service that watches Maildirs (see PitchDaemon).
struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: ServiceCommands.serveAbstract,
        discussion: """
            Reads --config, else $PITCHFILTER_CONFIG, else /etc/pitchfilter/pitchfilter.toml; every key is documented in \
            samples/pitchfilter.toml. --maildir, --db, --milter and --metrics override the file. SIGTERM and SIGINT stop after the \
            message in hand (exit 0); SIGHUP re-reads the configuration. Under systemd (Type=notify) it reports \
            READY=1 once it is watching and the milter, if configured, is listening.
            """)

    @Option(name: .long, help: ArgumentHelp(
        "The configuration file (default: $PITCHFILTER_CONFIG, else /etc/pitchfilter/pitchfilter.toml if it "
            + "exists).", valueName: "file"))
    var config: String?

    @Option(name: .long, help: ArgumentHelp(
        "Watch this Maildir with the default policy, instead of the file's mailboxes (repeatable).",
        valueName: "path"))
    var maildir: [String] = []

    @Option(name: .long, help: ArgumentHelp("The token database, instead of the file's.", valueName: "path"))
    var db: String?

    @Option(name: .long, help: ArgumentHelp(
        "Speak the milter protocol to Postfix or Sendmail on unix:/path or inet:127.0.0.1:PORT, instead of the "
            + "file's [milter] listen.", valueName: "address"))
    var milter: String?

    @Option(name: .long, help: ArgumentHelp(
        "Show the counters to Prometheus at http://HOST:PORT/metrics, on loopback, instead of the file's [metrics] "
            + "listen.", valueName: "host:port"))
    var metrics: String?

    @Flag(name: .long, help: "Check the configuration, print what would be watched, and exit (0 valid, 78 not).")
    var check = false


    func validate() throws {
        // An unset variable in a unit file (`--db "$DB"`) must not mean the default, or the current directory.
        if db?.isEmpty == true || maildir.contains("") || config?.isEmpty == true {
            throw ValidationError("--db, --maildir and --config need a path; an empty one is refused")
        }
        // Bytes that are not UTF-8 reach us as U+FFFD, and the path with it names another directory.
        if let named = ([db] + maildir.map(Optional.some)).compactMap({ $0 })
            .first(where: Environment.lostBytes) {
            throw ValidationError("\(TerminalText.safe(named)): the path is not UTF-8 (or holds U+FFFD, which "
                + "stands for bytes that are not): pitchfilter cannot open it as it is; give a path whose names are "
                + "UTF-8")
        }
    }

    func run() async throws {
        let file = config ?? CommandLineConfiguration.serviceFile(environment: Environment.current)
        let overrides = (maildirs: maildir, db: db, milter: milter, metrics: metrics)
        let load: @Sendable () throws -> Configuration = {
            var configuration = try file.map(ConfigurationFile.read) ?? Configuration()
            if !overrides.maildirs.isEmpty {
                let policy = configuration.defaultPolicy
                configuration.mailboxes = overrides.maildirs.map {
                    MailboxConfiguration(path: Self.absolute($0), policy: policy)
                }
                try Configuration.requireDistinctMailboxes(configuration.mailboxes, key: "--maildir")
            }
            if let db = overrides.db { configuration.databasePath = Self.absolute(db) }
            if let milter = overrides.milter {
                var address = try MilterConfiguration.address(milter, key: "--milter")
                // The file's socket_mode stays with a unix socket the command line names instead (found by an
                // audit: it went back to 0660 without a word).
                if case .unix(let path, _) = address, case .unix(_, let mode)? = configuration.milter?.address {
                    address = .unix(path: path, mode: mode)
                }
                if configuration.milter == nil {
                    configuration.milter = MilterConfiguration(address: address)
                } else {
                    configuration.milter?.address = address
                }
            }
            if let metrics = overrides.metrics {
                configuration.metrics = try MetricsServer.address(metrics, key: "--metrics")
            }
            return configuration
        }
        let configuration: Configuration
        do {
            configuration = try load()
        } catch {
            Stores.report(error)
            throw ExitCode(78)  // EX_CONFIG
        }
        guard !configuration.mailboxes.isEmpty || configuration.milter != nil else {
            Stores.report(ValidationError(
                "nothing to do: give --maildir PATH or --milter ADDRESS, or [[mailbox]] or [milter] in the "
                    + "configuration"))
            throw ExitCode(78)
        }
        if let shared = configuration.sharedModel, !SharedModels.areBuilt {
            Stores.report(StoreError.sharedModelNotBuilt(path: shared.address.description))
            throw ExitCode(78)
        }
        let databasePath: String
        do {
            if let configured = configuration.databasePath {
                try DatabaseLocation.check(configured, from: "the configuration's [database] path")
                databasePath = configured
            } else {
                databasePath = try DatabaseLocation.resolve(option: nil, environment: Environment.current)
            }
        } catch {
            Stores.report(error)
            throw ExitCode(78)
        }
        if check {
            // What would stop the start at once, which a check that passed let systemd find out by restarting
            // until its limit (found in review). Before anything is called valid.
            if let problem = Self.startProblem(databasePath: databasePath, milter: configuration.milter) {
                Stores.report(ValidationError(problem))
                throw ExitCode(78)
            }
            print("configuration valid: database \(databasePath)")
            if let warning = Self.databaseExposure(databasePath).warning { print("warning: " + warning) }
            if let warning = file.flatMap({ ConfigurationFile.exposureWarning(Self.absolute($0)) }) {
                print("warning: " + warning)
            }
            if let shared = configuration.sharedModel { print("shared model: \(shared.address)") }
            // As the schedule applies them: the standard pitch cutoff is the starter's while it decides (found in
            // review: "pitch at 0.9" while a message at 0.81 was called a pitch).
            let schedule = ModelSchedule.standard.withCutoffs(configuration.cutoffs)
            let (untrained, trained) = schedule.pitchCutoffs
            let pitch = untrained == trained ? "\(trained)"
                : "\(untrained) untrained, rising to \(trained) at \(schedule.starterUntil) trained of each class"
            print("classifier: pitch at or above \(pitch); ham at or below \(configuration.cutoffs.ham)")
            let ownFields = configuration.ownFields
            if ownFields.status != OwnFields.standard.status || ownFields.reasons != OwnFields.standard.reasons
                || !ownFields.former.isEmpty {
                print("header fields: \(ownFields.status), \(ownFields.reasons)")
            }
            if !ownFields.subjectTag.isEmpty { print("subject tag: \"\(ownFields.subjectTag)\"") }
            if let metrics = configuration.metrics {
                let host = metrics.host.contains(":") ? "[\(metrics.host)]" : metrics.host
                print("metrics: http://\(host):\(metrics.port)/metrics")
            }
            if let milter = configuration.milter {
                print("milter \(milter.address): hold pitches \(milter.holdPitches ? "yes" : "no"), subject tag "
                    + Self.describe(tag: milter.subjectTag ?? ownFields.subjectTag)
                    + ", learn outbound \(milter.learnOutbound ? "yes" : "no")")
                if case .tcp = milter.address, milter.learnOutbound {
                    print("note: " + Self.outboundOverTCP)
                }
                if case .unix(_, let mode) = milter.address, mode & 0o002 != 0 {
                    print("warning: " + MilterServer.worldConnectable(mode))
                }
                if let warning = Self.socketDirectoryExposure(milter).warning { print("warning: " + warning) }
            }
            for mailbox in configuration.mailboxes {
                let policy = mailbox.policy
                let (missing, warning) = Self.maildirState(mailbox.path, policy: policy)
                // The quarantine folder is named whatever the policy: moves into and out of it teach either way.
                let pitch = policy.onPitch == .quarantine ? "quarantine into \(policy.quarantineFolder)"
                    : "\(policy.onPitch.rawValue) in the INBOX (quarantine folder \(policy.quarantineFolder))"
                print("mailbox \(mailbox.path)\(missing): pitch \(pitch), unsure \(policy.onUnsure.rawValue), "
                    + "ham \(policy.onHam.rawValue), sent \(policy.sentFolder)")
                if let warning { print("warning: mailbox \(mailbox.path): " + warning) }
            }
            return
        }
        let level = LogLevelSetting(Logger.Level(configuration.logLevel))
        let toJournal = Environment.current("JOURNAL_STREAM") != nil
        LoggingSystem.bootstrap { _ in JournalLogHandler(level: level, toJournal: toJournal) }
        let logger = Logger(label: "pitchfilter")
        if let warning = file.flatMap({ ConfigurationFile.exposureWarning(Self.absolute($0)) }) {
            logger.warning("\(warning)")
        }
        let socketExposure = Self.socketDirectoryExposure(configuration.milter)
        if let refusal = Self.milterSocketProblem(configuration.milter) ?? socketExposure.refusal {
            logger.critical("not started: \(refusal)")
            throw ExitCode(78)  // EX_CONFIG, which the unit does not restart
        }
        if let warning = socketExposure.warning { logger.warning("\(warning)") }
        let databaseExposure = Self.databaseExposure(databasePath)
        if let refusal = databaseExposure.refusal {
            logger.critical("not started: \(refusal)")
            throw ExitCode(78)
        }
        if let warning = databaseExposure.warning { logger.warning("\(warning)") }
        // Each reload says it again: a file made writable by its group since the start was said nothing of (found by
        // an audit).
        let reload: @Sendable () throws -> Configuration = {
            let configuration = try load()
            if let warning = file.flatMap({ ConfigurationFile.exposureWarning(Self.absolute($0)) }) {
                logger.warning("\(warning)")
            }
            return configuration
        }
        var settings = MaildirService.Settings(
            configuration: configuration, databasePath: databasePath, reload: file == nil ? nil : reload,
            notifier: SystemdNotifier(environment: Environment.current))
        settings.logLevel = level
        do {
            try await Daemon.run(settings: settings, logger: logger)
        } catch {
            logger.critical("stopped: \(error)")
            throw ExitCode(1)
        }
    }

    /// What `--check` says of a mailbox as this user finds it. The service never creates a user's Maildir: it
    /// waits for the MDA's first delivery. One this user may not look into or write is said as a warning, not a
    /// failure: the service goes on with the other mailboxes, and a reload (which checks first) must not be refused
    /// for one user's Maildir (found by an audit: a Maildir behind a directory shut to the service's user was "not
    /// there yet", and one it could not write passed, every pitch then left where it was).
    static func maildirState(_ path: String, policy: MailboxPolicy) -> (note: String, warning: String?) {
        var info = stat()
        if stat(path, &info) == 0, info.st_mode & S_IFMT != S_IFDIR {
            return (" (a file, not a Maildir: nothing will be watched there)", nil)
        }
        // Run as root: a Maildir whose way others can change is left alone (`FileOwner.ofDirectory`); one root can
        // tell the owner of, it works in as that owner, who may.
        let maildir = Maildir(root: path)
        if maildir.owner == .undetermined {
            return (" (root cannot tell whose it is: left alone; run the service as its owner)", nil)
        }
        // Advice only where a user's permissions are the trouble: not for a loop of links or an I/O error.
        func advice(_ error: Int32) -> String {
            error == EACCES || error == EPERM
                ? "; run the service as the Maildir's owner (or as root, which works in each as its owner)" : ""
        }
        if stat(path + "/cur", &info) != 0 {
            let error = errno
            if error == ENOENT || error == ENOTDIR { return (" (no Maildir there yet)", nil) }
            return ("", "this user (uid \(geteuid())) cannot look into it: "
                + String(cString: strerror(error)).lowercased() + advice(error))
        }
        guard geteuid() != 0 else { return ("", nil) }
        // As the service's effective user, which `access` is not; the quarantine folder too, if it is there.
        let quarantine = path + "/" + policy.quarantineFolder
        let folders = [path, path + "/cur", path + "/new", path + "/tmp"]
            + (stat(quarantine, &info) == 0 ? ["new", "cur", "tmp"].map { quarantine + "/" + $0 } : [])
        guard let unwritable = folders.first(where: { faccessat(AT_FDCWD, $0, W_OK | X_OK, AT_EACCESS) != 0 })
        else { return ("", nil) }
        let error = errno
        let reason = String(cString: strerror(error)).lowercased()
        return ("", "this user (uid \(geteuid())) cannot write \(unwritable) (\(reason)): pitches would stay where "
            + "they are, and nothing learned" + advice(error))
    }

    /// Said by `--check` of a milter on TCP that learns from outbound mail (found by an audit).
    static let outboundOverTCP = "on TCP any local user may connect to the milter and hand it mail as if one of "
        + "your users sent it ({auth_authen}), whose recipients then count as known correspondents; on a host with "
        + "users you do not trust, listen on a unix socket (mode 0660, the MTA's user in the service's group) or set "
        + "learn_outbound = false"

    /// Why the service could not start with this database and milter address, found without starting it: a
    /// database path that is a directory or a file it cannot open as its database, a unix socket in a directory
    /// that is not there.
    static func startProblem(databasePath: String, milter: MilterConfiguration?) -> String? {
        var info = stat()
        if stat(databasePath, &info) == 0, info.st_mode & S_IFMT == S_IFDIR {
            return "the database \(databasePath) is a directory, not a database file"
        }
        // One the service could not open: it would only log that it retries every 5 s (found by an audit: the
        // check passed another file, a newer schema, another tokenizer's database and a truncated one).
        if let problem = SQLiteTokenStore.problem(at: databasePath, tokenizerIdentity: Engine.tokenizerIdentity) {
            return problem.description
        }
        // Nor one this user may not read and write (found by an audit: `--check` as the service's user passed root's
        // 0600 database, and the service retried for ever).
        let absolute = absolute(databasePath)
        let directory = absolute.utf8.lastIndex(of: UInt8(ascii: "/")).map { String(absolute[..<$0]) } ?? "."
        if access(absolute, F_OK) == 0 ? access(absolute, R_OK | W_OK) != 0
            : access(directory.isEmpty ? "/" : directory, F_OK) == 0
                && access(directory.isEmpty ? "/" : directory, W_OK | X_OK) != 0 {
            return "the database \(databasePath) cannot be opened by this user (uid \(geteuid())): "
                + String(cString: strerror(errno)).lowercased()
        }
        return milterSocketProblem(milter) ?? socketDirectoryExposure(milter).refusal
            ?? databaseExposure(databasePath).refusal
    }

    /// Why the milter could not make its unix socket: its directory is not there, or something other than a
    /// socket is at its path. A start stops on it with `--check`'s 78, which the unit does not restart (found by
    /// an audit: the start said 1, and systemd restarted it every 2 s until its start limit).
    static func milterSocketProblem(_ milter: MilterConfiguration?) -> String? {
        guard case .unix(let path, _) = milter?.address else { return nil }
        var info = stat()
        let directory = path.utf8.lastIndex(of: UInt8(ascii: "/")).map { String(path[..<$0]) } ?? "."
        if stat(directory.isEmpty ? "/" : directory, &info) != 0 || info.st_mode & S_IFMT != S_IFDIR {
            return "the milter's socket unix:\(path) cannot be made: \(directory) is not a directory here"
        }
        // The start refuses to replace it (`MilterServer`); a stale socket of ours it would replace.
        if lstat(path, &info) == 0, info.st_mode & S_IFMT != S_IFSOCK {
            return "the milter's socket unix:\(path) cannot be made: something other than a socket is there"
        }
        return nil
    }

    /// Who could replace the milter's unix socket with their own, and read the envelopes and headers the MTA sends
    /// to it: refused when anyone on the machine may (its directory, or one on the way, writable by all and not
    /// sticky), warned of when its group or another user may, as for the configuration file (found by an audit: a
    /// socket in a directory all may write was taken over by another user, and neither the start nor `--check`
    /// said a word).
    static func socketDirectoryExposure(_ milter: MilterConfiguration?) -> (refusal: String?, warning: String?) {
        guard case .unix(let path, _) = milter?.address else { return (nil, nil) }
        return exposure(of: path, said: "the milter's socket unix:\(path)", kept: "the socket",
                        risk: "the mail sent to it read")
    }

    /// Who could replace the service's database, and with it the model, the contacts and the quarantine's records
    /// (whose messages `quarantine delete` removes): as for the milter's socket (found by an audit: a database in
    /// a directory all may write was taken without a word, and root's `train` followed another user's link there).
    static func databaseExposure(_ databasePath: String) -> (refusal: String?, warning: String?) {
        let said = "the database \(databasePath)", risk = "the model, contacts and quarantine records with it"
        // A file (or link) already there that anyone may have made, another user's in /tmp, or one all may write:
        // taken as it was, its maker could read and change it (found by an audit: the service made a database of
        // an empty file another user had put there, 0644 and theirs).
        var info = stat()
        let absolute = absolute(databasePath)
        if lstat(absolute, &info) == 0 {
            let fault: String? = info.st_mode & S_IFMT == S_IFLNK
                ? (info.st_uid == 0 || info.st_uid == geteuid() ? nil : absolute)
                : { if case .anyone(let fault) = FileOwner.exposure(ofFile: absolute, user: geteuid()) { fault }
                    else { nil } }()
            if let fault {
                return ("\(said) could be replaced by anyone on this machine, and \(risk): "
                    + ConfigurationFile.whyAnyone(fault, kept: "the database"), nil)
            }
        }
        // Its log's names too, as the commands check them (found in review: only the commands did).
        do {
            try DatabaseLocation.refuseAnothersName(databasePath)
        } catch {
            return (error.description, nil)
        }
        return exposure(of: databasePath, said: said, kept: "the database", risk: risk)
    }

    /// How exposed the directory holding `path` is: refused when anyone may replace what is in it, said when its
    /// group or another user may, or when it is a sticky directory all may write (/tmp), where no one can take
    /// the name away from us but anyone can take it first, with a file or link of their own.
    static func exposure(of path: String, said: String, kept: String,
                         risk: String) -> (refusal: String?, warning: String?) {
        let absolute = absolute(path)
        let directory = absolute.utf8.lastIndex(of: UInt8(ascii: "/")).map { String(absolute[..<$0]) } ?? "."
        switch FileOwner.exposure(ofDirectory: directory.isEmpty ? "/" : directory, user: geteuid()) {
        case .ownerAndRootAlone:
            var info = stat()
            guard stat(directory.isEmpty ? "/" : directory, &info) == 0,
                  info.st_mode & S_ISVTX != 0, info.st_mode & S_IWOTH != 0 else { return (nil, nil) }
            return (nil, "\(said) is in \(directory), which all users may write: another may make a file or link of "
                + "its name before the service does; keep \(kept) in a directory of its own")
        case .anyone(let fault):
            return ("\(said) could be replaced by anyone on this machine, and \(risk): "
                + ConfigurationFile.whyAnyone(fault, kept: kept), nil)
        case .othersToo(let fault):
            return (nil, "\(said) could be replaced by others than root and this user: "
                + ConfigurationFile.whyOthers(fault))
        }
    }

    /// A Subject tag as `--check` shows it.
    static func describe(tag: String) -> String {
        tag.isEmpty ? "none" : "\"\(tag)\""
    }

    /// The service may change directory; a relative path given on the command line means the caller's.
    static func absolute(_ path: String) -> String { CommandLineConfiguration.absolute(path) }
}

enum ConfigurationFile {
    /// Refuses a configuration file that anyone on the machine could change: it says which Maildirs the service
    /// works in (as their owners, when run as root), where it listens and which database it keeps, and the
    /// command line's database and shared model (`config-values`) and quarantine commands read it too, so such a
    /// file would hand all that to every local user. `absolutePath` is the file, links followed.
    static func requireNotWritableByAll(_ absolutePath: String) throws(ConfigurationError) {
        guard case .anyone(let fault) = FileOwner.exposure(ofFile: absolutePath, user: geteuid()) else { return }
        throw ConfigurationError(key: absolutePath, "anyone on this machine can change it: "
            + "\(whyAnyone(fault, kept: "the file")); the service takes its mailboxes, database and sockets from it")
    }

    /// Why anyone on the machine can change what is at `fault` (`FileExposure.anyone`), said as the walk found it
    /// (found in review: a name of another user's in /tmp was told to chmod o-w). Another user's name first: only
    /// a sticky directory all may write makes it a fault, and that user's mode bits are theirs to change, not ours
    /// (found in review). `kept`: what to keep elsewhere.
    static func whyAnyone(_ fault: String, kept: String) -> String {
        var info = stat()
        let found = lstat(fault, &info) == 0
        return found && info.st_uid != 0 && info.st_uid != geteuid()
            ? "\(fault) belongs to another user (uid \(info.st_uid)) in a directory all may write, where anyone "
                + "may have made it (give it to root or this user, or keep \(kept) elsewhere)"
            // A sticky directory such as /tmp, before a directory of the way not made yet: not to be chmod'ed (found
            // by an audit: "chmod o-w /tmp").
            : found && info.st_mode & S_IFMT == S_IFDIR && info.st_mode & S_ISVTX != 0
                ? "\(fault) is a directory all may write, where anyone may make the rest of the way first (keep "
                    + "\(kept) in a directory of its own, made beforehand)"
            : found && info.st_mode & S_IFMT != S_IFLNK && info.st_mode & S_IWOTH != 0
                ? "\(fault) is writable by all users (chmod o-w \(fault))"
                : "the way to it through \(fault) is not one only root and this user can change"
    }

    /// A warning for a configuration file that its group or another user than root and the service's own could
    /// change, as `postfix check` warns of group-writable files: allowed (a team of admins may share a group),
    /// but said.
    static func exposureWarning(_ absolutePath: String) -> String? {
        guard case .othersToo(let fault) = FileOwner.exposure(ofFile: absolutePath, user: geteuid()) else {
            return nil
        }
        return "the configuration \(absolutePath) can be changed by others than root and this user: "
            + whyOthers(fault)
    }

    /// Who besides root and this user can change what is at `fault` (`FileExposure.othersToo`).
    static func whyOthers(_ fault: String) -> String {
        var info = stat()
        return lstat(fault, &info) == 0 && info.st_uid != 0 && info.st_uid != geteuid()
            ? "\(fault) belongs to another user (uid \(info.st_uid))"
            : "\(fault) is writable by its group (gid \(info.st_gid))"
    }

    static func read(_ path: String) throws -> Configuration {
        // Writable by all, and empty: no file, the defaults (`isNullDevice`).
        if CommandLineConfiguration.isNullDevice(path) { return Configuration() }
        try requireNotWritableByAll(Serve.absolute(path))
        switch MailSource.readFile(path) {
        case .success(let bytes):
            // TOML is UTF-8. Decoded leniently, a Latin-1 "ü" in a path became U+FFFD, and the service watched (or
            // `train` created) another path than the one written (found in review).
            guard let text = String(validating: bytes, as: UTF8.self) else {
                let line = Self.firstLineNotUTF8(bytes)
                throw ConfigurationError(key: path, "line \(line): not UTF-8 (TOML files are; save it as UTF-8)")
            }
            do {
                return try Configuration.parse(text, file: path)
            } catch {
                // A syntax error names the file (and line) already; a wrong value names its key, and the file
                // it is in too: an admin may have several.
                let key = error.key == path ? path : path + ": " + error.key
                throw ConfigurationError(key: key, error.problem)
            }
        case .failure(let error):
            throw error
        }
    }

    /// The 1-based number of the first line that is not valid UTF-8.
    static func firstLineNotUTF8(_ bytes: [UInt8]) -> Int {
        var line = 1
        for piece in bytes.split(separator: 0x0A, omittingEmptySubsequences: false) {
            if String(validating: piece, as: UTF8.self) == nil { return line }
            line += 1
        }
        return line
    }
}
