"""Stage: end-to-end VQ-VAEs (``vqvae/<variant>_K<k>``), with the GridVAE's sizes, trained under the
stopping rule by :func:`~geohelpers.stages.build.load_or_train`; the hybrid starts from the trained GridVAE
and the a posteriori codebook chosen on validation (:mod:`geohelpers.plan`).
"""

from __future__ import annotations

import numpy as np
import torch

from .. import artifacts, metrics
from ..config import Config
from ..data import MNIST, Batches
from ..models.vae import VAE
from ..models.vqvae import VQVAE, fsq_levels
from ..quantize.codebook import Codebook
from .build import Trained, load_or_train
from .choices import a_posteriori_choice
from .codebooks import codebook_tag, load_codebook
from .vaes import vae_tag


def vqvae_model(variant: str, k: int, cfg: Config) -> VQVAE:
    """The VQ-VAE of a variant name (see :class:`~geohelpers.config.VQVAEConfig`), with the GridVAE's sizes."""
    g, v = cfg.grid_vae, cfg.vqvae
    base = "vanilla" if variant.startswith("vanilla") else ("fsq" if variant == "fsq" else "ema")
    restart = variant in ("vanilla_restart", "ema_restart", "kmeans_init", "hybrid")
    return VQVAE(g.channels, g.latent_dim, k, base, v.beta, v.decay, restart, v.restart_threshold,
                 levels=fsq_levels(k) if base == "fsq" else None)


def _hybrid_start(model: VQVAE, grid_vae: VAE, codewords: np.ndarray) -> None:
    """Encoder (its mean half), decoder and codebook from the trained GridVAE and one of its a posteriori
    codebooks' codewords (K, D)."""
    d = model.quantizer.dim
    enc = grid_vae.encoder.state_dict()
    enc["1.weight"], enc["1.bias"] = enc["1.weight"][:d], enc["1.bias"][:d]
    model.encoder.load_state_dict(enc)
    model.decoder.load_state_dict(grid_vae.decoder.state_dict())
    model.quantizer.init_codebook(torch.from_numpy(np.asarray(codewords)).float())


@torch.no_grad()
def _kmeans_start(model: VQVAE, train: Batches, n_batches: int, seed: int) -> None:
    from ..quantize.kmeans import kmeans

    outs = [model.quantizer.flatten(model.encoder(xb)) for (xb,), _ in zip(train.epoch(0), range(n_batches))]
    vectors = torch.cat(outs).numpy()
    model.quantizer.init_codebook(torch.from_numpy(kmeans(vectors, model.k, seed=seed).centres))


#: The parameters a VQ-VAE's training reads: the GridVAE's encoder and decoder sizes and the ``vqvae``
#: section's quantizer and optimizer; not which K or variants a profile trains (``vqvae.ks``, ``variants``,
#: ``small_k_variants``), nor how the GridVAE itself is trained.
VQVAE_READS = ("grid_vae.channels", "grid_vae.latent_dim", "vqvae.beta", "vqvae.decay", "vqvae.restart_threshold",
               "vqvae.kmeans_init_batches", "vqvae.max_epochs", "vqvae.batch_size", "vqvae.lr")


def hybrid_start(cfg: Config, k: int) -> tuple[str, Codebook]:
    """The a posteriori codebook the hybrid starts from at size ``k``: the method chosen on validation and
    its stored codebook."""
    method = a_posteriori_choice(cfg)
    return method, load_codebook("grid", method, k, cfg)


def train_vqvae(variant: str, k: int, cfg: Config, data: MNIST, grid_vae: VAE | None = None) -> Trained[VQVAE]:
    """Train one VQ-VAE variant at codebook size ``k`` (or load it when up to date).

    After every epoch the codes of the validation images give the code usage and perplexity, so that
    collapse is a curve. ``hybrid`` needs the trained GridVAE and starts from the a posteriori codebook
    chosen on validation (:func:`hybrid_start`). A run that stops on a non-finite loss is returned with
    ``diverged`` set.
    """
    v = cfg.vqvae
    if variant == "hybrid" and grid_vae is None:
        raise ValueError("the hybrid variant needs 'grid_vae'")
    start = hybrid_start(cfg, k)[1] if variant == "hybrid" else None

    def prepare(model: VQVAE, train: Batches) -> None:
        if variant == "kmeans_init":
            _kmeans_start(model, train, v.kmeans_init_batches, cfg.seed)
        if variant == "hybrid":
            _hybrid_start(model, grid_vae, start.codewords)

    def usage(m: torch.nn.Module, epoch: int, record: dict) -> dict:
        stats = metrics.code_statistics(m.encode_codes(data.val_x).numpy(), k)
        return {"val_usage": stats["usage"], "val_perplexity": stats["perplexity"]}

    return load_or_train(
        f"vqvae_{variant}_K{k}", vqvae_tag(variant, k, cfg), cfg, lambda: vqvae_model(variant, k, cfg),
        lambda _: (Batches(data.train_x, batch_size=v.batch_size, shuffle=True, seed=cfg.seed),
                   Batches(data.val_x, batch_size=cfg.data.eval_batch_size)),
        max_epochs=v.max_epochs, lr=v.lr, desc=f"VQ-VAE {variant} K={k} epoch", prepare=prepare,
        on_epoch_end=usage, tolerate_divergence=True)


@torch.no_grad()
def vqvae_decode(model: torch.nn.Module, codes: np.ndarray | torch.Tensor, batch_size: int = 1000) -> torch.Tensor:
    """Images of (N, H, W) code maps through a VQ-VAE's codebook and decoder."""
    codes = torch.as_tensor(np.asarray(codes), dtype=torch.long)
    return torch.cat([model.decode_codes(codes[s:s + batch_size]).cpu() for s in range(0, len(codes), batch_size)])


def vqvae_tag(variant: str, k: int, cfg: Config) -> str:
    """Identity of a trained VQ-VAE; the hybrid's includes the GridVAE and the a posteriori codebook it
    starts from: the one chosen on validation (:func:`~geohelpers.stages.choices.a_posteriori_choice`, which
    raises until that choice is made)."""
    inputs = {"grid_vae": vae_tag("grid", cfg), "start": codebook_tag("grid", a_posteriori_choice(cfg), k, cfg)} \
        if variant == "hybrid" else {}
    return artifacts.identity(f"vqvae/{variant}_K{k}", cfg, (*VQVAE_READS, "data"), inputs, module=__name__)
