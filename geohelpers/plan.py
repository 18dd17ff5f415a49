"""What a profile makes, once its choices are known: the one list, read by the stage graph and by the
notebooks alike, of which VQ-VAEs are trained, which code sets get which priors, and which decoders are
adapted.

The book makes four choices, each on validation numbers, each by one function of
:mod:`geohelpers.evaluation`:

``prior_<vae>``
    the prior architecture of each VAE kind (notebook 04): both kinds are trained to the stopping rule on
    the VAE's K-means code maps at the largest K (:func:`prior_comparison_sets`), and the kind of lower
    validation NLL is the only one trained on that VAE's other code sets. The VQ-VAE's codes, on the
    GridVAE's 7x7 grid, get the GridVAE's kind.
``vqvae``
    the end-to-end VQ-VAE variant of lowest validation MSE at the largest K (notebook 05), which is then
    trained at every K of ``vqvae.ks``: the end-to-end rate-distortion curve.
``a_posteriori``
    the GridVAE's a posteriori codebook of lowest validation MSE at the largest K (notebooks 05, 06): its
    code maps get priors at every K of ``prior.ks`` beside K-means on mu, the hybrid VQ-VAE starts from
    it, and its decoder is adapted at every K.

``choices`` below maps those names to the chosen values; what needs a choice not yet made is left out.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

from .artifacts import CodeSet
from .config import Config

#: The names of the book's choices (keys of ``choices``), in the order the notebooks make them.
CHOICES = ("prior_grid", "prior_flat", "vqvae", "a_posteriori")

#: The curves of the rate-distortion verdict, by name: the end-to-end VQ-VAE, K-means on mu, the chosen a
#: posteriori codebook, and the two a posteriori ones with their decoders adapted.
CURVES = ("end to end", "kmeans", "a posteriori", "kmeans, adapted decoder", "a posteriori, adapted decoder")


@dataclass(frozen=True)
class PriorJob:
    """One prior to train: its ``kind`` on the code maps ``codes``, first loaded by ``notebook``, and the
    choices it waits for (``needs``)."""

    codes: CodeSet
    kind: str
    notebook: str
    needs: tuple[str, ...] = ()


def prior_comparison_sets(cfg: Config) -> list[CodeSet]:
    """The code sets on which every prior kind is trained, to choose the architecture per VAE kind: each
    VAE's K-means code maps at the largest K of ``prior.ks``."""
    return [CodeSet(vae, "kmeans", max(cfg.prior.ks)) for vae in cfg.prior.vaes]


def prior_kind(codes: CodeSet, choices: Mapping[str, str]) -> str | None:
    """The prior kind trained on ``codes`` outside the comparison: the choice of its VAE kind (the GridVAE's
    for VQ-VAE codes); ``None`` before that choice."""
    return choices.get(f"prior_{'grid' if codes.source == 'vqvae' else codes.source}")


def vqvae_runs(cfg: Config, choices: Mapping[str, str]) -> list[tuple[str, int, str]]:
    """(variant, K, choice it waits for or ``""``) of every VQ-VAE: every variant but the hybrid at the
    largest K; ``small_k_variants`` at the other K; the chosen variant at every K; the hybrid, which starts
    from the chosen a posteriori codebook, at the largest K."""
    v = cfg.vqvae
    kmax = max(v.ks)
    runs = [(name, kmax, "") for name in v.variants if name != "hybrid"]
    runs += [(name, k, "") for k in v.ks if k != kmax for name in v.small_k_variants if name != "hybrid"]
    if "vqvae" in choices:
        runs += [(choices["vqvae"], k, "vqvae") for k in v.ks if k != kmax]
    if "hybrid" in v.variants and "a_posteriori" in choices:
        runs.append(("hybrid", kmax, "a_posteriori"))
    seen: set[tuple[str, int]] = set()
    return [r for r in runs if not ((r[0], r[1]) in seen or seen.add((r[0], r[1])))]


def prior_jobs(cfg: Config, choices: Mapping[str, str]) -> list[PriorJob]:
    """Every prior of the profile that the choices made so far allow (see the module docstring):

    - notebook 04: every kind on :func:`prior_comparison_sets`; the chosen kind on the GridVAE's
      ``prior.methods`` at every K of ``prior.ks``, and on each VAE's ``prior.kmax_methods`` at the largest K;
    - notebook 05: the GridVAE's kind on the chosen end-to-end variant's codes at every K of ``vqvae.ks``,
      on ``vanilla``'s and the hybrid's at the largest K, and on ``small_k_variants``' at the other K;
    - notebook 06: on the chosen a posteriori codebook's codes at every K of ``prior.ks``.
    """
    p, v = cfg.prior, cfg.vqvae
    kmax, vmax = max(p.ks), max(v.ks)
    jobs = [PriorJob(cs, kind, "04") for cs in prior_comparison_sets(cfg) for kind in p.kinds]

    def add(cs: CodeSet, notebook: str, *needs: str) -> None:
        kind = prior_kind(cs, choices)
        if kind is not None and all(n in choices for n in needs):
            jobs.append(PriorJob(cs, kind, notebook, (f"prior_{'grid' if cs.source == 'vqvae' else cs.source}", *needs)))

    for vae in p.vaes:
        if vae == "grid":
            for method in p.methods:
                for k in p.ks:
                    add(CodeSet("grid", method, k), "04")
        for method in p.kmax_methods:
            add(CodeSet(vae, method, kmax), "04")
    if "vqvae" in choices:
        for k in v.ks:
            add(CodeSet("vqvae", choices["vqvae"], k), "05", "vqvae")
    for name, k, need in vqvae_runs(cfg, choices):
        if need != "vqvae" and (k != vmax or name in ("vanilla", "hybrid")):
            add(CodeSet("vqvae", name, k), "05", *([need] if need else []))
    if "a_posteriori" in choices:
        for k in p.ks:
            add(CodeSet("grid", choices["a_posteriori"], k), "06", "a_posteriori")
    out: dict[tuple[str, str], PriorJob] = {}
    for job in jobs:  # a code set listed twice keeps its first owner
        out.setdefault((job.codes.name, job.kind), job)
    return list(out.values())


def adaptation_sets(cfg: Config, choices: Mapping[str, str]) -> list[CodeSet]:
    """The GridVAE's code sets whose decoder is adapted (notebook 06): K-means on mu and the chosen a
    posteriori codebook at every K of ``prior.ks`` (the adapted curves)."""
    if "a_posteriori" not in choices:
        return []
    methods = dict.fromkeys(["kmeans", choices["a_posteriori"]])
    return [CodeSet("grid", m, k) for m in methods for k in sorted(cfg.prior.ks)]


def curve_code_sets(cfg: Config, choices: Mapping[str, str]) -> dict[str, list[CodeSet]]:
    """The code sets of each rate-distortion curve (:data:`CURVES`), by increasing K; the adapted curves
    share their codes, and so their priors and coded rates, with the plain ones."""
    ks = sorted(cfg.prior.ks)
    post = choices["a_posteriori"]
    return {"end to end": [CodeSet("vqvae", choices["vqvae"], k) for k in sorted(cfg.vqvae.ks)],
            "kmeans": [CodeSet("grid", "kmeans", k) for k in ks],
            "a posteriori": [CodeSet("grid", post, k) for k in ks],
            "kmeans, adapted decoder": [CodeSet("grid", "kmeans", k) for k in ks],
            "a posteriori, adapted decoder": [CodeSet("grid", post, k) for k in ks]}
