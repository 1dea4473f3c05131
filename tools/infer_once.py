#!/usr/bin/python3
"""One batch of inference on image files with PyTorch or ONNX Runtime, in a process of its own, so that
tools/torch_bench.py can measure its peak host memory (ru_maxrss) beside `alexnet classify`'s:

  infer_once.py torch --weights W.safetensors --model M --threads T --input-size S IMG...
  infer_once.py ort --onnx F.onnx --threads T --input-size S IMG...

Preprocessing is classify's: short side to round(S*256/224), centre crop S, ImageNet mean/std. PyTorch
reads each tensor of the safetensors file straight into the built model's parameter (one copy of the
weights, as a lean application would); ONNX Runtime loads its graph file as it always does. The ort
mode imports neither torch nor this project's Python, so its figure holds ONNX Runtime's own cost only.
Prints the batch's logits' sum (a check that it ran) on stdout.
"""
import argparse
import json
import os
import struct
import sys

import numpy as np
from PIL import Image

MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32)
STD = np.array([0.229, 0.224, 0.225], dtype=np.float32)


def load_batch(paths, side):
    """(N, 3, S, S) float32: classify's centre-crop preprocessing."""
    resize = round(side * 256 / 224)
    out = np.empty((len(paths), 3, side, side), dtype=np.float32)  # (N, 3, S, S)
    for i, path in enumerate(paths):
        img = Image.open(path).convert("RGB")
        w, h = img.size
        scale = resize / min(w, h)
        img = img.resize((max(side, round(w * scale)), max(side, round(h * scale))), Image.BILINEAR)
        w, h = img.size
        left, top = (w - side) // 2, (h - side) // 2
        a = np.asarray(img.crop((left, top, left + side, top + side)), dtype=np.float32) / 255.0  # (S, S, 3)
        out[i] = ((a - MEAN) / STD).transpose(2, 0, 1)
    return out


def run_torch(a, x):
    import torch
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import alexnet_torch

    torch.set_num_threads(a.threads)
    with open(a.weights, "rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(n))
        classes = header["classifier.6.weight"]["shape"][0]
        net = alexnet_torch.build(a.model, classes).eval()
        for name, t in net.state_dict().items():
            e = header.get(name)
            if e is None or e["dtype"] != "F32" or e["shape"] != list(t.shape):
                raise SystemExit(f"{a.weights}: tensor {name} is missing or is not F32 {list(t.shape)}")
            f.seek(8 + n + e["data_offsets"][0])
            if f.readinto(memoryview(t.numpy()).cast("B")) != t.numel() * 4:
                raise SystemExit(f"{a.weights}: tensor {name}: the file ends inside its data")
    with torch.no_grad():
        return float(net(torch.from_numpy(x)).sum())


def run_ort(a, x):
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = a.threads
    so.inter_op_num_threads = 1
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    sess = ort.InferenceSession(a.onnx, so, providers=["CPUExecutionProvider"])
    return float(sess.run(None, {"input": x})[0].sum())


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("runtime", choices=("torch", "ort"))
    ap.add_argument("images", nargs="+")
    ap.add_argument("--weights", help="torch: this project's .safetensors")
    ap.add_argument("--model", help="torch: alexnet | alexnet-half | alexnet-tv")
    ap.add_argument("--onnx", help="ort: the graph (input \"input\" (N, 3, S, S))")
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--input-size", type=int, default=224)
    a = ap.parse_args()
    if a.runtime == "torch" and not (a.weights and a.model):
        ap.error("torch needs --weights and --model")
    if a.runtime == "ort" and not a.onnx:
        ap.error("ort needs --onnx")
    x = load_batch(a.images, a.input_size)
    print(run_torch(a, x) if a.runtime == "torch" else run_ort(a, x))


if __name__ == "__main__":
    main()
