"""The two continuous VAEs whose latents the book quantizes after training.

Both encode a 28x28 image with two stride-2 convolutions (28 -> 14 -> 7) and decode with the mirrored
transposed convolutions; the decoder outputs Bernoulli logits. With ``q(z|x) = N(mu, diag(sigma^2))`` and
``p(z) = N(0, I)`` the training loss per image is

    L(x) = BCE_sum(x, sigmoid(f(z))) + beta * KL,   KL = 1/2 * sum_j (mu_j^2 + sigma_j^2 - 1 - log sigma_j^2),

with ``z = mu + sigma * eps`` (reparameterisation). With ``beta = 1``, ``-L`` is the ELBO.

- :class:`FlatVAE` (study 000's design): flatten, then fully connected layers to ``mu, logvar`` of size
  ``latent_dim``; the latent is split into ``n_chunks`` chunks of equal size, the vectors a codebook sees.
  The chunks have no spatial arrangement.
- :class:`GridVAE` (study 003's design): a 3x3 convolution to a 7x7 grid of ``D``-dimensional ``mu, logvar``;
  each grid position is one vector, in NHWC order.

``to_vectors`` / ``from_vectors`` convert between a batch of latents and the (N * positions, dim) matrix of
vectors that quantizers work on; they are exact inverses.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..config import VAEConfig


def kl_per_dim(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, sigma^2) || N(0, 1)) elementwise, in nats."""
    return 0.5 * (mu.pow(2) + logvar.exp() - 1.0 - logvar)


class VAE(nn.Module):
    """Shared machinery: reparameterised sampling, the beta-weighted loss, decoding to [0, 1]."""

    def __init__(self, beta: float) -> None:
        super().__init__()
        self.beta = float(beta)

    # Subclasses define these four.
    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:  # pragma: no cover
        raise NotImplementedError

    def decode_logits(self, z: torch.Tensor) -> torch.Tensor:  # pragma: no cover
        raise NotImplementedError

    def to_vectors(self, z: torch.Tensor) -> torch.Tensor:  # pragma: no cover
        raise NotImplementedError

    def from_vectors(self, v: torch.Tensor) -> torch.Tensor:  # pragma: no cover
        raise NotImplementedError

    latent_shape: tuple[int, ...]
    n_positions: int
    vector_dim: int
    code_shape: tuple[int, ...]  # shape of one image's code map: (7, 7) grid or (n_chunks,) sequence

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Decode latents to images in [0, 1] (the Bernoulli means)."""
        return torch.sigmoid(self.decode_logits(z))

    @torch.no_grad()
    def encode_all(self, x: torch.Tensor, batch_size: int = 1000) -> tuple[torch.Tensor, torch.Tensor]:
        """Posterior ``mu`` and ``sigma`` of many images, batched, on the CPU."""
        device = next(self.parameters()).device
        mus, sigmas = [], []
        for start in range(0, len(x), batch_size):
            mu, logvar = self.encode(x[start:start + batch_size].to(device))
            mus.append(mu.cpu())
            sigmas.append(torch.exp(0.5 * logvar).cpu())
        return torch.cat(mus), torch.cat(sigmas)

    @torch.no_grad()
    def decode_all(self, z: torch.Tensor, batch_size: int = 1000) -> torch.Tensor:
        """Decode many latents to images in [0, 1], batched, on the CPU."""
        device = next(self.parameters()).device
        return torch.cat([self.decode(z[s:s + batch_size].to(device)).cpu() for s in range(0, len(z), batch_size)])

    @staticmethod
    def reparameterize(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
        return mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        mu, logvar = self.encode(x)
        return self.decode_logits(self.reparameterize(mu, logvar)), mu, logvar

    def loss_terms(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-image reconstruction (BCE summed over pixels) and KL (summed over latent dims)."""
        logits, mu, logvar = self(x)
        recon = F.binary_cross_entropy_with_logits(logits, x, reduction="none").flatten(1).sum(1)
        return recon, kl_per_dim(mu, logvar).flatten(1).sum(1)

    def loss(self, batch: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, dict[str, float]]:
        """Mean over the batch of ``recon + beta * KL``; logs the two terms (nats per image)."""
        recon, kl = self.loss_terms(batch[0])
        loss = (recon + self.beta * kl).mean()
        return loss, {"recon": recon.mean().item(), "kl": kl.mean().item()}


def _encoder_convs(c1: int, c2: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(1, c1, 4, stride=2, padding=1), nn.ReLU(),   # 28 -> 14
        nn.Conv2d(c1, c2, 4, stride=2, padding=1), nn.ReLU(),  # 14 -> 7
    )


def _decoder_convs(c1: int, c2: int) -> nn.Sequential:
    return nn.Sequential(
        nn.ConvTranspose2d(c2, c1, 4, stride=2, padding=1), nn.ReLU(),  # 7 -> 14
        nn.ConvTranspose2d(c1, 1, 4, stride=2, padding=1),              # 14 -> 28, logits
    )


class FlatVAE(VAE):
    """Convolutional encoder, fully connected ``mu, logvar`` of size ``latent_dim``, split into chunks."""

    def __init__(self, channels: tuple[int, int] = (32, 64), latent_dim: int = 128, n_chunks: int = 16,
                 beta: float = 1.0) -> None:
        super().__init__(beta)
        if latent_dim % n_chunks:
            raise ValueError(f"parameter 'latent_dim' ({latent_dim}) must be divisible by 'n_chunks' ({n_chunks})")
        c1, c2 = channels
        self.latent_shape = (latent_dim,)
        self.n_positions, self.vector_dim = n_chunks, latent_dim // n_chunks
        self.code_shape = (n_chunks,)
        self.encoder = nn.Sequential(_encoder_convs(c1, c2), nn.Flatten())
        self.fc_mu = nn.Linear(c2 * 49, latent_dim)
        self.fc_logvar = nn.Linear(c2 * 49, latent_dim)
        self.fc_dec = nn.Sequential(nn.Linear(latent_dim, c2 * 49), nn.ReLU(), nn.Unflatten(1, (c2, 7, 7)))
        self.decoder = _decoder_convs(c1, c2)

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.encoder(x)
        return self.fc_mu(h), self.fc_logvar(h)

    def decode_logits(self, z: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.fc_dec(z))

    def to_vectors(self, z: torch.Tensor) -> torch.Tensor:
        """(B, latent_dim) -> (B * n_chunks, chunk_dim), chunk-major within each image."""
        return z.reshape(-1, self.vector_dim)

    def from_vectors(self, v: torch.Tensor) -> torch.Tensor:
        return v.reshape(-1, self.n_positions * self.vector_dim)


class GridVAE(VAE):
    """Convolutional encoder to a 7x7 grid of ``D``-dimensional ``mu, logvar``."""

    def __init__(self, channels: tuple[int, int] = (32, 64), latent_dim: int = 8, beta: float = 1.0) -> None:
        super().__init__(beta)
        c1, c2 = channels
        self.latent_shape = (latent_dim, 7, 7)
        self.n_positions, self.vector_dim = 49, latent_dim
        self.code_shape = (7, 7)
        self.encoder = nn.Sequential(_encoder_convs(c1, c2), nn.Conv2d(c2, 2 * latent_dim, 3, padding=1))
        self.decoder = nn.Sequential(nn.Conv2d(latent_dim, c2, 3, padding=1), nn.ReLU(), _decoder_convs(c1, c2))

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mu, logvar = self.encoder(x).chunk(2, dim=1)
        return mu, logvar

    def decode_logits(self, z: torch.Tensor) -> torch.Tensor:
        return self.decoder(z)

    def to_vectors(self, z: torch.Tensor) -> torch.Tensor:
        """(B, D, H, W) -> (B * H * W, D): permute to NHWC *before* flattening, one vector per position."""
        return z.permute(0, 2, 3, 1).reshape(-1, self.vector_dim)

    def from_vectors(self, v: torch.Tensor) -> torch.Tensor:
        d, h, w = self.latent_shape
        return v.reshape(-1, h, w, d).permute(0, 3, 1, 2).contiguous()


def build_vae(kind: str, cfg: VAEConfig) -> VAE:
    """``kind`` is ``"flat"`` or ``"grid"``; sizes and beta come from the config."""
    if kind == "flat":
        return FlatVAE(cfg.channels, cfg.latent_dim, cfg.n_chunks, cfg.beta)
    if kind == "grid":
        return GridVAE(cfg.channels, cfg.latent_dim, cfg.beta)
    raise ValueError(f"parameter 'kind' is {kind!r}; allowed: 'flat', 'grid'")
