import ArgumentParser
import Foundation
import PitchCommandLine
import PitchEngine

@main
enum Main {
    static func main() {
        let arguments = Array(CommandLine.arguments.dropFirst())
        // The pipe filter starts once per delivered message. Parsing its two possible arguments here skips the
        // argument parser's start-up, which measured 5 ms of reflection: more than the filtering itself.
        if let databaseOption = PipeFilter.plainArguments(arguments) {
            PipeFilter.run(databaseOption: databaseOption)
        }
        if ServiceCommands.isServiceCommand(arguments) { ServiceCommands.exec(arguments) }
        if let topic = unknownHelpTopic(arguments) {
            // swift-argument-parser's `help` prints the top-level help for a topic it does not know, with status 0.
            FileHandle.standardError.write(Data(
                "Error: no command '\(topic)': see 'pitchfilter --help'.\n".utf8))
            exit(64)  // EX_USAGE, as for any other unknown command
        }
        if let bundle = shortOptionBundle(arguments) {
            FileHandle.standardError.write(Data(("Error: unknown option '\(bundle)' (a file whose name begins with "
                + "'-' is given as ./\(bundle), or after '--').\n").utf8))
            exit(64)
        }
        PitchFilterCommand.main()
    }

    /// The first argument before any "--" that the parser would read as a bundle of short options ("-hello.eml"):
    /// no command has a short option but -h, so it can only be a file name or a mistake. Read as one, a file named
    /// "-hello.eml" printed the help with status 0, which `classify` says of a pitch (found by an audit); "-x.eml"
    /// was "Missing expected argument". Numbers ("-1", "-0.5", "-1e5") are left to the parser; "-inf" and "-nan",
    /// which Double reads too, are not numbers anyone gives.
    static func shortOptionBundle(_ arguments: [String]) -> String? {
        arguments.prefix(while: { $0 != "--" }).first { argument in
            guard argument.hasPrefix("-"), !argument.hasPrefix("--"), argument.count > 2 else { return false }
            return Double(argument).map { !$0.isFinite } ?? true
        }
    }

    /// The first name after `help` that is not a command under the names before it: `nosuch` of
    /// `pitchfilter help nosuch`, `nosuch` of `pitchfilter help contacts nosuch`; or, with `--help` or `-h`, the
    /// first name that is not a command where one is expected: `forget` of `pitchfilter forget --help`, which
    /// printed the top-level help with status 0 where `pitchfilter forget x` is a usage error (found by an audit).
    /// Options are left to the parser.
    static func unknownHelpTopic(_ arguments: [String]) -> String? {
        if arguments.first != "help", arguments.contains(where: { $0 == "--help" || $0 == "-h" }) {
            var command: ParsableCommand.Type = PitchFilterCommand.self
            for name in arguments.prefix(while: { $0 != "--" }) where !name.hasPrefix("-") {
                let subcommands = command.configuration.subcommands
                guard !subcommands.isEmpty else { return nil }  // a command's own arguments follow
                guard let named = subcommands.first(where: {
                    $0.configuration.commandName == name || $0.configuration.aliases.contains(name)
                }) else { return name }
                command = named
            }
            return nil
        }
        guard arguments.first == "help" else { return nil }
        var command: ParsableCommand.Type = PitchFilterCommand.self
        // `help help` is argument-parser's own.
        if arguments.dropFirst().filter({ !$0.hasPrefix("-") }) == ["help"] { return nil }
        for name in arguments.dropFirst() where !name.hasPrefix("-") {
            let named = command.configuration.subcommands.first {
                $0.configuration.commandName == name || $0.configuration.aliases.contains(name)
            }
            guard let named else { return name }
            command = named
        }
        return nil
    }
}

/// Every command states its `commandName`: without it the parser derives the name from the type with
/// `String(describing:)`, three failed protocol-conformance lookups per command at every start (a scan of every
/// conformance in the executable each time). `pitchfilter --version` went from 5.5 to 5.1 ms (perf stat, 100 runs).
struct PitchFilterCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "pitchfilter",
        abstract: "Recognises form-letter cold pitches and tags them; never bounces, rejects or loses mail.",
        version: Engine.programVersion,
        subcommands: [Filter.self, Classify.self, Train.self, Stats.self, Eval.self, Contacts.self, Backup.self, Restore.self,
                      ServeEntry.self, QuarantineEntry.self, StarterModelCommand.self]
    )

    func run() { exitForMissingSubcommand("pitchfilter", usage: Self.usageString(for: Self.self)) }
}

/// `serve` and `quarantine` as `pitchfilter --help` lists them. `Main` hands their arguments to
/// pitchfilter-service before the parser runs, so these only ever run for a form the check there missed.
struct ServeEntry: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "serve", abstract: ServiceCommands.serveAbstract)
    @Argument(parsing: .captureForPassthrough) var arguments: [String] = []
    func run() { ServiceCommands.exec(["serve"] + arguments) }
}

struct QuarantineEntry: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "quarantine",
                                                    abstract: ServiceCommands.quarantineAbstract)
    @Argument(parsing: .captureForPassthrough) var arguments: [String] = []
    func run() { ServiceCommands.exec(["quarantine"] + arguments) }
}
