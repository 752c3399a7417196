"""The managers' page over real HTTP in a real browser (Playwright with Debian's Chromium): a store imported
by `scoring import`, the service started by the test, the page read as a manager would."""
from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner
from playwright.sync_api import Page, sync_playwright
from pydantic import TypeAdapter

from scoring.bundle import ModelBundle
from scoring.cli.main import main
from scoring.serving.schemas import FlowResponse, ForecastResponse
from scoring.serving.settings import hash_key
from tests.conftest import END
from tests.e2e.test_report import CHROMIUM_ARGS
from tests.e2e.test_serving import Server, start_server, stop

KEY = "managers-key-0123456789"
DOCS = Path(__file__).resolve().parents[2] / "docs"


@pytest.fixture(scope="module")
def store_dir(company: Path, bundle: ModelBundle, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A pipeline store with the demo company, imported twice by the CLI (the second changes nothing)."""
    tmp = tmp_path_factory.mktemp("pages")
    model = bundle.save(tmp / "bundle.joblib")
    args = ["import", "--deals", str(company / "deals.csv"), "--history", str(company / "stage_history.csv"),
            "--store", f"sqlite:///{tmp / 'pipeline.db'}", "--model", str(model)]
    first = CliRunner().invoke(main, args)
    assert first.exit_code == 0, first.output
    assert "6,000 new deals" in first.output and "Kept the forecast snapshot" in first.output
    again = CliRunner().invoke(main, args)
    assert again.exit_code == 0 and "Nothing changed" in again.output
    return tmp


@pytest.fixture(scope="module")
def served(store_dir: Path) -> Iterator[Server]:
    server = start_server(store_dir, {"SCORING_API_KEY_HASHES": hash_key(KEY), "SCORING_ACCESS_LOG": "false",
                                      "SCORING_STORE_URL": f"sqlite:///{store_dir / 'pipeline.db'}"},
                          "--model", str(store_dir / "bundle.joblib"))
    yield server
    stop(server)


@pytest.fixture(scope="module")
def browser() -> Iterator:
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    assert chromium, "Chromium is missing: `make test` installs Debian's chromium package"
    with sync_playwright() as p:
        yield p.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)


def _login(page: Page, url: str, key: str) -> None:
    page.goto(f"{url}/")
    assert page.url.endswith("/login")
    page.fill("input[name=key]", key)
    page.click("button[type=submit]")


def _value(page: Page, testid: str) -> float:
    return float(page.get_attribute(f"[data-testid={testid}]", "data-value") or "nan")


def test_the_page_shows_the_api_forecast_at_laptop_and_phone_width(served: Server, browser):
    api = httpx.get(f"{served.url}/v1/pipeline/forecast", params={"as_of": END, "periods": 4},
                    headers={"X-API-Key": KEY}, timeout=60)
    assert api.status_code == 200, api.text
    first = api.json()["periods"][0]
    for width, height in ((1366, 768), (390, 844)):
        context = browser.new_context(viewport={"width": width, "height": height})
        page = context.new_page()
        errors: list[str] = []
        page.on("console", lambda msg, errors=errors: errors.append(msg.text) if msg.type == "error" else None)
        page.on("pageerror", lambda exc, errors=errors: errors.append(str(exc)))
        _login(page, served.url, KEY)
        page.goto(f"{served.url}/?as_of={END}")
        assert _value(page, "bookings-expected") == first["bookings"]["expected"]
        assert _value(page, "bookings-p10") == first["bookings"]["p10"]
        assert _value(page, "bookings-p90") == first["bookings"]["p90"]
        assert _value(page, "fixed-expected") == first["fixed"]["expected"]
        assert _value(page, "booked") == first["booked"] > 0
        assert page.locator("svg.chart").count() >= 1 and page.locator("[data-testid=at-risk] tr").count() > 1
        assert page.locator("[data-testid=flow] tr").count() > 2
        assert "6,000 new deals, 0 changed." in page.locator("[data-testid=last-import]").inner_text()
        # nothing wider than the screen: tables scroll inside their boxes
        assert page.evaluate("document.documentElement.scrollWidth") <= width + 1
        if width == 1366 and os.environ.get("SCORING_SCREENSHOT"):  # the README's picture, made on purpose
            DOCS.mkdir(exist_ok=True)
            page.screenshot(path=str(DOCS / "managers-page.png"), full_page=False)
        assert errors == []
        context.close()


def test_the_flow_and_the_forecast_answer_what_their_schemas_say(served: Server):
    spec = httpx.get(f"{served.url}/openapi.json").json()
    for path, params, adapter in (("/v1/pipeline/forecast", {"as_of": END}, ForecastResponse),
                                  ("/v1/pipeline/flow", {"from": "2025-04-01", "to": END}, FlowResponse)):
        declared = spec["paths"][path]["get"]["responses"]["200"]["content"]["application/json"]["schema"]
        assert declared == {"$ref": f"#/components/schemas/{adapter.__name__}"}
        answer = httpx.get(f"{served.url}{path}", params=params, headers={"X-API-Key": KEY}, timeout=60)
        assert answer.status_code == 200, answer.text
        TypeAdapter(adapter).validate_json(answer.content, strict=True)
    flow = httpx.get(f"{served.url}/v1/pipeline/flow", params={"from": "2025-04-01", "to": END},
                     headers={"X-API-Key": KEY}).json()["total"]
    assert flow["created_deals"] > 0 and flow["won_deals"] > 0 and flow["end_deals"] > 0
    assert httpx.get(f"{served.url}/v1/pipeline/flow", params={"from": END, "to": "2025-01-01"},
                     headers={"X-API-Key": KEY}).status_code == 422
    assert httpx.get(f"{served.url}/v1/pipeline/flow", params={"from": END}).status_code == 401


def test_the_page_needs_a_key_and_refuses_a_wrong_one_and_a_cross_site_post(served: Server, browser):
    assert httpx.get(f"{served.url}/", follow_redirects=False).headers["location"] == "/login"
    page = browser.new_page()
    _login(page, served.url, "not-the-key")
    assert page.locator("[data-testid=login-failed]").is_visible()
    assert page.context.cookies() and not any(c["name"] == "scoring_session" for c in page.context.cookies())
    # A form posted from another site (the browser says so in Origin) is refused, even with the key.
    forged = httpx.post(f"{served.url}/login", data={"key": KEY, "csrf": "x"}, follow_redirects=False,
                        headers={"Origin": "http://evil.example", "Cookie": "scoring_csrf=x"})
    assert forged.status_code == 403
    without_token = httpx.post(f"{served.url}/login", data={"key": KEY}, follow_redirects=False)
    assert without_token.status_code == 403
    page.close()


def test_the_page_works_with_the_network_blocked(served: Server, browser):
    context = browser.new_context(viewport={"width": 1366, "height": 768})
    outside: list[str] = []

    def only_the_service(route) -> None:
        if route.request.url.startswith(served.url):
            route.continue_()
        else:
            outside.append(route.request.url)
            route.abort()

    context.route("**/*", only_the_service)
    page = context.new_page()
    _login(page, served.url, KEY)
    page.goto(f"{served.url}/?as_of={END}&period=month")
    assert _value(page, "bookings-expected") > 0 and page.locator("svg.chart").count() >= 1
    assert outside == []
    context.close()


def test_without_a_store_the_page_says_how_to_make_one(bundle: ModelBundle, tmp_path: Path):
    model = bundle.save(tmp_path / "bundle.joblib")
    server = start_server(tmp_path, {"SCORING_API_KEYS": "", "SCORING_API_KEY_HASHES": "",
                                     "SCORING_STORE_URL": f"sqlite:///{tmp_path / 'none.db'}"}, "--model", str(model))
    try:
        page = httpx.get(f"{server.url}/").text
        assert "No pipeline yet" in page and "scoring import" in page
        assert httpx.get(f"{server.url}/v1/pipeline/forecast").status_code == 404
        assert not (tmp_path / "none.db").exists()  # a reader never creates the store
    finally:
        stop(server)


def test_a_crm_puts_deals_into_the_store_once(served: Server, company: Path):
    """PUT /v1/deals: a changed deal (sent whole, as PUT means) and a new one with its history; the same batch
    again changes nothing; a deal the contract refuses is a 422 naming the field; no key, no entry."""
    import pandas as pd

    known = pd.read_csv(company / "open_deals.csv", dtype=str).iloc[0]
    batch = {"deals": [
        {"deal_id": known["deal_id"], "stage": known["stage"], "amount": float(known["amount"]) + 500,
         "created_at": known["created_at"], "stage_entered_at": known["stage_entered_at"], "status": "open",
         "expected_close_date": known["expected_close_date"], "segment": known["segment"]},
        {"deal_id": "CRM-1", "stage": "Qualified", "amount": 12000, "created_at": "2025-06-01", "status": "open",
         "stage_entered_at": "2025-06-10", "segment": "SMB",
         "history": [{"stage": "Lead", "entered_at": "2025-06-01"}, {"stage": "Qualified", "entered_at": "2025-06-10"},
                     {"field": "CloseDate", "value": "2025-07-31", "changed_at": "2025-06-01"},
                     {"field": "CloseDate", "value": "2025-08-31", "changed_at": "2025-06-20"}],
         "activities": [{"occurred_at": "2025-06-12T10:00:00", "type": "Meeting"}]}]}
    headers = {"X-API-Key": KEY}
    first = httpx.put(f"{served.url}/v1/deals", json=batch, headers=headers, timeout=60)
    assert first.status_code == 200, first.text
    # the known deal's amount, and its other fields (sent with the segment alone, where the export had six)
    assert first.json() == {"deals_read": 2, "deals_new": 1, "deals_changed": 1, "history_new": 2, "field_changes": 2,
                            "field_history_new": 2, "activities_new": 1, "deals_deleted": 0}
    again = httpx.put(f"{served.url}/v1/deals", json=batch, headers=headers, timeout=60).json()
    assert again["deals_new"] == again["deals_changed"] == again["history_new"] == 0
    assert again["field_history_new"] == again["activities_new"] == 0
    forecast = httpx.get(f"{served.url}/v1/pipeline/forecast", params={"as_of": END}, headers=headers, timeout=60)
    assert forecast.json()["deals"] >= 2
    bad = {"deals": [{**batch["deals"][1], "deal_id": "CRM-2", "stage": "Negotiating!!"}]}
    refused = httpx.put(f"{served.url}/v1/deals", json=bad, headers=headers, timeout=60)
    assert refused.status_code == 422 and "stage" in refused.text and "Negotiating!!" in refused.text
    missing = {"deals": [{k: v for k, v in batch["deals"][1].items() if k != "created_at"}]}
    refused = httpx.put(f"{served.url}/v1/deals", json=missing, headers=headers, timeout=60)
    assert refused.status_code == 422 and refused.json()["errors"][0]["field"] == "deals[0].created_at"
    assert httpx.put(f"{served.url}/v1/deals", json=batch, timeout=60).status_code == 401
