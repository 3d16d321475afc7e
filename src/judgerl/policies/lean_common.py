"""What the lean engines (lean_gpt2.py, lean_llama.py) share: the sampler (inverse-CDF draws,
top-p nucleus), the fused token log-prob / entropy, left padding and attention masks, the
assembly of decoded steps into (N, T) tokens / log-probs / mask, and glibc malloc tuning.
All on the CPU."""

from __future__ import annotations

from typing import Sequence

import torch


class _TokenLogProbs(torch.autograd.Function):
    """log softmax(logits)[target] and (optionally) the entropy of softmax(logits), row by row.

    One fused softmax pass gives p; logsumexp is read off the row's most likely token,
    lse = z[argmax] - log p[argmax] (p there is >= 1/V, so no underflow), and the log-prob is
    z[target] - lse. The backward is p * -g plus g at the target (no log_softmax backward, no
    (M, V) zeros for gather's backward); p is kept instead of the logits."""

    @staticmethod
    def forward(ctx, logits: torch.Tensor, target: torch.Tensor, with_entropy: bool):
        p = torch.softmax(logits, -1)  # (M, V)
        p_max, top = p.max(-1)
        lse = logits.gather(1, top[:, None]).squeeze(1) - p_max.log()  # (M,)
        logp = logits.gather(1, target[:, None]).squeeze(1) - lse
        if with_entropy:
            entropy = lse - (p * logits).sum(-1)
            ctx.save_for_backward(p, target, logits, lse, entropy)
        else:
            entropy = logits.new_zeros(0)
            ctx.save_for_backward(p, target)
        ctx.with_entropy = with_entropy
        return logp, entropy

    @staticmethod
    def backward(ctx, g_logp: torch.Tensor, g_entropy: torch.Tensor):
        p, target = ctx.saved_tensors[:2]
        if ctx.with_entropy:
            logits, lse, entropy = ctx.saved_tensors[2:]
            # d entropy / d logits = -p * (log p + entropy), log p = logits - lse
            grad = (logits - (lse - entropy)[:, None]).mul_(p).mul_(-g_entropy[:, None])
            grad.sub_(p * g_logp[:, None])
        else:
            grad = p * -g_logp[:, None]
        # d logp / d logits = onehot(target) - p
        grad.scatter_add_(1, target[:, None], g_logp[:, None])
        return grad, None, None


def _token_logprobs(logits: torch.Tensor, target: torch.Tensor, with_entropy: bool):
    """(M, V) fp32 logits, (M,) targets -> log-probs (M,) and entropies (M,) (empty unless asked)."""
    return _TokenLogProbs.apply(logits, target, with_entropy)


def _residual(h: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """h + y in h's dtype. In place on y (a fresh matmul output no backward needs) when the
    dtypes agree; bf16 y is promoted into the fp32 residual stream otherwise."""
    return y.add_(h) if y.dtype == h.dtype else h + y


def _left_pad(seqs: Sequence[torch.Tensor], pad_id: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(B, L) ids left-padded, (B, L) bool valid, (B,) lengths."""
    lens = torch.tensor([len(s) for s in seqs], dtype=torch.long)
    L = int(lens.max())
    ids = torch.full((len(seqs), L), pad_id, dtype=torch.long)
    for r, s in enumerate(seqs):
        if len(s):
            ids[r, L - len(s):] = torch.as_tensor(s, dtype=torch.long)
    valid = torch.arange(L)[None] >= (L - lens)[:, None]
    return ids, valid, lens


def _prompt_mask(valid: torch.Tensor) -> torch.Tensor:
    """(B, 1, L, L) bool: causal, not onto left padding; padding rows see themselves (no NaN)."""
    L = valid.shape[1]
    causal = torch.ones(L, L, dtype=torch.bool).tril()
    return ((causal[None] & valid[:, None, :]) | torch.eye(L, dtype=torch.bool)[None])[:, None]


def _scatter_rows(values: torch.Tensor, sel: torch.Tensor) -> torch.Tensor:
    """values (M,) at the True places of sel (N, T) -> (N, T), 0 elsewhere; differentiable."""
    return torch.zeros(sel.shape, dtype=values.dtype).masked_scatter(sel, values)


def _draw(probs: torch.Tensor, top_p: float, u: torch.Tensor, block: int = 128) -> torch.Tensor:
    """(N,) tokens drawn from probs (N, V), restricted to the top-p nucleus when top_p < 1: the
    smallest set of most likely tokens whose mass reaches top_p. u: (N,) float64 uniforms in [0, 1).

    Inverse-CDF sampling (torch.multinomial with a CPU generator is ~50x slower at V = 8192), in
    two levels when V is a multiple of `block`: the running sum (float64) over the V / block block
    masses picks a block, then the running sum inside that block picks the token. A token of zero
    probability is never drawn."""
    if top_p < 1.0:
        probs = _nucleus(probs, top_p)
    N, V = probs.shape
    if V % block or V < 4 * block:
        cdf = probs.cumsum(-1, dtype=torch.float64)  # (N, V)
        x = (u * cdf[:, -1]).clamp_(max=cdf[:, -1].nextafter(torch.zeros(())))
        return torch.searchsorted(cdf, x[:, None], right=True).squeeze(1)
    blocks = probs.view(N, V // block, block)
    block_cdf = blocks.sum(-1).cumsum(-1, dtype=torch.float64)  # (N, V / block)
    total = block_cdf[:, -1]
    x = u * total  # (N,) in [0, total)
    b = torch.searchsorted(block_cdf, x[:, None], right=True).clamp_(max=V // block - 1)  # (N, 1)
    inner = blocks[torch.arange(N), b.squeeze(1)].cumsum(-1, dtype=torch.float64)  # (N, block)
    before = block_cdf.gather(1, b) - inner[:, -1:]  # mass before the block (inner sum: same tokens)
    # the rest of x inside the block, kept below its mass so that a zero-probability tail is never hit
    r = (x[:, None] - before).clamp_(min=0.0)
    r = torch.minimum(r, inner[:, -1:].nextafter(torch.zeros(())))
    return (b * block + torch.searchsorted(inner, r, right=True)).squeeze(1)


def _nucleus(probs: torch.Tensor, top_p: float, k: int = 64) -> torch.Tensor:
    """probs with everything outside the top-p nucleus set to 0 (not renormalised). Looks in the
    k most likely tokens first (a partial sort); sorts whole rows only when that is not enough."""
    k = min(k, probs.shape[1])
    top, order = probs.topk(k, -1)
    if not bool((top.sum(-1) >= top_p * probs.sum(-1)).all()):
        top, order = probs.sort(-1, descending=True)
    outside = top.cumsum(-1) - top >= top_p * probs.sum(-1, keepdim=True)
    return torch.zeros_like(probs).scatter_(-1, order, top.masked_fill_(outside, 0.0))


def tune_glibc_malloc(keep_bytes: int = 1 << 30) -> bool:
    """Make glibc keep freed memory for reuse instead of handing it back to the OS at once.

    By default glibc serves blocks over 128 KiB-32 MiB with fresh mmap pages and trims the heap
    on free, so every (M, V) logits-sized tensor of every step is page-faulted in again: on the
    tiny bench model that is ~25% of the scoring time. This sets M_MMAP_THRESHOLD to 32 MiB (its
    maximum) and M_TRIM_THRESHOLD to `keep_bytes`. Process-wide; peak RSS is unchanged, but RSS
    no longer shrinks after a peak (up to keep_bytes). The same as starting the process with
    MALLOC_MMAP_THRESHOLD_=33554432 MALLOC_TRIM_THRESHOLD_=<keep_bytes>. Returns whether it
    applied (False off glibc)."""
    try:
        import ctypes

        libc = ctypes.CDLL("libc.so.6")
        M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3
        return bool(libc.mallopt(M_MMAP_THRESHOLD, 32 << 20)) and bool(libc.mallopt(M_TRIM_THRESHOLD, keep_bytes))
    except (OSError, AttributeError):
        return False


def _dtype_name(dtype: torch.dtype | None) -> str:
    return str(dtype or torch.float32).removeprefix("torch.")


def check_sampling(max_new_tokens: int, temperature: float) -> None:
    if max_new_tokens < 1:
        raise ValueError("max_new_tokens must be >= 1")
    if temperature <= 0:
        raise ValueError("sampling needs a temperature > 0 (log-probs are taken at that temperature)")


def decode_column_mask(valid: torch.Tensor, n: int, S: int) -> torch.Tensor | None:
    """Additive (N, 1, 1, S) mask for decoding n rows per prompt: -inf on the prompts' left padding
    (valid (P, Lp)); None when no prompt is padded."""
    if bool(valid.all()):
        return None
    P, Lp = valid.shape
    col_mask = torch.zeros(P * n, 1, 1, S)
    col_mask[:, 0, 0, :Lp].masked_fill_(~valid.repeat_interleave(n, 0), float("-inf"))
    return col_mask


def assemble_steps(steps: Sequence[tuple[torch.Tensor | None, torch.Tensor, torch.Tensor]], N: int, pad_id: int,
                   stops: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Decode steps (rows or None for all N, token (B,), its probability (B,)) -> tokens (N, T) long
    (pad after a row's first stop token), log-probs (N, T) (0 on padding), mask (N, T) float."""
    T = len(steps)
    tokens = torch.full((N, T), pad_id, dtype=torch.long)
    probs_taken = torch.ones(N, T)
    for t, (r, token, p) in enumerate(steps):
        if r is None:
            tokens[:, t], probs_taken[:, t] = token, p
        else:
            tokens[r, t], probs_taken[r, t] = token, p
    logprobs = probs_taken.log_()
    is_stop = torch.isin(tokens, stops)
    after = (is_stop.cumsum(1) - is_stop.long()) > 0  # a row's tokens after its first stop token
    tokens.masked_fill_(after, pad_id)
    logprobs.masked_fill_(after, 0.0)
    return tokens, logprobs, (~after).float()


def lora_merged(module) -> tuple[torch.Tensor, torch.Tensor | None]:
    """A linear layer's (weight, bias) as its forward applies them: for a peft LoRA layer, the base
    weight plus scale * B @ A of each active adapter (differentiable: gradients reach lora_A and
    lora_B), unless the adapters are disabled (peft's `disable_adapter()`) or already merged.
    The weight is in the base layer's own layout ((out, in) for nn.Linear, (in, out) for GPT-2's
    Conv1D, whose adapters peft applies with fan_in_fan_out)."""
    base = getattr(module, "base_layer", module)
    weight, bias = base.weight, getattr(base, "bias", None)
    if not hasattr(module, "lora_A") or module.disable_adapters or module.merged:
        return weight, bias
    for name in module.active_adapters:
        if name not in module.lora_A:
            continue
        if getattr(module, "use_dora", {}).get(name, False):
            raise ValueError("DoRA adapters are not supported by the lean engine")
        delta = (module.lora_B[name].weight @ module.lora_A[name].weight) * module.scaling[name]
        weight = weight + (delta.T if getattr(module, "fan_in_fan_out", False) else delta)
    return weight, bias
