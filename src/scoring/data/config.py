"""The pipeline configuration: open stages, fixed percentages, outcome labels and input mapping.

Loaded from TOML; the textbook pipeline is the built-in default. A CRM preset supplies
defaults for its export; a user's file overrides them key by key.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from typing import Any

import numpy as np
import tomli_w

from scoring.data.formats import NUMBER_FORMATS
from scoring.errors import ConfigError

#: The canonical columns of the deals table, required ones first.
DEAL_REQUIRED = ("deal_id", "created_at", "amount", "stage", "status")
DEAL_OPTIONAL = ("closed_at", "stage_entered_at", "expected_close_date")
DEAL_COLUMNS = DEAL_REQUIRED + DEAL_OPTIONAL
DEAL_DATE_COLUMNS = ("created_at", "closed_at", "stage_entered_at", "expected_close_date")
#: The canonical columns of the stage history table.
HISTORY_COLUMNS = ("deal_id", "stage", "entered_at")
#: The stage history's optional column: the stage a deal left, as a change log writes it (Salesforce's "From Stage",
#: a field history's old value, Odoo's tracking values); a log of changes only tells by it the stage each deal was
#: created in (scoring.data.contract).
FROM_STAGE = "from_stage"
#: The canonical columns of the field history and the activities (SPEC 2.2).
FIELD_HISTORY_COLUMNS = ("deal_id", "field", "value", "changed_at")
ACTIVITY_COLUMNS = ("deal_id", "occurred_at", "type")
#: The salesperson's column: a feature like any other, read by name by the forecast's and the managers' page's
#: breakdowns, so a config (or preset) maps the export's own name for it onto this one.
OWNER = "owner"
#: The CRM pipeline a deal is in, when an export holds several (``PipelineConfig.pipelines`` picks them).
PIPELINE = "pipeline"
#: What each column table of a config may name: its canonical columns.
MAPPABLE = {"columns": (*DEAL_COLUMNS, OWNER, PIPELINE), "history_columns": (*HISTORY_COLUMNS, FROM_STAGE),
            "field_history_columns": FIELD_HISTORY_COLUMNS, "activity_columns": ACTIVITY_COLUMNS}
STATUSES = ("open", "won", "lost")

TEXTBOOK_STAGES = ("Lead", "Qualified", "Proposal", "Negotiation")
TEXTBOOK_PROBABILITIES = {"Lead": 0.10, "Qualified": 0.25, "Proposal": 0.50, "Negotiation": 0.75}


@dataclass(frozen=True)
class Sufficiency:
    """The least data to learn from: closed deals overall, and per stage reached."""

    min_won: int = 30
    min_lost: int = 30
    min_per_stage: int = 10


@dataclass(frozen=True)
class PipelineConfig:
    """How a company's pipeline looks and how its export maps onto the canonical tables.

    ``columns`` maps a canonical column to the export's name(s) for it (the first present wins);
    ``history_columns``, ``field_history_columns`` and ``activity_columns`` do the same for the stage history,
    the field history and the activities (SPEC 2.2). ``values`` maps, per canonical
    column, export values onto canonical ones (for example status ``"Closed Won"`` -> ``"won"``).
    """

    stages: tuple[str, ...] = TEXTBOOK_STAGES
    fixed_probabilities: Mapping[str, float] = field(default_factory=lambda: dict(TEXTBOOK_PROBABILITIES))
    won_labels: tuple[str, ...] = ("Won", "Closed Won")
    lost_labels: tuple[str, ...] = ("Lost", "Closed Lost")
    columns: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    history_columns: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    field_history_columns: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    activity_columns: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    values: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    ignore_columns: tuple[str, ...] = ()
    #: Columns kept as features even though they alone tell closed deals' outcomes (scoring.data.leaks): values
    #: known before the close, however telling.
    keep_columns: tuple[str, ...] = ()
    date_format: str | None = None
    date_formats: Mapping[str, str] = field(default_factory=dict)
    number_format: str | None = None
    #: The number format the training export was found to show (not declared): it reads columns that do not tell
    #: themselves, such as a deal to score whose employees are "24.729" (``formats.dotted_thousands``).
    found_number_format: str | None = None
    #: The open stage closed deals were last in, when the export gives only won or lost as their stage.
    last_open_stage: str | None = None
    #: The CRM pipelines to read (by the ``pipeline`` column) when an export holds several: each has its own
    #: stages, and one model learns one pipeline. Empty: every deal.
    pipelines: tuple[str, ...] = ()
    preset: str | None = None
    sufficiency: Sufficiency = field(default_factory=Sufficiency)

    def __post_init__(self) -> None:
        _check(self)

    def fixed_probability(self, stage: str) -> float:
        """The configured percentage for an open stage."""
        return float(self.fixed_probabilities[stage])

    def stage_index(self, stage: str) -> int:
        """Position of an open stage in the pipeline order (0 is the first)."""
        return self.stages.index(stage)

    @property
    def stage_order(self) -> dict[str, int]:
        """Each open stage's position in the pipeline order (0 is the first)."""
        return {s: i for i, s in enumerate(self.stages)}

    def fixed_array(self) -> np.ndarray:
        """The fixed percentages in stage order."""
        return np.array([self.fixed_probability(s) for s in self.stages])

    def to_dict(self) -> dict[str, Any]:
        """A plain dict (TOML/JSON friendly) that ``from_dict`` turns back into this config."""
        out: dict[str, Any] = {
            "stages": list(self.stages),
            "fixed_probabilities": dict(self.fixed_probabilities),
            "won_labels": list(self.won_labels),
            "lost_labels": list(self.lost_labels),
            "columns": {k: list(v) for k, v in self.columns.items()},
            "history_columns": {k: list(v) for k, v in self.history_columns.items()},
            "field_history_columns": {k: list(v) for k, v in self.field_history_columns.items()},
            "activity_columns": {k: list(v) for k, v in self.activity_columns.items()},
            "values": {k: dict(v) for k, v in self.values.items()},
            "ignore_columns": list(self.ignore_columns),
            "keep_columns": list(self.keep_columns),
            "pipelines": list(self.pipelines),
            "sufficiency": {f.name: getattr(self.sufficiency, f.name) for f in fields(Sufficiency)},
        }
        for key in ("date_format", "number_format", "found_number_format", "last_open_stage"):
            if getattr(self, key):
                out[key] = getattr(self, key)
        if self.date_formats:
            out["date_formats"] = dict(self.date_formats)
        if self.preset:
            out["preset"] = self.preset
        return {k: v for k, v in out.items() if v or isinstance(v, (int, float))}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], base: PipelineConfig | None = None,
                  source: str = "configuration") -> PipelineConfig:
        """Build a config from TOML-shaped data, each key overriding ``base`` (default: textbook)."""
        base = base or cls()
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(f"{source}: unknown key(s) {', '.join(map(repr, unknown))}; "
                              f"expected some of {', '.join(sorted(known))}")
        changes: dict[str, Any] = {}
        try:
            for key, value in data.items():
                if key in ("stages", "won_labels", "lost_labels", "pipelines", "keep_columns"):
                    changes[key] = tuple(_strings([value] if key == "pipelines" and isinstance(value, str) else value,
                                                  key))
                elif key == "ignore_columns":  # added to a preset's, which keeps outcome-revealing columns out
                    changes[key] = tuple(dict.fromkeys((*base.ignore_columns, *_strings(value, key))))
                elif key == "fixed_probabilities":
                    changes[key] = {str(k): _probability(v, f"fixed_probabilities.{k}") for k, v in _table(value, key).items()}
                elif key in MAPPABLE:
                    merged = dict(getattr(base, key))
                    table = _table(value, key)
                    unknown_names = [str(canon) for canon in table if canon not in MAPPABLE[key]]
                    if unknown_names:
                        raise ConfigError(f"{key}: unknown column(s) {', '.join(map(repr, unknown_names))}; expected "
                                          f"some of {', '.join(MAPPABLE[key])} (any other column needs no mapping: "
                                          "it is a feature under its own name)")
                    for canon, names in table.items():
                        merged[str(canon)] = tuple(_strings([names] if isinstance(names, str) else names, f"{key}.{canon}"))
                    changes[key] = merged
                elif key == "values":
                    merged_values = {k: dict(v) for k, v in base.values.items()}
                    for canon, mapping in _table(value, key).items():
                        merged_values.setdefault(str(canon), {}).update(
                            {str(k): str(v) for k, v in _table(mapping, f"values.{canon}").items()})
                    changes[key] = merged_values
                elif key in ("date_format", "preset", "number_format", "found_number_format", "last_open_stage"):
                    if not isinstance(value, str):
                        raise ConfigError(f"{key}: expected a string, got {value!r}")
                    if key.endswith("number_format") and value not in NUMBER_FORMATS:
                        raise ConfigError(f"{key}: expected one of {', '.join(map(repr, NUMBER_FORMATS))}, "
                                          f"got {value!r}")
                    changes[key] = value
                elif key == "date_formats":
                    changes[key] = {**base.date_formats,
                                    **{str(k): str(v) for k, v in _table(value, key).items()}}
                elif key == "sufficiency":
                    table = _table(value, key)
                    allowed = {f.name for f in fields(Sufficiency)}
                    bad = sorted(set(table) - allowed)
                    if bad:
                        raise ConfigError(f"sufficiency: unknown key(s) {bad}; expected some of {sorted(allowed)}")
                    for k, v in table.items():
                        if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                            raise ConfigError(f"sufficiency.{k}: expected a whole number >= 1, got {v!r}")
                    changes[key] = replace(base.sufficiency, **table)
            if ("stages" in changes and "last_open_stage" not in changes
                    and base.last_open_stage not in changes["stages"]):  # a preset's, of stages no longer there
                changes["last_open_stage"] = None
            if "stages" in changes and "fixed_probabilities" not in changes:
                raise ConfigError("stages are given without [fixed_probabilities]: give a fixed percentage "
                                  "for every stage (the forecast always shows it beside the model)")
            return replace(base, **changes)
        except ConfigError as exc:
            if str(exc).startswith(source):
                raise
            raise ConfigError(f"{source}: {exc}") from None


def dump_config(config: PipelineConfig) -> str:
    """The config as TOML text (the inverse of ``load_config``)."""
    return tomli_w.dumps(config.to_dict())


def _check(config: PipelineConfig) -> None:
    if not config.stages:
        raise ConfigError("stages: expected at least one open stage")
    seen: set[str] = set()
    for stage in config.stages:
        folded = stage.strip().casefold()
        if not folded or folded in seen:
            raise ConfigError(f"stages: {stage!r} is empty or listed twice")
        seen.add(folded)
    terminal = {s.casefold() for s in config.won_labels} | {s.casefold() for s in config.lost_labels}
    clash = [s for s in config.stages if s.casefold() in terminal]
    if clash:
        raise ConfigError(f"stages: {clash} are also won/lost labels; open stages and outcomes must differ")
    if config.last_open_stage is not None and config.last_open_stage not in config.stages:
        raise ConfigError(f"last_open_stage: {config.last_open_stage!r} is not one of the stages {list(config.stages)}")
    missing = [s for s in config.stages if s not in config.fixed_probabilities]
    if missing:
        raise ConfigError(f"fixed_probabilities: no fixed percentage for stage(s) {missing}")
    extra = [s for s in config.fixed_probabilities if s not in config.stages]
    if extra:
        raise ConfigError(f"fixed_probabilities: {extra} are not among the stages {list(config.stages)}")
    for stage, p in config.fixed_probabilities.items():
        _probability(p, f"fixed_probabilities.{stage}")


def _probability(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value <= 1.0:
        raise ConfigError(f"{where}: expected a probability between 0 and 1, got {value!r}")
    return float(value)


def _strings(value: Any, where: str) -> list[str]:
    if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
        raise ConfigError(f"{where}: expected a list of strings, got {value!r}")
    return list(value)


def _table(value: Any, where: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise ConfigError(f"{where}: expected a table, got {value!r}")
    return value
