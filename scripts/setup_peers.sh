#!/usr/bin/env bash
# The peers' own code for the adapters' tests, in .peers-site: verl 0.9.1 (tests/test_verl.py) and
# OpenRLHF 0.11.2's reward client (tests/test_openrlhf_own_code.py). Not in .venv: verl pins
# transformers<5.11 and ray[default], OpenRLHF vLLM and DeepSpeed, which .venv does not meet. Everything
# is pinned and installed without resolving dependencies, so nothing in .venv changes; the tests put
# .peers-site at the END of sys.path, so .venv's packages win wherever both have one. Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x .venv/bin/python ] || { echo "setup_peers: run scripts/setup.sh first" >&2; exit 1; }
if [ -f .peers-site/.complete ]; then exit 0; fi
rm -rf .peers-site
.venv/bin/python -m pip install --quiet --disable-pip-version-check --no-deps --target .peers-site \
  "verl==0.9.1" "openrlhf==0.11.2" "pylatexenc==2.11" "ray==2.60.0" "tensordict==0.10.0" "codetiming==1.4.0" "omegaconf==2.4.0" "hydra-core==1.3.8" \
  "antlr4-python3-runtime==4.9.3" "torchdata==0.11.0" "msgpack==1.2.4" "jsonschema==4.26.0" \
  "jsonschema-specifications==2025.9.1" "referencing==0.37.0" "rpds-py==2026.9.1" "attrs==26.1.0" "pyvers==0.2.3" \
  "cloudpickle==3.1.3" "aiohttp==3.14.5" "multidict==7.2.1" "yarl==1.25.1" "propcache==0.5.4" \
  "aiohappyeyeballs==2.7.1" "aiosignal==1.4.0" "frozenlist==1.8.0" "orjson==3.13.0" 2>&1 | grep -v "is ignored" || true
touch .peers-site/.complete
echo "setup_peers: verl 0.9.1 and OpenRLHF 0.11.2 in .peers-site" >&2
