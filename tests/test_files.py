"""Nothing silently wrong under faults: damaged artifacts are detected, set aside and rebuilt; writes are
atomic; a damaged stamps file is rebuilt; a stray module changes no identity."""

import json
import logging
import multiprocessing as mp
import subprocess
import time

import numpy as np
import pytest
import torch

from geohelpers import artifacts, files, stages
from geohelpers import notebooks as nb
from geohelpers.config import resolve
from geohelpers.data import Batches
from geohelpers.quantize.codebook import Codebook, KMeansCodebook
from geohelpers.train import fit


def flip(path, offset=None):
    """XOR one byte of ``path`` (in the middle by default): the damage a bad disk or copy does."""
    data = bytearray(path.read_bytes())
    i = len(data) // 2 if offset is None else offset
    data[i] ^= 0xFF
    path.write_bytes(bytes(data))


def test_a_damaged_artifact_is_set_aside_named_and_read_as_missing(tmp_path, caplog):
    path = files.write_artifact(tmp_path / "a.pt", b"x" * 1000, made_by="vae/grid@123")
    assert files.read_artifact(path) == b"x" * 1000
    flip(path)
    with caplog.at_level(logging.WARNING, logger="geohelpers"):
        assert files.read_artifact(path, "checkpoint") is None
    assert not path.exists() and (tmp_path / "a.pt.corrupt").exists() and (tmp_path / "a.pt.corrupt.sha256").exists()
    assert "a.pt is damaged" in caplog.text and "vae/grid@123" in caplog.text and "rebuilt" in caplog.text
    assert files.read_artifact(path) is None  # nothing left to fail on twice


def test_a_file_without_digest_is_checked_by_its_zip_crcs(tmp_path):
    path = tmp_path / "old.npz"
    np.savez(path, a=np.arange(10_000))  # written as before digests existed
    assert files.read_artifact(path) is not None
    flip(path, offset=200)  # inside the stored array
    assert files.read_artifact(path) is None and (tmp_path / "old.npz.corrupt").exists()


def test_a_flipped_byte_in_a_checkpoint_is_detected_and_the_model_retrained(tmp_path):
    torch.manual_seed(0)
    x = torch.rand(64, 4)

    class Tiny(torch.nn.Linear):
        def loss(self, batch):
            out = ((self(batch[0]) - batch[0]) ** 2).mean()
            return out, {}

    def train():
        torch.manual_seed(0)
        model = Tiny(4, 4)
        hist = fit(model, Batches(x, batch_size=16), max_epochs=2, lr=1e-2, checkpoint=tmp_path / "m.pt",
                   tag="tiny@1", device="cpu")
        return model, hist

    first, h1 = train()
    again, h2 = train()
    assert h2.epochs_this_call == 0 and torch.equal(first.weight, again.weight)  # loaded, not retrained
    flip(tmp_path / "m.pt")
    rebuilt, h3 = train()
    assert h3.epochs_this_call == 2 and (tmp_path / "m.pt.corrupt").exists()
    assert torch.equal(first.weight, rebuilt.weight)  # retrained from the same seed: the same model


def test_a_flipped_byte_in_a_codebook_is_detected_and_it_is_refitted(tmp_path):
    rng = np.random.default_rng(0)
    mu, sigma = rng.normal(size=(500, 3)), np.ones((500, 3))
    cb = KMeansCodebook(8, seed=0).fit(mu, sigma)
    path = cb.save(tmp_path / "cb.npz", "codebook/grid_kmeans_K8@1")
    np.testing.assert_array_equal(Codebook.load_stored(path).codewords, cb.codewords)
    flip(path)
    assert Codebook.load_stored(path) is None and (tmp_path / "cb.npz.corrupt").exists()
    cb.save(path, "codebook/grid_kmeans_K8@1")
    np.testing.assert_array_equal(Codebook.load_stored(path).codewords, cb.codewords)


def test_a_flipped_byte_in_code_maps_is_detected_and_they_are_rebuilt(tmp_home):
    cfg = resolve("quick")
    codes = {s: np.random.default_rng(1).integers(0, 16, size=(50, 7, 7)) for s in ("train", "val", "test")}
    path = stages.codes.save_codes(cfg, "grid_kmeans_K16", **codes)
    flip(path)
    with pytest.raises(FileNotFoundError, match=r"damaged and set aside.*02"):
        stages.codes.load_codes(cfg, "grid_kmeans_K16")
    assert path.with_name(path.name + ".corrupt").exists()
    stages.codes.save_codes(cfg, "grid_kmeans_K16", **codes)  # what notebook 02 does when it runs again
    np.testing.assert_array_equal(stages.codes.load_codes(cfg, "grid_kmeans_K16")["test"], codes["test"])


def _writer(path, payload, until):
    while time.time() < until:
        files.write_artifact(path, payload, made_by=str(payload[:1]))


def test_two_processes_saving_one_artifact_never_leave_a_torn_file(tmp_path):
    path = tmp_path / "shared.pt"
    a, b = b"a" * 300_000, b"b" * 200_000
    files.write_artifact(path, a, "a")
    until = time.time() + 1.5
    ctx = mp.get_context("fork")
    writers = [ctx.Process(target=_writer, args=(path, p, until)) for p in (a, b)]
    for w in writers:
        w.start()
    seen, verified = set(), set()
    while time.time() < until:
        seen.add(path.read_bytes())  # the bytes on disk: the old file or the new one, never a mix
        got = files.read_artifact(path)
        if got is not None:
            verified.add(got)
    for w in writers:
        w.join()
    assert seen <= {a, b} and verified <= {a, b} and verified
    assert not list(tmp_path.glob("*.corrupt")) and not list(tmp_path.glob(".*.tmp"))  # no false alarm, no litter


def test_a_truncated_stamps_file_is_set_aside_and_every_notebook_reexecutes(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(nb, "STAMPS", tmp_path / "stamps.json")
    nb.write_stamps({"01_vae.ipynb": {"hash": "h"}})
    assert nb.read_stamps() == {"01_vae.ipynb": {"hash": "h"}}
    nb.STAMPS.write_text(nb.STAMPS.read_text()[:10])
    assert nb.read_stamps() == {}
    assert "stamps.json is damaged" in capsys.readouterr().out and (tmp_path / "stamps.json.corrupt").exists()


def test_a_damaged_results_file_names_itself_and_the_notebook_to_rerun(tmp_home):
    from geohelpers import store

    cfg = resolve("quick")
    path = store.write_results("02_w2_quantization", cfg, {"rows": []}, store.WallTimes())
    path.write_text(path.read_text()[:40])
    with pytest.raises(files.DamagedFileError, match=r"02_w2_quantization.json is damaged.*--only 02"):
        store.read_results(cfg, "02_w2_quantization")


def test_a_stray_module_in_the_package_changes_no_identity_and_no_stamp():
    inside = subprocess.run(["git", "rev-parse", "--is-inside-work-tree"], cwd=artifacts.PACKAGE_ROOT,
                            capture_output=True, text=True)
    if inside.returncode or inside.stdout.strip() != "true":
        pytest.skip("the package is not in a git work tree: every module in its folder counts")
    stray = artifacts.PACKAGE_ROOT / "zz_stray_scratch.py"
    before = artifacts.modules_digest(), nb.package_digest()
    try:
        stray.write_text("x = 1\n")
        assert (artifacts.modules_digest(), nb.package_digest()) == before
    finally:
        stray.unlink()


def test_edits_reach_exactly_the_stamps_they_shape(tmp_path, monkeypatch):
    """An edit to notebook 08's analysis re-executes notebook 08 and no sweep point; an edit to a module
    that shapes results re-stamps everything; an edit to the runner re-stamps nothing."""
    pkg, src = tmp_path / "pkg", tmp_path / "notebooks"
    pkg.mkdir()
    src.mkdir()
    for name in ("train.py", "prose.py", "sweep_stats.py", "run.py"):
        (pkg / name).write_text(f"# {name}\n")
    for name in ("07_pullback.ipynb", "08_seeds_and_beta.ipynb"):
        (src / name).write_text(json.dumps({"cells": [{"cell_type": "code", "source": name, "metadata": {}}]}))
    monkeypatch.setattr(artifacts, "PACKAGE_ROOT", pkg)
    monkeypatch.setattr(artifacts, "package_modules", lambda: sorted(pkg.glob("*.py")))
    monkeypatch.setattr(nb, "SOURCES", src)

    def stamps():
        return nb.input_hashes(nb.notebooks(), "quick", {}), artifacts.modules_digest()

    (h0, id0) = stamps()
    (pkg / "sweep_stats.py").write_text("# edited\n")
    (h1, id1) = stamps()
    assert h1["07_pullback.ipynb"] == h0["07_pullback.ipynb"] and h1["08_seeds_and_beta.ipynb"] != h0["08_seeds_and_beta.ipynb"]
    assert id1 == id0
    (pkg / "run.py").write_text("# edited\n")
    assert stamps() == (h1, id1)
    (pkg / "prose.py").write_text("# edited\n")
    (h2, id2) = stamps()
    assert all(h2[k] != h1[k] for k in h2) and id2 == id1  # presentation: every stamp, no identity
    (pkg / "train.py").write_text("# edited\n")
    (h3, id3) = stamps()
    assert all(h3[k] != h2[k] for k in h3) and id3 != id2


def test_a_damaged_sweep_record_is_set_aside_and_read_as_empty(tmp_path, capsys):
    from geohelpers import sweep

    record = tmp_path / "point.json"
    record.write_text('{"stamp": "ab')
    assert sweep._read_record(record, {}) == {} and sweep._read_record(tmp_path / "none.json", []) == []
    assert "[sweep]" in capsys.readouterr().out and (tmp_path / "point.json.corrupt").exists()
