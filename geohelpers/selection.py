"""The book's decisions, computed from results rows: what is chosen on the validation images, the
comparisons at equal rate, and the numbers of the verdict. No sentence and no styling here (those are
:mod:`geohelpers.prose` and :mod:`geohelpers.tables`), so a decision can be read, and tested, on its own.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd

from .artifacts import CodeSet
from .config import method_label


def mse_ratio(rows: pd.DataFrame, method: str, against: str = "kmeans") -> pd.Series:
    """Test MSE of ``method`` over that of ``against``, per (VAE, K)."""
    pivot = rows.pivot_table(index=["VAE", "K"], columns="method", values="mse_per_pixel")
    return (pivot[method] / pivot[against]).rename(f"MSE of {method_label(method)} / "
                                                     f"MSE of {method_label(against)}")


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


def code_set_name(quantizer: str, k: int) -> str:
    """The stored code maps of a quantizer of the headline: ``kmeans`` -> ``grid_kmeans_K512``,
    ``VQ-VAE ema`` -> ``vqvae_ema_K512``."""
    return CodeSet.of_quantizer(quantizer, k).name


def headline(quantizers: Sequence[str], k: int, codebooks: pd.DataFrame, priors: pd.DataFrame,
             fidelity: pd.DataFrame, train_seconds: Mapping[str, float], kinds: Sequence[str]) -> pd.DataFrame:
    """One row per quantizer at codebook size ``k``: reconstruction (test MSE, usage, perplexity, rate), the
    prior of lower *validation* NLL among those trained on its codes (of ``kinds``), its test NLL and coded
    rate on the test maps, its samples' FD and IS, the FD of uniformly random codes, and the wall time of
    everything the generator needs.

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
        trained = priors.loc[codes]
        trained = trained[trained.index.isin(list(kinds))]
        best = select_on_validation(trained, "val_nll")
        rows.append({"quantizer": quantizer, "kind": quantizer_kind(quantizer), "test MSE": q["mse_per_pixel"],
                     "usage": q["usage"], "perplexity": q["perplexity"], "bits per image": q["bits_per_image"],
                     "prior (validation)": best, "NLL": trained.loc[best, "nll_nats_per_token"],
                     "prior bits": trained.loc[best, "bits_per_image"],
                     "FD": fidelity.loc[(quantizer, best), "frechet_distance"],
                     "IS": fidelity.loc[(quantizer, best), "inception_score"],
                     "FD uniform codes": fidelity.loc[(quantizer, "uniform codes"), "frechet_distance"],
                     "wall time (s)": train_seconds[quantizer] + float(trained["train_seconds"].sum())})
    table = pd.DataFrame(rows)
    if not table.notna().all().all():
        raise ValueError("every cell of the headline table must be filled")
    return table


def quantizer_train_seconds(quantizers: Sequence[str], k: int, codebooks: pd.DataFrame, grid_vae_seconds: float,
                            vqvae_seconds: Mapping[str, float], hybrid_start: str) -> dict[str, float]:
    """Training time of what each quantizer needs, priors aside: the GridVAE plus the codebook's fit for
    an a posteriori codebook; the VQ-VAE's training, plus the GridVAE and the fit of the a posteriori
    codebook it starts from (``hybrid_start``, the one chosen on validation) for the hybrid."""
    def fit(method: str) -> float:
        sel = codebooks[(codebooks["method"] == method) & (codebooks["K"] == k) & (codebooks["VAE"] == "GridVAE")]
        return float(sel["fit_seconds"].iloc[0])

    out = {}
    for q in quantizers:
        if q.startswith("VQ-VAE "):
            out[q] = vqvae_seconds[q[7:]] + (grid_vae_seconds + fit(hybrid_start) if q == "VQ-VAE hybrid" else 0.0)
        else:
            out[q] = grid_vae_seconds + fit(q)
    return out


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


def adaptation_control(adaptation: pd.DataFrame) -> dict[str, Any]:
    """``{"decoder_adaptation_control": {...}}`` for the verdict: the decoder adaptation's control, the row of
    ``adaptation`` without a K (the GridVAE's decoder fine-tuned the same way on the continuous mu, no codes:
    :func:`geohelpers.evaluation.adaptation_along_curves`), with its test MSE before and after, its gain
    ``1 - after / before``, epochs and stop reason; and ``decoder_adaptation_gain_every_k``, each codebook's
    gain at every K of the rows (``"kmeans K=16"``); empty when the rows hold no control."""
    rows = adaptation[adaptation["K"].isna()] if "K" in adaptation else adaptation.iloc[:0]
    if rows.empty:
        return {}
    r = rows.iloc[0]
    coded = adaptation[adaptation["K"].notna()]
    return {"decoder_adaptation_control": {
        "method": str(r["method"]), "test_mse": float(r["test_mse"]), "test_mse_adapted": float(r["test_mse_adapted"]),
        "gain": float(r["adaptation_gain"]), "epochs": int(r["epochs"]), "stop_reason": str(r["stop_reason"])},
        "decoder_adaptation_gain_every_k": {f"{m} K={int(k)}": float(g) for m, k, g in
                                            zip(coded["method"], coded["K"], coded["adaptation_gain"])}}


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
    :func:`~geohelpers.evaluation.adaptation_along_curves`. Selection (best a posteriori codebook, best end-to-end
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


# --- the rate-distortion verdict: curves over K at coded rate (issue: at equal *coded* rate) ---------------

#: How two rate-distortion curves are compared (:func:`bd_rate`): the interpolation of log rate against
#: distortion, and the distortion axis.
BD_METHOD = "pchip"
BD_DISTORTION = "MSE in dB (-10 log10 MSE per pixel, images in [0, 1])"


def bd_rate(anchor_bits: Sequence[float], anchor_mse: Sequence[float], test_bits: Sequence[float],
            test_mse: Sequence[float], method: str = BD_METHOD) -> dict[str, Any]:
    """The Bjontegaard delta rate of a test curve against an anchor curve, in percent: how many more bits
    (positive) or fewer (negative) the test curve spends, on average, at equal distortion.

    With distortion :math:`D = -10 \\log_{10} \\mathrm{MSE}` (dB, higher is better) and :math:`r(D)` each
    curve's log rate interpolated piecewise-cubically in :math:`D` (``pchip``: monotone Hermite; or
    ``akima``, ``cubic``), :math:`\\Delta = \\frac{1}{D_1 - D_0}\\int_{D_0}^{D_1} (r_{test} - r_{anchor})\\,dD`
    over the overlap :math:`[D_0, D_1]` of the two curves' distortion ranges, and BD-rate
    :math:`= 100\\,(e^{\\Delta} - 1)` (the ``bjontegaard`` package, 1.3.0). A curve against itself is 0 %; a
    curve that needs twice the bits at every MSE is +100 %. ``bd_rate_pct`` is ``None`` when the ranges do
    not overlap or a curve has fewer than two points; ``overlap`` is the overlap's share of the union of
    the two ranges (the package warns below 75 %; the value is reported instead)."""
    import warnings

    import bjontegaard

    a_d, t_d = (-10 * np.log10(np.asarray(m, float)) for m in (anchor_mse, test_mse))
    a_r, t_r = np.asarray(anchor_bits, float), np.asarray(test_bits, float)
    out: dict[str, Any] = {"method": method, "distortion": BD_DISTORTION, "bd_rate_pct": None, "overlap": 0.0,
                           "n_anchor": len(a_r), "n_test": len(t_r)}
    if len(a_r) < 2 or len(t_r) < 2:
        return out
    lo, hi = max(a_d.min(), t_d.min()), min(a_d.max(), t_d.max())
    out["overlap"] = float(max(hi - lo, 0.0) / (max(a_d.max(), t_d.max()) - min(a_d.min(), t_d.min())))
    if hi <= lo:
        return out
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # the overlap is reported, not warned about
        value = bjontegaard.bd_rate(a_r, a_d, t_r, t_d, method=method, require_matching_points=False, min_overlap=0)
    out["bd_rate_pct"] = float(value) if np.isfinite(value) else None
    return out


def rd_curves(points: pd.DataFrame) -> dict[str, list[dict[str, float]]]:
    """``{curve: [{"K", "coded_bits", "fixed_bits", "test_mse"}, ...]}`` by increasing K, from one row per
    (curve, K) with those columns."""
    cols = ["K", "coded_bits", "fixed_bits", "test_mse"]
    return {str(c): [{k: (int(v) if k == "K" else float(v)) for k, v in r.items()} for r in
                     g.sort_values("K")[cols].to_dict(orient="records")]
            for c, g in points.groupby("curve", sort=False)}


def coded_rate_comparison(curves: Mapping[str, Sequence[Mapping[str, float]]], a: str, b: str,
                          quantiles: Sequence[float] = (0.25, 0.5, 0.75)) -> dict[str, Any]:
    """Curves ``a`` and ``b`` (of :func:`rd_curves`) compared at equal *coded* rate: at the rates that lie at
    ``quantiles`` of the overlap of their coded-rate spans (geometrically, in log rate), each curve's test
    MSE read off by linear interpolation of log MSE in log rate (:func:`mse_at_rate`; never extrapolated),
    and their ratio. The middle rate also ranks every curve whose span covers it. ``rate`` and ``rates``
    are ``None`` only when the spans do not overlap."""
    def span(name: str) -> tuple[float, float]:
        bits = [p["coded_bits"] for p in curves[name]]
        return float(min(bits)), float(max(bits))

    lo, hi = max(span(a)[0], span(b)[0]), min(span(a)[1], span(b)[1])
    out: dict[str, Any] = {"rate_column": "coded_bits", "a": a, "b": b, "span_a": span(a), "span_b": span(b),
                           "interpolation": "log MSE linear in log coded bits"}
    if lo > hi:
        return {**out, "rate": None, "rates": None, "mse_a": None, "mse_b": None, "ratio": None, "ratios": None,
                "ranking": []}

    def at(name: str, rate: float) -> float | None:
        return mse_at_rate([p["coded_bits"] for p in curves[name]], [p["test_mse"] for p in curves[name]], rate)

    rates = [float(np.exp(np.log(lo) + q * (np.log(hi) - np.log(lo)))) for q in quantiles]
    mse_a, mse_b = [at(a, r) for r in rates], [at(b, r) for r in rates]
    middle = float(np.sqrt(lo * hi))
    ranked = {n: at(n, middle) for n in curves}
    ranked = {n: v for n, v in ranked.items() if v is not None}
    return {**out, "rate": middle, "mse_a": at(a, middle), "mse_b": at(b, middle), "ratio": at(a, middle) / at(b, middle),
            "rates": rates, "mse_a_at": mse_a, "mse_b_at": mse_b, "ratios": [x / y for x, y in zip(mse_a, mse_b)],
            "ranking": sorted(ranked, key=ranked.__getitem__), "mse_at_rate": ranked}


def choose_temperatures(samples: pd.DataFrame) -> pd.DataFrame:
    """Per generator (``curve``, ``K``), the row of the sampling temperature whose samples lie closest to the
    *validation* images (lowest ``val_fd``); the test numbers of that row are the ones reported."""
    best = samples.groupby(["curve", "K"], sort=False)["val_fd"].idxmin()
    return samples.loc[best.values].reset_index(drop=True)


def still_improving(rows: pd.DataFrame) -> dict[str, Any]:
    """Of a set of priors (rows of :func:`geohelpers.evaluation.train_priors`), those the stopping rule
    ended at an epoch that was still their best: their validation NLL was still falling, by less than the
    rule's relative ``min_delta`` per epoch for ``patience`` epochs. ``{priors, best_at_last,
    gain_bits: [lo, hi]}``: the last epoch's gain of those, in bits per image (nats per code x positions /
    ln 2), or ``None`` when the rows lack it (results written before it was recorded); ``ended_by_rule``
    counts those the rule ended (the cap's are said by :func:`geohelpers.prose.stopping_summary`)."""
    stopped = rows["stop_reason"] == "patience" if "stop_reason" in rows else True  # the cap's are said apart
    last = rows[(rows["best_epoch"] == rows["epochs"]) & stopped]
    gains = None
    if "last_epoch_val_gain_nats" in rows and last["last_epoch_val_gain_nats"].notna().all() and len(last):
        bits = last["last_epoch_val_gain_nats"] * last["positions"] / np.log(2)
        gains = [float(bits.min()), float(bits.max())]
    ended = int(stopped.sum()) if "stop_reason" in rows else int(len(rows))
    return {"priors": int(len(rows)), "ended_by_rule": ended, "best_at_last": int(len(last)), "gain_bits": gains}


def temperature_edges(chosen: pd.DataFrame, grid: Sequence[float]) -> dict[str, Any]:
    """Where the temperatures chosen on validation FD (:func:`choose_temperatures`) fall in the ``grid`` they
    were chosen from: ``{grid, generators, at_smallest, at_largest}``. A choice at an edge says that the
    validation FD may still fall past it: the grid should then be extended there."""
    temps = chosen["temperature"].astype(float)
    lo, hi = min(grid), max(grid)
    return {"grid": sorted(float(t) for t in grid), "generators": int(len(temps)),
            "at_smallest": int((temps == lo).sum()) if len(grid) > 1 else 0, "at_largest": int((temps == hi).sum())}


def best_generator(chosen: pd.DataFrame, floor_fd: float) -> dict[str, Any]:
    """The generator on the curves whose samples (at their validation-chosen temperature) lie closest to the
    validation images: ``{curve, K, temperature, coded_bits, fd, fd_over_floor, is}``, FD and IS on the test
    images (``floor_fd``: real training images' FD to the test images)."""
    r = chosen.loc[chosen["val_fd"].idxmin()]
    return {"curve": str(r["curve"]), "K": int(r["K"]), "temperature": float(r["temperature"]),
            "coded_bits": float(r["coded_bits"]), "fd": float(r["test_fd"]),
            "fd_over_floor": float(r["test_fd"] / floor_fd), "is": float(r["inception_score"]),
            "selected_on": "validation FD"}


def rate_distortion_verdict(points: pd.DataFrame, chosen_samples: pd.DataFrame | None, floor_fd: float | None
                            ) -> dict[str, Any]:
    """The rate-distortion part of ``metrics.verdict``: ``rd_curves``; ``bd_rate`` of each a posteriori
    curve against the end-to-end curve (:func:`bd_rate` on coded bits and, beside it, on fixed-length
    bits); ``at_equal_coded_rate`` (:func:`coded_rate_comparison` of the chosen a posteriori curve against
    the end-to-end one) and the same for its adapted decoder; and ``best_generator``."""
    curves = rd_curves(points)
    e2e = "end to end"
    out: dict[str, Any] = {"rd_curves": curves, "bd_rate": {}, "bd_rate_fixed": {}}
    for name, pts in curves.items():
        if name == e2e:
            continue
        for key, col in (("bd_rate", "coded_bits"), ("bd_rate_fixed", "fixed_bits")):
            out[key][name] = bd_rate([p[col] for p in curves[e2e]], [p["test_mse"] for p in curves[e2e]],
                                     [p[col] for p in pts], [p["test_mse"] for p in pts])
    out["at_equal_coded_rate"] = coded_rate_comparison(curves, "a posteriori", e2e)
    if "a posteriori, adapted decoder" in curves:
        out["at_equal_coded_rate_adapted"] = coded_rate_comparison(curves, "a posteriori, adapted decoder", e2e)
    if chosen_samples is not None and len(chosen_samples) and floor_fd:
        out["best_generator"] = best_generator(chosen_samples, floor_fd)
    return out
