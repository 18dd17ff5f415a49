"""Models of the book. Each exposes ``loss(batch) -> (loss, logs)`` for the one training loop."""

from .vae import VAE, FlatVAE, GridVAE, build_vae

__all__ = ["VAE", "FlatVAE", "GridVAE", "build_vae"]
