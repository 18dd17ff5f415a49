"""How good a prior gets when the stopping rule, not the standard profile's cap, ends its training.

The standard profile caps the priors at three epochs (notebook 04), and their samples are far from digits
(notebook 06). This benchmark trains one prior of the book, with the standard profile's sizes, on one
stored code set, under the training loop's stopping rule (``training.patience`` / ``min_delta``) with a
high cap, and scores its samples as notebook 06 does: ``--n`` samples per temperature, decoded through
the code set's codebook and the VAE's decoder, Frechet distance and Inception Score on the book's MNIST
classifier, beside the real-data floor (as many training images).

The classifier is the book's own: its checkpoint is copied from ``--artifacts`` with the rest and loaded
by its identity (one classifier per profile and seed, so every FD of a run is under one scorer). Only
when the run has none is it trained here, with the torch threads given: on one thread it is the book's
(the stages train on one thread), on two its weights, and so every FD, differ.

It works on copies: the VAE, codebook and code maps are copied from ``--artifacts`` (a standard run's
``artifacts/standard``, up to date for this code) into a scratch home, so that the book's own prior
checkpoint is never overwritten by this longer training.

    python benchmarks/prior_convergence.py --artifacts artifacts/standard --threads 1 \\
        --out benchmarks/results/prior_convergence.txt
    python benchmarks/prior_convergence.py --artifacts artifacts/standard --threads 2 \\
        --set prior.pixelcnn_channels=64 --out benchmarks/results/prior_convergence_c64.txt

``--vae vqvae --method VARIANT --k K`` does the same for an end-to-end VQ-VAE's codes: the VQ-VAE (the
standard sizes, its stopping rule) is trained here at any K, also one the profile's grid of K lacks (K = 8),
its code maps are encoded, and its samples decoded by its own decoder; only the classifier is copied.
Every report also scores the test images through the same codes and decoder (the reconstructions' FD:
what a perfect prior would reach), so that the prior's share of the gap and the codes' share are told apart.

    python benchmarks/prior_convergence.py --artifacts artifacts/standard --threads 1 --vae vqvae \\
        --method ema --k 8 --temperatures 1.0 --out benchmarks/results/generator_vqvae_ema_K8.txt
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from pathlib import Path


def main(argv: list[str] | None = None) -> str:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--artifacts", required=True, help="a standard run's artifacts/standard folder")
    parser.add_argument("--vae", default="grid", choices=("grid", "flat", "vqvae"),
                        help="whose codes: a VAE's codebook, or an end-to-end VQ-VAE trained here")
    parser.add_argument("--method", default="kmeans", help="codebook method of the code set (with --vae vqvae: "
                                                           "the VQ-VAE variant, e.g. ema)")
    parser.add_argument("--k", type=int, default=512)
    parser.add_argument("--kind", default="pixelcnn", choices=("pixelcnn", "transformer"))
    parser.add_argument("--precision", default="bf16", choices=("fp32", "bf16"))
    parser.add_argument("--max-epochs", type=int, default=60)
    parser.add_argument("--temperatures", type=float, nargs="+", default=[1.0, 0.9, 0.8, 0.7])
    parser.add_argument("--n", type=int, default=10_000, help="samples per temperature (0: the NLL only, no samples)")
    parser.add_argument("--set", nargs="+", action="extend", default=[], metavar="NAME=VALUE",
                        help="further overrides of the standard profile, e.g. prior.pixelcnn_channels=64")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--out", default=None, help="also write the report here (and a sample grid beside it)")
    args = parser.parse_args(argv)

    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    src = Path(args.artifacts).resolve()
    before = os.environ.get("GEOVQ_HOME")
    with tempfile.TemporaryDirectory(prefix="prior_convergence_") as home:
        os.environ["GEOVQ_HOME"] = home
        try:
            report = _measure(args, src, Path(home))
        finally:  # the caller's home back (a test calls main in its own process)
            if before is None:
                os.environ.pop("GEOVQ_HOME", None)
            else:
                os.environ["GEOVQ_HOME"] = before
    print(report)
    if args.out:
        Path(args.out).write_text(report + "\n")
    return report


def _measure(args: argparse.Namespace, src: Path, home: Path) -> str:
    """Copy the inputs into ``home``, train the prior and the classifier there, score the samples."""
    import io

    import numpy as np
    import torch

    from geohelpers import artifacts, evaluation, files, stages, store
    from geohelpers.config import resolve
    from geohelpers.data import load_mnist
    from geohelpers.config import parse_set

    dst = home / "artifacts" / "standard"
    name = f"{args.vae}_{args.method}_K{args.k}"
    inputs = ["classifier.pt"] if (src / "classifier.pt").exists() else []
    if args.vae != "vqvae":
        inputs += [f"vae_{args.vae}.pt", f"codes/{name}.npz",
                   *(p.relative_to(src).as_posix() for p in src.glob(f"codebooks/{name}_*.npz"))]
    for rel in inputs:
        (dst / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src / rel, dst / rel)
        if files.digest_path(src / rel).exists():  # its digest travels with it, so the copy is verified too
            shutil.copy2(files.digest_path(src / rel), files.digest_path(dst / rel))
    overrides = {"prior.max_epochs": args.max_epochs, "prior.precision": args.precision, **parse_set(args.set)}
    cfg = resolve("standard", overrides)
    data = load_mnist(cfg.data)
    t0 = time.perf_counter()
    if args.vae == "vqvae":
        vq = stages.vqvaes.train_vqvae(args.method, args.k, cfg, data)
        vqh = vq.history
        stages.codes.save_codes(cfg, name, **{s: vq.model.encode_codes(getattr(data, f"{s}_x")).numpy()
                                              for s in ("train", "val", "test")})
        decode = lambda codes: stages.vqvaes.vqvae_decode(vq.model, codes).view(-1, 1, 28, 28)  # noqa: E731
        head = [f"VQ-VAE {args.method} K = {args.k}: {len(vqh.epochs)} epochs (stopped by: {vqh.stop_reason}), "
                f"{vqh.wall_time_s:.0f} s; test MSE {evaluation.evaluate_vqvae(vq.model, data.test_x)[0]['mse_per_pixel']:.5f}"]
    else:
        ckpt = store.checkpoint_path(cfg.profile, f"vae_{args.vae}")
        stored = files.read_artifact(ckpt, "checkpoint")
        if stored is None:
            raise SystemExit(f"{src / ckpt.name} is missing or damaged: run the book (notebook 01) at standard first")
        artifacts.check(src / ckpt.name, torch.load(io.BytesIO(stored), map_location="cpu", weights_only=False).get("tag"),
                        stages.vaes.vae_tag(args.vae, cfg), "run the book (notebook 01) at standard with this code first")
        vae = stages.vaes.train_vae(args.vae, cfg, data)  # loaded: its identity was checked above
        cb = stages.codebooks.load_codebook(args.vae, args.method, args.k, cfg)
        decode = lambda codes: cb.decode_images(vae.model, np.asarray(codes))  # noqa: E731
        head = []
    prior = stages.priors.train_prior(args.kind, name, args.k, cfg)
    h = prior.history
    test = prior.model.evaluate(torch.from_numpy(stages.codes.load_codes(cfg, name)["test"]), cfg.data.eval_batch_size)
    lines = [f"# prior_convergence: torch {torch.__version__}, {torch.get_num_threads()} torch threads, "
             f"the standard {args.kind} ({args.precision}) on {name}, cap {args.max_epochs} epochs, "
             f"stopping rule patience {cfg.training.patience}, min_delta {cfg.training.min_delta}; "
             f"overrides {overrides}; {sum(p.numel() for p in prior.model.parameters())} parameters", *head,
             f"epochs trained: {len(h.epochs)} (stopped by: {h.stop_reason}; best epoch {h.best_epoch}), "
             f"training {h.wall_time_s:.0f} s",
             "validation NLL per epoch (nats per code): " + ", ".join(f"{e['val_loss']:.4f}" for e in h.epochs),
             "seconds per epoch: " + ", ".join(f"{e['seconds']:.0f}" for e in h.epochs),
             f"test NLL {test['nll_nats_per_token']:.4f} nats per code, "
             f"{test['bits_per_image']:.1f} bits per image"]
    if args.n == 0:
        return "\n".join(lines + [f"\ntotal {time.perf_counter() - t0:.0f} s"])
    clf = stages.scoring.train_classifier(cfg, data)  # the run's own when its identity matches, else trained here
    floor, reference, _ = stages.scoring.real_data_floor(clf.model, data, args.n)
    lines.append(f"classifier: {'the run' + chr(39) + 's own, loaded' if not clf.built_now else 'trained here'}")
    lines += [f"classifier: {len(clf.history.epochs)} epochs, test accuracy {floor['test_accuracy']:.4f}",
              f"real-data floor ({args.n} training images): FD {floor['frechet_distance']:.2f}, "
              f"IS {floor['inception_score']:.2f}"]
    recon = stages.scoring.score_samples(clf.model, decode(stages.codes.load_codes(cfg, name)["test"]), reference)
    lines += [f"reconstructions (the test images through the codes and decoder): FD {recon['frechet_distance']:.2f} "
              f"({recon['frechet_distance'] / floor['frechet_distance']:.1f}x the floor), IS {recon['inception_score']:.2f}",
              ""]
    for t in args.temperatures:
        s = time.perf_counter()
        codes = prior.model.sample(args.n, temperature=t, seed=cfg.seed, batch_size=5000, progress=False)
        images = decode(codes)
        score = stages.scoring.score_samples(clf.model, images, reference)
        lines.append(f"T = {t:<4} FD {score['frechet_distance']:7.2f} "
                     f"({score['frechet_distance'] / floor['frechet_distance']:5.1f}x the floor)   "
                     f"IS {score['inception_score']:.2f}   class TV from uniform "
                     f"{score['class_tv_from_uniform']:.3f}   sampling+scoring {time.perf_counter() - s:.0f} s")
        if args.out and t == args.temperatures[0]:
            _grid(images[:64], Path(args.out).with_suffix(".png"), f"{args.kind} on {name}, T = {t}")
    lines.append(f"\ntotal {time.perf_counter() - t0:.0f} s")
    return "\n".join(lines)


def _grid(images, path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    g = images.view(8, 8, 28, 28).permute(0, 2, 1, 3).reshape(224, 224)
    fig, ax = plt.subplots(figsize=(4, 4.3))
    ax.imshow(g.numpy(), cmap="gray")
    ax.set_title(title, fontsize=9)
    ax.axis("off")
    fig.savefig(path, dpi=80, bbox_inches="tight")
    plt.close(fig)


if __name__ == "__main__":
    main()
