"""The llama.cpp runtime, in process (llama-cpp-python): a GGUF file, one GPU or the CPU.

The chat template is the one in the GGUF's metadata, rendered here, so that
generation and scoring see exactly the same prompt. Structured answers are
constrained by a grammar made from the JSON schema, after an optional
`<think>` part. Samples of one prompt share its evaluation through the prefix
cache. Log-probabilities of a given continuation are read from one batched
pass over it.
"""

from __future__ import annotations

import json
import logging
import os
import time
from typing import Sequence

import numpy as np

from .errors import Cancelled, ModelError
from .model import Completion, Message
from .progress import CancelToken

PREFILL_CHUNK = 128  # prompt tokens decoded between two checks of the cancel token

log = logging.getLogger(__name__)

_THINK_RULES = r'''
root ::= think? answer
think ::= "<think>" ( [^<] | "<" [^/] | "</" [^t] )* "</think>" [ \t\n]*
'''


class LlamaCppModel:
    """A GGUF model loaded with llama-cpp-python."""

    def __init__(self, path: str | os.PathLike, *, n_ctx: int = 8192, n_gpu_layers: int = -1,
                 seed: int = 0, think: bool = True, n_threads: int | None = None, name: str | None = None):
        try:
            import llama_cpp
            from llama_cpp.llama_chat_format import Jinja2ChatFormatter
        except ImportError as exc:
            raise ModelError("llama-cpp-python is not installed: pip install 'swe-reasoner[llama]'") from exc
        if not os.path.isfile(path):
            raise ModelError(f"model file {path} does not exist")
        self.name = name or os.path.basename(str(path))
        self.path = str(path)
        self.seed = seed
        self.think = think
        self._llama_cpp = llama_cpp
        try:
            self._llm = llama_cpp.Llama(model_path=self.path, n_ctx=n_ctx, n_gpu_layers=n_gpu_layers,
                                        seed=seed, n_threads=n_threads, verbose=False)
        except (ValueError, RuntimeError, OSError) as exc:
            raise ModelError(f"could not load {path}: {exc} (is it a complete GGUF file? is there enough memory for n_ctx={n_ctx}?)") from exc
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
        self._grammars: dict[str, object] = {}

    # -- prompts --------------------------------------------------------------

    def render(self, messages: Sequence[Message]) -> str:
        """The chat template applied to `messages`, ending where the assistant's reply starts."""
        return self._formatter(messages=[dict(m) for m in messages]).prompt

    def tokenize(self, text: str, special: bool = True) -> list[int]:
        return self._llm.tokenize(text.encode("utf-8"), add_bos=False, special=special)

    @property
    def n_ctx(self) -> int:
        return self._llm.n_ctx()

    # -- generation -------------------------------------------------------------

    def complete(self, messages, *, n=1, max_tokens=1024, temperature=0.0, json_schema=None, cancel=None):
        prompt = self.tokenize(self.render(messages))
        room = self.n_ctx - len(prompt)
        if room < 16:
            raise ModelError(f"the prompt has {len(prompt)} tokens; the context holds {self.n_ctx} (raise n_ctx)")
        grammar = self._grammar(json_schema) if json_schema else None
        stop = self._llama_cpp.StoppingCriteriaList(
            [lambda tokens, logits: bool(cancel and cancel.cancelled)])
        out = []
        for i in range(n):
            if cancel:
                cancel.check()
            cached = self._llm.longest_token_prefix(self._llm._input_ids.tolist(), prompt)
            start = time.perf_counter()
            if cancel:
                self._prefill(prompt, cached, cancel)
            result = self._llm.create_completion(
                prompt=prompt, max_tokens=min(max_tokens, room), temperature=temperature,
                seed=self.seed + i, grammar=grammar, stopping_criteria=stop,
            )
            if cancel and cancel.cancelled:
                raise Cancelled("the solve was cancelled")
            choice = result["choices"][0]
            out.append(Completion(
                text=choice["text"],
                prompt_tokens=len(prompt) - min(cached, len(prompt) - 1),
                completion_tokens=result["usage"]["completion_tokens"],
                finish_reason=choice.get("finish_reason") or "stop",
                seconds=time.perf_counter() - start,
            ))
        return out

    def _prefill(self, prompt: list[int], cached: int, cancel: CancelToken) -> None:
        """Evaluate the prompt's uncached part a batch at a time, so that a cancel lands
        between batches (a long prompt takes seconds on a CPU); create_completion then
        finds all but the last token in the prefix cache."""
        llm = self._llm
        end = len(prompt) - 1
        if end - cached <= PREFILL_CHUNK:
            return
        llm.n_tokens = cached  # eval() drops the KV cache past n_tokens
        for i in range(cached, end, PREFILL_CHUNK):
            cancel.check()
            llm.eval(prompt[i:min(i + PREFILL_CHUNK, end)])
        cancel.check()

    def _grammar(self, schema: dict):
        key = json.dumps(schema, sort_keys=True)
        if key not in self._grammars:
            from llama_cpp.llama_grammar import LlamaGrammar, json_schema_to_gbnf

            gbnf = json_schema_to_gbnf(key)
            if self.think:  # the answer's grammar becomes `answer`, after an optional think part
                gbnf = gbnf.replace("root ::=", "answer ::=", 1) + _THINK_RULES
            self._grammars[key] = LlamaGrammar.from_string(gbnf, verbose=False)
        return self._grammars[key]

    # -- scoring ------------------------------------------------------------------

    def logprob(self, messages: Sequence[Message], continuation: str) -> float:
        """log P(continuation | prompt), summed over the continuation's tokens."""
        return float(sum(self.token_logprobs(messages, continuation)))

    def token_logprobs(self, messages: Sequence[Message], continuation: str) -> list[float]:
        prompt = self.tokenize(self.render(messages))
        cont = self.tokenize(continuation, special=False)
        if not cont:
            return []
        if len(prompt) + len(cont) > self.n_ctx:
            raise ModelError(f"prompt and continuation ({len(prompt) + len(cont)} tokens) exceed the context ({self.n_ctx})")
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
        llm = getattr(self, "_llm", None)
        if llm is not None:
            llm.close()
            self._llm = None
