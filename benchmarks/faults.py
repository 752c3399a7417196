"""Faults, by hand: what holds when things go wrong around training and serving. Prints what held.

    python benchmarks/faults.py [--deals 3000] [--kills 5]

1. store down at start: `scoring serve` with a tracking server that accepts connections and never answers
   (MLflow would retry for minutes): seconds until /readyz, and what serves (the exported bundle);
2. kill during export: `--kills` processes killed at random moments while writing the champion's bundle
   over a good one: is the file there and loadable each time;
3. kill during train: `scoring train` killed at random moments, then a train that completes: runs left
   RUNNING, versions without a promotion decision;
4. concurrent trains: two `scoring train` at once on one SQLite store: both finish, distinct versions,
   one champion;
5. swap under load: a served champion, a client sending batches, a promotion: failed requests, and
   whether the new version serves.
"""
from __future__ import annotations

import argparse
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import pandas as pd
from mlflow.tracking import MlflowClient

from scoring.data.demo import DemoCompany

END = "2025-06-30"
CLI = [sys.executable, "-m", "scoring.cli.main"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def run(args: list[str], env: dict[str, str], cwd: Path, timeout: float = 900) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout)


def serve(env: dict[str, str], cwd: Path, *args: str) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    process = subprocess.Popen([*CLI, "serve", "--port", str(port), *args], env=env, cwd=cwd,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return process, f"http://127.0.0.1:{port}"


def wait_ready(url: str, timeout: float = 300) -> float:
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        try:
            if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                return time.monotonic() - start
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise SystemExit(f"{url} not ready after {timeout} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--deals", type=int, default=3000)
    parser.add_argument("--kills", type=int, default=5)
    args = parser.parse_args()
    rng = random.Random(0)
    work = Path(tempfile.mkdtemp(prefix="faults-"))
    company = work / "company"
    DemoCompany().generate(args.deals, seed=2, end=END).write(company)
    store = f"sqlite:///{work / 'mlflow.db'}"
    env = {**os.environ, "MLFLOW_TRACKING_URI": store, "SCORING_POLL_SECONDS": "1", "SCORING_ACCESS_LOG": "false"}
    data = ["--deals", str(company / "deals.csv"), "--history", str(company / "stage_history.csv"), "--as-of", END]
    started = time.monotonic()
    done = run(["train", *data], env, work)
    train_seconds = time.monotonic() - started
    assert done.returncode == 0, done.stderr
    deals = pd.read_csv(company / "open_deals.csv", dtype=str).head(200)
    batch = {"as_of": END, "deals": [{k: v for k, v in d.items() if isinstance(v, str)}
                                     for d in deals.to_dict(orient="records")]}

    # 1. store down at start
    with socket.socket() as black_hole:
        black_hole.bind(("127.0.0.1", 0))
        black_hole.listen(16)
        process, url = serve({**env, "MLFLOW_TRACKING_URI": f"http://127.0.0.1:{black_hole.getsockname()[1]}",
                              "SCORING_STORE_TIMEOUT_SECONDS": "5"}, work)
        try:
            seconds = wait_ready(url)
            ready = httpx.get(f"{url}/readyz").json()
            scored = httpx.post(f"{url}/v1/score", json=batch, timeout=60).status_code
        finally:
            process.kill()
            process.wait()
    print(f"1. store down at start: ready in {seconds:.1f} s, serving the {ready['source']} (version "
          f"{ready['model']['version']}); a batch scored: HTTP {scored}", flush=True)

    # 2. kill during export
    exported = work / "models" / "pipeline-scoring.joblib"
    writer = ("import sys; from scoring.bundle import ModelBundle\n"
              "b = ModelBundle.load(sys.argv[1])\n"
              "while True:\n    b.save(sys.argv[1])\n")
    intact = 0
    for _ in range(args.kills):
        process = subprocess.Popen([sys.executable, "-c", writer, str(exported)], cwd=work)
        time.sleep(rng.uniform(2.0, 6.0))
        process.send_signal(signal.SIGKILL)
        process.wait()
        check = subprocess.run([sys.executable, "-c", "import sys; from scoring.bundle import ModelBundle; "
                                "ModelBundle.load(sys.argv[1])", str(exported)], capture_output=True)
        intact += check.returncode == 0
    leftovers = [p.name for p in exported.parent.iterdir() if p.name.startswith(".")]
    subprocess.run([sys.executable, "-c", "import sys; from scoring.bundle import ModelBundle; "
                    "ModelBundle.load(sys.argv[1]).save(sys.argv[1])", str(exported)], check=True)
    after = [p.name for p in exported.parent.iterdir() if p.name.startswith(".")]
    print(f"2. kill during export: the bundle loads after {intact} of {args.kills} kills; temporary files left "
          f"by the killed writers: {len(leftovers)}, after the next write: {len(after)}", flush=True)

    # 3. kill during train
    client = MlflowClient(store, store)
    experiment = client.get_experiment_by_name("pipeline-scoring").experiment_id

    def left_behind() -> tuple[int, int]:
        running = len(client.search_runs([experiment], filter_string="attributes.status = 'RUNNING'"))
        undecided = sum("promotion_decision" not in v.tags
                        for v in client.search_model_versions("name = 'pipeline-scoring'"))
        return running, undecided

    after_kills = []
    for _ in range(args.kills):
        process = subprocess.Popen([*CLI, "train", *data, "--promote", "never"], env=env, cwd=work,
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(rng.uniform(0.3, 0.95) * train_seconds)  # somewhere in the middle of a train
        process.send_signal(signal.SIGKILL)
        process.wait()
        after_kills.append(left_behind())  # what this kill left (the next train tidies it)
    done = run(["train", *data, "--promote", "never"], env, work)
    running_after, undecided_after = left_behind()
    print(f"3. kill during train ({args.kills} kills): each left (RUNNING runs, undecided versions) "
          f"{after_kills}; after a train that completes (exit {done.returncode}): {running_after} RUNNING, "
          f"{undecided_after} undecided", flush=True)

    # 4. concurrent trains
    before = {v.version for v in client.search_model_versions("name = 'pipeline-scoring'")}
    both = [subprocess.Popen([*CLI, "train", *data, "--promote", "always"], env=env, cwd=work,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    codes = [p.wait(timeout=900) for p in both]
    new = {v.version for v in client.search_model_versions("name = 'pipeline-scoring'")} - before
    champion = client.get_model_version_by_alias("pipeline-scoring", "champion").version
    print(f"4. concurrent trains: exits {codes}; new versions {sorted(new, key=int)}; champion version {champion}",
          flush=True)

    # 5. swap under load
    process, url = serve(env, work)
    failed, sent, stop = [0], [0], threading.Event()
    try:
        wait_ready(url)
        serving = httpx.get(f"{url}/readyz").json()["model"]["version"]

        def load() -> None:
            with httpx.Client(timeout=60) as client_:
                while not stop.is_set():
                    sent[0] += 1
                    failed[0] += client_.post(f"{url}/v1/score", json=batch).status_code != 200

        threads = [threading.Thread(target=load) for _ in range(2)]
        for t in threads:
            t.start()
        time.sleep(3)
        target = str(min(int(v) for v in new))
        promoted = run(["promote", target, "--reason", "faults benchmark"], env, work)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and httpx.get(f"{url}/readyz").json()["model"]["version"] != target:
            time.sleep(0.2)
        time.sleep(2)
        stop.set()
        for t in threads:
            t.join()
        now = httpx.get(f"{url}/readyz").json()["model"]["version"]
    finally:
        process.kill()
        process.wait()
    print(f"5. swap under load: {sent[0]} batches of {len(batch['deals'])}, {failed[0]} failed; version {serving} -> "
          f"{now} (promote exit {promoted.returncode})", flush=True)


if __name__ == "__main__":
    main()
