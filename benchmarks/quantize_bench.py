"""Conversion throughput and peak memory of `quantize convert`, and `quantize quant` time.

    python benchmarks/quantize_bench.py [--size-gb 1.0] [--dtype bf16] [--outtype f16] [--quant Q4_K_M]

Generates a random Qwen2-shaped checkpoint of about --size-gb (bf16 shards of
at most 500 MB with an index, as `save_pretrained` writes them) into a temp
dir, then runs each step in a fresh child process and reports wall time,
MB/s and the child's peak RSS (VmHWM). The page cache is warm (the shards
were just written): on a cold disk the read rate bounds throughput.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))


def make_checkpoint(d: Path, size_gb: float, dtype: str) -> dict:
    import torch
    from safetensors.torch import save_file

    from quantize_fixtures import train_tokenizer

    hidden, inter, heads, kv, vocab = 2048, 5632, 16, 2, 32000
    per_layer = 2 * (hidden * hidden + 2 * hidden * (hidden // heads) * kv + 3 * hidden * inter)  # bytes at 16 bit
    emb = 2 * vocab * hidden
    layers = max(1, int((size_gb * 1e9 - emb) / per_layer))
    cfg = {"architectures": ["Qwen2ForCausalLM"], "model_type": "qwen2", "hidden_size": hidden,
           "intermediate_size": inter, "num_hidden_layers": layers, "num_attention_heads": heads,
           "num_key_value_heads": kv, "vocab_size": vocab, "max_position_embeddings": 4096,
           "rms_norm_eps": 1e-6, "rope_theta": 1e6, "tie_word_embeddings": True, "torch_dtype": dtype}
    (d / "config.json").write_text(json.dumps(cfg))
    train_tokenizer("qwen2").save_pretrained(d)
    tdt = {"bf16": torch.bfloat16, "f16": torch.float16, "f32": torch.float32}[dtype]
    g = torch.Generator().manual_seed(0)

    def t(*shape):
        return (torch.randn(*shape, generator=g) * 0.02).to(tdt)

    tensors = [("model.embed_tokens.weight", (vocab, hidden)), ("model.norm.weight", (hidden,))]
    hd = hidden // heads
    for i in range(layers):
        p = f"model.layers.{i}."
        tensors += [(p + "input_layernorm.weight", (hidden,)), (p + "post_attention_layernorm.weight", (hidden,)),
                    (p + "self_attn.q_proj.weight", (hidden, hidden)), (p + "self_attn.q_proj.bias", (hidden,)),
                    (p + "self_attn.k_proj.weight", (kv * hd, hidden)), (p + "self_attn.k_proj.bias", (kv * hd,)),
                    (p + "self_attn.v_proj.weight", (kv * hd, hidden)), (p + "self_attn.v_proj.bias", (kv * hd,)),
                    (p + "self_attn.o_proj.weight", (hidden, hidden)),
                    (p + "mlp.gate_proj.weight", (inter, hidden)), (p + "mlp.up_proj.weight", (inter, hidden)),
                    (p + "mlp.down_proj.weight", (hidden, inter))]
    shards, cur, cur_bytes, weight_map = [], {}, 0, {}
    esz = torch.empty((), dtype=tdt).element_size()
    total = 0

    def flush():
        nonlocal cur, cur_bytes
        if cur:
            name = f"model-{len(shards) + 1:05d}.safetensors"
            save_file(cur, str(d / name), metadata={"format": "pt"})
            shards.append(name)
            for k in cur:
                weight_map[k] = name
            cur, cur_bytes = {}, 0

    for name, shape in tensors:
        n = 1
        for s in shape:
            n *= s
        if cur_bytes + n * esz > 500e6:
            flush()
        cur[name] = t(*shape)
        cur_bytes += n * esz
        total += n * esz
    flush()
    (d / "model.safetensors.index.json").write_text(json.dumps({"metadata": {"total_size": total},
                                                                 "weight_map": weight_map}))
    return {"layers": layers, "bytes": total, "shards": len(shards), "params": total // esz}


CHILD = r"""
import json, resource, sys, time
from swe_reasoner.quantize.convert import convert
from swe_reasoner.quantize.quant import quant
t = time.perf_counter()
if sys.argv[1] == "convert":
    r = convert(sys.argv[2], sys.argv[3], sys.argv[4])
    out = r.nbytes
else:
    r = quant(sys.argv[2], sys.argv[3], sys.argv[4])
    out = r.out_bytes
dt = time.perf_counter() - t
# VmHWM, not ru_maxrss: Linux carries the parent's high-water mark across fork+exec into ru_maxrss
hwm = next(int(l.split()[1]) * 1024 for l in open("/proc/self/status") if l.startswith("VmHWM:"))
print(json.dumps({"seconds": dt, "out_bytes": out, "peak_rss": hwm}))
"""


def child(*args: str) -> dict:
    p = subprocess.run([sys.executable, "-c", CHILD, *args], capture_output=True, text=True)
    if p.returncode:
        raise SystemExit(p.stderr[-3000:])
    return json.loads(p.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--size-gb", type=float, default=1.0)
    ap.add_argument("--dtype", default="bf16", choices=["bf16", "f16", "f32"])
    ap.add_argument("--outtype", default="f16", choices=["f32", "f16", "bf16"])
    ap.add_argument("--quant", default="Q4_K_M")
    ap.add_argument("--dir", default=None, help="work dir (default: a temp dir, removed)")
    args = ap.parse_args()
    os.environ["HF_HUB_OFFLINE"] = "1"
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        d = Path(tmp) / "hf"
        d.mkdir()
        t = time.perf_counter()
        info = make_checkpoint(d, args.size_gb, args.dtype)
        print(f"checkpoint: {info['params'] / 1e6:.0f}M params, {info['layers']} layers, {info['shards']} shards, "
              f"{info['bytes'] / 1e6:.0f} MB {args.dtype} (generated in {time.perf_counter() - t:.1f} s)")
        out = Path(tmp) / f"model-{args.outtype}.gguf"
        c = child("convert", str(d), str(out), args.outtype)
        print(f"convert -> {args.outtype}: {c['seconds']:.2f} s, read {info['bytes'] / 1e6 / c['seconds']:.0f} MB/s, "
              f"write {c['out_bytes'] / 1e6 / c['seconds']:.0f} MB/s, peak RSS {c['peak_rss'] / 2**20:.0f} MiB")
        if args.quant:
            q = child("quant", str(out), str(Path(tmp) / "q.gguf"), args.quant)
            print(f"quant {args.outtype} -> {args.quant}: {q['seconds']:.2f} s "
                  f"({c['out_bytes'] / 1e6 / q['seconds']:.0f} MB/s of input), {q['out_bytes'] / 1e6:.0f} MB, "
                  f"peak RSS {q['peak_rss'] / 2**20:.0f} MiB")


if __name__ == "__main__":
    main()
