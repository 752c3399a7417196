"""Dask, for work larger than one machine: a cluster, batch scoring of partitioned Parquet, backtest dates
in parallel.

Nothing here re-implements the model: each partition (or as-of date) goes through the same library
functions as on one machine (``load_open_deals``, ``ModelBundle.score``, ``backtest_date``); Dask only
decides where and when they run. Without a scheduler address a ``LocalCluster`` of worker processes
is started on this machine; with one, the same code runs on that cluster (its workers need this
package installed). Dask is imported only when these functions run.
"""
from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from scoring.bundle import ModelBundle
from scoring.contract import load_open_deals
from scoring.errors import ConfigError

if TYPE_CHECKING:
    from distributed import Client


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
    with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, memory_limit=memory_limit,
                      dashboard_address=None) as cluster, Client(cluster) as client:
        yield client


@dataclass(frozen=True)
class BatchScores:
    """What a batch scoring wrote."""

    out_dir: Path
    partitions: int
    deals: int
    expected_revenue: float
    fixed_expected_revenue: float


def score_parquet(bundle: ModelBundle, source: str | Path, out_dir: str | Path, as_of: pd.Timestamp | str,
                  client: Client, top: int = 3) -> BatchScores:
    """Score the open deals of a Parquet file, folder or glob into a folder of Parquet parts, partition by
    partition: memory follows the size of a partition (a file or row group of the input), not of the input.
    Columns as ``scoring score`` writes them."""
    import dask
    import dask.dataframe as dd

    as_of = pd.Timestamp(as_of)
    source, out_dir = str(source), Path(out_dir)
    if not str(source).endswith((".parquet", ".parq")) and not Path(source).is_dir():
        raise ConfigError(f"{source}: the dask engine reads Parquet (a .parquet file, a folder of them or a glob)")
    frame = dd.read_parquet(source, split_row_groups="infer")
    sample = frame.head(20, npartitions=-1 if frame.npartitions < 4 else 4)
    if sample.empty:
        raise ConfigError(f"{source}: no deals to score")
    meta = _score_partition(sample, bundle, as_of, top).iloc[:0]
    shared = dask.delayed(bundle, pure=True, traverse=False)  # sent to each worker once, compiled there once
    scored = frame.map_partitions(_score_partition, shared, as_of, top, meta=meta, enforce_metadata=False,
                                  align_dataframes=False)
    out_dir.mkdir(parents=True, exist_ok=True)
    totals = scored[["expected_revenue", "fixed_expected_revenue"]].sum()
    written = scored.to_parquet(out_dir, write_index=False, compute=False)
    _, sums, count = dask.compute(written, totals, scored.shape[0])  # one pass over the input
    return BatchScores(out_dir, frame.npartitions, int(count), float(sums["expected_revenue"]),
                       float(sums["fixed_expected_revenue"]))


def _score_partition(part: pd.DataFrame, bundle: ModelBundle, as_of: pd.Timestamp, top: int) -> pd.DataFrame:
    """One partition through the same path as ``scoring score``: the data contract, then the bundle."""
    if getattr(bundle.model, "compiled_", None) is None:
        bundle.compile()  # the worker's copy; the native code is cached on disk, so this is quick after once
    deals = load_open_deals(part.reset_index(drop=True), bundle.config)
    scores, _ = bundle.score(deals, as_of, top)
    return scores


def map_on_cluster(client: Client, function: Any, shared: Any, items: list[Any]) -> list[Any]:
    """``[function(shared, item) for item in items]`` on the cluster, ``shared`` sent to every worker once."""
    shared_future = client.scatter(shared, broadcast=True)
    futures = client.map(function, [shared_future] * len(items), items, pure=False)
    return client.gather(futures)
