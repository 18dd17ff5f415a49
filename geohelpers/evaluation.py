"""Evaluation: what the notebooks measure on the stages' artifacts, on held-out images: the test (and
validation) metrics of every codebook and VQ-VAE, the priors' held-out NLL beside context-free baselines,
samples drawn from every generator, and decoder adaptation. The stages (:mod:`geohelpers.stages`) load
or build what is evaluated.
"""

from __future__ import annotations

from typing import Any, Mapping

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
                     "lloyd_iterations": cb.lloyd_iterations, "fitted_in_this_run": fitted_now})
    return rows, books


def train_vqvae_variants(runs: list[tuple[str, int]], cfg: Config, data: MNIST, grid_vae: VAE,
                         times: "store.WallTimes") -> tuple[dict[tuple[str, int], Trained[VQVAE]], list[dict]]:
    """Train (or load) every (variant, K) of ``runs`` and evaluate it on the validation and test images.

    The hybrid starts from ``grid_vae`` and the a posteriori codebook chosen on validation. Returns the
    trained models and one results row per run (``method`` is ``VQ-VAE <variant>``; ``diverged`` holds the
    error message of a run that stopped on a non-finite loss; ``epochs`` its own epochs, and for the
    hybrid ``epochs_with_start`` adds the GridVAE's).
    """
    from .stages.vaes import train_vae

    trained, rows = {}, []
    for name, k in runs:
        with times(f"train {name}"):
            t = train_vqvae(name, k, cfg, data, grid_vae)
        trained[name, k] = t
        with times("evaluate"):
            res, _ = evaluate_vqvae(t.model, data.test_x)
            val, _ = evaluate_vqvae(t.model, data.val_x)
        rows.append({"method": f"VQ-VAE {name}", "K": k, **res, "val_mse_per_pixel": val["mse_per_pixel"],
                     "diverged": t.diverged or "", "train_seconds": t.history.wall_time_s if t.history else float("nan"),
                     "epochs": len(t.history.epochs) if t.history else 0,
                     "stop_reason": t.history.stop_reason if t.history else "diverged"})
        if name == "hybrid":
            from .stages.vqvaes import hybrid_start

            grid_epochs = len(train_vae("grid", cfg, data).history.epochs)
            rows[-1].update({"start": hybrid_start(cfg, k)[0], "epochs_with_start": rows[-1]["epochs"] + grid_epochs})
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
                     "val_nll": t.history.best_val_loss, "last_epoch_val_gain_nats": last_epoch_gain(t.history)})
    return rows, trained


def last_epoch_gain(history: Any) -> float | None:
    """How much the last epoch lowered the validation loss (the one before minus the last; ``None`` with
    fewer than two epochs): what a training the stopping rule ended was still gaining per epoch."""
    losses = history.column("val_loss")
    return float(losses[-2] - losses[-1]) if len(losses) >= 2 else None


def prior_histories(trained: Mapping[tuple[str, str], Any]) -> dict[str, dict]:
    """Every trained prior's history (each epoch's training and validation NLL, the stop), keyed
    ``"<code set> <kind>"``: what the results files keep of every prior the book trains."""
    return {f"{name} {kind}": t.history.to_dict() for (name, kind), t in trained.items()}


def train_prior_jobs(jobs: list, cfg: Config) -> tuple[list[dict], dict[tuple[str, str], Trained[CodePrior]]]:
    """:func:`train_priors` for each :class:`~geohelpers.plan.PriorJob` (its kind on its code set)."""
    rows, trained = [], {}
    for job in jobs:
        r, t = train_priors([job.codes.name], cfg, (job.kind,))
        rows += r
        trained.update(t)
    return rows, trained


def decode_codebook_samples(prior: CodePrior, codes: np.ndarray | torch.Tensor, cb: Codebook, vae: VAE
                            ) -> torch.Tensor:
    """Images (N, 1, 28, 28) of code maps drawn from ``prior``, through codebook ``cb`` and the VAE's decoder."""
    check_prior_fits(prior, cb.k, vae.code_shape)
    return cb.decode_images(vae, np.asarray(codes))


def prior_sample_panels(vae: VAE, kind: str, priors: dict[tuple[str, str], Trained[CodePrior]], cfg: Config,
                        k: int) -> dict[str, torch.Tensor]:
    """Decoded samples of every prior trained on one VAE's code sets at codebook size ``k`` (``priors`` keyed
    by (code set, prior kind)), and a last row of uniformly random codes through the K-means codebook.
    Every row is drawn with ``cfg.seed``."""
    p = cfg.prior
    rows: dict[str, torch.Tensor] = {}
    for (name, prior_kind), t in priors.items():
        cs = artifacts.CodeSet.parse(name)
        if cs.source != kind or cs.k != k:
            continue
        codes = t.model.sample(p.n_show, temperature=p.temperature, seed=cfg.seed, progress=False)
        rows[f"{cs.method} · {prior_kind}"] = decode_codebook_samples(t.model, codes, load_codebook(kind, cs.method, k, cfg),
                                                                     vae)
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
                    kinds_of: dict[str, list[str]]) -> dict[tuple[str, str], torch.Tensor]:
    """``n`` images from every (quantizer, prior) pair (``kinds_of``: the prior kinds trained on each
    quantizer's codes) and from uniformly random codes through each quantizer, all seeded with ``cfg.seed``:
    sample ``i`` of every generator comes from the same seed.

    The priors were trained in notebook 04 (a posteriori codes), 05 (VQ-VAE codes) or 06 and are loaded.
    """
    uniform = np.random.default_rng(cfg.seed).integers(0, k, size=(n, 7, 7))
    images: dict[tuple[str, str], torch.Tensor] = {}
    for quantizer, decode in decoders.items():
        for kind in kinds_of[quantizer]:
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
                             "fit_seconds": cb.fit_seconds["kmeans"], "lloyd_iterations": cb.lloyd_iterations})
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
                         "val_mse_per_pixel": val, "fit_seconds": sum(cb.fit_seconds.values())})
    return rows, books


# --- the book's choices, on validation numbers (geohelpers.plan); the stage graph and the notebooks call these ---

def choose_prior_kind(vae: str, cfg: Config) -> tuple[str, list[dict]]:
    """The prior architecture for the VAE kind ``vae`` (notebook 04): every kind of ``prior.kinds`` trained
    (or loaded) on the VAE's K-means code maps at the largest K (:func:`~geohelpers.plan.
    prior_comparison_sets`), and the kind of lowest *validation* NLL; with the priors' rows."""
    from .plan import prior_comparison_sets
    from .selection import select_on_validation

    cs = next(c for c in prior_comparison_sets(cfg) if c.source == vae)
    rows, _ = train_priors([cs.name], cfg, tuple(cfg.prior.kinds))
    return select_on_validation({r["prior"]: r for r in rows}, "val_nll"), rows


def choose_prior_kinds(cfg: Config) -> tuple[dict[str, str], list[dict]]:
    """:func:`choose_prior_kind` for every VAE kind of ``prior.vaes`` (notebook 04): the choices, keyed
    ``prior_<kind>`` as the graph's choice stages are, and every compared prior's row with its ``VAE``."""
    choices, rows = {}, []
    for kind in cfg.prior.vaes:
        choices[f"prior_{kind}"], kind_rows = choose_prior_kind(kind, cfg)
        rows += [{"VAE": kind, **r} for r in kind_rows]
    return choices, rows


def vqvae_choices(grid_vae: VAE, lat: dict[str, Latents], data: MNIST, cfg: Config) -> dict[str, str]:
    """The two choices notebook 05 needs, each on validation, keyed as the graph's choice stages are:
    ``a_posteriori`` (:func:`choose_a_posteriori`, which the hybrid starts from) and ``vqvae``
    (:func:`choose_end_to_end`)."""
    return {"a_posteriori": choose_a_posteriori(grid_vae, lat, data, cfg)[0], "vqvae": choose_end_to_end(cfg, data)[0]}


def choose_end_to_end(cfg: Config, data: MNIST) -> tuple[str, dict[str, float]]:
    """The end-to-end VQ-VAE variant (the hybrid, which starts from the a posteriori pipeline, excluded) of
    lowest *validation* MSE at the largest K of ``vqvae.ks``, each trained or loaded; with every variant's
    validation MSE."""
    from .selection import STARTS_A_POSTERIORI, best_on_validation

    kmax = max(cfg.vqvae.ks)
    val = {}
    for variant in cfg.vqvae.variants:
        if variant in STARTS_A_POSTERIORI:
            continue
        val[variant] = evaluate_vqvae(train_vqvae(variant, kmax, cfg, data).model, data.val_x)[0]["mse_per_pixel"]
    return best_on_validation(val), val


def choose_a_posteriori(grid_vae: VAE, lat: dict[str, Latents], data: MNIST, cfg: Config,
                        pullback: PullbackMetrics | None = None) -> tuple[str, dict[str, float]]:
    """The GridVAE's a posteriori codebook (among :data:`~geohelpers.stages.choices.A_POSTERIORI_METHODS`)
    of lowest *validation* MSE at the largest K of ``vqvae.ks``, each loaded or fitted; the choice is stored
    (:func:`~geohelpers.stages.choices.save_choice`) for the hybrid VQ-VAE that starts from it. Returns it
    and every codebook's validation MSE."""
    from .selection import select_on_validation
    from .stages.choices import a_posteriori_candidates, save_choice
    from .stages.codebooks import pullback_metrics

    k = max(cfg.vqvae.ks)
    pullback = pullback if pullback is not None else pullback_metrics(grid_vae, lat["train"], cfg)
    val = {}
    for method, cb in grid_codebooks_at(k, cfg, lat["train"], pullback).items():
        codes = cb.encode_latents(grid_vae, lat["val"].mu, lat["val"].sigma)
        val[method] = metrics.mse_per_pixel(data.val_x, cb.decode_images(grid_vae, codes))
    best = select_on_validation({m: {"val_mse_per_pixel": v} for m, v in val.items()}, "val_mse_per_pixel")
    save_choice(cfg, "a_posteriori", best, a_posteriori_candidates(cfg))
    return best, val


# --- the rate-distortion curves (notebook 06) ---------------------------------------------------------------

def coded_bits(codes: artifacts.CodeSet, kind: str, cfg: Config) -> dict[str, float]:
    """The coded rate of one code set: the test NLL of its prior ``kind`` (loaded) in bits per image, with
    the prior's validation NLL and its stop reason."""
    stored = load_codes(cfg, codes.name)
    t = train_prior(kind, codes.name, codes.k, cfg, codes=stored)
    test = t.model.evaluate(torch.from_numpy(stored["test"]), cfg.data.eval_batch_size)
    return {"coded_bits": float(test["bits_per_image"]), "prior": kind, "prior_val_nll": float(t.history.best_val_loss),
            "prior_epochs": len(t.history.epochs), "prior_stop_reason": t.history.stop_reason}


def curve_decoders(choices: dict[str, str], grid_vae: VAE, lat: dict[str, Latents], data: MNIST, cfg: Config,
                   pullback: PullbackMetrics | None = None) -> dict[tuple[str, int], object]:
    """For every point (curve, K) of the rate-distortion curves (:func:`geohelpers.plan.curve_code_sets`),
    the function code maps -> images: the VQ-VAE's decoder, the GridVAE's decoder through the codebook, or
    the decoder adapted to that codebook (:func:`adapt_decoder`, trained or loaded)."""
    from .plan import curve_code_sets

    decoders: dict[tuple[str, int], object] = {}
    for curve, sets in curve_code_sets(cfg, choices).items():
        for cs in sets:
            if cs.source == "vqvae":
                model = train_vqvae(cs.method, cs.k, cfg, data).model
                decoders[curve, cs.k] = (lambda m: lambda codes: vqvae_decode(m, codes))(model)
                continue
            cb = grid_codebook(cs.method, cs.k, cfg, lat["train"], grid_vae, pullback)
            vae = adapt_decoder(cb, cs, grid_vae, lat, data, cfg).model if curve.endswith("adapted decoder") else grid_vae
            decoders[curve, cs.k] = (lambda cb, vae: lambda codes: cb.decode_images(vae, np.asarray(codes)))(cb, vae)
    return decoders


def rate_distortion_points(choices: dict[str, str], decoders: dict[tuple[str, int], object], data: MNIST,
                           cfg: Config) -> list[dict]:
    """One row per point (curve, K): validation and test MSE per pixel of the stored code maps through the
    point's decoder, the fixed-length rate (positions x log2 K bits) and the coded rate under the code set's
    prior (:func:`coded_bits`, the kind chosen for the GridVAE's grid)."""
    from .plan import curve_code_sets, prior_kind

    rows = []
    for curve, sets in curve_code_sets(cfg, choices).items():
        for cs in sets:
            stored = load_codes(cfg, cs.name)
            decode = decoders[curve, cs.k]
            row = {"curve": curve, "codes": cs.name, "method": cs.method, "K": cs.k,
                   "fixed_bits": float(np.prod(stored["test"].shape[1:]) * np.log2(cs.k)),
                   "val_mse": metrics.mse_per_pixel(data.val_x, decode(stored["val"])),
                   "test_mse": metrics.mse_per_pixel(data.test_x, decode(stored["test"]))}
            rows.append({**row, **coded_bits(cs, prior_kind(cs, choices), cfg)})
    return rows


def adaptation_along_curves(choices: dict[str, str], grid_vae: VAE, lat: dict[str, Latents], data: MNIST,
                            cfg: Config, pullback: PullbackMetrics | None = None
                            ) -> tuple[list[dict], dict[str, "Trained[VAE]"]]:
    """Every adapted decoder of the curves (:func:`geohelpers.plan.adaptation_sets`) beside its control, the
    decoder fine-tuned the same way on the continuous mu (:func:`~geohelpers.stages.adaptation.
    adapt_decoder_continuous`): one row per codebook and K with validation and test MSE before and after,
    the relative test gain, epochs and stop reason; a last row ``continuous mu (control)`` with the
    continuous reconstruction's MSE before and after. Returns the rows and the histories' owners."""
    from .plan import adaptation_sets
    from .stages.adaptation import adapt_decoder_continuous

    rows, trained = [], {}
    for cs in adaptation_sets(cfg, choices):
        cb = grid_codebook(cs.method, cs.k, cfg, lat["train"], grid_vae, pullback)
        a = trained[cs.name] = adapt_decoder(cb, cs, grid_vae, lat, data, cfg)
        row = {"method": cs.method, "K": cs.k}
        for split in ("val", "test"):
            codes = cb.encode_latents(grid_vae, lat[split].mu, lat[split].sigma)
            x = getattr(data, f"{split}_x")
            row[f"{split}_mse"] = metrics.mse_per_pixel(x, cb.decode_images(grid_vae, codes))
            row[f"{split}_mse_adapted"] = metrics.mse_per_pixel(x, cb.decode_images(a.model, codes))
        rows.append({**row, "adaptation_gain": 1.0 - row["test_mse_adapted"] / row["test_mse"],
                     "epochs": len(a.history.epochs), "stop_reason": a.history.stop_reason,
                     "train_seconds": a.history.wall_time_s})
    c = trained["continuous"] = adapt_decoder_continuous("grid", grid_vae, lat, data, cfg)
    row = {"method": "continuous mu (control)", "K": None}
    for split in ("val", "test"):
        x = getattr(data, f"{split}_x")
        row[f"{split}_mse"] = metrics.mse_per_pixel(x, grid_vae.decode_all(lat[split].mu))
        row[f"{split}_mse_adapted"] = metrics.mse_per_pixel(x, c.model.decode_all(lat[split].mu))
    rows.append({**row, "adaptation_gain": 1.0 - row["test_mse_adapted"] / row["test_mse"],
                 "epochs": len(c.history.epochs), "stop_reason": c.history.stop_reason,
                 "train_seconds": c.history.wall_time_s})
    return rows, trained


def curve_samples(choices: dict[str, str], decoders: dict[tuple[str, int], object], points: Any,
                  classifier: torch.nn.Module, data: MNIST, cfg: Config) -> list[dict]:
    """Samples along the curves, scored: for every point (curve, K) and every temperature of
    ``comparison.temperatures``, the code maps drawn from the code set's prior
    (:func:`~geohelpers.stages.samples.sample_codes`; the adapted curves decode the same maps with their
    own decoder), decoded, and scored by the classifier against the *validation* images' features
    (``val_fd``: what the temperature is chosen on) and the *test* images' (``test_fd``, IS, the class
    spread: what is reported); beside them the point's reconstruction FD, its test maps through the same
    decoder against the test images (what a perfect prior would reach)."""
    from .plan import curve_code_sets, prior_kind
    from .stages.samples import sample_codes
    from .stages.scoring import score_samples

    refs = {s: metrics.feature_stats(classifier.embed(getattr(data, f"{s}_x"))[0].numpy()) for s in ("val", "test")}
    bits = points.set_index(["curve", "K"])["coded_bits"]
    rows = []
    for curve, sets in curve_code_sets(cfg, choices).items():
        for cs in sets:
            decode = decoders[curve, cs.k]
            recon = score_samples(classifier, decode(load_codes(cfg, cs.name)["test"]), refs["test"])
            for t, codes in sample_codes(prior_kind(cs, choices), cs.name, cs.k, cfg).items():
                images = decode(codes)
                feats, probs = classifier.embed(images)
                test = metrics.sample_fidelity(feats, probs, refs["test"])
                rows.append({"curve": curve, "K": cs.k, "coded_bits": float(bits[curve, cs.k]), "temperature": t,
                             "val_fd": metrics.frechet_distance(feats.numpy(), refs["val"]),
                             "test_fd": test["frechet_distance"], "inception_score": test["inception_score"],
                             "class_tv_from_uniform": test["class_tv_from_uniform"],
                             "reconstruction_fd": recon["frechet_distance"]})
    return rows


def grid_codebook(method: str, k: int, cfg: Config, train: Latents, vae: VAE | None = None,
                  pullback: PullbackMetrics | None = None) -> Codebook:
    """One a posteriori codebook of the GridVAE (any method of notebooks 02, 03 and 07), loaded when stored,
    fitted otherwise; the decoder-aware ones need ``pullback`` or the ``vae`` to estimate it."""
    from .config import PULLBACK_METHODS
    from .stages.codebooks import pullback_metrics

    if method in ("kmeans", "w2"):
        return fit_codebook("grid", method, k, cfg, train)[0]
    if method == "geodesic":
        return fit_geodesic_codebooks("grid", cfg, train, ks=(k,))[0][k]
    if method not in PULLBACK_METHODS:
        raise ValueError(f"parameter 'method' is {method!r}; allowed: kmeans, w2, geodesic, {', '.join(PULLBACK_METHODS)}")
    if pullback is None:
        if vae is None:
            raise ValueError("a decoder-aware codebook needs 'pullback' or 'vae'")
        pullback = pullback_metrics(vae, train, cfg)
    if method == "pullback_geodesic":
        return fit_geodesic_codebooks("grid", cfg, train, ks=(k,), method=method, metric=pullback.metrics)[0][k]
    return fit_codebook("grid", method, k, cfg, train, pullback.metrics, pullback.vectors)[0]
