import PitchClassifier

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// How a young database grows into its own: which counts score a message, and with which settings, by how much
/// the user has trained. The filter, `classify` and `eval` all ask this one place.
///
/// Trained is the smaller class's count in the user's own database. Up to `slideFrom`, the starter model's counts
/// are added and scored with its settings (`ClassifierParameters.starter`); from `starterUntil` on, the user's
/// counts alone decide with the settings tuned on large databases (`.default`). In between, the starter's counts
/// are still added and the settings slide from one to the other, evenly on a log scale of the training.
///
/// Chosen with `pitchfilter eval --with-starter` (5-fold and 2-fold) on samples/heldout (then 80 + 80, never in the
/// starter model) and on random subsets of the SpamAssassin corpus (325 + 325; 632 spam + 1,000 ham) as the
/// false-positive guard. Pitches called pitch / ham called pitch; the "hard cut" row is the old rule (starter
/// until 50, then own counts with the default settings):
///
///     from, until   heldout 5-fold  heldout 2-fold  SA 325 5-fold  SA 325 2-fold  SA 1,000 5-fold
///     hard cut 50   54 / 0          70 / 0          291 / 1        271 / 1        525 / 0
///     50, 1000      78 / 0          70 / 0          302 / 2        300 / 4        548 / 0
///     50, 500       78 / 0          70 / 0          297 / 2        298 / 1        525 / 0
///     25, 300       76 / 0          76 / 0          287 / 1        285 / 1        525 / 0
///     25, 500       77 / 0          76 / 0          295 / 1        291 / 1        525 / 0
///     25, 1000      77 / 0          75 / 0          303 / 2        298 / 2        540 / 0
///     10, 500       72 / 0          74 / 0          293 / 1        287 / 1        525 / 0
///
/// The hard cut threw away the starter's evidence exactly when a user had trained a little, and scored the
/// rest with settings made for thousands of messages: 64 trained of each flagged 54 held-out pitches where the
/// starter model alone flags 68. The full SpamAssassin corpus (over 1,500 of each per fold) is unchanged.
///
/// The large-database settings later changed (s 0.1 → 0.2, the text's words at 1/3: `ClassifierParameters`); the
/// text's weight does not slide (see `parameters(for:)`). On other random subsets (every third file, shuffled with
/// a fixed seed), pitches called pitch / ham called pitch, with the old own settings → the new: SA 325 5-fold
/// 285 / 3 → 296 / 3, 2-fold 276 / 2 → 286 / 3 (pitches called ham 1 → 5), SA 632 + 1,000 5-fold 509 / 0 → 552 / 1
/// (582 / 3 with the decisive-evidence rule); heldout 77 / 0 and 75 / 0 both ways.
///
/// The pitch cutoff alone starts to rise with the first message trained, not at `slideFrom`: evenly on a log scale
/// from 1 to `starterUntil` (from the starter's 0.73: 0.793 at 10 trained, 0.831 at 40, 0.875 at 200). A user's first training makes scores
/// bolder before it makes them better: a few own pitches sharing a word with a stranger's genuine first letter give
/// it counts of 2–6 in one class, which s, sliding down, trusts. Half-trained (alternate files), pitches / ham
/// flagged, the cutoff sliding from 25 → from 1: samples/outside (40 trained) 79 / 1 → 78 / 0 (the ham, a founder
/// asking a law firm for counsel, scored 0.818 against 0.816); dev + blind + heldout + fresh (195) 381 / 0 →
/// 380 / 0; samples/unseen (40) 75 / 0 both; our pitches against SpamAssassin ham (155 + 2,075) 310 / 0 → 309 / 0;
/// SpamAssassin 400 + 1,500 (200 + 750) 341 / 3 → 335 / 2; `eval --folds 2` on SpamAssassin 325 + 325 subsets
/// 294 / 2 → 293 / 2 and 288 / 4 → 286 / 2, 5-fold unchanged.
///
/// A slower start was tried with the starter's cutoff at 0.75 (the log-scale share squared: 0.770 at 10 trained,
/// 0.803 at 40, 0.859 at 200), pitches / ham flagged, now → slower. By halves it flagged more with no ham more:
/// unseen 74 → 76, business 73 → 75, outside 78 → 79, heldout 99 → 100, all eight older sets 690 → 692,
/// samples/archive 30 → 31; SpamAssassin 400 + 1,500 by halves 310 → 313 spam, the same 3 ham. But it sat close
/// above the ham: blind's `b3-h-024` scored 0.799 against 0.811 at its 52 trained (the cube flagged it). And with
/// 5 of each trained (every fourth file of nine sets, the others classified) it flagged a held-out ham, `h-h-064`
/// at 0.766 against 0.760: 655 / 0 → 661 / 1. So the slide stays even on the log scale.
///
/// A cutoff fitted to the user's own mail was measured and not taken: just above the highest score of the
/// trained ham, each scored by a model trained on all the rest (leave-one-out), never above the slide's. By halves
/// our sets are ranked almost perfectly (only 4 of 766 pitches score below the other half's highest ham), so the
/// missed pitches are all a matter of the cutoff. But a mailbox's high-scoring ham are single outliers (a founder
/// asking counsel, a friend's offer), which one half has and the other has not: the trained half's highest ham
/// said nothing of the other's. Ten sets by halves, pitches / ham flagged, now 733 / 1 of 766 / 830; that
/// highest + 0.05 (at least 0.5) 755 / 6, + 0.1 754 / 5, + 0.2 751 / 5 (unseen's `ub-h-002` at 0.605 behind a
/// trained half whose highest was 0.294); the nine English sets pooled 715 / 0 → 727 / 1 even at + 0.2.
///
/// Where the slide heads, and what a large database is scored with, depends on the training: a database whose
/// training agrees with the starter model's (`StarterAgreement`: cold pitches against business mail) heads for
/// `agreedParameters`, any other for `ownParameters`, tuned on SpamAssassin's spam.
public struct ModelSchedule: Sendable {
    /// Below this many own messages of the smaller class, the starter model's settings apply unchanged, but for
    /// the pitch cutoff (`pitchCutoff(for:)`).
    public var slideFrom: Int
    /// From this many own messages of the smaller class on, the user's training alone decides.
    public var starterUntil: Int
    /// The settings while the starter model's counts dominate.
    public var starterParameters: ClassifierParameters
    /// The settings once the user's own training decides alone.
    public var ownParameters: ClassifierParameters
    /// `ownParameters` for a database whose training agrees with the starter model's (`StarterAgreement`): what
    /// the slide heads for, and what a large database is scored with, instead.
    public var agreedParameters: ClassifierParameters
    /// From this correlation on, a database agrees with the starter model.
    public var agreementThreshold: Double = 0.4

    public init(slideFrom: Int, starterUntil: Int, starterParameters: ClassifierParameters,
                ownParameters: ClassifierParameters, agreedParameters: ClassifierParameters? = nil) {
        precondition(0 < slideFrom && slideFrom < starterUntil, "the slide must start before it ends")
        precondition(starterParameters.strength > 0 && ownParameters.strength > 0, "the slide is geometric in s")
        precondition([starterParameters, ownParameters].allSatisfy {
            $0.imbalancePseudoCount.isFinite && $0.imbalancePseudoCount >= 0
        }, "a pseudo-count is a number of messages")
        self.slideFrom = slideFrom
        self.starterUntil = starterUntil
        self.starterParameters = starterParameters
        self.ownParameters = ownParameters
        self.agreedParameters = agreedParameters ?? ownParameters
    }

    public static let standard = ModelSchedule(
        slideFrom: 25, starterUntil: 500, starterParameters: .starter, ownParameters: .default,
        agreedParameters: .agreeingWithStarter)

    /// The same schedule with these verdict cutoffs at every stage: what `[classifier]` in the configuration sets.
    /// Each cutoff on its own: a standard one (not given, or its default written out) leaves each stage its own,
    /// as the starter's pitch cutoff is lower than a large database's. A pitch cutoff of one's own also turns the
    /// decisive-evidence rule off (`withPitchCutoff`). A ham cutoff of one's own alone left the pitch cutoff held
    /// at 0.9 from the first message, and the rule off (found in review: `ham_cutoff = 0.15` flagged 89 of
    /// samples/heldout's pitches, not 99); it now changes the ham cutoff alone, unless it reaches the lowest pitch
    /// cutoff of the slide (the starter's 0.73), which would leave no unsure band: then the pitch cutoff is held
    /// at the standard one too.
    public func withCutoffs(_ cutoffs: Cutoffs) -> ModelSchedule {
        let stages = [\ModelSchedule.starterParameters, \ModelSchedule.ownParameters, \ModelSchedule.agreedParameters]
        let lowestPitchCutoff = stages.map { self[keyPath: $0].pitchCutoff }.min()!
        let holdsPitch = cutoffs.pitch != Cutoffs.standard.pitch || cutoffs.ham >= lowestPitchCutoff
        var schedule = self
        for keyPath in stages {
            if holdsPitch { schedule[keyPath: keyPath] = schedule[keyPath: keyPath].withPitchCutoff(cutoffs.pitch) }
            if cutoffs.ham != Cutoffs.standard.ham { schedule[keyPath: keyPath].hamCutoff = cutoffs.ham }
        }
        return schedule
    }

    /// Whether the starter model's counts are added to a database with these totals and this `StarterAgreement`:
    /// until `starterUntil`, and for ever to a database that agrees with it. Dropped at 500 trained of each, the
    /// starter's counts took with them what the pitches of our sets are told by: `eval --folds 5` over the six sets
    /// and samples/campaign (504 trained of each) flagged 553 of 630 pitches and 2 ham, 1−AUC 0.157 %; kept, 586
    /// and none, 0.015 % (10 folds: 556 / 2 against 586 / 0).
    public func addsStarter(to own: ClassTotals, agreement: Double? = nil) -> Bool {
        min(own.pitch, own.ham) < starterUntil || agrees(agreement)
    }

    /// The user's own training as it is scored while the starter model's counts are added: none at all until both
    /// classes have messages. A training of one class has no rate to compare a token's with, and the words every
    /// pitch of one mailbox shares (the owner's name, the company's) read as a pitch's: 100 pitches of
    /// samples/heldout trained alone, the starter model's counts added, flagged 1 of its 100 ham, where the
    /// starter model alone flags none (and every token's own counts scored, before `Classifier` left a class
    /// without messages out, 83). So a user who trains the pitches folder first is scored as out of the box
    /// until a ham is trained, as SpamAssassin leaves its Bayes classifier out until it has learned enough of
    /// both classes (`bayes_min_spam_num`, `bayes_min_ham_num`).
    ///
    /// A lopsided training does worse than the starter alone, one way or the other (`Scripts/half-train.sh
    /// --train-ham K` and `--train-pitches K`, nine sets each its own mailbox; the README has the figures): filed
    /// pitches beside a few ham flag a ham or two, and a mailbox of ham beside a few pitches, even weighed
    /// (`ownHamWeight`), flags a few pitches fewer. Before the ham was weighed, two ways of holding more back were
    /// measured and not taken. Pitches / ham flagged of 750 / 770, then → tried:
    /// - Own counts left out until 25 ham are trained: half the pitches beside 1, 5 and 20 ham 724 / 2, 718 / 2 and
    ///   699 / 1 → 712 / 0 each. But a user's own ham keeps the starter's false positives off long before that:
    ///   every k-th of our ten sets' pitches and of the SpamAssassin ham trained, the rest classified, 100 pitches
    ///   beside 5 ham flagged none of the other 4,145 ham, and 10 held back; 20 beside 20, none of 4,130 and 9.
    /// - The tokens the starter model has no counts for scored against the user's totals alone, as `LocalTokens`'
    ///   are (in both classes of a mailbox, its owner's name is none of the starter's concern): half the ham beside
    ///   1, 5 and 20 pitches 683, 678 and 673 → 693, 685 and 680; half the pitches beside 1, 5 and 20 ham
    ///   724 / 2, 718 / 2 and 699 / 1 → 723 / 1, 713 / 0 and 694 / 1. But the SpamAssassin corpus's 400 + 1,500 by
    ///   halves flagged 7 ham where 3, and unseen's and business's pitches against its ham by halves 1 ham each
    ///   where none: the words of its ham that the few pitches lack lose their weight too.
    public static func scoredOwnTotals(_ own: ClassTotals) -> ClassTotals {
        own.pitch > 0 && own.ham > 0 ? own : ClassTotals()
    }

    /// What each of the user's ham counts for, beside the starter model's counts, in every token but the local ones
    /// (`StarterModel.combined`): while the user has trained more ham than pitches, as many ham as pitches in all,
    /// up to `slideFrom` pitches; from there the weight slides to one on the log scale the settings slide on.
    ///
    /// The user's counts are added to the starter's in each class. Most people train far more of their own mail
    /// than pitches, and the words all their mail shares (their name, their company's, their trade's) then stand in
    /// the ham side's counts tens of times and in the pitch side's a few: against the starter's totals, about equal
    /// in both classes, they read as strong ham evidence in every pitch sent to that mailbox, though the user's own
    /// pitches have them as often as the user's ham. Weighed down to the pitches' number, the user's ham dilutes
    /// the starter's counts in both classes alike; a word the starter has never seen (the owner's name, most
    /// often) is weighed too, against totals that include the starter's. Not the local tokens (`LocalTokens`): the
    /// starter carries none, and they are scored against the user's own totals already.
    ///
    /// Pitches / ham flagged, before → after:
    /// - Each of the nine English sets as its own mailbox, half its ham and the first 1, 5 or 20 of the other
    ///   half's pitches trained, the rest classified (`Scripts/half-train.sh --train-pitches K`): 683, 678 and 673
    ///   → 708, 698 and 689 of 750 pitches (711 out of the box), no ham of 770 either way.
    /// - Every k-th of the ten sets' pitches beside 300 of their ham, the rest classified: 1 pitch 664 → 721 of
    ///   765, 10: 644 → 702 of 756, 30: 633 → 681 of 736, 100: 614 → 632 of 666; none of the 530 ham either way.
    ///   Beside 2,075 of the SpamAssassin corpus's ham instead: 1 pitch 700 / 1 → 728 / 1 of 2,075 ham; 10: 706 / 0
    ///   → 737 / 1; 30: 709 / 0 → 726 / 0; 100: 662 / 0 → 653 / 0.
    /// - One set's pitches against the SpamAssassin ham by halves: business 76 → 78 of 80, outside 79 → 80, foreign
    ///   16 → 15, all ten sets 747 → 746 of 766; no ham of 4,150 either way. Its 400 spam + 1,500 ham by halves:
    ///   310 / 3 → 310 / 2.
    /// - Out of the box, and every half-trained set alone or pooled (as many ham as pitches): unchanged.
    /// Weighed so at any size (P / H, no slide), the SpamAssassin 400 + 1,500 flagged 337 spam and 7 ham: its
    /// commercial ham (hard-ham's offers and newsletters) lost the weight of 750 trained ham against 200 spam.
    public func ownHamWeight(for own: ClassTotals) -> Double {
        guard own.pitch > 0, own.ham > own.pitch else { return 1 }
        let balanced = Double(own.pitch) / Double(own.ham)
        guard own.pitch > slideFrom else { return balanced }
        guard own.pitch < starterUntil else { return 1 }
        let t = log(Double(own.pitch) / Double(slideFrom)) / log(Double(starterUntil) / Double(slideFrom))
        return pow(balanced, 1 - t)
    }

    /// Whether a database with this `StarterAgreement` agrees with the starter model.
    public func agrees(_ agreement: Double?) -> Bool {
        agreement.map { $0 >= agreementThreshold } ?? false
    }

    /// The settings for a database with these totals and this `StarterAgreement`, scored with the starter
    /// model's counts added or (`withStarter` false: none built in, or `eval --without-starter`) without: then
    /// `ownParameters` (or `agreedParameters`) at any size, a large database's settings, since the starter's settings
    /// are for the starter's counts (`eval --as-starter` makes them its own).
    public func parameters(for own: ClassTotals, agreement: Double?, withStarter: Bool) -> ClassifierParameters {
        if withStarter { return parameters(for: own, agreement: agreement) }
        return agrees(agreement) ? agreedParameters : ownParameters
    }

    /// The settings for a database with these totals and this `StarterAgreement` (nil: not measured).
    public func parameters(for own: ClassTotals, agreement: Double? = nil) -> ClassifierParameters {
        guard !agrees(agreement) else {
            var agreeing = self
            agreeing.ownParameters = agreedParameters
            return agreeing.parameters(for: own)
        }
        let trained = min(own.pitch, own.ham)
        guard trained > slideFrom else {
            var parameters = starterParameters
            parameters.pitchCutoff = pitchCutoff(for: trained)
            return parameters
        }
        guard trained < starterUntil else { return ownParameters }
        let t = log(Double(trained) / Double(slideFrom)) / log(Double(starterUntil) / Double(slideFrom))
        func slide(_ from: Double, _ to: Double) -> Double { from + (to - from) * t }
        return ClassifierParameters(
            strength: exp(slide(log(starterParameters.strength), log(ownParameters.strength))),
            prior: slide(starterParameters.prior, ownParameters.prior),
            minDeviation: slide(starterParameters.minDeviation, ownParameters.minDeviation),
            pitchCutoff: pitchCutoff(for: trained),
            hamCutoff: slide(starterParameters.hamCutoff, ownParameters.hamCutoff),
            // The text's weight stays the starter's until the database's own model takes over: tuned for thousands of
            // messages, 1/3 in the slide left more SpamAssassin spam unsure or called ham (SA 325 2-fold: 282 called
            // pitch and 8 called ham, against 286 and 5 with the starter's weight kept; 5-fold 287 and 1 against
            // 296 and 0).
            textWeight: starterParameters.textWeight,
            // Likewise the decisive-evidence rule: on 632 + 1,000 SpamAssassin subsets it flagged 2 more ham even
            // with a database's own model (`ClassifierParameters.default`); with the starter's counts, 1 more.
            decisivePitchTail: starterParameters.decisivePitchTail, absentHamTail: starterParameters.absentHamTail,
            imbalancePseudoCount: slide(starterParameters.imbalancePseudoCount, ownParameters.imbalancePseudoCount))
    }
}

extension ModelSchedule {
    /// The pitch cutoff untrained, and once the user's own training decides alone: what `serve --check` shows.
    public var pitchCutoffs: (untrained: Double, trained: Double) {
        (pitchCutoff(for: 0), pitchCutoff(for: starterUntil))
    }

    /// The starter's pitch cutoff untrained, rising evenly on a log scale of the training to the own model's at
    /// `starterUntil` (see the type's comment for why it starts at once).
    func pitchCutoff(for trained: Int) -> Double {
        guard trained > 0 else { return starterParameters.pitchCutoff }
        guard trained < starterUntil else { return ownParameters.pitchCutoff }
        let t = log(Double(trained)) / log(Double(starterUntil))
        return starterParameters.pitchCutoff + (ownParameters.pitchCutoff - starterParameters.pitchCutoff) * t
    }
}

/// Where the verdicts change: scores at or above `pitch` are pitches, at or below `ham` ham, unsure between.
public struct Cutoffs: Sendable, Equatable {
    public var pitch: Double
    public var ham: Double

    /// The cutoffs every schedule starts with (`ClassifierParameters.default` has the measurements).
    public static let standard = Cutoffs(pitch: ClassifierParameters.default.pitchCutoff,
                                         ham: ClassifierParameters.default.hamCutoff)!  // 0.9 and 0.2

    /// Nil unless 0 ≤ ham < pitch ≤ 1.
    public init?(pitch: Double, ham: Double) {
        guard pitch.isFinite, ham.isFinite, 0 <= ham, ham < pitch, pitch <= 1 else { return nil }
        self.pitch = pitch
        self.ham = ham
    }
}
