#!/usr/bin/python3
"""Trains a model of this project with PyTorch on Fashion-MNIST, with `alexnet train`'s recipe, so the
two can be compared on the same data (docs/BENCHMARKS.md, "Fashion-MNIST: this project vs PyTorch").

What is the same as `alexnet train --data fashion-mnist` (src/data/*.c, src/train/train_loop.c):
  model       tools/alexnet_torch.py's definition and init_like_c's schemes (not the C random numbers)
  split       --val-fraction of every class held out with the C code's splitmix64 shuffle: the same
              images as the C run with the same --seed
  statistics  mean/std/PCA over 10000 training images drawn as the C code draws them (same figures)
  base image  the 28x28 image scaled to --resize (default round(input·256/224)) with the C code's triangle filter
              (PIL-style bilinear when growing), rounded to uint8, grey copied to 3 channels
  training    random input x input crop (--crop centre: the centre), horizontal flip p=0.5 (--no-flip:
              none), PCA lighting (--pca-std, default 0.1, 0: off; on grey images
              the one non-zero eigenvalue shifts all three channels alike), (p/255 + light - mean) / std
  evaluation  the centre crop, no flip, no lighting
  optimiser   SGD, momentum and L2 weight decay on every tensor, biases included (PyTorch's formula,
              as cl/sgd.cl); mean cross-entropy; dropout 0.5 in the classifier
  schedule    the lr set before every step from the global step: cosine lr·(1 + cos(pi·step/total))/2,
              step (x0.1 at 1/3 and 2/3) or none, as an_lr_at
  batches     a fresh shuffle every epoch, full batches only
What differs: the random numbers (initial weights, shuffles, crops, dropout masks) come from torch's
generator, so the runs are two draws of the same recipe, not the same trajectory.

Writes OUT/log.jsonl in the C run's format (step and epoch lines) and OUT/last.safetensors (project
format, so `alexnet eval --weights OUT/last.safetensors` can check it too); prints the test top-1/top-5
of the last weights and the wall time.

  /usr/bin/python3 tools/torch_train.py --epochs 5 --batch 32 --lr 0.01 --input-size 63 --out runs/fm-torch
"""
import argparse
import gzip
import json
import math
import os
import struct
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import alexnet_torch  # noqa: E402

M64 = (1 << 64) - 1


# ---- the C code's random numbers (src/data/util.c), for the split and the statistics' subset ----

def mix(z):
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & M64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & M64
    return z ^ (z >> 31)


class CRng:
    def __init__(self, seed):
        self.state = mix((seed ^ 0x243F6A8885A308D3) & M64)

    def below(self, bound):
        self.state = (self.state + 0x9E3779B97F4A7C15) & M64
        v = int((mix(self.state) >> 11) * 2.0 ** -53 * bound)
        return v if v < bound else bound - 1

    def shuffle(self, v):
        for i in range(len(v) - 1, 0, -1):
            j = self.below(i + 1)
            v[i], v[j] = v[j], v[i]


def c_split(labels, fraction, seed):
    """an_dataset_split: per class, a seeded shuffle, the first round(fraction·m) to validation."""
    to_val = np.zeros(len(labels), dtype=bool)
    for c in range(int(labels.max()) + 1):
        members = [int(i) for i in np.nonzero(labels == c)[0]]
        CRng(seed ^ mix(c + 1)).shuffle(members)
        m = len(members)
        take = int(fraction * m + 0.5)
        if m >= 2 and take < 1:
            take = 1
        take = min(take, m - 1) if m > 0 else 0
        to_val[members[:take]] = True
    return np.nonzero(~to_val)[0], np.nonzero(to_val)[0]


def c_stats(images, max_images, seed):
    """an_data_stats_compute on grey images (each pixel counted in all three channels)."""
    pick = list(range(len(images)))
    if 0 < max_images < len(images):
        CRng(seed ^ 0x57A75).shuffle(pick)
        pick = sorted(pick[:max_images])
    px = images[pick].astype(np.float64).ravel()
    mean = px.mean() / 255.0
    var = (px * px).mean() / 255.0 ** 2 - mean * mean
    cov = np.full((3, 3), var)
    eigval, eigvec = np.linalg.eigh(cov)
    order = np.argsort(-eigval)
    eigval, eigvec = np.clip(eigval[order], 0, None), eigvec[:, order].T  # eigvec[k] = k-th vector
    for k in range(3):  # the largest-magnitude component positive, as an_eigen_sym3
        if eigvec[k][np.argmax(np.abs(eigvec[k]))] < 0:
            eigvec[k] = -eigvec[k]
    return {"mean": [float(mean)] * 3, "std": [math.sqrt(max(float(var), 0))] * 3, "eigval": eigval.tolist(),
            "eigvec": eigvec.tolist(), "images": len(pick)}


# ---- data ----

def read_idx(path):
    data = open(path, "rb").read()
    if data[:2] == b"\x1f\x8b":
        data = gzip.decompress(data)
    magic, = struct.unpack(">I", data[:4])
    dims = magic & 0xFF
    shape = struct.unpack(">" + "I" * dims, data[4:4 + 4 * dims])
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * dims).reshape(shape)


def fashion_mnist(root, train):
    pre = "train" if train else "t10k"
    find = lambda name: next(p for p in (os.path.join(root, name), os.path.join(root, name + ".gz"))
                             if os.path.exists(p))
    return (read_idx(find(f"{pre}-images-idx3-ubyte")), read_idx(find(f"{pre}-labels-idx1-ubyte")).astype(np.int64))


def axis_weights(n_in, n_out, scale, offset):
    """src/data/image.c's axis_plan as an (n_out, n_in) matrix: triangle filter, support 1 when growing
    and 1/scale when shrinking, clipped to the image and renormalised."""
    support = 1.0 / scale if scale < 1.0 else 1.0
    w = np.zeros((n_out, n_in), dtype=np.float64)
    for o in range(n_out):
        centre = (o + offset + 0.5) / scale
        lo, hi = max(int(math.floor(centre - support)), 0), min(int(math.ceil(centre + support)), n_in - 1)
        for j in range(lo, hi + 1):
            t = abs(j + 0.5 - centre) / support
            w[o, j] = 1.0 - t if t < 1.0 else 0.0
        if w[o].sum() <= 0:
            w[o, min(max(int(math.floor(centre)), 0), n_in - 1)] = 1.0
        w[o] /= w[o].sum()
    return torch.from_numpy(w.astype(np.float32))


def base_images(images, side):
    """(N, H, W) uint8 -> (N, side, side) uint8: short side to `side`, centre square (square inputs here)."""
    n, h, w = images.shape
    if h == side and w == side:
        return torch.from_numpy(images.copy())
    s = side / min(w, h)
    rw, rh = max(int(math.floor(w * s + 0.5)), side), max(int(math.floor(h * s + 0.5)), side)
    wx, wy = axis_weights(w, side, rw / w, (rw - side) // 2), axis_weights(h, side, rh / h, (rh - side) // 2)
    out = torch.empty((n, side, side), dtype=torch.uint8)
    for i in range(0, n, 4096):
        x = torch.from_numpy(images[i:i + 4096].astype(np.float32))
        v = wy @ (x @ wx.T)  # horizontal pass, then vertical
        out[i:i + 4096] = (v.clamp(0, 255) + 0.5).to(torch.uint8)
    return out


def make_batch(base, idx, input_size, stats, pca_std, train, gen, random_crop=True, flip_ok=True):
    """(B, 3, I, I) floats: crop (random or centre), flip, lighting, normalisation, as an_preprocess_into."""
    b, side = len(idx), base.shape[1]
    imgs = base[idx].float()  # (B, S, S)
    mean = torch.tensor(stats["mean"], dtype=torch.float32).view(1, 3, 1, 1)
    std = torch.tensor(stats["std"], dtype=torch.float32).view(1, 3, 1, 1)
    if train:
        x0 = torch.randint(0, side - input_size + 1, (b,), generator=gen)
        y0 = torch.randint(0, side - input_size + 1, (b,), generator=gen)
        if not random_crop:
            x0 = y0 = torch.full((b,), (side - input_size) // 2)
        flip = torch.rand(b, generator=gen) < 0.5
        if not flip_ok:
            flip = torch.zeros(b, dtype=torch.bool)
        ar = torch.arange(input_size)
        rows = (y0[:, None] + ar)[:, :, None].expand(b, input_size, input_size)
        cols = (x0[:, None] + ar)
        cols = torch.where(flip[:, None], cols.flip(1), cols)[:, None, :].expand(b, input_size, input_size)
        crop = imgs[torch.arange(b)[:, None, None], rows, cols]
        alpha = torch.randn(b, 3, generator=gen, dtype=torch.float64) * pca_std
        eigval = torch.tensor(stats["eigval"], dtype=torch.float64)
        eigvec = torch.tensor(stats["eigvec"], dtype=torch.float64)  # (k, c)
        light = ((alpha * eigval) @ eigvec).float().view(b, 3, 1, 1)  # Σ_k eigvec[k][c]·α_k·eigval[k]
    else:
        o = (side - input_size) // 2
        crop = imgs[:, o:o + input_size, o:o + input_size]
        light = torch.zeros(b, 3, 1, 1)
    x = crop[:, None].expand(b, 3, input_size, input_size) / 255.0
    return ((x + light - mean) / std).contiguous()


def lr_at(schedule, base_lr, step, total):
    t = step / total if total > 0 else 0.0
    if schedule == "step":
        return base_lr * (0.01 if t >= 2.0 / 3 else 0.1 if t >= 1.0 / 3 else 1.0)
    if schedule == "cosine":
        return base_lr * 0.5 * (1.0 + math.cos(math.pi * min(t, 1.0)))
    return base_lr


@torch.no_grad()
def evaluate(model, base, labels, input_size, stats, batch):
    model.eval()
    top1 = top5 = 0
    for i in range(0, len(labels), batch):
        idx = torch.arange(i, min(i + batch, len(labels)))
        logits = model(make_batch(base, idx, input_size, stats, 0.0, False, None))
        y = labels[idx]
        # rank of the true class as an_evaluate counts it: higher, or equal with a lower index
        ly = logits.gather(1, y[:, None])
        cls = torch.arange(logits.shape[1])[None, :]
        rank = ((logits > ly) | ((logits == ly) & (cls < y[:, None]))).sum(1)
        top1 += int((rank == 0).sum())
        top5 += int((rank < 5).sum())
    model.train()
    return top1 / len(labels), top5 / len(labels)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog="\n\n".join(__doc__.split("\n\n")[1:]))
    ap.add_argument("--model", default="alexnet-half", choices=alexnet_torch.MODELS[:2])
    ap.add_argument("--data", default=os.environ.get("ALEXNET_FASHION_MNIST", "/usr/share/datasets/fashion-mnist"),
                    help="folder of the Fashion-MNIST IDX files (default: $ALEXNET_FASHION_MNIST or Debian's)")
    ap.add_argument("--val-fraction", type=float, default=0.1, help="held out of the training set (0: none)")
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--max-steps", type=int, default=0, help="stop after N steps; the schedule spans them")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--lr", type=float, default=0.01)
    ap.add_argument("--momentum", type=float, default=0.9)
    ap.add_argument("--weight-decay", type=float, default=5e-4)
    ap.add_argument("--lr-schedule", default="cosine", choices=("step", "cosine", "none"))
    ap.add_argument("--input-size", type=int, default=63)
    ap.add_argument("--augment", default="default", choices=("default", "paper", "none"),
                    help="preset, as alexnet train's (the options below change single settings)")
    ap.add_argument("--resize", type=int, default=None,
                    help="side of the base image the crops come from (default round(input·256/224))")
    ap.add_argument("--crop", default=None, choices=("random", "centre", "center"), help="training crop")
    ap.add_argument("--no-flip", action="store_true", help="no horizontal flips in training")
    ap.add_argument("--pca-std", type=float, default=None, help="PCA lighting std (default 0.1; 0: off)")
    ap.add_argument("--norm", default=None, choices=("mean_std", "mean-std", "mean", "none"),
                    help="normalisation with the training set's statistics (default mean_std)")
    ap.add_argument("--stats-images", type=int, default=10000, help="images for mean/std (alexnet train's)")
    ap.add_argument("--seed", type=int, default=1, help="the split (as the C run's) and torch's generator")
    ap.add_argument("--threads", type=int, default=2, help="torch.set_num_threads")
    ap.add_argument("--log-every", type=int, default=200, help="steps between progress lines")
    ap.add_argument("--out", default="runs/fm-torch")
    args = ap.parse_args(argv)

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    gen = torch.Generator().manual_seed(args.seed + 1)
    os.makedirs(args.out, exist_ok=True)
    t_start = time.time()

    train_img, train_lab = fashion_mnist(args.data, True)
    test_img, test_lab = fashion_mnist(args.data, False)
    if args.val_fraction > 0:
        tr, va = c_split(train_lab, args.val_fraction, args.seed)
    else:
        tr, va = np.arange(len(train_lab)), np.arange(0)
    stats = c_stats(train_img[tr], args.stats_images, args.seed)
    # alexnet train's presets, then the single settings given
    aug = {"resize": int(math.floor(args.input_size * 256.0 / 224.0 + 0.5)), "random_crop": True, "flip": True,
           "pca_std": 0.1, "norm": "mean_std"}
    if args.augment == "paper":
        aug["norm"] = "mean"
    elif args.augment == "none":
        aug = {"resize": args.input_size, "random_crop": False, "flip": False, "pca_std": 0.0, "norm": "none"}
    if args.resize is not None:
        aug["resize"] = args.resize
    if args.crop is not None:
        aug["random_crop"] = args.crop == "random"
    if args.no_flip:
        aug["flip"] = False
    if args.pca_std is not None:
        aug["pca_std"] = args.pca_std
    if args.norm is not None:
        aug["norm"] = args.norm.replace("-", "_")
    side = aug["resize"]
    if not args.input_size <= side <= 4096 or not 0 <= aug["pca_std"] < 10:
        sys.exit(f"torch_train.py: need --input-size <= --resize <= 4096 (have {args.input_size}, {side}) "
                 f"and --pca-std in [0, 10)")
    bstats = dict(stats)  # what make_batch subtracts and divides by; stats stay the training set's (metadata)
    if aug["norm"] != "mean_std":
        bstats["std"] = [1.0] * 3
        if aug["norm"] == "none":
            bstats["mean"] = [0.0] * 3
    base_train, base_test = base_images(train_img, side), base_images(test_img, side)
    tr_t, va_t = torch.from_numpy(tr), torch.from_numpy(va)
    labels = torch.from_numpy(train_lab)
    test_labels = torch.from_numpy(test_lab)
    classes = int(train_lab.max()) + 1
    print(f"{args.model} (PyTorch {torch.__version__}, {args.threads} threads) on fashion-mnist: {len(tr)} training, "
          f"{len(va)} held-out validation, {len(test_lab)} test images; batch {args.batch}, input {args.input_size} "
          f"(base {side}); mean {stats['mean'][0]:.6f} std {stats['std'][0]:.6f}", flush=True)

    model = alexnet_torch.init_like_c(args.model, alexnet_torch.build(args.model, classes))
    model.train()
    opt = torch.optim.SGD(model.parameters(), lr=args.lr, momentum=args.momentum, weight_decay=args.weight_decay)
    bpe = len(tr) // args.batch
    total = min(args.max_steps, args.epochs * bpe) if args.max_steps > 0 else args.epochs * bpe
    log = open(os.path.join(args.out, "log.jsonl"), "w")
    step, t_train = 0, time.time()
    epoch = 0
    while step < total:
        order = tr_t[torch.randperm(len(tr_t), generator=gen)]
        loss_sum, n = 0.0, 0
        for s in range(bpe):
            if step >= total:
                break
            t0 = time.time()
            idx = order[s * args.batch:(s + 1) * args.batch]
            x = make_batch(base_train, idx, args.input_size, bstats, aug["pca_std"], True, gen,
                           aug["random_crop"], aug["flip"])
            lr = lr_at(args.lr_schedule, args.lr, step, total)
            for g in opt.param_groups:
                g["lr"] = lr
            loss = F.cross_entropy(model(x), labels[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            step += 1
            lv = float(loss)
            if not math.isfinite(lv):
                sys.exit(f"torch_train.py: the loss is {lv} at step {step} (lr {lr}): stopped")
            loss_sum, n = loss_sum + lv, n + 1
            log.write(json.dumps({"type": "step", "epoch": epoch, "step": step, "loss": lv, "lr": lr,
                                  "img_s": args.batch / (time.time() - t0)}) + "\n")
            if step % args.log_every == 0 or step == total:
                rate = step * args.batch / (time.time() - t_train)
                eta = (total - step) * args.batch / rate
                print(f"epoch {epoch + 1}/{args.epochs}  step {step}/{total}  loss {lv:.4f}  lr {lr:.3g}  "
                      f"{rate:.1f} img/s  ETA {eta / 60:.0f} min", flush=True)
        v1, v5 = evaluate(model, base_train[va_t], labels[va_t], args.input_size, bstats, 100) if len(va) else (-1, -1)
        log.write(json.dumps({"type": "epoch", "epoch": epoch, "step": step, "loss": loss_sum / max(n, 1),
                              "lr": lr, "val_top1": v1, "val_top5": v5}) + "\n")
        log.flush()
        print(f"epoch {epoch + 1} done: step {step}  mean loss {loss_sum / max(n, 1):.4f}  val top-1 {100 * v1:.2f}%  "
              f"top-5 {100 * v5:.2f}%", flush=True)
        epoch += 1
    t_trained = time.time() - t_start
    t1, t5 = evaluate(model, base_test, test_labels, args.input_size, bstats, 100)
    wall = time.time() - t_start
    meta = alexnet_torch.project_metadata(args.model, classes, args.input_size)
    meta["resize"] = str(side)
    meta["normalization"] = aug["norm"]
    meta["mean"] = ",".join(f"{v:.9g}" for v in stats["mean"])
    meta["std"] = ",".join(f"{v:.9g}" for v in stats["std"])
    alexnet_torch.write_safetensors(os.path.join(args.out, "last.safetensors"),
                                    {k: v.detach().contiguous() for k, v in model.state_dict().items()}, meta)
    log.write(json.dumps({"type": "test", "step": step, "test_top1": t1, "test_top5": t5,
                          "train_s": t_trained, "wall_s": wall}) + "\n")
    log.close()
    print(f"test (fashion-mnist:test, centre crop, last weights): top-1 {100 * t1:.2f}%  top-5 {100 * t5:.2f}%")
    print(f"wall time {wall:.1f} s (training and validation {t_trained:.1f} s); weights: {args.out}/last.safetensors")


if __name__ == "__main__":
    main()
