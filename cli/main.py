"""The ``scoring`` command line."""
from __future__ import annotations

import contextlib
import functools
import gc
import json
import os
import sys
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click
import pandas as pd
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from scoring.data.contract import DealHistory, inspect_deal_history
from scoring.data.presets import PRESETS, load_config
from scoring.data.problems import DataReport
from scoring.data.summary import SufficiencyResult, check_sufficiency, summarize
from scoring.errors import ConfigError, ScoringError
from scoring.models.compiled import compile_cache_dir
from scoring.scores import score_deals

if TYPE_CHECKING:  # imported where used: the CLI starts fast
    from scoring.engines import Engine
    from scoring.training.pipeline import TrainResult

F = TypeVar("F", bound=Callable[..., Any])
out = Console(highlight=False)
err = Console(stderr=True, highlight=False)


def friendly_errors(command: F) -> F:
    """Turn the library's errors into a one-paragraph message and exit status 1."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except ScoringError as exc:
            err.print(f"[bold red]error:[/] {escape(str(exc))}", soft_wrap=True)
            sys.exit(1)

    return wrapper  # type: ignore[return-value]


def data_options(command: F) -> F:
    """--deals, --history, --config and --preset: the options of every command that reads deals."""
    options = [
        click.option("--deals", "deals", required=True, type=click.Path(dir_okay=False, path_type=Path),
                     help="Deals file (CSV or Parquet), one row per deal."),
        click.option("--history", "history", type=click.Path(dir_okay=False, path_type=Path),
                     help="Stage history file (CSV or Parquet): deal_id, stage, entered_at."),
        click.option("--config", "config_path", type=click.Path(dir_okay=False, path_type=Path),
                     help="Pipeline configuration (TOML). Default: the textbook pipeline."),
        click.option("--preset", type=click.Choice(sorted(PRESETS), case_sensitive=False),
                     help="Read a CRM's own export: its column names, stages and conventions."),
    ]
    return _with_options(options)(command)


def _check_engine(engine: str, scheduler: str | None) -> None:
    """Refuse --scheduler without --engine dask, before any work."""
    if scheduler and engine != "dask":
        raise ConfigError("--scheduler is for --engine dask")


def engine_options(command: F) -> F:
    """--engine and --scheduler: where the work runs."""
    options = [
        click.option("--engine", type=click.Choice(["local", "dask"]), default="local", show_default=True,
                     help="local: in this process. dask: on a Dask cluster (--scheduler), else on a LocalCluster of "
                          "worker processes started on this machine."),
        click.option("--scheduler", help="Address of a running Dask scheduler (tcp://host:8786) for --engine dask."),
    ]
    return _with_options(options)(command)


def _with_options(options: list[Callable[[F], F]]) -> Callable[[F], F]:
    """Apply click options so that they show in the order listed."""

    def decorate(command: F) -> F:
        for option in reversed(options):
            command = option(command)
        return command

    return decorate


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="pipeline-scoring")
def main() -> None:
    """Learn win probabilities and revenue forecasts from your own deal history."""
    # MLflow's telemetry is on unless told otherwise, and it reads these when first imported: before any command.
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    os.environ.setdefault("DO_NOT_TRACK", "true")


@main.command("demo-data")
@click.argument("out_dir", type=click.Path(file_okay=False, path_type=Path))
@click.option("--deals", "n_deals", default=5000, show_default=True, type=click.IntRange(min=1),
              help="How many deals the company has created over the period.")
@click.option("--seed", default=0, show_default=True, type=int, help="Random seed: same seed, same files.")
@click.option("--end", default=None, type=click.DateTime(formats=["%Y-%m-%d"]),
              help="The date the history is observed at (default: today).")
@click.option("--years", default=3.0, show_default=True, type=click.FloatRange(min=0.1),
              help="Years of history before --end.")
@friendly_errors
def demo_data(out_dir: Path, n_deals: int, seed: int, end: Any, years: float) -> None:
    """Write a realistic synthetic company history to OUT_DIR.

    Files: deals.csv, stage_history.csv, open_deals.csv, pipeline.toml, and truth.csv /
    truth.json with the true probabilities the generator used.
    """
    from scoring.data.demo import DemoCompany

    end_date = (end.date() if end else date.today()).isoformat()
    with err.status(f"Simulating {n_deals:,} deals..."):
        demo = DemoCompany().generate(n_deals, seed=seed, end=end_date, years=years)
        paths = demo.write(out_dir)
    counts = demo.deals["status"].value_counts()
    out.print(f"Wrote {len(demo.deals):,} deals ({counts.get('open', 0):,} open, {counts.get('won', 0):,} won, "
              f"{counts.get('lost', 0):,} lost) and {len(demo.history):,} stage entries, observed at {end_date}:")
    for path in paths:
        out.print(f"  {path}", markup=False)


@main.command()
@data_options
@friendly_errors
def validate(deals: Path, history: Path | None, config_path: Path | None, preset: str | None) -> None:
    """Check a deal history: print a data summary and every problem found.

    Exits with status 1 when the data cannot be used (errors, or too little to learn from).
    """
    config = load_config(config_path, preset)
    with err.status(f"Reading {deals}..."):
        data, report = inspect_deal_history(deals, history, config)
    problems = len(report.errors)
    if data is not None:
        _print_summary(data)
    _print_report(report)
    if data is not None:
        sufficiency = check_sufficiency(data)
        _print_sufficiency(data, sufficiency)
        problems += len(sufficiency.problems)
    if not problems:
        out.print("[bold green]OK:[/] the data can be used to train.")
        return
    err.print(f"[bold red]error:[/] the data cannot be used: {problems} problem(s), listed above.")
    sys.exit(1)


def _print_summary(data: DealHistory) -> None:
    s = summarize(data)
    cfg = data.config
    out.print(f"[bold]Data:[/] {escape(' and '.join(data.sources))}")
    out.print(f"Pipeline: {' -> '.join(cfg.stages)}" + (f" (preset {cfg.preset})" if cfg.preset else ""), markup=False)
    out.print(f"{s.deals:,} deals: {s.by_status['open']:,} open, {s.by_status['won']:,} won, "
              f"{s.by_status['lost']:,} lost; created {s.created[0]:%Y-%m-%d} to {s.created[1]:%Y-%m-%d}"
              + (f", closed {s.closed[0]:%Y-%m-%d} to {s.closed[1]:%Y-%m-%d}" if s.closed else ""))
    if s.win_rate is not None:
        cycle = f"; median sales cycle of won deals {s.median_cycle_days:.0f} days" if s.median_cycle_days else ""
        out.print(f"Win rate {s.win_rate:.1%} of closed deals{cycle}; open pipeline {s.open_amount:,.0f}")
    out.print(f"Stage history: {s.history_rows:,} entries for {s.deals_with_history:,} deals" if s.history_rows
              else "Stage history: none (time in stage comes from stage_entered_at where given)")
    table = Table(title="Deals by stage", title_justify="left")
    for col in ("stage", "open", "won", "lost", "fixed"):
        table.add_column(col, justify="left" if col == "stage" else "right")
    for stage, row in s.by_stage.iterrows():
        table.add_row(escape(str(stage)), f"{row['open']:,}", f"{row['won']:,}", f"{row['lost']:,}",
                      f"{cfg.fixed_probability(str(stage)):.0%}")
    out.print(table)
    if s.features:
        ft = Table(title="Feature columns", title_justify="left")
        for col in ("column", "kind", "missing", "values"):
            ft.add_column(col)
        for f in s.features:
            ft.add_row(escape(f.name), f.kind, f"{f.missing:.0%}", escape(f.detail))
        out.print(ft)
    else:
        out.print("Feature columns: none (only stage, age and amount will be used)")


def _print_report(report: DataReport) -> None:
    for note in report.notes:
        out.print(f"note: {escape(note)}")
    for problem in report.warnings:
        out.print(f"[yellow]warning:[/] {escape(str(problem))}", soft_wrap=True)
    for aside in report.set_aside:
        out.print(f"[yellow]set aside:[/] {escape(str(aside))}", soft_wrap=True)
    for problem in report.errors:
        out.print(f"[bold red]error:[/] {escape(str(problem))}", soft_wrap=True)


def _print_sufficiency(data: DealHistory, result: SufficiencyResult) -> None:
    table = Table(title=f"Data sufficiency (closed deals that reached each stage; at least "
                        f"{data.config.sufficiency.min_per_stage} won and lost wanted per stage)",
                  title_justify="left")
    for col in ("stage", "reached", "won", "lost", ""):
        table.add_column(col, justify="left" if col == "stage" else "right")
    for st in result.stages:
        flag = "[yellow]thin[/]" if st.stage in result.thin_stages else "ok"
        table.add_row(escape(st.stage), f"{st.reached:,}", f"{st.won:,}", f"{st.lost:,}", flag)
    out.print(table)
    if result.thin_stages:
        out.print(f"[yellow]warning:[/] few closed deals reached {escape(', '.join(result.thin_stages))}: estimates for "
                  "those stages will lean on the others and be less certain")
    for problem in result.problems:
        out.print(f"[bold red]error:[/] {escape(problem)}", soft_wrap=True)


DEFAULT_MODEL = "models:/pipeline-scoring@champion"
MODEL_HELP = ("The model: an MLflow model URI (models:/NAME@ALIAS, models:/NAME/VERSION, runs:/...) in the store of "
              "MLFLOW_TRACKING_URI (default: ./mlflow.db), or a bundle file.")


@main.command()
@data_options
@click.option("--as-of", "as_of", type=click.DateTime(formats=["%Y-%m-%d"]),
              help="Train on what was known at this date (default: the latest date in the data).")
@click.option("--holdout-fraction", default=0.2, show_default=True, type=click.FloatRange(0.05, 0.5),
              help="The last part of the time span before --as-of held out for evaluation.")
@click.option("--seed", default=0, show_default=True, type=int)
@click.option("--model-name", default="pipeline-scoring", show_default=True, help="The registered model's name.")
@click.option("--promote", type=click.Choice(["auto", "always", "never"]), default="auto", show_default=True,
              help="auto: make the new version champion only when it beats the baselines and the champion.")
@click.option("--margin", default=0.001, show_default=True, type=click.FloatRange(0),
              help="Holdout log-loss by which a new version must beat the champion under auto.")
@click.option("--max-ece", default=0.05, show_default=True, type=click.FloatRange(0, 1),
              help="Largest holdout calibration error a version may have to be promoted under auto.")
@click.option("--tune", "tune_trials", default=0, show_default=True, type=click.IntRange(0, 1000),
              help="Search the win model's hyper-parameters with Optuna first (this many trials, each a nested run).")
@click.option("--export-dir", default=Path("models"), show_default=True,
              type=click.Path(file_okay=False, path_type=Path),
              help="A promoted champion is also exported here as a bundle file (the service's fallback).")
@engine_options
@friendly_errors
def train(deals: Path, history: Path | None, config_path: Path | None, preset: str | None, as_of: Any,
          holdout_fraction: float, seed: int, model_name: str, promote: str, margin: float, max_ece: float,
          tune_trials: int, export_dir: Path, engine: str, scheduler: str | None) -> None:
    """Learn the models, evaluate them against the baselines on a time-based holdout, log and register in MLflow.
    With --engine dask the snapshots are taken and the win model's boosters fitted (lightgbm.dask) on a cluster."""
    from scoring.data.contract import load_deal_history
    from scoring.engines import LOCAL

    _check_engine(engine, scheduler)
    config = load_config(config_path, preset)
    with err.status(f"Reading {deals}..."):
        data = load_deal_history(deals, history, config)
    _print_report(data.report)
    with contextlib.ExitStack() as stack:
        where = LOCAL
        if engine == "dask":
            from scoring.engines.dask import dask_client, dask_engine

            with err.status("Starting Dask and sending it the deals..."):
                where = dask_engine(stack.enter_context(dask_client(scheduler)), data)
        result = _train_with_progress(data, where, as_of=as_of, holdout_fraction=holdout_fraction, seed=seed,
                                      model_name=model_name, promote=promote, margin=margin, max_ece=max_ece,
                                      export_dir=export_dir, tune_trials=tune_trials)
    _print_training(result, model_name)


def _train_with_progress(data: DealHistory, engine: Engine, tune_trials: int, **options: Any) -> TrainResult:
    """``train_and_log`` under a progress bar."""
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from scoring.train import new_models
    from scoring.training.pipeline import train_and_log

    # Two fits of every model (each with a header line), logging, comparing, and the search if asked.
    steps = 2 * (len(new_models()) + 1) + 2 + bool(tune_trials)
    with Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
                  TimeElapsedColumn(), console=err, transient=True) as bar:
        task = bar.add_task("Training", total=steps)

        def step(text: str) -> None:
            bar.update(task, advance=1, description=f"Training: {text.strip()}")

        return train_and_log(data, tune_trials=tune_trials, progress=step, engine=engine, **options)


def _print_training(result: TrainResult, model_name: str) -> None:
    bundle = result.bundle
    overall = bundle.metrics[bundle.metrics["by"] == "all"].set_index("model")
    table = Table(title=f"Holdout {bundle.holdout_start:%Y-%m-%d} to {bundle.as_of:%Y-%m-%d} "
                        f"({int(overall['n'].iloc[0]):,} snapshot rows with known outcome)", title_justify="left")
    for col in ("model", "log-loss", "Brier", "ROC AUC", "calibration error"):
        table.add_column(col, justify="left" if col == "model" else "right", no_wrap=col == "model")
    for name, row in overall.sort_values("log_loss").iterrows():
        table.add_row(str(name), f"{row['log_loss']:.4f}", f"{row['brier']:.4f}", f"{row['roc_auc']:.3f}",
                      f"{row['ece']:.3f}")
    out.print(table)
    out.print(f"Logged run {result.run_id}; registered {model_name} version {result.version} (alias challenger).",
              markup=False)
    colour = "green" if result.decision.promote else "yellow"
    out.print(f"[{colour}]{escape(result.decision.reason[0].upper() + result.decision.reason[1:])}.[/]", soft_wrap=True)
    if result.exported:
        out.print(f"Exported the champion to {result.exported}", markup=False)


@main.command()
@click.argument("version")
@click.option("--model-name", default="pipeline-scoring", show_default=True)
@click.option("--reason", default="promoted by hand", show_default=True, help="Recorded with the move.")
@friendly_errors
def promote(version: str, model_name: str, reason: str) -> None:
    """Make VERSION the champion, whatever the metrics say (recorded with who, when and why)."""
    from scoring.tracking import open_store
    from scoring.training.registry import move_champion

    client, _ = open_store()
    entry = move_champion(client, model_name, version, reason)
    out.print(f"{model_name}: champion moved from version {entry['from'] or '(none)'} to {entry['to']}.", markup=False)


@main.command()
@click.option("--model-name", default="pipeline-scoring", show_default=True)
@friendly_errors
def rollback(model_name: str) -> None:
    """Move the champion back to the version it pointed at before its last move."""
    from scoring.tracking import open_store
    from scoring.training.registry import rollback as roll_back

    client, _ = open_store()
    entry = roll_back(client, model_name)
    out.print(f"{model_name}: champion rolled back from version {entry['from']} to {entry['to']}.", markup=False)


def open_deal_options(verb: str, writes: str) -> Callable[[F], F]:
    """--input, --out, --as-of, --model and --preset: the options of the commands that read open deals."""
    options = [
        click.option("--input", "input_path", required=True, type=click.Path(path_type=Path),
                     help=f"Open deals to {verb} (CSV or Parquet)."),
        click.option("--out", "out_path", required=True, type=click.Path(path_type=Path),
                     help=f"Where to write the {writes}."),
        click.option("--as-of", "as_of", type=click.DateTime(formats=["%Y-%m-%d"]),
                     help=f"{verb.capitalize()} as of this date (default: today)."),
        click.option("--model", "model_ref", default=DEFAULT_MODEL, show_default=True, help=MODEL_HELP),
        click.option("--preset", type=click.Choice(sorted(PRESETS), case_sensitive=False),
                     help="The CRM export the deals come from (must be the one the model was trained on)."),
    ]
    return _with_options(options)


@main.command()
@open_deal_options("score", "scores (CSV; with --engine dask a folder of Parquet parts)")
@click.option("--factors", default=3, show_default=True, type=click.IntRange(0, 10),
              help="How many factors up and down to list per deal (0: none, several times faster).")
@engine_options
@friendly_errors
def score(input_path: Path, out_path: Path, as_of: Any, model_ref: str, preset: str | None, factors: int,
          engine: str, scheduler: str | None) -> None:
    """Score open deals into a CSV: win probability beside the fixed one, expected revenue, factors.
    With --engine dask: Parquet (a file, a folder of parts or a glob) into a folder of Parquet parts,
    partition by partition, so memory follows the partition size rather than the input's."""
    when = pd.Timestamp(as_of) if as_of else pd.Timestamp(date.today())
    _check_engine(engine, scheduler)
    if engine == "dask":
        from scoring.engines.dask import dask_client, score_parquet

        bundle, _ = _model_for(model_ref, preset)
        with err.status("Scoring on Dask..."), dask_client(scheduler) as client:
            done = score_parquet(bundle, input_path, out_path, when, client, top=factors,
                                    cache_dir=compile_cache_dir(os.environ))
        out.print(f"Scored {done.deals:,} deals in {done.partitions:,} partitions as of {when:%Y-%m-%d}: expected "
                  f"revenue {done.expected_revenue:,.0f} (fixed percentages: {done.fixed_expected_revenue:,.0f}). "
                  f"Wrote {out_path}/", markup=False)
        return
    bundle, _, deals = _open_deals(input_path, model_ref, preset)
    gc.freeze()  # the model and the deals outlive scoring: the collector's passes over them cost a third of it
    try:
        scores, warnings = score_deals(bundle, deals, when, factors)
    finally:
        gc.unfreeze()
    for text in warnings:
        out.print(f"[yellow]warning:[/] {escape(text)}", soft_wrap=True)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    scores.to_csv(out_path, index=False)
    out.print(f"Scored {len(scores):,} deals as of {when:%Y-%m-%d}: expected revenue {scores['expected_revenue'].sum():,.0f} "
              f"(fixed percentages: {scores['fixed_expected_revenue'].sum():,.0f}). Wrote {out_path}", markup=False)


def _model_for(model_ref: str, preset: str | None) -> tuple[Any, dict[str, str]]:
    """The model bundle and its name and version; refused when ``preset`` is not the export it was trained on."""
    from scoring.scores import require_same_export
    from scoring.tracking import load_bundle

    bundle, info = load_bundle(model_ref)
    require_same_export(bundle, preset)
    return bundle, info


def _open_deals(input_path: Path, model_ref: str, preset: str | None) -> tuple[Any, dict[str, str], pd.DataFrame]:
    """The model bundle, its name and version, and the open deals to score with it (read with its own config)."""
    from scoring.data.contract import load_open_deals

    if input_path.is_dir():
        raise ConfigError(f"{input_path} is a folder: give one file (a folder of Parquet parts is for "
                          "`scoring score --engine dask`)")
    bundle, info = _model_for(model_ref, preset)
    deals = load_open_deals(input_path, bundle.config)
    problem = bundle.compile(compile_cache_dir(os.environ))
    if problem:
        err.print(f"[yellow]warning:[/] {escape(problem)}", soft_wrap=True)
    return bundle, info, deals


@main.command()
@open_deal_options("forecast", "forecast JSON")
@click.option("--period", type=click.Choice(["month", "quarter"]), default="quarter", show_default=True)
@click.option("--periods", type=click.IntRange(1, 36), default=4, show_default=True, help="How many periods.")
@click.option("--seed", default=0, show_default=True, type=int, help="Seed of the Monte Carlo quantiles.")
@friendly_errors
def forecast(input_path: Path, out_path: Path, as_of: Any, period: str, periods: int, seed: int, model_ref: str,
             preset: str | None) -> None:
    """Won revenue per month or quarter with its P10-P90 range, beside the fixed-percentage forecast (JSON)."""
    from scoring.forecast.revenue import forecast as make_forecast

    bundle, info, deals = _open_deals(input_path, model_ref, preset)
    when = pd.Timestamp(as_of) if as_of else pd.Timestamp(date.today())
    result = make_forecast(bundle, deals, when, period, periods, seed=seed, model_info=info)
    for text in result.warnings:
        out.print(f"[yellow]warning:[/] {escape(text)}", soft_wrap=True)
    document = result.to_json()
    out_path.parent.mkdir(parents=True, exist_ok=True)
    out_path.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    table = Table(title=f"Won revenue forecast for {len(deals):,} open deals as of {when:%Y-%m-%d}", title_justify="left")
    for col in ("period", "model expected", "P10", "P50", "P90", "fixed"):
        table.add_column(col, justify="left" if col == "period" else "right", no_wrap=col == "period")
    for p in document["periods"] + [{"start": "total", "end": "", **document["total"]}]:
        m = p["model"]
        table.add_row(f"{p['start']} to {p['end']}" if p["end"] else "all future", f"{m['expected']:,.0f}",
                      f"{m['p10']:,.0f}", f"{m['p50']:,.0f}", f"{m['p90']:,.0f}", f"{p['fixed']['expected']:,.0f}")
    out.print(table)
    out.print(f"Wrote {out_path}", markup=False)


@main.command()
@data_options
@click.option("--start", required=True, type=click.DateTime(formats=["%Y-%m-%d"]), help="First as-of date.")
@click.option("--end", required=True, type=click.DateTime(formats=["%Y-%m-%d"]), help="Last as-of date.")
@click.option("--every", type=click.Choice(["month", "quarter"]), default="quarter", show_default=True,
              help="Forecast at the start of every month or quarter, one period ahead each.")
@click.option("--periods", type=click.IntRange(1, 12), default=1, show_default=True,
              help="How many periods each forecast covers.")
@click.option("--seed", default=0, show_default=True, type=int)
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Folder for backtest.csv, report.html and the PNG plots.")
@engine_options
@friendly_errors
def backtest(deals: Path, history: Path | None, config_path: Path | None, preset: str | None, start: Any, end: Any,
             every: str, periods: int, seed: int, out_dir: Path, engine: str, scheduler: str | None) -> None:
    """Replay history: at each date fit on what was known, forecast, compare with what closed; write a report.
    With --engine dask the as-of dates run in parallel on the cluster's workers."""
    from scoring.data.contract import load_deal_history
    from scoring.forecast.backtest import backtest as run_backtest
    from scoring.report.html import report_inputs, write_report

    _check_engine(engine, scheduler)
    config = load_config(config_path, preset)
    with err.status(f"Reading {deals}..."):
        data = load_deal_history(deals, history, config)
    _print_report(data.report)
    with err.status("Backtesting...") as status, contextlib.ExitStack() as stack:
        mapper = None
        if engine == "dask":
            from scoring.engines.dask import dask_client, map_on_cluster

            client = stack.enter_context(dask_client(scheduler))
            mapper = functools.partial(map_on_cluster, client)
        result = run_backtest(data, start, end, every, periods, seed, mapper=mapper,
                              progress=lambda text: status.update(f"Backtesting: {text}"))
    out_dir.mkdir(parents=True, exist_ok=True)
    result.to_csv_frame().to_csv(out_dir / "backtest.csv", index=False)
    summary = result.summary()
    path = write_report(report_inputs(data, title=f"Backtest {pd.Timestamp(start):%Y-%m-%d} to {pd.Timestamp(end):%Y-%m-%d}",
                                      metrics=summary, reliability=result.reliability(), backtest=result), out_dir)
    table = Table(title=f"Backtest: forecasts at {result.periods['as_of'].nunique()} dates, every {every}",
                  title_justify="left")
    for col in ("model", "periods", "relative error", "bias", "P10-P90 coverage", "log-loss", "Brier"):
        table.add_column(col, justify="left" if col == "model" else "right", no_wrap=col == "model")
    for _, r in summary.sort_values("relative_error").iterrows():
        table.add_row(r["model"], f"{r['periods']}", _pct(r["relative_error"]), _pct(r["bias"], "{:+.1%}"),
                      _pct(r["coverage_p10_p90"], "{:.0%}"), f"{r['log_loss']:.4f}", f"{r['brier']:.4f}")
    out.print(table)
    out.print(f"Wrote {out_dir / 'backtest.csv'} and {path}", markup=False)


def _pct(value: float, fmt: str = "{:.1%}") -> str:
    return "n/a" if pd.isna(value) else fmt.format(value)


@main.command()
@data_options
@click.option("--as-of", "as_of", type=click.DateTime(formats=["%Y-%m-%d"]),
              help="The KPIs as they were at this date (default: the end of the data).")
@click.option("--out", "out_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Write the JSON here (default: print it).")
@friendly_errors
def kpis(deals: Path, history: Path | None, config_path: Path | None, preset: str | None, as_of: Any,
         out_path: Path | None) -> None:
    """The classic pipeline KPIs as JSON: conversion, win rate, cycle, deal size, lead velocity, stale deals."""
    from scoring.data.contract import data_end, load_deal_history
    from scoring.forecast.kpis import pipeline_kpis

    data = load_deal_history(deals, history, load_config(config_path, preset))
    result = pipeline_kpis(data, pd.Timestamp(as_of) if as_of else data_end(data))
    document = json.dumps(result.to_dict(), indent=2)
    if out_path is None:
        click.echo(document)
        return
    out_path.parent.mkdir(parents=True, exist_ok=True)
    out_path.write_text(document + "\n", encoding="utf-8")
    for line in result.sentences():
        out.print(line, markup=False)
    out.print(f"Wrote {out_path}", markup=False)


@main.command()
@click.option("--model", "model_ref", default=DEFAULT_MODEL, show_default=True, help=MODEL_HELP)
@friendly_errors
def stages(model_ref: str) -> None:
    """The learned stage table: win probability from each stage vs the fixed one, transitions, days in stage."""
    from scoring.tracking import load_bundle

    bundle, _ = load_bundle(model_ref)
    stage_table = bundle.stage_table()
    table = Table(title="Win probability by stage", title_justify="left")
    for col in ("stage", "fixed", "learned", "after 30 d", "after 90 d", "median days", "90 % within"):
        table.add_column(col, justify="left" if col == "stage" else "right")
    for _, r in stage_table.iterrows():
        table.add_row(escape(r["stage"]), f"{r['fixed_probability']:.0%}", f"{r['learned_probability']:.1%}",
                      f"{r['p_win_after_30d']:.1%}", f"{r['p_win_after_90d']:.1%}", f"{r['days_p50']:.0f}",
                      f"{r['days_p90']:.0f} d")
    out.print(table)
    matrix = bundle.stage_model.transition_matrix()
    mt = Table(title="Where deals go from each stage", title_justify="left")
    mt.add_column("from")
    for col in matrix.columns:
        mt.add_column(escape(str(col)), justify="right")
    for stage, row in matrix.iterrows():
        mt.add_row(escape(str(stage)), *[f"{v:.1%}" if v else "" for v in row])
    out.print(mt)


@main.command()
@click.option("--model", "model_uri", help="Model URI or bundle file. Default: SCORING_MODEL_URI, else "
                                           "models:/pipeline-scoring@champion.")
@click.option("--host", help="Address to listen on. Default: SCORING_HOST, else 127.0.0.1.")
@click.option("--port", type=click.IntRange(1, 65535), help="Port. Default: SCORING_PORT, else 8000.")
@click.option("--poll-seconds", type=click.FloatRange(min=0), help="How often to look for a new champion (0: never). "
                                                                     "Default: SCORING_POLL_SECONDS, else 30.")
@friendly_errors
def serve(model_uri: str | None, host: str | None, port: int | None, poll_seconds: float | None) -> None:
    """Serve the scoring and forecasting API (docs at /docs). Other settings come from SCORING_* variables."""
    import uvicorn
    from pydantic import ValidationError

    from scoring.serving.app import create_app
    from scoring.serving.settings import Settings

    given = {"model_uri": model_uri, "host": host, "port": port, "poll_seconds": poll_seconds}
    try:
        settings = Settings(**{k: v for k, v in given.items() if v is not None})
        settings.check_exposure()
    except ValidationError as exc:
        problems = "; ".join(f"SCORING_{'_'.join(map(str, e['loc'])).upper()}: {e['msg']}" for e in exc.errors())
        raise ConfigError(f"bad service settings: {problems}") from None
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    uvicorn.run(create_app(settings), host=settings.host, port=settings.port, log_level="info",
                access_log=settings.access_log, timeout_graceful_shutdown=10)


@main.command("hash-key")
def hash_key_command() -> None:
    """Read an API key on standard input; print the SHA-256 to put in SCORING_API_KEY_HASHES."""
    from scoring.serving.settings import hash_key

    key = sys.stdin.readline().strip()
    if not key:
        err.print("[bold red]error:[/] no key on standard input")
        sys.exit(1)
    click.echo(hash_key(key))


if __name__ == "__main__":
    main()
