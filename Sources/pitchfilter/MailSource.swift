import Foundation

/// One message found at a path the user gave.
struct MailItem {
    /// How output lines name it: the file's path, or "mbox-path:N" (1-based) for the Nth message of an mbox.
    var name: String
    var bytes: [UInt8]
}

enum MailSourceError: Error, CustomStringConvertible {
    case unreadable(String, String)

    var description: String {
        switch self {
        case .unreadable(let path, let reason): "cannot read \(path): \(reason)"
        }
    }
}

/// The PATH arguments of classify and train: a message file, a directory of message files, a Maildir (its new/
/// and cur/), an mbox, or "-" for one message on standard input. Directories are read in byte-wise name order,
/// so runs are repeatable; hidden files and Maildir's tmp/ (deliveries in progress) are skipped.
enum MailSource {
    /// Calls `body` for each message, loading one file at a time.
    static func forEach(at path: String, _ body: (MailItem) throws -> Void) throws {
        if path == "-" {
            try body(MailItem(name: "-", bytes: Array(FileHandle.standardInput.readDataToEndOfFile())))
            return
        }
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw MailSourceError.unreadable(path, "no such file or directory")
        }
        if !isDirectory.boolValue {
            try forEachInFile(path, body)
            return
        }
        let base = path.hasSuffix("/") ? String(path.dropLast()) : path
        let isMaildir = ["cur", "new"].allSatisfy { FileManager.default.fileExists(atPath: base + "/" + $0) }
        for folder in isMaildir ? [base + "/new", base + "/cur"] : [base] {
            for name in try files(in: folder) { try forEachInFile(folder + "/" + name, body) }
        }
    }

    private static func files(in folder: String) throws -> [String] {
        let names: [String]
        do {
            names = try FileManager.default.contentsOfDirectory(atPath: folder)
        } catch {
            throw MailSourceError.unreadable(folder, "cannot list the directory")
        }
        return names.filter { name in
            var isDirectory: ObjCBool = false
            return !name.hasPrefix(".")
                && FileManager.default.fileExists(atPath: folder + "/" + name, isDirectory: &isDirectory)
                && !isDirectory.boolValue
        }.sorted { Array($0.utf8).lexicographicallyPrecedes(Array($1.utf8)) }
    }

    private static func forEachInFile(_ path: String, _ body: (MailItem) throws -> Void) throws {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw MailSourceError.unreadable(path, "permission denied or not a regular file")
        }
        let bytes = Array(data)
        let messages = Mbox.split(bytes)
        if messages.count <= 1 {
            try body(MailItem(name: path, bytes: bytes))
        } else {
            for (index, range) in messages.enumerated() {
                try body(MailItem(name: "\(path):\(index + 1)", bytes: Array(bytes[range])))
            }
        }
    }
}

/// mbox files (RFC 4155): messages start with a "From " line at the start of the file or after an empty line.
/// Each message keeps its own "From " line (the parser reads it as the envelope); the empty line that
/// separates it from the next belongs to neither.
enum Mbox {
    static func split(_ bytes: [UInt8]) -> [Range<Int>] {
        let from = Array("From ".utf8)
        guard bytes.starts(with: from) else { return [0..<bytes.count] }
        var starts = [0]
        var index = 0
        while let newline = bytes[index...].firstIndex(of: 0x0A) {
            let next = newline + 1
            let isBlank = newline == index || (newline == index + 1 && bytes[index] == 0x0D)
            if isBlank, bytes[next...].starts(with: from) { starts.append(next) }
            index = next
        }
        return starts.indices.map { i in
            guard i + 1 < starts.count else { return starts[i]..<bytes.count }
            var end = starts[i + 1] - 1  // drop the separating empty line
            if end > starts[i], bytes[end - 1] == 0x0D { end -= 1 }
            return starts[i]..<end
        }
    }
}
