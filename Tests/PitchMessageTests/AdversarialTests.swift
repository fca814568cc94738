import Foundation
import Testing
@testable import PitchMessage

/// Hostile messages: each must give a clear, bounded outcome. How long they take is measured by
/// `pitch-bench adversarial`, not here (timings belong in benchmarks).
@Suite struct AdversarialTests {
    private func kinds(_ defects: [Defect]) -> Set<Defect.Kind> { Set(defects.map(\.kind)) }

    @Test func tenThousandDeepNestingStopsAtMaxDepth() {
        let m = Message(bytes: AdversarialMessages.deepNesting(levels: 10_000))
        #expect(m.parts.count == Limits.default.maxDepth + 1)
        #expect(m.parts.last?.depth == Limits.default.maxDepth)
        #expect(m.parts.last?.structure == .leaf)
        #expect(kinds(m.defects).contains(.nestingTooDeep))
        #expect(m.decodeText().isEmpty)
    }

    /// The slowest test of the suite (tens of seconds in a debug build), so it runs on a thread of its own rather
    /// than hold one of the cooperative pool's threads (one per core) that the server tests need.
    @Test func hundredMegabyteLineIsAnalysedOnlyUpToTheLimit() async {
        struct Outcome: Sendable {
            var messageDefects: Set<Defect.Kind>, bodyEnd: Int, texts: Int, textBytes: Int,
                textDefects: Set<Defect.Kind>, editedCount: Int, inputCount: Int
        }
        let outcome = await withCheckedContinuation { (continuation: CheckedContinuation<Outcome, Never>) in
            Thread.detachNewThread {
                let bytes = AdversarialMessages.hugeLine(bytes: 100 << 20)
                let m = Message(bytes: bytes)
                let text = m.decodeText()
                // Nothing is lost: the editor still sees, and keeps, every byte.
                let edited = HeaderEditor.edit(bytes, removing: ["X-Pitch-*"], inserting: [])
                continuation.resume(returning: Outcome(
                    messageDefects: Set(m.defects.map(\.kind)), bodyEnd: m.root.bodyRange.upperBound,
                    texts: text.count, textBytes: text.first?.text.utf8.count ?? 0,
                    textDefects: Set(text.first?.defects.map(\.kind) ?? []), editedCount: edited.count,
                    inputCount: bytes.count))
            }
        }
        #expect(outcome.messageDefects == [.truncatedForAnalysis])
        #expect(outcome.bodyEnd == Limits.default.maxAnalysisBytes)
        #expect(outcome.texts == 1)
        #expect(outcome.textBytes == Limits.default.maxDecodedTextBytes)
        #expect(outcome.textDefects == [.textTruncated])
        #expect(outcome.editedCount == outcome.inputCount)
    }

    @Test func fiftyThousandFieldsAreCountedNotAllKept() {
        let bytes = AdversarialMessages.manyFields(50_000)
        let m = Message(bytes: bytes)
        #expect(m.header.count == Limits.default.maxHeaderFields)
        #expect(kinds(m.defects) == [.tooManyHeaderFields])
        #expect(String(decoding: m.raw[m.root.bodyRange], as: UTF8.self) == "body\n")
        #expect(HeaderEditor.edit(bytes, removing: ["X-Field-*"], inserting: []) == Array("\nbody\n".utf8))
    }

    @Test func nulBytesEverywhere() {
        let m = Message(bytes: AdversarialMessages.nulEverywhere())
        #expect(kinds(m.defects) == [.nulInHeader, .missingHeaderBodySeparator])
        #expect(m.header.count == 2)
        #expect(m.header["subject"] == "hi there")
        let text = m.decodeText()
        #expect(text.map(\.text) == ["X-\u{0}Bad: 1\na\u{0}b\u{0}c\n"])
    }

    @Test func truncatedBase64AndQuotedPrintable() {
        let m = Message(bytes: AdversarialMessages.truncatedEncodings())
        let text = m.decodeText().map(\.text)
        #expect(text == ["Hello, wo", "soft break then cut"])
        let found = kinds(m.decodeText().flatMap(\.defects))
        #expect(found.contains(.invalidBase64Padding))
    }

    @Test func boundaryThatNeverCloses() {
        let m = Message(bytes: AdversarialMessages.unclosedBoundary(parts: 5_000))
        #expect(m.parts.count == Limits.default.maxParts)
        #expect(kinds(m.defects) == [.missingClosingBoundary, .tooManyParts])
    }

    @Test func oneMillionBoundaryLookalikesCostOnePass() {
        let m = Message(bytes: AdversarialMessages.boundaryLookalikes(lines: 1_000_000))
        #expect(m.parts.count == 2)
        #expect(m.decodeText().first?.text.hasPrefix("--bx") == true)
    }
}

/// Inputs the fuzzer once crashed on (Fixtures/fuzz): each must now parse and round-trip through the editor.
@Suite struct FuzzRegressionTests {
    static let names = Fixtures.names(in: "fuzz", withExtension: "bin")

    /// A folder moved or renamed would otherwise leave `roundTrips` with no case to run, and passing.
    @Test func theFixturesAreThere() {
        #expect(Self.names.contains("no-line-start"))
    }

    @Test(arguments: names)
    func roundTrips(_ name: String) throws {
        let bytes = try Fixtures.bytes("fuzz/\(name).bin")
        _ = Message(bytes: bytes).decodeText()
        let stripped = HeaderEditor.edit(bytes, removing: ["X-Pitch-*"], inserting: [])
        let tagged = HeaderEditor.edit(stripped, removing: ["X-Pitch-*"],
                                       inserting: [NewField(name: "X-Pitch-Status", value: "fuzz")])
        #expect(HeaderEditor.edit(tagged, removing: ["X-Pitch-*"], inserting: []) == stripped)
    }
}
