#!/usr/bin/python3
"""Weights as PyTorch users have them, through the command line: for each of the three models, random
weights of 7 classes written as safetensors.torch.save_file writes a state_dict (no __metadata__; the
bridge's `random --plain`, save_file's bytes) must

  1. eval without --model (the model and the classes come from the shapes; classify is onnx_roundtrip's),
     and classify and eval with a wrong --model fail naming the tensor and both shapes;
  2. serve as `train --init` on a 4-class folder dataset without --model: the start lists the 14 tensors
     loaded and the last layer's two initialised fresh, with both shapes; a wrong --model is refused.

Then a file that fits no model (conv2's weight left out): classify refuses it naming the tensor of each
model; `train --init` without --model refuses and says to give one, with --model loads the 13 tensors
that fit. --init with --resume is a usage error; --freeze-features on two devices is refused. Exits 1 on
any difference.

  cli_weights.py --exe build/alexnet --workdir /tmp/cw
"""
import argparse
import os
import random
import re
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
TOOLS = os.path.join(HERE, "..", "tools")
sys.path.insert(0, HERE)
sys.path.insert(0, TOOLS)
from cli_classify import COLOURS, picture, write_png  # noqa: E402

try:
    import torch  # noqa: F401
    import alexnet_torch as at  # noqa: E402
except ImportError as e:  # a missing torch is a failure, not a skip
    print(f"cli_weights: cannot import torch ({e}): run with /usr/bin/python3, apt-get install python3-torch")
    sys.exit(1)

CONV1 = {"alexnet": "[96,3,11,11]", "alexnet-half": "[48,3,11,11]", "alexnet-tv": "[64,3,11,11]"}
FC8_IN = {"alexnet": 4096, "alexnet-half": 2048, "alexnet-tv": 4096}
FAILS = []


def run(cmd, expect, env=None):
    p = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if p.returncode != expect:
        FAILS.append(f"{' '.join(cmd)} exited {p.returncode}, expected {expect}\n{p.stdout}\n{p.stderr}")
    return p


def expect_in(what, text, *words):
    missing = [w for w in words if w not in text]
    print(f"  {'FAIL' if missing else 'ok  '} {what}")
    if missing:
        FAILS.append(f"{what}: {missing} not in:\n{text}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--exe", required=True)
    ap.add_argument("--workdir", required=True)
    args = ap.parse_args()
    w = args.workdir
    os.makedirs(w, exist_ok=True)
    rng = random.Random(1)
    data = os.path.join(w, "colours")
    for name, colour in COLOURS.items():
        os.makedirs(os.path.join(data, name), exist_ok=True)
        for i in range(4):
            write_png(os.path.join(data, name, f"{i}.png"), 72, 72, picture(colour, rng))
    image = os.path.join(data, "red", "0.png")
    small = ["--input-size", "63"]
    for model in at.MODELS:
        print(model)
        plain = os.path.join(w, f"{model}.safetensors")
        subprocess.run([sys.executable, os.path.join(TOOLS, "alexnet_torch.py"), "random", model, plain, "--classes",
                        "7", "--plain"], check=True)
        with open(plain, "rb") as f:
            n = int.from_bytes(f.read(8), "little")
            expect_in("no __metadata__ in the file", "absent" if b"__metadata__" not in f.read(n) else "there",
                      "absent")
        other = "alexnet-half" if model != "alexnet-half" else "alexnet-tv"
        p = run([args.exe, "classify", "--weights", plain, "--model", other] + small + [image], 1)
        expect_in("classify --model other: the tensor and both shapes", p.stderr, "tensor features.0.weight has shape",
                  CONV1[model], f"model {other} needs {CONV1[other]}", f"the file holds {model} weights (7 classes)")
        p = run([args.exe, "eval", "--weights", plain, "--data", data, "--batch", "8"] + small, 0)
        expect_in("eval: model and classes from the shapes", p.stdout, f"({model}, 7 classes", "top-1")
        p = run([args.exe, "eval", "--weights", plain, "--data", data, "--model", other] + small, 1)
        expect_in("eval --model other refused", p.stderr, "features.0.weight", CONV1[model], CONV1[other])
        out = os.path.join(w, f"run-{model}")
        p = run([args.exe, "train", "--init", plain, "--data", data, "--val-fraction", "0", "--batch", "4",
                 "--max-steps", "1", "--out", out] + small, 0)
        expect_in("train --init: the model, the tensors loaded and those fresh", p.stdout,
                  f"{model} weights, 7 classes", f"{model} on {data}", "init: 14 of 16 tensors loaded",
                  f"classifier.6.weight not loaded, initialised fresh: the file's is [7,{FC8_IN[model]}], the "
                  f"model's [4,{FC8_IN[model]}]", "classifier.6.bias not loaded, initialised fresh")
        p = run([args.exe, "train", "--init", plain, "--model", other, "--data", data, "--out", out] + small, 1)
        expect_in("train --init --model other refused", p.stderr, "features.0.weight", CONV1[model], CONV1[other])

    print("a file that fits no model")
    sd, _ = at.read_safetensors(os.path.join(w, "alexnet-half.safetensors"))
    del sd["features.3.weight"]
    partial = os.path.join(w, "partial.safetensors")
    at.write_safetensors(partial, sd)
    p = run([args.exe, "classify", "--weights", partial] + small + [image], 1)
    expect_in("classify refuses it, each model's reason", p.stderr, "fit none of the models",
              "tensor features.3.weight is missing (model alexnet-half needs [128,48,5,5])",
              f"model alexnet needs {CONV1['alexnet']}")
    out = os.path.join(w, "run-partial")
    p = run([args.exe, "train", "--init", partial, "--data", data, "--out", out] + small, 1)
    expect_in("train --init without --model: refused, asks for --model", p.stderr, "fit none of the models",
              "give --model")
    p = run([args.exe, "train", "--init", partial, "--model", "alexnet-half", "--data", data, "--val-fraction", "0",
             "--batch", "4", "--max-steps", "1", "--out", out] + small, 0)
    expect_in("train --init --model: the tensors that fit", p.stdout, "init: 13 of 16 tensors loaded",
              "init: features.3.weight not loaded, initialised fresh: the file has none")
    p = run([args.exe, "train", "--init", partial, "--resume", "--out", out], 2)
    expect_in("--init with --resume: a usage error", p.stderr, "give one of them")
    env = dict(os.environ, POCL_DEVICES="pthread pthread", POCL_MAX_PTHREAD_COUNT="1")
    p = run([args.exe, "train", "--init", os.path.join(w, "alexnet-half.safetensors"), "--freeze-features", "--data",
             data, "--device", "0:0,0:1", "--batch", "4", "--max-steps", "1", "--out", out + "2"] + small, 1, env)
    expect_in("--freeze-features on two devices refused", p.stderr, "--freeze-features runs on one device")
    for f in FAILS:
        print("FAIL:", f)
    print("cli_weights:", "FAIL" if FAILS else "PASS")
    return 1 if FAILS else 0


if __name__ == "__main__":
    sys.exit(main())
