#!/usr/bin/python3
"""Benchmarks `alexnet bench` against PyTorch (and, for inference, ONNX Runtime) on the same models, batch
and threads, in one run, and prints the ratios side by side (ours / theirs: above 1 means this project
is faster).

  tools/torch_bench.py --alexnet build/alexnet --batch 64 --threads 2            # CPU: PoCL vs PyTorch CPU
  .venv/bin/python tools/torch_bench.py --alexnet build/alexnet --batch 64 --threads 2 --modes infer
                                                               # inference against PyTorch and ONNX Runtime
  tools/torch_bench.py --alexnet build/alexnet --torch-device cuda --batch 64    # GPU: OpenCL vs CUDA fp32

PyTorch runs fp32 with TF32 off (cuDNN and matmul), dropout on in training, SGD with momentum 0.9 and
weight decay 5e-4, as `alexnet bench` does. Timing: warm-up steps, then the mean of timed steps.

Each infer row adds, unless switched off:
  ONNX Runtime (CPUExecutionProvider, intra-op threads = --threads, inter-op 1, all graph optimizations)
    on the model exported with torch.onnx (random weights, dynamic batch), same input; its logits are
    checked against PyTorch's. ONNX Runtime is not a Debian package: tools/install-deps.sh installs it
    in .venv (over Debian's torch), so run this tool with .venv/bin/python for these columns.
  batch-1 latency (--latency-iterations, 0 skips): ms per image, the fastest of the runs; ours is
    `alexnet bench --mode infer --batch 1`'s fastest step.
  peak host memory (--no-memory skips): the largest RSS (ru_maxrss) of a fresh process that classifies
    --batch random images in one batch: ours `alexnet classify --weights W --batch B DIR`, PyTorch and
    ONNX Runtime tools/infer_once.py on the same weights and images. PoCL's device memory is host memory,
    so ours includes the device buffers; lower is better there (ratio ours / theirs below 1). Ours is
    the second of two runs: the first may compile kernels, which PoCL's cache then holds (its figure
    is in the JSON as ours_rss_first_mib).
Run with /usr/bin/python3 on Debian (python3-torch) or .venv/bin/python (also ONNX Runtime); any python3
with torch elsewhere.
"""
import argparse
import copy
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
import warnings

import torch
import torch.nn as nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import alexnet_torch  # noqa: E402  the same three models, with the same names

HERE = os.path.dirname(os.path.abspath(__file__))
# run by a small process of its own: the measured command's ru_maxrss would otherwise start at this
# process's (Linux keeps the largest RSS across fork and exec)
RSS_LAUNCHER = ("import os, sys\n"
                "pid = os.posix_spawnp(sys.argv[1], sys.argv[1:], os.environ)\n"
                "_, status, ru = os.wait4(pid, 0)\n"
                "print('\\nRSS', os.waitstatus_to_exitcode(status), ru.ru_maxrss)\n")


def import_ort():
    """onnxruntime, or None after one line that says how to get it."""
    try:
        import onnxruntime
        return onnxruntime
    except ImportError as e:
        print(f"ONNX Runtime: cannot import onnxruntime in {sys.executable} ({e}); the ORT columns are left "
              "out: tools/install-deps.sh makes .venv with it, run this tool with .venv/bin/python", flush=True)
        return None


def timed_runs(step, warmup, iterations, device):
    """Seconds of each timed call of step(), after warm-up calls."""
    for _ in range(warmup):
        step()
    times = []
    for _ in range(iterations):
        if device.type == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        step()
        if device.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
    return times


def torch_model(model_name, classes, device):
    torch.manual_seed(1)
    return alexnet_torch.build(model_name, classes).to(device)


def torch_images_per_s(model, mode, batch, classes, size, warmup, iterations, device):
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

    return batch * iterations / sum(timed_runs(step, warmup, iterations, device))


class MatrixPool(nn.Module):
    """AdaptiveAvgPool2d(6) as P x P^T with its averaging matrix P (6, h): the same windows, exportable
    for any side h (torch.onnx exports the adaptive pool only where 6 divides h)."""

    def __init__(self, h, out=6):
        super().__init__()
        p = torch.zeros(out, h)  # (6, h)
        for i in range(out):
            lo, hi = i * h // out, -(-(i + 1) * h // out)
            p[i, lo:hi] = 1.0 / (hi - lo)
        self.register_buffer("p", p)

    def forward(self, x):  # (N, C, h, h) -> (N, C, 6, 6)
        return torch.matmul(torch.matmul(self.p, x), self.p.t())


def export_onnx(model, size, path):
    """The model (CPU) as alexnet_torch.to_onnx exports it (input "input" (N, 3, S, S), output "logits",
    dynamic batch); the adaptive pool as to_onnx replaces it where 6 divides the features' side (224),
    else (small test sizes) as a MatrixPool."""
    net = copy.deepcopy(model).to("cpu").eval()
    x = torch.zeros(1, 3, size, size)
    with torch.no_grad():
        h = net.features(x).shape[-1]
    net.avgpool = nn.Identity() if h == 6 else nn.AvgPool2d(h // 6) if h % 6 == 0 else MatrixPool(h)
    with warnings.catch_warnings():  # torch 1.13's exporter warns about shape inference it skips
        warnings.simplefilter("ignore")
        torch.onnx.export(net, x, path, input_names=["input"], output_names=["logits"],
                          opset_version=alexnet_torch.ONNX_OPSET, do_constant_folding=True,
                          dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}})


def ort_session(ort, path, threads):
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])


def ours(binary, model, mode, batch, classes, size, warmup, iterations, device_spec, extra=()):
    cmd = [binary, "bench", "--json", "--model", model, "--mode", mode, "--batch", str(batch), "--classes",
           str(classes), "--input-size", str(size), "--warmup", str(warmup), "--iterations", str(iterations)]
    if device_spec:
        cmd += ["--device", device_spec]
    out = subprocess.run(cmd + list(extra), check=True, capture_output=True, text=True).stdout
    return json.loads(out)[0]


def peak_rss_mib(cmd):
    """The peak RSS in MiB of cmd run to completion in a fresh process; raises if it fails."""
    p = subprocess.run([sys.executable, "-S", "-c", RSS_LAUNCHER] + cmd, capture_output=True, text=True)
    last = p.stdout.rstrip().split("\n")[-1].split()
    if p.returncode or len(last) != 3 or last[0] != "RSS" or last[1] != "0":
        raise RuntimeError(f"{' '.join(cmd)} failed (exit {last[1] if len(last) == 3 else p.returncode}):\n"
                           f"{p.stderr.strip()[-2000:]}")
    return int(last[2]) / 1024


def write_inputs(d, model_name, model, classes, size, batch):
    """d/weights.safetensors (the model's weights, this project's format) and d/images/ (batch random
    PNGs of the input size) for the memory figures."""
    from PIL import Image
    weights = os.path.join(d, "weights.safetensors")
    alexnet_torch.write_safetensors(weights, model.state_dict(),
                                    alexnet_torch.project_metadata(model_name, classes, size))
    images = os.path.join(d, "images")
    os.makedirs(images)
    g = torch.Generator().manual_seed(2)
    for i in range(batch):
        px = torch.randint(0, 256, (size, size, 3), dtype=torch.uint8, generator=g).numpy()
        Image.fromarray(px).save(os.path.join(images, f"{i:04d}.png"))
    return weights, images


def memory_row(a, model_name, model, ort, d):
    weights, images = write_inputs(d, model_name, model, a.classes, a.input_size, a.batch)
    files = sorted(os.path.join(images, f) for f in os.listdir(images))
    cmd = [a.alexnet, "classify", "--weights", weights, "--batch", str(a.batch), "--top", "1"]
    cmd += (["--device", a.device] if a.device else []) + [images]
    # the first run may compile kernels that PoCL's cache then holds: the second is the figure
    r = {"ours_rss_first_mib": peak_rss_mib(cmd)}
    r["ours_rss_mib"] = peak_rss_mib(cmd)
    common = ["--threads", str(a.threads), "--input-size", str(a.input_size)] + files
    once = [sys.executable, os.path.join(HERE, "infer_once.py")]
    r["torch_rss_mib"] = peak_rss_mib(once + ["torch", "--weights", weights, "--model", model_name] + common)
    if ort:
        r["ort_rss_mib"] = peak_rss_mib(once + ["ort", "--onnx", os.path.join(d, "model.onnx")] + common)
    return r


def infer_extras(a, model_name, model, ort, device):
    """ONNX Runtime's throughput, batch-1 latency of all three, peak RSS of all three: a dict for the row."""
    r = {}
    with tempfile.TemporaryDirectory(prefix="torch_bench.") as d:
        if ort:
            path = os.path.join(d, "model.onnx")
            export_onnx(model, a.input_size, path)
            sess = ort_session(ort, path, a.threads)
            x = torch.rand(a.batch, 3, a.input_size, a.input_size) * 2 - 1
            got = sess.run(None, {"input": x.numpy()})[0]
            with torch.no_grad():
                want = model.eval()(x.to(device)).cpu()
            r["ort_max_rel_diff"] = float((torch.from_numpy(got) - want).abs().max() / want.abs().max())
            if r["ort_max_rel_diff"] > 1e-3:
                raise RuntimeError(f"{model_name}: ONNX Runtime's logits differ from PyTorch's by "
                                   f"{r['ort_max_rel_diff']:.2e} of the largest: the export is not the model")
            t = timed_runs(lambda: sess.run(None, {"input": x.numpy()}), a.warmup, a.iterations, torch.device("cpu"))
            r["ort_images_per_s"] = a.batch * a.iterations / sum(t)
        if a.latency_iterations:
            n = a.latency_iterations
            o = ours(a.alexnet, model_name, "infer", 1, a.classes, a.input_size, 1, n, a.device, ["--no-host-blas"])
            r["ours_latency_ms"] = o["step_min_ms"]
            x1 = torch.rand(1, 3, a.input_size, a.input_size, device=device)
            model.eval()
            with torch.no_grad():
                r["torch_latency_ms"] = 1e3 * min(timed_runs(lambda: model(x1), 1, n, device))
            if ort:
                feed = {"input": x1.cpu().numpy()}
                r["ort_latency_ms"] = 1e3 * min(timed_runs(lambda: sess.run(None, feed), 1, n, torch.device("cpu")))
        if not a.no_memory:
            r.update(memory_row(a, model_name, model, ort, d))
    return r


def ratio(x, y):
    return f"{x / y:.2f}" if x and y else "-"


def print_infer_extras(r):
    if "ort_images_per_s" in r:
        print(f"{'':21s} ONNX Runtime {r['ort_images_per_s']:9.1f} img/s   ours/ORT {ratio(r['ours_images_per_s'], r['ort_images_per_s'])}"
              f"   (ORT's logits within {r['ort_max_rel_diff']:.1e} of PyTorch's)")
    if "ours_latency_ms" in r:
        line = three_way(r, "latency_ms", "batch 1", "ms", "7.2f", ours_over=False)
        print(f"{'':21s} {line}   (ms per image, fastest of {r['latency_iterations']}; above 1: ours faster)")
    if "ours_rss_mib" in r:
        line = three_way(r, "rss_mib", "peak RSS", "MiB", "7.1f", ours_over=True)
        print(f"{'':21s} {line}   (below 1: ours smaller; ours includes PoCL's device memory)", flush=True)


def three_way(r, key, label, unit, fmt, ours_over):
    """ours, PyTorch and (when measured) ORT's r[*_key] on one line, then the ratios: ours over theirs
    (ours_over), else theirs over ours."""
    ours, others = r[f"ours_{key}"], [("PyTorch", r[f"torch_{key}"]), ("ORT", r.get(f"ort_{key}"))]
    others = [(name, v) for name, v in others if v is not None]
    line = f"{label}: ours {ours:{fmt}} {unit}" + "".join(f"   {name} {v:{fmt}} {unit}" for name, v in others)
    for name, v in others:
        line += f"   ours/{name} {ratio(ours, v)}" if ours_over else f"   {name}/ours {ratio(v, ours)}"
    return line

def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--alexnet", default="build/alexnet", help="the alexnet binary")
    ap.add_argument("--device", default=None, help="alexnet's --device (default: its usual choice)")
    ap.add_argument("--torch-device", default="cpu", help="cpu or cuda")
    ap.add_argument("--threads", type=int, default=os.cpu_count(),
                    help="PyTorch CPU threads, and ONNX Runtime's intra-op threads")
    ap.add_argument("--models", default="alexnet,alexnet-half,alexnet-tv")
    ap.add_argument("--modes", default="train,infer")
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--classes", type=int, default=1000)
    ap.add_argument("--input-size", type=int, default=224)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--iterations", type=int, default=3)
    ap.add_argument("--latency-iterations", type=int, default=10,
                    help="infer: batch-1 runs, the fastest counts (default 10; 0 skips the latency figures)")
    ap.add_argument("--no-memory", action="store_true", help="infer: skip the peak-RSS figures")
    ap.add_argument("--no-ort", action="store_true", help="infer: skip ONNX Runtime")
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
    modes = a.modes.split(",")
    ort = None
    if "infer" in modes and not a.no_ort and device.type == "cpu":
        ort = import_ort()
    elif "infer" in modes and device.type != "cpu":
        print("ONNX Runtime and peak RSS: CPU only (here PyTorch runs on the GPU); left out", flush=True)
        a.no_memory = True
    print(f"PyTorch {torch.__version__}" + (f", ONNX Runtime {ort.__version__}" if ort else "") +
          f" on {where}; batch {a.batch}, {a.classes} classes, input {a.input_size}")
    rows = []
    for model_name in a.models.split(","):
        for mode in modes:
            model = torch_model(model_name, a.classes, device)
            o = ours(a.alexnet, model_name, mode, a.batch, a.classes, a.input_size, a.warmup, a.iterations, a.device)
            t = torch_images_per_s(model, mode, a.batch, a.classes, a.input_size, a.warmup, a.iterations, device)
            rows.append({"model": model_name, "mode": mode, "ours_images_per_s": o["images_per_s"],
                         "torch_images_per_s": t, "ratio": o["images_per_s"] / t, "ours_device": o["device"],
                         "ours_gemm_share": o["gemm_ms"] / o["device_ms"], "ours_gflops": o["gflops"],
                         "gemm_tuning": o.get("gemm_tuning", "")})
            r = rows[-1]
            print(f"{model_name:14s} {mode:6s} ours {r['ours_images_per_s']:9.1f} img/s   PyTorch {t:9.1f} img/s   "
                  f"ratio {r['ratio']:.2f}   (ours: {r['ours_gflops']:.1f} GFLOP/s, GEMMs "
                  f"{100 * r['ours_gemm_share']:.0f}% of device time)", flush=True)
            if mode == "infer":
                if a.latency_iterations:
                    r["latency_iterations"] = a.latency_iterations
                r.update(infer_extras(a, model_name, model, ort, device))
                print_infer_extras(r)
    if a.json_out:
        with open(a.json_out, "w") as f:
            json.dump({"torch": torch.__version__, "onnxruntime": ort.__version__ if ort else None,
                       "torch_device": where, "batch": a.batch, "classes": a.classes, "input_size": a.input_size,
                       "threads": a.threads, "rows": rows}, f, indent=1)


if __name__ == "__main__":
    main()
