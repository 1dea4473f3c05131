#!/usr/bin/env bash
# Installs the project's Debian 12 packages: build tools (clang-format for tools/check-style.sh), the
# OpenCL ICD loader and headers, CLBlast, stb, cmocka, cJSON, PoCL (the CPU OpenCL device), PyTorch for
# the reference checks, Fashion-MNIST, Oclgrind (a second OpenCL implementation that checks every access:
# tests/test_oclgrind.sh), Open MPI (training across processes and machines); then ONNX Runtime from
# PyPI in .venv (the ONNX round-trip test).
set -euo pipefail
SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO=sudo; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update
$SUDO apt-get install -y --no-install-recommends \
  build-essential cmake pkg-config clang clang-format libclang-rt-14-dev \
  ocl-icd-opencl-dev opencl-headers clinfo pocl-opencl-icd libclblast-dev \
  libstb-dev libcmocka-dev libcjson-dev zlib1g-dev \
  python3 python3-torch python3-torchvision python3-numpy python3-matplotlib libopenblas0-pthread \
  python3-venv python3-onnx oclgrind \
  dataset-fashion-mnist \
  libopenmpi-dev openmpi-bin

# ONNX Runtime is not a Debian package: PyPI's, in a virtual environment over Debian's Python that sees
# its torch 1.13, onnx 1.12 and numpy 1.24 (--system-site-packages). onnxruntime 1.16.3 is the pinned
# version that works with numpy 1.24 on Python 3.11. A numpy that pip pulls into the environment would
# shadow Debian's, which torch was built against: it is removed.
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.venv"
if [ ! -x "$VENV/bin/python" ]; then /usr/bin/python3 -m venv --system-site-packages "$VENV"; fi
"$VENV/bin/python" -m pip install --disable-pip-version-check -q 'onnxruntime==1.16.3'
if "$VENV/bin/python" -m pip show numpy 2>/dev/null | grep -q "^Location: $VENV/"; then
  "$VENV/bin/python" -m pip uninstall --disable-pip-version-check -y numpy
fi
"$VENV/bin/python" -c "import numpy, onnxruntime, torch; assert numpy.__version__.startswith('1.'), numpy.__version__"
