"""A small LeNet-style MNIST classifier: the feature extractor of the sample-fidelity metrics.

    conv 5x5 (1 -> 32) . ReLU . maxpool 2  ->  conv 5x5 (32 -> 64) . ReLU . maxpool 2
    ->  fc 1024 -> 128 . ReLU  (the *features*)  ->  fc 128 -> 10  (the logits)

The Frechet distance is computed on the 128 penultimate features and the Inception Score on the softmax
of the logits (:mod:`geohelpers.metrics`), as the Inception network's pool and logits are for ImageNet.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class LeNet(nn.Module):
    """MNIST classifier with ``features`` (penultimate layer) and ``loss`` for the training loop."""

    def __init__(self, width: int = 32, features: int = 128) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(1, width, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(width, 2 * width, 5), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
            nn.Linear(2 * width * 5 * 5, features), nn.ReLU())
        self.out = nn.Linear(features, 10)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(self.body(x))

    def loss(self, batch: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, dict[str, float]]:
        x, y = batch
        logits = self(x)
        return F.cross_entropy(logits, y), {"accuracy": (logits.argmax(1) == y).float().mean().item()}

    @torch.no_grad()
    def embed(self, x: torch.Tensor, batch_size: int = 2000) -> tuple[torch.Tensor, torch.Tensor]:
        """Penultimate features (N, 128) and class probabilities (N, 10) of images (N, 1, 28, 28)."""
        self.eval()
        device = next(self.parameters()).device
        feats, probs = [], []
        for s in range(0, len(x), batch_size):
            f = self.features(x[s:s + batch_size].to(device))
            feats.append(f.cpu())
            probs.append(torch.softmax(self.out(f), 1).cpu())
        return torch.cat(feats), torch.cat(probs)
