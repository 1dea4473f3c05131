#!/usr/bin/env bash
# Installs the project's Debian 12 packages: build tools (clang-format for tools/check-style.sh), the
# OpenCL ICD loader and headers, CLBlast, stb, cmocka, cJSON, PoCL (the CPU OpenCL device), PyTorch for
# the reference checks, Fashion-MNIST, Open MPI (training across processes and machines).
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
  dataset-fashion-mnist \
  libopenmpi-dev openmpi-bin
