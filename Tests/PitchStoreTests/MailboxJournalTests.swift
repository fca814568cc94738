import Testing

@testable import PitchStore

/// The journal's quarantine lookups, which the service makes for every file it looks at.
@Suite struct MailboxJournalTests {
    let directory: TemporaryDirectory
    let store: SQLiteTokenStore

    init() throws {
        directory = try TemporaryDirectory()
        store = try SQLiteTokenStore(path: directory.path("journal.sqlite"), tokenizerIdentity: testTokenizer,
                                     access: .readWrite)
    }

    static func entry(_ id: String, mailbox: String, digest: UInt8, messageID: String, at: Int64) -> QuarantineEntry {
        QuarantineEntry(id: id, mailbox: mailbox, folder: mailbox + "/.Pitches", name: id + ".M1P1Q1.test",
                        digest: [UInt8](repeating: digest, count: 32), messageID: messageID, sender: "a@x.example",
                        subject: "s", score: 0.99, state: .held, at: at)
    }

    /// A message is found by its digest, else by its Message-ID (a client may have changed its bytes), only in its
    /// own mailbox, newest first; an empty Message-ID matches nothing.
    @Test func aMessageIsFoundByDigestOrMessageIDInItsOwnMailbox() throws {
        try store.apply([
            .quarantine(Self.entry("q1", mailbox: "/m/anna", digest: 1, messageID: "<a@x>", at: 100)),
            .quarantine(Self.entry("q2", mailbox: "/m/anna", digest: 2, messageID: "<b@x>", at: 200)),
            .quarantine(Self.entry("q3", mailbox: "/m/ben", digest: 1, messageID: "<a@x>", at: 300)),
            .quarantine(Self.entry("q4", mailbox: "/m/anna", digest: 3, messageID: "", at: 400)),
        ] + (0..<200).map { .quarantine(Self.entry("old\($0)", mailbox: "/m/anna", digest: 9, messageID: "<o\($0)@x>",
                                                     at: Int64($0))) })
        func ids(_ digest: UInt8, _ messageID: String, in mailbox: String = "/m/anna", former: UInt8? = nil) throws
            -> [String] {
            try store.quarantineEntries(.message(mailbox: mailbox, digest: [UInt8](repeating: digest, count: 32),
                                                 messageID: messageID,
                                                 formerDigest: former.map { [UInt8](repeating: $0, count: 32) }))
                .map(\.id)
        }
        #expect(try ids(1, "<none@x>") == ["q1"])
        #expect(try ids(1, "<none@x>", in: "/m/ben") == ["q3"])
        #expect(try ids(7, "<b@x>") == ["q2"])  // bytes changed by a client: found by Message-ID
        #expect(try ids(2, "<a@x>") == ["q2", "q1"])  // both halves, newest first
        #expect(try ids(7, "") == [])
        #expect(try ids(7, "<none@x>") == [])
        // A record written before the digest left the store's fields out: by the former digest.
        #expect(try ids(7, "<none@x>", former: 3) == ["q4"])
        #expect(try ids(1, "<none@x>", former: 3) == ["q4", "q1"])
    }

    /// Each mailbox's folders are read back as recorded, by path, whatever another mailbox records; a path
    /// recorded again takes its new identity, one forgotten is gone, and inodes past Int64's range survive.
    @Test func folderIdentitiesAreKeptPerMailbox() throws {
        func identity(_ inode: UInt64, _ born: Int64 = 1_700_000_000_123_456_789) -> FolderIdentity {
            FolderIdentity(inode: inode, born: born)
        }
        try store.apply([
            .folderIdentity(path: "/m/anna", mailbox: "/m/anna", identity: identity(10)),
            .folderIdentity(path: "/m/anna/.Pitches", mailbox: "/m/anna", identity: identity(11)),
            .folderIdentity(path: "/m/anna/.Archive", mailbox: "/m/anna", identity: identity(UInt64.max, 0)),
            .folderIdentity(path: "/m/ben", mailbox: "/m/ben", identity: identity(20)),
        ])
        #expect(try store.folderIdentities(mailbox: "/m/anna")
            == ["/m/anna": identity(10), "/m/anna/.Pitches": identity(11), "/m/anna/.Archive": identity(UInt64.max, 0)])
        try store.apply([.folderIdentity(path: "/m/anna/.Pitches", mailbox: "/m/anna", identity: identity(11, 5)),
                         .forgetFolderIdentity(path: "/m/anna/.Archive")])
        #expect(try store.folderIdentities(mailbox: "/m/anna")
            == ["/m/anna": identity(10), "/m/anna/.Pitches": identity(11, 5)])
        #expect(try store.folderIdentities(mailbox: "/m/ben") == ["/m/ben": identity(20)])
        #expect(try store.folderIdentities(mailbox: "/m/carl").isEmpty)
    }

    /// One directory: the same number, and the same birth where both are known (0: the file system kept none).
    @Test(arguments: [
        (FolderIdentity(inode: 7, born: 100), FolderIdentity(inode: 7, born: 100), true),
        // Made where one was deleted, and given its number.
        (FolderIdentity(inode: 7, born: 100), FolderIdentity(inode: 7, born: 101), false),
        (FolderIdentity(inode: 7, born: 100), FolderIdentity(inode: 8, born: 100), false),
        (FolderIdentity(inode: 7, born: 0), FolderIdentity(inode: 7, born: 100), true),  // a birth time known since
        (FolderIdentity(inode: 7, born: 100), FolderIdentity(inode: 7, born: 0), true),
        (FolderIdentity(inode: 7, born: 0), FolderIdentity(inode: 8, born: 0), false),
    ])
    func aFolderIsItsNumberAndItsBirth(first: FolderIdentity, second: FolderIdentity, same: Bool) {
        #expect(first.isSameDirectory(as: second) == same)
        #expect(second.isSameDirectory(as: first) == same)
    }

    /// Released and deleted records quarantined before the cutoff go; what is still held or being moved stays,
    /// however old.
    @Test func settledQuarantineRecordsAreForgottenBeforeTheCutoff() throws {
        var changes: [JournalChange] = []
        for (index, state) in QuarantineState.allCases.enumerated() {
            for at: Int64 in [100, 499, 500, 900] {
                var entry = Self.entry("\(state.rawValue)\(at)", mailbox: "/m/anna", digest: UInt8(index),
                                       messageID: "<\(state.rawValue)\(at)@x>", at: at)
                entry.state = state
                changes.append(.quarantine(entry))
            }
        }
        try store.apply(changes + [.forgetSettledQuarantine(before: 500)])
        let left = try store.quarantineEntries(.states(Set(QuarantineState.allCases))).map(\.id).sorted()
        #expect(left == ["deleted500", "deleted900", "held100", "held499", "held500", "held900", "moving100",
                         "moving499", "moving500", "moving900", "released500", "released900"])
    }

    /// A mailbox's folders are its root and its sub-folders, not a neighbour whose name begins the same, nor a
    /// mailbox configured inside it.
    @Test func theRecordedFoldersOfAMailboxAreItsOwn() throws {
        let folders = ["/m/anna", "/m/anna/.Archive", "/m/anna/.Pitches", "/m/anna-old", "/m/anna-old/.Sent",
                       "/m/anna2", "/m/anna2/.Archive", "/m/ann", "/m/anna.d/.X", "/m/anna/bob", "/m/anna/bob/.Sent",
                       "/m/anna/-x", "/m/anna/0"]
        try store.apply(folders.flatMap { folder in
            (0..<3).map { JournalChange.file(FileRecord(folder: folder, name: "\($0).M1P1Q1.test", state: .done),
                                             at: 100) }
        })
        #expect(try store.recordedFolders(mailbox: "/m/anna") == ["/m/anna", "/m/anna/.Archive", "/m/anna/.Pitches"])
        #expect(try store.recordedFolders(mailbox: "/m/anna2") == ["/m/anna2", "/m/anna2/.Archive"])
        #expect(try store.recordedFolders(mailbox: "/m/none") == [])

        // A folder's finished records go with it; a pending one stays to be settled.
        try store.apply([.file(FileRecord(folder: "/m/anna/.Archive", name: "9.M1P1Q1.test", state: .pending), at: 200),
                         .forgetFolder("/m/anna/.Archive")])
        #expect(try store.fileRecords(in: "/m/anna/.Archive").keys.sorted() == ["9.M1P1Q1.test"])
        #expect(try store.fileRecords(in: "/m/anna/.Pitches").count == 3)
    }
}
