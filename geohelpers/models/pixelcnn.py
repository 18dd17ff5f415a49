"""A gated PixelCNN over integer code maps (van den Oord et al., 2016, "Conditional Image Generation with
PixelCNN Decoders"), class-unconditional.

Two stacks of gated convolutions run side by side on the embedded codes ``e`` (N, C, H, W):

- the **vertical stack** sees only the rows *above* the current one, over their whole width: its input is
  ``e`` shifted down by one row, and each of its convolutions, with kernel (kh, kw), is padded so that
  output row ``r`` reads input rows ``r-kh+1..r``;
- the **horizontal stack** sees the current row *to the left*: its input is ``e`` shifted right by one
  column, convolved with (1, kh_w) kernels padded on the left; at every layer it also receives a 1x1
  projection of the vertical stack's pre-activation at the same row (which only holds rows above).

A gated unit is ``tanh(a) * sigmoid(b)`` with ``[a, b]`` the two halves of a convolution's output; the
horizontal stack is residual. Because the two stacks never mix in the other direction, there is no
blind spot: after ``L`` layers position ``(r, c)`` depends on every earlier position in raster order
within the receptive field, and the kernel sizes are chosen from the map's shape and ``L`` so that the
receptive field covers the whole map (rows above: ``1 + L (kh - 1) >= H - 1`` rows and
``L * (kw // 2) >= W - 1`` columns each side; the current row: ``1 + L (kh_w - 1) >= W - 1`` columns).

A FlatVAE's sequence of chunk codes is a 1 x n map: only the horizontal stack is built.
Logits come from two 1x1 convolutions on the horizontal stack's output.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .prior import CodePrior


def _gate(x: torch.Tensor) -> torch.Tensor:
    a, b = x.chunk(2, dim=1)
    return torch.tanh(a) * torch.sigmoid(b)


def shift_right(e: torch.Tensor) -> torch.Tensor:
    """(N, C, H, W) -> column c holds column c - 1 (zeros in column 0): the horizontal stack's input."""
    return F.pad(e, (1, 0, 0, 0))[:, :, :, :-1]


def shift_down(e: torch.Tensor) -> torch.Tensor:
    """(N, C, H, W) -> row r holds row r - 1 (zeros in row 0): the vertical stack's input."""
    return F.pad(e, (0, 0, 1, 0))[:, :, :-1, :]


def kernel_sizes(height: int, width: int, n_layers: int) -> tuple[int, int, int]:
    """(kh, kw) of the vertical stack and the width of the horizontal kernels, for full coverage."""
    kh = 1 + max(1, math.ceil(max(height - 2, 0) / n_layers))
    kw = 2 * max(1, math.ceil(max(width - 1, 0) / n_layers)) + 1
    kh_w = 1 + max(1, math.ceil(max(width - 2, 0) / n_layers))
    return kh, kw, kh_w


class GatedLayer(nn.Module):
    """One gated layer of both stacks."""

    def __init__(self, channels: int, kh: int, kw: int, kh_w: int, vertical: bool) -> None:
        super().__init__()
        self.kh, self.kw, self.kh_w = kh, kw, kh_w
        if vertical:
            self.v_conv = nn.Conv2d(channels, 2 * channels, (kh, kw))
            self.v_to_h = nn.Conv2d(2 * channels, 2 * channels, 1)
        self.h_conv = nn.Conv2d(channels, 2 * channels, (1, kh_w))
        self.h_out = nn.Conv2d(channels, channels, 1)

    def vertical(self, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Vertical stack: the gated output and the projection passed to the horizontal stack."""
        vc = self.v_conv(F.pad(v, (self.kw // 2, self.kw // 2, self.kh - 1, 0)))
        return _gate(vc), self.v_to_h(vc)

    def horizontal(self, h: torch.Tensor, vh: torch.Tensor | None) -> torch.Tensor:
        """Horizontal stack (residual), given the vertical stack's projection ``vh`` at the same rows."""
        hc = self.h_conv(F.pad(h, (self.kh_w - 1, 0, 0, 0)))
        if vh is not None:
            hc = hc + vh
        return h + self.h_out(_gate(hc))


class GatedPixelCNN(CodePrior):
    """Gated PixelCNN prior over (N, H, W) code grids or (N, L) code sequences with ``k`` codes."""

    kind = "pixelcnn"

    def __init__(self, k: int, shape: tuple[int, ...], channels: int = 64, n_layers: int = 6) -> None:
        super().__init__(k, shape)
        for name, value, lo in (("channels", channels, 1), ("n_layers", n_layers, 1)):
            if isinstance(value, bool) or not isinstance(value, int) or value < lo:
                raise ValueError(f"parameter '{name}' is {value!r}; allowed: an integer >= {lo}")
        self.grid = self.shape if len(self.shape) == 2 else (1, self.shape[0])
        height, width = self.grid
        self.kernels = kernel_sizes(height, width, n_layers)
        self.vertical = height > 1
        self.embed = nn.Embedding(k, channels)
        self.layers = nn.ModuleList(GatedLayer(channels, *self.kernels, vertical=self.vertical)
                                    for _ in range(n_layers))
        self.head = nn.Sequential(nn.ReLU(), nn.Conv2d(channels, channels, 1), nn.ReLU(),
                                  nn.Conv2d(channels, k, 1))

    def _logit_map(self, grid: torch.Tensor) -> torch.Tensor:
        """(N, h, W) codes, h <= H rows -> (N, K, h, W) logits (rows below are never needed)."""
        e = self.embed(grid).permute(0, 3, 1, 2)
        h, v = shift_right(e), shift_down(e)  # strictly left, strictly above
        for layer in self.layers:
            vh = None
            if self.vertical:
                v, vh = layer.vertical(v)
            h = layer.horizontal(h, vh)
        return self.head(h)

    def logits(self, codes: torch.Tensor) -> torch.Tensor:
        codes = self.check_codes(codes)
        out = self._logit_map(codes.view(len(codes), *self.grid))
        return out.flatten(2).transpose(1, 2)

    def _sample_codes(self, m: int, temperature: float, gen: torch.Generator, device: torch.device
                      ) -> torch.Tensor:
        """Row by row. The vertical stack of row ``r`` only reads rows above, so it runs once per row;
        each position then needs the horizontal stack over the row's columns ``<= c`` only."""
        height, width = self.grid
        grid = torch.zeros(m, height, width, dtype=torch.long, device=device)
        for r in range(height):
            vhs: list[torch.Tensor | None] = [None] * len(self.layers)
            if self.vertical:
                v = shift_down(self.embed(grid[:, :r + 1]).permute(0, 3, 1, 2))
                for i, layer in enumerate(self.layers):
                    v, vh = layer.vertical(v)
                    vhs[i] = vh[:, :, r:r + 1]
            for c in range(width):
                h = shift_right(self.embed(grid[:, r:r + 1, :c + 1]).permute(0, 3, 1, 2))
                for layer, vh in zip(self.layers, vhs):
                    h = layer.horizontal(h, None if vh is None else vh[:, :, :, :c + 1])
                logits = self.head(h[:, :, :, c:c + 1])[:, :, 0, 0]
                grid[:, r, c] = self._draw(logits, temperature, gen).to(device)
        return grid.view(m, -1)
