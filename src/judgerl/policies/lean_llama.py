"""A lean engine for the Llama / Qwen2 family on CPU (SmolLM2, Qwen2.5, Llama 3): RMSNorm, rotary
positions (the HF rope config, read off the model's own rotary module), grouped-query attention,
SwiGLU, tied or untied embeddings, optional q/k/v (and o / MLP) biases. The same two passes as
lean_gpt2.py, with the same numerics contract:

    sample:  P prompts, left-padded -> ONE prefill per prompt -> its rotated K/V copied into a
             preallocated cache (L, N, S, 2, Hkv, dh) for its n rows -> decode one token per row per
             step; the G = H / Hkv query heads of a KV head attend as G query rows (no K/V repeat);
             softmax(logits / T) -> (top-p) -> inverse-CDF draw; the untruncated log-prob is kept.
    score:   unique prompts once, completion tokens attend to [shared prompt K/V | own K/V, causal];
             the final norm and LM head run only where a real completion token is predicted.

Weights are read from the HF model (a peft-wrapped one included) once per call: q/k/v and
gate/up are concatenated into one matmul each, a LoRA adapter's update scale * B @ A is added
to its base weight (differentiable: gradients reach lora_A / lora_B; skipped while peft's
`disable_adapter()` is on, which gives the reference), and with `compute_dtype=bfloat16` the
blocks' matmul weights (and the LM head's, `head_dtype`) are cast, as under CPU autocast. The
residual stream, norms, rotary positions, attention, softmax and log-probs stay fp32.
"""

from __future__ import annotations

from typing import Any, NamedTuple, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from judgerl.policies.lean_common import (
    _draw, _left_pad, _prompt_mask, _residual, _scatter_rows, _token_logprobs, assemble_steps, check_sampling,
    decode_column_mask, lora_merged)
from judgerl.rollouts import FinishedRows

FAMILY = ("llama", "qwen2")
"""model_type values this engine runs."""
STATIC_ROPE = ("default", "linear", "llama3", "yarn")
"""Rotary types whose frequencies do not depend on the sequence length."""
ACTIVATIONS = {"silu": F.silu, "swish": F.silu, "gelu": F.gelu, "relu": F.relu,
               "gelu_pytorch_tanh": lambda x: F.gelu(x, approximate="tanh")}


def unsupported(config: Any) -> str | None:
    """Why this engine cannot run a model of this transformers config (None: it can)."""
    kind = getattr(config, "model_type", None)
    if kind not in FAMILY:
        return f"architecture {kind!r} is not one the lean engine runs (gpt2, {', '.join(FAMILY)})"
    if getattr(config, "hidden_act", "silu") not in ACTIVATIONS:
        return f"{kind}: activation {config.hidden_act!r} is not supported by the lean engine"
    if getattr(config, "use_sliding_window", False):
        return f"{kind}: sliding-window attention is not supported by the lean engine"
    rope = getattr(config, "rope_parameters", None) or getattr(config, "rope_scaling", None) or {}
    rope_type = rope.get("rope_type", rope.get("type", "default")) if isinstance(rope, dict) else "default"
    if rope_type not in STATIC_ROPE:
        return f"{kind}: rope type {rope_type!r} is not supported by the lean engine ({', '.join(STATIC_ROPE)} are)"
    if getattr(config, "partial_rotary_factor", 1.0) != 1.0:
        return f"{kind}: partial rotary embeddings are not supported by the lean engine"
    return None


class LlamaLayer(NamedTuple):
    in_norm: torch.Tensor  # (D,)
    qkv_w: torch.Tensor  # ((H + 2 Hkv) dh, D): y = x @ w.T + b
    qkv_b: torch.Tensor | None
    o_w: torch.Tensor  # (D, H dh)
    o_b: torch.Tensor | None
    post_norm: torch.Tensor
    gu_w: torch.Tensor  # (2 I, D): gate | up
    gu_b: torch.Tensor | None
    down_w: torch.Tensor  # (D, I)
    down_b: torch.Tensor | None


class LlamaWeights(NamedTuple):
    embed: torch.Tensor  # (V, D)
    norm: torch.Tensor  # (D,)
    head: torch.Tensor  # (V, D), possibly embed itself (tied)
    layers: tuple[LlamaLayer, ...]


def _cat(parts: Sequence[tuple[torch.Tensor, torch.Tensor | None]], dtype: torch.dtype | None):
    """Concatenated (W, b) of several linears (bias None when none has one), cast to dtype."""
    def cast(x):
        return x if dtype is None else x.to(dtype)
    w = torch.cat([cast(p[0]) for p in parts]) if len(parts) > 1 else cast(parts[0][0])
    if all(p[1] is None for p in parts):
        return w, None
    return w, torch.cat([cast(p[1] if p[1] is not None else p[0].new_zeros(p[0].shape[0])) for p in parts])


class LeanLlama:
    """Functional forward passes over `LlamaWeights` (from `weights(model)`: the live model's, a
    frozen copy's, or the base weights with the adapter off)."""

    def __init__(self, model: Any, compute_dtype: torch.dtype | None = None, head_dtype: torch.dtype | None = None):
        config = model.config
        reason = unsupported(config)
        if reason:
            raise ValueError(reason)
        self.n_layer = config.num_hidden_layers
        self.n_head = config.num_attention_heads
        self.n_kv = getattr(config, "num_key_value_heads", None) or self.n_head
        self.d = config.hidden_size
        self.head_dim = getattr(config, "head_dim", None) or self.d // self.n_head
        self.eps = config.rms_norm_eps
        self.vocab = config.vocab_size
        self.max_positions = getattr(config, "max_position_embeddings", 1 << 30)
        self.act = ACTIVATIONS[getattr(config, "hidden_act", "silu")]
        self.scale = self.head_dim ** -0.5
        rotary = model.model.rotary_emb
        self.inv_freq = rotary.inv_freq.detach().float().cpu().clone()  # (dh / 2,)
        self.rope_scaling = float(rotary.attention_scaling)
        if self.inv_freq.numel() * 2 != self.head_dim:
            raise ValueError("partial rotary embeddings are not supported by the lean engine")
        self.compute_dtype = None if compute_dtype in (None, torch.float32) else compute_dtype
        head_dtype = compute_dtype if head_dtype is None else head_dtype
        self.head_dtype = None if head_dtype in (None, torch.float32) else head_dtype
        self.compact = True
        """Drop finished rows from the decode batch (a quarter of it at a time)."""

    # -- weights ------------------------------------------------------------------------------

    def weights(self, model: Any) -> LlamaWeights:
        """The HF model's weights (LoRA-merged, fused, cast): one pass per call, differentiable."""
        body, cd = model.model, self.compute_dtype
        layers = []
        for block in body.layers:
            a, m = block.self_attn, block.mlp
            qkv = _cat([lora_merged(a.q_proj), lora_merged(a.k_proj), lora_merged(a.v_proj)], cd)
            o = _cat([lora_merged(a.o_proj)], cd)
            gu = _cat([lora_merged(m.gate_proj), lora_merged(m.up_proj)], cd)
            down = _cat([lora_merged(m.down_proj)], cd)
            layers.append(LlamaLayer(block.input_layernorm.weight, *qkv, *o, block.post_attention_layernorm.weight,
                                     *gu, *down))
        head, head_b = lora_merged(model.lm_head)
        if head_b is not None:
            raise ValueError("an LM head with a bias is not supported by the lean engine")
        if self.head_dtype is not None:
            head = head.to(self.head_dtype)
        return LlamaWeights(body.embed_tokens.weight, body.norm.weight, head, tuple(layers))

    # -- shared pieces ------------------------------------------------------------------------

    def _cos_sin(self, positions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """positions (...,) -> cos, sin (..., 1, dh) fp32, as the HF rotary module computes them."""
        freqs = positions.float()[..., None] * self.inv_freq
        emb = torch.cat([freqs, freqs], -1)
        return (emb.cos() * self.rope_scaling).unsqueeze(-2), (emb.sin() * self.rope_scaling).unsqueeze(-2)

    def _norm(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        y = F.rms_norm(x, (self.d,), w, self.eps)
        return y if self.compute_dtype is None else y.to(self.compute_dtype)

    def _attn_in(self, h: torch.Tensor, l: LlamaLayer, cos: torch.Tensor, sin: torch.Tensor):
        """(M, D) residual -> q (M, H, dh), k, v (M, Hkv, dh) fp32, q and k rotated."""
        M, H, Hkv, dh = h.shape[0], self.n_head, self.n_kv, self.head_dim
        qkv = F.linear(self._norm(h, l.in_norm), l.qkv_w, l.qkv_b)
        if self.compute_dtype is not None:
            qkv = qkv.float()
        q, k, v = qkv.split([H * dh, Hkv * dh, Hkv * dh], -1)
        return _rope(q.view(M, H, dh), cos, sin), _rope(k.view(M, Hkv, dh), cos, sin), v.view(M, Hkv, dh)

    def _out_mlp(self, h: torch.Tensor, o: torch.Tensor, l: LlamaLayer) -> torch.Tensor:
        """Residual h (M, D), attention output o (M, H dh) -> the block's output (M, D)."""
        if self.compute_dtype is not None:
            o = o.to(self.compute_dtype)
        h = _residual(h, F.linear(o, l.o_w, l.o_b))
        gate, up = F.linear(self._norm(h, l.post_norm), l.gu_w, l.gu_b).chunk(2, -1)
        return _residual(h, F.linear(self.act(gate) * up, l.down_w, l.down_b))

    def _logits(self, w: LlamaWeights, h: torch.Tensor, temperature: float) -> torch.Tensor:
        a = F.rms_norm(h, (self.d,), w.norm, self.eps)
        if temperature != 1.0:
            a = a / temperature
        logits = F.linear(a.to(w.head.dtype), w.head)
        return logits if logits.dtype == torch.float32 else logits.float()

    def _attend(self, q, k, v, mask, causal=False):
        """q (B, H, Sq, dh), k, v (B, Hkv, Sk, dh) -> (B, H, Sq, dh)."""
        return F.scaled_dot_product_attention(q, k, v, attn_mask=mask, is_causal=causal, scale=self.scale,
                                              enable_gqa=self.n_kv != self.n_head)

    def _prompts(self, h, l, cos, sin, B, S, mask):
        """One block over B sequences of S tokens (rows of h), causal or `mask`: (h, k, v) with
        k, v (B, S, Hkv, dh) rotated."""
        H, Hkv, dh = self.n_head, self.n_kv, self.head_dim
        q, k, v = self._attn_in(h, l, cos, sin)
        k, v = k.view(B, S, Hkv, dh), v.view(B, S, Hkv, dh)
        o = self._attend(q.view(B, S, H, dh).transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2), mask, mask is None)
        return self._out_mlp(h, o.transpose(1, 2).reshape(B * S, H * dh), l), k, v

    def forward_logits(self, w: LlamaWeights, ids: torch.Tensor, attention_mask: torch.Tensor | None = None):
        """(B, S) ids (left-padded if attention_mask is given) -> (B, S, V) fp32 logits. For tests."""
        B, S = ids.shape
        if attention_mask is None:
            positions, mask = torch.arange(S).expand(B, S), None
        else:
            positions = (attention_mask.long().cumsum(-1) - 1).clamp(min=0)
            mask = _prompt_mask(attention_mask.bool())
        cos, sin = self._cos_sin(positions.reshape(-1))
        h = F.embedding(ids.reshape(-1), w.embed)
        for l in w.layers:
            h, _, _ = self._prompts(h, l, cos, sin, B, S, mask)
        return self._logits(w, h, 1.0).view(B, S, -1)

    # -- sampling -------------------------------------------------------------------------------

    def _prefill(self, w: LlamaWeights, ids: torch.Tensor, valid: torch.Tensor, n: int, S: int, temperature: float):
        """Each prompt (ids (P, Lp), left-padded) once: the KV cache (L, N, S, 2, Hkv, dh) with its
        keys and values copied to its n rows, and the next-token probabilities (N, V)."""
        (P, Lp), Hkv, dh = ids.shape, self.n_kv, self.head_dim
        positions = (valid.long().cumsum(-1) - 1).clamp(min=0)
        cos, sin = self._cos_sin(positions.reshape(-1))
        mask = _prompt_mask(valid) if not bool(valid.all()) else None
        h = F.embedding(ids.reshape(-1), w.embed)
        cache = torch.empty(self.n_layer, P * n, S, 2, Hkv, dh)
        for i, l in enumerate(w.layers):
            h, k, v = self._prompts(h, l, cos, sin, P, Lp, mask)
            dst = cache[i, :, :Lp].view(P, n, Lp, 2, Hkv, dh)
            dst[:, :, :, 0] = k.unsqueeze(1)
            dst[:, :, :, 1] = v.unsqueeze(1)
        probs = torch.softmax(self._logits(w, h.view(P, Lp, self.d)[:, -1], temperature), -1)
        return cache, probs.repeat_interleave(n, 0)

    def _decode_step(self, w: LlamaWeights, h: torch.Tensor, cache: torch.Tensor, col: int,
                     col_mask: torch.Tensor | None, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
        """One new token per row (h (B, D) embedded, at rotary cos/sin (B, 1, dh)) through every layer,
        its keys and values written to cache column `col`: the last hidden state (B, D)."""
        B, H, Hkv, dh = h.shape[0], self.n_head, self.n_kv, self.head_dim
        G = H // Hkv
        for i, l in enumerate(w.layers):
            q, k, v = self._attn_in(h, l, cos, sin)
            kv = cache[i]
            kv[:, col, 0] = k
            kv[:, col, 1] = v
            kv = kv[:, :col + 1]  # (B, col+1, 2, Hkv, dh)
            # the G query heads of each KV head attend as G query rows: no K/V repeat
            o = F.scaled_dot_product_attention(
                q.view(B, Hkv, G, dh), kv[:, :, 0].transpose(1, 2), kv[:, :, 1].transpose(1, 2),
                attn_mask=None if col_mask is None else col_mask[..., :col + 1], scale=self.scale)
            h = self._out_mlp(h, o.reshape(B, H * dh), l)
        return h

    @torch.no_grad()
    def generate(self, w: LlamaWeights, prompt_ids: Sequence[torch.Tensor], n: int, max_new_tokens: int,
                 temperature: float, top_p: float, stop_ids: Sequence[int], pad_id: int,
                 generator: torch.Generator, watch: FinishedRows | None = None
                 ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """n samples per prompt: tokens (N, T), log-probs (N, T), mask (N, T); see lean_gpt2."""
        check_sampling(max_new_tokens, temperature)
        N = len(prompt_ids) * n
        ids, valid, lens = _left_pad(prompt_ids, pad_id)
        Lp = ids.shape[1]
        S = Lp + max_new_tokens - 1
        cache, probs = self._prefill(w, ids, valid, n, S, temperature)
        stops = torch.tensor(sorted(set(int(s) for s in stop_ids)), dtype=torch.long)
        col_mask = decode_column_mask(valid, n, S)  # (rows, 1, 1, S) or None
        pos_cos, pos_sin = self._cos_sin(lens.repeat_interleave(n, 0)[:, None] + torch.arange(max_new_tokens - 1))
        rows = None
        done = torch.zeros(N, dtype=torch.bool)
        steps: list[tuple[torch.Tensor | None, torch.Tensor, torch.Tensor]] = []
        for t in range(max_new_tokens):
            u = torch.rand(N, dtype=torch.float64, generator=generator)
            token = _draw(probs, top_p, u if rows is None else u[rows])
            steps.append((rows, token, probs.gather(1, token[:, None]).squeeze(1)))
            done |= torch.isin(token, stops)
            finished, B = int(done.sum()), token.shape[0]
            last = t == max_new_tokens - 1 or finished == B
            if watch is not None:  # completions that have stopped go to the judge now
                watch.step(t, rows, token, last)
            if last:
                break
            if self.compact and 4 * finished >= B:
                keep = (~done).nonzero().squeeze(1)
                rows = keep if rows is None else rows[keep]
                token, done, pos_cos, pos_sin = token[keep], done[keep], pos_cos[keep], pos_sin[keep]
                cache = cache.index_select(1, keep)
                col_mask = None if col_mask is None else col_mask[keep]
            h = self._decode_step(w, F.embedding(token, w.embed), cache, Lp + t, col_mask, pos_cos[:, t], pos_sin[:, t])
            probs = torch.softmax(self._logits(w, h, temperature), -1)
        return assemble_steps(steps, N, pad_id, stops)

    # -- scoring --------------------------------------------------------------------------------

    def score(self, w: LlamaWeights, prompt_ids: Sequence[torch.Tensor], group: torch.Tensor,
              completion_ids: torch.Tensor, completion_mask: torch.Tensor, temperature: float = 1.0,
              pad_id: int = 0, with_entropy: bool = False, value_head: nn.Module | None = None):
        """Log-probs (N, T) of completion tokens given their prompts, with gradients; entropy and
        values (N, T) when asked; 0 on padding. See lean_gpt2.LeanGPT2.score."""
        N, T = completion_ids.shape
        if T == 0 or not bool((completion_mask > 0).any()):
            zeros = torch.zeros(N, T)
            anchor = next((x for x in (w.norm, w.head, *(t for l in w.layers for t in l if t is not None))
                           if x.requires_grad), None)
            if torch.is_grad_enabled() and anchor is not None:
                zeros = zeros + 0.0 * anchor.reshape(-1)[0]
            return zeros, (zeros if with_entropy else None), (zeros if value_head is not None else None)
        H, Hkv, dh = self.n_head, self.n_kv, self.head_dim
        used, inverse = torch.unique(group, return_inverse=True)
        ids, valid, lens = _left_pad([prompt_ids[g] for g in used.tolist()], pad_id)
        U, Lp = ids.shape
        Tc, Rp = T - 1, U * Lp
        share = U < N
        pmask = _prompt_mask(valid) if not bool(valid.all()) else None
        all_ids = torch.cat([ids.reshape(-1), completion_ids[:, :Tc].reshape(-1)])
        all_pos = torch.cat([(valid.long().cumsum(-1) - 1).clamp(min=0).reshape(-1),
                             (lens[inverse][:, None] + torch.arange(Tc)).reshape(-1)])
        cos, sin = self._cos_sin(all_pos)
        h = F.embedding(all_ids, w.embed)
        if Tc:
            key_valid = torch.cat([valid[inverse], torch.ones(N, Tc, dtype=torch.bool)], 1)
            causal = torch.ones(Tc, Lp + Tc, dtype=torch.bool).tril(Lp)
            cmask = (causal[None] & key_valid[:, None, :])[:, None]  # (N, 1, Tc, Lp+Tc)
        for l in w.layers:
            q, k, v = self._attn_in(h, l, cos, sin)
            qp = q[:Rp].view(U, Lp, H, dh).transpose(1, 2)
            kp, vp = k[:Rp].view(U, Lp, Hkv, dh).transpose(1, 2), v[:Rp].view(U, Lp, Hkv, dh).transpose(1, 2)
            o = self._attend(qp, kp, vp, pmask, pmask is None).transpose(1, 2).reshape(Rp, H * dh)
            if Tc:
                qc = q[Rp:].view(N, Tc, H, dh).transpose(1, 2)
                kc, vc = k[Rp:].view(N, Tc, Hkv, dh).transpose(1, 2), v[Rp:].view(N, Tc, Hkv, dh).transpose(1, 2)
                if share:
                    kp, vp = kp.index_select(0, inverse), vp.index_select(0, inverse)
                oc = self._attend(qc, torch.cat([kp, kc], 2), torch.cat([vp, vc], 2), cmask)
                o = torch.cat([o, oc.transpose(1, 2).reshape(N * Tc, H * dh)])
            h = self._out_mlp(h, o, l)

        sel = completion_mask > 0
        rows, cols = sel.nonzero(as_tuple=True)
        source = torch.where(cols == 0, inverse[rows] * Lp + (Lp - 1), Rp + rows * Tc + cols - 1)
        hs = h.index_select(0, source)
        logp, entropy = _token_logprobs(self._logits(w, hs, temperature), completion_ids[rows, cols], with_entropy)
        values = None
        if value_head is not None:
            values = _scatter_rows(value_head(F.rms_norm(hs, (self.d,), w.norm, self.eps).float()).squeeze(-1), sel)
        return _scatter_rows(logp, sel), _scatter_rows(entropy, sel) if with_entropy else None, values


def _rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """HF's rotate-half rotary embedding: x (..., h, dh), cos / sin (..., 1, dh)."""
    half = x.shape[-1] // 2
    return x * cos + torch.cat([-x[..., half:], x[..., :half]], -1) * sin
