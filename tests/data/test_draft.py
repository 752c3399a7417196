"""Drafting a config from an export whose stages are the company's own (`scoring config`)."""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from scoring.cli.main import main
from scoring.data.config import PipelineConfig
from scoring.data.contract import inspect_deal_history, load_deal_history
from scoring.data.demo import DemoCompany, DemoData
from scoring.data.draft import draft_config
from scoring.data.exports import hubspot_deals, salesforce_reports
from scoring.data.presets import load_config
from scoring.errors import DataError

#: The company's own names of the textbook stages, listed out of pipeline order (the order must come from the data).
OWN = {"Negotiation": "Contract review", "Lead": "Inbound", "Proposal": "Quote sent", "Qualified": "Discovery call"}
IN_ORDER = [OWN[s] for s in ("Lead", "Qualified", "Proposal", "Negotiation")]


@pytest.fixture(scope="module")
def demo() -> DemoData:
    return DemoCompany().generate(900, seed=5, end="2025-06-30")


def _renamed(demo: DemoData) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The demo's deals (shuffled, so no order of appearance helps) and stage history under the company's names."""
    deals = demo.deals.assign(stage=demo.deals["stage"].map(OWN)).sample(frac=1.0, random_state=3)
    return deals.reset_index(drop=True), demo.history.assign(stage=demo.history["stage"].map(OWN)).sample(
        frac=1.0, random_state=4)


def test_the_stage_order_comes_from_the_history_and_the_draft_reads_the_export(demo: DemoData):
    deals, history = _renamed(demo)
    with pytest.raises(DataError, match="scoring config"):  # what reading it without a config says to do
        load_deal_history(deals, history)
    draft = draft_config(deals, history)
    assert list(draft.config.stages) == IN_ORDER
    assert draft.config.fixed_probabilities == {"Inbound": 0.2, "Discovery call": 0.4, "Quote sent": 0.6,
                                                "Contract review": 0.8}  # placeholders, said so
    assert any("stage history" in line for line in draft.how) and any("placeholders" in line for line in draft.how)
    data = load_deal_history(deals, history, draft.config)
    assert len(data.deals) == len(deals) and set(data.deals["stage"]) == set(IN_ORDER)


def test_the_stage_order_comes_from_a_field_history_of_changes_only(demo: DemoData):
    """A field history (Salesforce's Opportunity Field History shape) given alone: its stage changes order the
    stages (the stage each deal left entered first), as a stage history does; no deal is created in a change."""
    deals, history = _renamed(demo)
    history = history.sort_values(["deal_id", "entered_at"], kind="stable")
    left = history.groupby("deal_id")["stage"].shift(1)
    moves = history[left.notna()]
    log = pd.DataFrame({"OpportunityId": moves["deal_id"], "Field": "StageName", "OldValue": left[moves.index],
                        "NewValue": moves["stage"], "CreatedDate": moves["entered_at"].astype(str)})
    draft = draft_config(deals, None, None, log)
    assert list(draft.config.stages) == IN_ORDER
    assert any("stage history" in line for line in draft.how)
    assert load_deal_history(deals, None, draft.config, field_history=log).has_history


def test_without_history_the_order_comes_from_when_open_deals_entered_their_stage(demo: DemoData):
    deals, _ = _renamed(demo)
    draft = draft_config(deals)
    assert list(draft.config.stages) == IN_ORDER
    assert any("no stage history" in line for line in draft.how)
    # a probability column of one value for every deal (never set per stage) tells nothing: not used
    same = draft_config(deals.assign(Probability="20")).config
    assert list(same.stages) == IN_ORDER and same.fixed_probabilities == draft.config.fixed_probabilities


def test_a_salesforce_export_of_own_stages_gets_its_probabilities_and_last_open_stage(demo: DemoData, tmp_path: Path):
    own = {"Prospecting": "Discovery Call", "Qualification": "Solutioning", "Proposal/Price Quote": "Business Case",
           "Negotiation/Review": "Legal Review"}
    paths = salesforce_reports(demo, tmp_path)
    for path in paths:  # the org renamed its stages; its report keeps each stage's probability
        text = path.read_text(encoding="utf-8")
        for old, new in own.items():
            text = text.replace(f'"{old}"', f'"{new}"')
        path.write_text(text, encoding="utf-8")
    deals, history = paths
    config = load_config(preset="salesforce")
    with_history = draft_config(deals, history, config).config
    statuses = load_deal_history(deals, history, with_history).deals["status"].value_counts().to_dict()
    assert list(with_history.stages) == list(own.values())
    assert with_history.fixed_probabilities == {"Discovery Call": 0.1, "Solutioning": 0.1, "Business Case": 0.75,
                                                "Legal Review": 0.9}
    assert with_history.last_open_stage is None
    # the report alone: ordered by the probabilities (ties by entry time); closed deals' stage is their outcome
    alone = draft_config(deals, None, config)
    assert list(alone.config.stages) == list(own.values())
    assert alone.config.last_open_stage == "Legal Review" and any("last open stage" in line for line in alone.how)
    assert inspect_deal_history(deals, None, alone.config)[0] is not None
    # the org renamed its closed stages too: the report's probability (100 % and 0 %) says they close deals
    for path in paths:
        path.write_text(path.read_text(encoding="utf-8").replace('"Closed Won"', '"Closed - Signed"')
                        .replace('"Closed Lost"', '"Closed - No Decision"'), encoding="utf-8")
    for given in (history, None):
        closed = draft_config(deals, given, config).config
        assert list(closed.stages) == list(own.values())
        assert "Closed - Signed" in closed.won_labels and "Closed - No Decision" in closed.lost_labels
        data = load_deal_history(deals, given, closed)
        assert data.deals["status"].value_counts().to_dict() == statuses  # the same deals won and lost


def test_hubspot_date_entered_columns_of_own_stages_order_them(demo: DemoData, tmp_path: Path):
    own = {"Appointment Scheduled": "Intro meeting", "Qualified To Buy": "Needs confirmed",
           "Presentation Scheduled": "Demo given", "Decision Maker Bought-In": "Champion Won Over"}
    path = hubspot_deals(demo, tmp_path)
    text = path.read_text(encoding="utf-8")
    for old, new in own.items():
        text = text.replace(old, new)
    path.write_text(text, encoding="utf-8")
    draft = draft_config(path, None, load_config(preset="hubspot"))
    assert list(draft.config.stages) == list(own.values())  # "Won" inside a name is no outcome label
    assert load_deal_history(path, None, draft.config).has_history


def test_outcome_labels_from_names_without_status_and_from_closed_deals_with_it(demo: DemoData):
    deals, _ = _renamed(demo)
    named = deals.assign(stage=deals["stage"].mask(deals["status"].eq("won"), "Deal Won")
                         .mask(deals["status"].eq("lost"), "Deal lost")).drop(columns=["status"])
    draft = draft_config(named).config
    assert list(draft.stages) == IN_ORDER
    assert "Deal Won" in draft.won_labels and "Deal lost" in draft.lost_labels
    assert draft.last_open_stage == IN_ORDER[-1]
    # with a status column, a stage only won deals are in (and none left) is a won label, whatever its name
    signed = deals.assign(stage=deals["stage"].mask(deals["status"].eq("won"), "Signed"))
    drafted = draft_config(signed).config
    assert "Signed" in drafted.won_labels and "Signed" not in drafted.stages
    # a status the config maps ([values.status]) is a status: an open stage whose name ends in "won" stays a stage
    german = {"open": "Offen", "won": "Gewonnen", "lost": "Verloren"}
    verbal = deals.assign(stage=deals["stage"].replace(IN_ORDER[-1], "Verbal won"), status=deals["status"].map(german))
    mapped = draft_config(verbal, config=PipelineConfig(values={"status": {v: k for k, v in german.items()}})).config
    assert list(mapped.stages) == [*IN_ORDER[:-1], "Verbal won"] and "Verbal won" not in mapped.won_labels


def test_an_export_of_two_pipelines_drafts_the_larger_and_names_the_other(demo: DemoData):
    deals, history = _renamed(demo)
    renewals = deals.index % 4 == 0
    deals = deals.assign(pipeline=["Renewals" if r else "New business" for r in renewals],
                         stage=deals["stage"].where(~renewals, deals["stage"] + " (renewal)"))
    draft = draft_config(deals, history)
    assert draft.config.pipelines == ("New business",) and list(draft.config.stages) == IN_ORDER
    assert any("Renewals" in line for line in draft.how)


def test_the_configs_own_percentages_are_kept_for_its_stages(demo: DemoData):
    config = PipelineConfig.from_dict({"stages": ["Inbound", "Quote sent"],
                                       "fixed_probabilities": {"Inbound": 0.05, "Quote sent": 0.4}})
    deals, history = _renamed(demo)
    draft = draft_config(deals, history, config).config
    assert draft.fixed_probabilities["Inbound"] == 0.05 and draft.fixed_probabilities["Quote sent"] == 0.4
    # placeholders between their neighbours' (the last's between Quote sent's and 100 %)
    assert 0.05 < draft.fixed_probabilities["Discovery call"] < 0.4 < draft.fixed_probabilities["Contract review"] < 1


def test_scoring_config_writes_a_draft_validate_accepts(demo: DemoData, tmp_path: Path):
    deals, history = _renamed(demo)
    deals.to_csv(deals_path := tmp_path / "deals.csv", index=False)
    history.to_csv(history_path := tmp_path / "history.csv", index=False)
    runner = CliRunner()
    refused = runner.invoke(main, ["validate", "--deals", str(deals_path), "--history", str(history_path)])
    assert refused.exit_code == 1 and "scoring config" in refused.output
    printed = runner.invoke(main, ["config", "--deals", str(deals_path), "--history", str(history_path)])
    assert printed.exit_code == 0 and printed.output.startswith("# Drafted by `scoring config`")
    written = runner.invoke(main, ["config", "--deals", str(deals_path), "--history", str(history_path),
                                   "--out", str(config_path := tmp_path / "pipeline.toml")])
    assert written.exit_code == 0, written.output
    assert config_path.read_text(encoding="utf-8") == printed.output
    again = runner.invoke(main, ["config", "--deals", str(deals_path), "--out", str(config_path)])
    assert again.exit_code == 1 and "--force" in again.output  # never over a file without --force
    validated = runner.invoke(main, ["validate", "--deals", str(deals_path), "--history", str(history_path),
                                     "--config", str(config_path)])
    assert validated.exit_code == 0, validated.output


def test_spellings_and_deals_without_a_stage(demo: DemoData, tmp_path: Path):
    """A stage written in several cases and spacings is one stage, named as the export writes it most; a deal
    without a stage is named by its row before anything is drafted."""
    deals, history = _renamed(demo)
    shouted = deals.index % 7 == 0
    deals.loc[shouted, "stage"] = deals.loc[shouted, "stage"].str.upper() + "  "
    draft = draft_config(deals, history).config
    assert list(draft.stages) == IN_ORDER
    assert load_deal_history(deals, history, draft).deals["stage"].isin(IN_ORDER).all()
    deals.loc[[4, 9], "stage"] = ["", None]
    deals.to_csv(path := tmp_path / "deals.csv", index=False)
    with pytest.raises(DataError, match=r"column 'stage', rows 6, 11: 2 deal\(s\) have no stage"):
        draft_config(path, history)


def test_a_hubspot_export_of_two_pipelines_drafts_each_from_its_own_date_entered_columns(demo: DemoData,
                                                                                         tmp_path: Path):
    export = pd.read_csv(hubspot_deals(demo, tmp_path), dtype=str, keep_default_na=False)
    names = {"Sales Pipeline": ("Intro meeting", "Needs confirmed", "Demo given", "Contract out"),
             "Renewals": ("Renewal due", "Usage review", "Quote sent", "Verbal yes")}
    defaults = ("Appointment Scheduled", "Qualified To Buy", "Presentation Scheduled", "Decision Maker Bought-In")
    renewal = export.index % 3 == 0
    out = export.assign(Pipeline=np.where(renewal, "Renewals", "Sales Pipeline"))
    for pipeline, own in names.items():
        mine = renewal if pipeline == "Renewals" else ~renewal
        out["Deal Stage"] = out["Deal Stage"].mask(mine, out["Deal Stage"].replace(dict(zip(defaults, own))))
        for default, stage in zip(defaults, own):  # each pipeline's stages have their own columns
            out[f'Date entered "{stage} ({pipeline})"'] = export[f'Date entered "{default} (Sales Pipeline)"'].where(mine, "")
    out = out.drop(columns=[f'Date entered "{s} (Sales Pipeline)"' for s in defaults])
    out.to_csv(path := tmp_path / "two-pipelines.csv", index=False)
    config = load_config(preset="hubspot")
    largest = draft_config(path, None, config)
    assert largest.config.pipelines == ("Sales Pipeline",) and largest.config.stages == names["Sales Pipeline"]
    assert any("Renewals" in line for line in largest.how)
    renewals = draft_config(path, None, replace(config, pipelines=("Renewals",))).config
    assert renewals.stages == names["Renewals"]
    assert load_deal_history(path, None, renewals).has_history


def test_an_export_no_preset_reads_gets_its_columns_drafted_from_their_headers(demo: DemoData, tmp_path: Path):
    """An export of a CRM without a preset (Freshsales-like headers: Deal value, Deal stage, Created at, Closed
    date, Sales owner, Probability (%); the outcome in the stage): the draft maps each column by its header when
    its cells agree (the deal's name is not its id: not unique), and the export then reads as the demo's deals."""
    deals = demo.deals
    closed = deals["status"] != "open"
    stage = deals["stage"].map(OWN).where(~closed, deals["status"].map({"won": "Won", "lost": "Lost"}))
    export = pd.DataFrame({
        "Name": "Deal " + deals["segment"], "Id": deals["deal_id"], "Deal value": deals["amount"].map("{:,.2f}".format),
        "Deal stage": stage, "Probability (%)": stage.map({"Inbound": 10, "Discovery call": 30, "Quote sent": 60,
                                                           "Contract review": 80, "Won": 100, "Lost": 0}),
        "Created at": deals["created_at"].dt.strftime("%Y-%m-%d %H:%M"),
        "Closed date": deals["closed_at"].dt.strftime("%Y-%m-%d"),
        "Expected close date": deals["expected_close_date"], "Sales owner": deals["owner"], "Segment": deals["segment"],
        "Outcome": np.where(deals.index % 2 == 0, "Call back", "Sent deck")})  # a note, not a status: not mapped
    export.to_csv(path := tmp_path / "deals.csv", index=False)
    with pytest.raises(DataError, match="missing required column"):
        load_deal_history(path)
    draft = draft_config(path)
    assert dict(draft.config.columns) == {"deal_id": ("Id",), "amount": ("Deal value",), "stage": ("Deal stage",),
                                          "closed_at": ("Closed date",), "owner": ("Sales owner",)}  # the rest named so
    assert any(line.startswith("Columns, by their headers") for line in draft.how)
    assert list(draft.config.stages) == IN_ORDER and "Won" in draft.config.won_labels
    assert draft.config.fixed_probabilities == {"Inbound": 0.1, "Discovery call": 0.3, "Quote sent": 0.6,
                                                "Contract review": 0.8}
    data = load_deal_history(path, None, draft.config)
    got = data.deals.set_index("deal_id").loc[deals["deal_id"]]
    assert (got["status"].to_numpy() == deals["status"].to_numpy()).all()
    np.testing.assert_allclose(got["amount"].to_numpy(), deals["amount"].to_numpy())
    assert "owner" in data.features and "Segment" in data.features and "Outcome" in data.features
    pulled = export.drop(columns="Created at").assign(
        **{"Date created": (deals["created_at"] - pd.Timestamp("1970-01-01")) // pd.Timedelta("1ms")})
    pulled.to_csv(path := tmp_path / "pulled.csv", index=False)  # pulled through an API: Unix milliseconds
    data = load_deal_history(path, None, draft_config(path).config)
    assert (data.deals.set_index("deal_id").loc[deals["deal_id"], "created_at"].dt.floor("s").to_numpy()
            == deals["created_at"].dt.floor("s").to_numpy()).all()
    without_id = export.drop(columns="Id").assign(Name="Deal " + deals["deal_id"])  # a list view without ids
    without_id.to_csv(path := tmp_path / "named.csv", index=False)
    draft = draft_config(path)
    assert draft.config.columns["deal_id"] == ("Name",) and any("no id column" in line for line in draft.how)
    assert load_deal_history(path, None, draft.config).deals["deal_id"].str.startswith("Deal ").all()
    dumped = export.rename(columns=lambda c: c.lower().replace(" (%)", "").replace(" ", "_")).drop(columns="id")
    dumped = dumped.assign(deal_name="Deal " + deals["deal_id"], DealStage=dumped.pop("deal_stage"))
    dumped.to_csv(path := tmp_path / "dumped.csv", index=False)  # a database dump's headers: snake_case, camelCase
    draft = draft_config(path)
    assert dict(draft.config.columns) == {"deal_id": ("deal_name",), "amount": ("deal_value",), "stage": ("DealStage",),
                                          "closed_at": ("closed_date",), "owner": ("sales_owner",)}
    assert any("no id column" in line for line in draft.how) and draft.config.fixed_probabilities["Quote sent"] == 0.6
    assert (load_deal_history(path, None, draft.config).deals.set_index("deal_id")["status"].to_numpy()
            == deals["status"].to_numpy()).all()


def test_a_suitecrm_export_by_field_names_drafts_and_reads_its_one_close_date(demo: DemoData, tmp_path: Path):
    """SuiteCRM's (and SugarCRM's) opportunities by their field names: date_entered the creation, date_closed the
    planned close while open and the actual once closed, the outcome in sales_stage. The draft maps them by their
    headers; read with it, the closed deals close when they did and the open ones expect to when the reps said."""
    deals = demo.deals
    closed = deals["status"] != "open"
    export = pd.DataFrame({
        "id": deals["deal_id"].str.lower(), "name": "Deal " + deals["segment"], "amount": deals["amount"],
        "sales_stage": deals["stage"].map(OWN).where(~closed, deals["status"].map({"won": "Closed Won", "lost": "Closed Lost"})),
        "date_entered": deals["created_at"].dt.strftime("%Y-%m-%d %H:%M:%S"),
        "date_closed": deals["closed_at"].where(closed, deals["expected_close_date"]).dt.strftime("%Y-%m-%d"),
        "assigned_user_name": deals["owner"], "lead_source": deals["source"]})
    export.to_csv(path := tmp_path / "Opportunities.csv", index=False)
    draft = draft_config(path)
    assert dict(draft.config.columns) == {"deal_id": ("id",), "created_at": ("date_entered",), "stage": ("sales_stage",),
                                          "closed_at": ("date_closed",), "owner": ("assigned_user_name",)}
    data = load_deal_history(path, None, draft.config)
    got = data.deals.set_index("deal_id").loc[deals["deal_id"].str.lower()]
    assert (got["status"].to_numpy() == deals["status"].to_numpy()).all()
    assert (got["closed_at"].dt.normalize() == deals["closed_at"].dt.normalize().to_numpy()).where(closed.to_numpy()).all()
    planned = deals["expected_close_date"].where(~closed).dt.normalize()
    assert (got["expected_close_date"].to_numpy()[~closed] == planned[~closed].to_numpy()).all()
    assert any("read as the date they are expected to close" in note for note in data.report.notes)


def test_a_close_export_drafts_reads_cents_and_dates_won_and_lost_apart(demo: DemoData, tmp_path: Path):
    """Close's opportunities as its API export writes them: the stages are "statuses" (status_label) with their
    outcome in status_type (active, won, lost), the value in cents beside value_formatted, the close in date_won
    or date_lost by outcome, dates in its "excel" format (ISO with a 12-hour time), the rep's confidence. Drafted
    by the headers and read with the draft: the amounts in currency units (they were 100x), each closed deal
    closing when its outcome's column says (refused: no close date), the stage order and the fixed percentages
    from the confidence."""
    deals = demo.deals.reset_index(drop=True)
    closed = deals["status"] != "open"
    label = deals["stage"].map(OWN).where(~closed, deals["status"].map({"won": "Won", "lost": "Lost"}))
    confidence = label.map({**dict(zip(IN_ORDER, (10, 25, 50, 75))), "Won": 100, "Lost": 0})

    def excel(stamps: pd.Series) -> pd.Series:
        return stamps.dt.strftime("%Y-%m-%d %I:%M:%S %p").fillna("")

    cents = (deals["amount"] * 100).round().astype("int64")
    export = pd.DataFrame({
        "id": "oppo_" + deals["deal_id"], "lead_name": "Lead " + deals["deal_id"], "status_label": label,
        "status_type": deals["status"].replace({"open": "active"}), "value": cents,
        "value_formatted": [f"${a:,.2f}" for a in deals["amount"]], "value_currency": "USD",
        "confidence": confidence, "user_name": deals["owner"],
        "date_won": excel(deals["closed_at"].where(deals["status"] == "won")),
        "date_lost": excel(deals["closed_at"].where(deals["status"] == "lost")),
        "date_created": excel(deals["created_at"]), "segment": deals["segment"]})
    export.to_csv(path := tmp_path / "close.csv", index=False)
    draft = draft_config(path)
    assert dict(draft.config.columns) == {"deal_id": ("id",), "created_at": ("date_created",), "amount": ("value",),
                                          "stage": ("status_label",), "status": ("status_type",),
                                          "owner": ("user_name",)}
    assert list(draft.config.stages) == IN_ORDER and draft.config.fixed_probabilities[IN_ORDER[2]] == 0.5
    data = load_deal_history(path, None, draft.config)
    got = data.deals.set_index("deal_id").loc["oppo_" + deals["deal_id"]]
    np.testing.assert_allclose(got["amount"], deals["amount"])
    assert (got["closed_at"].to_numpy()[closed] == deals["closed_at"].dt.floor("s").to_numpy()[closed]).all()
    assert got["closed_at"].isna().to_numpy()[~closed].all()
    notes = " ".join(data.report.notes)
    assert "read as cents" in notes and "closed_at of won deals from 'date_won' and of lost deals from 'date_lost'" in notes
    assert "date_won" not in data.features and "date_lost" not in data.features
    # a header that says cents is enough; amounts in units beside their formatted twin stay as they are
    export.rename(columns={"value": "value_cents", "value_formatted": "shown"}).to_csv(path, index=False)
    renamed = load_deal_history(path, None, replace(draft.config, columns={**draft.config.columns,
                                                                         "amount": ("value_cents",)}))
    np.testing.assert_allclose(renamed.deals.set_index("deal_id").loc[got.index, "amount"], deals["amount"])
    export.assign(value=deals["amount"]).to_csv(path, index=False)
    units = load_deal_history(path, None, draft.config)
    np.testing.assert_allclose(units.deals.set_index("deal_id").loc[got.index, "amount"], deals["amount"])
    assert "read as cents" not in " ".join(units.report.notes)


def test_an_export_in_the_users_language_gets_its_columns_and_outcome_labels_drafted(demo: DemoData, tmp_path: Path):
    """A German Salesforce org's report (German headers and stage names, day-first dates, decimal commas, semicolons
    as Excel writes them there): no header is a canonical or preset name, so reading it stopped at "missing
    required column(s)"; the draft maps each column from its German header, checked against its cells, and reads
    the closed stages' names as the outcomes they say."""
    deals = demo.deals.reset_index(drop=True)
    closed = deals["status"] != "open"
    names = {"Lead": "Erstkontakt", "Qualified": "Qualifizierung", "Proposal": "Angebot", "Negotiation": "Verhandlung",
             "won": "Geschlossen und gewonnen", "lost": "Geschlossen und verloren"}
    german = pd.DataFrame({
        "Opportunity-Inhaber": deals["owner"], "Opportunity-Name": deals["deal_id"] + " Deal",
        "Opportunity-ID": deals["deal_id"],
        "Betrag": [f"{a:,.2f}".replace(",", " ").replace(".", ",").replace(" ", ".") for a in deals["amount"]],
        "Phase": np.where(closed, deals["status"].map(names), deals["stage"].map(names)),
        "Schlusstermin": deals["closed_at"].where(closed, deals["expected_close_date"]).dt.strftime("%d.%m.%Y"),
        "Erstelldatum": deals["created_at"].dt.strftime("%d.%m.%Y"),
    })
    path = tmp_path / "Opportunities.csv"
    german.to_csv(path, index=False, sep=";", encoding="utf-8-sig")
    with pytest.raises(DataError, match="missing required column"):
        load_deal_history(path)
    draft = draft_config(path)
    assert {canon: draft.config.columns[canon] for canon in ("deal_id", "created_at", "amount", "stage", "closed_at",
                                                             "owner")} == {
        "deal_id": ("Opportunity-ID",), "created_at": ("Erstelldatum",), "amount": ("Betrag",), "stage": ("Phase",),
        "closed_at": ("Schlusstermin",), "owner": ("Opportunity-Inhaber",)}
    assert "Geschlossen und gewonnen" in draft.config.won_labels
    assert "Geschlossen und verloren" in draft.config.lost_labels
    assert set(draft.config.stages) == {"Erstkontakt", "Qualifizierung", "Angebot", "Verhandlung"}
    data = load_deal_history(path, None, draft.config)
    assert data.deals["status"].value_counts().to_dict() == deals["status"].value_counts().to_dict()
    np.testing.assert_allclose(data.deals.set_index("deal_id")["amount"].reindex(deals["deal_id"]), deals["amount"],
                               atol=0.006)
