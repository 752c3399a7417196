"""pipeline-scoring: learn win probabilities and revenue forecasts from a company's own deal history.

The public API; everything else is internal. Data flows one way:
data contract (``config``, ``presets``, ``contract``) -> summaries -> models -> forecasts.
"""
from scoring.data.config import PipelineConfig, Sufficiency, dump_config
from scoring.data.contract import DealHistory, inspect_deal_history, load_deal_history
from scoring.data.demo import DemoCompany, DemoData
from scoring.data.presets import PRESETS, Preset, get_preset, load_config
from scoring.data.problems import DataReport, Problem, SetAside
from scoring.data.summary import DataSummary, SufficiencyResult, check_sufficiency, reached_stages, require_sufficient, summarize
from scoring.data.tables import read_table
from scoring.errors import ConfigError, DataError, InsufficientDataError, ModelError, ScoringError

__version__ = "0.1.0"
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
