#!/usr/bin/python3
"""`alexnet classify` against torchvision: a randomly initialised torchvision AlexNet (1000 classes),
converted with the bridge (tools/alexnet_torch.py to-safetensors), must give the same top-5 classes and
the same probabilities (within 1e-4) as torchvision on the same preprocessed input.

The images are 256x256 PNGs, so that both sides skip resizing (both take the short side to 256) and see
the same pixels: torchvision crops the centre 224 (and, for ten-crop, TenCrop(224), softmax averaged)
and normalises with ImageNet's mean and std, which `alexnet classify` uses for a file without its own.
Random weights give nearly uniform probabilities, which would make a 1e-4 margin meaningless; the last
layer's weights and bias are scaled (still random) to logits of standard deviation 3 so that the top
classes stand apart. The class
names come from a --labels file, checked in the JSON. Exits 1 on any difference.

  classify_torchvision.py --exe build/alexnet --workdir /tmp/ct
"""
import argparse
import json
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
TOOLS = os.path.join(HERE, "..", "..", "tools")

try:
    import numpy as np
    import torch
    import torchvision
    import torchvision.transforms as T
    from PIL import Image
except ImportError as e:  # a missing torch is a failure, not a skip
    print(f"classify_torchvision: cannot import torch/torchvision ({e}); run with /usr/bin/python3 and "
          "apt-get install python3-torch python3-torchvision", file=sys.stderr)
    sys.exit(1)

TOL = 1e-4
MEAN, STD = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]


def images(workdir, n):
    rng = np.random.default_rng(7)
    paths = []
    y, x = np.mgrid[0:256, 0:256]
    for i in range(n):  # smooth colour fields with texture: not noise, which every crop would average out
        f = rng.uniform(0.01, 0.08, size=3)
        p = rng.uniform(0, 6.3, size=3)
        rgb = np.stack([127 + 120 * np.sin(f[c] * (x + (c + 1) * y) + p[c]) for c in range(3)], axis=-1)
        rgb += rng.normal(0, 8, size=rgb.shape)
        path = os.path.join(workdir, f"image{i}.png")
        Image.fromarray(np.clip(rgb, 0, 255).astype(np.uint8)).save(path)
        paths.append(path)
    return paths


def torch_probs(model, path, ten):
    img = Image.open(path).convert("RGB")
    norm = T.Compose([T.ToTensor(), T.Normalize(MEAN, STD)])
    if ten:
        x = torch.stack([norm(c) for c in T.TenCrop(224)(img)])
    else:
        x = norm(T.CenterCrop(224)(img)).unsqueeze(0)
    with torch.no_grad():
        p = torch.softmax(model(x).double(), dim=1).mean(dim=0)
    return p


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--exe", required=True, help="the alexnet binary")
    ap.add_argument("--workdir", required=True)
    ap.add_argument("--images", type=int, default=3)
    args = ap.parse_args()
    os.makedirs(args.workdir, exist_ok=True)
    torch.manual_seed(2012)
    model = torchvision.models.alexnet(weights=None, num_classes=1000).eval()
    paths = images(args.workdir, args.images)
    with torch.no_grad():  # logits of standard deviation 3 on the first image: a few classes stand out
        x = T.Normalize(MEAN, STD)(T.ToTensor()(T.CenterCrop(224)(Image.open(paths[0]).convert("RGB"))))
        scale = 3.0 / model(x.unsqueeze(0)).std().item()
        model.classifier[6].weight.mul_(scale)
        model.classifier[6].bias.mul_(scale)
    print(f"last layer scaled by {scale:.1f}")
    pth = os.path.join(args.workdir, "tv.pth")
    weights = os.path.join(args.workdir, "tv.safetensors")
    torch.save(model.state_dict(), pth)
    subprocess.run([sys.executable, os.path.join(TOOLS, "alexnet_torch.py"), "to-safetensors", pth, weights,
                    "--model", "alexnet-tv"], check=True)
    labels = os.path.join(args.workdir, "labels.txt")
    with open(labels, "w") as f:
        f.writelines(f"synset{i:04d}\n" for i in range(1000))

    misses, worst = 0, 0.0
    for ten in (False, True):
        cmd = [args.exe, "classify", "--weights", weights, "--labels", labels, "--json", "--top", "5",
               "--batch", "2", "--crop", "ten" if ten else "center"] + paths
        out = subprocess.run(cmd, check=True, capture_output=True, text=True)
        rows = [json.loads(line) for line in out.stdout.splitlines()]
        if len(rows) != len(paths):
            print(f"expected {len(paths)} results, got {len(rows)}:\n{out.stdout}\n{out.stderr}")
            return 1
        for path, row in zip(paths, rows):
            p = torch_probs(model, path, ten)
            top = torch.topk(p, 5)
            want_cls = top.indices.tolist()
            want_p = top.values.tolist()
            gaps = [want_p[i] - want_p[i + 1] for i in range(4)]
            got_cls = [t["class"] for t in row["top"]]
            got_p = [t["prob"] for t in row["top"]]
            err = max(abs(a - b) for a, b in zip(got_p, want_p))
            worst = max(worst, err)
            names_ok = all(t["name"] == f"synset{t['class']:04d}" for t in row["top"])
            ok = row["file"] == path and got_cls == want_cls and err <= TOL and names_ok
            print(f"{'ten-crop' if ten else 'centre  '} {os.path.basename(path)}: torchvision top-5 {want_cls} "
                  f"p {[round(v, 5) for v in want_p]} (smallest gap {min(gaps):.2e}); classify {got_cls}; "
                  f"max |dp| {err:.2e}  {'PASS' if ok else 'FAIL'}")
            misses += not ok
    print(f"worst probability difference {worst:.3e} (tolerance {TOL})")
    return 1 if misses else 0


if __name__ == "__main__":
    sys.exit(main())
