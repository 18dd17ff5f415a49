"""Training speed of the book's models, today's implementation against candidates, side by side in one run.

For each model, every implementation trains a fresh copy (same seed, same batches, same optimizer) for
``--steps`` steps; implementations alternate A, B, A, B, ... over ``--repeats`` repeats so that machine
noise hits all of them. Printed per implementation: the median throughput (codes per second for the
priors, images per second for the image models), its ratio to today's, and the validation loss after the
fixed number of steps (the same data seen: a faster implementation must not learn less per step).

Candidates measured here (see the issue on fast priors): bf16 autocast (this CPU has AMX) and
``torch.compile``. The priors train on real code maps when ``--codes`` names a stored ``.npz`` (e.g.
``artifacts/standard/codes/grid_kmeans_K512.npz``), else on synthetic maps with structure (each row
repeats a code drawn per map, so context helps).

    python benchmarks/train_step.py --codes artifacts/standard/codes/grid_kmeans_K512.npz --threads 1
    python benchmarks/train_step.py --tiny          # a few steps of tiny models (the test suite runs this)
"""

from __future__ import annotations

import argparse
import statistics
import time
from contextlib import nullcontext
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


def autocast(kind: str):
    return torch.autocast("cpu", dtype=torch.bfloat16) if kind == "bf16" else nullcontext()


def train_run(make: Callable[[], torch.nn.Module], batches: list[tuple[torch.Tensor, ...]], val: tuple[torch.Tensor, ...],
              precision: str, compiled: bool, lr: float, warmup: int = 2) -> tuple[float, float]:
    """Seconds per step (after ``warmup`` steps) and the validation loss after all steps."""
    torch.manual_seed(0)
    model = make()
    step = torch.compile(model.loss) if compiled else model.loss
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    t0 = 0.0
    for i, batch in enumerate(batches):
        if i == warmup:
            t0 = time.perf_counter()
        with autocast(precision):
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
    from geohelpers.pipeline import vqvae_model

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
             f"{repeats} repeats, codes: {args.codes or 'synthetic'}"]
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
        lines.append(f"\n{name} (batch {units // 49 if unit == 'codes' else units}, {unit} per second, median):")
        for label, *_ in candidates:
            if label in failed:
                lines.append(f"  {label:<24} fails: {failed[label]}")
                continue
            med = statistics.median(times[label])
            lines.append(f"  {label:<24} {units / med:10.0f} {unit}/s   x{base / med:4.2f}   "
                         f"val loss after {steps} steps {losses[label]:.4f}")
    report = "\n".join(lines)
    print(report)
    if args.out:
        with open(args.out, "w") as fh:
            fh.write(report + "\n")
    return report


if __name__ == "__main__":
    main()
