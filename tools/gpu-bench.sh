#!/usr/bin/env bash
# Benchmarks this project through a GPU vendor's OpenCL driver against PyTorch on the same GPU, on a
# machine that has the GPU driver and PyTorch but none of this project's Debian packages.
#
#   tools/gpu-bench.sh prepare       here (Debian 12, after building): put the binaries and the Debian
#                                    packages of the ICD loader, CLBlast and cJSON into .dev/
#   tools/gpu-bench.sh run [OUTDIR]  there (x86-64, glibc >= 2.36): unpack the packages, register the
#                                    NVIDIA OpenCL driver with the loader if nothing else does, check
#                                    the layers and models on the GPU, tune, bench, compare with PyTorch
set -euo pipefail
cd "$(dirname "$0")/.."
case "${1:-}" in
prepare)
  mkdir -p .dev/debs .dev/bin
  (cd .dev/debs && apt-get download libclblast1 ocl-icd-libopencl1 libcjson1 libcmocka0)
  cp build/alexnet build/tests/test_layers build/tests/test_models build/tests/test_runtime .dev/bin/
  du -sh .dev
  ;;
run)
  out=${2:-${OUT:-/tmp/alexnet-gpu}}
  mkdir -p "$out" /tmp/alexnet-debs /tmp/alexnet-icd
  for f in .dev/debs/*.deb; do dpkg -x "$f" /tmp/alexnet-debs; done
  export LD_LIBRARY_PATH=/tmp/alexnet-debs/usr/lib/x86_64-linux-gnu${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
  if [ ! -d /etc/OpenCL/vendors ] || [ -z "$(ls /etc/OpenCL/vendors 2>/dev/null)" ]; then
    lib=$(ldconfig -p | awk '/libnvidia-opencl\.so\.1/{print $NF; exit}')
    [ -n "$lib" ] || lib=$(find / -xdev -name 'libnvidia-opencl.so.1' 2>/dev/null | head -n 1)
    echo "${lib:?no libnvidia-opencl.so.1 found}" > /tmp/alexnet-icd/nvidia.icd
    export OCL_ICD_VENDORS=/tmp/alexnet-icd
  fi
  export ALEXNET_TUNING_FILE=$out/gemm-tuning.txt ALEXNET_CACHE_DIR=/tmp/alexnet-cache
  nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv | tee "$out/gpu.txt" || true
  .dev/bin/alexnet devices | tee "$out/devices.txt"
  # correctness on this vendor's OpenCL first: every layer and every model against the C reference
  (.dev/bin/test_layers && .dev/bin/test_runtime && .dev/bin/test_models) > "$out/tests.txt" 2>&1 \
    && echo "tests: passed" || { echo "tests: FAILED"; grep -E "FAIL|ERROR" "$out/tests.txt" | head -20; }
  ALEXNET_NO_TUNING=1 .dev/bin/alexnet bench --model all --batch 64 --json > "$out/bench-untuned.json"
  .dev/bin/alexnet tune --model alexnet --batch 64 --candidates 24 | tee "$out/tune.txt"
  .dev/bin/alexnet bench --model all --batch 64 | tee "$out/bench.txt"
  python3 tools/torch_bench.py --alexnet .dev/bin/alexnet --torch-device cuda --batch 64 --iterations 10 \
    --warmup 3 --json-out "$out/torch-compare.json" | tee "$out/torch-compare.txt"
  ;;
*)
  sed -n '2,10p' "$0"
  exit 2
  ;;
esac
