#!/usr/bin/env python3
"""What each signal adds: `pitchfilter eval --replay` with and without each signal, as a Markdown table.

Issue 7's ablation. Two ways of scoring a held-out set (it must not be in samples/corpus):

- young: the set cross-validated in two folds, each fold scored as the filter would after training the other
  (the starter model's counts added, the settings of that stage), the set's own sent mail replayed with it;
- starter: the starter model's own training (samples/corpus and its sent mail) against the set, built and scored as
  the embedded model is (`eval --as-starter`: no local tokens, the starter's settings): what the embedded model
  makes of these signals out of the box.

Each row leaves one signal out; "none" is the full filter. Columns: pitches flagged and unsure, ham flagged and
unsure, 1-AUC in %, and each class's mean score (which still moves when no verdict does).

    Scripts/ablation.py SET_DIR [--bin PATH] [--mode young|starter|both]

SET_DIR holds pitch/, ham/ and optionally sent/.
"""
import argparse, json, os, subprocess, sys

SIGNALS = ["merge", "thread", "optout", "bump", "relationship", "template"]


def run(binary, arguments):
    result = subprocess.run([binary, "eval", "--json", "--replay"] + arguments, capture_output=True, text=True)
    if result.returncode != 0:
        sys.exit(f"pitchfilter eval failed ({result.returncode}): {result.stderr.strip()}")
    return json.loads(result.stdout)


def row(name, report):
    p, h = report["pitch"], report["ham"]
    return (f"| {name} | {p['pitch']} | {p['unsure']} | {h['pitch']} | {h['unsure']} | "
            f"{report['one_minus_auc_percent']:.4f} | {report['mean_score_pitch']:.4f} | {report['mean_score_ham']:.4f} |")


def table(title, binary, arguments):
    print(f"\n{title}\n")
    print("| left out | pitches flagged | pitches unsure | ham flagged | ham unsure | 1-AUC % | mean pitch | mean ham |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for signal in [None] + SIGNALS:
        extra = [] if signal is None else ["--without-signal", signal]
        print(row(signal or "none", run(binary, arguments + extra)), flush=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("set")
    parser.add_argument("--bin", default=".build/release/pitchfilter")
    parser.add_argument("--mode", choices=["young", "starter", "both"], default="both")
    options = parser.parse_args()
    root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
    corpus = os.path.join(root, "samples", "corpus")
    pitch, ham, sent = (os.path.join(options.set, part) for part in ("pitch", "ham", "sent"))
    own_sent = ["--sent", sent] if os.path.isdir(sent) else []
    total = f"{len(os.listdir(pitch))} pitches + {len(os.listdir(ham))} ham"
    if options.mode in ("young", "both"):
        table(f"Young database: {options.set} ({total}) in 2 folds, the starter model added",
              options.bin, ["--folds", "2", "--pitch", pitch, "--ham", ham] + own_sent)
    if options.mode in ("starter", "both"):
        table(f"Starter: samples/corpus trained as the starter model is, {options.set} ({total}) scored with its settings",
              options.bin, ["--as-starter", "--pitch", os.path.join(corpus, "pitch"),
                            "--ham", os.path.join(corpus, "ham"), "--sent", os.path.join(corpus, "sent"),
                            "--test-pitch", pitch, "--test-ham", ham] + own_sent)


if __name__ == "__main__":
    main()
