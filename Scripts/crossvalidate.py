#!/usr/bin/env python3
"""k-fold cross-validation of pitchfilter through its command line, as ../shared/DESIGN.md defines it.

Per class folder, file names are sorted byte-wise and the message at 0-based index i is in fold i mod k. For
each fold a fresh database is trained (`pitchfilter train`) on the other folds and the fold is classified
(`pitchfilter classify --json`). Prints the summed confusion counts and 1-AUC in % from the scores.

    Scripts/crossvalidate.py --pitch DIR [DIR ...] --ham DIR [DIR ...] [--folds 5] [--bin PATH]
"""
import argparse, json, os, subprocess, sys, tempfile


def folds_of(folders, k):
    folds = [[] for _ in range(k)]
    for folder in folders:
        names = sorted(os.listdir(folder), key=lambda n: n.encode())
        names = [n for n in names if not n.startswith('.') and os.path.isfile(os.path.join(folder, n))]
        for i, name in enumerate(names):
            folds[i % k].append(os.path.join(folder, name))
    return folds


def classify(binary, db, paths):
    out = subprocess.run([binary, 'classify', '--db', db, '--json'] + paths, capture_output=True, check=False)
    if out.returncode not in (0, 1, 2):
        sys.exit(f'classify failed ({out.returncode}): {out.stderr.decode()}')
    results = [json.loads(line) for line in out.stdout.splitlines()]
    if len(results) != len(paths):
        sys.exit(f'classify returned {len(results)} results for {len(paths)} messages')
    return results


def one_minus_auc(pitch_scores, ham_scores):
    """P(a ham scores at least as high as a pitch), ties counted half, in %."""
    ranked = sorted([(s, 1) for s in pitch_scores] + [(s, 0) for s in ham_scores])
    wrong, ham_below, i = 0.0, 0, 0
    while i < len(ranked):
        j = i
        while j < len(ranked) and ranked[j][0] == ranked[i][0]:
            j += 1
        pitch_here = sum(1 for _, c in ranked[i:j] if c == 1)
        ham_here = (j - i) - pitch_here
        # pitches ranked above ham are right; ham at the same score counts half
        wrong += pitch_here * (len(ham_scores) - ham_below - ham_here) + 0.5 * pitch_here * ham_here
        ham_below += ham_here
        i = j
    return 100.0 * wrong / (len(pitch_scores) * len(ham_scores))


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--pitch', nargs='+', required=True)
    parser.add_argument('--ham', nargs='+', required=True)
    parser.add_argument('--folds', type=int, default=5)
    parser.add_argument('--bin', default=os.path.join(os.path.dirname(__file__), '..', '.build', 'release', 'pitchfilter'))
    args = parser.parse_args()
    k = args.folds
    pitch_folds, ham_folds = folds_of(args.pitch, k), folds_of(args.ham, k)
    counts = {('pitch', v): 0 for v in ('pitch', 'unsure', 'ham')}
    counts.update({('ham', v): 0 for v in ('pitch', 'unsure', 'ham')})
    scores = {'pitch': [], 'ham': []}
    with tempfile.TemporaryDirectory() as work:
        for fold in range(k):
            db = os.path.join(work, f'fold{fold}.sqlite')
            train_pitch = [p for f in range(k) if f != fold for p in pitch_folds[f]]
            train_ham = [p for f in range(k) if f != fold for p in ham_folds[f]]
            subprocess.run([args.bin, 'train', '--db', db, '--pitch'] + train_pitch + ['--ham'] + train_ham,
                           check=True, capture_output=True)
            for truth, paths in (('pitch', pitch_folds[fold]), ('ham', ham_folds[fold])):
                for result in classify(args.bin, db, paths):
                    counts[(truth, result['verdict'])] += 1
                    scores[truth].append(result['score'])
    n_pitch, n_ham = len(scores['pitch']), len(scores['ham'])
    print(f'{k}-fold cross-validation: {n_pitch} pitch, {n_ham} ham')
    print(f'                 called pitch  unsure    ham')
    for truth, n in (('pitch', n_pitch), ('ham', n_ham)):
        print(f'  {truth:6} ({n:5})  {counts[(truth, "pitch")]:12} {counts[(truth, "unsure")]:7} {counts[(truth, "ham")]:6}')
    print(f'ham called pitch (false positives): {counts[("ham", "pitch")]} of {n_ham}')
    print(f'pitch called ham (false negatives): {counts[("pitch", "ham")]} of {n_pitch}')
    print(f'pitch left unsure: {counts[("pitch", "unsure")]}; ham left unsure: {counts[("ham", "unsure")]}')
    print(f'1-AUC: {one_minus_auc(scores["pitch"], scores["ham"]):.4f} %')


if __name__ == '__main__':
    main()
