"""A Bradley–Terry reward model: a scalar head on a local Hugging Face causal-LM backbone.

    (prompt, completion) -> chat template (user turn, assistant turn) when the tokenizer has one,
                            else prompt + "\\n" + completion + eos
                         -> ids, the last max_length kept (B, L), right-padded, mask (B, L)
                         -> backbone decoder (no LM head) -> hidden states (B, L, H)
                         -> the hidden state at the last real token of each row (B, H)
                         -> head: Linear(H, 1) -> reward (B,)

The reward is read at the last real token (as TRL's sequence-classification models do): it is the
only position that has seen the whole completion through causal attention. Too-long sequences
lose their beginning, not their end, for the same reason. The backbone is fully fine-tuned or
carries a LoRA adapter (peft); the head is always trained.

For Llama / Qwen2 backbones (SmolLM2 included) the same function runs through a faster path
(lean_reward.py over lean_tree.py): the batch's sequences become a prefix tree, so the chat
template's system turn, a pair's shared prompt, a group's shared prompt are computed once, padding is
never computed, and LoRA trains beside the frozen weights. `forward_reference` is the plain
transformers forward, for tests and for other architectures.

A saved reward model is a folder: `reward_model.json` (the manifest: backbone, head, tokenizer,
max_length, chat template, LoRA), `head.safetensors`, the tokenizer's files, and the backbone's
weights (`model.safetensors` + `config.json`), or for LoRA only the adapter
(`adapter_model.safetensors`) over the base folder the manifest names. Nothing is unpickled.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from contextlib import contextmanager
from typing import Any, Iterator, Sequence

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from judgerl.reward_models.lean_reward import LeanRewardBackbone, lean_unsupported
from judgerl.reward_models.lean_tree import prefix_tree

MANIFEST = "reward_model.json"
HEAD_FILE = "head.safetensors"
KIND = "bradley_terry"
DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16}


class RewardModelLoadError(ValueError):
    """A folder that is not a usable reward model; one line naming it and what is missing."""


@contextmanager
def _quiet_transformers() -> Iterator[None]:
    """Without transformers' progress bars, its report of the causal LM's head weights that a bare
    backbone does not use (expected, not a problem), and the FutureWarning peft's wrapping triggers."""
    import warnings

    from transformers.utils import logging as hf_logging

    verbosity, bars = hf_logging.get_verbosity(), hf_logging.is_progress_bar_enabled()
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            yield
    finally:
        hf_logging.set_verbosity(verbosity)
        if bars:
            hf_logging.enable_progress_bar()


def _quiet_from_pretrained(loader: Any, folder: Path) -> Any:
    with _quiet_transformers():
        return loader.from_pretrained(folder, dtype=torch.float32)


class BradleyTerryRewardModel(nn.Module):
    def __init__(self, backbone: Any, tokenizer: Any, *, backbone_folder: Path, max_length: int = 512,
                 use_chat_template: bool = True, lora: dict[str, Any] | None = None, name: str | None = None,
                 compute_dtype: str = "float32"):
        super().__init__()
        if compute_dtype not in DTYPES:
            raise ValueError(f"compute_dtype {compute_dtype!r} is not one of {', '.join(DTYPES)}")
        if lora is not None and not hasattr(backbone, "peft_config"):
            import peft

            config = peft.LoraConfig(r=lora["r"], lora_alpha=lora["alpha"], lora_dropout=lora["dropout"],
                                     task_type="FEATURE_EXTRACTION", target_modules="all-linear")
            with _quiet_transformers():
                backbone = peft.get_peft_model(backbone, config)
        self.backbone = backbone
        self.tokenizer = tokenizer
        self.backbone_folder = Path(backbone_folder)
        self.max_length = max_length
        self.use_chat_template = use_chat_template and bool(getattr(tokenizer, "chat_template", None))
        self.lora = lora
        self.name = name or self.backbone_folder.name
        hidden = self._base().config.hidden_size
        self.head = nn.Linear(hidden, 1)
        # Small random weights (std 1/sqrt(H)/10), zero bias: rewards start near 0 but not all equal,
        # so the backbone gets a gradient from the first step.
        nn.init.normal_(self.head.weight, std=0.1 / math.sqrt(hidden))
        nn.init.zeros_(self.head.bias)
        self.pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else (tokenizer.eos_token_id or 0)
        self.compute_dtype = compute_dtype
        base = self._base()
        fast = hasattr(base, "layers") and lean_unsupported(base.config) is None
        self.lean = LeanRewardBackbone(base, DTYPES[compute_dtype]) if fast else None
        if self.lean is None and compute_dtype != "float32":
            raise ValueError(f"compute_dtype {compute_dtype!r} needs a Llama / Qwen2 backbone (the fast forward)")
        self.eval()  # no dropout, in training too: a pair's two rewards are read from the same function

    @classmethod
    def from_backbone(cls, folder: str | Path, *, lora: dict[str, Any] | None = None, max_length: int = 512,
                      use_chat_template: bool = True, seed: int = 0,
                      compute_dtype: str = "float32") -> "BradleyTerryRewardModel":
        """A fresh reward model (random head) over the causal LM in `folder` (a local folder only).
        compute_dtype "bfloat16": the fast forward's matmuls in bf16 (weights and optimiser stay fp32)."""
        from transformers import AutoModel, AutoTokenizer

        folder = Path(folder).expanduser()
        if not (folder / "config.json").is_file():
            raise RewardModelLoadError(f"backbone {str(folder)!r} is not a local transformers model folder (it has "
                                       "no config.json; nothing is downloaded)")
        backbone = _quiet_from_pretrained(AutoModel, folder)
        torch.manual_seed(seed)  # the head's (and LoRA's) initial weights
        return cls(backbone, AutoTokenizer.from_pretrained(folder), backbone_folder=folder.resolve(), lora=lora,
                   max_length=max_length, use_chat_template=use_chat_template, compute_dtype=compute_dtype)

    def _base(self) -> Any:
        """The transformers model under the peft wrapper (with its LoRA layers in place)."""
        return self.backbone.get_base_model() if hasattr(self.backbone, "get_base_model") else self.backbone

    # -- text -> ids -> reward -----------------------------------------------------------------

    def encode(self, prompt: Any, completion: str) -> list[int]:
        """One (prompt, completion) as token ids, at most max_length (the end kept). A prompt is a
        string (one user turn) or a chat conversation (a list of {"role", "content"} messages)."""
        messages = [{"role": "user", "content": prompt}] if isinstance(prompt, str) else list(prompt)
        if self.use_chat_template:
            messages = messages + [{"role": "assistant", "content": completion}]
            ids = list(self.tokenizer.apply_chat_template(messages, tokenize=True, return_dict=True)["input_ids"])
        else:
            text = "\n".join(str(message.get("content", "")) for message in messages)
            ids = list(self.tokenizer(text + "\n" + completion)["input_ids"])
            if self.tokenizer.eos_token_id is not None:
                ids.append(self.tokenizer.eos_token_id)
        return ids[-self.max_length:] if len(ids) > self.max_length else ids

    def collate(self, sequences: Sequence[Sequence[int]]) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, L) ids right-padded with pad_id, and the (B, L) mask (1 on real tokens)."""
        width = max(len(s) for s in sequences)
        ids = torch.full((len(sequences), width), self.pad_id, dtype=torch.long)
        mask = torch.zeros(len(sequences), width, dtype=torch.long)
        for row, sequence in enumerate(sequences):
            ids[row, : len(sequence)] = torch.tensor(list(sequence), dtype=torch.long)
            mask[row, : len(sequence)] = 1
        return ids, mask

    def forward(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """ids, mask: (B, L), right-padded -> rewards (B,)."""
        if self.lean is None:
            return self.forward_reference(ids, mask)
        lengths = mask.sum(dim=1).tolist()
        return self.forward_sequences([row[:n] for row, n in zip(ids.tolist(), lengths)])

    def forward_sequences(self, sequences: Sequence[Sequence[int]], weights: Any = None) -> torch.Tensor:
        """Token sequences (as `encode` gives them) -> rewards (N,), through the fast forward (a prefix
        tree: shared beginnings once). `weights`: the backbone's, read once by the caller for many calls."""
        if self.lean is None:
            return self.forward_reference(*self.collate(sequences))
        weights = self.lean.weights(self._base()) if weights is None else weights
        return self.head(self.lean.hidden_at_read(weights, prefix_tree(sequences))).squeeze(-1)  # (N,)

    def forward_reference(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """The plain transformers forward: ids, mask (B, L), right-padded -> rewards (B,)."""
        hidden = self.backbone(input_ids=ids, attention_mask=mask, use_cache=False).last_hidden_state  # (B, L, H)
        last = mask.sum(dim=1) - 1  # (B,) index of the last real token
        at_last = hidden[torch.arange(hidden.shape[0]), last]  # (B, H)
        return self.head(at_last).squeeze(-1)  # (B,)

    def rewards(self, prompts: Sequence[Any], completions: Sequence[str], batch_size: int = 16) -> torch.Tensor:
        """(N,) raw rewards, float32, in order. Batches are cut from the sequences sorted by their
        tokens, so that neighbours share their beginnings (the prompt, the system turn), which the
        fast forward computes once per batch. Computed under inference_mode; returned as a plain
        tensor (no gradient), which later autograd code may use like any constant."""
        encoded = [self.encode(p, c) for p, c in zip(prompts, completions)]
        order = sorted(range(len(encoded)), key=lambda i: encoded[i])
        with torch.inference_mode():
            weights = self.lean.weights(self._base()) if self.lean is not None else None  # merged, cast: once
            out = torch.empty(len(encoded))
            for start in range(0, len(order), batch_size):
                rows = order[start:start + batch_size]
                out[rows] = self.forward_sequences([encoded[i] for i in rows], weights).float()
        return out.clone()  # out of inference mode: an ordinary tensor

    def trainable_parameters(self) -> list[nn.Parameter]:
        if self.lora is not None:
            backbone = [p for n, p in self.backbone.named_parameters() if "lora_" in n and p.requires_grad]
        else:
            backbone = list(self.backbone.parameters())
        return backbone + list(self.head.parameters())

    # -- save / load ---------------------------------------------------------------------------

    def manifest(self) -> dict[str, Any]:
        return {
            "kind": KIND, "version": 1, "name": self.name,
            "backbone": {"folder": str(self.backbone_folder), "weights": "lora" if self.lora else "full",
                         "architecture": type(self._base()).__name__},
            "head": {"file": HEAD_FILE, "hidden_size": self.head.in_features},
            "tokenizer": ".", "max_length": self.max_length, "use_chat_template": self.use_chat_template,
            "lora": self.lora, "compute_dtype": self.compute_dtype,
        }

    def save(self, folder: str | Path) -> None:
        """save_pretrained-like: the backbone (or its adapter), the tokenizer, the head, the manifest."""
        save_parts(folder, self.backbone, self.tokenizer, self.head, self.manifest())

    @classmethod
    def load(cls, folder: str | Path, compute_dtype: str | None = None) -> "BradleyTerryRewardModel":
        """The reward model saved in `folder`; `compute_dtype` (float32 | bfloat16) overrides the one
        it was saved with, e.g. to score a float32-trained model with bf16 matmuls."""
        from transformers import AutoModel, AutoTokenizer

        folder = Path(folder).expanduser()
        manifest = read_manifest(folder)
        lora = manifest.get("lora")
        if lora is not None:
            import peft

            base_folder = Path(manifest["backbone"]["folder"])
            if not (base_folder / "config.json").is_file():
                raise RewardModelLoadError(f"{folder}: its LoRA adapter's base backbone {str(base_folder)!r} is gone")
            base = _quiet_from_pretrained(AutoModel, base_folder)
            with _quiet_transformers():
                backbone = peft.PeftModel.from_pretrained(base, folder, is_trainable=True)
        else:
            base_folder = Path(manifest["backbone"]["folder"])
            backbone = _quiet_from_pretrained(AutoModel, folder)
        model = cls(backbone, AutoTokenizer.from_pretrained(folder), backbone_folder=base_folder,
                    max_length=manifest["max_length"], use_chat_template=manifest["use_chat_template"],
                    lora=lora, name=manifest.get("name"),
                    compute_dtype=compute_dtype or manifest.get("compute_dtype", "float32"))
        model.head.load_state_dict(load_file(str(folder / HEAD_FILE)))
        return model


def parse_manifest(folder: Path, kind: str) -> dict[str, Any]:
    """The folder's reward_model.json as a dict naming `kind`; RewardModelLoadError in one line
    otherwise (each kind then checks the fields its `load` reads)."""
    path = Path(folder) / MANIFEST
    if not path.is_file():
        raise RewardModelLoadError(f"{folder}: not a reward model folder (it has no {MANIFEST})")
    try:
        manifest = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise RewardModelLoadError(f"{path}: does not parse ({str(exc)[:120]})") from None
    if not isinstance(manifest, dict) or manifest.get("kind") != kind:
        found = manifest.get("kind") if isinstance(manifest, dict) else None
        raise RewardModelLoadError(f"{path}: not a {kind} reward model manifest (kind {str(found)[:60]!r})")
    return manifest


def read_manifest(folder: Path) -> dict[str, Any]:
    """The folder's reward_model.json, checked for what `load` reads; RewardModelLoadError otherwise."""
    path = Path(folder) / MANIFEST
    manifest = parse_manifest(folder, KIND)
    for key in ("backbone", "max_length", "use_chat_template"):
        if key not in manifest:
            raise RewardModelLoadError(f"{path}: has no {key!r}")
    if manifest.get("compute_dtype", "float32") not in DTYPES:  # absent in folders saved before it existed
        raise RewardModelLoadError(f"{path}: compute_dtype {str(manifest['compute_dtype'])[:40]!r} is not one of "
                                   f"{', '.join(DTYPES)}")
    if not (Path(folder) / HEAD_FILE).is_file():
        raise RewardModelLoadError(f"{folder}: {HEAD_FILE} is missing")
    return manifest


def save_parts(folder: str | Path, network: Any, tokenizer: Any, head: nn.Module, manifest: dict[str, Any]) -> None:
    """A reward model's folder, whatever its kind: the network (peft: only its adapter,
    adapter_model.safetensors; else model.safetensors), the tokenizer, the head, the manifest."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    with _quiet_transformers():
        network.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    save_file({k: v.detach().contiguous() for k, v in head.state_dict().items()}, str(folder / HEAD_FILE))
    (folder / MANIFEST).write_text(json.dumps(manifest, indent=1))
