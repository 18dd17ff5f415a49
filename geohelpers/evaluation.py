"""Evaluation: what the notebooks measure on the stages' artifacts, on held-out images: the test (and
validation) metrics of every codebook and VQ-VAE, the priors' held-out NLL beside context-free baselines,
samples drawn from every generator, and decoder adaptation. The stages (:mod:`geohelpers.stages`) load
or build what is evaluated.
"""

from __future__ import annotations

import numpy as np
import torch

from . import artifacts, metrics, store
from .config import Config
from .data import MNIST
from .models.prior import CodePrior, unigram_nll
from .models.vae import VAE
from .models.vqvae import VQVAE
from .quantize import pullback as pullback_module
from .quantize.codebook import Codebook
from .stages.adaptation import adapt_decoder
from .stages.build import Trained
from .stages.codebooks import (PullbackMetrics, fit_codebook, fit_geodesic_codebooks, geodesic_codes_all_k,
                               grid_codebooks_at, load_codebook)
from .stages.codes import load_codes, save_codes
from .stages.priors import check_prior_fits, train_prior
from .stages.vaes import KIND_OF, Latents
from .stages.vqvaes import train_vqvae, vqvae_decode


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


def evaluate_vqvae(model: torch.nn.Module, x_test: torch.Tensor) -> tuple[dict, np.ndarray]:
    """Test MSE of the decoded codes, code usage statistics and rate; and the test code maps."""
    model.eval()
    codes = model.encode_codes(x_test)
    return (metrics.code_map_metrics(x_test, vqvae_decode(model, codes), codes.numpy(), model.k, model.n_positions),
            codes.numpy())


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


def train_vqvae_variants(runs: list[tuple[str, int]], cfg: Config, data: MNIST, grid_vae: VAE,
                         geodesic: dict[int, Codebook], times: "store.WallTimes",
                         ) -> tuple[dict[tuple[str, int], Trained[VQVAE]], list[dict]]:
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


def train_priors(code_names: list[str], cfg: Config, kinds: tuple[str, ...] | None = None,
                 ) -> tuple[list[dict], dict[tuple[str, str], Trained[CodePrior]]]:
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
        t = trained[name, kind] = train_prior(kind, name, k, cfg, codes=codes)
        test_codes = codes["test"]
        test = t.model.evaluate(torch.from_numpy(test_codes), cfg.data.eval_batch_size)
        unigram = unigram_nll(codes["train"], test_codes, k)
        entropy = metrics.code_statistics(test_codes, k)["entropy_bits"] * np.log(2)
        rows.append({"codes": name, "K": k, "prior": kind, **test, "unigram_nll": unigram,
                     "test_entropy_nats": float(entropy), "context_gain_nats": unigram - test["nll_nats_per_token"],
                     "positions": int(np.prod(test_codes.shape[1:])), "parameters": t.model.describe()["parameters"],
                     "epochs": len(t.history.epochs), "stop_reason": t.history.stop_reason,
                     "best_epoch": t.history.best_epoch, "train_seconds": t.history.wall_time_s,
                     "val_nll": t.history.best_val_loss})
    return rows, trained


def decode_codebook_samples(prior: CodePrior, codes: np.ndarray | torch.Tensor, cb: Codebook, vae: VAE
                            ) -> torch.Tensor:
    """Images (N, 1, 28, 28) of code maps drawn from ``prior``, through codebook ``cb`` and the VAE's decoder."""
    check_prior_fits(prior, cb.k, vae.code_shape)
    return cb.decode_images(vae, np.asarray(codes))


def prior_sample_panels(vae: VAE, kind: str, priors: dict[tuple[str, str], Trained[CodePrior]], cfg: Config,
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
    uniform = np.random.default_rng(cfg.seed).integers(0, k, size=(n, 7, 7))
    images: dict[tuple[str, str], torch.Tensor] = {}
    for quantizer, decode in decoders.items():
        for kind in cfg.prior.kinds:
            with times(f"sample {kind}"):
                prior = train_prior(kind, artifacts.CodeSet.of_quantizer(quantizer, k).name, k, cfg).model
                codes = prior.sample(n, temperature=cfg.prior.temperature, seed=cfg.seed, batch_size=5000)
                images[quantizer, kind] = decode(codes.numpy())
        with times("uniform codes"):
            images[quantizer, "uniform codes"] = decode(uniform)
    return images


def pullback_codebooks(vaes: dict[str, VAE], lat: dict[str, dict[str, Latents]], metrics: dict[str, PullbackMetrics],
                       data: MNIST, cfg: Config, times: "store.WallTimes",
                       ) -> tuple[list[dict], dict[tuple[str, str, int], Codebook]]:
    """Every decoder-aware codebook of the profile (each method, every K, each VAE), fitted or loaded, with
    its validation MSE per pixel (``val_mse_per_pixel``, what notebook 07 selects on) and its test metrics
    (what it reports). The geodesic ones share one graph per VAE, as in notebook 03."""
    from tqdm import tqdm

    from .config import PULLBACK_METHODS

    rows, books = [], {}
    for name, vae in vaes.items():
        kind, train = KIND_OF[name], lat[name]["train"]
        for method in PULLBACK_METHODS:
            if method == "pullback_geodesic":
                with times(f"fit {method}"):
                    fitted, _, _ = fit_geodesic_codebooks(kind, cfg, train, method=method, metric=metrics[name].metrics)
                with times("evaluate"):
                    codes = {s: geodesic_codes_all_k(fitted, vae, lat[name][s])[0] for s in ("val", "test")}
                for k, cb in fitted.items():
                    books[name, method, k] = cb
                    val = evaluate_codes(cb, vae, codes["val"][k], data.val_x)["mse_per_pixel"]
                    rows.append({"VAE": name, "method": method, "K": k,
                                 **evaluate_codes(cb, vae, codes["test"][k], data.test_x), "val_mse_per_pixel": val,
                                 "fit_seconds": sum(cb.fit_seconds.values()), "lloyd_iterations": None})
                continue
            for k in tqdm(cfg.quantize.ks, desc=f"{name} {method}"):
                with times(f"fit {method}"):
                    cb, _ = fit_codebook(kind, method, k, cfg, train, metrics[name].metrics, metrics[name].vectors)
                with times("evaluate"):
                    res, _ = evaluate_codebook(cb, vae, lat[name]["test"], data.test_x)
                    val, _ = evaluate_codebook(cb, vae, lat[name]["val"], data.val_x)
                books[name, method, k] = cb
                rows.append({"VAE": name, "method": method, "K": k, **res, "val_mse_per_pixel": val["mse_per_pixel"],
                             "fit_seconds": cb.fit_seconds["kmeans"], "lloyd_iterations": cb.fit_seconds["iterations"]})
    return rows, books


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


def adaptation_rows(books: dict[str, Codebook], vae: VAE, lat: dict[str, Latents], data: MNIST, cfg: Config,
                    k: int) -> tuple[list[dict], dict[str, Trained[VAE]]]:
    """For each a posteriori codebook of the GridVAE at size ``k`` (by method): validation and test MSE
    with the VAE's own decoder and with the decoder adapted to it (:func:`adapt_decoder`), and the
    relative MSE drop on the test images."""
    rows, adapted = [], {}
    for method, cb in books.items():
        a = adapted[method] = adapt_decoder(cb, artifacts.CodeSet("grid", method, k), vae, lat, data, cfg)
        row = {"method": method, "K": k}
        for split in ("val", "test"):
            codes = cb.encode_latents(vae, lat[split].mu, lat[split].sigma)
            x = getattr(data, f"{split}_x")
            row[f"{split}_mse"] = metrics.mse_per_pixel(x, cb.decode_images(vae, codes))
            row[f"{split}_mse_adapted"] = metrics.mse_per_pixel(x, cb.decode_images(a.model, codes))
        row["adaptation_gain"] = 1.0 - row["test_mse_adapted"] / row["test_mse"]
        row.update({"epochs": len(a.history.epochs), "stop_reason": a.history.stop_reason,
                    "train_seconds": a.history.wall_time_s})
        rows.append(row)
    return rows, adapted


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
