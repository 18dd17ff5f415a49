"""k-NN graphs over latent vectors and their geodesic (shortest-path) distances, as in Isomap.

- **Edges carry distances**, ``w(i, j) = ||x_i - x_j||``, never squared distances: a path's length is a sum
  of edge lengths, and a sum of squared steps is no length at all (it shrinks as a path is subdivided).
- **Symmetrization without doubling**: ``j`` is a neighbour of ``i`` or ``i`` of ``j``; the edge keeps the
  one distance ``||x_i - x_j||`` (elementwise maximum of the graph and its transpose, which holds the
  same value), not the sum of the two directions.
- **Repair**: a k-NN graph of clustered data is often disconnected, and then some geodesic distances are
  infinite. Components are joined by edges between their closest pairs of points. ``"mst"`` (the default)
  adds only the C - 1 such edges of a minimum spanning tree over the C components, the least change that
  connects the graph. ``"all_pairs"`` joins every pair of components, as scikit-learn's Isomap does; on a
  curve split by sampling gaps it adds chords that short-cut the curve (see the tests). The number of
  added edges is reported.
- **All-pairs shortest paths** by Dijkstra (scipy's csgraph) in float32, with the sources split over
  worker processes that write into one shared matrix.
"""

from __future__ import annotations

import multiprocessing as mp
import os
from dataclasses import dataclass
from multiprocessing import shared_memory

import numpy as np
from scipy import sparse
from scipy.sparse import csgraph
from sklearn.metrics import pairwise_distances
from sklearn.neighbors import NearestNeighbors
from tqdm import tqdm

#: Weight given to an edge between two identical points, so that sparse storage does not drop it.
ZERO_EDGE = 1e-12


def knn_graph(x: np.ndarray, k: int) -> sparse.csr_matrix:
    """Symmetric k-NN graph of the rows of ``x`` with Euclidean edge lengths (see the module docstring)."""
    n = len(x)
    if not 1 <= k < n:
        raise ValueError(f"parameter 'k' is {k}; allowed: 1 <= k < the number of points ({n})")
    dist, idx = NearestNeighbors(n_neighbors=k + 1).fit(x).kneighbors(x)
    rows = np.repeat(np.arange(n), k + 1)
    keep = idx.ravel() != rows  # drop each point itself, wherever it appears among its neighbours
    rows, cols, w = rows[keep], idx.ravel()[keep], np.maximum(dist.ravel()[keep], ZERO_EDGE)
    # at most k edges per point: with duplicates, the point itself may not be in column 0
    directed = sparse.csr_matrix((w, (rows, cols)), shape=(n, n))
    directed.sum_duplicates()
    return directed.maximum(directed.T).tocsr()


REPAIRS = ("mst", "all_pairs", "none")


@dataclass
class Repair:
    components_before: int
    edges_added: int


def connect_components(graph: sparse.csr_matrix, x: np.ndarray, how: str = "mst", block: int = 2048
                       ) -> tuple[sparse.csr_matrix, Repair]:
    """Join connected components by edges between their closest points (``how``: "mst" or "all_pairs")."""
    if how not in REPAIRS[:2]:
        raise ValueError(f"parameter 'how' is {how!r}; allowed: mst, all_pairs")
    n_comp, labels = csgraph.connected_components(graph, directed=False)
    if n_comp == 1:
        return graph, Repair(1, 0)
    order = np.argsort(labels, kind="stable")
    starts = np.searchsorted(labels[order], np.arange(n_comp))
    rows, cols, weights = [], [], []
    for c in range(n_comp - 1):
        members = np.flatnonzero(labels == c)
        later = order[starts[c + 1]:]                      # points of components c+1, ..., sorted by label
        later_starts = starts[c + 1:] - starts[c + 1]
        best = np.full(n_comp - c - 1, np.inf)
        best_i = np.zeros(n_comp - c - 1, dtype=np.int64)
        best_j = np.zeros(n_comp - c - 1, dtype=np.int64)
        for s in range(0, len(members), block):
            m = members[s:s + block]
            d = pairwise_distances(x[m], x[later])          # (block, points of later components)
            col_best = d.argmin(axis=0)
            col_min = d[col_best, np.arange(d.shape[1])]
            seg_min = np.minimum.reduceat(col_min, later_starts)
            better = seg_min < best
            for t in np.flatnonzero(better):               # closest pair for each later component
                lo = later_starts[t]
                hi = later_starts[t + 1] if t + 1 < len(later_starts) else len(later)
                j = lo + int(col_min[lo:hi].argmin())
                best[t], best_i[t], best_j[t] = seg_min[t], m[col_best[j]], later[j]
        rows += list(best_i)
        cols += list(best_j)
        weights += list(np.maximum(best, ZERO_EDGE))
    if how == "mst":  # keep the closest-pair edges of a minimum spanning tree over the components
        ci = np.repeat(np.arange(n_comp), np.arange(n_comp - 1, -1, -1))
        cj = np.concatenate([np.arange(c + 1, n_comp) for c in range(n_comp)])
        tree = csgraph.minimum_spanning_tree(sparse.csr_matrix((weights, (ci, cj)), shape=(n_comp, n_comp)))
        chosen = {(int(a), int(b)) for a, b in zip(*tree.nonzero())}
        keep = [t for t, pair in enumerate(zip(ci, cj)) if (int(pair[0]), int(pair[1])) in chosen]
        rows, cols, weights = ([v[t] for t in keep] for v in (rows, cols, weights))
    extra = sparse.csr_matrix((weights, (rows, cols)), shape=graph.shape)
    repaired = graph.maximum(extra.maximum(extra.T)).tocsr()
    return repaired, Repair(n_comp, len(weights))


def n_components(graph: sparse.csr_matrix) -> int:
    return int(csgraph.connected_components(graph, directed=False)[0])


_GRAPH: sparse.csr_matrix | None = None


def _dijkstra_rows(args: tuple[str, int, np.ndarray]) -> None:
    name, n, sources = args
    shm = shared_memory.SharedMemory(name=name)
    try:
        out = np.ndarray((n, n), dtype=np.float32, buffer=shm.buf)
        out[sources] = csgraph.dijkstra(_GRAPH, directed=False, indices=sources)
    finally:
        shm.close()


def shortest_paths(graph: sparse.csr_matrix, n_jobs: int | None = None, block: int = 256) -> np.ndarray:
    """All-pairs geodesic distances (float32, ``inf`` between components), Dijkstra from every source.

    With ``n_jobs > 1`` the sources are split into blocks handled by forked worker processes, which
    write their rows straight into a shared-memory matrix (no copies through pipes).
    """
    global _GRAPH
    n = graph.shape[0]
    n_jobs = max(1, min(n_jobs or os.cpu_count() or 1, n))
    if n_jobs == 1:
        return csgraph.dijkstra(graph, directed=False).astype(np.float32)
    shm = shared_memory.SharedMemory(create=True, size=n * n * 4)
    try:
        _GRAPH = graph
        blocks = [(shm.name, n, b) for b in np.array_split(np.arange(n), max(1, -(-n // block)))]
        with mp.get_context("fork").Pool(n_jobs) as pool:
            for _ in tqdm(pool.imap_unordered(_dijkstra_rows, blocks), total=len(blocks), leave=False,
                          desc=f"shortest paths ({n} sources)", mininterval=float(os.environ.get("TQDM_MININTERVAL", 0.5))):
                pass
        return np.ndarray((n, n), dtype=np.float32, buffer=shm.buf).copy()
    finally:
        _GRAPH = None
        shm.close()
        shm.unlink()
