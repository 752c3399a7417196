"""Retraining with MLflow, end to end on a real SQLite store of the test's own: runs, registry, promotion."""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from mlflow.tracking import MlflowClient

from scoring.bundle import ModelBundle
from scoring.cli.main import main
from scoring.data.config import PipelineConfig
from scoring.data.contract import load_deal_history
from scoring.training.pipeline import _log_params
from scoring.training.registry import decide
from tests.conftest import END


@pytest.fixture
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A fresh embedded store in the test's folder, which is also the working directory."""
    monkeypatch.chdir(tmp_path)
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    return uri


def _train(company: Path, *extra: str, deals: Path | None = None) -> str:
    result = CliRunner().invoke(main, ["train", "--deals", str(deals or company / "deals.csv"), "--history",
                                       str(company / "stage_history.csv"), "--as-of", END, *extra])
    assert result.exit_code == 0, result.output
    return " ".join(result.output.split())  # rich wraps long lines


def test_train_logs_registers_and_promotes_and_pyfunc_scores_like_the_cli(company: Path, store: str,
                                                                          tmp_path: Path):
    output = _train(company, "--promote", "always")
    assert "registered pipeline-scoring version 1" in output and "Promotion forced" in output
    client = MlflowClient(store, store)
    champion = client.get_model_version_by_alias("pipeline-scoring", "champion")
    assert champion.version == "1" or champion.version == 1
    assert client.get_model_version_by_alias("pipeline-scoring", "challenger").version == champion.version
    run = client.get_run(champion.run_id)
    assert len(run.data.params) >= 5 and run.data.params["as_of"] == END
    for name in ("model", "fixed", "stage_transitions", "odoo_naive_bayes", "logistic_regression"):
        assert f"holdout_log_loss_{name}" in run.data.metrics
    assert run.data.tags["code_version"] and len(run.data.tags["data_digest"]) == 64
    assert run.inputs.dataset_inputs and run.inputs.dataset_inputs[0].dataset.name == "deals"
    report = [a.path for a in client.list_artifacts(run.info.run_id, "report")]
    assert "report/report.html" in report and "report/reliability.png" in report
    assert (tmp_path / "models" / "pipeline-scoring.joblib").exists()

    scored = tmp_path / "scored.csv"
    result = CliRunner().invoke(main, ["score", "--input", str(company / "open_deals.csv"), "--out", str(scored),
                                       "--as-of", END])  # the default model: models:/pipeline-scoring@champion
    assert result.exit_code == 0, result.output
    cli = pd.read_csv(scored)
    model = mlflow.pyfunc.load_model("models:/pipeline-scoring@champion")
    deals = pd.read_csv(company / "open_deals.csv", dtype=str)
    deals["amount"] = deals["amount"].astype(float)
    deals["employees"] = deals["employees"].astype(float)
    served = model.predict(deals, params={"as_of": END})
    assert served["deal_id"].tolist() == cli["deal_id"].astype(str).tolist()
    np.testing.assert_allclose(served["win_probability"], cli["win_probability"], rtol=1e-12)


def test_a_worse_model_is_not_promoted_and_promote_and_rollback_move_the_champion(company: Path, store: str,
                                                                                   tmp_path: Path):
    _train(company, "--promote", "always")
    client = MlflowClient(store, store)
    assert str(client.get_model_version_by_alias("pipeline-scoring", "champion").version) == "1"

    deals = pd.read_csv(company / "deals.csv")  # a third of the deals: worse models, judged on the same rows
    fewer = tmp_path / "fewer.csv"
    deals.sample(frac=1 / 3, random_state=0).to_csv(fewer, index=False)
    output = _train(company, deals=fewer)
    assert "Not promoted" in output
    assert str(client.get_model_version_by_alias("pipeline-scoring", "champion").version) == "1"
    assert str(client.get_model_version_by_alias("pipeline-scoring", "challenger").version) == "2"
    assert "not promoted" in client.get_model_version("pipeline-scoring", "2").tags["promotion_decision"]

    runner = CliRunner()
    result = runner.invoke(main, ["promote", "2", "--reason", "trying it"])
    assert result.exit_code == 0 and "from version 1 to 2" in result.output
    exported = tmp_path / "models" / "pipeline-scoring.version"  # the service's fallback follows the champion
    assert exported.read_text().strip() == "2"
    result = runner.invoke(main, ["promote", "2"])
    assert result.exit_code == 0 and "version 2 is already the champion; nothing changed" in result.output
    result = runner.invoke(main, ["rollback"])
    assert result.exit_code == 0 and "from version 2 to 1" in result.output
    assert str(client.get_model_version_by_alias("pipeline-scoring", "champion").version) == "1"
    assert exported.read_text().strip() == "1"  # a restart with the store down serves 1, not the rejected 2
    again = runner.invoke(main, ["rollback"])  # version 1 replaced no champion: a second rollback does not flip back
    assert again.exit_code == 1 and "nothing changed" in " ".join(again.output.split())
    assert str(client.get_model_version_by_alias("pipeline-scoring", "champion").version) == "1"
    result = runner.invoke(main, ["promote", "9"])
    assert result.exit_code == 1 and "no version 9" in result.output
    broken = client.create_model_version("pipeline-scoring", source=str(tmp_path / "nothing"), run_id=None)
    result = runner.invoke(main, ["promote", str(broken.version)])  # a version that does not load is refused
    assert result.exit_code == 1 and "could not load" in " ".join(result.output.split())
    assert str(client.get_model_version_by_alias("pipeline-scoring", "champion").version) == "1"
    assert exported.read_text().strip() == "1"


def test_score_without_a_champion_says_how_to_get_one(company: Path, store: str, tmp_path: Path):
    result = CliRunner().invoke(main, ["score", "--input", str(company / "open_deals.csv"), "--out",
                                       str(tmp_path / "s.csv")])
    assert result.exit_code == 1 and "scoring train" in result.output


def test_the_first_version_becomes_the_champion_and_says_which_model_serves(company: Path, store: str):
    output = _train(company)  # --promote auto, the default
    assert "(serves)" in output and "Promoted: no champion yet" in output
    client = MlflowClient(store, store)
    champion = client.get_model_version_by_alias("pipeline-scoring", "champion")
    run = client.get_run(champion.run_id)
    assert run.data.params["serving_model"] in output
    assert {"snapshot_every_days", "scale.cycle_days_p90", "win_model.boundaries", "calibration"} <= set(run.data.params)


def test_without_a_champion_the_error_says_what_happened_and_a_refused_version_warns(company: Path, store: str,
                                                                                      tmp_path: Path):
    _train(company, "--promote", "never")
    runner = CliRunner()
    score = ["score", "--input", str(company / "open_deals.csv"), "--as-of", END]
    result = runner.invoke(main, [*score, "--out", str(tmp_path / "a.csv")])
    text = " ".join(result.output.split())
    assert result.exit_code == 1
    assert "its latest, version 1, was trained and promotion not asked for (--promote never)" in text
    assert "scoring promote 1" in text and "models:/pipeline-scoring/1" in text and ".." not in text
    result = runner.invoke(main, [*score, "--out", str(tmp_path / "b.csv"), "--model", "models:/pipeline-scoring/1"])
    assert result.exit_code == 0, result.output
    assert "warning: pipeline-scoring version 1 was not made the champion when trained" in " ".join(result.output.split())
    runner.invoke(main, ["promote", "1"])
    result = runner.invoke(main, [*score, "--out", str(tmp_path / "c.csv"), "--model", "models:/pipeline-scoring/1"])
    assert result.exit_code == 0 and "warning" not in result.output  # the champion now: nothing to warn of


def test_a_killed_training_run_is_marked_failed_and_its_version_tagged_by_the_next(company: Path, store: str):
    """A train killed after registering its version leaves a RUNNING run and an undecided version; the next
    train marks the run failed and tags the version. A run whose process lives (a concurrent train) is left."""
    import socket
    import subprocess
    import sys

    client = MlflowClient(store, store)
    experiment = client.create_experiment("pipeline-scoring")
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True,
                          check=True).stdout.strip()
    killed = client.create_run(experiment, tags={"host": socket.gethostname(), "pid": dead})
    client.create_registered_model("pipeline-scoring")
    orphan = client.create_model_version("pipeline-scoring", "file:///nowhere", run_id=killed.info.run_id)
    with subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"]) as alive:
        try:
            concurrent = client.create_run(experiment, tags={"host": socket.gethostname(), "pid": str(alive.pid)})
            output = _train(company, "--promote", "never")
        finally:
            alive.kill()
    assert f"Marked run {killed.info.run_id} failed" in output
    assert client.get_run(killed.info.run_id).info.status == "FAILED"
    assert client.get_run(concurrent.info.run_id).info.status == "RUNNING"
    tags = client.get_model_version("pipeline-scoring", orphan.version).tags
    assert tags["promoted_when_trained"] == "false" and "interrupted" in tags["promotion_decision"]


def test_train_keeps_mlflow_chatter_off_the_terminal(company: Path, store: str):
    """What the user sees of `scoring train` is ours: no MLflow INFO lines, CloudPickle warning, download bars
    or registration prints (run as a user runs it: its own process, a fresh environment)."""
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_LOGGING", "MLFLOW_ENABLE"))}
    done = subprocess.run([sys.executable, "-m", "scoring.cli.main", "train", "--deals", str(company / "deals.csv"),
                           "--history", str(company / "stage_history.csv"), "--as-of", END],
                          env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    shown = done.stdout + done.stderr
    for noise in ("INFO mlflow", "CloudPickle", "Downloading artifacts", "Successfully registered", "Created version"):
        assert noise not in shown, noise
    assert "registered pipeline-scoring version 1" in " ".join(shown.split())


def test_same_data_and_seed_give_the_same_metrics(company: Path, store: str):
    _train(company, "--promote", "never")
    _train(company, "--promote", "never")
    client = MlflowClient(store, store)
    runs = client.search_runs([client.get_experiment_by_name("pipeline-scoring").experiment_id])
    assert len(runs) == 2
    first, second = (r.data.metrics for r in runs)
    assert first == second and first["holdout_log_loss_model"] > 0
    assert runs[0].data.tags["data_digest"] == runs[1].data.tags["data_digest"]


def test_tuning_runs_optuna_trials_as_nested_runs_and_trains_with_the_best(company: Path, store: str):
    output = _train(company, "--promote", "never", "--tune", "2")
    assert "registered pipeline-scoring version 1" in output
    client = MlflowClient(store, store)
    runs = client.search_runs([client.get_experiment_by_name("pipeline-scoring").experiment_id])
    parent = next(r for r in runs if "mlflow.parentRunId" not in r.data.tags)
    trials = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id]
    assert len(trials) == 2 and all("validation_log_loss" in t.data.metrics for t in trials)
    best = min(trials, key=lambda t: t.data.metrics["validation_log_loss"])
    assert parent.data.metrics["tuning_best_validation_log_loss"] == best.data.metrics["validation_log_loss"]
    for name in ("learning_rate", "num_leaves", "min_child_samples"):
        assert float(parent.data.params[f"win_model.{name}"]) == float(best.data.params[name])


def test_stage_names_mlflow_refuses_in_a_param_name_are_logged_all_the_same(bundle: ModelBundle, store: str):
    """A CRM's stages may hold characters MLflow refuses in a param's name (an apostrophe, an ampersand,
    parentheses): the run's params name them with ``_`` instead of failing the training at its end."""
    stages = ("Buyer's approval", "R&D review (tech)", "Negotiation/Review")
    odd = replace(bundle, config=PipelineConfig(stages=stages, fixed_probabilities=dict(zip(stages, (0.1, 0.4, 0.7)))))
    with mlflow.start_run() as run:
        _log_params(odd, 0.2, 0)
    params = MlflowClient().get_run(run.info.run_id).data.params
    assert params["fixed_probability.Buyer_s approval"] == "0.1"
    assert params["fixed_probability.R_D review _tech_"] == "0.4"
    assert params["fixed_probability.Negotiation/Review"] == "0.7"
    assert params["stages"] == ",".join(stages)


class _Judged:
    """The bundle's own holdout-time model with its P(win) pulled toward ``toward`` (``pull``: a share) and its
    P(won within a horizon) times ``within``: a candidate better or worse on one judge only."""

    def __init__(self, model, pull: float = 0.0, toward: float = 0.5, within: float = 1.0) -> None:
        self.model, self.pull, self.toward, self.within = model, pull, toward, within

    def predict_proba(self, rows):
        return (1 - self.pull) * self.model.predict_proba(rows) + self.pull * self.toward

    def win_by(self, rows, horizons):
        p, by = self.model.win_by(rows, horizons)
        return p, np.minimum(by * self.within, 0.999)


def test_a_model_better_only_on_the_deals_that_closed_does_not_replace_the_champion(bundle: ModelBundle, company: Path):
    data = load_deal_history(company / "deals.csv", company / "stage_history.csv")
    model = bundle.holdout_model
    champion = replace(bundle, holdout_model=_Judged(model, pull=0.3))  # blurred: worse on the known outcomes
    sharp = replace(bundle, holdout_model=_Judged(model))
    assert decide(sharp, data, lambda: champion).promote  # better on known outcomes, as good on what deals won

    # as sharp on known outcomes, but three times the chance of winning soon: the open deals' odds of closing ones
    closes = replace(bundle, holdout_model=_Judged(model, within=3.0))
    decision = decide(closes, data, lambda: champion)
    assert not decision.promote
    assert decision.new_log_loss < decision.champion_log_loss  # it won on the deals whose outcome became known
    assert "predicts worse what the holdout's deals won within" in decision.reason
