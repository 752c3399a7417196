"""The baselines every model is compared with, behind the same interface as the models.

- :class:`FixedStageModel`: the configured stage percentages;
- :class:`EmpiricalStageRateModel`: the historical win rate of closed deals that reached each stage;
- :class:`OdooNaiveBayesModel`: Odoo CRM's "predictive lead scoring" (frequency tables of won/lost per
  field value and per reached stage, 0.1 added to each count, prior from the first stage);
- :class:`LogisticRegressionModel`: a logistic regression on the same snapshot features as the model.

Each keeps the models' one interface (:mod:`scoring.models.base`); their timing is the stage's.
"""
from __future__ import annotations

from dataclasses import dataclass
from numbers import Integral, Real
from typing import Any, ClassVar, Self

import numpy as np
import pandas as pd
from scipy.special import expit
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, StandardScaler
from sklearn.utils._param_validation import Interval

from scoring.data.tables import is_in
from scoring.features.dataset import TrainingSet
from scoring.features.encoder import Rows, entered_amounts
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
        self.codes_ = _code_tables(self.categories_)
        self.terms_ = LinearTerms.of(self)
        return self

    def _frame(self, rows: Rows) -> pd.DataFrame:
        """The model's columns, each categorical one as integer codes: its sorted training values, missing
        as one more value, anything else -1 (never seen in training, so one-hot ignores it). One-hot
        encoding of integers is many times faster than of Python strings, with the same columns."""
        frame = pd.DataFrame({name: np.asarray(rows[name]) for name in self.columns_})
        frame["amount"] = entered_amounts(frame["amount"])
        for name, categories in self.categories_.items():
            values = frame[name].astype(object)
            frame[name] = np.where(values.isna().to_numpy(), len(categories), categories.get_indexer(values))
        return frame

    def predict_proba(self, rows: Rows) -> np.ndarray:
        self.check_fitted()
        terms = self._terms()
        if terms is None:
            return self.pipeline_.predict_proba(self._frame(rows))[:, 1]
        return expit(terms.intercept + terms.of_rows(self._codes(rows)).sum(axis=1))

    def explain(self, rows: Rows, horizons: np.ndarray, contributions: bool = True) -> Explanation:
        """As every baseline, plus each input's contribution to the log-odds of winning: the coefficients times
        the deal's values less the training average, summed over an input's columns (its one-hot columns,
        say): for a linear model, the Shapley values of its inputs. Both from one pass over the inputs'
        terms (:class:`LinearTerms`)."""
        self.check_fitted()
        terms = self._terms()
        if terms is None or not contributions:
            explained = super().explain(rows, horizons, contributions=False)
            if not contributions:
                return explained
            x = _dense(self.pipeline_[:-1].transform(self._frame(rows)))
            effects = (x - self.means_) * self.pipeline_[-1].coef_[0]
            return explained._replace(contributions=effects @ self.groups_, names=tuple(self.columns_))
        each = terms.of_rows(self._codes(rows))
        p = expit(terms.intercept + each.sum(axis=1))
        share, days = self._timing(rows, np.asarray(horizons, dtype=float))
        return Explanation(p, p[:, None] * share, days, each - terms.means, tuple(self.columns_))

    def _terms(self) -> LinearTerms | None:
        """The fitted pipeline as per-input terms (models fitted before they existed derive them on first use)."""
        if not hasattr(self, "terms_"):
            self.terms_ = LinearTerms.of(self)
        return self.terms_

    def _codes(self, rows: Rows) -> list[np.ndarray]:
        """The model's inputs as :meth:`_frame` gives them to the pipeline (categorical ones as integer codes),
        as arrays: numbers as floats (missing: NaN)."""
        if not hasattr(self, "codes_"):  # a model fitted before codes were looked up by dictionary (pandas'
            # get_indexer costs some 0.3 ms a column of 1,000 deals)
            self.codes_ = _code_tables(self.categories_)
        out = []
        for name in self.columns_:
            values = entered_amounts(rows[name]) if name == "amount" else np.asarray(rows[name])
            codes = self.codes_.get(name)
            if codes is None:
                out.append(values.astype(float))
            else:  # each distinct value looked up once; missing (factorize's -1) after the training values
                which, distinct = pd.factorize(values.astype(object), use_na_sentinel=True)
                found = np.array([codes.get(v, -1) for v in distinct.tolist()] + [len(codes)], dtype=np.int64)
                out.append(found[which])
        return out


def _code_tables(categories: dict[str, pd.Index]) -> dict[str, dict[Any, int]]:
    """Per categorical input, each training value's code (its place among the sorted values), as a dictionary."""
    return {name: {v: i for i, v in enumerate(values.tolist())} for name, values in categories.items()}


@dataclass(frozen=True)
class LinearTerms:
    """A fitted logistic-regression pipeline as one term of the log-odds per input, so that scoring needs no
    DataFrame and no pass through scikit-learn's transformers (three of them cost a blended model's batch of
    1,000 deals some 30 ms, against well under 1 ms): a table by value for the one-hot inputs (the stage index,
    the categorical codes; a value the encoder never saw adds 0), and for the numeric ones ``slope * g(x) +
    offset`` with g the identity or log1p, or the imputed value's term when x is missing. The terms are read
    off the pipeline itself, on a few made-up rows; :meth:`of` gives None unless they reproduce it exactly."""

    intercept: float
    #: Per input, its term's training average: the term less it is the input's contribution.
    means: np.ndarray
    #: Input position -> its term by value (stage index) or by code + 1 (categorical: code -1 first).
    tables: dict[int, tuple[np.ndarray, int]]
    #: Input position -> (log1p first?, slope, offset, term when missing).
    affine: dict[int, tuple[bool, float, float, float]]

    #: Numeric probes: values at which each numeric input's term is read and checked.
    PROBES: ClassVar[tuple[float, ...]] = (0.0, 1.0, 2.0, 5.0, 40.0)

    @classmethod
    def of(cls, model: LogisticRegressionModel) -> LinearTerms | None:
        columns, categories = model.columns_, model.categories_
        coef = model.pipeline_[-1].coef_[0]
        stage_values = next(e.categories_[0] for name, e, cols in model.pipeline_[0].transformers_
                            if list(cols) == ["stage_index"])
        stages = int(np.max(stage_values)) + 1  # the stage table covers indices 0 .. the largest seen
        width = max(len(stage_values) + 1, *(len(c) + 2 for c in categories.values()), len(cls.PROBES) + 1)
        made_up = {}
        for name in columns:
            if name == "stage_index":
                values = np.arange(width) % stages
            elif name in categories:
                values = (np.arange(width) % (len(categories[name]) + 2)) - 1
            else:
                values = np.resize(np.array([*cls.PROBES, np.nan]), width)
            made_up[name] = values
        frame = pd.DataFrame(made_up)
        terms = (_dense(model.pipeline_[:-1].transform(frame)) * coef) @ model.groups_  # (width, inputs)
        tables, affine = {}, {}
        for j, name in enumerate(columns):
            if name == "stage_index":
                tables[j] = (terms[:stages, j], 0)
            elif name in categories:
                tables[j] = (terms[: len(categories[name]) + 2, j], 1)
            else:
                read = terms[: len(cls.PROBES) + 1, j]
                fits = [(log, *_affine(np.log1p(cls.PROBES) if log else np.array(cls.PROBES), read[:-1]))
                        for log in (False, True)]
                found = [(log, slope, offset) for log, slope, offset, exact in fits if exact]
                if not found:
                    return None
                affine[j] = (*found[0], float(read[-1]))
        linear = cls(float(model.pipeline_[-1].intercept_[0]), (model.means_ * coef) @ model.groups_, tables, affine)
        check = model.pipeline_.decision_function(frame)  # the pipeline's own log-odds
        if not np.allclose(linear.intercept + linear.of_rows([frame[c].to_numpy() for c in columns]).sum(axis=1),
                           check, rtol=0, atol=1e-9):
            return None
        return linear

    def of_rows(self, inputs: list[np.ndarray]) -> np.ndarray:
        """Each row's term of each input (rows, inputs), from the inputs as :meth:`LogisticRegressionModel._codes`
        gives them."""
        out = np.empty((len(inputs[0]) if inputs else 0, len(inputs)))
        for j, values in enumerate(inputs):
            if j in self.tables:
                table, shift = self.tables[j]
                index = np.asarray(values, dtype=np.int64) + shift
                seen = (index >= 0) & (index < len(table))
                out[:, j] = np.where(seen, table[np.clip(index, 0, len(table) - 1)], 0.0)
            else:
                log, slope, offset, missing = self.affine[j]
                x = np.log1p(values) if log else values
                out[:, j] = np.where(np.isnan(values), missing, slope * x + offset)
        return out


def _affine(x: np.ndarray, y: np.ndarray) -> tuple[float, float, bool]:
    """The line through the first two of the points (x, y), and whether all of them are on it."""
    slope = float((y[1] - y[0]) / (x[1] - x[0]))
    offset = float(y[0] - slope * x[0])
    return slope, offset, bool(np.allclose(slope * x + offset, y, rtol=1e-9, atol=1e-12))


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
