import ArgumentParser
import PitchEngine
import PitchStore

#if canImport(Glibc)
import Glibc
#endif

/// Opening the database the way every command expects.
public enum Stores {
    /// Read-only; a database that does not exist yet means "nothing trained" (the starter model decides), unless
    /// the model is shared (`countSource`).
    public static func openForReading(_ path: String) throws -> SQLiteTokenStore? {
        try openForReading(path, sharedModel: try sharedModel(readOnly: true))
    }

    /// `openForReading` with the shared model given (a `--config` file's), or none.
    public static func openForReading(_ path: String, sharedModel: (any SharedModel)?) throws -> SQLiteTokenStore? {
        do {
            return try SQLiteTokenStore(path: path, tokenizerIdentity: Engine.tokenizerIdentity, access: .readOnly,
                                        sharedModel: sharedModel)
        } catch StoreError.missing {
            return nil
        }
    }

    /// Whether a run that learns from `paths` would only make the database: none of them is there, nor is the
    /// database. Each is then said missing, as the run says it, and the run should end there: a mistyped path left
    /// a new, empty database behind, and with it the filter's template memory switched on (found by an audit).
    public static func onlyMissing(_ paths: [String], noDatabaseAt database: String) -> Bool {
        var info = stat()
        // Not there: nothing of the name, a link to nothing, or a name under a file (found in review: the last two
        // were said missing, and the database made all the same).
        func missing(_ path: String) -> Bool { stat(path, &info) != 0 && (errno == ENOENT || errno == ENOTDIR) }
        guard !paths.isEmpty, lstat(database, &info) != 0, errno == ENOENT, !paths.contains("-"),
              paths.allSatisfy(missing) else { return false }
        for path in paths {
            MailSource.forEach(at: path, notes: false, unreadable: { _ = $0.reportWhileLearning() }) { _ in }
        }
        return true
    }

    /// Read-write, created if missing; on failure the error is reported and the command exits 3.
    public static func openForWriting(_ path: String) throws -> SQLiteTokenStore {
        let model: (any SharedModel)?
        do {
            model = try sharedModel(readOnly: false)
        } catch {
            report(error)
            throw ExitCode(3)
        }
        return try openForWriting(path, sharedModel: model)
    }

    /// `openForWriting` with the shared model given (a `--config` file's), or none.
    public static func openForWriting(_ path: String, sharedModel: (any SharedModel)?) throws -> SQLiteTokenStore {
        do {
            let store = try SQLiteTokenStore(path: path, tokenizerIdentity: Engine.tokenizerIdentity,
                                             access: .readWrite, sharedModel: sharedModel)
            if store.beganAsAnEmptyFile { reportLine("note: \(path): \(StoreError.emptyFileWarning)") }
            return store
        } catch {
            report(error)
            throw ExitCode(3)
        }
    }

    /// The model several hosts share (`[database] shared_model`), if the configuration names one. Connecting waits
    /// for the first call that needs it.
    public static func sharedModel(readOnly: Bool) throws -> (any SharedModel)? {
        try CommandLineConfiguration.sharedModel()?.open(tokenizerIdentity: Engine.tokenizerIdentity,
                                                         readOnly: readOnly)
    }

    /// Where classifying reads counts: the host's database, which reads a shared model through itself, or with no
    /// database here yet the shared model alone; nil when neither exists (the starter model decides).
    public static func countSource(_ store: SQLiteTokenStore?) throws -> (any TokenCountSource)? {
        if let store { return store }
        return try sharedModel(readOnly: true)
    }

    /// One line on standard error; a closed standard error is no reason to fail (or trap, as FileHandle would).
    public static func report(_ error: Error) {
        reportLine("\(error)")
    }

    /// "pitchfilter: " and the line, on standard error.
    public static func reportLine(_ line: String) {
        FileDescriptor.writeAll(2, Array("pitchfilter: \(line)\n".utf8)[...])
    }

    /// A command's answer on standard output, ending in a newline; exit status 3, said why, if it cannot all be
    /// written (a full disk under `stats > file`): `print` drops a failed write unseen, and the command exited 0
    /// with its figures lost (found by an audit).
    /// `done`: what was done all the same, said with the failure (a release's status 3 must not read as "not
    /// released" to a script).
    public static func writeAnswer(_ text: String, done: String? = nil) throws(ExitCode) {
        try writeOutput(Array((text + "\n").utf8)[...], done: done)
    }

    /// `bytes` on standard output as they are (a listing, a message); exit status 3, said why, if they cannot all
    /// be written.
    public static func writeOutput(_ bytes: ArraySlice<UInt8>, done: String? = nil) throws(ExitCode) {
        guard FileDescriptor.writeAll(1, bytes) else {
            reportLine("cannot write to standard output: \(systemReason(errno))" + (done.map { " (\($0))" } ?? ""))
            throw ExitCode(3)
        }
    }
}

/// Writing to a descriptor with write(2): standard output and error must never trap, whatever is on the other end.
public enum FileDescriptor {
    /// poll(2) until `fd` can take more; false if it never will (an error, or the reader gone). Async-signal-safe.
    public static func waitUntilWritable(_ fd: Int32) -> Bool {
        var request = pollfd(fd: fd, events: Int16(POLLOUT), revents: 0)
        while true {
            let ready = poll(&request, 1, -1)
            if ready < 0 && errno == EINTR { continue }
            return ready == 1 && request.revents & Int16(POLLOUT) != 0
        }
    }

    @discardableResult
    public static func writeAll(_ fd: Int32, _ bytes: ArraySlice<UInt8>) -> Bool {
        bytes.withUnsafeBytes { buffer in
            guard let base = buffer.baseAddress else { return true }
            var offset = 0
            while offset < buffer.count {
                let n = Glibc.write(fd, base + offset, buffer.count - offset)
                if n < 0 {
                    if errno == EINTR { continue }
                    // A descriptor the caller made non-blocking (Python's asyncio does): wait until it takes more.
                    if errno == EAGAIN || errno == EWOULDBLOCK, waitUntilWritable(fd) { continue }
                    return false
                }
                offset += n
            }
            return true
        }
    }
}
