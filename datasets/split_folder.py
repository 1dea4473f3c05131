#!/usr/bin/env python3
"""Split a folder-per-class image tree into train/ and val/ with a fixed seed.

    datasets/split_folder.py SRC DST [--val-fraction 0.2] [--seed 123] [--mode copy|link|symlink]

SRC/<class>/.../<image> becomes DST/train/<class>/<image> and DST/val/<class>/<image>. Every class
keeps the same fraction in val (at least one image of a class that has two or more; never all of
them), chosen by a shuffle seeded with (seed, class name), so the split is the same on every machine
and adding a class does not move the others' images. Only image files (.jpg .jpeg .png .bmp .gif,
any case) are taken; hidden files and anything else are left out. Files in subfolders of a class are
flattened into the class folder ('/' in the relative path becomes '__').

The seed's tutorial (tf.keras image_dataset_from_directory, validation_split=0.2, seed=123) draws its
own, unstratified selection; this script gives the same proportions, not the same files.

Standard library only. Exit status 0 on success, 1 on an error (message on stderr).
"""
import argparse
import os
import random
import shutil
import sys

IMAGE_EXTENSIONS = {".jpg", ".jpeg", ".png", ".bmp", ".gif"}


def class_files(class_dir):
    """Image files under class_dir, relative to it, sorted (byte order, as the C loader sorts)."""
    found = []
    for root, dirs, files in os.walk(class_dir, followlinks=True):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in files:
            if name.startswith(".") or os.path.splitext(name)[1].lower() not in IMAGE_EXTENSIONS:
                continue
            found.append(os.path.relpath(os.path.join(root, name), class_dir))
    return sorted(found, key=lambda p: p.encode())


def val_count(n, fraction):
    take = int(fraction * n + 0.5)
    if n >= 2 and take < 1:
        take = 1
    return min(take, max(n - 1, 0))


def place(src, dst, mode):
    os.makedirs(os.path.dirname(dst), exist_ok=True)
    if mode == "copy":
        shutil.copy2(src, dst)
    elif mode == "link":
        os.link(src, dst)
    else:
        os.symlink(os.path.abspath(src), dst)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("src", help="folder-per-class tree: SRC/<class>/<image>")
    ap.add_argument("dst", help="output: DST/train/<class>/ and DST/val/<class>/ (must not exist or be empty)")
    ap.add_argument("--val-fraction", type=float, default=0.2, help="share of every class in val (default 0.2)")
    ap.add_argument("--seed", type=int, default=123, help="seed of the selection (default 123, the tutorial's)")
    ap.add_argument("--mode", choices=("copy", "link", "symlink"), default="copy",
                    help="copy the files (default), hard-link or symlink them")
    args = ap.parse_args()

    if not 0.0 < args.val_fraction < 1.0:
        sys.exit(f"split_folder: --val-fraction {args.val_fraction} is not in (0, 1)")
    if not os.path.isdir(args.src):
        sys.exit(f"split_folder: {args.src}: not a directory")
    if os.path.exists(args.dst) and os.listdir(args.dst):
        sys.exit(f"split_folder: {args.dst} exists and is not empty")
    classes = sorted((d for d in os.listdir(args.src)
                      if not d.startswith(".") and os.path.isdir(os.path.join(args.src, d))),
                     key=lambda d: d.encode())
    if not classes:
        sys.exit(f"split_folder: {args.src}: no class folders (the layout is {args.src}/<class>/<image>.jpg)")

    totals = [0, 0]
    for name in classes:
        files = class_files(os.path.join(args.src, name))
        if not files:
            sys.exit(f"split_folder: {os.path.join(args.src, name)}: class '{name}' has no image files")
        order = list(files)
        random.Random(f"{args.seed}:{name}").shuffle(order)
        val = set(order[:val_count(len(files), args.val_fraction)])
        for rel in files:
            part = "val" if rel in val else "train"
            place(os.path.join(args.src, name, rel),
                  os.path.join(args.dst, part, name, rel.replace(os.sep, "__")), args.mode)
        totals[0] += len(files) - len(val)
        totals[1] += len(val)
        print(f"{name:>20}: {len(files) - len(val):6d} train {len(val):6d} val")
    print(f"{'all':>20}: {totals[0]:6d} train {totals[1]:6d} val -> {args.dst}/train, {args.dst}/val")


if __name__ == "__main__":
    main()
