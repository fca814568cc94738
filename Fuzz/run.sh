#!/usr/bin/env bash
# Fuzzes the message model, or the tokenizer over it, with libFuzzer and AddressSanitizer.
#   Fuzz/run.sh [SECONDS] [message|tokenizer]   (default 60 s, message; the 10-minute run in the README uses 600)
# Seeds come from the golden fixtures and a few sample messages; new interesting inputs are kept in
# .build-fuzz/corpus-TARGET between runs.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-60}
target=${2:-message}
out=.build-fuzz
corpus="$out/corpus-$target"
mkdir -p "$corpus"
cp Tests/PitchMessageTests/Fixtures/golden/*.eml "$corpus/" 2>/dev/null || true
case "$target" in
    message)
        sources=(Sources/PitchMessage/*.swift Fuzz/FuzzLimits.swift Fuzz/FuzzMessage.swift) ;;
    tokenizer)
        # The tokenizer's signals live in the body: seed with real pitches and ham too.
        cp samples/messages/*.eml samples/heldout/pitch/h-p-00*.eml samples/heldout/ham/h-h-00*.eml "$corpus/" \
            2>/dev/null || true
        # One module: the tokenizer's `import PitchMessage` is then ignored with a warning, kept quiet here.
        sources=(Sources/PitchMessage/*.swift Sources/PitchTokenizer/*.swift Fuzz/FuzzLimits.swift Fuzz/FuzzTokenizer.swift) ;;
    *)
        echo "usage: Fuzz/run.sh [SECONDS] [message|tokenizer]" >&2
        exit 64 ;;
esac
swiftc -sanitize=fuzzer,address -parse-as-library -O -use-ld=lld -module-name PitchMessage \
    "${sources[@]}" -o "$out/fuzz-$target" 2> >(grep -v "ignoring import\|^import PitchMessage\|^ *\^" >&2)
# The Swift backtracer and ASan both want the crash signals; let ASan have them.
export SWIFT_BACKTRACE=enable=no
"$out/fuzz-$target" "$corpus" -max_total_time="$seconds" -max_len=65536 -timeout=10 \
    -rss_limit_mb=2048 -print_final_stats=1 -artifact_prefix="$out/$target-"
