"""Reading export files: CSV (optionally gzipped), Parquet or workbooks (and the HTML tables or text some exports
name as workbooks) as text cells, each row numbered as in a spreadsheet (header = row 1) so that every problem can
name the row it was found in."""
from __future__ import annotations

import csv
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TypeAlias

import numpy as np
import pandas as pd

from scoring.data.formats import NA_VALUES, PLAUSIBLE_YEARS
from scoring.data.problems import DataReport
from scoring.errors import DataError

__all__ = ["NA_VALUES", "PLAUSIBLE_YEARS", "ROW", "SHORT", "SOURCE_COLUMN", "TableInput", "is_in", "is_missing", "load_table",
           "read_table"]

#: Spreadsheet row number of each row in its source file (header = row 1).
ROW = "_row"
#: For history rows derived from a wide export (HubSpot "Date entered" columns): the column they came from.
SOURCE_COLUMN = "_source_column"
#: Per row of a CSV file: how many cells it had when fewer than the header's (a short row), else 0.
SHORT = "_short"
#: A CSV file's text encodings, as read (``frame.attrs["encoding"]``), and how a note names the ones not UTF-8.
ENCODINGS = {"utf-16": "UTF-16 (Excel's \"Unicode Text\")",
             "cp1252": "Windows-1252 (Western European: Excel's CSV on Windows, Salesforce's ISO-8859-1 export)"}

TableInput: TypeAlias = str | Path | pd.DataFrame


def is_missing(value: object) -> bool:
    """None, NA, NaT or a float NaN: what pandas' isna says of one value, without its per-call cost."""
    return value is None or value is pd.NA or value is pd.NaT or (isinstance(value, float) and value != value)


def read_table(path: str | Path) -> pd.DataFrame:
    """Read a CSV (optionally gzipped), Parquet or Excel (.xlsx) file, CSV cells as text, adding each row's
    spreadsheet number; blank lines keep their numbers (so a problem names the row a spreadsheet shows) and
    are dropped. A CSV row with fewer cells than the header is marked in ``SHORT`` (its cell count). CSV is
    UTF-8, UTF-16 by its byte-order mark, else Windows-1252 (:func:`_encoding`); separated by commas, semicolons
    or tabs (the header tells: :func:`_csv_header`). A report's title and filter lines above the header (each of
    at most two filled cells) are skipped: ``frame.attrs["header_row"]`` says where the header is."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: file not found")
    name = path.name.lower()
    try:
        if name.endswith((".parquet", ".pq")):
            frame = pd.read_parquet(path)
        elif name.endswith(EXCEL):
            kind = _disguised(path)
            readers = {HTML: _read_html, XML_SPREADSHEET: _read_xml_spreadsheet, DELIMITED: _read_text}
            frame = readers[kind](path) if kind else _read_excel(path)
            if kind:
                frame.attrs["disguised"] = kind
        elif name.endswith(TEXT):
            frame = _read_text(path)
        elif name.endswith(".xml"):  # Excel 2003's XML Spreadsheet under its own name
            if _disguised(path) != XML_SPREADSHEET:
                raise DataError(f"{path}: an XML file that is not an Excel 2003 XML Spreadsheet; export the report as "
                                ".xlsx or CSV")
            frame = _read_xml_spreadsheet(path)
        else:
            raise DataError(f"{path}: unsupported file type; expected .csv (or .tsv, .txt; gzipped too), .parquet, "
                            ".xlsx (or .xls, .xlsm, .xlsb, .ods, an XML Spreadsheet .xml)")
    except UnicodeDecodeError as exc:
        raise DataError(f"{path}: its text cannot be decoded ({exc.reason} at byte {exc.start}); "
                        "export or save the file as UTF-8 CSV") from None
    except (pd.errors.ParserError, pd.errors.EmptyDataError, OSError, ValueError, csv.Error) as exc:
        if isinstance(exc, DataError):
            raise
        raise DataError(f"{path}: cannot be read as a table ({exc})") from None
    if frame.columns.empty:
        raise DataError(f"{path}: the file is empty; expected a header row and one row per deal")
    return _with_rows(frame, int(frame.attrs.get("header_row", 1)))


def _read_text(path: Path) -> pd.DataFrame:
    """A delimited text file's cells as text (:func:`read_table`)."""
    encoding = _encoding(path)
    above, sep = _csv_header(path, encoding)
    frame = _read_csv(path, sep, encoding, above)
    frame.attrs["header_row"] = above + 1
    # a short row leaves the last cells empty: only then is the file read again to count its cells
    last_empty = frame.iloc[:, -1].isna() & (frame.notna().sum(axis=1) > 1)
    frame[SHORT] = (_cell_counts(path, sep, len(frame), frame.shape[1], encoding, above) if last_empty.any()
                    else 0)
    frame.attrs["encoding"] = encoding
    return frame


#: What a workbook's name may hide (``frame.attrs["disguised"]``): an HTML table (Salesforce's "Excel" export,
#: which Excel opens after a warning), Excel 2003's XML Spreadsheet (Dynamics CRM 2011's data for re-import, web
#: apps' "Excel" buttons) or delimited text (a CSV or tab-separated file named .xls).
HTML, XML_SPREADSHEET, DELIMITED = "an HTML table", "an XML Spreadsheet 2003", "delimited text"
#: The namespace of Excel 2003's XML Spreadsheet.
_SS = "urn:schemas-microsoft-com:office:spreadsheet"
#: The first bytes of real workbooks: OLE2 (.xls, .xlsb of old) and zip (.xlsx, .xlsm, .xlsb, .ods).
_WORKBOOK_MAGIC = (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", b"PK\x03\x04")


def _disguised(path: Path) -> str | None:
    """What a file named as a workbook really is when it is not one: :data:`HTML`, :data:`DELIMITED` (text whose
    first line holds a comma, semicolon or tab), or None (a workbook, or bytes no reader here knows: the workbook
    reader's error says so)."""
    with open(path, "rb") as handle:
        head = handle.read(4096)
    if not head or head.startswith(_WORKBOOK_MAGIC):
        return None
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        text = head.decode("utf-16", errors="ignore")
    elif b"\x00" in head:
        return None
    else:
        text = head.decode("utf-8-sig", errors="ignore")
    lowered = text.lstrip().lower()
    if lowered.startswith("<") and _SS in lowered:
        return XML_SPREADSHEET
    if lowered.startswith("<") and any(tag in lowered for tag in ("<table", "<html", "<!doctype html")):
        return HTML
    first = next((line for line in lowered.splitlines() if line.strip()), "")
    return DELIMITED if not lowered.startswith("<") and any(sep in first for sep in ",;\t") else None


def _read_html(path: Path) -> pd.DataFrame:
    """The largest table of an HTML file, its cells' text as shown (spaces collapsed, a ``colspan`` cell's
    columns after it empty), read as a CSV's cells are: title lines above the header skipped, short rows marked,
    a row with more filled cells than the header refused. The text's encoding is its ``charset`` if it names one,
    else as a CSV's (:func:`_encoding`)."""
    import codecs

    from lxml import etree

    data = path.read_bytes()
    declared = re.search(rb"""charset\s*=\s*["']?([A-Za-z0-9_.:-]+)""", data[:4096])
    try:
        if not declared or data.startswith((b"\xff\xfe", b"\xfe\xff")):
            raise LookupError
        encoding = codecs.lookup(declared.group(1).decode("ascii")).name
    except LookupError:
        encoding = _encoding_of(data, path)
    text = re.sub(r"^\s*<\?xml[^>]*\?>", "", data.decode(encoding, errors="replace").lstrip("\ufeff"))
    # plain elements (lxml.html's own classes cost a lookup per cell: 100,000 rows 5.4 s -> 2.6 s)
    root = etree.fromstring(text, etree.HTMLParser()) if text.strip() else None
    tables = root.xpath("//table") if root is not None else []
    rows_of = [[_html_cells(tr) for tr in t.xpath("./tr|./thead/tr|./tbody/tr|./tfoot/tr")] for t in tables]
    frame = _frame_of_rows(path, max(rows_of, key=lambda rows: sum(map(len, rows)), default=[]), "an HTML file")
    frame.attrs["encoding"] = encoding
    return frame


def _read_xml_spreadsheet(path: Path) -> pd.DataFrame:
    """The largest worksheet of an Excel 2003 XML Spreadsheet, its cells' text (each ``Data``'s, as written:
    ``DateTime`` cells in ISO 8601), read as an HTML table's are (:func:`_frame_of_rows`). A row or cell's
    ``ss:Index`` skips to its place; ``ss:MergeAcross`` leaves the merged cells empty."""
    from lxml import etree

    parser = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=True)
    try:
        root = etree.parse(str(path), parser).getroot()
    except etree.XMLSyntaxError as exc:
        raise DataError(f"{path}: not readable as an XML Spreadsheet ({exc}); export the report as .xlsx or CSV") from None
    index, merge = f"{{{_SS}}}Index", f"{{{_SS}}}MergeAcross"
    sheets: list[list[list[str]]] = []
    for table in root.iter(f"{{{_SS}}}Table"):
        rows: list[list[str]] = []
        for row in table.iterchildren(f"{{{_SS}}}Row"):
            at = row.get(index)
            rows += [[] for _ in range(int(at) - 1 - len(rows))] if at and at.isdigit() else []
            cells: list[str] = []
            for cell in row.iterchildren(f"{{{_SS}}}Cell"):
                to = cell.get(index)
                cells += [""] * (int(to) - 1 - len(cells)) if to and to.isdigit() else []
                data = cell.find(f"{{{_SS}}}Data")
                cells.append(" ".join("".join(data.itertext()).split()) if data is not None else "")
                span = cell.get(merge)
                cells += [""] * int(span) if span and span.isdigit() and int(span) <= 1000 else []
            rows.append(cells)
        sheets.append(rows)
    return _frame_of_rows(path, max(sheets, key=lambda rows: sum(map(len, rows)), default=[]), "an XML Spreadsheet",
                          short=False)


def _frame_of_rows(path: Path, rows: list[list[str]], kind: str, short: bool = True) -> pd.DataFrame:
    """A table given as its rows' cell texts, read as a CSV's cells are: title lines above the header skipped,
    short rows marked (unless a row's blank cells at its end are left out, as in a spreadsheet: ``short``
    False), a row with more filled cells than the header refused."""
    while rows and not any(rows[-1]):
        rows = rows[:-1]
    if not rows:
        raise DataError(f"{path}: {kind} without a table; export the report as .xlsx or CSV")
    above = _title_lines([[c for c in row if c] for row in rows])
    header = [c or f"Unnamed: {i}" for i, c in enumerate(rows[above])]
    width = len(header)
    body = rows[above + 1:]
    longer = [i for i, row in enumerate(body) if len(row) > width and any(row[width:])]
    if longer:
        raise DataError(_long_rows(path, [i + above + 2 for i in longer], max(len(body[i]) for i in longer), width))
    na = set(NA_VALUES)
    cells = [[None if not c or c in na else c for c in row[:width]] + [None] * (width - len(row)) for row in body]
    frame = pd.DataFrame(cells, columns=header, dtype=object)
    frame[SHORT] = [len(row) if short and 0 < len(row) < width and any(row) else 0 for row in body]
    frame.attrs["header_row"] = above + 1
    return frame


def _html_cells(row: Any) -> list[str]:
    """A table row's cells' text, as a browser shows it; a cell spanning columns leaves the ones after it empty."""
    out: list[str] = []
    for cell in row.iterchildren("td", "th"):
        text = (cell.text or "") if len(cell) == 0 else "".join(cell.itertext())  # most cells: text alone
        out.append(" ".join(text.split()))
        span = cell.get("colspan")
        if span is not None and span.strip().isdigit() and 1 < int(span) <= 1000:
            out += [""] * (int(span) - 1)
    return out


#: How a workbook's text cells are read as missing: as a CSV's are (pandas' own list would take a region "NA").
_NA: dict[str, Any] = {"keep_default_na": False, "na_values": NA_VALUES}


def _read_excel(path: Path) -> pd.DataFrame:
    """The data sheet of a workbook (:func:`_data_sheet`), by python-calamine (a Rust reader: a 100,000-row sheet in
    0.9-1.3 s, against openpyxl's 8.7-8.9 s)."""
    from python_calamine import CalamineError

    try:
        sheet, others = _data_sheet(path)
        frame = pd.read_excel(path, engine="calamine", sheet_name=sheet, **_NA)
        above = 0
        if len(frame.columns) and sum(str(c).startswith("Unnamed: ") for c in frame.columns) * 2 >= len(frame.columns):
            top = pd.read_excel(path, engine="calamine", sheet_name=sheet, header=None, nrows=TITLE_LINES + 1)
            above = _title_lines([[v for v in row if not is_missing(v) and str(v).strip()] for row in
                                  top.itertuples(index=False)])
            if above:
                frame = pd.read_excel(path, engine="calamine", sheet_name=sheet, header=above, **_NA)
    except CalamineError as exc:
        raise DataError(f"{path}: not a readable workbook ({exc}); export the report as .xlsx or CSV") from None
    frame = frame.astype(object).where(frame.notna(), None)
    frame.attrs["excel"] = True
    frame.attrs["header_row"] = above + 1
    if others:
        frame.attrs["sheet"] = (sheet, others)
    return frame


def _data_sheet(path: Path) -> tuple[str | int, list[str]]:
    """Which sheet of a workbook holds the data, and the other visible sheets when it is not the only one: of
    several visible sheets (a summary or a pivot beside the export, say), the one of the most cells; hidden sheets
    (Dynamics 365 keeps its own in its exports) are never data."""
    from python_calamine import CalamineWorkbook, SheetVisibleEnum

    book = CalamineWorkbook.from_path(str(path))
    try:
        visible = [m.name for m in book.sheets_metadata if m.visible == SheetVisibleEnum.Visible]
        if len(visible) < 2:
            return (visible[0] if visible else 0), []
        sizes = [sheet.height * sheet.width for sheet in map(book.get_sheet_by_name, visible)]
    finally:
        book.close()
    chosen = visible[int(np.argmax(sizes))]  # the first of the largest
    return chosen, [name for name in visible if name != chosen]


#: File names read as workbooks (by python-calamine) and as delimited text (comma, semicolon or tab).
EXCEL = (".xlsx", ".xlsm", ".xlsb", ".xls", ".ods")
TEXT = (".csv", ".csv.gz", ".txt", ".txt.gz", ".tsv", ".tsv.gz")
#: How many lines above the header a report may hold (its title, filters, who ran it and when).
TITLE_LINES = 30


def _title_lines(rows: Sequence[Sequence[object]]) -> int:
    """How many of ``rows`` (each row's filled cells, from the top) are a report's title lines above its header: the
    header is the first row of more than two filled cells, when every row above it has at most two."""
    for index, cells in enumerate(rows[:TITLE_LINES + 1]):
        if len(cells) > 2:
            return index
    return 0


def _csv_header(path: Path, encoding: str) -> tuple[int, str]:
    """:func:`_title_lines` of a CSV file and its separator: the one of comma, semicolon (European spreadsheets)
    and tab (Excel's "Unicode Text") that makes its header widest. Commas in a semicolon-separated file's cells
    (``USD 1,029,700.00``) make no header, and a semicolon in a comma-separated file's text none either."""
    import csv
    import gzip
    import io

    opener = gzip.open if path.name.lower().endswith(".gz") else open
    with opener(path, "rt", encoding=encoding, newline="") as handle:
        head = "".join(line for _, line in zip(range(TITLE_LINES + 1), handle))
    best = (0, 0, ",")  # (the header's width, the lines above it, the separator)
    for sep in (",", ";", "\t"):
        # (lines ended by \r alone, as Excel for Mac's "CSV (Macintosh)" writes them, are lines too)
        rows = [[c for c in row if c.strip()] for row in csv.reader(io.StringIO(head, newline=""), delimiter=sep)]
        above = _title_lines(rows)
        if rows and len(rows[above]) > best[0]:
            best = (len(rows[above]), above, sep)
    return best[1], best[2]


def _read_csv(path: Path, sep: str, encoding: str, above: int = 0) -> pd.DataFrame:
    """The CSV's cells as text. A row with more filled cells than the header is refused naming it: pandas would
    take the first column for an index and shift every cell of the file by one (when the first row is long), or
    drop the extra cells (with ``index_col=False``). Rows longer by empty cells only (a trailing separator on each
    data row) lose nothing and are read."""
    import warnings

    options: dict[str, Any] = {"sep": sep, "dtype": str, "keep_default_na": False, "na_values": NA_VALUES,
                               "skiprows": above, "encoding": encoding, "skipinitialspace": True,
                               "skip_blank_lines": False, "index_col": False}
    width = None
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", pd.errors.ParserWarning)
        try:
            frame = pd.read_csv(path, **options)
        except pd.errors.ParserError as exc:
            found = re.search(r"Expected (\d+) fields in line \d+, saw \d+", str(exc))
            if found is None:
                raise
            width, frame = int(found.group(1)), None
    if frame is not None and any(issubclass(w.category, pd.errors.ParserWarning) for w in caught):
        width = frame.shape[1]
    if width is None:
        return frame
    counts = _cell_counts(path, sep, None, width, encoding, above, longer=True)
    if counts.any():
        raise DataError(_long_rows(path, (np.flatnonzero(counts) + above + 2).tolist(), int(counts.max()), width))
    if frame is None:  # long only by empty cells, after rows of the header's width: those cells cut off
        frame = pd.read_csv(path, engine="python", on_bad_lines=lambda cells: cells[:width],
                            **{k: v for k, v in options.items() if k != "index_col"})
    return frame


def _long_rows(path: Path, rows: list[int], cells: int, width: int) -> str:
    shown = ", ".join(map(str, rows[:5])) + (f" and {len(rows) - 5} more" if len(rows) > 5 else "")
    return (f"{path}: row(s) {shown} have more cells ({cells}) than the header ({width}): a separator inside a cell "
            "that is not quoted (Acme, Inc), or a column without a name in the header; quote the cell or name the "
            "column, and export again")


def _encoding(path: Path) -> str:
    """A CSV file's encoding: UTF-16 when it starts with its byte-order mark, UTF-8 (with or without one) when
    the whole file decodes as UTF-8, else Windows-1252, which Western spreadsheets and CRMs write (a superset of
    ISO-8859-1's printable characters); the contract notes any but UTF-8."""
    import gzip

    opener = gzip.open if path.name.lower().endswith(".gz") else open
    with opener(path, "rb") as handle:
        return _encoding_of(handle.read(), path)


def _encoding_of(data: bytes, path: Path) -> str:
    """:func:`_encoding` of a file's bytes."""
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return "utf-16"
    for encoding in ("utf-8-sig", "cp1252"):
        try:
            data.decode(encoding)
            return encoding
        except UnicodeDecodeError:
            continue
    raise DataError(f"{path}: neither UTF-8, UTF-16 nor Windows-1252 text; export or save the file as UTF-8 CSV")


def _cell_counts(path: Path, sep: str, rows: int | None, width: int, encoding: str, above: int = 0,
                 longer: bool = False) -> np.ndarray:
    """Per data row (of the first ``rows``; None: all), how many cells it has when fewer than ``width`` (a short
    row; ``longer``: when more, a cell past the header's width filled), else 0."""
    import csv
    import gzip

    opener = gzip.open if path.name.lower().endswith(".gz") else open
    out: list[int] = []
    with opener(path, "rt", encoding=encoding, newline="") as handle:
        reader = csv.reader(handle, delimiter=sep)
        for _ in range(above + 1):  # the title lines, then the header
            next(reader, None)
        for i, cells in enumerate(reader):
            if rows is not None and i >= rows:
                break
            if longer:
                out.append(len(cells) if len(cells) > width and any(c.strip() for c in cells[width:]) else 0)
            else:
                out.append(len(cells) if 0 < len(cells) < width and any(c.strip() for c in cells) else 0)
    if rows is not None:
        out += [0] * (rows - len(out))
    return np.array(out, dtype=np.int64)


def _with_rows(frame: pd.DataFrame, header_row: int = 1) -> pd.DataFrame:
    frame = frame.reset_index(drop=True)
    frame.columns = [str(c).strip() for c in frame.columns]
    frame[ROW] = np.arange(header_row + 1, len(frame) + header_row + 1)
    cells = frame.drop(columns=[c for c in (ROW, SHORT) if c in frame.columns])
    blank = cells.isna().all(axis=1) if len(cells.columns) else pd.Series(False, index=frame.index)
    if bool(blank.any()):
        frame = frame[~blank.to_numpy()]
    return frame



def is_in(series: pd.Series, values: pd.Series | pd.Index | set[str]) -> np.ndarray:
    """``series.isin(values)`` as a boolean array, through pandas' hash table for objects: pandas 3's ``isin``
    on a text column turns each of ``values`` into a pyarrow scalar in Python, several times slower."""
    wanted = pd.Index(list(values) if isinstance(values, set) else values, dtype=object)
    return series.astype(object).isin(wanted).to_numpy()


def lookup(ids: pd.Series, values: pd.Series) -> pd.Series:
    """``values`` (indexed by unique ids) for each of ``ids``, missing where an id is not among them: ``ids.map(values)``,
    which fails when ``values`` holds no dates at all (pandas casts an empty mapping to floats)."""
    return pd.Series(values.reindex(ids.to_numpy()).to_numpy(), index=ids.index, name=values.name)


def load_table(table: TableInput, name: str, report: DataReport | None = None) -> tuple[str, pd.DataFrame]:
    """A table given as a frame or a file, with its rows numbered; a note in ``report`` when a CSV file was read
    in another encoding than UTF-8 (its accented names are worth a look)."""
    if isinstance(table, pd.DataFrame):
        return name, _without_repeats(_with_rows(table.copy()), name, report)
    frame = read_table(table)
    encoding, header = frame.attrs.get("encoding"), int(frame.attrs.get("header_row", 1))
    if report is not None and encoding in ENCODINGS:
        report.notes.append(f"{table}: not UTF-8; read as {ENCODINGS[encoding]}")
    if report is not None and "disguised" in frame.attrs:
        kind = frame.attrs["disguised"]
        report.notes.append(f"{table}: not a workbook but {kind}" + {HTML: " (Salesforce's \"Excel\" export is one)",
                            XML_SPREADSHEET: " (Dynamics CRM 2011 writes one to re-import)"}.get(kind, "") + ": read as such")
    if report is not None and "sheet" in frame.attrs:
        sheet, others = frame.attrs["sheet"]
        report.notes.append(f"{table}: read its sheet {sheet!r}, the largest; not its other sheet(s) {others}")
    if report is not None and header > 1:
        report.notes.append(f"{table}: the header is on row {header}; the {header - 1} row(s) above it (a report's "
                            "title, its filters) are not data")
    return str(table), _without_repeats(frame, str(table), report)


#: pandas' name for a header's repeated column: ``Amount.1`` for the second ``Amount``.
_REPEATED = re.compile(r"^(?P<name>.+)\.(?P<n>[1-9]\d*)$")


def _without_repeats(frame: pd.DataFrame, source: str, report: DataReport | None) -> pd.DataFrame:
    """A header that names a column twice (a field added to a report twice, two properties of one label, a name
    with a trailing space beside the same without; pandas had read an exact repeat as one more column, ``Amount.1``,
    a feature no one asked for): a repeat holding the same cells is dropped, said in a note; one holding others is
    an error (which is the column?). Without ``report`` (a file read again later with one), as it is."""
    names = [str(c) for c in frame.columns]
    base = [m.group("name") if (m := _REPEATED.match(n)) and m.group("name") in names else n for n in names]
    first: dict[str, int] = {}
    repeats: list[tuple[int, int]] = []  # (position of a repeat, position of its name's first column)
    for position, name in enumerate(base):
        if name in first:
            repeats.append((position, first[name]))
        else:
            first[name] = position
    if not repeats or report is None:
        return frame
    def cells(position: int) -> pd.Series:
        return frame.iloc[:, position].astype("string").reset_index(drop=True)

    same = [i for i, j in repeats if cells(i).equals(cells(j))]  # only the columns a repeat involves
    differ = sorted({base[j] for i, j in repeats if i not in same})
    if same:
        report.notes.append(f"{source}: column(s) {', '.join(repr(names[i]) for i in same)} repeat a column of the "
                            "same name and cells: not read")
    if differ:
        report.error(source, f"column(s) {', '.join(map(repr, differ))} appear more than once with different cells "
                     "(names are compared with surrounding spaces trimmed): each column must appear once; rename or "
                     "remove the copies", differ[0])
    dropped = {i for i, _ in repeats}
    return frame.iloc[:, [i for i in range(len(names)) if i not in dropped]]
