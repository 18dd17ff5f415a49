"""Profiles and typed, validated configuration: the one source of truth for every parameter.

A *profile* names a complete set of parameters:

``quick``
    CI and nbval: a few thousand training images, one epoch, small models. Every notebook runs in well
    under a minute.
``standard``
    The book's figures of record, sized for a 2-core laptop CPU, on full MNIST.
``paper``
    The sizes used by the two earlier studies (wide convolutions, 64-dimensional grid latents, beta = 1),
    meant for a GPU.

:func:`resolve` turns a profile name plus overrides such as ``{"grid_vae.max_epochs": 3}`` into a frozen
:class:`Config`. Anything unknown or out of range raises :class:`ConfigError` (a ``ValueError``) whose
message names the parameter and what is allowed, before any work starts.
"""

from __future__ import annotations

import ast
import dataclasses
import hashlib
import json
import math
from dataclasses import dataclass, field, fields, is_dataclass
from typing import Any, Mapping, get_args, get_origin, get_type_hints

PROFILES = ("quick", "standard", "paper")


class ConfigError(ValueError):
    """A parameter is unknown or outside its allowed values."""


def _spec(*, lo: float | None = None, hi: float | None = None, lo_open: bool = False,
          choices: tuple | None = None, nullable: bool = False, empty: bool = False, help: str = "") -> dict:
    return {"lo": lo, "hi": hi, "lo_open": lo_open, "choices": choices, "nullable": nullable, "empty": empty,
            "help": help}


def _f(default: Any, **spec: Any) -> Any:
    return field(default=default, metadata=_spec(**spec))


@dataclass(frozen=True)
class DataConfig:
    """Which MNIST images are used.

    The 60,000 training images are split once, with ``split_seed``, into 55,000 for training and 5,000 for
    validation; the 10,000 test images are only used for evaluation. ``n_train``/``n_val``/``n_test`` take
    the first images of each part (after the seeded shuffle for train/val), ``None`` meaning all of it.
    """

    n_train: int | None = _f(None, lo=1, hi=55_000, nullable=True, help="training images (None: all 55,000)")
    n_val: int | None = _f(None, lo=1, hi=5_000, nullable=True, help="validation images (None: all 5,000)")
    n_test: int | None = _f(None, lo=1, hi=10_000, nullable=True, help="test images (None: all 10,000)")
    split_seed: int = _f(0, lo=0, help="seed of the 55,000/5,000 train/validation split")
    eval_batch_size: int = _f(1000, lo=1, help="batch size for evaluation passes")


@dataclass(frozen=True)
class TrainingConfig:
    """The one stopping rule of every training in the book (VAEs, VQ-VAEs, priors, decoder adaptation,
    classifier): after each epoch the validation loss is compared with the best so far; training stops
    once it has gone ``patience`` epochs without improving on it by a relative ``min_delta``, or at the
    model's ``max_epochs``, and the best-validation weights are kept. Each history records which of the
    two ended it."""

    patience: int = _f(2, lo=1, hi=1000, help="epochs without a relative improvement of min_delta before stopping")
    min_delta: float = _f(0.005, lo=0.0, hi=0.5, help="relative improvement of the validation loss that counts")


@dataclass(frozen=True)
class VAEConfig:
    """One VAE and how it is trained.

    The loss per image is ``BCE_sum(x, x_hat) + beta * KL(q(z|x) || N(0, I))``.
    ``channels`` are the widths of the two stride-2 convolutions (28 -> 14 -> 7).
    For the flat VAE, ``latent_dim`` is split into ``n_chunks`` chunks of equal size (the vectors that are
    later quantized); for the grid VAE, every one of the 7x7 positions carries a ``latent_dim``-vector.
    """

    channels: tuple[int, int] = _f((32, 64), lo=1, hi=1024, help="widths of the two stride-2 convolutions")
    latent_dim: int = _f(8, lo=1, hi=4096, help="flat: size of z; grid: channels D per position")
    n_chunks: int = _f(1, lo=1, hi=4096, help="flat VAE: number of equal chunks of z (grid VAE: 1)")
    beta: float = _f(1.0, lo=0.0, lo_open=True, hi=100.0, help="weight of the KL term")
    max_epochs: int = _f(10, lo=1, hi=1000, help="training epochs at most (the stopping rule may end sooner)")
    batch_size: int = _f(128, lo=1, hi=65_536, help="training batch size")
    lr: float = _f(1e-3, lo=0.0, lo_open=True, hi=1.0, help="Adam learning rate")


@dataclass(frozen=True)
class QuantizeConfig:
    """A posteriori codebooks (notebooks 02 and 03).

    K-means (Euclidean on ``mu``, and W2 = Euclidean on ``[mu, sigma]``) runs Lloyd iterations on all
    training vectors after a k-means++ start on ``kmeans_init_sample`` of them. The geodesic codebook
    draws ``n_landmarks`` distinct training vectors, links each to its ``knn`` nearest landmarks (edge
    length: Euclidean on ``mu``, or W2 on ``(mu, sigma)``), joins the graph's components (``repair``),
    and runs K-medoids (``backend``) on the shortest-path distances. Every vector then gets the code that
    minimises ``d(x, l) + G(l, m)`` over its ``assign_neighbours`` nearest landmarks ``l``
    (``assignment = "geodesic"``), or the code of its nearest landmark (``"nearest_landmark"``).
    The decoder-aware codebooks (notebook 07) average the decoder's pullback metric over
    ``pullback_images`` training images, ``pullback_probes`` random probes each, plus a relative
    ``pullback_ridge``, and run the same Lloyd iterations under it.
    """

    ks: tuple[int, ...] = _f((64, 128, 256, 512), lo=2, hi=65_536, help="codebook sizes K")
    kmeans_max_iter: int = _f(50, lo=1, hi=10_000, help="K-means: at most this many Lloyd iterations")
    kmeans_init_sample: int = _f(100_000, lo=1, help="K-means: vectors seen by the k-means++ start")
    kmeans_tol: float = _f(1e-4, lo=0.0, hi=1.0, help="K-means: stop when the inertia improves by less")
    n_landmarks: int = _f(10_000, lo=2, hi=40_000, help="geodesic: landmarks (nodes of the k-NN graph)")
    knn: int = _f(10, lo=1, hi=1_000, help="geodesic: neighbours of each landmark in the graph")
    graph_metric: str = _f("euclidean", choices=("euclidean", "w2"),
                           help="geodesic: edge length, Euclidean on mu or W2 on (mu, sigma)")
    repair: str = _f("mst", choices=("mst", "all_pairs", "none"),
                     help="geodesic: join components by closest pairs, as a spanning tree or all pairs")
    backend: str = _f("fasterpam", choices=("fasterpam", "sklearn_extra"), help="geodesic: K-medoids solver")
    assignment: str = _f("geodesic", choices=("geodesic", "nearest_landmark"),
                         help="geodesic: how every vector gets its code")
    assign_neighbours: int = _f(8, lo=1, hi=1_000, help="geodesic: landmarks searched per vector")
    n_jobs: int = _f(0, lo=0, hi=256, help="processes for shortest paths (0: all cores)")
    pullback_images: int = _f(2_000, lo=1, hi=55_000,
                              help="decoder-aware: training images whose pullback metrics are averaged")
    pullback_probes: int = _f(16, lo=1, hi=4_096, help="decoder-aware: random probes per image for the metric")
    pullback_ridge: float = _f(1e-6, lo=0.0, hi=1.0,
                               help="decoder-aware: relative ridge added to each mean metric (keeps it definite)")


VQ_VARIANTS = ("vanilla", "vanilla_restart", "ema", "ema_restart", "kmeans_init", "hybrid", "fsq")


@dataclass(frozen=True)
class VQVAEConfig:
    """The end-to-end VQ-VAE baseline (notebook 05), with the GridVAE's encoder, decoder and grid.

    ``variants`` are trained at the largest K of ``ks``, ``small_k_variants`` at every other K, and the
    end-to-end variant chosen on validation at the largest K at every K (the end-to-end rate-distortion
    curve, :mod:`geohelpers.plan`).
    Variants: ``vanilla`` (codebook + commitment loss), ``vanilla_restart`` (with hard dead-code
    resets and stale optimizer state, study 003's), ``ema``, ``ema_restart``, ``kmeans_init``
    (ema_restart started from K-means of the first batches' encoder outputs), ``hybrid`` (ema_restart
    started from the trained GridVAE's encoder mean, decoder and the a posteriori codebook chosen on
    validation), ``fsq``.
    """

    ks: tuple[int, ...] = _f((512, 128), lo=2, hi=65_536, help="codebook sizes K")
    variants: tuple[str, ...] = _f(VQ_VARIANTS, choices=VQ_VARIANTS, help="variants trained at the largest K")
    small_k_variants: tuple[str, ...] = _f((), choices=VQ_VARIANTS, empty=True,
                                           help="variants also trained at the other K (the chosen one always is)")
    beta: float = _f(0.25, lo=0.0, hi=10.0, help="commitment weight")
    decay: float = _f(0.99, lo=0.0, lo_open=True, hi=0.9999, help="EMA decay (0 < decay < 1)")
    restart_threshold: float = _f(1.0, lo=0.0, hi=1e6, help="restart codes whose EMA usage per batch is below")
    kmeans_init_batches: int = _f(10, lo=1, hi=1000, help="batches of encoder outputs for the K-means start")
    max_epochs: int = _f(5, lo=1, hi=1000, help="training epochs at most (the stopping rule may end sooner)")
    batch_size: int = _f(128, lo=1, hi=65_536, help="training batch size")
    lr: float = _f(2e-3, lo=0.0, lo_open=True, hi=1.0, help="Adam learning rate")


PRIOR_KINDS = ("pixelcnn", "transformer")
PRECISIONS = ("fp32", "bf16")
LR_SCHEDULES = ("constant", "cosine", "warmup_cosine")
CODEBOOK_METHODS = ("kmeans", "w2", "geodesic")
PULLBACK_METHODS = ("pullback_mean", "pullback_position", "pullback_vector", "pullback_geodesic")


#: Reader-facing names of the codebook methods (tables and sentences).
METHOD_LABELS = {"kmeans": "K-means on μ", "w2": "W2 K-means on [μ, σ]", "geodesic": "geodesic K-medoids",
                 "pullback_mean": "K-means under the mean pullback metric",
                 "pullback_position": "K-means under per-position pullback metrics",
                 "pullback_vector": "K-means under every vector's own pullback metric",
                 "pullback_geodesic": "geodesic K-medoids under the mean pullback metric"}


def method_label(method: str) -> str:
    """A codebook method's reader-facing name (:data:`METHOD_LABELS`, else the method itself)."""
    return METHOD_LABELS.get(method, method)


VARIANT_LABELS = {
    "kmeans_init": "EMA with restarts started from K-means of the first batches' encoder outputs",
    "hybrid": "The hybrid, started from the trained GridVAE and its a posteriori codebook chosen on validation,",
    "fsq": "FSQ, whose codes are all reachable by construction,",
}


@dataclass(frozen=True)
class PriorConfig:
    """Autoregressive priors over code maps (notebook 04; notebook 05 for the VQ-VAE's codes).

    Each prior is trained on the training images' code maps of one codebook, validated on the validation
    maps and evaluated on the test maps. ``ks`` must be codebook sizes of ``quantize.ks``. Every kind of
    ``kinds`` is trained on each VAE's K-means maps at the largest K, and the kind of lower validation NLL
    is chosen per VAE kind; the chosen kind alone is trained on the GridVAE's ``methods`` at every K of
    ``ks``, on each VAE's ``kmax_methods`` at the largest K, and on the VQ-VAEs' and the chosen a posteriori
    codebook's maps (:func:`geohelpers.plan.prior_jobs`). The gated
    PixelCNN has ``pixelcnn_channels`` channels and ``pixelcnn_layers`` layers (its kernel sizes follow
    from the map's shape so that the receptive field covers the map); the Transformer has width
    ``transformer_dim``, ``transformer_layers`` blocks and ``transformer_heads`` heads. ``precision``
    ``"bf16"`` trains them under bf16 autocast (validation, test NLLs and sampling stay float32). bf16 is the
    ``standard`` profile's: measured side by side against float32 at the same validation loss after 40 steps,
    it makes both priors faster on both kinds of this project's CPU (Intel with AMX, two threads: PixelCNN
    1.33x, Transformer 1.66x, ``benchmarks/results/train_step.txt``; AMD with avx512_bf16, one thread:
    1.37x and 1.38x, ``benchmarks/results/train_step_amd_1thread.txt``). The VAEs stay float32 (the GridVAE
    gains 1.40x on the AMD machine but nothing on the Intel one) and ``paper`` stays float32 (not measured
    on a GPU). ``compile`` runs the training step's loss through ``torch.compile``
    (``benchmarks/results/train_step_compile_amd_1thread.txt``: under bf16, 1.37x the PixelCNN's step and
    1.43x the Transformer's, one thread; ``prior_stage_compile.txt``: a whole standard prior stage).
    """

    kinds: tuple[str, ...] = _f(PRIOR_KINDS, choices=PRIOR_KINDS, help="prior architectures compared")
    vaes: tuple[str, ...] = _f(("grid", "flat"), choices=("grid", "flat"), help="whose codebooks get priors")
    methods: tuple[str, ...] = _f(("kmeans",), choices=CODEBOOK_METHODS,
                                  help="the GridVAE's codebooks that get priors at every K of prior.ks")
    kmax_methods: tuple[str, ...] = _f(("w2", "geodesic"), choices=CODEBOOK_METHODS,
                                       empty=True, help="each VAE's codebooks that get priors at the largest K only")
    ks: tuple[int, ...] = _f((512, 128), lo=2, hi=65_536, help="codebook sizes K that get priors")
    pixelcnn_channels: int = _f(32, lo=1, hi=4096, help="PixelCNN: channels of both stacks")
    pixelcnn_layers: int = _f(6, lo=1, hi=64, help="PixelCNN: gated layers")
    transformer_dim: int = _f(64, lo=1, hi=4096, help="Transformer: model width d")
    transformer_layers: int = _f(2, lo=1, hi=64, help="Transformer: blocks")
    transformer_heads: int = _f(4, lo=1, hi=64, help="Transformer: attention heads (must divide d)")
    precision: str = _f("fp32", choices=PRECISIONS, help="training steps' arithmetic: float32 or bf16 autocast")
    compile: bool = _f(False, choices=(False, True),
                       help="training step under torch.compile (its warm-up paid once per prior)")
    max_epochs: int = _f(1, lo=1, hi=1000, help="training epochs at most (the stopping rule may end sooner)")
    batch_size: int = _f(256, lo=1, hi=65_536, help="training batch size")
    lr: float = _f(3e-3, lo=0.0, lo_open=True, hi=1.0, help="Adam learning rate")
    lr_schedule: str = _f("constant", choices=LR_SCHEDULES, help="learning-rate schedule per step (train.lr_factor)")
    schedule_epochs: int = _f(0, lo=0, hi=1000, help="epochs the schedule spans (0: max_epochs)")
    temperature: float = _f(1.0, lo=0.0, lo_open=True, hi=100.0, help="sampling temperature (> 0)")
    n_show: int = _f(32, lo=1, hi=10_000, help="samples shown per codebook and prior")


@dataclass(frozen=True)
class ComparisonConfig:
    """The comparison (notebook 06).

    Sample fidelity: ``n_samples`` images per generator, scored by a LeNet-style MNIST classifier trained
    under the stopping rule, at most ``classifier_max_epochs`` epochs (its penultimate features for the
    Frechet distance, its class probabilities for the Inception Score). Decoder adaptation: the GridVAE's
    decoder fine-tuned on each a posteriori codebook's quantized training latents (encoder and codebook
    frozen), at most ``adapt_max_epochs`` epochs at learning rate ``adapt_lr``, and, as its control, on the
    continuous mu. Every generator on the rate-distortion curves samples at each of ``temperatures``, and
    the one whose samples lie closest (FD) to the *validation* images is reported on the test images.
    """

    n_samples: int = _f(10_000, lo=100, hi=100_000, help="samples drawn from every generator")
    classifier_max_epochs: int = _f(20, lo=1, hi=100, help="MNIST classifier: training epochs at most")
    classifier_batch_size: int = _f(128, lo=1, hi=65_536, help="classifier batch size")
    classifier_lr: float = _f(1e-3, lo=0.0, lo_open=True, hi=1.0, help="classifier Adam learning rate")
    adapt_max_epochs: int = _f(10, lo=1, hi=1000, help="decoder adaptation: training epochs at most")
    temperatures: tuple[float, ...] = _f((1.0,), lo=0.0, lo_open=True, hi=10.0,
                                         help="sampling temperatures; each generator's is chosen on validation FD")
    adapt_lr: float = _f(5e-4, lo=0.0, lo_open=True, hi=1.0, help="decoder adaptation: Adam learning rate")


@dataclass(frozen=True)
class Config:
    """Everything a notebook needs, resolved from a profile plus overrides."""

    profile: str = _f("standard", choices=PROFILES, help="named parameter set")
    seed: int = _f(0, lo=0, help="seed of model initialisation and training order")
    device: str = _f("auto", choices=("auto", "cpu", "cuda"), help="'auto' picks CUDA when present")
    data: DataConfig = field(default_factory=DataConfig)
    training: TrainingConfig = field(default_factory=TrainingConfig)
    flat_vae: VAEConfig = field(default_factory=lambda: VAEConfig(n_chunks=16, latent_dim=128))
    grid_vae: VAEConfig = field(default_factory=VAEConfig)
    quantize: QuantizeConfig = field(default_factory=QuantizeConfig)
    vqvae: VQVAEConfig = field(default_factory=VQVAEConfig)
    prior: PriorConfig = field(default_factory=PriorConfig)
    comparison: ComparisonConfig = field(default_factory=ComparisonConfig)

    def to_dict(self) -> dict:
        """Plain, JSON-serialisable form (tuples become lists)."""
        return json.loads(json.dumps(dataclasses.asdict(self)))

    def digest(self, *sections: str) -> str:
        """Short hash of the given sections (all when none), to tell whether an artifact is up to date. A
        dotted name (``prior.lr``) stands for that one parameter: an identity hashes what its stage reads."""
        d = self.to_dict()
        part = {k: d[k.partition(".")[0]][k.partition(".")[2]] if "." in k else d[k] for k in sections} \
            if sections else d
        part.pop("device", None)
        return hashlib.sha256(json.dumps(part, sort_keys=True).encode()).hexdigest()[:16]


# The profiles. Each entry lists only what differs from the dataclass defaults above.
_PROFILE_OVERRIDES: dict[str, dict[str, Any]] = {
    "quick": {
        "data.n_train": 2_000, "data.n_val": 500, "data.n_test": 1_000,
        "flat_vae.channels": (16, 32), "flat_vae.latent_dim": 64, "flat_vae.n_chunks": 16,
        "flat_vae.beta": 0.1, "flat_vae.max_epochs": 1, "flat_vae.batch_size": 128, "flat_vae.lr": 2e-3,
        "grid_vae.channels": (16, 32), "grid_vae.latent_dim": 8, "grid_vae.beta": 0.1,
        "grid_vae.max_epochs": 1, "grid_vae.batch_size": 128, "grid_vae.lr": 2e-3,
        "quantize.ks": (16, 32), "quantize.n_landmarks": 1_000, "quantize.kmeans_init_sample": 20_000,
        "vqvae.ks": (32, 16), "vqvae.max_epochs": 1, "vqvae.kmeans_init_batches": 2,
        "prior.ks": (32, 16), "prior.pixelcnn_channels": 16, "prior.transformer_dim": 32, "prior.n_show": 16,
        "prior.precision": "bf16",  # the tests run the bf16 path through the notebooks
        "comparison.n_samples": 1_000, "comparison.classifier_max_epochs": 1, "comparison.adapt_max_epochs": 1,
        "comparison.temperatures": (1.0, 1.2),  # past 1.0, the standard grid's former upper edge
        "quantize.kmeans_max_iter": 100,
    },
    "standard": {
        "flat_vae.channels": (32, 64), "flat_vae.latent_dim": 128, "flat_vae.n_chunks": 16,
        "flat_vae.beta": 0.1, "flat_vae.max_epochs": 40, "flat_vae.batch_size": 128, "flat_vae.lr": 2e-3,
        "grid_vae.channels": (32, 64), "grid_vae.latent_dim": 8, "grid_vae.beta": 0.1,
        "grid_vae.max_epochs": 40, "grid_vae.batch_size": 128, "grid_vae.lr": 2e-3,
        # The rate-distortion curves' grid of K:
        "quantize.ks": (16, 32, 64, 128, 256, 512), "prior.ks": (16, 32, 64, 128, 256, 512),
        "vqvae.ks": (512, 256, 128, 64, 32, 16),
        # K-means runs to its tolerance (the cap is a guard, never reached at this profile):
        "quantize.kmeans_max_iter": 1_000,
        # The VQ-VAEs get the GridVAE's stopping rule and cap:
        "vqvae.variants": ("vanilla", "ema", "ema_restart", "hybrid", "fsq"), "vqvae.max_epochs": 40,
        # Priors, adapted decoders: the stopping rule ends them, under caps they do not reach
        # 8 gated layers, not 4: lower validation NLL at K = 32 and 512 for about 1.25x the time per epoch,
        # and samples closer to real images (benchmarks/results/generator_vqvae_ema_K32_l8.txt,
        # prior_l8_grid_kmeans_K512.txt)
        "prior.pixelcnn_layers": 8, "prior.transformer_dim": 48, "prior.max_epochs": 60,
        "prior.precision": "bf16",  # faster on both CPUs at equal validation loss (see PriorConfig)
        # 1.0, the upper edge of the record's grid (0.8, 0.9, 1.0), was chosen on validation FD by 28 of its 30
        # generators and 0.8 by none: the grid reaches past 1.0 instead (selection.temperature_edges says
        # whether a choice still lies at an edge)
        "comparison.adapt_max_epochs": 40, "comparison.temperatures": (0.9, 1.0, 1.1, 1.2),
    },
    # Study 000 (flat) and study 003 (grid) sizes; see shared/seeds/NOTES.md.
    "paper": {
        "flat_vae.channels": (128, 256), "flat_vae.latent_dim": 256, "flat_vae.n_chunks": 16,
        "flat_vae.beta": 1.0, "flat_vae.max_epochs": 50, "flat_vae.batch_size": 256, "flat_vae.lr": 1e-3,
        "grid_vae.channels": (32, 64), "grid_vae.latent_dim": 64, "grid_vae.beta": 1.0,
        "grid_vae.max_epochs": 20, "grid_vae.batch_size": 128, "grid_vae.lr": 1e-3,
        "quantize.ks": (128, 512), "quantize.n_landmarks": 10_000, "quantize.knn": 15,
        "quantize.kmeans_max_iter": 1_000,  # K-means runs to its tolerance, as at standard
        "vqvae.ks": (512, 128), "vqvae.max_epochs": 20, "vqvae.lr": 1e-3,
        "prior.pixelcnn_channels": 128, "prior.pixelcnn_layers": 8, "prior.transformer_dim": 256,
        "prior.transformer_layers": 4, "prior.transformer_heads": 8, "prior.max_epochs": 20, "prior.lr": 1e-3,
    },
}


def parameter_names(cls: type = Config, prefix: str = "") -> list[str]:
    """All dotted parameter names of a config class, e.g. ``grid_vae.beta``."""
    names: list[str] = []
    hints = get_type_hints(cls)
    for f in fields(cls):
        if is_dataclass(hints[f.name]):
            names += parameter_names(hints[f.name], prefix + f.name + ".")
        else:
            names.append(prefix + f.name)
    return names


def _allowed(spec: Mapping[str, Any]) -> str:
    if spec["choices"]:
        text = "one of " + ", ".join(repr(c) for c in spec["choices"])
    else:
        lo, hi = spec["lo"], spec["hi"]
        parts = []
        if lo is not None:
            parts.append(f"{'>' if spec['lo_open'] else '>='} {lo:g}")
        if hi is not None:
            parts.append(f"<= {hi:g}")
        text = " and ".join(parts) if parts else "any value"
    return text + (" (or None)" if spec["nullable"] else "")


def _coerce(name: str, value: Any, typ: Any, spec: Mapping[str, Any]) -> Any:
    """Check one value against its declared type and range; return it in canonical form."""
    if value is None:
        if spec["nullable"]:
            return None
        raise ConfigError(f"parameter {name!r} may not be None; allowed: {_allowed(spec)}")
    origin, args = get_origin(typ), [a for a in get_args(typ) if a is not type(None)]
    if origin is tuple:
        if isinstance(value, str):  # ``a,b`` or ``[a,b]``, strings as numbers (:func:`parse_list`)
            value = parse_list(value)
        if len(args) == 2 and args[1] is Ellipsis:
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                value = (value,)  # ``--set quantize.ks=512``: a one-element sequence
            if not isinstance(value, (list, tuple)) or not (value or spec.get("empty")):
                raise ConfigError(f"parameter {name!r} must be a non-empty sequence, got {value!r}; "
                                  f"{LIST_FORM}")
            out = tuple(_coerce(f"{name}[{i}]", v, args[0], spec) for i, v in enumerate(value))
            repeated = sorted({v for v in out if out.count(v) > 1}, key=out.index)
            if repeated:
                raise ConfigError(f"parameter {name!r} repeats {', '.join(map(repr, repeated))} in {out}; "
                                  f"allowed: distinct values")
            return out
        if not isinstance(value, (list, tuple)) or len(value) != len(args):
            raise ConfigError(f"parameter {name!r} must be a sequence of {len(args)} values, got {value!r}; "
                              f"{LIST_FORM}")
        return tuple(_coerce(f"{name}[{i}]", v, args[i], spec) for i, v in enumerate(value))
    base = args[0] if args and origin is not None else typ
    if base is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"parameter {name!r} must be True or False, got {value!r}")
        return value
    if base is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"parameter {name!r} must be an integer, got {value!r}")
    elif base is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise ConfigError(f"parameter {name!r} must be a finite number, got {value!r}")
        value = float(value)
    elif base is str and not isinstance(value, str):
        raise ConfigError(f"parameter {name!r} must be a string, got {value!r}")
    if spec["choices"] and value not in spec["choices"]:
        raise ConfigError(f"parameter {name!r} is {value!r}; allowed: {_allowed(spec)}")
    lo, hi = spec["lo"], spec["hi"]
    if isinstance(value, (int, float)) and (
        (lo is not None and (value <= lo if spec["lo_open"] else value < lo)) or (hi is not None and value > hi)
    ):
        raise ConfigError(f"parameter {name!r} is {value!r}; allowed: {_allowed(spec)}")
    return value


#: How a sequence parameter is written, quoted by every error about one.
LIST_FORM = "write a list as a,b or [a,b] (numbers and names alike, e.g. quantize.ks=16,64, prior.kinds=[pixelcnn,transformer])"


def split_top_level(text: str) -> list[str]:
    """``"1,(2,3),[a,b]"`` -> ``["1", "(2,3)", "[a,b]"]``: ``text`` split at the commas outside brackets and
    quotes, each part stripped."""
    parts, depth, quote, start = [], 0, "", 0
    for i, ch in enumerate(text):
        if quote:
            quote = "" if ch == quote else quote
        elif ch in "'\"":
            quote = ch
        elif ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
        elif ch == "," and depth == 0:
            parts.append(text[start:i].strip())
            start = i + 1
    parts.append(text[start:].strip())
    return parts


def literal(text: str) -> Any:
    """A Python literal's value (``"16"`` -> 16, ``"'a'"`` -> ``'a'``), else the stripped text itself (a bare
    name such as ``pixelcnn``)."""
    try:
        return ast.literal_eval(text.strip())
    except (ValueError, SyntaxError):
        return text.strip()


def parse_list(text: str) -> tuple:
    """One syntax for every sequence parameter, through ``--set``, ``--sweep`` and the notebooks'
    ``overrides``: ``"a,b"``, ``"[a,b]"`` and ``"(a,b)"`` are the tuple ``(a, b)``, whose items are literals
    (numbers, quoted strings) or bare names; ``"a"`` is ``("a",)`` and ``""`` or ``"[]"`` the empty tuple."""
    text = text.strip()
    if len(text) >= 2 and text[0] + text[-1] in ("[]", "()") and len(split_top_level(text)) == 1:
        text = text[1:-1].strip()  # one bracketed list, not "(8,16),(16,32)"
    if not text:
        return ()
    parts = split_top_level(text)
    if any(not part for part in parts):
        raise ConfigError(f"an empty item in the list {text!r}; {LIST_FORM}")
    return tuple(literal(part) for part in parts)


def flatten(obj: Any, prefix: str = "") -> dict[str, Any]:
    """Dotted name -> value for every leaf of a config instance."""
    out: dict[str, Any] = {}
    for f in fields(obj):
        v = getattr(obj, f.name)
        out.update(flatten(v, prefix + f.name + ".") if is_dataclass(v) else {prefix + f.name: v})
    return out


def _build(cls: type, values: Mapping[str, Any], prefix: str = "") -> Any:
    """Instantiate ``cls`` from dotted ``values``, checking every leaf."""
    hints = get_type_hints(cls)
    kwargs: dict[str, Any] = {}
    for f in fields(cls):
        name = prefix + f.name
        if is_dataclass(hints[f.name]):
            kwargs[f.name] = _build(hints[f.name], values, name + ".")
        else:
            kwargs[f.name] = _coerce(name, values[name], hints[f.name], f.metadata)
    return cls(**kwargs)


def _check_consistency(cfg: Config) -> None:
    for name in ("flat_vae", "grid_vae"):
        v: VAEConfig = getattr(cfg, name)
        if v.latent_dim % v.n_chunks:
            raise ConfigError(
                f"parameter '{name}.latent_dim' ({v.latent_dim}) must be divisible by "
                f"'{name}.n_chunks' ({v.n_chunks}); allowed: a multiple of n_chunks")
    q = cfg.quantize
    if max(q.ks) > q.n_landmarks:
        raise ConfigError(f"parameter 'quantize.ks' has K = {max(q.ks)} > 'quantize.n_landmarks' "
                          f"({q.n_landmarks}); allowed: K <= n_landmarks (the medoids are landmarks)")
    for name in ("knn", "assign_neighbours"):
        if getattr(q, name) >= q.n_landmarks:
            raise ConfigError(f"parameter 'quantize.{name}' ({getattr(q, name)}) must be smaller than "
                              f"'quantize.n_landmarks' ({q.n_landmarks})")
    p = cfg.prior
    if not set(p.ks) <= set(q.ks):
        raise ConfigError(f"parameter 'prior.ks' is {p.ks}; allowed: codebook sizes of 'quantize.ks' {q.ks} "
                          f"(set both, e.g. quantize.ks={','.join(map(str, q.ks))} "
                          f"prior.ks={','.join(map(str, q.ks))})")
    if p.transformer_dim % p.transformer_heads:
        raise ConfigError(f"parameter 'prior.transformer_heads' ({p.transformer_heads}) must divide "
                          f"'prior.transformer_dim' ({p.transformer_dim})")
    if cfg.grid_vae.n_chunks != 1:
        raise ConfigError("parameter 'grid_vae.n_chunks' is only for the flat VAE; allowed: 1")
    _check_data_size(cfg)


#: Latent vectors each training image gives a VAE's codebooks: the grid's 7 x 7 positions, the flat VAE's chunks.
GRID_POSITIONS = 49


def _check_data_size(cfg: Config) -> None:
    """Every codebook sees enough training vectors: K (``quantize.ks``) and the geodesic landmarks
    (``quantize.n_landmarks``) at most the vectors of ``data.n_train`` images (49 per image for the GridVAE,
    ``flat_vae.n_chunks`` for the FlatVAE). The error names ``data.n_train``, the tightest need and the
    least value that meets them all."""
    n_train = cfg.data.n_train or 55_000
    q = cfg.quantize
    needs = [(-(-need // per_image), vae, per_image, what)
             for vae, per_image in (("GridVAE", GRID_POSITIONS), ("FlatVAE", cfg.flat_vae.n_chunks))
             for what, need in ((f"K = {max(q.ks)} ('quantize.ks')", max(q.ks)),
                                (f"{q.n_landmarks} geodesic landmarks ('quantize.n_landmarks')", q.n_landmarks))]
    least, vae, per_image, what = max(needs)
    if n_train < least:
        raise ConfigError(
            f"parameter 'data.n_train' is {n_train}: the {vae}'s codebooks would see {n_train * per_image} training "
            f"vectors ({per_image} per image), fewer than {what}; allowed: data.n_train >= {least}, or a smaller "
            f"{what.split('(')[-1].rstrip(')')}")


def suggest(name: str, known: set[str] | None = None) -> str:
    """The closest known parameter names to a misspelt ``name`` first, then every allowed name.

    Closeness is :func:`difflib.get_close_matches` on the whole dotted name and on its last part (so
    ``epoch`` finds ``grid_vae.max_epochs`` and ``flat_vae.max_epochs``), and names whose last part
    contains the given one (a renamed parameter: ``grid_vae.epochs`` finds ``grid_vae.max_epochs``).
    """
    import difflib

    known = set(parameter_names()) - {"profile"} if known is None else known
    close = difflib.get_close_matches(name, sorted(known), n=3, cutoff=0.85)
    leaf = name.rsplit(".", 1)[-1]
    section = name.rsplit(".", 1)[0] if "." in name else ""
    # a renamed parameter (``grid_vae.epochs`` is now ``grid_vae.max_epochs``): the same section first
    contains = sorted((k for k in known if len(leaf) >= 4 and leaf.rstrip("s") in k.rsplit(".", 1)[-1]),
                      key=lambda k: (not k.startswith(section + "."), k))
    close = contains[:2] + [k for k in close if k not in contains[:2]]
    close += [k for k in sorted(known) if k not in close
              and difflib.get_close_matches(leaf, [k.rsplit(".", 1)[-1]], n=1, cutoff=0.8)][:3]
    hint = f"did you mean {' or '.join(repr(c) for c in close)}? " if close else ""
    return f"{hint}allowed: {', '.join(sorted(known))}"


def parse_set(items: list[str]) -> dict[str, Any]:
    """``["a=1", "b=(8, 16)", "c=cpu"]`` -> ``{"a": 1, "b": (8, 16), "c": "cpu"}`` (Python literals, else strings):
    the ``--set`` overrides of the runner and the benchmarks. ``b=8,16`` is the tuple ``(8, 16)`` too, and a
    list of names (``prior.kinds=pixelcnn,transformer`` or ``[pixelcnn,transformer]``) stays text that
    :func:`resolve` reads as a sequence (:func:`parse_list`): one list syntax for every parameter.

    Every item counts, however the ``--set`` flags were written; the same name given twice with
    different values is an error naming it (the same value twice is harmless). ``name=`` with nothing
    after it is the empty sequence (for the parameters that allow one, e.g. ``vqvae.small_k_variants``).
    """
    overrides: dict[str, Any] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ConfigError(f"--set expects name=value, got {item!r}")
        value = literal(raw) if raw.strip() else ()  # a list of names stays text: the config parses it
        if key in overrides and overrides[key] != value:
            raise ConfigError(f"--set gives parameter {key!r} twice, as {overrides[key]!r} and {value!r}; "
                              f"allowed: one value per parameter")
        overrides[key] = value
    return overrides


def resolve(profile: str = "standard", overrides: Mapping[str, Any] | None = None, **kw: Any) -> Config:
    """Resolve a profile plus overrides into a frozen, validated :class:`Config`.

    Overrides use dotted names (``{"grid_vae.max_epochs": 3}``); keyword arguments are merged in the same
    way, with ``__`` standing for the dot (``grid_vae__max_epochs=3``).
    """
    if profile not in PROFILES:
        raise ConfigError(f"parameter 'profile' is {profile!r}; allowed: one of {', '.join(PROFILES)}")
    extra = dict(overrides or {})
    extra.update({k.replace("__", "."): v for k, v in kw.items()})
    known = set(parameter_names()) - {"profile"}
    for key in extra:
        if key not in known:
            raise ConfigError(f"unknown parameter {key!r}; {suggest(key, known)}")
    values = {**flatten(Config()), **_PROFILE_OVERRIDES[profile], **extra, "profile": profile}
    cfg = _build(Config, values)
    _check_consistency(cfg)
    return cfg


def describe(cls: type = Config, prefix: str = "") -> list[tuple[str, str, str]]:
    """(name, allowed values, help) for every parameter: the reference table of the README."""
    rows = []
    hints = get_type_hints(cls)
    for f in fields(cls):
        if is_dataclass(hints[f.name]):
            rows += describe(hints[f.name], prefix + f.name + ".")
        else:
            rows.append((prefix + f.name, _allowed(f.metadata), f.metadata.get("help", "")))
    return rows
