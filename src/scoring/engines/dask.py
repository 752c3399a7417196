"""Dask, for work larger than one machine: a cluster, training's snapshots and boosters on it, batch
scoring of partitioned Parquet, backtest dates in parallel.

Nothing here re-implements the model: each partition (or as-of date) goes through the same library
functions as on one machine (``take_snapshots`` on a partition of the deals, ``load_open_deals`` and
``ModelBundle.score``, ``backtest_date``), and the boosters are fitted by lightgbm.dask with the
win model's own parameters; Dask only decides where and when they run. Without a scheduler address
a ``LocalCluster`` of worker processes is started on this machine; with one, the same code runs on
that cluster (its workers need this package installed). Dask is imported only when these run.
"""
from __future__ import annotations

import contextlib
import dataclasses
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import lightgbm as lgb
import numpy as np
import pandas as pd

from scoring.bundle import ModelBundle
from scoring.data.contract import DealHistory, load_open_deals
from scoring.engines import Engine
from scoring.errors import ConfigError
from scoring.features.snapshots import SnapshotTable, take_snapshots
from scoring.scores import score_deals

if TYPE_CHECKING:
    from distributed import Client

    from scoring.data.signals import DealSignals


@contextlib.contextmanager
def dask_client(scheduler: str | None = None, workers: int = 2, memory_limit: str = "4GB",
                timeout: str = "20s") -> Iterator[Client]:
    """A client of the cluster at ``scheduler`` (waiting up to ``timeout`` to connect), else of a new
    ``LocalCluster`` of ``workers`` single-threaded processes with ``memory_limit`` each (closed on exit)."""
    from distributed import Client, LocalCluster

    if scheduler:
        try:
            client = Client(scheduler, timeout=timeout)
        except OSError as exc:
            raise ConfigError(f"cannot reach the Dask scheduler at {scheduler}: {exc}") from None
        with client:
            yield client
        return
    # the diagnostics server on a free port: 8787 may belong to another cluster already
    with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, memory_limit=memory_limit,
                      dashboard_address=":0") as cluster, Client(cluster) as client:
        yield client


def dask_engine(client: Client, data: DealHistory) -> Engine:
    """Training on the cluster of ``client``: snapshots of ``data`` by partitions of its deals, boosters by
    lightgbm.dask (pass to ``train_bundle``/``train_and_log``)."""
    return Engine("dask", DaskSnapshots(client, data), DaskTrainer(client))


def _workers(client: Client) -> int:
    return max(len(client.scheduler_info()["workers"]), 1)


class DaskSnapshots:
    """``take_snapshots`` on the cluster: the deals (with their stage history) are split by a hash of their id
    into partitions held by the workers; each partition's snapshots are taken there, the rows gathered here."""

    def __init__(self, client: Client, data: DealHistory, partitions: int | None = None) -> None:
        self.client, self.data = client, data
        count = partitions or 2 * _workers(client)
        part = _partition_of(data.deals["deal_id"], count)
        history_part = _partition_of(data.history["deal_id"], count)
        pieces = [dataclasses.replace(data, deals=data.deals[part == i].reset_index(drop=True),
                                      history=data.history[history_part == i].reset_index(drop=True),
                                      signals=data.signals.for_deals(data.deals.loc[part == i, "deal_id"]))
                  for i in range(count)]
        self.pieces = client.scatter(pieces)  # spread over the workers, kept there for every call

    def __call__(self, data: DealHistory, dates: pd.DatetimeIndex, cutoff: pd.Timestamp | None = None
                 ) -> SnapshotTable:
        if data is not self.data:  # not the history these partitions came from: take them here
            return take_snapshots(data, dates, cutoff)
        futures = self.client.map(take_snapshots, self.pieces, dates=dates, cutoff=cutoff, pure=False)
        tables = [t for t in self.client.gather(futures) if len(t.rows)]
        del futures  # the workers drop their copies before the rows are put together here
        if not tables:  # no deal open at any of the dates: the (empty) table, with its columns, from here
            return take_snapshots(data, dates, cutoff)
        rows = pd.concat([t.rows for t in tables], ignore_index=True)
        return SnapshotTable(rows, tables[0].cutoff, sum(t.unplaced for t in tables))


def _partition_of(ids: pd.Series, count: int) -> np.ndarray:
    """A stable partition number per deal id (the same id, the same partition, in deals and history)."""
    return (pd.util.hash_array(ids.astype(str).to_numpy(dtype=object)) % np.uint64(count)).astype(int)


@dataclass
class DaskTrainer:
    """Fits the win model's boosters with ``lightgbm.dask`` on the cluster: the rows are split evenly over the
    workers and LightGBM trains data-parallel there, with the win model's parameters."""

    client: Client

    def __call__(self, x: np.ndarray, label: np.ndarray, params: dict[str, Any], feature_names: list[str],
                 categorical: list[int], rounds: int) -> lgb.Booster:
        import dask.array as da
        from lightgbm.dask import DaskLGBMClassifier

        workers = list(self.client.scheduler_info()["workers"])
        bounds = np.linspace(0, len(x), len(workers) + 1).astype(int)
        chunks_x, chunks_y = [], []
        for worker, start, end in zip(workers, bounds[:-1], bounds[1:]):
            if end > start:  # each worker gets its own slice, sent once
                fx, fy = self.client.scatter([x[start:end], label[start:end]], workers=[worker])
                chunks_x.append(da.from_delayed(fx, shape=(end - start, x.shape[1]), dtype=x.dtype))
                chunks_y.append(da.from_delayed(fy, shape=(end - start,), dtype=label.dtype))
        own = {k: v for k, v in params.items() if k not in ("objective", "num_class", "num_threads", "seed",
                                                            "verbosity")}
        model = DaskLGBMClassifier(client=self.client, objective="multiclass", n_estimators=rounds,
                                   random_state=params.get("seed"), verbose=-1, **own)
        with warnings.catch_warnings():  # lightgbm.dask sets each worker's threads itself, and says so
            warnings.filterwarnings("ignore", message="Parameter n_jobs will be ignored", category=UserWarning)
            model.fit(da.concatenate(chunks_x), da.concatenate(chunks_y), feature_name=feature_names,
                      categorical_feature=categorical)
        return model.booster_


@dataclass(frozen=True)
class BatchScores:
    """What a batch scoring wrote."""

    out_dir: Path
    partitions: int
    deals: int
    expected_revenue: float
    fixed_expected_revenue: float


def score_parquet(bundle: ModelBundle, source: str | Path, out_dir: str | Path, as_of: pd.Timestamp | str,
                  client: Client, top: int = 3, cache_dir: str | Path | None = None,
                  signals: DealSignals | None = None) -> BatchScores:
    """Score the open deals of a Parquet file, folder or glob into a folder of Parquet parts, partition by
    partition: memory follows the size of a partition (a file or row group of the input), not of the input.
    Columns as ``scoring score`` writes them. The deals' field history and activities (``signals``), when the
    model reads them, are sent to every worker once; each partition takes its own deals' part of them."""
    import dask
    import dask.dataframe as dd

    as_of = pd.Timestamp(as_of)
    source, out_dir = str(source), Path(out_dir)
    if not source.endswith((".parquet", ".parq")) and not Path(source).is_dir():
        raise ConfigError(f"{source}: the dask engine reads Parquet (a .parquet file, a folder of them or a glob)")
    if out_dir.exists() and (not out_dir.is_dir() or any(out_dir.iterdir())):
        raise ConfigError(f"{out_dir}: give a new or empty folder for the scored parts (parts of an earlier run "
                          "would mix with these)")
    frame = dd.read_parquet(source, split_row_groups="infer")
    sample = frame.head(20, npartitions=min(frame.npartitions, 4))  # the output's columns, from real deals
    if sample.empty:
        raise ConfigError(f"{source}: no deals to score")
    meta = _score_partition(sample, bundle, as_of, top, None, signals).iloc[:0]  # the caller's bundle untouched
    shared = dask.delayed(bundle, pure=True, traverse=False)  # sent to each worker once, compiled there once
    shared_signals = dask.delayed(signals, pure=True, traverse=False)
    scored = frame.map_partitions(_score_partition, shared, as_of, top, cache_dir, shared_signals, meta=meta,
                                  enforce_metadata=False, align_dataframes=False)
    out_dir.mkdir(parents=True, exist_ok=True)
    totals = scored[["expected_revenue", "fixed_expected_revenue"]].sum()
    written = scored.to_parquet(out_dir, write_index=False, compute=False)
    _, sums, count = dask.compute(written, totals, scored.shape[0])  # one pass over the input
    return BatchScores(out_dir, frame.npartitions, int(count), float(sums["expected_revenue"]),
                       float(sums["fixed_expected_revenue"]))


def _score_partition(part: pd.DataFrame, bundle: ModelBundle, as_of: pd.Timestamp, top: int,
                     cache_dir: str | Path | None, signals: DealSignals | None = None) -> pd.DataFrame:
    """One partition through the same path as ``scoring score``: the data contract, then the bundle (with the
    partition's deals' signals). With a ``cache_dir``, the worker's copy of the booster is compiled (cached on
    disk there: quick after once)."""
    if cache_dir is not None and getattr(bundle.model, "compiled_", None) is None:
        bundle.compile(cache_dir)
    deals = load_open_deals(part.reset_index(drop=True), bundle.config)
    scoped = signals.for_deals(deals["deal_id"]) if signals is not None else None
    scores, _ = score_deals(bundle, deals, as_of, top, scoped)
    return scores


def map_on_cluster(client: Client, function: Any, shared: Any, items: list[Any]) -> list[Any]:
    """``[function(shared, item) for item in items]`` on the cluster, ``shared`` sent to every worker once."""
    shared_future = client.scatter(shared, broadcast=True)
    futures = client.map(function, [shared_future] * len(items), items, pure=False)
    return client.gather(futures)
