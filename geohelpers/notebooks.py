"""The book's notebooks as something to execute: which there are, how papermill runs one, and when an
executed copy is up to date. The runner (:mod:`geohelpers.run`) and the sweeps (:mod:`geohelpers.sweep`)
both use this module; nothing imports the runner.

A notebook's *input hash* covers the profile and the overrides, the notebook's source cells, the package's
modules that shape results (all but :data:`geohelpers.artifacts.EXECUTION` and
:data:`geohelpers.artifacts.SWEEP_ANALYSIS`), and the input hash of the notebook before it, so a change to
01 re-executes everything after it. The notebooks that read the sweeps (:data:`READS_SWEEPS`) also hash
:data:`~geohelpers.artifacts.SWEEP_ANALYSIS`: an edit to notebook 08's analysis re-executes notebook 08 and
no sweep point (whose stamp is the input hash of its last notebook, before 08).
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path
from typing import Any, Mapping, Sequence

from . import artifacts, files
from .data import project_root

ROOT = project_root()
SOURCES = ROOT / "notebooks"
EXECUTED = ROOT / "book" / "executed"
STAMPS = EXECUTED / "stamps.json"

#: Notebooks that read the sweeps rather than being swept: a point never runs them (run inside a point, they
#: would read that point's own, empty, sweeps).
READS_SWEEPS = ("08_seeds_and_beta.ipynb",)


def notebooks() -> list[Path]:
    """The numbered source notebooks, in order."""
    return sorted(SOURCES.glob("[0-9][0-9]_*.ipynb"))


def swept_notebooks() -> list[Path]:
    """The notebooks a sweep point may run, in order: every notebook but :data:`READS_SWEEPS`."""
    return [p for p in notebooks() if p.name not in READS_SWEEPS]


def _cells_digest(path: Path) -> str:
    nb = json.loads(path.read_text())
    cells = [(c["cell_type"], "".join(c["source"]), c.get("metadata", {}).get("tags", [])) for c in nb["cells"]]
    return hashlib.sha256(json.dumps(cells).encode()).hexdigest()


def package_digest() -> str:
    """Hash of the modules that shape a notebook's results (:func:`geohelpers.artifacts.modules_digest`)."""
    return artifacts.modules_digest(artifacts.EXECUTION | artifacts.SWEEP_ANALYSIS)


def input_hashes(paths: Sequence[Path], profile: str, overrides: Mapping[str, Any]) -> dict[str, str]:
    """Chained input hash of each notebook of ``paths`` (see the module docstring)."""
    base = hashlib.sha256(json.dumps([profile, plain(overrides), package_digest()], sort_keys=True).encode()
                          ).hexdigest()
    analysis = artifacts.modules_digest(exclude=(), only=artifacts.SWEEP_ANALYSIS)
    out, previous = {}, base
    for p in notebooks():
        previous = hashlib.sha256((previous + p.name + _cells_digest(p)).encode()).hexdigest()
        out[p.name] = hashlib.sha256((previous + analysis).encode()).hexdigest() if p.name in READS_SWEEPS \
            else previous
    return {p.name: out[p.name] for p in paths}


def plain(value: Any) -> Any:
    """``value`` with every tuple made a list, recursively: the form in which an override reaches a notebook
    through papermill (which writes tuples as strings) and the JSON records, and which
    :func:`geohelpers.config.resolve` turns back into the same typed value."""
    if isinstance(value, Mapping):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, (tuple, list)):
        return [plain(v) for v in value]
    return value


def parameters(profile: str, overrides: Mapping[str, Any]) -> dict[str, Any]:
    """What papermill injects into a notebook's ``parameters`` cell."""
    return {"profile": profile, "overrides": plain(dict(overrides))}


def execute(source: Path, out: Path, profile: str, overrides: Mapping[str, Any], log_output: bool = True) -> None:
    """Execute ``source`` with papermill into ``out`` (never over the source), in ``notebooks/``."""
    import papermill as pm

    out.parent.mkdir(parents=True, exist_ok=True)
    streams = {"stdout_file": sys.stdout, "stderr_file": sys.stderr} if log_output else {"log_output": False}
    pm.execute_notebook(str(source), str(out), parameters=parameters(profile, overrides), cwd=str(SOURCES),
                        kernel_name="python3", progress_bar=False, **streams)


def read_stamps() -> dict[str, dict[str, Any]]:
    """The stamps of the executed notebooks (``book/executed/stamps.json``). A damaged stamps file is set
    aside (``stamps.json.corrupt``) with a message, and read as empty: every notebook re-executes."""
    return files.read_record(STAMPS, {}, "it is set aside and every notebook is executed again", "run")


def write_stamps(stamps: Mapping[str, Any]) -> None:
    files.write_json(STAMPS, dict(stamps))
