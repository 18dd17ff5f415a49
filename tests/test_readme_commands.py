"""Every command in the README runs as written: each fenced ``bash`` block is taken from README.md and run at
once, the runner's with ``--dry-run`` (which checks every argument and plans the call, but builds and executes
nothing) and papermill's with ``--prepare-only`` (the parameters it injects then resolve into a configuration).
The install step before ``&&`` is the one this suite itself was installed by; the test command is this suite."""

import json
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from geohelpers import run
from geohelpers.config import resolve

ROOT = Path(__file__).resolve().parents[1]


def readme_commands() -> list[str]:
    """The README's fenced bash commands, one string each (backslash continuations joined)."""
    lines, inside, out = (ROOT / "README.md").read_text().splitlines(), False, []
    for line in lines:
        if line.startswith("```"):
            inside = line.strip() == "```bash"
            continue
        if inside:
            if out and out[-1].endswith("\\"):
                out[-1] = out[-1][:-1].rstrip() + " " + line.strip()
            else:
                out.append(line.strip())
    return [c for c in out if c]


def last_step(command: str) -> list[str]:
    """The words of the command after its last ``&&`` (the install steps before it are this suite's own)."""
    return shlex.split(command.split("&&")[-1])


def test_the_readme_has_the_commands_this_test_runs():
    commands = readme_commands()
    assert len(commands) >= 6
    kinds = [last_step(c)[0:3] for c in commands]
    assert [".venv/bin/python", "-m", "geohelpers.run"] in kinds and [".venv/bin/python", "-m", "pytest"] in kinds
    assert any(c.startswith(".venv/bin/papermill") for c in commands)


@pytest.mark.parametrize("command", [c for c in readme_commands() if "geohelpers.run" in c])
def test_every_runner_command_of_the_readme_is_accepted(command, tmp_path, monkeypatch, capsys):
    words = last_step(command)
    assert words[:3] == [".venv/bin/python", "-m", "geohelpers.run"], command
    monkeypatch.setenv("GEOVQ_HOME", str(tmp_path))  # an empty store: the plan is from scratch, nothing is written
    run.main([*words[3:], "--dry-run"])
    out = capsys.readouterr().out
    assert "[run] dry run: nothing is built or executed" in out and "Traceback" not in out
    assert not list(tmp_path.iterdir())


def test_the_papermill_example_injects_parameters_that_resolve(tmp_path):
    command = next(c for c in readme_commands() if c.startswith(".venv/bin/papermill"))
    words = shlex.split(command)
    out = tmp_path / "01_vae.ipynb"
    words[2] = str(out)  # into a folder of the test's own, as the README says: never over a source notebook
    words[1] = str(ROOT / words[1])
    cwd = words.index("--cwd") + 1
    words[cwd] = str(ROOT / words[cwd])
    done = subprocess.run([sys.executable, "-m", "papermill", *words[1:], "--prepare-only"], capture_output=True,
                          text=True, cwd=ROOT, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    cells = json.loads(out.read_text())["cells"]
    injected = next(c for c in cells if "injected-parameters" in c["metadata"].get("tags", []))
    params: dict = {}
    exec("".join(injected["source"]), params)
    cfg = resolve(params["profile"], params["overrides"])
    assert cfg.profile == "quick" and cfg.grid_vae.max_epochs == 2 and cfg.quantize.ks == (16, 64)
