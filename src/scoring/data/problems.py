"""What validation found: problems (errors and warnings) and rows set aside, each located."""
from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Literal

Severity = Literal["error", "warning"]
#: How many row numbers and example values a message lists before "and N more".
SHOWN = 5


@dataclass(frozen=True)
class Problem:
    """One kind of problem in one column of one file, with the rows it was found in.

    Rows are numbered as in a spreadsheet: the header is row 1, the first deal row 2.
    """

    source: str
    message: str
    column: str | None = None
    rows: tuple[int, ...] = ()
    severity: Severity = "error"

    def __str__(self) -> str:
        where = [self.source]
        if self.column:
            where.append(f"column {self.column!r}")
        if self.rows:
            where.append(("row " if len(self.rows) == 1 else "rows ") + _listing(self.rows))
        return f"{', '.join(where)}: {self.message}"

    def to_dict(self) -> dict[str, object]:
        return {"source": self.source, "column": self.column, "rows": list(self.rows), "message": self.message,
                "severity": self.severity}


@dataclass(frozen=True)
class SetAside:
    """Rows that were read but not (fully) used, and why: left out, or ``kept`` without the value of ``column``;
    ``folded`` rows carry nothing that is lost (a stage history's won/lost rows, whose dates complete the deals;
    repeats of a stage), so ``--strict`` does not refuse them; a ``deletion`` (a deal deleted in the CRM, and its
    history) teaches nothing, and the pipeline store applies it."""

    source: str
    reason: str
    rows: tuple[int, ...]
    column: str | None = None
    kept: bool = False
    folded: bool = False
    deletion: bool = False

    @property
    def count(self) -> int:
        return len(self.rows)

    def __str__(self) -> str:
        where = f", column {self.column!r}" if self.column else ""
        return f"{self.source}{where}: {self.count} row(s) set aside: {self.reason} (rows {_listing(self.rows)})"

    def to_dict(self) -> dict[str, object]:
        return {"source": self.source, "column": self.column, "reason": self.reason, "count": self.count,
                "rows": list(self.rows), "kept": self.kept, "folded": self.folded}


@dataclass
class DataReport:
    """Everything validation found; data is usable when there are no errors."""

    problems: list[Problem] = field(default_factory=list)
    set_aside: list[SetAside] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "error"]

    @property
    def warnings(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "warning"]

    @property
    def ok(self) -> bool:
        return not self.errors

    def error(self, source: str, message: str, column: str | None = None, rows: Iterable[int] = ()) -> None:
        self.problems.append(Problem(source, message, column, _rows(rows), "error"))

    def warn(self, source: str, message: str, column: str | None = None, rows: Iterable[int] = ()) -> None:
        self.problems.append(Problem(source, message, column, _rows(rows), "warning"))

    def set_rows_aside(self, source: str, reason: str, rows: Iterable[int], column: str | None = None,
                       kept: bool = False, folded: bool = False, deletion: bool = False) -> None:
        rows = _rows(rows)
        if rows:
            self.set_aside.append(SetAside(source, reason, rows, column, kept, folded, deletion))

    def strict(self, writes: bool = False) -> DataReport:
        """The same findings with every set-aside turned into an error (``--strict``). For the pipeline store's
        ``writes``, rows kept without one value (a blank amount) and deletions stay set aside: the store loses
        nothing of them (it keeps the deal; it takes a deleted one out of the pipeline)."""
        refused = [s for s in self.set_aside if not s.folded and not (writes and (s.kept or s.deletion))]
        problems = [*self.problems, *(Problem(s.source, f"{s.reason} (--strict refuses rows set aside)", s.column,
                                              s.rows, "error") for s in refused)]
        return DataReport(problems=problems, set_aside=[s for s in self.set_aside if s not in refused],
                          notes=list(self.notes))

    def to_dict(self) -> dict[str, object]:
        """The report for machines (``validate --json``)."""
        return {"ok": self.ok,
                "errors": [p.to_dict() for p in self.errors], "warnings": [p.to_dict() for p in self.warnings],
                "set_aside": [s.to_dict() for s in self.set_aside],
                "set_aside_rows": sum(s.count for s in self.set_aside), "notes": list(self.notes)}

    def summary(self) -> str:
        """One paragraph: the errors (or that there are none), then counts of warnings and set-aside rows."""
        parts = [str(p) for p in self.errors] or ["no errors"]
        if self.warnings:
            parts.append(f"{len(self.warnings)} warning(s)")
        if self.set_aside:
            parts.append(f"{sum(s.count for s in self.set_aside)} row(s) set aside")
        return "; ".join(parts)


def examples(values: Sequence[object]) -> str:
    """A short, quoted listing of offending values: 'a', 'b', 'c' and 4 more."""
    shown = ", ".join(repr(str(v)) for v in values[:SHOWN])
    return shown + (f" and {len(values) - SHOWN} more" if len(values) > SHOWN else "")


def _listing(rows: Sequence[int]) -> str:
    shown = ", ".join(str(r) for r in rows[:SHOWN])
    return shown + (f" and {len(rows) - SHOWN} more" if len(rows) > SHOWN else "")


def _rows(rows: Iterable[int]) -> tuple[int, ...]:
    return tuple(sorted({int(r) for r in rows}))
