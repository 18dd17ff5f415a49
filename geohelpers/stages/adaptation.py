"""Stage: a VAE's decoder adapted to an a posteriori codebook (``adapted/<code set>``): the decoder alone is
fine-tuned on the quantized training latents, under the stopping rule; the codes, and so their rate, do not
change. Its control (``adapted/<vae>_continuous``): the same decoder fine-tuned the same way on the
continuous mu, which measures what more decoder training gives without any codes.
"""

from __future__ import annotations

import dataclasses

import torch

from .. import artifacts
from ..config import Config
from ..data import MNIST, Batches
from ..models.vae import VAE
from ..quantize.codebook import Codebook
from .build import Trained, load_or_train
from .codebooks import codebook_tag
from .vaes import Latents, vae_tag


class DecoderOnCodes(torch.nn.Module):
    """A copy of a VAE whose decoder alone trains on fixed quantized latents: for an image ``x`` with
    quantized latent ``c(x)`` (its codewords in place of ``mu``), the loss is the VAE's own reconstruction
    term ``BCE_sum(x, sigmoid(f(c(x))))``, averaged over the batch. The encoder and the codebook are frozen."""

    def __init__(self, vae: VAE) -> None:
        import copy

        super().__init__()
        self.vae = copy.deepcopy(vae)
        for p in self.vae.parameters():
            p.requires_grad_(False)
        self.decoder_parameters = [p for name, p in self.vae.named_parameters() if not name.startswith("encoder")]
        for p in self.decoder_parameters:
            p.requires_grad_(True)

    def loss(self, batch: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, dict[str, float]]:
        import torch.nn.functional as F

        z, x = batch
        logits = self.vae.decode_logits(z)
        recon = F.binary_cross_entropy_with_logits(logits, x, reduction="none").flatten(1).sum(1).mean()
        with torch.no_grad():
            mse = float(((torch.sigmoid(logits) - x) ** 2).mean())
        return recon, {"mse": mse}


def adapted_tag(code_set: artifacts.CodeSet, cfg: Config) -> str:
    """Identity of an adapted decoder: the codebook it was adapted to (and so its VAE), the data and the
    adaptation's parameters."""
    c = cfg.comparison
    return artifacts.identity(f"adapted/{code_set.name}", cfg, ("data",),
                              {"codebook": codebook_tag(code_set.source, code_set.method, code_set.k, cfg)},
                              max_epochs=c.adapt_max_epochs, lr=c.adapt_lr, module=__name__)


def _adapt(name: str, identity: str, vae: VAE, latents: dict[str, torch.Tensor], data: MNIST, cfg: Config
           ) -> Trained[VAE]:
    """The one decoder fine-tuning: ``latents`` (train, val) in the VAE's layout, paired with their images."""
    c = cfg.comparison

    def batches(_: DecoderOnCodes) -> tuple[Batches, Batches]:
        return (Batches(latents["train"], data.train_x, batch_size=cfg.grid_vae.batch_size, shuffle=True, seed=cfg.seed),
                Batches(latents["val"], data.val_x, batch_size=cfg.data.eval_batch_size))

    t = load_or_train(f"adapted_{name}", identity, cfg, lambda: DecoderOnCodes(vae), batches,
                      max_epochs=c.adapt_max_epochs, lr=c.adapt_lr, desc=f"decoder on {name} epoch",
                      optimizer=lambda m: torch.optim.Adam(m.decoder_parameters, lr=c.adapt_lr))
    return dataclasses.replace(t, model=t.model.vae.eval())


def continuous_tag(kind: str, cfg: Config) -> str:
    """Identity of the control: the VAE ``kind``'s decoder fine-tuned on its continuous mu."""
    c = cfg.comparison
    return artifacts.identity(f"adapted/{kind}_continuous", cfg, ("data",), {"vae": vae_tag(kind, cfg)},
                              max_epochs=c.adapt_max_epochs, lr=c.adapt_lr, module=__name__)


def adapt_decoder_continuous(kind: str, vae: VAE, lat: dict[str, Latents], data: MNIST, cfg: Config) -> Trained[VAE]:
    """The control of every adaptation: the decoder of ``vae`` (of kind ``kind``) fine-tuned on the training
    images' continuous posterior means mu, validated on the validation images', under the same stopping
    rule, cap and learning rate as :func:`adapt_decoder`; or loaded when up to date. Its gain on the
    continuous reconstruction is what more decoder training gives without codes."""
    return _adapt(f"{kind}_continuous", continuous_tag(kind, cfg), vae, {s: lat[s].mu for s in ("train", "val")},
                  data, cfg)


def adapt_decoder(cb: Codebook, code_set: artifacts.CodeSet, vae: VAE, lat: dict[str, Latents], data: MNIST,
                  cfg: Config) -> Trained[VAE]:
    """Fine-tune the decoder of ``vae`` on the quantized training latents of codebook ``cb`` (the codes of
    ``code_set``), validated on the quantized validation latents, under the stopping rule (at most
    ``comparison.adapt_max_epochs`` epochs at ``comparison.adapt_lr``); or load it when up to date.
    The encoder and the codebook stay as they are, so the codes, and their rate, do not change. The
    result's model is the VAE with the adapted decoder."""
    quantized = {s: cb.decode_latents(vae, cb.encode_latents(vae, lat[s].mu, lat[s].sigma)) for s in ("train", "val")}
    return _adapt(code_set.name, adapted_tag(code_set, cfg), vae, quantized, data, cfg)
