#!/usr/bin/env bash
# The peer's environment for benchmarks/bench_vs_trl.py: TRL and its stack in .venv-trl, pinned to
# the versions ../shared/bench/trl_grpo/README.md measured (torch first: the CPU wheel), and peft for the LoRA
# comparison (bench_vs_trl.py --lora, trl_grpo_lora_bench.py; the peft version judgerl's own .venv has).
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x .venv-trl/bin/python ] || python3 -m venv .venv-trl
pip() { .venv-trl/bin/python -m pip install --quiet --disable-pip-version-check "$@" 2>&1 | grep -v "is ignored" || true; }
.venv-trl/bin/python -c "import torch" 2>/dev/null || pip "torch==2.13.0"
pip "trl==1.16.0" "transformers==5.23.0" "accelerate==1.15.0" "datasets==5.2.0" "tokenizers==0.23.3" "peft==0.21.2"
.venv-trl/bin/python -c "import trl, peft; print('TRL', trl.__version__, '+ peft', peft.__version__, 'in .venv-trl')"
