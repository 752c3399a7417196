"""LightGBM's TreeSHAP contributions, the same numbers, by table lookup: fast for boosters of small trees.

``Booster.predict(pred_contrib=True)`` gives path-dependent TreeSHAP: in each tree, feature f gets its
Shapley value for v(S) = the tree's output when the features in S follow the row and the others are
averaged over the training rows reaching each split (LightGBM's node counts). Within one tree v, and
so every Shapley value, depends on the row only through the direction it takes at each split node:
a tree of m splits has at most 2**m answers. :class:`ContributionTable` computes them once per tree,
by the Shapley formula over subsets of the tree's features; a row then costs its directions (by the
rules of LightGBM's ``Tree::Decision``, missing values and categories included), found per feature by
one binary search or category lookup, one lookup per tree and a sum. LightGBM spends about 0.2 ms per
row of the win model (450 trees of 6 splits) on the same numbers. Boosters of larger trees
(``MAX_SPLITS``) or that treat zero as missing get no table; callers keep LightGBM's own.
"""
from __future__ import annotations

import bisect
import math
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import lightgbm as lgb
import numpy as np
import scipy.sparse

#: Trees of more split nodes than this get no table (2**splits lines each; building the table for 150 rounds
#: of 3 classes takes 0.1 s at 6 splits, 0.4 s at 8, 3 s at 10): LightGBM's own TreeSHAP then.
MAX_SPLITS = 8
_MISSING = {"None": 0, "Zero": 1, "NaN": 2}
#: Rows per block; from _SPARSE_FROM rows on, lookups are summed by sparse products. Small blocks keep the
#: temporaries (a block's (rows, trees) table lines and their one-hot matrix) small enough for glibc to reuse
#: freed memory instead of handing it back and faulting it in again: 1,000 rows of the demo's win model take
#: 3.1 ms in blocks of 512 against 9-11 ms in one block (256 rows: 5 ms). The service, which tells glibc to
#: keep freed memory (serving/allocator.py), measured 4-5 ms either way; the CLI and the library gain.
_BLOCK, _SPARSE_FROM = 512, 16
#: From this many rows on, the second half is computed on a thread kept for the purpose (scipy's sparse products
#: release the GIL): 1,000 rows of the demo's win model, a whole /v1/score answer 1 ms (5 %) faster.
THREADS_FROM = 256


@dataclass
class _Feature:
    """How one feature's value picks a bucket, and the bucket's share of each tree's pattern."""

    column: int
    thresholds: np.ndarray | None  # numerical: the sorted distinct thresholds of its splits; None: categorical
    categories: int  # categorical: codes 0 .. categories - 1 are looked up; others go right at every split
    first: int  # its first row in ContributionTable.patterns

    def __post_init__(self) -> None:
        self.points = [] if self.thresholds is None else self.thresholds.tolist()

    def bucket(self, v: float) -> int:
        """:meth:`buckets` of one value, in plain Python (far cheaper than numpy for a few rows)."""
        if self.thresholds is not None:
            return self.first + (len(self.points) + 1 if v != v else bisect.bisect_left(self.points, v))
        return self.first + (int(v) if -1 < v < self.categories else self.categories)

    def buckets(self, x: np.ndarray) -> np.ndarray:
        """Each row's bucket (a row of ``patterns``) for this feature."""
        v = x[:, self.column]
        if self.thresholds is not None:  # bucket b: the value is above the b smallest thresholds; then NaN
            bucket = np.searchsorted(self.thresholds, v, side="left")
            return self.first + np.where(np.isnan(v), len(self.thresholds) + 1, bucket)
        with np.errstate(invalid="ignore"):
            known = (v > -1) & (v < self.categories)  # C's cast to int truncates: -0.5 is category 0; NaN is not known
        return self.first + np.where(known, v, self.categories).astype(np.int64)


@dataclass
class ContributionTable:
    """Per-feature TreeSHAP contributions of a weighted sum of a booster's classes, by lookup.

    ``weights`` maps a class to its weight: {1: 1.0, 2: -1.0} gives class 1's contributions minus class 2's.
    A row's directions at the splits of one feature depend only on which bucket its value falls in (between
    which two thresholds, or which category); ``patterns`` holds, per bucket, the bits it sets in each tree's
    pattern of directions, and ``tables`` the contributions of each (tree, pattern).
    """

    n_features: int
    features: list[_Feature]
    patterns: np.ndarray  # (buckets of all features, trees) int16: bits of the splits that go left
    tables: np.ndarray  # (trees * 2**width, features): contributions per (tree, pattern of directions)
    width: int  # most splits in one tree
    _pool: ThreadPoolExecutor | None = field(default=None, init=False, repr=False, compare=False)

    @classmethod
    def from_booster(cls, booster: lgb.Booster, weights: Mapping[int, float]) -> ContributionTable | None:
        """The table of ``booster``'s trees of the weighted classes; None when a tree has over MAX_SPLITS splits
        or a split treats zero as missing (``zero_as_missing``)."""
        dump = booster.dump_model()
        n_classes = max(int(dump.get("num_tree_per_iteration", 1)), 1)
        n_features = int(dump["max_feature_idx"]) + 1
        trees = []
        for info in dump["tree_info"]:
            weight = weights.get(int(info["tree_index"]) % n_classes, 0.0)
            splits = _splits(info["tree_structure"])
            if weight == 0.0 or not splits:
                continue  # a single leaf moves only the bias
            if len(splits) > MAX_SPLITS or any(s["missing"] == _MISSING["Zero"] for s in splits):
                return None
            trees.append((splits, weight))
        return cls._build(trees, n_features)

    @classmethod
    def _build(cls, trees: list[tuple[list[dict[str, Any]], float]], n_features: int) -> ContributionTable:
        width = max((len(splits) for splits, _ in trees), default=0)
        tables = np.zeros((len(trees) * 2 ** width, n_features))
        by_feature: dict[int, list[tuple[int, int, dict[str, Any]]]] = {}  # feature -> (tree, bit, split)
        for t, (splits, weight) in enumerate(trees):
            table = _tree_table(splits, n_features) * weight
            tables[t * 2 ** width:t * 2 ** width + len(table)] = table
            for j, split in enumerate(splits):
                by_feature.setdefault(split["feature"], []).append((t, 1 << j, split))
        features, blocks, first = [], [], 0
        for column, entries in sorted(by_feature.items()):
            if entries[0][2]["categorical"]:
                size = max((max(s["categories"], default=-1) for _, _, s in entries), default=-1) + 1
                feature = _Feature(column, None, size, first)
                # bucket c < size: category c; bucket size: anything else (NaN, negative, unseen) goes right
                goes_left = [[c in s["categories"] for _, _, s in entries] for c in range(size)] + [[False] * len(entries)]
            else:
                thresholds = np.unique([s["threshold"] for _, _, s in entries])
                feature = _Feature(column, thresholds, 0, first)
                rank = np.searchsorted(thresholds, [s["threshold"] for _, _, s in entries])
                # bucket b <= len(thresholds): value <= threshold k exactly when k >= b; bucket len + 1: NaN
                nan_left = [s["default_left"] if s["missing"] else 0.0 <= s["threshold"] for _, _, s in entries]
                goes_left = [(rank >= b).tolist() for b in range(len(thresholds) + 1)] + [nan_left]
            block = np.zeros((len(goes_left), len(trees)), dtype=np.int64)
            for b, lefts in enumerate(goes_left):
                for (t, bit, _), left in zip(entries, lefts):
                    block[b, t] += bit if left else 0
            features.append(feature)
            blocks.append(block)
            first += len(block)
        # at most MAX_SPLITS bits a tree: small integers, which halve the sparse product's time against int64
        patterns = (np.vstack(blocks) if blocks else np.zeros((0, len(trees)), dtype=np.int64)).astype(np.int16)
        return cls(n_features=n_features, features=features, patterns=patterns, tables=tables, width=width)

    def __call__(self, x: np.ndarray, threads: bool = True) -> np.ndarray:
        """Contributions (rows, features) of rows ``x`` (rows, features), as LightGBM's pred_contrib without the bias;
        on this thread alone unless ``threads`` (then on two from THREADS_FROM rows on)."""
        x = np.asarray(x, dtype=float)
        if x.ndim != 2 or x.shape[1] != self.n_features:
            raise ValueError(f"expected rows of {self.n_features} features, got shape {x.shape}")
        out = np.empty((len(x), self.n_features))
        if not self.patterns.shape[1]:
            out[:] = 0.0
        elif len(x) < THREADS_FROM or not threads:
            self._rows(x, out)
        else:  # two threads: this one the first half, the kept one the second
            if self._pool is None:
                self._pool = ThreadPoolExecutor(1, thread_name_prefix="treeshap")
            half = len(x) // 2
            rest = self._pool.submit(self._rows, x[half:], out[half:])
            self._rows(x[:half], out[:half])
            rest.result()
        return out

    def _rows(self, x: np.ndarray, out: np.ndarray) -> None:
        """Fill ``out`` with the contributions of rows ``x``, block by block."""
        # each tree's first line in the table (int32: a table of 2**31 lines would not fit in memory)
        offsets = np.arange(self.patterns.shape[1], dtype=np.int32) * 2 ** self.width
        for start in range(0, len(x), _BLOCK):
            block = x[start:start + _BLOCK]
            if len(block) < _SPARSE_FROM:
                buckets = np.array([[f.bucket(row[f.column]) for f in self.features] for row in block.tolist()])
                index = self.patterns[buckets].sum(axis=1) + offsets  # (rows, trees): each tree's line in the table
                out[start:start + len(block)] = self.tables[index].sum(axis=1)
            else:  # the same sums as products with sparse matrices of ones: far faster for many rows
                buckets = np.column_stack([f.buckets(block) for f in self.features])
                index = (_ones(buckets, len(self.patterns), self.patterns.dtype) @ self.patterns) + offsets
                out[start:start + len(block)] = _ones(index, len(self.tables), self.tables.dtype) @ self.tables


def _ones(columns: np.ndarray, width: int, dtype: np.dtype[Any]) -> scipy.sparse.csr_matrix:
    """A (rows, width) sparse matrix of ``dtype`` with a one in each of the given columns of each row (the
    columns as scipy's own int32 indices: given int64, it converts them each time)."""
    rows, per_row = columns.shape
    return scipy.sparse.csr_matrix((np.ones(columns.size, dtype=dtype), columns.ravel().astype(np.int32, copy=False),
                                    np.arange(0, columns.size + 1, per_row, dtype=np.int32)), shape=(rows, width))


def _splits(root: dict[str, Any]) -> list[dict[str, Any]]:
    """A tree of LightGBM's dump as a list of split nodes; children are ("split", index) or ("leaf", value, count)."""
    out: list[dict[str, Any]] = []

    def visit(node: dict[str, Any]) -> tuple[Any, ...]:
        if "split_index" not in node:
            return ("leaf", float(node["leaf_value"]), float(node.get("leaf_count", 0)))
        i = len(out)
        categorical = node["decision_type"] == "=="
        out.append({
            "feature": int(node["split_feature"]), "categorical": categorical,
            "threshold": math.nan if categorical else float(node["threshold"]),
            "categories": {int(c) for c in str(node["threshold"]).split("||")} if categorical else set(),
            "default_left": bool(node["default_left"]), "missing": _MISSING[node["missing_type"]],
            "count": float(node["internal_count"]),
        })
        out[i]["left"] = visit(node["left_child"])
        out[i]["right"] = visit(node["right_child"])
        return ("split", i)

    visit(root)
    return out


def _tree_table(splits: list[dict[str, Any]], n_features: int) -> np.ndarray:
    """(2**splits, features): each feature's Shapley value for each pattern of directions at the splits."""
    used = sorted({s["feature"] for s in splits})
    m = len(used)
    subsets = np.arange(2 ** m)
    patterns = np.arange(2 ** len(splits))
    in_subset = {f: ((subsets >> q) & 1).astype(bool)[:, None] for q, f in enumerate(used)}

    def value(child: tuple[Any, ...]) -> tuple[np.ndarray, float]:
        """v(subset, pattern) below ``child``, and the child's count."""
        if child[0] == "leaf":
            return np.full((len(subsets), len(patterns)), child[1]), child[2]
        split = splits[child[1]]
        left, left_count = value(split["left"])
        right, right_count = value(split["right"])
        follow = np.where(((patterns >> child[1]) & 1).astype(bool)[None, :], left, right)
        average = (left_count * left + right_count * right) / split["count"]
        return np.where(in_subset[split["feature"]], follow, average), split["count"]

    v, _ = value(("split", 0))
    size = np.array([bin(s).count("1") for s in subsets])
    table = np.zeros((len(patterns), n_features))
    for q, f in enumerate(used):
        without = subsets[((subsets >> q) & 1) == 0]
        k = size[without]
        weight = np.array([math.factorial(s) * math.factorial(m - s - 1) / math.factorial(m) for s in k])
        table[:, f] = weight @ (v[without | (1 << q)] - v[without])
    return table
