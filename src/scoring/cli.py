"""The ``scoring`` command line."""
from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any, TypeVar

import click
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from scoring.config import load_config
from scoring.contract import DealHistory, inspect_deal_history
from scoring.errors import ScoringError
from scoring.presets import PRESETS
from scoring.report import DataReport
from scoring.summary import SufficiencyResult, check_sufficiency, summarize

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
    for option in reversed(options):
        command = option(command)
    return command


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="pipeline-scoring")
def main() -> None:
    """Learn win probabilities and revenue forecasts from your own deal history."""


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
    from scoring.demo import DemoCompany

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
