#!/usr/bin/env bash
# SFT throughput/MFU on one GPU: an 8B-shaped Llama (Llama-3-8B shape, random init) through the
# SFT recipe, full fine-tune and LoRA r=16, each arm in its own process so an OOM or a hang
# costs only that arm. Run from the repository root, on a machine with the GPU stack installed
# (pydantic and its dependencies may come as wheels in .whl/):
#
#     bash benchmarks/device/sft_gpu.sh               # results in $OUT (default ./bench_out/sft_gpu)
#     SFT_GPU_SMOKE=1 bash benchmarks/device/sft_gpu.sh   # tiny shapes: checks the script on a CPU
#
# Writes $OUT/sft_gpu.jsonl (the matmul ceiling, then one JSON line per arm as it finishes; an
# arm that timed out or died without a line gets {"arm", "status": "timeout"|"failed", "rc"})
# and $OUT/log.txt (everything). The whole run stays within SFT_GPU_BUDGET_S (default 340 s).
set -u
export PYTHONUNBUFFERED=1 TOKENIZERS_PARALLELISM=false
export PYTORCH_CUDA_ALLOC_CONF=${PYTORCH_CUDA_ALLOC_CONF:-expandable_segments:True}
OUT=${OUT:-$PWD/bench_out/sft_gpu}
mkdir -p "$OUT"
JSONL=$OUT/sft_gpu.jsonl
LOG=$OUT/log.txt
: > "$JSONL"
exec > >(tee -a "$LOG") 2>&1
BUDGET=${SFT_GPU_BUDGET_S:-340}
SMOKE=${SFT_GPU_SMOKE:-0}
PY=${PYTHON:-python3}

WHEELS=${SFT_GPU_WHEELS:-.whl}
if ls "$WHEELS"/*.whl >/dev/null 2>&1; then
  $PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site "$WHEELS"/*.whl \
    || echo "wheel install failed"
  export PYTHONPATH=/tmp/site:$PWD${PYTHONPATH:+:$PYTHONPATH}
else
  export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH}
fi

echo "== device"; nvidia-smi -L 2>&1 || echo "no nvidia-smi"
$PY - <<'PY'
import sys, torch, transformers
print("python", sys.version.split()[0], "| torch", torch.__version__, "cuda", torch.version.cuda,
      "| transformers", transformers.__version__)
for name in ("peft", "accelerate", "pydantic", "flash_attn"):
    try:
        mod = __import__(name); print(name, getattr(mod, "__version__", "?"), mod.__file__)
    except ImportError as err:
        print(name, "missing:", err)
PY

left() { echo $(( BUDGET - SECONDS )); }

echo "== bf16 matmul ceiling"
CEILING=$(timeout 60 $PY - "$SMOKE" <<'PY' | tail -n 1
import json, sys, time, torch
smoke = sys.argv[1] == "1"
dev = "cuda" if torch.cuda.is_available() else "cpu"
n = 256 if smoke or dev == "cpu" else 8192
a = torch.randn(n, n, device=dev, dtype=torch.bfloat16)
b = torch.randn(n, n, device=dev, dtype=torch.bfloat16)
sync = torch.cuda.synchronize if dev == "cuda" else (lambda: None)
for _ in range(3):
    a @ b
sync()
rates = []
for _ in range(10):
    t = time.perf_counter(); a @ b; sync(); dt = time.perf_counter() - t
    rates.append(2 * n**3 / dt / 1e12)
rates.sort()
line = {"benchmark": "bf16_matmul", "arm": "matmul_ceiling", "n": n, "device": dev, "iters": 10,
        "tflops_median": round(rates[5], 2), "tflops_max": round(rates[-1], 2), "tflops_min": round(rates[0], 2)}
print(json.dumps(line), file=sys.stderr)
print(json.dumps(line))
PY
)
if [ -n "$CEILING" ]; then
  echo "$CEILING" >> "$JSONL"
  CEIL_TF=$($PY -c 'import json,sys; print(json.loads(sys.argv[1])["tflops_median"])' "$CEILING" 2>/dev/null)
else
  echo '{"arm": "matmul_ceiling", "status": "failed"}' >> "$JSONL"
fi
CEIL_ARGS=(--peak-tflops 989)   # H200 SXM dense bf16 datasheet
$PY -c 'import sys; sys.exit(float(sys.argv[1]) <= 0)' "${CEIL_TF:-0}" 2>/dev/null && CEIL_ARGS+=(--ceiling-tflops "$CEIL_TF")

if [ "$SMOKE" = 1 ]; then
  SHAPE=(--layers 2 --hidden 256 --heads 4 --kv-heads 2 --intermediate 512 --vocab 2048 --seq 256 --steps 4)
else
  SHAPE=(--seq 4096 --steps 12)   # Llama-3-8B shape (the bench's defaults); median of the 10 after 2 warmup
fi

# name | per-arm timeout (s) | extra flags   (order = priority; later arms get what time is left)
ARMS=(
  "full_ckpt|140|--method full"
  "lora_r16_ckpt|100|--method lora --lora-r 16"
  "full_nockpt|100|--method full --no-grad-ckpt"
)
# SFT_GPU_ARMS="name|timeout|flags;name|timeout|flags" replaces the list (e.g. to rerun one arm)
[ -n "${SFT_GPU_ARMS:-}" ] && IFS=';' read -r -a ARMS <<< "$SFT_GPU_ARMS"
MIN_ARM_S=${SFT_GPU_MIN_ARM_S:-45}
for spec in "${ARMS[@]}"; do
  IFS='|' read -r name limit flags <<< "$spec"
  remaining=$(( $(left) - 5 ))
  [ "$remaining" -lt "$limit" ] && limit=$remaining
  if [ "$limit" -lt "$MIN_ARM_S" ]; then
    echo "== arm $name skipped: ${remaining}s left"
    echo "{\"arm\": \"$name\", \"status\": \"skipped\", \"seconds_left\": $remaining}" >> "$JSONL"
    continue
  fi
  echo "== arm $name (timeout ${limit}s, elapsed ${SECONDS}s)"
  t0=$SECONDS
  # shellcheck disable=SC2086
  arm_out=$(mktemp)
  timeout -k 5 "$limit" $PY benchmarks/sft_bench.py --gpu --arm "$name" "${SHAPE[@]}" "${CEIL_ARGS[@]}" $flags \
    > "$arm_out"
  rc=$?
  cat "$arm_out"
  line=$(grep '^{' "$arm_out" | tail -n 1)
  rm -f "$arm_out"
  if [ -n "$line" ]; then
    echo "$line" >> "$JSONL"
  else
    status=failed; { [ "$rc" = 124 ] || [ "$rc" = 137 ]; } && status=timeout
    echo "{\"arm\": \"$name\", \"status\": \"$status\", \"rc\": $rc, \"wall_s\": $(( SECONDS - t0 ))}" >> "$JSONL"
  fi
  echo "== arm $name done rc=$rc in $(( SECONDS - t0 ))s"
done
echo "== results ($JSONL, total ${SECONDS}s)"
cat "$JSONL"
