"""Commands that score: score, forecast, backtest."""
from __future__ import annotations

import contextlib
import functools
import gc
import json
import os
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
import pandas as pd
from rich.markup import escape
from rich.table import Table

from scoring.atomic import atomic_path
from scoring.cli.common import (
    FORCE,
    DataFiles,
    check_engine,
    claim_output,
    data_options,
    engine_options,
    err,
    friendly_errors,
    model_for,
    open_deal_options,
    open_deals_for,
    out,
    print_report,
    progress_bar,
    show,
    signals_for,
)
from scoring.data.problems import DataReport
from scoring.errors import ConfigError
from scoring.models.compiled import compile_cache_dir
from scoring.scores import score_deals

if TYPE_CHECKING:
    from scoring.data.signals import DealSignals


@click.command()
@open_deal_options("score", "scores (CSV; with --engine dask a folder of Parquet parts)")
@click.option("--factors", default=3, show_default=True, type=click.IntRange(0, 10),
              help="How many factors up and down to list per deal (0: none, several times faster).")
@engine_options
@friendly_errors
def score(input_path: Path, out_path: Path, as_of: Any, model_ref: str, preset: str | None,
          stage_history: Path | None, field_history: Path | None, activities: Path | None, force: bool, factors: int,
          engine: str, scheduler: str | None) -> None:
    """Score open deals into a CSV: win probability beside the fixed one, expected revenue, factors.
    With --engine dask: Parquet (a file, a folder of parts or a glob) into a folder of Parquet parts,
    partition by partition, so memory follows the partition size rather than the input's."""
    when = pd.Timestamp(as_of) if as_of else pd.Timestamp(date.today())
    check_engine(engine, scheduler)
    claim_output(out_path, [input_path, model_ref, stage_history, field_history, activities], force)
    if engine == "dask":
        if stage_history is not None:
            raise ConfigError("--history is read with --engine local; with --engine dask give each deal's "
                              "stage_entered_at in the Parquet")
        from scoring.engines.dask import dask_client, score_parquet

        bundle, _ = model_for(model_ref, preset)
        # read whole and sent to every worker; rows of deals not in the Parquet are counted once it is scored
        report = DataReport()
        signals = signals_for(field_history, activities, bundle.config, None, report)
        for aside in report.set_aside:
            err.print(f"set aside: {aside}", soft_wrap=True, markup=False)
        with err.status("Scoring on Dask..."), dask_client(scheduler) as client:
            done = score_parquet(bundle, input_path, out_path, when, client, top=factors,
                                 cache_dir=compile_cache_dir(os.environ), signals=signals)
        if signals is not None:
            _note_unused(signals, pd.read_parquet(out_path, columns=["deal_id"])["deal_id"])
        out.print(f"Scored {done.deals:,} deals in {done.partitions:,} partitions as of {when:%Y-%m-%d}: expected "
                  f"revenue {done.expected_revenue:,.0f} (fixed percentages: {done.fixed_expected_revenue:,.0f}). "
                  f"Wrote {out_path}/", markup=False)
        return
    bundle, _, deals, signals, _ = open_deals_for(input_path, model_ref, preset, field_history, activities,
                                                  stage_history)
    gc.freeze()  # the model and the deals outlive scoring: the collector's passes over them cost a third of it
    try:
        scores, warnings = score_deals(bundle, deals, when, factors, signals)
    finally:
        gc.unfreeze()
    for text in warnings:
        out.print(f"[yellow]warning:[/] {escape(text)}", soft_wrap=True)
    with atomic_path(out_path) as temporary:
        scores.to_csv(temporary, index=False)
    out.print(f"Scored {len(scores):,} deals as of {when:%Y-%m-%d}: expected revenue {scores['expected_revenue'].sum():,.0f} "
              f"(fixed percentages: {scores['fixed_expected_revenue'].sum():,.0f}). Wrote {out_path}", markup=False)


def _note_unused(signals: DealSignals, scored: pd.Series) -> None:
    """Say how many field changes and activities were of deals not among those scored (not used)."""
    used = signals.for_deals(scored)
    unused = [f"{n:,} {what}" for what, n in (("field change(s)", len(signals.field_history) - len(used.field_history)),
                                              ("activit(ies)", len(signals.activities) - len(used.activities))) if n]
    if unused:
        err.print(f"note: {' and '.join(unused)} of deal(s) not among the open deals scored: not used",
                  soft_wrap=True, markup=False)


@click.command()
@open_deal_options("forecast", "forecast JSON")
@click.option("--period", type=click.Choice(["month", "quarter"]), default="quarter", show_default=True)
@click.option("--periods", type=click.IntRange(1, 36), default=4, show_default=True, help="How many periods.")
@click.option("--deals", "history_path", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="The deal history (the file train reads): revenue won this period before --as-of is booked.")
@click.option("--seed", default=0, show_default=True, type=int, help="Seed of the Monte Carlo quantiles.")
@friendly_errors
def forecast(input_path: Path, out_path: Path, as_of: Any, period: str, periods: int, history_path: Path | None,
             seed: int, model_ref: str, preset: str | None, stage_history: Path | None, field_history: Path | None,
             activities: Path | None, force: bool) -> None:
    """What each month or quarter will book, with its P10-P90 range: revenue already won (with --deals), the
    open deals and the deals not yet created, beside the fixed-percentage forecast (JSON)."""
    from scoring.data.contract import load_deal_history
    from scoring.forecast.revenue import forecast as make_forecast

    claim_output(out_path, [input_path, model_ref, history_path, stage_history, field_history, activities], force)
    bundle, info, deals, signals, read = open_deals_for(input_path, model_ref, preset, field_history, activities,
                                                        stage_history)
    history = None
    if history_path is not None:
        with err.status(f"Reading {history_path}..."):
            history = load_deal_history(history_path, None, bundle.config).with_imported()  # imports booked too
    when = pd.Timestamp(as_of) if as_of else pd.Timestamp(date.today())
    result = make_forecast(bundle, deals, when, period, periods, seed=seed, model_info=info, history=history,
                           signals=signals)
    for text in result.warnings:
        out.print(f"[yellow]warning:[/] {escape(text)}", soft_wrap=True)
    result.warnings[:0] = read  # what reading the deals found (printed then) stays with the forecast
    document = result.to_json()
    with atomic_path(out_path) as temporary:
        temporary.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    table = Table(title=f"Bookings forecast as of {when:%Y-%m-%d}: {len(deals):,} open deals and the deals not yet "
                        "created", title_justify="left")
    for col in ("period", "booked", "open deals", "new deals", "bookings", "P10", "P90", "fixed", "commit"):
        table.add_column(col, justify="left" if col == "period" else "right", no_wrap=col == "period")
    for p in document["periods"] + [{"start": "total", "end": "", **document["total"]}]:
        b = p["bookings"]
        table.add_row(f"{p['calendar_start']} to {p['end']}" if p["end"] else "total (open deals: all future wins)",
                      f"{p['booked']:,.0f}" if document["booked_known"] else "?", f"{p['pipeline']['expected']:,.0f}",
                      f"{p['new_deals']['expected']:,.0f}", f"{b['expected']:,.0f}", f"{b['p10']:,.0f}",
                      f"{b['p90']:,.0f}", f"{p['fixed']['expected']:,.0f}",
                      f"{p['commit']['expected']:,.0f}" if p["commit"] else "-")
    show(table)
    out.print(f"Wrote {out_path}", markup=False)


@click.command()
@data_options
@click.option("--start", type=click.DateTime(formats=["%Y-%m-%d"]),
              help="First as-of date. Default: the first date the models can learn from the data.")
@click.option("--end", type=click.DateTime(formats=["%Y-%m-%d"]),
              help="Last as-of date. Default: one period before the data ends (so its forecast can be checked).")
@click.option("--every", type=click.Choice(["month", "quarter"]), default="quarter", show_default=True,
              help="Forecast at the start of every month or quarter, one period ahead each.")
@click.option("--periods", type=click.IntRange(1, 12), default=1, show_default=True,
              help="How many periods each forecast covers.")
@click.option("--seed", default=0, show_default=True, type=int)
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Folder for backtest.csv, report.html and the PNG plots.")
@FORCE
@engine_options
@friendly_errors
def backtest(files: DataFiles, start: Any, end: Any, every: str, periods: int, seed: int, out_dir: Path, force: bool,
             engine: str, scheduler: str | None) -> None:
    """Replay history: at each date fit on what was known, forecast, compare with what closed and with
    everything booked (new deals included); write a report.
    With --engine dask the as-of dates run in parallel on the cluster's workers."""
    from scoring.data.contract import data_end
    from scoring.forecast.backtest import PERIOD_MONTHS, as_of_dates, earliest_start
    from scoring.forecast.backtest import backtest as run_backtest
    from scoring.report.html import report_inputs, write_report

    check_engine(engine, scheduler)
    claim_output(out_dir, files.inputs, force)
    data = files.load()
    print_report(data.report)
    start = pd.Timestamp(start) if start is not None else earliest_start(data)
    end = pd.Timestamp(end) if end is not None else data_end(data) - pd.DateOffset(months=PERIOD_MONTHS[every])
    dates = as_of_dates(start, end, every)
    with progress_bar() as bar, contextlib.ExitStack() as stack:
        task = bar.add_task("Backtesting", total=len(dates))
        calls = iter(range(len(dates) + 1))

        def step(text: str) -> None:  # called as each as-of date starts (or once, for all dates in parallel)
            bar.update(task, completed=next(calls, len(dates)), description=f"Backtesting: {text}")

        mapper = None
        if engine == "dask":
            from scoring.engines.dask import dask_client, map_on_cluster

            client = stack.enter_context(dask_client(scheduler))
            mapper = functools.partial(map_on_cluster, client)
        result = run_backtest(data, start, end, every, periods, seed, mapper=mapper,
                              progress=step)
    out_dir.mkdir(parents=True, exist_ok=True)
    result.to_csv_frame().to_csv(out_dir / "backtest.csv", index=False)
    result.bookings.to_csv(out_dir / "bookings.csv", index=False)
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
    show(table)
    bookings = Table(title="Bookings (everything each period booked, new deals included)", title_justify="left")
    for col in ("method", "periods", "accuracy", "bias", "P10-P90 coverage"):
        bookings.add_column(col, justify="left" if col == "method" else "right", no_wrap=col == "method")
    for _, r in result.bookings_summary().iterrows():
        bookings.add_row(r["method"], f"{r['periods']}", _pct(r["accuracy"]), _pct(r["bias"], "{:+.1%}"),
                         _pct(r["coverage_p10_p90"], "{:.0%}"))
    show(bookings)
    out.print(f"Wrote {out_dir / 'backtest.csv'}, {out_dir / 'bookings.csv'} and {path}", markup=False)


def _pct(value: float, fmt: str = "{:.1%}") -> str:
    return "n/a" if pd.isna(value) else fmt.format(value)
