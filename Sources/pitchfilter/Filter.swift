import ArgumentParser
import PitchCommandLine
import PitchEngine
import PitchMessage
import PitchStore
import PitchTokenizer

#if canImport(Glibc)
import Glibc
#endif

struct Filter: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "filter",
        abstract: "Read one message on standard input and write it to standard output with X-Pitch-Status added.",
        discussion: """
            For procmail (":0 fw" then "| pitchfilter filter"), maildrop and Dovecot's Sieve filter. Incoming \
            X-Pitch-* fields (and fields of the names in the configuration's [header]) are removed first, so \
            senders cannot forge a verdict; every other byte is written back as it came, apart from what the \
            configuration asks for: [header] renames the fields, [classifier] reasons = true adds \
            X-Pitch-Reasons, and [header] subject_tag puts a tag in front of a pitch's Subject. On any internal \
            failure the message is written back unchanged, one line on standard error says why, and the exit \
            status is 0; a message over \(PipeFilter.maxMessageBytes >> 20) MiB likewise, but for the incoming fields \
            of ours in a header that ends within its first \(PipeFilter.maxMessageBytes >> 20) MiB, which go. \
            A non-zero exit status means the message could not be written (the caller then keeps its own copy): \
            64 for a wrong command line, 74 when standard output could not be written, 75 when standard input \
            could not be read.
            """)

    @OptionGroup var database: DatabaseOption
    @OptionGroup var configuration: ConfigurationOption

    func run() throws {
        PipeFilter.run(databaseOption: database.db)
    }
}

/// The pipe filter. Its rules come from how procmail and Dovecot treat filters (../shared/harness/README.md):
/// exit 0 only after the whole message is written (exit 0 with no output loses the mail), read all of
/// standard input, and answer well inside Dovecot's 10-second limit, whose overrun crashes the LDA.
enum PipeFilter {
    /// Larger messages pass through untagged: they are nearly always attachments, and holding them costs memory
    /// every concurrent filter would pay.
    static let maxMessageBytes = 32 << 20
    /// After this long, the message goes out unchanged whatever is still running; well inside Dovecot's 10 s.
    static let deadlineSeconds: UInt32 = 5

    /// For exactly `filter`, `filter --db PATH` or `filter --db=PATH`: `.some` with the `--db` value, if any.
    /// Anything else, `--help` included, gives nil and is left to the argument parser.
    static func plainArguments(_ arguments: [String]) -> String?? {
        switch arguments.count {
        case 1 where arguments[0] == "filter":
            return .some(nil)
        case 2 where arguments[0] == "filter" && arguments[1].hasPrefix("--db=") && arguments[1].count > 5:
            return .some(String(arguments[1].dropFirst(5)))
        case 3 where arguments[0] == "filter" && arguments[1] == "--db" && !arguments[2].isEmpty
                && !arguments[2].hasPrefix("-"):
            return .some(arguments[2])
        default:
            return nil
        }
    }

    /// `databaseOption`: the `--db` value, if any. The rest of the path, and the cutoffs, come from the
    /// environment and the configuration file once the message is read, so that a broken configuration passes
    /// the message through like any other failure.
    static func run(databaseOption: String?) -> Never {
        signal(SIGPIPE, SIG_IGN)  // a reader that goes away must be an error from write(2), not a silent death
        let input: StandardInput
        do {
            input = try StandardInput.readAll(limit: maxMessageBytes)
        } catch {
            // Nothing has been written: a non-zero status makes procmail and Dovecot keep their own copy,
            // where exit 0 with a part of the message would lose the rest.
            Stores.reportLine("cannot read the message: \(error)")
            exit(75)
        }
        switch input.stop {
        case .end: break
        case .overLimit:
            // Untagged, but not with a verdict of ours a sender wrote into it (found by an audit: a forged
            // X-Pitch-Status went through in every message over the limit, where the milter takes it out). Reading
            // the configuration may take a helper process, so under the deadline too, which passes the part read
            // and the rest through as they came (found in review).
            let read = input.bytes
            read.withUnsafeBufferPointer { part in
                Deadline.arm(input: part, seconds: deadlineSeconds, remainder: true)
                let (pieces, taken, problem) = withoutOurFields(read)
                Deadline.disarm()
                Stores.reportLine("message larger than \(maxMessageBytes >> 20) MiB, passed through unchanged"
                    + (taken > 0 ? " but for \(taken) incoming field\(taken == 1 ? "" : "s") of ours taken out" : "")
                    + (problem.map { " (any fields of ours left in: \($0))" } ?? ""))
                input.passThroughRemainder(first: pieces)
            }
        case .outOfMemory:
            Stores.reportLine("out of memory after \(input.bytes.count) bytes of the message, passed through unchanged")
            input.passThroughRemainder(first: [input.bytes[...]])
        }
        // No bytes is no message: no header block to put a field at the top of, and nothing to classify. Passed
        // through as it came, which is nothing (two audits found a lone status line written for it).
        if input.bytes.isEmpty {
            Stores.reportLine("empty input: no message, passed through unchanged")
            finish(0)
        }
        let raw = input.bytes
        // The deadline's handlers write the message from the array's own storage: everything from here to the exit
        // happens inside this closure, where that pointer stays valid.
        return raw.withUnsafeBufferPointer { original -> Never in
            Deadline.arm(input: original, seconds: deadlineSeconds)
            // Its SIGBUS handler passes the message on: the database may be mapped (`SQLiteTokenStore.mapsFiles`).
            SQLiteTokenStore.mapsFiles.store(true, ordering: .relaxed)
            classifyAndWrite(raw, databaseOption: databaseOption)
        }
    }

    /// The first part of a message too large to classify, with the fields of ours a sender put in it taken out
    /// where its header ends inside that part, and how many were; as it came where it does not (a field could go
    /// on past it), or where the configuration cannot be read (which any other message passes through unchanged for:
    /// `problem` says why).
    static func withoutOurFields(_ part: [UInt8]) -> (pieces: [ArraySlice<UInt8>], taken: Int, problem: String?) {
        let ownFields: OwnFields
        do {
            ownFields = try CommandLineConfiguration.ownFields()
        } catch {
            return ([part[...]], 0, "\(error)")
        }
        let edit = HeaderEdit(of: part, removing: ownFields.removalPatterns, inserting: [])
        guard edit.headerEnded, !edit.removed.isEmpty else { return ([part[...]], 0, nil) }
        return (edit.pieces(of: part), edit.removed.count, nil)
    }

    /// Tags `raw` and writes it, or writes it unchanged if anything fails; `Deadline` is armed.
    private static func classifyAndWrite(_ raw: [UInt8], databaseOption: String?) -> Never {
        let outcome: Result<(HeaderEdit, Recording?), PassThrough>
        let opened = Opened()
        do {
            let databasePath = try DatabaseLocation.resolve(option: databaseOption, environment: Environment.current) {
                try CommandLineConfiguration.current.get().databasePath
            }
            outcome = .success(try tag(raw, databasePath: databasePath, keeping: opened))
        } catch let reason as PassThrough {
            outcome = .failure(reason)
        } catch {
            outcome = .failure(PassThrough(String(describing: error)))
        }
        Deadline.disarm()  // from here on we are writing; a half-written message must not be followed by another
        switch outcome {
        case .success(let (edit, recording)):
            guard Output.write(edit.pieces(of: raw)) else { writeFailed() }
            afterTheMessage(recording, opened: opened)
        case .failure(let reason):
            Stores.reportLine("passed through unchanged: \(reason.description)")
            guard Output.write([raw[...]]) else { writeFailed() }
            afterTheMessage(nil, opened: opened)
        }
    }

    /// The stores `tag` opened, kept alive until the message is out: a store going away closes a shared model's
    /// connection, which waits for the server, and nothing may keep the caller waiting for its message.
    final class Opened {
        /// `Any`, not `AnyObject`: a protocol value cast to AnyObject goes through the runtime's boxing, whose
        /// first use looks a type up by name, 0.2 ms of every run (perf).
        var stores: [Any] = []
    }

    /// The message is out: the caller gets end of file now and only waits for the exit status, while the filter
    /// records the message's template and tells a shared model's server goodbye (else the server sees the
    /// connection dropped, every message), both within `recordSeconds`.
    static func afterTheMessage(_ recording: Recording?, opened: Opened) -> Never {
        Deadline.exitAfter(seconds: recordSeconds)  // first: from here on a crash must exit 0 too
        close(1)
        if let recording { remember(recording) }
        withExtendedLifetime(opened) { SharedModels.disconnectAll() }
        finish(0)
    }

    /// Standard output failed (the reader went away, a full disk): the caller must keep its own copy, and the
    /// log should say why it did.
    static func writeFailed() -> Never {
        let reason = String(cString: strerror(errno))
        Stores.reportLine("cannot write the message to standard output (\(reason)); exit status 74, so the caller "
                          + "keeps its copy")
        finish(74)
    }

    /// Every byte has gone out through write(2), and the database's writes are committed, so nothing is left to
    /// flush or close: `_exit` skips the C library's and the runtime's exit handlers.
    static func finish(_ status: Int32) -> Never {
        _exit(status)
    }

    struct PassThrough: Error, CustomStringConvertible {
        let description: String
        init(_ description: String) { self.description = description }
    }

    /// What to record in the template memory once the message is out.
    struct Recording {
        let store: SQLiteTokenStore
        let sighting: TemplateSighting
    }

    static func tag(_ raw: [UInt8], databasePath: String, keeping opened: Opened) throws -> (HeaderEdit, Recording?) {
        let message = Message(bytes: raw)
        let store = try openStore(databasePath)
        if let store { opened.stores.append(store) }
        let schedule = ModelSchedule.standard.withCutoffs(try CommandLineConfiguration.cutoffs())
        let reasons = try CommandLineConfiguration.reasons()
        let countSource = try Stores.countSource(store)
        if let countSource { opened.stores.append(countSource) }
        let engine = Engine(store: countSource, schedule: schedule,
                            contacts: store ?? ContactSnapshot.empty,
                            templates: store,
                            tokenizer: Tokenizer(ownFields: try CommandLineConfiguration.ownFields()))
        let (tokens, assessment) = try store.map {
            try $0.withSnapshot { try engine.tokensAndAssessment(of: message, explaining: reasons) }
        } ?? engine.tokensAndAssessment(of: message, explaining: reasons)
        let edit = engine.edit(message, for: assessment.classification, reasons: reasons)
        if edit.bareCarriageReturns { throw PassThrough("lines end in bare CR, not LF or CRLF") }
        if edit.insertionSkipped { throw PassThrough("no line to put a header field above") }
        let sighting = engine.templateSighting(of: message, tokens)
        guard let store, store.isWritable, let sighting else { return (edit, nil) }
        return (edit, Recording(store: store, sighting: sighting))
    }

    /// The database, if there is one: read-write when we may (to record the message's template afterwards),
    /// else read-only. Never created here: with no database the starter model alone decides. An empty file is no
    /// database either, as `classify` and `stats` read it: the filter made one in it (found by an audit), and a
    /// database that had been truncated went on unnoticed as a new one.
    static func openStore(_ path: String) throws -> SQLiteTokenStore? {
        guard access(path, F_OK) == 0, !SQLiteTokenStore.isEmptyFile(path) else {
            return try Stores.openForReading(path)
        }
        // The shared model, if any, is only read here: the filter never trains.
        let model = try Stores.sharedModel(readOnly: true)
        do {
            return try SQLiteTokenStore(path: path, tokenizerIdentity: Engine.tokenizerIdentity, access: .readWrite,
                                        sharedModel: model)
        } catch StoreError.readOnly {
            // A database we may read but not write (another user's, a read-only file system): classify anyway.
            return try SQLiteTokenStore(path: path, tokenizerIdentity: Engine.tokenizerIdentity, access: .readOnly,
                                        sharedModel: model)
        }
    }

    /// Best effort, after the message is written: records its skeleton in the template memory, so that the same
    /// form letter from other senders, or again from this one, is known. Within `afterTheMessage`'s deadline (a
    /// lock held by a trainer, a stuck file system), and any failure only costs this one sighting.
    static func remember(_ recording: Recording) {
        recording.store.setBusyTimeout(milliseconds: 250)
        do {
            try Engine.remember([recording.sighting], in: recording.store)
            recording.store.checkpointIfLarge(thresholdBytes: walCheckpointBytes)
        } catch StoreError.locked {
            // A trainer holds the write lock: expected during training, and one lost sighting is no news.
        } catch {
            Stores.reportLine("template not recorded: \(error)")
        }
    }

    static let recordSeconds: UInt32 = 2

    /// Every run of the filter is a new connection, which rebuilds SQLite's index of the write-ahead log by reading
    /// all of it; so the filter keeps the log short, where one-off writers (train) let it grow to 4 MiB. The
    /// checkpoint costs two fsyncs about every 20 messages.
    static let walCheckpointBytes = 256 << 10
}

extension StandardInput {
    /// Writes `first` (what was read, or an edit of it) and copies the rest of standard input straight through,
    /// then exits.
    func passThroughRemainder(first: [ArraySlice<UInt8>]) -> Never {
        var chunk = [UInt8](repeating: 0, count: 1 << 16)  // first: out of memory, nothing must be out yet
        guard Output.write(first) else { PipeFilter.writeFailed() }
        while true {
            let result = chunk.withUnsafeMutableBytes { Self.readSome(into: $0.baseAddress!, $0.count) }
            switch result {
            case .end: PipeFilter.finish(0)
            // Part of the message is already out: only a non-zero status makes the caller keep its copy. 75, as
            // for any input that could not be read.
            case .failed(let error):
                Stores.reportLine("cannot read the rest of the message (\(error)); exit status 75, so the caller "
                                  + "keeps its copy")
                PipeFilter.finish(75)
            case .bytes(let n): guard FileDescriptor.writeAll(1, chunk[0..<n]) else { PipeFilter.writeFailed() }
            }
        }
    }
}

enum Output {
    /// Writes every piece to standard output; false if any of it could not be written.
    static func write(_ pieces: [ArraySlice<UInt8>]) -> Bool {
        pieces.allSatisfy { FileDescriptor.writeAll(1, $0) }
    }
}
