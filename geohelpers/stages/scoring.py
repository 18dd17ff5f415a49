"""Stage: the MNIST classifier (``classifier``) whose features and class probabilities score every sample
(Frechet distance, Inception score), trained once per profile and seed; and the scoring itself.
"""

from __future__ import annotations

import numpy as np
import torch

from .. import artifacts, metrics
from ..config import Config
from ..data import MNIST, Batches
from .build import Trained, load_or_train


def classifier_tag(cfg: Config) -> str:
    """Identity of the classifier: the data, the seed and its training parameters."""
    c = cfg.comparison
    return artifacts.identity("classifier", cfg, ("data",), max_epochs=c.classifier_max_epochs,
                              batch_size=c.classifier_batch_size, lr=c.classifier_lr, module=__name__)


def train_classifier(cfg: Config, data: MNIST) -> Trained[torch.nn.Module]:
    """The LeNet-style MNIST classifier of the sample-fidelity metrics (trained, or loaded when up to date)."""
    from ..models.classifier import LeNet

    c = cfg.comparison
    return load_or_train(
        "classifier", classifier_tag(cfg), cfg, LeNet,
        lambda _: (Batches(data.train_x, data.train_y, batch_size=c.classifier_batch_size, shuffle=True, seed=cfg.seed),
                   Batches(data.val_x, data.val_y, batch_size=cfg.data.eval_batch_size)),
        max_epochs=c.classifier_max_epochs, lr=c.classifier_lr, desc="MNIST classifier epoch")


def accuracy(classifier: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    """Fraction of images whose predicted class is the label."""
    return metrics.accuracy(classifier.embed(x)[1], y)


def score_samples(classifier: torch.nn.Module, images: torch.Tensor, reference: tuple[np.ndarray, np.ndarray]
                  ) -> dict:
    """Sample-fidelity metrics of generated images against the test images' feature statistics."""
    feats, probs = classifier.embed(images)
    return metrics.sample_fidelity(feats, probs, reference)


def real_data_floor(classifier: torch.nn.Module, data: MNIST, n: int) -> tuple[dict, tuple[np.ndarray, np.ndarray], torch.Tensor]:
    """The classifier's view of real data: test accuracy, and ``n`` training images scored as if they were
    samples (the floor of FD and IS). Returns the floor record, the test images' feature statistics (the
    reference of every FD) and the test images' class probabilities."""
    test_feats, test_probs = classifier.embed(data.test_x)
    reference = metrics.feature_stats(test_feats.numpy())
    floor = score_samples(classifier, data.train_x[:n], reference)
    floor["inception_score_test"] = metrics.inception_score(test_probs)
    floor["test_accuracy"] = metrics.accuracy(test_probs, data.test_y)
    return floor, reference, test_probs
