import PitchMessage

#if canImport(Glibc)
import Glibc
#endif

/// The signs that a message is a form letter sent to many strangers, as tokens the classifier learns weights for.
///
/// These tokens never decide on their own. A genuine "Re:" reply or a newsletter's opt-out footer gives a token too,
/// and training decides how much each one weighs. Every signal also has its ordinary counterpart (a greeting with a
/// name, a reply that is threaded), so the classifier can learn both sides.
///
/// | Token | When |
/// |---|---|
/// | `sig:greeting-blank` | a greeting whose name the merge left empty: "Hi ,", "Dear ,", "Hello , ," |
/// | `sig:greeting-unnamed` | a greeting with no name at all: "Hi,", "Hello!" |
/// | `sig:greeting-named` | a greeting with a name: "Hi Maya," |
/// | `sig:placeholder` | a merge field left in the subject or text: "{{first_name}}", "[First Name]", "*\|FNAME\|*" |
/// | `sig:reply-unthreaded`, `sig:reply-threaded` | "Re:" subject without / with In-Reply-To or References |
/// | `sig:forward-unthreaded`, `sig:forward-threaded` | "Fwd:" subject, likewise |
/// | `sig:reply-unthreaded-quoting`, `sig:forward-unthreaded-quoting` | unthreaded, but quoting someone else's message, or ">" lines nobody is named for |
/// | `sig:optout-personal`, `sig:optout-unlisted`, `sig:optout-list` | opt-out wording ("unsubscribe", "opt out", "reply stop") in one-to-one mail (one recipient, no list fields, no Auto-Submitted), in one-to-one mail with a List-Unsubscribe but no list's id, or in list mail |
/// | `sig:quotes-own-message` | the first message the text quotes or forwards is the sender's own: a sequence's bump |
///
/// "One-to-one" means one or no To/Cc recipient and none of List-Id, List-Unsubscribe or Precedence bulk/list/junk.
/// This is what a sales tool's message looks like, and what a newsletter's does not.
///
/// Tracking pixels and click-tracking links in one-to-one mail were a signal too, up to tokenizer
/// "pitch-tokens-2". Left out, they changed no verdict and no ranking in any ablation (samples/heldout against
/// samples/corpus with a young database's settings and with a large one's, 5-fold over both, and the starter
/// model rebuilt without them: the same held-out and SpamAssassin figures), once receipts and alerts taught
/// that one-to-one mail with a pixel is often ham. Removed as the issue asks of signals that add nothing; the
/// `img:` and `url:` tokens still describe the same images and links to a user's own training.
public enum FormLetterSignal: String, CaseIterable, Hashable, Sendable {
    /// Greetings and merge fields the mail merge left behind.
    case merge
    /// A reply or forward subject with nothing in the header to say what it replies to.
    case thread
    /// Opt-out wording in one-to-one mail.
    case optout
    /// A follow-up whose quoted or forwarded message is the sender's own ("Any thoughts? On 3 March, Chris wrote:"):
    /// a sequence bumping its unanswered first step. A real thread quotes the other side first.
    case bump
}

/// Gathers what the signals need while the body is tokenized, then emits their tokens.
struct FormLetterEvidence {
    let enabled: Set<FormLetterSignal>
    private var sawGreetingLine = false
    private var greeting: String?
    private var placeholder = false
    private var optOut = false
    /// How the texts quote another message: the first attributed quote, else an unattributed one; nil until a
    /// text quotes.
    private var quote: Quote?
    /// The message carries another one attached (message/rfc822): a forward that passes on another's message
    /// whole, which no text quotes.
    var embedsAMessage = false

    init(enabled: Set<FormLetterSignal>) {
        self.enabled = enabled
    }

    /// The decoded text of a text part, in order, and where it holds what the reader is not shown. Only the first
    /// part's first line the reader sees can hold the greeting: an HTML preheader above it is not it.
    mutating func observe(text: UnsafeBufferPointer<UInt8>, hidden: [Range<Int>] = []) {
        if enabled.contains(.merge) {
            if !sawGreetingLine, let line = Self.firstLine(text, skipping: hidden) {
                sawGreetingLine = true
                greeting = Self.greetingKind(line)
            }
            if !placeholder { placeholder = Self.containsPlaceholder(text) }
        }
        let wantsOptOut = enabled.contains(.optout) && !optOut
        // Whose message is quoted first: the bump signal's, and the thread signal's for an unthreaded reply.
        let wantsQuotedAuthor = (enabled.contains(.bump) || enabled.contains(.thread)) && quote?.author == nil
        guard wantsOptOut || wantsQuotedAuthor else { return }
        let found = Self.firstQuote(text)
        if wantsOptOut { optOut = Self.containsOptOut(text, quoteStart: found?.author?.start) }
        if wantsQuotedAuthor, let found { quote = found }
    }

    /// `subject`: the Subject's text without a tag of ours (`Tokenizer.subject(of:)`).
    func emit(header: Header, subject: String?, to out: inout TokenCollector) {
        if enabled.contains(.merge) {
            if let greeting { out.add("sig:", greeting) }
            if placeholder || Self.subjectHasPlaceholder(subject) { out.add("sig:", "placeholder") }
        }
        let quotes = quote.map { quote -> Quoted in
            guard let quoted = quote.author else { return .unattributed }
            return Self.names(Self.author(of: header), in: quoted.line) ? .own : .others
        } ?? (embedsAMessage ? .others : nil)
        if enabled.contains(.thread) { Self.addThreadToken(header, subject: subject, quoting: quotes, to: &out) }
        if enabled.contains(.optout), optOut {
            out.add("sig:", Self.optOutKind(header))
        }
        if enabled.contains(.bump), quotes == .own { out.add("sig:", "quotes-own-message") }
    }

    // MARK: - Greetings

    /// The first line with anything but white space on it and not in `hidden`, trimmed; nil when the text has none.
    static func firstLine(_ text: UnsafeBufferPointer<UInt8>, skipping hidden: [Range<Int>] = []) -> ArraySlice<UInt8>? {
        var index = 0
        // Greetings sit at the top: a first line further down than this is not one. Counted in what the reader
        // sees: a preheader padded with invisible characters is no reason to stop (found in review).
        let end = min(text.count, 4_096 + hidden.reduce(0) { $0 + $1.count })
        var next = 0  // the first hidden range that may hold a line's start
        while index < end {
            var lineEnd = index
            while lineEnd < end, text[lineEnd] != 0x0A { lineEnd += 1 }
            var start = index
            var stop = lineEnd
            while start < stop, TextLines.isSpace(text[start]) { start += 1 }
            while stop > start, TextLines.isSpace(text[stop - 1]) { stop -= 1 }
            // A line that begins in hidden text goes on where that ends: an inline preheader and the greeting
            // after it are one line of text ("Quick ideaHi ,", found in review). The ranges are in order, and so
            // are the lines: one pass over both.
            while start < stop, next < hidden.count {
                if hidden[next].upperBound <= start {
                    next += 1
                } else if hidden[next].lowerBound <= start {
                    start = min(hidden[next].upperBound, stop)
                    while start < stop, TextLines.isSpace(text[start]) { start += 1 }
                } else {
                    break
                }
            }
            if start < stop {
                return ArraySlice(UnsafeBufferPointer(rebasing: text[start..<stop]))
            }
            index = lineEnd + 1
        }
        return nil
    }

    /// Greeting words a mail merge puts a name after, lower-case, in English and the languages sales tools write
    /// templates in (found by an audit: "Bonjour ," and "Ciao ," were no greeting at all). Longest first where one
    /// is a prefix of another.
    static let greetingWords: [[UInt8]] = [
        "good morning", "good afternoon", "good evening", "greetings", "hello", "hallo", "dear", "hola", "hey",
        "hi",
        "sehr geehrter", "sehr geehrte", "guten morgen", "guten tag", "lieber", "liebe", "grüezi", "servus",
        "bonjour", "bonsoir", "salut", "chère", "chers",
        "buongiorno", "buonasera", "ciao", "gentilissima", "gentilissimo", "gentile", "salve",
        "buenos días", "buenos dias", "buenas tardes", "estimadas", "estimados", "estimada", "estimado",
        "prezadas", "prezados", "prezada", "prezado", "olá", "bom dia",
        "goedemorgen", "goedemiddag", "geachte", "hoi", "hej",
        // Not "cara", "caro", "cher", "beste", "madame" or "hei": "Cara is joining us", "Beste Grüße", "Cher is"
        // begin ordinary first lines and read as named greetings (found in review).
    ].map { Array($0.utf8) }

    /// What follows a greeting word where no one is named: "Sehr geehrte Damen und Herren", "Chère Madame,
    /// Monsieur". (English "Dear Sir or Madam" and "Hi team" stay named, as the starter model learned them.)
    static let nobodyNamed: [[UInt8]] = ["damen und herren", "madame, monsieur", "madame, messieurs"]
        .map { Array($0.utf8) }

    /// Titles a merge puts before the surname: "Dear Mr. ," is as blank as "Dear ,", "Dear Mr. Smith," named.
    /// Longest first, so that "Mrs." is not read as "Mr" and an "s.".
    static let titles: [[UInt8]] = [
        "mr", "mrs", "ms", "miss", "mx", "dr", "prof", "herr", "frau", "m", "mme", "mlle", "sr", "sra", "srta",
        "sig", "sig.ra", "dott", "dhr", "mevr",
    ].map { Array($0.utf8) }.sorted { $0.count > $1.count }

    /// How the line greets, if it is a greeting: "Hi ," (blank), "Hi," (unnamed) or "Hi Maya," (named).
    /// Blank is a space and then a comma, where the merge's name was: "Hi :)", "Hi - a heads-up" and French
    /// spacing ("Hello !") are greetings without a name.
    static func greetingKind(_ line: ArraySlice<UInt8>) -> String? {
        let lower = line.prefix(80).map { $0 &- 0x41 < 26 ? $0 | 0x20 : $0 }
        guard let word = greetingWords.first(where: { lower.starts(with: $0) }) else { return nil }
        var rest = lower.dropFirst(word.count)
        // "Hiring", "Hey there" is a greeting, "Dearest" is not a merge.
        if let next = rest.first, !(TextLines.isSpace(next) || isPunctuation(next) || rest.starts(with: noBreakSpace)) {
            return nil
        }
        var spaced = false
        while true {
            if let next = rest.first, TextLines.isSpace(next) {
                rest = rest.dropFirst()
            } else if rest.starts(with: noBreakSpace) {
                rest = rest.dropFirst(noBreakSpace.count)
            } else {
                break
            }
            spaced = true
        }
        // "Dear Mr. ," / "Sehr geehrter Herr ,": a title, ended by a dot or a blank, and then a comma where the
        // surname goes. Not "Hi M." or "Hi Mr,": nothing says a merge left anything out there (found in review).
        if let title = titles.first(where: { rest.starts(with: $0) }) {
            var after = rest.dropFirst(title.count)
            let dotted = after.first == UInt8(ascii: ".")
            if dotted { after = after.dropFirst() }
            var blanks = 0
            while let next = after.first, TextLines.isSpace(next) {
                after = after.dropFirst()
                blanks += 1
            }
            if dotted || blanks > 0, after.first == UInt8(ascii: ","), title.count > 1 || (dotted && blanks > 0) {
                return "greeting-blank"
            }
        }
        if nobodyNamed.contains(where: { word in
            rest.starts(with: word) && rest.dropFirst(word.count).first.map {
                TextLines.isSpace($0) || isPunctuation($0)
            } ?? true
        }) {
            return "greeting-unnamed"
        }
        guard let next = rest.first else { return "greeting-unnamed" }
        // A merge field where the name goes is a merge that failed as surely as an empty one: "Hi {{first_name}},"
        // (it read as a name). Asked of the line as written, since some fields are capitals only (*|FNAME|*).
        let name = line.dropFirst(rest.startIndex)
        if placeholderOpeners.contains(next) || (name.first == 0xC2 && name.count > 1),
           Array(name).withUnsafeBufferPointer({ isPlaceholder($0, at: $0.first == 0xC2 ? 1 : 0, end: $0.count,
                                                              strict: false, greeting: true) }) {
            return "greeting-blank"
        }
        if isPunctuation(next) { return spaced && next == UInt8(ascii: ",") ? "greeting-blank" : "greeting-unnamed" }
        // A field's bare name in capitals where the name goes: "Hi FNAME," (found by an audit), "Dear FIRST_NAME".
        let capitals = name.prefix { $0 &- 0x41 < 26 || $0 == UInt8(ascii: "_") }
        if capitals.count >= 4, name.dropFirst(capitals.count).first.map({ TextLines.isSpace($0) || isPunctuation($0) }) ?? true,
           Array(capitals).withUnsafeBufferPointer({ fieldNames.contains(normalizedName($0)) }) {
            return "greeting-blank"
        }
        // "Hi there," names nobody.
        // Not "Theresa": a letter, digit or multi-byte character after it goes on with a name.
        if rest.starts(with: there),
           !(rest.dropFirst(there.count).first.map { WordScanner.isASCIIWordByte($0) || $0 >= 0x80 } ?? false) {
            return "greeting-unnamed"
        }
        return "greeting-named"
    }

    private static let there = Array("there".utf8)

    /// U+00A0 in UTF-8: a merge written in a word processor leaves it where the name was.
    private static let noBreakSpace: [UInt8] = [0xC2, 0xA0]

    // MARK: - Merge fields

    /// Names of merge fields, lower-case with spaces, underscores, hyphens, dots and apostrophes removed, as they
    /// appear in square or angle brackets or single braces. Anything in double braces is a merge field whatever its
    /// name. The sales tools' own languages besides English: a template is often written in the prospect's.
    static let fieldNames: Set<[UInt8]> = Set([
        "firstname", "lastname", "name", "fullname", "yourname", "company", "companyname", "yourcompany",
        "title", "jobtitle", "city", "industry", "prospect", "prospectname", "contactname", "recipientname",
        "fname", "lname", "surname", "givenname", "organization", "organisation",
        "vorname", "nachname", "firma", "unternehmen", "prénom", "société", "entreprise", "nombre", "apellido",
        "empresa", "cognome", "azienda", "voornaam", "achternaam", "bedrijf",
    ].map { Array($0.utf8) })

    /// In square brackets and single braces, the fill-in phrases of published templates: "[Prospect's Company]",
    /// "[Your Name]", "[job title]", "[insert pain point]". A phrase is one when it starts with "insert", or when
    /// its last word is one of `phraseEnds` and a word before it one of `phraseOwners`: "[file name]" and
    /// "[host name]" in a how-to are not. Not in angle brackets, where "<your name>" is a usage line's argument.
    static let phraseEnds: Set<[UInt8]> = Set(["name", "company", "title", "industry", "city", "website", "role"]
        .map { Array($0.utf8) })
    static let phraseOwners: Set<[UInt8]> = Set([
        "first", "last", "full", "your", "my", "their", "his", "her", "company", "companys", "prospect", "prospects",
        "recipient", "recipients", "contact", "contacts", "lead", "leads", "client", "clients", "customer",
        "customers", "target", "job", "sender", "senders", "business", "organization", "organisation",
    ].map { Array($0.utf8) })

    /// "{{company}} + {{my_company}}", "Quick question, [First Name]": templates fill in the subject too. Only the
    /// unmistakable forms there (`strict`): a subject is short, and "Support {name} in the header (#412)" or
    /// "Fix <organization> in pom.xml" is an issue tracker's, not a merge's.
    static func subjectHasPlaceholder(_ subject: String?) -> Bool {
        guard var subject else { return false }
        return subject.withUTF8 { containsPlaceholder($0, strict: true) }
    }

    /// `strict`: double braces, Mailchimp's, Salesforce's, Word's and %…% fields, and field names in square
    /// brackets; no fill-in phrases, single braces or angle brackets.
    static func containsPlaceholder(_ text: UnsafeBufferPointer<UInt8>, strict: Bool = false) -> Bool {
        // A merge fills in the letter's opening and its first paragraphs; 16 KiB is past any form letter's end.
        let end = min(text.count, 16_384)
        // Only the bytes that open a field matter, and whether any field is there, not where: memchr (vectorised)
        // to each of them is several times faster than a switch on every byte.
        return placeholderOpeners.contains { opener in
            occurrences(of: opener, in: text, end: end).contains {
                isPlaceholder(text, at: $0, end: end, strict: strict)
            }
        }
    }

    private static let placeholderOpeners: [UInt8] = [UInt8(ascii: "{"), UInt8(ascii: "["), UInt8(ascii: "<"),
                                                      UInt8(ascii: "%"), UInt8(ascii: "*"), 0xAB]

    /// Field names that are also markup's elements, not taken in angle brackets.
    static let markupNames: Set<[UInt8]> = Set(["name", "title", "city", "organization", "organisation", "surname"]
        .map { Array($0.utf8) })

    /// Word's merge fields are one word, often joined with an underscore: «First_Name», «CompanyName». In
    /// guillemets, only a name with an underscore or one of these: «nombre» and «Entreprise» are words quoted in
    /// Spanish or French.
    static let joinedFieldNames: Set<[UInt8]> = Set(["firstname", "lastname", "fullname", "fname", "lname",
                                                     "companyname", "jobtitle"].map { Array($0.utf8) })

    /// The ends of a person's or company's field name behind the tool's prefix: %LEAD_FIRST_NAME%, %CONTACT_COMPANY%.
    static let personFields: [[UInt8]] = ["firstname", "lastname", "fullname", "fname", "lname", "company",
                                          "companyname"].map { Array($0.utf8) }

    /// Whether a merge field opens at `index`, which holds one of `placeholderOpeners`. Where a greeting's name
    /// goes, markup's element names are fields too: "Hi <Name>," in a plain-text letter is no XML.
    private static func isPlaceholder(_ text: UnsafeBufferPointer<UInt8>, at index: Int, end: Int,
                                      strict: Bool, greeting: Bool = false) -> Bool {
        let next = index + 1 < end ? text[index + 1] : 0
        switch text[index] {
        case UInt8(ascii: "{"):
            // GitHub Actions' and Helm's ${{ expression }} in a developer's mail.
            if next == UInt8(ascii: "{"), index > 0, text[index - 1] == UInt8(ascii: "$") { return false }
            if next == UInt8(ascii: "{"),
               let close = find(UInt8(ascii: "}"), in: text, from: index + 2, within: 40, end: end),
               close + 1 < end, text[close + 1] == UInt8(ascii: "}"),
               text[(index + 2)..<close].contains(where: isLetter) {
                return true
            }
            // Salesforce's and Pardot's {!Contact.FirstName}: an object, a dot, a field's name. Not JSX's {!isOpen}.
            if next == UInt8(ascii: "!") { return isSalesforceField(text, from: index + 2, end: end) }
            // Spintax the sending tool failed to spin: "{Hi|Hey|Hello}", "{quick question|idea for you}" (found by
            // an audit, in a text and a Subject).
            if isSpintax(text, at: index, end: end) { return true }
            guard !strict else { return false }
            return isFieldName(text, after: index, closing: UInt8(ascii: "}"), phrases: true, end: end)
        case UInt8(ascii: "["):
            return isFieldName(text, after: index, closing: UInt8(ascii: "]"), phrases: !strict, end: end)
        case UInt8(ascii: "<"):
            guard !strict else { return false }
            // Not <name>, <title> or <city>: XML's and HTML's elements, and a usage line's arguments.
            guard let close = find(UInt8(ascii: ">"), in: text, from: index + 1, within: 24, end: end) else {
                return false
            }
            let name = normalizedName(UnsafeBufferPointer(rebasing: text[(index + 1)..<close]))
            return fieldNames.contains(name) && (greeting || !markupNames.contains(name))
        case UInt8(ascii: "%"):
            // %FIRSTNAME%, %first_name%, %LEAD_FIRST_NAME%: letters and underscores only, so "50% off, 20% more" is
            // no field, and a merge field's name, so Windows' %JAVA_HOME% and %USERNAME% are not.
            guard let close = find(UInt8(ascii: "%"), in: text, from: index + 1, within: 30, end: end),
                  close - index - 1 >= 3 else { return false }
            let inner = UnsafeBufferPointer(rebasing: text[(index + 1)..<close])
            guard inner.allSatisfy({ isLetter($0) || $0 == UInt8(ascii: "_") }) else { return false }
            let name = normalizedName(inner)
            return fieldNames.contains(name)
                || personFields.contains { name.count > $0.count && name.suffix($0.count).elementsEqual($0) }
        case 0xAB where index > 0 && text[index - 1] == 0xC2:
            // Word's mail merge shows its fields as «First_Name», with no space inside.
            guard next != 0x20, next != 0xC2,
                  let close = find(0xC2, in: text, from: index + 1, within: 26, end: end),
                  close + 1 < end, text[close + 1] == 0xBB, text[close - 1] != 0x20 else { return false }
            let inner = UnsafeBufferPointer(rebasing: text[(index + 1)..<close])
            guard inner.allSatisfy({ isLetter($0) || isDigit($0) || $0 == UInt8(ascii: "_") }) else { return false }
            return inner.contains(UInt8(ascii: "_")) || joinedFieldNames.contains(normalizedName(inner))
        case UInt8(ascii: "*"):
            // Mailchimp's *|FNAME|*: capitals, digits, underscores and colons between "*|" and "|*".
            guard next == UInt8(ascii: "|") else { return false }
            return isDelimitedName(text, from: index + 2, closing: [UInt8(ascii: "|"), UInt8(ascii: "*")], end: end,
                                   allowing: { $0 &- 0x41 < 26 || isDigit($0) || $0 == 0x5F || $0 == 0x3A })
        default:
            return false
        }
    }

    /// The offsets of `byte` in `text[..<end]`, found lazily with memchr.
    private static func occurrences(of byte: UInt8, in text: UnsafeBufferPointer<UInt8>,
                                    end: Int) -> some Sequence<Int> {
        var from = 0
        return AnyIterator<Int> {
            guard from < end, let base = text.baseAddress,
                  let hit = memchr(base + from, Int32(byte), end - from) else { return nil }
            let index = base.distance(to: hit.assumingMemoryBound(to: UInt8.self))
            from = index + 1
            return index
        }
    }

    /// Whether the bracket at `open` holds a field name up to `closing` on the same line, or with `phrases`, a
    /// fill-in phrase (`phraseEnds`).
    private static func isFieldName(_ text: UnsafeBufferPointer<UInt8>, after open: Int, closing: UInt8, phrases: Bool,
                                    end: Int) -> Bool {
        guard let close = find(closing, in: text, from: open + 1, within: phrases ? 40 : 24, end: end),
              close > open + 1 else {
            return false
        }
        let inner = UnsafeBufferPointer(rebasing: text[(open + 1)..<close])
        if close - open - 1 <= 24, fieldNames.contains(normalizedName(inner)) { return true }
        return phrases && isFillInPhrase(inner)
    }

    /// "[Prospect's Company]", "[insert pain point]": words of letters (apostrophes and hyphens inside), at most five.
    static func isFillInPhrase(_ inner: UnsafeBufferPointer<UInt8>) -> Bool {
        guard inner.allSatisfy({ isLetter($0) || $0 == 0x20 || $0 == 0x27 || $0 == 0x2D || $0 >= 0x80 }) else {
            return false
        }
        let words = inner.split(separator: 0x20).map { word in
            word.filter { $0 != 0x27 && $0 != 0x2D }.map { $0 &- 0x41 < 26 ? $0 | 0x20 : $0 }
        }
        guard let first = words.first, let last = words.last, words.count <= 5 else { return false }
        if first == Array("insert".utf8) { return words.count > 1 }
        return words.count > 1 && phraseEnds.contains(last) && words.dropLast().contains(where: phraseOwners.contains)
    }

    /// "Contact.FirstName}" at `start`: letters, digits and underscores with at least one dot, whose last part is
    /// a field's name, then the closing brace.
    private static func isSalesforceField(_ text: UnsafeBufferPointer<UInt8>, from start: Int, end: Int) -> Bool {
        guard let close = find(UInt8(ascii: "}"), in: text, from: start, within: 48, end: end),
              let dot = text[start..<close].lastIndex(of: 0x2E), dot > start, dot + 1 < close,
              text[start..<close].allSatisfy({ isLetter($0) || isDigit($0) || $0 == 0x2E || $0 == 0x5F }) else {
            return false
        }
        let field = normalizedName(UnsafeBufferPointer(rebasing: text[(dot + 1)..<close]))
        return fieldNames.contains(field)
            || personFields.contains { field.count > $0.count && field.suffix($0.count).elementsEqual($0) }
    }

    /// Whether `{` + alternatives separated by "|" + `}` is at `open`: two to eight alternatives of letters,
    /// digits, spaces and a little punctuation, on one line, each with a word of two letters or more, within 120
    /// bytes, and one of them a phrase or a capitalised word, as a letter's are: "{Hi|Hey}", "{quick question|idea}".
    /// Not a command's `{start|stop|status}` or `--color={always|never}` (found in review), a shell's `{a,b}`, a
    /// regular expression's `(a|b)` or a set's `{a|b}`.
    private static func isSpintax(_ text: UnsafeBufferPointer<UInt8>, at open: Int, end: Int) -> Bool {
        if open > 0, isLetter(text[open - 1]) || isDigit(text[open - 1]) || text[open - 1] == UInt8(ascii: "=") {
            return false
        }
        var alternatives = 1
        var hasWord = false
        var letters = 0
        var phrased = false
        let start = open + 1
        var index = start
        while index < min(end, start + 120) {
            let byte = text[index]
            let isWordByte = isLetter(byte) || byte >= 0x80
            letters = isWordByte ? letters + 1 : 0
            if letters >= 2 { hasWord = true }
            switch byte {
            case UInt8(ascii: "}"):
                return hasWord && alternatives >= 2 && phrased
            case UInt8(ascii: "|"):
                guard hasWord, alternatives < 8 else { return false }
                alternatives += 1
                hasWord = false
            case UInt8(ascii: " "):
                phrased = true
            case UInt8(ascii: "'"), UInt8(ascii: ","), UInt8(ascii: "."), UInt8(ascii: "!"), UInt8(ascii: "?"),
                 UInt8(ascii: "-"):
                break
            default:
                guard isWordByte || isDigit(byte) else { return false }
                // An alternative that begins with a capital.
                if byte &- 0x41 < 26, text[index - 1] == UInt8(ascii: "{") || text[index - 1] == UInt8(ascii: "|") {
                    phrased = true
                }
            }
            index += 1
        }
        return false
    }

    /// Whether `text[from...]` is one or more bytes `allowing` accepts, then the bytes of `closing`, on one line.
    private static func isDelimitedName(_ text: UnsafeBufferPointer<UInt8>, from start: Int, closing: [UInt8],
                                        end: Int, allowing: (UInt8) -> Bool) -> Bool {
        var index = start
        while index < min(end, start + 40), allowing(text[index]) { index += 1 }
        guard index > start, index + closing.count <= end else { return false }
        return closing.indices.allSatisfy { text[index + $0] == closing[$0] }
    }

    private static func normalizedName(_ bytes: UnsafeBufferPointer<UInt8>) -> [UInt8] {
        bytes.filter { $0 != 0x20 && $0 != 0x5F && $0 != 0x2D && $0 != 0x2E && $0 != 0x27 }
            .map { $0 &- 0x41 < 26 ? $0 | 0x20 : $0 }
    }

    private static func isLetter(_ byte: UInt8) -> Bool { byte &- 0x41 < 26 || byte &- 0x61 < 26 }
    private static func isDigit(_ byte: UInt8) -> Bool { byte &- 0x30 < 10 }

    private static func find(_ byte: UInt8, in text: UnsafeBufferPointer<UInt8>, from start: Int, within: Int,
                             end: Int) -> Int? {
        var index = start
        while index < min(end, start + within) {
            if text[index] == byte { return index }
            if text[index] == 0x0A { return nil }
            index += 1
        }
        return nil
    }

    // MARK: - Opt-out wording

    /// English first; then the same footers as sales tools write them in German, French, Spanish, Italian, Dutch
    /// and Portuguese, since a pitch in a language the mailbox does not speak has few words the model knows. Not
    /// a bare "abmelden" or "afmelden": people deregister from a course or a meeting in personal mail too. Not a
    /// bare "not the right person" either: "I'm not the right person to ask" is a colleague's ordinary reply; only
    /// "If you're not the right person" and a sentence that opens with "Not the right person?".
    static let optOutPhrases = PhraseSet([
        "unsubscribe", "opt out", "opt-out", "optout", "reply stop", "reply \"stop\"", "reply 'stop'",
        "remove you from", "rather not hear", "don't want to hear", "no longer wish to receive",
        // Sequence tools' footers (found by an audit: Outreach's, Woodpecker's and Mailshake's were missed).
        // Whole footer phrases: "I won't follow up" or "don't want to receive" alone are ordinary replies' words.
        "prefer not to hear", "not to hear from me", "to receive any more messages", "to receive any more emails",
        "let me know and i won't follow up", "let me know and i will not follow up",
        "let me know and i won\u{2019}t follow up",
        "if you're not the right person", "if you\u{2019}re not the right person", "if you are not the right person",
        "\nnot the right person?", ". not the right person?", "reply \"no\"", "reply 'no'",
        "mit \"abmelden\"", "mit „abmelden", "mit 'abmelden'", "hier abmelden", "abbestellen",
        "keine weiteren nachrichten", "keine weiteren e-mails",
        "désabonner", "désinscri", "ne plus recevoir", "répondez stop",
        "darse de baja", "darte de baja", "palabra baja", "no desea recibir", "no desean recibir",
        "disiscriviti", "non ricevere più", "hier afmelden", "uitschrijven", "descadastr", "não deseja receber",
    ])

    /// `quoteStart`: where the first quoted or forwarded message starts (`firstAuthorLine`), if it does.
    static func containsOptOut(_ text: UnsafeBufferPointer<UInt8>, quoteStart: Int?) -> Bool {
        // Not in a message the text quotes or forwards, whether its lines are marked ">" or not (an HTML reply's
        // quote, an Outlook block below its From: line): the text's own part ends where the first one starts.
        let text = quoteStart.map { UnsafeBufferPointer(rebasing: text[..<$0]) } ?? text
        // Opt-out lines are footers: the end of the text is where they are.
        var start = max(text.count - optOutWindow, 0)
        // From a line's start, so that a quoted line cut in two is not half unquoted.
        if start > 0 { start = (text[start...].firstIndex(of: 0x0A) ?? text.count - 1) + 1 }
        let window = UnsafeBufferPointer(rebasing: text[start...])
        // Not in quoted lines: a reply that quotes the owner's "if you're not the right person" opts out of nothing.
        return unquotedRuns(of: window).contains { optOutPhrases.occurs(in: UnsafeBufferPointer(rebasing: window[$0])) }
    }

    /// The ranges of consecutive lines of `text` that do not start with ">" (after spaces).
    static func unquotedRuns(of text: UnsafeBufferPointer<UInt8>) -> [Range<Int>] {
        var runs: [Range<Int>] = []
        var runStart: Int?
        var lineStart = 0
        while lineStart < text.count {
            let line = TextLines.line(in: text, from: lineStart, end: text.count)
            let quoted = TextLines.quoteDepth(in: text, from: lineStart, to: line.content.lowerBound) > 0
            if quoted, let start = runStart {
                runs.append(start..<lineStart)
                runStart = nil
            } else if !quoted, runStart == nil {
                runStart = lineStart
            }
            lineStart = line.end + 1
        }
        if let start = runStart { runs.append(start..<text.count) }
        return runs
    }

    /// Whether `needle` occurs in `haystack` at an offset `accepting` takes: memchr (vectorised in the C library)
    /// to each candidate first byte.
    static func find(_ needle: [UInt8], in haystack: UnsafeRawBufferPointer,
                     accepting: (Int) -> Bool = { _ in true }) -> Bool {
        guard let first = needle.first, haystack.count >= needle.count, let base = haystack.baseAddress else {
            return false
        }
        let lastStart = haystack.count - needle.count
        var offset = 0
        while offset <= lastStart {
            guard let hit = memchr(base + offset, Int32(first), lastStart - offset + 1) else { return false }
            let index = base.distance(to: UnsafeRawPointer(hit))
            if needle.withUnsafeBytes({ memcmp(base + index, $0.baseAddress!, needle.count) }) == 0, accepting(index) {
                return true
            }
            offset = index + 1
        }
        return false
    }

    /// How much of the end of a text part is searched for opt-out wording.
    static let optOutWindow = 8_192

    // MARK: - Quoting one's own message

    /// How far into a text the first quoted author is looked for, and how much of its line is kept.
    static let authorLineWindow = 65_536
    static let authorLineLength = 300

    /// The first line, quote marks and indentation aside, that introduces a quoted or forwarded message: an
    /// attribution ("On 3 Mar 2026, Chris <chris@…> wrote:", also in `wroteWords`' languages), the "From:" line
    /// of a forwarded or Outlook block, or the one or two lines above a header block with no From: (To:, then
    /// Subject: within three lines), where Lotus Notes names the author and the date. Lower-cased (ASCII), at most
    /// `authorLineLength` bytes (a separator line above the block is left out). Also the offset where that line
    /// starts.
    static func firstAuthorLine(_ text: UnsafeBufferPointer<UInt8>) -> (line: [UInt8], start: Int)? {
        firstQuote(text)?.author
    }

    /// How a text quotes another message, if it does.
    enum Quote: Equatable {
        /// A line says whose message follows (`firstAuthorLine`): lower-cased, and the offset where it starts.
        case attributed(line: [UInt8], start: Int)
        /// Lines are quoted with ">", and no line says whose they are: an old client's reply, or one cut down to
        /// the lines it answers.
        case unattributed

        var author: (line: [UInt8], start: Int)? {
            guard case .attributed(let line, let start) = self else { return nil }
            return (line, start)
        }
    }

    /// The first line that says whose message the text quotes or forwards, else whether it quotes with ">" a
    /// message nobody is named for; nil when it quotes nothing.
    ///
    /// A quote of ">" lines that no line of `wroteWords` or labels introduces counts only with two lines of it and
    /// one of the writer's own. Its attribution is then the writer's last line above it if that ends with a colon:
    /// "Gary Lawrence Murphy:", or a client's attribution in a language `wroteWords` lacks ("napsal(a):",
    /// "写道："), which still names its author. An attribution quoted deeper than the first quoted line names a
    /// message inside that quote, not the quote itself.
    static func firstQuote(_ text: UnsafeBufferPointer<UInt8>) -> Quote? {
        let end = min(text.count, authorLineWindow)
        func lowercased(_ range: Range<Int>) -> [UInt8] {
            text[range.lowerBound..<min(range.upperBound, range.lowerBound + authorLineLength)]
                .map { $0 &- 0x41 < 26 ? $0 | 0x20 : $0 }
        }
        // The last two lines with anything on them, quote marks and indentation aside, and where each started.
        var previous: (content: Range<Int>, start: Int)?
        var beforePrevious: (content: Range<Int>, start: Int)?
        // The depth of the first quoted line, and what the unattributed reading needs.
        var firstQuoteDepth: Int?
        var quotedLines = 0
        var ownLines = 0
        var lastOwnLine: (content: Range<Int>, start: Int, endsWithColon: Bool)?
        var lineAboveQuote: (content: Range<Int>, start: Int)?
        var start = 0
        while start < end {
            let line = TextLines.line(in: text, from: start, end: end)
            let (first, last) = (line.content.lowerBound, line.content.upperBound)
            let depth = TextLines.quoteDepth(in: text, from: start, to: first)
            // Not nested inside the first quote: there it names a message the quoted one quotes.
            let outsideFirstQuote = firstQuoteDepth.map { depth <= $0 } ?? true
            // Most lines are neither: only a line that ends with a colon or starts with a label is copied.
            let endsWithColon = last > first && text[last - 1] == 0x3A && last - first <= authorLineLength
            let labelled = startsWithLabel(fromLabels, text, at: first, end: last)
            if outsideFirstQuote, endsWithColon || labelled {
                let line = lowercased(first..<last)
                if labelled || line.withUnsafeBytes({ bytes in wroteWords.contains { findWord($0, in: bytes) } }) {
                    return .attributed(line: line, start: start)
                }
            }
            if outsideFirstQuote, startsWithLabel(toLabels, text, at: first, end: last),
               beginsHeaderBlock(text, after: line.end, end: end) {
                // Only the lines below a separator: Lotus Notes' "----- Forwarded by Dana Whitlock/HOU on …" names
                // who passed the message on, often the sender, and above it is the sender's own text.
                let lines = [beforePrevious, previous].compactMap { $0 }
                let separator = lines.lastIndex { isSeparator($0.content, in: text) }
                let above = lines[(separator.map { $0 + 1 } ?? 0)...]
                let author = above.map { lowercased($0.content) }.joined(separator: [0x20])
                let begins = above.first?.start ?? separator.map { lines[$0].start } ?? start
                return .attributed(line: Array(author), start: begins)
            }
            if first < last {
                // An mbox writes a line of the text that began with "From " as ">From ": no quote.
                let quoted = depth > 0 && !(text[first - 1] == 0x3E && startsWithLabel([mboxEscaped], text, at: first,
                                                                                      end: last))
                if !quoted {
                    ownLines += 1
                    let colon = (endsWithColon || endsWithFullWidthColon(text, first..<last))
                        && last - first <= authorLineLength
                    lastOwnLine = (first..<last, start, colon)
                } else if !isSeparator(first..<last, in: text) {
                    if firstQuoteDepth == nil {
                        firstQuoteDepth = depth
                        if let lastOwnLine, lastOwnLine.endsWithColon {
                            lineAboveQuote = (lastOwnLine.content, lastOwnLine.start)
                        }
                    }
                    quotedLines += 1
                }
                (beforePrevious, previous) = (previous, (first..<last, start))
            }
            start = line.end + 1
        }
        guard quotedLines >= 2, ownLines >= 1 else { return nil }
        return lineAboveQuote.map { .attributed(line: lowercased($0.content), start: $0.start) } ?? .unattributed
    }

    /// Whether the range ends with "：" (U+FF1A), the colon of Chinese and Japanese attributions.
    private static func endsWithFullWidthColon(_ text: UnsafeBufferPointer<UInt8>, _ range: Range<Int>) -> Bool {
        range.count >= 3 && text[range.upperBound - 3] == 0xEF && text[range.upperBound - 2] == 0xBC
            && text[range.upperBound - 1] == 0x9A
    }

    /// Whether a line starts with "---", as the clients' separators above a quoted or forwarded message do.
    private static func isSeparator(_ content: Range<Int>, in text: UnsafeBufferPointer<UInt8>) -> Bool {
        content.count >= 3 && text[content.lowerBound..<content.lowerBound + 3].allSatisfy { $0 == 0x2D }
    }

    /// ">From " in an mbox, lower-cased and without its quote mark.
    private static let mboxEscaped = Array("from ".utf8)

    /// Whether a Subject: line follows within three lines of a To: line that ends at `lineEnd`: the header of an
    /// included message (a "cc:" line often between).
    static func beginsHeaderBlock(_ text: UnsafeBufferPointer<UInt8>, after lineEnd: Int, end: Int) -> Bool {
        var start = lineEnd + 1
        for _ in 0..<3 where start < end {
            let line = TextLines.line(in: text, from: start, end: end)
            if startsWithLabel(subjectLabels, text, at: line.content.lowerBound, end: line.content.upperBound) {
                return true
            }
            start = line.end + 1
        }
        return false
    }

    /// Where the first message the text quotes or forwards begins, when someone other than `author` wrote it;
    /// nil when the text quotes nothing, or only its author's own earlier message.
    static func startOfOthersMessage(_ text: UnsafeBufferPointer<UInt8>,
                                     author: (address: [UInt8], name: [UInt8])?) -> Int? {
        guard let quoted = firstAuthorLine(text), !names(author, in: quoted.line) else { return nil }
        return quoted.start
    }

    /// Outlook's labels in English, German, French, Spanish, Portuguese, Italian and Dutch (Dutch "Van:" only in a
    /// header block: as a line's first word it is English too, "Van: 2 pallets").
    static let fromLabels: [[UInt8]] = ["from:", "von:", "de:", "da:"].map { Array($0.utf8) }
    static let toLabels: [[UInt8]] = ["to:", "an:", "aan:", "para:", "a:"].map { Array($0.utf8) }
    static let subjectLabels: [[UInt8]] = ["subject:", "betreff:", "asunto:", "assunto:", "objet:", "oggetto:",
                                           "onderwerp:"].map { Array($0.utf8) }
    /// The verb of an attribution line in the mail clients' languages: Gmail's, Outlook's and Thunderbird's
    /// "wrote", Emacs's "writes", and their German, Spanish, French, Portuguese, Italian, Dutch, Polish,
    /// Scandinavian and Finnish. Matched as whole words, so that "rewrites:" and "beskrevet nedenfor:" are none.
    static let wroteWords: [[UInt8]] = ["wrote", "writes", "schrieb", "escribió", "a écrit", "escreveu", "ha scritto",
                                        "schreef", "napisał", "napisała", "skrev", "kirjoitti"].map { Array($0.utf8) }

    /// Whether the line at `start` begins with one of `labels` (lower-case), in any case.
    static func startsWithLabel(_ labels: [[UInt8]], _ text: UnsafeBufferPointer<UInt8>, at start: Int, end: Int)
        -> Bool {
        labels.contains { label in
            end - start >= label.count && label.indices.allSatisfy { offset in
                let byte = text[start + offset]
                return (byte &- 0x41 < 26 ? byte | 0x20 : byte) == label[offset]
            }
        }
    }

    /// The address and display name of the first From, lower-cased; nil without one. A mail server's export that
    /// writes From as a bare address keeps the name in X-From ("Dennis Kolb", or "Dennis Kolb <dkolb@…>"), and an
    /// Outlook quote names its author by name alone ("From: Dennis Kolb"): without it, a sequence's bump in such an
    /// archive read as quoting someone else.
    static func author(of header: Header) -> (address: [UInt8], name: [UInt8])? {
        guard let author = header.addresses("from").first else { return nil }
        var name = Array(author.displayName.lowercased().utf8)
        if name.isEmpty, let exported = header["x-from"] { name = exportedName(Array(exported.lowercased().utf8)) }
        return (Array(author.address.lowercased().utf8), name)
    }

    /// The name in an export's X-From: what comes before an address in angle brackets, without quotes and spaces.
    static func exportedName(_ value: [UInt8]) -> [UInt8] {
        let name = value.prefix { $0 != UInt8(ascii: "<") }
        let isTrimmed: (UInt8) -> Bool = { TextLines.isSpace($0) || $0 == UInt8(ascii: "\"") }
        return Array(name.drop(while: isTrimmed).reversed().drop(while: isTrimmed).reversed())
    }

    /// Whether the line names the author: by address, or by a display name long enough not to match by chance,
    /// each as a whole word: "Chris" is not "Christine Baker", nor ann@ joann@.
    /// Outlook's quote names people as the address book lists them, "Wurtz, Gerald", and Lotus Notes the other
    /// way round, so the name is looked for both ways.
    static func names(_ author: (address: [UInt8], name: [UInt8])?, in line: [UInt8]) -> Bool {
        guard let author else { return false }
        return line.withUnsafeBytes { bytes in
            (author.address.count > 3 && findWord(author.address, in: bytes))
                || (author.name.count > 3 && findWord(author.name, in: bytes))
                || (author.name.count > 3 && otherOrder(author.name).map { findWord($0, in: bytes) } == true)
        }
    }

    /// A name the other way round: "phillip k allen" as "allen, phillip k", "wurtz, gerald" as "gerald wurtz";
    /// nil for one word.
    static func otherOrder(_ name: [UInt8]) -> [UInt8]? {
        if let comma = name.firstIndex(of: 0x2C) {
            let surname = name[..<comma]
            let given = name[(comma + 1)...].drop { TextLines.isSpace($0) }
            guard !surname.isEmpty, !given.isEmpty, !given.contains(0x2C) else { return nil }
            return Array(given) + [0x20] + Array(surname)
        }
        let words = name.split(separator: 0x20)
        guard let surname = words.last, words.count >= 2 else { return nil }
        return Array(surname) + Array(", ".utf8) + Array(words.dropLast().joined(separator: [0x20]))
    }

    /// `find`, where the bytes either side of the match are not part of a word or an address (a dot before it
    /// is: "joe.ann@").
    static func findWord(_ needle: [UInt8], in haystack: UnsafeRawBufferPointer) -> Bool {
        find(needle, in: haystack) { index in
            (index == 0 || (haystack[index - 1] != UInt8(ascii: ".") && !isWordCharacter(endingAt: index, haystack)))
                && !isWordCharacter(startingAt: index + needle.count, haystack)
        }
    }

    /// Whether the character starting at `index` belongs to a word or an address: a letter or digit in any script,
    /// or "_", "-", "+". Curly quotes, guillemets and no-break spaces do not.
    static func isWordCharacter(startingAt index: Int, _ bytes: UnsafeRawBufferPointer) -> Bool {
        guard index < bytes.count else { return false }
        let lead = bytes[index]
        if lead < 0x80 {
            return lead &- 0x30 < 10 || lead &- 0x41 < 26 || lead &- 0x61 < 26
                || lead == UInt8(ascii: "_") || lead == UInt8(ascii: "-") || lead == UInt8(ascii: "+")
        }
        let length = lead >= 0xF0 ? 4 : lead >= 0xE0 ? 3 : 2
        let scalar = String(decoding: bytes[index..<min(index + length, bytes.count)], as: UTF8.self)
            .unicodeScalars.first
        return scalar.map { $0.properties.isAlphabetic || $0.properties.numericType != nil } ?? false
    }

    /// `isWordCharacter(startingAt:)` for the character that ends just before `index`.
    static func isWordCharacter(endingAt index: Int, _ bytes: UnsafeRawBufferPointer) -> Bool {
        var start = index - 1
        while start > 0, index - start < 4, bytes[start] & 0xC0 == 0x80 { start -= 1 }
        return start >= 0 && isWordCharacter(startingAt: start, bytes)
    }

    // MARK: - Header

    /// Whose message a text quotes or forwards first (`firstAuthorLine`); `unattributed` when no line says.
    enum Quoted { case own, others, unattributed }

    /// `quoting`: whose message the text quotes first, if any. An unthreaded reply that quotes someone else's
    /// message is what a real reply looks like from a client or an export that keeps no threading fields (Lotus
    /// Notes, archives of old mail): of the samples' unthreaded "Re:" messages, none of 190 pitches quote another's
    /// message (62 quote their own), and 19 of 29 ham do. It gets a token of its own rather than `reply-unthreaded`.
    /// So does a quote no line attributes: a sequence's bump quotes its first step under the attribution its tool
    /// writes, and none of the samples' unthreaded "Re:" pitches quotes without one.
    static func addThreadToken(_ header: Header, subject: String?, quoting: Quoted? = nil,
                               to out: inout TokenCollector) {
        guard let subject, let prefix = replyPrefix(subject) else { return }
        let kind = prefix == .reply ? "reply-" : "forward-"
        if namesAMessage(header["in-reply-to"]) || namesAMessage(header["references"]) {
            out.add("sig:", kind + "threaded")
        } else {
            let quotesAnother = quoting == .others || quoting == .unattributed
            out.add("sig:", kind + (quotesAnother ? "unthreaded-quoting" : "unthreaded"))
        }
    }

    enum Prefix { case reply, forward }

    /// "Re:", "RE:", "Re[2]:", "AW:", "SV:", "Antw:", Portuguese "RES:", Italian "R:", Polish "Odp:", Finnish "VS:"
    /// and Turkish "Ynt:" are replies; "Fwd:", "FW:", "WG:", "TR:", Spanish "RV:", Portuguese "ENC:" and Italian
    /// "I:" forwards. A gateway's tag before them (`gatewayTags`) is passed over.
    static func replyPrefix(_ subject: String) -> Prefix? {
        replyPrefixAndEnd(subject)?.kind
    }

    /// The prefix's kind, and the UTF-8 offset just past its colon.
    static func replyPrefixAndEnd(_ subject: String) -> (kind: Prefix, end: Int)? {
        var lower = subject.utf8.prefix(48).map { $0 &- 0x41 < 26 ? $0 | 0x20 : $0 }[...]
        while let first = lower.first, TextLines.isSpace(first) { lower = lower.dropFirst() }
        // The tag a mail gateway puts in front of outside mail ("[EXTERNAL] Re:", "*EXTERNAL* RE:", "EXT: Re:")
        // hides no reply (found by an audit: such replies got no thread token at all).
        for tag in gatewayTags where lower.starts(with: tag) {
            lower = lower.dropFirst(tag.count)
            while let first = lower.first, TextLines.isSpace(first) { lower = lower.dropFirst() }
            break
        }
        lower = lower.prefix(12)
        for (word, kind) in [("re", Prefix.reply), ("aw", .reply), ("sv", .reply), ("antw", .reply), ("res", .reply),
                             ("odp", .reply), ("vs", .reply), ("ynt", .reply),
                             ("r", .reply), ("fwd", .forward), ("fw", .forward), ("wg", .forward), ("tr", .forward),
                             ("rv", .forward), ("enc", .forward), ("i", .forward)] {
            let bytes = Array(word.utf8)
            guard lower.starts(with: bytes) else { continue }
            var rest = lower.dropFirst(bytes.count)
            if rest.first == UInt8(ascii: "[") {  // "Re[2]:"
                while let next = rest.first, next != UInt8(ascii: "]") { rest = rest.dropFirst() }
                rest = rest.dropFirst()
            }
            while let next = rest.first, next == 0x20 { rest = rest.dropFirst() }
            if rest.first == UInt8(ascii: ":") { return (kind, rest.startIndex + 1) }
        }
        return nil
    }

    /// What mail gateways put in front of an outside sender's Subject, lower-case.
    static let gatewayTags: [[UInt8]] = ["[external]", "[extern]", "[externe]", "[ext]", "*external*", "external:",
                                         "ext:", "[caution]", "caution:"].map { Array($0.utf8) }

    /// Whether a threading field names a message: an In-Reply-To or References with a message id in it, not an
    /// empty one or "<>" (found by an audit: those counted as threaded).
    static func namesAMessage(_ value: String?) -> Bool {
        // Old clients write the id without its angle brackets (found in review): an "@" with something on either
        // side is one either way.
        guard let value, let at = value.utf8.firstIndex(of: UInt8(ascii: "@")) else { return false }
        let bytes = value.utf8
        let named: (UInt8) -> Bool = { !TextLines.isSpace($0) && $0 != UInt8(ascii: "<") && $0 != UInt8(ascii: ">") }
        return at > bytes.startIndex && named(bytes[bytes.index(before: at)])
            && bytes.index(after: at) < bytes.endIndex && named(bytes[bytes.index(after: at)])
    }

    /// Opt-out wording in mail to one person with no list fields is `optout-personal`; to one person with a
    /// List-Unsubscribe but no List-Id or bulk Precedence, `optout-unlisted`: what cold-email tools send since the
    /// big mailbox providers asked bulk senders for one-click unsubscribing (2024), and what a newsletter without
    /// a list's id sends too, which training tells apart. Anything else is `optout-list`.
    static func optOutKind(_ header: Header) -> String {
        guard isOneToOne(header) else { return "optout-list" }
        return header["list-unsubscribe"] == nil ? "optout-personal" : "optout-unlisted"
    }

    /// One recipient or none, and none of the fields mailing lists and bulk senders add but List-Unsubscribe
    /// (`optOutKind` tells that one apart).
    static func isOneToOne(_ header: Header) -> Bool {
        if header["list-id"] != nil { return false }
        // A machine's notice (RFC 3834) is nobody's letter: an alarm's "to stop receiving these" (found by an audit).
        if let auto = header["auto-submitted"]?.trimmingPrefix(while: { $0 == " " || $0 == "\t" }).lowercased(),
           !auto.isEmpty, !auto.hasPrefix("no") {
            return false
        }
        if let precedence = header["precedence"]?.lowercased(),
           ["bulk", "list", "junk"].contains(where: { precedence.contains($0) }) {
            return false
        }
        var defects: [Defect] = []
        var recipients = 0
        for field in header.fields where ["to", "cc"].contains(header.name(of: field).lowercased()) {
            recipients += AddressList.parse(header.unfoldedValue(of: field), defects: &defects).count
            if recipients > 1 { return false }
        }
        return true
    }

    private static func isPunctuation(_ byte: UInt8) -> Bool {
        byte == UInt8(ascii: ",") || byte == UInt8(ascii: "!") || byte == UInt8(ascii: ":")
            || byte == UInt8(ascii: ";") || byte == UInt8(ascii: ".") || byte == UInt8(ascii: "-")
    }
}
