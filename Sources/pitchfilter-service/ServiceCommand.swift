import ArgumentParser
import PitchCommandLine
import PitchEngine

/// `pitchfilter serve` and `pitchfilter quarantine`, which `pitchfilter` runs by exec'ing this executable with the
/// same arguments (see `ServiceCommands`). It names itself `pitchfilter` in usage and help, since that is what
/// the user typed.
@main
struct ServiceCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "pitchfilter",
        abstract: "The pitchfilter service, and its quarantine.",
        version: Engine.programVersion,
        subcommands: [Serve.self, QuarantineCommand.self, ConfigValuesCommand.self]
    )

    func run() async { exitForMissingSubcommand("pitchfilter", usage: Self.usageString(for: Self.self)) }
}
