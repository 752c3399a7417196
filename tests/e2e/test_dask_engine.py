"""The Dask engine on a small LocalCluster of worker processes: the same answers as one machine."""
from __future__ import annotations

import functools
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from distributed import Client

from scoring.bundle import ModelBundle
from scoring.data.contract import load_deal_history, load_open_deals
from scoring.engines.dask import DaskSnapshots, dask_client, dask_engine, map_on_cluster, score_parquet
from scoring.errors import ConfigError, DataError
from scoring.features.snapshots import snapshot_dates, take_snapshots
from scoring.forecast.backtest import backtest
from scoring.scores import score_deals
from scoring.train import train_bundle
from tests.conftest import END


@pytest.fixture(scope="module")
def client() -> Iterator[Client]:
    with dask_client(workers=2, memory_limit="2GB") as c:
        yield c


@pytest.fixture(scope="module")
def parts(company: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The open deals split into three Parquet files, as text (as a CRM export would give them)."""
    folder = tmp_path_factory.mktemp("open-parts")
    deals = pd.read_csv(company / "open_deals.csv", dtype=str)
    for i in range(3):
        deals.iloc[i::3].to_parquet(folder / f"part-{i}.parquet", index=False)
    return folder


def test_batch_scoring_equals_one_machine(bundle: ModelBundle, company: Path, parts: Path, tmp_path: Path,
                                          client: Client):
    done = score_parquet(bundle, parts, tmp_path / "scored", END, client, top=2)
    scored = pd.read_parquet(tmp_path / "scored").set_index("deal_id").sort_index()
    expected, _ = score_deals(bundle, load_open_deals(company / "open_deals.csv", bundle.config), END, 2)
    expected = expected.set_index("deal_id").sort_index()
    assert done.partitions == 3 and done.deals == len(expected) == len(scored)
    assert list(scored.columns) == list(expected.columns)
    np.testing.assert_allclose(scored["win_probability"], expected["win_probability"], rtol=0, atol=1e-12)
    np.testing.assert_allclose(scored["win_probability_this_period"], expected["win_probability_this_period"],
                               rtol=0, atol=1e-12)
    assert (scored["factors_up"] == expected["factors_up"]).all()
    assert done.expected_revenue == pytest.approx(expected["expected_revenue"].sum())
    assert len(list((tmp_path / "scored").glob("*.parquet"))) == 3  # one output part per input partition


def test_batch_scoring_errors_are_clear(bundle: ModelBundle, company: Path, parts: Path, tmp_path: Path,
                                        client: Client):
    with pytest.raises(ConfigError, match="reads Parquet"):
        score_parquet(bundle, company / "open_deals.csv", tmp_path / "out", END, client)
    with pytest.raises(ConfigError, match="new or empty folder"):
        score_parquet(bundle, parts, parts, END, client)  # would mix scores with the deals
    bad = tmp_path / "bad"
    bad.mkdir()
    deals = pd.read_csv(company / "open_deals.csv", dtype=str)
    deals.loc[len(deals) - 1, "stage"] = "Imaginary"  # in the last partition: found on a worker, not in the sample
    deals.iloc[:30].to_parquet(bad / "part-0.parquet", index=False)
    deals.iloc[30:].to_parquet(bad / "part-1.parquet", index=False)
    with pytest.raises(DataError, match="Imaginary"):
        score_parquet(bundle, bad, tmp_path / "out", END, client)


def test_backtest_dates_in_parallel_equal_one_after_another(company: Path, client: Client):
    data = load_deal_history(company / "deals.csv", company / "stage_history.csv")
    here = backtest(data, "2024-10-01", "2025-04-01", "quarter", periods=2)
    there = backtest(data, "2024-10-01", "2025-04-01", "quarter", periods=2,
                     mapper=functools.partial(map_on_cluster, client))
    pd.testing.assert_frame_equal(here.periods, there.periods)
    pd.testing.assert_frame_equal(here.outcomes, there.outcomes)


def test_an_unreachable_scheduler_is_a_clear_error():
    with pytest.raises(ConfigError, match="cannot reach the Dask scheduler"):
        with dask_client("tcp://127.0.0.1:9", timeout="2s"):
            pass


def test_training_on_the_cluster_matches_one_machine(company: Path, client: Client):
    data = load_deal_history(company / "deals.csv", company / "stage_history.csv")
    here = train_bundle(data, as_of=END)
    there = train_bundle(data, as_of=END, engine=dask_engine(client, data))
    overall = {name: b.metrics[b.metrics["by"] == "all"].set_index("model") for name, b in (("here", here), ("there", there))}
    baselines = [m for m in overall["here"].index if m != "model"]
    # the same snapshots in another order: the same baselines up to float sums (a calibration bin edge may move)
    pd.testing.assert_frame_equal(overall["here"].loc[baselines].drop(columns="ece"),
                                  overall["there"].loc[baselines].drop(columns="ece"), rtol=1e-9)
    # data-parallel LightGBM on two workers: the same model up to histogram sums in another order
    for metric, tolerance in (("log_loss", 0.01), ("roc_auc", 0.01), ("ece", 0.02)):
        assert abs(overall["here"].loc["model", metric] - overall["there"].loc["model", metric]) < tolerance, metric
    assert there.model.booster_.num_trees() == here.model.booster_.num_trees()
    assert there.model.calibrator_ is not None


def test_cluster_snapshots_are_the_local_ones(company: Path, client: Client):
    data = load_deal_history(company / "deals.csv", company / "stage_history.csv")
    dates = snapshot_dates(pd.Timestamp("2024-01-01"), pd.Timestamp(END), 14)
    here = take_snapshots(data, dates, pd.Timestamp(END))
    there = DaskSnapshots(client, data)(data, dates, pd.Timestamp(END))
    key = ["deal_id", "as_of"]
    pd.testing.assert_frame_equal(here.rows.sort_values(key).reset_index(drop=True),
                                  there.rows.sort_values(key).reset_index(drop=True))
    assert here.unplaced == there.unplaced


def test_the_commands_run_on_dask(company: Path, parts: Path, bundle: ModelBundle, tmp_path: Path,
                                  monkeypatch: pytest.MonkeyPatch):
    """As a user runs them: train (logged with the engine), score a folder of Parquet parts, and the
    scheduler option refused without the engine."""
    from click.testing import CliRunner
    from mlflow import MlflowClient

    from scoring.cli.main import main

    monkeypatch.chdir(tmp_path)
    store = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", store)
    runner = CliRunner()
    result = runner.invoke(main, ["train", "--deals", str(company / "deals.csv"), "--history",
                                  str(company / "stage_history.csv"), "--as-of", END, "--promote", "always",
                                  "--engine", "dask"])
    assert result.exit_code == 0, result.output
    tracking = MlflowClient(store, store)
    runs = tracking.search_runs([e.experiment_id for e in tracking.search_experiments()])
    assert [r.data.params["engine"] for r in runs] == ["dask"]
    model = bundle.save(tmp_path / "model.joblib")
    result = runner.invoke(main, ["score", "--input", str(parts), "--out", str(tmp_path / "scored"), "--as-of", END,
                                  "--model", str(model), "--engine", "dask", "--factors", "0"])
    assert result.exit_code == 0, result.output
    assert "in 3 partitions" in " ".join(result.output.split())
    assert pd.read_parquet(tmp_path / "scored")["factors_up"].eq("").all()
    result = runner.invoke(main, ["score", "--input", str(parts), "--out", str(tmp_path / "x.csv"), "--model",
                                  str(model)])
    assert result.exit_code == 1 and "needs --engine dask" not in result.output and "is a folder" in result.output
    result = runner.invoke(main, ["score", "--input", str(company / "open_deals.csv"), "--out", str(tmp_path / "y.csv"),
                                  "--model", str(model), "--scheduler", "tcp://127.0.0.1:9"])
    assert result.exit_code == 1 and "--scheduler is for --engine dask" in result.output
