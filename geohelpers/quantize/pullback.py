"""The decoder's pullback metric, and codebooks fitted to what the reconstruction error sees.

Let ``g`` be a VAE's decoder to the mean image (784 pixels in [0, 1]) and ``z`` a latent made of ``P``
vectors ``z_p`` of dimension ``d`` (the GridVAE's 49 grid positions, or the FlatVAE's chunks). With the
other vectors held fixed, the Jacobian of the image with respect to one vector is
``J_p(z) = dg(z)/dz_p`` (784 x d), and the *pullback metric* of the decoder is

    G_p(z) = J_p(z)^T J_p(z)   (d x d, symmetric, positive semi-definite).

Replacing ``z_p`` by a codeword ``c`` changes the image by ``J_p (c - z_p)`` to first order, so

    || g(z with z_p -> c) - g(z) ||^2  ~=  (c - z_p)^T G_p(z) (c - z_p):

a codebook that minimises this, instead of ``||c - z_p||^2``, is fitted to the squared error that the
test MSE measures (Arvanitidis et al. 2018 for the Riemannian view of VAE latents).

**Computing G.** Two ways, each where it pays:

- :func:`vector_metrics`, exact: the ``P * d`` Jacobian columns by forward-mode ``torch.func.jvp``,
  vmapped over the basis directions: ``P * d`` decoder passes per image (392 for a 7x7x8 grid). For tests
  and for measuring the estimator below.
- :func:`probe_metrics`, unbiased: for ``v ~ N(0, I_784)``, ``E[(J_p^T v)(J_p^T v)^T] = J_p^T J_p``, and *one*
  vector-Jacobian product gives ``J_p^T v`` for all ``P`` vectors at once. ``m`` probes cost ``m`` backward
  passes per image, whatever ``P * d``. A single image's estimate is noisy (relative error about
  ``sqrt(2 / m)``), but the *mean* metrics that the codebooks use average thousands of images, and the
  noise averages out with them (``tests/test_pullback.py`` and notebook 07 measure it).
- :func:`mean_metrics`: the mean of ``G_p`` over images, per vector position ``p`` (``P`` x d x d).

**Codebooks** (the :class:`~geohelpers.quantize.codebook.Codebook` interface; the metric is fitted
beforehand from the VAE and given to the constructor):

- :class:`PullbackMeanCodebook` (``pullback_mean``): K-means under one metric ``M`` (the mean over
  images and positions). With ``M = L L^T`` (Cholesky), ``(z - c)^T M (z - c) = ||L^T z - L^T c||^2``:
  whiten, run Euclidean K-means, map the centres back with ``L^{-T}``. The mean of whitened vectors is
  the whitened mean, so this *is* K-means under ``M``.
- :class:`PullbackPositionCodebook` (``pullback_position``): one metric ``M_p`` per position, one
  codebook shared by all positions. Weighted Lloyd: the E-step gives each vector the code minimising
  ``(z_i - c_k)^T M_{p(i)} (z_i - c_k)`` (an exact search per position, in that position's whitened
  coordinates); the M-step sets ``c_k = (sum_{i in k} M_{p(i)})^{-1} sum_{i in k} M_{p(i)} z_i``, where the
  gradient of the cluster's cost, ``2 sum_{i in k} M_{p(i)} (c_k - z_i)``, vanishes: the exact minimiser.
  With every ``M_p = I`` both codebooks are Euclidean K-means on ``mu`` (same start, same codes).
- :class:`PullbackVectorCodebook` (``pullback_vector``): Jacobian-weighted K-means with the metric of
  *every* vector: the E-step gives vector ``i`` the code minimising ``(z_i - c_k)^T G_i (z_i - c_k)`` with its
  own ``G_i`` (probes, plus a relative ridge), the M-step is ``c_k = (sum_{i in k} G_i)^{-1} sum_{i in k} G_i z_i``.
  It is fitted on the vectors of a subsample of images (their metrics cost ``m`` decoder backward passes
  per image), and a vector being encoded uses its own metric, so encoding needs the VAE
  (:meth:`~PullbackVectorCodebook.encode_latents`). The costs of all codes at once come from one identity,
  ``(z - c)^T G (z - c) = z^T G z - 2 (G z)^T c + <G, c c^T>``: two matrix products per batch of vectors.
- :class:`PullbackGeodesicCodebook` (``pullback_geodesic``): notebook 03's k-NN graph geodesics and
  K-medoids with every length measured in the mean metric (the Riemannian version of the earlier
  studies' idea, under a constant metric); with ``M = I`` it is notebook 03's geodesic codebook.

A vector's position is its row index modulo ``P``: ``vae.to_vectors`` lays out each image's ``P`` vectors
consecutively, so the codebooks take whole images' vectors (``N`` a multiple of ``P``).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from sklearn.cluster import kmeans_plusplus

from ..config import PULLBACK_METHODS
from .codebook import Codebook, GeodesicCodebook, _check_vectors
from .kmeans import columns, kmeans
from .search import nearest


# --- the metric -------------------------------------------------------------------------------------------------

def _decode_flat(vae: Any, vectors: torch.Tensor) -> torch.Tensor:
    """(B, P, d) vectors -> (B, 784) mean images."""
    b = vectors.shape[0]
    return vae.decode(vae.from_vectors(vectors.reshape(b * vae.n_positions, vae.vector_dim))).reshape(b, -1)


def _vectors(vae: Any, mu: torch.Tensor) -> torch.Tensor:
    """A batch of latents in the VAE's layout -> (B, P, d)."""
    return vae.to_vectors(mu).reshape(len(mu), vae.n_positions, vae.vector_dim)


def vector_metrics(vae: Any, mu: torch.Tensor, batch_size: int = 8) -> torch.Tensor:
    """Exact ``G_p = J_p^T J_p`` of every vector of the latents ``mu`` (B images): (B, P, d, d).

    Forward mode: the Jacobian columns for all ``P * d`` basis directions of each image, by
    ``torch.func.jvp`` vmapped over the directions.
    """
    from torch.func import jvp, vmap

    vae.eval()
    p, d = vae.n_positions, vae.vector_dim
    basis = torch.eye(p * d).reshape(p * d, p, d)
    out = []
    with torch.no_grad():
        for s in range(0, len(mu), batch_size):
            z = _vectors(vae, mu[s:s + batch_size]).float()

            def column(direction: torch.Tensor) -> torch.Tensor:
                return jvp(lambda v: _decode_flat(vae, v), (z,), (direction.expand_as(z),))[1]

            cols = vmap(column)(basis)                                  # (P*d, B, 784)
            jac = cols.permute(1, 0, 2).reshape(len(z), p, d, -1)       # (B, P, d, 784)
            out.append(jac @ jac.transpose(-1, -2))
    return torch.cat(out)


def probe_metrics(vae: Any, mu: torch.Tensor, n_probes: int, seed: int = 0, batch_size: int = 500) -> torch.Tensor:
    """Unbiased estimate of every vector's ``G_p`` from ``n_probes`` Gaussian probes: (B, P, d, d).

    For ``v ~ N(0, I)`` in image space, ``u = J^T v`` (one backward pass) holds ``u_p = J_p^T v`` for every
    ``p``, and ``E[u_p u_p^T] = J_p^T J_p``.
    """
    from torch.func import vjp, vmap

    if n_probes < 1:
        raise ValueError(f"parameter 'n_probes' is {n_probes}; allowed: an integer >= 1")
    vae.eval()
    gen = torch.Generator().manual_seed(seed)
    out = []
    for s in range(0, len(mu), batch_size):
        z = _vectors(vae, mu[s:s + batch_size]).float()
        _, pull = vjp(lambda v: _decode_flat(vae, v), z)
        probes = torch.randn(n_probes, len(z), 784, generator=gen)
        with torch.no_grad():
            u = vmap(pull)(probes)[0]                                   # (m, B, P, d)
            out.append(torch.einsum("mbpi,mbpj->bpij", u, u) / n_probes)
    return torch.cat(out)


def mean_metrics(vae: Any, mu: torch.Tensor, n_probes: int = 16, seed: int = 0, batch_size: int = 500) -> np.ndarray:
    """The mean pullback metric of each vector position over the images of ``mu``: (P, d, d), float64.

    Estimated by :func:`probe_metrics`; summed batch by batch, so memory does not grow with the images.
    """
    total, n = None, 0
    for s in range(0, len(mu), batch_size):
        g = probe_metrics(vae, mu[s:s + batch_size], n_probes, seed=seed + s, batch_size=batch_size)
        total = g.sum(0).double() if total is None else total + g.sum(0).double()
        n += len(g)
    return (total / n).numpy()


def check_metric(metric: np.ndarray, name: str = "metric") -> np.ndarray:
    """``metric`` as float64 (P, d, d) or (d, d), symmetric positive definite, else a ValueError naming it."""
    m = np.asarray(metric, dtype=np.float64)
    if m.ndim not in (2, 3) or m.shape[-1] != m.shape[-2]:
        raise ValueError(f"parameter '{name}' has shape {m.shape}; allowed: (d, d) or (P, d, d)")
    if not np.allclose(m, np.swapaxes(m, -1, -2), rtol=1e-6, atol=1e-12 * max(1.0, float(np.abs(m).max()))):
        raise ValueError(f"parameter '{name}' is not symmetric; allowed: a symmetric positive definite matrix")
    low = float(np.linalg.eigvalsh(m).min())
    if not low > 0:
        raise ValueError(f"parameter '{name}' is not positive definite (smallest eigenvalue {low:.3g}); "
                         "allowed: a symmetric positive definite matrix (add a ridge)")
    return m


def with_ridge(metric: np.ndarray, ridge: float) -> np.ndarray:
    """``M + ridge * (tr(M) / d) * I`` for each metric: keeps directions the decoder ignores from
    collapsing to zero length (a relative ridge; ``ridge = 0`` leaves ``M`` as it is)."""
    m = np.asarray(metric, dtype=np.float64)
    d = m.shape[-1]
    scale = np.trace(m, axis1=-2, axis2=-1)[..., None, None] / d
    return m + ridge * scale * np.eye(d)


def first_order_error(codes: np.ndarray, codewords: np.ndarray, mu: np.ndarray, metrics: np.ndarray) -> np.ndarray:
    """The linearised squared image error ``(c - z)^T G (c - z)`` of each vector (rows of ``mu``, codes and
    per-vector metrics (N, d, d))."""
    diff = codewords[codes] - mu
    return np.einsum("ni,nij,nj->n", diff, metrics, diff)


# --- codebooks -------------------------------------------------------------------------------------------------

def plusplus_start(mu: np.ndarray, k: int, metric: np.ndarray, init_sample: int, seed: int) -> np.ndarray:
    """k-means++ centres on a seeded sample of ``init_sample`` rows, in the coordinates whitened by ``metric``,
    mapped back (the sample and the seeds of :func:`~geohelpers.quantize.kmeans.kmeans`)."""
    factor = np.linalg.cholesky(metric)
    rng = np.random.default_rng(seed)
    sample = mu[rng.choice(len(mu), size=min(len(mu), max(init_sample, k)), replace=False)]
    start, _ = kmeans_plusplus(sample.astype(np.float64) @ factor, k, random_state=seed)
    return np.linalg.solve(factor.T, start.T).T.astype(np.float32)


def weighted_lloyd(mu: np.ndarray, centres: np.ndarray, assign: Any, update: Any, max_iter: int, tol: float,
                   ) -> tuple[np.ndarray, float, int]:
    """Lloyd iterations under per-vector metrics: ``assign(centres) -> (cost, codes)`` (the E-step) and
    ``update(codes, centres) -> (centres, sizes)`` (the exact M-step). Stops when no code changes, the
    relative drop of the total cost is below ``tol``, or after ``max_iter`` iterations, as
    :func:`~geohelpers.quantize.kmeans.kmeans` does; empty clusters are re-seeded at the worst-served
    vectors. Returns the centres, the total cost and the iterations."""
    previous, codes_prev = np.inf, None
    for it in range(1, max_iter + 1):
        cost, codes = assign(centres)
        inertia = float(cost.sum())
        if codes_prev is not None and (np.array_equal(codes, codes_prev) or previous - inertia <= tol * inertia):
            break
        centres, sizes = update(codes, centres)
        empty = np.flatnonzero(sizes == 0)
        if empty.size:
            centres[empty] = mu[np.argsort(cost)[::-1][: empty.size]]
        previous, codes_prev = inertia, codes
    else:
        cost, codes = assign(centres)
        inertia = float(cost.sum())
    return centres, inertia, it


class PullbackMeanCodebook(Codebook):
    """K-means under one mean pullback metric ``M``: whitened by its Cholesky factor (module docstring)."""

    method = "pullback_mean"

    def __init__(self, k: int, seed: int = 0, metric: Any = None, max_iter: int = 50, init_sample: int = 100_000,
                 tol: float = 1e-4) -> None:
        super().__init__(k, seed)
        if metric is None:
            raise ValueError("parameter 'metric' is missing; allowed: a (d, d) positive definite matrix")
        m = check_metric(metric)
        if m.ndim != 2:
            raise ValueError(f"parameter 'metric' has shape {m.shape}; allowed: one (d, d) matrix")
        self.metric, self.factor = m, np.linalg.cholesky(m)   # M = L L^T
        self.max_iter, self.init_sample, self.tol = max_iter, init_sample, tol

    def params(self) -> dict[str, Any]:
        return {**super().params(), "metric": self.metric.tolist(), "max_iter": self.max_iter,
                "init_sample": self.init_sample, "tol": self.tol}

    def whiten(self, x: np.ndarray) -> np.ndarray:
        """Rows ``z`` -> ``L^T z``, in which the metric is Euclidean."""
        return (np.asarray(x, dtype=np.float64) @ self.factor).astype(np.float32)

    def fit(self, mu: np.ndarray, sigma: np.ndarray | None = None) -> "PullbackMeanCodebook":
        mu, _ = _check_vectors(mu, sigma)
        res = kmeans(self.whiten(mu), self.k, seed=self.seed, max_iter=self.max_iter, init_sample=self.init_sample,
                     tol=self.tol)
        self.codewords = np.linalg.solve(self.factor.T, res.centres.T.astype(np.float64)).T.astype(np.float32)
        self.inertia = res.inertia
        self.fit_seconds, self.lloyd_iterations = {"kmeans": res.seconds}, res.n_iter
        return self

    def encode(self, mu: np.ndarray, sigma: np.ndarray | None = None) -> np.ndarray:
        self._need_fit()
        mu, _ = _check_vectors(mu, sigma)
        return nearest(self.whiten(self.codewords), self.whiten(mu))[1][:, 0]


class PullbackPositionCodebook(Codebook):
    """One mean metric per vector position, one shared codebook: weighted Lloyd (module docstring)."""

    method = "pullback_position"

    def __init__(self, k: int, seed: int = 0, metrics: Any = None, max_iter: int = 50, init_sample: int = 100_000,
                 tol: float = 1e-4) -> None:
        super().__init__(k, seed)
        if metrics is None:
            raise ValueError("parameter 'metrics' is missing; allowed: (P, d, d) positive definite matrices")
        m = check_metric(metrics, "metrics")
        if m.ndim != 3:
            raise ValueError(f"parameter 'metrics' has shape {m.shape}; allowed: (P, d, d), one per position")
        self.metrics, self.factors = m, np.linalg.cholesky(m)
        self.max_iter, self.init_sample, self.tol = max_iter, init_sample, tol

    @property
    def n_positions(self) -> int:
        return len(self.metrics)

    def params(self) -> dict[str, Any]:
        return {**super().params(), "metrics": self.metrics.tolist(), "max_iter": self.max_iter,
                "init_sample": self.init_sample, "tol": self.tol}

    def _positions(self, n: int) -> np.ndarray:
        if n % self.n_positions:
            raise ValueError(f"got {n} vectors; allowed: whole images, a multiple of the {self.n_positions} "
                             "positions (vectors as vae.to_vectors lays them out)")
        return np.tile(np.arange(self.n_positions), n // self.n_positions)

    def whitened(self, mu: np.ndarray) -> list[tuple[slice, np.ndarray]]:
        """For each position ``p``: the rows of ``mu`` at ``p`` (every ``P``-th row from ``p``, as a slice) and
        those rows whitened by its factor (``L_p^T z``), computed once per fit or encode, not once per Lloyd
        iteration."""
        self._positions(len(mu))
        out = []
        for p, f in enumerate(self.factors):
            rows = slice(p, None, self.n_positions)
            out.append((rows, (mu[rows].astype(np.float64) @ f).astype(np.float32)))
        return out

    def costs_and_codes(self, mu: np.ndarray, centres: np.ndarray | None = None,
                        groups: list[tuple[slice, np.ndarray]] | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Each vector's smallest ``(z - c)^T M_p (z - c)`` over the codewords, and its code (``groups``: the
        output of :meth:`whitened` for these ``mu``, when the caller has it)."""
        c = (self.codewords if centres is None else centres).astype(np.float64)
        groups = self.whitened(mu) if groups is None else groups
        cost, codes = np.empty(len(mu), np.float64), np.empty(len(mu), np.int64)
        for (rows, white), f in zip(groups, self.factors):
            d2, idx = nearest((c @ f).astype(np.float32), white)
            cost[rows], codes[rows] = d2[:, 0], idx[:, 0]
        return cost, codes

    def m_step(self, mu: np.ndarray, codes: np.ndarray, centres: np.ndarray, pos: np.ndarray | None = None,
               cols: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """``c_k = (sum_{i in k} M_p(i))^{-1} sum_{i in k} M_p(i) z_i`` for every non-empty cluster (the others
        keep ``centres``); returns the new centres and the cluster sizes. ``pos`` (each row's position) and
        ``cols`` (:func:`~geohelpers.quantize.kmeans.columns` of ``mu``) are computed once per fit by the caller."""
        k, (pcount, d) = self.k, (self.n_positions, mu.shape[1])
        pos = self._positions(len(mu)) if pos is None else pos
        cols = columns(mu) if cols is None else cols
        cell = codes * pcount + pos
        counts = np.bincount(cell, minlength=k * pcount).reshape(k, pcount).astype(np.float64)
        sums = np.stack([np.bincount(cell, weights=c, minlength=k * pcount) for c in cols],
                        axis=1).reshape(k, pcount, d)
        a = np.einsum("kp,pij->kij", counts, self.metrics)
        b = np.einsum("pij,kpj->ki", self.metrics, sums)
        sizes = counts.sum(1)
        new = centres.astype(np.float64).copy()
        full = sizes > 0
        new[full] = np.linalg.solve(a[full], b[full][..., None])[..., 0]
        return new.astype(np.float32), sizes

    def fit(self, mu: np.ndarray, sigma: np.ndarray | None = None) -> "PullbackPositionCodebook":
        """Weighted Lloyd (:func:`weighted_lloyd`) from a k-means++ start in the coordinates whitened by the
        positions' mean metric (with every ``M_p = I``: the start and the iterations of
        :func:`~geohelpers.quantize.kmeans.kmeans`)."""
        mu, _ = _check_vectors(mu, sigma)
        t0 = time.perf_counter()
        pos, cols = self._positions(len(mu)), columns(mu)
        centres = plusplus_start(mu, self.k, self.metrics.mean(0), self.init_sample, self.seed)
        groups = self.whitened(mu)
        self.codewords, self.inertia, it = weighted_lloyd(
            mu, centres, lambda c: self.costs_and_codes(mu, c, groups),
            lambda codes, c: self.m_step(mu, codes, c, pos, cols), self.max_iter, self.tol)
        self.fit_seconds, self.lloyd_iterations = {"kmeans": time.perf_counter() - t0}, it
        return self

    def encode(self, mu: np.ndarray, sigma: np.ndarray | None = None) -> np.ndarray:
        self._need_fit()
        mu, _ = _check_vectors(mu, sigma)
        return self.costs_and_codes(mu)[1]


@dataclass
class MetricTerms:
    """What the per-vector E- and M-steps need of the vectors ``z`` (N, d) and their metrics ``G`` (N, d, d),
    in float64, computed once per fit (:func:`metric_terms`) rather than once per Lloyd iteration."""

    g: np.ndarray       # (N, d^2), the entries of each G_i
    gz: np.ndarray      # (N, d), G_i z_i
    zgz: np.ndarray     # (N,), z_i^T G_i z_i
    g_cols: np.ndarray  # (d^2, N), the columns of g, contiguous (bincount weights)
    gz_cols: np.ndarray  # (d, N), the columns of gz, contiguous


def metric_terms(z: np.ndarray, metrics: np.ndarray, chunk: int = 65_536) -> MetricTerms:
    """:class:`MetricTerms` of the vectors ``z`` and metrics ``metrics``, chunk by chunk as
    :func:`metric_costs` computes them (so the costs are the same to the last bit)."""
    g = np.asarray(metrics, dtype=np.float64).reshape(len(z), -1)
    gz, zgz = np.empty((len(z), z.shape[1])), np.empty(len(z))
    for s in range(0, len(z), chunk):
        zz = np.asarray(z[s:s + chunk], dtype=np.float64)
        gz[s:s + chunk] = np.einsum("nij,nj->ni", np.asarray(metrics[s:s + chunk], dtype=np.float64), zz)
        zgz[s:s + chunk] = np.einsum("ni,ni->n", zz, gz[s:s + chunk])
    return MetricTerms(g, gz, zgz, columns(g), columns(gz))


def metric_costs(z: np.ndarray, metrics: np.ndarray, centres: np.ndarray, chunk: int = 65_536,
                 terms: MetricTerms | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Each vector's smallest ``(z_i - c_k)^T G_i (z_i - c_k)`` over the centres, and its code.

    ``z`` (N, d), ``metrics`` (N, d, d) (one per vector), ``centres`` (K, d). By
    ``z^T G z - 2 (G z)^T c + <G, c c^T>``: per chunk of vectors, one (n, d) x (d, K) and one
    (n, d^2) x (d^2, K) product, in float64 (the three terms nearly cancel for a vector close to a centre).
    ``terms``: :func:`metric_terms` of ``z`` and ``metrics`` with the same ``chunk``, when the caller has them.
    """
    t = metric_terms(z, metrics, chunk) if terms is None else terms
    c = np.asarray(centres, dtype=np.float64)
    outer = np.einsum("ki,kj->kij", c, c).reshape(len(c), -1)          # (K, d^2)
    cost, codes = np.empty(len(z), np.float64), np.empty(len(z), np.int64)
    for s in range(0, len(z), chunk):
        full = t.zgz[s:s + chunk, None] - 2 * t.gz[s:s + chunk] @ c.T + t.g[s:s + chunk] @ outer.T
        codes[s:s + chunk] = full.argmin(1)
        cost[s:s + chunk] = np.maximum(full[np.arange(len(full)), codes[s:s + chunk]], 0.0)
    return cost, codes


def metric_m_step(z: np.ndarray, metrics: np.ndarray, codes: np.ndarray, centres: np.ndarray, k: int,
                  terms: MetricTerms | None = None) -> tuple[np.ndarray, np.ndarray]:
    """``c_k = (sum_{i in k} G_i)^{-1} sum_{i in k} G_i z_i`` for every non-empty cluster (the others keep
    ``centres``), by bincounts over the entries of ``G_i`` and of ``G_i z_i``; returns the centres and sizes
    (``terms``: :func:`metric_terms`, when the caller has them)."""
    d = z.shape[1]
    t = metric_terms(z, metrics) if terms is None else terms
    a = np.stack([np.bincount(codes, weights=w, minlength=k) for w in t.g_cols], 1).reshape(k, d, d)
    b = np.stack([np.bincount(codes, weights=w, minlength=k) for w in t.gz_cols], 1)
    sizes = np.bincount(codes, minlength=k)
    new = np.asarray(centres, dtype=np.float64).copy()
    full = sizes > 0
    new[full] = np.linalg.solve(a[full], b[full][..., None])[..., 0]
    return new.astype(np.float32), sizes


def latent_vector_metrics(vae: Any, mu: torch.Tensor, n_probes: int, ridge: float, seed: int = 0,
                          batch_size: int = 500) -> np.ndarray:
    """Every vector's metric for latents ``mu`` (B images), by probes, with a relative ridge:
    (B * P, d, d) float32, rows in the order of ``vae.to_vectors``."""
    out = [with_ridge(probe_metrics(vae, mu[s:s + batch_size], n_probes, seed=seed + s, batch_size=batch_size)
                      .numpy().astype(np.float64), ridge).astype(np.float32)
           for s in range(0, len(mu), batch_size)]
    g = np.concatenate(out)
    return g.reshape(-1, g.shape[-1], g.shape[-1])


_METRIC_CACHE: list[tuple[tuple, Any, torch.Tensor, np.ndarray]] = []


def _parameter_state(vae: Any) -> tuple:
    """The in-place version counter of every parameter: it changes whenever an optimizer step (or any other
    in-place write) changes a weight, so a cached metric of a since-adapted decoder is never reused."""
    return tuple(p._version for p in vae.parameters())


def cached_vector_metrics(vae: Any, mu: torch.Tensor, n_probes: int, ridge: float, seed: int = 0,
                          size: int = 4) -> np.ndarray:
    """:func:`latent_vector_metrics`, remembered for the last ``size`` calls: a notebook encodes the same
    test latents with the codebook of every K, and the metrics (the expensive part) do not depend on K.

    A hit needs the very same VAE object with unchanged weights, the very same ``mu`` tensor (identity,
    unmodified since: its version counter), and the same probes, ridge and seed."""
    key = (id(vae), _parameter_state(vae), id(mu), mu._version, int(n_probes), float(ridge), int(seed))
    for k, model, tensor, g in _METRIC_CACHE:
        if k == key and model is vae and tensor is mu:
            return g
    g = latent_vector_metrics(vae, mu, n_probes, ridge, seed=seed)
    _METRIC_CACHE.append((key, vae, mu, g))
    del _METRIC_CACHE[:-size]
    return g


class PullbackVectorCodebook(Codebook):
    """Jacobian-weighted K-means: the metric of every vector, at fit and at encoding (module docstring).

    ``fit(mu, sigma, metrics=...)`` takes the training vectors and their own metrics (see
    :func:`latent_vector_metrics`); :meth:`encode_latents` computes the metrics of the vectors it encodes
    with the same number of probes and ridge, so it needs the VAE. :meth:`encode` takes ``metrics`` too.
    """

    method = "pullback_vector"

    def __init__(self, k: int, seed: int = 0, n_probes: int = 16, ridge: float = 1e-6, max_iter: int = 50,
                 init_sample: int = 100_000, tol: float = 1e-4) -> None:
        super().__init__(k, seed)
        if isinstance(n_probes, bool) or not isinstance(n_probes, int) or n_probes < 1:
            raise ValueError(f"parameter 'n_probes' is {n_probes!r}; allowed: an integer >= 1")
        self.n_probes, self.ridge = n_probes, float(ridge)
        self.max_iter, self.init_sample, self.tol = max_iter, init_sample, tol

    def params(self) -> dict[str, Any]:
        return {**super().params(), "n_probes": self.n_probes, "ridge": self.ridge, "max_iter": self.max_iter,
                "init_sample": self.init_sample, "tol": self.tol}

    @staticmethod
    def _check(mu: np.ndarray, metrics: Any) -> np.ndarray:
        if metrics is None:
            raise ValueError("parameter 'metrics' is missing; allowed: (N, d, d), the metric of every vector "
                             "(pullback_vector needs the VAE: use encode_latents)")
        g = np.asarray(metrics)
        if g.shape != (len(mu), mu.shape[1], mu.shape[1]):
            raise ValueError(f"parameter 'metrics' has shape {g.shape}; allowed: {(len(mu), mu.shape[1], mu.shape[1])}")
        return g

    def fit(self, mu: np.ndarray, sigma: np.ndarray | None = None, metrics: Any = None,
            init: np.ndarray | None = None) -> "PullbackVectorCodebook":
        """Weighted Lloyd under the vectors' own metrics, from ``init`` (K, d) codewords when given (for
        instance the per-position codebook's, which are already fitted under the decoder's metric, so far
        fewer iterations are needed), else from a k-means++ start whitened by the metrics' mean."""
        mu, _ = _check_vectors(mu, sigma)
        g = self._check(mu, metrics)
        t0 = time.perf_counter()
        if init is None:
            centres = plusplus_start(mu, self.k, check_metric(g.mean(0)), self.init_sample, self.seed)
        else:
            centres = np.array(init, dtype=mu.dtype)
            if centres.shape != (self.k, mu.shape[1]) or not np.isfinite(centres).all():
                raise ValueError(f"parameter 'init' has shape {centres.shape}; allowed: finite ({self.k}, {mu.shape[1]})")
        terms = metric_terms(mu, g)
        self.codewords, self.inertia, it = weighted_lloyd(
            mu, centres, lambda c: metric_costs(mu, g, c, terms=terms),
            lambda codes, c: metric_m_step(mu, g, codes, c, self.k, terms), self.max_iter, self.tol)
        self.fit_seconds, self.lloyd_iterations = {"kmeans": time.perf_counter() - t0}, it
        return self

    def encode(self, mu: np.ndarray, sigma: np.ndarray | None = None, metrics: Any = None) -> np.ndarray:
        self._need_fit()
        mu, _ = _check_vectors(mu, sigma)
        return metric_costs(mu, self._check(mu, metrics), self.codewords)[1]

    def encode_latents(self, vae: Any, mu: torch.Tensor, sigma: torch.Tensor, seed: int | None = None) -> np.ndarray:
        """Latents of B images -> (B, *vae.code_shape) codes, each vector under its own metric (the metrics
        of the same latents under the same, unchanged decoder are computed once: :func:`cached_vector_metrics`),
        estimated with the probes of ``seed`` (default: the codebook's own seed, the configuration's)."""
        g = cached_vector_metrics(vae, mu, self.n_probes, self.ridge, seed=self.seed if seed is None else seed)
        codes = self.encode(vae.to_vectors(mu).numpy(), vae.to_vectors(sigma).numpy(), metrics=g)
        return codes.reshape(len(mu), *vae.code_shape)


class PullbackGeodesicCodebook(GeodesicCodebook):
    """k-NN graph geodesics under the mean pullback metric ``M = L L^T``, then K-medoids and the geodesic
    assignment of :class:`~geohelpers.quantize.codebook.GeodesicCodebook`.

    Every length is Riemannian under ``M``: an edge between landmarks ``a`` and ``b`` has length
    ``sqrt((a - b)^T M (a - b)) = ||L^T a - L^T b||``, and so has the step from a vector to its entry
    landmark; the graph is built on the whitened vectors ``L^T z``, and the codewords are the medoids'
    ``mu``. Under a constant metric the Riemannian geodesics are straight lines, so the comparison with
    :class:`PullbackMeanCodebook` (straight lines in the same metric) asks whether the *data's* paths,
    measured by the decoder, beat straight lines in the decoder's metric.
    """

    method = "pullback_geodesic"

    def __init__(self, k: int, seed: int = 0, pullback_metric: Any = None, **geodesic: Any) -> None:
        if pullback_metric is None:
            raise ValueError("parameter 'pullback_metric' is missing; allowed: a (d, d) positive definite matrix")
        m = check_metric(pullback_metric, "pullback_metric")
        if m.ndim != 2:
            raise ValueError(f"parameter 'pullback_metric' has shape {m.shape}; allowed: one (d, d) matrix")
        if geodesic.get("metric", "euclidean") != "euclidean":
            raise ValueError("parameter 'metric' is not used by the pullback geodesic codebook; allowed: 'euclidean'")
        super().__init__(k, seed, **geodesic)
        self.pullback_metric, self.factor = m, np.linalg.cholesky(m)

    def params(self) -> dict[str, Any]:
        return {**super().params(), "pullback_metric": self.pullback_metric.tolist()}

    def features(self, mu: np.ndarray, sigma: np.ndarray | None) -> np.ndarray:
        return (np.asarray(mu, dtype=np.float64) @ self.factor).astype(np.float32)


def build_pullback_codebook(method: str, k: int, metric: np.ndarray, quantize_cfg: Any, seed: int = 0) -> Codebook:
    """A decoder-aware codebook of ``method`` with the profile's parameters: ``pullback_mean`` and
    ``pullback_geodesic`` take one (d, d) metric (the mean over positions of a (P, d, d) one is taken),
    ``pullback_position`` one per position; ``pullback_vector`` takes none here (its ``fit`` takes the
    metric of every training vector) and estimates the metrics of the vectors it encodes with the
    profile's probes and ridge."""
    if method not in PULLBACK_METHODS:
        raise ValueError(f"parameter 'method' is {method!r}; allowed: {', '.join(PULLBACK_METHODS)}")
    q = quantize_cfg
    kw = {"max_iter": q.kmeans_max_iter, "init_sample": q.kmeans_init_sample, "tol": q.kmeans_tol}
    if method == "pullback_vector":
        return PullbackVectorCodebook(k, seed, n_probes=q.pullback_probes, ridge=q.pullback_ridge, **kw)
    metric = np.asarray(metric, dtype=np.float64)
    mean = metric.mean(0) if metric.ndim == 3 else metric
    if method == "pullback_mean":
        return PullbackMeanCodebook(k, seed, mean, **kw)
    if method == "pullback_geodesic":
        return PullbackGeodesicCodebook(k, seed, mean, n_landmarks=q.n_landmarks, knn=q.knn, repair=q.repair,
                                        backend=q.backend, assignment=q.assignment,
                                        assign_neighbours=q.assign_neighbours, n_jobs=q.n_jobs)
    return PullbackPositionCodebook(k, seed, metric, **kw)
