import shutil

import numpy as np
import pytest
import torch

from geohelpers.config import DataConfig
from geohelpers.data import MNIST_FILES, Batches, MNISTDataError, data_root, ensure_mnist, load_mnist, split_indices

TEST_LABEL_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
TRAIN_LABEL_COUNTS = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]


@pytest.fixture(scope="module")
def mnist():
    return load_mnist(DataConfig())


def test_files_decompress_where_torchvision_reads_them_with_canonical_checksums():
    raw = ensure_mnist()
    for name, (size, _) in MNIST_FILES.items():
        assert (raw / name).stat().st_size == size
    import torchvision

    tv = torchvision.datasets.MNIST(root=str(data_root()), train=False, download=False)
    assert len(tv) == 10_000
    ours = load_mnist(DataConfig(n_train=1, n_val=1))
    assert torch.equal((ours.test_x[:, 0] * 255).round().to(torch.uint8), tv.data)
    assert torch.equal(ours.test_y, tv.targets)


def test_shapes_ranges_and_labels(mnist):
    assert mnist.sizes() == {"train": 55_000, "val": 5_000, "test": 10_000}
    for x in (mnist.train_x, mnist.val_x, mnist.test_x):
        assert x.dtype == torch.float32 and x.shape[1:] == (1, 28, 28)
        assert x.min() >= 0 and x.max() <= 1
    assert torch.bincount(mnist.test_y).tolist() == TEST_LABEL_COUNTS
    both = torch.cat([mnist.train_y, mnist.val_y])
    assert torch.bincount(both).tolist() == TRAIN_LABEL_COUNTS


def test_split_is_fixed_disjoint_and_complete():
    tr, va = split_indices(0)
    assert len(tr) == 55_000 and len(va) == 5_000
    assert len(np.union1d(tr, va)) == 60_000
    tr2, va2 = split_indices(0)
    assert np.array_equal(tr, tr2) and np.array_equal(va, va2)
    assert not np.array_equal(split_indices(1)[1], va)


def test_subsets_take_the_first_images(mnist):
    small = load_mnist(DataConfig(n_train=100, n_val=10, n_test=20))
    assert torch.equal(small.train_x, mnist.train_x[:100])
    assert torch.equal(small.test_x, mnist.test_x[:20])


def _copy_raw(tmp_path):
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for name in MNIST_FILES:
        shutil.copy(data_root() / "MNIST" / "raw" / f"{name}.gz", raw)
    return raw


def test_missing_file_raises_naming_it_and_how_to_restore(tmp_path):
    raw = _copy_raw(tmp_path)
    (raw / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(MNISTDataError, match=r"t10k-labels-idx1-ubyte\.gz is missing.*git checkout"):
        ensure_mnist(tmp_path)


@pytest.mark.parametrize("damage", ["truncate", "flip"])
def test_corrupt_file_raises_naming_it(tmp_path, damage):
    raw = _copy_raw(tmp_path)
    gz = raw / "t10k-labels-idx1-ubyte.gz"
    blob = bytearray(gz.read_bytes())
    if damage == "truncate":
        blob = blob[: len(blob) // 2]
    else:
        blob[len(blob) // 2] ^= 0xFF
    gz.write_bytes(bytes(blob))
    with pytest.raises(MNISTDataError, match=r"t10k-labels-idx1-ubyte\.gz is corrupt.*git checkout"):
        ensure_mnist(tmp_path)
    assert not (raw / "t10k-labels-idx1-ubyte").exists()


def test_a_tampered_uncompressed_file_is_rewritten(tmp_path):
    raw = _copy_raw(tmp_path)
    ensure_mnist(tmp_path)
    (raw / "t10k-labels-idx1-ubyte").write_bytes(b"junk")
    ensure_mnist(tmp_path)
    assert (raw / "t10k-labels-idx1-ubyte").stat().st_size == MNIST_FILES["t10k-labels-idx1-ubyte"][0]


def test_an_unpack_that_starts_while_another_is_writing_does_not_break_it(tmp_path, monkeypatch):
    """A sweep's points, or a second run beside the book's, may unpack the same copy at the same moment.
    Here a second unpack runs to its end while the first is still writing: each writes a temporary file of
    its own, so neither renames the other's away (a shared ``.tmp`` name made the first fail)."""
    import os

    raw = _copy_raw(tmp_path)
    real_fsync, nested = os.fsync, []

    def another_unpack_runs_between_write_and_rename(fd):
        real_fsync(fd)
        if not nested:
            nested.append(True)
            ensure_mnist(tmp_path)  # the other process, from start to end, between this one's write and rename

    monkeypatch.setattr(os, "fsync", another_unpack_runs_between_write_and_rename)
    ensure_mnist(tmp_path)
    assert nested
    for name, (size, _) in MNIST_FILES.items():
        assert (raw / name).stat().st_size == size
    assert not list(raw.glob("*.tmp"))


def test_batches_cover_each_item_once_per_epoch_and_replay_exactly():
    x = torch.arange(10).float()
    b = Batches(x, batch_size=4, shuffle=True, seed=3)
    assert len(b) == 3
    e0 = torch.cat([t for (t,) in b.epoch(0)])
    assert sorted(e0.tolist()) == list(range(10))
    assert torch.equal(e0, torch.cat([t for (t,) in b.epoch(0)]))
    assert not torch.equal(e0, torch.cat([t for (t,) in b.epoch(1)]))
    ordered = Batches(x, torch.arange(10), batch_size=4)
    assert [len(t) for t, _ in ordered] == [4, 4, 2]
    assert len(Batches(x, batch_size=4, drop_last=True)) == 2


def test_batches_reject_bad_arguments():
    with pytest.raises(ValueError, match="batch_size"):
        Batches(torch.zeros(3), batch_size=0)
    with pytest.raises(ValueError, match="equal length"):
        Batches(torch.zeros(3), torch.zeros(4), batch_size=2)
