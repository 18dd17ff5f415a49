"""Priors over code maps: causality, coverage, likelihood units, training, sampling and bad parameters."""

import math

import numpy as np
import pytest
import torch

from geohelpers import config, stages
from geohelpers.data import Batches
from geohelpers.models.pixelcnn import GatedPixelCNN, kernel_sizes
from geohelpers.models.prior import CodePrior, check_temperature, unigram_nll
from geohelpers.models.transformer import CodeTransformer
from geohelpers.train import fit

SHAPES = [(7, 7), (16,), (4, 5)]


def make(kind, k, shape):
    torch.manual_seed(0)
    if kind == "pixelcnn":
        return GatedPixelCNN(k, shape, channels=8, n_layers=3).eval()
    return CodeTransformer(k, shape, dim=16, n_layers=2, heads=2).eval()


@pytest.mark.parametrize("kind", ["pixelcnn", "transformer"])
@pytest.mark.parametrize("shape", SHAPES)
def test_logits_at_i_ignore_codes_at_and_after_i(kind, shape):
    k = 11
    model = make(kind, k, shape)
    n = int(np.prod(shape))
    gen = torch.Generator().manual_seed(1)
    codes = torch.randint(0, k, (3, *shape), generator=gen)
    base = model.logits(codes)
    for i in range(n):
        changed = codes.clone().view(3, -1)
        changed[:, i:] = torch.randint(0, k, changed[:, i:].shape, generator=gen)
        out = model.logits(changed.view(3, *shape))
        assert torch.allclose(out[:, :i + 1], base[:, :i + 1], atol=1e-5), f"position {i} sees the future"


@pytest.mark.parametrize("kind", ["pixelcnn", "transformer"])
@pytest.mark.parametrize("shape", SHAPES)
def test_no_blind_spot_every_earlier_code_matters(kind, shape):
    """The last position (and a middle one) depend on every earlier position in raster order."""
    k = 7
    model = make(kind, k, shape)
    n = int(np.prod(shape))
    codes = torch.randint(0, k, (1, n), generator=torch.Generator().manual_seed(2))
    base = model.logits(codes.view(1, *shape))
    for i in (n - 1, n // 2):
        for j in range(i):
            changed = codes.clone()
            changed[0, j] = (changed[0, j] + 1) % k
            out = model.logits(changed.view(1, *shape))
            assert not torch.allclose(out[0, i], base[0, i], atol=1e-7), f"position {i} is blind to {j}"


@pytest.mark.parametrize("shape,layers", [((7, 7), 6), ((7, 7), 4), ((7, 7), 2), ((1, 16), 6), ((28, 28), 5)])
def test_pixelcnn_kernels_cover_the_map(shape, layers):
    h, w = shape
    kh, kw, kh_w = kernel_sizes(h, w, layers)
    assert 1 + layers * (kh - 1) >= h - 1
    assert layers * (kw // 2) >= w - 1
    assert 1 + layers * (kh_w - 1) >= w - 1


@pytest.mark.parametrize("kind", ["pixelcnn", "transformer"])
@pytest.mark.parametrize("shape", [(5, 5), (12,)])
def test_fast_sampler_equals_the_generic_one(kind, shape):
    """Row-cut PixelCNN passes and the Transformer's KV cache draw exactly what full passes draw."""
    model = make(kind, 9, shape)
    fast = model.sample(20, temperature=0.8, seed=3, progress=False)
    gen = torch.Generator().manual_seed(3)
    slow = CodePrior._sample_codes(model, 20, 0.8, gen, torch.device("cpu")).view(20, *shape)
    assert torch.equal(fast, slow)


@pytest.mark.parametrize("kind", ["pixelcnn", "transformer"])
def test_samples_valid_and_seeded(kind):
    model = make(kind, 13, (7, 7))
    a = model.sample(50, seed=5, batch_size=20, progress=False)
    b = model.sample(50, seed=5, batch_size=20, progress=False)
    c = model.sample(50, seed=6, batch_size=20, progress=False)
    assert a.shape == (50, 7, 7) and a.dtype == torch.long
    assert int(a.min()) >= 0 and int(a.max()) < 13
    assert torch.equal(a, b) and not torch.equal(a, c)


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
@pytest.mark.parametrize("kind", ["pixelcnn", "transformer"])
def test_overfits_a_tiny_set_through_the_training_loop(kind, precision, tmp_path):
    k = 16
    gen = torch.Generator().manual_seed(0)
    codes = torch.randint(0, k, (4, 5, 5), generator=gen)
    torch.manual_seed(0)
    model = (GatedPixelCNN(k, (5, 5), channels=32, n_layers=4) if kind == "pixelcnn"
             else CodeTransformer(k, (5, 5), dim=32, n_layers=2, heads=2))
    before = model.evaluate(codes)["nll_nats_per_token"]
    fit(model, Batches(codes.repeat(16, 1, 1), batch_size=16, shuffle=True), max_epochs=60, lr=1e-2, device="cpu",
        precision=precision)
    after = model.evaluate(codes)
    assert before > 2.0
    # Four maps: after the first code (ln 4 spread over 25 positions at most) everything is determined.
    assert after["nll_nats_per_token"] < 0.15, after


class Uniform(CodePrior):
    kind = "uniform"

    def __init__(self, k, shape):
        super().__init__(k, shape)
        self.dummy = torch.nn.Parameter(torch.zeros(1))

    def logits(self, codes):
        return torch.zeros(len(codes), self.n_positions, self.k) + 0 * self.dummy


def test_units_of_the_likelihood():
    model = Uniform(512, (7, 7))
    res = model.evaluate(torch.randint(0, 512, (30, 7, 7)))
    assert res["nll_nats_per_token"] == pytest.approx(math.log(512))
    assert res["perplexity"] == pytest.approx(512)
    assert res["bits_per_image"] == pytest.approx(49 * 9)


def test_unigram_nll():
    train = np.array([0, 0, 0, 1])
    assert unigram_nll(train, np.array([0, 1]), k=2, alpha=0.0) == pytest.approx(
        -(math.log(0.75) + math.log(0.25)) / 2)
    # Smoothing keeps an unseen code finite.
    assert math.isfinite(unigram_nll(train, np.array([2]), k=3))


@pytest.mark.parametrize("bad", [0, -1.0, float("nan"), float("inf"), True, "1"])
def test_bad_temperature(bad):
    with pytest.raises(ValueError, match="temperature"):
        check_temperature(bad)
    with pytest.raises(ValueError, match="temperature"):
        make("transformer", 5, (3,)).sample(2, temperature=bad)


def test_bad_prior_parameters():
    cfg = config.resolve("quick")
    with pytest.raises(ValueError, match="'prior'"):
        stages.priors.prior_model("lstm", 16, (7, 7), cfg)
    with pytest.raises(config.ConfigError, match="prior.kinds"):
        config.resolve("quick", {"prior.kinds": ("pixelcnn", "lstm")})
    with pytest.raises(config.ConfigError, match="prior.ks"):
        config.resolve("quick", {"prior.ks": (64,)})
    with pytest.raises(config.ConfigError, match="prior.temperature"):
        config.resolve("quick", {"prior.temperature": 0.0})
    with pytest.raises(config.ConfigError, match="transformer_heads"):
        config.resolve("quick", {"prior.transformer_dim": 30, "prior.transformer_heads": 4})
    with pytest.raises(ValueError, match="'k'"):
        GatedPixelCNN(1, (7, 7))
    with pytest.raises(ValueError, match="'shape'"):
        CodeTransformer(8, (2, 3, 4))
    with pytest.raises(ValueError, match="'dim'"):
        CodeTransformer(8, (7, 7), dim=30, heads=4)
    with pytest.raises(ValueError, match="do not fit"):
        make("pixelcnn", 8, (7, 7)).logits(torch.zeros(2, 16, dtype=torch.long))


def test_prior_and_codebook_must_agree_on_k():
    prior = make("pixelcnn", 32, (7, 7))
    with pytest.raises(ValueError, match="'k' mismatch"):
        stages.priors.check_prior_fits(prior, 16, (7, 7))
    with pytest.raises(ValueError, match="'shape' mismatch"):
        stages.priors.check_prior_fits(prior, 32, (16,))
    stages.priors.check_prior_fits(prior, 32, (7, 7))


@pytest.mark.parametrize("causal", [True, False])
def test_written_out_attention_equals_the_fused_one(causal):
    from geohelpers.models.transformer import written_out_attention

    gen = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(3, 2, 9, 8, generator=gen) for _ in range(3))
    fused = torch.nn.functional.scaled_dot_product_attention(q, k, v, is_causal=causal)
    assert torch.allclose(written_out_attention(q, k, v, causal), fused, atol=1e-6)


@pytest.mark.parametrize("kind", ["pixelcnn", "transformer"])
def test_bf16_autocast_keeps_causality_and_the_logits(kind):
    """Under bf16 autocast (the Transformer then takes the written-out attention) no position sees itself
    or the future, and the logits stay those of float32 up to bf16 rounding."""
    k, shape = 11, (7, 7)
    model = make(kind, k, shape)
    gen = torch.Generator().manual_seed(1)
    codes = torch.randint(0, k, (3, *shape), generator=gen)
    exact = model.logits(codes)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        base = model.logits(codes).float()
        for i in (0, 10, 24, 48):
            changed = codes.clone().view(3, -1)
            changed[:, i:] = torch.randint(0, k, changed[:, i:].shape, generator=gen)
            out = model.logits(changed.view(3, *shape)).float()
            assert torch.equal(out[:, :i + 1], base[:, :i + 1]), f"position {i} sees the future"
    assert (base - exact).abs().max() < 0.05
    assert not torch.equal(base, exact)  # bf16 did run
