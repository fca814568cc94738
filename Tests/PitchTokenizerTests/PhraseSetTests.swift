@testable import PitchTokenizer
import Testing

@Suite struct PhraseSetTests {
    /// "no longer", "not the right" and "no desea" share their first two bytes; "répondez" is not ASCII.
    static let phrases = PhraseSet(["no longer", "not the right", "no desea", "opt out", "répondez stop", "xy"])

    @Test(arguments: [
        ("please NO LONGER write", true),
        ("You're Not The Right person?", true),
        ("si no desea recibir", true),
        ("opt out", true),
        ("xy", true),
        ("RÉPONDEZ STOP", false),   // only ASCII letters are compared without case
        ("Répondez STOP", true),
        ("répondez STOP", true),
        ("no, longer", false),
        ("not the righ", false),   // a phrase cut off by the end of the text
        ("nothing to see", false),
        ("x", false),
        ("", false),
    ])
    func findsAPhraseAnywhereWithoutCase(text: String, found: Bool) {
        let bytes = Array(text.utf8)
        #expect(bytes.withUnsafeBufferPointer { Self.phrases.occurs(in: $0) } == found)
    }
}
