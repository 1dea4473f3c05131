#!/usr/bin/python3
"""Compares this project's GEMMs between builds or tuning files on the exact GEMM shapes of a model's
training step: each side is `alexnet tune --report` (one run per shape), the sides alternate round by
round, and each shape keeps its best time over the rounds. Prints GFLOP/s per shape and side, and the
step's GEMM time per operation (NN, NT, TN) weighted by the shapes' counts. On a machine whose speed
drifts, this resolves changes of a few percent that whole steps do not.

  tools/gemm_ab.py --model alexnet-tv old/build/alexnet build/alexnet
  tools/gemm_ab.py --model alexnet-half build/alexnet:before.txt build/alexnet:after.txt

A side is EXE or EXE:TUNING_FILE (the file is passed as ALEXNET_TUNING_FILE).
"""
import argparse
import json
import os
import subprocess
import sys


def report(side, model, batch):
    exe, _, tuning = side.partition(":")
    env = dict(os.environ)
    if tuning:
        env["ALEXNET_TUNING_FILE"] = tuning
    p = subprocess.run([exe, "tune", "--report", "--model", model, "--batch", str(batch)], env=env,
                       capture_output=True, text=True)
    if p.returncode != 0:
        sys.exit(f"gemm_ab: {exe} tune --report failed ({p.returncode}): {p.stderr.strip()}")
    return [json.loads(line) for line in p.stdout.splitlines()]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("sides", nargs="+", metavar="EXE[:TUNING_FILE]")
    ap.add_argument("--model", default="alexnet-half")
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--rounds", type=int, default=3, help="rounds, each side once per round (default 3)")
    a = ap.parse_args()
    if a.rounds < 1:
        ap.error("--rounds must be at least 1")
    best = {}  # (side index, op, m, n, k) -> (seconds, count)
    for r in range(a.rounds):
        for i, side in enumerate(a.sides):
            for s in report(side, a.model, a.batch):
                key = (i, "NT"[s["trans_a"]] + "NT"[s["trans_b"]], s["m"], s["n"], s["k"])
                if key not in best or s["seconds"] < best[key][0]:
                    best[key] = (s["seconds"], s["count"])
        print(f"round {r + 1}/{a.rounds} done", file=sys.stderr)
    for i, side in enumerate(a.sides):
        print(f"side {i}: {side}")
    print(f"{'shape (op m x n x k)':28} {'count':>5} " + " ".join(f"{'side ' + str(i) + ' GF/s':>12}"
                                                            for i in range(len(a.sides))))
    for shape in sorted({k[1:] for k in best}):
        op, m, n, k = shape
        count = max(best[(i,) + shape][1] for i in range(len(a.sides)) if (i,) + shape in best)
        if not count:
            continue  # timed by the tuner (another slice width), not part of the step
        cells = [f"{2 * m * n * k / best[(i,) + shape][0] / 1e9:12.1f}" if (i,) + shape in best else f"{'-':>12}"
                 for i in range(len(a.sides))]
        print(f"{op} {m}x{n}x{k}".ljust(28), f"{count:5d}", " ".join(cells))
    for i in range(len(a.sides)):
        per_op = {}
        for (j, op, *_), (t, c) in best.items():
            if j == i:
                per_op[op] = per_op.get(op, 0.0) + t * c
        ops = ", ".join(f"{op} {ms * 1e3:.1f}" for op, ms in sorted(per_op.items()))
        print(f"side {i}: the step's GEMMs {sum(per_op.values()) * 1e3:.1f} ms ({ops} ms)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
