"""One contract, one meaning: the same deals score the same by file and by request, through the app in process
(``TestClient(create_app(settings))``); library errors map to HTTP codes in one place; stale means one thing."""
from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scoring.bundle import ModelBundle
from scoring.data.contract import load_open_deals
from scoring.errors import InvalidDeals, ModelError
from scoring.scores import score_deals
from scoring.serving.app import create_app
from scoring.serving.settings import Settings
from tests.conftest import END

#: Stray spaces as exports and hand-typed CRM fields have them.
PADS = st.sampled_from(["", " ", "  ", "\t"])


@pytest.fixture(scope="module")
def client(bundle: ModelBundle, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    tmp = tmp_path_factory.mktemp("in-process")
    path = bundle.save(tmp / "bundle.joblib")
    app = create_app(Settings(model_uri=str(path), poll_seconds=0, cache_dir=str(tmp / "compiled"),
                              fallback_dir=str(tmp)))
    with TestClient(app) as test_client:
        yield test_client


def _messy(company: Path, pads: list[tuple[str, str]], n: int) -> pd.DataFrame:
    frame = pd.read_csv(company / "open_deals.csv", dtype=str).head(n).reset_index(drop=True)
    for column in ("segment", "source"):
        frame[column] = [f"{left}{value}{right}" if isinstance(value, str) else value
                         for value, (left, right) in zip(frame[column], pads, strict=False)]
    return frame


@settings(max_examples=3, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(pads=st.lists(st.tuples(PADS, PADS), min_size=300, max_size=300))
def test_the_same_messy_deals_score_the_same_by_file_and_by_request(client: TestClient, company: Path,
                                                                    tmp_path: Path, pads: list[tuple[str, str]]):
    frame = _messy(company, pads, 300)
    path = tmp_path / "messy.csv"
    frame.to_csv(path, index=False)
    by_file, _ = score_deals(client.app.state.holder.current.bundle, load_open_deals(path), END, top=0)
    deals = [{k: v for k, v in row.items() if isinstance(v, str)} for row in frame.to_dict(orient="records")]
    answer = client.post("/v1/score", json={"as_of": END, "deals": deals, "top_factors": 0})
    assert answer.status_code == 200, answer.text
    by_request = pd.DataFrame(answer.json()["scores"])
    assert list(by_request["deal_id"]) == list(by_file["deal_id"])
    np.testing.assert_allclose(by_request["win_probability"], by_file["win_probability"], rtol=1e-12, atol=0)


def test_a_bad_numeric_feature_is_refused_by_file_and_by_request_alike(client: TestClient, bundle: ModelBundle,
                                                                       company: Path, tmp_path: Path):
    numeric = [name for name, kind in bundle.features.items() if kind == "numeric"]
    assert numeric, "the demo company has a numeric feature"
    frame = pd.read_csv(company / "open_deals.csv", dtype=str).head(5)
    frame.loc[2, numeric[0]] = "abc"
    path = tmp_path / "bad.csv"
    frame.to_csv(path, index=False)
    with pytest.raises(InvalidDeals, match=rf"row 4, column {numeric[0]}: expected a number"):
        score_deals(bundle, load_open_deals(path), END)
    deals = [{k: v for k, v in row.items() if isinstance(v, str)} for row in frame.to_dict(orient="records")]
    answer = client.post("/v1/score", json={"as_of": END, "deals": deals})
    assert answer.status_code == 422
    assert answer.json()["errors"][0]["field"] == f"deals[2].{numeric[0]}"


def test_numbers_written_as_spreadsheets_write_them_score_as_plain_numbers_by_file_and_by_request(
        client: TestClient, bundle: ModelBundle, company: Path, tmp_path: Path):
    """A numeric feature of an export of open deals with thousands separators, a currency sign or a percent sign
    is read as the history's files are read (it was refused: 'expected a number, got 24,729'); a cell that is
    no number is still named."""
    numeric = next(name for name, kind in bundle.features.items() if kind == "numeric")
    plain = pd.read_csv(company / "open_deals.csv", dtype=str).head(40)
    numbers = pd.to_numeric(plain[numeric])
    written = plain.assign(**{numeric: [f"{v:,.0f}" if i % 3 == 0 else f"${v:,.0f}" if i % 3 == 1 else f"{v:.0f} %"
                                        for i, v in enumerate(numbers)]})
    assert written[numeric].str.contains(",").any()
    paths = {name: tmp_path / f"{name}.csv" for name in ("plain", "written")}
    plain.to_csv(paths["plain"], index=False)
    written.to_csv(paths["written"], index=False)
    by_file = {name: score_deals(bundle, load_open_deals(path), END, top=0)[0] for name, path in paths.items()}
    pd.testing.assert_frame_equal(by_file["written"], by_file["plain"])
    deals = [{k: v for k, v in row.items() if isinstance(v, str)} for row in written.to_dict(orient="records")]
    answer = client.post("/v1/score", json={"as_of": END, "deals": deals, "top_factors": 0})
    assert answer.status_code == 200, answer.text
    np.testing.assert_allclose(pd.DataFrame(answer.json()["scores"])["win_probability"],
                               by_file["plain"]["win_probability"], rtol=1e-12, atol=0)
    deals[3][numeric] = "12 employees"
    refused = client.post("/v1/score", json={"as_of": END, "deals": deals})
    assert refused.status_code == 422 and refused.json()["errors"][0]["field"] == f"deals[3].{numeric}"


@pytest.mark.parametrize("marker", ["N/A", "#N/A", "NULL", "-", "--", "$ -"])
def test_markers_of_nothing_score_as_blank_cells_by_file_and_by_request(client: TestClient, bundle: ModelBundle,
                                                                        company: Path, tmp_path: Path, marker: str):
    """An empty field exported as N/A, #N/A, NULL or a dash (``$ -``: Excel's accounting format), and a CRM
    forwarding its fields as text: read as a blank cell is, by file and by request (a request refused them all
    in a numeric feature and took them for a category in another; a file refused the dashes)."""
    numeric = next(name for name, kind in bundle.features.items() if kind == "numeric")
    categorical = next(name for name, kind in bundle.features.items() if kind == "categorical")
    plain = pd.read_csv(company / "open_deals.csv", dtype=str).head(30)
    marked, blank = plain.copy(), plain.copy()
    columns = [numeric] if marker == "$ -" else [numeric, categorical]  # "$ -" marks a number only
    marked.loc[::4, columns] = marker
    blank.loc[::4, columns] = None
    paths = {name: tmp_path / f"{name}.csv" for name in ("marked", "blank")}
    marked.to_csv(paths["marked"], index=False)
    blank.to_csv(paths["blank"], index=False)
    scored = {name: score_deals(bundle, load_open_deals(path), END, top=0) for name, path in paths.items()}
    pd.testing.assert_frame_equal(scored["marked"][0], scored["blank"][0])
    deals = [{k: v for k, v in row.items() if isinstance(v, str)} for row in marked.to_dict(orient="records")]
    answer = client.post("/v1/score", json={"as_of": END, "deals": deals, "top_factors": 0})
    assert answer.status_code == 200, answer.text
    np.testing.assert_allclose(pd.DataFrame(answer.json()["scores"])["win_probability"],
                               scored["blank"][0]["win_probability"], rtol=1e-12, atol=0)
    assert sorted(answer.json()["warnings"]) == sorted(scored["blank"][1])


def test_feature_fields_named_otherwise_in_case_or_spaces_are_read_and_said(client: TestClient, bundle: ModelBundle,
                                                                            company: Path, tmp_path: Path):
    """Another export or view of the CRM may write a feature's header as ``Segment`` or ``SOURCE``: read as the
    model's feature (it was scored as unknown), with a warning naming both, by file and by request alike."""
    plain = pd.read_csv(company / "open_deals.csv", dtype=str).head(30)
    renamed = plain.rename(columns={"segment": " Segment ", "source": "SOURCE"})
    paths = {name: tmp_path / f"{name}.csv" for name in ("plain", "renamed")}
    plain.to_csv(paths["plain"], index=False)
    renamed.to_csv(paths["renamed"], index=False)
    scored = {name: score_deals(bundle, load_open_deals(path), END, top=0) for name, path in paths.items()}
    pd.testing.assert_frame_equal(scored["renamed"][0], scored["plain"][0])
    assert any("'Segment' as 'segment'" in w and "'SOURCE' as 'source'" in w for w in scored["renamed"][1])
    deals = [{k: v for k, v in row.items() if isinstance(v, str)} for row in
             plain.rename(columns={"segment": "Segment"}).to_dict(orient="records")]
    answer = client.post("/v1/score", json={"as_of": END, "deals": deals, "top_factors": 0})
    assert answer.status_code == 200, answer.text
    np.testing.assert_allclose(pd.DataFrame(answer.json()["scores"])["win_probability"],
                               scored["plain"][0]["win_probability"], rtol=1e-12, atol=0)
    assert any("'Segment' as 'segment'" in w for w in answer.json()["warnings"])


def test_a_model_error_is_the_service_s_problem(client: TestClient, company: Path, monkeypatch: pytest.MonkeyPatch):
    from scoring.serving.routes import scoring as routes

    def broken(*args: object, **kwargs: object) -> None:
        raise ModelError("the model cannot be used")

    monkeypatch.setattr(routes, "score_columns", broken)
    deal = pd.read_csv(company / "open_deals.csv", dtype=str).head(1).dropna(axis=1).to_dict(orient="records")
    answer = client.post("/v1/score", json={"as_of": END, "deals": deal})
    assert answer.status_code == 503 and answer.json()["error"] == "model unavailable"


def test_no_handler_turns_every_exception_into_a_500(bundle: ModelBundle, tmp_path: Path):
    app = create_app(Settings(model_uri=str(bundle.save(tmp_path / "b.joblib")), poll_seconds=0))
    assert Exception not in app.exception_handlers and 500 not in app.exception_handlers


@pytest.mark.parametrize("own_process", [False, True])
def test_only_a_process_of_its_own_tunes_its_memory(own_process: bool, bundle: ModelBundle, tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch):
    """``scoring serve``'s app tunes malloc and, once the model is loaded, freezes the start-up objects; an app
    built in someone else's process (tests, an embedding app) leaves that process alone."""
    from scoring.serving import app as app_module

    calls: list[str] = []
    monkeypatch.setattr(app_module, "keep_freed_memory", lambda: calls.append("malloc") or True)
    app = create_app(Settings(model_uri=str(bundle.save(tmp_path / "b.joblib")), poll_seconds=0,
                              cache_dir=str(tmp_path / "compiled")), own_process=own_process)
    monkeypatch.setattr(app_module, "keep_startup_objects",
                        lambda: calls.append(f"freeze, model loaded: {app.state.holder.current is not None}"))
    with TestClient(app):
        pass
    assert calls == (["malloc", "freeze, model loaded: True"] if own_process else [])


def test_create_app_leaves_the_environment_alone(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    monkeypatch.delenv("DO_NOT_TRACK", raising=False)
    create_app(Settings(model_uri=str(tmp_path / "none.joblib"), poll_seconds=0))
    import os

    assert "DO_NOT_TRACK" not in os.environ


def test_stale_means_one_thing(bundle: ModelBundle, company: Path):
    """The KPIs' stale deals (at training) are the deals scoring flags stale, at the same date."""
    deals = pd.read_csv(company / "deals.csv", dtype=str)
    open_now = deals[deals["status"] == "open"].drop(columns=["status", "closed_at"])
    path = company.parent / "open_at_end.csv"
    open_now.to_csv(path, index=False)
    scores, _ = score_deals(bundle, load_open_deals(path), bundle.as_of, top=0)
    flagged = set(scores.loc[scores["stale"], "deal_id"])
    assert bundle.kpis.stale_count == len(flagged) > 0
    assert {s.deal_id for s in bundle.kpis.stale} <= flagged


def test_a_stage_entered_after_as_of_or_before_creation_is_refused_alike(client: TestClient, bundle: ModelBundle,
                                                                        company: Path, tmp_path: Path):
    frame = pd.read_csv(company / "open_deals.csv", dtype=str).head(3)
    frame.loc[0, "stage_entered_at"] = "2026-01-01"  # after as_of: negative days in the stage
    frame.loc[1, "stage_entered_at"] = (pd.Timestamp(frame.loc[1, "created_at"]) - pd.Timedelta(days=3)).isoformat()
    path = tmp_path / "entered.csv"
    frame.to_csv(path, index=False)
    with pytest.raises(InvalidDeals) as raised:
        score_deals(bundle, load_open_deals(path), END)
    assert [(p.index, p.field) for p in raised.value.problems] == [(0, "stage_entered_at"), (1, "stage_entered_at")]
    assert "row 2, column stage_entered_at" in str(raised.value)
    deals = [{k: v for k, v in row.items() if isinstance(v, str)} for row in frame.to_dict(orient="records")]
    answer = client.post("/v1/score", json={"as_of": END, "deals": deals})
    assert answer.status_code == 422
    assert [e["field"] for e in answer.json()["errors"]] == ["deals[0].stage_entered_at", "deals[1].stage_entered_at"]


def test_a_deal_without_stage_entered_at_is_scored_from_created_at_with_a_warning(client: TestClient, company: Path):
    deal = pd.read_csv(company / "open_deals.csv", dtype=str).head(1).drop(columns=["stage_entered_at"])
    deals = [{k: v for k, v in row.items() if isinstance(v, str)} for row in deal.to_dict(orient="records")]
    answer = client.post("/v1/score", json={"as_of": END, "deals": deals})
    assert answer.status_code == 200
    assert any("without stage_entered_at" in w for w in answer.json()["warnings"])


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", "application/xml", None])
def test_only_json_bodies_are_taken(client: TestClient, company: Path, content_type: str | None):
    """415 for anything but JSON: a form posted from another site cannot reach /v1 either."""
    deal = pd.read_csv(company / "open_deals.csv", dtype=str).head(1).dropna(axis=1).to_dict(orient="records")
    body = json.dumps({"as_of": END, "deals": deal}).encode()
    headers = {"content-type": content_type} if content_type else {}
    answer = client.post("/v1/score", content=body, headers=headers)
    assert answer.status_code == 415 and "application/json" in answer.json()["message"]
    assert client.post("/v1/score", content=body, headers={"content-type": "application/json"}).status_code == 200


@pytest.mark.parametrize("body", [b'{"deals": [', b'{"deals": []} trailing', b"\xff"])
def test_a_body_that_is_not_json_is_refused_saying_where(client: TestClient, body: bytes):
    answer = client.post("/v1/score", content=body, headers={"content-type": "application/json"})
    assert answer.status_code == 422, answer.text
    problem = answer.json()["errors"][0]
    assert problem["field"] == "body" and problem["message"].startswith("not valid JSON at character ")


@pytest.mark.parametrize("value", [b"NaN", b"Infinity", b"1" + b"0" * 400])
def test_numbers_only_python_reads_are_refused_naming_the_field(client: TestClient, company: Path, value: bytes):
    """orjson reads the bodies; what it refuses and Python's json reads still reaches the schema."""
    deal = pd.read_csv(company / "open_deals.csv", dtype=str).head(1).dropna(axis=1).to_dict(orient="records")[0]
    body = json.dumps({"as_of": END, "deals": [{**deal, "amount": 0}]}).encode().replace(b'"amount": 0', b'"amount": ' + value)
    answer = client.post("/v1/score", content=body, headers={"content-type": "application/json"})
    assert answer.status_code == 422 and answer.json()["errors"][0]["field"] == "deals[0].amount", answer.text


@pytest.mark.parametrize(("change", "field", "said"), [
    ({"amount": True}, "amount", "not true or false"), ({"amount": 1e308}, "amount", "less than or equal"),
    ({"amount": -5}, "amount", "greater than or equal"),
    ({"created_at": 1700000}, "created_at", "as text (ISO 8601"),  # not Unix time: seconds of 1970
    ({"expected_close_date": 0}, "expected_close_date", "as text (ISO 8601"),
    ({"stage_entered_at": True}, "stage_entered_at", "as text (ISO 8601"),
    ({"created_at": "2025-13-01"}, "created_at", "month value is outside"),
    # digits alone in text: pydantic would read "2025" as seconds since 1970 (1970-01-01), "20250105" likewise
    ({"stage_entered_at": "2025"}, "stage_entered_at", "as text (ISO 8601"),
    ({"created_at": "20251305"}, "created_at", "as text (ISO 8601"),
    ({"created_at": 20250105}, "created_at", "or Unix time"),  # a number: Unix time or nothing
])
def test_strict_types_where_a_value_would_be_silently_misread(client: TestClient, company: Path, change: dict,
                                                              field: str, said: str):
    deal = pd.read_csv(company / "open_deals.csv", dtype=str).head(1).dropna(axis=1).to_dict(orient="records")[0]
    answer = client.post("/v1/score", json={"as_of": END, "deals": [{**deal, **change}]})
    assert answer.status_code == 422 and answer.json()["errors"][0]["field"] == f"deals[0].{field}"
    assert said in answer.json()["errors"][0]["message"], answer.text


def test_unix_times_and_dates_without_separators_in_a_request_are_read_as_in_a_file(client: TestClient,
                                                                                     company: Path):
    """A CRM's API and webhooks send dates as Unix milliseconds (HubSpot: "1735689600000", as text) or seconds,
    database tools without separators ("20250105"): read as the files read them, the same scores as ISO dates."""
    frame = pd.read_csv(company / "open_deals.csv", dtype=str).head(12)
    deals = frame.dropna(axis=1).to_dict(orient="records")
    stamps = {k: pd.to_datetime(frame[k]) for k in ("created_at", "stage_entered_at")}
    written = [{**deal,
                "created_at": str(int(stamps["created_at"][i].value // 1_000_000)) if i % 3 == 0
                else int(stamps["created_at"][i].value // 1_000_000_000) if i % 3 == 1
                else stamps["created_at"][i].strftime("%Y%m%d%H%M%S"),
                "stage_entered_at": stamps["stage_entered_at"][i].strftime("%Y%m%d") if i % 2
                else stamps["stage_entered_at"][i].isoformat()}
               for i, deal in enumerate(deals)]
    iso = [{**deal, "stage_entered_at": stamps["stage_entered_at"][i].floor("D").isoformat() if i % 2
            else deal["stage_entered_at"]} for i, deal in enumerate(deals)]
    answers = [client.post("/v1/score", json={"as_of": END, "deals": body, "top_factors": 0}) for body in (written, iso)]
    assert [a.status_code for a in answers] == [200, 200], answers[0].text
    np.testing.assert_allclose(*(pd.DataFrame(a.json()["scores"])["win_probability"] for a in answers), rtol=1e-12)


def test_dates_are_documented_as_date_time_text(client: TestClient):
    """The dates' check (text or a datetime, never a number) is pydantic-core's; /docs still shows ISO text."""
    deal = client.get("/openapi.json").json()["components"]["schemas"]["Deal"]["properties"]
    assert deal["created_at"] == {"type": "string", "format": "date-time", "title": "Created At"}
    assert {"type": "string", "format": "date-time"} in deal["expected_close_date"]["anyOf"]


def test_an_empty_optional_date_is_missing_by_request_as_by_file(client: TestClient, bundle: ModelBundle,
                                                                   company: Path, tmp_path: Path):
    """A CRM sends an empty field as "": an optional date so sent is missing, as a file's blank cell is (it was a
    422); other text that is no date is still refused, naming the field."""
    frame = pd.read_csv(company / "open_deals.csv", dtype=str).head(20)
    frame.loc[::3, "expected_close_date"] = None
    frame.to_csv(tmp_path / "blank.csv", index=False)
    by_file, _ = score_deals(bundle, load_open_deals(tmp_path / "blank.csv"), END, top=0)
    deals = [{k: ("" if k == "expected_close_date" and not isinstance(v, str) else v) for k, v in row.items()
              if isinstance(v, str) or k == "expected_close_date"} for row in frame.to_dict(orient="records")]
    assert sum(deal["expected_close_date"] == "" for deal in deals) == 7
    answer = client.post("/v1/score", json={"as_of": END, "deals": deals, "top_factors": 0})
    assert answer.status_code == 200, answer.text
    np.testing.assert_allclose(pd.DataFrame(answer.json()["scores"])["win_probability"], by_file["win_probability"],
                               rtol=1e-12, atol=0)
    deals[1]["expected_close_date"] = "next week"
    refused = client.post("/v1/score", json={"as_of": END, "deals": deals})
    assert refused.status_code == 422 and refused.json()["errors"][0]["field"] == "deals[1].expected_close_date"
    assert "expected a date or date-time as text" in refused.json()["errors"][0]["message"]


def test_as_of_dates_are_read_as_deals_dates_in_bodies_and_queries(client: TestClient, company: Path):
    """as_of of a request body and of the pipeline's views is read as the deals' dates are: Unix time and a date
    without separators too; "2025" (which pydantic alone reads as 1970-01-01 plus 2025 seconds) is refused."""
    deal = pd.read_csv(company / "open_deals.csv", dtype=str).head(1).dropna(axis=1).to_dict(orient="records")
    for as_of in (str(int(pd.Timestamp(END).timestamp())), END.replace("-", "")):
        answer = client.post("/v1/score", json={"as_of": as_of, "deals": deal})
        assert answer.status_code == 200 and answer.json()["as_of"] == END, answer.text
    answer = client.post("/v1/score", json={"as_of": "2025", "deals": deal})
    assert answer.status_code == 422 and answer.json()["errors"][0]["field"] == "as_of", answer.text
    assert "as text (ISO 8601" in answer.json()["errors"][0]["message"]
    answer = client.get("/v1/pipeline/flow", params={"from": "2025", "to": END})
    assert answer.status_code == 422 and "as text (ISO 8601" in answer.text, answer.text
    assert client.get("/openapi.json").json()["components"]["schemas"]["ScoreRequest"]["properties"]["as_of"][
        "anyOf"][0] == {"type": "string", "format": "date"}


def test_score_answers_say_as_of_as_a_date_like_the_schema(client: TestClient, company: Path):
    deal = pd.read_csv(company / "open_deals.csv", dtype=str).head(1).dropna(axis=1).to_dict(orient="records")
    assert client.post("/v1/score", json={"as_of": END, "deals": deal}).json()["as_of"] == END


@pytest.mark.parametrize("keys", [" ", "good-key-123,,other", "a, "])
def test_blank_api_keys_are_refused(keys: str):
    with pytest.raises(ValueError, match="blank API key"):
        Settings(api_keys=keys)


def test_a_mistyped_store_is_not_created_by_the_service_nor_by_reading_commands(tmp_path: Path,
                                                                               monkeypatch: pytest.MonkeyPatch):
    from click.testing import CliRunner

    from scoring.cli.main import main

    typo = tmp_path / "mlfow" / "mlflow.db"
    app = create_app(Settings(model_uri="models:/pipeline-scoring@champion", tracking_uri=f"sqlite:///{typo}",
                              fallback_dir=str(tmp_path / "models"), poll_seconds=0))
    with TestClient(app) as test_client:
        ready = test_client.get("/readyz")
    assert ready.status_code == 503 and "no tracking store" in ready.json()["detail"]
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{typo}")
    result = CliRunner().invoke(main, ["stages"])
    assert result.exit_code == 1 and "no tracking store" in " ".join(result.output.split())
    assert not typo.exists() and not typo.parent.exists()


def test_readyz_keeps_its_details_for_callers_with_a_key(tmp_path: Path):
    from scoring.serving.settings import hash_key

    app = create_app(Settings(model_uri=str(tmp_path / "none.joblib"), poll_seconds=0,
                              api_key_hashes=[hash_key("k-123456789")]))
    with TestClient(app) as test_client:
        anyone = test_client.get("/readyz").json()
        keyed = test_client.get("/readyz", headers={"X-API-Key": "k-123456789"}).json()
    assert anyone["ready"] is False and str(tmp_path) not in anyone["detail"]
    assert str(tmp_path) in keyed["detail"]


def test_serve_says_plainly_when_the_port_is_taken():
    import socket

    from click.testing import CliRunner

    from scoring.cli.main import main

    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        result = CliRunner().invoke(main, ["serve", "--port", str(port), "--model", "none.joblib"])
    assert result.exit_code == 1 and "another program holds the port" in " ".join(result.output.split())


def test_a_forecast_of_deals_in_several_currencies_says_so(client: TestClient, company: Path):
    """Deals sent with their currency (a CRM's CurrencyIsoCode), two of them: the forecast adds the amounts up, so
    its warnings say it, as a file's read would; one currency says nothing."""
    deals = pd.read_csv(company / "open_deals.csv", dtype=str).head(6).dropna(axis=1).to_dict(orient="records")
    mixed = [{**deal, "CurrencyIsoCode": "EUR" if i % 2 else "usd"} for i, deal in enumerate(deals)]
    answer = client.post("/v1/forecast", json={"as_of": END, "deals": mixed})
    assert answer.status_code == 200, answer.text
    assert answer.json()["warnings"][0].startswith("amounts in 2 currencies ('EUR', 'USD') would be added up as one")
    one = client.post("/v1/forecast", json={"as_of": END, "deals": [{**d, "CurrencyIsoCode": "EUR"} for d in deals]})
    assert not any("currencies" in w for w in one.json()["warnings"])
