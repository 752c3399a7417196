"""Deals that never close: the chance a deal in its stage for so long ever leaves it, from the stays in it."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.exceptions import NotFittedError

from scoring.data.config import PipelineConfig
from scoring.data.contract import DealHistory, load_deal_history
from scoring.data.demo import DemoCompany
from scoring.models.base import Explanation
from scoring.models.dormancy import Dormancy, WithDormancy

END = pd.Timestamp("2025-06-30")


def _deals(n: int, span_days: float, never: float, close_days: tuple[float, float] | float, seed: int = 0
           ) -> DealHistory:
    """One stage; deals created over ``span_days`` before END; a share ``never`` is never closed, the others close
    uniformly within ``close_days`` (low, high) after creation, or exponentially with that mean."""
    rng = np.random.default_rng(seed)
    created = END - pd.to_timedelta(rng.uniform(0, span_days, n), unit="D")
    days = (rng.uniform(*close_days, n) if isinstance(close_days, tuple) else rng.exponential(close_days, n))
    closed = created + pd.to_timedelta(days, unit="D")
    closes = (rng.uniform(size=n) >= never) & (closed <= END)
    deals = pd.DataFrame({"deal_id": [f"D{i}" for i in range(n)], "created_at": created, "amount": 1000.0,
                          "stage": "Engaging", "status": np.where(closes, rng.choice(["won", "lost"], n), "open"),
                          "closed_at": closed.where(closes), "stage_entered_at": created})
    return load_deal_history(deals, config=PipelineConfig(stages=("Engaging",), fixed_probabilities={"Engaging": 0.5}))


def _share(dormancy: Dormancy, days: list[float]) -> np.ndarray:
    return dormancy.leaving_share(np.zeros(len(days), dtype=int), np.array(days, dtype=float))


def test_a_history_whose_deals_all_close_changes_nothing():
    dormancy = Dormancy().fit(_deals(3000, 730, 0.0, (5, 60)), END)
    assert not dormancy.found and dormancy.summary() == {"found": False, "stages": {}}
    np.testing.assert_array_equal(_share(dormancy, [0.0, 30.0, 400.0]), 1.0)


def test_deals_left_open_for_good_are_found_and_old_ones_never_close():
    dormancy = Dormancy().fit(_deals(3000, 730, 0.25, (5, 60)), END)
    found = dormancy.summary()["stages"]["Engaging"]
    assert dormancy.found and found["longest_exit_days"] <= 60
    assert found["never_leave_share"] == pytest.approx(0.25, abs=0.03)
    share = _share(dormancy, [0.0, 30.0, 61.0, 400.0, np.nan])
    assert share[0] == pytest.approx(0.75, abs=0.03)  # a new deal: closes unless it is one of the quarter
    assert 0 < share[1] < share[0]  # half its closing time gone, the never-closing share of the rest is larger
    np.testing.assert_array_equal(share[2:4], 0.0)  # older than any deal that ever closed
    assert share[4] == 1.0  # no age: nothing said


def test_a_slow_business_watched_briefly_is_not_taken_for_dormant():
    """Closes take 200 days on average but the history is 120 days long: the deals still open have not been
    watched past the last close, so the flat end of the curve says nothing about deals that never close."""
    dormancy = Dormancy().fit(_deals(3000, 120, 0.0, 200.0), END)
    assert dormancy.stays_[0].never_share > 0.3  # the curve's end is far from 0 ...
    assert not dormancy.found  # ... but no deal was watched long past the last close
    np.testing.assert_array_equal(_share(dormancy, [10.0, 119.0]), 1.0)


def test_the_evidence_grows_with_the_time_watched_past_the_last_close():
    """Closes come within 60 days; the never-closing quarter watched 2, 5, 10 and 60 days past that."""
    stays = [Dormancy().fit(_deals(3000, span, 0.25, (5, 60)), END).stays_[0] for span in (62, 65, 70, 120)]
    expected = [s.expected_exits for s in stays]
    assert expected == sorted(expected)
    assert stays[0].weight == 1.0  # watched 2 days: what a history without them shows too
    assert 0 < stays[1].weight < 1 and stays[2].weight < 1e-4 and stays[3].weight < 1e-100


def test_only_the_stage_deals_are_left_in_is_found_and_deals_that_moved_on_keep_their_chance():
    """The demo company's unworked deals sit in their first stage (the second for direct entries): a deal that
    moved on is being worked, however old."""
    demo = DemoCompany(dormant_share=0.2).generate(6000, seed=4, end=END)
    dormancy = Dormancy().fit(load_deal_history(demo.deals, demo.history), END)
    assert set(dormancy.summary()["stages"]) <= set(demo.company.stages[:2]) and dormancy.found
    later = np.arange(2, len(demo.company.stages))
    np.testing.assert_array_equal(dormancy.leaving_share(later, np.full(len(later), 500.0)), 1.0)
    first = dormancy.leaving_share(np.array([0, 0]), np.array([1.0, 500.0]))
    assert 0.5 < first[0] < 1 and first[1] == 0.0


def test_with_dormancy_scales_p_win_and_its_timing_and_keeps_the_rest():
    class Half:
        name = "half"

        def predict_proba(self, rows):
            return np.full(len(rows["days_in_stage"]), 0.5)

        def win_by(self, rows, horizons):
            p = self.predict_proba(rows)
            return p, np.outer(p, np.asarray(horizons) / 100)

        def explain(self, rows, horizons, contributions=True):
            p, by = self.win_by(rows, horizons)
            return Explanation(p, by, np.full(len(p), 20.0), np.ones((len(p), 2)), ("a", "b"))

    dormancy = Dormancy().fit(_deals(3000, 730, 0.25, (5, 60)), END)
    rows = {"stage_index": np.zeros(3, dtype=int), "days_in_stage": np.array([0.0, 30.0, 400.0])}
    served = WithDormancy(Half(), dormancy)
    share = _share(dormancy, [0.0, 30.0, 400.0])
    np.testing.assert_allclose(served.predict_proba(rows), 0.5 * share)
    p, by = served.win_by(rows, np.array([30.0, 90.0]))
    np.testing.assert_allclose(by, np.outer(0.5 * share, [0.3, 0.9]))
    explained = served.explain(rows, np.array([30.0, 90.0]))
    np.testing.assert_allclose(explained.p, p) and np.testing.assert_allclose(explained.by, by)
    assert explained.names == ("a", "b") and explained.days_to_win.tolist() == [20.0] * 3


def test_dormancy_must_be_fitted_and_checks_its_parameter():
    with pytest.raises(NotFittedError):
        Dormancy().leaving_share(np.array([0]), np.array([1.0]))
    with pytest.raises(ValueError, match="late_share"):
        Dormancy(late_share=0).fit(_deals(100, 100, 0.0, (5, 60)), END)
