"""Model quality and training cost.

    python benchmarks/model_bench.py demo [--deals 100000] [--runs 3]
    python benchmarks/model_bench.py data DIR     # a folder written by benchmarks/adapters.py
    python benchmarks/model_bench.py scale [--sizes 100000 300000 1000000] [--runs 3]
    python benchmarks/model_bench.py table ../shared/data      # every set below, trained with defaults

demo: trains every model on a demo company as known at the holdout start, scores the holdout
snapshots, and compares each model with the generator's true probabilities: the share of the
log-loss gap between the fixed percentages and the truth that it closes, its AUC and calibration
error. Also times a whole `train_bundle` (holdout fit + refit) and reports its peak memory.
data: the holdout table of `train_bundle` on a real dataset (time split). Run by hand.
table: one table over the public sets (BPI Challenge 2012, IT consulting, IBM, Maven; adapted by
benchmarks/adapters.py into a temporary folder) and seven CRM-shaped exports of demo companies (a
Salesforce report pair of 300 deals, a HubSpot export of 3,000, a Pipedrive export of 30,000, an Odoo export
with its tracking values of 3,000, a Dynamics 365 workbook of 3,000, a Zoho CRM export with its Stage History of
3,000, a Bitrix24 pull of 3,000 with its stage history), each
trained with defaults: the holdout log-loss, AUC and ECE of every candidate, which one serves, and how far
the served one is from the best (target: within 0.005).
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
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from scoring.bundle import ModelBundle
from scoring.data.contract import DealHistory, load_deal_history, load_open_deals
from scoring.data.demo import DemoCompany, DemoData
from scoring.data.exports import (
    bitrix24_deals,
    dynamics_opportunities,
    hubspot_deals,
    odoo_leads,
    pipedrive_deals,
    salesforce_reports,
    zoho_deals,
)
from scoring.data.presets import load_config
from scoring.errors import ScoringError
from scoring.evaluation.metrics import compare
from scoring.evaluation.selection import choose_calibration
from scoring.features.dataset import TrainingSet
from scoring.features.snapshots import snapshot_dates, take_snapshots
from scoring.scores import deal_state, score_deals
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
    choose_calibration(models["model"], rows)  # as training does: the calibration and blend that did best here
    predictions = {name: m.predict_proba(rows) for name, m in models.items()}
    predictions["truth"] = company.company.win_probability(rows, rows["stage"], rows["days_in_stage"])
    table = compare(y, predictions).set_index("model")
    fixed, truth = table.loc["fixed", "log_loss"], table.loc["truth", "log_loss"]
    table["gap_closed"] = (fixed - table["log_loss"]) / (fixed - truth)
    table["fit_s"] = pd.Series(fit_seconds)
    print(f"demo company: {deals:,} deals, {len(company.history):,} stage entries; fitted on what was known at "
          f"{cut.date()}, scored on {len(rows):,} holdout snapshot rows with known outcome")
    print(table[["log_loss", "brier", "roc_auc", "ece", "gap_closed", "fit_s"]].round(4).to_string())

    calibrator = models["model"].calibrator_
    if calibrator is not None:
        print(f"calibration chosen: {calibrator.kind}, blend weight {models['model'].blend_weight_} with "
              f"{models['model'].prior_name_} (window's "
              "cross-validated log-loss " + ", ".join(f"{k} {v:.4f}" for k, v in calibrator.scores.items()) + ")")

    times = []
    for _ in range(max(runs, 1)):
        start = time.perf_counter()
        bundle = train_bundle(data, as_of=END)
        times.append(time.perf_counter() - start)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"train_bundle (holdout fit + refit of all 6 models): median {statistics.median(times):.1f} s "
          f"over {runs} run(s); peak memory of this process {peak:,.0f} MB")
    open_deals(company, bundle)


def open_deals(company: DemoData, bundle: ModelBundle) -> None:
    """The open deals at the end, scored by the bundle trained on everything: how many distinct win
    probabilities, and the next quarter's expected won revenue against the truth's (the generator's process
    simulated forward from each deal's state)."""
    deals = company.open_deals
    scored, _ = score_deals(bundle, load_open_deals(deals, bundle.config), END, top=0)
    state, _ = deal_state(bundle, load_open_deals(deals, bundle.config), END)
    quarter_days = float((END + pd.offsets.QuarterEnd(1) - END) / pd.Timedelta(days=1))
    truth = company.company.win_within(deals, state["stage"], state["days_in_stage"], [quarter_days, 1e9])
    _, by = bundle.model.win_by(state, np.array([quarter_days]))
    amount = state["amount"].to_numpy(dtype=float)
    p = scored["win_probability"].to_numpy()
    print(f"open deals at {END.date()}: {len(deals):,}; distinct win probabilities {len(np.unique(p)):,} "
          f"({len(np.unique(p)) / len(p):.1%} of the deals; target 90 %)")
    for label, model_value, true_value in (
            ("the next quarter's expected won revenue", float(amount @ by[:, 0]), float(amount @ truth[:, 0])),
            ("expected won revenue, eventually", float(amount @ p), float(amount @ truth[:, 1])),
            ("expected wins (count), eventually", float(p.sum()), float(truth[:, 1].sum()))):
        print(f"{label}: model {model_value:,.0f}, truth {true_value:,.0f} ({model_value / true_value - 1:+.1%}; "
              "target within 5 %)")


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


def sets(shared: Path, work: Path) -> dict[str, DealHistory]:
    """Every set of the table, loaded as the CLI would (adapters for the public ones, presets for the exports)."""
    from adapters import ADAPTERS

    out: dict[str, DealHistory] = {}
    for name, folder in (("BPI 2012", "bpi_challenge_2012"), ("IT consulting", "win_prediction_it_consulting"),
                         ("IBM", "ibm_sales_win_loss"), ("Maven", "maven_crm_sales_opportunities")):
        key = {"BPI 2012": "bpi2012", "IT consulting": "it-consulting", "IBM": "ibm", "Maven": "maven"}[name]
        adapted = ADAPTERS[key](shared / folder)
        adapted.write(work / key)
        history = work / key / "stage_history.csv"
        out[name] = load_deal_history(work / key / "deals.csv", history if history.exists() else None,
                                      load_config(work / key / "pipeline.toml"))
    for crm, deals in (("salesforce", 300), ("hubspot", 3000), ("pipedrive", 30000), ("odoo", 3000),
                       ("dynamics", 3000), ("zoho", 3000), ("bitrix24", 3000)):
        demo = DemoCompany().generate(deals, seed=deals + (crm == "dynamics"), end=END)
        folder = work / crm
        folder.mkdir()
        files: tuple[Path, Path | None]
        if crm == "salesforce":
            files = salesforce_reports(demo, folder)
        elif crm == "odoo":
            files = odoo_leads(demo, folder)
        elif crm in ("zoho", "bitrix24"):  # the same company as HubSpot's and Odoo's, with its stage history
            files = (zoho_deals if crm == "zoho" else bitrix24_deals)(demo, folder)
        else:
            write = {"hubspot": hubspot_deals, "pipedrive": pipedrive_deals, "dynamics": dynamics_opportunities}[crm]
            files = (write(demo, folder), None)
        out[f"{crm.capitalize()} {deals:,}"] = load_deal_history(  # Odoo's tracking values: stage and field history
            *files, load_config(preset=crm), field_history=files[1] if crm == "odoo" else None)
    return out


def table(shared: Path) -> None:
    rows = []
    with tempfile.TemporaryDirectory() as work:
        for name, data in sets(shared, Path(work)).items():
            start = time.perf_counter()
            try:
                bundle = train_bundle(data)
            except ScoringError as exc:
                print(f"{name}: does not train: {exc}", flush=True)
                continue
            overall = bundle.metrics[bundle.metrics["by"] == "all"].set_index("model")
            best = overall.drop(index="fixed")["log_loss"].min()
            served = overall.loc[bundle.served]
            print(f"\n{name}: {len(data.deals):,} deals, holdout {bundle.holdout_start.date()} to {bundle.as_of.date()} "
                  f"({int(served['n']):,} rows), snapshots every {bundle.every_days} d, intervals "
                  f"{bundle.model.boundaries}, leaf {bundle.model.min_child_samples}, calibration "
                  f"{getattr(bundle.model.calibrator_, 'kind', 'none')}, blend {bundle.model.blend_weight_:g} with "
                  f"{bundle.model.prior_name_}; {time.perf_counter() - start:.0f} s", flush=True)
            print(overall[["log_loss", "roc_auc", "ece", "revenue_ratio"]].sort_values("log_loss").round(4).to_string(),
                  flush=True)
            print(f"serves: {bundle.served} ({served['log_loss'] - best:+.4f} from the best candidate)", flush=True)
            rows.append({"set": name, "deals": len(data.deals), "serves": bundle.served,
                         "log_loss": served["log_loss"], "auc": served["roc_auc"], "ece": served["ece"],
                         "gap_to_best": served["log_loss"] - best,
                         "win_model": overall.loc["model", "log_loss"], "win_auc": overall.loc["model", "roc_auc"],
                         "best_baseline": overall.drop(index=["model"])["log_loss"].idxmin(),
                         "baseline_log_loss": overall.drop(index=["model"])["log_loss"].min(),
                         "baseline_auc": overall.drop(index=["model", "fixed"])["roc_auc"].max()})
    print("\n" + pd.DataFrame(rows).round(4).to_string(index=False))


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
    t = sub.add_parser("table")
    t.add_argument("shared", type=Path, help="../shared/data")
    o = sub.add_parser("one")  # used by `scale`
    o.add_argument("deals", type=int)
    args = parser.parse_args()
    if args.what == "demo":
        demo(args.deals, args.runs)
    elif args.what == "scale":
        scale(args.sizes, args.runs)
    elif args.what == "one":
        one_run(args.deals)
    elif args.what == "table":
        table(args.shared)
    else:
        real(args.folder)


if __name__ == "__main__":
    main()
