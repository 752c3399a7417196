"""The pipeline store and the managers' page at scale: import, the stored pipeline's forecast, the page.

    python benchmarks/store_bench.py [--deals 100000] [--history-per-deal 10] [--runs 5]

Makes a demo company of ``--deals`` deals; its stage history is padded to about ``--history-per-deal`` rows a
deal (each deal's real entries, then the same entries again a second apart, as a CRM that logs every save
would: the store keeps them all); with its field history (the reps' close dates) and about three activities
a deal; trains a bundle on all of it (so the stored pipeline is scored with its signals), then measures with a
real server:

- ``scoring import`` of the export into a fresh SQLite store (median of ``--runs`` fresh stores would take
  long: one import, and one re-import that changes nothing);
- ``GET /v1/pipeline/forecast`` (4 quarters; cold: first call after start, warm: median of ``--runs``);
- ``GET /`` (the managers' page; warm median of ``--runs``).
"""
from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from scoring.data.contract import load_deal_history  # noqa: E402
from scoring.data.demo import DemoCompany  # noqa: E402
from scoring.train import train_bundle  # noqa: E402
from tests.e2e.test_serving import start_server, stop  # noqa: E402


def padded_history(history: pd.DataFrame, per_deal: int, deals: int) -> pd.DataFrame:
    """The stage history repeated (a second apart) until it holds about ``per_deal`` rows a deal."""
    copies = max(1, int(np.ceil(per_deal * deals / max(len(history), 1))))
    parts = [history.assign(entered_at=history["entered_at"] + pd.Timedelta(seconds=i)) for i in range(copies)]
    return pd.concat(parts, ignore_index=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--deals", type=int, default=100_000)
    parser.add_argument("--history-per-deal", type=int, default=10)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="store-bench-"))
    end = pd.Timestamp.now().normalize()
    demo = DemoCompany().generate(args.deals, seed=4, end=end)
    history = padded_history(demo.history, args.history_per_deal, args.deals)
    rng = np.random.default_rng(4)
    picked = rng.integers(0, len(demo.deals), 3 * len(demo.deals))
    created = demo.deals["created_at"].to_numpy()[picked]
    activities = pd.DataFrame({"deal_id": demo.deals["deal_id"].to_numpy()[picked],
                               "occurred_at": created + pd.to_timedelta(rng.uniform(0, 60, len(picked)), "D"),
                               "type": rng.choice(["call", "email", "meeting"], len(picked))})
    activities = activities[activities["occurred_at"] < end]
    demo.deals.to_csv(work / "deals.csv", index=False, date_format="%Y-%m-%dT%H:%M:%S")
    history.to_csv(work / "stage_history.csv", index=False, date_format="%Y-%m-%dT%H:%M:%S")
    demo.field_history.to_csv(work / "field_history.csv", index=False, date_format="%Y-%m-%dT%H:%M:%S")
    activities.to_csv(work / "activities.csv", index=False, date_format="%Y-%m-%dT%H:%M:%S")
    print(f"{args.deals:,} deals, {len(history):,} stage history rows, {len(demo.field_history):,} field changes, "
          f"{len(activities):,} activities, in {work}")
    bundle = train_bundle(load_deal_history(demo.deals, demo.history, field_history=demo.field_history,
                                            activities=activities), as_of=end)
    model = bundle.save(work / "bundle.joblib")
    command = [sys.executable, "-m", "scoring.cli.main", "import", "--deals", str(work / "deals.csv"), "--history",
               str(work / "stage_history.csv"), "--field-history", str(work / "field_history.csv"), "--activities",
               str(work / "activities.csv"), "--store", f"sqlite:///{work / 'pipeline.db'}", "--model", str(model)]
    for label in ("import into an empty store", "the same import again (changes nothing)"):
        start = time.perf_counter()
        subprocess.run(command, check=True, capture_output=True, cwd=work)
        print(f"scoring import, {label}: {time.perf_counter() - start:.1f} s")
    server = start_server(work, {"SCORING_STORE_URL": f"sqlite:///{work / 'pipeline.db'}", "SCORING_ACCESS_LOG": "false",
                                 "SCORING_SNAPSHOT_SECONDS": "0"}, "--model", str(model), timeout=300)
    try:
        for path in ("/v1/pipeline/forecast?periods=4", "/"):
            times = []
            for _ in range(args.runs + 1):
                start = time.perf_counter()
                answer = httpx.get(f"{server.url}{path}", timeout=300)
                times.append(time.perf_counter() - start)
                assert answer.status_code == 200, answer.text[:500]
            print(f"GET {path}: first {times[0]:.2f} s, then median {statistics.median(times[1:]):.3f} s over "
                  f"{args.runs} ({', '.join(f'{t:.3f}' for t in times[1:])})")
    finally:
        stop(server)


if __name__ == "__main__":
    main()
