"""TreeSHAP by lookup gives LightGBM's own pred_contrib numbers: splits, missing values, categories, edges."""
from __future__ import annotations

import lightgbm as lgb
import numpy as np
import pytest

from scoring.models.treeshap import ContributionTable


def _data(n: int = 3000, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Two numeric features (with NaN), a categorical one of 12 codes (with NaN), a noise feature; 3 classes."""
    rng = np.random.default_rng(seed)
    x = np.column_stack([rng.normal(size=n), rng.exponential(size=n), rng.integers(0, 12, n).astype(float),
                         rng.normal(size=n)])
    logits = np.column_stack([np.zeros(n), 1.5 * x[:, 0] + np.isin(x[:, 2], [1, 4, 7]),
                              np.where(x[:, 1] > 1, 1.0, -1.0) - np.isin(x[:, 2], [2, 3])])
    y = np.array([rng.choice(3, p=np.exp(l) / np.exp(l).sum()) for l in logits])
    x[rng.random(n) < 0.1, 0] = np.nan
    x[rng.random(n) < 0.1, 2] = np.nan
    return x, y


def _booster(x: np.ndarray, y: np.ndarray, **params: object) -> lgb.Booster:
    base = {"objective": "multiclass", "num_class": 3, "num_leaves": 7, "min_child_samples": 20, "verbosity": -1,
            "seed": 0, "num_threads": 1, "cat_smooth": 1, "min_data_per_group": 5}
    data = lgb.Dataset(x, label=y, categorical_feature=[2], free_raw_data=False)
    return lgb.train({**base, **params}, data, num_boost_round=30)


def _lightgbm(booster: lgb.Booster, x: np.ndarray, weights: dict[int, float]) -> np.ndarray:
    """LightGBM's own contributions, weighted over classes, without the bias columns."""
    width = x.shape[1] + 1
    raw = booster.predict(x, pred_contrib=True).reshape(len(x), -1, width)
    return sum(w * raw[:, c, :-1] for c, w in weights.items())


def _awkward_rows(booster: lgb.Booster, x: np.ndarray, seed: int = 1) -> np.ndarray:
    """Rows with values exactly at split thresholds, NaN, negative and unseen category codes, fractions, zeros."""
    rng = np.random.default_rng(seed)
    rows = x[rng.integers(0, len(x), 400)].copy()
    thresholds = [(int(n["split_feature"]), float(n["threshold"])) for n in _nodes(booster) if n["decision_type"] == "<="]
    for i in range(0, 200):
        feature, threshold = thresholds[rng.integers(len(thresholds))]
        rows[i, feature] = threshold
    rows[200:240, 0] = np.nan
    rows[240:280, 2] = rng.choice([-1.0, -0.5, 0.5, 3.9, 12.0, 40.0, np.nan], 40)
    rows[280:300] = 0.0
    rows[300:320] = np.nan
    return rows


def _nodes(booster: lgb.Booster) -> list[dict]:
    out = []

    def visit(node: dict) -> None:
        if "split_index" in node:
            out.append(node)
            visit(node["left_child"])
            visit(node["right_child"])

    for tree in booster.dump_model()["tree_info"]:
        visit(tree["tree_structure"])
    return out


@pytest.mark.parametrize("params", [{}, {"use_missing": False}, {"num_leaves": 3}])
def test_equals_lightgbm_pred_contrib(params: dict):
    x, y = _data()
    booster = _booster(x, y, **params)
    weights = {1: 1.0, 2: -1.0}
    table = ContributionTable.from_booster(booster, weights)
    assert table is not None and any(f.thresholds is None for f in table.features)  # categorical splits too
    awkward = _awkward_rows(booster, x)
    for rows in (x[:500], awkward, x[:1]):
        np.testing.assert_allclose(table(rows), _lightgbm(booster, rows, weights), rtol=0, atol=1e-10)
    one_by_one = np.vstack([table(row[None, :]) for row in awkward])  # a few rows take the plain-Python path
    np.testing.assert_allclose(one_by_one, _lightgbm(booster, awkward, weights), rtol=0, atol=1e-10)


def test_many_rows_and_one_row_at_a_time_agree():
    x, y = _data(seed=3)
    booster = _booster(x, y)
    table = ContributionTable.from_booster(booster, {0: 0.5, 1: 2.0})
    together = table(x[:100])
    one_by_one = np.vstack([table(x[i:i + 1]) for i in range(100)])
    np.testing.assert_allclose(together, one_by_one, rtol=0, atol=1e-12)


def test_a_binary_booster():
    x, y = _data(seed=5)
    data = lgb.Dataset(x, label=(y == 1).astype(float), categorical_feature=[2])
    booster = lgb.train({"objective": "binary", "num_leaves": 5, "verbosity": -1, "num_threads": 1}, data, 20)
    table = ContributionTable.from_booster(booster, {0: 1.0})
    np.testing.assert_allclose(table(x[:300]), booster.predict(x[:300], pred_contrib=True)[:, :-1], rtol=0, atol=1e-10)


def test_large_trees_or_zero_as_missing_get_no_table_and_bad_shapes_are_refused():
    x, y = _data(seed=7)
    assert ContributionTable.from_booster(_booster(x, y, num_leaves=31, min_child_samples=5), {1: 1.0}) is None
    assert ContributionTable.from_booster(_booster(x, y, zero_as_missing=True), {1: 1.0}) is None
    table = ContributionTable.from_booster(_booster(x, y), {1: 1.0})
    with pytest.raises(ValueError, match="rows of 4 features"):
        table(x[:, :3])
