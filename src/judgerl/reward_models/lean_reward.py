"""The reward model's fast forward: a Llama / Qwen2 backbone run over a prefix tree (lean_tree.py).

    PrefixTree (M unique tokens) -> embeddings (M, D)
      -> per block: RMSNorm -> q|k|v (M, (H + 2 Hkv) dh) -> rotary -> attention by groups of segments
         -> o_proj -> residual -> RMSNorm -> gate|up -> SwiGLU -> down -> residual
         (the last block runs its o_proj and MLP only at the N rows read)
      -> final RMSNorm at the N last tokens (N, D) -> head -> rewards (N,)

The numbers are the plain transformers forward's (the same weights, rotary positions as HF computes
them via judgerl.policies.lean_llama.LeanLlama, the same attention), up to float summation order;
tests/test_reward_model_speed.py checks it against LlamaModel. What it saves: every shared prefix
is computed once, padding is never computed, and the last block skips the rows nobody reads.

LoRA: the adapter runs beside the frozen base weight, y = x W^T + s (x A^T) B^T (as peft does: no
gradient or copy the size of W is ever formed); when scoring (inference_mode) B A is merged into W
once and the merge kept while the parameters are unchanged.
`compute_dtype=torch.bfloat16` runs the matmuls in bf16 (weights cast per call; the residual stream,
norms, rotary, attention and the head stay fp32), as CPU autocast would.
Scoring (inference_mode) stacks q|k|v and gate|up into one matmul each and keeps the stack (and any
bf16 cast) between calls; training runs one matmul per part over the parameters themselves, so no
weight-sized copy lives through the backward pass.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import torch
import torch.nn.functional as F

from judgerl.policies.lean_common import lora_merged
from judgerl.policies.lean_llama import ACTIVATIONS, LeanLlama, _rope, unsupported
from judgerl.reward_models.lean_tree import PrefixTree


class Linear(NamedTuple):
    """Several linears fused into one: y = x w^T + b (+ the LoRA path of each part, when present)."""
    w: torch.Tensor | None  # (sum out, in)
    b: torch.Tensor | None
    lora_a: torch.Tensor | None  # (sum r, in): every part's A, stacked
    lora_b: tuple[tuple[torch.Tensor, float, int], ...]  # per part: (B (out, r), scale, r); r = 0: no adapter
    parts: tuple[tuple[torch.Tensor, torch.Tensor | None], ...] = ()  # w None: the parts' own (w, b), unstacked


class Block(NamedTuple):
    in_norm: torch.Tensor
    qkv: Linear
    o: Linear
    post_norm: torch.Tensor
    gate_up: Linear
    down: Linear


class BackboneWeights(NamedTuple):
    embed: torch.Tensor  # (V, D)
    norm: torch.Tensor  # (D,)
    blocks: tuple[Block, ...]


def lean_unsupported(config: Any) -> str | None:
    """Why the fast forward cannot run this backbone (None: it can)."""
    if getattr(config, "model_type", None) == "gpt2":
        return "gpt2 backbones run the plain transformers forward"
    return unsupported(config)


def _adapter(module: Any, low_rank: bool) -> str | None:
    """The name of the one active LoRA adapter to run beside `module`'s base weight (None: merge or none)."""
    active = [n for n in getattr(module, "active_adapters", []) if n in getattr(module, "lora_A", {})]
    if low_rank and len(active) == 1 and not module.disable_adapters and not module.merged:
        return active[0]
    return None


def _fused_base(modules: list[Any], adapters: list[str | None], dtype: torch.dtype | None):
    """(w, b) of the modules stacked: base weights where an adapter runs apart, else merged ones."""
    if any(a is not None for a in adapters):
        pairs = [(getattr(m, "base_layer", m).weight, getattr(getattr(m, "base_layer", m), "bias", None)) for m in modules]
    else:
        pairs = [lora_merged(m) for m in modules]
    w = torch.cat([p[0] for p in pairs]) if len(pairs) > 1 else pairs[0][0]
    w = w if dtype is None else w.to(dtype)
    if all(p[1] is None for p in pairs):
        return w, None
    return w, torch.cat([p[1] if p[1] is not None else p[0].new_zeros(p[0].shape[0]) for p in pairs])


def _fused(modules: list[Any], low_rank: bool, dtype: torch.dtype | None, cache: dict | None = None,
           key: Any = None) -> Linear:
    """The modules (nn.Linear or peft LoRA layers) as one Linear; `low_rank`: keep adapters apart.
    The stacked (w, b) is kept in `cache` under `key` when nothing can differentiate it, and reused
    while every parameter it was made from is unchanged (torch's in-place version counters)."""
    adapters = [_adapter(m, low_rank) for m in modules]
    sources = [p for m in modules for p in m.parameters()]  # base weights, biases and adapters
    frozen = not any(p.requires_grad for m, a in zip(modules, adapters)
                     for p in (getattr(m, "base_layer", m).parameters() if a else m.parameters()))
    # not under plain no_grad (train-rm's evaluation): a copy kept from there would sit through the next epoch
    cacheable = cache is not None and (torch.is_inference_mode_enabled() or frozen)
    versions = tuple(p._version for p in sources) + (torch.is_inference_mode_enabled(),)
    parts: tuple = ()
    if len(modules) > 1 and (not cacheable or (dtype is None and not torch.is_inference_mode_enabled())):
        # Training: one matmul per part. Stacking would copy the weights every step (or keep a copy
        # under LoRA) and hold the copy, and for trained weights its gradient, through the backward.
        pairs = [(getattr(m, "base_layer", m).weight, getattr(getattr(m, "base_layer", m), "bias", None))
                 if a else lora_merged(m) for m, a in zip(modules, adapters)]
        w, b, parts = None, None, tuple((w if dtype is None else w.to(dtype), b) for w, b in pairs)
    elif cacheable and key in cache and cache[key][0] == versions:
        w, b = cache[key][1]
    else:
        w, b = _fused_base(modules, adapters, dtype)
        if cacheable:
            cache[key] = (versions, (w, b))
    if all(a is None for a in adapters):
        return Linear(w, b, None, (), parts)
    def cast(x: torch.Tensor) -> torch.Tensor:
        return x if dtype is None else x.to(dtype)
    a_parts, b_parts = [], []
    for module, name in zip(modules, adapters):
        if name is None:
            base = getattr(module, "base_layer", module).weight
            b_parts.append((base.new_zeros(base.shape[0], 0), 0.0, 0))
            continue
        a_parts.append(cast(module.lora_A[name].weight))
        b_parts.append((cast(module.lora_B[name].weight), float(module.scaling[name]), module.lora_A[name].weight.shape[0]))
    return Linear(w, b, torch.cat(a_parts), tuple(b_parts), parts)


def _apply(x: torch.Tensor, lin: Linear) -> torch.Tensor:
    """x (M, in) -> (M, sum out)."""
    if lin.w is None:
        y = torch.cat([F.linear(x, w, None if b is None else b.to(w.dtype)) for w, b in lin.parts], -1)
    else:
        y = F.linear(x, lin.w, None if lin.b is None else lin.b.to(lin.w.dtype))
    if lin.lora_a is None:
        return y
    low = F.linear(x, lin.lora_a).split([r for _, _, r in lin.lora_b], -1)  # per part (M, r)
    parts = [F.linear(a, b) * s if r else a.new_zeros(x.shape[0], b.shape[0]) for a, (b, s, r) in zip(low, lin.lora_b)]
    return y + torch.cat(parts, -1)


class LeanRewardBackbone:
    """The fast forward over a transformers LlamaModel / Qwen2Model (a peft-wrapped one included)."""

    def __init__(self, base: Any, compute_dtype: torch.dtype | None = None):
        reason = lean_unsupported(base.config)
        if reason:
            raise ValueError(reason)
        # LeanLlama reads the sizes and the rotary frequencies off a causal LM (model.model): hand it the body.
        self.engine = LeanLlama(type("Body", (), {"config": base.config, "model": base})(), compute_dtype)
        self.compute_dtype = self.engine.compute_dtype
        self.act = ACTIVATIONS[getattr(base.config, "hidden_act", "silu")]
        self.cache: dict = {}
        """Stacked weights nothing differentiates (frozen under LoRA, or any under inference_mode), by
        layer and role, with the parameter versions they were made from."""

    def weights(self, base: Any) -> BackboneWeights:
        """The backbone's weights as this forward uses them: fused, cast; LoRA kept apart under autograd."""
        # LoRA merged into W only where the merge is kept (scoring); elsewhere (training, train-rm's
        # evaluation under no_grad) merging would copy every weight, all layers at once.
        low_rank, cd, c = not torch.is_inference_mode_enabled(), self.compute_dtype, self.cache
        blocks = []
        for i, layer in enumerate(base.layers):
            a, m = layer.self_attn, layer.mlp
            blocks.append(Block(layer.input_layernorm.weight,
                                _fused([a.q_proj, a.k_proj, a.v_proj], low_rank, cd, c, (i, "qkv", low_rank)),
                                _fused([a.o_proj], low_rank, cd, c, (i, "o", low_rank)),
                                layer.post_attention_layernorm.weight,
                                _fused([m.gate_proj, m.up_proj], low_rank, cd, c, (i, "gate_up", low_rank)),
                                _fused([m.down_proj], low_rank, cd, c, (i, "down", low_rank))))
        return BackboneWeights(base.embed_tokens.weight, base.norm.weight, tuple(blocks))

    def _norm(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        y = F.rms_norm(x, (self.engine.d,), w, self.engine.eps)
        return y if self.compute_dtype is None else y.to(self.compute_dtype)

    def _attention(self, tree: PrefixTree, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        """q (M, H, dh), k, v (M, Hkv, dh) -> (M, H dh): each group of segments over their keys."""
        e = self.engine
        out = []
        for group in tree.groups:
            qg = q[group.queries].transpose(1, 2)  # (G, H, Lq, dh)
            kg, vg = k[group.keys].transpose(1, 2), v[group.keys].transpose(1, 2)  # (G, Hkv, K, dh)
            o = F.scaled_dot_product_attention(qg, kg, vg, attn_mask=group.mask, is_causal=group.mask is None,
                                               scale=e.scale, enable_gqa=e.n_kv != e.n_head)
            out.append(o.transpose(1, 2)[group.query_valid])  # (rows of this group, H, dh)
        o = torch.cat(out) if len(out) > 1 else out[0]
        if tree.order is not None:
            o = o.index_select(0, tree.order)  # back to flat order
        return o.reshape(q.shape[0], e.n_head * e.head_dim)

    def hidden_at_read(self, w: BackboneWeights, tree: PrefixTree) -> torch.Tensor:
        """The final-normed hidden state at each sequence's last token: (N, D) fp32."""
        e = self.engine
        H, Hkv, dh, M = e.n_head, e.n_kv, e.head_dim, tree.tokens
        cos, sin = e._cos_sin(tree.positions)  # (M, 1, dh)
        h = F.embedding(tree.ids, w.embed)  # (M, D) fp32 residual stream
        for i, block in enumerate(w.blocks):
            qkv = _apply(self._norm(h, block.in_norm), block.qkv).float()
            q, k, v = qkv.split([H * dh, Hkv * dh, Hkv * dh], -1)
            o = self._attention(tree, _rope(q.view(M, H, dh), cos, sin), _rope(k.view(M, Hkv, dh), cos, sin),
                                v.view(M, Hkv, dh))
            if i == len(w.blocks) - 1:  # past the last attention only the rows read matter
                h, o = h[tree.read], o[tree.read]
            h = h + _apply(o if self.compute_dtype is None else o.to(self.compute_dtype), block.o).float()
            gate, up = _apply(self._norm(h, block.post_norm), block.gate_up).chunk(2, -1)
            h = h + _apply(self.act(gate) * up, block.down).float()
        return F.rms_norm(h, (e.d,), w.norm, e.eps)
