"""Stage: a posteriori codebooks (``codebook/<vae>_<method>_K<k>``): K-means and W2 K-means, the geodesic
K-medoids of one k-NN graph (every K at once), and the decoder-aware ones with the pullback metrics they
are fitted under. Each is fitted on the training latents, or loaded when its stored file carries the
identity :func:`codebook_tag` gives.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .. import artifacts, store
from ..config import Config
from ..models.vae import VAE
from ..quantize import pullback as pullback_module
from ..quantize.codebook import Codebook, GeodesicCodebook, build_codebook
from .vaes import Latents, vae_tag


def codebook_tag(kind: str, method: str, k: int, cfg: Config) -> str:
    """Identity of a fitted codebook: the VAE it quantizes, its method, K, parameters and code."""
    params = {name: v for name, v in cfg.to_dict()["quantize"].items()  # the pullback_* parameters shape
              if name != "ks" and (method.startswith("pullback") or not name.startswith("pullback_"))}  # only those
    return artifacts.identity(f"codebook/{kind}_{method}_K{k}", cfg, (), {"vae": vae_tag(kind, cfg)}, **params, module=__name__)


def codebook_path(kind: str, method: str, k: int, cfg: Config) -> Path:
    """Where the codebook of this identity is stored."""
    digest = codebook_tag(kind, method, k, cfg).rsplit("@", 1)[1]
    return store.artifacts_dir(cfg.profile) / "codebooks" / f"{kind}_{method}_K{k}_{digest}.npz"


def make_codebook(method: str, k: int, cfg: Config, metric: np.ndarray | None = None) -> Codebook:
    """An unfitted codebook of any method with the profile's parameters; the decoder-aware ones
    (``pullback_*``, notebook 07) also take the VAE's mean pullback ``metric``."""
    from ..config import PULLBACK_METHODS

    if method in PULLBACK_METHODS:
        return pullback_module.build_pullback_codebook(method, k, metric, cfg.quantize, seed=cfg.seed)
    return build_codebook(method, k, cfg.quantize, seed=cfg.seed)


@dataclass
class VectorMetrics:
    """Training vectors and each one's own pullback metric (ridge included), for ``pullback_vector``."""

    mu: np.ndarray             # (N * P, d)
    sigma: np.ndarray          # (N * P, d)
    metrics: np.ndarray        # (N * P, d, d)


def fit_codebook(kind: str, method: str, k: int, cfg: Config, train: Latents, metric: np.ndarray | None = None,
                 vectors: VectorMetrics | None = None) -> tuple[Codebook, bool]:
    """Fit a codebook on the training vectors, or load it when an up-to-date one is stored.

    Returns the codebook and whether it was fitted now. ``metric`` is for the decoder-aware methods
    (:func:`make_codebook`); ``pullback_vector`` is fitted on ``vectors`` instead (a subsample of the
    training vectors with their own metrics, :func:`pullback_metrics`), starting from the codewords of
    ``pullback_position`` at the same K (fitted or loaded first). The identity
    (:func:`codebook_tag`) covers the quantize parameters that fix how it is estimated.
    """
    path, made_by = codebook_path(kind, method, k, cfg), codebook_tag(kind, method, k, cfg)
    stored = Codebook.load_stored(path)
    if stored is not None:
        return stored, False
    if method == "pullback_vector":
        if vectors is None:
            raise ValueError("parameter 'vectors' is missing; allowed: the training vectors with their own metrics "
                             "(geohelpers.stages.codebooks.pullback_metrics(...).vectors)")
        start = fit_codebook(kind, "pullback_position", k, cfg, train, metric)[0].codewords
        cb = make_codebook(method, k, cfg, metric).fit(vectors.mu, vectors.sigma, metrics=vectors.metrics, init=start)
        cb.save(path, made_by)
        return cb, True
    cb = make_codebook(method, k, cfg, metric).fit(train.vectors_mu, train.vectors_sigma)
    cb.save(path, made_by)
    return cb, True


@dataclass
class GeodesicWork:
    """Landmark indices (into the training vectors) and their geodesic distance matrix."""

    landmark_index: np.ndarray
    geodesics: np.ndarray


def fit_geodesic_codebooks(kind: str, cfg: Config, train: Latents, ks: tuple[int, ...] | None = None,
                           need_work: bool = False, method: str = "geodesic", metric: np.ndarray | None = None,
                           ) -> tuple[dict[int, Codebook], dict[str, float], GeodesicWork | None]:
    """Geodesic codebooks for every K, sharing one landmark graph and one shortest-path matrix.

    Loads the codebooks that are stored and up to date; builds the geodesics once for the others.
    Returns the codebooks, the wall time of each stage done now, and the geodesic work (landmark indices
    and distance matrix) when it was built now or ``need_work`` asks for it, for experiments on the
    same graph. ``method = "pullback_geodesic"`` builds the graph under the mean pullback ``metric``
    (notebook 07) instead.
    """
    ks = tuple(ks or cfg.quantize.ks)
    paths = {k: codebook_path(kind, method, k, cfg) for k in ks}
    stored = {k: Codebook.load_stored(p) for k, p in paths.items()}
    books = {k: cb for k, cb in stored.items() if cb is not None}
    missing = [k for k in ks if k not in books]
    if not missing and not need_work:
        return books, {}, None
    base = make_codebook(method, ks[0], cfg, metric)
    idx, geo = base.build_geodesics(train.vectors_mu, train.vectors_sigma)
    seconds = dict(base.fit_seconds)
    from tqdm import tqdm

    for k in tqdm(missing, desc=f"{kind} {method} K-medoids"):
        cb = make_codebook(method, k, cfg, metric)
        cb.landmarks, cb.diagnostics, cb.fit_seconds = base.landmarks, dict(base.diagnostics), dict(base.fit_seconds)
        cb.fit_geodesics(train.vectors_mu, train.vectors_sigma, idx, geo)
        seconds[f"kmedoids K={k}"] = cb.fit_seconds["kmedoids"]
        cb.save(paths[k], codebook_tag(kind, method, k, cfg))
        books[k] = cb
    return dict(sorted(books.items())), seconds, GeodesicWork(idx, geo)


def geodesic_codes_all_k(books: dict[int, GeodesicCodebook], vae: VAE, split: Latents,
                         assignment: str | None = None,
                         ) -> tuple[dict[int, np.ndarray], float, tuple[np.ndarray, np.ndarray]]:
    """Code maps of one split under every geodesic codebook of one graph, from a single neighbour search.

    The codebooks of :func:`fit_geodesic_codebooks` share their landmarks, so the search for each
    vector's nearest landmarks (the costly part) is done once. Returns the maps per K, the seconds of
    the whole assignment (the search and every K's rule), and the search's (distances, indices) for
    other rules.
    """
    import time

    first = next(iter(books.values()))
    if any(not np.array_equal(b.landmarks, first.landmarks) for b in books.values()):
        raise ValueError("the geodesic codebooks do not share their landmarks")
    t0 = time.perf_counter()
    dist, nn = first.neighbours(split.vectors_mu, split.vectors_sigma)
    n = len(split.mu)
    codes = {k: b.codes_from_neighbours(dist, nn, assignment).reshape(n, *vae.code_shape) for k, b in books.items()}
    return codes, time.perf_counter() - t0, (dist, nn)


def load_codebook(kind: str, method: str, k: int, cfg: Config) -> Codebook:
    """The stored, up-to-date codebook of notebook 02 (kmeans, w2) or 03 (geodesic)."""
    path = codebook_path(kind, method, k, cfg)
    cb = Codebook.load_stored(path)
    if cb is None:
        raise FileNotFoundError(f"no up-to-date {method} codebook K={k} for the {kind} VAE ({path} is missing, or "
                                f"was damaged and set aside): run notebook {'03' if method == 'geodesic' else '02'} "
                                f"with profile {cfg.profile!r}")
    return cb


@dataclass
class PullbackMetrics:
    """The mean pullback metric of each vector position of one VAE, how it was estimated, and the same
    images' vectors with their own metrics."""

    metrics: np.ndarray        # (P, d, d) mean over the images, ridge included
    split_half_error: float    # relative Frobenius difference of two independent half-probe estimates
    seconds: float
    n_images: int
    n_probes: int
    vectors: VectorMetrics | None = None


def pullback_metrics(vae: VAE, train: Latents, cfg: Config) -> PullbackMetrics:
    """Mean pullback metric per position over ``quantize.pullback_images`` training images (the first
    ones of a seeded permutation), ``quantize.pullback_probes`` probes each, plus the relative ridge;
    and the same images' vectors with each one's own metric (another ``pullback_probes`` probes, the
    ridge), on which ``pullback_vector`` is fitted. ``seconds`` is the time of the mean metrics.

    The estimator's noise is measured by splitting the probes into two independent halves: the relative
    difference of the two half estimates, over sqrt(2), is the standard error of one half, and the full
    estimate's is that over sqrt(2) again.
    """
    import time

    q = cfg.quantize
    t0 = time.perf_counter()
    idx = np.sort(np.random.default_rng(cfg.seed).permutation(len(train.mu))[:q.pullback_images])
    mu = train.mu[idx]
    half = max(1, q.pullback_probes // 2)
    other = max(1, q.pullback_probes - half)
    a = pullback_module.mean_metrics(vae, mu, half, seed=cfg.seed)
    b = pullback_module.mean_metrics(vae, mu, other, seed=cfg.seed + 10_000_019)
    mean = (half * a + other * b) / (half + other)
    err = float(np.linalg.norm(a - b) / np.linalg.norm(mean))
    seconds = time.perf_counter() - t0
    g = pullback_module.latent_vector_metrics(vae, mu, q.pullback_probes, q.pullback_ridge, seed=cfg.seed + 20_000_003)
    vectors = VectorMetrics(vae.to_vectors(mu).numpy(), vae.to_vectors(train.sigma[idx]).numpy(), g)
    return PullbackMetrics(pullback_module.with_ridge(mean, q.pullback_ridge), err, seconds, len(idx),
                           q.pullback_probes, vectors)


def grid_codebooks_at(k: int, cfg: Config, train: Latents, pullback: PullbackMetrics) -> dict[str, Codebook]:
    """Every a posteriori codebook of the GridVAE at size ``k`` (notebooks 02, 03 and the decoder-aware
    ones of notebook 07), loaded when stored, fitted otherwise (``pullback``: :func:`pullback_metrics`)."""
    from ..config import PULLBACK_METHODS

    books = {m: fit_codebook("grid", m, k, cfg, train)[0] for m in ("kmeans", "w2")}
    books["geodesic"] = fit_geodesic_codebooks("grid", cfg, train, ks=(k,))[0][k]
    for m in PULLBACK_METHODS:
        if m == "pullback_geodesic":
            books[m] = fit_geodesic_codebooks("grid", cfg, train, ks=(k,), method=m, metric=pullback.metrics)[0][k]
        else:
            books[m] = fit_codebook("grid", m, k, cfg, train, pullback.metrics, pullback.vectors)[0]
    return books
