"""A local Hugging Face causal LM as the judge: next-token log-probabilities read straight
from the logits (log_softmax of the last position), no sampling and no parsing.

`TransformersProvider("path/to/model")` loads with `AutoModelForCausalLM` and the tokenizer's
chat template; `TransformersProvider.from_objects(model, tokenizer, name)` wraps ones already
in memory. Its cache identity includes a sha256 of the weights, so a changed model misses.
"""

from __future__ import annotations

import hashlib
import time
from pathlib import Path
from typing import Any

from judgerl.errors import JudgeError
from judgerl.providers import ProviderResponse
from judgerl.providers.http import ProviderError


def _import_transformers() -> Any:
    try:
        import transformers
    except ImportError as exc:
        raise JudgeError("the transformers judge provider needs transformers: pip install 'judgerl[hf]'") from exc
    return transformers


def weights_fingerprint(model: Any) -> str:
    """sha256 over the parameters' names, shapes and bytes (computed once per provider)."""
    import torch

    digest = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        digest.update(name.encode())
        digest.update(str(tuple(tensor.shape)).encode())
        digest.update(tensor.detach().to(torch.float32).contiguous().cpu().numpy().tobytes())
    return digest.hexdigest()


class TransformersProvider:
    def __init__(self, model: str, dtype: str = "float32"):
        transformers = _import_transformers()
        path = Path(model).expanduser()
        if not path.exists():
            raise JudgeError(f"transformers judge model {model!r} is not a local folder (nothing is downloaded at run time)")
        import torch

        self.tokenizer = transformers.AutoTokenizer.from_pretrained(path)
        self.model = transformers.AutoModelForCausalLM.from_pretrained(path, dtype=getattr(torch, dtype))
        self.model.eval()
        self.name = f"transformers/{path.name}"
        self._fingerprint: str | None = None

    @classmethod
    def from_objects(cls, model: Any, tokenizer: Any, name: str) -> "TransformersProvider":
        provider = cls.__new__(cls)
        provider.model, provider.tokenizer, provider.name = model.eval(), tokenizer, f"transformers/{name}"
        provider._fingerprint = None
        return provider

    def identity(self) -> dict[str, Any]:
        if self._fingerprint is None:
            self._fingerprint = weights_fingerprint(self.model)
        return {"provider": "transformers", "model": self.name, "weights_sha256": self._fingerprint}

    def _prompt_ids(self, messages: list[dict[str, str]]) -> Any:
        ids = self.tokenizer.apply_chat_template(messages, add_generation_prompt=True, return_tensors="pt", return_dict=True)
        return ids["input_ids"]

    def next_token_logprobs(self, messages: list[dict[str, str]], top_k: int) -> ProviderResponse:
        return self.complete(messages, max_tokens=1, top_k=top_k)

    def complete(self, messages: list[dict[str, str]], max_tokens: int, top_k: int = 0) -> ProviderResponse:
        import torch

        input_ids = self._prompt_ids(messages)  # (1, T)
        limit = getattr(self.model.config, "max_position_embeddings", None)
        if limit is not None and input_ids.shape[1] + max_tokens > limit:
            # one oversized item is one unscored judgment, not the end of the run
            raise ProviderError(f"{self.name}: the request is {input_ids.shape[1]} tokens, more than the "
                                f"model's context of {limit} (less {max_tokens} to generate)")
        started = time.perf_counter()
        with torch.no_grad():
            logits = self.model(input_ids=input_ids).logits[0, -1]  # (V,)
            log_probs = torch.log_softmax(logits.float(), dim=-1)
            top: list[list[Any]] = []
            if top_k:
                values, indices = log_probs.topk(min(top_k, log_probs.shape[-1]))
                top = [[self.tokenizer.decode([int(i)]), float(v)] for v, i in zip(values, indices)]
            if max_tokens <= 1:
                new_ids = [int(log_probs.argmax())]
            else:
                generated = self.model.generate(input_ids=input_ids, attention_mask=torch.ones_like(input_ids),
                                                max_new_tokens=max_tokens, do_sample=False,
                                                pad_token_id=self.tokenizer.pad_token_id or self.tokenizer.eos_token_id)
                new_ids = generated[0, input_ids.shape[1]:].tolist()
        return ProviderResponse(
            top_logprobs=top,
            text=self.tokenizer.decode(new_ids, skip_special_tokens=True),
            prompt_tokens=int(input_ids.shape[1]),
            completion_tokens=len(new_ids),
            latency_s=time.perf_counter() - started,
        )
