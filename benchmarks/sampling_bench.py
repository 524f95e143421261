"""N samples of one prompt: decoded together (one batch per step) vs one after another.

    python benchmarks/sampling_bench.py [--model PATH.gguf] [--n 1,2,4,8] [--prompt-tokens 1500]
                                        [--new-tokens 128] [--threads 2] [--n-gpu-layers -1] [--repeat 1]

The prompt is an issue plus the start of a stdlib module, cut to about
--prompt-tokens tokens. For each N, on a cold cache, `complete(n=N)` (the
samples decoded together, the prompt evaluated once) against N calls of
`complete(n=1)` with seeds seed + i (each reusing the prompt through the prefix
cache, as samples were drawn before). Both sample at temperature 0.8, so a
sample may stop before --new-tokens; tokens/s counts the tokens generated.
Each is run on a cold cache (wall time, prompt tokens processed, tokens/s) and
again with the prompt cached ("decode tok/s": generation alone).
--threads applies to single tokens and batches alike, so neither path gets more cores.
With --repeat R each figure is the fastest of R runs (other jobs on the machine add noise).
On a GPU: --n-gpu-layers -1 (the default) offloads every layer; benchmarks/gpu_sampling.sh
runs this on the lent H100 with random-weight Qwen2.5-shaped models.
"""

from __future__ import annotations

import argparse
import os
import sysconfig
import time
from pathlib import Path

try:  # llama.cpp's libraries before numpy's: one GPU image crashed loading a model the other way round
    import llama_cpp
except ImportError:  # LlamaCppModel says what to install
    llama_cpp = None

from swe_reasoner.agent.config import demo_model_path
from swe_reasoner.agent.llama import LlamaCppModel

ISSUE = ("textwrap.shorten() drops the placeholder when the text has trailing whitespace and width is "
         "exactly the length of the first word plus the placeholder. Expected 'Hello [...]', got 'Hello'.")


def make_prompt(model: LlamaCppModel, n_tokens: int) -> list[dict]:
    """An issue and as much of textwrap.py as makes about n_tokens prompt tokens."""
    source = (Path(sysconfig.get_paths()["stdlib"]) / "textwrap.py").read_text(encoding="utf-8")

    def messages(code: str) -> list[dict]:
        return [{"role": "system", "content": "You fix issues in Python repositories."},
                {"role": "user", "content": f"<issue>\n{ISSUE}\n</issue>\n\ntextwrap.py:\n```python\n{code}\n```\n\n"
                                            "Which function holds the bug? Explain, then name it."}]

    lo, hi = 0, len(source)
    while lo < hi:  # the longest prefix of the source that fits
        mid = (lo + hi + 1) // 2
        if len(model.tokenize(model.render(messages(source[:mid])))) <= n_tokens:
            lo = mid
        else:
            hi = mid - 1
    return messages(source[:lo])


def run(model: LlamaCppModel, prompt: list[dict], n: int, new_tokens: int, together: bool, cold: bool) -> dict:
    """Wall time, tokens generated and prompt tokens evaluated of n samples; `cold`: from an
    empty cache, else with the prompt cached (the last run left it there)."""
    if cold:
        model._llm.reset()
    seed = model.seed
    start = time.perf_counter()
    if together:
        out = model.complete(prompt, n=n, max_tokens=new_tokens, temperature=0.8)
    else:
        out = []
        for i in range(n):
            model.seed = seed + i
            out += model.complete(prompt, max_tokens=new_tokens, temperature=0.8)
        model.seed = seed
    return {"seconds": time.perf_counter() - start, "tokens": sum(c.completion_tokens for c in out),
            "prompt": sum(c.prompt_tokens for c in out)}


def fastest(repeat: int, *args) -> dict:
    return min((run(*args) for _ in range(repeat)), key=lambda r: r["seconds"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None, help="a GGUF file (default: the demo SmolLM2-135M)")
    parser.add_argument("--n", default="1,2,4,8")
    parser.add_argument("--prompt-tokens", type=int, default=1500)
    parser.add_argument("--new-tokens", type=int, default=128)
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--n-gpu-layers", type=int, default=-1)
    parser.add_argument("--repeat", type=int, default=1)
    args = parser.parse_args()
    ns = [int(x) for x in args.n.split(",")]
    model = LlamaCppModel(args.model or demo_model_path(), n_ctx=args.prompt_tokens + max(ns) * args.new_tokens + 256,
                          n_threads=args.threads, n_gpu_layers=args.n_gpu_layers, n_seq_max=max(ns))
    try:
        prompt = make_prompt(model, args.prompt_tokens)
        n_prompt = len(model.tokenize(model.render(prompt)))
        print(f"{model.name}: prompt {n_prompt} tokens, up to {args.new_tokens} new tokens a sample, "
              f"{args.threads} threads")
        if llama_cpp is not None:
            print(f"GPU offload {'available' if llama_cpp.llama_supports_gpu_offload() else 'not built in'}, "
                  f"n_gpu_layers {args.n_gpu_layers}, {max(ns)} sequences at most, n_ctx {model.n_ctx}")
        print("| N | path | wall s (cold cache) | prompt tokens processed | tokens | tok/s | "
              "decode tok/s (prompt cached) | speed-up |")
        print("|---|---|---|---|---|---|---|---|")
        for n in ns:
            for way in ("one by one", "together"):
                cold = fastest(args.repeat, model, prompt, n, args.new_tokens, way == "together", True)
                warm = fastest(args.repeat, model, prompt, n, args.new_tokens, way == "together", False)
                if way == "one by one":
                    base = cold["seconds"]
                print(f"| {n} | {way} | {cold['seconds']:.2f} | {cold['prompt']} | {cold['tokens']} | "
                      f"{cold['tokens'] / cold['seconds']:.1f} | {warm['tokens'] / warm['seconds']:.1f} | "
                      f"{base / cold['seconds']:.2f}x |")
    finally:
        model.close()


if __name__ == "__main__":
    main()
