#!/usr/bin/env bash
# The style checks CI runs before building: every C file under src/, include/ and tests/ is as
# clang-format (.clang-format at the root) writes it, no function in src/ is longer than 120 lines, and
# no file of src/ includes a folder above its own (tools/check_imports.py).
# Both checks run and report before the script fails, so one run lists everything to fix.
#   tools/check-style.sh           check
#   tools/check-style.sh --diff    also print what clang-format would change
# Fix the format with: clang-format -i --style=file FILE...  (the same major version: 14, Debian 12's;
# other versions break some lines differently).
set -euo pipefail
cd "$(dirname "$0")/.."

show_diff=0
if [ "${1:-}" = "--diff" ]; then show_diff=1; fi

clang_format=""
for candidate in clang-format-14 clang-format; do
  if command -v "$candidate" >/dev/null; then clang_format=$candidate; break; fi
done
if [ -z "$clang_format" ]; then
  echo "check-style: clang-format not found (tools/install-deps.sh installs it)" >&2
  exit 1
fi
version=$("$clang_format" --version | sed -n 's/.*version \([0-9]*\)\..*/\1/p')
if [ "$version" != 14 ]; then
  echo "check-style: warning: $clang_format is version $version; the format is defined by version 14" >&2
fi

status=0

# tests/fuzz/corpus holds fuzzer inputs, not sources.
mapfile -t files < <(find src include tests -path tests/fuzz/corpus -prune -o -type f \( -name '*.c' -o -name '*.h' \) -print | LC_ALL=C sort)
unformatted=()
for f in "${files[@]}"; do
  changed=$("$clang_format" --style=file "$f" | diff "$f" - | grep -c '^[<>]' || true)
  if [ "$changed" != 0 ]; then
    unformatted+=("  $f ($changed lines)")
    if [ "$show_diff" = 1 ]; then
      "$clang_format" --style=file "$f" | diff -u --label "$f" --label "$f (clang-format)" "$f" - || true
    fi
  fi
done
if [ "${#unformatted[@]}" -gt 0 ]; then
  echo "check-style: ${#unformatted[@]} of ${#files[@]} files differ from clang-format's output:" >&2
  printf '%s\n' "${unformatted[@]}" >&2
  echo "check-style: fix with: $clang_format -i --style=file FILE...   (see them with tools/check-style.sh --diff)" >&2
  status=1
fi

if ! /usr/bin/python3 tools/function_lengths.py --max 120 src; then
  status=1
fi

# The import rule of docs/ARCHITECTURE.md: each folder includes only the folders below it.
if ! /usr/bin/python3 tools/check_imports.py; then
  status=1
fi

if [ "$status" = 0 ]; then echo "check-style: format, function lengths and imports OK (${#files[@]} files)"; fi
exit "$status"
