"""Commands on models: train, promote, rollback, stages."""
from __future__ import annotations

import contextlib
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
from rich.markup import escape
from rich.table import Table

from scoring.data.contract import DealHistory

if TYPE_CHECKING:  # imported where used: the CLI starts fast
    from scoring.engines import Engine
    from scoring.training.pipeline import TrainResult

from scoring.cli.common import (
    DEFAULT_MODEL,
    MODEL_HELP,
    DataFiles,
    check_engine,
    data_options,
    engine_options,
    err,
    friendly_errors,
    out,
    print_report,
    progress_bar,
    show,
)
from scoring.features.scale import HOLDOUT_FRACTION
from scoring.tracking import DEFAULT_NAME, MAX_ECE, PROMOTION_MARGIN, tracking_uri


@click.command()
@data_options
@click.option("--as-of", "as_of", type=click.DateTime(formats=["%Y-%m-%d"]),
              help="Train on what was known at this date (default: the latest date in the data).")
@click.option("--holdout-fraction", default=HOLDOUT_FRACTION, show_default=True, type=click.FloatRange(0.05, 0.5),
              help="The last part of the time span before --as-of held out for evaluation.")
@click.option("--seed", default=0, show_default=True, type=int)
@click.option("--model-name", default=DEFAULT_NAME, show_default=True, help="The registered model's name.")
@click.option("--promote", type=click.Choice(["auto", "always", "never"]), default="auto", show_default=True,
              help="auto: make the new version champion only when it beats the baselines and the champion.")
@click.option("--margin", default=PROMOTION_MARGIN, show_default=True, type=click.FloatRange(0),
              help="Holdout log-loss by which a new version must beat the champion under auto.")
@click.option("--max-ece", default=MAX_ECE, show_default=True, type=click.FloatRange(0, 1),
              help="Largest holdout calibration error a version may have to be promoted under auto.")
@click.option("--tune", "tune_trials", default=0, show_default=True, type=click.IntRange(0, 1000),
              help="Search the win model's hyper-parameters with Optuna first (this many trials, each a nested run).")
@click.option("--export-dir", default=Path("models"), show_default=True,
              type=click.Path(file_okay=False, path_type=Path),
              help="A promoted champion is also exported here as a bundle file (the service's fallback).")
@engine_options
@friendly_errors
def train(files: DataFiles, as_of: Any, holdout_fraction: float, seed: int, model_name: str, promote: str, margin: float,
          max_ece: float, tune_trials: int, export_dir: Path, engine: str, scheduler: str | None) -> None:
    """Learn the models, evaluate them against the baselines on a time-based holdout, log and register in MLflow.
    With --engine dask the snapshots are taken and the win model's boosters fitted (lightgbm.dask) on a cluster."""
    from scoring.engines import LOCAL

    check_engine(engine, scheduler)
    data = files.load()
    print_report(data.report)
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

    from scoring.train import new_models
    from scoring.training.pipeline import train_and_log

    # Two fits of every model (each with a header line), the choice of what serves, logging, comparing, and the
    # search if asked.
    steps = 2 * (len(new_models()) + 1) + 3 + bool(tune_trials)
    with progress_bar() as bar:
        task = bar.add_task("Training", total=steps)

        def step(text: str) -> None:
            bar.update(task, advance=1, description=f"Training: {text.strip()}")

        return train_and_log(data, tune_trials=tune_trials, progress=step, engine=engine, **options)


def _print_training(result: TrainResult, model_name: str) -> None:
    bundle = result.bundle
    for note in result.tidied:
        out.print(f"[yellow]{escape(note[0].upper() + note[1:])}.[/]", soft_wrap=True)
    overall = bundle.metrics[bundle.metrics["by"] == "all"].set_index("model")
    table = Table(title=f"Holdout {bundle.holdout_start:%Y-%m-%d} to {bundle.as_of:%Y-%m-%d} "
                        f"({int(overall['n'].iloc[0]):,} snapshot rows with known outcome)", title_justify="left")
    for col in ("model", "log-loss", "Brier", "ROC AUC", "calibration error", "revenue ratio"):
        table.add_column(col, justify="left" if col == "model" else "right", no_wrap=col == "model")
    for name, row in overall.sort_values("log_loss").iterrows():
        label = f"{name} (serves)" if name == bundle.served else str(name)
        table.add_row(label, f"{row['log_loss']:.4f}", f"{row['brier']:.4f}", f"{row['roc_auc']:.3f}",
                      f"{row['ece']:.3f}", f"{row['revenue_ratio']:.3f}")
    show(table)
    out.print(f"Logged run {result.run_id}; registered {model_name} version {result.version} (alias challenger).",
              markup=False)
    colour = "green" if result.decision.promote else "yellow"
    out.print(f"[{colour}]{escape(result.decision.reason[0].upper() + result.decision.reason[1:])}.[/]", soft_wrap=True)
    if result.exported:
        out.print(f"Exported the champion to {result.exported}", markup=False)


@click.command()
@click.argument("version")
@click.option("--model-name", default=DEFAULT_NAME, show_default=True)
@click.option("--reason", default="promoted by hand", show_default=True, help="Recorded with the move.")
@click.option("--export-dir", default=Path("models"), show_default=True, type=click.Path(file_okay=False, path_type=Path),
              help="Where the champion's bundle is exported (the service's fallback when the store is down).")
@friendly_errors
def promote(version: str, model_name: str, reason: str, export_dir: Path) -> None:
    """Make VERSION the champion, whatever the metrics say (recorded with who, when and why). The version must
    load; it is exported as the service's fallback."""
    from scoring.tracking import champion_version, load_bundle, open_store
    from scoring.training.registry import export_champion, move_champion, require_version

    client, uri = open_store()[0], tracking_uri()
    if champion_version(client, model_name) == str(version):
        out.print(f"{model_name}: version {version} is already the champion; nothing changed.", markup=False)
        return
    require_version(client, model_name, version)
    bundle, _ = load_bundle(f"models:/{model_name}/{version}", uri)  # refuses a version that does not load
    entry = move_champion(client, model_name, version, reason)
    path = export_champion(bundle, model_name, str(version), export_dir)
    out.print(f"{model_name}: champion moved from version {entry['from'] or '(none)'} to {entry['to']}; exported to "
              f"{path}.", markup=False)


@click.command()
@click.option("--model-name", default=DEFAULT_NAME, show_default=True)
@click.option("--export-dir", default=Path("models"), show_default=True, type=click.Path(file_okay=False, path_type=Path),
              help="Where the champion's bundle is exported (the service's fallback when the store is down).")
@friendly_errors
def rollback(model_name: str, export_dir: Path) -> None:
    """Move the champion back to the version the current one replaced; export it as the service's fallback."""
    from scoring.tracking import load_bundle, open_store
    from scoring.training.registry import export_champion, move_champion, rollback_target

    client, uri = open_store()[0], tracking_uri()
    current, target = rollback_target(client, model_name)
    bundle, _ = load_bundle(f"models:/{model_name}/{target}", uri)
    entry = move_champion(client, model_name, target, f"rollback from version {current}")
    path = export_champion(bundle, model_name, target, export_dir)
    out.print(f"{model_name}: champion rolled back from version {entry['from']} to {entry['to']}; exported to "
              f"{path}.", markup=False)




@click.command()
@click.option("--model", "model_ref", default=DEFAULT_MODEL, show_default=True, help=MODEL_HELP)
@friendly_errors
def stages(model_ref: str) -> None:
    """The learned stage table: win probability from each stage vs the fixed one, transitions, days in stage."""
    from scoring.tracking import load_bundle

    bundle, _ = load_bundle(model_ref)
    stage_table = bundle.stage_table()
    left = stage_table["never_leave_share"].gt(0).any()  # a column only where deals are left in a stage for good
    table = Table(title="Win probability by stage", title_justify="left")
    for col in ("stage", "fixed", "learned", "after 30 d", "after 90 d", "median days", "90 % within",
                *(["never leave"] if left else [])):
        table.add_column(col, justify="left" if col == "stage" else "right")
    for _, r in stage_table.iterrows():
        table.add_row(escape(r["stage"]), f"{r['fixed_probability']:.0%}", f"{r['learned_probability']:.1%}",
                      f"{r['p_win_after_30d']:.1%}", f"{r['p_win_after_90d']:.1%}", f"{r['days_p50']:.0f}",
                      f"{r['days_p90']:.0f} d", *([f"{r['never_leave_share']:.1%}"] if left else []))
    show(table)
    matrix = bundle.stage_model.transition_matrix()
    mt = Table(title="Where deals go from each stage", title_justify="left")
    mt.add_column("from")
    for col in matrix.columns:
        mt.add_column(escape(str(col)), justify="right")
    for stage, row in matrix.iterrows():
        mt.add_row(escape(str(stage)), *[f"{v:.1%}" if v else "" for v in row])
    show(mt)
