"""Structured answers: pull JSON out of a model's answer, validate it, re-ask on failure."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Callable

import jsonschema

from .errors import FormatError
from .model import Completion, Message, Model
from .progress import CancelToken
from .trajectory import Step, Trajectory

_FENCE = re.compile(r"```(?:json)?\s*(.*?)```", re.S)


def extract_json(answer: str) -> object:
    """The JSON value in `answer`: the whole text, a ```json fence, or the first {...} that parses."""
    text = answer.strip()
    candidates = [text, *(m.group(1) for m in _FENCE.finditer(text))]
    for cand in candidates:
        try:
            return json.loads(cand)
        except ValueError:
            pass
    decoder = json.JSONDecoder()
    for i, ch in enumerate(text):
        if ch in "{[":
            try:
                return decoder.raw_decode(text, i)[0]
            except ValueError:
                continue
    raise FormatError("Your answer holds no valid JSON. Answer with one JSON object as asked.")


def validate(value: object, schema: dict) -> None:
    try:
        jsonschema.validate(value, schema)
    except jsonschema.ValidationError as exc:
        where = "/".join(str(p) for p in exc.absolute_path) or "the answer"
        raise FormatError(f"Invalid JSON at {where}: {exc.message}") from None


@dataclass
class Ask:
    """One structured question to the model, with its retries bounded."""

    model: Model
    trajectory: Trajectory
    cancel: CancelToken | None = None
    max_tokens: int = 1024
    temperature: float = 0.0
    retries: int = 2
    on_tokens: Callable[[int], None] | None = None

    def json(
        self,
        stage: str,
        candidate: int,
        messages: list[Message],
        schema: dict,
        check: Callable[[object], object] = lambda v: v,
        temperature: float | None = None,
    ) -> tuple[object | None, list[Message]]:
        """Ask until the answer parses, matches `schema` and passes `check` (which may
        raise FormatError or return a cleaned value). Returns (value or None, the
        conversation with only answers kept)."""
        return self.json_many(stage, messages, schema, check, 1, temperature, first=candidate)[0]

    def json_many(
        self,
        stage: str,
        messages: list[Message],
        schema: dict,
        check: Callable[[object], object],
        n: int,
        temperature: float | None = None,
        first: int = 1,
    ) -> list[tuple[object | None, list[Message]]]:
        """`n` samples of one question (they share the prompt), numbered from `first`; each
        malformed one is re-asked on its own, as `json` does."""
        return [self._settle(stage, first + i, messages, schema, check, completion, temperature)
                for i, completion in enumerate(self.complete(messages, schema, n=n, temperature=temperature))]

    def _settle(self, stage, candidate, messages, schema, check, completion, temperature):
        convo = list(messages)
        for attempt in range(1, self.retries + 2):
            if attempt > 1:
                completion = self.complete(convo, schema, temperature=temperature)[0]
            step = self.record(stage, candidate, attempt, convo, completion)
            try:
                value = extract_json(completion.answer)
                validate(value, schema)
                step.parsed = value = check(value)
                return value, convo + [{"role": "assistant", "content": completion.answer}]
            except FormatError as exc:
                step.feedback = exc.feedback
                convo = convo + [
                    {"role": "assistant", "content": completion.answer},
                    {"role": "user", "content": exc.feedback},
                ]
        return None, convo

    def complete(self, convo: list[Message], schema: dict | None = None, n: int = 1,
                 temperature: float | None = None) -> list[Completion]:
        if self.cancel:
            self.cancel.check()
        out = self.model.complete(convo, n=n, max_tokens=self.max_tokens,
                                  temperature=self.temperature if temperature is None else temperature,
                                  json_schema=schema, cancel=self.cancel)
        if self.on_tokens:
            self.on_tokens(sum(c.completion_tokens for c in out))
        return out

    def record(self, stage: str, candidate: int, round: int, convo: list[Message], c: Completion) -> Step:
        return self.trajectory.add(Step(
            stage=stage, candidate=candidate, round=round, messages=list(convo), output=c.text,
            think=c.think, answer=c.answer, prompt_tokens=c.prompt_tokens,
            completion_tokens=c.completion_tokens, seconds=c.seconds,
        ))
