import Foundation

/// Runs the built `pitchfilter` executable as a user or an MTA would: arguments, standard input, environment.
struct Run {
    var status: Int32
    var stdout: [UInt8]
    var stderr: String
    var text: String { String(decoding: stdout, as: UTF8.self) }

    static let executable: URL = {
        if let path = ProcessInfo.processInfo.environment["PITCHFILTER_BIN"] { return URL(fileURLWithPath: path) }
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent()
        return root.appendingPathComponent(".build/debug/pitchfilter")
    }()

    static func pitchfilter(_ arguments: [String], stdin: [UInt8] = [],
                            environment: [String: String]? = nil) throws -> Run {
        try program(executable, arguments, stdin: stdin, environment: environment)
    }

    /// A shell command line, for redirections the test needs (a directory as standard input, /dev/full as output).
    static func shell(_ command: String) throws -> Run {
        try program(URL(fileURLWithPath: "/bin/sh"), ["-c", command])
    }

    static func program(_ path: URL, _ arguments: [String], stdin: [UInt8] = [],
                        environment: [String: String]? = nil) throws -> Run {
        let process = Process()
        process.executableURL = path
        process.arguments = arguments
        // The runner's own settings for pitchfilter are not the test's: a $PITCHFILTER_CONFIG or $PITCHFILTER_DB
        // of the machine's would reach every run that gives none.
        process.environment = environment ?? ProcessInfo.processInfo.environment.filter {
            !$0.key.hasPrefix("PITCHFILTER_") && $0.key != "XDG_DATA_HOME"
        }
        let input = Pipe()
        let output = Pipe()
        let errors = Pipe()
        process.standardInput = input
        process.standardOutput = output
        process.standardError = errors
        try process.run()
        // Feed and drain concurrently so a large message cannot deadlock on full pipe buffers.
        // Each thread signals when done: polling `isExecuting` instead returned before a thread had even begun
        // when the program exited at once, with its standard error unread (seen in CI).
        let done = DispatchSemaphore(value: 0)
        let writer = Thread {
            input.fileHandleForWriting.write(Data(stdin))
            try? input.fileHandleForWriting.close()
            done.signal()
        }
        writer.start()
        let errorData = Locked(Data())
        let errorReader = Thread {
            errorData.value = errors.fileHandleForReading.readDataToEndOfFile()
            done.signal()
        }
        errorReader.start()
        let out = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        done.wait()
        done.wait()
        return Run(status: process.terminationStatus, stdout: Array(out),
                   stderr: String(decoding: errorData.value, as: UTF8.self))
    }
}

final class Locked<Value>: @unchecked Sendable {
    private let lock = NSLock()
    private var stored: Value
    init(_ value: Value) { stored = value }
    var value: Value {
        get { lock.withLock { stored } }
        set { lock.withLock { stored = newValue } }
    }
}

/// A fresh directory per test, removed afterwards.
final class Scratch {
    let url: URL
    init() throws {
        url = FileManager.default.temporaryDirectory.appendingPathComponent("pitchfilter-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    }
    deinit { try? FileManager.default.removeItem(at: url) }

    func path(_ name: String) -> String { url.appendingPathComponent(name).path }

    @discardableResult
    func write(_ name: String, _ text: String) throws -> String {
        let path = path(name)
        try FileManager.default.createDirectory(atPath: (path as NSString).deletingLastPathComponent,
                                                withIntermediateDirectories: true)
        try Data(text.utf8).write(to: URL(fileURLWithPath: path))
        return path
    }
}

enum Samples {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("samples/corpus")
    static var pitch: String { root.appendingPathComponent("pitch").path }
    static var ham: String { root.appendingPathComponent("ham").path }
    static var sent: String { root.appendingPathComponent("sent").path }
}
