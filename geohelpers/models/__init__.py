"""Models of the book. Each exposes ``loss(batch) -> (loss, logs)`` for the one training loop."""

from .vae import VAE, FlatVAE, GridVAE, build_vae
from .vqvae import FSQ, VQVAE, VectorQuantizer

__all__ = ["VAE", "FlatVAE", "GridVAE", "build_vae", "FSQ", "VQVAE", "VectorQuantizer"]
