import PitchClassifier
import PitchTokenizer
import Testing

@testable import PitchStore

@Suite struct CountRunTests {
    /// Ids whose signed order differs from their unsigned one, repeated within and across the classes.
    static let high = UInt64.max - 1  // negative as a rowid
    static let pitch: [UInt64] = [7, high, 3, 7, 0, 7]
    static let ham: [UInt64] = [3, 9, high, 3]

    @Test func aRunCountsEachOccurrenceInRowidOrder() {
        let run = CountRun(pitch: Self.pitch.map(token), ham: Self.ham.map(token))
        #expect(run.ids == [Int64(bitPattern: Self.high), 0, 3, 7, 9])
        #expect(run.counts == [
            TokenCounts(pitch: 1, ham: 1), TokenCounts(pitch: 1), TokenCounts(pitch: 1, ham: 2),
            TokenCounts(pitch: 3), TokenCounts(ham: 1),
        ])
        #expect(CountRun(pitch: [], ham: []).count == 0)
    }

    /// Merging runs gives what summing every addition into one table gives, however the additions were split.
    @Test(arguments: [1, 2, 3, 5])
    func mergedRunsSumLikeOneTable(runCount: Int) {
        // Ids that repeat within and across runs, half of the ham ones negative as rowids.
        func id(_ n: Int) -> UInt64 { UInt64(n) &* 0x9E37_79B9_7F4A_7C15 >> 56 }
        var table = CountTable()
        var runs: [CountRun] = []
        for run in 0..<runCount {
            let pitch = (0..<200).map { token(id(run * 1_000 + $0)) }
            let ham = (0..<150).map { token(id(run * 1_000 + 500 + $0) &+ ($0 % 2 == 0 ? 0 : .max - 300)) }
            for id in pitch { table[id] = TokenCounts(pitch: table[id].pitch + 1, ham: table[id].ham) }
            for id in ham { table[id] = TokenCounts(pitch: table[id].pitch, ham: table[id].ham + 1) }
            runs.append(CountRun(pitch: pitch, ham: ham))
        }
        #expect(CountRun.merging(runs) == CountRun(table))
        #expect(CountRun.merging([]) == CountRun())
    }

    @Test func sumsSaturateLikeStoredCounts() {
        var table = CountTable()
        table[token(5)] = TokenCounts(pitch: .max - 1, ham: 0)
        let merged = CountRun.merged(CountRun(table), CountRun(pitch: [token(5), token(5)], ham: [token(5)]))
        #expect(merged.counts == [TokenCounts(pitch: .max, ham: 1)])
    }

    @Test func theDeduplicatorForgetsEachItemsIdsAtTheNext() {
        var deduplicator = ItemDeduplicator()
        deduplicator.nextItem(count: 3)
        #expect([5, 6, 5, 0, 0].map { deduplicator.isFirst($0) } == [true, true, false, true, false])
        deduplicator.nextItem(count: 2)
        #expect([5, 5].map { deduplicator.isFirst($0) } == [true, false])
        // An item larger than the table grows it.
        deduplicator.nextItem(count: 5_000)
        let ids = (0..<5_000).map { UInt64($0) * 1_000_003 }
        #expect(ids.allSatisfy { deduplicator.isFirst($0) })
        #expect(!ids.contains { deduplicator.isFirst($0) })
    }
}
