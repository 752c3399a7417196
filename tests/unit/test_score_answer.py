"""/v1/score's answer as written: rows of the documented keys, numpy values as their JSON."""
from __future__ import annotations

import numpy as np
import orjson
from pydantic import TypeAdapter

from scoring.serving.routes.scoring import _WRITE, _score_rows
from scoring.serving.schemas import FactorRow, Score


def test_rows_hold_the_documented_keys_and_numpy_text_is_written_as_text():
    day = np.array(["2025-09-30"], dtype="datetime64[us]")
    scores = {"deal_id": np.array(["D-1"]), "stage": np.array(["Proposal"]),  # numpy text ('<U'), not objects
              **{name: np.array([0.25]) for name in ("win_probability", "fixed_probability", "stage_probability",
                                                    "win_probability_this_period", "slip_probability",
                                                    "loss_probability", "win_probability_90d")},
              "expected_revenue": np.array([1000.004]), "fixed_expected_revenue": np.array([np.float64(500.0)]),
              "days_in_stage": np.array([12.5]), "stale": np.array([False]), "period_end": day,
              "expected_close_date": day,
              "factors_up": [[FactorRow(feature="segment", value="SMB", effect=0.5)]], "factors_down": [[]]}
    written = orjson.loads(_WRITE(_score_rows(scores)))
    [row] = TypeAdapter(list[Score]).validate_python(written, strict=False)
    assert list(written[0]) == list(Score.__annotations__)  # the documented keys, in their order
    assert row["deal_id"] == "D-1" and row["stage"] == "Proposal" and row["expected_revenue"] == 1000.0
    assert written[0]["timing"]["period_end"] == "2025-09-30"
    assert written[0]["factors_up"] == [{"feature": "segment", "value": "SMB", "effect": 0.5}]
    assert _WRITE({"id": np.str_("x"), "n": np.int64(3)}) == b'{"id":"x","n":3}'
