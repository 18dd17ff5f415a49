"""Sweeps: the book's notebooks executed for many parameter points, in parallel on Dask distributed.

    python -m geohelpers.run --profile standard --sweep seed=0,1,2
    python -m geohelpers.run --profile standard --sweep grid_vae.beta=0.1,0.3,1.0
    python -m geohelpers.run --profile standard --sweep seed=0,1 --sweep grid_vae.beta=0.1,1.0   # the product

A *point* is one assignment of the swept parameters. Each point is an independent papermill execution of
the notebooks (all of them but :data:`READS_SWEEPS`, or those of ``--only``) with the profile, the runner's
``--set`` overrides and the point's own values, in its own folder:

- ``sweeps/<profile>/<sweep>/<point>/`` (ignored by git): the point's ``$GEOVQ_HOME`` (artifacts, results)
  and its executed notebooks;
- ``results/<profile>/sweeps/<sweep>/<point>/``: the point's results files, copied there when every
  notebook succeeded, and ``point.json`` with its parameters, overrides, stamp, wall times and worker.

``<sweep>`` names the swept parameters (``seed``, ``grid_vae.beta``, ``grid_vae.beta+seed``) and ``<point>``
their values (``seed=1``). A point's *stamp* is the runner's input hash of its last notebook (profile,
overrides, package source, notebook sources): a point whose ``point.json`` carries the stamp the current
code gives is skipped; one whose stamp differs is *stale* (re-run by the next sweep, left out of every
aggregate until then).

A point starts from a copy of the project's own artifacts (``artifacts/<profile>/``, those the plain
runner wrote), unless ``--fresh-points`` is given: every artifact carries the identity of the configuration,
code and inputs that made it (:mod:`geohelpers.artifacts`), so a point loads only those its own parameters
would have made the same way (a ``grid_vae.beta`` point keeps the FlatVAE and its codebooks; ``seed=0`` of
the standard profile keeps everything) and rebuilds, over its copy, every other one.

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


#: Notebooks that read the sweeps rather than being swept: a point never runs them (run inside a point, they
#: would read that point's own, empty, sweeps), so a sweep's notebooks are all the others by default.
READS_SWEEPS = ("08_seeds_and_beta.ipynb",)


def swept_notebooks() -> list[Path]:
    """The notebooks a point may run, in order: every notebook of the book but :data:`READS_SWEEPS`."""
    from . import run

    return [p for p in run.notebooks() if p.name not in READS_SWEEPS]


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


def seed_artifacts(source: Path, target: Path) -> int:
    """Copy the artifacts folder ``source`` to ``target`` when ``target`` does not exist yet (a point's first
    run); returns the number of files copied (0 when ``source`` is missing or ``target`` exists). What a
    point may load of them is decided by their identities, at load time, as for any stored artifact."""
    if target.exists() or not source.is_dir():
        return 0
    shutil.copytree(source, target)
    return sum(1 for f in target.rglob("*") if f.is_file())


def run_point(point: Point, profile: str, base: Mapping[str, Any], notebooks: Sequence[str], out_dir: str,
              work_dir: str, stamp: str, threads: int = 1, artifacts_from: str | None = None) -> dict[str, Any]:
    """Execute one point (in a Dask worker): its notebooks with papermill, with ``$GEOVQ_HOME`` in
    ``work_dir`` (its artifacts first seeded from ``artifacts_from`` by :func:`seed_artifacts`, when given);
    on success copy its results files to ``out_dir`` beside ``point.json``. Returns a summary; a failure is
    returned (``status: failed``, the notebook and its error), never raised.

    A point may take several calls (a killed sweep is simply called again: it reloads what the point
    stored). ``seconds`` and ``wall_time_s`` are the finishing call's; ``interrupted_calls`` lists the
    calls before it with the same stamp that ended unfinished, each with its start, its last record, the
    notebook it was running or that failed, and the seconds of the notebooks it finished (time after its
    last record is unknown)."""
    import papermill as pm

    from . import run

    overrides = {**base, **point.overrides}
    work, out = Path(work_dir), Path(out_dir)
    seeded = seed_artifacts(Path(artifacts_from), work / "artifacts" / profile) if artifacts_from else 0
    (work / "executed").mkdir(parents=True, exist_ok=True)
    os.environ.update({"GEOVQ_HOME": str(work), "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads),
                       "TQDM_DISABLE": "1"})
    summary: dict[str, Any] = {"point": point.name, "params": point.overrides, "overrides": overrides,
                               "profile": profile, "stamp": stamp, "notebooks": list(notebooks),
                               "worker": socket.gethostname(), "pid": os.getpid(), "threads": threads,
                               "artifacts_seeded_from": artifacts_from if seeded else None, "artifacts_seeded": seeded}
    seconds: dict[str, float] = {}
    # the point's calls that ended before it finished (killed, failed) keep their times in calls.json, which
    # this call rewrites after every notebook; point.json takes those with this stamp as interrupted_calls
    progress = work / "calls.json"
    earlier = [c for c in (json.loads(progress.read_text()) if progress.exists() else []) if c.get("stamp") == stamp]
    call: dict[str, Any] = {"stamp": stamp, "worker": summary["worker"], "pid": summary["pid"], "started": _now(),
                            "seconds": seconds}

    def keep(**state: Any) -> None:
        call.update(state, updated=_now())
        progress.write_text(json.dumps([*earlier, call], indent=2) + "\n")

    t_all = time.perf_counter()
    for name in notebooks:
        keep(running=name)
        t0 = time.perf_counter()
        try:
            pm.execute_notebook(str(run.SOURCES / name), str(work / "executed" / name),
                                parameters={"profile": profile, "overrides": overrides}, cwd=str(run.SOURCES),
                                kernel_name="python3", progress_bar=False, log_output=False)
        except Exception as err:  # a failing point is reported, never raised into the others
            detail = f"{err.ename}: {err.evalue}" if isinstance(err, pm.PapermillExecutionError) else \
                "".join(traceback.format_exception_only(type(err), err)).strip()
            keep(running=None, failed=name, error=detail)
            return {**summary, "status": "failed", "failed_notebook": name, "error": detail, "seconds": seconds}
        seconds[name] = round(time.perf_counter() - t0, 1)
    summary.update(status="ok", seconds=seconds, wall_time_s=round(time.perf_counter() - t_all, 1),
                   interrupted_calls=earlier, written=_now())
    progress.unlink()
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    for f in sorted((work / "results" / profile).glob("*.json")):
        shutil.copy2(f, out / f.name)
    (out / "point.json").write_text(json.dumps(summary, indent=2, default=str) + "\n")
    return summary


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


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
                  workers: int | None = None, reuse_artifacts: bool = True) -> SweepReport:
    """Run every point of ``sweeps`` that is not up to date, in parallel on Dask distributed; write
    ``sweep.json`` beside the points' folders: each point's status, every call (points run, skipped and
    failed, workers, wall time), and ``workers`` / ``wall_time_s`` of the last call that ran points.
    ``reuse_artifacts``: a point's first run starts from a copy of ``artifacts/<profile>/`` (module docstring)."""
    from distributed import Client, LocalCluster, as_completed
    from tqdm import tqdm

    from .store import home

    base = dict(base or {})
    names = [p.name for p in swept_notebooks()] if not notebooks else list(notebooks)
    clash = sorted(set(names) & set(READS_SWEEPS))
    if clash:
        raise ConfigError(f"notebooks: a sweep point cannot run {', '.join(clash)}, which reads the sweeps; "
                          f"allowed: the others")
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
            # dashboard_address ":0": the scheduler's HTTP server takes a free port, never another cluster's
            cluster = LocalCluster(n_workers=n, threads_per_worker=1, processes=True, dashboard_address=":0",
                                   silence_logs=40)
            client = Client(cluster)
        try:
            report.workers = len(client.scheduler_info()["workers"])
            shared = str(home() / "artifacts" / profile) if reuse_artifacts else None
            futures = [client.submit(run_point, point, profile, base, names, out, work, stamp, 1, shared,
                                     key=f"point-{name}-{point.name}", pure=False)
                       for point, out, work, stamp in todo]
            for fut in tqdm(as_completed(futures), total=len(futures), desc=f"sweep {name}: points done"):
                result = fut.result()
                (report.done if result["status"] == "ok" else report.failed).append(result)
        finally:
            client.close()
            if cluster is not None:
                cluster.close()
    # points finish in any order; the report and sweep.json list them in the sweep's own order
    order = {point.name: i for i, point in enumerate(points(sweeps))}
    for rows in (report.done, report.skipped, report.failed):
        rows.sort(key=lambda r: order.get(r["point"], len(order)))
    report.wall_time_s = time.perf_counter() - t0
    root = results_root(profile, name)
    root.mkdir(parents=True, exist_ok=True)
    record_path = root / "sweep.json"
    record = json.loads(record_path.read_text()) if record_path.exists() else {}
    now = _now()
    call = {"written": now, "workers": report.workers, "wall_time_s": round(report.wall_time_s, 1),
            "ran": [r["point"] for r in report.done], "up to date": [r["point"] for r in report.skipped],
            "failed": [r["point"] for r in report.failed]}
    last_run = call if report.done else record.get("last_run")  # a call that only skips keeps the timing record
    record_path.write_text(json.dumps({
        "sweep": name, "profile": profile, "values": {k: list(v) for k, v in sweeps.items()}, "overrides": base,
        "notebooks": names, "workers": (last_run or call)["workers"], "wall_time_s": (last_run or call)["wall_time_s"],
        "last_run": last_run, "calls": [*record.get("calls", []), call],
        "points": {r["point"]: {"status": status, **{k: r.get(k) for k in ("wall_time_s", "error", "failed_notebook")}}
                   for status, rows in (("ran", report.done), ("up to date", report.skipped),
                                        ("failed", report.failed)) for r in rows},
        "written": now}, indent=2, default=str) + "\n")
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


#: Columns of :func:`headline_values` that name a sample-fidelity score of each quantizer's generator: that of
#: the prior notebook 06 chose on validation for the quantizer's codes (``prior (validation)``), scored on 06's
#: classifier. Each seed trains its own classifier, so a spread over seeds includes the scorer's.
FIDELITY = {"FD": "frechet_distance", "IS": "inception_score"}  # headline column prefix -> real_data_floor key

#: The row :func:`headline_values` adds for a fidelity column: real test images scored the same way.
REAL_DATA = "real data (floor)"


def headline_values(point: Mapping[str, Any], column: str = "test MSE") -> dict[str, float]:
    """One point's headline ``column`` per quantizer (notebook 06's table).

    ``"test MSE"`` adds the verdict's MSE ratios; ``"FD"`` or ``"IS"`` (:data:`FIDELITY`) give each
    quantizer's Frechet distance or Inception Score of the prior chosen on validation, and the real-data
    floor as :data:`REAL_DATA`; any other name is a headline column read as it stands.
    """
    m = point["results"]["06_comparison"]["metrics"]
    if column in FIDELITY:
        out = {row["quantizer"]: float(row[f"{column} {row['prior (validation)']}"]) for row in m["headline"]}
        out[REAL_DATA] = float(m["real_data_floor"][FIDELITY[column]])
        return out
    out = {row["quantizer"]: float(row[column]) for row in m["headline"]}
    if column == "test MSE":
        v = m["verdict"]
        for key in ("mse_ratio_a_posteriori_over_end_to_end", "mse_ratio_a_posteriori_over_hybrid",
                    "mse_ratio_adapted_over_end_to_end"):
            if v.get(key) is not None:
                out[key] = float(v[key])
    return out


def _quantizers(values: Mapping[str, Mapping[str, float]]) -> list[str]:
    """The quantizers among :func:`headline_values`' keys (not the ratios, not the real-data floor)."""
    return [q for q in next(iter(values.values())) if not q.startswith("mse_ratio") and q != REAL_DATA]


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


# --- what notebook 08 shows ---------------------------------------------------------------------------------

def stale_view(stale: Sequence[Mapping[str, Any]]) -> "Any":
    """The points left out because their stamp is not the one the current code gives: which point, when it
    was written and with which stamp. They are re-run by the next call of their sweep."""
    import pandas as pd

    return pd.DataFrame([{"point": p["point"], "notebooks": ", ".join(n[:2] for n in p.get("notebooks", [])),
                          "written": p.get("written"), "stamp": str(p.get("stamp", ""))[:12]} for p in stale],
                        columns=["point", "notebooks", "written", "stamp"])


def seed_table(points: Sequence[Mapping[str, Any]], column: str = "test MSE") -> "Any":
    """Notebook 06's headline ``column`` per quantizer, and the verdict's ratios, over the points of a seed
    sweep: ``mean``, ``std`` (ddof 1), ``n``, ``mean ± std`` and every seed's value (:func:`spread`)."""
    import pandas as pd

    if not points:
        return pd.DataFrame(columns=["mean ± std", "mean", "std", "n"])
    table = spread({p["point"]: headline_values(p, column) for p in points})
    table.insert(0, "mean ± std", [f"{m:.4g} ± {s:.2g}" if s == s else f"{m:.4g}"
                                   for m, s in zip(table["mean"], table["std"])])
    return table


def seed_verdicts(points: Sequence[Mapping[str, Any]]) -> "Any":
    """Per seed, what notebook 06 selected on validation and the headline ratio it reported."""
    import pandas as pd

    rows = []
    for p in points:
        v = p["results"]["06_comparison"]["metrics"]["verdict"]
        rows.append({"point": p["point"], "best a posteriori": v["best_a_posteriori"],
                     "best end-to-end": v["best_end_to_end"],
                     "a posteriori / end-to-end MSE": v["mse_ratio_a_posteriori_over_end_to_end"],
                     "best adapted / end-to-end MSE": v.get("mse_ratio_adapted_over_end_to_end")})
    return pd.DataFrame(rows, columns=["point", "best a posteriori", "best end-to-end",
                                       "a posteriori / end-to-end MSE", "best adapted / end-to-end MSE"])


def seed_orders(points: Sequence[Mapping[str, Any]], column: str = "test MSE") -> "Any":
    """:func:`paired_orders` of the quantizers' headline ``column`` over the points of a seed sweep: a
    difference between two quantizers counts only when it has the same sign in every seed. For ``"IS"``,
    where higher is better, "lower" still means the lower score."""
    import pandas as pd

    if not points:
        return pd.DataFrame(columns=["a", "b", "points", "a lower in", "verdict"])
    values = {p["point"]: headline_values(p, column) for p in points}
    return paired_orders(values, _quantizers(values))


def _orders_sentence(points: Sequence[Mapping[str, Any]], column: str) -> str:
    """How many pairs of quantizers keep their order of ``column`` in every seed, and which do not."""
    orders = seed_orders(points, column)
    disagree = orders[orders["verdict"] == "the points disagree"]
    text = f"Of the {len(orders)} pairs of quantizers, {len(orders) - len(disagree)} keep their order of {column} in every seed"
    return text + (f"; the seeds disagree on {', '.join(f'{a} vs {b}' for a, b in zip(disagree['a'], disagree['b']))}."
                   if len(disagree) else ".")


def seed_prose(points: Sequence[Mapping[str, Any]], column: str = "test MSE") -> "Any":
    """Sentences generated from a seed sweep: whether the selections agree across seeds, the headline ratio's
    mean and spread, and which orders of the quantizers' ``column`` hold in every seed."""
    from .report import Prose

    if not points:
        return Prose("No up-to-date point of the seed sweep is stored for this profile, so no spread is shown: "
                     "run `python -m geohelpers.run --profile <profile> --sweep seed=0,1,2`.")
    verdicts = seed_verdicts(points)
    n = len(points)
    parts = []
    for col in ("best a posteriori", "best end-to-end"):
        chosen = list(dict.fromkeys(verdicts[col]))
        parts.append(f"the {col} quantizer chosen on validation is {chosen[0]} in all {n} seeds" if len(chosen) == 1
                     else f"the {col} quantizer chosen on validation changes with the seed ({', '.join(chosen)})")
    ratio = verdicts["a posteriori / end-to-end MSE"]
    text = (f"Over {n} seeds, {parts[0]}, and {parts[1]}. The test-MSE ratio of the best a posteriori codebook "
            f"to the best end-to-end VQ-VAE is {ratio.mean():.3f} ± {ratio.std(ddof=1) if n > 1 else float('nan'):.3f} "
            f"(mean ± standard deviation; per seed {', '.join(f'{r:.3f}' for r in ratio)}); it is "
            f"{'above 1 in every seed' if (ratio > 1).all() else 'below 1 in every seed' if (ratio < 1).all() else 'on both sides of 1'}.")
    if n > 1:
        text += " " + _orders_sentence(points, column)
    return Prose(text)


def seed_fidelity_prose(points: Sequence[Mapping[str, Any]]) -> "Any":
    """Sentences generated from a seed sweep's sample fidelity (:data:`FIDELITY`): per seed, the generator
    with the lowest FD and the real-data floor; the lowest FD over the floor, as mean and range over seeds;
    and which orders of the quantizers' FD hold in every seed."""
    from .report import Prose

    if not points:
        return Prose("No up-to-date point of the seed sweep is stored for this profile, so no spread of the "
                     "samples' fidelity is shown.")
    fd = spread({p["point"]: headline_values(p, "FD") for p in points})
    seeds = [p["point"] for p in points]
    names = [q for q in fd.index if q != REAL_DATA]
    best = {s: fd.loc[names, s].idxmin() for s in seeds}
    over = [fd.loc[best[s], s] / fd.loc[REAL_DATA, s] for s in seeds]
    chosen = list(dict.fromkeys(best.values()))
    text = ("The lowest FD is " + (f"that of {chosen[0]} in all {len(seeds)} seeds" if len(chosen) == 1 else
                                   "reached by " + ", ".join(f"{best[s]} in {s}" for s in seeds))
            + f"; it is {sum(over) / len(over):.0f} times the real-data floor on average over the seeds (from "
            f"{min(over):.0f} to {max(over):.0f} times; the floor itself is "
            f"{fd.loc[REAL_DATA, 'mean']:.2f} ± {fd.loc[REAL_DATA, 'std']:.2f}).")  # std: NaN for one seed (ddof 1)
    if len(seeds) > 1:
        text += " " + _orders_sentence(points, "FD")
    return Prose(text)


def beta_ratios(points: Sequence[Mapping[str, Any]], end_to_end: str, end_to_end_mse: float, k: int,
                vae: str = "GridVAE", beta: str = "grid_vae.beta") -> "Any":
    """Per beta and a posteriori method (notebooks 02, 03, 07; ``vae`` at codebook size ``k``): test MSE and
    its ratio to the end-to-end VQ-VAE ``end_to_end`` (test MSE ``end_to_end_mse``). A pure end-to-end
    VQ-VAE never sees the VAE, so beta does not change it: one reference serves every beta."""
    import pandas as pd

    rows = [{"beta": r["beta"], "method": r["method"], "test MSE": r["mse_per_pixel"],
             f"MSE / {end_to_end}": r["mse_per_pixel"] / end_to_end_mse}
            for r in beta_rows(points, beta) if r["VAE"] == vae and r["K"] == k]
    return pd.DataFrame(rows, columns=["beta", "method", "test MSE", f"MSE / {end_to_end}"]).sort_values(
        ["method", "beta"], ignore_index=True)


def beta_ratio_table(ratios: "Any", end_to_end: str) -> "Any":
    """:func:`beta_ratios` as a table: one row per method (its book label), one column per beta, the ratio
    of its test MSE to that of ``end_to_end``."""
    from .report import METHOD_LABELS

    col = f"MSE / {end_to_end}"
    table = ratios.assign(method=ratios["method"].replace(METHOD_LABELS)).pivot(index="method", columns="beta",
                                                                                 values=col)
    return table.rename_axis(columns=f"β: {col}")


def beta_prose(summary: Sequence[Mapping[str, Any]], ratios: "Any", end_to_end: str, k: int) -> "Any":
    """Sentences generated from the beta sweep: how the GridVAE's continuous MSE and active units move with
    beta, each method's MSE ratio to the end-to-end VQ-VAE at the smallest and the largest beta, and what
    quantizing itself costs per beta: the best codebook's test MSE over the continuous VAE's (decoding mu),
    so that a reader can tell the quantizer's share of the error from the VAE's."""
    from .report import METHOD_LABELS, Prose

    if len(summary) < 2 or ratios.empty:
        return Prose("Fewer than two up-to-date points of the beta sweep are stored for this profile: run "
                     "`python -m geohelpers.run --profile <profile> --sweep grid_vae.beta=0.1,0.3,1.0 "
                     "--only 01 02 03 07`.")
    lo, hi = summary[0], summary[-1]
    text = (f"From beta = {lo['beta']:g} to beta = {hi['beta']:g}, the GridVAE's continuous test MSE goes from "
            f"{lo['continuous_mse']:.5f} to {hi['continuous_mse']:.5f} and its active units from "
            f"{lo['active_units']} to {hi['active_units']} of {lo['latent_units']}.")
    col = f"MSE / {end_to_end}"
    pieces = []
    for method, sub in ratios.groupby("method", sort=False):
        sub = sub.sort_values("beta")
        a, b = sub.iloc[0][col], sub.iloc[-1][col]
        pieces.append(f"{METHOD_LABELS.get(method, method)} {a:.2f} → {b:.2f}")
    best = ratios.loc[ratios.groupby("beta")[col].idxmin()]
    text += (f" At K = {k}, each a posteriori codebook's test MSE over that of {end_to_end} goes "
             + "; ".join(pieces) + ". The lowest ratio is "
             + ", ".join(f"{METHOD_LABELS.get(m, m)} at beta = {b:g} ({r:.2f})"
                         for b, m, r in zip(best["beta"], best["method"], best[col])) + ".")
    continuous = {row["beta"]: row["continuous_mse"] for row in summary if "continuous_mse" in row}
    cost = [(b, mse / continuous[b]) for b, mse in zip(best["beta"], best["test MSE"]) if b in continuous]
    if len(cost) >= 2:
        factors = [f for _, f in cost]
        trend = ("shrinks as beta grows" if all(x > y for x, y in zip(factors, factors[1:]))
                 else "grows with beta" if all(x < y for x, y in zip(factors, factors[1:])) else "is not monotone in beta")
        text += (" What quantizing costs " + trend + ": that codebook's test MSE is "
                 + ", ".join(f"{f:.2f} times the continuous VAE's at beta = {b:g}" for b, f in cost)
                 + f", while the continuous VAE's own test MSE at beta = {hi['beta']:g} is "
                 f"{hi['continuous_mse'] / lo['continuous_mse']:.1f} times that at beta = {lo['beta']:g}.")
    return Prose(text)


def sweep_times(profile: str, name: str, root: Path | None = None) -> tuple["Any", dict[str, Any]]:
    """Wall time of every point of a stored sweep (each notebook and in all, as the call that finished it
    ran them; for a point finished over several calls, how many were interrupted and the seconds of the
    notebooks they finished; its worker and threads), and
    the sweep's own record (``sweep.json``): workers, wall time and date of the last call that ran points,
    and, since a sweep may be completed over several calls (one after another, or side by side on other
    points), how many calls ran points and their wall time: the length of the union of the calls' intervals
    ``[written - wall_time_s, written]``, so that time two calls overlapped counts once."""
    import pandas as pd

    root = root or results_root(profile, name)
    rows = []
    for path in sorted(root.glob("*/point.json")):
        p = json.loads(path.read_text())
        earlier = p.get("interrupted_calls") or []
        rows.append({"point": p["point"], **{n[:2]: s for n, s in p.get("seconds", {}).items()},
                     "total (s)": p.get("wall_time_s"),
                     **({"interrupted calls": len(earlier),
                         "their finished notebooks (s)": round(sum(sum(c.get("seconds", {}).values())
                                                                   for c in earlier), 1)} if earlier else {}),
                     "threads": p.get("threads"), "worker": p.get("worker")})
    record = json.loads((root / "sweep.json").read_text()) if (root / "sweep.json").exists() else {}
    ran = [c for c in record.get("calls", []) if c.get("ran")]
    return pd.DataFrame(rows), {**{k: record.get(k) for k in ("workers", "wall_time_s", "written")},
                                "calls that ran points": len(ran), "their wall time (s)": round(_covered(ran), 1)}


def _covered(calls: Sequence[Mapping[str, Any]]) -> float:
    """Seconds covered by the union of the calls' intervals ``[written - wall_time_s, written]``."""
    ends = [datetime.fromisoformat(c["written"]).timestamp() for c in calls]
    spans = sorted((end - c["wall_time_s"], end) for c, end in zip(calls, ends))
    total, reach = 0.0, float("-inf")
    for start, end in spans:
        total += max(0.0, end - max(start, reach))
        reach = max(reach, end)
    return total


def beta_rd_frame(points: Sequence[Mapping[str, Any]], vae: str, beta: str = "grid_vae.beta") -> "Any":
    """:func:`beta_rows` of one VAE as a frame for :func:`geohelpers.plots.rate_distortion`: methods by
    their book labels, and a ``panel`` column naming the beta (one panel per beta)."""
    import pandas as pd

    from .report import METHOD_LABELS

    rows = pd.DataFrame(beta_rows(points, beta), columns=["beta", "VAE", "method", "K", "mse_per_pixel",
                                                          "bits_per_image"])
    rows = rows[rows["VAE"] == vae].sort_values(["beta", "method", "K"], ignore_index=True)
    return rows.assign(method=rows["method"].replace(METHOD_LABELS),
                       panel=[f"{vae}, β = {b:g}" for b in rows["beta"]])
