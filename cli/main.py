"""The ``scoring`` command line: one group; the commands live in modules by what they work on, imported only
when their command runs (``scoring --version`` and ``--help`` of one command stay quick)."""
from __future__ import annotations

import os
from importlib import import_module

import click

#: command -> "module:function" (click's lazy loading of subcommands).
COMMANDS = {
    "demo-data": "scoring.cli.data:demo_data", "validate": "scoring.cli.data:validate",
    "config": "scoring.cli.data:draft",
    "kpis": "scoring.cli.data:kpis", "train": "scoring.cli.models:train", "promote": "scoring.cli.models:promote",
    "rollback": "scoring.cli.models:rollback", "stages": "scoring.cli.models:stages",
    "score": "scoring.cli.scoring:score", "forecast": "scoring.cli.scoring:forecast",
    "backtest": "scoring.cli.scoring:backtest", "serve": "scoring.cli.service:serve",
    "hash-key": "scoring.cli.service:hash_key_command", "import": "scoring.cli.store:import_export",
}


QUIET_MLFLOW = {"MLFLOW_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "true", "MLFLOW_LOGGING_LEVEL": "ERROR",
                "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false"}


class LazyGroup(click.Group):
    """A group whose commands are imported when asked for (click's documented pattern)."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in COMMANDS:
            return None
        module, _, name = COMMANDS[cmd_name].partition(":")
        command = getattr(import_module(module), name)
        if not isinstance(command, click.Command):
            raise TypeError(f"{COMMANDS[cmd_name]} is not a click command")
        return command


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="pipeline-scoring")
def main() -> None:
    """Learn win probabilities and revenue forecasts from your own deal history."""
    # MLflow reads these when first imported, so before any command: no telemetry, and none of its chatter on
    # the user's terminal (INFO lines, the CloudPickle warning, the "Downloading artifacts" bar); each can be
    # set otherwise in the environment.
    for name, value in QUIET_MLFLOW.items():
        os.environ.setdefault(name, value)


if __name__ == "__main__":
    main()
