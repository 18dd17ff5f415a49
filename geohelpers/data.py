"""MNIST from the project's own verified copy, held in memory and batched by index.

The four IDX files live gzip-compressed in ``data/MNIST/raw/`` (committed with the project; nothing is
downloaded). :func:`ensure_mnist` decompresses each one next to its ``.gz``, which is exactly where
``torchvision.datasets.MNIST(root="data")`` reads them, and checks the md5 of the *uncompressed* content
against the canonical MNIST values.

:func:`load_mnist` returns float32 tensors in [0, 1] of shape (N, 1, 28, 28): a fixed, seeded split of the
60,000 training images into 55,000 for training and 5,000 for validation, and the 10,000 test images,
which are only ever used for evaluation. :class:`Batches` serves them by slicing with index tensors, with
no per-item Python work (no PIL, no ``ToTensor``); ``benchmarks/train_throughput.py`` measures what that
buys.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np
import torch

from . import files
from .config import DataConfig

#: Uncompressed file name -> (bytes, md5) of the canonical MNIST files.
MNIST_FILES: dict[str, tuple[int, str]] = {
    "train-images-idx3-ubyte": (47_040_016, "6bbc9ace898e44ae57da46a324031adb"),
    "train-labels-idx1-ubyte": (60_008, "a25bea736e30d166cdddb491f175f624"),
    "t10k-images-idx3-ubyte": (7_840_016, "2646ac647ad5339dbf082846283269ea"),
    "t10k-labels-idx1-ubyte": (10_008, "27ae3e4e09519cfbb04c329615203637"),
}
N_TRAIN_FULL, N_VAL, N_TEST = 55_000, 5_000, 10_000


class MNISTDataError(RuntimeError):
    """A file of the project's MNIST copy is missing or corrupt."""


def project_root() -> Path:
    """The repository root (the package is installed in editable mode from it)."""
    return Path(__file__).resolve().parents[1]


def data_root() -> Path:
    """Folder holding ``MNIST/raw``; ``$GEOVQ_DATA`` overrides the project's ``data/``."""
    return Path(os.environ.get("GEOVQ_DATA", project_root() / "data"))


def _md5(path: Path) -> str:
    h = hashlib.md5()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 22), b""):
            h.update(block)
    return h.hexdigest()


def _restore_hint(gz: Path) -> str:
    return (f"restore it with `git checkout -- data/MNIST/raw/{gz.name}` from the project root "
            f"(or copy the original MNIST file of that name into {gz.parent})")


def ensure_mnist(root: str | Path | None = None) -> Path:
    """Decompress and verify the four MNIST files; return the ``MNIST/raw`` folder.

    An uncompressed file whose md5 already matches is left alone, so this is cheap after the first call.
    Raises :class:`MNISTDataError` naming the file and how to restore it when a ``.gz`` is missing,
    unreadable, or decompresses to content with the wrong md5.
    """
    raw = Path(root or data_root()) / "MNIST" / "raw"
    for name, (size, md5) in MNIST_FILES.items():
        out, gz = raw / name, raw / (name + ".gz")
        if out.exists() and out.stat().st_size == size and _md5(out) == md5:
            continue
        if not gz.exists():
            raise MNISTDataError(f"MNIST file {gz} is missing; {_restore_hint(gz)}")
        try:
            with gzip.open(gz, "rb") as src:
                content = src.read()
        except (OSError, EOFError, zlib.error) as err:
            raise MNISTDataError(f"MNIST file {gz} is corrupt ({err}); {_restore_hint(gz)}") from err
        if hashlib.md5(content).hexdigest() != md5:
            raise MNISTDataError(
                f"MNIST file {gz} is corrupt: its content's md5 is not {md5}; {_restore_hint(gz)}")
        # atomic: processes that unpack at once (a sweep's points, a second run beside the book's) each
        # write a temporary file of their own and rename it into place, never one another's
        files.atomic_write(out, content)
    return raw


def _read_idx(path: Path) -> np.ndarray:
    """Parse an IDX file (big-endian header: magic, dims) into a uint8 array."""
    buf = path.read_bytes()
    ndim = buf[3]
    shape = tuple(int.from_bytes(buf[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    return np.frombuffer(buf, dtype=np.uint8, offset=4 + 4 * ndim).reshape(shape)


@dataclass(frozen=True)
class MNIST:
    """In-memory MNIST: images float32 (N, 1, 28, 28) in [0, 1], labels int64 (N,)."""

    train_x: torch.Tensor
    train_y: torch.Tensor
    val_x: torch.Tensor
    val_y: torch.Tensor
    test_x: torch.Tensor
    test_y: torch.Tensor

    def sizes(self) -> dict[str, int]:
        return {"train": len(self.train_x), "val": len(self.val_x), "test": len(self.test_x)}


def split_indices(split_seed: int) -> tuple[np.ndarray, np.ndarray]:
    """The fixed 55,000 / 5,000 train/validation split of the 60,000 training images."""
    perm = np.random.default_rng(split_seed).permutation(N_TRAIN_FULL + N_VAL)
    return perm[:N_TRAIN_FULL], perm[N_TRAIN_FULL:]


def load_mnist(cfg: DataConfig | None = None, root: str | Path | None = None) -> MNIST:
    """Load, verify and split MNIST; ``cfg.n_*`` keep the first images of each part."""
    cfg = cfg or DataConfig()
    raw = ensure_mnist(root)

    def images(name: str) -> torch.Tensor:
        return torch.from_numpy(_read_idx(raw / name).astype(np.float32) / 255.0).unsqueeze(1)

    def labels(name: str) -> torch.Tensor:
        return torch.from_numpy(_read_idx(raw / name).astype(np.int64))

    x, y = images("train-images-idx3-ubyte"), labels("train-labels-idx1-ubyte")
    tr, va = (torch.from_numpy(i) for i in split_indices(cfg.split_seed))
    tr, va = tr[: cfg.n_train], va[: cfg.n_val]
    tx, ty = images("t10k-images-idx3-ubyte"), labels("t10k-labels-idx1-ubyte")
    return MNIST(x[tr], y[tr], x[va], y[va], tx[: cfg.n_test].contiguous(), ty[: cfg.n_test].contiguous())


class Batches:
    """Mini-batches of in-memory tensors, selected by index.

    ``epoch(e)`` yields the batches of epoch ``e``; with ``shuffle`` the order is a permutation drawn from
    a generator seeded with ``(seed, e)``, so any epoch can be replayed exactly, which makes resuming
    from a checkpoint bit-identical to an uninterrupted run. Iterating the object directly gives epoch 0.
    """

    def __init__(self, *tensors: torch.Tensor, batch_size: int, shuffle: bool = False, seed: int = 0,
                 drop_last: bool = False, device: str | torch.device | None = None) -> None:
        if not tensors or any(len(t) != len(tensors[0]) for t in tensors):
            raise ValueError("Batches needs one or more tensors of equal length")
        if batch_size < 1:
            raise ValueError(f"parameter 'batch_size' must be >= 1, got {batch_size}")
        self.tensors = tuple(t.to(device) if device is not None else t for t in tensors)
        self.batch_size, self.shuffle, self.seed, self.drop_last = batch_size, shuffle, seed, drop_last

    @property
    def n(self) -> int:
        return len(self.tensors[0])

    def __len__(self) -> int:
        full, rest = divmod(self.n, self.batch_size)
        return full + (1 if rest and not self.drop_last else 0)

    def epoch(self, e: int) -> Iterator[tuple[torch.Tensor, ...]]:
        if self.shuffle:
            g = torch.Generator().manual_seed(self.seed * 1_000_003 + e)
            order = torch.randperm(self.n, generator=g).to(self.tensors[0].device)
        else:
            order = None
        for b in range(len(self)):
            if order is None:
                sl = slice(b * self.batch_size, (b + 1) * self.batch_size)
                yield tuple(t[sl] for t in self.tensors)
            else:
                idx = order[b * self.batch_size: (b + 1) * self.batch_size]
                yield tuple(t[idx] for t in self.tensors)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, ...]]:
        return self.epoch(0)
