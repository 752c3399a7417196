"""The pipeline store: migrations, idempotent imports, field changes, transactions (SQLite here; PostgreSQL in
the end-to-end tests)."""
from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from scoring.data.contract import load_deal_history
from scoring.data.demo import DemoCompany
from scoring.errors import ConfigError, DataError
from scoring.store.pipeline import open_store


@pytest.fixture(scope="module")
def demo():
    return DemoCompany().generate(600, seed=5, end="2025-06-30")


def test_a_reader_is_told_when_there_is_no_store_yet(tmp_path: Path):
    with pytest.raises(ConfigError, match="no pipeline store at .*scoring import"):
        open_store(f"sqlite:///{tmp_path / 'missing.db'}")
    assert not (tmp_path / "missing.db").exists()


def test_a_store_of_an_earlier_version_is_brought_up_to_date_and_keeps_its_rows(tmp_path: Path, demo):
    """A store made before the import log counted deletions (at migration 0002, with an import) gains the column
    on opening: its import reads 0 deleted, and new imports go on."""
    import sqlalchemy as sa

    from scoring.store.pipeline import migrate

    url = f"sqlite:///{tmp_path / 'p.db'}"
    engine = sa.create_engine(url)
    migrate(engine, "0002")
    with engine.begin() as conn:
        conn.execute(sa.text("INSERT INTO imports (imported_at, source, digest, deals_new, deals_changed, history_new, "
                             "signals_new) VALUES ('2025-06-01 08:00:00', 'may.csv', 'x', 3, 1, 2, 0)"))
    engine.dispose()
    store = open_store(url)
    logged = store.last_import()
    assert logged is not None and (logged["source"], logged["deals_new"], logged["deals_deleted"]) == ("may.csv", 3, 0)
    assert store.import_history(load_deal_history(demo.deals, demo.history), "june.csv").deals_new == 600


def test_a_filled_store_migrates_down_to_nothing_and_up_again(tmp_path: Path, demo):
    """A downgrade that drops a column copies the table on SQLite (Alembic's batch mode), and dropping the old one
    failed while foreign keys were enforced, the store's rows referring to its imports."""
    import sqlalchemy as sa

    from scoring.store.pipeline import downgrade, migrate

    url = f"sqlite:///{tmp_path / 'p.db'}"
    store = open_store(url, create=True)
    history = load_deal_history(demo.deals, demo.history)
    store.import_history(history, "june.csv")
    downgrade(store.engine, "0002")
    assert "deals_deleted" not in {c["name"] for c in sa.inspect(store.engine).get_columns("imports")}
    with store.engine.connect() as conn:  # the rows are kept
        assert conn.exec_driver_sql("SELECT COUNT(*) FROM deals").scalar() == 600
    downgrade(store.engine, "base")
    assert set(sa.inspect(store.engine).get_table_names()) <= {"pipeline_store_version"}
    migrate(store.engine)
    with store.engine.connect() as conn:  # foreign keys are enforced again afterwards
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
    store.engine.dispose()
    assert open_store(url).import_history(history, "june.csv").deals_new == 600


def test_importing_the_same_export_twice_changes_nothing(tmp_path: Path, demo):
    data = load_deal_history(demo.deals, demo.history)
    store = open_store(f"sqlite:///{tmp_path / 'p.db'}", create=True)
    first = store.import_history(data, "deals.csv")
    assert first.deals_new == 600 and first.history_new == len(demo.history) and first.changed
    content = store.content()
    again = store.import_history(data, "deals.csv")
    assert not again.changed and store.content() == content
    # What went in comes out: deals, features and the stage history.
    deals = store.deals().set_index("deal_id").loc[demo.deals["deal_id"]]
    assert deals["amount"].tolist() == demo.deals["amount"].tolist()
    assert deals["segment"].tolist() == demo.deals["segment"].tolist()
    assert (deals["created_at"].to_numpy() == demo.deals["created_at"].to_numpy()).all()
    assert len(store.history()) == len(demo.history)


def test_a_later_export_updates_deals_records_what_changed_and_appends_history(tmp_path: Path, demo):
    store = open_store(f"sqlite:///{tmp_path / 'p.db'}", create=True)
    store.import_history(load_deal_history(demo.deals, demo.history), "monday.csv",
                         at=pd.Timestamp("2025-06-30 08:00"))
    later = demo.deals.copy()
    target = later.index[later["status"] == "open"][0]
    deal_id = later.loc[target, "deal_id"]
    later.loc[target, "amount"] = later.loc[target, "amount"] * 2
    later.loc[target, "expected_close_date"] = pd.Timestamp("2025-12-31")
    result = store.import_history(load_deal_history(later, demo.history), "tuesday.csv",
                                  at=pd.Timestamp("2025-07-01 08:00"))
    assert (result.deals_new, result.deals_changed, result.history_new) == (0, 1, 0)
    changes = store.field_changes()
    assert set(changes["field"]) == {"amount", "expected_close_date"} and set(changes["deal_id"]) == {deal_id}
    assert (changes["changed_at"] == pd.Timestamp("2025-07-01 08:00")).all()
    assert store.deals().set_index("deal_id").loc[deal_id, "amount"] == later.loc[target, "amount"]
    assert store.last_import()["source"] == "tuesday.csv"


def test_an_import_that_fails_half_way_leaves_the_store_as_it_was(tmp_path: Path, demo):
    store = open_store(f"sqlite:///{tmp_path / 'p.db'}", create=True)
    half = demo.deals.iloc[:300]
    store.import_history(load_deal_history(half, demo.history[demo.history["deal_id"].isin(half["deal_id"])]), "a")
    before = store.content()

    def crash(done: int, total: int) -> None:
        raise RuntimeError("the disk is full")

    with pytest.raises(RuntimeError, match="disk is full"):
        store.import_history(load_deal_history(demo.deals, demo.history), "b", progress=crash)
    assert store.content() == before


def test_the_flow_counts_what_moved_the_pipeline_between_two_dates(tmp_path: Path, demo):
    from scoring.report.pipeline import StoredPipeline, pipeline_flow

    store = open_store(f"sqlite:///{tmp_path / 'p.db'}", create=True)
    store.import_history(load_deal_history(demo.deals, demo.history), "june.csv", at=pd.Timestamp("2025-06-30 08:00"))
    later = demo.deals.copy()
    opened = later.index[later["status"] == "open"]
    a, b, c = opened[:3]
    later.loc[a, "amount"] += 1000.0
    later.loc[b, "expected_close_date"], old_close = pd.Timestamp("2025-11-15"), pd.Timestamp("2025-08-01")
    later.loc[c, ["status", "closed_at"]] = ["won", pd.Timestamp("2025-07-05")]
    new = later.loc[[a]].assign(deal_id="NEW-1", created_at=pd.Timestamp("2025-07-03"),
                                stage_entered_at=pd.Timestamp("2025-07-03"))
    first = later.copy()
    first.loc[b, "expected_close_date"] = old_close  # what the June export said
    store.import_history(load_deal_history(demo.deals.assign(expected_close_date=first["expected_close_date"]),
                                           demo.history), "june-fix.csv", at=pd.Timestamp("2025-06-30 09:00"))
    store.import_history(load_deal_history(pd.concat([later, new]), demo.history), "july.csv",
                         at=pd.Timestamp("2025-07-10 08:00"))
    pipeline = StoredPipeline(store.deals(), store.history(), changes=store.field_changes())
    flow = pipeline_flow(pipeline, pd.Timestamp("2025-07-01"), pd.Timestamp("2025-07-10"))
    total = flow["total"]
    assert total["created_deals"] == 1 and total["created"] == later.loc[a, "amount"]
    assert total["won_deals"] == 1 and total["won"] == later.loc[c, "amount"]
    assert total["raised"] == 1000.0 and total["cut"] == 0.0
    assert total["pushed_out_deals"] == 1 and total["pushed_out"] == later.loc[b, "amount"]
    assert total["end_value"] == pytest.approx(total["start_value"] + total["created"] - total["won"] - total["lost"]
                                               + total["raised"] - total["cut"])
    assert sum(o["end_value"] for o in flow["owner"]) == pytest.approx(total["end_value"])


def test_a_past_date_sees_the_amounts_close_dates_and_fields_deals_had_then(tmp_path: Path, demo):
    """Time does not leak into the stored pipeline as of a past date: a later import's amount, close date, owner
    and head count are given back as they were, so a forecast of that date reads the deals as they stood then."""
    from scoring.report.pipeline import StoredPipeline

    store = open_store(f"sqlite:///{tmp_path / 'p.db'}", create=True)
    store.import_history(load_deal_history(demo.deals, demo.history), "june.csv", at=pd.Timestamp("2025-06-30 08:00"))
    later = demo.deals.copy()
    a, b = later.index[later["status"] == "open"][:2]
    later.loc[a, "amount"] = demo.deals.loc[a, "amount"] * 3
    later.loc[b, "expected_close_date"] = pd.Timestamp("2026-03-31")
    later.loc[b, ["owner", "employees"]] = ["Someone New", demo.deals.loc[b, "employees"] + 1000]
    store.import_history(load_deal_history(later, demo.history), "july.csv", at=pd.Timestamp("2025-07-10 08:00"))
    pipeline = StoredPipeline(store.deals(), store.history(), changes=store.field_changes())
    ids = demo.deals.loc[[a, b], "deal_id"].tolist()
    then = pipeline.open_at(pd.Timestamp("2025-07-01")).set_index("deal_id").loc[ids]
    now = pipeline.open_at(pd.Timestamp("2025-07-11")).set_index("deal_id").loc[ids]
    assert then.loc[ids[0], "amount"] == demo.deals.loc[a, "amount"] and now.loc[ids[0], "amount"] == later.loc[a, "amount"]
    assert then.loc[ids[1], "expected_close_date"] == demo.deals.loc[b, "expected_close_date"]
    assert now.loc[ids[1], "expected_close_date"] == pd.Timestamp("2026-03-31")
    assert then.loc[ids[1], ["owner", "employees"]].tolist() == demo.deals.loc[b, ["owner", "employees"]].tolist()
    assert now.loc[ids[1], ["owner", "employees"]].tolist() == later.loc[b, ["owner", "employees"]].tolist()
    assert then["employees"].dtype == now["employees"].dtype  # a number given back stays a number
    unchanged = pipeline.open_at(pd.Timestamp("2025-07-01")).set_index("deal_id").drop(index=ids)
    before = StoredPipeline(store.deals(), store.history()).open_at(pd.Timestamp("2025-07-01")).set_index("deal_id")
    pd.testing.assert_frame_equal(unchanged, before.drop(index=ids))  # only what changed later is given back
    blank = later.copy()  # a close date left blank in July, set in August and moved again: blank as of July still
    blank.loc[b, "expected_close_date"] = pd.NaT
    moved = later.copy()
    moved.loc[b, "expected_close_date"] = pd.Timestamp("2026-06-30")
    store.import_history(load_deal_history(blank, demo.history), "july-2.csv", at=pd.Timestamp("2025-07-20 08:00"))
    store.import_history(load_deal_history(later, demo.history), "august.csv", at=pd.Timestamp("2025-08-05 08:00"))
    store.import_history(load_deal_history(moved, demo.history), "august-2.csv", at=pd.Timestamp("2025-08-20 08:00"))
    pipeline = StoredPipeline(store.deals(), store.history(), changes=store.field_changes())
    assert pd.isna(pipeline.open_at(pd.Timestamp("2025-07-25")).set_index("deal_id").loc[ids[1], "expected_close_date"])
    assert pipeline.open_at(pd.Timestamp("2025-07-01")).set_index("deal_id").loc[ids[1], "expected_close_date"] == \
        demo.deals.loc[b, "expected_close_date"]


def test_the_crms_field_history_and_activities_are_kept_once_and_read_back_as_signals(tmp_path: Path, demo):
    acts = pd.DataFrame({"deal_id": demo.deals["deal_id"].head(50), "type": ["call", None] * 25,
                         "occurred_at": demo.deals["created_at"].head(50) + pd.Timedelta(days=3)})
    data = load_deal_history(demo.deals, demo.history, field_history=demo.field_history, activities=acts)
    store = open_store(f"sqlite:///{tmp_path / 'p.db'}", create=True)
    first = store.import_history(data, "export")
    assert (first.field_history_new, first.activities_new) == (len(demo.field_history), 50)
    content = store.content()
    again = store.import_history(data, "export")
    assert not again.changed and store.content() == content  # nothing twice, nulls included
    signals = store.signals()
    assert signals.given == {"field_history", "activities"}
    pd.testing.assert_frame_equal(signals.field_history.reset_index(drop=True),
                                  data.signals.field_history.reset_index(drop=True), check_dtype=False)
    assert len(signals.activities) == 50 and signals.activities["type"].isna().sum() == 25
    assert store.field_changes().empty  # the CRM's history is not a change an import found
    more = pd.concat([acts, acts.head(1).assign(occurred_at=pd.Timestamp("2025-06-29"))])
    later = store.import_history(load_deal_history(demo.deals, demo.history, field_history=demo.field_history,
                                                   activities=more), "export")
    assert (later.field_history_new, later.activities_new, later.deals_changed) == (0, 1, 0)


def test_an_export_with_fewer_columns_clears_nothing_and_says_so(tmp_path: Path, demo):
    """A report exported without the owner column keeps the stored owners (PUT, whose deals are sent whole,
    clears them: keep_absent=False); a blank owner in a column that is there still clears it."""
    store = open_store(f"sqlite:///{tmp_path / 'p.db'}", create=True)
    store.import_history(load_deal_history(demo.deals, demo.history), "monday.csv")
    content = store.content()
    narrower = demo.deals.drop(columns=["owner"])
    result = store.import_history(load_deal_history(narrower, demo.history), "tuesday.csv")
    assert result.fields_kept == ("owner",) and not result.changed and store.content() == content
    blanked = demo.deals.copy()
    target = blanked.index[0]
    blanked.loc[target, "owner"] = None
    assert store.import_history(load_deal_history(blanked, demo.history), "wednesday.csv").deals_changed == 1
    assert pd.isna(store.deals().set_index("deal_id").loc[blanked.loc[target, "deal_id"], "owner"])
    whole = store.import_history(load_deal_history(narrower, demo.history), "PUT", keep_absent=False)
    assert whole.fields_kept == () and whole.deals_changed == len(demo.deals)
    assert "owner" not in store.deals().columns


def test_a_deal_deleted_in_the_crm_leaves_the_pipeline_from_then_on(tmp_path: Path, demo):
    """A later export marks deals deleted (Pipedrive's status 'deleted'): the store keeps them, out of the pipeline
    from the import on (open in views of earlier dates), counted as removed in the flow; again changes nothing."""
    from scoring.report.pipeline import StoredPipeline, pipeline_flow

    store = open_store(f"sqlite:///{tmp_path / 'p.db'}", create=True)
    store.import_history(load_deal_history(demo.deals, demo.history), "monday.csv", at=pd.Timestamp("2025-06-30 08:00"))
    later = demo.deals.copy()
    gone = later.index[later["status"] == "open"][:2]
    later.loc[gone, "status"] = "Deleted"
    with pytest.raises(DataError, match="deleted deals"):  # set aside: refused by --strict (SPEC 2.1) ...
        load_deal_history(later, demo.history, strict=True)
    data = load_deal_history(later, demo.history, strict=True, writes=True)  # ... applied by the store's writes
    assert set(data.deleted) == set(later.loc[gone, "deal_id"]) and not data.deals["deal_id"].isin(data.deleted).any()
    at = pd.Timestamp("2025-07-02 08:00")
    result = store.import_history(data, "wednesday.csv", at=at)
    assert (result.deals_deleted, result.deals_changed, result.deals_new) == (2, 0, 0)
    logged = store.last_import()  # the import log counts them apart too (deletions were counted as changes)
    assert logged is not None and (logged["deals_deleted"], logged["deals_changed"], logged["deals_new"]) == (2, 0, 0)
    stored = store.deals().set_index("deal_id").loc[list(data.deleted)]
    assert (stored["status"] == "deleted").all() and (stored["closed_at"] == at).all()
    assert not store.import_history(data, "wednesday.csv", at=at).changed
    pipeline = StoredPipeline(store.deals(), store.history())
    before, after = pipeline.open_at(pd.Timestamp("2025-07-01")), pipeline.open_at(pd.Timestamp("2025-07-03"))
    assert set(data.deleted) <= set(before["deal_id"]) and not set(data.deleted) & set(after["deal_id"])
    flow = pipeline_flow(pipeline, pd.Timestamp("2025-07-01"), pd.Timestamp("2025-07-03"))["total"]
    assert flow["removed_deals"] == 2 and flow["removed"] == pytest.approx(demo.deals.loc[gone, "amount"].sum())


def test_a_pipedrive_export_that_deletes_deals_takes_them_out_of_the_store(tmp_path: Path, demo):
    """The export as Pipedrive writes it (prefixed columns, its stage names, 'deleted' in Status): Monday's has
    no deleted deal, Tuesday's marks the first five deleted; the stored ones leave the pipeline."""
    from scoring.data.exports import pipedrive_deals
    from scoring.data.presets import load_config

    config = load_config(preset="pipedrive")
    store = open_store(f"sqlite:///{tmp_path / 'p.db'}", create=True)
    monday = load_deal_history(pipedrive_deals(demo, tmp_path, deleted=0), config=config)
    store.import_history(monday, "monday.csv")
    tuesday = load_deal_history(pipedrive_deals(demo, tmp_path, deleted=5), config=config)
    first = [str(d) for d in demo.deals["deal_id"].head(5)]
    assert sorted(tuesday.deleted) == sorted(first)
    result = store.import_history(tuesday, "tuesday.csv")
    assert result.deals_deleted == 5 and result.deals_changed == 0
    assert (store.deals().set_index("deal_id").loc[first, "status"] == "deleted").all()


def test_the_pipeline_before_any_stage_history_keeps_the_deals_it_had():
    """A date before the history's first entry (an export whose history holds only later stage changes): the deals
    then open are there, in their stage, since when not known where their only entry came later (pandas' map of an
    empty date mapping raised a TypeError: the managers' page of that date failed)."""
    from scoring.report.pipeline import StoredPipeline

    deals = pd.DataFrame({"deal_id": ["A", "B"], "created_at": pd.to_datetime(["2025-01-05", "2025-02-01"]),
                          "amount": [100.0, 200.0], "stage": ["Proposal", "Lead"], "status": "open",
                          "closed_at": pd.NaT, "stage_entered_at": pd.to_datetime(["2025-03-01", "2025-02-01"]),
                          "expected_close_date": pd.NaT})
    history = pd.DataFrame({"deal_id": ["A"], "stage": ["Proposal"], "entered_at": pd.to_datetime(["2025-03-01"])})
    then = StoredPipeline(deals, history).open_at(pd.Timestamp("2025-02-15")).set_index("deal_id")
    assert then["stage"].tolist() == ["Proposal", "Lead"]
    assert pd.isna(then.loc["A", "stage_entered_at"]) and then.loc["B", "stage_entered_at"] == pd.Timestamp("2025-02-01")


def test_closed_deals_imported_into_the_crm_count_in_what_their_period_booked(tmp_path: Path, demo):
    """A migrated org's old closed deals (created in bulk on the import's day, after they closed) are never open in
    the stored pipeline, but what they won counts in their period's bookings: the quarter of the move books them;
    the flow around the import neither creates nor closes them."""
    from scoring.forecast.revenue import booked_in, period_bounds
    from scoring.report.pipeline import StoredPipeline, pipeline_flow

    day = pd.Timestamp("2025-06-20 10:00")
    template = demo.deals[demo.deals["status"] == "won"].iloc[0]
    imported = pd.DataFrame([{**template.to_dict(), "deal_id": f"OLD-{i}", "created_at": day + pd.Timedelta(minutes=i % 50),
                              "status": "won" if i % 3 else "lost", "closed_at": pd.Timestamp("2025-04-01")
                              + pd.Timedelta(days=i % 70), "stage_entered_at": day, "amount": 1000.0 + i}
                             for i in range(150)])
    data = load_deal_history(pd.concat([demo.deals, imported], ignore_index=True), demo.history)
    assert len(data.imported) == 150 and not data.deals["deal_id"].str.startswith("OLD-").any()
    store = open_store(f"sqlite:///{tmp_path / 'p.db'}", create=True)
    assert store.import_history(data, "moved.csv", at=pd.Timestamp("2025-06-30 08:00")).deals_new == len(demo.deals) + 150
    pipeline = StoredPipeline(store.deals(), store.history(), changes=store.field_changes())
    as_of = pd.Timestamp("2025-06-25")
    won_old = sum(1000.0 + i for i in range(150) if i % 3)
    ours = demo.deals[(demo.deals["status"] == "won") & (demo.deals["closed_at"] >= "2025-04-01")
                      & (demo.deals["closed_at"] < as_of)]["amount"].sum()
    booked = booked_in(pipeline.known_at(as_of), as_of, period_bounds(as_of, "quarter", 2), "quarter")
    assert booked[0] == pytest.approx(ours + won_old) and booked[1] == 0.0
    assert not set(pipeline.open_at(as_of)["deal_id"]) & set(imported["deal_id"])
    flow = pipeline_flow(pipeline, pd.Timestamp("2025-06-15"), pd.Timestamp("2025-06-25"))["total"]
    created = demo.deals[(demo.deals["created_at"] > "2025-06-15") & (demo.deals["created_at"] < "2025-06-26")]
    assert flow["created_deals"] == len(created)
    assert flow["end_value"] == pytest.approx(flow["start_value"] + flow["created"] - flow["won"] - flow["lost"]
                                              + flow["raised"] - flow["cut"] - flow["removed"])
