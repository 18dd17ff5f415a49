"""Training speed of the book's models, today's implementation against candidates, side by side in one run.

For each model, every implementation trains a fresh copy (same seed, same batches, same optimizer) for
``--steps`` steps; implementations alternate A, B, A, B, ... over ``--repeats`` repeats so that machine
noise hits all of them. Printed per implementation: the median throughput (codes per second for the
priors, images per second for the image models), its ratio to today's, and the validation loss after the
fixed number of steps (the same data seen: a faster implementation must not learn less per step).

Candidates measured here (see the issue on fast priors): bf16 autocast (this CPU has AMX; it is
``geohelpers.train.fit(precision="bf16")``, and under it the Transformer writes its attention out instead of
calling the fused kernel) and ``torch.compile``.

To tell an implementation that wastes the machine from one that is limited by its arithmetic, each model's
line also gives the floating-point operations of its training step (forward and backward, counted by
``torch.utils.flop_counter`` on today's float32 step, so every candidate is credited with the same work)
per second, and the report starts with the rate of a large matrix product on the same threads, in float32
and in bf16: what this CPU can do at best.

The priors train on real code maps when ``--codes`` names a stored ``.npz`` (e.g.
``artifacts/standard/codes/grid_kmeans_K512.npz``), else on synthetic maps with structure (each row
repeats a code drawn per map, so context helps).

    python benchmarks/train_step.py --codes artifacts/standard/codes/grid_kmeans_K512.npz --threads 1
    python benchmarks/train_step.py --tiny          # a few steps of tiny models (the test suite runs this)
"""

from __future__ import annotations

import argparse
import statistics
import time
from typing import Callable

import numpy as np
import torch


def synthetic_codes(n: int, k: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    rows = rng.integers(0, k, size=(n, 7, 1))
    noise = rng.random((n, 7, 7)) < 0.2
    return np.where(noise, rng.integers(0, k, size=(n, 7, 7)), np.broadcast_to(rows, (n, 7, 7)))


def load_codes(path: str | None, k: int, n: int) -> tuple[torch.Tensor, torch.Tensor, int]:
    if path:
        with np.load(path) as z:
            train, val = z["train"].astype(np.int64), z["val"].astype(np.int64)
        return torch.from_numpy(train), torch.from_numpy(val), int(max(train.max(), val.max())) + 1
    codes = synthetic_codes(n + n // 5, k)
    return torch.from_numpy(codes[:n]), torch.from_numpy(codes[n:]), k


def matmul_rate(dtype: torch.dtype, n: int = 2048, repeats: int = 5) -> float:
    """GFLOP/s of an ``n x n`` by ``n x n`` matrix product (``2 n^3`` operations), the best of ``repeats``."""
    a, b = torch.randn(n, n).to(dtype), torch.randn(n, n).to(dtype)
    a @ b
    best = min(_timed(lambda: a @ b) for _ in range(repeats))
    return 2 * n ** 3 / best / 1e9


def _timed(fn: Callable[[], object]) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def step_flops(make: Callable[[], torch.nn.Module], batch: tuple[torch.Tensor, ...]) -> int:
    """Floating-point operations of one float32 training step (forward and backward) on ``batch``."""
    from torch.utils.flop_counter import FlopCounterMode

    model = make()
    with FlopCounterMode(display=False) as counter:
        model.loss(batch)[0].backward()
    return int(counter.get_total_flops())


def train_run(make: Callable[[], torch.nn.Module], batches: list[tuple[torch.Tensor, ...]], val: tuple[torch.Tensor, ...],
              precision: str, compiled: bool, lr: float, warmup: int = 2) -> tuple[float, float]:
    """Seconds per step (after ``warmup`` steps) and the validation loss after all steps."""
    from geohelpers.train import autocast

    torch.manual_seed(0)
    model = make()
    step = torch.compile(model.loss) if compiled else model.loss
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    t0 = 0.0
    for i, batch in enumerate(batches):
        if i == warmup:
            t0 = time.perf_counter()
        with autocast(precision, torch.device("cpu")):
            loss, _ = step(batch)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    seconds = (time.perf_counter() - t0) / max(1, len(batches) - warmup)
    model.eval()
    with torch.no_grad():
        val_loss = float(model.loss(val)[0])
    return seconds, val_loss


def main(argv: list[str] | None = None) -> str:
    from geohelpers.config import resolve
    from geohelpers.data import load_mnist
    from geohelpers.models.pixelcnn import GatedPixelCNN
    from geohelpers.models.transformer import CodeTransformer
    from geohelpers.models.vae import build_vae
    from geohelpers.stages.vqvaes import vqvae_model

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--codes", default=None, help="stored code maps (.npz with train and val)")
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--tiny", action="store_true", help="tiny models and few steps (a smoke test)")
    parser.add_argument("--out", default=None, help="also write the report to this file")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    std = resolve("quick" if args.tiny else "standard")
    p = std.prior
    steps, repeats = (3, 1) if args.tiny else (args.steps, args.repeats)
    train_codes, val_codes, k = load_codes(args.codes, 32 if args.tiny else 512, 4096 if args.tiny else 20_000)
    bs = 32 if args.tiny else p.batch_size
    gen = torch.Generator().manual_seed(0)
    order = torch.randperm(len(train_codes), generator=gen)
    code_batches = [(train_codes[order[(i * bs) % len(order):(i * bs) % len(order) + bs]],) for i in range(steps + 2)]
    code_val = (val_codes[:64 if args.tiny else 2000],)
    if args.tiny:
        x = torch.rand(256, 1, 28, 28, generator=gen)
        x_val = torch.rand(16, 1, 28, 28, generator=gen)
    else:
        mnist = load_mnist(std.data)
        x, x_val = mnist.train_x[:20_000], mnist.val_x[:2000]
    g = std.grid_vae
    ibs = 16 if args.tiny else g.batch_size
    image_batches = [(x[(i * ibs) % len(x):(i * ibs) % len(x) + ibs],) for i in range(steps + 2)]
    models = {
        "PixelCNN": (lambda: GatedPixelCNN(k, (7, 7), p.pixelcnn_channels, p.pixelcnn_layers), code_batches, code_val,
                     p.lr, 49 * bs, "codes"),
        "Transformer": (lambda: CodeTransformer(k, (7, 7), p.transformer_dim, p.transformer_layers, p.transformer_heads),
                        code_batches, code_val, p.lr, 49 * bs, "codes"),
        "GridVAE": (lambda: build_vae("grid", g), image_batches, (x_val,), g.lr, ibs, "images"),
        "VQ-VAE ema_restart": (lambda: vqvae_model("ema_restart", max(std.vqvae.ks), std), image_batches, (x_val,),
                               std.vqvae.lr, ibs, "images"),
    }
    candidates = [("today (fp32)", "fp32", False), ("bf16 autocast", "bf16", False),
                  ("torch.compile (fp32)", "fp32", True)]
    if args.tiny:
        candidates = candidates[:2]
    lines = [f"# train_step: torch {torch.__version__}, {torch.get_num_threads()} torch threads, {steps} steps x "
             f"{repeats} repeats, codes: {args.codes or 'synthetic'}",
             f"# this CPU at best, same threads: a 2048 x 2048 matrix product runs at {matmul_rate(torch.float32):.0f} "
             f"GFLOP/s in float32 and {matmul_rate(torch.bfloat16):.0f} GFLOP/s in bf16"]
    for name, (make, batches, val, lr, units, unit) in models.items():
        times: dict[str, list[float]] = {c[0]: [] for c in candidates}
        losses: dict[str, float] = {}
        failed: dict[str, str] = {}
        for _ in range(repeats):
            for label, precision, compiled in candidates:
                if label in failed:
                    continue
                try:
                    sec, loss = train_run(make, batches, val, precision, compiled, lr)
                except Exception as err:  # a candidate this model does not support: say so, go on
                    failed[label] = f"{type(err).__name__}: {str(err).splitlines()[0][:120]}"
                    continue
                times[label].append(sec)
                losses[label] = loss
        base = statistics.median(times[candidates[0][0]])
        flops = step_flops(make, batches[0])
        lines.append(f"\n{name} (batch {units // 49 if unit == 'codes' else units}, {unit} per second, median; "
                     f"{flops / 1e9:.2f} GFLOP per step):")
        for label, *_ in candidates:
            if label in failed:
                lines.append(f"  {label:<24} fails: {failed[label]}")
                continue
            med = statistics.median(times[label])
            lines.append(f"  {label:<24} {units / med:10.0f} {unit}/s   x{base / med:4.2f}   "
                         f"{flops / med / 1e9:6.1f} GFLOP/s   val loss after {steps} steps {losses[label]:.4f}")
    report = "\n".join(lines)
    print(report)
    if args.out:
        with open(args.out, "w") as fh:
            fh.write(report + "\n")
    return report


if __name__ == "__main__":
    main()
