"""The MLflow pyfunc model: the trained bundle behind MLflow's standard ``predict``.

``predict`` takes open deals (canonical columns; dates as ISO strings) and an optional ``as_of``
parameter and returns the same scores as ``scoring score``. Its own ``PythonModel`` (not the
sklearn flavour) keeps skops out of the way (it refuses LightGBM's internals unless told to trust them),
returns probabilities rather than class labels, and carries the whole bundle, encoders included.
"""
from __future__ import annotations

from datetime import date
from importlib.metadata import version
from typing import Any

import mlflow
import pandas as pd
from mlflow.models import ModelSignature
from mlflow.types.schema import ColSpec, ParamSchema, ParamSpec, Schema

from scoring.bundle import ModelBundle
from scoring.data.contract import load_open_deals
from scoring.scores import score_deals

#: What the pyfunc needs at predict time, at the versions that trained it.
REQUIREMENTS = ("lightgbm", "scikit-learn", "numpy", "pandas", "scipy", "joblib", "pyarrow", "tomli-w", "mlflow")
OUTPUT_COLUMNS = ("deal_id", "win_probability", "fixed_probability", "expected_revenue", "fixed_expected_revenue",
                  "stage_probability", "win_probability_90d", "expected_close_date", "factors_up", "factors_down")


class ScoringModel(mlflow.pyfunc.PythonModel):
    """Scores open deals with a pipeline-scoring bundle."""

    def load_context(self, context: Any) -> None:
        self.bundle = ModelBundle.load(context.artifacts["bundle"])

    # A DataFrame input hint: MLflow validates the input by the explicit signature, not by the hint.
    def predict(self, context: Any, model_input: pd.DataFrame, params: dict[str, Any] | None = None) -> pd.DataFrame:
        as_of = pd.Timestamp((params or {}).get("as_of") or date.today())
        deals = load_open_deals(model_input, self.bundle.config)
        scores, _ = score_deals(self.bundle, deals, as_of)
        out = scores[list(OUTPUT_COLUMNS)].copy()
        out["expected_close_date"] = out["expected_close_date"].dt.strftime("%Y-%m-%d")
        return out


def requirements() -> list[str]:
    return [f"{name}=={version(name)}" for name in REQUIREMENTS]


def signature(bundle: ModelBundle) -> ModelSignature:
    """Required: deal_id, stage, amount, created_at; optional: stage_entered_at, expected_close_date, features."""
    inputs = [ColSpec("string", "deal_id"), ColSpec("string", "stage"), ColSpec("double", "amount"),
              ColSpec("string", "created_at"), ColSpec("string", "stage_entered_at", required=False),
              ColSpec("string", "expected_close_date", required=False)]
    inputs += [ColSpec("double" if kind == "numeric" else "string", name, required=False)
               for name, kind in bundle.features.items()]
    outputs = [ColSpec("string", "deal_id"), *[ColSpec("double", c) for c in OUTPUT_COLUMNS[1:7]],
               ColSpec("string", "expected_close_date"), ColSpec("string", "factors_up"),
               ColSpec("string", "factors_down")]
    return ModelSignature(inputs=Schema(inputs), outputs=Schema(outputs),
                          params=ParamSchema([ParamSpec("as_of", "string", "")]))


def input_example(deals: pd.DataFrame, bundle: ModelBundle, rows: int = 3) -> pd.DataFrame:
    """A few open deals in the input format (dates as ISO strings)."""
    example = deals.head(rows).copy()
    keep = ["deal_id", "stage", "amount", "created_at", "stage_entered_at", "expected_close_date", *bundle.features]
    example = example[[c for c in keep if c in example.columns]]
    for column in ("created_at", "stage_entered_at", "expected_close_date"):
        if column in example.columns:
            example[column] = pd.to_datetime(example[column]).dt.strftime("%Y-%m-%d")
    for name, kind in bundle.features.items():
        if name in example.columns:
            example[name] = example[name].astype(float) if kind == "numeric" else example[name].astype("str")
    example["amount"] = example["amount"].astype(float)
    example = example.reset_index(drop=True)
    # An object column index: MLflow compares it with a range, which pandas 3 deprecates for str indexes.
    example.columns = pd.Index(list(example.columns), dtype=object)
    return example
