#!/usr/bin/env bash
# Fuzzes the message model with libFuzzer and AddressSanitizer.
#   Fuzz/run.sh [SECONDS]   (default 60; the 10-minute run in the README uses 600)
# Seeds come from the golden fixtures; new interesting inputs are kept in .build-fuzz/corpus between runs.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-60}
out=.build-fuzz
mkdir -p "$out/corpus"
cp Tests/PitchMessageTests/Fixtures/golden/*.eml "$out/corpus/" 2>/dev/null || true
swiftc -sanitize=fuzzer,address -parse-as-library -O -use-ld=lld \
    Sources/PitchMessage/*.swift Fuzz/FuzzMessage.swift -o "$out/fuzz-message"
# The Swift backtracer and ASan both want the crash signals; let ASan have them.
export SWIFT_BACKTRACE=enable=no
"$out/fuzz-message" "$out/corpus" -max_total_time="$seconds" -max_len=65536 -timeout=10 \
    -rss_limit_mb=2048 -print_final_stats=1 -artifact_prefix="$out/"
