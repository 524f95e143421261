"""Tiny random Llama / Qwen2 checkpoints with a locally trained BPE tokenizer.

Used by tests/test_quantize.py and benchmarks/quantize_bench.py. Nothing is
downloaded: the tokenizer is trained on a few files of the Python stdlib.
"""

from __future__ import annotations

import os
import sysconfig
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

QWEN2_RE = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*"
            r"|\s*[\r\n]+|\s+(?!\S)|\s+")
LLAMA3_RE = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*"
             r"|\s*[\r\n]+|\s+(?!\S)|\s+")

QWEN_TEMPLATE = (
    "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>\n' }}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}")
LLAMA_TEMPLATE = (
    "{{ bos_token }}{% for message in messages %}{{ '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n'"
    " + message['content'] + '<|eot_id|>' }}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}{% endif %}")

STDLIB_SAMPLES = ("textwrap.py", "json/decoder.py", "shlex.py", "fnmatch.py", "colorsys.py")


def stdlib_texts(names=STDLIB_SAMPLES) -> list[str]:
    root = Path(sysconfig.get_paths()["stdlib"])
    return [(root / n).read_text(encoding="utf-8") for n in names]


def train_tokenizer(arch: str, vocab_size: int = 384):
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    if arch == "qwen2":
        specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
        regex = QWEN2_RE
    else:
        specials = ["<|begin_of_text|>", "<|end_of_text|>", "<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>"]
        regex = LLAMA3_RE
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(regex), behavior="isolated"),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
    ])
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size - len(specials), special_tokens=[],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator(stdlib_texts(), trainer)
    tok.add_special_tokens(specials)
    if arch == "qwen2":
        tok.post_processor = processors.ByteLevel(trim_offsets=False)
        return PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<|im_end|>", pad_token="<|endoftext|>",
                                       chat_template=QWEN_TEMPLATE)
    bos = "<|begin_of_text|>"
    tok.post_processor = processors.TemplateProcessing(
        single=f"{bos} $A", pair=f"{bos} $A {bos} $B", special_tokens=[(bos, tok.token_to_id(bos))])
    return PreTrainedTokenizerFast(tokenizer_object=tok, bos_token=bos, eos_token="<|eot_id|>",
                                   pad_token="<|end_of_text|>", chat_template=LLAMA_TEMPLATE)


def build_tiny(out_dir: Path, arch: str = "qwen2", *, hidden: int = 64, intermediate: int = 128,
               layers: int = 2, heads: int = 4, kv_heads: int = 2, vocab_size: int = 384,
               seed: int = 0, tie: bool | None = None, std: float = 0.08) -> Path:
    """Write a random `arch` model + tokenizer to out_dir (safetensors)."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM, Qwen2Config, Qwen2ForCausalLM

    out_dir = Path(out_dir)
    tok = train_tokenizer(arch, vocab_size)
    n_vocab = len(tok)
    common = dict(vocab_size=n_vocab, hidden_size=hidden, intermediate_size=intermediate,
                  num_hidden_layers=layers, num_attention_heads=heads, num_key_value_heads=kv_heads,
                  max_position_embeddings=512, rms_norm_eps=1e-6, initializer_range=std)
    torch.manual_seed(seed)
    if arch == "qwen2":
        cfg = Qwen2Config(**common, tie_word_embeddings=True if tie is None else tie, rope_theta=1000000.0,
                          eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id)
        model = Qwen2ForCausalLM(cfg)
    else:
        cfg = LlamaConfig(**common, tie_word_embeddings=False if tie is None else tie, rope_theta=500000.0,
                          bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id,
                          pad_token_id=tok.pad_token_id)
        model = LlamaForCausalLM(cfg)
    with torch.no_grad():  # non-trivial norms and biases, so that a mix-up shows
        for name, p in model.named_parameters():
            if p.ndim == 1:
                p.copy_((1.0 + 0.2 * torch.randn_like(p)) if "norm" in name else 0.2 * torch.randn_like(p))
    model.eval()
    model.save_pretrained(out_dir)
    tok.save_pretrained(out_dir)
    return out_dir


LORA_TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


def build_lora(base_dir: Path, out_dir: Path, *, r: int = 4, alpha: int = 8, seed: int = 1, std: float = 0.1,
               targets=LORA_TARGETS, **lora_kw) -> Path:
    """A PEFT LoRA adapter on the model in base_dir, saved to out_dir.

    lora_B starts at zero in PEFT (the adapter would change nothing): it is set
    to random values so that the adapter visibly shifts the logits.
    """
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(str(base_dir), dtype=torch.float32)
    cfg = LoraConfig(r=r, lora_alpha=alpha, target_modules=list(targets), lora_dropout=0.0, **lora_kw)
    peft_model = get_peft_model(model, cfg)
    torch.manual_seed(seed)
    with torch.no_grad():
        for name, p in peft_model.named_parameters():
            if "lora_B" in name:
                p.copy_(std * torch.randn_like(p))
    peft_model.save_pretrained(str(out_dir))
    return Path(out_dir)
