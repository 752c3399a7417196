"""Commands on the pipeline store: import."""
from __future__ import annotations

import click
import pandas as pd
from rich.markup import escape

from scoring.cli.common import DataFiles, data_options, friendly_errors, model_for, out, print_report, progress_bar
from scoring.data.contract import DealHistory
from scoring.errors import ScoringError
from scoring.report.pipeline import PAGE_PERIODS, StoredPipeline, current_snapshots, pipeline_forecast
from scoring.store.pipeline import PipelineStore, open_store
from scoring.tracking import DEFAULT_URI


@click.command("import")
@data_options
@click.option("--store", "store", default=None, help="The pipeline store's URL (default: SCORING_STORE_URL, else "
                                                     "sqlite:///pipeline.db).")
@click.option("--model", "model_ref", default=None,
              help="The model that takes the import's forecast snapshot (default: the champion; none: no snapshot).")
@friendly_errors
def import_export(files: DataFiles, store: str | None, model_ref: str | None) -> None:
    """Load an export into the pipeline store, with the same validation as train: new deals are added, changed
    ones updated (each change kept), new stage entries appended. Importing the same export again changes nothing."""
    data = files.load()
    print_report(data.report)
    with open_store(store, create=True) as pipeline_store:
        _import(pipeline_store, data, files, model_ref)


def _import(pipeline_store: PipelineStore, data: DealHistory, files: DataFiles, model_ref: str | None) -> None:
    source = ", ".join(str(p) for p in files.inputs if p is not None and p != files.config_path)
    preset = files.preset
    with progress_bar() as bar:
        task = bar.add_task("Importing", total=None)

        def step(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        result = pipeline_store.import_history(data, source, progress=step)
    if result.fields_kept:
        out.print(f"note: this export has no column {', '.join(map(repr, result.fields_kept))}: the stored deals keep "
                  "their values (an export with fewer columns clears nothing).", markup=False, soft_wrap=True)
    if not result.changed:
        out.print(f"Nothing changed: the store at {pipeline_store.url} already holds these {result.deals_read:,} deals "
                  "as they are.", markup=False, soft_wrap=True)
        return
    signals = (f", {result.field_history_new:,} new field changes and {result.activities_new:,} new activities"
               if result.field_history_new or result.activities_new else "")
    deleted = (f", {result.deals_deleted:,} deleted in the CRM (taken out of the pipeline)"
               if result.deals_deleted else "")
    out.print(f"Imported into {pipeline_store.url}: {result.deals_new:,} new deals, {result.deals_changed:,} changed "
              f"({result.field_changes:,} field changes kept){deleted}, {result.history_new:,} new stage entries"
              f"{signals}.", markup=False, soft_wrap=True)
    _snapshot(pipeline_store, model_ref, preset)


def _snapshot(store: PipelineStore, model_ref: str | None, preset: str | None) -> None:
    """The import's forecast snapshot of the current month and quarter, by the champion (or ``model_ref``)."""
    try:
        bundle, info = model_for(model_ref or DEFAULT_URI, preset)
    except ScoringError as exc:
        out.print(f"[yellow]note:[/] no forecast snapshot: {escape(str(exc))}", soft_wrap=True)
        return
    pipeline = StoredPipeline(store.deals(), store.history(), store.signals, store.field_changes())
    now = pd.Timestamp.now(tz="UTC").tz_localize(None).floor("s")
    for row in current_snapshots(lambda day, period: pipeline_forecast(bundle, pipeline, day, period, PAGE_PERIODS,
                                                                     model_info=info),
                                 "import", info.get("version", "?"), now):
        store.record_snapshot(row)
    out.print("Kept the forecast snapshot of this month and quarter.", markup=False)
