"""Simulated companies with known truth, made apart from the demo generator: does the served P(win) of the open
pipeline match the truth when the pipeline fills with stale deals?

Each company is simulated day by day (not by the project's demo generator, so its habits are not the model's):
deals arrive on weekdays with a yearly season; a deal sits in each of five stages with a daily chance of leaving
that fades the longer it sits (``rate / (1 + days / tau)``), and leaves forward, skips a stage, goes back, is
lost or (from the last two stages) is won, by a multinomial logit on its segment, source, owner's skill, log
amount and days in the stage (the longer it sat, the worse its exit). A share of deals (``--stale-share``) is
never really worked: their chance of leaving is a twentieth of the others', so they pile up in the open
pipeline, as in real CRMs, and mostly end lost. The truth of each open deal at the end is the share of
``--futures`` simulated futures from its own state (its latent staleness known) in which it is won, and in which it
is won within 90 days.

Each company is trained as ``scoring train`` trains (``train_bundle``, as of the last day) and its open deals
scored as ``scoring score`` scores them; printed per company: the model that serves, the served expected won
revenue of the open deals over the truth's, the same for deal counts, the mean absolute error of P(win), the
fixed percentages' revenue over the truth's, and the revenue ratio and mean absolute error of P(won within 90 days)
(the timing). Then the bookings forecast of this quarter and the next (``scoring forecast`` with the deal
history) against ``--futures`` futures of the whole company from its last day, new deals arriving as they did:
bookings, the open deals' part and the new deals' part over the futures' mean, and the share of futures within
the forecast's P10-P90.

    python benchmarks/world_bench.py --per-day 12 1.5 --stale-share 0.12 0 --seeds 0 1 2   # about 4 minutes
"""
from __future__ import annotations

import argparse
import time
from dataclasses import astuple, dataclass

import numpy as np
import pandas as pd

from scoring.bundle import ModelBundle
from scoring.data.config import PipelineConfig
from scoring.data.contract import DealHistory, load_deal_history, load_open_deals
from scoring.forecast.revenue import forecast
from scoring.scores import state_columns
from scoring.train import train_bundle

STAGES = ("Discovery", "Qualified", "Demo", "Proposal", "Negotiation")
FIXED = (0.05, 0.15, 0.3, 0.5, 0.7)
LEAVE = np.array([0.06, 0.05, 0.045, 0.04, 0.05])  # daily chance of leaving on a stage's first day ...
FADE = np.array([30.0, 40.0, 40.0, 50.0, 40.0])  # ... divided by 1 + days in the stage / this
STALE_PACE = 0.05  # a stale deal's chance of leaving, relative to a worked one's
SEGMENTS, SOURCES = ("SMB", "Mid-Market", "Enterprise"), ("Inbound", "Outbound", "Partner", "Event")
START = pd.Timestamp("2023-01-01")


@dataclass
class Deals:
    """The simulated deals' fixed traits."""

    segment: np.ndarray
    source: np.ndarray
    skill: np.ndarray
    log_amount: np.ndarray
    stale: np.ndarray
    owner: np.ndarray

    def __add__(self, other: Deals) -> Deals:
        return Deals(*(np.concatenate([a, b]) for a, b in zip(astuple(self), astuple(other), strict=True)))


@dataclass
class World:
    """A simulated company on its last day: what simulating its next days needs."""

    per_day: float
    days: int
    stale_share: float
    owners: np.ndarray  # each owner's skill
    deals: Deals
    stage: np.ndarray
    entered: np.ndarray  # day each deal entered its stage
    open_: np.ndarray  # the open deals' indices


def arrival_rate(per_day: float, day: np.ndarray) -> np.ndarray:
    """Deals created per day on days ``day`` (from START): a yearly season, few at weekends."""
    weekday = (START + pd.to_timedelta(day, unit="D")).day_of_week
    return per_day * (1 + 0.25 * np.sin(2 * np.pi * day / 365.25)) * np.where(weekday < 5, 1.3, 0.25)


def traits(rng: np.random.Generator, segment: np.ndarray, owners: np.ndarray, stale_share: float) -> Deals:
    """New deals of ``segment``: owner, source, amount and whether they will be left unworked."""
    n = len(segment)
    owner = rng.integers(0, len(owners), n)
    return Deals(segment, rng.choice(4, n, p=[0.35, 0.35, 0.15, 0.15]), owners[owner],
                 np.log(np.array([8e3, 40e3, 200e3])[segment]) + rng.normal(0, 0.6, n), rng.random(n) < stale_share, owner)


def exits(stage: np.ndarray, deals: Deals, which: np.ndarray, days: np.ndarray) -> np.ndarray:
    """P(forward, skip, back, lost, won) at a deal's exit from ``stage`` after ``days`` in it."""
    quality = (np.array([0.3, 0.0, -0.4])[deals.segment[which]] + np.array([0.4, -0.3, 0.3, 0.0])[deals.source[which]]
               + deals.skill[which] - 0.25 * (deals.log_amount[which] - 10.0) - 0.012 * days)
    u = np.empty((len(stage), 5))
    u[:, 0] = np.where(stage == len(STAGES) - 1, -np.inf, 1.2 + quality)
    u[:, 1] = np.where(stage <= 2, -2.0 + quality, -np.inf)
    u[:, 2] = np.where(stage >= 1, -2.2, -np.inf)
    u[:, 3] = 0.15 * stage
    u[:, 4] = np.where(stage >= 3, -0.2 + 1.2 * quality + 0.3 * (stage - 3), -np.inf)
    e = np.exp(u - u.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def one_day(rng: np.random.Generator, stage: np.ndarray, days: np.ndarray, deals: Deals, which: np.ndarray
        ) -> tuple[np.ndarray, np.ndarray]:
    """One day of the deals ``which`` (in ``stage`` for ``days``): whether each left, and where to (-1 lost, -2 won)."""
    chance = LEAVE[stage] / (1.0 + days / FADE[stage]) * np.where(deals.stale[which], STALE_PACE, 1.0)
    left = rng.random(len(stage)) < chance
    to = stage.copy()
    i = np.flatnonzero(left)
    if len(i):
        p = exits(stage[i], deals, which[i], days[i])
        choice = (p.cumsum(axis=1) > rng.random((len(i), 1))).argmax(axis=1)
        s = stage[i]
        to[i] = np.choose(choice, [s + 1, s + 2, s - 1, np.full_like(s, -1), np.full_like(s, -2)])
    return left, to


def company(per_day: float, days: int, stale_share: float, seed: int, futures: int
            ) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, World]:
    """Deals, stage history and the truth of the open deals (P(win) ever) of one simulated company, and the
    company on its last day."""
    rng = np.random.default_rng(seed)
    created = np.repeat(np.arange(days), rng.poisson(arrival_rate(per_day, np.arange(days)))).astype(float)
    n = len(created)
    created += rng.uniform(0.3, 0.8, n)  # office hours
    segment = rng.choice(3, n, p=[0.55, 0.3, 0.15])
    owners = rng.normal(0, 0.35, 12)
    deals = traits(rng, segment, owners, stale_share)
    stage, in_stage = np.zeros(n, dtype=int), np.zeros(n)
    outcome, closed, entered = np.zeros(n, dtype=int), np.full(n, np.nan), created.copy()
    moves = [(np.arange(n), stage.copy(), created.copy())]
    for d in range(days):
        open_ = np.flatnonzero((created < d) & (outcome == 0))
        left, to = one_day(rng, stage[open_], in_stage[open_], deals, open_)
        in_stage[open_] += 1
        moved, to = open_[left], to[left]
        when = d + rng.uniform(0, 1, len(moved))
        done = to < 0
        outcome[moved[done]], closed[moved[done]] = to[done], when[done]
        on = moved[~done]
        stage[on], in_stage[on], entered[on] = to[~done], 0, when[~done]
        moves.append((on, to[~done], when[~done]))
    stamp = lambda t: (START + pd.to_timedelta(t, unit="D")).floor("min")  # noqa: E731
    ids = np.array([f"W{seed:02d}-{i:06d}" for i in range(n)])
    frame = pd.DataFrame({
        "deal_id": ids, "created_at": stamp(created), "amount": np.round(np.exp(deals.log_amount), -2),
        "stage": np.array(STAGES)[stage], "status": np.select([outcome == -2, outcome == -1], ["won", "lost"], "open"),
        "closed_at": stamp(np.where(outcome < 0, closed, np.nan)), "stage_entered_at": stamp(entered),
        "segment": np.array(SEGMENTS)[segment], "source": np.array(SOURCES)[deals.source],
        "owner": [f"Rep {o:02d}" for o in deals.owner]})
    who, where, at = (np.concatenate(part) for part in zip(*moves))
    history = pd.DataFrame({"deal_id": ids[who], "stage": np.array(STAGES)[where], "entered_at": stamp(at)})
    # the truth: each open deal's futures from its own state
    open_ = np.flatnonzero(outcome == 0)
    path = np.repeat(open_, futures)
    s, d_in, fate = stage[path].copy(), days - entered[path], np.zeros(len(path), dtype=int)
    ended = np.full(len(path), np.inf)  # the future's day of its win or loss
    for day in range(5 * 365):
        going = np.flatnonzero(fate == 0)
        if not len(going):
            break
        left, to = one_day(rng, s[going], d_in[going], deals, path[going])
        d_in[going] += 1
        moved, to = going[left], to[left]
        fate[moved[to < 0]], ended[moved[to < 0]] = to[to < 0], day + 1
        s[moved[to >= 0]], d_in[moved[to >= 0]] = to[to >= 0], 0
    won = (fate == -2).reshape(len(open_), futures)
    truth = pd.DataFrame({"deal_id": ids[open_], "true_p_win": won.mean(axis=1),
                          "true_p_win_90d": (won & (ended.reshape(len(open_), futures) <= 90)).mean(axis=1),
                          "stale": deals.stale[open_]})
    return frame, history, truth, World(per_day, days, stale_share, owners, deals, stage, entered, open_)


def bookings_truth(world: World, ends: list[int], futures: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Revenue won in each period (its end: ``ends``, days from START) by the open deals and by deals created
    after the last day, in each of ``futures`` futures of the whole company: two arrays (futures, periods)."""
    rng = np.random.default_rng([seed, 1])  # apart from the history's stream: the figures above stay the same
    days, n_open = world.days, len(world.open_)
    day = np.arange(days, ends[-1])
    counts = rng.poisson(np.tile(arrival_rate(world.per_day, day), futures))
    created = np.repeat(np.tile(day, futures), counts) + rng.uniform(0.3, 0.8, counts.sum())
    future = np.concatenate([np.tile(np.arange(futures), n_open), np.repeat(np.repeat(np.arange(futures), len(day)), counts)])
    new = traits(rng, rng.choice(3, len(created), p=[0.55, 0.3, 0.15]), world.owners, world.stale_share)
    deals = world.deals + new
    which = np.concatenate([np.repeat(world.open_, futures), len(world.deals.segment) + np.arange(len(created))])
    is_new = np.arange(len(which)) >= n_open * futures
    starts = np.concatenate([np.full(n_open * futures, -np.inf), created])
    s = np.concatenate([np.repeat(world.stage[world.open_], futures), np.zeros(len(created), dtype=int)])
    d_in = np.concatenate([np.repeat(days - world.entered[world.open_], futures), np.zeros(len(created))])
    won_in = np.full(len(which), -1)  # the period of each path's win
    fate = np.zeros(len(which), dtype=int)
    for d in day:
        going = np.flatnonzero((fate == 0) & (starts < d))
        left, to = one_day(rng, s[going], d_in[going], deals, which[going])
        d_in[going] += 1
        moved, to = going[left], to[left]
        fate[moved[to < 0]] = to[to < 0]
        won_in[moved[to == -2]] = int(np.searchsorted(ends, d, side="right"))
        s[moved[to >= 0]], d_in[moved[to >= 0]] = to[to >= 0], 0
    amount = np.round(np.exp(deals.log_amount[which]), -2)
    won = won_in >= 0
    out = []
    for part in (~is_new, is_new):
        cells = future[won & part] * len(ends) + won_in[won & part]
        out.append(np.bincount(cells, weights=amount[won & part], minlength=futures * len(ends)).reshape(futures, len(ends)))
    return out[0], out[1]


def judge(per_day: float, days: int, stale_share: float, seed: int, futures: int) -> dict[str, object]:
    """Train on one company as ``scoring train`` does and compare the served P(win) of its open deals with the truth."""
    began = time.perf_counter()
    deals, history, truth, world = company(per_day, days, stale_share, seed, futures)
    as_of = START + pd.Timedelta(days=days)
    config = PipelineConfig(stages=STAGES, fixed_probabilities=dict(zip(STAGES, FIXED)))
    data = load_deal_history(deals, history, config=config)
    bundle = train_bundle(data, as_of=as_of)
    open_deals = load_open_deals(deals[deals["status"] == "open"].drop(columns=["status", "closed_at"]), bundle.config)
    rows, _ = state_columns(bundle, open_deals, None, as_of)
    scored = pd.DataFrame({"deal_id": rows["deal_id"], "amount": rows["amount"],
                           "fixed": bundle.models["fixed"].predict_proba(rows)})
    scored["p"], by = bundle.served_model.win_by(rows, np.array([90.0]))
    scored["p_90d"] = by[:, 0]
    scored = scored.merge(truth, on="deal_id")
    true_revenue = float((scored["amount"] * scored["true_p_win"]).sum())
    return {**_scored(per_day, stale_share, seed, len(deals), bundle, scored, true_revenue),
            **_bookings(bundle, data, open_deals, world, as_of, futures, seed), "seconds": round(time.perf_counter() - began)}


def _scored(per_day: float, stale_share: float, seed: int, n: int, bundle: ModelBundle, scored: pd.DataFrame,
            true_revenue: float) -> dict[str, object]:
    return {"deals/day": per_day, "stale share": stale_share, "seed": seed, "deals": n,
            "open": len(scored), "stale of open": round(float(scored["stale"].mean()), 2), "serves": bundle.served,
            "revenue / truth": round(float((scored["amount"] * scored["p"]).sum()) / true_revenue, 3),
            "count / truth": round(float(scored["p"].mean() / scored["true_p_win"].mean()), 3),
            "MAE": round(float((scored["p"] - scored["true_p_win"]).abs().mean()), 4),
            "90-day revenue / truth": round(float((scored["amount"] * scored["p_90d"]).sum())
                                            / float((scored["amount"] * scored["true_p_win_90d"]).sum()), 3),
            "MAE 90d": round(float((scored["p_90d"] - scored["true_p_win_90d"]).abs().mean()), 4),
            "fixed revenue / truth": round(float((scored["amount"] * scored["fixed"]).sum()) / true_revenue, 3)}


def _bookings(bundle: ModelBundle, data: DealHistory, open_deals: pd.DataFrame, world: World, as_of: pd.Timestamp,
              futures: int, seed: int) -> dict[str, object]:
    """The bookings forecast of this quarter and the next (``scoring forecast --deals``) against the company's
    simulated futures: expected bookings, open deals' and new deals' wins over the truth's, and the share of
    futures whose bookings fall within the forecast's P10-P90."""
    result = forecast(bundle, open_deals, as_of, "quarter", 2, history=data.deals)
    quarter = pd.Period(as_of, "Q")
    ends = [int((((quarter + k).end_time.normalize() + pd.Timedelta(days=1)) - START) / pd.Timedelta(days=1)) for k in (0, 1)]
    pipeline, new = bookings_truth(world, ends, futures, seed)
    booked = np.array([result.booked[0], 0.0])
    truth = booked + pipeline + new  # (futures, periods)
    held = (truth >= result.bookings.quantiles[:, 0]) & (truth <= result.bookings.quantiles[:, 2])
    out: dict[str, object] = {}
    for k, name in enumerate(("this quarter", "next quarter")):
        out[f"{name}: bookings / truth"] = round(float(result.bookings.expected[k] / truth[:, k].mean()), 3)
        out[f"{name}: open deals / truth"] = round(float(result.pipeline.expected[k] / pipeline[:, k].mean()), 3)
        out[f"{name}: new deals / truth"] = round(float(result.new_deals.expected[k] / new[:, k].mean()), 3)
        out[f"{name}: futures in P10-P90"] = round(float(held[:, k].mean()), 2)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--per-day", type=float, nargs="+", default=[12.0, 1.5], help="deals created per day (mean)")
    parser.add_argument("--stale-share", type=float, nargs="+", default=[0.12, 0.0], help="share of deals never worked")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--days", type=int, default=1100, help="days of history")
    parser.add_argument("--futures", type=int, default=200, help="simulated futures of each open deal (its truth)")
    args = parser.parse_args()
    results = []
    for per_day in args.per_day:
        for stale in args.stale_share:
            for seed in args.seeds:
                results.append(judge(per_day, args.days, stale, seed, args.futures))
                print(", ".join(f"{k} {v}" for k, v in results[-1].items()), flush=True)
    table = pd.DataFrame(results)
    print(table.to_string(index=False))
    print(table.groupby(["deals/day", "stale share"])[["revenue / truth", "count / truth", "MAE", "90-day revenue / truth",
                                                        "MAE 90d"]].median().to_string())


if __name__ == "__main__":
    main()
