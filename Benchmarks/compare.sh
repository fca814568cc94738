#!/usr/bin/env bash
# pitchfilter against bogofilter on the same machine, in the same run, over the same messages.
#
#   bash Benchmarks/compare.sh [--rounds N] [--pipe-messages N] [--skip-build] [--pitch DIR...] [--ham DIR...]
#
# Measures training, batch classification and one-process-per-message (pipe) throughput, and peak RSS of each,
# for both programs; then prints pitch-bench's in-process figures for ours. Every timed measure runs `rounds`
# times with the two programs interleaved (round 1 ours first, round 2 bogofilter first, ...) so neither one
# always gets the warmer machine, and the table reports medians. Each DIR is a directory of one-message files.
#
# Environment: PITCHFILTER and PITCH_BENCH override the binaries (to test copies while a build is running).
# Neither program's own database is touched: pitchfilter always gets --db and bogofilter always gets -d, both
# inside a temporary directory that is removed on exit.
set -euo pipefail

# Paths below (defaults, .build/) are relative to the repository root, whatever the caller's directory.
cd "$(dirname "$0")/.."

die() { printf 'compare.sh: %s\n' "$*" >&2; exit 1; }
note() { printf '%s\n' "$*" >&2; }   # progress goes to stderr so stdout is only the report

# ---------------------------------------------------------------------------------------------- arguments
rounds=3
pipe_messages=300
skip_build=0
corpus=../shared/corpora/spamassassin
pitch_dirs=("$corpus/spam-1" "$corpus/spam-2")
ham_dirs=("$corpus/easy-ham-1" "$corpus/easy-ham-2" "$corpus/hard-ham-1")
pitch_given=0
ham_given=0
while [ $# -gt 0 ]; do
    case $1 in
        --rounds) [ $# -ge 2 ] || die "--rounds needs a number"; rounds=$2; shift 2 ;;
        --pipe-messages) [ $# -ge 2 ] || die "--pipe-messages needs a number"; pipe_messages=$2; shift 2 ;;
        --skip-build) skip_build=1; shift ;;
        --pitch|--ham)
            # A list option takes every following word up to the next option; giving it replaces the
            # defaults for that class (the first time), and giving it again adds to the list.
            which=$1; shift
            if [ "$which" = --pitch ] && [ $pitch_given = 0 ]; then pitch_dirs=(); pitch_given=1; fi
            if [ "$which" = --ham ] && [ $ham_given = 0 ]; then ham_dirs=(); ham_given=1; fi
            while [ $# -gt 0 ] && [[ $1 != --* ]]; do
                if [ "$which" = --pitch ]; then pitch_dirs+=("$1"); else ham_dirs+=("$1"); fi
                shift
            done ;;
        -h|--help) sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) die "unknown argument: $1 (see --help)" ;;
    esac
done
[[ $rounds =~ ^[1-9][0-9]*$ ]] || die "--rounds must be a positive integer, not '$rounds'"
[[ $pipe_messages =~ ^[1-9][0-9]*$ ]] || die "--pipe-messages must be a positive integer, not '$pipe_messages'"
[ ${#pitch_dirs[@]} -gt 0 ] || die "no pitch folders"
[ ${#ham_dirs[@]} -gt 0 ] || die "no ham folders"
for d in "${pitch_dirs[@]}" "${ham_dirs[@]}"; do [ -d "$d" ] || die "not a directory: $d"; done

# ---------------------------------------------------------------------------------------------- tools
# bogofilter is the reference; install it if we can (root), else say how and stop rather than guess.
if ! command -v bogofilter >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ]; then
        note "bogofilter not found: installing the Debian package"
        # Only refresh the package lists if the plain install fails: apt-get update is slow and often
        # unnecessary on a machine whose lists are recent.
        apt-get install -y bogofilter >&2 || { apt-get update >&2 && apt-get install -y bogofilter >&2; } \
            || die "could not install bogofilter"
    else
        die "bogofilter is not installed; install it (e.g. sudo apt-get install bogofilter) and run again"
    fi
fi
# GNU time, not the shell keyword: only it reports peak RSS (%M).
if [ ! -x /usr/bin/time ] && [ "$(id -u)" = 0 ]; then
    note "GNU time not found: installing the Debian package"
    apt-get install -y time >&2 || { apt-get update >&2 && apt-get install -y time >&2; } || true
fi
[ -x /usr/bin/time ] || die "/usr/bin/time (GNU time) is needed for peak RSS; install the 'time' package"
command -v python3 >/dev/null 2>&1 || die "python3 is needed for the arithmetic"

if [ $skip_build = 0 ]; then
    # Static stdlib, as shipped: dynamic linking would add loader time to every pipe-mode process.
    note "building pitchfilter and pitch-bench (release)"
    swift build -c release --static-swift-stdlib --product pitchfilter >&2
    swift build -c release --static-swift-stdlib --product pitch-bench >&2
fi
PF=${PITCHFILTER:-.build/release/pitchfilter}
PB=${PITCH_BENCH:-.build/release/pitch-bench}
[ -x "$PF" ] || die "pitchfilter binary not found or not executable: $PF (build it, or set PITCHFILTER)"

# -C: read no config file, so a ~/.bogofilter.cf on this machine cannot change what is measured.
BF=(bogofilter -C)

# ---------------------------------------------------------------------------------------------- work area
work=$(mktemp -d "${TMPDIR:-/tmp}/pitch-compare.XXXXXX")
trap 'rm -rf "$work"' EXIT

# Every message file, pitch folders first, each folder in sorted order; NUL-separated so any name works.
list_files() { local d; for d in "$@"; do find -L "$d" -type f -print0 | sort -z; done; }
mapfile -d '' pitch_files < <(list_files "${pitch_dirs[@]}")
mapfile -d '' ham_files < <(list_files "${ham_dirs[@]}")
all_files=("${pitch_files[@]}" "${ham_files[@]}")
n_pitch=${#pitch_files[@]}
n_ham=${#ham_files[@]}
n_all=${#all_files[@]}
[ "$n_pitch" -gt 0 ] && [ "$n_ham" -gt 0 ] || die "no message files in the pitch or ham folders"

# Pipe-mode sample: file floor(i*N/n) for i = 0..n-1, i.e. evenly spread over all folders, so it mixes
# pitches and ham in the corpus's own proportions. Both programs get exactly this list.
[ "$pipe_messages" -le "$n_all" ] || pipe_messages=$n_all
pipe_files=()
for ((i = 0; i < pipe_messages; i++)); do pipe_files+=("${all_files[i * n_all / pipe_messages]}"); done

# Read every message once so that round 1's first program does not pay for the disk alone.
# (Through xargs: a large corpus would overflow one command line.)
printf '%s\0' "${all_files[@]}" | xargs -0 cat >/dev/null

# ---------------------------------------------------------------------------------------------- helpers
now() { date +%s.%N; }
sub() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.6f", b - a }'; }
max() { awk -v a="$1" -v b="$2" 'BEGIN { print (a > b ? a : b) }'; }

# Results: one "measure program round value" line per figure; the table and the rounds section come from it.
results=$work/results
: >"$results"
record() { printf '%s %s %s %s\n' "$1" "$2" "$3" "$4" >>"$results"; }

# The RSS file GNU time writes holds the figure on its last line (earlier lines, if any, are its notes,
# e.g. "Command exited with non-zero status").
rss_of() { tail -n 1 "$1"; }

# Training from an empty database. Ours: one process. Bogofilter: pitches then ham, two processes, timed as
# one span. The timed commands run under GNU time for their peak RSS: one extra fork+exec, the same for both,
# and negligible against runs of seconds.
train_ours() {
    local r=$1 db=$work/ours-$1.sqlite out=$work/train-ours.out t0 t1 rc=0
    rm -f "$db"*
    t0=$(now)
    /usr/bin/time -f %M -o "$work/rss" "$PF" train --db "$db" --pitch "${pitch_dirs[@]}" --ham "${ham_dirs[@]}" \
        >"$out" 2>"$work/train-ours.err" || rc=$?
    t1=$(now)
    [ $rc = 0 ] || die "pitchfilter train failed (exit $rc): $(cat "$work/train-ours.err")"
    # A run that skipped messages would look fast: require every file learned (or already known, for a
    # corpus that holds the same message twice).
    local learned known
    read -r learned known < <(sed -n 's/^learned \([0-9]*\), already known \([0-9]*\).*/\1 \2/p' "$out") || true
    [ -n "${learned:-}" ] || die "pitchfilter train printed no 'learned N, already known N' line: $(cat "$out")"
    [ $((learned + known)) = "$n_all" ] || die "pitchfilter train learned $learned + $known of $n_all messages"
    record train ours "$r" "$(sub "$t0" "$t1")"
    record train-rss ours "$r" "$(rss_of "$work/rss")"
}
train_bogo() {
    local r=$1 dir=$work/bogo-$1 t0 t1 rc=0 rss1
    rm -rf "$dir"; mkdir "$dir"
    t0=$(now)
    /usr/bin/time -f %M -o "$work/rss" "${BF[@]}" -d "$dir" -s -B "${pitch_dirs[@]}" 2>"$work/train-bogo.err" || rc=$?
    [ $rc = 0 ] || die "bogofilter -s failed (exit $rc): $(cat "$work/train-bogo.err")"
    rss1=$(rss_of "$work/rss")
    /usr/bin/time -f %M -o "$work/rss" "${BF[@]}" -d "$dir" -n -B "${ham_dirs[@]}" 2>"$work/train-bogo.err" || rc=$?
    t1=$(now)
    [ $rc = 0 ] || die "bogofilter -n failed (exit $rc): $(cat "$work/train-bogo.err")"
    # bogofilter skips an unreadable object with exit 0, so check what it counted (bogoutil is in its package).
    local counts
    counts=$(bogoutil -d "$dir/wordlist.db" 2>/dev/null | awk '$1 == ".MSG_COUNT" { print $2, $3 }')
    [ "$counts" = "$n_pitch $n_ham" ] || die "bogofilter learned '${counts:-nothing}' (spam ham), expected $n_pitch $n_ham"
    record train bogo "$r" "$(sub "$t0" "$t1")"
    record train-rss bogo "$r" "$(max "$rss1" "$(rss_of "$work/rss")")"
}

# Batch classification: one process over every folder, against that round's trained database.
batch_ours() {
    local r=$1 t0 t1 rc=0 lines
    t0=$(now)
    /usr/bin/time -f %M -o "$work/rss" "$PF" classify --db "$work/ours-$r.sqlite" "${pitch_dirs[@]}" "${ham_dirs[@]}" \
        >"$work/batch.out" 2>"$work/batch.err" || rc=$?
    t1=$(now)
    # Several messages: exit 0, or 3 if any message failed.
    [ $rc = 0 ] || die "pitchfilter classify failed (exit $rc): $(head -c 2000 "$work/batch.err")"
    # One verdict line per message, no more and no fewer, so a run that dropped messages cannot look fast.
    lines=$(grep -cE '^(pitch|ham|unsure) [0-9.]+ ' "$work/batch.out" || true)
    [ "$lines" = "$n_all" ] && [ "$(wc -l <"$work/batch.out")" = "$n_all" ] \
        || die "pitchfilter classify printed $lines verdict lines ($(wc -l <"$work/batch.out") in all) for $n_all messages"
    record batch ours "$r" "$(sub "$t0" "$t1")"
    record batch-rss ours "$r" "$(rss_of "$work/rss")"
}
batch_bogo() {
    local r=$1 t0 t1 rc=0 lines
    t0=$(now)
    # -t: without -t or -v, -B prints nothing at all; -t prints one short "S 1.000000" line per message,
    # which lets us count messages as we do for ours.
    /usr/bin/time -f %M -o "$work/rss" "${BF[@]}" -d "$work/bogo-$r" -t -B "${pitch_dirs[@]}" "${ham_dirs[@]}" \
        >"$work/batch.out" 2>"$work/batch.err" || rc=$?
    t1=$(now)
    # The exit status is the last message's verdict (0 spam, 1 ham, 2 unsure); 3 is an error.
    [ $rc -le 2 ] || die "bogofilter -B failed (exit $rc): $(head -c 2000 "$work/batch.err")"
    lines=$(grep -cE '^[SHU] [0-9.]+$' "$work/batch.out" || true)
    [ "$lines" = "$n_all" ] || die "bogofilter -B printed $lines verdict lines for $n_all messages: $(head -c 2000 "$work/batch.err")"
    record batch bogo "$r" "$(sub "$t0" "$t1")"
    record batch-rss bogo "$r" "$(rss_of "$work/rss")"
}

# Pipe mode: one process per message, stdin to stdout, as procmail runs a filter. Not under GNU time here
# (that would add a fork+exec per message to what we time); peak RSS comes from a separate pass below.
pipe_ours() {
    local r=$1 f t0 t1 rc
    : >"$work/pipe.err"
    t0=$(now)
    for f in "${pipe_files[@]}"; do
        rc=0; "$PF" filter --db "$work/ours-$r.sqlite" <"$f" >/dev/null 2>>"$work/pipe.err" || rc=$?
        [ $rc = 0 ] || die "pitchfilter filter failed on $f (exit $rc): $(cat "$work/pipe.err")"
    done
    t1=$(now)
    # filter never fails a message: on an internal error it passes the message through unchanged, exits 0 and
    # says why on stderr. A run that took that path measured nothing, so anything on stderr aborts.
    [ ! -s "$work/pipe.err" ] || die "pitchfilter filter reported problems (messages passed through unfiltered): $(head -c 2000 "$work/pipe.err")"
    record pipe ours "$r" "$(sub "$t0" "$t1")"
}
pipe_bogo() {
    local r=$1 f t0 t1 rc
    : >"$work/pipe.err"
    t0=$(now)
    for f in "${pipe_files[@]}"; do
        # -p passthrough; -e exit 0 for ham too, so any non-zero status is an error.
        rc=0; "${BF[@]}" -d "$work/bogo-$r" -p -e <"$f" >/dev/null 2>>"$work/pipe.err" || rc=$?
        [ $rc = 0 ] || die "bogofilter -p -e failed on $f (exit $rc): $(cat "$work/pipe.err")"
    done
    t1=$(now)
    [ ! -s "$work/pipe.err" ] || die "bogofilter -p reported problems: $(head -c 2000 "$work/pipe.err")"
    record pipe bogo "$r" "$(sub "$t0" "$t1")"
}

# ---------------------------------------------------------------------------------------------- rounds
# Load before and after, in the report: a build or anything else running alongside skews every figure.
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
note "messages: $n_pitch pitch + $n_ham ham = $n_all; pipe sample $pipe_messages; rounds $rounds"
for ((r = 1; r <= rounds; r++)); do
    # Odd rounds ours first, even rounds bogofilter first.
    if [ $((r % 2)) = 1 ]; then order=(ours bogo); else order=(bogo ours); fi
    note "round $r/$rounds (${order[0]} first)"
    for step in train batch pipe; do
        for prog in "${order[@]}"; do "${step}_$prog" "$r"; done
    done
    # The previous round's databases are no longer needed; the last round's serve the RSS pass.
    if [ "$r" -gt 1 ]; then rm -rf "$work/ours-$((r - 1)).sqlite"* "$work/bogo-$((r - 1))"; fi
done

# Pipe-mode peak RSS: the same files, each under GNU time, keeping the largest. Untimed, so GNU time's
# own fork+exec does not distort the throughput above. Every output is also checked for its verdict header.
note "pipe-mode peak RSS pass"
pipe_rss() {   # pipe_rss PROGRAM HEADER COMMAND...
    local prog=$1 header=$2 f rc peak=0; shift 2
    for f in "${pipe_files[@]}"; do
        rc=0; /usr/bin/time -f %M -o "$work/rss" "$@" <"$f" >"$work/pipe.out" 2>"$work/pipe.err" || rc=$?
        [ $rc = 0 ] && [ ! -s "$work/pipe.err" ] || die "$prog failed on $f (exit $rc): $(cat "$work/pipe.err")"
        grep -q "^$header:" "$work/pipe.out" || die "$prog wrote no $header field for $f"
        peak=$(max "$peak" "$(rss_of "$work/rss")")
    done
    record pipe-rss "$prog" 0 "$peak"
}
pipe_rss ours X-Pitch-Status "$PF" filter --db "$work/ours-$rounds.sqlite"
pipe_rss bogo X-Bogosity "${BF[@]}" -d "$work/bogo-$rounds" -p -e

# pitch-bench's in-process figures (ours only). Not fatal: the subcommand may not exist in every build.
bench_out=$work/bench.out
bench_rc=0
"$PB" tokenize "${pitch_dirs[@]}" "${ham_dirs[@]}" >"$bench_out" 2>"$work/bench.err" || bench_rc=$?

# ---------------------------------------------------------------------------------------------- report
cpu=$(awk -F': *' '/^(model name|Hardware|Processor)[ \t]*:/ { print $2; exit }' /proc/cpuinfo 2>/dev/null || true)
echo "# pitchfilter vs bogofilter"
echo
echo "- machine: $(nproc) cores, $(uname -m), ${cpu:-CPU model unknown}"
echo "- pitchfilter: $("$PF" --version 2>&1 | head -n 1) ($PF)"
echo "- bogofilter: $(bogofilter -V 2>&1 | head -n 1)"
echo "- messages: $n_pitch pitch + $n_ham ham = $n_all (${pitch_dirs[*]} | ${ham_dirs[*]}); pipe mode: $pipe_messages of them"
echo "- rounds: $rounds, programs interleaved, medians reported"
echo "- load average (1/5/15 min) before the rounds: $load_before; after: $(cut -d' ' -f1-3 /proc/loadavg)"
echo
python3 - "$results" "$n_all" "$pipe_messages" <<'PY'
import statistics, sys
path, n_all, n_pipe = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
data = {}
for line in open(path):
    measure, prog, rnd, value = line.split()
    data.setdefault((measure, prog), []).append((int(rnd), float(value)))
def med(measure, prog):
    return statistics.median(v for _, v in data[(measure, prog)])
rows = []
for label, measure, count in [("training msg/s", "train", n_all), ("batch classification msg/s", "batch", n_all),
                              ("pipe mode msg/s", "pipe", n_pipe)]:
    ours, bogo = count / med(measure, "ours"), count / med(measure, "bogo")
    rows.append((label, f"{ours:.0f}", f"{bogo:.0f}", f"{ours / bogo:.2f}"))
for label, measure in [("training peak RSS MB", "train-rss"), ("batch peak RSS MB", "batch-rss"),
                       ("pipe peak RSS MB", "pipe-rss")]:
    ours, bogo = med(measure, "ours") / 1024, med(measure, "bogo") / 1024   # GNU time %M is in KB
    rows.append((label, f"{ours:.1f}", f"{bogo:.1f}", f"{ours / bogo:.2f}"))
print("| measure | pitchfilter | bogofilter | ours/bogofilter |")
print("|---|---:|---:|---:|")
for row in rows:
    print("| " + " | ".join(row) + " |")
print()
print("Throughput: ours/bogofilter above 1 means pitchfilter is faster. Peak RSS: the ratio is also"
      " ours/bogofilter, and there below 1 means pitchfilter uses less memory.")
print("Training and batch RSS are the median of the rounds' peaks; pipe RSS is the largest over the pipe-mode"
      " files (a separate, untimed pass).")
print()
print("rounds: (seconds; training and batch over %d messages, pipe over %d)" % (n_all, n_pipe))
names = {"ours": "pitchfilter", "bogo": "bogofilter"}
for measure in ("train", "batch", "pipe"):
    for prog in ("ours", "bogo"):
        values = sorted(data[(measure, prog)])
        print(f"  {measure:<5} {names[prog]:<11} " + "  ".join(f"r{r}={v:.3f}" for r, v in values))
PY
echo
echo "## pitch-bench tokenize (pitchfilter, in-process)"
echo
cat "$bench_out"   # verbatim, also on failure: partial output may still say something
if [ $bench_rc != 0 ]; then
    echo "(pitch-bench tokenize failed with exit status $bench_rc, so there are no in-process figures.)"
    if [ -s "$work/bench.err" ]; then echo "(its standard error: $(head -n 3 "$work/bench.err" | tr '\n' ' '))"; fi
fi
