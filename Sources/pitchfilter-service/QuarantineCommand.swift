import ArgumentParser
import PitchCommandLine
import PitchDaemon
import PitchEngine
import PitchMessage
import PitchStore
import PitchTokenizer

#if canImport(Glibc)
import Glibc
#endif

/// `pitchfilter quarantine`: what the service moved into the quarantine folder, by id.
struct QuarantineCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "quarantine",
        abstract: ServiceCommands.quarantineAbstract,
        discussion: """
            Ids are the 16-digit ones `list` prints; no command takes a path. Moving a message out of the \
            quarantine folder in a mail client teaches the same as `release` (ham, and its sender a \
            correspondent), but the message keeps the X-Pitch-Status field and Subject tag the quarantine gave it: \
            a client's copy is not ours to rewrite.
            """,
        subcommands: [List.self, Show.self, Release.self, Delete.self, Purge.self])

    /// Options before the subcommand's name are the subcommand's too (found by an audit: `quarantine --config FILE
    /// list` was refused as "Unknown option '--config'"): swift-argument-parser hands each subcommand's `Location`
    /// the values parsed on both sides of its name, the last given winning.
    @OptionGroup var location: Location

    func run() {
        exitForMissingSubcommand("pitchfilter quarantine", usage: ServiceCommand.usageString(for: Self.self))
    }

    struct Location: ParsableArguments {
        @Option(name: .long, help: ArgumentHelp(
            "The service's configuration, for its database and [header] settings (default: $PITCHFILTER_CONFIG, else "
                + "/etc/pitchfilter/pitchfilter.toml if it exists).", valueName: "file"))
        var config: String?

        @OptionGroup var database: DatabaseOption

        /// The service's file (`serviceFile`): the quarantine is the service's.
        var file: String? { config ?? CommandLineConfiguration.serviceFile(environment: Environment.current) }

        /// --db, else $PITCHFILTER_DB, else the configuration's database, else the usual default: the order of
        /// every other command.
        func path() throws -> String {
            do {
                return try DatabaseLocation.resolve(option: database.db, environment: Environment.current) {
                    try file.flatMap { try ConfigurationFile.read($0).databasePath }
                }
            } catch {
                Stores.report(error)
                throw ExitCode(3)
            }
        }

        /// The desk, or nil when there is no database yet, so nothing was ever quarantined: looking must not
        /// create one (at a mistyped path, say).
        /// `readOnly` for looking (`list`, `show`), which someone who may read the database but not write it
        /// may do.
        /// `learning`: the command trains (a release), so the model the file shares with other hosts is opened.
        /// Every command takes the configuration's [header] settings: a quarantined file is known for the message
        /// by its digest without the fields and Subject tag the service wrote (found by an audit: `show`,
        /// `delete` and `purge` took the standard ones, and with a `subject_tag` refused every message).
        func desk(readOnly: Bool = false, learning: Bool = false) throws -> QuarantineDesk? {
            // Looking needs only read access to the database: one who may not read the service's file, found by
            // its name alone, still lists with --db, and `show` says when the standard settings do not fit. A file
            // named (--config, $PITCHFILTER_CONFIG), or one that can be read, is read as by every command (found by
            // an audit: a mistyped --config, or a misspelt key, listed with --db and exit 0 without a word).
            let named = config != nil || Environment.current("PITCHFILTER_CONFIG").map { !$0.isEmpty } == true
            let shut = file.map { access($0, R_OK) != 0 && errno == EACCES } == true
            let ownFields = readOnly && database.db != nil && !named && shut ? .standard : try ownFields()
            let path = try path()
            // Only a database that is not there: one that cannot be read is an error to report. Said on standard
            // error, since it usually means the wrong database (root's own, not the service's), not an empty
            // quarantine.
            guard access(path, F_OK) == 0 || errno != ENOENT else {
                Stores.reportLine("no database at \(path), so nothing quarantined there; the service's is its "
                    + "configuration's [database] path or $PITCHFILTER_DB (give it with --config or --db)")
                return nil
            }
            // An empty file is no database either, as SQLite reads it, and a delete or purge must not make one of
            // it (found in review: one that had been truncated became a new, empty database unsaid).
            if SQLiteTokenStore.isEmptyFile(path) {
                Stores.reportLine("\(path) is an empty file, not a database, so nothing quarantined there (if it held "
                    + "the service's database, restore it from a backup)")
                return nil
            }
            var model: (any SharedModel)?
            if learning {
                do {
                    model = try file.flatMap { try ConfigurationFile.read($0).sharedModel }?
                        .open(tokenizerIdentity: Engine.tokenizerIdentity, readOnly: readOnly)
                } catch {
                    Stores.report(error)
                    throw ExitCode(3)
                }
            }
            if readOnly {
                return try Stores.openForReading(path, sharedModel: model).map {
                    QuarantineDesk(store: $0, ownFields: ownFields)
                }
            }
            return QuarantineDesk(store: try Stores.openForWriting(path, sharedModel: model), ownFields: ownFields)
        }

        /// What the configuration calls our fields, which a release takes off the message.
        func ownFields() throws -> OwnFields {
            do {
                return try fieldsOfTheConfiguration()
            } catch {
                Stores.report(error)
                throw ExitCode(3)
            }
        }

        private func fieldsOfTheConfiguration() throws -> OwnFields {
            return try file.map { try ConfigurationFile.read($0).ownFields } ?? .standard
        }

        /// The desk of a command about one message: without a database, no id is known.
        func desk(for id: String, readOnly: Bool = false, learning: Bool = false) throws -> QuarantineDesk {
            guard let desk = try desk(readOnly: readOnly, learning: learning) else {
                throw QuarantineDesk.Failure.unknownID(id)
            }
            return desk
        }
    }

    /// A usage error (64) for what cannot be an id, before any database is opened: a path or a typo is the
    /// caller's mistake, not an unknown message.
    static func validate(_ id: String) throws {
        guard QuarantineDesk.isIdentifier(id) else {
            // Shown safely and cut short: it is anything a caller passed (an audit's 100,000 characters came
            // back whole).
            let scalars = id.unicodeScalars  // not Characters: one may hold thousands of combining marks
            let shown = TerminalText.safe(scalars.count > 40 ? String(scalars.prefix(40)) + "…" : id)
            throw ValidationError("'\(shown)' is not a quarantine id: ids are the 16 hex digits `list` prints.")
        }
    }

    /// Runs `body`, reporting any failure in one line and exiting 3.
    static func run(_ body: () throws -> Void) throws {
        do {
            try body()
        } catch let exit as ExitCode {
            throw exit
        } catch {
            Stores.report(error)
            throw ExitCode(3)
        }
    }

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "list",
            abstract: "One line per quarantined message: id, date (UTC), score, sender, subject.",
            discussion: "A message you filed into the quarantine folder yourself shows \"filed\" for its score.")
        @OptionGroup var location: Location
        @Flag(name: .long, help: """
            One JSON object per line: id, quarantined_at, score (null for a message you filed), sender, subject, \
            message_id, mailbox, path (null when it is no longer in the folder).
            """)
        var json = false

        /// One `--json` line; `path` is null when a client moved or deleted the file, `score` for a message the
        /// user filed.
        struct Line: Encodable {
            var id: String
            var quarantined_at: Int64
            @NullWhenAbsent var score: Double?
            var sender: String
            var subject: String
            var message_id: String
            var mailbox: String
            @NullWhenAbsent var path: String?
        }

        func run() throws {
            try QuarantineCommand.run {
                var output = ""
                let desk = try location.desk(readOnly: true)
                let items = try desk?.list() ?? []
                // On standard error, so that the list stays empty for a script, naming the database: run by root
                // without the service's configuration, it is root's own (found by an audit: nothing was said).
                if desk != nil, items.isEmpty {
                    Stores.reportLine("note: nothing in quarantine in the database \(try location.path())")
                }
                for item in items {
                    let entry = item.entry
                    if json {
                        output += JSON.line(Line(id: entry.id, quarantined_at: entry.at,
                                                 score: entry.wasScored ? entry.score : nil,
                                                 sender: entry.sender, subject: entry.subject,
                                                 message_id: entry.messageID, mailbox: entry.mailbox,
                                                 path: item.path)) + "\n"
                        continue
                    }
                    let gone = item.path != nil
                        ? item.releasedTo.map { path in
                            " (and back in the INBOX, \(TerminalText.safe(path)): a release stopped half-way, or a "
                                + "client's copy; `release` learns it as ham and finishes)"
                        } ?? ""
                        : item.releasedTo.map { path in
                            item.movedBackByHand
                                ? " (moved back to the INBOX, \(TerminalText.safe(path)): `release` learns it as ham "
                                    + "now; the service does when it sees the move, unless it came back under the "
                                    + "name it left with)"
                                // A message the user filed and moved back with `mv` looks the same (found by an
                                // audit: listed as a release stopped half-way that never was).
                                : " (back in the INBOX under its name, \(TerminalText.safe(path)): moved back, or a "
                                    + "release stopped half-way; `release` learns it as ham and finishes)"
                        }
                        ?? item.unreadable.map { " (cannot look in \(entry.folder): \(TerminalText.safe($0)))" }
                        ?? (entry.state == .moving ? " (not in \(entry.folder) yet)" : " (no longer in \(entry.folder))")
                    let score = entry.wasScored ? Engine.formatScore(entry.score) : "filed "
                    output += "\(entry.id)  \(CalendarDay.of(entry.at))  \(score)  "
                        + "\(entry.sender.isEmpty ? "-" : TerminalText.safe(entry.sender))  "
                        + "\(TerminalText.safe(entry.subject))\(gone)\n"
                }
                try Stores.writeOutput(Array(output.utf8)[...])
            }
        }
    }

    struct Show: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "show",
                                                        abstract: "Print the message, as it is in quarantine.")
        @OptionGroup var location: Location
        @Argument(help: "The message's id.") var id: String

        func validate() throws { try QuarantineCommand.validate(id) }

        func run() throws {
            try QuarantineCommand.run {
                try Stores.writeOutput(try location.desk(for: id, readOnly: true).show(id)[...])
            }
        }
    }

    struct Release: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "release",
            abstract: "Move the message back to the INBOX, as it arrived, and learn it as ham.")
        @OptionGroup var location: Location
        @Argument(help: "The message's id.") var id: String

        func validate() throws { try QuarantineCommand.validate(id) }

        func run() throws {
            try QuarantineCommand.run {
                let desk = try location.desk(for: id, learning: true)
                let path = try desk.release(id)
                let answer = desk.bearsOurFields(atPath: path)
                    ? "released \(id): it was back in the INBOX already (\(TerminalText.safe(path))), moved there in a "
                        + "mail client, and keeps the header fields of ours (and any Subject tag) it had; learned as ham"
                    : "released \(id) to \(path), learned as ham"
                try Stores.writeAnswer(answer, done: "the message was released")
            }
        }
    }

    struct Delete: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "delete", abstract: "Delete the message for good.")
        @OptionGroup var location: Location
        @Argument(help: "The message's id.") var id: String

        func validate() throws { try QuarantineCommand.validate(id) }

        func run() throws {
            try QuarantineCommand.run {
                try location.desk(for: id).delete(id)
                try Stores.writeAnswer("deleted \(id)", done: "the message was deleted")
            }
        }
    }

    struct Purge: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "purge",
            abstract: "Delete what has been in quarantine for longer than the given number of days.")
        @OptionGroup var location: Location
        // Unconditional: "-1" is a value here, and gets validate()'s message rather than "missing value".
        @Option(name: .customLong("older-than"), parsing: .unconditional, help: ArgumentHelp(
            "Delete what was quarantined more than this many days ago; 0 deletes every message in quarantine.",
            valueName: "days"))
        var olderThan: Int

        func validate() throws {
            guard olderThan >= 0 else { throw ValidationError("--older-than must be 0 or more days") }
        }

        func run() throws {
            try QuarantineCommand.run {
                var purged = QuarantineDesk.Purge()
                if let desk = try location.desk() { purged = try desk.purge(olderThan: olderThan) }
                let answer = "deleted \(purged.deleted) message(s) quarantined more than \(olderThan) day(s) ago"
                    + (purged.alreadyGone > 0 ? "; \(purged.alreadyGone) more had already left the quarantine folder" : "")
                    + (purged.backInTheInbox > 0 ? "; \(purged.backInTheInbox) back in the INBOX were left for the "
                        + "service to learn as ham (see `list`)" : "")
                    + (purged.folderGone > 0 ? "; \(purged.folderGone) left, whose quarantine folder is gone (renamed "
                        + "or deleted in a mail client: `delete` an id to close its record)" : "")
                let written = (try? Stores.writeAnswer(answer)) != nil
                // Said and failed, so that a purge run by cron does not report success while the quarantine grows.
                if purged.notMatching > 0 {
                    Stores.reportLine("\(purged.notMatching) message(s) left in quarantine: no file of their name "
                        + "matches the record once this configuration's [header] fields and Subject tag are taken off "
                        + "(give the service's configuration with --config; or the file of the name is another "
                        + "message, left alone)")
                    throw ExitCode(3)
                }
                if purged.failed > 0 {
                    Stores.reportLine("\(purged.failed) message(s) left in quarantine that could not be deleted; the "
                        + "first: \(purged.firstFailure ?? "")")
                    throw ExitCode(3)
                }
                if !written { throw ExitCode(3) }  // said by writeAnswer
            }
        }
    }
}
