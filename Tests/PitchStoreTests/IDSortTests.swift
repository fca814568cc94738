import Testing

@testable import PitchStore

@Suite struct IDSortTests {
    /// A fixed-seed generator, so a failure names inputs that can be rebuilt.
    struct SplitMix: RandomNumberGenerator {
        var state: UInt64
        mutating func next() -> UInt64 {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
    }

    static func uniform(_ count: Int, seed: UInt64) -> [Int64] {
        var generator = SplitMix(state: seed)
        return (0..<count).map { _ in Int64(bitPattern: generator.next()) }
    }

    /// Uniform hashes (the ordinary case), with repeats; and inputs aimed at few buckets: all in one, the top
    /// bits shared by half, and ids at both ends of the signed range.
    static let cases: [(String, [Int64])] = {
        var generator = SplitMix(state: 7)
        let uniform = Self.uniform(50_000, seed: 1)
        let oneBucket = (0..<10_000).map { _ in Int64(bitPattern: generator.next() >> 20) }
        let halfShared = (0..<20_000).map { index in
            index.isMultiple(of: 2) ? Int64(bitPattern: generator.next() & 0x0000_FFFF_FFFF_FFFF) : Int64(bitPattern: generator.next())
        }
        let ends = (0..<8_192).map { index in index.isMultiple(of: 2) ? Int64.min + Int64(index) : Int64.max - Int64(index) }
        return [
            ("uniform", uniform),
            ("uniform with each id three times", uniform + uniform.reversed() + uniform),
            ("all in one bucket", oneBucket),
            ("half in one bucket", halfShared),
            ("both ends of the signed range", ends),
            ("below the bucketing threshold", Array(uniform.prefix(100))),
            ("empty", []),
        ]
    }()

    @Test(arguments: cases)
    func sortsLikeTheStandardSort(_ name: String, _ values: [Int64]) {
        let sorted = IDSort.sorted(values)
        let expected = values.sorted()
        #expect(sorted.count == expected.count, "\(name)")
        // The first difference, not two arrays of 150,000 ids.
        let firstDifference = zip(sorted, expected).enumerated().first { $0.element.0 != $0.element.1 }
        #expect(firstDifference == nil, "\(name): at \(firstDifference.map { "\($0.offset): \($0.element)" } ?? "")")
    }

    @Test func bucketsFollowSignedOrder() {
        #expect(IDSort.bucket(of: .min) == 0)
        #expect(IDSort.bucket(of: -1) == (1 << IDSort.bucketBits) / 2 - 1)
        #expect(IDSort.bucket(of: 0) == (1 << IDSort.bucketBits) / 2)
        #expect(IDSort.bucket(of: .max) == (1 << IDSort.bucketBits) - 1)
    }
}
