/// Sorting token ids, which are hashes: uniform over their range, so their top bits alone nearly sort them.
///
/// The standard library's sort is a stable merge sort that compares elements through a closure; sorting each
/// training batch's ids with it was 8–13 % of the writer thread's time in `pitchfilter train`, the thread the end of
/// a run waits for. Here one counting pass and one scatter put each id into its bucket by the top 16 bits of its
/// order, and an insertion sort orders the handful in each bucket. Ids are not chosen by whoever sends mail, but a
/// crafted message could still aim many tokens at one bucket: a bucket larger than `insertionLimit` is sorted with
/// the standard sort, so no input is worse than that.
enum IDSort {
    static let bucketBits = 16
    static let insertionLimit = 48

    /// `values` in ascending order (as signed integers, the order of the tokens table's rowids).
    static func sorted(_ values: [Int64]) -> [Int64] {
        // Below about 4,096 ids, zeroing and summing the 65,536 bucket counts costs about what it saves (measured:
        // 132 µs against 160 µs at 4,096 ids; 4.9 ms against 29 ms at 400,000).
        guard values.count >= 4_096 else { return values.sorted() }
        let bucketCount = 1 << bucketBits
        var starts = [Int](repeating: 0, count: bucketCount + 1)
        var result = [Int64](repeating: 0, count: values.count)
        values.withUnsafeBufferPointer { values in
            starts.withUnsafeMutableBufferPointer { starts in
                for value in values { starts[bucket(of: value) + 1] += 1 }
                for index in 1...bucketCount { starts[index] += starts[index - 1] }
                result.withUnsafeMutableBufferPointer { result in
                    var next = Array(starts[0..<bucketCount])
                    next.withUnsafeMutableBufferPointer { next in
                        for value in values {
                            let b = bucket(of: value)
                            result[next[b]] = value
                            next[b] += 1
                        }
                    }
                    for b in 0..<bucketCount {
                        let range = starts[b]..<starts[b + 1]
                        if range.count > insertionLimit {
                            result[range].sort()
                        } else if range.count > 1 {
                            insertionSort(result, range)
                        }
                    }
                }
            }
        }
        return result
    }

    /// The bucket of `value`: the top bits of its position in signed order.
    @inline(__always)
    static func bucket(of value: Int64) -> Int {
        Int((UInt64(bitPattern: value) ^ (1 << 63)) >> UInt64(64 - bucketBits))
    }

    @inline(__always)
    private static func insertionSort(_ buffer: UnsafeMutableBufferPointer<Int64>, _ range: Range<Int>) {
        for index in (range.lowerBound + 1)..<range.upperBound {
            let value = buffer[index]
            var hole = index
            while hole > range.lowerBound, buffer[hole - 1] > value {
                buffer[hole] = buffer[hole - 1]
                hole -= 1
            }
            buffer[hole] = value
        }
    }
}
