"""Every table and verdict sentence the book shows, computed from results rows, never typed.

A notebook calls one function per table or paragraph; the function takes the rows (``pandas`` frames or
results-file records), returns a frame, a ``Styler`` or a :class:`Prose`, and is unit-tested on small
frames (``tests/test_report.py``). Direction words ("higher", "lower", "every", "some") are chosen from
the numbers, so a sentence stays true when the numbers change.

:class:`Prose` is a paragraph that renders as text wherever it is pasted: in the notebook (Markdown), in
the same document (``{glue:md}``), and on another page of the book (``{glue:any}`` with ``:doc:``), where
myst-nb 1.4 pastes the richest *HTML-or-plain* representation. A bare ``IPython.display.Markdown`` has no
HTML form, so across documents it showed as its Python repr; ``Prose`` carries both forms of one text.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import numpy as np
import pandas as pd

#: Display formats of the columns that recur across notebooks.
FORMATS: dict[str, str] = {
    "mse_per_pixel": "{:.5f}", "test MSE": "{:.5f}", "usage": "{:.3f}", "test usage": "{:.3f}",
    "perplexity": "{:.1f}", "bits_per_image": "{:.0f}", "fit_seconds": "{:.1f}", "train_seconds": "{:.0f}",
    "seconds": "{:.2f}",
}
#: Reader-facing names of the codebook methods.
METHOD_LABELS = {"kmeans": "K-means on μ", "w2": "W2 K-means on [μ, σ]", "geodesic": "geodesic K-medoids",
                 "pullback_mean": "K-means under the mean pullback metric",
                 "pullback_position": "K-means under per-position pullback metrics",
                 "pullback_vector": "K-means under every vector's own pullback metric",
                 "pullback_geodesic": "geodesic K-medoids under the mean pullback metric"}


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


def glue_all(values: Mapping[str, Any]) -> None:
    """Glue every ``key -> value`` for the book's pages (myst-nb's ``glue(..., display=False)``)."""
    from myst_nb import glue

    for key, value in values.items():
        glue(key, value, display=False)


def styled(df: pd.DataFrame, formats: Mapping[str, str] | None = None, index: bool = False,
           na_rep: str = "–", precision: int | None = None):
    """``df`` as a ``Styler``: ``precision`` digits for every number when given, else the book's column
    formats (:data:`FORMATS`, then ``formats``); missing values as ``na_rep``; no index unless asked."""
    if precision is not None:
        view = df.style.format(precision=precision, na_rep=na_rep)
    else:
        fmt = {c: f for c, f in {**FORMATS, **(formats or {})}.items() if c in df.columns}
        view = df.style.format(fmt, na_rep=na_rep)
    return view if index else view.hide(axis="index")


def span_text(lo: float, hi: float, fmt: str = "{:.2f}", sep: str = " to ") -> str:
    """``lo`` and ``hi`` as a range, printed once when they print alike (``1.00``, not ``1.00 to 1.00``)."""
    a, b = fmt.format(lo), fmt.format(hi)
    return a if a == b else f"{a}{sep}{b}"


def _span(values: pd.Series) -> str:
    return f"{values.min():.2f} to {values.max():.2f}"


# --- notebook 01: the continuous VAEs ----------------------------------------------------------------------

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


# --- notebook 02: W2 against K-means on mu -------------------------------------------------------------------

def mse_ratio(rows: pd.DataFrame, method: str, against: str = "kmeans") -> pd.Series:
    """Test MSE of ``method`` over that of ``against``, per (VAE, K)."""
    pivot = rows.pivot_table(index=["VAE", "K"], columns="method", values="mse_per_pixel")
    return (pivot[method] / pivot[against]).rename(f"MSE of {METHOD_LABELS.get(method, method)} / "
                                                     f"MSE of {METHOD_LABELS.get(against, against)}")


def w2_numbers(rows: pd.DataFrame, continuous: Mapping[str, float]) -> dict[str, Any]:
    """The numbers of notebook 02 that the book's pages quote (glue keys -> values)."""
    ratio = mse_ratio(rows, "w2")
    pivot = rows.pivot_table(index=["VAE", "K"], columns="method", values="mse_per_pixel")
    kmax = int(rows["K"].max())
    out: dict[str, Any] = {"w2_worse_count": int((ratio > 1).sum()), "n_settings": len(ratio),
                           "w2_ratio_min": float(ratio.min()), "w2_ratio_max": float(ratio.max()),
                           "kmax": kmax, "min_usage": float(rows["usage"].min())}
    for name in dict.fromkeys(rows["VAE"]):
        key = name[:4].lower()
        out[f"{key}_kmeans_kmax_mse"] = float(pivot.loc[(name, kmax), "kmeans"])
        out[f"{key}_w2_kmax_mse"] = float(pivot.loc[(name, kmax), "w2"])
        out[f"{key}_kmax_gap"] = float(pivot.loc[(name, kmax)].min() / continuous[name])
    return out


def w2_summary(rows: pd.DataFrame, errors: pd.DataFrame) -> Prose:
    """Where W2 stands against K-means on mu, and where its squared error goes (mu or sigma).

    ``errors`` is indexed by (VAE, method) with ``mu_sq_error`` and ``sigma_sq_error`` at the largest K.
    """
    ratio = mse_ratio(rows, "w2")
    worse = ratio > 1
    if worse.all():
        lead = "W2 K-means has the higher test MSE in every setting (VAE and K)"
    elif not worse.any():
        lead = "W2 K-means has the lower test MSE in every setting (VAE and K)"
    else:
        lead = f"W2 K-means has the higher test MSE in {int(worse.sum())} of {len(ratio)} settings (VAE and K)"
    parts = []
    for name in dict.fromkeys(errors.index.get_level_values(0)):
        km, w2 = errors.loc[(name, "kmeans")], errors.loc[(name, "w2")]
        share = w2["sigma_sq_error"] / (w2["sigma_sq_error"] + w2["mu_sq_error"])
        parts.append(f"for the {name}, {share:.0%} of W2's squared error is in σ, and its error in μ is "
                     f"{w2['mu_sq_error'] / km['mu_sq_error']:.2f} times that of K-means on μ")
    return Prose(f"{lead}: from {_span(ratio)} times the MSE of K-means on μ. "
                 f"At K = {int(rows['K'].max())}, " + "; ".join(parts) + ".")


# --- notebook 03: geodesic codebooks -------------------------------------------------------------------------

def geodesic_verdict(rows: pd.DataFrame) -> Prose:
    """The geodesic codebook against K-means on mu at the same rate, over every (VAE, K)."""
    ratio = mse_ratio(rows, "geodesic")
    head = "Against K-means on μ at the same rate, the geodesic codebook's test MSE is"
    if (ratio > 1).all():
        return Prose(f"{head} higher at every K: {_span(ratio)} times as large. K-medoids must place its "
                     "codewords on landmarks, and it minimises path lengths, not the squared error that the "
                     "MSE rewards.")
    if (ratio < 1).all():
        return Prose(f"{head} lower at every K: {_span(ratio)} times as large.")
    return Prose(f"{head} {_span(ratio)} times as large, lower at some K and higher at others.")


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


# --- notebook 04: priors ------------------------------------------------------------------------------------------

def prior_rows(rows: Sequence[Mapping[str, Any]]) -> pd.DataFrame:
    """Prior rows of :func:`geohelpers.pipeline.train_priors` with ``VAE`` and ``method`` parsed from the code set."""
    table = pd.DataFrame(rows)
    table[["VAE", "method"]] = table["codes"].str.extract(r"^(\w+?)_(\w+)_K\d+$").to_numpy()
    table["VAE"] = table["VAE"].map({"grid": "GridVAE", "flat": "FlatVAE"})
    return table


def prior_table(table: pd.DataFrame, kinds: Sequence[str]):
    """One row per code set: code entropy, context-free NLL, then NLL, perplexity and bits per image of
    each prior (test maps)."""
    wide = table.pivot_table(index=["VAE", "method", "K"], columns="prior",
                             values=["nll_nats_per_token", "perplexity", "bits_per_image"])
    names = {"nll_nats_per_token": "NLL", "perplexity": "perplexity", "bits_per_image": "bits/image"}
    wide.columns = [f"{prior} {names[value]}" for value, prior in wide.columns]
    base = table.groupby(["VAE", "method", "K"])[["test_entropy_nats", "unigram_nll"]].first()
    base.columns = ["code entropy (test)", "context-free NLL"]
    order = list(base.columns) + [f"{k} {v}" for k in kinds for v in ("NLL", "perplexity", "bits/image")]
    if "stop_reason" in table:
        stops = table.assign(stop=[f"{e} ({r})" for e, r in zip(table["epochs"], table["stop_reason"])]).pivot_table(
            index=["VAE", "method", "K"], columns="prior", values="stop", aggfunc="first")
        stops.columns = [f"{prior} epochs (stopped by)" for prior in stops.columns]
        wide = pd.concat([wide, stops], axis=1)
        order += [f"{k} epochs (stopped by)" for k in kinds]
    view = pd.concat([base, wide], axis=1)[order].sort_index(level=["VAE", "K"], ascending=[False, False])
    fmt = {c: "{:.1f}" if c.endswith("perplexity") else "{:.0f}" if c.endswith("bits/image") else "{:.3f}"
           for c in order if not c.endswith("(stopped by)")}
    return styled(view, fmt, index=True)


def prior_bars(table: pd.DataFrame) -> pd.DataFrame:
    """Long frame for :func:`geohelpers.plots.prior_nll_bars`: every prior and the context-free baseline."""
    bars = table.assign(codebook=table["method"] + " K=" + table["K"].astype(str))
    long = pd.concat([
        bars.drop_duplicates("codes").assign(model="context-free", **{"nats per token": lambda d: d["unigram_nll"]}),
        bars.assign(model=bars["prior"], **{"nats per token": bars["nll_nats_per_token"]}),
    ])
    return long[["VAE", "codebook", "model", "nats per token"]]


def prior_summary(table: pd.DataFrame) -> Prose:
    """How many priors beat the context-free baseline, which prior wins, and the GridVAE's best coded rate."""
    below = table["nll_nats_per_token"] < table["unigram_nll"]
    best = table.loc[table.groupby("codes")["nll_nats_per_token"].idxmin()]
    wins = best["prior"].value_counts()
    lines = [f"{int(below.sum())} of {len(table)} priors have a held-out NLL below the context-free prior of "
             f"their codebook; the gain is {_span(table['context_gain_nats'])} nats per code."]
    if not below.all():
        worse = table.loc[~below]
        lines.append("Not below it: " + "; ".join(
            f"{r.prior} on {r.codes} ({r.nll_nats_per_token:.3f} against {r.unigram_nll:.3f}, {r.epochs} epoch(s))"
            for r in worse.itertuples()) + ".")
    lines.append("The lower NLL per code set comes from the " + " and ".join(
        f"{kind} in {n} of {len(best)}" for kind, n in wins.items()) + ".")
    kmax = int(table["K"].max())
    grid_big = table[(table["VAE"] == "GridVAE") & (table["K"] == kmax)]
    if len(grid_big):
        r = grid_big.loc[grid_big["nll_nats_per_token"].idxmin()]
        lines.append(f"On the GridVAE at K = {kmax}, the best prior ({r['prior']} on the {r['method']} codes) "
                     f"codes a test image in {r['bits_per_image']:.0f} bits instead of "
                     f"{r['positions'] * np.log2(kmax):.0f}.")
    return Prose(" ".join(lines))


# --- notebook 05: the VQ-VAE baseline ------------------------------------------------------------------------

def vq_table(table: pd.DataFrame):
    """VQ-VAE variants and the a posteriori codebooks at the same K, by K (largest first) and test MSE."""
    cols = ["method", "K", "mse_per_pixel", "val_mse_per_pixel", "usage", "dead", "perplexity", "bits_per_image",
            "epochs", "stop_reason", "train_seconds"]
    return styled(table[cols].sort_values(["K", "mse_per_pixel"], ascending=[False, True]),
                  {"val_mse_per_pixel": "{:.5f}"})


def prior_code_table(table: pd.DataFrame):
    """Priors over code sets, one row each: test NLL, perplexity, bits per image and the context-free
    baselines (unigram NLL, test code entropy)."""
    cols = ["codes", "prior", "nll_nats_per_token", "perplexity", "bits_per_image", "unigram_nll", "test_entropy_nats"]
    return styled(table[cols], {"nll_nats_per_token": "{:.3f}", "perplexity": "{:.2f}", "unigram_nll": "{:.3f}",
                                "test_entropy_nats": "{:.3f}"})


VARIANT_LABELS = {
    "kmeans_init": "EMA with restarts started from K-means of the first batches' encoder outputs",
    "hybrid": "The hybrid, started from the trained GridVAE and its geodesic medoids,",
    "fsq": "FSQ, whose codes are all reachable by construction,",
}


#: The VQ-VAE variants that start from the a posteriori pipeline: never "end to end" in a verdict.
STARTS_A_POSTERIORI = ("hybrid",)


def compared_variants(best: str, variants: Sequence[str]) -> list[str]:
    """The VQ-VAE variants that get priors and enter the comparison: the best end-to-end one, the variants
    that start from the a posteriori pipeline (when trained), and ``vanilla``, each once."""
    return list(dict.fromkeys([best, *[v for v in STARTS_A_POSTERIORI if v in variants], "vanilla"]))


def quantizer_kind(quantizer: str) -> str:
    """How a headline quantizer was trained: ``a posteriori``, ``end to end`` (a VQ-VAE that never sees the
    VAE), or ``a posteriori start, fine-tuned end to end`` (the hybrid)."""
    if not quantizer.startswith("VQ-VAE "):
        return "a posteriori"
    return "a posteriori start, fine-tuned end to end" if quantizer[7:] in STARTS_A_POSTERIORI else "end to end"


def best_end_to_end(table: pd.DataFrame, k: int) -> str:
    """The end-to-end VQ-VAE variant (the hybrid excluded) of lowest *validation* MSE at codebook size ``k``."""
    vq = table[table["method"].str.startswith("VQ-VAE") & (table["K"] == k)]
    val = {m[7:]: v for m, v in zip(vq["method"], vq["val_mse_per_pixel"]) if m[7:] not in STARTS_A_POSTERIORI}
    return best_on_validation(val)


def vq_summary(table: pd.DataFrame, variants: Sequence[str], small_k_variants: Sequence[str]) -> Prose:
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
    if {"vanilla", "ema_restart"} <= set(small_k_variants):
        for k in ks[1:]:
            van, ema = row("vanilla", k), row("ema_restart", k)
            lines.append(f"At K = {k}, vanilla uses {van['usage']:.1%} (test MSE {van['mse_per_pixel']:.5f}) and "
                         f"EMA with restarts {ema['usage']:.1%} (test MSE {ema['mse_per_pixel']:.5f}).")
    best = row(best_end_to_end(table, kmax))
    post = by.loc[("a posteriori kmeans", kmax)]
    lines.append(f"The best end-to-end VQ-VAE at K = {kmax}, chosen on the validation images, is "
                 f"{best.name[0][7:]} (test MSE {best['mse_per_pixel']:.5f}, {best['usage']:.1%} of codes used); "
                 f"K-means on μ, an a posteriori codebook of the GridVAE at the same rate, reaches "
                 f"{post['mse_per_pixel']:.5f}.")
    return Prose(" ".join(lines))


# --- notebook 06: the comparison -----------------------------------------------------------------------------

def code_set_name(quantizer: str, k: int) -> str:
    """The stored code maps of a quantizer of the headline: ``kmeans`` -> ``grid_kmeans_K512``,
    ``VQ-VAE ema`` -> ``vqvae_ema_K512``."""
    return f"vqvae_{quantizer[7:]}_K{k}" if quantizer.startswith("VQ-VAE ") else f"grid_{quantizer}_K{k}"


def headline(quantizers: Sequence[str], k: int, codebooks: pd.DataFrame, priors: pd.DataFrame,
             fidelity: pd.DataFrame, train_seconds: Mapping[str, float], kinds: Sequence[str]) -> pd.DataFrame:
    """One row per quantizer at codebook size ``k``: reconstruction (test MSE, usage, perplexity, rate),
    each prior's test NLL, the prior of lower *validation* NLL and its coded rate on the test maps, each prior's sample FD and IS, the FD of
    uniformly random codes, and the wall time of everything the generator needs.

    ``codebooks`` holds the rows of notebooks 02, 03 and 05 (``VAE`` is empty for VQ-VAE rows),
    ``priors`` is indexed by (codes, prior), ``fidelity`` by (generator, prior); ``train_seconds`` gives
    each quantizer's training time *without* its priors (the priors' own time is in ``priors``).
    """
    rows = []
    for quantizer in quantizers:
        vq = quantizer.startswith("VQ-VAE")
        mine = codebooks[(codebooks["method"] == quantizer) & (codebooks["K"] == k)
                         & (codebooks["VAE"].isna() if vq else codebooks["VAE"] == "GridVAE")]
        if len(mine) != 1:
            raise ValueError(f"expected one codebook row for {quantizer!r} at K = {k}, found {len(mine)}")
        q = mine.iloc[0]
        codes = code_set_name(quantizer, k)
        row = {"quantizer": quantizer, "kind": quantizer_kind(quantizer), "test MSE": q["mse_per_pixel"], "usage": q["usage"],
               "perplexity": q["perplexity"], "bits per image": q["bits_per_image"]}
        for kind in kinds:
            row[f"NLL {kind}"] = priors.loc[(codes, kind), "nll_nats_per_token"]
        row["prior (validation)"] = select_on_validation(priors.loc[codes].loc[list(kinds)], "val_nll")
        row["prior bits"] = priors.loc[(codes, row["prior (validation)"]), "bits_per_image"]
        for kind in kinds:
            row[f"FD {kind}"] = fidelity.loc[(quantizer, kind), "frechet_distance"]
            row[f"IS {kind}"] = fidelity.loc[(quantizer, kind), "inception_score"]
        row["FD uniform codes"] = fidelity.loc[(quantizer, "uniform codes"), "frechet_distance"]
        row["wall time (s)"] = train_seconds[quantizer] + sum(priors.loc[(codes, kind), "train_seconds"]
                                                              for kind in kinds)
        rows.append(row)
    table = pd.DataFrame(rows)
    if not table.notna().all().all():
        raise ValueError("every cell of the headline table must be filled")
    return table


def quantizer_train_seconds(quantizers: Sequence[str], k: int, codebooks: pd.DataFrame, grid_vae_seconds: float,
                            vqvae_seconds: Mapping[str, float]) -> dict[str, float]:
    """Training time of what each quantizer needs, priors aside: the GridVAE plus the codebook's fit for
    an a posteriori codebook; the VQ-VAE's training, plus the GridVAE and the geodesic codebook it starts
    from for the hybrid."""
    def fit(method: str) -> float:
        sel = codebooks[(codebooks["method"] == method) & (codebooks["K"] == k) & (codebooks["VAE"] == "GridVAE")]
        return float(sel["fit_seconds"].iloc[0])

    out = {}
    for q in quantizers:
        if q.startswith("VQ-VAE "):
            out[q] = vqvae_seconds[q[7:]] + (grid_vae_seconds + fit("geodesic") if q == "VQ-VAE hybrid" else 0.0)
        else:
            out[q] = grid_vae_seconds + fit(q)
    return out


def headline_view(table: pd.DataFrame):
    """The headline table as the book shows it."""
    fmt = {c: "{:.3f}" for c in table.columns if c.startswith(("NLL", "IS"))}
    fmt.update({c: "{:.2f}" for c in table.columns if c.startswith("FD")})
    fmt.update({"test MSE": "{:.5f}", "usage": "{:.3f}", "perplexity": "{:.1f}", "bits per image": "{:.0f}",
                "prior bits": "{:.0f}", "wall time (s)": "{:.0f}"})
    return styled(table, fmt)


def fidelity_prose(table: pd.DataFrame, floor_fd: float, floor_is: float) -> Prose:
    """How far the generators' samples are from real images: each quantizer's FD and IS with the prior chosen
    on validation, against the real-data floor."""
    h = table.set_index("quantizer")
    fd = {q: h.loc[q, f"FD {h.loc[q, 'prior (validation)']}"] for q in h.index}
    is_ = {q: h.loc[q, f"IS {h.loc[q, 'prior (validation)']}"] for q in h.index}
    best = min(fd, key=fd.__getitem__)
    return Prose(f"With each code set's prior chosen on validation, the samples' Fréchet distance runs from "
                 f"{min(fd.values()):.1f} ({best}) to {max(fd.values()):.1f}, {min(fd.values()) / floor_fd:.0f} to "
                 f"{max(fd.values()) / floor_fd:.0f} times that of real training images ({floor_fd:.2f}); the "
                 f"Inception Score runs from {min(is_.values()):.2f} to {max(is_.values()):.2f} (real images "
                 f"{floor_is:.2f}).")


def studies_table(reported: Iterable[Mapping[str, Any]], codebooks: pd.DataFrame, priors: pd.DataFrame) -> pd.DataFrame:
    """Each earlier study's reported number beside our measurement of the same quantity (None: not run).

    Each entry's ``ours`` key is ``(source, VAE or None, method, K, metric)``, source ``quantizer`` (rows
    of ``codebooks``) or ``prior`` (``priors`` indexed by (codes, prior), ``method`` the code set).
    """
    def ours(key: tuple) -> float | None:
        source, vae, method, k, metric = key
        if source == "prior":
            return float(priors.loc[(method, k), metric]) if (method, k) in priors.index else None
        sel = codebooks[(codebooks["method"] == method) & (codebooks["K"] == k)
                        & (codebooks["VAE"].isna() if vae is None else codebooks["VAE"] == vae)]
        return float(sel[metric].iloc[0]) if len(sel) else None

    table = pd.DataFrame([{**{k: v for k, v in r.items() if k != "ours"}, "ours (test set)": ours(r["ours"])}
                          for r in reported])
    return table[["study", "quantity", "setting", "reported", "their data", "ours (test set)", "flaw"]]


def sizes_table(cfg: Any, n_samples: int) -> pd.DataFrame:
    """The models and budgets of a profile, one line each, for the method chapter."""
    f, g, q, v, p, c = cfg.flat_vae, cfg.grid_vae, cfg.quantize, cfg.vqvae, cfg.prior, cfg.comparison
    sizes = {
        "FlatVAE": f"convolutions {f.channels}, latent {f.latent_dim} in {f.n_chunks} chunks, beta {f.beta:g}, "
                   f"at most {f.max_epochs} epochs",
        "GridVAE": f"convolutions {g.channels}, 7x7x{g.latent_dim} latent, beta {g.beta:g}, at most {g.max_epochs} epochs",
        "K-means / W2": f"K in {q.ks}, at most {q.kmeans_max_iter} Lloyd iterations",
        "geodesic": f"{q.n_landmarks:,} landmarks, k = {q.knn}, {q.repair} repair, {q.backend}, {q.assignment} "
                    f"assignment over {q.assign_neighbours} landmarks",
        "VQ-VAE": f"K in {v.ks}, variants {', '.join(v.variants)} (and {', '.join(v.small_k_variants)} at the "
                  f"smaller K), at most {v.max_epochs} epochs",
        "PixelCNN": f"{p.pixelcnn_layers} gated layers, {p.pixelcnn_channels} channels, at most {p.max_epochs} epoch(s)",
        "Transformer": f"{p.transformer_layers} blocks, width {p.transformer_dim}, {p.transformer_heads} heads, "
                       f"at most {p.max_epochs} epoch(s)",
        "classifier": f"LeNet, at most {c.classifier_max_epochs} epochs; {n_samples:,} samples per generator",
        "stopping rule": f"every training stops after {cfg.training.patience} epochs without a relative validation "
                         f"improvement of {cfg.training.min_delta:.1%}, keeping the best weights",
        "decoder adaptation": f"at most {c.adapt_max_epochs} epochs, learning rate {c.adapt_lr:g}",
    }
    return pd.Series(sizes, name=f"profile {cfg.profile}").to_frame()


def records(df: pd.DataFrame) -> list[dict]:
    """Rows of ``df`` for a results file, missing values as ``None`` (JSON ``null``)."""
    return df.astype(object).where(df.notna(), None).to_dict(orient="records")


# --- notebook 07: decoder-aware codebooks ---------------------------------------------------------------------

def metric_summary(metrics: Mapping[str, Any]) -> pd.DataFrame:
    """One row per VAE: how its mean pullback metric was estimated, and how anisotropic it is (the share
    of the trace in the largest eigenvalue, averaged over positions; the condition number of the mean over
    positions)."""
    rows = {}
    for name, m in metrics.items():
        eig = np.linalg.eigvalsh(m.metrics)                      # (P, d), ascending
        overall = np.linalg.eigvalsh(m.metrics.mean(0))
        rows[name] = {"images": m.n_images, "probes per image": m.n_probes, "seconds": m.seconds,
                      "split-half difference": m.split_half_error,
                      "largest eigenvalue's share of the trace": float((eig[:, -1] / eig.sum(1)).mean()),
                      "condition number (mean metric)": float(overall[-1] / overall[0])}
    return pd.DataFrame(rows).T


def metric_view(metrics: Mapping[str, Any]):
    """:func:`metric_summary` as the book shows it."""
    return styled(metric_summary(metrics), {"images": "{:.0f}", "probes per image": "{:.0f}", "seconds": "{:.1f}",
                                            "split-half difference": "{:.3f}",
                                            "largest eigenvalue's share of the trace": "{:.3f}",
                                            "condition number (mean metric)": "{:.3g}"}, index=True)


def with_ratio_to_kmeans(rows: pd.DataFrame, kmeans_rows: pd.DataFrame) -> pd.DataFrame:
    """``rows`` with a column ``MSE / K-means`` against K-means on mu at the same VAE and K."""
    ref = kmeans_rows[kmeans_rows["method"] == "kmeans"].set_index(["VAE", "K"])["mse_per_pixel"]
    return rows.assign(**{"MSE / K-means": [r.mse_per_pixel / ref[(r.VAE, r.K)] for r in rows.itertuples()]})


def best_on_validation(val_mse: Mapping[str, float]) -> str:
    """The method with the lowest *validation* MSE. Selection sees validation numbers only: a mapping of
    method -> validation MSE, nothing else."""
    if not val_mse:
        raise ValueError("no validation MSE to select on")
    return min(val_mse, key=val_mse.__getitem__)


def pullback_verdict(rows: pd.DataFrame, kmeans_rows: pd.DataFrame, k: int) -> tuple[Prose, dict[str, float]]:
    """What the decoder's geometry buys over K-means on mu, per VAE at codebook size ``k``, and over K."""
    table = with_ratio_to_kmeans(rows, kmeans_rows)
    lines, numbers = [], {}
    for vae in dict.fromkeys(table["VAE"]):
        at_k = table[(table["VAE"] == vae) & (table["K"] == k)]
        best = at_k.loc[at_k["mse_per_pixel"].idxmin()]
        ratio = float(best["MSE / K-means"])
        word = "lower" if ratio < 1 else "higher"
        lines.append(f"On the {vae} at K = {k}, the best decoder-aware codebook ({METHOD_LABELS[best['method']]}) "
                     f"has test MSE {best['mse_per_pixel']:.5f}, {ratio:.2f} times that of K-means on μ "
                     f"({abs(1 - ratio):.0%} {word}).")
        numbers[f"{vae[:4].lower()}_pullback_ratio"] = ratio
        every = table[table["VAE"] == vae].groupby("K")["MSE / K-means"].min()
        lines.append(f"Over every K the best decoder-aware ratio to K-means runs from {every.min():.2f} to "
                     f"{every.max():.2f}.")
        mine = table[table["VAE"] == vae].pivot_table(index="K", columns="method", values="mse_per_pixel")
        if {"pullback_geodesic", "pullback_mean"} <= set(mine.columns):
            geo = mine["pullback_geodesic"] / mine["pullback_mean"]
            better = int((geo < 1).sum())
            where = ("better at every K" if better == len(geo) else "worse at every K" if better == 0
                     else f"better at {better} of {len(geo)} K")
            lines.append(f"Graph geodesics under the mean metric reach {_span(geo)} times the MSE of straight lines "
                         f"in it (K-means under the same metric): they are {where}.")
            numbers[f"{vae[:4].lower()}_geodesic_over_straight_max"] = float(geo.max())
        if {"pullback_vector", "pullback_position"} <= set(mine.columns):
            own = mine["pullback_vector"] / mine["pullback_position"]
            better = int((own < 1).sum())
            where = ("lower at every K" if better == len(own) else "higher at every K" if better == 0
                     else f"lower at {better} of {len(own)} K")
            lines.append(f"Every vector's own metric, at fit and at encoding, gives {_span(own)} times the MSE of "
                         f"one mean metric per position: {where}.")
            numbers[f"{vae[:4].lower()}_vector_over_position_max"] = float(own.max())
    return Prose(" ".join(lines)), numbers


def linearisation_summary(lin: pd.DataFrame) -> Prose:
    """How far the first-order prediction is from the measured quantization error, per codebook."""
    parts = [f"{r['codebook']}: {r['predicted / measured']:.2f}" for r in lin.to_dict("records")]
    spread = lin["predicted / measured"]
    return Prose(f"The first-order prediction is {spread.min():.2f} to {spread.max():.2f} times the measured "
                 "squared error between the quantized and the continuous decoded images (" + "; ".join(parts) + "). "
                 "It sums each vector's error alone, so what it leaves out is the vectors' interaction through "
                 "the decoder and the curvature beyond first order.")


# --- the verdict of record (notebook 06): selection on validation, equal coded rate -------------------------

def select_on_validation(scores: pd.DataFrame | Mapping[str, Mapping[str, float]], column: str) -> str:
    """The row (index label) of lowest ``column``, where ``column`` must be a validation metric (its name
    starts with ``val``): selection cannot be made on test numbers."""
    if not str(column).startswith("val"):
        raise ValueError(f"parameter 'column' is {column!r}; allowed: a validation metric (a name starting "
                         f"with 'val'): the book selects on validation numbers only")
    table = scores if isinstance(scores, pd.DataFrame) else pd.DataFrame(scores).T
    values = table[column].dropna()
    if not len(values):
        raise ValueError(f"no {column!r} to select on")
    return values.idxmin()


def selected_priors(priors: pd.DataFrame, kinds: Sequence[str]) -> pd.DataFrame:
    """For every code set (``priors`` indexed by (codes, prior), with ``val_nll``), the prior of lowest
    validation NLL, and that prior's *test* numbers: the coded rate of the code set."""
    rows = []
    for codes in dict.fromkeys(priors.index.get_level_values(0)):
        mine = priors.loc[codes]
        mine = mine[mine.index.isin(kinds)]
        if not len(mine):
            continue
        best = select_on_validation(mine, "val_nll")
        rows.append({"codes": codes, "prior": best, "val_nll": mine.loc[best, "val_nll"],
                     "nll_nats_per_token": mine.loc[best, "nll_nats_per_token"],
                     "coded_bits_per_image": mine.loc[best, "bits_per_image"]})
    return pd.DataFrame(rows).set_index("codes")


def mse_at_rate(rates: Sequence[float], mses: Sequence[float], rate: float) -> float | None:
    """A method's MSE at ``rate`` bits per image, read off its rate-distortion curve (one point per K) by
    linear interpolation of log MSE against log rate; ``None`` outside the curve's span (no extrapolation)."""
    r, m = np.log(np.asarray(rates, float)), np.log(np.asarray(mses, float))
    order = np.argsort(r)
    r, m = r[order], m[order]
    x = np.log(rate)
    if not len(r) or x < r[0] - 1e-12 or x > r[-1] + 1e-12:
        return None
    if len(r) == 1:
        return float(np.exp(m[0]))
    return float(np.exp(np.interp(x, r, m)))


def equal_rate_comparison(curves: Mapping[str, pd.DataFrame], a: str, b: str, rate_column: str
                          ) -> dict[str, Any]:
    """Methods ``a`` and ``b`` compared at one rate where both curves are defined: the geometric middle of
    the overlap of their rate spans (``rate_column``: ``bits_per_image`` or ``coded_bits_per_image``).
    Every method of ``curves`` (each a frame with the rate column and ``mse_per_pixel``, one row per K)
    whose span covers that rate is ranked there too. Returns ``rate`` None when the spans do not overlap."""
    def span(name: str) -> tuple[float, float]:
        c = curves[name][rate_column]
        return float(c.min()), float(c.max())

    lo, hi = max(span(a)[0], span(b)[0]), min(span(a)[1], span(b)[1])
    out: dict[str, Any] = {"rate_column": rate_column, "a": a, "b": b, "span_a": span(a), "span_b": span(b)}
    if lo > hi:
        return {**out, "rate": None, "mse_a": None, "mse_b": None, "ratio": None, "ranking": []}
    rate = float(np.sqrt(lo * hi))
    at = {n: mse_at_rate(c[rate_column], c["mse_per_pixel"], rate) for n, c in curves.items()}
    at = {n: v for n, v in at.items() if v is not None}
    return {**out, "rate": rate, "mse_a": at[a], "mse_b": at[b], "ratio": at[a] / at[b],
            "ranking": sorted(at, key=at.__getitem__), "mse_at_rate": at}


def verdict_numbers(codebooks: pd.DataFrame, priors: pd.DataFrame, adaptation: pd.DataFrame, kinds: Sequence[str],
                    k: int) -> dict[str, Any]:
    """The verdict of record (``metrics.verdict`` of ``06_comparison.json``).

    ``codebooks``: one row per quantizer (``quantizer``: an a posteriori method of the GridVAE or
    ``VQ-VAE <variant>``) and K, with ``mse_per_pixel`` (test), ``val_mse_per_pixel``, ``bits_per_image``;
    ``priors`` indexed by (codes, prior) with ``val_nll``; ``adaptation`` the rows of
    :func:`~geohelpers.pipeline.adaptation_rows`. Selection (best a posteriori codebook, best end-to-end
    VQ-VAE, each code set's prior) uses validation numbers only; the test numbers are reported after.
    """
    kinds_of = codebooks["quantizer"].map(quantizer_kind)
    at_k = codebooks[codebooks["K"] == k].set_index("quantizer")
    post = at_k[kinds_of[codebooks["K"] == k].values == "a posteriori"]
    e2e = at_k[kinds_of[codebooks["K"] == k].values == "end to end"]
    hybrid = at_k[kinds_of[codebooks["K"] == k].values == "a posteriori start, fine-tuned end to end"]
    best_post = select_on_validation(post, "val_mse_per_pixel")
    best_e2e = select_on_validation(e2e, "val_mse_per_pixel")
    chosen = selected_priors(priors, kinds)
    rated = codebooks.assign(codes=[code_set_name(q, kk) for q, kk in zip(codebooks["quantizer"], codebooks["K"])])
    rated = rated.join(chosen[["coded_bits_per_image", "prior"]], on="codes")
    curves = {q: g.dropna(subset=["coded_bits_per_image"]) for q, g in rated.groupby("quantizer")}
    out: dict[str, Any] = {
        "selected_on": "validation", "k": k, "best_a_posteriori": best_post, "best_end_to_end": best_e2e,
        "validation_mse": {q: float(v) for q, v in at_k["val_mse_per_pixel"].items()},
        "test_mse": {q: float(v) for q, v in at_k["mse_per_pixel"].items()},
        "mse_ratio_a_posteriori_over_end_to_end": float(post.loc[best_post, "mse_per_pixel"]
                                                         / e2e.loc[best_e2e, "mse_per_pixel"]),
        "selected_prior": {c: r["prior"] for c, r in chosen.iterrows()},
        "coded_bits_per_image": {c: float(r["coded_bits_per_image"]) for c, r in chosen.iterrows()},
        "fixed_rate_ranking": list(at_k.sort_values("mse_per_pixel").index),
    }
    if len(hybrid):
        out["mse_ratio_a_posteriori_over_hybrid"] = float(post.loc[best_post, "mse_per_pixel"]
                                                          / hybrid["mse_per_pixel"].iloc[0])
    if len(adaptation):
        ad = adaptation.set_index("method")
        out["decoder_adaptation_gain"] = {m: float(v) for m, v in ad["adaptation_gain"].items()}
        out["test_mse_adapted"] = {m: float(v) for m, v in ad["test_mse_adapted"].items()}
        out["best_adapted"] = select_on_validation(ad, "val_mse_adapted")
        out["mse_ratio_adapted_over_end_to_end"] = float(ad.loc[out["best_adapted"], "test_mse_adapted"]
                                                         / e2e.loc[best_e2e, "mse_per_pixel"])
    # the end-to-end curve over K: the best end-to-end variant if it was trained at several K, else the best
    # on validation (at the largest K) among those that were
    several = [q for q in e2e.index if len(curves.get(q, [])) > 1]
    curve_e2e = best_e2e if best_e2e in several else (
        select_on_validation(e2e.loc[several], "val_mse_per_pixel") if several else best_e2e)
    out["end_to_end_curve"] = curve_e2e
    eq = {}
    for column in ("bits_per_image", "coded_bits_per_image"):
        usable = {q: c for q, c in curves.items() if len(c)}
        if best_post in usable and curve_e2e in usable:
            eq[column] = equal_rate_comparison(usable, best_post, curve_e2e, column)
    out["at_equal_coded_rate"] = eq.get("coded_bits_per_image")
    out["at_equal_fixed_rate"] = eq.get("bits_per_image")
    return out


def _versus(r: float, other: str) -> str:
    """``r`` times the MSE of ``other``, with the direction word read off the number."""
    if round(r, 2) == 1.0:
        return f"the same as that of {other} to two decimals ({r:.3f} times)"
    return f"{r:.2f} times that of {other} ({abs(1 - r):.0%} {'lower' if r < 1 else 'higher'})"


def verdict_prose(v: Mapping[str, Any]) -> Prose:
    """The book's verdict, every comparative word read off :func:`verdict_numbers`."""
    post, e2e, k = v["best_a_posteriori"], v["best_end_to_end"].removeprefix("VQ-VAE "), v["k"]
    lines = [f"Chosen on the validation images at K = {k}, the best a posteriori codebook is "
             f"{METHOD_LABELS.get(post, post)} and the best end-to-end VQ-VAE is {e2e}. On the test images, at "
             f"equal fixed-length rate, the a posteriori MSE is "
             f"{_versus(v['mse_ratio_a_posteriori_over_end_to_end'], 'the end-to-end VQ-VAE')}"]
    if "mse_ratio_a_posteriori_over_hybrid" in v:
        lines[-1] += (f", and {_versus(v['mse_ratio_a_posteriori_over_hybrid'], 'the hybrid')} (the hybrid is the "
                      "same pipeline fine-tuned end to end)")
    lines[-1] += "."
    if "decoder_adaptation_gain" in v:
        gains = v["decoder_adaptation_gain"]
        lo, hi = min(gains.values()), max(gains.values())
        span = f"{lo:.0%}" if f"{lo:.0%}" == f"{hi:.0%}" else f"{lo:.0%} to {hi:.0%}"
        word = "lowers" if hi > 0 else "raises"
        lines.append(f"Fine-tuning only the decoder on each codebook's codes (encoder, codebook and rate unchanged) "
                     f"{word} the test MSE by {span}; the best adapted codebook, chosen on validation "
                     f"({METHOD_LABELS.get(v['best_adapted'], v['best_adapted'])}), reaches "
                     f"{_versus(v['mse_ratio_adapted_over_end_to_end'], 'the end-to-end VQ-VAE')}.")
    eq = v.get("at_equal_coded_rate")
    if eq and eq.get("rate") is not None:
        other = eq["b"].removeprefix("VQ-VAE ")
        lines.append(f"At equal *coded* rate ({eq['rate']:.0f} bits per image under each code set's prior chosen on "
                     f"validation, read off each curve over K), the a posteriori MSE is "
                     f"{_versus(eq['ratio'], f'the end-to-end VQ-VAE ({other})')}.")
        fixed = [q for q in v["fixed_rate_ranking"] if q in eq["ranking"]]
        if fixed != eq["ranking"]:
            lines.append("The ranking changes with the coded rate: by fixed-length rate "
                         + " < ".join(fixed) + "; by coded rate " + " < ".join(eq["ranking"]) + " (lower MSE first).")
        else:
            lines.append("The ranking by coded rate is the ranking by fixed-length rate: " + " < ".join(fixed)
                         + " (lower MSE first).")
    elif eq is not None:
        lines.append(f"The coded-rate curves do not overlap (a posteriori {eq['span_a'][0]:.0f}-{eq['span_a'][1]:.0f} "
                     f"bits per image, end to end {eq['span_b'][0]:.0f}-{eq['span_b'][1]:.0f}): there is no comparison "
                     "at equal coded rate without extrapolating.")
    return Prose(" ".join(lines))


def front_page_findings(results: Path) -> str:
    """The README's "what it found" paragraph, generated from the figures of record in ``results``
    (``results/standard``): the fixed-rate verdict of notebook 06, its spread over the seed sweep, the
    decoder-adapted ratio, how it moves with beta, and what the record does not yet answer (the coded rate).
    A test compares it with the README, so the front page and the record cannot disagree."""
    r06 = json.loads((results / "06_comparison.json").read_text())
    v, beta = r06["metrics"]["verdict"], r06["config"]["grid_vae"]["beta"]
    s08 = json.loads((results / "08_seeds_and_beta.json").read_text())["metrics"]
    seeds = {row["quantity"]: row for row in s08["seeds"]["table"]}
    post, e2e, k = v["best_a_posteriori"], v["best_end_to_end"], v["k"]
    fixed, coded = v["at_equal_fixed_rate"], v["at_equal_coded_rate"]
    def over_seeds(key: str, label: str) -> str:  # empty when the seed sweep of record is stale or missing
        row = seeds.get(key)
        return f" ({row['mean']:.2f} ± {row['std']:.2f} over {row['n']} {label})" if row and row["n"] > 1 else ""

    betas = [r for r in s08["beta"]["ratios"] if r["method"] == post]
    ref = s08["beta"]["end_to_end_reference"]["quantizer"]
    beta_text = ", ".join(f"{r[f'MSE / {ref}']:.2f} at β = {r['beta']:g}" for r in sorted(betas, key=lambda r: r["beta"]))
    priors = [r for name in ("04_priors", "05_vqvae_baseline") if (results / f"{name}.json").exists()
              for r in json.loads((results / f"{name}.json").read_text())["metrics"].get("priors" if name[:2] == "05"
                                                                                          else "rows", [])]
    capped = sum(r.get("stop_reason") == "max_epochs" for r in priors)
    caps = f"; {capped} of the {len(priors)} priors of notebooks 04 and 05 stopped at their epoch cap" if capped else ""
    coded_text = (f"at equal *coded* rate (what a prior spends) the record holds no comparison yet: the end-to-end "
                  f"curve's coded rates ({span_text(*coded['span_b'], '{:.0f}', '-')} bits per image) do not "
                  f"overlap the a posteriori curve's ({span_text(*coded['span_a'], '{:.0f}', '-')} bits){caps}") \
        if coded["ratio"] is None else \
        (f"at an equal coded rate of {coded['rate']:.0f} bits per image the ratio is {coded['ratio']:.2f}{caps}")
    return (
        f"On the GridVAE (β = {beta:g}) at K = {k} ({fixed['rate']:.0f} bits per image at fixed length), the best a posteriori "
        f"codebook chosen on validation, **{METHOD_LABELS.get(post, post)}**, reaches a test MSE of "
        f"**{fixed['mse_a']:.5f}** against **{fixed['mse_b']:.5f}** for the best end-to-end VQ-VAE ({e2e}): "
        f"**{fixed['ratio']:.2f}x**{over_seeds('mse_ratio_a_posteriori_over_end_to_end', 'seeds')}. "
        f"K-means on μ, the usual a posteriori quantizer, reaches {v['test_mse']['kmeans']:.5f} "
        f"({v['test_mse']['kmeans'] / fixed['mse_b']:.2f}x). Fine-tuning the VAE's decoder on the frozen codes "
        f"brings the ratio to {v['mse_ratio_adapted_over_end_to_end']:.2f}"
        f"{over_seeds('mse_ratio_adapted_over_end_to_end', 'seeds')}. "
        + (f"The gap widens with β ({beta_text}), and " if len(betas) > 1 else "At other β the record holds no ratio; ")
        + f"{coded_text}."
    )
