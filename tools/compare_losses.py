#!/usr/bin/env python3
"""Compares the per-step losses of two training runs' log.jsonl files (alexnet train --out DIR).

    tools/compare_losses.py runs/one/log.jsonl runs/two/log.jsonl [--tol 1e-4] [--summary]

Prints, for every global step both logs hold, the two losses, their absolute and relative difference
(relative to the first file's loss) and the largest of each so far; then the maxima and the step where
they occur. With --tol the exit status is 1 when the largest relative difference exceeds it. A
resumed run's log repeats the steps a killed attempt logged past its checkpoint: the later line wins.
A step's loss is logged with 9 significant digits, a float's full precision (logs of earlier versions:
7, which hides relative differences below ~5e-7).
Plain python3, no third-party modules.
"""
import argparse
import json
import sys


def step_losses(path):
    """{global step: loss} of the "step" lines of a log.jsonl."""
    losses = {}
    try:
        f = open(path, encoding="utf-8")
    except OSError as e:
        sys.exit(f"{path}: {e.strerror}")
    with f:
        for n, line in enumerate(f, 1):
            line = line.strip()
            if not line:
                continue
            try:
                rec = json.loads(line)
            except json.JSONDecodeError as e:
                sys.exit(f"{path}:{n}: not JSON ({e})")
            if rec.get("type") == "step":
                losses[int(rec["step"])] = float(rec["loss"])
    return losses


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("a", help="the reference run's log.jsonl (relative differences are to its losses)")
    ap.add_argument("b", help="the other run's log.jsonl")
    ap.add_argument("--tol", type=float, help="exit 1 when the largest relative difference exceeds this")
    ap.add_argument("--summary", action="store_true", help="only the maxima, not every step")
    args = ap.parse_args()

    a, b = step_losses(args.a), step_losses(args.b)
    steps = sorted(set(a) & set(b))
    if not steps:
        sys.exit(f"no step is in both {args.a} ({len(a)} steps) and {args.b} ({len(b)} steps)")
    only = sorted(set(a) ^ set(b))
    if only:
        print(f"note: {len(only)} steps are in one log only (first: {only[0]}); compared: the {len(steps)} in both")

    max_abs = max_rel = 0.0
    at_abs = at_rel = steps[0]
    if not args.summary:
        print(f"{'step':>6} {'loss A':>14} {'loss B':>14} {'abs diff':>10} {'rel diff':>10} {'max abs':>10} {'max rel':>10}")
    for s in steps:
        d = abs(b[s] - a[s])
        r = d / abs(a[s]) if a[s] != 0 else (0.0 if d == 0 else float("inf"))
        if d > max_abs:
            max_abs, at_abs = d, s
        if r > max_rel:
            max_rel, at_rel = r, s
        if not args.summary:
            print(f"{s:>6} {a[s]:>14.9g} {b[s]:>14.9g} {d:>10.3e} {r:>10.3e} {max_abs:>10.3e} {max_rel:>10.3e}")
    print(f"{len(steps)} steps ({steps[0]}-{steps[-1]}): max abs difference {max_abs:.3e} at step {at_abs}, "
          f"max rel difference {max_rel:.3e} at step {at_rel}")
    if args.tol is not None:
        ok = max_rel <= args.tol
        print(f"{'within' if ok else 'EXCEEDS'} the tolerance {args.tol:g} (relative)")
        return 0 if ok else 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
