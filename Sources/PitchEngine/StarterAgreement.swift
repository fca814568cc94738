import PitchClassifier
import PitchStore
import PitchTokenizer

/// How far a database's own training agrees with the starter model: whether the user trains what the starter
/// model was built to tell apart (cold pitches against business mail) or something else (say, spam against ham).
///
/// Pearson's correlation, over the tokens both know well, between the two token probabilities (each class's rate
/// compared, as `Classifier.probability` does before the prior): near 1 where the same words say "pitch" in both,
/// near 0 where the user's classes are split along other lines. Measured with `eval --folds 2`:
///
///     mail trained (of each class)                                  correlation
///     our sample sets, alone or pooled (40–276)                     0.62–0.76
///     our pitches against SpamAssassin's ham (155 + 2,075)          0.33–0.35
///     SpamAssassin spam against its ham, subsets (100–300)          0.07–0.13
///
/// A database that agrees (`ModelSchedule.agreementThreshold`) is scored with settings that trust moderate
/// evidence more (`ModelSchedule.agreedParameters`). Those settings would flag SpamAssassin ham, and for that
/// mail the correlation stays far below the threshold, so nothing changes there.
public enum StarterAgreement {
    /// Only tokens in at least this many messages of each side's training take part: a token seen once says
    /// nothing about its class.
    public static let minimumMessages = 4
    /// Below this many such tokens there is no measure: too little training to tell.
    public static let minimumTokens = 200

    /// The correlation for a database with these token counts and totals, or nil when it cannot tell. Local tokens
    /// (`LocalTokens`) take no part: the starter model has none.
    public static func measure(_ tokens: some Sequence<(TokenID, TokenCounts)>, totals: ClassTotals,
                               starter: StarterModel) -> Double? {
        guard totals.pitch > 0, totals.ham > 0 else { return nil }
        var own: [Double] = []
        var starters: [Double] = []
        for (id, counts) in tokens where Int(counts.pitch) + Int(counts.ham) >= minimumMessages {
            guard let known = starter.counts(for: id), Int(known.pitch) + Int(known.ham) >= minimumMessages else {
                continue
            }
            own.append(leaning(counts, totals))
            starters.append(leaning(known, starter.totals))
        }
        guard own.count >= minimumTokens else { return nil }
        return correlation(own, starters)
    }

    /// A token's pitch rate against its ham rate, from −0.5 (ham only) to 0.5 (pitches only).
    static func leaning(_ counts: TokenCounts, _ totals: ClassTotals) -> Double {
        let pitchRate = Double(counts.pitch) / Double(max(totals.pitch, 1))
        let hamRate = Double(counts.ham) / Double(max(totals.ham, 1))
        return pitchRate / (pitchRate + hamRate) - 0.5
    }

    /// Pearson's r; 0 when either side does not vary.
    static func correlation(_ x: [Double], _ y: [Double]) -> Double {
        let n = Double(x.count)
        let meanX = x.reduce(0, +) / n
        let meanY = y.reduce(0, +) / n
        var xy = 0.0
        var xx = 0.0
        var yy = 0.0
        for (a, b) in zip(x, y) {
            xy += (a - meanX) * (b - meanY)
            xx += (a - meanX) * (a - meanX)
            yy += (b - meanY) * (b - meanY)
        }
        return xx > 0 && yy > 0 ? xy / (xx * yy).squareRoot() : 0
    }
}
