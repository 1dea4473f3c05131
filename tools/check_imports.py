#!/usr/bin/env python3
"""The import rule of docs/ARCHITECTURE.md, checked: each folder of src/ (and each public header) may
include only its own folder's headers and those of the folders below it, and no two files include each
other. Prints every violation and the folder graph (--graph); exits 1 on a violation.

Layers, bottom first: runtime <- data, io, gemm <- layers <- model <- train, infer <- cli."""
import argparse
import os
import re
import sys

# what each folder may import besides itself
ALLOWED = {
    "runtime": set(),
    "data": {"runtime"},
    "io": {"runtime"},
    "gemm": {"runtime"},
    "layers": {"runtime", "gemm"},
    "model": {"runtime", "gemm", "layers", "io"},
    "train": {"runtime", "gemm", "layers", "model", "data", "io"},
    "infer": {"runtime", "gemm", "layers", "model", "data", "io"},
    "cli": {"runtime", "gemm", "layers", "model", "data", "io", "train", "infer"},
}
# the folder each public header belongs to
PUBLIC = {
    "status.h": "runtime", "runtime.h": "runtime", "tensor.h": "io", "tune.h": "gemm", "layers.h": "layers",
    "model.h": "model", "split.h": "model", "train.h": "train", "infer.h": "infer", "data.h": "data",
    "io.h": "io", "alexnet.h": "infer",
}
INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"', re.M)


def folder_of_include(inc, here):
    if inc.startswith("alexnet/"):
        return PUBLIC.get(inc[len("alexnet/"):], "?" + inc)
    if "/" in inc:
        return inc.split("/")[0]
    return here  # a header beside the file


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--root", default=os.path.join(os.path.dirname(__file__), ".."))
    ap.add_argument("--graph", action="store_true", help="print the folder graph")
    args = ap.parse_args()
    root = os.path.abspath(args.root)
    files = []
    for base in ("src", "include/alexnet"):
        for dirpath, _, names in os.walk(os.path.join(root, base)):
            files += [os.path.join(dirpath, n) for n in names if n.endswith((".c", ".h"))]
    bad, edges, file_edges = [], {}, set()
    for path in sorted(files):
        rel = os.path.relpath(path, root)
        parts = rel.split(os.sep)
        here = PUBLIC.get(parts[-1], "?") if parts[0] == "include" else parts[1]
        text = open(path, encoding="utf-8").read()
        for inc in INCLUDE.findall(text):
            there = folder_of_include(inc, here)
            target = inc if inc.startswith("alexnet/") or "/" in inc else "/".join(parts[:-1] + [inc])
            file_edges.add((rel, target))
            if there == here:
                continue
            edges.setdefault(here, set()).add(there)
            if there not in ALLOWED.get(here, set()):
                bad.append(f"{rel}: includes \"{inc}\" ({there}), which {here}/ may not import")
    # two files that include each other (headers named by their include path)
    def key(p):
        p = p.replace(os.sep, "/")
        return p[len("src/"):] if p.startswith("src/") else p[len("include/"):] if p.startswith("include/") else p
    pairs = {(key(a), key(b)) for a, b in file_edges}
    for a, b in sorted(pairs):
        if (b, a) in pairs and a < b:
            bad.append(f"{a} and {b} include each other")
    if args.graph:
        for f in ALLOWED:
            print(f"{f:8s} -> {', '.join(sorted(edges.get(f, set()))) or '(nothing)'}")
    for line in bad:
        print(line)
    print(f"imports: {len(bad)} violation(s) in {len(files)} files")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
