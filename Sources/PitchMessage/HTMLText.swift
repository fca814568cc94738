// A hand-written HTML-to-text converter. Swift has no well-kept HTML parser we could depend on (and this module
// depends on nothing but the C library), and a spam filter needs bounded work on hostile input more than it needs
// a DOM: this is one forward pass over the bytes, HTML5's tokenizer rules where they matter for text, with no
// element stack, so the cost is linear in the input whatever the nesting.

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// An image the HTML shows (or hides): tracking pixels are 1×1 or hidden images.
public struct ImageReference: Hashable, Sendable {
    /// The `src` attribute, entity-decoded, trimmed of ASCII white space; "" when absent.
    public var source: String
    /// From `width="1"` / `width="1px"` or the style's `width:1px`; nil if absent or not a number.
    public var width: Int?
    /// Like `width`.
    public var height: Int?
    /// The style says `display:none` or `visibility:hidden`, or the element has the `hidden` attribute.
    public var isHidden: Bool
    /// The `alt` attribute, entity-decoded, not trimmed ("" if none).
    public var altText: String

    public init(source: String, width: Int? = nil, height: Int? = nil, isHidden: Bool = false, altText: String = "") {
        self.source = source
        self.width = width
        self.height = height
        self.isHidden = isHidden
        self.altText = altText
    }
}

/// The readable text of an HTML part, in reading order, and what it links to.
///
/// One forward pass over the UTF-8 bytes that follows HTML5's tokenizer where it matters for text and simplifies
/// elsewhere. No tree is built, so time is linear in the input and deep nesting costs nothing. The exact rules:
///
/// **Markup**, at each `<`:
/// - `<` + ASCII letter starts a tag, `</` + ASCII letter an end tag. The tag name runs to white space, `/` or `>`
///   and is compared ASCII-case-insensitively. Attributes as in HTML5: names case-insensitive; values
///   `"double-quoted"` or `'single-quoted'` (either may hold `>`) or unquoted (up to white space or `>`); a name
///   may have no value; of a repeated attribute the first counts; `/` between attributes is ignored, and so is a
///   self-closing `/>` (`<pre/>` opens a `pre`, `<script/>` a script).
/// - `<!--` starts a comment, which ends after the first `-->` or `--!>` that follows it; as in HTML5 the
///   `<!--`'s own dashes may start the `-->`, so `<!-->` and `<!--->` are empty comments. Outlook's
///   `<!--[if mso]>…<![endif]-->` is one comment. `<![CDATA[` ends after the first `]]>`, its content dropped.
///   Any other `<!…` (`<!DOCTYPE …>`, `<![if !mso]>`), any `<?…` and `</` + a non-letter end after the next `>`;
///   `</>` is dropped.
/// - Any other `<` (before a space, digit, `<`, `=`, at the very end…) is literal text: `a < b` stays `a < b`.
/// - A tag, comment or declaration that never closes drops the rest of the document, as browsers do
///   (`x <a href="y` gives "x"); so does an attribute quote that never closes.
/// - The contents of `script`, `style`, `title`, `template` and `xml` (Outlook's office settings) are dropped up to
///   the next `</name` + white space, `/` or `>` (any case); with no such end tag the rest of the document goes.
///
/// **Text**:
/// - Character references are decoded: the 252 named ones of HTML 4.01 plus `&apos;`, case-sensitive, with their
///   `;`; also without the `;` for `amp`, `lt`, `gt`, `quot`, `nbsp`, `copy` and `reg` when the name is followed by
///   neither a letter nor a digit (`&copy 2024` → "© 2024", `&copy2024` stays). Numeric `&#123;` and `&#x7B;`
///   (`x` either case, the `;` optional as in browsers); 0x80–0x9F mean their windows-1252 characters (`&#150;` →
///   "–"; 0x81, 0x8D, 0x8F, 0x90 and 0x9D stay as they are), and 0, surrogates and anything past 0x10FFFF become
///   U+FFFD. Anything else after `&` (unknown names, `&#;`, names longer than 8) stays literal.
/// - NUL bytes are dropped, in text and in attribute values.
/// - White space is space, tab, CR, LF, form feed and NBSP (literal or `&nbsp;`, `&#160;`…). Outside `pre`, a run
///   of it becomes one space. Inside `pre` (a depth count: `<pre>` adds one, `</pre>` takes one off) CR and LF
///   break the line and other white space is kept as it is, except that NBSP becomes a space.
/// - Images give no text.
///
/// **Lines**:
/// - `<br>` and `</br>` break the line; so do the start and end tags of the block elements: `p`, `div`, `h1`–`h6`,
///   `ul`, `ol`, `li`, `table`, `tr`, `blockquote`, `pre`, `hr`, `section`, `article`, `header`, `footer`, `nav`,
///   `aside`, `main`, `form`, `address`, `dl`, `dt`, `dd`, `center`, `fieldset`, `figure`, `figcaption`,
///   `details`, `summary`, `body`, `html`.
/// - Start and end tags of `td` and `th` count as white space (one space between cells).
/// - All other tags (`a`, `b`, `span`, `font`, `img`…) separate nothing: `W<b>or</b>d` gives "Word".
/// - Every output line is trimmed of white space at both ends (also inside `pre`), empty lines are left out, and
///   lines are joined with a single "\n", with none before the first or after the last.
///   `<p>Hi  <b>there</b></p><p>x</p>` gives "Hi there\nx".
///
/// **Links and images**:
/// - `links`: the `href` of every `<a>` and `<area>` that has one (even empty), entity-decoded and trimmed of
///   ASCII white space, in document order, duplicates kept. Nothing is taken from `<link>`.
/// - `images`: every `<img>` (and `<image>`, which HTML5 reads as `img`), with or without `src`.
/// - In attribute values a semicolon-less `amp`, `lt`… followed by `=` stays literal, as in HTML5, so that
///   `?a=1&copy=2` keeps its parameter.
/// - Widths and heights: optional white space, decimal digits, an optional fraction (dropped), an optional `px`
///   (any case), optional white space; anything else (`100%`, `auto`, `-1`) is no number. Values saturate at
///   2,147,483,647. The style's last `width` (`height`) declaration wins over the attribute when it is a number.
/// - Styles: `;`-separated `property: value` declarations, property and value trimmed and case-insensitive,
///   `!important` ignored, the last declaration of a property counting.
///
/// **Bounds**:
/// - `text` holds at most `maxTextBytes` UTF-8 bytes (a negative bound counts as 0). It is cut before the first
///   character that does not fit, and a separator is only written together with a character after it, so the
///   text never splits a scalar nor ends in white space, and may stop a few bytes short of the bound.
///   `.textTruncated` is then recorded once, and text collection stops.
/// - Links and images go on being collected after that, up to `maxReferences` each; past that bound,
///   `.htmlTooComplex` is recorded once (detail: "more than 10000 links" or "… images") and that list stops.
public struct HTMLText: Hashable, Sendable {
    public var text: String
    /// `href` of `<a>` and `<area>`, entity-decoded, trimmed, in document order, duplicates kept.
    public var links: [String]
    public var images: [ImageReference]
    /// Where `text` holds what the reader is not shown: the content of a `div`, `span` or `table` hidden by its
    /// style or the `hidden` attribute (`display: none`, `visibility: hidden`, `mso-hide: all`, `opacity: 0`,
    /// `max-height: 0` with `overflow: hidden`), up to its matching end tag (or the document's end), the tags of
    /// the same name inside counted. A marketing mail's preheader is such text: the inbox shows it beside the
    /// subject, the opened message does not, and it comes before the greeting. At most `maxReferences` ranges,
    /// in order; a range may begin with the line break before its text.
    public var hiddenRanges: [Range<Int>]
    public var defects: [Defect]

    /// The most links, and separately the most images, recorded from one part.
    public static let maxReferences = 10_000

    /// Converts `html`, keeping at most `maxTextBytes` UTF-8 bytes of text.
    public init(html: String, maxTextBytes: Int = Limits.default.maxDecodedTextBytes) {
        var converter = HTMLConverter(maxTextBytes: maxTextBytes)
        let ranInPlace = html.utf8.withContiguousStorageIfAvailable { converter.run($0) } != nil
        if !ranInPlace {
            let bytes = Array(html.utf8)
            bytes.withUnsafeBufferPointer { converter.run($0) }
        }
        text = String(decoding: converter.output, as: UTF8.self)
        links = converter.links
        images = converter.images
        hiddenRanges = converter.hiddenRanges
        defects = converter.defects
    }
}

// MARK: - Converter

/// What a tag name means to the converter.
private enum TagKind: UInt8 {
    case other, rawText, block, pre, lineBreak, cell, link, image
}

/// A name of up to 16 bytes packed into two words, first byte lowest, so that lookups build no String. Packing is
/// one-to-one for names without NUL bytes (the only ones looked up).
private struct PackedName: Equatable {
    var low: UInt64 = 0
    var high: UInt64 = 0

    static let maxLength = 16

    init() {}

    init(_ name: String) {
        for (offset, byte) in name.utf8.prefix(Self.maxLength).enumerated() { add(byte, at: offset) }
    }

    @inline(__always) mutating func add(_ byte: UInt8, at offset: Int) {
        if offset < 8 {
            low |= UInt64(byte) << UInt64(offset * 8)
        } else {
            high |= UInt64(byte) << UInt64((offset - 8) * 8)
        }
    }
}

/// A fixed open-addressing table from packed names to small values: a lookup costs a multiply and a compare or
/// two, where a Dictionary would run a full `Hasher` for every tag in the document.
private struct NameTable: Sendable {
    private struct Entry: Sendable {
        var low: UInt64
        var high: UInt64
        var value: UInt32
    }

    private var entries: [Entry]
    private let shift: UInt64

    init(_ pairs: [(String, UInt32)]) {
        var capacityBits: UInt64 = 4
        while 1 << capacityBits < pairs.count * 4 { capacityBits += 1 }
        shift = 64 - capacityBits
        entries = Array(repeating: Entry(low: 0, high: 0, value: 0), count: 1 << capacityBits)
        for (name, value) in pairs {
            let key = PackedName(name)
            var slot = slotFor(key)
            while entries[slot].low != 0 { slot = (slot + 1) & (entries.count - 1) }
            entries[slot] = Entry(low: key.low, high: key.high, value: value)
        }
    }

    @inline(__always) private func slotFor(_ key: PackedName) -> Int {
        Int(truncatingIfNeeded: ((key.low ^ key.high &* 0x9E37_79B9) &* 0x9E37_79B9_7F4A_7C15) >> shift)
    }

    /// The value stored for `key`; nil when it is absent. `key.low` is never 0 for a non-empty name.
    @inline(__always) func value(_ key: PackedName) -> UInt32? {
        var slot = slotFor(key)
        while true {
            let entry = entries[slot]
            if entry.low == key.low && entry.high == key.high { return entry.value }
            if entry.low == 0 { return nil }
            slot = (slot + 1) & (entries.count - 1)
        }
    }
}

/// The tag names the converter acts on, with their `TagKind` raw values.
private let tagTable: NameTable = {
    var pairs: [(String, UInt32)] = []
    func add(_ names: [String], _ kind: TagKind) {
        pairs += names.map { ($0, UInt32(kind.rawValue)) }
    }
    add(["script", "style", "title", "template", "xml"], .rawText)
    add([
        "p", "div", "h1", "h2", "h3", "h4", "h5", "h6", "ul", "ol", "li", "table", "tr", "blockquote", "hr",
        "section", "article", "header", "footer", "nav", "aside", "main", "form", "address", "dl", "dt", "dd",
        "center", "fieldset", "figure", "figcaption", "details", "summary", "body", "html",
    ], .block)
    add(["pre"], .pre)
    add(["br"], .lineBreak)
    add(["td", "th"], .cell)
    add(["a", "area"], .link)
    add(["img", "image"], .image)
    return NameTable(pairs)
}()

/// Set in an entity's value when the name is also decoded without its semicolon.
private let legacyEntityFlag: UInt32 = 1 << 31

/// `HTMLEntities.named`, with `legacyEntityFlag` on the legacy names.
private let entityTable = NameTable(HTMLEntities.named.map { name, scalar in
    (name, scalar.value | (HTMLEntities.legacyNames.contains(name) ? legacyEntityFlag : 0))
})

/// Where the attributes the converter reads sit in the input (raw, before entity decoding).
private struct AttributeRanges {
    var href: Range<Int>?
    var source: Range<Int>?
    var width: Range<Int>?
    var height: Range<Int>?
    var style: Range<Int>?
    var alt: Range<Int>?
    var hidden = false
}

/// Where an inline style's declarations that matter for images put their values (ranges into the style).
private struct StyleFacts {
    var width: Range<Int>?
    var height: Range<Int>?
    var display: Range<Int>?
    var visibility: Range<Int>?
    var maxHeight: Range<Int>?
    var overflow: Range<Int>?
    var opacity: Range<Int>?
    var msoHide: Range<Int>?

    /// Whether an element with this style shows its content: not when `display: none` or `visibility: hidden`, nor
    /// the other ways a mail's preheader is kept out of sight (Outlook's `mso-hide: all`, `opacity: 0`, a
    /// `max-height: 0` that hides what overflows).
    func hidesContent(_ css: [UInt8]) -> Bool {
        func isZero(_ range: Range<Int>?) -> Bool {
            guard let range else { return false }
            let value = css[range]
            let number = value.prefix { $0 == UInt8(ascii: "0") || $0 == Byte.dot }
            return !number.isEmpty && (number.count == value.count || equalsIgnoringCase(value[number.endIndex...], "px"))
        }
        func says(_ range: Range<Int>?, _ word: StaticString) -> Bool {
            range.map { equalsIgnoringCase(css[$0], word) } ?? false
        }
        return says(display, "none") || says(visibility, "hidden") || says(msoHide, "all") || isZero(opacity)
            || (isZero(maxHeight) && says(overflow, "hidden"))
    }
}

private enum Byte {
    static let nul: UInt8 = 0x00
    static let tab: UInt8 = 0x09
    static let lineFeed: UInt8 = 0x0A
    static let formFeed: UInt8 = 0x0C
    static let carriageReturn: UInt8 = 0x0D
    static let space: UInt8 = 0x20
    static let bang: UInt8 = 0x21
    static let doubleQuote: UInt8 = 0x22
    static let hash: UInt8 = 0x23
    static let ampersand: UInt8 = 0x26
    static let singleQuote: UInt8 = 0x27
    static let dash: UInt8 = 0x2D
    static let dot: UInt8 = 0x2E
    static let slash: UInt8 = 0x2F
    static let colon: UInt8 = 0x3A
    static let semicolon: UInt8 = 0x3B
    static let lessThan: UInt8 = 0x3C
    static let equals: UInt8 = 0x3D
    static let greaterThan: UInt8 = 0x3E
    static let question: UInt8 = 0x3F
    static let rightBracket: UInt8 = 0x5D
    static let nbspLead: UInt8 = 0xC2
    static let nbspTrail: UInt8 = 0xA0

    /// Bytes below 64 that stop a run of plain text: NUL, tab, LF, FF, CR, space, `&`, `<`. (0xC2, which may
    /// start an NBSP, is checked apart.)
    static let textStopMask: UInt64 = 1 << 0 | 1 << 9 | 1 << 10 | 1 << 12 | 1 << 13 | 1 << 32 | 1 << 38 | 1 << 60
    /// HTML white space: tab, LF, FF, CR, space.
    static let spaceMask: UInt64 = 1 << 9 | 1 << 10 | 1 << 12 | 1 << 13 | 1 << 32

    @inline(__always) static func stopsText(_ byte: UInt8) -> Bool {
        byte < 64 ? (textStopMask >> UInt64(byte)) & 1 != 0 : byte == nbspLead
    }

    @inline(__always) static func isSpace(_ byte: UInt8) -> Bool {
        byte <= 0x20 && (spaceMask >> UInt64(byte)) & 1 != 0
    }

    @inline(__always) static func isLetter(_ byte: UInt8) -> Bool {
        (byte | 0x20) &- 0x61 < 26
    }

    @inline(__always) static func isAlphanumeric(_ byte: UInt8) -> Bool {
        isLetter(byte) || byte &- 0x30 < 10
    }

    @inline(__always) static func lowercased(_ byte: UInt8) -> UInt8 {
        byte &- 0x41 < 26 ? byte | 0x20 : byte
    }

    /// Where a tag name ends.
    @inline(__always) static func endsTagName(_ byte: UInt8) -> Bool {
        isSpace(byte) || byte == slash || byte == greaterThan
    }

    /// Where an attribute name ends (after its first byte, which may even be `=`).
    @inline(__always) static func endsAttributeName(_ byte: UInt8) -> Bool {
        isSpace(byte) || byte == slash || byte == greaterThan || byte == equals
    }
}

/// The scalar a numeric character reference stands for, per HTML5: C1 controls read as windows-1252, and values
/// no character can have become U+FFFD.
private func numericReferenceScalar(_ value: UInt32) -> UInt32 {
    switch value {
    case 0, 0xD800...0xDFFF, 0x110000...: return 0xFFFD
    case 0x80: return 0x20AC
    case 0x82: return 0x201A
    case 0x83: return 0x0192
    case 0x84: return 0x201E
    case 0x85: return 0x2026
    case 0x86: return 0x2020
    case 0x87: return 0x2021
    case 0x88: return 0x02C6
    case 0x89: return 0x2030
    case 0x8A: return 0x0160
    case 0x8B: return 0x2039
    case 0x8C: return 0x0152
    case 0x8E: return 0x017D
    case 0x91: return 0x2018
    case 0x92: return 0x2019
    case 0x93: return 0x201C
    case 0x94: return 0x201D
    case 0x95: return 0x2022
    case 0x96: return 0x2013
    case 0x97: return 0x2014
    case 0x98: return 0x02DC
    case 0x99: return 0x2122
    case 0x9A: return 0x0161
    case 0x9B: return 0x203A
    case 0x9C: return 0x0153
    case 0x9E: return 0x017E
    case 0x9F: return 0x0178
    default: return value
    }
}

/// The length of a scalar value's UTF-8 form (callers keep values valid: no surrogates, at most 0x10FFFF).
@inline(__always) private func utf8Length(_ scalar: UInt32) -> Int {
    scalar < 0x80 ? 1 : scalar < 0x800 ? 2 : scalar < 0x10000 ? 3 : 4
}

private func appendUTF8(_ scalar: UInt32, to bytes: inout [UInt8]) {
    switch utf8Length(scalar) {
    case 1:
        bytes.append(UInt8(scalar))
    case 2:
        bytes.append(UInt8(0xC0 | scalar >> 6))
        bytes.append(UInt8(0x80 | scalar & 0x3F))
    case 3:
        bytes.append(UInt8(0xE0 | scalar >> 12))
        bytes.append(UInt8(0x80 | scalar >> 6 & 0x3F))
        bytes.append(UInt8(0x80 | scalar & 0x3F))
    default:
        bytes.append(UInt8(0xF0 | scalar >> 18))
        bytes.append(UInt8(0x80 | scalar >> 12 & 0x3F))
        bytes.append(UInt8(0x80 | scalar >> 6 & 0x3F))
        bytes.append(UInt8(0x80 | scalar & 0x3F))
    }
}

/// Trims HTML white space (tab, LF, FF, CR, space) from both ends.
private func trimmedSpace(_ bytes: ArraySlice<UInt8>) -> ArraySlice<UInt8> {
    var start = bytes.startIndex
    var end = bytes.endIndex
    while start < end && Byte.isSpace(bytes[start]) { start += 1 }
    while end > start && Byte.isSpace(bytes[end - 1]) { end -= 1 }
    return bytes[start..<end]
}

/// Reads a width or height: digits, an optional fraction, an optional `px`, white space around. See `HTMLText`.
private func parseLength(_ raw: ArraySlice<UInt8>) -> Int? {
    let bytes = trimmedSpace(raw)
    var index = bytes.startIndex
    let end = bytes.endIndex
    let cap = Int(Int32.max)
    var value = 0
    while index < end, bytes[index] &- 0x30 < 10 {
        value = min(value * 10 + Int(bytes[index] &- 0x30), cap)
        index += 1
    }
    guard index > bytes.startIndex else { return nil }
    if index < end && bytes[index] == Byte.dot {
        index += 1
        while index < end, bytes[index] &- 0x30 < 10 { index += 1 }
    }
    if end - index == 2 && Byte.lowercased(bytes[index]) == 0x70 && Byte.lowercased(bytes[index + 1]) == 0x78 {
        index += 2
    }
    return index == end ? value : nil
}

/// Whether `bytes` is `lowercase` in any ASCII case.
private func equalsIgnoringCase(_ bytes: ArraySlice<UInt8>, _ lowercase: StaticString) -> Bool {
    guard bytes.count == lowercase.utf8CodeUnitCount else { return false }
    return lowercase.withUTF8Buffer { expected in
        var offset = 0
        for byte in bytes {
            if Byte.lowercased(byte) != expected[offset] { return false }
            offset += 1
        }
        return true
    }
}

/// Finds the declarations of an inline style that matter for images. See `HTMLText`.
private func parseStyle(_ css: [UInt8]) -> StyleFacts {
    var facts = StyleFacts()
    var start = 0
    while start < css.count {
        let end = css[start...].firstIndex(of: Byte.semicolon) ?? css.count
        defer { start = end + 1 }
        guard let colon = css[start..<end].firstIndex(of: Byte.colon) else { continue }
        let property = trimmedSpace(css[start..<colon])
        var value = trimmedSpace(css[(colon + 1)..<end])
        if let bang = value.firstIndex(of: Byte.bang),
           equalsIgnoringCase(trimmedSpace(value[(bang + 1)...]), "important") {
            value = trimmedSpace(value[..<bang])
        }
        if let fact = styleProperties.first(where: { equalsIgnoringCase(property, $0.name) }) {
            facts[keyPath: fact.value] = value.startIndex..<value.endIndex
        }
    }
    return facts
}

/// The style properties the converter reads, and where their values go.
private let styleProperties: [(name: StaticString, value: any WritableKeyPath<StyleFacts, Range<Int>?> & Sendable)] = [
    ("width", \.width), ("height", \.height), ("display", \.display), ("visibility", \.visibility),
    ("max-height", \.maxHeight), ("overflow", \.overflow), ("opacity", \.opacity), ("mso-hide", \.msoHide),
]

/// The single pass. Separators (spaces, line breaks) are held back until visible text follows them, which is what
/// keeps lines trimmed and free of empty ones without a second pass.
private struct HTMLConverter {
    let maxTextBytes: Int
    var input = UnsafeBufferPointer<UInt8>(start: nil, count: 0)

    var output: [UInt8] = []
    var links: [String] = []
    var images: [ImageReference] = []
    var defects: [Defect] = []

    /// A line break is owed before the next visible text.
    var pendingBreak = false
    /// A space is owed before the next visible text on this line.
    var pendingSpace = false
    /// White space seen inside `pre`, owed verbatim before the next visible text on this line.
    var pendingPreSpace: [UInt8] = []
    var preDepth = 0
    /// The hidden element the converter is inside: its name, how many elements of that name are open, and where
    /// its text began in `output`.
    var hiddenElement: (name: PackedName, depth: Int, start: Int)?
    /// Block and cell elements of other names opened inside the hidden element: an end tag of such a kind with
    /// none open closes an element around the hidden one, and with it the hidden one, as browsers do
    /// (`<div><span hidden>x</div>`: found in review, the rest of the document read as hidden).
    var blocksInsideHidden = 0
    var hiddenRanges: [Range<Int>] = []
    /// The text bound was reached: only links and images are still collected.
    var textIsFull = false
    var reportedTooComplex = false

    // Copied in once so the hot paths do not go through lazy-global checks.
    let tags = tagTable
    let entities = entityTable
    let hrefName = PackedName("href")
    let sourceName = PackedName("src")
    let widthName = PackedName("width")
    let heightName = PackedName("height")
    let styleName = PackedName("style")
    let altName = PackedName("alt")
    let hiddenName = PackedName("hidden")
    /// The elements whose hiding is followed to their end tag: ones whose end tag HTML requires, so that a hidden
    /// element's end is where its end tag is.
    let hidingElements = [PackedName("div"), PackedName("span"), PackedName("table")]

    init(maxTextBytes: Int) {
        self.maxTextBytes = max(maxTextBytes, 0)
    }

    mutating func run(_ bytes: UnsafeBufferPointer<UInt8>) {
        input = bytes
        let count = bytes.count
        output.reserveCapacity(min(count, maxTextBytes))
        var index = 0
        while index < count {
            if textIsFull {
                // Text is done: go from tag to tag, for the links and images.
                guard let next = find(Byte.lessThan, from: index) else { break }
                index = markup(at: next)
                continue
            }
            let byte = bytes[index]
            if !Byte.stopsText(byte) {
                let end = plainTextEnd(from: index + 1)
                emitText(index, end)
                index = end
                continue
            }
            switch byte {
            case Byte.lessThan:
                index = markup(at: index)
            case Byte.ampersand:
                if let (scalar, next) = decodeReference(at: index, end: count, inAttribute: false) {
                    emitScalar(scalar)
                    index = next
                } else {
                    emitText(index, index + 1)
                    index += 1
                }
            case Byte.space, Byte.tab, Byte.formFeed:
                whiteSpace(byte)
                index += 1
            case Byte.lineFeed, Byte.carriageReturn:
                newline()
                index += 1
            case Byte.nul:
                index += 1
            default:  // 0xC2: NBSP, or the start of some other two-byte character
                if index + 1 < count && bytes[index + 1] == Byte.nbspTrail {
                    whiteSpace(Byte.space)
                    index += 2
                } else {
                    let end = plainTextEnd(from: index + 1)
                    emitText(index, end)
                    index = end
                }
            }
        }
        if hiddenElement != nil { endHiddenElement() }
    }

    /// The end of the run of plain text bytes starting at `start`.
    @inline(__always) func plainTextEnd(from start: Int) -> Int {
        var end = start
        let count = input.count
        while end < count {
            let byte = input[end]
            if !Byte.stopsText(byte) {
                end += 1
            } else if byte == Byte.nbspLead && !(end + 1 < count && input[end + 1] == Byte.nbspTrail) {
                end += 1
            } else {
                break
            }
        }
        return end
    }

    /// The index of the next `byte` at or after `start`.
    func find(_ byte: UInt8, from start: Int) -> Int? {
        guard start < input.count, let base = input.baseAddress else { return nil }
        guard let hit = memchr(base + start, Int32(byte), input.count - start) else { return nil }
        return UnsafeRawPointer(base).distance(to: UnsafeRawPointer(hit))
    }

    // MARK: Text output

    mutating func whiteSpace(_ byte: UInt8) {
        if preDepth == 0 {
            pendingSpace = true
        } else if !pendingBreak && !output.isEmpty && pendingPreSpace.count <= maxTextBytes {
            // Leading white space of a line is never written, so it is not kept either; past the bound it could
            // never be written whole, so it need not grow.
            pendingPreSpace.append(byte)
        }
    }

    mutating func newline() {
        if preDepth == 0 {
            pendingSpace = true
        } else {
            lineBreak()
        }
    }

    mutating func lineBreak() {
        pendingBreak = true
        pendingSpace = false
        if !pendingPreSpace.isEmpty { pendingPreSpace.removeAll(keepingCapacity: true) }
    }

    /// Bytes the owed separator takes.
    var separatorLength: Int {
        if output.isEmpty { return 0 }
        if pendingBreak { return 1 }
        return (pendingSpace ? 1 : 0) + pendingPreSpace.count
    }

    mutating func writeSeparator() {
        if !output.isEmpty {
            if pendingBreak {
                output.append(Byte.lineFeed)
            } else {
                if pendingSpace { output.append(Byte.space) }
                output.append(contentsOf: pendingPreSpace)
            }
        }
        pendingBreak = false
        pendingSpace = false
        if !pendingPreSpace.isEmpty { pendingPreSpace.removeAll(keepingCapacity: true) }
    }

    mutating func truncate() {
        textIsFull = true
        defects.append(Defect(.textTruncated))
    }

    /// Writes input bytes `start..<end`, which begin and end on scalar boundaries and hold no white space.
    mutating func emitText(_ start: Int, _ end: Int) {
        guard !textIsFull, start < end else { return }
        let room = maxTextBytes - output.count - separatorLength
        var cut = end
        if end - start > room {
            cut = start + max(room, 0)
            while cut > start && input[cut] & 0xC0 == 0x80 { cut -= 1 }
        }
        if cut > start {
            writeSeparator()
            output.append(contentsOf: UnsafeBufferPointer(rebasing: input[start..<cut]))
        }
        if cut < end { truncate() }
    }

    /// Writes a decoded character, treating white space as the text rules say.
    mutating func emitScalar(_ scalar: UInt32) {
        switch scalar {
        case 0x20, 0x09, 0x0C:
            whiteSpace(UInt8(scalar))
        case 0xA0:
            whiteSpace(Byte.space)
        case 0x0A, 0x0D:
            newline()
        default:
            guard !textIsFull else { return }
            if utf8Length(scalar) > maxTextBytes - output.count - separatorLength {
                truncate()
                return
            }
            writeSeparator()
            appendUTF8(scalar, to: &output)
        }
    }

    // MARK: Markup

    /// Handles the `<` at `start`; returns where text resumes (the input's end when the document is over).
    mutating func markup(at start: Int) -> Int {
        let count = input.count
        let next = start + 1
        guard next < count else {
            emitText(start, next)
            return count
        }
        let byte = input[next]
        if Byte.isLetter(byte) { return startTag(nameAt: next) }
        switch byte {
        case Byte.slash:
            let nameAt = next + 1
            guard nameAt < count else { return count }
            if Byte.isLetter(input[nameAt]) { return endTag(nameAt: nameAt) }
            return after(Byte.greaterThan, from: nameAt)
        case Byte.bang:
            if hasPrefix("--", at: next + 1) { return commentEnd(openedAt: start) }
            if hasPrefix("[CDATA[", at: next + 1) { return cdataEnd(from: next + 8) }
            return after(Byte.greaterThan, from: next + 1)
        case Byte.question:
            return after(Byte.greaterThan, from: next + 1)
        default:
            emitText(start, next)
            return next
        }
    }

    /// Just past the next `byte`, or the input's end when there is none.
    func after(_ byte: UInt8, from start: Int) -> Int {
        guard let hit = find(byte, from: start) else { return input.count }
        return hit + 1
    }

    func hasPrefix(_ prefix: StaticString, at start: Int) -> Bool {
        let length = prefix.utf8CodeUnitCount
        guard start + length <= input.count else { return false }
        return prefix.withUTF8Buffer { expected in
            for offset in 0..<length where input[start + offset] != expected[offset] {
                return false
            }
            return true
        }
    }

    /// Just past the comment opened by the `<!--` at `start`.
    func commentEnd(openedAt start: Int) -> Int {
        let count = input.count
        var from = start + 2
        while let dash = find(Byte.dash, from: from) {
            guard dash + 2 < count else { return count }
            if input[dash + 1] == Byte.dash {
                if input[dash + 2] == Byte.greaterThan { return dash + 3 }
                if dash >= start + 4 && input[dash + 2] == Byte.bang && dash + 3 < count
                    && input[dash + 3] == Byte.greaterThan {
                    return dash + 4
                }
            }
            from = dash + 1
        }
        return count
    }

    /// Just past the `]]>` closing a CDATA section whose content starts at `start`.
    func cdataEnd(from start: Int) -> Int {
        let count = input.count
        var from = start
        while let bracket = find(Byte.rightBracket, from: from) {
            guard bracket + 2 < count else { return count }
            if input[bracket + 1] == Byte.rightBracket && input[bracket + 2] == Byte.greaterThan {
                return bracket + 3
            }
            from = bracket + 1
        }
        return count
    }

    /// The input bytes `start..<end` lowercased and packed; nil when they cannot be a name the converter knows.
    @inline(__always) func packedLowercase(_ start: Int, _ end: Int) -> PackedName? {
        guard end - start <= PackedName.maxLength else { return nil }
        var key = PackedName()
        for index in start..<end {
            let byte = Byte.lowercased(input[index])
            guard byte != Byte.nul else { return nil }  // would pack like a shorter name
            key.add(byte, at: index - start)
        }
        return key
    }

    func tagKind(_ key: PackedName?) -> TagKind {
        guard let key, let value = tags.value(key) else { return .other }
        return TagKind(rawValue: UInt8(truncatingIfNeeded: value)) ?? .other
    }

    mutating func startTag(nameAt nameStart: Int) -> Int {
        let count = input.count
        var nameEnd = nameStart + 1
        while nameEnd < count && !Byte.endsTagName(input[nameEnd]) { nameEnd += 1 }
        let key = packedLowercase(nameStart, nameEnd)
        let kind = tagKind(key)
        var mayHide = false
        if let key, hidingElements.contains(key) {
            if hiddenElement?.name == key { hiddenElement?.depth += 1 }
            mayHide = hiddenElement == nil && !textIsFull && hiddenRanges.count < HTMLText.maxReferences
        }
        var attributes = AttributeRanges()
        guard let end = scanAttributes(from: nameEnd, collect: kind == .link || kind == .image || mayHide,
                                       into: &attributes)
        else { return count }
        if hiddenElement != nil, hiddenElement?.name != key, kind == .block || kind == .cell || kind == .pre {
            blocksInsideHidden += 1
        }
        defer {
            if mayHide, let key, hides(attributes) {
                hiddenElement = (key, 1, output.count)
                blocksInsideHidden = 0
            }
        }
        switch kind {
        case .rawText:
            return rawTextEnd(from: end, nameStart: nameStart, nameLength: nameEnd - nameStart)
        case .block, .lineBreak:
            lineBreak()
        case .pre:
            lineBreak()
            preDepth += 1
        case .cell:
            pendingSpace = true
        case .link:
            if let href = attributes.href { addLink(href) }
        case .image:
            addImage(attributes)
        case .other:
            break
        }
        return end
    }

    mutating func endTag(nameAt nameStart: Int) -> Int {
        let count = input.count
        var nameEnd = nameStart + 1
        while nameEnd < count && !Byte.endsTagName(input[nameEnd]) { nameEnd += 1 }
        var ignored = AttributeRanges()
        guard let end = scanAttributes(from: nameEnd, collect: false, into: &ignored) else { return count }
        let key = packedLowercase(nameStart, nameEnd)
        let kind = tagKind(key)
        defer {
            if let hidden = hiddenElement {
                if hidden.name == key {
                    hiddenElement?.depth -= 1
                    if hidden.depth == 1 { endHiddenElement() }
                } else if kind == .block || kind == .cell || kind == .pre {
                    if blocksInsideHidden > 0 { blocksInsideHidden -= 1 } else { endHiddenElement() }
                }
            }
        }
        switch kind {
        case .block, .lineBreak:
            lineBreak()
        case .pre:
            lineBreak()
            if preDepth > 0 { preDepth -= 1 }
        case .cell:
            pendingSpace = true
        default:
            break
        }
        return end
    }

    /// Whether an element with these attributes hides its content.
    func hides(_ attributes: AttributeRanges) -> Bool {
        if attributes.hidden { return true }
        guard let style = attributes.style else { return false }
        let css = attributeBytes(style)
        return parseStyle(css).hidesContent(css)
    }

    mutating func endHiddenElement() {
        guard let hidden = hiddenElement else { return }
        hiddenElement = nil
        guard hidden.start < output.count else { return }
        if let last = hiddenRanges.last, last.upperBound == hidden.start {
            hiddenRanges[hiddenRanges.count - 1] = last.lowerBound..<output.count
        } else {
            hiddenRanges.append(hidden.start..<output.count)
        }
    }

    /// Reads attributes up to the tag's `>`; returns the index past it, or nil when the tag never closes.
    func scanAttributes(from start: Int, collect: Bool, into attributes: inout AttributeRanges) -> Int? {
        let count = input.count
        var index = start
        while true {
            while index < count && (Byte.isSpace(input[index]) || input[index] == Byte.slash) { index += 1 }
            guard index < count else { return nil }
            if input[index] == Byte.greaterThan { return index + 1 }
            let nameStart = index
            index += 1
            while index < count && !Byte.endsAttributeName(input[index]) { index += 1 }
            let nameEnd = index
            while index < count && Byte.isSpace(input[index]) { index += 1 }
            var value = nameEnd..<nameEnd
            if index < count && input[index] == Byte.equals {
                index += 1
                while index < count && Byte.isSpace(input[index]) { index += 1 }
                guard index < count else { return nil }
                let quote = input[index]
                if quote == Byte.doubleQuote || quote == Byte.singleQuote {
                    guard let close = find(quote, from: index + 1) else { return nil }
                    value = (index + 1)..<close
                    index = close + 1
                } else {
                    let valueStart = index
                    while index < count && !Byte.isSpace(input[index]) && input[index] != Byte.greaterThan {
                        index += 1
                    }
                    value = valueStart..<index
                }
            }
            if collect { record(nameStart..<nameEnd, value, into: &attributes) }
        }
    }

    /// Keeps the first occurrence of each attribute the converter reads.
    func record(_ name: Range<Int>, _ value: Range<Int>, into attributes: inout AttributeRanges) {
        guard name.count <= 6, let key = packedLowercase(name.lowerBound, name.upperBound) else { return }
        switch key {
        case hrefName: if attributes.href == nil { attributes.href = value }
        case sourceName: if attributes.source == nil { attributes.source = value }
        case widthName: if attributes.width == nil { attributes.width = value }
        case heightName: if attributes.height == nil { attributes.height = value }
        case styleName: if attributes.style == nil { attributes.style = value }
        case altName: if attributes.alt == nil { attributes.alt = value }
        case hiddenName: attributes.hidden = true
        default: break
        }
    }

    /// Skips the content of a script-like element whose start tag ended at `start`; returns the index past its end
    /// tag, or the input's end.
    func rawTextEnd(from start: Int, nameStart: Int, nameLength: Int) -> Int {
        let count = input.count
        var from = start
        while let open = find(Byte.lessThan, from: from) {
            from = open + 1
            let nameAt = open + 2
            let nameEnd = nameAt + nameLength
            guard nameEnd <= count else { return count }
            guard input[open + 1] == Byte.slash else { continue }
            var matches = true
            for offset in 0..<nameLength
            where Byte.lowercased(input[nameAt + offset]) != Byte.lowercased(input[nameStart + offset]) {
                matches = false
                break
            }
            guard matches else { continue }
            guard nameEnd < count else { return count }
            guard Byte.endsTagName(input[nameEnd]) else { continue }
            var ignored = AttributeRanges()
            return scanAttributes(from: nameEnd, collect: false, into: &ignored) ?? count
        }
        return count
    }

    // MARK: Character references

    /// Decodes the character reference at `start` (an `&`) that must end before `end`; nil when it stays literal.
    func decodeReference(at start: Int, end: Int, inAttribute: Bool) -> (scalar: UInt32, next: Int)? {
        var index = start + 1
        guard index < end else { return nil }
        if input[index] == Byte.hash {
            index += 1
            var radix: UInt32 = 10
            if index < end && input[index] | 0x20 == 0x78 {
                radix = 16
                index += 1
            }
            let digitsStart = index
            var value: UInt32 = 0
            while index < end {
                let byte = input[index]
                let digit: UInt32
                if byte &- 0x30 < 10 {
                    digit = UInt32(byte &- 0x30)
                } else if radix == 16 && (byte | 0x20) &- 0x61 < 6 {
                    digit = UInt32((byte | 0x20) &- 0x61) + 10
                } else {
                    break
                }
                value = min(value * radix + digit, 0x110000)  // saturates: anything past 0x10FFFF is U+FFFD
                index += 1
            }
            guard index > digitsStart else { return nil }
            if index < end && input[index] == Byte.semicolon { index += 1 }
            return (numericReferenceScalar(value), index)
        }
        let nameStart = index
        while index < end && index - nameStart <= HTMLEntities.maxNameLength && Byte.isAlphanumeric(input[index]) {
            index += 1
        }
        let length = index - nameStart
        guard length > 0 && length <= HTMLEntities.maxNameLength else { return nil }
        var key = PackedName()
        for offset in 0..<length { key.add(input[nameStart + offset], at: offset) }
        guard let value = entities.value(key) else { return nil }
        let scalar = value & ~legacyEntityFlag
        if index < end && input[index] == Byte.semicolon { return (scalar, index + 1) }
        // Without `;`: the name is the whole alphanumeric run, so it is already followed by a non-alphanumeric.
        guard value & legacyEntityFlag != 0 else { return nil }
        if inAttribute && index < end && input[index] == Byte.equals { return nil }
        return (scalar, index)
    }

    // MARK: Links and images

    /// An attribute value, entity-decoded, NULs dropped.
    func attributeBytes(_ range: Range<Int>) -> [UInt8] {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(range.count)
        var index = range.lowerBound
        var copied = index  // bytes before this are in `bytes`
        while index < range.upperBound {
            let byte = input[index]
            guard byte == Byte.ampersand || byte == Byte.nul else {
                index += 1
                continue
            }
            bytes.append(contentsOf: UnsafeBufferPointer(rebasing: input[copied..<index]))
            if byte == Byte.ampersand,
               let (scalar, next) = decodeReference(at: index, end: range.upperBound, inAttribute: true) {
                appendUTF8(scalar, to: &bytes)
                index = next
            } else {
                if byte == Byte.ampersand { bytes.append(byte) }
                index += 1
            }
            copied = index
        }
        bytes.append(contentsOf: UnsafeBufferPointer(rebasing: input[copied..<index]))
        return bytes
    }

    func attributeString(_ range: Range<Int>, trimmed: Bool) -> String {
        let bytes = attributeBytes(range)
        return String(decoding: trimmed ? trimmedSpace(bytes[...]) : bytes[...], as: UTF8.self)
    }

    mutating func reportTooComplex(_ what: String) {
        guard !reportedTooComplex else { return }
        reportedTooComplex = true
        defects.append(Defect(.htmlTooComplex, detail: "more than \(HTMLText.maxReferences) \(what)"))
    }

    mutating func addLink(_ href: Range<Int>) {
        guard links.count < HTMLText.maxReferences else {
            reportTooComplex("links")
            return
        }
        links.append(attributeString(href, trimmed: true))
    }

    mutating func addImage(_ attributes: AttributeRanges) {
        guard images.count < HTMLText.maxReferences else {
            reportTooComplex("images")
            return
        }
        var image = ImageReference(source: attributes.source.map { attributeString($0, trimmed: true) } ?? "")
        image.altText = attributes.alt.map { attributeString($0, trimmed: false) } ?? ""
        image.width = attributes.width.flatMap { parseLength(attributeBytes($0)[...]) }
        image.height = attributes.height.flatMap { parseLength(attributeBytes($0)[...]) }
        image.isHidden = attributes.hidden
        if let style = attributes.style {
            let css = attributeBytes(style)
            let facts = parseStyle(css)
            if let width = facts.width.flatMap({ parseLength(css[$0]) }) { image.width = width }
            if let height = facts.height.flatMap({ parseLength(css[$0]) }) { image.height = height }
            if let display = facts.display, equalsIgnoringCase(css[display], "none") { image.isHidden = true }
            if let visibility = facts.visibility, equalsIgnoringCase(css[visibility], "hidden") {
                image.isHidden = true
            }
        }
        images.append(image)
    }
}
