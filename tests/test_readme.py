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
