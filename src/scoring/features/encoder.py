"""The fitted feature encoder: snapshot rows -> a float matrix, the same in training and serving.

Numeric columns pass through (amount on a log scale); categorical columns become integer codes
learned at fit time (values seen fewer than ``min_count`` times share one "rare" code, which values
never seen also get; with no rare values in training, unseen values are missing). LightGBM reads the codes as
categories; a linear model one-hot encodes them.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeAlias

import numpy as np
import pandas as pd
from sklearn.exceptions import NotFittedError

from scoring.data.tables import is_missing

#: The state columns used as model inputs (see scoring.features.snapshots); stage moves are not, since a scored
#: open deal given without its history does not have them.
STATE_INPUTS = ("stage_index", "days_in_stage", "age_days", "log_amount")
RARE = "__rare__"
#: Columns this short are factorized in plain Python (pandas' per-call cost dominates there).
SMALL = 32
#: Snapshot rows: a DataFrame, or (on the serving path) a mapping of column name -> array.
Rows: TypeAlias = pd.DataFrame | Mapping[str, np.ndarray]


def entered_amounts(amount: np.ndarray | pd.Series) -> np.ndarray:
    """Amounts as a model linear in their log reads them (logistic regression, the calibration): 0 is none entered
    (the default of Bitrix24, Odoo and Pipedrive), missing as a blank one. Read as the smallest deal, far from every
    other, a few percent of them bent the line: a demo company's Bitrix24 export valued its large open deals' wins
    far above the truth (README, "Bitrix24"). Trees keep a 0 (its log) apart from every amount entered, learning
    what it says on its own: on the public sets with zeros, better so than read as unknown."""
    values = np.asarray(amount, dtype=float)
    return np.where(values > 0, values, np.nan)


class FeatureEncoder:
    """Encode snapshot rows; ``fit`` learns the category codes, ``transform`` applies them."""

    def __init__(self, features: dict[str, str], min_count: int = 5) -> None:
        self.features = features
        self.min_count = min_count

    def fit(self, rows: pd.DataFrame) -> FeatureEncoder:
        self.numeric_ = [n for n, kind in self.features.items() if kind == "numeric"]
        self.categorical_ = [n for n, kind in self.features.items() if kind == "categorical"]
        self.codes_: dict[str, dict[str, int]] = {}
        for name in self.categorical_:
            counts = rows[name].value_counts()
            common = sorted(str(v) for v in counts.index[counts >= self.min_count])
            codes = {v: i for i, v in enumerate(common)}
            if (counts < self.min_count).any():
                codes[RARE] = len(codes)
            self.codes_[name] = codes
        self.names_ = [*STATE_INPUTS, *self.numeric_, *self.categorical_]
        self.categorical_indices_ = list(range(len(STATE_INPUTS) + len(self.numeric_), len(self.names_)))
        return self

    def transform(self, rows: Rows) -> np.ndarray:
        """The float matrix of ``rows``: a DataFrame or a mapping of column name -> array, one row per deal."""
        if not hasattr(self, "codes_"):
            raise NotFittedError("FeatureEncoder is not fitted; call fit first")
        n = len(np.asarray(rows["stage_index"]))
        out = np.empty((n, len(self.names_)), dtype=np.float64)
        out[:, 0] = np.asarray(rows["stage_index"], dtype=float)
        out[:, 1] = np.asarray(rows["days_in_stage"], dtype=float)
        out[:, 2] = np.asarray(rows["age_days"], dtype=float)
        out[:, 3] = np.log1p(np.maximum(np.asarray(rows["amount"], dtype=float), 0.0))
        col = len(STATE_INPUTS)
        for name in self.numeric_:
            out[:, col] = _numbers(np.asarray(rows[name])) if name in rows else np.nan
            col += 1
        for name in self.categorical_:
            if name in rows:
                codes = self.codes_[name]
                rare = codes.get(RARE, np.nan)
                inverse, uniques = _factorize(rows[name])
                table = np.array([*(codes.get(str(v), rare) for v in uniques), np.nan], dtype=float)
                out[:, col] = table[inverse]  # inverse -1 (missing) picks the trailing NaN
            else:
                out[:, col] = np.nan
            col += 1
        return out

    def unknown_values(self, rows: Rows) -> dict[str, list[str]]:
        """Per categorical feature, the values in ``rows`` never seen in training (scored as missing/rare)."""
        out = {}
        for name in self.categorical_:
            if name in rows:
                seen = self.codes_[name]
                new = sorted({str(v) for v in _distinct(rows[name])} - seen.keys())
                if new:
                    out[name] = new
        return out


def _factorize(values: Any) -> tuple[np.ndarray, np.ndarray]:
    """(code of each value, -1 where missing; the distinct values) of a column, as ``pd.factorize`` gives them."""
    if not isinstance(values, pd.Series) and len(values) <= SMALL:  # a request's few deals: spare pandas' overhead
        index: dict[object, int] = {}
        codes = [-1 if is_missing(v) else index.setdefault(v, len(index)) for v in values]
        return np.array(codes, dtype=np.intp), np.array(list(index), dtype=object)
    codes, uniques = pd.factorize(values if isinstance(values, pd.Series) else np.asarray(values, dtype=object))
    return codes, np.asarray(uniques, dtype=object)


def _distinct(values: object) -> list[object]:
    """The distinct values of a column, missing ones left out (by a Python set: for a request's column of a
    thousand values several times cheaper than pandas)."""
    if isinstance(values, pd.Series):
        return values.dropna().unique().tolist()
    return [v for v in set(values) if not is_missing(v)]  # type: ignore[call-overload]


def _numbers(values: np.ndarray) -> np.ndarray:
    """Values as floats; text that is not a number becomes NaN."""
    if values.dtype.kind in "fiub":
        return values.astype(float)
    return np.asarray(pd.to_numeric(pd.Series(values, dtype=object), errors="coerce"), dtype=float)
