"""Serving speed, in one run: our /v1/score against `mlflow models serve` and the HTTP floor.

Three servers on this machine, each in its own process, called by the same load generator:

- ours: ``scoring serve`` with a bundle trained on demo data;
- ``mlflow models serve`` of a plain scikit-learn pipeline (one-hot ColumnTransformer + isotonic-
  calibrated LightGBM) trained on the same snapshot rows: what a user would deploy instead;
- a FastAPI no-op endpoint under uvicorn: the cost of HTTP alone.

Single-deal requests/s (``--clients`` keep-alive connections, for ``--seconds``), the latency of one
client sending one deal at a time (p50, p99) and batches of 1,000 deals in rows/s (``--batch-clients``
connections, default 2; 1 is a sequential client);
medians of ``--runs`` rounds, and the medians of the ratios within each round (a shared machine's speed
drifts between rounds). Two load generators, each sending the same pre-encoded bodies:

- ``wrk`` (C, one thread; ``apt install wrk``): it costs the machine little, so the figures are the
  servers' own; used when it is on the PATH;
- ``python``: httpx in threads, one process. It takes a core of its own, and a fast server waits for it:
  the no-op floor is then the client's speed more than HTTP's.

Each server runs with its defaults, except that ours and the no-op do not write an access log (uvicorn's
``--log-level warning`` for the no-op, ``SCORING_ACCESS_LOG=false`` for ours), and that ``--workers N`` starts
ours with N server processes and mlflow's with ``--mlflow-workers`` (default: as many). Also: how long
``scoring serve`` takes to be ready with the embedded store. Last, batches against mlflow's in alternating
one-second windows (``--pairs``): the ratio least moved by the shared machine's drift.

    python benchmarks/serve_bench.py [--deals 20000] [--runs 3] [--seconds 5] [--clients 4] [--pairs 30]
                                     [--load wrk python] [--batch-clients 2] [--workers 1] [--mlflow-workers N]
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

import httpx
import numpy as np
import pandas as pd

END = "2025-06-30"
NOOP = '''
from fastapi import FastAPI, Request
app = FastAPI()

@app.post("/noop")
async def noop(request: Request) -> dict:
    await request.body()
    return {"ok": True}
'''


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_ready(url: str, process: subprocess.Popen[bytes], timeout: float = 180.0) -> float:
    start = time.perf_counter()
    while time.perf_counter() - start < timeout:
        if process.poll() is not None:
            raise SystemExit(f"{url}: the server exited")
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return time.perf_counter() - start
        except httpx.HTTPError:
            time.sleep(0.05)
    raise SystemExit(f"{url}: not ready after {timeout} s")


WRK_SCRIPT = """
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
local f = assert(io.open(os.getenv("BENCH_BODY"), "rb"))
wrk.body = f:read("*a")
f:close()
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("RESULT %d %d %d %d %d\\n", summary.requests, e.connect + e.read + e.write + e.status + e.timeout,
                         summary.duration, latency:percentile(50), latency:percentile(99)))
end
"""


class Load(NamedTuple):
    rate: float  # requests per second
    failed: int  # requests that failed or did not answer 200
    p50: float  # latency percentiles, ms
    p99: float


def load_wrk(url: str, body: Path, seconds: float, clients: int) -> Load:
    """wrk (one thread, ``clients`` connections) posting ``body`` to ``url`` for ``seconds``."""
    script = body.parent / "post.lua"
    if not script.exists():
        script.write_text(WRK_SCRIPT)
    out = subprocess.run(["wrk", "-t1", f"-c{clients}", f"-d{max(1, round(seconds))}s", "-s", str(script), url],
                         env={**os.environ, "BENCH_BODY": str(body)}, capture_output=True, text=True, check=True).stdout
    requests, failed, micros, p50, p99 = (int(v) for v in out.split("RESULT")[1].split())
    return Load(requests / (micros / 1e6), failed, p50 / 1000, p99 / 1000)


def load_python(url: str, body: Path, seconds: float, clients: int) -> Load:
    """``clients`` httpx threads posting ``body`` to ``url`` for ``seconds``."""
    content = body.read_bytes()
    times: list[list[float]] = [[] for _ in range(clients)]
    failures = [0] * clients
    stop_at = time.perf_counter() + seconds

    def worker(i: int) -> None:
        with httpx.Client(timeout=120, headers={"content-type": "application/json"}) as client:
            while (start := time.perf_counter()) < stop_at:
                response = client.post(url, content=content)
                response.read()
                times[i].append(time.perf_counter() - start)
                failures[i] += response.status_code != 200

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(clients)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - start
    all_times = np.concatenate([np.array(t) for t in times]) * 1000
    return Load(len(all_times) / elapsed, sum(failures), *np.percentile(all_times, [50, 99]).tolist())


def interleaved(measure: Callable[[str, Path, float, int], Load], targets: dict[str, tuple[str, str, str]],
                bodies: Path, pairs: int, clients: int = 2) -> None:
    """Batch rows/s of ours (with and without factors) against mlflow's in alternating one-second windows
    (ABBA: the order flips every pair), so that the shared machine's drift, which moves a 5-second window's
    figure by 20-40 % from one minute to the next, falls on both sides of each ratio alike; the median of the
    pairs' ratios and their quartiles."""
    for ours in ("ours", "factors"):
        ratios, rates = [], {ours: [], "mlflow": []}
        for i in range(pairs):
            order = (ours, "mlflow") if i % 2 == 0 else ("mlflow", ours)
            rate = {}
            for name in order:
                url, _, many = targets[name]
                load = measure(url, bodies / f"{many}.json", 1.0, clients)
                assert load.failed == 0, f"{name}: {load.failed} failed batch requests"
                rate[name] = load.rate
                rates[name].append(load.rate * 1000)
            ratios.append(rate[ours] / rate["mlflow"])
        q1, median, q3 = np.percentile(ratios, [25, 50, 75])
        label = "with the top 3 factors" if ours == "factors" else "without factors"
        print(f"interleaved batches of 1,000 {label}: {median:.2f}x mlflow models serve's rows/s (median of "
              f"{pairs} one-second pairs; quartiles {q1:.2f}-{q3:.2f}; medians {np.median(rates[ours]):,.0f} and "
              f"{np.median(rates['mlflow']):,.0f} rows/s)", flush=True)


def sklearn_pipeline_model(company: Path, work: Path) -> tuple[str, list[str]]:
    """Train the plain sklearn pipeline on the same snapshot rows and log it as an MLflow model; its URI and inputs."""
    import mlflow
    from lightgbm import LGBMClassifier
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.compose import ColumnTransformer
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder

    from scoring.data.contract import load_deal_history
    from scoring.features.dataset import TrainingSet

    data = load_deal_history(company / "deals.csv", company / "stage_history.csv")
    rows = TrainingSet(data, pd.Timestamp(END), 14).snapshots.rows
    rows = rows[rows["outcome"] != "open"]
    categorical = ["stage", *[n for n, k in data.features.items() if k == "categorical"]]
    numeric = ["days_in_stage", "age_days", "amount", *[n for n, k in data.features.items() if k == "numeric"]]
    x = rows[categorical + numeric].copy()
    x[categorical] = x[categorical].astype(object).fillna("missing")
    pipeline = Pipeline([
        ("columns", ColumnTransformer([("cat", OneHotEncoder(handle_unknown="ignore"), categorical)],
                                      remainder="passthrough")),
        ("model", CalibratedClassifierCV(LGBMClassifier(n_estimators=150, num_leaves=15, verbose=-1), method="isotonic",
                                         cv=3)),
    ])
    pipeline.fit(x, rows["outcome"].eq("won"))
    mlflow.set_tracking_uri(f"sqlite:///{work / 'mlflow-sklearn.db'}")
    with mlflow.start_run():
        info = mlflow.sklearn.log_model(pipeline, name="pipeline", serialization_format="cloudpickle",
                                        pyfunc_predict_fn="predict_proba", input_example=x.head(2),
                                        pip_requirements=["scikit-learn", "lightgbm", "pandas"])
    return info.model_uri, categorical + numeric


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--deals", type=int, default=20000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--pairs", type=int, default=30, help="alternating one-second windows of batches, ours and "
                                                              "mlflow's (0: none)")
    parser.add_argument("--batch-clients", type=int, default=2,
                        help="connections sending batches of 1,000 (1: a sequential client, one batch at a time)")
    parser.add_argument("--workers", type=int, default=1, help="server processes of ours (scoring serve --workers)")
    parser.add_argument("--mlflow-workers", type=int, default=None,
                        help="server processes of mlflow models serve (-w; default: as many as ours)")
    parser.add_argument("--load", nargs="+", choices=("wrk", "python"), default=None,
                        help="load generators (default: both, wrk only if it is on the PATH)")
    args = parser.parse_args()
    generators = args.load or (["wrk", "python"] if shutil.which("wrk") else ["python"])
    if "wrk" in generators and not shutil.which("wrk"):
        raise SystemExit("wrk is not on the PATH (apt install wrk), or leave it out: --load python")
    os.environ.update(MLFLOW_DISABLE_TELEMETRY="true", DO_NOT_TRACK="true")
    bin_dir = str(Path(sys.executable).parent)
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "SCORING_POLL_SECONDS": "0"}
    work = Path(tempfile.mkdtemp(prefix="serve-bench-"))
    processes: list[subprocess.Popen[bytes]] = []
    try:
        from scoring.data.contract import load_deal_history
        from scoring.data.demo import DemoCompany
        from scoring.training.pipeline import train_and_log

        print(f"demo company of {args.deals:,} deals; training our model and the sklearn pipeline ...", flush=True)
        company = work / "company"
        DemoCompany().generate(args.deals, seed=3, end=END).write(company)
        os.chdir(work)
        data = load_deal_history(company / "deals.csv", company / "stage_history.csv")
        train_and_log(data, as_of=END, promote="always", tracking_uri=f"sqlite:///{work / 'mlflow.db'}",
                      export_dir=work / "models")
        sk_uri, sk_columns = sklearn_pipeline_model(company, work)

        open_deals = pd.read_csv(company / "open_deals.csv", dtype=str)
        records = [{k: v for k, v in r.items() if isinstance(v, str)} for r in open_deals.to_dict(orient="records")]
        batch = (records * (1000 // len(records) + 1))[:1000]
        batch = [dict(r, deal_id=f"{r['deal_id']}-{i}") for i, r in enumerate(batch)]
        ours_one = {"as_of": END, "deals": records[:1]}
        ours_batch = {"as_of": END, "deals": batch, "top_factors": 0}  # probabilities, timing: what mlflow's answers hold
        ours_batch_factors = {"as_of": END, "deals": batch}  # and the top 3 factors up and down (TreeSHAP)
        from scoring.scores import deal_state  # the sklearn inputs: the same deals as snapshot state
        from scoring.tracking import load_bundle
        bundle, _ = load_bundle("models:/pipeline-scoring@champion", f"sqlite:///{work / 'mlflow.db'}")
        from scoring.data.contract import load_open_deals
        state, _ = deal_state(bundle, load_open_deals(pd.DataFrame(batch), bundle.config), pd.Timestamp(END))
        sk_frame = state[sk_columns].copy()
        cats = [c for c in sk_columns if sk_frame[c].dtype == object or c == "stage"]
        sk_frame[cats] = sk_frame[cats].astype(object).fillna("missing")
        sk_records = sk_frame.to_dict(orient="records")
        sk_one = {"dataframe_records": sk_records[:1]}
        sk_batch = {"dataframe_records": sk_records}

        ports = {name: free_port() for name in ("ours", "mlflow", "noop")}
        mlflow_workers = args.mlflow_workers or args.workers
        print(f"server processes: ours {args.workers}, mlflow's {mlflow_workers}", flush=True)
        ours = subprocess.Popen([sys.executable, "-m", "scoring.cli.main", "serve", "--port", str(ports["ours"]),
                                 "--workers", str(args.workers)],
                                env={**env, "MLFLOW_TRACKING_URI": f"sqlite:///{work / 'mlflow.db'}",
                                     "SCORING_ACCESS_LOG": "false"}, cwd=work,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        processes.append(ours)
        ready = wait_ready(f"http://127.0.0.1:{ports['ours']}/readyz", ours)
        print(f"scoring serve ready in {ready:.2f} s (embedded store, champion loaded)", flush=True)

        mlflow_bin = shutil.which("mlflow", path=env["PATH"])
        if mlflow_bin is None:
            raise SystemExit("mlflow is not installed beside this Python (pip install -e '.[dev]')")
        processes.append(subprocess.Popen([mlflow_bin, "models", "serve", "-m", sk_uri, "--env-manager", "local",
                                           "-p", str(ports["mlflow"]), "-h", "127.0.0.1", "-w", str(mlflow_workers)],
                                          env={**env, "MLFLOW_TRACKING_URI": f"sqlite:///{work / 'mlflow-sklearn.db'}"},
                                          cwd=work, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        wait_ready(f"http://127.0.0.1:{ports['mlflow']}/ping", processes[-1])
        (work / "noop_app.py").write_text(NOOP)
        processes.append(subprocess.Popen([sys.executable, "-m", "uvicorn", "noop_app:app", "--port", str(ports["noop"]),
                                           "--log-level", "warning"], env=env, cwd=work,
                                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        noop_url = f"http://127.0.0.1:{ports['noop']}/noop"
        deadline = time.perf_counter() + 60
        while time.perf_counter() < deadline:
            try:
                httpx.post(noop_url, json={})
                break
            except httpx.HTTPError:
                time.sleep(0.1)

        bodies = work / "bodies"
        bodies.mkdir()
        for name, payload in {"ours_one": ours_one, "ours_batch": ours_batch, "ours_batch_factors": ours_batch_factors,
                              "sk_one": sk_one, "sk_batch": sk_batch}.items():
            (bodies / f"{name}.json").write_text(json.dumps(payload))
        targets = {
            "ours": (f"http://127.0.0.1:{ports['ours']}/v1/score", "ours_one", "ours_batch"),
            "mlflow": (f"http://127.0.0.1:{ports['mlflow']}/invocations", "sk_one", "sk_batch"),
            "noop": (noop_url, "ours_one", "ours_batch"),
            "factors": (f"http://127.0.0.1:{ports['ours']}/v1/score", "ours_one", "ours_batch_factors"),
        }
        loaders = {"wrk": load_wrk, "python": load_python}
        for generator in generators:
            measure = loaders[generator]
            single: dict[str, list[float]] = {k: [] for k in targets}
            rows: dict[str, list[float]] = {k: [] for k in targets}
            latency: dict[str, list[tuple[float, float]]] = {k: [] for k in targets}
            for url, one, many in targets.values():  # warm up
                measure(url, bodies / f"{one}.json", 1.0, args.clients)
                measure(url, bodies / f"{many}.json", 1.0, 1)
            for run in range(args.runs):
                for name, (url, one, many) in targets.items():
                    if name != "factors":  # the same single-deal requests as "ours"
                        load = measure(url, bodies / f"{one}.json", args.seconds, args.clients)
                        assert load.failed == 0, f"{name}: {load.failed} failed single-deal requests"
                        single[name].append(load.rate)
                        load = measure(url, bodies / f"{one}.json", args.seconds / 2, 1)  # one client, one at a time
                        assert load.failed == 0, f"{name}: {load.failed} failed single-deal requests"
                        latency[name].append((load.p50, load.p99))
                    load = measure(url, bodies / f"{many}.json", args.seconds, args.batch_clients)
                    assert load.failed == 0, f"{name}: {load.failed} failed batch requests"
                    rows[name].append(load.rate * 1000)
                print(f"{generator} run {run + 1}: " + ", ".join(
                    f"{k} {single[k][-1]:.0f} req/s, {rows[k][-1]:,.0f} rows/s, p50 {latency[k][-1][0]:.2f} ms"
                    if single[k] else f"{k} {rows[k][-1]:,.0f} rows/s" for k in targets), flush=True)
            med = {k: statistics.median(v) for k, v in single.items() if v}
            med_rows = {k: statistics.median(v) for k, v in rows.items()}

            def ratio(of: dict[str, list[float]], a: str, b: str) -> float:
                """The median over runs of each run's own ratio ``a`` / ``b`` (measured within a minute of each other)."""
                return statistics.median(x / y for x, y in zip(of[a], of[b]))

            print(f"\n{generator}: medians of {args.runs} runs ({args.clients} connections for single deals, "
                  f"{args.batch_clients} for batches of 1,000; latency: one client sending one deal at a time):")
            print(f"{'':30}{'single req/s':>14}{'batch rows/s':>16}{'p50 ms':>10}{'p99 ms':>10}")
            for name, label in (("ours", "pipeline-scoring /v1/score"), ("factors", "  same, batches with factors"),
                                ("mlflow", "mlflow models serve (sklearn)"), ("noop", "FastAPI no-op (HTTP floor)")):
                p50, p99 = (statistics.median(v) for v in zip(*latency[name])) if latency[name] else (np.nan, np.nan)
                print(f"{label:30}{med.get(name, np.nan):>14,.0f}{med_rows[name]:>16,.0f}{p50:>10.2f}{p99:>10.2f}")
            print("ratios: medians of the ratios within each run")
            print(f"single deals: {ratio(single, 'ours', 'mlflow'):.1f}x mlflow models serve (target 5x), "
                  f"{ratio(single, 'ours', 'noop'):.2f} of the no-op floor (target 0.5)")
            print(f"batches of 1,000: {ratio(rows, 'ours', 'mlflow'):.2f}x mlflow models serve's rows/s "
                  f"(target 3x); with factors {ratio(rows, 'factors', 'mlflow'):.2f}x\n", flush=True)
            interleaved(measure, targets, bodies, args.pairs, args.batch_clients)
        ready_times = []
        for _ in range(3):  # readiness: a fresh process each time
            port = free_port()
            t0 = time.perf_counter()
            p = subprocess.Popen([sys.executable, "-m", "scoring.cli.main", "serve", "--port", str(port)],
                                 env={**env, "MLFLOW_TRACKING_URI": f"sqlite:///{work / 'mlflow.db'}"}, cwd=work,
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            wait_ready(f"http://127.0.0.1:{port}/readyz", p)
            ready_times.append(time.perf_counter() - t0)
            p.terminate()
            p.wait()
        print(f"scoring serve ready (process start to /readyz 200): median {statistics.median(ready_times):.2f} s "
              f"of 3 (target 5 s)")
    finally:
        for p in processes:
            p.terminate()
        for p in processes:
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
