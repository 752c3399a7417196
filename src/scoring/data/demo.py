"""A realistic synthetic company whose true win probabilities are known.

Deals arrive at a growing rate and move through the textbook pipeline as a semi-Markov process:
at each stage a deal advances (sometimes skipping a stage), is lost, or at Negotiation is won or
sent back to Proposal. Exit odds depend on segment, source, region, owner, product and size; how
long a deal stays depends on the stage, the segment and the way it leaves (deals about to be lost
linger, so a deal stuck in a stage is less likely to win). Because every rule is explicit,
:meth:`DemoCompany.win_probability` gives the true P(win) of any deal at any stage and time in
stage, which tests and benchmarks use to check what models recover.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.special import expit
from scipy.stats import norm

from scoring.data.config import TEXTBOOK_STAGES, PipelineConfig, dump_config

DAY = np.timedelta64(1, "D")
# Exit kinds at a stage.
ADVANCE, SKIP, LOSE, WIN, REGRESS = range(5)
KINDS = ("advance", "skip", "lose", "win", "regress")

_FIRST = ("Ava", "Ben", "Chloe", "Diego", "Elif", "Farah", "Gus", "Hana", "Ivan", "Jade", "Kofi", "Lena",
          "Mateo", "Nina", "Omar", "Priya", "Quinn", "Rosa", "Sven", "Tara", "Uma", "Viktor", "Wen", "Yusuf")
_LAST = ("Adams", "Baker", "Costa", "Dubois", "Evans", "Fischer", "Garcia", "Hughes", "Ito", "Jensen", "Kowalski",
         "Lopez", "Moreau", "Nakamura", "Okafor", "Patel", "Quist", "Rossi", "Silva", "Tanaka", "Ueda", "Vargas",
         "Weber", "Zhang")


@dataclass(frozen=True)
class Category:
    """A categorical feature: values, their shares and their effect on the log-odds of every exit."""

    values: tuple[str, ...]
    shares: tuple[float, ...]
    effects: tuple[float, ...]


@dataclass(frozen=True)
class DemoCompany:
    """The company's rules. Defaults give a B2B software vendor; every number is a parameter."""

    stages: tuple[str, ...] = TEXTBOOK_STAGES
    segment: Category = Category(("SMB", "Mid-Market", "Enterprise"), (0.55, 0.30, 0.15), (0.25, 0.0, -0.35))
    source: Category = Category(("Inbound", "Outbound", "Partner", "Referral", "Event"),
                                (0.35, 0.30, 0.15, 0.10, 0.10), (0.30, -0.55, 0.35, 0.80, 0.0))
    region: Category = Category(("North America", "EMEA", "APAC", "LATAM"), (0.45, 0.30, 0.15, 0.10),
                                (0.10, 0.0, -0.20, -0.35))
    product: Category = Category(("Core", "Analytics", "Platform"), (0.50, 0.30, 0.20), (0.10, 0.0, -0.30))
    #: Median deal size and log-normal spread per segment.
    amount_median: tuple[float, ...] = (9_000.0, 45_000.0, 220_000.0)
    amount_sigma: tuple[float, ...] = (0.6, 0.7, 0.8)
    #: Log-odds effect per unit of log(amount / segment median): bigger-than-usual deals win less.
    amount_effect: float = -0.30
    #: Owners per region (same order as ``region``) and the spread of their skill (log-odds).
    owners_per_region: tuple[int, ...] = (10, 7, 4, 3)
    owner_skill_sd: float = 0.40
    #: Base log-odds of moving on (advance, or win at the last stage) from each stage.
    base_logit: tuple[float, ...] = (-0.40, 0.30, 0.20, 0.40)
    #: Of the deals that advance, the share that skips the next stage (none can skip past the last).
    skip_share: tuple[float, ...] = (0.08, 0.05, 0.0, 0.0)
    #: Of the deals that do not win at the last stage, the share sent back to the stage before.
    regress_share: float = 0.10
    #: Deals from these sources enter at the second stage with this probability.
    direct_to_second: dict[str, float] = field(default_factory=lambda: {"Referral": 0.30, "Partner": 0.20})
    #: Median days in each stage by exit kind (advance/skip/win share "move"); losers linger.
    days_move: tuple[float, ...] = (10.0, 18.0, 21.0, 14.0)
    days_lose: tuple[float, ...] = (22.0, 38.0, 50.0, 32.0)
    days_regress: float = 9.0
    days_sigma: float = 0.55
    #: Multiplier of all durations per segment.
    segment_pace: tuple[float, ...] = (0.7, 1.0, 1.6)
    #: Yearly growth of the number of new deals.
    growth: float = 0.40
    #: Seed of the company itself (owner skills): the same company for every sampling seed.
    company_seed: int = 7

    # -- the company's fixed parts ----------------------------------------------------------------
    def owners(self) -> pd.DataFrame:
        """The sales reps: name, region and skill (log-odds)."""
        rng = np.random.default_rng(self.company_seed)
        names: list[str] = []
        regions: list[str] = []
        for region, count in zip(self.region.values, self.owners_per_region):
            for _ in range(count):
                i = len(names)
                names.append(f"{_FIRST[i % len(_FIRST)]} {_LAST[(i * 7) % len(_LAST)]}")
                regions.append(region)
        skill = rng.normal(0.0, self.owner_skill_sd, len(names))
        return pd.DataFrame({"owner": names, "region": regions, "skill": skill})

    def quality(self, deals: pd.DataFrame) -> np.ndarray:
        """Each deal's log-odds shift from its features (the same at every stage)."""
        owners = self.owners().set_index("owner")["skill"]
        q = np.zeros(len(deals))
        for name in ("segment", "source", "region", "product"):
            cat: Category = getattr(self, name)
            q += deals[name].map(dict(zip(cat.values, cat.effects))).to_numpy(dtype=float)
        q += deals["owner"].map(owners).to_numpy(dtype=float)
        seg = deals["segment"].map({v: i for i, v in enumerate(self.segment.values)}).to_numpy()
        q += self.amount_effect * np.log(deals["amount"].to_numpy(dtype=float) / np.asarray(self.amount_median)[seg])
        return q

    def exit_probabilities(self, stage: np.ndarray, q: np.ndarray) -> np.ndarray:
        """P(exit kind) for deals at ``stage`` (index) with quality ``q``: shape (n, 5)."""
        last = len(self.stages) - 1
        p = expit(np.asarray(self.base_logit)[stage] + q)
        out = np.zeros((len(stage), len(KINDS)))
        skip = np.asarray(self.skip_share)[stage]
        mid = stage < last
        out[mid, ADVANCE] = p[mid] * (1 - skip[mid])
        out[mid, SKIP] = p[mid] * skip[mid]
        out[mid, LOSE] = 1 - p[mid]
        out[~mid, WIN] = p[~mid]
        out[~mid, REGRESS] = (1 - p[~mid]) * self.regress_share
        out[~mid, LOSE] = (1 - p[~mid]) * (1 - self.regress_share)
        return out

    def median_days(self, stage: np.ndarray, segment: np.ndarray) -> np.ndarray:
        """Median days in ``stage`` per exit kind for each deal: shape (n, 5)."""
        pace = np.asarray(self.segment_pace)[segment]
        move = np.asarray(self.days_move)[stage] * pace
        lose = np.asarray(self.days_lose)[stage] * pace
        regress = np.full(len(stage), self.days_regress) * pace
        return np.column_stack([move, move, lose, move, regress])

    # -- truth ------------------------------------------------------------------------------------
    def fresh_win_probability(self, q: np.ndarray) -> np.ndarray:
        """P(eventually won) on entering each stage: shape (n, stages)."""
        n, last = len(q), len(self.stages) - 1
        p = [expit(self.base_logit[s] + q) for s in range(last + 1)]
        w = np.zeros((n, last + 1))
        # At the last stage: W_last = p + (1-p) r W_{last-1}, and W_{last-1} = p_{l-1} W_last (no skip past the end).
        back = p[last - 1] if last >= 1 else np.zeros(n)
        w[:, last] = p[last] / (1 - (1 - p[last]) * self.regress_share * back)
        for s in range(last - 1, -1, -1):
            k = self.skip_share[s]
            nxt2 = w[:, s + 2] if s + 2 <= last else 0.0
            w[:, s] = p[s] * ((1 - k) * w[:, s + 1] + k * nxt2)
        return w

    def win_probability(self, deals: pd.DataFrame, stage: pd.Series | np.ndarray,
                        days_in_stage: pd.Series | np.ndarray | float = 0.0) -> np.ndarray:
        """The true P(win) of deals at ``stage`` (names) after ``days_in_stage`` days there.

        ``deals`` needs the feature columns (segment, source, region, owner, product) and amount.
        """
        q = self.quality(deals)
        stage_ix = pd.Series(np.asarray(stage)).map({s: i for i, s in enumerate(self.stages)}).to_numpy(dtype=int)
        seg = deals["segment"].map({v: i for i, v in enumerate(self.segment.values)}).to_numpy(dtype=int)
        days = np.broadcast_to(np.asarray(days_in_stage, dtype=float), q.shape)
        fresh = self.fresh_win_probability(q)
        last = len(self.stages) - 1
        rows = np.arange(len(q))
        value = np.zeros((len(q), len(KINDS)))
        value[:, ADVANCE] = fresh[rows, np.minimum(stage_ix + 1, last)]
        value[:, SKIP] = fresh[rows, np.minimum(stage_ix + 2, last)]
        value[:, WIN] = 1.0
        value[:, REGRESS] = fresh[rows, np.maximum(stage_ix - 1, 0)]
        probs = self.exit_probabilities(stage_ix, q)
        medians = self.median_days(stage_ix, seg)
        survival = norm.sf((np.log(np.maximum(days, 1e-9))[:, None] - np.log(medians)) / self.days_sigma)
        weights = probs * survival
        total = weights.sum(axis=1)
        at_entry = (probs * value).sum(axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            later = (weights * value).sum(axis=1) / total
        return np.where(total > 1e-300, later, at_entry)

    def win_within(self, deals: pd.DataFrame, stage: pd.Series | np.ndarray, days_in_stage: pd.Series | np.ndarray,
                   horizons: np.ndarray | list[float], samples: int = 200, seed: int = 0) -> np.ndarray:
        """True P(won within each of ``horizons`` days) of deals at ``stage`` after ``days_in_stage`` days there.

        Monte Carlo (``samples`` futures per deal) of the company's own process, conditioned on the time
        already spent in the stage: shape (deals, horizons).
        """
        rng = np.random.default_rng(seed)
        n = len(deals)
        q = np.repeat(self.quality(deals), samples)
        seg = np.repeat(deals["segment"].map({v: i for i, v in enumerate(self.segment.values)}).to_numpy(dtype=int),
                        samples)
        stage_ix = np.repeat(pd.Series(np.asarray(stage)).map({s: i for i, s in enumerate(self.stages)})
                             .to_numpy(dtype=int), samples)
        days = np.repeat(np.asarray(days_in_stage, dtype=float), samples)
        # The current stay: its exit kind given survival so far, then its length beyond `days`.
        probs = self.exit_probabilities(stage_ix, q)
        medians = self.median_days(stage_ix, seg)
        z_now = (np.log(np.maximum(days, 1e-9))[:, None] - np.log(medians)) / self.days_sigma
        weights = probs * norm.sf(z_now)
        weights /= np.maximum(weights.sum(axis=1, keepdims=True), 1e-300)
        kind = np.minimum((rng.random(len(q))[:, None] > np.cumsum(weights, axis=1)).sum(axis=1), len(KINDS) - 1)
        rows = np.arange(len(q))
        low = norm.cdf(z_now[rows, kind])
        u = low + (1 - low) * rng.random(len(q))
        length = medians[rows, kind] * np.exp(self.days_sigma * norm.ppf(np.minimum(u, 1 - 1e-12)))
        t = np.maximum(length - days, 0.0)
        won_at = np.full(len(q), np.inf)
        last = len(self.stages) - 1
        idx = rows
        for _ in range(200):  # as in _simulate: a longer regression loop is practically impossible
            done = (kind == LOSE) | (kind == WIN)
            won = done & (kind == WIN)
            won_at[idx[won]] = t[won]
            stage_ix = np.select([kind == ADVANCE, kind == SKIP, kind == REGRESS],
                                 [stage_ix + 1, np.minimum(stage_ix + 2, last), stage_ix - 1], stage_ix)
            idx, stage_ix, t = idx[~done], stage_ix[~done], t[~done]
            if len(idx) == 0:
                break
            probs = self.exit_probabilities(stage_ix, q[idx])
            kind = np.minimum((rng.random(len(idx))[:, None] > np.cumsum(probs, axis=1)).sum(axis=1), len(KINDS) - 1)
            median = self.median_days(stage_ix, seg[idx])[np.arange(len(idx)), kind]
            t = t + median * np.exp(self.days_sigma * rng.standard_normal(len(idx)))
        horizons = np.asarray(horizons, dtype=float)
        return (won_at.reshape(n, samples)[:, :, None] <= horizons).mean(axis=1)

    # -- sampling ---------------------------------------------------------------------------------
    def generate(self, n_deals: int = 5_000, seed: int = 0, end: str | pd.Timestamp = "2025-12-31",
                 years: float = 3.0) -> DemoData:
        """Sample ``n_deals`` deals created over ``years`` years up to ``end``, observed at ``end``."""
        if n_deals < 1:
            raise ValueError(f"n_deals must be at least 1, got {n_deals}")
        if years <= 0:
            raise ValueError(f"years must be positive, got {years}")
        rng = np.random.default_rng(seed)
        end_ts = pd.Timestamp(end).normalize()
        span = years * 365.25
        # Arrival times with density growing as (1 + growth)^t: inverse CDF of an exponential ramp.
        g = np.log1p(self.growth) / 365.25
        u = rng.random(n_deals)
        offset = np.log1p(u * np.expm1(g * span)) / g  # days after the start
        start = end_ts - pd.Timedelta(days=span)
        created = start.to_datetime64() + np.sort(offset * 86400).astype("timedelta64[s]")

        deals = self._sample_features(rng, n_deals)
        deals.insert(0, "deal_id", [f"D{i + 1:06d}" for i in range(n_deals)])
        deals.insert(1, "created_at", pd.to_datetime(created).floor("min"))
        q = self.quality(deals)
        seg = deals["segment"].map({v: i for i, v in enumerate(self.segment.values)}).to_numpy()
        first = np.zeros(n_deals, dtype=int)
        for source, share in self.direct_to_second.items():
            pick = (deals["source"].to_numpy() == source) & (rng.random(n_deals) < share)
            first[pick] = 1

        events, outcome, closed_at = self._simulate(rng, deals["created_at"].to_numpy(), first, q, seg)
        return self._observe(deals, events, outcome, closed_at, first, q, end_ts, rng)

    def _sample_features(self, rng: np.random.Generator, n: int) -> pd.DataFrame:
        def draw(cat: Category, size: int) -> np.ndarray:
            return rng.choice(np.asarray(cat.values, dtype=object), size=size, p=cat.shares)

        segment = draw(self.segment, n)
        seg = pd.Series(segment).map({v: i for i, v in enumerate(self.segment.values)}).to_numpy()
        region = draw(self.region, n)
        owners = self.owners()
        owner = np.empty(n, dtype=object)
        for r in self.region.values:
            mask = region == r
            owner[mask] = rng.choice(owners.loc[owners["region"] == r, "owner"].to_numpy(dtype=object), mask.sum())
        # Enterprise buys the platform more often, SMB the core product.
        product = draw(self.product, n)
        upsell = (seg == 2) & (rng.random(n) < 0.30)
        product[upsell] = "Platform"
        downsell = (seg == 0) & (product == "Platform") & (rng.random(n) < 0.5)
        product[downsell] = "Core"
        raw = np.asarray(self.amount_median)[seg] * np.exp(np.asarray(self.amount_sigma)[seg] * rng.standard_normal(n))
        amount = np.where(raw >= 1000, np.round(raw, -2), np.round(raw, 0))
        employees = np.round(np.exp(np.log((40.0, 400.0, 5000.0))[seg] + 0.8 * rng.standard_normal(n)))
        return pd.DataFrame({"amount": amount, "segment": segment, "source": draw(self.source, n),
                             "region": region, "owner": owner, "product": product,
                             "employees": employees.astype(int)})

    def _simulate(self, rng: np.random.Generator, created: np.ndarray, first: np.ndarray, q: np.ndarray,
                  seg: np.ndarray) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
        """Full trajectories, not yet cut at the observation date."""
        n = len(q)
        idx = np.arange(n)
        stage = first.copy()
        t = created.astype("datetime64[s]")
        outcome = np.empty(n, dtype=object)
        closed = np.full(n, np.datetime64("NaT"), dtype="datetime64[s]")
        parts = []
        last = len(self.stages) - 1
        for _ in range(200):  # a regression loop this long has probability far below 1e-100
            if len(idx) == 0:
                break
            parts.append(pd.DataFrame({"deal": idx, "stage": stage, "entered": t}))
            probs = self.exit_probabilities(stage, q[idx])
            kind = (rng.random(len(idx))[:, None] > np.cumsum(probs, axis=1)).sum(axis=1)
            kind = np.minimum(kind, len(KINDS) - 1)
            median = self.median_days(stage, seg[idx])[np.arange(len(idx)), kind]
            days = median * np.exp(self.days_sigma * rng.standard_normal(len(idx)))
            t = t + (days * 86400).astype("timedelta64[s]")
            done = (kind == LOSE) | (kind == WIN)
            outcome[idx[done]] = np.where(kind[done] == WIN, "won", "lost")
            closed[idx[done]] = t[done]
            stage = np.select([kind == ADVANCE, kind == SKIP, kind == REGRESS],
                              [stage + 1, np.minimum(stage + 2, last), stage - 1], stage)
            idx, stage, t = idx[~done], stage[~done], t[~done]
        events = pd.concat(parts, ignore_index=True)
        return events, outcome, closed

    def _observe(self, deals: pd.DataFrame, events: pd.DataFrame, outcome: np.ndarray, closed: np.ndarray,
                 first: np.ndarray, q: np.ndarray, end: pd.Timestamp, rng: np.random.Generator) -> DemoData:
        end64 = end.to_datetime64()
        seen = events[events["entered"] <= end64].sort_values(["deal", "entered"], kind="stable")
        current = seen.groupby("deal").last()
        is_closed = closed <= end64
        status = np.where(is_closed, outcome, "open")
        deals = deals.copy()
        deals["stage"] = np.asarray(self.stages, dtype=object)[current["stage"].to_numpy()]
        deals["status"] = status
        deals["closed_at"] = pd.to_datetime(np.where(is_closed, closed, np.datetime64("NaT"))).floor("min")
        deals["stage_entered_at"] = pd.to_datetime(current["entered"].to_numpy()).floor("min")
        deals["expected_close_date"] = self._rep_expected_close(deals, end, rng)
        ordered = ["deal_id", "created_at", "amount", "stage", "status", "closed_at", "stage_entered_at",
                   "expected_close_date", "segment", "source", "region", "owner", "product", "employees"]
        deals = deals[ordered]

        history = pd.DataFrame({
            "deal_id": deals["deal_id"].to_numpy()[seen["deal"].to_numpy()],
            "stage": np.asarray(self.stages, dtype=object)[seen["stage"].to_numpy()],
            "entered_at": pd.to_datetime(seen["entered"].to_numpy()).floor("min"),
        })
        open_mask = status == "open"
        days_in = (end - deals["stage_entered_at"]).dt.total_seconds().to_numpy() / 86400
        at_end = np.full(len(deals), np.nan)
        at_end[open_mask] = self.win_probability(deals[open_mask], deals.loc[open_mask, "stage"], days_in[open_mask])
        truth = pd.DataFrame({
            "deal_id": deals["deal_id"],
            "true_win_probability_at_creation": self.fresh_win_probability(q)[np.arange(len(q)), first],
            "true_win_probability_at_end": at_end,
            "eventual_status": outcome,
            "eventual_closed_at": pd.to_datetime(closed).floor("min"),
        })
        open_deals = deals.loc[open_mask].drop(columns=["status", "closed_at"]).reset_index(drop=True)
        return DemoData(deals, history, open_deals, truth, PipelineConfig(stages=self.stages), end, self)

    def _rep_expected_close(self, deals: pd.DataFrame, end: pd.Timestamp, rng: np.random.Generator) -> pd.Series:
        """A rep's optimistic guess for open deals; overdue guesses are mostly pushed out, some left stale."""
        stage = deals["stage"].map({s: i for i, s in enumerate(self.stages)}).to_numpy()
        seg = deals["segment"].map({v: i for i, v in enumerate(self.segment.values)}).to_numpy()
        remaining = np.cumsum(np.asarray(self.days_move)[::-1])[::-1][stage] * np.asarray(self.segment_pace)[seg]
        guess = 0.8 * remaining * np.exp(0.35 * rng.standard_normal(len(deals)))
        expected = deals["stage_entered_at"] + pd.to_timedelta(guess, unit="D")
        overdue = expected < end
        pushed = overdue & (rng.random(len(deals)) < 0.6)
        expected[pushed] = end + pd.to_timedelta(rng.integers(7, 46, pushed.sum()), unit="D")
        return expected.dt.normalize().where(deals["status"] == "open")


#: The files ``DemoData.write`` writes.
DEMO_FILES = ("deals.csv", "stage_history.csv", "open_deals.csv", "pipeline.toml", "truth.csv", "truth.json")


@dataclass(frozen=True)
class DemoData:
    """A generated company history and the truth behind it."""

    deals: pd.DataFrame
    history: pd.DataFrame
    open_deals: pd.DataFrame
    truth: pd.DataFrame
    config: PipelineConfig
    end: pd.Timestamp
    company: DemoCompany

    def write(self, out_dir: str | Path) -> list[Path]:
        """Write deals.csv, stage_history.csv, open_deals.csv, pipeline.toml, truth.csv and truth.json."""
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        paths = {name: out / name for name in DEMO_FILES}
        fmt = {"date_format": "%Y-%m-%dT%H:%M"}
        _dated(self.deals).to_csv(paths["deals.csv"], index=False, **fmt)
        self.history.to_csv(paths["stage_history.csv"], index=False, **fmt)
        _dated(self.open_deals).to_csv(paths["open_deals.csv"], index=False, **fmt)
        paths["pipeline.toml"].write_text(
            "# The pipeline of the demo company: the textbook stages and fixed percentages.\n"
            + dump_config(self.config), encoding="utf-8")
        self.truth.to_csv(paths["truth.csv"], index=False, **fmt)
        company = self.company
        about = {
            "observed_at": self.end.date().isoformat(),
            "stages": list(company.stages),
            "note": "true_win_probability_at_end is P(win) of each open deal given its stage and days in stage "
                    "at observed_at; eventual_status is what the simulation went on to do after observed_at.",
            "owners": company.owners().to_dict(orient="records"),
            "parameters": {k: (v.__dict__ if isinstance(v, Category) else v) for k, v in company.__dict__.items()},
        }
        paths["truth.json"].write_text(json.dumps(about, indent=2, default=list), encoding="utf-8")
        return list(paths.values())


def _dated(frame: pd.DataFrame) -> pd.DataFrame:
    """Expected close dates are calendar dates: write them without a time."""
    out = frame.copy()
    out["expected_close_date"] = out["expected_close_date"].dt.strftime("%Y-%m-%d")
    return out
