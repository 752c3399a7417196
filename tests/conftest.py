"""Shared fixtures: small deal tables written to temporary files, the demo company and its bundle.

The suite in four kinds: ``unit`` (code, tiny inline data), ``data`` (the data contract on export-shaped files),
``model`` (behaviour of trained models: direction, invariance, beats the fixed percentages) and ``e2e`` (the
CLI, MLflow stores, the service over real HTTP and in process, the report in a browser). ``make test`` runs all.
"""
from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

import pytest

from scoring.bundle import ModelBundle
from scoring.data.contract import load_deal_history
from scoring.data.demo import DemoCompany
from scoring.train import train_bundle

#: The observation date of the shared demo company.
END = "2025-06-30"

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("DO_NOT_TRACK", "true")
_CACHE_DIR: str | None = None


def pytest_configure(config: pytest.Config) -> None:
    """Compiled boosters go to the session's own folder, not the user's cache (servers started by tests inherit
    it); :func:`pytest_unconfigure` removes it."""
    global _CACHE_DIR
    if "SCORING_CACHE_DIR" not in os.environ:
        _CACHE_DIR = os.environ["SCORING_CACHE_DIR"] = tempfile.mkdtemp(prefix="scoring-compiled-")


def pytest_unconfigure(config: pytest.Config) -> None:
    if _CACHE_DIR is not None:
        shutil.rmtree(_CACHE_DIR, ignore_errors=True)
        del os.environ["SCORING_CACHE_DIR"]

GOOD_DEALS = """deal_id,created_at,amount,stage,status,closed_at,stage_entered_at,expected_close_date,segment,seats
D1,2024-01-05,12000,Lead,open,,2024-01-05,2024-06-30,SMB,10
D2,2024-01-06T09:30:00,55000.50,Proposal,won,2024-03-01,2024-02-01,,Enterprise,200
D3,2024-01-07,0,Qualified,lost,2024-02-15T17:00:00Z,2024-01-20,,SMB,
D4,2024-02-01,8000,Negotiation,open,,2024-04-01,2024-05-15,Mid-Market,40
"""
GOOD_HISTORY = """deal_id,stage,entered_at
D1,Lead,2024-01-05
D2,Lead,2024-01-06T09:30:00
D2,Qualified,2024-01-15
D2,Proposal,2024-02-01
D3,Lead,2024-01-07
D3,Qualified,2024-01-20
D4,Lead,2024-02-01
D4,Qualified,2024-02-20
D4,Proposal,2024-03-10
D4,Negotiation,2024-04-01
"""


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests of trained models (tests/model) and end to end (tests/e2e) are slow: ``-m "not slow"`` skips them."""
    for item in items:
        if item.path.parent.name in ("model", "e2e"):
            item.add_marker(pytest.mark.slow)


@pytest.fixture
def write(tmp_path: Path) -> Callable[[str, str], Path]:
    """Write text to a file in the test's temporary folder and return its path."""

    def _write(name: str, text: str) -> Path:
        path = tmp_path / name
        path.write_text(text, encoding="utf-8")
        return path

    return _write


@pytest.fixture(scope="session")
def company(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small demo company written to files (deals, history, open deals, config, truth)."""
    out = tmp_path_factory.mktemp("company")
    DemoCompany().generate(6000, seed=13, end=END).write(out)
    return out


@pytest.fixture(scope="session")
def bundle(company: Path) -> ModelBundle:
    """A bundle trained on the demo company at its end."""
    data = load_deal_history(company / "deals.csv", company / "stage_history.csv")
    return train_bundle(data, as_of=END)
