import ArgumentParser
import PitchCommandLine
import PitchEngine
import PitchMessage
import PitchStore

#if canImport(Glibc)
import Glibc
#endif

/// The people you write to are not strangers: `contacts import` learns them from your Sent folder, and messages
/// from them get `rel:known-address` (or `rel:known-domain`) instead of `rel:first-contact`.
struct Contacts: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "contacts",
        abstract: "Known correspondents: who you write to is no stranger.",
        discussion: """
            Messages you trained as ham add their senders too. A freemail address (gmail.com, outlook.com, …) is \
            known by itself; any other address also makes its domain known.
            """,
        subcommands: [Import.self, List.self, Remove.self])

    // Options before the subcommand's name are the subcommand's too (found by an audit: `contacts --db PATH list`
    // was refused as "Unknown option '--db'"): swift-argument-parser hands a subcommand's option group of the same
    // type the values parsed on both sides of its name, the last given winning.
    @OptionGroup var database: DatabaseOption
    @OptionGroup var configuration: ConfigurationOption

    func run() { exitForMissingSubcommand("pitchfilter contacts", usage: PitchFilterCommand.usageString(for: Self.self)) }

    struct Import: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "import",
            abstract: "Learn the recipients (To, Cc, Bcc) of messages you sent.")

        @OptionGroup var database: DatabaseOption
        @OptionGroup var configuration: ConfigurationOption
        @Argument(help: ArgumentHelp("Messages you sent: your Sent folder, files, an mbox.", valueName: "path"))
        var paths: [String]

        func run() throws {
            let path = try database.path()
            if Stores.onlyMissing(paths, noDatabaseAt: path) {
                try Stores.writeAnswer("read 0 messages, 0 new contacts")
                throw ExitCode(3)
            }
            let store = try Stores.openForWriting(path)
            var messages = 0
            var added = 0
            var failed = 0
            do {
                try MailSource.forEachBatchReadingAhead(at: paths, unreadable: { error in
                    if error.reportWhileLearning() { failed += 1 }
                }) { batch in
                    let sent = batch.map { Message(bytes: $0.bytes) }
                    added += try store.addContacts(sent.flatMap(Engine.correspondents(writtenToIn:)), source: .sent,
                                                   at: Int64(time(nil)))
                    messages += batch.count
                }
            } catch {
                Stores.report(error)
                throw ExitCode(3)
            }
            store.checkpointIfLarge()
            try Stores.writeAnswer("read \(messages) message\(messages == 1 ? "" : "s"), "
                + "\(added) new contact\(added == 1 ? "" : "s")")
            if failed > 0 { throw ExitCode(3) }
        }
    }

    /// Undoing a `contacts import` of the wrong folder, or a correspondent who turned to pitching: without it, only
    /// a new database forgot anyone (found by an audit).
    struct Remove: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "remove",
            abstract: "Forget correspondents: addresses, or @domains and everyone there.",
            discussion: """
                An address goes however it became known (your sent mail, a message trained as ham), and its domain \
                with it when no other address there is known. "@example.org" forgets the domain and every address \
                there. Mail from them is a first contact again until you write to them or train their mail as ham.
                """)

        @OptionGroup var database: DatabaseOption
        @OptionGroup var configuration: ConfigurationOption
        @Argument(help: ArgumentHelp("Addresses (name@example.org) or domains (@example.org).", valueName: "contact"))
        var contacts: [String]

        func validate() throws {
            if contacts.isEmpty { throw ValidationError("give the addresses or @domains to forget") }
            if let bad = contacts.first(where: { ContactKey($0) == nil }) {
                if bad.hasPrefix("@"), ContactKey("x" + bad) != nil {
                    throw ValidationError("\(TerminalText.safe(bad)) is a freemail domain, whose addresses are known one "
                        + "by one: give the addresses")
                }
                throw ValidationError("\(TerminalText.safe(bad)) is neither an address (name@example.org) nor a "
                    + "domain (@example.org)")
            }
        }

        func run() throws {
            let keys = contacts.compactMap(ContactKey.init)
            let path = try database.path()
            var known: [ContactKey] = []
            var addressesGone = 0
            do {
                // Nothing to forget in a database not there yet: none is made for it.
                var info = stat()
                if stat(path, &info) == 0, !SQLiteTokenStore.isEmptyFile(path) {
                    // Addresses before domains: "@example.org bob@example.org" forgot bob with the domain, and
                    // said bob was not known (found in review).
                    let addressesFirst = keys.filter { if case .address = $0 { true } else { false } }
                        + keys.filter { if case .domain = $0 { true } else { false } }
                    let store = try Stores.openForWriting(path, sharedModel: nil)
                    let before = try store.allContacts().count
                    known = try store.removeContacts(addressesFirst)
                    addressesGone = before - (try store.allContacts().count)
                }
            } catch let exit as ExitCode {
                throw exit
            } catch {
                Stores.report(error)
                throw ExitCode(3)
            }
            // A domain that went with an address removed before it was known all the same (found by an audit:
            // "removed 1 contact; not known: @example.org" for the address and its domain given together).
            let domainsTaken = Set(known.compactMap(\.domain))
            let unknown = keys.filter { key in
                if case .domain(let domain) = key, domainsTaken.contains(domain) { return false }
                return !known.contains(key)
            }
            // The addresses a domain took with it, said apart (found by an audit: "removed 1 contact" for a domain
            // and its two addresses).
            let withDomains = addressesGone - known.filter { if case .address = $0 { true } else { false } }.count
            try Stores.writeAnswer("removed \(known.count) contact\(known.count == 1 ? "" : "s")"
                + (withDomains > 0 ? " (with \(withDomains) address\(withDomains == 1 ? "" : "es") at the domains removed)" : "")
                + (unknown.isEmpty ? "" : "; not known: "
                    + unknown.map { TerminalText.safe($0.description) }.joined(separator: ", ")))
        }
    }

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "list",
            abstract: "Print each known address, how it became known, and when (UTC).")

        @OptionGroup var database: DatabaseOption
        @OptionGroup var configuration: ConfigurationOption
        @Flag(help: """
            Also print the domains the addresses make known ("@example.org"): mail from anyone there gets \
            rel:known-domain.
            """)
        var domains = false

        static let noneYet = "note: no known correspondents yet, so no message is told known or a first contact "
            + "(rel:known-address, rel:known-domain, rel:first-contact): import your sent mail (pitchfilter contacts "
            + "import PATH), or train some of your mail as ham"

        func run() throws {
            let path = try database.path()
            do {
                let store = try Stores.openForReading(path, sharedModel: nil)
                var output = ""
                for contact in try (store?.allContacts() ?? []) + (domains ? try store?.allDomains() ?? [] : []) {
                    output += "\(TerminalText.safe(contact.address)) \(contact.source.rawValue) "
                        + "\(CalendarDay.of(contact.addedAt))\n"
                }
                // On standard error, so that the list stays empty for a script (found by an audit: nothing at all
                // was said, and meanwhile only a colleague's mail gets a rel: token).
                if output.isEmpty { Stores.reportLine(Self.noneYet) }
                try Stores.writeOutput(Array(output.utf8)[...])
            } catch let exit as ExitCode {
                throw exit
            } catch {
                Stores.report(error)
                throw ExitCode(3)
            }
        }
    }
}
