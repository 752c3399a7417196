"""Reading dates and numbers as CRMs write them, column by column.

Dates: each column is read in one format, detected from its own cells when that is unambiguous: ISO 8601
(``2026-03-25``, ``2026-03-25T20:48:00Z``, ``2026-03-25 20:48:00 UTC``, ``2026-03-25 08:48:00 PM``), US
``3/25/2026`` with or without a time (``3/25/2026 8:48 PM``, ``3/25/2026 20:48``, ``3/25/2026, 8:48 PM`` as locale
formats with a comma write it), European ``25.03.2026`` (with an optional time; both with two-digit years too,
``3/25/26``), the month by name (``05-Jan-2024``, ``5 Jan 24``, ``Jan 5, 2024 3:07 PM``; English, German, French or
Spanish names), and Excel serial day numbers (from ``.xlsx`` files). A zone after the time is converted to UTC, as
an offset (``-05:00``, ``UTC+1``, ``GMT-0500``, JavaScript's ``GMT+0530 (India Standard Time)``) or one of the
abbreviations of a single offset (``EST``, ``PDT``, ``CET``, ``CEST``, ...: :data:`ZONES`); abbreviations of several
zones (``CST``: US Central or China; ``IST``: India, Ireland or Israel; ``BST``) are unreadable, and the error says
why. A column of slashed dates whose days never pass 12
(``03/04/2026``) could be read either way: it is refused with both readings shown, unless the config declares the
order (``date_format`` for all columns, or ``[date_formats]`` per column: a strftime format, or ``"month-first"`` /
``"day-first"``).

Numbers: thousands separators, currency symbols and codes, spaces and decimal commas (and in features a trailing
percent sign: ``15%`` is 15), by a declared locale
(``number_format = "1,234.56"`` or ``"1.234,56"``) or one detected from the column (a comma followed by
exactly three digits is a thousands separator unless a dot follows it; ``14,5`` is a decimal comma; dots grouping
whole numbers by threes, ``14.300`` beside ``950``, are thousands separators: :func:`dotted_thousands`).
"""
from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

#: Cells that stand for nothing, in files (CSV and workbooks alike) and in the text of deals sent to score: blank,
#: spreadsheets' and databases' markers, and the dashes reports and CRM views show for an empty field (``-`` to
#: ``---``). ``NA`` is not among them: it is a region (North America).
NA_VALUES = ["", "NULL", "null", "NaN", "nan", "N/A", "n/a", "#N/A", "-", "--", "---", "\u2013", "\u2014"]
MISSING_TEXT = frozenset(NA_VALUES)
#: A number's cell, its currency and spaces taken away, that is only dashes: Excel's accounting format writes a
#: zero so ("$ -"), a report an empty value.
_DASHES = re.compile(r"^[-\u2013\u2014]+$")
#: Dates outside these years are taken for mistakes (Excel serials read as text, "9999-12-31" placeholders).
PLAUSIBLE_YEARS = (1970, 2100)
#: Excel's day 0 (its serial day numbers count from here, with the 1900 leap-year bug folded in).
EXCEL_EPOCH = pd.Timestamp("1899-12-30")
#: Serial day numbers this side of PLAUSIBLE_YEARS are read as Excel dates in Excel files.
_SERIALS = ((pd.Timestamp(f"{PLAUSIBLE_YEARS[0]}-01-01") - EXCEL_EPOCH).days,
            (pd.Timestamp(f"{PLAUSIBLE_YEARS[1] + 1}-01-01") - EXCEL_EPOCH).days)

_ISO = re.compile(r"^\d{4}-\d{1,2}-\d{1,2}([ T]\d{1,2}:\d{2}(:\d{2}(\.\d+)?)?)?(Z|[+-]\d{2}:?\d{2})?$")
#: ISO dates with a 12-hour time (Close's "excel" date format, Excel's en-CA long times): ``2024-01-05 10:22:31 AM``;
#: a date alone beside them.
_ISO_HALF_DAY = re.compile(r"^(\d{4})-(\d{1,2})-(\d{1,2})(?:[ T](\d{1,2}):(\d{2})(?::(\d{2}))?\s*([AaPp][Mm]))?$")
#: Month and day first or day and month first, by slashes or (Dutch, Indian and Zoho's own formats) dashes: the
#: column's days past 12 tell the order.
_SLASH = re.compile(r"^(\d{1,2})[/-](\d{1,2})[/-](\d{4}|\d{2})(?:,?[ T](\d{1,2}):(\d{2})(?::(\d{2}))?\s*([AaPp][Mm])?)?$")
_DOTTED = re.compile(r"^(\d{1,2})\.(\d{1,2})\.(\d{4}|\d{2})(?:,?[ T](\d{1,2}):(\d{2})(?::(\d{2}))?)?$")
_SERIAL = re.compile(r"^\d{5}(\.\d+)?$")
#: Unix time, as data pulled through a CRM's API writes it: seconds (9-10 digits from 1973 on) or milliseconds
#: (12-13 digits; HubSpot's legacy API, JavaScript's Date.now()).
UNIX_TIME = re.compile(r"^(\d{9,10}|\d{12,13})(\.\d+)?$")
#: The numbers read as Unix time: seconds, then milliseconds.
UNIX_RANGES = ((1e8, 1e10), (1e11, 1e13))
#: A Unix time at or past this many seconds is in milliseconds (1e11 seconds is in the year 5138).
_EPOCH_MS = 1e11
#: Dates written without separators, as SAP and database dumps write them: ``20260325``, ``20260325143000``.
COMPACT_DATES = {"%Y%m%d": re.compile(r"^(19|20)\d{2}(0[1-9]|1[0-2])(0[1-9]|[12]\d|3[01])$"),
                 "%Y%m%d%H%M%S": re.compile(r"^(19|20)\d{2}(0[1-9]|1[0-2])(0[1-9]|[12]\d|3[01])([01]\d|2[0-3])[0-5]\d[0-5]\d$")}
#: Dates with the month's name, as spreadsheets (``05-Jan-2024``, ``5 Jan 24``) and US reports (``Jan 5, 2024``,
#: ``January 5, 2024 3:07 PM``) write them: day first, or month first; after a weekday or not (Excel's long date,
#: ``Monday, March 31, 2025``; e-mail's and HTTP's ``Mon, 31 Mar 2025 14:05:00 GMT``).
_TIME = r"(?:[ T,]+(\d{1,2}):(\d{2})(?::(\d{2}))?\s*([AaPp][Mm])?)?"
_WEEKDAY = r"(?:[A-Za-zÀ-ÿ]{2,10}\.?,?\s+)?"
_NAMED_DAY = re.compile(r"^" + _WEEKDAY + r"(\d{1,2})[-\s/.]+([A-Za-zÀ-ÿ]{3,10})\.?[-\s/.,]+(\d{4}|\d{2})" + _TIME + "$")
_NAMED_MONTH = re.compile(r"^" + _WEEKDAY + r"([A-Za-zÀ-ÿ]{3,10})\.?\s+(\d{1,2})(?:st|nd|rd|th)?,?\s+(\d{4})" + _TIME + "$")
#: Month names and their cuts, in English, German, French and Spanish (lower case, without a dot).
_MONTHS = {name: number for number, names in enumerate((
    "january jan janvier janv enero ene januar jän", "february feb febrero februar févr fevr février",
    "march mar mars marzo märz mär mrz", "april apr avril avr abril abr", "may mai mayo",
    "june jun juni juin junio", "july jul juli juillet juil julio", "august aug août aout agosto ago",
    "september sep sept septembre septiembre set", "october oct oktober okt octobre octubre",
    "november nov novembre noviembre", "december dec dezember dez décembre déc decembre diciembre dic"), start=1)
    for name in names.split()}
#: Zone abbreviations that name one offset from UTC (hours), as US and European exports and reports write them.
ZONES = {"UTC": 0.0, "GMT": 0.0, "WET": 0.0, "WEST": 1.0, "CET": 1.0, "CEST": 2.0, "MET": 1.0, "MEST": 2.0,
         "EET": 2.0, "EEST": 3.0, "MSK": 3.0, "EST": -5.0, "EDT": -4.0, "CDT": -5.0, "MST": -7.0, "MDT": -6.0,
         "PST": -8.0, "PDT": -7.0, "AKST": -9.0, "AKDT": -8.0, "HST": -10.0, "JST": 9.0, "KST": 9.0, "HKT": 8.0,
         "SGT": 8.0, "AWST": 8.0, "ACST": 9.5, "ACDT": 10.5, "AEST": 10.0, "AEDT": 11.0, "NZST": 12.0, "NZDT": 13.0}
#: Abbreviations of several zones: refused, naming them.
AMBIGUOUS_ZONES = {"CST": "US Central (-06:00), China (+08:00) or Cuba", "IST": "India (+05:30), Ireland (+01:00) "
                   "or Israel (+02:00)", "BST": "British Summer (+01:00) or Bangladesh (+06:00)",
                   "AST": "Atlantic (-04:00) or Arabia (+03:00)"}
#: A zone after a date's time (after its last digit, or AM/PM, kept in group ``k``): an abbreviation, UTC/GMT with
#: an offset (``UTC+1``, ``GMT-05:00``), or an offset of hours and minutes after a space (e-mail's and RFC 2822's
#: ``Tue, 25 Mar 2025 10:00:00 +0100``, ``3/25/2026 8:48 PM -05:00``); ``AM``/``PM`` and an offset written on to the
#: time (``10:00-05:00``, as ISO 8601 writes it) are not zones here. Written for pyarrow's RE2 (no look-behind).
_ZONE = re.compile(r"(?P<k>[\dAaPp][\dMm])\s*(?:\b(?:UTC|GMT)\s*(?P<offset>[+-]\d{1,2}(?::?\d{2})?)"
                   r"|\s(?P<name>[A-Z]{3,4})|\s(?P<bare>[+-](?:[01]\d|2[0-3]):?[0-5]\d))$")
#: The zone's name JavaScript's ``Date.toString()`` writes after the offset, dropped before reading the date:
#: ``Tue Oct 31 2023 19:35:00 GMT+0530 (India Standard Time)``.
_ZONE_NAME = re.compile(r"((?:UTC|GMT)[+-]\d{2}:?\d{2})\s*\([^()]*\)$")
#: The form of ISO dates with a 12-hour time (:data:`_ISO_HALF_DAY`), as a column's found format is kept.
ISO_HALF_DAY = "ISO8601 12-hour"
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
    epoch = pd.api.types.is_numeric_dtype(series) and looks_like_epoch(series)
    if pd.api.types.is_datetime64_any_dtype(series):
        values = pd.to_datetime(series, utc=True)
        present, form = series.notna(), "datetime"
    elif epoch or (pd.api.types.is_numeric_dtype(series) and excel):
        numbers = pd.to_numeric(series, errors="coerce")
        form = "unix time" if epoch else "excel serial"
        values, present = (_epoch(numbers) if epoch else _serials(numbers)), series.notna()
    else:
        text = series.astype("str").str.strip()
        text = text.mask(series.isna() | (text == "") | text.isin(["nan", "NaT", "None"]))
        text, hours = _zones(text)  # "2024-01-05 10:07:00 UTC", "3/25/2026 8:48 PM EST"
        present = text.notna()
        form, parts = _detect(text, present, declared, excel)
        values = _read(text, form, parts)
        if hours is not None:  # the time was local to its zone: UTC is that much earlier or later; a zone of no
            # one offset (inf) leaves the cell unreadable
            shift = pd.to_timedelta(hours.where(np.isfinite(hours), 0.0), unit="h")
            values = (values - shift).mask(np.isinf(hours))
    values = values.dt.tz_convert(None).astype("datetime64[us]")
    years = values.dt.year
    implausible = values.notna() & ((years < PLAUSIBLE_YEARS[0]) | (years > PLAUSIBLE_YEARS[1]))
    unreadable = present & values.isna()
    return ParsedDates(values.mask(implausible), unreadable, implausible, form)


def _zones(text: pd.Series) -> tuple[pd.Series, pd.Series | None]:
    """The cells without a zone written after their time, and each cell's zone as hours from UTC (NaN: none
    written; inf: not one offset, :data:`AMBIGUOUS_ZONES` or an unknown abbreviation, so the cell is unreadable;
    None when no cell has a zone). The cells' format is then told by their dates alone. By pyarrow (a cell at a
    time in Python costs some 5 us)."""
    strings = _arrow_strings(text)
    if not pc.any(pc.match_substring_regex(strings, r"\s[A-Z]{3,4}$|UTC|GMT|\s[+-]\d\d:?\d\d$")).as_py():
        return text, None
    if pc.any(pc.match_substring_regex(strings, _ZONE_NAME.pattern)).as_py():
        strings = pc.replace_substring_regex(strings, _ZONE_NAME.pattern, r"\1")
        text = pd.Series(strings.to_numpy(zero_copy_only=False), index=text.index)
    found = pc.extract_regex(strings, _ZONE.pattern)
    hours = _looked_up(pc.struct_field(found, "offset"), _offset_hours)
    hours = np.where(np.isnan(hours), _looked_up(pc.struct_field(found, "bare"), _offset_hours), hours)
    named = _looked_up(pc.struct_field(found, "name"), lambda name: ZONES.get(name, math.inf))
    hours = np.where(np.isnan(hours), named, hours)
    zoned = ~np.isnan(hours)
    if not zoned.any():
        return text, None
    stripped = pc.replace_substring_regex(strings, _ZONE.pattern, r"\1").to_numpy(zero_copy_only=False)
    return text.where(~zoned, pd.Series(stripped, index=text.index)), pd.Series(hours, index=text.index)


def _looked_up(values: pa.ChunkedArray, value: Callable[[str], float]) -> np.ndarray:
    """``value`` of each distinct text of ``values`` (NaN where missing or empty), per cell."""
    encoded = pc.dictionary_encode(values).combine_chunks()
    table = np.array([value(v) if v else math.nan for v in encoded.dictionary.to_pylist()] + [math.nan])
    return table[pc.fill_null(encoded.indices, len(table) - 1).to_numpy()]


def _offset_hours(offset: str) -> float:
    """``+1``, ``-05:00``, ``+0530`` as hours."""
    digits = offset[1:].replace(":", "")
    hours, minutes = (digits, "0") if len(digits) <= 2 else (digits[:-2], digits[-2:])
    return (1.0 if offset[0] == "+" else -1.0) * (int(hours) + int(minutes) / 60)


def zone_problem(cells: list[str]) -> str | None:
    """Why cells ending in a zone abbreviation are unreadable, when they do: it names several zones, or none
    this reader knows."""
    for cell in cells:
        match = _ZONE.search(cell)
        zone = match.group("name") if match else None
        if zone in AMBIGUOUS_ZONES:
            return (f"{zone} names several time zones ({AMBIGUOUS_ZONES[zone]}): export the dates in UTC or with "
                    "their offset (2026-03-25 20:48 -06:00)")
        if zone and zone not in ZONES:
            return (f"{zone} is not a time zone abbreviation of one offset known here: export the dates in UTC or "
                    "with their offset (2026-03-25 20:48 -06:00)")
    return None


def _detect(text: pd.Series, present: pd.Series, declared: str | None,
            excel: bool) -> tuple[str, pd.DataFrame | None]:
    """The column's format, and its slashed dates' parts when they were taken apart to decide the order."""
    if declared:
        return ORDERS.get(declared, declared), None
    given = text[present]
    if given.empty:
        return "ISO8601", None
    sample = given.iloc[:: max(1, len(given) // 2000)]  # every cell of a small column, 2,000 of a large one
    if sample.str.match(_ISO_HALF_DAY.pattern).mean() > 0.5 and sample.str.contains(r"\d\s*[AaPp][Mm]$").any():
        return ISO_HALF_DAY, None
    if sample.str.match(_ISO.pattern).mean() > 0.5:
        return "ISO8601", None
    if excel and sample.str.match(_SERIAL.pattern).mean() > 0.5:
        return "excel serial", None
    if sample.str.match(UNIX_TIME.pattern).mean() > 0.5:
        return "unix time", None
    for form, pattern in COMPACT_DATES.items():
        if sample.str.match(pattern.pattern).mean() > 0.5:
            return form, None
    if sample.str.match(_DOTTED.pattern).mean() > 0.5:
        return "day", None  # 25.03.2026: dotted dates are day first wherever they are written
    if sample.str.match(_SLASH.pattern).mean() > 0.5:
        parts = _extract(text, _SLASH)  # every cell: one day past 12 anywhere settles the order
        first, second = parts[0], parts[1]
        if (first > 12).any() and not (second > 12).any():
            return "day", parts
        if (second > 12).any() and not (first > 12).any():
            return "month", parts
        if not (first > 12).any() and not (second > 12).any():
            example = text[parts[0].notna()].iloc[0]
            m = parts.loc[parts[0].notna()].iloc[0]
            year = int(_full_years(pd.Series([m[2]])).iloc[0])
            readings = (f"{year}-{int(m[0]):02d}-{int(m[1]):02d}", f"{year}-{int(m[1]):02d}-{int(m[0]):02d}")
            raise AmbiguousDates(example, readings)
        return "month", parts  # both sides pass 12 somewhere: a mess; read month first, the bad cells show
    for form, pattern in (("named day", _NAMED_DAY), ("named month", _NAMED_MONTH)):
        if sample.str.match(pattern.pattern).mean() > 0.5:
            return form, None
    return "ISO8601", None


def looks_like_dates(text: pd.Series) -> bool:
    """Whether most of a sample of the cells are dates in a format :func:`parse_dates` reads (Unix time: every
    cell of the sample)."""
    sample = text.dropna().astype("str").str.strip()
    sample = sample.iloc[:: max(1, len(sample) // 500)]
    if sample.empty:
        return False
    sample = _zones(sample)[0].astype("str")  # "2023-10-31 19:35:00 UTC", "... GMT+0530": dates whatever the zone
    patterns = (_ISO, _ISO_HALF_DAY, _SLASH, _DOTTED, _NAMED_DAY, _NAMED_MONTH, *COMPACT_DATES.values())
    return bool(max(sample.str.match(p.pattern).mean() for p in patterns) > 0.9) or looks_like_epoch(sample)


def looks_like_epoch(values: pd.Series) -> bool:
    """Whether every cell given is a Unix time (:data:`UNIX_TIME`) within the plausible years."""
    given = values.dropna()
    if given.empty:
        return False
    if not pd.api.types.is_numeric_dtype(given):
        given = given.astype("str").str.strip()
        if not given.str.match(UNIX_TIME.pattern).all():
            return False
    numbers = pd.to_numeric(given, errors="coerce")
    if not np.logical_or.reduce([(numbers >= low) & (numbers < high) for low, high in UNIX_RANGES]).all():
        return False  # the digits UNIX_TIME reads (an Excel serial's five are not seconds since 1970)
    stamps = _epoch(numbers)
    return bool(stamps.notna().all() and stamps.dt.year.between(*PLAUSIBLE_YEARS).all())


def _epoch(numbers: pd.Series) -> pd.Series:
    """Unix times, in seconds or (from :data:`_EPOCH_MS` on) milliseconds, as UTC datetimes."""
    seconds = numbers.where(numbers < _EPOCH_MS, numbers / 1000.0)
    return pd.to_datetime(seconds.where(seconds.abs() < 2 ** 33), unit="s", utc=True, errors="coerce")


def _read(text: pd.Series, form: str, parts: pd.DataFrame | None = None) -> pd.Series:
    if form == "excel serial":
        return _serials(pd.to_numeric(text, errors="coerce"))
    if form == "unix time":
        return _epoch(pd.to_numeric(text, errors="coerce"))
    if form in ("named day", "named month"):
        return _named(text, form)
    if form == ISO_HALF_DAY:
        parts = _extract(text, _ISO_HALF_DAY)
        return _stamps(pd.DataFrame({2: parts[0], 3: parts[3], 4: parts[4], 5: parts[5], 6: parts[6]}),
                       parts[1], parts[2])
    if form in ("month", "day"):
        given = text.dropna()  # a mostly blank column (close dates of open deals only) is read by its dates
        pattern = _DOTTED if form == "day" and given.str.contains(".", regex=False).mean() > 0.5 else _SLASH
        if parts is None or pattern is not _SLASH:
            parts = _extract(text, pattern)
        month, day = (parts[0], parts[1]) if form == "month" else (parts[1], parts[0])
        return _stamps(parts, month, day, half_day=pattern is _SLASH)
    return pd.to_datetime(text, format=form, errors="coerce", utc=True)


def _stamps(parts: pd.DataFrame, month: pd.Series, day: pd.Series, half_day: bool = True) -> pd.Series:
    """UTC datetimes of dates taken apart (``parts``: 2 the year, 3-5 the hour, minute and second, 6 AM or PM
    when ``half_day``) and their ``month`` and ``day``."""
    hour = parts[3].fillna(0)
    if half_day:
        half = parts[6].astype(object).str.lower()
        hour = hour.where(half.isna(), (hour % 12) + np.where(half == "pm", 12, 0))
    return _from_parts(pd.DataFrame({"year": _full_years(parts[2]), "month": month, "day": day, "hour": hour,
                                     "minute": parts[4].fillna(0), "second": parts[5].fillna(0)}))


def _full_years(years: pd.Series) -> pd.Series:
    """Two-digit years as strptime reads them (69-99: 1969-1999, 00-68: 2000-2068); others as they are."""
    return years.where(years >= 100, years + np.where(years < 69, 2000, 1900))


def _named(text: pd.Series, form: str) -> pd.Series:
    """Dates with the month's name (:data:`_NAMED_DAY`, :data:`_NAMED_MONTH`); a two-digit year is of 1969-2068,
    as strptime reads it; an unknown name is unreadable."""
    parts = _extract(text, _NAMED_DAY if form == "named day" else _NAMED_MONTH)
    day, name = (parts[0], parts[1]) if form == "named day" else (parts[1], parts[0])
    names = name.astype(object).str.lower().str.rstrip(".")
    return _stamps(parts, names.map(_MONTHS).astype(float), day)


def _from_parts(parts: pd.DataFrame) -> pd.Series:
    """UTC datetimes from float columns year, month, day, hour, minute, second (NaT where any date part is
    missing or out of range: no 30 February rolls into March), several times faster than pandas' own."""
    year, month, day = (parts[c].to_numpy(dtype=float) for c in ("year", "month", "day"))
    seconds = (parts["hour"].to_numpy(dtype=float) * 3600 + parts["minute"].to_numpy(dtype=float) * 60
               + parts["second"].to_numpy(dtype=float))
    ok = ~(np.isnan(year) | np.isnan(month) | np.isnan(day)) & (month >= 1) & (month <= 12) & (day >= 1) & (day <= 31)
    ok &= (seconds >= 0) & (seconds < 86400)
    months = np.where(ok, (year - 1970) * 12 + month - 1, 0).astype(np.int64).astype("datetime64[M]")
    dates = months.astype("datetime64[D]") + np.where(ok, day - 1, 0).astype("timedelta64[D]")
    ok &= dates.astype("datetime64[M]") == months  # the day exists in that month
    stamps = dates.astype("datetime64[us]") + np.where(ok, seconds * 1e6, 0).astype("timedelta64[us]")
    return pd.Series(np.where(ok, stamps, np.datetime64("NaT")), index=parts.index).dt.tz_localize("UTC")


def _extract(text: pd.Series, pattern: re.Pattern[str]) -> pd.DataFrame:
    """``text.str.extract(pattern)`` by pyarrow's RE2, each group of digits as a float (NaN when absent), others
    as text (pandas extracts cell by cell in Python, and turning the text into numbers is as slow again)."""
    counter = iter(range(99))
    named = re.sub(r"\((?!\?)", lambda _: f"(?P<g{next(counter)}>", pattern.pattern)
    found = pc.extract_regex(_arrow_strings(text), named)
    columns: dict[int, object] = {}
    for field in found.type.fields if hasattr(found.type, "fields") else found.type:
        values = pc.struct_field(found, field.name)
        values = pc.if_else(pc.equal(values, ""), pa.scalar(None, pa.string()), values)
        digits = pc.all(pc.match_substring_regex(values.drop_null(), r"^\d+$")).as_py() is not False
        columns[int(field.name[1:])] = (pc.cast(values, pa.float64()).to_numpy() if digits
                                        else values.to_numpy())
    return pd.DataFrame(columns, index=text.index)


def _arrow_strings(text: pd.Series) -> pa.ChunkedArray:
    """A column of text (None where missing) as pyarrow strings."""
    try:  # pandas' text columns are Arrow strings already: no copy
        return pa.chunked_array(pa.array(text.array)).cast(pa.string())
    except (TypeError, pa.ArrowInvalid):
        return pa.chunked_array([pa.array(text.to_numpy(dtype=object, na_value=None), type=pa.string())])


def _serials(numbers: pd.Series) -> pd.Series:
    inside = (numbers >= _SERIALS[0]) & (numbers < _SERIALS[1])
    days = pd.to_timedelta(numbers.where(inside), unit="D")
    return (EXCEL_EPOCH + days).dt.tz_localize("UTC")


#: A currency sign or code in a written amount (one group), and the codes of the signs.
CURRENCY_MARK = r"([$€£¥₹]|\b(?:USD|EUR|GBP|CHF|CAD|AUD|JPY|INR|SEK|NOK|DKK)\b)"
CURRENCY_SIGNS = {"$": "USD", "€": "EUR", "£": "GBP", "¥": "JPY", "₹": "INR"}
_CURRENCY = re.compile(CURRENCY_MARK, re.IGNORECASE)
_US = re.compile(r"^-?\d{1,3}(,\d{3})+(\.\d+)?$")
_GROUPED = re.compile(r"-?[1-9]\d{0,2}(\.\d{3})+")
_EU = re.compile(r"^-?\d{1,3}(\.\d{3})+(,\d+)?$|^-?\d+,\d+$")
#: The names a config may give a number format.
NUMBER_FORMATS = {"1,234.56": "dot", "1.234,56": "comma", "1 234,56": "comma"}


def parse_numbers(series: pd.Series, declared: str | None = None, percent: bool = False, found: str | None = None
                  ) -> tuple[pd.Series, pd.Series]:
    """Read a column of numbers written with thousands separators, currency signs or decimal commas (and, with
    ``percent``, a trailing percent sign, read as written: ``15%`` is 15, as a "(%)" column's 15 is); also the
    mask of cells present but unreadable (``inf`` among them). ``declared``: the format to read (else each
    column's own); ``found``: the format of the export the column comes with, for a column that does not tell
    (:func:`dotted_thousands`)."""
    if pd.api.types.is_numeric_dtype(series):
        values = _finite(pd.to_numeric(series, errors="coerce"))
        return values, series.notna() & values.isna()
    text = series.astype("str").str.strip()
    text = text.mask(series.isna() | text.isin(MISSING_TEXT))
    present = text.notna()
    plain = _finite(pd.to_numeric(text, errors="coerce"))
    all_plain = declared is None and bool(plain[present].notna().all())
    thousands = all_plain and dotted_thousands(text[present], found)
    if all_plain and not thousands:
        return plain.astype(float), pd.Series(False, index=series.index)
    cleaned = _cleaned(text, percent)
    present &= ~cleaned.str.match(_DASHES).fillna(False).astype(bool)  # "$ -": nothing (blank), not unreadable
    decimal = ("comma" if thousands else NUMBER_FORMATS.get(declared or "", declared)
               or _decimal_mark(cleaned[present]))
    if decimal == "comma":
        cleaned = cleaned.str.replace(".", "", regex=False).str.replace(",", ".", regex=False)
    else:
        cleaned = cleaned.str.replace(",", "", regex=False)
    values = _finite(pd.to_numeric(cleaned, errors="coerce"))
    return values, present & values.isna()


def _finite(values: pd.Series) -> pd.Series:
    """Numbers as floats, NaN where not finite: ``inf``, ``1e400`` and ``-Infinity`` are not numbers a deal has."""
    values = values.astype(float)
    return values.where(np.isfinite(values))


def _cleaned(text: pd.Series, percent: bool) -> pd.Series:
    """Number cells without currency marks and spaces or apostrophes (as thousands separators), an accounting
    negative ``(1,200.00)`` with a minus, and with ``percent`` without a trailing percent sign."""
    cleaned = text.str.replace(_CURRENCY, "", regex=True).str.replace(r"[\s\u00a0\u202f']", "", regex=True)
    cleaned = cleaned.str.replace(r"^\((.*)\)$", r"-\1", regex=True)
    return cleaned.str.replace(r"%$", "", regex=True) if percent else cleaned


def looks_numeric(series: pd.Series, share: float, percent: bool = False) -> bool:
    """Whether at least ``share`` of a sample of the present cells read as numbers (a cheap test before
    :func:`parse_numbers` reads a whole column)."""
    present = series.dropna()
    numbers, unreadable = parse_numbers(present.iloc[:: max(1, len(present) // 500)], percent=percent)
    read = numbers.notna()
    return bool(read.any() and read.sum() / (read | unreadable).sum() >= min(share, 0.9))


def number_format_of(series: pd.Series) -> str | None:
    """The number format a sample of a column's cells shows: ``"1.234,56"`` when they are numbers written the
    European way (a decimal comma, or dots grouping whole numbers by threes: :func:`dotted_thousands`),
    ``"1,234.56"`` when written with US separators or decimals (``14,300``, ``0.5``), None when they do not tell
    (whole numbers alone) or are not numbers."""
    text = series.dropna()
    text = text.iloc[:: max(1, len(text) // 500)].astype(str).str.strip()
    text = text[~text.isin(MISSING_TEXT)]
    text = _cleaned(text, percent=True)
    numbers = text.str.fullmatch(r"-?\d[\d.,]*") & ~text.str.match(_DOTTED)  # not 25.03.2026
    marked = text[numbers & text.str.contains(r"[.,]")]
    if marked.empty or numbers.mean() < 0.9:
        return None
    if _decimal_mark(marked) == "comma" or dotted_thousands(text[numbers]):
        return "1.234,56"
    return "1,234.56"


def dotted_thousands(text: pd.Series, found: str | None = None) -> bool:
    """Whether the dots of a column of numbers that also read as plain decimals (``14.300``, ``950``) are thousands
    separators, as a European export without decimals writes them: every dotted cell is grouped by threes, and
    the export's ``found`` format says so, or else either the cells without a dot are whole numbers under 1,000
    (a writer of decimals writes ``950.000``, or ``14.3``) or most dotted cells end in ``00``, as round amounts
    do (``250.000``; three decimals seldom do)."""
    text = text.dropna().astype(str)
    dotted = text.str.contains(".", regex=False)
    if not dotted.any() or not text[dotted].str.fullmatch(_GROUPED).all():
        return False
    if found is not None:
        return NUMBER_FORMATS[found] == "comma"
    undotted = text[~dotted]
    if len(undotted):
        return bool(undotted.str.fullmatch(r"-?\d{1,3}").all())
    return bool(dotted.sum() >= 5 and text.str.endswith("00").mean() >= 0.5)


def _decimal_mark(text: pd.Series) -> str:
    """'comma' when the column is written the European way, else 'dot'."""
    eu, us = text.str.match(_EU).sum(), text.str.match(_US).sum()
    return "comma" if eu > us else "dot"


def declared_format(formats: Mapping[str, str], column: str, default: str | None) -> str | None:
    """The date format the config declares for ``column`` (``[date_formats]``), else its ``date_format``."""
    return formats.get(column, default)
