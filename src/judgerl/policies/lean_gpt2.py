"""A lean GPT-2 engine for RL on CPU: sampling with a preallocated KV cache and a scoring pass
that runs the LM head only where a completion token is predicted.

It works directly on a Hugging Face `GPT2LMHeadModel`'s own parameter tensors (no copy), so an
optimiser over `model.parameters()` trains the HF model. Every forward is functional: one pass
over flat weight tuples with torch ops, no module calls, no HF cache objects.

    sample:  P prompts, left-padded (P, Lp) -> ONE prefill per prompt -> K/V (P, H, Lp, dh)
             -> copied into a preallocated cache (L, N, S, 2, H, dh) for its n rows (N = P * n)
             -> decode: one token per row per step, attention over the cache columns so far;
                softmax(logits / temperature) -> (top-p) -> inverse-CDF sample with the caller's
                torch.Generator; each sampled token's log-prob under the untruncated
                softmax(logits / temperature) is recorded; stop when every row has produced an
                end-of-sequence token or after max_new_tokens.
    score:   unique prompts (U, Lp) run once -> their K/V are shared by the group's rows
             -> completion tokens (N, T - 1) attend to [prompt K/V | own K/V, causal]
             -> hidden states at the N * T positions that predict completion tokens
             -> only the real (unpadded) ones go through ln_f and the LM head -> log-prob of
                the token (one fused softmax). Differentiable; gradients reach the HF model's parameters.

Log-probabilities in `sample` and `score` are those of the same distribution (the untruncated
softmax at the rollout's temperature), so ratio = exp(new - old) is 1 before the first update,
up to float rounding: about 1e-6 in fp32; in bf16 mode, on the bench's small model, 1e-4 mean
and 0.016 at worst (bf16 LM head) or 0.001 at worst (fp32 LM head).

Dropout is never applied (the configs' 0.1 is ignored, as TRL's `disable_dropout=True`): sampling
and scoring then see the same distribution.

`compute_dtype=torch.bfloat16` runs the blocks' matrix multiplies in bf16, and `head_dtype` the LM
head's (default: as compute_dtype), weights cast once per call; gradients flow back to the fp32
parameters, as under CPU autocast. The residual stream, LayerNorms, attention (bf16 attention
is several times slower than fp32 on this CPU at these sizes), softmax and log-probs stay fp32.
On the bench's small model, log-probs then differ from fp32 by 3e-3 on average (fp32 LM head:
3e-4), and sampling + scoring + backward of a GRPO-sized batch is 1.6-1.8x (fp32 LM head:
1.4-1.5x) faster than in fp32. On the tiny model (width 64) bf16 blocks are slower (the casts
cost more than the narrow matmuls save), but a bf16 LM head alone (`head_dtype=torch.bfloat16`,
64 x 8192) makes a step ~20% faster.

Tensors are created on the CPU throughout: this engine is for CPU.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from judgerl.policies.lean_common import (  # noqa: F401  (re-exported: tests and callers import them from here)
    _TokenLogProbs, _dtype_name, _draw, _left_pad, _nucleus, _prompt_mask, _residual, _scatter_rows, _token_logprobs,
    assemble_steps, check_sampling, decode_column_mask, tune_glibc_malloc)
from judgerl.rollouts import FinishedRows

# -- weights -------------------------------------------------------------------------------------


class LayerWeights(NamedTuple):
    """One GPT-2 block. Conv1D weights are (in, out): y = x @ w + b."""

    ln1_w: torch.Tensor
    ln1_b: torch.Tensor
    qkv_w: torch.Tensor  # (D, 3D)
    qkv_b: torch.Tensor
    proj_w: torch.Tensor  # (D, D)
    proj_b: torch.Tensor
    ln2_w: torch.Tensor
    ln2_b: torch.Tensor
    fc_w: torch.Tensor  # (D, 4D)
    fc_b: torch.Tensor
    out_w: torch.Tensor  # (4D, D)
    out_b: torch.Tensor


class GPT2Weights(NamedTuple):
    wte: torch.Tensor  # (V, D) token embedding
    wpe: torch.Tensor  # (n_positions, D)
    lnf_w: torch.Tensor
    lnf_b: torch.Tensor
    head: torch.Tensor  # (V, D): logits = h @ head.T (tied to wte in GPT-2)
    layers: tuple[LayerWeights, ...]


def weights_of(model: Any) -> GPT2Weights:
    """The HF model's own parameter tensors (views, no copy)."""
    t = model.transformer
    layers = tuple(
        LayerWeights(b.ln_1.weight, b.ln_1.bias, b.attn.c_attn.weight, b.attn.c_attn.bias,
                     b.attn.c_proj.weight, b.attn.c_proj.bias, b.ln_2.weight, b.ln_2.bias,
                     b.mlp.c_fc.weight, b.mlp.c_fc.bias, b.mlp.c_proj.weight, b.mlp.c_proj.bias)
        for b in t.h
    )
    if getattr(model.lm_head, "bias", None) is not None:
        raise ValueError("an LM head with a bias is not GPT-2's")
    return GPT2Weights(t.wte.weight, t.wpe.weight, t.ln_f.weight, t.ln_f.bias, model.lm_head.weight, layers)


def frozen_copy(w: GPT2Weights) -> GPT2Weights:
    """Detached copies (a tied head stays tied: one copy shared by wte and head)."""
    memo: dict[int, torch.Tensor] = {}

    def c(x: torch.Tensor) -> torch.Tensor:
        if id(x) not in memo:
            memo[id(x)] = x.detach().clone()
        return memo[id(x)]

    return GPT2Weights(c(w.wte), c(w.wpe), c(w.lnf_w), c(w.lnf_b), c(w.head),
                       tuple(LayerWeights(*(c(x) for x in layer)) for layer in w.layers))


def _cast(w: GPT2Weights, body: torch.dtype | None, head: torch.dtype | None) -> GPT2Weights:
    """The blocks' matmul weights and biases in `body`, the LM head in `head` (None: unchanged);
    embeddings and LayerNorms untouched. Differentiable: the casts are graph nodes, so gradients
    reach the fp32 parameters."""
    if body is not None:
        w = w._replace(layers=tuple(
            l._replace(qkv_w=l.qkv_w.to(body), qkv_b=l.qkv_b.to(body), proj_w=l.proj_w.to(body),
                       proj_b=l.proj_b.to(body), fc_w=l.fc_w.to(body), fc_b=l.fc_b.to(body),
                       out_w=l.out_w.to(body), out_b=l.out_b.to(body))
            for l in w.layers))
    return w if head is None else w._replace(head=w.head.to(head))


_ACTIVATIONS = {
    "gelu_new": lambda x: F.gelu(x, approximate="tanh"),
    "gelu_pytorch_tanh": lambda x: F.gelu(x, approximate="tanh"),
    "gelu_fast": lambda x: F.gelu(x, approximate="tanh"),
    "gelu_python_tanh": lambda x: F.gelu(x, approximate="tanh"),
    "gelu": F.gelu,
    "relu": F.relu,
    "silu": F.silu,
    "swish": F.silu,
    "quick_gelu": lambda x: x * torch.sigmoid(1.702 * x),
}


# -- the engine ----------------------------------------------------------------------------------


class LeanGPT2:
    """Functional GPT-2 forward passes for sampling and scoring. Holds the shape, not the weights:
    every method takes a `GPT2Weights` (the live model's, or a frozen copy)."""

    def __init__(self, config: Any, compute_dtype: torch.dtype | None = None, head_dtype: torch.dtype | None = None):
        if getattr(config, "add_cross_attention", False):
            raise ValueError("GPT-2 with cross-attention is not supported")
        if config.activation_function not in _ACTIVATIONS:
            raise ValueError(f"unsupported activation {config.activation_function!r}")
        self.n_layer = config.n_layer
        self.n_head = config.n_head
        self.d = config.n_embd
        self.head_dim = self.d // self.n_head
        self.eps = config.layer_norm_epsilon
        self.n_positions = config.n_positions
        self.vocab = config.vocab_size
        self.act = _ACTIVATIONS[config.activation_function]
        base = 1.0 / math.sqrt(self.head_dim) if config.scale_attn_weights else 1.0
        self.scales = [base / (i + 1) if config.scale_attn_by_inverse_layer_idx else base for i in range(self.n_layer)]
        self.compute_dtype = None if compute_dtype in (None, torch.float32) else compute_dtype
        head_dtype = compute_dtype if head_dtype is None else head_dtype
        self.head_dtype = None if head_dtype in (None, torch.float32) else head_dtype
        self.compact = True
        """Drop finished rows from the decode batch (a quarter of it at a time)."""

    def cast(self, w: GPT2Weights) -> GPT2Weights:
        if self.compute_dtype is None and self.head_dtype is None:
            return w
        return _cast(w, self.compute_dtype, self.head_dtype)

    # -- shared pieces ------------------------------------------------------------------------
    # Matmul inputs are in compute_dtype (bf16 or fp32); the residual stream, LayerNorms and
    # attention stay fp32 (bf16 attention is several times slower than fp32 on CPU at these sizes).

    def _ln(self, x: torch.Tensor, w: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        y = F.layer_norm(x, (self.d,), w, b, self.eps)
        return y if self.compute_dtype is None else y.to(self.compute_dtype)

    def _qkv(self, h: torch.Tensor, l: LayerWeights) -> torch.Tensor:
        """(M, D) residual -> (M, 3D) fp32 q|k|v."""
        qkv = torch.addmm(l.qkv_b, self._ln(h, l.ln1_w, l.ln1_b), l.qkv_w)
        return qkv if self.compute_dtype is None else qkv.float()

    def _proj_mlp(self, h: torch.Tensor, o: torch.Tensor, l: LayerWeights) -> torch.Tensor:
        """Residual h (M, D), attention output o (M, D) -> the block's output (M, D)."""
        if self.compute_dtype is not None:
            o = o.to(self.compute_dtype)
        h = _residual(h, torch.addmm(l.proj_b, o, l.proj_w))
        a = self._ln(h, l.ln2_w, l.ln2_b)
        return _residual(h, torch.addmm(l.out_b, self.act(torch.addmm(l.fc_b, a, l.fc_w)), l.out_w))

    def _logits(self, w: GPT2Weights, h: torch.Tensor, temperature: float) -> torch.Tensor:
        """(M, D) residual stream -> (M, V) fp32 logits / temperature (the division is done on
        the (M, D) input of the head, the same way in sampling and scoring)."""
        a = F.layer_norm(h, (self.d,), w.lnf_w, w.lnf_b, self.eps)
        if temperature != 1.0:
            a = a / temperature
        logits = F.linear(a.to(w.head.dtype), w.head)
        return logits if logits.dtype == torch.float32 else logits.float()

    def _block_seq(self, h: torch.Tensor, l: LayerWeights, scale: float, B: int, S: int,
                   mask: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """One block over (B*S, D) tokens of B sequences of S, causal (or `mask` (B, 1, S, S) bool).
        Returns (h, k, v) with k, v (B, H, S, dh) fp32, the block's keys and values."""
        qkv = self._qkv(h, l).view(B, S, 3, self.n_head, self.head_dim).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]
        o = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, is_causal=mask is None, scale=scale)
        return self._proj_mlp(h, o.transpose(1, 2).reshape(B * S, self.d), l), k, v

    def _embed(self, w: GPT2Weights, ids: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
        return F.embedding(ids, w.wte) + F.embedding(positions, w.wpe)

    # -- full forward (tests, reference numerics) -------------------------------------------------

    def forward_logits(self, w: GPT2Weights, ids: torch.Tensor, attention_mask: torch.Tensor | None = None):
        """(B, S) ids (left-padded if attention_mask is given) -> (B, S, V) fp32 logits, like
        `model(ids, attention_mask=..., position_ids=cumsum - 1)`. For tests and comparisons."""
        w = self.cast(w)
        B, S = ids.shape
        if attention_mask is None:
            positions = torch.arange(S).expand(B, S)
            mask = None
        else:
            valid = attention_mask.bool()
            positions = (attention_mask.long().cumsum(-1) - 1).clamp(min=0)
            mask = _prompt_mask(valid)
        h = self._embed(w, ids, positions).view(B * S, self.d)
        for i, l in enumerate(w.layers):
            h, _, _ = self._block_seq(h, l, self.scales[i], B, S, mask)
        return self._logits(w, h, 1.0).view(B, S, self.vocab)

    # -- sampling -------------------------------------------------------------------------------

    def _prefill(self, w: GPT2Weights, ids: torch.Tensor, valid: torch.Tensor, n: int, S: int, temperature: float):
        """Each prompt (ids (P, Lp), left-padded) once: the KV cache (L, N, S, 2, H, dh) with its keys
        and values copied to its n rows, and the next-token probabilities (N, V)."""
        (P, Lp), H, dh, D = ids.shape, self.n_head, self.head_dim, self.d
        positions = (valid.long().cumsum(-1) - 1).clamp(min=0)
        mask = _prompt_mask(valid) if not bool(valid.all()) else None
        h = self._embed(w, ids, positions).view(P * Lp, D)
        cache = torch.empty(self.n_layer, P * n, S, 2, H, dh)  # fp32, like attention
        for i, l in enumerate(w.layers):
            h, k, v = self._block_seq(h, l, self.scales[i], P, Lp, mask)
            dst = cache[i, :, :Lp].view(P, n, Lp, 2, H, dh)
            dst[:, :, :, 0] = k.transpose(1, 2).unsqueeze(1)
            dst[:, :, :, 1] = v.transpose(1, 2).unsqueeze(1)
        probs = torch.softmax(self._logits(w, h.view(P, Lp, D)[:, -1], temperature), -1)
        return cache, probs.repeat_interleave(n, 0)

    def _decode_step(self, w: GPT2Weights, h: torch.Tensor, cache: torch.Tensor, col: int,
                     col_mask: torch.Tensor | None) -> torch.Tensor:
        """One new token per row (h (B, D) embedded) through every layer, its keys and values
        written to cache column `col`: the last hidden state (B, D)."""
        B, H, dh = h.shape[0], self.n_head, self.head_dim
        for i, l in enumerate(w.layers):
            qkv = self._qkv(h, l).view(B, 3, H, dh)
            kv = cache[i]
            kv[:, col] = qkv[:, 1:]
            kv = kv[:, :col + 1]  # (B, col+1, 2, H, dh)
            o = F.scaled_dot_product_attention(
                qkv[:, 0, :, None], kv[:, :, 0].transpose(1, 2), kv[:, :, 1].transpose(1, 2),
                attn_mask=None if col_mask is None else col_mask[..., :col + 1], scale=self.scales[i])
            h = self._proj_mlp(h, o.view(B, self.d), l)
        return h

    @torch.no_grad()
    def generate(self, w: GPT2Weights, prompt_ids: Sequence[torch.Tensor], n: int, max_new_tokens: int,
                 temperature: float, top_p: float, stop_ids: Sequence[int], pad_id: int,
                 generator: torch.Generator, watch: FinishedRows | None = None
                 ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """n samples per prompt (rows prompt 0's n, prompt 1's n, ...).
        Returns tokens (N, T) long (pad after the stop token), log-probs (N, T) fp32 (0 on
        padding), mask (N, T) fp32 (1 on sampled tokens, stop token included); T <= max_new_tokens.
        `watch` is told of each row when it stops (judging_stream.py)."""
        check_sampling(max_new_tokens, temperature)
        w = self.cast(w)
        N = len(prompt_ids) * n
        ids, valid, lens = _left_pad(prompt_ids, pad_id)  # (P, Lp)
        Lp = ids.shape[1]
        if Lp + max_new_tokens - 1 > self.n_positions:
            raise ValueError(f"prompt of {Lp} tokens + {max_new_tokens} new tokens exceed the model's "
                             f"{self.n_positions} positions")
        S = Lp + max_new_tokens - 1  # cache columns: the last sampled token is never fed back
        cache, probs = self._prefill(w, ids, valid, n, S, temperature)

        # Decode. Rows that have produced a stop token are dropped from the batch (cache rows
        # included) once they are a quarter of it: they cost compute and change nothing.
        stops = torch.tensor(sorted(set(stop_ids)), dtype=torch.long)
        stop0 = int(stops[0]) if len(stops) == 1 else None
        col_mask = decode_column_mask(valid, n, S)  # (rows, 1, 1, S) or None
        pos_emb = F.embedding(lens.repeat_interleave(n, 0)[:, None] + torch.arange(max_new_tokens - 1), w.wpe)
        rows = None  # the original row of each batch row (None: all N, in order)
        done = torch.zeros(N, dtype=torch.bool)
        steps: list[tuple[torch.Tensor | None, torch.Tensor, torch.Tensor]] = []
        for t in range(max_new_tokens):
            u = torch.rand(N, dtype=torch.float64, generator=generator)  # one per original row: the
            token = _draw(probs, top_p, u if rows is None else u[rows])  # draws do not depend on compaction
            # the sampled token's probability under the untruncated softmax(logits / temperature)
            steps.append((rows, token, probs.gather(1, token[:, None]).squeeze(1)))
            done |= (token == stop0) if stop0 is not None else torch.isin(token, stops)
            finished, B = int(done.sum()), token.shape[0]
            last = t == max_new_tokens - 1 or finished == B
            if watch is not None:  # completions that have stopped go to the judge now
                watch.step(t, rows, token, last)
            if last:
                break
            if self.compact and 4 * finished >= B:
                keep = (~done).nonzero().squeeze(1)
                rows = keep if rows is None else rows[keep]
                token, done, pos_emb = token[keep], done[keep], pos_emb[keep]
                cache = cache.index_select(1, keep)
                col_mask = None if col_mask is None else col_mask[keep]
            h = F.embedding(token, w.wte).add_(pos_emb[:, t])  # (B, D)
            probs = torch.softmax(self._logits(w, self._decode_step(w, h, cache, Lp + t, col_mask), temperature), -1)
        return assemble_steps(steps, N, pad_id, stops)

    # -- scoring --------------------------------------------------------------------------------

    def score(self, w: GPT2Weights, prompt_ids: Sequence[torch.Tensor], group: torch.Tensor,
              completion_ids: torch.Tensor, completion_mask: torch.Tensor, temperature: float = 1.0,
              pad_id: int = 0, with_entropy: bool = False, value_head: nn.Module | None = None):
        """Log-probs (N, T) of completion tokens given their prompts (prompt_ids[group[i]]), with
        gradients to the weights; entropy (N, T) and values (N, T) when asked. 0 on padding.

        One pass per layer over R = U * Lp + N * (T - 1) token rows: the U distinct prompts once
        each, then the completion tokens but the last; the completion rows attend to their
        prompt's keys (shared by the group) and causally to their own."""
        N, T = completion_ids.shape
        if T == 0 or not bool((completion_mask > 0).any()):  # nothing to score
            return _nothing_scored(N, T, w.lnf_b, with_entropy, value_head is not None)
        w = self.cast(w)
        D, H, dh = self.d, self.n_head, self.head_dim
        used, inverse = torch.unique(group, return_inverse=True)  # row i's prompt is used[inverse[i]]
        ids, valid, lens = _left_pad([prompt_ids[g] for g in used.tolist()], pad_id)  # (U, Lp)
        U, Lp = ids.shape
        if Lp + T - 1 > self.n_positions:
            raise ValueError(f"prompt of {Lp} tokens + completion of {T} exceed the model's "
                             f"{self.n_positions} positions")
        Tc, Rp = T - 1, U * Lp
        share = U < N
        pmask = _prompt_mask(valid) if not bool(valid.all()) else None  # (U, 1, Lp, Lp)

        all_ids = torch.cat([ids.reshape(-1), completion_ids[:, :Tc].reshape(-1)])
        all_pos = torch.cat([(valid.long().cumsum(-1) - 1).clamp(min=0).reshape(-1),
                             (lens[inverse][:, None] + torch.arange(Tc)).reshape(-1)])
        h = self._embed(w, all_ids, all_pos)  # (R, D)
        if Tc:
            key_valid = torch.cat([valid[inverse], torch.ones(N, Tc, dtype=torch.bool)], 1)  # (N, Lp+Tc)
            causal = torch.ones(Tc, Lp + Tc, dtype=torch.bool).tril(Lp)  # (Tc, Lp+Tc)
            cmask = (causal[None] & key_valid[:, None, :])[:, None]  # (N, 1, Tc, Lp+Tc)
        for i, l in enumerate(w.layers):
            qkv = self._qkv(h, l)  # (R, 3D)
            qp, kp, vp = qkv[:Rp].view(U, Lp, 3, H, dh).permute(2, 0, 3, 1, 4)  # (U, H, Lp, dh) each
            o = F.scaled_dot_product_attention(qp, kp, vp, attn_mask=pmask, is_causal=pmask is None,
                                               scale=self.scales[i]).transpose(1, 2).reshape(Rp, D)
            if Tc:
                qc, kc, vc = qkv[Rp:].view(N, Tc, 3, H, dh).permute(2, 0, 3, 1, 4)  # (N, H, Tc, dh) each
                if share:
                    kp, vp = kp.index_select(0, inverse), vp.index_select(0, inverse)
                oc = F.scaled_dot_product_attention(qc, torch.cat([kp, kc], 2), torch.cat([vp, vc], 2),
                                                    attn_mask=cmask, scale=self.scales[i])
                o = torch.cat([o, oc.transpose(1, 2).reshape(N * Tc, D)])
            h = self._proj_mlp(h, o, l)

        # The row of h predicting completion token t of row i: its prompt's last position for
        # t = 0, its own token t - 1 after that; only the real (unpadded) tokens.
        sel = completion_mask > 0  # (N, T)
        rows, cols = sel.nonzero(as_tuple=True)
        source = torch.where(cols == 0, inverse[rows] * Lp + (Lp - 1), Rp + rows * Tc + cols - 1)
        hs = h.index_select(0, source)  # (M, D)
        logp, entropy = _token_logprobs(self._logits(w, hs, temperature), completion_ids[rows, cols], with_entropy)
        values = None
        if value_head is not None:
            a = F.layer_norm(hs, (D,), w.lnf_w, w.lnf_b, self.eps)
            values = _scatter_rows(value_head(a.float()).squeeze(-1), sel)
        return _scatter_rows(logp, sel), _scatter_rows(entropy, sel) if with_entropy else None, values


def _nothing_scored(N: int, T: int, any_weight: torch.Tensor, with_entropy: bool, with_values: bool):
    """Zeros (N, T) for log-probs (and entropy, values when asked), still in the graph when the
    weights take gradients, so that backward() works on an empty batch."""
    zeros = torch.zeros(N, T)
    if torch.is_grad_enabled() and any_weight.requires_grad:
        zeros = zeros + 0.0 * any_weight.flatten()[0]
    return zeros, (zeros if with_entropy else None), (zeros if with_values else None)


def __getattr__(name: str):
    """`LeanGPT2Policy` lives in lean_gpt2_policy.py; imported from here as before."""
    if name == "LeanGPT2Policy":
        from judgerl.policies.lean_gpt2_policy import LeanGPT2Policy

        return LeanGPT2Policy
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
