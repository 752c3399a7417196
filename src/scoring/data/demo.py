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
from collections.abc import Callable
from dataclasses import dataclass, field, replace
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
    #: Market shocks: every calendar ``shock_every`` (month or quarter) draws z ~ Normal(0, shock_sd) that moves
    #: the log-odds of every decision taken in it (advance, win), so good and bad periods move many deals at once.
    shock_sd: float = 0.0
    shock_every: str = "quarter"
    #: The share of new deals nobody works: left open in their first stage for good, as CRMs keep them.
    dormant_share: float = 0.0
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
        won_at = self._continue(rng, q, seg, stage_ix, days)
        horizons = np.asarray(horizons, dtype=float)
        return (won_at.reshape(n, samples)[:, :, None] <= horizons).mean(axis=1)

    def _continue(self, rng: np.random.Generator, q: np.ndarray, seg: np.ndarray, stage_ix: np.ndarray,
                  days: np.ndarray, now: np.datetime64 | None = None, entry_shock: np.ndarray | float = 0.0,
                  shock: ShockAt | None = None) -> np.ndarray:
        """Days from now to each deal's win (inf: lost) for deals ``days`` into a stay at ``stage_ix``: the
        current stay's exit kind given that it lasted so far (its odds were set at entry, moved by
        ``entry_shock``), then the process onwards (decisions moved by ``shock`` at their time after ``now``)."""
        probs = self.exit_probabilities(stage_ix, q + entry_shock)
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
            moved = q[idx]
            if shock is not None and now is not None:
                moved = moved + shock(now + (t * 86400).astype("timedelta64[s]"), idx)
            probs = self.exit_probabilities(stage_ix, moved)
            kind = np.minimum((rng.random(len(idx))[:, None] > np.cumsum(probs, axis=1)).sum(axis=1), len(KINDS) - 1)
            median = self.median_days(stage_ix, seg[idx])[np.arange(len(idx)), kind]
            t = t + median * np.exp(self.days_sigma * rng.standard_normal(len(idx)))
        return won_at

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

        shocks = self._draw_shocks(seed, start, end_ts)
        dormant = self._dormant(np.random.default_rng([seed, 31]), n_deals)  # a stream of its own, as the shocks'
        events, outcome, closed_at = self._simulate(rng, deals["created_at"].to_numpy(), first, q, seg,
                                                    shocks.at if shocks else None, dormant)
        demo = self._observe(deals, events, outcome, closed_at, first, q, end_ts, rng, dormant)
        return replace(demo, arrivals=Ramp(start, span, n_deals, g), shocks=shocks)

    def _dormant(self, rng: np.random.Generator, n: int) -> np.ndarray | None:
        """Which of ``n`` new deals nobody works (None when none are: the random stream is left alone)."""
        if not 0 <= self.dormant_share < 1:
            raise ValueError(f"dormant_share must be in [0, 1), got {self.dormant_share}")
        return rng.random(n) < self.dormant_share if self.dormant_share > 0 else None

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

    def _draw_shocks(self, seed: int, start: pd.Timestamp, end: pd.Timestamp) -> Shocks | None:
        """The market's effect in every period from a year before ``start`` to ten years after ``end`` (its own
        random stream: the deals of a seed are the same with and without shocks until a shock moves them)."""
        if self.shock_sd <= 0:
            return None
        first = period_ordinal(np.array([(start - pd.DateOffset(years=1)).to_datetime64()]), self.shock_every)[0]
        last = period_ordinal(np.array([(end + pd.DateOffset(years=10)).to_datetime64()]), self.shock_every)[0]
        z = np.random.default_rng([seed, 17]).normal(0.0, self.shock_sd, last - first + 1)
        return Shocks(self.shock_every, int(first), z)

    def _simulate(self, rng: np.random.Generator, created: np.ndarray, first: np.ndarray, q: np.ndarray,
                  seg: np.ndarray, shock: ShockAt | None = None, dormant: np.ndarray | None = None
                  ) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
        """Full trajectories, not yet cut at the observation date (``shock(times, deals)``: the market's
        effect on the log-odds of decisions taken then; ``dormant`` deals enter their first stage and stay)."""
        n = len(q)
        idx = np.arange(n)
        stage = first.copy()
        t = created.astype("datetime64[s]")
        outcome = np.full(n, "open", dtype=object)
        closed = np.full(n, np.datetime64("NaT"), dtype="datetime64[s]")
        parts = []
        if dormant is not None and dormant.any():
            parts.append(pd.DataFrame({"deal": idx[dormant], "stage": stage[dormant], "entered": t[dormant]}))
            idx, stage, t = idx[~dormant], stage[~dormant], t[~dormant]
        last = len(self.stages) - 1
        for _ in range(200):  # a regression loop this long has probability far below 1e-100
            if len(idx) == 0:
                break
            parts.append(pd.DataFrame({"deal": idx, "stage": stage, "entered": t}))
            probs = self.exit_probabilities(stage, q[idx] + (shock(t, idx) if shock else 0.0))
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
                 first: np.ndarray, q: np.ndarray, end: pd.Timestamp, rng: np.random.Generator,
                 dormant: np.ndarray | None = None) -> DemoData:
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
        deals["expected_close_date"], field_history = self._close_dates(deals, end, rng)
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
        worked = np.ones(len(deals)) if dormant is None else (~dormant).astype(float)
        truth = pd.DataFrame({
            "deal_id": deals["deal_id"],
            "true_win_probability_at_creation": self.fresh_win_probability(q)[np.arange(len(q)), first] * worked,
            "true_win_probability_at_end": at_end * worked,
            "dormant": worked == 0,
            "eventual_status": outcome,
            "eventual_closed_at": pd.to_datetime(closed).floor("min"),
        })
        open_deals = deals.loc[open_mask].drop(columns=["status", "closed_at"]).reset_index(drop=True)
        return DemoData(deals, history, open_deals, truth, PipelineConfig(stages=self.stages), end, self,
                        field_history=field_history)

    def _close_dates(self, deals: pd.DataFrame, end: pd.Timestamp, rng: np.random.Generator
                     ) -> tuple[pd.Series, pd.DataFrame]:
        """The rep's expected close dates through each deal's life, as a CRM's field history records them: an
        optimistic guess at creation; when a date passes with the deal still open, most are pushed out within a
        week, the rest left overdue for weeks first; on closing the CRM overwrites it with the close day. Only
        the calendar and the deal being open drive it (nothing the true probabilities do not know). Returns the
        open deals' current dates and the history (``deal_id``, ``field``, ``value``, ``changed_at``)."""
        n = len(deals)
        seg = deals["segment"].map({v: i for i, v in enumerate(self.segment.values)}).to_numpy()
        cycle = float(np.sum(self.days_move)) * np.asarray(self.segment_pace)[seg]
        day = np.timedelta64(86_400_000_000, "us")
        created = deals["created_at"].to_numpy(dtype="datetime64[us]")
        closed = deals["closed_at"].to_numpy(dtype="datetime64[us]")
        stop = np.where(np.isnat(closed), end.to_datetime64().astype("datetime64[us]"), closed)
        date = created + (0.8 * cycle * np.exp(0.35 * rng.standard_normal(n)) * day).astype("timedelta64[us]")
        ix, when, value = [np.arange(n)], [created], [date]
        active = np.ones(n, dtype=bool)
        while True:
            prompt = rng.random(n) < 0.6
            delay = np.where(prompt, rng.uniform(0, 7, n), rng.uniform(14, 60, n))
            moment = date + (delay * day).astype("timedelta64[us]")
            active &= moment < stop
            if not active.any():
                break
            new = moment + (rng.uniform(7, 46, n) * day).astype("timedelta64[us]")
            ix.append(np.flatnonzero(active))
            when.append(moment[active])
            value.append(new[active])
            date = np.where(active, new, date)
        done = ~np.isnat(closed)
        ix.append(np.flatnonzero(done))
        when.append(closed[done])
        value.append(closed[done])
        order = np.concatenate(ix)
        history = pd.DataFrame({
            "deal_id": deals["deal_id"].to_numpy()[order], "field": "expected_close_date",
            "value": pd.to_datetime(np.concatenate(value)).strftime("%Y-%m-%d"),
            "changed_at": pd.to_datetime(np.concatenate(when)).floor("min")})
        history = history.sort_values(["deal_id", "changed_at"], kind="stable").reset_index(drop=True)
        current = pd.Series(pd.to_datetime(date).normalize(), index=deals.index).where(deals["status"] == "open")
        return current, history


#: The files ``DemoData.write`` writes.
DEMO_FILES = ("deals.csv", "stage_history.csv", "field_history.csv", "open_deals.csv", "pipeline.toml", "truth.csv",
              "truth.json", "truth_bookings.csv")
#: The periods ``truth_bookings.csv`` covers, and how many replays of the future make it.
TRUTH_PERIODS = (("quarter", 4), ("month", 6))
TRUTH_REPLICATES = 100


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
    arrivals: Ramp | None = None
    shocks: Shocks | None = None
    field_history: pd.DataFrame | None = None  # the rep's close dates as they changed (SPEC 2.2)

    def write(self, out_dir: str | Path) -> list[Path]:
        """Write deals.csv, stage_history.csv, field_history.csv (the rep's close dates),
        open_deals.csv, pipeline.toml, truth.csv, truth.json and
        truth_bookings.csv (the true distribution of the next quarters' and months' bookings)."""
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        paths = {name: out / name for name in DEMO_FILES}
        fmt = {"date_format": "%Y-%m-%dT%H:%M"}
        _dated(self.deals).to_csv(paths["deals.csv"], index=False, **fmt)
        self.history.to_csv(paths["stage_history.csv"], index=False, **fmt)
        if self.field_history is not None:
            self.field_history.to_csv(paths["field_history.csv"], index=False, **fmt)
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
                    "at observed_at (0 for dormant deals, which nobody works: --dormant-share); eventual_status is what "
                    "the simulation went on to do after observed_at. "
                    "truth_bookings.csv: the distribution of what each period after observed_at books, from "
                    f"{TRUTH_REPLICATES} replays of the future (open deals, new deals, future market shocks).",
            "shocks": ({"every": self.shocks.every, "first_period_ordinal": self.shocks.first,
                        "z": self.shocks.z.round(4).tolist()} if self.shocks is not None else None),
            "owners": company.owners().to_dict(orient="records"),
            "parameters": {k: (v.__dict__ if isinstance(v, Category) else v) for k, v in company.__dict__.items()},
        }
        paths["truth.json"].write_text(json.dumps(about, indent=2, default=list), encoding="utf-8")
        if self.arrivals is not None:
            truth = pd.concat([self.bookings_truth(kind, n, TRUTH_REPLICATES) for kind, n in TRUTH_PERIODS])
            truth.to_csv(paths["truth_bookings.csv"], index=False, float_format="%.2f")
        return [path for path in paths.values() if path.exists()]

    def bookings_truth(self, period: str = "quarter", periods: int = 4, replicates: int = 200,
                       seed: int = 0) -> pd.DataFrame:
        """The true distribution of what the periods after the observation date book, by replaying the
        company's own process ``replicates`` times from what it was at that date: the open deals go on from
        their stage and time in it, new deals keep arriving on the same growing ramp (a Poisson count), and
        future market shocks are drawn anew. One row per period (the first runs from the observation date to
        its end) and a ``total`` row (the open deals' wins whenever they land, new deals' by the last
        period's end): ``booked`` (won in the first calendar period before the date), then expected value
        and P10/P50/P90 of ``pipeline``, ``new_deals`` and ``bookings`` (their sum)."""
        if self.arrivals is None:
            raise ValueError("this demo history does not know its arrival ramp (make it with DemoCompany.generate)")
        freq = {"month": "M", "quarter": "Q"}[period]
        first = pd.Period(self.end, freq)
        bounds = [(self.end if i == 0 else (first + i).start_time, (first + i).end_time.normalize()) for i in range(periods)]
        edges = np.array([self.end.to_datetime64(), *[(e + pd.Timedelta(days=1)).to_datetime64() for _, e in bounds]],
                         dtype="datetime64[s]")
        deals = self.deals
        won_before = (deals["status"] == "won") & (deals["closed_at"] >= first.start_time) & (deals["closed_at"] < self.end)
        booked = float(deals.loc[won_before, "amount"].sum())
        rng = np.random.default_rng([seed, 29])
        pipeline = np.zeros((replicates, periods + 1))
        new = np.zeros((replicates, periods))
        batch = 20
        for r0 in range(0, replicates, batch):
            reps = min(batch, replicates - r0)
            shock = self._future_shocks(rng, reps)
            pipeline[r0:r0 + reps] = self._open_futures(rng, reps, edges, shock)
            new[r0:r0 + reps] = self._new_futures(rng, reps, edges, shock)
        rows = []
        for k, (start, end) in enumerate(bounds):
            rows.append({"period": period, "start": start.date(), "end": end.date(), "booked": booked if k == 0 else 0.0,
                         **_spread("pipeline", pipeline[:, k]), **_spread("new_deals", new[:, k]),
                         **_spread("bookings", (booked if k == 0 else 0.0) + pipeline[:, k] + new[:, k])})
        rows.append({"period": period, "start": "total", "end": bounds[-1][1].date(), "booked": booked,
                     **_spread("pipeline", pipeline[:, -1]), **_spread("new_deals", new.sum(axis=1)),
                     **_spread("bookings", booked + pipeline[:, -1] + new.sum(axis=1))})
        return pd.DataFrame.from_records(rows)

    def dormant_open(self) -> np.ndarray:
        """Which of ``open_deals`` nobody works (the generator's own knowledge; a model must infer it)."""
        if "dormant" not in self.truth.columns:
            return np.zeros(len(self.open_deals), dtype=bool)
        flags = self.truth.set_index("deal_id")["dormant"]
        return self.open_deals["deal_id"].map(flags).eq(True).to_numpy()

    def _future_shocks(self, rng: np.random.Generator, reps: int) -> Callable[[np.ndarray, np.ndarray], np.ndarray] | None:
        """Per replicate, the market shocks: as they were before the observation date, drawn anew from its
        period on; returns ``shock(times, replicate of each)``."""
        if self.shocks is None:
            return None
        shocks, company = self.shocks, self.company
        now = period_ordinal(np.array([self.end.to_datetime64()]), shocks.every)[0] - shocks.first
        table = np.tile(shocks.z, (reps, 1))
        table[:, now:] = rng.normal(0.0, company.shock_sd, (reps, len(shocks.z) - now))
        return lambda times, rep: table[rep, np.clip(period_ordinal(times, shocks.every) - shocks.first, 0,
                                                         len(shocks.z) - 1)]

    def _open_futures(self, rng: np.random.Generator, reps: int, edges: np.ndarray,
                      shock: Callable[[np.ndarray, np.ndarray], np.ndarray] | None) -> np.ndarray:
        """Won revenue of the open deals per (replicate, period), and in total (last column)."""
        company, deals = self.company, self.open_deals
        n = len(deals)
        q = np.tile(company.quality(deals), reps)
        seg = np.tile(deals["segment"].map({v: i for i, v in enumerate(company.segment.values)}).to_numpy(dtype=int), reps)
        stage = np.tile(deals["stage"].map({s: i for i, s in enumerate(company.stages)}).to_numpy(dtype=int), reps)
        days = np.tile(((self.end - deals["stage_entered_at"]).dt.total_seconds() / 86400).to_numpy(), reps)
        rep = np.repeat(np.arange(reps), n)
        entered = np.tile(deals["stage_entered_at"].to_numpy(dtype="datetime64[s]"), reps)
        entry = self.shocks.at(entered, np.arange(len(q))) if self.shocks is not None else 0.0
        moved = (lambda times, idx: shock(times, rep[idx])) if shock is not None else None
        won_in = company._continue(rng, q, seg, stage, days, self.end.to_datetime64().astype("datetime64[s]"), entry, moved)
        won_in[np.tile(self.dormant_open(), reps)] = np.inf  # nobody works them: never won
        amount = np.tile(deals["amount"].to_numpy(dtype=float), reps)
        won_at = self.end.to_datetime64().astype("datetime64[s]") + (np.minimum(won_in, 1e6) * 86400).astype("timedelta64[s]")
        return np.column_stack([_by_period(won_at, amount, rep, reps, edges),
                                np.bincount(rep[np.isfinite(won_in)], amount[np.isfinite(won_in)], minlength=reps)])

    def _new_futures(self, rng: np.random.Generator, reps: int, edges: np.ndarray,
                     shock: Callable[[np.ndarray, np.ndarray], np.ndarray] | None) -> np.ndarray:
        """Won revenue per (replicate, period) of deals created after the observation date."""
        company, ramp = self.company, self.arrivals
        assert ramp is not None
        x0 = (self.end - ramp.start) / pd.Timedelta(days=1)
        x1 = (pd.Timestamp(edges[-1]) - ramp.start) / pd.Timedelta(days=1)
        expected = ramp.deals * (np.exp(ramp.rate * x1) - np.exp(ramp.rate * x0)) / np.expm1(ramp.rate * ramp.span)
        counts = rng.poisson(expected, reps)
        total = int(counts.sum())
        u = rng.random(total)
        offset = np.log(np.exp(ramp.rate * x0) + u * (np.exp(ramp.rate * x1) - np.exp(ramp.rate * x0))) / ramp.rate
        created = ramp.start.to_datetime64().astype("datetime64[s]") + (offset * 86400).astype("timedelta64[s]")
        features = company._sample_features(rng, total)
        q = company.quality(features)
        seg = features["segment"].map({v: i for i, v in enumerate(company.segment.values)}).to_numpy()
        first = np.zeros(total, dtype=int)
        for source, share in company.direct_to_second.items():
            first[(features["source"].to_numpy() == source) & (rng.random(total) < share)] = 1
        rep = np.repeat(np.arange(reps), counts)
        moved = (lambda times, idx: shock(times, rep[idx])) if shock is not None else None
        _, outcome, closed = company._simulate(rng, created, first, q, seg, moved, company._dormant(rng, total))
        won = outcome == "won"
        return _by_period(closed[won], features["amount"].to_numpy(dtype=float)[won], rep[won], reps, edges)


def _dated(frame: pd.DataFrame) -> pd.DataFrame:
    """Expected close dates are calendar dates: write them without a time."""
    out = frame.copy()
    out["expected_close_date"] = out["expected_close_date"].dt.strftime("%Y-%m-%d")
    return out


def _by_period(when: np.ndarray, amount: np.ndarray, rep: np.ndarray, reps: int, edges: np.ndarray) -> np.ndarray:
    """Sum of ``amount`` per (replicate, period between consecutive ``edges``)."""
    k = np.searchsorted(edges, when.astype("datetime64[s]"), side="right") - 1
    inside = (k >= 0) & (k < len(edges) - 1)
    cells = rep[inside] * (len(edges) - 1) + k[inside]
    return np.bincount(cells, amount[inside], minlength=reps * (len(edges) - 1)).reshape(reps, len(edges) - 1)


def _spread(name: str, draws: np.ndarray) -> dict[str, float]:
    p10, p50, p90 = np.quantile(draws, (0.1, 0.5, 0.9))
    return {f"{name}_expected": float(draws.mean()), f"{name}_p10": float(p10), f"{name}_p50": float(p50),
            f"{name}_p90": float(p90)}


def period_ordinal(times: np.ndarray, every: str) -> np.ndarray:
    """Calendar months or quarters since 1970 of datetime64 ``times``."""
    months = np.asarray(times).astype("datetime64[M]").astype(np.int64)
    return months if every == "month" else months // 3


ShockAt = Callable[[np.ndarray, np.ndarray], np.ndarray]


@dataclass(frozen=True)
class Shocks:
    """The market's effect on decisions' log-odds in each period (``z[i]``: the period ``first + i``)."""

    every: str
    first: int
    z: np.ndarray

    def at(self, times: np.ndarray, deals: np.ndarray) -> np.ndarray:
        """The effect at each of ``times`` (``deals``: which deal each is, unused: one market for all)."""
        return self.z[np.clip(period_ordinal(times, self.every) - self.first, 0, len(self.z) - 1)]


@dataclass(frozen=True)
class Ramp:
    """How deals arrived: ``deals`` over ``span`` days from ``start`` at a density growing as exp(rate x day)."""

    start: pd.Timestamp
    span: float
    deals: int
    rate: float
