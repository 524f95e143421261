"""PRM and ORM scores on a real GGUF with real LoRA adapters equal a direct computation.

The base is a tiny random Qwen2 converted to an f32 GGUF; the PRM and ORM
adapters are random PEFT LoRA adapters converted with `quantize lora`. The
direct computation runs the same prompts through transformers + PEFT in float32.
"""

from __future__ import annotations

import math
import os
import sys
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
pytest.importorskip("torch")
pytest.importorskip("peft")
pytest.importorskip("llama_cpp")

sys.path.insert(0, str(Path(__file__).parent))
from quantize_fixtures import build_lora, build_tiny  # noqa: E402

from swe_reasoner.agent.rewards import OutcomeReward, ProcessReward  # noqa: E402

ISSUE = "mean([2, 4]) gives 6."
OUTPUT = "- calc/stats.py: mean (wrong divisor)"
DIFF = "-    return s / (n - 1)\n+    return s / n\n"


@pytest.fixture(scope="module")
def tiny_rewards(tmp_path_factory):
    from swe_reasoner.quantize.convert import convert
    from swe_reasoner.quantize.lora import convert_lora

    root = tmp_path_factory.mktemp("rewards")
    base = build_tiny(root / "base", "qwen2")
    peft = {name: build_lora(base, root / f"{name}-peft", seed=seed) for name, seed in (("prm", 3), ("orm", 4))}
    gguf = convert(base, root / "base.gguf", "f32").path
    adapters = {name: str(convert_lora(peft[name], root / f"{name}.gguf", base, "f32").path) for name in peft}
    return base, peft, gguf, adapters


def hf_logprob(base: Path, adapter: Path | None, messages, continuation: str) -> float:
    """log P(continuation | chat prompt) by transformers (+ PEFT), tokenized as the runtime does:
    the rendered prompt with special tokens, then the continuation on its own."""
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(base))
    model = AutoModelForCausalLM.from_pretrained(str(base), dtype=torch.float32)
    if adapter is not None:
        model = PeftModel.from_pretrained(model, str(adapter))
    model.eval()
    prompt = tok.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    p_ids = tok.encode(prompt, add_special_tokens=False)
    c_ids = tok.encode(continuation, add_special_tokens=False)
    ids = torch.tensor([p_ids + c_ids])
    with torch.no_grad():
        logits = model(ids).logits[0].double()
    logp = torch.log_softmax(logits, dim=-1)
    return float(sum(logp[len(p_ids) - 1 + i, t] for i, t in enumerate(c_ids)))


def test_prm_and_orm_equal_a_direct_computation(tiny_rewards):
    from swe_reasoner.agent.llama import LlamaCppModel

    base, peft, gguf, adapters = tiny_rewards
    model = LlamaCppModel(gguf, n_ctx=512, adapters=adapters, think=False)
    try:
        prm = ProcessReward(model, "prm")
        got_prm = prm.score(ISSUE, "localize", OUTPUT)
        orm = OutcomeReward(model, "orm", beta=0.1)
        got_orm = orm.score(ISSUE, DIFF)
        zero_shot = ProcessReward(model).score(ISSUE, "localize", OUTPUT)  # the base model judging
    finally:
        model.close()

    msgs = prm.messages(ISSUE, "localize", OUTPUT)
    ly, ln = (hf_logprob(base, peft["prm"], msgs, reply) for reply in ("Yes", "No"))
    want_prm = 1 / (1 + math.exp(ln - ly))
    ly0, ln0 = (hf_logprob(base, None, msgs, reply) for reply in ("Yes", "No"))
    prompt = orm.messages(ISSUE)
    want_orm = 0.1 * (hf_logprob(base, peft["orm"], prompt, DIFF) - hf_logprob(base, None, prompt, DIFF))

    # llama.cpp keeps the KV cache in f16: measured 6e-5 off on P(yes), 4e-5 on the ORM's 0.68.
    assert got_prm == pytest.approx(want_prm, abs=5e-4)
    assert zero_shot == pytest.approx(1 / (1 + math.exp(ln0 - ly0)), abs=5e-4)
    assert abs(got_prm - zero_shot) > 1e-2  # the adapter is really applied (0.035 here)
    assert got_orm == pytest.approx(want_orm, rel=1e-3, abs=1e-4)
    assert abs(want_orm) > 0.1  # and the ORM's adapter moves the log-probability (0.68 here)
