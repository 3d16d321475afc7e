#!/usr/bin/env bash
# The SmolLM2 example trained against a reward model distilled from the 1.5B judge vs against the
# judge itself, same steps and seed (issue 11, "Measured", third bullet). Each side runs in its own
# processes; by default the two sides run at the same time (--sequential: one after the other).
#
#   benchmarks/rm_vs_judge/run.sh [--steps 12] [--label-prompts 40] [--samples 4] [--threads 1]
#                                 [--min-margin 0.03] [--sequential] [--out DIR]
#
# judge side:  judgerl train (the example, rl.steps=STEPS)
# RM side:     judgerl label (LABEL_PROMPTS data.rl prompts x SAMPLES completions of the policy
#              before RL, pairs from the judge's scores) -> judgerl train-rm (rm.yaml) ->
#              judgerl train rm_side.yaml (judge.method reward_model; the LLM judge audits a sample
#              every rl.monitor.every steps)
# then summarise.py scores both runs' held-out answers with the LLM judge and prints both sides.
# Each side has its own judgment cache in OUT (a cache from earlier runs would make a side cheaper).
# --threads: llama.cpp threads of the 1.5B judge (1 is steadier on a loaded machine; MODELS.md).
# --min-margin: judgerl label's least reward difference for a pair (the 1.5B judge's rewards of the
# example's completions mostly lie within 0.1 of each other: 0.1 made 23 pairs of 180, 0.03 made 105).
set -euo pipefail
STEPS=12; LABEL_PROMPTS=40; SAMPLES=4; THREADS=1; MIN_MARGIN=0.03; PARALLEL=1; OUT=""
while [ $# -gt 0 ]; do
  case "$1" in
    --steps) STEPS="$2"; shift 2;;
    --label-prompts) LABEL_PROMPTS="$2"; shift 2;;
    --samples) SAMPLES="$2"; shift 2;;
    --threads) THREADS="$2"; shift 2;;
    --min-margin) MIN_MARGIN="$2"; shift 2;;
    --sequential) PARALLEL=0; shift;;
    --out) OUT="$2"; shift 2;;
    *) echo "unknown option $1 (--steps N, --label-prompts N, --samples N, --threads N, --min-margin X, --sequential, --out DIR)" >&2
       exit 2;;
  esac
done
HERE="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
JUDGERL="$ROOT/.venv/bin/judgerl"
OUT="${OUT:-$ROOT/benchmarks/rm_vs_judge/out-$(date -u +%Y%m%d-%H%M%S)}"
mkdir -p "$OUT"
export OMP_NUM_THREADS=1
TIMES="$OUT/timings.jsonl"
: > "$TIMES"
phase() {  # phase NAME COMMAND...: runs it, appends {phase, seconds, load, start, end} to timings.jsonl
  local name="$1"; shift
  local start end began
  start=$(date +%s.%N); began=$(date -u +%H:%M:%S)
  echo "== $name: $*" >&2
  "$@"
  end=$(date +%s.%N)
  printf '{"phase": "%s", "seconds": %s, "loadavg": "%s", "started": "%s", "ended": "%s"}\n' "$name" \
    "$(echo "$end - $start" | bc)" "$(cut -d' ' -f1-3 /proc/loadavg)" "$began" "$(date -u +%H:%M:%S)" >> "$TIMES"
}
"$JUDGERL" config --example smollm2-lora-friendly > "$OUT/judge_side.yaml"
COMMON=(--set "rl.steps=$STEPS" --set "output_dir=$OUT" --set "rl.checkpoint_every=0" --set "judge.threads=$THREADS")

judge_side() {
  phase judge_train "$JUDGERL" train "$OUT/judge_side.yaml" "${COMMON[@]}" \
    --set "judge.cache_path=$OUT/cache_judge.sqlite" > "$OUT/judge_side.log" 2>&1
}
rm_side() {
  phase label "$JUDGERL" label "$OUT/judge_side.yaml" -o "$OUT/pairs.jsonl" --samples "$SAMPLES" \
    --limit "$LABEL_PROMPTS" --method pairwise_from_scores --min-margin "$MIN_MARGIN" --set "judge.cache_path=$OUT/cache_rm.sqlite" \
    --set "judge.threads=$THREADS" > "$OUT/rm_side.log" 2>&1
  phase train_rm "$JUDGERL" train-rm "$HERE/rm.yaml" --set "data.train=[$OUT/pairs.jsonl]" --set "output_dir=$OUT" \
    >> "$OUT/rm_side.log" 2>&1
  local rm_run
  rm_run="$(ls -d "$OUT"/rm__* | head -1)"
  phase rm_train "$JUDGERL" train "$HERE/rm_side.yaml" "${COMMON[@]}" --set "judge.reward_model.path=$rm_run" \
    --set "judge.cache_path=$OUT/cache_rm.sqlite" >> "$OUT/rm_side.log" 2>&1
}
if [ "$PARALLEL" = 1 ]; then
  judge_side & JUDGE_PID=$!
  rm_side & RM_PID=$!
  wait "$JUDGE_PID"; wait "$RM_PID"
else
  judge_side
  rm_side
fi
"$ROOT/.venv/bin/python" "$HERE/summarise.py" "$OUT"
