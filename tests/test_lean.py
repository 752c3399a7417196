"""The fast scoring path gives the same numbers as the plain one: compiled booster, small-column encoding."""
from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from scoring import winmodel
from scoring.bundle import ModelBundle
from scoring.contract import load_open_deals
from scoring.features import _factorize
from tests.conftest import END


def test_the_compiled_booster_gives_the_same_probabilities(bundle: ModelBundle, company: Path, tmp_path: Path):
    plain = ModelBundle.load(bundle.save(tmp_path / "plain.joblib"))
    fast = ModelBundle.load(tmp_path / "plain.joblib")
    assert fast.compile(tmp_path / "cache") is None
    assert any(tmp_path.joinpath("cache").glob("*.o"))  # cached: the next load does not compile again
    deals = load_open_deals(company / "open_deals.csv", plain.config)
    expected, _ = plain.score(deals, END)
    got, _ = fast.score(deals, END)
    for column in ("win_probability", "win_probability_90d", "win_probability_this_period"):
        np.testing.assert_allclose(got[column], expected[column], rtol=0, atol=1e-9)
    assert (got["expected_close_date"] == expected["expected_close_date"]).mean() > 0.99  # rounding at .5 days aside
    rows, _ = plain.state(deals, pd.Timestamp(END))
    np.testing.assert_allclose(fast.model.hazards(rows), plain.model.hazards(rows), rtol=0, atol=1e-12)
    assert not hasattr(pickle.loads(pickle.dumps(fast.model)), "compiled_")  # native code is never pickled


def test_large_predictions_compile_a_booster_for_the_call(bundle: ModelBundle, company: Path, tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch):
    """Training predicts large windows with boosters it then drops: compiled for the call, same hazards."""
    model = ModelBundle.load(bundle.save(tmp_path / "plain.joblib")).model
    rows, _ = bundle.state(load_open_deals(company / "open_deals.csv", bundle.config), pd.Timestamp(END))
    plain = model.hazards(rows)
    compiled = []
    original = winmodel.compile_booster
    monkeypatch.setattr(winmodel, "compile_booster", lambda *a: compiled.append(a) or original(*a))
    monkeypatch.setattr(winmodel, "COMPILE_ABOVE", 100)
    np.testing.assert_allclose(model.hazards(rows), plain, rtol=0, atol=1e-12)
    assert len(compiled) == 1 and not Path(compiled[0][1]).exists()  # compiled in a folder that is gone
    assert not hasattr(model, "compiled_")  # nothing kept


def test_scoring_one_deal_equals_scoring_it_among_many(bundle: ModelBundle, company: Path):
    deals = load_open_deals(company / "open_deals.csv", bundle.config)
    many, _ = bundle.score(deals, END)
    for i in (0, 7, len(deals) - 1):
        one, _ = bundle.score(deals.iloc[[i]].reset_index(drop=True), END)
        assert one["win_probability"].iloc[0] == many["win_probability"].iloc[i]
        assert one["factors_up"].iloc[0] == many["factors_up"].iloc[i]


values = st.one_of(st.none(), st.just(float("nan")), st.sampled_from(["a", "b", "SMB", ""]), st.integers(0, 3))


@given(st.lists(values, max_size=40))
def test_small_columns_factorize_as_pandas_does(items: list[object]):
    column = np.array(items, dtype=object)
    codes, uniques = _factorize(column)
    expected_codes, expected_uniques = pd.factorize(column)
    assert codes.tolist() == expected_codes.tolist()
    assert uniques.tolist() == list(expected_uniques)
