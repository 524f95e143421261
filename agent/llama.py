"""The llama.cpp runtime, in process (llama-cpp-python): a GGUF file, one GPU or the CPU.

The chat template is the one in the GGUF's metadata, rendered here, so that
generation and scoring see exactly the same prompt. Structured answers are
constrained by a grammar made from the JSON schema, after an optional
`<think>` part. The samples of one prompt are decoded together, one sequence
each in one context whose KV cache they share: the prompt is evaluated once,
and each step is one batch of one token per sequence. Log-probabilities of a
given continuation are read from one batched pass over it. Named LoRA
adapters are loaded once and switched per call.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import time
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np

from .errors import ModelError
from .model import Completion, Message
from .progress import CancelToken

PREFILL_CHUNK = 128  # prompt tokens decoded between two checks of the cancel token
N_SEQ_MAX = 8  # samples decoded together; more run in groups of this many
MIN_ROOM = 16  # the fewest tokens a reply may be given before a prompt is refused as too long

# The sampling create_completion did by default (its top-k, top-p and min-p), so that
# samples decoded together are distributed as the one-at-a-time samples were.
TOP_K, TOP_P, MIN_P = 40, 0.95, 0.05

_THINK_RULES = r'''
root ::= think? answer
think ::= "<think>" ( [^<] | "<" [^/] | "</" [^t] )* "</think>" [ \t\n]*
'''


# -- LoRA adapters ---------------------------------------------------------------


def load_lora_adapter(llm, path: str | os.PathLike):
    """Load a GGUF LoRA adapter for llm's model (llama_adapter_lora_init); freed with llm."""
    import llama_cpp

    if not Path(path).is_file():
        raise ModelError(f"the LoRA adapter {path} does not exist")
    adapter = llama_cpp.llama_adapter_lora_init(llm._model.model, str(path).encode("utf-8"))
    if not adapter:
        raise ModelError(f"llama.cpp could not load the LoRA adapter {path} for this model "
                         "(wrong base model, or not a GGUF LoRA adapter: see llama.cpp's log with verbose=True)")
    llm._stack.callback(llama_cpp.llama_adapter_lora_free, adapter)
    return adapter


def set_lora_adapters(llm, adapters: Sequence[tuple[object, float]]) -> None:
    """Make exactly these (adapter, scale) pairs active on llm's context; none: the base model.

    llama-cpp-python's prompt cache compares token ids only, so the cached
    state is dropped (reset) after every switch.
    """
    import llama_cpp

    n = len(adapters)
    arr = (llama_cpp.llama_adapter_lora_p_ctypes * max(n, 1))(*[a for a, _ in adapters])
    scales = (ctypes.c_float * max(n, 1))(*[float(s) for _, s in adapters])
    if llama_cpp.llama_set_adapters_lora(llm._ctx.ctx, arr, n, scales):
        raise ModelError("llama.cpp refused to set the LoRA adapters")
    llm.reset()
    mem = llama_cpp.llama_get_memory(llm._ctx.ctx)
    if mem is not None:  # cached K/V were computed with the old adapters
        llama_cpp.llama_memory_clear(mem, True)


# -- parallel sequences ------------------------------------------------------------


def _open_sequences(llm, n_seq_max: int) -> None:
    """Give llm a context of `n_seq_max` sequences over one unified KV cache of n_ctx cells.

    Llama() makes a one-sequence context and takes no argument for more, so the
    context is made again with the same parameters plus these two; the old one
    is freed first, so its KV cache is never held twice.
    """
    from llama_cpp import _internals

    params = llm.context_params
    params.n_seq_max = n_seq_max
    params.kv_unified = True  # the samples share the prompt's cells and n_ctx in all
    llm._ctx.close()
    llm._ctx = llm._stack.enter_context(contextlib.closing(
        _internals.LlamaContext(model=llm._model, params=params, verbose=False)))


def plan_samples(room: int, n: int, max_tokens: int, n_seq_max: int) -> tuple[int, int]:
    """(sequences decoded together, tokens each may generate) for `n` samples in `room` free cells.

    The samples share the KV cache, so `width` of them need width * max_tokens
    cells: fewer run together rather than each getting less, so that a sample
    does not depend on how many were asked. Only where one alone does not fit
    is its reply clipped to the room left, as a single completion always was.
    """
    width = max(1, min(n, n_seq_max, room // max(max_tokens, 1)))
    return width, min(max_tokens, room // width)


class LlamaCppModel:
    """A GGUF model loaded with llama-cpp-python.

    `adapters` names GGUF LoRA adapters of this model, loaded once; each call
    runs with at most one of them active. `n_seq_max` is how many samples of one
    prompt are decoded together. `n_threads`, where given, is used for batches
    too (the prompt, and the samples' steps), as llama.cpp's own tools do;
    otherwise llama-cpp-python's defaults (half the cores; all for batches).
    """

    def __init__(self, path: str | os.PathLike, *, n_ctx: int = 8192, n_gpu_layers: int = -1,
                 seed: int = 0, think: bool = True, n_threads: int | None = None, name: str | None = None,
                 n_seq_max: int = N_SEQ_MAX, adapters: dict[str, str] | None = None):
        try:
            import llama_cpp
            from llama_cpp import _internals
            from llama_cpp.llama_chat_format import Jinja2ChatFormatter
        except ImportError as exc:
            raise ModelError("llama-cpp-python is not installed: pip install 'swe-reasoner[llama]'") from exc
        if not os.path.isfile(path):
            raise ModelError(f"model file {path} does not exist")
        if not 1 <= n_seq_max <= llama_cpp.llama_max_parallel_sequences():
            raise ModelError(f"n_seq_max={n_seq_max}: llama.cpp decodes 1 to "
                             f"{llama_cpp.llama_max_parallel_sequences()} sequences together")
        self.name = name or os.path.basename(str(path))
        self.path = str(path)
        self.seed = seed
        self.think = think
        self.n_seq_max = n_seq_max
        self._llama_cpp = llama_cpp
        self._adapters: dict[str, object] = {}
        self._active: str | None = None
        try:
            self._llm = llama_cpp.Llama(model_path=self.path, n_ctx=n_ctx, n_gpu_layers=n_gpu_layers,
                                        seed=seed, n_threads=n_threads, n_threads_batch=n_threads, verbose=False)
            _open_sequences(self._llm, n_seq_max)
        except (ValueError, RuntimeError, OSError) as exc:
            self.close()
            raise ModelError(f"could not load {path}: {exc} (is it a complete GGUF file? is there enough memory for n_ctx={n_ctx}?)") from exc
        self._step = self._llm._stack.enter_context(contextlib.closing(
            _internals.LlamaBatch(n_tokens=n_seq_max, embd=0, n_seq_max=1, verbose=False)))
        try:
            self._adapters = {name: load_lora_adapter(self._llm, p) for name, p in (adapters or {}).items()}
        except ModelError:
            self.close()
            raise
        template = self._llm.metadata.get("tokenizer.chat_template")
        if not template:
            self.close()
            raise ModelError(f"{path} has no chat template in its metadata (tokenizer.chat_template)")
        eos, bos = self._llm.token_eos(), self._llm.token_bos()
        model = self._llm._model
        self._formatter = Jinja2ChatFormatter(
            template=template,
            eos_token=model.token_get_text(eos) if eos != -1 else "",
            bos_token=model.token_get_text(bos) if bos != -1 else "",
        )
        self._grammars: dict[str, str] = {}

    # -- prompts --------------------------------------------------------------

    def render(self, messages: Sequence[Message]) -> str:
        """The chat template applied to `messages`, ending where the assistant's reply starts."""
        return self._formatter(messages=[dict(m) for m in messages]).prompt

    def tokenize(self, text: str, special: bool = True) -> list[int]:
        return self._llm.tokenize(text.encode("utf-8"), add_bos=False, special=special)

    @property
    def n_ctx(self) -> int:
        """The context asked for: llama.cpp rounds its own up (to 256), but llama-cpp-python's
        token buffer holds only the size asked."""
        return min(self._llm.n_ctx(), len(self._llm.input_ids))

    # -- adapters ---------------------------------------------------------------

    def _use_adapter(self, name: str | None) -> None:
        """Make `name` the one active adapter (None: the base model). Only a change costs:
        it drops the prefix cache, which matches token ids only while its K/V were
        computed with the old adapter."""
        if name == self._active:
            return
        if name is not None and name not in self._adapters:
            raise ModelError(f"unknown adapter {name!r}; this model has "
                             + (", ".join(repr(a) for a in sorted(self._adapters)) or "none"))
        set_lora_adapters(self._llm, [] if name is None else [(self._adapters[name], 1.0)])
        self._active = name

    # -- generation -------------------------------------------------------------

    def complete(self, messages, *, n=1, max_tokens=1024, temperature=0.0, json_schema=None, cancel=None,
                 adapter: str | None = None):
        """`n` samples, sample i seeded with seed + i, decoded up to n_seq_max at a time.

        The prompt's tokens are counted once: the first completion of each group
        carries those evaluated for it (cache hits excluded), the others 0; each
        carries an equal share of its group's time. Where prompt + n * max_tokens
        exceeds the context, fewer samples run together (see `plan_samples`).
        """
        prompt = self.tokenize(self.render(messages))
        room = self.n_ctx - len(prompt)
        if room < MIN_ROOM:
            raise ModelError(f"the prompt has {len(prompt)} tokens; the context holds {self.n_ctx} (raise n_ctx)")
        self._use_adapter(adapter)
        grammar = self._grammar(json_schema) if json_schema else None
        width, budget = plan_samples(room, n, max_tokens, self.n_seq_max)
        out: list[Completion] = []
        for first in range(0, n, width):
            seeds = [self.seed + i for i in range(first, min(first + width, n))]
            out += self._sample_group(prompt, seeds, budget, temperature, grammar, cancel)
        return out

    def _sample_group(self, prompt: list[int], seeds: list[int], max_tokens: int, temperature: float,
                      grammar: str | None, cancel: CancelToken | None) -> list[Completion]:
        """One sample per seed, decoded together: the prompt is evaluated once on
        sequence 0 and its cells are shared with the other sequences."""
        start = time.perf_counter()
        evaluated = self._prefill(prompt, cancel)
        mem = self._llm._ctx.memory
        tokens: list[list[int]] = [[] for _ in seeds]
        with contextlib.ExitStack() as stack:
            samplers = [stack.enter_context(self._sampler(temperature, grammar, s)) for s in seeds]
            stack.callback(self._keep_first_sequence, len(prompt), tokens[0])
            for seq in range(1, len(seeds)):
                self._llama_cpp.llama_memory_seq_cp(mem, 0, seq, -1, -1)
            finish = self._decode(samplers, tokens, len(prompt), max_tokens, cancel)
        seconds = (time.perf_counter() - start) / len(seeds)
        return [Completion(text=self._llm.detokenize(t).decode("utf-8", errors="ignore"),
                           prompt_tokens=evaluated if i == 0 else 0, completion_tokens=len(t),
                           finish_reason=finish[i], seconds=seconds)
                for i, t in enumerate(tokens)]

    def _prefill(self, prompt: list[int], cancel: CancelToken | None) -> int:
        """Evaluate the prompt on sequence 0 past its cached prefix, a chunk at a time so that
        a cancel lands between chunks (a long prompt takes seconds on a CPU). The last token
        is always evaluated: its logits start every sample. Returns the tokens evaluated."""
        llm = self._llm
        cached = min(llm.longest_token_prefix(llm._input_ids.tolist(), prompt), len(prompt) - 1)
        llm.n_tokens = cached  # eval() drops sequence 0's cells past n_tokens
        for i in range(cached, len(prompt), PREFILL_CHUNK):
            if cancel:
                cancel.check()
            llm.eval(prompt[i:i + PREFILL_CHUNK])
        return len(prompt) - cached

    def _decode(self, samplers: list, tokens: list[list[int]], n_past: int, max_tokens: int,
                cancel: CancelToken | None) -> list[str]:
        """Sample a token for every running sequence, then decode them in one batch, until each
        has sampled an end of generation ("stop") or max_tokens tokens ("length"). All first
        tokens are sampled from the prompt's last logits. Appends to `tokens`; returns the
        finish reasons."""
        lc, ctx, vocab = self._llama_cpp, self._llm._ctx.ctx, self._llm._model.vocab
        finish = ["length"] * len(samplers)
        rows = [-1] * len(samplers)  # each sequence's row of logits in the last batch
        running = range(len(samplers))
        while running:
            if cancel:
                cancel.check()
            ready = []
            for i in running:
                token = lc.llama_sampler_sample(samplers[i], ctx, rows[i])
                if lc.llama_vocab_is_eog(vocab, token):
                    finish[i] = "stop"
                    continue
                tokens[i].append(token)
                if len(tokens[i]) < max_tokens:
                    ready.append(i)
            if ready:
                self._decode_step(ready, tokens, n_past, rows)
            running = ready
        return finish

    def _decode_step(self, ready: list[int], tokens: list[list[int]], n_past: int, rows: list[int]) -> None:
        """Decode the last token of each sequence in `ready`, all in one batch."""
        batch = self._step.batch
        batch.n_tokens = len(ready)
        for row, seq in enumerate(ready):
            batch.token[row] = tokens[seq][-1]
            batch.pos[row] = n_past + len(tokens[seq]) - 1
            batch.n_seq_id[row] = 1
            batch.seq_id[row][0] = seq
            batch.logits[row] = True
            rows[seq] = row
        code = self._llama_cpp.llama_decode(self._llm._ctx.ctx, batch)
        if code:
            raise ModelError(f"llama.cpp could not decode the samples (llama_decode returned {code})")

    def _keep_first_sequence(self, n_prompt: int, first: list[int]) -> None:
        """Free the other sequences' cells and keep sequence 0 (the prompt and what sample 0
        decoded) as the prefix cache, as one sample at a time left it."""
        llm, lc = self._llm, self._llama_cpp
        lc.llama_memory_seq_keep(llm._ctx.memory, 0)
        end = lc.llama_memory_seq_pos_max(llm._ctx.memory, 0) + 1
        llm.input_ids[n_prompt:end] = first[:end - n_prompt]
        llm.n_tokens = end

    @contextlib.contextmanager
    def _sampler(self, temperature: float, grammar: str | None, seed: int) -> Iterator[object]:
        """A sampler chain of one sequence: the grammar, then greedy at temperature 0 or else
        top-k, top-p, min-p, temperature and a draw seeded with `seed`."""
        lc = self._llama_cpp
        chain = lc.llama_sampler_chain_init(lc.llama_sampler_chain_default_params())
        try:
            if grammar:
                rules = lc.llama_sampler_init_grammar(self._llm._model.vocab, grammar.encode("utf-8"), b"root")
                if not rules:  # llama.cpp's parser refused it; its log says why
                    raise ModelError("llama.cpp could not parse the grammar made from the JSON schema")
                lc.llama_sampler_chain_add(chain, rules)
            if temperature <= 0:
                lc.llama_sampler_chain_add(chain, lc.llama_sampler_init_greedy())
            else:
                for part in (lc.llama_sampler_init_top_k(TOP_K), lc.llama_sampler_init_top_p(TOP_P, 1),
                             lc.llama_sampler_init_min_p(MIN_P, 1), lc.llama_sampler_init_temp(temperature),
                             lc.llama_sampler_init_dist(seed)):
                    lc.llama_sampler_chain_add(chain, part)
            yield chain
        finally:
            lc.llama_sampler_free(chain)  # and the samplers added to it

    def _grammar(self, schema: dict) -> str:
        """The GBNF grammar of answers matching `schema`, after an optional think part."""
        key = json.dumps(schema, sort_keys=True)
        if key not in self._grammars:
            from llama_cpp.llama_grammar import json_schema_to_gbnf

            gbnf = json_schema_to_gbnf(key)
            if self.think:  # the answer's grammar becomes `answer`, after an optional think part
                gbnf = gbnf.replace("root ::=", "answer ::=", 1) + _THINK_RULES
            self._grammars[key] = gbnf
        return self._grammars[key]

    # -- scoring ------------------------------------------------------------------

    def logprob(self, messages: Sequence[Message], continuation: str, *, adapter: str | None = None) -> float:
        """log P(continuation | prompt), summed over the continuation's tokens."""
        return float(sum(self.token_logprobs(messages, continuation, adapter=adapter)))

    def token_logprobs(self, messages: Sequence[Message], continuation: str, *,
                       adapter: str | None = None) -> list[float]:
        prompt = self.tokenize(self.render(messages))
        cont = self.tokenize(continuation, special=False)
        if not cont:
            return []
        if len(prompt) + len(cont) > self.n_ctx:
            raise ModelError(f"prompt and continuation ({len(prompt) + len(cont)} tokens) exceed the context ({self.n_ctx})")
        self._use_adapter(adapter)
        llm = self._llm
        # Evaluate the prompt but its last token (reusing the cached prefix), then the last
        # prompt token and the continuation with logits for every position.
        head = prompt[:-1]
        keep = llm.longest_token_prefix(llm._input_ids.tolist(), head) if llm.n_tokens else 0
        llm.n_tokens = keep
        if head[keep:]:
            llm.eval(head[keep:])
        tokens = [prompt[-1], *cont[:-1]]
        out: list[float] = []
        n_vocab = llm.n_vocab()
        for lo in range(0, len(tokens), llm.n_batch):
            chunk = tokens[lo : lo + llm.n_batch]
            n_past = llm.n_tokens
            llm._ctx.kv_cache_seq_rm(-1, n_past, -1)
            llm._batch.set_batch(batch=chunk, n_past=n_past, logits_all=True)
            llm._ctx.decode(llm._batch)
            llm.input_ids[n_past : n_past + len(chunk)] = chunk
            llm.n_tokens += len(chunk)
            logits = np.ctypeslib.as_array(llm._ctx.get_logits(), shape=(len(chunk) * n_vocab,))
            logits = logits.reshape(len(chunk), n_vocab).astype(np.float64)
            peak = logits.max(axis=1, keepdims=True)
            logz = peak[:, 0] + np.log(np.exp(logits - peak).sum(axis=1))
            targets = cont[lo : lo + len(chunk)]
            out.extend((logits[np.arange(len(chunk)), targets] - logz).tolist())
        return out

    def close(self) -> None:
        """Free the context, the adapters and the model (all on the Llama's exit stack)."""
        llm = getattr(self, "_llm", None)
        if llm is not None:
            llm.close()
            self._llm = None
            self._adapters = {}
