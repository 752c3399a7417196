"""What serves: the calibration kept for the ranking, and the best candidate on the holdout."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import log_loss

from scoring.evaluation.holdout import followed
from scoring.evaluation.selection import (
    WIN_MODEL_TOLERANCE,
    choose_served,
    horizon_losses,
    judging_horizon,
    known_losses,
)
from scoring.models.base import Explanation
from scoring.models.calibration import KINDS, Calibrator
from scoring.models.dormancy import Dormancy, StageStays
from scoring.models.win import blend


def _metrics(**log_losses: float) -> pd.DataFrame:
    rows = [{"model": name, "by": "all", "group": "all", "log_loss": value} for name, value in log_losses.items()]
    rows.append({"model": "model", "by": "stage", "group": "Lead", "log_loss": 0.01})  # not overall: ignored
    return pd.DataFrame(rows)


def test_the_best_candidate_serves_and_the_fixed_percentages_never_do():
    losses = known_losses(_metrics(model=0.40, logistic_regression=0.35, stage_transitions=0.37, fixed=0.30))
    assert losses == {"model": 0.40, "logistic_regression": 0.35, "stage_transitions": 0.37}  # overall rows only
    served = choose_served(losses)
    assert served.name == "logistic_regression" and served.log_loss == 0.35
    assert "logistic_regression has the best holdout log-loss (0.3500; the win model 0.4000)" in served.reason
    assert choose_served({"model": 0.4, "fixed": 0.1, "stage_transitions": 0.5}).name == "model"


def test_the_win_model_keeps_serving_within_the_tolerance():
    served = choose_served({"model": 0.35 + WIN_MODEL_TOLERANCE / 2, "logistic_regression": 0.35})
    assert served.name == "model" and "logistic_regression, 0.3500" in served.reason
    assert choose_served({"model": 0.35 + 2 * WIN_MODEL_TOLERANCE, "logistic_regression": 0.35}).name != "model"


def test_a_candidate_serves_only_when_it_also_predicts_better_what_followed_deals_won():
    known = {"model": 0.40, "logistic_regression": 0.35, "odoo_naive_bayes": 0.30}
    served = choose_served(known, {"model": 0.20, "logistic_regression": 0.19, "odoo_naive_bayes": 0.25}, 90)
    assert served.name == "logistic_regression"  # of those better both ways, the best on the followed deals
    assert ("beats the win model both on the holdout's known outcomes (log-loss 0.3500; the win model 0.4000) and on "
            "what the holdout's deals won within 90 days (0.1900; the win model 0.2000)") in served.reason
    served = choose_served(known, {"model": 0.20, "logistic_regression": 0.21, "odoo_naive_bayes": 0.25}, 90)
    assert served.name == "model"
    assert ("odoo_naive_bayes has the better holdout log-loss on the deals whose outcome became known (0.3000; the win "
            "model 0.4000) but predicts worse what the holdout's deals won within 90 days") in served.reason


def test_followed_rows_count_deals_still_open_as_not_won_within_the_horizon():
    snapshots = pd.DataFrame({"outcome": ["won", "won", "lost", "open", "open", "won"],
                              "days_to_outcome": [10.0, 80.0, 5.0, np.nan, np.nan, 3.0],
                              "days_observed": [100.0, 100.0, 100.0, 100.0, 20.0, 20.0]})
    rows, won = followed(snapshots, 60)
    assert len(rows) == 4  # the rows seen for 20 days are not judged: open or won, their outcome may yet change
    assert won.tolist() == [True, False, False, False]  # won after the horizon, lost, still open: not won within it


def test_the_judging_horizon_follows_the_sales_cycle_within_half_the_holdout():
    assert judging_horizon(120.0, 400.0) == 120.0
    assert judging_horizon(300.0, 400.0) == 200.0  # half the holdout followed that long
    assert judging_horizon(5.0, 400.0) == 30.0 and judging_horizon(float("nan"), 400.0) == 30.0


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


def test_a_missing_amount_is_read_as_in_fitting_the_median():
    """Fitting fills unknown amounts with the window's median log amount; scoring reads one so too (not as 0, the
    log of a one-unit deal, which a size effect would make the smallest deal of all)."""
    rng = np.random.default_rng(2)
    raw = rng.uniform(0.05, 0.9, 2000)
    log_amount = rng.normal(10, 1, 2000)
    won = (rng.random(2000) < 1 / (1 + np.exp(-(np.log(raw / (1 - raw)) - 0.8 * (log_amount - 10))))).astype(float)
    log_amount[::10] = np.nan
    calibrator = Calibrator.fit_each(raw, log_amount, won)["platt_amount"]
    assert calibrator.missing_amount == pytest.approx(np.nanmedian(log_amount)) and calibrator.coef[1] < -0.4
    np.testing.assert_allclose(calibrator(raw[:3], np.full(3, np.nan)),
                               calibrator(raw[:3], np.full(3, calibrator.missing_amount)))


def test_a_chance_of_winning_counts_as_a_weighted_win_and_loss():
    rng = np.random.default_rng(2)
    raw = rng.uniform(0.05, 0.9, 2000)
    won = (rng.random(2000) < raw).astype(float)  # closed deals, well calibrated
    soft = np.concatenate([won, np.full(1000, 0.02)])  # and deals still open, each with a 2 % chance left
    raw_all = np.concatenate([raw, rng.uniform(0.05, 0.9, 1000)])
    for kind, calibrator in Calibrator.fit_each(raw_all, None, soft).items():
        if kind != "none":  # every map learns the lower mean: (sum of wins + 1000 * 0.02) / 3000
            assert calibrator(raw_all).mean() == pytest.approx((won.sum() + 20) / 3000, abs=0.01), kind
    # a chance of 0.5 is half a win and half a loss: as the same rows once won and once lost, every row twice
    as_rows = Calibrator.fit("platt", np.r_[raw, raw, raw[:500], raw[:500]], np.zeros(5000),
                             np.r_[won, won, np.ones(500), np.zeros(500)])
    halves = Calibrator.fit("platt", np.r_[raw, raw[:500]], np.zeros(2500), np.r_[won, np.full(500, 0.5)])
    np.testing.assert_allclose(halves(raw), as_rows(raw), atol=1e-3)
    with pytest.raises(ValueError, match="chance of winning"):
        Calibrator.fit_each(raw, None, np.where(won > 0, 1.5, 0.0))


def test_a_blend_moves_the_log_odds_toward_the_prior_by_its_weight():
    p, prior = np.array([0.1, 0.5, 0.9]), np.array([0.5, 0.2, 0.5])
    np.testing.assert_allclose(blend(p, prior, 1.0), p)
    np.testing.assert_allclose(blend(p, prior, 0.0), prior)
    half = blend(p, prior, 0.5)
    logit = np.log(half / (1 - half))
    np.testing.assert_allclose(logit, 0.5 * np.log(p / (1 - p)) + 0.5 * np.log(prior / (1 - prior)))


class _ByStaleness:
    """A candidate giving one P(win) to deals fresh in their stage and another to stale ones, every win landing
    within any horizon (as the win model, the timing of the others)."""

    def __init__(self, fresh: float, stale: float) -> None:
        self.fresh, self.stale = fresh, stale

    def predict_proba(self, rows: pd.DataFrame) -> np.ndarray:
        return np.where(rows["days_in_stage"].to_numpy() > 100, self.stale, self.fresh)

    def explain(self, rows: pd.DataFrame, horizons: np.ndarray, contributions: bool = True) -> Explanation:
        p = self.predict_proba(rows)
        return Explanation(p, np.repeat(p[:, None], len(horizons), axis=1), np.full(len(p), 10.0))


def test_judged_on_followed_deals_a_model_of_deals_that_close_no_longer_wins():
    """Stale deals mostly never close; the few that do are won as often as fresh ones. On known outcomes a model
    giving every deal the odds of one that closes is best; followed for the horizon, the one giving stale deals
    their real, small chance is, and it serves. A candidate better both ways serves."""
    fresh = [("won", 20.0)] * 80 + [("lost", 10.0)] * 120
    stale = [("won", 30.0)] * 8 + [("lost", 40.0)] * 12 + [("open", np.nan)] * 180
    snapshots = pd.DataFrame(fresh + stale, columns=["outcome", "days_to_outcome"]).assign(
        days_in_stage=[10.0] * len(fresh) + [300.0] * len(stale), stage_index=0, days_observed=120.0)
    candidates = {"model": _ByStaleness(0.4, 0.04), "odoo_naive_bayes": _ByStaleness(0.4, 0.4),
                  "logistic_regression": _ByStaleness(0.6, 0.6)}
    known = snapshots[snapshots["outcome"] != "open"]
    y = known["outcome"].eq("won").to_numpy()
    on_known = {name: float(log_loss(y, model.predict_proba(known), labels=[0, 1])) for name, model in candidates.items()}
    assert choose_served(on_known).name == "odoo_naive_bayes"  # judged on known outcomes alone
    dormancy = Dormancy()
    dormancy.stages_, dormancy.stays_ = ["Engaging"], [StageStays(np.zeros(0), np.zeros(0), 0.0, np.nan, 0.0, 1.0)]
    rows, won = followed(snapshots, 60.0)
    losses = horizon_losses(candidates, dormancy, rows, won, 60.0)  # type: ignore[arg-type]  # duck-typed candidates
    assert losses is not None and min(losses, key=losses.__getitem__) == "model"
    assert choose_served(on_known, losses, 60.0).name == "model"
    candidates["model"] = _ByStaleness(0.6, 0.6)  # now worse both ways than either other candidate
    candidates["logistic_regression"] = _ByStaleness(0.4, 0.04)
    on_known = {name: float(log_loss(y, model.predict_proba(known), labels=[0, 1])) for name, model in candidates.items()}
    losses = horizon_losses(candidates, dormancy, rows, won, 60.0)  # type: ignore[arg-type]
    assert losses is not None and choose_served(on_known, losses, 60.0).name == "logistic_regression"
    stale_only = rows["days_in_stage"].to_numpy() > 100  # 8 wins: too few to judge by
    assert horizon_losses(candidates, dormancy, rows[stale_only], won[stale_only], 60.0) is None  # type: ignore[arg-type]
