#!/usr/bin/python3
"""Every numeric option of every alexnet command refuses a bad value, and says which (standard library only):

  1. for each numeric option in the table below: trailing letters ('12x'), an empty value, values just
     outside its range, a huge value, 'nan' and 'inf' for reals, and the option last with no value all
     exit with status 2 and one line on stderr naming the option (and the value), nothing on stdout;
     a bad choice and an unknown option likewise;
  2. the table is complete: every option each command's --help lists is in it, as numeric or not, and
     every numeric option of the table is in the --help;
  3. `train --batch 12x` and `train --momentum abc` (which used to train at batch 12 and momentum 0);
  4. valid values still parse: --help exits 0; values at the edges of the ranges get past the parser
     (the command then fails on a file that does not exist, status 1, not 2); a one-step
     `alexnet step` on the device exits 0.

The bad values are refused before any device or file is opened, so part 1 takes seconds.

  cli_options.py --exe build/alexnet
"""
import argparse
import re
import subprocess
import sys

INT_MAX = 2**31 - 1
INT64_MAX = 2**63 - 1
UINT64_MAX = 2**64 - 1


def integer(lo, hi):
    return ("int", lo, hi)


def real(lo, hi, lo_open=False, hi_open=False, single=False):
    return ("float" if single else "double", lo, hi, lo_open, hi_open)


SEED = ("seed",)
SIZE = ("size",)

# command -> (numeric options: {name: kind}, choices: {name: valid values}, other options)
COMMANDS = {
    "train": ({"val-fraction": real(0, 1, hi_open=True), "epochs": integer(1, INT_MAX),
               "max-steps": integer(0, INT64_MAX), "batch": integer(1, 65536),
               "lr": real(0, None, lo_open=True, single=True), "momentum": real(0, 1, hi_open=True, single=True),
               "weight-decay": real(0, None, single=True), "patience": integer(1, INT_MAX),
               "input-size": integer(1, 4096), "resize": integer(1, 4096), "pca-std": real(0, 10, hi_open=True),
               "seed": SEED, "threads": integer(1, 256), "checkpoint-every": integer(0, INT_MAX),
               "log-every": integer(1, INT_MAX), "val-every": integer(0, INT_MAX),
               "bucket-mb": real(0, 65536, lo_open=True), "check-sync": integer(0, INT_MAX),
               "accumulate": integer(1, 65536)},
              {"lr-schedule": ["step", "cosine", "plateau", "none"], "augment": ["default", "paper", "none"],
               "crop": ["random", "centre", "center"]},
              ["model", "data", "val", "norm", "no-flip", "out", "resume", "init", "freeze-features", "device",
               "separate-contexts"]),
    "eval": ({"input-size": integer(0, 4096), "batch": integer(1, 65536), "threads": integer(1, 256)},
             {},
             ["weights", "data", "ten-crop", "model", "device"]),
    "classify": ({"top": integer(1, 32), "batch": integer(1, 65536), "threads": integer(1, 4096),
                  "max-memory": SIZE, "input-size": integer(0, 4096)},
                 {"crop": ["center", "centre", "ten"]},
                 ["weights", "labels", "json", "time", "copy", "model", "device"]),
    "step": ({"classes": integer(1, 2**20), "batch": integer(1, 65536), "input-size": integer(1, 4096),
              "steps": integer(1, INT_MAX), "lr": real(0, None, lo_open=True, single=True), "seed": SEED},
             {},
             ["model", "device", "separate-contexts", "profile"]),
    "bench": ({"batch": integer(1, 65536), "split": integer(1, 2), "iterations": integer(1, INT_MAX),
               "warmup": integer(0, INT_MAX), "classes": integer(1, 2**20), "input-size": integer(1, 4096),
               "bucket-mb": real(0, 65536, lo_open=True)},
              {"mode": ["train", "infer"]},
              ["device", "model", "separate-contexts", "kernels", "json", "no-host-blas"]),
    "tune": ({"batch": integer(1, 65536), "input-size": integer(1, 4096), "classes": integer(1, 2**20),
              "candidates": integer(1, INT_MAX), "seed": SEED},
             {},
             ["model", "device", "dry-run", "fresh", "report", "quick"]),
    "pack": ({"size": integer(1, 4096), "threads": integer(1, 4096), "val-fraction": real(0, 1, hi_open=True),
              "seed": SEED},
             {},
             ["val-out"]),
    "filters": ({"scale": integer(1, 64), "pad": integer(0, 64)},
                {},
                ["weights", "out", "model"]),
    "devices": ({}, {}, []),
}

failures = []


def run(exe, args):
    return subprocess.run([exe] + args, capture_output=True, text=True, timeout=600)


def fail(what, p=None):
    failures.append(what)
    print(f"FAIL: {what}" + (f"\n  status {p.returncode}\n  stdout: {p.stdout!r}\n  stderr: {p.stderr!r}" if p else ""))


def bad_values(kind):
    """The values an option of this kind must refuse."""
    if kind[0] == "int":
        lo, hi = kind[1], kind[2]
        # beyond the range (above int64: strtoll's overflow), then not a whole decimal integer
        vals = [str(lo - 1), str(hi + 1), str(2**64), "12x", "", "1.5", "0x10", " 7", "abc"]
        return vals
    if kind[0] in ("float", "double"):
        lo, hi, lo_open, hi_open = kind[1:5]
        vals = ["0.5x", "", "nan", "inf", "-inf", "abc", "1e999"]
        vals.append(str(lo) if lo_open else str(lo - 0.5))
        if hi is not None:
            vals.append(str(hi) if hi_open else str(hi + 0.5))
        if kind[0] == "float":
            vals.append("1e39")  # beyond a float
        return vals
    if kind[0] == "seed":
        return ["12x", "", "-1", str(UINT64_MAX + 1), "1.5", "abc"]
    if kind[0] == "size":
        return ["512X", "", "0", "-1M", "nan", "inf", "2Q", "1e30G"]
    raise ValueError(kind)


def expect_refused(exe, command, option, value, args):
    p = run(exe, [command] + args)
    what = f"alexnet {command} {' '.join(repr(a) for a in args)}"
    if p.returncode != 2:
        return fail(f"{what}: exit status {p.returncode}, expected 2", p)
    if f"--{option}" not in p.stderr:
        return fail(f"{what}: the message does not name --{option}", p)
    if value is not None and f"'{value}'" not in p.stderr:
        return fail(f"{what}: the message does not quote the value '{value}'", p)
    if p.stderr.count("\n") != 1 or p.stdout:
        return fail(f"{what}: expected one line on stderr and nothing on stdout", p)


def help_options(exe, command):
    p = run(exe, [command, "--help"])
    if p.returncode != 0:
        fail(f"alexnet {command} --help: exit status {p.returncode}", p)
        return set()
    return set(re.findall(r"^\s*(?:-\w, )?--([a-z][a-z0-9-]*)", p.stdout, re.M))


def check_table(exe):
    for command, (numeric, choices, others) in COMMANDS.items():
        listed = help_options(exe, command)
        known = set(numeric) | set(choices) | set(others)
        for name in sorted(listed - known):
            fail(f"alexnet {command} --help lists --{name}, which this test's table does not cover")
        for name in sorted((set(numeric) | set(choices)) - listed):
            fail(f"alexnet {command}: --{name} is in this test's table but not in --help")


def check_bad_values(exe):
    n = 0
    for command, (numeric, choices, _) in COMMANDS.items():
        for name, kind in numeric.items():
            for value in bad_values(kind):
                expect_refused(exe, command, name, value, [f"--{name}", value])
                n += 1
            expect_refused(exe, command, name, "", [f"--{name}="])  # --name=value form
            expect_refused(exe, command, name, None, [f"--{name}"])  # last, no value
            n += 2
        for name in choices:
            expect_refused(exe, command, name, "bogus", [f"--{name}", "bogus"])
            expect_refused(exe, command, name, None, [f"--{name}"])
            n += 2
        expect_refused(exe, command, "no-such-option", None, ["--no-such-option"])
        n += 1
    return n


def check_valid(exe, workdir_missing):
    for command in list(COMMANDS) + [None]:
        p = run(exe, ([command] if command else []) + ["--help"])
        if p.returncode != 0 or not p.stdout.startswith("usage: alexnet"):
            fail(f"alexnet {command or ''} --help: exit status {p.returncode}, or no usage on stdout", p)
    missing = workdir_missing
    # edges of the ranges and every syntax get past the parser; the missing file then fails (status 1)
    cases = [
        ["train", "--batch", "1", "--momentum", "0", "--lr", "1e-3", "--weight-decay", "0", "--seed",
         str(UINT64_MAX), "--max-steps", str(INT64_MAX), "--val-fraction", "0", "--pca-std", "9.5",
         "--resize", "4096", "--input-size=4096", "--threads", "256", "--checkpoint-every", "0", "--val-every", "0",
         "--lr-schedule", "plateau", "--crop", "center", "--augment", "paper", "--no-flip", "--norm", "mean",
         "--data", missing, "--out", missing],
        ["eval", "--weights", missing, "--input-size", "0", "--batch", "65536", "--threads", "256"],
        ["classify", "--weights", missing, "--max-memory", "512M", "--top", "32", "--crop", "centre",
         "--input-size", "0", "--threads", "4096", missing + ".jpg"],
        ["classify", "--weights", missing, "--max-memory", "1.5GiB", missing + ".jpg"],
        ["pack", "--size", "4096", "--val-fraction", "0", "--seed", "0", missing, missing + ".pack"],
        ["filters", "--weights", missing, "-o", missing + ".png", "--scale", "64", "--pad", "0"],
    ]
    for args in cases:
        p = run(exe, args)
        if p.returncode != 1:
            fail(f"alexnet {' '.join(args)}: exit status {p.returncode}, expected 1 (parsed, then the file "
                 f"is missing)", p)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--exe", required=True)
    ap.add_argument("--no-device", action="store_true", help="skip the one run on the device")
    args = ap.parse_args()
    exe = args.exe

    for option, value in (("batch", "12x"), ("momentum", "abc")):
        expect_refused(exe, "train", option, value, [f"--{option}", value])
    check_table(exe)
    n = check_bad_values(exe)
    check_valid(exe, "/nonexistent/cli-options-test")
    if not args.no_device:
        step = ["step", "--model", "alexnet-half", "--batch", "2", "--input-size", "63", "--steps", "1",
                "--classes", "5"]
        p = run(exe, step)
        if p.returncode != 0 or "loss" not in p.stdout:
            fail(f"alexnet {' '.join(step)}: exit status {p.returncode}", p)
    if failures:
        print(f"{len(failures)} failures")
        return 1
    print(f"ok: {n} bad values refused naming their option; the table matches every command's --help; "
          "valid values parse")
    return 0


if __name__ == "__main__":
    sys.exit(main())
