import dataclasses

import pytest

from geohelpers.config import PROFILES, ConfigError, describe, parameter_names, resolve


@pytest.mark.parametrize("profile", PROFILES)
def test_every_profile_resolves(profile):
    cfg = resolve(profile)
    assert cfg.profile == profile
    assert cfg.flat_vae.latent_dim % cfg.flat_vae.n_chunks == 0


def test_quick_is_small_and_standard_uses_full_mnist():
    quick, standard = resolve("quick"), resolve("standard")
    assert quick.data.n_train <= 5_000 and quick.grid_vae.max_epochs == 1 and quick.flat_vae.max_epochs == 1
    assert standard.data.n_train is None and standard.data.n_test is None


def test_paper_profile_has_the_earlier_studies_sizes():
    paper = resolve("paper")
    assert paper.flat_vae.channels == (128, 256) and paper.flat_vae.latent_dim == 256
    assert paper.flat_vae.n_chunks == 16 and paper.grid_vae.latent_dim == 64
    assert paper.flat_vae.beta == paper.grid_vae.beta == 1.0


def test_overrides_apply_and_are_typed():
    cfg = resolve("quick", {"grid_vae.max_epochs": 3, "grid_vae.channels": [8, 16]}, flat_vae__beta=1)
    assert cfg.grid_vae.max_epochs == 3 and cfg.grid_vae.channels == (8, 16)
    assert cfg.flat_vae.beta == 1.0 and isinstance(cfg.flat_vae.beta, float)


def test_config_is_frozen():
    cfg = resolve("quick")
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.seed = 3  # type: ignore[misc]


@pytest.mark.parametrize("kwargs, fragment", [
    ({"profile": "fast"}, "'profile' is 'fast'; allowed: one of quick, standard, paper"),
    ({"overrides": {"grid_vae.depth": 3}}, "unknown parameter 'grid_vae.depth'; allowed:"),
    ({"overrides": {"profile": "paper"}}, "unknown parameter 'profile'"),
    ({"overrides": {"grid_vae.beta": 0}}, "'grid_vae.beta' is 0.0; allowed: > 0 and <= 100"),
    ({"overrides": {"flat_vae.max_epochs": 0}}, "'flat_vae.max_epochs' is 0; allowed: >= 1"),
    ({"overrides": {"flat_vae.max_epochs": 2.5}}, "'flat_vae.max_epochs' must be an integer"),
    ({"overrides": {"flat_vae.lr": float("nan")}}, "'flat_vae.lr' must be a finite number"),
    ({"overrides": {"data.n_train": 60_000}}, "'data.n_train' is 60000; allowed: >= 1 and <= 55000 (or None)"),
    ({"overrides": {"data.split_seed": None}}, "'data.split_seed' may not be None"),
    ({"overrides": {"device": "tpu"}}, "'device' is 'tpu'; allowed: one of 'auto', 'cpu', 'cuda'"),
    ({"overrides": {"grid_vae.channels": [8]}}, "'grid_vae.channels' must be a sequence of 2 values"),
    ({"overrides": {"grid_vae.channels": [8, 0]}}, "'grid_vae.channels[1]' is 0"),
    ({"overrides": {"flat_vae.n_chunks": 7}}, "'flat_vae.latent_dim' (128) must be divisible by 'flat_vae.n_chunks' (7)"),
    ({"overrides": {"grid_vae.n_chunks": 2}}, "'grid_vae.n_chunks' is only for the flat VAE"),
])
def test_bad_parameters_fail_naming_the_parameter(kwargs, fragment):
    with pytest.raises(ConfigError) as info:
        resolve(**kwargs)
    assert fragment in str(info.value)


def test_digest_tracks_the_sections_it_covers():
    a = resolve("quick")
    b = resolve("quick", {"flat_vae.max_epochs": 2})
    assert a.digest("grid_vae", "data") == b.digest("grid_vae", "data")
    assert a.digest("flat_vae") != b.digest("flat_vae")
    assert a.digest() == resolve("quick", {"device": "cpu"}).digest()  # the device does not change results


def test_describe_covers_every_parameter():
    assert [row[0] for row in describe()] == parameter_names()
    assert all(row[2] for row in describe()), "every parameter has a help text"


def test_unknown_parameter_names_the_closest_first():
    with pytest.raises(ConfigError) as info:
        resolve("quick", {"quantize.n_landmark": 10})
    assert str(info.value).startswith("unknown parameter 'quantize.n_landmark'; did you mean 'quantize.n_landmarks'?")
    with pytest.raises(ConfigError) as info:
        resolve("quick", {"completely_unrelated": 1})
    assert "did you mean" not in str(info.value) and "allowed: comparison." in str(info.value)
