#!/usr/bin/python3
"""The classify and filters commands end to end, as a user runs them (Python's standard library only):

  0. tools/plot.py on the run's log (the main job's last step): a PNG;
  1. `alexnet train` briefly on a folder of coloured PNGs (4 classes) with a non-default preprocessing
     (--resize 66 --norm mean; bad values of the augmentation options refused with status 2), `alexnet
     eval` on one held-out image per class: it takes the preprocessing from the checkpoint (so does
     classify: its --time header says so), and its confusion matrix gives each image's top-1;
  2. `alexnet classify --json` on the same images plus bad files (truncated, empty, not an image,
     missing): the same top-1 for every good image, class names from the checkpoint's metadata (the
     folder names), one error line per bad file, exit status 1; all good: exit status 0;
  3. a labels file with fewer lines than classes: exit status 1 and a message naming both counts;
  4. `alexnet filters`: a PNG whose header has the size the layout gives (alexnet-half, 48 kernels of
     11x11, scale 4, pad 2: 8 x 6 cells of 46 pixels, 370 x 278).
Exits 1 on any difference.

  cli_classify.py --exe build/alexnet --workdir /tmp/cli
"""
import argparse
import json
import os
import random
import re
import shutil
import struct
import subprocess
import sys
import zlib


def write_png(path, w, h, rgb):
    raw = b"".join(b"\x00" + bytes(rgb[y * w * 3:(y + 1) * w * 3]) for y in range(h))

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)) +
                chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


COLOURS = {"blue": (40, 60, 200), "green": (40, 190, 60), "red": (210, 40, 40), "yellow": (220, 210, 40)}


def picture(colour, rng, side=72):
    out = []
    stripe = rng.randrange(4, 12)
    for y in range(side):
        for x in range(side):
            s = 40 if (x + y) // stripe % 2 else -40
            out += [max(0, min(255, c + s + rng.randint(-30, 30))) for c in colour]
    return out


def run(cmd, expect=None):
    p = subprocess.run(cmd, capture_output=True, text=True)
    if expect is not None and p.returncode != expect:
        print(f"FAIL: {' '.join(cmd)} exited {p.returncode}, expected {expect}\n{p.stdout}\n{p.stderr}")
        sys.exit(1)
    return p


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--exe", required=True)
    ap.add_argument("--workdir", required=True)
    args = ap.parse_args()
    shutil.rmtree(args.workdir, ignore_errors=True)
    train, test, run_dir = (os.path.join(args.workdir, d) for d in ("train", "test", "run"))
    rng = random.Random(3)
    for root, per_class in ((train, 8), (test, 1)):
        for name, colour in COLOURS.items():
            os.makedirs(os.path.join(root, name))
            for i in range(per_class):
                write_png(os.path.join(root, name, f"{i}.png"), 72, 72, picture(colour, rng))
    exe = args.exe
    for cmd in ("classify", "filters"):
        run([exe, cmd, "--help"], 0)
    # preprocessing other than the default (base image 66, not 72; mean subtraction only): the
    # checkpoint records it, and eval and classify must both take it from there
    for bad_opt in (["--augment", "bogus"], ["--norm", "std"], ["--crop", "corner"], ["--resize", "62"],
                    ["--resize", "66x"], ["--pca-std", "-1"]):
        p = run([exe, "train", "--input-size", "63", "--data", train, "--out", run_dir] + bad_opt, 2)
        if bad_opt[0] not in p.stderr:
            print(f"FAIL: train {' '.join(bad_opt)}: the message does not name the option:\n{p.stderr}")
            return 1
    run([exe, "train", "--model", "alexnet-half", "--data", train, "--val-fraction", "0", "--max-steps", "16",
         "--epochs", "4", "--batch", "8", "--input-size", "63", "--lr", "0.02", "--resize", "66", "--norm", "mean",
         "--pca-std", "0", "--out", run_dir], 0)
    weights = os.path.join(run_dir, "last.safetensors")
    failures = 0

    # 0. the run's curves, as the main job plots them (its log opens with the run's recipe line)
    png = os.path.join(run_dir, "curves.png")
    plot = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tools", "plot.py")
    run([sys.executable, plot, os.path.join(run_dir, "log.jsonl")], 0)
    with open(png, "rb") as f:
        if f.read(8) != b"\x89PNG\r\n\x1a\n":
            print(f"FAIL: {png} is not a PNG")
            return 1

    # 1. eval: rows of the confusion matrix are the true classes (sorted folder names)
    ev = run([exe, "eval", "--weights", weights, "--data", test], 0).stdout
    if "input 63 from 66, mean)" not in ev:
        print(f"FAIL: eval does not use the checkpoint's preprocessing (base 66, mean):\n{ev}")
        return 1
    names = sorted(COLOURS)
    eval_top1 = {}
    for line in ev.splitlines():
        m = re.match(r"\s*(\d+) (\S+)\s+((?:\d+\s+)+)\s*[\d.]+%$", line)
        if m:
            counts = [int(v) for v in m.group(3).split()]
            eval_top1[names[int(m.group(1))]] = counts.index(1)
    if len(eval_top1) != len(names):
        print(f"FAIL: cannot read eval's confusion matrix:\n{ev}")
        return 1

    # 2. classify the same images, with bad files among them
    good = [os.path.join(test, n, "0.png") for n in names]
    bad = {"truncated": os.path.join(args.workdir, "truncated.png"), "empty": os.path.join(args.workdir, "empty.png"),
           "text": os.path.join(args.workdir, "text.jpg"), "missing": os.path.join(args.workdir, "missing.png")}
    with open(good[0], "rb") as f:
        data = f.read()
    with open(bad["truncated"], "wb") as f:
        f.write(data[:len(data) // 2])
    open(bad["empty"], "wb").close()
    with open(bad["text"], "w") as f:
        f.write("not an image\n")
    files = [good[0], bad["truncated"], good[1], bad["empty"], good[2], bad["text"], good[3], bad["missing"]]
    p = run([exe, "classify", "--weights", weights, "--json", "--batch", "3", "--top", "2"] + files, 1)
    rows = [json.loads(line) for line in p.stdout.splitlines()]
    if [r["file"] for r in rows] != files:
        print(f"FAIL: results are not one per file in order:\n{p.stdout}")
        return 1
    for r in rows:
        if r["file"] in bad.values():
            ok = "error" in r and r["file"] in r["error"] and "top" not in r
        else:
            true = os.path.basename(os.path.dirname(r["file"]))
            top = r.get("top", [{}])
            ok = top[0].get("class") == eval_top1[true] and top[0].get("name") == names[eval_top1[true]]
        print(f"{'ok  ' if ok else 'FAIL'} {json.dumps(r)}")
        failures += not ok
    if "4 of 8 images could not be classified" not in p.stderr:
        print(f"FAIL: no summary of the failures on stderr:\n{p.stderr}")
        failures += 1
    p = run([exe, "classify", "--weights", weights, "--time", good[0]], 0)
    if "input 63 from 66, mean," not in p.stderr:
        print(f"FAIL: classify does not use the checkpoint's preprocessing (base 66, mean):\n{p.stderr}")
        failures += 1
    p = run([exe, "classify", "--weights", weights, "--crop", "ten"] + good, 0)
    print(p.stdout.strip())
    distinct = len(set(eval_top1.values()))
    print(f"eval and classify agree on {len(good)} images; {distinct} distinct predictions")

    # 3. a labels file shorter than the classes
    short = os.path.join(args.workdir, "short.txt")
    with open(short, "w") as f:
        f.write("a\nb\n")
    p = run([exe, "classify", "--weights", weights, "--labels", short, good[0]], 1)
    if "has 2 lines" not in p.stderr or "4 classes" not in p.stderr:
        print(f"FAIL: the short labels file's message does not name both counts:\n{p.stderr}")
        failures += 1
    else:
        print(p.stderr.strip())

    # 4. filters
    png = os.path.join(args.workdir, "conv1.png")
    run([exe, "filters", "--weights", weights, "-o", png], 0)
    with open(png, "rb") as f:
        head = f.read(24)
    w, h = struct.unpack(">II", head[16:24])
    print(f"filters: {w}x{h}")
    if head[:8] != b"\x89PNG\r\n\x1a\n" or (w, h) != (370, 278):
        print("FAIL: the filters image is not a 370x278 PNG")
        failures += 1
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
