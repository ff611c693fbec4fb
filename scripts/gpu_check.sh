#!/usr/bin/env bash
# On the GPU machine, in one call: build the CUDA variant, run the GPU tests (plus compute-sanitizer on
# a small case) and the attention benchmark. Logs and JSON go to OUT_DIR (default results/gpu); the
# last thing printed is the benchmark table.
#   scripts/gpu_check.sh [OUT_DIR]
#   LENGTHS=16K,32K,64K,128K,256K,512K,1M METHODS=grid,vertical_slash,dense BASELINES=cudnn TESTS=0 \
#     scripts/gpu_check.sh
#   PREFILL_FRAMES=1024,2048 PREFILL_METHODS="dense;vertical_slash" LENGTHS= scripts/gpu_check.sh
#     (Qwen2.5-VL-7B geometry with random weights: latency pre-fill of generated 448x448 videos,
#      128 tokens per frame, into OUT_DIR/prefill.json and prefill.txt; LENGTHS empty skips the
#      attention benchmark)
# The GPU machine has LibTorch in its system Python and no network: this script installs nothing.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-${OUT:-results/gpu}}
LENGTHS=${LENGTHS-16K,32K,64K,128K}  # set but empty: no attention benchmark
METHODS=${METHODS:-grid,vertical_slash,a_shape,tri_shape,dense}
BASELINES=${BASELINES:-cudnn,flash}
TESTS=${TESTS:-1}   # GBENCH=1 also runs the Google Benchmark binary
mkdir -p "$OUT"
step() { printf '\n== %s\n' "$*"; }

step "device"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader | tee "$OUT/device.txt"

step "configure + build (cmake --preset cuda)"
export TORCH_CUDA_ARCH_LIST=${TORCH_CUDA_ARCH_LIST:-9.0a}
TORCH_PREFIX=$(python3 -c 'import torch; print(torch.utils.cmake_prefix_path)')
start=$(date +%s)
if ! cmake --preset cuda -DCMAKE_PREFIX_PATH="$TORCH_PREFIX" >"$OUT/configure.log" 2>&1; then
  tail -40 "$OUT/configure.log"; exit 1
fi
if ! cmake --build build/cuda -j "$(nproc)" >"$OUT/build.log" 2>&1; then
  grep -E "error|Error" -A4 "$OUT/build.log" | head -80; exit 1
fi
echo "built in $(( $(date +%s) - start )) s"

status=0
if [ "$TESTS" = 1 ]; then
  step "tests: every Catch2 case (the [cuda] ones run on this GPU)"
  build/cuda/tests/mmi_tests --durations yes >"$OUT/tests.log" 2>&1 || status=1
  tail -4 "$OUT/tests.log"
  step "compute-sanitizer memcheck on a small case"
  if command -v compute-sanitizer >/dev/null; then
    compute-sanitizer --tool memcheck --error-exitcode 3 build/cuda/tests/mmi_tests "[sanitizer]" \
      >"$OUT/sanitizer.log" 2>&1 || status=1
    grep -E "ERROR SUMMARY|passed|failed" "$OUT/sanitizer.log" | tail -3
  else
    echo "compute-sanitizer not found"
  fi
fi

if [ "${GBENCH:-0}" = 1 ]; then
  step "Google Benchmark: build/cuda/kernels/mmi_cuda_bench"
  build/cuda/kernels/mmi_cuda_bench --benchmark_out="$OUT/cuda_gbench.json" --benchmark_out_format=json \
    >"$OUT/cuda_gbench.txt" 2>&1 || status=1
  tail -20 "$OUT/cuda_gbench.txt"
fi

if [ -n "${PREFILL_FRAMES:-}" ]; then
  step "Qwen2.5-VL-7B pre-fill, random weights: frames ${PREFILL_FRAMES} x methods ${PREFILL_METHODS:-dense}"
  IFS=';' read -r -a prefill_methods <<<"${PREFILL_METHODS:-dense}"
  for frames in ${PREFILL_FRAMES//,/ }; do
    for i in "${!prefill_methods[@]}"; do
      build/cuda/harness/mmi ask --random-weights qwen2.5-vl-7b --synthetic-video "${frames}x448x448" \
        --question "What happens in the video?" --method "${prefill_methods[$i]}" --latency \
        --json "$OUT/prefill_${frames}_$i.json" >"$OUT/prefill_${frames}_$i.txt" 2>&1 || status=1
      grep -E "^(input|method|timings|peak|mmi)" "$OUT/prefill_${frames}_$i.txt"
    done
  done
  # One JSON (keyed by run) and one log for all runs: fewer files to carry back from the GPU machine.
  python3 - "$OUT" <<'PY' || status=1
import glob, json, os, sys
out = sys.argv[1]
runs = sorted(glob.glob(os.path.join(out, "prefill_*.json")))
merged = {os.path.basename(path): json.load(open(path)) for path in runs}
json.dump(merged, open(os.path.join(out, "prefill.json"), "w"), indent=2)
with open(os.path.join(out, "prefill.txt"), "w") as log:
    for path in runs:
        log.write(f"== {os.path.basename(path)[:-5]}\n" + open(path[:-5] + ".txt").read())
for path in runs:
    os.remove(path)
    os.remove(path[:-5] + ".txt")
PY
fi

if [ -n "$LENGTHS" ]; then
  step "benchmark: mmi bench attention --lengths $LENGTHS"
  build/cuda/harness/mmi bench attention --lengths "$LENGTHS" --methods "$METHODS" --baselines "$BASELINES" \
    --json "$OUT/bench_attention.json" 2>&1 | tee "$OUT/bench_attention.txt"
fi
exit $status
