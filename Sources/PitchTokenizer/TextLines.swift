/// The lines of a decoded text as the signals read them: a quoted line ("> > …") by what it says, so a reply's
/// quote and its author line are found as they would be unquoted.
enum TextLines {
    /// The line starting at `start`: its content without quote marks, indentation and trailing white space (empty
    /// for a blank or quote-only line), and the offset of its newline (or `end`).
    static func line(in text: UnsafeBufferPointer<UInt8>, from start: Int, end: Int)
        -> (content: Range<Int>, end: Int) {
        var lineEnd = start
        while lineEnd < end, text[lineEnd] != 0x0A { lineEnd += 1 }
        var first = start
        while first < lineEnd, text[first] == 0x3E || isSpace(text[first]) { first += 1 }  // "> > "
        var last = lineEnd
        while last > first, isSpace(text[last - 1]) { last -= 1 }
        return (first..<last, lineEnd)
    }

    /// How many quote marks stand before the content of a line (`line`'s `content.lowerBound`): 0 for a line of
    /// the writer's own, 2 for "> > …".
    static func quoteDepth(in text: UnsafeBufferPointer<UInt8>, from start: Int, to contentStart: Int) -> Int {
        var depth = 0
        for index in start..<contentStart where text[index] == 0x3E { depth += 1 }
        return depth
    }

    /// Space, tab, or the CR of a CRLF line.
    static func isSpace(_ byte: UInt8) -> Bool {
        byte == 0x20 || byte == 0x09 || byte == 0x0D
    }
}
