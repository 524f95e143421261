"""Stage 4a, Reproduce: the model writes a script that shows the issue on the original code.

The script follows docs/verify.md: its last `VERDICT:` line says REPRODUCED,
RESOLVED or OTHER. It runs in the sandbox on a scratch copy; it counts only
if it says REPRODUCED there. Otherwise its output goes back to the model, bounded.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from ..repo import Repo, Scratch
from ..sandbox import Sandbox
from ..verify import REPRO_PATH, REPRODUCED, interpreter, repro_verdict
from . import SYSTEM, Context

RETRIES = 2
OUTPUT_CHARS = 3000  # of a failed run's output, shown to the model

PROMPT = """{issue}

The relevant code:
{code}

Write a standalone Python script that reproduces this issue, run from the repository's root
(the repository is importable). It must end by printing exactly one verdict line:
VERDICT: REPRODUCED   when the issue's wrong behaviour happens,
VERDICT: RESOLVED     when the behaviour is correct (as it will be after a fix),
VERDICT: OTHER        when something else goes wrong.
Catch exceptions that show the issue and print REPRODUCED for them. Answer with the script only,
in one ```python block."""

_FENCE = re.compile(r"```(?:python|py)?\n(.*?)```", re.S)


@dataclass
class Reproduction:
    script: str | None  # None: no script reproduced the issue
    attempts: list[dict] = field(default_factory=list)  # {"verdict", "output"} per try

    def to_dict(self) -> dict:
        return {"script": self.script, "attempts": self.attempts}


def script_of(answer: str) -> str:
    blocks = _FENCE.findall(answer)
    return (max(blocks, key=len) if blocks else answer).strip() + "\n"


def reproduce(ctx: Context, repo: Repo, sandbox: Sandbox, code: str, timeout: float = 120.0,
              environment=None) -> Reproduction:
    """`environment`: an agent.environment.Environment whose Python runs the script; else the host's."""
    python, pythonpath = interpreter(sandbox, environment)
    convo = [{"role": "system", "content": SYSTEM},
             {"role": "user", "content": PROMPT.format(issue=ctx.issue_block(), code=code)}]
    found = Reproduction(None)
    with Scratch(repo) as scratch:
        for attempt in range(1, RETRIES + 2):
            ctx.report("verify", 0.95, "writing a reproduction test", round=attempt)
            completion = ctx.ask.complete(convo)[0]
            step = ctx.ask.record("reproduce", 1, attempt, convo, completion)
            script = script_of(completion.answer)
            scratch.reset()
            result = sandbox.run(scratch.root, [python, REPRO_PATH], timeout=timeout, files={REPRO_PATH: script},
                                 cancel=ctx.ask.cancel, env={"PYTHONPATH": pythonpath})
            if ctx.ask.cancel:
                ctx.ask.cancel.check()
            verdict = repro_verdict(result)
            found.attempts.append({"verdict": verdict, "output": result.output[-OUTPUT_CHARS:]})
            step.parsed = {"verdict": verdict}
            if verdict == REPRODUCED:
                found.script = script
                return found
            step.feedback = (f"On the original code your script said {verdict}, not REPRODUCED "
                             f"({result.describe()}). Its output:\n{result.output[-OUTPUT_CHARS:]}\n"
                             "Write the script again so that it shows the issue and prints VERDICT: REPRODUCED.")
            convo = convo + [{"role": "assistant", "content": completion.answer},
                             {"role": "user", "content": step.feedback}]
    return found
