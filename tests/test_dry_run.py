"""The runner's --dry-run: what a call would load, build and resume, scheduled with the record's times,
without building, executing or writing anything."""

import io
import json

import networkx as nx
import pytest
import torch

from geohelpers import files, graph, run, store
from geohelpers.config import resolve


@pytest.fixture(autouse=True)
def _nothing_runs(monkeypatch, tmp_home):
    def refuse(*args, **kwargs):
        raise AssertionError("--dry-run started work")

    for name in ("reference_workload", "build_stages", "execute", "build_book", "write_run_record"):
        monkeypatch.setattr(run, name, refuse)
    monkeypatch.setattr(run.sweep, "execute_sweep", refuse)


def test_the_schedule_starts_the_stage_with_most_stages_waiting_first():
    g = nx.DiGraph([("b", "c")])
    g.add_nodes_from(["a", "d"])
    seconds = {"a": 5.0, "b": 1.0, "c": 10.0, "d": 5.0}
    # two workers: b first (c waits on it), then a; c runs from 1 to 11 while a, then d, take the other worker
    assert run.schedule(g, seconds, 2) == 11.0
    assert run.schedule(g, seconds, 1) == 21.0 and run.schedule(g, seconds, 4) == 11.0
    assert run.schedule(nx.DiGraph(), {}, 2) == 0.0


def _checkpoint(path, identity, stop_reason):
    buffer = io.BytesIO()
    torch.save({"history": {"stop_reason": stop_reason}, "epoch": 3, "tag": identity}, buffer)
    files.write_artifact(path, buffer.getvalue(), made_by=identity)


def test_a_stage_is_stored_resumed_or_built_by_the_identities_its_artifacts_carry():
    cfg = resolve("quick", {})
    stages = {s.key: s for s in graph.stages_of(cfg)}
    vae = stages["vae/grid"]
    folder = store.artifacts_dir("quick")
    state = lambda s: graph.stage_state(s, cfg, graph.stored_identities([folder]))  # noqa: E731
    assert state(vae) == "build"
    path = folder / "checkpoints" / "anything.pt"
    _checkpoint(path, graph.stage_identity(vae, cfg)[0], None)
    assert state(vae) == "resume"  # an epoch checkpoint its stopping rule has not ended
    _checkpoint(path, graph.stage_identity(vae, cfg)[0], "patience")
    assert state(vae) == "stored"
    _checkpoint(path, "vae/grid@another", "patience")
    assert state(vae) == "build"  # another configuration's or code's checkpoint
    _checkpoint(path, graph.stage_identity(vae, cfg)[0], "patience")
    path.unlink()  # a digest file without its artifact stores nothing
    assert state(vae) == "build"
    assert state(stages["choice/prior_grid"]) == "choice"
    hybrid = graph.full_graph(cfg, {"a_posteriori": "kmeans", "vqvae": "ema"}).nodes["vqvae/hybrid_K32"]["stage"]
    assert state(hybrid) == "build"  # its identity reads the a posteriori choice, not stored yet


def test_a_dry_run_schedules_the_records_times_and_writes_nothing(tmp_home, capsys):
    record = store.results_dir("quick") / "run.json"
    record.write_text(json.dumps({
        "profile": "quick", "overrides": {}, "reference_workload_s": 1.0,
        "stage_graph": {"choices": {}, "stages": [{"key": "vae/grid", "status": "built", "seconds": 100.0},
                                                  {"key": "vae/flat", "status": "loaded", "seconds": 1.0}]},
        "steps": [{"notebook": "01_vae.ipynb", "status": "executed", "seconds": 50.0}]}))
    before = sorted(p for p in tmp_home.rglob("*"))
    run.main(["--profile", "quick", "--only", "01", "--no-book", "--dry-run", "--workers", "1"])
    out = capsys.readouterr().out
    assert "notebooks to execute: 01" in out
    assert "stage graph: 2 stages: 0 stored, 0 resume from an epoch checkpoint, 2 to build" in out
    # vae/flat has no build time in the record: the estimate is a lower bound that says so
    assert "at least (the record has no time for 1 of the stages to build) 150 s" in out
    assert sorted(p for p in tmp_home.rglob("*")) == before
    point = store.results_dir("quick") / "sweeps" / "seed" / "seed=1" / "point.json"
    point.parent.mkdir(parents=True)  # a sweep point's graph built vae/flat: its time fills the record's gap
    point.write_text(json.dumps({"stage_graph_calls": [{"built_seconds": {"vae/flat": 20.0, "vae/grid": 1.0}}]}))
    run.main(["--profile", "quick", "--only", "01", "--no-book", "--dry-run", "--workers", "1"])
    assert "estimate on 1 workers: 170 s" in capsys.readouterr().out  # the record's own vae/grid time is kept


def test_a_sweeps_dry_run_names_each_points_state_and_writes_nothing(tmp_home, capsys):
    run.main(["--profile", "quick", "--sweep", "seed=0,1", "--only", "01", "--dry-run"])
    out = capsys.readouterr().out
    assert "point seed=0: run" in out and "point seed=1: run" in out
    assert out.count("stage graph: 2 stages") == 2
    assert "no estimate" in out  # no run.json of the profile
    assert not (tmp_home / "sweeps").exists() and not (tmp_home / "results").exists()
