#!/usr/bin/env bash
# All GPU measurements in one or two device calls (see docs/benchmarks.md).
# Usage on the GPU machine, from the repo root, with the wheels of KINDS.md installed:
#   bash benchmarks/gpu_all.sh A|B|C OUTDIR
# A: renderer parity/speed, reconstruct speed, HRN, RePaint.  B: DeepLabV3, run speed, occlusion.
# C: reconstruct and run speed only (a short call after changes to the fit).
set -u
part=$1
out=$2
mkdir -p "$out"
export PYTHONUNBUFFERED=1
step() {  # name, timeout seconds, command...
  local name=$1 limit=$2
  shift 2
  echo "=== $name: $*"
  local start=$SECONDS
  timeout "$limit" "$@" > "$out/$name.log" 2>&1
  echo "=== $name: exit $? after $((SECONDS - start)) s"
  tail -n 25 "$out/$name.log"
}
if [ "$part" = A ]; then
  step render_parity 120 python benchmarks/render_parity.py --device cuda --json-out "$out/render_parity.json"
  step render_parity_tests 120 python -m pytest tests/test_render_parity.py -q
  step render_speed 120 python benchmarks/render_speed.py --device cuda --photo-sizes 1024 2048 --json-out "$out/render_speed_cuda.json"
  step reconstruct_speed 200 python benchmarks/reconstruct_speed.py --device cuda --limit 10 --batch 16 --json-out "$out/reconstruct_speed_cuda.json"
  step hrn_speed 150 python benchmarks/hrn_speed.py --device cuda --json-out "$out/hrn_speed.json"
  step repaint_speed 200 python benchmarks/inpaint_repaint_speed.py --device cuda --json-out "$out/repaint_speed.json"
elif [ "$part" = C ]; then
  step reconstruct_speed 150 python benchmarks/reconstruct_speed.py --device cuda --limit 10 --batch 16 --json-out "$out/reconstruct_speed_cuda.json"
  step run_speed 200 python benchmarks/run_speed.py --device cuda --limit 8 --batch-size 8 --json-out "$out/run_speed_cuda.json"
else
  step segment_deeplab 60 python benchmarks/segment.py --data "${SHRN_SHARED_DATA:-../shared/data}" --backend deeplabv3 --random-weights deeplabv3_resnet101 --device cuda --only speed --json-out "$out/segment_deeplab_gpu.json"
  step run_speed 200 python benchmarks/run_speed.py --device cuda --limit 32 --batch-size 16 --json-out "$out/run_speed_cuda.json"
  step occlusion 300 python benchmarks/occlusion.py --device cuda --batch-size 16 --json-out "$out/occlusion_cuda.json" --figure "$out/occlusion_cuda.png"
fi
