import CoreMetrics
import PitchClassifier

/// What the service counts, through the swift-metrics API: the Prometheus endpoint (`[metrics]`, `MetricsServer`)
/// shows them, and without it every call is a no-op. Names follow Prometheus's conventions (a unit suffix,
/// `_total` on counters) so that dashboards need no relabelling.
///
/// The metrics are made once, on first use, which `prime()` brings forward to right after the metrics system is
/// bootstrapped: every series is then shown from the start (a counter that appears at 1 hides its first event
/// from `rate()`), and a message costs no lookup in the registry, whose lock every session would share.
enum ServiceMetrics {
    /// Where a message was classified.
    enum Source: String, CaseIterable {
        case maildir, milter
    }

    /// Classification time's histogram buckets, in seconds: a message takes about a millisecond, a large one
    /// tens; the registry's default buckets start at 5 ms and would hold nearly everything in the first.
    static let classificationBuckets: [Duration] = [
        .microseconds(250), .microseconds(500), .milliseconds(1), .milliseconds(2), .milliseconds(5),
        .milliseconds(10), .milliseconds(25), .milliseconds(50), .milliseconds(100), .milliseconds(250),
        .milliseconds(500), .seconds(1), .seconds(5),
    ]
    static let classificationLabel = "pitchfilter_classification_seconds"

    private static let messages: [Source: [Verdict: Counter]] = Dictionary(uniqueKeysWithValues: Source.allCases.map {
        source in
        (source, Dictionary(uniqueKeysWithValues: Verdict.allCases.map { verdict in
            (verdict, Counter(label: "pitchfilter_messages_total",
                              dimensions: [("source", source.rawValue), ("verdict", verdict.rawValue)]))
        }))
    })
    private static let durations: [Source: Timer] = Dictionary(uniqueKeysWithValues: Source.allCases.map {
        ($0, Timer(label: classificationLabel, dimensions: [("source", $0.rawValue)]))
    })
    private static let unclassified: [Source: Counter] = Dictionary(uniqueKeysWithValues: Source.allCases.map {
        ($0, Counter(label: "pitchfilter_messages_unclassified_total", dimensions: [("source", $0.rawValue)]))
    })
    private static let quarantines: [Source: Counter] = Dictionary(uniqueKeysWithValues: Source.allCases.map {
        ($0, Counter(label: "pitchfilter_quarantined_total", dimensions: [("source", $0.rawValue)]))
    })
    private static let lessons: [MessageClass: Counter] = Dictionary(uniqueKeysWithValues: MessageClass.allCases.map {
        ($0, Counter(label: "pitchfilter_learned_from_moves_total", dimensions: [("class", $0.rawValue)]))
    })
    private static let outboundMessages = Counter(label: "pitchfilter_outbound_messages_total")

    /// Makes every metric now, so that each series is shown at 0 before its first event.
    static func prime() {
        _ = (messages, durations, unclassified, quarantines, lessons, outboundMessages)
    }

    /// A message classified, by verdict, and how long that took.
    static func classified(_ verdict: Verdict, source: Source, seconds: Double) {
        messages[source]?[verdict]?.increment()
        durations[source]?.recordNanoseconds(Int64((seconds * 1e9).rounded()))
    }

    /// A message that would have been classified, let through untouched without a verdict: too large, or (the
    /// milter) a failure the log names.
    static func passedUnclassified(source: Source) {
        unclassified[source]?.increment()
    }

    /// A pitch moved into a quarantine folder, or held in Postfix's queue.
    static func quarantined(source: Source) {
        quarantines[source]?.increment()
    }

    /// A lesson from the user: a message moved out of quarantine (ham) or into it (pitch).
    static func learnedFromUser(_ lesson: MessageClass) {
        lessons[lesson]?.increment()
    }

    /// Outbound mail seen by the milter, whose recipients become correspondents.
    static func outbound() {
        outboundMessages.increment()
    }
}
