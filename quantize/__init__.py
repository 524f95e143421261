"""HF checkpoints and LoRA adapters to GGUF (not built yet)."""
