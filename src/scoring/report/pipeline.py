"""What the managers' page and ``/v1/pipeline/*`` show of the stored pipeline: the bookings forecast as of a
date, its snapshots through the period, the deals that put it at risk, and the accuracy of past periods'
forecasts at fixed distances before their end.

The store keeps each deal's latest state, its stage history and the changes successive imports found; as of
an earlier date, a deal is open if it was created by then and not yet closed, in the stage its history says
it was in then, with the amount, the rep's close date and the other fields (segment, owner, ...) it had then
(a later import's change gives back the value before it): a forecast of a past date reads what was known at
that date.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from scoring.bundle import ModelBundle
from scoring.data.signals import DealSignals, SignalSpec
from scoring.data.tables import lookup
from scoring.features.signals import signal_columns
from scoring.forecast.backtest import accuracy
from scoring.forecast.revenue import PERIODS, Forecast, forecast
from scoring.scores import current_period_end, score_deals
from scoring.store.pipeline import features_of

#: Fields of an open deal given back as they were at an earlier date, and how their stored text is read.
ROLLED_BACK: dict[str, Callable[[pd.Series], pd.Series]] = {
    "amount": lambda text: pd.to_numeric(text, errors="coerce"),
    "expected_close_date": lambda text: pd.to_datetime(text, errors="coerce"),
}
#: Days before a period's end at which past forecasts are judged.
DISTANCES = (90, 60, 30, 7)
#: How many deals the page lists as at risk.
AT_RISK = 15


@dataclass(frozen=True)
class StoredPipeline:
    """The store's deals (canonical columns and features) and stage history, read once, and the signals (the CRM's
    field history and activities) of the deals open at a date; the pipeline as of a date is worked out once per
    date."""

    deals: pd.DataFrame
    history: pd.DataFrame
    #: The signals of the deals open at a date (the store reads only those: ``PipelineStore.signals``).
    signals_of: Callable[[pd.Timestamp], DealSignals] = field(default=lambda _: DealSignals(), repr=False)
    #: The changes imports found (``PipelineStore.field_changes``: deal_id, field, old_value, new_value, changed_at).
    changes: pd.DataFrame = field(default_factory=lambda: no_changes(), repr=False)
    _signals: dict[pd.Timestamp, DealSignals] = field(default_factory=dict, repr=False, compare=False)
    _open: dict[pd.Timestamp, pd.DataFrame] = field(default_factory=dict, repr=False, compare=False)

    def known_at(self, as_of: pd.Timestamp) -> pd.DataFrame:
        """The deals as known at ``as_of``: created by then; closed only if closed by then."""
        deals = self.deals[self.deals["created_at"] <= as_of].copy()
        later = deals["closed_at"] > as_of
        deals.loc[later, "status"] = "open"
        deals.loc[later, "closed_at"] = pd.NaT
        return deals

    def open_at(self, as_of: pd.Timestamp) -> pd.DataFrame:
        """The deals open at ``as_of``, in the stage they were in then (from the history where it has one), with
        the amount, the rep's close date and the other fields they had then."""
        if as_of not in self._open:
            if len(self._open) >= 8:
                self._open.pop(next(iter(self._open)))
            self._open[as_of] = self._open_at(as_of)
        return self._open[as_of].copy()

    def signals_at(self, as_of: pd.Timestamp) -> DealSignals:
        """The signals of the deals open at ``as_of`` (read once per date)."""
        if as_of not in self._signals:
            if len(self._signals) >= 8:
                self._signals.pop(next(iter(self._signals)))
            self._signals[as_of] = self.signals_of(as_of)
        return self._signals[as_of]

    def _open_at(self, as_of: pd.Timestamp) -> pd.DataFrame:
        deals = self.known_at(as_of)
        deals = deals[deals["status"] == "open"].copy()
        if not self.history.empty:
            seen = self.history[self.history["entered_at"] <= as_of].sort_values("entered_at", kind="stable")
            last = seen.groupby("deal_id").last()
            where = deals["deal_id"].map(last["stage"])
            known = where.notna()
            deals.loc[known, "stage"] = where[known]
            deals.loc[known, "stage_entered_at"] = lookup(deals.loc[known, "deal_id"], last["entered_at"])
        # Moved to its stage after as_of, with no stage history from before: since when it was in its stage
        # then is not known (the forecast says so), not a date to come.
        deals.loc[deals["stage_entered_at"] > as_of, "stage_entered_at"] = pd.NaT
        deals = _values_at(deals, self.changes, as_of)
        return deals.drop(columns=["status", "closed_at"]).reset_index(drop=True)


def pipeline_forecast(bundle: ModelBundle, pipeline: StoredPipeline, as_of: pd.Timestamp, period: str,
                      periods: int, model_info: dict[str, str] | None = None) -> Forecast:
    """The bookings forecast of the stored pipeline as of ``as_of`` (booked counted from the stored deals)."""
    return forecast(bundle, pipeline.open_at(as_of), as_of, period, periods, model_info=model_info,
                    history=pipeline.known_at(as_of), signals=pipeline.signals_at(as_of))


#: The periods a forecast snapshot keeps: the current quarter and the current month.
SNAPSHOT_PERIODS = ("quarter", "month")
#: How many periods the managers' page forecasts; snapshots are taken of the same forecast, so a snapshot
#: holds the very figures the page showed (and taking one warms the page).
PAGE_PERIODS = 4


def current_snapshots(forecast_of: Callable[[pd.Timestamp, str], Forecast | None], trigger: str,
                      model_version: str, taken_at: pd.Timestamp) -> list[dict[str, Any]]:
    """The snapshot rows of the current quarter's and month's forecasts (``forecast_of(day, period)``, as the
    page makes them), taken at ``taken_at``."""
    rows = []
    for period in SNAPSHOT_PERIODS:
        result = forecast_of(taken_at.normalize(), period)
        if result is not None:
            rows.append(snapshot_row(result, trigger, model_version, taken_at))
    return rows


def snapshot_row(result: Forecast, trigger: str, model_version: str, taken_at: pd.Timestamp) -> dict[str, Any]:
    """The first period of a forecast as a row of the store's forecast snapshots."""
    start, end = result.bounds[0]
    return {"taken_on": taken_at.date(), "taken_at": taken_at.to_pydatetime(), "trigger": trigger,
            "period": result.period, "period_start": pd.Period(start, PERIODS[result.period]).start_time.date(),
            "period_end": end.date(), "model_version": model_version, "booked": float(result.booked[0]),
            "pipeline": float(result.pipeline.expected[0]), "new_deals": float(result.new_deals.expected[0]),
            "bookings": float(result.bookings.expected[0]), "bookings_p10": float(result.bookings.quantiles[0, 0]),
            "bookings_p90": float(result.bookings.quantiles[0, 2]), "fixed": float(result.fixed_expected[0])}


def past_accuracy(snapshots: pd.DataFrame, pipeline: StoredPipeline, as_of: pd.Timestamp) -> pd.DataFrame:
    """For every period that ended before ``as_of``: what it booked, and the model's and the fixed percentages'
    accuracy as forecast ``DISTANCES`` days before its end (the latest snapshot on or before that day)."""
    rows = []
    if snapshots.empty:
        return pd.DataFrame(columns=["period_start", "period_end", "actual", "days_before", "model", "fixed"])
    won = pipeline.deals[pipeline.deals["status"] == "won"]
    for (start, end), group in snapshots.groupby(["period_start", "period_end"]):
        if end >= as_of.normalize():
            continue
        booked = won[(won["closed_at"] >= start) & (won["closed_at"] < end + pd.Timedelta(days=1))]
        actual = float(np.nansum(booked["amount"].to_numpy(dtype=float)))
        for days in DISTANCES:
            taken = group[group["taken_on"] <= end - pd.Timedelta(days=days)]
            if taken.empty:
                continue
            last = taken.iloc[-1]
            rows.append({"period_start": start, "period_end": end, "actual": actual, "days_before": days,
                         "model": float(accuracy(np.array([actual]), np.array([last["bookings"]]))[0]),
                         "fixed": float(accuracy(np.array([actual]), np.array([last["booked"] + last["fixed"]]))[0])})
    return pd.DataFrame.from_records(rows)


def deals_at_risk(bundle: ModelBundle, open_deals: pd.DataFrame, as_of: pd.Timestamp, period: str,
                  signals: DealSignals | None = None, changes: pd.DataFrame | None = None) -> pd.DataFrame:
    """The open deals that put this period at risk, largest amount first: stale; close date pushed out
    :data:`PUSHED` times or more (by the CRM's field history in ``signals``, else by the changes imports found,
    ``changes``); or expected to close in the period by the rep while the model gives them little chance to win
    in it."""
    if open_deals.empty:
        return pd.DataFrame()
    scores, _ = score_deals(bundle, open_deals, as_of, top=0, signals=signals)
    end = current_period_end(as_of, period)
    close = (pd.to_datetime(open_deals["expected_close_date"]) if "expected_close_date" in open_deals.columns
             else pd.Series(pd.NaT, index=open_deals.index))
    due = (close <= end).to_numpy()
    unlikely = scores["win_probability_this_period"].to_numpy() < 0.2
    pushes = _pushes(open_deals["deal_id"], as_of, signals, changes)
    stale = scores["stale"].to_numpy()
    risky = stale | (pushes >= PUSHED) | (due & unlikely)
    out = scores.loc[risky, ["deal_id", "stage", "amount", "win_probability", "win_probability_this_period",
                             "fixed_probability", "days_in_stage", "stale"]].copy()
    out["expected_close_date"] = close[risky].dt.date.to_numpy()
    out["owner"] = open_deals.loc[risky, "owner"].to_numpy() if "owner" in open_deals.columns else ""
    out["pushes"] = pushes[risky]
    out["why"] = np.where(stale[risky], "stale in its stage",
                          np.where(pushes[risky] >= PUSHED, [f"close date pushed out {n:.0f} times" for n in pushes[risky]],
                                   "due this period, unlikely to close"))
    return out.sort_values("amount", ascending=False).head(AT_RISK).reset_index(drop=True)


#: Close date pushed out this many times: a deal at risk.
PUSHED = 2


def _pushes(deal_ids: pd.Series, as_of: pd.Timestamp, signals: DealSignals | None,
            changes: pd.DataFrame | None) -> np.ndarray:
    """How often each deal's close date was moved later before ``as_of``: by the CRM's field history when the store
    has one, else by the changes successive imports found."""
    ids = deal_ids.to_numpy(dtype=object)
    if signals is not None and "field_history" in signals.given:
        return signal_columns(ids, as_of, signals, SignalSpec(close_date=True))["close_date_pushes"]
    if changes is None or changes.empty:
        return np.zeros(len(ids))
    dates = changes[(changes["field"] == "expected_close_date") & (changes["changed_at"] < as_of)]
    later = pd.to_datetime(dates["new_value"], errors="coerce") > pd.to_datetime(dates["old_value"], errors="coerce")
    counts = dates.loc[later.to_numpy(), "deal_id"].value_counts()
    return pd.Series(ids).map(counts).fillna(0).to_numpy(dtype=float)


def pipeline_flow(pipeline: StoredPipeline, start: pd.Timestamp, end: pd.Timestamp,
                  period: str = "quarter") -> dict[str, Any]:
    """How the open pipeline moved from the start of day ``start`` to the end of day ``end``: its value then,
    what was created, won, lost and removed (deleted in the CRM), amounts raised and cut, close dates pushed
    out of and pulled into the period containing ``end``, its value at the end; in total and per owner (and
    the start and end values per stage). Amount and close-date changes come from the store's field history
    (what successive imports found changed)."""
    period_end = current_period_end(end, period)
    end = end.normalize() + pd.Timedelta(days=1)  # the end of that day
    before, after = pipeline.open_at(start), pipeline.open_at(end)  # with the amounts they had then
    deals, changes = pipeline.deals, pipeline.changes
    amount = deals.set_index("deal_id")["amount"].astype(float)
    owner = deals.set_index("deal_id")["owner"].astype(str) if "owner" in deals.columns else None
    window = changes[(changes["changed_at"] > start) & (changes["changed_at"] <= end)]
    moved = window[window["field"] == "amount"]
    delta = (pd.to_numeric(moved["new_value"], errors="coerce") - pd.to_numeric(moved["old_value"], errors="coerce"))
    close = window[window["field"] == "expected_close_date"]
    old, new = pd.to_datetime(close["old_value"]), pd.to_datetime(close["new_value"])
    pushed = close[(old <= period_end) & ((new > period_end) | new.isna())]
    pulled = close[((old > period_end) | old.isna()) & (new <= period_end)]
    opened = deals[~(deals["closed_at"] < deals["created_at"].dt.normalize())]  # not the closed deals imported
    created = opened[(opened["created_at"] > start) & (opened["created_at"] <= end)]
    closed = opened[(opened["closed_at"] > start) & (opened["closed_at"] <= end)]
    # (name, deal ids, values): each part of the flow, summed in total and per owner
    parts = [("start_value", before["deal_id"], before["amount"]), ("created", created["deal_id"], created["amount"]),
             ("won", closed.loc[closed["status"] == "won", "deal_id"], closed.loc[closed["status"] == "won", "amount"]),
             ("lost", closed.loc[closed["status"] == "lost", "deal_id"], closed.loc[closed["status"] == "lost", "amount"]),
             ("removed", closed.loc[closed["status"] == "deleted", "deal_id"],
              closed.loc[closed["status"] == "deleted", "amount"]),
             ("raised", moved["deal_id"], delta.clip(lower=0)), ("cut", moved["deal_id"], (-delta).clip(lower=0)),
             ("pushed_out", pushed["deal_id"], pushed["deal_id"].map(amount)),
             ("pulled_in", pulled["deal_id"], pulled["deal_id"].map(amount)), ("end_value", after["deal_id"], after["amount"])]
    counted = {"start_value": "start_deals", "created": "created_deals", "won": "won_deals", "lost": "lost_deals",
               "removed": "removed_deals",
               "pushed_out": "pushed_out_deals", "pulled_in": "pulled_in_deals", "end_value": "end_deals"}

    def summary(group: pd.Series | None) -> dict[str, dict[str, float | int]]:
        out: dict[str, dict[str, float | int]] = {}
        for name, ids, values in parts:
            keys = ids.map(group).fillna("(none)") if group is not None else pd.Series("all", index=ids.index)
            values = pd.Series(values.to_numpy(dtype=float), index=ids.index)
            grouped = values.groupby(keys.to_numpy())
            for key, total in grouped.sum(min_count=0).items():
                out.setdefault(str(key), {})[name] = round(float(total), 2)
            if name in counted:
                for key, count in grouped.size().items():
                    out.setdefault(str(key), {})[counted[name]] = int(count)
        template = {**{name: 0.0 for name, _, _ in parts}, **{c: 0 for c in counted.values()}}
        return {key: {**template, **values} for key, values in out.items()}

    total = summary(None).get("all", {**{name: 0.0 for name, _, _ in parts}, **{c: 0 for c in counted.values()}})
    by_owner = [{"key": key, **values} for key, values in summary(owner).items()] if owner is not None else []
    by_stage = []
    for stage in dict.fromkeys([*before["stage"], *after["stage"]]):
        b, a = before[before["stage"] == stage], after[after["stage"] == stage]
        by_stage.append({"key": str(stage), "start_value": _sum(b["amount"]), "start_deals": len(b),
                         "end_value": _sum(a["amount"]), "end_deals": len(a)})
    return {"from": str(start.date()), "to": str((end - pd.Timedelta(days=1)).date()),
            "period_end": str(period_end.date()),
            "total": total, "owner": sorted(by_owner, key=lambda r: -float(r["end_value"])), "stage": by_stage}


def no_changes() -> pd.DataFrame:
    """The changes of a store no import has changed anything in (the columns of ``PipelineStore.field_changes``)."""
    return pd.DataFrame({"deal_id": pd.Series(dtype=object), "field": pd.Series(dtype=object),
                         "old_value": pd.Series(dtype=object), "new_value": pd.Series(dtype=object),
                         "changed_at": pd.Series(dtype="datetime64[ns]")})


def _values_at(deals: pd.DataFrame, changes: pd.DataFrame, when: pd.Timestamp) -> pd.DataFrame:
    """``deals`` with the amounts, close dates (:data:`ROLLED_BACK`) and other fields (segment, owner, ...: the
    store's ``features``) they had at ``when``: the store keeps the latest, so the first change after ``when``
    gives back the value before it."""
    later = changes[changes["field"].isin([*ROLLED_BACK, "features"]) & (changes["changed_at"] > when)]
    if later.empty:
        return deals
    # the first change's old value as it is, blank included (groupby's first() would skip a blank for a later one)
    first = (later.sort_values("changed_at", kind="stable").drop_duplicates(["field", "deal_id"])
             .set_index(["field", "deal_id"])["old_value"])
    fields = set(first.index.get_level_values(0))
    out = deals.copy()
    for name, read in ROLLED_BACK.items():
        if name not in fields or name not in out.columns:
            continue
        then = read(first.loc[name])
        known = out["deal_id"].isin(then.index)
        out.loc[known, name] = out.loc[known, "deal_id"].map(then).to_numpy()
    if "features" in fields:  # each changed deal's fields as they were: a field it did not have then is blank
        old = first.loc["features"]
        then = pd.DataFrame.from_records([features_of(text) if text else {} for text in old], index=old.index)
        known = out["deal_id"].isin(then.index)
        for name in then.columns.intersection(out.columns):
            values = out[name].to_numpy(dtype=object).copy()
            values[known.to_numpy()] = out.loc[known, "deal_id"].map(then[name]).to_numpy()
            out[name] = pd.Series(values, index=out.index).infer_objects()  # numbers stay numbers
    return out


def _sum(values: pd.Series) -> float:
    return round(float(np.nansum(values.to_numpy(dtype=float))), 2)
