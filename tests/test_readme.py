"""The README is a front page: short, and its findings equal the figures of record."""

import re
from pathlib import Path

from geohelpers.conclusions import front_page_findings

ROOT = Path(__file__).resolve().parents[1]


def readme() -> str:
    return (ROOT / "README.md").read_text()


def test_the_readme_findings_equal_the_figures_of_record():
    block = re.search(r"<!-- findings:start -->(.*?)<!-- findings:end -->", readme(), re.S)
    assert block, "README.md has no findings block"
    stated = " ".join(block.group(1).split())
    assert stated == " ".join(front_page_findings(ROOT / "results" / "standard").split()), (
        "README.md's findings differ from results/standard: paste geohelpers.conclusions.front_page_findings(...)")


def test_the_readme_is_a_front_page():
    text = readme()
    lines = text.splitlines()
    assert len(lines) <= 160
    first_screen = "\n".join(lines[:60])
    assert "The question" in first_screen and "findings:start" in first_screen and "command:book" in first_screen
    assert not re.search(r"\b[0-9a-f]{7,40}\b", text), "commit hashes belong in results/standard/README.md"


def test_the_findings_read_the_direction_of_the_beta_trend_off_the_numbers(tmp_path):
    import json
    import shutil

    for name in ("04_priors", "05_vqvae_baseline", "06_comparison", "08_seeds_and_beta"):
        shutil.copy(ROOT / "results" / "standard" / f"{name}.json", tmp_path)
    post = json.loads((tmp_path / "06_comparison.json").read_text())["metrics"]["verdict"]["best_a_posteriori"]
    r08 = json.loads((tmp_path / "08_seeds_and_beta.json").read_text())
    ref = r08["metrics"]["beta"]["end_to_end_reference"]["quantizer"]

    def with_ratios(pairs):  # synthetic beta-sweep ratios of the chosen codebook, whatever the record holds
        r08["metrics"]["beta"]["ratios"] = [{"method": post, "beta": b, f"MSE / {ref}": x} for b, x in pairs]
        (tmp_path / "08_seeds_and_beta.json").write_text(json.dumps(r08))
        return front_page_findings(tmp_path)

    assert "At fixed-length rate the gap widens with β (1.10 at β = 0.1, 1.60 at β = 0.3, 3.70 at β = 1)." in with_ratios(
        [(0.1, 1.1), (0.3, 1.6), (1.0, 3.7)])
    assert "the gap narrows with β" in with_ratios([(0.1, 3.7), (0.3, 1.6), (1.0, 1.1)])
    assert "the gap moves both ways with β" in with_ratios([(0.1, 1.1), (0.3, 3.7), (1.0, 1.6)])
    assert "At other β the record holds no ratio yet." in with_ratios([])


def _record_with_rd(tmp_path, bd_pct, ratios):
    """The committed record's files in ``tmp_path``, its verdict given a coded-rate comparison at three rates,
    a BD-rate and a best generator (synthetic numbers)."""
    import json
    import shutil

    for name in ("04_priors", "05_vqvae_baseline", "06_comparison", "08_seeds_and_beta"):
        shutil.copy(ROOT / "results" / "standard" / f"{name}.json", tmp_path)
    r06 = json.loads((tmp_path / "06_comparison.json").read_text())
    v = r06["metrics"]["verdict"]
    v["at_equal_coded_rate"].update(rates=[80.0, 120.0, 160.0], ratios=ratios)
    v["bd_rate"] = {"a posteriori": {"bd_rate_pct": bd_pct}, "kmeans": {"bd_rate_pct": 300.0}}
    v["best_generator"] = {"curve": "end to end", "K": 16, "temperature": 1.0, "coded_bits": 68.0, "fd": 44.1,
                           "fd_over_floor": 14.2, "is": 8.39}
    (tmp_path / "06_comparison.json").write_text(json.dumps(r06))
    return front_page_findings(tmp_path)


def test_the_findings_state_the_coded_rate_verdict_in_at_most_five_sentences(tmp_path):
    text = _record_with_rd(tmp_path, 57.4, [1.31, 1.42, 1.5])
    assert "(what the code set's prior spends: 80, 120, 160 bits per image) the ratios are 1.31, 1.42, 1.50" in text
    assert "needs +57 % coded bits at equal MSE" in text
    assert ("from the end-to-end VQ-VAE curve at K = 16 and temperature 1 (68 coded bits): test FD 44.1, 14.2 times "
            "the real-data floor") in text
    assert "no comparison" not in text
    assert len(re.findall(r"[.!?](?:\s|$)", text.replace("μ", "mu"))) <= 5, text
    # the sign is read off the number: a curve that needs fewer bits says so
    assert "needs -20 % coded bits" in _record_with_rd(tmp_path, -20.0, [0.9, 0.95, 0.97])


def test_the_findings_set_the_decoder_adaptation_beside_its_control(tmp_path):
    import json

    _record_with_rd(tmp_path, 57.4, [1.31, 1.42, 1.5])
    r06 = json.loads((tmp_path / "06_comparison.json").read_text())
    v = r06["metrics"]["verdict"]
    v["decoder_adaptation_gain"] = {"kmeans": 0.21, "pullback_vector": 0.10}
    for gain, words in ((0.33, "lowers the continuous VAE's own test MSE by 33%, and the codebooks' by 10% to 36% over "
                               "every K, so the control is within the codebooks' range"),  # the record's gains at every K
                        (0.40, "by 40%, and the codebooks' by 10% to 36% over every K, so the control is more than on any"),
                        (0.05, "by 5%, and the codebooks' by 10% to 36% over every K, so the control is less than on every")):
        v["decoder_adaptation_control"] = {"test_mse": 0.0017, "test_mse_adapted": 0.0017 * (1 - gain), "gain": gain,
                                           "epochs": 5, "stop_reason": "patience"}
        (tmp_path / "06_comparison.json").write_text(json.dumps(r06))
        text = front_page_findings(tmp_path)
        assert words in text
        assert len(re.findall(r"[.!?](?:\s|$)", text.replace("μ", "mu"))) <= 5, text


def test_the_findings_say_what_the_record_shows_at_each_rate_and_beta():
    """The referee's sentences (issue 48, items 5-8), on the record: the adapted ratio at both rates, the β trend
    with its cause, and the BD-rate with the overlap it rests on."""
    text = front_page_findings(ROOT / "results" / "standard")
    assert "brings the ratio to 1.00 at fixed-length rate and to 1.64, 1.60, 1.61 at equal coded rate" in text
    assert ("the continuous VAE's own test MSE grows (0.00174 to 0.00768, active units 157 to 80) while quantization's "
            "own cost shrinks (1.34, 1.14, 1.00 times the continuous MSE)") in text
    assert "needs +72 % coded bits" in text and "over the 53% of the MSE range both curves cover, below the 75%" in text
    assert "+52 % with its decoder adapted" in text and "9.5 times the real-data floor" in text
