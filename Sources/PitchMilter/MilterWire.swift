/// The milter protocol's wire vocabulary, version 6, as libmilter's documentation and Postfix's MILTER_README
/// describe it. Every packet is a 4-byte big-endian length (counting the command byte), one command byte, and
/// the command's data. Names follow the C constants so the code can be read beside those documents.
public enum MilterWire {
    /// The protocol version we speak (SMFI_PROT_VERSION).
    public static let version: UInt32 = 6

    /// A 32-bit number as the protocol writes every one: big-endian.
    public static func bytes(_ value: UInt32) -> [UInt8] {
        [UInt8(value >> 24), UInt8(value >> 16 & 0xff), UInt8(value >> 8 & 0xff), UInt8(value & 0xff)]
    }

    /// The big-endian 32-bit number at `offset`; the caller has checked there are four bytes.
    public static func number(_ bytes: [UInt8], at offset: Int) -> UInt32 {
        bytes[offset..<(offset + 4)].reduce(UInt32(0)) { $0 << 8 | UInt32($1) }
    }

    /// A NUL-terminated string; a NUL inside would end it early on the other side, so none gets through.
    public static func string(_ text: String) -> [UInt8] {
        text.utf8.filter { $0 != 0 } + [0]
    }
}

/// Commands from the MTA (SMFIC_*).
public enum MilterCommandCode: UInt8, Sendable, CaseIterable {
    case abort = 0x41        // 'A' SMFIC_ABORT: forget the current message, keep the connection
    case body = 0x42         // 'B' SMFIC_BODY: a chunk of the body
    case connect = 0x43      // 'C' SMFIC_CONNECT
    case macro = 0x44        // 'D' SMFIC_MACRO: macros for the next command
    case endOfMessage = 0x45 // 'E' SMFIC_BODYEOB
    case helo = 0x48         // 'H' SMFIC_HELO
    case quitNewConnection = 0x4B // 'K' SMFIC_QUIT_NC: end this connection's session, a new one follows
    case header = 0x4C       // 'L' SMFIC_HEADER
    case mail = 0x4D         // 'M' SMFIC_MAIL: MAIL FROM
    case endOfHeaders = 0x4E // 'N' SMFIC_EOH
    case negotiate = 0x4F    // 'O' SMFIC_OPTNEG
    case quit = 0x51         // 'Q' SMFIC_QUIT
    case recipient = 0x52    // 'R' SMFIC_RCPT
    case data = 0x54         // 'T' SMFIC_DATA
    case unknown = 0x55      // 'U' SMFIC_UNKNOWN: an SMTP command the MTA did not recognise
}

/// Replies to the MTA (SMFIR_*): only those this filter sends.
public enum MilterReplyCode: UInt8, Sendable {
    case accept = 0x61       // 'a' SMFIR_ACCEPT: accept the message, no further callbacks for it
    case `continue` = 0x63   // 'c' SMFIR_CONTINUE
    case addHeader = 0x68    // 'h' SMFIR_ADDHEADER
    case insertHeader = 0x69 // 'i' SMFIR_INSHEADER
    case changeHeader = 0x6D // 'm' SMFIR_CHGHEADER (an empty value deletes)
    case negotiate = 0x4F    // 'O' SMFIC_OPTNEG, the answer to it
    case progress = 0x70     // 'p' SMFIR_PROGRESS: still working, reset the MTA's timer
    case quarantine = 0x71   // 'q' SMFIR_QUARANTINE: Postfix puts the message in its hold queue
    case tempfail = 0x74     // 't' SMFIR_TEMPFAIL
}

/// What the filter may do at end of message (SMFIF_*), negotiated in OPTNEG.
public struct MilterActions: OptionSet, Sendable, Hashable {
    public let rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }

    public static let addHeaders = MilterActions(rawValue: 0x01)    // SMFIF_ADDHDRS
    public static let changeBody = MilterActions(rawValue: 0x02)    // SMFIF_CHGBODY
    public static let addRecipient = MilterActions(rawValue: 0x04)  // SMFIF_ADDRCPT
    public static let deleteRecipient = MilterActions(rawValue: 0x08) // SMFIF_DELRCPT
    public static let changeHeaders = MilterActions(rawValue: 0x10) // SMFIF_CHGHDRS
    public static let quarantine = MilterActions(rawValue: 0x20)    // SMFIF_QUARANTINE
}

/// Steps the filter does not want and replies it will not send (SMFIP_*), negotiated in OPTNEG.
public struct MilterProtocolFlags: OptionSet, Sendable, Hashable {
    public let rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }

    public static let noConnect = MilterProtocolFlags(rawValue: 0x01)       // SMFIP_NOCONNECT
    public static let noHelo = MilterProtocolFlags(rawValue: 0x02)          // SMFIP_NOHELO
    public static let noMail = MilterProtocolFlags(rawValue: 0x04)          // SMFIP_NOMAIL
    public static let noRecipient = MilterProtocolFlags(rawValue: 0x08)     // SMFIP_NORCPT
    public static let noBody = MilterProtocolFlags(rawValue: 0x10)          // SMFIP_NOBODY
    public static let noHeaders = MilterProtocolFlags(rawValue: 0x20)       // SMFIP_NOHDRS
    public static let noEndOfHeaders = MilterProtocolFlags(rawValue: 0x40)  // SMFIP_NOEOH
    public static let noReplyHeader = MilterProtocolFlags(rawValue: 0x80)   // SMFIP_NR_HDR
    public static let noUnknown = MilterProtocolFlags(rawValue: 0x100)      // SMFIP_NOUNKNOWN
    public static let noData = MilterProtocolFlags(rawValue: 0x200)         // SMFIP_NODATA
    public static let skip = MilterProtocolFlags(rawValue: 0x400)           // SMFIP_SKIP
    public static let rejectedRecipients = MilterProtocolFlags(rawValue: 0x800) // SMFIP_RCPT_REJ
    public static let noReplyConnect = MilterProtocolFlags(rawValue: 0x1000)  // SMFIP_NR_CONN
    public static let noReplyHelo = MilterProtocolFlags(rawValue: 0x2000)     // SMFIP_NR_HELO
    public static let noReplyMail = MilterProtocolFlags(rawValue: 0x4000)     // SMFIP_NR_MAIL
    public static let noReplyRecipient = MilterProtocolFlags(rawValue: 0x8000) // SMFIP_NR_RCPT
    public static let noReplyData = MilterProtocolFlags(rawValue: 0x10000)    // SMFIP_NR_DATA
    public static let noReplyUnknown = MilterProtocolFlags(rawValue: 0x20000) // SMFIP_NR_UNKN
    public static let noReplyEndOfHeaders = MilterProtocolFlags(rawValue: 0x40000) // SMFIP_NR_EOH
    public static let noReplyBody = MilterProtocolFlags(rawValue: 0x80000)    // SMFIP_NR_BODY
    public static let headerLeadingSpace = MilterProtocolFlags(rawValue: 0x100000) // SMFIP_HDR_LEADSPC
}

/// One packet as framed on the wire: the command byte and its data.
public struct MilterPacket: Sendable, Equatable {
    public var code: UInt8
    public var payload: [UInt8]

    public init(code: UInt8, payload: [UInt8]) {
        self.code = code
        self.payload = payload
    }
}
