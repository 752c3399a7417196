"""Reading export files: CSV (optionally gzipped) or Parquet as text cells, each row numbered as in a spreadsheet
(header = row 1) so that every problem can name the row it was found in."""
from __future__ import annotations

from pathlib import Path
from typing import TypeAlias

import numpy as np
import pandas as pd

from scoring.errors import DataError

#: Spreadsheet row number of each row in its source file (header = row 1).
ROW = "_row"
#: For history rows derived from a wide export (HubSpot "Date entered" columns): the column they came from.
SOURCE_COLUMN = "_source_column"
#: Cells read as missing in CSV files.
NA_VALUES = ["", "NULL", "null", "NaN", "nan", "N/A", "n/a", "#N/A"]
#: Dates outside these years are taken for mistakes (Excel serials, "9999-12-31" placeholders).
PLAUSIBLE_YEARS = (1970, 2100)

TableInput: TypeAlias = str | Path | pd.DataFrame


def read_table(path: str | Path) -> pd.DataFrame:
    """Read a CSV (optionally gzipped) or Parquet file as text cells, adding the spreadsheet row number."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: file not found")
    name = path.name.lower()
    try:
        if name.endswith((".parquet", ".pq")):
            frame = pd.read_parquet(path)
        elif name.endswith((".csv", ".csv.gz", ".txt")):
            frame = _read_csv(path, ",")
            if frame.shape[1] == 1 and ";" in str(frame.columns[0]):
                frame = _read_csv(path, ";")  # European spreadsheet exports
        else:
            raise DataError(f"{path}: unsupported file type; expected .csv, .csv.gz or .parquet")
    except UnicodeDecodeError as exc:
        raise DataError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start}); "
                        "export or save the file as UTF-8 CSV") from None
    except (pd.errors.ParserError, pd.errors.EmptyDataError, OSError, ValueError) as exc:
        if isinstance(exc, DataError):
            raise
        raise DataError(f"{path}: cannot be read as a table ({exc})") from None
    return _with_rows(frame)


def _read_csv(path: Path, sep: str) -> pd.DataFrame:
    return pd.read_csv(path, sep=sep, dtype=str, keep_default_na=False, na_values=NA_VALUES,
                       encoding="utf-8-sig", skipinitialspace=True)


def _with_rows(frame: pd.DataFrame) -> pd.DataFrame:
    frame = frame.reset_index(drop=True)
    frame.columns = [str(c).strip() for c in frame.columns]
    frame[ROW] = np.arange(2, len(frame) + 2)
    return frame



def load_table(table: TableInput, name: str) -> tuple[str, pd.DataFrame]:
    if isinstance(table, pd.DataFrame):
        return name, _with_rows(table.copy())
    return str(table), read_table(table)
