import json

import pytest

from geohelpers import run


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
    assert run._parse_set(["grid_vae.epochs=3", "grid_vae.channels=(8,16)", "device=cpu"]) == {
        "grid_vae.epochs": 3, "grid_vae.channels": (8, 16), "device": "cpu"}


@pytest.mark.parametrize("argv, message", [
    (["--profile", "fast"], "'profile' is 'fast'"),
    (["--profile", "quick", "--set", "grid_vae.epochs=0"], "'grid_vae.epochs' is 0"),
    (["--profile", "quick", "--set", "nonsense"], "--set expects name=value"),
    (["--profile", "quick", "--only", "77"], "no notebook numbered 77"),
])
def test_bad_arguments_fail_before_any_work(argv, message, capsys):
    with pytest.raises(SystemExit):
        run.main(argv)
    assert message in capsys.readouterr().err
