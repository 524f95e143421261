"""PEFT LoRA adapter -> GGUF LoRA adapter that llama.cpp applies at run time.

A PEFT adapter directory holds `adapter_config.json` (peft_type LORA, r,
lora_alpha, target_modules, ...) and `adapter_model.safetensors` with, per
adapted linear layer `W` (out x in), `...<module>.lora_A.weight` (r x in) and
`...<module>.lora_B.weight` (out x r); the layer computes
`W x + s * B (A x)` with `s = lora_alpha / r` (`lora_alpha / sqrt(r)` with
rsLoRA).

llama.cpp's adapter file (general.type "adapter", adapter.type "lora",
adapter.lora.alpha, the base's general.architecture) holds, for a base tensor
named `NAME` in the base GGUF, `NAME.lora_a` and `NAME.lora_b`. In ggml's
dimension order the base weight is ne = (in, out), lora_a must be (in, r) and
lora_b (r, out): the numpy (row-major) shapes are PEFT's own, (r, in) and
(out, r), so nothing is transposed. llama.cpp scales by
`adapter.lora.alpha / r` with r = lora_b's ne[0]; where PEFT's scale differs
(rsLoRA, per-module rank_pattern / alpha_pattern) the difference is folded
into lora_b.

For Llama the base converter reorders the rows of q/k projections within each
head (HF's half-split rope layout -> llama.cpp's pairwise one); lora_B's rows
are output rows of the same projection, so they get the same reordering.
"""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .convert import _load_json, load_config, rope_row_order
from .errors import QuantizeError, UnsupportedArchitectureError
from .safetensors_io import open_checkpoint, read_header

LORA_OUTTYPES = ("f32", "f16")
ADAPTER_CONFIG = "adapter_config.json"
ADAPTER_WEIGHTS = "adapter_model.safetensors"

_KEY_RE = re.compile(r"^(?:base_model\.model\.)?(?P<module>.+)\.lora_(?P<ab>[AB])(?:\.[^.]+)?\.weight$")


class LoraAdapterError(QuantizeError):
    """A PEFT adapter directory cannot be converted."""


@dataclass
class LoraConvertResult:
    path: Path
    arch: str
    outtype: str
    rank: int
    alpha: float
    n_modules: int  # adapted linear layers (each gives a lora_a and a lora_b tensor)
    n_params: int
    nbytes: int
    target_modules: list[str]


@dataclass
class _Pair:
    hf_module: str  # model.layers.0.self_attn.q_proj
    gguf_base: str  # blk.0.attn_q.weight
    a: np.ndarray  # (r, in)
    b: np.ndarray  # (out, r)


def load_adapter_config(peft_dir: str | os.PathLike) -> dict:
    """adapter_config.json of a PEFT LoRA adapter, checked for what we can convert."""
    peft_dir = Path(peft_dir)
    if not peft_dir.is_dir():
        raise LoraAdapterError(f"{peft_dir} is not a directory")
    cfg_path = peft_dir / ADAPTER_CONFIG
    if not cfg_path.exists():
        raise LoraAdapterError(f"{peft_dir} has no {ADAPTER_CONFIG}: not a PEFT adapter directory "
                               "(save it with model.save_pretrained(dir) on the PeftModel)")
    cfg = _load_json(cfg_path)
    ptype = str(cfg.get("peft_type", "")).upper()
    if ptype != "LORA":
        raise LoraAdapterError(f"{cfg_path}: peft_type is {cfg.get('peft_type')!r}, not LORA; only LoRA adapters "
                               "can be converted (llama.cpp has no run-time support for other PEFT methods)")
    if cfg.get("use_dora"):
        raise LoraAdapterError(f"{cfg_path}: a DoRA adapter (use_dora) cannot be converted: llama.cpp applies "
                               "plain LoRA only; merge it into the base with merge_and_unload() and convert that")
    if cfg.get("bias", "none") not in ("none", None):
        raise LoraAdapterError(f"{cfg_path}: the adapter trains biases (bias={cfg['bias']!r}); llama.cpp adapters "
                               "carry no biases: merge it instead")
    if cfg.get("lora_bias"):
        raise LoraAdapterError(f"{cfg_path}: the adapter has lora_B biases (lora_bias=true); llama.cpp adapters "
                               "carry no biases: merge it instead")
    if cfg.get("fan_in_fan_out"):
        raise LoraAdapterError(f"{cfg_path}: fan_in_fan_out adapters (Conv1D layers) are not supported")
    if cfg.get("modules_to_save"):
        raise LoraAdapterError(f"{cfg_path}: modules_to_save={cfg['modules_to_save']} are full weights, not LoRA "
                               "matrices; a GGUF LoRA adapter cannot carry them: merge the adapter instead")
    for key in ("r", "lora_alpha"):
        if not isinstance(cfg.get(key), (int, float)) or cfg[key] <= 0:
            raise LoraAdapterError(f"{cfg_path}: {key} is {cfg.get(key)!r}, expected a positive number")
    return cfg


def _peft_scale(cfg: dict, module: str) -> tuple[int, float]:
    """(rank, PEFT scale) of one module, with rank_pattern / alpha_pattern / rsLoRA."""
    def pattern(pat: dict | None, default):
        for key, v in (pat or {}).items():
            if re.fullmatch(rf"(.*\.)?{key}", module):
                return v
        return default

    r = int(pattern(cfg.get("rank_pattern"), cfg["r"]))
    alpha = float(pattern(cfg.get("alpha_pattern"), cfg["lora_alpha"]))
    scale = alpha / math.sqrt(r) if cfg.get("use_rslora") else alpha / r
    return r, scale


def _read_pairs(peft_dir: Path, cfg: dict) -> dict[str, dict[str, np.ndarray]]:
    wpath = peft_dir / ADAPTER_WEIGHTS
    if not wpath.exists():
        hint = (" (found adapter_model.bin: re-save with safe_serialization=True)"
                if (peft_dir / "adapter_model.bin").exists() else "")
        raise LoraAdapterError(f"{peft_dir} has no {ADAPTER_WEIGHTS}{hint}")
    refs = read_header(wpath)
    pairs: dict[str, dict[str, np.ndarray]] = {}
    for name, ref in refs.items():
        m = _KEY_RE.match(name)
        if m is None:
            if "lora_embedding" in name:
                raise LoraAdapterError(f"adapter tensor {name!r}: LoRA on the embedding is not supported "
                                       "(target linear layers only)")
            raise LoraAdapterError(f"adapter tensor {name!r} is not a LoRA A/B matrix of a linear layer; "
                                   "cannot convert it")
        if len(ref.shape) != 2:
            raise LoraAdapterError(f"adapter tensor {name!r} has shape {ref.shape}, expected a matrix")
        pairs.setdefault(m["module"], {})[m["ab"]] = ref.read().astype(np.float32)
    for module, ab in pairs.items():
        if set(ab) != {"A", "B"}:
            raise LoraAdapterError(f"adapter module {module!r} has lora_{''.join(ab)} but not both lora_A and lora_B: "
                                   f"{wpath} is incomplete")
    if not pairs:
        raise LoraAdapterError(f"{wpath} holds no LoRA tensors")
    return pairs


def plan_lora(peft_dir: str | os.PathLike, base_hf_dir: str | os.PathLike) -> tuple[dict, str, list[_Pair], float]:
    """Read, map and check the adapter against the base; B already scaled and permuted.

    Returns (adapter config, gguf arch, pairs, alpha written to the GGUF).
    """
    import gguf

    peft_dir, base_hf_dir = Path(peft_dir), Path(base_hf_dir)
    cfg = load_adapter_config(peft_dir)
    if not base_hf_dir.is_dir():
        raise QuantizeError(f"base model {base_hf_dir} is not a directory")
    try:
        base_cfg, arch, permute = load_config(base_hf_dir)
    except UnsupportedArchitectureError as e:
        raise UnsupportedArchitectureError(f"base model of the adapter: {e}") from e
    trained_on = (cfg.get("auto_mapping") or {}).get("base_model_class")
    base_class = (base_cfg.get("architectures") or ["?"])[0]
    if trained_on and trained_on != base_class:
        raise LoraAdapterError(f"the adapter was trained on a {trained_on} but the base model {base_hf_dir} "
                               f"is a {base_class}: wrong base model?")
    base_refs = open_checkpoint(base_hf_dir)
    raw = _read_pairs(peft_dir, cfg)

    gguf_arch = {"llama": gguf.MODEL_ARCH.LLAMA, "qwen2": gguf.MODEL_ARCH.QWEN2}[arch]
    n_layer = base_cfg["num_hidden_layers"]
    tmap = gguf.get_tensor_name_map(gguf_arch, n_layer)
    n_head = base_cfg["num_attention_heads"]
    n_kv = base_cfg.get("num_key_value_heads") or n_head
    alpha = float(cfg["lora_alpha"])

    pairs: list[_Pair] = []
    from .convert import _natural_key

    for module in sorted(raw, key=_natural_key):
        a, b = raw[module]["A"], raw[module]["B"]
        hf_weight = module + ".weight"
        gname = tmap.get_name(hf_weight, try_suffixes=(".weight",))
        linear = hf_weight.endswith(("proj.weight", "lm_head.weight"))
        if gname is None or not linear:
            raise LoraAdapterError(
                f"adapter module {module!r} has no llama.cpp {arch} tensor to apply to; "
                "target the attention / MLP projections (q_proj k_proj v_proj o_proj gate_proj up_proj down_proj)")
        if hf_weight not in base_refs:
            raise LoraAdapterError(f"adapter module {module!r}: the base model {base_hf_dir} has no {hf_weight} "
                                   "(tied embeddings have no separate lm_head); wrong base model?")
        out_dim, in_dim = base_refs[hf_weight].shape
        r_cfg, scale = _peft_scale(cfg, module)
        r = a.shape[0]
        if a.shape[1] != in_dim or b.shape[0] != out_dim:
            raise LoraAdapterError(
                f"adapter module {module!r}: lora_A {a.shape} / lora_B {b.shape} do not fit the base weight "
                f"{(out_dim, in_dim)} (expected ({r}, {in_dim}) and ({out_dim}, {r})): wrong base model?")
        if b.shape[1] != r or r != r_cfg:
            raise LoraAdapterError(
                f"adapter module {module!r}: rank mismatch: lora_A {a.shape}, lora_B {b.shape}, "
                f"adapter_config r={r_cfg}")
        # llama.cpp applies alpha / r; fold any other PEFT scale into B.
        factor = scale / (alpha / r)
        if abs(factor - 1.0) > 1e-12:
            b = b * np.float32(factor)
        if permute and module.endswith("q_proj"):
            b = b[rope_row_order(out_dim, n_head)]
        elif permute and module.endswith("k_proj"):
            b = b[rope_row_order(out_dim, n_kv)]
        pairs.append(_Pair(module, gname, np.ascontiguousarray(a), np.ascontiguousarray(b)))
    return cfg, arch, pairs, alpha


def convert_lora(peft_dir: str | os.PathLike, out_gguf: str | os.PathLike, base_hf_dir: str | os.PathLike,
                 outtype: str = "f32") -> LoraConvertResult:
    """Convert the PEFT LoRA adapter in peft_dir (for the HF model in base_hf_dir) to a GGUF adapter."""
    import gguf

    if outtype not in LORA_OUTTYPES:
        raise QuantizeError(f"--outtype {outtype!r}: choose one of {', '.join(LORA_OUTTYPES)}")
    out_path = Path(out_gguf)
    cfg, arch, pairs, alpha = plan_lora(peft_dir, base_hf_dir)
    dt = np.float32 if outtype == "f32" else np.float16

    out_dir = out_path.parent if str(out_path.parent) else Path(".")
    out_dir.mkdir(parents=True, exist_ok=True)
    tmp = out_path.with_name(out_path.name + ".part")
    writer = gguf.GGUFWriter(tmp, arch)
    nbytes = 0
    try:
        writer.add_type(gguf.GGUFType.ADAPTER)
        writer.add_name(Path(peft_dir).name)
        writer.add_string(gguf.Keys.Adapter.TYPE, "lora")
        writer.add_float32(gguf.Keys.Adapter.LORA_ALPHA, alpha)
        writer.add_file_type(gguf.LlamaFileType.ALL_F32 if outtype == "f32" else gguf.LlamaFileType.MOSTLY_F16)
        for p in pairs:
            for suffix, x in ((".lora_a", p.a), (".lora_b", p.b)):
                arr = x.astype(dt)
                nbytes += arr.nbytes
                writer.add_tensor(p.gguf_base + suffix, arr)
        writer.write_header_to_file()
        writer.write_kv_data_to_file()
        writer.write_tensors_to_file()
        writer.close()
        os.replace(tmp, out_path)
    except OSError as e:
        writer.close()
        tmp.unlink(missing_ok=True)
        raise QuantizeError(f"writing {out_path} failed: {e}") from e
    except BaseException:
        writer.close()
        tmp.unlink(missing_ok=True)
        raise
    targets = cfg.get("target_modules")
    targets = sorted(targets) if isinstance(targets, list) else [str(targets)]
    return LoraConvertResult(out_path, arch, outtype, int(cfg["r"]), alpha, len(pairs),
                             sum(p.a.size + p.b.size for p in pairs), nbytes, targets)


def adapter_summary(path: str | os.PathLike) -> dict:
    """Metadata of a GGUF adapter (for messages and tests)."""
    import gguf

    r = gguf.GGUFReader(str(path))
    meta = {k: r.fields[k].contents() for k in ("general.type", "general.architecture", "adapter.type",
                                                 "adapter.lora.alpha") if k in r.fields}
    meta["tensors"] = {t.name: tuple(int(d) for d in t.shape) for t in r.tensors}
    return meta


__all__ = ["convert_lora", "load_adapter_config", "plan_lora", "adapter_summary", "LoraAdapterError",
           "LoraConvertResult", "LORA_OUTTYPES"]

