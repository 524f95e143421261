"""swe-reasoner: a local assistant that solves issues in a repository."""

__version__ = "0.1.0"
