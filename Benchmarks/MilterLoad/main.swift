// milter-load: many concurrent milter sessions against a running `pitchfilter serve --milter inet:127.0.0.1:PORT`,
// playing Postfix's side. Prints messages per second, end-of-message latency p50/p99/max, and the server's RSS as
// the run goes on (with --pid), so a leak shows as a rising column.
//
//   milter-load --port 8891 --sessions 200 --messages 100000 --pid $(pidof pitchfilter) samples/corpus
//
// Each message is a sample from the folders given, padded to --size bytes (5,000 by default) with text from the
// other samples, so every message is different and the classifier does real work.

import Foundation
import MilterClient
import PitchMilter
import Synchronization

struct Options {
    var port = 8891
    var sessions = 200
    var messages = 10_000
    var size = 5_000
    var pid: Int32?
    /// Messages per second offered in all (an MTA's arrival rate); 0: every session sends as fast as it can.
    var rate = 0.0
    /// Seconds of mutated sessions instead of a load run.
    var fuzzSeconds = 0.0
    var folders: [String] = []

    static func parse(_ arguments: [String]) -> Options {
        var options = Options()
        var iterator = arguments.makeIterator()
        while let argument = iterator.next() {
            switch argument {
            case "--port": options.port = Int(iterator.next() ?? "") ?? options.port
            case "--sessions": options.sessions = Int(iterator.next() ?? "") ?? options.sessions
            case "--messages": options.messages = Int(iterator.next() ?? "") ?? options.messages
            case "--size": options.size = Int(iterator.next() ?? "") ?? options.size
            case "--pid": options.pid = Int32(iterator.next() ?? "")
            case "--rate": options.rate = Double(iterator.next() ?? "") ?? 0
            case "--fuzz": options.fuzzSeconds = Double(iterator.next() ?? "") ?? 0
            case "--help", "-h":
                print("usage: milter-load --port N [--sessions 200] [--messages 10000] [--size 5000] "
                    + "[--rate MSG/S] [--pid PID] [--fuzz SECONDS] DIR...")
                exit(0)
            default: options.folders.append(argument)
            }
        }
        if options.folders.isEmpty { options.folders = ["samples/corpus/pitch", "samples/corpus/ham"] }
        return options
    }
}

/// Messages of about `size` bytes: a sample's header and body, then paragraphs of other samples' bodies.
func makeMessages(from folders: [String], size: Int) -> [[UInt8]] {
    var samples: [[UInt8]] = []
    for folder in folders {
        let names = ((try? FileManager.default.contentsOfDirectory(atPath: folder)) ?? []).sorted()
        for name in names {
            if let data = FileManager.default.contents(atPath: folder + "/" + name) { samples.append(Array(data)) }
        }
    }
    precondition(!samples.isEmpty, "no messages in \(folders)")
    let bodies = samples.map { sample -> [UInt8] in
        guard let end = sample.firstRange(of: Array("\n\n".utf8)) else { return [] }
        return Array(sample[end.upperBound...])
    }
    return samples.enumerated().map { index, sample in
        var message = sample
        var next = index + 1
        while message.count < size {
            message += bodies[next % bodies.count].prefix(size - message.count)
            next += 1
        }
        return message
    }
}

func residentKilobytes(_ pid: Int32) -> Int? {
    guard let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8) else { return nil }
    let line = status.split(separator: "\n").first { $0.hasPrefix("VmRSS:") }
    return line.flatMap { Int($0.split(separator: " ").dropFirst().first ?? "") }
}

let options = Options.parse(Array(CommandLine.arguments.dropFirst()))
nonisolated(unsafe) let messages = makeMessages(from: options.folders, size: options.size)

/// --fuzz: for the given time, sessions of mutated bytes (flipped, cut, spliced, repeated, random), one after another;
/// every 50 of them a clean session must still be tagged and accepted, and the server must stay up.
func fuzz(seconds: Double) -> Never {
    var generator = SystemRandomNumberGenerator()
    let deadline = Date().addingTimeInterval(seconds)
    var sessions = 0
    var controls = 0
    var problems: [String] = []
    while Date() < deadline, problems.isEmpty {
        var bytes = MilterClient.sessionBytes(message: messages[sessions % messages.count], from: "f@fuzz.invalid",
                                              to: "u@example.org")
        switch Int.random(in: 0..<5, using: &generator) {
        case 0:  // flip bytes
            for _ in 0..<Int.random(in: 1...8, using: &generator) {
                let at = Int.random(in: 0..<bytes.count, using: &generator)
                bytes[at] ^= UInt8.random(in: 1...255, using: &generator)
            }
        case 1:  // cut short
            bytes = Array(bytes.prefix(Int.random(in: 0..<bytes.count, using: &generator)))
        case 2:  // splice random bytes in
            let at = Int.random(in: 0..<bytes.count, using: &generator)
            bytes.insert(contentsOf: (0..<Int.random(in: 1...64, using: &generator)).map { _ in
                UInt8.random(in: 0...255, using: &generator)
            }, at: at)
        case 3:  // repeat a stretch (commands out of order)
            let from = Int.random(in: 0..<bytes.count, using: &generator)
            let to = min(bytes.count, from + Int.random(in: 1...200, using: &generator))
            bytes.insert(contentsOf: bytes[from..<to], at: Int.random(in: 0..<bytes.count, using: &generator))
        default:  // noise
            bytes = (0..<Int.random(in: 1...512, using: &generator)).map { _ in
                UInt8.random(in: 0...255, using: &generator)
            }
        }
        if let client = try? MilterClient(port: options.port, receiveTimeoutSeconds: 2) {
            try? client.write(raw: bytes)
        }
        sessions += 1
        if sessions % 50 == 0 {
            controls += 1
            do {
                let client = try MilterClient(port: options.port, receiveTimeoutSeconds: 5)
                try client.negotiate()
                let outcome = try client.send(message: messages[0], from: "c@fuzz.invalid", to: ["u@example.org"])
                if outcome.final != MilterReplyCode.accept.rawValue || outcome.modifications.isEmpty {
                    problems.append("control session \(controls): answer 0x\(String(outcome.final, radix: 16)), "
                        + "\(outcome.modifications.count) changes")
                }
                client.quit()
            } catch {
                problems.append("control session \(controls): \(error)")
            }
            if let pid = options.pid, kill(pid, 0) != 0 { problems.append("the server (pid \(pid)) is gone") }
        }
    }
    print("fuzz: \(sessions) mutated sessions, \(controls) control sessions, \(problems.count) problems")
    for problem in problems { print("  \(problem)") }
    exit(problems.isEmpty ? 0 : 1)
}

if options.fuzzSeconds > 0 { fuzz(seconds: options.fuzzSeconds) }

print("milter-load: \(options.sessions) sessions, \(options.messages) messages of \(options.size) bytes "
    + "(\(messages.count) distinct), port \(options.port)"
    + (options.rate > 0 ? ", offered at \(Int(options.rate)) msg/s" : ", as fast as the server answers"))

/// What the session threads share.
final class Run: Sendable {
    struct State {
        var next = 0
        var latencies: [Double] = []
        var failures: [String] = []
    }

    let total: Int
    let state = Mutex(State())

    init(total: Int) { self.total = total }

    /// The next message number, or nil when all are taken.
    func take() -> Int? {
        state.withLock { state in
            guard state.next < total else { return nil }
            state.next += 1
            return state.next - 1
        }
    }

    var taken: Int { state.withLock { $0.next } }
}

struct LoadFailure: Error, CustomStringConvertible {
    let description: String
}

let run = Run(total: options.messages)
var rssSamples: [(done: Int, kilobytes: Int)] = []
let start = Date()
let group = DispatchGroup()
for session in 0..<options.sessions {
    group.enter()
    let port = options.port
    let thread = Thread {
        defer { group.leave() }
        do {
            let client = try MilterClient(port: port)
            try client.negotiate()
            var mine: [Double] = []
            while let number = run.take() {
                // With a rate, message n is due at start + n/rate, and its latency counts from then: a server
                // that falls behind is charged for the wait, not only for the time it took once it answered.
                var began = Date()
                if options.rate > 0 {
                    let due = start.addingTimeInterval(Double(number) / options.rate)
                    let wait = due.timeIntervalSinceNow
                    if wait > 0 { Thread.sleep(forTimeInterval: wait) }
                    began = due
                }
                let outcome = try client.send(
                    message: messages[number % messages.count], from: "sender\(number)@load.invalid",
                    to: ["user\(session)@example.org"], macros: ["i": "L\(number)"])
                mine.append(Date().timeIntervalSince(began) * 1000)
                if outcome.final != MilterReplyCode.accept.rawValue {
                    throw LoadFailure(description: "message \(number) answered 0x\(String(outcome.final, radix: 16))")
                }
            }
            client.quit()
            run.state.withLock { $0.latencies += mine }
        } catch {
            run.state.withLock { $0.failures.append("session \(session): \(error)") }
        }
    }
    thread.stackSize = 256 << 10
    thread.start()
}

// RSS at every tenth of the run.
if let pid = options.pid {
    var reported = 0
    while group.wait(timeout: .now() + .milliseconds(200)) == .timedOut {
        let done = run.taken
        if done >= reported + options.messages / 10, let rss = residentKilobytes(pid) {
            reported = done
            rssSamples.append((done, rss))
        }
    }
    if let rss = residentKilobytes(pid) { rssSamples.append((options.messages, rss)) }
} else {
    group.wait()
}
let seconds = Date().timeIntervalSince(start)
let latencies = run.state.withLock { $0.latencies }.sorted()
let failures = run.state.withLock { $0.failures }
func percentile(_ p: Double, of latencies: [Double]) -> Double {
    latencies.isEmpty ? 0 : latencies[min(latencies.count - 1, Int(Double(latencies.count) * p))]
}
print(String(format: "messages: %d in %.2f s = %.0f msg/s", latencies.count, seconds,
             Double(latencies.count) / seconds))
print(String(format: "end-of-message latency ms: p50 %.2f  p99 %.2f  max %.2f",
             percentile(0.5, of: latencies), percentile(0.99, of: latencies),
             latencies.last ?? 0))
if !rssSamples.isEmpty {
    print("server RSS (MB) by messages done: " + rssSamples.map { "\($0.done): \($0.kilobytes / 1024)" }
        .joined(separator: ", "))
}
if !failures.isEmpty {
    print("failures: \(failures.count)")
    for failure in failures.prefix(5) { print("  \(failure)") }
    exit(1)
}
