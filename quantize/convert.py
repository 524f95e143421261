"""Hugging Face checkpoint (Llama, Qwen2) -> GGUF, streaming one tensor at a time.

Written on the `gguf` package: GGUFWriter for the file, its TensorNameMap for
HF -> GGUF tensor names. The writer is given every tensor's info first
(shape, type, size: known from the safetensors headers alone), then the header,
the metadata and the tensor table are written, then tensor data one tensor at
a time, each converted in row chunks. Peak memory is about the largest output
tensor (the embedding) plus one chunk, whatever the model size.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from .errors import DiskSpaceError, MissingTokenizerError, QuantizeError, UnsupportedArchitectureError
from .safetensors_io import TensorRef, open_checkpoint

OUTTYPES = ("f32", "f16", "bf16")

# HF `architectures[0]` -> (gguf arch, permute q/k for llama.cpp's rope layout).
# llama.cpp runs LLAMA with "normal" rope (rotates adjacent pairs) while HF
# Llama rotates the two halves of each head (rotate_half), so q/k rows are
# reordered; Qwen2 runs with NEOX rope (halves), the HF layout, unchanged.
SUPPORTED = {
    "LlamaForCausalLM": ("llama", True),
    "MistralForCausalLM": ("llama", True),
    "Qwen2ForCausalLM": ("qwen2", False),
}

# Pre-tokenizer regexes of known tokenizers -> the name llama.cpp's vocab
# loader knows (tokenizer.ggml.pre).
_QWEN2_RE = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*"
             r"|\s*[\r\n]+|\s+(?!\S)|\s+")
_LLAMA3_RE = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*"
              r"|\s*[\r\n]+|\s+(?!\S)|\s+")
KNOWN_PRE = ("qwen2", "llama-bpe", "smollm", "gpt-2")

CHUNK_BYTES = 64 * 1024 * 1024

Progress = Callable[[int, int, str], None]  # (bytes done, bytes total, tensor name)


@dataclass
class ConvertResult:
    path: Path
    arch: str
    outtype: str
    n_tensors: int
    n_params: int
    nbytes: int
    pre: str


# ---------------------------------------------------------------- config


def _load_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise QuantizeError(f"{path} is not valid JSON: {e}") from e


def load_config(model_dir: Path) -> tuple[dict, str, bool]:
    cfg_path = model_dir / "config.json"
    if not cfg_path.exists():
        raise QuantizeError(f"{model_dir} has no config.json: not a Hugging Face checkpoint directory")
    cfg = _load_json(cfg_path)
    archs = cfg.get("architectures") or [cfg.get("model_type", "?")]
    arch_name = archs[0]
    if arch_name not in SUPPORTED:
        raise UnsupportedArchitectureError(
            f"architecture {arch_name!r} is not supported; supported: {', '.join(sorted(SUPPORTED))}")
    arch, permute = SUPPORTED[arch_name]
    return cfg, arch, permute


def _rope_theta(cfg: dict) -> float:
    if "rope_theta" in cfg:
        return float(cfg["rope_theta"])
    rp = cfg.get("rope_parameters") or {}
    return float(rp.get("rope_theta", 10000.0))


def _rope_scaling(cfg: dict) -> dict | None:
    rs = cfg.get("rope_scaling")
    if rs is None:
        rp = cfg.get("rope_parameters") or {}
        if rp.get("rope_type", "default") != "default":
            rs = rp
    if not rs:
        return None
    kind = rs.get("rope_type") or rs.get("type")
    if kind in (None, "default"):
        return None
    if kind not in ("linear", "yarn"):
        raise QuantizeError(f"rope scaling {kind!r} is not supported yet (supported: none, linear, yarn)")
    return rs


# ---------------------------------------------------------------- tokenizer


@dataclass
class Vocab:
    tokens: list[str]
    types: list[int]
    merges: list[str]
    pre: str
    bos_id: int | None
    eos_id: int | None
    pad_id: int | None
    unk_id: int | None
    add_bos: bool
    add_eos: bool
    chat_template: str | None


def _token_content(tok) -> str | None:
    if tok is None:
        return None
    if isinstance(tok, dict):
        return tok.get("content")
    return str(tok)


def detect_pre(tokenizer_json: dict) -> str:
    """The llama.cpp pre-tokenizer name matching this tokenizer.json."""
    pre = tokenizer_json.get("pre_tokenizer") or {}
    items = pre.get("pretokenizers", [pre]) if pre.get("type") == "Sequence" else [pre]
    regexes, digits, bytelevel_regex = [], False, False
    for it in items:
        t = it.get("type")
        if t == "Split":
            pat = it.get("pattern", {})
            regexes.append(pat.get("Regex") or pat.get("String"))
        elif t == "Digits":
            digits = bool(it.get("individual_digits"))
        elif t == "ByteLevel":
            bytelevel_regex = bool(it.get("use_regex", True))
    if regexes == [_QWEN2_RE] and not bytelevel_regex:
        return "qwen2"
    if regexes == [_LLAMA3_RE] and not bytelevel_regex:
        return "llama-bpe"
    if not regexes and bytelevel_regex:
        return "smollm" if digits else "gpt-2"
    raise QuantizeError(
        "the tokenizer's pre-tokenizer is not one llama.cpp knows by name "
        f"(found regexes={regexes}, digits={digits}, byte-level regex={bytelevel_regex}); "
        f"pass pre=NAME (one of {', '.join(KNOWN_PRE)}) if you know which it matches")


def load_vocab(model_dir: Path, cfg: dict, n_vocab: int, pre: str | None = None) -> Vocab:
    tj_path = model_dir / "tokenizer.json"
    if not tj_path.exists():
        raise MissingTokenizerError(
            f"{model_dir} has no tokenizer.json; save the tokenizer next to the weights "
            "(tokenizer.save_pretrained(dir)) and convert again")
    tj = _load_json(tj_path)
    tc_path = model_dir / "tokenizer_config.json"
    tc = _load_json(tc_path) if tc_path.exists() else {}
    model = tj.get("model") or {}
    if model.get("type") != "BPE":
        raise QuantizeError(f"tokenizer model {model.get('type')!r} is not supported (only byte-level BPE)")
    vocab: dict[str, int] = dict(model["vocab"])
    special: set[int] = set()
    user: set[int] = set()
    for at in tj.get("added_tokens", []):
        vocab[at["content"]] = at["id"]
        (special if at.get("special") else user).add(at["id"])
    by_id: dict[int, str] = {i: t for t, i in vocab.items()}
    max_id = max(by_id) if by_id else -1
    if max_id >= n_vocab:
        raise QuantizeError(f"the tokenizer has token id {max_id} but the model's vocabulary is {n_vocab}")
    tokens, types = [], []
    for i in range(n_vocab):
        if i not in by_id:
            tokens.append(f"[PAD{i}]")
            types.append(5)  # UNUSED
        else:
            tokens.append(by_id[i])
            types.append(3 if i in special else 4 if i in user else 1)  # CONTROL / USER_DEFINED / NORMAL
    merges = [m if isinstance(m, str) else " ".join(m) for m in model.get("merges", [])]

    def tid(name: str) -> int | None:
        c = _token_content(tc.get(name))
        if c is not None and c in vocab:
            return vocab[c]
        v = cfg.get(name + "_id")
        if isinstance(v, list):
            v = v[0] if v else None
        return v

    # add_bos: tokenizer_config's flag, else the post-processor's template
    add_bos = tc.get("add_bos_token")
    add_eos = tc.get("add_eos_token")
    post = tj.get("post_processor") or {}
    posts = post.get("processors", [post]) if post.get("type") == "Sequence" else [post]
    for p in posts:
        if p.get("type") == "TemplateProcessing":
            single = p.get("single", [])
            if add_bos is None:
                add_bos = bool(single) and "SpecialToken" in single[0]
            if add_eos is None:
                add_eos = bool(single) and "SpecialToken" in single[-1]
    template = tc.get("chat_template")
    jinja = model_dir / "chat_template.jinja"
    if template is None and jinja.exists():
        template = jinja.read_text(encoding="utf-8")
    if isinstance(template, list):
        named = {t["name"]: t["template"] for t in template}
        template = named.get("default") or next(iter(named.values()))
    return Vocab(tokens=tokens, types=types, merges=merges, pre=pre or detect_pre(tj),
                 bos_id=tid("bos_token"), eos_id=tid("eos_token"), pad_id=tid("pad_token"),
                 unk_id=tid("unk_token"), add_bos=bool(add_bos), add_eos=bool(add_eos),
                 chat_template=template)


# ---------------------------------------------------------------- tensors


def rope_row_order(n_rows: int, n_head: int) -> np.ndarray:
    """Row order turning HF's half-split rope layout into llama.cpp's pairwise one.

    Within each head of `d` rows, HF keeps the first halves of the rotated
    pairs in rows 0..d/2-1 and the second halves in d/2..d-1; llama.cpp wants
    pair j in rows 2j, 2j+1. New row 2j takes old row j, new row 2j+1 takes
    old row j + d/2.
    """
    d = n_rows // n_head
    half = d // 2
    within = np.empty(d, dtype=np.int64)
    within[0::2] = np.arange(half)
    within[1::2] = np.arange(half) + half
    return (np.arange(n_head)[:, None] * d + within[None, :]).reshape(-1)


@dataclass
class _Plan:
    gguf_name: str
    ref: TensorRef
    out_type: str  # "f32" | "f16" | "bf16"
    n_head_permute: int  # 0: no permutation

    @property
    def out_nbytes(self) -> int:
        return self.ref.numel * (4 if self.out_type == "f32" else 2)


def _plan_tensors(refs: dict[str, TensorRef], arch: str, permute: bool, cfg: dict, outtype: str) -> list[_Plan]:
    import gguf

    gguf_arch = {"llama": gguf.MODEL_ARCH.LLAMA, "qwen2": gguf.MODEL_ARCH.QWEN2}[arch]
    n_layer = cfg["num_hidden_layers"]
    tmap = gguf.get_tensor_name_map(gguf_arch, n_layer)
    allowed = {gguf.TENSOR_NAMES[t] for t in gguf.MODEL_TENSORS[gguf_arch]}
    n_head = cfg["num_attention_heads"]
    n_kv = cfg.get("num_key_value_heads") or n_head
    plans = []
    for name in sorted(refs, key=_natural_key):
        if name.endswith("rotary_emb.inv_freq"):
            continue
        new = tmap.get_name(name, try_suffixes=(".weight", ".bias"))
        if new is None:
            raise QuantizeError(f"tensor {name!r} has no GGUF name for {arch}: is the checkpoint a plain {arch} model?")
        base = new.rsplit(".", 1)[0]
        if not any(base == a.format(bid=i) for a in allowed for i in ([0] if "{bid}" not in a else range(n_layer))):
            raise QuantizeError(f"tensor {name!r} ({new}) is not part of llama.cpp's {arch} model")
        ref = refs[name]
        nperm = 0
        if permute and name.endswith("q_proj.weight"):
            nperm = n_head
        elif permute and name.endswith("k_proj.weight"):
            nperm = n_kv
        out = outtype if (len(ref.shape) >= 2 and outtype != "f32") else "f32"
        plans.append(_Plan(new, ref, out, nperm))
    names = [p.gguf_name for p in plans]
    if "token_embd.weight" not in names:
        raise QuantizeError("the checkpoint has no token embedding (model.embed_tokens.weight)")
    return plans


def _natural_key(s: str):
    import re
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", s)]


def _convert_rows(plan: _Plan, r0: int, r1: int) -> np.ndarray:
    ref = plan.ref
    if plan.out_type == "bf16" and ref.dtype == "BF16" and not plan.n_head_permute:
        return ref.read_raw_bf16_rows(r0, r1)
    x = ref.read_rows(r0, r1)
    if plan.n_head_permute:
        d = ref.rows // plan.n_head_permute
        order = rope_row_order(r1 - r0, (r1 - r0) // d)
        x = x[order]
    if plan.out_type == "f32":
        return np.ascontiguousarray(x, dtype=np.float32)
    if plan.out_type == "f16":
        return x.astype(np.float16)
    # f32 -> bf16, round to nearest even
    bits = np.ascontiguousarray(x, dtype=np.float32).view(np.uint32)
    rounded = (bits + (np.uint32(0x7FFF) + ((bits >> 16) & 1))) >> 16
    nan = np.isnan(x)
    if nan.any():
        rounded = np.where(nan, (bits >> 16) | 0x40, rounded)
    return rounded.astype(np.uint16)


def _write_tensor(writer, plan: _Plan, progress: Callable[[int], None]) -> None:
    ref = plan.ref
    rows = ref.rows
    out_dtype = {"f32": np.float32, "f16": np.float16, "bf16": np.uint16}[plan.out_type]
    out = np.empty(ref.shape, dtype=out_dtype)
    row_bytes = max(1, ref.row_elems * 4)
    step = max(1, CHUNK_BYTES // row_bytes)
    if plan.n_head_permute:
        d = rows // plan.n_head_permute
        step = max(d, step // d * d)
    for r0 in range(0, rows, step):
        r1 = min(rows, r0 + step)
        out[r0:r1] = _convert_rows(plan, r0, r1)
        progress((r1 - r0) * ref.row_elems * out.itemsize)
    writer.write_tensor_data(out)


# ---------------------------------------------------------------- main


def estimate_output_bytes(plans: list[_Plan], vocab: Vocab) -> int:
    tensors = sum(p.out_nbytes + 32 + len(p.gguf_name) + 64 for p in plans)
    meta = sum(len(t.encode()) + 12 for t in vocab.tokens) + sum(len(m.encode()) + 8 for m in vocab.merges)
    meta += len(vocab.chat_template or "") + 64 * 1024
    return tensors + meta


def free_bytes(path: Path) -> int:
    return shutil.disk_usage(path).free


def convert(model_dir: str | os.PathLike, out_path: str | os.PathLike, outtype: str = "f16",
            *, pre: str | None = None, progress: Progress | None = None) -> ConvertResult:
    """Convert an HF Llama/Qwen2 checkpoint dir to a GGUF file.

    Raises QuantizeError (or a subclass) with an actionable message.
    """
    import gguf

    model_dir = Path(model_dir)
    out_path = Path(out_path)
    if outtype not in OUTTYPES:
        raise QuantizeError(f"--outtype {outtype!r}: choose one of {', '.join(OUTTYPES)}")
    if not model_dir.is_dir():
        raise QuantizeError(f"{model_dir} is not a directory")
    cfg, arch, permute = load_config(model_dir)
    refs = open_checkpoint(model_dir)
    plans = _plan_tensors(refs, arch, permute, cfg, outtype)
    n_vocab = next(p.ref.shape[0] for p in plans if p.gguf_name == "token_embd.weight")
    vocab = load_vocab(model_dir, cfg, n_vocab, pre)

    out_dir = out_path.parent if str(out_path.parent) else Path(".")
    out_dir.mkdir(parents=True, exist_ok=True)
    need = estimate_output_bytes(plans, vocab)
    free = free_bytes(out_dir)
    if free < need:
        raise DiskSpaceError(
            f"not enough disk space in {out_dir}: the output needs about {need / 2**20:.1f} MiB "
            f"and {free / 2**20:.1f} MiB are free; free some space or choose another output directory")

    n_embd = cfg["hidden_size"]
    n_head = cfg["num_attention_heads"]
    n_kv = cfg.get("num_key_value_heads") or n_head
    head_dim = cfg.get("head_dim") or n_embd // n_head
    ftype = {"f32": gguf.LlamaFileType.ALL_F32, "f16": gguf.LlamaFileType.MOSTLY_F16,
             "bf16": gguf.LlamaFileType.MOSTLY_BF16}[outtype]

    tmp_path = out_path.with_name(out_path.name + ".part")
    writer = gguf.GGUFWriter(tmp_path, arch)
    writer.add_name(cfg.get("_name_or_path") or model_dir.name)
    writer.add_context_length(int(cfg.get("max_position_embeddings", 4096)))
    writer.add_embedding_length(n_embd)
    writer.add_block_count(cfg["num_hidden_layers"])
    writer.add_feed_forward_length(cfg["intermediate_size"])
    writer.add_head_count(n_head)
    writer.add_head_count_kv(n_kv)
    writer.add_rope_dimension_count(head_dim)
    if head_dim != n_embd // n_head:
        writer.add_key_length(head_dim)
        writer.add_value_length(head_dim)
    writer.add_rope_freq_base(_rope_theta(cfg))
    writer.add_layer_norm_rms_eps(float(cfg.get("rms_norm_eps", 1e-6)))
    writer.add_vocab_size(n_vocab)
    writer.add_file_type(ftype)
    rs = _rope_scaling(cfg)
    if rs:
        kind = rs.get("rope_type") or rs.get("type")
        writer.add_rope_scaling_type(gguf.RopeScalingType.LINEAR if kind == "linear" else gguf.RopeScalingType.YARN)
        writer.add_rope_scaling_factor(float(rs["factor"]))
        if "original_max_position_embeddings" in rs:
            writer.add_rope_scaling_orig_ctx_len(int(rs["original_max_position_embeddings"]))

    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre(vocab.pre)
    writer.add_token_list(vocab.tokens)
    writer.add_token_types(vocab.types)
    writer.add_token_merges(vocab.merges)
    for setter, v in ((writer.add_bos_token_id, vocab.bos_id), (writer.add_eos_token_id, vocab.eos_id),
                      (writer.add_pad_token_id, vocab.pad_id), (writer.add_unk_token_id, vocab.unk_id)):
        if v is not None:
            setter(int(v))
    writer.add_add_bos_token(vocab.add_bos)
    writer.add_add_eos_token(vocab.add_eos)
    if vocab.chat_template:
        writer.add_chat_template(vocab.chat_template)

    for p in plans:
        raw = {"f32": gguf.GGMLQuantizationType.F32, "f16": gguf.GGMLQuantizationType.F16,
               "bf16": gguf.GGMLQuantizationType.BF16}[p.out_type]
        np_dt = {"f32": np.dtype(np.float32), "f16": np.dtype(np.float16), "bf16": np.dtype(np.uint16)}[p.out_type]
        writer.add_tensor_info(p.gguf_name, p.ref.shape, np_dt, p.out_nbytes, raw_dtype=raw)

    total = sum(p.out_nbytes for p in plans)
    done = 0

    def tick(n: int, name: str) -> None:
        nonlocal done
        done += n
        if progress:
            progress(done, total, name)

    try:
        writer.write_header_to_file()
        writer.write_kv_data_to_file()
        writer.write_ti_data_to_file()
        for p in plans:
            _write_tensor(writer, p, lambda n, _name=p.gguf_name: tick(n, _name))
        writer.close()
        os.replace(tmp_path, out_path)
    except OSError as e:
        writer.close()
        tmp_path.unlink(missing_ok=True)
        if e.errno == 28:  # ENOSPC
            raise DiskSpaceError(f"the disk filled up while writing {out_path}: free some space and retry") from e
        raise QuantizeError(f"writing {out_path} failed: {e}") from e
    except BaseException:
        writer.close()
        tmp_path.unlink(missing_ok=True)
        raise
    return ConvertResult(out_path, arch, outtype, len(plans), sum(p.ref.numel for p in plans), total, vocab.pre)
