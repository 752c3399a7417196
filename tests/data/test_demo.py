"""The demo generator: deterministic, realistic, and its outcomes follow the truth it records."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from scoring.data.contract import load_deal_history
from scoring.data.demo import DemoCompany
from scoring.data.summary import check_sufficiency

END = "2025-06-30"


@pytest.fixture(scope="module")
def demo():
    return DemoCompany().generate(20_000, seed=11, end=END)


def test_same_seed_same_files(tmp_path):
    a = DemoCompany().generate(500, seed=5, end=END).write(tmp_path / "a")
    b = DemoCompany().generate(500, seed=5, end=END).write(tmp_path / "b")
    c = DemoCompany().generate(500, seed=6, end=END).write(tmp_path / "c")
    assert [p.read_bytes() for p in a] == [p.read_bytes() for p in b]
    assert a[0].read_bytes() != c[0].read_bytes()
    assert [p.name for p in a] == ["deals.csv", "stage_history.csv", "field_history.csv", "open_deals.csv", "pipeline.toml",
                                   "truth.csv", "truth.json", "truth_bookings.csv"]


def _within(observed: np.ndarray, expected: np.ndarray, z: float = 4.0) -> None:
    """Mean outcome matches mean probability within z standard errors (sum of Bernoulli variances)."""
    se = np.sqrt(np.sum(expected * (1 - expected))) / len(expected)
    assert abs(observed.mean() - expected.mean()) < z * se, (observed.mean(), expected.mean(), se)


def test_outcomes_match_true_probability_at_creation(demo):
    truth = demo.truth
    won = (truth["eventual_status"] == "won").to_numpy(float)
    p = truth["true_win_probability_at_creation"].to_numpy()
    _within(won, p)
    for part in np.array_split(np.argsort(p), 10):  # deciles of the true probability: calibrated everywhere
        _within(won[part], p[part])
    for segment in demo.company.segment.values:
        mask = (demo.deals["segment"] == segment).to_numpy()
        _within(won[mask], p[mask])


def test_open_deals_outcomes_match_truth_given_stage_and_time_in_stage(demo):
    truth = demo.truth.dropna(subset=["true_win_probability_at_end"])
    assert len(truth) > 500
    won = (truth["eventual_status"] == "won").to_numpy(float)
    p = truth["true_win_probability_at_end"].to_numpy()
    _within(won, p)
    for part in np.array_split(np.argsort(p), 4):
        _within(won[part], p[part])


def test_true_probability_falls_as_a_deal_sits_in_a_stage(demo):
    company = demo.company
    deal = demo.deals.iloc[[0]]
    for stage in company.stages:
        p = [company.win_probability(deal, [stage], days)[0] for days in (1, 10, 30, 60, 120, 240)]
        assert all(a > b for a, b in zip(p, p[1:])), (stage, p)
        assert p[0] > 1.5 * p[-1]


def test_the_company_looks_like_a_real_one(demo):
    deals, history = demo.deals, demo.history
    closed = deals[deals["status"] != "open"]
    rates = closed.groupby("segment")["status"].apply(lambda s: (s == "won").mean())
    assert rates["SMB"] > rates["Mid-Market"] > rates["Enterprise"]
    sizes = deals.groupby("segment")["amount"].median()
    assert sizes["SMB"] < sizes["Mid-Market"] < sizes["Enterprise"]
    # log-normal sizes: log(amount) roughly symmetric within a segment
    logs = np.log(deals.loc[deals["segment"] == "Mid-Market", "amount"])
    assert abs(logs.mean() - logs.median()) < 0.05
    # losers linger in their last stage longer than winners
    days = (closed["closed_at"] - closed["stage_entered_at"]).dt.days
    assert days[closed["status"] == "lost"].median() > 1.3 * days[closed["status"] == "won"].median()
    # growth: the last year has more new deals than the first
    year = deals["created_at"].dt.year
    assert (deals["created_at"] > pd.Timestamp(END) - pd.Timedelta(days=365)).sum() > (year == year.min()).sum()
    # stage skips and regressions both happen, rarely
    order = {s: i for i, s in enumerate(demo.company.stages)}
    step = history.assign(i=history["stage"].map(order)).groupby("deal_id")["i"].diff().dropna()
    assert 0 < (step == 2).mean() < 0.1 and 0 < (step == -1).mean() < 0.05
    # deals still open at the end, each with a rep's expected close date
    open_deals = demo.open_deals
    assert len(open_deals) > 200 and open_deals["expected_close_date"].notna().all()
    assert set(open_deals.columns) >= {"deal_id", "stage", "amount", "created_at", "stage_entered_at"}
    assert "status" not in open_deals.columns


def test_demo_files_pass_the_data_contract(tmp_path):
    paths = {p.name: p for p in DemoCompany().generate(3000, seed=2, end=END).write(tmp_path)}
    data = load_deal_history(paths["deals.csv"], paths["stage_history.csv"],
                             field_history=paths["field_history.csv"])
    assert data.report.ok and not data.report.set_aside and not data.report.warnings
    assert check_sufficiency(data).ok
    assert set(data.features) == {"segment", "source", "region", "owner", "product", "employees",
                                  "close_date_pushes", "days_to_close_date"}
    truth = pd.read_csv(paths["truth.csv"])
    assert "true_win_probability_at_creation" not in pd.read_csv(paths["deals.csv"]).columns  # the truth never leaks
    assert len(truth) == 3000


def test_bad_arguments():
    with pytest.raises(ValueError, match="n_deals must be at least 1"):
        DemoCompany().generate(0)


def test_market_shocks_move_whole_quarters_and_leave_the_deals_themselves_alone():
    calm = DemoCompany().generate(6000, seed=4, end=END)
    shaken = DemoCompany(shock_sd=0.6).generate(6000, seed=4, end=END)
    assert calm.deals["created_at"].equals(shaken.deals["created_at"])
    assert calm.deals["amount"].equals(shaken.deals["amount"])

    def quarterly_win_rates(demo) -> pd.Series:
        decided = demo.deals[demo.deals["status"] != "open"]
        return decided["status"].eq("won").groupby(decided["closed_at"].dt.to_period("Q")).mean().iloc[2:-1]

    assert quarterly_win_rates(shaken).std() > 1.5 * quarterly_win_rates(calm).std()
    assert shaken.shocks is not None and calm.shocks is None


def test_deals_nobody_works_stay_open_in_their_first_stage_and_their_truth_says_so():
    calm = DemoCompany().generate(6000, seed=4, end=END)
    idle = DemoCompany(dormant_share=0.2).generate(6000, seed=4, end=END)
    assert calm.deals["created_at"].equals(idle.deals["created_at"]) and calm.deals["amount"].equals(idle.deals["amount"])
    assert not calm.truth["dormant"].any()
    dormant = idle.truth["dormant"].to_numpy()
    assert dormant.mean() == pytest.approx(0.2, abs=0.02)
    deals = idle.deals[dormant]
    assert (deals["status"] == "open").all() and deals["closed_at"].isna().all()
    assert (deals["stage_entered_at"] == deals["created_at"]).all()  # never moved
    assert set(deals["stage"]) <= set(idle.company.stages[:2])  # the first stage, or the second for direct entries
    assert (idle.truth.loc[dormant, ["true_win_probability_at_creation", "true_win_probability_at_end"]]
            .fillna(0) == 0).all().all()
    assert idle.dormant_open().sum() == dormant.sum() and not calm.dormant_open().any()
    worked = idle.deals[~dormant]  # the others live as in the company without idle deals
    assert worked["status"].value_counts(normalize=True)["won"] == pytest.approx(
        calm.deals["status"].value_counts(normalize=True)["won"], abs=0.03)
    quiet, busy = (demo.bookings_truth("quarter", 2, replicates=200) for demo in (idle, calm))
    ratio = quiet["new_deals_expected"].to_numpy()[1:] / busy["new_deals_expected"].to_numpy()[1:]  # the first: a day
    assert ratio == pytest.approx(0.8, abs=0.06)  # a fifth of the new deals never win either
    with pytest.raises(ValueError, match="dormant_share"):
        DemoCompany(dormant_share=1.0).generate(10)


def test_the_true_bookings_replay_the_open_deals_and_the_new_ones(tmp_path):
    demo = DemoCompany().generate(4000, seed=6, end="2025-04-01")
    truth = demo.bookings_truth("quarter", 2, replicates=300)
    assert truth["start"].astype(str).tolist() == ["2025-04-01", "2025-07-01", "total"]
    first = truth.iloc[0]
    # The open deals' part agrees with the generator's own P(won within the quarter) of each open deal.
    deals = demo.open_deals
    days = (demo.end - deals["stage_entered_at"]).dt.total_seconds() / 86400
    p = demo.company.win_within(deals, deals["stage"], days, [91.0], samples=1000, seed=1)[:, 0]
    assert first["pipeline_expected"] == pytest.approx(p @ deals["amount"].to_numpy(), rel=0.04)
    assert 0 < first["new_deals_expected"] < truth.iloc[1]["new_deals_expected"]
    assert first["bookings_p10"] < first["bookings_expected"] < first["bookings_p90"]
    assert first["bookings_expected"] == pytest.approx(first["booked"] + first["pipeline_expected"]
                                                       + first["new_deals_expected"])
    written = demo.write(tmp_path)
    assert tmp_path / "truth_bookings.csv" in written
    assert set(pd.read_csv(tmp_path / "truth_bookings.csv")["period"]) == {"quarter", "month"}


def test_the_reps_close_dates_are_a_field_history_that_ends_as_the_deals_say():
    demo = DemoCompany().generate(2000, seed=4, end=END)
    fh = demo.field_history
    assert fh is not None and set(fh["field"]) == {"expected_close_date"}
    assert (fh["changed_at"] <= pd.Timestamp(END)).all()  # nothing after the day it is observed
    last = fh.groupby("deal_id").last()
    deals = demo.deals.set_index("deal_id")
    open_ids = deals.index[deals["status"] == "open"]
    assert (pd.to_datetime(last.loc[open_ids, "value"]) == deals.loc[open_ids, "expected_close_date"]).all()
    closed = deals[deals["status"] != "open"]
    # on closing the CRM overwrites the close date with the day it closed (why its current value never trains)
    assert (pd.to_datetime(last.loc[closed.index, "value"]) == closed["closed_at"].dt.normalize()).all()
    assert (last.loc[closed.index, "changed_at"] == closed["closed_at"]).all()
    created = fh.groupby("deal_id")["changed_at"].first()
    assert (created == deals.loc[created.index, "created_at"]).all()  # a first guess when the deal is created
