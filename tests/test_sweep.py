"""Sweeps: parsing, the points' folders and stamps, a real two-point Dask sweep, and the aggregation."""

import json

import numpy as np
import pytest

from geohelpers import plots, run, sweep, sweep_stats
from geohelpers.config import ConfigError


def test_parse_sweeps_and_the_product_of_points():
    sweeps = sweep.parse_sweeps(["seed=0,1,2", "grid_vae.beta=0.1, 1.0", "grid_vae.channels=(8,16),(16,32)"])
    assert sweeps == {"seed": [0, 1, 2], "grid_vae.beta": [0.1, 1.0], "grid_vae.channels": [(8, 16), (16, 32)]}
    pts = sweep.points(sweeps)
    assert len(pts) == 12 and len({p.name for p in pts}) == 12
    assert pts[0].name == "grid_vae.beta=0.1,grid_vae.channels=8-16,seed=0"
    assert sweep.sweep_name(sweeps) == "grid_vae.beta+grid_vae.channels+seed"
    assert sweep.parse_sweeps(["device=cpu,auto"]) == {"device": ["cpu", "auto"]}
    for bad, match in ((["seed"], "name=value1"), (["seed="], "name=value1"), (["seed=1,1"], "repeats"),
                       (["seed=1", "seed=2"], "twice")):
        with pytest.raises(ConfigError, match=match):
            sweep.parse_sweeps(bad)


def test_a_swept_parameter_cannot_also_be_set(capsys):
    with pytest.raises(SystemExit):
        run.main(["--profile", "quick", "--sweep", "seed=0,1", "--set", "seed=2"])
    assert "both set (--set) and swept (--sweep)" in capsys.readouterr().err


def test_a_point_never_runs_the_notebook_that_reads_the_sweeps(capsys):
    # by default a sweep's notebooks are every one but 08, so the stamp of the book's sweep command is that
    # of the sweeps of record (computed with --only 01 ... 07)
    names = [p.name for p in sweep.swept_notebooks()]
    assert "08_seeds_and_beta.ipynb" in sweep.READS_SWEEPS and names[-1].startswith("07_")
    assert sweep.point_stamp("standard", {"seed": 1}, names) == \
        sweep.point_stamp("standard", {"seed": 1}, [n for n in names if n[:2] in ("01", "07")])
    with pytest.raises(SystemExit):
        run.main(["--profile", "quick", "--only", "08", "--sweep", "seed=0,1"])
    assert "reads the sweeps" in capsys.readouterr().err
    with pytest.raises(ConfigError, match="reads the sweeps"):
        sweep.execute_sweep("quick", {"seed": [0]}, notebooks=["01_vae.ipynb", "08_seeds_and_beta.ipynb"])


QUICK_POINT = ["--profile", "quick", "--only", "01", "--workers", "2",
               "--set", "data.n_train=300", "data.n_val=100", "data.n_test=100"]


def test_a_two_point_sweep_runs_on_a_local_cluster_then_skips_and_keeps_results_of_a_failed_sweep(tmp_home, capsys):
    run.main(QUICK_POINT + ["--sweep", "seed=0,1"])
    root = tmp_home / "results" / "quick" / "sweeps" / "seed"
    for s in (0, 1):
        point = json.loads((root / f"seed={s}" / "point.json").read_text())
        assert point["status"] == "ok" and point["params"] == {"seed": s} and point["overrides"]["data.n_train"] == 300
        graph_call, = point["stage_graph_calls"]  # the point's stage graph: what it built and how long each took
        assert graph_call["built"] == 2 and set(graph_call["built_seconds"]) == {"vae/grid", "vae/flat"}
        assert graph_call["stamp"] == point["stamp"] and graph_call["wall_time_s"] > 0
        results = json.loads((root / f"seed={s}" / "01_vae.json").read_text())
        assert results["seed"] == s and results["config"]["data"]["n_train"] == 300
    summary = json.loads((root / "sweep.json").read_text())
    assert summary["workers"] == 2 and set(summary["points"]) == {"seed=0", "seed=1"}
    mse = [json.loads((root / f"seed={s}" / "01_vae.json").read_text())["metrics"]["GridVAE"]["mse_per_pixel"]
           for s in (0, 1)]
    assert mse[0] != mse[1]  # two seeds, two models
    capsys.readouterr()
    run.main(QUICK_POINT + ["--sweep", "seed=0,1"])
    out = capsys.readouterr().out
    assert "0 ran, 2 up to date, 0 failed" in out
    again = json.loads((root / "sweep.json").read_text())  # a call that only skips keeps the timing record
    assert again["workers"] == 2 and again["wall_time_s"] == summary["wall_time_s"]
    assert [c["ran"] for c in again["calls"]] == [["seed=0", "seed=1"], []]
    times, record = sweep.sweep_times("quick", "seed", root=root)
    assert list(times["point"]) == ["seed=0", "seed=1"] and (times["01"] > 0).all() and record["workers"] == 2
    assert record["calls that ran points"] == 1 and record["their wall time (s)"] == summary["wall_time_s"]
    # a bad value is refused before any work, naming the parameter, and writes nothing
    with pytest.raises(SystemExit) as exc:
        run.main(QUICK_POINT + ["--sweep", "grid_vae.beta=0.1,-1"])
    assert exc.value.code == 2 and "'grid_vae.beta' is -1" in capsys.readouterr().err
    assert not (tmp_home / "results" / "quick" / "sweeps" / "grid_vae.beta").exists()
    # called directly, a sweep reports a failing point with its error and the other point keeps its results
    report = sweep.execute_sweep("quick", {"grid_vae.beta": [0.1, -1.0]}, {"data.n_train": 300, "data.n_val": 100,
                                 "data.n_test": 100}, ["01_vae.ipynb"], workers=2)
    assert [r["point"] for r in report.failed] == ["grid_vae.beta=-1.0"] and "'grid_vae.beta' is -1" in report.failed[0]["error"]
    ok = tmp_home / "results" / "quick" / "sweeps" / "grid_vae.beta" / "grid_vae.beta=0.1" / "01_vae.json"
    assert json.loads(ok.read_text())["config"]["grid_vae"]["beta"] == 0.1


def test_a_point_starts_from_the_projects_artifacts_and_loads_only_those_its_parameters_would_make(tmp_path,
                                                                                                    monkeypatch):
    from geohelpers import stages
    from geohelpers.config import resolve

    def toy_prior(home, **overrides):
        monkeypatch.setenv("GEOVQ_HOME", str(home))
        cfg = resolve("quick", {"prior.transformer_dim": 16, "prior.max_epochs": 2, **overrides})
        maps = {s: np.random.default_rng(0).integers(0, 8, size=(n, 7, 7)) for s, n in (("train", 64), ("val", 16),
                                                                                         ("test", 16))}
        stages.codes.save_codes(cfg, "grid_toy_K8", **maps)
        return stages.priors.train_prior("transformer", "grid_toy_K8", 8, cfg)

    project, point, other = tmp_path / "project", tmp_path / "point", tmp_path / "other"
    assert toy_prior(project).built_now
    source = project / "artifacts" / "quick"
    n_files = sum(1 for f in source.rglob("*") if f.is_file())
    assert sweep.seed_artifacts(source, point / "artifacts" / "quick") == n_files > 0
    assert not toy_prior(point).built_now  # the same parameters: the project's prior is loaded
    assert sweep.seed_artifacts(source, point / "artifacts" / "quick") == 0  # a point's own folder is kept
    assert sweep.seed_artifacts(tmp_path / "missing", other / "artifacts" / "quick") == 0
    assert sweep.seed_artifacts(source, other / "artifacts" / "quick") == n_files
    before = (source / "prior_transformer_grid_toy_K8.pt").read_bytes()
    assert toy_prior(other, seed=1).built_now  # another seed: rebuilt over the copy
    assert (source / "prior_transformer_grid_toy_K8.pt").read_bytes() == before  # the project's is untouched


def test_a_point_the_record_already_computed_takes_its_results_and_no_other_does(tmp_home, monkeypatch, capsys):
    from geohelpers import notebooks as nb
    from geohelpers.config import resolve

    monkeypatch.setattr(nb, "STAMPS", tmp_home / "stamps.json")
    names, overrides = ["01_vae.ipynb", "02_w2_quantization.ipynb"], {"data.n_train": 300}
    record = tmp_home / "results" / "quick"
    record.mkdir(parents=True)
    for i, name in enumerate(names):
        (record / f"{name[:-6]}.json").write_text(json.dumps({"metrics": {"mse": 0.01 * (i + 1)}}))
    hashes = nb.input_hashes(nb.notebooks(), "quick", overrides)

    def stamp(**change):  # each notebook's stamp as the plain runner writes it
        return {n: {"hash": hashes[n], "profile": "quick", "config": resolve("quick", overrides).digest(),
                    "overrides": overrides, "seconds": 1.0, **change} for n in names}

    nb.write_stamps(stamp())
    assert [f.name for f in sweep.record_results("quick", {**overrides, "seed": 0}, names)] == \
        ["01_vae.json", "02_w2_quantization.json"]  # seed 0 is the profile's own seed: the same configuration
    assert sweep.record_results("quick", {**overrides, "seed": 1}, names) is None  # another configuration
    assert sweep.record_results("quick", overrides, names + ["03_knn_geodesic.ipynb"]) is None  # not in the record
    nb.write_stamps(stamp(hash="stale"))  # the code changed since the record was executed
    assert sweep.record_results("quick", overrides, names) is None
    nb.write_stamps(stamp())
    (record / "02_w2_quantization.json").unlink()
    assert sweep.record_results("quick", overrides, names) is None
    (record / "02_w2_quantization.json").write_text(json.dumps({"metrics": {"mse": 0.02}}))

    def no_cluster(n):  # a point that would execute reaches the cluster; none may here
        raise AssertionError("a point was executed")

    monkeypatch.setattr("geohelpers.graph.local_cluster", no_cluster)
    root = tmp_home / "results" / "quick" / "sweeps" / "seed"
    root.mkdir(parents=True)  # an earlier call ran three seeds: a call over one of them keeps the others' entries
    (root / "sweep.json").write_text(json.dumps({"values": {"seed": [0, 1, 2]}, "calls": [],
                                                 "points": {"seed=1": {"status": "ran"}, "seed=2": {"status": "ran"}}}))
    run.main(["--profile", "quick", "--only", "01", "02", "--set", "data.n_train=300", "--sweep", "seed=0"])
    assert "0 ran, 0 up to date, 1 from the record, 0 failed" in capsys.readouterr().out
    summary = json.loads((root / "sweep.json").read_text())
    assert summary["values"] == {"seed": [0, 1, 2]} and summary["points"]["seed=1"] == {"status": "ran"}
    point = json.loads((root / "seed=0" / "point.json").read_text())
    assert point["status"] == "ok" and point["from_record"].startswith("results/quick/") and point["seconds"] == {}
    for name in names:
        assert (root / "seed=0" / f"{name[:-6]}.json").read_bytes() == (record / f"{name[:-6]}.json").read_bytes()
    fresh, stale = sweep.load_points("quick", "seed", root=root)
    assert [p["point"] for p in fresh] == ["seed=0"] and not stale  # its stamp is the one the code gives it
    assert json.loads((root / "sweep.json").read_text())["points"]["seed=0"]["status"] == "from the record"
    times, _ = sweep.sweep_times("quick", "seed", root=root)
    assert times["from the record"].iloc[0] == point["from_record"]
    run.main(["--profile", "quick", "--only", "01", "02", "--set", "data.n_train=300", "--sweep", "seed=0"])
    assert "0 ran, 1 up to date, 0 failed" in capsys.readouterr().out
    (root / "seed=0" / "point.json").unlink()
    with pytest.raises(AssertionError, match="a point was executed"):  # --fresh-points executes every point
        run.main(["--profile", "quick", "--only", "01", "02", "--set", "data.n_train=300", "--sweep", "seed=0",
                  "--fresh-points"])


def _fake_point(root, name, params, stamp, mse):
    folder = root / name
    folder.mkdir(parents=True)
    (folder / "point.json").write_text(json.dumps({"point": name, "params": params, "overrides": params,
                                                   "stamp": stamp, "notebooks": ["01_vae.ipynb"], "status": "ok"}))
    (folder / "06_comparison.json").write_text(json.dumps({"metrics": {"mse": mse}}))


def test_aggregation_gives_mean_spread_every_value_and_leaves_stale_points_out(tmp_path):
    for s, (a, b, c) in enumerate(((1.0, 2.0, 3.0), (1.2, 2.4, 2.0), (1.1, 2.2, 2.5))):
        _fake_point(tmp_path, f"seed={s}", {"seed": s}, "now", {"a": a, "b": b, "c": c})
    _fake_point(tmp_path, "seed=9", {"seed": 9}, "old code", {"a": 99.0, "b": 0.0, "c": 0.0})
    fresh, stale = sweep.load_points("quick", "seed", root=tmp_path, current_stamp=lambda p: "now")
    assert [p["point"] for p in fresh] == ["seed=0", "seed=1", "seed=2"] and [p["point"] for p in stale] == ["seed=9"]
    values = {p["point"]: p["results"]["06_comparison"]["metrics"]["mse"] for p in fresh}
    table = sweep_stats.spread(values)
    assert table.loc["a", "mean"] == pytest.approx(1.1) and table.loc["a", "std"] == pytest.approx(0.1)
    assert table.loc["b", "n"] == 3 and table.loc["c", "seed=1"] == 2.0
    orders = sweep_stats.paired_orders(values).set_index(["a", "b"])
    assert orders.loc[("a", "b"), "verdict"] == "a lower in every point"
    assert orders.loc[("b", "c"), "verdict"] == "the points disagree" and orders.loc[("b", "c"), "a lower in"] == 2
    assert orders.loc[("a", "c"), "points"] == 3


def test_a_point_finished_over_several_calls_keeps_the_times_of_its_interrupted_calls(tmp_path, monkeypatch):
    import papermill

    for var in ("GEOVQ_HOME", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "TQDM_DISABLE"):  # run_point sets them
        monkeypatch.setenv(var, "")
    ends = {}  # notebook -> how its next execution ends: "fails" (an error), "killed" (the call dies)

    def execute(source, target, **kwargs):
        end = ends.pop(target.rsplit("/", 1)[-1], None)
        if end == "fails":
            raise RuntimeError("a notebook error")
        if end == "killed":
            raise KeyboardInterrupt  # what a killed worker leaves: nothing after the last record

    monkeypatch.setattr(papermill, "execute_notebook", execute)
    point, names = sweep.points({"seed": [1]})[0], ["01_vae.ipynb", "02_w2_quantization.ipynb"]
    work, out = tmp_path / "work", tmp_path / "out"

    def call(stamp):
        return sweep.run_point(point, "quick", {}, names, str(out), str(work), stamp)

    ends["02_w2_quantization.ipynb"] = "fails"
    assert call("a")["status"] == "failed" and not out.exists()
    ends["02_w2_quantization.ipynb"] = "killed"
    with pytest.raises(KeyboardInterrupt):
        call("a")
    assert call("a")["status"] == "ok"
    done = json.loads((out / "point.json").read_text())
    interrupted = done["interrupted_calls"]
    assert [c.get("failed") for c in interrupted] == ["02_w2_quantization.ipynb", None]
    assert [c["running"] for c in interrupted] == [None, "02_w2_quantization.ipynb"]
    assert all(set(c["seconds"]) == {"01_vae.ipynb"} and c["stamp"] == "a" for c in interrupted)
    assert set(done["seconds"]) == set(names) and not (work / "calls.json").exists()
    times, _ = sweep.sweep_times("quick", "seed", root=tmp_path)  # out/ stands for a point's folder
    assert times.loc[0, "interrupted calls"] == 2 and times.loc[0, "their finished notebooks (s)"] >= 0
    # a call killed under another stamp (older code) is not this point's history
    ends["01_vae.ipynb"] = "killed"
    with pytest.raises(KeyboardInterrupt):
        call("old")
    call("a")
    assert json.loads((out / "point.json").read_text())["interrupted_calls"] == []


def test_sweep_times_count_every_call_that_ran_points_and_overlapping_time_once(tmp_path):
    def call(end, seconds, ran, workers=1):
        return {"written": f"2026-11-23T{end}+00:00", "workers": workers, "wall_time_s": seconds, "ran": ran}
    calls = [call("08:00:00", 3600.0, ["seed=1"]),            # 07:00-08:00
             call("07:30:00", 600.0, ["seed=2"]),             # 07:20-07:30, inside the first call
             call("08:10:00", 1200.0, ["seed=3"]),            # 07:50-08:10, overlaps the first by 10 min
             call("08:11:00", 0.0, []),                       # ran nothing: not counted
             call("10:00:00", 300.5, ["seed=0"], workers=2)]  # later, alone
    (tmp_path / "sweep.json").write_text(json.dumps({"workers": 2, "wall_time_s": 300.5, "written": "10:00",
                                                     "calls": calls}))
    _, record = sweep.sweep_times("quick", "seed", root=tmp_path)
    assert record["workers"] == 2 and record["wall_time_s"] == 300.5  # the last call that ran points
    assert record["calls that ran points"] == 4 and record["their wall time (s)"] == 3600.0 + 600.0 + 300.5


def test_headline_and_beta_readers_on_synthetic_points():
    def point(beta, mse_post, mse_vq):
        return {"params": {"grid_vae.beta": beta}, "overrides": {"grid_vae.beta": beta}, "results": {
            "01_vae": {"metrics": {"GridVAE": {"mse_per_pixel": mse_post / 2, "active_units": 300, "latent_units": 392}}},
            "02_w2_quantization": {"metrics": {"rows": [{"VAE": "GridVAE", "method": "kmeans", "K": 64,
                                                         "mse_per_pixel": mse_post, "bits_per_image": 294.0}]}},
            "06_comparison": {"metrics": {
                "headline": [{"quantizer": "kmeans", "test MSE": mse_post}, {"quantizer": "VQ-VAE ema", "test MSE": mse_vq}],
                "verdict": {"best_a_posteriori": "kmeans", "best_end_to_end": "VQ-VAE ema",
                            "mse_ratio_a_posteriori_over_end_to_end": mse_post / mse_vq}}}}}
    points = [point(1.0, 0.008, 0.002), point(0.1, 0.004, 0.002)]
    values = sweep_stats.headline_values(points[0])
    assert values == {"kmeans": 0.008, "VQ-VAE ema": 0.002, "mse_ratio_a_posteriori_over_end_to_end": 4.0}
    rows = sweep_stats.beta_rows(points)
    assert [(r["beta"], r["method"], r["mse_per_pixel"]) for r in rows] == [(1.0, "kmeans", 0.008), (0.1, "kmeans", 0.004)]
    summary = sweep_stats.beta_summary(points)
    assert [r["beta"] for r in summary] == [0.1, 1.0] and summary[1]["a_posteriori_over_end_to_end"] == 4.0
    assert summary[0]["continuous_mse"] == 0.002 and summary[0]["active_units"] == 300


def _headline_point(name, seed, mse, best_post="kmeans", ratio=None):
    post, vq = mse
    return {"point": name, "params": {"seed": seed}, "overrides": {"seed": seed}, "results": {"06_comparison": {"metrics": {
        "headline": [{"quantizer": "kmeans", "test MSE": post}, {"quantizer": "w2", "test MSE": post * 1.1},
                     {"quantizer": "VQ-VAE ema", "test MSE": vq}],
        "verdict": {"best_a_posteriori": best_post, "best_end_to_end": "VQ-VAE ema",
                    "mse_ratio_a_posteriori_over_end_to_end": ratio or post / vq}}}}}


def test_seed_views_give_the_spread_and_sentences_the_numbers_support():
    points = [_headline_point("seed=0", 0, (0.004, 0.002)), _headline_point("seed=1", 1, (0.0042, 0.0019)),
              _headline_point("seed=2", 2, (0.0038, 0.0043), best_post="w2")]
    table = sweep_stats.seed_table(points)
    assert table.loc["kmeans", "mean"] == pytest.approx(0.004) and table.loc["kmeans", "n"] == 3
    assert table.loc["kmeans", "mean ± std"] == "0.004 ± 0.0002" and table.loc["VQ-VAE ema", "seed=2"] == 0.0043
    text = str(sweep_stats.seed_prose(points))
    assert "changes with the seed (kmeans, w2)" in text and "in all 3 seeds" in text  # best end-to-end: always ema
    assert "below 1 in 1 of 3 seeds and above 1 in the others" in text  # ratios 2.0, 2.21, 0.88
    assert "kmeans vs VQ-VAE ema" in text and "w2 vs VQ-VAE ema" in text and "kmeans vs w2" not in text
    empty = str(sweep_stats.seed_prose([]))
    assert "No up-to-date point" in empty and sweep_stats.seed_table([]).empty


def _fidelity_point(name, seed, fd, floor, chosen=None):
    """A seed point whose notebook 06 scored each quantizer's two priors: ``fd`` maps quantizer -> (FD of the
    PixelCNN, FD of the Transformer); ``chosen`` the prior picked on validation (default the PixelCNN)."""
    chosen = chosen or {}
    rows = [{"quantizer": q, "test MSE": 0.004, "prior (validation)": chosen.get(q, "pixelcnn"),
             "FD pixelcnn": a, "FD transformer": b, "IS pixelcnn": 9.0 - a / 100, "IS transformer": 9.0 - b / 100}
            for q, (a, b) in fd.items()]
    return {"point": name, "params": {"seed": seed}, "overrides": {"seed": seed}, "results": {"06_comparison": {"metrics": {
        "headline": rows, "real_data_floor": {"frechet_distance": floor, "inception_score": 9.8},
        "verdict": {"mse_ratio_a_posteriori_over_end_to_end": 2.0}}}}}


def test_seed_fidelity_reads_the_prior_chosen_on_validation_and_keeps_the_floor_out_of_the_orders():
    points = [_fidelity_point("seed=0", 0, {"kmeans": (180.0, 300.0), "VQ-VAE ema": (170.0, 240.0)}, 3.0),
              _fidelity_point("seed=1", 1, {"kmeans": (150.0, 90.0), "VQ-VAE ema": (160.0, 250.0)}, 2.0,
                              chosen={"kmeans": "transformer"}),
              _fidelity_point("seed=2", 2, {"kmeans": (200.0, 300.0), "VQ-VAE ema": (100.0, 240.0)}, 2.5)]
    values = sweep_stats.headline_values(points[1], "FD")
    assert values == {"kmeans": 90.0, "VQ-VAE ema": 160.0, sweep_stats.REAL_DATA: 2.0}  # kmeans: its Transformer's FD
    assert "mse_ratio_a_posteriori_over_end_to_end" not in values  # MSE ratios only beside test MSE
    assert sweep_stats.headline_values(points[0], "IS")["kmeans"] == pytest.approx(7.2)
    table = sweep_stats.seed_table(points, "FD")
    assert table.loc[sweep_stats.REAL_DATA, "mean"] == pytest.approx(2.5) and table.loc["kmeans", "seed=1"] == 90.0
    orders = sweep_stats.seed_orders(points, "FD")
    assert len(orders) == 1 and orders.iloc[0]["verdict"] == "the points disagree"  # the floor is no quantizer
    text = str(sweep_stats.seed_fidelity_prose(points))
    assert "VQ-VAE ema in seed=0, kmeans in seed=1, VQ-VAE ema in seed=2" in text
    # lowest FD over the floor: 170/3, 90/2, 100/2.5 -> 56.7, 45, 40: mean 47, from 40 to 57
    assert "47 times the real-data floor" in text and "from 40 to 57 times" in text and "2.50 ± 0.50" in text
    assert "the seeds disagree on kmeans vs VQ-VAE ema" in text
    same = [_fidelity_point(f"seed={s}", s, {"kmeans": (180.0, 300.0), "VQ-VAE ema": (170.0 + s, 240.0)}, 3.0)
            for s in range(2)]
    text = str(sweep_stats.seed_fidelity_prose(same))
    assert "that of VQ-VAE ema in all 2 seeds" in text and "1 keep their order of FD in every seed." in text
    assert "No up-to-date point" in str(sweep_stats.seed_fidelity_prose([]))


def test_beta_views_compare_every_beta_with_one_end_to_end_reference():
    def point(beta, mse, active):
        return {"params": {"grid_vae.beta": beta}, "overrides": {"grid_vae.beta": beta}, "results": {
            "01_vae": {"metrics": {"GridVAE": {"mse_per_pixel": mse / 4, "active_units": active, "latent_units": 392}}},
            "02_w2_quantization": {"metrics": {"rows": [
                {"VAE": "GridVAE", "method": m, "K": k, "mse_per_pixel": mse * f * (2 if k == 16 else 1),
                 "bits_per_image": 49 * (4 if k == 16 else 9)} for m, f in (("kmeans", 1.0), ("w2", 1.5))
                for k in (16, 512)]}}}}
    points = [point(1.0, 0.008, 60), point(0.1, 0.004, 300)]
    ratios = sweep_stats.beta_ratios(points, "VQ-VAE ema", 0.002, k=512)
    assert list(ratios["method"]) == ["kmeans", "kmeans", "w2", "w2"] and list(ratios["beta"]) == [0.1, 1.0, 0.1, 1.0]
    assert list(ratios["MSE / VQ-VAE ema"]) == pytest.approx([2.0, 4.0, 3.0, 6.0])
    text = str(sweep_stats.beta_prose(sweep_stats.beta_summary(points), ratios, "VQ-VAE ema", 512))
    assert "from 0.00100 to 0.00200" in text and "from 300 to 60 of 392" in text
    assert "2.00 → 4.00" in text and "3.00 → 6.00" in text
    assert "at β = 0.1 (2.00)" in text and "at β = 1 (4.00)" in text
    # the best codebook (K-means) over the continuous VAE (mse / 4): 4x at both betas; the VAE itself 2x worse
    assert ("What quantizing costs is the same at every β: that codebook's test MSE is 4.00 times the continuous "
            "VAE's at β = 0.1, 4.00 times the continuous VAE's at β = 1, while the continuous VAE's own test "
            "MSE at β = 1 is 2.0 times that at β = 0.1.") in text
    assert "Fewer than two" in str(sweep_stats.beta_prose(sweep_stats.beta_summary(points[:1]), ratios, "VQ-VAE ema", 512))
    table = sweep_stats.beta_ratio_table(ratios, "VQ-VAE ema")  # a row per method (book label), a column per beta
    assert list(table.columns) == [0.1, 1.0] and table.loc["K-means on μ"].tolist() == pytest.approx([2.0, 4.0])
    assert table.loc["W2 K-means on [μ, σ]", 1.0] == pytest.approx(6.0)
    fig = plots.ratio_lines(table, ylabel="test MSE / VQ-VAE ema")
    legend = fig.axes[0].get_legend()
    assert [t.get_text() for t in legend.get_texts()] == list(table.index)
    lines = fig.axes[0].get_lines()
    assert list(lines[0].get_ydata()) == pytest.approx([2.0, 4.0]) and list(lines[1].get_ydata()) == pytest.approx([3.0, 6.0])
    rd = sweep_stats.beta_rd_frame(points, "GridVAE")
    fig = plots.rate_distortion(rd, panel="panel")  # one legend for all panels, the methods in every panel
    assert [ax.get_legend() for ax in fig.axes] == [None, None] and len(fig.legends) == 1
    assert [t.get_text() for t in fig.legends[0].get_texts()] == ["K-means on μ", "W2 K-means on [μ, σ]"]


def test_the_rate_distortion_verdict_over_seeds_names_curves_and_seeds():
    from geohelpers import sweep_stats

    def point(name, bd, best_curve):
        verdict = {"best_a_posteriori": "pullback_vector",
                   "bd_rate": {"a posteriori": {"bd_rate_pct": bd}, "a posteriori, adapted decoder": {"bd_rate_pct": None}},
                   "best_generator": {"curve": best_curve, "K": 32, "fd_over_floor": 11.4}}
        return {"point": name, "results": {"06_comparison": {"metrics": {"verdict": verdict}}}}

    text = sweep_stats.rd_seed_prose([point("seed=0", 70.0, "end to end"), point("seed=1", 80.0, "a posteriori")]).text
    assert ("K-means under every vector's own pullback metric: BD-rate +75 ± 7 % over 2 seeds (+70, +80), more bits "
            "than the end-to-end curve in every seed") in text
    assert "end-to-end VQ-VAE at K = 32 in seed=0 (FD 11.4x the floor)" in text
    assert "K-means under every vector's own pullback metric at K = 32 in seed=1" in text
    mixed = sweep_stats.rd_seed_prose([point("seed=0", -5.0, "end to end"), point("seed=1", 8.0, "end to end")]).text
    assert "its sign differs between seeds" in mixed
    assert "no point" in sweep_stats.rd_seed_prose([{"point": "seed=0", "results": {}}]).text.lower()


def test_one_up_to_date_seed_reads_as_one_seed_without_spread_words():
    one = [_headline_point("seed=0", 0, (0.004, 0.002))]
    text = str(sweep_stats.seed_prose(one))
    assert text.startswith("Only seed=0 of the seed sweep is up to date") and "2.000" in text
    assert "nan" not in text and "all 1 seeds" not in text and "±" not in text
    fid = str(sweep_stats.seed_fidelity_prose([_fidelity_point("seed=0", 0, {"kmeans": (180.0, 300.0),
                                                                            "VQ-VAE ema": (170.0, 240.0)}, 3.0)]))
    assert fid == ("In seed=0, the only up-to-date point of the seed sweep, the lowest FD is that of VQ-VAE ema, "
                   "57 times the real-data floor (3.00).")
    verdict = {"best_a_posteriori": "kmeans", "bd_rate": {"a posteriori": {"bd_rate_pct": 72.0}},
               "best_generator": {"curve": "end to end", "K": 16, "fd_over_floor": 9.5}}
    rd = sweep_stats.rd_seed_prose([{"point": "seed=0", "results": {"06_comparison": {"metrics": {"verdict": verdict}}}}]).text
    assert rd.startswith("Only seed=0 of the seed sweep is up to date: ") and "in every seed" not in rd
    assert "BD-rate +72 %, more bits than the end-to-end curve;" in rd and "over 1 seed" not in rd
