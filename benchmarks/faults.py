"""The fault probe: damaged, stale and concurrent inputs at the ``quick`` profile, and what the project does.

Each fault is made on a scratch copy of the notebooks, with ``$GEOVQ_HOME`` in a temporary folder (so the
project's own artifacts, results and executed book are never touched), then the runner or the library is
called as a user would. Every outcome is classified:

- ``clean``: the fault is detected and named (file, parameter or notebook, and what to do), or repaired
  (a damaged artifact set aside and rebuilt), with no raw traceback;
- ``poor``: detected, but with a raw traceback or a message that does not name the file or the remedy;
- ``silent``: a wrong number with exit status 0.

    python benchmarks/faults.py --out benchmarks/results/faults.md

The cheap faults are also unit tests (``tests/test_files.py``, ``tests/test_runner.py``,
``tests/test_store_metrics.py``); this script re-runs all of them end to end, through the notebooks.
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

    def results(self, name: str) -> dict:
        return json.loads((self.scratch / "results" / "quick" / f"{name}.json").read_text())

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
            if code == 0 and r["training"]["trained_in_this_run"] and aside and r["neg_elbo_nats"] == before:
                return "clean", (f"detected before torch.load, set aside as vae_grid.pt.corrupt, retrained to the same "
                                 f"-ELBO ({before:.6f}); exit 0")
            return ("silent" if code == 0 else "poor"), f"exit {code}, retrained {r['training']['trained_in_this_run']}, set aside {aside}"

        def truncated_checkpoint() -> tuple[str, str]:
            path = p.artifacts() / "vae_flat.pt"
            path.write_bytes(path.read_bytes()[:1000])
            code, out = p.runner(*QUICK, "--only", "01", "--force")
            aside = (p.artifacts() / "vae_flat.pt.corrupt").exists()
            ok = code == 0 and aside and p.results("01_vae")["metrics"]["FlatVAE"]["training"]["trained_in_this_run"]
            return ("clean", "named, set aside and retrained; exit 0") if ok else ("poor", f"exit {code}: {out[-300:]}")

        def damaged_codebook() -> tuple[str, str]:
            path = sorted((p.artifacts() / "codebooks").glob("grid_kmeans_K*.npz"))[0]
            flip(path, 4)
            code, out = p.runner(*QUICK, "--only", "02", "--force")
            rows = p.results("02_w2_quantization")["metrics"]["rows"]
            refit = [r for r in rows if r.get("fitted_in_this_run")]
            aside = path.with_name(path.name + ".corrupt").exists()
            ok = code == 0 and aside and len(refit) == 1
            return ("clean", f"{path.name} set aside and refitted (1 of {len(rows)} codebooks); exit 0") if ok else \
                ("poor", f"exit {code}, refitted {len(refit)}, set aside {aside}")

        def damaged_code_maps() -> tuple[str, str]:
            path = p.artifacts() / "codes" / "grid_kmeans_K16.npz"
            if not path.exists():
                path = sorted((p.artifacts() / "codes").glob("grid_kmeans_K*.npz"))[0]
            flip(path, 4)
            code, out = p.runner(*QUICK, "--only", "04", "--force")
            named = path.name in out and "02" in out and "Traceback" not in out.split("failed in cell")[-1]
            aside = path.with_name(path.name + ".corrupt").exists()
            code2, _ = p.runner(*QUICK, "--only", "02", "04", "--force")
            if code != 0 and named and aside and code2 == 0:
                return "clean", f"notebook 04 stops naming {path.name} and notebook 02; it is set aside; 02 then 04 rebuild it"
            return "poor", f"exit {code} / {code2}, named {named}, set aside {aside}"

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
                            ("two processes saving one artifact", concurrent_writes)]:
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
