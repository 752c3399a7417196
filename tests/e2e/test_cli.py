"""The scoring command line: demo-data and validate, as a user runs them."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

from scoring.cli.main import main
from tests.conftest import GOOD_DEALS
from tests.data.test_contract import BAD


@pytest.fixture(scope="module")
def demo_dir(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("demo")
    result = CliRunner().invoke(main, ["demo-data", str(out), "--deals", "2000", "--seed", "4", "--end", "2025-06-30"])
    assert result.exit_code == 0, result.output
    return out


def test_demo_data_then_validate_passes(demo_dir: Path):
    result = CliRunner().invoke(main, ["validate", "--deals", str(demo_dir / "deals.csv"), "--history",
                                       str(demo_dir / "stage_history.csv"), "--config", str(demo_dir / "pipeline.toml")])
    assert result.exit_code == 0, result.output
    for text in ("2,000 deals", "Win rate", "Deals by stage", "Feature columns", "Data sufficiency", "OK:"):
        assert text in result.output


@pytest.mark.parametrize("case", BAD, ids=list(BAD))
def test_validate_refuses_bad_data_naming_column_and_row(write, case):
    text, column, rows, phrase = BAD[case]
    result = CliRunner().invoke(main, ["validate", "--deals", str(write("deals.csv", text))])
    assert result.exit_code == 1
    assert phrase in result.output
    if column:
        assert f"column '{column}'" in result.output
        assert ("row " if len(rows) == 1 else "rows ") + ", ".join(map(str, rows)) in result.output


def test_validate_says_plainly_when_there_is_too_little_data(write):
    result = CliRunner().invoke(main, ["validate", "--deals", str(write("deals.csv", GOOD_DEALS))])
    assert result.exit_code == 1
    assert "too little data to learn from: 1 won and 1 lost deal(s); at least 30 won and 30 lost are needed" in result.output


def test_bad_config_is_one_clear_paragraph(write):
    config = write("p.toml", 'stages = ["A"]\n')
    result = CliRunner().invoke(main, ["validate", "--deals", str(write("d.csv", GOOD_DEALS)), "--config", str(config)])
    assert result.exit_code == 1
    assert "error:" in result.output and "Traceback" not in result.output


def test_console_script_is_installed(tmp_path: Path):
    scoring = Path(sys.executable).parent / "scoring"
    assert scoring.exists(), "make install must provide the scoring command"
    run = subprocess.run([str(scoring), "demo-data", str(tmp_path), "--deals", "100", "--end", "2025-01-31"],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    run = subprocess.run([str(scoring), "validate", "--deals", str(tmp_path / "deals.csv"), "--history",
                          str(tmp_path / "stage_history.csv")], capture_output=True, text=True, timeout=120)
    assert run.returncode == 1 and "too little data" in run.stdout  # 100 deals are too few to learn from


def test_outputs_never_overwrite_an_input_nor_an_existing_file_without_force(demo_dir: Path, tmp_path: Path):
    """Issue 18 item 4: `--out` onto the input, or onto an existing file, is refused; --force overwrites atomically."""
    runner = CliRunner()
    model = tmp_path / "none.joblib"
    deals = demo_dir / "open_deals.csv"
    before = deals.read_bytes()
    onto_input = runner.invoke(main, ["score", "--input", str(deals), "--out", str(deals), "--model", str(model)])
    assert onto_input.exit_code == 1 and "is an input of this command" in onto_input.output
    assert deals.read_bytes() == before
    existing = tmp_path / "scores.csv"
    existing.write_text("keep me\n")
    refused = runner.invoke(main, ["forecast", "--input", str(deals), "--out", str(existing), "--model", str(model)])
    assert refused.exit_code == 1 and "--force" in refused.output and existing.read_text() == "keep me\n"
    again = runner.invoke(main, ["demo-data", str(demo_dir), "--deals", "50"])
    assert again.exit_code == 1 and "--force" in " ".join(again.output.split()) and deals.read_bytes() == before


def test_a_backtest_started_too_early_says_when_to_start_and_that_date_works(demo_dir: Path, tmp_path: Path):
    data = ["--deals", str(demo_dir / "deals.csv"), "--history", str(demo_dir / "stage_history.csv")]
    runner = CliRunner()
    early = runner.invoke(main, ["backtest", *data, "--start", "2022-07-01", "--end", "2022-07-01", "--out",
                                 str(tmp_path / "a")])
    text = " ".join(early.output.split())
    assert early.exit_code == 1 and "start the backtest on " in text, text
    suggested = text.split("start the backtest on ")[1][:10]
    assert "days later)" in text
    start = (pd.Timestamp(suggested) + pd.offsets.QuarterBegin(startingMonth=1)).strftime("%Y-%m-%d")
    result = runner.invoke(main, ["backtest", *data, "--start", start, "--end", start, "--out", str(tmp_path / "b")])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "b" / "backtest.csv").exists()
