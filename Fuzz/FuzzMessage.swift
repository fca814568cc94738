// libFuzzer entry point for the message model. Compiled together with Sources/PitchMessage as one module by
// Fuzz/run.sh (swiftc -sanitize=fuzzer,address), so it needs no import.

/// Parses, decodes and edits one input. Beyond "no crash", it checks the promise the filter relies on:
/// inserting our field and removing it again gives back the message with forged fields removed, byte for byte.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzMessage(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    let limits = Limits.fuzzing
    let message = Message(bytes: bytes, limits: limits)
    var defects: [Defect] = []
    for name in ["subject", "from", "to", "cc", "content-type"] {
        for field in message.header.fields(named: name) {
            _ = message.header.text(of: field, defects: &defects)
        }
        _ = message.header.addresses(name, defects: &defects)
    }
    for text in message.decodeText() {
        precondition(text.text.utf8.count <= limits.maxDecodedTextBytes, "text over the limit")
    }
    let stripped = HeaderEditor.edit(bytes, removing: ["X-Pitch-*"], inserting: [])
    let tagged = HeaderEditor.edit(stripped, removing: ["X-Pitch-*"],
                                   inserting: [NewField(name: "X-Pitch-Status", value: "fuzz")])
    let restored = HeaderEditor.edit(tagged, removing: ["X-Pitch-*"], inserting: [])
    precondition(restored == stripped, "insert + remove is not the identity")
    precondition(HeaderEditor.edit(stripped, removing: ["X-Pitch-*"], inserting: []) == stripped,
                 "removing ours leaves some of ours")
    // The Subject tag: a pitch's copy leaves the sender's bytes, reads as the message it was to the identity
    // (every leading tag of ours left out), and a release of it is the message less our fields.
    let edit = HeaderEdit(of: bytes, removing: ["X-Pitch-*"], inserting: [NewField(name: "X-Pitch-Status", value: "f")],
                          subjectTag: .add("[PITCH]"))
    let copy = edit.apply(to: bytes)
    let identity = SubjectTagEdit.leaveOut(["[PITCH]"])
    precondition(HeaderEditor.edit(copy, removing: ["X-Pitch-*"], inserting: [], subjectTag: identity)
                 == HeaderEditor.edit(bytes, removing: ["X-Pitch-*"], inserting: [], subjectTag: identity),
                 "the tagged copy is another message")
    let released = HeaderEditor.edit(copy, removing: ["X-Pitch-*"], inserting: [],
                                     subjectTag: edit.subjectTagInserted.isEmpty ? .none : .takeBack("[PITCH]"))
    precondition(released == stripped, "the release is not the message")
    return 0
}
