"""Lazy, bounded-memory reading of (possibly sharded) safetensors checkpoints.

The format is an 8-byte little-endian header length, a JSON header that maps
each tensor name to its dtype, shape and byte range, then the raw data. We
parse the header ourselves and read row ranges with ``os.pread`` so that

- no tensor is read before it is needed, and only a chunk of rows at a time
  (peak memory is one output tensor plus one chunk, never the model);
- bf16 works without torch (numpy has no bfloat16: it is widened to float32
  by a bit shift);
- a truncated or damaged file is found before anything is written.
"""

from __future__ import annotations

import json
import os
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import CorruptCheckpointError, QuantizeError

_DTYPES = {
    "F32": (np.dtype("<f4"), 4),
    "F16": (np.dtype("<f2"), 2),
    "BF16": (np.dtype("<u2"), 2),
    "F64": (np.dtype("<f8"), 8),
}


@dataclass(frozen=True)
class TensorRef:
    """Where one tensor lives: file, dtype name, shape, absolute byte offset."""

    name: str
    path: Path
    dtype: str
    shape: tuple[int, ...]
    offset: int
    nbytes: int

    @property
    def numel(self) -> int:
        n = 1
        for d in self.shape:
            n *= d
        return n

    @property
    def rows(self) -> int:
        return self.shape[0] if self.shape else 1

    @property
    def row_elems(self) -> int:
        return self.numel // self.rows if self.rows else 0

    def read_rows(self, r0: int, r1: int) -> np.ndarray:
        """Rows [r0, r1) as float32 (first axis), shape (r1-r0, *shape[1:])."""
        np_dtype, size = _DTYPES[self.dtype]
        per_row = self.row_elems * size
        start = self.offset + r0 * per_row
        length = (r1 - r0) * per_row
        fd = os.open(self.path, os.O_RDONLY)
        try:
            buf = bytearray(length)
            view = memoryview(buf)
            got = 0
            while got < length:
                n = os.preadv(fd, [view[got:]], start + got)
                if n <= 0:
                    raise CorruptCheckpointError(
                        f"{self.path} ended while reading tensor {self.name!r}: the file is truncated; "
                        "copy or download it again")
                got += n
        finally:
            os.close(fd)
        arr = np.frombuffer(buf, dtype=np_dtype)
        if self.dtype == "BF16":
            arr = (arr.astype(np.uint32) << 16).view(np.float32)
        else:
            arr = arr.astype(np.float32, copy=False)
        return arr.reshape((r1 - r0,) + tuple(self.shape[1:]))

    def read_raw_bf16_rows(self, r0: int, r1: int) -> np.ndarray:
        """Rows as raw bf16 bits (uint16), only for BF16 tensors."""
        assert self.dtype == "BF16"
        per_row = self.row_elems * 2
        with open(self.path, "rb") as f:
            f.seek(self.offset + r0 * per_row)
            data = f.read((r1 - r0) * per_row)
        if len(data) != (r1 - r0) * per_row:
            raise CorruptCheckpointError(f"{self.path} is truncated (tensor {self.name!r})")
        return np.frombuffer(data, dtype="<u2").reshape((r1 - r0,) + tuple(self.shape[1:]))

    def read(self) -> np.ndarray:
        return self.read_rows(0, self.rows) if self.shape else self.read_rows(0, 1).reshape(())


def read_header(path: Path) -> dict[str, TensorRef]:
    """Parse one safetensors file's header and check that the file is complete."""
    size = path.stat().st_size
    try:
        with open(path, "rb") as f:
            raw = f.read(8)
            if len(raw) < 8:
                raise CorruptCheckpointError(f"{path} is {size} bytes: too short to be a safetensors file (truncated?)")
            (hlen,) = struct.unpack("<Q", raw)
            if hlen > 100 * 1024 * 1024 or 8 + hlen > size:
                raise CorruptCheckpointError(
                    f"{path}: the header says {hlen} bytes but the file has {size}: truncated or not safetensors")
            header = json.loads(f.read(hlen))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise CorruptCheckpointError(f"{path}: unreadable safetensors header ({e})") from e
    base = 8 + hlen
    refs: dict[str, TensorRef] = {}
    end_max = 0
    for name, info in header.items():
        if name == "__metadata__":
            continue
        dtype = info["dtype"]
        if dtype not in _DTYPES:
            raise QuantizeError(f"{path}: tensor {name!r} has dtype {dtype}; supported: {', '.join(_DTYPES)}")
        b0, b1 = info["data_offsets"]
        shape = tuple(int(d) for d in info["shape"])
        ref = TensorRef(name, path, dtype, shape, base + b0, b1 - b0)
        if ref.numel * _DTYPES[dtype][1] != b1 - b0:
            raise CorruptCheckpointError(f"{path}: tensor {name!r} byte range does not match its shape")
        refs[name] = ref
        end_max = max(end_max, b1)
    if base + end_max > size:
        raise CorruptCheckpointError(
            f"{path} is truncated: its header needs {base + end_max} bytes but the file has {size}; "
            "copy or download it again")
    return refs


def open_checkpoint(model_dir: Path) -> dict[str, TensorRef]:
    """All tensors of a checkpoint dir: model.safetensors or shards via the index."""
    index = model_dir / "model.safetensors.index.json"
    if index.exists():
        weight_map = json.loads(index.read_text())["weight_map"]
        files = sorted(set(weight_map.values()))
    else:
        files = sorted(p.name for p in model_dir.glob("*.safetensors"))
    if not files:
        raise QuantizeError(f"{model_dir} has no *.safetensors weights (PyTorch .bin checkpoints are not supported: "
                            "re-save with save_pretrained(safe_serialization=True))")
    refs: dict[str, TensorRef] = {}
    for fname in files:
        p = model_dir / fname
        if not p.exists():
            raise CorruptCheckpointError(f"shard {p} named in the index is missing")
        refs.update(read_header(p))
    return refs
