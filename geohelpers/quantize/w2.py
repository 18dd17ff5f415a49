"""The 2-Wasserstein distance between Gaussians, and why W2 K-means is Euclidean K-means on [mu, sigma].

For two Gaussians ``N(m1, S1)`` and ``N(m2, S2)`` (Dowson & Landau 1982; Givens & Shortt 1984)

    W2^2 = ||m1 - m2||^2 + tr(S1 + S2 - 2 (S2^{1/2} S1 S2^{1/2})^{1/2}).

For diagonal covariances ``S = diag(sigma^2)`` the matrices commute and the trace term becomes
``sum_j (sigma1_j - sigma2_j)^2``, so

    W2^2 = ||mu1 - mu2||^2 + ||sigma1 - sigma2||^2,

the squared Euclidean distance between the stacked vectors ``[mu, sigma]``. K-means under W2 is therefore
*exact* Euclidean K-means on ``[mu, sigma]``, and its centroids ``(mean mu, mean sigma)`` are again diagonal
Gaussians: the W2 barycentre of diagonal Gaussians is the Gaussian with the averaged means and averaged
standard deviations.
"""

from __future__ import annotations

import numpy as np
from scipy import linalg


def w2_squared(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray) -> np.ndarray:
    """Squared W2 between diagonal Gaussians, broadcasting over leading axes (closed form)."""
    return ((np.asarray(mu1) - mu2) ** 2).sum(-1) + ((np.asarray(sigma1) - sigma2) ** 2).sum(-1)


def w2_squared_general(m1: np.ndarray, s1: np.ndarray, m2: np.ndarray, s2: np.ndarray) -> float:
    """Squared W2 between full-covariance Gaussians through matrix square roots (a test oracle)."""
    root2 = linalg.sqrtm(s2)
    cross = linalg.sqrtm(root2 @ s1 @ root2)
    return float(((m1 - m2) ** 2).sum() + np.trace(s1 + s2 - 2 * np.real(cross)))


def w2_features(mu: np.ndarray, sigma: np.ndarray) -> np.ndarray:
    """``[mu, sigma]``: the space in which Euclidean distance is the W2 distance."""
    return np.concatenate([mu, sigma], axis=-1).astype(np.float32, copy=False)
