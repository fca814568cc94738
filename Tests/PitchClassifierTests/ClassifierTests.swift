import Testing
@testable import PitchClassifier

@Suite struct ClassifierTests {
    let parameters = ClassifierParameters(strength: 1, prior: 0.5, minDeviation: 0.1, pitchCutoff: 0.9, hamCutoff: 0.1)

    /// Q(χ², ν) for even ν against values from the closed form e^(−m)·Σ mⁱ/i! computed independently, and for
    /// fractional ν (weighted evidence) against SciPy's chi2.sf.
    @Test(arguments: [
        (0.0, 2.0, 1.0), (2.0, 2.0, 0.36787944117144233), (10.0, 4.0, 0.040427681994512805),
        (1.0, 6.0, 0.9856123220330293), (100.0, 10.0, 5.449701982920529e-17),
        (5.0, 3.0, 0.1717971442967335), (10.0, 6.5, 0.15488108100542172), (1.0, 0.5, 0.15351359580832247),
        (1000.0, 900.5, 0.011334323695001695), (3000.0, 1500.25, 1.7846247876752986e-102),
        (0.5, 7.0, 0.9994464813904249),
    ])
    func chiSquareUpperTail(chiSquare: Double, degrees: Double, expected: Double) {
        let q = Classifier.chiSquareQ(chiSquare, degrees: degrees)
        #expect(expected == 0 ? q == 0 : abs(q - expected) <= expected * 1e-9)
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

    /// The imbalance pseudo-count: nothing changes for equal classes or at 0; with unequal classes, each count
    /// gains the pseudo-count times 1 − smaller/larger. Expected values worked by hand.
    static let imbalanceCases: [(pitch: Int, ham: Int, pitchTotal: Int, hamTotal: Int, pseudoCount: Double,
                                 expected: Double)] = [
        // pitch, ham in the token; class totals; pseudo-count; f
        (0, 6, 10, 10, 2.0, 1 * 0.5 / 7),             // equal classes: as without (p = 0, n = 6)
        (0, 6, 860, 2800, 0.0, 1 * 0.5 / 7),          // pseudo-count 0: as without
        // 1 − 860/2800 = 0.69286 added to each count: pitch rate 0.69286/861.386, ham 6.69286/2801.386,
        // p = 0.251873, f = (0.5 + 6·0.251873) / 7.
        (0, 6, 860, 2800, 1.0, (0.5 + 6 * 0.251_873_5) / 7),
        // The larger class's zero still tells: the same token absent from the 2,800 ham and in 6 of 860 pitches,
        // p = (6.69286/861.386) / (6.69286/861.386 + 0.69286/2801.386) = 0.969151.
        (6, 0, 860, 2800, 1.0, (0.5 + 6 * 0.969_150_5) / 7),
        (0, 0, 860, 2800, 1.0, 0.5),                  // never seen: the prior, whatever the pseudo-count
        (3, 0, 0, 100, 1.0, 0.5),                     // a class without messages: no rate for it, the prior
        (0, 3, 0, 100, 1.0, 0.5),                     // ... and nothing to compare the other class's rate with
        (0, 3, 0, 100, 0.0, 0.5),                     // whatever the pseudo-count
        (80, 0, 80, 0, 1.0, 0.5),                     // a field in every one of 80 pitches, and no ham trained
        (3, 0, 0, 0, 1.0, 0.5),                       // no totals at all: the prior
        // In 2 of 2,075 ham and none of 8 pitches: the pseudo-count alone gives p 0.985736 (f 0.823824), pitch
        // evidence from a token seen only in ham. It may temper the evidence, not turn it: p 0.5, and f with it.
        (0, 2, 8, 2075, 1.0, 0.5),
        (2, 0, 2075, 8, 1.0, 0.5),                    // the same the other way round
        (0, 50, 8, 2075, 1.0, 0.5),                   // 50 ham: p would be 0.80
        (1, 200, 10, 2000, 1.0, 0.5),                 // equal rates, 10 % each: p would be 0.624
        (8, 2075, 8, 2075, 1.0, 0.5),                 // in every message of both: p would be 0.474
        // Where it only tempers, it stays: in 1,000 of the ham, p 0.171398 rather than 0, f = (0.5 + 1000·p) / 1001.
        (0, 1000, 8, 2075, 1.0, (0.5 + 1000 * 0.171_398_03) / 1001),
        // And in 3 of the 8 pitches and no ham, p 0.998802, f = (0.5 + 3·p) / 4.
        (3, 0, 8, 2075, 1.0, (0.5 + 3 * 0.998_802_18) / 4),
    ]

    @Test(arguments: imbalanceCases)
    func imbalancePseudoCount(_ row: (pitch: Int, ham: Int, pitchTotal: Int, hamTotal: Int, pseudoCount: Double,
                                      expected: Double)) {
        let (pitch, ham, pitchTotal, hamTotal, pseudoCount, expected) = row
        var parameters = parameters
        parameters.imbalancePseudoCount = pseudoCount
        let f = Classifier(parameters: parameters).probability(
            of: TokenCounts(pitch: UInt32(pitch), ham: UInt32(ham)), totals: ClassTotals(pitch: pitchTotal, ham: hamTotal))
        #expect(abs(f - expected) < 1e-5, "f = \(f), expected \(expected)")
    }

    /// A fraction of a message counts as that fraction: in 1 of 10 pitches and 2.5 of 10 ham, p = 0.1 / 0.35 and
    /// n = 3.5, so f = (0.5 + 3.5 · 0.285714) / 4.5 = 1/3.
    @Test func weighedCountsScoreAsTheirFractions() {
        let classifier = Classifier(parameters: parameters)
        let f = classifier.probability(of: WeighedCounts(pitch: 1, ham: 2.5), totals: WeighedCounts(pitch: 10, ham: 10))
        #expect(abs(f - 1.0 / 3) < 1e-12)
        // classify scores the weighed counts and shows the counts it was given: a token shown in 3 pitches and 40
        // ham, weighed as 3 and 3 of 10 each, says nothing; "lunch", weighed as 3 ham, is ham evidence.
        let tokens = [("corvane", TokenCounts(pitch: 3, ham: 40)), ("lunch", TokenCounts(pitch: 0, ham: 40))]
        let classification = classifier.classify(
            tokens, weighed: [WeighedCounts(pitch: 3, ham: 3), WeighedCounts(pitch: 0, ham: 3)],
            totals: WeighedCounts(pitch: 10, ham: 10))
        #expect(classification.evidence.map(\.token) == ["lunch"])
        #expect(classification.evidence.first?.counts == TokenCounts(pitch: 0, ham: 40))
        #expect(classifier.classify(tokens, totals: ClassTotals(pitch: 10, ham: 10)).evidence.map(\.token)
                    == ["corvane", "lunch"])
    }

    @Test func verdictsAndEvidence() {
        let classifier = Classifier(parameters: parameters)
        let totals = ClassTotals(pitch: 10, ham: 10)
        let pitchy = classifier.classify([
            ("the", TokenCounts(pitch: 10, ham: 10)), ("quick", TokenCounts(pitch: 7, ham: 0)),
            ("bumping", TokenCounts(pitch: 9, ham: 0)), ("connecting", TokenCounts(pitch: 8, ham: 0)),
        ], totals: totals)
        #expect(abs(pitchy.score - 0.995528) < 1e-6)  // computed independently
        #expect(pitchy.strongestEvidence.map(\.token) == ["bumping", "connecting", "quick"])  // "the" is at 0.5
        // A pitch's score on three tokens: too few to call a pitch on (`Classifier.minimumPitchEvidence`).
        #expect(pitchy.verdict == .unsure)
        #expect(pitchy.tooLittleEvidence)
        let fivePitchy = classifier.classify([
            ("quick", TokenCounts(pitch: 7, ham: 0)), ("bumping", TokenCounts(pitch: 9, ham: 0)),
            ("connecting", TokenCounts(pitch: 8, ham: 0)), ("top", TokenCounts(pitch: 6, ham: 0)),
            ("inbox", TokenCounts(pitch: 6, ham: 1)),
        ], totals: totals)
        #expect(fivePitchy.verdict == .pitch)
        #expect(!fivePitchy.tooLittleEvidence)
        // Found in review: a three-word Subject's words and pairs alone made five. The Subject's do not count.
        let subjectOnly = classifier.classify([
            ("subj:quick", TokenCounts(pitch: 7, ham: 0)), ("subj:call", TokenCounts(pitch: 9, ham: 0)),
            ("subj:tomorrow", TokenCounts(pitch: 8, ham: 0)), ("subj:quick call", TokenCounts(pitch: 6, ham: 0)),
            ("subj:call tomorrow", TokenCounts(pitch: 6, ham: 0)), ("inbox", TokenCounts(pitch: 6, ham: 0)),
        ], totals: totals)
        #expect(subjectOnly.score > 0.9)
        #expect(subjectOnly.verdict == .unsure)
        #expect(subjectOnly.tooLittleEvidence)
        // With no evidence at all, a pitch cutoff at or below the prior calls nothing a pitch either.
        var low = parameters
        low.pitchCutoff = 0.5
        let none = Classifier(parameters: low).classify([("the", TokenCounts(pitch: 3, ham: 3))], totals: totals)
        #expect(none.verdict == .unsure)

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

    /// A local token's counts come from the user's own training only (the starter model carries none), so they are
    /// compared with the own totals: a field in every one of 155 trained pitches and 2,075 trained ham says nothing,
    /// where against the totals with a starter's 1,185 + 1,209 added it read as ham evidence (f 0.155).
    @Test func localTokensAreScoredAgainstTheTotalsTheyWereCountedIn() throws {
        let classifier = Classifier(parameters: .starter)
        let everywhere = [("rcvdwith:esmtps", TokenCounts(pitch: 155, ham: 2_075))]
        let own = ClassTotals(pitch: 155, ham: 2_075)
        let withStarter = ClassTotals(pitch: 155 + 1_185, ham: 2_075 + 1_209)
        let asIfCountedInAll = classifier.classify(everywhere, totals: withStarter)
        #expect(abs(try #require(asIfCountedInAll.evidence.first).probability - 0.1553) < 1e-4)
        let local = classifier.classify(everywhere, totals: withStarter, localTotals: own, isLocal: [true])
        #expect(local.evidence.isEmpty)
        #expect(local.score == ClassifierParameters.starter.prior)
        // Marked but without totals of its own, or with totals but not marked: the shared totals.
        #expect(classifier.classify(everywhere, totals: withStarter, isLocal: [true]) == asIfCountedInAll)
        #expect(classifier.classify(everywhere, totals: withStarter, localTotals: own, isLocal: [false])
                    == asIfCountedInAll)
    }

    @Test func thousandsOfTokensNeitherUnderflowNorOverflow() {
        let classifier = Classifier(parameters: parameters)
        let tokens = (0..<20_000).map { ("t\($0)", TokenCounts(pitch: 1_000, ham: 0)) }
        let result = classifier.classify(tokens, totals: ClassTotals(pitch: 1_000, ham: 1_000))
        #expect(result.score.isFinite)
        #expect(result.score > 0.99)
    }

    /// Text tokens count at `textWeight`: three words of the text at 1/3 weigh what one header token does, and
    /// tokens before `textStart` count fully.
    @Test func textTokensCountAtTheTextWeight() {
        var weighted = parameters
        weighted.textWeight = 1.0 / 3
        let classifier = Classifier(parameters: weighted)
        let totals = ClassTotals(pitch: 10, ham: 10)
        let counts = TokenCounts(pitch: 7, ham: 1)
        let header = classifier.classify([("from:a@b.example", counts)], totals: totals)
        let threeWords = classifier.classify([("we", counts), ("can", counts), ("help", counts)], totals: totals,
                                             textStart: 0)
        #expect(abs(threeWords.score - header.score) < 1e-12)
        #expect(threeWords.evidence.count == 3)
        // Counted fully (no textStart), the same three tokens are much surer.
        let unweighted = classifier.classify([("we", counts), ("can", counts), ("help", counts)], totals: totals)
        #expect(unweighted.score > threeWords.score + 0.05)
        // Before textStart, a token counts fully: one header token and three text tokens weigh two tokens.
        let mixed = classifier.classify([("from:a@b.example", counts), ("we", counts), ("can", counts),
                                         ("help", counts)], totals: totals, textStart: 1)
        let two = classifier.classify([("from:a@b.example", counts), ("subj:help", counts)], totals: totals)
        #expect(abs(mixed.score - two.score) < 1e-12)
        // The evidence says what each token counted, and an explanation ranks by it: the header token first,
        // though a word of the text is further from 0.5 on its own.
        let third = 1.0 / 3
        #expect(mixed.evidence.map(\.weight) == [1, third, third, third])
        let ranked = classifier.classify([("from:a@b.example", counts), ("bumping", TokenCounts(pitch: 9, ham: 0))],
                                         totals: totals, textStart: 1)
        #expect(ranked.evidence[1].probability > ranked.evidence[0].probability)
        #expect(ranked.strongestEvidence.map(\.token) == ["from:a@b.example", "bumping"])
    }

    /// An unsure score is a pitch when the pitch evidence is decisive and the ham evidence absent; never otherwise.
    @Test(arguments: [
        // score, pitch tail, ham tail, verdict
        (0.58, 1e-14, 0.17, Verdict.pitch),
        (0.58, 1e-5, 0.05, .pitch),        // both bounds inclusive
        (0.58, 2e-5, 0.17, .unsure),       // pitch evidence not decisive
        (0.58, 1e-14, 0.04, .unsure),      // some ham evidence
        (0.95, 0.5, 0.0, .pitch),          // the cutoffs decide first
        (0.1, 1e-14, 0.9, .ham),
    ])
    func decisivePitchEvidence(score: Double, pitchTail: Double, hamTail: Double, expected: Verdict) {
        var decisive = parameters
        decisive.decisivePitchTail = 1e-5
        decisive.absentHamTail = 0.05
        #expect(Classifier(parameters: decisive).verdict(for: score, pitchTail: pitchTail, hamTail: hamTail) == expected)
    }

    @Test func decisivePitchEvidenceThroughClassify() {
        // Twenty strong pitch tokens beside ten ham tokens: the score averages the two tests to about 0.58.
        let tokens = (0..<30).map { ("t\($0)", $0 < 20 ? TokenCounts(pitch: 99, ham: 1) : TokenCounts(pitch: 3, ham: 97)) }
        let totals = ClassTotals(pitch: 100, ham: 100)
        let plain = Classifier(parameters: parameters).classify(tokens, totals: totals)
        #expect(plain.score > 0.5 && plain.score < 0.9)
        #expect(plain.verdict == .unsure)
        var decisive = parameters
        decisive.decisivePitchTail = 1e-5
        decisive.absentHamTail = 0.05
        let ruled = Classifier(parameters: decisive).classify(tokens, totals: totals)
        #expect(ruled.score == plain.score)
        #expect(ruled.verdict == .pitch)
        #expect(ruled.decidedByEvidence && !plain.decidedByEvidence)
        #expect(ruled.pitchTail <= 1e-5 && ruled.hamTail >= 0.05)
        // Ten more ham tokens make the ham evidence significant: unsure again.
        let more = tokens + (30..<40).map { ("t\($0)", TokenCounts(pitch: 3, ham: 97)) }
        #expect(Classifier(parameters: decisive).classify(more, totals: totals).verdict == .unsure)
    }

    @Test func cutoffsAreInclusive() {
        let classifier = Classifier(parameters: parameters)
        #expect(classifier.verdict(for: 0.9) == .pitch)
        #expect(classifier.verdict(for: 0.1) == .ham)
        #expect(classifier.verdict(for: 0.5) == .unsure)
    }

    /// pitch_cutoff = 1 is how a user turns pitches off: not even a score of exactly 1 is one. Likewise ham at 0.
    @Test func cutoffsAtTheEndsOfTheScaleCallNothing() {
        var ends = parameters
        ends.pitchCutoff = 1
        ends.hamCutoff = 0
        let classifier = Classifier(parameters: ends)
        #expect(classifier.verdict(for: 1) == .unsure)
        #expect(classifier.verdict(for: 0) == .unsure)
        let everything = [("t", TokenCounts(pitch: 1000, ham: 0))] + (0..<50).map { ("u\($0)", TokenCounts(pitch: 500, ham: 0)) }
        let certain = classifier.classify(everything, totals: ClassTotals(pitch: 1000, ham: 1000))
        #expect(certain.score == 1)
        #expect(certain.verdict == .unsure)
    }
}
