"""Deal signals (SPEC 2.2): reading field histories and activities as CRMs export them, and the features made of
them at a date, which may use only what was set before that date."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from scoring.data.config import PipelineConfig
from scoring.data.contract import inspect_deal_history, load_deal_history
from scoring.data.demo import DemoCompany
from scoring.data.presets import load_config
from scoring.data.signals import DealSignals, SignalSpec
from scoring.errors import DataError
from scoring.features.signals import signal_columns
from scoring.features.snapshots import snapshot_dates, take_snapshots


def _deals() -> pd.DataFrame:
    return pd.DataFrame({
        "deal_id": ["006A", "006B", "006C"], "created_at": ["2025-01-02", "2025-01-05", "2025-02-01"],
        "amount": [1000, 2000, 3000], "stage": ["Proposal", "Lead", "Qualified"], "status": ["open", "won", "lost"],
        "closed_at": [None, "2025-03-01", "2025-03-10"], "forecast_category": ["Commit", "Closed", "Omitted"],
        "owner": ["ann", "bob", "ann"]})


def _salesforce_field_history() -> pd.DataFrame:
    """OpportunityFieldHistory as a Data Loader export: OpportunityId, Field, OldValue, NewValue, CreatedDate
    (US dates with 12-hour times), with record events, stage changes and a deal the report filtered out."""
    return pd.DataFrame({
        "OpportunityId": ["006A", "006A", "006A", "006A", "006B", "006B", "006Z", "006C"],
        "Field": ["created", "CloseDate", "CloseDate", "ForecastCategoryName", "StageName", "Amount", "CloseDate",
                  "Owner"],
        "OldValue": [None, None, "2/1/2025", "Pipeline", "Lead", "1500", None, "bob"],
        "NewValue": [None, "2/1/2025", "3/15/2025", "Best Case", "Proposal", "2,000", "4/1/2025", "ann"],
        "CreatedDate": ["1/2/2025 9:00 AM", "1/2/2025 9:01 AM", "1/20/2025 4:30 PM", "1/21/2025 8:00 AM",
                        "1/10/2025 10:00 AM", "1/11/2025 10:00 AM", "1/12/2025 10:00 AM", "2/2/2025 1:00 PM"]})


def test_a_salesforce_field_history_is_read_mapped_and_what_cannot_be_used_is_set_aside():
    data = load_deal_history(_deals(), field_history=_salesforce_field_history())
    fh = data.signals.field_history
    assert fh["field"].tolist() == ["expected_close_date", "expected_close_date", "forecast_category", "amount",
                                    "owner"]
    assert fh["value"].tolist() == ["2025-02-01", "2025-03-15", "best_case", "2000.0", "ann"]
    assert fh["changed_at"].iloc[1] == pd.Timestamp("2025-01-20 16:30")
    reasons = {s.reason.split(" (")[0]: s.count for s in data.report.set_aside}
    assert reasons == {"field changes of deal(s) that are not in the deals file": 1,
                       "record events that change no field": 1}
    # no stage history given: the stage change is one, from the stage it left (Lead since its creation); the
    # deals that never changed stage were in their current one since their creation
    assert data.history.assign(entered_at=data.history["entered_at"].astype(str)).values.tolist() == [
        ["006A", "Proposal", "2025-01-02 00:00:00"], ["006B", "Lead", "2025-01-05 00:00:00"],
        ["006B", "Proposal", "2025-01-10 10:00:00"], ["006C", "Qualified", "2025-02-01 00:00:00"]]
    assert data.spec == SignalSpec(close_date=True, amount=True, categories=("forecast_category", "owner"))
    # the deals file's current values of tracked fields are never features (a closed deal's category is Closed)
    assert {"forecast_category", "owner"} <= set(data.features)
    days = [pd.Timestamp("2025-01-21 12:00"), pd.Timestamp("2025-02-02"), pd.Timestamp("2025-02-05")]
    got = take_snapshots(data, days).rows.set_index(["deal_id", "as_of"])
    assert got.loc[("006A", days[0]), "forecast_category"] == "best_case"  # as then, not the file's 'Commit'
    assert pd.isna(got.loc[("006C", days[1]), "owner"]) and got.loc[("006C", days[2]), "owner"] == "ann"
    assert got.loc[("006B", days[2]), "amount"] == 2000.0
    with pytest.raises(DataError, match="set aside"):
        load_deal_history(_deals(), field_history=_salesforce_field_history(), strict=True)


def test_signals_of_a_deal_the_crm_deleted_are_set_aside_as_such():
    deals = pd.concat([_deals(), _deals().iloc[[0]].assign(deal_id="006D", status="deleted")], ignore_index=True)
    activities = pd.DataFrame({"WhatId": ["006A", "006D", "006Q"], "ActivityDate": ["2025-01-03"] * 3,
                               "TaskSubtype": ["Call"] * 3})
    data = load_deal_history(deals, field_history=_salesforce_field_history().assign(
        OpportunityId=lambda f: f["OpportunityId"].replace({"006Z": "006D"})), activities=activities)
    reasons = {a.reason: a.count for a in data.report.set_aside}
    assert reasons["field changes of deleted deals"] == 1 and reasons["activities of deleted deals"] == 1
    assert reasons["activities of deal(s) that are not in the deals file ('006Q')"] == 1


def test_the_deals_forecast_category_is_never_a_feature_without_its_history():
    data = load_deal_history(_deals())
    assert "forecast_category" not in data.features
    assert "owner" in data.features  # not tracked: the deals file's owner is a feature as before
    assert any("forecast_category is not a feature" in note for note in data.report.notes)


def test_bad_values_and_dates_in_a_field_history_are_errors_naming_the_column_and_row():
    fh = pd.DataFrame({"deal_id": ["006A", "006A", "006B"], "field": ["CloseDate", "Amount", "CloseDate"],
                       "value": ["soon", "lots", "2025-02-01"], "changed_at": ["2025-01-03", "2025-01-04", "yesterday"]})
    data, report = inspect_deal_history(_deals(), field_history=fh)
    assert data is None
    text = "\n".join(str(p) for p in report.errors)
    assert "row 2" in text and "soon" in text  # the close date that is not a date
    assert "lots" in text and "row 3" in text  # the amount that is not a number
    assert "yesterday" in text and "changed_at" in text


def test_activities_as_crms_export_them():
    tasks = pd.DataFrame({"WhatId": ["006A", "006A", "006B", "006Q", "006C"],
                          "ActivityDate": ["1/14/2025", None, "1/22/2025", "1/22/2025", "2/13/2025"],
                          "TaskSubtype": ["Call", "Email", "Email", "Call", None]})
    data = load_deal_history(_deals(), activities=tasks)
    act = data.signals.activities
    assert act["deal_id"].tolist() == ["006A", "006B", "006C"]
    assert act["type"].tolist()[:2] == ["call", "email"] and pd.isna(act["type"].iloc[2])
    reasons = {s.reason.split(" (")[0]: s.count for s in data.report.set_aside}
    assert reasons == {"activities without a date: they cannot be placed in time": 1,
                       "activities of deal(s) that are not in the deals file": 1}
    assert data.spec.activities and {"activities_30d", "days_since_activity"} <= set(data.features)


def _signals() -> DealSignals:
    fh = pd.DataFrame({"deal_id": ["a", "a", "a", "b", "b"], "field": ["expected_close_date"] * 3 + ["forecast_category"] * 2,
                       "value": ["2025-03-01", "2025-04-01", "2025-03-15", "pipeline", "commit"],
                       "changed_at": pd.to_datetime(["2025-01-01", "2025-02-01", "2025-02-10", "2025-01-05",
                                                     "2025-02-05"]).as_unit("us")})
    act = pd.DataFrame({"deal_id": ["a", "a", "b"], "occurred_at": pd.to_datetime(["2025-01-10", "2025-02-20",
                                                                                   "2024-12-01"]).as_unit("us"),
                        "type": ["call", "email", None]})
    return DealSignals(fh, act, frozenset({"field_history", "activities"}))


def test_features_at_a_date_use_only_what_was_set_strictly_before_it():
    signals = _signals()
    spec = SignalSpec.of(signals)
    at = pd.to_datetime(["2025-01-01", "2025-02-05", "2025-03-01", "2025-02-05", "2025-03-01", "2025-03-01"]
                        ).as_unit("us").to_numpy()
    got = signal_columns(np.array(["a", "a", "a", "b", "b", "c"]), at, signals, spec)
    assert got["close_date_pushes"].tolist() == [0, 1, 1, 0, 0, 0]  # 03-15 after 04-01 is a pull-in, not a push
    np.testing.assert_array_equal(got["days_to_close_date"], [np.nan, 55, 14, np.nan, np.nan, np.nan])
    assert got["activities_30d"].tolist() == [0, 1, 1, 0, 0, 0]
    np.testing.assert_array_equal(got["days_since_activity"], [np.nan, 26, 9, 66, 90, np.nan])
    assert got["forecast_category"].tolist() == [None, None, None, "pipeline", "commit", None]  # 02-05 is not before 02-05


def test_a_kind_of_signal_not_given_is_unknown_not_zero_and_the_deals_own_values_count_at_scoring():
    spec = SignalSpec(close_date=True, activities=True, categories=("forecast_category",))
    own = {"expected_close_date": np.array(["2025-03-31", "NaT"], dtype="datetime64[us]"),
           "forecast_category": np.array(["commit", None], dtype=object)}
    got = signal_columns(np.array(["a", "b"]), pd.Timestamp("2025-03-01"), DealSignals(), spec, own)
    assert np.isnan(got["activities_30d"]).all() and np.isnan(got["close_date_pushes"]).all()
    np.testing.assert_array_equal(got["days_to_close_date"], [30, np.nan])
    assert got["forecast_category"].tolist() == ["commit", None]
    with_history = signal_columns(np.array(["a", "b"]), pd.Timestamp("2025-03-01"), _signals(), spec, own)
    assert with_history["forecast_category"].tolist() == ["commit", "commit"]  # b's from its history
    assert with_history["close_date_pushes"].tolist() == [1, 0]


def test_snapshot_features_do_not_change_when_the_future_is_added():
    """The as-of rule: snapshots up to T are the same whether the signals stop at T or go on (CRMs overwrite a
    closed deal's close date with the day it closed: that change must never reach its open snapshots)."""
    demo = DemoCompany().generate(1500, seed=5, end="2025-06-30")
    cut = pd.Timestamp("2025-01-31")
    acts = demo.deals[["deal_id", "created_at"]].rename(columns={"created_at": "occurred_at"})
    acts = pd.concat([acts, acts.assign(occurred_at=acts["occurred_at"] + pd.Timedelta(days=20))])
    full = load_deal_history(demo.deals, demo.history, field_history=demo.field_history, activities=acts)
    known = load_deal_history(demo.deals, demo.history, field_history=demo.field_history[
        demo.field_history["changed_at"] < cut], activities=acts[acts["occurred_at"] < cut])
    dates = snapshot_dates(pd.Timestamp("2023-07-01"), cut, 14)
    a, b = (take_snapshots(d, dates, cut).rows for d in (full, known))
    columns = ["deal_id", "as_of", "close_date_pushes", "days_to_close_date", "activities_30d", "days_since_activity"]
    pd.testing.assert_frame_equal(a[columns], b[columns])
    assert a["close_date_pushes"].max() >= 1 and a["days_to_close_date"].notna().mean() > 0.9


def test_a_hubspot_property_history_is_read_with_its_own_names():
    """HubSpot's deal property history as its API and connectors give it (dealId, property, value, timestamp in UTC
    with a Z, sourceType): closedate, amount, the manual forecast category and the owner mapped; dealstage set aside
    (stages come from the stage history); hs_* bookkeeping properties kept as features of their own."""
    fh = pd.DataFrame({
        "dealId": ["006A", "006A", "006A", "006A", "006B", "006B"],
        "property": ["closedate", "closedate", "hs_manual_forecast_category", "dealstage", "amount",
                     "hubspot_owner_id"],
        "value": ["2025-02-01T00:00:00Z", "2025-03-15T00:00:00Z", "BEST_CASE", "presentationscheduled", "2000",
                  "4711"],
        "timestamp": ["2025-01-02T09:00:00.000Z", "2025-01-20T16:30:00.000Z", "2025-01-21T08:00:00.000Z",
                      "2025-01-10T10:00:00.000Z", "2025-01-11T10:00:00.000Z", "2025-01-12T10:00:00.000Z"],
        "sourceType": ["CRM_UI"] * 6})
    data = load_deal_history(_deals(), field_history=fh)
    got = data.signals.field_history
    assert got["field"].tolist() == ["expected_close_date", "expected_close_date", "forecast_category", "amount",
                                     "owner"]
    assert got["value"].tolist() == ["2025-02-01", "2025-03-15", "best_case", "2000.0", "4711"]
    assert got["changed_at"].iloc[0] == pd.Timestamp("2025-01-02 09:00")
    assert [s.reason.split(":")[0] for s in data.report.set_aside] == ["stage changes"]
    # HubSpot's internal stage names are not the deals' stages here: not taken for the stage history, said so
    assert any("not read as the stage history: unknown stage(s) 'presentationscheduled'" in str(p)
               for p in data.report.problems)
    assert not data.has_history


def test_a_hubspot_property_history_of_the_deal_stage_is_the_stage_history_with_the_preset():
    """With the HubSpot preset, the deal stage's internal names (dealstage: presentationscheduled, closedwon) are
    its stages: the property history is the stage history when none is given (its first value is the stage the
    deal was created in: HubSpot records it)."""
    deals = pd.DataFrame({"Record ID": ["1", "2"], "Create Date": ["2025-01-02", "2025-01-05"], "Amount": [100, 200],
                          "Deal Stage": ["Presentation Scheduled", "Closed Won"], "Close Date": ["", "2025-02-01"],
                          "Pipeline": ["Sales Pipeline"] * 2})
    fh = pd.DataFrame({
        "dealId": ["1", "1", "2", "2", "2"], "property": ["dealstage"] * 5,
        "value": ["appointmentscheduled", "presentationscheduled", "qualifiedtobuy", "contractsent", "closedwon"],
        "timestamp": ["2025-01-02T09:00:00Z", "2025-01-20T10:00:00Z", "2025-01-05T08:00:00Z",
                      "2025-01-15T08:00:00Z", "2025-02-01T12:00:00Z"]})
    data = load_deal_history(deals, field_history=fh, config=load_config(preset="hubspot"))
    assert data.history[["deal_id", "stage"]].values.tolist() == [
        ["1", "Appointment Scheduled"], ["1", "Presentation Scheduled"], ["2", "Qualified To Buy"],
        ["2", "Contract Sent"]]
    assert data.deals.set_index("deal_id").loc["2", "stage"] == "Contract Sent"  # the stage it was won from


def test_the_opportunity_field_history_report_is_the_stage_and_field_history():
    """Salesforce's Opportunity Field History report (labels: Field / Event, Old Value, New Value, Edit Date; its
    creation events written "Created.") given only as the field history: the stage changes are the stage history,
    the close dates the field history, the events set aside."""
    fh = pd.DataFrame({
        "Opportunity ID": ["006A", "006A", "006A", "006B", "006B", "006B", "006C"],
        "Field / Event": ["Created.", "Close Date", "Stage", "Created.", "Stage", "Stage", "Created."],
        "Old Value": ["", "", "Lead", "", "Lead", "Qualified", ""],
        "New Value": ["", "2/15/2025", "Proposal", "", "Qualified", "Closed Won", ""],
        "Edit Date": ["1/2/2025 9:00 AM", "1/3/2025 9:00 AM", "1/20/2025 4:30 PM", "1/5/2025 8:00 AM",
                      "1/15/2025 8:00 AM", "3/1/2025 8:00 AM", "2/1/2025 8:00 AM"]})
    data = load_deal_history(_deals(), field_history=fh, config=PipelineConfig(won_labels=("Closed Won",)))
    assert data.history.assign(entered_at=data.history["entered_at"].astype(str)).values.tolist() == [
        ["006A", "Lead", "2025-01-02 00:00:00"], ["006A", "Proposal", "2025-01-20 16:30:00"],
        ["006B", "Lead", "2025-01-05 00:00:00"], ["006B", "Qualified", "2025-01-15 08:00:00"],
        ["006C", "Qualified", "2025-02-01 00:00:00"]]
    assert data.signals.field_history["field"].tolist() == ["expected_close_date"]
    assert {s.reason.split(" (")[0]: s.count for s in data.report.set_aside}["record events that change no field"] == 3


def test_a_change_log_whose_first_change_left_an_unknown_stage_is_refused_naming_it():
    """The stage a deal was created in comes from its first change's old value: one the config does not know is an
    error naming the column, the rows and the stage, as an unknown stage is."""
    fh = pd.DataFrame({"OpportunityId": ["006A", "006B", "006B"], "Field": ["StageName"] * 3,
                       "OldValue": ["Lead", "Triage", "Lead"], "NewValue": ["Proposal", "Lead", "Qualified"],
                       "CreatedDate": ["2025-01-20", "2025-01-06", "2025-01-15"]})
    with pytest.raises(DataError, match=r"column 'from_stage', row 3: unknown stage 'Triage' left by a deal's first"):
        load_deal_history(_deals(), fh)
    # the field history's own stage changes are only taken for the stage history when every stage is known
    data = load_deal_history(_deals(), field_history=fh)
    assert not data.has_history and any("unknown stage(s) 'Triage'" in p.message for p in data.report.warnings)


def test_pipedrive_deal_flow_changes_are_the_stage_history_once_its_stage_ids_are_named():
    """Pipedrive's deal flow as its API gives it (dealChange: item_id, field_key, old_value, new_value, log_time),
    stages as their ids: given as the stage history, the ids are unknown stages until the config names them
    ([values.stage]); then the stage changes are the history (the status change is not a stage)."""
    flow = pd.DataFrame({"item_id": ["006A", "006B", "006B", "006B"],
                         "field_key": ["stage_id", "stage_id", "stage_id", "status"],
                         "old_value": ["1", "1", "2", "open"], "new_value": ["3", "2", "3", "won"],
                         "log_time": ["2025-01-20 09:00:00", "2025-01-10 10:00:00", "2025-02-01 10:00:00",
                                      "2025-03-01 10:00:00"]})
    with pytest.raises(DataError, match="unknown stage"):
        load_deal_history(_deals(), flow)
    named = PipelineConfig(values={"stage": {"1": "Lead", "2": "Qualified", "3": "Proposal"}})
    data = load_deal_history(_deals(), flow, named)
    assert data.history[["deal_id", "stage"]].values.tolist() == [
        ["006A", "Lead"], ["006A", "Proposal"], ["006B", "Lead"], ["006B", "Qualified"], ["006B", "Proposal"],
        ["006C", "Qualified"]]
    assert {s.reason.split(" (")[0]: s.count for s in data.report.set_aside} == {
        "changes of other fields than the stage": 1}
