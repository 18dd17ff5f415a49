"""Stage: code maps drawn from a trained prior (``samples/<prior kind>/<code set>``), at every sampling
temperature of ``comparison.temperatures``: ``comparison.n_samples`` maps per temperature, seeded with the
configuration's seed, so that sample ``i`` of every generator at one temperature comes from the same random
numbers. Drawing them is what costs (one forward pass of the prior per code position); decoding and scoring
them is done by the notebooks, which can then try several decoders (a VAE's own, an adapted one) on the
same maps.
"""

from __future__ import annotations

import io
import json

import numpy as np

from .. import artifacts, files, store
from ..config import Config
from .codes import code_dtype
from .priors import prior_tag, train_prior


def samples_tag(kind: str, codes_name: str, cfg: Config) -> str:
    """Identity of the drawn maps: the prior's identity, the number of maps and the temperatures."""
    c = cfg.comparison
    return artifacts.identity(f"samples/{kind}_{codes_name}", cfg, (), {"prior": prior_tag(kind, codes_name, cfg)},
                              n=c.n_samples, temperatures=list(c.temperatures), module=__name__)


def _key(temperature: float) -> str:
    return f"T{temperature:g}"


def sample_codes(kind: str, codes_name: str, k: int, cfg: Config) -> dict[float, np.ndarray]:
    """The maps drawn from the prior ``kind`` of the code set ``codes_name`` at each temperature of
    ``comparison.temperatures`` (temperature -> (n, *shape) int64 codes): loaded when stored with this
    configuration's identity (:func:`samples_tag`), else drawn from the prior (trained or loaded by
    :func:`~geohelpers.stages.priors.train_prior`) and stored atomically."""
    c = cfg.comparison
    path = store.artifacts_dir(cfg.profile) / "samples" / f"{kind}_{codes_name}.npz"
    identity = samples_tag(kind, codes_name, cfg)
    stored = files.read_artifact(path, "sampled code maps")
    if stored is not None:
        with np.load(io.BytesIO(stored)) as z:
            if "__identity__" in z.files and str(z["__identity__"]) == identity:
                return {t: z[_key(t)].astype(np.int64) for t in c.temperatures}
    prior = train_prior(kind, codes_name, k, cfg).model
    drawn = {t: prior.sample(c.n_samples, temperature=t, seed=cfg.seed, batch_size=5000, progress=False).numpy()
             for t in c.temperatures}
    buffer = io.BytesIO()
    np.savez_compressed(buffer, __identity__=np.array(identity), __temperatures__=np.array(json.dumps(list(c.temperatures))),
                        **{_key(t): v.astype(code_dtype(v)) for t, v in drawn.items()})
    path.parent.mkdir(parents=True, exist_ok=True)
    files.write_artifact(path, buffer.getvalue(), identity)
    return {t: v.astype(np.int64) for t, v in drawn.items()}
