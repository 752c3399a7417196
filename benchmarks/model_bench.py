"""Model quality and training cost.

    python benchmarks/model_bench.py demo [--deals 100000] [--runs 3]
    python benchmarks/model_bench.py data DIR     # a folder written by benchmarks/adapters.py
    python benchmarks/model_bench.py scale [--sizes 100000 300000 1000000] [--runs 3]

demo: trains every model on a demo company as known at the holdout start, scores the holdout
snapshots, and compares each model with the generator's true probabilities: the share of the
log-loss gap between the fixed percentages and the truth that it closes, its AUC and calibration
error. Also times a whole `train_bundle` (holdout fit + refit) and reports its peak memory.
data: the holdout table of `train_bundle` on a real dataset (time split). Run by hand.
scale: how a whole `train_bundle` grows with the number of deals: each run in a fresh process (so the
peak memory is that run's own), median seconds over the runs, seconds per 100k deals, peak memory.
"""
from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd

from scoring.data.contract import load_deal_history
from scoring.data.demo import DemoCompany
from scoring.data.presets import load_config
from scoring.evaluation.metrics import compare
from scoring.features.dataset import TrainingSet
from scoring.features.snapshots import snapshot_dates, take_snapshots
from scoring.train import new_models, train_bundle

END = pd.Timestamp("2025-12-31")


def demo(deals: int, runs: int) -> None:
    company = DemoCompany().generate(deals, seed=0, end=END)
    data = load_deal_history(company.deals, company.history)
    cut = END - pd.Timedelta(days=180)
    training = TrainingSet(data, cut)
    models = new_models()
    fit_seconds = {}
    for name, model in models.items():
        start = time.perf_counter()
        model.fit(training)
        fit_seconds[name] = time.perf_counter() - start
    rows = take_snapshots(data, snapshot_dates(cut + pd.Timedelta(days=14), END, 14), END).rows
    rows = rows[(rows["as_of"] > cut) & (rows["outcome"] != "open")]
    y = rows["outcome"].eq("won").to_numpy()
    predictions = {name: m.predict_proba(rows) for name, m in models.items()}
    predictions["truth"] = company.company.win_probability(rows, rows["stage"], rows["days_in_stage"])
    table = compare(y, predictions).set_index("model")
    fixed, truth = table.loc["fixed", "log_loss"], table.loc["truth", "log_loss"]
    table["gap_closed"] = (fixed - table["log_loss"]) / (fixed - truth)
    table["fit_s"] = pd.Series(fit_seconds)
    print(f"demo company: {deals:,} deals, {len(company.history):,} stage entries; fitted on what was known at "
          f"{cut.date()}, scored on {len(rows):,} holdout snapshot rows with known outcome")
    print(table[["log_loss", "brier", "roc_auc", "ece", "gap_closed", "fit_s"]].round(4).to_string())

    times = []
    for _ in range(runs):
        start = time.perf_counter()
        train_bundle(data, as_of=END)
        times.append(time.perf_counter() - start)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"train_bundle (holdout fit + refit of all 6 models): median {statistics.median(times):.1f} s "
          f"over {runs} run(s); peak memory of this process {peak:,.0f} MB")


def one_run(deals: int) -> None:
    """One timed train_bundle in this process; prints JSON for `scale`."""
    company = DemoCompany().generate(deals, seed=0, end=END)
    data = load_deal_history(company.deals, company.history)
    start = time.perf_counter()
    train_bundle(data, as_of=END)
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"seconds": seconds, "peak_mb": peak, "events": len(company.history)}))


def scale(sizes: list[int], runs: int) -> None:
    print(f"{'deals':>10} {'stage entries':>14} {'median s':>9} {'runs (s)':>24} {'s per 100k':>10} {'peak MB':>8}")
    base = None
    for deals in sizes:
        results = []
        for _ in range(runs):
            out = subprocess.run([sys.executable, __file__, "one", str(deals)], capture_output=True, text=True,
                                 check=True).stdout
            results.append(json.loads(out.strip().splitlines()[-1]))
        seconds = [r["seconds"] for r in results]
        median = statistics.median(seconds)
        base = base or (deals, median)
        print(f"{deals:>10,} {results[0]['events']:>14,} {median:>9.1f} {' '.join(f'{s:.1f}' for s in seconds):>24} "
              f"{median / deals * 1e5:>10.1f} {max(r['peak_mb'] for r in results):>8,.0f}", flush=True)
    if base and len(sizes) > 1:
        print(f"time ratio largest/smallest: {median / base[1]:.1f}x for {deals / base[0]:.0f}x the deals")


def real(folder: Path) -> None:
    history = folder / "stage_history.csv"
    data = load_deal_history(folder / "deals.csv", history if history.exists() else None,
                             load_config(folder / "pipeline.toml"))
    bundle = train_bundle(data)
    overall = bundle.metrics[bundle.metrics["by"] == "all"].set_index("model")
    print(f"{folder}: {len(data.deals):,} deals; holdout {bundle.holdout_start.date()} to {bundle.as_of.date()}")
    print(overall[["log_loss", "brier", "roc_auc", "ece", "n"]].sort_values("log_loss").round(4).to_string())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="what", required=True)
    d = sub.add_parser("demo")
    d.add_argument("--deals", type=int, default=100_000)
    d.add_argument("--runs", type=int, default=3)
    r = sub.add_parser("data")
    r.add_argument("folder", type=Path)
    s = sub.add_parser("scale")
    s.add_argument("--sizes", type=int, nargs="+", default=[100_000, 300_000, 1_000_000])
    s.add_argument("--runs", type=int, default=3)
    o = sub.add_parser("one")  # used by `scale`
    o.add_argument("deals", type=int)
    args = parser.parse_args()
    if args.what == "demo":
        demo(args.deals, args.runs)
    elif args.what == "scale":
        scale(args.sizes, args.runs)
    elif args.what == "one":
        one_run(args.deals)
    else:
        real(args.folder)


if __name__ == "__main__":
    main()
