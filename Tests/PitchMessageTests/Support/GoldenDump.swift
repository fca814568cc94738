@testable import PitchMessage

/// Renders a parsed message in the golden format described in Fixtures/golden/README.md.
enum GoldenDump {
    static func render(_ message: Message) -> String {
        var lines: [String] = []
        var defects = message.defects
        let header = message.header
        if message.envelope != nil { lines.append("envelope: yes") }
        lines.append("fields: \(header.count)")
        if let subject = header.first(named: "subject") {
            lines.append("subject: " + header.text(of: subject, defects: &defects))
        }
        for name in ["from", "to", "cc", "reply-to", "sender"] {
            let addresses = header.addresses(name, defects: &defects)
            guard !addresses.isEmpty else { continue }
            lines.append("\(name): " + addresses.map(render).joined(separator: ", "))
        }
        lines.append("parts:")
        for part in message.parts {
            lines.append(String(repeating: "  ", count: part.depth + 1) + render(part))
        }
        for text in message.decodeText() {
            defects += text.defects
            lines.append("text \(text.partIndex) \(text.mimeType):")
            var body = Substring(text.text)
            while body.last == "\n" { body.removeLast() }
            if !body.isEmpty {
                lines += body.split(separator: "\n", omittingEmptySubsequences: false).map { "| " + $0 }
            }
            lines += text.links.map { "link: " + $0 }
            lines += text.images.map(render)
        }
        let kinds = Set(defects.map(\.kind.rawValue)).sorted()
        lines.append("defects: " + (kinds.isEmpty ? "none" : kinds.joined(separator: " ")))
        return lines.joined(separator: "\n") + "\n"
    }

    static func render(_ address: MailAddress) -> String {
        address.displayName.isEmpty ? "<\(address.address)>" : "\(address.displayName) <\(address.address)>"
    }

    static func render(_ part: Part) -> String {
        var line = part.contentType.mimeType
        if let charset = part.contentType.parameters["charset"] { line += " charset=" + charset.lowercased() }
        if part.declaresTransferEncoding { line += " cte=" + part.transferEncoding.label }
        if let disposition = part.disposition?.disposition, !disposition.isEmpty {
            line += " disposition=" + disposition
        }
        if let filename = part.filename { line += " filename=" + filename }
        return line
    }

    static func render(_ image: ImageReference) -> String {
        var line = "image: \(image.source) \(image.width.map(String.init) ?? "?")x\(image.height.map(String.init) ?? "?")"
        if image.isHidden { line += " hidden" }
        if !image.altText.isEmpty { line += " alt=\"\(image.altText)\"" }
        return line
    }
}
