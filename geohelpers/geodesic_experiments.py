"""Notebook 03's experiments on the k-NN geodesic graph: its connected components under two landmark draws,
the geodesic codebooks of every VAE with their code maps, K-medoids backends, assignment rules and graph
repairs compared on the same geodesics, and a 2-D view of the landmarks.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from . import artifacts, store
from .config import Config
from .evaluation import evaluate_codebook, evaluate_codes
from .models.vae import VAE
from .quantize.codebook import Codebook, GeodesicCodebook
from .stages.codebooks import GeodesicWork, fit_geodesic_codebooks, geodesic_codes_all_k
from .stages.codes import save_codes
from .stages.vaes import KIND_OF, Latents


def component_counts(vectors: np.ndarray, knns: tuple[int, ...], n_landmarks: int, seed: int) -> list[dict]:
    """Connected components of the k-NN graph of the landmarks, for several k.

    Two landmark draws: ``distinct`` (ours: a vector value at most once) and ``with repeats`` (a plain
    random draw, as in study 003), whose repeated vectors sit at distance 0 from each other.
    """
    from .quantize.codebook import sample_distinct
    from .quantize.graph import knn_graph, n_components

    rng = np.random.default_rng(seed)
    distinct, _ = sample_distinct(vectors, n_landmarks, np.random.default_rng(seed))
    plain = rng.choice(len(vectors), n_landmarks, replace=False)
    rows = []
    for k in knns:
        for label, idx in (("distinct", distinct), ("with repeats", plain)):
            x = vectors[idx]
            rows.append({"k": k, "landmarks": label, "distinct values": len(np.unique(x, axis=0)),
                         "components": n_components(knn_graph(x, k))})
    return rows


@dataclass
class GeodesicStage:
    """Notebook 03's geodesic codebooks of every VAE (by display name) and what they were built from."""

    books: dict[str, dict[int, Codebook]]
    work: dict[str, GeodesicWork]
    assign_seconds: dict[tuple[str, str], float]                       # (VAE, split) -> seconds, every K
    neighbours: dict[tuple[str, str], tuple[np.ndarray, np.ndarray]]  # (VAE, split) -> landmark search
    rows: list[dict]                                                  # test rows, one per (VAE, K)


def geodesic_stage(vaes: dict[str, VAE], lat: dict[str, dict[str, Latents]], x_test: torch.Tensor, cfg: Config,
                   times: "store.WallTimes") -> GeodesicStage:
    """Fit (or load) every geodesic codebook, assign every split by the geodesic rule, store the code
    maps for the priors, and evaluate each codebook on the test images."""
    stage = GeodesicStage({}, {}, {}, {}, [])
    for name, vae in vaes.items():
        kind = KIND_OF[name]
        with times(f"geodesic codebooks {name}"):
            stage.books[name], _, stage.work[name] = fit_geodesic_codebooks(kind, cfg, lat[name]["train"],
                                                                            need_work=True)
        with times(f"assign and store codes {name}"):
            codes = {}
            for split in ("train", "val", "test"):
                codes[split], stage.assign_seconds[name, split], nbrs = geodesic_codes_all_k(
                    stage.books[name], vae, lat[name][split])
                if split != "val":
                    stage.neighbours[name, split] = nbrs
            for k, cb in stage.books[name].items():
                save_codes(cfg, artifacts.CodeSet(kind, "geodesic", k).name, **{s: codes[s][k] for s in codes})
                res = evaluate_codes(cb, vae, codes["test"][k], x_test)
                stage.rows.append({"VAE": name, "method": "geodesic", "K": k, **res,
                                   "fit_seconds": sum(cb.fit_seconds.values())})
    return stage


def compare_backends(base: GeodesicCodebook, vae: VAE, lat: dict[str, Latents], work: GeodesicWork,
                     x_test: torch.Tensor, times: "store.WallTimes") -> "pd.DataFrame":
    """FasterPAM against scikit-learn-extra's alternate K-medoids on the same geodesics: loss, seconds and
    the test metrics of each codebook after the same geodesic assignment."""
    import pandas as pd

    rows = []
    for backend in ("fasterpam", "sklearn_extra"):
        with times(f"backend {backend}"):
            variant = geodesic_variant(base, lat["train"].vectors_mu, lat["train"].vectors_sigma, work, backend=backend)
            res, _ = evaluate_codebook(variant, vae, lat["test"], x_test)
        rows.append({"backend": backend, "K-medoids loss": variant.diagnostics["kmedoids_loss"],
                     "seconds": variant.fit_seconds["kmedoids"], "test MSE": res["mse_per_pixel"],
                     "test usage": res["usage"], "perplexity": res["perplexity"]})
    return pd.DataFrame(rows).set_index("backend")


def compare_rules(stage: GeodesicStage, vaes: dict[str, VAE], k: int, x_test: torch.Tensor,
                  times: "store.WallTimes") -> "pd.DataFrame":
    """The geodesic rule against the nearest-landmark rule on the same codebook (size ``k``) and the same
    neighbour searches: test metrics, and the share of vectors that the two rules code differently."""
    import pandas as pd

    rows = []
    for name, vae in vaes.items():
        cb = stage.books[name][k]
        with times("assignment rules"):
            g_train, n_train = (cb.codes_from_neighbours(*stage.neighbours[name, "train"], r)
                                for r in ("geodesic", "nearest_landmark"))
            g_test, n_test = (cb.codes_from_neighbours(*stage.neighbours[name, "test"], r)
                              for r in ("geodesic", "nearest_landmark"))
        for rule, codes in (("geodesic", g_test), ("nearest landmark", n_test)):
            res = evaluate_codes(cb, vae, codes.reshape(-1, *vae.code_shape), x_test)
            rows.append({"VAE": name, "rule": rule, "test MSE": res["mse_per_pixel"], "test usage": res["usage"],
                         "perplexity": res["perplexity"],
                         "vectors coded differently (train)": float((g_train != n_train).mean()),
                         "vectors coded differently (test)": float((g_test != n_test).mean())})
    return pd.DataFrame(rows).set_index(["VAE", "rule"])


def compare_repairs(components: "pd.DataFrame", vae: VAE, lat: dict[str, Latents], x_test: torch.Tensor, k: int,
                    cfg: Config, times: "store.WallTimes") -> tuple["pd.DataFrame", int | None]:
    """At the smallest neighbour count whose (distinct-landmark) graph is disconnected, the codebook of
    size ``k`` with each repair (spanning tree, all pairs, none), evaluated on the test images. Returns
    the table (empty when every graph was connected) and that neighbour count."""
    import pandas as pd

    split = components[(components["landmarks"] == "distinct") & (components["components"] > 1)]
    if not len(split):
        return pd.DataFrame(), None
    q, knn = cfg.quantize, int(split["k"].min())
    rows = []
    for repair in ("mst", "all_pairs", "none"):
        with times("repair comparison"):
            cb = GeodesicCodebook(k, seed=cfg.seed, n_landmarks=q.n_landmarks, knn=knn, metric=q.graph_metric,
                                  repair=repair, backend=q.backend, assign_neighbours=q.assign_neighbours,
                                  n_jobs=q.n_jobs).fit(lat["train"].vectors_mu, lat["train"].vectors_sigma)
            res, _ = evaluate_codebook(cb, vae, lat["test"], x_test)
        rows.append({"repair": repair, "k": knn, "components": cb.diagnostics["components_before_repair"],
                     "edges added": cb.diagnostics["edges_added"], "test usage": res["usage"],
                     "dead codes": res["dead"], "perplexity": res["perplexity"], "test MSE": res["mse_per_pixel"]})
    return pd.DataFrame(rows).set_index("repair"), knn


def landmark_embedding(base: GeodesicCodebook, work: GeodesicWork, n: int, clusters: int, seed: int
                       ) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """A 2-D t-SNE of ``n`` landmarks and two clusterings of them: geodesic K-medoids on their graph
    distances, and Euclidean K-means on their mu."""
    from sklearn.manifold import TSNE

    from .quantize.kmeans import kmeans
    from .quantize.kmedoids import kmedoids

    rng = np.random.default_rng(seed)
    sub = np.sort(rng.choice(len(base.landmarks), size=min(n, len(base.landmarks)), replace=False))
    pts = base.landmarks[sub]
    labels = {"geodesic K-medoids": kmedoids(work.geodesics[np.ix_(sub, sub)], clusters, backend="fasterpam",
                                             seed=seed).labels,
              "Euclidean K-means": kmeans(pts, clusters, seed=seed).labels}
    emb = TSNE(n_components=2, init="pca", perplexity=30, random_state=seed).fit_transform(pts)
    return emb, labels


def geodesic_variant(base: GeodesicCodebook, mu: np.ndarray, sigma: np.ndarray, work: GeodesicWork,
                     **changes: object) -> GeodesicCodebook:
    """A geodesic codebook on the same landmarks and geodesics as ``base``, with other K-medoids settings."""
    params = {**base.params(), **changes}
    cb = GeodesicCodebook(**params)
    cb.landmarks, cb.diagnostics, cb.fit_seconds = base.landmarks, dict(base.diagnostics), {}
    return cb.fit_geodesics(mu, sigma, work.landmark_index, work.geodesics)


class StraightLineMedoids(Codebook):
    """The control of a geodesic codebook: K-medoids on the *same landmarks* with straight-line distances
    in the same feature space, and each vector coded by its nearest medoid along a straight line.

    For the geodesic codebook (features ``mu``) this is Euclidean K-medoids; for the decoder-aware
    geodesic one (features ``L^T mu`` with ``G = L L^T`` the mean pullback metric) it is K-medoids under
    the same metric with straight lines, ``d(a, b) = ||L^T (a - b)||``. Against the geodesic codebook it
    isolates what the graph's paths change; against K-means (free centroids) what the medoid constraint
    changes. The codewords are the medoids' ``mu``."""

    method = "straight_line_medoids"

    def __init__(self, base: GeodesicCodebook) -> None:
        super().__init__(base.k, base.seed)
        if base.landmarks is None:
            raise ValueError("parameter 'base' is not fitted; allowed: a fitted geodesic codebook")
        self.base = base
        self.medoid_features: np.ndarray | None = None
        self.loss: float | None = None

    def _to_mu(self, features: np.ndarray) -> np.ndarray:
        factor = getattr(self.base, "factor", None)
        if factor is not None:  # the decoder-aware geodesic codebook's features are L^T mu
            return (np.asarray(features, dtype=np.float64) @ np.linalg.inv(factor)).astype(np.float32)
        return np.asarray(features[:, :self.base.codewords.shape[1]], dtype=np.float32)

    def fit_on_landmarks(self) -> "StraightLineMedoids":
        """K-medoids (the base's backend and seed) on the landmarks' pairwise straight-line distances."""
        import time

        from .quantize.kmedoids import kmedoids

        t0 = time.perf_counter()
        x = np.asarray(self.base.landmarks, dtype=np.float64)
        sq = (x * x).sum(1)
        d = np.sqrt(np.maximum(sq[:, None] + sq[None, :] - 2.0 * (x @ x.T), 0.0))
        d = (d + d.T) / 2.0
        np.fill_diagonal(d, 0.0)
        res = kmedoids(d, self.k, self.base.backend, self.seed)
        self.medoid_features = x[res.medoids].astype(np.float32)
        self.codewords = self._to_mu(self.medoid_features)
        self.loss = float(res.loss)
        self.fit_seconds = {"kmedoids": time.perf_counter() - t0}
        return self

    def encode(self, mu: np.ndarray, sigma: np.ndarray | None = None) -> np.ndarray:
        from .quantize.search import nearest

        self._need_fit()
        return nearest(self.medoid_features, self.base.features(mu, sigma))[1][:, 0].astype(np.int64)


def medoid_control(base: GeodesicCodebook, vae: VAE, lat: dict[str, Latents], x_test: torch.Tensor,
                   reference: Codebook | None = None, label: str = "geodesic K-medoids") -> list[dict]:
    """Test rows of ``base`` (geodesic K-medoids, its own assignment), of :class:`StraightLineMedoids` on
    the same landmarks, and of ``reference`` (K-means with free centroids, when given), each with its
    test MSE and usage; ``MSE / geodesic`` is each row's test MSE over the geodesic codebook's."""
    control = StraightLineMedoids(base).fit_on_landmarks()
    books = {label: base, "straight-line K-medoids, same landmarks": control}
    if reference is not None:
        books["K-means (free centroids)"] = reference
    rows = [{"codebook": name, **evaluate_codebook(cb, vae, lat["test"], x_test)[0]} for name, cb in books.items()]
    for r in rows:
        r["MSE / geodesic"] = r["mse_per_pixel"] / rows[0]["mse_per_pixel"]
    return rows
