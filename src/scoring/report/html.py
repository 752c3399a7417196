"""The report managers read: one self-contained HTML file (plots inlined, opens offline) plus the plots as PNG.

Each section has a plot or table and one line of plain language. ``write_report`` takes what a
training run or a backtest knows: the pipeline KPIs, the learned stage table, past stays in each
stage, the models' scores beside the baselines, their reliability and, from a backtest, forecasts
against what actually closed.
"""
from __future__ import annotations

import base64
import io
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from jinja2 import Environment
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from scoring.data.contract import DealHistory, data_end
from scoring.evaluation.metrics import calibration_error
from scoring.features.dataset import TrainingSet
from scoring.features.snapshots import sojourns
from scoring.forecast.backtest import BacktestResult
from scoring.forecast.kpis import PipelineKpis, pipeline_kpis
from scoring.forecast.revenue import period_name
from scoring.models.transitions import StageTransitionModel

MODEL_COLOURS = {"model": "#1f6feb", "fixed": "#d1242f", "stage_transitions": "#8250df",
                 "empirical_stage_rate": "#9a6700", "odoo_naive_bayes": "#1a7f37", "logistic_regression": "#6e7781"}
LABELS = {"model": "model", "fixed": "fixed percentages", "stage_transitions": "stage transitions",
          "empirical_stage_rate": "empirical stage rate", "odoo_naive_bayes": "Odoo naive Bayes",
          "logistic_regression": "logistic regression", "seasonal_naive": "seasonal naive (last year)",
          "rep_dates": "fixed percentages by the reps' close dates"}


@dataclass
class Section:
    title: str
    sentence: str
    image: str | None = None  # PNG file name
    table: str | None = None  # HTML
    data: str = ""  # base64 PNG, filled when written


@dataclass
class ReportInputs:
    """What a report is made of; ``backtest`` is optional (a training run has none)."""

    title: str
    as_of: pd.Timestamp
    kpis: PipelineKpis
    stage_table: pd.DataFrame  # stage, fixed_probability, learned_probability
    stays: pd.DataFrame  # ended stays: stage, days
    metrics: pd.DataFrame  # one row per model: log_loss, brier, roc_auc, ece
    reliability: pd.DataFrame  # model, predicted, observed, count
    backtest: BacktestResult | None = None
    notes: list[str] = field(default_factory=list)


def report_inputs(data: DealHistory, title: str, metrics: pd.DataFrame, reliability: pd.DataFrame,
                  backtest: BacktestResult | None = None, as_of: pd.Timestamp | None = None,
                  stage_table: pd.DataFrame | None = None, notes: list[str] | None = None,
                  kpis: PipelineKpis | None = None) -> ReportInputs:
    """Gather what a report shows about ``data`` at ``as_of`` (default: its end). A trained bundle gives its stage
    table and KPIs; without them (a backtest) one stage-transition model is fitted for both."""
    as_of = as_of if as_of is not None else data_end(data)
    if stage_table is None or kpis is None:
        stage_model = StageTransitionModel().fit(TrainingSet(data, as_of))
        stage_table = stage_table if stage_table is not None else stage_model.table_frame()
        kpis = kpis or pipeline_kpis(data, as_of, stale_after=stage_model.stale_after_days())
    stays = sojourns(data, as_of)
    return ReportInputs(title=title, as_of=as_of, kpis=kpis, stage_table=stage_table,
                        stays=stays[stays["to"].notna()], metrics=metrics, reliability=reliability,
                        backtest=backtest, notes=list(notes or []))


def label(name: str) -> str:
    return LABELS.get(name, name.replace("_", " "))


def write_report(inputs: ReportInputs, out_dir: str | Path) -> Path:
    """Write ``report.html`` and the PNG plots into ``out_dir``; return the HTML path."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    sections: list[Section] = []
    figures: dict[str, Figure] = {}
    if inputs.backtest is not None:
        sections += _backtest_sections(inputs.backtest, figures)
    sections += [_metrics_section(inputs.metrics), _reliability_section(inputs.reliability, figures),
                 _stages_section(inputs.stage_table, figures), _funnel_section(inputs.kpis, figures),
                 _days_section(inputs.stays, inputs.stage_table, figures), _stale_section(inputs.kpis),
                 _kpi_section(inputs.kpis)]
    for name, figure in figures.items():
        buffer = io.BytesIO()
        figure.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
        (out_dir / name).write_bytes(buffer.getvalue())
        for section in sections:
            if section.image == name:
                section.data = base64.b64encode(buffer.getvalue()).decode("ascii")
    headline = [s.sentence for s in sections if s.sentence][:4]
    html = Environment(autoescape=True).from_string(TEMPLATE).render(
        title=inputs.title, as_of=inputs.as_of.date(), headline=headline, sections=sections, notes=inputs.notes)
    path = out_dir / "report.html"
    path.write_text(html, encoding="utf-8")
    return path


# -- sections ---------------------------------------------------------------------------------------
def _backtest_sections(result: BacktestResult, figures: dict[str, Figure]) -> list[Section]:
    table = result.periods[result.periods["period"] == 1].sort_values("as_of")
    done = table[table["complete"]]
    fig = Figure(figsize=(9, 4.2))
    ax = fig.subplots()
    model = table[table["model"] == "model"]
    ax.fill_between(model["start"], model["p10"], model["p90"], color=MODEL_COLOURS["model"], alpha=0.15,
                    label="model P10-P90")
    for name in result.models:
        part = table[table["model"] == name]
        main = name in ("model", "fixed")
        ax.plot(part["start"], part["expected"], marker="o" if main else None, lw=2 if main else 1,
                alpha=1 if main else 0.5, ls="--" if name == "fixed" else "-",
                color=MODEL_COLOURS.get(name), label=label(name))
    _finish_plot(fig, ax, model, "actually won", f"won revenue in the {result.every}",
                 f"Forecast at the start of each {result.every} vs what those deals brought in")
    figures["forecast_vs_actual.png"] = fig

    summary = result.summary().set_index("model")
    sentence = "No backtest period has ended yet, so no forecast could be compared with what closed."
    if len(done):
        fixed = done[done["model"] == "fixed"]
        worst = fixed.loc[fixed["error"].abs().idxmax()] if len(fixed) else None
        m, f = summary.loc["model", "relative_error"], summary.loc["fixed", "relative_error"]
        sentence = (f"Over {int(summary.loc['model', 'periods'])} complete forecast periods the model's forecasts of won "
                    f"revenue missed by {m:.0%} of what actually closed, the fixed percentages by {f:.0%}.")
        if worst is not None and worst["actual"] > 0:
            verb = "overstated" if worst["error"] > 0 else "understated"
            sentence += (f" The fixed percentages {verb} {period_name(worst['start'], result.every)} won revenue "
                         f"by {abs(worst['error']) / worst['actual']:.0%}.")
    cover = summary.loc["model", "coverage_p10_p90"]
    columns = {"periods": "periods", "mean_abs_error": "mean abs error", "relative_error": "relative error",
               "bias": "bias", "coverage_p10_p90": "P10-P90 coverage", "log_loss": "log-loss", "brier": "Brier"}
    shown = summary[list(columns)].rename(columns=columns).rename(index=label)
    formats = {"mean abs error": "{:,.0f}", "relative error": "{:.1%}", "bias": "{:+.1%}",
               "P10-P90 coverage": "{:.0%}", "log-loss": "{:.4f}", "Brier": "{:.4f}", "periods": "{:.0f}"}
    cover_sentence = ("" if np.isnan(cover) else
                      f"The model's P10-P90 range held what actually closed in {cover:.0%} of periods "
                      "(a well-judged 80 % range holds it about 80 % of the time).")
    return [Section("Forecast vs fixed percentages vs actual", sentence, image="forecast_vs_actual.png"),
            Section("Backtest: every model, every period", cover_sentence, table=_html_table(shown, formats)),
            *_bookings_sections(result, figures)]


def _finish_plot(fig: Figure, ax: Axes, rows: pd.DataFrame, actual: str, ylabel: str, title: str) -> None:
    """The actual line over the forecasts, labels, legend and grid of a forecast-by-period plot."""
    ax.plot(rows["start"], rows["actual"], color="black", marker="s", lw=2, label=actual)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.legend(fontsize=8, ncol=2)
    ax.grid(alpha=0.3)
    fig.autofmt_xdate()


def _bookings_sections(result: BacktestResult, figures: dict[str, Figure]) -> list[Section]:
    """What each period booked (new deals included) against the bookings forecasts, and their accuracy."""
    if result.bookings.empty:
        return []
    table = result.bookings[result.bookings["period"] == 1].sort_values("as_of")
    model = table[table["method"] == "model"]
    fig = Figure(figsize=(9, 4.2))
    ax = fig.subplots()
    ax.fill_between(model["start"], model["p10"], model["p90"], color=MODEL_COLOURS["model"], alpha=0.15,
                    label="model P10-P90")
    ax.bar(model["start"], model["pipeline"], width=20, color=MODEL_COLOURS["model"], alpha=0.35,
           label="model: open deals")
    ax.bar(model["start"], model["new_deals"], width=20, bottom=model["pipeline"], color="#e49b0f", alpha=0.5,
           label="model: new deals")
    for method, style in (("model", "-"), ("fixed", "--"), ("rep_dates", "-."), ("seasonal_naive", ":")):
        part = table[table["method"] == method]
        ax.plot(part["start"], part["expected"], ls=style, marker="o", color=MODEL_COLOURS.get(method, "#555"),
                label=label(method))
    _finish_plot(fig, ax, model, "actually booked", f"bookings in the {result.every}",
                 f"Bookings forecast at the start of each {result.every} vs everything it booked")
    figures["bookings_vs_actual.png"] = fig
    summary = result.bookings_summary().set_index("method")
    columns = {"periods": "periods", "accuracy": "accuracy", "bias": "bias", "coverage_p10_p90": "P10-P90 coverage",
               "new_deal_share": "booked by new deals"}
    shown = summary[list(columns)].rename(columns=columns).rename(index=label)
    formats = {"periods": "{:.0f}", "accuracy": "{:.1%}", "bias": "{:+.1%}", "P10-P90 coverage": "{:.0%}",
               "booked by new deals": "{:.0%}"}
    per_period = model[["start", "booked", "pipeline", "new_deals", "expected", "p10", "p90", "actual"]].rename(
        columns={"expected": "bookings", "actual": "actually booked"})
    per_period["start"] = [period_name(s, result.every) for s in per_period["start"]]
    money = {c: "{:,.0f}" for c in per_period.columns if c != "start"}
    sentence = ("Everything each period booked, deals created during it included, against the model's bookings "
                "(open deals + new deals), the fixed percentages' weighted pipeline and last year's same period "
                "(seasonal naive). Accuracy is max(0, 1 - |actual - forecast| / actual), averaged over periods.")
    return [Section("Bookings: forecast vs what each period booked", sentence, image="bookings_vs_actual.png",
                    table=_html_table(shown, formats)),
            Section("Bookings per period (the model)", "", table=_html_table(per_period.set_index("start"), money))]


def _metrics_section(metrics: pd.DataFrame) -> Section:
    table = metrics.set_index("model")
    sentence = ""
    if {"model", "fixed"} <= set(table.index):
        m, f = table.loc["model", "log_loss"], table.loc["fixed", "log_loss"]
        best = table["log_loss"].idxmin()
        sentence = (f"On deals whose outcome was held out, the model's log-loss is {m:.3f} against {f:.3f} for the "
                    f"fixed percentages (lower is better); the best of all is {label(best)}.")
    columns = {"log_loss": "log-loss", "brier": "Brier", "roc_auc": "ROC AUC", "ece": "calibration error"}
    shown = table[list(columns)].rename(columns=columns).rename(index=label).sort_values("log-loss")
    formats = {"log-loss": "{:.4f}", "Brier": "{:.4f}", "ROC AUC": "{:.3f}", "calibration error": "{:.3f}"}
    return Section("Win probability: model vs baselines", sentence, table=_html_table(shown, formats))


def _reliability_section(reliability: pd.DataFrame, figures: dict[str, Figure]) -> Section:
    fig = Figure(figsize=(5.5, 5))
    ax = fig.subplots()
    ax.plot([0, 1], [0, 1], color="grey", lw=1, ls=":", label="perfect")
    errors = {}
    for name, part in reliability.groupby("model", sort=False):
        errors[name] = calibration_error(part)
        if name in ("model", "fixed", "stage_transitions", "logistic_regression"):
            ax.plot(part["predicted"], part["observed"], marker="o", color=MODEL_COLOURS.get(name), label=label(name),
                    ls="--" if name == "fixed" else "-")
    ax.set_xlabel("predicted win probability")
    ax.set_ylabel("observed win rate")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    figures["reliability.png"] = fig
    sentence = ""
    if "model" in errors and "fixed" in errors:
        sentence = (f"The model's probabilities are off from observed win rates by {errors['model']:.1%} on average; "
                    f"the fixed percentages by {errors['fixed']:.1%}.")
    return Section("Calibration: does 30 % mean 30 %?", sentence, image="reliability.png")


def _stages_section(stage_table: pd.DataFrame, figures: dict[str, Figure]) -> Section:
    fig = Figure(figsize=(7, 3.8))
    ax = fig.subplots()
    x = np.arange(len(stage_table))
    ax.bar(x - 0.2, stage_table["fixed_probability"], 0.4, color=MODEL_COLOURS["fixed"], label="fixed")
    ax.bar(x + 0.2, stage_table["learned_probability"], 0.4, color=MODEL_COLOURS["stage_transitions"], label="learned")
    ax.set_xticks(x, stage_table["stage"])
    ax.set_ylabel("P(win) on entering the stage")
    ax.set_ylim(0, 1)
    ax.legend()
    ax.grid(axis="y", alpha=0.3)
    figures["stage_probabilities.png"] = fig
    gap = stage_table["fixed_probability"] - stage_table["learned_probability"]
    worst = gap.abs().idxmax()
    row = stage_table.loc[worst]
    verb = "overstate" if gap.loc[worst] > 0 else "understate"
    sentence = (f"The fixed percentages {verb} {row['stage']} most: {row['fixed_probability']:.0%} assumed, "
                f"{row['learned_probability']:.0%} learned from history.")
    return Section("Learned stage probabilities vs fixed", sentence, image="stage_probabilities.png")


def _funnel_section(kpis: PipelineKpis, figures: dict[str, Figure]) -> Section:
    fig = Figure(figsize=(7, 3.5))
    ax = fig.subplots()
    stages = [c.stage for c in kpis.conversion][::-1]
    decided = [c.decided for c in kpis.conversion][::-1]
    bars = ax.barh(stages, decided, color="#57606a")
    for bar, c in zip(bars, kpis.conversion[::-1]):
        text = f"{c.rate:.0%} to {c.to}" if c.decided else "no decided deals"
        ax.text(bar.get_width(), bar.get_y() + bar.get_height() / 2, f"  {text}", va="center", fontsize=9)
    ax.set_xlabel("deals that reached the stage and left it")
    ax.set_xlim(0, max(decided + [1]) * 1.35)
    figures["funnel.png"] = fig
    sentence = next((s for s in kpis.sentences() if s.startswith("Bottleneck")), "")
    return Section("Stage funnel and conversion rates", sentence, image="funnel.png")


def _days_section(stays: pd.DataFrame, stage_table: pd.DataFrame, figures: dict[str, Figure]) -> Section:
    fig = Figure(figsize=(7, 3.8))
    ax = fig.subplots()
    stages = list(stage_table["stage"])
    data = [stays.loc[stays["stage"] == s, "days"].to_numpy() for s in stages]
    present = [(s, d) for s, d in zip(stages, data) if len(d)]
    if present:
        ax.boxplot([d for _, d in present], tick_labels=[s for s, _ in present], whis=(5, 95), showfliers=False)
    ax.set_ylabel("days in stage (5th-95th percentile whiskers)")
    ax.grid(axis="y", alpha=0.3)
    figures["days_in_stage.png"] = fig
    sentence = ""
    if present:
        medians = {s: float(np.median(d)) for s, d in present}
        slow = max(medians, key=lambda stage: medians[stage])
        d = dict(present)[slow]
        sentence = (f"Deals spend longest in {slow}: {medians[slow]:.0f} days at the median, "
                    f"{np.percentile(d, 90):.0f} days for the slowest tenth.")
    return Section("Days in stage", sentence, image="days_in_stage.png")


def _stale_section(kpis: PipelineKpis) -> Section:
    sentence = next((s for s in kpis.sentences() if "open deals" in s), "No deals are open.")
    if not kpis.stale:
        return Section("Stale deals", sentence)
    frame = pd.DataFrame([vars(s) for s in kpis.stale[:20]]).set_index("deal_id")
    frame.columns = ["stage", "days in stage", "normal (90 % of stays)"]
    return Section("Stale deals", sentence,
                   table=_html_table(frame, {"days in stage": "{:.0f}", "normal (90 % of stays)": "{:.0f}"}))


def _kpi_section(kpis: PipelineKpis) -> Section:
    rows = {"win rate": f"{kpis.win_rate:.1%}" if kpis.won + kpis.lost else "n/a",
            "won / closed": f"{kpis.won:,} / {kpis.won + kpis.lost:,}",
            "sales cycle (median days)": _num(kpis.sales_cycle_median_days, "{:.0f}"),
            "sales cycle (mean days)": _num(kpis.sales_cycle_mean_days, "{:.0f}"),
            "average won deal": _num(kpis.average_deal_size, "{:,.0f}"),
            "lead velocity rate": _num(kpis.lead_velocity_rate, "{:+.1%}"),
            "bottleneck stage": kpis.bottleneck or "n/a",
            "open deals": f"{kpis.open_deals:,}", "stale deals": f"{kpis.stale_count:,}"}
    for c in kpis.conversion:
        rows[f"conversion {c.stage} to {c.to}"] = _num(c.rate, "{:.1%}")
    frame = pd.DataFrame({"value": rows})
    sentence = " ".join(s for s in kpis.sentences() if s.startswith(("Win rate", "Won deals", "Lead velocity")))
    return Section("Pipeline KPIs", sentence, table=_html_table(frame, {}))


# -- helpers ----------------------------------------------------------------------------------------
def _num(value: float, fmt: str) -> str:
    return "n/a" if value is None or np.isnan(value) else fmt.format(value)


def _html_table(frame: pd.DataFrame, formats: dict[str, str]) -> str:
    shown = frame.copy()
    for column, fmt in formats.items():
        if column in shown.columns:
            shown[column] = [("n/a" if pd.isna(v) else fmt.format(v)) for v in shown[column]]
    return shown.to_html(classes="data", border=0, na_rep="n/a")


TEMPLATE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{{ title }}</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body { font: 15px/1.5 system-ui, sans-serif; margin: 2rem auto; max-width: 60rem; padding: 0 1rem; color: #1f2328; }
h1 { font-size: 1.6rem; margin-bottom: 0; } .sub { color: #57606a; margin-top: .2rem; }
section { border-top: 1px solid #d0d7de; margin-top: 1.5rem; padding-top: .5rem; }
.line { font-size: 1.05rem; } img { max-width: 100%; }
ul.headline { background: #f6f8fa; padding: .8rem 2rem; border-radius: 6px; }
table.data { border-collapse: collapse; font-variant-numeric: tabular-nums; }
table.data th, table.data td { padding: .25rem .7rem; text-align: right; border-bottom: 1px solid #eaeef2; }
table.data th:first-child, table.data td:first-child { text-align: left; }
</style></head><body>
<h1>{{ title }}</h1><p class="sub">As of {{ as_of }}. Made by pipeline-scoring.</p>
<ul class="headline">{% for line in headline %}<li>{{ line }}</li>{% endfor %}</ul>
{% for s in sections %}<section><h2>{{ s.title }}</h2>
{% if s.sentence %}<p class="line">{{ s.sentence }}</p>{% endif %}
{% if s.data %}<img alt="{{ s.title }}" src="data:image/png;base64,{{ s.data }}">{% endif %}
{% if s.table %}{{ s.table | safe }}{% endif %}</section>
{% endfor %}
{% if notes %}<section><h2>Notes</h2><ul>{% for n in notes %}<li>{{ n }}</li>{% endfor %}</ul></section>{% endif %}
</body></html>
"""
