"""Scoring open deals with a trained bundle: their snapshot state at the as-of date, P(win), timing, the stale
flag and the factors that raised and lowered each score.

Files and API requests take one path: validated columns (name -> array, from
:func:`scoring.data.open_deals.check_open_deals`) -> state -> models. ``score_deals`` takes a DataFrame (as
from ``load_open_deals``); ``score_columns`` takes the arrays directly, which spares a small request pandas'
per-call cost.
"""
from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from typing_extensions import TypedDict  # pydantic reads it (on Python 3.11) in the API's answers

from scoring.bundle import ModelBundle
from scoring.data.open_deals import check_open_deals
from scoring.data.signals import DealSignals, SignalSpec
from scoring.data.tables import ROW, is_missing
from scoring.errors import ConfigError
from scoring.features.signals import signal_columns
from scoring.features.snapshots import open_deal_columns


class Factor(TypedDict):
    """One reason behind a score: a feature, its value as text, and how much it moved the log-odds of winning
    (rather than losing) next."""

    feature: str
    value: str
    effect: float


#: How factors name the model's derived inputs.
_SHOWN = {"stage_index": "stage", "log_amount": "amount"}


def require_same_export(bundle: ModelBundle, preset: str | None) -> None:
    """Refuse scoring an export of another kind (``preset``) than the model was trained on: its stages and
    column mapping come with the model."""
    if preset and preset.lower() != (bundle.config.preset or ""):
        raise ConfigError(f"the model was trained on {bundle.config.preset or 'canonical'} data, not a {preset} export: "
                          "its stages and column mapping come with it, so score the same kind of export")


def deal_state(bundle: ModelBundle, deals: pd.DataFrame, as_of: pd.Timestamp,
               signals: DealSignals | None = None) -> tuple[pd.DataFrame, list[str]]:
    """The snapshot rows of open deals (canonical columns) at ``as_of``, and warnings about their features."""
    rows, warnings = state_columns(bundle, *_columns(deals), as_of, signals=signals)
    return pd.DataFrame(rows), warnings


def state_columns(bundle: ModelBundle, deals: Mapping[str, Any], rows: Sequence[int] | None, as_of: pd.Timestamp,
                  source: str = "deals", signals: DealSignals | None = None) -> tuple[dict[str, np.ndarray], list[str]]:
    """:func:`deal_state` of deals given column by column, checked by the one contract of deals to score
    (:func:`check_open_deals`; problems named by ``rows`` of ``source`` when given, else by position), with the
    features the model derives from the deals' field history and activities (``signals``)."""
    as_of = pd.Timestamp(as_of)
    derived = bundle.signals.features
    checked = {name: kind for name, kind in bundle.features.items()
               if name not in derived or (kind == "categorical" and name in deals)}
    columns, warnings = check_open_deals(deals, bundle.config, checked, as_of, rows, source)
    if derived:
        columns.update(_signal_inputs(bundle.signals, columns, signals or DealSignals(), as_of, warnings))
    state = open_deal_columns(columns, as_of, bundle.config, list(bundle.features))
    warnings += [f"feature {name!r}: value(s) never seen in training, scored as rare: {', '.join(values[:5])}"
                 for name, values in bundle.model.unknown_values(state).items()]
    return state, warnings


def _signal_inputs(spec: SignalSpec, columns: Mapping[str, np.ndarray], signals: DealSignals, as_of: pd.Timestamp,
                   warnings: list[str]) -> dict[str, np.ndarray]:
    """The signal features of deals to score at ``as_of``; a warning for each kind of signal the model learned
    from and the caller did not give."""
    for kind, what in (("field_history", "field history (--field-history, or history entries with field, value "
                                         "and changed_at)"), ("activities", "activities (--activities, or the deals' "
                                                                           "activities)")):
        names = spec.features_from(kind)  # type: ignore[arg-type]
        if names and kind not in signals.given:
            warnings.append(f"the model learned from the deals' {what}; none were given: {', '.join(names)} scored "
                            "as unknown where the deals do not carry them")
    own = {name: columns[name] for name in ("expected_close_date", *spec.categories) if name in columns}
    values = signal_columns(columns["deal_id"], as_of, signals, spec, own)
    values.pop("amount", None)  # the deal's amount now is its amount at the as-of date
    return values


def score_deals(bundle: ModelBundle, deals: pd.DataFrame, as_of: pd.Timestamp | str,
                top: int = 3, signals: DealSignals | None = None) -> tuple[pd.DataFrame, list[str]]:
    """Score open deals (canonical columns, as from ``load_open_deals``); return the scores (factors as
    text) and warnings."""
    columns, file_rows = _columns(deals)
    scores, warnings = score_columns(bundle, columns, as_of, top, file_rows=file_rows, signals=signals)
    for side in ("factors_up", "factors_down"):
        scores[side] = [_factor_text(factors) for factors in scores[side]]
    return pd.DataFrame(scores), warnings


def score_columns(bundle: ModelBundle, deals: Mapping[str, Any], as_of: pd.Timestamp | str, top: int = 3,
                  period: str = "quarter", file_rows: Sequence[int] | None = None,
                  signals: DealSignals | None = None,
                  factor: Callable[..., Any] | None = None) -> tuple[dict[str, Any], list[str]]:
    """:meth:`score` of deals given column by column; the scores come back as a mapping of arrays.

    Beside P(win): P(win within 90 days and by the end of the current ``period`` (month or quarter)), P(slip:
    won after that period) and P(lose),
    the expected close date, a stale flag (longer in the stage than 90 % of past stays there) and
    the ``top`` factors that raised and lowered the odds (lists of :class:`Factor`, or of what ``factor`` makes of
    each; ``top=0`` skips them, which makes large batches several times faster).
    """
    as_of = pd.Timestamp(as_of)
    rows, warnings = state_columns(bundle, deals, file_rows, as_of, signals=signals)
    period_end = current_period_end(as_of, period)
    horizons = np.array([90.0, (period_end - as_of) / pd.Timedelta(days=1)])
    served = bundle.served_model
    p, by, days_to_win, contributions, names = served.explain(rows, horizons, contributions=top > 0)
    fixed = bundle.models["fixed"].predict_proba(rows)
    amount = rows["amount"]
    close = as_of.to_datetime64().astype("datetime64[D]") + np.round(days_to_win).astype("timedelta64[D]")
    n = len(p)
    up, down = factors(names, rows, contributions, top, factor) if contributions is not None else ([[]] * n, [[]] * n)
    if top > 0 and contributions is None:
        warnings.append(f"no factors: the model serving, {bundle.served}, gives none ({bundle.served_reason})")
    if never := bundle.dormancy.never_leaving(rows["stage_index"], rows["days_in_stage"]):
        warnings.append(f"{never} deal(s) in their stage longer than any deal that ever left it: their win probability "
                        "counts the chance they never close (deals left that long never moved on, won or lost)")
    out: dict[str, Any] = {
        "deal_id": rows["deal_id"],
        "stage": rows["stage"],
        "amount": amount,
        "win_probability": p,
        "fixed_probability": fixed,
        "expected_revenue": amount * p,
        "fixed_expected_revenue": amount * fixed,
        "stage_probability": bundle.stage_model.predict_proba(rows),
        "win_probability_90d": by[:, 0],
        "win_probability_this_period": by[:, 1],
        "slip_probability": np.maximum(p - by[:, 1], 0.0),
        "loss_probability": 1.0 - p,
        "period_end": np.full(len(p), period_end.to_datetime64().astype("datetime64[D]").astype("datetime64[us]")),
        "expected_close_date": close.astype("datetime64[us]"),
        "days_in_stage": np.round(rows["days_in_stage"], 1),
        "stale": rows["days_in_stage"] > bundle.stage_model.stale_after_days()[rows["stage_index"]],
        "factors_up": up,
        "factors_down": down,
    }
    return out, warnings


def factors(names: Sequence[str], rows: Mapping[str, np.ndarray], values: np.ndarray, top: int,
            factor: Callable[..., Any] | None = None) -> tuple[list[list[Any]], list[list[Any]]]:
    """Per row, the ``top`` inputs that raised and that lowered its odds (``values``: contributions, rows x the
    model's inputs ``names``): those moving the log-odds by more than 0.01, largest first, each a :class:`Factor`
    or what ``factor`` makes of the same keys (``factor(feature=..., value=..., effect=...)``: the service's answer
    rows).

    Both sides in one flat pass over the kept (row, input) pairs, row by row (each row's raising inputs, then
    its lowering ones), each distinct value turned into text once, then cut per row: a batch of 1,000 deals
    makes some 6,000 factors, and per-row Python work is what they cost."""
    names = list(names)
    n, top = len(values), min(top, values.shape[1])
    order = np.argsort(values, axis=1)
    picked = np.concatenate([order[:, ::-1][:, :top], order[:, :top]], axis=1)  # (rows, 2 * top): up, then down
    chosen = np.take_along_axis(values, picked, axis=1)
    kept = np.concatenate([chosen[:, :top] > 0.01, chosen[:, top:] < -0.01], axis=1)
    row, place = np.nonzero(kept)  # row by row; within a row, in the picked order
    column = picked[row, place]
    shown = [_SHOWN.get(name, name) for name in names]
    each = zip(column.tolist(), _texts(rows, names, row, column), np.round(chosen[row, place], 4).tolist(), strict=True)
    make = dict if factor is None else factor
    flat = [make(feature=shown[j], value=text, effect=effect) for j, text, effect in each]
    counts = np.bincount(row, minlength=n)
    ends = np.cumsum(counts)
    starts = ends - counts
    middles = starts + np.bincount(row[place < top], minlength=n)  # where a row's lowering inputs start
    return ([flat[a:b] for a, b in zip(starts.tolist(), middles.tolist())],
            [flat[b:c] for b, c in zip(middles.tolist(), ends.tolist())])


def _texts(rows: Mapping[str, np.ndarray], names: list[str], row: np.ndarray, column: np.ndarray) -> list[str]:
    """The value texts of inputs ``column`` in rows ``row`` (pairs), found input by input."""
    by_input = np.argsort(column, kind="stable")
    grouped = column[by_input]
    cuts = [0, *(np.flatnonzero(np.diff(grouped)) + 1).tolist(), len(grouped)]
    texts: list[str] = []
    for a, b in zip(cuts[:-1], cuts[1:]):
        if b > a:
            texts += _value_texts(rows, names[int(grouped[a])], row[by_input[a:b]])
    out = np.empty(len(texts), dtype=object)
    out[by_input] = np.array(texts, dtype=object)
    return out.tolist()


def _value_texts(rows: Mapping[str, np.ndarray], name: str, which: np.ndarray) -> list[str]:
    """The value of input ``name`` in rows ``which`` as a factor shows it: the stage's name, the amount with
    thousands separators, whole days, other values as given (whole numbers without ".0"; "(missing)" when
    missing). Each distinct value is turned into text once."""
    form: Callable[[Any], str]
    whole: tuple[Callable[[float], str], Callable[[int], str]] | None = None  # rounded first: fewer distinct values
    if name == "stage_index":
        column, form = rows["stage"], str
    elif name in ("log_amount", "amount"):
        column, whole = rows["amount"], _WHOLE_AMOUNT
    elif name in ("days_in_stage", "age_days"):
        column, whole = rows[name], _WHOLE_DAYS
    elif name in rows:
        column, form = rows[name], _as_given
    else:
        return ["(missing)"] * len(which)
    values = np.asarray(column)[which]
    if whole is not None:
        distinct, inverse = np.unique(np.rint(values.astype(float)), return_inverse=True)  # NaN once
        return np.array(_whole_texts(distinct, *whole), dtype=object)[inverse].tolist()
    if values.dtype.kind == "f":  # mostly distinct floats
        distinct, inverse = np.unique(values, return_inverse=True)
        return np.array([form(v) for v in distinct.tolist()], dtype=object)[inverse].tolist()
    given = values.tolist()
    if set(map(type, given)) == {str}:  # text, shown as it is (by str and by _as_given)
        return given
    memo: dict[Any, str] = {}
    return [memo[v] if v in memo else memo.setdefault(v, form(v)) for v in given]


#: How a whole number is written, as a float and the same as an integer (several times faster).
_WHOLE_AMOUNT = ("{:,.0f}".format, "{:,}".format)
_WHOLE_DAYS = ("{:.0f}".format, str)


def _whole_texts(values: np.ndarray, as_float: Callable[[float], str], as_int: Callable[[int], str]) -> list[str]:
    """Whole numbers (floats) as text: as integers those that are exact integers, others (NaN, inf, beyond
    2**53) as floats."""
    exact = np.isfinite(values) & (np.abs(values) < 2.0 ** 53)
    return [as_int(i) if ok else as_float(v) for i, ok, v in
            zip(np.where(exact, values, 0).astype(np.int64).tolist(), exact.tolist(), values.tolist(), strict=True)]


def _as_given(value: Any) -> str:
    if is_missing(value):
        return "(missing)"
    return str(int(value)) if isinstance(value, float) and value.is_integer() else str(value)


def _columns(frame: pd.DataFrame) -> tuple[dict[str, np.ndarray], list[int] | None]:
    """A frame's columns as arrays, and its spreadsheet rows when it came from a file."""
    rows = frame[ROW].tolist() if ROW in frame.columns else None
    return {c: frame[c].to_numpy() for c in frame.columns if c != ROW}, rows


def _factor_text(factors: list[Factor]) -> str:
    return "; ".join(f"{f['feature']}={f['value']} ({f['effect']:+.2f})" for f in factors)


@functools.lru_cache(maxsize=256)  # a service asks for the same few dates again and again
def current_period_end(as_of: pd.Timestamp, period: str) -> pd.Timestamp:
    """The last moment of the calendar month or quarter that contains ``as_of``."""
    if period not in ("month", "quarter"):
        raise ValueError(f"period must be month or quarter, got {period!r}")
    month = as_of.month if period == "month" else (as_of.month - 1) // 3 * 3 + 3
    year, month = (as_of.year + 1, 1) if month == 12 else (as_of.year, month + 1)
    return pd.Timestamp(year, month, 1) - pd.Timedelta(microseconds=1)  # pd.Period(...).end_time, without its cost
