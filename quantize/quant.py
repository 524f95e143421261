"""GGUF (f32/f16/bf16) -> Q4_K_M / Q5_K_M / Q6_K / Q8_0 through llama.cpp's quantize API.

llama.cpp picks the per-tensor types of a mix (Q4_K_M keeps some tensors at
Q6_K, ...). K-quants need rows that are multiples of 256; for tensors whose
rows are not, llama.cpp falls back to a legacy type (e.g. Q5_0/Q8_0) and says
so in its log.

An importance matrix (`imatrix`) may be given: the GGUF format that
llama.cpp's `llama-imatrix` writes (tensors `NAME.in_sum2` and `NAME.counts`)
or the legacy `.dat` format.
"""

from __future__ import annotations

import ctypes
import os
import shutil
import struct
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import DiskSpaceError, QuantizeError

TYPES = ("Q4_K_M", "Q5_K_M", "Q6_K", "Q8_0")
# bits per weight, for the disk-space estimate (generous)
_BPW = {"Q4_K_M": 5.0, "Q5_K_M": 6.0, "Q6_K": 6.6, "Q8_0": 8.5}


def ftype_of(type_name: str) -> int:
    import llama_cpp

    name = type_name.upper()
    if name not in TYPES:
        raise QuantizeError(f"quant type {type_name!r} is not supported; choose one of {', '.join(TYPES)}")
    return int(getattr(llama_cpp, f"LLAMA_FTYPE_MOSTLY_{name}"))


@dataclass
class QuantResult:
    path: Path
    type: str
    in_bytes: int
    out_bytes: int
    seconds: float
    imatrix_entries: int


def read_imatrix(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """Importance values per tensor name (mean squared activations per input column)."""
    path = Path(path)
    if not path.exists():
        raise QuantizeError(f"imatrix file {path} does not exist")
    with open(path, "rb") as f:
        magic = f.read(4)
    out: dict[str, np.ndarray] = {}
    if magic == b"GGUF":
        import gguf

        reader = gguf.GGUFReader(str(path))
        tensors = {t.name: np.array(t.data, dtype=np.float32) for t in reader.tensors}
        for name, sums in tensors.items():
            if not name.endswith(".in_sum2"):
                continue
            base = name[: -len(".in_sum2")]
            counts = tensors.get(base + ".counts")
            if counts is None:
                raise QuantizeError(f"imatrix {path}: {base}.in_sum2 has no {base}.counts")
            n_exp = counts.size
            vals = sums.reshape(n_exp, -1) / np.maximum(counts.reshape(n_exp, 1), 1.0)
            out[base] = vals.reshape(-1).astype(np.float32)
        if not out:
            raise QuantizeError(f"imatrix {path} has no *.in_sum2 tensors: not an importance matrix")
        return out
    # legacy .dat: int32 n; n x (int32 len, name, int32 ncall, int32 nval, float32[nval]); trailer
    data = path.read_bytes()
    try:
        (n,) = struct.unpack_from("<i", data, 0)
        pos = 4
        for _ in range(n):
            (ln,) = struct.unpack_from("<i", data, pos)
            pos += 4
            name = data[pos:pos + ln].decode()
            pos += ln
            ncall, nval = struct.unpack_from("<ii", data, pos)
            pos += 8
            vals = np.frombuffer(data, dtype="<f4", count=nval, offset=pos).copy()
            pos += 4 * nval
            if ncall > 0:
                vals /= ncall
            out[name] = vals
    except (struct.error, ValueError, UnicodeDecodeError) as e:
        raise QuantizeError(f"imatrix {path} is neither GGUF nor a readable legacy .dat file ({e})") from e
    return out


def quant(in_gguf: str | os.PathLike, out_gguf: str | os.PathLike, type: str = "Q4_K_M", *,
          imatrix: str | os.PathLike | None = None, nthread: int = 0) -> QuantResult:
    """Quantize in_gguf to out_gguf with llama.cpp (llama_model_quantize)."""
    try:
        import llama_cpp
    except ImportError as e:  # pragma: no cover
        raise QuantizeError("llama-cpp-python is not installed: pip install 'swe-reasoner[llama]'") from e
    in_path, out_path = Path(in_gguf), Path(out_gguf)
    ftype = ftype_of(type)
    if not in_path.exists():
        raise QuantizeError(f"{in_path} does not exist")
    in_bytes = in_path.stat().st_size
    out_dir = out_path.parent if str(out_path.parent) else Path(".")
    out_dir.mkdir(parents=True, exist_ok=True)
    need = int(in_bytes * _BPW[type.upper()] / 16) + (1 << 20)  # input is at least 16-bit mostly
    free = shutil.disk_usage(out_dir).free
    if free < need:
        raise DiskSpaceError(f"not enough disk space in {out_dir}: the output needs about {need / 2**20:.1f} MiB "
                             f"and {free / 2**20:.1f} MiB are free")
    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = ftype
    params.nthread = nthread
    keep = []  # keep ctypes buffers alive during the call
    n_imat = 0
    if imatrix is not None:
        if not any(f[0] == "imatrix" for f in llama_cpp.llama_model_quantize_params._fields_):
            raise QuantizeError("this llama-cpp-python has no imatrix field in llama_model_quantize_params")
        entries = read_imatrix(imatrix)
        arr = (llama_cpp.llama_model_imatrix_data * (len(entries) + 1))()
        for i, (name, vals) in enumerate(entries.items()):
            buf = np.ascontiguousarray(vals, dtype=np.float32)
            keep.append(buf)
            arr[i].name = name.encode()
            arr[i].data = buf.ctypes.data_as(ctypes.POINTER(ctypes.c_float))
            arr[i].size = buf.size
        arr[len(entries)].name = None  # terminator
        keep.append(arr)
        params.imatrix = ctypes.cast(arr, ctypes.POINTER(llama_cpp.llama_model_imatrix_data))
        n_imat = len(entries)
    tmp = out_path.with_name(out_path.name + ".part")
    t0 = time.perf_counter()
    rc = llama_cpp.llama_model_quantize(str(in_path).encode(), str(tmp).encode(), ctypes.byref(params))
    dt = time.perf_counter() - t0
    if rc != 0 or not tmp.exists():
        tmp.unlink(missing_ok=True)
        free = shutil.disk_usage(out_dir).free
        hint = " (the disk may be full)" if free < need else ""
        raise QuantizeError(f"llama.cpp could not quantize {in_path} to {type} (code {rc}){hint}; "
                            "is it a GGUF model file llama.cpp can load?")
    os.replace(tmp, out_path)
    return QuantResult(out_path, type.upper(), in_bytes, out_path.stat().st_size, dt, n_imat)
