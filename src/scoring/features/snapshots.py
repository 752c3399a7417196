"""As-of snapshots: the pipeline as it was known at past dates, labelled with what happened next.

A snapshot row is one deal open at one date T: its stage, days in that stage, age and stage moves,
computed only from stage entries at or before T, plus its amount and features. Its label is the
outcome (``won``/``lost``) and the days from T to it, if the outcome happened by the ``cutoff``;
otherwise the row is censored (``outcome == "open"``) and ``days_observed`` says for how long it
was watched. Dates on a regular grid sample deals the way scoring meets them (open at a random
date), so deals that close fast are neither over- nor under-represented.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from scoring.data.config import PipelineConfig
from scoring.data.contract import DealHistory, data_end
from scoring.data.signals import AMOUNT
from scoring.features.signals import signal_columns

DAY_SECONDS = 86400.0


@dataclass(frozen=True)
class SnapshotTable:
    """Snapshot rows and what could not be placed in time."""

    rows: pd.DataFrame
    cutoff: pd.Timestamp
    unplaced: int  # (deal, date) pairs where the deal was open but its stage at that date is unknown


def stage_events(data: DealHistory) -> pd.DataFrame:
    """Every known open-stage entry: ``deal_id``, ``stage``, ``entered_at``, sorted.

    With a stage history these are its rows. Without one (a Pipedrive deals export), a deal is known
    to have reached every stage up to its current one (a closed deal: the one it closed in; an ordered
    pipeline), entering the first at ``created_at`` and its current one at ``stage_entered_at`` (the
    last stage change); the stages between share that time in proportion to how long each stage's stays
    last where the export shows them whole (:func:`stage_scales`), which is an assumption (``validate``
    says so). Even shares read a stage that holds deals long (a proposal) as short for every deal that
    went past it, and its open deals, whose days there are real, as overdue: on Pipedrive-shaped demo
    exports of 5,000 deals the open pipeline's expected won revenue was 0.64-0.78 of the truth. Without
    ``stage_entered_at`` either (a Dynamics 365 export), every stage, the current one included, gets an
    even share of the deal's life (to its close, or to the data's end).
    Taking each deal only in its last stage would teach that deals never move forward, and put every deal
    in its final stage from the start: a stage that tells the outcome (the fixed percentages' holdout AUC
    0.96 on a Dynamics-shaped export, against 0.75 with the real history).
    """
    if data.has_history:
        events = data.history[["deal_id", "stage", "entered_at"]]
    else:
        deals = data.deals
        created = deals["created_at"].to_numpy(dtype="datetime64[us]")
        reached = deals["stage"].map(data.config.stage_order).to_numpy(dtype=int)
        end = deals["closed_at"].fillna(data_end(data)).to_numpy(dtype="datetime64[us]")
        scales = stage_scales(data)
        before = np.concatenate([[0.0], np.cumsum(scales)])  # the scales of the stages before each
        life = np.maximum(end - created, np.timedelta64(0, "us")).astype(np.int64)
        share_of_life = (life * before[reached] / (before[reached] + scales[reached])).astype(np.int64)
        last = deals["stage_entered_at"].to_numpy(dtype="datetime64[us]")
        last = np.where(np.isnat(last), created + share_of_life.astype("timedelta64[us]"), last)
        last = np.maximum(last, created)
        deal_ix = np.repeat(np.arange(len(deals)), reached + 1)
        step = np.arange(len(deal_ix)) - np.repeat(np.cumsum(reached + 1) - (reached + 1), reached + 1)
        # the time before the current stage, shared by the stages before it in proportion to their scales
        whole = before[reached[deal_ix]]
        share = np.divide(before[step], whole, out=np.zeros(len(step)), where=whole > 0)
        span = (last - created)[deal_ix].astype("timedelta64[us]").astype(np.int64)
        entered = created[deal_ix] + (span * share).astype(np.int64).astype("timedelta64[us]")
        events = pd.DataFrame({"deal_id": deals["deal_id"].to_numpy()[deal_ix],
                               "stage": np.asarray(data.config.stages, dtype=object)[step],
                               "entered_at": entered})
    return events.sort_values(["deal_id", "entered_at"], kind="stable").reset_index(drop=True)


#: Whole stays a stage needs for its own scale in :func:`stage_scales`; with fewer it takes the stages' median.
SCALE_STAYS = 20


def stage_scales(data: DealHistory) -> np.ndarray:
    """Per open stage, how long its stays last, where the deals export shows them whole: the median days from
    ``stage_entered_at`` to ``closed_at`` of the deals closed in that stage. A stage with fewer than
    :data:`SCALE_STAYS` such stays takes the median of the others' (all stages alike, as even shares, when
    none has enough); a stage no deal of the export is in (closed in it or open in it) takes 0: the deals
    passed it at once, or skipped it (a pipeline's stage its reps never use), and none is put there for a
    share of its life. Only the proportions between stages are used. Read from the whole export, as the shares
    themselves are: an export without history holds each deal's last state only, known at the export's date."""
    deals = data.deals
    present = np.bincount(deals["stage"].map(data.config.stage_order).dropna().to_numpy(dtype=int),
                          minlength=len(data.config.stages)) > 0
    whole = deals["closed_at"].notna() & deals["stage_entered_at"].notna()
    days = (deals.loc[whole, "closed_at"] - deals.loc[whole, "stage_entered_at"]).dt.total_seconds() / DAY_SECONDS
    by_stage = days.clip(lower=0.0).groupby(deals.loc[whole, "stage"].map(data.config.stage_order))
    scales = np.full(len(data.config.stages), np.nan)
    for stage, stays in by_stage:
        if len(stays) >= SCALE_STAYS:
            scales[int(stage)] = max(float(stays.median()), 1.0 / 24)  # an hour at least: every stage takes time
    known = scales[~np.isnan(scales)]
    scales = np.where(np.isnan(scales), float(np.median(known)) if len(known) else 1.0, scales)
    return np.where(present, scales, 0.0)


def sojourns(data: DealHistory, cutoff: pd.Timestamp) -> pd.DataFrame:
    """Every stay in a stage known by ``cutoff``: ``stage``, ``days`` and where it went (``to``; NaN if still there)."""
    events = stage_events(data)
    events = events[events["entered_at"] <= cutoff]
    deals = data.deals.set_index("deal_id")
    nxt_deal = events["deal_id"].shift(-1)
    same = nxt_deal.eq(events["deal_id"]).to_numpy()
    nxt_stage = events["stage"].shift(-1).to_numpy()
    nxt_time = events["entered_at"].shift(-1)
    closed = events["deal_id"].map(deals["closed_at"])
    status = events["deal_id"].map(deals["status"])
    resolved = closed.notna() & (closed <= cutoff)
    to = np.where(same, nxt_stage, np.where(resolved, status, None))
    end = nxt_time.where(same, closed.where(resolved, cutoff))
    days = (end - events["entered_at"]).dt.total_seconds().to_numpy() / DAY_SECONDS
    return pd.DataFrame({"deal_id": events["deal_id"].to_numpy(), "stage": events["stage"].to_numpy(),
                         "days": np.maximum(days, 0.0), "to": to})


def elapsed_days(later: np.ndarray | np.datetime64, earlier: np.ndarray) -> np.ndarray:
    """Days (with fractions) from ``earlier`` to ``later``: days in the stage and age, the one definition the
    snapshots of training and the state of deals to score share."""
    gap = np.asarray(later - earlier).astype("timedelta64[us]").astype(np.int64)
    return np.where(np.isnat(np.asarray(later - earlier)), np.nan, gap / 1e6 / DAY_SECONDS)


def snapshot_dates(start: pd.Timestamp, end: pd.Timestamp, every_days: int) -> pd.DatetimeIndex:
    """Dates from ``end`` back to ``start`` every ``every_days`` days (so ``end`` is always one)."""
    if every_days < 1:
        raise ValueError(f"every_days must be at least 1, got {every_days}")
    end = pd.Timestamp(end)
    count = int((end - pd.Timestamp(start)) / pd.Timedelta(days=every_days)) + 1
    return pd.DatetimeIndex([end - pd.Timedelta(days=every_days * i) for i in range(max(count, 1))][::-1])


def take_snapshots(data: DealHistory, dates: pd.DatetimeIndex | list[pd.Timestamp],
                   cutoff: pd.Timestamp | str | None = None) -> SnapshotTable:
    """Snapshot rows of every deal open at each date, labelled with outcomes known by ``cutoff``.

    ``cutoff`` defaults to the last date; no date may be after it. Nothing dated after a row's
    snapshot date shapes its state, and nothing after ``cutoff`` shapes any label.
    """
    dates = pd.DatetimeIndex(sorted(pd.DatetimeIndex(dates).unique()))
    until: pd.Timestamp = pd.Timestamp(cutoff) if cutoff is not None else dates[-1]
    if len(dates) and dates[-1] > until:
        raise ValueError(f"snapshot date {dates[-1].date()} is after the cutoff {until.date()}")
    deals = data.deals
    grid = dates.to_numpy(dtype="datetime64[us]")
    created = deals["created_at"].to_numpy(dtype="datetime64[us]")
    closed = deals["closed_at"].to_numpy(dtype="datetime64[us]")
    # A deal is open at T when created_at <= T < closed_at (or it never closed).
    ends = np.where(np.isnat(closed), np.datetime64("9999-12-31", "us"), closed)
    first = np.searchsorted(grid, created, side="left")
    last = np.searchsorted(grid, ends, side="left")
    counts = np.maximum(last - first, 0)
    deal_ix = np.repeat(np.arange(len(deals)), counts)
    offsets = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
    at = grid[np.repeat(first, counts) + offsets]
    rows = pd.DataFrame({"deal_id": deals["deal_id"].to_numpy()[deal_ix], "as_of": at, "_deal": deal_ix})
    rows, unplaced = _attach_state(rows, stage_events(data), data.config)
    if not data.has_history:  # moves are not known without a history (as when scoring an export's open deals)
        rows["stage_moves"] = np.nan
    rows = _attach_deal_columns(rows, data)
    rows = _label(rows, deals, until)
    return SnapshotTable(rows.drop(columns="_deal").reset_index(drop=True), until, unplaced)


def _attach_state(rows: pd.DataFrame, events: pd.DataFrame, config: PipelineConfig) -> tuple[pd.DataFrame, int]:
    order = config.stage_order
    ev = events.assign(stage_index=events["stage"].map(order).astype(int))
    ev["stage_moves"] = ev.groupby("deal_id").cumcount()
    ev["furthest_stage_index"] = ev.groupby("deal_id")["stage_index"].cummax()
    ev = ev.rename(columns={"entered_at": "stage_entered_at"}).sort_values("stage_entered_at", kind="stable")
    ev["deal_id"] = ev["deal_id"].astype(object)  # merge_asof needs identical key dtypes
    rows = rows.sort_values("as_of", kind="stable").assign(deal_id=lambda r: r["deal_id"].astype(object))
    merged = pd.merge_asof(rows, ev, left_on="as_of", right_on="stage_entered_at", by="deal_id",
                           direction="backward", allow_exact_matches=True)
    known = merged["stage"].notna()
    merged = merged[known].copy()
    merged["days_in_stage"] = elapsed_days(merged["as_of"].to_numpy(dtype="datetime64[us]"),
                                           merged["stage_entered_at"].to_numpy(dtype="datetime64[us]"))
    merged["stage_index"] = merged["stage_index"].astype(int)
    merged["stage_moves"] = merged["stage_moves"].astype(int)
    merged["furthest_stage_index"] = merged["furthest_stage_index"].astype(int)
    return merged.drop(columns="stage_entered_at"), int((~known).sum())


def _attach_deal_columns(rows: pd.DataFrame, data: DealHistory) -> pd.DataFrame:
    deals = data.deals
    ix = rows["_deal"].to_numpy()
    created = deals["created_at"].to_numpy(dtype="datetime64[us]")[ix]
    rows["age_days"] = elapsed_days(rows["as_of"].to_numpy(dtype="datetime64[us]"), created)
    rows["amount"] = deals["amount"].to_numpy()[ix]
    for name in data.features:
        if name in deals.columns:
            rows[name] = deals[name].to_numpy()[ix]
    if data.spec.features or data.spec.amount:  # signals at each row's date (SPEC 2.2's as-of rule)
        signals = signal_columns(rows["deal_id"].to_numpy(), rows["as_of"].to_numpy(dtype="datetime64[us]"),
                                 data.signals, data.spec)
        if AMOUNT in signals:
            known = ~pd.isna(signals[AMOUNT])
            rows.loc[known, "amount"] = signals.pop(AMOUNT)[known]
        for name, values in signals.items():
            rows[name] = values
    return rows


def as_often_unknown(table: SnapshotTable, data: DealHistory) -> SnapshotTable:
    """Training rows where an unknown amount tells no outcome: when lost deals' zeroed amounts are read as unknown
    (``data.erased_share`` of the lost deals, :class:`~scoring.data.contract.DealHistory`), as large a share of the
    other deals' amounts, won or not closed, is left out too, deal by deal at random (the same draw every time), so
    that only the known amounts teach, the same for every outcome. For fitting only: evaluation and scoring read
    every amount that was known."""
    if not data.erased_share:
        return table
    deals = data.deals
    masked = deals["status"].ne("lost").to_numpy() & (np.random.default_rng(0).random(len(deals)) < data.erased_share)
    hidden = table.rows["deal_id"].isin(deals.loc[masked, "deal_id"]).to_numpy()
    return replace(table, rows=table.rows.assign(amount=table.rows["amount"].mask(hidden)))


def _label(rows: pd.DataFrame, deals: pd.DataFrame, cutoff: pd.Timestamp) -> pd.DataFrame:
    ix = rows["_deal"].to_numpy()
    closed = deals["closed_at"].to_numpy(dtype="datetime64[us]")[ix]
    status = deals["status"].to_numpy()[ix]
    as_of = rows["as_of"].to_numpy(dtype="datetime64[us]")
    known = ~np.isnat(closed) & (closed <= np.datetime64(cutoff.to_datetime64(), "us"))
    rows["outcome"] = np.where(known, status, "open")
    rows["days_to_outcome"] = np.where(known, (closed - as_of) / np.timedelta64(1, "s") / DAY_SECONDS, np.nan)
    rows["days_observed"] = (np.datetime64(cutoff.to_datetime64(), "us") - as_of) / np.timedelta64(1, "s") / DAY_SECONDS
    return rows


def open_deal_columns(deals: Mapping[str, np.ndarray], as_of: pd.Timestamp, config: PipelineConfig,
                      features: list[str]) -> dict[str, np.ndarray]:
    """The snapshot state of open deals given column by column (canonical names, validated), at ``as_of``.

    Needs ``deal_id``, ``stage``, ``amount``, ``created_at`` and optionally ``stage_entered_at``;
    with no stage history, stage moves are unknown (NaN) and the furthest stage is the current one.
    The same arrays in give the same state whether they came from a file or from an API request.
    """
    order = config.stage_order
    now = np.datetime64(pd.Timestamp(as_of).to_datetime64(), "us")
    created = np.asarray(deals["created_at"], dtype="datetime64[us]")
    entered = np.asarray(deals["stage_entered_at"], dtype="datetime64[us]") if "stage_entered_at" in deals else created
    entered = np.where(np.isnat(entered), created, entered)
    stage = np.asarray(deals["stage"], dtype=object)
    stage_index = np.fromiter((order[s] for s in stage), dtype=int, count=len(stage))
    n = len(stage)
    rows: dict[str, np.ndarray] = {"deal_id": np.asarray(deals["deal_id"], dtype=object), "as_of": np.full(n, now),
            "stage": stage, "stage_index": stage_index, "stage_moves": np.full(n, np.nan),
            "furthest_stage_index": stage_index,
            "days_in_stage": elapsed_days(now, entered), "age_days": elapsed_days(now, created),
            "amount": np.asarray(deals["amount"], dtype=float)}
    for name in features:
        rows[name] = np.asarray(deals[name]) if name in deals else np.full(n, np.nan)
    return rows
