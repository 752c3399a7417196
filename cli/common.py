"""What the commands share: the consoles, error handling, option groups and the model a command reads."""
from __future__ import annotations

import functools
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click
import pandas as pd
from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from scoring.data.presets import PRESETS, load_config
from scoring.data.problems import DataReport
from scoring.errors import ConfigError, DataError, ScoringError
from scoring.models.compiled import compile_cache_dir
from scoring.tracking import DEFAULT_URI

if TYPE_CHECKING:
    from scoring.data.config import PipelineConfig
    from scoring.data.contract import DealHistory
    from scoring.data.signals import DealSignals

F = TypeVar("F", bound=Callable[..., Any])
out = Console(highlight=False)
err = Console(stderr=True, highlight=False)


def progress_bar() -> Progress:
    """The bar long commands show on stderr: what is being done, steps done of all, time spent and left."""
    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                    TextColumn("left"), TimeRemainingColumn(), console=err, transient=True)


def show(table: Table) -> None:
    """Print a table without ever eliding a number: numeric (right-aligned) columns are at least as wide as
    their longest value; headers and text wrap at spaces instead of being cut; a table that still does not
    fit the terminal is printed at the width it needs (the terminal wraps the lines, nothing is lost)."""
    for column in table.columns:
        column.overflow, column.no_wrap = "fold", False  # headers wrap at spaces
        cells = [str(cell) for cell in column.cells]
        if column.justify == "right":  # a number: whole, on one line (never narrower than the longest)
            column.min_width = max([column.min_width or 0, *map(len, cells)])
        else:  # text: wrapped at spaces, a word longer than 12 characters folded when room is short
            column.min_width = min(12, max([column.min_width or 0, *(len(w) for c in cells for w in c.split())]))
    left, right = table.padding[3], table.padding[1]
    needed = sum((c.min_width or 1) + left + right for c in table.columns) + len(table.columns) + 1  # cells, borders
    out.print(table, width=max(needed, out.width), crop=False)


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


@dataclass(frozen=True)
class DataFiles:
    """The files a command reads a deal history from, and how (config, preset, strict)."""

    deals: Path
    history: Path | None = None
    field_history: Path | None = None
    activities: Path | None = None
    config_path: Path | None = None
    preset: str | None = None
    strict: bool = False

    @property
    def inputs(self) -> list[Path | None]:
        """Every file given (a command never writes over one)."""
        return [self.deals, self.history, self.field_history, self.activities, self.config_path]

    def config(self) -> PipelineConfig:
        """The pipeline configuration the files are read with: the textbook default < the preset < the file."""
        return load_config(self.config_path, self.preset)

    def inspect(self) -> tuple[DealHistory | None, DataReport]:
        """The data (None when it cannot be used) and the report, read with a spinner."""
        from scoring.data.contract import inspect_deal_history

        with err.status(f"Reading {self.deals}..."):
            return inspect_deal_history(self.deals, self.history, self.config(),
                                        self.strict, self.field_history, self.activities)

    def load(self) -> DealHistory:
        """The data, or a :class:`DataError` listing every problem."""
        from scoring.data.contract import load_deal_history

        with err.status(f"Reading {self.deals}..."):
            return load_deal_history(self.deals, self.history, self.config(),
                                     self.strict, self.field_history, self.activities)


#: The options of the deal signals (SPEC 2.2), on every command that reads deals or scores them.
SIGNAL_OPTIONS = [
    click.option("--field-history", "field_history", type=click.Path(exists=True, dir_okay=False, path_type=Path),
                 help="Field history (CSV, Parquet or .xlsx): deal_id, field, value, changed_at; the rep's close "
                      "dates, amount, forecast category, owner and any other field as they changed."),
    click.option("--activities", "activities", type=click.Path(exists=True, dir_okay=False, path_type=Path),
                 help="Activities (CSV, Parquet or .xlsx): deal_id, occurred_at and optionally type."),
]


def data_options(command: F) -> F:
    """--deals, --history, --field-history, --activities, --config, --preset and --strict: the options of every
    command that reads deals, given to it as one ``files`` (:class:`DataFiles`)."""
    options = [
        click.option("--deals", "deals", required=True, type=click.Path(dir_okay=False, path_type=Path),
                     help="Deals file (CSV, gzipped CSV, Parquet or a workbook: .xlsx, .xls, .ods, an XML Spreadsheet), "
                          "one row per deal."),
        click.option("--history", "history", type=click.Path(dir_okay=False, path_type=Path),
                     help="Stage history file (CSV, Parquet or .xlsx): deal_id, stage, entered_at (from_stage "
                          "optional), or a log of field changes (its stage's). Without it, the --field-history's "
                          "stage changes are the stage history."),
        *SIGNAL_OPTIONS,
        click.option("--config", "config_path", type=click.Path(dir_okay=False, path_type=Path),
                     help="Pipeline configuration (TOML). Default: the textbook pipeline."),
        click.option("--preset", type=click.Choice(sorted(PRESETS), case_sensitive=False),
                     help="Read a CRM's own export: its column names, stages and conventions."),
        click.option("--strict", is_flag=True, help="Refuse rows that would be set aside (blank amounts, report "
                                                    "footers, history of deals not in the file, ...)."),
    ]

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        names = [f.name for f in fields(DataFiles)]
        files = DataFiles(**{name: kwargs.pop(name) for name in names})
        return command(*args, files=files, **kwargs)

    return _with_options(options)(wrapper)  # type: ignore[return-value]


def check_engine(engine: str, scheduler: str | None) -> None:
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



DEFAULT_MODEL = DEFAULT_URI
MODEL_HELP = ("The model: an MLflow model URI (models:/NAME@ALIAS, models:/NAME/VERSION, runs:/...) in the store of "
              "MLFLOW_TRACKING_URI (default: ./mlflow.db), or a bundle file.")



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
        click.option("--history", "stage_history", type=click.Path(exists=True, dir_okay=False, path_type=Path),
                     help="Stage history (the file train reads): when each deal entered its stage, where the "
                          "input has no stage_entered_at (Zoho's Stage History, Salesforce's Opportunity History); "
                          "without either, days in the stage count from creation."),
        *SIGNAL_OPTIONS,
        FORCE,
    ]
    return _with_options(options)


#: --force: what the commands that write files need before they replace one.
FORCE = click.option("--force", is_flag=True, help="Overwrite the output if it exists (never an input).")


def claim_output(path: Path, inputs: list[Path | str | None], force: bool) -> None:
    """Refuse to write over an input of the command, or over an existing output without ``--force``."""
    target = path.resolve()
    for given in inputs:
        if given is not None and Path(str(given)).exists() and Path(str(given)).resolve() == target:
            raise ConfigError(f"{path} is an input of this command: write the output elsewhere")
    if path.exists() and (not path.is_dir() or any(path.iterdir())) and not force:
        raise ConfigError(f"{path} exists: give --force to overwrite it, or another --out")




def model_for(model_ref: str, preset: str | None) -> tuple[Any, dict[str, str]]:
    """The model bundle and its name and version; refused when ``preset`` is not the export it was trained on."""
    from scoring.scores import require_same_export
    from scoring.tracking import load_bundle

    bundle, info = load_bundle(model_ref)
    require_same_export(bundle, preset)
    if info.get("warning"):
        err.print(f"[yellow]warning:[/yellow] {escape(info['warning'])}")
    return bundle, info


def open_deals_for(input_path: Path, model_ref: str, preset: str | None, field_history: Path | None = None,
                   activities: Path | None = None, stage_history: Path | None = None
                   ) -> tuple[Any, dict[str, str], pd.DataFrame, DealSignals | None, list[str]]:
    """The model bundle, its name and version, the open deals to score with it (read with its own config, their
    entry into their stage from the ``stage_history`` where they give none), their field history and activities
    when given (None when neither is) and the reader's warnings (printed here; a forecast keeps them in its
    JSON)."""
    from scoring.data.contract import read_open_deals

    if input_path.is_dir():
        raise ConfigError(f"{input_path} is a folder: give one file (a folder of Parquet parts is for "
                          "`scoring score --engine dask`)")
    bundle, info = model_for(model_ref, preset)
    deals, report = read_open_deals(input_path, bundle.config, history=stage_history, field_history=field_history)
    signals = signals_for(field_history, activities, bundle.config, deals["deal_id"], report,
                          stages_read=stage_history is None)
    skipped = sum(s.count for s in report.set_aside if not s.kept)
    if skipped:
        err.print(f"{skipped:,} row(s) not scored: " + "; ".join(f"{s.count:,} {s.reason}" for s in report.set_aside
                                                               if not s.kept), soft_wrap=True, markup=False)
    for aside in (s for s in report.set_aside if s.kept):
        err.print(f"note: {aside}", soft_wrap=True, markup=False)
    warnings = [str(w) for w in report.warnings]
    for text in warnings:
        err.print(f"[yellow]warning:[/] {escape(text)}", soft_wrap=True)
    problem = bundle.compile(compile_cache_dir(os.environ))
    if problem:
        err.print(f"[yellow]warning:[/] {escape(problem)}", soft_wrap=True)
    return bundle, info, deals, signals, warnings


def signals_for(field_history: Path | None, activities: Path | None, config: Any, deal_ids: pd.Series | None,
                report: DataReport, stages_read: bool = False) -> DealSignals | None:
    """The open deals' field history and activities, when either file is given (None when neither is), rows of
    deals other than ``deal_ids`` set aside in ``report`` (``deal_ids`` None: every row is kept, the deals are
    read later part by part), stage changes too unless ``stages_read`` (the deals' stage entries came from them);
    refused with every problem when they cannot be used."""
    from scoring.data.signals import read_signals

    if field_history is None and activities is None:
        return None
    signals = read_signals(field_history, activities, deal_ids, config, report, others="not among the open deals scored",
                           stages_read=stages_read)
    if not report.ok:
        raise DataError("the deals' field history or activities cannot be used: " + report.summary(), report)
    return signals


def print_report(report: DataReport) -> None:
    for note in report.notes:
        out.print(f"note: {escape(note)}")
    for problem in report.warnings:
        out.print(f"[yellow]warning:[/] {escape(str(problem))}", soft_wrap=True)
    for aside in report.set_aside:
        out.print(f"[yellow]set aside:[/] {escape(str(aside))}", soft_wrap=True)
    for problem in report.errors:
        out.print(f"[bold red]error:[/] {escape(str(problem))}", soft_wrap=True)
