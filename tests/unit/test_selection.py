"""What serves: the calibration kept for the ranking, and the best candidate on the holdout."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from scoring.evaluation.selection import WIN_MODEL_TOLERANCE, choose_served
from scoring.models.calibration import KINDS, Calibrator
from scoring.models.win import blend


def _metrics(**log_losses: float) -> pd.DataFrame:
    rows = [{"model": name, "by": "all", "group": "all", "log_loss": value} for name, value in log_losses.items()]
    rows.append({"model": "model", "by": "stage", "group": "Lead", "log_loss": 0.01})  # not overall: ignored
    return pd.DataFrame(rows)


def test_the_best_candidate_serves_and_the_fixed_percentages_never_do():
    served = choose_served(_metrics(model=0.40, logistic_regression=0.35, stage_transitions=0.37, fixed=0.30))
    assert served.name == "logistic_regression" and served.log_loss == 0.35
    assert "logistic_regression has the best holdout log-loss (0.3500; the win model 0.4000)" in served.reason


def test_the_win_model_keeps_serving_within_the_tolerance():
    served = choose_served(_metrics(model=0.35 + WIN_MODEL_TOLERANCE / 2, logistic_regression=0.35, fixed=0.5))
    assert served.name == "model" and "logistic_regression, 0.3500" in served.reason
    assert choose_served(_metrics(model=0.35 + 2 * WIN_MODEL_TOLERANCE, logistic_regression=0.35)).name != "model"


@pytest.fixture
def window() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    raw = rng.uniform(0.02, 0.9, 3000)
    log_amount = rng.normal(10, 1, 3000)
    true = 1 / (1 + np.exp(-(2.0 * np.log(raw / (1 - raw)) - 0.5)))  # overconfident the other way: a stretch
    return raw, log_amount, (rng.random(3000) < true).astype(float)


def test_every_kind_keeps_distinct_scores_distinct(window):
    raw, log_amount, won = window
    fitted = Calibrator.fit_each(raw, log_amount, won)
    assert set(fitted) == set(KINDS)
    for kind, calibrator in fitted.items():
        p = calibrator(raw, log_amount)
        assert len(np.unique(p)) > 0.9 * len(raw), kind
        assert p.min() >= 0.001 and p.max() <= 0.999
    inside = (raw > np.quantile(raw, 0.05)) & (raw < np.quantile(raw, 0.95))
    order = np.argsort(raw[inside])
    assert np.all(np.diff(fitted["isotonic"](raw[inside][order])) >= 0)  # still monotone


def test_the_choice_follows_cross_validated_log_loss(window):
    raw, log_amount, won = window
    chosen = Calibrator.choose(raw, log_amount, won)
    assert chosen.scores[chosen.kind] == min(chosen.scores.values())
    assert chosen.scores["none"] > chosen.scores["platt"]  # the raw scores need the stretch
    assert chosen.kind != "none"


def test_amount_enters_only_when_it_tells_something():
    rng = np.random.default_rng(1)
    raw = rng.uniform(0.05, 0.9, 4000)
    log_amount = rng.normal(10, 1, 4000)
    true = 1 / (1 + np.exp(-(np.log(raw / (1 - raw)) + 0.8 * (log_amount - 10))))  # large deals win more than raw says
    won = (rng.random(4000) < true).astype(float)
    fitted = Calibrator.fit_each(raw, log_amount, won)
    assert fitted["platt_amount"].coef[1] == pytest.approx(0.8, abs=0.15)
    assert Calibrator.choose(raw, log_amount, won).kind == "platt_amount"


def test_a_blend_moves_the_log_odds_toward_the_prior_by_its_weight():
    p, prior = np.array([0.1, 0.5, 0.9]), np.array([0.5, 0.2, 0.5])
    np.testing.assert_allclose(blend(p, prior, 1.0), p)
    np.testing.assert_allclose(blend(p, prior, 0.0), prior)
    half = blend(p, prior, 0.5)
    logit = np.log(half / (1 - half))
    np.testing.assert_allclose(logit, 0.5 * np.log(p / (1 - p)) + 0.5 * np.log(prior / (1 - prior)))
