"""Columns that tell a closed deal's outcome by themselves are found in any export, and only those."""
from __future__ import annotations

import numpy as np
import pandas as pd

from scoring.data.config import PipelineConfig
from scoring.data.contract import load_deal_history
from scoring.data.leaks import closing_flags, revealing_columns


def _deals(n: int = 400, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    status = rng.choice(["won", "lost", "open"], n, p=[0.3, 0.5, 0.2])
    segment = rng.choice(["SMB", "Enterprise"], n)
    return pd.DataFrame({
        "deal_id": [f"D{i}" for i in range(n)], "created_at": "2024-01-02", "amount": rng.integers(1, 100, n) * 100,
        "stage": "Qualified", "status": status,
        "closed_at": np.where(status == "open", None, "2024-03-01"),
        "segment": np.where(rng.random(n) < 0.6, segment, np.where(status == "won", "SMB", "Enterprise")),  # telling
        "Deal Name": [f"Deal {i}" for i in range(n)],  # a different value on every deal
        "Probability (%)": np.select([status == "won", status == "lost"], ["100", "0"], "40"),  # the CRM's own
        "Lost Reason": np.where(status == "lost", rng.choice(["Price", "Timing"], n), None),  # written at the loss
    })


def test_the_columns_a_close_writes_are_found_and_honest_ones_are_not():
    data = load_deal_history(_deals(), config=PipelineConfig(ignore_columns=()))
    assert set(data.features) == {"segment"}  # telling (ROC AUC about 0.7), not telling by itself
    warned = {w.column: w.message for w in data.report.warnings if "is not a feature" in w.message}
    assert set(warned) == {"Probability (%)", "Lost Reason"}
    assert "its value " in warned["Probability (%)"] and "whether it is filled in" in warned["Lost Reason"]
    assert "keep_columns = ['Lost Reason']" in warned["Lost Reason"]


def test_a_column_known_before_the_close_can_be_kept():
    config = PipelineConfig.from_dict({"keep_columns": ["probability (%)"]})
    assert "Probability (%)" in load_deal_history(_deals(), config=config).features


def test_too_few_closed_deals_judge_nothing():
    def frame(won: int, lost: int) -> pd.DataFrame:
        status = ["won"] * won + ["lost"] * lost
        return pd.DataFrame({"status": status, "Probability (%)": [100.0 if s == "won" else 0.0 for s in status]})
    features = {"Probability (%)": "numeric"}
    assert revealing_columns(frame(19, 200), features) == {}  # 20 of each outcome are needed to judge
    assert revealing_columns(frame(20, 20), features) == {"Probability (%)": (1.0, "its value")}


def test_a_column_that_says_whether_a_deal_is_closed_is_not_a_feature():
    """Bitrix24's CLOSED (Y/N), a close comment filled in at every close: they rank nothing among the closed deals,
    but the open deals a model learns from would all carry the open value and never close."""
    deals = _deals()
    closed = deals["status"] != "open"
    deals = deals.assign(CLOSED=np.where(closed, "Y", "N"), Comment=np.where(closed, "closed by the rep", None),
                         # a value most open deals have, some closed ones too: not a flag
                         Product=np.where(closed & (np.arange(len(deals)) % 3 == 0), "New", "Old"))
    data = load_deal_history(deals, config=PipelineConfig(ignore_columns=("Probability (%)", "Lost Reason")))
    assert set(data.features) == {"segment", "Product"}
    warned = {w.column: w.message for w in data.report.warnings if "is not a feature" in w.message}
    assert set(warned) == {"CLOSED", "Comment"}
    assert "'Y' on 100% of the closed deals, 'N' on 100% of the open ones" in warned["CLOSED"]
    assert "'(blank)' on 100% of the open ones" in warned["Comment"]
    kept = PipelineConfig(ignore_columns=("Probability (%)", "Lost Reason"), keep_columns=("closed",))
    assert "CLOSED" in load_deal_history(deals, config=kept).features
    assert closing_flags(deals.head(30), {"CLOSED": "categorical"}) == {}  # 20 open deals are needed to judge
