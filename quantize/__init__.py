"""HF checkpoints to GGUF, llama.cpp quantization, agreement checks (see docs/quantize.md).

Submodules: convert (HF -> GGUF), quant (llama.cpp quantize), check (HF vs GGUF
logits and tokenization), cli (`swe-reasoner quantize ...`). LoRA adapters to
GGUF are not built yet.
"""
