"""Deals that never close: the chance a deal open at its age ever closes, from when deals closed."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.exceptions import NotFittedError

from scoring.models.base import Explanation
from scoring.models.dormancy import Dormancy, WithDormancy

END = pd.Timestamp("2025-06-30")


def _deals(n: int, span_days: float, never: float, close_days: tuple[float, float] | float, seed: int = 0
           ) -> pd.DataFrame:
    """Deals created over ``span_days`` before END; a share ``never`` is never closed, the others close
    uniformly within ``close_days`` (low, high) after creation, or exponentially with that mean."""
    rng = np.random.default_rng(seed)
    created = END - pd.to_timedelta(rng.uniform(0, span_days, n), unit="D")
    days = (rng.uniform(*close_days, n) if isinstance(close_days, tuple) else rng.exponential(close_days, n))
    closed = created + pd.to_timedelta(days, unit="D")
    closes = (rng.uniform(size=n) >= never) & (closed <= END)
    return pd.DataFrame({"created_at": created, "closed_at": closed.where(closes)})


def test_a_history_whose_deals_all_close_changes_nothing():
    dormancy = Dormancy().fit(_deals(3000, 730, 0.0, (5, 60)), END)
    assert not dormancy.found and dormancy.summary()["never_close_share"] == 0
    np.testing.assert_array_equal(dormancy.closing_share(np.array([0.0, 30.0, 400.0])), 1.0)


def test_deals_left_open_for_good_are_found_and_old_ones_never_close():
    dormancy = Dormancy().fit(_deals(3000, 730, 0.25, (5, 60)), END)
    assert dormancy.found and dormancy.longest_close_days_ <= 60
    assert dormancy.summary()["never_close_share"] == pytest.approx(0.25, abs=0.03)
    share = dormancy.closing_share(np.array([0.0, 30.0, 61.0, 400.0, np.nan]))
    assert share[0] == pytest.approx(0.75, abs=0.03)  # a new deal: closes unless it is one of the quarter
    assert 0 < share[1] < share[0]  # half its closing time gone, the never-closing share of the rest is larger
    np.testing.assert_array_equal(share[2:4], 0.0)  # older than any deal that ever closed
    assert share[4] == 1.0  # no age: nothing said


def test_a_slow_business_watched_briefly_is_not_taken_for_dormant():
    """Closes take 200 days on average but the history is 120 days long: the deals still open have not been
    watched past the last close, so the flat end of the curve says nothing about deals that never close."""
    dormancy = Dormancy().fit(_deals(3000, 120, 0.0, 200.0), END)
    assert dormancy.never_share_ > 0.3  # the curve's end is far from 0 ...
    assert not dormancy.found  # ... but no deal was watched long past the last close
    np.testing.assert_array_equal(dormancy.closing_share(np.array([10.0, 119.0])), 1.0)


def test_the_evidence_grows_with_the_time_watched_past_the_last_close():
    """Closes come within 60 days; the never-closing quarter watched 2, 5, 10 and 60 days past that."""
    fitted = [Dormancy().fit(_deals(3000, span, 0.25, (5, 60)), END) for span in (62, 65, 70, 120)]
    expected = [d.expected_closes_ for d in fitted]
    assert expected == sorted(expected)
    assert not fitted[0].found  # watched 2 days: what a history without them shows too
    assert 0 < fitted[1].weight_ < 1 and fitted[2].weight_ < 1e-4 and fitted[3].weight_ < 1e-100


def test_with_dormancy_scales_p_win_and_its_timing_and_keeps_the_rest():
    class Half:
        name = "half"

        def predict_proba(self, rows):
            return np.full(len(rows["age_days"]), 0.5)

        def win_by(self, rows, horizons):
            p = self.predict_proba(rows)
            return p, np.outer(p, np.asarray(horizons) / 100)

        def explain(self, rows, horizons, contributions=True):
            p, by = self.win_by(rows, horizons)
            return Explanation(p, by, np.full(len(p), 20.0), np.ones((len(p), 2)), ("a", "b"))

    dormancy = Dormancy().fit(_deals(3000, 730, 0.25, (5, 60)), END)
    rows = {"age_days": np.array([0.0, 30.0, 400.0])}
    served = WithDormancy(Half(), dormancy)
    share = dormancy.closing_share(rows["age_days"])
    np.testing.assert_allclose(served.predict_proba(rows), 0.5 * share)
    p, by = served.win_by(rows, np.array([30.0, 90.0]))
    np.testing.assert_allclose(by, np.outer(0.5 * share, [0.3, 0.9]))
    explained = served.explain(rows, np.array([30.0, 90.0]))
    np.testing.assert_allclose(explained.p, p) and np.testing.assert_allclose(explained.by, by)
    assert explained.names == ("a", "b") and explained.days_to_win.tolist() == [20.0] * 3


def test_dormancy_must_be_fitted_and_checks_its_parameter():
    with pytest.raises(NotFittedError):
        Dormancy().closing_share(np.array([1.0]))
    with pytest.raises(ValueError, match="late_share"):
        Dormancy(late_share=0).fit(_deals(100, 100, 0.0, (5, 60)), END)
