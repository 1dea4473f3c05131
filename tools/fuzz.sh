#!/bin/bash
# Builds the safetensors fuzzer with clang (libFuzzer + AddressSanitizer + UndefinedBehaviorSanitizer)
# and runs it for SECONDS (default 60) from the committed seed corpus; new inputs and any crash file go
# to BUILD_DIR (default build-fuzz/, ignored by git). Exits non-zero on a crash, leak or timeout.
#   tools/fuzz.sh [SECONDS] [BUILD_DIR]
# Needs clang and its libFuzzer runtime (Debian: clang, libclang-rt-14-dev or the clang-14 package's
# own copy), libcjson-dev, pkg-config, and the OpenCL headers the project builds with.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
secs=${1:-60}
out=${2:-$root/build-fuzz}
cc=${CC:-clang}
mkdir -p "$out/corpus-work"

"$cc" -std=c11 -g -O1 -Wall -Wextra -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all \
  -DCL_TARGET_OPENCL_VERSION=120 -I"$root/include" -I"$root/src" $(pkg-config --cflags libcjson) \
  "$root/tests/fuzz/fuzz_safetensors.c" "$root/src/io/safetensors.c" "$root/src/runtime/status.c" \
  $(pkg-config --libs libcjson) -o "$out/fuzz_safetensors"

echo "fuzzing the safetensors parser for ${secs} s ($out/fuzz.log)"
rc=0
"$out/fuzz_safetensors" -max_total_time="$secs" -max_len=4096 -timeout=10 -rss_limit_mb=2048 \
  -print_final_stats=1 -dict="$root/tests/fuzz/safetensors.dict" -artifact_prefix="$out/" \
  "$out/corpus-work" "$root/tests/fuzz/corpus" > "$out/fuzz.log" 2>&1 || rc=$?
grep -E "^#[0-9]+[[:space:]]+(INITED|DONE)|stat::|ERROR|SUMMARY|Test unit written" "$out/fuzz.log" || true
if [ "$rc" -ne 0 ]; then
  echo "fuzz.sh: the fuzzer failed (exit $rc): see $out/fuzz.log and the crash file it names" >&2
  tail -n 40 "$out/fuzz.log" >&2
fi
exit "$rc"
