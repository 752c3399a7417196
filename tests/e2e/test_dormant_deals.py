"""Deals left open for good, through the service in process (``TestClient(create_app(settings))``): the model card
says what the history showed, and a deal older than any close is scored as one that will not close, with a
warning, while a fresh one keeps most of its P(win)."""
from __future__ import annotations

from pathlib import Path

import pandas as pd
from fastapi.testclient import TestClient

from scoring.data.config import PipelineConfig
from scoring.data.contract import load_deal_history
from scoring.serving.app import create_app
from scoring.serving.settings import Settings
from scoring.train import train_bundle
from tests.conftest import END
from tests.model.test_bundle import _zombie_history


def test_the_service_scores_deals_left_open_for_good_and_says_so(tmp_path: Path):
    deals = _zombie_history()
    data = load_deal_history(deals, config=PipelineConfig(stages=("Engaging",), fixed_probabilities={"Engaging": 0.5}))
    path = train_bundle(data, as_of=END).save(tmp_path / "bundle.joblib")
    app = create_app(Settings(model_uri=str(path), poll_seconds=0, cache_dir=str(tmp_path / "compiled"),
                              fallback_dir=str(tmp_path)))
    created = {"fresh": pd.Timestamp(END) - pd.Timedelta(days=3), "old": pd.Timestamp(END) - pd.Timedelta(days=200)}
    body = {"as_of": END, "deals": [{"deal_id": name, "stage": "Engaging", "amount": 10_000, "segment": "SMB",
                                     "created_at": str(when.date())} for name, when in created.items()]}
    with TestClient(app) as client:
        card = client.get("/v1/model").json()
        answer = client.post("/v1/score", json=body)
    dormancy = card["serving"]["dormancy"]
    stage = dormancy["stages"]["Engaging"]
    assert dormancy["found"] and 0.2 < stage["never_leave_share"] < 0.3 and stage["longest_exit_days"] <= 60
    assert answer.status_code == 200
    scores = {s["deal_id"]: s for s in answer.json()["scores"]}
    assert scores["old"]["win_probability"] == 0.0 and scores["old"]["expected_revenue"] == 0.0
    assert 0.3 < scores["fresh"]["win_probability"] < 0.5  # 0.4: won by 40 % of deals, a quarter never close
    assert any("1 deal(s) in their stage longer than any deal that ever left it" in w for w in answer.json()["warnings"])
