"""The stage graph: what it lists, how its identities follow the configuration, and how it fails."""

import networkx as nx
import pytest

from geohelpers import graph, run
from geohelpers.artifacts import CodeSet
from geohelpers.config import resolve
from geohelpers.selection import compared_variants

CHOICES = {"choice/vqvae": "ema_restart", "choice/a_posteriori": "pullback_vector"}


def quick_graph(**overrides):
    return graph.full_graph(resolve("quick", overrides), CHOICES)


def test_the_quick_graph_holds_every_stage_the_notebooks_load_and_is_acyclic():
    cfg = resolve("quick")
    g = quick_graph()
    assert nx.is_directed_acyclic_graph(g)
    kmax, p = max(cfg.vqvae.ks), cfg.prior
    want = {f"vae/{kind}" for kind in ("flat", "grid")} | {"classifier", "geodesic/flat", "geodesic/grid"}
    want |= {f"codebook/{kind}_{m}_K{k}" for kind in ("flat", "grid") for m in ("kmeans", "w2") for k in cfg.quantize.ks}
    code_sets = [CodeSet(kind, m, k).name for kind in p.vaes for m in p.methods for k in p.ks]      # notebook 04
    code_sets += [CodeSet("vqvae", v, kmax).name for v in compared_variants("ema_restart", cfg.vqvae.variants)]  # 05
    code_sets += [CodeSet("vqvae", v, k).name for k in cfg.vqvae.ks if k != kmax for v in cfg.vqvae.small_k_variants]
    code_sets += [CodeSet("grid", "pullback_vector", k).name for k in p.ks]                          # 06
    want |= {f"codes/{c}" for c in code_sets} | {f"prior/{kind}/{c}" for c in code_sets for kind in p.kinds}
    want |= {f"vqvae/{v}_K{kmax}" for v in cfg.vqvae.variants}
    want |= {f"adapted/{CodeSet('grid', m, kmax).name}" for m in (*p.methods, "pullback_vector")}
    assert want <= set(g.nodes), sorted(want - set(g.nodes))
    # a prior needs its code maps, which need their codebook and VAE; the hybrid needs the geodesic medoids
    assert nx.has_path(g, "vae/grid", f"prior/pixelcnn/grid_kmeans_K{kmax}")
    assert set(g.predecessors(f"vqvae/hybrid_K{kmax}")) == {"vae/grid", "geodesic/grid"}
    assert nx.has_path(g, "choice/a_posteriori", f"adapted/grid_pullback_vector_K{kmax}")


def test_a_choice_already_among_the_priors_adds_no_code_set():
    cfg = resolve("quick")
    known = {s.key for s in graph.stages_of(cfg)}
    added = graph.after_choice("choice/a_posteriori", "kmeans", cfg, known)
    assert {s.kind for s in added} == {"adapted"}
    with pytest.raises(ValueError, match="choice"):
        graph.after_choice("choice/prior", "x", cfg, known)


def test_an_input_that_is_not_a_stage_or_a_cycle_is_refused():
    with pytest.raises(ValueError, match="not a stage"):
        graph.as_graph([graph.Stage("a", ("b",))])
    with pytest.raises(ValueError, match="cycle"):
        graph.as_graph([graph.Stage("a", ("b",)), graph.Stage("b", ("a",))])


@pytest.mark.parametrize("name, value, root", [
    ("flat_vae.beta", 0.5, "vae/flat"),                     # the FlatVAE and everything made from it
    ("comparison.classifier_lr", 0.002, "classifier"),      # the scorer only
    ("prior.lr", 0.001, None),                              # every prior, nothing else
])
def test_a_changed_config_section_changes_exactly_the_identities_downstream(name, value, root):
    cfg, other = resolve("quick"), resolve("quick", {name: value})
    g = quick_graph()
    changed = {key for key in g.nodes if not key.startswith("choice/")
               and graph.stage_identity(g.nodes[key]["stage"], cfg) != graph.stage_identity(g.nodes[key]["stage"], other)}
    if root is None:
        assert changed == {key for key in g.nodes if key.startswith("prior/")}
    else:
        assert changed == {key for key in {root} | nx.descendants(g, root) if not key.startswith("choice/")}


def test_the_critical_path_is_the_longest_chain_of_dependent_stages():
    g = graph.as_graph([graph.Stage("a"), graph.Stage("b", ("a",)), graph.Stage("c", ("a",)), graph.Stage("d", ("b", "c"))])
    path, total = graph.critical_path(g, {"a": 1.0, "b": 5.0, "c": 2.0, "d": 1.0})
    assert path == ["a", "b", "d"] and total == 7.0


def test_a_failing_stage_names_itself_and_the_other_stages_finish(tmp_home, monkeypatch, capsys):
    """A stage made to fail: its record names it and its inputs, the stages that need it are not run,
    every independent stage still runs and keeps what it wrote, and the runner exits non-zero."""
    from distributed import Client, LocalCluster

    def fake(stage, cfg):  # a stage writes one file; the FlatVAE fails
        if stage.key == "vae/flat":
            raise RuntimeError("made to fail")
        (tmp_home / ("made~" + stage.key.replace("/", "~"))).write_text("made")
        return True, {"vqvae": "ema_restart", "a_posteriori": "kmeans"}.get(stage.arg) if stage.kind == "choice" else None

    monkeypatch.setattr(graph, "_run", fake)
    real = graph.build_graph
    with LocalCluster(n_workers=1, threads_per_worker=2, processes=False, dashboard_address=":0") as cluster, \
            Client(cluster) as client:
        monkeypatch.setattr(graph, "build_graph", lambda *a, **kw: real(*a, **{**kw, "client": client, "progress": False}))
        monkeypatch.setattr(run, "reference_workload", lambda: 0.0)
        with pytest.raises(SystemExit) as exit_:
            run.main(["--profile", "quick", "--no-book"])
    assert exit_.value.code not in (0, None)
    out = capsys.readouterr().out
    assert "FAILED vae/flat (inputs: none): RuntimeError: made to fail" in out
    g = quick_graph()
    downstream = nx.descendants(g, "vae/flat")
    made = {p.name[5:].replace("~", "/") for p in tmp_home.glob("made~*")}
    assert not made & downstream and "vae/flat" not in made
    assert {"vae/grid", "classifier", "codebook/grid_kmeans_K16", "prior/pixelcnn/grid_kmeans_K16"} <= made
    assert not (tmp_home / "results" / "quick" / "01_vae.json").exists()  # no notebook ran


def test_only_some_notebooks_need_only_their_stages_and_what_those_need():
    g = graph.as_graph(graph.stages_of(resolve("quick")))
    first = graph.for_notebooks(g, ["01"])
    assert set(first.nodes) == {"vae/flat", "vae/grid"}
    beta_sweep = graph.for_notebooks(g, ["01", "02", "03", "07"])
    assert not any(k.startswith(("prior/", "vqvae/", "classifier", "choice/")) for k in beta_sweep)
    priors = graph.for_notebooks(g, ["04"])
    assert "prior/pixelcnn/grid_kmeans_K16" in priors and "vae/grid" in priors and "vqvae/ema_K32" not in priors


def test_workers_run_on_one_thread_without_dasks_malloc_trim_threshold():
    """Dask's default MALLOC_TRIM_THRESHOLD_=65536 made a single-threaded training step about twice as slow."""
    from distributed import Client

    with graph.local_cluster(1) as cluster, Client(cluster) as client:
        env = client.submit(_environ, pure=False).result()
    assert env == {"MALLOC_TRIM_THRESHOLD_": None, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def _environ():
    import os

    return {k: os.environ.get(k) for k in ("MALLOC_TRIM_THRESHOLD_", "OMP_NUM_THREADS", "MKL_NUM_THREADS")}


def test_the_standard_graph_stores_the_code_maps_of_every_codebook_notebooks_02_and_03_store():
    """At standard the priors' K are a subset of the codebooks' K: the graph still stores every code set
    notebooks 02 and 03 store, so those notebooks write nothing (found on a standard run: K = 64, 256)."""
    cfg = resolve("standard")
    g = graph.as_graph(graph.stages_of(cfg))
    want = {f"codes/{CodeSet(kind, m, k).name}" for kind in ("flat", "grid") for m in ("kmeans", "w2", "geodesic")
            for k in cfg.quantize.ks}
    assert want <= set(g.nodes), sorted(want - set(g.nodes))
    assert g.nodes["codes/grid_geodesic_K64"]["stage"].notebook == "03"
    assert "codes/grid_kmeans_K512" in graph.for_notebooks(g, ["04"])
