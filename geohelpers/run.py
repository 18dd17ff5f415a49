"""Execute the numbered notebooks with papermill, then build the book.

    python -m geohelpers.run --profile standard            # all notebooks, then the book
    python -m geohelpers.run --profile quick --only 01     # one notebook, then the book if complete
    python -m geohelpers.run --profile standard --no-book  # notebooks only
    python -m geohelpers.run --profile standard --set grid_vae.max_epochs=3
    python -m geohelpers.run --profile standard --sweep seed=0,1,2            # see geohelpers/sweep.py
    python -m geohelpers.run --profile standard --scheduler tcp://host:8786   # the stage graph on a cluster
    python -m geohelpers.run --profile standard --sweep seed=0,1,2 --dry-run  # what it would cost; runs nothing

Executed copies go to ``book/executed/`` (never over the sources in ``notebooks/``), which is what
``_toc.yml`` lists. A notebook is skipped when its executed copy exists and its *input hash* is unchanged
(:func:`geohelpers.notebooks.input_hashes`: the profile and overrides, the notebook's source cells, the
modules that shape results, and the input hash of the notebook before it). Every argument is checked
before any work, the reference workload included.
Before the notebooks, the *stage graph* (:mod:`geohelpers.graph`) loads or builds, in parallel on Dask, every
artifact they read (models, codebooks, code maps, priors), so that the notebooks then only load; a failing
stage stops the run before the notebooks, naming the stage and its inputs, after every stage that does not
depend on it has finished. With ``--only`` the graph holds what those notebooks load; ``--no-graph`` skips it
(each notebook then builds what it finds missing, one after another). The book is built with ``jupyter-book build --all -W --keep-going``: any warning fails the build.
At the end a table of wall times per notebook is printed.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import subprocess
import sys
import time
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterator

from . import notebooks as nb
from . import sweep
from .config import ConfigError, parse_set, resolve
from .data import project_root
from .train import REFERENCE_ENV, reference_workload

ROOT = project_root()


def execute(paths: list[Path], profile: str, overrides: dict[str, Any], force: bool = False) -> list[dict]:
    """Run each notebook with papermill unless up to date; return one summary row per notebook."""
    import papermill as pm

    hashes = nb.input_hashes(paths, profile, overrides)
    package = nb.package_digest()[:16]  # the code the hashes were taken of, recorded with every stamp
    rows = []
    env_before = os.environ.get("TQDM_MININTERVAL")
    os.environ["TQDM_MININTERVAL"] = env_before or "5"
    try:
        for src in paths:
            out = nb.EXECUTED / src.name
            stamp = nb.read_stamps().get(src.name, {})  # read afresh: another call may have executed it since
            why = "--force" if force else nb.why_stale(src, profile, overrides, stamp, hashes[src.name])
            if why is None:
                print(f"[run] {src.name}: current ({profile}): stamp, executed copy and results file verified; "
                      f"skipped", flush=True)
                rows.append({"notebook": src.name, "status": "skipped", "seconds": stamp.get("seconds", 0.0)})
                continue
            print(f"[run] {src.name}: executing ({profile}): {why}", flush=True)
            nb.update_stamp(src.name, None)
            t0 = time.perf_counter()
            try:
                nb.execute(src, out, profile, overrides)
            except pm.PapermillExecutionError as err:
                raise SystemExit(f"[run] {src.name} failed in cell {err.exec_count}: {err.ename}: {err.evalue}\n"
                                 f"[run] the partly executed notebook is {out}")
            seconds = time.perf_counter() - t0
            nb.update_stamp(src.name, {"hash": hashes[src.name], "profile": profile, "seconds": round(seconds, 1),
                                       "config": resolve(profile, overrides).digest(),
                                       "overrides": nb.plain(overrides), "package": package})
            rows.append({"notebook": src.name, "status": "executed", "seconds": seconds})
    finally:
        if env_before is None:
            os.environ.pop("TQDM_MININTERVAL", None)
    return rows


def mixed_stamps(stamps: dict[str, dict[str, Any]]) -> list[str]:
    """Groups of notebooks whose stamps disagree on the resolved configuration or the package source, one
    line each (empty when every notebook of the book was executed by one configuration and one code)."""
    groups: dict[tuple, list[str]] = {}
    for p in nb.notebooks():
        st = stamps.get(p.name, {})
        groups.setdefault((st.get("config"), st.get("package"), json.dumps(st.get("overrides"), sort_keys=True)),
                          []).append(p.name)
    if len(groups) < 2:
        return []
    return [f"{', '.join(names)} with overrides {key[2]} (config {key[0]}, package {key[1]})"
            for key, names in groups.items()]


def build_book(profile: str) -> float:
    """``jupyter-book build`` of the whole project with warnings as errors; returns its wall time."""
    stamps = nb.read_stamps()
    missing = [p.name for p in nb.notebooks() if stamps.get(p.name, {}).get("profile") != profile
               or not (nb.EXECUTED / p.name).exists()]
    if missing:
        raise SystemExit(f"[run] cannot build the book for profile {profile!r}: not executed for it: "
                         f"{', '.join(missing)} (run without --only)")
    mixed = mixed_stamps(stamps)
    if mixed:
        raise SystemExit("[run] cannot build the book: its notebooks were executed with different configurations "
                         "or package code: " + "; ".join(mixed) + " (re-run them together, without --only)")
    exe = shutil.which("jupyter-book", path=str(Path(sys.executable).parent)) or "jupyter-book"
    t0 = time.perf_counter()
    cmd = [exe, "build", str(ROOT), "--all", "-W", "--keep-going"]
    print("[run] " + " ".join(cmd), flush=True)
    result = subprocess.run(cmd, cwd=ROOT)
    if result.returncode:
        raise SystemExit(f"[run] jupyter-book build failed (exit {result.returncode})")
    print(f"[run] book: {ROOT / '_build' / 'html' / 'index.html'}", flush=True)
    return time.perf_counter() - t0


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m geohelpers.run", description=__doc__.split("\n\n")[0])
    parser.add_argument("--profile", default="standard", help="quick, standard or paper")
    parser.add_argument("--only", nargs="+", default=None, metavar="NN", help="notebook numbers, e.g. 01 03")
    parser.add_argument("--set", nargs="+", action="extend", default=[], metavar="NAME=VALUE",
                        help="config overrides; repeat the flag or list several after one")
    parser.add_argument("--force", action="store_true", help="re-execute even when up to date")
    parser.add_argument("--no-book", action="store_true", help="execute the notebooks only")
    parser.add_argument("--sweep", action="append", default=[], metavar="NAME=V1,V2,...",
                        help="run the notebooks for every value (several --sweep: the product), in parallel on Dask")
    parser.add_argument("--scheduler", default=None, metavar="ADDRESS",
                        help="the stage graph's and sweeps' Dask scheduler (tcp://host:8786); default: a LocalCluster")
    parser.add_argument("--workers", type=int, default=None,
                        help="LocalCluster worker processes, one thread each (default: one per core)")
    parser.add_argument("--no-graph", action="store_true",
                        help="skip the stage graph: each notebook builds what it finds missing, one after another")
    parser.add_argument("--dry-run", action="store_true",
                        help="print what the call would build and execute, with times from the record's run.json; "
                             "run nothing")
    parser.add_argument("--fresh-points", action="store_true",
                        help="with --sweep: points do not start from a copy of this profile's artifacts, and a point "
                             "the record already computed is executed again")
    args = parser.parse_args(argv)
    try:  # every argument is checked before any work, the reference workload included
        overrides = canonical(resolve(args.profile, parse_set(args.set)), parse_set(args.set))
        sweeps = sweep.parse_sweeps(args.sweep)
        clash = sorted(set(sweeps) & set(overrides))
        if clash:
            raise ConfigError(f"parameter {clash[0]!r} is both set (--set) and swept (--sweep); allowed: one of the two")
        for point in sweep.points(sweeps):  # a misspelt swept name is named once, before any point runs
            resolve(args.profile, {**overrides, **point.overrides})
    except ConfigError as err:
        parser.error(str(err))
    numbered = nb.swept_notebooks() if sweeps else nb.notebooks()
    if args.only:
        unknown = [n for n in args.only if not any(p.name.startswith(n + "_") for p in numbered)]
        if unknown:
            why = f" (a sweep point never runs {', '.join(nb.READS_SWEEPS)}, which reads the sweeps)" if sweeps else ""
            parser.error(f"--only: no notebook numbered {', '.join(unknown)}{why}; allowed: "
                         f"{', '.join(p.name[:2] for p in numbered)}")
    paths = [p for p in numbered if not args.only or p.name[:2] in args.only]
    if not args.dry_run:  # the environment too, before the reference workload and the first stage
        try:
            check_environment(args, sweeps)
        except ConfigError as err:
            parser.error(str(err))
    print(f"[run] profile {args.profile}, overrides {overrides}", flush=True)
    if args.dry_run:
        return dry_run(args, overrides, sweeps, paths)
    with told_interruptions(args.profile, sys.argv[1:] if argv is None else argv):
        if sweeps:
            return _main_sweep(args, overrides, sweeps, [p.name for p in paths])
        return _main_book(args, overrides, paths)


def canonical(cfg: Any, overrides: dict[str, Any]) -> dict[str, Any]:
    """``overrides`` with each value as the resolved ``cfg`` holds it (``"16,64"``, ``[16, 64]`` and ``(16, 64)``
    all become ``(16, 64)``), so that one setting written two ways stamps and names the same."""
    from .config import flatten

    values = flatten(cfg)
    return {key: values[key] for key in overrides}


def check_environment(args: argparse.Namespace, sweeps: dict[str, list[Any]]) -> None:
    """What the call needs of its environment (:mod:`geohelpers.preflight`): the scheduler answers, and every
    folder it writes can be written (the results and the store under ``$GEOVQ_HOME``, the executed
    notebooks, the book's build folder, a sweep's folders)."""
    from . import store
    from .preflight import check_scheduler, check_writable

    if args.scheduler:
        check_scheduler(args.scheduler)
    folders = {"the results folder": store.home() / "results" / args.profile,
               "the store of artifacts": store.home() / "artifacts" / args.profile}
    if sweeps:
        name = sweep.sweep_name(sweeps)
        folders.update({"the sweep's results folder": sweep.results_root(args.profile, name),
                        "the sweep's working folder": sweep.work_root(args.profile, name)})
    else:
        folders["the executed notebooks' folder"] = nb.EXECUTED
        if not args.no_book:
            folders["the book's build folder"] = ROOT / "_build"
    check_writable(folders)


class Interrupted(BaseException):
    """SIGTERM, raised in the runner's main thread like SIGINT's ``KeyboardInterrupt``."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


@contextmanager
def told_interruptions(profile: str, argv: list[str]) -> Iterator[None]:
    """Within the block, SIGTERM and SIGINT stop the call with a message, not a traceback: what was kept
    (stages stored by identity, the epoch checkpoints of trainings in progress, ``run.json``, the stamps of
    notebooks executed to the end) and the command that resumes; exit status 128 + the signal."""
    import signal
    import threading

    from . import store

    def raise_interrupted(signum: int, frame: Any) -> None:
        raise Interrupted(signum)

    main_thread = threading.current_thread() is threading.main_thread()
    before = signal.signal(signal.SIGTERM, raise_interrupted) if main_thread else None
    try:
        yield
    except (KeyboardInterrupt, Interrupted) as err:
        signum = err.signum if isinstance(err, Interrupted) else signal.SIGINT
        name = signal.Signals(signum).name
        print(f"\n[run] stopped by {name}. Kept: every stage that finished, stored by its identity in "
              f"{store.home() / 'artifacts' / profile}; the last epoch checkpoint of each training in progress, "
              f"which resumes from that epoch; the finished stages' times in "
              f"{store.home() / 'results' / profile / 'run.json'}; every notebook executed to its end, with its "
              f"stamp (the one in progress executes again). Resume with the same command:\n"
              f"    python -m geohelpers.run {shlex.join(argv)}", flush=True)
        raise SystemExit(128 + int(signum)) from None
    finally:
        if main_thread:
            signal.signal(signal.SIGTERM, before)


def _main_book(args: argparse.Namespace, overrides: dict[str, Any], paths: list[Path]) -> None:
    """The plain call: the reference workload, the stage graph when a notebook must execute, the notebooks,
    the book, and the table of wall times."""
    started = datetime.now(timezone.utc).isoformat(timespec="seconds")
    reference = reference_workload()
    print(f"[run] reference workload (50 standard GridVAE training steps, batch 128, one thread): {reference:.2f} s",
          flush=True)
    stages = None
    if not args.no_graph and (args.force or not all_up_to_date(paths, args.profile, overrides)):
        stages = build_stages(args.profile, overrides, [p.name[:2] for p in paths], scheduler=args.scheduler,
                              workers=args.workers,  # run.json after every stage: a stopped build keeps its times
                              on_record=lambda rep: write_run_record(args.profile, overrides, [], reference, started,
                                                                     complete=False, stages=rep))
        # recorded at once: a run stopped during the notebooks keeps the graph's stage times
        record = write_run_record(args.profile, overrides, [], reference, started, complete=False, stages=stages)
        if stages.failed or stages.not_run:
            raise SystemExit(f"[run] {len(stages.failed)} stage(s) failed and {len(stages.not_run)} were not run "
                             f"for want of their inputs; the notebooks were not executed (record: {record})")
    os.environ[REFERENCE_ENV] = f"{reference:.3f}"  # the notebooks' tables of wall times quote it
    rows = execute(paths, args.profile, overrides, force=args.force)
    if not args.no_book:
        rows.append({"notebook": "jupyter-book build", "status": "built", "seconds": build_book(args.profile)})
    record = write_run_record(args.profile, overrides, rows, reference, started, complete=not args.only, stages=stages)
    print(f"\n[run] wall time, profile {args.profile} (also in {record}):")
    if stages is not None:
        print(f"  {'stage graph':<28} {'built':<9} {stages.wall_time_s:8.1f} s  ({len(stages.records)} stages on "
              f"{stages.workers} workers; critical path {stages.critical_path_s:.1f} s)")
    for r in rows:
        print(f"  {r['notebook']:<28} {r['status']:<9} {r['seconds']:8.1f} s")
    print(f"  {'total (this run)':<28} {'':<9} {run_total(rows, stages):8.1f} s")
    print(f"  {'reference workload':<28} {'':<9} {reference:8.2f} s  (50 GridVAE steps on one thread: compare machines by it)")


def stale_notebooks(paths: list[Path], profile: str, overrides: dict[str, Any]) -> list[Path]:
    """The notebooks of ``paths`` that are not current (:func:`geohelpers.notebooks.why_stale`: the stamp
    their inputs give, their executed copy and their results file, verified): those :func:`execute` runs."""
    stamps = nb.read_stamps()
    hashes = nb.input_hashes(paths, profile, overrides)
    return [p for p in paths if nb.why_stale(p, profile, overrides, stamps.get(p.name), hashes[p.name])]


def all_up_to_date(paths: list[Path], profile: str, overrides: dict[str, Any]) -> bool:
    """Whether every notebook of ``paths`` is current (then the runner has nothing to build or execute)."""
    return not stale_notebooks(paths, profile, overrides)


def build_stages(profile: str, overrides: dict[str, Any], notebooks: list[str] | None = None,
                 scheduler: str | None = None, workers: int | None = None, on_record: Any = None) -> Any:
    """The stage graph of the profile (:mod:`geohelpers.graph`), the part ``notebooks`` load, on Dask, with a
    progress bar; prints each failed stage with its inputs and the critical path. ``on_record(report)``
    after every stage (:func:`geohelpers.graph.build_graph`)."""
    from . import graph

    print(f"[run] stage graph ({profile}): loading or building every artifact the notebooks read, on Dask", flush=True)
    report = graph.build_graph(resolve(profile, overrides), overrides, notebooks=notebooks, scheduler=scheduler,
                               workers=workers, on_record=on_record)
    built = sum(r["status"] == "built" for r in report.records)
    print(f"[run] stage graph: {built} built, {len(report.records) - built - len(report.failed)} up to date, "
          f"{len(report.failed)} failed, {len(report.not_run)} not run; {report.wall_time_s:.1f} s on "
          f"{report.workers} workers; critical path {report.critical_path_s:.1f} s: "
          f"{' -> '.join(report.critical_path)}", flush=True)
    for r in report.failed:
        print(f"[run] FAILED {r['key']} (inputs: {', '.join(r['inputs']) or 'none'}): {r['error']}", flush=True)
    for key, why in report.not_run.items():
        print(f"[run] not run: {key} (its input {why} failed)", flush=True)
    for r in report.restarts:
        print(f"[run] a worker died while building {r['key']} (process {r['pid']} on {r['worker']}); Dask started "
              f"the stage again on another worker: {r['lost_s']:.1f} s lost (in run.json, stage_graph.restarts)",
              flush=True)
    return report


def run_total(rows: list[dict], stages: Any = None) -> float:
    """Seconds of what this call ran: the stage graph, the notebooks it executed and the book build."""
    return sum(r["seconds"] for r in rows if r["status"] != "skipped") + (stages.wall_time_s if stages else 0.0)


def write_run_record(profile: str, overrides: dict[str, Any], rows: list[dict], reference: float, started: str,
                     complete: bool, stages: Any = None) -> Path:
    """``results/<profile>/run.json``: what this call of the runner did and how long it took: the stage
    graph (each stage's status, seconds and worker, the choices, the critical path), each notebook's
    status and seconds, the book build, the total of what ran, and the reference workload timed beside them
    (with the torch threads it ran on), so that a wall time is never read without the machine's pace.

    Earlier calls stay with it: what this call loaded or skipped was made by them. ``earlier_calls`` keeps,
    oldest first, every earlier call of the same profile and overrides that built a stage or executed a
    notebook (a call that only loaded and skipped adds nothing), so a book command stopped mid-graph and run
    again, or one that re-executed a single notebook, still shows what each call built and how long it
    took. A call that built every stage and executed every notebook starts the list afresh, as does
    another profile's or overrides' record."""
    import torch

    from . import files, store

    path = store.results_dir(profile) / "run.json"
    stage_graph = stages.to_dict() if stages is not None else None
    graph = stage_graph["stages"] if stage_graph else []
    fresh = (complete and bool(graph) and all(s["status"] == "built" for s in graph)
             and all(r["status"] == "executed" for r in rows if r["notebook"][:2].isdigit()))
    files.write_json(path, {"earlier_calls": [] if fresh else earlier_calls(path, profile, overrides, started),
        "profile": profile, "overrides": nb.plain(overrides), "complete_book": complete, "started": started,
        "written": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "reference_workload_s": round(reference, 3), "reference_workload_threads": 1, "torch_threads": torch.get_num_threads(),
        "stage_graph": stage_graph,
        "steps": [{**r, "seconds": round(r["seconds"], 1)} for r in rows],
        "total_s": round(run_total(rows, stages), 1),
        "machine": store.machine()})
    return path


def earlier_calls(path: Path, profile: str, overrides: dict[str, Any], started: str) -> list[dict]:
    """The earlier calls :func:`write_run_record` keeps beside this call's record (this call started at
    ``started``), oldest first: the record in ``path`` and the calls it kept, if of the same profile and
    overrides, without those that neither built a stage nor executed a notebook; empty when ``path`` is
    missing or unreadable or holds another profile's or overrides' record."""
    try:
        before = json.loads(path.read_text())
    except (OSError, ValueError):
        return []
    if before.get("profile") != profile or before.get("overrides") != nb.plain(overrides):
        return []
    kept = list(before.get("earlier_calls") or [])
    if before.get("started") != started:  # not this call rewriting its own record after another stage
        kept.append({k: v for k, v in before.items() if k != "earlier_calls"})
    return [c for c in kept if did_work(c)]


def did_work(record: dict[str, Any]) -> bool:
    """Whether a call's ``run.json`` record built a stage or executed a notebook."""
    stages = (record.get("stage_graph") or {}).get("stages") or []
    return (any(s.get("status") == "built" for s in stages)
            or any(r.get("status") == "executed" for r in record.get("steps") or []))


def _main_sweep(args: argparse.Namespace, overrides: dict[str, Any], sweeps: dict[str, list[Any]],
                only: list[str]) -> None:
    """``--sweep``: every point through :func:`geohelpers.sweep.execute_sweep`, then a summary; exits
    non-zero when a point failed (the others' results are kept)."""
    report = sweep.execute_sweep(args.profile, sweeps, overrides, only, scheduler=args.scheduler, workers=args.workers,
                                 reuse_artifacts=not args.fresh_points)
    taken = f", {len(report.from_record)} from the record" if report.from_record else ""
    print(f"\n[run] sweep {report.name}, profile {args.profile}: {len(report.done)} ran, {len(report.skipped)} up to "
          f"date{taken}, {len(report.failed)} failed; {report.workers} workers, {report.wall_time_s:.1f} s")
    for r in report.done + report.skipped:
        print(f"  {r['point']:<40} ok      {r.get('wall_time_s') or 0.0:8.1f} s")
    for r in report.from_record:
        print(f"  {r['point']:<40} ok      from {r['from_record']}")
    for r in report.failed:
        where = f" in {r['failed_notebook']}" if r.get("failed_notebook") else ""
        print(f"  {r['point']:<40} FAILED{where}: {r['error']}")
    print(f"[run] results: {sweep.results_root(args.profile, report.name)}")
    if report.failed:
        raise SystemExit(1)


# --- --dry-run: what a call would do, timed by the record ------------------------------------------------

def record_times(profile: str) -> dict[str, Any]:
    """What ``results/<profile>/run.json`` (the last call and the earlier calls it keeps) says a call costs:
    ``stages``, the seconds of each stage's latest build (for a stage it never built, the time a sweep
    point's ``point.json`` records, :func:`geohelpers.sweep.stage_call`); ``notebooks``, of each notebook's
    latest execution (and of the book build); ``choices``, the latest choice of each name; ``references``,
    the reference workloads of the calls that built or executed; and the record's ``path``."""
    from . import store

    path = store.home() / "results" / profile / "run.json"  # not results_dir(): a dry run makes no folder
    try:
        last = json.loads(path.read_text())
    except (OSError, ValueError):
        last = {}
    calls = [*(last.get("earlier_calls") or []), {k: v for k, v in last.items() if k != "earlier_calls"}] if last else []
    out: dict[str, Any] = {"path": path, "stages": {}, "notebooks": {}, "choices": {}, "references": []}
    for call in calls:
        graph = call.get("stage_graph") or {}
        out["stages"].update({s["key"]: float(s["seconds"]) for s in graph.get("stages") or [] if s.get("status") == "built"})
        out["notebooks"].update({r["notebook"]: float(r["seconds"]) for r in call.get("steps") or []
                                 if r.get("status") in ("executed", "built")})
        out["choices"].update(graph.get("choices") or {})
        if did_work(call) and call.get("reference_workload_s"):
            out["references"].append(float(call["reference_workload_s"]))
    for point in sorted(path.parent.glob("sweeps/*/*/point.json")):  # the sweeps' stage graphs fill the gaps
        try:
            calls = json.loads(point.read_text()).get("stage_graph_calls") or []
        except (OSError, ValueError):
            continue
        for call in calls:
            for key, seconds in (call.get("built_seconds") or {}).items():
                out["stages"].setdefault(key, float(seconds))
    return out


def schedule(g: Any, seconds: dict[str, float], workers: int) -> float:
    """The wall time of the DAG ``g`` on ``workers`` workers when each node takes ``seconds`` (0 if absent)
    and a free worker takes the ready node with the most nodes waiting on it, as the stage graph does."""
    import heapq

    import networkx as nx

    waiting = {n: g.in_degree(n) for n in g}
    rank = {n: len(nx.descendants(g, n)) for n in g}
    ready = [(-rank[n], n) for n in g if not waiting[n]]
    heapq.heapify(ready)
    running: list[tuple[float, str]] = []
    now = 0.0
    while ready or running:
        while ready and len(running) < workers:
            node = heapq.heappop(ready)[1]
            heapq.heappush(running, (now + seconds.get(node, 0.0), node))
        now, node = heapq.heappop(running)
        for after in g.successors(node):
            waiting[after] -= 1
            if not waiting[after]:
                heapq.heappush(ready, (-rank[after], after))
    return now


def plan_stages(profile: str, overrides: dict[str, Any], notebooks: list[str], folders: list[Path],
                choices: dict[str, str]) -> tuple[Any, dict[str, str]]:
    """The stage graph a call would run (the record's ``choices`` assumed: stages after a choice the record
    lacks are left out) and each stage's state given what ``folders`` store (:func:`geohelpers.graph.stage_state`);
    a stored artifact whose bytes fail their digest is named and counted as to build, as the run would."""
    from . import graph

    cfg = resolve(profile, overrides)
    g = graph.for_notebooks(graph.full_graph(cfg, choices), notebooks)
    damaged: list[tuple[str, str]] = []
    stored = graph.stored_identities(folders, damaged)  # bytes checked as the run checks them
    for path, why in damaged:
        print(f"[run] damaged, to rebuild: {path} ({why})", flush=True)
    return g, {key: graph.stage_state(g.nodes[key]["stage"], cfg, stored) for key in g}


def describe_plan(label: str, states: dict[str, str], times: dict[str, Any]) -> tuple[dict[str, float], int]:
    """Print one graph's plan (states, and what is to be built by kind with the record's seconds); return
    the seconds of the stages to build or resume, and how many of them the record has no time for."""
    todo = {k: times["stages"].get(k) for k, st in states.items() if st in ("build", "resume")}
    counts = {st: sum(v == st for v in states.values()) for st in ("stored", "resume", "build", "choice")}
    print(f"[run] {label}: {len(states)} stages: {counts['stored']} stored, {counts['resume']} resume from an epoch "
          f"checkpoint, {counts['build']} to build, {counts['choice']} choices", flush=True)
    kinds = sorted({k.split("/")[0] for k in todo})
    for kind in kinds:
        mine = [v for k, v in todo.items() if k.split("/")[0] == kind]
        unknown = sum(v is None for v in mine)
        print(f"    {kind:<12} {len(mine):4d} to build or resume, {sum(v or 0 for v in mine):9,.0f} s in the record"
              + (f" ({unknown} without a time there)" if unknown else ""))
    return {k: v for k, v in todo.items() if v is not None}, sum(v is None for v in todo.values())


def dry_run(args: argparse.Namespace, overrides: dict[str, Any], sweeps: dict[str, list[Any]], paths: list[Path]) -> None:
    """``--dry-run``: what the call would load, build, resume and execute, and how long the record's times
    say it takes on ``--workers`` workers (:func:`schedule` of the stages, then the notebooks). Nothing is
    built, executed or written; no reference workload is timed."""
    import networkx as nx

    from . import store
    from .plan import CHOICES

    times = record_times(args.profile)
    workers = args.workers or os.cpu_count() or 1
    wanted = [p.name[:2] for p in paths]
    refs = ", ".join(f"{r:.2f} s" for r in times["references"]) or "none"
    chosen = ", ".join(f"{k.removeprefix('choice/')} {v}" for k, v in times["choices"].items()) or "none recorded"
    lacking = [c for c in CHOICES if f"choice/{c}" not in times["choices"]]
    print(f"[run] dry run: nothing is built or executed. Times are those of {times['path']} (reference workloads "
          f"of its calls: {refs}; machines differ by up to 2x); choices assumed: {chosen}"
          + (f"; the stages that follow {', '.join(lacking)} are not listed" if lacking else ""), flush=True)
    whole, seconds, unknown = nx.DiGraph(), {}, 0
    if sweeps:
        names = [p.name for p in paths]
        jobs = []
        for point, status, _, _ in sweep.point_states(args.profile, sweeps, overrides, names, not args.fresh_points):
            print(f"[run] point {point.name}: {status}", flush=True)
            if status == "run":
                work = sweep.work_root(args.profile, sweep.sweep_name(sweeps)) / point.name / "artifacts" / args.profile
                shared = store.home() / "artifacts" / args.profile
                jobs.append((point.name, {**overrides, **point.overrides},
                             [work] if work.exists() else [] if args.fresh_points else [shared]))
        to_run = names
    else:
        stale = paths if args.force else stale_notebooks(paths, args.profile, overrides)
        jobs = [] if args.no_graph or not stale else [("", overrides, [store.home() / "artifacts" / args.profile])]
        to_run = [p.name for p in stale] + ([] if args.no_book else ["jupyter-book build"])
        print(f"[run] notebooks to execute: {', '.join(p.name[:2] for p in stale) or 'none'}"
              + (" (--no-graph: each builds what it misses, inside its own time)" if args.no_graph else ""), flush=True)
    nbs = sum(times["notebooks"].get(n, 0.0) for n in to_run)
    notebook_s = 0.0 if sweeps else nbs  # a plain call's notebooks run after its graph, one after another
    for name, point_overrides, folders in jobs:
        g, states = plan_stages(args.profile, point_overrides, wanted, folders, times["choices"])
        todo, missing = describe_plan(f"{name + ': ' if name else ''}stage graph", states, times)
        unknown += missing
        whole.update(nx.relabel_nodes(g, {k: f"{name}:{k}" for k in g}))
        seconds.update({f"{name}:{k}": v for k, v in todo.items()})
        if sweeps:  # a point's notebooks run in one task once its stages are done
            whole.add_edges_from((f"{name}:{k}", f"{name}:notebooks") for k in g)
            seconds[f"{name}:notebooks"] = nbs
    if not times["stages"] and not times["notebooks"]:
        print(f"[run] no estimate: {times['path']} holds no times of this profile (run it once)", flush=True)
        return
    total = schedule(whole, seconds, workers) + notebook_s
    bound = f"at least (the record has no time for {unknown} of the stages to build) " if unknown else ""
    span = f"{total / 3600:.1f} h" if total >= 3600 else f"{total / 60:.0f} min"
    print(f"[run] estimate on {workers} workers: {bound}{total:,.0f} s ({span}): "
          f"{sum(seconds.values()):,.0f} stage- and point-notebook-seconds scheduled as the graph does"
          + (f", then {notebook_s:,.0f} s of notebooks and the book" if notebook_s else ""), flush=True)


if __name__ == "__main__":
    main()
