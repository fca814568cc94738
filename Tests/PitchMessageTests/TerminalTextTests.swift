import PitchMessage
import Testing

@Suite struct TerminalTextTests {
    /// Token texts and subjects come from senders: an escape sequence must not reach the user's terminal, a
    /// newline must not forge a log line, and a right-to-left override must not show another text (found by an
    /// audit: `quarantine list` passed U+202E through).
    @Test(arguments: [
        ("plain", "plain"),
        ("caf\u{E9} \u{65E5}\u{672C} \u{5E9}\u{5DC}\u{5D5}\u{5DD}", "caf\u{E9} \u{65E5}\u{672C} \u{5E9}\u{5DC}\u{5D5}\u{5DD}"),
        ("a\u{1B}[5mb", "a\\u{1B}[5mb"),
        ("bell\u{07} del\u{7F} c1\u{9B}", "bell\\u{7} del\\u{7F} c1\\u{9B}"),
        ("one\nfile=forged", "one\\u{A}file=forged"),
        ("invoice\u{202E}fdp.exe", "invoice\\u{202E}fdp.exe"),
        ("\u{2066}isolated\u{2069}", "\\u{2066}isolated\\u{2069}"),
    ])
    func controlCharactersAreWrittenOut(text: String, shown: String) {
        #expect(TerminalText.safe(text) == shown)
    }
}
