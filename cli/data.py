"""Commands on data: demo-data, validate, kpis."""
from __future__ import annotations

import json
import sys
from datetime import date
from pathlib import Path
from typing import Any

import click
import pandas as pd
from rich.markup import escape
from rich.table import Table

from scoring.atomic import atomic_path
from scoring.cli.common import FORCE, DataFiles, claim_output, data_options, err, friendly_errors, out, print_report, show
from scoring.data.contract import DealHistory
from scoring.data.demo import DEMO_FILES
from scoring.data.summary import SufficiencyResult, check_sufficiency, summarize
from scoring.errors import ConfigError


@click.command("demo-data")
@click.argument("out_dir", type=click.Path(file_okay=False, path_type=Path))
@click.option("--deals", "n_deals", default=5000, show_default=True, type=click.IntRange(min=1),
              help="How many deals the company has created over the period.")
@click.option("--seed", default=0, show_default=True, type=int, help="Random seed: same seed, same files.")
@click.option("--end", default=None, type=click.DateTime(formats=["%Y-%m-%d"]),
              help="The date the history is observed at (default: today).")
@click.option("--years", default=3.0, show_default=True, type=click.FloatRange(min=0.1),
              help="Years of history before --end.")
@click.option("--shocks", default=0.0, show_default=True, type=click.FloatRange(min=0.0, max=3.0),
              help="Market shocks: the spread (log-odds) of a per-quarter effect on every deal's decisions.")
@click.option("--dormant-share", default=0.0, show_default=True, type=click.FloatRange(min=0.0, max=0.9),
              help="The share of new deals nobody works: left open in their first stage for good.")
@FORCE
@friendly_errors
def demo_data(out_dir: Path, n_deals: int, seed: int, end: Any, years: float, shocks: float, dormant_share: float,
              force: bool) -> None:
    """Write a realistic synthetic company history to OUT_DIR.

    Files: deals.csv, stage_history.csv, open_deals.csv, pipeline.toml, and truth.csv /
    truth.json with the true probabilities the generator used, truth_bookings.csv with the true
    distribution of the next quarters' and months' bookings.
    """
    existing = [name for name in DEMO_FILES if (out_dir / name).exists()]
    if existing and not force:
        raise ConfigError(f"{out_dir} already holds {', '.join(existing)}: give --force to overwrite them, or "
                          "another folder")
    from scoring.data.demo import DemoCompany

    end_date = (end.date() if end else date.today()).isoformat()
    with err.status(f"Simulating {n_deals:,} deals..."):
        demo = DemoCompany(shock_sd=shocks, dormant_share=dormant_share).generate(n_deals, seed=seed, end=end_date,
                                                                                  years=years)
        paths = demo.write(out_dir)
    counts = demo.deals["status"].value_counts()
    out.print(f"Wrote {len(demo.deals):,} deals ({counts.get('open', 0):,} open, {counts.get('won', 0):,} won, "
              f"{counts.get('lost', 0):,} lost) and {len(demo.history):,} stage entries, observed at {end_date}:")
    for path in paths:
        out.print(f"  {path}", markup=False)


@click.command()
@data_options
@friendly_errors
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON (for machines) instead of tables.")
def validate(files: DataFiles, as_json: bool) -> None:
    """Check a deal history: print a data summary and every problem found.

    Exits with status 1 when the data cannot be used (errors, or too little to learn from).
    """
    data, report = files.inspect()
    if as_json:
        sufficiency = check_sufficiency(data) if data is not None else None
        click.echo(json.dumps({**report.to_dict(), "deals": len(data.deals) if data is not None else None,
                               "sufficiency": [str(p) for p in sufficiency.problems] if sufficiency else []},
                              indent=2))
        sys.exit(0 if report.ok and not (sufficiency and sufficiency.problems) else 1)
    problems = len(report.errors)
    if data is not None:
        _print_summary(data)
    print_report(report)
    if data is not None:
        sufficiency = check_sufficiency(data)
        _print_sufficiency(data, sufficiency)
        problems += len(sufficiency.problems)
    if not problems:
        out.print("[bold green]OK:[/] the data can be used to train.")
        return
    err.print(f"[bold red]error:[/] the data cannot be used: {problems} problem(s), listed above.")
    sys.exit(1)


@click.command("config")
@data_options
@friendly_errors
@click.option("--out", "out_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Write the draft to this file (TOML) instead of printing it.")
@FORCE
def draft(files: DataFiles, out_path: Path | None, force: bool) -> None:
    """Draft a pipeline configuration from an export whose stages are the company's own, or of a CRM no preset reads.

    Reads the export through --preset / --config (column names kept), maps the columns it does not name as the
    data format does by their headers (Deal value, Deal stage, ...), and proposes its open stages in pipeline
    order (from the stage history, else the CRM's probability column, else when deals entered them), the fixed
    percentages (the probability column's, else placeholders), the won and lost labels and, when the export
    holds several pipelines, the largest. Prints the TOML (how each part was found as comments) for
    --config; check it before training.
    """
    from scoring.data.draft import draft_config

    with err.status(f"Reading {files.deals}..."):
        drafted = draft_config(files.deals, files.history, files.config(), files.field_history)
    text = drafted.toml()
    if out_path is None:
        click.echo(text, nl=False)
        return
    claim_output(out_path, files.inputs, force)
    with atomic_path(out_path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    out.print(f"Wrote {out_path}: stages {' -> '.join(drafted.config.stages)}", markup=False)
    for line in drafted.how:
        out.print(f"  {line}", markup=False)
    out.print(f"Check it, then: scoring validate --deals {files.deals} --config {out_path}", markup=False)


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
    if s.field_changes or s.activities or s.signal_features:
        changes = ", ".join(f"{field} {count:,}" for field, count in s.field_changes.items()) or "none"
        out.print(f"Field history: {changes}; activities: {s.activities:,}; features from them: "
                  f"{', '.join(s.signal_features) or 'none'}", markup=False, soft_wrap=True)
    table = Table(title="Deals by stage", title_justify="left")
    for col in ("stage", "open", "won", "lost", "fixed"):
        table.add_column(col, justify="left" if col == "stage" else "right")
    for stage, row in s.by_stage.iterrows():
        table.add_row(escape(str(stage)), f"{row['open']:,}", f"{row['won']:,}", f"{row['lost']:,}",
                      f"{cfg.fixed_probability(str(stage)):.0%}")
    show(table)
    if s.features:
        ft = Table(title="Feature columns", title_justify="left")
        for col in ("column", "kind", "missing", "values"):
            ft.add_column(col)
        for f in s.features:
            ft.add_row(escape(f.name), f.kind, f"{f.missing:.0%}", escape(f.detail))
        show(ft)
    else:
        out.print("Feature columns: none (only stage, age and amount will be used)")


def _print_sufficiency(data: DealHistory, result: SufficiencyResult) -> None:
    table = Table(title=f"Data sufficiency (closed deals that reached each stage; at least "
                        f"{data.config.sufficiency.min_per_stage} won and lost wanted per stage)",
                  title_justify="left")
    for col in ("stage", "reached", "won", "lost", ""):
        table.add_column(col, justify="left" if col == "stage" else "right")
    for st in result.stages:
        flag = "[yellow]thin[/]" if st.stage in result.thin_stages else "ok"
        table.add_row(escape(st.stage), f"{st.reached:,}", f"{st.won:,}", f"{st.lost:,}", flag)
    show(table)
    if result.thin_stages:
        out.print(f"[yellow]warning:[/] few closed deals reached {escape(', '.join(result.thin_stages))}: estimates for "
                  "those stages will lean on the others and be less certain")
    for problem in result.problems:
        out.print(f"[bold red]error:[/] {escape(problem)}", soft_wrap=True)




@click.command()
@data_options
@click.option("--as-of", "as_of", type=click.DateTime(formats=["%Y-%m-%d"]),
              help="The KPIs as they were at this date (default: the end of the data).")
@click.option("--out", "out_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Write the JSON here (default: print it).")
@FORCE
@friendly_errors
def kpis(files: DataFiles, as_of: Any, out_path: Path | None, force: bool) -> None:
    """The classic pipeline KPIs as JSON: conversion, win rate, cycle, deal size, lead velocity, stale deals."""
    from scoring.data.contract import data_end
    from scoring.forecast.kpis import pipeline_kpis

    if out_path is not None:
        claim_output(out_path, files.inputs, force)
    data = files.load()
    result = pipeline_kpis(data, pd.Timestamp(as_of) if as_of else data_end(data))
    document = json.dumps(result.to_dict(), indent=2)
    if out_path is None:
        click.echo(document)
        return
    with atomic_path(out_path) as temporary:
        temporary.write_text(document + "\n", encoding="utf-8")
    for line in result.sentences():
        out.print(line, markup=False)
    out.print(f"Wrote {out_path}", markup=False)
