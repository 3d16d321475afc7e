"""The server's own settings (`judgerl serve --set serve.FIELD=VALUE`); the judge's come from the config."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})


class ServeSettings(BaseModel):
    """How `judgerl serve` listens, batches and protects itself."""

    model_config = ConfigDict(extra="forbid")

    host: str = Field("127.0.0.1", description="address to listen on (anything but loopback needs a token)")
    port: int = Field(8000, ge=0, le=65535, description="TCP port (0: a free one, printed at start)")
    window_ms: float = Field(20.0, ge=0, le=10_000, description="requests arriving within this many ms of the "
                             "first waiting one are judged in one batch")
    max_batch: int = Field(256, ge=1, le=100_000, description="most completions judged in one batch")
    group_size: int = Field(0, ge=0, description="group judges: a prompt's completions are held until this many "
                            "have arrived (OpenRLHF's n_samples_per_prompt) or group_wait_s passed; 0: judge what "
                            "arrived in the window")
    group_wait_s: float = Field(5.0, gt=0, description="group judges: longest wait for a prompt's group to fill")
    max_body_bytes: int = Field(8 * 1024 * 1024, ge=1024, description="a larger request body is refused (413)")
    max_items: int = Field(4096, ge=1, description="most completions (or pairs) in one request (413 beyond)")
    body_timeout_s: float = Field(15.0, gt=0, description="a client that has not sent its whole body in this "
                                  "time is answered 408 (slow clients hold no slot for long)")
    max_connections: int = Field(4096, ge=1, description="open connections and requests at once, all clients "
                                 "together; more are answered 503 by uvicorn")
    client_concurrency: int = Field(256, ge=1, description="requests in flight from one client address; more: 429")
    request_timeout_s: float = Field(170.0, gt=0, description="a request whose judgments are not ready in this "
                                     "time is answered 504 (below OpenRLHF's 180 s client timeout)")
    unscored: Literal["null", "retry"] = Field(
        "null", description="OpenRLHF and slime: an unscored sample is answered null (the engine stops rather than "
        "train on it) or 503 with Retry-After (the engine's own retries ask again: OpenRLHF 5 times, slime 10; "
        "then it stops the same way)")
    judge_timeout_s: float = Field(150.0, gt=0, description="a judge call (one batch) running longer: its items "
                                   "are answered unscored; /health reports the judge stuck until the call returns")
