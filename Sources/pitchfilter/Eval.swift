import ArgumentParser
import PitchClassifier
import PitchCommandLine
import PitchEngine
import PitchMessage
import PitchStore
import PitchTokenizer

#if canImport(Glibc)
import Glibc
#endif

extension Cutoffs {
    /// The lowest and highest of one cutoff over the folds of an evaluation.
    struct Range {
        var low: Double
        var high: Double
    }
}

/// Whether each fold's model is the one the filter would use (the starter model's counts added while the training
/// is small), the user's own training alone, or a starter model of its own: the training built and scored as the
/// embedded one is. None given: the filter's, when this build has a starter model.
enum StarterUse: EnumerableFlag {
    case withStarter
    case withoutStarter
    case asStarter

    static func help(for value: StarterUse) -> ArgumentHelp? {
        switch value {
        case .withStarter:
            ArgumentHelp("Score each fold as the filter would after that training: the starter model's counts added "
                + "while it is small. The default; given explicitly, an error if this build has no starter model.")
        case .withoutStarter:
            ArgumentHelp("Score each fold with its own training alone, with the settings of a large database.")
        case .asStarter:
            ArgumentHelp("Build each fold's model as the embedded starter model is built, from the tokens that mean "
                + "the same in anyone's mail (no header fields, MIME structure or links), and score it with the "
                + "starter model's settings (which the classifier options replace), without the embedded one: "
                + "what a starter model made of --pitch and --ham would do out of the box.")
        }
    }
}

/// What `--without-signal` can leave out: the tokenizer's form-letter signals, and the signals that come from the
/// mailbox's history (without --replay, the relationship signal is the colleague mark alone, and there is no
/// template signal to leave out).
enum EvalSignal: String, CaseIterable, ExpressibleByArgument {
    case merge, thread, optout, bump, relationship, template

    var formLetter: FormLetterSignal? { FormLetterSignal(rawValue: rawValue) }
    var history: HistorySignal? { HistorySignal(rawValue: rawValue) }
}

struct Eval: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "eval",
        abstract: "Cross-validate on your own mail: how well would pitchfilter separate it?",
        discussion: """
            The messages are split into folds: per PATH, in byte-wise name order, the message at index i is in \
            fold i mod k; the message files given one by one for a class (a shell glob) count as one PATH. For \
            each fold a model is trained on the other folds and classifies that one; the verdicts of all folds are \
            summed. Nothing is read from or written to your database. Each fold is scored with the model the \
            filter would use after that training: while a fold's model has learned fewer than 500 of either \
            class, the embedded starter model's counts are added, with the settings and cutoffs for that stage \
            (the mailbox's history only with --replay, see below). A fold whose training agrees with the \
            starter model's, as `stats` says of a database, keeps the starter's counts past 500 and is scored \
            with the settings for pitches against business mail. Leave the starter model's own samples \
            (samples/corpus) out of the messages, or they are counted twice (--as-starter, below, adds no \
            embedded model). --without-starter measures your own \
            training alone, with the settings of a large database. --as-starter builds each fold's model as \
            the starter model is built, from the tokens that mean the same in anyone's mail, and scores it with \
            the starter model's settings: what a starter model made of --pitch and --ham would do out of the box \
            (--pitch samples/corpus/pitch --ham samples/corpus/ham --test-pitch … --test-ham … measures the \
            embedded model on other mail: the verdicts of `classify` on an empty database).

            --strength, --prior, --min-deviation and --text-weight replace the settings of a large database, to \
            try others on your own mail; while the starter model is added, s, x and min_dev slide towards them, \
            and the text weight and the decisive-evidence rule apply only once a fold has 500 of each class. \
            --pitch-cutoff and --ham-cutoff other than the defaults (0.9 and 0.2) apply at every stage, as \
            pitch_cutoff and ham_cutoff in the configuration do (which apply when the options are not given, as \
            in filter and classify), and a pitch cutoff other than the default turns that rule off. Each file \
            counts as a message of its own, even an exact copy of another. PATH is a message file, a directory \
            of message files, a Maildir or an mbox.

            With --replay, the messages are first replayed in date order as a mailbox receives them, with \
            --sent as the owner's outgoing mail, so the relationship and template signals see what came \
            before each message: ham senders and the recipients of sent mail become contacts, every message's \
            skeleton is remembered. Without it, every message is read as by a filter whose database knows \
            nobody yet: no contacts and no templates, but mail from the recipient's own domain is marked as a \
            colleague's, as on any database (--without-signal relationship leaves that out too, and \
            --without-signal template changes nothing).
            """)

    @Option(parsing: .upToNextOption, help: ArgumentHelp("Pitches (cold pitches you did not want).", valueName: "path"))
    var pitch: [String] = []
    @Option(parsing: .upToNextOption, help: ArgumentHelp("Legitimate mail.", valueName: "path"))
    var ham: [String] = []
    @Option(name: .customLong("folds"), parsing: .unconditional,
            help: "Number of folds, from 2 to 100 (default: 5); not with --test-pitch.")
    var foldsGiven: Int?
    var folds: Int { foldsGiven ?? 5 }
    @Option(parsing: .upToNextOption, help: ArgumentHelp(
        "Instead of cross-validating, train on --pitch and --ham and classify these pitches.", valueName: "path"))
    var testPitch: [String] = []
    @Option(parsing: .upToNextOption, help: ArgumentHelp("Ham to classify, with --test-pitch.", valueName: "path"))
    var testHam: [String] = []

    /// Train on one set and test on another, rather than cross-validate one set.
    var isHoldout: Bool { !testPitch.isEmpty || !testHam.isEmpty }
    @Flag(help: "One JSON object with every figure, for machines.") var json = false
    @Option(help: ArgumentHelp(
        "Leave out a signal, to see what it adds: \(EvalSignal.allCases.map(\.rawValue).joined(separator: ", ")).",
        valueName: "signal"))
    var withoutSignal: [EvalSignal] = []
    @Flag(help: "Replay the messages in date order, for the signals that depend on the mailbox's history.")
    var replay = false
    @Option(parsing: .upToNextOption, help: ArgumentHelp(
        "The owner's sent mail, replayed with the rest (implies --replay).", valueName: "path"))
    var sent: [String] = []
    @Flag var starterUse: StarterUse?
    @OptionGroup(title: "Classifier settings (default: a database trained on 500 or more of each class)")
    var settings: ClassifierSettings
    @OptionGroup var configuration: ConfigurationOption

    var replaysHistory: Bool { replay || !sent.isEmpty }

    func validate() throws {
        if pitch.isEmpty || ham.isEmpty { throw ValidationError("Give both --pitch and --ham messages.") }
        if folds < 2 || folds > 100 { throw ValidationError("--folds must be between 2 and 100.") }
        if isHoldout, testPitch.isEmpty || testHam.isEmpty {
            throw ValidationError("Give both --test-pitch and --test-ham.")
        }
        // A holdout has no folds: taking --folds silently would let a user believe the figures were k-fold ones.
        if isHoldout, foldsGiven != nil {
            throw ValidationError("--folds has no meaning with --test-pitch and --test-ham, which train on --pitch "
                + "and --ham and classify the test sets once.")
        }
        if let (path, earlier, inside) = Self.pathGivenTwice(pitch + ham + testPitch + testHam) {
            let what = inside ? "is in \(TerminalText.safe(earlier)), which is given too"
                : path == earlier ? "is given twice" : "is \(TerminalText.safe(earlier)) again"
            throw ValidationError("\(TerminalText.safe(path)) \(what): its messages would be counted twice, or as "
                + "both classes.")
        }
        try settings.validate()
    }

    /// A PATH that reads messages another one reads too, and that one; nil when none does. The same file or folder
    /// (through links and "..", as realpath(3) resolves them, or a hard link: one device and inode), or a file in a
    /// folder given, or a Maildir's new/ or cur/ (or a file in one) given with it. A folder given twice doubled its
    /// messages in every fold; a file also given in its folder was learned as both classes (found in review).
    static func pathGivenTwice(_ paths: [String]) -> (path: String, earlier: String, inside: Bool)? {
        struct Identity: Hashable { var device: UInt; var inode: UInt }
        var seen: [Identity: String] = [:]
        var folders: [String: String] = [:]  // resolved folder → as given
        var files: [(resolved: String, given: String)] = []
        for path in paths {
            let resolved = realpath(path, nil).map { pointer in
                defer { free(pointer) }
                return String(cString: pointer)
            } ?? path
            var info = stat()
            guard stat(resolved, &info) == 0 else { continue }  // unreadable: named when it is read
            let identity = Identity(device: UInt(info.st_dev), inode: UInt(info.st_ino))
            if let earlier = seen[identity] { return (path, earlier, false) }
            seen[identity] = path
            if info.st_mode & S_IFMT == S_IFDIR { folders[resolved] = path } else { files.append((resolved, path)) }
        }
        func parent(_ path: String) -> String { String(path[..<(path.lastIndex(of: "/") ?? path.startIndex)]) }
        // A Maildir given reads its new/ and cur/: either, or a file in either, given too is read twice.
        func inGivenMaildir(_ folder: String) -> String? {
            guard ["new", "cur"].contains(folder.split(separator: "/").last ?? ""),
                  let maildir = folders[parent(folder)], MailSource.isMaildir(parent(folder)) else { return nil }
            return maildir
        }
        // Either order on the command line: a file given before its folder too.
        for file in files {
            if let folder = folders[parent(file.resolved)] ?? inGivenMaildir(parent(file.resolved)) {
                return (file.given, folder, true)
            }
        }
        for (resolved, given) in folders.sorted(by: { $0.key < $1.key }) {
            if let maildir = inGivenMaildir(resolved) { return (given, maildir, true) }
        }
        return nil
    }

    func run() throws {
        // As in the filter, a build without a starter model for its tokenizer scores with the user's counts alone;
        // only an explicit --with-starter makes that an error.
        let starter = starterUse == nil || starterUse == .withStarter ? StarterModel.embedded : nil
        if starterUse == .withStarter, starter == nil {
            Stores.reportLine("--with-starter: this executable has no starter model for tokenizer "
                + Tokenizer.identity)
            throw ExitCode(3)
        }
        // Each cutoff as given, else the configuration's (`[classifier]`), which `filter` and `classify` use; read
        // before the messages, so that a bad file fails at once.
        let configured = try CommandLineConfiguration.cutoffsForCommand()
        guard let cutoffs = Cutoffs(pitch: settings.pitchCutoff ?? configured.pitch,
                                    ham: settings.hamCutoff ?? configured.ham) else {
            throw ValidationError("The cutoffs must satisfy 0 ≤ ham cutoff < pitch cutoff ≤ 1; with the "
                + "configuration's they would be ham \(settings.hamCutoff ?? configured.ham) and pitch "
                + "\(settings.pitchCutoff ?? configured.pitch).")
        }
        // Not an error: a script that leaves out each signal in turn gets its figures, which are the same with it.
        if !replaysHistory, withoutSignal.contains(.template) {
            Stores.reportLine("note: without --replay there is no template memory, so the template signal is left "
                + "out either way")
        }
        let signals = Set(FormLetterSignal.allCases).subtracting(withoutSignal.compactMap(\.formLetter))
        let tokenizer = Tokenizer(signals: signals, ownFields: try CommandLineConfiguration.ownFieldsForCommand())
        var samples: [CrossValidation.Sample] = []
        // Each sample's message digest, in the same order, to say which messages were given twice.
        var digests: [[UInt8]] = []
        var failed = 0
        let unreadable = { (error: MailSourceError) in Stores.report(error); failed += 1 }
        // Cross-validation puts the message at index i of each PATH in fold i mod k. A holdout run puts the test
        // sets in fold 0, which is scored, and the training sets in fold 1, which only trains.
        let sets: [([String], MessageClass, Int?)] = isHoldout
            ? [(pitch, .pitch, 1), (ham, .ham, 1), (testPitch, .pitch, 0), (testHam, .ham, 0)]
            : [(pitch, .pitch, nil), (ham, .ham, nil)]
        if replaysHistory {
            (samples, digests) = try replayed(sets, tokenizer: tokenizer, unreadable: unreadable)
        } else {
            // Tokenized as the filter tokenizes for a database that knows nobody yet: no contacts and no template
            // memory, but a colleague's mail is marked (`rel:own-domain`), as `classify` marks it on any database.
            // Without the mark, the evaluation left out ham evidence the filter always has: the starter's counts
            // for it are 2 pitches against 407 ham.
            let engine = Engine(store: nil, starter: nil,
                                contacts: withoutSignal.contains(.relationship) ? nil : ContactSnapshot.empty,
                                templates: nil, tokenizer: tokenizer)
            for (paths, truth, fixedFold) in sets {
                var loose: [LooseFile] = []
                for path in paths {
                    var index = 0
                    let first = samples.count
                    try MailSource.forEachBatchReadingAhead(at: [path], unreadable: unreadable) { batch in
                        let tokens = try Parallel.map(batch) { item in
                            Result {
                                let message = Message(bytes: item.bytes)
                                return (try engine.tokens(of: message, keepingTexts: false), engine.digest(of: message))
                            }
                        }.map { try $0.get() }
                        for (message, digest) in tokens {
                            samples.append(.init(truth: truth, fold: fixedFold ?? index % folds, message: message))
                            digests.append(digest)
                            index += 1
                        }
                    }
                    if fixedFold == nil, index == 1, LooseFile.isFile(path) { loose.append(LooseFile(path, first)) }
                }
                for (position, number) in LooseFile.numbered(loose) { samples[position].fold = number % folds }
            }
        }
        for note in Self.repeatNotes(zip(digests, samples).map { ($0, $1.truth, $1.fold) }, holdout: isHoldout) {
            Stores.reportLine(note)
        }
        // As the starter model is built: none of the tokens that only say how these messages were written.
        if starterUse == .asStarter { samples = samples.map(\.portable) }
        // A file that could not be read (said on stderr) leaves the rest to measure; the exit status still tells.
        let schedule = evaluatedSchedule(cutoffs)
        let validation = CrossValidation(folds: isHoldout ? 2 : folds, starter: starter, schedule: schedule)
        let results = validation.run(samples, scoredFolds: isHoldout ? [0] : nil,
                                     parallelMap: { Parallel.map($0, $1) })
        let report = EvaluationReport(results)
        for (truth, paths) in [(MessageClass.pitch, isHoldout ? testPitch : pitch), (.ham, isHoldout ? testHam : ham)]
        where report.total(truth) == 0 {
            // Each path given was named already, as unreadable or as holding no message (found in review: twice).
            if paths.isEmpty || failed == 0 {
                Stores.report(MailSourceError.unreadable(paths.joined(separator: " "),
                                                         "no \(truth == .pitch ? "pitches" : "ham") to classify"))
            }
            throw ExitCode(3)
        }
        var trained = ClassTotals()
        for sample in samples where !isHoldout || sample.fold == 1 { trained[sample.truth] += 1 }
        // Per fold: the messages it classifies, and what its model learned (the rest; in a holdout, fold 1).
        let scoredFolds = isHoldout ? [0] : Array(0..<folds)
        var inFold = Array(repeating: ClassTotals(), count: isHoldout ? 2 : folds)
        for sample in samples { inFold[sample.fold][sample.truth] += 1 }
        if !isHoldout {
            for truth in [MessageClass.pitch, .ham] {
                let empty = scoredFolds.filter { inFold[$0][truth] == 0 }
                guard !empty.isEmpty else { continue }
                Stores.reportLine("note: \(empty.count) of the \(folds) folds have no "
                    + "\(truth == .pitch ? "pitches" : "ham") to classify (folds are per PATH)")
            }
        }
        // With the starter model, the cutoffs are those of the stage each fold's training reaches, as in the
        // filter: the range over the folds that classify something.
        let learnedByScoredFold = scoredFolds.filter { inFold[$0].pitch + inFold[$0].ham > 0 }.map { fold in
            isHoldout ? inFold[1] : ClassTotals(pitch: trained.pitch - inFold[fold].pitch,
                                                ham: trained.ham - inFold[fold].ham)
        }
        // Whether any fold's model had the starter's counts added: none has past 500 of each class, unless its
        // training agrees with the starter model. (The cutoffs are the same either way from there.)
        let addedStarter = results.contains { $0.withStarter }
        let used: [ClassifierParameters] = learnedByScoredFold.map { learned in
            schedule.parameters(for: learned, agreement: nil,
                                withStarter: starter != nil && schedule.addsStarter(to: learned))
        }
        func range(_ value: (ClassifierParameters) -> Double) -> Cutoffs.Range {
            let values = used.map(value)
            let own = value(schedule.ownParameters)
            return Cutoffs.Range(low: values.min() ?? own, high: values.max() ?? own)
        }
        let pitchCutoffs = range(\.pitchCutoff)
        let hamCutoffs = range(\.hamCutoff)
        let answer = json
            ? jsonText(report, pitchCutoffs: pitchCutoffs, hamCutoffs: hamCutoffs, trained: trained,
                       addedStarter: addedStarter, unreadable: failed)
            : text(report, pitchCutoffs: pitchCutoffs, hamCutoffs: hamCutoffs, trained: trained,
                   ownTrainingAlone: starter == nil, addedStarter: addedStarter, unreadable: failed)
        try Stores.writeAnswer(answer)
        if failed > 0 { throw ExitCode(3) }
    }

    /// The schedule the folds are scored by. Settings given replace a large database's, whether or not its
    /// training agrees with the starter model; with --as-starter they replace the starter model's, which then
    /// apply at every size (no embedded model is added, so the schedule's own stage is the only one reached).
    private func evaluatedSchedule(_ cutoffs: Cutoffs) -> ModelSchedule {
        let standard = ModelSchedule.standard
        let own = settings.parameters(over: starterUse == .asStarter ? standard.starterParameters
                                                                     : standard.ownParameters)
        let agreed = starterUse == .asStarter || settings.replacesSettings ? own : standard.agreedParameters
        return ModelSchedule(slideFrom: standard.slideFrom, starterUntil: standard.starterUntil,
                             starterParameters: standard.starterParameters, ownParameters: own,
                             agreedParameters: agreed).withCutoffs(cutoffs)
    }

    /// The samples of `sets` with their history signals: every message (and the sent mail) replayed in date order
    /// through one mailbox's memories, then assigned to folds as without --replay.
    private func replayed(_ sets: [([String], MessageClass, Int?)], tokenizer: Tokenizer,
                          unreadable: (MailSourceError) -> Void) throws
        -> (samples: [CrossValidation.Sample], digests: [[UInt8]]) {
        let signals = Set(HistorySignal.allCases).subtracting(withoutSignal.compactMap(\.history))
        let replay = MailboxReplay(tokenizer: tokenizer, signals: signals)
        // Each message is tokenized as it is read and kept as its tokens, not its bytes, until the replay.
        var arrivals: [MailboxReplay.Arrival] = []
        var placement: [(truth: MessageClass, fold: Int, digest: [UInt8])?] = []
        for path in sent {
            MailSource.forEach(at: path, unreadable: unreadable) { item in
                arrivals.append(replay.arrival(.sent(Message(bytes: item.bytes))))
                placement.append(nil)
            }
        }
        for (paths, truth, fixedFold) in sets {
            var loose: [LooseFile] = []
            for path in paths {
                var index = 0
                let first = placement.count
                MailSource.forEach(at: path, unreadable: unreadable) { item in
                    let arrival = replay.arrival(.received(Message(bytes: item.bytes), truth))
                    // The replay hashed the message already.
                    guard case .received(_, _, let digest, _) = arrival.kind else { return }
                    arrivals.append(arrival)
                    placement.append((truth, fixedFold ?? index % folds, digest))
                    index += 1
                }
                if fixedFold == nil, index == 1, LooseFile.isFile(path) { loose.append(LooseFile(path, first)) }
            }
            for (position, number) in LooseFile.numbered(loose) { placement[position]?.fold = number % folds }
        }
        let tokens = try replay.tokens(of: arrivals)
        let kept = zip(placement, tokens).compactMap { placement, message in
            placement.flatMap { placement in message.map { (placement, $0) } }
        }
        return (kept.map { placement, message in
                    CrossValidation.Sample(truth: placement.truth, fold: placement.fold, message: message)
                }, kept.map(\.0.digest))
    }

    /// What an admin should hear about messages given more than once (by digest, as `train`'s ledger knows them):
    /// in both classes, a contradiction no filter can get right; in one class, copies that count as messages of
    /// their own (in other folds, a model is tested on a message it learned), where `train` would learn each once.
    /// Found by an audit: an evaluation of folders that shared messages said nothing of it. In a holdout, only the
    /// test sets (fold 0) are scored: a repeat among them is said so, and a test message also in the training sets
    /// is a model tested on what it learned (found in review: the notes counted the training copies as scored).
    static func repeatNotes(_ messages: [([UInt8], MessageClass, fold: Int)], holdout: Bool) -> [String] {
        let scored = holdout ? messages.filter { $0.fold == 0 } : messages
        var classes: [[UInt8]: (pitch: Int, ham: Int)] = [:]
        for (digest, truth, _) in scored {
            if truth == .pitch { classes[digest, default: (0, 0)].pitch += 1 } else { classes[digest, default: (0, 0)].ham += 1 }
        }
        let both = classes.values.count { $0.pitch > 0 && $0.ham > 0 }
        let copies = classes.values.reduce(0) { $0 + max($1.pitch - 1, 0) + max($1.ham - 1, 0) }
        var notes: [String] = []
        if holdout {
            let trained = Set(messages.filter { $0.fold != 0 }.map(\.0))
            let leaked = Set(scored.map(\.0)).intersection(trained).count
            if leaked > 0 {
                notes.append("note: \(leaked) test message\(leaked == 1 ? " is" : "s are") in the training sets too: "
                    + "the model is tested on what it learned")
            }
        }
        if both > 0 {
            notes.append("note: \(both) message\(both == 1 ? " is" : "s are") given as both pitch and ham (the same "
                + "message, by its digest): no verdict can be right for both of its copies")
        }
        if copies > 0 {
            notes.append("note: \(copies) more cop\(copies == 1 ? "y" : "ies") of messages given in the same class: "
                + "each counts as a message of its own (train learns each message once)")
        }
        return notes
    }

    private func text(_ report: EvaluationReport, pitchCutoffs: Cutoffs.Range, hamCutoffs: Cutoffs.Range,
                      trained samplesTrained: ClassTotals, ownTrainingAlone: Bool, addedStarter: Bool,
                      unreadable: Int) -> String {
        let pitches = report.total(.pitch)
        let hams = report.total(.ham)
        var lines = [
            (isHoldout
                ? "trained on \(samplesTrained.pitch) pitches and \(samplesTrained.ham) ham, tested on \(pitches) pitches, \(hams) ham"
                : "\(folds)-fold cross-validation: \(pitches) \(pitches == 1 ? "pitch" : "pitches"), \(hams) ham")
                + "; cutoffs pitch ≥ \(shown(pitchCutoffs)), ham ≤ \(shown(hamCutoffs)); " + Engine.version
                + (addedStarter ? "; with the starter model" : "")
                + (starterUse == .asStarter ? "; built and scored as the starter model"
                    : ownTrainingAlone ? "; own training alone" : "")
                + (replaysHistory ? "; history replayed" + (sent.isEmpty ? "" : " with sent mail") : "")
                + (withoutSignal.isEmpty ? "" : "; without " + withoutSignal.map(\.rawValue).joined(separator: ", ")),
            "",
            "called as:   pitch  unsure     ham",
        ]
        if unreadable > 0 {
            lines.insert("\(unreadable) file(s) or folder(s) could not be read or held no message (see above)", at: 1)
        }
        for truth in [MessageClass.pitch, .ham] {
            let cells = [Verdict.pitch, .unsure, .ham].map { pad(String(report.count(truth, calledAs: $0)), 8) }
            lines.append(pad(truth.rawValue, 10, left: true) + cells.joined())  // under "called as:"
        }
        lines += [
            "",
            "false positives (ham called pitch):  \(report.falsePositives) of \(hams) (\(percent(report.falsePositives, hams)))",
            "false negatives (pitch called ham):  \(report.falseNegatives) of \(pitches) (\(percent(report.falseNegatives, pitches)))",
            "unsure:  \(report.count(.pitch, calledAs: .unsure)) pitches, \(report.count(.ham, calledAs: .unsure)) ham",
            "1-AUC:   \(Self.decimal(report.oneMinusAUC * 100, places: 4)) %",
            "mean score:  pitches \(report.meanScore[.pitch].map { Self.decimal($0, places: 4) } ?? "-"), "
                + "ham \(report.meanScore[.ham].map { Self.decimal($0, places: 4) } ?? "-")",
            "",
            "score         pitch     ham",
        ]
        let bins = EvaluationReport.histogramBins
        for (bin, counts) in report.histogram.enumerated() {
            let from = Self.decimal(Double(bin) / Double(bins), places: 2)
            let to = Self.decimal(Double(bin + 1) / Double(bins), places: 2)
            lines.append("\(from)-\(to) " + pad(String(counts.pitch), 8) + pad(String(counts.ham), 8))
        }
        return lines.joined(separator: "\n")
    }

    private func jsonText(_ report: EvaluationReport, pitchCutoffs: Cutoffs.Range, hamCutoffs: Cutoffs.Range,
                          trained: ClassTotals, addedStarter: Bool, unreadable: Int) -> String {
        func counts(_ truth: MessageClass) -> [String: Int] {
            Dictionary(uniqueKeysWithValues: Verdict.allCases.map { ($0.rawValue, report.count(truth, calledAs: $0)) })
        }
        let bins = EvaluationReport.histogramBins
        return JSON.line(Summary(
            mode: isHoldout ? "holdout" : "cross-validation", folds: isHoldout ? nil : folds,
            trained_pitch: trained.pitch, trained_ham: trained.ham,
            version: Engine.version, with_starter: addedStarter, as_starter: starterUse == .asStarter,
            replayed: replaysHistory, without_signals: withoutSignal.map(\.rawValue),
            pitch_cutoff: pitchCutoffs.low, pitch_cutoff_highest: pitchCutoffs.high, ham_cutoff: hamCutoffs.low,
            ham_cutoff_highest: hamCutoffs.high,
            pitch: counts(.pitch), ham: counts(.ham),
            false_positives: report.falsePositives, false_negatives: report.falseNegatives,
            false_positive_rate: Double(report.falsePositives) / Double(report.total(.ham)),
            false_negative_rate: Double(report.falseNegatives) / Double(report.total(.pitch)),
            false_positive_percent: Double(report.falsePositives) / Double(report.total(.ham)) * 100,
            false_negative_percent: Double(report.falseNegatives) / Double(report.total(.pitch)) * 100,
            one_minus_auc_percent: report.oneMinusAUC * 100,
            mean_score_pitch: report.meanScore[.pitch], mean_score_ham: report.meanScore[.ham],
            unreadable_files: unreadable,
            histogram: report.histogram.enumerated().map { bin, counts in
                Summary.Bin(from: Double(bin) / Double(bins), to: Double(bin + 1) / Double(bins),
                            pitch: counts.pitch, ham: counts.ham)
            }))
    }

    /// The `--json` object; field names are the JSON keys.
    struct Summary: Encodable {
        struct Bin: Encodable {
            var from: Double
            var to: Double
            var pitch: Int
            var ham: Int
        }

        /// "cross-validation", or "holdout" with --test-pitch/--test-ham (folds null).
        var mode: String
        @NullWhenAbsent var folds: Int?
        /// Messages the model(s) learned from: all of them in cross-validation (each fold's model has the others).
        var trained_pitch: Int
        var trained_ham: Int
        var version: String
        /// Whether the starter model's counts were added to any fold's model: while a fold had learned fewer than 500
        /// of either class, unless --without-starter or --as-starter.
        var with_starter: Bool
        /// Whether the models were built and scored as the starter model is (--as-starter).
        var as_starter: Bool
        /// Whether the history was replayed (--replay or --sent).
        var replayed: Bool
        var without_signals: [String]
        /// The pitch cutoff applied; with the starter model each fold's stage has its own, from this to the highest.
        var pitch_cutoff: Double
        var pitch_cutoff_highest: Double
        var ham_cutoff: Double
        var ham_cutoff_highest: Double
        /// Verdicts of the pitches (the true class is the key outside): "pitch", "unsure", "ham" → count.
        var pitch: [String: Int]
        /// Verdicts of the ham.
        var ham: [String: Int]
        var false_positives: Int
        var false_negatives: Int
        /// Fractions (0–1) of the ham, and of the pitches; the `_percent` keys hold the same in percent.
        var false_positive_rate: Double
        var false_negative_rate: Double
        var false_positive_percent: Double
        var false_negative_percent: Double
        var one_minus_auc_percent: Double
        /// Each class's mean score; null for a class with no message.
        @NullWhenAbsent var mean_score_pitch: Double?
        @NullWhenAbsent var mean_score_ham: Double?
        /// Files given that could not be read, or held no message (each said on stderr); not counted.
        var unreadable_files: Int
        var histogram: [Bin]
    }

    private func pad(_ text: String, _ width: Int, left: Bool = false) -> String {
        let padding = String(repeating: " ", count: max(width - text.count, 0))
        return left ? text + padding : padding + text
    }

    private func percent(_ count: Int, _ total: Int) -> String {
        Self.decimal(Double(count) / Double(total) * 100, places: 3) + " %"
    }

    /// One cutoff, or the folds' range ("0.8405–0.8473 by fold").
    private func shown(_ range: Cutoffs.Range) -> String {
        range.high > range.low ? "\(Self.short(range.low))–\(Self.short(range.high)) by fold" : Self.short(range.low)
    }

    /// Up to four decimals, without trailing zeros: 0.9, 0.8412; more, up to ten, where four would show a value
    /// inside (0, 1) as 0 or 1 (found by an audit: a cutoff of 0.99999999 was shown as 1.0, which nothing reaches).
    static func short(_ value: Double) -> String {
        let places = (4...10).first { places in
            let shown = Double(decimal(value, places: places)) ?? value
            return !(value > 0 && value < 1 && (shown == 0 || shown == 1))
        } ?? 10
        var text = decimal(value, places: places)
        while text.hasSuffix("0") { text.removeLast() }
        return text.hasSuffix(".") ? text + "0" : text
    }

    /// Fixed decimals without Foundation's String(format:).
    static func decimal(_ value: Double, places: Int) -> String {
        var scale = 1.0
        for _ in 0..<places { scale *= 10 }
        let scaled = Int((value * scale).rounded())
        let whole = String(scaled / Int(scale))
        let fraction = String(scaled % Int(scale))
        return whole + "." + String(repeating: "0", count: places - fraction.count) + fraction
    }
}

/// Robinson's knobs, for trying other settings on your own mail (as bogotune does for bogofilter).
struct ClassifierSettings: ParsableArguments {
    // Unconditional: "-1" is a value here, and gets validate()'s range message rather than "Missing value" (found
    // by an audit).
    @Option(parsing: .unconditional, help: ArgumentHelp(
        "Robinson's s, the weight of the prior against a token's counts." + Self.shownDefault(\.strength),
        valueName: "s"))
    var strength: Double?
    @Option(parsing: .unconditional, help: ArgumentHelp(
        "Robinson's x, the probability of a token never seen." + Self.shownDefault(\.prior), valueName: "x"))
    var prior: Double?
    @Option(parsing: .unconditional, help: ArgumentHelp(
        "Tokens with |f(w) − 0.5| below this are left out." + Self.shownDefault(\.minDeviation), valueName: "d"))
    var minDeviation: Double?
    @Option(parsing: .unconditional, help: ArgumentHelp(
        "Scores at or above this are pitches." + Self.shownDefault(\.pitchCutoff), valueName: "score"))
    var pitchCutoff: Double?
    @Option(parsing: .unconditional, help: ArgumentHelp(
        "Scores at or below this are ham." + Self.shownDefault(\.hamCutoff), valueName: "score"))
    var hamCutoff: Double?
    @Option(parsing: .unconditional, help: ArgumentHelp(
        "How much a word or word pair of the text counts, against 1 for other tokens."
            + Self.shownDefault(\.textWeight), valueName: "w"))
    var textWeight: Double?

    /// " (default: 0.2)": the large-database value an option replaces, in its help. The options themselves have no
    /// default, since an absent one means "the schedule's own" (while the starter model is added, the slide's).
    static func shownDefault(_ setting: KeyPath<ClassifierParameters, Double>) -> String {
        let value = ModelSchedule.standard.ownParameters[keyPath: setting]
        let fraction = Classify.formatWeight(value)
        let shown = setting == \.textWeight && fraction.contains("/") ? fraction + " = " + Eval.short(value)
            : Eval.short(value)
        return " (default: \(shown))"
    }

    /// Whether any of s, x, min_dev or the text weight is given (the cutoffs apply through `Cutoffs`).
    var replacesSettings: Bool { strength != nil || prior != nil || minDeviation != nil || textWeight != nil }

    var parameters: ClassifierParameters { parameters(over: ModelSchedule.standard.ownParameters) }

    /// `base` with the settings given in its place.
    func parameters(over base: ClassifierParameters) -> ClassifierParameters {
        var parameters = base
        if let strength { parameters.strength = strength }
        if let prior { parameters.prior = prior }
        if let minDeviation { parameters.minDeviation = minDeviation }
        if let pitchCutoff { parameters = parameters.withPitchCutoff(pitchCutoff) }
        if let hamCutoff { parameters.hamCutoff = hamCutoff }
        if let textWeight { parameters.textWeight = textWeight }
        return parameters
    }

    func validate() throws {
        let p = parameters
        guard p.strength > 0, p.strength.isFinite else { throw ValidationError("--strength must be above 0.") }
        guard p.prior > 0, p.prior < 1 else { throw ValidationError("--prior must be between 0 and 1.") }
        guard p.minDeviation >= 0, p.minDeviation < 0.5 else {
            throw ValidationError("--min-deviation must be at least 0 and below 0.5.")
        }
        guard p.textWeight > 0, p.textWeight <= 1 else {
            throw ValidationError("--text-weight must be above 0 and at most 1.")
        }
        guard p.hamCutoff >= 0, p.hamCutoff < p.pitchCutoff, p.pitchCutoff <= 1 else {
            throw ValidationError("The cutoffs must satisfy 0 ≤ ham cutoff < pitch cutoff ≤ 1; these would be "
                + "ham \(p.hamCutoff) and pitch \(p.pitchCutoff).")
        }
    }
}

/// A message file given on its own, as a shell glob gives a folder's files. The files one class was given this way
/// are one folder together for the folds, numbered in byte-wise order of their paths: as folders of one message
/// each, all were message 0, so all fell in fold 0 and every fold but one had nothing to classify (found by an
/// audit: `eval --pitch pitch/*.eml --ham ham/*.eml` called every message unsure).
struct LooseFile {
    let path: String
    /// Where its message is among the samples read.
    let position: Int

    init(_ path: String, _ position: Int) {
        self.path = path
        self.position = position
    }

    /// A regular file (an mbox of several messages is a folder of its own, and standard input no file).
    static func isFile(_ path: String) -> Bool {
        var info = stat()
        return path != "-" && stat(path, &info) == 0 && info.st_mode & S_IFMT == S_IFREG
    }

    /// Each file's position among the samples with its number in the folder: byte-wise order of the paths, and a
    /// path given twice has one number, so that its two copies share a fold (else a model would be tested on the
    /// message it learned).
    static func numbered(_ files: [LooseFile]) -> [(position: Int, number: Int)] {
        let paths = Set(files.map(\.path)).sorted { $0.utf8.lexicographicallyPrecedes($1.utf8) }
        let number = Dictionary(uniqueKeysWithValues: paths.enumerated().map { ($1, $0) })
        return files.map { ($0.position, number[$0.path]!) }
    }
}
