import math

import pytest
import torch
from torch import nn

from geohelpers.data import Batches
from geohelpers.models.vae import GridVAE
from geohelpers.train import NonFiniteLossError, fit, pick_device, seed_everything


@pytest.fixture(scope="module")
def images():
    g = torch.Generator().manual_seed(0)
    return (torch.rand(96, 1, 28, 28, generator=g) > 0.7).float()


def _run(images, ckpt=None, stop_after=None, epochs=2):
    seed_everything(7)
    model = GridVAE(channels=(4, 8), latent_dim=2, beta=1.0)
    hist = fit(model, Batches(images, batch_size=32, shuffle=True, seed=7), Batches(images[:32], batch_size=32),
               epochs=epochs, lr=1e-2, checkpoint=ckpt, tag="t", device="cpu", stop_after=stop_after)
    return model, hist


def _same_weights(a, b):
    return all(torch.equal(p, q) for p, q in zip(a.state_dict().values(), b.state_dict().values()))


def test_resume_after_an_interruption_gives_the_uninterrupted_weights(images, tmp_path):
    full, full_hist = _run(images, tmp_path / "full.pt")
    _, first = _run(images, tmp_path / "cut.pt", stop_after=1)
    assert len(first.epochs) == 1
    resumed, hist = _run(images, tmp_path / "cut.pt")
    assert hist.resumed_from_epoch == 1 and hist.epochs_this_call == 1
    assert _same_weights(full, resumed)
    assert hist.steps == full_hist.steps == 6
    assert [e["train_loss"] for e in hist.epochs] == [e["train_loss"] for e in full_hist.epochs]


def test_training_is_deterministic_on_the_cpu(images):
    a, ha = _run(images)
    b, hb = _run(images)
    assert _same_weights(a, b)
    assert ha.column("val_loss") == hb.column("val_loss")


def test_a_finished_checkpoint_is_loaded_not_retrained(images, tmp_path):
    trained, _ = _run(images, tmp_path / "m.pt")
    loaded, hist = _run(images, tmp_path / "m.pt")
    assert hist.epochs_this_call == 0 and len(hist.epochs) == 2
    assert _same_weights(trained, loaded)


def test_a_checkpoint_with_another_tag_is_not_used(images, tmp_path):
    _run(images, tmp_path / "m.pt", stop_after=1)
    seed_everything(7)
    model = GridVAE(channels=(4, 8), latent_dim=2)
    hist = fit(model, Batches(images, batch_size=32), epochs=1, lr=1e-2, checkpoint=tmp_path / "m.pt",
               tag="other", device="cpu")
    assert hist.resumed_from_epoch is None and hist.epochs_this_call == 1


def test_history_records_losses_validation_and_time(images):
    _, hist = _run(images, epochs=2)
    assert [e["epoch"] for e in hist.epochs] == [1, 2]
    for e in hist.epochs:
        assert {"train_loss", "train_recon", "train_kl", "val_loss", "val_recon", "val_kl", "seconds"} <= set(e)
        assert all(math.isfinite(v) for v in e.values())
    assert hist.wall_time_s == pytest.approx(sum(hist.column("seconds")))
    assert hist.epochs[1]["train_loss"] < hist.epochs[0]["train_loss"]


class _Exploding(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.ones(1))

    def loss(self, batch):
        step = getattr(self, "calls", 0) + 1
        self.calls = step
        value = self.w.sum() * (float("nan") if step == 3 else 1.0)
        return value, {}


def test_a_non_finite_loss_stops_with_the_step_number():
    with pytest.raises(NonFiniteLossError, match=r"at step 3 \(epoch 1, batch 3\)"):
        fit(_Exploding(), Batches(torch.zeros(10, 1), batch_size=2), epochs=1, lr=0.1)  # default device


def test_device_choice():
    assert pick_device("cpu").type == "cpu"
    assert pick_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    with pytest.raises(ValueError, match="'device'"):
        pick_device("tpu")
    with pytest.raises(ValueError, match="'epochs'"):
        fit(_Exploding(), Batches(torch.zeros(2, 1), batch_size=2), epochs=0, lr=0.1)
