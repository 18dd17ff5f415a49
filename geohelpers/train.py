"""The one training loop of the project.

:func:`fit` trains any model that has ``loss(batch) -> (loss, logs)`` with Adam, on :class:`~geohelpers.data.Batches`:

- the device is chosen automatically (CUDA when present) unless given;
- a tqdm bar per epoch shows the running mean loss;
- after each epoch the model is validated (mean loss over the validation batches) and a checkpoint is
  written (weights, the best weights so far, optimizer state, RNG state, history, and a ``tag`` naming
  the configuration);
- **the stopping rule** (one for every model of the project): with ``patience``, training stops when the
  validation loss has not improved by a relative ``min_delta`` for ``patience`` epochs in a row, and in
  any case after ``max_epochs``; the weights of the lowest validation loss are restored, and the history
  records why training stopped (``"patience"`` or ``"max_epochs"``) and the best epoch;
- a later call with the same checkpoint path and tag resumes after the last finished epoch and gives the
  same weights as an uninterrupted run; a checkpoint of a finished run is simply loaded;
- a non-finite loss stops training with :class:`NonFiniteLossError`, naming the step;
- ``precision="bf16"`` computes the training steps' forward passes under bf16 autocast (matrix products
  and convolutions in bfloat16, reductions such as the log-softmax in float32; the weights, gradients and
  the optimizer stay float32); validation is always float32, so the stopping rule and every reported loss
  see full precision;
- wall time is recorded per epoch and in total (summed over resumed calls).
"""

from __future__ import annotations

import contextlib
import io
import math
import os
import random
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from tqdm import tqdm

from . import files
from .config import LR_SCHEDULES, PRECISIONS
from .data import Batches


class NonFiniteLossError(FloatingPointError):
    """The training loss became NaN or infinite."""


def pick_device(preference: str = "auto") -> torch.device:
    """``"auto"``: CUDA when available, else CPU; ``"cpu"`` / ``"cuda"`` as asked."""
    if preference == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if preference == "cuda" and not torch.cuda.is_available():
        raise ValueError("parameter 'device' is 'cuda' but no CUDA device is available; allowed: 'auto', 'cpu'")
    if preference not in ("cpu", "cuda"):
        raise ValueError(f"parameter 'device' is {preference!r}; allowed: 'auto', 'cpu', 'cuda'")
    return torch.device(preference)


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (CPU and CUDA) generators."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


@dataclass
class History:
    """Per-epoch records (``epoch``, ``train_loss``, ``val_loss``, ``seconds`` and the model's logs)."""

    epochs: list[dict[str, float]] = field(default_factory=list)
    steps: int = 0
    wall_time_s: float = 0.0
    resumed_from_epoch: int | None = None
    epochs_this_call: int = 0  # 0 when an up-to-date checkpoint was only loaded
    stop_reason: str | None = None  # "patience" (the stopping rule fired) or "max_epochs" (the cap)
    best_epoch: int | None = None   # the epoch whose weights the model holds (best validation loss)
    best_val_loss: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def column(self, key: str) -> list[float]:
        return [e[key] for e in self.epochs]


def _rng_state() -> dict[str, Any]:
    state = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict[str, Any]) -> None:
    """Restore :func:`_rng_state`; the states are CPU byte tensors whatever ``map_location`` loaded them to."""
    torch.set_rng_state(state["torch"].cpu())
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([s.cpu() for s in state["cuda"]])


def lr_factor(schedule: str, total_steps: int) -> Callable[[int], float]:
    """The learning rate's factor after ``step`` optimizer steps, for ``schedule``:

    - ``constant``: 1;
    - ``cosine``: ``0.5 (1 + cos(pi t / T))`` over the first ``T = total_steps`` steps, then the floor;
    - ``warmup_cosine``: linear from 0.1 to 1 over the first 5 % of ``T``, then cosine to the floor at ``T``.

    The floor (1 % of the learning rate) lets a training that the stopping rule has not ended by step ``T``
    go on improving slowly instead of stalling.
    """
    floor, total = 0.01, max(1, total_steps)
    warm = max(1, total // 20) if schedule == "warmup_cosine" else 0

    def factor(step: int) -> float:
        if schedule == "constant":
            return 1.0
        if step < warm:
            return 0.1 + 0.9 * step / warm
        t = min(1.0, (step - warm) / max(1, total - warm))
        return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * t))

    if schedule not in LR_SCHEDULES:
        raise ValueError(f"parameter 'lr_schedule' is {schedule!r}; allowed: one of {', '.join(LR_SCHEDULES)}")
    return factor


def autocast(precision: str, device: torch.device) -> contextlib.AbstractContextManager:
    """The context of a training step's forward pass: nothing for ``"fp32"``, bf16 autocast on
    ``device`` for ``"bf16"``."""
    if precision not in PRECISIONS:
        raise ValueError(f"parameter 'precision' is {precision!r}; allowed: one of {', '.join(map(repr, PRECISIONS))}")
    if precision == "fp32":
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=torch.bfloat16)


@dataclass
class StoppingRule:
    """When training ends: after ``max_epochs``, or once the monitored validation loss has gone
    ``patience`` epochs without falling below ``best * (1 - min_delta)`` (a relative improvement on the
    last epoch that counted as one). The weights kept are those of the lowest value seen, an improvement
    smaller than ``min_delta`` included: ``min_delta`` decides when to stop, not which weights to keep.
    ``patience=None`` trains for ``max_epochs`` and keeps the last weights (for models without a
    validation set)."""

    max_epochs: int
    patience: int | None = None
    min_delta: float = 0.0
    monitor: str = "val_loss"

    def __post_init__(self) -> None:
        if self.max_epochs < 1:
            raise ValueError(f"parameter 'max_epochs' must be >= 1, got {self.max_epochs}")
        if self.patience is not None and self.patience < 1:
            raise ValueError(f"parameter 'patience' must be >= 1 (or None), got {self.patience}")
        if not 0.0 <= self.min_delta < 1.0:
            raise ValueError(f"parameter 'min_delta' must be in [0, 1), got {self.min_delta}")

    def improves(self, value: float, best: float | None) -> bool:
        """Whether ``value`` is a new best: lower than ``best`` by more than ``min_delta * |best|``."""
        return best is None or value < best - self.min_delta * abs(best)

    def epochs_since_best(self, values: list[float]) -> tuple[int, int]:
        """(index of the best epoch, epochs since it) for a sequence of monitored values."""
        best, best_i = None, 0
        for i, v in enumerate(values):
            if self.improves(v, best):
                best, best_i = v, i
        return best_i, len(values) - 1 - best_i

    def reason(self, values: list[float]) -> str | None:
        """Why training stops after these epochs' monitored values, or ``None`` to go on."""
        if self.patience is not None and values and self.epochs_since_best(values)[1] >= self.patience:
            return "patience"
        return "max_epochs" if len(values) >= self.max_epochs else None


@torch.no_grad()
def evaluate_loss(model: torch.nn.Module, batches: Batches, device: torch.device) -> dict[str, float]:
    """Mean of ``loss`` and of each log over ``batches``, weighted by batch size, in eval mode."""
    was_training = model.training
    model.eval()
    totals: dict[str, float] = {}
    n = 0
    for batch in batches:
        batch = tuple(t.to(device, non_blocking=True) for t in batch)
        loss, logs = model.loss(batch)
        k = len(batch[0])
        for key, value in {"loss": loss.item(), **logs}.items():
            totals[key] = totals.get(key, 0.0) + value * k
        n += k
    model.train(was_training)
    return {key: v / n for key, v in totals.items()}


def fit(model: torch.nn.Module, train: Batches, val: Batches | None = None, *, max_epochs: int, lr: float,
        patience: int | None = None, min_delta: float = 0.0,
        checkpoint: str | Path | None = None, tag: str = "", device: torch.device | str | None = None,
        desc: str = "train", stop_after: int | None = None, precision: str = "fp32",
        lr_schedule: str = "constant", schedule_epochs: int | None = None, compiled: bool = False,
        optimizer: Callable[[Any], torch.optim.Optimizer] | None = None,
        on_epoch_end: Callable[[torch.nn.Module, int, dict[str, float]], dict[str, float] | None] | None = None,
        ) -> History:
    """Train ``model`` under the :class:`StoppingRule` (``max_epochs``, ``patience``, ``min_delta``),
    resuming from ``checkpoint`` when its ``tag`` matches.

    Seed before building the model: ``fit`` does not reseed, so that a resumed run continues the RNG
    stream saved in the checkpoint. ``stop_after`` ends the call after that many finished epochs, as an
    interruption would (the checkpoint is kept). ``on_epoch_end`` may return extra per-epoch records
    (e.g. code usage) to store in the history. Returns the :class:`History`; the model holds the
    best-validation weights (the last ones when ``patience`` is ``None``) and is left in eval mode on
    the CPU, where the book's analysis (encoding, quantization, metrics, sampling) runs: ``device`` is
    the training device only, so a model trained now and one loaded from its checkpoint are the same.
    ``precision`` (``"fp32"`` or ``"bf16"``) is that of the training steps' forward passes only.
    ``lr_schedule`` scales the learning rate per step (:func:`lr_factor`) over ``schedule_epochs`` epochs
    (default ``max_epochs``); its state is checkpointed with the optimizer's. ``compiled`` runs the training
    steps' loss through ``torch.compile`` (validation stays eager): the same function, compiled once per call.
    """
    rule = StoppingRule(max_epochs, patience, min_delta)
    if patience is not None and val is None:
        raise ValueError("parameter 'patience' needs a validation set ('val'); allowed: patience=None without one")
    device = device if isinstance(device, torch.device) else pick_device(device or "auto")
    autocast(precision, device)  # a bad precision fails here, before any work
    model.to(device)
    opt = optimizer(model.parameters()) if optimizer else torch.optim.Adam(model.parameters(), lr=lr)
    factor = lr_factor(lr_schedule, (schedule_epochs or max_epochs) * len(train))  # a bad schedule fails here
    scheduler = torch.optim.lr_scheduler.LambdaLR(opt, factor) if lr_schedule != "constant" else None
    history, start, best_state = History(), 0, None
    path = Path(checkpoint) if checkpoint else None
    stored = files.read_artifact(path, "checkpoint") if path is not None else None
    if stored is not None:
        state = torch.load(io.BytesIO(stored), map_location=device, weights_only=False)
        if state.get("tag") == tag:
            model.load_state_dict(state["model"])
            opt.load_state_dict(state["optimizer"])
            if scheduler is not None and state.get("scheduler") is not None:
                scheduler.load_state_dict(state["scheduler"])
            _set_rng_state(state["rng"])
            history = History(**state["history"])
            history.epochs_this_call = 0
            best_state = state.get("best")
            start = state["epoch"]
            if history.stop_reason is None:
                history.resumed_from_epoch = start
    last = max_epochs if stop_after is None else min(max_epochs, stop_after)
    step_loss = torch.compile(model.loss) if compiled else model.loss
    epoch = start
    while history.stop_reason is None and epoch < last:
        model.train()
        t0 = time.perf_counter()
        running, count = 0.0, 0
        sums: dict[str, float] = {}
        bar = tqdm(train.epoch(epoch), total=len(train), desc=f"{desc} {epoch + 1}/{max_epochs}",
                   mininterval=float(os.environ.get("TQDM_MININTERVAL", 0.5)), leave=True)
        for batch in bar:
            batch = tuple(t.to(device, non_blocking=True) for t in batch)
            with autocast(precision, device):
                loss, logs = step_loss(batch)
            history.steps += 1
            if not torch.isfinite(loss):
                raise NonFiniteLossError(
                    f"non-finite loss ({loss.item()}) at step {history.steps} (epoch {epoch + 1}, "
                    f"batch {count + 1}); the last checkpoint ({path}) holds epoch {epoch}")
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            if scheduler is not None:
                scheduler.step()
            count += 1
            running += (loss.item() - running) / count
            for key, value in logs.items():
                sums[key] = sums.get(key, 0.0) + value
            bar.set_postfix(loss=f"{running:.4g}", refresh=False)
        bar.close()
        record: dict[str, float] = {"epoch": epoch + 1, "train_loss": running,
                                    **{f"train_{k}": v / count for k, v in sums.items()}}
        if val is not None:
            record.update({f"val_{k}": v for k, v in evaluate_loss(model, val, device).items()})
        if on_epoch_end is not None:
            record.update(on_epoch_end(model, epoch, record) or {})
        record["seconds"] = time.perf_counter() - t0
        if not all(math.isfinite(v) for v in record.values()):
            raise NonFiniteLossError(f"non-finite epoch record at step {history.steps}: {record}")
        history.epochs.append(record)
        history.epochs_this_call += 1
        history.wall_time_s += record["seconds"]
        epoch += 1
        monitored = history.column(rule.monitor) if val is not None else []
        if val is not None and record[rule.monitor] <= min(monitored):  # the lowest so far: keep these weights
            best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
            history.best_epoch, history.best_val_loss = epoch, record[rule.monitor]
        history.stop_reason = rule.reason(monitored) if val is not None else (
            "max_epochs" if epoch >= max_epochs else None)
        if history.stop_reason is not None and best_state is not None:
            model.load_state_dict(best_state)
        if history.stop_reason is not None and val is None:
            history.best_epoch = epoch
        if path is not None:
            buffer = io.BytesIO()
            torch.save({"model": model.state_dict(), "optimizer": opt.state_dict(), "rng": _rng_state(),
                        "history": history.to_dict(), "epoch": epoch, "tag": tag, "best": best_state,
                        "scheduler": scheduler.state_dict() if scheduler is not None else None}, buffer)
            files.write_artifact(path, buffer.getvalue(), made_by=tag or "an untagged checkpoint")
    model.eval().to("cpu")
    return history


#: The environment variable through which the runner passes its reference workload to the notebooks.
REFERENCE_ENV = "GEOVQ_REFERENCE_WORKLOAD_S"


def reference_workload(steps: int = 50, batch_size: int = 128, warmup: int = 3, threads: int = 1) -> float:
    """Seconds for ``steps`` training steps of the standard profile's GridVAE on fixed random images, on
    ``threads`` torch threads (one, as every stage of the graph runs): a workload that never changes, timed
    beside every book run, so that a reader can tell a slow machine from a slow book (machines of one kind
    differ by up to 2x from day to day). Records before the stage graph timed it on two threads."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        return _reference_steps(steps, batch_size, warmup)
    finally:
        torch.set_num_threads(before)


def _reference_steps(steps: int, batch_size: int, warmup: int) -> float:
    import torch

    from .config import resolve
    from .models.vae import build_vae

    gen = torch.Generator().manual_seed(0)
    x = torch.rand(batch_size, 1, 28, 28, generator=gen)
    torch.manual_seed(0)
    cfg = resolve("standard").grid_vae
    model = build_vae("grid", cfg)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)

    def step() -> None:
        loss, _ = model.loss((x,))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    for _ in range(warmup):
        step()
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    return time.perf_counter() - t0
