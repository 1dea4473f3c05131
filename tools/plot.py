#!/usr/bin/python3
"""Turns an `alexnet train` log (OUT/log.jsonl) into a PNG of the loss and accuracy curves.

usage: /usr/bin/python3 tools/plot.py RUN/log.jsonl [-o curves.png] [--smooth N]

Left: the training loss of every step (faint), its moving average over N steps and the mean loss of
each epoch. Right: validation top-1 and top-5 after each epoch (and every --val-every steps). Default
output: curves.png next to the log. Needs matplotlib (Debian: python3-matplotlib; use /usr/bin/python3
when another python is first on PATH).
"""
import argparse
import json
import os
import sys


def read_log(path):
    steps, epochs, vals = [], [], []
    with open(path) as f:
        for n, line in enumerate(f, 1):
            line = line.strip()
            if not line:
                continue
            try:
                rec = json.loads(line)
            except json.JSONDecodeError as e:
                # a run killed mid-write leaves at most one partial last line
                print(f"{path}:{n}: skipped a malformed line ({e})", file=sys.stderr)
                continue
            kind = rec.get("type")
            if kind in ("step", "val", "epoch"):  # the run, resume and test lines carry no curve point
                (steps if kind == "step" else vals if kind == "val" else epochs).append(rec)
    # a resumed run appends steps it may already have logged: keep the latest record of each step
    by_step = {r["step"]: r for r in steps}
    by_epoch = {r["step"]: r for r in epochs}
    by_val = {r["step"]: r for r in vals + epochs if r.get("val_top1", -1) >= 0}
    return ([by_step[k] for k in sorted(by_step)], [by_epoch[k] for k in sorted(by_epoch)],
            [by_val[k] for k in sorted(by_val)])


def moving_average(values, n):
    out, total = [], 0.0
    for i, v in enumerate(values):
        total += v
        if i >= n:
            total -= values[i - n]
        out.append(total / min(i + 1, n))
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("log", help="log.jsonl written by alexnet train")
    ap.add_argument("-o", "--output", help="PNG to write (default: curves.png beside the log)")
    ap.add_argument("--smooth", type=int, default=20, help="moving-average window in steps (default 20)")
    args = ap.parse_args()
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        sys.exit("plot.py: matplotlib is missing (apt install python3-matplotlib; run with /usr/bin/python3)")
    try:
        steps, epochs, val = read_log(args.log)
    except OSError as e:
        sys.exit(f"plot.py: {e}")
    if not steps:
        sys.exit(f"plot.py: {args.log}: no step records")
    out = args.output or os.path.join(os.path.dirname(os.path.abspath(args.log)), "curves.png")

    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(12, 4.5), sharex=True)
    x = [r["step"] for r in steps]
    loss = [r["loss"] for r in steps]
    ax_loss.plot(x, loss, color="tab:blue", alpha=0.25, linewidth=0.8, label="step loss")
    ax_loss.plot(x, moving_average(loss, max(1, args.smooth)), color="tab:blue", label=f"mean of {args.smooth} steps")
    if epochs:
        ax_loss.plot([r["step"] for r in epochs], [r["loss"] for r in epochs], "o-", color="tab:orange",
                     label="epoch mean")
    ax_loss.set_xlabel("step")
    ax_loss.set_ylabel("cross-entropy loss")
    ax_loss.set_title("training loss")
    ax_loss.grid(alpha=0.3)
    ax_loss.legend()

    if val:
        vx = [r["step"] for r in val]
        ax_acc.plot(vx, [100 * r["val_top1"] for r in val], "o-", label="validation top-1")
        ax_acc.plot(vx, [100 * r["val_top5"] for r in val], "s--", label="validation top-5")
        for r in val:
            if r.get("best"):
                ax_acc.annotate(f"{100 * r['val_top1']:.1f}", (r["step"], 100 * r["val_top1"]),
                                textcoords="offset points", xytext=(0, 6), ha="center", fontsize=8)
        ax_acc.legend()
    else:
        ax_acc.text(0.5, 0.5, "no validation records", ha="center", va="center", transform=ax_acc.transAxes)
    ax_acc.set_xlabel("step")
    ax_acc.set_ylabel("accuracy (%)")
    ax_acc.set_ylim(0, 100)
    ax_acc.set_title("validation accuracy")
    ax_acc.grid(alpha=0.3)
    fig.suptitle(os.path.basename(os.path.dirname(os.path.abspath(args.log))) or args.log)
    fig.tight_layout()
    fig.savefig(out, dpi=120)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
