"""The trained bundle and the train / score / stages commands, end to end on a small demo company."""
from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from scoring.bundle import ModelBundle
from scoring.cli.main import main
from scoring.data.config import PipelineConfig
from scoring.data.contract import load_deal_history, load_open_deals
from scoring.errors import DataError, InsufficientDataError, ModelError
from scoring.evaluation.selection import Served
from scoring.models.transitions import StageTransitionModel
from scoring.models.win import WinModel
from scoring.scores import deal_state, score_deals
from scoring.train import train_bundle
from tests.conftest import END


def test_bundle_carries_metrics_for_every_model_and_its_provenance(bundle: ModelBundle):
    overall = bundle.metrics[bundle.metrics["by"] == "all"].set_index("model")
    assert set(overall.index) == {"model", "stage_transitions", "fixed", "empirical_stage_rate", "odoo_naive_bayes",
                                  "logistic_regression"}
    assert overall.loc["model", "log_loss"] < overall.loc["fixed", "log_loss"]
    assert set(bundle.metrics["by"]) == {"all", "stage", "segment"}
    assert len(bundle.data_digest) == 64 and bundle.n_deals == 6000
    assert set(bundle.versions) >= {"lightgbm", "scikit-learn", "numpy", "pandas", "python"}
    assert bundle.holdout_start < bundle.as_of


@pytest.mark.parametrize("served", ["model", "logistic_regression", "stage_transitions"])
def test_any_candidate_serves_through_the_same_answer(bundle: ModelBundle, company: Path, served: str):
    """Whichever candidate won the holdout, the answer has the same columns; the win model explains by TreeSHAP,
    logistic regression by coefficients x values, the stage-transition model not at all (and says so)."""
    chosen = replace(bundle, served=served, served_reason="chosen by the test")
    deals = load_open_deals(company / "open_deals.csv")
    scores, warnings = score_deals(chosen, deals, END)
    assert np.allclose(scores["win_probability"], chosen.models[served].predict_proba(
        deal_state(chosen, deals, END)[0]))
    assert (scores["win_probability_90d"] <= scores["win_probability"] + 1e-12).all()
    assert scores["expected_close_date"].notna().all()
    explained = (scores["factors_up"].str.len() + scores["factors_down"].str.len()) > 0
    if served == "stage_transitions":
        assert not explained.any() and any("no factors: the model serving, stage_transitions" in w for w in warnings)
    else:
        assert explained.all() and not warnings
        shown = " ".join(scores["factors_up"] + scores["factors_down"])
        assert "stage=" in shown and "amount=" in shown


def test_known_predictions_survive_a_reload(bundle: ModelBundle, company: Path, tmp_path: Path):
    deals = load_open_deals(company / "open_deals.csv")
    before, _ = score_deals(bundle, deals, END)
    loaded = ModelBundle.load(bundle.save(tmp_path / "b.joblib"))
    after, _ = score_deals(loaded, deals, END)
    np.testing.assert_array_equal(before["win_probability"].to_numpy(), after["win_probability"].to_numpy())


def test_a_bundle_from_other_library_versions_is_refused(bundle: ModelBundle, tmp_path: Path):
    path = replace(bundle, versions={**bundle.versions, "lightgbm": "4.6.0"}).save(tmp_path / "old.joblib")
    with pytest.raises(ModelError, match="trained with lightgbm 4.6.0"):
        ModelBundle.load(path)
    (tmp_path / "junk.joblib").write_text("not a model")
    with pytest.raises(ModelError, match="not a readable model bundle"):
        ModelBundle.load(tmp_path / "junk.joblib")


def test_scores_have_the_spec_columns_and_sensible_values(bundle: ModelBundle, company: Path):
    deals = load_open_deals(company / "open_deals.csv")
    scores, warnings = score_deals(bundle, deals, END)
    assert {"deal_id", "win_probability", "fixed_probability", "expected_revenue",
            "fixed_expected_revenue"} <= set(scores.columns)
    assert scores["win_probability"].between(0, 1).all() and not warnings
    assert np.allclose(scores["expected_revenue"], scores["amount"] * scores["win_probability"])
    assert (scores["factors_up"].str.len() + scores["factors_down"].str.len() > 0).all()


def test_scoring_refuses_deals_created_after_the_as_of_date(bundle: ModelBundle, company: Path):
    deals = load_open_deals(company / "open_deals.csv")
    with pytest.raises(DataError, match="created after the as-of date"):
        score_deals(bundle, deals, "2020-01-01")


def test_unknown_feature_values_are_scored_and_reported(bundle: ModelBundle, company: Path):
    deals = load_open_deals(company / "open_deals.csv").head(5).assign(source="Carrier pigeon").drop(columns="region")
    scores, warnings = score_deals(bundle, deals, END)
    assert len(scores) == 5
    assert any("Carrier pigeon" in w for w in warnings) and any("region" in w for w in warnings)


def test_too_little_data_is_refused_with_the_numbers(company: Path):
    deals = pd.read_csv(company / "deals.csv").head(150)
    history = pd.read_csv(company / "stage_history.csv")
    data = load_deal_history(deals, history[history["deal_id"].isin(deals["deal_id"])])
    with pytest.raises(InsufficientDataError, match="won and .* lost deal"):
        train_bundle(data)


def test_tables_never_elide_a_number(company: Path, bundle: ModelBundle, tmp_path: Path):
    """A forecast of a company a thousand times larger, in a terminal of 80 columns: every number whole."""
    model = bundle.save(tmp_path / "model.joblib")
    deals = pd.read_csv(company / "open_deals.csv")
    deals["amount"] *= 1000
    big = tmp_path / "big.csv"
    deals.to_csv(big, index=False)
    result = CliRunner().invoke(main, ["forecast", "--input", str(big), "--as-of", END, "--model", str(model),
                                       "--period", "month", "--out", str(tmp_path / "f.json")],
                                env={"COLUMNS": "80"})
    assert result.exit_code == 0, result.output
    assert "…" not in result.output and "..." not in result.output
    forecast = json.loads((tmp_path / "f.json").read_text())
    fixed = f"{forecast['total']['fixed']['expected']:,.0f}"  # the amounts' own size, whatever the model reads
    assert len(fixed) >= 13 and fixed in result.output  # e.g. 9,331,440,000: whole, on one line
    assert f"{forecast['total']['model']['expected']:,.0f}" in result.output


def test_score_and_stages_commands_read_a_bundle_file(company: Path, bundle: ModelBundle, tmp_path: Path):
    runner = CliRunner()
    model = bundle.save(tmp_path / "model.joblib")
    scored = tmp_path / "scored.csv"
    result = runner.invoke(main, ["score", "--input", str(company / "open_deals.csv"), "--out", str(scored),
                                  "--as-of", END, "--model", str(model)])
    assert result.exit_code == 0, result.output
    table = pd.read_csv(scored)
    assert len(table) == len(pd.read_csv(company / "open_deals.csv"))
    result = runner.invoke(main, ["stages", "--model", str(model)])
    assert result.exit_code == 0 and "Where deals go from each stage" in result.output
    whole = runner.invoke(main, ["score", "--input", str(company / "deals.csv"), "--out", str(scored),
                                 "--as-of", END, "--model", str(model), "--force"])
    deals = pd.read_csv(company / "deals.csv")
    assert whole.exit_code == 0, whole.output  # a whole export: its open deals scored, the rest counted and skipped
    assert len(pd.read_csv(scored)) == int((deals["status"] == "open").sum())
    assert f"{int((deals['status'] != 'open').sum()):,} row(s) not scored" in " ".join(whole.output.split())
    result = runner.invoke(main, ["score", "--input", str(company / "open_deals.csv"), "--out", str(scored),
                                  "--model", str(model), "--preset", "hubspot", "--force"])
    assert result.exit_code == 1 and "not a hubspot export" in result.output
    result = runner.invoke(main, ["stages", "--model", str(tmp_path / "none.joblib")])
    assert result.exit_code == 1 and "no model bundle there" in result.output


def test_forecast_command_writes_the_spec_json(company: Path, bundle: ModelBundle, tmp_path: Path):
    model = bundle.save(tmp_path / "m.joblib")
    out = tmp_path / "forecast.json"
    result = CliRunner().invoke(main, ["forecast", "--input", str(company / "open_deals.csv"), "--out", str(out),
                                       "--as-of", END, "--period", "month", "--periods", "2", "--model", str(model)])
    assert result.exit_code == 0, result.output
    document = json.loads(out.read_text())
    assert [p["start"] for p in document["periods"]] == [END, "2025-07-01"]
    assert document["total"]["model"]["p10"] <= document["total"]["model"]["p90"]
    bad = CliRunner().invoke(main, ["forecast", "--input", str(company / "open_deals.csv"), "--out", str(out),
                                    "--as-of", "2019-01-01", "--model", str(model), "--force"])
    assert bad.exit_code == 1 and "created after" in bad.output


def test_a_save_that_fails_half_way_leaves_the_previous_bundle_whole(bundle: ModelBundle, tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch):
    import joblib

    path = bundle.save(tmp_path / "model.joblib")
    before = path.read_bytes()

    def killed(value: object, filename: object, **kwargs: object) -> None:
        Path(str(filename)).write_bytes(before[: len(before) // 3])  # a third written, then the process dies
        raise KeyboardInterrupt

    monkeypatch.setattr(joblib, "dump", killed)
    with pytest.raises(KeyboardInterrupt):
        bundle.save(path)
    assert path.read_bytes() == before and list(tmp_path.iterdir()) == [path]  # no temporary file left either
    ModelBundle.load(path)


def _zombie_history(seed: int = 3) -> pd.DataFrame:
    """One stage; won or lost within 5-60 days, or never closed (a quarter of the deals: left open for good)."""
    rng = np.random.default_rng(seed)
    n, end = 3000, pd.Timestamp(END)
    created = end - pd.to_timedelta(rng.uniform(0, 730, n), unit="D")
    fate = rng.choice(["won", "lost", "open"], n, p=[0.4, 0.35, 0.25])
    closed = created + pd.to_timedelta(rng.uniform(5, 60, n), unit="D")
    decided = (fate != "open") & (closed < end)
    return pd.DataFrame({"deal_id": [f"Z{i}" for i in range(n)], "created_at": created,
                         "amount": rng.lognormal(9, 0.5, n).round(2), "stage": "Engaging",
                         "status": np.where(decided, fate, "open"), "closed_at": closed.where(decided),
                         "stage_entered_at": created, "segment": rng.choice(["SMB", "Enterprise"], n)})


def test_a_serving_baseline_takes_the_win_models_timing(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    """When a baseline serves (it knows only P(win)), its P(win) is spread over time by the win model, which knows
    how long each deal has been open; as served, deals open far longer than any win took (and never to close)
    get nothing in the next month, where the stage's timing (blind to age) put the same share on every deal."""
    deals = _zombie_history()
    config = PipelineConfig(stages=("Engaging",), fixed_probabilities={"Engaging": 0.5})
    data = load_deal_history(deals, config=config)
    monkeypatch.setattr("scoring.train.choose_served", lambda *_: Served("stage_transitions", "the test", 0.5))
    bundle = train_bundle(data, as_of=END)
    served = bundle.models[bundle.served]  # its own P(win), before the chance a deal never closes
    assert isinstance(served, StageTransitionModel) and served.timing_model_ is bundle.model
    early = bundle.holdout_model
    assert isinstance(early, StageTransitionModel) and isinstance(early.timing_model_, WinModel)
    assert early.timing_model_ is not bundle.model  # the win model fitted at the holdout's start

    rows, _ = deal_state(bundle, deals[deals["status"] == "open"], END)
    horizon = np.array([30.0])
    p, by = served.win_by(rows, horizon)
    np.testing.assert_array_equal(p, served.predict_proba(rows))
    theirs = bundle.model.explain(rows, horizon, contributions=False)
    np.testing.assert_allclose(by[:, 0], p * theirs.by[:, 0] / theirs.p, rtol=1e-9)
    old = rows["age_days"].to_numpy() > 120  # open twice as long as any win took
    stage_share = served.timing_.share_within(rows["stage_index"].to_numpy(), horizon)[:, 0]
    next_month = bundle.served_model.win_by(rows, horizon)[1][:, 0]  # as served: counting deals that never close
    assert next_month[old].max() < 0.01 and (p * stage_share)[old].mean() > 0.2
    assert next_month[~old].mean() > 0.05
    loaded = ModelBundle.load(bundle.save(tmp_path / "b.joblib"))
    assert loaded.models[loaded.served].timing_model_ is loaded.model  # one win model in the file, not a copy


def test_deals_left_open_for_good_are_served_the_chance_they_never_close(tmp_path: Path):
    """A quarter of the deals are never closed. Every model learns P(win) from deals that closed, so it gives a
    deal open twice as long as any close took the P(win) of deals that close; served, P(win) counts the chance a
    deal open that long never closes, and comes near the truth this world knows for every open deal."""
    deals = _zombie_history()
    data = load_deal_history(deals, config=PipelineConfig(stages=("Engaging",), fixed_probabilities={"Engaging": 0.5}))
    bundle = train_bundle(data, as_of=END)
    share = bundle.dormancy.summary()["stages"]["Engaging"]["never_leave_share"]
    assert share == pytest.approx(0.25, abs=0.04)
    assert bundle.stage_table()["never_leave_share"].iloc[0] == pytest.approx(share, abs=1e-4)  # the stage table says it
    shown = CliRunner().invoke(main, ["stages", "--model", str(bundle.save(tmp_path / "model.joblib"))])
    assert shown.exit_code == 0 and "never" in shown.output and f"{share:.1%}" in shown.output, shown.output
    open_deals = deals[deals["status"] == "open"]
    rows, _ = deal_state(bundle, open_deals, END)
    age = rows["age_days"].to_numpy()
    closing_later = np.clip((60 - age) / 55, 0, 1)  # closes come 5-60 days after creation: P(not closed by now)
    truth = 0.4 * closing_later / (0.25 + 0.75 * closing_later)  # won among the deals still open at this age
    served = bundle.served_model.predict_proba(rows)
    unaware = bundle.models[bundle.served].predict_proba(rows)
    assert np.abs(served - truth).mean() < 0.03 < 0.3 < np.abs(unaware - truth).mean()
    assert served[age > 90].max() == 0.0  # older than any deal that ever closed
    scored, warnings = score_deals(bundle, load_open_deals(open_deals.drop(columns=["status", "closed_at"]),
                                                           bundle.config), END)
    np.testing.assert_allclose(scored.set_index("deal_id").loc[rows["deal_id"], "win_probability"], served, rtol=1e-9)
    longest = bundle.dormancy.summary()["stages"]["Engaging"]["longest_exit_days"]
    assert any(f"{np.sum(age > longest)} deal(s) in their stage longer than any deal that ever left it" in w
               for w in warnings)
