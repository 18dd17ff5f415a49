"""What the two earlier studies reported, for the book to set beside its own numbers.

These are *their* figures, quoted from ``shared/seeds/NOTES.md`` (which records what each study's code
actually did); nothing here is a result of this project. Each entry names the quantity, the setting, the
data it was computed on, the flaw that shaped it, and the key of our matching measurement:
``(source, VAE or None, method, K, metric)`` with ``source`` one of ``quantizer`` (notebooks 02, 03, 05)
or ``prior`` (notebooks 04, 05). Where a profile does not run the study's own setting, ``nearest`` names the
closest one it runs, with the method :data:`END_TO_END` for the end-to-end VQ-VAE variant chosen on
validation among those trained at that K.
"""

from __future__ import annotations

#: In a ``nearest`` key: the end-to-end VQ-VAE variant of lowest validation MSE at the key's K.
END_TO_END = "end to end"

REPORTED: list[dict] = [
    {"study": "000", "quantity": "MSE, geodesic codebook", "setting": "flat VAE, 16 chunks, K = 512",
     "reported": 0.011242, "their data": "5,000 validation images",
     "flaw": "final assignment by direct squared W2, not geodesic; squared edges, doubled for mutual neighbours",
     "ours": ("quantizer", "FlatVAE", "geodesic", 512, "mse_per_pixel")},
    {"study": "000", "quantity": "MSE, VQ-VAE", "setting": "K = 512, 7x7 grid",
     "reported": 0.003681, "their data": "5,000 validation images",
     "flaw": "no EMA, no restarts; 441 bits per image against 144 for its geodesic codes (unequal rate)",
     "ours": ("quantizer", None, "VQ-VAE vanilla", 512, "mse_per_pixel")},
    {"study": "000", "quantity": "code usage, VQ-VAE", "setting": "K = 512",
     "reported": 53 / 512, "their data": "5,000 validation images", "flaw": "no EMA, no restarts",
     "ours": ("quantizer", None, "VQ-VAE vanilla", 512, "usage")},
    {"study": "003", "quantity": "MSE, geodesic codebook", "setting": "grid VAE, K = 128",
     "reported": 0.016125, "their data": "one test batch of 128 images",
     "flaw": "nearest-landmark codes in training, nearest medoid at test time",
     "ours": ("quantizer", "GridVAE", "geodesic", 128, "mse_per_pixel")},
    {"study": "003", "quantity": "MSE, VQ-VAE", "setting": "K = 128",
     "reported": 0.011385, "their data": "one test batch of 128 images",
     "flaw": "VQ layer flattens NCHW without permuting: a 'vector' is a run of one channel",
     "ours": ("quantizer", None, "VQ-VAE vanilla", 128, "mse_per_pixel"),
     "nearest": ("quantizer", None, END_TO_END, 128, "mse_per_pixel")},
    {"study": "003", "quantity": "code usage, VQ-VAE", "setting": "K = 128",
     "reported": 15 / 128, "their data": "one test batch of 128 images",
     "flaw": "VQ layer flattens NCHW without permuting",
     "ours": ("quantizer", None, "VQ-VAE vanilla", 128, "usage"),
     "nearest": ("quantizer", None, END_TO_END, 128, "usage")},
    {"study": "003", "quantity": "code usage, geodesic codebook", "setting": "grid VAE, K = 128",
     "reported": 1.0, "their data": "one test batch of 128 images",
     "flaw": "usage on one batch, read as evidence for the geometry; in training every medoid is a landmark coded as itself",
     "ours": ("quantizer", "GridVAE", "geodesic", 128, "usage")},
    {"study": "003", "quantity": "Transformer perplexity, geodesic codes", "setting": "grid VAE, K = 128",
     "reported": 4.94, "their data": "last 10,000 training images",
     "flaw": "perplexity on training data; an all-zero cross-attention memory",
     "ours": ("prior", None, "grid_geodesic_K128", "transformer", "perplexity")},
    {"study": "003", "quantity": "Transformer perplexity, VQ-VAE codes", "setting": "K = 128",
     "reported": 4.27, "their data": "last 10,000 training images",
     "flaw": "perplexity on training data, of a collapsed codebook's codes",
     "ours": ("prior", None, "vqvae_vanilla_K128", "transformer", "perplexity")},
]
