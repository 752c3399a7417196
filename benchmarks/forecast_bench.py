"""Forecast quality and speed on the demo company, whose true probabilities are known.

    python benchmarks/forecast_bench.py [--deals 100000] [--seed 0] [--dormant-share 0] [--coverage-deals 20000]
                                        [--runs 5] [--seeds 3]
                                        [--skip-coverage | --only-coverage [--coverage-period month] | --new-deal-seeds K |
                                         --real DIR]

1. Accuracy: a bundle trained on everything known at the end of the history forecasts the open
   deals' won revenue for the next quarters; the truth is the generator's own P(won within the
   quarter) for each deal (Monte Carlo of its process from the deal's state), summed with amounts.
   Bookings: the forecast (booked + open deals + new deals) beside the generator's true distribution of
   what each period books (``DemoData.bookings_truth``: replays of the future, new deals included).
2. Range: quarterly and monthly backtests of bookings on demo companies with market shocks (a
   per-quarter effect on every deal's decisions), several seeds: accuracy, bias and how often P10-P90
   held everything booked, for the model, the fixed percentages, the fixed percentages in the period of the
   reps' close dates as they stood at each as-of date (replayed from the demo's field history) and the
   seasonal naive.
3. Speed: the whole forecast (state, booster, quantiles, new deals, booked) of 100,000 open deals over
   4 quarters; median of several runs.

With ``--new-deal-seeds K``, only the new deals' part, on K companies of ``--deals`` deals: the arrival model's
count and won revenue of deals created in the next 4 quarters against the generator's own. With ``--real
../shared/data``, only bookings backtests of the last periods of the real public sets.
"""
from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path

import numpy as np
import pandas as pd

from scoring.bundle import ModelBundle
from scoring.data.contract import load_deal_history, load_open_deals
from scoring.data.demo import DemoCompany, DemoData
from scoring.forecast.backtest import backtest
from scoring.forecast.revenue import forecast, per_period, period_bounds, period_horizons, won_revenue_quantiles
from scoring.models.compiled import compile_cache_dir
from scoring.scores import deal_state
from scoring.train import train_bundle

END = pd.Timestamp("2026-01-01")  # observed at the start of a quarter: the next quarter is a whole one
SHOCK_SD = 0.15


def accuracy(deals: int, seed: int = 0, dormant_share: float = 0.0) -> tuple[ModelBundle, pd.DataFrame, pd.DataFrame]:
    company = DemoCompany(dormant_share=dormant_share).generate(deals, seed=seed, end=END)
    data = load_deal_history(company.deals, company.history)
    start = time.perf_counter()
    bundle = train_bundle(data, as_of=END)
    print(f"trained on {deals:,} deals in {time.perf_counter() - start:.1f} s")
    as_of = END
    open_deals = load_open_deals(company.open_deals, bundle.config)
    result = forecast(bundle, open_deals, as_of, "quarter", 2)
    bounds = period_bounds(as_of, "quarter", 2)
    horizons = [*period_horizons(as_of, bounds), 1e9]
    days = (as_of - open_deals["stage_entered_at"]).dt.total_seconds() / 86400
    truth = company.company.win_within(open_deals, open_deals["stage"], days, horizons, samples=400)
    truth[company.dormant_open()] = 0.0  # deals nobody works are never won
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
    bookings(bundle, company, open_deals, data.deals)
    return bundle, open_deals, data.deals


def bookings(bundle: ModelBundle, company: DemoData, open_deals: pd.DataFrame, history: pd.DataFrame) -> None:
    """The bookings forecast beside the generator's true distribution of bookings."""
    for period, periods in (("quarter", 4), ("month", 6)):
        start = time.perf_counter()
        truth = company.bookings_truth(period, periods, replicates=200)
        took = time.perf_counter() - start
        document = forecast(bundle, open_deals, END, period, periods, history=history).to_json()
        print(f"\nbookings per {period} (truth: 200 replays of the future, {took:.0f} s):")
        print(f"{'period':<12} {'part':<10} {'truth':>12} {'model':>12} {'model/truth':>11} "
              f"{'true P10-P90':>25} {'model P10-P90':>25}")
        for k, part in enumerate([*document["periods"], document["total"]]):
            row = truth.iloc[k]
            for name in ("pipeline", "new_deals", "bookings"):
                t, m = row[f"{name}_expected"], part[name]["expected"]
                print(f"{str(row['start']):<12} {name:<10} {t:>12,.0f} {m:>12,.0f} {m / t:>11.3f} "
                      f"{row[f'{name}_p10']:>12,.0f}-{row[f'{name}_p90']:<12,.0f} "
                      f"{part[name]['p10']:>12,.0f}-{part[name]['p90']:<12,.0f}")


def coverage(deals: int, seeds: int, periods: tuple[str, ...] = ("quarter", "month")) -> None:
    """Bookings backtests on companies with market shocks: quarterly over 4 years, monthly over 2."""
    plans = (("quarter", "2022-01-01", "2025-10-01"), ("month", "2024-01-01", "2025-12-01"))
    for every, first, last in (plan for plan in plans if plan[0] in periods):
        tables = []
        for seed in range(1, seeds + 1):
            company = DemoCompany(shock_sd=SHOCK_SD).generate(deals, seed=seed, end=END, years=6)
            # with the reps' close dates as they changed, so the reps' own forecast is replayed as it stood
            data = load_deal_history(company.deals, company.history, field_history=company.field_history)
            start = time.perf_counter()
            result = backtest(data, first, last, every, periods=1, seed=seed)
            summary = result.bookings_summary().assign(seed=seed)
            tables.append(summary.merge(result.bookings[result.bookings["complete"]].groupby("method").apply(
                lambda g: ((g["p10"] <= g["actual"]) & (g["actual"] <= g["p90"])).sum(), include_groups=False)
                .rename("covered").reset_index(), on="method"))
            print(f"{every}ly bookings backtest, seed {seed}: {deals:,} deals, shocks sd {SHOCK_SD}, "
                  f"{result.bookings['as_of'].nunique()} as-of dates ({time.perf_counter() - start:.0f} s)")
            print(summary[["method", "periods", "accuracy", "bias", "coverage_p10_p90", "new_deal_share"]]
                  .round(3).to_string(index=False))
        pooled = pd.concat(tables).groupby("method", sort=False).agg(
            periods=("periods", "sum"), covered=("covered", "sum"), accuracy=("accuracy", "mean"), bias=("bias", "mean"))
        pooled["coverage_p10_p90"] = pooled["covered"] / pooled["periods"]
        print(f"{every}ly, {seeds} seeds pooled:")
        print(pooled.round(3).to_string())


def speed(bundle: ModelBundle, open_deals: pd.DataFrame, history: pd.DataFrame, runs: int, n: int = 100_000) -> None:
    copies = -(-n // len(open_deals))
    many = pd.concat([open_deals.assign(deal_id=open_deals["deal_id"] + f"-{i}") for i in range(copies)],
                     ignore_index=True).head(n)
    as_of = END + pd.Timedelta(days=1)
    medians = {}
    history = history[history["status"] != "open"]
    for label in ("LightGBM's own prediction", "compiled booster (lleaves)"):
        if label.startswith("compiled"):
            problem = bundle.compile(compile_cache_dir(os.environ))
            assert problem is None, problem
        times = []
        for _ in range(runs):
            start = time.perf_counter()
            forecast(bundle, many, as_of, "quarter", 4, history=history)
            times.append(time.perf_counter() - start)
        medians[label] = statistics.median(times)
        print(f"forecast of {len(many):,} open deals, 4 quarters with P10/P50/P90, new deals and booked, {label}: median "
              f"{medians[label]:.2f} s over {runs} runs ({', '.join(f'{t:.2f}' for t in times)})")
    rows, _ = deal_state(bundle, many, as_of)
    p_win, by_end = bundle.model.win_by(rows, np.array([90.0, 181.0, 273.0, 365.0]))
    amount = many["amount"].to_numpy(dtype=float)
    start = time.perf_counter()
    won_revenue_quantiles(amount, np.column_stack([per_period(by_end), p_win]))
    quantile_s = time.perf_counter() - start
    plain, fast = medians.values()
    print(f"compiled / plain: {plain / fast:.1f}x faster (same run); the quantiles take {quantile_s:.2f} s")


def new_deal_spread(deals: int, seeds: int) -> None:
    """New deals alone on ``seeds`` demo companies (seeds 1..): the arrival model's expected count and won
    revenue of deals created in the next 4 quarters against the generator's own (its arrival ramp, and 200
    replays of the future); no win model is trained, so this takes seconds per company."""
    from scoring.models.arrivals import ArrivalModel

    print(f"new deals of the next 4 quarters, {seeds} companies of {deals:,} deals:")
    print(f"{'seed':>4} {'count model/truth':>18} {'revenue per new deal':>21} {'new deals model/truth':>22}  rate form")
    ratios: dict[str, list[float]] = {"count": [], "each": [], "revenue": []}
    for seed in range(1, seeds + 1):
        company = DemoCompany().generate(deals, seed=seed, end=END)
        data = load_deal_history(company.deals, company.history)
        bounds = period_bounds(END, "quarter", 4)
        model = ArrivalModel().fit(data.deals, END)
        count = float(model.created(END, bounds).sum())
        revenue = float(model.expected(END, bounds).revenue.sum())
        ramp = company.arrivals
        assert ramp is not None
        x0, x1 = ((t - ramp.start) / pd.Timedelta(days=1) for t in (END, bounds[-1][1] + pd.Timedelta(days=1)))
        true_count = ramp.deals * (np.exp(ramp.rate * x1) - np.exp(ramp.rate * x0)) / np.expm1(ramp.rate * ramp.span)
        true_revenue = float(company.bookings_truth("quarter", 4, replicates=200).iloc[-1]["new_deals_expected"])
        ratios["count"].append(count / true_count)
        ratios["each"].append((revenue / count) / (true_revenue / true_count))
        ratios["revenue"].append(revenue / true_revenue)
        print(f"{seed:>4} {ratios['count'][-1]:>18.3f} {ratios['each'][-1]:>21.3f} {ratios['revenue'][-1]:>22.3f}  "
              f"{model.spec_.name}", flush=True)
    for name, label in (("count", "count"), ("each", "revenue per new deal"), ("revenue", "new deals' bookings")):
        values = np.array(ratios[name])
        print(f"{label}: mean {values.mean():.3f}, standard deviation {values.std(ddof=1):.3f}, within 5 % in "
              f"{int((np.abs(values - 1) <= 0.05).sum())} of {len(values)}")


#: Real sets with dated deals (IBM's has no dates; BPI 2012 spans five months): (adapter, folder, period, periods).
REAL_SETS = (("it-consulting", "win_prediction_it_consulting", "quarter", 8),
             ("it-consulting", "win_prediction_it_consulting", "month", 12),
             ("maven", "maven_crm_sales_opportunities", "month", 10))


def real_bookings(shared: Path) -> None:
    """Bookings backtests on the real public sets (``../shared/data``, through ``benchmarks/adapters.py``): the
    last periods before each set ends, the model against the fixed percentages and the seasonal naive."""
    import sys
    import tempfile

    sys.path.insert(0, str(Path(__file__).parent))
    from adapters import ADAPTERS

    from scoring.forecast.backtest import earliest_start

    for key, folder, every, count in REAL_SETS:
        adapted = ADAPTERS[key](shared / folder)
        with tempfile.TemporaryDirectory() as tmp:
            adapted.write(Path(tmp))
            history = Path(tmp) / "stage_history.csv"
            data = load_deal_history(Path(tmp) / "deals.csv", history if history.exists() else None,
                                     config=adapted.config)
        freq = "Q" if every == "quarter" else "M"
        last = pd.Period(data.deals["created_at"].max(), freq) - 1
        first = max(last - (count - 1), pd.Period(earliest_start(data), freq) + 1)
        start = time.perf_counter()
        result = backtest(data, first.start_time, last.start_time, every, periods=1)
        print(f"{key}, {every}ly bookings from {first} to {last} ({time.perf_counter() - start:.0f} s):")
        print(result.bookings_summary()[["method", "periods", "accuracy", "bias", "coverage_p10_p90", "new_deal_share"]]
              .round(3).to_string(index=False), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--deals", type=int, default=100_000)
    parser.add_argument("--coverage-deals", type=int, default=20_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--seeds", type=int, default=3, help="Demo companies with shocks in the backtests.")
    parser.add_argument("--seed", type=int, default=0, help="The demo company of the accuracy and speed parts.")
    parser.add_argument("--dormant-share", type=float, default=0.0,
                        help="The accuracy part's company leaves this share of new deals unworked, open for good.")
    parser.add_argument("--skip-coverage", action="store_true", help="Only accuracy and speed (coverage takes minutes).")
    parser.add_argument("--only-coverage", action="store_true", help="Only the bookings backtests.")
    parser.add_argument("--coverage-period", choices=("quarter", "month"), action="append",
                        help="Only these backtests (repeatable; both unless given).")
    parser.add_argument("--new-deal-seeds", type=int, default=0,
                        help="Only new deals' forecast against the truth on this many companies of --deals deals.")
    parser.add_argument("--real", type=Path, metavar="SHARED_DATA",
                        help="Only bookings backtests on the real public sets in this folder (../shared/data).")
    args = parser.parse_args()
    if args.real:
        real_bookings(args.real)
        return
    if args.new_deal_seeds:
        new_deal_spread(args.deals, args.new_deal_seeds)
        return
    if not args.only_coverage:
        bundle, open_deals, history = accuracy(args.deals, args.seed, args.dormant_share)
        speed(bundle, open_deals, history, args.runs)
    if not args.skip_coverage:
        coverage(args.coverage_deals, args.seeds, tuple(args.coverage_period or ("quarter", "month")))


if __name__ == "__main__":
    main()
