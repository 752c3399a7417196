"""The pipeline store as the service sees it: opened when first needed (never created: ``scoring import``
makes it), read once per import, forecasts cached per (import, model, date, period), and the day's forecast
snapshot kept (the first worker to write it wins; the others find it there)."""
from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

import pandas as pd
from sqlalchemy.exc import IntegrityError, OperationalError

from scoring.data.contract import DealHistory
from scoring.errors import ConfigError, ScoringError
from scoring.forecast.revenue import Forecast
from scoring.report.pipeline import PAGE_PERIODS, StoredPipeline, current_snapshots, pipeline_forecast
from scoring.serving.holder import LoadedModel
from scoring.store.pipeline import ImportResult, PipelineStore, open_store, store_url

log = logging.getLogger("serving")
#: Forecasts kept per process (each is a few hundred kilobytes).
CACHED = 32


class StoreHolder:
    """The service's pipeline store, read lazily and cached."""

    def __init__(self, url: str | None) -> None:
        self.url = store_url(url)
        self.store: PipelineStore | None = None
        self.error: str | None = None
        self._lock = threading.Lock()
        self._pipeline: tuple[Any, StoredPipeline] | None = None
        self._forecasts: dict[tuple[Any, ...], Forecast] = {}
        self._pages: dict[tuple[Any, ...], dict[str, Any]] = {}

    def get(self) -> PipelineStore | None:
        """The store, or None (and ``error`` says why) when there is none yet."""
        with self._lock:
            if self.store is None:
                try:
                    self.store = open_store(self.url)
                    self.error = None
                except (ConfigError, OperationalError) as exc:
                    self.error = str(exc).splitlines()[0]
            return self.store

    def pipeline(self) -> tuple[Any, StoredPipeline] | None:
        """(the last import's id, the stored deals and history), read again only after a new import."""
        store = self.get()
        if store is None:
            return None
        last = store.last_import()
        stamp = last["id"] if last else None
        with self._lock:
            if self._pipeline is None or self._pipeline[0] != stamp:
                pipeline = StoredPipeline(store.deals(), store.history(), store.signals, store.field_changes())
                self._pipeline = (stamp, pipeline)
                self._forecasts.clear()
                self._pages.clear()
            return self._pipeline

    def forecast(self, model: LoadedModel, as_of: pd.Timestamp, period: str, periods: int) -> Forecast | None:
        """The stored pipeline's forecast (cached), or None without a store."""
        read = self.pipeline()
        if read is None:
            return None
        stamp, pipeline = read
        key = (stamp, model.name, model.version, model.source, as_of, period, periods)
        with self._lock:
            cached = self._forecasts.get(key)
        if cached is not None:
            return cached
        result = pipeline_forecast(model.bundle, pipeline, as_of, period, periods, model_info=model.ref)
        with self._lock:
            if len(self._forecasts) >= CACHED:
                self._forecasts.pop(next(iter(self._forecasts)))
            self._forecasts[key] = result
        return result

    def page(self, model: LoadedModel, as_of: pd.Timestamp, period: str,
             make: Callable[[], dict[str, Any]]) -> dict[str, Any]:
        """What the managers' page shows (made by ``make``), kept until the next import, model or snapshot."""
        store = self.get()
        read = self.pipeline()
        if store is None or read is None:
            return make()
        key = (read[0], model.name, model.version, model.source, as_of, period, store.snapshot_count())
        with self._lock:
            cached = self._pages.get(key)
        if cached is None:
            cached = make()
            with self._lock:
                if len(self._pages) >= CACHED:
                    self._pages.pop(next(iter(self._pages)))
                self._pages[key] = cached
        return dict(cached)

    def put(self, data: DealHistory, source: str, model: LoadedModel | None) -> ImportResult:
        """Keep a batch of deals (creating the store if there is none: writing is what makes one), then the
        import's forecast snapshot."""
        return self._write(lambda store: store.import_history(data, source, keep_absent=False), model)

    def patch(self, deal_ids: list[str], complete: Callable[[pd.DataFrame, pd.Timestamp], DealHistory], source: str,
              model: LoadedModel | None) -> ImportResult:
        """Keep what ``complete`` makes of the stored deals ``deal_ids`` (:meth:`PipelineStore.update_deals`),
        as :meth:`put` does."""
        return self._write(lambda store: store.update_deals(deal_ids, complete, source), model)

    def _write(self, write: Callable[[PipelineStore], ImportResult], model: LoadedModel | None) -> ImportResult:
        with self._lock:
            if self.store is None:
                self.store = open_store(self.url, create=True)
                self.error = None
            store = self.store
        result = write(store)
        if result.changed and model is not None:
            try:
                for row in current_snapshots(lambda day, period: self.forecast(model, day, period, PAGE_PERIODS),
                                             "import", model.version, _now()):
                    try:
                        store.record_snapshot(row)
                    except IntegrityError:  # the daily snapshot of that day was written at the same moment
                        log.info("today's %s snapshot was written by another writer meanwhile", row["period"])
            except (ScoringError, OperationalError):  # the deals are kept (committed): log why the snapshot is not
                log.exception("the forecast snapshot after an import failed (the deals are kept)")
        return result

    def snapshot_today(self, model: LoadedModel) -> int:
        """Keep today's snapshot of the current month's and quarter's forecast; how many were written."""
        store = self.get()
        if store is None:
            return 0
        written = 0
        for row in current_snapshots(lambda day, period: self.forecast(model, day, period, PAGE_PERIODS), "daily",
                                     model.version, _now()):
            try:
                written += store.record_snapshot(row)
            except IntegrityError:  # another worker wrote it first
                continue
        return written


def _now() -> pd.Timestamp:
    return pd.Timestamp.now(tz="UTC").tz_localize(None).floor("s")
