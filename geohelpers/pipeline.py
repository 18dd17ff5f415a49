"""Stages that notebooks share, composed from data, models, the training loop and the store.

A stage that produces a model is *up to date* when its checkpoint carries the identity that the current
configuration, code and inputs give (:mod:`geohelpers.artifacts`); then it is loaded instead of retrained. So each notebook also runs on
its own in JupyterLab: it retrains what an earlier notebook would have produced only when that is missing
or stale.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from . import artifacts, files, metrics, store
from .config import CODEBOOK_METHODS, Config
from .data import MNIST, Batches
from .models.prior import CodePrior
from .models.vae import VAE, build_vae
from .quantize import pullback as pullback_module
from .quantize.codebook import Codebook, GeodesicCodebook, build_codebook
from .train import History, fit, pick_device, seed_everything


def stopping_rule_kwargs(cfg: Config) -> dict[str, float | int]:
    """The stopping rule's arguments of :func:`~geohelpers.train.fit` (``training`` section)."""
    return {"patience": cfg.training.patience, "min_delta": cfg.training.min_delta}


@dataclass
class TrainedModel:
    model: torch.nn.Module
    history: History
    trained_now: bool  # False when an up-to-date checkpoint was loaded


def vae_tag(kind: str, cfg: Config) -> str:
    """Identity of a trained VAE (:func:`~geohelpers.artifacts.identity`): its config section and the data."""
    return artifacts.identity(f"vae/{kind}", cfg, (f"{kind}_vae", "data"))


def train_vae(kind: str, cfg: Config, data: MNIST) -> TrainedModel:
    """Train the ``"flat"`` or ``"grid"`` VAE of ``cfg`` (or load it when its checkpoint is up to date)."""
    vcfg = getattr(cfg, f"{kind}_vae")
    seed_everything(cfg.seed)
    model: VAE = build_vae(kind, vcfg)
    train = Batches(data.train_x, batch_size=vcfg.batch_size, shuffle=True, seed=cfg.seed)
    val = Batches(data.val_x, batch_size=cfg.data.eval_batch_size)
    ckpt = store.checkpoint_path(cfg.profile, f"vae_{kind}")
    tag = vae_tag(kind, cfg)
    history = fit(model, train, val, max_epochs=vcfg.max_epochs, lr=vcfg.lr, checkpoint=ckpt, tag=tag,
                  device=pick_device(cfg.device), desc=f"{kind} VAE epoch", **stopping_rule_kwargs(cfg))
    return TrainedModel(model, history, trained_now=history.epochs_this_call > 0)


@dataclass
class Latents:
    """Posterior latents of one split: ``mu``/``sigma`` in the VAE's layout and as (N * positions, d) vectors."""

    mu: torch.Tensor
    sigma: torch.Tensor
    vectors_mu: np.ndarray
    vectors_sigma: np.ndarray


def posterior_latents(vae: VAE, x: torch.Tensor, batch_size: int = 1000) -> Latents:
    mu, sigma = vae.encode_all(x, batch_size)
    return Latents(mu, sigma, vae.to_vectors(mu).numpy(), vae.to_vectors(sigma).numpy())


def encode_splits(vaes: dict[str, VAE], data: MNIST, cfg: Config) -> dict[str, dict[str, Latents]]:
    """Posterior latents of the training, validation and test images under each VAE (by display name)."""
    return {name: {split: posterior_latents(vae, getattr(data, f"{split}_x"), cfg.data.eval_batch_size)
                   for split in ("train", "val", "test")} for name, vae in vaes.items()}


def codebook_tag(kind: str, method: str, k: int, cfg: Config) -> str:
    """Identity of a fitted codebook: the VAE it quantizes, its method, K, parameters and code."""
    params = {name: v for name, v in cfg.to_dict()["quantize"].items()  # the pullback_* parameters shape
              if name != "ks" and (method.startswith("pullback") or not name.startswith("pullback_"))}  # only those
    return artifacts.identity(f"codebook/{kind}_{method}_K{k}", cfg, (), {"vae": vae_tag(kind, cfg)}, **params)


def codebook_path(kind: str, method: str, k: int, cfg: Config) -> Path:
    """Where the codebook of this identity is stored."""
    digest = codebook_tag(kind, method, k, cfg).rsplit("@", 1)[1]
    return store.artifacts_dir(cfg.profile) / "codebooks" / f"{kind}_{method}_K{k}_{digest}.npz"


def make_codebook(method: str, k: int, cfg: Config, metric: np.ndarray | None = None) -> Codebook:
    """An unfitted codebook of any method with the profile's parameters; the decoder-aware ones
    (``pullback_*``, notebook 07) also take the VAE's mean pullback ``metric``."""
    from .config import PULLBACK_METHODS

    if method in PULLBACK_METHODS:
        return pullback_module.build_pullback_codebook(method, k, metric, cfg.quantize, seed=cfg.seed)
    return build_codebook(method, k, cfg.quantize, seed=cfg.seed)


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
                             "(pipeline.pullback_metrics(...).vectors)")
        start = fit_codebook(kind, "pullback_position", k, cfg, train, metric)[0].codewords
        cb = make_codebook(method, k, cfg, metric).fit(vectors.mu, vectors.sigma, metrics=vectors.metrics, init=start)
        cb.save(path, made_by)
        return cb, True
    cb = make_codebook(method, k, cfg, metric).fit(train.vectors_mu, train.vectors_sigma)
    cb.save(path, made_by)
    return cb, True


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


@dataclass
class GeodesicWork:
    """Landmark indices (into the training vectors) and their geodesic distance matrix."""

    landmark_index: np.ndarray
    geodesics: np.ndarray


def evaluate_codebook(cb: Codebook, vae: VAE, test: Latents, x_test: torch.Tensor) -> tuple[dict, np.ndarray]:
    """Test-set metrics of quantize -> decode, and the test code maps.

    MSE per pixel of the decoded codes against the test images, code usage statistics on the test set
    and the rate in bits per image.
    """
    codes = cb.encode_latents(vae, test.mu, test.sigma)
    return evaluate_codes(cb, vae, codes, x_test), codes


def evaluate_codes(cb: Codebook, vae: VAE, codes: np.ndarray, x_test: torch.Tensor) -> dict:
    """Test MSE, usage statistics and rate of given code maps of the test images."""
    return metrics.code_map_metrics(x_test, cb.decode_images(vae, codes), codes, cb.k, vae.n_positions)


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


def code_identity(name: str, cfg: Config) -> str:
    """Identity of the stored code maps ``name``: ``<vae>_<method>_K<k>`` knows its codebook,
    ``vqvae_<variant>_K<k>`` its VQ-VAE."""
    cs = artifacts.CodeSet.parse(name)
    inputs = {"vqvae": vqvae_tag(cs.method, cs.k, cfg)} if cs.source == "vqvae" else \
        {"codebook": codebook_tag(cs.source, cs.method, cs.k, cfg)}
    return artifacts.identity(f"codes/{name}", cfg, ("data",), inputs)


def save_codes(cfg: Config, name: str, **splits: np.ndarray) -> Path:
    """Code maps of each split (``train=..., val=..., test=...``) for the priors (notebook 04), in the
    smallest unsigned type that holds them, with their identity (:func:`code_identity`)."""
    path = store.artifacts_dir(cfg.profile) / "codes" / f"{name}.npz"
    identity = code_identity(name, cfg)
    buffer = io.BytesIO()
    np.savez_compressed(buffer, __identity__=np.array(identity), **{k: v.astype(code_dtype(v)) for k, v in splits.items()})
    return files.write_artifact(path, buffer.getvalue(), identity)


def code_dtype(codes: np.ndarray) -> np.dtype:
    """The smallest unsigned integer type that holds every code (int16 overflowed past K = 32,768)."""
    codes = np.asarray(codes)
    if codes.size and codes.min() < 0:
        raise ValueError(f"codes must be >= 0, got {int(codes.min())}")
    return np.min_scalar_type(int(codes.max(initial=0)))


def quantization_errors(cb: Codebook, split: Latents) -> dict[str, float]:
    """Mean squared quantization error per vector, in ``mu`` (what the decoder sees) and in ``sigma``.

    For a codebook without Gaussian codewords (K-means on ``mu``), the ``sigma`` error is left out.
    """
    codes = cb.encode(split.vectors_mu, split.vectors_sigma)
    out = {"mu_sq_error": float(((split.vectors_mu - cb.codewords[codes]) ** 2).sum(1).mean())}
    if cb.codeword_sigma is not None:
        out["sigma_sq_error"] = float(((split.vectors_sigma - cb.codeword_sigma[codes]) ** 2).sum(1).mean())
    return out


def kmeans_codebooks(vaes: dict[str, VAE], lat: dict[str, dict[str, Latents]], x_test: torch.Tensor,
                     cfg: Config, methods: tuple[str, ...] = ("kmeans", "w2"), save: bool = True,
                     ) -> tuple[list[dict], dict[tuple[str, str, int], Codebook]]:
    """Fit (or load) every K-means-type codebook of the profile, evaluate it on the test set, store codes.

    ``vaes`` maps a display name (``FlatVAE``, ``GridVAE``) to its model, ``lat`` to its train/val/test
    latents. Returns one results row per (VAE, method, K) and the codebooks.
    """
    from tqdm import tqdm

    rows, books = [], {}
    combos = [(name, method, k) for name in vaes for method in methods for k in cfg.quantize.ks]
    for name, method, k in tqdm(combos, desc="codebooks"):
        vae, kind = vaes[name], KIND_OF[name]
        cb, fitted_now = fit_codebook(kind, method, k, cfg, lat[name]["train"])
        res, test_codes = evaluate_codebook(cb, vae, lat[name]["test"], x_test)
        if save:
            codes = {s: cb.encode_latents(vae, lat[name][s].mu, lat[name][s].sigma) for s in ("train", "val")}
            save_codes(cfg, artifacts.CodeSet(kind, method, k).name, test=test_codes, **codes)
        books[name, method, k] = cb
        rows.append({"VAE": name, "method": method, "K": k, **res, "fit_seconds": cb.fit_seconds["kmeans"],
                     "lloyd_iterations": cb.fit_seconds["iterations"], "fitted_in_this_run": fitted_now})
    return rows, books


KIND_OF = {"FlatVAE": "flat", "GridVAE": "grid"}


def continuous_mse(vae: VAE, split: Latents, x: torch.Tensor) -> float:
    """Test MSE per pixel of the continuous VAE, decoding ``mu``: the floor of every codebook."""
    return metrics.mse_per_pixel(x, vae.decode_all(split.mu))


def vqvae_model(variant: str, k: int, cfg: Config) -> "VQVAE":
    """The VQ-VAE of a variant name (see :class:`~geohelpers.config.VQVAEConfig`), with the GridVAE's sizes."""
    from .models.vqvae import VQVAE, fsq_levels

    g, v = cfg.grid_vae, cfg.vqvae
    base = "vanilla" if variant.startswith("vanilla") else ("fsq" if variant == "fsq" else "ema")
    restart = variant in ("vanilla_restart", "ema_restart", "kmeans_init", "hybrid")
    return VQVAE(g.channels, g.latent_dim, k, base, v.beta, v.decay, restart, v.restart_threshold,
                 levels=fsq_levels(k) if base == "fsq" else None)


def _hybrid_start(model: "VQVAE", grid_vae: VAE, medoids: np.ndarray) -> None:
    """Encoder (its mean half), decoder and codebook from the trained GridVAE and its geodesic medoids."""
    d = model.quantizer.dim
    enc = grid_vae.encoder.state_dict()
    enc["1.weight"], enc["1.bias"] = enc["1.weight"][:d], enc["1.bias"][:d]
    model.encoder.load_state_dict(enc)
    model.decoder.load_state_dict(grid_vae.decoder.state_dict())
    model.quantizer.init_codebook(torch.from_numpy(medoids).float())


@torch.no_grad()
def _kmeans_start(model: "VQVAE", train: Batches, n_batches: int, seed: int) -> None:
    from .quantize.kmeans import kmeans

    outs = [model.quantizer.flatten(model.encoder(xb)) for (xb,), _ in zip(train.epoch(0), range(n_batches))]
    vectors = torch.cat(outs).numpy()
    model.quantizer.init_codebook(torch.from_numpy(kmeans(vectors, model.k, seed=seed).centres))


def vqvae_tag(variant: str, k: int, cfg: Config) -> str:
    """Identity of a trained VQ-VAE; the hybrid's includes the GridVAE and the geodesic codebook it starts from."""
    inputs = {"grid_vae": vae_tag("grid", cfg), "medoids": codebook_tag("grid", "geodesic", k, cfg)} \
        if variant == "hybrid" else {}
    return artifacts.identity(f"vqvae/{variant}_K{k}", cfg, ("vqvae", "grid_vae", "data"), inputs)


@dataclass
class TrainedVQVAE:
    model: torch.nn.Module
    history: History | None
    trained_now: bool
    diverged: str | None  # the error message when training stopped on a non-finite loss


def train_vqvae(variant: str, k: int, cfg: Config, data: MNIST, grid_vae: VAE | None = None,
                medoids: np.ndarray | None = None) -> TrainedVQVAE:
    """Train one VQ-VAE variant at codebook size ``k`` (or load it when up to date).

    After every epoch the codes of the validation images give the code usage and perplexity, so that
    collapse is a curve. ``hybrid`` needs the trained GridVAE and its geodesic medoids (K, D).
    """
    from .train import NonFiniteLossError

    v = cfg.vqvae
    seed_everything(cfg.seed)
    model = vqvae_model(variant, k, cfg)
    train = Batches(data.train_x, batch_size=v.batch_size, shuffle=True, seed=cfg.seed)
    val = Batches(data.val_x, batch_size=cfg.data.eval_batch_size)
    if variant == "kmeans_init":
        _kmeans_start(model, train, v.kmeans_init_batches, cfg.seed)
    if variant == "hybrid":
        if grid_vae is None or medoids is None:
            raise ValueError("the hybrid variant needs 'grid_vae' and 'medoids'")
        _hybrid_start(model, grid_vae, medoids)

    def usage(m: torch.nn.Module, epoch: int, record: dict) -> dict:
        stats = metrics.code_statistics(m.encode_codes(data.val_x).numpy(), k)
        return {"val_usage": stats["usage"], "val_perplexity": stats["perplexity"]}

    ckpt = store.checkpoint_path(cfg.profile, f"vqvae_{variant}_K{k}")
    try:
        history = fit(model, train, val, max_epochs=v.max_epochs, lr=v.lr, checkpoint=ckpt,
                      tag=vqvae_tag(variant, k, cfg), device=pick_device(cfg.device),
                      desc=f"VQ-VAE {variant} K={k} epoch", on_epoch_end=usage, **stopping_rule_kwargs(cfg))
    except NonFiniteLossError as err:
        return TrainedVQVAE(model, None, True, str(err))
    return TrainedVQVAE(model, history, history.epochs_this_call > 0, None)


def train_vqvae_variants(runs: list[tuple[str, int]], cfg: Config, data: MNIST, grid_vae: VAE,
                         geodesic: dict[int, Codebook], times: "store.WallTimes",
                         ) -> tuple[dict[tuple[str, int], TrainedVQVAE], list[dict]]:
    """Train (or load) every (variant, K) of ``runs`` and evaluate it on the test images.

    ``geodesic`` maps K to the GridVAE's geodesic codebook (the hybrid's start). Returns the trained
    models and one results row per run (``method`` is ``VQ-VAE <variant>``; ``diverged`` holds the
    error message of a run that stopped on a non-finite loss).
    """
    trained, rows = {}, []
    for name, k in runs:
        with times(f"train {name}"):
            t = train_vqvae(name, k, cfg, data, grid_vae, geodesic[k].codewords)
        trained[name, k] = t
        with times("evaluate"):
            res, _ = evaluate_vqvae(t.model, data.test_x)
            val, _ = evaluate_vqvae(t.model, data.val_x)
        rows.append({"method": f"VQ-VAE {name}", "K": k, **res, "val_mse_per_pixel": val["mse_per_pixel"],
                     "diverged": t.diverged or "", "train_seconds": t.history.wall_time_s if t.history else float("nan"),
                     "epochs": len(t.history.epochs) if t.history else 0,
                     "stop_reason": t.history.stop_reason if t.history else "diverged"})
    return trained, rows


def a_posteriori_rows(grid_vae: VAE, geodesic: dict[int, Codebook], train: Latents, test: Latents,
                      x_test: torch.Tensor, cfg: Config, ks: tuple[int, ...]) -> list[dict]:
    """Test rows of the GridVAE's K-means and geodesic codebooks at each K, beside the VQ-VAE's."""
    rows = []
    for k in ks:
        for method in ("kmeans", "geodesic"):
            cb = geodesic[k] if method == "geodesic" else fit_codebook("grid", method, k, cfg, train)[0]
            res, _ = evaluate_codebook(cb, grid_vae, test, x_test)
            rows.append({"method": f"a posteriori {method}", "K": k, **res, "diverged": "",
                         "train_seconds": float("nan"), "epochs": None, "stop_reason": ""})
    return rows


def evaluate_vqvae(model: torch.nn.Module, x_test: torch.Tensor) -> tuple[dict, np.ndarray]:
    """Test MSE of the decoded codes, code usage statistics and rate; and the test code maps."""
    model.eval()
    codes = model.encode_codes(x_test)
    return (metrics.code_map_metrics(x_test, vqvae_decode(model, codes), codes.numpy(), model.k, model.n_positions),
            codes.numpy())


# --- priors over code maps (notebooks 04-06) ------------------------------------------------------------

def load_codes(cfg: Config, name: str) -> dict[str, np.ndarray]:
    """The stored code maps ``name`` (e.g. ``grid_geodesic_K512``): ``train``/``val``/``test`` int64 arrays.

    Raises :class:`~geohelpers.artifacts.StaleArtifactError` when they were made by another codebook or
    VQ-VAE than the one this configuration gives (:func:`code_identity`).
    """
    path = store.artifacts_dir(cfg.profile) / "codes" / f"{name}.npz"
    rebuild = (f"run the notebook that stores the codes {name!r} (02: kmeans/w2, 03: geodesic, 05: vqvae, "
               f"06: decoder-aware) with profile {cfg.profile!r}")
    stored = files.read_artifact(path, "code maps")
    if stored is None:
        raise FileNotFoundError(f"{path} is missing (or was damaged and set aside): {rebuild}")
    with np.load(io.BytesIO(stored)) as z:
        found = str(z["__identity__"]) if "__identity__" in z.files else None
        artifacts.check(path, found, code_identity(name, cfg), rebuild)
        return {split: z[split].astype(np.int64) for split in z.files if split != "__identity__"}


def prior_model(kind: str, k: int, shape: tuple[int, ...], cfg: Config) -> CodePrior:
    """The prior ``kind`` (``pixelcnn`` or ``transformer``) with the sizes of ``cfg.prior``."""
    from .config import PRIOR_KINDS
    from .models.pixelcnn import GatedPixelCNN
    from .models.transformer import CodeTransformer

    p = cfg.prior
    if kind == "pixelcnn":
        return GatedPixelCNN(k, shape, p.pixelcnn_channels, p.pixelcnn_layers)
    if kind == "transformer":
        return CodeTransformer(k, shape, p.transformer_dim, p.transformer_layers, p.transformer_heads)
    raise ValueError(f"parameter 'prior' is {kind!r}; allowed: one of {', '.join(PRIOR_KINDS)}")


@dataclass
class TrainedPrior:
    model: CodePrior
    history: History
    trained_now: bool
    test: dict[str, float]       # held-out NLL per token, perplexity, bits per image
    unigram_nll: float           # held-out NLL of the context-free prior (codes' frequencies)


def train_prior(kind: str, codes_name: str, k: int, cfg: Config, evaluate: bool = True,
                codes: dict[str, np.ndarray] | None = None) -> TrainedPrior:
    """Train the prior ``kind`` on the training maps of the stored codes ``codes_name`` (or load it).

    Validated on the validation maps after every epoch; evaluated on the test maps. The checkpoint's
    identity covers the prior's config, the seed, the prior's source and the code maps themselves, so new
    codes retrain it. ``evaluate=False`` skips the test evaluation (``test`` is then empty and
    ``unigram_nll`` NaN), for callers that only sample. ``codes`` are the maps of :func:`load_codes`,
    when the caller has them already.
    """
    from .models.prior import unigram_nll

    codes = codes if codes is not None else load_codes(cfg, codes_name)
    top = int(max(c.max() for c in codes.values()))
    if top >= k:
        raise ValueError(f"parameter 'k' is {k} but the codes {codes_name!r} hold code {top}; "
                         f"allowed: K > every code (the codebook's K)")
    shape = tuple(codes["train"].shape[1:])
    seed_everything(cfg.seed)
    model = prior_model(kind, k, shape, cfg)
    p = cfg.prior
    train = Batches(torch.from_numpy(codes["train"]), batch_size=p.batch_size, shuffle=True, seed=cfg.seed)
    val = Batches(torch.from_numpy(codes["val"]), batch_size=cfg.data.eval_batch_size)
    tag = artifacts.identity(f"prior/{kind}_{codes_name}", cfg, ("prior",), {"codes": code_identity(codes_name, cfg)})
    ckpt = store.checkpoint_path(cfg.profile, f"prior_{kind}_{codes_name}")
    history = fit(model, train, val, max_epochs=p.max_epochs, lr=p.lr, checkpoint=ckpt, tag=tag,
                  device=pick_device(cfg.device), desc=f"{kind} on {codes_name} epoch", precision=p.precision,
                  lr_schedule=p.lr_schedule, schedule_epochs=p.schedule_epochs or None,
                  **stopping_rule_kwargs(cfg))
    if not evaluate:
        return TrainedPrior(model, history, history.epochs_this_call > 0, {}, float("nan"))
    test = model.evaluate(torch.from_numpy(codes["test"]), cfg.data.eval_batch_size)
    return TrainedPrior(model, history, history.epochs_this_call > 0, test,
                        unigram_nll(codes["train"], codes["test"], k))


def load_codebook(kind: str, method: str, k: int, cfg: Config) -> Codebook:
    """The stored, up-to-date codebook of notebook 02 (kmeans, w2) or 03 (geodesic)."""
    path = codebook_path(kind, method, k, cfg)
    cb = Codebook.load_stored(path)
    if cb is None:
        raise FileNotFoundError(f"no up-to-date {method} codebook K={k} for the {kind} VAE ({path} is missing, or "
                                f"was damaged and set aside): run notebook {'03' if method == 'geodesic' else '02'} "
                                f"with profile {cfg.profile!r}")
    return cb


def check_prior_fits(prior: CodePrior, k: int, shape: tuple[int, ...]) -> None:
    """A prior's samples can only be decoded by a quantizer with the same K and map shape."""
    if prior.k != k:
        raise ValueError(f"parameter 'k' mismatch: the prior models K = {prior.k} codes, the codebook has "
                         f"K = {k}; allowed: the same K")
    if tuple(prior.shape) != tuple(shape):
        raise ValueError(f"parameter 'shape' mismatch: the prior models {prior.shape} maps, the decoder "
                         f"expects {tuple(shape)}")


def decode_codebook_samples(prior: CodePrior, codes: np.ndarray | torch.Tensor, cb: Codebook, vae: VAE
                            ) -> torch.Tensor:
    """Images (N, 1, 28, 28) of code maps drawn from ``prior``, through codebook ``cb`` and the VAE's decoder."""
    check_prior_fits(prior, cb.k, vae.code_shape)
    return cb.decode_images(vae, np.asarray(codes))


def prior_sample_panels(vae: VAE, kind: str, priors: dict[tuple[str, str], TrainedPrior], cfg: Config,
                        k: int) -> dict[str, torch.Tensor]:
    """Decoded samples of every (codebook method, prior) of one VAE at codebook size ``k``, and a last row
    of uniformly random codes through the K-means codebook. Every row is drawn with ``cfg.seed``."""
    p = cfg.prior
    rows: dict[str, torch.Tensor] = {}
    for method in p.methods:
        cb = load_codebook(kind, method, k, cfg)
        for prior_kind in p.kinds:
            prior = priors[artifacts.CodeSet(kind, method, k).name, prior_kind].model
            codes = prior.sample(p.n_show, temperature=p.temperature, seed=cfg.seed, progress=False)
            rows[f"{method} · {prior_kind}"] = decode_codebook_samples(prior, codes, cb, vae)
    uniform = np.random.default_rng(cfg.seed).integers(0, k, size=(p.n_show, *vae.code_shape))
    rows["uniform codes (K-means)"] = load_codebook(kind, "kmeans", k, cfg).decode_images(vae, uniform)
    return rows


def train_priors(code_names: list[str], cfg: Config, kinds: tuple[str, ...] | None = None,
                 ) -> tuple[list[dict], dict[tuple[str, str], TrainedPrior]]:
    """Every prior of ``kinds`` (default ``cfg.prior.kinds``) on each stored code set (trained, or loaded
    when up to date).

    Each code set's K is read from its name, which ends in ``_K<k>``. Returns one
    results row per (code set, prior), with the held-out NLL beside the context-free baselines (the
    test codes' empirical entropy and the unigram prior's held-out NLL), and the trained priors.
    """
    from tqdm import tqdm

    rows, trained = [], {}
    jobs = [(name, kind) for name in code_names for kind in (kinds or cfg.prior.kinds)]
    for name, kind in tqdm(jobs, desc="priors"):
        k = artifacts.CodeSet.parse(name).k
        codes = load_codes(cfg, name)
        t = train_prior(kind, name, k, cfg, codes=codes)
        trained[name, kind] = t
        test_codes = codes["test"]
        entropy = metrics.code_statistics(test_codes, k)["entropy_bits"] * np.log(2)
        rows.append({"codes": name, "K": k, "prior": kind, **t.test, "unigram_nll": t.unigram_nll,
                     "test_entropy_nats": float(entropy), "context_gain_nats": t.unigram_nll - t.test["nll_nats_per_token"],
                     "positions": int(np.prod(test_codes.shape[1:])), "parameters": t.model.describe()["parameters"],
                     "epochs": len(t.history.epochs), "stop_reason": t.history.stop_reason,
                     "best_epoch": t.history.best_epoch, "train_seconds": t.history.wall_time_s,
                     "val_nll": t.history.best_val_loss})
    return rows, trained


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


# --- sample fidelity (notebook 06) ---------------------------------------------------------------------------

def train_classifier(cfg: Config, data: MNIST) -> TrainedModel:
    """The LeNet-style MNIST classifier of the sample-fidelity metrics (trained, or loaded when up to date)."""
    from .models.classifier import LeNet

    c = cfg.comparison
    seed_everything(cfg.seed)
    model = LeNet()
    train = Batches(data.train_x, data.train_y, batch_size=c.classifier_batch_size, shuffle=True, seed=cfg.seed)
    val = Batches(data.val_x, data.val_y, batch_size=cfg.data.eval_batch_size)
    tag = artifacts.identity("classifier", cfg, ("data",), max_epochs=c.classifier_max_epochs,
                             batch_size=c.classifier_batch_size, lr=c.classifier_lr)
    history = fit(model, train, val, max_epochs=c.classifier_max_epochs, lr=c.classifier_lr,
                  checkpoint=store.checkpoint_path(cfg.profile, "classifier"), tag=tag,
                  device=pick_device(cfg.device), desc="MNIST classifier epoch", **stopping_rule_kwargs(cfg))
    return TrainedModel(model, history, history.epochs_this_call > 0)


def accuracy(classifier: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    """Fraction of images whose predicted class is the label."""
    return metrics.accuracy(classifier.embed(x)[1], y)


@torch.no_grad()
def vae_samples(vae: VAE, n: int, seed: int) -> torch.Tensor:
    """``n`` images decoded from z ~ N(0, I), the continuous VAE's own prior."""
    gen = torch.Generator().manual_seed(seed)
    z = torch.randn(n, *vae.latent_shape, generator=gen)
    return vae.decode_all(z)


@torch.no_grad()
def vqvae_decode(model: torch.nn.Module, codes: np.ndarray | torch.Tensor, batch_size: int = 1000) -> torch.Tensor:
    """Images of (N, H, W) code maps through a VQ-VAE's codebook and decoder."""
    codes = torch.as_tensor(np.asarray(codes), dtype=torch.long)
    return torch.cat([model.decode_codes(codes[s:s + batch_size]).cpu() for s in range(0, len(codes), batch_size)])


def score_samples(classifier: torch.nn.Module, images: torch.Tensor, reference: tuple[np.ndarray, np.ndarray]
                  ) -> dict:
    """Sample-fidelity metrics of generated images against the test images' feature statistics."""
    feats, probs = classifier.embed(images)
    return metrics.sample_fidelity(feats, probs, reference)


def real_data_floor(classifier: torch.nn.Module, data: MNIST, n: int) -> tuple[dict, tuple[np.ndarray, np.ndarray], torch.Tensor]:
    """The classifier's view of real data: test accuracy, and ``n`` training images scored as if they were
    samples (the floor of FD and IS). Returns the floor record, the test images' feature statistics (the
    reference of every FD) and the test images' class probabilities."""
    test_feats, test_probs = classifier.embed(data.test_x)
    reference = metrics.feature_stats(test_feats.numpy())
    floor = score_samples(classifier, data.train_x[:n], reference)
    floor["inception_score_test"] = metrics.inception_score(test_probs)
    floor["test_accuracy"] = metrics.accuracy(test_probs, data.test_y)
    return floor, reference, test_probs


def headline_decoders(books: dict[str, Codebook], grid_vae: VAE, vqvaes: dict[str, torch.nn.Module]
                      ) -> dict[str, object]:
    """Code maps -> images for every quantizer of the headline: the GridVAE's a posteriori codebooks (by
    method) and each VQ-VAE (``VQ-VAE <variant>``)."""
    decoders: dict[str, object] = {}
    for method, cb in books.items():
        decoders[method] = (lambda cb: lambda codes: cb.decode_images(grid_vae, codes))(cb)
    for name, model in vqvaes.items():
        decoders[f"VQ-VAE {name}"] = (lambda m: lambda codes: vqvae_decode(m, codes))(model)
    return decoders


def draw_generators(decoders: dict[str, object], cfg: Config, k: int, n: int, times: "store.WallTimes",
                    ) -> dict[tuple[str, str], torch.Tensor]:
    """``n`` images from every (quantizer, prior) pair and from uniformly random codes through each
    quantizer, all seeded with ``cfg.seed``: sample ``i`` of every generator comes from the same seed.

    The priors were trained in notebook 04 (a posteriori codes) or 05 (VQ-VAE codes) and are loaded.
    """
    from .selection import code_set_name

    uniform = np.random.default_rng(cfg.seed).integers(0, k, size=(n, 7, 7))
    images: dict[tuple[str, str], torch.Tensor] = {}
    for quantizer, decode in decoders.items():
        for kind in cfg.prior.kinds:
            with times(f"sample {kind}"):
                prior = train_prior(kind, code_set_name(quantizer, k), k, cfg, evaluate=False).model
                codes = prior.sample(n, temperature=cfg.prior.temperature, seed=cfg.seed, batch_size=5000)
                images[quantizer, kind] = decode(codes.numpy())
        with times("uniform codes"):
            images[quantizer, "uniform codes"] = decode(uniform)
    return images


# --- decoder-aware codebooks (notebook 07) ---------------------------------------------------------------------

@dataclass
class VectorMetrics:
    """Training vectors and each one's own pullback metric (ridge included), for ``pullback_vector``."""

    mu: np.ndarray             # (N * P, d)
    sigma: np.ndarray          # (N * P, d)
    metrics: np.ndarray        # (N * P, d, d)


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


def pullback_codebooks(vaes: dict[str, VAE], lat: dict[str, dict[str, Latents]], metrics: dict[str, PullbackMetrics],
                       x_test: torch.Tensor, cfg: Config, times: "store.WallTimes",
                       ) -> tuple[list[dict], dict[tuple[str, str, int], Codebook]]:
    """Every decoder-aware codebook of the profile (each method, every K, each VAE), fitted or loaded, and
    evaluated on the test images. The geodesic ones share one graph per VAE, as in notebook 03."""
    from tqdm import tqdm

    from .config import PULLBACK_METHODS

    rows, books = [], {}
    for name, vae in vaes.items():
        kind, train, test = KIND_OF[name], lat[name]["train"], lat[name]["test"]
        for method in PULLBACK_METHODS:
            if method == "pullback_geodesic":
                with times(f"fit {method}"):
                    fitted, _, _ = fit_geodesic_codebooks(kind, cfg, train, method=method, metric=metrics[name].metrics)
                with times("evaluate"):
                    test_codes, _, _ = geodesic_codes_all_k(fitted, vae, test)
                for k, cb in fitted.items():
                    books[name, method, k] = cb
                    rows.append({"VAE": name, "method": method, "K": k,
                                 **evaluate_codes(cb, vae, test_codes[k], x_test),
                                 "fit_seconds": sum(cb.fit_seconds.values()), "lloyd_iterations": None})
                continue
            for k in tqdm(cfg.quantize.ks, desc=f"{name} {method}"):
                with times(f"fit {method}"):
                    cb, _ = fit_codebook(kind, method, k, cfg, train, metrics[name].metrics, metrics[name].vectors)
                with times("evaluate"):
                    res, _ = evaluate_codebook(cb, vae, test, x_test)
                books[name, method, k] = cb
                rows.append({"VAE": name, "method": method, "K": k, **res, "fit_seconds": cb.fit_seconds["kmeans"],
                             "lloyd_iterations": cb.fit_seconds["iterations"]})
    return rows, books


def encode_and_save_codes(cb: Codebook, vae: VAE, lat: dict[str, Latents], name: str, cfg: Config) -> None:
    """The train/validation/test code maps of one codebook, for a prior (``artifacts/<profile>/codes``)."""
    save_codes(cfg, name, **{s: cb.encode_latents(vae, lat[s].mu, lat[s].sigma) for s in ("train", "val", "test")})


def linearised_errors(books: dict[str, Codebook], vae: VAE, test: Latents, n_images: int, n_probes: int,
                      seed: int) -> list[dict]:
    """Where the first-order picture holds: for each codebook (by label), on the first ``n_images`` test
    images, the predicted quantization error ``sum_p (c_p - z_p)^T G_p(z) (c_p - z_p)`` per pixel (``G``
    by unbiased probes of each image's own metric) beside the measured ``||g(c) - g(z)||^2`` per pixel,
    the squared distance between the quantized and the continuous decoded images."""
    mu, sigma = test.mu[:n_images], test.sigma[:n_images]
    g = pullback_module.probe_metrics(vae, mu, n_probes, seed=seed).numpy().reshape(-1, vae.vector_dim, vae.vector_dim)
    z = vae.to_vectors(mu).numpy()
    continuous = vae.decode_all(mu)
    rows = []
    for label, cb in books.items():
        codes = cb.encode_latents(vae, mu, sigma)
        predicted = pullback_module.first_order_error(codes.reshape(-1), cb.codewords, z, g).sum() / (n_images * 784)
        measured = metrics.mse_per_pixel(continuous, cb.decode_images(vae, codes))
        rows.append({"codebook": label, "predicted": float(predicted), "measured": float(measured),
                     "predicted / measured": float(predicted / measured)})
    return rows


# --- the verdict's ablation: the decoder adapted to an a posteriori codebook (notebook 06) ---------------------

class DecoderOnCodes(torch.nn.Module):
    """A copy of a VAE whose decoder alone trains on fixed quantized latents: for an image ``x`` with
    quantized latent ``c(x)`` (its codewords in place of ``mu``), the loss is the VAE's own reconstruction
    term ``BCE_sum(x, sigmoid(f(c(x))))``, averaged over the batch. The encoder and the codebook are frozen."""

    def __init__(self, vae: VAE) -> None:
        import copy

        super().__init__()
        self.vae = copy.deepcopy(vae)
        for p in self.vae.parameters():
            p.requires_grad_(False)
        self.decoder_parameters = [p for name, p in self.vae.named_parameters() if not name.startswith("encoder")]
        for p in self.decoder_parameters:
            p.requires_grad_(True)

    def loss(self, batch: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, dict[str, float]]:
        import torch.nn.functional as F

        z, x = batch
        logits = self.vae.decode_logits(z)
        recon = F.binary_cross_entropy_with_logits(logits, x, reduction="none").flatten(1).sum(1).mean()
        with torch.no_grad():
            mse = float(((torch.sigmoid(logits) - x) ** 2).mean())
        return recon, {"mse": mse}


@dataclass
class AdaptedDecoder:
    vae: VAE                 # the VAE with the adapted decoder (its encoder unchanged)
    history: History
    trained_now: bool


def adapt_decoder(cb: Codebook, name: str, vae: VAE, lat: dict[str, Latents], data: MNIST, cfg: Config,
                  kind: str = "grid") -> AdaptedDecoder:
    """Fine-tune the decoder of ``vae`` on the quantized training latents of codebook ``cb`` (stored codes
    ``name``), validated on the quantized validation latents, under the stopping rule (at most
    ``comparison.adapt_max_epochs`` epochs at ``comparison.adapt_lr``); or load it when up to date.
    The encoder and the codebook stay as they are, so the codes, and their rate, do not change."""
    c = cfg.comparison
    seed_everything(cfg.seed)
    model = DecoderOnCodes(vae)
    quantized = {s: cb.decode_latents(vae, cb.encode_latents(vae, lat[s].mu, lat[s].sigma)) for s in ("train", "val")}
    train = Batches(quantized["train"], data.train_x, batch_size=cfg.grid_vae.batch_size, shuffle=True, seed=cfg.seed)
    val = Batches(quantized["val"], data.val_x, batch_size=cfg.data.eval_batch_size)
    cs = artifacts.CodeSet.parse(name)
    tag = artifacts.identity(f"adapted/{name}", cfg, ("data",), {"codebook": codebook_tag(kind, cs.method, cs.k, cfg)},
                             max_epochs=c.adapt_max_epochs, lr=c.adapt_lr)
    history = fit(model, train, val, max_epochs=c.adapt_max_epochs, lr=c.adapt_lr,
                  checkpoint=store.checkpoint_path(cfg.profile, f"adapted_{name}"), tag=tag,
                  device=pick_device(cfg.device), desc=f"decoder on {name} epoch",
                  optimizer=lambda _: torch.optim.Adam(model.decoder_parameters, lr=c.adapt_lr), **stopping_rule_kwargs(cfg))
    return AdaptedDecoder(model.vae.eval(), history, history.epochs_this_call > 0)


def adaptation_rows(books: dict[str, Codebook], vae: VAE, lat: dict[str, Latents], data: MNIST, cfg: Config,
                    k: int) -> tuple[list[dict], dict[str, AdaptedDecoder]]:
    """For each a posteriori codebook of the GridVAE at size ``k`` (by method): validation and test MSE
    with the VAE's own decoder and with the decoder adapted to it (:func:`adapt_decoder`), and the
    relative MSE drop on the test images."""
    rows, adapted = [], {}
    for method, cb in books.items():
        a = adapted[method] = adapt_decoder(cb, artifacts.CodeSet("grid", method, k).name, vae, lat, data, cfg)
        row = {"method": method, "K": k}
        for split in ("val", "test"):
            codes = cb.encode_latents(vae, lat[split].mu, lat[split].sigma)
            x = getattr(data, f"{split}_x")
            row[f"{split}_mse"] = metrics.mse_per_pixel(x, cb.decode_images(vae, codes))
            row[f"{split}_mse_adapted"] = metrics.mse_per_pixel(x, cb.decode_images(a.vae, codes))
        row["adaptation_gain"] = 1.0 - row["test_mse_adapted"] / row["test_mse"]
        row.update({"epochs": len(a.history.epochs), "stop_reason": a.history.stop_reason,
                    "train_seconds": a.history.wall_time_s})
        rows.append(row)
    return rows, adapted


def grid_codebooks_at(k: int, cfg: Config, train: Latents, pullback: PullbackMetrics) -> dict[str, Codebook]:
    """Every a posteriori codebook of the GridVAE at size ``k`` (notebooks 02, 03 and the decoder-aware
    ones of notebook 07), loaded when stored, fitted otherwise (``pullback``: :func:`pullback_metrics`)."""
    from .config import PULLBACK_METHODS

    books = {m: fit_codebook("grid", m, k, cfg, train)[0] for m in ("kmeans", "w2")}
    books["geodesic"] = fit_geodesic_codebooks("grid", cfg, train, ks=(k,))[0][k]
    for m in PULLBACK_METHODS:
        if m == "pullback_geodesic":
            books[m] = fit_geodesic_codebooks("grid", cfg, train, ks=(k,), method=m, metric=pullback.metrics)[0][k]
        else:
            books[m] = fit_codebook("grid", m, k, cfg, train, pullback.metrics, pullback.vectors)[0]
    return books


def a_posteriori_table(vae: VAE, lat: dict[str, Latents], data: MNIST, cfg: Config, pullback: PullbackMetrics,
                       ks: tuple[int, ...]) -> tuple[list[dict], dict[tuple[str, int], Codebook]]:
    """Every a posteriori codebook of the GridVAE (:func:`grid_codebooks_at`) at each K of ``ks``, with its
    validation MSE (for selection) and its test metrics (for the report)."""
    rows, books = [], {}
    for k in ks:
        for method, cb in grid_codebooks_at(k, cfg, lat["train"], pullback).items():
            books[method, k] = cb
            val = metrics.mse_per_pixel(data.val_x, cb.decode_images(vae, cb.encode_latents(vae, lat["val"].mu,
                                                                                            lat["val"].sigma)))
            res, _ = evaluate_codebook(cb, vae, lat["test"], data.test_x)
            rows.append({"quantizer": method, "VAE": "GridVAE", "method": method, "K": k, **res,
                         "val_mse_per_pixel": val, "fit_seconds": sum(v for n, v in cb.fit_seconds.items()
                                                                      if n != "iterations")})
    return rows, books
