"""Exceptions of the agent. Each says what happened in words a user can act on."""

from __future__ import annotations


class SweReasonerError(Exception):
    """Base class of every error the agent raises on purpose."""


class ConfigError(SweReasonerError):
    """Settings are missing or invalid; the message names the key and the fix."""


class RepoError(SweReasonerError):
    """The repository cannot be used (not a git repository, git failed, ...)."""


class UnsafePathError(SweReasonerError):
    """A path names something outside the repository."""


class ModelError(SweReasonerError):
    """The model could not be loaded or did not answer."""


class Cancelled(SweReasonerError):
    """The user cancelled the solve."""


class FormatError(SweReasonerError):
    """A model answer could not be parsed; `feedback` is what the model is told."""

    def __init__(self, feedback: str):
        super().__init__(feedback)
        self.feedback = feedback
