"""CRM exports, as exported, through `scoring validate`, `train` and `score` with only --preset."""
from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

from scoring.cli.main import main
from scoring.data.demo import DemoCompany
from scoring.data.exports import (
    bitrix24_deals,
    dynamics_opportunities,
    hubspot_deals,
    odoo_leads,
    pipedrive_deals,
    salesforce_reports,
    zoho_deals,
)


def _files(crm: str, folder: Path) -> tuple[list[str], Path, int]:
    """The CLI's data options for a demo company's export of ``crm``, the file to score, its open deals (Odoo's
    tracking values are its stage history and its field history both)."""
    demo = DemoCompany().generate(800, seed=11, end="2025-06-30")
    open_deals = int((demo.deals["status"] == "open").sum())
    if crm == "salesforce":
        deals, history = salesforce_reports(demo, folder)
        return ["--deals", str(deals), "--history", str(history), "--preset", crm], deals, open_deals
    if crm == "odoo":  # three open deals archived without being lost (merged duplicates): out of the pipeline
        deals, history = odoo_leads(demo, folder, archived=3)
        return ["--deals", str(deals), "--history", str(history), "--field-history", str(history), "--preset", crm], \
            deals, open_deals - 3
    if crm in ("zoho", "bitrix24"):  # the deals and their stage history: no stage-entry column in Zoho's deals
        deals, history = (zoho_deals if crm == "zoho" else bitrix24_deals)(demo, folder)
        return ["--deals", str(deals), "--history", str(history), "--preset", crm], deals, open_deals
    if crm == "dynamics":  # an Excel workbook, no stage history
        return ["--deals", str(deals := dynamics_opportunities(demo, folder)), "--preset", crm], deals, open_deals
    if crm == "hubspot":
        deals = hubspot_deals(demo, folder)
    else:  # five deleted deals head the Pipedrive export: four of them were closed, one may be open
        deals = pipedrive_deals(demo, folder)
        open_deals -= int((demo.deals["status"].head(5) == "open").sum())
    return ["--deals", str(deals), "--preset", crm], deals, open_deals


@pytest.mark.parametrize("crm", ["salesforce", "hubspot", "pipedrive", "odoo", "dynamics", "zoho", "bitrix24"])
def test_validate_train_and_score_an_export_with_only_the_preset(crm: str, tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    data, export, open_deals = _files(crm, tmp_path)
    runner = CliRunner()

    validated = runner.invoke(main, ["validate", *data, "--json"])
    assert validated.exit_code == 0, validated.output
    report = json.loads(validated.output)
    assert report["set_aside_rows"] > 0  # blank amounts, footers, deleted deals: counted, never silent
    if crm == "salesforce":
        reasons = {s["reason"].split(":")[0] for s in report["set_aside"]}
        assert any(r.startswith("report footer") for r in reasons)
        assert any(r.startswith("amount is blank") for r in reasons)
    if crm in ("pipedrive", "dynamics"):  # no stage history: said plainly, with how to get it
        assert any("no stage history" in w["message"] and "--history" in w["message"] for w in report["warnings"])

    strict = runner.invoke(main, ["validate", *data, "--strict"])
    if crm in ("zoho", "bitrix24"):  # only the history's won/lost rows are set aside: folded into the deals
        assert strict.exit_code == 0, strict.output
    else:
        assert strict.exit_code == 1 and "--strict refuses" in " ".join(strict.output.split())

    trained = runner.invoke(main, ["train", *data, "--promote", "always"])
    assert trained.exit_code == 0, trained.output
    assert "set aside" in " ".join(trained.output.split())  # every set-aside row counted in the output

    signals = data[data.index("--field-history"):][:2] if "--field-history" in data else []
    if signals:  # the rep's expected closing as it changed: learned from
        told = " ".join(runner.invoke(main, ["validate", *data]).output.split())
        assert "features from them: close_date_pushes, days_to_close_date" in told, told
    stages = data[data.index("--history"):][:2] if "--history" in data else []
    scored = runner.invoke(main, ["score", "--input", str(export), "--out", str(tmp_path / "scores.csv"),
                                  "--preset", crm, "--as-of", "2025-06-30", *signals, *stages])
    assert scored.exit_code == 0, scored.output
    if stages or crm == "hubspot":  # days in the stage from the stage history (HubSpot's: its Date entered columns)
        assert "without stage_entered_at" not in scored.output, scored.output
    scores = pd.read_csv(tmp_path / "scores.csv")
    assert len(scores) == open_deals  # a whole export: open deals scored, the rest counted and skipped
    assert "not scored" in " ".join(scored.output.split())
    assert scores["win_probability"].between(0, 1).all()

    forecast = runner.invoke(main, ["forecast", "--input", str(export), "--out", str(tmp_path / "f.json"),
                                    "--as-of", "2025-06-30", *signals])
    assert forecast.exit_code == 0, forecast.output
    owners = json.loads((tmp_path / "f.json").read_text())["breakdowns"]["owner"]  # the CRM's salesperson column
    assert len(owners) > 3 and sum(o["deals"] for o in owners) == open_deals

    if crm == "salesforce":  # amounts in two currencies, none converted: said when scoring and in the forecast
        mixed = pd.read_csv(export, dtype=str, keep_default_na=False)
        deal = (mixed != "").sum(axis=1) > 1  # not the report's footer lines
        mixed["Amount Currency"] = [("EUR" if i % 2 else "USD") if d else "" for i, d in enumerate(deal)]
        mixed.to_csv(tmp_path / "mixed.csv", index=False)
        forecast = runner.invoke(main, ["forecast", "--input", str(tmp_path / "mixed.csv"), "--out",
                                        str(tmp_path / "mixed.json"), "--as-of", "2025-06-30"])
        assert forecast.exit_code == 0, forecast.output
        said = [w for w in json.loads((tmp_path / "mixed.json").read_text())["warnings"] if "currencies" in w]
        assert len(said) == 1 and "2 currencies ('EUR', 'USD') would be added up as one" in said[0]
        assert "would be added up as one" in " ".join(forecast.output.split())
