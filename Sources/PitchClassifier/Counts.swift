/// The two classes a message can be trained as.
public enum MessageClass: String, Hashable, Sendable, CaseIterable, Codable {
    case pitch
    case ham

    public var other: MessageClass { self == .pitch ? .ham : .pitch }
}

/// How many trained messages of each class contained a token (each token counts once per message).
public struct TokenCounts: Hashable, Sendable {
    public var pitch: UInt32
    public var ham: UInt32

    public init(pitch: UInt32 = 0, ham: UInt32 = 0) {
        self.pitch = pitch
        self.ham = ham
    }

    public static let zero = TokenCounts()

    public subscript(messageClass: MessageClass) -> UInt32 {
        get { messageClass == .pitch ? pitch : ham }
        set { if messageClass == .pitch { pitch = newValue } else { ham = newValue } }
    }

    public static func + (lhs: TokenCounts, rhs: TokenCounts) -> TokenCounts {
        TokenCounts(pitch: lhs.pitch &+ rhs.pitch, ham: lhs.ham &+ rhs.ham)
    }
}

/// How many messages of each class have been trained.
public struct ClassTotals: Hashable, Sendable {
    public var pitch: Int
    public var ham: Int

    public init(pitch: Int = 0, ham: Int = 0) {
        self.pitch = pitch
        self.ham = ham
    }

    public subscript(messageClass: MessageClass) -> Int {
        get { messageClass == .pitch ? pitch : ham }
        set { if messageClass == .pitch { pitch = newValue } else { ham = newValue } }
    }

    public static func + (lhs: ClassTotals, rhs: ClassTotals) -> ClassTotals {
        ClassTotals(pitch: lhs.pitch + rhs.pitch, ham: lhs.ham + rhs.ham)
    }
}

/// Counts as the classifier weighs them: a token's counts, or a class's totals, where some messages count for less
/// than one (`ModelSchedule.ownHamWeight`: a user's ham against a few own pitches, beside the starter model's).
public struct WeighedCounts: Hashable, Sendable {
    public var pitch: Double
    public var ham: Double

    public init(pitch: Double = 0, ham: Double = 0) {
        self.pitch = pitch
        self.ham = ham
    }

    public init(_ counts: TokenCounts) {
        self.init(pitch: Double(counts.pitch), ham: Double(counts.ham))
    }

    public init(_ totals: ClassTotals) {
        self.init(pitch: Double(totals.pitch), ham: Double(totals.ham))
    }
}
