"""A scripted model that solves the fixture repository's bug like a good model would."""

from __future__ import annotations

import json

PATCH_ANSWER = """<think>len - 1 is wrong; the mean divides by len.</think>
calc/stats.py
<<<<<<< SEARCH
    return sum(values) / (len(values) - 1)
=======
    return sum(values) / len(values)
>>>>>>> REPLACE
"""


REPRO_ANSWER = """```python
from calc.stats import mean

got = mean([2, 4])
print("mean([2, 4]) =", got)
print("VERDICT: RESOLVED" if got == 3 else "VERDICT: REPRODUCED")
```"""


def good_answers(messages) -> str:
    """Answers by what the last prompt asks, so re-asks and rounds work."""
    prompt = messages[-1]["content"]
    first = messages[1]["content"]
    if "Which files" in first and len(messages) == 2:
        return '<think>The issue names mean().</think>{"files": ["calc/stats.py"]}'
    if "Which classes and functions are suspicious" in first:
        return json.dumps({"locations": [{"file": "calc/stats.py", "function": "mean", "reason": "wrong divisor"}]})
    if "search tools" in first:
        if "## search_method" not in prompt and "final locations now" not in prompt:
            return json.dumps({"tool_calls": [{"tool": "search_method", "args": {"method_name": "mean"}}]})
        return json.dumps({"locations": [{"file": "calc/stats.py", "class": "", "function": "mean"}]})
    if "search/replace edits" in first:
        return PATCH_ANSWER
    if "reproduces this issue" in first:
        return REPRO_ANSWER
    raise AssertionError(f"unexpected prompt: {prompt[:200]}")
