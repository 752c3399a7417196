"""The factors behind a score: the top inputs each way, as a plain per-row reading of the contributions gives them."""
from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from scoring.scores import factors

NAMES = ["stage_index", "days_in_stage", "log_amount", "employees", "segment"]


def _rows(n: int, seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    employees = rng.choice([12.0, 7733.0, 40.5, np.nan], n)
    return {"stage": rng.choice(["Lead", "Proposal"], n).astype(object), "stage_index": rng.integers(0, 2, n),
            "days_in_stage": rng.uniform(0, 400, n), "amount": rng.uniform(0, 3e5, n), "employees": employees,
            "segment": rng.choice(["SMB", None, "Enterprise"], n).astype(object)}


def _text(rows: dict[str, np.ndarray], name: str, i: int) -> str:
    if name == "stage_index":
        return str(rows["stage"][i])
    if name == "log_amount":
        return f"{rows['amount'][i]:,.0f}"
    if name == "days_in_stage":
        return f"{rows['days_in_stage'][i]:.0f}"
    value = rows[name][i]
    if value is None or value != value:
        return "(missing)"
    return str(int(value)) if isinstance(value, float) and value.is_integer() else str(value)


def _one_row(rows: dict[str, np.ndarray], values: np.ndarray, i: int, top: int) -> tuple[list, list]:
    shown = {"stage_index": "stage", "log_amount": "amount"}
    order = sorted(range(len(NAMES)), key=lambda j: values[i, j])  # ascending, stable as numpy's argsort on ties
    def factor(j: int) -> dict:
        return {"feature": shown.get(NAMES[j], NAMES[j]), "value": _text(rows, NAMES[j], i),
                "effect": round(float(values[i, j]), 4)}
    up = [factor(j) for j in list(reversed(order))[:top] if values[i, j] > 0.01]
    down = [factor(j) for j in order[:top] if values[i, j] < -0.01]
    return up, down


@settings(max_examples=40, deadline=None)
@given(values=hnp.arrays(np.float64, st.tuples(st.integers(0, 30), st.just(len(NAMES))),
                         elements=st.floats(-3, 3, allow_nan=False)),
       top=st.integers(0, 7), seed=st.integers(0, 1000))
def test_factors_are_each_row_s_largest_contributions_each_way(values: np.ndarray, top: int, seed: int):
    values = np.where(np.abs(values) < 1e-9, 0.0, values)
    rows = _rows(len(values), seed)
    up, down = factors(NAMES, rows, values, top)
    assert len(up) == len(down) == len(values)
    for i in range(len(values)):
        if len(set(values[i].tolist())) == len(NAMES):  # ties may come in either order
            assert (up[i], down[i]) == _one_row(rows, values, i, top)


def test_whole_numbers_show_without_a_decimal_point():
    rows = {"employees": np.array([7733.0, 40.5, np.nan]), "segment": np.array(["SMB", None, "SMB"], dtype=object)}
    up, _ = factors(["employees", "segment"], rows, np.array([[1.0, 0.5], [1.0, 0.5], [1.0, 0.5]]), 2)
    assert [[f["value"] for f in row] for row in up] == [["7733", "SMB"], ["40.5", "(missing)"], ["(missing)", "SMB"]]


def test_a_factor_maker_gets_what_the_dicts_hold():
    """The service builds its answer rows from the same feature, value text and effect, in the same places."""
    values = np.random.default_rng(3).normal(size=(40, len(NAMES)))
    rows = _rows(40, 3)
    made = factors(NAMES, rows, values, 3, factor=lambda **keys: (keys["feature"], keys["value"], keys["effect"]))
    for side, dicts in zip(made, factors(NAMES, rows, values, 3), strict=True):
        assert side == [[(f["feature"], f["value"], f["effect"]) for f in row] for row in dicts]
    assert any(side for side in made[0]) and any(side for side in made[1])
