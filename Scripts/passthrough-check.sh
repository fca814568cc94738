#!/usr/bin/env bash
# Every message of a corpus through `pitchfilter filter`, one process each, as procmail runs it. Passes when
# each output minus X-Pitch-* header lines equals the input minus X-Pitch-* header lines, byte for byte, every
# output carries exactly one X-Pitch-Status, and every run exited 0 with nothing on standard error.
#   Scripts/passthrough-check.sh [CORPUS_DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
corpus=${1:-../shared/corpora/spamassassin}
bin=${PITCHFILTER_BIN:-.build/release/pitchfilter}
[ -x "$bin" ] || swift build -c release --product pitchfilter
python3 - "$bin" "$corpus" <<'PY'
import os, re, subprocess, sys, tempfile
binary, corpus = sys.argv[1], sys.argv[2]
ours = re.compile(rb'^X-Pitch-[^:]*:.*\r?\n(?:[ \t].*\r?\n)*', re.I | re.M)
def strip(b):
    m = re.search(rb'\r?\n\r?\n', b)
    return ours.sub(b'', b) if not m else ours.sub(b'', b[:m.end()]) + b[m.end():]
files = sorted(os.path.join(d, f) for d, _, fs in os.walk(corpus) for f in fs)
bad, verdicts = 0, {}
with tempfile.TemporaryDirectory() as home:
    for path in files:
        raw = open(path, 'rb').read()
        run = subprocess.run([binary, 'filter'], input=raw, capture_output=True, env={'HOME': home})
        head = run.stdout.split(b'\n\n', 1)[0]
        tags = re.findall(rb'^X-Pitch-Status: (pitch|unsure|ham), score=[01]\.\d{4}, ', head, re.M)
        problems = []
        if run.returncode != 0: problems.append(f'exit {run.returncode}')
        if run.stderr: problems.append(run.stderr.decode(errors='replace').strip())
        if len(tags) != 1: problems.append(f'{len(tags)} X-Pitch-Status fields')
        if strip(run.stdout) != strip(raw): problems.append('bytes differ')
        if tags: verdicts[tags[0]] = verdicts.get(tags[0], 0) + 1
        if problems:
            bad += 1
            if bad <= 10: print(path, '; '.join(problems))
print(f'{len(files)} messages, {bad} problems; verdicts with the starter model alone: '
      + ', '.join(f'{k.decode()} {v}' for k, v in sorted(verdicts.items())))
sys.exit(1 if bad else 0)
PY
