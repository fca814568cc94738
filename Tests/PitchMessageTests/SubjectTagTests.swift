import PitchMessage
import Testing

/// `SubjectTagEdit`: the tag goes in right after the first Subject's colon unless the Subject already begins with
/// it, every other byte stays, taking it back gives exactly the bytes it was given, and leaving our tags out reads
/// the original and every tagged copy alike.
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
        // Text that only starts like the tag is not the tag.
        ("Subject: [PITCH]x\n\n", "Subject: [PITCH] [PITCH]x\n\n"),
        ("Subject: [PITCH]: Hi\n\n", "Subject: [PITCH] [PITCH]: Hi\n\n"),
        // A line the tag takes to RFC 5322's 998 octets, and no further.
        ("Subject: " + String(repeating: "q", count: 981) + "\r\n\r\n",
         "Subject: [PITCH] " + String(repeating: "q", count: 981) + "\r\n\r\n"),
    ]

    @Test(arguments: additions)
    func addingPutsTheTagAfterTheColonAndTakingItBackGivesTheOriginal(original: String, tagged: String) {
        let bytes = Array(original.utf8)
        let added = HeaderEditor.edit(bytes, removing: [], inserting: [], subjectTag: .add(Self.tag))
        #expect(String(decoding: added, as: UTF8.self) == tagged)
        #expect(Message(bytes: bytes).subjectValue(after: .add(Self.tag))?.tagged == true)
        let removed = HeaderEditor.edit(added, removing: [], inserting: [], subjectTag: .takeBack(Self.tag))
        #expect(removed == bytes)
        // Put in again, as a second filter would: the same bytes, not a second tag.
        #expect(HeaderEditor.edit(added, removing: [], inserting: [], subjectTag: .add(Self.tag)) == added)
        #expect(Message(bytes: added).subjectValue(after: .add(Self.tag)) == nil)
        // The identity reads the original and the tagged copy alike.
        let leftOut = SubjectTagEdit.leaveOut([Self.tag])
        #expect(HeaderEditor.edit(added, removing: [], inserting: [], subjectTag: leftOut)
            == HeaderEditor.edit(bytes, removing: [], inserting: [], subjectTag: leftOut))
    }

    /// Adding leaves these alone. A Subject that already begins with the tag, put in by an earlier filter or the
    /// sender's own (a forged record in front of it changes nothing either: no edit of incoming mail takes a tag
    /// out), also as it reads (found by an audit: after other blanks, a fold, or in an encoded word). And nothing
    /// to add to: no Subject, a Subject past the end of the header, or text right at the colon, where the tag would
    /// need a blank after it that could not be told from the sender's when taking it back.
    @Test(arguments: [
        "Subject: [PITCH] Hi\n\n",
        "Subject: [PITCH]\n\n",
        "Subject: [PITCH]\tHi\r\n\r\n",
        "X-Pitch-Status: pitch, score=0.99, version=x, tagged=[PITCH]\nSubject: [PITCH] [PITCH] Hi\n\n",
        "Subject:\t[PITCH] Hi\n\n",
        "Subject:  [PITCH] Hi\n\n",
        "Subject:\r\n [PITCH] Hi\r\n\r\n",
        "Subject: =?utf-8?q?=5BPITCH=5D_Hi?=\n\n",
        "From: a@example.com\n\nSubject: Hi\n",
        "From: a@example.com\nnot a field\nSubject: Hi\n\n",
        "Subject:Hi\n\n",
        "",
        // The tag would take the line past 998 octets (found by an audit: 998 became 1,006).
        "Subject: " + String(repeating: "q", count: 982) + "\r\n\r\n",
        "Subject: " + String(repeating: "q", count: 989) + "\n\n",
        "Subject:\t" + String(repeating: "q", count: 2_000) + "\n continued\n\n",
        "Subject: " + String(repeating: "q", count: 500) + "\r" + String(repeating: "q", count: 481) + "\n\n",
    ])
    func addingLeavesTheseSubjectsAlone(message: String) {
        let bytes = Array(message.utf8)
        #expect(HeaderEditor.edit(bytes, removing: [], inserting: [], subjectTag: .add(Self.tag)) == bytes)
        #expect(Message(bytes: bytes).subjectValue(after: .add(Self.tag)) == nil)
    }

    /// Every one of our tags at the start, however many and in any order, and nothing after the first that is not.
    @Test(arguments: [
        ("Subject: [PITCH] *COLD* [PITCH] Hi\n\n", "Subject: Hi\n\n"),
        ("Subject: [PITCH] [PITCH]\n\n", "Subject:\n\n"),
        ("Subject: *COLD*\tHi [PITCH]\n\n", "Subject:\tHi [PITCH]\n\n"),
        ("Subject: [PITCH] Re: [PITCH] Hi\n\n", "Subject: Re: [PITCH] Hi\n\n"),
        ("Subject: [PITCH]x\n\n", "Subject: [PITCH]x\n\n"),
        ("Subject:\t[PITCH] Hi\n\n", "Subject:\t[PITCH] Hi\n\n"),
    ])
    func leavingOutTakesEveryLeadingTagOfOurs(message: String, read: String) {
        let edited = HeaderEditor.edit(Array(message.utf8), removing: [], inserting: [],
                                       subjectTag: .leaveOut([Self.tag, "*COLD*"]))
        #expect(String(decoding: edited, as: UTF8.self) == read)
    }

    /// Only what adding puts in is taken back: a tag written some other way is the sender's text.
    @Test(arguments: [
        "Subject:[PITCH] Hi\n\n",
        "Subject:  [PITCH] Hi\n\n",
        "Subject: [PITCH]x\n\n",
        "Subject: Hi [PITCH]\n\n",
        "Subject: Hi\nSubject: [PITCH] two\n\n",
    ])
    func takingBackTakesOnlyWhatAddingPutIn(message: String) {
        let bytes = Array(message.utf8)
        #expect(HeaderEditor.edit(bytes, removing: [], inserting: [], subjectTag: .takeBack(Self.tag)) == bytes)
    }

    /// With fields removed before and after the Subject and new ones inserted at the top, the pieces come in order.
    @Test func theTagGoesInBetweenRemovedFields() {
        let message = "From a@b Mon Jan  1 00:00:00 2026\nX-Pitch-Status: ham\nSubject: Hi\nX-Pitch-Reasons: x\n"
            + "To: b@example.com\n\nbody\n"
        let edit = HeaderEdit(of: Array(message.utf8), removing: ["X-Pitch-*"],
                              inserting: [NewField(name: "X-Pitch-Status", value: "pitch")],
                              subjectTag: .add(Self.tag))
        let tagged = edit.apply(to: Array(message.utf8))
        #expect(String(decoding: tagged, as: UTF8.self)
            == "From a@b Mon Jan  1 00:00:00 2026\nX-Pitch-Status: pitch\nSubject: [PITCH] Hi\nTo: b@example.com\n\nbody\n")
        let back = HeaderEditor.edit(tagged, removing: ["X-Pitch-*"], inserting: [],
                                     subjectTag: .takeBack(Self.tag))
        #expect(String(decoding: back, as: UTF8.self)
            == "From a@b Mon Jan  1 00:00:00 2026\nSubject: Hi\nTo: b@example.com\n\nbody\n")
    }

    /// The milter replaces the Subject's value: what it sends is the raw value with the edit made.
    @Test(arguments: [
        ("Subject: Hi\r\n\r\n", .add("[PITCH]"), " [PITCH] Hi"),
        ("Subject:\tHi\r\n\r\n", .add("[PITCH]"), " [PITCH]\tHi"),
        ("Subject: [PITCH] Hi\r\n\r\n", .add("*COLD*"), " *COLD* [PITCH] Hi"),
        ("Subject: [PITCH] Hi\r\n\r\n", .takeBack("[PITCH]"), " Hi"),
        ("Subject: [PITCH]\r\n\r\n", .takeBack("[PITCH]"), ""),
    ] as [(String, SubjectTagEdit, String)])
    func theSubjectsNewValue(message: String, edit: SubjectTagEdit, value: String) {
        let new = Message(bytes: Array(message.utf8)).subjectValue(after: edit)
        #expect(new.map { String(decoding: $0.value, as: UTF8.self) } == value)
        #expect(new?.tagged == (edit.added != nil))
    }

    @Test func nothingToChangeGivesNoValue() {
        #expect(Message(bytes: Array("Subject: Hi\n\n".utf8)).subjectValue(after: .takeBack("[X]"))?.value == nil)
        #expect(Message(bytes: Array("Subject:Hi\n\n".utf8)).subjectValue(after: .add("[X]"))?.value == nil)
        #expect(Message(bytes: Array("From: a@b\n\n".utf8)).subjectValue(after: .add("[X]"))?.value == nil)
        #expect(Message(bytes: Array("Subject: [X] Hi\n\n".utf8)).subjectValue(after: .add("[X]"))?.value == nil)
    }

    /// Bare CR line ends: nothing is edited, as for the fields.
    @Test func bareCarriageReturnsAreLeftAlone() {
        let bytes = Array("Subject: Hi\r\rbody\r".utf8)
        let edit = HeaderEdit(of: bytes, removing: [], inserting: [], subjectTag: .add(Self.tag))
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
