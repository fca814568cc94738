import PitchMessage

extension Tokenizer {
    /// Fields read by a rule of their own, or holding nothing but ids, dates and addresses that never recur; the
    /// words of every other field become "head:" tokens.
    private static let fieldsWithoutWords: Set<String> = [
        "from", "to", "cc", "bcc", "reply-to", "subject", "date", "received", "message-id", "in-reply-to",
        "references", "x-mailer", "user-agent", "content-type", "content-transfer-encoding", "mime-version",
        "content-disposition", "precedence", "return-path", "delivered-to", "x-original-to", "envelope-to",
        "content-id",
    ]


    /// Fields whose names (and words) become tokens: real headers stay far below it.
    private static let maxHeaderFields = 200
    /// Words of one field that become "head:" tokens.
    private static let maxWordsPerField = 50
    /// Tokens the fields' names and words may make in all, so that the body keeps most of a message's bound
    /// (`Bounds.maxTokens`): 100 fields of junk words filled it before the Subject and text were read.
    static let maxFieldTokens = 1_000
    /// Received fields read, from the top: the hops nearest the recipient, which a sender forges least.
    private static let maxReceivedFields = 12

    /// The fields the header tokens come from, found in one pass over the header.
    private struct Fields {
        var from: HeaderField?
        var replyTo: HeaderField?
        var recipients: [HeaderField] = []
        var hasTo = false
        var mailers: [HeaderField] = []
        var precedence: HeaderField?
        var messageID: HeaderField?
        var received: [HeaderField] = []
        var receivedCount = 0
    }

    func addHeaderTokens(_ header: Header, message: Message, to out: inout TokenCollector) {
        var defects: [Defect] = []
        var fields = Fields()
        let start = out.count
        for field in header.fields.prefix(Self.maxHeaderFields) {
            let name = header.name(of: field).lowercased()
            // Our own fields are no evidence about the sender: a verdict read back as tokens would teach the
            // classifier its own guesses (a tagged copy learned, then released as ham, kept "head:pitch" as pitch
            // evidence), and a forged "X-Pitch-Status: ham" would be ham evidence. The filters remove them from
            // what they write; here they are not read.
            if ownFields.contains(lowercasedName: name) { continue }
            // Nor are a mail store's (`MailStoreFields`): the same message read from the user's mbox and from the
            // filter's input is one message.
            if MailStoreFields.names.contains(name) { continue }
            out.add("hdr:", name.prefix(40))
            switch name {
            case "from": if fields.from == nil { fields.from = field }
            case "reply-to": if fields.replyTo == nil { fields.replyTo = field }
            case "to":
                fields.hasTo = true
                fields.recipients.append(field)
            case "cc": fields.recipients.append(field)
            case "x-mailer", "user-agent": fields.mailers.append(field)
            case "precedence": if fields.precedence == nil { fields.precedence = field }
            case "message-id": if fields.messageID == nil { fields.messageID = field }
            case "received":
                fields.receivedCount += 1
                if fields.received.count < Self.maxReceivedFields { fields.received.append(field) }
            default:
                let room = Self.maxFieldTokens - (out.count - start)
                if room > 0, !Self.fieldsWithoutWords.contains(name) {
                    addWords(of: header.text(of: field, defects: &defects), prefix: "head:", to: &out,
                             maxWords: min(Self.maxWordsPerField, room))
                }
            }
        }

        let from = fields.from.flatMap { Self.firstAddress(header, $0) }
        if let from {
            out.add("from:", from.address.lowercased())
            addDomain(from.domain, prefix: "fromdom:", hostPrefix: "fromhost:", to: &out)
            addWords(of: from.displayName, prefix: "fromname:", to: &out, maxWords: 20)
        } else {
            out.add("from:", "none")
        }

        // A reply address elsewhere than the sender's is how bulk senders route answers to a sales inbox.
        if let replyTo = fields.replyTo.flatMap({ Self.firstAddress(header, $0) }) {
            if let from, from.address.lowercased() == replyTo.address.lowercased() {
                out.add("replyto:", "same")
            } else if let from, let fromDomain = Self.registrable(from.domain),
                      fromDomain == Self.registrable(replyTo.domain) {
                out.add("replyto:", "samedomain")
            } else {
                out.add("replyto:", "other")
            }
            addDomain(replyTo.domain, prefix: "replytodom:", hostPrefix: nil, to: &out)
        }

        var recipients = 0
        for field in fields.recipients {
            recipients += AddressList.parse(header.unfoldedValue(of: field), defects: &defects).count
        }
        out.add("rcpt:", Bucket.label(recipients))
        if !fields.hasTo { out.add("to:", "none") }

        for field in fields.mailers {
            out.add("mailer:", Self.normalizedMailer(header.text(of: field, defects: &defects)))
        }
        if let field = fields.precedence {
            out.add("precedence:", header.text(of: field, defects: &defects).lowercased().prefix(20))
        }
        addMessageIDTokens(header, fields.messageID, to: &out)
        addReceivedTokens(header, fields.received, count: fields.receivedCount, to: &out)

        for defect in message.defects { out.add("defect:", defect.kind.rawValue) }
    }

    private static func firstAddress(_ header: Header, _ field: HeaderField) -> MailAddress? {
        var defects: [Defect] = []
        return AddressList.parse(header.unfoldedValue(of: field), defects: &defects).first { !$0.address.isEmpty }
    }

    /// The registrable domain and, when it says more, the full host.
    private func addDomain(
        _ domain: String, prefix: StaticString, hostPrefix: StaticString?, to out: inout TokenCollector
    ) {
        guard let host = Domains.normalizedHost(domain.utf8) else {
            out.add(prefix, "invalid")
            return
        }
        let registrable = Domains.registrable(host)
        out.add(prefix, bytes: registrable)
        if let hostPrefix, registrable.count != host.count { out.add(hostPrefix, bytes: host) }
    }

    private static func registrable(_ domain: String) -> [UInt8]? {
        Domains.normalizedHost(domain.utf8).map { Array(Domains.registrable($0)) }
    }

    /// The domain that generated the Message-ID: the sending software's, which a spoofed From does not change.
    private func addMessageIDTokens(_ header: Header, _ field: HeaderField?, to out: inout TokenCollector) {
        guard let field else {
            out.add("msgid:", "none")
            return
        }
        let value = header.unfoldedValue(of: field)
        guard let at = value.lastIndex(of: 0x40) else {
            out.add("msgid:", "noat")
            return
        }
        var end = at + 1
        while end < value.endIndex, value[end] != 0x3E, value[end] > 0x20 { end += 1 }
        if let host = Domains.normalizedHost(value[(at + 1)..<end]) {
            out.add("msgid:", bytes: Domains.registrable(host))
        } else {
            out.add("msgid:", "badhost")
        }
    }

    /// "Microsoft Outlook Express 6.00.2600.0000" → "microsoft outlook express": the software, not its build, so
    /// that one token covers every version a sending tool has shipped. Parenthesised comments go, and so does every
    /// word with a digit in it; at most four words are kept.
    static func normalizedMailer(_ value: String) -> String {
        var words: [UInt8] = []
        var wordCount = 0
        var word: [UInt8] = []
        var hasDigit = false
        var depth = 0
        func finish() {
            if !word.isEmpty, !hasDigit, wordCount < 4 {
                if wordCount > 0 { words.append(0x20) }
                words += word
                wordCount += 1
            }
            word.removeAll(keepingCapacity: true)
            hasDigit = false
        }
        for byte in value.utf8.prefix(512) {
            switch byte {
            case 0x28:
                finish()
                depth += 1
            case 0x29:
                finish()
                depth = max(depth - 1, 0)
            case _ where depth > 0:
                continue
            case _ where (byte | 0x20) &- 0x61 < 26 || byte >= 0x80 || (byte == 0x2D && !word.isEmpty):
                word.append(byte &- 0x41 < 26 ? byte | 0x20 : byte)
            case _ where byte &- 0x30 < 10:
                hasDigit = true
                word.append(byte)
            default:
                finish()
            }
        }
        finish()
        return words.isEmpty ? "none" : String(decoding: words, as: UTF8.self)
    }

    /// The Received chain: how many hops, the hosts and /24 networks named in each, and the protocols ("with
    /// esmtpa"). Hosts give the sender's infrastructure; the queue id ("id …"), the recipient ("for …") and the
    /// date (after ";") never recur and are skipped.
    private func addReceivedTokens(
        _ header: Header, _ fields: [HeaderField], count: Int, to out: inout TokenCollector
    ) {
        out.add("rcvds:", Bucket.label(count))
        for field in fields {
            let value = header.unfoldedValue(of: field)
            var previous = value.startIndex..<value.startIndex
            var index = value.startIndex
            while index < value.endIndex, value[index] != 0x3B {
                guard Self.isHostByte(value[index]) else {
                    index += 1
                    continue
                }
                let start = index
                while index < value.endIndex, Self.isHostByte(value[index]) { index += 1 }
                let word = value[start..<index]
                defer { previous = start..<index }
                let before = value[previous]
                if Self.equalsLowercased(before, "id") || Self.equalsLowercased(before, "for") { continue }
                if Self.equalsLowercased(before, "with") {
                    if word.count <= 12 {
                        out.add("rcvdwith:", bytes: word.lazy.map { $0 &- 0x41 < 26 ? $0 | 0x20 : $0 })
                    }
                    continue
                }
                guard let host = Domains.normalizedHost(word) else { continue }
                if Domains.isIPv4(host) {
                    out.add("rcvdip:", bytes: Domains.network(ofIPv4: host))
                } else {
                    out.add("rcvd:", bytes: Domains.registrable(host))
                }
            }
        }
    }

    /// ASCII case-insensitive comparison with a lower-case literal.
    private static func equalsLowercased(_ bytes: ArraySlice<UInt8>, _ literal: StaticString) -> Bool {
        guard bytes.count == literal.utf8CodeUnitCount else { return false }
        var i = 0
        for byte in bytes {
            guard (byte &- 0x41 < 26 ? byte | 0x20 : byte) == literal.utf8Start[i] else { return false }
            i += 1
        }
        return true
    }

    @inline(__always)
    private static func isHostByte(_ byte: UInt8) -> Bool {
        WordScanner.isASCIIWordByte(byte) || byte == 0x2E || byte == 0x2D || byte == 0x5F
    }
}
