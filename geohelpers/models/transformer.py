"""A decoder-only Transformer over raster-ordered code maps (Vaswani et al., 2017; GPT-style, pre-norm).

The input is ``[s, c_0, ..., c_{n-2}]``: a learned start token ``s`` followed by the codes shifted by
one; output ``i`` predicts ``c_i``. Each input token gets a token embedding plus a learned position
embedding. Every block is

    x <- x + Attn(LN(x)),   x <- x + MLP(LN(x)),   MLP(x) = W_2 GELU(W_1 x),  W_1: d -> 4d,

where ``Attn`` is multi-head causal self-attention (position i attends to positions <= i, i.e. to the
start token and ``c_<i``). There is no encoder and no cross-attention. Logits are a linear map of the
final layer norm.

Attention is ``softmax(Q K^T / sqrt(d_head) + M) V`` with ``M`` the causal mask (``-inf`` above the
diagonal). It is computed by PyTorch's fused ``scaled_dot_product_attention``, except under bf16 autocast
on the CPU, where the same formula is written out (two batched matrix products and a masked softmax):
on these short maps the fused CPU kernel makes a bf16 step slower than a float32 one, the written-out
form faster (measured side by side in ``benchmarks/results/train_step.txt``).

Sampling keeps each block's keys and values (a KV cache), so drawing a map costs one token's forward
pass per position rather than one pass over the whole prefix.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .prior import CodePrior


def attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, causal: bool) -> torch.Tensor:
    """``softmax(q k^T / sqrt(d_head) [+ causal mask]) v`` over (N, heads, length, d_head) tensors; a causal
    mask lets query ``i`` see keys ``<= i`` (queries and keys of the same length). Fused, except under bf16
    autocast on the CPU (:func:`written_out_attention`)."""
    if q.device.type == "cpu" and torch.is_autocast_enabled("cpu"):
        return written_out_attention(q, k, v, causal)
    return F.scaled_dot_product_attention(q, k, v, is_causal=causal)


def written_out_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, causal: bool) -> torch.Tensor:
    """:func:`attention` as two batched matrix products around a (masked) softmax."""
    scores = (q @ k.transpose(-1, -2)) * q.shape[-1] ** -0.5
    if causal:
        future = torch.ones(q.shape[-2], k.shape[-2], dtype=torch.bool, device=q.device).triu(1)
        scores = scores.masked_fill(future, float("-inf"))
    return scores.softmax(-1) @ v


class Block(nn.Module):
    """Pre-norm causal self-attention and MLP, with an optional key/value cache for sampling."""

    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.ln1, self.ln2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        self.mlp = nn.Sequential(nn.Linear(dim, 4 * dim), nn.GELU(), nn.Linear(4 * dim, dim))

    def _split(self, t: torch.Tensor) -> torch.Tensor:
        n, length, d = t.shape
        return t.view(n, length, self.heads, d // self.heads).transpose(1, 2)

    def forward(self, x: torch.Tensor, cache: dict | None = None) -> torch.Tensor:
        q, k, v = self.qkv(self.ln1(x)).chunk(3, dim=-1)
        q, k, v = self._split(q), self._split(k), self._split(v)
        if cache is not None:  # incremental: x holds the newest token(s) only
            if "k" in cache:
                k, v = torch.cat([cache["k"], k], 2), torch.cat([cache["v"], v], 2)
            cache["k"], cache["v"] = k, v
            att = attention(q, k, v, causal=False)  # the new token may see every cached one
        else:
            att = attention(q, k, v, causal=True)
        x = x + self.proj(att.transpose(1, 2).reshape(x.shape))
        return x + self.mlp(self.ln2(x))


class CodeTransformer(CodePrior):
    """Causal Transformer prior over (N, *shape) code maps with ``k`` codes, read in raster order."""

    kind = "transformer"

    def __init__(self, k: int, shape: tuple[int, ...], dim: int = 64, n_layers: int = 2, heads: int = 4) -> None:
        super().__init__(k, shape)
        for name, value in (("dim", dim), ("n_layers", n_layers), ("heads", heads)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"parameter '{name}' is {value!r}; allowed: an integer >= 1")
        if dim % heads:
            raise ValueError(f"parameter 'dim' ({dim}) must be divisible by 'heads' ({heads})")
        self.start = k  # token id of the start token
        self.tok = nn.Embedding(k + 1, dim)
        self.pos = nn.Parameter(torch.zeros(1, self.n_positions, dim))
        nn.init.normal_(self.pos, std=0.02)
        self.blocks = nn.ModuleList(Block(dim, heads) for _ in range(n_layers))
        self.ln = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, k)

    def logits(self, codes: torch.Tensor) -> torch.Tensor:
        codes = self.check_codes(codes).view(len(codes), -1)
        inputs = torch.cat([torch.full_like(codes[:, :1], self.start), codes[:, :-1]], 1)
        x = self.tok(inputs) + self.pos
        for block in self.blocks:
            x = block(x)
        return self.head(self.ln(x))

    def _sample_codes(self, m: int, temperature: float, gen: torch.Generator, device: torch.device
                      ) -> torch.Tensor:
        caches: list[dict] = [{} for _ in self.blocks]
        token = torch.full((m, 1), self.start, dtype=torch.long, device=device)
        codes = torch.empty(m, self.n_positions, dtype=torch.long, device=device)
        for i in range(self.n_positions):
            x = self.tok(token) + self.pos[:, i:i + 1]
            for block, cache in zip(self.blocks, caches):
                x = block(x, cache)
            codes[:, i] = self._draw(self.head(self.ln(x))[:, -1], temperature, gen).to(device)
            token = codes[:, i:i + 1]
        return codes
