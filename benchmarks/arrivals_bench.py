"""How well the arrival model forecasts the number of new deals, against simple rules, on real data.

    python benchmarks/arrivals_bench.py ../shared/data [--months 12]

At the start of each of the last ``--months`` months of each public set (and a 30,000-deal demo company),
forecast how many deals the next month creates with only what was known then:

- ``glm``: the arrival model (``scoring.models.arrivals``: Poisson GLM on trend, month and weekday, by
  segment where the data supports it);
- ``trailing_90d``: the last 90 days' daily average times the month's days;
- ``seasonal_naive``: the same month a year before (where the history has it).

Prints per set and method the mean absolute percentage error and the bias (summed error over summed
actual). The arrival model's forms and its choice among them by a backtest of the company's own recent
months came out of this comparison: one fixed form (a trend with month and weekday) lost to the plain
trailing average on every real set.
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("shared", type=Path, help="../shared/data")
    parser.add_argument("--months", type=int, default=12)
    args = parser.parse_args()
    for name, key, folder in SETS:
        deals = ADAPTERS[key](args.shared / folder).deals.copy()
        deals["created_at"] = pd.to_datetime(deals["created_at"])
        deals["closed_at"] = pd.to_datetime(deals.get("closed_at"))
        compare(name, deals, args.months)
    demo = DemoCompany().generate(30_000, seed=1, end="2026-01-01")
    compare("Demo 30,000 (40 % yearly growth)", demo.deals, args.months)


if __name__ == "__main__":
    main()
