import PitchMessage
@testable import PitchTokenizer
import Testing

/// The `sig:` tokens of a message made of `header` lines and `body`.
private func signals(_ header: String, _ body: String, only: Set<FormLetterSignal> = Set(FormLetterSignal.allCases))
    -> [String] {
    let text = header + "\n\n" + body
    return Tokenizer(signals: only).tokens(of: Message(bytes: Array(text.utf8))).filter { $0.hasPrefix("sig:") }
}

private let oneToOne = "From: Dan <dan@slotwise.example>\nTo: Maya <maya@brightfield.example>\nSubject: Hello"

@Suite struct GreetingSignalTests {
    @Test(arguments: [
        ("Hi ,\n\nI noticed your team is hiring.", "sig:greeting-blank"),
        ("Hi , ,\n\nQuick question.", "sig:greeting-blank"),
        ("Dear ,\nWe help companies like yours.", "sig:greeting-blank"),
        ("  Hello , hope you are well", "sig:greeting-blank"),
        ("Hi Maya,\n\nThe project's going well, how is yours?", "sig:greeting-named"),
        ("Good morning Tom!\nSee you at ten.", "sig:greeting-named"),
        ("Hi,\n\nAttached is the invoice.", "sig:greeting-unnamed"),
        ("Hello!\nWelcome aboard.", "sig:greeting-unnamed"),
    ])
    func greetingsAreTold(body: String, expected: String) {
        #expect(signals(oneToOne, body) == [expected])
    }

    /// Found by an audit: a space and any punctuation after the greeting word was taken for a blank name.
    @Test(arguments: [
        ("Hi :)\n\nThe files are up.", "sig:greeting-unnamed"),
        ("Hi - quick heads-up, the build is red.", "sig:greeting-unnamed"),
        ("Hello !\n\nHere are the minutes.", "sig:greeting-unnamed"),
        ("Hello ...\nanyone there?", "sig:greeting-unnamed"),
        ("Hallo ,\n\nwir helfen Unternehmen.", "sig:greeting-blank"),
        ("Hi\u{00A0},\n\nWe help teams like yours.", "sig:greeting-blank"),
        ("Hallo Frau Weber,\n\nanbei die Unterlagen.", "sig:greeting-named"),
    ])
    func onlyACommaAfterASpaceIsABlankName(body: String, expected: String) {
        #expect(signals(oneToOne, body) == [expected])
    }

    /// Found by an audit: greetings in the languages sales tools write templates in were no greeting at all, and a
    /// title with the surname left out ("Dear Mr. ,") read as a name.
    @Test(arguments: [
        ("Bonjour ,\n\nNous aidons les entreprises.", "sig:greeting-blank"),
        ("Ciao ,\nuna domanda veloce.", "sig:greeting-blank"),
        ("Hej ,\nvi hjälper företag.", "sig:greeting-blank"),
        ("Guten Tag ,\nwir helfen Unternehmen.", "sig:greeting-blank"),
        ("Estimado ,\nayudamos a empresas.", "sig:greeting-blank"),
        ("Chère ,\nune question rapide.", "sig:greeting-blank"),
        ("Dear Mr. ,\nWe help companies like yours.", "sig:greeting-blank"),
        ("Dear Ms ,\nWe help companies like yours.", "sig:greeting-blank"),
        ("Sehr geehrter Herr ,\nwir helfen Unternehmen.", "sig:greeting-blank"),
        ("Bonjour Claire,\nvoici le compte rendu.", "sig:greeting-named"),
        ("Buongiorno Marco,\nin allegato il preventivo.", "sig:greeting-named"),
        ("Dear Mr. Smith,\nPlease find the contract attached.", "sig:greeting-named"),
        ("Dear Mrs. Okafor,\nThank you for your letter.", "sig:greeting-named"),
        ("Hi Mr,\nsee you.", "sig:greeting-named"),
        // Found in review: ordinary first lines, and a title's dot, read as greetings or blanks.
        ("Hi M.\nsee you.", "sig:greeting-named"),
        ("Bonjour M. ,\nune question.", "sig:greeting-blank"),
        ("Cara is joining us on Monday.", nil),
        ("Beste Grüße aus Berlin", nil),
        ("Cher is on the radio.", nil),
        ("Sehr geehrte Damen und Herren,\nanbei die Unterlagen.", "sig:greeting-unnamed"),
        ("Bonjour,\nvoici le compte rendu.", "sig:greeting-unnamed"),
        ("Cheryl sent the notes.", nil),
    ])
    func greetingsInOtherLanguagesAndTitles(body: String, expected: String?) {
        #expect(signals(oneToOne, body) == (expected.map { [$0] } ?? []))
    }

    /// Found by an audit: a merge field where the name goes, and "there", were read as names. A field is a failed
    /// merge as an empty name is (and a placeholder besides); "there" names nobody.
    @Test(arguments: [
        ("Hi {{first_name}},\n\nWe help teams like yours.", ["sig:greeting-blank", "sig:placeholder"]),
        ("Dear [First Name],\nWe help teams like yours.", ["sig:greeting-blank", "sig:placeholder"]),
        ("Hi *|FNAME|*,\nWe help teams like yours.", ["sig:greeting-blank", "sig:placeholder"]),
        ("Hello \u{AB}First_Name\u{BB},\nWe help teams like yours.", ["sig:greeting-blank", "sig:placeholder"]),
        ("Hi %FIRSTNAME%!\nWe help teams like yours.", ["sig:greeting-blank", "sig:placeholder"]),
        ("Hi there,\n\nQuick one about your hiring.", ["sig:greeting-unnamed"]),
        ("Hey there!\nSee you at ten.", ["sig:greeting-unnamed"]),
        ("Hi there\nSee you at ten.", ["sig:greeting-unnamed"]),
        ("Hi Theresa,\n\nSee you at ten.", ["sig:greeting-named"]),
        ("Hi [Maya],\nSee you at ten.", ["sig:greeting-named"]),
        // Found by an audit: in a plain-text letter, a field in angle brackets where the name goes is no markup.
        ("Hi <Name>,\nWe help teams like yours.", ["sig:greeting-blank"]),
        ("Dear <First Name>,\nWe help teams like yours.", ["sig:greeting-blank", "sig:placeholder"]),
        ("Hi <Maya>,\nSee you at ten.", ["sig:greeting-named"]),
        // Found by an audit: a field's bare name in capitals, and spintax the tool did not spin.
        ("Hi FNAME,\nWe help teams like yours.", ["sig:greeting-blank"]),
        ("Dear FIRST_NAME,\nWe help teams like yours.", ["sig:greeting-blank"]),
        ("Hi NAMES,\nSee you at ten.", ["sig:greeting-named"]),
        ("Hi SAM,\nSee you at ten.", ["sig:greeting-named"]),
        ("{Hi|Hey|Hello} Maya,\nWe help teams like yours.", ["sig:placeholder"]),
    ])
    func aMergeFieldOrThereIsNoName(body: String, expected: [String]) {
        #expect(signals(oneToOne, body) == expected)
    }

    @Test(arguments: [
        "Hiring is hard this quarter, so we built a tool.",  // "Hi" inside a word
        "Dearest colleagues are rare.",
        "The meeting moved to Thursday.",
        "",
    ])
    func noGreetingNoToken(body: String) {
        #expect(signals(oneToOne, body).isEmpty)
    }

    /// Found by an audit: an HTML preheader the reader never sees came first and hid the broken greeting.
    @Test(arguments: [
        ("<div style=\"display:none\">A quick idea for your team</div><p>Hi ,</p><p>We help.</p>",
         ["sig:greeting-blank"]),
        ("<span style=\"opacity:0\">A quick idea</span><p>Hi Maya,</p>", ["sig:greeting-named"]),
        ("<div hidden>Hi ,</div><p>Thanks for the notes.</p>", []),
        ("<div>A quick idea for your team</div><p>Hi ,</p>", []),
        // Found in review: an inline preheader on the greeting's line, one closed by its parent, one padded.
        ("<span style=\"display:none\">Quick idea</span>Hi ,<br>We help.", ["sig:greeting-blank"]),
        ("<div><span style=\"display:none\">Quick idea</div><p>Hi ,</p>", ["sig:greeting-blank"]),
        ("<div style=\"display:none\">Quick idea" + String(repeating: "&zwnj;&nbsp;", count: 1_500) + "</div><p>Hi ,</p>",
         ["sig:greeting-blank"]),
    ])
    func theGreetingIsTheFirstLineTheReaderSees(html: String, expected: [String]) {
        let header = oneToOne + "\nMIME-Version: 1.0\nContent-Type: text/html; charset=utf-8"
        #expect(signals(header, "<html><body>" + html + "</body></html>") == expected)
    }

    @Test func onlyTheFirstLineCanGreet() {
        #expect(signals(oneToOne, "Thanks for the notes.\nHi , all").isEmpty)
    }
}

@Suite struct PlaceholderSignalTests {
    @Test(arguments: [
        "Hello {{first_name}}, quick question",
        "We work with companies like {{ company }} every day",
        "Dear %FIRSTNAME%,",
        "Hi %first_name%, hope all is well",
        "Hi [First Name], I saw your profile",
        "Are you the right person at <Company> for this?",
        "Hey {company} team",
        "Regards to [company name] from us",
        "Hi *|FNAME|*, are you still looking?",
        "Hello {!Contact.FirstName}, following up",
        "We help {!Account.Name} and teams like it",
        "We help [Prospect's Company] grow revenue",
        "Best, [Your Name]",
        "As the [job title] at your firm, you know",
        "I noticed [insert recent achievement] and wanted to reach out",
        "Hi {First Name}, great to connect",
        "Hallo [Vorname], kurze Frage",
        "Bonjour [Prénom], une question",
        "Hi <<First Name>>, quick one",
        "Dear «First_Name», we would like to",
        "Hi %LEAD_FIRST_NAME%, quick question",
        "Hi %FNAME%,",
        "{Quick question|An idea} for your team",
        "We help {teams|companies} like yours {grow faster|save time}.",
    ])
    func mergeFieldsLeftInTheTextAreFound(body: String) {
        #expect(signals(oneToOne, "Thanks.\n" + body).contains("sig:placeholder"))
    }

    @Test(arguments: [
        "We saved 50% of costs, 20% more than planned.",
        "See the docs at <https://example.com/docs> and [1] for details.",
        "Use {x} in the template and {{ }} nowhere.",
        "if (a < b) { return [a, b] }",
        "The discount is 100%off, PERCENT% is not a word.",
        "Run scp [file name] to [host name], then ssh <user>@<host>.",
        "Subject tags: [EXTERNAL] [Tarnside Outfitters] [LEGAL TO CONFIRM] [action needed] [1] [image: Company logo]",
        "Bold *really* matters, *|not a tag and a | pipe*, and {!} nothing.",
        "Usage: add-user <username> --role <role> --site <website>",
        "Footnotes [i] and [insert] alone are not fill-ins.",
        "Set %JAVA_HOME% and %PATH%, then log in as %USERNAME%.",
        "The pom has <name>core</name> and <title>Core</title>; the page <city> element too.",
        "run: echo ${{ secrets.DEPLOY_KEY }} and ${{ github.ref }}",
        "Il a dit « entreprise » et « Prénom », avec des espaces.",
        // Found by a review: JSX, Spanish and Italian quotes, code and XML.
        "<button disabled={!enabled}> and {!isOpen && <Menu/>}",
        "En el campo «nombre» y la «empresa»; il campo «Cognome» è vuoto.",
        "swap(a[first], a[second]); const { first } = range;",
        "The pom has <organization>Acme</organization> and DocBook <surname>Lee</surname>.",
        // Not spintax: a shell's braces, a regular expression, a template's pipe, code.
        "Copy it with cp file.{txt,bak} and grep -E '(foo|bar)'.",
        "In Rust match x { 1 | 2 => a } and { ok | err => b }.",
        "The set {a|b} notation, {|x|} and {x|} are not a spun phrase.",
        // Found in review: a command's usage, an option's values, LaTeX.
        "Usage: /etc/init.d/nginx {start|stop|restart|reload|force-reload|status}",
        "Run ls --color={always|never|auto} or \\begin{tabular}{lc|rr}.",
    ])
    func ordinaryBracketsAndPercentsAreNot(body: String) {
        #expect(!signals(oneToOne, "Thanks.\n" + body).contains("sig:placeholder"))
    }

    @Test(arguments: [
        ("{{company}} + {{my_company}}", true),
        ("Quick question, [First Name]", true),
        ("Re: [EXTERNAL] the Q3 report", false),
        ("[PATCH] init: accept {start|stop|status}", false),
        ("{Quick question|An idea} for your team", true),
        ("Re: [acme/web] Support {name} in the page header (#412)", false),
        ("Fix <organization> element in pom.xml", false),
        ("Re: [insert image] button broken", false),
        ("*|FNAME|*, a quick question", true),
        ("[CodeYard] build 212 failed", false),
    ])
    func theSubjectIsReadToo(subject: String, found: Bool) {
        let header = "From: Dan <dan@slotwise.example>\nTo: Maya <maya@brightfield.example>\nSubject: " + subject
        #expect(signals(header, "Thanks, see you then.").contains("sig:placeholder") == found)
    }
}

@Suite struct ThreadSignalTests {
    @Test(arguments: [
        ("Subject: Re: quick question", "sig:reply-unthreaded"),
        ("Subject: RE: 15 minutes next week?", "sig:reply-unthreaded"),
        ("Subject: Re[2]: our call", "sig:reply-unthreaded"),
        ("Subject: AW: Angebot", "sig:reply-unthreaded"),
        ("Subject: Fwd: proposal for you", "sig:forward-unthreaded"),
        ("Subject: FW: pricing", "sig:forward-unthreaded"),
        ("Subject: R: preventivo", "sig:reply-unthreaded"),
        ("Subject: RES: orçamento", "sig:reply-unthreaded"),
        ("Subject: I: fattura", "sig:forward-unthreaded"),
        ("Subject: ENC: pedido", "sig:forward-unthreaded"),
        ("Subject: RV: presupuesto", "sig:forward-unthreaded"),
        // Found by an audit: behind a mail gateway's tag, or in Polish, Finnish and Turkish, no token at all.
        ("Subject: [EXTERNAL] Re: quick question", "sig:reply-unthreaded"),
        ("Subject: [External] RE: 15 minutes", "sig:reply-unthreaded"),
        ("Subject: *EXTERNAL* Re: our call", "sig:reply-unthreaded"),
        ("Subject: EXT: Re: pricing", "sig:reply-unthreaded"),
        ("Subject: [EXT] FW: pricing", "sig:forward-unthreaded"),
        ("Subject: Odp: oferta", "sig:reply-unthreaded"),
        ("Subject: VS: tarjous", "sig:reply-unthreaded"),
        ("Subject: Ynt: teklif", "sig:reply-unthreaded"),
        // Found by an audit: an empty threading field, or one naming no message, is no thread.
        ("Subject: Re: our call\nReferences:", "sig:reply-unthreaded"),
        ("Subject: Re: our call\nIn-Reply-To: <>", "sig:reply-unthreaded"),
        ("Subject: Re: our call\nIn-Reply-To: none", "sig:reply-unthreaded"),
        ("Subject: Re: our call\nIn-Reply-To: abc.123@mail.example", "sig:reply-threaded"),
    ])
    func replySubjectsWithoutAThreadAreFake(subject: String, expected: String) {
        let header = "From: a@b.example\nTo: c@d.example\n" + subject
        #expect(signals(header, "Thanks.", only: [.thread]) == [expected])
    }

    @Test func aGenuineReplyIsThreaded() {
        let header = """
            From: Tom <tom@partner.example>
            To: Maya <maya@brightfield.example>
            Subject: Re: the migration plan
            In-Reply-To: <abc@brightfield.example>
            References: <abc@brightfield.example>
            """
        #expect(signals(header, "Sounds good.", only: [.thread]) == ["sig:reply-threaded"])
    }

    /// A genuine reply from a client or an archive that keeps no threading fields quotes the other side; a
    /// sequence's fake "Re:" quotes nothing, or its own first step.
    @Test(arguments: [
        ("Subject: RE: gas nominations", "Fine by me.\n\n-----Original Message-----\nFrom: Lee, Dana\nSent: Monday",
         ["sig:reply-unthreaded-quoting"]),
        ("Subject: Re: lunch", "Friday works.\n\nOn 3 Mar 2026, Sam <sam@partner.example> wrote:\n> Lunch?",
         ["sig:reply-unthreaded-quoting"]),
        ("Subject: Fwd: the contract", "See below.\n\n---------- Forwarded message ---------\nFrom: Legal <legal@x.example>",
         ["sig:forward-unthreaded-quoting"]),
        ("Subject: Re: quick question", "Any thoughts?\n\nOn 3 Mar 2026, Dan <dan@slotwise.example> wrote:\n> Hi Maya,",
         ["sig:reply-unthreaded", "sig:quotes-own-message"]),
        ("Subject: Re: quick question", "Just bumping this to the top of your inbox.", ["sig:reply-unthreaded"]),
        // Lotus Notes: no From: line, the author and date above the included header.
        ("Subject: Re: West Position", "Agreed.\n\n\n\tHeather Dunton\n\t10/16/2000 09:41 AM\n\t\t \n\t\t To: Dan"
            + " Reyes/HOU/ECT@ECT\n\t\t cc: \n\t\t Subject: West Position\n\nDan, the numbers are in.",
         ["sig:reply-unthreaded-quoting"]),
        ("Subject: Re: our call", "Any news?\n\n\"Dan\" <dan@slotwise.example> on 02/19/2026 09:12:21 AM\nTo: Maya"
            + "\ncc: \nSubject: our call\n\nHi",
         ["sig:reply-unthreaded", "sig:quotes-own-message"]),
        // Italian Outlook.
        ("Subject: R: preventivo", "Va bene, grazie.\n\nDa: Lucia Ferri <lucia@ferri.example>\nInviato: lunedì\nA: Dan"
            + "\nOggetto: preventivo", ["sig:reply-unthreaded-quoting"]),
        // Attributions in the clients' other languages (more in `attributionsInOtherLanguages`).
        ("Subject: R: preventivo", "Va bene.\n\nIl 18/11/2025 11:42, Lucia Ferri <lucia@ferri.example> ha scritto:"
            + "\n> Buongiorno", ["sig:reply-unthreaded-quoting"]),
        ("Subject: Re: clínicas", "Ainda faz sentido?\n\n> Em 18/11/2025, Dan <dan@slotwise.example> escreveu:"
            + "\n> Olá Rui,", ["sig:reply-unthreaded", "sig:quotes-own-message"]),
        ("Subject: Re: whoa", ">>>>> \"J\" == James <james@best.example> writes:\n\n    J> pricey",
         ["sig:reply-unthreaded-quoting"]),
        // Quoted with ">" and attributed to nobody: an old client's reply, trimmed to what it answers.
        ("Subject: Re: lunch", "> Lunch on Friday?\n> Or Monday?\n\nFriday works.", ["sig:reply-unthreaded-quoting"]),
        // One ">" line is no quote ("> Cut onboarding time 40%"), nor are an mbox's escaped "From " line and a
        // quote's bare marks.
        ("Subject: Re: quick question", "Worth a look?\n\n> Cut onboarding time 40%\n\nDan",
         ["sig:reply-unthreaded"]),
        ("Subject: Re: quick question", "Any thoughts?\n>From the desk of Dan\n>\n> \nDan",
         ["sig:reply-unthreaded"]),
        // The line above a quote that ends with a colon attributes it, in any language, and with a name alone.
        ("Subject: Re: nabídka", "Máte zájem?\n\nDne 3. 3. 2026 v 9:12 Dan <dan@slotwise.example> napsal(a):\n"
            + "> Dobrý den,\n> posílám nabídku.", ["sig:reply-unthreaded", "sig:quotes-own-message"]),
        ("Subject: Re: Canadians", "Gary Lawrence Murphy:\n>If we had more variety of franchise food\n>than"
            + " we do.\n\nThings aren't all that bad.", ["sig:reply-unthreaded-quoting"]),
        // A quote that names nobody, holding an attribution of Dan's own deeper inside: not his bump.
        ("Subject: Re: meeting", "> Thursday works.\n> Or Friday.\n>\n> > On Mon, Dan <dan@slotwise.example> wrote:"
            + "\n> > Can we meet?\n\nGreat.", ["sig:reply-unthreaded-quoting"]),
        // Verbs are whole words: "beskrevet" (described) is not "skrev" (wrote).
        ("Subject: Re: tilbud", "Som beskrevet nedenfor:\n- pris\n- levering", ["sig:reply-unthreaded"]),
        // "To:" in the text with no Subject: after it is no header.
        ("Subject: Re: quick question", "To: the head of operations\nWe help teams like yours.\n\nThanks",
         ["sig:reply-unthreaded"]),
    ])
    func anUnthreadedReplyThatQuotesAnotherIsTold(subject: String, body: String, expected: [String]) {
        let header = "From: Dan <dan@slotwise.example>\nTo: Maya <maya@brightfield.example>\n" + subject
        #expect(signals(header, body, only: [.thread, .bump]) == expected)
        let threaded = signals(header + "\nIn-Reply-To: <a@b.example>", body, only: [.thread])
        #expect(threaded == [subject.contains("Fwd:") ? "sig:forward-threaded" : "sig:reply-threaded"])
    }

    /// Lotus Notes' separator above a forwarded message names who passed it on, often the sender; the line below
    /// it names the author.
    @Test func aLotusForwardIsTheAuthorsNotTheForwarders() {
        let header = "From: Dan Reyes <dan.reyes@calderridge.example>\nTo: Maya <maya@calderridge.example>\n"
            + "Subject: FW: West Position"
        let forward = "FYI\n\n---------------------- Forwarded by Dan Reyes/HOU/CRE on 10/16/2000 08:15 AM"
            + " ---------------------------\n\n\n\"Lee, Sam\" <slee@pipeline.example> on 10/12/2000 01:12:21 PM\n"
            + "To: Dan Reyes/HOU/CRE@CRE\ncc: \nSubject: West Position\n\nNumbers attached."
        #expect(signals(header, forward, only: [.thread, .bump]) == ["sig:forward-unthreaded-quoting"])
        // His signature above the separator is not the author of what it forwards.
        let signed = "FYI\nDan Reyes\n---------------------- Forwarded by Dan Reyes/HOU/CRE on 10/16/2000 08:15 AM"
            + " ---------------------------\nTo: Maya Chen/HOU/CRE@CRE\ncc: \nSubject: West Position\n\nNumbers."
        #expect(signals(header, signed, only: [.thread, .bump]) == ["sig:forward-unthreaded-quoting"])
        // His own message passed on again is still his own.
        let own = forward.replacingOccurrences(of: "\"Lee, Sam\" <slee@pipeline.example>", with: "Dan Reyes")
        #expect(signals(header, own, only: [.thread, .bump]) == ["sig:forward-unthreaded", "sig:quotes-own-message"])
    }

    /// The attribution lines of Gmail and the other clients in the languages `wroteWords` reads, each naming the
    /// sender: his own message quoted.
    @Test(arguments: [
        "Op ma 2 feb 2026 om 09:15 schreef Dan <dan@slotwise.example>:",
        "wt., 24 cze 2025 o 09:12 Dan <dan@slotwise.example> napisał(a):",
        "24.06.2025 09:12, Dan <dan@slotwise.example> napisała:",
        "Den 3 mars 2026 kl. 10:00 skrev Dan <dan@slotwise.example>:",
        "Dan <dan@slotwise.example> kirjoitti 3.3.2026 klo 10.00:",
        "Il giorno lun 3 mar 2026 alle ore 10:00 Dan <dan@slotwise.example> ha scritto:",
        ">>>>> \"D\" == Dan <dan@slotwise.example> writes:",
    ])
    func attributionsInOtherLanguages(attribution: String) {
        let header = "From: Dan <dan@slotwise.example>\nTo: Maya <maya@brightfield.example>\nSubject: Re: quick question"
        // One quoted line: too little to be read as a quote by its position, so only the verb attributes it.
        let body = "Any thoughts?\n\n" + attribution + "\n> Hi Maya, we help teams like yours."
        #expect(signals(header, body, only: [.thread, .bump]) == ["sig:reply-unthreaded", "sig:quotes-own-message"])
    }

    /// A mail server's export writes From as a bare address and keeps the name in X-From; Outlook's quote names
    /// the author by name alone.
    @Test(arguments: [
        ("Dennis Kolb <dkolb@ridgeline.example>", "Dennis Kolb", ["sig:reply-unthreaded", "sig:quotes-own-message"]),
        ("\"Kolb, Dennis\"", "Kolb, Dennis", ["sig:reply-unthreaded", "sig:quotes-own-message"]),
        // Outlook's quote lists the name as the address book does, and Lotus Notes the other way round.
        ("Dennis Kolb", "Kolb, Dennis", ["sig:reply-unthreaded", "sig:quotes-own-message"]),
        ("Kolb, Dennis", "Dennis Kolb/HOU/RLS", ["sig:reply-unthreaded", "sig:quotes-own-message"]),
        ("Dennis J Kolb", "Kolb, Dennis J.", ["sig:reply-unthreaded", "sig:quotes-own-message"]),
        ("Dennis Kolb", "Sam Lee", ["sig:reply-unthreaded-quoting"]),
    ])
    func anExportsAuthorIsNamedInXFrom(exported: String, quoted: String, expected: [String]) {
        let header = "From: dkolb@ridgeline.example\nTo: maya@brightfield.example\nSubject: RE: contract DBAs\n"
            + "X-From: " + exported
        let body = "Any needs this quarter?\n\n -----Original Message-----\nFrom: \t" + quoted
            + "  \nSent:\tMonday, March 05, 2001 9:12 AM\nTo:\tMaya\nSubject:\tcontract DBAs\n\nMaya, I have three DBAs."
        #expect(signals(header, body, only: [.thread, .bump]) == expected)
    }

    @Test func referencesAloneAlsoThread() {
        let header = "From: a@b.example\nTo: c@d.example\nSubject: Fwd: notes\nReferences: <x@y.example>"
        #expect(signals(header, "FYI.", only: [.thread]) == ["sig:forward-threaded"])
    }

    @Test(arguments: ["Subject: Regarding your post", "Subject: Refund issued", "Subject: Fwdesk update", "Subject: R2D2",
                      "Subject: I have a question", "Subject: Resume attached", ""])
    func otherSubjectsSayNothing(subject: String) {
        #expect(signals("From: a@b.example\nTo: c@d.example\n" + subject, "Hello there", only: [.thread]).isEmpty)
    }
}

@Suite struct OptOutSignalTests {
    static let html = """
        MIME-Version: 1.0
        Content-Type: text/html; charset=utf-8
        """

    /// A newsletter the user subscribed to carries opt-out wording too, but as list mail.
    @Test func aNewsletterTheUserSubscribedToIsNotOneToOne() {
        let header = """
            From: Weekly <news@digest.example>
            To: maya@brightfield.example
            Subject: This week in data
            List-Id: <weekly.digest.example>
            List-Unsubscribe: <https://digest.example/u/1>
            """ + "\n" + Self.html
        let body = """
            <p>Stories <a href="https://links.digest.example/s/1">here</a>. <a href="https://digest.example/u">Unsubscribe</a></p>
            """
        #expect(signals(header, body, only: [.optout]) == ["sig:optout-list"])
    }

    @Test func manyRecipientsAreNotOneToOne() {
        let header = "From: a@b.example\nTo: c@d.example, e@f.example\nSubject: Hello"
        #expect(signals(header, "Team,\nThe party is on Friday.\n\nReply STOP to opt out.", only: [.optout])
            == ["sig:optout-list"])
    }

    @Test(arguments: [
        "If you'd rather not hear from me, just let me know.",
        "Reply STOP to opt out.",
        "Click here to unsubscribe.",
        "If you\u{2019}re not the right person, who would be?",
        "Not the right person? Let me know.",
        "Wenn Sie keine weiteren E-Mails wünschen, antworten Sie mit „Abmelden“.",
        "Pour ne plus recevoir nos messages, répondez STOP.",
        "Si no desea recibir más correos, responda con la palabra BAJA.",
        "Se non vuoi più ricevere queste email, disiscriviti qui.",
    ])
    func optOutWordingInPersonalMail(footer: String) {
        #expect(signals(oneToOne, "Hi Maya,\nCan we talk?\n\n" + footer, only: [.optout]) == ["sig:optout-personal"])
    }

    /// Found by an audit: sequence tools' footers (Outreach's, Woodpecker's, Mailshake's) had no opt-out wording.
    @Test(arguments: [
        "If you'd prefer not to hear from me, click here.",
        "If you don't want to receive any more messages from me, just click here.",
        "P.S. If you're not interested, just let me know and I won't follow up.",
    ])
    func sequenceToolsFooters(footer: String) {
        #expect(signals(oneToOne, "Hi Maya,\nCan we talk?\n\n" + footer, only: [.optout]) == ["sig:optout-personal"])
    }

    /// One person, a List-Unsubscribe and no list's id: what cold-email tools send since the big mailbox providers
    /// asked bulk senders for one-click unsubscribing. A machine's notice (Auto-Submitted) is no personal mail.
    @Test(arguments: [
        ("List-Unsubscribe: <https://t.example/u/1>", "sig:optout-unlisted"),
        ("List-Unsubscribe: <https://t.example/u/1>\nList-Id: <news.t.example>", "sig:optout-list"),
        ("List-Unsubscribe: <https://t.example/u/1>\nPrecedence: bulk", "sig:optout-list"),
        ("Auto-Submitted: auto-generated", "sig:optout-list"),
        ("Auto-Submitted: no", "sig:optout-personal"),
    ])
    func oneToOneMailWithListFields(fields: String, expected: String) {
        #expect(signals(oneToOne + "\n" + fields, "Hi Maya,\nCan we talk?\n\nReply STOP to opt out.",
                        only: [.optout]) == [expected])
    }

    @Test(arguments: [
        "Hi Maya,\nThe build is green again. Stop by later?",
        "Hallo Maya,\nich muss mich leider vom Workshop am Freitag abmelden. Bis bald!",
        "Hoi Maya,\nik moet me helaas afmelden voor de vergadering.",
        "Hi Maya,\nI'm not the right person to ask, but Joe will know.",
        "Hi Maya,\nI know you're not the right person for payroll, but could you forward this?",
        "Hi Maya,\nMaybe I'm not the right person? Ask Joe.",
        // Found in review: a footer's words in an ordinary reply.
        "Hi Maya,\nLegal signed off, so I won't follow up with them. I don't want to receive the draft twice.",
        // Found by a review: an Outlook-style reply, whose quoted message has no ">".
        "Hi Maya,\nYes, that is me.\n\nFrom: Maya Okafor <maya@brightfield.example>\nSent: Monday\n"
            + "If you're not the right person, please say so.",
        // Found by an audit: the wording only in the lines the reply quotes.
        "Hi Maya,\nYes, I am the right person.\n\n> If you're not the right person, please say so.\n"
            + "> Reply STOP to opt out.",
    ])
    func ordinaryPersonalMailHasNoOptOut(body: String) {
        #expect(signals(oneToOne, body, only: [.optout]).isEmpty)
    }
}

/// A bump quotes or forwards the sender's own unanswered message; a real reply quotes the other side first.
@Suite struct BumpSignalTests {
    @Test(arguments: [
        // Gmail's attribution, by address.
        "Any thoughts?\n\nOn Thu, Feb 19, 2026 at 9:12 AM Dan Reyes <dan@slotwise.example> wrote:\n> Hi Maya,\n> We help.",
        // Apple Mail's, quoted itself, by display name.
        "Bumping this.\n\n> On 19 Feb 2026, at 09:12, Dan Reyes wrote:\n>\n> Hi Maya, we help.",
        // Outlook's original-message block, by display name.
        "Any thoughts on the below?\n\n-----Original Message-----\nFrom: Dan Reyes\nSent: 21 January 2026\nSubject: hi",
        // A forward of one's own note.
        "In case it went to spam.\n\n---------- Forwarded message ---------\nFROM: Dan Reyes <DAN@slotwise.example>\n",
        // German.
        "Kurze Erinnerung.\n\nAm 19.02.2026 um 09:12 schrieb Dan Reyes <dan@slotwise.example>:\n> Hallo",
        // The name in curly quotes (found by a review).
        "Any thoughts?\n\nOn Mon, \u{201C}Dan Reyes\u{201D} wrote:\n> Hi Maya",
    ])
    func aFollowUpQuotingTheSendersOwnMessage(body: String) {
        let header = "From: Dan Reyes <dan@slotwise.example>\nTo: Maya <maya@brightfield.example>\nSubject: Re: hi"
        #expect(signals(header, body, only: [.bump]) == ["sig:quotes-own-message"])
    }

    @Test(arguments: [
        // A genuine reply: the first quoted message is the recipient's.
        "Sounds good.\n\nOn Mon, 2 Mar 2026, Maya Okafor <maya@brightfield.example> wrote:\n> Shall we meet?\n"
            + ">> On Sun, Dan Reyes <dan@slotwise.example> wrote:\n>> Coffee?",
        // A forward of somebody else's message.
        "FYI\n\n---------- Forwarded message ---------\nFrom: Priya <priya@harbor.example>\nSubject: rota",
        // No quote at all; a colon at the end of a line that names nobody.
        "Here is what I wrote:\nthe plan is fine. Dan Reyes",
        // A name too short to tell anything by.
        "On Monday, Dan wrote:\n> hi",
    ])
    func aReplyOrForwardOfOthersIsNot(body: String) {
        let sender = body.contains("Dan wrote") ? "From: Dan <x@y.example>" : "From: Dan Reyes <dan@slotwise.example>"
        #expect(signals(sender + "\nTo: Maya <maya@brightfield.example>\nSubject: Re: hi", body, only: [.bump]).isEmpty)
    }

    /// Found by an audit: the sender's name or address inside a longer one was taken for the sender's.
    @Test(arguments: [
        ("From: Chris <c.lee@slotwise.example>",
         "Thanks!\n\nOn Mon, Christine Baker <cb@harbor.example> wrote:\n> Come?"),
        ("From: Ann Lu <ann@harbor.example>", "Great.\n\nOn Mon, Jo <joann@harbor.example> wrote:\n> Lunch?"),
        ("From: Ann Lu <ann@harbor.example>", "Great.\n\nOn Mon, Jo <jo.ann@harbor.example> wrote:\n> Lunch?"),
    ])
    func aNameInsideAnotherIsNotTheSenders(from: String, body: String) {
        #expect(signals(from + "\nTo: Maya <maya@brightfield.example>\nSubject: Re: hi", body, only: [.bump]).isEmpty)
    }
}

@Suite struct SignalSwitchTests {
    @Test func aSignalLeftOutGivesNoTokens() {
        let header = "From: a@b.example\nTo: c@d.example\nSubject: Re: quick question"
        let body = "Hi ,\nHello {{first_name}}. Reply STOP to opt out."
        #expect(signals(header, body) == ["sig:greeting-blank", "sig:placeholder", "sig:reply-unthreaded",
                                          "sig:optout-personal"])
        #expect(signals(header, body, only: [.thread, .optout]) == ["sig:reply-unthreaded", "sig:optout-personal"])
        #expect(signals(header, body, only: []).isEmpty)
    }
}

@Suite struct PhraseSearchTests {
    @Test(arguments: [
        ("opt out", "opt out now", true), ("opt out", "please opt out", true), ("opt out", "oopt oout opt out", true),
        ("opt out", "opt ou", false), ("opt out", "", false), ("stop", "stostostop", true), ("stop", "stostos", false),
    ])
    func findsAPhraseAnywhere(needle: String, haystack: String, expected: Bool) {
        let found = Array(haystack.utf8).withUnsafeBytes { FormLetterEvidence.find(Array(needle.utf8), in: $0) }
        #expect(found == expected)
    }

    @Test func onlyTheEndOfALongTextIsSearchedForOptOut() {
        let early = "reply stop to opt out\n" + String(repeating: "filler text. ", count: 2_000)
        let late = String(repeating: "filler text. ", count: 2_000) + "\nreply stop to opt out"
        #expect(!Array(early.utf8).withUnsafeBufferPointer { FormLetterEvidence.containsOptOut($0, quoteStart: nil) })
        #expect(Array(late.utf8).withUnsafeBufferPointer { FormLetterEvidence.containsOptOut($0, quoteStart: nil) })
    }
}

/// A colleague's forward is judged by what the colleague wrote, not by the message passed on.
@Suite struct ColleaguesForwardTests {
    /// The words and pairs of the text (the tokens without a prefix).
    private func words(_ header: String, _ body: String) -> Set<String> {
        let text = header + "\n\n" + body
        return Set(Tokenizer().tokens(of: Message(bytes: Array(text.utf8))).filter { !$0.contains(":") })
    }

    private static let forwarded = "What do you think? Worth a call?\n\n---------- Forwarded message ---------\n"
        + "From: Rick Vance <rick@triagebot.example>\nSubject: Cut your backlog\n\nHi Sofie,\n"
        + "Congrats on the growth! Open to a 15-minute call next week?\n"

    @Test func aColleaguesForwardIsReadUpToTheForwardedMessage() {
        let header = "From: Sofie <sofie@lumenfield.example>\nTo: ines@lumenfield.example\nSubject: Fwd: Cut your backlog"
        let found = words(header, Self.forwarded)
        #expect(found.isSuperset(of: ["what", "think", "worth", "call"]))
        #expect(found.isDisjoint(with: ["congrats", "growth", "15-minute", "week", "rick", "sofie"]))
    }

    @Test(arguments: [
        // A stranger's forward: the vendor's "forward" of its own pitch is read whole.
        "From: Rick Vance <rick@triagebot.example>\nTo: ines@lumenfield.example\nSubject: Fwd: Cut your backlog",
        // A colleague's reply keeps what it quotes.
        "From: Sofie <sofie@lumenfield.example>\nTo: ines@lumenfield.example\nSubject: Re: Cut your backlog",
        // A freemail domain makes nobody a colleague.
        "From: Sofie <sofie@gmail.com>\nTo: ines@gmail.com\nSubject: Fwd: Cut your backlog",
        // Addressed to the sender alone, as a letter to many in Bcc is.
        "From: Sofie <sofie@lumenfield.example>\nTo: sofie@lumenfield.example\nSubject: Fwd: Cut your backlog",
    ])
    func otherwiseTheWholeTextIsRead(header: String) {
        #expect(words(header, Self.forwarded).isSuperset(of: ["what", "congrats", "growth", "15-minute"]))
    }

    /// Found by an audit: a colleague's "thoughts?" above a pitch attached as message/rfc822 scored 0.9999 on the
    /// pitch's words, links and opt-out footer, and its Subject (the pitch's, behind "Fwd:") scored 0.76 alone.
    @Test func aColleaguesForwardAttachedWholeIsReadAsTheColleaguesNote() {
        let header = "From: Sofie <sofie@lumenfield.example>\nTo: ines@lumenfield.example\nSubject: Fwd: Cut your backlog"
            + "\nMIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=b"
        let body = "--b\nContent-Type: text/plain\n\nWhat do you think? Worth a call?\n--b\n"
            + "Content-Type: message/rfc822\n\nFrom: Rick Vance <rick@triagebot.example>\nSubject: Cut your backlog\n\n"
            + "Hi Sofie,\nCongrats on the growth! Open to a 15-minute call next week?\n"
            + "If you'd prefer not to hear from me, click here: https://t.example/u\n--b--\n"
        let text = header + "\n\n" + body
        let tokens = Set(Tokenizer().tokens(of: Message(bytes: Array(text.utf8))))
        #expect(tokens.isSuperset(of: ["what", "think", "worth", "call", "subj:fwd", "sig:forward-unthreaded-quoting"]))
        #expect(tokens.isDisjoint(with: ["congrats", "growth", "15-minute", "subj:cut", "subj:backlog",
                                         "sig:optout-personal", "url:t.example"]))
        // The Subject behind a gateway's tag with a colon keeps the forward's prefix (found in review).
        let tagged = text.replacingOccurrences(of: "Subject: Fwd:", with: "Subject: EXT: Fwd:")
        let taggedTokens = Set(Tokenizer().tokens(of: Message(bytes: Array(tagged.utf8))))
        #expect(taggedTokens.isSuperset(of: ["subj:ext", "subj:fwd"]) && taggedTokens.isDisjoint(with: ["subj:cut"]))
        // A stranger's attached message is read whole, and its Subject too.
        let stranger = text.replacingOccurrences(of: "sofie@lumenfield.example", with: "sofie@elsewhere.example")
        let strangers = Set(Tokenizer().tokens(of: Message(bytes: Array(stranger.utf8))))
        #expect(strangers.isSuperset(of: ["congrats", "growth", "subj:cut", "subj:backlog", "sig:optout-personal"]))
    }

    @Test func aColleagueForwardingTheirOwnMessageIsReadWhole() {
        let header = "From: Rick Vance <rick@lumenfield.example>\nTo: ines@lumenfield.example\nSubject: Fwd: Cut your backlog"
        let body = Self.forwarded.replacingOccurrences(of: "rick@triagebot.example", with: "rick@lumenfield.example")
        #expect(words(header, body).isSuperset(of: ["what", "congrats", "growth"]))
    }
}
