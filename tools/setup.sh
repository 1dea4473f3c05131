#!/usr/bin/env bash
# The README's first command: install the dependencies, build, and run the main job.
set -euo pipefail
cd "$(dirname "$0")/.."
tools/install-deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo
cmake --build build -j"$(nproc)"
build/alexnet devices
build/alexnet step --batch 16 --classes 1000 --steps 2
