"""Stage 2, Localize: rounds of search-tool calls until the model names precise locations.

Each round the model either calls search tools (their results come back in
the next prompt) or names the final locations, which must exist. Rounds are
bounded; when they run out, Understand's locations stand.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..errors import FormatError
from ..tools import SearchTools
from ..trajectory import ToolCall
from . import LOCATION_SCHEMA, SYSTEM, Context, Location, check_locations
from .understand import Understanding

MAX_ROUNDS = 4
MAX_CALLS_PER_ROUND = 5
RESULT_CHARS = 4000  # per tool result

SCHEMA = {
    "type": "object",
    "properties": {
        "tool_calls": {
            "type": "array",
            "maxItems": MAX_CALLS_PER_ROUND,
            "items": {
                "type": "object",
                "properties": {"tool": {"enum": list(SearchTools.NAMES)}, "args": {"type": "object"}},
                "required": ["tool", "args"],
            },
        },
        "locations": {"type": "array", "items": LOCATION_SCHEMA, "maxItems": 8},
    },
}

PROMPT = """{issue}

Suspicious locations found so far:
{suspects}

Find the precise code to change. You can call these search tools:
{tools}

Answer with JSON only, either tool calls to see more code:
{{"tool_calls": [{{"tool": "search_method_in_class", "args": {{"method_name": "parse", "class_name": "Parser"}}}}]}}
or, when you know where the fix goes, the final locations (file, class, function), most likely first:
{{"locations": [{{"file": "path.py", "class": "ClassName or empty", "function": "function name", "reason": "why"}}]}}"""


@dataclass
class Localization:
    locations: list[Location]
    rounds: int
    calls: list[ToolCall] = field(default_factory=list)


def localize(ctx: Context, found: Understanding, candidate: int = 1, candidates: int = 1,
             temperature: float = 0.0) -> Localization:
    suspects = "\n".join(f"- {loc.describe()}" + (f" ({loc.reason})" if loc.reason else "")
                         for loc in found.locations) or "(none yet; files read: " + ", ".join(found.files) + ")"
    convo = [{"role": "system", "content": SYSTEM},
             {"role": "user", "content": PROMPT.format(issue=ctx.issue_block(), suspects=suspects,
                                                      tools=SearchTools.describe())}]
    calls: list[ToolCall] = []
    for round_ in range(1, MAX_ROUNDS + 1):
        ctx.report("localize", 0.2 + 0.3 * (round_ - 1) / MAX_ROUNDS, "", candidate, candidates, round_)
        last = round_ == MAX_ROUNDS
        if last:
            convo = convo + [{"role": "user", "content": "No more tool calls: name the final locations now."}]

        def check(value: dict) -> tuple[str, list]:
            if value.get("tool_calls") and not last:
                return "calls", value["tool_calls"]
            if value.get("locations"):
                return "done", check_locations(ctx.index, value)
            raise FormatError("Name the final locations now." if last else 'Give either "tool_calls" or "locations".')

        answer, convo = ctx.ask.json("localize", candidate, convo, SCHEMA, check, temperature)
        if answer is None:
            break
        kind, items = answer
        if kind == "done":
            return Localization(items, round_, calls)
        results = []
        for call in items[:MAX_CALLS_PER_ROUND]:
            result = ctx.tools.call(call["tool"], call["args"])
            calls.append(ToolCall(call["tool"], call["args"], result.text))
            ctx.ask.trajectory.steps[-1].tool_calls.append(calls[-1])
            text = result.text if len(result.text) <= RESULT_CHARS else result.text[:RESULT_CHARS] + "\n... (cut)"
            results.append(f"## {call['tool']}({', '.join(f'{k}={v!r}' for k, v in call['args'].items())})\n{text}")
        convo = convo + [{"role": "user", "content": "\n\n".join(results)}]
    return Localization(found.locations, MAX_ROUNDS, calls)
