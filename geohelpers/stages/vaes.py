"""Stage: the two VAEs (``vae/flat``, ``vae/grid``), and their posterior latents.

A VAE is trained under the stopping rule by :func:`~geohelpers.stages.build.load_or_train`, or loaded when
its checkpoint carries the identity :func:`vae_tag` gives (its config section and the data).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from .. import artifacts, metrics
from ..config import Config
from ..data import MNIST, Batches
from ..models.vae import VAE, build_vae
from .build import Trained, load_or_train


KIND_OF = {"FlatVAE": "flat", "GridVAE": "grid"}


def vae_tag(kind: str, cfg: Config) -> str:
    """Identity of a trained VAE (:func:`~geohelpers.artifacts.identity`): its config section and the data."""
    return artifacts.identity(f"vae/{kind}", cfg, (f"{kind}_vae", "data"), module=__name__)


def train_vae(kind: str, cfg: Config, data: MNIST) -> Trained[VAE]:
    """Train the ``"flat"`` or ``"grid"`` VAE of ``cfg`` (or load it when its checkpoint is up to date)."""
    vcfg = getattr(cfg, f"{kind}_vae")
    return load_or_train(
        f"vae_{kind}", vae_tag(kind, cfg), cfg, lambda: build_vae(kind, vcfg),
        lambda _: (Batches(data.train_x, batch_size=vcfg.batch_size, shuffle=True, seed=cfg.seed),
                   Batches(data.val_x, batch_size=cfg.data.eval_batch_size)),
        max_epochs=vcfg.max_epochs, lr=vcfg.lr, desc=f"{kind} VAE epoch")


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


def continuous_mse(vae: VAE, split: Latents, x: torch.Tensor) -> float:
    """Test MSE per pixel of the continuous VAE, decoding ``mu``: the floor of every codebook."""
    return metrics.mse_per_pixel(x, vae.decode_all(split.mu))


@torch.no_grad()
def vae_samples(vae: VAE, n: int, seed: int) -> torch.Tensor:
    """``n`` images decoded from z ~ N(0, I), the continuous VAE's own prior."""
    gen = torch.Generator().manual_seed(seed)
    z = torch.randn(n, *vae.latent_shape, generator=gen)
    return vae.decode_all(z)
