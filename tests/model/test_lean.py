"""The fast scoring path gives the same numbers as the plain one: compiled booster, small-column encoding."""
from __future__ import annotations

import pickle
import re
from pathlib import Path

import lightgbm as lgb
import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from scoring.bundle import ModelBundle
from scoring.data.contract import load_open_deals
from scoring.features.encoder import FeatureEncoder, _factorize
from scoring.models import win as winmodel
from scoring.models.compiled import THREADS_FROM, CompiledHazards, split_model_text
from scoring.scores import deal_state, score_deals
from tests.conftest import END


def test_the_compiled_booster_gives_the_same_probabilities(bundle: ModelBundle, company: Path, tmp_path: Path):
    plain = ModelBundle.load(bundle.save(tmp_path / "plain.joblib"))
    fast = ModelBundle.load(tmp_path / "plain.joblib")
    assert fast.compile(tmp_path / "cache") is None
    assert any(tmp_path.joinpath("cache").glob("*.o"))  # cached: the next load does not compile again
    deals = load_open_deals(company / "open_deals.csv", plain.config)
    expected, _ = score_deals(plain, deals, END)
    got, _ = score_deals(fast, deals, END)
    for column in ("win_probability", "win_probability_90d", "win_probability_this_period"):
        np.testing.assert_allclose(got[column], expected[column], rtol=0, atol=1e-9)
    assert (got["expected_close_date"] == expected["expected_close_date"]).mean() > 0.99  # rounding at .5 days aside
    rows, _ = deal_state(plain, deals, pd.Timestamp(END))
    np.testing.assert_allclose(fast.model.hazards(rows), plain.model.hazards(rows), rtol=0, atol=1e-12)
    assert not hasattr(pickle.loads(pickle.dumps(fast.model)), "compiled_")  # native code is never pickled
    assert (got["factors_up"] == expected["factors_up"]).all() and (got["factors_down"] == expected["factors_down"]).all()


def test_contributions_on_the_kept_thread_are_the_same(bundle: ModelBundle, company: Path, tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch):
    """explain() of many rows computes the contributions on a kept thread while this one predicts: the same
    numbers as one after the other, compiled or not."""
    fast = ModelBundle.load(bundle.save(tmp_path / "bundle.joblib"))
    fast.compile(tmp_path / "cache")
    rows, _ = deal_state(bundle, load_open_deals(company / "open_deals.csv", bundle.config), pd.Timestamp(END))
    assert len(rows) >= winmodel.CONCURRENT_FROM
    horizons = np.array([90.0, 30.0])
    together = [model.served_model.explain(rows, horizons) for model in (bundle, fast)]
    monkeypatch.setattr(winmodel, "CONCURRENT_FROM", len(rows) + 1)
    for model, explained in zip((bundle, fast), together):
        one_by_one = model.served_model.explain(rows, horizons)
        for got, expected in zip(explained, one_by_one):
            if isinstance(got, np.ndarray):
                np.testing.assert_allclose(got, expected, rtol=0, atol=1e-12)
        assert explained.names == one_by_one.names
    assert hasattr(bundle.model, "_pool") and not hasattr(pickle.loads(pickle.dumps(bundle.model)), "_pool")


def _hazard_booster(reads_interval: bool) -> lgb.Booster:
    """A small 3-class booster over two features and the interval (last), which matters to the classes;
    unless ``reads_interval``, it is constant in training and no tree splits on it."""
    rng = np.random.default_rng(1)
    n, k = 3000, 5
    x = np.column_stack([rng.normal(size=n), rng.integers(0, 4, n), rng.integers(0, k if reads_interval else 1, n)])
    x[rng.random(n) < 0.1, 0] = np.nan
    score = x[:, 1] + np.nan_to_num(x[:, 0]) + 0.3 * x[:, 2] + rng.normal(size=n)
    label = np.digitize(score, np.quantile(score, [0.4, 0.7]))
    data = lgb.Dataset(x, label=label, categorical_feature=[1])
    return lgb.train({"objective": "multiclass", "num_class": 3, "num_leaves": 5, "verbosity": -1, "seed": 0},
                     data, num_boost_round=30)


def _splits_on(node: dict, feature: int) -> bool:
    return "split_feature" in node and (node["split_feature"] == feature or _splits_on(node["left_child"], feature)
                                        or _splits_on(node["right_child"], feature))


@pytest.mark.parametrize("reads_interval", [False, True])
def test_split_compiled_booster_gives_lightgbm_probabilities(reads_interval: bool, tmp_path: Path):
    """Trees that ignore the interval are evaluated once per deal: the same probabilities, few rows or many."""
    booster = _hazard_booster(reads_interval)
    per_deal, per_interval = split_model_text(booster.model_to_string(), (2,))
    assert [len(re.findall(r"^Tree=\d+$", text, re.M)) for text in (per_deal, per_interval)] == [90, 90]  # every place kept
    reading = sum(_splits_on(tree["tree_structure"], 2) for tree in booster.dump_model()["tree_info"])
    assert (0 < reading < 90) if reads_interval else reading == 0
    stumps = [len(re.findall(r"^num_leaves=1$", text, re.M)) for text in (per_deal, per_interval)]
    assert stumps == [reading, 90 - reading]  # each tree in one part, a leaf of 0 in the other
    compiled = CompiledHazards.compile(booster, (2,), tmp_path)
    assert compiled.predict(np.empty((0, 3)), 5).shape == (0, 5, 3)
    rng = np.random.default_rng(2)
    for deals in (1, 7, THREADS_FROM // 5 + 3):  # one thread, and the pool (an odd number of deals)
        x = np.column_stack([rng.normal(size=deals), rng.integers(-1, 6, deals)]).astype(float)
        x[::3, 0] = np.nan
        stacked = np.column_stack([np.repeat(x, 5, axis=0), np.tile(np.arange(5.0), deals)])
        expected = booster.predict(stacked).reshape(deals, 5, 3)
        np.testing.assert_allclose(compiled.predict(stacked, 5), expected, rtol=0, atol=1e-12)
    raws = [lgb.Booster(model_str=text).predict(stacked, raw_score=True) for text in (per_deal, per_interval)]
    np.testing.assert_allclose(raws[0] + raws[1], booster.predict(stacked, raw_score=True), rtol=0, atol=1e-12)
    assert (raws[0].reshape(-1, 5, 3) == raws[0][::5, None, :]).all()  # the per-deal part ignores the interval


def test_large_predictions_compile_a_booster_for_the_call(bundle: ModelBundle, company: Path, tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch):
    """Training predicts large windows with boosters it then drops: compiled for the call, same hazards."""
    model = ModelBundle.load(bundle.save(tmp_path / "plain.joblib")).model
    rows, _ = deal_state(bundle, load_open_deals(company / "open_deals.csv", bundle.config), pd.Timestamp(END))
    plain = model.hazards(rows)
    compiled = []
    original = winmodel.CompiledHazards.compile
    monkeypatch.setattr(winmodel.CompiledHazards, "compile", lambda *a: compiled.append(a) or original(*a))
    monkeypatch.setattr(winmodel, "COMPILE_ABOVE", 100)
    np.testing.assert_allclose(model.hazards(rows), plain, rtol=0, atol=1e-12)
    assert len(compiled) == 1 and not Path(compiled[0][2]).exists()  # compiled in a folder that is gone
    assert not hasattr(model, "compiled_")  # nothing kept


def test_scoring_one_deal_equals_scoring_it_among_many(bundle: ModelBundle, company: Path):
    deals = load_open_deals(company / "open_deals.csv", bundle.config)
    many, _ = score_deals(bundle, deals, END)
    for i in (0, 7, len(deals) - 1):
        one, _ = score_deals(bundle, deals.iloc[[i]].reset_index(drop=True), END)
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


def test_values_never_seen_in_training_are_named_for_arrays_and_frames():
    encoder = FeatureEncoder({"source": "categorical"}, min_count=1).fit(pd.DataFrame({"source": ["web", "phone", "web"]}))
    column = np.array(["web", "fax", None, np.nan, "fax", 7, pd.NA], dtype=object)
    assert encoder.unknown_values({"source": column}) == {"source": ["7", "fax"]}
    assert encoder.unknown_values(pd.DataFrame({"source": column})) == {"source": ["7", "fax"]}
    assert encoder.unknown_values({"source": np.array(["web", None, "phone"], dtype=object)}) == {}
