"""How fast demo data is made and a deal history is read and validated.

    python benchmarks/data_bench.py [--deals 100000] [--runs 3] [--edits 0.8]

Prints the median of several runs of each step; run by hand, never from the tests. Beside the canonical
files, the same company as a Salesforce report pair (US dates with 12-hour times, formatted amounts, blank
amounts, footers, history rows of other edits: ``--edits`` per stage entry), read with ``--preset
salesforce``: every date column's format detected from its cells. Peak memory is the process's high-water
mark after each reading step (``ru_maxrss``).
"""
from __future__ import annotations

import argparse
import resource
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from scoring.data.contract import load_deal_history
from scoring.data.demo import DemoCompany
from scoring.data.exports import salesforce_reports
from scoring.data.presets import load_config
from scoring.data.summary import check_sufficiency


def median_seconds(step: Callable[[], object], runs: int) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _read(deals: Path, history: Path, preset: str | None) -> tuple[float, float]:
    start = time.perf_counter()
    load_deal_history(deals, history, load_config(preset=preset))
    return time.perf_counter() - start, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _read_apart(deals: Path, history: Path, preset: str | None) -> tuple[float, float]:
    """Seconds to read and validate, and the peak memory (MB) of a fresh process that did only that."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        return pool.submit(_read, deals, history, preset).result()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--deals", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--edits", type=float, default=0.8)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        demo = DemoCompany().generate(args.deals, seed=0, end="2025-12-31")
        gen = median_seconds(lambda: DemoCompany().generate(args.deals, seed=0, end="2025-12-31"), args.runs)
        write = median_seconds(lambda: demo.write(out), args.runs)
        load = median_seconds(lambda: load_deal_history(out / "deals.csv", out / "stage_history.csv"), args.runs)
        data = load_deal_history(out / "deals.csv", out / "stage_history.csv")
        suff = median_seconds(lambda: check_sufficiency(data), args.runs)
        peak = _read_apart(out / "deals.csv", out / "stage_history.csv", None)[1]
        deals, history = salesforce_reports(demo, out, edits=args.edits)
        rows = sum(1 for _ in history.open()) - 1
        runs = [_read_apart(deals, history, "salesforce") for _ in range(args.runs)]
        sf, sf_peak = statistics.median(r[0] for r in runs), max(r[1] for r in runs)
    print(f"{args.deals:,} deals, {len(demo.history):,} stage entries; median of {args.runs} runs")
    print(f"  generate          {gen:6.2f} s")
    print(f"  write CSV files   {write:6.2f} s")
    print(f"  read + validate   {load:6.2f} s  ({args.deals / load:,.0f} deals/s)")
    print(f"  sufficiency       {suff:6.2f} s")
    print(f"  peak memory of a process that only reads them: {peak:,.0f} MB")
    print(f"Salesforce report pair: {args.deals:,} deals, {rows:,} history lines (with footers), dates detected")
    print(f"  read + validate   {sf:6.2f} s  (target 3 s); peak memory {sf_peak:,.0f} MB (target 1 GB)")


if __name__ == "__main__":
    main()
