import Testing
@testable import PitchClassifier

@Suite struct ClassifierTests {
    let parameters = ClassifierParameters(strength: 1, prior: 0.5, minDeviation: 0.1, pitchCutoff: 0.9, hamCutoff: 0.1)

    /// Q(χ², ν) for even ν against values from the closed form e^(−m)·Σ mⁱ/i! computed independently.
    @Test(arguments: [
        (0.0, 2, 1.0), (2.0, 2, 0.36787944117144233), (10.0, 4, 0.040427681994512805),
        (1.0, 6, 0.9856123220330293), (100.0, 10, 5.449701982920529e-17),
    ])
    func chiSquareUpperTail(chiSquare: Double, degrees: Int, expected: Double) {
        let q = Classifier.chiSquareQ(chiSquare, degrees: degrees)
        #expect(abs(q - expected) <= max(1e-12, expected * 1e-6))
    }

    @Test func robinsonProbability() {
        let classifier = Classifier(parameters: parameters)
        let totals = ClassTotals(pitch: 10, ham: 20)
        // Seen in 5 of 10 pitches and 0 of 20 ham: p = 1, n = 5, f = (1·0.5 + 5·1) / (1 + 5).
        #expect(classifier.probability(of: TokenCounts(pitch: 5, ham: 0), totals: totals) == 5.5 / 6)
        // Equal rates (1/10 and 2/20) give p = 0.5 whatever the counts.
        #expect(classifier.probability(of: TokenCounts(pitch: 1, ham: 2), totals: totals) == 0.5)
        // Never seen: the prior.
        #expect(classifier.probability(of: .zero, totals: totals) == 0.5)
    }

    @Test func verdictsAndEvidence() {
        let classifier = Classifier(parameters: parameters)
        let totals = ClassTotals(pitch: 10, ham: 10)
        let pitchy = classifier.classify([
            ("the", TokenCounts(pitch: 10, ham: 10)), ("quick", TokenCounts(pitch: 7, ham: 0)),
            ("bumping", TokenCounts(pitch: 9, ham: 0)), ("connecting", TokenCounts(pitch: 8, ham: 0)),
        ], totals: totals)
        #expect(pitchy.verdict == .pitch)
        #expect(abs(pitchy.score - 0.995528) < 1e-6)  // computed independently
        #expect(pitchy.strongestEvidence.map(\.token) == ["bumping", "connecting", "quick"])  // "the" is at 0.5

        let mixed = classifier.classify([
            ("bumping", TokenCounts(pitch: 9, ham: 0)), ("connecting", TokenCounts(pitch: 8, ham: 0)),
            ("lunch", TokenCounts(pitch: 0, ham: 1)),
        ], totals: totals)
        #expect(mixed.strongestEvidence.map(\.token) == ["bumping", "connecting", "lunch"])
        #expect(mixed.score < pitchy.score)

        let hammy = classifier.classify([("lunch", TokenCounts(pitch: 0, ham: 9)), ("friday", TokenCounts(pitch: 0, ham: 7))],
                                        totals: totals)
        #expect(hammy.verdict == .ham)
        #expect(hammy.score < 0.1)

        let nothing = classifier.classify([("the", TokenCounts(pitch: 3, ham: 3))], totals: totals)
        #expect(nothing.verdict == .unsure)
        #expect(nothing.score == 0.5)
        #expect(nothing.evidence.isEmpty)
    }

    @Test func thousandsOfTokensNeitherUnderflowNorOverflow() {
        let classifier = Classifier(parameters: parameters)
        let tokens = (0..<20_000).map { ("t\($0)", TokenCounts(pitch: 1_000, ham: 0)) }
        let result = classifier.classify(tokens, totals: ClassTotals(pitch: 1_000, ham: 1_000))
        #expect(result.score.isFinite)
        #expect(result.score > 0.99)
    }

    @Test func cutoffsAreInclusive() {
        let classifier = Classifier(parameters: parameters)
        #expect(classifier.verdict(for: 0.9) == .pitch)
        #expect(classifier.verdict(for: 0.1) == .ham)
        #expect(classifier.verdict(for: 0.5) == .unsure)
    }
}
