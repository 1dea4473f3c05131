#!/usr/bin/python3
"""The installed library as an application uses it (Python's standard library only):

  1. `cmake --install` into a temporary prefix: exactly the public files (the shared and static
     libraries, alexnet.h and status.h, the command, the CMake package, the pkg-config file; no kernel
     sources: they are embedded), and the shared library exports exactly the functions the installed
     headers declare;
  2. weights: the installed `alexnet` trains alexnet-half for a few steps on a folder of 4 classes of
     coloured PNGs (class names from the folders);
  3. examples/ built against the prefix three ways: a separate CMake project through
     find_package(AlexNetOpenCL) (shared, and static with COMPONENTS static), and one cc line through
     pkg-config;
  4. each build run from another directory on held-out images of odd sizes, each as a PNG (the library
     decodes it) and as a PPM (the example reads the pixels and passes RGB8 buffers): its top-5 classes,
     names and probabilities equal `alexnet classify --json`'s on the PNGs (probabilities within 2e-6:
     the example prints 6 decimals).
Exits 1 on any difference.

  install_example.py --build build --source . --workdir /tmp/ie [--cmake cmake] [--cc cc] [--sanitize]
"""
import argparse
import json
import os
import random
import re
import shutil
import struct
import subprocess
import sys
import zlib

COLOURS = {"blue": (40, 60, 200), "green": (40, 190, 60), "red": (210, 40, 40), "yellow": (220, 210, 40)}
SANITIZE = "-fsanitize=address,undefined"


def write_png(path, w, h, rgb):
    raw = b"".join(b"\x00" + bytes(rgb[y * w * 3:(y + 1) * w * 3]) for y in range(h))

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)) +
                chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


def picture(colour, rng, w, h):
    out = []
    stripe = rng.randrange(4, 12)
    for y in range(h):
        for x in range(w):
            s = 40 if (x + y) // stripe % 2 else -40
            out += [max(0, min(255, c + s + rng.randint(-30, 30))) for c in colour]
    return out


def run(cmd, cwd=None, env=None):
    p = subprocess.run(cmd, capture_output=True, text=True, cwd=cwd, env=env)
    if p.returncode != 0:
        print(f"FAIL: {' '.join(cmd)} exited {p.returncode}\n{p.stdout}\n{p.stderr}")
        sys.exit(1)
    return p


def check_tree(prefix):
    """1: the installed files, and the shared library's exports against the installed headers."""
    found = sorted(os.path.relpath(os.path.join(d, n), prefix) for d, _, ns in os.walk(prefix) for n in ns)
    print("installed:\n  " + "\n  ".join(found))
    want = [r"bin/alexnet", r"include/alexnet/alexnet\.h", r"include/alexnet/status\.h", r"lib/libalexnet\.a",
            r"lib/libalexnet\.so(\.\d+)*", r"lib/cmake/AlexNetOpenCL/AlexNetOpenCL[\w-]*\.cmake",
            r"lib/pkgconfig/alexnet-opencl\.pc"]
    extra = [f for f in found if not any(re.fullmatch(w, f) for w in want)]
    missing = [w for w in want if not any(re.fullmatch(w, f) for f in found)]
    if extra or missing:
        print(f"FAIL: files installed that are not public: {extra}; public files missing: {missing}")
        return 1
    declared = set()
    for h in ("alexnet.h", "status.h"):
        with open(os.path.join(prefix, "include", "alexnet", h)) as f:
            declared |= set(re.findall(r"AN_API\s[^;(]*?\**(an_\w+)\s*\(", f.read()))
    nm = run(["nm", "-D", "--defined-only", os.path.join(prefix, "lib", "libalexnet.so")]).stdout
    exported = {line.split()[-1] for line in nm.splitlines() if line.split()[1:2] == ["T"]}
    print(f"libalexnet.so exports {len(exported)} functions: {' '.join(sorted(exported))}")
    if exported != declared or len(declared) < 8:
        print(f"FAIL: exported but not declared: {sorted(exported - declared)}; "
              f"declared but not exported: {sorted(declared - exported)}")
        return 1
    return 0


def parse_example(text):
    """{file: [(class, name, prob), ...]} from the example's output."""
    out, cur = {}, None
    for line in text.splitlines():
        if line.startswith("device memory:"):
            continue
        if not line.startswith("  "):
            cur = out.setdefault(line, [])
        else:
            c, name, prob = line.split()
            cur.append((int(c), name, float(prob)))
    return out


def compare(what, got, want):
    """got: the example's predictions; want: alexnet classify's, by file."""
    bad = 0
    for f, ref in want.items():
        g = got.get(f)
        ok = g is not None and len(g) == len(ref) and all(
            a[0] == b[0] and a[1] == b[1] and abs(a[2] - b[2]) <= 2e-6 for a, b in zip(g, ref))
        if not ok:
            print(f"FAIL: {what}: {f}: {g} != alexnet classify's {ref}")
            bad += 1
    if set(got) != set(want):
        print(f"FAIL: {what} classified {sorted(got)}, alexnet classify {sorted(want)}")
        bad += 1
    if not bad:
        print(f"ok   {what}: {len(want)} images, the same top-5 classes, names and probabilities")
    return bad


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--build", required=True, help="the project's build directory")
    ap.add_argument("--source", required=True, help="the project's source directory")
    ap.add_argument("--workdir", required=True)
    ap.add_argument("--cmake", default="cmake")
    ap.add_argument("--cc", default="cc")
    ap.add_argument("--pkg-config", default="pkg-config")
    ap.add_argument("--sanitize", action="store_true", help="the library was built with ASan and UBSan")
    args = ap.parse_args()
    wd = os.path.abspath(args.workdir)
    shutil.rmtree(wd, ignore_errors=True)
    os.makedirs(wd)
    prefix = os.path.join(wd, "prefix")
    run([args.cmake, "--install", args.build, "--prefix", prefix])
    if check_tree(prefix):
        return 1
    env = dict(os.environ)
    env.pop("ALEXNET_CL_DIR", None)  # the kernels must come from the library itself

    # 2. weights, from the installed command
    rng = random.Random(5)
    train, test = os.path.join(wd, "train"), os.path.join(wd, "test")
    images = []
    for name, colour in COLOURS.items():
        os.makedirs(os.path.join(train, name))
        for i in range(4):
            write_png(os.path.join(train, name, f"{i}.png"), 72, 72, picture(colour, rng, 72, 72))
    os.makedirs(test)
    for name, colour in COLOURS.items():  # odd sizes: the short side is scaled to the file's resize
        w, h = rng.randrange(60, 90), rng.randrange(60, 90)
        px = picture(colour, rng, w, h)
        write_png(os.path.join(test, f"{name}.png"), w, h, px)
        with open(os.path.join(test, f"{name}.ppm"), "wb") as f:
            f.write(b"P6\n%d %d\n255\n" % (w, h) + bytes(px))
        images += [os.path.join(test, f"{name}.png"), os.path.join(test, f"{name}.ppm")]
    alexnet = os.path.join(prefix, "bin", "alexnet")
    run_dir = os.path.join(wd, "run")
    run([alexnet, "train", "--model", "alexnet-half", "--data", train, "--val-fraction", "0", "--max-steps", "3",
         "--batch", "8", "--input-size", "63", "--lr", "0.02", "--out", run_dir], cwd=wd, env=env)
    weights = os.path.join(run_dir, "last.safetensors")
    ref = {}  # a PPM's reference is its PNG's: the command reads no PPM
    pngs = images[0::2]
    for line in run([alexnet, "classify", "--weights", weights, "--json"] + pngs, cwd=wd, env=env).stdout.splitlines():
        r = json.loads(line)
        ref[r["file"]] = ref[r["file"][:-4] + ".ppm"] = [(t["class"], t["name"], t["prob"]) for t in r["top"]]
    if len(ref) != len(images) or any(len(v) != 4 for v in ref.values()):
        print(f"FAIL: alexnet classify did not give 4 classes for each of {len(images)} images: {ref}")
        return 1

    # 3. the example, built against the prefix
    flags = [SANITIZE] if args.sanitize else []
    source = os.path.abspath(args.source)
    exes = {}
    for kind, static in (("find_package", "OFF"), ("find_package static", "ON")):
        bdir = os.path.join(wd, "example-" + kind.replace(" ", "-"))
        run([args.cmake, "-S", os.path.join(source, "examples"), "-B", bdir, f"-DCMAKE_PREFIX_PATH={prefix}",
             f"-DALEXNET_STATIC={static}", f"-DCMAKE_C_COMPILER={args.cc}", "-DCMAKE_BUILD_TYPE=RelWithDebInfo",
             "-DCMAKE_C_FLAGS=" + " ".join(flags), "-DCMAKE_EXE_LINKER_FLAGS=" + " ".join(flags)])
        run([args.cmake, "--build", bdir])
        exes[kind] = os.path.join(bdir, "classify")
    pc_env = dict(env, PKG_CONFIG_PATH=os.path.join(prefix, "lib", "pkgconfig"))
    pc = run([args.pkg_config, "--cflags", "--libs", "alexnet-opencl"], env=pc_env).stdout.split()
    exes["pkg-config"] = os.path.join(wd, "classify-pkg-config")
    cc_line = [args.cc] + flags + [os.path.join(source, "examples", "classify.c"), "-o", exes["pkg-config"]] + pc + [
        "-Wl,-rpath," + os.path.join(prefix, "lib")]
    print("pkg-config build: " + " ".join(cc_line))
    run(cc_line)
    for kind in ("find_package", "pkg-config"):  # the shared builds load the installed library
        ldd = run(["ldd", exes[kind]]).stdout
        lib = re.search(r"libalexnet\.so\S*\s*=>\s*(\S+)", ldd)
        if not lib or not os.path.realpath(lib.group(1)).startswith(os.path.realpath(prefix)):
            print(f"FAIL: the {kind} build does not load the installed libalexnet.so:\n{ldd}")
            return 1

    # 4. the same predictions as alexnet classify
    failures = 0
    for kind, exe in exes.items():
        out = run([exe, weights] + images, cwd=wd, env=env).stdout
        if kind == "find_package":
            print(out.strip())
        failures += compare(f"example ({kind})", parse_example(out), ref)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
