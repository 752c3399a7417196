"""CRM export presets, on small files shaped like each CRM's real export."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from scoring.data.contract import inspect_deal_history, load_deal_history, load_open_deals, read_open_deals
from scoring.data.demo import DemoCompany
from scoring.data.exports import (
    BITRIX24_STAGE,
    ODOO_STAGE,
    ZOHO_STAGE,
    bitrix24_deals,
    hubspot_deals,
    odoo_leads,
    salesforce_field_history,
    salesforce_grouped_report,
    salesforce_reports,
    zoho_deals,
)
from scoring.data.presets import BITRIX24, HUBSPOT_STAGES, get_preset, hubspot_stage_columns, load_config
from scoring.errors import ConfigError, DataError


def _csv(tmp_path: Path, name: str, rows: list[dict]) -> Path:
    path = tmp_path / name
    pd.DataFrame(rows).to_csv(path, index=False)  # quotes headers such as Date entered "X" as a CRM does
    return path


def test_salesforce_report_export_with_opportunity_history(tmp_path):
    deals = _csv(tmp_path, "opportunities.csv", [
        {"Opportunity ID": "0065g01", "Opportunity Name": "Acme - 50 seats", "Account Name": "Acme",
         "Amount": "50000", "Stage": "Closed Won", "Close Date": "3/1/2024", "Created Date": "1/10/2024",
         "Opportunity Owner": "Jane Doe", "Lead Source": "Web", "Type": "New Business", "Probability (%)": "100",
         "Won": "1", "Closed": "1", "Age": "51", "Fiscal Period": "Q1-2024"},
        {"Opportunity ID": "0065g02", "Opportunity Name": "Globex renewal", "Account Name": "Globex",
         "Amount": "12000", "Stage": "Closed Lost", "Close Date": "2/20/2024", "Created Date": "1/12/2024",
         "Opportunity Owner": "Raj Patel", "Lead Source": "Partner", "Type": "Existing Business",
         "Probability (%)": "0", "Won": "0", "Closed": "1", "Age": "39", "Fiscal Period": "Q1-2024"},
        {"Opportunity ID": "0065g03", "Opportunity Name": "Initech pilot", "Account Name": "Initech",
         "Amount": "8000", "Stage": "Value Proposition", "Close Date": "6/30/2024", "Created Date": "2/01/2024",
         "Opportunity Owner": "Jane Doe", "Lead Source": "Web", "Type": "New Business", "Probability (%)": "50",
         "Won": "0", "Closed": "0", "Age": "30", "Fiscal Period": "Q2-2024"},
    ])
    history = _csv(tmp_path, "opportunity_history.csv", [
        {"Opportunity ID": "0065g01", "From Stage": "", "To Stage": "Prospecting", "Amount": "40000",
         "Probability (%)": "10", "Close Date": "3/31/2024", "Last Modified": "1/10/2024"},
        {"Opportunity ID": "0065g01", "From Stage": "Prospecting", "To Stage": "Prospecting", "Amount": "50000",
         "Probability (%)": "10", "Close Date": "3/31/2024", "Last Modified": "1/12/2024"},
        {"Opportunity ID": "0065g01", "From Stage": "Prospecting", "To Stage": "Negotiation/Review", "Amount": "50000",
         "Probability (%)": "90", "Close Date": "3/1/2024", "Last Modified": "2/15/2024"},
        {"Opportunity ID": "0065g01", "From Stage": "Negotiation/Review", "To Stage": "Closed Won", "Amount": "50000",
         "Probability (%)": "100", "Close Date": "3/1/2024", "Last Modified": "3/1/2024"},
        {"Opportunity ID": "0065g02", "From Stage": "", "To Stage": "Qualification", "Amount": "12000",
         "Probability (%)": "10", "Close Date": "3/31/2024", "Last Modified": "1/12/2024"},
        {"Opportunity ID": "0065g02", "From Stage": "Qualification", "To Stage": "Closed Lost", "Amount": "12000",
         "Probability (%)": "0", "Close Date": "2/20/2024", "Last Modified": "2/20/2024"},
        {"Opportunity ID": "0065g03", "From Stage": "", "To Stage": "Value Proposition", "Amount": "8000",
         "Probability (%)": "50", "Close Date": "6/30/2024", "Last Modified": "2/01/2024"},
    ])
    config_file = tmp_path / "pipeline.toml"
    config_file.write_text('date_format = "%m/%d/%Y"\n')
    data = load_deal_history(deals, history, load_config(config_file, preset="salesforce"))
    d = data.deals.set_index("deal_id")
    assert d["status"].to_dict() == {"0065g01": "won", "0065g02": "lost", "0065g03": "open"}
    assert d["stage"].to_dict() == {"0065g01": "Negotiation/Review", "0065g02": "Qualification",
                                    "0065g03": "Value Proposition"}
    assert d.loc["0065g01", "closed_at"] == pd.Timestamp("2024-03-01")
    assert pd.isna(d.loc["0065g03", "closed_at"]) and d.loc["0065g03", "expected_close_date"] == pd.Timestamp("2024-06-30")
    # leaky columns (Probability, Won, Closed, Age, Fiscal Period) and names are never features
    assert set(data.features) == {"Account Name", "owner", "Lead Source", "Type"}  # the salesperson: the canonical owner
    assert data.history.groupby("deal_id").size().to_dict() == {"0065g01": 2, "0065g02": 1, "0065g03": 1}
    reasons = " ".join(a.reason for a in data.report.set_aside)
    assert "repeats of the stage" in reasons and "won/lost rows" in reasons


def test_a_salesforce_summary_report_exported_formatted_reads_as_its_details(tmp_path):
    """A report grouped by stage, exported as "Formatted Report": the stage named on each group's first row only,
    a Subtotal line under each group and a Total line, title lines above and the footer below. Its deals read as
    those of the same report exported as details; the subtotals are set aside and counted."""
    demo = DemoCompany().generate(300, seed=4, end="2025-06-30")
    flat, history = salesforce_reports(demo, tmp_path)
    grouped, report = inspect_deal_history(salesforce_grouped_report(demo, tmp_path), history,
                                           load_config(preset="salesforce"))
    assert grouped is not None, report.summary()
    details = load_deal_history(flat, history, load_config(preset="salesforce"))
    columns = ["stage", "status", "amount", "created_at", "closed_at", "expected_close_date"]
    pd.testing.assert_frame_equal(grouped.deals.set_index("deal_id")[columns].sort_index(),
                                  details.deals.set_index("deal_id")[columns].sort_index())
    groups = pd.read_csv(flat, dtype=str)["Stage"].dropna().nunique()  # the export's stages, closed ones too
    aside = {a.reason: a.count for a in report.set_aside}
    assert aside["subtotal and total lines of a grouped report"] == groups + 1  # one per group, and the Total
    assert any("'Stage' name each group on its first row only" in n for n in report.notes)


def test_a_multi_currency_export_is_read_in_its_converted_amount_or_warned_about(tmp_path):
    """A multi-currency Salesforce org's report has each deal's Amount in its own currency, its Amount Currency
    and the Amount (converted) to the corporate currency: the converted one is the amount (the other is not a
    feature). Without it, amounts in several currencies would be added up as one: said in a warning."""
    demo = DemoCompany().generate(200, seed=6, end="2025-06-30")
    flat, history = salesforce_reports(demo, tmp_path, footer=False, blank_amounts=0.0)
    report = pd.read_csv(flat, dtype=str)
    euro = report.index % 2 == 0
    report["Amount Currency"] = np.where(euro, "EUR", "USD")
    report["Amount (converted)"] = [f"USD {a * (1.1 if e else 1.0):,.2f}" for a, e in zip(demo.deals["amount"], euro)]
    report["Amount"] = [f"{'EUR' if e else 'USD'} {a:,.2f}" for a, e in zip(demo.deals["amount"], euro)]
    report.to_csv(tmp_path / "multi.csv", index=False)
    data, found = inspect_deal_history(tmp_path / "multi.csv", history, load_config(preset="salesforce"))
    assert data is not None, found.summary()
    expected = demo.deals["amount"].to_numpy() * np.where(euro, 1.1, 1.0)
    np.testing.assert_allclose(data.deals.set_index("deal_id").loc[demo.deals["deal_id"], "amount"], expected, atol=0.01)
    assert "Amount" not in data.features and not any("currencies" in str(w) for w in found.warnings)

    report.drop(columns="Amount (converted)").to_csv(tmp_path / "own.csv", index=False)
    _, found = inspect_deal_history(tmp_path / "own.csv", history, load_config(preset="salesforce"))
    said = [str(w) for w in found.warnings if "currencies" in str(w)]
    assert len(said) == 1 and "2 currencies ('EUR', 'USD') would be added up as one" in said[0]
    assert 'Amount (converted)' in said[0]
    # the open deals of the same files, read to be scored: the same warning, and none for the converted amount
    assert any("2 currencies" in str(w) for w in read_open_deals(tmp_path / "own.csv", load_config(preset="salesforce"))[1].warnings)
    assert not read_open_deals(tmp_path / "multi.csv", load_config(preset="salesforce"))[1].warnings


def test_a_file_without_subtotal_lines_keeps_its_blanks_and_its_deals_named_total(tmp_path):
    """Only a grouped report is filled down: a blank owner stays blank, and a deal whose first cell starts with
    "Total" (an account named so) is a deal."""
    rows = [{"Account": "Total Wine & More", "Owner": "ann", "deal_id": "A1", "stage": "Lead", "amount": "100",
             "created_at": "2025-01-02", "status": "open"},
            {"Account": "Acme", "Owner": "", "deal_id": "A2", "stage": "Lead", "amount": "200",
             "created_at": "2025-01-03", "status": "open"}]
    data = load_deal_history(_csv(tmp_path, "deals.csv", rows), None, load_config())
    assert data.deals["deal_id"].tolist() == ["A1", "A2"] and not data.report.set_aside
    assert not any("grouped report" in n for n in data.report.notes)


def test_salesforce_data_loader_export_uses_api_field_names(tmp_path):
    deals = _csv(tmp_path, "Opportunity.csv", [
        {"Id": "006A", "Name": "A", "AccountId": "001X", "Amount": "1000", "StageName": "Closed Lost",
         "CloseDate": "2024-02-01", "CreatedDate": "2024-01-10T14:22:05.000+0000", "IsClosed": "true",
         "IsWon": "false", "LeadSource": "Web", "Probability": "0", "ForecastCategoryName": "Omitted",
         "LastStageChangeDate": "2024-02-01T10:00:00.000+0000"},
        {"Id": "006B", "Name": "B", "AccountId": "001Y", "Amount": "", "StageName": "Prospecting",
         "CloseDate": "2024-05-01", "CreatedDate": "2024-01-11T09:00:00.000+0000", "IsClosed": "false",
         "IsWon": "false", "LeadSource": "Partner", "Probability": "10", "ForecastCategoryName": "Pipeline",
         "LastStageChangeDate": "2024-01-11T09:00:00.000+0000"},
    ])
    history = _csv(tmp_path, "OpportunityHistory.csv", [
        {"Id": "008-1", "OpportunityId": "006A", "StageName": "Qualification", "CreatedDate": "2024-01-10T14:22:05.000+0000"},
        {"Id": "008-2", "OpportunityId": "006A", "StageName": "Closed Lost", "CreatedDate": "2024-02-01T10:00:00.000+0000"},
        {"Id": "008-3", "OpportunityId": "006B", "StageName": "Prospecting", "CreatedDate": "2024-01-11T09:00:00.000+0000"},
    ])
    data, report = inspect_deal_history(deals, history, load_config(preset="salesforce"))
    # Salesforce leaves Amount empty on some opportunities: the deal is kept without revenue (never a zero), and
    # the row is set aside on its amount, named; --strict refuses it
    assert data is not None and data.deals.set_index("deal_id")["amount"].isna().to_dict() == {"006A": False,
                                                                                              "006B": True}
    assert [(s.rows, s.kept) for s in report.set_aside if s.column == "amount"] == [((3,), True)]
    _, strict = inspect_deal_history(deals, history, load_config(preset="salesforce"), strict=True)
    assert [(e.column, e.rows) for e in strict.errors] == [("amount", (3,))]
    fixed = pd.read_csv(deals, dtype=str)
    fixed.loc[1, "Amount"] = "2500"
    fixed.to_csv(deals, index=False)
    data = load_deal_history(deals, history, load_config(preset="salesforce"))
    assert data.deals.set_index("deal_id")["stage"].to_dict() == {"006A": "Qualification", "006B": "Prospecting"}
    assert data.deals.loc[0, "created_at"] == pd.Timestamp("2024-01-10 14:22:05")
    assert set(data.features) == {"AccountId", "LeadSource"}


def test_hubspot_export_turns_date_entered_columns_into_history(tmp_path):
    entered = 'Date entered "{} (Sales Pipeline)"'
    deals = _csv(tmp_path, "hubspot-crm-exports-all-deals.csv", [
        {"Record ID": "1001", "Deal Name": "Acme", "Deal Stage": "Closed Won", "Amount": "20000",
         "Close Date": "2024-03-05 10:00", "Create Date": "2024-01-02 09:15", "Deal owner": "Jane Doe",
         "Pipeline": "Sales Pipeline", "Deal Type": "New Business",
         entered.format("Appointment Scheduled"): "2024-01-02 09:15", entered.format("Qualified To Buy"): "2024-01-20 11:00",
         entered.format("Contract Sent"): "2024-02-25 16:30", entered.format("Closed Won"): "2024-03-05 10:00",
         'Date exited "Appointment Scheduled (Sales Pipeline)"': "2024-01-20 11:00",
         'Cumulative time in "Appointment Scheduled (Sales Pipeline)" (HH:mm:ss)': "434:00:00",
         "Is Closed Won": "true", "Is Deal Closed?": "true", "Deal probability": "1"},
        {"Record ID": "1002", "Deal Name": "Globex", "Deal Stage": "Qualified To Buy", "Amount": "5000",
         "Close Date": "2024-06-30 00:00", "Create Date": "2024-02-01 08:00", "Deal owner": "Raj Patel",
         "Pipeline": "Sales Pipeline", "Deal Type": "Existing Business",
         entered.format("Appointment Scheduled"): "2024-02-01 08:00", entered.format("Qualified To Buy"): "2024-02-10 08:00",
         entered.format("Contract Sent"): "", entered.format("Closed Won"): "",
         'Date exited "Appointment Scheduled (Sales Pipeline)"': "2024-02-10 08:00",
         'Cumulative time in "Appointment Scheduled (Sales Pipeline)" (HH:mm:ss)': "216:00:00",
         "Is Closed Won": "false", "Is Deal Closed?": "false", "Deal probability": "0.4"},
    ])
    data = load_deal_history(deals, None, load_config(preset="hubspot"))
    d = data.deals.set_index("deal_id")
    assert d["status"].to_dict() == {"1001": "won", "1002": "open"}
    assert d.loc["1001", "stage"] == "Contract Sent"  # the last open stage before Closed Won
    assert d.loc["1002", "expected_close_date"] == pd.Timestamp("2024-06-30")
    h = data.history
    assert h[h["deal_id"] == "1001"]["stage"].tolist() == ["Appointment Scheduled", "Qualified To Buy", "Contract Sent"]
    assert set(data.features) == {"owner", "pipeline", "Deal Type"}
    assert any("Date entered" in n for n in data.report.notes)


def test_a_hubspot_pull_by_internal_names_reads_as_its_export(tmp_path):
    """An API pull or a connector's table names HubSpot's properties by their internal names (hs_object_id,
    dealstage, createdate, hs_date_entered_<stage id>, ...; any case) and writes the stages' internal ids: read
    with the preset as the same deals exported from HubSpot's own screens, with the same stage history."""
    demo = DemoCompany().generate(200, seed=11, end="2025-06-30")
    ui = pd.read_csv(hubspot_deals(demo, tmp_path), dtype=str, keep_default_na=False)
    internal = {"Record ID": "hs_object_id", "Deal Name": "dealname", "Deal Stage": "dealstage", "Amount": "amount",
                "Create Date": "createdate", "Close Date": "closedate", "Deal owner": "hubspot_owner_id",
                "Pipeline": "pipeline", "Is Closed Won": "hs_is_closed_won", "Is Deal Closed?": "hs_is_closed"}
    ids = {label: "".join(label.split()).replace("-", "").lower() for label in (*HUBSPOT_STAGES, "Closed Won", "Closed Lost")}
    pulled = ui.rename(columns=internal).rename(columns=lambda c: c.upper() if c == "dealname" else c).rename(
        columns={"amount": "amount_in_home_currency"}).assign(deal_currency_code=np.where(np.arange(len(ui)) % 2, "EUR", "USD"))
    pulled["dealstage"] = pulled["dealstage"].map(ids)
    for column in [c for c in ui.columns if c.startswith("Date entered")]:
        label = column.removeprefix('Date entered "').removesuffix(' (Sales Pipeline)"')
        pulled = pulled.rename(columns={column: f"hs_date_entered_{ids[label]}"})
    pulled.to_csv(tmp_path / "pulled.csv", index=False)
    config = load_config(preset="hubspot")
    exported = load_deal_history(tmp_path / "hubspot-crm-exports-all-deals.csv", None, config)
    read = load_deal_history(tmp_path / "pulled.csv", None, config)
    columns = ["deal_id", "status", "stage", "amount", "created_at", "closed_at", "owner"]
    pd.testing.assert_frame_equal(read.deals[columns], exported.deals[columns])
    pd.testing.assert_frame_equal(read.history, exported.history)
    assert (read.deals["status"] != "open").any() and len(read.history) > len(read.deals)
    assert "DEALNAME" not in read.features  # the deal's name, ignored as "Deal Name" is
    assert not any("currenc" in w.message for w in read.report.warnings)  # converted: one currency


def test_hubspot_history_errors_name_the_date_entered_column(tmp_path):
    deals = _csv(tmp_path, "deals.csv", [
        {"Record ID": "1", "Deal Stage": "Appointment Scheduled", "Amount": "1", "Create Date": "2024-01-02",
         "Close Date": "", 'Date entered "Appointment Scheduled (Sales Pipeline)"': "yesterday"}])
    _, report = inspect_deal_history(deals, None, load_config(preset="hubspot"))
    assert [(e.column, e.rows) for e in report.errors] == [('Date entered "Appointment Scheduled (Sales Pipeline)"', (2,))]


def test_hubspot_stage_column_names():
    cols = ['Date entered "Qualified To Buy (Sales Pipeline)"', 'Date entered "Demo done"', "Date exited \"X\"", "Amount"]
    assert hubspot_stage_columns(cols) == {cols[0]: "Qualified To Buy", cols[1]: "Demo done"}


def test_a_hubspot_export_of_two_pipelines_learns_the_one_the_config_names(tmp_path):
    """HubSpot accounts keep a pipeline per process (new sales, renewals), each with its own stages: read
    together, the renewals' stages are unknown; named, the other pipeline's deals and dates are set aside."""
    def deal(record, stage, pipeline, created, **entered):
        return {"Record ID": record, "Deal Stage": stage, "Amount": "100", "Create Date": created, "Close Date": "",
                "Pipeline": pipeline, "Is Closed Won": "false", "Is Deal Closed?": "false",
                'Date entered "Appointment Scheduled (Sales Pipeline)"': entered.get("sales", ""),
                'Date entered "Renewal Due (Renewals)"': entered.get("renewal", "")}
    deals = _csv(tmp_path, "deals.csv", [
        deal("1", "Appointment Scheduled", "Sales Pipeline", "2024-01-02 09:00", sales="2024-01-02 09:00"),
        deal("2", "Appointment Scheduled", "Sales Pipeline", "2024-01-03 09:00", sales="2024-01-03 09:00"),
        deal("3", "Renewal Due", "Renewals", "2024-01-04 09:00", renewal="2024-01-04 09:00")])
    _, report = inspect_deal_history(deals, None, load_config(preset="hubspot"))
    assert any("2 pipelines" in w.message and "pipelines = " in w.message for w in report.warnings)
    assert any("unknown stage" in e.message and "Renewal Due" in e.message for e in report.errors)
    config = tmp_path / "hubspot.toml"
    config.write_text('preset = "hubspot"\npipelines = ["Sales Pipeline"]\n', encoding="utf-8")
    data = load_deal_history(deals, None, load_config(config))
    assert data.deals["deal_id"].tolist() == ["1", "2"] and len(data.history) == 2
    assert [(a.reason, a.count) for a in data.report.set_aside] == [
        ("deals of other pipelines than Sales Pipeline ('Renewals')", 1)]
    assert load_open_deals(deals, load_config(config))["deal_id"].tolist() == ["1", "2"]  # scored: the same deals


@pytest.mark.parametrize("prefix", ["Deal - ", ""])
def test_pipedrive_deals_export(tmp_path, prefix):
    rows = [
        {"ID": "1", "Title": "Acme deal", "Value": "1500", "Currency": "EUR", "Status": "Won", "Stage": "Proposal Made",
         "Pipeline": "Sales", "Owner": "Jane", "Deal created": "2024-01-02 10:00:00", "Won time": "2024-02-01 12:00:00",
         "Lost time": "", "Expected close date": "2024-02-15", "Last stage change": "2024-01-20 09:00:00",
         "Lost reason": "", "Probability": ""},
        {"ID": "2", "Title": "Globex", "Value": "900", "Currency": "EUR", "Status": "Lost", "Stage": "Contact Made",
         "Pipeline": "Sales", "Owner": "Raj", "Deal created": "2024-01-05 10:00:00", "Won time": "",
         "Lost time": "2024-01-25 15:00:00", "Expected close date": "", "Last stage change": "2024-01-10 09:00:00",
         "Lost reason": "Price", "Probability": ""},
        {"ID": "3", "Title": "Initech", "Value": "3000", "Currency": "USD", "Status": "Open", "Stage": "Demo Scheduled",
         "Pipeline": "Sales", "Owner": "Jane", "Deal created": "2024-02-05 10:00:00", "Won time": "", "Lost time": "",
         "Expected close date": "2024-04-30", "Last stage change": "2024-02-20 09:00:00", "Lost reason": "",
         "Probability": ""},
        {"ID": "4", "Title": "Dup", "Value": "1", "Currency": "USD", "Status": "Deleted", "Stage": "Qualified",
         "Pipeline": "Sales", "Owner": "Jane", "Deal created": "2024-02-06 10:00:00", "Won time": "", "Lost time": "",
         "Expected close date": "", "Last stage change": "", "Lost reason": "", "Probability": ""},
    ]
    deals = _csv(tmp_path, "deals-export.csv", [{f"{prefix}{k}": v for k, v in r.items()} for r in rows])
    data = load_deal_history(deals, None, load_config(preset="pipedrive"))
    d = data.deals.set_index("deal_id")
    assert d["status"].to_dict() == {"1": "won", "2": "lost", "3": "open"}
    assert d.loc["1", "closed_at"] == pd.Timestamp("2024-02-01 12:00") and d.loc["2", "closed_at"] == pd.Timestamp("2024-01-25 15:00")
    assert d.loc["3", "stage_entered_at"] == pd.Timestamp("2024-02-20 09:00")
    assert set(data.features) == {"Currency", "pipeline", "owner"}  # never "Lost reason" (known only at loss)
    assert [(a.reason, a.rows) for a in data.report.set_aside] == [("deleted deals (status 'deleted')", (5,))]


def _odoo_rows() -> list[dict]:
    """Odoo's pipeline exported with lost ones: a won, a lost (archived at 0 %), an open deal and a merged duplicate
    (archived at 10 %), IDs as Odoo generates them."""
    common = {"Opportunity": "x", "Sales Team": "Europe", "Expected Closing": "", "Type": "Opportunity"}
    return [
        {**common, "ID": "__export__.crm_lead_7_1a2b3c4d", "Expected Revenue": "1500.0", "Probability": "100.0",
         "Stage": "Won", "Salesperson": "Jane", "Created on": "2024-01-02 10:00:00",
         "Closed Date": "2024-02-01 12:00:00", "Last Stage Update": "2024-02-01 12:00:00", "Active": "True",
         "Lost Reason": ""},
        {**common, "ID": "__export__.crm_lead_8_5e6f7a8b", "Expected Revenue": "900.0", "Probability": "0.0",
         "Stage": "Qualified", "Salesperson": "Raj", "Created on": "2024-01-05 10:00:00",
         "Closed Date": "2024-01-25 15:00:00", "Last Stage Update": "2024-01-10 09:00:00", "Active": "False",
         "Lost Reason": "Too expensive"},
        {**common, "ID": "__export__.crm_lead_9_0c0d0e0f", "Expected Revenue": "3000.0", "Probability": "30.0",
         "Stage": "Proposition", "Salesperson": "Jane", "Created on": "2024-02-05 10:00:00", "Closed Date": "",
         "Last Stage Update": "2024-02-20 09:00:00", "Active": "True", "Lost Reason": ""},
        {**common, "ID": "__export__.crm_lead_10_9a9b9c9d", "Expected Revenue": "100.0", "Probability": "10.0",
         "Stage": "New", "Salesperson": "Jane", "Created on": "2024-02-06 10:00:00", "Closed Date": "",
         "Last Stage Update": "2024-02-06 10:00:00", "Active": "False", "Lost Reason": ""},
    ]


def _odoo_tracking() -> list[dict]:
    """Odoo's Tracking Values export: stage changes only (none at creation), another field's and model's mixed in."""
    def row(lead, old, new, at, field="Stage", model="crm.lead"):
        return {"Message ID/Related Document ID": lead, "Message ID/Related Document Model": model, "Field": field,
                "Old Value Char": old, "New Value Char": new, "Created on": at}
    return [row(7, "New", "Qualified", "2024-01-05 08:00:00"), row(7, "Qualified", "Won", "2024-02-01 12:00:00"),
            row(8, "New", "Qualified", "2024-01-10 09:00:00"), row(9, "New", "Qualified", "2024-02-08 09:00:00"),
            row(9, "Qualified", "Proposition", "2024-02-20 09:00:00"),
            row(7, "Mitchell Admin", "Jane", "2024-01-03 08:00:00", field="Salesperson"),
            row(3, "Draft", "Sent", "2024-01-03 08:00:00", model="sale.order")]


def test_odoo_pipeline_export_with_its_tracking_values(tmp_path):
    deals = _csv(tmp_path, "crm.lead.csv", _odoo_rows())
    data = load_deal_history(deals, _csv(tmp_path, "mail.tracking.value.csv", _odoo_tracking()),
                             load_config(preset="odoo"))
    d = data.deals.set_index("deal_id")
    assert d["status"].to_dict() == {"7": "won", "8": "lost", "9": "open"}  # lead 7 of __export__.crm_lead_7_...
    assert data.deleted == ("10",)  # archived without being lost: out of the pipeline, counted
    assert d.loc["8", "closed_at"] == pd.Timestamp("2024-01-25 15:00") and d.loc["8", "stage"] == "Qualified"
    assert d["owner"].to_dict() == {"7": "Jane", "8": "Raj", "9": "Jane"}
    assert set(data.features) == {"owner", "Sales Team"}  # never Probability, Active, Lost Reason or Type
    h = data.history
    assert h[h["deal_id"] == "9"][["stage", "entered_at"]].values.tolist() == [
        ["New", pd.Timestamp("2024-02-05 10:00")], ["Qualified", pd.Timestamp("2024-02-08 09:00")],
        ["Proposition", pd.Timestamp("2024-02-20 09:00")]]  # the stage at creation: the first change's old value
    assert any("2 tracking value(s) of other fields or records" in n for n in data.report.notes)
    assert any("archived" in n and "taken as deleted" in n for n in data.report.notes)


def test_odoo_leads_that_never_changed_stage_are_in_the_history_from_their_creation(tmp_path):
    """Odoo's tracking values hold changes only: a lead lost in the stage it was created in (most lost leads) has
    no row. Each is in its stage from its creation, as every other lead is in the stage its first change left:
    the history read is the one the company lived (left out, those leads were missing from training)."""
    demo = DemoCompany().generate(400, seed=3, end="2025-06-30")
    leads, tracking = odoo_leads(demo, tmp_path, archived=0)
    data = load_deal_history(leads, tracking, load_config(preset="odoo"))
    number = pd.Series(np.arange(1, len(demo.deals) + 1).astype(str), index=demo.deals["deal_id"].to_numpy())
    lived = demo.history.assign(stage=demo.history["stage"].map(ODOO_STAGE),
                                deal_id=demo.history["deal_id"].map(number)).sort_values(["deal_id", "entered_at"])
    lived = lived[lived.groupby("deal_id")["stage"].shift() != lived["stage"]]  # Proposal, Negotiation: Proposition
    got = data.history.sort_values(["deal_id", "entered_at"])
    columns = ["deal_id", "stage", "entered_at"]
    pd.testing.assert_frame_equal(got[columns].reset_index(drop=True),
                                  lived[columns].reset_index(drop=True).astype({"entered_at": "datetime64[us]"}))
    rows = pd.read_csv(tracking)
    unchanged = set(data.deals["deal_id"]) - set(rows.loc[rows["Field"] == "Stage", "Message ID/Related Document ID"]
                                                 .astype(str))
    assert len(unchanged) > 100
    assert any(f"{len(unchanged):,} deal(s) without a stage change" in n for n in data.report.notes)


def test_a_salesforce_field_history_is_the_stage_history_as_the_history_report_is(tmp_path):
    """Salesforce's Opportunity Field History (Data Loader: changes only, each stage change with the stage it left,
    close date changes mixed in) read as the stage history, given as --history or only as --field-history, gives
    the history the Opportunity History report gives (creation at the day the Opportunities report dates it)."""
    demo = DemoCompany().generate(300, seed=5, end="2025-06-30")
    opportunities, report = salesforce_reports(demo, tmp_path, blank_amounts=0.0)
    changes = salesforce_field_history(demo, tmp_path)
    config = load_config(preset="salesforce")
    by_report = load_deal_history(opportunities, report, config)
    as_history = load_deal_history(opportunities, changes, config)
    as_field_history = load_deal_history(opportunities, None, config, field_history=changes)

    def days(data):
        h = data.history.sort_values(["deal_id", "entered_at"], kind="stable").reset_index(drop=True)
        return h.assign(entered_at=h["entered_at"].dt.normalize())

    pd.testing.assert_frame_equal(days(as_history), days(by_report))
    pd.testing.assert_frame_equal(as_field_history.history, as_history.history)
    aside = {s.reason.split(" (")[0]: s.count for s in as_history.report.set_aside}
    assert aside["changes of other fields than the stage"] == len(demo.field_history) + len(demo.deals)  # + created
    assert as_field_history.spec.close_date  # and the close dates are the field history still
    assert not any("stage changes" in s.reason for s in as_field_history.report.set_aside)
    assert not any("no stage history" in str(p) for p in as_field_history.report.problems)


def test_odoo_tracking_values_given_only_as_the_field_history_are_the_stage_history_too(tmp_path):
    """The Tracking Values export given once, as --field-history, gives the stage history it gives as --history
    (it was ignored, and the deals' stages assumed, with a warning asking for the file the user had given)."""
    demo = DemoCompany().generate(300, seed=4, end="2025-06-30")
    leads, tracking = odoo_leads(demo, tmp_path, archived=0)
    config = load_config(preset="odoo")
    as_history = load_deal_history(leads, tracking, config, field_history=tracking)
    only = load_deal_history(leads, None, config, field_history=tracking)
    pd.testing.assert_frame_equal(only.history, as_history.history)
    pd.testing.assert_frame_equal(only.signals.field_history, as_history.signals.field_history)
    assert not any("no stage history" in str(p) for p in only.report.problems)
    assert any("stage's changes in" in n and "read as one" in n for n in only.report.notes)
    canonical = pd.DataFrame({"deal_id": ["1"], "field": ["Stage"], "value": ["Qualified"], "changed_at": ["2024-01-05"]})
    assert not get_preset("odoo").stages_in_changes(canonical)  # the canonical columns: read as any field history


def _odoo_typed_tracking() -> list[dict]:
    """Tracking Values as Odoo 16 exports them with every value column: a text field's number columns hold 0, a
    date's text column is empty, a monetary value has a column of its own."""
    def row(lead, field, at, char="", when="", monetary=0.0, model="crm.lead"):
        return {"Message ID/Related Document ID": lead, "Message ID/Related Document Model": model, "Field": field,
                "Old Value Char": "", "New Value Char": char, "New Value Datetime": when,
                "New Value Monetary": monetary, "New Value Float": 0.0, "New Value Integer": 0, "Created on": at}
    return [row(9, "Stage", "2024-02-08 09:00:00", char="Qualified"),
            row(9, "Expected Closing", "2024-02-06 10:00:00", when="2024-03-31 00:00:00"),
            row(9, "Expected Closing", "2024-02-20 09:00:00", when="2024-04-30 00:00:00"),
            row(9, "Expected Revenue", "2024-02-07 10:00:00", monetary=2500.0),
            row(7, "Expected Revenue", "2024-01-04 10:00:00", monetary=1500.0),
            row(7, "Salesperson", "2024-01-03 08:00:00", char="Jane"),
            row(8, "Salesperson", "2024-01-06 08:00:00", char=""),  # cleared: not its 0.0 number columns
            row(3, "Expected Closing", "2024-01-03 08:00:00", when="2024-05-01 00:00:00", model="sale.order")]


def test_odoo_tracking_values_are_the_field_history_too(tmp_path):
    """The same Tracking Values export gives the stage history (--history) and the field history (--field-history)
    of the rep's expected closing and the expected revenue, each value from the column Odoo keeps it in; the
    salesperson's changes are left out (Odoo tracks no value at creation: leads never reassigned would have none),
    so the leads file's Salesperson stays the owner feature."""
    tracking = _csv(tmp_path, "mail.tracking.value.csv", _odoo_typed_tracking())
    data = load_deal_history(_csv(tmp_path, "crm.lead.csv", _odoo_rows()), tracking, load_config(preset="odoo"),
                             field_history=tracking)
    changes = data.signals.field_history.sort_values(["deal_id", "changed_at"])
    assert changes[["deal_id", "field", "value"]].values.tolist() == [
        ["7", "amount", "1500.0"], ["9", "expected_close_date", "2024-03-31"], ["9", "amount", "2500.0"],
        ["9", "expected_close_date", "2024-04-30"]]
    assert data.spec.close_date and data.spec.amount and not data.spec.categories
    assert {"close_date_pushes", "days_to_close_date", "owner", "Sales Team"} <= set(data.features)
    notes = " ".join(data.report.notes)
    assert "1 tracking value(s) of the stage not used as field history" in notes
    assert "2 tracking value(s) of other fields than Expected Closing and Expected Revenue (Salesperson)" in notes
    assert "1 tracking value(s) of other records than leads" in notes
    assert [a.source for a in data.report.set_aside] == [str(tmp_path / "crm.lead.csv")]  # the merged lead 10 only

    odoo17 = pd.DataFrame(_odoo_typed_tracking())  # Odoo 17: no monetary column, the field named with its model
    odoo17 = odoo17.assign(**{"New Value Float": odoo17.pop("New Value Monetary"), "Field": odoo17["Field"] + " (crm.lead)"})
    changes17 = load_deal_history(_csv(tmp_path, "crm.lead.csv", _odoo_rows()), tracking, load_config(preset="odoo"),
                                  field_history=odoo17).signals.field_history
    assert changes17[changes17["deal_id"] == "9"][["field", "value"]].values.tolist() == [
        ["expected_close_date", "2024-03-31"], ["amount", "2500.0"], ["expected_close_date", "2024-04-30"]]


def test_odoo_export_without_the_active_column_or_with_its_won_status(tmp_path):
    rows = [{k: v for k, v in r.items() if k != "Active"} for r in _odoo_rows()]
    data = load_deal_history(_csv(tmp_path, "a.csv", rows), None, load_config(preset="odoo"))
    assert data.deals.set_index("deal_id")["status"].to_dict() == {"7": "won", "8": "lost", "9": "open", "10": "open"}
    assert any("last in 'Proposition'" in n for n in data.report.notes)  # won from Odoo's last stage: said
    won_status = [{**r, "Is Won": s} for r, s in zip(_odoo_rows(), ["Won", "Lost", "Pending", "Pending"])]
    data = load_deal_history(_csv(tmp_path, "b.csv", won_status), None, load_config(preset="odoo"))
    assert data.deals.set_index("deal_id")["status"].to_dict() == {"7": "won", "8": "lost", "9": "open", "10": "open"}


def test_an_odoo_export_without_lost_deals_says_how_to_include_them(tmp_path):
    rows = [r for r in _odoo_rows() if r["Active"] == "True"]  # Odoo's default filter: lost ones hidden
    _, report = inspect_deal_history(_csv(tmp_path, "c.csv", rows), None, load_config(preset="odoo"))
    assert any("no lost opportunities" in w.message and "Archived" in w.message for w in report.warnings)


def test_zoho_deals_export_with_its_stage_history(tmp_path):
    """Zoho CRM's Deals export: the outcome only in the stage (Closed-Lost to Competition is lost too), one Closing
    Date (the close of a closed deal, the expected close of an open one), zcrm_ ids; its Stage History gives where
    each deal was, the closed deals' last open stage included; Zoho's own durations and probabilities never
    features."""
    demo = DemoCompany().generate(400, seed=6, end="2025-06-30")
    deals, history = zoho_deals(demo, tmp_path)
    data = load_deal_history(deals, history, load_config(preset="zoho"))
    truth = demo.deals.set_index(pd.read_csv(deals)["Record Id"].to_numpy())
    got = data.deals.set_index("deal_id").loc[truth.index]
    assert (got["status"] == truth["status"]).all() and truth["status"].eq("lost").any()
    assert (got["stage"] == truth["stage"].map(ZOHO_STAGE)).all()  # closed deals: the stage they closed from
    closed = truth["status"] != "open"
    assert (got.loc[closed, "closed_at"] == truth.loc[closed, "closed_at"].dt.normalize()).all()
    assert (got.loc[~closed, "expected_close_date"] == truth.loc[~closed, "expected_close_date"]).all()
    assert set(data.features) == {"owner", "Type", "Lead Source", "Segment"}  # no Sales Cycle Duration, Probability
    lived = demo.history.assign(stage=demo.history["stage"].map(ZOHO_STAGE))
    pairs = lambda h: sorted(zip(h["stage"], h["entered_at"].dt.floor("min")))  # noqa: E731
    assert pairs(data.history) == pairs(lived)
    assert not data.report.warnings
    # without the Stage History a closed deal's stage is only its outcome: said, with what to give
    with pytest.raises(DataError, match="last_open_stage"):
        load_deal_history(deals, None, load_config(preset="zoho"))


def test_dynamics_opportunities_with_only_the_pipeline_phase(tmp_path):
    """Dynamics 365's Excel export saved as CSV: the hidden key column, US dates, the stage as the numbered
    Pipeline Phase, Status Open / Won / Lost; what is known only at the close never a feature."""
    def row(key, phase, status, reason, revenue, created, closed="", actual=""):
        return {"(Do Not Modify) Opportunity": key, "(Do Not Modify) Row Checksum": key[::-1], "Topic": "x",
                "Pipeline Phase": phase, "Status": status, "Status Reason": reason, "Est. Revenue": revenue,
                "Probability": "50", "Actual Revenue": actual, "Owner": "Jane", "Created On": created,
                "Actual Close Date": closed, "Est. Close Date": "", "Rating": "Hot"}
    deals = _csv(tmp_path, "Opportunities.csv", [
        row("a1f0", "3-Propose", "Won", "Won", "$1,500.00", "1/22/2024 9:15 AM", "2/21/2024", "$1,500.00"),
        row("b2e1", "2-Develop", "Lost", "Out-Sold", "$900.00", "1/15/2024 10:00 AM", "1/25/2024"),
        row("c3d2", "1-Qualify", "Open", "In Progress", "", "2/15/2024 4:30 PM")])
    data = load_deal_history(deals, None, load_config(preset="dynamics"))
    d = data.deals.set_index("deal_id")
    assert d["stage"].to_dict() == {"a1f0": "Propose", "b2e1": "Develop", "c3d2": "Qualify"}
    assert d["status"].to_dict() == {"a1f0": "won", "b2e1": "lost", "c3d2": "open"}
    assert d.loc["a1f0", "created_at"] == pd.Timestamp("2024-01-22 09:15") and pd.isna(d.loc["c3d2", "amount"])
    assert set(data.features) == {"owner", "Rating"}  # never Status Reason, Probability or Actual Revenue


def test_bitrix24_deals_by_field_names_with_their_stage_history(tmp_path):
    """Bitrix24's deals pulled by field names: stage ids named, the outcome from the stage's semantic, a closed deal
    closed when its history moved it to its final stage (CLOSEDATE is a day), times in the portal's zone read as
    UTC, the owner's user id a category; CLOSED and IS_NEW (the stage again) never features."""
    demo = DemoCompany().generate(400, seed=6, end="2025-06-30")
    deals, history = bitrix24_deals(demo, tmp_path)
    data = load_deal_history(deals, history, load_config(preset="bitrix24"))
    truth = demo.deals.set_index(pd.read_csv(deals)["ID"].astype(str).to_numpy())
    got = data.deals.set_index("deal_id").loc[truth.index]
    assert (got["status"] == truth["status"]).all() and truth["status"].eq("lost").any()
    named = BITRIX24.values["stage"]
    assert (got["stage"] == truth["stage"].map(BITRIX24_STAGE).map(named)).all()  # closed: the stage they closed from
    assert (got["created_at"] == truth["created_at"]).all()
    closed = truth["status"] != "open"
    assert (got.loc[closed, "closed_at"] == truth.loc[closed, "closed_at"]).all()  # to the minute, from the history
    assert (got.loc[~closed, "expected_close_date"] == truth.loc[~closed, "expected_close_date"].dt.normalize()).all()
    assert data.features["owner"] == "categorical"  # a user's id, not a magnitude
    assert not {"CLOSED", "IS_NEW", "STAGE_SEMANTIC_ID", "TITLE", "PROBABILITY"} & set(data.features)
    lived = demo.history.assign(stage=demo.history["stage"].map(BITRIX24_STAGE).map(named))
    pairs = lambda h: sorted(zip(h["stage"], h["entered_at"].dt.floor("min")))  # noqa: E731
    assert pairs(data.history) == pairs(lived)


def test_bitrix24_stage_ids_of_another_pipeline_and_the_names_beside_them(tmp_path):
    """A pipeline other than the default prefixes its stage ids (``C2:NEW``): read as the pipeline; each stage id
    takes the name the export writes beside it (a company's own, ``UC_...``, too), else the default one's."""
    def row(key, stage, name, semantic, created, closed=""):
        return {"ID": key, "STAGE_ID": stage, "STAGE_NAME": name, "STAGE_SEMANTIC_ID": semantic, "OPPORTUNITY": "500.00",
                "DATE_CREATE": created, "CLOSEDATE": closed or "2024-05-01", "ASSIGNED_BY_ID": "7", "CLOSED": "N"}
    deals = _csv(tmp_path, "deals.csv", [
        row(1, "NEW", "New", "P", "2024-01-02 10:00:00"), row(3, "C2:NEW", "Inbound", "P", "2024-01-03 10:00:00"),
        row(5, "C2:UC_M3VGWL", "Demo held", "P", "2024-01-04 10:00:00"),
        row(7, "C2:WON", "Paid", "S", "2024-01-05 10:00:00", "2024-02-01")])
    history = _csv(tmp_path, "history.csv", [
        {"ID": 1, "TYPE_ID": 1, "OWNER_ID": 5, "CREATED_TIME": "2024-01-04 10:00:00", "CATEGORY_ID": 2,
         "STAGE_SEMANTIC_ID": "P", "STAGE_ID": "C2:NEW"},
        {"ID": 2, "TYPE_ID": 1, "OWNER_ID": 7, "CREATED_TIME": "2024-01-05 10:00:00", "CATEGORY_ID": 2,
         "STAGE_SEMANTIC_ID": "P", "STAGE_ID": "C2:NEW"},
        {"ID": 3, "TYPE_ID": 2, "OWNER_ID": 5, "CREATED_TIME": "2024-01-09 12:30:00", "CATEGORY_ID": 2,
         "STAGE_SEMANTIC_ID": "P", "STAGE_ID": "C2:UC_M3VGWL"},
        {"ID": 4, "TYPE_ID": 3, "OWNER_ID": 7, "CREATED_TIME": "2024-01-31 16:20:00", "CATEGORY_ID": 2,
         "STAGE_SEMANTIC_ID": "S", "STAGE_ID": "C2:WON"}])
    (tmp_path / "pipeline.toml").write_text('preset = "bitrix24"\nstages = ["New", "Inbound", "Demo held"]\n'
                                            'won_labels = ["Paid"]\n[fixed_probabilities]\nNew = 0.1\nInbound = 0.1\n'
                                            '"Demo held" = 0.5\n')
    config = load_config(tmp_path / "pipeline.toml")
    data, report = inspect_deal_history(deals, history, config)
    assert data is not None, report.summary()
    d = data.deals.set_index("deal_id")
    assert d["stage"].to_dict() == {"1": "New", "3": "Inbound", "5": "Demo held", "7": "Inbound"}
    assert d["pipeline"].to_dict() == {"1": "0", "3": "2", "5": "2", "7": "2"}
    assert d.loc["7", "status"] == "won" and d.loc["7", "closed_at"] == pd.Timestamp("2024-01-31 16:20")
    assert list(zip(data.history["deal_id"], data.history["stage"])) == [("5", "Inbound"), ("5", "Demo held"),
                                                                          ("7", "Inbound")]
    assert any("pipelines" in w.message for w in report.warnings)  # two, learned as one: said
    unnamed = pd.read_csv(deals).drop(columns="STAGE_NAME").iloc[:2]
    d = load_open_deals(unnamed, load_config(preset="bitrix24")).set_index("deal_id")
    assert d["stage"].to_dict() == {"1": "New", "3": "New"} and d["pipeline"].to_dict() == {"1": "0", "3": "2"}


def test_unknown_preset():
    with pytest.raises(ConfigError, match="unknown preset 'freshsales'; expected one of salesforce, hubspot, pipedrive, "
                       "odoo, dynamics, zoho, bitrix24"):
        get_preset("freshsales")


def test_a_config_that_renames_odoo_stages_drops_the_presets_last_open_stage(tmp_path):
    path = tmp_path / "odoo.toml"
    path.write_text('preset = "odoo"\nstages = ["New", "Demo", "Negotiation"]\n'
                    '[fixed_probabilities]\nNew = 0.1\nDemo = 0.3\nNegotiation = 0.6\n', encoding="utf-8")
    config = load_config(path)
    assert config.stages == ("New", "Demo", "Negotiation") and config.last_open_stage is None


def test_an_odoo_export_in_a_european_locale_reads_as_the_english_one(tmp_path):
    """Odoo in a German or French locale writes semicolons, 24.05.2024 05:53 and 417200,0; its tracking values come
    newest first. The stage each lead was created in (the first change's old value) is found by reading those
    dates as the contract does: pandas' guess from the first cell read some day-first dates month first, took a
    later change for the first and set aside its real first change as a repeat."""
    from scoring.data.exports import odoo_leads

    demo = DemoCompany().generate(300, seed=4, end="2025-06-30")
    leads, tracking = odoo_leads(demo, tmp_path, archived=0)
    config = load_config(preset="odoo")
    english = load_deal_history(leads, tracking, config)
    iso = r"^(\d{4})-(\d{2})-(\d{2})( \d{2}:\d{2})?(:\d{2})?$"
    for path in (leads, tracking):
        frame = pd.read_csv(path, dtype=str, keep_default_na=False)
        frame = frame.replace(iso, r"\3.\2.\1\4", regex=True).replace(r"^(\d+)\.(\d+)$", r"\1,\2", regex=True)
        if path == tracking:
            frame = frame.iloc[::-1]
        frame.to_csv(path.with_name(f"eu-{path.name}"), sep=";", index=False)
    european = load_deal_history(leads.with_name(f"eu-{leads.name}"), tracking.with_name(f"eu-{tracking.name}"), config)
    assert not any("repeats" in s.reason for s in european.report.set_aside), european.report.summary()
    columns = ["deal_id", "stage", "entered_at"]
    pd.testing.assert_frame_equal(european.history[columns].sort_values(columns).reset_index(drop=True),
                                  english.history[columns].sort_values(columns).reset_index(drop=True))
    pd.testing.assert_series_equal(european.deals["amount"], english.deals["amount"])


def test_a_dynamics_view_with_the_active_stage_start_reads_it_as_stage_entered_at(tmp_path):
    """Dynamics keeps when the sales process entered its active stage ("Active Stage Started On", a date): a view
    that shows it gives each deal's last stage change, as Pipedrive's export does."""
    from scoring.data.exports import dynamics_opportunities

    demo = DemoCompany().generate(300, seed=2, end="2025-06-30")
    config = load_config(preset="dynamics")
    data = load_deal_history(dynamics_opportunities(demo, tmp_path, stage_started=True), None, config)
    expected = demo.deals["stage_entered_at"].dt.normalize().to_numpy()
    np.testing.assert_array_equal(data.deals["stage_entered_at"].to_numpy(), expected)
    plain = load_deal_history(dynamics_opportunities(demo, tmp_path), None, config)
    assert plain.deals["stage_entered_at"].isna().all()


@pytest.mark.parametrize(("true", "false"), [("WAHR", "FALSCH"), ("VRAI", "FAUX"), ("1.0", "0.0")])
def test_flags_saved_by_a_localized_excel_or_as_floats_give_the_status(tmp_path, true, false):
    """A HubSpot export opened and saved in a German or French Excel writes its true/false flags as WAHR/FALSCH or
    VRAI/FAUX; one passed through pandas as 1.0/0.0: read as the flags they are."""
    rows = [{"Record ID": str(i), "Deal Stage": stage, "Amount": "100", "Create Date": "2024-01-02", "Close Date": "",
             "Is Closed Won": won, "Is Deal Closed?": closed,
             'Date entered "Appointment Scheduled (Sales Pipeline)"': "2024-01-02"}
            for i, (stage, won, closed) in enumerate([("Closed Won", true, true), ("Closed Lost", false, true),
                                                      ("Qualified To Buy", false, false)])]
    for row in rows[:2]:
        row["Close Date"] = "2024-02-01"
    data = load_deal_history(_csv(tmp_path, "deals.csv", rows), None, load_config(preset="hubspot"))
    assert data.deals["status"].tolist() == ["won", "lost", "open"]


def test_open_deals_of_a_hubspot_export_entered_their_stage_when_its_date_entered_column_says(tmp_path):
    """Scoring a HubSpot export (no stage-entry column of its own): each open deal's days in its stage run from its
    current stage's "Date entered" column, as training reads them; they ran from its creation (days in the stage
    overstated, P(win) of deals past their first stage too low)."""
    demo = DemoCompany().generate(300, seed=12, end="2025-06-30")
    opened, _ = read_open_deals(hubspot_deals(demo, tmp_path), load_config(preset="hubspot"))
    entries = demo.history.groupby(["deal_id", "stage"])["entered_at"].min()  # the export's column: the first entry
    open_deals = demo.deals[demo.deals["status"] == "open"]
    open_deals = open_deals.set_index(open_deals["deal_id"].str.replace("D", ""))
    expected = [entries[(open_deals.loc[i, "deal_id"], open_deals.loc[i, "stage"])] for i in opened["deal_id"]]
    assert len(opened) == len(open_deals) and opened["stage_entered_at"].notna().all()
    assert (opened["stage_entered_at"].to_numpy() == pd.DatetimeIndex(expected).floor("min").to_numpy()).all()
    assert (opened["stage_entered_at"] > opened["created_at"]).any()  # not the creation date


def test_deals_scored_with_their_stage_history_entered_their_stage_at_its_latest_stay(tmp_path):
    """Zoho's and Salesforce's deals exports carry no stage-entry date: given the stage history the model was
    trained on, each open deal entered its stage when its latest stay there began (a log's later rows within the
    stay, an amount changed, are not entries); without it, days in the stage count from creation, said."""
    deals = _csv(tmp_path, "opportunities.csv", [
        {"Opportunity ID": "0065g03", "Amount": "8000", "Stage": "Value Proposition", "Close Date": "6/30/2024",
         "Created Date": "2/01/2024"},
        {"Opportunity ID": "0065g04", "Amount": "9000", "Stage": "Qualification", "Close Date": "7/30/2024",
         "Created Date": "1/15/2024"}])
    history = _csv(tmp_path, "opportunity_history.csv", [
        {"Opportunity ID": "0065g03", "From Stage": "", "To Stage": "Qualification", "Amount": "8000",
         "Last Modified": "2/01/2024"},
        {"Opportunity ID": "0065g03", "From Stage": "Qualification", "To Stage": "Value Proposition", "Amount": "8000",
         "Last Modified": "3/04/2024"},
        {"Opportunity ID": "0065g03", "From Stage": "Value Proposition", "To Stage": "Value Proposition",
         "Amount": "9500", "Last Modified": "4/20/2024"},
        {"Opportunity ID": "0065g04", "From Stage": "", "To Stage": "Qualification", "Amount": "9000",
         "Last Modified": "1/15/2024"},
        {"Opportunity ID": "0065g04", "From Stage": "Qualification", "To Stage": "Needs Analysis", "Amount": "9000",
         "Last Modified": "2/10/2024"},
        {"Opportunity ID": "0065g04", "From Stage": "Needs Analysis", "To Stage": "Qualification", "Amount": "9000",
         "Last Modified": "3/01/2024"}])
    config = load_config(preset="salesforce")
    opened, _ = read_open_deals(deals, config, history=history)
    assert opened.set_index("deal_id")["stage_entered_at"].to_dict() == {
        "0065g03": pd.Timestamp("2024-03-04"), "0065g04": pd.Timestamp("2024-03-01")}  # back in Qualification
    alone, _ = read_open_deals(deals, config)
    assert alone["stage_entered_at"].isna().all()
    demo = DemoCompany().generate(300, seed=12, end="2025-06-30")
    zoho, stage_history = zoho_deals(demo, tmp_path)
    opened, _ = read_open_deals(zoho, load_config(preset="zoho"), history=stage_history)
    open_deals = demo.deals[demo.deals["status"] == "open"]
    assert len(opened) == len(open_deals) and opened["stage_entered_at"].notna().all()
    assert (opened["stage_entered_at"] > opened["created_at"]).any()
