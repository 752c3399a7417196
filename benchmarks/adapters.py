"""Turn public datasets (../shared/data, see its SOURCES.md) into the canonical deal-history format.

For benchmarks only: the project never needs these files, and none is copied into it.

    python benchmarks/adapters.py maven         ../shared/data/maven_crm_sales_opportunities  OUT_DIR
    python benchmarks/adapters.py it-consulting ../shared/data/win_prediction_it_consulting    OUT_DIR
    python benchmarks/adapters.py ibm           ../shared/data/ibm_sales_win_loss              OUT_DIR
    python benchmarks/adapters.py bpi2012       ../shared/data/bpi_challenge_2012              OUT_DIR

Each writes OUT_DIR/deals.csv, OUT_DIR/pipeline.toml and, where the source has stage dates,
OUT_DIR/stage_history.csv, then prints every row it set aside and why. Check the result with
``scoring validate --deals OUT_DIR/deals.csv [--history OUT_DIR/stage_history.csv] --config OUT_DIR/pipeline.toml``.
"""
from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from scoring.data.config import PipelineConfig, dump_config


@dataclass
class Adapted:
    """A canonical deal history made from a public dataset, with what was set aside and the assumptions made."""

    deals: pd.DataFrame
    config: PipelineConfig
    history: pd.DataFrame | None = None
    set_aside: dict[str, int] = field(default_factory=dict)
    assumptions: list[str] = field(default_factory=list)

    def write(self, out_dir: Path) -> list[Path]:
        out_dir.mkdir(parents=True, exist_ok=True)
        paths = [out_dir / "deals.csv", out_dir / "pipeline.toml"]
        self.deals.to_csv(paths[0], index=False)
        paths[1].write_text(dump_config(self.config), encoding="utf-8")
        if self.history is not None:
            paths.append(out_dir / "stage_history.csv")
            self.history.to_csv(paths[-1], index=False)
        return paths


def maven(src: Path) -> Adapted:
    """Maven Analytics CRM Sales Opportunities (fictitious MavenTech; Prospecting -> Engaging -> Won/Lost)."""
    pipeline = pd.read_csv(src / "sales_pipeline.csv", dtype=str)
    products = pd.read_csv(src / "products.csv", dtype=str)
    accounts = pd.read_csv(src / "accounts.csv", dtype=str)
    teams = pd.read_csv(src / "sales_teams.csv", dtype=str)
    pipeline["product"] = pipeline["product"].replace({"GTXPro": "GTX Pro"})  # spelled apart in products.csv
    undated = pipeline["engage_date"].isna()
    set_aside = {"Prospecting deals without any date (cannot be placed in time)": int(undated.sum())}
    df = (pipeline[~undated]
          .merge(products, on="product", how="left")
          .merge(accounts, on="account", how="left")
          .merge(teams, on="sales_agent", how="left"))
    status = df["deal_stage"].str.lower().replace({"engaging": "open"})
    deals = pd.DataFrame({
        "deal_id": df["opportunity_id"],
        "created_at": df["engage_date"],
        "amount": df["sales_price"].astype(float),
        "stage": "Engaging",
        "status": status,
        "closed_at": df["close_date"].where(status != "open"),
        "stage_entered_at": df["engage_date"],
        "sales_agent": df["sales_agent"], "manager": df["manager"], "regional_office": df["regional_office"],
        "product": df["product"], "series": df["series"], "account": df["account"], "sector": df["sector"],
        "year_established": df["year_established"], "revenue": df["revenue"], "employees": df["employees"],
        "office_location": df["office_location"],
    })
    config = PipelineConfig(stages=("Engaging",), fixed_probabilities={"Engaging": 0.5})
    return Adapted(deals, config, set_aside=set_aside, assumptions=[
        "created_at is the engage date (the only date before the outcome)",
        "amount is the product's list price for every deal (close_value is 0 for lost deals and empty for open ones, "
        "so it would reveal the outcome)",
        "one open stage, Engaging, with a fixed probability of 50 % (the dataset has no stage percentages)",
    ])


def it_consulting(src: Path) -> Adapted:
    """Win Prediction Analytics: IT-consulting bids 2011-2019, won or lost, with creation date but no close date."""
    raw = pd.read_csv(src / "Win_Prediction_Data.csv", dtype=str, encoding="utf-8-sig")
    dup = raw.duplicated()
    raw = raw[~dup].reset_index(drop=True)
    created = pd.to_datetime(raw["Deal Date"], format="%d-%b-%y").dt.strftime("%Y-%m-%d")
    deals = pd.DataFrame({
        "deal_id": [f"IT{i + 1:05d}" for i in range(len(raw))],
        "created_at": created,
        "amount": raw["Deal Cost"].astype(float),
        "stage": "Bid",
        "status": raw["Deal Status Code"].str.lower(),
        "closed_at": (pd.to_datetime(created) + pd.Timedelta(days=30)).dt.strftime("%Y-%m-%d"),
        **{c.lower().replace(" ", "_"): raw[c].str.strip()
           for c in ("Client Category", "Solution Type", "Sector", "Location", "VP Name", "Manager Name")},
    })
    config = PipelineConfig(stages=("Bid",), fixed_probabilities={"Bid": 0.5})
    return Adapted(deals, config, set_aside={"exact duplicate rows": int(dup.sum())}, assumptions=[
        "no close date exists: every deal is taken as decided 30 days after creation (a pseudo decision time), "
        "so it is seen open on one or two snapshot dates; only win probability (not timing) can be evaluated",
        "one open stage, Bid, with a fixed probability of 50 %",
        "trailing spaces in category values are removed (\"Energy \" is \"Energy\")",
    ])


IBM_STAGES = ("Identified", "Validated", "Qualified", "Gained Agreement")


def ibm(src: Path) -> Adapted:
    """IBM Watson sales win-loss sample: no calendar dates; stage durations only as ratios measured at close."""
    raw = pd.read_csv(src / "WA_Fn-UseC_-Sales-Win-Loss.csv.gz", dtype=str, keep_default_na=False)
    dup = raw.duplicated()
    raw = raw[~dup]
    repeated = raw["Opportunity Number"].duplicated()
    raw = raw[~repeated].reset_index(drop=True)
    # Pseudo-time: no dates exist; opportunity numbers are taken as the creation order over three years.
    order = raw["Opportunity Number"].astype(int).rank(method="first").to_numpy() - 1
    start = pd.Timestamp("2013-01-01")
    created = start + pd.to_timedelta(order / len(raw) * 3 * 365, unit="D")
    total = raw["Total Days Identified Through Closing"].astype(float).to_numpy()
    ratios = np.column_stack([raw[f"Ratio Days {s} To Total Days"].astype(float).to_numpy()
                              for s in ("Identified", "Validated", "Qualified")])
    ratios = np.clip(ratios, 0, 1)
    rest = np.clip(1 - ratios.sum(axis=1), 0, 1)
    shares = np.column_stack([ratios, rest])
    starts = np.cumsum(np.column_stack([np.zeros(len(raw)), shares[:, :-1]]), axis=1) * total[:, None]
    visited = shares > 0.005
    visited[:, 0] = True  # every deal starts Identified
    last = np.where(visited, np.arange(4), -1).max(axis=1)
    closed = created + pd.to_timedelta(total, unit="D")
    rows = [pd.DataFrame({"deal_id": raw["Opportunity Number"][visited[:, i]],
                          "stage": IBM_STAGES[i],
                          "entered_at": (created + pd.to_timedelta(starts[:, i], unit="D"))[visited[:, i]].strftime("%Y-%m-%d")})
            for i in range(4)]
    status = raw["Opportunity Result"].map({"Won": "won", "Loss": "lost"})
    deals = pd.DataFrame({
        "deal_id": raw["Opportunity Number"],
        "created_at": created.strftime("%Y-%m-%d"),
        "amount": raw["Opportunity Amount USD"].astype(float),
        "stage": np.asarray(IBM_STAGES)[last],
        "status": status,
        "closed_at": closed.strftime("%Y-%m-%d"),
        **{c.lower().replace(" ", "_"): raw[c] for c in (
            "Supplies Subgroup", "Supplies Group", "Region", "Route To Market", "Client Size By Revenue",
            "Client Size By Employee Count", "Revenue From Client Past Two Years", "Competitor Type")},
    })
    config = PipelineConfig(stages=IBM_STAGES, fixed_probabilities=dict(zip(IBM_STAGES, (0.10, 0.25, 0.50, 0.75))))
    return Adapted(deals, config, pd.concat(rows, ignore_index=True), set_aside={
        "exact duplicate rows": int(dup.sum()),
        "later rows repeating an Opportunity Number": int(repeated.sum()),
    }, assumptions=[
        "NO CALENDAR DATES: created_at is pseudo-time (Opportunity Number order spread over 2013-2015); "
        "time-split results on this set are indicative only",
        "the stage history is rebuilt from the 'Ratio Days <stage> To Total Days' columns; the time left after "
        "Qualified is taken as 'Gained Agreement'",
        "columns measured at close (Sales Stage Change Count, Elapsed Days In Sales Stage, Total Days ..., Ratio ...) "
        "are never features; Deal Size Category (the binned amount) is dropped",
    ])


#: BPI Challenge 2012's application stages: the first event of each marks the entry (stages only move forward).
BPI_STAGES = {"A_SUBMITTED": "Submitted", "A_PREACCEPTED": "Pre-accepted", "A_ACCEPTED": "Accepted",
              "O_SENT": "Offer sent", "O_SENT_BACK": "Offer returned"}
BPI_OUTCOMES = {"A_APPROVED": "won", "A_DECLINED": "lost", "A_CANCELLED": "lost"}


def bpi2012(src: Path) -> Adapted:
    """BPI Challenge 2012: loan applications at a Dutch bank, the one real multi-stage log (events with times)."""
    events = pd.read_csv(src / "BPI_Challenge_2012_events.csv.gz", dtype={"case_id": str})
    events["at"] = pd.to_datetime(events["timestamp"], utc=True, format="ISO8601").dt.tz_localize(None)
    order = {stage: i for i, stage in enumerate(BPI_STAGES.values())}
    staged = events[events["activity"].isin(list(BPI_STAGES))].assign(stage=lambda e: e["activity"].map(BPI_STAGES))
    first = staged.groupby(["case_id", "stage"], as_index=False)["at"].min()
    first["index"] = first["stage"].map(order)
    # a stage reached after a later one (rare re-orderings within seconds) keeps only the forward path
    first = first.sort_values(["case_id", "at", "index"])
    first = first[first["index"] >= first.groupby("case_id")["index"].cummax()]
    ends = (events[events["activity"].isin(list(BPI_OUTCOMES))].sort_values("at")
            .groupby("case_id", as_index=False).first())
    cases = events.groupby("case_id", as_index=False).agg(amount=("amount_req", "first"), created=("at", "min"))
    cases = cases.merge(ends[["case_id", "activity", "at"]], on="case_id", how="left")
    last = first.sort_values("at").groupby("case_id").last()
    fmt = "%Y-%m-%dT%H:%M:%S"
    deals = pd.DataFrame({
        "deal_id": cases["case_id"],
        "created_at": cases["created"].dt.strftime(fmt),
        "amount": cases["amount"].astype(float),
        "stage": cases["case_id"].map(last["stage"]),
        "status": cases["activity"].map(BPI_OUTCOMES).fillna("open"),
        "closed_at": cases["at"].dt.strftime(fmt),
    })
    history = pd.DataFrame({"deal_id": first["case_id"], "stage": first["stage"], "entered_at": first["at"].dt.strftime(fmt)})
    config = PipelineConfig(stages=tuple(BPI_STAGES.values()),
                            fixed_probabilities=dict(zip(BPI_STAGES.values(), (0.10, 0.25, 0.40, 0.60, 0.80))))
    return Adapted(deals, config, history, assumptions=[
        "a case is a deal; its stage entries are the first A_SUBMITTED, A_PREACCEPTED, A_ACCEPTED, O_SENT and "
        "O_SENT_BACK events (application submitted, pre-accepted, accepted, an offer sent, an offer returned signed)",
        "approved (A_APPROVED) is won; declined (A_DECLINED) or cancelled (A_CANCELLED) is lost, at that event's time",
        "amount is the requested amount (AMOUNT_REQ); no other case attribute is a feature",
        "fixed stage percentages 10 / 25 / 40 / 60 / 80 % (the bank has none)",
        "timestamps with +01:00/+02:00 offsets are converted to UTC",
    ])


ADAPTERS: dict[str, Callable[[Path], Adapted]] = {"maven": maven, "it-consulting": it_consulting, "ibm": ibm,
                                                  "bpi2012": bpi2012}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("dataset", choices=sorted(ADAPTERS))
    parser.add_argument("source", type=Path, help="the dataset's folder in ../shared/data")
    parser.add_argument("out", type=Path, help="where to write the canonical files")
    args = parser.parse_args()
    adapted = ADAPTERS[args.dataset](args.source)
    for path in adapted.write(args.out):
        print(f"wrote {path}")
    counts = adapted.deals["status"].value_counts().to_dict()
    print(f"{len(adapted.deals):,} deals: {counts}")
    for reason, n in adapted.set_aside.items():
        print(f"set aside: {n:,} {reason}")
    for text in adapted.assumptions:
        print(f"assumption: {text}")


if __name__ == "__main__":
    main()
