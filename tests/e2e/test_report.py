"""The backtest and its report, end to end through the CLI, opened in a real headless Chromium."""
from __future__ import annotations

import re
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from PIL import Image
from playwright.sync_api import sync_playwright

from scoring.cli.main import main

CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-sync",
                 "--disable-background-networking", "--disable-component-update"]


@pytest.fixture(scope="module")
def report_dir(company: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("backtest")
    result = CliRunner().invoke(main, ["backtest", "--deals", str(company / "deals.csv"),
                                       "--history", str(company / "stage_history.csv"),
                                       "--start", "2024-10-01", "--end", "2025-04-01", "--every", "quarter",
                                       "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "Wrote" in result.output and "Bookings (everything each period booked" in result.output
    return out


def test_backtest_writes_csv_report_and_plots(report_dir: Path):
    table = pd.read_csv(report_dir / "backtest.csv")
    assert set(table["model"]) == {"model", "stage_transitions", "fixed", "empirical_stage_rate", "odoo_naive_bayes",
                                   "logistic_regression"}
    bookings = pd.read_csv(report_dir / "bookings.csv")
    assert set(bookings["method"]) == {"model", "fixed", "seasonal_naive"}
    for name in ("forecast_vs_actual", "bookings_vs_actual", "reliability", "stage_probabilities", "funnel",
                 "days_in_stage"):
        with Image.open(report_dir / f"{name}.png") as image:
            assert image.width > 300 and image.height > 200
    html = (report_dir / "report.html").read_text(encoding="utf-8")
    links = re.findall(r'(?:src|href)="([^"]*)"', html)
    assert links and all(link.startswith(("data:image/png;base64,", "#")) for link in links), \
        "the report must not load anything from outside itself"
    assert "fixed percentages" in html and "Bottleneck" in html and "Stale deals" in html


def test_report_renders_in_headless_chromium_without_errors(report_dir: Path, tmp_path: Path):
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    assert chromium, "Chromium is missing: `make test` installs Debian's chromium package"
    errors: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1100, "height": 900})
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
        page.goto((report_dir / "report.html").as_uri())
        widths = page.evaluate("[...document.images].map(i => i.complete ? i.naturalWidth : 0)")
        headings = page.evaluate("[...document.querySelectorAll('h2')].map(h => h.textContent)")
        shot = tmp_path / "report.png"
        page.screenshot(path=str(shot), full_page=True)
        browser.close()
    assert errors == []
    assert len(widths) == 6 and all(w > 300 for w in widths)
    assert "Forecast vs fixed percentages vs actual" in headings and "Pipeline KPIs" in headings
    assert "Bookings: forecast vs what each period booked" in headings
    with Image.open(shot) as image:
        pixels = np.asarray(image.convert("L"), dtype=float)
    assert pixels.shape[0] > 3000  # the whole report, not a blank or cut page
    assert pixels.std() > 20 and (pixels < 100).mean() > 0.005  # text and plots drawn on the page
