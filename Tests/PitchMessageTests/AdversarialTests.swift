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

    @Test func hundredMegabyteLineIsAnalysedOnlyUpToTheLimit() {
        let bytes = AdversarialMessages.hugeLine(bytes: 100 << 20)
        let m = Message(bytes: bytes)
        #expect(kinds(m.defects) == [.truncatedForAnalysis])
        #expect(m.root.bodyRange.upperBound == Limits.default.maxAnalysisBytes)
        let text = m.decodeText()
        #expect(text.count == 1)
        #expect(text[0].text.utf8.count == Limits.default.maxDecodedTextBytes)
        #expect(kinds(text[0].defects) == [.textTruncated])
        // Nothing is lost: the editor still sees, and keeps, every byte.
        let edited = HeaderEditor.edit(bytes, removing: ["X-Pitch-*"], inserting: [])
        #expect(edited.count == bytes.count)
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
