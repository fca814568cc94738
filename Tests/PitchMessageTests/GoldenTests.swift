import Testing
@testable import PitchMessage

/// Hand-made messages with hand-written expectations (Fixtures/golden/README.md), each read with LF and with
/// CRLF line endings: the two readings must agree on everything but the line endings.
@Suite struct GoldenTests {
    static let names = Fixtures.names(in: "golden", withExtension: "eml")

    enum Endings: String, CaseIterable { case lf, crlf }

    @Test func thereAreEnoughFixtures() {
        #expect(Self.names.count >= 40)
    }

    @Test(arguments: names, Endings.allCases)
    func fixture(name: String, endings: Endings) throws {
        var bytes = try Fixtures.bytes("golden/\(name).eml")
        var expectedFile = "golden/\(name).expected"
        if endings == .crlf {
            bytes = Fixtures.crlf(bytes)
            if Fixtures.names(in: "golden", withExtension: "crlf.expected").contains(name) {
                expectedFile = "golden/\(name).crlf.expected"
            }
        }
        let expected = String(decoding: try Fixtures.bytes(expectedFile), as: UTF8.self)
        let actual = GoldenDump.render(Message(bytes: bytes))
        #expect(Self.trimmed(actual) == Self.trimmed(expected), "\(name) (\(endings))\n--- actual ---\n\(actual)")
    }

    /// Trailing white space on a line is invisible in review, so it does not count.
    static func trimmed(_ text: String) -> [Substring] {
        text.split(separator: "\n", omittingEmptySubsequences: false).map { line in
            var line = line
            while line.last == " " || line.last == "\t" { line.removeLast() }
            return line
        }.reversed().drop(while: \.isEmpty).reversed()
    }
}
