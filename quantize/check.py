"""Does a GGUF model compute what its HF source computes? Logits and tokenization.

Both models get the same token ids (the HF tokenizer's), so logit differences
are the weights' and kernels' alone; tokenization is compared separately, on
sample prompts and on a code corpus (a few files of the Python stdlib).
"""

from __future__ import annotations

import os
import sysconfig
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from swe_reasoner.agent.errors import ModelError
from swe_reasoner.agent.llama import load_lora_adapter, set_lora_adapters

from .errors import QuantizeError

SAMPLE_PROMPTS = (
    "def fibonacci(n):\n    if n < 2:\n        return n\n",
    "The bug is in the parser: when the input is empty,",
    "import os\nimport sys\n\nclass Config:\n    def __init__(self, path):",
    "Fix: `assert x == 1` fails for x = 1.0 because",
)
CORPUS_FILES = ("textwrap.py", "json/decoder.py", "shlex.py", "fnmatch.py", "colorsys.py", "glob.py", "bisect.py")


@dataclass
class CheckReport:
    gguf: str
    n_prompts: int
    n_positions: int
    max_abs_err: float  # max |hf - gguf| over all logits
    max_rel_err: float  # max over positions of max|hf - gguf| / max|hf|
    top1_agreement: float  # fraction of positions whose argmax agrees
    kl_mean: float  # mean KL(p_hf || p_gguf) per position, nats
    kl_max: float
    tokenization_identical: bool
    n_tokenized_texts: int
    n_tokens_compared: int
    add_bos: bool
    mismatches: list[str] = field(default_factory=list)

    def ok(self, max_rel_err: float = 1e-2, min_top1: float = 0.9) -> bool:
        return self.tokenization_identical and self.max_rel_err <= max_rel_err and self.top1_agreement >= min_top1

    def format(self) -> str:
        lines = [
            f"model: {self.gguf}",
            f"logits on {self.n_prompts} prompts, {self.n_positions} positions:",
            f"  max relative error  {self.max_rel_err:.3e}  (max abs {self.max_abs_err:.3e})",
            f"  top-1 agreement     {self.top1_agreement * 100:.1f}%",
            f"  KL(hf || gguf)      mean {self.kl_mean:.3e}  max {self.kl_max:.3e} nats",
            f"tokenization: {'identical' if self.tokenization_identical else 'DIFFERENT'} on "
            f"{self.n_tokenized_texts} texts, {self.n_tokens_compared} tokens (add_bos={self.add_bos})",
        ]
        lines += [f"  {m}" for m in self.mismatches[:10]]
        return "\n".join(lines)


def corpus_texts(files: Sequence[str] = CORPUS_FILES) -> list[str]:
    root = Path(sysconfig.get_paths()["stdlib"])
    return [(root / f).read_text(encoding="utf-8") for f in files if (root / f).exists()]


def _log_softmax(x: np.ndarray) -> np.ndarray:
    x = x.astype(np.float64)
    m = x.max(axis=-1, keepdims=True)
    return x - m - np.log(np.exp(x - m).sum(axis=-1, keepdims=True))


def compare_logits(ref: np.ndarray, got: np.ndarray) -> dict:
    """Metrics of got vs ref, both (positions, vocab)."""
    diff = np.abs(ref.astype(np.float64) - got.astype(np.float64))
    scale = np.maximum(np.abs(ref).max(axis=-1), 1e-12)
    lp, lq = _log_softmax(ref), _log_softmax(got)
    kl = (np.exp(lp) * (lp - lq)).sum(axis=-1)
    return {"max_abs": float(diff.max()), "rel": diff.max(axis=-1) / scale,
            "top1": ref.argmax(-1) == got.argmax(-1), "kl": kl}


def load_gguf(path: str | os.PathLike, n_ctx: int = 512, *, kv_f32: bool = True, **kw):
    """llama.cpp model for scoring; an f32 KV cache (the default f16 one adds ~1e-3 relative error)."""
    try:
        from llama_cpp import Llama
    except ImportError as e:  # pragma: no cover
        raise QuantizeError("llama-cpp-python is not installed: pip install 'swe-reasoner[llama]'") from e
    if not Path(path).exists():
        raise QuantizeError(f"{path} does not exist")
    if kv_f32:
        kw.setdefault("type_k", 0)  # GGML_TYPE_F32
        kw.setdefault("type_v", 0)
    kw.setdefault("n_threads", min(8, os.cpu_count() or 1))
    try:
        return Llama(model_path=str(path), n_ctx=n_ctx, logits_all=True, verbose=False, **kw)
    except (ValueError, RuntimeError) as e:
        raise QuantizeError(f"llama.cpp could not load {path}: {e}") from e


def gguf_logits(llm, ids: Sequence[int]) -> np.ndarray:
    llm.reset()
    llm.eval(list(ids))
    return np.array(llm.scores[: len(ids)], dtype=np.float32)


def hf_logits(model, ids: Sequence[int]) -> np.ndarray:
    import torch

    with torch.no_grad():
        out = model(torch.tensor([list(ids)], dtype=torch.long))
    return out.logits[0].float().numpy()


def compare_tokenization(tok, llm, texts: Sequence[str]) -> tuple[bool, int, bool, list[str]]:
    """HF ids vs llama.cpp ids, without and with the model's BOS handling."""
    mismatches: list[str] = []
    n = 0
    add_bos = bool(llm._model.add_bos_token()) if hasattr(llm, "_model") else False
    for i, text in enumerate(texts):
        hf = tok.encode(text, add_special_tokens=False)
        ll = llm.tokenize(text.encode("utf-8"), add_bos=False, special=False)
        n += len(hf)
        if hf != ll:
            k = next((j for j, (a, b) in enumerate(zip(hf, ll)) if a != b), min(len(hf), len(ll)))
            mismatches.append(f"text {i}: first difference at token {k}: hf {hf[k:k + 5]} vs llama.cpp {ll[k:k + 5]}")
        # with special tokens: HF's post-processor vs llama.cpp's add_bos flag
        hf_s = tok.encode(text[:200], add_special_tokens=True)
        ll_s = llm.tokenize(text[:200].encode("utf-8"), add_bos=add_bos, special=False)
        if hf_s != ll_s:
            mismatches.append(f"text {i} with special tokens: hf starts {hf_s[:3]}, llama.cpp {ll_s[:3]} "
                              f"(GGUF add_bos={add_bos})")
    return not mismatches, n, add_bos, mismatches


def check(hf_dir: str | os.PathLike, gguf_path: str | os.PathLike, *, prompts: Sequence[str] = SAMPLE_PROMPTS,
          texts: Sequence[str] | None = None, hf_model=None, tokenizer=None, llm=None,
          progress: Callable[[int, int, str], None] | None = None) -> CheckReport:
    """Compare the HF checkpoint in hf_dir with the GGUF model at gguf_path."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    try:
        import torch  # noqa: F401
        from transformers import AutoModelForCausalLM, AutoTokenizer
    except ImportError as e:  # pragma: no cover
        raise QuantizeError("check needs torch and transformers: pip install 'swe-reasoner[quantize]'") from e
    if tokenizer is None:
        tokenizer = AutoTokenizer.from_pretrained(str(hf_dir))
    if hf_model is None:
        hf_model = AutoModelForCausalLM.from_pretrained(str(hf_dir), dtype=torch.float32)
        hf_model.eval()
    if llm is None:
        llm = load_gguf(gguf_path)
    texts = corpus_texts() if texts is None else list(texts)
    steps = len(prompts) + 1
    rel, top1, kl, max_abs, n_pos = [], [], [], 0.0, 0
    for i, prompt in enumerate(prompts):
        ids = tokenizer.encode(prompt, add_special_tokens=True)[: llm.n_ctx()]
        m = compare_logits(hf_logits(hf_model, ids), gguf_logits(llm, ids))
        rel.append(m["rel"]), top1.append(m["top1"]), kl.append(m["kl"])
        max_abs = max(max_abs, m["max_abs"])
        n_pos += len(ids)
        if progress:
            progress(i + 1, steps, "logits")
    same, n_tok, add_bos, mism = compare_tokenization(tokenizer, llm, list(prompts) + texts)
    if progress:
        progress(steps, steps, "tokenization")
    rel_a, top1_a, kl_a = np.concatenate(rel), np.concatenate(top1), np.concatenate(kl)
    return CheckReport(gguf=str(gguf_path), n_prompts=len(prompts), n_positions=n_pos, max_abs_err=max_abs,
                       max_rel_err=float(rel_a.max()), top1_agreement=float(top1_a.mean()),
                       kl_mean=float(kl_a.mean()), kl_max=float(kl_a.max()), tokenization_identical=same,
                       n_tokenized_texts=len(prompts) + len(texts), n_tokens_compared=n_tok, add_bos=add_bos,
                       mismatches=mism)


# ------------------------------------------------------------------ LoRA adapters


@dataclass
class LoraCheckReport:
    gguf: str
    adapter: str
    n_prompts: int
    n_positions: int
    max_abs_err: float  # HF merged vs GGUF + adapter
    max_rel_err: float
    top1_agreement: float
    kl_mean: float
    kl_max: float
    shift_rel: float  # max relative difference, GGUF base alone vs GGUF + adapter
    shift_top1_changed: float  # fraction of positions whose argmax the adapter changes
    hf_shift_rel: float  # the same shift on the HF side (base vs merged)
    off_max_abs: float  # max |logit| difference, adapter switched off again vs the base alone (0: exact)

    @property
    def shift_ratio(self) -> float:
        return self.shift_rel / max(self.max_rel_err, 1e-30)

    def ok(self, max_rel_err: float = 1e-2, min_top1: float = 0.9, min_shift_ratio: float = 10.0) -> bool:
        return (self.max_rel_err <= max_rel_err and self.top1_agreement >= min_top1
                and self.shift_ratio >= min_shift_ratio and self.off_max_abs == 0.0)

    def format(self) -> str:
        return "\n".join([
            f"model: {self.gguf} + adapter {self.adapter}",
            f"logits on {self.n_prompts} prompts, {self.n_positions} positions, HF merged vs GGUF + adapter:",
            f"  max relative error  {self.max_rel_err:.3e}  (max abs {self.max_abs_err:.3e})",
            f"  top-1 agreement     {self.top1_agreement * 100:.1f}%",
            f"  KL(hf || gguf)      mean {self.kl_mean:.3e}  max {self.kl_max:.3e} nats",
            f"adapter shift (GGUF base vs GGUF + adapter): max relative {self.shift_rel:.3e} "
            f"({self.shift_ratio:.1e}x the error; HF base vs merged {self.hf_shift_rel:.3e}), "
            f"top-1 changed at {self.shift_top1_changed * 100:.1f}% of positions",
            f"adapter off again vs base: max abs difference {self.off_max_abs:.3e}",
        ])


def check_lora(hf_dir: str | os.PathLike, gguf_path: str | os.PathLike, peft_dir: str | os.PathLike,
               adapter_path: str | os.PathLike, *, prompts: Sequence[str] = SAMPLE_PROMPTS, scale: float = 1.0,
               tokenizer=None, llm=None, progress: Callable[[int, int, str], None] | None = None) -> LoraCheckReport:
    """HF base + PEFT adapter (merged) vs llama.cpp base GGUF + GGUF adapter, and the adapter's shift."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    try:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer
    except ImportError as e:  # pragma: no cover
        raise QuantizeError("check needs torch and transformers: pip install 'swe-reasoner[quantize]'") from e
    try:
        from peft import PeftModel
    except ImportError as e:  # pragma: no cover
        raise QuantizeError("check --lora needs peft: pip install peft") from e
    from .lora import load_adapter_config

    load_adapter_config(peft_dir)
    if tokenizer is None:
        tokenizer = AutoTokenizer.from_pretrained(str(hf_dir))
    base = AutoModelForCausalLM.from_pretrained(str(hf_dir), dtype=torch.float32).eval()
    if llm is None:
        llm = load_gguf(gguf_path)
    try:
        adapter = load_lora_adapter(llm, adapter_path)
    except ModelError as e:  # the agent's loader: the same message, this package's error
        raise QuantizeError(str(e)) from e
    ids_list = [tokenizer.encode(p, add_special_tokens=True)[: llm.n_ctx()] for p in prompts]
    steps = 3 * len(prompts) + 1
    step = 0

    def tick(what: str) -> None:
        nonlocal step
        step += 1
        if progress:
            progress(step, steps, what)

    hf_base, gg_base, gg_off = [], [], []
    for ids in ids_list:
        hf_base.append(hf_logits(base, ids))
        gg_base.append(gguf_logits(llm, ids))
        tick("base")
    try:
        merged = PeftModel.from_pretrained(base, str(peft_dir)).merge_and_unload().eval()
    except Exception as e:  # peft raises many kinds: all mean the same here
        raise QuantizeError(f"peft could not apply the adapter {peft_dir} to {hf_dir}: {e}") from e
    set_lora_adapters(llm, [(adapter, scale)])
    rel, top1, kl, shift, hf_shift, changed, max_abs, n_pos = [], [], [], [], [], [], 0.0, 0
    for i, ids in enumerate(ids_list):
        ref = hf_logits(merged, ids)
        got = gguf_logits(llm, ids)
        m = compare_logits(ref, got)
        rel.append(m["rel"]), top1.append(m["top1"]), kl.append(m["kl"])
        max_abs = max(max_abs, m["max_abs"])
        s = compare_logits(gg_base[i], got)
        shift.append(s["rel"]), changed.append(~s["top1"])
        hf_shift.append(compare_logits(hf_base[i], ref)["rel"])
        n_pos += len(ids)
        tick("adapter")
    set_lora_adapters(llm, [])
    for i, ids in enumerate(ids_list):
        gg_off.append(compare_logits(gg_base[i], gguf_logits(llm, ids))["max_abs"])
        tick("adapter off")
    cat = np.concatenate
    return LoraCheckReport(
        gguf=str(gguf_path), adapter=str(adapter_path), n_prompts=len(prompts), n_positions=n_pos,
        max_abs_err=max_abs, max_rel_err=float(cat(rel).max()), top1_agreement=float(cat(top1).mean()),
        kl_mean=float(cat(kl).mean()), kl_max=float(cat(kl).max()), shift_rel=float(cat(shift).max()),
        shift_top1_changed=float(cat(changed).mean()), hf_shift_rel=float(cat(hf_shift).max()),
        off_max_abs=float(max(gg_off)))
