"""The model protocol every runtime implements, and a scripted model for tests.

Messages are OpenAI-style dicts ({"role": ..., "content": ...}). A reasoning
model may answer `<think>...</think>` then its answer; `split_think` separates
the two, and only the answer is put back into later prompts.
"""

from __future__ import annotations

import re
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Callable, Iterator, Protocol, Sequence

from .errors import ModelError
from .progress import CancelToken

Message = dict  # {"role": "system" | "user" | "assistant", "content": str}


@dataclass
class Completion:
    text: str  # the whole generated text, think part included
    prompt_tokens: int = 0  # prompt tokens the runtime had to process (cache hits excluded)
    completion_tokens: int = 0
    finish_reason: str = "stop"
    seconds: float = 0.0

    @property
    def think(self) -> str:
        return split_think(self.text)[0]

    @property
    def answer(self) -> str:
        return split_think(self.text)[1]


class Model(Protocol):
    """What the agent needs from a model runtime."""

    name: str

    def complete(
        self,
        messages: Sequence[Message],
        *,
        n: int = 1,
        max_tokens: int = 1024,
        temperature: float = 0.0,
        json_schema: dict | None = None,
        cancel: CancelToken | None = None,
    ) -> list[Completion]:
        """`n` samples for one prompt. With `json_schema`, answers are constrained where
        the runtime can (after an optional think part) and validated by the caller."""
        ...

    def logprob(self, messages: Sequence[Message], continuation: str, *, adapter: str | None = None) -> float:
        """Sum of log-probabilities of `continuation` as the assistant's reply to `messages`, with the
        named LoRA adapter active (None: the base model)."""
        ...

    def close(self) -> None:
        """Release the model's memory."""
        ...


_THINK = re.compile(r"^\s*<think>(.*?)(?:</think>|$)(.*)", re.S)


def split_think(text: str) -> tuple[str, str]:
    """(think, answer). An unclosed <think> is all think and no answer."""
    m = _THINK.match(text)
    if not m:
        return "", text.strip()
    return m.group(1).strip(), m.group(2).strip()


Script = Callable[[Sequence[Message]], str]


class ScriptedModel:
    """A deterministic model that replays answers: a list (consumed in order) or a function.

    For tests and demos of control flow; the real runtimes are tested separately.
    Every prompt it sees is kept in `calls`.
    """

    name = "scripted"

    def __init__(self, answers: Sequence[str] | Script, *,
                 logprob: Callable[[Sequence[Message], str, str | None], float] | None = None):
        self._answers = answers if callable(answers) else list(answers)
        self._logprob = logprob
        self.calls: list[list[Message]] = []

    def complete(self, messages, *, n=1, max_tokens=1024, temperature=0.0, json_schema=None, cancel=None):
        out = []
        for _ in range(n):
            if cancel:
                cancel.check()
            self.calls.append([dict(m) for m in messages])
            if callable(self._answers):
                text = self._answers(messages)
            elif self._answers:
                text = self._answers.pop(0)
            else:
                raise ModelError("scripted model ran out of answers")
            start = time.perf_counter()
            out.append(Completion(text, sum(len(m["content"]) // 4 for m in messages), len(text) // 4,
                                  seconds=time.perf_counter() - start))
        return out

    def logprob(self, messages, continuation, *, adapter=None):
        """`logprob(messages, continuation, adapter)` as the function given says."""
        if self._logprob is None:
            raise ModelError("scripted model has no log-probabilities")
        return self._logprob(messages, continuation, adapter)

    def close(self):
        pass


def replay_model(path: str) -> ScriptedModel:
    """A model that answers every prompt as the last solve recorded in a trajectory file did.

    Replays a solve without its model: to reproduce a run, or to drive the editors'
    end-to-end tests deterministically. A prompt the recording never saw is a ModelError.
    """
    import json

    from .trajectory import read_trajectories

    try:
        records = read_trajectories(path)
    except (OSError, ValueError) as exc:
        raise ModelError(f"cannot read the trajectory {path}: {exc}") from None
    if not records:
        raise ModelError(f"the trajectory file {path} holds no solve")
    answers: dict[str, list[str]] = {}
    for step in records[-1]["steps"]:
        answers.setdefault(json.dumps(step["messages"], sort_keys=True), []).append(step["output"])

    def answer(messages: Sequence[Message]) -> str:
        queue = answers.get(json.dumps(list(messages), sort_keys=True))
        if not queue:
            raise ModelError(f"the solve recorded in {path} never saw this prompt "
                             "(the repository, the issue or the settings differ)")
        return queue.pop(0) if len(queue) > 1 else queue[0]

    model = ScriptedModel(answer)
    model.name = f"replay:{path}"
    return model


POLL_SECONDS = 0.1  # how often a call waiting for the model checks its cancel token


class SerializedModel:
    """A model whose calls run one at a time, for workers that share it: llama.cpp's in-process
    model is not thread-safe. A call waiting for its turn still notices a cancel."""

    def __init__(self, model: Model):
        self.model = model
        self.name = model.name
        self._lock = threading.Lock()

    @contextmanager
    def _turn(self, cancel: CancelToken | None) -> Iterator[None]:
        while not self._lock.acquire(timeout=POLL_SECONDS):
            if cancel is not None:
                cancel.check()
        try:
            yield
        finally:
            self._lock.release()

    def complete(self, messages, **kwargs):
        with self._turn(kwargs.get("cancel")):
            return self.model.complete(messages, **kwargs)

    def logprob(self, messages, continuation, **kwargs):
        with self._turn(None):
            return self.model.logprob(messages, continuation, **kwargs)

    def close(self) -> None:
        self.model.close()


def concurrency_safe(model: Model) -> bool:
    """Whether workers may call `model` at the same time: a server's client may (the server
    batches or queues); an in-process runtime, or one not known here, may not."""
    from .openai_http import OpenAIModel

    return isinstance(model, OpenAIModel)
