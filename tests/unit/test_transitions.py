"""The stage-transition model: censoring handled, truth recovered, staleness lowers P(win)."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.exceptions import NotFittedError

from scoring.data.contract import load_deal_history
from scoring.data.demo import DemoCompany
from scoring.features.dataset import TrainingSet
from scoring.features.snapshots import sojourns, take_snapshots
from scoring.models.transitions import StageTransitionModel
from tests.conftest import GOOD_DEALS, GOOD_HISTORY

END = pd.Timestamp("2025-06-30")


@pytest.fixture(scope="module")
def fitted():
    demo = DemoCompany().generate(15_000, seed=21, end=END)
    data = load_deal_history(demo.deals, demo.history)
    return demo, data, StageTransitionModel().fit(TrainingSet(data, END))


def test_sojourns_end_in_next_stage_outcome_or_censoring(write):
    data = load_deal_history(write("deals.csv", GOOD_DEALS), write("history.csv", GOOD_HISTORY))
    stays = sojourns(data, pd.Timestamp("2024-03-05")).set_index(["deal_id", "stage"])
    assert stays.loc[("D2", "Lead"), "to"] == "Qualified" and stays.loc[("D2", "Lead"), "days"] == pytest.approx(8.6042, abs=1e-3)
    assert stays.loc[("D2", "Proposal"), "to"] == "won"
    assert stays.loc[("D3", "Qualified"), "to"] == "lost"
    assert pd.isna(stays.loc[("D4", "Qualified"), "to"])  # still in Qualified at the cutoff: censored
    assert stays.loc[("D4", "Qualified"), "days"] == 14
    assert ("D4", "Proposal") not in stays.index            # entered after the cutoff: unknown then


def test_rows_of_the_transition_matrix_are_distributions(fitted):
    _, _, model = fitted
    matrix = model.transition_matrix()
    assert np.allclose(matrix.sum(axis=1), 1.0)
    assert matrix.loc["Lead", "Qualified"] > matrix.loc["Lead", "Proposal"] > 0  # skips happen, rarely
    assert matrix.loc["Negotiation", "Proposal"] > 0                              # and regressions
    assert matrix.loc["Lead", "won"] == 0


def test_learned_probabilities_match_the_truth_by_stage(fitted):
    demo, data, model = fitted
    rows = take_snapshots(data, [END]).rows
    truth = demo.truth.set_index("deal_id").loc[rows["deal_id"], "true_win_probability_at_end"].to_numpy()
    frame = pd.DataFrame({"stage": rows["stage"], "model": model.predict_proba(rows), "truth": truth})
    means = frame.groupby("stage")[["model", "truth"]].mean()
    assert np.allclose(means["model"], means["truth"], atol=0.04), means


def test_win_probability_falls_as_a_deal_goes_stale(fitted):
    _, _, model = fitted
    for i in range(len(model.stages_)):
        p = model.win_probability(np.full(5, i), np.array([0, 10, 30, 60, 120]))
        assert np.all(np.diff(p) <= 1e-12) and p[0] > p[-1]
        assert p[0] == pytest.approx(model.entry_win_[i])


def test_censoring_is_not_counted_as_loss(write):
    """Half the Proposal stays are still running at the cutoff: dropping them or calling them lost would bias P(win)."""
    lines = ["deal_id,created_at,amount,stage,status,closed_at"]
    for i in range(40):  # 20 won after 10 days, 20 still open after 5 days
        won = i < 20
        lines.append(f"P{i},2024-01-01,100,Proposal,{'won' if won else 'open'},{'2024-01-11' if won else ''}")
    text = "\n".join(lines) + "\n"
    config_toml = write("p.toml", '[sufficiency]\nmin_won = 1\nmin_lost = 1\n')
    from scoring.data.presets import load_config

    data = load_deal_history(write("deals.csv", text), config=load_config(config_toml))
    model = StageTransitionModel(min_exits=5).fit(TrainingSet(data, "2024-01-20"))
    # all observed exits from Proposal were wins; the open ones are censored, so P(win | Proposal) stays 1
    assert model.entry_win_[2] == pytest.approx(1.0)
    assert model.censored_[2] == 20


def test_a_stage_with_too_few_exits_falls_back_to_its_fixed_percentage(write):
    data = load_deal_history(write("deals.csv", GOOD_DEALS), write("history.csv", GOOD_HISTORY))
    model = StageTransitionModel(min_exits=5).fit(TrainingSet(data, "2024-06-30"))
    assert model.fallback_.all()
    assert model.entry_win_[3] == pytest.approx(0.75)


def test_unfitted_model_says_so():
    with pytest.raises(NotFittedError):
        StageTransitionModel().table()
