"""Partial updates of stored deals (``PATCH /v1/deals``): a CRM that sends only the fields that changed.

:func:`merge_patches` completes each patch with what the store holds for its deal, so that the whole deal
goes through the same contract and import as a file's row or a ``PUT``: a field left out keeps its stored
value, a field sent as null is cleared, and other fields (segment, owner, ...) are merged one by one. What a
CRM leaves implicit is filled in as it would have happened when the change was heard of (``at``):

- a stored deal's new stage without ``stage_entered_at`` was entered at ``at`` (or at the patch's own stage
  entry for it, if it sends one), and an open stage is appended to the deal's stage history;
- a new stage without ``status`` gives the status its kind (a won or lost label closes the deal, which stays
  in the open stage it closed from, as the store keeps closed deals; an open stage opens it), as a file
  without a status column does;
- a deal closed without ``closed_at`` closed at ``at``; a deal opened again loses its ``closed_at``.

A deal the store does not hold yet is created, and so needs what ``PUT`` needs (``stage``, ``created_at``);
one marked ``deleted`` is skipped. A stored deal marked ``deleted`` is taken out of the pipeline by the import.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date, datetime
from typing import Any

import pandas as pd

from scoring.data.config import PipelineConfig
from scoring.data.contract import stage_classifier
from scoring.data.tables import is_missing
from scoring.errors import DealProblem, InvalidDeals
from scoring.store.pipeline import features_of

#: What a deal the store does not hold must carry.
NEW_DEAL_NEEDS = ("stage", "created_at")


def merge_patches(stored: pd.DataFrame, patches: Sequence[Mapping[str, Any]], config: PipelineConfig,
                  at: pd.Timestamp) -> list[dict[str, Any]]:
    """Each patch over its stored deal (``stored``: the store's rows of these deals, canonical columns and
    ``features`` as JSON text): whole deals, dates as ISO text, features beside, ``history`` and ``activities``
    as sent (with the stage entry a stage change implies). Raises :class:`InvalidDeals` naming
    ``deals[i].field`` for a new deal that lacks a field."""
    classify = stage_classifier(config)
    by_id = {str(row["deal_id"]): row for row in stored.to_dict("records")}
    problems = [DealProblem(i, need, f"deal {patch['deal_id']!s} is not in the store: a new deal needs {need}")
                for i, patch in enumerate(patches) if str(patch["deal_id"]) not in by_id
                and patch.get("status") != "deleted" for need in NEW_DEAL_NEEDS if patch.get(need) is None]
    if problems:
        raise InvalidDeals(problems)
    when = at.isoformat()
    out = []
    for patch in patches:
        deal_id = str(patch["deal_id"])
        if deal_id not in by_id and patch.get("status") == "deleted":
            continue  # deleted before the store ever held it: nothing to take out
        old = _whole(by_id[deal_id]) if deal_id in by_id else {"status": "open"}
        sent = {k: v.isoformat() if isinstance(v, (datetime, date)) else v for k, v in patch.items()}
        deal = {**old, **sent, "deal_id": deal_id}  # history and activities: as sent, to be appended
        history = list(patch.get("history", []))
        kind, stage = classify(str(deal["stage"]))
        moved = "stage" in patch and stage != old.get("stage")
        if moved and "status" not in patch and kind in ("open", "won", "lost"):
            deal["status"] = kind
        if moved and kind in ("won", "lost") and old.get("stage") is not None:
            deal["stage"] = old["stage"]  # kept as the store keeps closed deals: in the stage they closed from
        if moved and deal_id in by_id and "stage_entered_at" not in patch and kind == "open":
            entries = [e["entered_at"] for e in history if "stage" in e and classify(str(e["stage"]))[1] == stage]
            deal["stage_entered_at"] = pd.Timestamp(max(entries, key=pd.Timestamp)).isoformat() if entries else when
            if not entries:
                history.append({"stage": patch["stage"], "entered_at": when})
                deal["history"] = history
        closed = deal["status"] in ("won", "lost")
        if closed and old.get("status") not in ("won", "lost") and "closed_at" not in patch:
            deal["closed_at"] = when
        elif not closed and "closed_at" not in patch:
            deal["closed_at"] = None
        out.append(deal)
    return out


def _whole(row: Mapping[str, Any]) -> dict[str, Any]:
    """A stored row as a deal is sent: dates as ISO text, missing values as None, features beside."""
    deal: dict[str, Any] = {}
    for key, value in row.items():
        if key == "features":
            continue
        if is_missing(value):
            deal[key] = None
        elif isinstance(value, pd.Timestamp):
            deal[key] = value.isoformat()
        else:
            deal[key] = value
    return {**features_of(row.get("features") or "{}"), **deal}
