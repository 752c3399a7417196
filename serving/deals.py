"""Validated request deals -> columns (the same arrays a file gives), for the one contract of deals to score.

Pydantic has checked types, required fields and amounts, and parsed the dates; here the deals become
columns, each date column converted to naive UTC at once. What a model needs (stages it knows, feature
values of the right kind, no duplicate ids, plausible dates, nothing created after as_of) is checked by the
library, for files and requests alike (:func:`scoring.data.open_deals.check_open_deals`).
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd

from scoring.data.columns import fold
from scoring.data.config import DEAL_COLUMNS, PipelineConfig
from scoring.data.contract import latest_stage_entries
from scoring.data.open_deals import OPEN_DEAL_DATES
from scoring.data.problems import DataReport
from scoring.data.signals import SIGNAL_KEYS, DealSignals, read_signals, stage_fields
from scoring.errors import DealProblem, InvalidDeals
from scoring.serving.schemas import Deal

_EPOCH, _MICROSECOND = datetime(1970, 1, 1), timedelta(microseconds=1)
_NAT = np.iinfo(np.int64).min  # NaT as int64
#: One microsecond before 1970: where a date beyond the datetime range lands (then refused as implausible).
_BEFORE = -1
#: From this many deals on, their dates are converted by pandas.
_PANDAS_FROM = 100


def deal_columns(deals: list[Deal], sent: Sequence[Mapping[str, Any]], config: PipelineConfig) -> dict[str, Any]:
    """The deals as columns: the canonical fields (validated: ``deals``), dates as datetime64[us], and every other
    field as sent (``sent``: the same deals as the request holds them). A deal without ``stage_entered_at`` entered
    its stage when its ``history`` says (:func:`_stage_entries`)."""
    columns: dict[str, Any] = {
        "deal_id": [str(deal["deal_id"]) for deal in deals],
        "stage": [deal["stage"] for deal in deals],
        "amount": np.array([deal["amount"] for deal in deals], dtype=float),
        **{name: _dates(deals, name) for name in OPEN_DEAL_DATES},
    }
    columns["stage_entered_at"] = _stage_entries(deals, columns, config)
    others = set().union(*sent) - set(DEAL_COLUMNS) - SIGNAL_KEYS
    for name in sorted(others):
        columns[name] = [deal.get(name) for deal in sent]
    return columns


def _stage_entries(deals: list[Deal], columns: Mapping[str, Any], config: PipelineConfig) -> np.ndarray:
    """``stage_entered_at``, where a deal gives none, from the stage changes of its ``history`` (``StageName`` or
    ``dealstage`` entries, as Salesforce's field history and HubSpot's property history hold them): the start of
    its latest stay in its stage, as a stage history file gives it (:func:`scoring.data.contract.latest_stage_entries`)."""
    entered = columns["stage_entered_at"]
    fields = stage_fields(config, read=True)
    changes = [(str(deal["deal_id"]), None if entry["value"] is None else str(entry["value"]), entry["changed_at"])
               for deal, missing in zip(deals, np.isnat(entered)) if missing and "history" in deal
               for entry in deal["history"] if fold(entry["field"]) in fields]
    if not changes:
        return entered
    ids, stages, when = zip(*changes)
    entries = pd.DataFrame({"deal_id": ids, "stage": stages,
                            "when": np.array([_utc_micros(w) for w in when], dtype=np.int64).view("datetime64[us]")})
    found = latest_stage_entries(pd.Series(columns["deal_id"]), pd.Series(columns["stage"]), entries, config)
    return np.where(np.isnat(entered), found, entered)


def _dates(deals: list[Deal], name: str) -> np.ndarray:
    """The deals' datetimes ``name`` as one datetime64[us] column (missing: NaT), naive UTC (the data
    contract's convention: a zone is converted). Many dates go through pandas' conversion of datetime objects
    (several times faster than numpy's or than arithmetic on each date), a few by that arithmetic (pandas
    costs some 15 us a call)."""
    values = [deal.get(name) or None for deal in deals]  # "": an empty field, missing
    micros = _pandas_micros(values) if len(values) >= _PANDAS_FROM else None
    if micros is None:
        micros = np.array([_NAT if v is None else _utc_micros(v) for v in values], dtype=np.int64)
    return micros.view("datetime64[us]")


def _pandas_micros(values: list[datetime | None]) -> np.ndarray | None:
    """Microseconds since 1970 (UTC) of naive datetimes or datetimes all in one zone, None among them (NaT);
    None when pandas cannot convert them (zones mixed with naive dates or with each other, years beyond its range)."""
    try:
        return pd.DatetimeIndex(values).as_unit("us").asi8.copy()
    except (TypeError, ValueError):
        return None


def _utc_micros(value: datetime) -> int:
    """Microseconds since 1970 of a datetime, naive or with a zone (as UTC); _BEFORE when UTC is out of range."""
    if value.tzinfo is not None:
        try:
            value = value.replace(tzinfo=None) - value.utcoffset()
        except OverflowError:  # e.g. 0001-01-01T00:00+00:01 is before the first datetime in UTC
            return _BEFORE
    return (value - _EPOCH) // _MICROSECOND


def deal_signals(deals: Sequence[Mapping[str, Any]], config: PipelineConfig, strict: bool = False
                 ) -> DealSignals | None:
    """The deals' field changes (``history`` entries with ``field``, ``value``, ``changed_at``) and ``activities``,
    read by the same contract as the files (:func:`scoring.data.signals.read_signals`); None when no deal carries
    either key. A problem is refused (422) naming the entry, as ``deals[i].history[j].value``; with ``strict`` a row a
    file would set aside is refused too."""
    if not any(key in deal for deal in deals for key in SIGNAL_KEYS):
        return None
    changes: list[dict[str, Any]] = []
    activities: list[dict[str, Any]] = []
    where: dict[str, list[tuple[int, str]]] = {"field_history": [], "activities": []}
    for i, deal in enumerate(deals):
        deal_id = str(deal["deal_id"])
        for j, entry in enumerate(deal.get("history") or []):
            if "field" in entry:
                value = entry["value"]
                changes.append({"deal_id": deal_id, "field": entry["field"], "changed_at": entry["changed_at"],
                                "value": None if value is None else str(value)})
                where["field_history"].append((i, f"history[{j}]"))
        for j, entry in enumerate(deal.get("activities") or []):
            activities.append({"deal_id": deal_id, "occurred_at": entry["occurred_at"], "type": entry.get("type")})
            where["activities"].append((i, f"activities[{j}]"))
    report = DataReport()
    ids = pd.Series([str(deal["deal_id"]) for deal in deals], dtype=object)
    given = {key for deal in deals for key in SIGNAL_KEYS if key in deal}
    signals = read_signals(
        pd.DataFrame.from_records(changes, columns=["deal_id", "field", "value", "changed_at"])
        if "history" in given else None,
        pd.DataFrame.from_records(activities, columns=["deal_id", "occurred_at", "type"])
        if "activities" in given else None, ids, config, report)
    problems = located(report.strict() if strict else report, where, "value")
    if problems:
        raise InvalidDeals(problems)
    return signals


def located(report: DataReport, where: Mapping[str, Sequence[tuple[int, str]]], default: str) -> list[DealProblem]:
    """The errors of ``report`` on tables built from request deals, located in the request: ``where[source]``
    gives, per table row (row 2 is the first, as in a file), the deal's index and the entry's path in it
    (``history[3]``; empty for the deal itself), and the column names the field (``default`` without one). An
    error of a table not in ``where``, or of none of its rows, is located at its first row."""
    out = []
    for problem in report.errors:
        rows = where.get(problem.source)
        if not rows:
            continue
        for row in problem.rows or (2,):
            index, path = rows[min(max(row - 2, 0), len(rows) - 1)]
            name = problem.column or default
            out.append(DealProblem(index, f"{path}.{name}" if path else name, problem.message))
    return out


def deal_tables(deals: Sequence[Mapping[str, Any]]
                ) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, list[tuple[int, str]]]]:
    """Stored deals (open or closed) -> the two tables of a deal history (deals, stage history), dates as given
    (the contract reads and checks them as it does a file's), and where each table row came from in the request
    (for :func:`located`); field changes and activities: :func:`deal_signals`."""
    rows, entries = [], []
    where: dict[str, list[tuple[int, str]]] = {"deals": [(i, "") for i in range(len(deals))], "stage_history": []}
    for i, deal in enumerate(deals):
        row = {k: v for k, v in deal.items() if k not in SIGNAL_KEYS}
        row["deal_id"] = str(row["deal_id"])
        row.setdefault("amount", None)  # not given: blank, as in a file (the deal is kept, with no revenue)
        row.setdefault("status", "open")
        rows.append(row)
        for j, entry in enumerate(deal.get("history", [])):
            if "stage" in entry:
                entries.append({"deal_id": row["deal_id"], "stage": entry["stage"], "entered_at": entry["entered_at"]})
                where["stage_history"].append((i, f"history[{j}]"))
    return (pd.DataFrame.from_records(rows),
            pd.DataFrame.from_records(entries, columns=["deal_id", "stage", "entered_at"]), where)
