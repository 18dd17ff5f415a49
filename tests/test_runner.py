import json

import pytest

from geohelpers import notebooks as nb
from geohelpers import run
from geohelpers.config import parse_set

REFERENCE_WORKLOAD = run.reference_workload


@pytest.fixture(autouse=True)
def _no_reference_workload(monkeypatch, tmp_path):
    """run.main times a reference workload and builds the stage graph first; these tests check arguments,
    not the machine (tests/test_graph.py and the quick book's test run the graph)."""
    from geohelpers import graph

    monkeypatch.setenv("GEOVQ_HOME", str(tmp_path))  # run.json and results never land in the project
    monkeypatch.setattr(run, "reference_workload", lambda: 0.5)
    monkeypatch.setattr(run, "build_stages", lambda *a, **kw: graph.GraphReport())


def test_input_hashes_chain_through_earlier_notebooks(tmp_path, monkeypatch):
    src = tmp_path / "notebooks"
    src.mkdir()
    for name in ("01_a.ipynb", "02_b.ipynb"):
        (src / name).write_text(json.dumps({"cells": [{"cell_type": "code", "source": name, "metadata": {}}]}))
    monkeypatch.setattr(nb, "SOURCES", src)
    paths = nb.notebooks()
    base = nb.input_hashes(paths, "quick", {})
    assert base == nb.input_hashes(paths, "quick", {})
    assert nb.input_hashes(paths, "standard", {}) != base
    assert nb.input_hashes(paths, "quick", {"seed": 1})["01_a.ipynb"] != base["01_a.ipynb"]
    (src / "01_a.ipynb").write_text(json.dumps({"cells": [{"cell_type": "code", "source": "x", "metadata": {}}]}))
    changed = nb.input_hashes(paths, "quick", {})
    assert changed["01_a.ipynb"] != base["01_a.ipynb"] and changed["02_b.ipynb"] != base["02_b.ipynb"]
    # asking for one notebook gives the same hash as in the full chain
    assert nb.input_hashes(paths[1:], "quick", {}) == {"02_b.ipynb": changed["02_b.ipynb"]}


def test_set_overrides_are_parsed_as_literals():
    assert parse_set(["grid_vae.max_epochs=3", "grid_vae.channels=(8,16)", "device=cpu"]) == {
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
    assert parse_set(["seed=1", "seed=1"]) == {"seed": 1}  # the same value twice is harmless


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
    assert "reference workload (50 standard GridVAE training steps, batch 128, one thread): 1.25 s" in out
    import torch

    threads = torch.get_num_threads()
    REFERENCE_WORKLOAD(steps=1, batch_size=2, warmup=0, threads=2)
    assert torch.get_num_threads() == threads  # timed on its own threads, the caller's are restored
    assert out.rstrip().splitlines()[-1].split()[:3] == ["reference", "workload", "1.25"]


def test_the_book_build_refuses_notebooks_of_different_configurations(tmp_path, monkeypatch):
    monkeypatch.setattr(nb, "SOURCES", tmp_path / "notebooks")
    monkeypatch.setattr(nb, "EXECUTED", tmp_path / "executed")
    monkeypatch.setattr(nb, "STAMPS", tmp_path / "executed" / "stamps.json")
    nb.SOURCES.mkdir()
    nb.EXECUTED.mkdir()
    for name in ("01_a.ipynb", "02_b.ipynb", "03_c.ipynb"):
        (nb.SOURCES / name).write_text("{}")
        (nb.EXECUTED / name).write_text("{}")
    same = {"profile": "quick", "config": "c1", "package": "p1", "overrides": {}}
    stamps = {"01_a.ipynb": same, "02_b.ipynb": same,
              "03_c.ipynb": {**same, "config": "c2", "overrides": {"grid_vae.beta": 1.0}}}
    nb.STAMPS.write_text(json.dumps(stamps))
    assert run.mixed_stamps(stamps) and "03_c.ipynb" in run.mixed_stamps(stamps)[1]
    with pytest.raises(SystemExit, match=r"different configurations.*01_a.ipynb, 02_b.ipynb.*03_c.ipynb.*grid_vae.beta"):
        run.build_book("quick")
    assert run.mixed_stamps({**stamps, "03_c.ipynb": same}) == []


def test_every_config_value_reaches_a_notebook_as_the_same_typed_value():
    """The runner's --set, papermill's parameters cell and a notebook's ``overrides`` give one value for every
    field of every section (tuples included: papermill writes a tuple as a string)."""
    from papermill.translators import PythonTranslator

    from geohelpers.config import flatten, resolve

    base = resolve("quick")
    for name, value in flatten(base).items():
        if name == "profile":
            continue
        direct = resolve("quick", {name: value})
        ns: dict = {}
        exec(PythonTranslator.codify(nb.parameters("quick", {name: value})), ns)
        assert resolve(ns["profile"], ns["overrides"]) == direct, name
        if isinstance(value, tuple):  # the --set forms a user types: 16,64 and (16, 64) and [16, 64]
            raw = ",".join(map(repr, value))
            for text in (raw, f"({raw})", f"[{raw}]"):
                assert resolve("quick", parse_set([f"{name}={text}"])) == direct, (name, text)
                ns = {}
                exec(PythonTranslator.codify(nb.parameters("quick", parse_set([f"{name}={text}"]))), ns)
                assert resolve(ns["profile"], ns["overrides"]) == direct, (name, text)


@pytest.mark.parametrize("argv, message", [
    (["--profile", "quick", "--only", "1"], "no notebook numbered 1;"),
    (["--profile", "quick", "--only", "09"], "no notebook numbered 09;"),
    (["--profile", "quick", "--sweep", "sed=0,1"], "unknown parameter 'sed'"),
    (["--profile", "quick", "--sweep", "seed=0,1", "--only", "08"], "which reads the sweeps"),
])
def test_arguments_are_refused_before_the_reference_workload_and_write_nothing(argv, message, monkeypatch,
                                                                                 tmp_home, capsys):
    def no_work():
        raise AssertionError("the reference workload ran before the arguments were checked")

    monkeypatch.setattr(run, "reference_workload", no_work)
    with pytest.raises(SystemExit) as exit_:
        run.main(argv)
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert message in err and err.count("allowed") <= 1
    assert not (tmp_home / "results").exists() and not (tmp_home / "sweeps").exists()


def test_every_run_writes_its_record_with_the_reference_workload(monkeypatch, tmp_home):
    monkeypatch.setattr(run, "reference_workload", lambda: 1.5)
    monkeypatch.setattr(run, "execute", lambda paths, profile, overrides, force=False: [
        {"notebook": "01_vae.ipynb", "status": "executed", "seconds": 12.34},
        {"notebook": "02_w2_quantization.ipynb", "status": "skipped", "seconds": 5.0}])
    run.main(["--profile", "quick", "--no-book", "--only", "01", "02"])
    record = json.loads((tmp_home / "results" / "quick" / "run.json").read_text())
    assert record["reference_workload_s"] == 1.5 and record["total_s"] == 12.3 and not record["complete_book"]
    assert [s["status"] for s in record["steps"]] == ["executed", "skipped"] and record["torch_threads"] >= 1


def test_run_json_keeps_the_earlier_calls_that_made_what_a_call_loaded(tmp_path):
    """run.json: every earlier call of the same profile and overrides that built a stage or executed a
    notebook stays in ``earlier_calls`` (oldest first; a call's own rewrites do not repeat it; calls that
    only loaded and skipped are dropped); a call that built every stage and executed every notebook, or
    another overrides' call, starts afresh."""
    from geohelpers import graph, store

    def report(*statuses):
        rep = graph.GraphReport(workers=2)
        rep.records = [{"key": f"s{i}", "status": st, "seconds": 1.0} for i, st in enumerate(statuses)]
        return rep

    executed = [{"notebook": "01_vae.ipynb", "status": "executed", "seconds": 2.0}]
    skipped = [{"notebook": "01_vae.ipynb", "status": "skipped", "seconds": 2.0}]
    path = store.results_dir("quick") / "run.json"
    read = lambda: json.loads(path.read_text())  # noqa: E731
    run.write_run_record("quick", {}, [], 1.0, "t1", complete=False, stages=report("built", "loaded"))
    run.write_run_record("quick", {}, [], 1.0, "t1", complete=False, stages=report("built", "built"))  # same call
    assert read()["earlier_calls"] == []
    run.write_run_record("quick", {}, executed, 1.1, "t2", complete=True, stages=report("loaded", "loaded"))
    run.write_run_record("quick", {}, skipped, 1.2, "t3", complete=True, stages=report("loaded", "loaded"))
    run.write_run_record("quick", {}, skipped, 1.2, "t4", complete=True, stages=report("loaded", "loaded"))
    record = read()
    assert [c["started"] for c in record["earlier_calls"]] == ["t1", "t2"]  # t3 only loaded and skipped
    assert record["earlier_calls"][1]["steps"][0]["seconds"] == 2.0
    assert all("earlier_calls" not in c for c in record["earlier_calls"])
    run.write_run_record("quick", {}, executed, 1.0, "t5", complete=True, stages=report("built", "built"))
    assert read()["earlier_calls"] == []  # everything built and executed: nothing of the earlier calls is read
    run.write_run_record("quick", {"seed": 1}, [], 1.0, "t6", complete=False)
    assert read()["earlier_calls"] == []
