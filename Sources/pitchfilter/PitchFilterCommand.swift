import ArgumentParser
import PitchEngine

@main
struct PitchFilterCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "pitchfilter",
        abstract: "Recognises form-letter cold pitches and tags them; never bounces, rejects or loses mail.",
        version: Engine.programVersion,
        subcommands: [Filter.self, Classify.self, Train.self, Stats.self, StarterModelCommand.self]
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
