"""Where things are kept: ``artifacts/<profile>/`` (checkpoints, codes; never committed) and
``results/<profile>/<name>.json`` (the numbers a notebook computed, with everything needed to trust them).

Every results file holds the metrics, the resolved config, the seed, the package versions, the machine,
the wall time of each stage and when it was written. ``results/standard/`` is committed: the figures of
record of the book.

``$GEOVQ_HOME`` relocates both folders (tests use a temporary one).
"""

from __future__ import annotations

import json
import os
import platform
import time
from contextlib import contextmanager
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any, Iterator, Mapping

import numpy as np
import torch

from . import files
from .config import Config
from .data import project_root

#: Distributions whose versions are recorded with every result.
RECORDED_PACKAGES = ("torch", "torchvision", "numpy", "scipy", "scikit-learn", "scikit-learn-extra",
                     "kmedoids", "networkx", "pandas", "matplotlib", "seaborn", "papermill", "myst-nb",
                     "jupyter-book")


def home() -> Path:
    return Path(os.environ.get("GEOVQ_HOME", project_root()))


def artifacts_dir(profile: str) -> Path:
    path = home() / "artifacts" / profile
    path.mkdir(parents=True, exist_ok=True)
    return path


def results_dir(profile: str) -> Path:
    path = home() / "results" / profile
    path.mkdir(parents=True, exist_ok=True)
    return path


def checkpoint_path(profile: str, name: str) -> Path:
    return artifacts_dir(profile) / f"{name}.pt"


def versions_of(dists: tuple[str, ...]) -> dict[str, str]:
    """The installed version of each distribution (``"not installed"`` when it is missing)."""
    versions = {}
    for dist in dists:
        try:
            versions[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            versions[dist] = "not installed"
    return versions


def package_versions() -> dict[str, str]:
    return {"python": platform.python_version(), **versions_of(RECORDED_PACKAGES)}


def machine() -> dict[str, Any]:
    info: dict[str, Any] = {"platform": platform.platform(), "processor": platform.machine(),
                            "cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads(),
                            "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None}
    return info


class WallTimes:
    """Collects the wall time of named stages: ``with times("train flat VAE"): ...``."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    @contextmanager
    def __call__(self, stage: str) -> Iterator[None]:
        t0 = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[stage] = self.seconds.get(stage, 0.0) + time.perf_counter() - t0

    @property
    def total(self) -> float:
        return sum(self.seconds.values())


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, torch.Tensor):
        return _jsonable(obj.detach().cpu().tolist())
    if isinstance(obj, np.ndarray):
        return _jsonable(obj.tolist())
    if isinstance(obj, np.generic):
        return obj.item()
    return obj


def write_results(name: str, cfg: Config, metrics: dict[str, Any], times: WallTimes,
                  extra: dict[str, Any] | None = None) -> Path:
    """Write ``results/<profile>/<name>.json`` and return its path."""
    payload = {
        "name": name,
        "profile": cfg.profile,
        "seed": cfg.seed,
        "metrics": _jsonable(metrics),
        "wall_time_s": {**{k: round(v, 3) for k, v in times.seconds.items()}, "total": round(times.total, 3)},
        "config": cfg.to_dict(),
        "versions": package_versions(),
        "machine": machine(),
        "written": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        **(_jsonable(extra) if extra else {}),
    }
    return files.write_json(results_dir(cfg.profile) / f"{name}.json", payload, allow_nan=False)


class StaleResultsError(RuntimeError):
    """A results file was computed with another configuration than the notebook that reads it."""


def config_differences(stored: Mapping[str, Any], current: Mapping[str, Any]) -> list[str]:
    """The top-level config sections (or single parameters, such as ``seed``) whose values differ between
    two configs in their JSON form (tuples and lists compare alike)."""
    a, b = json.loads(json.dumps(_jsonable(dict(stored)))), json.loads(json.dumps(_jsonable(dict(current))))
    return sorted(key for key in set(a) | set(b) if a.get(key) != b.get(key))


def read_results(cfg: Config, name: str) -> dict[str, Any]:
    """The results file ``name`` of ``cfg``'s profile, refused (:class:`StaleResultsError`, naming the
    sections that differ and the notebook to re-run) when it was computed with another configuration
    than ``cfg``: a verdict never mixes the numbers of two configurations."""
    path = home() / "results" / cfg.profile / f"{name}.json"
    rerun = f"python -m geohelpers.run --profile {cfg.profile} --only {name[:2]}"
    if not path.exists():
        raise FileNotFoundError(f"{path} does not exist: run the notebook that writes it ({rerun}, with this "
                                f"notebook's overrides)")
    payload = files.read_json(path, f"re-run notebook {name} ({rerun}, with this notebook's overrides)")
    differ = config_differences(payload.get("config", {}), cfg.to_dict())
    if differ:
        raise StaleResultsError(
            f"{path} was computed with another configuration than this notebook's (it differs in "
            f"{', '.join(differ)}): re-run notebook {name} with this notebook's configuration ({rerun}, with "
            f"the same --set overrides) before this one")
    return payload
