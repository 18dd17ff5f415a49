"""The end-to-end VQ-VAE baseline, with the GridVAE's encoder and decoder.

The encoder and decoder are the GridVAE's (same widths, the same 7x7 grid, the same ``D``), so that the
two pipelines differ only in how the codes are learned. The encoder's last convolution gives ``D``
channels (the VAE's gives ``2D``: mean and log-variance). The decoder outputs Bernoulli logits and the
reconstruction term is the same ``BCE_sum`` as the VAE's.

:class:`VectorQuantizer` permutes the NCHW feature map to NHWC *before* flattening, so that a quantized
vector is one grid position's ``D`` features. Study 003 flattened NCHW directly, so its "vectors" were
runs of one channel. Its variants:

- ``vanilla`` (van den Oord et al. 2017): ``L = ||sg[z_e] - e||^2 + beta ||z_e - sg[e]||^2`` with
  straight-through gradients ``z_q = z_e + sg[e - z_e]``; the codebook is learned by gradient descent.
- ``ema``: the codebook follows exponential moving averages of the assigned encoder outputs
  (decay ``gamma``), ``N_k <- gamma N_k + (1 - gamma) n_k``, ``m_k <- gamma m_k + (1 - gamma) sum_{i in k} z_i``,
  ``e_k = m_k / N~_k`` with Laplace-smoothed counts ``N~_k = (N_k + eps) / (N + K eps) N``; only the
  commitment term is a loss.
- ``restart``: every variant keeps an EMA of each code's assignments per batch (``usage_count``). After
  a training step, a code whose usage count is below ``restart_threshold`` is re-initialised from a
  random encoder output of the batch; its usage count is reset to the threshold and, for ``ema``, its
  statistics to ``N_k = 1``, ``m_k = e_k``. For ``vanilla`` the optimizer's moments for that row stay as
  they were (study 003's hard reset).
- ``init_codebook``: the codebook can start from given vectors: K-means centroids of the encoder
  outputs of the first batches, or the a posteriori codebook chosen on validation (the ``hybrid``).

:class:`FSQ` (finite scalar quantization) rounds a few bounded channels to fixed levels; every one of
its ``prod(levels)`` codes exists by construction.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

VARIANTS = ("vanilla", "ema", "fsq")


class VectorQuantizer(nn.Module):
    """Nearest-codeword quantization of an NCHW feature map, one code per (h, w) position."""

    def __init__(self, k: int, dim: int, variant: str = "ema", beta: float = 0.25, decay: float = 0.99,
                 eps: float = 1e-5, restart: bool = False, restart_threshold: float = 1.0) -> None:
        super().__init__()
        if variant not in ("vanilla", "ema"):
            raise ValueError(f"parameter 'variant' is {variant!r}; allowed: vanilla, ema")
        if k < 2:
            raise ValueError(f"parameter 'K' is {k}; allowed: K >= 2")
        if not 0.0 < decay < 1.0:
            raise ValueError(f"parameter 'decay' is {decay}; allowed: 0 < decay < 1")
        self.k, self.dim, self.variant, self.beta, self.decay, self.eps = k, dim, variant, beta, decay, eps
        self.restart, self.restart_threshold = restart, restart_threshold
        init = torch.randn(k, dim) / math.sqrt(dim)
        if variant == "vanilla":
            self.codebook = nn.Parameter(init)
        else:
            self.register_buffer("codebook", init)
            self.register_buffer("ema_count", torch.ones(k))
            self.register_buffer("ema_sum", init.clone())
        self.register_buffer("usage_count", torch.ones(k))  # EMA of assignments, drives restarts

    @torch.no_grad()
    def init_codebook(self, vectors: torch.Tensor) -> None:
        """Start from given codewords (K-means centroids, geodesic medoids); statistics restart with them."""
        if vectors.shape != self.codebook.shape:
            raise ValueError(f"parameter 'vectors' has shape {tuple(vectors.shape)}; allowed: {tuple(self.codebook.shape)}")
        self.codebook.data.copy_(vectors)
        self.usage_count.fill_(1.0)
        if self.variant == "ema":
            self.ema_count.fill_(1.0)
            self.ema_sum.copy_(vectors)

    @staticmethod
    def flatten(z: torch.Tensor) -> torch.Tensor:
        """(B, D, H, W) -> (B * H * W, D): permute to NHWC first, so a row is one position's features."""
        return z.permute(0, 2, 3, 1).reshape(-1, z.shape[1])

    def codes_of(self, flat: torch.Tensor) -> torch.Tensor:
        d = (flat.pow(2).sum(1, keepdim=True) - 2 * flat @ self.codebook.t() + self.codebook.pow(2).sum(1))
        return d.argmin(1)

    def forward(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Quantize (B, D, H, W): (straight-through z_q, codes (B, H, W), loss per image)."""
        b, d, h, w = z.shape
        flat = self.flatten(z)
        codes = self.codes_of(flat.detach())
        q = self.codebook[codes]
        commit = (flat - q.detach()).pow(2).view(b, -1).sum(1)
        if self.variant == "vanilla":
            loss = (flat.detach() - q).pow(2).view(b, -1).sum(1) + self.beta * commit
        else:
            loss = self.beta * commit
        if self.training:
            self._update(flat.detach(), codes)
        q = flat + (q - flat).detach()  # straight-through: the gradient of z_q reaches z unchanged
        return q.view(b, h, w, d).permute(0, 3, 1, 2), codes.view(b, h, w), loss

    @torch.no_grad()
    def _update(self, flat: torch.Tensor, codes: torch.Tensor) -> None:
        onehot_counts = torch.bincount(codes, minlength=self.k).to(flat.dtype)
        self.usage_count.mul_(self.decay).add_(onehot_counts, alpha=1 - self.decay)
        if self.variant == "ema":
            sums = torch.zeros_like(self.ema_sum).index_add_(0, codes, flat)
            self.ema_count.mul_(self.decay).add_(onehot_counts, alpha=1 - self.decay)
            self.ema_sum.mul_(self.decay).add_(sums, alpha=1 - self.decay)
            n = self.ema_count.sum()
            smoothed = (self.ema_count + self.eps) / (n + self.k * self.eps) * n
            self.codebook.copy_(self.ema_sum / smoothed[:, None])
        if self.restart:
            self.restart_dead(flat)

    @torch.no_grad()
    def restart_dead(self, flat: torch.Tensor) -> torch.Tensor:
        """Re-initialise codes whose usage count fell below the threshold from random batch vectors."""
        dead = torch.nonzero(self.usage_count < self.restart_threshold).flatten()
        if len(dead):
            pick = flat[torch.randint(len(flat), (len(dead),), device=flat.device)]
            self.codebook.data[dead] = pick
            self.usage_count[dead] = self.restart_threshold
            if self.variant == "ema":
                self.ema_count[dead] = 1.0
                self.ema_sum[dead] = pick
        return dead


class FSQ(nn.Module):
    """Finite scalar quantization (Mentzer et al. 2023): round each of ``len(levels)`` bounded channels.

    A 1x1 convolution maps the ``D`` encoder channels to ``len(levels)``; each channel is bounded by
    ``tanh`` to ``levels[i]`` values and rounded (straight-through); a 1x1 convolution maps back to ``D``.
    The code of a position is the mixed-radix number of its rounded values, one of ``prod(levels)``.
    Every code is reachable by construction; nothing is learned in the codebook itself.
    """

    def __init__(self, levels: tuple[int, ...], dim: int) -> None:
        super().__init__()
        if any(level < 2 for level in levels):
            raise ValueError(f"parameter 'levels' is {levels}; allowed: every level >= 2")
        self.levels = tuple(int(level) for level in levels)
        self.k = math.prod(self.levels)
        self.register_buffer("_levels", torch.tensor(self.levels, dtype=torch.float32))
        self.register_buffer("_basis", torch.tensor([math.prod(self.levels[:i]) for i in range(len(self.levels))]))
        self.down = nn.Conv2d(dim, len(levels), 1)
        self.up = nn.Conv2d(len(levels), dim, 1)

    def bound(self, z: torch.Tensor) -> torch.Tensor:
        """Map to (-(L-1)/2, (L-1)/2) per channel; even L get a half-step offset so rounding gives L values."""
        half = (self._levels - 1) / 2
        offset = torch.where(self._levels % 2 == 0, 0.5, 0.0)
        shift = torch.atanh(offset / half)
        return torch.tanh(z + shift) * half - offset

    def quantize(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Channels-last (..., C) -> (straight-through rounded values, integer codes)."""
        zb = self.bound(z)
        zq = zb + (torch.round(zb) - zb).detach()
        digits = (torch.round(zb) + torch.div(self._levels, 2, rounding_mode="floor")).long()
        return zq, (digits * self._basis).sum(-1)

    def values_of(self, codes: torch.Tensor) -> torch.Tensor:
        """Integer codes (...) -> their rounded channel values (..., len(levels))."""
        digits = (codes[..., None] // self._basis) % self._levels.long()
        return digits.float() - torch.div(self._levels, 2, rounding_mode="floor")

    def embed(self, codes: torch.Tensor) -> torch.Tensor:
        """(B, H, W) codes -> (B, D, H, W) decoder input."""
        return self.up(self.values_of(codes).permute(0, 3, 1, 2))

    def forward(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        h = self.down(z).permute(0, 2, 3, 1)
        zq, codes = self.quantize(h)
        out = self.up(zq.permute(0, 3, 1, 2))
        return out, codes, torch.zeros(len(z), device=z.device)


class VQVAE(nn.Module):
    """The GridVAE's encoder (to ``dim`` channels) and decoder around a quantizer.

    Per image, the loss is ``BCE_sum(x, x_hat)`` plus the quantizer's loss, summed over the 7x7 grid.
    """

    def __init__(self, channels: tuple[int, int] = (32, 64), dim: int = 8, k: int = 512, variant: str = "ema",
                 beta: float = 0.25, decay: float = 0.99, restart: bool = False, restart_threshold: float = 1.0,
                 levels: tuple[int, ...] | None = None) -> None:
        super().__init__()
        from .vae import _decoder_convs, _encoder_convs

        if variant not in VARIANTS:
            raise ValueError(f"parameter 'variant' is {variant!r}; allowed: {', '.join(VARIANTS)}")
        c1, c2 = channels
        self.encoder = nn.Sequential(_encoder_convs(c1, c2), nn.Conv2d(c2, dim, 3, padding=1))
        self.decoder = nn.Sequential(nn.Conv2d(dim, c2, 3, padding=1), nn.ReLU(), _decoder_convs(c1, c2))
        if variant == "fsq":
            if levels is None or math.prod(levels) != k:
                raise ValueError(f"parameter 'levels' is {levels}; allowed: levels whose product is K ({k})")
            self.quantizer: nn.Module = FSQ(levels, dim)
        else:
            self.quantizer = VectorQuantizer(k, dim, variant, beta, decay, restart=restart,
                                             restart_threshold=restart_threshold)
        self.k, self.variant, self.code_shape, self.n_positions = k, variant, (7, 7), 49

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        zq, codes, qloss = self.quantizer(self.encoder(x))
        return self.decoder(zq), codes, qloss

    def loss(self, batch: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, dict[str, float]]:
        x = batch[0]
        logits, _, qloss = self(x)
        recon = F.binary_cross_entropy_with_logits(logits, x, reduction="none").flatten(1).sum(1)
        return (recon + qloss).mean(), {"recon": recon.mean().item(), "vq": qloss.mean().item()}

    @torch.no_grad()
    def encode_codes(self, x: torch.Tensor, batch_size: int = 1000) -> torch.Tensor:
        """(N, 1, 28, 28) images -> (N, 7, 7) codes, in eval mode (no codebook updates)."""
        was = self.training
        self.eval()
        device = next(self.parameters()).device
        out = torch.cat([self(x[s:s + batch_size].to(device))[1].cpu() for s in range(0, len(x), batch_size)])
        self.train(was)
        return out

    @torch.no_grad()
    def decode_codes(self, codes: torch.Tensor) -> torch.Tensor:
        """(N, 7, 7) codes -> images in [0, 1]."""
        codes = codes.to(next(self.parameters()).device)
        if self.variant == "fsq":
            z = self.quantizer.embed(codes)
        else:
            z = self.quantizer.codebook[codes].permute(0, 3, 1, 2)  # (N, 7, 7, D) -> NCHW
        return torch.sigmoid(self.decoder(z))


def fsq_levels(k: int) -> tuple[int, ...]:
    """Three (or fewer) power-of-two levels, as equal as possible, whose product is ``k`` (e.g. 512 -> 8x8x8)."""
    n = int(round(math.log2(k)))
    if k < 4 or 2 ** n != k:
        raise ValueError(f"parameter 'K' is {k}; allowed for FSQ: a power of two >= 4")
    parts = [n // 3 + (1 if i < n % 3 else 0) for i in range(3)]
    return tuple(2 ** p for p in parts if p > 0)
