"""Validated request deals -> the columns the model scores (the same arrays a file gives), with problems named.

Pydantic has checked types, required fields, amounts and dates; here come the checks that need the
model: stages it knows, feature values of the right kind, no duplicate ids, nothing created after
as_of. Fields the model does not use are ignored and listed in the warnings.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from scoring.bundle import ModelBundle
from scoring.config import DEAL_COLUMNS
from scoring.contract import stage_classifier
from serving.schemas import Deal, ProblemDetail

NAT = np.datetime64("NaT", "us")
#: At most this many deal ids are quoted in one warning.
QUOTED = 5


class RequestProblems(Exception):
    """The request is well-formed JSON but the model cannot score it: one entry per problem."""

    def __init__(self, problems: list[ProblemDetail]) -> None:
        super().__init__("; ".join(f"{p.field}: {p.message}" for p in problems))
        self.problems = problems


def deal_columns(deals: list[Deal], bundle: ModelBundle, as_of: pd.Timestamp) -> tuple[dict[str, np.ndarray], list[str]]:
    """The deals as columns of canonical names (feature columns only for the model's features) and warnings."""
    problems: list[ProblemDetail] = []
    classify = stage_classifier(bundle.config)
    stages = []
    for i, deal in enumerate(deals):
        kind, canon = classify(deal.stage)
        if kind != "open":
            reason = "only open deals can be scored" if kind in ("won", "lost") else "unknown stage"
            problems.append(ProblemDetail(field=f"deals[{i}].stage", message=f"{reason}: got {deal.stage!r}; expected "
                                          f"one of the model's open stages {list(bundle.config.stages)}"))
        stages.append(canon)
    ids = [str(deal.deal_id) for deal in deals]
    seen: dict[str, int] = {}
    for i, deal_id in enumerate(ids):
        if deal_id in seen:
            problems.append(ProblemDetail(field=f"deals[{i}].deal_id", message=f"duplicate deal_id {deal_id!r} "
                                          f"(also deals[{seen[deal_id]}]); each deal must appear once"))
        seen.setdefault(deal_id, i)
    limit = as_of.to_pydatetime()
    for i, deal in enumerate(deals):
        if deal.created_at > limit:
            problems.append(ProblemDetail(field=f"deals[{i}].created_at", message=f"{deal.created_at} is after as_of "
                                          f"{as_of}; a deal cannot be scored before it exists"))
    features, unknown, missing = _features(deals, bundle.features, problems)
    if problems:
        raise RequestProblems(problems)
    columns: dict[str, np.ndarray] = {
        "deal_id": np.array(ids, dtype=object),
        "stage": np.array(stages, dtype=object),
        "amount": np.array([deal.amount for deal in deals], dtype=float),
        "created_at": _dates([deal.created_at for deal in deals]),
        "stage_entered_at": _dates([deal.stage_entered_at for deal in deals]),
        "expected_close_date": _dates([deal.expected_close_date for deal in deals]),
        **features,
    }
    warnings = []
    if unknown:
        warnings.append(f"field(s) {', '.join(sorted(unknown))} not used by the model: ignored")
    for name, where in missing.items():
        if 0 < len(where) < len(deals):
            quoted = ", ".join(ids[i] for i in where[:QUOTED]) + (", ..." if len(where) > QUOTED else "")
            warnings.append(f"feature {name!r} missing on {len(where)} deal(s) ({quoted}): scored as unknown")
    return columns, warnings


def _features(deals: list[Deal], kinds: dict[str, str], problems: list[ProblemDetail]
              ) -> tuple[dict[str, np.ndarray], set[str], dict[str, list[int]]]:
    """The model's feature columns present in the deals; the unused field names; per feature, deals lacking it."""
    values: dict[str, list[Any]] = {name: [None] * len(deals) for name in kinds}
    present: set[str] = set()
    unknown: set[str] = set()
    for i, deal in enumerate(deals):
        for name, value in (deal.model_extra or {}).items():
            if name not in kinds:
                unknown.add(name)
                continue
            present.add(name)
            cleaned = _feature_value(value, kinds[name])
            if cleaned is _BAD:
                expected = "a number" if kinds[name] == "numeric" else "a string, number or boolean"
                problems.append(ProblemDetail(field=f"deals[{i}].{name}", message=f"expected {expected} (or null), "
                                              f"got {_short(value)}"))
            else:
                values[name][i] = cleaned
    unknown -= set(DEAL_COLUMNS)  # status/closed_at of an open deal: nothing to use, nothing to warn about
    columns = {}
    for name in present:
        dtype = float if kinds[name] == "numeric" else object
        column = [np.nan if v is None and dtype is float else v for v in values[name]]
        columns[name] = np.array(column, dtype=dtype)
    missing = {name: [i for i, v in enumerate(values[name]) if v is None] for name in kinds}
    return columns, unknown, missing


_BAD = object()


def _feature_value(value: Any, kind: str) -> Any:
    """A JSON value as the feature's kind (None when missing), or _BAD."""
    if value is None:
        return None
    if kind == "numeric":
        if isinstance(value, bool):
            return _BAD
        if isinstance(value, (int, float)):
            return float(value) if math.isfinite(value) else _BAD
        if isinstance(value, str):
            try:
                number = float(value.strip())
            except ValueError:
                return None if not value.strip() else _BAD
            return number if math.isfinite(number) else _BAD
        return _BAD
    if isinstance(value, (str, int, float, bool)):
        text = str(value).strip()
        return text or None
    return _BAD


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _dates(values: list[Any]) -> np.ndarray:
    return np.array([NAT if v is None else np.datetime64(v, "us") for v in values], dtype="datetime64[us]")
