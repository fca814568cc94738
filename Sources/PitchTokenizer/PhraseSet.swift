/// A fixed list of lower-case phrases, found anywhere in a text (ASCII letters compared without case) in one
/// pass: the two bytes at each position index a table of the phrases that begin with them.
///
/// Written by hand for the tokenizer's hot path. A memchr pass per phrase over a lower-cased copy made tokenizing
/// the SpamAssassin corpus go from 40.9 to 37.7 MB/s when the opt-out phrases went from 14 to 36; one pass, with no
/// copy, gives 42.5 (`pitch-bench tokenize`).
struct PhraseSet: Sendable {
    /// All phrases, one after another.
    private let bytes: [UInt8]
    private let starts: [Int]
    private let lengths: [Int]
    /// Per pair of leading bytes, 0 if no phrase begins with it, else one more than its group's index.
    private let groupOfPair: [UInt8]
    /// Per group, the range of `members` holding its phrases' indices.
    private let groupRanges: [Range<Int>]
    private let members: [Int]

    /// `phrases` must be lower case and at least two bytes long; at most 64, so that `distinctCount` keeps which
    /// it found in one word.
    init(_ phrases: [String]) {
        precondition(phrases.count <= 64, "at most 64 phrases")
        var bytes: [UInt8] = []
        var starts: [Int] = []
        var lengths: [Int] = []
        var byPair: [Int: [Int]] = [:]
        for (index, phrase) in phrases.enumerated() {
            let utf8 = Array(phrase.utf8)
            precondition(utf8.count >= 2 && utf8.allSatisfy { $0 &- 0x41 >= 26 }, "phrases are lower case, 2+ bytes")
            starts.append(bytes.count)
            lengths.append(utf8.count)
            bytes += utf8
            byPair[Int(utf8[0]) << 8 | Int(utf8[1]), default: []].append(index)
        }
        var groupOfPair = [UInt8](repeating: 0, count: 1 << 16)
        var groupRanges: [Range<Int>] = []
        var members: [Int] = []
        for (pair, indices) in byPair.sorted(by: { $0.key < $1.key }) {
            precondition(groupRanges.count < 255, "at most 255 leading pairs")
            groupRanges.append(members.count..<(members.count + indices.count))
            members += indices
            groupOfPair[pair] = UInt8(groupRanges.count)
        }
        self.bytes = bytes
        self.starts = starts
        self.lengths = lengths
        self.groupOfPair = groupOfPair
        self.groupRanges = groupRanges
        self.members = members
    }

    @inline(__always) private static func lower(_ byte: UInt8) -> UInt8 {
        byte &- 0x41 < 26 ? byte | 0x20 : byte
    }

    /// Whether any phrase occurs in `text`.
    func occurs(in text: UnsafeBufferPointer<UInt8>) -> Bool {
        distinctCount(in: text, upTo: 1) > 0
    }

    /// How many different phrases occur in `text`, counting no further than `limit`.
    func distinctCount(in text: UnsafeBufferPointer<UInt8>, upTo limit: Int) -> Int {
        guard text.count >= 2, limit > 0 else { return 0 }
        var seen: UInt64 = 0
        var count = 0
        return groupOfPair.withUnsafeBufferPointer { table in
            var previous = Self.lower(text[0])
            for index in 1..<text.count {
                let current = Self.lower(text[index])
                let group = table[Int(previous) << 8 | Int(current)]
                if group != 0 {
                    for member in members[groupRanges[Int(group) - 1]]
                    where seen & 1 << member == 0 && matches(member, at: index - 1, in: text) {
                        seen |= 1 << member
                        count += 1
                        if count >= limit { return count }
                    }
                }
                previous = current
            }
            return count
        }
    }

    private func matches(_ member: Int, at position: Int, in text: UnsafeBufferPointer<UInt8>) -> Bool {
        let length = lengths[member]
        guard length <= text.count - position else { return false }
        let start = starts[member]
        var offset = 2
        while offset < length, Self.lower(text[position + offset]) == bytes[start + offset] { offset += 1 }
        return offset == length
    }
}
