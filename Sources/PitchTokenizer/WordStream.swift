/// Memory reused by every text of one message, so that scanning allocates nothing per word.
struct Scratch {
    /// The current word (`WordScanner.capacity(forMaxWordBytes:)` bytes).
    let word: UnsafeMutablePointer<UInt8>
    /// The word before it, for pairs (as many bytes as `word`).
    let previous: UnsafeMutablePointer<UInt8>
}

/// Feeds the words of one text to the collector: each word, and each word with the one before it ("quick
/// question"), under a prefix ("" for the body, "subj:" for the subject). It also notes the hosts of URLs written
/// out in the text, which the scanner reads as words ("https" ":" "www.example.com").
///
/// Adjacent pairs were measured against single words and against orthogonal sparse bigrams (each word with each of
/// the 2–5 before it): pairs beat both on the SpamAssassin corpus and the project's samples (see `Tokenizer`).
struct WordStream {
    let bounds: Tokenizer.Bounds
    let prefix: StaticString
    let pairs: Bool
    let scratch: Scratch
    /// Whether these are the words of the message's text (no prefix), which the classifier weighs apart.
    private let isText: Bool
    /// Length of the word (or punctuation mark) in `scratch.previous`; nil when there is none to pair with.
    private var previousLength: Int?
    /// Hosts of the URLs written out in the text ("https://example.com/…", "www.example.com").
    private(set) var urlHosts: [[UInt8]] = []
    /// 1 after the word "http" or "https", 2 after that word and ":": the next word is then a host.
    private var schemeState = 0

    /// URL hosts noted per text; a text listing more says nothing new about them.
    static let maxURLHosts = 1_000

    init(bounds: Tokenizer.Bounds, prefix: StaticString, pairs: Bool, scratch: Scratch) {
        self.bounds = bounds
        self.prefix = prefix
        self.pairs = pairs
        self.scratch = scratch
        isText = prefix.utf8CodeUnitCount == 0
    }

    /// Returns how many words it read (of at most `maxWords`), for a caller that feeds one text in pieces.
    @discardableResult
    mutating func run(_ text: UnsafeBufferPointer<UInt8>, to out: inout TokenCollector, maxWords: Int) -> Int {
        var scanner = WordScanner(text, maxWordBytes: bounds.maxWordBytes, output: scratch.word)
        var words = 0
        while words < maxWords, !out.isFull, let item = scanner.next() {
            switch item {
            case .paragraph:
                previousLength = nil
                schemeState = 0
            case .punctuation(let mark):
                schemeState = mark == 0x3A && schemeState == 1 ? 2 : 0
                if pairs {
                    scratch.previous[0] = mark
                    previousLength = 1
                }
            case .word(let digitsOnly):
                words += 1
                let word = scanner.word
                noteURL(word)
                // Bare numbers (dates, times, ids) measured no better than nothing and would only grow the database.
                guard !scanner.tooLong, !digitsOnly, word.count >= bounds.minWordBytes,
                      word.count <= bounds.maxWordBytes
                else { continue }
                out.append(prefix)
                out.append(word)
                out.emit(isText: isText)
                guard pairs else { continue }
                if let previousLength {
                    out.append(prefix)
                    out.append(UnsafeBufferPointer(start: scratch.previous, count: previousLength))
                    out.append(0x20)
                    out.append(word)
                    out.emit(isText: isText)
                }
                if let base = word.baseAddress { scratch.previous.update(from: base, count: word.count) }
                previousLength = word.count
            }
        }
        return words
    }

    private mutating func noteURL(_ word: UnsafeBufferPointer<UInt8>) {
        let state = schemeState
        schemeState = Self.equals(word, "http") || Self.equals(word, "https") ? 1 : 0
        let isWWW = word.count > 4 && word[0] == 0x77 && word[1] == 0x77 && word[2] == 0x77 && word[3] == 0x2E
        guard state == 2 || isWWW, urlHosts.count < Self.maxURLHosts, let host = Domains.normalizedHost(word)
        else { return }
        urlHosts.append(host)
    }

    @inline(__always)
    private static func equals(_ word: UnsafeBufferPointer<UInt8>, _ literal: StaticString) -> Bool {
        word.count == literal.utf8CodeUnitCount && word.elementsEqual(
            UnsafeBufferPointer(start: literal.utf8Start, count: literal.utf8CodeUnitCount))
    }
}
