"""What a deal history holds: counts by status and stage, dates, win rate, features, and whether it is enough."""
from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

from scoring.data.contract import DealHistory
from scoring.errors import InsufficientDataError


def reached_stages(data: DealHistory) -> pd.DataFrame:
    """One row per (deal_id, stage) for every open stage a deal reached.

    With a stage history, the stages it entered plus its current one; without, every stage up to
    its current one in pipeline order (deals are assumed to have moved through the pipeline).
    """
    deals = data.deals[["deal_id", "stage"]]
    if data.has_history:
        pairs = pd.concat([data.history[["deal_id", "stage"]], deals], ignore_index=True)
        return pairs.drop_duplicates().reset_index(drop=True)
    order = data.config.stage_order
    position = deals["stage"].map(order).to_numpy()
    frames = [deals.loc[position >= i, ["deal_id"]].assign(stage=s) for s, i in order.items()]
    return pd.concat(frames, ignore_index=True)


@dataclass(frozen=True)
class StageCounts:
    """Closed deals that reached a stage, by outcome."""

    stage: str
    reached: int
    won: int
    lost: int


@dataclass(frozen=True)
class SufficiencyResult:
    """Whether there are enough won and lost deals to learn from, overall and per stage."""

    won: int
    lost: int
    stages: tuple[StageCounts, ...]
    problems: tuple[str, ...] = ()
    thin_stages: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return not self.problems


def check_sufficiency(data: DealHistory) -> SufficiencyResult:
    """Count closed deals overall and per reached stage against the config's thresholds."""
    need = data.config.sufficiency
    status = data.deals.set_index("deal_id")["status"]
    won, lost = int((status == "won").sum()), int((status == "lost").sum())
    reached = reached_stages(data)
    reached = reached.assign(status=reached["deal_id"].map(status))
    closed = reached[reached["status"].isin(["won", "lost"])]
    counts = closed.groupby(["stage", "status"]).size().unstack(fill_value=0)
    stages = []
    thin = []
    for stage in data.config.stages:
        w = int(counts.at[stage, "won"]) if stage in counts.index and "won" in counts.columns else 0
        lo = int(counts.at[stage, "lost"]) if stage in counts.index and "lost" in counts.columns else 0
        stages.append(StageCounts(stage, w + lo, w, lo))
        if min(w, lo) < need.min_per_stage:
            thin.append(stage)
    problems = []
    if won < need.min_won or lost < need.min_lost:
        problems.append(f"too little data to learn from: {won} won and {lost} lost deal(s); at least "
                        f"{need.min_won} won and {need.min_lost} lost are needed (set [sufficiency] in the config "
                        "to change these limits)")
    return SufficiencyResult(won, lost, tuple(stages), tuple(problems), tuple(thin))


def require_sufficient(data: DealHistory) -> SufficiencyResult:
    """``check_sufficiency``, raising :class:`InsufficientDataError` with the numbers when it fails."""
    result = check_sufficiency(data)
    if not result.ok:
        raise InsufficientDataError("; ".join(result.problems), data.report)
    return result


@dataclass(frozen=True)
class FeatureSummary:
    name: str
    kind: str
    missing: float
    detail: str


@dataclass(frozen=True)
class DataSummary:
    """A readable overview of a deal history (what ``scoring validate`` prints)."""

    deals: int
    by_status: dict[str, int]
    by_stage: pd.DataFrame
    created: tuple[pd.Timestamp, pd.Timestamp]
    closed: tuple[pd.Timestamp, pd.Timestamp] | None
    win_rate: float | None
    median_cycle_days: float | None
    open_amount: float
    history_rows: int
    deals_with_history: int
    features: list[FeatureSummary] = field(default_factory=list)
    #: The deal signals (SPEC 2.2): field changes by field, activities, and the features derived from them.
    field_changes: dict[str, int] = field(default_factory=dict)
    activities: int = 0
    signal_features: list[str] = field(default_factory=list)


def summarize(data: DealHistory) -> DataSummary:
    """Counts by status and stage, date ranges, win rate, cycle length and the feature columns."""
    deals = data.deals
    by_status = {s: int((deals["status"] == s).sum()) for s in ("open", "won", "lost")}
    by_stage = (pd.crosstab(pd.Categorical(deals["stage"], categories=data.config.stages), deals["status"])
                .reindex(columns=["open", "won", "lost"], fill_value=0))
    by_stage.index.name = "stage"
    closed = deals[deals["status"] != "open"]
    decided = by_status["won"] + by_status["lost"]
    won = deals[deals["status"] == "won"]
    cycle = (won["closed_at"] - won["created_at"]).dt.total_seconds() / 86400
    features = []
    for name, kind in data.features.items():
        if name not in deals.columns:  # derived from the field history or activities: summarized below
            continue
        col = deals[name]
        if kind == "numeric":
            detail = f"{col.min():g} to {col.max():g}"
        else:
            top = col.value_counts().head(3)
            detail = f"{col.nunique()} values, most often " + ", ".join(f"{v} ({n})" for v, n in top.items())
        features.append(FeatureSummary(name, kind, float(col.isna().mean()), detail))
    return DataSummary(
        deals=len(deals),
        by_status=by_status,
        by_stage=by_stage,
        created=(deals["created_at"].min(), deals["created_at"].max()),
        closed=(closed["closed_at"].min(), closed["closed_at"].max()) if len(closed) else None,
        win_rate=by_status["won"] / decided if decided else None,
        median_cycle_days=float(cycle.median()) if len(won) else None,
        open_amount=float(deals.loc[deals["status"] == "open", "amount"].sum()),
        history_rows=len(data.history),
        deals_with_history=int(data.history["deal_id"].nunique()),
        features=features,
        field_changes={str(k): int(v) for k, v in data.signals.field_history["field"].value_counts().items()},
        activities=len(data.signals.activities),
        signal_features=list(data.spec.features),
    )
