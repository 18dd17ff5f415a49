"""What a reader sees of a table: reader-facing column names with units, integers as integers, numbers
to the digits that matter (:func:`styled`), and glue for the book's pages (:func:`glue_all`). No decision
here: the rows come from :mod:`geohelpers.selection` or straight from the results.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any, Iterable, Mapping, Sequence

import numpy as np
import pandas as pd

#: Display formats of the columns that recur across notebooks.
FORMATS: dict[str, str] = {
    "mse_per_pixel": "{:.5f}", "test MSE": "{:.5f}", "usage": "{:.3f}", "test usage": "{:.3f}",
    "perplexity": "{:.1f}", "bits_per_image": "{:.0f}", "fit_seconds": "{:.1f}", "train_seconds": "{:.0f}",
    "seconds": "{:.2f}",
}


def glue_all(values: Mapping[str, Any]) -> None:
    """Glue every ``key -> value`` for the book's pages (myst-nb's ``glue(..., display=False)``)."""
    from myst_nb import glue

    for key, value in values.items():
        glue(key, value, display=False)


def glue_sizes(mnist: Any) -> None:
    """Glue the numbers of images this build uses, ``n_train``, ``n_val`` and ``n_test``
    (:meth:`geohelpers.data.MNIST.sizes`), so that no page types "10,000 test images" where a profile uses
    fewer."""
    glue_all({f"n_{part}": int(n) for part, n in mnist.sizes().items()})


#: Reader-facing names, with units, of the identifiers that results rows use as column names.
COLUMN_LABELS: dict[str, str] = {
    "n_images": "images", "neg_elbo_nats": "−ELBO (nats)", "recon_nll_nats": "reconstruction NLL (nats)",
    "kl_nats": "KL (nats)", "mse_per_pixel": "test MSE", "val_mse_per_pixel": "validation MSE",
    "active_units": "active units", "latent_units": "latent units", "inactive_units": "inactive units",
    "active_mu_std": "std of μ (active)", "active_mu_abs_mean": "mean |μ| (active)",
    "active_sigma_mean": "mean σ (active)", "inactive_mu_std": "std of μ (inactive)",
    "inactive_mu_abs_mean": "mean |μ| (inactive)", "inactive_sigma_mean": "mean σ (inactive)",
    "usage": "code usage", "dead": "dead codes", "perplexity": "codebook perplexity",
    "bits_per_image": "fixed-length bits per image", "coded_bits_per_image": "coded bits per image",
    "fixed_bits": "fixed-length bits per image", "coded_bits": "coded bits per image", "curve": "curve",
    "val_fd": "FD to validation images", "test_fd": "FD to test images", "reconstruction_fd": "reconstructions' FD",
    "temperature": "temperature (validation)",
    "fit_seconds": "fit (s)", "train_seconds": "training (s)", "lloyd_iterations": "Lloyd iterations",
    "components_before_repair": "graph components before repair",
    "nll_nats_per_token": "test NLL (nats per code)", "val_nll": "validation NLL (nats per code)",
    "unigram_nll": "context-free NLL (nats per code)", "val_mse": "validation MSE", "test_mse": "test MSE",
    "val_mse_adapted": "validation MSE, adapted decoder", "test_mse_adapted": "test MSE, adapted decoder",
    "adaptation_gain": "MSE drop from adaptation", "epochs": "epochs", "stop_reason": "stopped by",
    "continuous_mse": "continuous VAE's test MSE", "frechet_distance": "FD", "inception_score": "IS",
    "class_tv_from_uniform": "classes' TV distance from uniform", "wall_time_s": "wall time (s)",
    "mu_sq_error": "squared error in μ", "sigma_sq_error": "squared error in σ",
    "vectors": "vectors", "landmarks": "landmarks", "repeated_draws": "repeated landmark draws",
    "edges": "graph edges", "edges_added": "edges added by the repair",
    "unreachable_pairs_filled": "unreachable pairs filled", "geodesic_ratio_median": "geodesic / straight distance (median)",
    "geodesic_ratio_p90": "geodesic / straight distance (90th percentile)",
}


def label(name: Any) -> Any:
    """The reader-facing name of a column identifier (:data:`COLUMN_LABELS`); other names as they are."""
    return COLUMN_LABELS.get(name, name) if isinstance(name, str) else name


def _is_whole(column: pd.Series) -> bool:
    values = pd.to_numeric(column, errors="coerce").dropna()
    return pd.api.types.is_numeric_dtype(column) and not pd.api.types.is_bool_dtype(column) and \
        bool(len(values)) and bool(np.all(np.mod(values, 1) == 0))


def styled(df: pd.DataFrame, formats: Mapping[str, str] | None = None, index: bool = False,
           na_rep: str = "–", precision: int | None = None):
    """``df`` as a ``Styler`` a reader reads: columns named by :data:`COLUMN_LABELS` (units included; the
    index too when it is shown), whole-number columns as integers, and the other numbers with ``formats``
    when given for a column, else ``precision`` digits after the point when given, else the book's format of
    that column (:data:`FORMATS`), else four significant digits; missing values as ``na_rep``; no index
    unless asked. A table with a wall-time column (a label with "(s)") carries :func:`pace_caption`."""
    df = df.infer_objects()  # numbers held in object columns (a transposed table) format as numbers
    explicit = {**FORMATS, **(formats or {})} if precision is None else dict(formats or {})
    fmt: dict[Any, str] = {}
    for column in df.columns:
        if column in explicit:
            fmt[column] = explicit[column]
        elif _is_whole(df[column]):
            fmt[column] = "{:,.0f}"
        elif pd.api.types.is_float_dtype(df[column]):
            fmt[column] = f"{{:.{precision}f}}" if precision is not None else "{:.4g}"
    view = df.style.format(fmt, na_rep=na_rep)
    labels = [label(c) for c in df.columns]
    view = view.relabel_index(labels, axis="columns")
    if any("(s)" in str(name) for name in labels):  # a wall time is never shown without the machine's pace
        view = view.set_caption(pace_caption())
    if not index:
        return view.hide(axis="index")
    if df.index.nlevels == 1:
        view = view.relabel_index([label(i) for i in df.index], axis="index")
    return view


@lru_cache(maxsize=1)
def reference_seconds() -> float:
    """The reference workload of the run that timed this notebook's trainings: the runner's (passed in
    ``$GEOVQ_REFERENCE_WORKLOAD_S``), else timed here once (50 standard GridVAE steps on one thread)."""
    import os

    from .train import REFERENCE_ENV, reference_workload

    given = os.environ.get(REFERENCE_ENV)
    return float(given) if given else reference_workload()


def pace_caption() -> str:
    """The caption of a table of wall times: the machine's pace when they were measured."""
    return (f"Wall times on this machine; its reference workload (50 standard GridVAE training steps on one "
            f"thread) took {reference_seconds():.2f} s in the run that timed them. Compare times only with it.")


def prior_rows(rows: Sequence[Mapping[str, Any]]) -> pd.DataFrame:
    """Prior rows of :func:`geohelpers.evaluation.train_priors` with ``VAE`` and ``method`` parsed from the code set."""
    table = pd.DataFrame(rows)
    table[["VAE", "method"]] = table["codes"].str.extract(r"^(\w+?)_(\w+)_K\d+$").to_numpy()
    table["VAE"] = table["VAE"].map({"grid": "GridVAE", "flat": "FlatVAE"})
    return table


def _entropy(values: pd.Series) -> pd.Series:
    """An entropy as printed: H = -sum p log p >= 0, so the rounding error of a code set with one code
    (-1e-17 nats, printed "-0.000") is shown as the 0 it is."""
    return values.abs()


def prior_table(table: pd.DataFrame, kinds: Sequence[str]):
    """One row per (code set, prior), the priors in the order of ``kinds``: the code set's test entropy and
    context-free NLL beside the prior's test NLL, perplexity, bits per image and epochs (what stopped it)."""
    view = table.assign(prior=pd.Categorical(table["prior"], categories=list(kinds), ordered=True),
                        test_entropy_nats=_entropy(table["test_entropy_nats"]))
    if "stop_reason" in view:
        view = view.assign(stopped=[f"{e} ({r})" for e, r in zip(view["epochs"], view["stop_reason"])])
    cols = ["test_entropy_nats", "unigram_nll", "nll_nats_per_token", "bits_per_image"]  # perplexity = exp(NLL)
    cols += ["stopped"] if "stopped" in view else []
    view = view.set_index(["VAE", "method", "K", "prior"])[cols].sort_index(
        level=["VAE", "K", "method", "prior"], ascending=[False, False, True, True])
    view = view.rename(columns={"test_entropy_nats": "code entropy (test, nats)",
                                "unigram_nll": "context-free NLL (nats per code)",
                                "bits_per_image": "coded_bits_per_image", "stopped": "epochs (stopped by)"})
    return styled(view, {"code entropy (test, nats)": "{:.3f}", "context-free NLL (nats per code)": "{:.3f}",
                         "nll_nats_per_token": "{:.3f}", "coded_bits_per_image": "{:.0f}"}, index=True)


def prior_bars(table: pd.DataFrame) -> pd.DataFrame:
    """Long frame for :func:`geohelpers.plots.prior_nll_bars`: every prior and the context-free baseline."""
    bars = table.assign(codebook=table["method"] + " K=" + table["K"].astype(str))
    long = pd.concat([
        bars.drop_duplicates("codes").assign(model="context-free", **{"nats per token": lambda d: d["unigram_nll"]}),
        bars.assign(model=bars["prior"], **{"nats per token": bars["nll_nats_per_token"]}),
    ])
    return long[["VAE", "codebook", "model", "nats per token"]]


def vq_table(table: pd.DataFrame):
    """VQ-VAE variants and the a posteriori codebooks at the same K, by K (largest first) and test MSE (the
    fixed-length rate is 49 log2 K bits per image, so K stands for it). The hybrid's epochs count the
    GridVAE's it starts from, and its method names that start."""
    stopped = []
    for r in table.itertuples():
        text = f"{r.epochs} ({r.stop_reason})" if r.stop_reason else ""
        with_start = getattr(r, "epochs_with_start", None)
        if text and with_start is not None and with_start == with_start:
            text += f" + GridVAE's {int(with_start - r.epochs)} = {int(with_start)}"
        stopped.append(text)
    view = table.assign(stopped=stopped)
    if "start" in view:
        view = view.assign(method=[m if not isinstance(s, str) else f"{m} (from {s})"
                                   for m, s in zip(view["method"], view["start"])])
    cols = ["method", "K", "mse_per_pixel", "val_mse_per_pixel", "usage", "perplexity", "stopped", "train_seconds"]
    return styled(view[cols].sort_values(["K", "mse_per_pixel"], ascending=[False, True])
                  .rename(columns={"stopped": "epochs (stopped by)"}), {"val_mse_per_pixel": "{:.5f}"})


def prior_code_table(table: pd.DataFrame):
    """Priors over code sets, one row each: test NLL and the coded bits per image it gives, beside the
    context-free baselines (unigram NLL, test code entropy)."""
    view = table.assign(test_entropy_nats=_entropy(table["test_entropy_nats"])).rename(columns={
                        "bits_per_image": "coded_bits_per_image", "test_entropy_nats": "code entropy (test, nats)",
                                 "unigram_nll": "context-free NLL (nats per code)"})
    cols = ["codes", "prior", "nll_nats_per_token", "coded_bits_per_image", "context-free NLL (nats per code)",
            "code entropy (test, nats)"]
    return styled(view[cols], {"nll_nats_per_token": "{:.3f}", "coded_bits_per_image": "{:.0f}",
                               "context-free NLL (nats per code)": "{:.3f}", "code entropy (test, nats)": "{:.3f}"})


def adaptation_view(rows: pd.DataFrame):
    """Decoder adaptation, one row per codebook: the test MSE with the VAE's decoder and with the adapted one,
    the relative drop, the validation MSE that chose the best adapted codebook, and the epochs it trained."""
    view = rows.assign(stopped=[f"{e} ({r})" for e, r in zip(rows["epochs"], rows["stop_reason"])])
    cols = ["method", "K", "test_mse", "test_mse_adapted", "adaptation_gain", "val_mse_adapted", "stopped"]
    return styled(view[cols].rename(columns={"stopped": "epochs (stopped by)"}),
                  {c: "{:.5f}" for c in ("test_mse", "test_mse_adapted", "val_mse_adapted")} | {"adaptation_gain": "{:.1%}"})


#: The headline's columns about each quantizer's codes and rate (:func:`headline_view`); the others are its
#: priors and samples (:func:`headline_samples_view`). Two tables, so that each fits the page.
HEADLINE_CODES = ("quantizer", "kind", "test MSE", "usage", "perplexity", "bits per image", "prior (validation)",
                  "prior bits", "wall time (s)")


def _headline_formats(table: pd.DataFrame) -> dict[str, str]:
    fmt = {c: "{:.3f}" for c in table.columns if c.startswith(("NLL", "IS"))}
    fmt.update({c: "{:.2f}" for c in table.columns if c.startswith("FD")})
    fmt.update({"test MSE": "{:.5f}", "usage": "{:.3f}", "perplexity": "{:.1f}", "bits per image": "{:.0f}",
                "prior bits": "{:.0f}", "wall time (s)": "{:.0f}"})
    return fmt


def headline_view(table: pd.DataFrame):
    """The headline table's first half as the book shows it: each quantizer's codes, their fixed-length and
    coded rate, and its training time."""
    cols = [c for c in HEADLINE_CODES if c in table.columns]
    return styled(table[cols], _headline_formats(table))


def headline_samples_view(table: pd.DataFrame):
    """The headline table's second half: each quantizer's priors (test NLL) and their samples (FD, IS)."""
    cols = ["quantizer"] + [c for c in table.columns if c not in HEADLINE_CODES]
    return styled(table[cols], _headline_formats(table))


def studies_table(reported: Iterable[Mapping[str, Any]], codebooks: pd.DataFrame, priors: pd.DataFrame) -> pd.DataFrame:
    """Each earlier study's reported number beside our measurement of the same quantity (None: not run),
    and, where this profile does not run the study's setting, our measurement in the nearest setting it
    runs (the entry's ``nearest`` key), with what that setting is.

    Each entry's ``ours`` key is ``(source, VAE or None, method, K, metric)``, source ``quantizer`` (rows
    of ``codebooks``) or ``prior`` (``priors`` indexed by (codes, prior), ``method`` the code set); in a
    ``nearest`` key the method :data:`geohelpers.studies.END_TO_END` stands for the end-to-end VQ-VAE
    variant chosen on validation at that K (:func:`geohelpers.selection.best_end_to_end`).
    """
    from .selection import best_end_to_end
    from .studies import END_TO_END

    def ours(key: tuple) -> float | None:
        source, vae, method, k, metric = key
        if source == "prior":
            return float(priors.loc[(method, k), metric]) if (method, k) in priors.index else None
        sel = codebooks[(codebooks["method"] == method) & (codebooks["K"] == k)
                        & (codebooks["VAE"].isna() if vae is None else codebooks["VAE"] == vae)]
        return float(sel[metric].iloc[0]) if len(sel) else None

    def nearest(entry: Mapping[str, Any], exact: float | None) -> str | None:
        if exact is not None or "nearest" not in entry:
            return None
        source, vae, method, k, metric = entry["nearest"]
        if method == END_TO_END:
            at_k = codebooks[codebooks["method"].str.startswith("VQ-VAE") & (codebooks["K"] == k)]
            if not len(at_k):
                return None
            method = f"VQ-VAE {best_end_to_end(at_k, k)}"
            what = f"{method}, K = {k} (the end-to-end variant chosen on validation at this K)"
        else:
            what = f"{method}, K = {k}"
        value = ours((source, vae, method, k, metric))
        return None if value is None else f"{value:.4g}: {what}"

    rows = []
    for r in reported:
        exact = ours(r["ours"])
        rows.append({**{k: v for k, v in r.items() if k not in ("ours", "nearest")}, "ours (test set)": exact,
                     "ours, nearest setting run": nearest(r, exact)})
    table = pd.DataFrame(rows)
    return table[["study", "quantity", "setting", "reported", "their data", "ours (test set)",
                  "ours, nearest setting run", "flaw"]]


def studies_view(table: pd.DataFrame):
    """:func:`studies_table` as the book shows it: a setting this profile does not run reads *not run*, and
    the nearest-setting column is blank where the study's own setting was run."""
    shown = table.assign(**{"ours, nearest setting run": table["ours, nearest setting run"].fillna("")})
    return styled(shown, {"reported": "{:.4g}", "ours (test set)": "{:.4g}"}, na_rep="not run")


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
        "VQ-VAE": f"variants {', '.join(v.variants)} at K = {max(v.ks)}, the one chosen on validation at every K of "
                  f"{v.ks}" + (f" (and {', '.join(v.small_k_variants)})" if v.small_k_variants else "")
                  + f", at most {v.max_epochs} epochs",
        "PixelCNN": f"{p.pixelcnn_layers} gated layers, {p.pixelcnn_channels} channels, at most {p.max_epochs} epoch(s)",
        "Transformer": f"{p.transformer_layers} blocks, width {p.transformer_dim}, {p.transformer_heads} heads, "
                       f"at most {p.max_epochs} epoch(s)",
        "classifier": f"LeNet, at most {c.classifier_max_epochs} epochs; {n_samples:,} samples per generator and "
                      f"temperature ({', '.join(f'{t:g}' for t in c.temperatures)})",
        "priors": f"both kinds compared on K-means codes at K = {max(p.ks)}, the chosen one on {', '.join(p.methods)} at "
                  f"every K of {p.ks} and on {', '.join(p.kmax_methods) or 'nothing else'} at K = {max(p.ks)}",
        "stopping rule": f"every training stops after {cfg.training.patience} epochs without a relative validation "
                         f"improvement of {cfg.training.min_delta:.1%}, keeping the best weights",
        "decoder adaptation": f"at most {c.adapt_max_epochs} epochs, learning rate {c.adapt_lr:g}",
    }
    return pd.Series(sizes, name=f"profile {cfg.profile}").to_frame()


def records(df: pd.DataFrame) -> list[dict]:
    """Rows of ``df`` for a results file, missing values as ``None`` (JSON ``null``)."""
    return df.astype(object).where(df.notna(), None).to_dict(orient="records")


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


def rd_points_view(points: pd.DataFrame):
    """The points of the rate-distortion curves: per curve and K, the fixed-length and coded rate (and the
    prior that codes it, with its epochs and what stopped it), validation and test MSE."""
    view = points.assign(prior=[f"{p} ({e}, {r})" for p, e, r in zip(points["prior"], points["prior_epochs"],
                                                                     points["prior_stop_reason"])])
    cols = ["curve", "K", "fixed_bits", "coded_bits", "val_mse", "test_mse", "prior"]
    return styled(view[cols].rename(columns={"prior": "prior (epochs, stopped by)"}),
                  {"fixed_bits": "{:.0f}", "coded_bits": "{:.1f}", "val_mse": "{:.5f}", "test_mse": "{:.5f}"})


def bd_rate_view(verdict: Mapping[str, Any]):
    """BD-rate of each a posteriori curve against the end-to-end curve, at coded and at fixed-length rate."""
    rows = [{"curve": name, "BD-rate, coded (%)": r["bd_rate_pct"],
             "BD-rate, fixed length (%)": verdict["bd_rate_fixed"][name]["bd_rate_pct"],
             "distortion overlap, coded": r["overlap"]} for name, r in verdict["bd_rate"].items()]
    return styled(pd.DataFrame(rows), {"BD-rate, coded (%)": "{:+.0f}", "BD-rate, fixed length (%)": "{:+.0f}",
                                        "distortion overlap, coded": "{:.0%}"}, na_rep="no overlap")


def samples_view(chosen: pd.DataFrame):
    """Samples along the curves, each generator at its validation-chosen temperature."""
    cols = ["curve", "K", "coded_bits", "temperature", "val_fd", "test_fd", "reconstruction_fd", "inception_score",
            "class_tv_from_uniform"]
    return styled(chosen[cols], {"coded_bits": "{:.0f}", "temperature": "{:g}", "val_fd": "{:.1f}", "test_fd": "{:.1f}",
                                 "reconstruction_fd": "{:.1f}", "inception_score": "{:.2f}",
                                 "class_tv_from_uniform": "{:.3f}"})
