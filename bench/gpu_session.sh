#!/usr/bin/env bash
# One GPU session's measurements for the whole study on one GPU, as one command within the device's
# 10-minute limit (a session has 15 minutes of device time in all, its start included):
#
#   bench/gpu_session.sh DIR OUT [--budget SECONDS] [--tiny] [--no-bf16] [--no-q1b]
#
#   DIR        what the GPU machine cannot download: DIR/wheels (bench/gpu_wheels.sh DIR/wheels
#              --python-version X.Y --keras-only --nas, X.Y the machine's Python) and DIR/fashion-mnist
#              (the four IDX files); about 45 MB, carried to the machine with the checkout
#   OUT        the reports: each run's study.json, study.md and logs, the pack layouts, nvidia-smi
#              dmon, the fp32/bf16 comparison (the trials' models stay in a scratch folder, $GPU_SCRATCH
#              or /tmp/fmstudy-gpu-session, because 171 of them are 2.6 GB)
#   --budget   seconds for all the steps (default 540); each step gets what is left, and a step cut
#              short leaves what it wrote (the same command again resumes each run on its scratch)
#   --tiny     tiny sizes, to try the script on a CPU: 2 epochs on 1,000 images, 2 workers, a slice of 2 + 2
#              trials of B and C, a 2-member layout check, a 1-trial, 1-epoch search
#   --no-bf16, --no-q1b   skip step 3 or 4
#
# Steps, in order of value:
#   1. the pack layouts (python -m bench.pack_lowering, 9 members of sweep B's kind, at most 120 s):
#      the fastest measured layout is the one the study uses (out: pack-layout.json)
#   2. the whole study (Question 1A + 1 + 8 + 81 + 81 trials x 10 epochs, all 60,000 images) packed
#      over 9 workers (A: its 8 optimizers beside Question 1A; B: 9 packs of 9; C: 9 packs of 9 with
#      conv3 and conv4 padded, --pad-filters 3,4: 9 programs to compile, not 81, at 1.22 times C's
#      FLOPs), MPS, TF32 (JAX's default), --chain study (out: tf32/); each run's JAX compilation cache
#      is in its scratch folder, so the same command run again compiles nothing it compiled before
#   3. the same in mixed_bfloat16 (out: bf16/), then python -m bench.gpu_compare tf32 bf16
#      (out: bf16-vs-tf32.md: the accuracy change with its standard error)
#   4. Question 1B: the study profile's AutoKeras ResNet search (out: q1b/)
# nvidia-smi dmon runs beside steps 2 and 3. The exit status is 0 when step 2 finished, else 1.
set -uo pipefail
usage() { awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; }
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(dirname "$HERE")"
PYTHON="${PYTHON:-python3}"
die() { echo "error: $*" >&2; exit 2; }
DIR=""; OUT=""; BUDGET=540; TINY=0; BF16=1; Q1B=1
while [ $# -gt 0 ]; do
  case "$1" in
    --budget) BUDGET="${2:-}"; shift 2 || die "--budget needs seconds" ;;
    --tiny) TINY=1; shift ;;
    --no-bf16) BF16=0; shift ;;
    --no-q1b) Q1B=0; shift ;;
    -h|--help) usage; exit 0 ;;
    -*) die "unknown option $1 (bench/gpu_session.sh --help)" ;;
    *) if [ -z "$DIR" ]; then DIR="$1"; elif [ -z "$OUT" ]; then OUT="$1"; else die "unexpected argument $1"; fi
       shift ;;
  esac
done
[ -n "$DIR" ] && [ -n "$OUT" ] || die "expected DIR and OUT (bench/gpu_session.sh --help)"
[[ "$BUDGET" =~ ^[0-9]+$ ]] && [ "$BUDGET" -ge 60 ] || die "--budget $BUDGET: expected whole seconds, at least 60"
[ -d "$DIR/fashion-mnist" ] || die "$DIR/fashion-mnist: no such folder (the four Fashion-MNIST IDX files)"
mkdir -p "$OUT" || die "$OUT: cannot be made"
OUT="$(cd "$OUT" && pwd)"
SCRATCH="${GPU_SCRATCH:-/tmp/fmstudy-gpu-session}"
SITE="$SCRATCH/site"
mkdir -p "$SCRATCH/runs"
DATA="$(cd "$DIR/fashion-mnist" && pwd)"
WHEELS=(); [ -d "$DIR/wheels" ] && WHEELS=(--wheels "$(cd "$DIR/wheels" && pwd)")
log() { echo "[gpu-session $(printf '%4d' "$SECONDS") s] $*" | tee -a "$OUT/session.log"; }
# Seconds left of the budget, at least 1 (timeout 0 would mean no limit).
left() { local l=$((BUDGET - SECONDS)); echo $((l > 1 ? l : 1)); }

SIZES=(); LAYOUT_ARGS=(--members 9 --images 6400); Q1B_SIZES=()
if [ "$TINY" = 1 ]; then
  SIZES=(--epochs 2 --train-size 1000 --test-size 200 --slice --sample 2 --parallel 2 --mode tiny-session)
  LAYOUT_ARGS=(--members 2 --images 256 --layouts unroll:host,vmap:host)
  Q1B_SIZES=(--q1b-trials 1 --q1b-epochs 1 --train-size 1000 --test-size 200)
fi
STUDY=(bash "$HERE/gpu_study.sh" --site "$SITE" "${WHEELS[@]}" --data "$DATA" --mps --packed
       --parallel 9 --pad-filters 3,4 --no-checkpoints --chain study "${SIZES[@]}")

log "setup: $("$PYTHON" -V 2>&1); budget $BUDGET s; scratch $SCRATCH"
bash "$HERE/gpu_study.sh" --site "$SITE" "${WHEELS[@]}" --install-only --q1b >>"$OUT/session.log" 2>&1 \
  || { log "setup failed (session.log)"; exit 1; }
export KERAS_BACKEND=jax PYTHONPATH="$ROOT:$SITE${PYTHONPATH:+:$PYTHONPATH}"

# 1. the pack layouts (pack_lowering writes each layout as it is measured: a cut-short run keeps them)
LAYOUT=()
timeout "$(( $(left) < 120 ? $(left) : 120 ))" "$PYTHON" -m bench.pack_lowering "${LAYOUT_ARGS[@]}" \
  --out "$OUT/pack-layout.json" >>"$OUT/session.log" 2>&1
rc=$?
best="$("$PYTHON" -c "
import json, sys
runs = [r for r in json.load(open(sys.argv[1]))['runs'] if r['members'] > 1]
best = max(runs, key=lambda r: r['images_per_second'])
print(best['lowering'], best['epoch_loop'], len(runs))" "$OUT/pack-layout.json" 2>/dev/null)"
if [ -n "$best" ]; then
  read -r lowering loop measured <<<"$best"
  LAYOUT=(--pack-lowering "$lowering" --epoch-loop "$loop")
  log "1. pack layouts: $measured measured (exit $rc); the fastest: $lowering + $loop (pack-layout.json)"
else
  log "1. pack layouts not measured (exit $rc, session.log); the study uses its automatic layout"
fi

# 2. and 3.: a study run beside nvidia-smi dmon, its reports copied to OUT
study_run() {
  local name="$1"; shift
  local dmon=""
  if command -v nvidia-smi >/dev/null 2>&1; then
    nvidia-smi dmon -s u -o T >"$OUT/$name-dmon.txt" 2>&1 & dmon=$!
  fi
  timeout --signal=INT --kill-after=20 "$(left)" "${STUDY[@]}" "${LAYOUT[@]}" --out "$SCRATCH/runs/$name" "$@" \
    >"$OUT/$name-run.log" 2>&1
  local rc=$?
  [ -z "$dmon" ] || kill "$dmon" 2>/dev/null
  mkdir -p "$OUT/$name"
  cp "$SCRATCH/runs/$name"/study.* "$OUT/$name/" 2>/dev/null
  cp -r "$SCRATCH/runs/$name/logs" "$OUT/$name/" 2>/dev/null
  return $rc
}
# Why a run did not finish: its one-line refusal, or the budget.
why() { grep -m1 '^error:' "$OUT/$1-run.log" || echo "not finished within the budget, or failed"; }
if study_run tf32; then STATUS=0; log "2. the study, TF32: $(grep -o 'done in [0-9,]* s' "$OUT/tf32-run.log" | tail -1)"
else STATUS=1; log "2. the study, TF32: $(why tf32) (tf32-run.log)"; fi

if [ "$BF16" = 1 ] && [ "$(left)" -gt 60 ]; then
  if study_run bf16 --dtype-policy mixed_bfloat16; then
    log "3. the study, bf16: $(grep -o 'done in [0-9,]* s' "$OUT/bf16-run.log" | tail -1)"
  else
    log "3. the study, bf16: $(why bf16) (bf16-run.log)"
  fi
  "$PYTHON" -m bench.gpu_compare "$OUT/tf32" "$OUT/bf16" --out "$OUT/bf16-vs-tf32.md" >/dev/null 2>>"$OUT/session.log" \
    && log "3. compared: bf16-vs-tf32.md"
fi

# 4. Question 1B
if [ "$Q1B" = 1 ] && [ "$(left)" -gt 60 ]; then
  timeout --signal=INT --kill-after=20 "$(left)" bash "$HERE/gpu_study.sh" --site "$SITE" --data "$DATA" \
    --stages '' --no-q1a --no-gemm --q1b "${Q1B_SIZES[@]}" --out "$SCRATCH/runs/q1b" >"$OUT/q1b-run.log" 2>&1
  mkdir -p "$OUT/q1b"
  cp "$SCRATCH/runs/q1b"/study.* "$OUT/q1b/" 2>/dev/null
  cp "$SCRATCH/runs/q1b/q1b/nas.json" "$OUT/q1b/" 2>/dev/null
  log "4. Question 1B: $(grep -o 'Q1B: test accuracy.*' "$OUT/q1b-run.log" | tail -1 || true)"
fi
log "done; ${SECONDS} s of $BUDGET"
exit "$STATUS"
