"""Model quality and training cost.

    python benchmarks/model_bench.py demo [--deals 100000] [--runs 3]
    python benchmarks/model_bench.py data DIR     # a folder written by benchmarks/adapters.py

demo: trains every model on a demo company as known at the holdout start, scores the holdout
snapshots, and compares each model with the generator's true probabilities: the share of the
log-loss gap between the fixed percentages and the truth that it closes, its AUC and calibration
error. Also times a whole `train_bundle` (holdout fit + refit) and reports its peak memory.
data: the holdout table of `train_bundle` on a real dataset (time split). Run by hand.
"""
from __future__ import annotations

import argparse
import resource
import statistics
import time
from pathlib import Path

import pandas as pd

from scoring.bundle import new_models, train_bundle
from scoring.config import load_config
from scoring.contract import load_deal_history
from scoring.dataset import TrainingSet
from scoring.demo import DemoCompany
from scoring.evaluation import compare
from scoring.snapshots import snapshot_dates, take_snapshots

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
    args = parser.parse_args()
    if args.what == "demo":
        demo(args.deals, args.runs)
    else:
        real(args.folder)


if __name__ == "__main__":
    main()
