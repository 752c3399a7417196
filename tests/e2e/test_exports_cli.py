"""A Salesforce report pair, as exported, through `scoring validate`, `train` and `score` with only --preset."""
from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

from scoring.cli.main import main
from scoring.data.demo import DemoCompany
from scoring.data.exports import salesforce_reports


def test_validate_train_and_score_a_salesforce_export_with_only_the_preset(tmp_path: Path,
                                                                           monkeypatch: pytest.MonkeyPatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    demo = DemoCompany().generate(800, seed=11, end="2025-06-30")
    deals, history = salesforce_reports(demo, tmp_path)
    data = ["--deals", str(deals), "--history", str(history), "--preset", "salesforce"]
    runner = CliRunner()

    validated = runner.invoke(main, ["validate", *data, "--json"])
    report = json.loads(validated.output)
    assert validated.exit_code == 0, validated.output
    reasons = {s["reason"].split(":")[0] for s in report["set_aside"]}
    assert any(r.startswith("report footer") for r in reasons) and any(r.startswith("amount is blank") for r in reasons)
    assert report["deals"] == len(demo.deals) and report["set_aside_rows"] > 0

    strict = runner.invoke(main, ["validate", *data, "--strict"])
    assert strict.exit_code == 1 and "--strict refuses" in " ".join(strict.output.split())

    trained = runner.invoke(main, ["train", *data, "--promote", "always"])
    assert trained.exit_code == 0, trained.output
    flat = " ".join(trained.output.split())
    assert "set aside" in flat  # every set-aside row counted in the output

    scored = runner.invoke(main, ["score", "--input", str(deals), "--out", str(tmp_path / "scores.csv"),
                                  "--preset", "salesforce", "--as-of", "2025-06-30"])
    assert scored.exit_code == 0, scored.output
    scores = pd.read_csv(tmp_path / "scores.csv")
    open_ids = set(demo.deals.loc[demo.deals["status"] == "open", "deal_id"])
    assert set(scores["deal_id"]) == open_ids  # a whole export: open deals scored, the rest skipped
    assert "not scored" in " ".join(scored.output.split())
    assert scores["win_probability"].between(0, 1).all()
