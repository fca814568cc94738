import Glibc
import PitchClassifier
import PitchTokenizer

/// The model several mail hosts share (`[database] shared_model`): token counts, class totals and the
/// learned-message ledger, kept in PostgreSQL instead of each host's SQLite file.
///
/// What belongs to a mailbox stays in the host's own database: contacts, template sightings, the
/// quarantine's records and the service's journal. A `SQLiteTokenStore` opened with a shared model reads and writes
/// the model there and everything else in its file, so the filter, the service and every command work unchanged.
public protocol SharedModel: TokenStore {
    /// The classes of these messages in the ledger, in order (nil: not learned), from one snapshot.
    func ledgerClasses(of digests: [[UInt8]]) throws -> [MessageClass?]
    /// Every count and the totals, from one snapshot (`SQLiteTokenStore.snapshot`), with the starter agreement.
    func snapshot() throws -> TokenSnapshot
    /// Keeps the starter agreement measured over the whole shared model after a host's training (nil: none), for
    /// every host to read (`starterAgreement()`); the latest training's measure wins, whichever host made it.
    func recordStarterAgreement(_ agreement: Double?) throws
    /// Where it is, for people: the address without its password.
    var location: String { get }
}

public enum SharedModels {
    /// Whether this build can reach PostgreSQL (`swift build --traits PostgreSQL`).
    public static var areBuilt: Bool {
        #if PostgreSQL
            true
        #else
            false
        #endif
    }

    /// Closes every shared model's connection in this process, for one about to `_exit`, which runs no deinit
    /// (the pipe filter): the server is told goodbye instead of logging a dropped connection for every message.
    public static func disconnectAll() {
        #if PostgreSQL
            PostgresTokenStore.disconnectAll()
        #endif
    }

    /// Connects to the shared model, creating its tables if the database has none yet (unless `readOnly`). A
    /// model built with another tokenizer is refused, as a SQLite file's is. `password` overrides the address's.
    /// `password` is asked for only when connecting, so a command that never reads the model never reads its
    /// password file.
    public static func open(_ address: SharedModelAddress, password: @escaping @Sendable () throws -> String?,
                            tokenizerIdentity: String, readOnly: Bool) throws -> any SharedModel {
        #if PostgreSQL
            return try PostgresTokenStore(address: address, password: password, tokenizerIdentity: tokenizerIdentity,
                                          readOnly: readOnly)
        #else
            throw StoreError.sharedModelNotBuilt(path: address.description)
        #endif
    }
}

/// `[database] shared_model` and `shared_model_password_file`: where the shared model is, and the file holding the
/// password (its first line), which can be readable by the service's user alone where the configuration file is
/// not.
public struct SharedModelSetting: Sendable, Equatable {
    public var address: SharedModelAddress
    public var passwordFile: String?

    /// The address as written.
    public var url: String { address.text }

    public init(address: SharedModelAddress, passwordFile: String? = nil) {
        self.address = address
        self.passwordFile = passwordFile
    }

    /// Connects (at the first call that needs it, reading the password file then; see `SharedModels.open`).
    public func open(tokenizerIdentity: String, readOnly: Bool) throws -> any SharedModel {
        try SharedModels.open(address, password: { [self] in try password() }, tokenizerIdentity: tokenizerIdentity,
                              readOnly: readOnly)
    }

    private func password() throws -> String? {
        guard let passwordFile else { return nil }
        let descriptor = Glibc.open(passwordFile, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else {
            throw StoreError.sharedModel(path: address.description, detail: "cannot read the password file "
                + "\(passwordFile): \(String(cString: strerror(errno)))")
        }
        defer { close(descriptor) }
        var bytes: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4_096)
        while bytes.count < 64 << 10 {
            let count = read(descriptor, &buffer, buffer.count)
            if count < 0, errno == EINTR { continue }
            guard count > 0 else { break }
            bytes += buffer[..<count]
        }
        let line = bytes.prefix { $0 != 0x0A && $0 != 0x0D }
        // An empty file leaves the URL's password (or none) in place.
        return line.isEmpty ? nil : String(decoding: line, as: UTF8.self)
    }
}
