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
