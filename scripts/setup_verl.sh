#!/usr/bin/env bash
# verl 0.9.1's own code for tests/test_verl.py, in .verl-site (not in .venv: verl pins
# transformers<5.11 and ray[default], which .venv's transformers does not meet). Everything is
# pinned and installed without resolving dependencies, so nothing in .venv changes; the test puts
# .verl-site at the END of sys.path, so .venv's packages win wherever both have one. Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x .venv/bin/python ] || { echo "setup_verl: run scripts/setup.sh first" >&2; exit 1; }
if [ -f .verl-site/.complete ]; then exit 0; fi
rm -rf .verl-site
.venv/bin/python -m pip install --quiet --disable-pip-version-check --no-deps --target .verl-site \
  "verl==0.9.1" "ray==2.60.0" "tensordict==0.10.0" "codetiming==1.4.0" "omegaconf==2.4.0" "hydra-core==1.3.8" \
  "antlr4-python3-runtime==4.9.3" "torchdata==0.11.0" "msgpack==1.2.4" "jsonschema==4.26.0" \
  "jsonschema-specifications==2025.9.1" "referencing==0.37.0" "rpds-py==2026.9.1" "attrs==26.1.0" "pyvers==0.2.3" \
  "cloudpickle==3.1.3" "aiohttp==3.14.5" "multidict==7.2.1" "yarl==1.25.1" "propcache==0.5.4" \
  "aiohappyeyeballs==2.7.1" "aiosignal==1.4.0" "frozenlist==1.8.0" "orjson==3.13.0" 2>&1 | grep -v "is ignored" || true
touch .verl-site/.complete
echo "setup_verl: verl 0.9.1 in .verl-site" >&2
