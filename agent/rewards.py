"""Reward models: the PRM judges one stage's output, the ORM scores a finished patch.

PRM: the probability that a stage's output is a right step toward fixing the
issue, from a Yes/No judge: P(yes) = e^ly / (e^ly + e^ln), ly and ln the
log-probabilities of the replies "Yes" and "No". With a trained PRM adapter the
judge is the base model with that adapter; without one, the reasoner itself.

ORM: conditioned only on the issue and the patch. Its score is the DPO implicit
reward beta * (log pi_orm(patch | issue) - log pi_ref(patch | issue)), where
pi_orm is the base model with the ORM adapter and pi_ref the base model alone.
Without a trained adapter it falls back to a zero-shot judge: the logit of the
reasoner's P(yes) that the patch resolves the issue. Both are on a logit scale,
so sigmoid(a - b) reads as the chance that patch a is better than patch b
(Bradley-Terry), which is how the adaptive stop reads a margin.

The prompts below are the contract with the training package: it trains the
PRM on PRM_PROMPT with "Yes"/"No" replies and the ORM on ORM_PROMPT with the
patch as the reply (docs/search.md).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from .model import Message, Model

YES, NO = "Yes", "No"
MAX_OUTPUT_CHARS = 12000  # of a stage's output or a patch shown to a judge

PRM_SYSTEM = "You review the work of a software engineer who is fixing an issue. Answer Yes or No."
PRM_PROMPT = """{issue}

The engineer's {step}:
{output}

Is this a correct and useful step toward fixing the issue? Answer Yes or No."""

STEPS = {
    "understand": "reading of the repository (the files to read and the suspicious code)",
    "localize": "localization (where the fix goes)",
    "patch": "patch",
}

ORM_SYSTEM = "You fix issues in Python repositories. Answer with a unified diff."
ORM_PROMPT = "{issue}\n\nWrite the patch that resolves this issue."

JUDGE_PROMPT = """{issue}

A proposed patch:
{patch}

Does this patch resolve the issue without breaking anything else? Answer Yes or No."""


def _issue(issue: str) -> str:
    return f"<issue>\n{issue.strip()}\n</issue>"


def _clip(text: str) -> str:
    return text if len(text) <= MAX_OUTPUT_CHARS else text[:MAX_OUTPUT_CHARS] + "\n... (cut)"


def yes_probability(model: Model, messages: list[Message], adapter: str | None = None) -> float:
    """P("Yes") between the replies "Yes" and "No" to `messages`."""
    ly = model.logprob(messages, YES, adapter=adapter)
    ln = model.logprob(messages, NO, adapter=adapter)
    return 1.0 / (1.0 + math.exp(ln - ly))


def logit(p: float) -> float:
    p = min(max(p, 1e-12), 1 - 1e-12)
    return math.log(p / (1 - p))


@dataclass
class ProcessReward:
    """The PRM: P(yes) that a stage's output is right. `adapter`: the model's PRM adapter
    name, None for the reasoner judging zero-shot."""

    model: Model
    adapter: str | None = None

    def messages(self, issue: str, stage: str, output: str) -> list[Message]:
        return [{"role": "system", "content": PRM_SYSTEM},
                {"role": "user", "content": PRM_PROMPT.format(issue=_issue(issue), step=STEPS[stage],
                                                             output=_clip(output))}]

    def score(self, issue: str, stage: str, output: str) -> float:
        return yes_probability(self.model, self.messages(issue, stage, output), self.adapter)


@dataclass
class OutcomeReward:
    """The ORM: the DPO implicit reward of a patch given the issue, with `adapter` (the
    model's ORM adapter name); without one, the zero-shot judge's logit of P(yes)."""

    model: Model
    adapter: str | None = None
    beta: float = 0.1

    @property
    def zero_shot(self) -> bool:
        return self.adapter is None

    def messages(self, issue: str) -> list[Message]:
        return [{"role": "system", "content": ORM_SYSTEM},
                {"role": "user", "content": ORM_PROMPT.format(issue=_issue(issue))}]

    def score(self, issue: str, diff: str) -> float:
        if self.zero_shot:
            judge = [{"role": "system", "content": PRM_SYSTEM},
                     {"role": "user", "content": JUDGE_PROMPT.format(issue=_issue(issue), patch=_clip(diff))}]
            return logit(yes_probability(self.model, judge))
        prompt = self.messages(issue)
        policy = self.model.logprob(prompt, diff, adapter=self.adapter)
        reference = self.model.logprob(prompt, diff, adapter=None)
        return self.beta * (policy - reference)


def beats(a: float, b: float) -> float:
    """P(the patch scored `a` is better than the one scored `b`), Bradley-Terry on ORM scores."""
    return 1.0 / (1.0 + math.exp(b - a))
