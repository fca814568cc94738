import Foundation
import PitchClassifier
import PitchTokenizer
import Synchronization
import Testing

@testable import PitchStore

/// The backends every conformance test runs against.
enum StoreKind: String, CaseIterable, Sendable, CustomTestStringConvertible {
    case inMemory
    case sqlite
    /// The shared model in PostgreSQL, and a SQLite store reading and writing its model there: only when
    /// `$PITCHFILTER_TEST_POSTGRES` names a server (Scripts/postgres-check.sh starts one), in a build with the
    /// PostgreSQL trait.
    case postgres
    case sqliteWithSharedModel

    static var allCases: [StoreKind] {
        [.inMemory, .sqlite] + (PostgresTest.server == nil ? [] : [.postgres, .sqliteWithSharedModel])
    }

    var testDescription: String { rawValue }

    /// A fresh, empty store. A SQLite file goes into `directory`, which the caller keeps until the test ends.
    func makeStore(in directory: TemporaryDirectory) throws -> any TokenStore {
        switch self {
        case .inMemory:
            InMemoryTokenStore(tokenizerIdentity: testTokenizer)
        case .sqlite:
            try SQLiteTokenStore(path: directory.path("tokens.sqlite"), tokenizerIdentity: testTokenizer,
                                 access: .readWrite)
        case .postgres:
            try PostgresTest.freshModel()
        case .sqliteWithSharedModel:
            try SQLiteTokenStore(path: directory.path("tokens.sqlite"), tokenizerIdentity: testTokenizer,
                                 access: .readWrite, sharedModel: try PostgresTest.freshModel())
        }
    }
}

/// A PostgreSQL server for the shared model's tests: `$PITCHFILTER_TEST_POSTGRES`, such as
/// "postgresql://pitchtest@127.0.0.1:54329", a role that may create databases. Each test gets a database of its own.
enum PostgresTest {
    static let server: String? = SharedModels.areBuilt
        ? ProcessInfo.processInfo.environment["PITCHFILTER_TEST_POSTGRES"].flatMap { $0.isEmpty ? nil : $0 }
        : nil
    /// The same server and role without the password in it, when `server` holds one: for a wrong password.
    static let passwordServer: String? = server.flatMap { url in
        guard let scheme = url.range(of: "://"), let at = url.lastIndex(of: "@"),
              let colon = url[scheme.upperBound..<at].firstIndex(of: ":") else { return nil }
        return String(url[..<colon]) + String(url[at...])
    }

    /// A new, empty database on the server, made with psql.
    static func freshDatabase() throws -> SharedModelAddress {
        guard let server else { throw PostgresTestError.noServer }
        let name = "pitchtest_" + UUID().uuidString.lowercased().replacingOccurrences(of: "-", with: "")
        let psql = Process()
        psql.executableURL = URL(fileURLWithPath: "/usr/bin/psql")
        psql.arguments = [server + "/postgres", "-q", "-v", "ON_ERROR_STOP=1", "-c", "CREATE DATABASE \(name)"]
        try psql.run()
        psql.waitUntilExit()
        guard psql.terminationStatus == 0 else { throw PostgresTestError.createFailed(name) }
        return try SharedModelAddress(parsing: server + "/" + name + "?sslmode=disable")
    }

    static func freshModel(readOnly: Bool = false) throws -> any SharedModel {
        try SharedModels.open(try freshDatabase(), password: { nil }, tokenizerIdentity: testTokenizer,
                              readOnly: readOnly)
    }
}

enum PostgresTestError: Error {
    case noServer
    case createFailed(String)
}

let testTokenizer = "test-tokenizer-1"

/// A directory under /tmp removed when the last reference goes away.
final class TemporaryDirectory: Sendable {
    let url: URL

    init() throws {
        url = FileManager.default.temporaryDirectory.appendingPathComponent("PitchStoreTests-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    }

    func path(_ name: String) -> String { url.appendingPathComponent(name).path }

    deinit {
        // Tests may leave read-only modes behind; make everything removable first.
        if let paths = FileManager.default.enumerator(atPath: url.path) {
            for case let relative as String in paths { chmod(url.path + "/" + relative, 0o700) }
        }
        chmod(url.path, 0o700)
        try? FileManager.default.removeItem(at: url)
    }
}

/// A distinct 32-byte digest per number, like the engine's SHA-256 digests.
func digest(_ number: Int) -> [UInt8] {
    var bytes = [UInt8](repeating: 0xd1, count: 32)
    withUnsafeBytes(of: UInt64(number).bigEndian) { bytes.replaceSubrange(24..<32, with: $0) }
    return bytes
}

func token(_ raw: UInt64) -> TokenID { TokenID(rawValue: raw) }

/// Counts of these tokens as a plain dictionary of raw ids, so expectations read as tables.
func counts(_ store: any TokenStore, _ raws: [UInt64]) throws -> [UInt64: TokenCounts] {
    let found = try store.lookup(raws.map(token)).counts
    return Dictionary(uniqueKeysWithValues: found.map { ($0.key.rawValue, $0.value) })
}

/// Whether `withoutFilePrivileges` can make permission bits apply here (a root without CAP_SETUID cannot).
let filePermissionsCanApply: Bool = withoutFilePrivileges { true } ?? false

/// Runs `body` without the power to ignore file permissions, so permission errors can be tested as root too.
///
/// Root bypasses permission bits. Linux checks file access against a per-thread file-system uid, so the body runs
/// on a thread of its own whose fsuid and fsgid are `nobody` (which drops CAP_DAC_OVERRIDE for that thread only);
/// `setfsuid` is not exported by the Glibc module, hence dlsym. Returns nil if that is impossible here.
func withoutFilePrivileges<Result: Sendable>(_ body: @escaping @Sendable () -> Result) -> Result? {
    guard geteuid() == 0 else { return body() }
    typealias SetFileSystemID = @convention(c) (UInt32) -> Int32
    guard let setfsuidSymbol = dlsym(nil, "setfsuid"), let setfsgidSymbol = dlsym(nil, "setfsgid") else {
        return nil
    }
    let setfsuid = unsafeBitCast(setfsuidSymbol, to: SetFileSystemID.self)
    let setfsgid = unsafeBitCast(setfsgidSymbol, to: SetFileSystemID.self)
    let outcome = Box<Result?>(nil)
    let done = DispatchSemaphore(value: 0)
    let thread = Thread {
        _ = setfsgid(65_534)
        _ = setfsuid(65_534)
        // setfsuid returns the previous id, so a second call tells whether the first took effect.
        if setfsuid(65_534) == 65_534 { outcome.set(body()) }
        _ = setfsuid(0)
        _ = setfsgid(0)
        done.signal()
    }
    thread.start()
    done.wait()
    return outcome.get()
}

final class Box<Value: Sendable>: Sendable {
    private let storage: Mutex<Value>
    init(_ value: Value) { storage = Mutex(value) }
    func get() -> Value { storage.withLock { $0 } }
    func set(_ value: Value) { storage.withLock { $0 = value } }
    func update(_ body: (inout Value) -> Void) { storage.withLock { body(&$0) } }
}
