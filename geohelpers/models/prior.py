"""What every autoregressive prior over code maps shares: the likelihood, its units, and sampling.

A prior models a code map ``c`` (a GridVAE's H x W grid or a FlatVAE's sequence of chunk codes, each
code in ``{0, ..., K-1}``) in raster order:

    p(c) = prod_i p(c_i | c_<i),        NLL(c) = - sum_i log p(c_i | c_<i)   (nats).

Its training loss is the NLL per token, ``NLL(c) / n_positions``, averaged over a batch. On held-out codes:

- ``nll`` in nats per token; ``perplexity = exp(nll)``, the number of equally likely codes with the same
  uncertainty;
- ``bits_per_image = nll * n_positions / ln 2``: what an ideal entropy coder driven by the prior spends
  on one image's code map, against ``n_positions * log2 K`` without a prior.

A prior that ignores context can do no better than the codes' empirical entropy (the *unigram*
baseline, :func:`geohelpers.metrics.code_statistics`); the gap between the two is what context buys.

Sampling draws ``c_i ~ softmax(logits_i / T)`` position by position with a seeded generator;
``T`` (the temperature) must be > 0.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

def check_temperature(temperature: float) -> float:
    if isinstance(temperature, bool) or not isinstance(temperature, (int, float)) or not temperature > 0 \
            or not math.isfinite(temperature):
        raise ValueError(f"parameter 'temperature' is {temperature!r}; allowed: a finite number > 0")
    return float(temperature)


class CodePrior(nn.Module):
    """Base class: an autoregressive model of (N, *shape) integer code maps with K codes.

    Subclasses implement :meth:`logits` (teacher forcing: (N, *shape) codes -> (N, n_positions, K)
    logits in raster order, where row ``i`` may depend only on codes ``< i``) and may override
    :meth:`_sample_codes` with a faster incremental sampler.
    """

    kind: str = ""

    def __init__(self, k: int, shape: tuple[int, ...]) -> None:
        super().__init__()
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 2:
            raise ValueError(f"parameter 'k' is {k!r}; allowed: an integer >= 2")
        shape = tuple(int(s) for s in shape)
        if not 1 <= len(shape) <= 2 or min(shape) < 1:
            raise ValueError(f"parameter 'shape' is {shape!r}; allowed: (length,) or (height, width), sizes >= 1")
        self.k, self.shape = int(k), shape
        self.n_positions = int(np.prod(shape))

    # --- to implement -------------------------------------------------------------------------------
    def logits(self, codes: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    # --- shared -------------------------------------------------------------------------------------
    def check_codes(self, codes: torch.Tensor) -> torch.Tensor:
        if tuple(codes.shape[1:]) != self.shape:
            raise ValueError(f"codes of shape {tuple(codes.shape)} do not fit a prior over {self.shape} maps")
        return codes.long()

    def nll_per_image(self, codes: torch.Tensor) -> torch.Tensor:
        """``-log p(c)`` in nats for each code map of the batch."""
        codes = self.check_codes(codes)
        logits = self.logits(codes)
        nll = F.cross_entropy(logits.reshape(-1, self.k), codes.reshape(-1), reduction="none")
        return nll.view(len(codes), -1).sum(1)

    def loss(self, batch: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, dict[str, float]]:
        """Mean NLL per token (nats), the quantity that is reported."""
        codes = self.check_codes(batch[0])
        logits = self.logits(codes)
        loss = F.cross_entropy(logits.reshape(-1, self.k), codes.reshape(-1))
        return loss, {}

    @torch.no_grad()
    def evaluate(self, codes: torch.Tensor, batch_size: int = 1000) -> dict[str, float]:
        """Held-out NLL per token (nats), perplexity and bits per image over all of ``codes``."""
        self.eval()
        device = next(self.parameters()).device
        total = sum(self.nll_per_image(codes[s:s + batch_size].to(device)).sum().item()
                    for s in range(0, len(codes), batch_size))
        nll = total / (len(codes) * self.n_positions)
        return {"nll_nats_per_token": nll, "perplexity": math.exp(nll),
                "bits_per_image": nll * self.n_positions / math.log(2), "n_maps": int(len(codes))}

    @torch.no_grad()
    def sample(self, n: int, temperature: float = 1.0, seed: int = 0, batch_size: int = 2000,
               progress: bool = True) -> torch.Tensor:
        """``n`` code maps (n, *shape) drawn in raster order at ``temperature``; the same seed, the same maps.

        A private generator is used: the global RNG is left untouched.
        """
        temperature = check_temperature(temperature)
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
            raise ValueError(f"parameter 'n' is {n!r}; allowed: an integer >= 1")
        self.eval()
        device = next(self.parameters()).device
        gen = torch.Generator(device="cpu").manual_seed(int(seed))
        out = []
        starts = range(0, int(n), batch_size)
        for s in tqdm(starts, desc=f"sample {self.kind}", disable=not progress or len(starts) < 2):
            m = min(batch_size, int(n) - s)
            out.append(self._sample_codes(m, temperature, gen, device).cpu())
        return torch.cat(out).view(int(n), *self.shape)

    def _draw(self, logits: torch.Tensor, temperature: float, gen: torch.Generator) -> torch.Tensor:
        probs = torch.softmax(logits.float().cpu() / temperature, dim=-1)
        return torch.multinomial(probs, 1, generator=gen).squeeze(1)

    def _sample_codes(self, m: int, temperature: float, gen: torch.Generator, device: torch.device
                      ) -> torch.Tensor:
        """Generic sampler: one full teacher-forced pass per position (subclasses do it faster)."""
        codes = torch.zeros(m, self.n_positions, dtype=torch.long, device=device)
        for i in range(self.n_positions):
            logits = self.logits(codes.view(m, *self.shape))[:, i]
            codes[:, i] = self._draw(logits, temperature, gen).to(device)
        return codes

    def describe(self) -> dict[str, Any]:
        return {"kind": self.kind, "k": self.k, "shape": list(self.shape),
                "parameters": sum(p.numel() for p in self.parameters())}


def unigram_nll(train_codes: np.ndarray, test_codes: np.ndarray, k: int, alpha: float = 1.0) -> float:
    """Held-out NLL (nats per token) of the context-free prior: code frequencies of the training maps,
    add-``alpha`` smoothed so that a code unseen in training has a finite cost."""
    counts = np.bincount(np.asarray(train_codes).ravel(), minlength=k).astype(np.float64) + alpha
    logp = np.log(counts / counts.sum())
    return float(-logp[np.asarray(test_codes).ravel()].mean())
