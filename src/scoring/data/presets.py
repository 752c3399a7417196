"""Presets for the CRM exports our users have: Salesforce, HubSpot and Pipedrive.

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

from scoring.data.config import PipelineConfig
from scoring.data.problems import DataReport
from scoring.data.tables import ROW, SOURCE_COLUMN
from scoring.errors import ConfigError

Prepared = tuple[pd.DataFrame, pd.DataFrame | None, bool]
Prepare = Callable[[pd.DataFrame, pd.DataFrame | None, PipelineConfig, DataReport, str], Prepared]


@dataclass(frozen=True)
class Preset:
    """A CRM export's defaults and reshaping; ``prepare`` returns (deals, history, history_was_derived)."""

    name: str
    description: str
    config: PipelineConfig
    prepare: Prepare


def _find(frame: pd.DataFrame, names: Sequence[str]) -> str | None:
    """The first of ``names`` present in ``frame`` (case and spacing ignored)."""
    folded = {" ".join(str(c).split()).casefold(): c for c in frame.columns}
    for name in names:
        col = folded.get(" ".join(name.split()).casefold())
        if col is not None:
            return col
    return None


_TRUE = {"true", "1", "yes", "y", "t"}


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
    folded = out[stage].astype("str").str.strip().str.casefold()
    out["status"] = "open"
    out.loc[folded.isin([s.casefold() for s in config.lost_labels]), "status"] = "lost"
    out.loc[folded.isin([s.casefold() for s in config.won_labels]), "status"] = "won"
    return out


def _split_close_date(deals: pd.DataFrame, names: Sequence[str]) -> pd.DataFrame:
    """One "Close Date" column means the actual close when closed and the expected close when open."""
    col = _find(deals, names)
    if col is None or "status" not in deals.columns:
        return deals
    out = deals.copy()
    closed = out["status"].astype("str").str.strip().str.casefold().isin(["won", "lost"])
    if "closed_at" not in out.columns:
        out["closed_at"] = out[col].where(closed)
    if "expected_close_date" not in out.columns:
        out["expected_close_date"] = out[col].where(~closed)
    return out.drop(columns=[col])


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
        "amount": ("Amount", "Amount (converted)"),
        "stage": ("Stage", "StageName"),
        "stage_entered_at": ("Last Stage Change Date", "LastStageChangeDate"),
    },
    history_columns={
        "deal_id": ("Opportunity ID", "OpportunityId", "Opportunity ID (18)"),
        "stage": ("To Stage", "StageName", "Stage"),
        "entered_at": ("Last Modified", "Edit Date", "CreatedDate", "Created Date"),
    },
    ignore_columns=(
        # known only at or after the outcome, or a restatement of the stage / the target
        "Probability (%)", "Probability", "Expected Revenue", "ExpectedRevenue", "Forecast Category",
        "ForecastCategory", "ForecastCategoryName", "Won", "IsWon", "Closed", "IsClosed", "Age", "Stage Duration",
        "Next Step", "NextStep", "Loss Reason", "Closed Lost Reason", "Fiscal Period", "Fiscal Year", "FiscalYear",
        "Fiscal Quarter", "FiscalQuarter", "Fiscal", "HasOpenActivity", "HasOverdueTask", "IsDeleted",
        # free text and record names
        "Opportunity Name", "Name", "Description",
    ),
    preset="salesforce",
)


def _prepare_salesforce(deals: pd.DataFrame, history: pd.DataFrame | None, config: PipelineConfig,
                        report: DataReport, source: str) -> Prepared:
    deals = _status_from_flags(deals, ("Won", "IsWon"), ("Closed", "IsClosed"))
    deals = _status_from_stage(deals, ("Stage", "StageName"), config)
    deals = _split_close_date(deals, ("Close Date", "CloseDate"))
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
        "deal_id": ("Record ID", "Deal ID"),
        "created_at": ("Create Date", "Created Date"),
        "amount": ("Amount", "Amount in company currency"),
        "stage": ("Deal Stage",),
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
    ),
    preset="hubspot",
)
#: ``Date entered "Qualified To Buy (Sales Pipeline)"``; the parenthesised pipeline name is optional.
_HUBSPOT_ENTERED = re.compile(r'^Date entered\s+"?(?P<stage>.+?)(?:\s+\((?P<pipeline>[^()]*)\))?"?$', re.IGNORECASE)
#: Per-stage columns that are either consumed as history or measured up to the export (never features).
_HUBSPOT_STAGE_COLUMNS = re.compile(r'^(Date entered|Date exited|Cumulative time in|Latest time in|Time in)\s',
                                    re.IGNORECASE)


def hubspot_stage_columns(columns: Sequence[str]) -> dict[str, str]:
    """Map each ``Date entered "<stage> (<pipeline>)"`` column to its stage name."""
    out = {}
    for col in columns:
        match = _HUBSPOT_ENTERED.match(str(col).strip())
        if match:
            out[str(col)] = match.group("stage").strip()
    return out


def _prepare_hubspot(deals: pd.DataFrame, history: pd.DataFrame | None, config: PipelineConfig,
                     report: DataReport, source: str) -> Prepared:
    deals = _status_from_flags(deals, ("Is Closed Won",), ("Is Deal Closed?",))
    deals = _status_from_stage(deals, ("Deal Stage",), config)
    deals = _split_close_date(deals, ("Close Date",))
    entered = hubspot_stage_columns(deals.columns)
    derived = False
    if history is None and entered:
        id_col = _find(deals, ("Record ID", "Deal ID", "deal_id"))
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
        "stage_entered_at": ("Last stage change", "Stage change time"),
        "expected_close_date": ("Expected close date",),
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
    deals = deals.rename(columns=lambda c: _PIPEDRIVE_PREFIX.sub("", str(c)))
    status_col = _find(deals, ("Status", "status"))  # deleted deals: set aside by the contract, for the store
    if "closed_at" not in deals.columns and status_col is not None:
        status = deals[status_col].astype("str").str.strip().str.casefold()
        closed_at = pd.Series(pd.NA, index=deals.index, dtype="object")
        for label, names in (("won", ("Won time",)), ("lost", ("Lost time",))):
            col = _find(deals, names)
            if col is not None:
                closed_at = closed_at.where(status != label, deals[col])
        close_time = _find(deals, ("Close time",))
        if close_time is not None:
            closed_at = closed_at.fillna(deals[close_time].where(status.isin(["won", "lost"])))
        deals = deals.assign(closed_at=closed_at)
    if history is not None:
        history = history.rename(columns=lambda c: _PIPEDRIVE_PREFIX.sub("", str(c)))
    return deals, history, False


PRESETS: dict[str, Preset] = {
    p.name: p
    for p in (
        Preset("salesforce", "Salesforce Opportunity report or Data Loader export, with Opportunity History",
               SALESFORCE, _prepare_salesforce),
        Preset("hubspot", 'HubSpot deals export, with its Date entered "<stage>" columns as the stage history',
               HUBSPOT, _prepare_hubspot),
        Preset("pipedrive", "Pipedrive deals export", PIPEDRIVE, _prepare_pipedrive),
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
