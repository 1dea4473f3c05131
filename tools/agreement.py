#!/usr/bin/python3
"""Agreement with PyTorch: runs this project's agreement_dump for a model and each class count, does the
same computation in PyTorch, and compares every tensor.

Per class count: the weights agreement_dump initialised (the model's init, biases redrawn from
U(-0.1, 0.1): see --bias-uniform), loaded into the PyTorch model strictly and written back bit-exactly;
its batch; then logits, loss and every parameter gradient of one forward with
dropout off (model.eval(), gradients on) and its backward; then the loss of each of --steps SGD steps
(torch.optim.SGD lr 0.01, momentum 0.9, weight decay 5e-4) and every parameter after them. A tensor
passes when max|here - torch| <= 1e-3 * max|torch| + 1e-5. With --torchvision (default for alexnet-tv)
a torchvision AlexNet state_dict with random weights goes through `alexnet_torch.py to-safetensors`
into the C net, must give torchvision's logits, loss and gradients, and comes back out
(`alexnet_torch.py to-pth`) bit-exactly. Prints each tensor's worst error; exits 1 on any miss.

  agreement.py --exe build/tests/agreement/agreement_dump --model alexnet --classes 10 1000
"""
import argparse
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

try:
    import torch
    import torch.nn.functional as F
except ImportError as e:  # a missing torch is a failure, not a skip
    print(f"agreement: cannot import torch ({e}); run with /usr/bin/python3 and apt-get install "
          "python3-torch python3-torchvision", file=sys.stderr)
    sys.exit(1)

import alexnet_torch as bridge  # noqa: E402

RTOL, ATOL = 1e-3, 1e-5
LR, MOMENTUM, WEIGHT_DECAY = 0.01, 0.9, 5e-4


class Report:
    def __init__(self):
        self.misses = []
        self.worst_rel = {}  # case -> (relative error, tensor)

    def compare(self, case, name, here, torch_value):
        """max|here - torch| against RTOL * max|torch| + ATOL; prints one line."""
        a = here.detach().to(torch.float64).reshape(-1)
        b = torch_value.detach().to(torch.float64).reshape(-1)
        if a.shape != b.shape:
            print(f"  {name:34s} FAIL shapes differ: here {list(here.shape)}, torch {list(torch_value.shape)}")
            self.misses.append(f"{case} {name}")
            return
        diff = (a - b).abs()
        diff[~torch.isfinite(diff)] = float("inf")
        i = int(diff.argmax()) if diff.numel() else 0
        worst = float(diff[i]) if diff.numel() else 0.0
        scale = float(b.abs().max()) if b.numel() else 0.0
        tol = RTOL * scale + ATOL
        ok = worst <= tol
        rel = worst / scale if scale > 0 else worst
        print(f"  {name:34s} n={b.numel():<9d} max|torch|={scale:<10.4g} worst={worst:<10.3g} rel={rel:<9.2e} "
              f"at [{i}] here {float(a[i]) if a.numel() else 0:.8g} torch {float(b[i]) if b.numel() else 0:.8g}  "
              f"{'PASS' if ok else 'FAIL'}")
        if not ok:
            self.misses.append(f"{case} {name}")
        if rel > self.worst_rel.get(case, (-1.0, ""))[0]:
            self.worst_rel[case] = (rel, name)

    def check(self, case, what, ok):
        print(f"  {what:34s} {'PASS' if ok else 'FAIL'}")
        if not ok:
            self.misses.append(f"{case} {what}")


def bits_equal(a, b):
    return a.dtype == b.dtype and a.shape == b.shape and torch.equal(a.contiguous().view(torch.int32),
                                                                     b.contiguous().view(torch.int32))


def run_dump(exe, out, model, classes, steps, seed, weights=None, bias_uniform=0.0):
    os.makedirs(out, exist_ok=True)
    cmd = [exe, "--model", model, "--classes", str(classes), "--out", out, "--steps", str(steps),
           "--seed", str(seed)]
    if weights:
        cmd += ["--weights", weights]
    if bias_uniform:
        cmd += ["--bias-uniform", str(bias_uniform)]
    print("$ " + " ".join(cmd), flush=True)
    subprocess.run(cmd, check=True)


def forward_backward(net, images, labels):
    net.zero_grad()
    logits = net(images)
    loss = F.cross_entropy(logits, labels)
    loss.backward()
    return logits, loss


def compare_grads(report, case, net, logits, loss, grads):
    report.compare(case, "logits", grads["logits"], logits)
    report.compare(case, "loss", grads["loss"], loss)
    for name, p in net.named_parameters():
        report.compare(case, "d" + name, grads["grad." + name], p.grad)


def read(out, name):
    return bridge.read_safetensors(os.path.join(out, name))


def agreement_case(report, exe, model, classes, workdir, steps, seed, double, bias_uniform):
    case = f"{model}/{classes}"
    out = os.path.join(workdir, f"{model}-{classes}")
    print(f"\n== {case}: logits, loss, gradients, {steps} SGD steps", flush=True)
    run_dump(exe, out, model, classes, steps, seed, bias_uniform=bias_uniform)
    weights, meta = read(out, "weights.safetensors")
    net = bridge.build(model, classes)
    net.load_state_dict(weights, strict=True)  # every name and shape of the C table
    # a file written by the project loads into PyTorch and comes back bit-exactly, byte for byte
    back = bridge.serialize_safetensors(net.state_dict(), meta)
    with open(os.path.join(out, "weights.safetensors"), "rb") as f:
        report.check(case, "weights C -> torch -> file: same bytes", f.read() == back)
    again, _ = bridge.parse_safetensors(back)
    report.check(case, "weights C -> torch: bit-exact", all(bits_equal(again[k], v) for k, v in weights.items()))

    batch, _ = read(out, "batch.safetensors")
    images, labels = batch["images"], batch["labels"].long()
    if double:
        net.double()
        images = images.double()
    net.eval()  # dropout off; gradients still on
    logits, loss = forward_backward(net, images, labels)
    grads, _ = read(out, "grads.safetensors")
    compare_grads(report, case, net, logits, loss, grads)

    opt = torch.optim.SGD(net.parameters(), lr=LR, momentum=MOMENTUM, weight_decay=WEIGHT_DECAY)
    losses = []
    for k in range(steps):
        if k > 0:
            _, loss = forward_backward(net, images, labels)
        losses.append(float(loss))
        opt.step()
    after, _ = read(out, "after.safetensors")
    report.compare(case, f"losses of {steps} steps", after["losses"], torch.tensor(losses, dtype=torch.float64))
    for name, p in net.named_parameters():
        report.compare(case, f"{name} after {steps} steps", after[name], p)


def torchvision_case(report, exe, classes, workdir, seed):
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
    run_dump(exe, out, "alexnet-tv", classes, 0, seed, weights=st)
    here, _ = read(out, "weights.safetensors")  # what the C net loaded, saved again
    sd = tv.state_dict()
    report.check(case, "torchvision -> C -> file: bit-exact",
                 list(here) == list(sd) and all(bits_equal(here[k], v) for k, v in sd.items()))
    back = os.path.join(out, "back.pth")
    subprocess.run([sys.executable, tool, "to-pth", os.path.join(out, "weights.safetensors"), back], check=True)
    tv2 = torchvision.models.alexnet(weights=None, num_classes=classes)
    tv2.load_state_dict(torch.load(back), strict=True)
    report.check(case, "C -> .pth -> torchvision: bit-exact",
                 all(bits_equal(v, sd[k]) for k, v in tv2.state_dict().items()))

    batch, _ = read(out, "batch.safetensors")
    tv.eval()
    logits, loss = forward_backward(tv, batch["images"], batch["labels"].long())
    compare_grads(report, case, tv, logits, loss, read(out, "grads.safetensors")[0])


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--exe", required=True, help="agreement_dump")
    p.add_argument("--model", required=True, choices=bridge.MODELS)
    p.add_argument("--classes", type=int, nargs="+", default=[10, 1000])
    p.add_argument("--workdir", default="agreement-out")
    p.add_argument("--steps", type=int, default=5)
    p.add_argument("--seed", type=int, default=20121203)
    p.add_argument("--double", action="store_true", help="run the PyTorch side in float64")
    p.add_argument("--bias-uniform", type=float, default=0.1,
                   help="biases drawn from U(-B, B) instead of the model's constants (0: keep them); see "
                        "agreement_dump.c: the paper's biases of 1 make max-pool decisions hinge on rounding")
    p.add_argument("--torchvision", choices=("auto", "yes", "no"), default="auto",
                   help="the torchvision state_dict round trip (auto: with alexnet-tv)")
    args = p.parse_args()
    torch.manual_seed(args.seed)
    report = Report()
    for classes in args.classes:
        agreement_case(report, args.exe, args.model, classes, args.workdir, args.steps, args.seed, args.double,
                       args.bias_uniform)
    if args.torchvision == "yes" or (args.torchvision == "auto" and args.model == "alexnet-tv"):
        torchvision_case(report, args.exe, max(args.classes), args.workdir, args.seed + 1)

    print(f"\nworst relative error (max|here - torch| / max|torch|), margin {RTOL:g} relative + {ATOL:g}:")
    for case, (rel, name) in report.worst_rel.items():
        print(f"  {case:22s} {rel:.2e}  ({name})")
    if report.misses:
        print(f"FAIL: {len(report.misses)} tensor(s) outside the margin or checks failed: "
              + ", ".join(report.misses[:10]) + (" ..." if len(report.misses) > 10 else ""))
        return 1
    print("PASS")
    return 0


if __name__ == "__main__":
    sys.exit(main())
