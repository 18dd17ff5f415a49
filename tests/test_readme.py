"""The README is a front page: short, and its findings equal the figures of record."""

import re
from pathlib import Path

from geohelpers.prose import front_page_findings

ROOT = Path(__file__).resolve().parents[1]


def readme() -> str:
    return (ROOT / "README.md").read_text()


def test_the_readme_findings_equal_the_figures_of_record():
    block = re.search(r"<!-- findings:start -->(.*?)<!-- findings:end -->", readme(), re.S)
    assert block, "README.md has no findings block"
    stated = " ".join(block.group(1).split())
    assert stated == " ".join(front_page_findings(ROOT / "results" / "standard").split()), (
        "README.md's findings differ from results/standard: paste geohelpers.prose.front_page_findings(...)")


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
    assert "The gap widens with β" in front_page_findings(tmp_path)
    r08 = json.loads((tmp_path / "08_seeds_and_beta.json").read_text())
    for row in r08["metrics"]["beta"]["ratios"]:
        row["beta"] = 1.0 / row["beta"]  # the same ratios, the betas reversed
    (tmp_path / "08_seeds_and_beta.json").write_text(json.dumps(r08))
    assert "The gap narrows with β" in front_page_findings(tmp_path)
