"""The classic pipeline KPIs, checked by hand on a small history, and blind to what came after as_of."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest
from click.testing import CliRunner

from scoring.cli.main import main
from scoring.data.contract import load_deal_history
from scoring.forecast.kpis import pipeline_kpis

DEALS = """deal_id,created_at,amount,stage,status,closed_at
A,2024-01-01,1000,Proposal,won,2024-03-01
B,2024-01-05,3000,Qualified,lost,2024-02-10
C,2024-02-01,500,Lead,lost,2024-02-20
D,2024-03-01,2000,Qualified,open,
E,2024-02-02,4000,Qualified,open,
F,2024-03-15,700,Qualified,open,
"""
HISTORY = """deal_id,stage,entered_at
A,Lead,2024-01-01
A,Qualified,2024-01-10
A,Proposal,2024-02-01
B,Lead,2024-01-05
B,Qualified,2024-01-20
C,Lead,2024-02-01
D,Lead,2024-03-01
D,Qualified,2024-03-05
E,Lead,2024-02-02
E,Qualified,2024-02-10
F,Lead,2024-03-15
F,Qualified,2024-03-20
"""


@pytest.fixture
def data(write):
    return load_deal_history(write("deals.csv", DEALS), write("history.csv", HISTORY))


def test_kpis_by_hand(data):
    k = pipeline_kpis(data, "2024-04-01", min_decided=1)
    rates = {c.stage: (c.decided, c.converted) for c in k.conversion}
    # Lead: all six reached it; C was lost there, the rest moved on. Qualified: A moved on, B was lost,
    # D, E, F are still there (undecided). Proposal: A won from it. Nobody reached Negotiation.
    assert rates == {"Lead": (6, 5), "Qualified": (2, 1), "Proposal": (1, 1), "Negotiation": (0, 0)}
    assert math.isnan(k.conversion[3].rate)
    assert k.bottleneck == "Qualified"
    assert (k.won, k.lost) == (1, 2) and k.win_rate == pytest.approx(1 / 3)
    assert k.sales_cycle_median_days == pytest.approx(60.0)  # 1 Jan to 1 Mar 2024
    assert k.average_deal_size == 1000
    # New qualified leads: A, B in January, E in February, D and F in March (the last complete month).
    assert list(k.new_qualified_by_month.items())[-3:] == [("2024-01", 2), ("2024-02", 1), ("2024-03", 2)]
    assert k.lead_velocity_rate == pytest.approx(1.0)
    # Past Qualified stays took 22 and 21 days, but D (27 days), E (51) and F (12) are still there: counted
    # with censoring (the one definition of stale, the stage-transition model's), no tenth of stays is
    # known to last longer than D's or E's, so none is stale yet. (Ended stays alone would call D and E stale.)
    assert k.open_deals == 3 and k.stale_count == 0
    assert k.stale == [] and k.stale_by_stage == {}
    # Told that Qualified stays go stale after 25 days, D and E are.
    told = pipeline_kpis(data, "2024-04-01", min_decided=1, stale_after=np.array([np.inf, 25.0, np.inf, np.inf]))
    assert [s.deal_id for s in told.stale] == ["E", "D"] and told.stale_by_stage == {"Qualified": 2}
    assert any(line.startswith("Bottleneck: Qualified") for line in k.sentences())


def test_kpis_see_nothing_after_as_of(data):
    k = pipeline_kpis(data, "2024-02-15", min_decided=1)
    assert (k.won, k.lost) == (0, 1)  # only B had closed; A's win came on 1 March
    assert k.open_deals == 3  # A, C and E; D and F did not exist yet
    rates = {c.stage: (c.decided, c.converted) for c in k.conversion}
    assert rates["Qualified"] == (2, 1)  # A had moved on to Proposal, B was lost there, E is still there
    assert math.isnan(k.sales_cycle_median_days)


def test_kpis_json_is_plain_json(data):
    document = pipeline_kpis(data, "2024-04-01").to_dict()
    text = json.dumps(document, allow_nan=False)
    assert json.loads(text)["conversion"][0]["stage"] == "Lead"
    assert document["bottleneck"] is None  # no stage has 10 decided deals


def test_kpis_command_prints_json(write):
    result = CliRunner().invoke(main, ["kpis", "--deals", str(write("d.csv", DEALS)),
                                       "--history", str(write("h.csv", HISTORY)), "--as-of", "2024-04-01"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["open_deals"] == 3
