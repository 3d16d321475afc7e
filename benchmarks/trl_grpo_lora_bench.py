#!/usr/bin/env python3
"""TRL's side of the GRPO workload with a LoRA adapter (TRL + peft): a thin wrapper around the shared,
read-only ../shared/bench/trl_grpo/trl_grpo_bench.py, which is NOT edited.

It runs that script's own main() (same prompts: make_prompts, same reward: yes_reward, same
arguments and GRPOConfig, same timers and RESULT_JSON), the one difference being a
`peft_config=LoraConfig(...)` given to GRPOTrainer: `trl.GRPOTrainer` is replaced, for this process,
by a subclass whose __init__ adds the keyword. The LoRA settings are judgerl's PolicyConfig defaults
(src/judgerl/config.py: lora_r 16, lora_alpha 32, lora_dropout 0.0) and the target modules those
of judgerl's LoraSettings ("all-linear": every linear layer but the output head; on Llama q/k/v/o
and gate/up/down). After the run the RESULT_JSON written to --json-out gets "+lora(...)" in its
mode and the trainable parameter count.

    .venv-trl/bin/python benchmarks/trl_grpo_lora_bench.py --model DIR --steps 8 --seed 0 --trl-defaults \
        [--lora-r 16 --lora-alpha 32 --lora-dropout 0.0 --lora-targets all-linear] [trl_grpo_bench.py's options]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

SHARED = Path(__file__).resolve().parents[2] / "shared" / "bench" / "trl_grpo"
sys.path.insert(0, str(SHARED))
import trl_grpo_bench  # noqa: E402  the shared harness (sets the offline environment before HF imports)

TRAINABLE: dict[str, int] = {}


def main() -> None:
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--lora-r", type=int, default=16)
    parser.add_argument("--lora-alpha", type=float, default=32.0)
    parser.add_argument("--lora-dropout", type=float, default=0.0)
    parser.add_argument("--lora-targets", default="all-linear",
                        help="all-linear, or module names separated by commas (q_proj,k_proj,...)")
    ours, rest = parser.parse_known_args()
    targets = ours.lora_targets if ours.lora_targets == "all-linear" else ours.lora_targets.split(",")

    import trl
    from peft import LoraConfig

    peft_config = LoraConfig(r=ours.lora_r, lora_alpha=ours.lora_alpha, lora_dropout=ours.lora_dropout,
                             target_modules=targets, task_type="CAUSAL_LM")
    base = trl.GRPOTrainer

    class GRPOTrainerWithLoRA(base):
        def __init__(self, *args, **kwargs):
            kwargs["peft_config"] = peft_config
            super().__init__(*args, **kwargs)
            params = list(self.model.parameters())
            TRAINABLE["trainable"] = sum(p.numel() for p in params if p.requires_grad)
            TRAINABLE["total"] = sum(p.numel() for p in params)
            print(f"TRL + peft LoRA (r={ours.lora_r}, alpha={ours.lora_alpha:g}, dropout={ours.lora_dropout:g}, "
                  f"targets={targets}): {type(self.model).__name__}, trainable params {TRAINABLE['trainable']:,} of "
                  f"{TRAINABLE['total']:,}", file=sys.stderr, flush=True)
            if not TRAINABLE["trainable"] or not any("lora_" in n for n, p in self.model.named_parameters()
                                                     if p.requires_grad):
                raise SystemExit("peft LoRA did not give trainable adapter parameters")

    trl.GRPOTrainer = GRPOTrainerWithLoRA
    sys.argv = [sys.argv[0], *rest]
    trl_grpo_bench.main()

    json_out = next((rest[i + 1] for i, a in enumerate(rest[:-1]) if a == "--json-out"), None)
    if json_out:  # trl_grpo_bench.py appends one line; mark it as the LoRA run
        lines = Path(json_out).read_text().splitlines()
        result = json.loads(lines[-1])
        result["mode"] += f"+lora(r={ours.lora_r},alpha={ours.lora_alpha:g},{ours.lora_targets})"
        result["trainable_params"] = TRAINABLE.get("trainable")
        lines[-1] = json.dumps(result)
        Path(json_out).write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
