"""The book's tables and verdict sentences, on small frames: the numbers, and the words they choose."""

import numpy as np
import pandas as pd
import pytest

from geohelpers import conclusions
from geohelpers import prose
from geohelpers import selection
from geohelpers import tables


def codebook_rows(w2_factor: float, geo_factor: float) -> pd.DataFrame:
    rows = []
    for vae, base in (("FlatVAE", 0.004), ("GridVAE", 0.003)):
        for k in (64, 512):
            km = base * (64 / k) ** 0.1
            for method, f in (("kmeans", 1.0), ("w2", w2_factor), ("geodesic", geo_factor)):
                rows.append({"VAE": vae, "K": k, "method": method, "mse_per_pixel": km * f, "usage": 0.9,
                             "dead": 1, "perplexity": 50.0, "bits_per_image": 49 * np.log2(k), "fit_seconds": 1.0})
    return pd.DataFrame(rows)


def test_prose_renders_as_text_in_every_form():
    p = prose.Prose("MSE  **0.00424**,\n 1.74 times lower")
    assert p._repr_markdown_() == "MSE **0.00424**, 1.74 times lower"
    assert "<strong>0.00424</strong>" in p._repr_html_() and "object at" not in p._repr_html_()
    assert repr(p) == str(p) == p.text
    assert p == prose.Prose("MSE **0.00424**, 1.74 times lower")


def test_mse_ratio_is_per_vae_and_k():
    ratio = selection.mse_ratio(codebook_rows(1.1, 1.2), "w2")
    assert len(ratio) == 4 and np.allclose(ratio, 1.1)
    assert "W2 K-means on [μ, σ]" in ratio.name


@pytest.mark.parametrize("factor, words", [(1.1, "test MSE is higher in every setting"),
                                           (0.9, "test MSE is lower in every setting")])
def test_w2_summary_chooses_its_direction_from_the_numbers(factor, words):
    rows = codebook_rows(factor, 1.2)
    errors = pd.DataFrame([{"VAE": v, "method": m, "mu_sq_error": 1.0 if m == "kmeans" else 1.5,
                            "sigma_sq_error": 0.5} for v in ("FlatVAE", "GridVAE") for m in ("kmeans", "w2")]
                          ).set_index(["VAE", "method"])
    text = prose.w2_summary(rows, errors).text
    assert words in text
    assert f": {factor:.2f} times as large" in text  # a range whose ends print alike prints once
    assert "25% of W2's squared error is in σ" in text and "1.50 times that of K-means" in text


def test_w2_summary_counts_mixed_settings():
    rows = codebook_rows(1.1, 1.2)
    rows.loc[(rows["method"] == "w2") & (rows["K"] == 64), "mse_per_pixel"] *= 0.5
    errors = pd.DataFrame([{"VAE": "GridVAE", "method": m, "mu_sq_error": 1.0, "sigma_sq_error": 0.1}
                           for m in ("kmeans", "w2")]).set_index(["VAE", "method"])
    assert "lower in 2 of 4 settings and higher in the others" in prose.w2_summary(rows, errors).text


def test_w2_numbers_quote_the_largest_k():
    rows = codebook_rows(1.1, 1.2)
    numbers = selection.w2_numbers(rows, {"FlatVAE": 0.002, "GridVAE": 0.001})
    assert numbers["w2_worse_count"] == numbers["n_settings"] == 4 and numbers["kmax"] == 512
    grid_512 = rows[(rows["VAE"] == "GridVAE") & (rows["K"] == 512) & (rows["method"] == "kmeans")]
    assert numbers["grid_kmeans_kmax_mse"] == pytest.approx(grid_512["mse_per_pixel"].iloc[0])
    assert numbers["grid_kmax_gap"] == pytest.approx(grid_512["mse_per_pixel"].iloc[0] / 0.001)


@pytest.mark.parametrize("factor, words", [(1.3, "higher at every K"), (0.8, "lower at every K")])
def test_geodesic_verdict_direction(factor, words):
    assert words in prose.geodesic_verdict(codebook_rows(1.1, factor)).text


def test_geodesic_verdict_mixed():
    rows = codebook_rows(1.1, 1.3)
    rows.loc[(rows["method"] == "geodesic") & (rows["K"] == 64), "mse_per_pixel"] *= 0.5
    text = prose.geodesic_verdict(rows).text
    assert "lower at 2 of 4 K and higher at the others" in text and "hypothesis" not in text


def test_repair_summary():
    repairs = pd.DataFrame({"components": [7, 7], "test usage": [1.0, 0.9], "dead codes": [0, 51],
                            "test MSE": [0.003, 0.0031]}, index=pd.Index(["mst", "none"], name="repair"))
    text = prose.repair_summary(repairs, 3).text
    assert "With k = 3 the graph has 7 components" in text and "90.0% of its codes" in text and "(51 dead)" in text
    assert "nothing to repair" in prose.repair_summary(pd.DataFrame(), None).text


def test_cluster_shares():
    text = prose.cluster_shares({"geodesic K-medoids": np.array([0, 0, 0, 1]), "Euclidean K-means": np.array([0, 1, 1, 0])}).text
    assert text == ("The largest of the 2 clusters holds 75% of these landmarks under geodesic K-medoids, "
                    "and 50% under Euclidean K-means.")


def prior_records() -> list[dict]:
    rows = []
    for codes, k in (("grid_kmeans_K512", 512), ("grid_w2_K512", 512), ("flat_kmeans_K128", 128)):
        for prior, nll in (("pixelcnn", 3.0), ("transformer", 3.2)):
            nll += 0.1 * ("w2" in codes)
            rows.append({"codes": codes, "K": k, "prior": prior, "nll_nats_per_token": nll, "perplexity": np.exp(nll),
                         "bits_per_image": nll * 49 / np.log(2), "unigram_nll": 5.0, "test_entropy_nats": 5.5,
                         "context_gain_nats": 5.0 - nll, "positions": 49, "epochs": 1})
    return rows


def test_prior_rows_and_summary():
    table = tables.prior_rows(prior_records())
    assert list(table["VAE"].unique()) == ["GridVAE", "FlatVAE"] and set(table["method"]) == {"kmeans", "w2"}
    text = prose.prior_summary(table).text
    assert text.startswith("6 of 6 priors have a held-out NLL below the context-free prior")
    assert "Where both architectures were trained (3 code sets), the pixelcnn has the lower test NLL on every one." in text
    assert f"codes a test image in {3.0 * 49 / np.log(2):.0f} bits instead of 441" in text
    table.loc[0, "nll_nats_per_token"] = 6.0
    assert "Not below it: pixelcnn on grid_kmeans_K512 (6.000 against 5.000, 1 epoch)" in prose.prior_summary(table).text
    # with the pixelcnn at 6.0 on grid_kmeans_K512, the transformer wins that code set
    assert "(3 code sets), the lower test NLL comes from the pixelcnn on 2 and the transformer on 1." in \
        prose.prior_summary(table).text


def test_prior_table_has_every_prior_column():
    table = tables.prior_rows(prior_records())
    view = tables.prior_table(table, ("pixelcnn", "transformer"))
    assert list(view.data.columns) == ["code entropy (test, nats)", "context-free NLL (nats per code)",
                                       "nll_nats_per_token", "coded_bits_per_image"]
    assert list(view.data.index.get_level_values("prior")) == ["pixelcnn", "transformer"] * (len(view.data) // 2)
    html = view.to_html()
    assert "test NLL (nats per code)" in html and "nll_nats_per_token" not in html  # reader-facing names
    bars = tables.prior_bars(table)
    assert set(bars["model"]) == {"context-free", "pixelcnn", "transformer"} and len(bars) == 3 + 6


def vq_rows() -> pd.DataFrame:
    rows = []
    # test and validation MSE disagree on purpose: ema is best on test, ema_restart on validation
    for name, mse, val, usage in (("vanilla", 0.004, 0.0041, 0.5), ("ema", 0.0027, 0.0030, 0.9),
                                  ("ema_restart", 0.0028, 0.0029, 1.0), ("hybrid", 0.0025, 0.0025, 1.0)):
        rows.append({"method": f"VQ-VAE {name}", "K": 512, "mse_per_pixel": mse, "val_mse_per_pixel": val,
                     "usage": usage, "dead": 0, "perplexity": 100.0, "bits_per_image": 441.0, "train_seconds": 10.0,
                     "diverged": ""})
    rows.append({"method": "VQ-VAE vanilla", "K": 128, "mse_per_pixel": 0.005, "val_mse_per_pixel": 0.005, "usage": 0.4,
                 "dead": 0, "perplexity": 40.0, "bits_per_image": 343.0, "train_seconds": 10.0, "diverged": ""})
    for k, mse in ((512, 0.0042), (128, 0.005)):
        rows.append({"method": "a posteriori kmeans", "K": k, "mse_per_pixel": mse, "val_mse_per_pixel": np.nan,
                     "usage": 1.0, "dead": 0,
                     "perplexity": 300.0, "bits_per_image": 441.0, "train_seconds": np.nan, "diverged": ""})
    return pd.DataFrame(rows)


def test_the_best_end_to_end_variant_is_chosen_on_validation_and_never_the_hybrid():
    table = vq_rows()
    assert selection.best_end_to_end(table, 512) == "ema_restart"  # not ema (best on test), not hybrid
    text = prose.vq_summary(table, ("vanilla", "ema", "ema_restart", "hybrid")).text
    assert "vanilla uses 50.0% of its codes" in text and "EMA without restarts uses 90.0%" in text
    assert "The best end-to-end VQ-VAE at K = 512, chosen on the validation images, is ema_restart (test MSE 0.00280" in text
    assert "reaches 0.00420" in text
    assert "At K = 128" not in text  # ema_restart was not trained at the smaller K
    assert [selection.quantizer_kind(q) for q in ("w2", "VQ-VAE ema", "VQ-VAE hybrid")] == [
        "a posteriori", "end to end", "a posteriori start, fine-tuned end to end"]


def headline_inputs():
    quantizers = ["kmeans", "geodesic", "w2", "VQ-VAE ema", "VQ-VAE hybrid"]
    codebooks = pd.DataFrame(
        [{"VAE": "GridVAE", "method": m, "K": 512, "mse_per_pixel": mse, "usage": 1.0, "perplexity": 400.0,
          "bits_per_image": 441.0, "fit_seconds": 5.0} for m, mse in (("kmeans", 0.004), ("w2", 0.0045),
                                                                       ("geodesic", 0.0048))]
        + [{"VAE": None, "method": f"VQ-VAE {v}", "K": 512, "mse_per_pixel": mse, "usage": 0.9,
            "perplexity": 300.0, "bits_per_image": 441.0, "fit_seconds": np.nan}
           for v, mse in (("ema", 0.002), ("hybrid", 0.0016))])
    priors = pd.DataFrame([{"codes": selection.code_set_name(q, 512), "prior": kind, "nll_nats_per_token": nll,
                            "val_nll": nll, "bits_per_image": nll * 49 / np.log(2), "train_seconds": 3.0}
                           for q in quantizers for kind, nll in (("pixelcnn", 3.0), ("transformer", 3.5))]
                          ).set_index(["codes", "prior"])
    fidelity = pd.DataFrame([{"generator": q, "prior": p, "frechet_distance": fd, "inception_score": 5.0}
                             for q in quantizers for p, fd in (("pixelcnn", 100.0 + len(q)), ("transformer", 300.0),
                                                               ("uniform codes", 900.0))]).set_index(["generator", "prior"])
    seconds = selection.quantizer_train_seconds(quantizers, 512, codebooks, 60.0, {"ema": 40.0, "hybrid": 30.0},
                                                hybrid_start="geodesic")
    return quantizers, codebooks, priors, fidelity, seconds


def test_headline_table_and_verdict():
    quantizers, codebooks, priors, fidelity, seconds = headline_inputs()
    assert seconds == {"kmeans": 65.0, "geodesic": 65.0, "w2": 65.0, "VQ-VAE ema": 40.0, "VQ-VAE hybrid": 30.0 + 60.0 + 5.0}
    codebooks.loc[codebooks["method"] == "kmeans", "fit_seconds"] = 2.0  # the hybrid is charged its own start's fit
    assert selection.quantizer_train_seconds(quantizers, 512, codebooks, 60.0, {"ema": 40.0, "hybrid": 30.0},
                                             hybrid_start="kmeans")["VQ-VAE hybrid"] == 30.0 + 60.0 + 2.0
    table = selection.headline(quantizers, 512, codebooks, priors, fidelity, seconds, ("pixelcnn", "transformer"))
    assert list(table["quantizer"]) == quantizers
    assert table.loc[0, "prior bits"] == pytest.approx(3.0 * 49 / np.log(2))
    assert table.loc[0, "wall time (s)"] == pytest.approx(65.0 + 6.0)
    assert list(table["kind"]) == ["a posteriori"] * 3 + ["end to end", "a posteriori start, fine-tuned end to end"]
    assert list(table["prior (validation)"]) == ["pixelcnn"] * 5
    text = prose.fidelity_prose(table, 2.0, 9.7).text
    assert "Fréchet distance runs from 102.0 (w2) to 113.0, 51 to 56 times that of real training images (2.00)" in text


def test_headline_refuses_a_missing_cell():
    quantizers, codebooks, priors, fidelity, seconds = headline_inputs()
    with pytest.raises(ValueError, match="expected one codebook row for 'w2'"):
        selection.headline(quantizers, 512, codebooks[codebooks["method"] != "w2"], priors, fidelity, seconds, ("pixelcnn",))
    priors.loc[("grid_w2_K512", "pixelcnn"), "nll_nats_per_token"] = np.nan
    with pytest.raises(ValueError, match="every cell"):
        selection.headline(quantizers, 512, codebooks, priors, fidelity, seconds, ("pixelcnn",))


def test_studies_table_finds_ours_or_none():
    _, codebooks, priors, _, _ = headline_inputs()
    reported = [{"study": "003", "quantity": "q", "setting": "s", "reported": 0.01, "their data": "d", "flaw": "f",
                 "ours": ("quantizer", "GridVAE", "geodesic", 512, "mse_per_pixel")},
                {"study": "003", "quantity": "q", "setting": "s", "reported": 0.01, "their data": "d", "flaw": "f",
                 "ours": ("quantizer", None, "VQ-VAE vanilla", 128, "mse_per_pixel")}]
    table = tables.studies_table(reported, codebooks, priors)
    assert table["ours (test set)"].iloc[0] == pytest.approx(0.0048) and pd.isna(table["ours (test set)"].iloc[1])
    assert tables.records(table)[1]["ours (test set)"] is None


def test_styled_formats_known_columns_and_hides_the_index():
    html = tables.styled(pd.DataFrame({"mse_per_pixel": [0.0012345], "usage": [0.5], "x": [1.23456],
                                       "dead": [3.0], "kl_nats": [16.0772]})).to_html()
    assert "0.00123" in html and "0.500" in html and ">1.235<" in html  # four significant digits by default
    assert ">3<" in html and "3.0" not in html  # counts as integers
    assert "test MSE" in html and "KL (nats)" in html and "kl_nats" not in html  # reader-facing names
    assert "0.123" in tables.styled(pd.DataFrame({"a": [0.12345]}), precision=3).to_html()


def test_pullback_verdict_compares_with_kmeans_and_straight_lines():
    earlier = codebook_rows(1.1, 1.2)
    rows = []
    for vae in ("FlatVAE", "GridVAE"):
        for k in (64, 512):
            km = earlier[(earlier["VAE"] == vae) & (earlier["K"] == k) & (earlier["method"] == "kmeans")]["mse_per_pixel"].iloc[0]
            # on validation pullback_mean is best; on test pullback_position would be
            for method, f, val in (("pullback_mean", 0.6, 0.1), ("pullback_position", 0.58, 0.2), ("pullback_geodesic", 0.7, 0.3)):
                rows.append({"VAE": vae, "K": k, "method": method, "mse_per_pixel": km * f, "val_mse_per_pixel": val})
    text, numbers = prose.pullback_verdict(pd.DataFrame(rows), earlier, 512)
    assert ("On the GridVAE at K = 512, the decoder-aware codebook chosen on validation (K-means under the mean "
            "pullback metric)") in text.text, text.text
    assert "0.60 times that of K-means on μ (40% lower)" in text.text
    assert "reaches 1.17 times the MSE of K-means under the same metric: it is worse at every K" in text.text
    assert numbers["grid_pullback_ratio"] == pytest.approx(0.6)
    with pytest.raises(KeyError):  # rows without validation numbers cannot choose: never on the test MSE
        prose.pullback_verdict(pd.DataFrame(rows).drop(columns="val_mse_per_pixel"), earlier, 512)
    table = selection.with_ratio_to_kmeans(pd.DataFrame(rows), earlier)
    assert np.allclose(table.groupby("method")["MSE / K-means"].first().sort_index(), [0.7, 0.6, 0.58])


def test_selection_sees_only_validation_numbers():
    assert selection.best_on_validation({"pullback_mean": 0.0025, "pullback_position": 0.0024}) == "pullback_position"
    with pytest.raises(ValueError):
        selection.best_on_validation({})


def test_linearisation_summary_gives_the_spread():
    lin = pd.DataFrame([{"codebook": "a", "predicted": 1.0, "measured": 2.0, "predicted / measured": 0.5},
                        {"codebook": "b", "predicted": 0.9, "measured": 1.0, "predicted / measured": 0.9}])
    assert prose.linearisation_summary(lin).text.startswith("The first-order prediction is 0.50 to 0.90 times")


def test_verdict_prose_says_same_when_equal_to_two_decimals():
    codebooks, priors, adaptation = _verdict_inputs()
    codebooks.loc[codebooks["quantizer"] == "VQ-VAE vanilla", "mse_per_pixel"] = 0.0041 / 0.998
    v = selection.verdict_numbers(codebooks, priors, adaptation, ("pixelcnn", "transformer"), 512)
    assert "the same as that of the end-to-end VQ-VAE to two decimals (0.998 times)" in conclusions.verdict_prose(v).text


def test_selection_refuses_test_metrics():
    scores = pd.DataFrame({"val_mse_per_pixel": [0.3, 0.1], "mse_per_pixel": [0.0, 0.9]}, index=["a", "b"])
    assert selection.select_on_validation(scores, "val_mse_per_pixel") == "b"
    for column in ("mse_per_pixel", "test_mse", "nll_nats_per_token"):
        with pytest.raises(ValueError, match="validation metric"):
            selection.select_on_validation(scores, column)


def test_mse_at_rate_interpolates_log_log_and_never_extrapolates():
    rates, mses = [100.0, 400.0], [0.004, 0.001]
    assert selection.mse_at_rate(rates, mses, 200.0) == pytest.approx(0.002)  # a power law is a line in log-log
    assert selection.mse_at_rate(rates, mses, 100.0) == pytest.approx(0.004)
    assert selection.mse_at_rate(rates, mses, 50.0) is None and selection.mse_at_rate(rates, mses, 500.0) is None


def _curve(rates, mses):
    return pd.DataFrame({"coded_bits_per_image": rates, "mse_per_pixel": mses})


def test_equal_rate_comparison_on_a_synthetic_curve():
    # a: MSE = 0.4 / rate, b: MSE = 0.8 / rate; c costs more bits for the same MSE as a
    curves = {"a": _curve([100, 400], [0.004, 0.001]), "b": _curve([50, 300], [0.016, 0.8 / 300]),
              "c": _curve([150, 600], [0.004, 0.001])}
    eq = selection.equal_rate_comparison(curves, "a", "b", "coded_bits_per_image")
    assert eq["rate"] == pytest.approx(np.sqrt(100 * 300))
    assert eq["ratio"] == pytest.approx(0.5, rel=1e-6)
    assert eq["ranking"] == ["a", "c", "b"] or eq["ranking"][0] == "a"
    apart = selection.equal_rate_comparison({"a": _curve([10, 20], [1, 0.5]), "b": _curve([40, 80], [1, 0.5])},
                                         "a", "b", "coded_bits_per_image")
    assert apart["rate"] is None and apart["ratio"] is None


def _verdict_inputs():
    rows = []
    for q, val, test, coded in (("kmeans", 0.0040, 0.0041, (150, 250)), ("w2", 0.0045, 0.0044, (120, 220)),
                                ("VQ-VAE ema_restart", 0.0030, 0.0031, (140, 230)),
                                ("VQ-VAE vanilla", 0.0020, 0.0050, (100, 200)),  # best on validation, worse on test
                                ("VQ-VAE hybrid", 0.0025, 0.0026, (150, 250))):
        for k, factor, bits in ((128, 1.5, coded[0]), (512, 1.0, coded[1])):
            rows.append({"quantizer": q, "K": k, "mse_per_pixel": test * factor, "val_mse_per_pixel": val * factor,
                         "bits_per_image": 49 * np.log2(k), "coded": bits})
    codebooks = pd.DataFrame(rows)
    priors = []
    for r in rows:
        codes = selection.code_set_name(r["quantizer"], r["K"])
        for prior, extra in (("pixelcnn", 0.0), ("transformer", 5.0)):
            priors.append({"codes": codes, "prior": prior, "val_nll": 2.0 + extra, "nll_nats_per_token": 1.0,
                           "bits_per_image": r["coded"] + extra})
    priors = pd.DataFrame(priors).drop_duplicates(["codes", "prior"]).set_index(["codes", "prior"])
    adaptation = pd.DataFrame([{"method": "kmeans", "val_mse_adapted": 0.0030, "test_mse_adapted": 0.0032,
                                "adaptation_gain": 1 - 0.0032 / 0.0041},
                               {"method": "w2", "val_mse_adapted": 0.0035, "test_mse_adapted": 0.0034,
                                "adaptation_gain": 1 - 0.0034 / 0.0044}])
    return codebooks.drop(columns="coded"), priors, adaptation


def test_verdict_selects_on_validation_and_reports_test_once():
    codebooks, priors, adaptation = _verdict_inputs()
    v = selection.verdict_numbers(codebooks, priors, adaptation, ("pixelcnn", "transformer"), 512)
    assert v["selected_on"] == "validation"
    assert v["best_end_to_end"] == "VQ-VAE vanilla"  # chosen on validation although its test MSE is the worst
    assert v["best_a_posteriori"] == "kmeans"
    assert v["mse_ratio_a_posteriori_over_end_to_end"] == pytest.approx(0.0041 / 0.0050)
    assert v["mse_ratio_a_posteriori_over_hybrid"] == pytest.approx(0.0041 / 0.0026)
    assert v["decoder_adaptation_gain"]["kmeans"] == pytest.approx(1 - 0.0032 / 0.0041)
    assert set(v["selected_prior"].values()) == {"pixelcnn"}  # lower validation NLL
    eq = v["at_equal_coded_rate"]
    assert eq["rate"] == pytest.approx(np.sqrt(150 * 200))
    text = conclusions.verdict_prose(v).text
    assert "vanilla" in text and "% lower)" in text and "coded" in text


def test_verdict_prose_direction_follows_the_numbers():
    codebooks, priors, adaptation = _verdict_inputs()
    codebooks.loc[codebooks["quantizer"] == "VQ-VAE vanilla", "mse_per_pixel"] /= 10
    v = selection.verdict_numbers(codebooks, priors, adaptation, ("pixelcnn", "transformer"), 512)
    assert v["mse_ratio_a_posteriori_over_end_to_end"] > 1
    assert "% higher)" in conclusions.verdict_prose(v).text


def test_a_range_whose_ends_print_alike_prints_once():
    from geohelpers.prose import span_text

    assert span_text(1.001, 1.004) == "1.00" and span_text(0.9, 1.2) == "0.90 to 1.20"
    assert span_text(168.0, 168.2, "{:.0f}", "-") == "168" and span_text(192.2, 248.2, "{:.0f}", "-") == "192-248"


@pytest.mark.parametrize("flags, words", [([True, True], "lower at every K"), ([False, False], "higher at every K"),
                                          ([True, False, True], "lower at 2 of 3 K and higher at the others")])
def test_direction_words_are_read_off_the_numbers(flags, words):
    assert prose.direction(flags) == words
    assert prose.direction(flags, "better", "worse", ("in", "seed", "seeds"), mixed="mixed") == (
        words.replace("lower", "better").replace("higher", "worse").replace(" at ", " in ").replace(" K", " seed")
        if all(flags) or not any(flags) else "mixed")
    assert prose.compared(0.9) == "lower" and prose.compared(1.1) == "higher"


def test_the_findings_are_at_most_four_sentences_and_read_their_direction_off_the_numbers():
    v = {"best_a_posteriori": "pullback_vector", "best_end_to_end": "VQ-VAE ema", "k": 512,
         "mse_ratio_a_posteriori_over_end_to_end": 1.12, "mse_ratio_adapted_over_end_to_end": 0.97,
         "at_equal_coded_rate": {"rate": None, "span_a": [192.2, 248.2], "span_b": [168.0, 168.0]}}
    text = conclusions.findings(v, 0.1).text
    assert text.count(". ") + 1 <= 4 and "β = 0.1" in text and "12% higher" in text and "3% lower" in text
    assert "(168 bits per image)" in text and "(192-248), and none is made by extrapolating" in text
    v["at_equal_coded_rate"] = {"rate": 200.0, "ratio": 1.3, "span_a": [150, 250], "span_b": [120, 260]}
    assert "equal coded rate of 200 bits per image" in conclusions.findings(v, 0.3).text
    # the record's whole verdict: still at most five sentences
    v.update({"at_equal_coded_rate": {"rate": 117.0, "rates": [101.0, 117.0, 134.0], "ratios": [2.2, 2.05, 1.96],
                                      "span_a": [90, 250], "span_b": [70, 160]},
              "bd_rate": {"a posteriori": {"bd_rate_pct": 73.0}, "a posteriori, adapted decoder": {"bd_rate_pct": None}},
              "best_generator": {"curve": "end to end", "K": 32, "temperature": 1.0, "coded_bits": 89.0, "fd": 49.6,
                                 "fd_over_floor": 16.0, "is": 8.28}})
    full = conclusions.findings(v, 0.1).text
    assert full.count(". ") + 1 <= 5 and "+73 % (more bits)" in full and "has none" in full, full


def test_the_earlier_studies_reported_range_is_read_from_their_record():
    assert prose.reported_range("code usage, VQ-VAE", "{:.0%}").text == "10% to 12%"
    with pytest.raises(ValueError, match="no earlier study reported"):
        prose.reported_range("nothing")


def test_the_medoid_control_sentence_follows_its_numbers():
    def control(straight, free):
        return pd.DataFrame({"codebook": ["geodesic K-medoids", "straight-line K-medoids, same landmarks", "K-means"],
                             "MSE / geodesic": [1.0, straight, free]})

    paths_hurt = prose.medoid_control_prose({"GridVAE": control(0.8, 0.6)}, 512, "geodesic K-medoids", "K-means on μ")
    assert "reaches 0.80 times" in paths_hurt and "the paths along the graph raise the error by 25%" in paths_hurt
    assert "K-means on μ, whose centroids need not be landmarks, 0.60 times" in paths_hurt
    assert "the medoid constraint raises the error by 33%" in paths_hurt and paths_hurt.startswith("At K = 512, on the GridVAE")
    paths_help = prose.medoid_control_prose({"GridVAE": control(1.3, 1.4)}, 512, "geodesic K-medoids", "K-means")
    assert "lower the error by 23%" in paths_help and "the medoid constraint lowers the error by 7%" in paths_help
    same = prose.medoid_control_prose({"GridVAE": control(1.001, 1.0)}, 512, "geodesic K-medoids", "K-means")
    assert "change the error by less than 0.5%" in same and "changes the error by less than 0.5%" in same
    rows = codebook_rows(1.1, 1.2)
    rows = pd.concat([rows, rows[rows["method"] == "kmeans"].assign(method="geodesic",
                                                                    mse_per_pixel=lambda t: t["mse_per_pixel"] * 1.5)])
    assert "A hypothesis" in prose.geodesic_verdict(rows).text
    measured = prose.geodesic_verdict(rows, {"GridVAE": control(0.8, 0.6)}, 512).text
    assert "A hypothesis" not in measured and "straight-line K-medoids on the same landmarks" in measured


def test_a_table_of_wall_times_carries_the_reference_workload(monkeypatch):
    from geohelpers.train import REFERENCE_ENV

    tables.reference_seconds.cache_clear()
    monkeypatch.setenv(REFERENCE_ENV, "2.345")
    timed = tables.styled(pd.DataFrame({"method": ["a"], "train_seconds": [12.0]})).to_html()
    assert "reference workload" in timed and "2.35 s" in timed
    assert "reference workload" not in tables.styled(pd.DataFrame({"method": ["a"], "usage": [0.5]})).to_html()
    tables.reference_seconds.cache_clear()


def test_prior_choices_names_each_vae_and_its_architecture():
    from geohelpers import prose

    text = prose.prior_choices({"prior_grid": "pixelcnn", "prior_flat": "transformer"})
    assert str(text) == "gridVAE: pixelcnn; flatVAE: transformer"


def test_the_adaptation_control_is_the_row_without_k_and_its_sentence_reads_its_direction_off_the_numbers():
    rows = pd.DataFrame([
        {"method": "kmeans", "K": 512, "test_mse": 0.0040, "test_mse_adapted": 0.0030, "adaptation_gain": 0.25,
         "epochs": 5, "stop_reason": "patience"},
        {"method": "pullback_vector", "K": 512, "test_mse": 0.0030, "test_mse_adapted": 0.0027, "adaptation_gain": 0.10,
         "epochs": 3, "stop_reason": "patience"},
        {"method": "continuous mu (control)", "K": None, "test_mse": 0.0020, "test_mse_adapted": 0.0010,
         "adaptation_gain": 0.5, "epochs": 4, "stop_reason": "patience"}])
    c = selection.adaptation_control(rows)["decoder_adaptation_control"]
    assert (c["test_mse"], c["gain"], c["epochs"]) == (0.0020, 0.5, 4)
    assert selection.adaptation_control(rows[rows["K"].notna()]) == {}
    gains = {"kmeans": 0.25, "pullback_vector": 0.10}
    assert "more than on any codebook's codes" in conclusions.adaptation_control_sentence(c, gains)
    assert "lowers the continuous reconstructions' test MSE by 50%" in conclusions.adaptation_control_sentence(c, gains)
    less = conclusions.adaptation_control_sentence({**c, "gain": 0.05}, gains)
    assert "less than on every codebook's codes: the codes add 5 to 20 percentage points" in less
    assert "within the codebooks' range" in conclusions.adaptation_control_sentence({**c, "gain": 0.2}, gains)
    assert "raises" in conclusions.adaptation_control_sentence({**c, "gain": -0.1}, gains)


def test_the_verdict_sets_the_adaptation_control_beside_the_codebooks_gain():
    codebooks, priors, adaptation = _verdict_inputs()
    v = selection.verdict_numbers(codebooks, priors, adaptation, ("pixelcnn", "transformer"), 512)
    assert "Its control" not in conclusions.verdict_prose(v).text  # no control row, no sentence
    control = pd.DataFrame([{"method": "continuous mu (control)", "K": None, "test_mse": 0.002,
                             "test_mse_adapted": 0.0019, "adaptation_gain": 0.05, "epochs": 2, "stop_reason": "patience"}])
    v.update(selection.adaptation_control(control))
    assert "Its control, the same fine-tuning of the decoder on the continuous μ (no codes), lowers" in \
        conclusions.verdict_prose(v).text


def test_the_backend_sentence_follows_the_losses():
    def backends(fast, alt):
        return pd.DataFrame({"K-medoids loss": [fast, alt]}, index=pd.Index(["fasterpam", "sklearn_extra"], name="backend"))

    assert prose.backend_sentence(backends(90.0, 100.0)).text == \
        "FasterPAM's loss is lower than the alternate method's by a fraction 0.100 of it."
    assert "is higher than the alternate method's by a fraction 0.200" in prose.backend_sentence(backends(120.0, 100.0)).text
    assert "equals the alternate method's" in prose.backend_sentence(backends(100.0, 100.0)).text


def test_the_assignment_sentence_follows_the_rules():
    def rules(geo_mse, near_mse):
        index = pd.MultiIndex.from_tuples([(v, r) for v in ("FlatVAE", "GridVAE") for r in ("geodesic", "nearest landmark")],
                                          names=["VAE", "rule"])
        return pd.DataFrame({"test MSE": [geo_mse, near_mse] * 2, "vectors coded differently (test)": [0.25] * 4},
                            index=index)

    helps = prose.assignment_summary(rules(0.009, 0.010)).text
    assert "on the GridVAE it codes 25.0% of the test vectors differently and lowers the error by 10%" in helps
    assert "on the FlatVAE" in helps and "(test MSE 0.00900 against 0.01000)" in helps
    assert "raises the error by 20%" in prose.assignment_summary(rules(0.012, 0.010)).text
    assert "changes the error by less than 0.5%" in prose.assignment_summary(rules(0.010, 0.01001)).text


def test_the_anisotropy_sentence_reads_the_metric_summary():
    summary = pd.DataFrame({"largest eigenvalue's share of the trace": [0.62, 0.957],
                            "condition number (mean metric)": [7.09, 20615.0]}, index=["FlatVAE", "GridVAE"])
    assert prose.metric_anisotropy(summary).text == (
        "On average over positions, the largest eigenvalue of a position's mean pullback metric holds 62% of its "
        "trace on the FlatVAE (condition number of the mean metric 7.09) and 96% on the GridVAE (2.06e+04).")


def test_the_stopping_summary_counts_what_the_cap_stopped():
    assert prose.stopping_summary([12, 23, 9], ["patience"] * 3, 60, "priors").text == \
        "The stopping rule ended all 3 priors, the longest after 23 of at most 60 epochs."
    capped = prose.stopping_summary([1, 1], ["max_epochs", "patience"], 1, "priors").text
    assert capped == ("The stopping rule ended 1 of the 2 priors; 1 reached the cap of 1 epoch, "
                      "so it is not trained to convergence.")
    assert "2 reached the cap of 3 epochs, so they are" in prose.stopping_summary([3, 3], ["max_epochs"] * 2, 3, "x").text


def test_a_one_code_set_prints_its_entropy_as_zero():
    table = tables.prior_rows(prior_records())
    table.loc[0, "test_entropy_nats"] = -1e-17  # -sum p log p of a single code, after rounding
    for view in (tables.prior_table(table, ("pixelcnn", "transformer")), tables.prior_code_table(table)):
        html = view.to_html()
        assert "-0.000" not in html and "0.000" in html


def test_studies_table_gives_the_nearest_setting_run_when_the_studys_is_not():
    from geohelpers.studies import END_TO_END

    _, codebooks, priors, _, _ = headline_inputs()
    at_128 = pd.DataFrame([{"VAE": None, "method": f"VQ-VAE {v}", "K": 128, "mse_per_pixel": test, "val_mse_per_pixel": val,
                            "usage": 0.8} for v, test, val in (("ema", 0.003, 0.0031), ("ema_restart", 0.0025, 0.0033),
                                                               ("hybrid", 0.001, 0.001))])
    codebooks = pd.concat([codebooks, at_128], ignore_index=True)
    entry = {"study": "003", "quantity": "q", "setting": "s", "reported": 0.01, "their data": "d", "flaw": "f",
             "ours": ("quantizer", None, "VQ-VAE vanilla", 128, "mse_per_pixel"),
             "nearest": ("quantizer", None, END_TO_END, 128, "mse_per_pixel")}
    row = tables.records(tables.studies_table([entry], codebooks, priors))[0]
    # chosen on validation (ema), never on test (ema_restart) nor the hybrid, which starts from the VAE
    assert row["ours (test set)"] is None
    assert row["ours, nearest setting run"] == "0.003: VQ-VAE ema, K = 128 (the end-to-end variant chosen on validation at this K)"
    ran = dict(entry, ours=("quantizer", None, "VQ-VAE ema", 128, "mse_per_pixel"))
    assert tables.records(tables.studies_table([ran], codebooks, priors))[0]["ours, nearest setting run"] is None
    nothing = dict(entry, nearest=("quantizer", None, END_TO_END, 64, "mse_per_pixel"))
    assert tables.records(tables.studies_table([nothing], codebooks, priors))[0]["ours, nearest setting run"] is None


def test_the_studies_view_blanks_the_nearest_column_where_the_setting_ran():
    table = pd.DataFrame([{"study": "003", "quantity": "q", "setting": "s", "reported": 0.01, "their data": "d",
                           "ours (test set)": v, "ours, nearest setting run": n, "flaw": "f"}
                          for v, n in ((0.002, None), (None, "0.003: VQ-VAE ema, K = 128"), (None, None))])
    html = tables.studies_view(table).to_html()
    assert html.count("not run") == 2 and "0.003: VQ-VAE ema, K = 128" in html and "None" not in html
