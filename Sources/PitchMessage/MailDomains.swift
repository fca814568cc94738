/// Mail providers where anybody can have an address: knowing one gmail.com address makes no other one known.
public enum FreemailDomains {
    public static func contains(_ domain: String) -> Bool {
        let lower = domain.lowercased()
        if names.contains(lower) { return true }
        // yahoo.co.uk, hotmail.fr, gmx.de, yandex.ru: the provider's name under a country's suffix (one or two short
        // labels), or under .example in test and sample mail. Not gmail.com.evil.example, a domain of its own.
        guard let dot = lower.firstIndex(of: ".") else { return false }
        let suffix = lower[lower.index(after: dot)...].split(separator: ".", omittingEmptySubsequences: false)
        let isCountrySuffix = suffix == ["example"]
            || (1...2).contains(suffix.count) && suffix.allSatisfy { (2...3).contains($0.count) }
        return isCountrySuffix && regional.contains(String(lower[..<dot]))
    }

    /// The big providers, and the ones the national providers and ISPs of Europe, the Americas and Asia hand out
    /// (found missing by an audit: free.fr, btinternet.com, wp.pl, seznam.cz, inbox.ru, hanmail.net, sina.com,
    /// duck.com made every stranger there a known domain).
    static let names: Set<String> = [
        "gmail.com", "googlemail.com", "outlook.com", "hotmail.com", "live.com", "msn.com", "aol.com",
        "icloud.com", "me.com", "mac.com", "proton.me", "protonmail.com", "pm.me", "fastmail.com", "zoho.com",
        "mail.com", "gmx.net", "web.de", "t-online.de", "mail.ru", "qq.com", "163.com", "126.com", "naver.com",
        "hey.com", "tutanota.com", "ymail.com", "rocketmail.com", "comcast.net", "verizon.net", "att.net",
        "aim.com", "zohomail.com", "zohomail.eu", "tuta.com", "tutamail.com", "keemail.me", "mailfence.com",
        "disroot.org", "riseup.net",
        // privacy and independent providers
        "duck.com", "tuta.io", "tutanota.de", "posteo.de", "posteo.net", "mailbox.org", "hushmail.com", "runbox.com",
        "mail.de", "email.de", "freenet.de", "arcor.de", "inbox.com", "lycos.com",
        // France, Belgium, Switzerland, the Netherlands, Italy, Spain, Portugal
        "free.fr", "laposte.net", "sfr.fr", "neuf.fr", "bbox.fr", "numericable.fr", "aliceadsl.fr",
        "telenet.be", "skynet.be", "proximus.be", "bluewin.ch", "sunrise.ch", "ziggo.nl", "kpnmail.nl", "planet.nl",
        "xs4all.nl", "home.nl", "alice.it", "tin.it", "tim.it", "telefonica.net",
        "terra.es", "ya.com", "sapo.pt", "netcabo.pt",
        // the United Kingdom and Ireland
        "btinternet.com", "btopenworld.com", "sky.com", "virginmedia.com", "blueyonder.co.uk", "ntlworld.com",
        "talktalk.net", "eircom.net",
        // Central and Eastern Europe, the Nordics
        "wp.pl", "o2.pl", "onet.pl", "op.pl", "interia.pl", "seznam.cz", "centrum.cz", "email.cz", "post.cz",
        "azet.sk", "freemail.hu", "citromail.hu", "abv.bg", "inbox.lv", "inbox.lt", "ukr.net", "i.ua", "meta.ua",
        "inbox.ru", "list.ru", "bk.ru", "internet.ru", "rambler.ru", "ya.ru", "telia.com", "online.no",
        // Asia, Oceania, the Americas
        "hanmail.net", "daum.net", "nate.com", "sina.com", "sina.cn", "sohu.com", "yeah.net", "139.com",
        "foxmail.com", "aliyun.com", "rediffmail.com", "bigpond.com", "bigpond.net.au", "optusnet.com.au",
        "xtra.co.nz", "shaw.ca", "rogers.com", "sympatico.ca", "videotron.ca", "cox.net", "charter.net",
        "earthlink.net", "sbcglobal.net", "bellsouth.net", "frontier.com", "windstream.net", "juno.com",
        "netzero.net", "optonline.net", "uol.com.br", "bol.com.br", "terra.com.br", "ig.com.br", "prodigy.net.mx",
    ]

    /// Names taken under any country's suffix (so wanadoo.fr, tiscali.co.uk and gmx.com are not listed above).
    static let regional: Set<String> = [
        "yahoo", "hotmail", "outlook", "live", "gmx", "yandex", "libero", "orange", "gmail", "googlemail", "fastmail",
        "icloud", "aol", "protonmail", "zoho", "wanadoo", "tiscali", "virgilio",
    ]
}

/// Whether a sender writes from one of the recipients' own domains, and not a freemail provider's: a colleague,
/// known or not. Not for mail addressed to its sender alone: that is how a letter to many in Bcc looks. (The
/// sender among other recipients is the owner's own copy, or a colleague's.)
public enum Colleagues {
    /// A colleague of the mailbox's owner, when the delivering servers wrote down who that is (`owners(in:)`);
    /// else of any recipient, since To and Cc cannot say which one the owner is. Found by an audit: a stranger who
    /// copies a coworker of their own (a salesman's account executive, a client's associate) was the owner's
    /// colleague, and a pitch so copied lost its pitch verdict to `rel:own-domain`.
    public static func isColleague(_ sender: String, in header: Header, recipients: [String]) -> Bool {
        let owners = owners(in: header)
        return isColleague(sender, of: owners.isEmpty ? recipients : owners)
    }

    /// The mailbox's own addresses as the delivering servers wrote them: every Delivered-To (Postfix's local,
    /// virtual and pipe, Dovecot's LDA), X-Original-To (Postfix) and Envelope-To (Exim) field. Every one, not the
    /// topmost alone: work mail forwarded to a home server keeps the work address below the home one (found in
    /// review: the colleague lost `rel:own-domain` there). Addresses at a host name without a dot (fetchmail's
    /// `user@localhost`) say nothing of the owner's domain and are left out. A sender may write such a field too,
    /// and gain what a Cc to a coworker of theirs gives anyway.
    public static func owners(in header: Header) -> [String] {
        var defects: [Defect] = []
        return header.fields.filter { field in deliveryFieldNames.contains { header.field(field, isNamed: $0) } }
            .flatMap { AddressList.parse(header.unfoldedValue(of: $0), defects: &defects).map(\.address) }
            .filter { MailAddress(address: $0).domain.contains(".") }
    }

    static let deliveryFieldNames = ["delivered-to", "x-original-to", "envelope-to"]

    /// The same organisation's domains: equal, or one a subdomain of the other (a Postfix host whose `myorigin`
    /// is its own name delivers to `me@mail.corp.example`, and colleagues write from `corp.example`).
    static func sameOrganisation(_ one: String, _ other: String) -> Bool {
        one == other || one.hasSuffix("." + other) || other.hasSuffix("." + one)
    }

    public static func isColleague(_ sender: String, of recipients: [String]) -> Bool {
        let domain = DomainName.ascii(MailAddress(address: sender).domain)
        guard domain.contains("."), !FreemailDomains.contains(domain) else { return false }
        let own = sender.lowercased()
        guard recipients.contains(where: { $0.lowercased() != own }) else { return false }
        return recipients.contains { recipient in
            let theirs = DomainName.ascii(MailAddress(address: recipient).domain)
            return theirs.contains(".") && sameOrganisation(theirs, domain)
        }
    }
}
