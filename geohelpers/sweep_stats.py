"""What notebook 08 reads from the sweeps: spreads over seeds, the orders every seed agrees on, how the
verdict moves with beta, and the sentences that say so.

Pure functions of the points that :func:`geohelpers.sweep.load_points` returns (each a ``point.json`` with
its results files under ``results``). This module shapes no artifact and no sweep point, but it shapes
notebook 08's results: it is outside every artifact identity and every point's stamp and inside notebook
08's stamp (:data:`geohelpers.artifacts.SWEEP_ANALYSIS`), so an edit here re-executes notebook 08 only.
"""

from __future__ import annotations

import itertools

import numpy as np
from typing import Any, Iterable, Mapping, Sequence

import pandas as pd

from .config import METHOD_LABELS, method_label

from .conclusions import curve_label
from .prose import Prose, direction


def spread(values: Mapping[str, Mapping[str, float]]) -> Any:
    """``{point: {quantity: value}}`` -> a table with each quantity's mean, standard deviation (ddof 1),
    number of points and every point's value."""
    table = pd.DataFrame(values)  # quantities x points
    out = pd.DataFrame({"mean": table.mean(axis=1), "std": table.std(axis=1, ddof=1), "n": table.count(axis=1)})
    return pd.concat([out, table], axis=1)


def paired_orders(values: Mapping[str, Mapping[str, float]], names: Iterable[str] | None = None) -> Any:
    """For every pair (a, b) of quantities: in how many points a < b, and whether that holds in every
    point, in none (b < a everywhere), or only in some (not a difference the seeds agree on)."""
    table = pd.DataFrame(values)
    names = list(names) if names is not None else list(table.index)
    rows = []
    for a, b in itertools.combinations(names, 2):
        both = table.loc[[a, b]].notna().all()
        a_lower = (table.loc[a] < table.loc[b])[both]
        lower, n = int(a_lower.sum()), int(both.sum())
        verdict = direction(a_lower, f"{a} lower", f"{b} lower", ("in", "point", "points"), mixed="the points disagree")
        rows.append({"a": a, "b": b, "points": n, "a lower in": lower, "verdict": verdict})
    return pd.DataFrame(rows)


#: Columns of :func:`headline_values` that name a sample-fidelity score of each quantizer's generator: that of
#: the prior notebook 06 chose on validation for the quantizer's codes (``prior (validation)``), scored on 06's
#: classifier. Each seed trains its own classifier, so a spread over seeds includes the scorer's.
FIDELITY = {"FD": "frechet_distance", "IS": "inception_score"}  # headline column prefix -> real_data_floor key


#: The row :func:`headline_values` adds for a fidelity column: real test images scored the same way.
REAL_DATA = "real data (floor)"


def headline_values(point: Mapping[str, Any], column: str = "test MSE") -> dict[str, float]:
    """One point's headline ``column`` per quantizer (notebook 06's table).

    ``"test MSE"`` adds the verdict's MSE ratios; ``"FD"`` or ``"IS"`` (:data:`FIDELITY`) give each
    quantizer's Frechet distance or Inception Score of the prior chosen on validation, and the real-data
    floor as :data:`REAL_DATA`; any other name is a headline column read as it stands.
    """
    m = point["results"]["06_comparison"]["metrics"]
    if column in FIDELITY:
        out = {row["quantizer"]: float(row[column] if column in row else row[f"{column} {row['prior (validation)']}"])
               for row in m["headline"]}
        out[REAL_DATA] = float(m["real_data_floor"][FIDELITY[column]])
        return out
    out = {row["quantizer"]: float(row[column]) for row in m["headline"]}
    if column == "test MSE":
        v = m["verdict"]
        for key in ("mse_ratio_a_posteriori_over_end_to_end", "mse_ratio_a_posteriori_over_hybrid",
                    "mse_ratio_adapted_over_end_to_end"):
            if v.get(key) is not None:
                out[key] = float(v[key])
        out.update(rd_values(v))
    return out


#: The prefixes of :func:`rd_values`' keys: summaries of the rate-distortion verdict, not quantizers.
RD_KEYS = ("BD-rate", "coded-rate MSE ratio", "best generator")


def rd_values(v: Mapping[str, Any]) -> dict[str, float]:
    """The rate-distortion verdict of one point (``metrics.verdict`` of notebook 06): the BD-rate (%, coded
    bits) of each a posteriori curve against the end-to-end one, the a posteriori / end-to-end MSE ratio
    at each of the three equal coded rates (numbered from the lowest rate: the rates themselves differ
    between points), and the best generator's FD over the real-data floor; empty for a record without them."""
    out: dict[str, float] = {}
    for name, r in v.get("bd_rate", {}).items():
        if r.get("bd_rate_pct") is not None:
            out[f"BD-rate % ({name})"] = float(r["bd_rate_pct"])
    eq = v.get("at_equal_coded_rate") or {}
    for i, ratio in enumerate(eq.get("ratios") or []):
        out[f"coded-rate MSE ratio, rate {i + 1} of {len(eq['ratios'])}"] = float(ratio)
    if v.get("best_generator"):
        out["best generator FD / floor"] = float(v["best_generator"]["fd_over_floor"])
    return out


def rd_seed_prose(points: Sequence[Mapping[str, Any]]) -> Any:
    """The rate-distortion verdict over a seed sweep: each BD-rate's mean and spread, whether its sign holds
    in every seed, and where the best generator was found in each seed. Curves are named as the figures name
    them (:func:`geohelpers.conclusions.curve_label`), the chosen a posteriori codebook by its method when every
    seed chose the same one."""
    verdicts = {p["point"]: p["results"]["06_comparison"]["metrics"]["verdict"] for p in points
                if "06_comparison" in p["results"]}
    values = {name: rd_values(v) for name, v in verdicts.items()}
    keys = [k for k in dict.fromkeys(k for v in values.values() for k in v) if k.startswith("BD-rate")]
    if not keys:
        return Prose("No point of the seed sweep holds a rate-distortion verdict yet (its records predate the "
                     "curves over K).")
    chosen = {v.get("best_a_posteriori") for v in verdicts.values()}
    post = chosen.pop() if len(chosen) == 1 else None
    lines = []
    for key in keys:
        xs = [v[key] for v in values.values() if key in v]
        sign = "more" if all(x > 0 for x in xs) else "fewer" if all(x < 0 for x in xs) else None
        spread_text = f"{np.mean(xs):+.0f} ± {np.std(xs, ddof=1):.0f} %" if len(xs) > 1 else f"{xs[0]:+.0f} %"
        curve = curve_label(key.removeprefix("BD-rate % (").removesuffix(")"), post)
        over = (f" over {len(xs)} seeds ({', '.join(f'{x:+.0f}' for x in xs)})" if len(xs) > 1 else "")
        lines.append(f"{curve}: BD-rate {spread_text}{over}, "
                     + (f"{sign} bits than the end-to-end curve" + (" in every seed" if len(xs) > 1 else "") if sign
                        else "its sign differs between seeds"))
    best = {name: v["best_generator"] for name, v in verdicts.items() if v.get("best_generator")}
    if best:
        lines.append("the best generator is " + "; ".join(
            f"{curve_label(b['curve'], verdicts[name].get('best_a_posteriori'))} at K = {b['K']} in {name} "
            f"(FD {b['fd_over_floor']:.1f}x the floor)" for name, b in best.items()))
    head = "Over the seeds: " if len(verdicts) > 1 else f"Only {next(iter(verdicts))} of the seed sweep is up to date: "
    return Prose(head + "; ".join(lines) + ".")


def _quantizers(values: Mapping[str, Mapping[str, float]]) -> list[str]:
    """The quantizers among :func:`headline_values`' keys (not the ratios, not the real-data floor)."""
    return [q for q in next(iter(values.values())) if not q.startswith(("mse_ratio", *RD_KEYS)) and q != REAL_DATA]


def beta_rows(points: Sequence[Mapping[str, Any]], beta: str = "grid_vae.beta") -> list[dict]:
    """Rate-distortion rows of every point (notebooks 02, 03 and 07; both VAEs, every K), with the point's
    beta, for one panel per beta."""
    rows = []
    for p in points:
        value = p["params"].get(beta, p["overrides"].get(beta))
        for name in ("02_w2_quantization", "03_knn_geodesic", "07_pullback"):
            for r in p["results"].get(name, {}).get("metrics", {}).get("rows", []):
                if {"VAE", "method", "K", "mse_per_pixel", "bits_per_image"} <= set(r):
                    rows.append({"beta": value, **{k: r[k] for k in ("VAE", "method", "K", "mse_per_pixel",
                                                                     "bits_per_image")}})
    return rows


def beta_summary(points: Sequence[Mapping[str, Any]], beta: str = "grid_vae.beta") -> list[dict]:
    """Per point: beta, the GridVAE's continuous test MSE and active units (notebook 01), and the verdict's
    a posteriori / end-to-end MSE ratio (notebook 06), where those notebooks ran."""
    rows = []
    for p in points:
        res, row = p["results"], {"beta": p["params"].get(beta, p["overrides"].get(beta))}
        if "01_vae" in res:
            g = res["01_vae"]["metrics"]["GridVAE"]
            row.update(continuous_mse=g["mse_per_pixel"], active_units=g["active_units"], latent_units=g["latent_units"])
        if "06_comparison" in res:
            v = res["06_comparison"]["metrics"]["verdict"]
            row.update(best_a_posteriori=v["best_a_posteriori"], best_end_to_end=v["best_end_to_end"],
                       a_posteriori_over_end_to_end=v["mse_ratio_a_posteriori_over_end_to_end"])
        rows.append(row)
    return sorted(rows, key=lambda r: r["beta"])


def stale_view(stale: Sequence[Mapping[str, Any]]) -> Any:
    """The points left out because their stamp is not the one the current code gives: which point, when it
    was written and with which stamp. They are re-run by the next call of their sweep."""
    return pd.DataFrame([{"point": p["point"], "notebooks": ", ".join(n[:2] for n in p.get("notebooks", [])),
                          "written": p.get("written"), "stamp": str(p.get("stamp", ""))[:12]} for p in stale],
                        columns=["point", "notebooks", "written", "stamp"])


def seed_table(points: Sequence[Mapping[str, Any]], column: str = "test MSE") -> Any:
    """Notebook 06's headline ``column`` per quantizer, and the verdict's ratios, over the points of a seed
    sweep: ``mean``, ``std`` (ddof 1), ``n``, ``mean ± std`` and every seed's value (:func:`spread`)."""
    if not points:
        return pd.DataFrame(columns=["mean ± std", "mean", "std", "n"])
    table = spread({p["point"]: headline_values(p, column) for p in points})
    table.insert(0, "mean ± std", [f"{m:.4g} ± {s:.2g}" if s == s else f"{m:.4g}"
                                   for m, s in zip(table["mean"], table["std"])])
    return table


def seed_verdicts(points: Sequence[Mapping[str, Any]]) -> Any:
    """Per seed, what notebook 06 selected on validation and the headline ratio it reported."""
    rows = []
    for p in points:
        v = p["results"]["06_comparison"]["metrics"]["verdict"]
        rows.append({"point": p["point"], "best a posteriori": v["best_a_posteriori"],
                     "best end-to-end": v["best_end_to_end"],
                     "a posteriori / end-to-end MSE": v["mse_ratio_a_posteriori_over_end_to_end"],
                     "best adapted / end-to-end MSE": v.get("mse_ratio_adapted_over_end_to_end")})
    return pd.DataFrame(rows, columns=["point", "best a posteriori", "best end-to-end",
                                       "a posteriori / end-to-end MSE", "best adapted / end-to-end MSE"])


def seed_orders(points: Sequence[Mapping[str, Any]], column: str = "test MSE") -> Any:
    """:func:`paired_orders` of the quantizers' headline ``column`` over the points of a seed sweep: a
    difference between two quantizers counts only when it has the same sign in every seed. For ``"IS"``,
    where higher is better, "lower" still means the lower score."""
    if not points:
        return pd.DataFrame(columns=["a", "b", "points", "a lower in", "verdict"])
    values = {p["point"]: headline_values(p, column) for p in points}
    return paired_orders(values, _quantizers(values))


def _orders_sentence(points: Sequence[Mapping[str, Any]], column: str) -> str:
    """How many pairs of quantizers keep their order of ``column`` in every seed, and which do not."""
    orders = seed_orders(points, column)
    disagree = orders[orders["verdict"] == "the points disagree"]
    text = f"Of the {len(orders)} pairs of quantizers, {len(orders) - len(disagree)} keep their order of {column} in every seed"
    return text + (f"; the seeds disagree on {', '.join(f'{a} vs {b}' for a, b in zip(disagree['a'], disagree['b']))}."
                   if len(disagree) else ".")


def seed_prose(points: Sequence[Mapping[str, Any]], column: str = "test MSE") -> Any:
    """Sentences generated from a seed sweep: whether the selections agree across seeds, the headline ratio's
    mean and spread, and which orders of the quantizers' ``column`` hold in every seed."""
    if not points:
        return Prose("No up-to-date point of the seed sweep is stored for this profile, so no spread is shown: "
                     "run `python -m geohelpers.run --profile <profile> --sweep seed=0,1,2`.")
    verdicts = seed_verdicts(points)
    n = len(points)
    if n == 1:
        ratio = verdicts["a posteriori / end-to-end MSE"].iloc[0]
        return Prose(f"Only {points[0]['point']} of the seed sweep is up to date, so no spread over seeds is shown: "
                     f"there the best a posteriori quantizer chosen on validation is {verdicts['best a posteriori'].iloc[0]}, "
                     f"the best end-to-end one {verdicts['best end-to-end'].iloc[0]}, and the test-MSE ratio of the "
                     f"first to the second {ratio:.3f}.")
    parts = []
    for col in ("best a posteriori", "best end-to-end"):
        chosen = list(dict.fromkeys(verdicts[col]))
        parts.append(f"the {col} quantizer chosen on validation is {chosen[0]} in all {n} seeds" if len(chosen) == 1
                     else f"the {col} quantizer chosen on validation changes with the seed ({', '.join(chosen)})")
    ratio = verdicts["a posteriori / end-to-end MSE"]
    text = (f"Over {n} seeds, {parts[0]}, and {parts[1]}. The test-MSE ratio of the best a posteriori codebook "
            f"to the best end-to-end VQ-VAE is {ratio.mean():.3f} ± {ratio.std(ddof=1) if n > 1 else float('nan'):.3f} "
            f"(mean ± standard deviation; per seed {', '.join(f'{r:.3f}' for r in ratio)}); it is "
            f"{direction(ratio < 1, 'below 1', 'above 1', ('in', 'seed', 'seeds'))}.")
    if n > 1:
        text += " " + _orders_sentence(points, column)
    return Prose(text)


def seed_fidelity_prose(points: Sequence[Mapping[str, Any]]) -> Any:
    """Sentences generated from a seed sweep's sample fidelity (:data:`FIDELITY`): per seed, the generator
    with the lowest FD and the real-data floor; the lowest FD over the floor, as mean and range over seeds;
    and which orders of the quantizers' FD hold in every seed."""
    if not points:
        return Prose("No up-to-date point of the seed sweep is stored for this profile, so no spread of the "
                     "samples' fidelity is shown.")
    fd = spread({p["point"]: headline_values(p, "FD") for p in points})
    seeds = [p["point"] for p in points]
    names = [q for q in fd.index if q != REAL_DATA]
    best = {s: fd.loc[names, s].idxmin() for s in seeds}
    over = [fd.loc[best[s], s] / fd.loc[REAL_DATA, s] for s in seeds]
    chosen = list(dict.fromkeys(best.values()))
    if len(seeds) == 1:
        return Prose(f"In {seeds[0]}, the only up-to-date point of the seed sweep, the lowest FD is that of "
                     f"{best[seeds[0]]}, {over[0]:.0f} times the real-data floor ({fd.loc[REAL_DATA, seeds[0]]:.2f}).")
    text = ("The lowest FD is " + (f"that of {chosen[0]} in all {len(seeds)} seeds" if len(chosen) == 1 else
                                   "reached by " + ", ".join(f"{best[s]} in {s}" for s in seeds))
            + f"; it is {sum(over) / len(over):.0f} times the real-data floor on average over the seeds (from "
            f"{min(over):.0f} to {max(over):.0f} times; the floor itself is "
            f"{fd.loc[REAL_DATA, 'mean']:.2f} ± {fd.loc[REAL_DATA, 'std']:.2f}).")  # std: NaN for one seed (ddof 1)
    if len(seeds) > 1:
        text += " " + _orders_sentence(points, "FD")
    return Prose(text)


def beta_ratios(points: Sequence[Mapping[str, Any]], end_to_end: str, end_to_end_mse: float, k: int,
                vae: str = "GridVAE", beta: str = "grid_vae.beta") -> Any:
    """Per beta and a posteriori method (notebooks 02, 03, 07; ``vae`` at codebook size ``k``): test MSE and
    its ratio to the end-to-end VQ-VAE ``end_to_end`` (test MSE ``end_to_end_mse``). A pure end-to-end
    VQ-VAE never sees the VAE, so beta does not change it: one reference serves every beta."""
    rows = [{"beta": r["beta"], "method": r["method"], "test MSE": r["mse_per_pixel"],
             f"MSE / {end_to_end}": r["mse_per_pixel"] / end_to_end_mse}
            for r in beta_rows(points, beta) if r["VAE"] == vae and r["K"] == k]
    return pd.DataFrame(rows, columns=["beta", "method", "test MSE", f"MSE / {end_to_end}"]).sort_values(
        ["method", "beta"], ignore_index=True)


def beta_ratio_table(ratios: "Any", end_to_end: str) -> Any:
    """:func:`beta_ratios` as a table: one row per method (its book label), one column per beta, the ratio
    of its test MSE to that of ``end_to_end``."""
    col = f"MSE / {end_to_end}"
    table = ratios.assign(method=ratios["method"].replace(METHOD_LABELS)).pivot(index="method", columns="beta",
                                                                                 values=col)
    return table.rename_axis(columns=f"β: {col}")


def beta_prose(summary: Sequence[Mapping[str, Any]], ratios: "Any", end_to_end: str, k: int) -> Any:
    """Sentences generated from the beta sweep: how the GridVAE's continuous MSE and active units move with
    beta, each method's MSE ratio to the end-to-end VQ-VAE at the smallest and the largest beta, and what
    quantizing itself costs per beta: the best codebook's test MSE over the continuous VAE's (decoding mu),
    so that a reader can tell the quantizer's share of the error from the VAE's."""
    if len(summary) < 2 or ratios.empty:
        return Prose("Fewer than two up-to-date points of the beta sweep are stored for this profile: run "
                     "`python -m geohelpers.run --profile <profile> --sweep grid_vae.beta=0.1,0.3,1.0 "
                     "--only 01 02 03 07`.")
    lo, hi = summary[0], summary[-1]
    text = (f"From β = {lo['beta']:g} to β = {hi['beta']:g}, the GridVAE's continuous test MSE goes from "
            f"{lo['continuous_mse']:.5f} to {hi['continuous_mse']:.5f} and its active units from "
            f"{lo['active_units']} to {hi['active_units']} of {lo['latent_units']}.")
    col = f"MSE / {end_to_end}"
    pieces = []
    for method, sub in ratios.groupby("method", sort=False):
        sub = sub.sort_values("beta")
        a, b = sub.iloc[0][col], sub.iloc[-1][col]
        pieces.append(f"{method_label(method)} {a:.2f} → {b:.2f}")
    best = ratios.loc[ratios.groupby("beta")[col].idxmin()]
    text += (f" At K = {k}, each a posteriori codebook's test MSE over that of {end_to_end} goes "
             + "; ".join(pieces) + ". The lowest ratio is "
             + ", ".join(f"{method_label(m)} at β = {b:g} ({r:.2f})"
                         for b, m, r in zip(best["beta"], best["method"], best[col])) + ".")
    continuous = {row["beta"]: row["continuous_mse"] for row in summary if "continuous_mse" in row}
    cost = [(b, mse / continuous[b]) for b, mse in zip(best["beta"], best["test MSE"]) if b in continuous]
    if len(cost) >= 2:
        factors = [f for _, f in cost]
        printed = {f"{f:.2f}" for f in factors}
        trend = ("is the same at every β" if len(printed) == 1
                 else "shrinks as β grows" if all(x > y for x, y in zip(factors, factors[1:]))
                 else "grows with β" if all(x < y for x, y in zip(factors, factors[1:])) else "is not monotone in β")
        text += (" What quantizing costs " + trend + ": that codebook's test MSE is "
                 + ", ".join(f"{f:.2f} times the continuous VAE's at β = {b:g}" for b, f in cost)
                 + f", while the continuous VAE's own test MSE at β = {hi['beta']:g} is "
                 f"{hi['continuous_mse'] / lo['continuous_mse']:.1f} times that at β = {lo['beta']:g}.")
    return Prose(text)


def beta_rd_frame(points: Sequence[Mapping[str, Any]], vae: str, beta: str = "grid_vae.beta") -> Any:
    """:func:`beta_rows` of one VAE as a frame for :func:`geohelpers.plots.rate_distortion`: methods by
    their book labels, and a ``panel`` column naming the beta (one panel per beta)."""
    rows = pd.DataFrame(beta_rows(points, beta), columns=["beta", "VAE", "method", "K", "mse_per_pixel",
                                                          "bits_per_image"])
    rows = rows[rows["VAE"] == vae].sort_values(["beta", "method", "K"], ignore_index=True)
    return rows.assign(method=rows["method"].replace(METHOD_LABELS),
                       panel=[f"{vae}, β = {b:g}" for b in rows["beta"]])
