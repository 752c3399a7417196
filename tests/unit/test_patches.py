"""Partial updates completed from the stored deal (``scoring.store.patches``), on rows made here."""
from __future__ import annotations

import json

import pandas as pd
import pytest

from scoring.data.config import PipelineConfig
from scoring.errors import InvalidDeals
from scoring.store.patches import merge_patches

CONFIG = PipelineConfig()  # Lead, Qualified, Proposal, Negotiation; Won, Closed Won, Lost, Closed Lost
AT = pd.Timestamp("2025-07-01 09:30")


def _stored(**overrides: object) -> pd.DataFrame:
    row = {"deal_id": "D-1", "created_at": pd.Timestamp("2025-03-01"), "amount": 5000.0, "stage": "Proposal",
           "status": "open", "closed_at": pd.NaT, "stage_entered_at": pd.Timestamp("2025-04-01"),
           "expected_close_date": pd.Timestamp("2025-08-31"),
           "features": json.dumps({"segment": "SMB", "owner": "Ana"})}
    return pd.DataFrame([{**row, **overrides}])


def test_fields_left_out_are_kept_null_clears_and_features_merge():
    [deal] = merge_patches(_stored(), [{"deal_id": "D-1", "amount": 7000, "owner": None, "region": "EMEA"}], CONFIG, AT)
    assert deal["amount"] == 7000 and deal["stage"] == "Proposal" and deal["stage_entered_at"] == "2025-04-01T00:00:00"
    assert deal["segment"] == "SMB" and deal["owner"] is None and deal["region"] == "EMEA"
    assert deal["closed_at"] is None and "history" not in deal


def test_a_stage_change_is_entered_when_heard_of_or_when_the_patch_says():
    [heard] = merge_patches(_stored(), [{"deal_id": "D-1", "stage": "negotiation"}], CONFIG, AT)
    assert heard["stage_entered_at"] == AT.isoformat() and heard["status"] == "open"
    assert heard["history"] == [{"stage": "negotiation", "entered_at": AT.isoformat()}]
    entry = {"stage": "Negotiation", "entered_at": "2025-06-20"}
    [told] = merge_patches(_stored(), [{"deal_id": "D-1", "stage": "Negotiation", "history": [entry]}], CONFIG, AT)
    assert told["stage_entered_at"] == "2025-06-20T00:00:00" and told["history"] == [entry]
    [same] = merge_patches(_stored(), [{"deal_id": "D-1", "stage": "Proposal"}], CONFIG, AT)
    assert same["stage_entered_at"] == "2025-04-01T00:00:00" and "history" not in same


def test_an_outcome_closes_the_deal_in_its_stage_and_reopening_clears_the_close():
    [won] = merge_patches(_stored(), [{"deal_id": "D-1", "stage": "Closed Won"}], CONFIG, AT)
    assert (won["status"], won["stage"], won["closed_at"]) == ("won", "Proposal", AT.isoformat())
    [lost] = merge_patches(_stored(), [{"deal_id": "D-1", "status": "lost", "closed_at": "2025-06-30"}], CONFIG, AT)
    assert (lost["status"], lost["closed_at"]) == ("lost", "2025-06-30")
    closed = _stored(status="won", closed_at=pd.Timestamp("2025-06-01"))
    [reopened] = merge_patches(closed, [{"deal_id": "D-1", "status": "open"}], CONFIG, AT)
    assert reopened["status"] == "open" and reopened["closed_at"] is None
    [still] = merge_patches(closed, [{"deal_id": "D-1", "amount": 1.0}], CONFIG, AT)
    assert still["status"] == "won" and still["closed_at"] == "2025-06-01T00:00:00"


def test_a_new_deal_needs_stage_and_created_at_named_by_field():
    with pytest.raises(InvalidDeals) as caught:
        merge_patches(_stored(), [{"deal_id": "D-1", "amount": 1.0}, {"deal_id": "N-1", "amount": 2.0}], CONFIG, AT)
    assert [caught.value.where(p) for p in caught.value.problems] == ["deals[1].stage", "deals[1].created_at"]
    [new] = merge_patches(_stored().iloc[:0], [{"deal_id": 7, "stage": "Lead", "created_at": "2025-06-01"}], CONFIG, AT)
    assert new == {"deal_id": "7", "stage": "Lead", "created_at": "2025-06-01", "status": "open", "closed_at": None}
