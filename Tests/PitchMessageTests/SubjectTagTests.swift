import PitchMessage
import Testing

/// `SubjectTagEdit`: the tag goes in right after the first Subject's colon, every other byte stays, and `remove`
/// gives back exactly the bytes `add` was given.
struct SubjectTagTests {
    static let tag = "[PITCH]"

    /// A message as it came, and as `add` leaves it.
    static let additions: [(original: String, tagged: String)] = [
        ("Subject: Hi\n\nbody\n", "Subject: [PITCH] Hi\n\nbody\n"),
        ("Subject: Hi\r\n\r\nbody\r\n", "Subject: [PITCH] Hi\r\n\r\nbody\r\n"),
        ("Subject:\n\nbody\n", "Subject: [PITCH]\n\nbody\n"),
        ("Subject: \n\nbody\n", "Subject: [PITCH] \n\nbody\n"),
        ("Subject:\tHi\n\n", "Subject: [PITCH]\tHi\n\n"),
        // Folded right after the colon: the folding stays as it was.
        ("Subject:\r\n Quick\r\n question\r\n\r\n", "Subject: [PITCH]\r\n Quick\r\n question\r\n\r\n"),
        ("SUBJECT: Hi\n\n", "SUBJECT: [PITCH] Hi\n\n"),
        ("From: a@example.com\nSubject: Hi\nTo: b@example.com\n\n",
         "From: a@example.com\nSubject: [PITCH] Hi\nTo: b@example.com\n\n"),
        // The first Subject only, as the parser reads it.
        ("Subject: one\nSubject: two\n\n", "Subject: [PITCH] one\nSubject: two\n\n"),
        // An encoded word keeps the blank before it that RFC 2047 asks for.
        ("Subject: =?utf-8?q?Caf=C3=A9?=\n\n", "Subject: [PITCH] =?utf-8?q?Caf=C3=A9?=\n\n"),
        // Raw 8-bit text is not decoded: the tag goes in front of its bytes.
        ("Subject: Gr\u{FC}\u{DF}e\n\n", "Subject: [PITCH] Gr\u{FC}\u{DF}e\n\n"),
        // "[PITCH]x" is not the tag as a word of its own.
        ("Subject: [PITCH]x\n\n", "Subject: [PITCH] [PITCH]x\n\n"),
    ]

    @Test(arguments: additions)
    func addingPutsTheTagAfterTheColonAndRemovingTakesItBack(original: String, tagged: String) {
        let added = HeaderEditor.edit(Array(original.utf8), removing: [], inserting: [], subjectTag: .add(Self.tag))
        #expect(String(decoding: added, as: UTF8.self) == tagged)
        let removed = HeaderEditor.edit(added, removing: [], inserting: [], subjectTag: .remove(["[X]", Self.tag]))
        #expect(removed == Array(original.utf8))
    }

    /// Nothing to add: tagged already (by us, or by the same tag elsewhere), no Subject, or a Subject past the end
    /// of the header.
    @Test(arguments: [
        "Subject: [PITCH] Hi\n\n",
        "Subject:   [PITCH]\tHi\n\n",
        "Subject:\n [PITCH] Hi\n\n",
        "Subject: [PITCH]\n\n",
        "From: a@example.com\n\nSubject: Hi\n",
        "From: a@example.com\nnot a field\nSubject: Hi\n\n",
        "",
    ])
    func aSubjectTaggedAlreadyOrMissingIsLeftAlone(message: String) {
        let bytes = Array(message.utf8)
        #expect(HeaderEditor.edit(bytes, removing: [], inserting: [], subjectTag: .add(Self.tag)) == bytes)
    }

    /// Only what `add` puts in is taken out: a tag the sender wrote some other way is their text.
    @Test(arguments: [
        "Subject:[PITCH] Hi\n\n",
        "Subject:  [PITCH] Hi\n\n",
        "Subject: [PITCH]x\n\n",
        "Subject: Hi [PITCH]\n\n",
        "Subject: Hi\nSubject: [PITCH] two\n\n",
    ])
    func removingTakesOnlyWhatAddingPutIn(message: String) {
        let bytes = Array(message.utf8)
        #expect(HeaderEditor.edit(bytes, removing: [], inserting: [], subjectTag: .remove([Self.tag])) == bytes)
    }

    /// With fields removed before and after the Subject and new ones inserted at the top, the pieces come in order.
    @Test func theTagGoesInBetweenRemovedFields() {
        let message = "From a@b Mon Jan  1 00:00:00 2026\nX-Pitch-Status: ham\nSubject: Hi\nX-Pitch-Reasons: x\n"
            + "To: b@example.com\n\nbody\n"
        let edit = HeaderEdit(of: Array(message.utf8), removing: ["X-Pitch-*"],
                              inserting: [NewField(name: "X-Pitch-Status", value: "pitch")], subjectTag: .add(Self.tag))
        #expect(String(decoding: edit.apply(to: Array(message.utf8)), as: UTF8.self)
            == "From a@b Mon Jan  1 00:00:00 2026\nX-Pitch-Status: pitch\nSubject: [PITCH] Hi\nTo: b@example.com\n\nbody\n")
        let back = HeaderEditor.edit(edit.apply(to: Array(message.utf8)), removing: ["X-Pitch-*"], inserting: [],
                                     subjectTag: .remove([Self.tag]))
        #expect(String(decoding: back, as: UTF8.self)
            == "From a@b Mon Jan  1 00:00:00 2026\nSubject: Hi\nTo: b@example.com\n\nbody\n")
    }

    /// Bare CR line ends: nothing is edited, as for the fields.
    @Test func bareCarriageReturnsAreLeftAlone() {
        let bytes = Array("Subject: Hi\r\rbody\r".utf8)
        let edit = HeaderEdit(of: bytes, removing: [], inserting: [], subjectTag: .add(Self.tag))
        #expect(edit.bareCarriageReturns)
        #expect(edit.apply(to: bytes) == bytes)
    }
}
