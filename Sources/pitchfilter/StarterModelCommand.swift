import ArgumentParser
import FoundationEssentials
import PitchClassifier
import PitchCommandLine
import PitchEngine
import PitchMessage
import PitchStore
import PitchTokenizer

#if canImport(Glibc)
import Glibc
#endif

/// For developers: trains the starter model from sample folders and writes it as Swift source.
/// Scripts/build-starter-model.sh runs it; a test checks the committed model still matches the samples.
struct StarterModelCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "starter-model", abstract: "Build the embedded starter model (for developers).",
        shouldDisplay: false)

    @Option(parsing: .upToNextOption) var pitch: [String]
    @Option(parsing: .upToNextOption) var ham: [String]
    @Option(parsing: .upToNextOption, help: "The owners' sent mail, replayed with the rest.") var sent: [String] = []
    @Option(help: "The Swift file to write.") var output: String

    func run() throws {
        let model = try StarterModelBuilder.build(pitch: pitch, ham: ham, sent: sent)
        guard let source = StarterModelBuilder.swiftSource(model) else {
            Stores.reportLine("a token's count is over 65,535, more than the embedded model's records hold")
            throw ExitCode(3)
        }
        // Written beside the output and renamed over it: Foundation's own atomic write leaves a directory in /tmp.
        let temporary = output + ".tmp"
        try source.write(toFile: temporary, atomically: false, encoding: .utf8)
        guard rename(temporary, output) == 0 else {
            let reason = String(cString: strerror(errno))
            unlink(temporary)
            Stores.reportLine("cannot write \(output): \(reason)")
            throw ExitCode(3)
        }
        print("starter model: pitch \(model.totals.pitch), ham \(model.totals.ham), \(model.tokenCount) tokens")
    }
}

enum StarterModelBuilder {
    static func build(pitch: [String], ham: [String], sent: [String] = []) throws -> StarterModel {
        var entries: [MailboxReplay.Entry] = []
        var unreadable: [MailSourceError] = []
        for path in sent {
            MailSource.forEach(at: path, unreadable: { unreadable.append($0) }) { item in
                entries.append(.sent(Message(bytes: item.bytes)))
            }
        }
        for (paths, target) in [(pitch, MessageClass.pitch), (ham, .ham)] {
            for path in paths {
                MailSource.forEach(at: path, unreadable: { unreadable.append($0) }) { item in
                    entries.append(.received(Message(bytes: item.bytes), target))
                }
            }
        }
        // A model built from part of the samples would ship silently different; refuse instead.
        if let first = unreadable.first { throw first }
        // The samples replayed as one mailbox with the owners' sent mail, so the model also knows what the history
        // signals mean once a database has a history: mail from a correspondent (`rel:known-address`), the same
        // letter from other senders or again (`tmpl:`).
        let tokens = try MailboxReplay().tokens(of: entries)
        let store = InMemoryTokenStore(tokenizerIdentity: Engine.tokenizerIdentity)
        for (entry, tokens) in zip(entries, tokens) {
            guard case .received(let message, let target) = entry, let tokens else { continue }
            let kept = zip(tokens.ids, tokens.isLocal).filter { !$0.1 }.map(\.0)
            let digest = MessageDigest.of(message, ownFields: .standard)
            _ = try store.train([TrainingItem(digest: digest, tokens: kept, target: target)])
        }
        return StarterModel(tokenizerIdentity: Engine.tokenizerIdentity, totals: try store.statistics().totals,
                            tokens: try store.allTokens())
    }

    /// Whether a token of the samples says something about pitches in anyone's mail: whether it is not local
    /// (`LocalTokens`).
    ///
    /// The samples were written for this project: their words, subjects and form-letter signals are what real
    /// pitches and real replies say, but their headers, MIME structure, domains and names are only how they were
    /// written. Kept in, those taught the model that "charset=us-ascii" means ham (80 of the 125 ham samples, none
    /// of the pitches), and it left 69 of 80 held-out pitches unsure. The user's own training learns their headers.
    ///
    /// Of the header, a mailing list's List-Id and a bulk sender's Precedence are kept (`LocalTokens.portable`). A
    /// sales tool sends one-to-one through the seller's own mailbox and adds neither (List-Id: no pitch sample, 68
    /// ham samples). Kept, they took the SpamAssassin ham the starter flags at a pitch cutoff of 0.82 from 22 to 11
    /// of 4,150 and changed no pitch's verdict in samples/heldout or samples/dev. List-Unsubscribe stays out:
    /// outreach platforms add it too, and with it kept the figures were the same.
    static func generalizes(_ token: String) -> Bool {
        !LocalTokens.contains(token)
    }

    /// The model as Swift source, or nil if a token's count does not fit the packed records' 16 bits.
    static func swiftSource(_ model: StarterModel) -> String? {
        guard let records = model.packedText() else { return nil }
        return """
            // Generated by Scripts/build-starter-model.sh from samples/corpus. Do not edit.
            // pitch \(model.totals.pitch), ham \(model.totals.ham), \(model.tokenCount) tokens, \(model.tokenizerIdentity)
            enum StarterModelData {
                static let tokenizerIdentity = "\(model.tokenizerIdentity)"
                static let pitchMessages = \(model.totals.pitch)
                static let hamMessages = \(model.totals.ham)
                static let tokenCount = \(model.tokenCount)
                /// `PackedRecords`: per token, sorted by id, its id (u64) and pitch and ham counts (u16), little-endian,
                /// in base64, six tokens to a line.
                static let records: StaticString = \"\"\"
            \(records)
            \"\"\"
            }

            """
    }
}
