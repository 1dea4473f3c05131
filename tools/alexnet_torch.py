#!/usr/bin/python3
"""The PyTorch side of this project: the three AlexNets with the C code's tensor names, safetensors by
hand (json + struct + torch.frombuffer, no extra package), and conversion of state_dicts both ways.

Models (src/model/models.c is the reference; every model ends its features with AdaptiveAvgPool2d(6)):
  alexnet       the 2012 paper: 96-256-384-384-256 convs, groups=2 at conv2/4/5, LRN(5, 1e-4, 0.75, 2)
                after the conv1 and conv2 ReLUs, FC 4096-4096-K; features.0/4/8/10/12, classifier.1/4/6
  alexnet-half  one column, the tutorial's model: 48-128-192-192-128, FC 2048-2048-K;
                features.0/3/6/8/10, classifier.1/4/6
  alexnet-tv    torchvision.models.alexnet: 64-192-384-256-256, FC 4096-4096-K

Command line (run with /usr/bin/python3, Debian's python3-torch):
  alexnet_torch.py to-safetensors IN.pth OUT.safetensors [--model M] [--classes K]
  alexnet_torch.py to-pth IN.safetensors OUT.pth [--model M]
  alexnet_torch.py random MODEL OUT.{pth,safetensors} [--classes K] [--seed S] [--plain]
  alexnet_torch.py to-onnx IN.safetensors OUT.onnx [--model M] [--input-size S] [--opset N]
  alexnet_torch.py info FILE
  alexnet_torch.py selftest
"""
import argparse
import collections
import ctypes
import json
import math
import os
import struct
import sys
import tempfile

import torch
import torch.nn as nn

MODELS = ("alexnet", "alexnet-half", "alexnet-tv")
FORMAT_NAME = "alexnet-opencl"
FORMAT_VERSION = 1

# ---------------------------------------------------------------------------------------------------
# models


class AlexNet(nn.Module):
    """features -> AdaptiveAvgPool2d(6) -> flatten -> classifier, as every model in models.c."""

    def __init__(self, features, classifier):
        super().__init__()
        self.features = features
        self.avgpool = nn.AdaptiveAvgPool2d((6, 6))
        self.classifier = classifier

    def forward(self, x):
        x = self.avgpool(self.features(x))
        return self.classifier(torch.flatten(x, 1))


def _classifier(in_features, hidden, num_classes):
    return nn.Sequential(
        nn.Dropout(p=0.5), nn.Linear(in_features, hidden), nn.ReLU(inplace=True),
        nn.Dropout(p=0.5), nn.Linear(hidden, hidden), nn.ReLU(inplace=True),
        nn.Linear(hidden, num_classes))


def alexnet_paper(num_classes=1000):
    """Krizhevsky et al. 2012, the two columns as groups=2 convolutions."""
    lrn = lambda: nn.LocalResponseNorm(5, alpha=1e-4, beta=0.75, k=2.0)
    features = nn.Sequential(
        nn.Conv2d(3, 96, 11, stride=4, padding=2), nn.ReLU(inplace=True), lrn(),      # 0 1 2
        nn.MaxPool2d(3, 2),                                                          # 3
        nn.Conv2d(96, 256, 5, padding=2, groups=2), nn.ReLU(inplace=True), lrn(),     # 4 5 6
        nn.MaxPool2d(3, 2),                                                          # 7
        nn.Conv2d(256, 384, 3, padding=1), nn.ReLU(inplace=True),                    # 8 9
        nn.Conv2d(384, 384, 3, padding=1, groups=2), nn.ReLU(inplace=True),          # 10 11
        nn.Conv2d(384, 256, 3, padding=1, groups=2), nn.ReLU(inplace=True),          # 12 13
        nn.MaxPool2d(3, 2))                                                          # 14
    return AlexNet(features, _classifier(256 * 6 * 6, 4096, num_classes))


def alexnet_half(num_classes=1000):
    """One column: the tutorial's PyTorch model (plus the adaptive pool, the identity at 224x224)."""
    features = nn.Sequential(
        nn.Conv2d(3, 48, 11, stride=4, padding=2), nn.ReLU(inplace=True), nn.MaxPool2d(3, 2),   # 0 1 2
        nn.Conv2d(48, 128, 5, padding=2), nn.ReLU(inplace=True), nn.MaxPool2d(3, 2),            # 3 4 5
        nn.Conv2d(128, 192, 3, padding=1), nn.ReLU(inplace=True),                               # 6 7
        nn.Conv2d(192, 192, 3, padding=1), nn.ReLU(inplace=True),                               # 8 9
        nn.Conv2d(192, 128, 3, padding=1), nn.ReLU(inplace=True), nn.MaxPool2d(3, 2))           # 10 11 12
    return AlexNet(features, _classifier(128 * 6 * 6, 2048, num_classes))


def alexnet_tv(num_classes=1000):
    import torchvision
    return torchvision.models.alexnet(weights=None, num_classes=num_classes)


def init_like_c(model_name, module):
    """The C code's initialisation schemes (not its random numbers): paper N(0, 0.01) with bias 1 at
    conv2/4/5 and the hidden FCs; half Kaiming fan_out for convs, N(0, 0.01) linears, bias 0;
    tv keeps PyTorch's defaults."""
    if model_name == "alexnet-tv":
        return module
    ones = {"features.4", "features.10", "features.12", "classifier.1", "classifier.4"}
    for name, m in module.named_modules():
        if not isinstance(m, (nn.Conv2d, nn.Linear)):
            continue
        if model_name == "alexnet-half" and isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        else:
            nn.init.normal_(m.weight, 0.0, 0.01)
        nn.init.constant_(m.bias, 1.0 if model_name == "alexnet" and name in ones else 0.0)
    return module


def build(model_name, num_classes=1000):
    """The PyTorch module of a model, its state_dict names those of the C net's tensor table."""
    builders = {"alexnet": alexnet_paper, "alexnet-half": alexnet_half, "alexnet-tv": alexnet_tv}
    if model_name not in builders:
        raise ValueError(f"unknown model '{model_name}' (the models are {', '.join(MODELS)})")
    return builders[model_name](num_classes)


# ---------------------------------------------------------------------------------------------------
# safetensors

DTYPES = {  # safetensors name -> (torch dtype, bytes)
    "BOOL": (torch.bool, 1), "U8": (torch.uint8, 1), "I8": (torch.int8, 1), "I16": (torch.int16, 2),
    "F16": (torch.float16, 2), "BF16": (torch.bfloat16, 2), "I32": (torch.int32, 4),
    "F32": (torch.float32, 4), "F64": (torch.float64, 8), "I64": (torch.int64, 8),
}
NAMES = {dt: name for name, (dt, _) in DTYPES.items()}


class FormatError(ValueError):
    """A malformed safetensors file, or one that does not fit a model."""


def _check_little_endian():
    if sys.byteorder != "little":
        raise RuntimeError("safetensors data are little-endian; this host is not")


def parse_safetensors(data, source="(bytes)"):
    """(OrderedDict name -> tensor, metadata dict) from the bytes of a file, validated as the C reader."""
    _check_little_endian()
    if len(data) < 8:
        raise FormatError(f"{source}: truncated file: {len(data)} bytes, fewer than the 8-byte header length")
    (n,) = struct.unpack("<Q", data[:8])
    if n > len(data) - 8:
        raise FormatError(f"{source}: the header length {n} runs past the end of the file")
    try:
        header = json.loads(bytes(data[8:8 + n]).decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise FormatError(f"{source}: the header is not valid JSON ({e})") from None
    if not isinstance(header, dict):
        raise FormatError(f"{source}: the header is not a JSON object")
    meta = header.pop("__metadata__", {}) or {}
    if not isinstance(meta, dict) or not all(isinstance(v, str) for v in meta.values()):
        raise FormatError(f"{source}: __metadata__ is not an object of strings")
    body = memoryview(bytearray(data[8 + n:]))  # writable: torch.frombuffer warns otherwise
    tensors, spans = collections.OrderedDict(), []
    for name, e in header.items():
        if not isinstance(e, dict) or not {"dtype", "shape", "data_offsets"} <= set(e):
            raise FormatError(f"{source}: tensor {name} needs dtype, shape and data_offsets")
        if e["dtype"] not in DTYPES:
            raise FormatError(f"{source}: tensor {name} has unknown or unsupported dtype '{e['dtype']}'")
        dtype, size = DTYPES[e["dtype"]]
        shape, offs = e["shape"], e["data_offsets"]
        if not isinstance(shape, list) or not all(isinstance(d, int) and d >= 0 for d in shape):
            raise FormatError(f"{source}: tensor {name}: shape {shape} is not a list of non-negative integers")
        if (not isinstance(offs, list) or len(offs) != 2 or not all(isinstance(o, int) for o in offs)
                or not 0 <= offs[0] <= offs[1]):
            raise FormatError(f"{source}: tensor {name}: data_offsets {offs} is not a pair begin <= end")
        begin, end = offs
        if end > len(body):
            raise FormatError(f"{source}: tensor {name}: data_offsets [{begin}, {end}) lie outside the data "
                              f"section of {len(body)} bytes (offsets outside the data, or a truncated file)")
        count = math.prod(shape)
        if end - begin != count * size:
            raise FormatError(f"{source}: tensor {name}: data_offsets span {end - begin} bytes, but shape "
                              f"{shape} of {e['dtype']} needs {count * size}")
        if count:
            t = torch.frombuffer(body, dtype=dtype, count=count, offset=begin).reshape(shape).clone()
        else:
            t = torch.empty(shape, dtype=dtype)
        tensors[name] = t
        if end > begin:
            spans.append((begin, end, name))
    spans.sort()
    for (b0, e0, n0), (b1, e1, n1) in zip(spans, spans[1:]):
        if b1 < e0:
            raise FormatError(f"{source}: tensors {n0} [{b0}, {e0}) and {n1} [{b1}, {e1}) have overlapping data_offsets")
    return tensors, dict(meta)


def read_safetensors(path):
    with open(path, "rb") as f:
        return parse_safetensors(f.read(), path)


def _tensor_bytes(t):
    t = t.detach().to("cpu").contiguous()
    return ctypes.string_at(t.data_ptr(), t.numel() * t.element_size()) if t.numel() else b""


def serialize_safetensors(tensors, metadata=None):
    """The bytes of a file: tensors (name -> tensor) in the order given, header padded to 8 bytes."""
    _check_little_endian()
    header, blobs, offset = {}, [], 0
    if metadata:
        header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    for name, t in tensors.items():
        if t.dtype not in NAMES:
            raise ValueError(f"tensor {name}: dtype {t.dtype} has no safetensors name here")
        blob = _tensor_bytes(t)
        header[name] = {"dtype": NAMES[t.dtype], "shape": list(t.shape), "data_offsets": [offset, offset + len(blob)]}
        blobs.append(blob)
        offset += len(blob)
    text = json.dumps(header, separators=(",", ":")).encode("utf-8")
    text += b" " * (-len(text) % 8)
    return struct.pack("<Q", len(text)) + text + b"".join(blobs)


def _atomic_write(path, write):
    """write(f) into a temporary file beside path, fsync, then rename it over path."""
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=os.path.basename(path) + ".tmp.", dir=directory)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def write_safetensors(path, tensors, metadata=None):
    data = serialize_safetensors(tensors, metadata)
    _atomic_write(path, lambda f: f.write(data))


# ---------------------------------------------------------------------------------------------------
# state_dicts <-> this project's files


def load_state_dict(path):
    """A state_dict from a .pth/.pt (a state_dict, a checkpoint dict holding one, or a whole module) or
    a .safetensors file; DataParallel's 'module.' prefixes are removed. Returns (state_dict, metadata)."""
    if path.endswith(".safetensors"):
        return read_safetensors(path)
    obj = torch.load(path, map_location="cpu")
    if isinstance(obj, nn.Module):
        obj = obj.state_dict()
    if isinstance(obj, dict):
        for key in ("state_dict", "model_state_dict", "model", "net"):
            if isinstance(obj.get(key), dict):
                obj = obj[key]
                break
    if not isinstance(obj, dict) or not all(torch.is_tensor(v) for v in obj.values()):
        raise FormatError(f"{path}: holds no state_dict (a dict of tensors)")
    sd = collections.OrderedDict()
    for k, v in obj.items():
        sd[k[len("module."):] if k.startswith("module.") else k] = v
    return sd, {}


def shape_str(shape):
    """[256,48,5,5], as the C messages write shapes."""
    return "[" + ",".join(str(d) for d in shape) + "]"


def guess_model(state_dict):
    """The model whose names and conv1 shape the state_dict has."""
    w = state_dict.get("features.0.weight")
    out = None if w is None else w.shape[0]
    return {96: "alexnet", 48: "alexnet-half", 64: "alexnet-tv"}.get(out)


def fit_to_model(state_dict, model_name, source="state_dict"):
    """Checks names, shapes and dtypes against the model (classes from classifier.6); returns the
    F32 tensors in the model's order and the number of classes. Raises FormatError naming the tensor."""
    if model_name not in MODELS:
        raise FormatError(f"{source}: unknown model '{model_name}'")
    if "classifier.6.weight" not in state_dict:
        raise FormatError(f"{source}: tensor classifier.6.weight is missing (it gives the number of classes)")
    classes = state_dict["classifier.6.weight"].shape[0]
    want = build(model_name, classes).state_dict()
    missing = [k for k in want if k not in state_dict]
    extra = [k for k in state_dict if k not in want]
    if missing:
        raise FormatError(f"{source}: tensor {missing[0]} is missing (model {model_name} needs "
                          f"{shape_str(want[missing[0]].shape)})")
    if extra:
        raise FormatError(f"{source}: tensor {extra[0]} is not part of model {model_name} "
                          f"({len(extra)} tensor{'s' if len(extra) > 1 else ''} of the file not)")
    out = collections.OrderedDict()
    for k, w in want.items():
        t = state_dict[k]
        if tuple(t.shape) != tuple(w.shape):
            raise FormatError(f"{source}: tensor {k} has shape {shape_str(t.shape)}, the model needs "
                              f"{shape_str(w.shape)}")
        if not t.is_floating_point():
            raise FormatError(f"{source}: tensor {k} has dtype {t.dtype}, the model needs a float")
        out[k] = t.detach().to(torch.float32).contiguous()
    return out, classes


def plain_state_dict(sd):
    """The tensors in the order safetensors.torch.save_file lays them out (one dtype: by name); written
    without metadata, the file is save_file's byte for byte."""
    return collections.OrderedDict((k, sd[k].detach().contiguous()) for k in sorted(sd))


def project_metadata(model_name, classes, input_size=224):
    return {"format": FORMAT_NAME, "format_version": str(FORMAT_VERSION), "kind": "weights",
            "model": model_name, "classes": str(classes), "input_size": str(input_size)}


def to_safetensors(src, dst, model_name=None):
    sd, meta = load_state_dict(src)
    model_name = model_name or meta.get("model") or guess_model(sd)
    if model_name is None:
        raise FormatError(f"{src}: cannot tell the model from features.0.weight; pass --model")
    tensors, classes = fit_to_model(sd, model_name, src)
    write_safetensors(dst, tensors, project_metadata(model_name, classes, int(meta.get("input_size", 224))))
    return model_name, classes


def to_pth(src, dst, model_name=None):
    """A project file (weights or checkpoint) -> a state_dict .pth that load_state_dict(strict=True) takes.
    A checkpoint's momentum.* tensors are left out."""
    tensors, meta = read_safetensors(src)
    model_name = model_name or meta.get("model") or guess_model(tensors)
    if model_name is None:
        raise FormatError(f"{src}: cannot tell the model; pass --model")
    weights = collections.OrderedDict((k, v) for k, v in tensors.items() if not k.startswith("momentum."))
    sd, classes = fit_to_model(weights, model_name, src)
    build(model_name, classes).load_state_dict(sd, strict=True)  # the proof it loads
    _atomic_write(dst, lambda f: torch.save(sd, f))
    return model_name, classes


ONNX_OPSET = 14  # torch 1.13's default; Debian's onnx 1.12 and onnxruntime read it


def to_onnx(src, dst, model_name=None, input_size=None, opset=ONNX_OPSET):
    """A weights file (this project's, a plain save_file one, a .pth) -> an ONNX graph through torch.onnx:
    input "input" (N, 3, S, S) float, normalised as for `alexnet classify`; output "logits" (N, classes);
    the batch dimension is dynamic, the side fixed (the adaptive pool exports for one input size)."""
    tensors, meta = load_state_dict(src)
    weights = collections.OrderedDict((k, v) for k, v in tensors.items() if not k.startswith("momentum."))
    model_name = model_name or meta.get("model") or guess_model(weights)
    if model_name is None:
        raise FormatError(f"{src}: cannot tell the model from features.0.weight; pass --model")
    sd, classes = fit_to_model(weights, model_name, src)
    net = build(model_name, classes)
    net.load_state_dict(sd, strict=True)
    net.eval()
    side = input_size or int(meta.get("input_size", 224))
    x = torch.zeros(1, 3, side, side)
    try:
        with torch.no_grad():
            h = net.features(x).shape[-1]
    except RuntimeError as e:
        raise FormatError(f"{src}: model {model_name} does not take {side}x{side} input ({e})")
    # torch.onnx exports the adaptive pool only where it sees the input's size (not after alexnet's LRN):
    # the same windows as a fixed pool, which exists where 6 divides the features' side (224: 6, identity)
    if h % 6:
        raise FormatError(f"input {side}x{side} gives features of {h}x{h}: the adaptive pool to 6x6 exports "
                          "only where 6 divides that side (e.g. input 224)")
    net.avgpool = nn.Identity() if h == 6 else nn.AvgPool2d(h // 6)

    def write(f):
        torch.onnx.export(net, x, f, input_names=["input"], output_names=["logits"], opset_version=opset,
                          dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}}, do_constant_folding=True)
    _atomic_write(dst, write)
    return model_name, classes, side


# ---------------------------------------------------------------------------------------------------
# self-test (ctest agreement_bridge_selftest)


def selftest():
    failures = []

    def check(cond, what):
        print(f"  {'ok  ' if cond else 'FAIL'} {what}")
        if not cond:
            failures.append(what)

    # round trip of every dtype, bit-exact, header 8-aligned
    g = torch.Generator().manual_seed(0)
    ts = collections.OrderedDict()
    for name, (dt, _) in DTYPES.items():
        x = torch.randn(3, 5, generator=g) * 100
        ts["t." + name] = x.to(dt)
    ts["scalar"] = torch.tensor(2.5)
    ts["empty"] = torch.zeros(0, 4)
    blob = serialize_safetensors(ts, {"k": "v"})
    (n,) = struct.unpack("<Q", blob[:8])
    check((8 + n) % 8 == 0, "header padded to an 8-byte boundary")
    back, meta = parse_safetensors(blob)
    check(meta == {"k": "v"}, "metadata round trip")
    check(list(back) == list(ts), "tensor order kept")
    check(all(back[k].dtype == v.dtype and back[k].shape == v.shape and
              _tensor_bytes(back[k]) == _tensor_bytes(v) for k, v in ts.items()), "every dtype bit-exact")

    # malformed files are named errors
    def bad(data, words):
        try:
            parse_safetensors(data, "bad.safetensors")
        except FormatError as e:
            check(all(w in str(e) for w in words), f"rejects: {e}")
            return
        check(False, f"accepted a bad file ({words})")

    def file(h, nbytes):
        t = json.dumps(h).encode()
        return struct.pack("<Q", len(t)) + t + b"\0" * nbytes

    bad(b"\1\0\0", ["truncated"])
    bad(struct.pack("<Q", 1000) + b"{}", ["runs past the end"])
    bad(struct.pack("<Q", 3) + b"{x}", ["not valid JSON"])
    bad(file({"w": {"dtype": "F33", "shape": [1], "data_offsets": [0, 4]}}, 4), ["w", "F33"])
    bad(file({"w": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]}}, 8), ["w", "outside"])
    bad(file({"w": {"dtype": "F32", "shape": [3], "data_offsets": [0, 8]}}, 8), ["w", "needs 12"])
    bad(file({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
              "b": {"dtype": "F32", "shape": [2], "data_offsets": [4, 12]}}, 12), ["overlapping", "a", "b"])

    # the three models: names the C tables use, parameter counts of the C nets
    expect = {"alexnet": (["features.0", "features.4", "features.8", "features.10", "features.12"], 60965224),
              "alexnet-half": (["features.0", "features.3", "features.6", "features.8", "features.10"], 16630440),
              "alexnet-tv": (["features.0", "features.3", "features.6", "features.8", "features.10"], 61100840)}
    for m, (convs, count) in expect.items():
        net = init_like_c(m, build(m, 1000))
        sd = net.state_dict()
        names = convs + ["classifier.1", "classifier.4", "classifier.6"]
        check(list(sd) == [f"{p}.{s}" for p in names for s in ("weight", "bias")], f"{m}: state_dict names")
        check(sum(v.numel() for v in sd.values()) == count, f"{m}: {count} parameters")
        check(tuple(net(torch.zeros(1, 3, 224, 224)).shape) == (1, 1000), f"{m}: 224x224 -> 1000 logits")
    # conversion both ways through files, and the checks of fit_to_model
    with tempfile.TemporaryDirectory() as d:
        tv = build("alexnet-tv", 10)
        torch.save({"model_state_dict": {"module." + k: v for k, v in tv.state_dict().items()}},
                   os.path.join(d, "tv.pth"))
        m, k = to_safetensors(os.path.join(d, "tv.pth"), os.path.join(d, "tv.safetensors"))
        check((m, k) == ("alexnet-tv", 10), "a DataParallel checkpoint .pth converts, model and classes guessed")
        to_pth(os.path.join(d, "tv.safetensors"), os.path.join(d, "back.pth"))
        back = torch.load(os.path.join(d, "back.pth"))
        check(all(torch.equal(back[k].view(torch.int32), v.view(torch.int32)) for k, v in tv.state_dict().items()),
              ".pth -> safetensors -> .pth bit-exact")
        sd = dict(tv.state_dict())
        sd["features.0.weight"] = torch.zeros(48, 3, 11, 11)
        try:
            fit_to_model(sd, "alexnet-tv", "w.pth")
            check(False, "a wrong shape is refused")
        except FormatError as e:
            check("features.0.weight has shape [48,3,11,11], the model needs [64,3,11,11]" in str(e), f"refuses: {e}")
    print("selftest:", "FAIL" if failures else "PASS")
    return 1 if failures else 0


# ---------------------------------------------------------------------------------------------------


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    a = sub.add_parser("to-safetensors", help="a PyTorch state_dict / .pth -> this project's safetensors")
    a.add_argument("src")
    a.add_argument("dst")
    a.add_argument("--model", choices=MODELS, help="default: from features.0.weight's shape")
    a = sub.add_parser("to-pth", help="this project's safetensors -> a state_dict .pth")
    a.add_argument("src")
    a.add_argument("dst")
    a.add_argument("--model", choices=MODELS, help="default: the file's metadata")
    a = sub.add_parser("random", help="a randomly initialised model's weights (.pth or .safetensors)")
    a.add_argument("model", choices=MODELS)
    a.add_argument("dst")
    a.add_argument("--classes", type=int, default=1000)
    a.add_argument("--seed", type=int, default=0)
    a.add_argument("--plain", action="store_true",
                   help="as safetensors.torch.save_file(state_dict) writes it: no __metadata__, names sorted")
    a = sub.add_parser("to-onnx", help="weights -> an ONNX graph (torch.onnx): input (N,3,S,S), logits (N,K)")
    a.add_argument("src")
    a.add_argument("dst")
    a.add_argument("--model", choices=MODELS, help="default: the file's metadata, else features.0.weight's shape")
    a.add_argument("--input-size", type=int, help="the side S (default: the file's input_size, else 224)")
    a.add_argument("--opset", type=int, default=ONNX_OPSET, help=f"ONNX opset (default {ONNX_OPSET})")
    a = sub.add_parser("info", help="list a file's tensors and metadata")
    a.add_argument("path")
    sub.add_parser("selftest", help="check the reader, writer and models")
    args = p.parse_args(argv)
    try:
        if args.cmd == "to-safetensors":
            m, k = to_safetensors(args.src, args.dst, args.model)
            print(f"{args.dst}: {m}, {k} classes")
        elif args.cmd == "to-pth":
            m, k = to_pth(args.src, args.dst, args.model)
            print(f"{args.dst}: {m}, {k} classes")
        elif args.cmd == "to-onnx":
            m, k, side = to_onnx(args.src, args.dst, args.model, args.input_size, args.opset)
            print(f"{args.dst}: {m}, {k} classes, input (N, 3, {side}, {side}), opset {args.opset}")
        elif args.cmd == "random":
            torch.manual_seed(args.seed)
            sd = init_like_c(args.model, build(args.model, args.classes)).state_dict()
            if args.dst.endswith(".safetensors") and args.plain:
                write_safetensors(args.dst, plain_state_dict(sd))
            elif args.dst.endswith(".safetensors"):
                write_safetensors(args.dst, sd, project_metadata(args.model, args.classes))
            else:
                _atomic_write(args.dst, lambda f: torch.save(sd, f))
        elif args.cmd == "info":
            sd, meta = load_state_dict(args.path)
            for k, v in meta.items():
                print(f"  {k} = {v}")
            for k, v in sd.items():
                print(f"  {k:28s} {NAMES.get(v.dtype, v.dtype)} {list(v.shape)}")
        elif args.cmd == "selftest":
            return selftest()
    except (FormatError, OSError) as e:
        print(f"alexnet_torch: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
