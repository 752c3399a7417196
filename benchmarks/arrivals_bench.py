"""How well the arrival model forecasts the number of new deals, against simple rules, on real data.

    python benchmarks/arrivals_bench.py ../shared/data [--months 12] [--runs 20]

At the start of each of the last ``--months`` months of each public set (and a 30,000-deal demo company),
forecast how many deals the next month creates with only what was known then:

- ``glm``: the arrival model (``scoring.models.arrivals``: Poisson GLM on trend, month and weekday, by
  segment where the data supports it);
- ``trailing_90d``: the last 90 days' daily average times the month's days;
- ``seasonal_naive``: the same month a year before (where the history has it).

Prints per set and method the mean absolute percentage error and the bias (summed error over summed
actual). Then companies whose true rate is known (``--runs`` each; with and without a yearly wave, small and
large, growing or not): the next two quarters' counts forecast against their true expected counts (mean error
and root-mean-square error of the ratio minus 1). The arrival model's forms and its choice among them by a
backtest of the company's own recent months came out of this comparison: one fixed form (a trend with month and
weekday) lost to the plain trailing average on every real set; the yearly cycle of its reference form came out of
the known rates (a trend read without it from a seasonal history took the season's phase for decline).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).parent))

from adapters import ADAPTERS  # noqa: E402

from scoring.data.demo import DemoCompany  # noqa: E402
from scoring.models.arrivals import ArrivalModel  # noqa: E402

#: IBM's sample has no dates (its adapter spreads creation evenly over three years): nothing to forecast there.
SETS = (("BPI 2012", "bpi2012", "bpi_challenge_2012"), ("IT consulting", "it-consulting", "win_prediction_it_consulting"),
        ("Maven", "maven", "maven_crm_sales_opportunities"))


def compare(name: str, deals: pd.DataFrame, months: int) -> None:
    created = deals["created_at"]
    last = pd.Period(created.max(), "M")  # the last month is partial: forecast up to the one before
    dates = [(last - k).start_time for k in range(months, 0, -1)]
    dates = [d for d in dates if (d - created.min()).days >= 90]
    errors: dict[str, list[tuple[float, float]]] = {"glm": [], "trailing_90d": [], "seasonal_naive": []}
    for as_of in dates:
        end = (pd.Period(as_of, "M")).end_time.normalize()
        actual = float(((created >= as_of) & (created < end + pd.Timedelta(days=1))).sum())
        known = deals[created < as_of]
        glm = float(ArrivalModel().fit(known, as_of).created(as_of, [(as_of, end)])[0])
        days = (end - as_of).days + 1
        trailing = float((known["created_at"] >= as_of - pd.Timedelta(days=90)).sum()) / 90 * days
        year_ago = pd.Period(as_of, "M") - 12
        errors["glm"].append((glm, actual))
        errors["trailing_90d"].append((trailing, actual))
        if year_ago.start_time >= created.min():
            naive = float(((created >= year_ago.start_time) & (created < year_ago.end_time)).sum())
            errors["seasonal_naive"].append((naive, actual))
    print(f"\n{name}: {len(deals):,} deals, {len(dates)} monthly forecasts")
    print(f"{'method':<16} {'months':>6} {'MAPE':>8} {'bias':>8}")
    for method, pairs in errors.items():
        if not pairs:
            continue
        f, a = np.array(pairs).T
        keep = a > 0
        mape = float(np.mean(np.abs(f[keep] - a[keep]) / a[keep]))
        print(f"{method:<16} {len(pairs):>6} {mape:>8.1%} {float((f - a).sum() / a.sum()):>+8.1%}")


def known_rates(runs: int) -> None:
    """The next two quarters' new deals forecast for simulated companies whose daily rate is known: a weekday
    pattern, a yearly growth and a yearly wave rising from the history's start (three years of history)."""
    as_of = pd.Timestamp("2025-01-01")
    start = as_of - pd.Timedelta(days=3 * 365)
    print(f"\nKnown rates, {runs} companies each: next two quarters' new deals over their expected count")
    print(f"{'deals a day':>11} {'growth':>7} {'wave':>5} {'Q1 bias':>8} {'Q1 RMSE':>8} {'Q2 bias':>8} {'Q2 RMSE':>8}")
    for per_day, growth, wave in ((0.4, 0.4, 0.0), (0.4, 0.0, 0.25), (1.5, 0.0, 0.0), (1.5, 0.0, 0.25), (1.5, 0.2, 0.25),
                                  (5.0, 0.0, 0.25), (12.0, 0.0, 0.25), (12.0, 0.4, 0.0)):
        day = pd.date_range(start, as_of + pd.Timedelta(days=180), freq="D")
        years = ((day - as_of) / pd.Timedelta(days=365.25)).to_numpy(dtype=float)
        season = 1 + wave * np.sin(2 * np.pi * ((day - start) / pd.Timedelta(days=365.25)).to_numpy(dtype=float))
        rate = per_day * (1 + growth) ** years * np.where(day.day_of_week < 5, 1.2, 0.5) * season
        past = np.asarray(day < as_of)
        truth = np.array([rate[~past][:90].sum(), rate[~past][90:].sum()])
        bounds = [(as_of, as_of + pd.Timedelta(days=89)), (as_of + pd.Timedelta(days=90), day[-1])]
        ratios = []
        for seed in range(runs):
            rng = np.random.default_rng(seed)
            counts = rng.poisson(rate[past])
            created = pd.to_datetime(np.repeat(day[past].to_numpy(), counts)
                                     + (rng.random(counts.sum()) * 86400e9).astype("timedelta64[ns]"))
            deals = pd.DataFrame({"deal_id": np.arange(len(created)).astype(str), "created_at": created, "amount": 1000.0,
                                  "status": np.where(np.arange(len(created)) % 3 == 0, "won", "lost"),
                                  "closed_at": created + pd.Timedelta(days=1)})
            ratios.append(ArrivalModel().fit(deals, as_of).created(as_of, bounds) / truth - 1)
        e = np.array(ratios)
        print(f"{per_day:>11g} {growth:>7.0%} {wave:>5g} {e[:, 0].mean():>+8.1%} {np.sqrt((e[:, 0] ** 2).mean()):>8.1%} "
              f"{e[:, 1].mean():>+8.1%} {np.sqrt((e[:, 1] ** 2).mean()):>8.1%}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("shared", type=Path, help="../shared/data")
    parser.add_argument("--months", type=int, default=12)
    parser.add_argument("--runs", type=int, default=20, help="simulated companies per known rate")
    args = parser.parse_args()
    for name, key, folder in SETS:
        deals = ADAPTERS[key](args.shared / folder).deals.copy()
        deals["created_at"] = pd.to_datetime(deals["created_at"])
        deals["closed_at"] = pd.to_datetime(deals.get("closed_at"))
        compare(name, deals, args.months)
    demo = DemoCompany().generate(30_000, seed=1, end="2026-01-01")
    compare("Demo 30,000 (40 % yearly growth)", demo.deals, args.months)
    known_rates(args.runs)


if __name__ == "__main__":
    main()
