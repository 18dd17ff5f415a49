"""The decoder's pullback metric and the decoder-aware codebooks (geohelpers.quantize.pullback)."""

import numpy as np
import pytest
import torch

from geohelpers.models.vae import FlatVAE, GridVAE
from geohelpers.quantize import kmeans
from geohelpers.quantize.codebook import Codebook
from geohelpers.quantize.kmeans import columns
from geohelpers.quantize.pullback import (PullbackMeanCodebook, PullbackPositionCodebook, build_pullback_codebook,
                                          check_metric, first_order_error, mean_metrics, probe_metrics,
                                          vector_metrics, with_ridge)


def tiny(kind: str):
    torch.manual_seed(0)
    vae = GridVAE((2, 3), latent_dim=2) if kind == "grid" else FlatVAE((2, 3), latent_dim=8, n_chunks=4)
    return vae.eval()


def autograd_metrics(vae, mu):
    """The oracle: the full Jacobian of the decoded image by torch.autograd.functional.jacobian."""
    out = []
    for z in mu:
        jac = torch.autograd.functional.jacobian(lambda v: vae.decode(v[None])[0].reshape(-1), z)  # (784, *latent)
        cols = vae.to_vectors(jac.reshape(784, *vae.latent_shape)).reshape(784, vae.n_positions, vae.vector_dim)
        out.append(torch.einsum("xpi,xpj->pij", cols, cols))
    return torch.stack(out)


@pytest.mark.parametrize("kind", ["grid", "flat"])
def test_vector_metrics_equal_jt_j(kind):
    vae = tiny(kind)
    mu = torch.randn(3, *vae.latent_shape)
    exact = vector_metrics(vae, mu, batch_size=2)
    assert exact.shape == (3, vae.n_positions, vae.vector_dim, vae.vector_dim)
    assert torch.allclose(exact, autograd_metrics(vae, mu), rtol=1e-4, atol=1e-7)


@pytest.mark.parametrize("kind", ["grid", "flat"])
def test_probe_estimate_is_unbiased(kind):
    vae = tiny(kind)
    mu = torch.randn(2, *vae.latent_shape)
    exact = vector_metrics(vae, mu)
    est = probe_metrics(vae, mu, n_probes=4000, seed=1)
    err = (est - exact).norm(dim=(-1, -2)) / exact.norm(dim=(-1, -2))
    assert float(err.mean()) < 0.06  # about sqrt(2 / 4000) ~ 0.02 per matrix
    means = mean_metrics(vae, mu, n_probes=4000, seed=1)
    assert means.shape == (vae.n_positions, vae.vector_dim, vae.vector_dim)
    target = exact.mean(0).numpy()
    rel = np.linalg.norm(means - target, axis=(1, 2)) / np.linalg.norm(target, axis=(1, 2))
    assert rel.max() < 0.1


def test_first_order_error_matches_the_decoded_change_for_small_steps():
    vae = tiny("grid")
    mu = torch.randn(1, *vae.latent_shape)
    vec = vae.to_vectors(mu).numpy()
    g = vector_metrics(vae, mu)[0].numpy()
    step = np.zeros_like(vec)
    step[10] = [1e-3, -2e-3]
    moved = vae.from_vectors(torch.from_numpy(vec + step))
    with torch.no_grad():
        true = float(((vae.decode(moved) - vae.decode(mu)) ** 2).sum())
    codewords = (vec + step)[10:11]
    lin = first_order_error(np.array([0]), codewords, vec[10:11], g[10:11])[0]
    assert lin == pytest.approx(true, rel=1e-2)


def clustered(n_images=300, p=4, d=2, seed=0):
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(6, d)) * 3
    return (centres[rng.integers(0, 6, n_images * p)] + rng.normal(size=(n_images * p, d))).astype(np.float32)


def test_with_identity_metrics_both_codebooks_are_euclidean_kmeans():
    x = clustered()
    ref = kmeans(x, 8, seed=3, max_iter=50, init_sample=500)
    eye = np.eye(2)
    mean_cb = PullbackMeanCodebook(8, seed=3, metric=eye, init_sample=500).fit(x)
    pos_cb = PullbackPositionCodebook(8, seed=3, metrics=np.stack([eye] * 4), init_sample=500).fit(x)
    assert np.array_equal(mean_cb.encode(x), ref.labels)
    assert np.array_equal(pos_cb.encode(x), ref.labels)
    assert np.allclose(pos_cb.codewords, ref.centres, atol=1e-5)
    assert pos_cb.lloyd_iterations == ref.n_iter and "iterations" not in pos_cb.fit_seconds


def random_spd(rng, p, d):
    a = rng.normal(size=(p, d, d))
    return a @ np.swapaxes(a, 1, 2) + 0.1 * np.eye(d)


def assert_minimiser(objective, centres, rng, tries=20):
    """Every small random move of one centre raises ``objective``: ``centres`` minimise it."""
    base = objective(centres)
    for _ in range(tries):
        nudged = centres.copy()
        nudged[rng.integers(len(centres))] += rng.normal(scale=1e-2, size=centres.shape[1]).astype(np.float32)
        assert objective(nudged) > base


def test_weighted_m_step_is_the_exact_minimiser():
    rng = np.random.default_rng(1)
    x = clustered(p=4, d=3)
    metrics = random_spd(rng, 4, 3)
    cb = PullbackPositionCodebook(5, seed=0, metrics=metrics, init_sample=500).fit(x)
    codes = cb.encode(x)
    pos = np.tile(np.arange(4), len(x) // 4)

    def objective(c):
        diff = c[codes] - x
        return float(np.einsum("ni,nij,nj->", diff, metrics[pos], diff))

    best, _ = cb.m_step(x, codes, cb.codewords)
    assert_minimiser(objective, best, rng)


def test_per_position_e_step_matches_a_brute_force_loop():
    rng = np.random.default_rng(2)
    x = clustered(n_images=40, p=4, d=3)
    metrics = random_spd(rng, 4, 3)
    cb = PullbackPositionCodebook(6, seed=0, metrics=metrics, init_sample=100).fit(x)
    brute = [int(np.argmin([(x[i] - c) @ metrics[i % 4] @ (x[i] - c) for c in cb.codewords])) for i in range(len(x))]
    assert np.array_equal(cb.encode(x), brute)


def test_mean_codebook_minimises_the_metric_not_the_euclidean_error():
    rng = np.random.default_rng(4)
    x = rng.normal(size=(4000, 2)).astype(np.float32)
    metric = np.diag([100.0, 0.01])  # only the first coordinate matters
    cb = PullbackMeanCodebook(8, seed=0, metric=metric, init_sample=1000).fit(x)
    plain = kmeans(x, 8, seed=0, init_sample=1000)
    err = lambda c, codes: float((((c[codes] - x) @ np.sqrt(metric)) ** 2).sum())  # noqa: E731
    assert err(cb.codewords, cb.encode(x)) < 0.5 * err(plain.centres, plain.labels)


def test_codebooks_save_and_load(tmp_path):
    x = clustered()
    metrics = random_spd(np.random.default_rng(0), 4, 2)
    for cb in (PullbackMeanCodebook(4, metric=metrics.mean(0), init_sample=200).fit(x),
               PullbackPositionCodebook(4, metrics=metrics, init_sample=200).fit(x)):
        back = Codebook.load(cb.save(tmp_path / f"{cb.method}.npz"))
        assert type(back) is type(cb) and np.array_equal(back.encode(x), cb.encode(x))


@pytest.mark.parametrize("build, message", [
    (lambda: PullbackMeanCodebook(4, metric=np.diag([1.0, 0.0])), "'metric' is not positive definite"),
    (lambda: PullbackMeanCodebook(4, metric=np.array([[1.0, 2.0], [0.0, 1.0]])), "'metric' is not symmetric"),
    (lambda: PullbackMeanCodebook(4), "'metric' is missing"),
    (lambda: PullbackPositionCodebook(4, metrics=np.eye(2)), "'metrics' has shape (2, 2)"),
    (lambda: PullbackPositionCodebook(4, metrics=np.stack([np.eye(2), -np.eye(2)])), "'metrics' is not positive definite"),
    (lambda: build_pullback_codebook("pullback_any", 4, np.eye(2), None), "'method' is 'pullback_any'"),
    (lambda: probe_metrics(tiny("grid"), torch.zeros(1, 2, 7, 7), 0), "'n_probes' is 0"),
])
def test_bad_parameters_name_themselves(build, message):
    with pytest.raises(ValueError) as info:
        build()
    assert message in str(info.value)


def test_position_codebook_needs_whole_images():
    cb = PullbackPositionCodebook(2, metrics=np.stack([np.eye(2)] * 4), init_sample=10)
    with pytest.raises(ValueError, match="multiple of the 4 positions"):
        cb.fit(np.zeros((10, 2), np.float32))


def test_ridge_makes_a_singular_metric_positive_definite():
    m = np.diag([2.0, 0.0])
    with pytest.raises(ValueError):
        check_metric(m)
    assert np.allclose(check_metric(with_ridge(m, 1e-3)), np.diag([2.001, 0.001]))


def test_pullback_geodesics_reduce_to_notebook_03s_under_the_identity():
    from geohelpers.quantize import GeodesicCodebook
    from geohelpers.quantize.pullback import PullbackGeodesicCodebook

    x = clustered(n_images=200, p=4, d=2)
    kw = dict(n_landmarks=300, knn=6, assign_neighbours=4, n_jobs=1)
    plain = GeodesicCodebook(8, seed=1, **kw).fit(x)
    pulled = PullbackGeodesicCodebook(8, seed=1, pullback_metric=np.eye(2), **kw).fit(x)
    assert np.array_equal(pulled.encode(x), plain.encode(x))
    assert np.allclose(pulled.codewords, plain.codewords)


def test_pullback_geodesic_lengths_are_riemannian_under_the_metric(tmp_path):
    from geohelpers.quantize.pullback import PullbackGeodesicCodebook

    x = clustered(n_images=200, p=4, d=2)
    metric = np.array([[4.0, 1.0], [1.0, 2.0]])
    cb = PullbackGeodesicCodebook(8, seed=1, pullback_metric=metric, n_landmarks=300, knn=6, n_jobs=1).fit(x)
    a, b = x[0], x[1]
    wa, wb = cb.features(x[:2], None)
    assert np.linalg.norm(wa - wb) == pytest.approx(np.sqrt((a - b) @ metric @ (a - b)), rel=1e-5)
    # codewords are medoids' mu in the original coordinates, and the codebook round-trips
    assert all((x == c).all(axis=1).any() for c in cb.codewords)
    back = Codebook.load(cb.save(tmp_path / "g.npz"))
    assert np.array_equal(back.encode(x), cb.encode(x))
    with pytest.raises(ValueError, match="'pullback_metric' is not positive definite"):
        PullbackGeodesicCodebook(8, pullback_metric=np.diag([1.0, -1.0]))


# --- the Jacobian-weighted codebook: every vector's own metric ------------------------------------------------

def test_vector_costs_and_m_step_match_brute_force():
    from geohelpers.quantize.pullback import metric_costs, metric_m_step

    rng = np.random.default_rng(5)
    x = clustered(n_images=30, p=4, d=3)
    g = random_spd(rng, len(x), 3)
    centres = x[rng.choice(len(x), 6, replace=False)]
    cost, codes = metric_costs(x, g, centres, chunk=17)
    brute = np.array([[(x[i] - c) @ g[i] @ (x[i] - c) for c in centres] for i in range(len(x))])
    assert np.array_equal(codes, brute.argmin(1)) and np.allclose(cost, brute.min(1), rtol=1e-6, atol=1e-9)
    new, sizes = metric_m_step(x, g, codes, centres, 6)
    assert sizes.sum() == len(x)

    def objective(c):
        diff = c[codes] - x
        return float(np.einsum("ni,nij,nj->", diff, g, diff))

    assert_minimiser(objective, new, rng)


def test_terms_computed_once_per_fit_give_the_per_iteration_results_bit_for_bit():
    """The Lloyd loops compute the float64 terms of the vectors once per fit (metric_terms, the bincount
    columns, the positions); the steps must equal, to the last bit, the same steps computed from scratch
    as each iteration once did (every term recomputed chunk by chunk, strided float32 bincount weights)."""
    from geohelpers.quantize.pullback import metric_costs, metric_m_step, metric_terms

    rng = np.random.default_rng(9)
    x = clustered(n_images=300, p=4, d=3)
    g = random_spd(rng, len(x), 3).astype(np.float32)
    centres = x[rng.choice(len(x), 7, replace=False)]
    chunk = 97
    cost, codes = np.empty(len(x)), np.empty(len(x), np.int64)
    c = centres.astype(np.float64)
    outer = np.einsum("ki,kj->kij", c, c).reshape(len(c), -1)
    for s in range(0, len(x), chunk):           # the per-iteration formulation
        zz, gg = x[s:s + chunk].astype(np.float64), g[s:s + chunk].astype(np.float64)
        gz = np.einsum("nij,nj->ni", gg, zz)
        full = np.einsum("ni,ni->n", zz, gz)[:, None] - 2 * gz @ c.T + gg.reshape(len(gg), -1) @ outer.T
        codes[s:s + chunk] = full.argmin(1)
        cost[s:s + chunk] = np.maximum(full[np.arange(len(full)), codes[s:s + chunk]], 0.0)
    terms = metric_terms(x, g, chunk)
    got = metric_costs(x, g, centres, chunk=chunk, terms=terms)
    assert np.array_equal(got[0], cost) and np.array_equal(got[1], codes)
    flat = g.astype(np.float64).reshape(len(x), -1)
    a = np.stack([np.bincount(codes, weights=flat[:, j], minlength=7) for j in range(9)], 1).reshape(7, 3, 3)
    b = np.stack([np.bincount(codes, weights=terms.gz[:, j], minlength=7) for j in range(3)], 1)
    full_ = np.bincount(codes, minlength=7) > 0
    expected = centres.astype(np.float64).copy()
    expected[full_] = np.linalg.solve(a[full_], b[full_][..., None])[..., 0]
    new, _ = metric_m_step(x, g, codes, centres, 7, terms)
    assert np.array_equal(new, expected.astype(np.float32))
    assert np.array_equal(new, metric_m_step(x, g, codes, centres, 7)[0])
    cb = PullbackPositionCodebook(7, metrics=random_spd(rng, 4, 3))
    cb.codewords = centres
    codes = cb.encode(x)
    pos = np.tile(np.arange(4), len(x) // 4)
    once = cb.m_step(x, codes, centres, pos, columns(x))
    assert all(np.array_equal(u, v) for u, v in zip(once, cb.m_step(x, codes, centres)))
    cell = codes * 4 + pos
    strided = np.stack([np.bincount(cell, weights=x[:, j], minlength=28) for j in range(3)], 1)
    assert np.array_equal(np.stack([np.bincount(cell, weights=w, minlength=28) for w in columns(x)], 1), strided)


def test_vector_codebook_reduces_to_kmeans_and_to_the_position_codebook():
    from geohelpers.quantize.pullback import PullbackVectorCodebook

    x = clustered()
    ref = kmeans(x, 8, seed=3, max_iter=50, init_sample=500)
    eye = np.broadcast_to(np.eye(2), (len(x), 2, 2))
    vec = PullbackVectorCodebook(8, seed=3, init_sample=500).fit(x, metrics=eye)
    assert np.array_equal(vec.encode(x, metrics=eye), ref.labels)
    assert np.allclose(vec.codewords, ref.centres, atol=1e-5)
    per_position = random_spd(np.random.default_rng(0), 4, 2)
    tiled = per_position[np.tile(np.arange(4), len(x) // 4)]
    pos = PullbackPositionCodebook(8, seed=3, metrics=per_position, init_sample=500).fit(x)
    vec = PullbackVectorCodebook(8, seed=3, init_sample=500).fit(x, metrics=tiled)
    assert np.array_equal(vec.encode(x, metrics=tiled), pos.encode(x))
    assert np.allclose(vec.codewords, pos.codewords, atol=1e-4)


def test_vector_codebook_encodes_latents_with_their_own_metrics_and_round_trips(tmp_path):
    from geohelpers.quantize.pullback import PullbackVectorCodebook, latent_vector_metrics

    vae = tiny("grid")
    mu = torch.randn(12, *vae.latent_shape)
    sigma = torch.ones_like(mu)
    z = vae.to_vectors(mu).numpy()
    g = latent_vector_metrics(vae, mu, n_probes=8, ridge=1e-3, seed=0)
    assert g.shape == (len(z), 2, 2) and np.all(np.linalg.eigvalsh(g.astype(np.float64)) > 0)
    cb = PullbackVectorCodebook(5, seed=0, n_probes=8, ridge=1e-3, init_sample=200).fit(z, metrics=g)
    codes = cb.encode_latents(vae, mu, sigma)
    assert codes.shape == (12, 7, 7) and np.array_equal(codes.reshape(-1), cb.encode(z, metrics=g))
    back = Codebook.load(cb.save(tmp_path / "vector.npz"))
    assert type(back) is PullbackVectorCodebook and np.array_equal(back.encode_latents(vae, mu, sigma), codes)
    seeded = PullbackVectorCodebook(5, seed=7, n_probes=8, ridge=1e-3, init_sample=200).fit(z, metrics=g)
    g7 = latent_vector_metrics(vae, mu, n_probes=8, ridge=1e-3, seed=7)  # encoding probes with the codebook's seed
    assert np.array_equal(seeded.encode_latents(vae, mu, sigma).reshape(-1), seeded.encode(z, metrics=g7))
    with pytest.raises(ValueError, match="'metrics' is missing"):
        cb.encode(z)
    with pytest.raises(ValueError, match="'metrics' has shape"):
        cb.encode(z, metrics=g[:5])
    with pytest.raises(ValueError, match="'n_probes' is 0"):
        PullbackVectorCodebook(4, n_probes=0)


def test_vector_codebook_warm_start_keeps_a_fixed_point_and_checks_its_shape():
    from geohelpers.quantize.pullback import PullbackVectorCodebook

    x = clustered()
    per_position = random_spd(np.random.default_rng(1), 4, 2)
    tiled = per_position[np.tile(np.arange(4), len(x) // 4)]
    cold = PullbackVectorCodebook(8, seed=3, init_sample=500, tol=0.0, max_iter=200).fit(x, metrics=tiled)
    warm = PullbackVectorCodebook(8, seed=9, init_sample=500, tol=0.0).fit(x, metrics=tiled, init=cold.codewords)
    # started at a fixed point of the weighted Lloyd map, it stays there and stops at once
    assert np.allclose(warm.codewords, cold.codewords, atol=1e-6) and warm.lloyd_iterations <= 2
    assert warm.inertia <= cold.inertia * (1 + 1e-9)
    with pytest.raises(ValueError, match="'init' has shape"):
        PullbackVectorCodebook(8).fit(x, metrics=tiled, init=cold.codewords[:5])


def test_vector_metrics_are_computed_once_per_decoder_state():
    from geohelpers.quantize import pullback

    vae = tiny("grid")
    mu = torch.randn(6, *vae.latent_shape)
    first = pullback.cached_vector_metrics(vae, mu, n_probes=4, ridge=1e-3)
    assert pullback.cached_vector_metrics(vae, mu, n_probes=4, ridge=1e-3) is first
    assert np.array_equal(first, pullback.latent_vector_metrics(vae, mu, 4, 1e-3))
    # other latents with equal values, other probes: computed again
    assert pullback.cached_vector_metrics(vae, mu.clone(), n_probes=4, ridge=1e-3) is not first
    assert pullback.cached_vector_metrics(vae, mu, n_probes=2, ridge=1e-3) is not first
    with torch.no_grad():  # a decoder step (as decoder adaptation takes) invalidates the cached metrics
        [p for p in vae.parameters() if p.dim() > 1][-1].mul_(1.5)  # the decoder's last weights
    again = pullback.cached_vector_metrics(vae, mu, n_probes=4, ridge=1e-3)
    assert again is not first and not np.array_equal(again, first)
