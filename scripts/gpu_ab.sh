#!/usr/bin/env bash
# A change against its baseline on one GPU machine, in one call: builds the baseline's source tree and
# this tree (cmake --preset cuda, side by side), runs the [cuda] tests and the compute-sanitizer case on
# this tree, then `mmi bench attention` RUNS times on each, alternating (baseline first), and prints the
# kernel and index-build times of every case side by side. Runs on different machines of one type differ
# by a few percent, so a change is only judged against a baseline measured in the same call.
#   git archive <baseline-rev> | (mkdir -p ab_base && tar -x -C ab_base)   # on the development machine
#   METHODS=vertical_slash,a_shape LENGTHS=128K,512K scripts/gpu_ab.sh ab_base [OUT_DIR]
# ab_base is not ignored by git, so that a copy of the working tree sent to a GPU machine carries it;
# delete it afterwards. OUT_DIR (default results/gpu_ab) receives base_rN.json, new_rN.json and the
# table (ab.txt). The GPU machine has LibTorch in its system Python and no network: this script installs
# nothing.
set -uo pipefail
cd "$(dirname "$0")/.."
BASE=${1:?usage: scripts/gpu_ab.sh BASELINE_SOURCE_DIR [OUT_DIR]}
OUT=${2:-${OUT:-results/gpu_ab}}
METHODS=${METHODS:-grid,vertical_slash,a_shape}
LENGTHS=${LENGTHS:-128K,512K}
RUNS=${RUNS:-2}
TESTS=${TESTS:-1}
[ -f "$BASE/CMakePresets.json" ] || { echo "gpu_ab: $BASE is not a source tree of this project" >&2; exit 2; }
mkdir -p "$OUT"
step() { printf '\n== %s\n' "$*"; }

step "device"
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader

step "build: the baseline ($BASE) and this tree, side by side"
export TORCH_CUDA_ARCH_LIST=${TORCH_CUDA_ARCH_LIST:-9.0a}
TORCH_PREFIX=$(python3 -c 'import torch; print(torch.utils.cmake_prefix_path)')
jobs=$(( $(nproc) / 2 > 0 ? $(nproc) / 2 : 1 ))
build() {  # build <source dir> <log> <targets...>
  local dir=$1 log=$2
  shift 2
  (cd "$dir" && cmake --preset cuda -DCMAKE_PREFIX_PATH="$TORCH_PREFIX" && cmake --build build/cuda -j "$jobs" --target "$@") \
    >"$log" 2>&1
}
start=$(date +%s)
build "$BASE" "$OUT/build_base.log" mmi &
base_build=$!
targets=(mmi)
[ "$TESTS" = 1 ] && targets+=(mmi_tests)
build . "$OUT/build_new.log" "${targets[@]}"
new_status=$?
wait "$base_build"
base_status=$?
echo "built in $(( $(date +%s) - start )) s"
for side in base new; do
  status_var=${side}_status
  if [ "${!status_var}" != 0 ]; then
    grep -E "error" -A4 "$OUT/build_$side.log" | head -40
    echo "gpu_ab: the $side build failed (log: $OUT/build_$side.log)" >&2
    exit 1
  fi
done

status=0
if [ "$TESTS" = 1 ]; then
  step "[cuda] tests and compute-sanitizer on this tree"
  build/cuda/tests/mmi_tests "[cuda]" >"$OUT/tests.log" 2>&1 || status=1
  tail -2 "$OUT/tests.log"
  if command -v compute-sanitizer >/dev/null; then
    compute-sanitizer --tool memcheck --error-exitcode 3 build/cuda/tests/mmi_tests "[sanitizer]" \
      >"$OUT/sanitizer.log" 2>&1 || status=1
    grep -E "ERROR SUMMARY" "$OUT/sanitizer.log" | tail -1
  fi
fi

step "mmi bench attention: $METHODS at $LENGTHS, $RUNS runs each, alternating"
for run in $(seq 1 "$RUNS"); do
  for side in base new; do
    binary=build/cuda/harness/mmi
    [ "$side" = base ] && binary=$BASE/build/cuda/harness/mmi
    "$binary" bench attention --methods "$METHODS" --lengths "$LENGTHS" --baselines none --warmup 1 --repeats 5 \
      --json "$OUT/${side}_r$run.json" >"$OUT/${side}_r$run.txt" 2>&1 || { echo "$side run $run failed"; status=1; }
  done
done

python3 - "$OUT" <<'PY' | tee "$OUT/ab.txt"
import collections, glob, json, os, sys
out = sys.argv[1]
cases = collections.defaultdict(lambda: collections.defaultdict(list))  # (tokens, configuration) -> side -> cases
for path in sorted(glob.glob(os.path.join(out, "*_r*.json"))):
    side = os.path.basename(path).split("_r")[0]
    for c in json.load(open(path))["cases"]:
        if c.get("run_ms") is not None:
            cases[(c["tokens"], c["method"], c["configuration"])][side].append(c)
def span(values, fmt):
    lo, hi = min(values), max(values)
    return (fmt % lo) if fmt % lo == fmt % hi else (fmt % lo) + "-" + (fmt % hi)
print(f"{'tokens':>8}  {'method':<36} {'kernel ms base':>16} {'kernel ms new':>16} {'new/base':>8}"
      f" {'index ms base':>14} {'index ms new':>14}")
for (tokens, method, configuration), sides in sorted(cases.items()):
    if "base" not in sides or "new" not in sides:
        continue
    lines = [part for part in configuration.replace(")", ",").split(",") if part.startswith("lines=")]
    name = method + (" " + lines[0] if method == "grid" and lines else "")
    run = {side: [c["run_ms"] for c in sides[side]] for side in sides}
    plan = {side: [c["plan_ms"] for c in sides[side] if c.get("plan_ms") is not None] for side in sides}
    ratio = (sum(run["new"]) / len(run["new"])) / (sum(run["base"]) / len(run["base"]))
    index = {side: span(plan[side], "%.3f") if plan[side] else "-" for side in sides}
    print(f"{tokens:>8}  {name[:36]:<36} {span(run['base'], '%.3f'):>16} {span(run['new'], '%.3f'):>16}"
          f" {ratio:>8.3f} {index['base']:>14} {index['new']:>14}")
PY
exit $status
