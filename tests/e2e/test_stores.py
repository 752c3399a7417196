"""MLflow tracking stores: the embedded SQLite one created safely by two processes at once, and a real
PostgreSQL server (Debian's package; `make test` installs it) as the team store, end to end."""
from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from mlflow.tracking import MlflowClient

from scoring.bundle import ModelBundle
from scoring.cli.main import main
from tests.conftest import END

OPEN_STORE = "import sys; from scoring.tracking import open_store; c, e = open_store(sys.argv[1]); print(e)"


def test_two_processes_creating_the_same_new_sqlite_store_both_succeed(tmp_path: Path):
    uri = f"sqlite:///{tmp_path / 'new' / 'mlflow.db'}"
    env = {**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true"}
    procs = [subprocess.Popen([sys.executable, "-c", OPEN_STORE, uri], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True, env=env) for _ in range(2)]
    results = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [err for _, err in results]
    ids = {out.strip().splitlines()[-1] for out, _ in results}
    assert len(ids) == 1  # one experiment, not two
    client = MlflowClient(uri)
    run = client.create_run(ids.pop())
    client.log_metric(run.info.run_id, "x", 1.0)
    assert client.get_run(run.info.run_id).data.metrics == {"x": 1.0}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def postgres() -> Iterator[str]:
    """A PostgreSQL server of this test module's own, on a free loopback port; yields its URI."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    assert found, "PostgreSQL is missing: `make test` installs Debian's postgresql package"
    bin_dir = Path(found[-1]).parent
    root = Path(tempfile.mkdtemp(prefix="scoring-pg-"))
    as_user: list[str] = []
    if os.geteuid() == 0:  # PostgreSQL refuses to run as root
        shutil.chown(root, "postgres")
        as_user = ["runuser", "-u", "postgres", "--"]
    port = _free_port()
    data = root / "data"

    def run(*cmd: str) -> None:
        subprocess.run([*as_user, *cmd], check=True, capture_output=True, timeout=120)

    run(str(bin_dir / "initdb"), "-D", str(data), "-U", "scoring", "--auth=trust", "-E", "UTF8")
    run(str(bin_dir / "pg_ctl"), "-D", str(data), "-l", str(root / "log"), "-w", "start", "-o",
        f"-p {port} -k {root} -c listen_addresses=127.0.0.1")
    try:
        run(str(bin_dir / "createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", "scoring", "mlflow")
        yield f"postgresql://scoring@127.0.0.1:{port}/mlflow"
    finally:
        run(str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop")
        shutil.rmtree(root, ignore_errors=True)


def test_train_register_and_load_against_postgresql(postgres: str, company: Path, tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", postgres)
    monkeypatch.setenv("SCORING_ARTIFACT_ROOT", (tmp_path / "artifacts").as_uri())
    runner = CliRunner()
    result = runner.invoke(main, ["train", "--deals", str(company / "deals.csv"), "--history",
                                  str(company / "stage_history.csv"), "--as-of", END, "--promote", "always"])
    assert result.exit_code == 0, result.output
    client = MlflowClient(postgres, postgres)
    champion = client.get_model_version_by_alias("pipeline-scoring", "champion")
    assert client.get_run(champion.run_id).data.metrics["holdout_log_loss_model"] > 0
    scored = tmp_path / "scored.csv"
    result = runner.invoke(main, ["score", "--input", str(company / "open_deals.csv"), "--out", str(scored),
                                  "--as-of", END])
    assert result.exit_code == 0, result.output
    deals = pd.read_csv(company / "open_deals.csv", dtype=str)
    deals["amount"] = deals["amount"].astype(float)
    deals["employees"] = deals["employees"].astype(float)
    served = mlflow.pyfunc.load_model("models:/pipeline-scoring@champion").predict(deals, params={"as_of": END})
    np.testing.assert_allclose(served["win_probability"], pd.read_csv(scored)["win_probability"], rtol=1e-12)


def test_the_pipeline_store_on_postgresql_imports_once_and_keeps_a_failed_import_out(postgres: str, company: Path):
    """The team's pipeline store: the same migrations, idempotent imports and transactions on PostgreSQL, in
    the database MLflow uses too (each keeps its own migration table)."""
    from scoring.data.contract import load_deal_history
    from scoring.store.pipeline import open_store

    url = postgres.replace("postgresql://", "postgresql+psycopg://")
    data = load_deal_history(company / "deals.csv", company / "stage_history.csv")
    with open_store(url) as store:
        _import_once_and_fail(store, data, url)


def test_partial_updates_on_postgresql_wait_for_each_other(postgres: str, company: Path):
    from tests.e2e.test_patch_deals import both_changes_kept

    both_changes_kept(postgres.replace("postgresql://", "postgresql+psycopg://"), company)


def _import_once_and_fail(store, data, url: str) -> None:
    from scoring.data.contract import load_deal_history
    from scoring.store.pipeline import open_store

    first = store.import_history(data, "deals.csv")
    assert first.deals_new == len(data.deals) and first.history_new == len(data.history)
    content = store.content()
    assert not store.import_history(data, "deals.csv").changed and store.content() == content

    def crash(done: int, total: int) -> None:
        raise RuntimeError("connection lost")

    changed = data.deals.copy()
    changed["amount"] = changed["amount"] + 1
    with pytest.raises(RuntimeError, match="connection lost"):
        store.import_history(load_deal_history(changed, data.history), "later.csv", progress=crash)
    assert store.content() == content
    with open_store(url) as again:
        assert again.deals()["amount"].sum() == pytest.approx(data.deals["amount"].sum())


def test_the_managers_page_and_put_deals_over_a_postgresql_store(postgres: str, company: Path, bundle: ModelBundle,
                                                                 tmp_path: Path):
    """The team's setup end to end: `scoring import` (with the CRM's field history) into PostgreSQL, the service
    reading it, the page in Chromium showing the API's figures, a CRM's PUT kept."""
    import httpx
    import sqlalchemy
    from playwright.sync_api import sync_playwright

    from scoring.serving.settings import hash_key
    from tests.e2e.test_pages import KEY, _login, _value
    from tests.e2e.test_report import CHROMIUM_ARGS
    from tests.e2e.test_serving import start_server, stop

    admin = sqlalchemy.create_engine(postgres.replace("postgresql://", "postgresql+psycopg://"),
                                     isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sqlalchemy.text("CREATE DATABASE pages"))
    admin.dispose()
    url = postgres.replace("postgresql://", "postgresql+psycopg://").rsplit("/", 1)[0] + "/pages"
    model = bundle.save(tmp_path / "bundle.joblib")
    result = CliRunner().invoke(main, ["import", "--deals", str(company / "deals.csv"), "--history",
                                       str(company / "stage_history.csv"), "--field-history",
                                       str(company / "field_history.csv"), "--store", url, "--model", str(model)])
    assert result.exit_code == 0, result.output
    assert "new field changes" in result.output and "Kept the forecast snapshot" in result.output
    server = start_server(tmp_path, {"SCORING_API_KEY_HASHES": hash_key(KEY), "SCORING_ACCESS_LOG": "false",
                                     "SCORING_STORE_URL": url}, "--model", str(model))
    try:
        headers = {"X-API-Key": KEY}
        api = httpx.get(f"{server.url}/v1/pipeline/forecast", params={"as_of": END, "periods": 4}, headers=headers,
                        timeout=60)
        assert api.status_code == 200, api.text
        first = api.json()["periods"][0]
        chromium = shutil.which("chromium") or shutil.which("chromium-browser")
        assert chromium, "Chromium is missing: `make test` installs Debian's chromium package"
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1366, "height": 768})
            _login(page, server.url, KEY)
            page.goto(f"{server.url}/?as_of={END}")
            assert _value(page, "bookings-expected") == first["bookings"]["expected"]
            assert _value(page, "fixed-expected") == first["fixed"]["expected"]
            browser.close()
        deal = {"deal_id": "PG-1", "stage": "Lead", "amount": 5000, "created_at": "2025-06-01", "status": "open",
                "history": [{"field": "CloseDate", "value": "2025-08-31", "changed_at": "2025-06-01"}],
                "activities": [{"occurred_at": "2025-06-02T09:00:00", "type": "Call"}]}
        put = httpx.put(f"{server.url}/v1/deals", json={"deals": [deal]}, headers=headers, timeout=60)
        assert put.status_code == 200, put.text
        assert put.json()["deals_new"] == put.json()["field_history_new"] == put.json()["activities_new"] == 1
    finally:
        stop(server)
