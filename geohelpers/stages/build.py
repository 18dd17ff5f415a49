"""The one load-or-build of every trained artifact.

:func:`load_or_train` is the recipe every trained stage shares: seed, build the model, make its batches,
optionally initialise it from its inputs, then :func:`~geohelpers.train.fit` it under the stopping rule
with its checkpoint and identity. ``fit`` checks the checkpoint's bytes against its digest before loading
it (a damaged one is set aside and the model retrained, :func:`geohelpers.files.read_artifact`), loads it
when its identity is the one asked for, resumes it when training was interrupted, and writes every
checkpoint atomically under a lock (:func:`geohelpers.files.write_artifact`). The result is a
:class:`Trained`: the model, its history, whether it was built in this call, and the call's wall time.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Callable, Generic, TypeVar

import torch

from .. import store
from ..config import Config
from ..data import Batches
from ..train import History, NonFiniteLossError, fit, pick_device, seed_everything

M = TypeVar("M", bound=torch.nn.Module)


def stopping_rule_kwargs(cfg: Config) -> dict[str, float | int]:
    """The stopping rule's arguments of :func:`~geohelpers.train.fit` (``training`` section)."""
    return {"patience": cfg.training.patience, "min_delta": cfg.training.min_delta}


@dataclass
class Trained(Generic[M]):
    """A trained stage: its model (best-validation weights, eval mode, on the CPU), the training history
    (``None`` when training diverged), whether it was trained in this call (False: an up-to-date checkpoint
    was loaded), the call's wall time, and the error message when training stopped on a non-finite loss."""

    model: M
    history: History | None
    built_now: bool
    seconds: float
    diverged: str | None = None


def load_or_train(name: str, identity: str, cfg: Config, make: Callable[[], M],
                  batches: Callable[[M], tuple[Batches, Batches | None]], *, max_epochs: int, lr: float, desc: str,
                  prepare: Callable[[M, Batches], None] | None = None,
                  optimizer: Callable[[M], torch.optim.Optimizer] | None = None,
                  tolerate_divergence: bool = False, **fit_kwargs: Any) -> Trained[M]:
    """Load the stage ``name`` (checkpoint ``artifacts/<profile>/checkpoints/<name>.pt``) when it carries
    ``identity``, or train it under the stopping rule of ``cfg.training``.

    In this order, so that a stage's numbers are the same whether it runs alone or in a graph: seed
    ``cfg.seed``; ``make()`` the model; ``batches(model)`` gives the training and validation batches;
    ``prepare(model, train)`` initialises it from its inputs (a VQ-VAE's codebook); then ``fit``.
    ``optimizer(model)`` replaces Adam over every parameter. With ``tolerate_divergence``, a non-finite
    loss returns the model as it stands with ``diverged`` set instead of raising.
    """
    t0 = time.perf_counter()
    seed_everything(cfg.seed)
    model = make()
    train, val = batches(model)
    if prepare is not None:
        prepare(model, train)
    opt = (lambda _: optimizer(model)) if optimizer is not None else None
    try:
        history = fit(model, train, val, max_epochs=max_epochs, lr=lr, checkpoint=store.checkpoint_path(cfg.profile, name),
                      tag=identity, device=pick_device(cfg.device), desc=desc, optimizer=opt,
                      **stopping_rule_kwargs(cfg), **fit_kwargs)
    except NonFiniteLossError as err:
        if not tolerate_divergence:
            raise
        return Trained(model, None, True, time.perf_counter() - t0, str(err))
    return Trained(model, history, history.epochs_this_call > 0, time.perf_counter() - t0)
