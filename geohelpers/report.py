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
    view = pd.concat([base, wide], axis=1)[order].sort_index(level=["VAE", "K"], ascending=[False, False])
    fmt = {c: "{:.1f}" if c.endswith("perplexity") else "{:.0f}" if c.endswith("bits/image") else "{:.3f}"
           for c in order}
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
            "train_seconds"]
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
    each prior's test NLL and the coded rate of the better one, each prior's sample FD and IS, the FD of
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
        row["prior bits"] = min(priors.loc[(codes, kind), "bits_per_image"] for kind in kinds)
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


def headline_verdict(table: pd.DataFrame, floor_fd: float, kinds: Sequence[str]) -> tuple[Prose, dict[str, float]]:
    """The verdict at equal rate from the headline table, and the ratios the book quotes.

    The rows split by :func:`quantizer_kind`: the best a posteriori codebook is set against the best
    *end-to-end* VQ-VAE (one that never sees the VAE), and the hybrid, which fine-tunes the a posteriori
    pipeline end to end, stands on its own. Direction words follow the numbers.
    """
    h = table.set_index("quantizer")
    kind = pd.Series({q: quantizer_kind(q) for q in h.index})
    post = h[kind == "a posteriori"]
    e2e = h[kind == "end to end"]
    hybrid = h[kind == "a posteriori start, fine-tuned end to end"]
    best_post = post["test MSE"].idxmin()
    mse = post.loc[best_post, "test MSE"]

    def versus(other: float) -> str:
        r = mse / other
        if round(r, 2) == 1.0:
            return f"the same to two decimals (the a posteriori MSE is {r:.3f} times it)"
        return f"{r:.2f} times lower" if r > 1 else f"{1 / r:.2f} times higher"

    lines = [f"At {int(h['bits per image'].iloc[0])} bits per image, the best a posteriori codebook ({best_post}) "
             f"reconstructs the test images with MSE {mse:.5f}."]
    numbers: dict[str, float] = {}
    if len(e2e):
        best_e2e = e2e["test MSE"].idxmin()
        lines.append(f"The end-to-end VQ-VAE of this table ({best_e2e[7:]}, which never sees the VAE) reaches "
                     f"{e2e.loc[best_e2e, 'test MSE']:.5f}, {versus(e2e.loc[best_e2e, 'test MSE'])}.")
        numbers["post_over_vq_mse"] = float(mse / e2e.loc[best_e2e, "test MSE"])
    if len(hybrid):
        hyb = hybrid["test MSE"].iloc[0]
        lines.append(f"The hybrid, the GridVAE and its geodesic codebook fine-tuned end to end, reaches {hyb:.5f}, "
                     f"{versus(hyb)}.")
        numbers["post_over_hybrid_mse"] = float(mse / hyb)
    if {"kmeans", "w2", "geodesic"} <= set(post.index):
        lines.append(f"The geodesic codebook's MSE is {h.loc['geodesic', 'test MSE'] / h.loc['kmeans', 'test MSE']:.2f} "
                     f"times that of K-means on μ, W2's {h.loc['w2', 'test MSE'] / h.loc['kmeans', 'test MSE']:.2f} times.")
        numbers["geo_over_kmeans_mse"] = float(h.loc["geodesic", "test MSE"] / h.loc["kmeans", "test MSE"])
    best_fd = h[[f"FD {k}" for k in kinds]].min(axis=1)
    fd_line = (f"The lowest Fréchet distance of the samples is {best_fd.min():.2f} ({best_fd.idxmin()}), against "
               f"{floor_fd:.2f} for real training images")
    if {"kmeans", "geodesic"} <= set(post.index):
        fd_line += f"; the geodesic codebook's best is {best_fd['geodesic']:.2f}, K-means' {best_fd['kmeans']:.2f}"
    lines.append(fd_line + ".")
    return Prose(" ".join(lines)), numbers


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
                   f"{f.epochs} epochs",
        "GridVAE": f"convolutions {g.channels}, 7x7x{g.latent_dim} latent, beta {g.beta:g}, {g.epochs} epochs",
        "K-means / W2": f"K in {q.ks}, at most {q.kmeans_max_iter} Lloyd iterations",
        "geodesic": f"{q.n_landmarks:,} landmarks, k = {q.knn}, {q.repair} repair, {q.backend}, {q.assignment} "
                    f"assignment over {q.assign_neighbours} landmarks",
        "VQ-VAE": f"K in {v.ks}, variants {', '.join(v.variants)} (and {', '.join(v.small_k_variants)} at the "
                  f"smaller K), {v.epochs} epochs",
        "PixelCNN": f"{p.pixelcnn_layers} gated layers, {p.pixelcnn_channels} channels, {p.epochs} epoch(s)",
        "Transformer": f"{p.transformer_layers} blocks, width {p.transformer_dim}, {p.transformer_heads} heads, "
                       f"{p.epochs} epoch(s)",
        "classifier": f"LeNet, {c.classifier_epochs} epochs; {n_samples:,} samples per generator",
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
    return Prose(" ".join(lines)), numbers


def linearisation_summary(lin: pd.DataFrame) -> Prose:
    """How far the first-order prediction is from the measured quantization error, per codebook."""
    parts = [f"{r['codebook']}: {r['predicted / measured']:.2f}" for r in lin.to_dict("records")]
    spread = lin["predicted / measured"]
    return Prose(f"The first-order prediction is {spread.min():.2f} to {spread.max():.2f} times the measured "
                 "squared error between the quantized and the continuous decoded images (" + "; ".join(parts) + "). "
                 "It sums each vector's error alone, so what it leaves out is the vectors' interaction through "
                 "the decoder and the curvature beyond first order.")
