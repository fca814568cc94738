import PitchClassifier
import PitchStore
import PitchTokenizer
import Testing

@testable import PitchEngine

/// How far a database's training agrees with the starter model, and what that changes.
@Suite struct StarterAgreementTests {
    /// A starter model of `count` tokens, the first half pitch words and the second half ham words, with 100
    /// messages of each class.
    static func starter(count: Int) -> StarterModel {
        StarterModel(tokenizerIdentity: Tokenizer.identity, totals: ClassTotals(pitch: 100, ham: 100),
                     tokens: (0..<count).map { index in
                         (TokenID(rawValue: UInt64(index + 1)),
                          index < count / 2 ? TokenCounts(pitch: 20, ham: 2) : TokenCounts(pitch: 2, ham: 20))
                     })
    }

    /// The database's own counts for the same tokens: leaning the same way, the other way, or one way at random.
    static func own(count: Int, _ leaning: (Int) -> Bool) -> [(TokenID, TokenCounts)] {
        (0..<count).map { index in
            (TokenID(rawValue: UInt64(index + 1)),
             leaning(index) ? TokenCounts(pitch: 9, ham: 1) : TokenCounts(pitch: 1, ham: 9))
        }
    }

    static let totals = ClassTotals(pitch: 40, ham: 40)

    @Test func trainingThatSaysWhatTheStarterSaysAgrees() throws {
        let starter = Self.starter(count: 400)
        let same = try #require(StarterAgreement.measure(Self.own(count: 400) { $0 < 200 }, totals: Self.totals,
                                                         starter: starter))
        #expect(same > 0.99)
        let opposite = try #require(StarterAgreement.measure(Self.own(count: 400) { $0 >= 200 },
                                                             totals: Self.totals, starter: starter))
        #expect(opposite < -0.99)
        // Split along other lines: every other token of each half leans each way.
        let unrelated = try #require(StarterAgreement.measure(Self.own(count: 400) { $0 % 2 == 0 },
                                                              totals: Self.totals, starter: starter))
        #expect(abs(unrelated) < 0.05)
    }

    @Test func tooLittleTrainingHasNoMeasure() {
        let starter = Self.starter(count: 400)
        let few = Self.own(count: StarterAgreement.minimumTokens - 1) { $0 < 100 }
        #expect(StarterAgreement.measure(few, totals: Self.totals, starter: starter) == nil)
        // Tokens in fewer than `minimumMessages` messages take no part.
        let rare = Self.own(count: 400) { $0 < 200 }.map { ($0.0, TokenCounts(pitch: 2, ham: 1)) }
        #expect(StarterAgreement.measure(rare, totals: Self.totals, starter: starter) == nil)
        // Nor do tokens the starter does not know (local ones, or words it never saw).
        let unknown = Self.own(count: 400) { $0 < 200 }.map { (TokenID(rawValue: $0.0.rawValue + 10_000), $0.1) }
        #expect(StarterAgreement.measure(unknown, totals: Self.totals, starter: starter) == nil)
        // A class with nothing trained.
        #expect(StarterAgreement.measure(Self.own(count: 400) { $0 < 200 }, totals: ClassTotals(pitch: 40, ham: 0),
                                         starter: starter) == nil)
    }

    @Test func anAgreeingDatabaseIsScoredWithTheSettingsForPitches() {
        let schedule = ModelSchedule.standard
        let agreed = schedule.agreedParameters
        let young = ClassTotals(pitch: 10, ham: 10)
        let halfWay = ClassTotals(pitch: 275, ham: 275)
        let large = ClassTotals(pitch: 600, ham: 600)
        for totals in [young, halfWay, large] {
            // Below the threshold: as not measured.
            #expect(schedule.parameters(for: totals, agreement: 0.1) == schedule.parameters(for: totals, agreement: nil))
        }
        // Not measured, a large database has the own model's settings, not the agreed ones.
        #expect(schedule.parameters(for: large, agreement: nil) == schedule.ownParameters)
        #expect(schedule.parameters(for: large, agreement: 0.7) == agreed)
        #expect(agreed != schedule.ownParameters)
        // Too young to slide: the starter's settings either way.
        #expect(schedule.parameters(for: young, agreement: 0.7) == schedule.parameters(for: young))
        // Half-way, the slide heads for the agreed settings.
        let sliding = schedule.parameters(for: halfWay, agreement: 0.7)
        let usual = schedule.parameters(for: halfWay)
        #expect(sliding.minDeviation < usual.minDeviation)
        #expect(sliding.strength > usual.strength)
        #expect(sliding.pitchCutoff == usual.pitchCutoff)
        // A large database: the agreed settings themselves.
        #expect(schedule.parameters(for: large, agreement: schedule.agreementThreshold) == agreed)
        #expect(schedule.parameters(for: large) == schedule.ownParameters)
        // An agreeing database keeps the starter's counts past 500; any other drops them there.
        #expect(schedule.addsStarter(to: large, agreement: 0.7))
        #expect(!schedule.addsStarter(to: large, agreement: 0.1) && !schedule.addsStarter(to: large))
        #expect(schedule.addsStarter(to: halfWay, agreement: 0.1))
        // The configuration's cutoffs apply to the agreed settings too.
        let strict = schedule.withCutoffs(Cutoffs(pitch: 0.95, ham: 0.1)!)
        #expect(strict.parameters(for: large, agreement: 0.7).pitchCutoff == 0.95)
        #expect(strict.parameters(for: large, agreement: 0.7).hamCutoff == 0.1)
    }

    @Test func theEngineReadsTheFigureItsStoreKeeps() throws {
        // A large database whose store says it agrees: scored with the agreed settings.
        struct Keeps: TokenCountSource {
            let agreement: Double?
            func counts(of tokens: [TokenID]) -> (counts: [TokenCounts], totals: ClassTotals) {
                (tokens.map { _ in TokenCounts(pitch: 8, ham: 1) }, ClassTotals(pitch: 600, ham: 600))
            }
            func starterAgreement() throws -> Double? { agreement }
        }
        let tokens = MessageTokens(texts: ["a", "b"], ids: [TokenID(rawValue: 1), TokenID(rawValue: 2)])
        let agreeing = try Engine(store: Keeps(agreement: 0.7), starter: nil).assess(tokens).classification
        let not = try Engine(store: Keeps(agreement: 0.1), starter: nil).assess(tokens).classification
        let unmeasured = try Engine(store: Keeps(agreement: nil), starter: nil).assess(tokens).classification
        // A database that does not agree is scored with the large-database settings, whose min_dev (0.4) leaves
        // these tokens (f ≈ 0.88) out; the agreed settings (min_dev 0.3, f ≈ 0.87) keep them.
        #expect(not.evidence.isEmpty && unmeasured.evidence.isEmpty)
        #expect(agreeing.evidence.count == 2)
    }
}
