#!/usr/bin/env bash
# The README's first command: install the dependencies, build, and run the main job: train
# alexnet-half on Fashion-MNIST for a bounded budget (a few minutes on 2 CPU cores through PoCL),
# evaluate it on the test set, and plot the curves.
set -euo pipefail
cd "$(dirname "$0")/.."
tools/install-deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo
cmake --build build -j"$(nproc)"
build/alexnet devices
out=runs/fashion-mnist
# The main job runs tuned: the device's entry in the tuning file (alexnet tune), else the shipped
# database's entry for its family (tuning/database.txt), as `devices` says above. A device that has
# only the database's family-wide fallback (pthread -> pthread-haswell: a CPU not measured) or nothing
# gets a quick tune on the main job's own shapes first (under a minute on 2 cores: less than it saves).
# A CPU whose GEMMs run on the project's kernel (AVX-512) needs no CLBlast tuning.
tuning=$(build/alexnet devices | awk '/\(default\)/ { d = 1 } d && /GEMMs|GEMM tuning/ { printf "%s ", $0 }
  d && /GEMM tuning/ { exit }')
case "$tuning" in
  *ALEXNET_NO_TUNING* | *"project's kernel"*) ;;
  *"->"* | *none*)
    build/alexnet tune --quick --model alexnet-half --batch 32 --input-size 63 --classes 10 ||
      echo "setup: the quick tune failed; the main job runs with the tuning above" ;;
esac
# 28-px grey images at 63: flips only, no crop jitter or lighting (the recipe of docs/BENCHMARKS.md)
build/alexnet train --model alexnet-half --data fashion-mnist --val-fraction 0.02 --input-size 63 \
  --resize 63 --pca-std 0 \
  --batch 32 --epochs 1 --max-steps 300 --lr 0.01 --lr-schedule cosine --val-every 100 --out "$out"
build/alexnet eval --weights "$out/best.safetensors" --data fashion-mnist:test
/usr/bin/python3 tools/plot.py "$out/log.jsonl"
echo "checkpoints: $out/best.safetensors, $out/last.safetensors; log: $out/log.jsonl; curves: $out/curves.png"
