"""One ``Codebook`` interface for every a posteriori quantizer.

A codebook is fitted on latent *vectors*: the rows of ``(mu, sigma)``, each (N, d), as given by
``vae.to_vectors``. It then maps vectors to integer codes (``encode``) and codes back to the vectors that
the decoder receives (``decode``: the codeword means). ``encode_latents`` and ``decode_images`` do the same
for whole latents: the GridVAE's 7x7 grids become (B, 7, 7) code maps, and the FlatVAE's chunks become
(B, n_chunks) code sequences, with one codebook shared by all chunk positions.

- :class:`KMeansCodebook`: Euclidean K-means on ``mu``, the plain reference.
- :class:`W2Codebook`: K-means under the 2-Wasserstein distance between the posteriors, which is exact
  Euclidean K-means on ``[mu, sigma]`` (see :mod:`.w2`). Its codewords are Gaussians; decoding uses
  their means.
- :class:`GeodesicCodebook`: K-medoids on shortest-path distances of a k-NN graph over landmarks (see
  :mod:`.graph`), with a geodesic assignment of every vector.

``save``/``load`` write and read one ``.npz`` file holding the arrays and the parameters.
"""

from __future__ import annotations

import io
import json
import time
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch

from .. import files
from .graph import REPAIRS, connect_components, knn_graph, n_components, shortest_paths
from .kmeans import kmeans
from .kmedoids import BACKENDS, kmedoids
from .search import nearest, nearest_k
from .w2 import w2_features

METRICS = ("euclidean", "w2")
ASSIGNMENTS = ("geodesic", "nearest_landmark")


def _check_vectors(mu: np.ndarray, sigma: np.ndarray | None) -> tuple[np.ndarray, np.ndarray | None]:
    mu = np.ascontiguousarray(mu, dtype=np.float32)
    if mu.ndim != 2:
        raise ValueError(f"expected (N, d) vectors, got shape {mu.shape}")
    if sigma is not None:
        sigma = np.ascontiguousarray(sigma, dtype=np.float32)
        if sigma.shape != mu.shape:
            raise ValueError(f"sigma has shape {sigma.shape}, mu {mu.shape}")
    return mu, sigma


class Codebook:
    """Base class: ``K`` codewords; vectors -> codes -> codeword means."""

    method: ClassVar[str] = ""
    _registry: ClassVar[dict[str, type["Codebook"]]] = {}

    def __init_subclass__(cls, **kw: Any) -> None:
        super().__init_subclass__(**kw)
        Codebook._registry[cls.method] = cls

    def __init__(self, k: int, seed: int = 0) -> None:
        if not isinstance(k, (int, np.integer)) or k < 2:
            raise ValueError(f"parameter 'K' is {k!r}; allowed: an integer >= 2")
        self.k, self.seed = int(k), int(seed)
        self.codewords: np.ndarray | None = None        # (K, d) means, what the decoder receives
        self.codeword_sigma: np.ndarray | None = None   # (K, d) for Gaussian codewords
        self.fit_seconds: dict[str, float] = {}        # seconds of each part of the fit
        self.lloyd_iterations: int | None = None        # Lloyd iterations of a K-means fit (None: no Lloyd)

    # --- to implement -----------------------------------------------------------------------------
    def fit(self, mu: np.ndarray, sigma: np.ndarray | None = None) -> "Codebook":
        raise NotImplementedError

    def encode(self, mu: np.ndarray, sigma: np.ndarray | None = None) -> np.ndarray:
        raise NotImplementedError

    def params(self) -> dict[str, Any]:
        """Constructor arguments, for saving."""
        return {"k": self.k, "seed": self.seed}

    def arrays(self) -> dict[str, np.ndarray]:
        """Fitted state, for saving."""
        out = {"codewords": self.codewords}
        if self.codeword_sigma is not None:
            out["codeword_sigma"] = self.codeword_sigma
        return out

    # --- shared ---------------------------------------------------------------------------------
    @property
    def fitted(self) -> bool:
        return self.codewords is not None

    def _need_fit(self) -> None:
        if not self.fitted:
            raise RuntimeError(f"this {type(self).__name__} is not fitted yet: call fit first")

    def decode(self, codes: np.ndarray) -> np.ndarray:
        """Codes (any shape) -> codeword means (shape + (d,))."""
        self._need_fit()
        return self.codewords[np.asarray(codes)]

    def encode_latents(self, vae: Any, mu: torch.Tensor, sigma: torch.Tensor) -> np.ndarray:
        """Latents of B images -> (B, *vae.code_shape) integer code maps."""
        codes = self.encode(vae.to_vectors(mu).numpy(), vae.to_vectors(sigma).numpy())
        return codes.reshape(len(mu), *vae.code_shape)

    def decode_latents(self, vae: Any, codes: np.ndarray) -> torch.Tensor:
        """(B, *code_shape) codes -> latents the decoder takes (codeword means in place of ``mu``)."""
        return vae.from_vectors(torch.from_numpy(self.decode(np.asarray(codes).reshape(-1))))

    def decode_images(self, vae: Any, codes: np.ndarray, batch_size: int = 1000) -> torch.Tensor:
        """(B, *code_shape) codes -> images in [0, 1]."""
        return vae.decode_all(self.decode_latents(vae, codes), batch_size)

    def save(self, path: str | Path, made_by: str = "a codebook") -> Path:
        """Store the fitted codebook at ``path`` (atomically, with its digest: :mod:`geohelpers.files`);
        ``made_by`` is its identity, named if the file is ever found damaged."""
        self._need_fit()
        meta = json.dumps({"method": self.method, "params": self.params(), "fit_seconds": self.fit_seconds,
                           "lloyd_iterations": self.lloyd_iterations, "diagnostics": getattr(self, "diagnostics", {})})
        buffer = io.BytesIO()
        np.savez(buffer, __meta__=np.array(meta), **self.arrays())
        return files.write_artifact(path, buffer.getvalue(), made_by)

    @staticmethod
    def load_stored(path: str | Path) -> "Codebook | None":
        """The codebook stored at ``path``, or ``None`` when it is missing or damaged (a damaged file is
        set aside and named: :func:`geohelpers.files.read_artifact`)."""
        data = files.read_artifact(path, "codebook")
        return None if data is None else Codebook.load(io.BytesIO(data))

    @staticmethod
    def load(path: "str | Path | io.BytesIO") -> "Codebook":
        """The codebook in ``path`` (a file or its bytes), unverified: use :meth:`load_stored` for files."""
        with np.load(path, allow_pickle=False) as data:
            meta = json.loads(str(data["__meta__"]))
            cb = Codebook._registry[meta["method"]](**meta["params"])
            cb._restore({k: data[k] for k in data.files if k != "__meta__"})
        cb.fit_seconds = dict(meta["fit_seconds"])
        cb.lloyd_iterations = meta.get("lloyd_iterations", cb.fit_seconds.pop("iterations", None))  # older files
        if meta.get("diagnostics"):
            cb.diagnostics = meta["diagnostics"]
        return cb

    def _restore(self, arrays: dict[str, np.ndarray]) -> None:
        self.codewords = arrays["codewords"]
        self.codeword_sigma = arrays.get("codeword_sigma")


class KMeansCodebook(Codebook):
    """Euclidean K-means on ``mu``; codewords are the centroids."""

    method = "kmeans"

    def __init__(self, k: int, seed: int = 0, max_iter: int = 50, init_sample: int = 100_000,
                 tol: float = 1e-4) -> None:
        super().__init__(k, seed)
        self.max_iter, self.init_sample, self.tol = max_iter, init_sample, tol
        self.inertia: float | None = None

    def params(self) -> dict[str, Any]:
        return {**super().params(), "max_iter": self.max_iter, "init_sample": self.init_sample, "tol": self.tol}

    def features(self, mu: np.ndarray, sigma: np.ndarray | None) -> np.ndarray:
        return mu

    def _set_centres(self, centres: np.ndarray, d: int) -> None:
        self.codewords = centres[:, :d].copy()

    def fit(self, mu: np.ndarray, sigma: np.ndarray | None = None) -> "KMeansCodebook":
        mu, sigma = _check_vectors(mu, sigma)
        res = kmeans(self.features(mu, sigma), self.k, seed=self.seed, max_iter=self.max_iter,
                     init_sample=self.init_sample, tol=self.tol)
        self._set_centres(res.centres, mu.shape[1])
        self.inertia, self.fit_seconds, self.lloyd_iterations = res.inertia, {"kmeans": res.seconds}, res.n_iter
        return self

    def encode(self, mu: np.ndarray, sigma: np.ndarray | None = None) -> np.ndarray:
        self._need_fit()
        mu, sigma = _check_vectors(mu, sigma)
        return nearest(self._centres(), self.features(mu, sigma))[1][:, 0].astype(np.int64)

    def _centres(self) -> np.ndarray:
        return self.codewords


class W2Codebook(KMeansCodebook):
    """K-means under W2 between diagonal Gaussians = Euclidean K-means on ``[mu, sigma]``.

    Each codeword is the Gaussian ``N(mean of mu, diag(mean of sigma)^2)`` of its cluster, the W2
    barycentre of the cluster's posteriors; a vector's code is its W2-nearest codeword.
    """

    method = "w2"

    def features(self, mu: np.ndarray, sigma: np.ndarray | None) -> np.ndarray:
        if sigma is None:
            raise ValueError("the W2 codebook needs sigma as well as mu")
        return w2_features(mu, sigma)

    def _set_centres(self, centres: np.ndarray, d: int) -> None:
        self.codewords, self.codeword_sigma = centres[:, :d].copy(), centres[:, d:].copy()

    def _centres(self) -> np.ndarray:
        return w2_features(self.codewords, self.codeword_sigma)


def sample_distinct(x: np.ndarray, n: int, rng: np.random.Generator) -> tuple[np.ndarray, int]:
    """Indices of ``n`` rows of ``x`` drawn at random without repeating a row *value*.

    Latent vectors repeat exactly (a blank patch always encodes to the same ``mu``); a repeated landmark
    would be a wasted node at distance zero. Returns the indices and how many drawn rows were repeats.
    """
    if n > len(x):
        raise ValueError(f"parameter 'n_landmarks' is {n}; allowed: at most the number of vectors ({len(x)})")
    order, take = rng.permutation(len(x)), n
    while True:
        cand = order[:take]
        _, first = np.unique(x[cand], axis=0, return_index=True)
        if len(first) >= n or take >= len(x):
            break
        take = min(len(x), 2 * take)
    if len(first) < n:
        raise ValueError(f"parameter 'n_landmarks' is {n}, but there are only {len(first)} distinct vectors")
    first = np.sort(first)[:n]
    return cand[first], int(first[-1] + 1 - n)


class GeodesicCodebook(Codebook):
    """K-medoids on the graph geodesics of landmark vectors, with a geodesic assignment of every vector.

    Fitting: draw ``n_landmarks`` distinct vectors; build their symmetric ``knn``-NN graph with edge
    lengths ``d`` (Euclidean on ``mu``, or W2 on ``(mu, sigma)``); join its components if ``repair``;
    ``G`` = all-pairs shortest paths; K-medoids on ``G``. The codewords are the medoids' ``mu``.
    With ``repair = "none"``, infinite distances are replaced by 1.1 x the largest finite one (study 003).

    Assignment: with ``m*(l)`` the nearest medoid of landmark ``l`` along the graph and ``g(l) = G(l, m*(l))``,

        code(x) = m*( argmin_{l in N_a(x)} d(x, l) + g(l) ),

    over the ``assign_neighbours`` nearest landmarks ``N_a(x)``. This equals
    ``argmin_m min_{l in N_a(x)} d(x, l) + G(l, m)``, the geodesic distance from ``x`` entering the graph
    through one of its nearby landmarks, at O(a) per vector. ``"nearest_landmark"`` uses ``m*`` of the
    single nearest landmark (study 003's 1-NN rule).
    """

    method = "geodesic"

    def __init__(self, k: int, seed: int = 0, n_landmarks: int = 10_000, knn: int = 10,
                 metric: str = "euclidean", repair: str = "mst", backend: str = "fasterpam",
                 assignment: str = "geodesic", assign_neighbours: int = 8, n_jobs: int = 0) -> None:
        super().__init__(k, seed)
        checks = {
            "n_landmarks": (n_landmarks >= 2, "an integer >= 2"),
            "knn": (1 <= knn < n_landmarks, f"1 <= knn < n_landmarks ({n_landmarks})"),
            "metric": (metric in METRICS, "one of " + ", ".join(METRICS)),
            "repair": (repair in REPAIRS, "one of " + ", ".join(REPAIRS)),
            "backend": (backend in BACKENDS, "one of " + ", ".join(BACKENDS)),
            "assignment": (assignment in ASSIGNMENTS, "one of " + ", ".join(ASSIGNMENTS)),
            "assign_neighbours": (1 <= assign_neighbours <= n_landmarks, f"1 <= value <= n_landmarks"),
            "K": (k <= n_landmarks, f"K <= n_landmarks ({n_landmarks}): the medoids are landmarks"),
            "n_jobs": (n_jobs >= 0, "an integer >= 0 (0: all cores)"),
        }
        values = {"n_landmarks": n_landmarks, "knn": knn, "metric": metric, "repair": repair, "backend": backend,
                  "assignment": assignment, "assign_neighbours": assign_neighbours, "K": k, "n_jobs": n_jobs}
        for name, (ok, allowed) in checks.items():
            if not ok:
                raise ValueError(f"parameter '{name}' is {values[name]!r}; allowed: {allowed}")
        self.n_landmarks, self.knn, self.metric, self.repair = n_landmarks, knn, metric, repair
        self.backend, self.assignment, self.assign_neighbours = backend, assignment, assign_neighbours
        self.n_jobs = n_jobs
        self.landmarks: np.ndarray | None = None       # (L, f) landmark features
        self.landmark_code: np.ndarray | None = None   # (L,) m*(l) as a code 0..K-1
        self.landmark_cost: np.ndarray | None = None   # (L,) g(l)
        self.medoid_index: np.ndarray | None = None    # (K,) indices of the medoids among the fitted vectors
        self.diagnostics: dict[str, Any] = {}

    def params(self) -> dict[str, Any]:
        return {**super().params(), "n_landmarks": self.n_landmarks, "knn": self.knn, "metric": self.metric,
                "repair": self.repair, "backend": self.backend, "assignment": self.assignment,
                "assign_neighbours": self.assign_neighbours, "n_jobs": self.n_jobs}

    def arrays(self) -> dict[str, np.ndarray]:
        return {**super().arrays(), "landmarks": self.landmarks, "landmark_code": self.landmark_code,
                "landmark_cost": self.landmark_cost, "medoid_index": self.medoid_index}

    def _restore(self, arrays: dict[str, np.ndarray]) -> None:
        super()._restore(arrays)
        self.landmarks, self.landmark_code = arrays["landmarks"], arrays["landmark_code"]
        self.landmark_cost, self.medoid_index = arrays["landmark_cost"], arrays["medoid_index"]

    def features(self, mu: np.ndarray, sigma: np.ndarray | None) -> np.ndarray:
        if self.metric == "euclidean":
            return mu
        if sigma is None:
            raise ValueError("metric 'w2' needs sigma as well as mu")
        return w2_features(mu, sigma)

    def build_geodesics(self, mu: np.ndarray, sigma: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Landmark indices and their (L, L) geodesic distance matrix; records graph diagnostics."""
        mu, sigma = _check_vectors(mu, sigma)
        feats = self.features(mu, sigma)
        seconds = self.fit_seconds
        t = time.perf_counter()
        idx, repeats = sample_distinct(feats, self.n_landmarks, np.random.default_rng(self.seed))
        landmarks = feats[idx]
        seconds["landmarks"] = time.perf_counter() - t
        t = time.perf_counter()
        graph = knn_graph(landmarks, self.knn)
        seconds["knn_graph"] = time.perf_counter() - t
        t = time.perf_counter()
        if self.repair != "none":
            graph, rep = connect_components(graph, landmarks, self.repair)
            before, added = rep.components_before, rep.edges_added
        else:
            before, added = n_components(graph), 0
        seconds["repair"] = time.perf_counter() - t
        t = time.perf_counter()
        geo = shortest_paths(graph, self.n_jobs or None)
        seconds["shortest_paths"] = time.perf_counter() - t
        finite = np.isfinite(geo)
        unreachable = int((~finite).sum())
        if unreachable:
            geo[~finite] = 1.1 * geo[finite].max()
        self.diagnostics = {"vectors": len(mu), "landmarks": self.n_landmarks, "repeated_draws": repeats,
                            "edges": int(graph.nnz // 2), "components_before_repair": before,
                            "edges_added": added, "unreachable_pairs_filled": unreachable,
                            **geodesic_ratio(geo, landmarks, np.random.default_rng(self.seed))}
        self.landmarks = landmarks
        return idx, geo

    def fit_geodesics(self, mu: np.ndarray, sigma: np.ndarray | None, idx: np.ndarray,
                      geo: np.ndarray) -> "GeodesicCodebook":
        """K-medoids on precomputed landmark geodesics (lets several K share one graph)."""
        mu, sigma = _check_vectors(mu, sigma)
        res = kmedoids(geo, self.k, self.backend, self.seed)  # serial: the same medoids every run
        self.fit_seconds["kmedoids"] = res.seconds
        self.medoid_index = idx[res.medoids]
        self.codewords = mu[self.medoid_index].copy()
        self.codeword_sigma = None if sigma is None else sigma[self.medoid_index].copy()
        self.landmark_code = res.labels.astype(np.int64)
        self.landmark_cost = geo[np.arange(len(geo)), res.medoids[res.labels]].astype(np.float32)
        self.diagnostics["kmedoids_loss"] = res.loss
        return self

    def fit(self, mu: np.ndarray, sigma: np.ndarray | None = None) -> "GeodesicCodebook":
        idx, geo = self.build_geodesics(mu, sigma)
        return self.fit_geodesics(mu, sigma, idx, geo)

    def encode(self, mu: np.ndarray, sigma: np.ndarray | None = None, assignment: str | None = None,
               ) -> np.ndarray:
        """Codes of vectors by the geodesic rule (default) or the nearest-landmark rule."""
        rule = self._rule(assignment)
        mu, sigma = _check_vectors(mu, sigma)
        feats = self.features(mu, sigma)
        if rule == "nearest_landmark":
            return self.landmark_code[nearest(self.landmarks, feats, 1)[1][:, 0]]
        return self._geodesic_codes(*nearest_k(self.landmarks, feats, self.assign_neighbours))

    def neighbours(self, mu: np.ndarray, sigma: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Distances and indices (N, a) of each vector's ``assign_neighbours`` nearest landmarks.

        The search depends only on the landmarks, so codebooks of several K fitted on one graph can share
        it: see :meth:`codes_from_neighbours`.
        """
        self._need_fit()
        mu, sigma = _check_vectors(mu, sigma)
        return nearest_k(self.landmarks, self.features(mu, sigma), self.assign_neighbours)

    def codes_from_neighbours(self, dist: np.ndarray, nn: np.ndarray, assignment: str | None = None
                              ) -> np.ndarray:
        """Codes by either rule from a neighbour search of :meth:`neighbours` (on the same landmarks)."""
        rule = self._rule(assignment)
        if int(nn.max(initial=0)) >= len(self.landmarks):
            raise ValueError("the neighbour indices do not refer to this codebook's landmarks")
        return self.landmark_code[nn[:, 0]] if rule == "nearest_landmark" else self._geodesic_codes(dist, nn)

    def encode_both(self, mu: np.ndarray, sigma: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Codes by both rules from one neighbour search: (geodesic, nearest landmark)."""
        dist, nn = self.neighbours(mu, sigma)
        return self._geodesic_codes(dist, nn), self.landmark_code[nn[:, 0]]

    def _rule(self, assignment: str | None) -> str:
        """The assignment rule asked for (default: the codebook's own), checked; the codebook must be fitted."""
        self._need_fit()
        rule = assignment or self.assignment
        if rule not in ASSIGNMENTS:
            raise ValueError(f"parameter 'assignment' is {rule!r}; allowed: one of {', '.join(ASSIGNMENTS)}")
        return rule

    def _geodesic_codes(self, dist: np.ndarray, nn: np.ndarray) -> np.ndarray:
        """``m*(argmin_l d(x, l) + g(l))`` over each row's candidate landmarks ``nn`` at distances ``dist``."""
        return self.landmark_code[nn[np.arange(len(nn)), (dist + self.landmark_cost[nn]).argmin(axis=1)]]


def geodesic_ratio(geo: np.ndarray, x: np.ndarray, rng: np.random.Generator, pairs: int = 50_000
                   ) -> dict[str, float]:
    """Quantiles of geodesic / straight-line distance over random pairs of distinct landmarks."""
    i = rng.integers(0, len(x), pairs)
    j = rng.integers(0, len(x), pairs)
    straight = np.linalg.norm(x[i] - x[j], axis=1)
    keep = straight > 0
    ratio = geo[i[keep], j[keep]] / straight[keep]
    q = np.quantile(ratio, [0.5, 0.9, 0.99])
    return {"geodesic_ratio_median": float(q[0]), "geodesic_ratio_p90": float(q[1]),
            "geodesic_ratio_p99": float(q[2])}


def build_codebook(method: str, k: int, quantize_cfg: Any, seed: int = 0) -> Codebook:
    """A codebook of ``method`` (``kmeans``, ``w2`` or ``geodesic``) with the profile's parameters."""
    q = quantize_cfg
    if method == "kmeans":
        return KMeansCodebook(k, seed, q.kmeans_max_iter, q.kmeans_init_sample, q.kmeans_tol)
    if method == "w2":
        return W2Codebook(k, seed, q.kmeans_max_iter, q.kmeans_init_sample, q.kmeans_tol)
    if method == "geodesic":
        return GeodesicCodebook(k, seed=seed, n_landmarks=q.n_landmarks, knn=q.knn, metric=q.graph_metric,
                                repair=q.repair, backend=q.backend, assignment=q.assignment,
                                assign_neighbours=q.assign_neighbours, n_jobs=q.n_jobs)
    raise ValueError(f"parameter 'method' is {method!r}; allowed: kmeans, w2, geodesic")
