"""As-of snapshots: state from the past only, labels censored at the cutoff, no leak from the future."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scoring.data.contract import load_deal_history
from scoring.data.demo import DemoCompany
from scoring.features.snapshots import snapshot_dates, stage_events, take_snapshots
from tests.conftest import GOOD_DEALS, GOOD_HISTORY


@pytest.fixture
def data(write):
    return load_deal_history(write("deals.csv", GOOD_DEALS), write("history.csv", GOOD_HISTORY))


def test_state_at_each_date_comes_from_the_history_up_to_it(data):
    table = take_snapshots(data, pd.to_datetime(["2024-01-10", "2024-02-05", "2024-03-15"]))
    rows = table.rows.set_index(["deal_id", "as_of"])
    d4 = rows.xs("D4")
    assert list(d4.index) == [pd.Timestamp("2024-02-05"), pd.Timestamp("2024-03-15")]  # created 2024-02-01
    assert d4.loc["2024-02-05", "stage"] == "Lead" and d4.loc["2024-03-15", "stage"] == "Proposal"
    assert d4.loc["2024-03-15", "days_in_stage"] == 5 and d4.loc["2024-03-15", "stage_moves"] == 2
    assert d4.loc["2024-03-15", "age_days"] == 43
    d2 = rows.xs("D2")  # won on 2024-03-01: open at the first two dates only
    assert list(d2["stage"]) == ["Lead", "Proposal"] and list(d2["outcome"]) == ["won", "won"]
    assert d2["days_to_outcome"].iloc[1] == pytest.approx((pd.Timestamp("2024-03-01") - pd.Timestamp("2024-02-05")).days)
    assert (rows.xs("D1")["outcome"] == "open").all()  # still open: censored, not lost
    assert rows.xs("D1")["days_observed"].iloc[0] == 65
    assert set(rows.columns) >= {"segment", "seats", "amount", "furthest_stage_index"}


def test_outcomes_after_the_cutoff_are_censored(data):
    table = take_snapshots(data, pd.to_datetime(["2024-02-05"]), cutoff="2024-02-20")
    d2 = table.rows.set_index("deal_id").loc["D2"]
    assert d2["outcome"] == "open" and np.isnan(d2["days_to_outcome"]) and d2["days_observed"] == 15
    d3 = table.rows.set_index("deal_id").loc["D3"]
    assert d3["outcome"] == "lost"  # lost 2024-02-15, before the cutoff


def test_dates_after_the_cutoff_are_refused(data):
    with pytest.raises(ValueError, match="after the cutoff"):
        take_snapshots(data, pd.to_datetime(["2024-03-01"]), cutoff="2024-02-01")


def test_without_history_deals_pass_through_the_stages_up_to_their_current_one(write):
    """No stage history: a deal entered the first stage at creation and its current one at stage_entered_at, the
    stages between sharing that time (evenly here: four deals are too few whole stays to tell stages apart;
    :func:`stage_scales` otherwise). (Taking each deal only in its last stage put it there from the start: a stage
    that tells the outcome, and a pipeline where nobody moves forward.)"""
    data = load_deal_history(write("deals.csv", GOOD_DEALS))
    table = take_snapshots(data, pd.to_datetime(["2024-01-10", "2024-02-05"]))
    placed = dict(zip(zip(table.rows["deal_id"], table.rows["as_of"].dt.strftime("%m-%d")), table.rows["stage"]))
    # D2: Lead from 01-06, Qualified from about 01-19, Proposal from 02-01; D3: Lead 01-07, Qualified 01-20;
    # D4: Lead from 02-01 (Negotiation only from 04-01)
    assert placed == {("D1", "01-10"): "Lead", ("D1", "02-05"): "Lead", ("D2", "01-10"): "Lead",
                      ("D2", "02-05"): "Proposal", ("D3", "01-10"): "Lead", ("D3", "02-05"): "Qualified",
                      ("D4", "02-05"): "Lead"}
    assert table.unplaced == 0 and table.rows["stage_moves"].isna().all()  # moves are not known


def test_grid_dates_end_on_the_last_date():
    dates = snapshot_dates(pd.Timestamp("2024-01-01"), pd.Timestamp("2024-03-01"), 30)
    assert dates[-1] == pd.Timestamp("2024-03-01") and (np.diff(dates) == pd.Timedelta(days=30)).all()
    assert dates[0] >= pd.Timestamp("2024-01-01")


def test_every_open_deal_at_a_date_is_in_its_snapshot():
    demo = DemoCompany().generate(2000, seed=3, end="2025-06-30")
    from scoring.data.contract import load_deal_history as load
    data = load(demo.deals, demo.history)
    day = pd.Timestamp("2025-06-30")
    table = take_snapshots(data, [day])
    assert set(table.rows["deal_id"]) == set(demo.open_deals["deal_id"])
    assert table.unplaced == 0
    rows = table.rows.set_index("deal_id").loc[demo.open_deals["deal_id"]]
    assert (rows["stage"].to_numpy() == demo.open_deals["stage"].to_numpy()).all()


@st.composite
def future_changes(draw):
    return draw(st.integers(0, 2**31 - 1)), draw(st.integers(60, 900))


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(future_changes())
def test_changing_the_future_changes_no_snapshot_at_or_before_it(change):
    """Rewrite everything after T (outcomes, close dates, later stage entries, new deals): snapshots at or before T stay."""
    seed, days = change
    demo = DemoCompany().generate(600, seed=seed % 1000, end="2025-06-30")
    t = pd.Timestamp("2022-07-01") + pd.Timedelta(days=days)
    rng = np.random.default_rng(seed)
    deals, history = demo.deals.copy(), demo.history.copy()
    later = deals["closed_at"] > t
    deals.loc[later, "status"] = rng.choice(["won", "lost"], later.sum())
    deals.loc[later, "stage"] = rng.choice(["Lead", "Negotiation"], later.sum())
    deals.loc[later, "closed_at"] = deals.loc[later, "closed_at"] + pd.to_timedelta(rng.integers(0, 30, later.sum()), "D")
    after = history["entered_at"] > t
    history.loc[after, "stage"] = rng.choice(["Qualified", "Proposal"], after.sum())
    history = history[~(after & (rng.random(len(history)) < 0.3))]
    new = deals[deals["created_at"] > t].head(20).copy()
    new["deal_id"] = "NEW" + new["deal_id"]
    deals = pd.concat([deals, new], ignore_index=True)
    history = pd.concat([history, pd.DataFrame({"deal_id": new["deal_id"], "stage": "Lead", "entered_at": new["created_at"]})])
    dates = snapshot_dates(t - pd.Timedelta(days=120), t, 14)
    before = take_snapshots(load_deal_history(demo.deals, demo.history), dates, cutoff=t).rows
    after_change = take_snapshots(load_deal_history(deals, history), dates, cutoff=t).rows
    pd.testing.assert_frame_equal(before, after_change)


def test_stage_events_without_history_use_stage_entered_at_or_created_at(write):
    text = GOOD_DEALS.replace("2024-01-05,2024-06-30", ",2024-06-30")
    events = stage_events(load_deal_history(write("deals.csv", text)))
    assert events.set_index("deal_id").loc["D1", "entered_at"] == pd.Timestamp("2024-01-05")


def test_a_date_with_no_open_deal_gives_an_empty_snapshot(write):
    """No deal open on the date: an empty table with the usual columns, not a merge error."""
    data = load_deal_history(write("deals.csv", GOOD_DEALS))
    table = take_snapshots(data, pd.to_datetime(["2023-06-01"]))
    assert table.rows.empty and {"stage", "days_in_stage", "outcome"} <= set(table.rows.columns)
