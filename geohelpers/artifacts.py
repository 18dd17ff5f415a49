"""The one identity of every artifact: checkpoints, codebooks, code maps and the priors trained on them.

An artifact is reused only when its identity matches the one the current configuration asks for; else it
is rebuilt. The identity is a hash of

- what it is (``kind``, e.g. ``"vae/grid"``, ``"codebook/grid/kmeans/K512"``),
- the config sections that shape it (always with the seed and the stopping rule),
- the source of every module of ``geohelpers`` that can shape an artifact (all of them but
  :data:`PRESENTATION`, which only draw tables, figures and pages),
- the versions of the libraries that compute it (:data:`LIBRARIES`),
- the identities of its inputs (the VAE a codebook quantizes, the codebook a code map comes from, the
  code map a prior is trained on).

So a change to ``train.py``, ``data.py`` or ``quantize/kmeans.py``, a new torch, or other code maps
retrain what depends on them, and nothing can pair a prior with another configuration's codebook.
"""

from __future__ import annotations

import hashlib
import json
from functools import lru_cache
from pathlib import Path
from typing import Iterable, Mapping

from .config import Config

#: Modules that shape no artifact (tables, figures, the runner, sweeps and the built book's check).
PRESENTATION = frozenset({"run.py", "bookcheck.py", "sweep.py", "report.py", "plots.py", "studies.py"})

#: Libraries whose versions enter every identity.
LIBRARIES = ("torch", "numpy", "faiss-cpu", "kmedoids", "scikit-learn", "scikit-learn-extra", "scipy")


class StaleArtifactError(RuntimeError):
    """A stored artifact was made by another configuration, code or input than the one asked for."""


@lru_cache(maxsize=1)
def source_digest() -> str:
    """Hash of the source of every module of the package but :data:`PRESENTATION`."""
    root = Path(__file__).resolve().parent
    h = hashlib.sha256()
    for f in sorted(root.rglob("*.py")):
        rel = f.relative_to(root).as_posix()
        if rel in PRESENTATION:
            continue
        h.update(rel.encode())
        h.update(f.read_bytes())
    return h.hexdigest()[:16]


@lru_cache(maxsize=1)
def library_versions() -> dict[str, str]:
    from .store import versions_of

    return versions_of(LIBRARIES)


def identity(kind: str, cfg: Config, sections: Iterable[str] = (), inputs: Mapping[str, str] | None = None,
             **params: object) -> str:
    """The identity of one artifact: ``kind`` plus a hash of its config ``sections`` (with ``seed`` and
    ``training``), extra ``params``, the package source, the library versions and its ``inputs``'
    identities."""
    names = sorted({*sections, "seed", "training"})
    payload = {"kind": kind, "config": cfg.digest(*names), "params": params, "source": source_digest(),
               "libraries": library_versions(), "inputs": dict(sorted((inputs or {}).items()))}
    digest = hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()[:16]
    return f"{kind}@{digest}"


def check(path: Path, found: str | None, expected: str, rebuild: str) -> None:
    """Raise :class:`StaleArtifactError` when the identity ``found`` in ``path`` is not ``expected``."""
    if found != expected:
        raise StaleArtifactError(f"{path} was made as {found or 'an artifact without identity'}, but this "
                                 f"configuration needs {expected}: {rebuild}")
