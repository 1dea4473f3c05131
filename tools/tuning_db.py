#!/usr/bin/env python3
"""Turns one device's lines of a tuning file (what `alexnet tune` writes: NAME \\t DRIVER \\t ...) into
an entry of the shipped tuning database (tuning/database.txt: FAMILY \\t DRIVER \\t ...), printed on
stdout. The device is the one whose name starts with --device (the file must hold exactly one such);
FAMILY is the database's key for it (PoCL: pthread-<cpu>), DRIVER a prefix of the driver version every
device of the entry reports ("535." for one NVIDIA series), or "*" (any).

    tools/tuning_db.py ~/.cache/alexnet/gemm-tuning.txt --device pthread-haswell \\
        --family pthread-haswell --driver "*" > entry.txt
"""
import argparse
import sys


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("tuning_file")
    ap.add_argument("--device", required=True, help="prefix of the device name in the tuning file")
    ap.add_argument("--family", required=True, help="the entry's family: a prefix of the device name")
    ap.add_argument("--driver", required=True, help='a prefix of the driver version, or "*"')
    args = ap.parse_args()
    if not args.device.startswith(args.family):
        sys.exit(f"--family {args.family!r} is not a prefix of --device {args.device!r}")
    lines, keys = [], set()
    with open(args.tuning_file) as f:
        for line in f:
            fields = line.rstrip("\n").split("\t")
            if len(fields) < 3 or not fields[0].startswith(args.device):
                continue
            keys.add((fields[0], fields[1]))
            lines.append("\t".join([args.family, args.driver] + fields[2:]))
    if len(keys) != 1:
        sys.exit(f"{args.tuning_file}: {len(keys)} devices match {args.device!r}: {sorted(keys)}; need exactly 1")
    (name, driver), = keys
    if args.driver != "*" and not driver.startswith(args.driver):
        sys.exit(f"--driver {args.driver!r} is not a prefix of the driver version {driver!r}")
    if not any(not l.split("\t")[2].startswith(("shape=", "dwslice=")) for l in lines):
        sys.exit(f"{args.tuning_file}: no fallback line for {name!r}")
    print(f"# {args.family}: measured on {name}, driver {driver}")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
