import ArgumentParser
import PitchClassifier
import PitchCommandLine
import PitchEngine
import PitchStore

#if canImport(Glibc)
import Glibc
#endif

struct Stats: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "stats",
                                                    abstract: "Show what the token database holds.")

    @OptionGroup var database: DatabaseOption
    @OptionGroup var configuration: ConfigurationOption

    func run() throws {
        let path = try database.path()
        // Written only once everything is read: a database that fails half-way gives its error alone, not half
        // a report that looks like a database.
        var lines = ["database: \(path)"]
        // Read as no database, as SQLite does: said, since it may be one that was truncated (found by an audit).
        if SQLiteTokenStore.isEmptyFile(path) {
            lines[0] += " (an empty file: nothing has been written to it, or it was emptied; if it held a "
                + "database, restore it from a backup)"
        } else if access(path, F_OK) != 0, errno == ENOENT {
            // Said, so that a mistyped --db does not read as a database with nothing trained (found by an audit).
            lines[0] += " (no file there yet)"
        }
        do {
            if let store = try Stores.openForReading(path) {
                if let shared = store.sharedModel { lines.append("shared model: \(shared.location)") }
                let stats = try store.statistics()
                lines.append("messages: pitch \(stats.totals.pitch), ham \(stats.totals.ham)")
                lines.append("tokens: \(stats.tokens)")
                lines.append("learned messages: \(stats.ledgerEntries)")
                let memory = try store.memoryCounts(sightingsSince: Int64(time(nil)) - TemplateWindow.seconds)
                lines.append("known correspondents: \(memory.contacts)")
                lines.append("template sightings: \(memory.templateSightings) (last \(TemplateWindow.seconds / 86_400) days)")
                lines.append("in quarantine: \(try store.quarantineEntries(.states([.held, .moving])).count)")
                if let size = stats.sizeBytes { lines.append("size: \(size) bytes") }
                lines.append("tokenizer: \(stats.tokenizerIdentity)")
                lines.append("schema: \(stats.schemaVersion)")
                lines += Self.modelLines(stats.totals, agreement: try store.starterAgreement())
            } else if let shared = try Stores.sharedModel(readOnly: true) {
                // No database on this host yet: the shared model is what classifies here.
                let stats = try shared.statistics()
                lines.append("shared model: \(shared.location)")
                lines.append("messages: pitch \(stats.totals.pitch), ham \(stats.totals.ham)")
                lines.append("tokens: \(stats.tokens)")
                lines.append("learned messages: \(stats.ledgerEntries)")
                lines.append("this host: no database yet (no correspondents, templates or quarantine)")
                lines += Self.modelLines(stats.totals, agreement: try shared.starterAgreement())
            } else {
                lines.append("messages: none trained yet (the starter model decides)")
            }
        } catch {
            Stores.report(error)
            throw ExitCode(3)
        }
        if let starter = StarterModel.embedded {
            lines.append("starter model: pitch \(starter.totals.pitch), ham \(starter.totals.ham), \(starter.tokenCount) tokens")
        } else {
            lines.append("starter model: none built into this executable")
        }
        try Stores.writeAnswer(lines.joined(separator: "\n"))
    }

    /// Which counts and settings classify here, given the training's totals and its agreement with the starter.
    static func modelLines(_ totals: ClassTotals, agreement: Double?) -> [String] {
        let schedule = ModelSchedule.standard
        let model = !schedule.addsStarter(to: totals, agreement: agreement) ? "own training"
            : ModelSchedule.scoredOwnTotals(totals) == ClassTotals()
                ? "the starter model alone (own training counts once both classes have messages)"
            : schedule.agrees(agreement) ? "own training plus the starter model (which it agrees with)"
            : "own training plus the starter model (until \(schedule.starterUntil) of each class are trained)"
        var lines = ["model: " + model]
        // Said because it moves verdicts: a mailbox of ham beside a few pitches is scored as the pitches' number.
        let weight = schedule.ownHamWeight(for: totals)
        if schedule.addsStarter(to: totals, agreement: agreement), ModelSchedule.scoredOwnTotals(totals) != ClassTotals(),
           weight < 1 {
            lines.append("own ham weight: \(Eval.short(weight)) each beside the starter model (more ham trained than "
                         + "pitches)")
        }
        return lines + [agreementLine(agreement, schedule: schedule)]
    }

    /// What the training's agreement with the starter model (`StarterAgreement`) makes of the settings.
    static func agreementLine(_ agreement: Double?, schedule: ModelSchedule) -> String {
        guard let agreement else { return "agreement with the starter model: not measured (too little training)" }
        let shown = (agreement < 0 ? "-" : "") + Eval.short(abs(agreement))  // short() takes no sign
        return schedule.agrees(agreement)
            ? "agreement with the starter model: \(shown) (settings for pitches against business mail)"
            : "agreement with the starter model: \(shown) (below \(Eval.short(schedule.agreementThreshold)): "
                + "a large database's usual settings)"
    }
}
