"""The install instructions stay consistent: pip pins, conda pins, README commands and CI."""

import re
import subprocess
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _pyproject_pins() -> dict[str, str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    reqs = project["dependencies"] + [r for extra in project["optional-dependencies"].values() for r in extra]
    return dict(r.split("==") for r in reqs)


def _environment_pins() -> dict[str, str]:
    pins = re.findall(r"^\s+- ([A-Za-z0-9_.\-]+)==(\S+)\s*$", (ROOT / "environment.yml").read_text(), re.M)
    return dict(pins)


def test_every_dependency_is_pinned_exactly():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    reqs = project["dependencies"] + [r for extra in project["optional-dependencies"].values() for r in extra]
    assert all(re.fullmatch(r"[A-Za-z0-9_.\-]+==[0-9][\w.]*", r) for r in reqs), reqs


def test_conda_environment_and_pip_pins_do_not_drift():
    assert _environment_pins() == _pyproject_pins()
    assert re.search(r"^\s+- python=3\.11\s*$", (ROOT / "environment.yml").read_text(), re.M)


def test_known_bad_pins_are_avoided():
    pins = _pyproject_pins()
    assert pins["torch"] != "2.13.0", "torch 2.13.0's torchvision fails to import"
    assert pins["jupyter-book"].startswith("1."), "jupyter-book 2.x fetches its theme from the network"
    assert pins["numpy"].startswith("1."), "scikit-learn-extra 0.3.0 imports only with numpy 1.x"
    assert tuple(int(p) for p in pins["scikit-learn"].split(".")[:2]) < (1, 10)


def _readme_command(name: str) -> str:
    text = (ROOT / "README.md").read_text()
    m = re.search(rf"<!-- command:{name} -->\s*```(?:bash|sh)?\n(.*?)\n```", text, re.S)
    assert m, f"README.md has no command marked {name!r}"
    return m.group(1).strip()


def test_readme_commands_share_one_setup_and_ci_runs_the_test_one():
    book, test = _readme_command("book"), _readme_command("test")
    setup = "python3 -m venv .venv && .venv/bin/pip install"
    assert book.startswith(setup) and test.startswith(setup)
    assert book.split(" && ")[:2] == test.split(" && ")[:2], "both commands do the same set-up"
    assert "geohelpers.run" in book and "pytest" in test
    printed = subprocess.run(["bash", str(ROOT / ".ci" / "run"), "--print"], capture_output=True, text=True,
                             check=True).stdout.strip()
    assert printed == test
