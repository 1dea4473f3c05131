#!/usr/bin/python3
"""Compares this project's GEMMs (CLBlast on the OpenCL device, with the device's tuning if any) with
the host BLAS through numpy (OpenBLAS when Debian's libopenblas0 is the libblas alternative) on the
exact GEMM shapes of a model's training step, and prints the ratio per shape and overall.

  tools/gemm_compare.py --alexnet build/alexnet --model alexnet --batch 64 --threads 2
"""
import argparse
import json
import os
import subprocess
import time


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--alexnet", default="build/alexnet")
    ap.add_argument("--model", default="alexnet")
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--device", default=None)
    a = ap.parse_args()
    os.environ["OPENBLAS_NUM_THREADS"] = str(a.threads)
    os.environ["OMP_NUM_THREADS"] = str(a.threads)
    import numpy as np  # after the thread count is set

    cmd = [a.alexnet, "tune", "--report", "--model", a.model, "--batch", str(a.batch)]
    if a.device:
        cmd += ["--device", a.device]
    shapes = [json.loads(line) for line in subprocess.run(cmd, check=True, capture_output=True, text=True).stdout.splitlines()]
    blas = np.__config__.blas_opt_info if hasattr(np.__config__, "blas_opt_info") else {}
    print(f"numpy {np.__version__} BLAS: {blas.get('libraries', '?')}, {a.threads} threads; ours: {shapes[0]['tuning']}")
    ours_total = host_total = flop_total = 0.0
    rng = np.random.default_rng(1)
    for s in shapes:
        m, n, k = s["m"], s["n"], s["k"]
        A = rng.standard_normal((k, m) if s["trans_a"] else (m, k), dtype=np.float32)
        B = rng.standard_normal((n, k) if s["trans_b"] else (k, n), dtype=np.float32)
        opA, opB = (A.T if s["trans_a"] else A), (B.T if s["trans_b"] else B)
        np.matmul(opA, opB)
        t0 = time.perf_counter()
        np.matmul(opA, opB)
        host = time.perf_counter() - t0
        flop = 2.0 * m * n * k
        ours_total += s["seconds"] * s["count"]
        host_total += host * s["count"]
        flop_total += flop * s["count"]
        print(f"  {m:6d} x {n:6d} x {k:6d} {'T' if s['trans_a'] else 'N'}{'T' if s['trans_b'] else 'N'} x{s['count']:<3d}"
              f" ours {s['gflops']:7.1f} GFLOP/s   host BLAS {flop / host / 1e9:7.1f} GFLOP/s   ratio {host / s['seconds']:.2f}")
    print(f"step's GEMMs: ours {flop_total / ours_total / 1e9:.1f} GFLOP/s, host BLAS {flop_total / host_total / 1e9:.1f}"
          f" GFLOP/s, ratio {host_total / ours_total:.2f}")


if __name__ == "__main__":
    main()
