"""Commands of the service: serve, hash-key."""
from __future__ import annotations

import sys
from typing import TYPE_CHECKING

import click

from scoring.cli.common import err, friendly_errors
from scoring.errors import ConfigError

if TYPE_CHECKING:
    from scoring.serving.settings import Settings


@click.command()
@click.option("--model", "model_uri", help="Model URI or bundle file. Default: SCORING_MODEL_URI, else "
                                           "models:/pipeline-scoring@champion.")
@click.option("--host", help="Address to listen on. Default: SCORING_HOST, else 127.0.0.1.")
@click.option("--port", type=click.IntRange(1, 65535), help="Port. Default: SCORING_PORT, else 8000.")
@click.option("--poll-seconds", type=click.FloatRange(min=0), help="How often to look for a new champion (0: never). "
                                                                     "Default: SCORING_POLL_SECONDS, else 30.")
@click.option("--workers", type=click.IntRange(1, 64), help="Server processes answering side by side, each with "
                                                              "the model loaded. Default: SCORING_WORKERS, else 1.")
@friendly_errors
def serve(model_uri: str | None, host: str | None, port: int | None, poll_seconds: float | None,
          workers: int | None) -> None:
    """Serve the scoring and forecasting API (docs at /docs). Other settings come from SCORING_* variables."""
    import uvicorn
    from pydantic import ValidationError

    from scoring.serving.app import create_app
    from scoring.serving.settings import Settings

    given = {"model_uri": model_uri, "host": host, "port": port, "poll_seconds": poll_seconds, "workers": workers}
    try:
        settings = Settings(**{k: v for k, v in given.items() if v is not None})
        settings.check_exposure()
    except ValidationError as exc:
        problems = "; ".join(f"SCORING_{'_'.join(map(str, e['loc'])).upper()}: {e['msg']}" for e in exc.errors())
        raise ConfigError(f"bad service settings: {problems}") from None
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    _require_free_port(settings.host, settings.port)
    if settings.workers > 1:
        _serve_workers(settings, {k: v for k, v in given.items() if v is not None})
        return
    uvicorn.run(create_app(settings, own_process=True), host=settings.host, port=settings.port, log_level="info",
                access_log=settings.access_log, timeout_graceful_shutdown=10)


def _serve_workers(settings: Settings, given: dict[str, object]) -> None:
    """Several server processes on one socket (uvicorn's workers), each building the app from the environment:
    the options given on the command line are passed on as their SCORING_* variables, and the workers' metrics
    meet in a fresh directory (prometheus_client's multiprocess mode; the one in PROMETHEUS_MULTIPROC_DIR if
    set), removed when the service stops."""
    import os
    import shutil
    import tempfile

    import uvicorn

    os.environ.update({f"SCORING_{name.upper()}": str(value) for name, value in given.items()})
    own = not os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if own:
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="scoring-metrics-")
    try:
        uvicorn.run("scoring.serving.app:worker_app", factory=True, workers=settings.workers, host=settings.host,
                    port=settings.port, log_level="info", access_log=settings.access_log,
                    timeout_graceful_shutdown=10)
    finally:
        if own:
            shutil.rmtree(os.environ.pop("PROMETHEUS_MULTIPROC_DIR"), ignore_errors=True)


def _require_free_port(host: str, port: int) -> None:
    """Say plainly when the port is taken (uvicorn would log a bare errno and exit)."""
    import socket

    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
        try:
            probe.bind((host, port))
        except OSError as exc:
            raise ConfigError(f"cannot listen on {host}:{port} ({exc.strerror}): another program holds the port; "
                              f"stop it or choose another with --port (make run PORT=8010)") from None


@click.command("hash-key")
def hash_key_command() -> None:
    """Read an API key on standard input; print the SHA-256 to put in SCORING_API_KEY_HASHES."""
    from scoring.serving.settings import hash_key

    key = sys.stdin.readline().strip()
    if not key:
        err.print("[bold red]error:[/] no key on standard input")
        sys.exit(1)
    click.echo(hash_key(key))
