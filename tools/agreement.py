#!/usr/bin/python3
"""Agreement with PyTorch: runs this project's agreement_dump for a model and each class count, does the
same computation in PyTorch (Debian's python3-torch, CPU, float32), and compares every tensor.

Per class count, from the weights agreement_dump initialised (the model's own scheme and the seed) and
its batch of 4 images (uniform; standard deviation 1, or 60 for alexnet: see INPUT_STD):
  - the weights load into the PyTorch model (strict) and serialise back to the same bytes;
  - logits and loss of a forward with dropout off (model.eval()), end to end;
  - each layer's output, PyTorch's layer applied to the project's input of that layer;
  - every parameter gradient;
  - the loss of each of --steps SGD steps (torch.optim.SGD, lr 0.01, momentum 0.9, weight decay 5e-4),
    end to end, and every parameter after them.
The backward passes replay the project's forward values (agreement_dump's acts.<k>.safetensors): PyTorch
computes each layer's gradients itself, but on the same activations, so max-pool and ReLU take the same
decisions. Without that, values within float rounding of a decision route a gradient elsewhere in one of
the two (PyTorch fp32 against PyTorch fp64 differ by up to 2e-2 on conv1's weight gradient that way), and
the comparison would measure that luck, not the arithmetic.

A tensor passes when max|here - torch| <= rtol * max|torch| + atol, 1e-4 and 1e-7 (--rtol, --atol). With --torchvision (default for
alexnet-tv) a torchvision AlexNet state_dict with random weights goes through `alexnet_torch.py
to-safetensors` into the C net, must give torchvision's logits, loss and gradients, and comes back out
(`alexnet_torch.py to-pth`) bit-exactly. Prints each tensor's worst error; exits 1 on any miss.

  agreement.py --exe build/tests/agreement/agreement_dump --model alexnet --classes 10 1000
"""
import argparse
import math
import os
import shutil
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

try:
    import torch
    import torch.nn as nn
    import torch.nn.functional as F
except ImportError as e:  # a missing torch is a failure, not a skip
    print(f"agreement: cannot import torch ({e}); run with /usr/bin/python3 and apt-get install "
          "python3-torch python3-torchvision", file=sys.stderr)
    sys.exit(1)

import alexnet_torch as bridge  # noqa: E402

# The issue asks for 1e-3 relative + 1e-5; the replayed comparison holds 1e-4 + 1e-7 with 10x to spare
# (worst seen 1.1e-5: a parameter's change over 5 steps, where one float ulp of the parameter shows).
RTOL, ATOL = 1e-4, 1e-7
LR, MOMENTUM, WEIGHT_DECAY = 0.01, 0.9, 5e-4
# The paper's inputs are raw pixels minus the mean (standard deviation about 60), the scale its LRN
# constants (k 2, alpha 1e-4) were chosen for. With unit-variance inputs alpha/5 * sum(x^2) is 1e-6 of k:
# LRN would be the constant factor 2^-0.75 and no error in its normalisation term could show.
INPUT_STD = {"alexnet": 60.0, "alexnet-half": 1.0, "alexnet-tv": 1.0}


class Report:
    def __init__(self, rtol, atol):
        self.rtol, self.atol = rtol, atol
        self.misses = []
        self.worst_rel = {}  # (case, "values" | "changes") -> (relative error, tensor)

    def compare(self, case, name, here, torch_value, extra_atol=0.0):
        """max|here - torch| against rtol * max|torch| + atol (+ extra_atol); prints one line."""
        a = here.detach().to(torch.float64).reshape(-1)
        b = torch_value.detach().to(torch.float64).reshape(-1)
        if a.shape != b.shape:
            print(f"  {name:36s} FAIL shapes differ: here {list(here.shape)}, torch {list(torch_value.shape)}")
            self.misses.append(f"{case} {name}")
            return
        diff = (a - b).abs()
        diff[~torch.isfinite(diff)] = float("inf")
        i = int(diff.argmax()) if diff.numel() else 0
        worst = float(diff[i]) if diff.numel() else 0.0
        scale = float(b.abs().max()) if b.numel() else 0.0
        ok = worst <= self.rtol * scale + self.atol + extra_atol
        rel = worst / scale if scale > 0 else worst
        here_i, torch_i = (float(a[i]), float(b[i])) if a.numel() else (0.0, 0.0)
        print(f"  {name:36s} n={b.numel():<9d} max|torch|={scale:<10.4g} worst={worst:<10.3g} rel={rel:<9.2e} "
              f"at [{i}] here {here_i:.8g} torch {torch_i:.8g}  {'PASS' if ok else 'FAIL'}")
        if not ok:
            self.misses.append(f"{case} {name}")
        key = (case, "changes" if extra_atol else "values")
        if rel > self.worst_rel.get(key, (-1.0, ""))[0]:
            self.worst_rel[key] = (rel, name)

    def check(self, case, what, ok):
        print(f"  {what:36s} {'PASS' if ok else 'FAIL'}")
        if not ok:
            self.misses.append(f"{case} {what}")


def float_ulp(x):
    """The spacing of float32 numbers at magnitude x."""
    return 0.0 if x <= 0 else torch.finfo(torch.float32).eps * 2.0 ** math.floor(math.log2(x))


def bits_equal(a, b):
    return a.dtype == b.dtype and a.shape == b.shape and torch.equal(a.contiguous().view(torch.int32),
                                                                     b.contiguous().view(torch.int32))


def run_dump(exe, out, model, classes, steps, seed, input_std, weights=None):
    os.makedirs(out, exist_ok=True)
    cmd = [exe, "--model", model, "--classes", str(classes), "--out", out, "--steps", str(steps),
           "--seed", str(seed), "--input-std", str(input_std)]
    if weights:
        cmd += ["--weights", weights]
    print("$ " + " ".join(cmd), flush=True)
    subprocess.run(cmd, check=True)


def read(out, name):
    return bridge.read_safetensors(os.path.join(out, name))[0]


def layer_groups(net):
    """The modules in forward order, grouped as the C net's layers: a conv or linear and the ReLU after it
    are one layer (the C code fuses them); every other module is a layer of its own."""
    mods = list(net.features) + [net.avgpool] + list(net.classifier)
    groups, i = [], 0
    while i < len(mods):
        fused = isinstance(mods[i], (nn.Conv2d, nn.Linear)) and i + 1 < len(mods) and isinstance(mods[i + 1], nn.ReLU)
        groups.append(mods[i:i + 2] if fused else mods[i:i + 1])
        i += 2 if fused else 1
    return groups


def replayed_forward(net, images, acts, dtype, report=None, case=None):
    """The forward graph of net, each layer's value replaced by the project's (acts["act.<i>"]) while its
    gradient flows through PyTorch's own layer; ReLU masks are the project's. Returns the logits.
    With report, compares each layer's PyTorch output (on the project's input) with the project's."""
    groups = layer_groups(net)
    if len(groups) != len(acts):
        raise RuntimeError(f"the PyTorch model has {len(groups)} layers, the project's {len(acts)}")
    h = images
    for i, group in enumerate(groups):
        c = acts[f"act.{i}"].to(dtype)
        for m in group:
            if isinstance(m, nn.Linear) and h.dim() > 2:
                h = torch.flatten(h, 1)
            if isinstance(m, nn.ReLU):
                h = h * (c.reshape(h.shape) > 0)
            elif isinstance(m, nn.Dropout):
                assert not m.training
            else:
                h = m(h)
        c = c.reshape(h.shape)
        if report:
            kinds = "+".join(type(m).__name__ for m in group)
            report.compare(case, f"layer {i} {kinds}", c, h)
        h = h + (c - h).detach()
    return h


def agreement_case(report, exe, model, classes, workdir, steps, seed, double, input_std):
    case = f"{model}/{classes}"
    out = os.path.join(workdir, f"{model}-{classes}")
    print(f"\n== {case}: logits, loss, layers, gradients, {steps} SGD steps", flush=True)
    run_dump(exe, out, model, classes, steps, seed, input_std)
    weights, meta = bridge.read_safetensors(os.path.join(out, "weights.safetensors"))
    net = bridge.build(model, classes)
    net.load_state_dict(weights, strict=True)  # every name and shape of the C table
    # a file written by the project loads into PyTorch and comes back bit-exactly, byte for byte
    back = bridge.serialize_safetensors(net.state_dict(), meta)
    with open(os.path.join(out, "weights.safetensors"), "rb") as f:
        report.check(case, "weights C -> torch -> file: same bytes", f.read() == back)
    again, _ = bridge.parse_safetensors(back)
    report.check(case, "weights C -> torch: bit-exact", all(bits_equal(again[k], v) for k, v in weights.items()))

    dtype = torch.float64 if double else torch.float32
    batch = read(out, "batch.safetensors")
    images, labels = batch["images"].to(dtype), batch["labels"].long()
    net.to(dtype).eval()  # dropout off; gradients still on
    compare_step0(report, case, net, images, labels, dtype, out)

    opt = torch.optim.SGD(net.parameters(), lr=LR, momentum=MOMENTUM, weight_decay=WEIGHT_DECAY)
    losses = []
    for k in range(steps):
        with torch.no_grad():
            losses.append(float(F.cross_entropy(net(images), labels)))  # end to end
        net.zero_grad()
        F.cross_entropy(replayed_forward(net, images, read(out, f"acts.{k}.safetensors"), dtype), labels).backward()
        opt.step()
    after = read(out, "after.safetensors")
    report.compare(case, f"losses of {steps} steps", after["losses"], torch.tensor(losses, dtype=torch.float64))
    for name, p in net.named_parameters():
        report.compare(case, f"{name} after {steps} steps", after[name], p)
        # the change alone: a wrong update hides under max|parameter| in the line above. Each step rounds
        # the parameter to float, so the two sides may differ by one ulp of it per step.
        w0 = weights[name].to(torch.float64)
        report.compare(case, f"{name} change", after[name].to(torch.float64) - w0, p.detach().to(torch.float64) - w0,
                       extra_atol=steps * float_ulp(float(p.detach().abs().max())))
    return out


def compare_step0(report, case, net, images, labels, dtype, out):
    grads = read(out, "grads.safetensors")
    with torch.no_grad():
        logits = net(images)
    report.compare(case, "logits", grads["logits"], logits)
    report.compare(case, "loss", grads["loss"], F.cross_entropy(logits, labels))
    net.zero_grad()
    replayed = replayed_forward(net, images, read(out, "acts.0.safetensors"), dtype, report, case)
    F.cross_entropy(replayed, labels).backward()
    for name, p in net.named_parameters():
        report.compare(case, "d" + name, grads["grad." + name], p.grad)


def torchvision_case(report, exe, classes, workdir, seed, double):
    import torchvision
    case = f"torchvision/{classes}"
    out = os.path.join(workdir, f"torchvision-{classes}")
    os.makedirs(out, exist_ok=True)
    print(f"\n== {case}: a torchvision AlexNet state_dict in, the same logits, and back out", flush=True)
    torch.manual_seed(seed)
    tv = torchvision.models.alexnet(weights=None, num_classes=classes)
    pth, st = os.path.join(out, "torchvision.pth"), os.path.join(out, "torchvision.safetensors")
    torch.save(tv.state_dict(), pth)
    tool = os.path.join(HERE, "alexnet_torch.py")
    subprocess.run([sys.executable, tool, "to-safetensors", pth, st], check=True)
    run_dump(exe, out, "alexnet-tv", classes, 0, seed, INPUT_STD["alexnet-tv"], weights=st)
    here = read(out, "weights.safetensors")  # what the C net loaded, saved again
    sd = tv.state_dict()
    report.check(case, "torchvision -> C -> file: bit-exact",
                 list(here) == list(sd) and all(bits_equal(here[k], v) for k, v in sd.items()))
    back = os.path.join(out, "back.pth")
    subprocess.run([sys.executable, tool, "to-pth", os.path.join(out, "weights.safetensors"), back], check=True)
    tv2 = torchvision.models.alexnet(weights=None, num_classes=classes)
    tv2.load_state_dict(torch.load(back), strict=True)
    report.check(case, "C -> .pth -> torchvision: bit-exact",
                 all(bits_equal(v, sd[k]) for k, v in tv2.state_dict().items()))
    dtype = torch.float64 if double else torch.float32
    batch = read(out, "batch.safetensors")
    tv.to(dtype).eval()
    compare_step0(report, case, tv, batch["images"].to(dtype), batch["labels"].long(), dtype, out)
    return out


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--exe", required=True, help="agreement_dump")
    p.add_argument("--model", required=True, choices=bridge.MODELS)
    p.add_argument("--classes", type=int, nargs="+", default=[10, 1000])
    p.add_argument("--workdir", default="agreement-out")
    p.add_argument("--steps", type=int, default=5)
    p.add_argument("--seed", type=int, default=20121203)
    p.add_argument("--input-std", type=float, default=0.0,
                   help="standard deviation of the input pixels (default: 60 for alexnet, 1 otherwise)")
    p.add_argument("--double", action="store_true", help="run the PyTorch side in float64")
    p.add_argument("--torchvision", choices=("auto", "yes", "no"), default="auto",
                   help="the torchvision state_dict round trip (auto: with alexnet-tv)")
    p.add_argument("--rtol", type=float, default=RTOL)
    p.add_argument("--atol", type=float, default=ATOL)
    p.add_argument("--keep", action="store_true", help="keep the files of passing cases (kept on failure)")
    args = p.parse_args()
    report = Report(args.rtol, args.atol)
    for classes in args.classes:
        misses = len(report.misses)
        out = agreement_case(report, args.exe, args.model, classes, args.workdir, args.steps, args.seed, args.double,
                             args.input_std or INPUT_STD[args.model])
        if len(report.misses) == misses and not args.keep:
            shutil.rmtree(out)
    if args.torchvision == "yes" or (args.torchvision == "auto" and args.model == "alexnet-tv"):
        misses = len(report.misses)
        out = torchvision_case(report, args.exe, max(args.classes), args.workdir, args.seed + 1, args.double)
        if len(report.misses) == misses and not args.keep:
            shutil.rmtree(out)

    print(f"\nworst relative error (max|here - torch| / max|torch|), margin {args.rtol:g} relative + {args.atol:g}:")
    print("  (values: logits, loss, layer outputs, gradients, parameters; changes: each parameter's change over the"
          " steps, which also shows one float ulp of the parameter per step)")
    for (case, kind), (rel, name) in report.worst_rel.items():
        print(f"  {case:22s} {kind:8s} {rel:.2e}  ({name})")
    if report.misses:
        print(f"FAIL: {len(report.misses)} tensor(s) outside the margin or checks failed: "
              + ", ".join(report.misses[:10]) + (" ..." if len(report.misses) > 10 else ""))
        return 1
    print("PASS")
    return 0


if __name__ == "__main__":
    sys.exit(main())
