"""Baselines and metrics: each baseline does what its name says, on data small enough to check by hand."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.exceptions import NotFittedError

from scoring.data.config import PipelineConfig
from scoring.data.contract import load_deal_history
from scoring.evaluation.metrics import compare, expected_calibration_error, reliability_table, scores
from scoring.features.dataset import TrainingSet
from scoring.models.baselines import (
    EmpiricalStageRateModel,
    FixedStageModel,
    LogisticRegressionModel,
    OdooNaiveBayesModel,
)

STAGES = PipelineConfig(stages=("A", "B"), fixed_probabilities={"A": 0.2, "B": 0.6})


def _history(write):
    """Six closed deals: won ones went A -> B; lost ones stopped at A or B. Source: web wins more."""
    deals = """deal_id,created_at,amount,stage,status,closed_at,source
W1,2024-01-01,100,B,won,2024-02-01,web
W2,2024-01-01,100,B,won,2024-02-01,web
W3,2024-01-01,100,B,won,2024-02-01,phone
L1,2024-01-01,100,A,lost,2024-02-01,phone
L2,2024-01-01,100,A,lost,2024-02-01,phone
L3,2024-01-01,100,B,lost,2024-02-01,web
O1,2024-01-01,100,A,open,,web
"""
    history = "deal_id,stage,entered_at\n" + "".join(
        f"{d},A,2024-01-01\n" + (f"{d},B,2024-01-15\n" if d in ("W1", "W2", "W3", "L3") else "")
        for d in ("W1", "W2", "W3", "L1", "L2", "L3", "O1"))
    data = load_deal_history(write("d.csv", deals), write("h.csv", history), STAGES)
    return TrainingSet(data, pd.Timestamp("2024-03-01"))


def _rows(stage_index, source):
    return pd.DataFrame({"stage_index": stage_index, "source": source, "days_in_stage": 1.0, "age_days": 1.0,
                         "amount": 100.0})


def test_fixed_uses_the_configured_percentages(write):
    model = FixedStageModel().fit(_history(write))
    assert model.predict_proba(_rows([0, 1], ["web", "web"])).tolist() == [0.2, 0.6]


def test_empirical_rate_counts_closed_deals_that_reached_each_stage(write):
    model = EmpiricalStageRateModel().fit(_history(write))
    # reached A: 3 won of 6 closed; reached B: 3 won of 4 (the open deal is not counted)
    assert model.predict_proba(_rows([0, 1], ["web", "web"])).tolist() == pytest.approx([3 / 6, 3 / 4])


def test_odoo_naive_bayes_by_hand(write):
    model = OdooNaiveBayesModel().fit(_history(write))
    # Prior from the first stage: won 3.1, lost 3.1. Stage B: won 3.1 (all won), lost 1.1 (L3 reached B).
    # source=web: won 2.1, lost 1.1.   S_won = 3.1/6.2 * 3.1/3.1 * 2.1/3.1 ; S_lost = 3.1/6.2 * 1.1/3.1 * 1.1/3.1
    s_won = 0.5 * 1.0 * 2.1 / 3.1
    s_lost = 0.5 * (1.1 / 3.1) * (1.1 / 3.1)
    p = model.predict_proba(_rows([1, 1], ["web", "fax"]))
    assert p[0] == pytest.approx(s_won / (s_won + s_lost))
    # a value never seen is skipped: only prior and stage count
    assert p[1] == pytest.approx(0.5 / (0.5 + 0.5 * 1.1 / 3.1))


def test_logistic_regression_learns_direction(write):
    model = LogisticRegressionModel().fit(_history(write))
    p = model.predict_proba(_rows([1, 0], ["web", "phone"]))
    assert p[0] > p[1]


def test_logistic_regression_codes_categories_like_their_text(write):
    model = LogisticRegressionModel().fit(_history(write))
    rows = _rows([0, 0, 0, 1], ["web", None, "fax", "phone"])  # None: missing; "fax": never seen
    codes = model._frame(rows)["source"].tolist()
    assert codes == [1, 2, -1, 0]  # sorted training values (phone, web), missing after them, unseen -1
    assert np.isfinite(model.predict_proba(rows)).all()


def test_logistic_regression_explains_its_log_odds_input_by_input(write):
    """Coefficients x (value - training average), summed per input: they add up to the deal's log-odds less
    the average deal's, and the source that wins more raises a deal's odds."""
    model = LogisticRegressionModel().fit(_history(write))
    rows = _rows([1, 0, 1], ["web", "phone", None])
    explained = model.explain(rows, np.array([30.0]))
    assert explained.names == tuple(model.columns_) and explained.contributions.shape == (3, len(model.columns_))
    p = model.predict_proba(rows)
    logistic = model.pipeline_[-1]
    average = logistic.intercept_[0] + model.means_ @ logistic.coef_[0]
    np.testing.assert_allclose(explained.contributions.sum(axis=1), np.log(p / (1 - p)) - average, atol=1e-10)
    source = explained.contributions[:, model.columns_.index("source")]
    assert source[0] > 0 > source[1]
    assert np.array_equal(explained.p, p) and explained.by.shape == (3, 1) and (explained.days_to_win > 0).all()


@pytest.mark.parametrize("model", [FixedStageModel(), EmpiricalStageRateModel(), OdooNaiveBayesModel(),
                                   LogisticRegressionModel()])
def test_unfitted_models_say_so(model):
    with pytest.raises(NotFittedError):
        model.predict_proba(_rows([0], ["web"]))


def test_scores_known_values():
    y = np.array([1, 0, 1, 0])
    p = np.array([0.9, 0.1, 0.8, 0.3])
    s = scores(y, p)
    assert s["roc_auc"] == 1.0
    assert s["brier"] == pytest.approx(np.mean((p - y) ** 2))
    assert s["log_loss"] == pytest.approx(-np.mean(np.log([0.9, 0.9, 0.8, 0.7])))
    assert np.isnan(scores(np.array([1, 1]), np.array([0.5, 0.6]))["roc_auc"])
    # in revenue terms: the large deal won, and the model gave it 0.2: it expects far too little revenue
    revenue = scores(np.array([1, 0]), np.array([0.2, 0.5]), amount=np.array([1000.0, 10.0]))["revenue_ratio"]
    assert revenue == pytest.approx((0.2 * 1000 + 0.5 * 10) / 1000)
    assert np.isnan(s["revenue_ratio"]) and np.isnan(scores(y, p, amount=np.zeros(4))["revenue_ratio"])


def test_calibration_error_is_zero_when_rates_match_and_large_when_not():
    rng = np.random.default_rng(0)
    p = rng.uniform(0, 1, 200_000)
    y = (rng.uniform(0, 1, p.size) < p).astype(float)
    assert expected_calibration_error(y, p) < 0.01
    assert expected_calibration_error(y, np.clip(p + 0.2, 0, 1)) > 0.15
    table = reliability_table(y, p, bins=5)
    assert len(table) == 5 and table["count"].sum() == p.size


def test_compare_puts_models_side_by_side_per_group():
    y = np.array([1, 0] * 40)
    groups = pd.Series(["a"] * 40 + ["b"] * 40)
    table = compare(y, {"m1": np.full(80, 0.5), "m2": np.where(y == 1, 0.8, 0.2)}, groups)
    assert set(table["group"]) == {"all", "a", "b"} and set(table["model"]) == {"m1", "m2"}
    assert (table.loc[table["model"] == "m2", "log_loss"].to_numpy() < table.loc[table["model"] == "m1", "log_loss"].to_numpy()).all()


def test_logistic_regression_scores_by_its_per_input_terms_exactly_as_its_pipeline():
    """Scoring reads the pipeline as one term per input (no DataFrame, no scikit-learn pass): the same
    probabilities and contributions as the pipeline, for unseen and missing categories, missing numbers, numbers
    far outside the training range and (probabilities) a stage index no training row had."""
    from scoring.data.demo import DemoCompany
    from scoring.models.baselines import LinearTerms

    demo = DemoCompany().generate(400, seed=5, end="2025-06-30")
    data = load_deal_history(demo.deals, demo.history, demo.config)
    training = TrainingSet(data, pd.Timestamp("2025-06-30"))
    model = LogisticRegressionModel().fit(training)
    assert model.terms_ is not None and any(not log for log, *_ in model.terms_.affine.values())  # employees
    rows = training.snapshots.rows.head(300).copy()
    rows.loc[::7, "segment"] = "never seen"
    rows.loc[::11, "source"] = None
    rows.loc[::5, "employees"] = np.nan
    rows.loc[::13, "amount"] = 1e9
    fast = model.explain(rows, np.array([90.0]))
    np.testing.assert_allclose(fast.p, model.pipeline_.predict_proba(model._frame(rows))[:, 1], rtol=0, atol=1e-12)
    x = model.pipeline_[:-1].transform(model._frame(rows))
    x = x.toarray() if hasattr(x, "toarray") else x
    slow = ((x - model.means_) * model.pipeline_[-1].coef_[0]) @ model.groups_
    np.testing.assert_allclose(fast.contributions, slow, rtol=0, atol=1e-10)
    odd = rows.assign(stage_index=np.where(np.arange(len(rows)) % 17 == 0, 99, rows["stage_index"]))
    np.testing.assert_allclose(model.predict_proba(odd), model.pipeline_.predict_proba(model._frame(odd))[:, 1],
                               rtol=0, atol=1e-12)
    # a model pickled before the terms existed derives them on first use, the same
    del model.terms_, model.codes_
    np.testing.assert_array_equal(model.predict_proba(rows), fast.p)
    assert isinstance(model.terms_, LinearTerms)


def test_amounts_never_entered_teach_nothing_about_size():
    """A CRM that writes 0 for an amount never entered (Bitrix24, Odoo, Pipedrive): to logistic regression and
    the calibration (linear in the log amount) 0 is missing, as a blank amount, never the smallest deal; read as
    one, a tenth of such deals at random took nearly all logistic regression learned of size (its large deals'
    odds rose). The booster keeps 0 apart from every amount entered, to learn what it says on its own."""
    from scoring.data.demo import DemoCompany
    from scoring.features.encoder import FeatureEncoder, entered_amounts
    from scoring.models.win import WinModel

    assert np.isnan(entered_amounts(np.array([0.0, -1.0, np.nan]))).all() and entered_amounts([5.0])[0] == 5.0
    demo = DemoCompany().generate(600, seed=5, end="2025-06-30")
    zeroed = np.random.default_rng(0).random(len(demo.deals)) < 0.1

    def size_effect(deals: pd.DataFrame) -> tuple[LogisticRegressionModel, float]:
        data = load_deal_history(deals, demo.history, demo.config)
        model = LogisticRegressionModel().fit(TrainingSet(data, pd.Timestamp("2025-06-30")))
        rows = TrainingSet(data, pd.Timestamp("2025-06-30")).snapshots.rows.head(1)
        small, large = (model.explain(rows.assign(amount=a), np.array([90.0])).contributions[0, model.columns_.index(
            "amount")] for a in (5_000.0, 500_000.0))
        return model, float(small - large)

    _, whole = size_effect(demo.deals)
    model, with_zeros = size_effect(demo.deals.assign(amount=demo.deals["amount"].mask(zeroed, 0.0)))
    # larger deals won less, most of it as before (0.13 of it when 0 was read as the smallest deal); what is lost
    # is the zeroed deals' own size: at the median, their outcomes blur what size teaches
    assert whole > 0 and with_zeros > 0.5 * whole
    rows = _rows([0, 0], ["web", "web"]).assign(amount=[0.0, np.nan], segment="SMB", region="EMEA", owner=None,
                                               product="Core", employees=50.0)
    p = model.predict_proba(rows)
    assert p[0] == p[1]  # 0 is read as missing
    np.testing.assert_allclose(p, model.pipeline_.predict_proba(model._frame(rows))[:, 1], rtol=0, atol=1e-12)
    booster = WinModel()
    booster.encoder_ = FeatureEncoder({}).fit(rows)
    x = booster.encoder_.transform(rows.assign(amount=[0.0, 99.0]))
    assert x[:, 3].tolist() == [0.0, np.log1p(99.0)]  # the booster's input: 0 apart from every amount entered
    assert np.isnan(booster._log_amount(x)[0]) and booster._log_amount(x)[1] == np.log1p(99.0)  # the calibration's
