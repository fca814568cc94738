import ArgumentParser
import PitchCommandLine
import PitchEngine
import PitchStore

struct Stats: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "stats",
                                                    abstract: "Show what the token database holds.")

    @OptionGroup var database: DatabaseOption

    func run() throws {
        let path = try database.path()
        print("database: \(path)")
        do {
            if let store = try Stores.openForReading(path) {
                let stats = try store.statistics()
                print("messages: pitch \(stats.totals.pitch), ham \(stats.totals.ham)")
                print("tokens: \(stats.tokens)")
                print("learned messages: \(stats.ledgerEntries)")
                let memory = try store.memoryCounts()
                print("known correspondents: \(memory.contacts)")
                print("template sightings: \(memory.templateSightings) (last \(TemplateWindow.seconds / 86_400) days)")
                print("message ids seen: \(try store.messageIDCount()) (last \(MessageIDWindow.seconds / 86_400) days)")
                print("in quarantine: \(try store.quarantineEntries(.states([.held, .moving])).count)")
                if let size = stats.sizeBytes { print("size: \(size) bytes") }
                print("tokenizer: \(stats.tokenizerIdentity)")
                print("schema: \(stats.schemaVersion)")
                let schedule = ModelSchedule.standard
                print("model: " + (schedule.addsStarter(to: stats.totals)
                    ? "own training plus the starter model (until \(schedule.starterUntil) of each class are trained)"
                    : "own training"))
            } else {
                print("messages: none trained yet (the starter model decides)")
            }
        } catch {
            Stores.report(error)
            throw ExitCode(3)
        }
        if let starter = StarterModel.embedded {
            print("starter model: pitch \(starter.totals.pitch), ham \(starter.totals.ham), \(starter.tokenCount) tokens")
        } else {
            print("starter model: none built into this executable")
        }
    }
}
