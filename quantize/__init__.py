"""HF checkpoints to GGUF, llama.cpp quantization, agreement checks (see docs/quantize.md).

Submodules: convert (HF -> GGUF), lora (PEFT LoRA adapter -> GGUF adapter),
quant (llama.cpp quantize), check (HF vs GGUF logits and tokenization, with or
without an adapter), cli (`swe-reasoner quantize ...`).
"""
