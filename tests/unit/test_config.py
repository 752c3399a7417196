"""The pipeline configuration: defaults, TOML loading, presets underneath, and refusals."""
from __future__ import annotations

import pytest

from scoring.data.config import TEXTBOOK_PROBABILITIES, PipelineConfig, dump_config
from scoring.data.presets import load_config
from scoring.errors import ConfigError


def test_textbook_default():
    config = load_config()
    assert config.stages == ("Lead", "Qualified", "Proposal", "Negotiation")
    assert dict(config.fixed_probabilities) == TEXTBOOK_PROBABILITIES
    assert config.fixed_probability("Proposal") == 0.5


def test_toml_round_trip(write):
    text = """stages = ["Discovery", "Demo", "Contract"]
won_labels = ["Signed"]
date_format = "%d/%m/%Y"
[fixed_probabilities]
Discovery = 0.1
Demo = 0.4
Contract = 0.8
[columns]
deal_id = "Opportunity"
[values.status]
"Closed - signed" = "won"
[sufficiency]
min_won = 5
"""
    config = load_config(write("p.toml", text))
    assert config.stages == ("Discovery", "Demo", "Contract")
    assert config.columns["deal_id"] == ("Opportunity",)
    assert config.sufficiency.min_won == 5 and config.sufficiency.min_lost == 30
    assert load_config(write("again.toml", dump_config(config))) == config


def test_preset_underneath_user_file(write):
    config = load_config(write("p.toml", 'ignore_columns = ["Region"]\n'), preset="hubspot")
    assert config.stages[0] == "Appointment Scheduled" and "Region" in config.ignore_columns
    assert "Deal probability" in config.ignore_columns  # a user's list adds to the preset's: no leak comes back
    assert config.preset == "hubspot"
    assert load_config(write("q.toml", 'preset = "pipedrive"\n')).stages[0] == "Qualified"


@pytest.mark.parametrize(("text", "message"), [
    ('stages = ["A", "B"]\n', "without \\[fixed_probabilities\\]"),
    ('stages = ["A"]\n[fixed_probabilities]\nA = 1.5\n', "fixed_probabilities.A: expected a probability"),
    ('stages = ["A", "B"]\n[fixed_probabilities]\nA = 0.5\n', "no fixed percentage for stage\\(s\\) \\['B'\\]"),
    ('stages = ["A", "a"]\n[fixed_probabilities]\nA = 0.5\na = 0.5\n', "listed twice"),
    ('stages = ["Won"]\n[fixed_probabilities]\nWon = 0.5\n', "also won/lost labels"),
    ('stagez = ["A"]\n', "unknown key\\(s\\) 'stagez'"),
    ("stages = \n", "not valid TOML"),
    ('[sufficiency]\nmin_won = 0\n', "sufficiency.min_won: expected a whole number >= 1"),
    ('preset = "freshsales"\n', "unknown preset 'freshsales'"),
    ('[columns]\namout = "Value"\n', "columns: unknown column\\(s\\) 'amout'; expected some of deal_id, .*owner"),
    ('[history_columns]\ndeal = "Opportunity ID"\n', "history_columns: unknown column\\(s\\) 'deal'"),
])
def test_bad_config_is_refused_with_the_key_named(write, text, message):
    with pytest.raises(ConfigError, match=message):
        load_config(write("bad.toml", text))


def test_missing_config_file(tmp_path):
    with pytest.raises(ConfigError, match="file not found"):
        load_config(tmp_path / "nope.toml")


def test_config_is_checked_when_built_in_code():
    with pytest.raises(ConfigError, match="at least one open stage"):
        PipelineConfig(stages=(), fixed_probabilities={})


def test_the_owner_column_is_mapped_by_name(write, tmp_path):
    """The salesperson's column, under the export's name, becomes ``owner``: the feature the forecast's and the
    managers' page's breakdowns read."""
    import pandas as pd

    from scoring.data.contract import load_deal_history
    deals = pd.DataFrame({"deal_id": ["1", "2", "3"], "created_at": ["2025-01-02"] * 3, "amount": [1, 2, 3],
                          "stage": ["Lead", "Proposal", "Qualified"], "status": ["open", "won", "lost"],
                          "closed_at": [None, "2025-02-01", "2025-02-02"],
                          "Account Manager": ["ann", "bob", "ann"]})
    data = load_deal_history(deals, config=load_config(write("o.toml", '[columns]\nowner = "Account Manager"\n')))
    assert data.deals["owner"].tolist() == ["ann", "bob", "ann"] and "owner" in data.features
