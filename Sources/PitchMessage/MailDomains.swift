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
        "disroot.org", "riseup.net", "gmx.com", "gmx.us", "yahoo.com", "sbcglobal.net",
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
    /// A colleague of the mailbox's owner, when the delivering server wrote down who that is (`owner(in:)`);
    /// else of any recipient, since To and Cc cannot say which one the owner is. Found by an audit: a stranger who
    /// copies a coworker of their own (a salesman's account executive, a client's associate) was the owner's
    /// colleague, and a pitch so copied lost its pitch verdict to `rel:own-domain`.
    public static func isColleague(_ sender: String, in header: Header, recipients: [String]) -> Bool {
        isColleague(sender, of: owner(in: header).map { [$0] } ?? recipients)
    }

    /// The mailbox's own address as the delivering server wrote it: the topmost Delivered-To (Postfix's local,
    /// virtual and pipe, Dovecot's LDA), X-Original-To (Postfix) or Envelope-To (Exim) field. Each server puts
    /// its own above what came, so one a sender wrote lies below; nil when there is none.
    public static func owner(in header: Header) -> String? {
        guard let field = header.fields.first(where: { field in
            deliveryFieldNames.contains { header.field(field, isNamed: $0) }
        }) else { return nil }
        var defects: [Defect] = []
        return AddressList.parse(header.unfoldedValue(of: field), defects: &defects).first?.address
    }

    static let deliveryFieldNames = ["delivered-to", "x-original-to", "envelope-to"]

    public static func isColleague(_ sender: String, of recipients: [String]) -> Bool {
        let domain = DomainName.ascii(MailAddress(address: sender).domain)
        guard domain.contains("."), !FreemailDomains.contains(domain) else { return false }
        let own = sender.lowercased()
        guard recipients.contains(where: { $0.lowercased() != own }) else { return false }
        return recipients.contains { DomainName.ascii(MailAddress(address: $0).domain) == domain }
    }
}
