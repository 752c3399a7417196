"""The baselines every model is compared with, behind the same interface as the models.

- :class:`FixedStageModel`: the configured stage percentages;
- :class:`EmpiricalStageRateModel`: the historical win rate of closed deals that reached each stage;
- :class:`OdooNaiveBayesModel`: Odoo CRM's "predictive lead scoring" (frequency tables of won/lost per
  field value and per reached stage, 0.1 added to each count, prior from the first stage);
- :class:`LogisticRegressionModel`: a logistic regression on the same snapshot features as the model.

Each keeps the models' one interface (:mod:`scoring.models.base`); their timing is the stage's.
"""
from __future__ import annotations

from numbers import Integral, Real
from typing import Any, ClassVar, Self

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, StandardScaler
from sklearn.utils._param_validation import Interval

from scoring.data.tables import is_in
from scoring.features.dataset import TrainingSet
from scoring.features.encoder import Rows
from scoring.features.snapshots import stage_events
from scoring.models.base import Explanation, Model, StageTimedMixin


class FixedStageModel(StageTimedMixin, Model):
    """P(win) = the configured fixed percentage of the deal's stage."""

    name: ClassVar[str] = "fixed"
    _fitted_attribute: ClassVar[str] = "probabilities_"
    _parameter_constraints: ClassVar[dict[str, list[Any]]] = {}

    def fit(self, training: TrainingSet) -> Self:
        self._start_fit()
        self._fit_timing(training)
        self.probabilities_ = training.config.fixed_array()
        return self

    def predict_proba(self, rows: pd.DataFrame) -> np.ndarray:
        self.check_fitted()
        return self.probabilities_[np.asarray(rows["stage_index"], dtype=int)]


def reached_by(training: TrainingSet) -> pd.DataFrame:
    """(deal_id, stage_index) for each stage each deal closed by the cutoff reached, from what was known then."""
    events = stage_events(training.data)
    closed = training.closed_deals
    events = events[is_in(events["deal_id"], closed["deal_id"]) & (events["entered_at"] <= training.cutoff).to_numpy()]
    order = training.config.stage_order
    return pd.DataFrame({"deal_id": events["deal_id"], "stage_index": events["stage"].map(order)}).drop_duplicates()


class EmpiricalStageRateModel(StageTimedMixin, Model):
    """P(win) = won / (won + lost) among deals closed by the cutoff that reached the stage."""

    name: ClassVar[str] = "empirical_stage_rate"
    _fitted_attribute: ClassVar[str] = "probabilities_"
    _parameter_constraints: ClassVar[dict[str, list[Any]]] = {}

    def fit(self, training: TrainingSet) -> Self:
        self._start_fit()
        self._fit_timing(training)
        config = training.config
        reached = reached_by(training)
        status = training.closed_deals.set_index("deal_id")["status"]
        reached = reached.assign(won=reached["deal_id"].map(status).eq("won"))
        rates = reached.groupby("stage_index")["won"].mean()
        fixed = config.fixed_array()
        self.probabilities_ = np.array([rates.get(i, fixed[i]) for i in range(len(config.stages))], dtype=float)
        return self

    def predict_proba(self, rows: pd.DataFrame) -> np.ndarray:
        self.check_fitted()
        return self.probabilities_[np.asarray(rows["stage_index"], dtype=int)]


class OdooNaiveBayesModel(StageTimedMixin, Model):
    """Odoo CRM's predictive lead scoring, faithfully.

    Counted over deals closed by the cutoff: for each categorical field value, how many were won and
    lost; for each stage, a won deal counts in every stage and a lost deal in every stage up to the
    furthest it reached. 0.1 is added to each count. The prior is the first stage's won/lost totals;
    each known field value (and the stage) multiplies in P(value | won) and P(value | lost); values never
    seen are skipped; p = S_won / (S_won + S_lost). Numeric fields are not used, as in Odoo.
    """

    name: ClassVar[str] = "odoo_naive_bayes"
    _fitted_attribute: ClassVar[str] = "fields_"
    _parameter_constraints: ClassVar[dict[str, list[Any]]] = {"smoothing": [Interval(Real, 0, None, closed="neither")]}

    def __init__(self, smoothing: float = 0.1) -> None:
        self.smoothing = smoothing

    def fit(self, training: TrainingSet) -> Self:
        self._start_fit()
        self._fit_timing(training)
        closed = training.closed_deals
        won = closed["status"].eq("won").to_numpy()
        n_stages = len(training.config.stages)
        furthest = reached_by(training).groupby("deal_id")["stage_index"].max()
        lost_reach = closed["deal_id"].map(furthest).fillna(0).to_numpy(dtype=int)[~won]
        n_won = int(won.sum())
        s = self.smoothing
        # Stage table: won deals in every stage; lost deals in stages 0..furthest reached.
        self.stage_won_ = np.full(n_stages, n_won + s)
        self.stage_lost_ = np.array([(lost_reach >= i).sum() + s for i in range(n_stages)], dtype=float)
        self.total_won_, self.total_lost_ = self.stage_won_[0], self.stage_lost_[0]
        self.fields_: dict[str, dict[str, tuple[float, float]]] = {}
        for name, kind in training.features.items():
            if kind != "categorical":
                continue
            values = closed[name].astype("str")
            table = pd.crosstab(values, won).reindex(columns=[True, False], fill_value=0)
            self.fields_[name] = {str(v): (float(r[True]) + s, float(r[False]) + s)
                                  for v, r in table.iterrows() if pd.notna(v)}
        return self

    def predict_proba(self, rows: Rows) -> np.ndarray:
        self.check_fitted()
        rows = pd.DataFrame(rows) if not isinstance(rows, pd.DataFrame) else rows  # deals to score come as arrays
        log_won = np.full(len(rows), np.log(self.total_won_ / (self.total_won_ + self.total_lost_)))
        log_lost = np.full(len(rows), np.log(self.total_lost_ / (self.total_won_ + self.total_lost_)))
        stage = np.asarray(rows["stage_index"], dtype=int)
        log_won += np.log(self.stage_won_[stage] / self.total_won_)
        log_lost += np.log(self.stage_lost_[stage] / self.total_lost_)
        for name, table in self.fields_.items():
            if name not in rows:
                continue
            values = rows[name].astype("str")
            pairs = values.map({v: table[v] for v in values.dropna().unique() if v in table})
            known = pairs.notna().to_numpy()
            counts = np.array([p for p in pairs[known]], dtype=float).reshape(-1, 2)
            log_won[known] += np.log(counts[:, 0] / self.total_won_)
            log_lost[known] += np.log(counts[:, 1] / self.total_lost_)
        return 1.0 / (1.0 + np.exp(log_lost - log_won))


class LogisticRegressionModel(StageTimedMixin, Model):
    """Logistic regression on the snapshot features, fitted on snapshot rows whose outcome is known."""

    name: ClassVar[str] = "logistic_regression"
    _fitted_attribute: ClassVar[str] = "pipeline_"
    _parameter_constraints: ClassVar[dict[str, list[Any]]] = {
        "C": [Interval(Real, 0, None, closed="neither")], "max_iter": [Interval(Integral, 1, None, closed="left")]}

    def __init__(self, C: float = 1.0, max_iter: int = 1000) -> None:
        self.C = C
        self.max_iter = max_iter

    def fit(self, training: TrainingSet) -> Self:
        self._start_fit()
        self._fit_timing(training)
        rows = training.snapshots.rows
        rows = rows[rows["outcome"] != "open"]
        numeric = [n for n, k in training.features.items() if k == "numeric"]
        categorical = [n for n, k in training.features.items() if k == "categorical"]
        log = FunctionTransformer(np.log1p, feature_names_out="one-to-one")
        transformer = ColumnTransformer([
            ("state", make_pipeline(SimpleImputer(strategy="median"), log, StandardScaler()),
             ["days_in_stage", "age_days", "amount"]),
            ("stage", OneHotEncoder(handle_unknown="ignore"), ["stage_index"]),
            *([("numeric", make_pipeline(SimpleImputer(strategy="median"), StandardScaler()), numeric)] if numeric else []),
            *([("categorical", OneHotEncoder(handle_unknown="ignore", min_frequency=5), categorical)]
              if categorical else []),
        ])
        self.columns_ = ["days_in_stage", "age_days", "amount", "stage_index", *numeric, *categorical]
        self.categories_ = {name: pd.Index(np.sort(rows[name].dropna().unique().astype(object)), dtype=object)
                            for name in categorical}
        self.pipeline_ = Pipeline([("features", transformer),
                                   ("model", LogisticRegression(C=self.C, max_iter=self.max_iter))])
        frame = self._frame(rows)
        self.pipeline_.fit(frame, rows["outcome"].eq("won").to_numpy())
        features = self.pipeline_[:-1]
        self.means_ = np.asarray(_dense(features.transform(frame)).mean(axis=0)).ravel()
        self.groups_ = _groups(features.get_feature_names_out(), self.columns_)
        return self

    def _frame(self, rows: Rows) -> pd.DataFrame:
        """The model's columns, each categorical one as integer codes: its sorted training values, missing
        as one more value, anything else -1 (never seen in training, so one-hot ignores it). One-hot
        encoding of integers is many times faster than of Python strings, with the same columns."""
        frame = pd.DataFrame({name: np.asarray(rows[name]) for name in self.columns_})
        for name, categories in self.categories_.items():
            values = frame[name].astype(object)
            frame[name] = np.where(values.isna().to_numpy(), len(categories), categories.get_indexer(values))
        return frame

    def predict_proba(self, rows: Rows) -> np.ndarray:
        self.check_fitted()
        return self.pipeline_.predict_proba(self._frame(rows))[:, 1]

    def explain(self, rows: Rows, horizons: np.ndarray, contributions: bool = True) -> Explanation:
        """As every baseline, plus each input's contribution to the log-odds of winning: the coefficients times
        the deal's values less the training average, summed over an input's columns (its one-hot columns,
        say): for a linear model, the Shapley values of its inputs."""
        explained = super().explain(rows, horizons, contributions=False)
        if not contributions:
            return explained
        x = _dense(self.pipeline_[:-1].transform(self._frame(rows)))
        effects = (x - self.means_) * self.pipeline_[-1].coef_[0]
        return explained._replace(contributions=effects @ self.groups_, names=tuple(self.columns_))


def _dense(x: Any) -> np.ndarray:
    return np.asarray(x.toarray() if hasattr(x, "toarray") else x, dtype=float)


def _groups(outputs: np.ndarray, inputs: list[str]) -> np.ndarray:
    """(output columns, inputs) of ones: which input each column of a ColumnTransformer's output comes from
    (its name is ``transformer__input`` or, one-hot, ``transformer__input_value``; the longest input that
    fits wins)."""
    groups = np.zeros((len(outputs), len(inputs)))
    for i, name in enumerate(outputs):
        column = str(name).split("__", 1)[-1]
        fits = [j for j, input_ in enumerate(inputs) if column == input_ or column.startswith(f"{input_}_")]
        groups[i, max(fits, key=lambda j: len(inputs[j]))] = 1.0
    return groups
