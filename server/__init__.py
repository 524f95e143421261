"""The language server: "Solve issue" code actions, progress, cancel, preview and apply.

`swe-reasoner serve` starts it; docs/lsp.md is its protocol.
"""
