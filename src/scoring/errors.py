"""Errors raised by the scoring library.

The hierarchy, drawn once::

    ScoringError                    every error this library raises on purpose
    ├── ConfigError                 a pipeline configuration (TOML) that cannot be used
    ├── DataError                   input data that cannot be used; carries the DataReport
    │   └── InsufficientDataError   valid data, but too few won or lost deals to learn from
    └── ModelError                  a model bundle that cannot be used (wrong version, not fitted)

Messages name the file, the row(s) and the column, and say what was expected.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from scoring.data.problems import DataReport


class ScoringError(Exception):
    """Base class of the errors this library raises on purpose."""


class ConfigError(ScoringError, ValueError):
    """A pipeline configuration that cannot be used."""


class DataError(ScoringError, ValueError):
    """Input data that cannot be used; ``report`` lists every problem found."""

    def __init__(self, message: str, report: DataReport | None = None) -> None:
        super().__init__(message)
        self.report = report


class InsufficientDataError(DataError):
    """Too few won or lost deals to learn from; the message gives the numbers."""


class ModelError(ScoringError):
    """A model bundle that cannot be used."""
