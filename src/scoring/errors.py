"""Errors raised by the scoring library.

The hierarchy, drawn once::

    ScoringError                    every error this library raises on purpose
    ├── ConfigError                 a pipeline configuration (TOML) that cannot be used
    ├── DataError                   input data that cannot be used; carries the DataReport
    │   ├── InvalidDeals            deals to score (from a file or a request) that break the contract
    │   └── InsufficientDataError   valid data, but too few won or lost deals to learn from
    └── ModelError                  a model bundle that cannot be used (wrong version, not fitted)

Messages name the file, the row(s) and the column, and say what was expected.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
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


@dataclass(frozen=True)
class DealProblem:
    """One problem of one deal to score: its position in the batch, the field, what was wrong."""

    index: int
    field: str
    message: str


class InvalidDeals(DataError):
    """Deals to score that break the contract, one :class:`DealProblem` each. Located as ``deals[i].field`` (a
    request), or by spreadsheet ``rows`` of ``source`` (a file)."""

    def __init__(self, problems: Sequence[DealProblem], rows: Sequence[int] | None = None,
                 source: str = "deals") -> None:
        self.problems = list(problems)
        self.rows = rows
        self.source = source
        shown = "; ".join(f"{self.where(p)}: {p.message}" for p in self.problems[:10])
        more = f"; and {len(self.problems) - 10} more" if len(self.problems) > 10 else ""
        super().__init__(f"the deals to score cannot be used: {shown}{more}")

    def where(self, problem: DealProblem) -> str:
        if self.rows is None:
            return f"deals[{problem.index}].{problem.field}"
        return f"{self.source} row {self.rows[problem.index]}, column {problem.field}"


class InsufficientDataError(DataError):
    """Too few won or lost deals to learn from; the message gives the numbers."""


class ModelError(ScoringError):
    """A model bundle that cannot be used."""
