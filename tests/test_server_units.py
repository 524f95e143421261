"""The server's pure parts: LSP conversions and the warm model's lifecycle."""

from __future__ import annotations

import threading

import pytest
from hypothesis import given
from hypothesis import strategies as st
from lsprotocol import types

import lsp_client
from conftest import BUG_ISSUE
from scripted import good_answers
from swe_reasoner.agent.config import Settings
from swe_reasoner.agent.model import ScriptedModel
from swe_reasoner.agent.progress import Event
from swe_reasoner.server import convert
from swe_reasoner.server.session import Busy, ModelHost, Solver

lines = st.lists(st.sampled_from(["a\n", "b\n", "def f():\n", "    return 1\n", "\n", "é\n", "x"]), max_size=12)


@given(lines, lines)
def test_text_edits_turn_old_into_new(a, b):
    old, new = "".join(a), "".join(b)
    edits = convert.text_edits(old, new)
    assert lsp_client.apply_text_edits(old, edits) == new
    ends = [(e.range.end.line, e.range.end.character) for e in edits]
    starts = [(e.range.start.line, e.range.start.character) for e in edits]
    assert all(end <= nxt for end, nxt in zip(ends, starts[1:]))  # in order, not overlapping


def test_positions_count_utf16_units():
    text = "a😀b\nc"
    starts = convert.line_starts(text)
    assert convert.position_at(text, starts, 2) == types.Position(0, 3)  # the emoji is two units
    assert convert.offset_at(text, starts, types.Position(0, 3)) == 2
    assert convert.offset_at(text, starts, types.Position(9, 0)) == len(text)
    assert convert.text_in_range(text, types.Range(types.Position(0, 1), types.Position(1, 1))) == "😀b\nc"


def test_issue_text_from_selection_or_issue_file():
    text = "# Bug\n\nmean is wrong\n"
    empty = types.Range(types.Position(0, 0), types.Position(0, 0))
    sel = types.Range(types.Position(2, 0), types.Position(2, 4))
    assert convert.issue_text(text, sel, "/r/code.py", "python") == "mean"
    assert convert.issue_text(text, empty, "/r/ISSUE.md", "markdown") == text.strip()
    assert convert.issue_text(text, empty, "/r/code.py", "python") == ""


def test_progress_report():
    message, percent = convert.progress_report(Event("localize", "", candidate=3, candidates=8, round=2, fraction=0.456))
    assert (message, percent) == ("Localizing · candidate 3/8 · round 2", 46)


def test_settings_from_the_editor():
    base = Settings(model="base.gguf")
    settings, problems = convert.settings_from({"budget": 4, "maxTokens": 512, "trace": False, "apiBase": None}, base)
    assert (settings.budget, settings.max_tokens, settings.model) == (4, 512, "base.gguf") and not problems
    settings, problems = convert.settings_from({"budget": "many", "colour": 1, "temperature": 1}, base)
    assert settings.temperature == 1.0 and settings.budget == 1
    assert any("sweReasoner.budget" in p for p in problems) and any("sweReasoner.colour" in p for p in problems)
    settings, problems = convert.settings_from({"budget": 0, "model": "other.gguf"}, base)
    assert settings == base and "budget must be at least 1" in problems[0]  # invalid together: ignored
    assert convert.settings_from([1], base)[0] == base
    settings, problems = convert.settings_from({"testEnv": "conda", "sandbox": "off"}, base)
    assert settings == base and "test_env must be one of host, build, auto" in problems[0]


class CountingLoader:
    def __init__(self):
        self.loaded, self.closed = [], []

    def __call__(self, settings):
        model = ScriptedModel(good_answers)
        model.close = lambda: self.closed.append(settings.model)
        self.loaded.append(settings.model)
        return model


def test_model_stays_warm_and_reloads_when_its_settings_change():
    loader = CountingLoader()
    host = ModelHost(loader)
    a = host.get(Settings(model="a.gguf"))
    assert host.get(Settings(model="a.gguf", budget=4, max_tokens=99)) is a  # solve settings: same model
    host.get(Settings(model="a.gguf", n_ctx=4096))  # a model setting: reload, the old one freed
    assert loader.loaded == ["a.gguf", "a.gguf"] and loader.closed == ["a.gguf"]
    host.close()
    assert loader.closed == ["a.gguf", "a.gguf"]


def test_solver_runs_one_solve_at_a_time(bug_repo):
    gate = threading.Event()

    def slow_loader(settings):
        gate.wait(10)
        return ScriptedModel(good_answers)

    solver = Solver(ModelHost(slow_loader))
    done = threading.Event()
    job = solver.start(bug_repo, BUG_ISSUE, Settings(), trace=False, on_event=lambda j, e: None,
                       on_done=lambda j: done.set())
    with pytest.raises(Busy, match="already running"):
        solver.start(bug_repo, BUG_ISSUE, Settings(), trace=False, on_event=print, on_done=print)
    gate.set()
    assert done.wait(30) and job.status == "patched" and solver.finished[job.id] is job
    assert job.result.patches[0].texts["calc/stats.py"][1].count("/ len(values)") == 1
