"""The model in service and how it changes: loaded at start, swapped atomically when the champion moves.

Requests read ``holder.current`` once and keep that object to the end, so a swap never changes the
model under a request in flight. A new version is loaded off the event loop; only a version that
loads completely replaces the old one. If the tracking store cannot be reached at start, the bundle
that ``scoring train`` exported to ``models/`` is served instead, and ``/readyz`` and ``/v1/model`` say so.
"""
from __future__ import annotations

import gc
import logging
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from scoring.bundle import ModelBundle
from scoring.errors import ModelError, ScoringError
from scoring.models.compiled import compile_cache_dir
from scoring.serving.settings import Settings
from scoring.tracking import load_bundle, require_store, tracking_uri

log = logging.getLogger("serving")


@dataclass(frozen=True)
class LoadedModel:
    """A bundle in service and where it came from."""

    bundle: ModelBundle
    name: str
    version: str
    source: str  # "registry", "file" or "fallback"
    loaded_at: str
    detail: str | None = None

    @property
    def ref(self) -> dict[str, str]:
        """How answers name the model: ``{"name", "version"}``."""
        return {"name": self.name, "version": self.version}


class ModelHolder:
    """Holds the model in service; ``refresh`` looks for a new champion and swaps it in."""

    def __init__(self, settings: Settings, on_swap: Callable[[], None] | None = None) -> None:
        self.settings = settings
        self.on_swap = on_swap  # told when a model replaces another outside refresh() (a late first lookup)
        self.store = settings.tracking_uri or tracking_uri()
        self.current: LoadedModel | None = None
        self.error: str | None = None  # why the last load failed, if it did
        self._refused: dict[str, str] = {}  # version -> why it failed to load (not retried by polling)
        self._lock = threading.Lock()
        self.swaps = 0

    @property
    def alias(self) -> str | None:
        """The alias the service follows (``champion``), or None when it serves a fixed version or file."""
        uri = self.settings.model_uri
        return uri.partition("@")[2] or None if uri.startswith("models:/") else None

    def load_at_start(self) -> None:
        """Load the configured model; for a registry URI, wait at most ``store_timeout_seconds`` for the store,
        then serve the exported bundle while the lookup goes on in the background (its model is swapped in when
        it arrives, and polling retries the store as usual)."""
        if not self.settings.model_uri.startswith("models:/"):
            self._load_file()
        else:
            done = threading.Event()
            lookup = threading.Thread(target=self._first_lookup, args=(done,), name="first-store-lookup", daemon=True)
            lookup.start()
            if not done.wait(self.settings.store_timeout_seconds):
                with self._lock:
                    if self.current is None:
                        self.error = (f"the tracking store did not answer within {self.settings.store_timeout_seconds:g} s "
                                      "(still trying in the background)")
                        self._load_fallback()
        settle_heap()

    def _load_file(self) -> None:
        try:
            self.current = self._load(self.settings.model_uri)
        except (ScoringError, OSError) as exc:
            self.error = str(exc)
            log.error("could not load %s: %s", self.settings.model_uri, self.error)
            return
        log.info("serving %s version %s (from the %s)", self.current.name, self.current.version, self.current.source)

    def _first_lookup(self, done: threading.Event) -> None:
        """The champion from the store, or the fallback when the store says no (sets ``done`` either way); a
        late answer replaces the fallback."""
        try:
            loaded = self._load(self.settings.model_uri)
        except Exception as exc:  # noqa: BLE001 - any store failure (a driver's own errors too) means the fallback
            with self._lock:
                if self.current is None:
                    self.error = f"{type(exc).__name__}: {exc}" if not isinstance(exc, ScoringError) else str(exc)
                    self._load_fallback()
                else:
                    log.warning("the tracking store failed after the fallback was served: %s", exc)
            done.set()
            return
        with self._lock:
            late = self.current is not None
            if late and self.current.source != "fallback":  # polling already swapped a version in: keep it
                done.set()
                return
            self.error = None  # cleared before the swap: a reader that sees the new model never sees the old error
            self.current = loaded
            if late:
                self.swaps += 1
        log.info("serving %s version %s (from the %s%s)", loaded.name, loaded.version, loaded.source,
                 ", which answered after the fallback was served" if late else "")
        if late and self.on_swap is not None:
            self.on_swap()
        done.set()

    def _load_fallback(self) -> None:
        """Serve the bundle ``scoring train`` exported (call with the lock held)."""
        path = Path(self.settings.fallback_dir) / f"{self.settings.model_name}.joblib"
        try:
            bundle = ModelBundle.load(path)
        except ScoringError as exc:
            self.error = f"{self.error}; and no usable exported bundle: {exc}"
            log.error("no model to serve: %s", self.error)
            return
        version_file = path.with_suffix(".version")
        version = version_file.read_text(encoding="utf-8").strip() if version_file.is_file() else "unknown"
        problem = _compiled(bundle, self.settings)
        self.current = LoadedModel(bundle, self.settings.model_name, version, "fallback", _now(),
                                   f"the tracking store could not give {self.settings.model_uri} ({self.error}); "
                                   f"serving the bundle exported to {path} (version {version})"
                                   + (f"; {problem}" if problem else ""))
        log.warning(self.current.detail)

    def refresh(self, force: bool = False) -> bool:
        """Swap in the version the alias names now, if it differs; True if the model changed.

        A version that fails to load is refused (the old model keeps serving) and not retried by polling
        until the alias moves again; ``force`` (the admin call) retries it.
        """
        with self._lock:
            alias = self.alias
            if alias is None:
                return False
            name = self.settings.model_name
            try:
                require_store(self.store)
                version = str(MlflowClient(self.store, self.store).get_model_version_by_alias(name, alias).version)
            except (MlflowException, ModelError) as exc:
                self.error = f"could not read the {alias} alias of {name}: {exc}"
                return False
            current = self.current
            if current is not None and current.source == "registry" and current.version == version:
                return False
            if version in self._refused and not force:
                return False
            try:
                loaded = self._load(f"models:/{name}/{version}")
            except Exception as exc:  # noqa: BLE001 - whatever breaks, the old model keeps serving
                self._refused[version] = f"{type(exc).__name__}: {exc}"
                self.error = f"version {version} failed to load and was refused: {self._refused[version]}"
                log.error(self.error)
                return False
            self.error = None  # cleared first: a reader that sees the new model never sees the old error
            self.current = loaded  # one reference assignment: requests in flight keep the model they read
            self.swaps += 1
            log.info("now serving %s version %s", name, version)
        settle_heap()
        return True

    def _load(self, uri: str) -> LoadedModel:
        bundle, info = load_bundle(uri, self.store)
        if info.get("warning"):
            log.warning("%s", info["warning"])
        log.info("%s serves (%s)", bundle.served, bundle.served_reason or "the win model")
        source = "registry" if ":/" in uri else "file"
        return LoadedModel(bundle, info["name"], info["version"], source, _now(), _compiled(bundle, self.settings))


#: Container objects allocated (less those freed) between two of the collector's young passes. Python's 700
#: suits programs that build long-lived structures; a request for 1,000 deals allocates some 20,000 that it
#: frees itself, so the default makes 20-30 passes over them a request: about 1 ms of a 25 ms batch with
#: factors (``benchmarks/serve_bench.py``; alternating requests, one process). Cycles still get collected.
YOUNG_THRESHOLD = 50_000


def settle_heap() -> None:
    """Collect, then freeze what is alive (the libraries, the model) so that the garbage collector's later
    passes skip it: a request makes many small objects, and full passes over the heap of pandas, MLflow
    and the model cost a batch of 1,000 deals about a quarter of its time. Young passes come every
    ``YOUNG_THRESHOLD`` objects."""
    gc.unfreeze()
    gc.collect()
    gc.freeze()
    gc.set_threshold(YOUNG_THRESHOLD, *gc.get_threshold()[1:])


def _compiled(bundle: ModelBundle, settings: Settings) -> str | None:
    """Compile the bundle's booster for speed; a warning if it could not (it then predicts with LightGBM)."""
    problem = bundle.compile(settings.cache_dir or compile_cache_dir(os.environ))
    if problem:
        log.warning(problem)
    return problem


def _now() -> str:
    return pd.Timestamp.now(tz="UTC").isoformat(timespec="seconds")
