import PitchMessage

/// The message ids a message names: its own (Message-ID) and those it answers (In-Reply-To, References).
///
/// A fake thread ("Re: our call last week") often carries a made-up References field to look real; what gives it
/// away is that it refers to nothing this mailbox ever saw. Ids are kept as `TokenID` hashes of the lowercased
/// `<local@domain>`, which is all a memory of them needs.
public struct ThreadReferences: Hashable, Sendable {
    public var own: UInt64?
    public var answered: [UInt64]

    /// At most this many referenced ids are looked at: a thread's References grows by one per reply, and the
    /// last few name the messages this mailbox is likeliest to know.
    public static let maximumAnswered = 20

    public init(own: UInt64?, answered: [UInt64]) {
        self.own = own
        self.answered = answered
    }

    public init(of message: Message) {
        let header = message.header
        func ids(_ name: String) -> [UInt64] {
            header.fields(named: name).flatMap { Self.ids(in: header.unfoldedValue(of: $0)) }
        }
        own = ids("Message-ID").first
        var answered: [UInt64] = []
        for id in ids("In-Reply-To") + ids("References").reversed() where !answered.contains(id) && id != own {
            answered.append(id)
            if answered.count == Self.maximumAnswered { break }
        }
        self.answered = answered
    }

    /// Every `<…>` with an `@` inside, hashed lowercased with its brackets.
    static func ids(in value: ArraySlice<UInt8>) -> [UInt64] {
        var ids: [UInt64] = []
        var start: Int?
        for index in value.indices {
            switch value[index] {
            case UInt8(ascii: "<"): start = index
            case UInt8(ascii: ">"):
                if let open = start, index - open > 2, index - open < 1_000,
                   value[open...index].contains(UInt8(ascii: "@")) {
                    let text = String(decoding: value[open...index], as: UTF8.self).lowercased()
                    ids.append(TokenID(hashing: text).rawValue)
                }
                start = nil
            case 0x20, 0x09, 0x0D, 0x0A:
                start = nil
            default:
                break
            }
        }
        return ids
    }
}
