import json

import pytest

from geohelpers import run

REFERENCE_WORKLOAD = run.reference_workload


@pytest.fixture(autouse=True)
def _no_reference_workload(monkeypatch):
    """run.main times a reference workload first; these tests check arguments, not the machine."""
    monkeypatch.setattr(run, "reference_workload", lambda: 0.5)


def test_input_hashes_chain_through_earlier_notebooks(tmp_path, monkeypatch):
    src = tmp_path / "notebooks"
    src.mkdir()
    for name in ("01_a.ipynb", "02_b.ipynb"):
        (src / name).write_text(json.dumps({"cells": [{"cell_type": "code", "source": name, "metadata": {}}]}))
    monkeypatch.setattr(run, "SOURCES", src)
    paths = run.notebooks()
    base = run.input_hashes(paths, "quick", {})
    assert base == run.input_hashes(paths, "quick", {})
    assert run.input_hashes(paths, "standard", {}) != base
    assert run.input_hashes(paths, "quick", {"seed": 1})["01_a.ipynb"] != base["01_a.ipynb"]
    (src / "01_a.ipynb").write_text(json.dumps({"cells": [{"cell_type": "code", "source": "x", "metadata": {}}]}))
    changed = run.input_hashes(paths, "quick", {})
    assert changed["01_a.ipynb"] != base["01_a.ipynb"] and changed["02_b.ipynb"] != base["02_b.ipynb"]
    # asking for one notebook gives the same hash as in the full chain
    assert run.input_hashes(paths[1:], "quick", {}) == {"02_b.ipynb": changed["02_b.ipynb"]}


def test_set_overrides_are_parsed_as_literals():
    assert run.parse_set(["grid_vae.max_epochs=3", "grid_vae.channels=(8,16)", "device=cpu"]) == {
        "grid_vae.max_epochs": 3, "grid_vae.channels": (8, 16), "device": "cpu"}


@pytest.mark.parametrize("argv, message", [
    (["--profile", "fast"], "'profile' is 'fast'"),
    (["--profile", "quick", "--set", "grid_vae.max_epochs=0"], "'grid_vae.max_epochs' is 0"),
    (["--profile", "quick", "--set", "nonsense"], "--set expects name=value"),
    (["--profile", "quick", "--only", "77"], "no notebook numbered 77"),
])
def test_bad_arguments_fail_before_any_work(argv, message, capsys):
    with pytest.raises(SystemExit):
        run.main(argv)
    assert message in capsys.readouterr().err


@pytest.mark.parametrize("argv", [
    ["--set", "data.n_train=512", "--set", "grid_vae.max_epochs=1", "--set", "quantize.n_landmarks=2000"],
    ["--set", "data.n_train=512", "grid_vae.max_epochs=1", "quantize.n_landmarks=2000"],
    ["--set", "data.n_train=512", "grid_vae.max_epochs=1", "--set", "quantize.n_landmarks=2000"],
])
def test_every_set_counts_and_is_printed_once(argv, monkeypatch, capsys):
    seen = {}
    monkeypatch.setattr(run, "execute", lambda paths, profile, overrides, force=False: seen.update(overrides) or [])
    run.main(["--profile", "paper", "--no-book", *argv])
    expected = {"data.n_train": 512, "grid_vae.max_epochs": 1, "quantize.n_landmarks": 2000}
    assert seen == expected
    out = capsys.readouterr().out
    assert out.count(f"overrides {expected}") == 1


def test_a_name_set_twice_with_two_values_is_an_error(capsys):
    with pytest.raises(SystemExit):
        run.main(["--profile", "quick", "--set", "grid_vae.max_epochs=1", "--set", "grid_vae.max_epochs=2"])
    assert "'grid_vae.max_epochs' twice, as 1 and 2" in capsys.readouterr().err
    assert run.parse_set(["seed=1", "seed=1"]) == {"seed": 1}  # the same value twice is harmless


def test_a_misspelt_name_suggests_the_closest(capsys):
    with pytest.raises(SystemExit):
        run.main(["--profile", "quick", "--set", "grid_vae.epochs=2"])  # the name before the stopping rule
    err = capsys.readouterr().err
    assert "did you mean 'grid_vae.max_epochs'" in err
    assert err.index("did you mean") < err.index("allowed:")


def test_the_reference_workload_runs_and_is_printed_beside_the_total(monkeypatch, capsys):
    assert REFERENCE_WORKLOAD(steps=2, batch_size=4, warmup=1) > 0  # it works; no timing is asserted
    monkeypatch.setattr(run, "reference_workload", lambda: 1.25)
    monkeypatch.setattr(run, "execute", lambda paths, profile, overrides, force=False: [])
    run.main(["--profile", "quick", "--no-book", "--only", "01"])
    out = capsys.readouterr().out
    assert "reference workload (50 standard GridVAE training steps, batch 128): 1.25 s" in out
    assert out.rstrip().splitlines()[-1].split()[:3] == ["reference", "workload", "1.25"]


def test_the_book_build_refuses_notebooks_of_different_configurations(tmp_path, monkeypatch):
    monkeypatch.setattr(run, "SOURCES", tmp_path / "notebooks")
    monkeypatch.setattr(run, "EXECUTED", tmp_path / "executed")
    monkeypatch.setattr(run, "STAMPS", tmp_path / "executed" / "stamps.json")
    run.SOURCES.mkdir()
    run.EXECUTED.mkdir()
    for name in ("01_a.ipynb", "02_b.ipynb", "03_c.ipynb"):
        (run.SOURCES / name).write_text("{}")
        (run.EXECUTED / name).write_text("{}")
    same = {"profile": "quick", "config": "c1", "package": "p1", "overrides": {}}
    stamps = {"01_a.ipynb": same, "02_b.ipynb": same,
              "03_c.ipynb": {**same, "config": "c2", "overrides": {"grid_vae.beta": 1.0}}}
    run.STAMPS.write_text(json.dumps(stamps))
    assert run.mixed_stamps(stamps) and "03_c.ipynb" in run.mixed_stamps(stamps)[1]
    with pytest.raises(SystemExit, match=r"different configurations.*01_a.ipynb, 02_b.ipynb.*03_c.ipynb.*grid_vae.beta"):
        run.build_book("quick")
    assert run.mixed_stamps({**stamps, "03_c.ipynb": same}) == []
