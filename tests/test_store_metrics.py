import json
import platform
from importlib import metadata

import numpy as np
import pytest
import torch

from geohelpers import store
from geohelpers.config import resolve
from geohelpers.metrics import ACTIVE_KL_THRESHOLD, evaluate_vae, mse_per_pixel
from geohelpers.models.vae import FlatVAE, GridVAE


def test_results_file_carries_config_seed_versions_and_wall_times(tmp_home):
    cfg = resolve("quick", {"seed": 3})
    times = store.WallTimes()
    with times("stage a"):
        pass
    with times("stage a"):
        pass
    path = store.write_results("99_test", cfg, {"mse": np.float32(0.5), "curve": np.arange(3)}, times,
                               extra={"data": {"test": 10}})
    assert path == tmp_home / "results" / "quick" / "99_test.json"
    payload = json.loads(path.read_text())
    assert payload["metrics"] == {"mse": 0.5, "curve": [0, 1, 2]}
    assert payload["seed"] == 3 and payload["config"] == cfg.to_dict() and payload["data"] == {"test": 10}
    assert payload["versions"]["torch"] == metadata.version("torch")
    assert payload["versions"]["python"] == platform.python_version()
    assert set(payload["wall_time_s"]) == {"stage a", "total"}
    assert payload["machine"]["cpu_count"] >= 1
    assert store.read_results(cfg, "99_test") == payload


def test_results_refuse_non_finite_numbers(tmp_home):
    with pytest.raises(ValueError):
        store.write_results("99_nan", resolve("quick"), {"mse": float("nan")}, store.WallTimes())


def test_missing_results_say_which_notebook_to_run(tmp_home):
    with pytest.raises(FileNotFoundError, match="--profile quick --only 42"):
        store.read_results(resolve("quick"), "42_nothing")


def test_results_of_another_configuration_are_refused(tmp_home):
    """A notebook never reads numbers another configuration computed (notebook 07 once read notebook 02's
    beta = 0.2 rows while it ran at beta = 0.1)."""
    store.write_results("02_w2_quantization", resolve("quick", {"grid_vae.beta": 0.2}), {"rows": []},
                        store.WallTimes())
    with pytest.raises(store.StaleResultsError, match=r"differs in grid_vae\).*--only 02"):
        store.read_results(resolve("quick"), "02_w2_quantization")
    assert store.read_results(resolve("quick", {"grid_vae.beta": 0.2}), "02_w2_quantization")["metrics"] == {"rows": []}
    # a list and a tuple of the same values are the same configuration
    assert store.config_differences({"quantize": {"ks": [16, 64]}}, {"quantize": {"ks": (16, 64)}}) == []


def test_mse_per_pixel():
    x = torch.zeros(2, 1, 28, 28)
    y = x.clone()
    y[0, 0, 0, 0] = 1.0
    assert mse_per_pixel(x, y) == pytest.approx(1 / (2 * 784))


def _identity_posterior(model, mu_value: float):
    """Make the encoder output mu = mu_value on every unit, sigma = 1 (log-variance 0)."""
    def encode(x):
        shape = (len(x), *model.latent_shape)
        return torch.full(shape, mu_value), torch.zeros(shape)
    model.encode = encode
    return model


def test_evaluation_counts_active_units_and_matches_closed_form_kl():
    model = _identity_posterior(GridVAE((4, 8), 2), mu_value=0.0)
    x = torch.rand(6, 1, 28, 28)
    ev = evaluate_vae(model, x, batch_size=4)
    assert ev.kl == pytest.approx(0.0) and ev.active_units == 0 and ev.n_units == 2 * 49
    model = _identity_posterior(FlatVAE((4, 8), 4, 2), mu_value=1.0)  # KL = 1/2 per unit
    ev = evaluate_vae(model, x, batch_size=4)
    assert ev.kl == pytest.approx(4 * 0.5) and ev.active_units == 4
    assert np.allclose(ev.kl_per_unit, 0.5) and 0.5 > ACTIVE_KL_THRESHOLD
    with torch.no_grad():
        expected = mse_per_pixel(x, model.decode(torch.ones(6, 4)))
    assert ev.mse == pytest.approx(expected, rel=1e-6)
    assert ev.mu.shape == (6, 4) and np.allclose(ev.sigma, 1.0)
    assert ev.summary()["latent_units"] == 4


def test_evaluation_is_seeded_and_leaves_the_global_rng_alone():
    torch.manual_seed(0)
    model = GridVAE((4, 8), 2)
    x = torch.rand(8, 1, 28, 28)
    state = torch.get_rng_state()
    a, b = evaluate_vae(model, x, seed=1), evaluate_vae(model, x, seed=1)
    assert a.neg_elbo == b.neg_elbo
    assert evaluate_vae(model, x, seed=2).neg_elbo != a.neg_elbo
    assert torch.equal(torch.get_rng_state(), state)


def test_accuracy_counts_the_most_probable_class():
    import numpy as np

    from geohelpers.metrics import accuracy

    probs = np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4], [0.3, 0.7]])
    assert accuracy(probs, np.array([0, 1, 1, 1])) == 0.75
