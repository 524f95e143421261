"""Errors of the quantize package: each says what is wrong and what to do."""

from __future__ import annotations

from swe_reasoner.agent.errors import SweReasonerError


class QuantizeError(SweReasonerError):
    """A checkpoint cannot be converted, quantized or checked."""


class UnsupportedArchitectureError(QuantizeError):
    """The checkpoint's architecture has no converter."""


class MissingTokenizerError(QuantizeError):
    """The checkpoint directory has no usable tokenizer."""


class CorruptCheckpointError(QuantizeError):
    """A weights file is truncated or unreadable."""


class DiskSpaceError(QuantizeError):
    """Not enough free disk space for the output."""
