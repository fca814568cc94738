/// The legal footers companies append to every message ("This e-mail is confidential and intended solely for the
/// addressee. If you have received it in error, please notify the sender and delete it…"): found so that their
/// words are left out and the footer counts once, as `footer:disclaimer`.
///
/// Read as words, a footer was a dozen strong votes about whichever class happened to carry footers in the
/// training. In the samples it was first the ham (a vendor's pitch with one scored 0.67 half-trained), and after
/// a corpus round whose corporate pitches carried them, the pitches: SpamAssassin ham with a footer went from 0.006
/// to 0.81 ("intended recipient", "prohibited", "unauthorized" at 17 pitches to 0 ham). Whether a company appends a
/// footer says how its mail is sent, not what it says, so the token is local (`LocalTokens`): only the user's own
/// training weighs it.
///
/// A footer is a paragraph (lines between blank lines, quoted or not) of at most `maxParagraphBytes` with at least
/// `minimumMarkers` different markers of the genre, in English, German, Dutch, French or Spanish. "Please keep this
/// confidential" is one marker, and stays words.
enum Disclaimers {
    static let minimumMarkers = 3
    /// Longer paragraphs are letters that happen to discuss these things.
    static let maxParagraphBytes = 3_000
    /// Paragraphs that start further into a text are not looked at: a legal footer closes a letter, which is
    /// shorter, and a text built of paragraphs that each hold a marker costs a pass over every one of them.
    static let maxScannedBytes = 256 << 10

    /// The markers, found in one pass over a paragraph (the non-ASCII letters here are lowercase already).
    static let markers = PhraseSet([
        "confidential", "privileged", "intended recipient", "intended solely", "intended only", "addressee",
        "in error", "notify the sender", "notify us", "delete", "destroy", "prohibited", "unauthori", "disclos",
        "dissemina",
        "vertraulich", "irrtümlich", "empfänger", "unbefugt", "löschen",
        "vertrouwelijk", "geadresseerde", "abusievelijk", "verwijder",
        "confidentiel", "destinataire", "par erreur", "interdit", "supprimer",
        "confidencial", "destinatario", "por error", "prohibid", "eliminar",
    ])

    /// The byte ranges of `text`'s footers, in order.
    static func ranges(in text: UnsafeBufferPointer<UInt8>) -> [Range<Int>] {
        var found: [Range<Int>] = []
        var paragraphStart: Int?
        var lineStart = 0
        // Past the bound, only to the end of a paragraph that began before it and may still be a footer.
        while lineStart < text.count,
              lineStart < maxScannedBytes || paragraphStart.map({ lineStart - $0 <= maxParagraphBytes }) ?? false {
            let line = TextLines.line(in: text, from: lineStart, end: text.count)
            if line.content.isEmpty {  // blank, or quote marks only
                if let start = paragraphStart, isFooter(text, start..<lineStart) { found.append(start..<lineStart) }
                paragraphStart = nil
            } else if paragraphStart == nil {
                paragraphStart = lineStart
            }
            lineStart = line.end + 1
        }
        let end = min(lineStart, text.count)
        if let start = paragraphStart, isFooter(text, start..<end) { found.append(start..<end) }
        return found
    }

    private static func isFooter(_ text: UnsafeBufferPointer<UInt8>, _ paragraph: Range<Int>) -> Bool {
        paragraph.count <= maxParagraphBytes
            && markers.distinctCount(in: UnsafeBufferPointer(rebasing: text[paragraph]), upTo: minimumMarkers)
                >= minimumMarkers
    }
}
