"""The data contract: read a deal history (CSV or Parquet), map it onto the canonical tables, validate it.

``load_deal_history`` returns a :class:`DealHistory` or raises :class:`DataError` naming every
problem (file, rows, column, what was expected). ``inspect_deal_history`` returns the report
without raising, for ``scoring validate``. Rows are numbered as in a spreadsheet (header = row 1).
"""
from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal

import numpy as np
import pandas as pd

from scoring.data.bulk import bulk_days
from scoring.data.columns import (
    as_text,
    fold,
    has_columns,
    header_matches,
    map_columns,
    other_deals,
    read_dates,
    same_deal_ids,
    squash,
    unreadable_dates,
)
from scoring.data.config import (
    DEAL_COLUMNS,
    DEAL_DATE_COLUMNS,
    DEAL_REQUIRED,
    FROM_STAGE,
    HISTORY_COLUMNS,
    MAPPABLE,
    OWNER,
    PIPELINE,
    STATUSES,
    PipelineConfig,
)
from scoring.data.formats import (
    CURRENCY_MARK,
    CURRENCY_SIGNS,
    NUMBER_FORMATS,
    AmbiguousDates,
    declared_format,
    looks_like_dates,
    looks_like_epoch,
    looks_numeric,
    number_format_of,
    parse_dates,
    parse_numbers,
)
from scoring.data.leaks import closing_flags, erased_amounts, revealing_columns
from scoring.data.presets import get_preset
from scoring.data.problems import DataReport, examples
from scoring.data.signals import FORECAST_CATEGORY, DealSignals, SignalSpec, read_signals, stage_changes
from scoring.data.tables import PLAUSIBLE_YEARS, ROW, SHORT, SOURCE_COLUMN, TableInput, is_in, load_table, lookup
from scoring.errors import DataError

FeatureKind = Literal["numeric", "categorical"]


@dataclass(frozen=True)
class DealHistory:
    """A validated deal history in canonical form.

    ``deals``: one row per deal, canonical columns (dates as naive UTC datetimes) plus features.
    ``history``: one row per open-stage entry (``deal_id``, ``stage``, ``entered_at``), sorted;
    empty when no stage history was given. ``features`` maps each feature to its kind: the deals' feature
    columns and the features ``spec`` derives from the ``signals`` (field history and activities, SPEC 2.2).
    ``deleted``: the ids of deals the export marks deleted (status ``deleted``, as Pipedrive writes it): they
    are not in ``deals``, and the pipeline store takes them out of its pipeline. ``erased_share``: the share of
    the lost deals whose amount, zeroed at the loss, is read as unknown (:func:`scoring.data.leaks.erased_amounts`;
    training leaves as many other amounts out, :func:`scoring.features.snapshots.as_often_unknown`).
    ``imported``: the closed deals set aside as imported into the CRM (``IMPORTED_CLOSED``): not in ``deals``,
    but what they booked counts in past periods' bookings (:meth:`with_imported`).
    """

    deals: pd.DataFrame
    history: pd.DataFrame
    config: PipelineConfig
    features: dict[str, FeatureKind]
    report: DataReport
    sources: tuple[str, ...]
    signals: DealSignals = field(default_factory=DealSignals)
    spec: SignalSpec = field(default_factory=SignalSpec)
    deleted: tuple[str, ...] = ()
    erased_share: float = 0.0
    imported: pd.DataFrame = field(default_factory=lambda: _no_deals())

    def with_imported(self) -> pd.DataFrame:
        """The deals and the closed deals imported into the CRM (``imported``, canonical columns, no features): what
        each period booked, those included. Never learned from: their time open is not known."""
        if self.imported.empty:
            return self.deals
        return pd.concat([self.deals, self.imported], ignore_index=True)

    @property
    def has_history(self) -> bool:
        return not self.history.empty

    def digest(self) -> str:
        """A SHA-256 of the canonical data: equal data, equal digest (for provenance)."""
        h = hashlib.sha256()
        frames = (self.deals, self.history, self.signals.field_history, self.signals.activities)
        for frame in (*frames, self.imported) if len(self.imported) else frames:
            data = frame.drop(columns=[ROW], errors="ignore")
            h.update(",".join(map(str, data.columns)).encode())
            h.update(pd.util.hash_pandas_object(data, index=False).to_numpy().tobytes())
        return h.hexdigest()


def data_end(data: DealHistory) -> pd.Timestamp:
    """The latest date in the data: the natural 'as of' of an export."""
    deals = data.deals
    dates = [deals["created_at"].max(), deals["closed_at"].max(), deals["stage_entered_at"].max()]
    if data.has_history:
        dates.append(data.history["entered_at"].max())
    return max(d for d in dates if pd.notna(d)).normalize() + pd.Timedelta(days=1) - pd.Timedelta(microseconds=1)


def load_deal_history(deals: TableInput, history: TableInput | None = None,
                      config: PipelineConfig | None = None, strict: bool = False,
                      field_history: TableInput | None = None, activities: TableInput | None = None,
                      writes: bool = False) -> DealHistory:
    """Read, map and validate; raise :class:`DataError` (listing every problem) if the data cannot be used."""
    result, report = inspect_deal_history(deals, history, config, strict, field_history, activities, writes)
    if result is None:
        raise DataError("the deal history cannot be used: " + report.summary(), report)
    return result


def inspect_deal_history(deals: TableInput, history: TableInput | None = None,
                         config: PipelineConfig | None = None, strict: bool = False,
                         field_history: TableInput | None = None, activities: TableInput | None = None,
                         writes: bool = False) -> tuple[DealHistory | None, DataReport]:
    """Read, map and validate; return the data (None when there are errors) and everything found. With
    ``strict``, every row that would be set aside is an error instead (for the pipeline store's ``writes``, but
    for rows kept without a value, such as a blank amount, and deletions). The field history and activities
    (SPEC 2.2) are optional; the deals file's current value of a field they track is never a feature."""
    config = config or PipelineConfig()
    report = DataReport()
    export = _read_export(deals, history, config, report, field_history)
    deals_src, raw_deals, hist_src, raw_hist, frame = (export.deals_src, export.raw_deals, export.hist_src,
                                                       export.raw_hist, export.deals)
    excel, deleted, elsewhere = export.excel, export.deleted, export.elsewhere
    if frame.empty and deleted and report.ok:  # only deletions (a CRM's batch): nothing else to read
        report = _finish(report, strict, writes)
        return DealHistory(_no_deals(), _no_history(), config, {}, report, (deals_src,), deleted=deleted), report
    if not has_columns(frame, raw_deals, DEAL_REQUIRED, report, deals_src) or frame.empty:
        return None, _finish(report, strict, writes)

    config = _export_number_format(frame, config, report, deals_src)
    parsed = _parse_deals(frame, config, report, deals_src, excel)
    parsed, imported = _without_imported_closed(parsed, report, deals_src)
    apart = {"deals in other pipelines": elsewhere, IMPORTED_CLOSED: tuple(imported["deal_id"].astype(str))}
    hist = None
    if raw_hist is not None and hist_src is not None:
        hframe = map_columns(raw_hist, config.history_columns, (*HISTORY_COLUMNS, FROM_STAGE), report, hist_src,
                             "history")
        if has_columns(hframe, raw_hist, HISTORY_COLUMNS, report, hist_src):
            hist = _parse_history(hframe, parsed, config, report, hist_src, excel, deleted, apart)
    _check_deal_dates(parsed, report, deals_src)
    erased_share = _erased_amounts(parsed, report, deals_src)
    _closed_after_today(parsed, hist, report, deals_src, live=writes)
    if not writes:  # a CRM's batch of new deals is not an import
        _say_bulk_days(parsed, report, deals_src)
    if hist is None and len(config.stages) > 1:
        report.warn(deals_src, "no stage history: each deal is taken to have passed through every stage up to its "
                    "current one (a closed deal: the one it closed in), the stages between its creation and its last "
                    "stage change sharing that time as the stays the export shows whole share theirs (a stage no deal "
                    "is in taking none; without that date, each stage an even share of its life, to its close or the "
                    "data's end); where deals leave the pipeline early and how long "
                    "they stay in each stage are assumed, not learned. Give the CRM's stage changes as "
                    "--history: Salesforce's Opportunity History report, HubSpot's \"Date entered\" columns, "
                    "Pipedrive's deal stage-change (deal flow) export, Odoo's Tracking Values of the stage")
    _resolve_closed_stages(parsed, hist, config, report, deals_src)
    if hist is not None and not hist.empty:
        absent = ~is_in(parsed["deal_id"], pd.Index(hist["deal_id"].unique()))
        if absent.any():  # a history report filtered by date leaves older deals out
            report.warn(deals_src, f"{int(absent.sum()):,} deal(s) have no entry in the stage history {hist_src}: they "
                        "are not learned from (a history report filtered by date leaves older deals out: export it "
                        "unfiltered)", "deal_id", parsed.loc[absent, ROW].tolist())
    columns = _without_revealing(parsed, _features(parsed, config, report, deals_src), config, report, deals_src)
    signals = read_signals(field_history, activities, parsed["deal_id"], config, report, deleted=deleted,
                           apart=apart, stages_read=export.borrowed)
    spec = SignalSpec.of(signals)
    replaced = sorted(spec.tracked & set(columns))
    if replaced:
        report.notes.append(f"column(s) {', '.join(replaced)} of the deals file are not features: their value at each "
                            "date comes from the field history (a CRM overwrites a closed deal's current values)")
    if FORECAST_CATEGORY in parsed.columns and FORECAST_CATEGORY not in spec.categories:
        report.notes.append("forecast_category is not a feature from the deals file (a closed deal's current "
                            "category tells its outcome); give its changes in the field history to learn from it")
    kept = [*columns, *([FORECAST_CATEGORY] if FORECAST_CATEGORY in parsed.columns else [])]
    features = {**{name: kind for name, kind in columns.items() if name not in spec.tracked}, **spec.features}
    report = _finish(report, strict, writes)
    if not report.ok:
        return None, report

    if FORECAST_CATEGORY in parsed.columns:  # kept (the commit forecast, the store), never a feature
        parsed[FORECAST_CATEGORY] = as_text(parsed[FORECAST_CATEGORY])
    deals_out = parsed[[*DEAL_COLUMNS, *kept, ROW]].copy()  # current values of tracked fields kept, not learned
    deals_out["amount"] = deals_out["amount"].astype(float)
    if hist is None:
        hist = _no_history()
    hist_out = hist[list(HISTORY_COLUMNS)].sort_values(["deal_id", "entered_at", "stage"], kind="stable")
    sources = tuple(s for s in (deals_src, hist_src, *_names(field_history), *_names(activities)) if s)
    imported_out = imported[[*DEAL_COLUMNS, ROW]].astype({"amount": float}).reset_index(drop=True)
    return DealHistory(deals_out.reset_index(drop=True), hist_out.reset_index(drop=True), config,
                       features, report, sources, signals, spec, deleted, erased_share, imported_out), report


@dataclass(frozen=True)
class _Export:
    """An export as read through a config, before its values are checked: the deals with their columns mapped
    (deleted deals and other pipelines' set aside, the status from the stage where there is none), and the raw
    stage history (a preset's, derived from the deals, included)."""

    deals_src: str
    raw_deals: pd.DataFrame
    deals: pd.DataFrame
    hist_src: str | None
    raw_hist: pd.DataFrame | None
    excel: bool
    deleted: tuple[str, ...]
    elsewhere: tuple[str, ...]
    borrowed: bool = False  # the stage history is the field history's stage changes


def _read_export(deals: TableInput, history: TableInput | None, config: PipelineConfig, report: DataReport,
                 field_history: TableInput | None = None) -> _Export:
    """Read the files, set aside a report's footers, apply the preset and map the deals' columns (:class:`_Export`).
    A stage history written as a log of field changes is read for its stage changes; without a stage history, the
    field history's stage changes are one (:func:`scoring.data.signals.stage_changes`)."""
    deals_src, raw_deals = load_table(deals, "deals", report)
    hist_src, raw_hist = load_table(history, "stage_history", report) if history is not None else (None, None)
    excel = bool(raw_deals.attrs.get("excel"))
    raw_deals = _tidy(raw_deals, report, deals_src, "deals")
    if raw_hist is not None and hist_src is not None:
        raw_hist = _tidy(raw_hist, report, hist_src, "stage history rows")
    derived = borrowed = False
    preset = get_preset(config.preset) if config.preset else None
    fh_src, raw_fh = load_table(field_history, "field_history") if raw_hist is None and field_history is not None \
        else (None, None)  # its notes are the field history's
    if preset is not None and raw_fh is not None and preset.stages_in_changes(raw_fh):
        report.notes.append(f"no stage history given: the stage's changes in {fh_src} are read as one")
        raw_hist, hist_src, raw_fh, borrowed = raw_fh, fh_src, None, True  # the CRM's own log (Odoo's tracking values)
    if preset is not None:
        raw_deals, raw_hist, derived = preset.prepare(raw_deals, raw_hist, config, report, deals_src)
        if derived:
            hist_src = f"{deals_src} (stage dates)"
    if raw_hist is not None and hist_src is not None and not derived:
        changes = stage_changes(raw_hist, config, report, hist_src)
        raw_hist = raw_hist if changes is None else changes
    elif raw_fh is not None and fh_src is not None:
        changes = stage_changes(raw_fh, config, report, fh_src, borrowed=True)
        names = (as_text(pd.concat([changes[c] for c in ("stage", FROM_STAGE) if c in changes.columns]))
                 if changes is not None else pd.Series(dtype=object))
        unknown = names[_classify_stages(names, config)[0].eq("unknown").to_numpy()].unique().tolist()
        if unknown:  # written otherwise than the deals' stages (a CRM's internal names): not guessed at
            report.warn(fh_src, f"its stage changes are not read as the stage history: unknown stage(s) "
                        f"{examples(unknown)} (map them in the config's [values.stage] table, or give the stage "
                        "history as --history)", "field")
        elif changes is not None:
            raw_hist, hist_src, borrowed = changes, fh_src, True
    frame = map_columns(raw_deals, config.columns, MAPPABLE["columns"], report, deals_src, "deals")
    _one_currency(frame, report, deals_src)
    frame, deleted = _without_deleted(frame, config, report, deals_src)
    frame, elsewhere = _chosen_pipelines(frame, config, report, deals_src)
    frame = _status_from_stage(frame, config, report, deals_src)
    return _Export(deals_src, raw_deals, frame, hist_src, raw_hist, excel, deleted, elsewhere, borrowed)


def export_stages(deals: TableInput, history: TableInput | None = None, config: PipelineConfig | None = None,
                  field_history: TableInput | None = None) -> tuple[pd.DataFrame, list[str]]:
    """What an export holds before its stages are checked against a config (for drafting one,
    :mod:`scoring.data.draft`): its deals with their columns mapped onto the canonical names (as text), and the
    stage names its stage history uses (a preset's derived history and the field history's stage changes
    included; none without one)."""
    config = config or PipelineConfig()
    report = DataReport()
    export = _read_export(deals, history, config, report, field_history)
    stages: list[str] = []
    if export.raw_hist is not None and export.hist_src is not None:
        hframe = map_columns(export.raw_hist, config.history_columns, (*HISTORY_COLUMNS, FROM_STAGE), report,
                             export.hist_src, "history")
        for column in ("stage", FROM_STAGE):
            if column in hframe.columns:
                stages += as_text(hframe[column]).dropna().str.strip().unique().tolist()
    return export.deals, list(dict.fromkeys(stages))


def _export_number_format(frame: pd.DataFrame, config: PipelineConfig, report: DataReport, src: str
                          ) -> PipelineConfig:
    """The config, with the number format the export's columns show (``found_number_format``) when they agree and
    the config declares none: it reads the columns that do not tell, at training and in the deals the model
    scores (one deal at a time too, by file or by request). A European export is noted."""
    if config.number_format is not None:
        return config
    shown: dict[str, str] = {}
    for name in frame.columns:
        if ((name == "amount" or name not in DEAL_COLUMNS) and not name.startswith("_")
                and (frame[name].dtype == object or pd.api.types.is_string_dtype(frame[name]))):
            found = number_format_of(frame[name])
            if found:
                shown[name] = found
    if len(set(shown.values())) != 1:
        return config
    found = next(iter(shown.values()))
    if NUMBER_FORMATS[found] == "comma":
        report.notes.append(f"numbers are written the European way in column(s) {examples(sorted(shown))} (decimal "
                            "commas, or dots between thousands as in 14.300): columns that do not tell are read so, "
                            "here and in the deals the model scores; declare number_format in the config if not")
    return replace(config, found_number_format=found)


def _no_history() -> pd.DataFrame:
    return pd.DataFrame({"deal_id": pd.Series(dtype="str"), "stage": pd.Series(dtype="str"),
                         "entered_at": pd.Series(dtype="datetime64[us]")})


def _no_deals() -> pd.DataFrame:
    """The canonical deals table without rows."""
    return pd.DataFrame({c: pd.Series(dtype="datetime64[us]" if c in DEAL_DATE_COLUMNS else float if c == "amount"
                                       else "str") for c in DEAL_COLUMNS})


def _names(table: TableInput | None) -> tuple[str, ...]:
    """The file name of an input, for the data's sources (frames have none)."""
    return (str(table),) if table is not None and not isinstance(table, pd.DataFrame) else ()


def _finish(report: DataReport, strict: bool, writes: bool = False) -> DataReport:
    return report.strict(writes) if strict else report


#: Report footers and notes: Salesforce's "Copyright ...", "Confidential Information ...", "Generated By: ...".
_FOOTER = re.compile(r"^(copyright|confidential|generated by|total|grand total|filtered by|report)\b", re.IGNORECASE)
#: A grouped (summary) report's subtotal and total lines, labelled in one of its leading columns.
_SUBTOTAL = re.compile(r"^(sub-?total|total|grand total)\b", re.IGNORECASE)
#: How many leading columns a grouped report may group by (Salesforce: up to three levels).
GROUP_LEVELS = 3


def _tidy(raw: pd.DataFrame, report: DataReport, src: str, what: str) -> pd.DataFrame:
    """Set aside a CRM report's footer lines (rows of one filled cell at the end of the file, or starting with
    "Copyright", "Generated By", ...), report rows cut short (fewer cells than the header), and refuse a file
    of no rows (a column named twice is the table's own check, :func:`scoring.data.tables.load_table`)."""
    cells = raw.drop(columns=[c for c in (ROW, SHORT) if c in raw.columns])
    filled = cells.notna().sum(axis=1).to_numpy()
    first = cells.iloc[:, 0].astype("str") if len(cells.columns) else pd.Series("", index=raw.index)
    footer = np.zeros(len(raw), dtype=bool)
    if len(cells.columns) >= 3 and len(raw):
        lone = filled <= 1
        trailing = np.flip(np.logical_and.accumulate(np.flip(lone)))  # the run of lone-cell rows at the end
        footer = trailing | (lone & first.str.match(_FOOTER).fillna(False).to_numpy())
    if footer.any():
        report.set_rows_aside(src, "report footer or note lines (one filled cell: Copyright, Generated By, ...)",
                              raw.loc[footer, ROW].tolist())
        raw = raw[~footer]
    raw = _without_repeated_headers(raw, report, src)
    raw = _ungrouped(raw, report, src)
    if SHORT in raw.columns:
        short = raw[SHORT].to_numpy() > 0
        if short.any():
            counts = sorted(set(raw.loc[short, SHORT].tolist()))
            report.error(src, f"row(s) with fewer cells ({', '.join(map(str, counts))}) than the header "
                         f"({len(cells.columns)}): a cut export, a stray line break inside a cell, or a missing "
                         "separator", None, raw.loc[short, ROW].tolist())
        raw = raw.drop(columns=[SHORT])
    if raw.empty:
        report.error(src, f"no {what}: the file has a header row and nothing under it")
    return raw


def _without_repeated_headers(raw: pd.DataFrame, report: DataReport, src: str) -> pd.DataFrame:
    """Set aside rows that repeat the header (every filled cell its column's name, at least half of them
    filled): exports joined one after another, each with its header."""
    cells = raw.drop(columns=[c for c in (ROW, SHORT) if c in raw.columns])
    if len(cells.columns) < 2 or raw.empty:
        return raw
    names = [str(c).strip() for c in cells.columns]
    maybe = np.flatnonzero((cells.iloc[:, 0].astype("str").str.strip() == names[0]).to_numpy())
    if not len(maybe):
        return raw
    candidates = cells.iloc[maybe]
    same = np.column_stack([(candidates[c].astype("str").str.strip() == name).to_numpy() | candidates[c].isna().to_numpy()
                            for c, name in zip(cells.columns, names)])
    repeated = same.all(axis=1) & (candidates.notna().sum(axis=1).to_numpy() * 2 >= len(names))
    if not repeated.any():
        return raw
    rows = raw[ROW].to_numpy()[maybe[repeated]]
    report.set_rows_aside(src, "repeated header lines (exports joined one after another)", rows.tolist())
    return raw[~raw[ROW].isin(rows).to_numpy()]


#: Columns that give each deal's currency (by their letters and digits: any case and separators), and words in an
#: amount column's name that say it is converted to one currency (Salesforce's "Amount (converted)", HubSpot's
#: "Amount in company currency", Dynamics' "Est. Revenue (Base)").
_CURRENCY_COLUMNS = frozenset(squash(c) for c in ("Currency", "Amount Currency", "Opportunity Currency", "Deal Currency",
                                                  "Currency ISO Code", "Currency Code", "Deal Currency Code",
                                                  "transactioncurrencyid"))
_CONVERTED = re.compile(r"convert|(company|home|default)[\s_]?currency|\(base\)|_base\b", re.IGNORECASE)


def _one_currency(frame: pd.DataFrame, report: DataReport, src: str) -> None:
    """Warn when the deals' amounts are in several currencies (a currency column of more than one value, or
    amounts written with different currency codes or signs) and the amount column is not one converted to a
    single currency: they would be added up as one, in every forecast."""
    if "amount" not in frame.columns or _CONVERTED.search(frame.attrs.get("mapped_from", {}).get("amount", "")):
        return
    found = currencies(frame)
    if len(found) < 2:  # no currency column, or one currency in it: the signs and codes the amounts are written with
        written = as_text(frame["amount"]).dropna().str.extract(CURRENCY_MARK, flags=re.IGNORECASE, expand=False)
        found = sorted(set(written.dropna().str.upper().replace(CURRENCY_SIGNS).unique().tolist()))
    if len(found) > 1:
        report.warn(src, currency_warning(found, "export the amount converted to one currency (Salesforce's \"Amount "
                                                 "(converted)\", HubSpot's \"Amount in company currency\", Dynamics' "
                                                 "\"Est. Revenue (Base)\"), or one file per currency"), "amount")


def currencies(columns: Mapping[str, Any]) -> list[str]:
    """The currencies the deals' currency columns name (``Currency``, ``CurrencyIsoCode``, Dynamics'
    ``transactioncurrencyid``, ...; any case), upper case and sorted: the columns of a file or of a request."""
    found: set[str] = set()
    for name, values in columns.items():
        if squash(name) in _CURRENCY_COLUMNS:
            found |= set(as_text(pd.Series(values, dtype=object)).dropna().str.upper().unique().tolist())
    return sorted(found)


def currency_warning(found: Sequence[str], advice: str) -> str:
    """What deals whose amounts are in several currencies (``found``) are told, with ``advice``."""
    return f"amounts in {len(found)} currencies ({examples(list(found))}) would be added up as one: {advice}"


def _ungrouped(raw: pd.DataFrame, report: DataReport, src: str) -> pd.DataFrame:
    """A grouped report exported with its formatting (Salesforce's "Formatted Report" of a summary report) as
    plain rows: its Subtotal and Total lines (a label in a leading column, a few aggregates beside it) set aside,
    and its leading grouping columns, which name a group on its first row only, filled down over the group's
    rows. A grouping column is one of the leading columns, filled on the first row and on no more rows than
    there are subtotal lines (one per group). Other files are returned as they are (a report's lone total line
    at the end is a footer)."""
    cells = raw.drop(columns=[c for c in (ROW, SHORT) if c in raw.columns])
    if len(cells.columns) < 3 or raw.empty:
        return raw
    lead = list(cells.columns[:GROUP_LEVELS])
    label = np.zeros(len(raw), dtype=bool)
    for col in lead:
        label |= cells[col].astype("str").str.strip().str.match(_SUBTOTAL).fillna(False).to_numpy()
    filled = cells.notna().sum(axis=1).to_numpy()
    subtotal = label & (filled >= 2) & (filled <= len(cells.columns) // 2)
    if not subtotal.any():
        return raw
    report.set_rows_aside(src, "subtotal and total lines of a grouped report", raw.loc[subtotal, ROW].tolist())
    raw = raw[~subtotal].copy()
    grouping = []
    for col in lead:  # outermost first; a column that is not a grouping one ends them
        blank = raw[col].isna()
        if not blank.any() or blank.iloc[0] or (~blank).sum() > subtotal.sum() + 1:
            break
        raw[col] = raw[col].ffill()
        grouping.append(str(col))
    if grouping:
        report.notes.append(f"{src}: a grouped report; its column(s) {', '.join(map(repr, grouping))} name each group "
                            "on its first row only and were filled down over the group's rows")
    return raw


def _without_deleted(frame: pd.DataFrame, config: PipelineConfig, report: DataReport, src: str
                     ) -> tuple[pd.DataFrame, tuple[str, ...]]:
    """The deals without those whose status says they were deleted in the CRM (after the config's [values.status]
    mapping), and their ids: set aside (``--strict`` refuses them, the pipeline store's writes apply them)."""
    if "status" not in frame.columns:
        return frame, ()
    status = _map_values(as_text(frame["status"]), dict(config.values.get("status", {})))
    deleted = status.map(fold, na_action="ignore").eq("deleted").fillna(False).to_numpy(dtype=bool)
    if not deleted.any():
        return frame, ()
    report.set_rows_aside(src, "deleted deals (status 'deleted')", frame.loc[deleted, ROW].tolist(), deletion=True)
    return frame[~deleted], _ids_of(frame, deleted)


def _chosen_pipelines(frame: pd.DataFrame, config: PipelineConfig, report: DataReport, src: str
                     ) -> tuple[pd.DataFrame, tuple[str, ...]]:
    """The deals of the config's ``pipelines`` (by the ``pipeline`` column), and the ids of the others, set aside:
    each pipeline has its own stages. Naming none, every deal is kept, with a warning when the export holds
    several pipelines (their stages would be read as one pipeline's)."""
    if PIPELINE not in frame.columns:
        if config.pipelines:
            report.error(src, f"pipelines {list(config.pipelines)} are configured, but there is no pipeline column to "
                         "choose deals by; map the export's under [columns] (pipeline = \"...\")", PIPELINE)
        return frame, ()
    names = as_text(frame[PIPELINE])
    if not config.pipelines:
        seen = names.dropna().unique().tolist()
        if len(seen) > 1:
            report.warn(src, f"deals of {len(seen)} pipelines ({examples(seen)}): their stages are read as one "
                        "pipeline's; to learn one pipeline, name it in the config: pipelines = [\"...\"]", PIPELINE)
        return frame, ()
    chosen = names.map(fold, na_action="ignore").isin({fold(p) for p in config.pipelines}).to_numpy(dtype=bool)
    if chosen.all():
        return frame, ()
    others = names[~chosen].fillna("(empty)").unique().tolist()
    report.set_rows_aside(src, f"deals of other pipelines than {', '.join(config.pipelines)} ({examples(others)})",
                          frame.loc[~chosen, ROW].tolist(), column=PIPELINE)
    return frame[chosen], _ids_of(frame, ~chosen)


def _ids_of(frame: pd.DataFrame, rows: np.ndarray) -> tuple[str, ...]:
    """The distinct deal ids of ``rows`` (a mask) of the deals, in order (none without an id column)."""
    if "deal_id" not in frame.columns:
        return ()
    return tuple(dict.fromkeys(as_text(frame.loc[rows, "deal_id"]).dropna().tolist()))


def _status_from_stage(frame: pd.DataFrame, config: PipelineConfig, report: DataReport, src: str) -> pd.DataFrame:
    """With no status column, the status comes from the stage: a won or lost label (``won_labels``,
    ``lost_labels``, or mapped by ``[values.stage]``) closes the deal; an open stage leaves it open."""
    if "status" in frame.columns or "stage" not in frame.columns:
        return frame
    kind, _ = _classify_stages(as_text(frame["stage"]), config)
    if not kind.isin(["won", "lost"]).any():
        return frame
    report.notes.append("no status column: the status of each deal comes from its stage (won and lost labels "
                        "close it)")
    return frame.assign(status=kind.where(kind.isin(["won", "lost"]), "open"))


SCORE_REQUIRED = ("deal_id", "created_at", "amount", "stage")


def load_open_deals(deals: TableInput, config: PipelineConfig | None = None) -> pd.DataFrame:
    """Read and validate open deals to score (the input of ``scoring score`` and ``forecast``); see
    :func:`read_open_deals`, whose report this drops."""
    return read_open_deals(deals, config)[0]


def read_open_deals(deals: TableInput, config: PipelineConfig | None = None, strict: bool = False,
                    history: TableInput | None = None, field_history: TableInput | None = None
                    ) -> tuple[pd.DataFrame, DataReport]:
    """Read and validate the open deals of a file: a whole export (open and closed deals) or only open ones.

    Needs ``deal_id``, ``stage``, ``amount`` and ``created_at``; ``stage_entered_at``,
    ``expected_close_date`` and feature columns are optional. Closed deals (a ``status``, or a stage that
    is a won or lost label) are counted and skipped. Raises :class:`DataError` listing every problem. The
    spreadsheet row of each deal stays in the ``_row`` column, so that scoring names the row of a problem it
    finds (:mod:`scoring.data.open_deals`). Where a deal's row gives no ``stage_entered_at``, its latest entry
    into its stage comes from the stage ``history`` when given, or from the stage dates the export carries
    (HubSpot's ``Date entered`` columns), or else from the stage changes of the ``field_history`` (Salesforce's
    Opportunity Field History): read as the files ``train`` reads, so that days in the stage are what the model
    learned from. (The field history's other changes are the deals' signals, read by
    :func:`scoring.data.signals.read_signals`.)
    """
    config = config or PipelineConfig()
    report = DataReport()
    export = _read_export(deals, history, config, report, field_history)
    src, frame, excel = export.deals_src, export.deals, export.excel
    stage_dates = None
    if export.raw_hist is not None and export.hist_src is not None:
        stage_dates = map_columns(export.raw_hist, config.history_columns, (*HISTORY_COLUMNS, FROM_STAGE), report,
                                  export.hist_src, "history")
        if not has_columns(stage_dates, export.raw_hist, HISTORY_COLUMNS, report, export.hist_src):
            stage_dates = None
    if not has_columns(frame, export.raw_deals, SCORE_REQUIRED, report, src) or not _finish(report, strict).ok:
        raise DataError("the deals to score cannot be used: " + _finish(report, strict).summary(), report)
    if "status" not in frame.columns:
        frame["status"] = "open"
    status = canonical_status(frame["status"], config).str.casefold()
    closed = status.isin(["won", "lost", "deleted"])
    closed |= status.isna() & _classify_stages(as_text(frame["stage"]), config)[0].isin(["won", "lost"])  # by stage
    if closed.any():
        report.set_rows_aside(src, "closed or deleted deals: only open deals are scored", frame.loc[closed, ROW])
        frame = frame[~closed.to_numpy()]
    if stage_dates is not None:
        frame = _entered_from_stage_dates(frame, stage_dates, config, excel)
    parsed = _parse_deals(frame, config, report, src, excel)
    report = _finish(report, strict)
    if not report.ok:
        raise DataError("the deals to score cannot be used: " + report.summary(), report)
    extra = [c for c in parsed.columns if c not in DEAL_COLUMNS and not c.startswith("_")]
    return parsed[[*DEAL_COLUMNS, *extra, ROW]].drop(columns=["status", "closed_at"]).reset_index(drop=True), report


def _entered_from_stage_dates(frame: pd.DataFrame, stage_dates: pd.DataFrame, config: PipelineConfig,
                              excel: bool) -> pd.DataFrame:
    """Each deal's entry into its current stage, where the file gives none, from a stage history (``deal_id``,
    ``stage``, ``entered_at`` as exported): :func:`latest_stage_entries`. Unreadable dates and stages are left out
    here: training's reading of the history reports them."""
    if not {"deal_id", "stage"} <= set(frame.columns) or stage_dates.empty:
        return frame
    given = frame["stage_entered_at"] if "stage_entered_at" in frame.columns else pd.Series(None, index=frame.index)
    wanted = pd.Index(as_text(frame["deal_id"])[as_text(given).isna()].dropna())
    stage_dates = stage_dates.assign(deal_id=same_deal_ids(as_text(stage_dates["deal_id"]), wanted, DataReport(), "", ""))
    stage_dates = stage_dates[is_in(stage_dates["deal_id"], wanted)]  # their rows only
    if stage_dates.empty:
        return frame
    try:
        when = parse_dates(stage_dates["entered_at"], declared_format(config.date_formats, "entered_at",
                                                                      config.date_format), excel).values
    except AmbiguousDates:
        return frame
    entries = pd.DataFrame({"deal_id": as_text(stage_dates["deal_id"]).to_numpy(),
                            "stage": as_text(stage_dates["stage"]).to_numpy(), "when": when.to_numpy()})
    found = latest_stage_entries(as_text(frame["deal_id"]), as_text(frame["stage"]), entries, config)
    text = pd.Series(found, index=frame.index).dt.strftime("%Y-%m-%dT%H:%M:%S")
    return frame.assign(stage_entered_at=given.where(as_text(given).notna(), text))


def latest_stage_entries(deal_ids: pd.Series, stages: pd.Series, entries: pd.DataFrame, config: PipelineConfig
                         ) -> np.ndarray:
    """When each deal (``deal_ids``, in ``stages`` as written) entered its current stage, from its stage ``entries``
    (``deal_id``, ``stage`` as written, ``when`` as datetimes): the start of its latest stay in that stage (a log's
    rows within one stay, an amount changed, are not entries), as training reads days in the stage. A stage history
    file's rows and a request's stage changes alike; datetime64[us], NaT where the entries do not tell."""
    entries = pd.DataFrame({"deal_id": as_text(entries["deal_id"]).to_numpy(),
                            "stage": _classify_stages(as_text(entries["stage"]), config)[1].to_numpy(),
                            "when": pd.to_datetime(entries["when"]).to_numpy()})
    entries = entries.dropna(subset=["deal_id", "stage", "when"]).sort_values(["deal_id", "when"], kind="stable")
    stays = (entries["deal_id"] != entries["deal_id"].shift()) | (entries["stage"] != entries["stage"].shift())
    latest = entries[stays].drop_duplicates(["deal_id", "stage"], keep="last").set_index(["deal_id", "stage"])["when"]
    keys = pd.MultiIndex.from_arrays([as_text(deal_ids).to_numpy(), _classify_stages(as_text(stages), config)[1].to_numpy()])
    return latest.reindex(keys).to_numpy().astype("datetime64[us]")


#: A status as CRMs write it besides open, won and lost (Close's "active", Copper's and Insightly's "abandoned")
#: and in their users' languages (German, French, Spanish, Portuguese, Italian, Dutch; Pipedrive, Odoo, Zoho and
#: Salesforce export it translated), folded: status cells only, never stage names.
STATUS_WORDS = {
    **dict.fromkeys(("active", "offen", "ouvert", "ouverte", "abierto", "abierta", "aberto", "aberta", "aperto",
                     "aperta"), "open"),
    **dict.fromkeys(("gewonnen", "gagné", "gagnée", "gagne", "ganado", "ganada", "ganho", "ganha", "vinto", "vinta"),
                    "won"),
    **dict.fromkeys(("abandoned", "verloren", "perdu", "perdue", "perdido", "perdida", "perso", "persa"), "lost"),
}


def canonical_status(status: pd.Series, config: PipelineConfig) -> pd.Series:
    """Status cells as the contract reads them: mapped by the config's [values.status], then its won and lost
    labels as won and lost (open, won and lost as such, and in other languages, :data:`STATUS_WORDS`; anything
    else as written, blank as NA)."""
    mapped = _map_values(as_text(status), dict(config.values.get("status", {})))
    labels = {**STATUS_WORDS, **{s: s for s in STATUSES}}
    labels |= {fold(s): "won" for s in config.won_labels} | {fold(s): "lost" for s in config.lost_labels}
    return mapped.map({v: labels.get(fold(v), v) for v in mapped.dropna().unique()})


def _map_values(series: pd.Series, mapping: dict[str, str]) -> pd.Series:
    """Replace export values by canonical ones (exact match first, then ignoring case and spacing)."""
    if not mapping:
        return series
    folded = {fold(k): v for k, v in mapping.items()}
    uniques = series.dropna().unique()
    table = {v: mapping.get(v, folded.get(fold(v), v)) for v in uniques}
    return series.map(table)


def _stage_lookup(config: PipelineConfig) -> dict[str, tuple[str, str]]:
    """Folded stage text -> (kind, canonical): kind is 'open', 'won' or 'lost'."""
    table = {fold(s): ("open", s) for s in config.stages}
    table.update({fold(s): ("won", "won") for s in config.won_labels})
    table.update({fold(s): ("lost", "lost") for s in config.lost_labels})
    return table


def stage_classifier(config: PipelineConfig) -> Callable[[str], tuple[str, str]]:
    """Stage text -> (kind, canonical name): kind is 'open', 'won', 'lost' or 'unknown'. The config's
    [values.stage] table applies first, then names match ignoring case and spacing."""
    lookup = _stage_lookup(config)
    mapping = dict(config.values.get("stage", {}))
    folded = {fold(k): v for k, v in mapping.items()}

    def classify(text: str) -> tuple[str, str]:
        value = mapping.get(text, folded.get(fold(text), text))
        return lookup.get(fold(value), ("unknown", value))

    return classify


def _classify_stages(stages: pd.Series, config: PipelineConfig) -> tuple[pd.Series, pd.Series]:
    """Each stage cell's kind ('open', 'won', 'lost', 'unknown' or 'missing') and canonical name."""
    classify = stage_classifier(config)
    table = {v: classify(v) for v in stages.dropna().unique()}
    kind = stages.map({v: k for v, (k, _) in table.items()}).astype(object).fillna("missing")
    canon = stages.map({v: c for v, (_, c) in table.items()})
    return kind, canon


#: A long numeric id as Excel shows and saves it once it no longer fits (HubSpot's record ids: ``1.23457E+10``).
_ROUNDED_ID = r"(?i)\d\.\d+E\+\d{1,2}"


def _differing(rows: pd.DataFrame, ids: pd.Series, cells: list[str]) -> str:
    """What tells the rows of repeated deal ids apart, for the error: the columns whose cells differ among a deal's
    rows (a report of one row per product line differs in the product's columns), most often first."""
    text = rows[[c for c in cells if c != "deal_id"]].astype("str")
    differ = text.groupby(ids.to_numpy()).nunique().gt(1).sum()
    names = differ[differ > 0].sort_values(ascending=False, kind="stable").index.tolist()
    if not names:
        return ""
    return (f"; their rows differ in {examples(names)}: a report of one row per product or line item, or exports of "
            "different days joined, holds a deal more than once (export one row per deal, the latest)")


def _parse_deals(frame: pd.DataFrame, config: PipelineConfig, report: DataReport, src: str,
                 excel: bool = False) -> pd.DataFrame:
    out = frame.copy()

    def report_rows(mask: pd.Series) -> list[int]:
        return out.loc[mask, ROW].tolist()

    ids = as_text(out["deal_id"])
    if ids.isna().any():
        report.error(src, "expected a deal identifier, the cell is empty", "deal_id", report_rows(ids.isna()))
    rounded = ids.str.fullmatch(_ROUNDED_ID).fillna(False).astype(bool)
    if rounded.any():
        report.error(src, f"deal ids in Excel's scientific notation ({examples(ids[rounded].unique().tolist())}): Excel "
                     "rounded long numeric ids when the file was saved from it, so deals are lost or merged; export "
                     "again and use the file as exported (or import it into Excel with the id column as text)",
                     "deal_id", report_rows(rounded))
    cells = [c for c in out.columns if not str(c).startswith("_")]
    repeated = ids.notna() & ids.duplicated(keep=False)
    twin = np.zeros(len(out), dtype=bool)
    if repeated.any():
        twin[repeated.to_numpy()] = out.loc[repeated, cells].astype("str").duplicated(keep="first").to_numpy()
    if twin.any():  # the same deal exported twice (files joined, a report's rows repeated): nothing is lost
        report.set_rows_aside(src, "rows repeating an earlier row cell for cell (one deal written twice)",
                              report_rows(pd.Series(twin, index=out.index)), column="deal_id", folded=True)
        out, ids = out[~twin], ids[~twin]
    dup = ids.notna() & ids.duplicated(keep=False)
    if dup.any():
        report.error(src, f"duplicate deal_id {examples(ids[dup].unique().tolist())}; each deal must appear once"
                     + _differing(out[dup], ids[dup], cells), "deal_id", report_rows(dup))
    out["deal_id"] = ids

    raw_amount = out["amount"]
    amount, unreadable = parse_numbers(raw_amount, config.number_format, found=config.found_number_format)
    blank = amount.isna() & ~unreadable
    if blank.any():  # common in CRM exports (early deals): the deal still teaches probabilities; no revenue
        report.set_rows_aside(src, "amount is blank: the deal is kept (it teaches probabilities and is scored) but "
                              "adds no revenue", report_rows(blank), column="amount", kept=True)
    if unreadable.any():  # not a number (infinite ones included: parse_numbers)
        report.error(src, f"expected a number >= 0 (thousands separators, currency signs and decimal commas are read; "
                     f"declare number_format in the config when detection fails), got "
                     f"{examples(raw_amount[unreadable].astype(str).tolist())}", "amount", report_rows(unreadable))
    negative = amount < 0
    if negative.any():
        report.error(src, f"expected a number >= 0, got {examples(raw_amount[negative].astype(str).tolist())}",
                     "amount", report_rows(negative))
    out["amount"] = _in_major_units(amount, out, config, report, src)  # NaN where blank or unreadable

    status = canonical_status(out["status"], config)
    kind, canon = _classify_stages(as_text(out["stage"]), config)
    blank = status.isna() & kind.isin(["open", "won", "lost"])
    if blank.any():  # a status written only once a deal closes ("Closed Won", "Closed Lost", blank while open)
        status = status.mask(blank, kind)
        report.notes.append(f"{int(blank.sum()):,} deal(s) with a blank status: taken from the stage (an open stage "
                            "leaves a deal open, a won or lost label closes it)")
    bad_status = ~status.isin(STATUSES)
    if bad_status.any():
        report.error(src, f"expected open, won or lost, got {examples(status[bad_status].fillna('(empty)').unique().tolist())}"
                     "; map other labels in the config's [values.status] table", "status", report_rows(bad_status))
    out["status"] = status

    out["stage"] = canon
    out["_stage_kind"] = kind
    unknown = kind.isin(["unknown", "missing"]) | ((kind != "open") & (status == "open"))
    if unknown.any():
        report.error(src, f"unknown stage {examples(out.loc[unknown, 'stage'].fillna('(empty)').unique().tolist())}; "
                     f"expected one of the configured stages {list(config.stages)}"
                     " (add it to stages, or map it in the config's [values.stage] table; `scoring config` drafts a config "
                     "from the export's own stages)", "stage", report_rows(unknown))

    out = _outcome_dates(out, report, src)
    for col in DEAL_DATE_COLUMNS:
        if col not in out.columns:
            out[col] = pd.Series(pd.NaT, index=out.index, dtype="datetime64[us]")
            continue
        out[col] = read_dates(out[col], col, config, report, src, out[ROW], excel)
    planned = (out["status"] == "open") & out["closed_at"].notna() & out["expected_close_date"].isna()
    if planned.any():  # one close date column, as CRMs keep it: the planned close while open, the actual once closed
        out.loc[planned, "expected_close_date"] = out.loc[planned, "closed_at"]
        out.loc[planned, "closed_at"] = pd.NaT
        report.notes.append(f"{int(planned.sum()):,} open deal(s) with a closed_at and no expected_close_date: their "
                            f"closed_at ({out.attrs.get('mapped_from', {}).get('closed_at', 'closed_at')!r}) read as "
                            "the date they are expected to close")

    empty_created = out["created_at"].isna() & ~as_text(frame["created_at"]).notna()
    if empty_created.any():  # it cannot be placed in time; the other deals do not depend on it
        report.set_rows_aside(src, "no creation date: the deal cannot be placed in time", report_rows(empty_created),
                              column="created_at")
        out = out[~empty_created]
    return out


#: An amount's header that says it counts cents (``amount_cents``, ``Value (in cents)``).
_CENTS = re.compile(r"(?<![a-z])(?:cents?|cts)(?![a-z])", re.IGNORECASE)


def _in_major_units(amount: pd.Series, out: pd.DataFrame, config: PipelineConfig, report: DataReport,
                    src: str) -> pd.Series:
    """The amounts in currency units, not cents: an API pull writes Close's ``value`` in cents beside its
    ``value_formatted`` ("$500" for 50000), a warehouse's ``amount_cents`` says so. Amounts in cents would put
    every forecast 100 times too high; they are divided by 100, said in a note, when the amount's header names
    cents or its formatted twin (``<header> formatted``) reads a hundredth of it on nine rows in ten."""
    source = str(out.attrs.get("mapped_from", {}).get("amount", "amount"))
    reason = None
    if _CENTS.search(source):
        reason = f"its header {source!r} says so"
    else:
        twins = header_matches([str(c) for c in out.columns], (f"{source} formatted", f"formatted {source}"))
        if twins:
            shown, _ = parse_numbers(out[twins[0]], config.number_format)
            both = (amount > 0) & (shown > 0)
            if both.sum() >= 5 and np.isclose(amount[both], 100 * shown[both], rtol=1e-6).mean() >= 0.9:
                reason = f"{twins[0]!r} shows each a hundredth of it"
    if reason is None:
        return amount
    report.notes.append(f"amounts in {source!r} read as cents ({reason}): divided by 100")
    return amount / 100


#: Columns that date the close of won deals only, or of lost deals only (Pipedrive's "Won time" and "Lost time",
#: Close's date_won and date_lost, ...), as headers name them.
OUTCOME_DATES = {"won": ("won time", "date won", "won date", "won on", "won at", "date of win"),
                 "lost": ("lost time", "date lost", "lost date", "lost on", "lost at", "date of loss")}


def _outcome_dates(out: pd.DataFrame, report: DataReport, src: str) -> pd.DataFrame:
    """A won (lost) deal's close date from a column dating won (lost) deals only, where the export has one and
    the deal's cell there is filled (else from ``closed_at``); those columns are then not read again (never
    features: a date)."""
    extra = [str(c) for c in out.columns if c not in DEAL_COLUMNS and not str(c).startswith("_")]
    found = {outcome: matches[0] for outcome, names in OUTCOME_DATES.items()
             if (matches := header_matches(extra, names))}
    if not found:
        return out
    closed = out["closed_at"] if "closed_at" in out.columns else pd.Series(None, index=out.index, dtype=object)
    for outcome, column in found.items():
        closed = out[column].where((out["status"] == outcome) & as_text(out[column]).notna(), closed)
    report.notes.append("closed_at of " + " and of ".join(f"{outcome} deals from {column!r}"
                                                         for outcome, column in found.items())
                        + (" (else from closed_at)" if "closed_at" in out.columns else ""))
    return out.assign(closed_at=closed).drop(columns=list(found.values()))


def _parse_history(frame: pd.DataFrame, deals: pd.DataFrame, config: PipelineConfig,
                   report: DataReport, src: str, excel: bool = False, deleted: tuple[str, ...] = (),
                   apart: Mapping[str, Sequence[str]] | None = None) -> pd.DataFrame:
    out = frame.copy()

    def error(message: str, column: str, mask: pd.Series) -> None:
        if SOURCE_COLUMN in out.columns:  # rows derived from a wide export: name the column they came from
            for source_col, part in out[mask].groupby(SOURCE_COLUMN, sort=False):
                report.error(src, message, str(source_col), part[ROW].tolist())
        else:
            report.error(src, message, column, out.loc[mask, ROW].tolist())

    by_id = deals.dropna(subset=["deal_id"]).drop_duplicates("deal_id").set_index("deal_id")
    out["deal_id"] = as_text(out["deal_id"])
    unknown_deal = pd.Series(other_deals(out, by_id.index, report, src, "history", deleted=deleted, apart=apart),
                             index=out.index)

    kind, canon = _classify_stages(as_text(out["stage"]), config)
    out["stage"], out["_stage_kind"] = canon, kind
    bad_stage = kind.isin(["unknown", "missing"])
    if bad_stage.any():
        error(f"unknown stage {examples(out.loc[bad_stage, 'stage'].fillna('(empty)').unique().tolist())}; expected one of "
              f"{list(config.stages)} or a won/lost label {[*config.won_labels, *config.lost_labels]} (a stage renamed or "
              "retired since: map its old name onto a stage in the config's [values.stage] table; `scoring config` "
              "drafts a config from the export's own stages)", "stage", bad_stage)

    try:
        dates = parse_dates(out["entered_at"], declared_format(config.date_formats, "entered_at", config.date_format),
                            excel)
    except AmbiguousDates as exc:
        report.error(src, str(exc), "entered_at")
        return out.iloc[:0]
    parsed, bad = dates.values, dates.unreadable | dates.implausible
    missing = parsed.isna() & ~bad
    if dates.unreadable.any():
        error(unreadable_dates(dates.form, out.loc[dates.unreadable, "entered_at"].astype(str).tolist()), "entered_at",
              dates.unreadable)
    if dates.implausible.any():
        error(f"expected a date between {PLAUSIBLE_YEARS[0]} and {PLAUSIBLE_YEARS[1]}; got "
              f"{examples(out.loc[dates.implausible, 'entered_at'].astype(str).tolist())}", "entered_at",
              dates.implausible)
    if missing.any():
        error("expected the date the deal entered the stage, the cell is empty", "entered_at", missing)
    out["entered_at"] = parsed
    out = out[~(unknown_deal | bad_stage | bad | missing)]
    out, changes_only = _with_creation(out, by_id, config, report, src)

    # Won/lost rows: their date completes a missing closed_at, then the outcome comes from the deals table.
    terminal = out[out["_stage_kind"].isin(["won", "lost"])]
    if not terminal.empty:
        last = terminal.sort_values("entered_at").groupby("deal_id").last()
        status = by_id["status"]
        disagree = last.index[status.reindex(last.index).to_numpy() != last["_stage_kind"].to_numpy()]
        later = out[out["_stage_kind"].eq("open").to_numpy() & is_in(out["deal_id"], disagree)]
        later = later[later["entered_at"].to_numpy() > lookup(later["deal_id"], last["entered_at"]).to_numpy()]
        reopened = pd.Index(later["deal_id"].unique()).intersection(status.index[status.eq("open").to_numpy()])
        if len(reopened):  # closed, then worked again: open, as the deals say
            report.notes.append(f"{len(reopened):,} open deal(s) were re-opened after a won or lost row of the history "
                                f"({examples(list(reopened))}): open, as the deals' status says")
            disagree = disagree.difference(reopened)
        if len(disagree):
            report.warn(src, f"the history's last won/lost row disagrees with the deals' status for deal(s) "
                        f"{examples(list(disagree))}; the deals' status is used", "stage",
                        terminal[terminal["deal_id"].isin(disagree)][ROW].tolist())
        agree = deals["status"].isin(["won", "lost"]) & is_in(deals["deal_id"], last.index)
        agree &= deals["deal_id"].map(last["_stage_kind"]).eq(deals["status"])
        deals[HISTORY_CLOSE] = lookup(deals["deal_id"], last["entered_at"]).where(agree)  # for _closed_after_today
        fill = agree & deals["closed_at"].isna()
        if fill.any():
            deals.loc[fill, "closed_at"] = deals.loc[fill, HISTORY_CLOSE]
            report.notes.append(f"{int(fill.sum())} closed deal(s) took closed_at from their won/lost history row")
        report.set_rows_aside(src, "won/lost rows: the outcome comes from the deals' status and closed_at",
                              terminal[ROW].tolist(), folded=True)
        out = out[out["_stage_kind"] == "open"]

    out = out.sort_values(["deal_id", "entered_at"], kind="stable")
    ids_sorted, stages_sorted = out["deal_id"].to_numpy(), out["stage"].to_numpy()
    repeat = np.zeros(len(out), dtype=bool)
    repeat[1:] = (ids_sorted[1:] == ids_sorted[:-1]) & (stages_sorted[1:] == stages_sorted[:-1])
    report.set_rows_aside(src, "repeats of the stage the deal was already in (a change of another field, "
                          "or a duplicate row)", out.loc[repeat, ROW].tolist(), folded=True)
    out = out[~repeat]

    closed_at = lookup(out["deal_id"], by_id["closed_at"])
    # a close date without a time (Salesforce's Close Date) means that whole day: history stamped later that
    # day (a deal created and lost on one day) is on time
    whole_day = closed_at.notna() & (closed_at == closed_at.dt.normalize())
    closed_at = closed_at.where(~whole_day, closed_at + pd.Timedelta(days=1) - pd.Timedelta(microseconds=1))
    after = closed_at.notna() & (out["entered_at"] > closed_at)
    if after.any():
        report.warn(src, "stage entered after the deal was closed; those rows are set aside", "entered_at",
                    out.loc[after, ROW].tolist())
        report.set_rows_aside(src, "stage entered after the deal closed", out.loc[after, ROW].tolist())
        out = out[~after]
    created = lookup(out["deal_id"], by_id["created_at"])
    early = created.notna() & (out["entered_at"] < created.dt.normalize())
    if early.any():
        report.warn(src, "stage entered before the deal's created_at (kept as given)", "entered_at",
                    out.loc[early, ROW].tolist())
    return _with_unchanged(out, by_id, report, src) if changes_only else out


def _with_creation(out: pd.DataFrame, by_id: pd.DataFrame, config: PipelineConfig, report: DataReport, src: str
                   ) -> tuple[pd.DataFrame, bool]:
    """The history with the stage each deal was created in, when it is a log of changes only (Odoo's tracking
    values, Salesforce's field history): its rows say the stage a deal left (``from_stage``), and most deals' first
    row says one, so no row records a deal's creation. Each deal's first ``from_stage`` is then an entry at its
    creation. Returns the history and whether it is such a log; a history with a row at each deal's creation
    (Salesforce's Opportunity History report: its first row has no From Stage) is returned as it is."""
    if FROM_STAGE not in out.columns or out.empty:
        return out, False
    first = out.sort_values("entered_at", kind="stable").drop_duplicates("deal_id")
    kind, canon = _classify_stages(as_text(first[FROM_STAGE]), config)
    if not kind.ne("missing").mean() > 0.5:
        return out, False
    unknown = kind.eq("unknown")
    if unknown.any():
        report.error(src, f"unknown stage {examples(as_text(first.loc[unknown, FROM_STAGE]).unique().tolist())} "
                     f"left by a deal's first stage change (the stage it was created in); expected one of "
                     f"{list(config.stages)}", FROM_STAGE, first.loc[unknown, ROW].tolist())
    created = lookup(first["deal_id"], by_id["created_at"])
    start = kind.eq("open") & created.notna() & (created <= first["entered_at"])
    entries = first[start].assign(stage=canon[start], entered_at=created[start], _stage_kind="open")
    report.notes.append(f"{src} logs stage changes only: {int(start.sum()):,} deal(s) were in the stage their first "
                        "change left since their creation")
    return pd.concat([entries, out], ignore_index=True), True


def _with_unchanged(out: pd.DataFrame, by_id: pd.DataFrame, report: DataReport, src: str) -> pd.DataFrame:
    """A log of changes only with the deals it has no open-stage row for: they never changed stage, so each was in
    its current one (a lost deal: the one it was lost in) since its creation. Left out, they would be missing from
    training, and they are most deals lost early."""
    changed = is_in(pd.Series(by_id.index), pd.Index(out["deal_id"].unique()))
    stayed = by_id[by_id["_stage_kind"].eq("open").to_numpy() & ~changed & by_id["created_at"].notna().to_numpy()]
    if stayed.empty:
        return out
    report.notes.append(f"{len(stayed):,} deal(s) without a stage change in {src}: in their current stage since "
                        "their creation")
    entries = pd.DataFrame({"deal_id": pd.Series(stayed.index, dtype=out["deal_id"].dtype), "stage": stayed["stage"].to_numpy(),
                            "entered_at": stayed["created_at"].to_numpy(), "_stage_kind": "open"})
    return pd.concat([out, entries], ignore_index=True).sort_values(["deal_id", "entered_at"], kind="stable")


#: Why closed deals created on an import's day before which they had closed are set aside.
IMPORTED_CLOSED = "closed deals imported into the CRM"


def _without_imported_closed(deals: pd.DataFrame, report: DataReport, src: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The deals without the closed ones a move into the CRM imported, and those: created on a day of bulk creation
    (:mod:`scoring.data.bulk`) and closed before it. A CRM dates a record's creation the day it is made (Salesforce
    unless the import sets its audit fields), so a migrated org's old deals say they were created after they closed:
    their open life (age, time in each stage) is unknown, so they are set aside, counted and listed, with their
    history, and kept only for what they booked. A few such deals on ordinary days stay an error
    (:func:`_check_deal_dates`)."""
    days = bulk_days(deals["created_at"])
    if days.empty:
        return deals, deals.iloc[:0]
    created = deals["created_at"].dt.normalize()
    rows = (deals["status"].isin(["won", "lost"]) & (deals["closed_at"] < created) & created.isin(days)).to_numpy()
    if not rows.any():
        return deals, deals.iloc[:0]
    shown = examples([f"{day:%Y-%m-%d}" for day in days])
    report.set_rows_aside(src, f"{IMPORTED_CLOSED} (created in bulk on {shown}, closed before it: their time open is "
                          "not known; what they booked is counted in past periods)", deals.loc[rows, ROW].tolist(),
                          column="created_at")
    return deals[~rows], deals[rows]


def _check_deal_dates(deals: pd.DataFrame, report: DataReport, src: str) -> None:
    rows = deals[ROW]
    closed = deals["status"].isin(["won", "lost"])
    no_close = closed & deals["closed_at"].isna()
    if no_close.any():
        report.error(src, "a won or lost deal needs the date it closed; the cell is empty",
                     "closed_at", rows[no_close].tolist())
    before = deals["closed_at"] < deals["created_at"].dt.normalize()
    if before.any():
        report.error(src, "closed_at is before created_at; expected a close date on or after creation (a CRM dates "
                     "an imported deal's creation the day of the import: closed deals imported in bulk on one or two "
                     "days are set aside as such)", "closed_at", rows[before].tolist())
    open_closed = (deals["status"] == "open") & deals["closed_at"].notna()
    if open_closed.any():
        report.warn(src, "open deals with a closed_at: the date is ignored while the deal is open",
                    "closed_at", rows[open_closed].tolist())
        deals.loc[open_closed, "closed_at"] = pd.NaT
    early = deals["stage_entered_at"] < deals["created_at"].dt.normalize()
    if early.any():
        report.warn(src, "stage_entered_at is before created_at (kept as given)", "stage_entered_at",
                    rows[early].tolist())


#: A deals' column (never a feature) of the date the stage history's won or lost row gives each closed deal.
HISTORY_CLOSE = "_history_closed_at"
#: How far past the data's last creation or stage change its closes may go when the data is dated past today (a
#: simulated company, a clock set wrong): a close beyond is a planned date there too.
FUTURE_CLOSE_GRACE = pd.Timedelta(days=31)


def _closed_after_today(deals: pd.DataFrame, hist: pd.DataFrame | None, report: DataReport, src: str,
                        live: bool = False, now: pd.Timestamp | None = None) -> None:
    """Closed deals dated after today (a day's grace for time zones): the rep's planned close date, kept when the
    deal was won or lost early (a CRM that does not move it, a lost deal). Read as given, one such date made the
    data's end, and so training's as-of date, years ahead, every open deal open that long. The deal is kept, its
    outcome learned, closed when its stage history's won or lost row says, else on the data's last date otherwise
    (the latest creation, stage change or other close; ``live``, a write to the pipeline store: today), said as a
    row kept without its value. Data whose deals were
    created or changed stage past today (a simulated company) is judged by its own last such date instead, with
    :data:`FUTURE_CLOSE_GRACE`."""
    now = (now or pd.Timestamp.now(tz="UTC").tz_localize(None)).normalize()
    moves = [deals["created_at"].max(), deals["stage_entered_at"].max()]
    if hist is not None and not hist.empty:
        moves.append(hist["entered_at"].max())
    moved = max((d for d in moves if pd.notna(d)), default=now)
    limit = max(now + pd.Timedelta(days=2), moved + FUTURE_CLOSE_GRACE)
    future = deals["status"].isin(["won", "lost"]) & (deals["closed_at"] >= limit)
    if not future.any():
        return
    others = deals.loc[~future, "closed_at"].max()
    last = now if live else max(d for d in (moved, others) if pd.notna(d))
    last = max(last, deals.loc[future, "created_at"].max())
    dates = deals.loc[future, "closed_at"].dt.strftime("%Y-%m-%d").unique().tolist()
    logged = deals[HISTORY_CLOSE].where(deals[HISTORY_CLOSE] < limit) if HISTORY_CLOSE in deals.columns else None
    report.set_rows_aside(src, f"closed deals dated after today ({examples(dates)}: a planned close date kept when "
                          f"the deal closed): taken as closed on {last:%Y-%m-%d}, the data's last date otherwise"
                          + (", or when the stage history's won or lost row says" if logged is not None else ""),
                          deals.loc[future, ROW].tolist(), column="closed_at", kept=True)
    deals.loc[future, "closed_at"] = last if logged is None else logged[future].fillna(last)


def _erased_amounts(deals: pd.DataFrame, report: DataReport, src: str) -> float:
    """Lost deals' amounts zeroed at the loss (:func:`scoring.data.leaks.erased_amounts`) read as unknown (NaN: the
    0 is not what the deal was worth while open), said in a warning; the share of the lost deals they are."""
    status, amount = deals["status"].to_numpy(), deals["amount"].to_numpy(dtype=float)
    erased = erased_amounts(status, amount)
    if not erased.any():
        return 0.0
    shares = {kind: float((amount[status == kind] == 0).mean()) for kind in ("lost", "won", "open") if (status == kind).any()}
    listed = ", ".join(f"{share:.0%} of {kind}" for kind, share in shares.items())
    report.warn(src, f"{int(erased.sum()):,} lost deals have an amount of 0 ({listed} deals): amounts zeroed when deals "
                "were lost? Learned as 0 they would tell the outcome, so the models learn these deals' amounts as "
                "unknown, and as many of the other deals' amounts at random, so that an unknown amount tells nothing; "
                "give the amount's changes as --field-history to learn each deal's amount before it was lost", "amount",
                deals.loc[erased, ROW].tolist())
    deals.loc[erased, "amount"] = np.nan
    return float(erased.sum() / (status == "lost").sum())


def _say_bulk_days(deals: pd.DataFrame, report: DataReport, src: str) -> None:
    """A warning naming the days deals were created in bulk (:mod:`scoring.data.bulk`)."""
    days = bulk_days(deals["created_at"])
    if days.empty:
        return
    day = deals["created_at"].dt.normalize()
    shown = examples([f"{d:%Y-%m-%d} ({int((day == d).sum()):,})" for d in days])
    report.warn(src, f"deals created in bulk on {shown}, many times an ordinary day's count: an import into the CRM "
                "(a move from another) or an uploaded list? Their creation date is the import's: the new-deal forecast "
                "leaves them out of how many deals arrive and how fast new deals win; their age counts from that day",
                "created_at")


def _resolve_closed_stages(deals: pd.DataFrame, hist: pd.DataFrame | None, config: PipelineConfig,
                           report: DataReport, src: str) -> None:
    """Closed deals exported with an outcome as their stage get their last open stage from the history."""
    outcome_stage = deals["_stage_kind"].isin(["won", "lost"]) & deals["status"].isin(["won", "lost"])
    if not outcome_stage.any():
        return
    last_open = pd.Series(dtype="str")
    if hist is not None and not hist.empty:
        last_open = hist.sort_values("entered_at", kind="stable").groupby("deal_id")["stage"].last()
    found = deals.loc[outcome_stage, "deal_id"].map(last_open)
    deals.loc[found.index, "stage"] = found.where(found.notna(), deals.loc[found.index, "stage"])
    deals.loc[found.index[found.notna()], "_stage_kind"] = "open"
    unresolved = found.index[found.isna()]
    if len(unresolved) and config.last_open_stage:  # declared: the export says only won or lost
        deals.loc[unresolved, "stage"] = config.last_open_stage
        deals.loc[unresolved, "_stage_kind"] = "open"
        report.notes.append(f"{len(unresolved):,} closed deal(s) with only won or lost as their stage were last in "
                            f"{config.last_open_stage!r} (last_open_stage of the config or preset)")
        unresolved = unresolved[:0]
    if len(unresolved):
        report.error(src, "the stage of these closed deals is an outcome (won/lost), not an open stage, and no stage "
                     "history says which open stage they were in last; give --history, export the last open stage, or "
                     "declare it in the config (last_open_stage)",
                     "stage", deals.loc[unresolved, ROW].tolist())


def _without_revealing(deals: pd.DataFrame, features: dict[str, FeatureKind], config: PipelineConfig,
                       report: DataReport, src: str) -> dict[str, FeatureKind]:
    """The features but those that alone tell closed deals' outcomes or say whether a deal is closed
    (:mod:`scoring.data.leaks`), each said."""
    kept = {squash(c) for c in config.keep_columns}
    why = {name: f"{how} alone tells won from lost among the closed deals (ROC AUC {auc:.2f}), as a value written "
                 "when a deal closes does (the CRM's probability, a lost reason, the actual revenue, a count at the "
                 "close), and open deals would not carry it so"
           for name, (auc, how) in revealing_columns(deals, features).items()}
    others = {name: kind for name, kind in features.items() if name not in why}
    why |= {name: f"it says whether a deal is closed ({shut!r} on {shut_share:.0%} of the closed deals, {open_!r} on "
                  f"{open_share:.0%} of the open ones), as a flag or a value written at the close does; learned from, "
                  "the open deals' value would mean a deal never closes"
            for name, (shut, shut_share, open_, open_share) in closing_flags(deals, others).items()}
    for name, reason in why.items():
        if squash(name) in kept:
            continue
        del features[name]
        report.warn(src, f"column {name!r} is not a feature: {reason}. If it is known before the close, keep it: "
                    f"keep_columns = [{name!r}] in the config", name)
    return features


#: A column whose cells are numbers but for at most this share of them is a numeric feature.
NUMERIC_SHARE = 0.95
#: A column named as a date or time: its numbers may be Unix times (a record ID's ten digits may read as one too).
_DATED = re.compile(r"date|time|stamp|(^|[\s_])(at|on)$", re.IGNORECASE)


#: Headers of a deal's time measured when the export was made (to its close for a closed deal, to today for an open
#: one): reports' "Age", "Stage Duration", "Days in stage", "Sales cycle", "Days to close". Learned as a feature of
#: every date of a deal's life, it leaks its end (a deal won quickly shows a short age from its first day); the
#: model measures age and time in the stage at each date itself. By whole header (parentheses dropped) or phrase.
_MEASURED_NAMES = frozenset({"age", "deal age", "opportunity age", "lead age", "age days", "age in days", "days old",
                             "alter", "âge", "edad", "idade", "età", "leeftijd"})
_MEASURED = re.compile(r"stage duration|duration in stage|days? in (the )?(current )?stage|time in (the )?(current )?stage"
                       r"|days? (to|until) clos|time to clos|sales cycle|cycle length|days? since\b"
                       r"|days? open\b|elapsed days|days? (identified|qualified|validated) through", re.IGNORECASE)


def _measured_at_export(column: str) -> bool:
    """Whether a header names a deal's time measured at the export (:data:`_MEASURED`)."""
    plain = fold(re.sub(r"\([^)]*\)", " ", column)).strip(" :-_")
    return plain in _MEASURED_NAMES or bool(_MEASURED.search(fold(column).replace("_", " ")))


def _features(deals: pd.DataFrame, config: PipelineConfig, report: DataReport, src: str) -> dict[str, FeatureKind]:
    """Classify the extra columns: numeric or categorical features; set aside dates, identifiers, times measured at
    the export and empty columns."""
    ignore = {squash(c) for c in config.ignore_columns}
    keep = {squash(c) for c in config.keep_columns}
    candidates = [c for c in deals.columns if c not in DEAL_COLUMNS and not c.startswith("_")]
    if FORECAST_CATEGORY in candidates:  # a closed deal's category is "Closed": its current value tells the outcome
        candidates.remove(FORECAST_CATEGORY)
    features: dict[str, FeatureKind] = {}
    skipped: dict[str, list[str]] = {"empty": [], "date": [], "identifier": [], "measured": []}
    for col in candidates:
        if squash(col) in ignore:
            continue
        if _measured_at_export(str(col)) and squash(col) not in keep:
            skipped["measured"].append(col)
            continue
        raw = deals[col]
        text = as_text(raw) if not pd.api.types.is_numeric_dtype(raw) else raw
        present = text.notna()
        if not present.any():
            skipped["empty"].append(col)
            continue
        if _DATED.search(str(col)) and looks_like_epoch(text[present]):  # "Last Activity Date" in Unix time
            skipped["date"].append(col)
            continue
        # a few text cells ("?") do not make a numeric column a category; markers of nothing ("n/a", "-") are blank
        # a percent column ("15%", "12,5 %", as spreadsheets format them) is read as its numbers
        # the owner and the pipeline are categories even as numbers (a user's or a pipeline's id: Bitrix24's)
        if col not in (OWNER, PIPELINE) and looks_numeric(text, NUMERIC_SHARE, percent=True):
            numbers, unreadable = parse_numbers(raw, config.number_format, percent=True,
                                                found=config.found_number_format)
            read = numbers.notna()
            if read.sum() >= NUMERIC_SHARE * (read | unreadable).sum():
                if unreadable.any():
                    report.set_rows_aside(src, f"not a number in the numeric feature {col!r}: read as missing "
                                          f"({examples(raw[unreadable].astype(str).unique().tolist())})",
                                          deals.loc[unreadable, ROW].tolist(), column=col, kept=True)
                deals[col] = numbers  # NaN where blank or unreadable
                features[col] = "numeric"
                continue
        if pd.api.types.is_datetime64_any_dtype(raw) or looks_like_dates(text[present]):
            skipped["date"].append(col)
            continue
        if len(deals) >= 20 and text[present].nunique() == len(deals):
            skipped["identifier"].append(col)
            continue
        deals[col] = text.astype("str").where(present, None)
        features[col] = "categorical"
    reasons = {"empty": "empty", "date": "dates (only the canonical dates are used, so no feature reveals the future)",
               "identifier": "a different value on every deal (a name or identifier, not a feature)",
               "measured": "a deal's time measured when the export was made (to its close, or to today), which would "
                           "tell each earlier date of a deal how it ended; the model measures age and days in the stage "
                           "at each date itself (keep_columns = [...] in the config keeps one that is not)"}
    for key, cols in skipped.items():
        if cols:
            report.warn(src, f"column(s) {examples(cols)} not used as features: {reasons[key]}")
    return features
