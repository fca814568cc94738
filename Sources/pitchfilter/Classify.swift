import ArgumentParser
import Foundation
import PitchClassifier
import PitchEngine
import PitchMessage
import PitchStore

struct Classify: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Classify messages and print a verdict and score for each.",
        discussion: """
            PATH is a message file, a directory of message files, a Maildir, an mbox, or - for standard input. \
            Each message gives a line "<verdict> <score> <path>". With one message the exit status is \
            0 pitch, 1 ham, 2 unsure, 3 error (bogofilter's convention); with several it is 0, or 3 if any failed.
            """)

    @OptionGroup var database: DatabaseOption
    @Flag(help: "One JSON object per line: path, verdict, score (and tokens with --explain).") var json = false
    @Flag(help: "List the tokens that drove each score, with their counts and probabilities.") var explain = false
    @Argument(help: ArgumentHelp("Messages to classify.", valueName: "path")) var paths: [String]

    func run() throws {
        let engine: Engine
        do {
            engine = Engine(store: try Stores.openForReading(database.path))
        } catch {
            Stores.report(error)
            throw ExitCode(3)
        }
        var classified = 0
        var failed = 0
        var lastVerdict: Verdict?
        do {
            for path in paths {
                try MailSource.forEach(at: path, unreadable: { Stores.report($0); failed += 1 }) { item in
                    let assessment = try engine.assess(Message(bytes: item.bytes))
                    print(render(item.name, assessment.classification))
                    classified += 1
                    lastVerdict = assessment.classification.verdict
                }
            }
        } catch {
            Stores.report(error)  // the database failed: the rest would fail the same way
            throw ExitCode(3)
        }
        if classified == 0 && failed == 0 {
            Stores.report(MailSourceError.unreadable(paths.joined(separator: " "), "no messages found"))
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
        guard json else {
            var line = "\(classification.verdict.rawValue) \(Engine.formatScore(classification.score)) \(name)"
            if explain {
                for evidence in classification.evidence.prefix(Self.explainedTokens) {
                    line += "\n    " + String(format: "%.4f", evidence.probability)
                        + "  pitch \(evidence.counts.pitch) ham \(evidence.counts.ham)  \(evidence.token)"
                }
            }
            return line
        }
        var object: [String: Any] = [
            "path": name, "verdict": classification.verdict.rawValue, "score": classification.score,
        ]
        if explain {
            object["tokens"] = classification.evidence.prefix(Self.explainedTokens).map {
                ["token": $0.token, "pitch": Int($0.counts.pitch), "ham": Int($0.counts.ham),
                 "probability": $0.probability] as [String: Any]
            }
        }
        let data = (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes]))
        return data.map { String(decoding: $0, as: UTF8.self) } ?? "{}"
    }

    /// The strongest tokens are what a person wants to see; hundreds more would bury them.
    static let explainedTokens = 25
}

/// Opening the database the way every command expects.
enum Stores {
    /// Read-only; a database that does not exist yet means "nothing trained" (the starter model decides).
    static func openForReading(_ path: String) throws -> SQLiteTokenStore? {
        do {
            return try SQLiteTokenStore(path: path, tokenizerIdentity: Engine.tokenizerIdentity, access: .readOnly)
        } catch StoreError.missing {
            return nil
        }
    }

    /// One line on standard error; a closed standard error is no reason to fail (or trap, as FileHandle would).
    static func report(_ error: Error) {
        FileDescriptor.writeAll(2, Array("pitchfilter: \(error)\n".utf8)[...])
    }
}
