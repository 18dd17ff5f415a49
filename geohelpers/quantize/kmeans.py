"""K-means (Lloyd) for millions of low-dimensional vectors, with exact nearest-centre search (faiss).

Initialisation matters more than the library: centres come from k-means++ (Arthur & Vassilvitskii 2007)
on a seeded subsample, then Lloyd iterations run on *all* vectors until the relative drop of the
inertia ``sum_i min_k ||x_i - c_k||^2`` falls below ``tol``, or no label changes (a fixed point, where every
centre is exactly the mean of its cluster; ``tol = 0`` runs to it). Empty clusters are re-seeded at the vectors
farthest from their centres. faiss's own ``Kmeans`` silently trains on a subsample of 256 points per
centre; this implementation does not.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
from sklearn.cluster import kmeans_plusplus

from .search import nearest


@dataclass
class KMeansResult:
    centres: np.ndarray  # (K, d) float32
    labels: np.ndarray   # (N,) int64
    inertia: float       # sum of squared distances to the assigned centre
    n_iter: int
    seconds: float


def columns(x: np.ndarray) -> np.ndarray:
    """The columns of ``x`` (N, d) as contiguous float64 rows (d, N): the weights ``np.bincount`` takes,
    converted once per fit instead of once per iteration (a strided float32 column costs bincount a
    copy and a conversion each time; the sums are the same, bit for bit)."""
    return np.ascontiguousarray(np.asarray(x).T, dtype=np.float64)


def cluster_sums(x: np.ndarray, labels: np.ndarray, k: int, cols: np.ndarray | None = None
                 ) -> tuple[np.ndarray, np.ndarray]:
    """Per-cluster sums of ``x`` (K, d) and counts (K,), by one bincount per dimension (``cols``:
    :func:`columns` of ``x``, when the caller has them)."""
    cols = columns(x) if cols is None else cols
    sums = np.stack([np.bincount(labels, weights=c, minlength=k) for c in cols], axis=1)
    return sums, np.bincount(labels, minlength=k)


def kmeans(x: np.ndarray, k: int, *, seed: int = 0, max_iter: int = 50, tol: float = 1e-4,
           init_sample: int = 100_000) -> KMeansResult:
    """Lloyd's K-means on all rows of ``x`` (N, d), k-means++ initialised on ``init_sample`` rows."""
    x = np.ascontiguousarray(x, dtype=np.float32)
    n = len(x)
    if not 1 <= k <= n:
        raise ValueError(f"parameter 'K' is {k}; allowed: 1 <= K <= the number of vectors ({n})")
    t0 = time.perf_counter()
    rng = np.random.default_rng(seed)
    sample = x[rng.choice(n, size=min(n, max(init_sample, k)), replace=False)]
    centres, _ = kmeans_plusplus(sample.astype(np.float64), k, random_state=seed)
    centres = centres.astype(np.float32)
    cols = columns(x)
    previous, labels_prev = np.inf, None
    for it in range(1, max_iter + 1):
        d2, idx = nearest(centres, x)
        d2, labels = d2[:, 0], idx[:, 0].astype(np.int64)
        inertia = float(d2.sum(dtype=np.float64))
        if labels_prev is not None and (np.array_equal(labels, labels_prev) or previous - inertia <= tol * inertia):
            break  # with unchanged labels the centres are exactly their clusters' means: a fixed point
        sums, counts = cluster_sums(x, labels, k, cols)
        centres = (sums / np.maximum(counts, 1)[:, None]).astype(np.float32)
        empty = np.flatnonzero(counts == 0)
        if empty.size:  # re-seed empty clusters at the worst-served vectors
            centres[empty] = x[np.argsort(d2)[::-1][: empty.size]]
        previous, labels_prev = inertia, labels
    else:
        d2, idx = nearest(centres, x)
        labels, inertia = idx[:, 0].astype(np.int64), float(d2[:, 0].sum(dtype=np.float64))
    return KMeansResult(centres, labels, inertia, it, time.perf_counter() - t0)
