"""The fault probe: damaged, stale and concurrent inputs at the ``quick`` profile, and what the project does.

Each fault is made on a scratch copy of the notebooks, with ``$GEOVQ_HOME`` in a temporary folder (so the
project's own artifacts, results and executed book are never touched), then the runner or the library is
called as a user would. Every outcome is classified:

- ``clean``: the fault is detected and named (file, parameter or notebook, and what to do), or repaired
  (a damaged artifact set aside and rebuilt), with no raw traceback;
- ``poor``: detected, but with a raw traceback or a message that does not name the file or the remedy;
- ``silent``: a wrong number with exit status 0.

    python benchmarks/faults.py --out benchmarks/results/faults.md

The faults: damaged and truncated artifacts, stamps and results; another configuration's results; bad
arguments; the environment (a scheduler that does not answer or is malformed, results folder or store not
writable); list overrides, repeated K and too few training images; a damaged artifact under ``--dry-run``;
a Dask worker killed mid-stage; the runner stopped by SIGTERM; an empty store; two runner calls at once.
Those that need a process of their own (a signal, a killed worker, two calls) run the runner in one
(:meth:`Probe.spawn`) with the probe's folders.

The cheap faults are also unit tests (``tests/test_files.py``, ``tests/test_runner.py``,
``tests/test_preflight.py``, ``tests/test_store_metrics.py``); this script re-runs all of them end to end,
through the notebooks.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Callable

ROOT = Path(__file__).resolve().parents[1]
QUICK = ["--profile", "quick", "--no-book"]


def flip(path: Path, n: int = 16) -> None:
    data = bytearray(path.read_bytes())
    for i in range(n):
        data[len(data) // 3 + 97 * i] ^= 0xFF
    path.write_bytes(bytes(data))


class Probe:
    def __init__(self, scratch: Path) -> None:
        from geohelpers import notebooks, run

        self.scratch, self.run, self.nb = scratch, run, notebooks
        shutil.copytree(ROOT / "notebooks", scratch / "notebooks")
        os.environ["GEOVQ_HOME"] = str(scratch)
        notebooks.SOURCES, notebooks.EXECUTED = scratch / "notebooks", scratch / "book" / "executed"
        notebooks.STAMPS = notebooks.EXECUTED / "stamps.json"
        run.reference_workload = lambda: 0.0  # the probe checks behaviour, not the machine
        self.rows: list[dict] = []

    def runner(self, *argv: str) -> tuple[int, str]:
        """``python -m geohelpers.run ARGV`` in this process: (exit status, everything it printed)."""
        out = io.StringIO()
        code = 0
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
            try:
                self.run.main(list(argv))
            except SystemExit as err:  # what the interpreter would print on its way out
                code = err.code if isinstance(err.code, int) else 1
                if isinstance(err.code, str):
                    print(err.code)
            except Exception:  # noqa: BLE001 - a raw traceback is an outcome to report
                traceback.print_exc(file=out)
                code = 99
        return code, out.getvalue()

    def spawn(self, *argv: str) -> subprocess.Popen:
        """The runner in a process of its own, with this probe's folders (for faults that need one: a signal,
        a killed worker, two calls at once); its output goes to a pipe."""
        code = ("import sys\nfrom pathlib import Path\nfrom geohelpers import notebooks as nb, run\n"
                f"root = Path({str(self.scratch)!r})\n"
                "nb.SOURCES, nb.EXECUTED = root / 'notebooks', root / 'book' / 'executed'\n"
                "nb.STAMPS = nb.EXECUTED / 'stamps.json'\nrun.reference_workload = lambda: 0.0\n"
                "run.main(sys.argv[1:])\n")
        return subprocess.Popen([sys.executable, "-c", code, *argv], cwd=ROOT, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True, env={**os.environ, "GEOVQ_HOME": str(self.scratch)})

    def journal_line(self, prefix: str = "vae/", timeout: float = 120.0) -> dict | None:
        """The first start of a stage whose key begins with ``prefix`` that a runner call logs in the store's
        stage journal (:func:`geohelpers.graph.run_stage`), or None after ``timeout`` seconds."""
        end = time.time() + timeout
        while time.time() < end:
            for f in (self.artifacts() / ".stage-journal").glob("*.jsonl"):
                for line in f.read_text().splitlines():
                    entry = json.loads(line)
                    if entry["key"].startswith(prefix):
                        return entry
            time.sleep(0.2)
        return None

    def results(self, name: str) -> dict:
        return json.loads((self.scratch / "results" / "quick" / f"{name}.json").read_text())

    def built(self) -> list[str]:
        """The stages the last runner call built (``stage_graph`` of ``results/quick/run.json``)."""
        record = json.loads((self.scratch / "results" / "quick" / "run.json").read_text())
        return [s["key"] for s in (record.get("stage_graph") or {}).get("stages") or [] if s["status"] == "built"]

    def artifacts(self) -> Path:
        return self.scratch / "artifacts" / "quick"

    def record(self, fault: str, check: Callable[[], tuple[str, str]]) -> None:
        t0 = time.perf_counter()
        try:
            outcome, what = check()
        except Exception as err:  # noqa: BLE001
            outcome, what = "poor", f"the probe itself raised {type(err).__name__}: {err}"
        self.rows.append({"fault": fault, "outcome": outcome, "what happened": what,
                          "seconds": round(time.perf_counter() - t0, 1)})
        print(f"[faults] {outcome:<6} {fault}: {what}", flush=True)


@contextlib.contextmanager
def unwritable(folder: Path):
    """``folder`` made unwritable even for root: immutable (``chattr +i``) while the block runs."""
    folder.mkdir(parents=True, exist_ok=True)
    subprocess.run(["chattr", "+i", str(folder)], check=True)
    try:
        yield folder
    finally:
        subprocess.run(["chattr", "-i", str(folder)], check=False)


def refused(code: int, out: str, seconds: float, *names: str) -> bool:
    """A call refused as the runner promises: a non-zero exit within 5 s, no traceback, every name in ``names``
    in its message."""
    return code != 0 and seconds < 5 and "Traceback" not in out and all(n in out for n in names)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default=None, help="write the table (Markdown) here")
    args = parser.parse_args(argv)
    scratch = Path(tempfile.mkdtemp(prefix="geovq-faults-"))
    p = Probe(scratch)
    try:
        code, out = p.runner(*QUICK, "--only", "01", "02", "03")
        assert code == 0, out[-3000:]
        before = p.results("01_vae")["metrics"]["GridVAE"]["neg_elbo_nats"]

        def damaged_checkpoint() -> tuple[str, str]:
            flip(p.artifacts() / "vae_grid.pt")
            code, out = p.runner(*QUICK, "--only", "01", "--force")
            r = p.results("01_vae")["metrics"]["GridVAE"]
            aside = (p.artifacts() / "vae_grid.pt.corrupt").exists()
            retrained = p.built() == ["vae/grid"] or r["training"]["trained_in_this_run"]  # by the graph, or the notebook
            if code == 0 and retrained and aside and r["neg_elbo_nats"] == before:
                return "clean", (f"detected before torch.load, set aside as vae_grid.pt.corrupt, retrained by the stage "
                                 f"graph to the same -ELBO ({before:.6f}); exit 0")
            return ("silent" if code == 0 else "poor"), f"exit {code}, retrained {retrained} ({p.built()}), set aside {aside}"

        def truncated_checkpoint() -> tuple[str, str]:
            path = p.artifacts() / "vae_flat.pt"
            path.write_bytes(path.read_bytes()[:1000])
            code, out = p.runner(*QUICK, "--only", "01", "--force")
            aside = (p.artifacts() / "vae_flat.pt.corrupt").exists()
            ok = code == 0 and aside and (p.built() == ["vae/flat"]
                                          or p.results("01_vae")["metrics"]["FlatVAE"]["training"]["trained_in_this_run"])
            return ("clean", "named, set aside and retrained by the stage graph (vae/flat alone); exit 0") if ok else \
                ("poor", f"exit {code}, built {p.built()}: {out[-300:]}")

        def damaged_codebook() -> tuple[str, str]:
            path = sorted((p.artifacts() / "codebooks").glob("grid_kmeans_K*.npz"))[0]
            flip(path, 4)
            code, out = p.runner(*QUICK, "--only", "02", "--force")
            rows = p.results("02_w2_quantization")["metrics"]["rows"]
            refit = [k for k in p.built() if k.startswith("codebook/")] or [r for r in rows if r.get("fitted_in_this_run")]
            aside = path.with_name(path.name + ".corrupt").exists()
            ok = code == 0 and aside and len(refit) == 1
            return ("clean", f"{path.name} set aside and refitted by the stage graph ({refit[0]} alone of "
                    f"{len(rows)} codebooks); exit 0") if ok else ("poor", f"exit {code}, refitted {refit}, set aside {aside}")

        def damaged_code_maps() -> tuple[str, str]:
            path = p.artifacts() / "codes" / "grid_kmeans_K16.npz"
            if not path.exists():
                path = sorted((p.artifacts() / "codes").glob("grid_kmeans_K*.npz"))[0]
            flip(path, 4)
            code, out = p.runner(*QUICK, "--only", "04", "--force")
            aside = path.with_name(path.name + ".corrupt").exists()
            rebuilt = f"codes/{path.stem}" in p.built()
            if code == 0 and aside and rebuilt:
                return "clean", (f"the stage graph of --only 04 finds {path.name} damaged, sets it aside and encodes "
                                 f"the maps again before notebook 04 reads them; exit 0")
            return ("silent" if code == 0 and not aside else "poor"), f"exit {code}, set aside {aside}, built {p.built()}: {out[-300:]}"

        def other_configuration() -> tuple[str, str]:
            p.runner(*QUICK, "--only", "02", "--set", "grid_vae.beta=0.2")
            code, out = p.runner(*QUICK, "--only", "07")
            if code != 0 and "StaleResultsError" in out and "02_w2_quantization" in out and "grid_vae" in out:
                return "clean", "notebook 07 refuses notebook 02's beta = 0.2 results, naming the section and the notebook to re-run"
            return ("silent" if code == 0 else "poor"), f"exit {code}: {out[-300:]}"

        def truncated_stamps() -> tuple[str, str]:
            p.nb.STAMPS.write_text(p.nb.STAMPS.read_text()[:20])
            code, out = p.runner(*QUICK, "--only", "01")
            ok = code == 0 and "stamps.json is damaged" in out and "executing" in out
            return ("clean", "named, set aside as stamps.json.corrupt; notebook 01 re-executed") if ok else \
                ("poor", f"exit {code}: {out[-300:]}")

        def truncated_results() -> tuple[str, str]:
            path = p.scratch / "results" / "quick" / "02_w2_quantization.json"
            p.runner(*QUICK, "--only", "02", "--force")
            path.write_text(path.read_text()[:100])
            code, out = p.runner(*QUICK, "--only", "07", "--force")
            ok = code != 0 and "02_w2_quantization.json is damaged" in out and "--only 02" in out
            return ("clean", "notebook 07 stops naming the file and the notebook to re-run") if ok else \
                ("poor", f"exit {code}: {out[-300:]}")

        def bad_arguments() -> tuple[str, str]:
            outs = []
            for argv in (["--only", "1"], ["--only", "09"], ["--sweep", "sed=0,1"]):
                t0 = time.perf_counter()
                code, out = p.runner(*QUICK, *argv)
                outs.append((code, out, time.perf_counter() - t0))
            sweep_dir = p.scratch / "results" / "quick" / "sweeps" / "sed"
            ok = all(c == 2 and "Traceback" not in o and o.count("allowed") == 1 for c, o, _ in outs) and not sweep_dir.exists()
            return ("clean", "exit 2 at once (before the reference workload), names listed once, nothing written: "
                    + ", ".join(f"{s:.2f} s" for *_, s in outs)) if ok else ("poor", str([(c, o[-200:]) for c, o, _ in outs]))

        def tuple_override() -> tuple[str, str]:
            code, out = p.runner(*QUICK, "--only", "01", "--set", "quantize.ks=16,32")
            ks = p.results("01_vae")["config"]["quantize"]["ks"]
            return ("clean", f"--set quantize.ks=16,32 reaches notebook 01 as {ks}") if code == 0 and ks == [16, 32] else \
                ("poor", f"exit {code}: {out[-300:]}")

        def stray_module() -> tuple[str, str]:
            from geohelpers import artifacts

            before = artifacts.modules_digest(), p.nb.package_digest()
            stray = artifacts.PACKAGE_ROOT / "zz_stray_probe.py"
            try:
                stray.write_text("x = 1\n")
                after = artifacts.modules_digest(), p.nb.package_digest()
            finally:
                stray.unlink()
            return ("clean", "an untracked module changes no identity and no stamp") if after == before else \
                ("poor", "an untracked module changed the identities")

        def concurrent_writes() -> tuple[str, str]:
            code = ("import sys, time\nfrom geohelpers import files\nend = time.time() + 3\n"
                    "while time.time() < end:\n    files.write_artifact(sys.argv[1], sys.argv[2].encode() * 200_000, 'x')\n")
            target = p.scratch / "race.pt"
            procs = [subprocess.Popen([sys.executable, "-c", code, str(target), c]) for c in "ab"]
            from geohelpers import files

            torn = reads = 0
            end = time.time() + 3
            while time.time() < end:
                if target.exists():
                    data = target.read_bytes()
                    reads += 1
                    torn += data not in (b"a" * 200_000, b"b" * 200_000)
                    files.read_artifact(target)
            for proc in procs:
                proc.wait()
            corrupt = list(p.scratch.glob("race.pt.corrupt"))
            return ("clean", f"two processes writing one artifact for 3 s: {reads} reads, {torn} torn, "
                    f"{len(corrupt)} false alarms") if not torn and not corrupt else ("poor", f"{torn} torn, {len(corrupt)} false alarms")

        def timed(*argv: str) -> tuple[int, str, float]:
            t0 = time.perf_counter()
            code, out = p.runner(*argv)
            return code, out, time.perf_counter() - t0

        def scheduler_silent() -> tuple[str, str]:  # as a user meets it: a process of its own, imports included
            t0 = time.perf_counter()
            proc = p.spawn(*QUICK, "--only", "01", "--scheduler", "tcp://127.0.0.1:9")
            out, code, sec = proc.communicate(timeout=60)[0], proc.returncode, time.perf_counter() - t0
            return ("clean", f"exit {code} in {sec:.1f} s from the command line: {out.strip().splitlines()[-1][:130]}...") \
                if refused(code, out, sec, "--scheduler", "leave --scheduler out") else ("poor", f"exit {code} in {sec:.1f} s: {out[-300:]}")

        def scheduler_nonsense() -> tuple[str, str]:
            code, out, sec = timed(*QUICK, "--only", "01", "--scheduler", "nonsense")
            return ("clean", f"exit {code} in {sec:.1f} s, naming --scheduler and the form tcp://HOST:PORT") if refused(
                code, out, sec, "--scheduler", "tcp://HOST:PORT") else ("poor", f"exit {code} in {sec:.1f} s: {out[-300:]}")

        def results_unwritable() -> tuple[str, str]:
            with unwritable(p.scratch / "results" / "quick") as folder:
                code, out, sec = timed(*QUICK, "--only", "01", "--force")
            return ("clean", f"exit {code} in {sec:.1f} s, before any stage, naming {folder.name}/ and the fix") if refused(
                code, out, sec, str(folder), "cannot be written") else ("poor", f"exit {code} in {sec:.1f} s: {out[-300:]}")

        def home_unwritable() -> tuple[str, str]:
            home = Path(tempfile.mkdtemp(prefix="geovq-ro-home-"))
            try:
                with unwritable(home):
                    os.environ["GEOVQ_HOME"] = str(home)
                    code, out, sec = timed(*QUICK, "--only", "01", "--force")
            finally:
                os.environ["GEOVQ_HOME"] = str(p.scratch)
                shutil.rmtree(home, ignore_errors=True)
            return ("clean", f"exit {code} in {sec:.1f} s, naming the folder and $GEOVQ_HOME") if refused(
                code, out, sec, "$GEOVQ_HOME", "cannot be written") else ("poor", f"exit {code} in {sec:.1f} s: {out[-300:]}")

        def string_lists() -> tuple[str, str]:
            first = timed(*QUICK, "--only", "01", "--set", "prior.kinds=pixelcnn,transformer", "--force")
            second = timed(*QUICK, "--only", "01", "--set", "prior.kinds=[pixelcnn,transformer]")
            kinds = p.results("01_vae")["config"]["prior"]["kinds"]
            ok = first[0] == 0 == second[0] and kinds == ["pixelcnn", "transformer"] and "current" in second[1]
            return ("clean", "prior.kinds=pixelcnn,transformer and =[pixelcnn,transformer] give one value "
                    f"({kinds}) and one stamp: the second call is current") if ok else \
                ("poor", f"exit {first[0]} / {second[0]}, kinds {kinds}: {second[1][-300:]}")

        def duplicate_k() -> tuple[str, str]:
            a = timed(*QUICK, "--only", "01", "--set", "quantize.ks=32,32,16")
            b = timed(*QUICK, "--only", "01", "--set", "quantize.ks=16,16")
            ok = all(refused(*r, "'quantize.ks' repeats") and "prior.ks" not in r[1].splitlines()[-1] for r in (a, b))
            return ("clean", f"both refused in {a[2]:.1f} / {b[2]:.1f} s, naming quantize.ks and the repeated K") if ok \
                else ("poor", f"{a[1][-200:]} / {b[1][-200:]}")

        def tiny_train_set() -> tuple[str, str]:
            code, out, sec = timed(*QUICK, "--only", "01", "--set", "data.n_train=1")
            return ("clean", f"exit {code} in {sec:.1f} s, before training: {out.strip().splitlines()[-1].split('error: ')[-1][:150]}...") \
                if refused(code, out, sec, "'data.n_train' is 1", "data.n_train >=") else ("poor", f"exit {code}: {out[-300:]}")

        def dry_run_damaged() -> tuple[str, str]:
            path = sorted((p.artifacts() / "codebooks").glob("grid_kmeans_K*.npz"))[0]
            flip(path, 4)
            code, out, sec = timed(*QUICK, "--only", "02", "--force", "--dry-run")
            counted = [line for line in out.splitlines() if "stage graph:" in line]
            code2, out2 = p.runner(*QUICK, "--only", "02", "--force")  # the run rebuilds it
            ok = code == 0 and f"damaged, to rebuild: {path}" in out and code2 == 0
            return ("clean", f"the dry run names {path.name} as damaged and counts it to build ({counted[0].split(': ', 1)[-1]}); "
                    "the run then rebuilds it") if ok else ("poor", f"exit {code} / {code2}: {out[-400:]}")

        def worker_killed() -> tuple[str, str]:
            proc = p.spawn(*QUICK, "--only", "01", "--set", "grid_vae.lr=0.0019", "flat_vae.lr=0.0019")
            start = p.journal_line()
            if start is None:
                proc.kill()
                return "poor", "no stage started within 120 s"
            time.sleep(1.0)
            os.kill(start["pid"], 9)
            out, _ = proc.communicate(timeout=600)
            record = json.loads((p.scratch / "results" / "quick" / "run.json").read_text())
            lost = (record.get("stage_graph") or {}).get("restarts") or []
            ok = proc.returncode == 0 and any(r["key"] == start["key"] for r in lost) and "a worker died" in out
            return ("clean", f"killed worker {start['pid']} during {start['key']}; Dask ran it again, the runner "
                    f"said so and run.json lists the restart ({lost[0]['lost_s'] if lost else '?'} s lost); exit 0") \
                if ok else ("poor", f"exit {proc.returncode}, restarts {lost}: {out[-300:]}")

        def runner_sigterm() -> tuple[str, str]:
            import signal as sig

            proc = p.spawn(*QUICK, "--only", "01", "--set", "grid_vae.lr=0.0018", "flat_vae.lr=0.0018")
            start = p.journal_line()
            time.sleep(1.0)
            proc.send_signal(sig.SIGTERM)
            t0 = time.perf_counter()
            out, _ = proc.communicate(timeout=120)
            ok = (start is not None and proc.returncode == 143 and "stopped by SIGTERM" in out
                  and "Resume with" in out and "Traceback" not in out)
            return ("clean", f"exit 143 {time.perf_counter() - t0:.1f} s after SIGTERM, saying what was kept and the "
                    "command that resumes") if ok else ("poor", f"exit {proc.returncode}: {out[-400:]}")

        def truncated_results_reexecutes() -> tuple[str, str]:
            path = p.scratch / "results" / "quick" / "02_w2_quantization.json"
            p.runner(*QUICK, "--only", "02")
            path.write_text(path.read_text()[:100])
            code, out = p.runner(*QUICK, "--only", "02")
            ok = code == 0 and "02_w2_quantization.ipynb: executing" in out and json.loads(path.read_text())
            return ("clean", "--only 02 executes notebook 02 again: its stamp matched, but its results file is "
                    "damaged") if ok else ("silent" if code == 0 else "poor", f"exit {code}: {out[-300:]}")

        def empty_store() -> tuple[str, str]:
            p.runner(*QUICK, "--only", "01")
            _, before = p.runner(*QUICK, "--only", "01")  # current in the probe's own store
            empty = Path(tempfile.mkdtemp(prefix="geovq-empty-home-"))
            try:
                os.environ["GEOVQ_HOME"] = str(empty)
                code, out = p.runner(*QUICK, "--only", "01")
                made = (empty / "results" / "quick" / "01_vae.json").exists()
            finally:
                os.environ["GEOVQ_HOME"] = str(p.scratch)
                shutil.rmtree(empty, ignore_errors=True)
            ok = "01_vae.ipynb: current" in before and code == 0 and "01_vae.ipynb: executing" in out \
                and "results file" in out and made
            return ("clean", "with $GEOVQ_HOME an empty folder, notebook 01 is not current (its results file is "
                    "missing there): executed, its results written there") if ok else \
                ("silent" if code == 0 else "poor", f"exit {code}, results made {made}: {out[-300:]}")

        def concurrent_calls() -> tuple[str, str]:
            p.nb.STAMPS.unlink(missing_ok=True)
            procs = [p.spawn(*QUICK, "--no-graph", "--only", *only) for only in (("01", "02"), ("01", "03"))]
            outs = [proc.communicate(timeout=900)[0] for proc in procs]
            stamps = p.nb.read_stamps()
            names = sorted(n[:2] for n in stamps)
            code, out = p.runner(*QUICK, "--only", "01", "02", "03")
            ok = all(proc.returncode == 0 for proc in procs) and names == ["01", "02", "03"] and "executing" not in out
            return ("clean", "--only 01 02 beside --only 01 03: both stamp updates kept (01, 02, 03), and a later "
                    "call finds all three current") if ok else \
                ("poor", f"exits {[q.returncode for q in procs]}, stamps {names}: {out[-300:]} {outs[0][-200:]}")

        for name, check in [("16 bytes of the GridVAE checkpoint flipped", damaged_checkpoint),
                            ("the FlatVAE checkpoint truncated", truncated_checkpoint),
                            ("a byte of a codebook flipped", damaged_codebook),
                            ("a byte of a code map flipped", damaged_code_maps),
                            ("notebook 07 after notebook 02 ran at another beta", other_configuration),
                            ("book/executed/stamps.json truncated", truncated_stamps),
                            ("a results file truncated", truncated_results),
                            ("--only 1, --only 09, --sweep sed=0,1", bad_arguments),
                            ("a tuple override through the runner", tuple_override),
                            ("a stray untracked module in geohelpers/", stray_module),
                            ("two processes saving one artifact", concurrent_writes),
                            ("--scheduler tcp://127.0.0.1:9 (nothing listens)", scheduler_silent),
                            ("--scheduler nonsense", scheduler_nonsense),
                            ("results/<profile>/ not writable", results_unwritable),
                            ("$GEOVQ_HOME not writable", home_unwritable),
                            ("--set prior.kinds=pixelcnn,transformer", string_lists),
                            ("--set quantize.ks=32,32,16 and quantize.ks=16,16", duplicate_k),
                            ("--set data.n_train=1", tiny_train_set),
                            ("--dry-run with a codebook whose bytes are damaged", dry_run_damaged),
                            ("a Dask worker killed mid-stage", worker_killed),
                            ("the runner stopped by SIGTERM", runner_sigterm),
                            ("a results file truncated, then --only 02", truncated_results_reexecutes),
                            ("$GEOVQ_HOME an empty folder", empty_store),
                            ("two runner calls at once (--only 01 02 beside --only 01 03)", concurrent_calls)]:
            p.record(name, check)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    table = ["| fault | outcome | what happened | s |", "|---|---|---|---|"]
    table += [f"| {r['fault']} | {r['outcome']} | {r['what happened']} | {r['seconds']} |" for r in p.rows]
    counts = {o: sum(r["outcome"] == o for r in p.rows) for o in ("clean", "poor", "silent")}
    text = "\n".join(table) + f"\n\n{counts['clean']} clean, {counts['poor']} poor, {counts['silent']} silent.\n"
    print(text)
    if args.out:
        Path(args.out).write_text(f"# Fault probe (quick profile)\n\n`python benchmarks/faults.py`, "
                                  f"{time.strftime('%Y-%m-%d')}\n\n{text}")
    return 0 if counts["poor"] == counts["silent"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
