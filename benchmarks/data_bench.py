"""How fast demo data is made and a deal history is read and validated.

    python benchmarks/data_bench.py [--deals 100000] [--runs 3]

Prints the median of several runs of each step; run by hand, never from the tests.
"""
from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from scoring.data.contract import load_deal_history
from scoring.data.demo import DemoCompany
from scoring.data.summary import check_sufficiency


def median_seconds(step: Callable[[], object], runs: int) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--deals", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        demo = DemoCompany().generate(args.deals, seed=0, end="2025-12-31")
        gen = median_seconds(lambda: DemoCompany().generate(args.deals, seed=0, end="2025-12-31"), args.runs)
        write = median_seconds(lambda: demo.write(out), args.runs)
        load = median_seconds(lambda: load_deal_history(out / "deals.csv", out / "stage_history.csv"), args.runs)
        data = load_deal_history(out / "deals.csv", out / "stage_history.csv")
        suff = median_seconds(lambda: check_sufficiency(data), args.runs)
    print(f"{args.deals:,} deals, {len(demo.history):,} stage entries; median of {args.runs} runs")
    print(f"  generate          {gen:6.2f} s")
    print(f"  write CSV files   {write:6.2f} s")
    print(f"  read + validate   {load:6.2f} s  ({args.deals / load:,.0f} deals/s)")
    print(f"  sufficiency       {suff:6.2f} s")


if __name__ == "__main__":
    main()
