#!/usr/bin/env bash
# The project on a second OpenCL implementation, Oclgrind, with its checks: every kernel forward and
# backward and the layers' CLBlast calls on small shapes (test_layers with ALEXNET_LAYERS_SMALL=1, once per
# kernel variant), the project's GEMM kernels and CLBlast's against a plain-C reference (test_gemm), then
# tests/test_oclgrind.c (each model's test width trained one step and run once for
# inference on Oclgrind against PoCL, and alexnet-narrow's column split over PoCL + Oclgrind).
# Oclgrind is registered beside PoCL as a second platform (an ICD directory of our own in OCL_ICD_VENDORS:
# Debian ships no oclgrind.icd) and configured by its environment variables, as its `oclgrind` wrapper
# would. It reports to OCLGRIND_LOG and does not change the exit status: any report fails here.
# usage: test_oclgrind.sh BUILD_TESTS_DIR WORK_DIR
set -euo pipefail
mkdir -p "$2"
tests=$(cd "$1" && pwd) work=$(cd "$2" && pwd)
lib=/usr/lib/oclgrind/liboclgrind-rt-icd.so
[ -e "$lib" ] || { echo "Oclgrind's ICD library $lib is missing: install oclgrind (tools/install-deps.sh)"; exit 1; }
mkdir -p "$work/vendors"
rm -f "$work"/vendors/*.icd "$work"/*.log
for icd in /etc/OpenCL/vendors/*.icd; do cp "$icd" "$work/vendors/"; done
echo "$lib" > "$work/vendors/zz-oclgrind.icd"
export OCL_ICD_VENDORS=$work/vendors OCLGRIND_CHECK_API=1 OCLGRIND_DATA_RACES=1
export ALEXNET_CACHE_DIR=$work/cache ALEXNET_NO_TUNING=1
# The runs at once: much of Oclgrind's time is serial (building CLBlast's kernels, one work-group
# of a small launch), so they share the cores better than one after the other.
run() { # name, then the command (in $work), in the background: $work/NAME.out its output
  local name=$1
  shift
  (
    t0=$SECONDS
    cd "$work"
    echo "== $name: $*"
    rc=0
    OCLGRIND_LOG=$work/$name.log "$@" || rc=$?
    echo "== $name: exit status $rc, $((SECONDS - t0)) s"
    exit $rc
  ) > "$work/$name.out" 2>&1 &
  pids+=($!) names+=("$name")
}
pids=() names=()
# the device by its name: Oclgrind's (its type says GPU as well as CPU, so the gpu variant by default)
# (uninitialized values checked too: the layer tests write every tensor from the host)
run layers_gpu env ALEXNET_DEVICE=Oclgrind ALEXNET_LAYERS_SMALL=1 OCLGRIND_UNINITIALIZED=1 "$tests/test_layers"
# the CPU variants: the layers whose kernels have two (fc, dropout, the loss and SGD have one, run above)
run layers_cpu env ALEXNET_DEVICE=Oclgrind ALEXNET_LAYERS_SMALL=1 ALEXNET_KERNELS=cpu ALEXNET_LAYERS_ONLY=conv_,lrn_,pool_ \
  OCLGRIND_UNINITIALIZED=1 "$tests/test_layers"
# the convolutions on the project's GEMM (an AVX-512 CPU's): conv1's phase planes and their GEMM kernels
# (layers/conv_phase.c), and inference's fully connected layer on the packed weight (layers/fc.c), which
# no other run reaches (Oclgrind's device does not choose that GEMM)
run layers_project_gemm env ALEXNET_DEVICE=Oclgrind ALEXNET_LAYERS_SMALL=1 ALEXNET_KERNELS=cpu \
  ALEXNET_GEMM=project ALEXNET_LAYERS_ONLY=conv_,fc_packed_ OCLGRIND_UNINITIALIZED=1 "$tests/test_layers"
# the project's GEMM kernels (forced with ALEXNET_GEMM=project inside test_gemm) and CLBlast's, every
# transpose pair, edges, slices and chunks
run gemm env ALEXNET_DEVICE=Oclgrind OCLGRIND_UNINITIALIZED=1 "$tests/test_gemm"
# Not the uninitialized-value check here: Oclgrind 21.10's does not see clEnqueueFillBuffer (it stores
# without telling its plugins) and forgets the rest of a buffer after a host write at an offset, and
# the nets zero their gradients by fills and upload a batch into part of a buffer
run models "$tests/test_oclgrind"
failed=0
for i in "${!pids[@]}"; do
  name=${names[$i]}
  wait "${pids[$i]}" || failed=1
  cat "$work/$name.out"
  if [ -s "$work/$name.log" ]; then
    echo "== $name: Oclgrind reported (first lines of $work/$name.log):"
    head -40 "$work/$name.log"
    failed=1
  else
    echo "== $name: no Oclgrind report"
  fi
done
echo "== Oclgrind checks: $([ $failed = 0 ] && echo passed || echo FAILED), $SECONDS s"
exit $failed
