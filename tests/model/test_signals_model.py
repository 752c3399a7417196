"""Models that learn from deal signals (SPEC 2.2): activities that tell the outcome make a better model, in the
direction they should; files, the CLI and requests give a deal the same signal features."""
from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from fastapi.testclient import TestClient

from scoring.bundle import ModelBundle
from scoring.cli.main import main
from scoring.data.contract import load_deal_history, read_open_deals
from scoring.data.demo import DemoCompany
from scoring.data.signals import read_signals
from scoring.scores import score_deals
from scoring.serving.app import create_app
from scoring.serving.settings import Settings
from scoring.train import train_bundle

END = "2025-06-30"


def logged_activities(deals: pd.DataFrame, seed: int = 0) -> pd.DataFrame:
    """Activities through each deal's open life, more often on deals that go on to win (a rep works a live deal):
    a signal the stage and age do not carry. Types as Salesforce tasks name them."""
    rng = np.random.default_rng(seed)
    created = deals["created_at"].to_numpy(dtype="datetime64[us]")
    last = pd.to_datetime(deals["closed_at"]).fillna(pd.Timestamp(END)).to_numpy(dtype="datetime64[us]")
    status = deals["status"].to_numpy()
    rate = np.where(status == "won", 1 / 6, np.where(status == "lost", 1 / 18, 1 / 10))
    life = (last - created) / np.timedelta64(1, "D")
    count = rng.poisson(rate * np.maximum(life, 0))
    ix = np.repeat(np.arange(len(deals)), count)
    at = created[ix] + (rng.random(len(ix)) * life[ix] * 86400e6).astype("timedelta64[us]")
    return pd.DataFrame({"WhatId": deals["deal_id"].to_numpy()[ix], "ActivityDate": pd.to_datetime(at).floor("min"),
                         "Type": rng.choice(["Call", "Email", "Meeting"], len(ix))})


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("signals")
    demo = DemoCompany().generate(6000, seed=21, end=END)
    demo.write(out)
    logged_activities(demo.deals).to_csv(out / "activities.csv", index=False)
    return out


@pytest.fixture(scope="module")
def bundles(files: Path) -> dict[str, ModelBundle]:
    plain = load_deal_history(files / "deals.csv", files / "stage_history.csv")
    signals = load_deal_history(files / "deals.csv", files / "stage_history.csv",
                                field_history=files / "field_history.csv", activities=files / "activities.csv")
    return {"plain": train_bundle(plain, as_of=END), "signals": train_bundle(signals, as_of=END)}


def _log_loss(bundle: ModelBundle) -> float:
    m = bundle.metrics
    return float(m[(m["model"] == "model") & (m["group"] == "all")]["log_loss"].iloc[0])


def test_activities_that_tell_the_outcome_make_a_better_model(bundles: dict[str, ModelBundle]):
    assert bundles["signals"].signals.describe() == "the rep's close date, activities"
    assert {"activities_30d", "days_since_activity", "close_date_pushes"} <= set(bundles["signals"].features)
    assert _log_loss(bundles["signals"]) < _log_loss(bundles["plain"]) - 0.03


def test_recent_activity_raises_the_win_probability(bundles: dict[str, ModelBundle], files: Path):
    bundle = bundles["signals"]
    deals, report = read_open_deals(files / "open_deals.csv", bundle.config)
    quiet = read_signals(None, pd.DataFrame({"deal_id": [], "occurred_at": []}), deals["deal_id"], bundle.config,
                         report)
    busy_rows = pd.DataFrame({"deal_id": np.repeat(deals["deal_id"].to_numpy(), 4),
                              "occurred_at": pd.Timestamp(END) - pd.to_timedelta(np.tile([1, 3, 5, 8], len(deals)), "D")})
    busy = read_signals(None, busy_rows, deals["deal_id"], bundle.config, report)
    low, _ = score_deals(bundle, deals, END, top=0, signals=quiet)
    high, warnings = score_deals(bundle, deals, END, top=3, signals=busy)
    assert (high["win_probability"] >= low["win_probability"]).mean() > 0.9
    assert high["win_probability"].mean() > low["win_probability"].mean() + 0.05
    assert "activities_30d" in " ".join(high["factors_up"])
    assert not any("activities" in w for w in warnings)
    _, unknown = score_deals(bundle, deals, END, top=0)  # none given: unknown, said
    assert any("activities" in w and "none were given" in w for w in unknown)


@pytest.fixture(scope="module")
def client(bundles: dict[str, ModelBundle], tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    tmp = tmp_path_factory.mktemp("signals-app")
    path = bundles["signals"].save(tmp / "bundle.joblib")
    app = create_app(Settings(model_uri=str(path), poll_seconds=0, cache_dir=str(tmp / "compiled"),
                              fallback_dir=str(tmp)))
    with TestClient(app) as test_client:
        yield test_client


def test_file_cli_and_request_give_a_deal_the_same_signals(client: TestClient, files: Path, tmp_path: Path):
    bundle = client.app.state.holder.current.bundle
    open_deals = pd.read_csv(files / "open_deals.csv", dtype=str).head(200)
    open_deals.to_csv(tmp_path / "open.csv", index=False)
    fh = pd.read_csv(files / "field_history.csv", dtype=str)
    acts = pd.read_csv(files / "activities.csv", dtype=str)
    deals, report = read_open_deals(tmp_path / "open.csv", bundle.config)
    signals = read_signals(files / "field_history.csv", files / "activities.csv", deals["deal_id"], bundle.config,
                           report)
    by_file, _ = score_deals(bundle, deals, END, top=0, signals=signals)

    model = bundle.save(tmp_path / "model.joblib")
    result = CliRunner().invoke(main, ["score", "--input", str(tmp_path / "open.csv"), "--out", str(tmp_path / "s.csv"),
                                       "--as-of", END, "--model", str(model), "--factors", "0",
                                       "--field-history", str(files / "field_history.csv"),
                                       "--activities", str(files / "activities.csv")])
    assert result.exit_code == 0, result.output
    by_cli = pd.read_csv(tmp_path / "s.csv")
    np.testing.assert_allclose(by_cli["win_probability"], by_file["win_probability"], rtol=1e-9)

    body = []
    for row in open_deals.to_dict(orient="records"):
        deal = {k: v for k, v in row.items() if isinstance(v, str)}
        mine = fh[fh["deal_id"] == deal["deal_id"]]
        deal["history"] = [{"field": f, "value": v, "changed_at": c}
                           for f, v, c in zip(mine["field"], mine["value"], mine["changed_at"], strict=True)]
        done = acts[acts["WhatId"] == deal["deal_id"]]
        deal["activities"] = [{"occurred_at": a, "type": t} for a, t in zip(done["ActivityDate"], done["Type"],
                                                                             strict=True)]
        body.append(deal)
    answer = client.post("/v1/score", json={"as_of": END, "deals": body, "top_factors": 0})
    assert answer.status_code == 200, answer.text
    by_request = pd.DataFrame(answer.json()["scores"])
    np.testing.assert_allclose(by_request["win_probability"], by_file["win_probability"], rtol=1e-12, atol=0)
    assert not any("none were given" in w for w in answer.json()["warnings"])

    body[0]["history"] = [{"field": "CloseDate", "value": "next week", "changed_at": "2025-06-01"}]
    refused = client.post("/v1/score", json={"as_of": END, "deals": body[:1]})
    assert refused.status_code == 422 and "deals[0].history[0]" in refused.text and "next week" in refused.text
    forecast = client.post("/v1/forecast", json={"as_of": END, "deals": body[1:], "period": "quarter", "periods": 1})
    assert forecast.status_code == 200, forecast.text


def test_deals_whose_close_date_was_pushed_again_and_again_are_at_risk(bundles: dict[str, ModelBundle], files: Path):
    from scoring.report.pipeline import PUSHED, deals_at_risk

    bundle = bundles["signals"]
    deals, report = read_open_deals(files / "open_deals.csv", bundle.config)
    signals = read_signals(files / "field_history.csv", None, deals["deal_id"], bundle.config, report)
    risky = deals_at_risk(bundle, deals, pd.Timestamp(END), "quarter", signals)
    pushed = risky[risky["why"].str.startswith("close date pushed")]
    assert len(pushed) and (pushed["pushes"] >= PUSHED).all()
    fh = pd.read_csv(files / "field_history.csv", parse_dates=["changed_at"])
    one = fh[fh["deal_id"] == pushed["deal_id"].iloc[0]].sort_values("changed_at")
    dates = pd.to_datetime(one["value"])
    assert (dates.diff() > pd.Timedelta(0)).sum() == pushed["pushes"].iloc[0]  # each later date a push
    # without the CRM's history, the changes successive imports found tell the same
    target = deals.sort_values("amount")["deal_id"].iloc[-1]  # the largest: listed first once at risk
    changes = pd.DataFrame({"deal_id": [target] * 3, "field": ["expected_close_date"] * 3,
                            "old_value": ["2025-05-01", "2025-06-01", "2025-09-01"],
                            "new_value": ["2025-06-01", "2025-07-15", "2025-08-01"],
                            "changed_at": pd.to_datetime(["2025-05-02", "2025-06-02", "2025-06-20"])})
    by_imports = deals_at_risk(bundle, deals, pd.Timestamp(END), "quarter", None, changes).set_index("deal_id")
    assert by_imports.loc[target, "pushes"] == 2  # the third change pulled the date in


def test_scoring_on_dask_reads_the_signals_as_one_machine_does(bundles: dict[str, ModelBundle], files: Path,
                                                                tmp_path: Path):
    """``score --engine dask --field-history --activities``: each partition's deals with their own field history
    and activities, the same scores as ``score`` of the whole file; rows set aside and rows of other deals said."""
    model = bundles["signals"].save(tmp_path / "model.joblib")
    parts = tmp_path / "parts"
    parts.mkdir()
    deals = pd.read_csv(files / "open_deals.csv", dtype=str)
    for i in range(2):
        deals.iloc[i::2].to_parquet(parts / f"part-{i}.parquet", index=False)
    history = pd.read_csv(files / "field_history.csv", dtype=str)
    history = pd.concat([history, history.head(2).assign(field="Created")])  # record events: set aside, said so
    history.to_csv(tmp_path / "field_history.csv", index=False)
    given = ["--as-of", END, "--model", str(model), "--field-history", str(tmp_path / "field_history.csv"),
             "--activities", str(files / "activities.csv")]
    runner = CliRunner()
    one = runner.invoke(main, ["score", "--input", str(files / "open_deals.csv"), "--out", str(tmp_path / "one.csv"),
                               *given])
    assert one.exit_code == 0, one.output
    many = runner.invoke(main, ["score", "--input", str(parts), "--out", str(tmp_path / "many"), "--engine", "dask",
                                *given])
    assert many.exit_code == 0, many.output
    said = " ".join(many.output.split())
    assert "of deal(s) not among the open deals scored: not used" in said
    assert "2 row(s) set aside: record events that change no field" in said
    expected = pd.read_csv(tmp_path / "one.csv").set_index("deal_id").sort_index()
    scored = pd.read_parquet(tmp_path / "many").set_index("deal_id").sort_index()
    assert len(scored) == len(expected) == len(deals)
    np.testing.assert_allclose(scored["win_probability"], expected["win_probability"], rtol=0, atol=1e-9)
    blind, _ = score_deals(bundles["signals"], read_open_deals(files / "open_deals.csv", bundles["signals"].config)[0],
                           END, 0)
    assert not np.allclose(blind.set_index("deal_id").sort_index()["win_probability"], scored["win_probability"])


def test_a_deal_enters_its_stage_when_its_stage_changes_say(client: TestClient, files: Path, tmp_path: Path):
    """Deals sent without stage_entered_at, their stage changes in the field history (Salesforce's Opportunity
    Field History holds StageName beside CloseDate): the CLI's --field-history and a request's history give each
    deal the entry into its stage that the file's stage_entered_at gives, so it is scored as the model learned."""
    bundle = client.app.state.holder.current.bundle
    open_deals = pd.read_csv(files / "open_deals.csv", dtype=str).head(200)
    open_deals.to_csv(tmp_path / "open.csv", index=False)
    model = bundle.save(tmp_path / "model.joblib")
    stages = pd.read_csv(files / "stage_history.csv", dtype=str)
    changes = pd.concat([pd.read_csv(files / "field_history.csv", dtype=str),
                         stages.rename(columns={"stage": "value", "entered_at": "changed_at"}).assign(field="StageName")])
    changes.to_csv(tmp_path / "changes.csv", index=False)
    open_deals.drop(columns="stage_entered_at").to_csv(tmp_path / "no_entry.csv", index=False)

    def cli(deals: str, out: str, *more: str) -> pd.DataFrame:
        result = CliRunner().invoke(main, ["score", "--input", str(tmp_path / deals), "--out", str(tmp_path / out),
                                           "--as-of", END, "--model", str(model), "--factors", "0", *more])
        assert result.exit_code == 0, result.output
        assert "stage_entered_at" not in result.output and "stage changes" not in result.output, result.output
        return pd.read_csv(tmp_path / out)

    given = cli("open.csv", "given.csv", "--field-history", str(files / "field_history.csv"))
    from_changes = cli("no_entry.csv", "from_changes.csv", "--field-history", str(tmp_path / "changes.csv"))
    np.testing.assert_allclose(from_changes["win_probability"], given["win_probability"], rtol=1e-12)
    unknown = CliRunner().invoke(main, ["score", "--input", str(tmp_path / "no_entry.csv"), "--out",
                                        str(tmp_path / "u.csv"), "--as-of", END, "--model", str(model), "--factors", "0",
                                        "--field-history", str(files / "field_history.csv")])
    assert unknown.exit_code == 0 and "without stage_entered_at" in unknown.output  # none given: said
    assert not np.allclose(pd.read_csv(tmp_path / "u.csv")["win_probability"], given["win_probability"])

    body = []
    for row in open_deals.drop(columns="stage_entered_at").to_dict(orient="records"):
        deal = {k: v for k, v in row.items() if isinstance(v, str)}
        mine = changes[changes["deal_id"] == deal["deal_id"]]
        deal["history"] = [{"field": f, "value": v, "changed_at": c}
                           for f, v, c in zip(mine["field"], mine["value"], mine["changed_at"], strict=True)]
        body.append(deal)
    answer = client.post("/v1/score", json={"as_of": END, "deals": body, "top_factors": 0})
    assert answer.status_code == 200, answer.text
    np.testing.assert_allclose(pd.DataFrame(answer.json()["scores"])["win_probability"], given["win_probability"],
                               rtol=1e-12)
    assert not any("stage_entered_at" in w for w in answer.json()["warnings"])
