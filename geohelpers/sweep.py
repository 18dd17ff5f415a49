"""Sweeps: the book's notebooks executed for many parameter points, in parallel on Dask distributed.

    python -m geohelpers.run --profile standard --sweep seed=0,1,2
    python -m geohelpers.run --profile standard --sweep grid_vae.beta=0.1,0.3,1.0
    python -m geohelpers.run --profile standard --sweep seed=0,1 --sweep grid_vae.beta=0.1,1.0   # the product

A *point* is one assignment of the swept parameters. Each point is an independent papermill execution of
the notebooks (all of them, or those of ``--only``) with the profile, the runner's ``--set`` overrides and
the point's own values, in its own folder:

- ``sweeps/<profile>/<sweep>/<point>/`` (ignored by git): the point's ``$GEOVQ_HOME`` (artifacts, results)
  and its executed notebooks;
- ``results/<profile>/sweeps/<sweep>/<point>/``: the point's results files, copied there when every
  notebook succeeded, and ``point.json`` with its parameters, overrides, stamp, wall times and worker.

``<sweep>`` names the swept parameters (``seed``, ``grid_vae.beta``, ``grid_vae.beta+seed``) and ``<point>``
their values (``seed=1``). A point's *stamp* is the runner's input hash of its last notebook (profile,
overrides, package source, notebook sources): a point whose ``point.json`` carries the stamp the current
code gives is skipped; one whose stamp differs is *stale* (re-run by the next sweep, left out of every
aggregate until then).

Points run through Dask distributed: a ``LocalCluster`` on this machine by default, one single-threaded
worker process per core (a 2-core machine runs two points at a time: the book's small convolutions gain
nothing from a second thread), or an existing cluster's scheduler (``--scheduler tcp://HOST:8786``). A
failing point is reported with its parameters and the notebook's error; the other points and their
results are unaffected.
"""

from __future__ import annotations

import ast
import itertools
import json
import os
import shutil
import socket
import time
import traceback
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

from .config import ConfigError, resolve


@dataclass(frozen=True)
class Point:
    """One assignment of the swept parameters."""

    params: tuple[tuple[str, Any], ...]

    @property
    def overrides(self) -> dict[str, Any]:
        return dict(self.params)

    @property
    def name(self) -> str:
        """Folder name: ``name=value`` pairs in name order, joined by ``,`` (characters a path may hold)."""
        parts = [f"{k}={_label(v)}" for k, v in self.params]
        return ",".join(parts)


def _label(value: Any) -> str:
    text = "-".join(str(v) for v in value) if isinstance(value, (tuple, list)) else str(value)
    return "".join(c if c.isalnum() or c in "._-" else "_" for c in text)


def parse_sweeps(items: Sequence[str]) -> dict[str, list[Any]]:
    """``["seed=0,1,2", "grid_vae.channels=(8,16),(16,32)"]`` -> ``{"seed": [0, 1, 2], ...}``.

    Values are Python literals split at top-level commas (strings when they are not literals); a name
    swept twice, or a sweep with no value, is an error naming it.
    """
    sweeps: dict[str, list[Any]] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        key = key.strip()
        if not sep or not key or not raw.strip():
            raise ConfigError(f"--sweep expects name=value1,value2,..., got {item!r}")
        if key in sweeps:
            raise ConfigError(f"--sweep gives parameter {key!r} twice; allowed: one --sweep per parameter")
        try:
            values = ast.literal_eval(f"[{raw}]")
        except (ValueError, SyntaxError):
            values = [v.strip() for v in raw.split(",")]
        if len(set(map(repr, values))) != len(values):
            raise ConfigError(f"--sweep {key!r} repeats a value: {raw}")
        sweeps[key] = list(values)
    return sweeps


def sweep_name(sweeps: Mapping[str, Sequence[Any]]) -> str:
    """The folder of a sweep: its parameter names in order, joined by ``+``."""
    return "+".join(sorted(sweeps))


def points(sweeps: Mapping[str, Sequence[Any]]) -> list[Point]:
    """Every point of the product of the swept values."""
    names = sorted(sweeps)
    return [Point(tuple(zip(names, combo))) for combo in itertools.product(*(sweeps[n] for n in names))]


def results_root(profile: str, name: str) -> Path:
    """``results/<profile>/sweeps/<sweep>`` (under ``$GEOVQ_HOME`` when set)."""
    from .store import home

    return home() / "results" / profile / "sweeps" / name


def work_root(profile: str, name: str) -> Path:
    """``sweeps/<profile>/<sweep>``: the points' working folders (under ``$GEOVQ_HOME`` when set)."""
    from .store import home

    return home() / "sweeps" / profile / name


def point_stamp(profile: str, overrides: Mapping[str, Any], notebooks: Sequence[str]) -> str:
    """The runner's input hash of the point's last notebook: it covers the profile, the overrides, the
    package source and every notebook up to that one."""
    from . import run

    paths = [p for p in run.notebooks() if p.name in set(notebooks)]
    return run.input_hashes(paths, profile, dict(overrides))[paths[-1].name]


def run_point(point: Point, profile: str, base: Mapping[str, Any], notebooks: Sequence[str], out_dir: str,
              work_dir: str, stamp: str, threads: int = 1) -> dict[str, Any]:
    """Execute one point (in a Dask worker): its notebooks with papermill, with ``$GEOVQ_HOME`` in
    ``work_dir``; on success copy its results files to ``out_dir`` beside ``point.json``. Returns a
    summary; a failure is returned (``status: failed``, the notebook and its error), never raised."""
    import papermill as pm

    from . import run

    overrides = {**base, **point.overrides}
    work, out = Path(work_dir), Path(out_dir)
    (work / "executed").mkdir(parents=True, exist_ok=True)
    os.environ.update({"GEOVQ_HOME": str(work), "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads),
                       "TQDM_DISABLE": "1"})
    summary: dict[str, Any] = {"point": point.name, "params": point.overrides, "overrides": overrides,
                               "profile": profile, "stamp": stamp, "notebooks": list(notebooks),
                               "worker": socket.gethostname(), "pid": os.getpid(), "threads": threads}
    seconds: dict[str, float] = {}
    t_all = time.perf_counter()
    for name in notebooks:
        t0 = time.perf_counter()
        try:
            pm.execute_notebook(str(run.SOURCES / name), str(work / "executed" / name),
                                parameters={"profile": profile, "overrides": overrides}, cwd=str(run.SOURCES),
                                kernel_name="python3", progress_bar=False, log_output=False)
        except Exception as err:  # a failing point is reported, never raised into the others
            detail = f"{err.ename}: {err.evalue}" if isinstance(err, pm.PapermillExecutionError) else \
                "".join(traceback.format_exception_only(type(err), err)).strip()
            return {**summary, "status": "failed", "failed_notebook": name, "error": detail, "seconds": seconds}
        seconds[name] = round(time.perf_counter() - t0, 1)
    summary.update(status="ok", seconds=seconds, wall_time_s=round(time.perf_counter() - t_all, 1),
                   written=datetime.now(timezone.utc).isoformat(timespec="seconds"))
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    for f in sorted((work / "results" / profile).glob("*.json")):
        shutil.copy2(f, out / f.name)
    (out / "point.json").write_text(json.dumps(summary, indent=2, default=str) + "\n")
    return summary


@dataclass
class SweepReport:
    name: str
    done: list[dict] = field(default_factory=list)      # ran now, ok
    skipped: list[dict] = field(default_factory=list)   # up to date
    failed: list[dict] = field(default_factory=list)
    workers: int = 0
    wall_time_s: float = 0.0


def execute_sweep(profile: str, sweeps: Mapping[str, Sequence[Any]], base: Mapping[str, Any] | None = None,
                  notebooks: Sequence[str] | None = None, scheduler: str | None = None,
                  workers: int | None = None) -> SweepReport:
    """Run every point of ``sweeps`` that is not up to date, in parallel on Dask distributed; write
    ``sweep.json`` (points, statuses, wall times, workers) beside the points' folders."""
    from distributed import Client, LocalCluster, as_completed
    from tqdm import tqdm

    from . import run

    base = dict(base or {})
    names = [p.name for p in run.notebooks()] if not notebooks else list(notebooks)
    name = sweep_name(sweeps)
    report = SweepReport(name)
    todo = []
    for point in points(sweeps):
        overrides = {**base, **point.overrides}
        out = results_root(profile, name) / point.name
        try:
            resolve(profile, overrides)
        except ConfigError as err:  # reported at once, naming the parameter; the other points still run
            report.failed.append({"point": point.name, "params": point.overrides, "status": "failed",
                                  "failed_notebook": None, "error": str(err)})
            continue
        stamp = point_stamp(profile, overrides, names)
        previous = out / "point.json"
        if previous.exists() and json.loads(previous.read_text()).get("stamp") == stamp:
            report.skipped.append(json.loads(previous.read_text()))
            continue
        todo.append((point, str(out), str(work_root(profile, name) / point.name), stamp))
    t0 = time.perf_counter()
    if todo:
        if scheduler:
            client = Client(scheduler)
            cluster = None
        else:
            n = workers or min(len(todo), os.cpu_count() or 1)
            cluster = LocalCluster(n_workers=n, threads_per_worker=1, processes=True, dashboard_address=None,
                                   silence_logs=40)
            client = Client(cluster)
        try:
            report.workers = len(client.scheduler_info()["workers"])
            futures = [client.submit(run_point, point, profile, base, names, out, work, stamp, 1,
                                     key=f"point-{name}-{point.name}", pure=False)
                       for point, out, work, stamp in todo]
            for fut in tqdm(as_completed(futures), total=len(futures), desc=f"sweep {name}: points done"):
                result = fut.result()
                (report.done if result["status"] == "ok" else report.failed).append(result)
        finally:
            client.close()
            if cluster is not None:
                cluster.close()
    report.wall_time_s = time.perf_counter() - t0
    root = results_root(profile, name)
    root.mkdir(parents=True, exist_ok=True)
    (root / "sweep.json").write_text(json.dumps({
        "sweep": name, "profile": profile, "values": {k: list(v) for k, v in sweeps.items()}, "overrides": base,
        "notebooks": names, "workers": report.workers, "wall_time_s": round(report.wall_time_s, 1),
        "points": {r["point"]: {"status": status, **{k: r.get(k) for k in ("wall_time_s", "error", "failed_notebook")}}
                   for status, rows in (("ran", report.done), ("up to date", report.skipped),
                                        ("failed", report.failed)) for r in rows},
        "written": datetime.now(timezone.utc).isoformat(timespec="seconds")}, indent=2, default=str) + "\n")
    return report


# --- reading sweeps back (notebook 08) ------------------------------------------------------------------------

def load_points(profile: str, name: str, root: Path | None = None, current_stamp=None,
                ) -> tuple[list[dict], list[dict]]:
    """The points of a stored sweep: (up-to-date points, stale points). Each point is its ``point.json``
    plus ``results``: its results files by name. A point is stale when its stamp is not the one the
    current code gives (``current_stamp(point) -> str``, by default :func:`point_stamp`)."""
    root = root or results_root(profile, name)
    fresh, stale = [], []
    for path in sorted(root.glob("*/point.json")):
        point = json.loads(path.read_text())
        point["results"] = {f.stem: json.loads(f.read_text()) for f in sorted(path.parent.glob("*.json"))
                            if f.name != "point.json"}
        want = current_stamp(point) if current_stamp else point_stamp(profile, point["overrides"], point["notebooks"])
        (fresh if point.get("stamp") == want else stale).append(point)
    return fresh, stale


def spread(values: Mapping[str, Mapping[str, float]]) -> "Any":
    """``{point: {quantity: value}}`` -> a table with each quantity's mean, standard deviation (ddof 1),
    number of points and every point's value."""
    import pandas as pd

    table = pd.DataFrame(values)  # quantities x points
    out = pd.DataFrame({"mean": table.mean(axis=1), "std": table.std(axis=1, ddof=1), "n": table.count(axis=1)})
    return pd.concat([out, table], axis=1)


def paired_orders(values: Mapping[str, Mapping[str, float]], names: Iterable[str] | None = None) -> "Any":
    """For every pair (a, b) of quantities: in how many points a < b, and whether that holds in every
    point, in none (b < a everywhere), or only in some (not a difference the seeds agree on)."""
    import pandas as pd

    table = pd.DataFrame(values)
    names = list(names) if names is not None else list(table.index)
    rows = []
    for a, b in itertools.combinations(names, 2):
        lower = int((table.loc[a] < table.loc[b]).sum())
        n = int(table.loc[[a, b]].notna().all().sum())
        verdict = f"{a} lower in every point" if lower == n else f"{b} lower in every point" if lower == 0 \
            else "the points disagree"
        rows.append({"a": a, "b": b, "points": n, "a lower in": lower, "verdict": verdict})
    return pd.DataFrame(rows)


def headline_values(point: Mapping[str, Any], column: str = "test MSE") -> dict[str, float]:
    """One point's headline ``column`` per quantizer (notebook 06's table), plus the verdict's ratios."""
    m = point["results"]["06_comparison"]["metrics"]
    out = {row["quantizer"]: float(row[column]) for row in m["headline"]}
    v = m["verdict"]
    for key in ("mse_ratio_a_posteriori_over_end_to_end", "mse_ratio_a_posteriori_over_hybrid",
                "mse_ratio_adapted_over_end_to_end"):
        if v.get(key) is not None:
            out[key] = float(v[key])
    return out


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
