/// Gathers the distinct tokens of one message, in first-seen order, up to a bound: the words and pairs of the text
/// apart from the rest, because the classifier weighs them differently (`ClassifierParameters.textWeight`).
///
/// A token is built as bytes in a fixed buffer and identified by its `TokenID` hash, so a token seen again costs a
/// hash and a probe, never a String; only the first sighting makes one. Two tokens with the same id are one token
/// in storage anyway, so deduplicating by id is exactly what the counts need. The buffer, the id table and the
/// scanners' scratch are plain memory allocated once per message and freed by `deallocate()`, because Array's
/// uniqueness checks and reference counting on every appended byte cost more than the tokenizing itself.
struct TokenCollector {
    /// The longest token: a prefix and two words fit with room to spare; a longer value (a 300-byte address) is cut.
    static let maxTokenBytes = 256

    private(set) var tokens: [String] = []
    /// `TokenID` of each token, already computed to deduplicate; hashing the Strings again cost a fifth of training.
    private(set) var ids: [TokenID] = []
    /// Whether each of `ids` is a local token (`LocalTokens`); the text's words and pairs never are.
    private(set) var local: [Bool] = []
    /// The words and pairs of the text, kept as `tokens` and `ids` are.
    private(set) var textTokens: [String] = []
    private(set) var textIDs: [TokenID] = []
    let limit: Int
    /// Whether `tokens` is filled. Training, evaluating and plain verdicts need only the ids, and making a String
    /// of every token was a fifth of the tokenizer's time.
    let keepsTexts: Bool
    private let buffer: UnsafeMutablePointer<UInt8>
    private var length = 0
    /// Open addressing over the ids seen so far; 0 marks an empty slot (an id of 0 is stored as 1).
    private var slots: UnsafeMutablePointer<UInt64>
    private var mask: Int
    private var used = 0

    /// Memory for the word scanners.
    let scratch: Scratch

    /// Call `deallocate()` when done.
    init(limit: Int, maxWordBytes: Int, keepsTexts: Bool = true) {
        self.limit = max(limit, 0)
        self.keepsTexts = keepsTexts
        buffer = .allocate(capacity: Self.maxTokenBytes)
        let wordCapacity = WordScanner.capacity(forMaxWordBytes: maxWordBytes)
        scratch = Scratch(word: .allocate(capacity: wordCapacity), previous: .allocate(capacity: wordCapacity))
        let capacity = 1_024
        slots = .allocate(capacity: capacity)
        slots.initialize(repeating: 0, count: capacity)
        mask = capacity - 1
        ids.reserveCapacity(min(self.limit, 128))
        local.reserveCapacity(min(self.limit, 128))
        textIDs.reserveCapacity(min(self.limit, 512))
        if keepsTexts {
            tokens.reserveCapacity(min(self.limit, 128))
            textTokens.reserveCapacity(min(self.limit, 512))
        }
    }

    /// Frees the memory; the collector is unusable afterwards.
    func deallocate() {
        buffer.deallocate()
        scratch.word.deallocate()
        scratch.previous.deallocate()
        slots.deallocate()
    }

    var count: Int { ids.count + textIDs.count }
    var isFull: Bool { count >= limit }

    // MARK: Building a token

    @inline(__always)
    mutating func append(_ byte: UInt8) {
        guard length < Self.maxTokenBytes else { return }
        buffer[length] = byte
        length += 1
    }

    @inline(__always)
    mutating func append(_ bytes: UnsafeBufferPointer<UInt8>) {
        guard let base = bytes.baseAddress else { return }
        let n = min(bytes.count, Self.maxTokenBytes - length)
        guard n > 0 else { return }
        (buffer + length).update(from: base, count: n)
        length += n
    }

    @inline(__always)
    mutating func append(_ literal: StaticString) {
        append(UnsafeBufferPointer(start: literal.utf8Start, count: literal.utf8CodeUnitCount))
    }

    mutating func append(_ bytes: some Sequence<UInt8>) {
        for byte in bytes {
            guard length < Self.maxTokenBytes else { return }
            buffer[length] = byte
            length += 1
        }
    }

    /// Adds the token built so far if it is new and there is room, and starts the next one. `isText`: a word or
    /// pair of the message's text.
    mutating func emit(isText: Bool = false) {
        defer { length = 0 }
        guard length > 0, count < limit else { return }
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for i in 0..<length {
            hash ^= UInt64(buffer[i])
            hash &*= 0x0000_0100_0000_01b3
        }
        guard insert(hash) else { return }
        // A token cut at `maxTokenBytes` can end inside a character; its text then ends in U+FFFD while the id
        // keeps the bytes. Only explanations show texts, and cutting at a character instead would change ids,
        // i.e. the tokenizer's identity, which makes every database retrain.
        let text = keepsTexts ? String(decoding: UnsafeBufferPointer(start: buffer, count: length), as: UTF8.self) : nil
        if isText {
            textIDs.append(TokenID(rawValue: hash))
            if let text { textTokens.append(text) }
        } else {
            ids.append(TokenID(rawValue: hash))
            local.append(LocalTokens.contains(UnsafeBufferPointer(start: buffer, count: length)))
            if let text { tokens.append(text) }
        }
    }

    /// Adds `prefix` followed by `value` as one token.
    mutating func add(_ prefix: StaticString, _ value: some StringProtocol) {
        append(prefix)
        append(value.utf8)
        emit()
    }

    /// Adds `prefix` followed by bytes as one token.
    mutating func add(_ prefix: StaticString, bytes: some Sequence<UInt8>) {
        append(prefix)
        append(bytes)
        emit()
    }

    // MARK: The id table

    /// Whether `hash` was new.
    private mutating func insert(_ hash: UInt64) -> Bool {
        let key = hash == 0 ? 1 : hash
        var index = slotIndex(key)
        while true {
            let slot = slots[index]
            if slot == key { return false }
            if slot == 0 { break }
            index = (index + 1) & mask
        }
        slots[index] = key
        used += 1
        if used * 2 > mask { grow() }
        return true
    }

    /// FNV-1a's low bits are poorly mixed, so the slot comes from a multiplicative hash of the whole id.
    @inline(__always)
    private func slotIndex(_ key: UInt64) -> Int {
        Int(truncatingIfNeeded: ((key ^ (key >> 29)) &* 0x9E37_79B9_7F4A_7C15) >> 32) & mask
    }

    private mutating func grow() {
        let oldSlots = slots
        let oldCapacity = mask + 1
        let capacity = oldCapacity * 2
        slots = .allocate(capacity: capacity)
        slots.initialize(repeating: 0, count: capacity)
        mask = capacity - 1
        for i in 0..<oldCapacity where oldSlots[i] != 0 {
            let key = oldSlots[i]
            var index = slotIndex(key)
            while slots[index] != 0 { index = (index + 1) & mask }
            slots[index] = key
        }
        oldSlots.deallocate()
    }
}

/// Coarse, roughly logarithmic buckets for counts, so that "7 links" and "8 links" are the same evidence.
enum Bucket {
    static func label(_ count: Int) -> String {
        switch count {
        case ..<3: String(max(count, 0))
        case 3...4: "3-4"
        case 5...8: "5-8"
        case 9...16: "9-16"
        case 17...32: "17-32"
        case 33...64: "33-64"
        default: "65+"
        }
    }
}
