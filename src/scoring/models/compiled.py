"""The hazard booster as native code (lleaves), its trees split by whether they read the interval.

The win model scores each open deal once per time interval: the deal's features with the interval's inputs
last. A tree that never splits on them gives the same raw score in all of a deal's rows, so those
trees are compiled apart and evaluated once per deal, the others once per (deal, interval) row; the raw
scores add up and a softmax gives the booster's probabilities (LightGBM's to about 1e-15). In the 100,000-deal
demo model 49 of 450 trees ignore the interval's inputs (141 before the booster read the stage and interval as
one). Large inputs are predicted on two threads: the caller's and
one kept for the purpose (lleaves would start new threads at every call).
"""
from __future__ import annotations

import functools
import hashlib
import platform
import re
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from importlib.metadata import version
from pathlib import Path
from typing import Any

import lightgbm as lgb
import numpy as np

#: From this many (deal, interval) rows on, the predictions run on two threads.
THREADS_FROM = 2000

_STUMP = ("num_leaves=1\nnum_cat=0\nsplit_feature=\nsplit_gain=\nthreshold=\ndecision_type=\nleft_child=\n"
          "right_child=\nleaf_value=0\nleaf_weight=\nleaf_count=\ninternal_value=\ninternal_weight=\n"
          "internal_count=\nis_linear=0\nshrinkage=1\n")


def split_model_text(text: str, features: tuple[int, ...]) -> tuple[str, str]:
    """A LightGBM model text as two of the same shape whose raw scores add up to its own: the trees that never
    split on any of ``features`` (their indices), and the others. Each holds the other's trees as single leaves of
    value 0 (a tree's class is its position, so none can be left out)."""
    read = {str(f) for f in features}
    head, found, rest = text.partition("\nTree=0\n")
    trees, ended, tail = rest.partition("\nend of trees\n")
    if not found or not ended:
        raise ValueError("not a LightGBM model text with trees")
    blocks = [block for block in f"Tree=0\n{trees}".split("\n\n") if block.strip()]
    reads = [bool(read.intersection(re.search(r"^split_feature=(.*)$", block, re.M).group(1).split()))  # type: ignore[union-attr]
             for block in blocks]
    head = re.sub(r"\ntree_sizes=[^\n]*", "", head)  # sizes change: LightGBM reads the trees one after another

    def model(keep: bool) -> str:
        kept = [block if read == keep else f"Tree={i}\n{_STUMP}" for i, (block, read) in enumerate(zip(blocks, reads))]
        joined = "\n\n".join(kept)
        # through LightGBM, which writes the text again with its tree sizes (lleaves needs them)
        return lgb.Booster(model_str=f"{head}\n{joined}\n\nend of trees\n{tail}").model_to_string()

    return model(False), model(True)


class CompiledHazards:
    """A multiclass hazard booster compiled in two parts, predicting (deal, interval) rows."""

    def __init__(self, per_deal: Any, per_interval: Any, deal_trees: int, interval_trees: int) -> None:
        self.per_deal, self.per_interval = per_deal, per_interval
        self.deal_trees, self.interval_trees = deal_trees, interval_trees  # how many trees of each part are real
        self._pool: ThreadPoolExecutor | None = None

    @classmethod
    def compile(cls, booster: lgb.Booster, interval: tuple[int, ...], cache_dir: str | Path) -> CompiledHazards:
        """``booster`` (whose features ``interval``, their indices, change with the interval) compiled; see
        :func:`compile_text`."""
        per_deal, per_interval = split_model_text(booster.model_to_string(), interval)
        total = booster.num_trees()
        return cls(compile_text(per_deal, cache_dir), compile_text(per_interval, cache_dir),
                   total - per_deal.count("\nnum_leaves=1\n"), total - per_interval.count("\nnum_leaves=1\n"))

    def predict(self, stacked: np.ndarray, k: int, threads: bool = True) -> np.ndarray:
        """Class probabilities, shape (deals, k, classes), of rows holding each deal ``k`` times in a row (one
        per interval, the interval's index last); on this thread alone unless ``threads`` (then on two from
        THREADS_FROM rows on)."""
        n = len(stacked) // k
        first = np.ascontiguousarray(stacked[::k])  # any interval: the per-deal trees do not read it
        if len(stacked) < THREADS_FROM or not threads:
            raw = self.per_interval.predict(stacked, n_jobs=1)
            shared = self.per_deal.predict(first, n_jobs=1)
        else:  # two threads of about equal work: this one the per-deal trees and the first rows, the pool the rest
            if self._pool is None:
                self._pool = ThreadPoolExecutor(1, thread_name_prefix="lleaves")
            relative = self.deal_trees / max(self.interval_trees * k, 1)  # per-deal work / per-interval work
            cut = int(n * max(0.0, 1 - relative) / 2) * k
            rest = self._pool.submit(self.per_interval.predict, stacked[cut:], 1)
            shared = self.per_deal.predict(first, n_jobs=1)
            raw = np.concatenate([self.per_interval.predict(stacked[:cut], n_jobs=1), rest.result()])
        raw += np.repeat(shared, k, axis=0)
        # softmax, as LightGBM's multiclass objective; reductions over the class axis written out (several
        # times faster than numpy's over a short last axis)
        columns = raw.T
        raw -= functools.reduce(np.maximum, columns)[:, None]
        np.exp(raw, out=raw)
        raw /= sum(columns)[:, None]
        return raw.reshape(n, k, raw.shape[1])


def compile_text(text: str, cache_dir: str | Path) -> Any:
    """A LightGBM model text compiled to native code by lleaves, giving raw scores.

    Compiling takes a few seconds; the object file is cached in ``cache_dir`` under a key of the model,
    the compiler and this CPU (native code is specific to the machine), so the next load takes milliseconds.
    """
    import lleaves
    import llvmlite.binding as llvm
    from filelock import FileLock

    tag = f"{version('lleaves')} {version('llvmlite')} {platform.machine()} {llvm.get_host_cpu_name()} raw"
    key = hashlib.sha256(f"{tag}\n{text}".encode()).hexdigest()[:24]
    cache = Path(cache_dir)
    cache.mkdir(parents=True, exist_ok=True)
    model_file = cache / f"{key}.txt"
    with FileLock(str(cache / f"{key}.lock"), timeout=300):  # one compiler per model at a time
        if not model_file.exists():
            model_file.write_text(text, encoding="utf-8")
        compiled = lleaves.Model(model_file=str(model_file))
        compiled.compile(cache=str(cache / f"{key}.o"), raw_score=True)
    return compiled


def compile_cache_dir(environ: Mapping[str, str]) -> Path:
    """Where compiled boosters are cached, by the given environment: ``SCORING_CACHE_DIR``, else the user's cache
    folder (``XDG_CACHE_HOME`` or ``~/.cache``)."""
    if environ.get("SCORING_CACHE_DIR"):
        return Path(environ["SCORING_CACHE_DIR"])
    base = Path(environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "pipeline-scoring" / "compiled"
