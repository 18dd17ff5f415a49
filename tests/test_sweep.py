"""Sweeps: parsing, the points' folders and stamps, a real two-point Dask sweep, and the aggregation."""

import json

import numpy as np
import pandas as pd
import pytest

from geohelpers import run, sweep
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


QUICK_POINT = ["--profile", "quick", "--only", "01", "--workers", "2",
               "--set", "data.n_train=300", "data.n_val=100", "data.n_test=100"]


def test_a_two_point_sweep_runs_on_a_local_cluster_then_skips_and_keeps_results_of_a_failed_sweep(tmp_home, capsys):
    run.main(QUICK_POINT + ["--sweep", "seed=0,1"])
    root = tmp_home / "results" / "quick" / "sweeps" / "seed"
    for s in (0, 1):
        point = json.loads((root / f"seed={s}" / "point.json").read_text())
        assert point["status"] == "ok" and point["params"] == {"seed": s} and point["overrides"]["data.n_train"] == 300
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
    # a point with a bad value fails at once, naming the parameter; the other point runs and keeps its results
    with pytest.raises(SystemExit) as exc:
        run.main(QUICK_POINT + ["--sweep", "grid_vae.beta=0.1,-1"])
    assert exc.value.code == 1
    out = capsys.readouterr().out
    assert "grid_vae.beta=-1" in out and "FAILED" in out and "'grid_vae.beta' is -1" in out
    ok = tmp_home / "results" / "quick" / "sweeps" / "grid_vae.beta" / "grid_vae.beta=0.1" / "01_vae.json"
    assert json.loads(ok.read_text())["config"]["grid_vae"]["beta"] == 0.1


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
    table = sweep.spread(values)
    assert table.loc["a", "mean"] == pytest.approx(1.1) and table.loc["a", "std"] == pytest.approx(0.1)
    assert table.loc["b", "n"] == 3 and table.loc["c", "seed=1"] == 2.0
    orders = sweep.paired_orders(values).set_index(["a", "b"])
    assert orders.loc[("a", "b"), "verdict"] == "a lower in every point"
    assert orders.loc[("b", "c"), "verdict"] == "the points disagree" and orders.loc[("b", "c"), "a lower in"] == 2
    assert orders.loc[("a", "c"), "points"] == 3


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
    values = sweep.headline_values(points[0])
    assert values == {"kmeans": 0.008, "VQ-VAE ema": 0.002, "mse_ratio_a_posteriori_over_end_to_end": 4.0}
    rows = sweep.beta_rows(points)
    assert [(r["beta"], r["method"], r["mse_per_pixel"]) for r in rows] == [(1.0, "kmeans", 0.008), (0.1, "kmeans", 0.004)]
    summary = sweep.beta_summary(points)
    assert [r["beta"] for r in summary] == [0.1, 1.0] and summary[1]["a_posteriori_over_end_to_end"] == 4.0
    assert summary[0]["continuous_mse"] == 0.002 and summary[0]["active_units"] == 300
