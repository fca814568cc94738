/// The fingerprint of a message's skeleton, for telling form letters: the same text sent by many senders, or to
/// the same person again, with names, numbers and links filled in differently each time.
///
/// The skeleton is a text's words, lower-cased, without the greeting line, numbers, addresses and links. Its
/// 3-word shingles are reduced to a MinHash signature of `hashes` values, cut into bands of `rowsPerBand`. Two
/// messages sharing any band key are near-duplicates: with 16 hashes in 4 bands of 4, texts whose shingle sets
/// overlap by 80 % share a band with probability 0.98, and texts overlapping by 30 % with probability 0.03 (the
/// usual LSH curve 1 − (1 − J⁴)⁴).
public struct TemplateFingerprint: Hashable, Sendable {
    /// One key per band; equal keys mean near-duplicate skeletons.
    public let bands: [UInt64]

    static let hashes = 16
    static let rowsPerBand = 4
    /// Fewer skeleton words than this make no fingerprint: a short note ("thanks, see you at 3") says the same as
    /// thousands of others without being a form letter.
    static let minimumWords = 20
    /// The skeleton is read this far: a form letter's identity is in its first paragraphs.
    static let maximumWords = 400

    /// The fingerprint of a text, or nil when its skeleton is too short.
    public static func of(text: UnsafeBufferPointer<UInt8>) -> TemplateFingerprint? {
        let words = skeleton(text)
        guard words.count >= minimumWords else { return nil }
        var signature = [UInt64](repeating: .max, count: hashes)
        for start in 0...(words.count - 3) {
            var shingle = words[start]
            shingle = mix(shingle ^ (words[start + 1] &* 0x9E37_79B9_7F4A_7C15))
            shingle = mix(shingle ^ (words[start + 2] &* 0xC2B2_AE3D_27D4_EB4F))
            for index in 0..<hashes {
                let value = mix(shingle ^ seeds[index])
                if value < signature[index] { signature[index] = value }
            }
        }
        let bands = stride(from: 0, to: hashes, by: rowsPerBand).map { start in
            signature[start..<(start + rowsPerBand)].reduce(UInt64(start) &+ 0x51_7CC1_B727_220A) { mix($0 ^ $1) }
        }
        return TemplateFingerprint(bands: bands)
    }

    /// The skeleton's words as FNV-1a hashes of their lower-cased letters.
    static func skeleton(_ text: UnsafeBufferPointer<UInt8>) -> [UInt64] {
        var words: [UInt64] = []
        var index = 0
        var checkedGreeting = false
        while index < text.count, words.count < maximumWords {
            let byte = text[index]
            if byte == 0x20 || byte == 0x09 || byte == 0x0D || byte == 0x0A {
                index += 1
                continue
            }
            // The first line with a word on it may be the greeting, which carries the name: drop it whole.
            if !checkedGreeting {
                checkedGreeting = true
                let end = lineEnd(text, from: index)
                if FormLetterEvidence.greetingKind(ArraySlice(UnsafeBufferPointer(rebasing: text[index..<end]))) != nil {
                    index = end
                    continue
                }
            }
            var end = index
            while end < text.count, text[end] != 0x20, text[end] != 0x09, text[end] != 0x0A, text[end] != 0x0D {
                end += 1
            }
            if let hash = skeletonWord(UnsafeBufferPointer(rebasing: text[index..<end])) { words.append(hash) }
            index = end
        }
        return words
    }

    /// A word's letters (punctuation dropped), hashed; nil for numbers, addresses and links.
    static func skeletonWord(_ word: UnsafeBufferPointer<UInt8>) -> UInt64? {
        if word.contains(where: { $0 == UInt8(ascii: "@") || $0 == UInt8(ascii: "/") || $0 &- 0x30 < 10 }) {
            return nil
        }
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        var letters = 0
        for byte in word where byte &- 0x41 < 26 || byte &- 0x61 < 26 || byte >= 0x80 {
            hash ^= UInt64(byte &- 0x41 < 26 ? byte | 0x20 : byte)
            hash &*= 0x0000_0100_0000_01b3
            letters += 1
        }
        return letters > 0 ? hash : nil
    }

    private static func lineEnd(_ text: UnsafeBufferPointer<UInt8>, from start: Int) -> Int {
        var end = start
        while end < text.count, text[end] != 0x0A { end += 1 }
        return end
    }

    /// splitmix64's finaliser: a cheap, well-mixed 64-bit permutation.
    @inline(__always)
    static func mix(_ value: UInt64) -> UInt64 {
        var z = value &+ 0x9E37_79B9_7F4A_7C15
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// Fixed seeds, one per hash: fingerprints are stored, so they must be the same in every build.
    static let seeds: [UInt64] = (0..<hashes).map { mix(UInt64($0) &* 0xD1B5_4A32_D192_ED03) }
}
