import ArgumentParser
import FoundationEssentials
import PitchClassifier
import PitchCommandLine
import PitchEngine
import PitchMessage
import PitchStore
import PitchTokenizer

struct Classify: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "classify",
        abstract: "Classify messages and print a verdict and score for each.",
        discussion: """
            PATH is a message file, a directory of message files, a Maildir, an mbox, or - for standard input \
            (one message). \
            Each message gives a line "<verdict> <score> <path>". With one message the exit status is \
            0 pitch, 1 ham, 2 unsure, 3 error (bogofilter's convention); with several it is 0, or 3 if any failed.
            """)

    @OptionGroup var database: DatabaseOption
    @OptionGroup var configuration: ConfigurationOption
    @Flag(help: "One JSON object per line: path, verdict, score (and tokens with --explain); path and error for a path that could not be read.") var json = false
    @Flag(help: "List the tokens that drove each score, with their counts and probabilities: the 25 strongest, and every form-letter, relationship and template signal (sig:, rel:, tmpl:) among the rest that counted.") var explain = false
    @Argument(help: ArgumentHelp("Messages to classify.", valueName: "path")) var paths: [String]

    func run() throws {
        let path = try database.path()
        let cutoffs = try CommandLineConfiguration.cutoffsForCommand()
        let store: SQLiteTokenStore?
        do {
            store = try Stores.openForReading(path)
        } catch {
            Stores.report(error)
            throw ExitCode(3)
        }
        let schedule = ModelSchedule.standard.withCutoffs(cutoffs)
        let tokenizer = Tokenizer(ownFields: try CommandLineConfiguration.ownFieldsForCommand())
        let counts: (any TokenCountSource)?
        do {
            counts = try Stores.countSource(store)
        } catch {
            Stores.report(error)
            throw ExitCode(3)
        }
        var engine = Engine(store: counts, schedule: schedule, contacts: store ?? ContactSnapshot.empty,
                            templates: store, tokenizer: tokenizer)
        var classified = 0
        var failed = 0
        var lastVerdict: Verdict?
        do {
            try MailSource.forEachBatchReadingAhead(at: paths, unreadable: { error in
                Stores.report(error)
                failed += 1
                // A program reading the lines learns of the path too, not only a person reading stderr.
                if json, case .unreadable(let path, let reason) = error {
                    _ = FileDescriptor.writeAll(1, Array((JSON.line(Failure(path: path, error: reason)) + "\n").utf8)[...])
                } else if json, case .noMail(let path, let reason) = error {
                    _ = FileDescriptor.writeAll(1, Array((JSON.line(Failure(path: path, error: reason)) + "\n").utf8)[...])
                }
            }) { batch in
                // A run of more than one batch reads the whole database once rather than a few hundred rows per
                // message; either way each message sees one consistent state of it.
                if batch.count == MailSource.batchCount, let store, !(engine.store is TokenSnapshot) {
                    engine = Engine(store: try store.snapshot(), schedule: schedule,
                                    contacts: try store.contactSnapshot(),
                                    templates: try store.templateSnapshot(), tokenizer: tokenizer)
                }
                let results = Parallel.map(batch) { [engine] item in
                    Result { try engine.assess(Message(bytes: item.bytes), explaining: explain).classification }
                }
                var output: [UInt8] = []
                for (item, result) in zip(batch, results) {
                    let classification = try result.get()  // the database failed: the rest would fail the same way
                    output += render(item.name, classification).utf8
                    output.append(0x0A)
                    classified += 1
                    lastVerdict = classification.verdict
                }
                // Said why when it fails, as every other command does (found by an audit: exit 3 and nothing on
                // stderr under `> /dev/full`).
                try Stores.writeOutput(output[...])
            }
        } catch let exit as ExitCode {
            throw exit
        } catch {
            Stores.report(error)
            throw ExitCode(3)
        }
        if classified + failed == 1, failed == 0, let lastVerdict {
            switch lastVerdict {
            case .pitch: throw ExitCode(0)
            case .ham: throw ExitCode(1)
            case .unsure: throw ExitCode(2)
            }
        }
        if failed > 0 { throw ExitCode(3) }
    }

    private func render(_ name: String, _ classification: Classification) -> String {
        let strongest = explain ? Self.explained(classification.strongestEvidence) : []
        guard json else {
            // A file name may hold a newline or a terminal's escape sequence: shown escaped (`--json` has it exact).
            var line = "\(classification.verdict.rawValue) \(Engine.formatScore(classification.score)) "
                + TerminalText.safe(name)
            if explain, classification.decidedByEvidence {
                line += "\n    a pitch below the cutoff: the pitch evidence is decisive (tail \(classification.pitchTail)) "
                    + "and there is no ham evidence to speak of (tail \(classification.hamTail))"
            }
            if explain, classification.tooLittleEvidence {
                let count = classification.evidenceBeyondSubject
                line += "\n    a pitch's score, but \(count == 0 ? "no" : "only \(count)") token"
                    + "\(count == 1 ? "" : "s") beyond the Subject say anything (a pitch needs "
                    + "\(Classifier.minimumPitchEvidence)): unsure"
            }
            for evidence in strongest {
                line += "\n    \(Engine.formatScore(evidence.probability))  pitch \(evidence.counts.pitch) "
                    + "ham \(evidence.counts.ham)\(Self.weighedHam(evidence))  \(TerminalText.safe(evidence.token))"
                    + (evidence.weight < 1 ? "  (text, weight \(Self.formatWeight(evidence.weight)))" : "")
            }
            return line
        }
        let line = Line(path: name, score: classification.score, verdict: classification.verdict.rawValue,
                        tokens: explain ? strongest.map {
                            Line.Token(token: $0.token, pitch: $0.counts.pitch, ham: $0.counts.ham,
                                       weighed_ham: $0.weighed.ham, probability: $0.probability, weight: $0.weight)
                        } : nil)
        return JSON.line(line)
    }

    /// One `--json` line.
    struct Line: Encodable {
        struct Token: Encodable {
            var token: String
            var pitch: UInt32
            var ham: UInt32
            /// The ham count as it was scored: less than `ham` where the user's own ham was weighed against the
            /// user's fewer pitches beside the starter model (`stats` shows the weight); else `ham`.
            var weighed_ham: Double
            var probability: Double
            /// 1, or less for a word or pair of the text (the classifier's text weight).
            var weight: Double
        }

        var path: String
        var score: Double
        var verdict: String
        var tokens: [Token]?
    }

    /// The `--json` line for a path that gave no message: its file could not be read, or held none. It has the
    /// keys every line has, `verdict` "error" and `score` null, and the reason.
    struct Failure: Encodable {
        var path: String
        /// "error", so that every line has the keys issue 3 names; `score` is null.
        var verdict = "error"
        var score: Double? = nil
        var error: String

        init(path: String, error: String) {
            self.path = path
            self.error = error
        }

        func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(path, forKey: .path)
            try container.encode(verdict, forKey: .verdict)
            try container.encodeNil(forKey: .score)
            try container.encode(error, forKey: .error)
        }

        enum CodingKeys: String, CodingKey {
            case path, verdict, score, error
        }
    }

    /// " (weighed 7.5)" after the ham count when the user's ham was weighed down to score it
    /// (`ModelSchedule.ownHamWeight`), so that "ham 30" is not read as thirty messages' worth; else nothing.
    static func weighedHam(_ evidence: TokenEvidence) -> String {
        guard abs(evidence.weighed.ham - Double(evidence.counts.ham)) > 1e-9 else { return "" }
        let tenths = (evidence.weighed.ham * 10).rounded()
        let whole = Int(tenths) / 10
        let fraction = Int(tenths) % 10
        return " (weighed \(whole)" + (fraction == 0 ? "" : ".\(fraction)") + ")"
    }

    /// "1/3" for the default text weight, else two decimals.
    static func formatWeight(_ weight: Double) -> String {
        for denominator in 2...4 where abs(weight * Double(denominator) - 1) < 1e-9 { return "1/\(denominator)" }
        let hundredths = min(Int((weight * 100).rounded()), 99)  // a weight below 1 never shows as 1
        return "0." + (hundredths < 10 ? "0" : "") + String(hundredths)
    }

    /// The strongest tokens are what a person wants to see; hundreds more would bury them.
    static let explainedTokens = 25

    /// The tokens `--explain` lists: the `explainedTokens` strongest, then every signal among the rest (form letter,
    /// relationship, template), weakest last, so that each one that counted in the score can be seen (found by an
    /// audit: `rel:first-contact` at 0.62 was the 31st, and not shown). One too near 0.5 to count is in none.
    static func explained(_ strongest: [TokenEvidence]) -> [TokenEvidence] {
        Array(strongest.prefix(explainedTokens)) + strongest.dropFirst(explainedTokens).filter { isSignal($0.token) }
    }

    static func isSignal(_ token: String) -> Bool {
        ["sig:", "rel:", "tmpl:"].contains { token.hasPrefix($0) }
    }
}
