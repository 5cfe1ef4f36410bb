#!/usr/bin/env bash
# lpc on an NVIDIA GPU, in one go (at most 8 minutes): find the Vulkan loader (or unpack Debian's libvulkan1 carried in
# scripts/gpu-debs/ when the OS image lacks it), point it at NVIDIA's Vulkan driver (writing an ICD file when the image
# has the driver's libGLX_nvidia.so.0 but no JSON for it), print the adapter Dawn opens, run the WebGPU test suites
# and the benchmark.
#
#   scripts/gpu-check.sh [BENCH_JSON]     # bench figures to BENCH_JSON (default: $OUT/bench.json, else ./bench-gpu.json)
#
# Needs node_modules (npm ci) and an NVIDIA GPU; without one it stops at once with one line and exit status 2.
# GPU_CHECK_SECONDS changes the 480-second budget (the tests get what the bench does not need, at most 4 minutes).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
say() { printf 'gpu-check: %s\n' "$*" >&2; }
die() { local code=$1; shift; say "$*"; exit "$code"; }

BENCH_JSON=${1:-${OUT:+$OUT/bench.json}}
BENCH_JSON=${BENCH_JSON:-$ROOT/bench-gpu.json}
case $BENCH_JSON in /*) ;; *) BENCH_JSON=$PWD/$BENCH_JSON ;; esac
BUDGET=${GPU_CHECK_SECONDS:-480}
DEADLINE=$((SECONDS + BUDGET))
left() { echo $((DEADLINE - SECONDS)); }

# 0. an NVIDIA GPU (the driver's device nodes or its /proc entry; nvidia-smi when it is installed)
has_nvidia() {
  if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then return 0; fi
  [ -e /dev/nvidiactl ] || compgen -G '/proc/driver/nvidia/gpus/*' >/dev/null
}
has_nvidia || die 2 "no NVIDIA GPU here (no nvidia-smi that lists one, no /dev/nvidiactl, no /proc/driver/nvidia/gpus); this script checks lpc on one — on a CPU run npm test"
[ -d node_modules/webgpu ] || die 2 "node_modules/webgpu is missing: run npm ci first"
if command -v nvidia-smi >/dev/null 2>&1; then nvidia-smi -L >&2 || true; fi

TMP=$(mktemp -d "${TMPDIR:-/tmp}/lpc-gpu-check.XXXXXX")
trap 'rm -rf "$TMP"' EXIT

# 1. the Vulkan loader
lib_present() { # $1: a library's soname, found by the dynamic linker's cache or in the usual folders
  { command -v ldconfig >/dev/null 2>&1 && ldconfig -p 2>/dev/null | grep -q "$1"; } && return 0
  compgen -G "/usr/lib/x86_64-linux-gnu/$1*" >/dev/null || compgen -G "/usr/lib64/$1*" >/dev/null || compgen -G "/usr/lib/$1*" >/dev/null
}
if lib_present libvulkan.so.1; then
  say "Vulkan loader: found (libvulkan.so.1)"
else
  [ "$(uname -m)" = x86_64 ] || die 1 "no libvulkan.so.1 and the carried libvulkan1 .deb is for amd64, not $(uname -m): install the Vulkan loader (libvulkan1)"
  deb=$(compgen -G "$ROOT/scripts/gpu-debs/libvulkan1_*_amd64.deb" | head -n 1) || true
  [ -n "${deb:-}" ] || die 1 "no libvulkan.so.1 and no scripts/gpu-debs/libvulkan1_*_amd64.deb (see scripts/gpu-debs/README.md)"
  if command -v dpkg-deb >/dev/null 2>&1; then dpkg-deb -x "$deb" "$TMP/vulkan"
  elif command -v ar >/dev/null 2>&1; then mkdir -p "$TMP/vulkan" && (cd "$TMP" && ar x "$deb" data.tar.xz && tar -xJf data.tar.xz -C "$TMP/vulkan")
  else die 1 "no libvulkan.so.1, and neither dpkg-deb nor ar to unpack $deb"; fi
  export LD_LIBRARY_PATH="$TMP/vulkan/usr/lib/x86_64-linux-gnu${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
  say "Vulkan loader: unpacked $(basename "$deb") into $TMP/vulkan"
fi

# 2. NVIDIA's ICD (the loader's list of drivers), unless the caller chose one
if [ -n "${VK_ICD_FILENAMES:-}${VK_DRIVER_FILES:-}" ]; then
  say "ICD: as given (VK_ICD_FILENAMES=${VK_ICD_FILENAMES:-} VK_DRIVER_FILES=${VK_DRIVER_FILES:-})"
else
  icd=''
  for f in /usr/share/vulkan/icd.d/nvidia_icd.json /etc/vulkan/icd.d/nvidia_icd.json /usr/local/share/vulkan/icd.d/nvidia_icd.json; do
    [ -f "$f" ] && { icd=$f; break; }
  done
  if [ -z "$icd" ]; then
    lib_present libGLX_nvidia.so.0 || die 1 "no nvidia_icd.json and no libGLX_nvidia.so.0: the NVIDIA driver's Vulkan part is not in this image (in a container, NVIDIA_DRIVER_CAPABILITIES must include graphics)"
    icd=$TMP/nvidia_icd.json
    printf '{\n  "file_format_version": "1.0.0",\n  "ICD": { "library_path": "libGLX_nvidia.so.0", "api_version": "1.3.0" }\n}\n' >"$icd"
    say "ICD: wrote $icd for libGLX_nvidia.so.0"
  else
    say "ICD: $icd"
  fi
  export VK_ICD_FILENAMES=$icd VK_DRIVER_FILES=$icd # the former for older loaders, the latter for newer ones
fi

# 3. the adapter Dawn opens: it must be the GPU, not a CPU driver
probe=$(node scripts/probe-adapter.mjs 2>&1) || die 1 "Dawn finds no WebGPU adapter: $probe"
printf '%s\n' "$probe" | grep -v 'artificially reduced' >&2 || true
printf '%s\n' "$probe" | grep -qi nvidia || die 1 "the adapter Dawn opens is not the NVIDIA GPU: $(printf '%s' "$probe" | tail -n 1)"

# 4. the WebGPU suites (CI=1: a missing adapter fails instead of skipping), then the benchmark with what is left
status=0
npx tsc -p tsconfig.json || die 1 "the build failed"
bench_needs=180
tests_time=$(( $(left) - bench_needs )); [ "$tests_time" -gt 240 ] && tests_time=240
[ "$tests_time" -ge 30 ] || die 1 "GPU_CHECK_SECONDS=$BUDGET leaves no time for the tests"
say "WebGPU tests (at most ${tests_time} s)"
CI=1 NODE_OPTIONS=--experimental-vm-modules timeout --kill-after=10 "$tests_time" npx jest --runInBand test/webgpu || { rc=$?; status=1; say "the WebGPU tests failed (exit $rc$([ $rc = 124 ] && echo ': out of time'))"; }
bench_time=$(( $(left) - 5 ))
if [ "$bench_time" -ge 30 ]; then
  say "bench (at most ${bench_time} s) → $BENCH_JSON"
  mkdir -p "$(dirname "$BENCH_JSON")"
  timeout --kill-after=10 "$bench_time" node dist/bench/bench.js --json "$BENCH_JSON" || { rc=$?; status=1; say "the bench failed (exit $rc$([ $rc = 124 ] && echo ': out of time'))"; }
else
  status=1; say "no time left for the bench"
fi
say "$([ $status = 0 ] && echo 'all passed' || echo 'FAILED') in $SECONDS s"
exit $status
