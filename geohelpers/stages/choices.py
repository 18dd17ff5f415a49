"""Stage: the book's choices made on validation numbers (``choice/<name>``, :mod:`geohelpers.plan`), stored
so that what depends on a choice (the hybrid VQ-VAE starts from the chosen a posteriori codebook) carries
it in its identity.

A choice is stored as ``artifacts/<profile>/choices/<name>.json``: the chosen value and the identity of
what it chose among (the candidates' identities). It is read back only when those candidates are the
ones this configuration makes; otherwise it is stale and must be made again.
"""

from __future__ import annotations

import json

from .. import artifacts, files, store
from ..config import PULLBACK_METHODS, Config
from .codebooks import codebook_tag
from .vaes import vae_tag

#: The a posteriori codebooks the book chooses among (notebooks 05 and 06), at the largest K of ``vqvae.ks``.
A_POSTERIORI_METHODS = ("kmeans", "w2", "geodesic", *PULLBACK_METHODS)


def a_posteriori_candidates(cfg: Config) -> dict[str, str]:
    """The identities of the GridVAE and of its a posteriori codebooks at the largest K of ``vqvae.ks``."""
    k = max(cfg.vqvae.ks)
    return {"vae": vae_tag("grid", cfg), **{m: codebook_tag("grid", m, k, cfg) for m in A_POSTERIORI_METHODS}}


def choice_identity(name: str, candidates: dict[str, str], cfg: Config) -> str:
    return artifacts.identity(f"choice/{name}", cfg, (), candidates, module=__name__)


def save_choice(cfg: Config, name: str, value: str, candidates: dict[str, str]) -> None:
    """Store the choice ``name`` = ``value`` made among ``candidates`` (name -> identity), atomically."""
    path = store.artifacts_dir(cfg.profile) / "choices" / f"{name}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    files.write_artifact(path, json.dumps({"value": value, "identity": choice_identity(name, candidates, cfg)},
                                          indent=2).encode(), made_by=f"choice/{name}")


def load_choice(cfg: Config, name: str, candidates: dict[str, str]) -> str:
    """The stored value of the choice ``name``, when it was made among ``candidates``;
    ``FileNotFoundError`` when it was never made, :class:`~geohelpers.artifacts.StaleArtifactError` when
    it was made among other candidates (make it again: notebook 05 or 06, or the stage graph)."""
    path = store.artifacts_dir(cfg.profile) / "choices" / f"{name}.json"
    data = files.read_artifact(path, "choice") if path.exists() else None
    if data is None:
        raise FileNotFoundError(f"{path}: the choice {name!r} has not been made for this configuration; make it "
                                f"first (notebook 05 or 06, or python -m geohelpers.run)")
    record = json.loads(data)
    artifacts.check(path, record.get("identity"), choice_identity(name, candidates, cfg),
                    f"make the choice {name!r} again")
    return str(record["value"])


def a_posteriori_choice(cfg: Config) -> str:
    """The a posteriori codebook chosen on validation for this configuration (see :func:`load_choice`)."""
    return load_choice(cfg, "a_posteriori", a_posteriori_candidates(cfg))
