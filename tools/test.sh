#!/usr/bin/env bash
# The README's test command: checks the style (tools/check-style.sh), builds and runs the whole suite,
# then again with AddressSanitizer and UndefinedBehaviorSanitizer on the host code. Fails when no OpenCL
# device is found.
set -euo pipefail
cd "$(dirname "$0")/.."
# Format and function lengths first: seconds, and a failure there needs no build to be seen.
tools/check-style.sh
jobs=$(nproc)
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo
cmake --build build -j"$jobs"
ctest --test-dir build --output-on-failure -LE quick
# The sanitizer pass covers the host code (the PyTorch agreement tests, Python on an unchanged C path,
# run once above); the OpenCL driver's own allocations are not ours to police, so leak detection is off
# (PoCL keeps compiler state alive until exit).
cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=RelWithDebInfo -DALEXNET_SANITIZE=ON
cmake --build build-asan -j"$jobs"
ASAN_OPTIONS=detect_leaks=0:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
  ctest --test-dir build-asan --output-on-failure -LE "pytorch|slow"
# A minute of coverage-guided fuzzing of the safetensors parser (clang, libFuzzer, ASan + UBSan).
tools/fuzz.sh 60
