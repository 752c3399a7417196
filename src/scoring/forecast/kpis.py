"""Pipeline health: the classic KPIs, from the deal history as it was known at an as-of date.

Conversion rate from stage to stage, win rate, sales-cycle length, average deal size, lead
velocity rate (growth of new qualified leads month over month), stale deals (longer in their
stage than 90 % of past stays there) and the bottleneck stage (the lowest conversion onwards).
Nothing after ``as_of`` is used, so a backtest can ask what the KPIs said back then.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from scoring.data.contract import DealHistory
from scoring.data.tables import is_in, lookup
from scoring.features.dataset import TrainingSet
from scoring.features.snapshots import DAY_SECONDS, sojourns, stage_events
from scoring.models.transitions import STALE_QUANTILE, StageTransitionModel

#: Win rate, sales cycle and deal size look at deals closed in this many days before as_of.
WINDOW_DAYS = 365
#: At most this many stale deals are listed (all are counted).
STALE_LIST = 100


@dataclass(frozen=True)
class Conversion:
    stage: str
    to: str  # the next stage, or "won" from the last one
    decided: int  # deals that reached the stage and have left it (moved on, won or lost) by as_of
    converted: int
    rate: float
    median_days: float  # median stay in the stage, among stays that ended


@dataclass(frozen=True)
class StaleDeal:
    deal_id: str
    stage: str
    days_in_stage: float
    normal_days: float  # the stage-transition model's stale_after_days of this stage


@dataclass
class PipelineKpis:
    """The KPIs at ``as_of``; ``sentences`` says each in one line of plain language."""

    as_of: str
    window_days: int
    conversion: list[Conversion]
    won: int
    lost: int
    win_rate: float
    sales_cycle_median_days: float
    sales_cycle_mean_days: float
    average_deal_size: float
    new_qualified_by_month: dict[str, int]
    lead_velocity_rate: float
    open_deals: int
    stale_count: int
    stale_by_stage: dict[str, int]
    stale: list[StaleDeal] = field(default_factory=list)
    bottleneck: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (NaN becomes None)."""
        return _clean(asdict(self))

    def sentences(self) -> list[str]:
        lines = []
        if self.won + self.lost:
            lines.append(f"Win rate over the last {self.window_days} days: {self.win_rate:.0%} "
                         f"({self.won:,} won of {self.won + self.lost:,} closed).")
        if not np.isnan(self.sales_cycle_median_days):
            lines.append(f"Won deals took {self.sales_cycle_median_days:.0f} days from creation to close (median); "
                         f"the average won deal was worth {self.average_deal_size:,.0f}.")
        if self.bottleneck:
            b = next(c for c in self.conversion if c.stage == self.bottleneck)
            lines.append(f"Bottleneck: {b.stage}, where only {b.rate:.0%} of deals move on to {b.to} "
                         f"(median {b.median_days:.0f} days there).")
        months = list(self.new_qualified_by_month.items())
        if len(months) >= 2 and not np.isnan(self.lead_velocity_rate):
            (prev_m, prev_n), (last_m, last_n) = months[-2], months[-1]
            lines.append(f"Lead velocity: {last_n:,} new qualified leads in {last_m}, "
                         f"{self.lead_velocity_rate:+.0%} on {prev_m} ({prev_n:,}).")
        if self.open_deals:
            lines.append(f"{self.stale_count:,} of {self.open_deals:,} open deals ({self.stale_count / self.open_deals:.0%}) "
                         f"have sat in their stage longer than {STALE_QUANTILE:.0%} of past deals did.")
        return lines


def pipeline_kpis(data: DealHistory, as_of: pd.Timestamp | str | None = None, window_days: int = WINDOW_DAYS,
                  min_decided: int = 10, stale_after: np.ndarray | None = None) -> PipelineKpis:
    """The classic pipeline KPIs from what was known at ``as_of`` (default: the last creation date).

    The bottleneck is the stage with the lowest conversion among those with ``min_decided`` deals decided.
    """
    deals = data.deals
    when: pd.Timestamp = pd.Timestamp(as_of) if as_of is not None else deals["created_at"].max()
    config = data.config
    order = config.stage_order
    known = deals[deals["created_at"] <= when]
    closed_by = known["closed_at"].notna() & (known["closed_at"] <= when)
    status = known["status"].where(closed_by, "open")

    events = stage_events(data)
    events = events[(events["entered_at"] <= when).to_numpy() & is_in(events["deal_id"], known["deal_id"])]
    events = events.assign(index=events["stage"].map(order).astype(int))
    furthest = events.groupby("deal_id")["index"].max()
    # A deal with no stage entry known by as_of was in the first stage as far as anyone knew then.
    furthest = known["deal_id"].map(furthest).fillna(0).astype(int).to_numpy()
    won_by = status.eq("won").to_numpy()
    lost_by = status.eq("lost").to_numpy()
    if data.has_history:
        entered = events.groupby("index")["deal_id"].agg(set)
        reached = {i: is_in(known["deal_id"], entered.get(i, set())) for i in order.values()}
    else:  # no history: deals are taken to have moved through the pipeline in order
        reached = {i: furthest >= i for i in order.values()}

    stays = sojourns(data, when)
    stays = stays[is_in(stays["deal_id"], known["deal_id"])]
    ended = stays[stays["to"].notna()]
    conversion = []
    for stage, i in order.items():
        moved_on = (furthest > i) | won_by
        decided = reached[i] & (moved_on | lost_by)
        converted = reached[i] & moved_on
        n, c = int(decided.sum()), int(converted.sum())
        days = ended.loc[ended["stage"] == stage, "days"]
        conversion.append(Conversion(stage=stage, to=config.stages[i + 1] if i + 1 < len(config.stages) else "won",
                                     decided=n, converted=c, rate=c / n if n else float("nan"),
                                     median_days=float(days.median()) if len(days) else float("nan")))
    rated = [c for c in conversion if c.decided >= min_decided]
    bottleneck = min(rated, key=lambda c: c.rate).stage if rated else None

    window = closed_by & (known["closed_at"] > when - pd.Timedelta(days=window_days))
    if not window.any():
        window = closed_by  # a quiet year: use all of history
    recent = known[window]
    won = recent[recent["status"] == "won"]
    cycle = (won["closed_at"] - won["created_at"]).dt.total_seconds() / DAY_SECONDS

    monthly, lvr = _lead_velocity(events, known, config.stages, when)
    open_now = known[status.eq("open").to_numpy()]
    if stale_after is None:  # the stage-transition model's, as scoring uses: one definition of stale
        stale_after = StageTransitionModel().fit(TrainingSet(data, when)).stale_after_days()
    stale, stale_count, stale_by = _stale(open_now, events, when, config.stages[0], dict(zip(config.stages,
                                                                                              stale_after)))
    return PipelineKpis(
        as_of=str(when.date()), window_days=window_days, conversion=conversion,
        won=int(len(won)), lost=int((recent["status"] == "lost").sum()),
        win_rate=float(len(won) / len(recent)) if len(recent) else float("nan"),
        sales_cycle_median_days=float(cycle.median()) if len(cycle) else float("nan"),
        sales_cycle_mean_days=float(cycle.mean()) if len(cycle) else float("nan"),
        average_deal_size=float(won["amount"].mean()) if len(won) else float("nan"),
        new_qualified_by_month=monthly, lead_velocity_rate=lvr, open_deals=int(len(open_now)),
        stale_count=stale_count, stale_by_stage=stale_by, stale=stale, bottleneck=bottleneck)


def _lead_velocity(events: pd.DataFrame, known: pd.DataFrame, stages: tuple[str, ...] | list[str],
                   as_of: pd.Timestamp, months: int = 13) -> tuple[dict[str, int], float]:
    """New qualified leads (deals first entering the second stage, or created, with one stage) per complete month."""
    if len(stages) > 1:
        first = events[events["index"] >= 1].groupby("deal_id")["entered_at"].min()
    else:
        first = known.set_index("deal_id")["created_at"]
    last_complete = (pd.Period(as_of, "M") - 1) if as_of < (pd.Period(as_of, "M").end_time.normalize()) \
        else pd.Period(as_of, "M")
    periods = pd.period_range(end=last_complete, periods=months, freq="M")
    counts = first.dt.to_period("M").value_counts()
    monthly = {str(p): int(counts.get(p, 0)) for p in periods}
    values = list(monthly.values())
    lvr = (values[-1] - values[-2]) / values[-2] if len(values) >= 2 and values[-2] else float("nan")
    return monthly, lvr


def _stale(open_now: pd.DataFrame, events: pd.DataFrame, as_of: pd.Timestamp, first_stage: str,
           normal: dict[str, float]) -> tuple[list[StaleDeal], int, dict[str, int]]:
    """Open deals longer in their stage than ``normal`` days (per stage: ``stale_after_days``)."""
    if open_now.empty:
        return [], 0, {}
    last = events.sort_values("entered_at").groupby("deal_id").tail(1).set_index("deal_id")
    stage = open_now["deal_id"].map(last["stage"]).fillna(first_stage)
    since = lookup(open_now["deal_id"], last["entered_at"]).fillna(open_now["created_at"])
    days = ((as_of - since).dt.total_seconds() / DAY_SECONDS).to_numpy()
    limit = stage.map(normal).to_numpy(dtype=float)
    is_stale = np.isfinite(limit) & (days > limit)
    table = pd.DataFrame({"deal_id": open_now["deal_id"].astype(str).to_numpy(), "stage": stage.to_numpy(),
                          "days_in_stage": days, "normal_days": limit})[is_stale]
    table = table.assign(ratio=table["days_in_stage"] / table["normal_days"].clip(lower=1.0))
    table = table.sort_values("ratio", ascending=False)
    listed = [StaleDeal(r.deal_id, r.stage, round(float(r.days_in_stage), 1), round(float(r.normal_days), 1))
              for r in table.head(STALE_LIST).itertuples()]
    return listed, int(is_stale.sum()), {str(k): int(v) for k, v in table["stage"].value_counts().items()}


def _clean(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_clean(v) for v in value]
    if isinstance(value, float) and np.isnan(value):
        return None
    return value
