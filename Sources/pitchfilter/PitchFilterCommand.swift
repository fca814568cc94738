import ArgumentParser
import PitchEngine

@main
enum Main {
    static func main() async {
        // The pipe filter starts once per delivered message. Parsing its two possible arguments here skips the
        // argument parser's start-up, which measured 5 ms of reflection: more than the filtering itself.
        if let databaseOption = PipeFilter.plainArguments(Array(CommandLine.arguments.dropFirst())) {
            PipeFilter.run(databasePath: DatabaseLocation.resolve(option: databaseOption,
                                                                  environment: Environment.current))
        }
        await PitchFilterCommand.main()
    }
}

struct PitchFilterCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "pitchfilter",
        abstract: "Recognises form-letter cold pitches and tags them; never bounces, rejects or loses mail.",
        version: Engine.programVersion,
        subcommands: [Filter.self, Classify.self, Train.self, Stats.self, Eval.self, Contacts.self,
                      Serve.self, QuarantineCommand.self, StarterModelCommand.self]
    )
}

/// Where the token database is: --db, else $PITCHFILTER_DB, else $XDG_DATA_HOME/pitchfilter/pitchfilter.sqlite
/// (XDG's default $HOME/.local/share when unset).
struct DatabaseOption: ParsableArguments {
    @Option(name: .long, help: ArgumentHelp(
        "The token database (default: $PITCHFILTER_DB, else $XDG_DATA_HOME/pitchfilter/pitchfilter.sqlite).",
        valueName: "path"))
    var db: String?

    var path: String { DatabaseLocation.resolve(option: db, environment: Environment.current) }
}
