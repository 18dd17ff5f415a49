"""Metrics, always computed over a whole split (the 10,000 test images for the book's numbers).

- Reconstruction MSE per pixel on [0, 1]: ``mean_{i,p} (x_ip - x_hat_ip)^2``, where ``x_hat`` is the decoder's
  Bernoulli mean for the posterior mean ``mu`` (no sampling).
- Negative ELBO (nats per image): ``E_q[-log p(x|z)] + KL(q(z|x) || p(z))`` with the Bernoulli likelihood on
  grey levels, estimated with one seeded posterior sample per image. It is the true bound whatever beta
  the model was trained with.
- KL per latent unit: ``KL_u = mean_x 1/2 (mu_u^2 + sigma_u^2 - 1 - log sigma_u^2)``; a unit is *active* when
  ``KL_u`` exceeds a threshold (0.01 nats), i.e. when the encoder uses it to carry information.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from .models.vae import VAE, kl_per_dim

ACTIVE_KL_THRESHOLD = 0.01


def mse_per_pixel(x: torch.Tensor, x_hat: torch.Tensor) -> float:
    """Mean squared error over all pixels of images in [0, 1]."""
    return F.mse_loss(x_hat, x, reduction="mean").item()


@dataclass
class VAEEvaluation:
    """What :func:`evaluate_vae` measures on one split."""

    n_images: int
    neg_elbo: float
    recon_nll: float
    kl: float
    mse: float
    kl_per_unit: np.ndarray = field(repr=False)
    mu: np.ndarray = field(repr=False)
    sigma: np.ndarray = field(repr=False)

    @property
    def active_units(self) -> int:
        return int((self.kl_per_unit > ACTIVE_KL_THRESHOLD).sum())

    @property
    def n_units(self) -> int:
        return int(self.kl_per_unit.size)

    def posterior_stats(self) -> dict[str, float]:
        """Spread of the posterior over active and inactive units (means over units and images)."""
        active = self.kl_per_unit > ACTIVE_KL_THRESHOLD
        out: dict[str, float] = {}
        for label, mask in (("active", active), ("inactive", ~active)):
            if mask.any():
                mu, sigma = self.mu[:, mask], self.sigma[:, mask]
                out |= {f"{label}_units": int(mask.sum()), f"{label}_mu_std": float(mu.std(0).mean()),
                        f"{label}_mu_abs_mean": float(np.abs(mu.mean(0)).mean()),
                        f"{label}_sigma_mean": float(sigma.mean())}
            else:
                out[f"{label}_units"] = 0
        return out

    def summary(self) -> dict[str, float]:
        return {"n_images": self.n_images, "neg_elbo_nats": self.neg_elbo, "recon_nll_nats": self.recon_nll,
                "kl_nats": self.kl, "mse_per_pixel": self.mse, "active_units": self.active_units,
                "latent_units": self.n_units}


@torch.no_grad()
def evaluate_vae(model: VAE, x: torch.Tensor, batch_size: int = 1000, seed: int = 0) -> VAEEvaluation:
    """Negative ELBO, MSE decoding ``mu``, KL per latent unit, and the posterior ``mu``/``sigma`` of ``x``.

    ``mu`` and ``sigma`` are returned as (N, *latent_shape) arrays. The ELBO's posterior samples come from
    a generator seeded with ``seed``; the global RNG is left untouched.
    """
    model.eval()
    device = next(model.parameters()).device
    recon_sum = kl_sum = se_sum = 0.0
    kl_units = torch.zeros(model.latent_shape, dtype=torch.float64)
    mus, sigmas = [], []
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        for start in range(0, len(x), batch_size):
            xb = x[start:start + batch_size].to(device)
            mu, logvar = model.encode(xb)
            z = mu + torch.randn(mu.shape).to(device) * torch.exp(0.5 * logvar)
            logits = model.decode_logits(z)
            recon_sum += F.binary_cross_entropy_with_logits(logits, xb, reduction="sum").item()
            kl = kl_per_dim(mu, logvar)
            kl_sum += kl.sum().item()
            kl_units += kl.sum(0).double().cpu()
            se_sum += F.mse_loss(model.decode(mu), xb, reduction="sum").item()
            mus.append(mu.cpu())
            sigmas.append(torch.exp(0.5 * logvar).cpu())
    n = len(x)
    return VAEEvaluation(
        n_images=n, neg_elbo=(recon_sum + kl_sum) / n, recon_nll=recon_sum / n, kl=kl_sum / n,
        mse=se_sum / (n * x[0].numel()), kl_per_unit=(kl_units / n).numpy(),
        mu=torch.cat(mus).numpy(), sigma=torch.cat(sigmas).numpy())


def code_statistics(codes: np.ndarray, k: int) -> dict[str, float]:
    """Usage of a codebook of size ``k`` by integer ``codes`` (any shape).

    - ``usage``: fraction of the ``k`` codes used at least once; ``dead`` codes are never used;
    - ``perplexity`` = exp(H(p)), with ``p`` the empirical code frequencies: the number of equally likely
      codes that would have the same entropy (``k`` at most);
    - ``entropy_bits`` = H(p) / ln 2, the bits per code a context-free code would need.
    """
    counts = np.bincount(np.asarray(codes).ravel(), minlength=k)
    p = counts[counts > 0] / counts.sum()
    entropy = float(-(p * np.log(p)).sum())
    used = int((counts > 0).sum())
    return {"used": used, "usage": used / k, "dead": k - used, "perplexity": float(np.exp(entropy)),
            "entropy_bits": entropy / np.log(2)}


def bits_per_image(n_positions: int, k: int) -> float:
    """The rate of a code map: ``positions x log2 K`` bits per image (codes sent without a prior)."""
    return float(n_positions * np.log2(k))


def code_map_metrics(x: torch.Tensor, recon: torch.Tensor, codes: np.ndarray, k: int, n_positions: int) -> dict:
    """Test MSE per pixel of images decoded from code maps, the codes' usage statistics and the rate."""
    return {"mse_per_pixel": mse_per_pixel(x, recon), **code_statistics(codes, k),
            "bits_per_image": bits_per_image(n_positions, k)}


# --- sample fidelity, on the features of the project's MNIST classifier ------------------------------------

def feature_stats(features: np.ndarray | torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """Mean and covariance (float64) of (N, d) features."""
    f = np.asarray(features, dtype=np.float64)
    return f.mean(0), np.cov(f, rowvar=False)


def frechet_distance(a: np.ndarray | torch.Tensor | tuple, b: np.ndarray | torch.Tensor | tuple) -> float:
    """Frechet distance between Gaussians fitted to two feature sets (Heusel et al., 2017):

        FD = ||mu_a - mu_b||^2 + Tr(S_a + S_b - 2 (S_a S_b)^{1/2}).

    ``a`` and ``b`` are (N, d) features or precomputed ``(mean, covariance)`` pairs. With the MNIST
    classifier's features in place of Inception's, this is the "FID" of MNIST papers.
    """
    mu_a, s_a = a if isinstance(a, tuple) else feature_stats(a)
    mu_b, s_b = b if isinstance(b, tuple) else feature_stats(b)
    # Tr (S_a S_b)^{1/2} = Tr (S_a^{1/2} S_b S_a^{1/2})^{1/2}: the symmetric form is positive semi-definite,
    # so eigh gives it stably even when a covariance is singular (e.g. a ReLU unit that never fires).
    w, v = np.linalg.eigh(s_a)
    root_a = (v * np.sqrt(np.clip(w, 0, None))) @ v.T
    trace_root = np.sqrt(np.clip(np.linalg.eigvalsh(root_a @ s_b @ root_a), 0, None)).sum()
    return float(((mu_a - mu_b) ** 2).sum() + np.trace(s_a) + np.trace(s_b) - 2 * trace_root)


def inception_score(probs: np.ndarray | torch.Tensor) -> float:
    """``exp(E_x KL(p(y|x) || p(y)))`` with ``p(y)`` the mean prediction (Salimans et al., 2016).

    From 1 (every sample gets the same prediction, or a flat one) to the number of classes (confident
    predictions, spread evenly over the classes): 10 for MNIST.
    """
    p = np.clip(np.asarray(probs, dtype=np.float64), 1e-12, 1.0)
    marginal = p.mean(0, keepdims=True)
    return float(np.exp((p * (np.log(p) - np.log(marginal))).sum(1).mean()))


def accuracy(probs: np.ndarray | torch.Tensor, labels: np.ndarray | torch.Tensor) -> float:
    """Fraction of rows whose most probable class is the label."""
    return float((torch.as_tensor(probs).argmax(1) == torch.as_tensor(labels)).float().mean())


def class_histogram(probs: np.ndarray | torch.Tensor, n_classes: int = 10) -> np.ndarray:
    """Fraction of samples predicted as each class (argmax)."""
    pred = np.asarray(probs).argmax(1)
    return np.bincount(pred, minlength=n_classes) / len(pred)


def sample_fidelity(features: torch.Tensor, probs: torch.Tensor, reference: tuple[np.ndarray, np.ndarray]
                    ) -> dict[str, Any]:
    """Frechet distance to the reference (the test images' feature statistics), Inception Score, the
    histogram of predicted classes and its largest deviation from uniform (total variation distance)."""
    hist = class_histogram(probs)
    return {"frechet_distance": frechet_distance(features.numpy(), reference), "inception_score": inception_score(probs),
            "class_histogram": hist.tolist(), "class_tv_from_uniform": float(0.5 * np.abs(hist - 0.1).sum())}
