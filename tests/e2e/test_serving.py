"""The service over real HTTP: `scoring serve` (uvicorn) started by the test on a free port, called with httpx."""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import httpx
import numpy as np
import orjson
import pandas as pd
import pytest
import schemathesis
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from mlflow.tracking import MlflowClient
from pydantic import TypeAdapter

from scoring.bundle import ModelBundle
from scoring.cli.main import main
from scoring.data.contract import load_deal_history
from scoring.serving.schemas import ForecastResponse, KpisResponse, ModelCard, ScoreResponse, StagesResponse
from scoring.serving.settings import Settings, hash_key
from scoring.training.pipeline import train_and_log
from tests.conftest import END

KEY = "test-key-0123456789"
AUTH = {"Authorization": f"Bearer {KEY}"}


@dataclass
class Server:
    url: str
    process: subprocess.Popen[bytes]
    log: Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(tmp: Path, env: dict[str, str], *args: str, timeout: float = 90.0) -> Server:
    """Run `scoring serve` in its own process and wait until it answers /healthz."""
    port = free_port()
    log = tmp / f"serve-{port}.log"
    full_env = {**os.environ, "SCORING_POLL_SECONDS": "0", **env}
    with log.open("wb") as out:  # the child keeps its own copy of the descriptor
        process = subprocess.Popen([sys.executable, "-m", "scoring.cli.main", "serve", "--port", str(port), *args],
                                   env=full_env, cwd=tmp, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"the server exited: {log.read_text()}")
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                return Server(url, process, log)
        except httpx.HTTPError:
            time.sleep(0.2)
    process.kill()
    raise AssertionError(f"the server did not start: {log.read_text()}")


def stop(server: Server) -> None:
    server.process.terminate()
    try:
        server.process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        server.process.kill()


def open_deals(company: Path) -> list[dict]:
    """The company's open deals as a CRM would send them (JSON objects, empty cells left out)."""
    frame = pd.read_csv(company / "open_deals.csv", dtype=str)
    return [{k: v for k, v in row.items() if isinstance(v, str)} for row in frame.to_dict(orient="records")]


@pytest.fixture(scope="module")
def served(company: Path, bundle: ModelBundle, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """The shared demo bundle served from a file, with an API key (given hashed)."""
    tmp = tmp_path_factory.mktemp("served")
    path = bundle.save(tmp / "bundle.joblib")
    server = start_server(tmp, {"SCORING_API_KEY_HASHES": hash_key(KEY), "SCORING_MAX_DEALS": "500",
                                "SCORING_ACCESS_LOG": "false"}, "--model", str(path))
    yield server
    stop(server)


def test_scores_over_http_equal_the_cli(served: Server, company: Path, bundle: ModelBundle, tmp_path: Path):
    deals = open_deals(company)[:300]
    response = httpx.post(f"{served.url}/v1/score", json={"as_of": END, "deals": deals}, headers=AUTH, timeout=60)
    assert response.status_code == 200, response.text
    body = response.json()
    # the answer, written by orjson, is what the documented response model says: nothing missing, nothing more
    answer = TypeAdapter(ScoreResponse)
    assert answer.dump_python(answer.validate_json(response.content, strict=True), mode="json") == body
    assert body["model"]["name"] == "bundle" and body["as_of"].startswith(END)
    scores = body["scores"]
    assert [s["deal_id"] for s in scores] == [d["deal_id"] for d in deals]
    first = scores[0]
    assert 0 <= first["win_probability"] <= 1 and first["fixed_probability"] in (0.1, 0.25, 0.5, 0.75)
    assert first["expected_revenue"] == pytest.approx(float(deals[0]["amount"]) * first["win_probability"], abs=0.01)
    assert set(first["timing"]) == {"win_probability_this_period", "period_end", "win_probability_90d",
                                    "expected_close_date", "slip_probability", "loss_probability"}
    assert first["timing"]["period_end"] == "2025-06-30"  # END is the last day of its quarter
    for s in scores:  # each deal wins this period, slips to a later one, or is lost
        t = s["timing"]
        assert t["win_probability_this_period"] + t["slip_probability"] + t["loss_probability"] == pytest.approx(1.0)
    assert all(f["effect"] > 0 for s in scores for f in s["factors_up"])
    assert all(f["effect"] < 0 for s in scores for f in s["factors_down"])
    assert any(s["stale"] for s in scores) and not all(s["stale"] for s in scores)

    pd.DataFrame(deals).to_csv(tmp_path / "open.csv", index=False)
    bundle_file = tmp_path / "bundle.joblib"
    bundle.save(bundle_file)
    result = CliRunner().invoke(main, ["score", "--input", str(tmp_path / "open.csv"), "--out",
                                       str(tmp_path / "scored.csv"), "--as-of", END, "--model", str(bundle_file)])
    assert result.exit_code == 0, result.output
    cli = pd.read_csv(tmp_path / "scored.csv")
    np.testing.assert_allclose([s["win_probability"] for s in scores], cli["win_probability"], rtol=1e-12)
    np.testing.assert_allclose([s["timing"]["win_probability_90d"] for s in scores], cli["win_probability_90d"],
                               rtol=1e-12)
    assert [s["timing"]["expected_close_date"] for s in scores] == cli["expected_close_date"].str[:10].tolist()


def test_unknown_fields_are_ignored_and_missing_features_listed(served: Server, company: Path):
    deal = {k: v for k, v in open_deals(company)[0].items() if k != "segment"}
    other = dict(open_deals(company)[1], crm_color="blue", notes={"free": "text"}, source="Carrier pigeon")
    response = httpx.post(f"{served.url}/v1/score", json={"as_of": END, "deals": [deal, other]}, headers=AUTH)
    assert response.status_code == 200, response.text
    warnings = " ".join(response.json()["warnings"])
    assert "crm_color" in warnings and "notes" in warnings and "ignored" in warnings
    assert "feature 'source': value(s) never seen in training, scored as rare: Carrier pigeon" in warnings
    assert f"'segment' missing on 1 deal(s) ({deal['deal_id']})" in warnings


def test_a_deal_without_an_amount_is_scored_with_no_revenue_as_a_files_blank_amount(served: Server, company: Path):
    """A CRM's deal with no amount yet (HubSpot's and Salesforce's early deals) is scored as a file's blank amount
    is: a win probability (the amount unknown), no revenue (null), counted aside in a forecast (it was a 422)."""
    deals = open_deals(company)[:3]
    blank = [{**deals[0], "amount": None}, *deals[1:]]
    answer = httpx.post(f"{served.url}/v1/score", json={"as_of": END, "deals": blank}, headers=AUTH, timeout=60)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    TypeAdapter(ScoreResponse).validate_json(answer.content, strict=True)
    given = httpx.post(f"{served.url}/v1/score", json={"as_of": END, "deals": deals}, headers=AUTH, timeout=60).json()
    first = body["scores"][0]
    assert first["expected_revenue"] is None and first["fixed_expected_revenue"] is None
    assert 0 <= first["win_probability"] <= 1  # the amount unknown to the model (a feature), not zero
    assert body["scores"][1:] == given["scores"][1:]
    empty = httpx.post(f"{served.url}/v1/score", json={"as_of": END, "deals": [{**deals[0], "amount": ""}]},
                       headers=AUTH, timeout=60)  # an empty property, as webhooks send it
    assert empty.status_code == 200 and empty.json()["scores"][0] == first
    forecast = httpx.post(f"{served.url}/v1/forecast", json={"as_of": END, "deals": blank, "period": "quarter",
                                                              "periods": 1}, headers=AUTH, timeout=60)
    assert forecast.status_code == 200, forecast.text
    assert any("1 deal(s) without an amount are counted aside" in w for w in forecast.json()["warnings"])
    assert forecast.json()["total"]["fixed"]["expected"] == pytest.approx(
        sum(s["fixed_expected_revenue"] for s in given["scores"][1:]), abs=0.05)


@pytest.mark.parametrize(("change", "field"), [
    ({"amount": -5}, "deals[0].amount"),
    ({"amount": "lots"}, "deals[0].amount"),
    ({"stage": "Imaginary"}, "deals[0].stage"),
    ({"stage": "Won"}, "deals[0].stage"),
    ({"created_at": "2025-02-30"}, "deals[0].created_at"),
    ({"created_at": "2026-01-01"}, "deals[0].created_at"),  # after as_of
    ({"stage_entered_at": "yesterday"}, "deals[0].stage_entered_at"),
    ({"created_at": "0001-01-01T00:00:00+00:01"}, "deals[0].created_at"),  # found by schemathesis: was a 500
    ({"expected_close_date": "9999-12-31"}, "deals[0].expected_close_date"),
    ({"created_at": "1900-01-01"}, "deals[0].created_at"),  # before the plausible years
    ({"stage_entered_at": "2101-01-01T03:00:00+02:00"}, "deals[0].stage_entered_at"),  # after them, in UTC too
    ({"stage": None}, "deals[0].stage"),
    ({"employees": "many"}, "deals[0].employees"),
    ({"segment": ["SMB"]}, "deals[0].segment"),
    ({"employees": 10**400}, "deals[0].employees"),  # beyond floats
])
def test_bad_deals_get_422_naming_the_field(served: Server, company: Path, change: dict, field: str):
    deal = {**open_deals(company)[0], **change}
    response = httpx.post(f"{served.url}/v1/score", json={"as_of": END, "deals": [deal]}, headers=AUTH)
    assert response.status_code == 422, response.text
    body = response.json()
    assert field in [e["field"] for e in body["errors"]] and field in body["message"]
    assert "Traceback" not in response.text


def test_dates_with_a_zone_are_read_as_utc(served: Server, company: Path):
    deal = open_deals(company)[0]
    entered = pd.Timestamp(deal["stage_entered_at"])
    zoned = dict(deal, deal_id="zoned", stage_entered_at=f"{entered - pd.Timedelta(hours=2):%Y-%m-%dT%H:%M:%S}-02:00")
    response = httpx.post(f"{served.url}/v1/score", json={"as_of": END, "deals": [deal, zoned]}, headers=AUTH)
    assert response.status_code == 200, response.text
    plain, converted = response.json()["scores"]
    assert plain["days_in_stage"] == converted["days_in_stage"]
    assert plain["win_probability"] == converted["win_probability"]


@pytest.mark.parametrize("dates", [
    ["2024-06-17T20:03", None, "2024-06-18"],
    ["2024-06-17T20:03Z", "2024-06-17T22:03+02:00"],  # zones mixed
    ["2024-06-17T20:03+02:00", "2024-06-18T01:00+02:00"],  # all in one zone
    ["2024-06-17T20:03Z", "2024-06-17T20:03"],  # a zone and none
    ["0001-01-01T00:00+00:01", "1969-12-31T23:59:59Z", "2101-01-01T01:00+02:00", "9999-12-31", "2100-12-31T23:59"],
])
def test_many_dates_convert_as_a_few_do(dates: list[str | None]):
    """Requests of many deals convert dates by pandas, of a few date by date: the same times, the same problems."""

    from scoring.data.open_deals import _dates as checked
    from scoring.serving.deals import _PANDAS_FROM, _dates

    parse = TypeAdapter(datetime).validate_python
    few = [{"at": None if d is None else parse(d)} for d in dates]
    many = few * (_PANDAS_FROM // len(few) + 1)
    problems_few: list = []
    problems_many: list = []
    expected = checked(_dates(few, "at"), len(few), "at", problems_few).tolist()
    assert checked(_dates(many, "at"), len(many), "at", problems_many).tolist() == expected * (len(many) // len(few))
    assert [p.message for p in problems_many] == [p.message for p in problems_few] * (len(many) // len(few))


def test_a_bad_value_among_good_ones_is_named_by_its_deal(served: Server, company: Path):
    first, second, third = open_deals(company)[:3]
    deals = [{**first, "employees": 12}, {**second, "employees": True}, {**third, "employees": " 40 "}]
    response = httpx.post(f"{served.url}/v1/score", json={"as_of": END, "deals": deals}, headers=AUTH)
    assert response.status_code == 422
    assert [e["field"] for e in response.json()["errors"]] == ["deals[1].employees"]
    deals[1]["employees"] = None  # numbers, numeric text and null in one column: all accepted
    response = httpx.post(f"{served.url}/v1/score", json={"as_of": END, "deals": deals}, headers=AUTH)
    assert response.status_code == 200, response.text
    assert any("'employees' missing on 1 deal(s)" in w for w in response.json()["warnings"])


def test_missing_fields_bad_json_and_limits(served: Server, company: Path):
    deal = open_deals(company)[0]
    for required in ("stage", "amount", "deal_id", "created_at"):
        partial = {k: v for k, v in deal.items() if k != required}
        response = httpx.post(f"{served.url}/v1/score", json={"as_of": END, "deals": [partial]}, headers=AUTH)
        assert response.status_code == 422 and f"deals[0].{required}" in response.json()["message"]
    response = httpx.post(f"{served.url}/v1/score", content=b'{"deals": [', headers={**AUTH, "content-type": "application/json"})
    assert response.status_code == 422 and response.json()["error"] == "invalid request"
    early = httpx.post(f"{served.url}/v1/score", json={"as_of": "0001-01-01", "deals": [deal]}, headers=AUTH)
    assert early.status_code == 422 and early.json()["errors"][0]["field"] == "as_of"
    duplicate = httpx.post(f"{served.url}/v1/score", json={"as_of": END, "deals": [deal, deal]}, headers=AUTH)
    assert duplicate.status_code == 422 and "duplicate deal_id" in duplicate.json()["message"]
    many = [dict(deal, deal_id=f"X{i}") for i in range(501)]  # the server's limit is 500 deals
    response = httpx.post(f"{served.url}/v1/score", json={"as_of": END, "deals": many}, headers=AUTH)
    assert response.status_code == 413 and "limit is 500" in response.json()["message"]
    huge = b'{"deals": [' + b" " * 21_000_000 + b"]}"
    response = httpx.post(f"{served.url}/v1/score", content=huge, headers={**AUTH, "content-type": "application/json"})
    assert response.status_code == 413 and response.json()["error"] == "request too large"


def test_api_keys(served: Server, company: Path):
    body = {"as_of": END, "deals": open_deals(company)[:1]}
    assert httpx.post(f"{served.url}/v1/score", json=body).status_code == 401
    assert httpx.post(f"{served.url}/v1/score", json=body, headers={"X-API-Key": "wrong"}).status_code == 401
    assert httpx.post(f"{served.url}/v1/score", json=body, headers={"X-API-Key": KEY}).status_code == 200
    assert httpx.get(f"{served.url}/v1/model").status_code == 401
    assert httpx.post(f"{served.url}/v1/admin/reload").status_code == 401
    for open_path in ("/healthz", "/readyz", "/metrics"):
        assert httpx.get(f"{served.url}{open_path}").status_code == 200
    assert "POST /v1/score" not in served.log.read_text()  # SCORING_ACCESS_LOG=false: no line per request


def test_forecast_model_stages_kpis_and_metrics(served: Server, company: Path):
    deals = open_deals(company)
    response = httpx.post(f"{served.url}/v1/forecast", headers=AUTH, timeout=60,
                          json={"as_of": END, "period": "month", "periods": 3, "deals": deals})
    assert response.status_code == 200, response.text
    forecast = response.json()
    assert [p["start"] for p in forecast["periods"]] == ["2025-06-30", "2025-07-01", "2025-08-01"]
    total = forecast["total"]
    assert total["model"]["p10"] <= total["model"]["p50"] <= total["model"]["p90"]
    assert sum(p["model"]["expected"] for p in forecast["periods"]) <= total["model"]["expected"] + 0.01
    assert total["fixed"]["expected"] == pytest.approx(sum(
        float(d["amount"]) * {"Lead": 0.1, "Qualified": 0.25, "Proposal": 0.5, "Negotiation": 0.75}[d["stage"]]
        for d in deals), abs=0.05)
    # Bookings: the open deals (the same numbers as model), the deals not yet created, and what was booked.
    for part in [*forecast["periods"], total]:
        assert part["pipeline"] == part["model"] and part["new_deals"]["expected"] >= 0
        assert part["bookings"]["expected"] == pytest.approx(
            part["booked"] + part["pipeline"]["expected"] + part["new_deals"]["expected"], abs=0.05)
    assert forecast["periods"][1]["new_deals"]["expected"] > 0  # a whole month of deals not yet created
    assert not forecast["booked_known"] and any("booked is 0" in w for w in forecast["warnings"])
    with_booked = httpx.post(f"{served.url}/v1/forecast", headers=AUTH, timeout=60,
                             json={"as_of": END, "period": "month", "periods": 3, "deals": deals, "booked": 5000})
    assert with_booked.json()["periods"][0]["booked"] == 5000 and with_booked.json()["booked_known"]
    refused = httpx.post(f"{served.url}/v1/forecast", headers=AUTH, timeout=60,
                         json={"as_of": END, "deals": deals, "booked": -1})
    assert refused.status_code == 422 and "booked" in refused.text

    card = httpx.get(f"{served.url}/v1/model", headers=AUTH).json()
    assert card["source"] == "file" and card["data"]["deals"] == 6000
    assert {m["model"] for m in card["holdout_metrics"]} >= {"model", "fixed", "stage_transitions"}
    stages = httpx.get(f"{served.url}/v1/stages", headers=AUTH).json()["stages"]
    assert [s["stage"] for s in stages] == ["Lead", "Qualified", "Proposal", "Negotiation"]
    kpis = httpx.get(f"{served.url}/v1/pipeline/kpis", headers=AUTH).json()
    assert kpis["as_of"] == END and 0 < kpis["win_rate"] < 1
    ready = httpx.get(f"{served.url}/readyz").json()
    assert ready["ready"] and ready["source"] == "file"
    # each answer is what its declared response schema says (clients are generated from them), nothing less
    spec = httpx.get(f"{served.url}/openapi.json").json()
    for path, method, body, adapter in (("/v1/forecast", "post", response.content, ForecastResponse),
                                        ("/v1/model", "get", None, ModelCard), ("/v1/stages", "get", None, StagesResponse),
                                        ("/v1/pipeline/kpis", "get", None, KpisResponse)):
        declared = spec["paths"][path][method]["responses"]["200"]["content"]["application/json"]["schema"]
        assert declared == {"$ref": f"#/components/schemas/{adapter.__name__}"}
        content = body if body is not None else httpx.get(f"{served.url}{path}", headers=AUTH).content
        TypeAdapter(adapter).validate_json(content, strict=True)
        assert set(orjson.loads(content)) == set(adapter.__annotations__)
    assert set(spec["paths"]["/v1/model"]["get"]["responses"]) == {"200", "401", "503"}  # no 413/422 for a GET
    metrics = httpx.get(f"{served.url}/metrics").text
    assert 'scoring_http_requests_total{method="POST",route="/v1/forecast",status="200"}' in metrics
    assert "scoring_deals_scored_total" in metrics and 'scoring_model_info{name="bundle"' in metrics


def test_refuses_to_listen_beyond_loopback_without_keys(tmp_path: Path):
    result = subprocess.run([sys.executable, "-m", "scoring.cli.main", "serve", "--host", "0.0.0.0", "--port",
                             str(free_port())], cwd=tmp_path, capture_output=True, text=True, timeout=60,
                            env={**os.environ, "SCORING_API_KEYS": "", "SCORING_API_KEY_HASHES": ""})
    assert result.returncode == 1 and "refusing to listen on 0.0.0.0 without API keys" in result.stderr
    assert Settings(host="0.0.0.0", api_keys=[KEY]).key_hashes() == {hash_key(KEY)}  # and keys are kept hashed only


def _outward_address() -> str | None:
    """This machine's address beyond loopback, if it has one."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("10.254.254.254", 9))  # no packet is sent: the kernel only picks the route's address
        except OSError:
            return None
        address = str(probe.getsockname()[0])
    return None if address.startswith("127.") else address


def test_an_app_started_without_the_cli_still_refuses_callers_beyond_loopback_without_keys(bundle: ModelBundle,
                                                                                          tmp_path: Path):
    """uvicorn's own command skips the CLI's check at start; the app refuses such requests itself."""
    outward = _outward_address()
    if outward is None:
        pytest.skip("this machine has no address beyond loopback")
    path = bundle.save(tmp_path / "bundle.joblib")
    port = free_port()
    process = subprocess.Popen([sys.executable, "-m", "uvicorn", "--factory", "scoring.serving.app:create_app",
                                "--host", "0.0.0.0", "--port", str(port), "--log-level", "warning"],
                               env={**os.environ, "SCORING_MODEL_URI": str(path), "SCORING_POLL_SECONDS": "0"},
                               cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        assert httpx.get(f"http://127.0.0.1:{port}/v1/model").status_code == 200  # loopback: fine
        refused = httpx.get(f"http://{outward}:{port}/v1/model")
        assert refused.status_code == 403 and "beyond loopback, without API keys" in refused.json()["message"]
        assert httpx.get(f"http://{outward}:{port}/healthz").status_code == 200  # health stays open
    finally:
        process.kill()
        process.wait()


def test_the_readme_curl_example_shows_what_the_product_does(served: Server):
    """The README's request, sent as written: the two deals get probabilities of their own, apart from the
    fixed percentages and from each other, and the stale one is flagged."""
    readme = (Path(__file__).parents[2] / "README.md").read_text(encoding="utf-8")
    body = json.loads(readme.split("curl -s localhost:8000/v1/score", 1)[1].split("-d '", 1)[1].split("'\n", 1)[0])
    response = httpx.post(f"{served.url}/v1/score", json=body, headers=AUTH)
    assert response.status_code == 200, response.text
    first, second = response.json()["scores"]
    assert abs(first["win_probability"] - first["fixed_probability"]) > 0.02
    assert second["win_probability"] < second["fixed_probability"] / 5 and second["stale"] and not first["stale"]
    assert first["win_probability"] > 5 * second["win_probability"]
    assert first["factors_up"] and second["factors_down"]


def test_the_docs_work_offline(served: Server):
    """/docs and /redoc load their scripts from the service itself (installed files), never from a CDN."""
    import re

    for page in ("/docs", "/redoc"):
        html = httpx.get(f"{served.url}{page}").text
        sources = re.findall(r'(?:src|href)=["\']([^"\']+)["\']', html) + re.findall(r"url: '([^']+)'", html)
        assert sources and not [s for s in sources if s.startswith(("http://", "https://", "//"))], sources
        for source in sources:
            response = httpx.get(f"{served.url}{source}")
            assert response.status_code == 200 and len(response.content) > 100, source


def test_no_generated_request_gets_a_server_error(served: Server):
    """Schemathesis draws requests from the service's own OpenAPI document; none may get a 5xx."""
    api = schemathesis.openapi.from_url(f"{served.url}/openapi.json")
    operations = [result.ok() for result in api.get_all_operations()]
    assert {f"{o.method.upper()} {o.path}" for o in operations} >= {"POST /v1/score", "POST /v1/forecast",
                                                                    "GET /v1/model", "GET /v1/stages"}
    for operation in operations:
        @given(case=operation.as_strategy())
        @settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        def no_server_error(case: schemathesis.Case) -> None:
            response = case.call(base_url=served.url, headers=AUTH, timeout=60)
            assert response.status_code < 500, (f"{case.method} {case.path}: {response.status_code} "
                                                f"{response.text[:300]}; the server's log: {served.log.read_text()[-3000:]}")

        no_server_error()


def test_the_event_loop_stays_free_while_large_requests_are_scored(served: Server, company: Path):
    """Validation and scoring run in worker threads: /healthz answers in about a millisecond while two
    clients keep the service busy with forecasts of 500 deals (about 0.1 s each). On the event loop,
    it would wait for them."""
    deals = (open_deals(company) * 500)[:500]
    body = {"as_of": END, "period": "month", "periods": 6,
            "deals": [dict(d, deal_id=f"{d['deal_id']}-{i}") for i, d in enumerate(deals)]}
    start = time.perf_counter()
    assert httpx.post(f"{served.url}/v1/forecast", json=body, headers=AUTH, timeout=60).status_code == 200
    one_forecast = time.perf_counter() - start
    stop_at = time.perf_counter() + max(2.0, 15 * one_forecast)
    answered = []

    def busy() -> None:
        with httpx.Client(headers=AUTH, timeout=60) as client:
            while time.perf_counter() < stop_at:
                answered.append(client.post(f"{served.url}/v1/forecast", json=body).status_code)

    threads = [threading.Thread(target=busy) for _ in range(2)]
    for thread in threads:
        thread.start()
    waits = []
    with httpx.Client() as client:
        while time.perf_counter() < stop_at:
            asked = time.perf_counter()
            assert client.get(f"{served.url}/healthz").status_code == 200
            waits.append(time.perf_counter() - asked)
            time.sleep(0.01)
    for thread in threads:
        thread.join()
    assert answered and set(answered) == {200}
    assert np.median(waits) < one_forecast / 4, (np.median(waits), one_forecast)


def test_several_workers_answer_side_by_side_and_their_metrics_add_up(company: Path, bundle: ModelBundle,
                                                                      tmp_path: Path):
    path = bundle.save(tmp_path / "bundle.joblib")
    (tmp_path / "tmp").mkdir()
    server = start_server(tmp_path, {"SCORING_ACCESS_LOG": "false", "TMPDIR": str(tmp_path / "tmp")},
                          "--model", str(path), "--workers", "2")
    deals = open_deals(company)[:5]
    statuses: list[int] = []

    def caller() -> None:  # a new connection per request: the two processes share the socket's connections
        for _ in range(10):
            statuses.append(httpx.post(f"{server.url}/v1/score", json={"as_of": END, "deals": deals},
                                       timeout=60).status_code)

    try:
        _wait_for(lambda: httpx.get(f"{server.url}/readyz").status_code == 200)
        threads = [threading.Thread(target=caller) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert statuses == [200] * 40
        log = server.log.read_text()
        assert log.count("Started server process") == 2, log
        for _ in range(6):  # whichever process answers /metrics counts both processes' requests
            metrics = httpx.get(f"{server.url}/metrics").text
            assert 'scoring_deals_scored_total{route="/v1/score"} 200.0' in metrics, metrics
            assert 'scoring_http_requests_total{method="POST",route="/v1/score",status="200"} 40.0' in metrics
            assert 'scoring_model_info{name="bundle",source="file",version="' in metrics
        assert list((tmp_path / "tmp").iterdir()), "the workers' metrics live in a directory of their own"
    finally:
        stop(server)
    assert server.process.returncode == 0
    assert not list((tmp_path / "tmp").iterdir()), "the metrics directory is removed when the service stops"


# -- the champion alias: hot swap, refused versions, fallback ------------------------------------
def test_hot_swap_under_load_and_a_broken_version_is_refused(company: Path, tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch):
    store = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.chdir(tmp_path)
    data = load_deal_history(company / "deals.csv", company / "stage_history.csv")
    train_and_log(data, as_of=END, promote="always", tracking_uri=store, export_dir=tmp_path / "models")
    server = start_server(tmp_path, {"MLFLOW_TRACKING_URI": store, "SCORING_POLL_SECONDS": "0.5",
                                     "SCORING_API_KEYS": KEY})
    deals = open_deals(company)[:20]
    failures: list[str] = []
    versions: set[str] = set()
    done = threading.Event()

    def hammer() -> None:
        with httpx.Client(base_url=server.url, headers=AUTH, timeout=60) as client:
            while not done.is_set():
                r = client.post("/v1/score", json={"as_of": END, "deals": deals})
                if r.status_code != 200:
                    failures.append(f"{r.status_code} {r.text[:200]}")
                else:
                    versions.add(r.json()["model"]["version"])

    threads = [threading.Thread(target=hammer) for _ in range(3)]
    try:
        for t in threads:
            t.start()
        train_and_log(data, as_of="2025-05-31", promote="always", tracking_uri=store, export_dir=None)
        _wait_for(lambda: httpx.get(f"{server.url}/readyz").json()["model"]["version"] == "2")

        client = MlflowClient(store, store)  # a version that cannot load: its source holds no model
        broken = client.create_model_version("pipeline-scoring", source=str(tmp_path), run_id=None)
        client.set_registered_model_alias("pipeline-scoring", "champion", broken.version)
        # with keys configured the details are for callers with a key (issue 18: no internals to anyone)
        _wait_for(lambda: "refused" in (httpx.get(f"{server.url}/readyz", headers=AUTH).json()["detail"] or ""))
        reload = httpx.post(f"{server.url}/v1/admin/reload", headers=AUTH, timeout=60).json()
        assert reload["changed"] is False and "refused" in reload["detail"]
        time.sleep(1.0)
    finally:
        done.set()
        for t in threads:
            t.join()
        stop(server)
    assert failures == []
    assert versions == {"1", "2"}  # served 1, then 2, never the broken 3
    assert httpx.Client  # the server is gone; nothing else to check


def test_serves_the_exported_bundle_when_the_store_is_unreachable(company: Path, bundle: ModelBundle,
                                                                  tmp_path: Path):
    bundle.save(tmp_path / "models" / "pipeline-scoring.joblib")
    (tmp_path / "models" / "pipeline-scoring.version").write_text("7\n")
    server = start_server(tmp_path, {"MLFLOW_TRACKING_URI": "http://127.0.0.1:9",  # nothing listens on port 9
                                     "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0", "MLFLOW_HTTP_REQUEST_TIMEOUT": "2"})
    try:
        ready = httpx.get(f"{server.url}/readyz").json()
        assert ready["ready"] and ready["source"] == "fallback" and ready["model"]["version"] == "7"
        assert "exported" in ready["detail"]
        card = httpx.get(f"{server.url}/v1/model").json()
        assert card["source"] == "fallback" and "could not give models:/pipeline-scoring@champion" in card["detail"]
        response = httpx.post(f"{server.url}/v1/score", json={"as_of": END, "deals": open_deals(company)[:2]})
        assert response.status_code == 200
    finally:
        stop(server)
    assert '"POST /v1/score HTTP/1.1" 200' in server.log.read_text()  # the access log, on by default


def test_a_store_that_never_answers_delays_the_start_by_the_timeout_only(company: Path, bundle: ModelBundle,
                                                                          tmp_path: Path):
    """A tracking server that accepts connections and never answers (MLflow would retry for minutes): after
    SCORING_STORE_TIMEOUT_SECONDS the exported bundle serves, and /readyz says why."""
    bundle.save(tmp_path / "models" / "pipeline-scoring.joblib")
    (tmp_path / "models" / "pipeline-scoring.version").write_text("3\n")
    with socket.socket() as black_hole:
        black_hole.bind(("127.0.0.1", 0))
        black_hole.listen(16)
        started = time.monotonic()
        server = start_server(tmp_path, {"MLFLOW_TRACKING_URI": f"http://127.0.0.1:{black_hole.getsockname()[1]}",
                                         "SCORING_STORE_TIMEOUT_SECONDS": "2"}, timeout=60)
        try:
            assert time.monotonic() - started < 30
            ready = httpx.get(f"{server.url}/readyz").json()
            assert ready["ready"] and ready["source"] == "fallback" and ready["model"]["version"] == "3"
            assert "did not answer within 2 s" in ready["detail"]
            response = httpx.post(f"{server.url}/v1/score", json={"as_of": END, "deals": open_deals(company)[:2]})
            assert response.status_code == 200
        finally:
            stop(server)


def test_a_late_store_answer_replaces_the_fallback_and_is_told(bundle: ModelBundle, tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch):
    """The first lookup outlives the timeout: the fallback serves at once, then the champion replaces it when
    the store answers, and the app is told (its metrics follow the model in service)."""
    from scoring.serving.holder import LoadedModel, ModelHolder

    bundle.save(tmp_path / "models" / "pipeline-scoring.joblib")
    (tmp_path / "models" / "pipeline-scoring.version").write_text("3\n")
    swaps: list[str] = []
    holder = ModelHolder(Settings(fallback_dir=str(tmp_path / "models"), store_timeout_seconds=0.2,
                                  cache_dir=str(tmp_path / "cache")),
                         on_swap=lambda: swaps.append(holder.current.version))

    def slow_store(uri: str) -> LoadedModel:
        time.sleep(12.0)  # longer than the fallback takes to load (and compile)
        return LoadedModel(bundle, "pipeline-scoring", "9", "registry", "now")

    monkeypatch.setattr(holder, "_load", slow_store)
    started = time.monotonic()
    holder.load_at_start()
    assert time.monotonic() - started < 12.0 and holder.current.source == "fallback"
    assert "did not answer within 0.2 s" in holder.error
    deadline = time.monotonic() + 30
    while not swaps and time.monotonic() < deadline:  # the swap is done when the app has been told
        time.sleep(0.05)
    assert holder.current.source == "registry" and holder.current.version == "9" and holder.error is None
    assert swaps == ["9"] and holder.swaps == 1


def test_not_ready_without_any_model(tmp_path: Path):
    server = start_server(tmp_path, {"MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'empty.db'}"})
    try:
        response = httpx.get(f"{server.url}/readyz")
        assert response.status_code == 503 and not response.json()["ready"]
        score = httpx.post(f"{server.url}/v1/score", json={"deals": [{"deal_id": "a", "stage": "Lead", "amount": 1,
                                                                       "created_at": "2025-01-01"}]})
        assert score.status_code == 503 and "no model is loaded" in score.json()["message"]
    finally:
        stop(server)


def _wait_for(condition, timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if condition():
                return
        except (httpx.HTTPError, KeyError, TypeError, json.JSONDecodeError):
            pass
        time.sleep(0.2)
    raise AssertionError("timed out waiting for the service")
