#!/usr/bin/env bash
# Trains on half of some sample sets and classifies the other half, both ways round: issue 7's "after training on
# one half" measure, through the real `train` and `classify` (the trained ham's senders become contacts, which
# `eval` has only with --replay).
#   Scripts/half-train.sh [--ham DIR]... [--train-pitches K] [--train-ham K] [--keep-fields LIST] SET...
#   (sets under samples/, e.g. dev blind heldout; default: unseen)
# Each set's pitch/ and ham/ files are pooled in byte-wise order of set and name; alternate files go to the two
# halves. With --ham, the ham comes from those folders of message files instead (the SpamAssassin corpus's ham, say:
# a mailbox with far more ham than pitches). --train-pitches K (--train-ham K) trains only the first K pitches (ham)
# of each set's (or folder's) half, and still classifies the whole other half: a lopsided training, as a
# user who has filed a few pitches (or the service, which learns ham only from releases) has. --keep-fields
# subject,from,to (a comma-separated list of field names) trains and classifies copies with only those header fields
# (Scripts/keep-fields.py): mail exported or wrapped with few fields, as a test corpus may be. Prints pitches and
# ham flagged per half and in all, and the messages missed or wrongly flagged.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${PITCHFILTER:-.build/release/pitchfilter}
ham_folders=()
train_limit_pitch=""; train_limit_ham=""; keep_fields=""
while [ $# -gt 0 ]; do
    case "$1" in
        --ham) ham_folders+=("$(cd "$2" && pwd)") ;;
        --train-pitches|--train-ham)
            if ! [[ "${2:-}" =~ ^[0-9]+$ ]]; then echo "half-train.sh: $1 takes a number of messages" >&2; exit 2; fi
            if [ "$1" = --train-pitches ]; then train_limit_pitch=$2; else train_limit_ham=$2; fi ;;
        --keep-fields)
            if ! [[ "${2:-}" =~ ^[A-Za-z0-9-]+(,[A-Za-z0-9-]+)*$ ]]; then
                echo "half-train.sh: --keep-fields takes field names separated by commas" >&2; exit 2
            fi
            keep_fields=$2 ;;
        --*) echo "half-train.sh: unknown option $1" >&2; exit 2 ;;
        *) break ;;
    esac
    shift 2
done
sets=("${@:-unseen}")
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
for cls in pitch ham; do
    folders=()
    for set in "${sets[@]}"; do folders+=("$PWD/samples/$set/$cls"); done
    if [ "$cls" = ham ] && [ ${#ham_folders[@]} -gt 0 ]; then folders=("${ham_folders[@]}"); fi
    i=0
    for folder in "${folders[@]}"; do
        # Named after the set (or the folder and its parent), so that files of two folders never collide.
        prefix=$(basename "$(dirname "$folder")")
        [ "$cls" = ham ] && [ ${#ham_folders[@]} -gt 0 ] && prefix=$prefix-$(basename "$folder")
        limit=$train_limit_pitch; [ "$cls" = ham ] && limit=$train_limit_ham
        taken=(0 0)
        for file in $(LC_ALL=C ls "$folder"); do
            half=$((i % 2))
            mkdir -p "$work/$half/$cls" "$work/train-$half/$cls"
            ln -s "$folder/$file" "$work/$half/$cls/$prefix-$file"
            # Trained: every file of the half, or the first K of this folder's.
            if [ -z "$limit" ] || [ "${taken[$half]}" -lt "$limit" ]; then
                ln -s "$folder/$file" "$work/train-$half/$cls/$prefix-$file"
                taken[$half]=$((taken[half] + 1))
            fi
            i=$((i + 1))
        done
    done
done
if [ -n "$keep_fields" ]; then python3 Scripts/keep-fields.py "$work" "$keep_fields"; fi
total_pitch=0; total_ham=0; flagged_pitch=0; flagged_ham=0
for half in 0 1; do
    other=$((1 - half))
    db="$work/db-$half.sqlite"
    # A class limited to K = 0 (or a half with none) is left out; without a limit, an empty half fails `train`.
    train_args=()
    for cls in pitch ham; do
        limit=$train_limit_pitch; [ "$cls" = ham ] && limit=$train_limit_ham
        if [ -z "$limit" ] || [ -n "$(ls -A "$work/train-$half/$cls" 2>/dev/null)" ]; then
            train_args+=("--$cls" "$work/train-$half/$cls")
        fi
    done
    if [ ${#train_args[@]} -gt 0 ]; then "$bin" train --db "$db" "${train_args[@]}" >/dev/null; fi
    "$bin" classify --db "$db" "$work/$other/pitch" > "$work/pitch-$other.txt"
    "$bin" classify --db "$db" "$work/$other/ham" > "$work/ham-$other.txt"
    p=$(grep -c '^pitch ' "$work/pitch-$other.txt" || true); pn=$(wc -l < "$work/pitch-$other.txt")
    h=$(grep -c '^pitch ' "$work/ham-$other.txt" || true); hn=$(wc -l < "$work/ham-$other.txt")
    echo "trained on half $half: pitches flagged $p / $pn, ham flagged $h / $hn"
    grep -v '^pitch ' "$work/pitch-$other.txt" | sed "s#$work/$other/##; s#^#  missed: #" || true
    grep '^pitch ' "$work/ham-$other.txt" | sed "s#$work/$other/##; s#^#  flagged ham: #" || true
    flagged_pitch=$((flagged_pitch + p)); total_pitch=$((total_pitch + pn))
    flagged_ham=$((flagged_ham + h)); total_ham=$((total_ham + hn))
done
echo "in all: pitches flagged $flagged_pitch / $total_pitch, ham flagged $flagged_ham / $total_ham"
