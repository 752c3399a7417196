"""Scoring rules for win probabilities on a time-based holdout: one table, every model side by side."""
from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd
from sklearn.metrics import brier_score_loss, log_loss, roc_auc_score

EPS = 1e-6


def expected_calibration_error(y: np.ndarray, p: np.ndarray, bins: int = 10) -> float:
    """Mean |observed rate - mean probability| over equal-count bins, weighted by bin size."""
    return calibration_error(reliability_table(y, p, bins))


def calibration_error(table: pd.DataFrame) -> float:
    """The count-weighted mean |observed - predicted| of a reliability table."""
    return float((table["count"] * (table["observed"] - table["predicted"]).abs()).sum() / table["count"].sum())


def reliability_table(y: np.ndarray, p: np.ndarray, bins: int = 10) -> pd.DataFrame:
    """Per bin of predicted probability (equal counts): count, mean prediction, observed win rate."""
    order = np.argsort(p, kind="stable")
    parts = [part for part in np.array_split(order, min(bins, len(p))) if len(part)]
    return pd.DataFrame({
        "count": [len(part) for part in parts],
        "predicted": [float(p[part].mean()) for part in parts],
        "observed": [float(y[part].mean()) for part in parts],
        "low": [float(p[part].min()) for part in parts],
        "high": [float(p[part].max()) for part in parts],
    })


def scores(y: np.ndarray, p: np.ndarray, amount: np.ndarray | None = None) -> dict[str, float]:
    """log-loss, Brier score, ROC AUC (NaN with one class), expected calibration error, and with ``amount`` the
    calibration in revenue terms: expected won amount / won amount (1 is right; below 1, the model expects
    too little revenue, as when large deals' probabilities are low)."""
    y = np.asarray(y, dtype=float)
    p = np.clip(np.asarray(p, dtype=float), EPS, 1 - EPS)
    both = 0 < y.sum() < len(y)
    revenue = float("nan")
    if amount is not None:
        weights = np.nan_to_num(np.asarray(amount, dtype=float))
        won = float(weights @ y)
        revenue = float(weights @ p) / won if won > 0 else float("nan")
    return {
        "log_loss": float(log_loss(y, p, labels=[0, 1])),
        "brier": float(brier_score_loss(y, p)),
        "roc_auc": float(roc_auc_score(y, p)) if both else float("nan"),
        "ece": expected_calibration_error(y, p),
        "n": float(len(y)),
        "win_rate": float(y.mean()) if len(y) else float("nan"),
        "revenue_ratio": revenue,
    }


def compare(y: np.ndarray, predictions: Mapping[str, np.ndarray], groups: pd.Series | None = None,
            min_group: int = 30, amount: np.ndarray | None = None) -> pd.DataFrame:
    """One row per model (and per group, when ``groups`` is given): the scores side by side."""
    records = []
    for name, p in predictions.items():
        records.append({"model": name, "group": "all", **scores(y, p, amount)})
        if groups is not None:
            for value, index in groups.groupby(groups, sort=True).groups.items():
                idx = groups.index.get_indexer(index)
                if len(idx) >= min_group:
                    records.append({"model": name, "group": str(value),
                                    **scores(y[idx], np.asarray(p)[idx], None if amount is None else amount[idx])})
    return pd.DataFrame.from_records(records)
