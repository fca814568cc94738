/// Text from a message, for a terminal or a log line: token texts, subjects and addresses come from the sender,
/// and an escape sequence in one would reach the user's terminal (blinking text, a changed title, worse), a
/// newline would forge a log line, and a right-to-left override would show a line other than the one written.
/// Control characters (C0, DEL, C1) and the bidirectional controls are written as \u{1B}; everything printable,
/// in any script, stays as it is.
public enum TerminalText {
    public static func safe(_ text: String) -> String {
        guard text.unicodeScalars.contains(where: isControl) else { return text }
        var out = ""
        for scalar in text.unicodeScalars {
            if isControl(scalar) {
                out += "\\u{" + String(scalar.value, radix: 16, uppercase: true) + "}"
            } else {
                out.unicodeScalars.append(scalar)
            }
        }
        return out
    }

    static func isControl(_ scalar: Unicode.Scalar) -> Bool {
        switch scalar.value {
        case 0..<0x20, 0x7F...0x9F: true
        // LRM, RLM, ALM; the embeddings and overrides; the isolates.
        case 0x200E, 0x200F, 0x061C, 0x202A...0x202E, 0x2066...0x2069: true
        default: false
        }
    }
}
