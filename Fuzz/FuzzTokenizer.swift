// libFuzzer entry point for the tokenizer. Compiled by Fuzz/run.sh together with Sources/PitchMessage and
// Sources/PitchTokenizer as one module (swiftc -sanitize=fuzzer,address), so it needs no import; the tokenizer's
// own `import PitchMessage` becomes a warning there.

/// Tokenizes one input as the filter does and as `classify --explain` does. Beyond "no crash", it checks what
/// storage and the explanation rely on: each token once, within the bound, the same ids and fingerprint with and
/// without the texts, and each text's id its FNV-1a hash.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzTokenizer(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    let limits = Limits.fuzzing
    let message = Message(bytes: bytes, limits: limits)
    let tokenizer = Tokenizer()
    let explained = tokenizer.tokenize(message, keepingTexts: true)
    let plain = tokenizer.tokenize(message, keepingTexts: false)
    precondition(plain.ids == explained.ids, "ids differ with and without texts")
    precondition(explained.texts.count == explained.ids.count, "a text without its id")
    precondition(Set(explained.ids).count == explained.ids.count, "a token given twice")
    precondition(explained.ids.count <= tokenizer.bounds.maxTokens, "more tokens than the bound")
    for (text, id) in zip(explained.texts, explained.ids) {
        // A token cut at 256 bytes inside a character shows U+FFFD where its id has the bytes (TokenCollector).
        precondition(TokenID(hashing: text) == id || text.unicodeScalars.last == "\u{FFFD}",
                     "an id that is not its text's hash")
    }
    if let template = explained.template {
        precondition(template.bands.count == TemplateFingerprint.hashes / TemplateFingerprint.rowsPerBand,
                     "a fingerprint with the wrong number of bands")
        precondition(plain.template == template, "a fingerprint that depends on keeping texts")
    }
    return 0
}
