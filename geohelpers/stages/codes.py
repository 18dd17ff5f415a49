"""Stage: code maps (``codes/<code set>``): the train, validation and test images as maps of codes under one
codebook or VQ-VAE, stored for the priors, with the identity of what coded them.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np

from .. import artifacts, files, store
from ..config import Config
from ..models.vae import VAE
from ..quantize.codebook import Codebook
from .codebooks import codebook_tag
from .vaes import Latents
from .vqvaes import vqvae_tag


def code_identity(name: str, cfg: Config) -> str:
    """Identity of the stored code maps ``name``: ``<vae>_<method>_K<k>`` knows its codebook,
    ``vqvae_<variant>_K<k>`` its VQ-VAE."""
    cs = artifacts.CodeSet.parse(name)
    inputs = {"vqvae": vqvae_tag(cs.method, cs.k, cfg)} if cs.source == "vqvae" else \
        {"codebook": codebook_tag(cs.source, cs.method, cs.k, cfg)}
    return artifacts.identity(f"codes/{name}", cfg, ("data",), inputs, module=__name__)


def save_codes(cfg: Config, name: str, **splits: np.ndarray) -> Path:
    """Code maps of each split (``train=..., val=..., test=...``) for the priors (notebook 04), in the
    smallest unsigned type that holds them, with their identity (:func:`code_identity`). Maps already
    stored with this identity are left untouched."""
    path = store.artifacts_dir(cfg.profile) / "codes" / f"{name}.npz"
    identity = code_identity(name, cfg)
    if path.exists():  # the same maps with the same identity are not written again (zip entries carry a time)
        try:
            stored = load_codes(cfg, name)
        except (FileNotFoundError, artifacts.StaleArtifactError):
            stored = None
        if stored is not None and set(stored) == set(splits) and all(np.array_equal(stored[s], v) for s, v in splits.items()):
            return path
    buffer = io.BytesIO()
    np.savez_compressed(buffer, __identity__=np.array(identity), **{k: v.astype(code_dtype(v)) for k, v in splits.items()})
    return files.write_artifact(path, buffer.getvalue(), identity)


def code_dtype(codes: np.ndarray) -> np.dtype:
    """The smallest unsigned integer type that holds every code (int16 overflowed past K = 32,768)."""
    codes = np.asarray(codes)
    if codes.size and codes.min() < 0:
        raise ValueError(f"codes must be >= 0, got {int(codes.min())}")
    return np.min_scalar_type(int(codes.max(initial=0)))


def load_codes(cfg: Config, name: str) -> dict[str, np.ndarray]:
    """The stored code maps ``name`` (e.g. ``grid_geodesic_K512``): ``train``/``val``/``test`` int64 arrays.

    Raises :class:`~geohelpers.artifacts.StaleArtifactError` when they were made by another codebook or
    VQ-VAE than the one this configuration gives (:func:`code_identity`).
    """
    path = store.artifacts_dir(cfg.profile) / "codes" / f"{name}.npz"
    rebuild = (f"run the notebook that stores the codes {name!r} (02: kmeans/w2, 03: geodesic, 05: vqvae, "
               f"06: decoder-aware) with profile {cfg.profile!r}")
    stored = files.read_artifact(path, "code maps")
    if stored is None:
        raise FileNotFoundError(f"{path} is missing (or was damaged and set aside): {rebuild}")
    with np.load(io.BytesIO(stored)) as z:
        found = str(z["__identity__"]) if "__identity__" in z.files else None
        artifacts.check(path, found, code_identity(name, cfg), rebuild)
        return {split: z[split].astype(np.int64) for split in z.files if split != "__identity__"}


def encode_and_save_codes(cb: Codebook, vae: VAE, lat: dict[str, Latents], name: str, cfg: Config) -> None:
    """The train/validation/test code maps of one codebook, for a prior (``artifacts/<profile>/codes``)."""
    save_codes(cfg, name, **{s: cb.encode_latents(vae, lat[s].mu, lat[s].sigma) for s in ("train", "val", "test")})
