"""Stage: priors over code maps (``prior/<kind>_<code set>``): a gated PixelCNN or a causal Transformer trained
on one code set's training maps under the stopping rule, validated on its validation maps.
"""

from __future__ import annotations

import numpy as np
import torch

from .. import artifacts
from ..config import Config
from ..data import Batches
from ..models.prior import CodePrior
from .build import Trained, load_or_train
from .codes import code_identity, load_codes


def prior_model(kind: str, k: int, shape: tuple[int, ...], cfg: Config) -> CodePrior:
    """The prior ``kind`` (``pixelcnn`` or ``transformer``) with the sizes of ``cfg.prior``."""
    from ..config import PRIOR_KINDS
    from ..models.pixelcnn import GatedPixelCNN
    from ..models.transformer import CodeTransformer

    p = cfg.prior
    if kind == "pixelcnn":
        return GatedPixelCNN(k, shape, p.pixelcnn_channels, p.pixelcnn_layers)
    if kind == "transformer":
        return CodeTransformer(k, shape, p.transformer_dim, p.transformer_layers, p.transformer_heads)
    raise ValueError(f"parameter 'prior' is {kind!r}; allowed: one of {', '.join(PRIOR_KINDS)}")


#: The parameters a prior's training reads, by kind: its architecture, its optimizer and schedule, its
#: arithmetic and its cap (the stopping rule and the seed enter every identity). Which K, code sets,
#: architectures or samples a profile asks for (``prior.ks``, ``methods``, ``kmax_methods``, ``kinds``,
#: ``vaes``, ``temperature``, ``n_show``) are read by no training, so they move no prior's identity.
PRIOR_TRAINING = ("prior.precision", "prior.compile", "prior.max_epochs", "prior.batch_size", "prior.lr",
                  "prior.lr_schedule", "prior.schedule_epochs")
PRIOR_ARCHITECTURE = {"pixelcnn": ("prior.pixelcnn_channels", "prior.pixelcnn_layers"),
                      "transformer": ("prior.transformer_dim", "prior.transformer_layers", "prior.transformer_heads")}


def prior_tag(kind: str, codes_name: str, cfg: Config) -> str:
    """Identity of a prior: the parameters its training reads (:data:`PRIOR_TRAINING`, its kind's
    :data:`PRIOR_ARCHITECTURE`), the seed, and the identity of the code maps it models."""
    return artifacts.identity(f"prior/{kind}_{codes_name}", cfg, (*PRIOR_TRAINING, *PRIOR_ARCHITECTURE.get(kind, ())),
                              {"codes": code_identity(codes_name, cfg)}, module=__name__)


def train_prior(kind: str, codes_name: str, k: int, cfg: Config,
                codes: dict[str, np.ndarray] | None = None) -> Trained[CodePrior]:
    """Train the prior ``kind`` on the training maps of the stored codes ``codes_name`` (or load it),
    validated on the validation maps after every epoch, under the stopping rule.

    The checkpoint's identity (:func:`prior_tag`) covers the prior's config, the seed, the prior's source
    and the code maps' identity, so new codes retrain it. ``codes`` are the maps of :func:`load_codes`,
    when the caller has them already.
    """
    codes = codes if codes is not None else load_codes(cfg, codes_name)
    top = int(max(c.max() for c in codes.values()))
    if top >= k:
        raise ValueError(f"parameter 'k' is {k} but the codes {codes_name!r} hold code {top}; "
                         f"allowed: K > every code (the codebook's K)")
    shape = tuple(codes["train"].shape[1:])
    p = cfg.prior
    return load_or_train(
        f"prior_{kind}_{codes_name}", prior_tag(kind, codes_name, cfg), cfg, lambda: prior_model(kind, k, shape, cfg),
        lambda _: (Batches(torch.from_numpy(codes["train"]), batch_size=p.batch_size, shuffle=True, seed=cfg.seed),
                   Batches(torch.from_numpy(codes["val"]), batch_size=cfg.data.eval_batch_size)),
        max_epochs=p.max_epochs, lr=p.lr, desc=f"{kind} on {codes_name} epoch", precision=p.precision,
        compiled=p.compile, lr_schedule=p.lr_schedule, schedule_epochs=p.schedule_epochs or None)


def check_prior_fits(prior: CodePrior, k: int, shape: tuple[int, ...]) -> None:
    """A prior's samples can only be decoded by a quantizer with the same K and map shape."""
    if prior.k != k:
        raise ValueError(f"parameter 'k' mismatch: the prior models K = {prior.k} codes, the codebook has "
                         f"K = {k}; allowed: the same K")
    if tuple(prior.shape) != tuple(shape):
        raise ValueError(f"parameter 'shape' mismatch: the prior models {prior.shape} maps, the decoder "
                         f"expects {tuple(shape)}")
