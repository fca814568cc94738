import Foundation
import Testing
@testable import PitchMessage

/// Every message of the SpamAssassin public corpus (../shared/corpora/spamassassin): real mail from real
/// programs, with all their quirks. Skipped when the corpus is not beside the checkout.
@Suite(.enabled(if: Fixtures.corpusDirectory != nil, "the SpamAssassin corpus is not in ../shared"))
struct CorpusTests {
    @Test func everyMessageParsesAndRoundTripsThroughTheEditor() throws {
        let files = Fixtures.corpusFiles()
        var checked = 0
        var withText = 0
        for file in files {
            let bytes = Array(try Data(contentsOf: file))
            let message = Message(bytes: bytes)
            #expect(!message.parts.isEmpty)
            if message.decodeText().contains(where: { !$0.text.isEmpty }) { withText += 1 }

            let stripped = HeaderEditor.edit(bytes, removing: ["X-Pitch-*"], inserting: [])
            let tagged = HeaderEditor.edit(stripped, removing: ["X-Pitch-*"],
                                           inserting: [NewField(name: "X-Pitch-Status", value: "test")])
            let restored = HeaderEditor.edit(tagged, removing: ["X-Pitch-*"], inserting: [])
            #expect(restored == bytes, "\(file.lastPathComponent) does not round-trip")
            #expect(Message(bytes: tagged).header["X-Pitch-Status"] == "test", "\(file.lastPathComponent)")
            checked += 1
        }
        print("CorpusTests: \(checked) messages parsed and round-tripped, \(withText) with text")
        #expect(checked == files.count)
        #expect(checked >= 6_000)
        // Nearly every message has readable text (17 are image-only HTML spam); a parser that lost bodies
        // would fail here.
        #expect(withText >= checked - 20)
    }
}
