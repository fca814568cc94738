import CoreMetrics
import PitchClassifier

/// What the service counts, through the swift-metrics API: the Prometheus endpoint (`[metrics]`, `MetricsServer`)
/// shows them, and without it every call is a no-op. Names follow Prometheus's conventions (a unit suffix,
/// `_total` on counters) so that dashboards need no relabelling.
enum ServiceMetrics {
    /// Where a message was classified.
    enum Source: String {
        case maildir, milter
    }

    /// A message classified, by verdict.
    static func classified(_ verdict: Verdict, source: Source, seconds: Double) {
        Counter(label: "pitchfilter_messages_total",
                dimensions: [("source", source.rawValue), ("verdict", verdict.rawValue)]).increment()
        Timer(label: "pitchfilter_classification_seconds", dimensions: [("source", source.rawValue)])
            .recordNanoseconds(Int64((seconds * 1e9).rounded()))
    }

    /// A message let through untouched, without a verdict: too large, or a failure (the log says which).
    static func passedUnclassified(source: Source) {
        Counter(label: "pitchfilter_messages_unclassified_total", dimensions: [("source", source.rawValue)])
            .increment()
    }

    /// A pitch moved into a quarantine folder, or held in Postfix's queue.
    static func quarantined(source: Source) {
        Counter(label: "pitchfilter_quarantined_total", dimensions: [("source", source.rawValue)]).increment()
    }

    /// A lesson from the user: a message moved out of quarantine (ham) or into it (pitch).
    static func learnedFromUser(_ lesson: String) {
        Counter(label: "pitchfilter_learned_from_moves_total", dimensions: [("class", lesson)]).increment()
    }

    /// Outbound mail seen by the milter, whose recipients become correspondents.
    static func outbound() {
        Counter(label: "pitchfilter_outbound_messages_total").increment()
    }
}
