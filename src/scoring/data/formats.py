"""Reading dates and numbers as CRMs write them, column by column.

Dates: each column is read in one format, detected from its own cells when that is unambiguous: ISO 8601
(``2026-03-25``, ``2026-03-25T20:48:00Z``), US ``3/25/2026`` with or without a time (``3/25/2026 8:48 PM``,
``3/25/2026 20:48``), European ``25.03.2026`` (with an optional time), and Excel serial day numbers (from
``.xlsx`` files). A column of slashed dates whose days never pass 12 (``03/04/2026``) could be read either way:
it is refused with both readings shown, unless the config declares the order (``date_format`` for all
columns, or ``[date_formats]`` per column: a strftime format, or ``"month-first"`` / ``"day-first"``).

Numbers: thousands separators, currency symbols and codes, spaces and decimal commas, by a declared locale
(``number_format = "1,234.56"`` or ``"1.234,56"``) or one detected from the column (a comma followed by
exactly three digits is a thousands separator unless a dot follows it; ``14,5`` is a decimal comma).
"""
from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

#: Dates outside these years are taken for mistakes (Excel serials read as text, "9999-12-31" placeholders).
PLAUSIBLE_YEARS = (1970, 2100)
#: Excel's day 0 (its serial day numbers count from here, with the 1900 leap-year bug folded in).
EXCEL_EPOCH = pd.Timestamp("1899-12-30")
#: Serial day numbers this side of PLAUSIBLE_YEARS are read as Excel dates in Excel files.
_SERIALS = ((pd.Timestamp(f"{PLAUSIBLE_YEARS[0]}-01-01") - EXCEL_EPOCH).days,
            (pd.Timestamp(f"{PLAUSIBLE_YEARS[1] + 1}-01-01") - EXCEL_EPOCH).days)

_ISO = re.compile(r"^\d{4}-\d{1,2}-\d{1,2}([ T]\d{1,2}:\d{2}(:\d{2}(\.\d+)?)?)?(Z|[+-]\d{2}:?\d{2})?$")
_SLASH = re.compile(r"^(\d{1,2})/(\d{1,2})/(\d{4})(?:[ T](\d{1,2}):(\d{2})(?::(\d{2}))?\s*([AaPp][Mm])?)?$")
_DOTTED = re.compile(r"^(\d{1,2})\.(\d{1,2})\.(\d{4})(?:[ T](\d{1,2}):(\d{2})(?::(\d{2}))?)?$")
_SERIAL = re.compile(r"^\d{5}(\.\d+)?$")
#: The names a config may give an order of slashed dates.
ORDERS = {"month-first": "month", "day-first": "day", "%m/%d/%Y": "month", "%d/%m/%Y": "day"}


class AmbiguousDates(ValueError):
    """A column of dates that reads two ways; ``readings`` shows an example cell both ways."""

    def __init__(self, example: str, readings: tuple[str, str]) -> None:
        super().__init__(f"dates such as {example!r} read two ways ({readings[0]} if month first, {readings[1]} if "
                         "day first); declare the order in the config: date_format = \"month-first\" or "
                         "\"day-first\" (or per column under [date_formats])")
        self.example, self.readings = example, readings


@dataclass(frozen=True)
class ParsedDates:
    """A column read as dates: naive UTC datetimes (NaT where missing or unreadable), the unreadable cells,
    the cells outside the plausible years, and the format that was used."""

    values: pd.Series
    unreadable: pd.Series
    implausible: pd.Series
    form: str


def parse_dates(series: pd.Series, declared: str | None = None, excel: bool = False) -> ParsedDates:
    """Read a column of dates in one format: ``declared`` (a strftime format, ``"month-first"``, ``"day-first"``,
    ``"ISO8601"`` or ``"mixed"``), else the one its cells show. Raises :class:`AmbiguousDates`."""
    if pd.api.types.is_datetime64_any_dtype(series):
        values = pd.to_datetime(series, utc=True)
        present, form = series.notna(), "datetime"
    elif pd.api.types.is_numeric_dtype(series) and excel:
        values, present, form = _serials(pd.to_numeric(series, errors="coerce")), series.notna(), "excel serial"
    else:
        text = series.astype("str").str.strip()
        text = text.mask(series.isna() | (text == "") | text.isin(["nan", "NaT", "None"]))
        present = text.notna()
        form = _detect(text[present], declared, excel)
        values = _read(text, form)
    values = values.dt.tz_convert(None).astype("datetime64[us]")
    years = values.dt.year
    implausible = values.notna() & ((years < PLAUSIBLE_YEARS[0]) | (years > PLAUSIBLE_YEARS[1]))
    unreadable = present & values.isna()
    return ParsedDates(values.mask(implausible), unreadable, implausible, form)


def _detect(text: pd.Series, declared: str | None, excel: bool) -> str:
    if declared:
        return ORDERS.get(declared, declared)
    if text.empty:
        return "ISO8601"
    sample = text.iloc[:: max(1, len(text) // 2000)]  # every cell of a small column, 2,000 of a large one
    if sample.str.match(_ISO).mean() > 0.5:
        return "ISO8601"
    if excel and sample.str.match(_SERIAL).mean() > 0.5:
        return "excel serial"
    if sample.str.match(_DOTTED).mean() > 0.5:
        return "day"  # 25.03.2026: dotted dates are day first wherever they are written
    parts = text.str.extract(_SLASH)
    if parts[0].notna().mean() > 0.5:
        first, second = pd.to_numeric(parts[0]), pd.to_numeric(parts[1])
        if (first > 12).any() and not (second > 12).any():
            return "day"
        if (second > 12).any() and not (first > 12).any():
            return "month"
        if not (first > 12).any() and not (second > 12).any():
            example = text[parts[0].notna()].iloc[0]
            m = parts.loc[parts[0].notna()].iloc[0]
            readings = (f"{m[2]}-{int(m[0]):02d}-{int(m[1]):02d}", f"{m[2]}-{int(m[1]):02d}-{int(m[0]):02d}")
            raise AmbiguousDates(example, readings)
        return "month"  # both sides pass 12 somewhere: a mess either way; read month first, the bad cells show
    return "ISO8601"


def _read(text: pd.Series, form: str) -> pd.Series:
    if form == "excel serial":
        return _serials(pd.to_numeric(text, errors="coerce"))
    if form in ("month", "day"):
        pattern = _DOTTED if text.str.contains(".", regex=False).mean() > 0.5 and form == "day" else _SLASH
        parts = text.str.extract(pattern)
        month, day = (parts[0], parts[1]) if form == "month" else (parts[1], parts[0])
        hour = pd.to_numeric(parts[3]).fillna(0)
        if pattern is _SLASH:
            half = parts[6].str.lower()
            hour = hour.where(half.isna(), (hour % 12) + np.where(half == "pm", 12, 0))
        frame = pd.DataFrame({"year": pd.to_numeric(parts[2]), "month": pd.to_numeric(month),
                              "day": pd.to_numeric(day), "hour": hour, "minute": pd.to_numeric(parts[4]).fillna(0),
                              "second": pd.to_numeric(parts[5]).fillna(0)})
        return pd.to_datetime(frame, errors="coerce", utc=True)
    return pd.to_datetime(text, format=form, errors="coerce", utc=True)


def _serials(numbers: pd.Series) -> pd.Series:
    inside = (numbers >= _SERIALS[0]) & (numbers < _SERIALS[1])
    days = pd.to_timedelta(numbers.where(inside), unit="D")
    return (EXCEL_EPOCH + days).dt.tz_localize("UTC")


_CURRENCY = re.compile(r"[$€£¥₹]|\b(?:USD|EUR|GBP|CHF|CAD|AUD|JPY|INR|SEK|NOK|DKK)\b", re.IGNORECASE)
_US = re.compile(r"^-?\d{1,3}(,\d{3})+(\.\d+)?$")
_EU = re.compile(r"^-?\d{1,3}(\.\d{3})+(,\d+)?$|^-?\d+,\d+$")
#: The names a config may give a number format.
NUMBER_FORMATS = {"1,234.56": "dot", "1.234,56": "comma", "1 234,56": "comma"}


def parse_numbers(series: pd.Series, declared: str | None = None) -> tuple[pd.Series, pd.Series]:
    """Read a column of numbers written with thousands separators, currency signs or decimal commas; also the
    mask of cells present but unreadable."""
    if pd.api.types.is_numeric_dtype(series):
        values = pd.to_numeric(series, errors="coerce").astype(float)
        return values, pd.Series(False, index=series.index)
    text = series.astype("str").str.strip()
    text = text.mask(series.isna() | (text == ""))
    present = text.notna()
    plain = pd.to_numeric(text, errors="coerce")
    if declared is None and plain[present].notna().all():
        return plain.astype(float), pd.Series(False, index=series.index)
    cleaned = text.str.replace(_CURRENCY, "", regex=True).str.replace(r"[\s\u00a0\u202f']", "", regex=True)
    cleaned = cleaned.str.replace(r"^\((.*)\)$", r"-\1", regex=True)  # accounting negatives: (1,200.00)
    decimal = NUMBER_FORMATS.get(declared or "", declared) or _decimal_mark(cleaned[present])
    if decimal == "comma":
        cleaned = cleaned.str.replace(".", "", regex=False).str.replace(",", ".", regex=False)
    else:
        cleaned = cleaned.str.replace(",", "", regex=False)
    values = pd.to_numeric(cleaned, errors="coerce").astype(float)
    return values, present & values.isna()


def _decimal_mark(text: pd.Series) -> str:
    """'comma' when the column is written the European way, else 'dot'."""
    eu, us = text.str.match(_EU).sum(), text.str.match(_US).sum()
    return "comma" if eu > us else "dot"


def declared_format(formats: Mapping[str, str], column: str, default: str | None) -> str | None:
    """The date format the config declares for ``column`` (``[date_formats]``), else its ``date_format``."""
    return formats.get(column, default)
