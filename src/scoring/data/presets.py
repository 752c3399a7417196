"""Presets for the CRM exports our users have: Salesforce, HubSpot, Pipedrive, Odoo, Dynamics 365, Zoho CRM and
Bitrix24.

A preset is a default :class:`PipelineConfig` (the CRM's default pipeline and stage
probabilities, its column names, the columns that must never be features) plus a ``prepare``
step for what a rename cannot do: deriving ``status`` from flags, splitting "Close Date"
into ``closed_at`` (closed deals) and ``expected_close_date`` (open ones), or turning HubSpot's
``Date entered "<stage>"`` columns into a stage history. A user's config overrides any of it.
"""
from __future__ import annotations

import re
import tomllib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from scoring.data.columns import as_text, fold, header_matches
from scoring.data.config import PipelineConfig
from scoring.data.problems import DataReport
from scoring.data.tables import ROW, SOURCE_COLUMN
from scoring.errors import ConfigError

Prepared = tuple[pd.DataFrame, pd.DataFrame | None, bool]
Prepare = Callable[[pd.DataFrame, pd.DataFrame | None, PipelineConfig, DataReport, str], Prepared]
#: Reshapes a CRM's own field-change export into the field history's columns (deal_id, field, value, changed_at).
PrepareChanges = Callable[[pd.DataFrame, PipelineConfig, DataReport, str], pd.DataFrame]


def _as_exported(changes: pd.DataFrame, config: PipelineConfig, report: DataReport, source: str) -> pd.DataFrame:
    return changes


def _no_stages(changes: pd.DataFrame) -> bool:
    return False


@dataclass(frozen=True)
class Preset:
    """A CRM export's defaults and reshaping; ``prepare`` returns (deals, history, history_was_derived),
    ``prepare_changes`` reshapes the CRM's field-change export when it has a shape of its own, and
    ``stages_in_changes`` tells whether such an export, given only as the field history, holds the stage history
    ``prepare`` reads (a field history in the canonical columns is read for its stage changes whatever the preset,
    :func:`scoring.data.signals.stage_changes`)."""

    name: str
    description: str
    config: PipelineConfig
    prepare: Prepare
    prepare_changes: PrepareChanges = _as_exported
    stages_in_changes: Callable[[pd.DataFrame], bool] = _no_stages


def _find(frame: pd.DataFrame, names: Sequence[str]) -> str | None:
    """The first of ``names`` present in ``frame`` (case and spacing ignored; else by letters and digits alone)."""
    found = header_matches([str(c) for c in frame.columns], names)
    return found[0] if found else None


#: A flag's true, as exports write it: also as a float ("1.0", a file passed through pandas) and as Excel writes TRUE
#: saved in German, French, Spanish, Italian, Portuguese or Dutch (WAHR, VRAI, ...), and yes in those languages.
_TRUE = {"true", "1", "1.0", "yes", "y", "t", "wahr", "vrai", "verdadero", "vero", "verdadeiro", "waar", "ja", "oui",
         "sí", "si", "sim"}


def _flag(series: pd.Series) -> pd.Series:
    return series.astype("str").str.strip().str.casefold().isin(_TRUE)


def _status_from_flags(deals: pd.DataFrame, won_names: Sequence[str], closed_names: Sequence[str]) -> pd.DataFrame:
    """Add ``status`` from boolean won/closed columns, unless the export already has a status."""
    won, closed = _find(deals, won_names), _find(deals, closed_names)
    if "status" in deals.columns or won is None or closed is None:
        return deals
    out = deals.copy()
    is_won, is_closed = _flag(out[won]), _flag(out[closed])
    out["status"] = "open"
    out.loc[is_closed, "status"] = "lost"
    out.loc[is_closed & is_won, "status"] = "won"
    return out


def _status_from_stage(deals: pd.DataFrame, stage_names: Sequence[str], config: PipelineConfig) -> pd.DataFrame:
    """Add ``status`` from the stage column when it holds the won/lost labels and there is no status."""
    stage = _find(deals, stage_names)
    if "status" in deals.columns or stage is None:
        return deals
    out = deals.copy()
    named = {fold(k): fold(v) for k, v in config.values.get("stage", {}).items()}  # internal names: the labels'
    folded = out[stage].astype("str").map(fold).replace(named)
    out["status"] = "open"
    out.loc[folded.isin([s.casefold() for s in config.lost_labels]), "status"] = "lost"
    out.loc[folded.isin([s.casefold() for s in config.won_labels]), "status"] = "won"
    return out


# --- Salesforce: Opportunity report (labels) or Data Loader / API export (field names) ---------------

SALESFORCE_STAGES = ("Prospecting", "Qualification", "Needs Analysis", "Value Proposition", "Id. Decision Makers",
                     "Perception Analysis", "Proposal/Price Quote", "Negotiation/Review")
SALESFORCE = PipelineConfig(
    stages=SALESFORCE_STAGES,
    fixed_probabilities=dict(zip(SALESFORCE_STAGES, (0.10, 0.10, 0.20, 0.50, 0.60, 0.70, 0.75, 0.90))),
    won_labels=("Closed Won",),
    lost_labels=("Closed Lost",),
    columns={
        "deal_id": ("Opportunity ID", "Opportunity ID (18)", "Id"),
        "created_at": ("Created Date", "CreatedDate"),
        "amount": ("Amount (converted)", "Amount"),  # a multi-currency org's amount in the corporate currency first
        "stage": ("Stage", "StageName"),
        # the planned close while open, the actual once closed: read as such by the contract
        "closed_at": ("Close Date", "CloseDate"),
        "stage_entered_at": ("Last Stage Change Date", "LastStageChangeDate"),
        "owner": ("Opportunity Owner", "Owner Name", "Owner: Full Name", "OwnerId"),
    },
    history_columns={
        "deal_id": ("Opportunity ID", "OpportunityId", "Opportunity ID (18)"),
        "stage": ("To Stage", "StageName", "Stage"),
        "entered_at": ("Last Modified", "Edit Date", "CreatedDate", "Created Date"),
        "from_stage": ("From Stage",),
    },
    ignore_columns=(
        # known only at or after the outcome, or a restatement of the stage / the target
        "Probability (%)", "Probability", "Expected Revenue", "ExpectedRevenue", "Forecast Category",
        "ForecastCategory", "ForecastCategoryName", "Won", "IsWon", "Closed", "IsClosed", "Age", "Stage Duration",
        "Next Step", "NextStep", "Loss Reason", "Closed Lost Reason", "Fiscal Period", "Fiscal Year", "FiscalYear",
        "Fiscal Quarter", "FiscalQuarter", "Fiscal", "HasOpenActivity", "HasOverdueTask", "IsDeleted",
        # free text and record names
        "Opportunity Name", "Name", "Description",
        # the amount in each deal's own currency, beside the converted one read as the amount
        "Amount",
    ),
    preset="salesforce",
)


def _prepare_salesforce(deals: pd.DataFrame, history: pd.DataFrame | None, config: PipelineConfig,
                        report: DataReport, source: str) -> Prepared:
    deals = _status_from_flags(deals, ("Won", "IsWon"), ("Closed", "IsClosed"))
    deals = _status_from_stage(deals, ("Stage", "StageName"), config)
    return deals, history, False


# --- HubSpot: deals export with "Date entered "<stage> (<pipeline>)"" columns ---------------------------

HUBSPOT_STAGES = ("Appointment Scheduled", "Qualified To Buy", "Presentation Scheduled", "Decision Maker Bought-In",
                  "Contract Sent")
HUBSPOT = PipelineConfig(
    stages=HUBSPOT_STAGES,
    fixed_probabilities=dict(zip(HUBSPOT_STAGES, (0.20, 0.40, 0.60, 0.80, 0.90))),
    won_labels=("Closed Won",),
    lost_labels=("Closed Lost",),
    columns={
        # (the UI's labels; its API's and connectors' internal names, hs_object_id, createdate, dealstage, ..., match
        # them or are named)
        "deal_id": ("Record ID", "Deal ID", "hs_object_id"),
        "created_at": ("Create Date", "Created Date"),
        # in one currency when deals have several
        "amount": ("Amount in company currency", "Amount in home currency", "Amount"),
        "stage": ("Deal Stage",),
        "closed_at": ("Close Date",),  # the planned close while open, the actual once closed
        "owner": ("Deal owner", "HubSpot Owner", "hubspot_owner_id"),
        "pipeline": ("Pipeline",),
    },
    history_columns={
        "deal_id": ("Record ID", "Deal ID"),
        "stage": ("Deal Stage", "Stage"),
        "entered_at": ("Date entered", "Timestamp", "Date"),
    },
    ignore_columns=(
        "Deal probability", "Deal Stage Probability", "Forecast category", "Forecast amount", "Weighted amount",
        "Projected amount", "Is Closed Won", "Is Deal Closed?", "Is closed lost", "Is Stalled",
        "Is In First Deal Stage", "Days to close", "Closed Lost Reason", "Closed Won Reason",
        "Number of Sales Activities", "Number of times contacted", "Deal Name", "Deal Description",
        "Amount",  # in each deal's own currency, beside the amount in company currency read as the amount
        # the same, by their internal names
        "hs_deal_stage_probability", "hs_forecast_probability", "hs_forecast_amount", "hs_projected_amount",
        "hs_closed_amount", "hs_closed_amount_in_home_currency", "hs_is_closed_won", "hs_is_closed",
        "hs_is_closed_lost", "hs_is_stalled", "num_contacted_notes", "num_notes",
    ),
    # the default pipeline's internal stage names, as its API and property history write them
    values={"stage": {**{"".join(stage.split()).replace("-", "").casefold(): stage for stage in HUBSPOT_STAGES},
                      "closedwon": "Closed Won", "closedlost": "Closed Lost"}},
    preset="hubspot",
)
#: ``Date entered "Qualified To Buy (Sales Pipeline)"``; the parenthesised pipeline name is optional. By the
#: property's internal name (API pulls, connectors): ``hs_date_entered_qualifiedtobuy`` or its newer
#: ``hs_v2_date_entered_...``, the stage's internal id.
_HUBSPOT_ENTERED = re.compile(r'^(?:Date entered\s+"?(?P<stage>.+?)(?:\s+\((?P<pipeline>[^()]*)\))?"?'
                              r'|hs_(?P<v2>v2_)?date_entered_(?P<id>\w+))$', re.IGNORECASE)
#: Per-stage columns that are either consumed as history or measured up to the export (never features).
_HUBSPOT_STAGE_COLUMNS = re.compile(r'^(Date entered|Date exited|Cumulative time in|Latest time in|Time in)\s'
                                    r'|^hs_(date_entered|date_exited|time_in|v2_date_entered|v2_date_exited'
                                    r'|v2_time_in|v2_cumulative_time_in|v2_latest_time_in)_', re.IGNORECASE)


def hubspot_stage_columns(columns: Sequence[str], pipelines: Sequence[str] = ()) -> dict[str, str]:
    """Map each ``Date entered "<stage> (<pipeline>)"`` column to its stage name; with ``pipelines``, only the
    columns of those pipelines (and those that name none)."""
    chosen = {" ".join(p.split()).casefold() for p in pipelines}
    out: dict[str, str] = {}
    newer: dict[str, str] = {}
    for col in columns:
        match = _HUBSPOT_ENTERED.match(str(col).strip())
        pipeline = match and match.group("pipeline")
        if match and (not chosen or not pipeline or " ".join(pipeline.split()).casefold() in chosen):
            (newer if match.group("v2") else out)[str(col)] = (match.group("stage") or match.group("id")).strip()
    named = set(out.values())
    return out | {col: stage for col, stage in newer.items() if stage not in named}  # the same date, twice


def _prepare_hubspot(deals: pd.DataFrame, history: pd.DataFrame | None, config: PipelineConfig,
                     report: DataReport, source: str) -> Prepared:
    deals = _status_from_flags(deals, ("Is Closed Won", "hs_is_closed_won"), ("Is Deal Closed?", "hs_is_closed"))
    deals = _status_from_stage(deals, ("Deal Stage",), config)
    entered = hubspot_stage_columns(deals.columns, config.pipelines)
    derived = False
    if history is None and entered:
        id_col = _find(deals, ("Record ID", "Deal ID", "hs_object_id", "deal_id"))
        if id_col is not None:
            long = deals[[id_col, ROW, *entered]].melt(id_vars=[id_col, ROW], var_name=SOURCE_COLUMN,
                                                      value_name="entered_at")
            long = long[long["entered_at"].astype("str").str.strip().fillna("") != ""]
            history = pd.DataFrame({"deal_id": long[id_col].to_numpy(),
                                    "stage": long[SOURCE_COLUMN].map(entered).to_numpy(),
                                    "entered_at": long["entered_at"].to_numpy(),
                                    ROW: long[ROW].to_numpy(), SOURCE_COLUMN: long[SOURCE_COLUMN].to_numpy()})
            derived = True
            report.notes.append(f"stage history taken from {len(entered)} 'Date entered' column(s) of {source}")
    consumed = [c for c in deals.columns if _HUBSPOT_STAGE_COLUMNS.match(str(c))]
    return deals.drop(columns=consumed), history, derived


# --- Pipedrive: deals export ("Deal - Value", "Deal - Status", ...; the "Deal - " prefix is optional) -----

PIPEDRIVE_STAGES = ("Qualified", "Contact Made", "Demo Scheduled", "Proposal Made", "Negotiations Started")
PIPEDRIVE = PipelineConfig(
    stages=PIPEDRIVE_STAGES,
    fixed_probabilities=dict(zip(PIPEDRIVE_STAGES, (0.10, 0.20, 0.40, 0.60, 0.80))),
    won_labels=("Won",),
    lost_labels=("Lost",),
    columns={
        "deal_id": ("ID",),
        "created_at": ("Deal created", "Add time"),
        "amount": ("Value",),
        "stage": ("Stage",),
        "status": ("Status",),
        "closed_at": ("Close time",),
        "stage_entered_at": ("Last stage change", "Stage change time"),
        "expected_close_date": ("Expected close date",),
        "owner": ("Owner", "Owner name"),
        "pipeline": ("Pipeline",),
    },
    history_columns={
        "deal_id": ("Deal ID", "ID"),
        "stage": ("Stage",),
        "entered_at": ("Stage change time", "Update time", "Time"),
    },
    ignore_columns=(
        "Title", "Probability", "Weighted value", "Lost reason", "Won time", "Lost time", "Close time",
        "Update time", "Last activity date", "Next activity date", "Next activity", "Total activities",
        "Done activities", "Activities to do", "Email messages count", "Last email received", "Last email sent",
        "Stage change time", "Archive status", "Archive time", "Visible to", "Product quantity",
        "Product amount", "Products",
    ),
    preset="pipedrive",
)
_PIPEDRIVE_PREFIX = re.compile(r"^Deal\s*-\s*", re.IGNORECASE)


def _prepare_pipedrive(deals: pd.DataFrame, history: pd.DataFrame | None, config: PipelineConfig,
                       report: DataReport, source: str) -> Prepared:
    # (its "Won time" and "Lost time" date the won and the lost deals: read as any export's, contract.OUTCOME_DATES)
    deals = deals.rename(columns=lambda c: _PIPEDRIVE_PREFIX.sub("", str(c)))
    if history is not None:
        history = history.rename(columns=lambda c: _PIPEDRIVE_PREFIX.sub("", str(c)))
    return deals, history, False


# --- Odoo CRM: the pipeline's list exported (field labels, or field names when "import-compatible") ----------

ODOO_STAGES = ("New", "Qualified", "Proposition")
ODOO = PipelineConfig(
    stages=ODOO_STAGES,
    # Odoo's stages carry no percentages since version 14 (its own scoring replaced them): the textbook's ladder
    fixed_probabilities=dict(zip(ODOO_STAGES, (0.10, 0.25, 0.50))),
    won_labels=("Won",),
    lost_labels=("Lost",),
    last_open_stage="Proposition",  # a won deal's stage is Won: without the tracking values, it came from the last
    columns={
        "deal_id": ("ID", "id", "External ID"),
        "created_at": ("Created on", "create_date"),
        "amount": ("Expected Revenue", "expected_revenue"),
        "stage": ("Stage", "stage_id"),
        "closed_at": ("Closed Date", "date_closed"),
        "stage_entered_at": ("Last Stage Update", "date_last_stage_update"),
        "expected_close_date": ("Expected Closing", "date_deadline"),
        "owner": ("Salesperson", "user_id"),
    },
    history_columns={  # the stage's tracking values (the chatter's "Stage: New -> Qualified")
        "deal_id": ("Message ID/Related Document ID", "Mail Message ID/Related Document ID", "Related Document ID",
                    "mail_message_id/res_id", "res_id"),
        "stage": ("New Value Char", "new_value_char", "New Value"),
        "entered_at": ("Created on", "create_date", "Tracking Date", "Date"),
        "from_stage": ("Old Value Char", "old_value_char", "Old Value"),
    },
    ignore_columns=(
        # known only at or after the outcome, or Odoo's own score and what it weighs
        "Probability", "probability", "Automated Probability", "automated_probability", "Prorated Revenue",
        "prorated_revenue", "Prorated Recurring Revenues", "Prorated MRR", "Is Won", "Won/Lost", "won_status",
        "Active", "active", "Lost Reason", "lost_reason_id", "Days to Close", "day_close", "Days to Assign",
        "day_open", "Days To Convert", "Exceeded Closing Days", "Type", "type", "Kanban State", "Activity State",
        "Next Activity", "Next Activity Deadline", "Activity Type", "Activities", "My Deadline", "Last Updated by",
        # free text and contact details
        "Opportunity", "name", "Notes", "description", "Email", "email_from", "Phone", "phone", "Mobile", "mobile",
        "Contact Name", "contact_name", "Street", "Street2", "Zip", "City", "Website", "Job Position",
        "Color Index", "Email Quality", "Phone Quality",
    ),
    preset="odoo",
)
#: The external ID Odoo's export makes for a record without one: ``__export__.crm_lead_42_8d9f3a1c`` is lead 42.
_ODOO_EXPORT_ID = re.compile(r"^__export__\.crm_lead_(\d+)(?:_[0-9a-f]+)?$")
#: The tracked field of a tracking value: the stage's (its label or name, with or without the model).
_ODOO_STAGE_FIELD = re.compile(r"^(stage|stage_id)\b", re.IGNORECASE)


def _odoo_ids(frame: pd.DataFrame, names: Sequence[str]) -> pd.DataFrame:
    """Odoo's generated external IDs as the record's database ID (the one its tracking values and API give)."""
    col = _find(frame, names)
    if col is None:
        return frame
    return frame.assign(**{col: frame[col].astype("str").str.strip().str.replace(_ODOO_EXPORT_ID, r"\1", regex=True)
                           .where(frame[col].notna())})


def _odoo_status(deals: pd.DataFrame, config: PipelineConfig, report: DataReport, source: str) -> pd.DataFrame:
    """``status`` as Odoo decides it: won in a won stage; lost when archived at probability 0 (Odoo's "Lost"
    button); archived otherwise (a merged duplicate, a cleanup): out of the pipeline, as deleted. Its own
    ``Is Won`` column (Won / Lost / Pending) wins when exported. Without the Active column, a lost deal is one
    closed (Closed Date) outside a won stage or given a lost reason."""
    out = deals.copy()
    won_status = _find(out, ("Is Won", "Won/Lost", "won_status"))
    stage, active = _find(out, ("Stage", "stage_id")), _find(out, ("Active", "active"))
    probability = _find(out, ("Probability", "probability"))
    reason, closed = _find(out, ("Lost Reason", "lost_reason_id")), _find(out, ("Closed Date", "date_closed"))

    def given(name: str | None) -> pd.Series:
        if name is None:
            return pd.Series(False, index=out.index)
        text = out[name].astype("str").str.strip()
        return out[name].notna() & (text != "") & (text.str.casefold() != "false")

    if won_status is not None:
        state = out[won_status].astype("str").str.strip().str.casefold()
        status = state.map({"won": "won", "lost": "lost", "pending": "open"}).fillna(out[won_status].astype("str"))
    else:
        won = (out[stage].astype("str").str.strip().str.casefold().isin([w.casefold() for w in config.won_labels])
               if stage is not None else pd.Series(False, index=out.index))
        status = pd.Series("open", index=out.index, dtype="object")
        status[won] = "won"
        if active is not None:
            archived = ~_flag(out[active])
            at_zero = (pd.to_numeric(out[probability], errors="coerce").eq(0) if probability is not None
                       else pd.Series(True, index=out.index))
            lost = archived & ~won & (at_zero | given(reason))
        else:
            archived = pd.Series(False, index=out.index)
            lost = ~won & (given(closed) | given(reason))
        status[lost] = "lost"
        status[archived & ~won & ~lost] = "deleted"
        if (archived & ~won & ~lost).any():
            report.notes.append(f"{int((archived & ~won & ~lost).sum())} archived opportunit(ies) of {source} not "
                                "lost (probability above 0: merged or cleaned up) are taken as deleted")
    if not status.eq("lost").any():
        report.warn(source, "no lost opportunities: Odoo's lists hide lost (archived) ones. Export with the filters "
                    "\"Lost\" or \"Archived\" added to the pipeline's, with the Active column, so that the model "
                    "learns from the deals that were lost")
    return out.assign(status=status)


_ODOO_FIELD_COLUMNS = ("Field", "Changed Field", "field_id", "field", "Field Description", "field_desc")


def _odoo_tracks_stages(changes: pd.DataFrame) -> bool:
    """Whether a Tracking Values export (not a field history in the canonical columns) holds stage changes."""
    field_col = _find(changes, _ODOO_FIELD_COLUMNS)
    return (field_col is not None and _find(changes, ("value",)) is None
            and bool(changes[field_col].astype("str").str.strip().str.match(_ODOO_STAGE_FIELD).any()))


def _odoo_stage_changes(history: pd.DataFrame, report: DataReport) -> pd.DataFrame:
    """The stage's tracking values as stage entries: other fields' and other models' rows left out (said in a
    note). Odoo tracks changes only: the contract takes the stage each lead was created in from its first change's
    old value (``from_stage``)."""
    keep = pd.Series(True, index=history.index)
    field_col = _find(history, _ODOO_FIELD_COLUMNS)
    if field_col is not None:
        keep &= history[field_col].astype("str").str.strip().str.match(_ODOO_STAGE_FIELD)
    model_col = _find(history, ("Message ID/Related Document Model", "Mail Message ID/Related Document Model",
                                "Related Document Model", "mail_message_id/model", "model"))
    if model_col is not None:
        keep &= history[model_col].astype("str").str.strip().str.casefold().eq("crm.lead")
    if not keep.all():
        report.notes.append(f"{int((~keep).sum())} tracking value(s) of other fields or records than the leads' stage "
                            "not used as stage history (the expected closing's and expected revenue's are the field "
                            "history when the export is given as --field-history)")
    return history[keep]


#: The lead's tracked fields taken as field history (labels and technical names, folded), and where Odoo keeps
#: each one's new value, in order of preference: the expected revenue's own column before Odoo 17, the float one
#: after; the expected closing's date column (or its text, where exported so).
_ODOO_FIELDS = {**dict.fromkeys(("expected revenue", "expected_revenue", "planned revenue", "planned_revenue"),
                                "revenue"),
                **dict.fromkeys(("expected closing", "date_deadline"), "closing")}
_ODOO_VALUE_COLUMNS = {"revenue": ("New Value Monetary", "new_value_monetary", "New Value Float", "new_value_float"),
                       "closing": ("New Value Datetime", "new_value_datetime", "New Value Char", "new_value_char")}
#: Odoo 17 exports the tracked field as its display name, "Expected Revenue (crm.lead)".
_ODOO_FIELD_MODEL = re.compile(r"\s*\([\w.]+\)\s*$")


def _odoo_field_changes(changes: pd.DataFrame, config: PipelineConfig, report: DataReport,
                        source: str) -> pd.DataFrame:
    """Odoo's Tracking Values export (``mail.tracking.value``) as field changes: the lead's ID, the field (Expected
    Closing, Expected Revenue), its new value from the column Odoo keeps it in (every value column is exported,
    and the others hold 0 or nothing) and the tracking date.

    Only those two fields: Odoo tracks changes, never the value a lead was created with, so any other field (the
    salesperson, the sales team, ...) would be known only from a lead's first change on, and unknown for every
    lead never changed, while the leads file's column of it, a feature, is lost to the model once the field is
    tracked. A tracked amount is its first value until its first change; a close date is a signal from its first
    change on (section 2.2 of the SPEC). The stage's rows are the stage history (the same export given as
    ``--history``); they, the other fields' and other records' rows are left out, each said in a note. An export
    already in the field history's columns is taken as it is."""
    if _find(changes, ("value",)) is not None and _find(changes, ("field",)) is not None:
        return changes
    names = config.history_columns
    id_col, at_col = _find(changes, names.get("deal_id", ())), _find(changes, names.get("entered_at", ()))
    field_col = _find(changes, _ODOO_FIELD_COLUMNS)
    if id_col is None or at_col is None or field_col is None:
        return changes  # the field history's own checks name what is missing
    model_col = _find(changes, ("Message ID/Related Document Model", "Mail Message ID/Related Document Model",
                                "Related Document Model", "mail_message_id/model", "model"))
    if model_col is not None:
        leads = changes[model_col].astype("str").str.strip().str.casefold().eq("crm.lead")
        if not leads.all():
            report.notes.append(f"{int((~leads).sum())} tracking value(s) of other records than leads not used as "
                                "field history")
            changes = changes[leads]
    field = changes[field_col].astype("str").str.replace(_ODOO_FIELD_MODEL, "", regex=True).str.strip()
    kind = field.str.casefold().map(_ODOO_FIELDS)
    stage = field.str.match(_ODOO_STAGE_FIELD)
    other = kind.isna() & ~stage
    if stage.any():
        report.notes.append(f"{int(stage.sum())} tracking value(s) of the stage not used as field history: they are "
                            "the stage history (the same export as --history)")
    if other.any():
        shown = ", ".join(sorted(field[other].unique().tolist())[:5])
        report.notes.append(f"{int(other.sum())} tracking value(s) of other fields than Expected Closing and Expected "
                            f"Revenue ({shown}) not used as field history: Odoo tracks changes, not the value a lead "
                            "was created with, so leads never changed would have none (the leads file's columns "
                            "stay the features)")
    keep = kind.notna()
    changes, field, kind = _odoo_ids(changes[keep], (id_col,)), field[keep], kind[keep]
    value = pd.Series(pd.NA, index=changes.index, dtype="object")
    for which, wanted in _ODOO_VALUE_COLUMNS.items():
        for col in (c for c in (_find(changes, (name,)) for name in wanted) if c is not None):
            text = changes[col].astype("str").str.strip()
            fill = ((kind == which) & value.isna() & changes[col].notna() & (text != "")
                    & (text.str.casefold() != "false"))
            value[fill] = changes.loc[fill, col]
    return pd.DataFrame({"deal_id": changes[id_col], "field": field, "value": value,
                         "changed_at": changes[at_col], ROW: changes[ROW]}, index=changes.index)


def _prepare_odoo(deals: pd.DataFrame, history: pd.DataFrame | None, config: PipelineConfig,
                  report: DataReport, source: str) -> Prepared:
    deals = _odoo_ids(deals, config.columns.get("deal_id", ()))
    if _find(deals, ("status",)) is None:
        deals = _odoo_status(deals, config, report, source)
    if history is not None:
        history = _odoo_stage_changes(_odoo_ids(history, config.history_columns.get("deal_id", ())), report)
    return deals, history, False


# --- Microsoft Dynamics 365 Sales: opportunities "Export to Excel" (display names; its hidden key columns) -------

DYNAMICS_STAGES = ("Qualify", "Develop", "Propose", "Close")
DYNAMICS = PipelineConfig(
    stages=DYNAMICS_STAGES,
    # Dynamics sets no percentage per stage (a rep's Probability field): the textbook's ladder
    fixed_probabilities=dict(zip(DYNAMICS_STAGES, (0.10, 0.25, 0.50, 0.75))),
    won_labels=("Won",),
    lost_labels=("Lost",),
    columns={
        "deal_id": ("(Do Not Modify) Opportunity", "opportunityid", "Opportunity"),
        "created_at": ("Created On", "createdon"),
        "amount": ("Est. Revenue (Base)", "estimatedvalue_base", "Est. Revenue", "Estimated Revenue", "estimatedvalue"),
        "stage": ("Sales Stage", "salesstage", "Pipeline Phase", "stepname"),
        "status": ("Status", "statecode"),
        "closed_at": ("Actual Close Date", "actualclosedate"),
        "expected_close_date": ("Est. Close Date", "Estimated Close Date", "estimatedclosedate"),
        # the sales process (business process flow) stage's start, where the view has it as a column
        "stage_entered_at": ("Active Stage Started On", "activestagestartedon"),
        "owner": ("Owner", "ownerid"),
    },
    ignore_columns=(
        # known only at or after the outcome, or a restatement of the stage or the target
        "Status Reason", "statuscode", "Probability", "closeprobability", "Actual Revenue", "actualvalue",
        "Forecast Category", "msdyn_forecastcategory", "Pipeline Phase", "stepname", "Modified By",
        "(Do Not Modify) Row Checksum", "(Do Not Modify) Modified On",
        # free text
        "Topic", "name", "Description",
        # the amount in each deal's own currency, beside the base-currency one read as the amount
        "Est. Revenue", "Estimated Revenue", "estimatedvalue",
    ),
    preset="dynamics",
)
#: Pipeline Phase as Dynamics writes it: the stage after its number ("2-Develop").
_DYNAMICS_PHASE = re.compile(r"^\s*\d+\s*-\s*")


def _prepare_dynamics(deals: pd.DataFrame, history: pd.DataFrame | None, config: PipelineConfig,
                      report: DataReport, source: str) -> Prepared:
    stage = _find(deals, config.columns.get("stage", ()))
    if stage is not None and _find(deals, ("Sales Stage", "salesstage")) is None:  # the phase is the stage
        deals = deals.assign(**{stage: deals[stage].astype("str").str.replace(_DYNAMICS_PHASE, "", regex=True)
                                .where(deals[stage].notna())})
    return deals, history, False


# --- Zoho CRM: the Deals module's export (field labels; its "Record Id" first), with its Stage History ---------

ZOHO_STAGES = ("Qualification", "Needs Analysis", "Value Proposition", "Identify Decision Makers",
               "Perception Analysis", "Proposal/Price Quote", "Negotiation/Review")
ZOHO = PipelineConfig(
    stages=ZOHO_STAGES,
    # Zoho's stage-probability mapping as it comes
    fixed_probabilities=dict(zip(ZOHO_STAGES, (0.10, 0.20, 0.40, 0.60, 0.70, 0.75, 0.90))),
    won_labels=("Closed Won",),
    lost_labels=("Closed Lost", "Closed-Lost to Competition", "Closed Lost to Competition"),
    columns={
        "deal_id": ("Record Id", "Deal Id", "Id"),
        "created_at": ("Created Time", "Created_Time"),
        "amount": ("Amount",),
        "stage": ("Stage",),
        "closed_at": ("Closing Date", "Closing_Date"),  # the planned close while open, the actual once closed
        "owner": ("Deal Owner", "Owner"),
        "pipeline": ("Pipeline",),
    },
    history_columns={  # the Stage History: each stage with when the deal was moved to it
        "deal_id": ("Deal Id", "Deal Name Id", "Potential Id", "Potential Name Id", "Parent Id"),  # not its Record Id
        "stage": ("Stage",),
        "entered_at": ("Modified Time", "Last Modified Time", "Modified_Time"),
    },
    ignore_columns=(
        # known only at or after the outcome, or a restatement of the stage
        "Probability (%)", "Probability", "Expected Revenue", "Reason For Loss", "Reason for Loss", "Next Step",
        "Sales Cycle Duration", "Overall Sales Duration", "Modified By", "Modified Time", "Created By", "Locked",
        "Change Log Time", "Last Activity Time", "Exchange Rate",
        # free text and record names
        "Deal Name", "Description", "Account Name", "Contact Name",
    ),
    preset="zoho",
)


def _prepare_zoho(deals: pd.DataFrame, history: pd.DataFrame | None, config: PipelineConfig,
                  report: DataReport, source: str) -> Prepared:
    deals = _status_from_stage(deals, ("Stage",), config)
    return deals, history, False


# --- Bitrix24: deals by field names (REST crm.deal.list, BI Builder's crm_deal), with the stage history ---------

BITRIX24_STAGES = ("New", "Preparing documents", "Prepayment invoice", "In progress", "Final invoice")
BITRIX24 = PipelineConfig(
    stages=BITRIX24_STAGES,
    # a Bitrix24 stage carries no default percentage an export gives: the textbook's ladder over its five stages
    fixed_probabilities=dict(zip(BITRIX24_STAGES, (0.10, 0.20, 0.40, 0.60, 0.80))),
    won_labels=("Deal won",),
    lost_labels=("Deal lost", "Analyze failure"),
    columns={
        "deal_id": ("ID",),
        "created_at": ("DATE_CREATE", "Created", "Created on", "Date created"),
        "amount": ("OPPORTUNITY", "Amount", "Income", "Opportunity"),
        "stage": ("STAGE_ID", "Stage"),
        "status": ("STAGE_SEMANTIC_ID",),  # P (in progress), S (success), F (failure)
        "closed_at": ("CLOSEDATE", "Closing date", "Close date"),  # the planned close while open
        "stage_entered_at": ("MOVED_TIME",),
        "owner": ("ASSIGNED_BY_NAME", "ASSIGNED_BY", "ASSIGNED_BY_ID", "Responsible person", "Responsible"),
        "pipeline": ("CATEGORY_NAME", "CATEGORY", "CATEGORY_ID", "Pipeline"),
    },
    history_columns={  # crm.stagehistory.list / crm_deal_stage_history: its own ID is the record's, OWNER_ID the deal's
        "deal_id": ("OWNER_ID", "DEAL_ID"),
        "stage": ("STAGE_ID",),
        "entered_at": ("CREATED_TIME", "DATE_CREATE"),
    },
    values={
        # the default pipeline's stage ids (another pipeline's are prefixed "C<n>:", read off by prepare)
        "stage": {"NEW": "New", "PREPARATION": "Preparing documents", "PREPAYMENT_INVOICE": "Prepayment invoice",
                  "EXECUTING": "In progress", "FINAL_INVOICE": "Final invoice", "WON": "Deal won",
                  "LOSE": "Deal lost", "APOLOGY": "Analyze failure"},
        "status": {"P": "open", "S": "won", "F": "lost"},
    },
    ignore_columns=(
        # known only at or after the outcome, or a restatement of the stage
        "CLOSED", "STAGE_NAME", "STAGE", "STAGE_SEMANTIC", "PROBABILITY", "DATE_MODIFY", "MODIFY_BY_ID",
        "MODIFIED_BY", "MODIFIED_BY_NAME", "MOVED_BY_ID", "MOVED_BY", "MOVED_BY_NAME", "LAST_ACTIVITY_TIME",
        "LAST_ACTIVITY_BY", "IS_MANUAL_OPPORTUNITY", "TAX_VALUE", "IS_NEW", "QUOTE_ID",
        # free text and record names
        "TITLE", "COMMENTS", "ADDITIONAL_INFO", "SOURCE_DESCRIPTION", "COMPANY", "COMPANY_NAME", "CONTACT",
        "CONTACT_NAME", "CONTACT_IDS",
    ),
    preset="bitrix24",
)
#: A stage id of a pipeline other than the default one: ``C3:NEW`` is pipeline 3's New.
_BITRIX24_CATEGORY = re.compile(r"^\s*C(\d+):")
#: The final stages' semantics in the stage history.
_BITRIX24_FINAL = {"S", "F"}


def _bitrix24_stages(codes: pd.Series, names: dict[str, str]) -> pd.Series:
    """Stage ids as stages: by the name the export gives each (BI Builder's STAGE_NAME), else without the
    pipeline's ``C<n>:`` prefix (the preset's [values.stage] names the default ones; a company's own, ``UC_...``,
    stay ids until its config names them)."""
    text = as_text(codes).astype(object)
    plain = text.str.replace(_BITRIX24_CATEGORY, "", regex=True)
    return text.map(names).where(text.isin(list(names)), plain)


def _prepare_bitrix24(deals: pd.DataFrame, history: pd.DataFrame | None, config: PipelineConfig,
                      report: DataReport, source: str) -> Prepared:
    stage, named = _find(deals, ("STAGE_ID",)), _find(deals, ("STAGE_NAME",))
    names: dict[str, str] = {}
    if stage is not None:
        codes = as_text(deals[stage]).astype(object)
        if named is not None:  # each stage id's name, as the export writes it beside the id
            pairs = pd.DataFrame({"code": codes, "name": as_text(deals[named])}).dropna().drop_duplicates("code")
            names = dict(zip(pairs["code"], pairs["name"], strict=True))
        category = codes.str.extract(_BITRIX24_CATEGORY, expand=False)
        if _find(deals, config.columns.get("pipeline", ())) is None and category.notna().any():
            deals = deals.assign(pipeline=category.fillna("0").astype(object))  # the pipeline each stage id says
        deals = deals.assign(**{stage: _bitrix24_stages(deals[stage], names)})
    if history is not None:
        hstage, semantic = _find(history, ("STAGE_ID",)), _find(history, ("STAGE_SEMANTIC_ID",))
        if hstage is not None:
            history = history.assign(**{hstage: _bitrix24_stages(history[hstage], names)})
        deals = _bitrix24_closed_at(deals, history, semantic, config, report, source)
    return deals, history, False


def _bitrix24_closed_at(deals: pd.DataFrame, history: pd.DataFrame, semantic: str | None, config: PipelineConfig,
                        report: DataReport, source: str) -> pd.DataFrame:
    """Closed deals' CLOSEDATE replaced by when the stage history moved them to their final stage: CLOSEDATE is a
    day (the one a rep planned, unless set again at the close), the history's row the move itself, to the minute."""
    ids, close, status = (_find(deals, config.columns.get(c, ())) for c in ("deal_id", "closed_at", "status"))
    owner, when = (_find(history, config.history_columns.get(c, ())) for c in ("deal_id", "entered_at"))
    if semantic is None or ids is None or close is None or status is None or owner is None or when is None:
        return deals
    final = history[as_text(history[semantic]).str.upper().isin(_BITRIX24_FINAL).fillna(False).to_numpy(dtype=bool)]
    moved_at = pd.Series(final[when].to_numpy(), index=as_text(final[owner]).to_numpy())
    moved_at = moved_at[~moved_at.index.duplicated(keep="last")]  # its rows in the order they were written
    moved = as_text(deals[ids]).map(moved_at)
    closed = as_text(deals[status]).str.upper().isin(_BITRIX24_FINAL).fillna(False) & moved.notna()
    if not closed.any():
        return deals
    report.notes.append(f"{source}: {int(closed.sum()):,} closed deal(s) closed when the stage history moved them to "
                        "their final stage (CLOSEDATE: a day, the one planned unless set again at the close)")
    return deals.assign(**{close: deals[close].astype(object).mask(closed, moved)})


PRESETS: dict[str, Preset] = {
    p.name: p
    for p in (
        Preset("salesforce", "Salesforce Opportunity report or Data Loader export, with Opportunity History",
               SALESFORCE, _prepare_salesforce),
        Preset("hubspot", 'HubSpot deals export, with its Date entered "<stage>" columns as the stage history',
               HUBSPOT, _prepare_hubspot),
        Preset("pipedrive", "Pipedrive deals export", PIPEDRIVE, _prepare_pipedrive),
        Preset("odoo", "Odoo CRM pipeline export (crm.lead), with its tracking values as the stage and field history",
               ODOO, _prepare_odoo, _odoo_field_changes, _odoo_tracks_stages),
        Preset("dynamics", "Microsoft Dynamics 365 Sales opportunities exported to Excel", DYNAMICS, _prepare_dynamics),
        Preset("zoho", "Zoho CRM Deals export, with its Stage History", ZOHO, _prepare_zoho),
        Preset("bitrix24", "Bitrix24 deals by field names (REST API, BI Builder), with the stage history",
               BITRIX24, _prepare_bitrix24),
    )
}


def get_preset(name: str) -> Preset:
    """The preset called ``name`` (case-insensitive)."""
    try:
        return PRESETS[name.strip().lower()]
    except KeyError:
        raise ConfigError(f"unknown preset {name!r}; expected one of {', '.join(PRESETS)}") from None


def load_config(path: str | Path | None = None, preset: str | None = None) -> PipelineConfig:
    """Load a pipeline config: textbook default < CRM preset < the TOML file at ``path``."""
    data: dict[str, Any] = {}
    if path is not None:
        path = Path(path)
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ConfigError(f"{path}: file not found") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{path}: not valid TOML ({exc})") from None
    chosen = preset or data.get("preset")
    base = PipelineConfig()
    if chosen:
        base = get_preset(str(chosen)).config
    if preset:
        data = {**data, "preset": preset}
    return PipelineConfig.from_dict(data, base=base, source=str(path) if path else "configuration")
