import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from swe_reasoner.agent.answers import Ask, extract_json
from swe_reasoner.agent.errors import FormatError
from swe_reasoner.agent.model import ScriptedModel, split_think
from swe_reasoner.agent.trajectory import Trajectory

SCHEMA = {"type": "object", "properties": {"files": {"type": "array", "items": {"type": "string"}}}, "required": ["files"]}

json_values = st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=10),
                           lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=5), c, max_size=3), max_leaves=10)


@given(st.dictionaries(st.text(max_size=8), json_values, max_size=4), st.text(alphabet="abc .:\n", max_size=30))
def test_json_is_found_in_prose_and_fences(value, prose):
    dumped = json.dumps(value)
    assert extract_json(dumped) == value
    assert extract_json(f"{prose}\n```json\n{dumped}\n```\n") == value
    assert extract_json(f"{prose} {dumped} {prose}") == value


@given(st.text(alphabet="abc xyz.,:\n", max_size=100))
def test_no_json_is_a_format_error(text):
    with pytest.raises(FormatError):
        extract_json(text)


def test_split_think():
    assert split_think("<think>hmm</think> {\"a\": 1}") == ("hmm", '{"a": 1}')
    assert split_think("just an answer") == ("", "just an answer")
    assert split_think("<think>never closed") == ("never closed", "")


def ask(answers):
    traj = Trajectory("issue", "/r", "", "scripted", {})
    return Ask(ScriptedModel(answers), traj, retries=2), traj


def test_malformed_answers_are_re_asked_with_feedback():
    a, traj = ask(["no json here", '{"files": 3}', '<think>ok</think>{"files": ["a.py"]}'])
    value, convo = a.json("understand.files", 1, [{"role": "user", "content": "q"}], SCHEMA)
    assert value == {"files": ["a.py"]}
    assert [s.feedback != "" for s in traj.steps] == [True, True, False]
    assert "Invalid JSON at files" in traj.steps[1].feedback
    # only answers (no think) go back into the conversation
    assert convo[-1] == {"role": "assistant", "content": '{"files": ["a.py"]}'}
    assert all("<think>" not in m["content"] for m in a.model.calls[-1])


def test_retries_are_bounded():
    a, traj = ask(["x"] * 10)
    value, _ = a.json("s", 1, [{"role": "user", "content": "q"}], SCHEMA)
    assert value is None and len(traj.steps) == 3


def test_check_can_reject_and_clean():
    def check(v):
        if "bad.py" in v["files"]:
            raise FormatError("bad.py does not exist")
        return [f.upper() for f in v["files"]]

    a, traj = ask(['{"files": ["bad.py"]}', '{"files": ["good.py"]}'])
    value, _ = a.json("s", 1, [{"role": "user", "content": "q"}], SCHEMA, check)
    assert value == ["GOOD.PY"] and traj.steps[0].feedback == "bad.py does not exist"
