import PitchClassifier
import PitchTokenizer
import Testing

@testable import PitchStore

/// `counts(of:)` and snapshots must answer exactly what `lookup` answers, in the caller's order.
@Suite struct CountSourceTests {
    let directory: TemporaryDirectory

    init() throws {
        directory = try TemporaryDirectory()
    }

    private func trained(_ kind: StoreKind) throws -> any TokenStore {
        let store = try kind.makeStore(in: directory)
        _ = try store.train([
            TrainingItem(digest: digest(1), tokens: [token(1), token(2)], target: .pitch),
            TrainingItem(digest: digest(2), tokens: [token(2), token(3)], target: .ham),
        ])
        return store
    }

    @Test(arguments: StoreKind.allCases)
    func countsFollowTheCallersOrderWithZeroForUnknownAndRepeats(kind: StoreKind) throws {
        let store = try trained(kind)
        let (counts, totals) = try store.counts(of: [token(3), token(9), token(2), token(1), token(3)])
        #expect(counts == [TokenCounts(ham: 1), .zero, TokenCounts(pitch: 1, ham: 1), TokenCounts(pitch: 1),
                           TokenCounts(ham: 1)])
        #expect(totals == ClassTotals(pitch: 1, ham: 1))
    }

    @Test func snapshotHoldsEveryTokenAndTheTotals() throws {
        let store = try #require(try trained(.sqlite) as? SQLiteTokenStore)
        let snapshot = try store.snapshot()
        let ids = [token(1), token(2), token(3), token(4)]
        #expect(snapshot.counts(of: ids).counts == (try store.counts(of: ids).counts))
        #expect(snapshot.totals == ClassTotals(pitch: 1, ham: 1))
        #expect(snapshot.table.count == 3)
        // Training afterwards does not reach a snapshot already taken.
        _ = try store.train([TrainingItem(digest: digest(3), tokens: [token(4)], target: .pitch)])
        #expect(snapshot.counts(of: [token(4)]).counts == [.zero])
    }
}

@Suite struct CountTableTests {
    @Test func storesReadsAndOverwrites() {
        var table = CountTable()
        table[TokenID(rawValue: 7)] = TokenCounts(pitch: 1)
        table[TokenID(rawValue: 7)] = TokenCounts(pitch: 2, ham: 3)
        #expect(table[TokenID(rawValue: 7)] == TokenCounts(pitch: 2, ham: 3))
        #expect(table[TokenID(rawValue: 8)] == .zero)
        #expect(table.count == 1)
    }

    @Test func idZeroIsAnOrdinaryKey() {
        var table = CountTable()
        #expect(table[TokenID(rawValue: 0)] == .zero)
        table[TokenID(rawValue: 0)] = TokenCounts(ham: 4)
        #expect(table[TokenID(rawValue: 0)] == TokenCounts(ham: 4))
        #expect(table.count == 1)
        #expect(table.entries.map(\.0) == [TokenID(rawValue: 0)])
    }

    @Test func growsPastItsFirstCapacityKeepingEveryEntry() {
        var table = CountTable(minimumCapacity: 4)
        // Ids that share their low bits, the worst case for a table indexed by them directly.
        let ids = (1...50_000).map { TokenID(rawValue: UInt64($0) << 40) }
        for (index, id) in ids.enumerated() { table[id] = TokenCounts(pitch: UInt32(index)) }
        #expect(table.count == ids.count)
        #expect(ids.enumerated().allSatisfy { table[$1] == TokenCounts(pitch: UInt32($0)) })
        #expect(Set(table.entries.map(\.0)) == Set(ids))
    }
}
