import PitchClassifier
import PitchStore
import PitchTokenizer

/// k-fold cross-validation as ../shared/DESIGN.md defines it: each message belongs to one fold; for every fold the
/// classifier is trained on the others and scores that one; the verdicts and scores of all folds are summed.
///
/// Pure and in memory: each message is tokenized once by the caller, and a fold's model is the counts of all
/// messages minus the fold's own, which is exactly what training the other folds from empty gives.
public struct CrossValidation: Sendable {
    public struct Sample: Sendable {
        public var truth: MessageClass
        public var fold: Int
        public var tokens: [TokenID]
        /// Where the words and pairs of the text begin in `tokens` (`MessageTokens.textStart`).
        public var textStart: Int
        /// Whether each token is local (`MessageTokens.isLocal`); empty: none is.
        public var isLocal: [Bool]
        /// Whether each token is the Subject's (`MessageTokens.isSubject`); empty: none is.
        public var isSubject: [Bool]

        /// `textStart` nil: no token is a word of the text.
        public init(truth: MessageClass, fold: Int, tokens: [TokenID], textStart: Int? = nil, isLocal: [Bool] = [],
                    isSubject: [Bool] = []) {
            self.truth = truth
            self.fold = fold
            self.tokens = tokens
            self.textStart = textStart ?? tokens.count
            self.isLocal = isLocal
            self.isSubject = isSubject
        }

        /// A message's sample: its ids, where its text begins and which of its tokens are local or the Subject's.
        public init(truth: MessageClass, fold: Int, message: MessageTokens) {
            self.init(truth: truth, fold: fold, tokens: message.ids, textStart: message.textStart,
                      isLocal: message.isLocal, isSubject: message.isSubject)
        }

        /// The sample with its local tokens left out, as the starter model is built (`LocalTokens`): what a model
        /// trained on messages written elsewhere can carry over to anyone's mail.
        public var portable: Sample {
            guard isLocal.contains(true) else { return self }
            var kept: [TokenID] = []
            var keptSubject: [Bool] = []
            var keptBeforeText = 0
            for (index, id) in tokens.enumerated() where index >= isLocal.count || !isLocal[index] {
                kept.append(id)
                keptSubject.append(index < isSubject.count && isSubject[index])
                if index < textStart { keptBeforeText += 1 }
            }
            return Sample(truth: truth, fold: fold, tokens: kept, textStart: keptBeforeText, isSubject: keptSubject)
        }
    }

    public struct Result: Sendable {
        public var truth: MessageClass
        public var score: Double
        public var verdict: Verdict
        /// Whether the fold's model had the starter model's counts added.
        public var withStarter = false
    }

    public let folds: Int
    /// With a starter model, each fold's model is what the filter would use after that training: the starter
    /// model's counts added while `schedule` says so, scored with the settings it gives. Without one, every fold
    /// is scored with `schedule.ownParameters`.
    public let starter: StarterModel?
    public let schedule: ModelSchedule

    public init(folds: Int, starter: StarterModel? = nil, schedule: ModelSchedule = .standard) {
        self.folds = folds
        self.starter = starter
        self.schedule = schedule
    }

    /// The result of every sample, in the samples' order. `parallelMap` spreads the scoring of a fold's samples
    /// over threads (pass a plain `map` to stay on one).
    /// `scoredFolds`: the folds to score (all by default); the others only train. With folds 0 (the test set) and
    /// 1 (the training set) and `scoredFolds` [0], this is a plain train-then-test run. Samples of folds not scored
    /// have no result: the result array holds the scored samples only, in order.
    public func run(
        _ samples: [Sample], scoredFolds: Set<Int>? = nil,
        parallelMap: ([Int], (Int) -> Result) -> [Result] = { $0.map($1) }
    ) -> [Result] {
        var all = CountTable(minimumCapacity: 1 << 16)
        var totals = ClassTotals()
        for sample in samples {
            add(sample, sign: 1, to: &all)
            totals[sample.truth] += 1
        }
        var results = [Result?](repeating: nil, count: samples.count)
        for fold in 0..<folds where scoredFolds?.contains(fold) ?? true {
            let members = samples.indices.filter { samples[$0].fold == fold }
            guard !members.isEmpty else { continue }
            var table = all
            var trained = totals
            for index in members {
                add(samples[index], sign: -1, to: &table)
                trained[samples[index].truth] -= 1
            }
            let model = TokenSnapshot(table: table, totals: trained)
            // As `train` measures it after training: over every token the fold's model holds.
            let agreement = self.starter.flatMap { starter in
                StarterAgreement.measure(Self.distinctTokens(of: samples, outside: fold, in: table), totals: trained,
                                         starter: starter)
            }
            let starter = starter.flatMap { schedule.addsStarter(to: trained, agreement: agreement) ? $0 : nil }
            // As the engine scores a database of one class alone: by the starter model's counts only.
            let scoredOwn = starter == nil ? trained : ModelSchedule.scoredOwnTotals(trained)
            let classifier = Classifier(parameters: schedule.parameters(for: scoredOwn, agreement: agreement,
                                                                        withStarter: starter != nil))
            let scored = parallelMap(members) { index in
                let sample = samples[index]
                let (counts, own) = scoredOwn == trained ? model.counts(of: sample.tokens)
                    : (Array(repeating: .zero, count: sample.tokens.count), scoredOwn)
                // As the engine adds the starter's counts: the user's ham weighed against the user's pitches.
                let combined = starter?.combined(with: counts, ownTotals: own, for: sample.tokens,
                                                 isLocal: sample.isLocal, ownHamWeight: schedule.ownHamWeight(for: own))
                let classification = classifier.classify(
                    counts.map { (token: "", counts: $0) }, weighed: combined?.weighed ?? counts.map(WeighedCounts.init),
                    totals: combined?.weighedTotals ?? WeighedCounts(own), textStart: sample.textStart,
                    localTotals: starter == nil ? nil : own, isLocal: sample.isLocal, isSubject: sample.isSubject)
                return Result(truth: sample.truth, score: classification.score, verdict: classification.verdict,
                              withStarter: starter != nil)
            }
            for (index, result) in zip(members, scored) { results[index] = result }
        }
        return results.compactMap { $0 }
    }

    /// Each token of the samples not in `fold`, once, with its counts in `table`.
    static func distinctTokens(of samples: [Sample], outside fold: Int, in table: CountTable)
        -> [(TokenID, TokenCounts)] {
        var seen = Set<TokenID>()
        var tokens: [(TokenID, TokenCounts)] = []
        for sample in samples where sample.fold != fold {
            for id in sample.tokens where seen.insert(id).inserted { tokens.append((id, table[id])) }
        }
        return tokens
    }

    private func add(_ sample: Sample, sign: Int, to table: inout CountTable) {
        for id in sample.tokens {
            var counts = table[id]
            counts[sample.truth] = UInt32(Int(counts[sample.truth]) + sign)
            table[id] = counts
        }
    }
}

/// What cross-validation found: the confusion counts, error rates, 1−AUC, each class's mean score and a histogram
/// of scores.
public struct EvaluationReport: Sendable, Equatable {
    /// `confusion[truth][verdict]`.
    public var confusion: [MessageClass: [Verdict: Int]]
    /// The mean score of each class's messages (absent for a class with none). Moves when a change shifts scores
    /// without crossing a cutoff: what an ablation on a set the filter already gets right can still show.
    public var meanScore: [MessageClass: Double]
    /// Pitch–ham pairs the scores order wrongly (ties count half), as a fraction of all pairs: 1 − AUC.
    public var oneMinusAUC: Double
    /// Scores in `histogramBins` equal bins from 0 to 1: how many pitches and how many ham fell in each.
    public var histogram: [(pitch: Int, ham: Int)]

    public static let histogramBins = 20

    public init(_ results: [CrossValidation.Result]) {
        var confusion: [MessageClass: [Verdict: Int]] = [:]
        for messageClass in MessageClass.allCases {
            confusion[messageClass] = Dictionary(uniqueKeysWithValues: Verdict.allCases.map { ($0, 0) })
        }
        var histogram = Array(repeating: (pitch: 0, ham: 0), count: Self.histogramBins)
        for result in results {
            confusion[result.truth]![result.verdict]! += 1
            let bin = min(max(Int(result.score * Double(Self.histogramBins)), 0), Self.histogramBins - 1)
            if result.truth == .pitch { histogram[bin].pitch += 1 } else { histogram[bin].ham += 1 }
        }
        self.confusion = confusion
        self.histogram = histogram
        var meanScore: [MessageClass: Double] = [:]
        for messageClass in MessageClass.allCases {
            // Summed in order of size, so the same messages given in another order give the same last digit.
            let scores = results.filter { $0.truth == messageClass }.map(\.score).sorted()
            if !scores.isEmpty { meanScore[messageClass] = scores.reduce(0, +) / Double(scores.count) }
        }
        self.meanScore = meanScore
        self.oneMinusAUC = Self.misorderedFraction(
            pitch: results.filter { $0.truth == .pitch }.map(\.score),
            ham: results.filter { $0.truth == .ham }.map(\.score))
    }

    public func count(_ truth: MessageClass, calledAs verdict: Verdict) -> Int { confusion[truth]?[verdict] ?? 0 }
    public func total(_ truth: MessageClass) -> Int { confusion[truth]?.values.reduce(0, +) ?? 0 }

    /// Ham called pitch: the error that matters most.
    public var falsePositives: Int { count(.ham, calledAs: .pitch) }
    /// Pitches called ham.
    public var falseNegatives: Int { count(.pitch, calledAs: .ham) }

    /// Mann–Whitney: sort all scores once and, walking up, count for each pitch the ham scored below it.
    static func misorderedFraction(pitch: [Double], ham: [Double]) -> Double {
        guard !pitch.isEmpty, !ham.isEmpty else { return 0 }
        let ranked = (pitch.map { ($0, true) } + ham.map { ($0, false) }).sorted { $0.0 < $1.0 }
        var correctlyOrdered = 0.0
        var hamBelow = 0
        var index = 0
        while index < ranked.count {
            var end = index
            var tiedHam = 0
            var tiedPitch = 0
            while end < ranked.count, ranked[end].0 == ranked[index].0 {
                if ranked[end].1 { tiedPitch += 1 } else { tiedHam += 1 }
                end += 1
            }
            correctlyOrdered += Double(tiedPitch) * (Double(hamBelow) + Double(tiedHam) / 2)
            hamBelow += tiedHam
            index = end
        }
        return 1 - correctlyOrdered / (Double(pitch.count) * Double(ham.count))
    }

    public static func == (lhs: EvaluationReport, rhs: EvaluationReport) -> Bool {
        lhs.confusion == rhs.confusion && lhs.oneMinusAUC == rhs.oneMinusAUC && lhs.meanScore == rhs.meanScore
            && lhs.histogram.elementsEqual(rhs.histogram) { $0 == $1 }
    }
}
