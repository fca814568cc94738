#!/usr/bin/env bash
# 32 concurrent `pitchfilter filter` processes over 2,000 messages while a bulk `train` writes the same
# database. Passes when every output is the input plus exactly one X-Pitch-Status field (forged X-Pitch-*
# fields removed), every filter exited 0, and none had to fall back to passing the message through.
#   Scripts/concurrency-check.sh [CORPUS_DIR] [MESSAGES] [PARALLEL]
set -euo pipefail
cd "$(dirname "$0")/.."
corpus=${1:-../shared/corpora/spamassassin}
count=${2:-2000}
parallel=${3:-32}
bin=${PITCHFILTER_BIN:-.build/release/pitchfilter}
[ -x "$bin" ] || swift build -c release --product pitchfilter
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/in" "$work/out" "$work/err"
n=0
while IFS= read -r file; do
    n=$((n + 1))
    cp "$file" "$work/in/$(printf %05d "$n")"
done < <(find "$corpus" -type f | sort | head -n "$count")
db="$work/pitchfilter.sqlite"
"$bin" train --db "$db" --ham "$corpus"/easy-ham-1 > /dev/null   # a database that exists before the run

# The writer: trains everything else while the filters run.
"$bin" train --db "$db" --ham "$corpus"/easy-ham-2 "$corpus"/hard-ham-1 --pitch "$corpus"/spam-1 "$corpus"/spam-2 \
    > "$work/train.out" 2> "$work/train.err" &
trainer=$!
start=$(date +%s.%N)
ls "$work/in" | xargs -P "$parallel" -I{} sh -c \
    "'$bin' filter --db '$db' < '$work/in/{}' > '$work/out/{}' 2> '$work/err/{}'; echo \$? > '$work/err/{}.status'"
end=$(date +%s.%N)
trained_during=$(kill -0 "$trainer" 2>/dev/null && echo "still training" || echo "finished during the run")
wait "$trainer"
echo "train: $(cat "$work/train.out") ($trained_during)"
python3 - "$work" "$count" "$start" "$end" <<'PY'
import os, re, sys
work, count, start, end = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4])
ours = re.compile(rb'^X-Pitch-[^:]*:.*\r?\n(?:[ \t].*\r?\n)*', re.I | re.M)
bad = 0
names = sorted(os.listdir(f'{work}/in'))
for name in names:
    raw = open(f'{work}/in/{name}', 'rb').read()
    out = open(f'{work}/out/{name}', 'rb').read()
    status = open(f'{work}/err/{name}.status').read().strip()
    err = open(f'{work}/err/{name}', 'rb').read()
    head = out.split(b'\n\n', 1)[0]
    tags = re.findall(rb'^X-Pitch-Status: (pitch|unsure|ham), score=[01]\.\d{4}, ', head, re.M)
    # Compare with our fields removed from the header of both (forged ones in the input are removed by us).
    def strip(b):
        # Our fields removed from the header block only; the body is compared as it is.
        m = re.search(rb'\r?\n\r?\n', b)
        if not m: return ours.sub(b'', b)
        return ours.sub(b'', b[:m.end()]) + b[m.end():]
    problems = []
    if status != '0': problems.append(f'exit {status}')
    if err: problems.append('stderr: ' + err.decode(errors='replace').strip())
    if len(tags) != 1: problems.append(f'{len(tags)} X-Pitch-Status fields')
    if strip(out) != strip(raw): problems.append('bytes differ')
    if problems:
        bad += 1
        if bad <= 10: print(name, '; '.join(problems))
print(f'{len(names)} messages, {bad} problems, {len(names) / (end - start):.0f} messages/s with the trainer running')
sys.exit(1 if bad or len(names) != count else 0)
PY
