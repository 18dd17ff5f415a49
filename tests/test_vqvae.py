"""The VQ-VAE's quantizers: the permute guard, straight-through gradients, EMA, restarts, FSQ."""

import math

import pytest
import torch

from geohelpers.data import Batches
from geohelpers.models.vqvae import FSQ, VQVAE, VectorQuantizer
from geohelpers.train import fit


def test_every_position_gets_the_code_of_its_own_feature_vector():
    torch.manual_seed(0)
    vq = VectorQuantizer(k=6, dim=3, variant="vanilla").eval()
    codes = torch.randint(0, 6, (2, 4, 5))                                     # (B, H, W)
    z = vq.codebook.detach()[codes].permute(0, 3, 1, 2).contiguous()          # (B, D, H, W)
    zq, got, _ = vq(z)
    assert torch.equal(got, codes)
    assert torch.allclose(zq, z)
    # flattening NCHW without the permute (study 003's bug) mixes channels of different positions
    wrong = vq.codes_of(z.reshape(-1, 3))
    assert not torch.equal(wrong, codes.reshape(-1))


def test_gradients_pass_straight_through_to_the_encoder():
    torch.manual_seed(0)
    vq = VectorQuantizer(k=8, dim=2, variant="vanilla")
    z = torch.randn(3, 2, 7, 7, requires_grad=True)
    w = torch.randn(3, 2, 7, 7)
    (vq(z)[0] * w).sum().backward()
    assert torch.allclose(z.grad, w)
    model = VQVAE((4, 8), dim=2, k=8, variant="ema")
    loss, _ = model.loss((torch.rand(4, 1, 28, 28),))
    loss.backward()
    first = model.encoder[0][0].weight.grad
    assert first is not None and torch.isfinite(first).all() and first.abs().sum() > 0


def test_one_ema_step_equals_the_hand_computed_update():
    vq = VectorQuantizer(k=2, dim=1, variant="ema", decay=0.5, eps=1e-12)
    vq.init_codebook(torch.tensor([[0.0], [10.0]]))
    z = torch.tensor([1.0, 2.0, 9.0]).view(1, 1, 1, 3)                 # one image, a 1x3 grid
    vq.train()
    _, codes, _ = vq(z)
    assert codes.flatten().tolist() == [0, 0, 1]
    # counts: 0.5 * [1, 1] + 0.5 * [2, 1]; sums: 0.5 * [0, 10] + 0.5 * [3, 9]
    assert torch.allclose(vq.ema_count, torch.tensor([1.5, 1.0]))
    assert torch.allclose(vq.ema_sum, torch.tensor([[1.5], [9.5]]))
    assert torch.allclose(vq.codebook, torch.tensor([[1.0], [9.5]]), atol=1e-6)


def test_a_restart_replaces_only_the_dead_codes_and_resets_their_statistics():
    torch.manual_seed(0)
    vq = VectorQuantizer(k=4, dim=2, variant="ema", restart=True, restart_threshold=1.0)
    before = vq.codebook.clone()
    vq.usage_count.copy_(torch.tensor([5.0, 0.1, 5.0, 0.2]))
    vq.ema_count.copy_(torch.tensor([7.0, 0.3, 7.0, 0.3]))
    batch = torch.randn(50, 2)
    dead = vq.restart_dead(batch)
    assert dead.tolist() == [1, 3]
    assert torch.equal(vq.codebook[[0, 2]], before[[0, 2]])
    for row in (1, 3):
        assert any(torch.equal(vq.codebook[row], v) for v in batch)
        assert vq.usage_count[row] == 1.0 and vq.ema_count[row] == 1.0
        assert torch.equal(vq.ema_sum[row], vq.codebook[row])
    assert vq.ema_count[0] == 7.0 and vq.usage_count[2] == 5.0


@pytest.mark.parametrize("levels", [(8, 8, 8), (8, 5, 3)])
def test_fsq_rounds_to_its_grid_and_passes_gradients_straight_through(levels):
    torch.manual_seed(0)
    fsq = FSQ(levels, dim=4)
    h = (torch.randn(500, len(levels)) * 3).requires_grad_()
    zq, codes = fsq.quantize(h)
    assert torch.equal(zq, torch.round(zq))                               # on the integer grid
    lo = -torch.div(fsq._levels, 2, rounding_mode="floor")
    assert ((zq >= lo) & (zq <= lo + fsq._levels - 1)).all()
    assert codes.min() >= 0 and codes.max() < math.prod(levels)
    assert torch.equal(fsq.values_of(codes), zq.detach())                # codes <-> values
    zq.sum().backward()
    grad_st = h.grad.clone()
    h.grad = None
    fsq.bound(h).sum().backward()
    assert torch.allclose(grad_st, h.grad)                                # rounding is invisible to gradients
    every = torch.stack(torch.meshgrid(*[torch.arange(n) for n in levels], indexing="ij"), -1).reshape(-1, len(levels))
    assert len(set(((every * fsq._basis).sum(-1)).tolist())) == math.prod(levels)


def test_codes_round_trip_through_decode():
    torch.manual_seed(0)
    for variant, kw in (("ema", {}), ("fsq", {"levels": (4, 4)})):
        model = VQVAE((4, 8), dim=2, k=16, variant=variant, **kw)
        x = torch.rand(5, 1, 28, 28)
        codes = model.encode_codes(x)
        assert codes.shape == (5, 7, 7) and codes.max() < 16
        with torch.no_grad():
            logits, _, _ = model.eval()(x)
        assert torch.allclose(model.decode_codes(codes), torch.sigmoid(logits), atol=1e-5)


def test_training_through_the_one_loop_updates_the_codebook(tmp_path):
    torch.manual_seed(0)
    model = VQVAE((4, 8), dim=2, k=16, variant="ema", restart=True)
    before = model.quantizer.codebook.clone()
    hist = fit(model, Batches(torch.rand(64, 1, 28, 28), batch_size=16, shuffle=True), max_epochs=1, lr=1e-3,
               device="cpu")
    assert hist.epochs[0]["train_vq"] >= 0 and not torch.equal(before, model.quantizer.codebook)


@pytest.mark.parametrize("kwargs, name", [
    (dict(variant="gumbel"), "'variant'"),
    (dict(k=1), "'K'"),
    (dict(decay=1.0), "'decay'"),
    (dict(decay=0.0), "'decay'"),
    (dict(variant="fsq", k=512, levels=(8, 8)), "'levels'"),
    (dict(variant="fsq", k=512, levels=None), "'levels'"),
])
def test_bad_parameters_raise_naming_the_parameter(kwargs, name):
    with pytest.raises(ValueError, match=name):
        VQVAE((4, 8), **{"dim": 2, "k": 8, **kwargs})


def test_codebook_initialisation_checks_its_shape():
    vq = VectorQuantizer(k=4, dim=2)
    with pytest.raises(ValueError, match="'vectors'"):
        vq.init_codebook(torch.zeros(3, 2))


# --- the notebook-05 stage -----------------------------------------------------------------------
from geohelpers import evaluation, stages# noqa: E402
from geohelpers.config import ConfigError, resolve  # noqa: E402
from geohelpers.data import MNIST  # noqa: E402
from geohelpers.models.vae import GridVAE  # noqa: E402
from geohelpers.models.vqvae import fsq_levels  # noqa: E402


def test_fsq_levels_multiply_to_k():
    assert fsq_levels(512) == (8, 8, 8) and fsq_levels(128) == (8, 4, 4)
    assert fsq_levels(32) == (4, 4, 2) and fsq_levels(16) == (4, 2, 2) and fsq_levels(4) == (2, 2)
    with pytest.raises(ValueError, match="'K'"):
        fsq_levels(100)


@pytest.mark.parametrize("overrides, fragment", [
    ({"vqvae.variants": ["gumbel"]}, "'vqvae.variants[0]' is 'gumbel'"),
    ({"vqvae.decay": 1.0}, "'vqvae.decay' is 1.0"),
    ({"vqvae.ks": [1]}, "'vqvae.ks[0]' is 1"),
])
def test_bad_vqvae_parameters_fail_naming_them(overrides, fragment):
    with pytest.raises(ConfigError) as info:
        resolve("quick", overrides)
    assert fragment in str(info.value)


def test_variant_names_map_to_quantizers():
    cfg = resolve("quick")
    assert stages.vqvaes.vqvae_model("vanilla", 16, cfg).quantizer.variant == "vanilla"
    assert stages.vqvaes.vqvae_model("vanilla_restart", 16, cfg).quantizer.restart
    ema = stages.vqvaes.vqvae_model("ema", 16, cfg).quantizer
    assert ema.variant == "ema" and not ema.restart
    assert stages.vqvaes.vqvae_model("hybrid", 16, cfg).quantizer.restart
    assert stages.vqvaes.vqvae_model("fsq", 16, cfg).quantizer.levels == (4, 2, 2)


def test_hybrid_starts_from_the_gridvae_and_its_medoids():
    torch.manual_seed(0)
    cfg = resolve("quick")
    vae = GridVAE(cfg.grid_vae.channels, cfg.grid_vae.latent_dim)
    medoids = torch.randn(16, cfg.grid_vae.latent_dim).numpy()
    model = stages.vqvaes.vqvae_model("hybrid", 16, cfg)
    stages.vqvaes._hybrid_start(model, vae, medoids)
    x = torch.rand(3, 1, 28, 28)
    with torch.no_grad():
        assert torch.allclose(model.encoder(x), vae.encode(x)[0])
        z = torch.randn(3, cfg.grid_vae.latent_dim, 7, 7)
        assert torch.allclose(model.decoder(z), vae.decode_logits(z))
    assert torch.allclose(model.quantizer.codebook, torch.from_numpy(medoids))


def test_train_vqvae_records_usage_each_epoch_and_reloads(tmp_home):
    torch.manual_seed(0)
    cfg = resolve("quick", {"vqvae.max_epochs": 2, "vqvae.batch_size": 32})
    x = torch.rand(96, 1, 28, 28)
    y = torch.zeros(96, dtype=torch.long)
    data = MNIST(x[:64], y[:64], x[64:80], y[64:80], x[80:], y[80:])
    first = stages.vqvaes.train_vqvae("kmeans_init", 16, cfg, data)
    assert first.built_now and first.diverged is None
    assert [set(e) >= {"val_usage", "val_perplexity"} for e in first.history.epochs] == [True, True]
    again = stages.vqvaes.train_vqvae("kmeans_init", 16, cfg, data)
    assert not again.built_now
    res, codes = evaluation.evaluate_vqvae(again.model, x[80:])
    assert codes.shape == (16, 7, 7) and res["bits_per_image"] == pytest.approx(49 * 4)
    with pytest.raises(ValueError, match="hybrid"):
        stages.vqvaes.train_vqvae("hybrid", 16, cfg, data)
