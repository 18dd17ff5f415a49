"""Training speed of the book's models, today's implementation against candidates, side by side in one run.

For each model, every implementation trains a fresh copy (same seed, same batches, same optimizer) for
``--steps`` steps; implementations alternate A, B, A, B, ... over ``--repeats`` repeats so that machine
noise hits all of them. Printed per implementation: the median throughput (codes per second for the
priors, images per second for the image models), its ratio to today's, and the validation loss after the
fixed number of steps (the same data seen: a faster implementation must not learn less per step).

Candidates measured here (see the issue on fast priors): bf16 autocast (it is
``geohelpers.train.fit(precision="bf16")``, and under it the Transformer writes its attention out instead of
calling the fused kernel), ``torch.compile`` in float32 and under bf16, and, for the PixelCNN, the gated
layers rewritten as matrix products in NHWC (:func:`nhwc_logit_map`: each layer's taps gathered once, the
horizontal convolution and the vertical stack's projection in one product, the same parameters and the same
function to float rounding) under compile and bf16. Compile's warm-up (the first steps, paid once per
stage) is reported apart from the steps' rate.

To tell an implementation that wastes the machine from one that is limited by its arithmetic, each model's
line also gives the floating-point operations of its training step (forward and backward, counted by
``torch.utils.flop_counter`` on today's float32 step, so every candidate is credited with the same work)
per second, and the report starts with the rate of a large matrix product on the same threads, in float32
and in bf16: what this CPU can do at best.

The priors train on real code maps when ``--codes`` names a stored ``.npz`` (e.g.
``artifacts/standard/codes/grid_kmeans_K512.npz``), else on synthetic maps with structure (each row
repeats a code drawn per map, so context helps).

    python benchmarks/train_step.py --codes artifacts/standard/codes/grid_kmeans_K512.npz --threads 1
    python benchmarks/train_step.py --threads 1 --compile --models PixelCNN Transformer --steps 24 --repeats 2
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


def _taps(x: torch.Tensor, kh: int, left: int, right: int) -> torch.Tensor:
    """(N, H, W, C) -> (N, H, W, kh (left + right + 1) C): at every (r, c) the inputs of rows r - kh + 1 .. r and
    columns c - left .. c + right (zeros outside), in the order of a Conv2d weight permuted to (out, kh, kw, in)."""
    n, h, w, _ = x.shape
    xp = torch.nn.functional.pad(x, (0, 0, left, right, kh - 1, 0))
    return torch.cat([xp[:, dy:dy + h, dx:dx + w] for dy in range(kh) for dx in range(left + right + 1)], dim=-1)


def _flat(conv: torch.nn.Conv2d) -> torch.Tensor:
    return conv.weight.permute(0, 2, 3, 1).reshape(conv.weight.shape[0], -1)


def nhwc_logit_map(model: torch.nn.Module, grid: torch.Tensor) -> torch.Tensor:
    """The gated PixelCNN's (N, H, W) codes -> (N, H, W, K) logits with its own parameters, as matrix products in
    NHWC: per layer, the vertical convolution over its gathered taps, then one product of [horizontal taps,
    vertical pre-activation] with [W_h, W_vh] (the horizontal convolution plus the 1x1 projection), the gate,
    the residual 1x1; then the head. Equal to ``GatedPixelCNN._logit_map`` to float rounding."""
    from torch.nn.functional import linear, pad

    def gate(x: torch.Tensor) -> torch.Tensor:
        a, b = x.chunk(2, dim=-1)
        return torch.tanh(a) * torch.sigmoid(b)

    e = model.embed(grid)
    h, v = pad(e, (0, 0, 1, 0))[:, :, :-1], pad(e, (0, 0, 0, 0, 1, 0))[:, :-1]
    for layer in model.layers:
        hin = _taps(h, 1, layer.kh_w - 1, 0)
        if model.vertical:
            vc = linear(_taps(v, layer.kh, layer.kw // 2, layer.kw // 2), _flat(layer.v_conv), layer.v_conv.bias)
            v = gate(vc)
            weight = torch.cat([_flat(layer.h_conv), layer.v_to_h.weight[:, :, 0, 0]], dim=1)
            hc = linear(torch.cat([hin, vc], dim=-1), weight, layer.h_conv.bias + layer.v_to_h.bias)
        else:
            hc = linear(hin, _flat(layer.h_conv), layer.h_conv.bias)
        h = h + linear(gate(hc), layer.h_out.weight[:, :, 0, 0], layer.h_out.bias)
    x = torch.relu(linear(torch.relu(h), model.head[1].weight[:, :, 0, 0], model.head[1].bias))
    return linear(x, model.head[3].weight[:, :, 0, 0], model.head[3].bias)


def nhwc_loss(model: torch.nn.Module) -> Callable[[tuple[torch.Tensor, ...]], tuple[torch.Tensor, dict]]:
    """The PixelCNN's training loss (mean NLL per token) through :func:`nhwc_logit_map`."""
    def loss(batch: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, dict]:
        codes = batch[0].long()
        logits = nhwc_logit_map(model, codes.view(len(codes), *model.grid))
        return torch.nn.functional.cross_entropy(logits.reshape(-1, model.k), codes.reshape(-1)), {}
    return loss


def train_run(make: Callable[[], torch.nn.Module], batches: list[tuple[torch.Tensor, ...]], val: tuple[torch.Tensor, ...],
              precision: str, compiled: bool, lr: float, warmup: int = 2, nhwc: bool = False
              ) -> tuple[float, float, float]:
    """Seconds per step (after ``warmup`` steps), the validation loss after all steps and the seconds of the
    ``warmup`` steps (compile's warm-up, paid once per stage)."""
    from geohelpers.train import autocast

    torch.manual_seed(0)
    model = make()
    loss_fn = nhwc_loss(model) if nhwc else model.loss
    step = torch.compile(loss_fn) if compiled else loss_fn
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    t0 = start = time.perf_counter()
    warm = 0.0
    for i, batch in enumerate(batches):
        if i == warmup:
            t0 = time.perf_counter()
            warm = t0 - start
        with autocast(precision, torch.device("cpu")):
            loss, _ = step(batch)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    seconds = (time.perf_counter() - t0) / max(1, len(batches) - warmup)
    model.eval()
    with torch.no_grad():
        val_loss = float(model.loss(val)[0])
    return seconds, val_loss, warm


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
    parser.add_argument("--models", nargs="+", default=None, metavar="NAME",
                        help="only these models (PixelCNN, Transformer, GridVAE, 'VQ-VAE ema_restart')")
    parser.add_argument("--compile", action="store_true",
                        help="the compiled candidates too (each pays compile's warm-up, about a minute, per repeat)")
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
    if args.models:
        unknown = sorted(set(args.models) - set(models))
        if unknown:
            parser.error(f"--models: unknown {', '.join(unknown)}; allowed: {', '.join(models)}")
        models = {name: spec for name, spec in models.items() if name in args.models}
    # (label, precision, compiled, NHWC products); today's training is bf16 autocast at standard
    candidates = [("today (fp32)", "fp32", False, False), ("bf16 autocast", "bf16", False, False)]
    if args.compile and not args.tiny:
        candidates += [("torch.compile (fp32)", "fp32", True, False), ("torch.compile + bf16", "bf16", True, False),
                       ("NHWC products + compile + bf16", "bf16", True, True)]
    lines = [f"# train_step: torch {torch.__version__}, {torch.get_num_threads()} torch threads, {steps} steps x "
             f"{repeats} repeats, codes: {args.codes or 'synthetic'}",
             f"# this CPU at best, same threads: a 2048 x 2048 matrix product runs at {matmul_rate(torch.float32):.0f} "
             f"GFLOP/s in float32 and {matmul_rate(torch.bfloat16):.0f} GFLOP/s in bf16"]
    for name, (make, batches, val, lr, units, unit) in models.items():
        times: dict[str, list[float]] = {c[0]: [] for c in candidates}
        warms: dict[str, list[float]] = {c[0]: [] for c in candidates}
        losses: dict[str, float] = {}
        failed: dict[str, str] = {}
        for label, _, _, nhwc in candidates:
            if nhwc and name != "PixelCNN":
                failed[label] = "not applicable (a PixelCNN formulation)"
        for _ in range(repeats):
            for label, precision, compiled, nhwc in candidates:
                if label in failed:
                    continue
                try:
                    sec, loss, warm = train_run(make, batches, val, precision, compiled, lr, nhwc=nhwc)
                except Exception as err:  # a candidate this model does not support: say so, go on
                    failed[label] = f"{type(err).__name__}: {str(err).splitlines()[0][:120]}"
                    continue
                times[label].append(sec)
                warms[label].append(warm)
                losses[label] = loss
        base = statistics.median(times[candidates[0][0]])
        today = statistics.median(times["bf16 autocast"]) if times.get("bf16 autocast") else base
        flops = step_flops(make, batches[0])
        lines.append(f"\n{name} (batch {units // 49 if unit == 'codes' else units}, {unit} per second, median; "
                     f"{flops / 1e9:.2f} GFLOP per step):")
        for label, *_ in candidates:
            if label in failed:
                lines.append(f"  {label:<24} fails: {failed[label]}")
                continue
            med = statistics.median(times[label])
            compiled = next(c[2] for c in candidates if c[0] == label)
            warm = f"   warm-up {statistics.median(warms[label]):5.1f} s" if compiled else ""
            lines.append(f"  {label:<31} {units / med:10.0f} {unit}/s   x{base / med:4.2f} (x{today / med:4.2f} over "
                         f"bf16)   {flops / med / 1e9:6.1f} GFLOP/s   val loss after {steps} steps "
                         f"{losses[label]:.4f}{warm}")
    report = "\n".join(lines)
    print(report)
    if args.out:
        with open(args.out, "w") as fh:
            fh.write(report + "\n")
    return report


if __name__ == "__main__":
    main()
