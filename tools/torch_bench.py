#!/usr/bin/python3
"""Benchmarks `alexnet bench` against PyTorch on the same models, batch and threads, in one run, and
prints the ratios side by side (ours / PyTorch: above 1 means this project is faster).

  tools/torch_bench.py --alexnet build/alexnet --batch 64 --threads 2            # CPU: PoCL vs PyTorch CPU
  tools/torch_bench.py --alexnet build/alexnet --torch-device cuda --batch 64    # GPU: OpenCL vs CUDA fp32

PyTorch runs fp32 with TF32 off (cuDNN and matmul), dropout on in training, SGD with momentum 0.9 and
weight decay 5e-4, as `alexnet bench` does. Timing: warm-up steps, then the mean of timed steps.
Run with /usr/bin/python3 on Debian (python3-torch); any python3 with torch elsewhere.
"""
import argparse
import json
import os
import platform
import subprocess
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import alexnet_torch  # noqa: E402  the same three models, with the same names


def torch_images_per_s(model_name, mode, batch, classes, size, warmup, iterations, device):
    torch.manual_seed(1)
    model = alexnet_torch.build(model_name, classes).to(device)
    x = torch.rand(batch, 3, size, size, device=device) * 2 - 1
    y = torch.randint(0, classes, (batch,), device=device)
    opt = torch.optim.SGD(model.parameters(), lr=0.001, momentum=0.9, weight_decay=5e-4)
    loss_fn = torch.nn.CrossEntropyLoss()

    def step():
        if mode == "train":
            model.train()
            opt.zero_grad(set_to_none=False)
            loss = loss_fn(model(x), y)
            loss.backward()
            opt.step()
            return loss.item()
        model.eval()
        with torch.no_grad():
            return model(x).sum().item()

    for _ in range(warmup):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(iterations):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return batch * iterations / (time.perf_counter() - t0)


def ours(binary, model, mode, batch, classes, size, warmup, iterations, device_spec):
    cmd = [binary, "bench", "--json", "--model", model, "--mode", mode, "--batch", str(batch), "--classes",
           str(classes), "--input-size", str(size), "--warmup", str(warmup), "--iterations", str(iterations)]
    if device_spec:
        cmd += ["--device", device_spec]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return json.loads(out)[0]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--alexnet", default="build/alexnet", help="the alexnet binary")
    ap.add_argument("--device", default=None, help="alexnet's --device (default: its usual choice)")
    ap.add_argument("--torch-device", default="cpu", help="cpu or cuda")
    ap.add_argument("--threads", type=int, default=os.cpu_count(), help="PyTorch CPU threads")
    ap.add_argument("--models", default="alexnet,alexnet-half,alexnet-tv")
    ap.add_argument("--modes", default="train,infer")
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--classes", type=int, default=1000)
    ap.add_argument("--input-size", type=int, default=224)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--iterations", type=int, default=3)
    ap.add_argument("--json-out", help="also write the results here")
    a = ap.parse_args()

    torch.set_num_threads(a.threads)
    device = torch.device(a.torch_device)
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
        torch.backends.cudnn.benchmark = True
        where = torch.cuda.get_device_name(0)
    else:
        where = f"{platform.processor() or platform.machine()}, {a.threads} threads"
    print(f"PyTorch {torch.__version__} on {where}; batch {a.batch}, {a.classes} classes, input {a.input_size}")
    rows = []
    for model in a.models.split(","):
        for mode in a.modes.split(","):
            o = ours(a.alexnet, model, mode, a.batch, a.classes, a.input_size, a.warmup, a.iterations, a.device)
            t = torch_images_per_s(model, mode, a.batch, a.classes, a.input_size, a.warmup, a.iterations, device)
            rows.append({"model": model, "mode": mode, "ours_images_per_s": o["images_per_s"],
                         "torch_images_per_s": t, "ratio": o["images_per_s"] / t, "ours_device": o["device"],
                         "ours_gemm_share": o["gemm_ms"] / o["device_ms"], "ours_gflops": o["gflops"],
                         "gemm_tuning": o.get("gemm_tuning", "")})
            r = rows[-1]
            print(f"{model:14s} {mode:6s} ours {r['ours_images_per_s']:9.1f} img/s   PyTorch {t:9.1f} img/s   "
                  f"ratio {r['ratio']:.2f}   (ours: {r['ours_gflops']:.1f} GFLOP/s, GEMMs "
                  f"{100 * r['ours_gemm_share']:.0f}% of device time)", flush=True)
    if a.json_out:
        with open(a.json_out, "w") as f:
            json.dump({"torch": torch.__version__, "torch_device": where, "batch": a.batch, "rows": rows}, f, indent=1)


if __name__ == "__main__":
    main()
