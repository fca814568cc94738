import PitchTokenizer
import Testing

@testable import PitchStore

@Suite struct IDSortTests {
    /// Real token ids: the FNV-1a hashes of numbered words, as uniform as training's and the same on every run.
    static func ids(_ count: Int, _ word: String) -> [Int64] {
        (0..<count).map { Int64(bitPattern: TokenID(hashing: "\(word)\($0)").rawValue) }
    }

    /// Uniform hashes (the ordinary case), with repeats; and inputs aimed at few buckets: all in one, the top
    /// bits shared by half, and ids at both ends of the signed range.
    static let cases: [(String, [Int64])] = {
        let uniform = ids(50_000, "word")
        let oneBucket = ids(10_000, "one").map { $0 >> 20 }  // top 20 bits all sign: bucket 0x7fff or 0x8000
        let halfShared = ids(20_000, "half").enumerated().map { $0.offset.isMultiple(of: 2) ? $0.element & 0xFFFF_FFFF_FFFF : $0.element }
        let ends = (0..<8_192).map { index in index.isMultiple(of: 2) ? Int64.min + Int64(index) : Int64.max - Int64(index) }
        return [
            ("uniform", uniform),
            ("uniform with each id three times", uniform + uniform.reversed() + uniform),
            ("all in two buckets", oneBucket),
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
