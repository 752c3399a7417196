"""A pipeline configuration drafted from an export: its own stages, in the order its dates show.

CRMs let a company name its own stages (HubSpot's and Pipedrive's defaults are rarely kept, Salesforce's often
not), so an export often names stages no preset knows, and reading it stops at "unknown stage". :func:`draft_config`
reads the export through the given config (preset, column mapping) and proposes the rest:

- the open stages in pipeline order: with a stage history (a file, or HubSpot's "Date entered" columns), the
  order the deals entered them (for each pair of stages, which one most deals that entered both entered first;
  stages ranked by how many others they come before); without one, the CRM's probability column when the export
  has one (Salesforce's "Probability (%)", HubSpot's "Deal probability", Pipedrive's, Odoo's and Dynamics'
  "Probability": a stage's default, rising along the pipeline), else how long after their creation the open
  deals entered the stage they are in (without stage dates, their age; a stage with neither is placed last);
- won and lost labels: stage names only closed deals are in, all won or all lost (a status column says so), or,
  without a status column, stages whose deals all stand at probability 100 % or 0 % (the CRM's closed stages)
  and names that say won or lost;
- fixed percentages: the probability column's median per stage among the open deals, else evenly spaced
  placeholders for the team's own;
- one pipeline, the one with most deals, when the export holds several (each has its own stages);
- for an export no preset reads, its columns: each canonical column the export does not name as such, from the
  headers CRMs write for it (:data:`HEADERS`: "Deal value", "Deal stage", "Created at", "Sales owner", ...), when
  its cells are what the column holds (ids unique, amounts numbers, dates dates); an export without an id column
  (a list view's) has its deals known by their name where no two share one, said.

A draft is for a person to check (:attr:`Draft.how` says how each part was found), not a guess the product acts
on: reading an export still stops at a stage its config does not name.
"""
from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd
import tomli_w

from scoring.data.columns import as_text, fold, header_matches, squash
from scoring.data.config import PIPELINE, STATUSES, PipelineConfig
from scoring.data.contract import (
    DealHistory,
    canonical_status,
    data_end,
    export_stages,
    inspect_deal_history,
    stage_classifier,
)
from scoring.data.formats import looks_like_dates, looks_numeric, parse_numbers
from scoring.data.presets import get_preset
from scoring.data.tables import ROW, TableInput
from scoring.errors import DataError

#: Columns holding the CRM's probability of each deal (its stage's default unless a rep changed it), by their letters
#: and digits ("Probability (%)", "deal_probability").
PROBABILITY_COLUMNS = frozenset(squash(c) for c in ("Probability", "Deal probability", "Deal Stage Probability",
                                                    "Close probability", "Win probability",
                                                    "Confidence",  # Close's, set on each opportunity
                                                    # in the users' languages (German, French, Spanish, Portuguese,
                                                    # Italian, Dutch), as their CRMs export the column
                                                    "Wahrscheinlichkeit", "Probabilité", "Probabilidad", "Probabilidade",
                                                    "Probabilità", "Waarschijnlijkheid", "Kans"))
#: Without a status column, stage names that close a deal, in English and the users' languages ("Closed Won",
#: "Won - signed", "Deal won", "Geschlossen und gewonnen", "Fermée gagnée", "Cerrada ganada", "Gewonnen").
_WON_WORDS = r"(won|gewonnen|gagn[ée]e?|ganad[oa]|ganh[oa]|vint[oa])"
_LOST_WORDS = r"(lost|verloren|perdue?|perdid[oa]|pers[oa])"
_CLOSED_WORDS = r"(closed|geschlossen|abgeschlossen|ferm[ée]e?|conclue?|cerrad[oa]|fechad[oa]|chius[oa]|gesloten)"
_WON_NAME = re.compile(rf"^\W*({_CLOSED_WORDS}\W*(und\W+|and\W+|et\W+|y\W+|e\W+)?)?{_WON_WORDS}\b|\b{_WON_WORDS}\W*$",
                       re.IGNORECASE)
_LOST_NAME = re.compile(rf"^\W*({_CLOSED_WORDS}\W*(und\W+|and\W+|et\W+|y\W+|e\W+)?)?{_LOST_WORDS}\b|\b{_LOST_WORDS}\W*$",
                        re.IGNORECASE)
#: A stage is a won or lost label only with at least this many deals in it, every one closed the same way.
MIN_TERMINAL_DEALS = 3
#: The headers CRMs and spreadsheets write for each canonical deal column (folded), in order of preference, for
#: an export no preset reads (Freshsales, Zoho Bigin, Close, Copper, Insightly, a team's own sheet).
HEADERS: Mapping[str, tuple[str, ...]] = {
    "deal_id": ("id", "record id", "deal id", "opportunity id", "deal number", "deal no", "deal #", "opportunity #",
                "reference", "key",
                "datensatz-id", "opportunity-id", "deal-id", "id de l'opportunité", "id du deal", "id de la oportunidad",
                "id do negócio", "id dell'opportunità", "record-id",
                # an export without ids (Freshsales' and many list views'): the deal's name, where no two share one
                "deal name", "opportunity name", "deal title", "name", "title", "deal", "opportunity",
                "deal-name", "name des deals", "opportunity-name", "nom de la transaction", "nom de l'opportunité",
                "nombre del negocio", "nombre de la oportunidad", "nome do negócio", "nome dell'opportunità", "dealnaam"),
    "created_at": ("created", "created date", "create date", "created time", "created on", "date created",
                   "creation date", "add time", "added", "deal created", "opened", "open date",
                   "date entered",  # SugarCRM's and SuiteCRM's date_entered
                   "erstelldatum", "erstellungsdatum", "erstellt am", "angelegt am", "date de création", "créé le",
                   "fecha de creación", "creado", "data de criação", "criado em", "data di creazione", "creato il",
                   "aanmaakdatum", "aangemaakt op"),
    "amount": ("value", "deal value", "deal amount", "opportunity amount", "opportunity value", "deal size",
               "revenue", "contract value", "annual contract value", "acv",
               "betrag", "wert", "montant", "valeur", "importe", "monto", "valor", "importo", "valore", "bedrag",
               "waarde"),
    "stage": ("deal stage", "pipeline stage", "sales stage", "stage name", "phase", "deal phase", "milestone",
              "status label",  # Close's opportunity statuses are its stages (status_type: active, won, lost)
              "deal-phase", "verkaufsphase", "étape", "étape de la transaction", "étape de l'opportunité", "etapa",
              "etapa del negocio", "etapa de la oportunidad", "etapa do negócio", "fase", "fase di vendita", "dealfase"),
    "status": ("deal status", "status type", "outcome", "result", "won/lost", "state of deal", "statut", "estado",
               "stato"),
    "closed_at": ("closed", "closed date", "date closed", "closed on", "actual close date", "won/lost date",
                  "close date", "closing date",
                  "abschlussdatum", "schlusstermin", "date de clôture", "date de fermeture", "fecha de cierre",
                  "data de fechamento", "data de fecho", "data di chiusura", "sluitingsdatum"),
    "expected_close_date": ("expected close date", "expected close", "expected closing date", "expected closing",
                            "estimated close date", "est. close date", "forecast close date", "target close date",
                            "voraussichtliches abschlussdatum", "erwartetes abschlussdatum", "date de clôture prévue",
                            "fecha de cierre prevista", "fecha prevista de cierre", "data prevista de fechamento",
                            "data di chiusura prevista", "verwachte sluitingsdatum"),
    "stage_entered_at": ("last stage change", "stage changed", "stage change date", "last stage update",
                         "stage updated", "date entered stage", "in stage since"),
    "owner": ("deal owner", "sales owner", "opportunity owner", "owner name", "assigned to", "salesperson",
              "sales rep", "rep", "account manager", "account executive", "assigned user", "assigned user name",
              "sales agent", "user name",  # Close's user_name: the opportunity's user
              "deal-inhaber", "opportunity-inhaber", "inhaber", "verantwortlich", "besitzer", "propriétaire",
              "propriétaire de la transaction", "propriétaire de l'opportunité", "responsable", "propietario",
              "propietario del negocio", "propietario de la oportunidad", "proprietário", "responsável",
              "proprietario", "eigenaar", "dealeigenaar"),
    "pipeline": ("deal pipeline", "sales pipeline", "pipeline name"),
}


#: The deal_id headers that are a deal's name, not an id.
_NAMES = HEADERS["deal_id"][HEADERS["deal_id"].index("deal name"):]


@dataclass(frozen=True)
class Draft:
    """A drafted config and how each part was found."""

    config: PipelineConfig
    how: tuple[str, ...]

    def toml(self) -> str:
        """The draft as a config file: what differs from the preset (or the textbook pipeline), with ``how`` as
        comments above it."""
        drafted, plain = self.config.to_dict(), (get_preset(self.config.preset).config if self.config.preset
                                                 else PipelineConfig()).to_dict()
        keep = ("preset", "stages", "fixed_probabilities")
        data = {key: value for key, value in drafted.items() if key in keep or plain.get(key) != value}
        head = "\n".join(f"# {line}" for line in ("Drafted by `scoring config`: check it before training.", *self.how))
        return f"{head}\n{tomli_w.dumps(data)}"


def draft_config(deals: TableInput, history: TableInput | None = None, config: PipelineConfig | None = None,
                 field_history: TableInput | None = None) -> Draft:
    """A config for the export ``deals`` (and its stage ``history``; without one, the ``field_history``'s stage
    changes), read through ``config`` (its preset and column mapping kept; stages, percentages and outcome labels
    drafted). Raises :class:`DataError` when the export cannot be read even with its own stages (the report lists
    why)."""
    base = config or PipelineConfig()
    how: list[str] = []
    frame, history_stages = export_stages(deals, history, base, field_history)
    headers = _headers(frame, base)
    if headers:
        base = replace(base, columns={**base.columns, **{canon: (name,) for canon, name in headers.items()}})
        how.append("Columns, by their headers: " + ", ".join(f"{canon} = {name!r}" for canon, name in headers.items())
                   + ". Check each one.")
        if "deal_id" in headers and _name_of(headers["deal_id"], HEADERS["deal_id"]) in _NAMES:
            how.append(f"The export has no id column: each deal is known by its {headers['deal_id']!r}, no two the "
                       "same here; export the CRM's record id with it if it has one (a name may be given twice).")
        frame, history_stages = export_stages(deals, history, base, field_history)
    if PIPELINE in frame.columns and not base.pipelines:
        counts = as_text(frame[PIPELINE]).dropna().value_counts()
        if len(counts) > 1:
            base = replace(base, pipelines=(str(counts.index[0]),))
            how.append(f"Pipeline: {counts.index[0]} ({counts.iloc[0]:,} deals), the largest of {len(counts)}; the others: "
                       + ", ".join(f"{name} ({count:,})" for name, count in counts.iloc[1:].items())
                       + ". Draft each with its own config (pipelines = [\"...\"]).")
            frame, history_stages = export_stages(deals, history, base, field_history)
    if "stage" not in frame.columns:
        raise DataError(f"{deals}: no stage column to draft stages from; map the export's under [columns] "
                        "(stage = \"...\")")
    stage_text = as_text(frame["stage"]).str.strip().replace("", None)
    if stage_text.isna().any():  # a deal without a stage cannot be placed; said before anything is drafted
        rows = [str(r) for r in frame.loc[stage_text.isna(), ROW]] if ROW in frame.columns else []
        listed = ", ".join(rows[:5]) + (f" and {len(rows) - 5} more" if len(rows) > 5 else "")
        raise DataError(f"{deals}, column 'stage'{', rows ' + listed if rows else ''}: {int(stage_text.isna().sum())} "
                        "deal(s) have no stage: fill it in or remove them, then draft again")
    names = [*stage_text.tolist(), *history_stages]
    # a status that closes no deal (none, or one a preset derived from stage names it does not know) tells nothing
    has_status = "status" in frame.columns and canonical_status(frame["status"], base).isin(["won", "lost"]).any()
    won, lost, candidates = _classified(names, base, has_status)
    shares = _shares(frame, base)
    if not has_status and shares is not None:  # stages whose deals all stand at 100 % or 0 % (CRMs' closed stages)
        known = stage_classifier(base)
        standing = _standing(frame, shares, [c for c in candidates if known(c)[0] == "unknown"])
        won.update({stage: "probability 100 %" for stage, p in standing.items() if p >= 1.0})
        lost.update({stage: "probability 0 %" for stage, p in standing.items() if p <= 0.0})
        candidates = [c for c in candidates if c not in won and c not in lost]
    if not candidates:
        raise DataError(f"{deals}: no open stage found in the stage column (every stage is a won or lost label)")
    # closed deals whose stage is their outcome, with no stage history to tell the open stage they left: read as
    # from the last open stage (the drafted order's, said), as the config must then declare
    labelled = replace(base, won_labels=(*base.won_labels, *won), lost_labels=(*base.lost_labels, *lost))
    classify = stage_classifier(labelled)
    outcome_stages = not history_stages and any(classify(n)[0] in ("won", "lost") for n in names)
    permissive = replace(labelled, stages=tuple(candidates), fixed_probabilities=dict.fromkeys(candidates, 0.5),
                         last_open_stage=candidates[-1] if outcome_stages else None)
    data, report = inspect_deal_history(deals, history, permissive, field_history=field_history)
    if data is None:
        raise DataError("cannot draft a config, the export has problems besides its stages: " + report.summary(), report)
    terminal_won, terminal_lost = _terminal(data)
    stages = [s for s in candidates if s not in terminal_won and s not in terminal_lost]
    if not stages:
        raise DataError(f"{deals}: every stage holds only closed deals of one outcome; no open stage to draft")
    probability = None if shares is None else _probabilities(frame, shares, data)
    order = _order(data, stages, probability, how)
    percentages = _percentages(order, probability, base.fixed_probabilities, how)
    won.update(dict.fromkeys(terminal_won, "only won deals are in it"))
    lost.update(dict.fromkeys(terminal_lost, "only lost deals are in it"))
    if won or lost:
        how.append("Outcome labels: " + "; ".join(f"{kind} {', '.join(f'{n} ({why})' for n, why in labels.items())}"
                                                  for kind, labels in (("won", won), ("lost", lost)) if labels) + ".")
    if outcome_stages:
        how.append(f"Closed deals' last open stage: {order[-1]} (last_open_stage; the export gives their outcome as "
                   "their stage, and no stage history says which stage they left from: give one to learn it).")
    drafted = replace(permissive, stages=tuple(order), fixed_probabilities=percentages,
                      won_labels=(*base.won_labels, *won), lost_labels=(*base.lost_labels, *lost),
                      last_open_stage=order[-1] if outcome_stages else None)
    return Draft(drafted, tuple(how))


def _headers(frame: pd.DataFrame, config: PipelineConfig) -> dict[str, str]:
    """For each canonical deal column the mapped export lacks, the first of its :data:`HEADERS` the export has
    whose cells are what the column holds (a status: open, won or lost, as ``config`` maps them): canonical ->
    header."""
    columns = [str(c) for c in frame.columns if str(c) not in HEADERS and not str(c).startswith("_")]
    found: dict[str, str] = {}
    for canon, names in HEADERS.items():
        if canon in frame.columns:
            continue
        free = [c for c in columns if c not in found.values()]
        for column in header_matches(free, names):
            text = as_text(frame[column])
            if not text.notna().any():
                continue
            if canon == "deal_id" and (text.isna().any() or text.duplicated().any()):
                continue
            if canon == "amount" and not looks_numeric(text, 0.9):
                continue
            if canon.endswith(("_at", "_date")) and not looks_like_dates(text):
                continue
            if canon == "status" and not canonical_status(text, config).dropna().isin(STATUSES).mean() >= 0.9:
                continue
            found[canon] = column
            break
    return found


def _name_of(header: str, names: tuple[str, ...]) -> str | None:
    """Which of ``names`` ``header`` is (as :func:`scoring.data.columns.header_matches` matches them)."""
    for key in (fold, squash):
        for name in names:
            if key(name) == key(header):
                return name
    return None


def _classified(names: list[str], config: PipelineConfig, has_status: bool
                ) -> tuple[dict[str, str], dict[str, str], list[str]]:
    """(won labels, lost labels, open stages) among the export's stage names, each once (the config's own stages
    as it names them, the others as the export writes them most often); without a status column, unknown names
    that say won or lost are labels (with why: label -> reason)."""
    classify = stage_classifier(config)
    won: dict[str, str] = {}
    lost: dict[str, str] = {}
    stages: dict[str, str] = {}
    for name in pd.Series(names, dtype=object).value_counts(sort=True).index:  # the most written spelling first
        kind, canonical = classify(name)
        if kind == "unknown" and not has_status and _WON_NAME.search(name) and not _LOST_NAME.search(name):
            won[name] = "its name"
        elif kind == "unknown" and not has_status and _LOST_NAME.search(name) and not _WON_NAME.search(name):
            lost[name] = "its name"
        elif kind in ("open", "unknown"):
            stages.setdefault(fold(canonical), canonical)
    return won, lost, list(stages.values())


def _terminal(data: DealHistory) -> tuple[list[str], list[str]]:
    """Stages only closed deals are in, all of one outcome (at least :data:`MIN_TERMINAL_DEALS`), and that no
    deal left for another stage: (won labels, lost labels)."""
    deals = data.deals
    left = set()
    if data.has_history:
        hist = data.history
        left = set(hist.loc[hist["deal_id"].eq(hist["deal_id"].shift(-1)), "stage"])
    won, lost = [], []
    for stage, status in deals.groupby("stage", sort=False)["status"]:
        if len(status) < MIN_TERMINAL_DEALS or stage in left or status.eq("open").any():
            continue
        if status.eq("won").all():
            won.append(str(stage))
        elif status.eq("lost").all():
            lost.append(str(stage))
    return won, lost


def _shares(frame: pd.DataFrame, config: PipelineConfig) -> pd.Series | None:
    """The CRM's probability of each deal (a share, 0-1; a percent column read as one), row by row of the mapped
    deals, from the export's probability column (:data:`PROBABILITY_COLUMNS`); None without a usable one."""
    column = next((c for c in frame.columns if squash(c) in PROBABILITY_COLUMNS), None)
    if column is None:
        return None
    values, _ = parse_numbers(as_text(frame[column]).str.replace("%", "", regex=False), config.number_format,
                              found=config.found_number_format)
    values = values.astype(float)
    if not values.notna().any() or (values < 0).any():
        return None
    return (values / 100.0 if values.max() > 1.0 else values).clip(0.0, 1.0)


def _standing(frame: pd.DataFrame, shares: pd.Series, stages: list[str]) -> pd.Series:
    """Per stage of ``stages`` (as the export writes them) whose deals (at least :data:`MIN_TERMINAL_DEALS`) all
    stand at one probability (``shares``, row by row of ``frame``), that probability."""
    by_stage = shares.groupby(as_text(frame["stage"]).str.strip().to_numpy())
    low, high = by_stage.min(), by_stage.max()
    return low[(low == high) & low.index.isin(stages) & by_stage.count().ge(MIN_TERMINAL_DEALS)]


def _probabilities(frame: pd.DataFrame, shares: pd.Series, data: DealHistory) -> pd.Series | None:
    """Per stage, the median of the CRM's probability (``shares``: :func:`_shares`) over the open deals in it: the
    stage's default, which a rep's changed probability on a few deals does not move. None when it shows one value
    for all (or the deals have no id)."""
    if "deal_id" not in frame.columns:
        return None
    by_id = pd.Series(shares.to_numpy(), index=as_text(frame["deal_id"]).to_numpy())
    by_id = by_id[by_id.index.notna() & ~by_id.index.duplicated()]
    opened = data.deals[data.deals["status"].eq("open")]
    values = pd.Series(by_id.reindex(opened["deal_id"].to_numpy()).to_numpy(), index=opened["stage"].to_numpy()).dropna()
    if values.empty:
        return None
    medians = values.groupby(level=0).median()
    return medians if medians.nunique() > 1 else None  # one value for every stage tells neither order nor percentages


def _order(data: DealHistory, stages: list[str], probability: pd.Series | None, how: list[str]) -> list[str]:
    """The stages in pipeline order, and how it was found appended to ``how``."""
    if data.has_history:
        first = (data.history[data.history["stage"].isin(stages)].groupby(["deal_id", "stage"])["entered_at"].min()
                 .unstack().reindex(columns=stages))
        several = first.notna().sum(axis=1).gt(1)
        if several.any():
            days = (first.sub(first.min(axis=1), axis=0) / pd.Timedelta(days=1)).to_numpy(dtype=float)
            before = (days[:, :, None] < days[:, None, :]).sum(axis=0)  # [a, b]: deals that entered a before b
            wins = np.sign(before - before.T).sum(axis=1)  # how many stages each comes before, less after
            typical = pd.DataFrame(days).median().to_numpy()  # days after the deal's first entry, for ties
            seen = first.notna().any().to_numpy()
            entry, _ = _timing(data, stages)
            ranked = sorted(range(len(stages)), key=lambda i: (
                not seen[i], -wins[i], typical[i] if seen[i] else entry.get(stages[i], np.inf), i))
            unseen = [stage for stage, there in zip(stages, seen) if not there]
            how.append(f"Stage order: the order {int(several.sum()):,} deals entered them in the stage history"
                       + (f" ({', '.join(unseen)}: entered by none there, placed last)" if unseen else "") + ".")
            return [stages[i] for i in ranked]
    timing, placed = _timing(data, stages)
    if probability is not None:
        medians = probability.reindex(stages)
        if medians.notna().sum() >= max(2, len(stages) // 2):
            how.append("Stage order: the export's probability column (each stage's median among the open deals; "
                       f"ties and stages without one by {placed}).")
            return _by_value(stages, medians, timing)
    how.append(f"Stage order: {placed} (no stage history, no probability column): check it, a stage history would "
               "show it.")
    return _by_value(stages, timing, pd.Series(dtype=float))


def _timing(data: DealHistory, stages: list[str]) -> tuple[pd.Series, str]:
    """Per stage, how many days after their creation its deals stand: the median days to entering it of the open
    deals in it (of all its deals when none is open), else, without stage dates, the median age of its open deals
    at the data's end; and what each stage was placed by, said."""
    deals = data.deals
    days = (deals["stage_entered_at"] - deals["created_at"]) / pd.Timedelta(days=1)
    opened = deals["status"].eq("open")
    entry = days[opened].groupby(deals.loc[opened, "stage"]).median().combine_first(days.groupby(deals["stage"]).median())
    age = ((data_end(data) - deals.loc[opened, "created_at"]) / pd.Timedelta(days=1)).groupby(deals.loc[opened, "stage"]).median()
    entry, age = entry.reindex(stages), age.reindex(stages)
    by_age = [s for s in stages if pd.isna(entry[s]) and pd.notna(age[s])]
    untimed = [s for s in stages if pd.isna(entry[s]) and pd.isna(age[s])]
    timed = [s for s in stages if pd.notna(entry[s])]
    listed = f" ({', '.join(timed)})" if by_age or untimed else ""
    parts = [f"how long after their creation the open deals entered the stage they are in{listed}"] if timed else []
    parts += [f"the age of the open deals ({', '.join(by_age)}: no stage dates)"] if by_age else []
    parts += [f"nothing for {', '.join(untimed)} (no dated deal: placed last)"] if untimed else []
    said = "; ".join(parts)
    return entry.combine_first(age), said


def _by_value(stages: list[str], primary: pd.Series, secondary: pd.Series) -> list[str]:
    """``stages`` sorted by ``primary`` (then ``secondary`` where it has none; then as they came)."""
    def key(item: tuple[int, str]) -> tuple[float, float, int]:
        index, stage = item
        first, second = primary.get(stage, np.nan), secondary.get(stage, np.nan)
        return (float(first) if pd.notna(first) else np.inf, float(second) if pd.notna(second) else np.inf, index)

    return [stage for _, stage in sorted(enumerate(stages), key=key)]


def _percentages(order: list[str], probability: pd.Series | None, configured: Mapping[str, float], how: list[str]
                 ) -> dict[str, float]:
    """The fixed percentages of the stages in ``order``, and where they came from appended to ``how``: the
    probability column's medians (a stage without one between its neighbours'), else the ones ``configured`` for
    the stages the config already has, else placeholders evenly spaced between those."""
    known = (probability if probability is not None else pd.Series(dtype=float)).reindex(order)
    if known.notna().any():
        positions = np.arange(len(order))
        filled = np.interp(positions, positions[known.notna().to_numpy()], known.dropna().to_numpy(dtype=float))
        missing = [stage for stage, value in known.items() if pd.isna(value)]
        how.append("Fixed percentages: the export's probability column, each stage's median among the open deals"
                   + (f" ({', '.join(missing)}: between their neighbours', no open deal shows one)" if missing else "")
                   + ".")
        return {stage: round(float(value), 3) for stage, value in zip(order, filled)}
    kept = [stage for stage in order if stage in configured]
    placed = [stage for stage in order if stage not in configured]
    if placed:
        how.append(f"Fixed percentages: evenly spaced placeholders{' for ' + ', '.join(placed) if kept else ''}: put "
                   "your team's own (the forecast shows them beside the model's).")
    if kept:
        how.append(f"Fixed percentages of {', '.join(kept)}: the config's.")
    # a placeholder lies between its neighbours' percentages (0 before the first stage, 1 after the last)
    at = [-1, *(i for i, stage in enumerate(order) if stage in configured), len(order)]
    spaced = np.interp(np.arange(len(order)), at, [0.0, *(float(configured[s]) for s in order if s in configured), 1.0])
    return {stage: float(configured[stage]) if stage in configured else round(float(value), 2)
            for stage, value in zip(order, spaced, strict=True)}
