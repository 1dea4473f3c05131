#!/usr/bin/python3
"""alexnet bench --json end to end, on two devices (PoCL's pthread driver twice), tiny models so it
takes seconds (Python's standard library only):

  1. `--device all --split 2`: every device alone, then the first two as a pair (alexnet-half splits
     the batch); `--split 2` on alexnet: its two columns and their exchange layers;
  2. every result: valid JSON; images/s > 0 and equal to batch / step time; for every device, its rows
     (layers, loss, zeroing, gradient sum, SGD) add up to its device_ms and lie within 10 % of the
     measured step time, never above it;
  3. a split: each device's busy and exchange time add up to its device_ms, the busy time is at most
     the step time, the exchange copies are those the split makes per step (the batch's gradient sum
     one each way: 2; alexnet's three gathers and fc8's sum forward, the gathers backward: 14);
  4. `--kernels` (alexnet, one device and split): every kernel row's time is >= 0, the rows add up to
     kernels_ms (none left over beyond the table's rows), which is at most the device's device_ms; training runs im2col twice per convolution
     (forward and backward), but once for conv3-conv5, whose forward pass runs Winograd's three transforms once each
     (ALEXNET_WINOGRAD=forward), and conv1 on the project's GEMM (AVX-512), which runs conv_phase twice
     instead, and alexnet's LRN once each way per LRN layer, per device;
  5. a CPU device alone: the step's GEMM calls timed on the host's BLAS too (host_blas_*), and not
     with --no-host-blas;
  6. bad options: --split 3, --split 2 with one device named: exit status 2.
Exits 1 on any difference, printing the result and the figure that is off. Benchmarks assert no speed:
only that the figures account for the step.

  cli_bench.py --exe build/alexnet
"""
import argparse
import json
import os
import re
import subprocess
import sys

TINY = ["--batch", "2", "--input-size", "67", "--classes", "10", "--iterations", "1", "--warmup", "1"]
failures = []


def check(ok, what, result):
    if not ok:
        failures.append(what)
        print(f"FAIL: {what}\n  in {json.dumps({k: v for k, v in result.items() if k not in ('layers', 'devices')})}")


def close(a, b, rel, abs_=0.0):
    return abs(a - b) <= rel * max(abs(a), abs(b)) + abs_


def bench(exe, args):
    # the default path for the 3x3 stride-1 convolutions, whatever the caller's environment says
    env = dict(os.environ, ALEXNET_WINOGRAD="forward")
    p = subprocess.run([exe, "bench", "--json"] + args, capture_output=True, text=True, env=env)
    if p.returncode != 0:
        print(f"FAIL: alexnet bench {' '.join(args)} exited {p.returncode}\n{p.stdout}\n{p.stderr}")
        sys.exit(1)
    try:
        return json.loads(p.stdout)
    except json.JSONDecodeError as e:
        print(f"FAIL: alexnet bench {' '.join(args)}: not JSON ({e})\n{p.stdout}")
        sys.exit(1)


def rows_ms(dev):
    """The sum of a device's rows, as the table prints them."""
    layers = sum(L["forward_ms"] + L["backward_ms"] for L in dev["layers"])
    return layers, layers + dev["loss_ms"] + dev["zero_grads_ms"] + dev.get("grad_sum_ms", 0.0) + dev["sgd_ms"]


def check_result(r):
    name = f"{r['model']} on {r['device']}"
    step = r["step_ms"]
    check(step > 0 and r["images_per_s"] > 0, f"{name}: step {step} ms, {r['images_per_s']} images/s", r)
    check(close(r["images_per_s"], r["batch"] / (step * 1e-3), 1e-3, 6e-4),  # printed to 3 decimals
          f"{name}: {r['images_per_s']} images/s, batch {r['batch']} / step {step} ms = "
          f"{r['batch'] / (step * 1e-3):.3f}", r)
    lo, hi = r["step_min_ms"], r["step_max_ms"]  # the mean of the timed steps lies between the extremes
    check(0 < lo and lo - 1e-3 <= step <= hi + 1e-3 and (r["iterations"] > 1 or close(lo, hi, 0, 1e-3)),
          f"{name}: step {step} ms outside fastest {lo} .. slowest {hi} over {r['iterations']} steps", r)
    devices = r["devices"] if r["split"] == 2 else [r]
    for k, dev in enumerate(devices):
        layers, rows = rows_ms(dev)
        print(f"  {name} [{k}]: step {step:.1f} ms, layer rows {layers:.1f} ms ({100 * layers / step:.1f} %), "
              f"all rows {rows:.1f} ms ({100 * rows / step:.1f} %)")
        check(close(rows, dev["device_ms"], 1e-3, 0.05), f"{name} [{k}]: rows {rows:.3f} ms, device_ms "
              f"{dev['device_ms']}", r)
        # each device's rows within the step; the busier one's cover it (in a split the other may finish
        # early: alexnet's second column runs no loss, 28 ms of a 286 ms step at the test's size)
        busiest = k == max(range(len(devices)), key=lambda i: devices[i]["device_ms"])
        check((0.9 * step if busiest else 0) <= rows <= 1.01 * step,
              f"{name} [{k}]: rows {rows:.1f} ms against step {step:.1f} ms (not within 10 %)", r)
    if r["split"] != 2:
        check(r["split"] == 1 and "layers" in r, f"{name}: split {r['split']}", r)
        return
    check(len(devices) == 2, f"{name}: {len(devices)} devices", r)
    for k, dev in enumerate(devices):
        check(0 < dev["busy_ms"] <= step and dev["exchange_ms"] >= 0,
              f"{name} [{k}]: busy {dev['busy_ms']} ms, exchanges {dev['exchange_ms']} ms, step {step} ms", r)
        check(close(dev["busy_ms"] + dev["exchange_ms"], dev["device_ms"], 1e-3, 0.05),
              f"{name} [{k}]: busy + exchanges {dev['busy_ms'] + dev['exchange_ms']:.3f} ms, device_ms "
              f"{dev['device_ms']}", r)
    check(close(r["device_ms"], max(d["device_ms"] for d in devices), 1e-6, 1e-3),
          f"{name}: device_ms {r['device_ms']} is not the longer device's", r)
    columns = r["split_mode"] == "columns"
    check(r["split_mode"] == ("columns" if r["model"] == "alexnet" else "batch"),
          f"{name}: split_mode {r['split_mode']}", r)
    check(r["exchange_path"] == "buffer copies", f"{name}: exchange_path {r['exchange_path']} in one context", r)
    copies = 14 if columns else 2
    check(r["exchange_copies"] == copies and r["exchange_copy_ms"] >= 0,
          f"{name}: {r['exchange_copies']} exchange copies ({r['exchange_copy_ms']} ms), the split makes {copies}",
          r)
    samples = [d["samples"] for d in devices]
    check(samples == ([r["batch"]] * 2 if columns else [1, 1]), f"{name}: samples per device {samples}", r)
    exchange_rows = [L for L in devices[0]["layers"] if L["kind"] in ("gather", "sum")]
    check(len(exchange_rows) == (4 if columns else 0), f"{name}: {len(exchange_rows)} exchange layer rows", r)


def check_kernels(r, dev):
    name = f"{r['model']} on {dev['device']} (--kernels)"
    rows = dev.get("kernels")
    check(rows is not None and len(rows) > 0, f"{name}: no kernel rows", r)
    if not rows:
        return
    check(all(k["ms"] >= 0 and k["launches"] > 0 for k in rows), f"{name}: a row with negative time or no launch", r)
    total = sum(k["ms"] for k in rows) + dev["kernels_other_ms"]
    check(close(total, dev["kernels_ms"], 1e-3, 1e-3), f"{name}: rows add up to {total} ms, kernels_ms {dev['kernels_ms']}", r)
    check(dev["kernels_other_ms"] == 0, f"{name}: {dev['kernels_other_ms']} ms in ranges beyond the table's rows", r)
    check(dev["kernels_ms"] <= dev["device_ms"] * 1.001 + 1e-3,
          f"{name}: kernels {dev['kernels_ms']} ms above the device's {dev['device_ms']} ms", r)
    launches = {}  # by kernel, either variant (name or name_gpu: the Winograd transforms take their GPU
    for k in rows:  # shape on a CPU with 16-lane vectors, the other kernels their CPU shape), and for the
        # Winograd kernels any tile (winograd4_input, winograd8_input, ... count as winograd_input)
        base = k["kernel"][:-4] if k["kernel"].endswith("_gpu") else k["kernel"]
        base = re.sub(r"^winograd[0-9]+_", "winograd_", base)
        launches[base] = launches.get(base, 0) + k["launches"]
    convs = sum(1 for L in dev["layers"] if L["kind"] == "conv")
    lrns = sum(1 for L in dev["layers"] if L["kind"] == "lrn")
    # alexnet's conv2 (5x5) and conv3-conv5 (3x3), all stride 1, run their forward pass through Winograd
    # (ALEXNET_WINOGRAD=forward): one filter, input and output transform each; every convolution's backward
    # pass runs im2col; but on the project's GEMM (an AVX-512 CPU) conv1 (stride 4) runs its forward pass and
    # its weight gradient on phase planes instead (layers/conv_phase.c: it has no input gradient)
    winograd = 4
    phase = 1 if dev.get("gemm_engine", r.get("gemm_engine")) == "project" else 0
    want = {"im2col": 2 * convs - winograd - 2 * phase, "conv_phase": 2 * phase, "winograd_filter": winograd,
            "winograd_input": winograd, "winograd_output": winograd, "lrn_forward": lrns,
            "lrn_backward": lrns}  # one chunk: the batch is 2
    for kernel, n in want.items():
        check(abs(launches.get(kernel, 0) - n) < 1e-6,
              f"{name}: {launches.get(kernel, 0)} launches of {kernel} per step, expected {n}", r)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--exe", required=True)
    exe = ap.parse_args().exe
    results = bench(exe, ["--device", "all", "--split", "2", "--model", "alexnet-half"] + TINY)
    check(len(results) == 3 and [r["split"] for r in results] == [1, 1, 2],
          f"--device all --split 2 on two devices: {len(results)} results, splits "
          f"{[r['split'] for r in results]} (expected each device alone, then the pair)", {})
    results += bench(exe, ["--split", "2", "--model", "alexnet"] + TINY + ["--iterations", "3"])  # the spread of 3
    for r in results:
        check_result(r)
    kernel_runs = bench(exe, ["--model", "alexnet", "--device", "0:0", "--kernels"] + TINY)
    kernel_runs += bench(exe, ["--model", "alexnet", "--split", "2", "--kernels"] + TINY)
    for r in kernel_runs:
        check_result(r)
        for dev in r.get("devices", [r]):
            check_kernels(r, dev)
    for r in results[:2] + kernel_runs[:1]:  # one CPU device each: the step's GEMMs on the host's BLAS too
        check(r.get("host_blas") in ("libopenblas.so.0", "libblas.so.3") and r["host_blas_threads"] >= 1
              and r["host_blas_ms"] > 0 and r["host_blas_gflops"] > 0,
              f"{r['model']}: the host BLAS figures of a CPU device (tests install python3-torch, and with it a BLAS)",
              r)
    plain = bench(exe, ["--model", "alexnet-half", "--device", "0:0", "--no-host-blas"] + TINY)
    check(len(plain) == 1 and "host_blas" not in plain[0], "--no-host-blas: no host BLAS figures", plain[0] if plain else {})
    for bad in (["--split", "3"], ["--split", "2", "--device", "0:0"]):
        p = subprocess.run([exe, "bench"] + bad, capture_output=True, text=True)
        check(p.returncode == 2, f"alexnet bench {' '.join(bad)} exited {p.returncode}, expected 2", {})
    if failures:
        print(f"{len(failures)} failure(s)")
        return 1
    print(f"ok: {len(results)} results")
    return 0


if __name__ == "__main__":
    sys.exit(main())
