"""The language server (not built yet)."""
