/// Splits UTF-8 text into lower-cased words in one forward pass, without a String per word.
///
/// A word is a run of letters, digits and combining marks of any script. `.`, `-`, `_` and the apostrophe (`'`, or
/// U+2019, which is read as `'`) stay inside a word when a word character follows them, so "e-mail", "don't",
/// "3.5" and "www.example.com" are one word each. A `$` before a digit starts a word ("$25"): prices are pitch
/// talk. Han and kana characters are words of their own, since those scripts put no spaces between words;
/// neighbouring characters then pair up as words do. Everything else separates words; `,` `!` `?` and `:` are
/// reported as punctuation so that word pairs keep their context ("hi ,"), and a blank line as a paragraph end.
struct WordScanner {
    enum Item: Equatable {
        /// A word is in `word`; `digitsOnly` when it has no letter (and no `$`).
        case word(digitsOnly: Bool)
        case punctuation(UInt8)
        case paragraph
    }

    private let text: UnsafeBufferPointer<UInt8>
    private var index = 0
    /// Where the current word is written, lower-cased; `capacity(forMaxWordBytes:)` bytes.
    private let output: UnsafeMutablePointer<UInt8>
    private let outputCapacity: Int
    private var length = 0
    /// Bytes copied of one word. Longer words are still read to their end, so they are skipped whole, but come
    /// back with `tooLong` set.
    private let maxCopy: Int
    private(set) var tooLong = false

    /// The memory `output` must provide. Lower-casing can change a word's length (U+0130 "İ" becomes "i̇"), so a
    /// little past the bound is copied and the caller checks the bound on the lower-cased word.
    static func capacity(forMaxWordBytes maxWordBytes: Int) -> Int {
        (max(maxWordBytes, 0) * 2 + 4) * 2
    }

    init(_ text: UnsafeBufferPointer<UInt8>, maxWordBytes: Int, output: UnsafeMutablePointer<UInt8>) {
        self.text = text
        self.output = output
        self.outputCapacity = Self.capacity(forMaxWordBytes: maxWordBytes)
        self.maxCopy = max(maxWordBytes, 0) * 2 + 4
    }

    /// The current word, lower-cased (valid until the next call to `next()`).
    var word: UnsafeBufferPointer<UInt8> { UnsafeBufferPointer(start: output, count: length) }

    /// The next item; for `.word`, the word is in `word`.
    mutating func next() -> Item? {
        let count = text.count
        while index < count {
            let byte = text[index]
            if byte < 0x80 {
                if Self.isASCIIWordByte(byte) || (byte == 0x24 && index + 1 < count && Self.isDigit(text[index + 1])) {
                    return readWord()
                }
                index += 1
                switch byte {
                case 0x0A:
                    if atBlankLine() { return .paragraph }
                case 0x2C, 0x21, 0x3F, 0x3A:
                    return .punctuation(byte)
                default:
                    break
                }
                continue
            }
            let (scalar, scalarLength) = Self.decode(text, at: index)
            if Self.isIdeograph(scalar) {
                for i in 0..<scalarLength { output[i] = text[index + i] }
                length = scalarLength
                index += scalarLength
                tooLong = false
                return .word(digitsOnly: false)
            }
            if Self.isWordScalar(scalar) { return readWord() }
            index += scalarLength
        }
        return nil
    }

    /// Just after a line feed: whether the line is blank. Consumes it when so.
    private mutating func atBlankLine() -> Bool {
        var i = index
        while i < text.count, text[i] == 0x20 || text[i] == 0x09 || text[i] == 0x0D { i += 1 }
        guard i < text.count, text[i] == 0x0A else { return false }
        index = i + 1
        return true
    }

    private mutating func readWord() -> Item {
        let count = text.count
        var digitsOnly = true
        var ascii = true
        var copied = 0
        if text[index] == 0x24 {
            output[0] = 0x24
            copied = 1
            index += 1
            digitsOnly = false
        }
        while index < count {
            let byte = text[index]
            var scalarLength = 1
            if byte < 0x80 {
                if Self.isASCIIWordByte(byte) {
                    if digitsOnly, !Self.isDigit(byte) { digitsOnly = false }
                    if copied < maxCopy { output[copied] = byte &- 0x41 < 26 ? byte | 0x20 : byte }
                    copied += 1
                    index += 1
                    continue
                }
                guard byte == 0x2E || byte == 0x2D || byte == 0x5F || byte == 0x27 else { break }
            } else {
                let (scalar, decodedLength) = Self.decode(text, at: index)
                scalarLength = decodedLength
                if Self.isWordScalar(scalar), !Self.isIdeograph(scalar) {
                    digitsOnly = false
                    ascii = false
                    if copied + scalarLength <= maxCopy {
                        for i in 0..<scalarLength { output[copied + i] = text[index + i] }
                    }
                    copied += scalarLength
                    index += scalarLength
                    continue
                }
                guard scalar == "\u{2019}" else { break }
            }
            // A connector belongs to the word only when a word character follows it.
            let after = index + scalarLength
            guard after < count, isWordStart(at: after) else { break }
            if copied < maxCopy { output[copied] = scalarLength == 1 ? byte : 0x27 }
            copied += 1
            index = after
        }
        tooLong = copied > maxCopy
        length = tooLong ? 0 : copied
        if !tooLong, !ascii {
            // Full Unicode case mapping only for the few words that need it; ASCII was folded while copying.
            let original = UnsafeBufferPointer(start: output, count: length)
            let lowered = String(decoding: original, as: UTF8.self).lowercased()
            length = 0
            for byte in lowered.utf8 {
                guard length < outputCapacity else {
                    tooLong = true
                    length = 0
                    break
                }
                output[length] = byte
                length += 1
            }
        }
        return .word(digitsOnly: digitsOnly)
    }

    private func isWordStart(at offset: Int) -> Bool {
        let byte = text[offset]
        if byte < 0x80 { return Self.isASCIIWordByte(byte) }
        let scalar = Self.decode(text, at: offset).scalar
        return Self.isWordScalar(scalar) && !Self.isIdeograph(scalar)
    }

    @inline(__always)
    static func isDigit(_ byte: UInt8) -> Bool { byte &- 0x30 < 10 }

    @inline(__always)
    static func isASCIIWordByte(_ byte: UInt8) -> Bool {
        byte &- 0x30 < 10 || (byte | 0x20) &- 0x61 < 26
    }

    static func isWordScalar(_ scalar: Unicode.Scalar) -> Bool {
        switch scalar.properties.generalCategory {
        case .uppercaseLetter, .lowercaseLetter, .titlecaseLetter, .modifierLetter, .otherLetter,
             .nonspacingMark, .spacingMark, .enclosingMark, .decimalNumber, .letterNumber, .otherNumber:
            true
        default:
            false
        }
    }

    /// Hiragana, katakana and Han (CJK unified ideographs, extension A, compatibility ideographs).
    static func isIdeograph(_ scalar: Unicode.Scalar) -> Bool {
        switch scalar.value {
        case 0x3041...0x30FF, 0x3400...0x4DBF, 0x4E00...0x9FFF, 0xF900...0xFAFF: true
        default: false
        }
    }

    /// Decodes the scalar at `offset`. Swift strings are valid UTF-8, but a stray byte still reads as U+FFFD of
    /// length 1, so the scan always advances.
    @inline(__always)
    static func decode(_ text: UnsafeBufferPointer<UInt8>, at offset: Int) -> (scalar: Unicode.Scalar, length: Int) {
        let lead = UInt32(text[offset])
        let length: Int
        var value: UInt32
        switch lead {
        case 0xC2...0xDF: length = 2; value = lead & 0x1F
        case 0xE0...0xEF: length = 3; value = lead & 0x0F
        case 0xF0...0xF4: length = 4; value = lead & 0x07
        default: return ("\u{FFFD}", 1)
        }
        guard offset + length <= text.count else { return ("\u{FFFD}", 1) }
        for i in 1..<length {
            let continuation = UInt32(text[offset + i])
            guard continuation & 0xC0 == 0x80 else { return ("\u{FFFD}", 1) }
            value = value << 6 | (continuation & 0x3F)
        }
        return (Unicode.Scalar(value) ?? "\u{FFFD}", length)
    }
}
