import Foundation

/// A directory under /tmp for one test, removed with everything in it when the last reference goes away.
final class TemporaryDirectory: Sendable {
    let path: String

    init(_ prefix: String) throws {
        path = NSTemporaryDirectory() + prefix + "-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }

    deinit { try? FileManager.default.removeItem(atPath: path) }
}
