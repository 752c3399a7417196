"""The one contract of deals to score, for files and API requests alike.

Both paths first turn their input into columns (a file: :func:`scoring.data.contract.load_open_deals` reads
text into typed dates and amounts; a request: pydantic's typed fields); then :func:`check_open_deals` checks
what a model needs, the same way for both: open stages the model knows, no duplicate ids, dates within the
plausible years, nothing created after the as-of date, and feature values of the model's kinds (numeric
text read as numbers, text stripped of stray spaces, so ``'SMB '`` is ``SMB`` from a file as from a request).
Problems are :class:`~scoring.errors.DealProblem` s (position, field, message), raised together as
:class:`~scoring.errors.InvalidDeals`; fields the model does not use are ignored and named in the warnings.
"""
from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from scoring.data.columns import fold
from scoring.data.config import DEAL_COLUMNS, PipelineConfig
from scoring.data.contract import stage_classifier
from scoring.data.formats import MISSING_TEXT, NUMBER_FORMATS, parse_numbers
from scoring.data.tables import PLAUSIBLE_YEARS, is_missing
from scoring.errors import DealProblem, InvalidDeals

#: At most this many deal ids are quoted in one warning.
QUOTED = 5
#: The dates a deal to score may carry (a closed deal's closed_at is not one of them).
OPEN_DEAL_DATES = ("created_at", "stage_entered_at", "expected_close_date")
_FIRST, _AFTER = (np.datetime64(f"{year}-01-01", "us") for year in (PLAUSIBLE_YEARS[0], PLAUSIBLE_YEARS[1] + 1))
_BAD = object()
#: Types of values that are never missing (None is missing as it is).
_NEVER_MISSING = {str, int, bool, type(None)}


def check_open_deals(deals: Mapping[str, Any], config: PipelineConfig, features: Mapping[str, str],
                     as_of: pd.Timestamp, rows: Sequence[int] | None = None, source: str = "deals",
                     ) -> tuple[dict[str, np.ndarray], list[str]]:
    """The deals' columns as the model scores them (canonical stage names, the model's features of their kinds)
    and warnings; raises :class:`InvalidDeals` naming every problem (by ``rows`` of ``source`` when given).

    ``deals``: ``deal_id``, ``stage`` (text as given), ``amount`` and the dates (datetime64, NaT when missing)
    as arrays or lists, and any other field as given (feature values of any JSON type or text).
    """
    problems: list[DealProblem] = []
    ids = [str(v) for v in deals["deal_id"]]
    n = len(ids)
    classify = _classifier(config)
    texts = [str(v) for v in deals["stage"]]
    kinds = {text: classify(text) for text in set(texts)}
    for i, text in enumerate(texts):
        kind = kinds[text][0]
        if kind != "open":
            reason = "only open deals can be scored" if kind in ("won", "lost") else "unknown stage"
            problems.append(DealProblem(i, "stage", f"{reason}: got {text!r}; expected one of the model's open "
                                                    f"stages {list(config.stages)}"))
    if len(set(ids)) < n:
        seen: dict[str, int] = {}
        for i, deal_id in enumerate(ids):
            if deal_id in seen:
                problems.append(DealProblem(i, "deal_id", f"duplicate deal_id {deal_id!r} (also the deal at "
                                                          f"position {seen[deal_id]}); each deal must appear once"))
            seen.setdefault(deal_id, i)
    dates = {name: _dates(deals.get(name), n, name, problems) for name in OPEN_DEAL_DATES}
    for i in np.flatnonzero(np.isnat(dates["created_at"])).tolist():
        if not any(p.index == i and p.field == "created_at" for p in problems):
            problems.append(DealProblem(i, "created_at", "expected the date the deal was created, it is missing"))
    for i in np.flatnonzero(dates["created_at"] > as_of.to_datetime64()).tolist():
        problems.append(DealProblem(i, "created_at", f"created after the as-of date {as_of.date()} (on "
                                                     f"{dates['created_at'][i]}); a deal cannot be scored before it exists"))
    entered, created = dates["stage_entered_at"], dates["created_at"]
    for i in np.flatnonzero(entered > as_of.to_datetime64()).tolist():
        problems.append(DealProblem(i, "stage_entered_at", f"entered its stage after the as-of date {as_of.date()} "
                                                           f"(on {entered[i]}); it would be scored with negative days "
                                                           "in the stage"))
    before = entered < created.astype("datetime64[D]").astype("datetime64[us]")
    for i in np.flatnonzero(before).tolist():
        problems.append(DealProblem(i, "stage_entered_at", f"entered its stage ({entered[i]}) before the deal was "
                                                           f"created ({created[i]})"))
    sent = _feature_columns(deals, features)
    columns, missing = _features(deals, features, sent, n, problems, config)
    if problems:
        raise InvalidDeals(sorted(problems, key=lambda p: p.index), rows, source)
    out: dict[str, np.ndarray] = {
        "deal_id": np.array(ids, dtype=object),
        "stage": np.array([kinds[text][1] for text in texts], dtype=object),
        "amount": np.asarray(deals["amount"], dtype=float),
        **dates,
        **columns,
    }
    warnings = []
    unused = sorted(set(deals) - set(sent.values()) - set(DEAL_COLUMNS) - {"_row"})
    if unused:
        warnings.append(f"field(s) {', '.join(unused)} not used by the model: ignored")
    renamed = [f"{column!r} as {name!r}" for name, column in sent.items() if column != name]
    if renamed:
        warnings.append(f"feature(s) read from fields named otherwise in case or spaces: {', '.join(renamed)}")
    for name, where in missing.items():
        if 0 < len(where) < n:
            quoted = ", ".join(ids[i] for i in where[:QUOTED]) + (", ..." if len(where) > QUOTED else "")
            warnings.append(f"feature {name!r} missing on {len(where)} deal(s) ({quoted}): scored as unknown")
    no_entry = np.isnat(out["stage_entered_at"])
    if no_entry.any():
        quoted = ", ".join(np.asarray(ids, dtype=object)[no_entry][:QUOTED].tolist())
        warnings.append(f"{int(no_entry.sum())} deal(s) without stage_entered_at ({quoted}"
                        f"{', ...' if no_entry.sum() > QUOTED else ''}): days in the stage counted from created_at "
                        "(give when each entered its stage: stage_entered_at, the stage history as --history, or the "
                        "stage's changes in the field history)")
    absent = [name for name in features if name not in sent]
    if absent:
        warnings.append(f"feature column(s) {', '.join(absent)} missing: scored as unknown")
    return out, warnings


#: Stage classifiers by config (a model's config is asked again and again; building one costs some 20 us).
_CLASSIFIERS: dict[int, tuple[PipelineConfig, Callable[[str], tuple[str, str]]]] = {}


def _classifier(config: PipelineConfig) -> Callable[[str], tuple[str, str]]:
    kept = _CLASSIFIERS.get(id(config))
    if kept is None or kept[0] is not config:
        if len(_CLASSIFIERS) >= 16:
            _CLASSIFIERS.clear()
        kept = _CLASSIFIERS[id(config)] = (config, stage_classifier(config))  # the config kept: its id stays its own
    return kept[1]


def _dates(values: Any, n: int, name: str, problems: list[DealProblem]) -> np.ndarray:
    """A date column as datetime64[us] (NaT when missing); dates outside the plausible years are problems."""
    if values is None:
        return np.full(n, np.datetime64("NaT"), dtype="datetime64[us]")
    column = np.asarray(values, dtype="datetime64[us]").copy()
    wrong = np.flatnonzero(~np.isnat(column) & ((column < _FIRST) | (column >= _AFTER))).tolist()
    for i in wrong:
        problems.append(DealProblem(i, name, f"expected a date between {PLAUSIBLE_YEARS[0]} and {PLAUSIBLE_YEARS[1]} "
                                             f"(got {column[i]})"))
        column[i] = np.datetime64("NaT")
    return column


def _feature_columns(deals: Mapping[str, Any], features: Mapping[str, str]) -> dict[str, str]:
    """Per model feature the deals carry, the field holding it: its own name, else the one field named the same but
    for case and spaces (``Segment``, `` segment ``, as another export or view of the CRM may write it)."""
    folded: dict[str, list[str]] = {}
    for column in deals:
        if column not in features:
            folded.setdefault(fold(column), []).append(str(column))
    out = {}
    for name in features:
        others = folded.get(fold(name), [])
        if name in deals or len(others) == 1:
            out[name] = name if name in deals else others[0]
    return out


def _features(deals: Mapping[str, Any], kinds: Mapping[str, str], sent: Mapping[str, str], n: int,
              problems: list[DealProblem], config: PipelineConfig
              ) -> tuple[dict[str, np.ndarray], dict[str, list[int]]]:
    """The model's feature columns present in the deals (``sent``: the field holding each), of their kinds; per
    feature, the deals lacking it. Numeric text is read as the history's files are (thousands separators, currency
    signs, decimal commas, a percent sign; the number format the config declares, or the one the training export
    showed where the deals do not tell)."""
    columns: dict[str, np.ndarray] = {}
    missing: dict[str, list[int]] = {}
    europe = NUMBER_FORMATS.get(config.found_number_format or "") == "comma"
    for name, kind in kinds.items():
        field = sent.get(name)
        if field is None:
            missing[name] = list(range(n))
            continue
        given = list(deals[field])
        types = set(map(type, given))
        if not types <= _NEVER_MISSING:  # NaN, NA or NaT among them: read as missing
            given = [None if is_missing(v) else v for v in given]
            types = set(map(type, given))
        text = kind == "numeric" and str in types
        # plain numbers at list speed (as a file's column of them is read), unless a format is declared, or a
        # European one found ("24.729" reads as 24729 then)
        values = None if text and (config.number_format or europe) else _column(given, types, kind)
        read = given
        if values is None and text:  # other text as a file's column is read: "24,729", "1.200,50", "15%"
            read = _numbers_as_written(given, config)
            values = _column(read, set(map(type, read)), kind)
        if values is None:  # something unusual in the column: value by value, naming the bad ones (as sent)
            values = [_feature_value(v, kind) for v in read]
            for i, value in enumerate(values):
                if value is _BAD:
                    expected = "a number" if kind == "numeric" else "a string, number or boolean"
                    problems.append(DealProblem(i, field, f"expected {expected} (or empty), got {_short(given[i])}"))
            values = [None if v is _BAD else v for v in values]
        missing[name] = [i for i, v in enumerate(values) if v is None] if None in values else []
        if kind == "numeric":
            columns[name] = np.array(values, dtype=float)  # None: NaN
        else:
            columns[name] = np.array(values, dtype=object)
    return columns, missing


def _numbers_as_written(values: list[Any], config: PipelineConfig) -> list[Any]:
    """The text cells that :func:`~scoring.data.formats.parse_numbers` reads (as a file's numeric column is read)
    as floats, or None where they stand for nothing; every other value as given."""
    at = [i for i, v in enumerate(values) if isinstance(v, str)]
    numbers, unreadable = parse_numbers(pd.Series([values[i] for i in at], dtype=object), config.number_format,
                                        percent=True, found=config.found_number_format)
    out = list(values)
    for i, number, bad in zip(at, numbers.tolist(), unreadable.tolist(), strict=True):
        if not bad:  # read: a number, or nothing (blank, "N/A", "-", "$ -")
            out[i] = number if number == number else None
    return out


#: The types of a numeric feature's values read at list speed (not bool, nor numpy's: True is no number).
_PLAIN_NUMERIC = (int, float, str, type(None), np.integer, np.floating)


def _column(values: list[Any], types: set[type], kind: str) -> list[Any] | None:
    """The common cases at list speed: a numeric column of numbers (or numeric text) and None, a categorical
    column of text and None (``types``: the values' types). None when the column needs :func:`_feature_value`
    value by value."""
    if kind == "numeric":
        if not all(t is not bool and issubclass(t, _PLAIN_NUMERIC) for t in types):  # numpy's numbers too (a frame's)
            return None
        try:
            numbers = [None if v is None or (isinstance(v, str) and not v.strip()) else float(v) for v in values]
        except (ValueError, OverflowError):  # not a number, or an integer beyond floats
            return None
        unusable = np.count_nonzero(~np.isfinite(np.array(numbers, dtype=float)))  # None reads as NaN
        return numbers if unusable == numbers.count(None) else None  # else inf or NaN given
    if types <= {str, type(None)}:  # each distinct text tidied once: a column has few
        tidy = {v: None if v.strip() in MISSING_TEXT else v.strip() for v in set(values) - {None}}
        tidy[None] = None
        return list(map(tidy.__getitem__, values))
    return None


def _feature_value(value: Any, kind: str) -> Any:
    """A value as the feature's kind (None when missing), or _BAD."""
    if value is None:
        return None
    if kind == "numeric":
        if isinstance(value, (bool, np.bool_)):
            return _BAD
        if isinstance(value, (int, float, np.integer, np.floating)):
            try:
                number = float(value)
            except OverflowError:  # an integer beyond floats
                return _BAD
            return number if math.isfinite(number) else _BAD
        if isinstance(value, str):
            try:
                number = float(value.strip())
            except ValueError:
                return None if value.strip() in MISSING_TEXT else _BAD
            return number if math.isfinite(number) else _BAD
        return _BAD
    if isinstance(value, (str, int, float, bool, np.integer, np.floating, np.bool_)):
        text = str(value).strip()
        return None if text in MISSING_TEXT else text
    return _BAD


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
