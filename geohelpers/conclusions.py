"""The book's conclusions in sentences: the verdict of notebook 06 (:func:`verdict_prose`), its answer in at
most five sentences for the introduction (:func:`findings`) and the README's front page
(:func:`front_page_findings`), with the comparisons they are built from (equal fixed-length rate, equal coded
rate, BD-rate, the best generator, the decoder adaptation's control). Each takes the numbers of
:func:`geohelpers.selection.verdict_numbers` (or the results files of record) and reads every comparative
word off them, as :mod:`geohelpers.prose` does for the notebooks' other sentences.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Mapping, Sequence

from .config import METHOD_LABELS, method_label
from .prose import Prose, compared, gain_word, span_text


def _versus(r: float, other: str) -> str:
    """``r`` times the MSE of ``other``, with the direction word read off the number."""
    if round(r, 2) == 1.0:
        return f"the same as that of {other} to two decimals ({r:.3f} times)"
    return f"{r:.2f} times that of {other} ({abs(1 - r):.0%} {compared(r)})"


def _chosen(v: Mapping[str, Any]) -> tuple[str, str, int]:
    """The verdict's a posteriori codebook, end-to-end variant (without its ``VQ-VAE`` prefix) and K."""
    return v["best_a_posteriori"], v["best_end_to_end"].removeprefix("VQ-VAE "), v["k"]


def _no_overlap(eq: Mapping[str, Any]) -> str:
    """The two curves' coded rates, which do not overlap (``at_equal_coded_rate`` of the verdict)."""
    return (f"the end-to-end curve's coded rates ({span_text(*eq['span_b'], '{:.0f}', '-')} bits per image) do "
            f"not overlap the a posteriori curve's ({span_text(*eq['span_a'], '{:.0f}', '-')})")


def _no_coded_comparison(eq: Mapping[str, Any]) -> str:
    """Why there is no comparison at equal coded rate: the two curves' coded rates do not overlap."""
    return f"At equal coded rate there is no comparison yet: {_no_overlap(eq)}, and none is made by extrapolating."


def coded_rate_sentence(eq: Mapping[str, Any], subject: str = "the a posteriori MSE",
                        same_rates: Sequence[float] | None = None) -> str:
    """The equal-coded-rate comparison of :func:`~geohelpers.selection.coded_rate_comparison` at its three
    rates, with the direction read off the ratios; why there is none when the spans do not overlap. When its
    rates print as ``same_rates`` (those of the sentence before), they are not repeated."""
    if eq.get("rates") is None:
        return _no_coded_comparison(eq) if eq.get("rate") is None else (
            f"At an equal coded rate of {eq['rate']:.0f} bits per image, {subject} is {_versus(eq['ratio'], 'the end-to-end VQ-VAE')}.")
    rates = ", ".join(f"{r:.0f}" for r in eq["rates"][:-1]) + f" and {eq['rates'][-1]:.0f}"
    ratios = ", ".join(f"{r:.2f}" for r in eq["ratios"][:-1]) + f" and {eq['ratios'][-1]:.2f}"
    above = [r > 1 for r in eq["ratios"]]
    word = "higher at all three" if all(above) else "lower at all three" if not any(above) else "higher at some and lower at others"
    if same_rates is not None and [f"{r:.0f}" for r in same_rates] == [f"{r:.0f}" for r in eq["rates"]]:
        return f"At the same rates, {subject} is {ratios} times the end-to-end VQ-VAE's: {word}."
    return (f"At equal coded rate ({rates} bits per image, read off each curve over K under its prior), {subject} "
            f"is {ratios} times the end-to-end VQ-VAE's: {word}.")


def bd_rate_sentence(v: Mapping[str, Any], curves: Sequence[str] | None = None, a_posteriori: str | None = None) -> str:
    """The BD-rate of each a posteriori curve (of ``curves``; all when ``None``) against the end-to-end one,
    with its direction word; one clause for the curves whose MSE range does not overlap the end-to-end one.
    Curves are named by :func:`curve_label` (``a_posteriori``: the chosen codebook's method)."""
    rates = {n: r for n, r in v.get("bd_rate", {}).items() if curves is None or n in curves}
    if not rates:
        return ""
    known = [f"{curve_label(name, a_posteriori)} {r['bd_rate_pct']:+.0f} % "
             f"({'more' if r['bd_rate_pct'] > 0 else 'fewer'} bits"
             + (f", over {r['overlap']:.0%} of the MSE range" if r.get("overlap") is not None else "") + ")"
             for name, r in rates.items() if r["bd_rate_pct"] is not None]
    apart = [curve_label(name, a_posteriori) for name, r in rates.items() if r["bd_rate_pct"] is None]
    none = ""
    if apart:
        names = apart[0] if len(apart) == 1 else ", ".join(apart[:-1]) + " and " + apart[-1]
        none = (f"the {names} curve{'s' if len(apart) > 1 else ''} "
                f"{'has' if len(apart) == 1 else 'have'} none: {'its MSE range does' if len(apart) == 1 else 'their MSE ranges do'} "
                f"not overlap the end-to-end curve's")
    if not known:
        return f"No BD-rate: {none}."
    narrow = any(r.get("overlap") is not None and r["overlap"] < 0.75 for r in rates.values())
    return ("At equal MSE, averaged over the MSE range both curves cover (Bjontegaard delta rate, coded bits), "
            "against the end-to-end curve: " + "; ".join(known) + (f"; {none}" if none else "") + "."
            + (" Below 75% of the range, a BD-rate rests on a narrow common range." if narrow else ""))


def curve_label(curve: str, a_posteriori: str | None = None) -> str:
    """A rate-distortion curve's name (``rd_curves`` of the verdict: ``end to end``, ``kmeans``, ``a
    posteriori``, ``kmeans, adapted decoder``, ...) for a sentence; ``a_posteriori`` names the chosen codebook."""
    base, _, adapted = curve.partition(", ")
    name = {"end to end": "end-to-end VQ-VAE", "a posteriori": METHOD_LABELS.get(a_posteriori or "", "a posteriori")}.get(
        base, method_label(base))
    return name + (f" ({adapted})" if adapted else "")


def best_generator_sentence(b: Mapping[str, Any], a_posteriori: str | None = None) -> str:
    """The best generator on the curves (chosen on validation FD), with its test FD against the floor."""
    return (f"The samples closest to real images on the curves (chosen on validation FD) come from the "
            f"{curve_label(b['curve'], a_posteriori)} curve at K = {b['K']} and temperature {b['temperature']:g} "
            f"({b['coded_bits']:.0f} coded bits): test FD {b['fd']:.1f}, {b['fd_over_floor']:.1f} times the "
            f"real-data floor, IS {b['is']:.2f}.")


def control_relation(control_gain: float, gains: Mapping[str, float]) -> str:
    """How the control's relative gain (the decoder fine-tuned on the continuous mu) sits against the
    codebooks' (each ``1 - adapted / before``): what part of their gain needs the codes at all."""
    lo, hi = min(gains.values()), max(gains.values())
    if control_gain > hi:
        return ("more than on any codebook's codes: decoder training alone gives a gain this size, so the "
                "codebooks' gain cannot be read as the decoder learning the codes")
    if control_gain == hi:
        return "as much as on the codes that gain most: decoder training alone gives a gain this size"
    if control_gain < lo:
        return (f"less than on every codebook's codes: the codes add "
                f"{span_text(100 * (lo - control_gain), 100 * (hi - control_gain), '{:.0f}')} percentage points")
    return "within the codebooks' range: decoder training alone gives part of their gain"


def adaptation_control_sentence(c: Mapping[str, Any], gains: Mapping[str, float]) -> str:
    """The decoder adaptation's control (:func:`geohelpers.selection.adaptation_control`) beside the
    codebooks' gains ``gains``, with the direction words read off the numbers."""
    return (f"Its control, the same fine-tuning of the decoder on the continuous μ (no codes), {gain_word(c['gain'])} the "
            f"continuous reconstructions' test MSE by {abs(c['gain']):.0%} ({c['test_mse']:.5f} to "
            f"{c['test_mse_adapted']:.5f}, {c['epochs']} epochs), {control_relation(c['gain'], gains)}.")


def findings(v: Mapping[str, Any], beta: float) -> Prose:
    """The book's answer in at most five sentences, for the introduction: the fixed-rate verdict with the
    β and K it holds at, the equal-coded-rate comparison at three rates (or why there is none), the BD-rate
    and the best generator when the record has them (else the decoder-adapted ratio); the rest is in
    :func:`verdict_prose` and the notebooks."""
    post, e2e, k = _chosen(v)
    lines = [f"On the GridVAE at β = {beta:g} and K = {k}, the best a posteriori codebook chosen on validation "
             f"({method_label(post)}) has a test MSE "
             f"{_versus(v['mse_ratio_a_posteriori_over_end_to_end'], f'VQ-VAE {e2e}, the best end-to-end variant')}, "
             f"at equal fixed-length rate."]
    if "mse_ratio_adapted_over_end_to_end" in v and "bd_rate" not in v:
        lines.append(f"With the VAE's decoder fine-tuned on its codes, the best adapted codebook's test MSE is "
                     f"{_versus(v['mse_ratio_adapted_over_end_to_end'], 'the end-to-end VQ-VAE')}.")
    eq = v.get("at_equal_coded_rate")
    if eq is not None:
        lines.append(coded_rate_sentence(eq))
    if v.get("bd_rate"):
        lines.append(bd_rate_sentence(v, ("a posteriori", "a posteriori, adapted decoder"), v.get("best_a_posteriori")))
    if v.get("best_generator"):
        lines.append(best_generator_sentence(v["best_generator"], v["best_a_posteriori"]))
    lines.append("How this moves with β is in notebook 08, and its spread over seeds where the seed sweep is current.")
    return Prose(" ".join(lines))


def verdict_prose(v: Mapping[str, Any]) -> Prose:
    """The book's verdict, every comparative word read off :func:`verdict_numbers`."""
    post, e2e, k = _chosen(v)
    lines = [f"Chosen on the validation images at K = {k}, the best a posteriori codebook is "
             f"{method_label(post)} and the best end-to-end variant is VQ-VAE {e2e}. On the test images, at "
             f"equal fixed-length rate, the a posteriori MSE is "
             f"{_versus(v['mse_ratio_a_posteriori_over_end_to_end'], 'the end-to-end VQ-VAE')}"]
    if "mse_ratio_a_posteriori_over_hybrid" in v:
        lines[-1] += (f", and {_versus(v['mse_ratio_a_posteriori_over_hybrid'], 'the hybrid')}, which is an "
                      "end-to-end VQ-VAE started from the trained GridVAE's encoder and decoder and the codebook "
                      "chosen here")
    lines[-1] += "."
    if "decoder_adaptation_gain" in v:
        gains = v["decoder_adaptation_gain"]
        lo, hi = min(gains.values()), max(gains.values())
        span = f"{lo:.0%}" if f"{lo:.0%}" == f"{hi:.0%}" else f"{lo:.0%} to {hi:.0%}"
        every = v.get("decoder_adaptation_gain_every_k") or {}
        over = (f" ({span_text(min(every.values()), max(every.values()), '{:.0%}')} over every K of the curves)"
                if every else "")
        lines.append(f"Fine-tuning only the decoder on each codebook's codes at K = {k} (encoder, codebook and rate "
                     f"unchanged) {gain_word(hi)} the test MSE by {span}{over}; the best adapted codebook, chosen on validation "
                     f"({method_label(v['best_adapted'])}), has a test MSE "
                     f"{_versus(v['mse_ratio_adapted_over_end_to_end'], 'the end-to-end VQ-VAE')}.")
        if v.get("decoder_adaptation_control"):
            lines.append(adaptation_control_sentence(v["decoder_adaptation_control"], every or gains))
    eq = v.get("at_equal_coded_rate")
    if eq and eq.get("rates") is not None:
        lines.append(coded_rate_sentence(eq))
        adapted = v.get("at_equal_coded_rate_adapted") or {}
        if adapted.get("rates") is not None:
            lines.append(coded_rate_sentence(adapted, "with its decoder adapted, its MSE", same_rates=eq["rates"]))
        lines.append(bd_rate_sentence(v, a_posteriori=v.get("best_a_posteriori")))
        if v.get("best_generator"):
            lines.append(best_generator_sentence(v["best_generator"], v["best_a_posteriori"]))
    elif eq and eq.get("rate") is not None:
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
        lines.append(_no_coded_comparison(eq))
    return Prose(" ".join(lines))


def adaptation_gains(rows: Sequence[Mapping[str, Any]]) -> dict[str, float]:
    """Each codebook's decoder-adaptation gain at every K (``"kmeans K=16"`` -> ``1 - adapted / before`` on
    the test images) from notebook 06's ``adaptation`` rows, the control left out; empty without rows."""
    return {f"{r['method']} K={int(r['K'])}": float(r["adaptation_gain"]) for r in rows
            if r.get("K") is not None and r.get("adaptation_gain") is not None}


def overlap_text(bd: Mapping[str, Any]) -> str:
    """The share of the MSE range (in dB) on which a BD-rate rests, said with it; below 75 % the BD-rate
    extrapolates little but rests on a small common range, which the sentence says."""
    share = bd.get("overlap")
    if share is None:
        return "over the MSE range both curves cover"
    return (f"over the {share:.0%} of the MSE range both curves cover"
            + (", below the 75% at which the package warns" if share < 0.75 else ""))


def beta_clause(summary: Sequence[Mapping[str, Any]], ratios: Sequence[Mapping[str, Any]]) -> str:
    """Why the fixed-rate gap moves with β, off notebook 08's numbers: the continuous VAE's own test MSE and
    active units at the ends of the sweep, and quantization's own cost (the codebook's test MSE over the
    continuous one) at each β; empty when the summary lacks a β of ``ratios``."""
    by_beta = {float(r["beta"]): r for r in summary}
    if not ratios or any(float(r["beta"]) not in by_beta or "test MSE" not in r for r in ratios):
        return ""
    first, last = by_beta[float(ratios[0]["beta"])], by_beta[float(ratios[-1]["beta"])]
    own = [r["test MSE"] / by_beta[float(r["beta"])]["continuous_mse"] for r in ratios]
    mse_word = "grows" if last["continuous_mse"] > first["continuous_mse"] else "falls"
    cost = "shrinks" if all(b < a for a, b in zip(own, own[1:])) else "grows" if all(
        b > a for a, b in zip(own, own[1:])) else "moves both ways"
    return (f": the continuous VAE's own test MSE {mse_word} ({first['continuous_mse']:.5f} to "
            f"{last['continuous_mse']:.5f}, active units {first['active_units']} to {last['active_units']}) while "
            f"quantization's own cost {cost} ({', '.join(f'{x:.2f}' for x in own)} times the continuous MSE)")


def front_page_findings(results: Path) -> str:
    """The README's "what it found" paragraph, generated from the figures of record in ``results``
    (``results/standard``), in at most five sentences: the fixed-rate verdict of notebook 06 with its spread
    over the seed sweep; K-means on mu and the decoder-adapted ratio; how the verdict moves with beta; the
    comparison at equal *coded* rate (the three ratios and each a posteriori curve's BD-rate, or why there
    is none); the best generator on the curves against the real-data floor. A test compares it with the
    README, so the front page and the record cannot disagree."""
    r06 = json.loads((results / "06_comparison.json").read_text())
    v, beta = r06["metrics"]["verdict"], r06["config"]["grid_vae"]["beta"]
    s08 = json.loads((results / "08_seeds_and_beta.json").read_text())["metrics"]
    seeds = {row["quantity"]: row for row in s08["seeds"]["table"]}
    post, e2e, k = v["best_a_posteriori"], v["best_end_to_end"], v["k"]
    fixed, coded = v["at_equal_fixed_rate"], v["at_equal_coded_rate"]
    def over_seeds(key: str, label: str, fmt: str = "{:.2f}") -> str:  # empty when the seed sweep is stale or missing
        row = seeds.get(key)
        return (f" ({fmt.format(row['mean'])} ± {fmt.format(row['std'])} over {row['n']} {label})"
                if row and row["n"] > 1 else "")

    betas = [r for r in s08["beta"]["ratios"] if r["method"] == post]
    ref = s08["beta"]["end_to_end_reference"]["quantizer"]
    betas = sorted(betas, key=lambda r: r["beta"])
    ratios = [r[f"MSE / {ref}"] for r in betas]
    beta_text = ", ".join(f"{x:.2f} at β = {r['beta']:g}" for x, r in zip(ratios, betas))
    steps = [b > a for a, b in zip(ratios, ratios[1:])]
    gap = "widens" if all(steps) else "narrows" if not any(steps) else "moves both ways"
    beta_cause = beta_clause(s08["beta"].get("summary") or [], betas)
    priors = [r for name in ("04_priors", "05_vqvae_baseline") if (results / f"{name}.json").exists()
              for r in json.loads((results / f"{name}.json").read_text())["metrics"].get("priors" if name[:2] == "05"
                                                                                          else "rows", [])]
    capped = sum(r.get("stop_reason") == "max_epochs" for r in priors)
    caps = f"; {capped} of the {len(priors)} priors of notebooks 04 and 05 stopped at their epoch cap" if capped else ""
    if coded.get("rates"):
        coded_text = (f"At equal *coded* rate (what the code set's prior spends: "
                      f"{', '.join(f'{r:.0f}' for r in coded['rates'])} bits per image) the ratios are "
                      f"{', '.join(f'{r:.2f}' for r in coded['ratios'])}")
    elif coded.get("ratio") is not None:
        coded_text = f"At an equal *coded* rate of {coded['rate']:.0f} bits per image the ratio is {coded['ratio']:.2f}"
    else:
        coded_text = f"At equal *coded* rate (what a prior spends) the record holds no comparison: {_no_overlap(coded)}"
    bd_rates = v.get("bd_rate") or {}
    bd = bd_rates.get("a posteriori", {}).get("bd_rate_pct")
    if bd is not None:
        adapted_bd = bd_rates.get("a posteriori, adapted decoder", {}).get("bd_rate_pct")
        coded_text += (f", and the a posteriori curve needs {bd:+.0f} % coded bits at equal MSE (Bjontegaard delta "
                       f"rate against the end-to-end curve, {overlap_text(bd_rates['a posteriori'])}"
                       f"{over_seeds('BD-rate % (a posteriori)', 'seeds', '{:+.0f} %')})"
                       + (f", {adapted_bd:+.0f} % with its decoder adapted" if adapted_bd is not None else ""))
    control = v.get("decoder_adaptation_control") if "decoder_adaptation_gain" in v else None
    every_k = adaptation_gains(r06["metrics"].get("adaptation") or [])
    gains = every_k or v.get("decoder_adaptation_gain") or {}
    where = "over every K" if every_k else f"at K = {k}"
    control_text = "" if not control or not gains else (
        f" (the same fine-tuning {gain_word(control['gain'])} the continuous VAE's own test MSE by "
        f"{abs(control['gain']):.0%}, and the codebooks' by {span_text(min(gains.values()), max(gains.values()), '{:.0%}')} "
        f"{where}, so the control is {control_relation(control['gain'], gains)})")
    adapted = v.get("at_equal_coded_rate_adapted") or {}
    adapted_text = (f" at fixed-length rate and to {', '.join(f'{r:.2f}' for r in adapted['ratios'])} at equal coded rate"
                    if adapted.get("ratios") else " at fixed-length rate")
    best = v.get("best_generator")
    best_text = f" {best_generator_sentence(best, post)}" if best else ""
    return (
        f"On the GridVAE (β = {beta:g}) at K = {k} ({fixed['rate']:.0f} bits per image at fixed length), the best a posteriori "
        f"codebook chosen on validation, **{method_label(post)}**, reaches a test MSE of "
        f"**{fixed['mse_a']:.5f}** against **{fixed['mse_b']:.5f}** for the best end-to-end VQ-VAE ({e2e}): "
        f"**{fixed['ratio']:.2f}x**{over_seeds('mse_ratio_a_posteriori_over_end_to_end', 'seeds')}. "
        f"K-means on μ, the usual a posteriori quantizer, reaches {v['test_mse']['kmeans']:.5f} "
        f"({v['test_mse']['kmeans'] / fixed['mse_b']:.2f}x), and fine-tuning the VAE's decoder on the frozen codes "
        f"brings the ratio to {v['mse_ratio_adapted_over_end_to_end']:.2f}"
        f"{over_seeds('mse_ratio_adapted_over_end_to_end', 'seeds')}{adapted_text}{control_text}. "
        + (f"At fixed-length rate the gap {gap} with β ({beta_text}){beta_cause}. " if len(betas) > 1
           else "At other β the record holds no ratio yet. ")
        + f"{coded_text}{caps}.{best_text}"
    )
