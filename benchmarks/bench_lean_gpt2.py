#!/usr/bin/env python3
"""Micro-benchmark: the lean GPT-2 engine against HF generate + full-sequence forward (as TRL does).

One GRPO-sized batch on the bench models of /work/shared/bench/trl_grpo (make_tiny.py): 4 prompts
x 8 samples = 32 completions of at most 16 tokens, temperature 1, top-p 1. Phases, median over
--repeats (after one warm-up):

    sample   lean: LeanGPT2Policy.sample (tokenise, prefill each prompt once, KV-cache decode, decode text)
             hf:   tokenizer (32 left-padded rows) + model.generate(do_sample=True) + decode text
    fwd      lean: LeanGPT2Policy.score (shared prompt prefixes, LM head on completion tokens only)
             hf:   model(prompt + completion) logits at every position, log_softmax, gather (TRL on CPU)
    bwd      backward of a policy-gradient loss -sum(adv * logp) / tokens (adv: the "yes" reward,
             normalised within each prompt's 8 samples)
    optim    AdamW step + zero_grad (lr 1e-4, fused: the HF Trainer's default with torch >= 2.8, as in TRL)

"compl/s" is 32 / (sample + fwd + bwd + optim): the rollout + update part of a GRPO step (no
reward, no advantage maths). The small model's floor is the dense-matmul work of one step divided by
the matmul GFLOP/s measured here at a training shape: the work as matmul_gflops.grpo_step_flops
counts it ('lean'), and as done here (prompts once per group in the training forward too).

Usage:
    python benchmarks/bench_lean_gpt2.py [--models DIR] [--sizes tiny small] [--threads 2] [--repeats 7]
                                         [--wait-quiet 120] [--no-hf]
Figures are only meaningful on a quiet machine: the other-load fraction is printed per model.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

BENCH_DIR = Path(__file__).resolve().parents[2] / "shared" / "bench" / "trl_grpo"
DEFAULT_MODELS = Path("/root/.cache/judgerl/bench/trl_grpo")
sys.path.insert(0, str(BENCH_DIR))
from trl_grpo_bench import make_prompts  # noqa: E402  the TRL bench's own prompts (heavy imports are in its main)


def other_load(seconds: float = 1.0) -> float:
    """Fraction of the machine busy with other processes (as trl_grpo_bench.sample_other_load)."""
    import resource

    def jiffies():
        with open("/proc/stat") as f:
            v = [int(x) for x in f.readline().split()[1:]]
        return sum(v[:8]) - v[3] - v[4], sum(v[:8])

    def own():
        r = resource.getrusage(resource.RUSAGE_SELF)
        return r.ru_utime + r.ru_stime

    b0, t0, c0 = *jiffies(), own()
    time.sleep(seconds)
    b1, t1, c1 = *jiffies(), own()
    return max(0.0, ((b1 - b0) - (c1 - c0) * os.sysconf("SC_CLK_TCK")) / max(1, t1 - t0))


def wait_quiet(max_wait: float, threshold: float = 0.10) -> float:
    t0 = time.perf_counter()
    load = other_load()
    while load >= threshold and time.perf_counter() - t0 < max_wait:
        time.sleep(2.0)
        load = other_load()
    return load


def median_ms(xs: list[float]) -> float:
    return 1e3 * statistics.median(xs)


def policy_gradient_loss(torch, logp, mask, texts, group_size: int = 8):
    """GRPO-style: the TRL bench's reward (1 if "yes" in the completion), advantages normalised
    within each prompt's group, -sum(adv * logp) / tokens. Both sides then move the same way."""
    reward = torch.tensor([1.0 if "yes" in t.lower() else 0.0 for t in texts]).view(-1, group_size)
    adv = ((reward - reward.mean(1, keepdim=True)) / (reward.std(1, keepdim=True) + 1e-4)).view(-1, 1)
    return -(adv * logp * mask).sum() / mask.sum()


def bench_lean(torch, model_dir: Path, compute_dtype, prompts, repeats: int, seed: int = 0,
               head_dtype=None) -> dict:
    from transformers import AutoTokenizer, GPT2LMHeadModel

    from judgerl.policies.lean_gpt2 import LeanGPT2Policy
    from judgerl.rollouts import SamplingSettings

    model = GPT2LMHeadModel.from_pretrained(model_dir)
    tok = AutoTokenizer.from_pretrained(model_dir)
    policy = LeanGPT2Policy(model, tok, tok.eos_token_id, compute_dtype=compute_dtype, keep_reference=False,
                            head_dtype=head_dtype)
    opt = torch.optim.AdamW(policy.trainable_parameters(), lr=1e-4, fused=True)
    settings = SamplingSettings(temperature=1.0, top_p=1.0, max_new_tokens=16)
    gen = torch.Generator().manual_seed(seed)
    times: dict[str, list[float]] = {k: [] for k in ("sample", "fwd", "bwd", "optim")}
    lengths = []
    for r in range(repeats + 1):
        batch = prompts[4 * r % len(prompts):][:4]
        t0 = time.perf_counter()
        rollout = policy.sample(batch, 8, settings, gen)
        t1 = time.perf_counter()
        logp = policy.score(rollout).logprobs
        loss = policy_gradient_loss(torch, logp, rollout.completion_mask, rollout.completions)
        t2 = time.perf_counter()
        loss.backward()
        t3 = time.perf_counter()
        opt.step()
        opt.zero_grad(set_to_none=True)
        t4 = time.perf_counter()
        if r:  # the first round warms up
            for k, v in zip(times, (t1 - t0, t2 - t1, t3 - t2, t4 - t3)):
                times[k].append(v)
            lengths.append(float(rollout.lengths.mean()))
    return {"ms": {k: median_ms(v) for k, v in times.items()}, "mean_len": statistics.mean(lengths)}


def bench_hf(torch, model_dir: Path, autocast_bf16: bool, prompts, repeats: int, seed: int = 0) -> dict:
    """What TRL's GRPOTrainer runs on CPU, without its bookkeeping: each prompt repeated 8 times,
    HF generate (every row prefilled), then the full sequence forward with logits everywhere."""
    import contextlib

    from transformers import AutoTokenizer, GPT2LMHeadModel

    model = GPT2LMHeadModel.from_pretrained(model_dir)
    model.config.use_cache = True
    tok = AutoTokenizer.from_pretrained(model_dir)
    tok.padding_side = "left"
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, fused=True)
    torch.manual_seed(seed)
    ctx = (lambda: torch.autocast("cpu", dtype=torch.bfloat16)) if autocast_bf16 else contextlib.nullcontext
    times: dict[str, list[float]] = {k: [] for k in ("sample", "fwd", "bwd", "optim")}
    lengths = []
    eos = tok.eos_token_id
    for r in range(repeats + 1):
        batch = [p for p in prompts[4 * r % len(prompts):][:4] for _ in range(8)]
        t0 = time.perf_counter()
        model.eval()
        enc = tok(batch, return_tensors="pt", padding=True)
        with torch.no_grad(), ctx():
            out = model.generate(**enc, do_sample=True, top_k=0, top_p=1.0, temperature=1.0, max_new_tokens=16,
                                 pad_token_id=eos, eos_token_id=eos)
        completion = out[:, enc["input_ids"].shape[1]:]
        is_eos = completion == eos
        after = (is_eos.long().cumsum(1) - is_eos.long()) > 0
        cmask = (~after).float()
        texts = tok.batch_decode(completion.masked_fill(after, eos), skip_special_tokens=True)
        t1 = time.perf_counter()
        model.train()
        ids = torch.cat([enc["input_ids"], completion], 1)
        attn = torch.cat([enc["attention_mask"], cmask.long()], 1)
        C = completion.shape[1]
        with ctx():
            logits = model(input_ids=ids, attention_mask=attn).logits  # every position, as TRL on CPU
        logits = logits[:, -C - 1:-1].float()
        logp = torch.log_softmax(logits, -1).gather(-1, completion[..., None]).squeeze(-1)
        loss = policy_gradient_loss(torch, logp, cmask, texts)
        t2 = time.perf_counter()
        loss.backward()
        t3 = time.perf_counter()
        opt.step()
        opt.zero_grad(set_to_none=True)
        t4 = time.perf_counter()
        if r:
            for k, v in zip(times, (t1 - t0, t2 - t1, t3 - t2, t4 - t3)):
                times[k].append(v)
            lengths.append(float(cmask.sum(1).mean()))
    return {"ms": {k: median_ms(v) for k, v in times.items()}, "mean_len": statistics.mean(lengths)}


def shared_prefix_flops(n_layer: int, d: int, vocab: int, batch: int, prompt_len: int, comp_len: int,
                        group: int = 8) -> float:
    """Dense-matmul FLOPs of one step as done here (conventions of matmul_gflops.grpo_step_flops):
    generation as its 'lean' (one prefill per prompt), but the training forward runs the body on
    each prompt once (U * P rows) plus the completion tokens but the last (B * (C - 1) rows)."""
    body, head = n_layer * 12 * d * d, vocab * d
    B, P, C, U = batch, prompt_len, comp_len, batch // group

    def attn(tokens_q, ctx):
        return n_layer * 4 * tokens_q * ctx * d

    decode = sum(2 * (body + head) * B + attn(B, P + i) for i in range(1, C))
    generate = 2 * body * U * P + 2 * head * U + attn(U * P, P) + decode
    fwd = 2 * body * (U * P + B * (C - 1)) + attn(U * P, P) + attn(B * (C - 1), P + C - 1) + 2 * head * B * C
    return generate + 3 * fwd


def matmul_gflops(torch, m: int, k: int, n: int, dtype, min_time: float = 0.4) -> float:
    a, b = torch.randn(m, k).to(dtype), torch.randn(k, n).to(dtype)
    for _ in range(3):
        a @ b
    reps, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < min_time:
        a @ b
        reps += 1
    return 2.0 * m * k * n * reps / (time.perf_counter() - t0) / 1e9


def line(label: str, res: dict) -> str:
    ms = res["ms"]
    total = sum(ms.values())
    return (f"  {label:28s} sample {ms['sample']:7.1f}  fwd {ms['fwd']:7.1f}  bwd {ms['bwd']:7.1f}  "
            f"optim {ms['optim']:6.1f}  | total {total:7.1f} ms  {32e3 / total:6.1f} compl/s  "
            f"(mean len {res['mean_len']:.1f})")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", type=Path, default=DEFAULT_MODELS)
    ap.add_argument("--sizes", nargs="+", default=["tiny", "small"], choices=["tiny", "small"])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--wait-quiet", type=float, default=0.0, help="wait up to this many s for a quiet machine")
    ap.add_argument("--no-hf", action="store_true", help="skip the HF generate baseline")
    ap.add_argument("--only", default="", help="run only the configuration with this label, e.g. \"lean bf16\"")
    args = ap.parse_args()

    import torch

    torch.set_num_threads(args.threads)
    prompts = make_prompts()
    results: dict = {"threads": torch.get_num_threads(), "torch": torch.__version__}
    bf16 = torch.bfloat16
    configs = {"tiny": [("lean fp32", None, None), ("lean fp32, bf16 LM head", None, bf16), ("lean bf16", bf16, None)],
               "small": [("lean fp32", None, None), ("lean bf16", bf16, None),
                         ("lean bf16, fp32 LM head", bf16, torch.float32)]}
    hf_configs = {"tiny": [("hf generate fp32", False), ("hf generate bf16 autocast", True)],
                  "small": [("hf generate fp32", False), ("hf generate bf16 autocast", True)]}
    for size in args.sizes:
        folder = args.models / size
        if not (folder / "config.json").is_file():
            sys.exit(f"{folder} missing: build it with python {BENCH_DIR}/make_tiny.py --out {args.models}")
        load = wait_quiet(args.wait_quiet) if args.wait_quiet else other_load()
        print(f"{size}: other load before {100 * load:.0f}% of the machine")
        results[size] = {}
        for label, dtype, head_dtype in configs[size]:
            if args.only and args.only != label:
                continue
            res = bench_lean(torch, folder, dtype, prompts, args.repeats, head_dtype=head_dtype)
            results[size][label] = res
            print(line(label, res), flush=True)
        if not args.no_hf:
            for label, bf16 in hf_configs[size]:
                if args.only and args.only != label:
                    continue
                res = bench_hf(torch, folder, bf16, prompts, min(args.repeats, 5))
                results[size][label] = res
                print(line(label, res), flush=True)
        results[size]["other_load_after"] = other_load()
        print(f"{size}: other load after {100 * results[size]['other_load_after']:.0f}%")

    if "small" in args.sizes:
        sys.path.insert(0, str(BENCH_DIR))
        from matmul_gflops import grpo_step_flops

        flops = grpo_step_flops(6, 512, 8192, 32, 13, 16)
        lean = flops["lean"]["total"]
        shared = shared_prefix_flops(6, 512, 8192, 32, 13, 16)
        g32 = matmul_gflops(torch, 928, 512, 2048, torch.float32)
        g16 = matmul_gflops(torch, 928, 512, 2048, torch.bfloat16)
        results["floor"] = {"lean_gflop_per_step": lean / 1e9, "shared_prefix_gflop_per_step": shared / 1e9,
                            "fp32_gflops": g32, "bf16_gflops": g16}
        print(f"small floor: GFLOP per step {lean / 1e9:.1f} (matmul_gflops.grpo_step_flops 'lean': body on all "
              f"prompt+completion tokens in training) or {shared / 1e9:.1f} (prompts run once per group in training, "
              f"as done here); matmul 928x512x2048 measured here: fp32 {g32:.0f} GFLOP/s, bf16 {g16:.0f} GFLOP/s")
        for label in ("lean fp32", "lean bf16", "lean bf16, fp32 LM head"):
            if label in results.get("small", {}):
                total = sum(results["small"][label]["ms"].values())
                g = g16 if "bf16" in label else g32
                print(f"  {label}: {total:.0f} ms measured; floor {lean / g / 1e6:.0f} ms / {shared / g / 1e6:.0f} ms "
                      f"-> runs at {lean / g / 1e6 / total:.0%} / {shared / g / 1e6 / total:.0%} of floor speed")
    import resource

    results["peak_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS of this process: {results['peak_rss_mib']:.0f} MiB (with --no-hf and one size: the lean engine's)")
    print("RESULT_JSON " + json.dumps(results))


if __name__ == "__main__":
    main()
