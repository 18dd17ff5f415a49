"""Stages that notebooks share, composed from data, models, the training loop and the store.

A stage that produces a model is *up to date* when its checkpoint carries the tag of the current
configuration and model source; then it is loaded instead of retrained. So each notebook also runs on
its own in JupyterLab: it retrains what an earlier notebook would have produced only when that is missing
or stale.
"""

from __future__ import annotations

import hashlib
import inspect
from dataclasses import dataclass

import torch

from . import store
from .config import Config
from .data import MNIST, Batches
from .models import vae as vae_module
from .models.vae import VAE, build_vae
from .train import History, fit, pick_device, seed_everything


def source_digest(*modules: object) -> str:
    """Hash of the source code of the given modules (a change retrains what they define)."""
    h = hashlib.sha256()
    for module in modules:
        h.update(inspect.getsource(module).encode())  # type: ignore[arg-type]
    return h.hexdigest()[:16]


@dataclass
class TrainedModel:
    model: torch.nn.Module
    history: History
    trained_now: bool  # False when an up-to-date checkpoint was loaded


def vae_tag(kind: str, cfg: Config) -> str:
    """Identity of a trained VAE: its config section, the data subset, the seed and the model source."""
    return f"{kind}-{cfg.digest(f'{kind}_vae', 'data', 'seed')}-{source_digest(vae_module)}"


def train_vae(kind: str, cfg: Config, data: MNIST) -> TrainedModel:
    """Train the ``"flat"`` or ``"grid"`` VAE of ``cfg`` (or load it when its checkpoint is up to date)."""
    vcfg = getattr(cfg, f"{kind}_vae")
    seed_everything(cfg.seed)
    model: VAE = build_vae(kind, vcfg)
    train = Batches(data.train_x, batch_size=vcfg.batch_size, shuffle=True, seed=cfg.seed)
    val = Batches(data.val_x, batch_size=cfg.data.eval_batch_size)
    ckpt = store.checkpoint_path(cfg.profile, f"vae_{kind}")
    tag = vae_tag(kind, cfg)
    history = fit(model, train, val, epochs=vcfg.epochs, lr=vcfg.lr, checkpoint=ckpt, tag=tag,
                  device=pick_device(cfg.device), desc=f"{kind} VAE epoch")
    return TrainedModel(model, history, trained_now=history.epochs_this_call > 0)
