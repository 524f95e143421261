"""`swe-reasoner quantize ...`: convert, quant, lora, check.

    swe-reasoner quantize convert HF_DIR OUT.gguf [--outtype f32|f16|bf16]
    swe-reasoner quantize quant IN.gguf OUT.gguf --type Q4_K_M|Q5_K_M|Q6_K|Q8_0 [--imatrix FILE]
    swe-reasoner quantize check HF_DIR MODEL.gguf [--max-rel-err X] [--min-top1 F]
    swe-reasoner quantize lora PEFT_DIR OUT.gguf --base HF_DIR [--outtype f32|f16]
    swe-reasoner quantize check HF_DIR MODEL.gguf --lora PEFT_DIR ADAPTER.gguf

Exit codes: 0 done (check: agreement within the given bounds), 1 failed
(an error, or check found a difference), 2 usage error.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from typing import Sequence, TextIO


class Bar:
    """A minimal progress bar on stderr (no dependency), redrawn at most 10x/s."""

    def __init__(self, label: str, stream: TextIO | None = None, unit: str = "MiB", scale: float = 2**20):
        self.label, self.stream, self.unit, self.scale = label, stream or sys.stderr, unit, scale
        self.t0 = time.perf_counter()
        self.last = 0.0

    def __call__(self, done: float, total: float, note: str = "") -> None:
        now = time.perf_counter()
        if done < total and now - self.last < 0.1:
            return
        self.last = now
        frac = done / total if total else 1.0
        width = 30
        fill = int(frac * width)
        rate = done / self.scale / max(now - self.t0, 1e-9)
        self.stream.write(f"\r{self.label} [{'#' * fill}{'.' * (width - fill)}] {frac * 100:5.1f}% "
                          f"{done / self.scale:.1f}/{total / self.scale:.1f} {self.unit} "
                          f"{rate:.1f} {self.unit}/s {note[:40]:<40}")
        if done >= total:
            self.stream.write("\n")
        self.stream.flush()


def build_parser() -> argparse.ArgumentParser:
    from .convert import OUTTYPES
    from .lora import LORA_OUTTYPES
    from .quant import TYPES

    p = argparse.ArgumentParser(prog="swe-reasoner quantize",
                                description="HF checkpoints to GGUF, llama.cpp quantization, agreement checks")
    sub = p.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("convert", help="HF checkpoint dir (Llama, Qwen2; safetensors) -> GGUF")
    c.add_argument("hf_dir")
    c.add_argument("out")
    c.add_argument("--outtype", choices=OUTTYPES, default="f16")
    c.add_argument("--pre", default=None, help="llama.cpp pre-tokenizer name, if it cannot be detected")
    q = sub.add_parser("quant", help="GGUF -> quantized GGUF through llama.cpp")
    q.add_argument("inp")
    q.add_argument("out")
    q.add_argument("--type", choices=TYPES, default="Q4_K_M", type=str.upper)
    q.add_argument("--imatrix", default=None, help="importance matrix (llama-imatrix GGUF or legacy .dat)")
    q.add_argument("--threads", type=int, default=0)
    k = sub.add_parser("check", help="compare a GGUF model's logits and tokenization with the HF model")
    k.add_argument("hf_dir")
    k.add_argument("gguf")
    k.add_argument("--max-rel-err", type=float, default=None, help="fail (exit 1) above this relative error")
    k.add_argument("--min-top1", type=float, default=None, help="fail (exit 1) below this top-1 agreement")
    k.add_argument("--n-ctx", type=int, default=512)
    k.add_argument("--lora", nargs=2, metavar=("PEFT_DIR", "ADAPTER_GGUF"), default=None,
                   help="compare HF base + PEFT adapter (merged) with MODEL.gguf + the GGUF adapter")
    k.add_argument("--lora-scale", type=float, default=1.0)
    lo = sub.add_parser("lora", help="PEFT LoRA adapter -> GGUF LoRA adapter (llama.cpp applies it at run time)")
    lo.add_argument("peft_dir")
    lo.add_argument("out")
    lo.add_argument("--base", required=True, help="the HF base model dir the adapter was trained on")
    lo.add_argument("--outtype", choices=LORA_OUTTYPES, default="f32")
    return p


def _verdict(ok: bool, rep, args: argparse.Namespace) -> int:
    """Exit status of a check: `ok` and the report within the bounds asked for."""
    if args.max_rel_err is not None and rep.max_rel_err > args.max_rel_err:
        ok = False
    if args.min_top1 is not None and rep.top1_agreement < args.min_top1:
        ok = False
    print("check: " + ("passed" if ok else "FAILED"))
    return 0 if ok else 1


def main(argv: Sequence[str] | None = None) -> int:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    parser = build_parser()
    try:
        args = parser.parse_args(list(sys.argv[1:] if argv is None else argv))
    except SystemExit as e:
        return 0 if e.code == 0 else 2
    from .errors import QuantizeError

    try:
        if args.cmd == "convert":
            from .convert import convert

            r = convert(args.hf_dir, args.out, args.outtype, pre=args.pre, progress=Bar("convert"))
            print(f"wrote {r.path}: {r.arch}, {r.outtype}, {r.n_tensors} tensors, "
                  f"{r.n_params / 1e6:.1f}M parameters, {r.nbytes / 2**20:.1f} MiB, pre-tokenizer {r.pre}")
            return 0
        if args.cmd == "quant":
            from .quant import quant

            sys.stderr.write(f"quantizing {args.inp} to {args.type} ...\n")
            r = quant(args.inp, args.out, args.type, imatrix=args.imatrix, nthread=args.threads)
            print(f"wrote {r.path}: {r.type}, {r.in_bytes / 2**20:.1f} -> {r.out_bytes / 2**20:.1f} MiB "
                  f"in {r.seconds:.1f} s" + (f", imatrix of {r.imatrix_entries} tensors" if r.imatrix_entries else ""))
            return 0
        if args.cmd == "lora":
            from .lora import convert_lora

            r = convert_lora(args.peft_dir, args.out, args.base, args.outtype)
            print(f"wrote {r.path}: LoRA adapter for {r.arch}, {r.outtype}, rank {r.rank}, alpha {r.alpha:g}, "
                  f"{r.n_modules} modules ({', '.join(r.target_modules)}), {r.n_params / 1e6:.2f}M parameters")
            return 0
        if args.cmd == "check" and args.lora:
            from .check import check_lora, load_gguf

            llm = load_gguf(args.gguf, n_ctx=args.n_ctx)
            rep = check_lora(args.hf_dir, args.gguf, args.lora[0], args.lora[1], llm=llm, scale=args.lora_scale,
                             progress=Bar("check", unit="steps", scale=1))
            print(rep.format())
            return _verdict(rep.shift_ratio >= 10.0 and rep.off_max_abs == 0.0, rep, args)
        if args.cmd == "check":
            from .check import check, load_gguf

            llm = load_gguf(args.gguf, n_ctx=args.n_ctx)
            rep = check(args.hf_dir, args.gguf, llm=llm, progress=Bar("check", unit="steps", scale=1))
            print(rep.format())
            return _verdict(rep.tokenization_identical, rep, args)
    except QuantizeError as e:
        sys.stderr.write(f"\nerror: {e}\n")
        return 1
    except KeyboardInterrupt:
        sys.stderr.write("\ninterrupted\n")
        return 1
    return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
