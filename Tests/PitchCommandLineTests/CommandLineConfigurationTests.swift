import Foundation
import PitchEngine
import PitchTokenizer
import Testing

@testable import PitchCommandLine

@Suite struct CommandLineConfigurationTests {
    @Test(arguments: [
        CommandLineConfiguration(),
        CommandLineConfiguration(databasePath: "/var/lib/pitchfilter/x=y.sqlite", cutoffs: Cutoffs(pitch: 1, ham: 0)!),
        CommandLineConfiguration(databasePath: nil, cutoffs: Cutoffs(pitch: 0.95, ham: 0.125)!),
        CommandLineConfiguration(ownFields: try! OwnFields(status: "X-Cold-Pitch", reasons: "X-Cold-Why")),
        CommandLineConfiguration(reasons: true, ownFields: try! OwnFields(status: "X-New", reasons: "X-New-Why",
                                                                          former: ["X-Old", "X-Older"])),
        // The milter's tag and former tags, any printable ASCII, commas and equals signs included.
        CommandLineConfiguration(ownFields: try! OwnFields.standard.withSubjectTag(
            "[PITCH]", alsoOurs: ["[MX]", "a,b=c", "*** OLD ***"])),
    ])
    func valuesSurviveTheTripThroughTheServiceExecutable(configuration: CommandLineConfiguration) {
        #expect(CommandLineConfiguration(lines: configuration.lines) == configuration)
    }

    /// Found by an audit: lines cut short (a damaged cache) read as the standard field names for those missing.
    @Test(arguments: ["", "database.path=/x\n", "classifier.pitch_cutoff=0.9\nclassifier.ham_cutoff=0.95\n",
                      "Error: no such file\n", "classifier.pitch_cutoff=0.95\nclassifier.ham_cutoff=0.1\n",
                      String(CommandLineConfiguration().lines.split(separator: "\n").dropLast()
                        .joined(separator: "\n"))])
    func anythingElseIsNotOurs(lines: String) {
        #expect(CommandLineConfiguration(lines: lines) == nil)
    }

    /// A system file that is there but cannot be read is skipped by a user's commands and is the service's all the
    /// same, so that the service says it cannot read it. (Tests run as root, who may read any file: a symbolic link
    /// that loops stands for a file there but not to be read.)
    @Test func theServiceKeepsToASystemFileItCannotRead() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("pitchfilter-\(UUID())").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: false)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let readable = directory + "/readable.toml", looping = directory + "/looping.toml"
        let missing = directory + "/missing.toml", dangling = directory + "/dangling.toml"
        try Data().write(to: URL(fileURLWithPath: readable))
        try FileManager.default.createSymbolicLink(atPath: looping, withDestinationPath: looping)
        try FileManager.default.createSymbolicLink(atPath: dangling, withDestinationPath: missing)
        let none: (String) -> String? = { _ in nil }
        for (system, command, service) in [(readable, readable, readable), (looping, nil, looping),
                                           (missing, nil, nil), (dangling, nil, nil)] as [(String, String?, String?)] {
            #expect(CommandLineConfiguration.file(environment: none, systemFile: system) == command)
            #expect(CommandLineConfiguration.serviceFile(environment: none, systemFile: system) == service)
        }
        let named: (String) -> String? = { $0 == "PITCHFILTER_CONFIG" ? missing : nil }
        #expect(CommandLineConfiguration.file(environment: named, systemFile: readable) == missing)
        #expect(CommandLineConfiguration.serviceFile(environment: named, systemFile: readable) == missing)
    }

    /// Found by an audit: `--config /dev/null` was refused as "not a regular file", where an admin means no file
    /// at all, even with the system one there. Any name of the null device says so; an empty file is still a file.
    @Test func theNullDeviceNamesNoFile() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("pitchfilter-\(UUID())").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: false)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let system = directory + "/system.toml", alias = directory + "/null"
        try Data().write(to: URL(fileURLWithPath: system))
        try FileManager.default.createSymbolicLink(atPath: alias, withDestinationPath: "/dev/null")
        for (named, expected) in [("/dev/null", nil), (alias, nil), ("/dev/zero", "/dev/zero"), (system, system)]
            as [(String, String?)] {
            let environment: (String) -> String? = { $0 == "PITCHFILTER_CONFIG" ? named : nil }
            #expect(CommandLineConfiguration.file(environment: environment, systemFile: system) == expected)
            #expect(CommandLineConfiguration.serviceFile(environment: environment, systemFile: system) == expected)
        }
    }

    /// `--db`, then $PITCHFILTER_DB, then the configuration file, then the XDG default; the file is only asked
    /// when the first two leave the path open.
    @Test func theDatabaseComesFromTheFileOnlyAfterTheFlagAndTheEnvironment() throws {
        struct Asked: Error {}
        let environment = ["PITCHFILTER_DB": "/env.sqlite", "HOME": "/home/maya"]
        #expect(try DatabaseLocation.resolve(option: "/flag.sqlite", environment: { environment[$0] }) {
            throw Asked()
        } == "/flag.sqlite")
        #expect(try DatabaseLocation.resolve(option: nil, environment: { environment[$0] }) {
            throw Asked()
        } == "/env.sqlite")
        #expect(try DatabaseLocation.resolve(option: nil, environment: { ["HOME": "/home/maya"][$0] }) {
            "/var/lib/pitchfilter/pitchfilter.sqlite"
        } == "/var/lib/pitchfilter/pitchfilter.sqlite")
        #expect(try DatabaseLocation.resolve(option: nil, environment: { ["HOME": "/home/maya"][$0] }) { nil }
            == "/home/maya/.local/share/pitchfilter/pitchfilter.sqlite")
        // A relative HOME, like a relative XDG_DATA_HOME, is passed over for the password database's.
        let own = String(cString: getpwuid(getuid())!.pointee.pw_dir) + "/.local/share/pitchfilter/pitchfilter.sqlite"
        #expect(try DatabaseLocation.resolve(option: nil, environment: { ["HOME": "maya"][$0] }) { nil } == own)
        #expect(try DatabaseLocation.resolve(option: nil, environment: { ["XDG_DATA_HOME": "data"][$0] }) { nil }
            == own)
    }

    /// Bytes that are not UTF-8 reach the program as U+FFFD, wherever the path comes from; the path with it would
    /// name another file.
    @Test(arguments: [
        ("/mail\u{FFFD}/db.sqlite", [:], "--db"),
        (nil, ["PITCHFILTER_DB": "/mail\u{FFFD}/db.sqlite"], "$PITCHFILTER_DB"),
        (nil, ["XDG_DATA_HOME": "/home/ma\u{FFFD}a/.data"], "$XDG_DATA_HOME"),
        (nil, ["HOME": "/home/ma\u{FFFD}a"], "the home directory"),
    ] as [(String?, [String: String], String)])
    func aDatabasePathThatIsNotUTF8IsRefused(option: String?, environment: [String: String], source: String) {
        #expect(throws: DatabaseLocation.NotUTF8.self) {
            try DatabaseLocation.resolve(option: option, environment: { environment[$0] })
        }
        do {
            _ = try DatabaseLocation.resolve(option: option, environment: { environment[$0] })
        } catch {
            #expect(error.source == source)
        }
        #expect(throws: DatabaseLocation.NotUTF8.self) {
            try DatabaseLocation.resolve(option: nil, environment: { _ in nil }) { "/srv/\u{FFFD}/db.sqlite" }
        }
    }

    @Test(.enabled(if: access(CommandLineConfiguration.systemFile, F_OK) != 0,
                   "this machine has /etc/pitchfilter/pitchfilter.toml, which the test cannot change"))
    func noFileMeansTheDefaultsAndNothingRun() {
        let loaded = CommandLineConfiguration.load(environment: { _ in nil }, services: ["/nonexistent/service"],
                                                   cacheDirectory: nil)
        #expect(loaded == .success(CommandLineConfiguration()))
    }

    /// Without the service executable, a file there is a failure naming the helper; a file not there is named
    /// first, as the helper would only say the same once installed.
    @Test(arguments: [
        (true, "reading it needs pitchfilter-service, installed beside pitchfilter"),
        (false, "cannot read it: no such file or directory"),
    ])
    func aFileWithoutTheServiceExecutableIsAClearFailure(fileExists: Bool, reason: String) throws {
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("config-\(UUID()).toml").path
        if fileExists { try Data("[classifier]\n".utf8).write(to: URL(fileURLWithPath: file)) }
        defer { try? FileManager.default.removeItem(atPath: file) }
        let loaded = CommandLineConfiguration.load(environment: { ["PITCHFILTER_CONFIG": file][$0] },
                                                   services: ["/nonexistent/pitchfilter-service"], cacheDirectory: nil)
        #expect(loaded == .failure(ConfigurationUnavailable(file: file, reason: reason)))
    }

    @Test func aServiceThatFailsGivesItsLastLine() throws {
        let script = FileManager.default.temporaryDirectory.appendingPathComponent("config-values-\(UUID()).sh")
        try writeScript(
            "#!/bin/sh\necho starting\necho \"pitchfilter: ${2#--config=}: line 2: expected a value\" >&2\nexit 78\n",
            to: script.path)
        defer { try? FileManager.default.removeItem(at: script) }
        let loaded = CommandLineConfiguration.load(environment: { ["PITCHFILTER_CONFIG": "/etc/x.toml"][$0] },
                                                   services: [script.path], cacheDirectory: nil)
        #expect(loaded == .failure(ConfigurationUnavailable(file: "/etc/x.toml",
                                                            reason: "line 2: expected a value")))
    }

    /// A configuration file, a service executable that answers for it and counts its calls, and a cache directory
    /// (`cache`, not made), in a directory of their own.
    struct CacheFixture {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("config-cache-\(UUID())").path
        var cache: String { directory + "/cache/pitchfilter" }
        var config: String { directory + "/pitchfilter.toml" }
        let answer = CommandLineConfiguration(cutoffs: Cutoffs(pitch: 0.95, ham: 0.1)!)
        var expected: Result<CommandLineConfiguration, ConfigurationUnavailable> { .success(answer) }

        init() throws {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            try writeScript("#!/bin/sh\necho called >> \(directory)/calls\nprintf '%s' '\(answer.lines)'\n",
                            to: directory + "/service.sh")
            try "[classifier]\n".write(toFile: config, atomically: false, encoding: .utf8)
        }

        func load() -> Result<CommandLineConfiguration, ConfigurationUnavailable> {
            CommandLineConfiguration.load(environment: { [config] in ["PITCHFILTER_CONFIG": config][$0] },
                                          services: [directory + "/service.sh"], cacheDirectory: cache)
        }

        /// How often the service executable was asked.
        func calls() -> Int {
            ((try? String(contentsOfFile: directory + "/calls", encoding: .utf8)) ?? "").count / "called\n".count
        }

        func remove() { try? FileManager.default.removeItem(atPath: directory) }
    }

    /// The service executable is asked once per version of the file: the answer is cached until the file changes.
    @Test func theAnswerIsCachedUntilTheFileChanges() throws {
        let fixture = try CacheFixture()
        defer { fixture.remove() }
        let (directory, config, expected) = (fixture.directory, fixture.config, fixture.expected)
        func load() -> Result<CommandLineConfiguration, ConfigurationUnavailable> { fixture.load() }
        func calls() -> Int { fixture.calls() }
        #expect(load() == expected)
        #expect(load() == expected)
        #expect(calls() == 1)
        // An edit of the same size, even within the same second, changes the file's change time.
        usleep(10_000)
        try "[classifier]\n".write(toFile: config, atomically: false, encoding: .utf8)
        #expect(load() == expected)
        #expect(calls() == 2)
        // A cache from another file or version is not taken.
        try "pitchfilter 0.0.1 1 2 3 4.5 /elsewhere\nclassifier.pitch_cutoff=0.5\nclassifier.ham_cutoff=0.1\n"
            .write(toFile: directory + "/cache/pitchfilter/config-values", atomically: false, encoding: .utf8)
        #expect(load() == expected)
        #expect(calls() == 3)
        // Nor one cut short (found by an audit: damaged, it was read with the fields it lacked left standard).
        let cache = directory + "/cache/pitchfilter/config-values"
        let whole = try String(contentsOfFile: cache, encoding: .utf8)
        #expect(whole.hasSuffix("\nend\n"))
        try String(whole.dropLast("end\n".count)).write(toFile: cache, atomically: false, encoding: .utf8)
        #expect(load() == expected)
        #expect(calls() == 4)
        #expect(load() == expected)
        #expect(calls() == 4)
    }

    /// Found by an audit: the answer was written through a link another user put where it goes, overwriting the
    /// file the link named (root's, with HOME in that user's directory), and read from a directory anyone may write.
    /// A link is never followed, and a directory others may write is not used at all.
    @Test func theCacheFollowsNoLinkAndSharesNoDirectory() throws {
        let fixture = try CacheFixture()
        defer { fixture.remove() }
        let (directory, cache, expected) = (fixture.directory, fixture.cache, fixture.expected)
        try FileManager.default.createDirectory(atPath: cache, withIntermediateDirectories: true)
        #expect(chmod(cache, 0o700) == 0)
        func load() -> Result<CommandLineConfiguration, ConfigurationUnavailable> { fixture.load() }
        func calls() -> Int { fixture.calls() }
        // Links where this process writes its answer and where it reads it: neither target changes.
        let victim = directory + "/victim"
        try "precious\n".write(toFile: victim, atomically: false, encoding: .utf8)
        #expect(symlink(victim, cache + "/config-values.\(getpid())") == 0)
        #expect(load() == expected)
        #expect(try String(contentsOfFile: victim, encoding: .utf8) == "precious\n")
        #expect(load() == expected)
        #expect(calls() == 1)  // written in place of the link, and read
        #expect(unlink(cache + "/config-values") == 0 && symlink(victim, cache + "/config-values") == 0)
        #expect(load() == expected)
        #expect(calls() == 2)  // the link is not read, and is replaced, not written through
        #expect(try String(contentsOfFile: victim, encoding: .utf8) == "precious\n")
        // A directory others may write is neither read nor written.
        #expect(chmod(cache, 0o777) == 0)
        #expect(load() == expected)
        #expect(load() == expected)
        #expect(calls() == 4)
    }
}

/// Writes an executable script through /bin/sh, so that this process never holds a descriptor open for writing it.
/// Tests run in parallel: a process another test started at that moment would inherit such a descriptor, and
/// executing the script would then fail with ETXTBSY ("text file busy"), as it once did.
private func writeScript(_ text: String, to path: String) throws {
    let shell = Process()
    shell.executableURL = URL(fileURLWithPath: "/bin/sh")
    shell.arguments = ["-c", "printf '%s' \"$1\" > \"$2\" && chmod 755 \"$2\"", "sh", text, path]
    try shell.run()
    shell.waitUntilExit()
    guard shell.terminationStatus == 0 else { throw CocoaError(.fileWriteUnknown) }
}
