"""Training throughput of the GridVAE: the project's in-memory input path against torchvision's.

Both paths train the same model (the standard profile's GridVAE, same seed, batch size and optimizer)
for the same number of steps in this one process, alternating A, B, A, B, ... so that machine noise hits
both. Printed: images per second per repeat, the median of each path, and their ratio; then the same for
the input path alone (the batches drawn, no model), which shows what each path costs by itself. The
end-to-end ratio is bounded by ``(compute + input) / compute``: the cheaper the model step, the more the
input path matters.

- in-memory: ``geohelpers.data.Batches`` over the float tensors of ``load_mnist`` (index slicing).
- DataLoader: ``torchvision.datasets.MNIST(transform=ToTensor())`` + ``torch.utils.data.DataLoader``
  (per-item PIL conversion and collation), shuffled, ``num_workers`` as given.

    python benchmarks/train_throughput.py [--steps 150] [--repeats 3] [--workers 0]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
import torchvision
from torch.utils.data import DataLoader
from torchvision.transforms import ToTensor

from geohelpers.config import resolve
from geohelpers.data import Batches, data_root, load_mnist
from geohelpers.models.vae import build_vae
from geohelpers.train import seed_everything


def images_per_second(batches, steps: int, warmup: int = 5) -> float:
    cfg = resolve("standard").grid_vae
    seed_everything(0)
    model = build_vae("grid", cfg)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    it = iter(batches)
    n, t0 = 0, 0.0
    for step in range(warmup + steps):
        if step == warmup:
            t0 = time.perf_counter()
        x = next(it)[0]
        loss, _ = model.loss((x,))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if step >= warmup:
            n += len(x)
    return n / (time.perf_counter() - t0)


def input_images_per_second(batches, steps: int) -> float:
    """Images per second of drawing ``steps`` batches, with no model."""
    it = iter(batches)
    t0, n = time.perf_counter(), 0
    for _ in range(steps):
        n += len(next(it)[0])
    return n / (time.perf_counter() - t0)


def report(title: str, results: dict[str, list[float]]) -> None:
    medians = {name: statistics.median(rates) for name, rates in results.items()}
    print(f"\n{title} (median images/s):")
    for name, m in medians.items():
        print(f"  {name:<40} {m:10.0f}")
    a, b = medians.values()
    print(f"  ratio in-memory / DataLoader: {a / b:.2f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=150)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--workers", type=int, default=0)
    args = parser.parse_args()
    batch = resolve("standard").grid_vae.batch_size
    mnist = load_mnist()
    tv = torchvision.datasets.MNIST(root=str(data_root()), train=True, download=False, transform=ToTensor())

    def in_memory():
        return Batches(mnist.train_x, batch_size=batch, shuffle=True, seed=0).epoch(0)

    def dataloader():
        g = torch.Generator().manual_seed(0)
        return DataLoader(tv, batch_size=batch, shuffle=True, num_workers=args.workers, generator=g)

    names = ("in-memory Batches", f"DataLoader+ToTensor (workers={args.workers})")
    train: dict[str, list[float]] = {name: [] for name in names}
    inputs: dict[str, list[float]] = {name: [] for name in names}
    for r in range(args.repeats):
        for name, make in zip(names, (in_memory, dataloader)):
            train[name].append(images_per_second(make(), args.steps))
            inputs[name].append(input_images_per_second(make(), args.steps))
            print(f"repeat {r + 1}: {name:<36} training {train[name][-1]:7.0f} images/s, "
                  f"input path alone {inputs[name][-1]:9.0f} images/s", flush=True)
    report(f"GridVAE training throughput, batch {batch}, {args.steps} steps x {args.repeats} repeats, "
           f"{torch.get_num_threads()} torch threads", train)
    report("Input path alone, same batches, no model", inputs)


if __name__ == "__main__":
    main()
