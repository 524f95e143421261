"""The OpenAI-compatible HTTP runtime: llama.cpp's llama-server, vLLM, SGLang, Ollama.

This is the path past one GPU: one server (vLLM with tensor parallelism, say)
serves many agent workers. Timeouts and retries with backoff on transport
errors and 429/5xx answers; other HTTP errors fail at once with the server's
message.
"""

from __future__ import annotations

import os
import time
from typing import Sequence

import httpx

from .errors import Cancelled, ModelError
from .model import Completion, Message

RETRY_STATUS = {408, 429, 500, 502, 503, 504}
TOP_LOGPROBS = 20  # the most OpenAI's API gives


class OpenAIModel:
    """A model behind an OpenAI-compatible `/v1` API."""

    def __init__(self, base_url: str, model: str, *, api_key: str | None = None, timeout: float = 600.0,
                 retries: int = 3, backoff: float = 1.0, seed: int = 0):
        self.name = model
        self.base_url = base_url.rstrip("/")
        self.retries = retries
        self.backoff = backoff
        self.seed = seed
        self._schema_style = "json_schema"
        self._top: tuple | None = None  # (the last judged prompt, its first token's top log-probabilities)
        key = api_key if api_key is not None else os.environ.get("OPENAI_API_KEY", "")
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        self._http = httpx.Client(base_url=self.base_url, headers=headers,
                                  timeout=httpx.Timeout(timeout, connect=10.0))

    def _post(self, path: str, body: dict) -> dict:
        delay = self.backoff
        for attempt in range(self.retries + 1):
            try:
                resp = self._http.post(path, json=body)
            except httpx.TransportError as exc:
                error = f"{type(exc).__name__}: {exc}"
            else:
                if resp.status_code == 200:
                    return resp.json()
                error = f"HTTP {resp.status_code}: {resp.text[:500]}"
                if resp.status_code not in RETRY_STATUS or "response_format" in resp.text:
                    break
            if attempt < self.retries:
                time.sleep(delay)
                delay *= 2
        raise ModelError(f"model server {self.base_url} failed on {path}: {error}")

    def _chat(self, body: dict, schema: dict | None) -> dict:
        """A chat completion; a schema goes as OpenAI's `json_schema` response format, or as
        `json_object` + `schema` (llama-cpp-python's server) where the first is refused."""
        if schema is None:
            return self._post("/chat/completions", body)
        styles = {
            "json_schema": {"type": "json_schema", "json_schema": {"name": "answer", "schema": schema}},
            "json_object": {"type": "json_object", "schema": schema},
        }
        try:
            return self._post("/chat/completions", {**body, "response_format": styles[self._schema_style]})
        except ModelError as exc:
            if self._schema_style != "json_schema" or "response_format" not in str(exc):
                raise
            self._schema_style = "json_object"
            return self._post("/chat/completions", {**body, "response_format": styles["json_object"]})

    def complete(self, messages, *, n=1, max_tokens=1024, temperature=0.0, json_schema=None, cancel=None):
        out = []
        for i in range(n):  # one request per sample: not every server honours `n`
            if cancel:
                cancel.check()
            body = {"model": self.name, "messages": [dict(m) for m in messages], "max_tokens": max_tokens,
                    "temperature": temperature, "seed": self.seed + i}
            start = time.perf_counter()
            data = self._chat(body, json_schema)
            if cancel and cancel.cancelled:
                raise Cancelled("the solve was cancelled")
            try:
                choice = data["choices"][0]
                text = choice["message"].get("content") or ""
                reasoning = choice["message"].get("reasoning_content")
            except (KeyError, IndexError, TypeError) as exc:
                raise ModelError(f"model server {self.base_url} gave a malformed answer: {str(data)[:300]}") from exc
            if reasoning:  # servers that split the think part off
                text = f"<think>{reasoning}</think>{text}"
            usage = data.get("usage") or {}
            out.append(Completion(text, usage.get("prompt_tokens", 0), usage.get("completion_tokens", 0),
                                  choice.get("finish_reason") or "stop", time.perf_counter() - start))
        return out

    def logprob(self, messages: Sequence[Message], continuation: str, *, adapter: str | None = None) -> float:
        """The log-probability of a one-token reply (a judge's "Yes" or "No"), from the first
        generated token's top log-probabilities; `adapter` names the served model or LoRA (vLLM
        serves adapters by name). A reply outside the top 20 gets the 20th's log-probability, an
        upper bound. Longer continuations cannot be scored over the chat API: a ModelError."""
        if len(continuation.strip().split()) > 1 or len(continuation) > 12:
            raise ModelError(f"log-probabilities of a whole text are not available over the OpenAI API of "
                             f"{self.base_url}; use the llama.cpp runtime for the trained ORM (orm_adapter)")
        key = (adapter, repr(list(messages)))
        if self._top is None or self._top[0] != key:
            body = {"model": adapter or self.name, "messages": [dict(m) for m in messages], "max_tokens": 1,
                    "temperature": 0.0, "logprobs": True, "top_logprobs": TOP_LOGPROBS, "seed": self.seed}
            data = self._post("/chat/completions", body)
            try:
                top = data["choices"][0]["logprobs"]["content"][0]["top_logprobs"]
                table = {t["token"]: float(t["logprob"]) for t in top}
            except (KeyError, IndexError, TypeError) as exc:
                raise ModelError(f"model server {self.base_url} gave no top log-probabilities "
                                 f"(it must support logprobs/top_logprobs): {str(data)[:300]}") from exc
            self._top = (key, table)
        table = self._top[1]
        found = [lp for token, lp in table.items() if token.strip() == continuation.strip()]
        return max(found) if found else min(table.values(), default=-100.0)

    def close(self) -> None:
        self._http.close()
