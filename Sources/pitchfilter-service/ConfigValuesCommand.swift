import ArgumentParser
import PitchCommandLine
import PitchDaemon

/// `pitchfilter-service config-values --config FILE`: what the command line takes from the configuration file,
/// checked exactly as `serve` checks it, one `key=value` line each (see `CommandLineConfiguration`). Not for
/// people: `pitchfilter` runs it when a configuration file exists.
struct ConfigValuesCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: CommandLineConfiguration.valuesCommand,
        abstract: "Print the configuration values the command line uses.",
        // Its own executable's name: `pitchfilter` passes only serve and quarantine on (found by an audit: the help
        // named `pitchfilter config-values`, which fails).
        usage: "pitchfilter-service \(CommandLineConfiguration.valuesCommand) --config <file>",
        shouldDisplay: false)

    @Option(help: ArgumentHelp("The configuration file.", valueName: "file"))
    var config: String

    func run() throws {
        let configuration: Configuration
        do {
            configuration = try ConfigurationFile.read(config)
        } catch {
            Stores.report(error)
            throw ExitCode(78)  // EX_CONFIG
        }
        let values = CommandLineConfiguration(databasePath: configuration.databasePath,
                                              cutoffs: configuration.cutoffs, reasons: configuration.reasons,
                                              ownFields: configuration.ownFields,
                                              sharedModel: configuration.sharedModel)
        print(values.lines, terminator: "")
    }
}
