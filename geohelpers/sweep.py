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

A point whose resolved configuration is the one the plain runner's record was executed with (``seed=0``
of the standard profile, or the profile's own ``grid_vae.beta``) takes that record's results files
(:func:`record_results`) instead of executing its notebooks again, when the record is current for the code:
every artifact it would load carries the identity of one the record loaded, so it would only repeat the
record. Its ``point.json`` says so (``from_record``); ``--fresh-points`` executes it like any other.

Points run through Dask distributed: a ``LocalCluster`` on this machine by default, one single-threaded
worker process per core, or an existing cluster's scheduler (``--scheduler tcp://HOST:8786``). Each point
first builds its stage graph (:mod:`geohelpers.graph`) on the cluster's workers, every point's stages
side by side, then executes its notebooks in one task, which load what the graph built. A failing point
(a stage or a notebook) is reported with its parameters and the error; the other points and their
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
from typing import Any, Mapping, Sequence

from . import files
from . import notebooks as nb
from .config import ConfigError, literal, resolve, split_top_level
from .notebooks import READS_SWEEPS, swept_notebooks  # noqa: F401  (re-exported: the sweep's notebooks)


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

    Values are Python literals split at top-level commas (strings when they are not literals, so a sequence
    parameter's values are written as it is set, ``prior.kinds=[pixelcnn],[pixelcnn,transformer]``); a name
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
        except (ValueError, SyntaxError):  # names: a,b or lists of them, [a,b],[c] (config.parse_list reads each)
            values = [literal(v) for v in split_top_level(raw)]
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
    paths = [p for p in nb.notebooks() if p.name in set(notebooks)]
    return nb.input_hashes(paths, profile, dict(overrides))[paths[-1].name]


def seed_artifacts(source: Path, target: Path) -> int:
    """Copy the artifacts folder ``source`` to ``target`` when ``target`` does not exist yet (a point's first
    run); returns the number of files copied (0 when ``source`` is missing or ``target`` exists). What a
    point may load of them is decided by their identities, at load time, as for any stored artifact."""
    if target.exists() or not source.is_dir():
        return 0
    shutil.copytree(source, target)
    return sum(1 for f in target.rglob("*") if f.is_file())


def record_results(profile: str, overrides: Mapping[str, Any], notebooks: Sequence[str]) -> list[Path] | None:
    """The results files of the plain runner's record of ``notebooks`` (``results/<profile>/``), when that record
    is what a point with ``overrides`` would compute; else None.

    It is, for every notebook, when the runner's stamp (:data:`geohelpers.notebooks.STAMPS`) is of this
    profile, of the same resolved configuration (:meth:`geohelpers.config.Config.digest`) as ``overrides``
    give, and current (its hash is the input hash the code gives now for the record's own overrides), and
    the notebook's results file is there. Results are a function of the resolved configuration and the
    code: each notebook loads artifacts by identity (configuration, code, inputs) and computes from them,
    so executing the point would repeat the record."""
    from .store import home

    stamps = nb.read_stamps()
    want = resolve(profile, overrides).digest()
    sources = nb.notebooks()
    current: dict[str, dict[str, str]] = {}  # the code's input hashes, per overrides the record was run with
    found = []
    for name in notebooks:
        st = stamps.get(name, {})
        result = home() / "results" / profile / f"{Path(name).stem}.json"
        if st.get("profile") != profile or st.get("config") != want or not result.is_file():
            return None
        ran_with = st.get("overrides") or {}
        key = json.dumps(ran_with, sort_keys=True)
        if key not in current:  # one hashing of the package and notebooks per overrides, not per notebook
            current[key] = nb.input_hashes(sources, profile, ran_with)
        if st.get("hash") != current[key].get(name):
            return None
        found.append(result)
    return found


def _publish(out: Path, results: Sequence[Path], summary: Mapping[str, Any]) -> None:
    """Replace the point's results folder ``out`` with copies of ``results`` and its ``point.json``."""
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    for f in results:
        shutil.copy2(f, out / f.name)
    files.write_json(out / "point.json", dict(summary), default=str)


def take_record(point: Point, profile: str, overrides: Mapping[str, Any], notebooks: Sequence[str],
                results: Sequence[Path], out_dir: str, stamp: str) -> dict[str, Any]:
    """Make ``results`` (:func:`record_results`) the point's: copied to ``out_dir`` beside a ``point.json``
    whose ``from_record`` names where they come from; no notebook runs, so the point has no times of its own.
    Returns the point's summary."""
    summary = {"point": point.name, "params": point.overrides, "overrides": dict(overrides), "profile": profile,
               "stamp": stamp, "notebooks": list(notebooks), "status": "ok",
               "from_record": f"results/{profile}/ (the plain runner's record: same configuration, same code)",
               "seconds": {}, "wall_time_s": None, "written": _now()}
    _publish(Path(out_dir), results, summary)
    return summary


#: A point's stage-graph calls, in its working folder: :func:`stage_call` of each, rewritten after every stage.
STAGE_LOG = "stages.json"


def stage_call(report: Any, stamp: str, started: str) -> dict[str, Any]:
    """One call of a point's stage graph (a :class:`geohelpers.graph.GraphReport`), as ``point.json`` keeps
    it: when it started, its wall time, critical path and workers, how many stages it built, loaded or
    failed, and the seconds of each stage it built (a stopped call keeps those it finished)."""
    statuses = [r["status"] for r in report.records]
    return {"stamp": stamp, "started": started, "wall_time_s": round(report.wall_time_s, 1),
            "critical_path_s": round(report.critical_path_s, 1), "workers": report.workers,
            **{status: statuses.count(status) for status in ("built", "loaded", "failed")},
            "built_seconds": {r["key"]: r["seconds"] for r in report.records if r["status"] == "built"}}


def run_point(point: Point, profile: str, base: Mapping[str, Any], notebooks: Sequence[str], out_dir: str,
              work_dir: str, stamp: str, threads: int = 1, artifacts_from: str | None = None) -> dict[str, Any]:
    """Execute one point (in a Dask worker): its notebooks with papermill, with ``$GEOVQ_HOME`` in
    ``work_dir`` (its artifacts first seeded from ``artifacts_from`` by :func:`seed_artifacts`, when given);
    on success copy its results files to ``out_dir`` beside ``point.json``. Returns a summary; a failure is
    returned (``status: failed``, the notebook and its error), never raised.

    A point may take several calls (a killed sweep is simply called again: it reloads what the point
    stored). ``seconds`` and ``wall_time_s`` are the finishing call's notebooks'; ``stage_graph_calls``, every
    call of the point's stage graph with this stamp (:func:`stage_call`, from :data:`STAGE_LOG`), stopped ones
    included, so the point's cost is its graph's and its notebooks'; ``interrupted_calls`` lists the
    calls before it with the same stamp that ended unfinished, each with its start, its last record, the
    notebook it was running or that failed, and the seconds of the notebooks it finished (time after its
    last record is unknown)."""
    import papermill as pm

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
    earlier = [c for c in _read_record(progress, []) if c.get("stamp") == stamp]
    call: dict[str, Any] = {"stamp": stamp, "worker": summary["worker"], "pid": summary["pid"], "started": _now(),
                            "seconds": seconds}

    def keep(**state: Any) -> None:
        call.update(state, updated=_now())
        files.write_json(progress, [*earlier, call])

    t_all = time.perf_counter()
    for name in notebooks:
        keep(running=name)
        t0 = time.perf_counter()
        try:
            nb.execute(nb.SOURCES / name, work / "executed" / name, profile, overrides, log_output=False)
        except Exception as err:  # a failing point is reported, never raised into the others
            detail = f"{err.ename}: {err.evalue}" if isinstance(err, pm.PapermillExecutionError) else \
                "".join(traceback.format_exception_only(type(err), err)).strip()
            keep(running=None, failed=name, error=detail)
            return {**summary, "status": "failed", "failed_notebook": name, "error": detail, "seconds": seconds}
        seconds[name] = round(time.perf_counter() - t0, 1)
    summary.update(status="ok", seconds=seconds, wall_time_s=round(time.perf_counter() - t_all, 1),
                   interrupted_calls=earlier, written=_now(),
                   stage_graph_calls=[c for c in _read_record(work / STAGE_LOG, []) if c.get("stamp") == stamp])
    progress.unlink()  # point.json holds both logs' calls now: a later run of the point starts them afresh
    (work / STAGE_LOG).unlink(missing_ok=True)
    _publish(out, sorted((work / "results" / profile).glob("*.json")), summary)
    return summary


def _read_record(path: Path, empty: Any) -> Any:
    """A sweep record (``point.json``, ``sweep.json``, ``calls.json``), or ``empty`` when it is missing or
    damaged (:func:`geohelpers.files.read_record`): a damaged ``point.json`` re-runs its point, a damaged
    ``sweep.json`` starts its call history anew."""
    return files.read_record(path, empty, "it is set aside", "sweep")


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


@dataclass
class SweepReport:
    name: str
    done: list[dict] = field(default_factory=list)      # ran now, ok
    skipped: list[dict] = field(default_factory=list)   # up to date
    from_record: list[dict] = field(default_factory=list)  # took the plain runner's record (record_results)
    failed: list[dict] = field(default_factory=list)
    workers: int = 0
    wall_time_s: float = 0.0


def point_states(profile: str, sweeps: Mapping[str, Sequence[Any]], base: Mapping[str, Any], notebooks: Sequence[str],
                 reuse_artifacts: bool = True) -> list[tuple[Point, str, Any, str]]:
    """What :func:`execute_sweep` does with each point, decided before any work: ``(point, status, found,
    stamp)`` with status ``"invalid"`` (``found``: the configuration error), ``"up to date"`` (its
    ``point.json`` carries the stamp the code gives now; ``found``: that record), ``"from the record"``
    (``found``: the record's results files, :func:`record_results`) or ``"run"``."""
    out = []
    for point in points(sweeps):
        overrides = {**base, **point.overrides}
        try:
            resolve(profile, overrides)
        except ConfigError as err:
            out.append((point, "invalid", str(err), ""))
            continue
        stamp = point_stamp(profile, overrides, notebooks)
        done = _read_record(results_root(profile, sweep_name(sweeps)) / point.name / "point.json", {})
        record = None if done.get("stamp") == stamp or not reuse_artifacts else \
            record_results(profile, overrides, notebooks)
        status = "up to date" if done.get("stamp") == stamp else "from the record" if record is not None else "run"
        out.append((point, status, done if status == "up to date" else record, stamp))
    return out


def execute_sweep(profile: str, sweeps: Mapping[str, Sequence[Any]], base: Mapping[str, Any] | None = None,
                  notebooks: Sequence[str] | None = None, scheduler: str | None = None,
                  workers: int | None = None, reuse_artifacts: bool = True) -> SweepReport:
    """Run every point of ``sweeps`` that is not up to date, in parallel on Dask distributed; write
    ``sweep.json`` beside the points' folders: each point's status, every call (points run, skipped and
    failed, workers, wall time), and ``workers`` / ``wall_time_s`` of the last call that ran points.
    ``reuse_artifacts``: a point's first run starts from a copy of ``artifacts/<profile>/``, and a point the
    plain runner's record already computed takes its results (module docstring)."""
    from concurrent.futures import ThreadPoolExecutor
    from concurrent.futures import as_completed as as_completed_threads

    from distributed import Client
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
    for point, status, found, stamp in point_states(profile, sweeps, base, names, reuse_artifacts):
        out = results_root(profile, name) / point.name
        if status == "invalid":  # reported at once, naming the parameter; the other points still run
            report.failed.append({"point": point.name, "params": point.overrides, "status": "failed",
                                  "failed_notebook": None, "error": found})
        elif status == "up to date":
            report.skipped.append(found)
        elif status == "from the record":
            report.from_record.append(take_record(point, profile, {**base, **point.overrides}, names, found,
                                                  str(out), stamp))
        else:
            todo.append((point, str(out), str(work_root(profile, name) / point.name), stamp))
    t0 = time.perf_counter()
    if todo:
        if scheduler:
            client = Client(scheduler)
            cluster = None
        else:
            n = workers or os.cpu_count() or 1
            # dashboard_address ":0": the scheduler's HTTP server takes a free port, never another cluster's
            from .graph import local_cluster

            cluster = local_cluster(n)
            client = Client(cluster)
        try:
            report.workers = len(client.scheduler_info()["workers"])
            shared = str(home() / "artifacts" / profile) if reuse_artifacts else None

            def point_on_graph(point: Point, out: str, work: str, stamp: str) -> dict[str, Any]:
                """The point's stage graph on the cluster's workers, then its notebooks in one task."""
                from . import graph

                if shared:
                    seed_artifacts(Path(shared), Path(work) / "artifacts" / profile)
                overrides = {**base, **point.overrides}
                log = Path(work) / STAGE_LOG  # this call's graph, after every stage, beside the earlier calls'
                earlier, started = _read_record(log, []), _now()
                keep = lambda rep: files.write_json(log, [*earlier, stage_call(rep, stamp, started)])  # noqa: E731
                stages = graph.build_graph(resolve(profile, overrides), overrides, notebooks=[n[:2] for n in names],
                                           client=client, home=work, progress=False, on_record=keep)
                keep(stages)
                if stages.failed or stages.not_run:
                    first = stages.failed[0] if stages.failed else {"key": next(iter(stages.not_run)), "error": "not run"}
                    return {"point": point.name, "params": point.overrides, "status": "failed", "failed_notebook": None,
                            "error": f"stage {first['key']} failed: {first['error']}", "stage_graph": stages.to_dict()}
                result = client.submit(run_point, point, profile, base, names, out, work, stamp, 1, shared,
                                       key=f"point-{name}-{point.name}", pure=False).result()
                return {**result, "stage_graph_s": round(stages.wall_time_s, 1)}

            # every point's stages share the workers: a point's graph and notebooks run while others' stages do
            with ThreadPoolExecutor(max_workers=len(todo)) as threads:
                futures = [threads.submit(point_on_graph, *job) for job in todo]
                for fut in tqdm(as_completed_threads(futures), total=len(futures), desc=f"sweep {name}: points done"):
                    result = fut.result()
                    (report.done if result["status"] == "ok" else report.failed).append(result)
        finally:
            client.close()
            if cluster is not None:
                cluster.close()
    # points finish in any order; the report and sweep.json list them in the sweep's own order
    order = {point.name: i for i, point in enumerate(points(sweeps))}
    for rows in (report.done, report.skipped, report.from_record, report.failed):
        rows.sort(key=lambda r: order.get(r["point"], len(order)))
    report.wall_time_s = time.perf_counter() - t0
    root = results_root(profile, name)
    root.mkdir(parents=True, exist_ok=True)
    record_path = root / "sweep.json"
    record = _read_record(record_path, {})
    now = _now()
    call = {"written": now, "workers": report.workers, "wall_time_s": round(report.wall_time_s, 1),
            "ran": [r["point"] for r in report.done], "up to date": [r["point"] for r in report.skipped],
            "from the record": [r["point"] for r in report.from_record], "failed": [r["point"] for r in report.failed]}
    last_run = call if report.done else record.get("last_run")  # a call that only skips keeps the timing record
    this = {r["point"]: {"status": status, **{k: r.get(k) for k in ("wall_time_s", "error", "failed_notebook")}}
            for status, rows in (("ran", report.done), ("up to date", report.skipped),
                                 ("from the record", report.from_record), ("failed", report.failed)) for r in rows}
    files.write_json(record_path, {
        "sweep": name, "profile": profile, "values": merged_values(record.get("values") or {}, sweeps),
        "overrides": base, "notebooks": names, "workers": (last_run or call)["workers"],
        "wall_time_s": (last_run or call)["wall_time_s"], "last_run": last_run,
        "calls": [*record.get("calls", []), call],
        "points": {**(record.get("points") or {}), **this},  # a call over some values keeps the others' entries
        "written": now}, default=str)
    return report


def merged_values(before: Mapping[str, Sequence[Any]], sweeps: Mapping[str, Sequence[Any]]) -> dict[str, list[Any]]:
    """The values ``sweep.json`` lists for each swept name: those of the calls before (``before``), then this
    call's new ones (a call over ``seed=0`` after one over ``seed=0,1,2`` still lists three)."""
    return {k: list(dict.fromkeys([*before.get(k, []), *v])) for k, v in sweeps.items()}


# --- reading sweeps back (notebook 08) ------------------------------------------------------------------------

def load_points(profile: str, name: str, root: Path | None = None, current_stamp=None,
                ) -> tuple[list[dict], list[dict]]:
    """The points of a stored sweep: (up-to-date points, stale points). Each point is its ``point.json``
    plus ``results``: its results files by name. A point is stale when its stamp is not the one the
    current code gives (``current_stamp(point) -> str``, by default :func:`point_stamp`)."""
    root = root or results_root(profile, name)
    fresh, stale = [], []
    for path in sorted(root.glob("*/point.json")):
        rerun = f"re-run the sweep {name!r} (its point {path.parent.name})"
        point = files.read_json(path, rerun)
        point["results"] = {f.stem: files.read_json(f, rerun) for f in sorted(path.parent.glob("*.json"))
                            if f.name != "point.json"}
        want = current_stamp(point) if current_stamp else point_stamp(profile, point["overrides"], point["notebooks"])
        (fresh if point.get("stamp") == want else stale).append(point)
    return fresh, stale


# --- what notebook 08 shows ---------------------------------------------------------------------------------


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
        p = files.read_json(path, f"re-run the sweep {name!r}")
        earlier = p.get("interrupted_calls") or []
        rows.append({"point": p["point"], **{n[:2]: s for n, s in p.get("seconds", {}).items()},
                     "total (s)": p.get("wall_time_s"),
                     **({"interrupted calls": len(earlier),
                         "their finished notebooks (s)": round(sum(sum(c.get("seconds", {}).values())
                                                                   for c in earlier), 1)} if earlier else {}),
                     "threads": p.get("threads"), "worker": p.get("worker"),
                     **({"from the record": p["from_record"]} if p.get("from_record") else {})})
    record = files.read_json(root / "sweep.json", f"re-run the sweep {name!r}") if (root / "sweep.json").exists() else {}
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


