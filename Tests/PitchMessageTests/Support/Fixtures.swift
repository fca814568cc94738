import Foundation

/// Files beside the tests, found from this source file so the tests run from any working directory.
enum Fixtures {
    static let directory = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("Fixtures")

    static func bytes(_ relativePath: String) throws -> [UInt8] {
        Array(try Data(contentsOf: directory.appendingPathComponent(relativePath)))
    }

    static func names(in folder: String, withExtension ext: String) -> [String] {
        let url = directory.appendingPathComponent(folder)
        let files = (try? FileManager.default.contentsOfDirectory(atPath: url.path)) ?? []
        return files.filter { $0.hasSuffix("." + ext) }.map { String($0.dropLast(ext.count + 1)) }.sorted()
    }

    /// Every bare LF turned into CRLF (CRLF already present stays as it is).
    static func crlf(_ bytes: [UInt8]) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count + bytes.count / 16)
        var previous: UInt8 = 0
        for byte in bytes {
            if byte == 0x0A && previous != 0x0D { out.append(0x0D) }
            out.append(byte)
            previous = byte
        }
        return out
    }

    /// The SpamAssassin public corpus in ../shared, when it is there.
    static let corpusDirectory: URL? = {
        let url = directory.appendingPathComponent("../../../../shared/corpora/spamassassin").standardized
        return FileManager.default.fileExists(atPath: url.path) ? url : nil
    }()

    static func corpusFiles() -> [URL] {
        guard let root = corpusDirectory else { return [] }
        let folders = ((try? FileManager.default.contentsOfDirectory(atPath: root.path)) ?? []).sorted()
        return folders.flatMap { folder -> [URL] in
            let dir = root.appendingPathComponent(folder)
            let names = ((try? FileManager.default.contentsOfDirectory(atPath: dir.path)) ?? []).sorted()
            return names.map { dir.appendingPathComponent($0) }
        }
    }
}
