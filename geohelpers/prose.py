"""Every sentence the book generates from numbers, never typed: each function takes results rows or the
numbers of :mod:`geohelpers.selection` and returns a :class:`Prose`. Direction words ("higher", "lower",
"every", "some") are read off the numbers by :func:`direction` and :func:`compared`, so a sentence stays true
when the numbers change.

:class:`Prose` is a paragraph that renders as text wherever it is pasted: in the notebook (Markdown), in
the same document (``{glue:md}``), and on another page of the book (``{glue:any}`` with ``:doc:``), where
myst-nb 1.4 pastes the richest *HTML-or-plain* representation. A bare ``IPython.display.Markdown`` has no
HTML form, so across documents it showed as its Python repr; ``Prose`` carries both forms of one text.
"""

from __future__ import annotations

from typing import Any, Iterable, Mapping, Sequence

import numpy as np
import pandas as pd

from .config import METHOD_LABELS, VARIANT_LABELS, method_label
from .selection import best_end_to_end, mse_ratio, select_on_validation, with_ratio_to_kmeans


class Prose:
    """A paragraph computed from numbers. Renders as Markdown in Jupyter and as HTML on any book page."""

    def __init__(self, text: str) -> None:
        self.text = " ".join(text.split())

    def _repr_markdown_(self) -> str:
        return self.text

    def _repr_html_(self) -> str:
        from markdown_it import MarkdownIt

        return f'<div class="computed-prose">{MarkdownIt("commonmark").render(self.text)}</div>'

    def __str__(self) -> str:
        return self.text

    def __repr__(self) -> str:  # what a plain-text consumer sees: the text itself, never an object address
        return self.text

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Prose) and other.text == self.text

    def __hash__(self) -> int:
        return hash(self.text)


def span_text(lo: float, hi: float, fmt: str = "{:.2f}", sep: str = " to ") -> str:
    """``lo`` and ``hi`` as a range, printed once when they print alike (``1.00``, not ``1.00 to 1.00``)."""
    a, b = fmt.format(lo), fmt.format(hi)
    return a if a == b else f"{a}{sep}{b}"


def _span(values: pd.Series) -> str:
    return span_text(values.min(), values.max())


def direction(lower_in: Iterable[bool], lower: str = "lower", higher: str = "higher",
              scope: tuple[str, str, str] = ("at", "K", "K"), mixed: str | None = None) -> str:
    """Direction words read off the numbers. ``lower_in`` says, case by case (a setting, a K, a seed),
    whether the quantity is the lower one there; ``scope`` is (preposition, one case, many cases).

    ``"<lower> <prep> every <one>"`` when it is in every case, ``"<higher> <prep> every <one>"`` when in
    none, else ``mixed`` or ``"<lower> <prep> N of M <many> and <higher> <prep> the others"``.
    """
    flags = [bool(f) for f in lower_in]
    prep, one, many = scope
    n, k = len(flags), sum(flags)
    if k == n:
        return f"{lower} {prep} every {one}"
    if k == 0:
        return f"{higher} {prep} every {one}"
    return mixed if mixed is not None else f"{lower} {prep} {k} of {n} {many} and {higher} {prep} the others"


def compared(ratio: float, lower: str = "lower", higher: str = "higher") -> str:
    """The direction word of one ratio against 1."""
    return lower if ratio < 1 else higher


def vae_numbers(evals: Mapping[str, Any]) -> dict[str, Any]:
    """The numbers of notebook 01 that the book quotes, from each VAE's test evaluation
    (:class:`geohelpers.metrics.VAEEvaluation` by display name, ``FlatVAE`` and ``GridVAE``)."""
    fm, gm = evals["FlatVAE"].mse, evals["GridVAE"].mse
    out: dict[str, Any] = {"flat_mse": fm, "grid_mse": gm, "flat_neg_elbo": evals["FlatVAE"].neg_elbo,
                           "grid_neg_elbo": evals["GridVAE"].neg_elbo,
                           "better_mse_model": Prose("GridVAE" if gm < fm else "FlatVAE"),
                           "mse_ratio": max(fm, gm) / min(fm, gm)}
    for name, e in evals.items():
        out[f"{name[:4].lower()}_active"] = e.active_units
        out[f"{name[:4].lower()}_units"] = e.n_units
    return out


def w2_summary(rows: pd.DataFrame, errors: pd.DataFrame) -> Prose:
    """Where W2 stands against K-means on mu, and where its squared error goes (mu or sigma).

    ``errors`` is indexed by (VAE, method) with ``mu_sq_error`` and ``sigma_sq_error`` at the largest K.
    """
    ratio = mse_ratio(rows, "w2")
    lead = (f"At equal fixed-length rate and against K-means on μ, W2 K-means' test MSE is "
            f"{direction(ratio < 1, scope=('in', 'setting', 'settings'))} (a setting is a VAE and a K)")
    parts = []
    for name in dict.fromkeys(errors.index.get_level_values(0)):
        km, w2 = errors.loc[(name, "kmeans")], errors.loc[(name, "w2")]
        share = w2["sigma_sq_error"] / (w2["sigma_sq_error"] + w2["mu_sq_error"])
        parts.append(f"for the {name}, {share:.0%} of W2's squared error is in σ, and its error in μ is "
                     f"{w2['mu_sq_error'] / km['mu_sq_error']:.2f} times that of K-means on μ")
    return Prose(f"{lead}: {_span(ratio)} times as large. "
                 f"At K = {int(rows['K'].max())}, " + "; ".join(parts) + ".")


def geodesic_verdict(rows: pd.DataFrame, controls: Mapping[str, pd.DataFrame] | None = None,
                     k: int | None = None) -> Prose:
    """The geodesic codebook against K-means on mu at the same rate, over every (VAE, K); with
    ``controls`` (per VAE, the rows of :func:`geohelpers.geodesic_experiments.medoid_control` at ``k``),
    what the control separates: straight-line K-medoids on the same landmarks differs from geodesic
    K-medoids only by the paths, and from K-means only by the medoid constraint."""
    ratio = mse_ratio(rows, "geodesic")
    head = "Against K-means on μ at the same fixed-length rate, the geodesic codebook's test MSE is"
    text = f"{head} {direction(ratio < 1)}: {_span(ratio)} times as large."
    if controls:
        text += " " + medoid_control_prose(controls, k, "geodesic K-medoids", "K-means on μ")
    elif (ratio > 1).all():
        text += (" A hypothesis this notebook does not test: K-medoids must place its codewords on landmarks, and "
                 "it minimises path lengths rather than the squared error that the MSE rewards.")
    return Prose(text)


def gain_word(gain: float) -> str:
    """The verb for a relative gain ``gain`` = 1 - after / before in an error: ``lowers`` when positive, else
    ``raises`` (the percentage beside it is ``abs(gain)``)."""
    return "lowers" if gain > 0 else "raises"


def _effect(ratio: float, raise_: str, lower: str, change: str) -> str:
    """What a thing does to the error, from ``ratio`` = error with it / error without it: ``raise_`` or
    ``lower`` it by the percentage, or ``change`` it by less than 0.5%."""
    if abs(ratio - 1) < 0.005:
        return f"{change} the error by less than 0.5%"
    return f"{raise_ if ratio > 1 else lower} the error by {abs(ratio - 1):.0%}"


def medoid_control_prose(controls: Mapping[str, pd.DataFrame], k: int | None, geodesic: str, free: str) -> str:
    """Per VAE: the test MSE of straight-line K-medoids on the same landmarks and of the free-centroid
    codebook, each over that of the geodesic codebook, with what each comparison isolates."""
    parts = []
    for vae, table in controls.items():
        t = table.set_index("codebook")["MSE / geodesic"]
        straight = float(t.iloc[1])
        part = (f"on the {vae}, straight-line K-medoids on the same landmarks reaches {straight:.2f} times the "
                f"test MSE of {geodesic} (the paths along the graph {_effect(1 / straight, 'raise', 'lower', 'change')})")
        if len(t) > 2:
            free_ratio = float(t.iloc[2])
            part += (f", and {free}, whose centroids need not be landmarks, {free_ratio:.2f} times (against "
                     f"straight-line medoids, the medoid constraint "
                     f"{_effect(straight / free_ratio, 'raises', 'lowers', 'changes')})")
        parts.append(part)
    at = f"At K = {k}, " if k is not None else ""
    return at + "; ".join(parts) + "."


def backend_sentence(backends: pd.DataFrame) -> Prose:
    """FasterPAM's K-medoids loss :math:`\\sum_l \\min_m G(l, m)` against the alternate method's on the same
    geodesics (``backends`` indexed by backend, ``fasterpam`` and ``sklearn_extra``, with ``K-medoids loss``):
    lower, higher or equal, by the relative difference ``|1 - fasterpam / alternate|``."""
    fast, alt = (float(backends.loc[b, "K-medoids loss"]) for b in ("fasterpam", "sklearn_extra"))
    gap = abs(1 - fast / alt)
    if gap < 0.0005:
        return Prose("FasterPAM's loss equals the alternate method's to within 0.05%.")
    return Prose(f"FasterPAM's loss is {compared(fast / alt)} than the alternate method's by a fraction {gap:.3f} "
                 f"of it.")


def assignment_summary(rules: pd.DataFrame) -> Prose:
    """The geodesic assignment rule against the nearest-landmark rule on the same codebook, per VAE
    (``rules`` indexed by (VAE, rule) with ``test MSE`` and ``vectors coded differently (test)``): the share
    of test vectors the rules code differently, and what the geodesic rule does to the test MSE,
    :math:`\\mathrm{MSE}_{geodesic} / \\mathrm{MSE}_{nearest}`."""
    parts = []
    for vae in dict.fromkeys(rules.index.get_level_values(0)):
        geo, near = rules.loc[(vae, "geodesic")], rules.loc[(vae, "nearest landmark")]
        ratio = float(geo["test MSE"] / near["test MSE"])
        parts.append(f"on the {vae} it codes {geo['vectors coded differently (test)']:.1%} of the test vectors "
                     f"differently and {_effect(ratio, 'raises', 'lowers', 'changes')} (test MSE "
                     f"{geo['test MSE']:.5f} against {near['test MSE']:.5f})")
    return Prose("Against the nearest-landmark rule on the same codebook, the geodesic assignment rule: "
                 + "; ".join(parts) + ".")


def stopping_summary(epochs: Sequence[int], reasons: Sequence[str | None], cap: int, what: str) -> Prose:
    """What ended each training of a set (``reasons`` as :class:`geohelpers.train.History` records them:
    ``patience`` for the stopping rule, ``max_epochs`` for the cap): how many the rule ended, how many the
    cap, and the longest run against the cap."""
    n, capped, longest = len(reasons), sum(r == "max_epochs" for r in reasons), max(int(e) for e in epochs)
    if capped == 0:
        return Prose(f"The stopping rule ended all {n} {what}, the longest after {longest} of at most {cap} epochs.")
    return Prose(f"The stopping rule ended {n - capped} of the {n} {what}; {capped} reached the cap of {cap} "
                 f"epoch{'s' if cap != 1 else ''}, so {'they are' if capped > 1 else 'it is'} not trained to convergence.")


def repair_summary(repairs: pd.DataFrame, k: int | None) -> Prose:
    """What repairing a disconnected landmark graph changes (``repairs`` indexed by repair: mst, none, ...)."""
    if repairs.empty or k is None:
        return Prose("The GridVAE's landmark graph is connected for every k tested, so there is nothing to repair.")
    none, mst = repairs.loc["none"], repairs.loc["mst"]
    return Prose(
        f"With k = {k} the graph has {int(mst['components'])} components. Left unrepaired, its codebook uses "
        f"{none['test usage']:.1%} of its codes on the test set ({int(none['dead codes'])} dead); repaired by a "
        f"spanning tree, {mst['test usage']:.1%} ({int(mst['dead codes'])} dead), with test MSE "
        f"{mst['test MSE']:.5f} against {none['test MSE']:.5f}.")


def cluster_shares(labelings: Mapping[str, np.ndarray]) -> Prose:
    """The share of points in the largest cluster of each labeling."""
    parts = [f"{np.bincount(lab).max() / len(lab):.0%} {'of these landmarks ' if i == 0 else ''}under {name}"
             for i, (name, lab) in enumerate(labelings.items())]
    n = len(np.unique(next(iter(labelings.values()))))
    return Prose(f"The largest of the {n} clusters holds " + ", and ".join(parts) + ".")


def prior_summary(table: pd.DataFrame) -> Prose:
    """How many priors beat the context-free baseline, which prior wins, and the GridVAE's best coded rate."""
    below = table["nll_nats_per_token"] < table["unigram_nll"]
    lines = [f"{int(below.sum())} of {len(table)} priors have a held-out NLL below the context-free prior of "
             f"their codebook; the gain is {_span(table['context_gain_nats'])} nats per code."]
    if not below.all():
        worse = table.loc[~below]
        lines.append("Not below it: " + "; ".join(
            f"{r.prior} on {r.codes} ({r.nll_nats_per_token:.3f} against {r.unigram_nll:.3f}, {r.epochs} "
            f"epoch{'s' if r.epochs != 1 else ''})"
            for r in worse.itertuples()) + ".")
    compared = table.groupby("codes").filter(lambda g: g["prior"].nunique() > 1)
    if len(compared):
        best = compared.loc[compared.groupby("codes")["nll_nats_per_token"].idxmin()]
        wins = best["prior"].value_counts()
        sets = f"{len(best)} code set{'s' if len(best) != 1 else ''}"
        if len(wins) == 1:
            kind = wins.index[0]
            lines.append(f"Where both architectures were trained ({sets}), the {kind} has the lower test NLL"
                         + (" on every one." if len(best) > 1 else "."))
        else:
            lines.append(f"Where both architectures were trained ({sets}), the lower test NLL comes from the "
                         + " and the ".join(f"{kind} on {n}" for kind, n in wins.items()) + ".")
    kmax = int(table["K"].max())
    grid_big = table[(table["VAE"] == "GridVAE") & (table["K"] == kmax)]
    if len(grid_big):
        r = grid_big.loc[grid_big["nll_nats_per_token"].idxmin()]
        lines.append(f"On the GridVAE at K = {kmax}, the best prior ({r['prior']} on the {method_label(r['method'])} codes) "
                     f"codes a test image in {r['bits_per_image']:.0f} bits instead of "
                     f"{r['positions'] * np.log2(kmax):.0f}.")
    return Prose(" ".join(lines))


def vq_summary(table: pd.DataFrame, variants: Sequence[str]) -> Prose:
    """What each VQ-VAE variant does to code usage and test MSE, then the best one against K-means on mu.

    ``table`` has one row per method (``VQ-VAE <variant>`` or ``a posteriori <method>``) and K, with a
    ``diverged`` column (the error message, or empty).
    """
    by = table.set_index(["method", "K"])
    ks = sorted(set(table["K"]), reverse=True)
    kmax = ks[0]

    def row(name: str, k: int = kmax) -> pd.Series:
        return by.loc[(f"VQ-VAE {name}", k)]

    lines = []
    if {"vanilla", "ema_restart"} <= set(variants):
        van, ema = row("vanilla"), row("ema_restart")
        lines.append(f"At K = {kmax}, vanilla uses {van['usage']:.1%} of its codes on the test set (test MSE "
                     f"{van['mse_per_pixel']:.5f}); EMA with restarts uses {ema['usage']:.1%} (test MSE "
                     f"{ema['mse_per_pixel']:.5f}).")
    if "ema" in variants:
        lines.append(f"EMA without restarts uses {row('ema')['usage']:.1%}.")
    if "vanilla_restart" in variants:
        r = row("vanilla_restart")
        if r["diverged"]:
            lines.append(f"Hard restarts of a gradient-trained codebook diverged: {r['diverged']}.")
        else:
            lines.append(f"Hard restarts of a gradient-trained codebook, with stale optimizer state, did not "
                         f"diverge here: usage {r['usage']:.1%}, test MSE {r['mse_per_pixel']:.5f}.")
    for name, label in VARIANT_LABELS.items():
        if name in variants:
            r = row(name)
            lines.append(f"{label} uses {r['usage']:.1%} of its codes (test MSE {r['mse_per_pixel']:.5f}).")
            if name == "hybrid" and "epochs_with_start" in r and pd.notna(r.get("epochs_with_start")):
                lines.append(f"The hybrid trained {int(r['epochs'])} epochs end to end after the GridVAE's "
                             f"{int(r['epochs_with_start'] - r['epochs'])}, {int(r['epochs_with_start'])} in all.")
    best = row(best_end_to_end(table, kmax))
    curve = table[(table["method"] == best.name[0]) & (table["K"] != kmax)].sort_values("K")
    if len(curve):
        lo = curve.iloc[0]
        lines.append(f"Trained at every K, {best.name[0][7:]} reaches test MSE {lo['mse_per_pixel']:.5f} at "
                     f"K = {int(lo['K'])} with {lo['usage']:.1%} of its codes in use.")
    post = by.loc[("a posteriori kmeans", kmax)]
    lines.append(f"The best end-to-end VQ-VAE at K = {kmax}, chosen on the validation images, is "
                 f"{best.name[0][7:]} (test MSE {best['mse_per_pixel']:.5f}, {best['usage']:.1%} of codes used); "
                 f"K-means on μ, an a posteriori codebook of the GridVAE at the same rate, reaches "
                 f"{post['mse_per_pixel']:.5f}.")
    return Prose(" ".join(lines))


def fidelity_prose(table: pd.DataFrame, floor_fd: float, floor_is: float) -> Prose:
    """How far the generators' samples are from real images: each quantizer's FD and IS with the prior chosen
    on validation, against the real-data floor."""
    h = table.set_index("quantizer")
    fd, is_ = h["FD"].to_dict(), h["IS"].to_dict()
    best = min(fd, key=fd.__getitem__)
    return Prose(f"With each code set's prior chosen on validation, the samples' Fréchet distance runs from "
                 f"{min(fd.values()):.1f} ({best}) to {max(fd.values()):.1f}, {min(fd.values()) / floor_fd:.0f} to "
                 f"{max(fd.values()) / floor_fd:.0f} times that of real training images ({floor_fd:.2f}); the "
                 f"Inception Score runs from {min(is_.values()):.2f} to {max(is_.values()):.2f} (real images "
                 f"{floor_is:.2f}).")


def pullback_verdict(rows: pd.DataFrame, kmeans_rows: pd.DataFrame, k: int,
                     controls: Mapping[str, pd.DataFrame] | None = None) -> tuple[Prose, dict[str, float]]:
    """What the decoder's geometry buys over K-means on mu, per VAE at codebook size ``k``, and over K.

    The decoder-aware codebook reported per VAE is the one of lowest *validation* MSE at ``k``
    (:func:`~geohelpers.selection.select_on_validation`, which refuses a test column); its test MSE is
    then reported, once. The span over K is each K's validation-chosen codebook's ratio. ``controls``
    (per VAE, :func:`geohelpers.geodesic_experiments.medoid_control` of the decoder-aware geodesic
    codebook at ``k``) separate the paths from the medoid constraint under the same metric."""
    table = with_ratio_to_kmeans(rows, kmeans_rows)
    lines, numbers = [], {}
    for vae in dict.fromkeys(table["VAE"]):
        at_k = table[(table["VAE"] == vae) & (table["K"] == k)].set_index("method", drop=False)
        best = at_k.loc[select_on_validation(at_k, "val_mse_per_pixel")]
        ratio = float(best["MSE / K-means"])
        word = compared(ratio)
        lines.append(f"On the {vae} at K = {k}, the decoder-aware codebook chosen on validation "
                     f"({METHOD_LABELS[best['method']]}) has test MSE {best['mse_per_pixel']:.5f}, {ratio:.2f} times "
                     f"that of K-means on μ ({abs(1 - ratio):.0%} {word}).")
        numbers[f"{vae[:4].lower()}_pullback_ratio"] = ratio
        mine_k = table[table["VAE"] == vae]
        every = pd.Series({kk: float(g.set_index("method").loc[select_on_validation(g.set_index("method"), "val_mse_per_pixel"),
                                                                 "MSE / K-means"]) for kk, g in mine_k.groupby("K")})
        lines.append(f"Over every K the validation-chosen decoder-aware codebook's ratio to K-means is "
                     f"{span_text(every.min(), every.max())}.")
        mine = table[table["VAE"] == vae].pivot_table(index="K", columns="method", values="mse_per_pixel")
        if {"pullback_geodesic", "pullback_mean"} <= set(mine.columns):
            geo = mine["pullback_geodesic"] / mine["pullback_mean"]
            where = direction(geo < 1, "better", "worse")
            lines.append(f"Geodesic K-medoids under the mean metric reaches {_span(geo)} times the MSE of K-means "
                         f"under the same metric: it is {where}; this mixes the paths with the medoid constraint.")
            numbers[f"{vae[:4].lower()}_geodesic_over_straight_max"] = float(geo.max())
        if controls and vae in controls:
            lines.append(medoid_control_prose({vae: controls[vae]}, k, "geodesic K-medoids under the mean pullback "
                                              "metric", "K-means under that metric"))
        if {"pullback_vector", "pullback_position"} <= set(mine.columns):
            own = mine["pullback_vector"] / mine["pullback_position"]
            where = direction(own < 1)
            lines.append(f"Every vector's own metric, at fit and at encoding, gives {_span(own)} times the MSE of "
                         f"one mean metric per position: {where}.")
            numbers[f"{vae[:4].lower()}_vector_over_position_max"] = float(own.max())
    return Prose(" ".join(lines)), numbers


def metric_anisotropy(summary: pd.DataFrame) -> Prose:
    """How unequally each VAE's decoder weighs the directions of a latent vector, from
    :func:`geohelpers.tables.metric_summary`: the largest eigenvalue's share of the trace of each position's
    mean metric :math:`\\bar G_p`, averaged over positions (1/d for an isotropic metric, 1 when the decoder
    reads one direction only), and the condition number of the metric averaged over positions."""
    share, cond = "largest eigenvalue's share of the trace", "condition number (mean metric)"
    parts = [f"{row[share]:.0%} of its trace on the {vae} (condition number of the mean metric {row[cond]:.3g})"
             if i == 0 else f"{row[share]:.0%} on the {vae} ({row[cond]:.3g})"
             for i, (vae, row) in enumerate(summary.iterrows())]
    return Prose("On average over positions, the largest eigenvalue of a position's mean pullback metric holds "
                 + " and ".join(parts) + ".")


def linearisation_summary(lin: pd.DataFrame) -> Prose:
    """How far the first-order prediction is from the measured quantization error, per codebook."""
    parts = [f"{r['codebook']}: {r['predicted / measured']:.2f}" for r in lin.to_dict("records")]
    spread = lin["predicted / measured"]
    return Prose(f"The first-order prediction is {spread.min():.2f} to {spread.max():.2f} times the measured "
                 "squared error between the quantized and the continuous decoded images (" + "; ".join(parts) + "). "
                 "It sums each vector's error alone, so what it leaves out is the vectors' interaction through "
                 "the decoder and the curvature beyond first order.")


def reported_range(quantity: str, fmt: str = "{:.2f}") -> Prose:
    """What the earlier studies reported for ``quantity`` (:data:`geohelpers.studies.REPORTED`), as one
    range (printed once when its ends print alike)."""
    from .studies import REPORTED

    values = sorted(r["reported"] for r in REPORTED if r["quantity"] == quantity)
    if not values:
        raise ValueError(f"no earlier study reported {quantity!r}; allowed: "
                         f"{', '.join(sorted({r['quantity'] for r in REPORTED}))}")
    return Prose(span_text(values[0], values[-1], fmt))


def prior_choices(choices: dict[str, str]) -> Prose:
    """The prior architecture chosen per VAE kind, e.g. ``gridVAE: pixelcnn; flatVAE: transformer``."""
    return Prose("; ".join(f"{k.removeprefix('prior_')}VAE: {v}" for k, v in choices.items()))


def temperature_edge_sentence(edges: Mapping[str, Any]) -> Prose:
    """Where the generators' validation-chosen temperatures fall in their grid
    (:func:`geohelpers.selection.temperature_edges`), and what an edge means for the choice."""
    grid, n = edges["grid"], edges["generators"]
    listed = ", ".join(f"{t:g}" for t in grid[:-1]) + f" and {grid[-1]:g}" if len(grid) > 1 else f"{grid[0]:g}"

    def count(m: int) -> str:
        return "none" if m == 0 else "all" if m == n else f"{m} of {n}"

    parts = [f"{count(edges['at_largest'])} at the largest ({grid[-1]:g})"]
    if len(grid) > 1:
        parts.append(f"{count(edges['at_smallest'])} at the smallest ({grid[0]:g})")
    at_edge = edges["at_largest"] + edges["at_smallest"]
    tail = ("validation FD may still fall past an edge, so the grid should reach further there" if at_edge else
            "every choice lies inside the grid, where validation FD rises on both sides")
    return Prose(f"Each generator's temperature is chosen from {listed} on validation FD: "
                 f"{'; '.join(parts)}. {tail[0].upper() + tail[1:]}.")


def still_improving_sentence(counts: Mapping[str, Any], rule: str) -> Prose:
    """What the stopping rule left of a set of priors (:func:`geohelpers.selection.still_improving`), said as
    it is: ``rule`` states the rule (e.g. "2 epochs without a 0.5 % improvement")."""
    m, gains, ended = counts["best_at_last"], counts["gain_bits"], counts["ended_by_rule"]
    if m == 0:
        return Prose(f"The {'prior' if ended == 1 else f'{ended} priors'} the rule ({rule}) ended had stopped "
                     f"improving by then." if ended else "")
    who = f"{m} of the {ended} priors" if m < ended else f"all {ended} priors" if ended > 1 else "the one prior"
    gain = (f", by {span_text(*gains, fmt='{:.2f}')} bits per image in the last epoch" if gains else "")
    return Prose(f"The rule ({rule}) ended {who} at an epoch that was still the best: validation NLL was still "
                 f"falling{gain}, in steps below the rule's threshold. These priors are trained to the stopping "
                 f"rule, not to convergence.")


def rule_text(training: Any) -> str:
    """The stopping rule in words: ``"2 epochs without a 0.5% relative improvement"``."""
    return (f"{training.patience} epoch{'s' if training.patience != 1 else ''} without a "
            f"{training.min_delta:.1%} relative improvement")
