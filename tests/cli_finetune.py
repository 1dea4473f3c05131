#!/usr/bin/python3
"""Fine-tuning learns faster than training from scratch, through the command line (alexnet-half, 63 px,
Python's standard library only):

  1. pretrain: `alexnet train` on a folder dataset of 4 classes (striped pictures of 4 colours);
  2. fine-tune on another folder dataset of 5 other colours (so the last layer has another class count
     and starts fresh) for a few steps, the same seed, lr, batch and steps: from scratch, from `--init`
     the pretrained checkpoint, and (with --freeze, not in CI: it adds a run) from `--init` with
     `--freeze-features`;
  3. each run from --init must beat the run from scratch by at least 10 points of validation top-1 and
     0.1 of training loss (the mean of its last 4 steps); the figures are printed.

Exits 1 on any difference.

  cli_finetune.py --exe build/alexnet --workdir /tmp/cf
"""
import argparse
import json
import os
import random
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from cli_classify import picture, write_png  # noqa: E402

PRETRAIN = {"blue": (40, 60, 200), "green": (40, 190, 60), "red": (210, 40, 40), "yellow": (220, 210, 40)}
FINETUNE = {"cyan": (40, 200, 200), "magenta": (200, 40, 200), "orange": (230, 130, 30),
            "purple": (120, 40, 160), "grey": (128, 128, 128)}
MARGIN_TOP1, MARGIN_LOSS = 0.10, 0.1


def make_set(root, colours, per_class, rng):
    for name, colour in colours.items():
        os.makedirs(os.path.join(root, name), exist_ok=True)
        for i in range(per_class):
            write_png(os.path.join(root, name, f"{i}.png"), 72, 72, picture(colour, rng))
    return root


def train(args, out, data, val, steps, extra):
    cmd = [args.exe, "train", "--model", "alexnet-half", "--data", data, "--input-size", "63", "--batch", "16",
           "--max-steps", str(steps), "--epochs", "1000", "--lr", "0.01", "--lr-schedule", "none", "--seed", "3",
           "--checkpoint-every", "0", "--out", out] + (["--val", val] if val else ["--val-fraction", "0"]) + extra
    p = subprocess.run(cmd, capture_output=True, text=True)
    if p.returncode != 0:
        print(f"FAIL: {' '.join(cmd)} exited {p.returncode}\n{p.stdout}\n{p.stderr}")
        sys.exit(1)
    losses, top1 = [], None
    with open(os.path.join(out, "log.jsonl")) as f:
        for line in f:
            r = json.loads(line)
            if r["type"] == "step":
                losses.append(r["loss"])
            if r["type"] == "epoch":
                top1 = r["val_top1"]
    return p.stdout, sum(losses[-4:]) / 4, top1  # the last 4 steps: where the runs have got to


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--exe", required=True)
    ap.add_argument("--workdir", required=True)
    ap.add_argument("--pretrain-steps", type=int, default=30)
    ap.add_argument("--steps", type=int, default=12)
    ap.add_argument("--freeze", action="store_true", help="also fine-tune with --freeze-features")
    args = ap.parse_args()
    w = args.workdir
    rng = random.Random(2)
    pre = make_set(os.path.join(w, "pretrain"), PRETRAIN, 16, rng)
    data = make_set(os.path.join(w, "finetune"), FINETUNE, 16, rng)
    val = make_set(os.path.join(w, "finetune-val"), FINETUNE, 8, rng)
    _, pre_loss, _ = train(args, os.path.join(w, "pre"), pre, None, args.pretrain_steps, [])
    init = os.path.join(w, "pre", "last.safetensors")
    print(f"pretrained {args.pretrain_steps} steps on {len(PRETRAIN)} colours: training loss {pre_loss:.3f} (last 4 "
          "steps)")
    runs = {}
    ways = [("scratch", []), ("init", ["--init", init])]
    if args.freeze:
        ways.append(("init+freeze", ["--init", init, "--freeze-features"]))
    for name, extra in ways:
        out, loss, top1 = train(args, os.path.join(w, name), data, val, args.steps, extra)
        if name != "scratch" and "init: 14 of 16 tensors loaded" not in out:
            print(f"FAIL: {name}: the start does not list 14 of 16 tensors loaded\n{out}")
            return 1
        runs[name] = (loss, top1)
        print(f"{name:12s} {args.steps} steps on {len(FINETUNE)} other colours: training loss {loss:.3f} (last 4 steps), "
              f"validation top-1 {100 * top1:.1f}%")
    ok = True
    for name in runs:
        if name == "scratch":
            continue
        d_top1, d_loss = runs[name][1] - runs["scratch"][1], runs["scratch"][0] - runs[name][0]
        better = d_top1 >= MARGIN_TOP1 and d_loss >= MARGIN_LOSS
        print(f"  {'ok  ' if better else 'FAIL'} {name} beats scratch by {100 * d_top1:.1f} points of top-1 (at "
              f"least {100 * MARGIN_TOP1:.0f}) and {d_loss:.3f} of loss (at least {MARGIN_LOSS})")
        ok = ok and better
    print("cli_finetune:", "PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
