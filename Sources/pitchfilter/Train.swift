import ArgumentParser
import Foundation
import PitchClassifier
import PitchEngine
import PitchMessage
import PitchStore

struct Train: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Learn messages as pitches or ham, or forget them.",
        discussion: """
            Training is idempotent: a message learned twice counts once, and learning it as the other class \
            moves it. PATH is a message file, a directory of message files, a Maildir, an mbox, or -.
            """)

    @OptionGroup var database: DatabaseOption
    @Option(parsing: .upToNextOption, help: ArgumentHelp("Messages to learn as pitches.", valueName: "path"))
    var pitch: [String] = []
    @Option(parsing: .upToNextOption, help: ArgumentHelp("Messages to learn as ham.", valueName: "path"))
    var ham: [String] = []
    @Option(parsing: .upToNextOption, help: ArgumentHelp("Messages to unlearn.", valueName: "path"))
    var forget: [String] = []

    func validate() throws {
        if pitch.isEmpty && ham.isEmpty && forget.isEmpty {
            throw ValidationError("Give messages with --pitch, --ham or --forget.")
        }
    }

    /// Messages per transaction: big enough that bulk training is not bound by commits, small enough that a
    /// concurrent pipe filter waits only milliseconds for the write lock.
    static let batchSize = 200

    func run() throws {
        let store: SQLiteTokenStore
        do {
            store = try SQLiteTokenStore(path: database.path, tokenizerIdentity: Engine.tokenizerIdentity,
                                         access: .readWrite)
        } catch {
            Stores.report(error)
            throw ExitCode(3)
        }
        let engine = Engine(store: store, starter: nil)
        var progress = Progress()
        var batch: [TrainingItem] = []
        var failed = 0
        func flush() throws {
            guard !batch.isEmpty else { return }
            for outcome in try store.train(batch) { progress.count(outcome) }
            batch.removeAll(keepingCapacity: true)
        }
        let requests = pitch.map { ($0, MessageClass.pitch as MessageClass?) } + ham.map { ($0, .ham) }
            + forget.map { ($0, nil) }
        do {
            for (path, target) in requests {
                try MailSource.forEach(at: path, unreadable: { Stores.report($0); failed += 1 }) { item in
                    batch.append(engine.trainingItem(for: Message(bytes: item.bytes), as: target))
                    if batch.count == Self.batchSize { try flush() }
                }
            }
            try flush()
        } catch {
            progress.finish()
            Stores.report(error)
            print(progress.summary)
            throw ExitCode(3)
        }
        progress.finish()
        print(progress.summary)
        if failed > 0 { throw ExitCode(3) }
    }
}

/// Outcome counts, and a running count on standard error when it is a terminal (big runs take a while).
struct Progress {
    private var outcomes: [TrainingOutcome: Int] = [:]
    private var total = 0
    private let showsProgress = isatty(2) == 1

    mutating func count(_ outcome: TrainingOutcome) {
        outcomes[outcome, default: 0] += 1
        total += 1
        if showsProgress, total % 100 == 0 { FileDescriptor.writeAll(2, Array("\r\(total) messages".utf8)[...]) }
    }

    func finish() {
        if showsProgress, total >= 100 { FileDescriptor.writeAll(2, [0x0D][...]) }
    }

    var summary: String {
        "learned \(outcomes[.learned] ?? 0), already known \(outcomes[.alreadyKnown] ?? 0), "
            + "moved \(outcomes[.moved] ?? 0), forgotten \(outcomes[.forgotten] ?? 0), "
            + "not known \(outcomes[.notKnown] ?? 0)"
    }
}
