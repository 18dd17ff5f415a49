"""Errors before work: the environment and the cross-parameter constraints are checked before the reference
workload and the first stage; one list syntax; interruptions and lost workers are told; a notebook is current
only when its results are there; stamps are never lost between two calls; the dry run checks bytes."""

import json
import multiprocessing
import os
import signal
import socket
import subprocess
import sys
import time

import pytest

from geohelpers import graph, preflight, run
from geohelpers import notebooks as nb
from geohelpers.config import ConfigError, parse_list, parse_set, resolve
from geohelpers.sweep import parse_sweeps


@pytest.fixture(autouse=True)
def _no_work(monkeypatch, tmp_path):
    monkeypatch.setenv("GEOVQ_HOME", str(tmp_path / "home"))
    monkeypatch.setattr(run, "reference_workload", lambda: pytest.fail("the reference workload ran"))
    monkeypatch.setattr(run, "build_stages", lambda *a, **kw: pytest.fail("a stage was built"))


@pytest.mark.parametrize("address, parsed", [
    ("tcp://127.0.0.1:8786", ("tcp", "127.0.0.1", 8786)), ("10.0.0.5:8786", ("tcp", "10.0.0.5", 8786)),
    ("tls://sched.example:1", ("tls", "sched.example", 1)), ("tcp://[::1]:8786", ("tcp", "::1", 8786))])
def test_scheduler_addresses_of_dasks_form_parse(address, parsed):
    assert preflight.parse_scheduler(address) == parsed


@pytest.mark.parametrize("address", ["nonsense", "tcp://host", "tcp://host:0", "tcp://host:99999", "udp://h:1",
                                     "inproc://x:1", "tcp://:8786", "tcp://host:port"])
def test_a_malformed_scheduler_address_names_the_flag_and_the_form(address):
    with pytest.raises(preflight.EnvironmentFault, match=r"--scheduler .*tcp://HOST:PORT"):
        preflight.parse_scheduler(address)


def test_a_scheduler_that_does_not_answer_is_named_at_once():
    with socket.socket() as s:  # a port nothing listens on: bound, never listening
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        t0 = time.perf_counter()
        with pytest.raises(preflight.EnvironmentFault, match=rf"--scheduler 'tcp://127.0.0.1:{port}'.*leave --scheduler out"):
            preflight.check_scheduler(f"tcp://127.0.0.1:{port}", timeout=2)
    assert time.perf_counter() - t0 < 3
    with socket.socket() as s:  # one that listens passes
        s.bind(("127.0.0.1", 0))
        s.listen()
        preflight.check_scheduler(f"tcp://127.0.0.1:{s.getsockname()[1]}")


def test_an_unwritable_folder_is_named_with_the_fix(tmp_path, monkeypatch):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    monkeypatch.setenv("GEOVQ_HOME", str(blocker))
    with pytest.raises(preflight.EnvironmentFault, match=r"the store .*a-file/artifacts/quick cannot be written.*\$GEOVQ_HOME"):
        preflight.check_writable({"the store": blocker / "artifacts" / "quick"})
    monkeypatch.delenv("GEOVQ_HOME")
    preflight.check_writable({"the store": tmp_path / "new" / "folder"})  # made when missing
    assert (tmp_path / "new" / "folder").is_dir() and not list((tmp_path / "new" / "folder").iterdir())


@pytest.mark.parametrize("argv, message", [
    (["--scheduler", "nonsense"], "--scheduler 'nonsense' is not a Dask scheduler address"),
    (["--set", "quantize.ks=32,32,16"], "parameter 'quantize.ks' repeats 32"),
    (["--set", "quantize.ks=16,16"], "parameter 'quantize.ks' repeats 16"),
    (["--set", "data.n_train=1"], "parameter 'data.n_train' is 1"),
])
def test_the_runner_refuses_before_the_reference_workload(argv, message, capsys):
    with pytest.raises(SystemExit) as err:
        run.main(["--profile", "quick", "--only", "01", *argv])
    assert err.value.code == 2
    text = capsys.readouterr().err
    assert message in text and "Traceback" not in text


def test_an_unwritable_results_folder_stops_the_runner_before_any_work(tmp_path, monkeypatch, capsys):
    (tmp_path / "home" / "results").mkdir(parents=True)
    (tmp_path / "home" / "results" / "quick").write_text("a file where the folder should be")
    with pytest.raises(SystemExit) as err:
        run.main(["--profile", "quick", "--only", "01", "--no-book"])
    assert err.value.code == 2
    assert "the results folder" in capsys.readouterr().err


@pytest.mark.parametrize("text, value", [
    ("a,b", ("a", "b")), ("[a,b]", ("a", "b")), ("(a, b)", ("a", "b")), ("16,64", (16, 64)),
    ("[16, 64]", (16, 64)), ("a", ("a",)), ("", ()), ("[]", ()), ("'x,y',z", ("x,y", "z")),
    ("(8,16),(16,32)", ((8, 16), (16, 32)))])
def test_one_list_syntax(text, value):
    assert parse_list(text) == value


def test_string_lists_take_the_same_forms_as_number_lists_everywhere():
    want = resolve("quick", {"prior.kinds": ("pixelcnn", "transformer"), "quantize.ks": (16, 64), "prior.ks": (16,)})
    for kinds in ("pixelcnn,transformer", "[pixelcnn,transformer]", "[pixelcnn, transformer]"):
        for ks in ("16,64", "[16,64]"):
            sets = [f"prior.kinds={kinds}", f"quantize.ks={ks}", "prior.ks=16"]
            assert resolve("quick", parse_set(sets)) == want, sets  # --set
            assert resolve("quick", {"prior.kinds": kinds, "quantize.ks": ks, "prior.ks": "16"}) == want  # overrides
    sweeps = parse_sweeps(["prior.kinds=[pixelcnn],[pixelcnn,transformer]", "quantize.ks=16"])
    assert [resolve("quick", {"prior.kinds": v}).prior.kinds for v in sweeps["prior.kinds"]] == [
        ("pixelcnn",), ("pixelcnn", "transformer")]
    with pytest.raises(ConfigError, match=r"a,b or \[a,b\]"):
        resolve("quick", {"grid_vae.channels": "8"})


def test_one_setting_written_two_ways_stamps_the_same():
    a, b = (run.canonical(resolve("quick", parse_set([item])), parse_set([item]))
            for item in ("prior.kinds=pixelcnn,transformer", "prior.kinds=[pixelcnn,transformer]"))
    assert a == b == {"prior.kinds": ("pixelcnn", "transformer")}
    assert nb.input_hashes(nb.notebooks()[:1], "quick", a) == nb.input_hashes(nb.notebooks()[:1], "quick", b)


@pytest.mark.parametrize("name, value", [("vqvae.ks", "64,64"), ("prior.ks", "[32,32]"),
                                         ("comparison.temperatures", "1.0,1.0"), ("prior.kinds", "pixelcnn,pixelcnn")])
def test_a_repeated_value_in_any_list_names_that_list(name, value):
    with pytest.raises(ConfigError, match=rf"parameter '{name}' repeats"):
        resolve("quick", parse_set([f"{name}={value}"]))


def test_too_few_training_images_name_data_n_train_and_the_least_that_works():
    with pytest.raises(ConfigError, match=r"'data.n_train' is 62.*allowed: data.n_train >= 63"):
        resolve("quick", {"data.n_train": 62})
    resolve("quick", {"data.n_train": 63})
    with pytest.raises(ConfigError, match=r"'data.n_train' is 10.*K = 512.*allowed: data.n_train >= 11"):
        resolve("standard", {"data.n_train": 10, "quantize.n_landmarks": 512, "flat_vae.n_chunks": 64,
                             "flat_vae.latent_dim": 128})


def _current_setup(tmp_path, monkeypatch):
    monkeypatch.setattr(nb, "EXECUTED", tmp_path / "executed")
    monkeypatch.setattr(nb, "STAMPS", tmp_path / "executed" / "stamps.json")
    src = nb.notebooks()[0]
    (tmp_path / "executed").mkdir()
    (nb.EXECUTED / src.name).write_text(json.dumps({"cells": []}))
    results = nb.results_path(src, "quick")
    results.parent.mkdir(parents=True)
    results.write_text(json.dumps({"config": resolve("quick").to_dict()}))
    stamp = {"hash": "h"}
    return src, results, stamp


def test_a_notebook_is_current_only_with_its_stamp_executed_copy_and_verified_results(tmp_path, monkeypatch):
    src, results, stamp = _current_setup(tmp_path, monkeypatch)
    assert nb.why_stale(src, "quick", {}, stamp, "h") is None
    assert "inputs changed" in nb.why_stale(src, "quick", {}, stamp, "other")
    assert "never executed" in nb.why_stale(src, "quick", {}, None, "h")
    assert "another configuration (seed)" in nb.why_stale(src, "quick", {"seed": 3}, stamp, "h")
    results.write_text(results.read_text()[:20])  # truncated
    assert "is damaged" in nb.why_stale(src, "quick", {}, stamp, "h")
    results.unlink()
    assert "is missing" in nb.why_stale(src, "quick", {}, stamp, "h")
    monkeypatch.setenv("GEOVQ_HOME", str(tmp_path / "empty"))  # another store: its results are not there
    assert "is missing" in nb.why_stale(src, "quick", {}, stamp, "h")


def test_a_damaged_executed_copy_is_not_current(tmp_path, monkeypatch):
    src, _, stamp = _current_setup(tmp_path, monkeypatch)
    (nb.EXECUTED / src.name).write_text('{"cells": [')
    assert "executed copy" in nb.why_stale(src, "quick", {}, stamp, "h")


def _stamp_many(args):
    executed, name, n = args
    from pathlib import Path

    from geohelpers import notebooks

    notebooks.EXECUTED, notebooks.STAMPS = Path(executed), Path(executed) / "stamps.json"
    for i in range(n):
        notebooks.update_stamp(name, {"hash": str(i)})


def test_two_processes_updating_stamps_at_once_lose_nothing(tmp_path, monkeypatch):
    monkeypatch.setattr(nb, "EXECUTED", tmp_path)
    monkeypatch.setattr(nb, "STAMPS", tmp_path / "stamps.json")
    with multiprocessing.get_context("fork").Pool(2) as pool:
        pool.map(_stamp_many, [(str(tmp_path), "02_b.ipynb", 60), (str(tmp_path), "03_c.ipynb", 60)])
    assert nb.read_stamps() == {"02_b.ipynb": {"hash": "59"}, "03_c.ipynb": {"hash": "59"}}
    nb.update_stamp("02_b.ipynb", None)
    assert nb.read_stamps() == {"03_c.ipynb": {"hash": "59"}}


def test_a_start_whose_worker_died_is_a_restart_with_the_time_it_lost(tmp_path):
    journal = tmp_path / "j.jsonl"
    journal.write_text("\n".join(json.dumps(e) for e in [
        {"key": "vae/grid", "worker": "h", "pid": 10, "started": 100.0},
        {"key": "vae/flat", "worker": "h", "pid": 11, "started": 100.5},
        {"key": "vae/grid", "worker": "h", "pid": 12, "started": 130.25}]) + "\n")
    assert graph.restarts(journal, []) == [{"key": "vae/grid", "worker": "h", "pid": 10, "lost_s": 30.2}]
    assert graph.restarts(tmp_path / "missing", []) == []
    report = graph.GraphReport(restarts=graph.restarts(journal, []))
    assert report.to_dict()["lost_s"] == 30.2 and report.to_dict()["restarts"][0]["key"] == "vae/grid"


def test_sigterm_stops_the_runner_with_what_was_kept_and_the_command_that_resumes(capsys):
    with pytest.raises(SystemExit) as err:
        with run.told_interruptions("quick", ["--profile", "quick", "--only", "01"]):
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(5)
    assert err.value.code == 128 + signal.SIGTERM
    out = capsys.readouterr().out
    assert "stopped by SIGTERM" in out and "python -m geohelpers.run --profile quick --only 01" in out
    assert signal.getsignal(signal.SIGTERM) is not None  # the handler before it is back
    with pytest.raises(SystemExit) as err:
        with run.told_interruptions("quick", []):
            raise KeyboardInterrupt
    assert err.value.code == 130


def test_sigterm_of_a_runner_process_exits_143_without_a_traceback(tmp_path):
    code = ("import time\nfrom geohelpers import run\nwith run.told_interruptions('quick', ['--profile', 'quick']):\n"
            "    print('ready', flush=True)\n    time.sleep(60)\n")
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert proc.stdout.readline().strip() == "ready"
    proc.send_signal(signal.SIGTERM)
    out = proc.communicate(timeout=30)[0]
    assert proc.returncode == 143 and "Resume with" in out and "Traceback" not in out


def test_the_dry_run_counts_an_artifact_whose_bytes_fail_their_digest_as_to_rebuild(tmp_path):
    from geohelpers import files

    good, bad = tmp_path / "a.npz", tmp_path / "b.npz"
    files.write_artifact(good, b"good bytes", "codebook/a")
    files.write_artifact(bad, b"bad bytes!", "codebook/b")
    bad.write_bytes(b"BAD bytes!")
    assert set(graph.stored_identities([tmp_path])) == {"codebook/a", "codebook/b"}  # by digest files alone
    damaged: list = []
    assert set(graph.stored_identities([tmp_path], damaged)) == {"codebook/a"}
    assert damaged == [(str(bad), graph.damage(bad))] and "do not match" in damaged[0][1]
    assert bad.exists() and not (tmp_path / "b.npz.corrupt").exists()  # nothing moved

