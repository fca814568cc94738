import Foundation
import Testing
@testable import PitchCommandLine

@Suite struct MailSourceReadingAheadTests {
    let scratch: TemporaryDirectory
    var directory: URL { scratch.url }

    init() throws {
        scratch = try TemporaryDirectory("MailSource")
        for index in 0..<10 {
            try Data("Subject: \(index)\n\nbody \(index)\n".utf8)
                .write(to: directory.appendingPathComponent(String(format: "m%02d", index)))
        }
    }

    /// Every message once, in order, in the same batches as forEachBatch; the missing path is reported on the
    /// caller's thread before the batch that follows it.
    @Test func batchesArriveInOrderAndErrorsBeforeTheBatchAfterThem() throws {
        let paths = [directory.path, directory.path + "/missing", directory.path + "/m03"]
        var expected: [[String]] = []
        MailSource.forEachBatch(at: paths, count: 4, unreadable: { _ in }) { expected.append($0.map(\.name)) }
        var seen: [String] = []
        var batches: [[String]] = []
        let caller = Thread.current
        try MailSource.forEachBatchReadingAhead(at: paths, count: 4, unreadable: { error in
            #expect(Thread.current == caller)
            seen.append("error: \(error)")
        }) { batch in
            #expect(Thread.current == caller)
            batches.append(batch.map(\.name))
            seen.append("batch of \(batch.count)")
        }
        #expect(batches == expected)
        #expect(batches.flatMap { $0 }.count == 11)
        // 10 files in batches of 4: 4, 4, then 2 + the m03 given again; the missing path is read before it.
        #expect(seen == ["batch of 4", "batch of 4", "error: cannot read \(directory.path)/missing: no such file or "
            + "directory", "batch of 3"])
    }

    @Test func aFailingBodyStopsTheReaderAndTheErrorComesBack() {
        struct Stop: Error {}
        var calls = 0
        #expect(throws: Stop.self) {
            try MailSource.forEachBatchReadingAhead(at: [directory.path], count: 1, unreadable: { _ in }) { _ in
                calls += 1
                if calls == 2 { throw Stop() }
            }
        }
        #expect(calls == 2)
    }
}

@Suite struct MboxTests {
    /// An mbox file, and the messages read from it: without the empty line a writer puts after each one, and with
    /// ">From " quoting undone.
    static let files: [(String, [String])] = [
        ("From a\nA\n", ["From a\nA\n"]),
        ("From a\nA\n\n", ["From a\nA\n"]),
        ("From a\nA\n\nFrom b\nB\n\n", ["From a\nA\n", "From b\nB\n"]),
        ("From a\r\nA\r\n\r\nFrom b\r\nB\r\n\r\n", ["From a\r\nA\r\n", "From b\r\nB\r\n"]),
        // A "From " line with no empty line before it is text; a message without a final newline keeps its end.
        ("From a\nA\nFrom b\n", ["From a\nA\nFrom b\n"]),
        ("From a\nA", ["From a\nA"]),
        ("From a\n\n", ["From a\n"]),
        ("From a\n>From here\n>>From there\n> From not\n>Fromage\n>From", ["From a\nFrom here\n>From there\n"
            + "> From not\n>Fromage\n>From"]),
    ]

    @Test(arguments: files)
    func messagesAreReadAsTheyWereBeforeTheMboxHeldThem(file: String, messages: [String]) {
        let bytes = Array(file.utf8)
        let read = Mbox.split(bytes).map { String(decoding: Mbox.unquoted(bytes[$0]), as: UTF8.self) }
        #expect(read == messages)
    }
}
