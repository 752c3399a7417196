"""Validated request deals -> the columns the model scores (the same arrays a file gives), with problems named.

Pydantic has checked types, required fields, amounts and that dates parse; here come the checks that
need the model or are cheaper on whole columns: stages it knows, feature values of the right kind, no
duplicate ids, dates within the plausible years, nothing created after as_of. Fields the model does not
use are ignored and listed in the warnings.
"""
from __future__ import annotations

import math
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd

from scoring.bundle import ModelBundle
from scoring.data.config import DEAL_COLUMNS
from scoring.data.contract import PLAUSIBLE_YEARS, stage_classifier
from scoring.serving.schemas import Deal, ProblemDetail

_EPOCH, _MICROSECOND = datetime(1970, 1, 1), timedelta(microseconds=1)
_NAT = np.iinfo(np.int64).min  # NaT as int64
#: The plausible years (as in files: earlier or later dates are mistakes, 9999-12-31 placeholders) in microseconds.
_FIRST, _AFTER = ((datetime(year, 1, 1) - _EPOCH) // _MICROSECOND for year in (PLAUSIBLE_YEARS[0], PLAUSIBLE_YEARS[1] + 1))
#: From this many deals on, their dates are converted by pandas.
_PANDAS_FROM = 100
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
    kinds = {text: classify(text) for text in {deal["stage"] for deal in deals}}
    for i, deal in enumerate(deals):
        kind = kinds[deal["stage"]][0]
        if kind != "open":
            reason = "only open deals can be scored" if kind in ("won", "lost") else "unknown stage"
            problems.append(ProblemDetail(field=f"deals[{i}].stage", message=f"{reason}: got {deal['stage']!r}; expected "
                                          f"one of the model's open stages {list(bundle.config.stages)}"))
    ids = [str(deal["deal_id"]) for deal in deals]
    if len(set(ids)) < len(ids):
        seen: dict[str, int] = {}
        for i, deal_id in enumerate(ids):
            if deal_id in seen:
                problems.append(ProblemDetail(field=f"deals[{i}].deal_id", message=f"duplicate deal_id {deal_id!r} "
                                              f"(also deals[{seen[deal_id]}]); each deal must appear once"))
            seen.setdefault(deal_id, i)
    created, entered, close = (_dates(deals, name, problems)
                               for name in ("created_at", "stage_entered_at", "expected_close_date"))
    for i in np.flatnonzero(created > as_of.to_datetime64()).tolist():
        problems.append(ProblemDetail(field=f"deals[{i}].created_at", message=f"{deals[i]['created_at']} is after as_of "
                                      f"{as_of}; a deal cannot be scored before it exists"))
    features, unknown, missing = _features(deals, bundle.features, problems)
    if problems:
        raise RequestProblems(problems)
    columns: dict[str, np.ndarray] = {
        "deal_id": np.array(ids, dtype=object),
        "stage": np.array([kinds[deal["stage"]][1] for deal in deals], dtype=object),
        "amount": np.array([deal["amount"] for deal in deals], dtype=float),
        "created_at": created,
        "stage_entered_at": entered,
        "expected_close_date": close,
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
    sent = set().union(*deals)
    unknown = sent - set(kinds) - set(DEAL_COLUMNS)  # status/closed_at of an open deal: nothing to use or warn about
    columns: dict[str, np.ndarray] = {}
    missing: dict[str, list[int]] = {}
    for name, kind in kinds.items():
        if name not in sent:
            missing[name] = list(range(len(deals)))
            continue
        values = _column([deal.get(name) for deal in deals], kind)
        if values is None:  # something unusual in the column: value by value, naming the bad ones
            values = [_feature_value(deal.get(name), kind) for deal in deals]
            for i, value in enumerate(values):
                if value is _BAD:
                    expected = "a number" if kind == "numeric" else "a string, number or boolean"
                    problems.append(ProblemDetail(field=f"deals[{i}].{name}", message=f"expected {expected} (or null), "
                                                  f"got {_short(deals[i][name])}"))
            values = [None if v is _BAD else v for v in values]
        missing[name] = [i for i, v in enumerate(values) if v is None] if None in values else []
        if kind == "numeric":
            columns[name] = np.array([np.nan if v is None else v for v in values] if missing[name] else values,
                                     dtype=float)
        else:
            columns[name] = np.array(values, dtype=object)
    return columns, unknown, missing


def _column(values: list[Any], kind: str) -> list[Any] | None:
    """The common cases at list speed: a numeric column of numbers (or numeric text) and None, a categorical
    column of text and None. None when the column needs :func:`_feature_value` value by value."""
    types = set(map(type, values))
    if kind == "numeric":
        if not types <= {int, float, str, type(None)}:
            return None
        try:
            numbers = [None if v is None else float(v) for v in values]
        except (ValueError, OverflowError):  # blank, not a number, or an integer beyond floats
            return None
        return numbers if all(v is None or math.isfinite(v) for v in numbers) else None
    if types <= {str, type(None)}:
        return [v if v is None else (v.strip() or None) for v in values]
    return None


_BAD = object()


def _feature_value(value: Any, kind: str) -> Any:
    """A JSON value as the feature's kind (None when missing), or _BAD."""
    if value is None:
        return None
    if kind == "numeric":
        if isinstance(value, bool):
            return _BAD
        if isinstance(value, (int, float)):
            try:
                number = float(value)
            except OverflowError:  # an integer beyond floats
                return _BAD
            return number if math.isfinite(number) else _BAD
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


def _dates(deals: list[Deal], name: str, problems: list[ProblemDetail]) -> np.ndarray:
    """The deals' datetimes ``name`` as one datetime64[us] column (missing: NaT), naive UTC (the data
    contract's convention: a zone is converted). Many dates go through pandas' conversion of datetime objects
    (several times faster than numpy's, than arithmetic on each date, and than a pydantic validator per date),
    a few by that arithmetic (pandas costs some 15 us a call). Dates outside the plausible years are problems
    (and NaT in the column)."""
    values = [deal.get(name) for deal in deals]
    many = len(values) >= _PANDAS_FROM
    micros = _pandas_micros(values) if many else None
    if micros is None:
        micros = np.array([_NAT if v is None else _utc_micros(v) for v in values], dtype=np.int64)
    if many:
        wrong = np.flatnonzero(((micros < _FIRST) | (micros >= _AFTER)) & (micros != _NAT)).tolist()
    else:  # a few numbers: in Python (numpy costs microseconds a call)
        wrong = [i for i, m in enumerate(micros.tolist()) if not _FIRST <= m < _AFTER and m != _NAT]
    for i in wrong:
        problems.append(ProblemDetail(field=f"deals[{i}].{name}", message=f"expected a date between {PLAUSIBLE_YEARS[0]} "
                                      f"and {PLAUSIBLE_YEARS[1]} (got {values[i]})"))
        micros[i] = _NAT
    return micros.view("datetime64[us]")


def _pandas_micros(values: list[datetime | None]) -> np.ndarray | None:
    """Microseconds since 1970 (UTC) of naive datetimes or datetimes all in one zone, None among them (NaT);
    None when pandas cannot convert them (zones mixed with naive dates or with each other, years beyond its range)."""
    try:
        return pd.DatetimeIndex(values).as_unit("us").asi8.copy()
    except (TypeError, ValueError):
        return None


def _utc_micros(value: datetime) -> int:
    """Microseconds since 1970 of a datetime, naive or with a zone (as UTC); _FIRST - 1 when UTC is out of range."""
    if value.tzinfo is not None:
        try:
            value = value.replace(tzinfo=None) - value.utcoffset()
        except OverflowError:  # e.g. 0001-01-01T00:00+00:01 is before the first datetime in UTC
            return _FIRST - 1
    return (value - _EPOCH) // _MICROSECOND
