"""Forecast quality and speed on the demo company, whose true probabilities are known.

    python benchmarks/forecast_bench.py [--deals 100000] [--coverage-deals 20000] [--runs 5]

1. Accuracy: a bundle trained on everything known at the end of the history forecasts the open
   deals' won revenue for the next quarter; the truth is the generator's own P(won within the
   quarter) for each deal (Monte Carlo of its process from the deal's state), summed with amounts.
2. Range: a monthly backtest over two years; how often the model's P10-P90 held what actually closed.
3. Speed: the whole forecast (state, booster, quantiles) of 100,000 open deals; median of several runs.
"""
from __future__ import annotations

import argparse
import os
import statistics
import time

import numpy as np
import pandas as pd

from scoring.bundle import ModelBundle
from scoring.data.contract import load_deal_history, load_open_deals
from scoring.data.demo import DemoCompany
from scoring.forecast.backtest import backtest
from scoring.forecast.revenue import forecast, per_period, period_bounds, period_horizons, won_revenue_quantiles
from scoring.models.compiled import compile_cache_dir
from scoring.scores import deal_state
from scoring.train import train_bundle

END = pd.Timestamp("2025-12-31")


def accuracy(deals: int) -> tuple[ModelBundle, pd.DataFrame]:
    company = DemoCompany().generate(deals, seed=0, end=END)
    data = load_deal_history(company.deals, company.history)
    start = time.perf_counter()
    bundle = train_bundle(data, as_of=END)
    print(f"trained on {deals:,} deals in {time.perf_counter() - start:.1f} s")
    as_of = END + pd.Timedelta(days=1)
    open_deals = load_open_deals(company.open_deals, bundle.config)
    result = forecast(bundle, open_deals, as_of, "quarter", 2)
    bounds = period_bounds(as_of, "quarter", 2)
    horizons = [*period_horizons(as_of, bounds), 1e9]
    days = (as_of - open_deals["stage_entered_at"]).dt.total_seconds() / 86400
    truth = company.company.win_within(open_deals, open_deals["stage"], days, horizons, samples=400)
    amount = open_deals["amount"].to_numpy(dtype=float)
    true_in = per_period(truth)
    true_total = truth[:, -1] @ amount
    print(f"{len(open_deals):,} open deals as of {as_of.date()}")
    print(f"{'period':<24} {'truth':>14} {'model':>14} {'model/truth':>12} {'fixed':>14} {'fixed/truth':>12}")
    for k, (s, e) in enumerate(bounds):
        t = true_in[:, k] @ amount
        m, f = result.model_expected[k], result.fixed_expected[k]
        print(f"{f'{s.date()} to {e.date()}':<24} {t:>14,.0f} {m:>14,.0f} {m / t:>12.3f} {f:>14,.0f} {f / t:>12.3f}")
    print(f"{'all future':<24} {true_total:>14,.0f} {result.total_expected:>14,.0f} "
          f"{result.total_expected / true_total:>12.3f} {result.total_fixed:>14,.0f} {result.total_fixed / true_total:>12.3f}")
    q = won_revenue_quantiles(amount, true_in[:, :1], seed=1)[0]
    print(f"next quarter P10/P50/P90: model {', '.join(f'{v:,.0f}' for v in result.model_quantiles[0])}; "
          f"from the true probabilities {', '.join(f'{v:,.0f}' for v in q)}")
    return bundle, open_deals


def coverage(deals: int) -> None:
    company = DemoCompany().generate(deals, seed=3, end=END)
    data = load_deal_history(company.deals, company.history)
    start = time.perf_counter()
    result = backtest(data, "2024-01-01", "2025-11-01", "month", periods=1)
    summary = result.summary().set_index("model")
    print(f"monthly backtest, {deals:,} deals, {result.periods['as_of'].nunique()} as-of dates "
          f"({time.perf_counter() - start:.0f} s):")
    print(summary[["periods", "relative_error", "bias", "coverage_p10_p90", "log_loss"]].round(3).to_string())


def speed(bundle: ModelBundle, open_deals: pd.DataFrame, runs: int, n: int = 100_000) -> None:
    copies = -(-n // len(open_deals))
    many = pd.concat([open_deals.assign(deal_id=open_deals["deal_id"] + f"-{i}") for i in range(copies)],
                     ignore_index=True).head(n)
    as_of = END + pd.Timedelta(days=1)
    medians = {}
    for label in ("LightGBM's own prediction", "compiled booster (lleaves)"):
        if label.startswith("compiled"):
            problem = bundle.compile(compile_cache_dir(os.environ))
            assert problem is None, problem
        times = []
        for _ in range(runs):
            start = time.perf_counter()
            forecast(bundle, many, as_of, "quarter", 4)
            times.append(time.perf_counter() - start)
        medians[label] = statistics.median(times)
        print(f"forecast of {len(many):,} open deals, 4 quarters with P10/P50/P90, {label}: median "
              f"{medians[label]:.2f} s over {runs} runs ({', '.join(f'{t:.2f}' for t in times)})")
    rows, _ = deal_state(bundle, many, as_of)
    p_win, by_end = bundle.model.win_by(rows, np.array([90.0, 181.0, 273.0, 365.0]))
    amount = many["amount"].to_numpy(dtype=float)
    start = time.perf_counter()
    won_revenue_quantiles(amount, np.column_stack([per_period(by_end), p_win]))
    quantile_s = time.perf_counter() - start
    plain, fast = medians.values()
    print(f"compiled / plain: {plain / fast:.1f}x faster (same run); the quantiles take {quantile_s:.2f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--deals", type=int, default=100_000)
    parser.add_argument("--coverage-deals", type=int, default=20_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--skip-coverage", action="store_true", help="Only accuracy and speed (coverage takes minutes).")
    args = parser.parse_args()
    bundle, open_deals = accuracy(args.deals)
    speed(bundle, open_deals, args.runs)
    if not args.skip_coverage:
        coverage(args.coverage_deals)


if __name__ == "__main__":
    main()
