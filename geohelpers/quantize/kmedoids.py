"""K-medoids on a precomputed distance matrix, with two backends.

K-medoids chooses ``K`` of the points themselves (medoids) to minimise the total deviation

    loss = sum_i min_m D[i, m],

which needs only the distances ``D``: here, graph geodesics, for which no mean exists.

- ``fasterpam``: FasterPAM (Schubert & Rousseeuw 2021) from the ``kmedoids`` package: PAM's swap search
  with the eager, O(N)-per-swap update; matches PAM's quality at a small fraction of its cost. It runs
  serially (``n_cpu=1``) by default: the parallel search returns one of several equal-loss medoid sets
  depending on thread timing (14 of 16 parallel runs differed from the serial set by one medoid), and a
  codebook must be a function of its seed.
- ``sklearn_extra``: scikit-learn-extra's ``KMedoids`` with ``method="alternate"`` (Voronoi iteration,
  k-means-like) and k-medoids++ initialisation: study 003's method.

Both losses are recomputed here from ``D`` with the same formula, so that they compare.
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass

import numpy as np

BACKENDS = ("fasterpam", "sklearn_extra")


@dataclass
class KMedoidsResult:
    medoids: np.ndarray  # (K,) indices into the points
    labels: np.ndarray   # (N,) index of each point's nearest medoid, 0..K-1
    loss: float          # sum of distances to the nearest medoid
    seconds: float
    backend: str


def kmedoids(d: np.ndarray, k: int, backend: str = "fasterpam", seed: int = 0, n_cpu: int = 1) -> KMedoidsResult:
    """K-medoids of a symmetric (N, N) distance matrix with the chosen backend; ``n_cpu`` threads for
    FasterPAM (1, the default, gives the same medoids for the same seed every time: module docstring)."""
    n = len(d)
    if backend not in BACKENDS:
        raise ValueError(f"parameter 'backend' is {backend!r}; allowed: {', '.join(BACKENDS)}")
    if not 1 <= k <= n:
        raise ValueError(f"parameter 'K' is {k}; allowed: 1 <= K <= the number of points ({n})")
    if isinstance(n_cpu, bool) or not isinstance(n_cpu, int) or n_cpu < 1:
        raise ValueError(f"parameter 'n_cpu' is {n_cpu!r}; allowed: an integer >= 1")
    if not np.isfinite(d).all():
        raise ValueError("the distance matrix has non-finite entries: repair the graph first")
    t0 = time.perf_counter()
    if backend == "fasterpam":
        import kmedoids as km

        res = km.fasterpam(d, k, init="random", random_state=seed, n_cpu=n_cpu)
        medoids = np.asarray(res.medoids, dtype=np.int64)
    else:
        with warnings.catch_warnings():
            # sklearn-extra 0.3.0 imports distutils' LooseVersion, and k-medoids++ a deprecated helper
            warnings.simplefilter("ignore", DeprecationWarning)
            warnings.simplefilter("ignore", FutureWarning)
            from sklearn_extra.cluster import KMedoids

            res = KMedoids(n_clusters=k, metric="precomputed", method="alternate", init="k-medoids++",
                           random_state=seed).fit(d)
        medoids = np.asarray(res.medoid_indices_, dtype=np.int64)
    seconds = time.perf_counter() - t0
    to_medoids = d[:, medoids]
    labels = to_medoids.argmin(axis=1)
    loss = float(to_medoids[np.arange(n), labels].sum(dtype=np.float64))
    return KMedoidsResult(medoids, labels, loss, seconds, backend)
