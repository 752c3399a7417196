"""Exports as they come (SPEC 2.1): footers, dates per column, formatted numbers, blank cells, rows set aside
and counted, --strict, Excel files, a whole export to score. Files are shaped from a demo company (scoring.data.exports)."""
from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from scoring.data.contract import data_end, inspect_deal_history, load_deal_history, read_open_deals
from scoring.data.demo import DemoCompany
from scoring.data.exports import FOOTER, salesforce_reports
from scoring.data.formats import AmbiguousDates, parse_dates, parse_numbers
from scoring.data.presets import load_config
from scoring.data.tables import ROW, SHORT, read_table
from scoring.errors import DataError, InvalidDeals
from tests.conftest import GOOD_DEALS, GOOD_HISTORY


@pytest.fixture(scope="module")
def salesforce(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, pd.DataFrame]:
    demo = DemoCompany().generate(600, seed=5, end="2025-06-30")
    deals, history = salesforce_reports(demo, tmp_path_factory.mktemp("salesforce"))
    return deals, history, demo.deals


def test_a_salesforce_report_pair_loads_with_only_the_preset(salesforce):
    deals, history, truth = salesforce
    data, report = inspect_deal_history(deals, history, load_config(preset="salesforce"))
    assert report.ok, report.summary()
    assert len(data.deals) == len(truth)  # the footer is not four bad deals
    footers = [s for s in report.set_aside if "footer" in s.reason]
    assert [s.count for s in footers] == [len(FOOTER) - 1, len(FOOTER) - 1]  # both reports, blank line dropped
    # report dates are M/D/YYYY, the history's M/D/YYYY h:mm AM/PM: each column read in its own format
    got = data.history.groupby("deal_id")["entered_at"].min()
    want = truth.set_index("deal_id")["created_at"].dt.floor("min")
    assert (got.reindex(want.index) == want).mean() > 0.99
    # formatted amounts (14,300.00 and USD 14,300.00) are numbers; blank ones are set aside, the deal kept
    amounts = data.deals.set_index("deal_id")["amount"]
    blank = amounts.isna()
    assert 0 < blank.sum() < 0.15 * len(amounts)
    np.testing.assert_allclose(amounts[~blank], truth.set_index("deal_id")["amount"][amounts[~blank].index])
    kept = [s for s in report.set_aside if s.column == "amount"]
    assert [s.count for s in kept] == [int(blank.sum())] and kept[0].kept


def test_history_of_a_filtered_out_deal_and_same_day_losses_do_not_refuse_the_data(salesforce, tmp_path: Path):
    deals, history, _ = salesforce
    frame = pd.read_csv(deals, dtype=str, keep_default_na=False)
    body = frame[frame["Opportunity ID"].str.startswith("D")].iloc[1:]  # the report filtered out the first deal
    lost_today = body.index[body["Stage"] == "Closed Lost"][0]
    body.loc[lost_today, "Close Date"] = body.loc[lost_today, "Created Date"]  # created and lost the same day
    trimmed = tmp_path / "Opportunities.csv"
    body.to_csv(trimmed, index=False, quoting=csv.QUOTE_ALL)
    data, report = inspect_deal_history(trimmed, history, load_config(preset="salesforce"))
    assert report.ok, report.summary()
    unknown = [s for s in report.set_aside if s.column == "deal_id"]
    assert unknown and unknown[0].count >= 1 and frame.loc[0, "Opportunity ID"] in unknown[0].reason


def test_deals_a_filtered_history_report_left_out_are_named_as_not_learned_from(salesforce, tmp_path: Path):
    """The Opportunity History report filtered by date: the deals it left out have no stage (a report records each
    deal's creation, so their absence is not "never changed"): said, with their rows, not silently dropped."""
    deals, history, truth = salesforce
    rows = pd.read_csv(history, dtype=str, keep_default_na=False)
    older = truth.loc[truth["status"] == "open", "deal_id"].iloc[:25].tolist()  # (a closed one would be an error)
    trimmed = tmp_path / "Opportunity History.csv"
    rows[~rows["Opportunity ID"].isin(older)].to_csv(trimmed, index=False, quoting=csv.QUOTE_ALL)
    data, report = inspect_deal_history(deals, trimmed, load_config(preset="salesforce"))
    assert report.ok, report.summary()
    said = [p for p in report.warnings if "no entry in the stage history" in p.message]
    assert len(said) == 1 and said[0].message.startswith("25 deal(s)") and len(said[0].rows) == 25
    assert not set(older) & set(data.history["deal_id"])


def test_strict_refuses_what_would_be_set_aside(salesforce):
    deals, history, _ = salesforce
    data, report = inspect_deal_history(deals, history, load_config(preset="salesforce"), strict=True)
    assert data is None and {"amount", None} <= {e.column for e in report.errors}
    assert any("footer" in e.message for e in report.errors)


def test_a_blank_line_keeps_the_row_numbers_a_spreadsheet_shows(write):
    lines = GOOD_DEALS.splitlines()
    text = "\n".join([*lines[:3], "", lines[3].replace("Qualified", "Discovery"), *lines[4:]]) + "\n"
    _, report = inspect_deal_history(write("deals.csv", text))
    assert [(e.column, e.rows) for e in report.errors] == [("stage", (5,))]  # header 1, D1 2, D2 3, blank 4


def test_a_short_row_is_named_as_short(write):
    text = GOOD_DEALS.replace("D3,2024-01-07,0,Qualified,lost,2024-02-15T17:00:00Z,2024-01-20,,SMB,",
                              "D3,2024-01-07,0,Qualified,lost")
    _, report = inspect_deal_history(write("deals.csv", text))
    assert any("fewer cells" in e.message and e.rows == (4,) for e in report.errors), report.summary()


def test_a_header_only_file_gets_a_clear_error_not_a_traceback(write):
    header = GOOD_DEALS.splitlines()[0] + "\n"
    data, report = inspect_deal_history(write("deals.csv", header))
    assert data is None and any("no deals" in e.message for e in report.errors)
    with pytest.raises(DataError, match="no deals"):
        load_deal_history(write("deals.csv", header))


@pytest.mark.parametrize(("cells", "form", "expected"), [
    (["2026-03-25", "2026-03-26T08:48:00Z"], "ISO8601", ["2026-03-25 00:00", "2026-03-26 08:48"]),
    (["3/25/2026", "12/1/2026"], "month", ["2026-03-25 00:00", "2026-12-01 00:00"]),
    (["3/25/2026 8:48 PM", "3/26/2026 12:05 AM"], "month", ["2026-03-25 20:48", "2026-03-26 00:05"]),
    (["3/25/2026, 8:48 PM", "3/26/2026, 12:05 AM"], "month", ["2026-03-25 20:48", "2026-03-26 00:05"]),
    (["25.03.2026, 14:30", "01.12.2026"], "day", ["2026-03-25 14:30", "2026-12-01 00:00"]),
    # two-digit years (Excel's short dates), and a trailing UTC (they were refused)
    (["3/25/26", "12/1/26 8:48 PM"], "month", ["2026-03-25 00:00", "2026-12-01 20:48"]),
    (["25.03.26", "01.12.26"], "day", ["2026-03-25 00:00", "2026-12-01 00:00"]),
    (["2026-03-25 20:48:00 UTC", "2026-03-26 08:00:00 GMT"], "ISO8601", ["2026-03-25 20:48", "2026-03-26 08:00"]),
    (["25.03.2026", "01.12.2026 14:30"], "day", ["2026-03-25 00:00", "2026-12-01 14:30"]),
    (["25/03/2026", "01/12/2026"], "day", ["2026-03-25 00:00", "2026-12-01 00:00"]),
    # mostly blank, as the close dates of an export's open deals only: read by the cells that are there
    ([*[""] * 9, "04.01.2027 00:00", None], "day", [*[None] * 9, "2027-01-04 00:00", None]),
    # the month by name, as spreadsheets and US reports write it (they were refused as not ISO 8601)
    (["05-Jan-2024", "17-Mar-24", "3 Dec 2025 14:30"], "named day", ["2024-01-05 00:00", "2024-03-17 00:00",
                                                                      "2025-12-03 14:30"]),
    (["Jan 5, 2024", "September 17, 2024 3:07 PM", "Sept 3, 2025"], "named month",
     ["2024-01-05 00:00", "2024-09-17 15:07", "2025-09-03 00:00"]),
    (["5. Mär 2024", "12 déc. 2025", "1-oct-2024"], "named day", ["2024-03-05 00:00",
                                                                 "2025-12-12 00:00", "2024-10-01 00:00"]),
    # a zone after the time, converted to UTC: an abbreviation of one offset, or UTC/GMT with an offset
    (["2026-03-25 15:48:00 EST", "2026-07-01 10:00 EDT", "2026-03-26 09:00 CET", "2026-03-27"], "ISO8601",
     ["2026-03-25 20:48", "2026-07-01 14:00", "2026-03-26 08:00", "2026-03-27 00:00"]),
    (["3/25/2026 8:48 PM PDT", "3/26/2026 8:00 AM"], "month", ["2026-03-26 03:48", "2026-03-26 08:00"]),
    (["Jan 5, 2024 10:00 AM EST", "Jan 6, 2024 10:00 AM"], "named month", ["2024-01-05 15:00", "2024-01-06 10:00"]),
    (["2026-03-25 10:00 UTC+1", "2026-03-25 10:00 GMT-05:30"], "ISO8601",
     ["2026-03-25 09:00", "2026-03-25 15:30"]),
    (["25.03.2026 14:30 CEST", "01.12.2026 14:30 CET"], "day", ["2026-03-25 12:30", "2026-12-01 13:30"]),
    # without separators, as SAP and database dumps write them (they were refused)
    (["20260325", "20261201"], "%Y%m%d", ["2026-03-25 00:00", "2026-12-01 00:00"]),
    (["20260325143000", "20261201090500"], "%Y%m%d%H%M%S", ["2026-03-25 14:30", "2026-12-01 09:05"]),
    # dashes for slashes (the Netherlands' and India's dates, Zoho's dd-MM-yyyy and MM-dd-yyyy; they were refused)
    (["25-03-2026", "01-12-2026 14:30"], "day", ["2026-03-25 00:00", "2026-12-01 14:30"]),
    (["03-25-2026 8:48 PM", "12-01-2026"], "month", ["2026-03-25 20:48", "2026-12-01 00:00"]),
    # after a weekday: Excel's long date, e-mail's and HTTP's dates (they were refused)
    (["Wednesday, March 25, 2026", "Tuesday, December 1, 2026"], "named month", ["2026-03-25 00:00", "2026-12-01 00:00"]),
    (["Wed, 25 Mar 2026 14:30:00 GMT", "Tue, 01 Dec 2026 09:05:00 GMT"], "named day",
     ["2026-03-25 14:30", "2026-12-01 09:05"]),
    # an offset of hours and minutes after the time (RFC 2822's, a report's), converted to UTC (they were unreadable
    # but in ISO dates)
    (["Wed, 25 Mar 2026 14:30:00 +0100", "Tue, 01 Dec 2026 09:05:00 -0500"], "named day",
     ["2026-03-25 13:30", "2026-12-01 14:05"]),
    (["3/25/2026 8:48 PM -05:00", "3/26/2026 8:00 AM"], "month", ["2026-03-26 01:48", "2026-03-26 08:00"]),
    (["25.03.2026 14:30 +0200", "01.12.2026 09:05 +01:00"], "day",
     ["2026-03-25 12:30", "2026-12-01 08:05"]),
    # ISO dates with a 12-hour time (Close's "excel" date format; they were unreadable), a date alone beside them
    (["2026-03-25 08:48:00 PM", "2026-03-26 12:05:00 AM", "2026-03-27"], "ISO8601 12-hour",
     ["2026-03-25 20:48", "2026-03-26 00:05", "2026-03-27 00:00"]),
    # JavaScript's Date.toString(), as exports made in a browser write it, its zone's name after the offset or not
    (["Wed Mar 25 2026 14:30:00 GMT+0530 (India Standard Time)", "Tue Dec 01 2026 09:05:00 GMT-0500"], "named month",
     ["2026-03-25 09:00", "2026-12-01 14:05"]),
])
def test_dates_are_read_per_column_in_the_format_their_cells_show(cells, form, expected):
    parsed = parse_dates(pd.Series(cells))
    assert parsed.form == form and not parsed.unreadable.any()
    assert [None if pd.isna(t) else f"{t:%Y-%m-%d %H:%M}" for t in parsed.values] == expected


def test_a_column_of_dates_written_with_their_zone_is_not_a_feature(write):
    """A date column other than the canonical ones is never a feature, whatever zone its cells end with (BigQuery's
    "2026-03-25 20:48:00 UTC", a browser's "... GMT+0530"): such a column (a last-modified date) was a category of
    thousands of values, the date each deal closed among them."""
    lines = GOOD_DEALS.splitlines()
    stamps = ["2024-01-05 10:00:00 UTC", "2024-02-01 08:00:00 UTC", "2024-03-01 09:30:00 UTC", "2024-03-02 11:00:00 UTC"]
    deals = "\n".join([lines[0] + ",Last Modified Date"] + [f"{row},{stamp}" for row, stamp in zip(lines[1:], stamps)])
    data, report = inspect_deal_history(write("deals.csv", deals + "\n"))
    assert data is not None and "Last Modified Date" not in data.features
    assert any("'Last Modified Date'" in str(w) and "dates" in str(w) for w in report.warnings)


def test_a_month_name_that_is_none_or_a_day_past_the_month_is_unreadable():
    parsed = parse_dates(pd.Series(["05-Foo-2024", "31-Feb-2024", "06-Jan-2024"]))
    assert parsed.form == "named day" and parsed.unreadable.tolist() == [True, True, False]


def test_ambiguous_dates_are_refused_with_both_readings_unless_declared():
    with pytest.raises(AmbiguousDates, match=r"2026-03-04 if month first, 2026-04-03 if day first"):
        parse_dates(pd.Series(["03/04/2026", "05/06/2026"]))
    assert list(parse_dates(pd.Series(["03/04/2026"]), "day-first").values.dt.month) == [4]


def test_excel_serials_and_dates_outside_the_plausible_years():
    serials = parse_dates(pd.Series([46106.0, 46107.5]), excel=True)
    assert list(serials.values.dt.strftime("%Y-%m-%d %H:%M")) == ["2026-03-25 00:00", "2026-03-26 12:00"]
    odd = parse_dates(pd.Series(["1900-01-01", "9999-12-31", "2026-01-01"]))
    assert odd.implausible.tolist() == [True, True, False] and not odd.unreadable.any()


def test_a_zone_naming_several_offsets_is_refused_saying_so(write):
    """CST is US Central or China, IST India, Ireland or Israel: the error names the cell and why."""
    deals = GOOD_DEALS.replace("2024-01-06T09:30:00,55000.50", "2024-01-06 09:30 CST,55000.50")
    _, report = inspect_deal_history(write("deals.csv", deals))
    [error] = [e for e in report.errors if e.column == "created_at"]
    assert "'2024-01-06 09:30 CST'" in error.message and "several time zones" in error.message and error.rows == (3,)
    history = GOOD_HISTORY.replace("D2,Lead,2024-01-06T09:30:00", "D2,Lead,2024-01-06 09:30 IST")
    _, report = inspect_deal_history(write("deals.csv", GOOD_DEALS), write("history.csv", history))
    assert any(e.column == "entered_at" and "Ireland" in e.message for e in report.errors)
    slashed = parse_dates(pd.Series(["6/30/2022 CST", "7/13/2022 EST"]))  # the format told by the dates alone
    assert slashed.form == "month" and slashed.unreadable.tolist() == [True, False]
    eastern = GOOD_DEALS.replace("2024-01-06T09:30:00,55000.50", "2024-01-06 04:30 EST,55000.50")
    assert load_deal_history(write("deals.csv", eastern)).deals.loc[1, "created_at"] == pd.Timestamp("2024-01-06 09:30")


def test_unix_times_as_an_api_pull_writes_them_are_dates_and_never_features(tmp_path: Path):
    """Data pulled through a CRM's API (HubSpot's legacy API, a script's JSON dump) dates in Unix milliseconds or
    seconds: read as the dates they are (they were refused as not ISO 8601), in text, in a Parquet file's integers
    and beside Excel serials; a numeric column named as a date (a last activity written at the close) is a date,
    never a numeric feature."""
    ms = parse_dates(pd.Series(["1711400000000", "1711400000000.0", None, "x"]))
    assert ms.form == "unix time" and ms.unreadable.tolist() == [False, False, False, True]
    assert [f"{t:%Y-%m-%d %H:%M:%S}" for t in ms.values[:2]] == ["2024-03-25 20:53:20"] * 2
    seconds = parse_dates(pd.Series([1711400000, 1711486400]), excel=True)  # a workbook's number cells, not serials
    assert seconds.form == "unix time" and list(seconds.values.dt.day) == [25, 26]
    assert parse_dates(pd.Series([46106.0]), excel=True).form == "excel serial"
    demo = DemoCompany().generate(300, seed=2, end="2025-06-30").deals
    pulled = demo.assign(**{c: (pd.to_datetime(demo[c]) - pd.Timestamp("1970-01-01")) // pd.Timedelta(milliseconds=1)
                            for c in ("created_at", "closed_at")})
    pulled["closed_at"] = pulled["closed_at"].astype("Int64")
    pulled["last_activity_date"] = pulled["closed_at"].fillna(pulled["created_at"].max()).astype("int64")
    pulled.to_parquet(tmp_path / "deals.parquet")
    data = load_deal_history(tmp_path / "deals.parquet")
    assert data.deals["created_at"].dt.floor("s").tolist() == pd.to_datetime(demo["created_at"]).dt.floor("s").tolist()
    assert "last_activity_date" not in data.features
    assert any("last_activity_date" in str(p) and "dates" in str(p) for p in data.report.problems)


def test_a_column_named_twice_in_the_header_is_dropped_if_the_same_else_refused(write):
    """A field added to a report twice, or two properties of one label: a repeat of the same cells is dropped with
    a note; one of other cells is refused, naming it, as a name repeated with other spaces is (pandas had read it
    as one more column, ``amount.1``: a feature no one asked for)."""
    header, *rows = GOOD_DEALS.splitlines()
    same = "\n".join([header + ",segment", *(r + "," + r.split(",")[8] for r in rows)]) + "\n"
    data = load_deal_history(write("same.csv", same))
    assert "segment.1" not in data.deals.columns and set(data.features) == {"segment", "seats"}
    assert any("'segment.1' repeat a column of the same name" in n for n in data.report.notes)
    other = "\n".join([header + ",amount", *(r + ",7" for r in rows)]) + "\n"
    _, report = inspect_deal_history(write("other.csv", other))
    [error] = report.errors
    assert error.column == "amount" and "appear more than once with different cells" in error.message


def test_a_closed_deal_dated_after_today_is_kept_closed_on_the_datas_last_date(write):
    """A rep's planned close date kept when a deal was lost early: read as given it made the data's end (training's
    as-of date) 2099, every open deal open for 75 years. Kept, its outcome learned, closed when its stage history's
    lost row says, else on the data's last date."""
    deals = GOOD_DEALS.replace("D3,2024-01-07,0,Qualified,lost,2024-02-15T17:00:00Z",
                               "D3,2024-01-07,0,Qualified,lost,2099-06-30")
    data, report = inspect_deal_history(write("deals.csv", deals))
    d3 = data.deals.set_index("deal_id").loc["D3"]
    assert d3["status"] == "lost" and d3["closed_at"] == pd.Timestamp("2024-04-01")  # D4's stage change, the latest
    [aside] = [s for s in report.set_aside if s.column == "closed_at"]
    assert aside.kept and aside.rows == (4,) and "'2099-06-30'" in aside.reason
    assert data_end(data) < pd.Timestamp("2024-04-02")
    assert inspect_deal_history(write("deals.csv", deals), strict=True)[0] is None  # --strict refuses it
    logged = GOOD_HISTORY + "D3,Lost,2024-02-15T17:00:00\n"  # the stage history says when it was lost
    data = load_deal_history(write("deals.csv", deals), write("history.csv", logged))
    assert data.deals.set_index("deal_id").loc["D3", "closed_at"] == pd.Timestamp("2024-02-15 17:00")
    ahead = DemoCompany().generate(300, seed=1, end="2098-12-31").deals  # a simulated company dated ahead: as it is
    data, report = inspect_deal_history(ahead)
    assert data.deals["closed_at"].max() == pd.to_datetime(ahead["closed_at"]).max() and not report.set_aside


def test_deals_created_in_bulk_are_said_with_their_day():
    """A pipeline imported into the CRM on one day (a move from another): said, naming the day and the count; none
    on a company of ordinary days."""
    deals = DemoCompany().generate(2000, seed=3, end="2025-06-30").deals
    assert not any("in bulk" in str(p) for p in inspect_deal_history(deals)[1].problems)
    moved = pd.Timestamp("2024-06-03")
    deals = deals.assign(created_at=pd.to_datetime(deals["created_at"]))
    deals = deals[deals["closed_at"].isna() | (pd.to_datetime(deals["closed_at"]) >= moved)]
    before = deals["created_at"] < moved
    deals.loc[before, "created_at"] = moved + pd.Timedelta(hours=10)
    on_day = int((deals["created_at"].dt.normalize() == moved).sum())  # the imported and the day's own
    [warning] = [p for p in inspect_deal_history(deals)[1].problems if "in bulk" in p.message]
    assert f"2024-06-03 ({on_day:,})" in warning.message and warning.column == "created_at" and on_day > before.sum()


def test_the_wording_of_an_implausible_date_is_not_iso(write):
    _, report = inspect_deal_history(write("deals.csv", GOOD_DEALS.replace("2024-01-05,12000", "1900-01-05,12000")))
    assert any("between 1970 and 2100" in e.message and "'1900-01-05'" in e.message for e in report.errors)


@pytest.mark.parametrize(("cells", "declared", "expected"), [
    (["14,300.00", "$1,200", "USD 5,000.50", "800"], None, [14300.0, 1200.0, 5000.5, 800.0]),
    (["14.300,00", "1.200", "5.000,50", "800,25"], None, [14300.0, 1200.0, 5000.5, 800.25]),
    (["1 200,50", "€ 3 400"], "1 234,56", [1200.5, 3400.0]),
    (["(1,200.00)", "15"], None, [-1200.0, 15.0]),
])
def test_numbers_with_separators_currencies_and_decimal_commas(cells, declared, expected):
    values, unreadable = parse_numbers(pd.Series(cells), declared)
    assert values.tolist() == expected and not unreadable.any()


def test_a_numeric_feature_with_a_few_text_cells_stays_numeric(write):
    rows = [f"E{i},2024-01-{i % 28 + 1:02d},{1000 + i},Lead,{'won' if i % 2 else 'lost'},2024-03-01,,,SMB,{i}"
            for i in range(60)]
    rows[5] = rows[5].rsplit(",", 1)[0] + ",n/a"
    rows[9] = rows[9].rsplit(",", 1)[0] + ",?"
    text = GOOD_DEALS.splitlines()[0] + "\n" + "\n".join(rows) + "\n"
    data, report = inspect_deal_history(write("deals.csv", text))
    assert data.features["seats"] == "numeric" and data.deals["seats"].isna().sum() == 2
    aside = [s for s in report.set_aside if s.column == "seats"]
    assert [s.rows for s in aside] == [(11,)] and "'?'" in aside[0].reason  # "n/a" is a missing marker


def test_infinite_numbers_are_not_numbers_a_deal_has(write):
    """``inf``, ``1e400`` or ``-Infinity`` in a numeric feature were learned as infinite (the amount refused them,
    scoring too): read as missing and said, as any cell that is no number; the deals to score name them as sent."""
    from scoring.data.config import PipelineConfig
    from scoring.data.open_deals import check_open_deals

    rows = [f"E{i},2024-01-{i % 28 + 1:02d},{1000 + i},Lead,{'won' if i % 2 else 'lost'},2024-03-01,,,SMB,"
            f"{['inf', '1e400', '-Infinity'][i % 3] if i < 3 else i % 30}" for i in range(60)]
    data, report = inspect_deal_history(write("deals.csv", GOOD_DEALS.splitlines()[0] + "\n" + "\n".join(rows) + "\n"))
    assert data is not None and data.features["seats"] == "numeric"
    assert np.isfinite(data.deals["seats"].dropna()).all() and data.deals["seats"].isna().sum() == 3
    assert [s.count for s in report.set_aside if s.column == "seats"] == [3]
    deals = {"deal_id": ["a"], "stage": ["Lead"], "amount": np.array([1.0]),
             "created_at": np.array(["2025-01-01"], dtype="datetime64[us]"), "seats": ["1e400"]}
    with pytest.raises(InvalidDeals, match=r"seats: expected a number \(or empty\), got '1e400'"):
        check_open_deals(deals, PipelineConfig(), {"seats": "numeric"}, pd.Timestamp("2025-06-30"))


def test_numpy_numbers_of_a_frame_read_as_numbers_and_booleans_refused():
    """A frame's numeric feature holds numpy's numbers (a pandas int64 column gives np.int64): read at list speed
    (100,000 deals were read value by value, a fifth of a forecast's time), an infinite one and a boolean still
    refused by name."""
    from scoring.data.config import PipelineConfig
    from scoring.data.open_deals import check_open_deals

    def deals(seats):
        return {"deal_id": [f"d{i}" for i in range(len(seats))], "stage": ["Lead"] * len(seats),
                "amount": np.ones(len(seats)), "created_at": np.full(len(seats), "2025-01-01", dtype="datetime64[us]"),
                "seats": seats}

    as_of = pd.Timestamp("2025-06-30")
    frame = pd.DataFrame({"ints": [3, 40], "floats": [2.5, np.nan]})
    for column, expected in (("ints", [3.0, 40.0]), ("floats", [2.5, np.nan])):
        columns, _ = check_open_deals(deals(list(frame[column])), PipelineConfig(), {"seats": "numeric"}, as_of)
        np.testing.assert_array_equal(columns["seats"], expected)
    for bad, shown in ((np.float64("inf"), "inf"), (np.bool_(True), "True"), (True, "True")):
        with pytest.raises(InvalidDeals, match=rf"seats: expected a number \(or empty\), got .*{shown}"):
            check_open_deals(deals([np.int64(1), bad]), PipelineConfig(), {"seats": "numeric"}, as_of)


def test_a_percent_column_is_a_numeric_feature_of_its_numbers(write):
    """Spreadsheets format a share as "15%" (or "12,5 %" in Europe): the column is numeric, read as written (15);
    an amount keeps refusing a percent sign."""
    rows = [f"E{i},2024-01-{i % 28 + 1:02d},{1000 + i},Lead,{'won' if i % 2 else 'lost'},2024-03-01,,,SMB,{i % 30}%"
            for i in range(60)]
    text = GOOD_DEALS.splitlines()[0] + "\n" + "\n".join(rows) + "\n"
    data, _ = inspect_deal_history(write("deals.csv", text))
    assert data.features["seats"] == "numeric"
    assert data.deals.sort_values("deal_id")["seats"].tolist() == [float(int(d[1:]) % 30) for d in
                                                                  sorted(f"E{i}" for i in range(60))]
    assert parse_numbers(pd.Series(["12,5 %", "7 %", "100%"]), percent=True)[0].tolist() == [12.5, 7.0, 100.0]
    assert parse_numbers(pd.Series(["15%", "1,200"]))[1].tolist() == [True, False]


def test_markers_of_nothing_read_as_blank_cells_in_csv_and_workbooks_alike(tmp_path: Path, write):
    """Exports write an empty field as N/A, #N/A, NULL or a dash (reports and CRM views, ``-`` to ``---``; Excel's
    accounting format writes a zero amount as ``$ -``): blank cells, in CSV files and workbooks alike. A region
    "NA" (North America) stays itself in a workbook too (pandas' own list read it as missing)."""
    markers = ["N/A", "#N/A", "NULL", "-", "---", "\u2014"]
    rows = [f"E{i},2024-01-{i % 28 + 1:02d},{'$ -' if i % 10 == 3 else 1000 + i},Lead,{'won' if i % 2 else 'lost'},"
            f"2024-03-01,,,{markers[i % 6] if i % 5 == 0 else 'NA' if i % 5 == 1 else 'EMEA'},"
            f"{markers[i % 6] if i % 5 == 2 else i % 30}" for i in range(60)]
    text = GOOD_DEALS.splitlines()[0].replace("segment", "region") + "\n" + "\n".join(rows) + "\n"
    csv_path = write("deals.csv", text)
    workbook = tmp_path / "deals.xlsx"
    pd.read_csv(csv_path, dtype=str, keep_default_na=False).to_excel(workbook, index=False)
    for path in (csv_path, workbook):
        data, report = inspect_deal_history(path)
        deals = data.deals.set_index("deal_id").loc[[f"E{i}" for i in range(60)]]
        assert data.features["seats"] == "numeric", path
        assert deals["seats"].isna().tolist() == [i % 5 == 2 for i in range(60)], path
        assert deals["region"].isna().tolist() == [i % 5 == 0 for i in range(60)], path
        assert (deals["region"] == "NA").sum() == 12, path
        assert deals["amount"].isna().tolist() == [i % 10 == 3 for i in range(60)], path  # kept, adds no revenue
        assert not [s for s in report.set_aside if s.column == "seats"], path  # nothing unreadable
        assert [s.count for s in report.set_aside if s.column == "amount" and s.kept] == [6], path
    assert parse_numbers(pd.Series(["$ -", "-", "1,200", "\u2013"]))[1].tolist() == [False] * 4


def test_a_european_export_of_whole_numbers_reads_its_dots_as_thousands_and_scores_so(tmp_path: Path):
    """Whole euros and counts written the European way without decimals (``14.300``, ``950``; ``24.729``
    employees) read as plain decimals too: they were learned as 14.3 and 24.729. The export's format is now found
    (a note says so) and kept with the config, so that deals to score read the same, one deal at a time."""
    from scoring.data.open_deals import check_open_deals

    demo = DemoCompany().generate(600, seed=5, end="2025-06-30")
    deals = demo.deals.assign(amount=demo.deals["amount"].round())
    european = deals.assign(**{c: [f"{v:,.0f}".replace(",", ".") if v == v else "" for v in deals[c]]
                               for c in ("amount", "employees")})
    assert european["amount"].str.contains(".", regex=False).any()
    paths = {"european": tmp_path / "european.csv", "plain": tmp_path / "plain.csv"}
    european.to_csv(paths["european"], index=False)
    deals.to_csv(paths["plain"], index=False)
    read = {name: inspect_deal_history(path) for name, path in paths.items()}
    data, report = read["european"]
    assert data is not None and read["plain"][0] is not None
    pd.testing.assert_frame_equal(data.deals.drop(columns="employees"), read["plain"][0].deals.drop(columns="employees"))
    np.testing.assert_array_equal(data.deals["employees"], read["plain"][0].deals["employees"].astype(float))
    assert data.config.found_number_format == "1.234,56" and read["plain"][0].config.found_number_format == "1,234.56"
    assert data.config.number_format is None  # found, not declared: a plain 14300.5 is still read as it is
    assert any("European way in column(s) 'amount', 'employees'" in n for n in report.notes)
    one = {"deal_id": ["a"], "stage": ["Lead"], "amount": np.array([1.0]),
           "created_at": np.array(["2025-01-01"], dtype="datetime64[us]"), "employees": ["24.729"]}
    for written, read_as in (("24.729", 24729.0), ("14300.5", 14300.5), ("12,5", 12.5)):
        columns, _ = check_open_deals({**one, "employees": [written]}, data.config, {"employees": "numeric"},
                                      pd.Timestamp("2025-06-30"))
        assert columns["employees"].tolist() == [read_as], written
        plain, _ = check_open_deals({**one, "employees": [written]}, read["plain"][0].config, {"employees": "numeric"},
                                    pd.Timestamp("2025-06-30"))
        assert plain["employees"].tolist() == [24.729 if written == "24.729" else read_as], written
    us = deals.assign(amount=[f"{v:,.2f}" for v in deals["amount"]])  # 14,300.00: not European, nothing declared
    us.to_csv(tmp_path / "us.csv", index=False)
    assert inspect_deal_history(tmp_path / "us.csv")[0].config.found_number_format == "1,234.56"


def test_a_status_written_only_once_a_deal_closes_is_taken_from_the_stage_where_blank(write):
    """Exports whose status column says "Closed Won" / "Closed Lost" and nothing while a deal is open were refused
    ("expected open, won or lost, got '(empty)'"): a blank status comes from the stage, with a note; a blank
    status beside a stage that is no known one is still refused."""
    lines = GOOD_DEALS.splitlines()
    text = "\n".join([lines[0], *(line.replace(",open,", ",,").replace(",won,", ",Closed Won,")
                                  .replace(",lost,", ",Closed Lost,") for line in lines[1:])]) + "\n"
    data, report = inspect_deal_history(write("deals.csv", text))
    assert data is not None, report.summary()
    assert data.deals.set_index("deal_id")["status"].to_dict() == {"D1": "open", "D2": "won", "D3": "lost",
                                                                   "D4": "open"}
    assert any("2 deal(s) with a blank status: taken from the stage" in n for n in report.notes)
    unknown = text.replace("D4,2024-02-01,8000,Negotiation", "D4,2024-02-01,8000,Pending review")
    data, report = inspect_deal_history(write("unknown.csv", unknown))
    assert data is None and any(e.column == "status" and "(empty)" in e.message for e in report.errors)
    # scoring the same export: the deals closed by their stage are skipped, not scored as open
    text = text.replace("D2,2024-01-06T09:30:00,55000.50,Proposal,Closed Won", "D2,2024-01-06T09:30:00,55000.50,Won,")
    assert read_open_deals(write("score.csv", text))[0]["deal_id"].tolist() == ["D1", "D4"]


def test_status_comes_from_the_stage_column_when_there_is_none(write):
    text = ("deal_id,created_at,amount,deal_stage,closed_at\nA,2024-01-01,10,Won,2024-02-01\n"
            "B,2024-01-02,20,Lost,2024-02-02\nC,2024-01-03,30,Proposal,\n")
    config = write("pipeline.toml", '[columns]\nstage = "deal_stage"\n')
    _, report = inspect_deal_history(write("deals.csv", text), None, load_config(config))
    assert not [e for e in report.errors if e.column == "status"]
    assert any("status of each deal comes from its stage" in n for n in report.notes)


def test_a_whole_export_can_be_scored_its_closed_deals_counted_and_skipped(write):
    deals, report = read_open_deals(write("deals.csv", GOOD_DEALS))
    assert list(deals["deal_id"]) == ["D1", "D4"]
    assert [(s.count, s.kept) for s in report.set_aside] == [(2, False)]


def test_excel_files_are_read_like_csv(tmp_path: Path, write):
    frame = pd.read_csv(write("deals.csv", GOOD_DEALS), dtype=str)
    frame["created_at"] = pd.to_datetime(frame["created_at"], format="ISO8601")  # real dates in the sheet
    path = tmp_path / "deals.xlsx"
    frame.to_excel(path, index=False)
    history = pd.read_csv(write("history.csv", GOOD_HISTORY), dtype=str)
    history_path = tmp_path / "history.xlsx"
    history.to_excel(history_path, index=False)
    from_excel = load_deal_history(path, history_path)
    from_csv = load_deal_history(write("deals.csv", GOOD_DEALS), write("history.csv", GOOD_HISTORY))
    pd.testing.assert_frame_equal(from_excel.deals[["deal_id", "created_at", "amount", "status"]],
                                  from_csv.deals[["deal_id", "created_at", "amount", "status"]])


def test_a_workbook_is_read_from_its_data_sheet_and_tab_separated_text_from_tsv(tmp_path: Path, write):
    """A workbook with a summary sheet before the export (and a hidden one, as Dynamics 365 keeps) is read from
    its largest visible sheet, with a note naming it; a .tsv file is tab-separated text like Excel's own."""
    frame = pd.read_csv(write("deals.csv", GOOD_DEALS), dtype=str)
    path = tmp_path / "deals.xlsx"
    with pd.ExcelWriter(path, engine="openpyxl") as writer:
        pd.DataFrame({"Pipeline summary": ["4 deals", "2 open"]}).to_excel(writer, sheet_name="Summary", index=False)
        frame.to_excel(writer, sheet_name="Opportunities", index=False)
        pd.DataFrame({"x": range(100)}).assign(y=1, z=2, w=3).to_excel(writer, sheet_name="hidden", index=False)
        writer.book["hidden"].sheet_state = "hidden"
    data = load_deal_history(path)
    assert data.deals["deal_id"].tolist() == ["D1", "D2", "D3", "D4"]
    assert any("read its sheet 'Opportunities', the largest; not its other sheet(s) ['Summary']" in n
               for n in data.report.notes)
    tsv = load_deal_history(write("deals.tsv", GOOD_DEALS.replace(",", "\t")))
    pd.testing.assert_frame_equal(tsv.deals, load_deal_history(write("deals.csv", GOOD_DEALS)).deals)


def test_a_salesforce_excel_export_that_is_an_html_table_reads_as_its_csv(tmp_path: Path):
    """Salesforce's "Excel Format .xls" export is an HTML table named .xls (ISO-8859-1, empty cells as &nbsp;, the
    footer as rows of one cell across): read as the same report's CSV is, said in a note (it was refused as not a
    readable workbook)."""
    demo = DemoCompany().generate(300, seed=7, end="2025-06-30")
    config = load_config(preset="salesforce")
    from_csv = load_deal_history(*salesforce_reports(demo, tmp_path), config)
    data = load_deal_history(*salesforce_reports(demo, tmp_path, excel=True), config)
    pd.testing.assert_frame_equal(data.deals, from_csv.deals)
    pd.testing.assert_frame_equal(data.history, from_csv.history)
    assert sum("not a workbook but an HTML table" in n for n in data.report.notes) == 2
    assert [s.count for s in data.report.set_aside if "footer" in s.reason] == [len(FOOTER) - 1] * 2


def test_html_and_text_named_as_workbooks_are_read_as_what_they_are(tmp_path: Path, write):
    """An HTML table named .xls: its charset, entities, title rows above the header, cells spanning columns and
    short rows read as a CSV's would be; a row longer than the header refused naming it. Tab-separated text
    named .xls is read as text; bytes neither a workbook nor text keep the workbook reader's clear error."""
    page = ('<html><head><meta charset="windows-1252"></head><body><table>'
            '<tr><td colspan="3">Opportunities &amp; deals</td></tr><tr><td>As of 6/30/2025</td></tr>'
            '<tr><th>deal_id</th><th>created_at</th><th>amount</th><th>stage</th><th>status</th><th>closed_at</th>'
            '<th>owner</th></tr>'
            '<tr><td>D1</td><td>2024-01-05</td><td>1,000.50</td><td>Lead</td><td>lost</td><td>2024-02-01</td>'
            '<td>Zo\xeb &amp; Co</td></tr>'
            '<tr><td>D2</td><td>2024-01-06</td><td>2000</td><td>Qualified</td><td>won</td><td>2024-03-01</td>'
            '<td>&nbsp;</td></tr>'
            '<tr><td>D3</td><td>2024-01-07</td><td>3000</td><td>Lead</td></tr></table></body></html>')
    path = tmp_path / "deals.xls"
    path.write_bytes(page.encode("cp1252"))
    frame = read_table(path)
    assert frame.attrs["header_row"] == 3 and list(frame[ROW]) == [4, 5, 6]
    assert frame["owner"].tolist()[:2] == ["Zoë & Co", None] and frame["amount"].tolist()[0] == "1,000.50"
    assert frame[SHORT].tolist() == [0, 0, 4]
    path.write_bytes(page.replace("<td>Lead</td></tr>", "<td>Lead</td><td>open</td><td></td><td>A</td>"
                                  "<td>extra</td></tr>").encode("cp1252"))
    with pytest.raises(DataError, match="row.s. 6 have more cells"):
        read_table(path)
    text = tmp_path / "text.xls"
    text.write_text(GOOD_DEALS.replace(",", "\t"))
    data = load_deal_history(text)
    pd.testing.assert_frame_equal(data.deals, load_deal_history(write("deals.csv", GOOD_DEALS)).deals)
    assert any("not a workbook but delimited text" in n for n in data.report.notes)
    (tmp_path / "junk.xls").write_bytes(b"\x00\x01\x02binary")
    with pytest.raises(DataError, match="not a readable workbook"):
        read_table(tmp_path / "junk.xls")


def _xml_spreadsheet(text: str) -> str:
    """A CSV's rows as Excel 2003's XML Spreadsheet writes them: a title merged across the columns, typed cells
    (dates as DateTime), blank cells left out and the next one placed by its ss:Index."""
    rows = [line.split(",") for line in text.strip().splitlines()]
    def cell(value: str, column: int, skipped: bool) -> str:
        kind, shown = ("DateTime", value + ("T00:00:00.000" if len(value) == 10 else "")) if value[:2] == "20" else (
            ("Number", value) if value.replace(".", "").isdigit() else ("String", value))
        index = f' ss:Index="{column + 1}"' if skipped else ""
        return f'<Cell{index}><Data ss:Type="{kind}">{shown}</Data></Cell>'
    body = []
    for row in rows:
        cells, skipped = [], False
        for column, value in enumerate(row):
            if value:
                cells.append(cell(value, column, skipped))
            skipped = not value
        body.append("<Row>" + "".join(cells) + "</Row>")
    return ('<?xml version="1.0"?>\n<?mso-application progid="Excel.Sheet"?>\n'
            '<Workbook xmlns="urn:schemas-microsoft-com:office:spreadsheet" '
            'xmlns:ss="urn:schemas-microsoft-com:office:spreadsheet"><Worksheet ss:Name="Opportunities"><Table>'
            f'<Row><Cell ss:MergeAcross="{len(rows[0]) - 1}"><Data ss:Type="String">Open Opportunities</Data></Cell></Row>'
            + "".join(body) + "</Table></Worksheet></Workbook>")


def test_an_xml_spreadsheet_named_as_a_workbook_reads_as_its_csv(tmp_path: Path, write):
    """Excel 2003's XML Spreadsheet under a .xls name (web apps' Excel buttons) or its own .xml (Dynamics CRM 2011's
    data for re-import): its title row skipped, typed cells read as text, blank cells placed by ss:Index; the deals equal the
    CSV's, said in a note (it was refused as not a readable workbook)."""
    path = tmp_path / "deals.xls"
    path.write_text(_xml_spreadsheet(GOOD_DEALS), encoding="utf-8")
    data = load_deal_history(path)
    from_csv = load_deal_history(write("deals.csv", GOOD_DEALS))
    pd.testing.assert_frame_equal(data.deals.drop(columns=ROW), from_csv.deals.drop(columns=ROW))
    assert list(data.deals[ROW]) == [3, 4, 5, 6]  # the title is row 1, the header row 2
    assert any("not a workbook but an XML Spreadsheet 2003" in n for n in data.report.notes)
    named = tmp_path / "deals.xml"  # under its own name
    named.write_text(_xml_spreadsheet(GOOD_DEALS), encoding="utf-8")
    pd.testing.assert_frame_equal(load_deal_history(named).deals, data.deals)
    path.write_text(_xml_spreadsheet(GOOD_DEALS)[:-30], encoding="utf-8")
    with pytest.raises(DataError, match="not readable as an XML Spreadsheet"):
        read_table(path)
    named.write_text('<?xml version="1.0"?><deals><deal id="D1"/></deals>', encoding="utf-8")
    with pytest.raises(DataError, match="not an Excel 2003 XML Spreadsheet"):
        read_table(named)


MAVEN_CONFIG = '''# The Maven CRM sample set (sales_pipeline.csv), loaded with this config alone
stages = ["Prospecting", "Engaging"]
last_open_stage = "Engaging"
[fixed_probabilities]
Prospecting = 0.1
Engaging = 0.5
[columns]
deal_id = "opportunity_id"
stage = "deal_stage"
created_at = "engage_date"
closed_at = "close_date"
amount = "close_value"
'''


def test_a_maven_shaped_file_loads_with_a_config_alone(write):
    """Maven's sales_pipeline.csv: one deal_stage column (Prospecting, Engaging, Won, Lost), no status, no
    history, Prospecting deals without any date, blank close values on open deals (rows shaped as in its file)."""
    rows = ["opportunity_id,sales_agent,product,account,deal_stage,engage_date,close_date,close_value",
            "1C1I7A6R,Moses Frase,GTX Plus Basic,Cancity,Won,2016-10-20,2017-03-01,1054",
            "Z063OYW0,Darcel Schlecht,GTXPro,Isdom,Lost,2016-10-25,2017-03-11,0",
            "EC4QE1BX,Darcel Schlecht,MG Special,Cancity,Engaging,2016-10-25,,",
            "HAXMC4IX,James Ascencio,MG Advanced,,Prospecting,,,"]
    data, report = inspect_deal_history(write("sales_pipeline.csv", "\r\n".join(rows) + "\r\n"), None,
                                        load_config(write("maven.toml", MAVEN_CONFIG)))
    assert report.ok, report.summary()
    deals = data.deals.set_index("deal_id")
    assert deals["status"].to_dict() == {"1C1I7A6R": "won", "Z063OYW0": "lost", "EC4QE1BX": "open"}
    assert set(deals["stage"]) == {"Engaging"}
    assert [(s.column, s.rows) for s in report.set_aside if s.column == "created_at"] == [("created_at", (5,))]


def test_a_nan_amount_is_a_blank_amount_set_aside_not_an_empty_cell_refused(write):
    text = GOOD_DEALS.replace("D4,2024-02-01,8000,", "D4,2024-02-01,NaN,")
    data, report = inspect_deal_history(write("deals.csv", text))
    assert report.ok and data.deals.set_index("deal_id")["amount"].isna().to_dict()["D4"]
    assert [(s.column, s.rows, s.kept) for s in report.set_aside] == [("amount", (5,), True)]


def test_the_canonical_names_are_read_as_people_write_them(write):
    """``Deal ID``, ``Created At``, ``closedAt``: the canonical columns written in title case with spaces or run
    together are the same columns, in the deals file and the history."""
    header, *rows = GOOD_DEALS.splitlines()
    header = "Deal ID,Created At,Amount,Stage,Status,closedAt,Stage Entered At,Expected Close Date,Segment,Seats"
    history = GOOD_HISTORY.replace("deal_id,stage,entered_at", "Deal ID,Stage,Entered At")
    data = load_deal_history(write("deals.csv", "\n".join([header, *rows]) + "\n"), write("history.csv", history))
    plain = load_deal_history(write("plain.csv", GOOD_DEALS), write("plain_history.csv", GOOD_HISTORY))
    pd.testing.assert_frame_equal(data.deals.drop(columns=["Segment", "Seats"]),
                                  plain.deals.drop(columns=["segment", "seats"]))
    assert data.features == {"Segment": "categorical", "Seats": "numeric"}


def test_deals_to_score_read_numeric_text_by_the_declared_number_format():
    """A config's number format applies to the open deals scored as to the history's files (a European "24.729"
    employees is 24,729 there, not 24.7), by file and by request alike."""
    from scoring.data.config import PipelineConfig
    from scoring.data.open_deals import check_open_deals

    deals = {"deal_id": ["a", "b", "c"], "stage": ["Lead"] * 3, "amount": np.array([1.0, 2.0, 3.0]),
             "created_at": np.array(["2025-01-01"] * 3, dtype="datetime64[us]"), "seats": ["24.729", "988", "1.200"]}
    columns, _ = check_open_deals(deals, PipelineConfig(number_format="1.234,56"), {"seats": "numeric"},
                                  pd.Timestamp("2025-06-30"))
    assert columns["seats"].tolist() == [24729.0, 988.0, 1200.0]
