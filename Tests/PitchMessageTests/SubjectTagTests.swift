import PitchMessage
import Testing

/// `SubjectTagEdit`: the tag goes in right after the first Subject's colon, every other byte stays, and taking it
/// back gives exactly the bytes it was given.
struct SubjectTagTests {
    static let tag = "[PITCH]"

    /// A message as it came, and as adding the tag leaves it.
    static let additions: [(original: String, tagged: String)] = [
        ("Subject: Hi\n\nbody\n", "Subject: [PITCH] Hi\n\nbody\n"),
        ("Subject: Hi\r\n\r\nbody\r\n", "Subject: [PITCH] Hi\r\n\r\nbody\r\n"),
        ("Subject:\n\nbody\n", "Subject: [PITCH]\n\nbody\n"),
        ("Subject: \n\nbody\n", "Subject: [PITCH] \n\nbody\n"),
        ("Subject:\tHi\n\n", "Subject: [PITCH]\tHi\n\n"),
        ("Subject:   Hi\n\n", "Subject: [PITCH]   Hi\n\n"),
        // Folded right after the colon: the folding stays as it was.
        ("Subject:\r\n Quick\r\n question\r\n\r\n", "Subject: [PITCH]\r\n Quick\r\n question\r\n\r\n"),
        ("SUBJECT: Hi\n\n", "SUBJECT: [PITCH] Hi\n\n"),
        ("From a@b Mon Jan  1 00:00:00 2026\nFrom: a@example.com\nSubject: Hi\nTo: b@example.com\n\n",
         "From a@b Mon Jan  1 00:00:00 2026\nFrom: a@example.com\nSubject: [PITCH] Hi\nTo: b@example.com\n\n"),
        // The first Subject only, as the parser reads it.
        ("Subject: one\nSubject: two\n\n", "Subject: [PITCH] one\nSubject: two\n\n"),
        // An encoded word keeps the blank before it that RFC 2047 asks for.
        ("Subject: =?utf-8?q?Caf=C3=A9?=\n\n", "Subject: [PITCH] =?utf-8?q?Caf=C3=A9?=\n\n"),
        // Raw 8-bit text is not decoded: the tag goes in front of its bytes.
        ("Subject: Gr\u{FC}\u{DF}e\n\n", "Subject: [PITCH] Gr\u{FC}\u{DF}e\n\n"),
        // A sender's own "[PITCH]" is their text: ours goes in front of it, and only ours comes out again.
        ("Subject: [PITCH] Hi\n\n", "Subject: [PITCH] [PITCH] Hi\n\n"),
    ]

    @Test(arguments: additions)
    func addingPutsTheTagAfterTheColonAndRemovingTakesItBack(original: String, tagged: String) {
        let bytes = Array(original.utf8)
        let added = HeaderEditor.edit(bytes, removing: [], inserting: [], subjectTag: SubjectTagEdit(add: Self.tag))
        #expect(String(decoding: added, as: UTF8.self) == tagged)
        #expect(Message(bytes: bytes).subjectValue(after: SubjectTagEdit(add: Self.tag))?.tagged == true)
        let removed = HeaderEditor.edit(added, removing: [], inserting: [], subjectTag: SubjectTagEdit(remove: Self.tag))
        #expect(removed == bytes)
        // Taken back and put in again: the same bytes, not a second tag.
        let again = HeaderEditor.edit(added, removing: [], inserting: [],
                                      subjectTag: SubjectTagEdit(remove: Self.tag, add: Self.tag))
        #expect(again == added)
        // Another tag in place of the old one.
        let other = HeaderEditor.edit(added, removing: [], inserting: [],
                                      subjectTag: SubjectTagEdit(remove: Self.tag, add: "*COLD*"))
        #expect(String(decoding: other, as: UTF8.self)
            == tagged.replacingFirst(of: ": [PITCH]", with: ": *COLD*"))
    }

    /// Nothing to add: no Subject, a Subject past the end of the header, or text right at the colon, where the tag
    /// would need a blank after it that could not be told from the sender's when taking it back.
    @Test(arguments: [
        "From: a@example.com\n\nSubject: Hi\n",
        "From: a@example.com\nnot a field\nSubject: Hi\n\n",
        "Subject:Hi\n\n",
        "",
    ])
    func aSubjectThatCannotTakeTheTagIsLeftAlone(message: String) {
        let bytes = Array(message.utf8)
        #expect(HeaderEditor.edit(bytes, removing: [], inserting: [], subjectTag: SubjectTagEdit(add: Self.tag))
            == bytes)
        #expect(Message(bytes: bytes).subjectValue(after: SubjectTagEdit(add: Self.tag))?.tagged != true)
    }

    /// Only what adding puts in comes out: a tag written some other way is the sender's text.
    @Test(arguments: [
        "Subject:[PITCH] Hi\n\n",
        "Subject:  [PITCH] Hi\n\n",
        "Subject: [PITCH]x\n\n",
        "Subject: Hi [PITCH]\n\n",
        "Subject: Hi\nSubject: [PITCH] two\n\n",
    ])
    func removingTakesOnlyWhatAddingPutIn(message: String) {
        let bytes = Array(message.utf8)
        #expect(HeaderEditor.edit(bytes, removing: [], inserting: [], subjectTag: SubjectTagEdit(remove: Self.tag))
            == bytes)
    }

    /// With fields removed before and after the Subject and new ones inserted at the top, the pieces come in order.
    @Test func theTagGoesInBetweenRemovedFields() {
        let message = "From a@b Mon Jan  1 00:00:00 2026\nX-Pitch-Status: ham\nSubject: Hi\nX-Pitch-Reasons: x\n"
            + "To: b@example.com\n\nbody\n"
        let edit = HeaderEdit(of: Array(message.utf8), removing: ["X-Pitch-*"],
                              inserting: [NewField(name: "X-Pitch-Status", value: "pitch")],
                              subjectTag: SubjectTagEdit(add: Self.tag))
        let tagged = edit.apply(to: Array(message.utf8))
        #expect(String(decoding: tagged, as: UTF8.self)
            == "From a@b Mon Jan  1 00:00:00 2026\nX-Pitch-Status: pitch\nSubject: [PITCH] Hi\nTo: b@example.com\n\nbody\n")
        let back = HeaderEditor.edit(tagged, removing: ["X-Pitch-*"], inserting: [],
                                     subjectTag: SubjectTagEdit(remove: Self.tag))
        #expect(String(decoding: back, as: UTF8.self)
            == "From a@b Mon Jan  1 00:00:00 2026\nSubject: Hi\nTo: b@example.com\n\nbody\n")
    }

    /// The milter replaces the Subject's value: what it sends is the raw value with the edit made.
    @Test(arguments: [
        ("Subject: Hi\r\n\r\n", SubjectTagEdit(add: "[PITCH]"), " [PITCH] Hi"),
        ("Subject:\tHi\r\n\r\n", SubjectTagEdit(add: "[PITCH]"), " [PITCH]\tHi"),
        ("Subject: [PITCH] Hi\r\n\r\n", SubjectTagEdit(remove: "[PITCH]"), " Hi"),
        ("Subject: [PITCH] Hi\r\n\r\n", SubjectTagEdit(remove: "[PITCH]", add: "*COLD*"), " *COLD* Hi"),
        ("Subject: [PITCH]\r\n\r\n", SubjectTagEdit(remove: "[PITCH]"), ""),
    ] as [(String, SubjectTagEdit, String)])
    func theSubjectsNewValue(message: String, edit: SubjectTagEdit, value: String) {
        let new = Message(bytes: Array(message.utf8)).subjectValue(after: edit)
        #expect(new.map { String(decoding: $0.value, as: UTF8.self) } == value)
        #expect(new?.tagged == (edit.add != nil))
    }

    @Test func nothingToChangeGivesNoValue() {
        #expect(Message(bytes: Array("Subject: Hi\n\n".utf8)).subjectValue(after: SubjectTagEdit(remove: "[X]"))?.value == nil)
        #expect(Message(bytes: Array("Subject:Hi\n\n".utf8)).subjectValue(after: SubjectTagEdit(add: "[X]"))?.value == nil)
        #expect(Message(bytes: Array("From: a@b\n\n".utf8)).subjectValue(after: SubjectTagEdit(add: "[X]"))?.value == nil)
    }

    /// Bare CR line ends: nothing is edited, as for the fields.
    @Test func bareCarriageReturnsAreLeftAlone() {
        let bytes = Array("Subject: Hi\r\rbody\r".utf8)
        let edit = HeaderEdit(of: bytes, removing: [], inserting: [], subjectTag: SubjectTagEdit(add: Self.tag))
        #expect(edit.bareCarriageReturns)
        #expect(edit.apply(to: bytes) == bytes)
    }
}

extension String {
    func replacingFirst(of target: String, with replacement: String) -> String {
        guard let range = firstRange(of: target) else { return self }
        var copy = self
        copy.replaceSubrange(range, with: replacement)
        return copy
    }
}
