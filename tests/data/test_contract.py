"""The data contract: reading, mapping and refusing each kind of bad data with a located message."""
from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from scoring.data.columns import casesafe
from scoring.data.config import PipelineConfig
from scoring.data.contract import inspect_deal_history, load_deal_history, read_open_deals
from scoring.data.presets import load_config
from scoring.data.tables import ROW
from scoring.errors import DataError
from scoring.forecast.topdown import past_bookings
from tests.conftest import GOOD_DEALS, GOOD_HISTORY


def test_good_files_load_into_canonical_tables(write):
    data = load_deal_history(write("deals.csv", GOOD_DEALS), write("history.csv", GOOD_HISTORY))
    deals = data.deals
    assert list(deals["deal_id"]) == ["D1", "D2", "D3", "D4"]
    assert deals["amount"].tolist() == [12000.0, 55000.5, 0.0, 8000.0]
    assert deals["created_at"].dtype.kind == "M" and deals["closed_at"].dtype.kind == "M"
    assert deals.loc[2, "closed_at"] == pd.Timestamp("2024-02-15 17:00")  # Z suffix read as UTC
    assert data.features == {"segment": "categorical", "seats": "numeric"}
    assert len(data.history) == 10 and data.has_history
    assert data.report.ok and not data.report.warnings and not data.report.set_aside


def test_parquet_reads_like_csv(write, tmp_path: Path):
    csv = load_deal_history(write("deals.csv", GOOD_DEALS))
    frame = pd.read_csv(write("d2.csv", GOOD_DEALS))
    frame["amount"] = frame["amount"].astype(float)
    frame.to_parquet(tmp_path / "deals.parquet")
    pq = load_deal_history(tmp_path / "deals.parquet")
    pd.testing.assert_frame_equal(csv.deals.drop(columns=[ROW]), pq.deals.drop(columns=[ROW]), check_dtype=False)


def _errors(write, deals: str, history: str | None = None, config: PipelineConfig | None = None):
    data, report = inspect_deal_history(write("deals.csv", deals),
                                        write("history.csv", history) if history else None, config)
    assert data is None, "bad data must not load"
    with pytest.raises(DataError):
        load_deal_history(write("deals.csv", deals), write("history.csv", history) if history else None, config)
    return report.errors


def _replace(line_no: int, new: str) -> str:
    lines = GOOD_DEALS.splitlines()
    lines[line_no - 1] = new
    return "\n".join(lines) + "\n"


# Each bad input: the deals text, the column the error must name, the spreadsheet rows, a phrase.
BAD = {
    "missing required column": (GOOD_DEALS.replace("status", "state", 1), None, (), "missing required column(s) status"),
    "duplicate deal_id": (_replace(3, "D1,2024-01-06,1,Lead,open,,,,SMB,1"), "deal_id", (2, 3), "duplicate deal_id 'D1'"),
    "negative amount": (_replace(2, "D1,2024-01-05,-12,Lead,open,,,,SMB,1"), "amount", (2,), "expected a number >= 0"),
    "non-numeric amount": (_replace(2, "D1,2024-01-05,12k,Lead,open,,,,SMB,1"), "amount", (2,), "got '12k'"),
    "unparseable date": (_replace(3, "D2,2024-02-30,5,Proposal,won,2024-03-01,,,SMB,1"), "created_at", (3,),
                         "expected a date (ISO 8601"),
    "unknown stage": (_replace(4, "D3,2024-01-07,5,Discovery,lost,2024-02-15,,,SMB,1"), "stage", (4,),
                      "unknown stage 'Discovery'"),
    "won without closed_at": (_replace(3, "D2,2024-01-06,5,Proposal,won,,,,SMB,1"), "closed_at", (3,),
                              "needs the date it closed"),
    "lost without closed_at": (_replace(4, "D3,2024-01-07,5,Qualified,lost,,,,SMB,1"), "closed_at", (4,),
                               "needs the date it closed"),
    "closed_at before created_at": (_replace(3, "D2,2024-01-06,5,Proposal,won,2023-12-01,,,SMB,1"), "closed_at", (3,),
                                    "closed_at is before created_at"),
    "bad status": (_replace(5, "D4,2024-02-01,5,Negotiation,pending,,,,SMB,1"), "status", (5,), "got 'pending'"),
    "empty deal_id": (_replace(5, ",2024-02-01,5,Negotiation,open,,,,SMB,1"), "deal_id", (5,), "cell is empty"),
    "implausible date": (_replace(5, "D4,9999-12-31,5,Negotiation,open,,,,SMB,1"), "created_at", (5,), "got '9999-12-31'"),
}


@pytest.mark.parametrize("case", BAD, ids=list(BAD))
def test_each_kind_of_bad_data_is_refused_with_its_location(write, case):
    text, column, rows, phrase = BAD[case]
    errors = _errors(write, text)
    match = [e for e in errors if phrase in str(e)]
    assert match, f"no error says {phrase!r}: {[str(e) for e in errors]}"
    assert match[0].column == column and match[0].rows == rows
    assert match[0].source.endswith("deals.csv")
    if column:
        assert f"column '{column}'" in str(match[0])


def test_all_problems_are_reported_at_once(write):
    text = _replace(2, "D1,2024-01-05,-1,Lead,open,,,,SMB,1").replace("D4,2024-02-01,8000,Negotiation",
                                                                        "D4,2024-02-01,8000,Demo")
    assert {e.column for e in _errors(write, text)} == {"amount", "stage"}


def test_history_for_unknown_deals_is_set_aside_or_refused_when_strict(write):
    """A report filtered on deals still lists their history: set aside (and named), refused by --strict."""
    deals, history = write("deals.csv", GOOD_DEALS), write("history.csv", GOOD_HISTORY + "D9,Lead,2024-01-05\n")
    data, report = inspect_deal_history(deals, history)
    assert data is not None and "D9" not in set(data.history["deal_id"])
    aside = [s for s in report.set_aside if s.column == "deal_id"]
    assert [(s.rows, s.source.endswith("history.csv")) for s in aside] == [((12,), True)] and "'D9'" in str(aside[0])
    _, strict = inspect_deal_history(deals, history, strict=True)
    assert [(e.column, e.rows) for e in strict.errors] == [("deal_id", (12,))]
    assert "'D9'" in str(strict.errors[0]) and "history.csv" in str(strict.errors[0])


def test_strict_for_a_crms_writes_keeps_a_blank_amount_and_still_refuses_rows_left_out(write):
    """The pipeline store's writes are strict but for rows kept without a value: a deal with a blank amount is
    kept (as without --strict), history of an unknown deal is still refused."""
    deals = write("deals.csv", _replace(2, "D1,2024-01-05,,Lead,open,,2024-01-05,2024-06-30,SMB,10"))
    history = write("history.csv", GOOD_HISTORY + "D9,Lead,2024-01-05\n")
    _, strict = inspect_deal_history(deals, history, strict=True)
    assert {e.column for e in strict.errors} == {"amount", "deal_id"}
    _, writes = inspect_deal_history(deals, history, strict=True, writes=True)
    assert [e.column for e in writes.errors] == ["deal_id"]
    assert [(s.column, s.kept) for s in writes.set_aside] == [("amount", True)]


def test_history_with_unknown_stage_or_bad_date_is_refused(write):
    errors = _errors(write, GOOD_DEALS, GOOD_HISTORY + "D1,Demo,2024-01-06\nD1,Qualified,someday\n")
    assert {(e.column, e.rows) for e in errors} == {("stage", (12,)), ("entered_at", (13,))}


def test_missing_history_column_is_named(write):
    errors = _errors(write, GOOD_DEALS, GOOD_HISTORY.replace("entered_at", "when", 1))
    assert "missing required column(s) entered_at" in str(errors[0])


def test_rows_set_aside_are_counted_not_silently_dropped(write):
    history = GOOD_HISTORY + "D2,Proposal,2024-02-01\nD2,Proposal,2024-02-05\nD3,Proposal,2024-06-01\nD2,Won,2024-03-01\n"
    data = load_deal_history(write("deals.csv", GOOD_DEALS), write("history.csv", history))
    aside = {a.reason.split(":")[0].split(" (")[0]: a.rows for a in data.report.set_aside}
    assert aside == {
        "won/lost rows": (15,),
        "repeats of the stage the deal was already in": (12, 13),
        "stage entered after the deal closed": (14,),
    }
    assert len(data.history) == 10
    assert len(pd.read_csv(write("h.csv", history))) == len(data.history) + sum(a.count for a in data.report.set_aside)


def test_closed_at_can_come_from_a_won_history_row(write):
    deals = GOOD_DEALS.replace("D2,2024-01-06T09:30:00,55000.50,Proposal,won,2024-03-01",
                               "D2,2024-01-06T09:30:00,55000.50,Proposal,won,")
    data = load_deal_history(write("deals.csv", deals), write("history.csv", GOOD_HISTORY + "D2,Closed Won,2024-03-02\n"))
    assert data.deals.loc[1, "closed_at"] == pd.Timestamp("2024-03-02")
    assert any("took closed_at" in n for n in data.report.notes)


def test_closed_deal_exported_with_outcome_stage_gets_last_open_stage_from_history(write):
    deals = GOOD_DEALS.replace("55000.50,Proposal,won", "55000.50,Closed Won,won")
    data = load_deal_history(write("deals.csv", deals), write("history.csv", GOOD_HISTORY))
    assert data.deals.loc[1, "stage"] == "Proposal"
    errors = _errors(write, deals)  # without history the last open stage is unknown
    assert errors[0].column == "stage" and errors[0].rows == (3,) and "--history" in str(errors[0])


def test_stage_and_status_matching_ignores_case_and_uses_value_maps(write):
    deals = GOOD_DEALS.replace("Lead,open", "  lead ,OPEN").replace("Qualified,lost", "Discovery,Closed Lost")
    config = PipelineConfig.from_dict({"values": {"stage": {"Discovery": "Qualified"}}})
    data = load_deal_history(write("deals.csv", deals), config=config)
    assert data.deals["stage"].tolist() == ["Lead", "Proposal", "Qualified", "Negotiation"]
    assert data.deals["status"].tolist() == ["open", "won", "lost", "open"]


def test_column_mapping_from_config(write):
    deals = GOOD_DEALS.replace("deal_id,created_at,amount", "Opp,Opened,Value", 1)
    config = PipelineConfig.from_dict({"columns": {"deal_id": "Opp", "created_at": ["Created", "Opened"],
                                                   "amount": "Value"}})
    assert load_deal_history(write("deals.csv", deals), config=config).deals["deal_id"].tolist() == ["D1", "D2", "D3", "D4"]


def test_date_format_from_config(write):
    deals = GOOD_DEALS.replace("2024-01-05,12000", "01/05/2024,12000")
    assert _errors(write, deals)[0].column == "created_at"
    config = PipelineConfig.from_dict({"date_format": "mixed"})
    assert load_deal_history(write("deals.csv", deals), config=config).deals.loc[0, "created_at"] == pd.Timestamp("2024-01-05")


def test_semicolon_separated_export(write):
    data = load_deal_history(write("deals.csv", GOOD_DEALS.replace(",", ";")))
    assert len(data.deals) == 4
    # commas in its cells, more in some rows than others (amounts written with thousands separators): still
    # semicolon-separated, by its header
    text = GOOD_DEALS.replace(",", ";").replace(";55000.50;", ";USD 1,055,000.50;").replace(";SMB;10", ";SMB, EMEA;10")
    data = load_deal_history(write("deals.csv", text))
    assert data.deals["amount"].tolist()[:2] == [12000.0, 1055000.5] and data.deals["segment"][0] == "SMB, EMEA"


def test_feature_columns_that_would_leak_or_identify_are_set_aside(write):
    n = 25
    rows = "\n".join(f"X{i},2024-01-{i + 1:02d},{i * 100},Lead,open,,Name {i},2024-05-{i + 1:02d},,A" for i in range(n))
    text = "deal_id,created_at,amount,stage,status,closed_at,name,last_activity,empty,kind\n" + rows + "\n"
    data = load_deal_history(write("deals.csv", text), config=PipelineConfig.from_dict({"ignore_columns": ["kind"]}))
    assert data.features == {}
    warnings = " ".join(str(w) for w in data.report.warnings)
    assert "'name'" in warnings and "'last_activity'" in warnings and "'empty'" in warnings


def test_unreadable_files_get_a_clear_error(tmp_path: Path, write):
    with pytest.raises(DataError, match="file not found"):
        load_deal_history(tmp_path / "nope.csv")
    with pytest.raises(DataError, match="unsupported file type"):
        load_deal_history(write("deals.json", "x"))
    with pytest.raises(DataError, match="not a readable workbook .*export the report as .xlsx or CSV"):
        load_deal_history(write("deals.xlsx", "x"))
    with pytest.raises(DataError, match="missing required column"):  # an HTML table saved as .xls: read as one
        load_deal_history(write("deals.xls", "<table><tr><td>deal_id</td></tr></table>"))
    binary = tmp_path / "binary.csv"  # bytes no text encoding of a spreadsheet or CRM writes
    binary.write_bytes(b"deal_id,created_at\n\x81\x8d\xc3,2024-01-01\n")
    with pytest.raises(DataError, match="neither UTF-8, UTF-16 nor Windows-1252 text"):
        load_deal_history(binary)


@pytest.mark.parametrize(("name", "encoding", "sep", "note"), [
    ("deals.csv", "utf-8-sig", ",", None),
    ("deals.csv", "cp1252", ",", "read as Windows-1252"),  # Excel's CSV on Windows; Salesforce's ISO-8859-1
    ("deals.csv", "cp1252", ";", "read as Windows-1252"),  # ... in a European locale
    ("deals.txt", "utf-16", "\t", "read as UTF-16"),  # Excel's "Unicode Text"
])
def test_csv_in_the_encodings_spreadsheets_and_crms_write_is_read_and_said(tmp_path: Path, name, encoding, sep, note):
    text = GOOD_DEALS.replace("segment", "owner").replace("SMB,10", "José Müller,10").replace(",", sep)
    path = tmp_path / name
    path.write_bytes(text.encode(encoding))
    data = load_deal_history(path)
    assert data.deals["owner"].iloc[0] == "José Müller" and len(data.deals) == 4
    said = [n for n in data.report.notes if "not UTF-8" in n]
    assert said == [] if note is None else (len(said) == 1 and note in said[0] and str(path) in said[0])


def test_lines_ended_by_a_carriage_return_alone_are_lines(tmp_path: Path, write):
    """Excel for Mac's "CSV (Macintosh)" ends lines with \r alone: read as the same file with \n (it crashed the
    reader), a short row still counted as short."""
    path = tmp_path / "deals.csv"
    path.write_bytes(GOOD_DEALS.replace("\n", "\r").encode("cp1252"))
    pd.testing.assert_frame_equal(load_deal_history(path).deals, load_deal_history(write("unix.csv", GOOD_DEALS)).deals)
    path.write_bytes(GOOD_DEALS.replace("SMB,10\n", "SMB\n").replace("\n", "\r").encode("cp1252"))
    assert [e.rows for e in inspect_deal_history(path)[1].errors if "fewer cells" in e.message] == [(2,)]


def test_digest_depends_on_content_only(write):
    a = load_deal_history(write("a.csv", GOOD_DEALS)).digest()
    b = load_deal_history(write("b.csv", GOOD_DEALS)).digest()
    c = load_deal_history(write("c.csv", GOOD_DEALS.replace("12000", "12001"))).digest()
    assert a == b != c


def test_a_column_twice_is_refused_naming_it_not_a_crash(write):
    # "segment" and "segment " (a trailing space, as exports have) are one column name twice once trimmed
    deals = write("deals.csv", "deal_id,created_at,amount,stage,status,closed_at,segment,segment \n"
                               "D1,2024-01-01,100,Lead,open,,SMB,Enterprise\n")
    report = inspect_deal_history(deals)[1]
    assert not report.ok
    assert any("segment" in p.message and "more than once" in p.message for p in report.errors)


@pytest.mark.parametrize("kind", ["csv", "xlsx"])
def test_a_reports_title_lines_above_its_header_are_skipped_and_rows_keep_their_numbers(tmp_path: Path, kind):
    """Exports of formatted reports put a title, the filters and who ran them above the header: those lines
    are not data, and a problem still names the row a spreadsheet shows."""
    rows = [line.split(",") for line in GOOD_DEALS.replace("2024-01-07", "yesterday").strip().splitlines()]
    top = [["Opportunity Pipeline"], ["Filtered By: Close Date equals THIS YEAR", "Jane Doe"], [""]]
    path = tmp_path / f"report.{kind}"
    if kind == "csv":
        path.write_text("\n".join(",".join(f'"{c}"' for c in row) for row in top + rows) + "\n", encoding="utf-8")
    else:
        width = len(rows[0])
        pd.DataFrame([r + [None] * (width - len(r)) for r in top + rows]).to_excel(path, index=False, header=False)
    data, report = inspect_deal_history(path)
    assert [(e.column, e.rows) for e in report.errors] == [("created_at", (7,))]  # D3: title, filters, blank, header
    assert any("the header is on row 4" in n for n in report.notes)


def test_a_file_whose_text_holds_other_separators_keeps_its_first_line_as_the_header(tmp_path: Path):
    path = tmp_path / "deals.csv"
    path.write_text(GOOD_DEALS.replace("segment", "notes").replace("SMB,10", '"a;b;c;d",10'), encoding="utf-8")
    data = load_deal_history(path)
    assert data.deals[ROW].tolist() == [2, 3, 4, 5] and not any("header is on row" in n for n in data.report.notes)


def test_exports_joined_one_after_another_have_their_repeated_headers_set_aside(write):
    """Two months' exports pasted into one file: the second one's header is a row of column names, set aside and
    counted (a refusal per column, as before, said 'expected a number, got amount'); --strict refuses it."""
    header, *rows = GOOD_DEALS.splitlines()
    later = [row.replace("D", "E", 1) for row in rows]
    joined = "\n".join([header, *rows, f" {header}", *later]) + "\n"  # a stray space: still the header
    hist_header, *entries = GOOD_HISTORY.splitlines()
    history = "\n".join([hist_header, *entries, hist_header, *(e.replace("D", "E", 1) for e in entries)]) + "\n"
    data, report = inspect_deal_history(write("deals.csv", joined), write("history.csv", history))
    assert data is not None, report.summary()
    assert len(data.deals) == 2 * len(rows) and len(data.history) == 2 * len(entries)
    aside = [s for s in report.set_aside if s.reason.startswith("repeated header lines")]
    assert [s.rows for s in aside] == [(len(rows) + 2,), (len(entries) + 2,)]
    _, strict = inspect_deal_history(write("deals.csv", joined), write("history.csv", history), strict=True)
    assert not strict.ok
    # a deal whose first cell happens to be the first column's name is a deal
    named = GOOD_DEALS + "deal_id,2024-02-02,100,Lead,open,,2024-02-02,,SMB,3\n"
    assert "deal_id" in load_deal_history(write("named.csv", named)).deals["deal_id"].tolist()


def test_history_of_a_file_whose_every_deal_is_unusable_is_refused_with_the_reasons():
    """Every deal set aside (a blank id: a carriage return, as a fuzzer sent it) left the history nothing to look its
    deals' dates up in; that raised pandas' TypeError (a 500 from PUT /v1/deals), not the data's own errors."""
    deals = pd.DataFrame({"deal_id": ["\r"], "created_at": ["2000-01-01T00:00:00Z"], "amount": [1.0],
                          "stage": ["Lead"], "status": ["won"], "closed_at": ["2000-02-01"]})
    history = pd.DataFrame({"deal_id": ["\r"], "stage": ["Lead"], "entered_at": ["2000-01-01T00:00:00Z"]})
    with pytest.raises(DataError, match="column 'deal_id', row 2: expected a deal identifier, the cell is empty"):
        load_deal_history(deals, history)


def test_a_deal_written_twice_cell_for_cell_is_read_once_and_other_repeats_say_what_differs(write):
    """Exports joined or a report's rows repeated write a deal twice, the same cells: read once, the repeat set
    aside and counted (--strict too: nothing is lost). A report of one row per product line repeats a deal with
    other cells: refused, the error naming the columns its rows differ in."""
    lines = GOOD_DEALS.splitlines()
    data = load_deal_history(write("twice.csv", "\n".join([*lines, lines[2], lines[4]]) + "\n"))
    assert data.deals["deal_id"].tolist() == ["D1", "D2", "D3", "D4"]
    assert [(s.rows, s.folded) for s in data.report.set_aside] == [((6, 7), True)]
    assert load_deal_history(write("twice.csv", "\n".join([*lines, lines[2]]) + "\n"), strict=True).report.set_aside
    header = lines[0] + ",Product Name,Total Price"
    products = [header, *(line + ",Widget,100" for line in lines[1:]), lines[2] + ",Gadget,250"]
    errors = _errors(write, "\n".join(products) + "\n")
    assert [(e.column, e.rows) for e in errors if "duplicate deal_id" in str(e)] == [("deal_id", (3, 6))]
    assert "their rows differ in 'Product Name', 'Total Price'" in str(errors[0])


def test_a_status_in_the_users_language_is_read(write):
    """CRMs export the status translated (Pipedrive in German: Offen, Gewonnen, Verloren; French: Ouvert, Gagné,
    Perdu): read as open, won and lost, as in English; a word that is none is still refused."""
    for words in (("Offen", "Gewonnen", "Verloren"), ("ouvert", "GAGNÉ", "Perdu"), ("Active", "Won", "Abandoned")):
        text = GOOD_DEALS.replace(",open,", f",{words[0]},").replace(",won,", f",{words[1]},").replace(",lost,", f",{words[2]},")
        assert load_deal_history(write("deals.csv", text)).deals["status"].tolist() == ["open", "won", "lost", "open"]
        assert read_open_deals(write("deals.csv", text))[0]["deal_id"].tolist() == ["D1", "D4"]  # to score: open ones
    errors = _errors(write, GOOD_DEALS.replace(",won,", ",Gewonen,"))
    assert [e.rows for e in errors if "got 'Gewonen'" in str(e)] == [(3,)]


def test_an_open_deals_close_date_is_the_date_it_is_expected_to_close(write):
    """One close date column, as Salesforce, HubSpot, Zoho and SuiteCRM keep it (the planned close while a deal is
    open, the actual once closed): an open deal's is its expected_close_date, said in a note; beside an
    expected_close_date of its own, it is ignored with a warning, as before."""
    text = GOOD_DEALS.replace("D1,2024-01-05,12000,Lead,open,,2024-01-05,2024-06-30", "D1,2024-01-05,12000,Lead,open,2024-07-31,2024-01-05,")
    text = text.replace("D4,2024-02-01,8000,Negotiation,open,,2024-04-01,2024-05-15", "D4,2024-02-01,8000,Negotiation,open,2024-06-01,2024-04-01,2024-05-15")
    data = load_deal_history(write("deals.csv", text))
    deals = data.deals.set_index("deal_id")
    assert deals.loc["D1", "expected_close_date"] == pd.Timestamp("2024-07-31") and pd.isna(deals.loc["D1", "closed_at"])
    assert deals.loc["D4", "expected_close_date"] == pd.Timestamp("2024-05-15") and pd.isna(deals.loc["D4", "closed_at"])
    assert any("1 open deal(s) with a closed_at" in note for note in data.report.notes)
    assert [w.rows for w in data.report.warnings if "ignored while the deal is open" in w.message] == [(5,)]
    scored = read_open_deals(write("open.csv", text))[0].set_index("deal_id")
    assert scored.loc["D1", "expected_close_date"] == pd.Timestamp("2024-07-31")


def test_ids_excel_rounded_into_scientific_notation_are_refused_saying_why(write):
    """HubSpot's record ids are 11-digit numbers: a CSV opened and saved in Excel holds 1.23457E+10 for each,
    deals merged; refused, saying what Excel did, instead of a list of duplicates."""
    text = GOOD_DEALS.replace("D1,", "1.23457E+10,").replace("D2,", "1.23457E+10,").replace("D3,", "12345678903,")
    errors = _errors(write, text)
    [error] = [e for e in errors if "scientific notation" in str(e)]
    assert error.column == "deal_id" and error.rows == (2, 3) and "'1.23457E+10'" in str(error)


def test_history_ids_whose_leading_zeros_excel_dropped_say_so(write):
    """Ids of digits with leading zeros (0001234) lose them in a file saved from Excel: the history's rows of deals
    not found are set aside as before, and the reason says what the ids differ by."""
    deals = GOOD_DEALS.replace("D1,", "0001,").replace("D2,", "0002,").replace("D3,", "0003,").replace("D4,", "0004,")
    history = GOOD_HISTORY.replace("D1,", "1,").replace("D2,", "2,").replace("D3,", "3,").replace("D4,", "4,")
    _, report = inspect_deal_history(write("deals.csv", deals), write("history.csv", history))
    [aside] = [s for s in report.set_aside if "not in the deals file" in s.reason]
    assert "but for leading zeros" in aside.reason and aside.count == 10
    _, plain = inspect_deal_history(write("deals.csv", GOOD_DEALS), write("history.csv", history))
    assert not any("leading zeros" in s.reason for s in plain.set_aside)


def test_a_row_of_more_cells_than_the_header_is_refused_naming_it(write):
    """A separator inside an unquoted cell (Acme, Inc) makes a row one cell longer: on the first row pandas took
    the first column for an index and shifted every cell of the file (dozens of errors about other columns), on a
    later one it stopped with a tokenizer's message. Refused naming the rows; a trailing separator on every data
    row (cells past the header's width all empty) loses nothing and is read."""
    header, *rows = GOOD_DEALS.strip().splitlines()
    for long_row in (0, 2):
        lines = [header, *(row + ",Acme, Inc" if i == long_row else row + ",Acme" for i, row in enumerate(rows))]
        with pytest.raises(DataError, match=rf"row\(s\) {long_row + 2} have more cells \(12\) than the header \(11\)"):
            load_deal_history(write("deals.csv", "\n".join([header + ",account", *lines[1:]]) + "\n"))
    trailing = "\n".join([header, *(row + "," for row in rows)]) + "\n"
    pd.testing.assert_frame_equal(load_deal_history(write("deals.csv", trailing)).deals,
                                  load_deal_history(write("plain.csv", GOOD_DEALS)).deals)


def _migrated(imported: int, ordinary_days: int = 200) -> tuple[str, str]:
    """A company's deals and stage history after a move into its CRM on 2024-06-03: ``imported`` old deals, closed
    long before, were created that day (a CRM dates a record's creation the day it is made), their history an entry
    of their last stage that day, beside a deal a day of its own since."""
    rows = ["deal_id,created_at,amount,stage,status,closed_at,segment"]
    history = ["deal_id,stage,entered_at"]
    for i in range(imported):
        closed = pd.Timestamp("2023-01-02") + pd.Timedelta(days=i % 300)
        rows.append(f"M{i},2024-06-03T09:{i % 60:02d},{1000 + i},Proposal,{'won' if i % 3 else 'lost'},{closed:%Y-%m-%d},SMB")
        history.append(f"M{i},Proposal,2024-06-03T09:{i % 60:02d}")
    for i in range(ordinary_days):
        created = pd.Timestamp("2024-06-04") + pd.Timedelta(days=i)
        status, closed = ("won", f"{created + pd.Timedelta(days=20):%Y-%m-%d}") if i % 2 else ("open", "")
        rows.append(f"N{i},{created:%Y-%m-%d},{2000 + i},Qualified,{status},{closed},SMB")
        history.append(f"N{i},Qualified,{created:%Y-%m-%d}")
    return "\n".join(rows) + "\n", "\n".join(history) + "\n"


def test_closed_deals_a_move_into_the_crm_imported_are_set_aside_as_such(write):
    """A migrated org's old deals, created in bulk on the import's day after they closed, no longer refuse the
    export: they are set aside (counted, named, with their history), refused by --strict; a few deals closed
    before they were created on ordinary days are still an error, which says what imports look like."""
    deals, history = _migrated(120)
    data, report = inspect_deal_history(write("deals.csv", deals), write("history.csv", history))
    assert data is not None, report.summary()
    assert not data.deals["deal_id"].str.startswith("M").any() and len(data.deals) == 200
    assert not data.history["deal_id"].str.startswith("M").any()
    [deals_aside] = [s for s in report.set_aside if s.source.endswith("deals.csv")]
    assert deals_aside.count == 120 and deals_aside.rows[:2] == (2, 3) and "imported" in deals_aside.reason
    assert "2024-06-03" in deals_aside.reason
    [hist_aside] = [s for s in report.set_aside if s.source.endswith("history.csv")]
    assert hist_aside.count == 120 and "history of closed deals imported" in hist_aside.reason
    # kept for what they booked: a migrated org's past quarters are not empty
    assert len(data.imported) == 120 and data.imported["deal_id"].str.startswith("M").all()
    booked = past_bookings(data.with_imported(), pd.Timestamp("2024-07-01"), "quarter")
    assert booked[pd.Period("2023Q1")] == sum(1000 + i for i in range(120) if i % 3 and i < 89)
    assert past_bookings(data.deals, pd.Timestamp("2024-07-01"), "quarter").index.min() == pd.Period("2024Q2")
    _, strict = inspect_deal_history(write("deals.csv", deals), write("history.csv", history), strict=True)
    assert {e.column for e in strict.errors} == {"created_at", "deal_id"}

    few, few_history = _migrated(3)  # three deals: no import day, a mistake
    _, refused = inspect_deal_history(write("few.csv", few), write("few_h.csv", few_history))
    [error] = refused.errors
    assert error.column == "closed_at" and error.rows == (2, 3, 4) and "imported" in error.message


def test_a_deal_reopened_after_a_lost_row_is_open_without_a_warning(write):
    """A deal lost, then worked again (Salesforce's Opportunity History: Closed Lost, then Prospecting) is open as
    its status says, said in a note; a status the history's last row contradicts is still a warning."""
    history = GOOD_HISTORY + "D1,Closed Lost,2024-02-01\nD1,Lead,2024-03-01\n"
    data, report = inspect_deal_history(write("deals.csv", GOOD_DEALS), write("history.csv", history))
    assert data is not None and not [w for w in report.warnings if "disagrees" in str(w)]
    assert any("re-opened" in n and "'D1'" in n for n in report.notes)
    assert list(data.deals.loc[data.deals["deal_id"] == "D1", "status"]) == ["open"]
    contradicted = GOOD_HISTORY + "D1,Closed Lost,2024-02-01\n"
    _, report = inspect_deal_history(write("deals.csv", GOOD_DEALS), write("history.csv", contradicted))
    assert any("disagrees" in str(w) and "'D1'" in str(w) for w in report.warnings)


SALESFORCE_IDS = {"D1": "0065g00000AbCdE", "D2": "0065g00000xYz12", "D3": "0065G00000QqQqQ", "D4": "0065g00000aaaaa"}


def _salesforce(text: str, long: bool) -> str:
    for deal, id15 in SALESFORCE_IDS.items():
        text = text.replace(f"{deal},", f"{casesafe(id15) if long else id15},")
    return text


@pytest.mark.parametrize("deals_long", [False, True])
def test_salesforce_ids_in_their_other_form_are_the_same_deals(write, deals_long: bool):
    """A Salesforce report writes 15-character ids, the API and Data Loader the 18-character case-safe form: an
    opportunities report beside a history, field history and tasks pulled through the API (or the other way
    round) share no id as written. Each is matched to the deals file's form, said in a note; an id whose last
    three characters do not spell its case is another deal's, set aside as before."""
    assert casesafe("00U20000001Rx6d") == "00U20000001Rx6dEAC"  # Salesforce's documented pair
    deals = write("deals.csv", _salesforce(GOOD_DEALS, deals_long))
    history = write("history.csv", _salesforce(GOOD_HISTORY, not deals_long))
    other = casesafe(SALESFORCE_IDS["D1"])[:15] + "ZZZ"
    changes = write("fh.csv", _salesforce("deal_id,field,value,changed_at\nD4,CloseDate,2024-06-30,2024-03-01\n"
                                          f"{other},CloseDate,2024-06-30,2024-03-01\n", not deals_long))
    tasks = write("tasks.csv", _salesforce("deal_id,occurred_at\nD4,2024-03-02\n", not deals_long))
    data, report = inspect_deal_history(deals, history, field_history=changes, activities=tasks)
    assert data is not None, report.summary()
    expected = pd.read_csv(write("plain.csv", GOOD_HISTORY))
    assert len(data.history) == len(expected) and set(data.history["deal_id"]) == set(data.deals["deal_id"])
    assert len(data.signals.field_history) == 1 and len(data.signals.activities) == 1
    assert set(data.signals.field_history["deal_id"]) == set(data.signals.activities["deal_id"]) == {
        casesafe(SALESFORCE_IDS["D4"]) if deals_long else SALESFORCE_IDS["D4"]}
    assert sum("Salesforce's other form" in n for n in report.notes) == 3
    assert [s.count for s in report.set_aside if s.column == "deal_id"] == [1]  # the id of no deal


def test_times_measured_when_the_export_was_made_are_not_features(write, tmp_path: Path):
    """A report's "Age", "Stage Duration (days)" and "Days since last activity" were measured at the export (to a
    closed deal's close, to today for an open one): learned at each date of a deal's life they would tell its end.
    They are named in a warning, not learned; a company's age is a feature, and keep_columns keeps one."""
    lines = GOOD_DEALS.strip().splitlines()
    extra = ["Age,Stage Duration (days),Days since last activity,Company Age"] + [
        f"{10 * i},{3 * i},{i},{20 + i}" for i in range(1, len(lines))]
    text = "\n".join(f"{a},{b}" for a, b in zip(lines, extra, strict=True)) + "\n"
    data = load_deal_history(write("deals.csv", text))
    assert "Company Age" in data.features and not {"Age", "Stage Duration (days)",
                                                   "Days since last activity"} & set(data.features)
    [warning] = [w for w in data.report.warnings if "measured when the export was made" in str(w)]
    assert "'Age'" in str(warning) and "'Company Age'" not in str(warning)
    config = tmp_path / "pipeline.toml"
    config.write_text('keep_columns = ["Age"]\n')
    kept = load_deal_history(write("deals.csv", text), config=load_config(config))
    assert "Age" in kept.features and "Stage Duration (days)" not in kept.features


def test_open_deals_take_their_stage_entry_from_a_history_of_the_other_salesforce_id_form(write):
    """Scoring reads the stage history as training does: its 18-character ids are the report's 15-character ones."""
    history = _salesforce(GOOD_HISTORY, long=True)
    no_entry = _salesforce(GOOD_DEALS, long=False).replace(",2024-04-01,2024-05-15,", ",,2024-05-15,")
    deals, _ = read_open_deals(write("open.csv", no_entry), history=write("history.csv", history))
    entered = deals.set_index("deal_id")["stage_entered_at"]
    assert entered[SALESFORCE_IDS["D4"]] == pd.Timestamp("2024-04-01")
