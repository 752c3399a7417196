"""Deal columns that tell a closed deal's outcome by themselves: values an export holds because the deal closed
(the CRM's own probability, a lost reason, the actual revenue, a count measured at the close).

A deals file holds each deal's values as of the export. For a closed deal, some of them were written when it
closed, so learned from, they make a model that looks near perfect on the history and knows nothing of the open
deals (whose such columns are blank or say "open"). The presets name the ones their CRM writes; this check finds
them in any export, by what they do: on the closed deals, the column's values (or whether it is filled in) alone
rank won above lost with a ROC AUC of at least :data:`REVEALING_AUC` (or at most 1 minus it). A column that says
whether a deal is closed (Bitrix24's CLOSED Y/N, HubSpot's "Is Deal Closed?", Salesforce's Closed, a close reason
filled in at the close) ranks nothing among the closed deals but is as bad: the open deals a model learns from
(still open at the export) all carry its open value and none of them has closed, so it learns that value means a
deal never closes, and every open deal it scores carries it (:func:`closing_flags`). Honest features
stay far from that: alone, the strongest ranks at 0.69 on a 20,000-deal demo company (the lead source), 0.62-0.71
on the five CRM-shaped exports, 0.53-0.65 on the public sets (IT consulting's manager; measured 2026-11-29).
"""
from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score

#: Lost deals' amounts are taken as zeroed at the loss when at least this share of them are 0 ...
ERASED_SHARE = 0.10
#: ... and that share is this many times the share of won deals and of open deals at 0 (at least 1 %).
ERASED_RATIO = 4.0
#: A column that alone ranks closed deals' outcomes at this ROC AUC (or 1 minus it) tells them.
REVEALING_AUC = 0.95
#: Judged only with at least this many won and this many lost closed deals (a closing flag: closed and open).
MIN_EACH = 20
#: A column with one value on this share of the closed deals and another on this share of the open ones is a flag.
FLAG_SHARE = 0.98


def revealing_columns(deals: pd.DataFrame, features: Mapping[str, str], seed: int = 0) -> dict[str, tuple[float, str]]:
    """The ``features`` (name -> numeric or categorical) of ``deals`` (canonical, with ``status``) that alone tell
    closed deals' outcomes: name -> (ROC AUC, "its value" or "whether it is filled in"). A text column's values
    are judged by each value's win rate among the other half of the deals (so that a name or an id, different
    on every deal, tells nothing)."""
    closed = deals["status"].isin(["won", "lost"]).to_numpy()
    won = (deals.loc[closed, "status"] == "won").to_numpy(dtype=int)
    if won.sum() < MIN_EACH or (1 - won).sum() < MIN_EACH:
        return {}
    half = np.random.default_rng(seed).random(len(won)) < 0.5
    out: dict[str, tuple[float, str]] = {}
    for name, kind in features.items():
        column = deals.loc[closed, name]
        filled = column.notna().to_numpy()
        judged = [(filled.astype(float), np.ones(len(won), dtype=bool), "whether it is filled in")]
        values = (pd.to_numeric(column, errors="coerce").to_numpy(dtype=float) if kind == "numeric"
                  else _cross_encoded(column.astype(object).where(filled, None), won, half))
        judged.append((values, filled & ~np.isnan(values), "its value"))
        for score, rows, how in judged:
            auc = _auc(won[rows], score[rows])
            if auc is not None and max(auc, 1 - auc) >= REVEALING_AUC:
                out[name] = (auc, how)
                break
    return out


def closing_flags(deals: pd.DataFrame, features: Mapping[str, str]) -> dict[str, tuple[str, float, str, float]]:
    """The ``features`` of ``deals`` (canonical, with ``status``) that say whether a deal is closed: one value (a
    blank one too) on at least :data:`FLAG_SHARE` of the closed deals and another on that share of the open ones,
    with at least :data:`MIN_EACH` of each. Name -> (closed deals' value, its share, open deals' value, its share)."""
    closed = deals["status"].isin(["won", "lost"]).to_numpy()
    if closed.sum() < MIN_EACH or (~closed).sum() < MIN_EACH:
        return {}
    out: dict[str, tuple[str, float, str, float]] = {}
    for name in features:
        text = deals[name].astype(object).where(deals[name].notna(), "(blank)").astype(str)
        shares = [text[part].value_counts(normalize=True) for part in (closed, ~closed)]
        (shut, shut_share), (open_, open_share) = ((s.index[0], float(s.iloc[0])) for s in shares)
        if shut != open_ and min(shut_share, open_share) >= FLAG_SHARE:
            out[name] = (shut, shut_share, open_, open_share)
    return out


def _auc(won: np.ndarray, score: np.ndarray) -> float | None:
    """ROC AUC of ``score`` for ``won``, or None with too few of either outcome or a constant score."""
    if won.sum() < MIN_EACH or (1 - won).sum() < MIN_EACH or np.ptp(score) == 0:
        return None
    return float(roc_auc_score(won, score))


def _cross_encoded(values: pd.Series, won: np.ndarray, half: np.ndarray) -> np.ndarray:
    """Each deal's value as the win rate of that value among the other half's deals (NaN where the other half
    never has it, or the deal has none)."""
    text = values.to_numpy(dtype=object)
    out = np.full(len(text), np.nan)
    for part in (half, ~half):
        other = ~part
        rates = pd.Series(won[other]).groupby(pd.Series(text[other]), dropna=True).mean()
        out[part] = pd.Series(text[part]).map(rates).to_numpy(dtype=float)
    return out


def erased_amounts(status: np.ndarray, amount: np.ndarray) -> np.ndarray:
    """Which deals are lost deals whose amount was set to 0 when they were lost (a habit of teams that keep lost
    deals out of pipeline totals, and of CRMs' workflows): lost deals at 0 are at least :data:`ERASED_SHARE` of the
    lost deals and :data:`ERASED_RATIO` times the share of won and of open deals at 0. Their amount before the loss
    is unknown; learned as 0, it would teach that every deal with an amount beats the lost ones (on two demo
    companies with 60 % of their lost deals zeroed, the served model valued the open pipeline at 1.64x and 1.87x
    the truth; README, "Columns that tell the outcome"). A blank amount is not 0 (not counted)."""
    status = np.asarray(status, dtype=object)
    zero = np.asarray(amount, dtype=float) == 0.0
    lost, won, open_ = (status == "lost"), (status == "won"), (status == "open")
    none = np.zeros(len(status), dtype=bool)
    if lost.sum() < MIN_EACH:
        return none
    share = float(zero[lost].mean())
    others = max([float(zero[part].mean()) for part in (won, open_) if part.any()] + [0.01])
    return zero & lost if share >= ERASED_SHARE and share >= ERASED_RATIO * others else none
