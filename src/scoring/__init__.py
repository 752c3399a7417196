"""pipeline-scoring: learn win probabilities and revenue forecasts from a company's own deal history.

The public API; everything else is internal. Data flows one way:
data contract (``config``, ``presets``, ``contract``) -> summaries -> models -> forecasts.

The names below are imported when first used (PEP 562), so that ``import scoring`` and the CLI's quick
answers (``scoring --version``, ``--help``) do not pay for pandas, SciPy and the rest.
"""
from importlib import import_module as _import_module
from typing import TYPE_CHECKING as _TYPE_CHECKING
from typing import Any as _Any

if _TYPE_CHECKING:  # what type checkers and editors see
    from scoring.data.config import PipelineConfig, Sufficiency, dump_config
    from scoring.data.contract import DealHistory, inspect_deal_history, load_deal_history
    from scoring.data.demo import DemoCompany, DemoData
    from scoring.data.presets import PRESETS, Preset, get_preset, load_config
    from scoring.data.problems import DataReport, Problem, SetAside
    from scoring.data.summary import (
        DataSummary,
        SufficiencyResult,
        check_sufficiency,
        reached_stages,
        require_sufficient,
        summarize,
    )
    from scoring.data.tables import read_table
    from scoring.errors import ConfigError, DataError, InsufficientDataError, ModelError, ScoringError

__version__ = "0.1.0"
_EXPORTS = {
    **dict.fromkeys(("PipelineConfig", "Sufficiency", "dump_config"), "scoring.data.config"),
    **dict.fromkeys(("DealHistory", "inspect_deal_history", "load_deal_history"), "scoring.data.contract"),
    **dict.fromkeys(("DemoCompany", "DemoData"), "scoring.data.demo"),
    **dict.fromkeys(("PRESETS", "Preset", "get_preset", "load_config"), "scoring.data.presets"),
    **dict.fromkeys(("DataReport", "Problem", "SetAside"), "scoring.data.problems"),
    **dict.fromkeys(("DataSummary", "SufficiencyResult", "check_sufficiency", "reached_stages", "require_sufficient",
                     "summarize"), "scoring.data.summary"),
    "read_table": "scoring.data.tables",
    **dict.fromkeys(("ConfigError", "DataError", "InsufficientDataError", "ModelError", "ScoringError"),
                    "scoring.errors"),
}
__all__ = [
    "ConfigError",
    "DataError",
    "DataReport",
    "DataSummary",
    "DealHistory",
    "DemoCompany",
    "DemoData",
    "InsufficientDataError",
    "ModelError",
    "PRESETS",
    "PipelineConfig",
    "Preset",
    "Problem",
    "ScoringError",
    "SetAside",
    "Sufficiency",
    "SufficiencyResult",
    "check_sufficiency",
    "dump_config",
    "get_preset",
    "inspect_deal_history",
    "load_config",
    "load_deal_history",
    "reached_stages",
    "read_table",
    "require_sufficient",
    "summarize",
]


def __getattr__(name: str) -> _Any:
    if name in _EXPORTS:
        value = getattr(_import_module(_EXPORTS[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'scoring' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
