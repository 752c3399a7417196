"""Reading an export's columns: names mapped onto canonical ones, cells as text, date columns in their own format.

Shared by the deals and stage history (:mod:`scoring.data.contract`) and the deal signals
(:mod:`scoring.data.signals`), so every file is read the same way.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from scoring.data.config import PipelineConfig
from scoring.data.formats import (
    ISO_HALF_DAY,
    MISSING_TEXT,
    AmbiguousDates,
    declared_format,
    parse_dates,
    zone_problem,
)
from scoring.data.problems import DataReport, examples
from scoring.data.tables import PLAUSIBLE_YEARS, ROW, is_in


def has_columns(frame: pd.DataFrame, raw: pd.DataFrame, required: tuple[str, ...], report: DataReport,
                 src: str) -> bool:
    """Report the required canonical columns that the mapped ``frame`` lacks; True when none is missing."""
    missing = [c for c in required if c not in frame.columns]
    if missing:
        present = [c for c in raw.columns if not str(c).startswith("_")]
        report.error(src, f"missing required column(s) {', '.join(missing)}; the file has "
                     f"{examples(present)}. Name them as in the data format, map them "
                     "in the config's [columns] or [history_columns] table, or choose a CRM preset (--preset)")
    return not missing



def fold(text: object) -> str:
    return " ".join(str(text).split()).casefold()


def squash(text: object) -> str:
    """A header with all but its letters and digits dropped, folded: ``deal_stage``, ``Deal-Stage``, ``dealStage``
    and ``DEALSTAGE`` (database dumps, API pulls, HubSpot's internal names) read as ``Deal Stage``."""
    return "".join(ch for ch in str(text).casefold() if ch.isalnum())


def header_matches(columns: Sequence[str], names: Sequence[str]) -> list[str]:
    """The ``columns`` that ``names`` name, in order of preference: each name as written (folded), then each by
    its letters and digits alone (:func:`squash`)."""
    out: list[str] = []
    for key in (fold, squash):
        by_key: dict[str, str] = {}
        for column in columns:
            by_key.setdefault(key(column), column)
        for name in names:
            found = by_key.get(key(name))
            if found is not None and found not in out:
                out.append(found)
    return out


def map_columns(raw: pd.DataFrame, mapping: Mapping[str, tuple[str, ...]], canonical: tuple[str, ...],
                 report: DataReport, source: str, what: str) -> pd.DataFrame:
    """Rename export columns to canonical names: the configured names first, then the canonical name itself,
    written in any case with spaces for its underscores or none (``Deal ID``, ``Created At``, ``createdAt``); a
    header matches a name as written (folded), else by its letters and digits alone (``DEAL_ID``, ``deal-id``)."""
    renames: dict[str, str] = {}
    for canon in canonical:
        free = [c for c in raw.columns if not str(c).startswith("_") and c not in renames]
        found = header_matches(free, (*mapping.get(canon, ()), canon, canon.replace("_", " ")))
        if found:
            renames[found[0]] = canon
    clashes = [c for c in raw.columns if c in canonical and c not in renames and c not in renames.values()]
    frame = raw.drop(columns=clashes).rename(columns=renames)
    frame.attrs["mapped_from"] = {canon: str(col) for col, canon in renames.items()}  # what each name was read from
    if clashes:
        report.warn(source, f"column(s) {clashes} not used: other columns were mapped onto those {what} names")
    return frame


def other_deals(frame: pd.DataFrame, known: pd.Index | None, report: DataReport, src: str, what: str,
                others: str = "that are not in the deals file", deleted: Sequence[str] = (),
                apart: Mapping[str, Sequence[str]] | None = None) -> np.ndarray:
    """Which rows of ``frame`` (a history, the field changes, the activities) belong to deals not ``known``: set
    aside, those of ``deleted`` deals and of the deals set aside for a reason (``apart``: reason, such as "deals in
    other pipelines", -> ids) as such (nothing is lost: the deal is gone, or not learned), the others as deals
    ``others`` (a report's filter left them out). ``known`` None: every deal is known. Ids written in Salesforce's
    other form of a known id are rewritten in ``frame`` as the deals file writes them (:func:`same_deal_ids`)."""
    ids = as_text(frame["deal_id"])
    unknown = np.zeros(len(frame), dtype=bool) if known is None else ~is_in(ids, known)
    if unknown.any():
        ids, matched = _matched(ids, unknown, known, report, src, what)
        if matched.any():
            frame["deal_id"] = ids
            unknown &= ~matched
    left_out = unknown.copy()
    for reason, left in (("deleted deals", deleted), *(apart or {}).items()):
        rows = left_out & is_in(ids, pd.Index(left, dtype=object))
        if rows.any():
            report.set_rows_aside(src, f"{what} of {reason}", frame.loc[rows, ROW].tolist(), column="deal_id",
                                  deletion=left is deleted)
            left_out &= ~rows
    if left_out.any():
        report.set_rows_aside(src, f"{what} of deal(s) {others} ({examples(ids[left_out].fillna('(empty)').unique().tolist())})"
                              + _zeros_hint(ids[left_out], known), frame.loc[left_out, ROW].tolist(), column="deal_id")
    return unknown


#: The characters of a Salesforce id's case-safe suffix: one per five characters, their capitals as bits.
_CASESAFE = "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"
_SALESFORCE_15, _SALESFORCE_18 = r"^[0-9A-Za-z]{15}$", r"^[0-9A-Za-z]{18}$"


def casesafe(id15: str) -> str:
    """A 15-character Salesforce id (case-sensitive, as reports write it) as its 18-character case-safe form (as
    the API, Data Loader and connectors write it): three characters appended, each telling which of five
    characters are capitals."""
    return id15 + "".join(_CASESAFE[sum(1 << i for i, c in enumerate(id15[k:k + 5]) if "A" <= c <= "Z")]
                          for k in (0, 5, 10))


def same_deal_ids(ids: pd.Series, known: pd.Index | None, report: DataReport, src: str, what: str) -> pd.Series:
    """``ids`` (text) of a file beside the deals file, Salesforce's ids written in the deals file's other form
    matched to it: a report writes 15-character ids, the API, Data Loader and connectors the 18-character form, so
    a report of opportunities beside a field history or tasks pulled through the API share no id as written. An
    18-character id is the 15-character one whose case its last three characters spell (:func:`casesafe`), so
    either is matched only when that holds; said in a note."""
    if known is None or not len(known):
        return ids
    unknown = ids.notna().to_numpy() & ~is_in(ids, known)
    return _matched(ids, unknown, known, report, src, what)[0] if unknown.any() else ids


def _matched(ids: pd.Series, unknown: np.ndarray, known: pd.Index | None, report: DataReport, src: str,
             what: str) -> tuple[pd.Series, np.ndarray]:
    """:func:`same_deal_ids` of the ``unknown`` ids: the ids, and which were matched."""
    if known is None or not len(known):
        return ids, np.zeros(len(ids), dtype=bool)
    found: dict[str, str] = {}
    values = pd.Series(ids[unknown].dropna().unique(), dtype=object)
    long = values[values.str.match(_SALESFORCE_18)]
    hit = is_in(long.str[:15], known)
    found.update({v: v[:15] for v in long[hit] if casesafe(v[:15]) == v})
    short = values[values.str.match(_SALESFORCE_15)]
    if len(short) and pd.Series(known[:50], dtype=object).astype("str").str.match(_SALESFORCE_18).any():
        safe = short.map(casesafe)
        found.update(dict(zip(short[is_in(safe, known)], safe[is_in(safe, known)], strict=True)))
    matched = unknown & ids.isin(list(found)).to_numpy()
    if not matched.any():
        return ids, matched
    report.notes.append(f"{int(matched.sum()):,} {what} row(s) of {src} name their deals by Salesforce's other form of "
                        f"the deals file's ids ({examples(list(found))}: a report writes 15 characters, the API and "
                        "Data Loader 18): matched")
    return ids.where(~matched, ids.map(found)), matched


def _zeros_hint(unknown: pd.Series, known: pd.Index | None) -> str:
    """Why ids are not found, when most are known ids but for leading zeros (a file saved from Excel, which drops
    them from ids of digits, beside one as exported)."""
    given = unknown.dropna().astype("str")
    if known is None or not len(known) or given.empty:
        return ""
    stripped = pd.Index(pd.Series(known, dtype=object).astype("str").str.lstrip("0"), dtype=object)
    if is_in(given.str.lstrip("0"), stripped).mean() <= 0.5:
        return ""
    return ("; most are the deals file's ids but for leading zeros: a file saved from Excel drops them from ids of "
            "digits; use the files as exported (or import them into Excel with the id column as text)")


def as_text(series: pd.Series) -> pd.Series:
    """Cells as stripped text, missing (blank, or a marker of nothing such as ``N/A`` or ``-``) as NA."""
    out = series.astype("str").str.strip()
    return out.mask(out.isin(MISSING_TEXT))



def read_dates(column: pd.Series, name: str, config: PipelineConfig, report: DataReport, src: str, rows: pd.Series,
           excel: bool) -> pd.Series:
    """One date column read in its own format (:func:`scoring.data.formats.parse_dates`), its problems reported."""
    try:
        dates = parse_dates(column, declared_format(config.date_formats, name, config.date_format), excel)
    except AmbiguousDates as exc:
        report.error(src, str(exc), name)
        return pd.Series(pd.NaT, index=column.index, dtype="datetime64[us]")
    if dates.unreadable.any():
        report.error(src, unreadable_dates(dates.form, column[dates.unreadable].astype(str).tolist()), name,
                     rows[dates.unreadable].tolist())
    if dates.implausible.any():
        report.error(src, f"expected a date between {PLAUSIBLE_YEARS[0]} and {PLAUSIBLE_YEARS[1]}; got "
                     f"{examples(column[dates.implausible].astype(str).tolist())}", name,
                     rows[dates.implausible].tolist())
    return dates.values


def unreadable_dates(form: str, cells: list[str]) -> str:
    """The error of a column's unreadable date ``cells`` (read in ``form``), saying why when a zone is the cause."""
    why = zone_problem(cells)
    return f"expected a date ({form_name(form)}); got {examples(cells)}" + (f": {why}" if why else "")


def form_name(form: str) -> str:
    return {"ISO8601": "ISO 8601, such as 2025-03-31 or 2025-03-31T14:05:00", "month": "month first, such as 3/31/2025",
            "day": "day first, such as 31.03.2025 or 31/03/2025", "excel serial": "an Excel date",
            "named day": "such as 31-Mar-2025", "named month": "such as Mar 31, 2025",
            ISO_HALF_DAY: "ISO 8601 with a 12-hour time, such as 2025-03-31 2:05:00 PM",
            "unix time": "Unix time, seconds or milliseconds since 1970"}.get(
        form, f"in the format {form!r}")
