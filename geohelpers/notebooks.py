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


def update_stamp(name: str, stamp: Mapping[str, Any] | None) -> None:
    """Set (or, with ``None``, remove) one notebook's stamp: read, change and write ``stamps.json`` under
    an exclusive lock (``stamps.json.lock``), so two runner calls at once never lose each other's update."""
    import fcntl

    STAMPS.parent.mkdir(parents=True, exist_ok=True)
    with open(STAMPS.with_name(STAMPS.name + ".lock"), "a") as lock:
        fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
        try:
            stamps = read_stamps()
            if stamp is None:
                stamps.pop(name, None)
            else:
                stamps[name] = dict(stamp)
            write_stamps(stamps)
        finally:
            fcntl.flock(lock.fileno(), fcntl.LOCK_UN)


def results_path(source: Path, profile: str) -> Path:
    """The results file a notebook writes: ``results/<profile>/<notebook name>.json`` in the store it reads
    (``$GEOVQ_HOME`` when set)."""
    from .store import home

    return home() / "results" / profile / f"{Path(source).stem}.json"


def why_stale(source: Path, profile: str, overrides: Mapping[str, Any], stamp: Mapping[str, Any] | None,
              expected_hash: str) -> str | None:
    """Why the notebook ``source`` must execute, or ``None`` when it is current: its stamp holds the input
    hash its inputs give now (``expected_hash``, :func:`input_hashes`), its executed copy is there and reads
    as a notebook, and its results file is there, in the store it would read, reads as JSON and was
    computed with this configuration. A stamp alone never makes a notebook current: a damaged or missing
    results file, or an empty ``$GEOVQ_HOME``, executes it again."""
    from .config import resolve
    from .store import config_differences

    if not stamp or stamp.get("hash") != expected_hash:
        return "its inputs changed" if stamp else "never executed with these inputs"
    out = EXECUTED / Path(source).name
    try:
        if not isinstance(json.loads(out.read_text()).get("cells"), list):
            return f"its executed copy {out} holds no cells"
    except FileNotFoundError:
        return f"its executed copy {out} is missing"
    except (OSError, ValueError) as err:
        return f"its executed copy {out} is damaged ({type(err).__name__})"
    results = results_path(source, profile)
    try:
        payload = json.loads(results.read_text())
    except FileNotFoundError:
        return f"its results file {results} is missing"
    except (OSError, ValueError) as err:
        return f"its results file {results} is damaged ({type(err).__name__})"
    differ = config_differences(payload.get("config") or {}, resolve(profile, overrides).to_dict())
    if differ:
        return f"its results file {results} was computed with another configuration ({', '.join(differ)})"
    return None
