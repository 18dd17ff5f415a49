"""Codebook stages shared by notebooks 02 and 03: caching, evaluation, metrics. No MNIST."""

import numpy as np
import pytest
import torch

from geohelpers import evaluation, geodesic_experiments, metrics, stages
from geohelpers.config import resolve
from geohelpers.models.vae import GridVAE


def test_code_statistics():
    uniform = metrics.code_statistics(np.arange(64) % 16, 16)
    assert uniform["usage"] == 1.0 and uniform["dead"] == 0
    assert uniform["perplexity"] == pytest.approx(16) and uniform["entropy_bits"] == pytest.approx(4)
    single = metrics.code_statistics(np.full((5, 7, 7), 3), 8)
    assert single["used"] == 1 and single["dead"] == 7 and single["perplexity"] == pytest.approx(1.0)
    assert metrics.bits_per_image(49, 512) == pytest.approx(441.0)
    assert metrics.bits_per_image(16, 512) == pytest.approx(144.0)


@pytest.fixture
def small():
    torch.manual_seed(0)
    vae = GridVAE((4, 8), 2)
    x = torch.rand(60, 1, 28, 28)
    cfg = resolve("quick", {"quantize.n_landmarks": 200, "quantize.knn": 5, "quantize.ks": [8, 16], "prior.ks": [16]})
    return vae, x, cfg, stages.vaes.posterior_latents(vae, x[:40]), stages.vaes.posterior_latents(vae, x[40:])


def test_codebooks_are_cached_and_reloaded(small, tmp_home):
    vae, x, cfg, train, test = small
    cb, fitted = stages.codebooks.fit_codebook("grid", "w2", 8, cfg, train)
    again, fitted_again = stages.codebooks.fit_codebook("grid", "w2", 8, cfg, train)
    assert fitted and not fitted_again
    assert np.array_equal(cb.codewords, again.codewords) and np.array_equal(cb.codeword_sigma, again.codeword_sigma)
    other = resolve("quick", {"quantize.n_landmarks": 200, "quantize.knn": 5, "quantize.kmeans_max_iter": 3})
    assert stages.codebooks.codebook_tag("grid", "w2", 8, other) != stages.codebooks.codebook_tag("grid", "w2", 8, cfg)
    assert stages.codebooks.codebook_tag("grid", "w2", 8, resolve("quick", {"quantize.n_landmarks": 200,
        "quantize.knn": 5, "quantize.ks": [8], "prior.ks": [8]})) == stages.codebooks.codebook_tag("grid", "w2", 8, cfg)


def test_geodesic_codebooks_share_one_graph_and_reload(small, tmp_home):
    vae, x, cfg, train, test = small
    books, seconds, work = stages.codebooks.fit_geodesic_codebooks("grid", cfg, train)
    assert set(books) == {8, 16} and work is not None and "shortest_paths" in seconds
    assert np.array_equal(books[8].landmarks, books[16].landmarks)
    assert set(books[16].fit_seconds) == {"landmarks", "knn_graph", "repair", "shortest_paths", "kmedoids"}
    again, seconds_again, work_again = stages.codebooks.fit_geodesic_codebooks("grid", cfg, train)
    assert seconds_again == {} and work_again is None
    assert np.array_equal(again[16].encode(test.vectors_mu), books[16].encode(test.vectors_mu))
    _, _, rebuilt = stages.codebooks.fit_geodesic_codebooks("grid", cfg, train, need_work=True)
    assert np.array_equal(rebuilt.geodesics, work.geodesics)
    variant = geodesic_experiments.geodesic_variant(books[16], train.vectors_mu, train.vectors_sigma, work,
                                        backend="sklearn_extra")
    assert variant.backend == "sklearn_extra" and np.array_equal(variant.landmarks, books[16].landmarks)


def test_evaluation_of_a_codebook_on_test_images(small, tmp_home):
    vae, x, cfg, train, test = small
    cb, _ = stages.codebooks.fit_codebook("grid", "kmeans", 16, cfg, train)
    res, codes = evaluation.evaluate_codebook(cb, vae, test, x[40:])
    assert codes.shape == (20, 7, 7)
    expected = metrics.mse_per_pixel(x[40:], cb.decode_images(vae, codes))
    assert res["mse_per_pixel"] == pytest.approx(expected)
    assert res["bits_per_image"] == pytest.approx(49 * 4) and 0 < res["usage"] <= 1
    path = stages.codes.save_codes(cfg, "grid_kmeans_K16", test=codes)
    with np.load(path) as saved:
        assert np.array_equal(saved["test"], codes)


def test_component_counts_compare_two_landmark_draws(rng=np.random.default_rng(0)):
    vectors = np.concatenate([np.zeros((500, 2)), rng.normal(size=(500, 2))]).astype(np.float32)
    rows = geodesic_experiments.component_counts(vectors, (3,), 200, seed=0)
    by_draw = {r["landmarks"]: r for r in rows}
    assert by_draw["distinct"]["distinct values"] == 200
    assert by_draw["with repeats"]["distinct values"] < 200


def test_kmeans_codebooks_fill_one_row_per_setting_and_store_codes(small, tmp_home):
    vae, x, cfg, train, test = small
    lat = {"GridVAE": {"train": train, "val": test, "test": test}}
    rows, books = evaluation.kmeans_codebooks({"GridVAE": vae}, lat, x[40:], cfg)
    assert [(r["method"], r["K"]) for r in rows] == [("kmeans", 8), ("kmeans", 16), ("w2", 8), ("w2", 16)]
    assert all(r["fitted_in_this_run"] for r in rows)
    again, _ = evaluation.kmeans_codebooks({"GridVAE": vae}, lat, x[40:], cfg, save=False)
    assert not any(r["fitted_in_this_run"] for r in again)
    assert [r["mse_per_pixel"] for r in again] == [r["mse_per_pixel"] for r in rows]
    with np.load(tmp_home / "artifacts" / "quick" / "codes" / "grid_w2_K16.npz") as saved:
        assert saved["train"].shape == (40, 7, 7) and saved["val"].shape == (20, 7, 7)
    assert stages.vaes.continuous_mse(vae, test, x[40:]) == pytest.approx(
        metrics.mse_per_pixel(x[40:], vae.decode(test.mu)), rel=1e-6)


def test_one_neighbour_search_codes_every_k_like_each_codebook(small, tmp_home):
    vae, x, cfg, train, test = small
    books, _, _ = stages.codebooks.fit_geodesic_codebooks("grid", cfg, train)
    codes, seconds, (dist, nn) = stages.codebooks.geodesic_codes_all_k(books, vae, test)
    assert set(codes) == {8, 16} and seconds > 0 and nn.shape == (len(test.vectors_mu), cfg.quantize.assign_neighbours)
    for k, cb in books.items():
        assert np.array_equal(codes[k], cb.encode_latents(vae, test.mu, test.sigma))


def test_a_prior_is_trained_on_stored_codes_cached_and_checked(tmp_home):
    cfg = resolve("quick", {"prior.transformer_dim": 16, "prior.pixelcnn_channels": 8, "prior.max_epochs": 15})
    rng = np.random.default_rng(0)
    # codes with structure: each map repeats its first code, so context makes the rest predictable
    first = rng.integers(0, 8, size=(300, 1, 1))
    maps = {s: np.broadcast_to(first[:n], (n, 7, 7)).copy() for s, n in (("train", 300), ("val", 50), ("test", 100))}
    stages.codes.save_codes(cfg, "grid_toy_K8", **maps)
    rows, trained = evaluation.train_priors(["grid_toy_K8"], cfg)
    assert [r["prior"] for r in rows] == list(cfg.prior.kinds)
    for row in rows:
        assert row["n_maps"] == 100 and row["positions"] == 49
        assert row["nll_nats_per_token"] < row["unigram_nll"]  # context helps: the codes repeat
    again = stages.priors.train_prior("transformer", "grid_toy_K8", 8, cfg)
    assert not again.built_now and again.history.epochs == trained["grid_toy_K8", "transformer"].history.epochs
    with pytest.raises(ValueError, match="'k'"):
        stages.priors.train_prior("transformer", "grid_toy_K8", 4, cfg)
    with pytest.raises(FileNotFoundError, match="notebook"):
        stages.codes.load_codes(cfg, "grid_missing_K8")


def test_code_maps_of_a_large_codebook_round_trip_in_the_smallest_type(tmp_home):
    rng = np.random.default_rng(0)
    maps = {s: rng.integers(0, 40_000, size=(n, 7, 7)) for s, n in (("train", 20), ("val", 5), ("test", 5))}
    maps["train"][0, 0, 0] = 39_999
    cfg = resolve("quick")
    path = stages.codes.save_codes(cfg, "grid_big_K40000", **maps)
    with np.load(path) as z:
        assert z["train"].dtype == np.uint16  # int16 would have wrapped past 32,767
    back = stages.codes.load_codes(cfg, "grid_big_K40000")
    assert all(np.array_equal(back[s], maps[s]) and back[s].dtype == np.int64 for s in maps)
    assert stages.codes.code_dtype(np.array([3, 200])) == np.uint8
    with pytest.raises(ValueError, match=">= 0"):
        stages.codes.code_dtype(np.array([-1]))


def test_an_artifact_whose_identity_differs_is_rebuilt_not_loaded(monkeypatch):
    """Config, package source, library version and input codebook each change the identity."""
    from geohelpers import artifacts

    cfg = resolve("quick")
    base = {"vae": stages.vaes.vae_tag("grid", cfg), "codebook": stages.codebooks.codebook_tag("grid", "kmeans", 16, cfg),
            "codes": stages.codes.code_identity("grid_kmeans_K16", cfg)}
    other_cfg = resolve("quick", {"grid_vae.beta": 0.5})
    assert stages.vaes.vae_tag("grid", other_cfg) != base["vae"]
    # the codebook knows its VAE, the code maps their codebook: a new VAE changes all three
    assert stages.codebooks.codebook_tag("grid", "kmeans", 16, other_cfg) != base["codebook"]
    assert stages.codes.code_identity("grid_kmeans_K16", other_cfg) != base["codes"]
    # a stopping-rule change retrains every model
    assert stages.vaes.vae_tag("grid", resolve("quick", {"training.patience": 5})) != base["vae"]
    monkeypatch.setattr(artifacts, "source_digest", lambda module=None: "another source")
    assert stages.vaes.vae_tag("grid", cfg) != base["vae"]
    monkeypatch.undo()
    monkeypatch.setattr(artifacts, "library_versions", lambda: {"torch": "0.0"})
    assert stages.vaes.vae_tag("grid", cfg) != base["vae"]
    monkeypatch.undo()
    assert stages.vaes.vae_tag("grid", cfg) == base["vae"]
    monkeypatch.setattr(stages.vqvaes, "a_posteriori_choice", lambda cfg: "geodesic")
    assert stages.vqvaes.vqvae_tag("hybrid", 16, cfg) != stages.vqvaes.vqvae_tag("hybrid", 16, resolve(
        "quick", {"quantize.knn": 4}))  # the hybrid starts from the chosen codebook, here the geodesic one
    assert stages.vqvaes.vqvae_tag("hybrid", 16, cfg) != stages.vqvaes.vqvae_tag("hybrid", 16, resolve(
        "quick", {"grid_vae.beta": 0.5}))  # and from the GridVAE


def test_code_maps_made_by_another_codebook_are_refused(tmp_home):
    from geohelpers.artifacts import StaleArtifactError

    cfg = resolve("quick")
    maps = {s: np.zeros((3, 7, 7), dtype=np.int64) for s in ("train", "val", "test")}
    stages.codes.save_codes(cfg, "grid_kmeans_K16", **maps)
    assert set(stages.codes.load_codes(cfg, "grid_kmeans_K16")) == {"train", "val", "test"}
    with pytest.raises(StaleArtifactError, match="grid_kmeans_K16"):
        stages.codes.load_codes(resolve("quick", {"quantize.kmeans_tol": 1e-3}), "grid_kmeans_K16")


def test_the_whole_package_source_enters_identities_but_presentation_does_not():
    from geohelpers import artifacts

    assert {"train.py", "data.py", "metrics.py", "files.py"}.isdisjoint(artifacts.NOT_IN_IDENTITY)
    assert {"selection.py", "prose.py", "tables.py"} <= artifacts.RESULTS_ONLY and len(artifacts.source_digest()) == 16


def test_an_identity_covers_the_source_its_stage_imports_and_nothing_else():
    """A VAE's identity hashes the modules its stage imports, transitively (its model, the training loop,
    the data), and not what only evaluates artifacts (``evaluation.py``) or makes other artifacts (priors)."""
    from geohelpers import artifacts

    vae = artifacts.import_closure("geohelpers.stages.vaes")
    assert {"stages/vaes.py", "stages/build.py", "models/vae.py", "train.py", "data.py"} <= set(vae)
    # config.py enters as the resolved values of the sections a stage reads (VALUES_ONLY), not as source
    assert not {"evaluation.py", "graph.py", "stages/priors.py", "models/pixelcnn.py", "config.py"} & set(vae)
    prior = artifacts.import_closure("geohelpers.stages.priors")
    assert {"models/pixelcnn.py", "models/transformer.py", "stages/codes.py"} <= set(prior)
    for module in ("geohelpers.stages." + m for m in ("vaes", "codebooks", "codes", "priors", "vqvaes", "scoring",
                                                       "adaptation")):
        assert not artifacts.NOT_IN_IDENTITY & set(artifacts.import_closure(module)), module
        assert "evaluation.py" not in artifacts.import_closure(module), module


def test_editing_an_imported_module_changes_the_identity_and_editing_evaluation_does_not(tmp_path, monkeypatch):
    """On a copy of the package: an edit of ``models/vae.py`` changes the VAE stage's source digest, an edit
    of ``evaluation.py`` does not."""
    import shutil

    from geohelpers import artifacts

    pkg = tmp_path / "geohelpers"
    shutil.copytree(artifacts.PACKAGE_ROOT, pkg, ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.setattr(artifacts, "PACKAGE_ROOT", pkg)
    monkeypatch.setattr(artifacts, "package_modules", lambda: sorted(pkg.rglob("*.py")))

    def digest() -> str:
        artifacts.source_digest.cache_clear()
        return artifacts.source_digest("geohelpers.stages.vaes")

    before = digest()
    (pkg / "evaluation.py").write_text((pkg / "evaluation.py").read_text() + "\n# an edit\n")
    assert digest() == before
    (pkg / "models" / "vae.py").write_text((pkg / "models" / "vae.py").read_text() + "\n# an edit\n")
    assert digest() != before
    artifacts.source_digest.cache_clear()


def test_every_decoder_aware_codebook_is_fitted_from_the_pullback_metrics_and_reloads(small, tmp_home):
    """``pullback_metrics`` gives the mean metrics and the subsample's own metrics; ``pullback_vector`` is
    fitted on the latter (its vectors are the subsample's), stored, reloaded, and encodes test latents."""
    from geohelpers.config import PULLBACK_METHODS

    vae, x, cfg, train, test = small
    cfg = resolve("quick", {"quantize.n_landmarks": 200, "quantize.knn": 5, "quantize.ks": [8, 16], "prior.ks": [16],
                            "quantize.pullback_images": 10, "quantize.pullback_probes": 4})
    pb = stages.codebooks.pullback_metrics(vae, train, cfg)
    assert pb.metrics.shape == (49, 2, 2) and pb.vectors.metrics.shape == (10 * 49, 2, 2)
    assert pb.vectors.mu.shape == (10 * 49, 2) and np.all(np.linalg.eigvalsh(pb.vectors.metrics) > 0)
    books = stages.codebooks.grid_codebooks_at(16, cfg, train, pb)
    assert set(PULLBACK_METHODS) <= set(books) and books["pullback_vector"].method == "pullback_vector"
    again = stages.codebooks.grid_codebooks_at(16, cfg, train, pb)["pullback_vector"]
    assert np.array_equal(again.codewords, books["pullback_vector"].codewords)
    res, codes = evaluation.evaluate_codebook(again, vae, test, x[40:])
    assert codes.shape == (20, 7, 7) and 0 < res["usage"] <= 1
    with pytest.raises(ValueError, match="'vectors' is missing"):
        stages.codebooks.fit_codebook("grid", "pullback_vector", 8, cfg, train, pb.metrics)


def test_a_code_set_is_a_value_with_one_name():
    from geohelpers.artifacts import CodeSet

    for cs in (CodeSet("grid", "kmeans", 512), CodeSet("vqvae", "ema_restart", 128), CodeSet("flat", "pullback_vector", 16)):
        assert CodeSet.parse(cs.name) == cs and str(cs) == cs.name
    assert CodeSet.of_quantizer("VQ-VAE ema_restart", 64) == CodeSet("vqvae", "ema_restart", 64)
    assert CodeSet.of_quantizer("pullback_vector", 512).name == "grid_pullback_vector_K512"
    for bad in ("grid_kmeans", "grid_kmeans_Kx", "disk_kmeans_K8"):
        with pytest.raises(ValueError, match="code set"):
            CodeSet.parse(bad)


def test_straight_line_medoids_equal_geodesic_medoids_where_the_data_are_straight_and_differ_on_a_spiral():
    """On collinear points the k-NN graph's geodesics are the straight-line distances, so the control
    (K-medoids with straight lines on the same landmarks) finds the geodesic codebook's medoids; on a
    spiral, paths along the data and straight lines disagree, and so do the medoids."""
    from geohelpers.quantize.codebook import GeodesicCodebook

    rng = np.random.default_rng(0)
    t = np.sort(rng.uniform(0, 1, 600))
    line = np.stack([t, 2 * t], 1).astype(np.float32)
    base = GeodesicCodebook(6, seed=0, n_landmarks=300, knn=4, n_jobs=1).fit(line, np.ones_like(line))
    control = geodesic_experiments.StraightLineMedoids(base).fit_on_landmarks()
    # the same medoids, up to a neighbouring landmark where float sums break a near-tie (spacing ~0.007)
    assert np.allclose(np.sort(control.codewords, 0), np.sort(base.codewords, 0), atol=0.01)
    theta = 3 * np.pi * t
    spiral = np.stack([theta * np.cos(theta), theta * np.sin(theta)], 1).astype(np.float32)
    base = GeodesicCodebook(6, seed=0, n_landmarks=300, knn=4, n_jobs=1).fit(spiral, np.ones_like(spiral))
    control = geodesic_experiments.StraightLineMedoids(base).fit_on_landmarks()
    assert not np.allclose(np.sort(control.codewords, 0), np.sort(base.codewords, 0), atol=0.1)
    assert (control.encode(spiral) != base.encode(spiral)).mean() > 0.05
