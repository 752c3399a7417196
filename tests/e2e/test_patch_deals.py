"""PATCH /v1/deals, through the service in process (``TestClient(create_app(settings))``) over a real SQLite
store: a CRM sends only what changed, and the store keeps everything else; what the CRM leaves implicit (when a
stage was entered, when a deal closed) is dated when the change is heard of."""
from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
from fastapi.testclient import TestClient

from scoring.bundle import ModelBundle
from scoring.data.contract import DealHistory, load_deal_history
from scoring.serving.app import create_app
from scoring.serving.settings import Settings
from scoring.store.pipeline import PipelineStore, open_store


@pytest.fixture
def store_url(company: Path, tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'pipeline.db'}"
    data = load_deal_history(pd.read_csv(company / "deals.csv"), pd.read_csv(company / "stage_history.csv"))
    with open_store(url, create=True) as store:
        store.import_history(data, "deals.csv")
    return url


@pytest.fixture
def client(store_url: str, bundle: ModelBundle, tmp_path: Path) -> Iterator[TestClient]:
    path = bundle.save(tmp_path / "bundle.joblib")
    app = create_app(Settings(model_uri=str(path), poll_seconds=0, cache_dir=str(tmp_path / "compiled"),
                              fallback_dir=str(tmp_path), store_url=store_url, snapshot_seconds=0))
    with TestClient(app) as test_client:
        yield test_client


def _stored(url: str, deal_id: str) -> pd.Series:
    with open_store(url) as store:
        return store.deals().set_index("deal_id").loc[deal_id]


def _open_deal(url: str, stage: str) -> pd.Series:
    with open_store(url) as store:
        deals = store.deals()
    return deals[(deals["status"] == "open") & (deals["stage"] == stage) & deals["segment"].notna()].iloc[0]


def test_a_field_left_out_keeps_its_value_and_null_clears_one(client: TestClient, store_url: str):
    before = _open_deal(store_url, "Proposal")
    patch = {"deals": [{"deal_id": before["deal_id"], "amount": before["amount"] + 1000, "owner": None}]}
    first = client.patch("/v1/deals", json=patch)
    assert first.status_code == 200, first.text
    assert first.json()["deals_changed"] == 1 and first.json()["deals_new"] == 0
    assert first.json()["field_changes"] == 2  # amount, and the other fields (owner cleared)
    after = _stored(store_url, before["deal_id"])
    assert after["amount"] == before["amount"] + 1000 and pd.isna(after["owner"])
    for kept in ("stage", "status", "created_at", "stage_entered_at", "expected_close_date", "segment", "source"):
        assert after[kept] == before[kept] or (pd.isna(after[kept]) and pd.isna(before[kept])), kept
    again = client.patch("/v1/deals", json=patch).json()
    assert again["deals_changed"] == again["field_changes"] == again["history_new"] == 0


def test_a_stage_change_is_dated_when_heard_of_and_a_won_label_closes_the_deal(client: TestClient, store_url: str):
    moving, winning = _open_deal(store_url, "Proposal"), _open_deal(store_url, "Negotiation")
    heard = pd.Timestamp.now(tz="UTC").tz_localize(None)
    answer = client.patch("/v1/deals", json={"deals": [{"deal_id": moving["deal_id"], "stage": "negotiation"},
                                                       {"deal_id": winning["deal_id"], "stage": "Closed Won"}]})
    assert answer.status_code == 200, answer.text
    assert answer.json()["deals_changed"] == 2 and answer.json()["history_new"] == 1
    moved = _stored(store_url, moving["deal_id"])
    assert moved["stage"] == "Negotiation" and moved["status"] == "open"
    assert abs(moved["stage_entered_at"] - heard) < pd.Timedelta(minutes=1)
    with open_store(store_url) as store:
        entries = store.history()
    last = entries[entries["deal_id"] == moving["deal_id"]].iloc[-1]
    assert last["stage"] == "Negotiation" and last["entered_at"] == moved["stage_entered_at"]
    won = _stored(store_url, winning["deal_id"])
    assert won["status"] == "won" and abs(won["closed_at"] - heard) < pd.Timedelta(minutes=1)
    assert won["amount"] == winning["amount"]
    # Sent again, nothing moves: the stage is the stored one, so no new entry and no new date.
    again = client.patch("/v1/deals", json={"deals": [{"deal_id": moving["deal_id"], "stage": "Negotiation"}]}).json()
    assert again["deals_changed"] == again["history_new"] == 0


def test_a_new_deal_needs_what_put_needs_and_a_deal_is_sent_once(client: TestClient, store_url: str):
    missing = client.patch("/v1/deals", json={"deals": [{"deal_id": "CRM-NEW", "stage": "Lead", "amount": 5000}]})
    assert missing.status_code == 422
    assert missing.json()["errors"][0]["field"] == "deals[0].created_at"
    assert "not in the store" in missing.json()["errors"][0]["message"]
    new = {"deal_id": "CRM-NEW", "stage": "Lead", "amount": 5000, "created_at": "2025-06-02", "segment": "SMB"}
    created = client.patch("/v1/deals", json={"deals": [new]})
    assert created.status_code == 200 and created.json()["deals_new"] == 1, created.text
    twice = client.patch("/v1/deals", json={"deals": [{"deal_id": "CRM-NEW", "amount": 1},
                                                      {"deal_id": "CRM-NEW", "stage": "Qualified"}]})
    assert twice.status_code == 422 and "CRM-NEW is sent more than once" in twice.text
    unknown = client.patch("/v1/deals", json={"deals": [{"deal_id": "CRM-NEW", "stage": "Haggling"}]})
    assert unknown.status_code == 422 and "Haggling" in unknown.text
    assert _stored(store_url, "CRM-NEW")["stage"] == "Lead"  # a refused change changes nothing


def test_a_partial_update_never_overwrites_a_change_made_while_it_read(tmp_path: Path, company: Path):
    """Two updates of one deal at once on SQLite (PostgreSQL: ``tests/e2e/test_stores.py``)."""
    both_changes_kept(f"sqlite:///{tmp_path / 'pipeline.db'}", company)


def both_changes_kept(url: str, company: Path) -> None:
    """Two updates of one deal at once, one of the amount and one of the close date: the second waits for the
    first and completes the deal from what the first wrote, so both changes are kept."""
    data = load_deal_history(pd.read_csv(company / "deals.csv"), pd.read_csv(company / "stage_history.csv"))
    store = open_store(url, create=True)
    store.import_history(data, "deals.csv")
    deals = store.deals()
    deal = deals[deals["status"] == "open"].iloc[0]
    other = PipelineStore(store.engine)

    def change(field: str, value: object, pause: float):
        def complete(stored: pd.DataFrame, at: pd.Timestamp) -> DealHistory:
            row = stored.iloc[0].to_dict()
            row.update(json.loads(row["features"]), **{field: value})
            time.sleep(pause)  # the other update starts while this one holds the deal
            return load_deal_history(pd.DataFrame([row]).drop(columns=["features"]), config=data.config)
        return complete

    slow = threading.Thread(target=store.update_deals, args=([deal["deal_id"]], change("amount", 123.0, 1.0), "a"))
    slow.start()
    time.sleep(0.3)
    other.update_deals([deal["deal_id"]], change("expected_close_date", pd.Timestamp("2031-01-31"), 0.0), "b")
    slow.join()
    after = store.deals().set_index("deal_id").loc[deal["deal_id"]]
    assert after["amount"] == 123.0 and after["expected_close_date"] == pd.Timestamp("2031-01-31")
    store.close()


def test_a_deal_that_entered_its_stage_today_leaves_todays_pipeline_readable(client: TestClient):
    """A CRM sends a deal that moved today, without its stage history: the pipeline as of today's start (the
    page, the snapshots) knows it was open then, not since when it was in its stage; it is forecast, not refused."""
    now = pd.Timestamp.now(tz="UTC").tz_localize(None).floor("s")
    whole = {"deal_id": "CRM-MOVED", "stage": "Negotiation", "amount": 20000, "status": "open", "segment": "SMB",
             "created_at": (now - pd.Timedelta(days=40)).isoformat(), "stage_entered_at": now.isoformat()}
    put = client.put("/v1/deals", json={"deals": [whole]})
    assert put.status_code == 200, put.text
    forecast = client.get("/v1/pipeline/forecast")
    assert forecast.status_code == 200, forecast.text
    assert any("without stage_entered_at" in w for w in forecast.json()["warnings"]), forecast.json()["warnings"]
    assert client.get("/").status_code == 200


def test_a_store_held_by_another_writer_is_a_503_to_retry_and_keeps_nothing(client: TestClient, store_url: str):
    """Another import holds SQLite's write lock longer than a write waits (5 s): the CRM is told to try again."""
    deal = _open_deal(store_url, "Proposal")
    holder = sqlite3.connect(store_url.removeprefix("sqlite:///"))
    holder.execute("BEGIN IMMEDIATE")
    try:
        busy = client.patch("/v1/deals", json={"deals": [{"deal_id": deal["deal_id"], "amount": 1.0}]})
    finally:
        holder.rollback()
        holder.close()
    assert busy.status_code == 503 and busy.headers["retry-after"] == "5"
    assert "database is locked" in busy.json()["message"] and "nothing was kept" in busy.json()["message"]
    assert _stored(store_url, deal["deal_id"])["amount"] == deal["amount"]
    assert client.patch("/v1/deals", json={"deals": [{"deal_id": deal["deal_id"], "amount": 1.0}]}).status_code == 200


def test_a_deal_without_an_amount_is_kept_as_a_files_is(client: TestClient, store_url: str):
    """CRM deals often have no amount yet: PUT keeps them (no revenue), as an import of a file does, and PATCH
    clears an amount with null (before, the PUT was refused: no amount column, or a blank amount under strict)."""
    put = client.put("/v1/deals", json={"deals": [{"deal_id": "NO-AMOUNT", "stage": "Lead", "created_at": "2025-06-01"}]})
    assert put.status_code == 200 and put.json()["deals_new"] == 1, put.text
    assert pd.isna(_stored(store_url, "NO-AMOUNT")["amount"])
    deal = _open_deal(store_url, "Proposal")
    cleared = client.patch("/v1/deals", json={"deals": [{"deal_id": deal["deal_id"], "amount": None}]})
    assert cleared.status_code == 200 and pd.isna(_stored(store_url, deal["deal_id"])["amount"]), cleared.text


def test_what_the_contract_refuses_in_a_write_is_named_by_its_field(client: TestClient):
    """The file contract's findings on a request's deals name the deal and field, not a file's row."""
    won = {"deal_id": "W-1", "stage": "Proposal", "amount": 100, "status": "won", "created_at": "2025-05-01"}
    moved = {"deal_id": "M-1", "stage": "Proposal", "amount": 100, "created_at": "2025-05-01",
             "history": [{"field": "amount", "value": "100", "changed_at": "2025-05-02"},
                         {"stage": "Lead", "entered_at": "2025-05-01"}, {"stage": "Pitch", "entered_at": "2025-05-03"}]}
    refused = client.put("/v1/deals", json={"deals": [won, moved]})
    assert refused.status_code == 422
    fields = {e["field"]: e["message"] for e in refused.json()["errors"]}
    assert set(fields) == {"deals[0].closed_at", "deals[1].history[2].stage"}, fields
    assert "needs the date it closed" in fields["deals[0].closed_at"] and "Pitch" in fields["deals[1].history[2].stage"]


def test_a_deal_deleted_in_the_crm_leaves_the_stored_pipeline(client: TestClient, store_url: str):
    """DELETE /v1/deals/{id} (or PATCH with status deleted): the deal leaves today's pipeline and forecast; a deal
    the store never held is a 404 (DELETE) or nothing to do (PATCH)."""
    first, second = _open_deal(store_url, "Proposal"), _open_deal(store_url, "Negotiation")
    before = client.get("/v1/pipeline/forecast").json()
    removed = client.delete(f"/v1/deals/{first['deal_id']}")
    assert removed.status_code == 200 and removed.json()["deals_deleted"] == 1, removed.text
    patched = client.patch("/v1/deals", json={"deals": [{"deal_id": second["deal_id"], "status": "deleted"},
                                                        {"deal_id": "NEVER-SEEN", "status": "deleted"}]})
    assert patched.status_code == 200 and patched.json()["deals_deleted"] == 1, patched.text
    assert _stored(store_url, first["deal_id"])["status"] == "deleted"
    after = client.get("/v1/pipeline/forecast", params={"as_of": str(pd.Timestamp.now().date() + pd.Timedelta(days=1))})
    assert after.json()["deals"] == before["deals"] - 2, (before["deals"], after.json()["deals"])
    assert client.delete(f"/v1/deals/{first['deal_id']}").json()["deals_deleted"] == 0  # already out
    missing = client.delete("/v1/deals/NEVER-SEEN")
    assert missing.status_code == 404 and "NEVER-SEEN" in missing.text
    created = client.patch("/v1/deals", json={"deals": [{"deal_id": "INV/2025/7", "stage": "Lead", "amount": 10,
                                                         "created_at": "2025-01-02"}]})
    assert created.status_code == 200, created.text  # an id with slashes, as some CRMs number deals
    assert client.delete("/v1/deals/INV%2F2025%2F7").json()["deals_deleted"] == 1
    assert _stored(store_url, "INV/2025/7")["status"] == "deleted"


def test_a_snapshot_written_meanwhile_by_another_writer_does_not_fail_the_write(client: TestClient,
                                                                               monkeypatch: pytest.MonkeyPatch):
    """The write's own forecast snapshot can meet the daily one written at the same moment (the store's one row
    per day and period): the deals are kept, so the answer is theirs, not a 500."""
    from sqlalchemy.exc import IntegrityError

    def raced(self: PipelineStore, row: dict) -> bool:
        raise IntegrityError("INSERT INTO forecast_snapshots ...", {}, Exception("UNIQUE constraint failed"))

    monkeypatch.setattr(PipelineStore, "record_snapshot", raced)
    answer = client.patch("/v1/deals", json={"deals": [{"deal_id": "RACE-1", "stage": "Lead", "amount": 10,
                                                        "created_at": "2025-01-02"}]})
    assert answer.status_code == 200 and answer.json()["deals_new"] == 1, answer.text
