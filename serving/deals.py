"""Validated request deals -> columns (the same arrays a file gives), for the one contract of deals to score.

Pydantic has checked types, required fields and amounts, and parsed the dates; here the deals become
columns, each date column converted to naive UTC at once. What a model needs (stages it knows, feature
values of the right kind, no duplicate ids, plausible dates, nothing created after as_of) is checked by the
library, for files and requests alike (:func:`scoring.data.open_deals.check_open_deals`).
"""
from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd

from scoring.data.config import DEAL_COLUMNS
from scoring.data.open_deals import OPEN_DEAL_DATES
from scoring.serving.schemas import Deal, StoredDeal

_EPOCH, _MICROSECOND = datetime(1970, 1, 1), timedelta(microseconds=1)
_NAT = np.iinfo(np.int64).min  # NaT as int64
#: One microsecond before 1970: where a date beyond the datetime range lands (then refused as implausible).
_BEFORE = -1
#: From this many deals on, their dates are converted by pandas.
_PANDAS_FROM = 100


def deal_columns(deals: list[Deal]) -> dict[str, Any]:
    """The deals as columns: the canonical fields, dates as datetime64[us], and every other field as sent."""
    columns: dict[str, Any] = {
        "deal_id": [str(deal["deal_id"]) for deal in deals],
        "stage": [deal["stage"] for deal in deals],
        "amount": np.array([deal["amount"] for deal in deals], dtype=float),
        **{name: _dates(deals, name) for name in OPEN_DEAL_DATES},
    }
    sent = set().union(*deals) - set(DEAL_COLUMNS)
    for name in sorted(sent):
        columns[name] = [deal.get(name) for deal in deals]
    return columns


def _dates(deals: list[Deal], name: str) -> np.ndarray:
    """The deals' datetimes ``name`` as one datetime64[us] column (missing: NaT), naive UTC (the data
    contract's convention: a zone is converted). Many dates go through pandas' conversion of datetime objects
    (several times faster than numpy's or than arithmetic on each date), a few by that arithmetic (pandas
    costs some 15 us a call)."""
    values = [deal.get(name) for deal in deals]
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


def deal_tables(deals: list[StoredDeal]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Stored deals (open or closed) -> the two tables of a deal history (deals, stage history), dates as given
    (the contract reads and checks them as it does a file's)."""
    rows, entries = [], []
    for deal in deals:
        row = {k: v for k, v in deal.items() if k != "history"}
        row["deal_id"] = str(row["deal_id"])
        row.setdefault("status", "open")
        rows.append(row)
        entries += [{"deal_id": row["deal_id"], "stage": e["stage"], "entered_at": e["entered_at"]}
                    for e in deal.get("history", [])]
    return (pd.DataFrame.from_records(rows),
            pd.DataFrame.from_records(entries, columns=["deal_id", "stage", "entered_at"]))
