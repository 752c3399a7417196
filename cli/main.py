"""The ``scoring`` command line: one group; the commands live in modules by what they work on."""
from __future__ import annotations

import os

import click

from scoring.cli.data import demo_data, kpis, validate
from scoring.cli.models import promote, rollback, stages, train
from scoring.cli.scoring import backtest, forecast, score
from scoring.cli.service import hash_key_command, serve


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="pipeline-scoring")
def main() -> None:
    """Learn win probabilities and revenue forecasts from your own deal history."""
    # MLflow's telemetry is on unless told otherwise, and it reads these when first imported: before any command.
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    os.environ.setdefault("DO_NOT_TRACK", "true")


for _command in (demo_data, validate, train, promote, rollback, score, forecast, backtest, kpis, stages, serve,
                 hash_key_command):
    main.add_command(_command)


if __name__ == "__main__":
    main()
