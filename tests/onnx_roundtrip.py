#!/usr/bin/python3
"""The ONNX export against `alexnet classify`, for the three models: random weights (7 classes) written
as safetensors.torch.save_file writes a state_dict (no __metadata__), exported by `tools/alexnet_torch.py
to-onnx`, run in ONNX Runtime on images, must give the probabilities `alexnet classify --json` gives for
the same file and images, within 1e-4 (and PyTorch's own, as a check of the export).

The images are 256x256 PNGs, so that no side resizes: classify takes a file without metadata at input 224
from a base image of 256 (centre crop at 16, ImageNet's mean and std), which this script does by hand for
ONNX Runtime. Random weights give nearly uniform probabilities, which would make a 1e-4 margin
meaningless: the last layer is scaled (still random) to logits of standard deviation 3.

ONNX Runtime is PyPI's, in the virtual environment tools/install-deps.sh makes (.venv in the repository,
over Debian's Python, so torch 1.13 and numpy 1.24 are Debian's); this script re-runs itself there. No
environment is a failure that says to run tools/install-deps.sh, never a skip.

  onnx_roundtrip.py --exe build/alexnet --venv .venv --workdir /tmp/onnx
"""
import argparse
import json
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
TOOLS = os.path.join(HERE, "..", "tools")
TOL = 1e-4
CLASSES = 7
MEAN, STD = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]


def into_venv(venv):
    """Re-executes this script with the environment's Python unless it already runs there."""
    venv = os.path.abspath(venv)
    if os.path.abspath(sys.prefix) == venv:
        return
    python = os.path.join(venv, "bin", "python")
    if not os.access(python, os.X_OK):
        print(f"onnx_roundtrip: FAIL: no Python environment at {venv} (ONNX Runtime from PyPI): run "
              "tools/install-deps.sh", file=sys.stderr)
        sys.exit(1)
    os.execv(python, [python, os.path.abspath(__file__)] + sys.argv[1:])


def images(workdir, n):
    import numpy as np
    from PIL import Image
    rng = np.random.default_rng(3)
    y, x = np.mgrid[0:256, 0:256]
    paths = []
    for i in range(n):  # smooth colour fields with texture
        f, p = rng.uniform(0.01, 0.08, size=3), rng.uniform(0, 6.3, size=3)
        rgb = np.stack([127 + 120 * np.sin(f[c] * (x + (c + 1) * y) + p[c]) for c in range(3)], axis=-1)
        rgb += rng.normal(0, 8, size=rgb.shape)
        path = os.path.join(workdir, f"image{i}.png")
        Image.fromarray(np.clip(rgb, 0, 255).astype(np.uint8)).save(path)
        paths.append(path)
    return paths


def preprocess(paths):
    """(N, 3, 224, 224): the centre 224 of each 256x256 image, ImageNet-normalised (classify's way)."""
    import numpy as np
    from PIL import Image
    out = []
    for p in paths:
        x = np.asarray(Image.open(p).convert("RGB"), dtype=np.float32)[16:240, 16:240] / 255.0
        out.append(((x - np.float32(MEAN)) / np.float32(STD)).transpose(2, 0, 1))
    return np.ascontiguousarray(np.stack(out), dtype=np.float32)


def softmax(z):
    import numpy as np
    z = z.astype(np.float64)
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def check_model(args, at, model, paths, x):
    import numpy as np
    import onnxruntime as ort
    import torch
    torch.manual_seed(5)
    net = at.init_like_c(model, at.build(model, CLASSES)).eval()
    with torch.no_grad():
        std = float(net(torch.from_numpy(x)).std())
        net.classifier[6].weight.mul_(3.0 / std)
        net.classifier[6].bias.mul_(3.0 / std)
        torch_logits = net(torch.from_numpy(x)).numpy()
    weights = os.path.join(args.workdir, f"{model}.safetensors")
    onnx_path = os.path.join(args.workdir, f"{model}.onnx")
    at.write_safetensors(weights, at.plain_state_dict(net.state_dict()))  # as save_file: no metadata
    subprocess.run([sys.executable, os.path.join(TOOLS, "alexnet_torch.py"), "to-onnx", weights, onnx_path],
                   check=True)
    sess = ort.InferenceSession(onnx_path, providers=["CPUExecutionProvider"])
    p_onnx = softmax(sess.run(["logits"], {"input": x})[0])
    out = subprocess.run([args.exe, "classify", "--weights", weights, "--json", "--top", str(CLASSES), "--batch",
                          "2"] + paths, capture_output=True, text=True)
    if out.returncode != 0:
        print(f"FAIL {model}: alexnet classify exited {out.returncode}\n{out.stdout}\n{out.stderr}")
        return False
    p_c = np.zeros_like(p_onnx)
    for i, line in enumerate(out.stdout.splitlines()):
        for t in json.loads(line)["top"]:
            p_c[i, t["class"]] = t["prob"]
    d_c, d_t = np.abs(p_c - p_onnx).max(), np.abs(softmax(torch_logits) - p_onnx).max()
    ok = d_c <= TOL and d_t <= TOL and (p_c.argmax(1) == p_onnx.argmax(1)).all()
    print(f"{'ok  ' if ok else 'FAIL'} {model}: ONNX Runtime vs alexnet classify max |dp| {d_c:.2e}, vs PyTorch "
          f"{d_t:.2e} (top-1 prob {p_onnx.max(1).round(4).tolist()}, tolerance {TOL:g})")
    return ok


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--exe", required=True, help="the alexnet binary")
    ap.add_argument("--venv", required=True, help="the environment with onnxruntime (tools/install-deps.sh)")
    ap.add_argument("--workdir", required=True)
    ap.add_argument("--images", type=int, default=2)
    args = ap.parse_args()
    into_venv(args.venv)
    try:
        import numpy  # noqa: F401
        import onnxruntime  # noqa: F401
        import torch  # noqa: F401
    except ImportError as e:
        print(f"onnx_roundtrip: FAIL: {e} in {sys.prefix}: run tools/install-deps.sh", file=sys.stderr)
        return 1
    sys.path.insert(0, TOOLS)
    import alexnet_torch as at
    os.makedirs(args.workdir, exist_ok=True)
    paths = images(args.workdir, args.images)
    x = preprocess(paths)
    results = [check_model(args, at, m, paths, x) for m in at.MODELS]
    print("onnx_roundtrip:", "PASS" if all(results) else "FAIL")
    return 0 if all(results) else 1


if __name__ == "__main__":
    sys.exit(main())
