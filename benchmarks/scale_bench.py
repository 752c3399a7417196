"""Scale-out: training on one machine vs a Dask LocalCluster, and batch scoring with bounded memory.

1. A demo company of ``--deals`` deals (default 1,000,000, about 4 stage events each) is trained twice,
   each time in a fresh process: ``scoring train`` (one machine) and ``scoring train --engine dask``
   (a LocalCluster of 2 single-threaded workers). Wall time and peak memory (the resident memory of
   the process and all its children, sampled every 0.2 s) and the holdout metrics of both.
2. Batch scoring with ``scoring score --engine dask --factors 0`` of Parquet inputs of growing size
   (``--score-deals``, default 1M and 10M open deals, in parts of ``--part-rows`` rows): time and
   peak memory, which should follow the part size, not the input size.

    python benchmarks/scale_bench.py [--deals 1000000] [--runs 1] [--score-deals 1000000 10000000] [--part-rows 250000]
"""
from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pandas as pd
import psutil

END = "2025-06-30"


def measured(command: list[str], env: dict[str, str], cwd: Path) -> tuple[float, float, str]:
    """Run ``command``; its wall time in s, peak resident memory of its process tree in GB, and its output."""
    start = time.perf_counter()
    process = subprocess.Popen(command, env=env, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    peak = [0]
    done = threading.Event()

    def sample() -> None:
        parent = psutil.Process(process.pid)
        while not done.is_set():
            try:
                total = parent.memory_info().rss + sum(c.memory_info().rss for c in parent.children(recursive=True))
            except psutil.Error:
                total = 0
            peak[0] = max(peak[0], total)
            time.sleep(0.2)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    output, _ = process.communicate()
    done.set()
    sampler.join()
    if process.returncode:
        raise SystemExit(f"{' '.join(command)} failed:\n{output[-3000:]}")
    return time.perf_counter() - start, peak[0] / 1e9, output


def holdout_line(output: str, model: str = "model") -> str:
    for line in output.splitlines():
        if line.strip("│ ").startswith(model + " "):
            return " ".join(line.replace("│", " ").split())
    return "(not found)"


def write_open_deals(source: Path, out: Path, count: int, part_rows: int) -> None:
    """``count`` open deals in Parquet parts of ``part_rows``, made from the demo's open deals with new ids."""
    base = pd.read_csv(source, dtype=str)
    out.mkdir(parents=True)
    written, part = 0, 0
    while written < count:
        n = min(part_rows, count - written)
        rows = base.sample(n, replace=True, random_state=part).reset_index(drop=True)
        rows["deal_id"] = [f"B{written + i:09d}" for i in range(n)]
        rows.to_parquet(out / f"part-{part:05d}.parquet", index=False)
        written, part = written + n, part + 1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--deals", type=int, default=1_000_000)
    parser.add_argument("--score-deals", type=int, nargs="*", default=[1_000_000, 10_000_000])
    parser.add_argument("--part-rows", type=int, default=250_000)
    parser.add_argument("--runs", type=int, default=1, help="Training runs per engine (median reported).")
    parser.add_argument("--skip-train", action="store_true")
    args = parser.parse_args()
    scoring = shutil.which("scoring", path=str(Path(sys.executable).parent))
    work = Path(tempfile.mkdtemp(prefix="scale-bench-"))
    env = {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{work / 'mlflow.db'}", "MLFLOW_DISABLE_TELEMETRY": "true",
           "DO_NOT_TRACK": "true", "SCORING_CACHE_DIR": str(work / "compiled")}
    try:
        from scoring.data.demo import DemoCompany

        t0 = time.perf_counter()
        DemoCompany().generate(args.deals, seed=7, end=END).write(work / "company")
        events = sum(1 for _ in open(work / "company" / "stage_history.csv")) - 1
        print(f"demo company: {args.deals:,} deals, {events:,} stage events ({time.perf_counter() - t0:.0f} s to make)",
              flush=True)
        data = ["--deals", "company/deals.csv", "--history", "company/stage_history.csv", "--config",
                "company/pipeline.toml", "--as-of", END]
        if not args.skip_train:
            engines = (("one machine", []), ("dask LocalCluster (2 workers)", ["--engine", "dask"]))
            times: dict[str, list[float]] = {name: [] for name, _ in engines}
            peaks: dict[str, list[float]] = {name: [] for name, _ in engines}
            for run in range(args.runs):  # alternating, so both meet the same machine
                for name, extra in engines:
                    seconds, peak, output = measured([scoring, "train", *data, "--promote", "always", *extra], env, work)
                    times[name].append(seconds)
                    peaks[name].append(peak)
                    print(f"run {run + 1}, train, {name}: {seconds:.0f} s, peak memory {peak:.2f} GB; holdout: "
                          f"{holdout_line(output)} (log-loss, Brier, AUC, calibration error)", flush=True)
            for name, _ in engines:
                print(f"train, {name}: median {statistics.median(times[name]):.0f} s "
                      f"({', '.join(f'{t:.0f}' for t in times[name])}), peak memory at most {max(peaks[name]):.2f} GB")
        else:
            measured([scoring, "train", *data, "--promote", "always"], env, work)
        for count in args.score_deals:
            folder = work / f"open-{count}"
            write_open_deals(work / "company" / "open_deals.csv", folder, count, args.part_rows)
            seconds, peak, output = measured([scoring, "score", "--input", str(folder), "--out", str(work / f"scored-{count}"),
                                              "--as-of", END, "--engine", "dask", "--factors", "0"], env, work)
            parts = len(list(folder.glob("*.parquet")))
            print(f"batch scoring {count:,} deals ({parts} parts of up to {args.part_rows:,}): {seconds:.0f} s "
                  f"({count / seconds:,.0f} deals/s), peak memory {peak:.2f} GB", flush=True)
            shutil.rmtree(folder)
            shutil.rmtree(work / f"scored-{count}")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
