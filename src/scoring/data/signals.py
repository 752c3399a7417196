"""Deal signals (SPEC 2.2): the field history and the activities of deals, read and checked like the deals.

``field_history``: one row per change of a tracked field (``deal_id``, ``field``, ``value`` as text,
``changed_at``), the shape of Salesforce's OpportunityFieldHistory (OpportunityId, Field, NewValue,
CreatedDate), of HubSpot's property history and of Pipedrive's deal flow changes (item_id, field_key, new_value,
log_time); a preset reshapes a CRM's own export first (Odoo's tracking
values). Field names are mapped onto the ones the product
understands (``CloseDate`` -> ``expected_close_date``, ``ForecastCategoryName`` -> ``forecast_category``,
``OwnerId`` -> ``owner``, ...); any other field is a categorical feature. ``activities``: one row per logged
activity (``deal_id``, ``occurred_at``, optional ``type``): Salesforce Tasks and Events, HubSpot
engagements, Pipedrive activities.

Rows that cannot be used but spoil nothing else are set aside and counted (SPEC 2.1): changes and
activities of deals not in the deals file, record events that change no value (Salesforce's ``created``),
stage changes (they belong in the stage history), activities without a date. A change without a date, an
unreadable date, a close date that is not a date or an amount that is not a number is an error naming the
row, as in the deals file.

:class:`SignalSpec` says which features a history supports; :mod:`scoring.features.signals` computes them,
for training's snapshots, files and requests alike.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import pandas as pd

from scoring.data.columns import (
    as_text,
    fold,
    has_columns,
    map_columns,
    other_deals,
    read_dates,
    squash,
)
from scoring.data.config import ACTIVITY_COLUMNS, FIELD_HISTORY_COLUMNS, FROM_STAGE, HISTORY_COLUMNS, OWNER, PipelineConfig
from scoring.data.formats import AmbiguousDates, declared_format, parse_dates, parse_numbers
from scoring.data.presets import get_preset
from scoring.data.problems import DataReport, examples
from scoring.data.tables import ROW, TableInput, is_in, load_table

#: A deal's keys, in a request, that carry its field history and activities (SPEC 2.2), not features.
SIGNAL_KEYS = frozenset({"history", "activities"})
CLOSE_DATE, AMOUNT, FORECAST_CATEGORY = "expected_close_date", "amount", "forecast_category"
#: The features the rep's close dates and the activities make (see scoring.features.signals).
CLOSE_DATE_FEATURES = ("close_date_pushes", "days_to_close_date")
ACTIVITY_FEATURES = ("activities_30d", "days_since_activity")
#: The forecast categories the product knows (Salesforce's and HubSpot's spellings are mapped onto them).
CATEGORIES = ("pipeline", "best_case", "commit", "omitted", "closed")

#: Export column names of the two files (compared ignoring case and spacing), after the config's own.
SIGNAL_COLUMN_NAMES: Mapping[str, tuple[str, ...]] = {
    "deal_id": ("OpportunityId", "Opportunity ID", "Deal ID", "dealId", "Record ID", "Associated Deal",
                "Associated Deal IDs", "WhatId", "What ID", "Activity - Deal ID", "Deal - ID", "item_id"),
    "field": ("Field", "Changed Field", "Field / Event", "Property", "Property name", "FieldName", "field_key"),
    "value": ("NewValue", "New Value", "Value", "To", "Property value", "new_value"),
    "changed_at": ("CreatedDate", "Created Date", "Edit Date", "Timestamp", "Changed at", "Changed Date", "Change Date",
                   "Updated at", "ChangeDate", "log_time"),
    "occurred_at": ("ActivityDate", "Activity Date", "Activity date", "Date", "Done time", "Marked as done time",
                    "Activity - Marked as done time", "Due date", "Activity - Due date", "Timestamp",
                    "CreatedDate", "Created Date", "Create date"),
    "type": ("Type", "TaskSubtype", "EventSubtype", "Activity type", "Activity - Type", "Engagement type"),
}
#: Field names as CRMs write them (folded) -> the field the product understands.
FIELD_NAMES: Mapping[str, str] = {
    **dict.fromkeys(("closedate", "close date", "close_date", "expected close date", "expected_close_date",
                     "expected_close", "expected close", "expected closing", "date_deadline"), CLOSE_DATE),
    **dict.fromkeys(("amount", "value", "deal value", "deal amount", "expected revenue", "expected_revenue",
                     "planned revenue", "planned_revenue"), AMOUNT),
    **dict.fromkeys(("forecastcategoryname", "forecastcategory", "forecast category", "forecast_category",
                     "hs_forecast_category", "hs_manual_forecast_category", "forecast category name"),
                   FORECAST_CATEGORY),
    **dict.fromkeys(("owner", "ownerid", "owner id", "owner_id", "opportunity owner", "deal owner",
                     "hubspot_owner_id", "user_id"), OWNER),
}
#: Field names of stage changes: they belong in the stage history, not here.
STAGE_FIELDS = frozenset({"stagename", "stage", "dealstage", "deal stage", "stage_id", "status"})
#: A change's previous value: the first stage change's is the stage the deal was created in.
OLD_VALUE_NAMES = ("Old Value", "From", "Previous value", "Old value char")  # (by letters and digits: OldValue)
#: Salesforce's record events (a change row that changes no value; its reports end them with a full stop).
EVENTS = frozenset({"created", "opportunitycreatedfromlead", "locked", "unlocked", "feedevent", "ownerassignment"})
_CATEGORY_NAMES = {
    **dict.fromkeys(("pipeline",), "pipeline"),
    **dict.fromkeys(("best case", "bestcase", "best_case", "mostlikely", "most likely", "upside"), "best_case"),
    **dict.fromkeys(("commit", "forecast", "committed"), "commit"),
    **dict.fromkeys(("omitted", "omit", "not forecasted", "not_forecasted"), "omitted"),
    **dict.fromkeys(("closed", "closed won", "closedwon", "won"), "closed"),
}
#: A tracked field with more distinct values than this is an identifier or free text, not a feature.
MAX_CATEGORIES = 200


@dataclass(frozen=True)
class DealSignals:
    """Canonical field history (``deal_id``, ``field``, ``value``, ``changed_at``) and activities
    (``deal_id``, ``occurred_at``, ``type``), sorted by deal and time; empty when none were given.
    ``given``: which of the two were given at all (an empty file still says "no activities were logged")."""

    field_history: pd.DataFrame = field(default_factory=lambda: empty_field_history())
    activities: pd.DataFrame = field(default_factory=lambda: empty_activities())
    given: frozenset[str] = frozenset()

    def fields(self) -> set[str]:
        return set(self.field_history["field"].unique().tolist())

    def for_deals(self, ids: pd.Series | np.ndarray) -> DealSignals:
        """The signals of ``ids`` only (the store and the Dask engine work on parts of the deals)."""
        wanted = pd.Index(pd.unique(np.asarray(ids, dtype=object)))
        fh, act = self.field_history, self.activities
        return DealSignals(fh[is_in(fh["deal_id"], wanted)], act[is_in(act["deal_id"], wanted)],
                           self.given)


@dataclass(frozen=True)
class SignalSpec:
    """Which signal features a model uses: the rep's close date (pushes, days to it), activities (in the last
    30 days, days since the last), and the tracked fields whose value at a date is a categorical feature.
    ``amount`` tracked: the amount a snapshot sees is the one set before its date."""

    close_date: bool = False
    activities: bool = False
    amount: bool = False
    categories: tuple[str, ...] = ()

    @property
    def features(self) -> dict[str, Literal["numeric", "categorical"]]:
        """Every signal feature and its kind."""
        return {**self.features_from("field_history"), **self.features_from("activities")}

    def features_from(self, kind: Literal["field_history", "activities"]) -> dict[str, Literal["numeric", "categorical"]]:
        """The features made from one kind of signal."""
        if kind == "activities":
            return dict.fromkeys(ACTIVITY_FEATURES, "numeric") if self.activities else {}
        out: dict[str, Literal["numeric", "categorical"]] = dict.fromkeys(CLOSE_DATE_FEATURES, "numeric") \
            if self.close_date else {}
        return out | dict.fromkeys(self.categories, "categorical")

    @property
    def tracked(self) -> set[str]:
        """Fields whose current value in the deals file is never a training feature."""
        return {*self.categories, *([AMOUNT] if self.amount else []), *([CLOSE_DATE] if self.close_date else [])}

    def describe(self) -> str:
        parts = [*(["the rep's close date"] if self.close_date else []), *(["amount"] if self.amount else []),
                 *self.categories, *(["activities"] if self.activities else [])]
        return ", ".join(parts) if parts else "none"

    @classmethod
    def of(cls, signals: DealSignals) -> SignalSpec:
        fh = signals.field_history
        categories = []
        for name in sorted(signals.fields() - {CLOSE_DATE, AMOUNT}):
            if fh.loc[fh["field"] == name, "value"].nunique() <= MAX_CATEGORIES:
                categories.append(name)
        return cls(close_date=CLOSE_DATE in signals.fields(), activities="activities" in signals.given,
                   amount=AMOUNT in signals.fields(), categories=tuple(categories))


def empty_field_history() -> pd.DataFrame:
    return pd.DataFrame({"deal_id": pd.Series(dtype=object), "field": pd.Series(dtype=object),
                         "value": pd.Series(dtype=object), "changed_at": pd.Series(dtype="datetime64[us]")})


def empty_activities() -> pd.DataFrame:
    return pd.DataFrame({"deal_id": pd.Series(dtype=object), "occurred_at": pd.Series(dtype="datetime64[us]"),
                         "type": pd.Series(dtype=object)})


def read_signals(field_history: TableInput | None, activities: TableInput | None, deal_ids: pd.Series | None,
                 config: PipelineConfig, report: DataReport, others: str = "that are not in the deals file",
                 deleted: Sequence[str] = (), apart: Mapping[str, Sequence[str]] | None = None,
                 stages_read: bool = False) -> DealSignals:
    """Read, map and check the two files (either may be None) against the deals' ids; problems go to ``report``.
    Rows of other deals are set aside as deals ``others`` (scoring: the closed deals of a whole export's history),
    those of ``deleted`` deals and of deals set aside for a reason (``apart``: reason -> ids, as deals in other
    pipelines) as such; stage changes too, unless
    ``stages_read`` (they are the stage history, :func:`stage_changes`).
    ``deal_ids`` None: the deals are not known yet (the Dask engine reads them part by part), every row is kept."""
    known = None if deal_ids is None else pd.Index(deal_ids.dropna().unique())
    fh, act, given = empty_field_history(), empty_activities(), set()
    if field_history is not None:
        src, raw = load_table(field_history, "field_history", report)
        excel = bool(raw.attrs.get("excel"))
        if config.preset:  # a CRM's own export of field changes (Odoo's tracking values)
            raw = get_preset(config.preset).prepare_changes(raw, config, report, src)
        frame = map_columns(raw, _names(config, "field_history_columns"), FIELD_HISTORY_COLUMNS, report, src,
                            "field history")
        if has_columns(frame, raw, FIELD_HISTORY_COLUMNS, report, src):
            other = other_deals(frame, known, report, src, "field changes", others, deleted, apart)
            fh = _field_rows(frame, other, config, report, src, excel, stages_read)
            given.add("field_history")
    if activities is not None:
        src, raw = load_table(activities, "activities", report)
        excel = bool(raw.attrs.get("excel"))
        frame = map_columns(raw, _names(config, "activity_columns"), ACTIVITY_COLUMNS, report, src, "activities")
        if has_columns(frame, raw, ACTIVITY_COLUMNS[:2], report, src):
            other = other_deals(frame, known, report, src, "activities", others, deleted, apart)
            act = _activity_rows(frame, other, config, report, src, excel)
            given.add("activities")
    return DealSignals(fh, act, frozenset(given))


def stage_changes(raw: pd.DataFrame, config: PipelineConfig, report: DataReport, src: str, borrowed: bool = False
                  ) -> pd.DataFrame | None:
    """A log of the changes of deals' fields read as a stage history: its stage changes as ``deal_id``, ``stage``,
    ``entered_at`` and, with an old value column, ``from_stage``. Salesforce's Opportunity Field History or
    HubSpot's property history given as the stage history, or (``borrowed``) the field history itself when no
    stage history is given. None when ``raw`` is no such log (no field and value columns), or, borrowed, holds no
    stage change. The other fields' changes are set aside, unless borrowed (the field history reads them)."""
    if "stage" in map_columns(raw, config.history_columns, HISTORY_COLUMNS, DataReport(), src, "history").columns:
        return None  # a stage history
    frame = map_columns(raw, _names(config, "field_history_columns"), FIELD_HISTORY_COLUMNS, DataReport(), src,
                        "field history")
    if not set(FIELD_HISTORY_COLUMNS) <= set(frame.columns):
        return None
    stage = as_text(frame["field"]).fillna("").map(fold).isin(stage_fields(config, read=True)).to_numpy(dtype=bool)
    if borrowed and not stage.any():
        return None
    if not borrowed:
        report.set_rows_aside(src, "changes of other fields than the stage (given as --field-history too, the model "
                              "learns from them)", frame.loc[~stage, ROW].tolist(), column="field")
    try:  # the dates in the whole column's format (the stage rows alone may not tell 1/10 from 10/1)
        at = parse_dates(frame["changed_at"], declared_format(config.date_formats, "changed_at", config.date_format),
                         bool(raw.attrs.get("excel"))).values
        changed = frame["changed_at"].where(at.isna(), at.dt.strftime("%Y-%m-%d %H:%M:%S"))
    except AmbiguousDates:  # said when the dates are read
        changed = frame["changed_at"]
    rows = frame[stage]
    out = pd.DataFrame({"deal_id": rows["deal_id"], "stage": rows["value"], "entered_at": changed[stage],
                        ROW: rows[ROW]})
    old = {squash(name) for name in OLD_VALUE_NAMES}
    old_col = next((c for c in raw.columns if squash(c) in old), None)
    if old_col is not None:
        out[FROM_STAGE] = raw.loc[rows.index, old_col]
    if borrowed:
        report.notes.append(f"no stage history given: the stage changes of {src} ({len(out):,} rows) are read as one")
    return out


def stage_fields(config: PipelineConfig, read: bool = False) -> frozenset[str]:
    """The field names (folded) of a deal's stage in a field history: the CRMs' and the config's stage columns';
    ``read``: only those read as the stage history (not the status, whose won and lost come from the deals)."""
    names = STAGE_FIELDS | {fold(name) for name in (*config.columns.get("stage", ()), *config.history_columns.get("stage", ()))}
    return names - {"status"} if read else names


def _names(config: PipelineConfig, key: str) -> dict[str, tuple[str, ...]]:
    """The config's column names for one of the files first, then the CRMs' names known here."""
    own = dict(getattr(config, key))
    return {canon: (*own.get(canon, ()), *SIGNAL_COLUMN_NAMES.get(canon, ())) for canon in
            (*FIELD_HISTORY_COLUMNS, *ACTIVITY_COLUMNS)}


def _field_rows(frame: pd.DataFrame, other: np.ndarray, config: PipelineConfig, report: DataReport, src: str,
                excel: bool, stages_read: bool = False) -> pd.DataFrame:
    """The field changes of the deals known (``other``: rows of other deals, already set aside)."""
    out = frame.copy()
    unknown = pd.Series(other, index=out.index)
    out["deal_id"] = as_text(out["deal_id"])
    raw_field = as_text(out["field"]).fillna("")
    folded = raw_field.map(fold)
    out["field"] = folded.map(lambda f: FIELD_NAMES.get(f, f))
    events = folded.str.rstrip(".").isin(EVENTS) | (folded == "")  # the report writes "Created."
    stage = folded.isin(stage_fields(config))
    report.set_rows_aside(src, "record events that change no field (created, ...)", out.loc[events & ~unknown, ROW],
                          column="field", folded=True)
    read = folded.isin(stage_fields(config, read=True)) & stages_read  # the stage history's rows (stage_changes)
    aside = stage & ~unknown & ~read
    report.set_rows_aside(src, "stage changes: stages come from the stage history (--history)", out.loc[aside, ROW],
                          column="field")
    when = read_dates(out["changed_at"], "changed_at", config, report, src, out[ROW], excel)
    missing = when.isna() & as_text(out["changed_at"]).isna() & ~unknown & ~events & ~stage
    if missing.any():
        report.error(src, "expected the date the field changed, the cell is empty", "changed_at",
                     out.loc[missing, ROW].tolist())
    out["changed_at"] = when
    out["value"] = as_text(out["value"])
    keep = ~(unknown | events | stage) & when.notna()
    out = out[keep]
    out = _typed_values(out, config, report, src, excel)
    out = out.sort_values(["deal_id", "changed_at"], kind="stable")
    return out[list(FIELD_HISTORY_COLUMNS)].reset_index(drop=True)


def _typed_values(out: pd.DataFrame, config: PipelineConfig, report: DataReport, src: str,
                  excel: bool) -> pd.DataFrame:
    """Close dates become ISO dates, amounts numbers, forecast categories the canonical ones (a blank value is
    kept: the field was cleared); a close date that is not a date or an amount that is not a number is an error,
    as in the deals file."""
    value = out["value"].astype(object)
    dates = (out["field"] == CLOSE_DATE).to_numpy()
    if dates.any():
        parsed = read_dates(value[dates], CLOSE_DATE, config, report, src, out.loc[dates, ROW], excel)
        value[dates] = parsed.dt.strftime("%Y-%m-%d").where(parsed.notna(), None)
    amounts = (out["field"] == AMOUNT).to_numpy()
    if amounts.any():
        numbers, unreadable = parse_numbers(value[amounts], config.number_format, found=config.found_number_format)
        if unreadable.any():
            report.error(src, f"expected a number for the amount, got "
                         f"{examples(value[amounts][unreadable].astype(str).tolist())}", "value",
                         out.loc[amounts, ROW][unreadable.to_numpy()].tolist())
        value[amounts] = numbers.map(lambda v: None if pd.isna(v) else repr(float(v)))
    cats = (out["field"] == FORECAST_CATEGORY).to_numpy()
    if cats.any():
        value[cats] = value[cats].map(lambda v: None if v is None or pd.isna(v) else _category(v))
    return out.assign(value=value)


def _category(text: str) -> str:
    folded = fold(text)
    return _CATEGORY_NAMES.get(folded, folded.replace(" ", "_"))


def _activity_rows(frame: pd.DataFrame, other: np.ndarray, config: PipelineConfig, report: DataReport, src: str,
                   excel: bool) -> pd.DataFrame:
    """The activities of the deals known (``other``: rows of other deals, already set aside)."""
    out = frame.copy()
    unknown = pd.Series(other, index=out.index)
    out["deal_id"] = as_text(out["deal_id"])
    when = read_dates(out["occurred_at"], "occurred_at", config, report, src, out[ROW], excel)
    blank = when.isna() & as_text(out["occurred_at"]).isna() & ~unknown
    if blank.any():  # Salesforce tasks without a due date are common: they cannot be placed in time
        report.set_rows_aside(src, "activities without a date: they cannot be placed in time",
                              out.loc[blank, ROW].tolist(), column="occurred_at")
    out["occurred_at"] = when
    out["type"] = as_text(out["type"]).map(lambda v: None if v is None or pd.isna(v) else fold(v)) \
        if "type" in out.columns else None
    out = out[~unknown & when.notna()].sort_values(["deal_id", "occurred_at"], kind="stable")
    return out[list(ACTIVITY_COLUMNS)].reset_index(drop=True)
