"""A posteriori codebooks: closed forms, graph geodesics, K-medoids, assignment, interface. No MNIST."""

import itertools

import networkx as nx
import numpy as np
import pytest
import torch
from scipy.sparse import csgraph

from geohelpers.config import resolve
from geohelpers.models.vae import FlatVAE, GridVAE
from geohelpers.quantize import (Codebook, GeodesicCodebook, KMeansCodebook, W2Codebook, build_codebook, nearest, nearest_k,
                                 connect_components, kmeans, kmedoids, knn_graph, shortest_paths,
                                 w2_features, w2_squared, w2_squared_general)


@pytest.fixture
def rng():
    return np.random.default_rng(0)


# --- W2 -----------------------------------------------------------------------------------------
def test_w2_closed_form_matches_the_general_gaussian_formula(rng):
    for d in (1, 2, 5):
        for _ in range(5):
            m1, m2 = rng.normal(size=d), rng.normal(size=d)
            s1, s2 = rng.uniform(0.05, 2, size=d), rng.uniform(0.05, 2, size=d)
            general = w2_squared_general(m1, np.diag(s1 ** 2), m2, np.diag(s2 ** 2))
            assert w2_squared(m1, s1, m2, s2) == pytest.approx(general, rel=1e-7, abs=1e-9)


def test_general_formula_is_a_real_oracle_off_the_diagonal(rng):
    # full covariances: the diagonal shortcut must NOT apply, and the oracle must know it
    a = rng.normal(size=(3, 3))
    s1 = a @ a.T + 0.1 * np.eye(3)
    s2 = np.diag(rng.uniform(0.5, 2, 3))
    naive = ((np.sqrt(np.diag(s1)) - np.sqrt(np.diag(s2))) ** 2).sum()
    assert w2_squared_general(np.zeros(3), s1, np.zeros(3), s2) != pytest.approx(naive, rel=1e-3)


def test_w2_kmeans_is_kmeans_on_mu_sigma(rng):
    mu, sigma = rng.normal(size=(3000, 4)).astype(np.float32), rng.uniform(0.1, 1, (3000, 4)).astype(np.float32)
    cb = W2Codebook(8, seed=3, max_iter=500, tol=0.0).fit(mu, sigma)  # run to Lloyd's fixed point
    ref = kmeans(w2_features(mu, sigma), 8, seed=3, max_iter=500, tol=0.0)
    assert ref.n_iter < 500
    assert np.allclose(cb.codewords, ref.centres[:, :4]) and np.allclose(cb.codeword_sigma, ref.centres[:, 4:])
    codes = cb.encode(mu, sigma)
    # each vector's code is its W2-nearest Gaussian codeword
    d = w2_squared(mu[:, None], sigma[:, None], cb.codewords[None], cb.codeword_sigma[None])
    assert (codes == d.argmin(1)).mean() > 0.999  # float32 ties aside
    # codewords are the W2 barycentres (mean mu, mean sigma) of their clusters
    for c in range(8):
        members = codes == c
        assert np.allclose(cb.codewords[c], mu[members].mean(0), atol=1e-4)
        assert np.allclose(cb.codeword_sigma[c], sigma[members].mean(0), atol=1e-4)


def test_kmeans_finds_well_separated_clusters(rng):
    centres = np.array([[0, 0], [10, 0], [0, 10], [10, 10]], dtype=np.float32)
    x = np.concatenate([c + rng.normal(scale=0.1, size=(250, 2)) for c in centres]).astype(np.float32)
    res = kmeans(x, 4, seed=0)
    assert sorted(map(tuple, np.round(res.centres))) == sorted(map(tuple, centres))
    assert res.inertia == pytest.approx(((x - res.centres[res.labels]) ** 2).sum(), rel=1e-4)


def test_cluster_sums_from_contiguous_columns_equal_strided_bincounts_bit_for_bit(rng):
    from geohelpers.quantize.kmeans import cluster_sums, columns

    x = rng.normal(size=(5000, 5)).astype(np.float32)
    labels = rng.integers(0, 37, len(x))
    strided = np.stack([np.bincount(labels, weights=x[:, j], minlength=37) for j in range(5)], axis=1)
    sums, counts = cluster_sums(x, labels, 37, columns(x))
    assert columns(x).flags.c_contiguous and columns(x).dtype == np.float64 and columns(x).shape == (5, 5000)
    assert np.array_equal(sums, strided) and np.array_equal(counts, np.bincount(labels, minlength=37))
    assert np.array_equal(cluster_sums(x, labels, 37)[0], strided)


# --- graph ---------------------------------------------------------------------------------------
def test_graph_geodesics_follow_the_arc_length_of_a_curve(rng):
    t = np.sort(rng.uniform(0, 3 * np.pi, 600))
    x = np.stack([np.cos(t), np.sin(t), 0.2 * t], axis=1)  # a helix
    arc = np.sqrt(1 + 0.2 ** 2) * (t[:, None] - t[None, :])
    graph = knn_graph(x, 6)
    assert csgraph.connected_components(graph, directed=False)[0] > 2  # sampling gaps split the curve
    far = np.abs(arc) > 1.0
    errors = {}
    for how in ("mst", "all_pairs"):
        geo = shortest_paths(connect_components(graph, x, how)[0], n_jobs=2)
        errors[how] = (np.abs(geo[far] - np.abs(arc[far])) / np.abs(arc[far])).max()
    assert errors["mst"] < 0.05
    assert errors["all_pairs"] > 0.2, "joining every pair of pieces adds chords that short-cut the helix"
    straight = np.linalg.norm(x[:, None] - x[None], axis=-1)
    assert (geo[far] > straight[far] * 1.05).any(), "geodesics must differ from straight lines here"


def test_graph_is_symmetric_with_plain_distance_edges(rng):
    x = rng.normal(size=(200, 3))
    g = knn_graph(x, 5)
    assert (g != g.T).nnz == 0
    rows, cols = g.nonzero()
    expected = np.linalg.norm(x[rows] - x[cols], axis=1)
    assert np.allclose(g[rows, cols].A1, expected)  # neither squared nor doubled for mutual neighbours
    mutual = [(i, j) for i, j in zip(rows, cols) if i < j]
    assert mutual, "some neighbours are mutual"
    assert (g.getnnz(axis=1) >= 5).all()


def test_parallel_shortest_paths_equal_scipy_and_networkx(rng):
    x = rng.normal(size=(120, 2))
    g = knn_graph(x, 4)
    g, _ = connect_components(g, x)
    ours = shortest_paths(g, n_jobs=2, block=16)
    assert ours.dtype == np.float32
    assert np.allclose(ours, csgraph.dijkstra(g, directed=False), rtol=1e-6)
    nxg = nx.from_scipy_sparse_array(g)
    lengths = dict(nx.all_pairs_dijkstra_path_length(nxg))
    for i, j in itertools.islice(itertools.product(range(120), repeat=2), 0, None, 97):
        assert ours[i, j] == pytest.approx(lengths[i][j], rel=1e-5)


def test_two_clusters_are_repaired_to_one_component_by_their_closest_pair():
    a = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=float)
    b = a + [10, 0]
    x = np.concatenate([a, b])
    g = knn_graph(x, 2)
    assert csgraph.connected_components(g, directed=False)[0] == 2
    fixed, rep = connect_components(g, x)
    assert rep.components_before == 2 and rep.edges_added == 1
    assert connect_components(g, x, "all_pairs")[1].edges_added == 1
    assert csgraph.connected_components(fixed, directed=False)[0] == 1
    added = fixed - g
    i, j = added.nonzero()
    assert set(zip(i, j)) == {(2, 4), (4, 2)} or set(zip(i, j)) == {(3, 5), (5, 3)}  # a closest pair, length 9
    assert np.allclose(added.data, 9.0)


def test_repair_as_spanning_tree_or_all_pairs(rng):
    blobs = np.concatenate([rng.normal(size=(30, 2)) * 0.1 + [20 * c, 0] for c in range(5)])
    g = knn_graph(blobs, 5)
    assert csgraph.connected_components(g, directed=False)[0] == 5
    tree, rep = connect_components(g, blobs, "mst")
    assert rep.components_before == 5 and rep.edges_added == 4
    full, rep = connect_components(g, blobs, "all_pairs")
    assert rep.edges_added == 10
    geo_tree, geo_full = shortest_paths(tree, n_jobs=1), shortest_paths(full, n_jobs=1)
    assert np.isfinite(geo_tree).all() and np.isfinite(geo_full).all()
    # blobs in a row: the tree links neighbours only, so blob 0 -> blob 4 goes through the others
    assert geo_tree[0, -1] == pytest.approx(geo_full[0, -1], rel=0.05)
    with pytest.raises(ValueError, match="'how'"):
        connect_components(g, blobs, "none")


# --- K-medoids -----------------------------------------------------------------------------------
@pytest.mark.parametrize("backend", ["fasterpam", "sklearn_extra"])
def test_both_kmedoids_backends_find_the_optimum_on_a_tiny_case(backend, rng):
    x = np.concatenate([rng.normal(size=(6, 2)) * 0.2 + c for c in ([0, 0], [5, 5], [0, 5])])
    d = np.linalg.norm(x[:, None] - x[None], axis=-1)
    best = min(d[:, list(m)].min(1).sum() for m in itertools.combinations(range(len(x)), 3))
    res = kmedoids(d, 3, backend=backend, seed=0)
    assert res.loss == pytest.approx(best, rel=1e-6)
    assert res.labels.max() == 2 and len(set(res.medoids)) == 3


def test_fasterpam_is_serial_by_default_and_gives_one_medoid_set_over_eight_fits(rng):
    """Ties between equal-loss swaps make the parallel search depend on thread timing; the serial one does not."""
    x = np.round(rng.normal(size=(400, 2)) * 4) / 4  # a lattice: many equal distances, many equal-loss swaps
    d = np.linalg.norm(x[:, None] - x[None], axis=-1)
    sets = {tuple(sorted(kmedoids(d, 24, seed=3).medoids)) for _ in range(8)}
    assert len(sets) == 1
    with pytest.raises(ValueError, match="'n_cpu' is 0"):
        kmedoids(d, 3, n_cpu=0)


def test_the_geodesic_codebook_fits_its_medoids_serially_whatever_n_jobs(rng, monkeypatch):
    import kmedoids as km

    seen = []
    real = km.fasterpam
    monkeypatch.setattr(km, "fasterpam", lambda *a, **kw: seen.append(kw.get("n_cpu")) or real(*a, **kw))
    _fitted_geodesic(rng, n_jobs=2)
    assert seen == [1]


# --- the geodesic codebook ----------------------------------------------------------------------
def _fitted_geodesic(rng, **kw):
    mu = rng.normal(size=(3000, 3)).astype(np.float32)
    params = dict(n_landmarks=300, knn=6, assign_neighbours=5, seed=1, n_jobs=2) | kw
    return mu, GeodesicCodebook(12, **params).fit(mu)


def test_geodesic_assignment_equals_the_brute_force_minimum(rng):
    mu, cb = _fitted_geodesic(rng)
    idx, geo = cb.build_geodesics(mu)  # same seed: the same landmarks and graph
    medoid_pos = [int(np.flatnonzero((cb.landmarks == c).all(1))[0]) for c in cb.codewords]
    x = rng.normal(size=(200, 3)).astype(np.float32)
    d = np.linalg.norm(x[:, None] - cb.landmarks[None], axis=-1)          # (200, L)
    near = np.argsort(d, axis=1)[:, :5]
    cost = d[np.arange(200)[:, None], near][:, :, None] + geo[near][:, :, medoid_pos]  # (200, 5, K)
    brute = cost.reshape(200, -1).min(1)
    codes = cb.encode(x)
    ours = np.array([min(d[i, near[i]] + geo[near[i], medoid_pos[codes[i]]]) for i in range(200)])
    assert np.allclose(ours, brute, rtol=1e-5)


def test_both_assignment_rules_and_their_disagreement(rng):
    mu, cb = _fitted_geodesic(rng)
    geodesic, nearest_landmark = cb.encode_both(mu)
    assert np.array_equal(geodesic, cb.encode(mu))
    assert np.array_equal(nearest_landmark, cb.encode(mu, assignment="nearest_landmark"))
    assert 0 < (geodesic != nearest_landmark).mean() < 0.5
    # a landmark itself is coded as its own nearest medoid by both rules
    assert np.array_equal(cb.encode(cb.landmarks), cb.landmark_code)


def test_one_neighbour_search_serves_every_k_on_the_same_landmarks(rng):
    mu, cb = _fitted_geodesic(rng)
    idx, geo = cb.build_geodesics(mu)
    other = GeodesicCodebook(**{**cb.params(), "k": 5})
    other.landmarks = cb.landmarks
    other.fit_geodesics(mu, None, idx, geo)
    x = rng.normal(size=(500, 3)).astype(np.float32)
    dist, nn = cb.neighbours(x)
    for book in (cb, other):
        assert np.array_equal(book.codes_from_neighbours(dist, nn), book.encode(x))
        assert np.array_equal(book.codes_from_neighbours(dist, nn, "nearest_landmark"),
                              book.encode(x, assignment="nearest_landmark"))
    with pytest.raises(ValueError, match="assignment"):
        cb.codes_from_neighbours(dist, nn, "euclidean")


def test_geodesic_codewords_are_landmark_vectors_and_w2_metric_works(rng):
    mu, cb = _fitted_geodesic(rng)
    assert all((cb.landmarks == c).all(1).any() for c in cb.codewords)
    assert cb.diagnostics["landmarks"] == 300 and cb.diagnostics["geodesic_ratio_median"] >= 1.0
    sigma = rng.uniform(0.1, 1, mu.shape).astype(np.float32)
    w2 = GeodesicCodebook(12, n_landmarks=300, knn=6, metric="w2", n_jobs=1).fit(mu, sigma)
    assert w2.landmarks.shape[1] == 6 and w2.encode(mu, sigma).max() < 12


def test_repeated_vectors_are_not_drawn_twice_as_landmarks(rng):
    mu = np.concatenate([np.zeros((2000, 2)), rng.normal(size=(500, 2))]).astype(np.float32)
    cb = GeodesicCodebook(4, n_landmarks=100, knn=5, n_jobs=1).fit(mu)
    assert len(np.unique(cb.landmarks, axis=0)) == 100 and cb.diagnostics["repeated_draws"] > 0


def test_unrepaired_graph_leaves_components_and_fills_inf(rng):
    x = np.concatenate([rng.normal(size=(400, 2)) * 0.1 + [30 * c, 0] for c in range(3)]).astype(np.float32)
    cb = GeodesicCodebook(6, n_landmarks=300, knn=4, repair="none", n_jobs=1).fit(x)
    assert cb.diagnostics["components_before_repair"] == 3 and cb.diagnostics["edges_added"] == 0
    assert cb.diagnostics["unreachable_pairs_filled"] > 0
    fixed = GeodesicCodebook(6, n_landmarks=300, knn=4, n_jobs=1).fit(x)
    assert fixed.diagnostics["edges_added"] == 2 and fixed.diagnostics["unreachable_pairs_filled"] == 0


# --- interface -----------------------------------------------------------------------------------
@pytest.mark.parametrize("method", ["kmeans", "w2", "geodesic"])
@pytest.mark.parametrize("vae_cls", [GridVAE, FlatVAE])
def test_codebook_interface_on_latents_and_save_load(method, vae_cls, rng, tmp_path):
    torch.manual_seed(0)
    vae = GridVAE((4, 8), 3) if vae_cls is GridVAE else FlatVAE((4, 8), 12, 4)
    x = torch.rand(40, 1, 28, 28)
    mu, sigma = vae.encode_all(x)
    cfg = resolve("quick", {"quantize.n_landmarks": 100, "quantize.knn": 5})
    cb = build_codebook(method, 16, cfg.quantize).fit(vae.to_vectors(mu).numpy(), vae.to_vectors(sigma).numpy())
    codes = cb.encode_latents(vae, mu, sigma)
    assert codes.shape == (40, *vae.code_shape) and codes.dtype == np.int64 and codes.max() < 16
    latents = cb.decode_latents(vae, codes)
    assert latents.shape == mu.shape
    # the decoder receives, at every position, the codeword of that position's code
    assert torch.equal(vae.to_vectors(latents), torch.from_numpy(cb.codewords[codes.reshape(-1)]))
    assert cb.decode_images(vae, codes).shape == x.shape
    loaded = Codebook.load(cb.save(tmp_path / f"{method}.npz"))
    assert type(loaded) is type(cb) and np.array_equal(loaded.encode_latents(vae, mu, sigma), codes)
    # seconds hold seconds only; a K-means fit's Lloyd iterations are a count of their own
    assert all(isinstance(v, float) for v in loaded.fit_seconds.values())
    assert loaded.lloyd_iterations == cb.lloyd_iterations and (cb.lloyd_iterations is None) == (method == "geodesic")


@pytest.mark.parametrize("kwargs, name", [
    (dict(k=1), "'K'"),
    (dict(k=64, n_landmarks=50), "'K'"),
    (dict(k=4, knn=0), "'knn'"),
    (dict(k=4, metric="cosine"), "'metric'"),
    (dict(k=4, repair=True), "'repair'"),
    (dict(k=4, backend="pam"), "'backend'"),
    (dict(k=4, assignment="soft"), "'assignment'"),
    (dict(k=4, assign_neighbours=0), "'assign_neighbours'"),
])
def test_bad_geodesic_parameters_raise_naming_the_parameter(kwargs, name):
    params = dict(n_landmarks=100) | kwargs
    with pytest.raises(ValueError, match=name):
        GeodesicCodebook(**params)


def test_more_landmarks_than_vectors_and_other_bad_calls_raise(rng):
    mu = rng.normal(size=(50, 2)).astype(np.float32)
    with pytest.raises(ValueError, match="'n_landmarks'"):
        GeodesicCodebook(4, n_landmarks=100, knn=5).fit(mu)
    with pytest.raises(ValueError, match="'K'"):
        KMeansCodebook(100).fit(mu)
    with pytest.raises(ValueError, match="'backend'"):
        kmedoids(np.zeros((3, 3)), 2, backend="pam")
    with pytest.raises(ValueError, match="'k'"):
        knn_graph(mu, 0)
    with pytest.raises(ValueError, match="'method'"):
        build_codebook("spectral", 4, resolve("quick").quantize)
    with pytest.raises(RuntimeError, match="not fitted"):
        KMeansCodebook(4).encode(mu)


# --- search ---------------------------------------------------------------------------------------
def test_importing_the_search_keeps_the_thread_count_the_environment_asks_for():
    """faiss and torch share one OpenMP runtime: the search must not override ``OMP_NUM_THREADS``."""
    import os
    import subprocess
    import sys

    code = ("import torch; before = torch.get_num_threads(); import geohelpers.stages; import geohelpers.evaluation; "
            "print(before, torch.get_num_threads())")
    for threads in ("1", "2"):
        env = {**os.environ, "OMP_NUM_THREADS": threads, "MKL_NUM_THREADS": threads}
        out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
        assert out.stdout.split() == [threads, threads], out.stdout
def test_nearest_and_nearest_k_equal_brute_force(rng):
    centres = rng.normal(size=(300, 5)).astype(np.float32)
    x = rng.normal(size=(2000, 5)).astype(np.float32)
    d2 = ((x[:, None] - centres[None]) ** 2).sum(-1)
    order = np.argsort(d2, axis=1)
    got_d2, got_i = nearest(centres, x, 1)
    assert np.array_equal(got_i[:, 0], order[:, 0]) and np.allclose(got_d2[:, 0], d2.min(1), rtol=1e-4, atol=1e-5)
    dist, idx = nearest_k(centres, x, 6)
    assert np.array_equal(idx, order[:, :6])
    assert np.allclose(dist, np.sqrt(np.take_along_axis(d2, order[:, :6], axis=1)), rtol=1e-4, atol=1e-5)
    assert nearest_k(centres, x, 1)[1].shape == (2000, 1)
