import Foundation
import PitchEngine
import Testing

@testable import PitchCommandLine

@Suite struct CommandLineConfigurationTests {
    @Test(arguments: [
        CommandLineConfiguration(),
        CommandLineConfiguration(databasePath: "/var/lib/pitchfilter/x=y.sqlite", cutoffs: Cutoffs(pitch: 1, ham: 0)!),
        CommandLineConfiguration(databasePath: nil, cutoffs: Cutoffs(pitch: 0.95, ham: 0.125)!),
    ])
    func valuesSurviveTheTripThroughTheServiceExecutable(configuration: CommandLineConfiguration) {
        #expect(CommandLineConfiguration(lines: configuration.lines) == configuration)
    }

    @Test(arguments: ["", "database.path=/x\n", "classifier.pitch_cutoff=0.9\nclassifier.ham_cutoff=0.95\n",
                      "Error: no such file\n"])
    func anythingElseIsNotOurs(lines: String) {
        #expect(CommandLineConfiguration(lines: lines) == nil)
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
        #expect(DatabaseLocation.resolve(option: nil, environment: { ["HOME": "/home/maya"][$0] }) {
            "/var/lib/pitchfilter/pitchfilter.sqlite"
        } == "/var/lib/pitchfilter/pitchfilter.sqlite")
        #expect(DatabaseLocation.resolve(option: nil, environment: { ["HOME": "/home/maya"][$0] }) { nil }
            == "/home/maya/.local/share/pitchfilter/pitchfilter.sqlite")
    }

    @Test func noFileMeansTheDefaultsAndNothingRun() {
        let loaded = CommandLineConfiguration.load(environment: { _ in nil }, services: ["/nonexistent/service"])
        // Unless this machine has /etc/pitchfilter/pitchfilter.toml, which the test cannot change.
        if access(CommandLineConfiguration.systemFile, F_OK) != 0 {
            #expect(loaded == .success(CommandLineConfiguration()))
        }
    }

    @Test func aFileWithoutTheServiceExecutableIsAClearFailure() {
        let loaded = CommandLineConfiguration.load(environment: { ["PITCHFILTER_CONFIG": "/etc/x.toml"][$0] },
                                                   services: ["/nonexistent/pitchfilter-service"])
        #expect(loaded == .failure(ConfigurationUnavailable(
            file: "/etc/x.toml", reason: "reading it needs pitchfilter-service, installed beside pitchfilter")))
    }

    @Test func aServiceThatFailsGivesItsLastLine() throws {
        let script = FileManager.default.temporaryDirectory.appendingPathComponent("config-values-\(UUID()).sh")
        try "#!/bin/sh\necho starting\necho \"pitchfilter: ${2#--config=}: line 2: expected a value\" >&2\nexit 78\n"
            .write(to: script, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(at: script) }
        chmod(script.path, 0o755)
        let loaded = CommandLineConfiguration.load(environment: { ["PITCHFILTER_CONFIG": "/etc/x.toml"][$0] },
                                                   services: [script.path])
        #expect(loaded == .failure(ConfigurationUnavailable(file: "/etc/x.toml",
                                                            reason: "line 2: expected a value")))
    }
}
