// swift-tools-version: 6.1
import PackageDescription

let package = Package(
    name: "pitchfilter",
    platforms: [.macOS(.v15)],
    products: [
        .library(name: "PitchMessage", targets: ["PitchMessage"]),
    ],
    targets: [
        // RFC 5322 + MIME over raw bytes. Depends on nothing but the C library (iconv for charsets),
        // so the fuzzer can compile it alone with swiftc.
        .target(name: "PitchMessage"),
        .executableTarget(
            name: "pitch-bench",
            dependencies: ["PitchMessage"],
            path: "Benchmarks/PitchBench"
        ),
        .testTarget(
            name: "PitchMessageTests",
            dependencies: ["PitchMessage"],
            exclude: ["Fixtures"]
        ),
    ]
)
