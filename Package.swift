// swift-tools-version: 6.1
import PackageDescription

let package = Package(
    name: "pitchfilter",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "pitchfilter", targets: ["pitchfilter"]),
        .executable(name: "pitchfilter-service", targets: ["pitchfilter-service"]),
        .library(name: "PitchMessage", targets: ["PitchMessage"]),
    ],
    traits: [
        // Off by default: postgres-nio brings swift-nio-ssl and swift-crypto, minutes of building that a host with
        // its own SQLite database does not need. `swift build --traits PostgreSQL` (Scripts/postgres-check.sh).
        .trait(name: "PostgreSQL", description: "The model shared by several mail hosts, in PostgreSQL"),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        .package(url: "https://github.com/LebJe/TOMLKit", from: "0.6.0"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
        .package(url: "https://github.com/vapor/postgres-nio", from: "1.33.2"),
        .package(url: "https://github.com/apple/swift-nio-ssl", from: "2.37.6"),
    ],
    targets: [
        // bytes → message: RFC 5322 + MIME over raw bytes. Depends on nothing but the C library (iconv for
        // charsets), so the fuzzer can compile it alone with swiftc.
        .target(name: "PitchMessage"),
        // message → tokens, and the fixed hash that names a token in storage.
        .target(name: "PitchTokenizer", dependencies: ["PitchMessage"]),
        // counts → score, verdict, explanation. Pure: no I/O, no dependencies.
        .target(name: "PitchClassifier"),
        // token counts and the learned-message ledger: in memory and in SQLite.
        .systemLibrary(name: "CSQLite", providers: [.apt(["libsqlite3-dev"])]),
        // With the PostgreSQL trait, also the model in PostgreSQL (`SharedModel`).
        .target(name: "PitchStore",
                dependencies: [
                    "PitchTokenizer", "PitchClassifier", "CSQLite",
                    .product(name: "PostgresNIO", package: "postgres-nio", condition: .when(traits: ["PostgreSQL"])),
                    .product(name: "NIOSSL", package: "swift-nio-ssl", condition: .when(traits: ["PostgreSQL"])),
                    .product(name: "NIOCore", package: "swift-nio", condition: .when(traits: ["PostgreSQL"])),
                    .product(name: "NIOPosix", package: "swift-nio", condition: .when(traits: ["PostgreSQL"])),
                    .product(name: "Logging", package: "swift-log", condition: .when(traits: ["PostgreSQL"])),
                ],
                linkerSettings: [staticArchive("libsqlite3.a")]),
        // classify / train / forget, message digests, the embedded starter model.
        .systemLibrary(name: "COpenSSL", providers: [.apt(["libssl-dev"])]),
        .target(
            name: "PitchEngine",
            dependencies: ["PitchMessage", "PitchTokenizer", "PitchClassifier", "PitchStore", "COpenSSL"],
            linkerSettings: [staticArchive("libcrypto.a")]
        ),
        // Maildir folders on disk: names, atomic delivery, moves, inotify. Knows nothing about classification.
        .target(name: "PitchMaildir", dependencies: ["CLinuxCalls"]),
        // The Linux calls Glibc's module leaves out (renameat2 with RENAME_EXCHANGE), one line of C each.
        .target(name: "CLinuxCalls"),
        // the milter protocol (version 6): frame decoder, session state machine, SwiftNIO server. Knows nothing
        // about classification: it asks a handler what to do at the end of each message.
        .target(
            name: "PitchMilter",
            dependencies: [
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
                "CLinuxCalls",
            ]
        ),
        // the MTA's side of the milter protocol, blocking: for the load tool and the server's tests.
        .target(name: "MilterClient", dependencies: ["PitchMilter"]),
        // the service: configuration, the Maildir watcher, quarantine, learning from the user's moves, and the
        // counters it keeps (swift-metrics), shown to Prometheus on a loopback HTTP port if asked.
        .target(
            name: "PitchDaemon",
            dependencies: [
                "PitchClassifier", "PitchEngine", "PitchMaildir", "PitchMessage", "PitchMilter", "PitchStore",
                "PitchTokenizer", "CLinuxCalls",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
                .product(name: "TOMLKit", package: "TOMLKit"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ]
        ),
        // What every command shares: where the database is, opening it, reading messages from the paths given.
        .target(
            name: "PitchCommandLine",
            dependencies: ["PitchEngine", "PitchMaildir", "PitchMessage", "PitchStore", "PitchTokenizer", "CLinuxCalls",
                           .product(name: "ArgumentParser", package: "swift-argument-parser")]
        ),
        // The command a user runs: filter, classify, train, stats, eval, contacts. `serve` and `quarantine` exec
        // pitchfilter-service, so the pipe filter, which starts once per message, does not carry the service.
        .executableTarget(
            name: "pitchfilter",
            dependencies: [
                "PitchCommandLine", "PitchEngine", "CLinuxCalls",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            linkerSettings: leanStartup
        ),
        // `pitchfilter serve` and `pitchfilter quarantine`: the service (SwiftNIO, swift-service-lifecycle, TOMLKit
        // and Foundation with ICU). Kept out of `pitchfilter` itself, whose every run they made 1.5 ms slower.
        .executableTarget(
            name: "pitchfilter-service",
            dependencies: [
                "PitchCommandLine", "PitchDaemon", "PitchEngine", "PitchMaildir", "PitchMessage", "PitchMilter",
                "PitchStore", "PitchTokenizer",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ],
            linkerSettings: leanStartup
        ),
        .executableTarget(
            name: "milter-load",
            dependencies: ["MilterClient", "PitchMilter"],
            path: "Benchmarks/MilterLoad"
        ),
        .executableTarget(
            name: "pitch-bench",
            dependencies: ["PitchMessage", "PitchTokenizer"],
            path: "Benchmarks/PitchBench"
        ),
        .testTarget(name: "PitchMessageTests", dependencies: ["PitchMessage"], exclude: ["Fixtures"]),
        .testTarget(name: "PitchTokenizerTests", dependencies: ["PitchTokenizer"]),
        .testTarget(name: "PitchClassifierTests", dependencies: ["PitchClassifier"]),
        .testTarget(name: "PitchStoreTests", dependencies: ["PitchStore"]),
        .testTarget(name: "PitchEngineTests", dependencies: ["PitchEngine"]),
        .testTarget(name: "PitchMaildirTests", dependencies: ["PitchMaildir", "CLinuxCalls"]),
        .testTarget(name: "PitchDaemonTests", dependencies: [
            "PitchDaemon", .product(name: "InMemoryLogging", package: "swift-log"),
        ]),
        .testTarget(
            name: "PitchMilterTests",
            dependencies: [
                "PitchMilter", "MilterClient",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "NIOTestUtils", package: "swift-nio"),
                .product(name: "InMemoryLogging", package: "swift-log"),
            ]
        ),
        .testTarget(name: "PitchCommandLineTests", dependencies: ["PitchCommandLine"]),
        .testTarget(name: "pitchfilterTests", dependencies: ["pitchfilter", "pitchfilter-service", "MilterClient"]),
    ]
)

/// SQLite and libcrypto are linked from Debian's static archives (libsqlite3-dev, libssl-dev), not the shared
/// libraries. The pipe filter starts once per message, and loading those two shared libraries was a fifth of its
/// run: the loader mapped them and bound their symbols every time (perf, 300 runs). Linked statically, only the
/// code used is in the executable. The price: a security update of either library reaches pitchfilter when it is
/// rebuilt, as with the Swift runtime it already links statically.
func staticArchive(_ file: String) -> LinkerSetting {
    .linkedLibrary(":" + file, .when(platforms: [.linux]))
}

/// For executables that start often. The pipe filter starts once per delivered message, and the dynamic loader did
/// two things each time: apply 93,000 relative relocations to the executable, and look up symbols in its dynamic
/// symbol table, which exported 15,000 symbols of the statically linked Swift runtime. Packing the relocations
/// (DT_RELR, glibc 2.36+, lld from the toolchain) and exporting nothing cut an empty message's run from 9.3-10.8 ms
/// to 8.1-8.4 ms (perf stat, 100 runs); the executable stays position-independent.
var leanStartup: [LinkerSetting] {
    [
        .unsafeFlags(["-use-ld=lld", "-Xlinker", "-z", "-Xlinker", "pack-relative-relocs",
                      "-Xlinker", "--exclude-libs=ALL", "-Xlinker", "--no-export-dynamic"],
                     .when(platforms: [.linux])),
        // Release builds link libstdc++ and the unwinder statically: see Linker/libstdc++.so.
        .unsafeFlags(["-L" + Context.packageDirectory + "/Linker"],
                     .when(platforms: [.linux], configuration: .release)),
    ]
}
