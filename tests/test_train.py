import math

import pytest
import torch
from torch import nn

from geohelpers.data import Batches
from geohelpers.models.vae import GridVAE
from geohelpers.train import NonFiniteLossError, evaluate_loss, fit, pick_device, seed_everything


@pytest.fixture(scope="module")
def images():
    g = torch.Generator().manual_seed(0)
    return (torch.rand(96, 1, 28, 28, generator=g) > 0.7).float()


def _run(images, ckpt=None, stop_after=None, epochs=2):
    seed_everything(7)
    model = GridVAE(channels=(4, 8), latent_dim=2, beta=1.0)
    hist = fit(model, Batches(images, batch_size=32, shuffle=True, seed=7), Batches(images[:32], batch_size=32),
               max_epochs=epochs, lr=1e-2, checkpoint=ckpt, tag="t", device="cpu", stop_after=stop_after)
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
    hist = fit(model, Batches(images, batch_size=32), max_epochs=1, lr=1e-2, checkpoint=tmp_path / "m.pt",
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
        fit(_Exploding(), Batches(torch.zeros(10, 1), batch_size=2), max_epochs=1, lr=0.1)  # default device


def test_device_choice():
    assert pick_device("cpu").type == "cpu"
    assert pick_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    with pytest.raises(ValueError, match="'device'"):
        pick_device("tpu")
    with pytest.raises(ValueError, match="'max_epochs'"):
        fit(_Exploding(), Batches(torch.zeros(2, 1), batch_size=2), max_epochs=0, lr=0.1)


class _Toy(nn.Module):
    """One parameter whose validation loss follows a fixed script of values, epoch by epoch."""

    def __init__(self, script):
        super().__init__()
        self.w = nn.Parameter(torch.zeros(1))
        self.script, self.evals = list(script), 0

    def loss(self, batch):
        if not self.training:  # validation: the scripted value of this epoch
            value = self.script[min(self.evals, len(self.script) - 1)]
            self.evals += 1
            return torch.tensor(value), {}
        return (self.w - 1.0).pow(2).sum(), {}


def _toy_fit(script, tmp_path=None, device_override="cpu", **kw):
    torch.manual_seed(0)
    model = _Toy(script)
    data = Batches(torch.zeros(4, 1), batch_size=4)
    hist = fit(model, data, data, lr=0.1, device=device_override, checkpoint=tmp_path / "toy.pt" if tmp_path else None,
               tag="toy", **kw)
    return model, hist


def test_stopping_rule_stops_after_patience_and_restores_the_best_weights():
    model, hist = _toy_fit([5.0, 4.0, 3.0, 3.1, 3.05, 1.0], max_epochs=20, patience=2, min_delta=0.01)
    # epoch 3 is the best (3.0); epochs 4 and 5 do not improve on it: two epochs without a new best
    assert hist.stop_reason == "patience" and len(hist.epochs) == 5
    assert hist.best_epoch == 3 and hist.best_val_loss == 3.0
    # the model holds the weights of epoch 3 (three Adam steps from 0 towards 1), not those of epoch 5
    three, hist3 = _toy_fit([5.0, 4.0, 3.0], max_epochs=3)
    five, _ = _toy_fit([5.0, 4.0, 3.0, 2.0, 1.0], max_epochs=5)
    assert hist3.stop_reason == "max_epochs"
    assert torch.equal(model.w, three.w) and not torch.equal(model.w, five.w)


def test_improvements_below_min_delta_do_not_reset_patience_but_their_weights_are_kept():
    model, hist = _toy_fit([5.0, 3.0, 2.999, 2.998, 1.0], max_epochs=20, patience=2, min_delta=0.01)
    assert hist.stop_reason == "patience" and len(hist.epochs) == 4  # 2.999 and 2.998 are not 1 % better
    assert hist.best_epoch == 4 and hist.best_val_loss == pytest.approx(2.998)  # the lowest: its weights
    four, _ = _toy_fit([5.0, 3.0, 2.999, 2.998], max_epochs=4)
    assert torch.equal(model.w, four.w)


def test_stopping_rule_records_the_cap_and_resumes_a_stopped_run_without_training(tmp_path):
    _, hist = _toy_fit([3.0, 2.0, 1.0], tmp_path, max_epochs=3, patience=2, min_delta=0.0)
    assert hist.stop_reason == "max_epochs" and hist.best_epoch == 3
    _, again = _toy_fit([3.0, 2.0, 1.0], tmp_path, max_epochs=3, patience=2, min_delta=0.0)
    assert again.epochs_this_call == 0 and again.stop_reason == "max_epochs"
    _, stopped = _toy_fit([1.0, 2.0, 2.0, 0.5], tmp_path / "b", max_epochs=10, patience=2)
    assert stopped.stop_reason == "patience" and len(stopped.epochs) == 3
    _, loaded = _toy_fit([1.0, 2.0, 2.0, 0.5], tmp_path / "b", max_epochs=10, patience=2)
    assert loaded.epochs_this_call == 0 and loaded.best_epoch == 1


def test_stopping_rule_rejects_bad_parameters():
    from geohelpers.train import StoppingRule

    with pytest.raises(ValueError, match="'patience'"):
        StoppingRule(5, patience=0)
    with pytest.raises(ValueError, match="'min_delta'"):
        StoppingRule(5, patience=1, min_delta=1.5)
    with pytest.raises(ValueError, match="'patience' needs a validation set"):
        fit(_Toy([1.0]), Batches(torch.zeros(2, 1), batch_size=2), max_epochs=2, lr=0.1, patience=1)
    rule = StoppingRule(10, patience=2, min_delta=0.1)
    assert rule.reason([1.0, 0.95, 0.92]) == "patience"   # neither beats 1.0 by 10 %
    assert rule.reason([1.0, 0.85, 0.84]) is None


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_a_model_trained_on_cuda_comes_back_on_the_cpu():
    """The book's analysis runs on CPU tensors: a model trained on the GPU must be usable there at once."""
    model, hist = _toy_fit([3.0, 2.0, 2.5, 2.6], max_epochs=4, patience=1, device_override="cuda")
    assert hist.stop_reason is not None
    assert {p.device.type for p in model.parameters()} == {"cpu"}


def test_bf16_precision_trains_and_validates_in_float32():
    """bf16 autocast covers the training steps only: the recorded validation loss is the float32 loss of
    the weights kept, and the weights themselves stay float32."""
    from geohelpers.models.transformer import CodeTransformer

    codes = torch.randint(0, 8, (64, 4, 4), generator=torch.Generator().manual_seed(0))
    val = Batches(codes[:16], batch_size=16)

    def run(precision):
        seed_everything(7)
        model = CodeTransformer(8, (4, 4), dim=16, n_layers=1, heads=2)
        hist = fit(model, Batches(codes, batch_size=16, shuffle=True, seed=7), val, max_epochs=2, lr=1e-2,
                   device="cpu", precision=precision)
        return model, hist

    model, hist = run("bf16")
    assert all(p.dtype == torch.float32 for p in model.parameters())
    assert hist.column("val_loss")[-1] == evaluate_loss(model, val, torch.device("cpu"))["loss"]
    assert not _same_weights(model, run("fp32")[0])  # the steps did run in bf16


def test_a_bad_precision_fails_before_training(images):
    model = GridVAE(channels=(4, 8), latent_dim=2)
    with pytest.raises(ValueError, match="'precision'.*'fp32', 'bf16'"):
        fit(model, Batches(images, batch_size=32), max_epochs=1, lr=1e-2, device="cpu", precision="fp16")


def test_learning_rate_schedules_and_their_resume(tmp_path):
    """A schedule scales the learning rate per step, its state is checkpointed, and an interrupted run
    resumes on the same schedule (the same weights as an uninterrupted one)."""
    from geohelpers.train import lr_factor

    f = lr_factor("cosine", 100)
    assert f(0) == pytest.approx(1.0) and f(50) == pytest.approx(0.505) and f(100) == f(500) == pytest.approx(0.01)
    w = lr_factor("warmup_cosine", 100)
    assert w(0) == pytest.approx(0.1) and w(5) == pytest.approx(1.0) and w(100) == pytest.approx(0.01)
    assert lr_factor("constant", 10)(7) == 1.0
    with pytest.raises(ValueError, match="lr_schedule"):
        lr_factor("linear", 10)

    x = torch.rand(64, 4)

    class Tiny(torch.nn.Linear):
        def loss(self, batch):
            return ((self(batch[0]) - batch[0]) ** 2).mean(), {}

    def train(path, stop_after=None):
        torch.manual_seed(0)
        model = Tiny(4, 4)
        fit(model, Batches(x, batch_size=16, shuffle=True, seed=0), max_epochs=4, lr=1e-2, checkpoint=path,
            tag="t", device="cpu", lr_schedule="cosine", stop_after=stop_after)
        return model

    whole = train(tmp_path / "a.pt")
    train(tmp_path / "b.pt", stop_after=2)
    resumed = train(tmp_path / "b.pt")
    assert torch.equal(whole.weight, resumed.weight)


def test_a_compiled_training_step_runs_the_models_loss_through_torch_compile(monkeypatch):
    """``fit(compiled=True)`` hands the loss to ``torch.compile`` once and trains with what it returns
    (a spy stands in for the compiler: the benchmarks measure the real one, tests stay fast)."""
    import torch

    from geohelpers.data import Batches
    from geohelpers.models.pixelcnn import GatedPixelCNN
    from geohelpers.train import fit

    seen = []
    monkeypatch.setattr(torch, "compile", lambda fn, **kw: seen.append(fn) or (lambda batch: fn(batch)))
    torch.manual_seed(0)
    model = GatedPixelCNN(8, (3, 3), 4, 2)
    codes = torch.randint(0, 8, (64, 3, 3))
    fit(model, Batches(codes, batch_size=16), Batches(codes[:16], batch_size=16), max_epochs=1, lr=1e-3,
        compiled=True, precision="bf16")
    assert len(seen) == 1 and seen[0] == model.loss
    seen.clear()
    fit(GatedPixelCNN(8, (3, 3), 4, 2), Batches(codes, batch_size=16), max_epochs=1, lr=1e-3)
    assert seen == []


def test_prior_compile_is_a_boolean_and_in_the_priors_identity():
    from geohelpers.config import ConfigError, resolve
    from geohelpers.stages.priors import PRIOR_TRAINING

    assert resolve("quick").prior.compile is False and "prior.compile" in PRIOR_TRAINING
    assert resolve("quick", {"prior.compile": True}).prior.compile is True
    with pytest.raises(ConfigError, match="'prior.compile' must be True or False"):
        resolve("quick", {"prior.compile": 1})
