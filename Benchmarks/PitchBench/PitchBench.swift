// pitch-bench: in-process figures for the message model and the tokenizer. Build in release:
//   swift run -c release pitch-bench parse [DIR ...]      parse + decode throughput over a corpus
//   swift run -c release pitch-bench tokenize [DIR ...]   parse + tokenize throughput, latency p50/p99
//   swift run -c release pitch-bench adversarial          time and peak RSS of each hostile input
import Foundation
import PitchMessage
import PitchTokenizer

#if canImport(Glibc)
import Glibc
#endif

@main
enum PitchBench {
    static func main() {
        let arguments = Array(CommandLine.arguments.dropFirst())
        switch arguments.first {
        case "parse": parseThroughput(Array(arguments.dropFirst()))
        case "tokenize": tokenizeThroughput(Array(arguments.dropFirst()))
        case "adversarial" where arguments.count == 1: adversarialSuite()
        case "adversarial": adversarialCase(arguments[1])
        default:
            FileHandle.standardError.write(Data("usage: pitch-bench parse [DIR ...] | tokenize [DIR ...] | adversarial [CASE]\n".utf8))
            exit(64)
        }
    }
}

func seconds(_ duration: Duration) -> Double {
    Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
}

/// Loads every file under the folders into memory first, so the figure is parsing, not disk.
func parseThroughput(_ folders: [String]) {
    let messages = loadMessages(folders)
    let totalBytes = messages.reduce(0) { $0 + $1.count }
    print("corpus: \(messages.count) messages, \(String(format: "%.1f", Double(totalBytes) / 1e6)) MB")
    var rates: [Double] = []
    var textBytes = 0
    for round in 1...5 {
        textBytes = 0
        let clock = ContinuousClock()
        let elapsed = clock.measure {
            for bytes in messages {
                let message = Message(bytes: bytes)
                for part in message.decodeText() { textBytes += part.text.utf8.count }
            }
        }
        let rate = Double(totalBytes) / 1e6 / seconds(elapsed)
        rates.append(rate)
        print(String(format: "round %d: %.3f s, %.1f MB/s, %.0f messages/s", round, seconds(elapsed), rate,
                     Double(messages.count) / seconds(elapsed)))
    }
    let median = rates.sorted()[rates.count / 2]
    print(String(format: "parse + decode (median of 5): %.1f MB/s on one core; %.1f MB of text decoded",
                 median, Double(textBytes) / 1e6))
}

/// Parse and tokenize, the per-message work of every command, on one core: throughput over all messages and the
/// latency of each message (the median of 5 rounds for each), so a slow kind of message shows in p99.
func tokenizeThroughput(_ folders: [String]) {
    let messages = loadMessages(folders)
    let totalBytes = messages.reduce(0) { $0 + $1.count }
    let tokenizer = Tokenizer()
    let clock = ContinuousClock()
    var rounds: [[Double]] = []
    var tokens = 0
    for _ in 1...5 {
        tokens = 0
        rounds.append(messages.map { bytes in
            let start = clock.now
            tokens += tokenizer.tokenize(Message(bytes: bytes), keepingTexts: false).count
            return seconds(clock.now - start)
        })
    }
    let totals = rounds.map { $0.reduce(0, +) }.sorted()
    let total = totals[totals.count / 2]
    let latencies = messages.indices.map { index in rounds.map { $0[index] }.sorted()[rounds.count / 2] }.sorted()
    func percentile(_ p: Double) -> Double { latencies[min(Int(Double(latencies.count) * p), latencies.count - 1)] }
    print(String(format: "parse + tokenize: %d messages, %.1f MB, %.0f tokens/message", messages.count,
                 Double(totalBytes) / 1e6, Double(tokens) / Double(max(messages.count, 1))))
    print(String(format: "parse + tokenize (median of 5, one core): %.1f MB/s, %.0f messages/s", Double(totalBytes) / 1e6 / total,
                 Double(messages.count) / total))
    print(String(format: "per-message latency: p50 %.3f ms, p99 %.3f ms, max %.3f ms", percentile(0.5) * 1000,
                 percentile(0.99) * 1000, latencies.last.map { $0 * 1000 } ?? 0))
}

/// Every file under the folders, read into memory.
func loadMessages(_ folders: [String]) -> [[UInt8]] {
    let roots = folders.isEmpty ? ["../shared/corpora/spamassassin"] : folders
    var messages: [[UInt8]] = []
    for root in roots {
        guard let walker = FileManager.default.enumerator(atPath: root) else {
            print("cannot read \(root)")
            exit(66)
        }
        for case let path as String in walker {
            let full = root + "/" + path
            var isDirectory: ObjCBool = false
            if FileManager.default.fileExists(atPath: full, isDirectory: &isDirectory), !isDirectory.boolValue,
               let data = FileManager.default.contents(atPath: full) {
                messages.append(Array(data))
            }
        }
    }
    return messages
}

struct AdversarialCase: Sendable {
    let name: String
    let make: @Sendable () -> [UInt8]
}

let adversarialCases: [AdversarialCase] = [
    AdversarialCase(name: "nesting-10000") { AdversarialMessages.deepNesting(levels: 10_000) },
    AdversarialCase(name: "line-100MB") { AdversarialMessages.hugeLine(bytes: 100 << 20) },
    AdversarialCase(name: "fields-50000") { AdversarialMessages.manyFields(50_000) },
    AdversarialCase(name: "nul-everywhere") {
        var bytes: [UInt8] = []
        for _ in 0..<20_000 { bytes += AdversarialMessages.nulEverywhere() }
        return bytes
    },
    AdversarialCase(name: "truncated-encodings") { AdversarialMessages.truncatedEncodings() },
    AdversarialCase(name: "unclosed-boundary-5000") { AdversarialMessages.unclosedBoundary(parts: 5_000) },
    AdversarialCase(name: "boundary-lookalikes-1M") { AdversarialMessages.boundaryLookalikes(lines: 1_000_000) },
    AdversarialCase(name: "escaped-quotes-32800") { AdversarialMessages.escapedQuotes(32_800) },
]

/// One case in this process: build the input (not timed), then parse, decode all text and edit the header.
func adversarialCase(_ name: String) {
    guard let testCase = adversarialCases.first(where: { $0.name == name }) else {
        print("unknown case \(name)")
        exit(64)
    }
    let bytes = testCase.make()
    let clock = ContinuousClock()
    var summary = ""
    let elapsed = clock.measure {
        let message = Message(bytes: bytes)
        let text = message.decodeText()
        // What the pipe filter does: plan the edit and hand the pieces to write(2), no copy of the message.
        let edit = message.edit(removing: ["X-Pitch-*"], inserting: [NewField(name: "X-Pitch-Status", value: "t")])
        let edited = edit.pieces(of: message.raw).reduce(0) { $0 + $1.count }
        // And the addresses, which the tokenizer and the relationship signals read.
        let addresses = ["from", "to", "cc"].reduce(0) { $0 + message.header.addresses($1).count }
        summary = "parts=\(message.parts.count) fields=\(message.header.count) defects=\(message.defects.count) "
            + "text=\(text.reduce(0) { $0 + $1.text.utf8.count })B edited=\(edited)B addresses=\(addresses)"
    }
    var usage = rusage()
    getrusage(__rusage_who_t(RUSAGE_SELF.rawValue), &usage)
    let figures = String(format: "%9.1f MB %9.3f s %8.1f MB", Double(bytes.count) / 1e6, seconds(elapsed),
                         Double(usage.ru_maxrss) / 1024)
    print(name.padding(toLength: 24, withPad: " ", startingAt: 0) + figures + "   " + summary)
}

/// Every case in a child process of its own, so each peak RSS is that case's alone.
func adversarialSuite() {
    print("case                        input        time     peak RSS   outcome")
    fflush(nil)  // the children write to the same terminal; our header line first
    for testCase in adversarialCases {
        let child = Process()
        child.executableURL = URL(fileURLWithPath: "/proc/self/exe")
        child.arguments = ["adversarial", testCase.name]
        do {
            try child.run()
            child.waitUntilExit()
        } catch {
            print("\(testCase.name): cannot run: \(error)")
        }
        if child.terminationStatus != 0 { print("\(testCase.name): exited with \(child.terminationStatus)") }
    }
}
