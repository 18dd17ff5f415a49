import pytest
import torch

from geohelpers.config import resolve
from geohelpers.models.vae import FlatVAE, GridVAE, build_vae, kl_per_dim


@pytest.fixture
def x():
    torch.manual_seed(0)
    return torch.rand(5, 1, 28, 28)


def test_flat_vae_shapes_and_chunks(x):
    model = FlatVAE(channels=(4, 8), latent_dim=24, n_chunks=6)
    mu, logvar = model.encode(x)
    assert mu.shape == logvar.shape == (5, 24)
    assert model.decode(mu).shape == x.shape
    v = model.to_vectors(mu)
    assert v.shape == (5 * 6, 4) and (model.n_positions, model.vector_dim) == (6, 4)
    assert torch.equal(v[6 + 2], mu[1, 8:12])  # image 1, chunk 2
    assert torch.equal(model.from_vectors(v), mu)


def test_grid_vae_vectors_are_grid_positions_not_channel_runs(x):
    model = GridVAE(channels=(4, 8), latent_dim=3)
    mu, logvar = model.encode(x)
    assert mu.shape == logvar.shape == (5, 3, 7, 7) == (5, *model.latent_shape)
    assert model.decode(mu).shape == x.shape
    v = model.to_vectors(mu)
    assert v.shape == (5 * 49, 3)
    b, h, w = 2, 4, 5
    assert torch.equal(v[b * 49 + h * 7 + w], mu[b, :, h, w])  # one vector = one position's D features
    assert torch.equal(model.from_vectors(v), mu)


def test_flat_vae_rejects_uneven_chunks():
    with pytest.raises(ValueError, match="n_chunks"):
        FlatVAE(latent_dim=10, n_chunks=3)


def test_decoder_outputs_are_probabilities(x):
    for model in (FlatVAE((4, 8), 8, 2), GridVAE((4, 8), 2)):
        out = model.decode(torch.randn(3, *model.latent_shape) * 5)
        assert out.min() >= 0 and out.max() <= 1


def test_loss_is_finite_and_matches_its_terms(x):
    torch.manual_seed(1)
    model = GridVAE((4, 8), 2, beta=0.5)
    torch.manual_seed(2)
    loss, logs = model.loss((x,))
    assert torch.isfinite(loss)
    assert loss.item() == pytest.approx(logs["recon"] + 0.5 * logs["kl"], rel=1e-5)
    loss.backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters())


def test_kl_is_zero_at_the_prior_and_matches_the_closed_form():
    assert torch.allclose(kl_per_dim(torch.zeros(3), torch.zeros(3)), torch.zeros(3))
    mu, logvar = torch.tensor([1.0]), torch.tensor([2.0 * torch.log(torch.tensor(2.0))])  # sigma = 2
    p = torch.distributions.Normal(mu, 2.0)
    q = torch.distributions.Normal(0.0, 1.0)
    assert torch.allclose(kl_per_dim(mu, logvar), torch.distributions.kl_divergence(p, q))


def test_build_vae_uses_the_profile():
    cfg = resolve("quick")
    flat, grid = build_vae("flat", cfg.flat_vae), build_vae("grid", cfg.grid_vae)
    assert flat.latent_shape == (cfg.flat_vae.latent_dim,) and flat.beta == cfg.flat_vae.beta
    assert grid.latent_shape == (cfg.grid_vae.latent_dim, 7, 7)
    with pytest.raises(ValueError, match="'kind' is 'deep'"):
        build_vae("deep", cfg.grid_vae)
