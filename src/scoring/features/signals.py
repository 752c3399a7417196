"""Signal features (SPEC 2.2) of deals at dates: one piece of code for training's snapshots, files and requests.

For each (deal, date T), from what was set or logged strictly before T (the as-of rule):

- ``close_date_pushes``: how many times the rep moved the expected close date later (the first date set is
  not a push); ``days_to_close_date``: from T to the close date set last (negative: overdue);
- ``activities_30d``: activities logged in the 30 days before T; ``days_since_activity``: since the last;
- each tracked categorical field (``forecast_category``, ``owner``, any other): the value set last;
- a tracked ``amount``: the amount set last (before its first change, that change's old value is not known
  and the first value set is used).

A deal with no change of a field before T has no value for it (missing), except the counts (0). Where
a kind of signal was not given at all (no field history, or no activities: ``DealSignals.given``), its
features are missing, not 0: nothing logged and nothing told are different things. When scoring at the
as-of date, a deal's own values (its ``expected_close_date``, its ``forecast_category``, ...) are its values
then; the field history fills them where the deal has none.
"""
from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from scoring.data.signals import AMOUNT, CLOSE_DATE, DealSignals, SignalSpec

DAY_US = 86_400_000_000
#: The window of ``activities_30d``, in days.
RECENT_DAYS = 30


class _Timeline:
    """Events of many deals on one sorted axis (deal code, then time), for as-of lookups by binary search."""

    def __init__(self, deal_ids: np.ndarray, times: np.ndarray, codes: pd.Index) -> None:
        code = codes.get_indexer(pd.Index(deal_ids, dtype=object)).astype(np.int64)  # -1: a deal not asked about
        keep = code >= 0
        self.code = code[keep]
        self.time = np.asarray(times, dtype="datetime64[us]").astype(np.int64)[keep]
        order = np.lexsort((self.time, self.code))
        self.code, self.time, self.index = self.code[order], self.time[order], np.flatnonzero(keep)[order]

    def count_before(self, code: np.ndarray, time: np.ndarray) -> np.ndarray:
        """Per query, how many of its deal's events are strictly before ``time``."""
        start = np.searchsorted(self.code, code, side="left")
        return _search(self.code, self.time, code, time) - start

    def last_before(self, code: np.ndarray, time: np.ndarray) -> np.ndarray:
        """Per query, the row (of the events given) of its deal's last event strictly before ``time``; -1: none."""
        if not len(self.code):
            return np.full(len(code), -1, dtype=np.int64)
        end = _search(self.code, self.time, code, time)
        prev = np.maximum(end - 1, 0)
        return np.where((end > 0) & (self.code[prev] == code), self.index[prev], -1)


def _search(codes: np.ndarray, times: np.ndarray, code: np.ndarray, time: np.ndarray) -> np.ndarray:
    """Per query (code, time), how many (codes, times) pairs (sorted lexically) come strictly before it: one
    sort of events and queries together, queries placed before events at the same moment (strictly before)."""
    if not len(codes):
        return np.zeros(len(code), dtype=np.int64)
    all_codes = np.concatenate([codes, code])
    all_times = np.concatenate([times, time])
    is_event = np.concatenate([np.ones(len(codes), dtype=np.int64), np.zeros(len(code), dtype=np.int64)])
    order = np.lexsort((is_event, all_times, all_codes))
    before = np.cumsum(is_event[order]) - is_event[order]
    out = np.empty(len(all_codes), dtype=np.int64)
    out[order] = before
    return out[len(codes):]


def signal_columns(deal_ids: np.ndarray, at: np.ndarray | pd.Timestamp, signals: DealSignals,
                   spec: SignalSpec, own: Mapping[str, np.ndarray] | None = None) -> dict[str, np.ndarray]:
    """The signal features of ``spec`` for each deal in ``deal_ids`` at its date in ``at`` (one date for all, or
    one per deal), and ``amount`` when the spec tracks it (NaN where not known). ``own``: the deals' own
    current values (``expected_close_date``, tracked categorical fields), which take precedence (scoring at the
    as-of date)."""
    ids = np.asarray(deal_ids, dtype=object).astype(str)
    n = len(ids)
    when = np.broadcast_to(np.asarray(pd.Timestamp(at).to_datetime64() if isinstance(at, pd.Timestamp) else at,
                                      dtype="datetime64[us]"), (n,)).astype(np.int64)
    own = own or {}
    out: dict[str, np.ndarray] = {}
    codes = pd.Index(pd.unique(ids), dtype=object)
    code = codes.get_indexer(pd.Index(ids, dtype=object)).astype(np.int64)
    fh = signals.field_history
    if spec.close_date:
        out |= _close_date(fh[fh["field"] == CLOSE_DATE], codes, code, when, own.get(CLOSE_DATE))
        if "field_history" not in signals.given:
            out["close_date_pushes"][:] = np.nan
    if spec.activities and "activities" not in signals.given:
        out |= {"activities_30d": np.full(n, np.nan), "days_since_activity": np.full(n, np.nan)}
    elif spec.activities:
        act = signals.activities
        line = _Timeline(act["deal_id"].to_numpy(dtype=object), act["occurred_at"].to_numpy(), codes)
        out["activities_30d"] = (line.count_before(code, when)
                                 - line.count_before(code, when - RECENT_DAYS * DAY_US)).astype(float)
        last = line.last_before(code, when)
        times = act["occurred_at"].to_numpy(dtype="datetime64[us]").astype(np.int64)
        out["days_since_activity"] = np.where(last >= 0, (when - times[np.maximum(last, 0)]) / DAY_US, np.nan) \
            if len(times) else np.full(n, np.nan)
    for name in spec.categories:
        out[name] = _value_at(fh[fh["field"] == name], codes, code, when)
        if name in own:
            given = np.asarray(own[name], dtype=object)
            out[name] = np.where(pd.isna(given), out[name], given)
    if spec.amount:
        changes = fh[fh["field"] == AMOUNT]
        value = _value_at(changes, codes, code, when)
        first = _first_value(changes, codes, code)
        out[AMOUNT] = np.where(pd.isna(value), first, value).astype(float)
    return out


def _value_at(changes: pd.DataFrame, codes: pd.Index, code: np.ndarray, when: np.ndarray) -> np.ndarray:
    """The value (text) of one field set last before each query's date; None where none was."""
    values = np.append(changes["value"].to_numpy(dtype=object), np.array([None], dtype=object))
    return values[_last_at(changes, codes, code, when, len(values) - 1)]


def _last_at(changes: pd.DataFrame, codes: pd.Index, code: np.ndarray, when: np.ndarray, none: int) -> np.ndarray:
    """The row of ``changes`` set last before each query's date; ``none`` where none was."""
    line = _Timeline(changes["deal_id"].to_numpy(dtype=object), changes["changed_at"].to_numpy(), codes)
    last = line.last_before(code, when)
    return np.where(last >= 0, last, none)


def _first_value(changes: pd.DataFrame, codes: pd.Index, code: np.ndarray) -> np.ndarray:
    """The first value set of one field per query's deal (NaN where none)."""
    first = changes.drop_duplicates("deal_id")  # sorted by deal and time
    table = dict(zip(codes.get_indexer(pd.Index(first["deal_id"], dtype=object)).tolist(), first["value"].tolist(),
                     strict=True))
    return np.array([table.get(c) for c in code.tolist()], dtype=object)


def _close_date(changes: pd.DataFrame, codes: pd.Index, code: np.ndarray, when: np.ndarray,
                own: np.ndarray | None) -> dict[str, np.ndarray]:
    """Pushes of the close date before each query's date, and the days from that date to the close date then
    (the deal's ``own`` date first, where given)."""
    dates = pd.to_datetime(changes["value"], errors="coerce").to_numpy(dtype="datetime64[us]").astype(np.int64)
    ids = changes["deal_id"].to_numpy(dtype=object)
    later = np.zeros(len(ids), dtype=bool)
    if len(ids):
        same = ids[1:] == ids[:-1]
        valid = (dates[1:] != np.iinfo(np.int64).min) & (dates[:-1] != np.iinfo(np.int64).min)
        later[1:] = same & valid & (dates[1:] > dates[:-1])
    pushes = changes[later]
    line = _Timeline(pushes["deal_id"].to_numpy(dtype=object), pushes["changed_at"].to_numpy(), codes)
    # the dates parsed once (the contract wrote them as YYYY-MM-DD), then looked up per query; NaT where none
    parsed = np.append(dates, np.iinfo(np.int64).min).view("datetime64[us]")
    date = parsed[_last_at(changes, codes, code, when, len(dates))]
    if own is not None:
        own = np.asarray(own, dtype="datetime64[us]")
        date = np.where(np.isnat(own), date, own)
    days = np.where(np.isnat(date), np.nan, (date.astype(np.int64) - when) / DAY_US)
    return {"close_date_pushes": line.count_before(code, when).astype(float), "days_to_close_date": days}
