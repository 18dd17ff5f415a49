"""The stage graph: what it lists, how its identities follow the configuration, and how it fails."""

import networkx as nx
import pytest

from geohelpers import graph, run
from geohelpers.artifacts import CodeSet
from geohelpers.config import resolve
from geohelpers.selection import compared_variants

CHOICES = {"prior_grid": "pixelcnn", "prior_flat": "transformer", "vqvae": "ema_restart", "a_posteriori": "pullback_vector"}


def quick_graph(**overrides):
    return graph.full_graph(resolve("quick", overrides), CHOICES)


def test_the_quick_graph_holds_every_stage_the_notebooks_load_and_is_acyclic():
    from geohelpers import plan

    cfg = resolve("quick")
    g = quick_graph()
    assert nx.is_directed_acyclic_graph(g)
    kmax, p = max(cfg.vqvae.ks), cfg.prior
    want = {f"vae/{kind}" for kind in ("flat", "grid")} | {"classifier", "geodesic/flat", "geodesic/grid"}
    want |= {f"codebook/{kind}_{m}_K{k}" for kind in ("flat", "grid") for m in ("kmeans", "w2") for k in cfg.quantize.ks}
    # notebook 04: both kinds on each VAE's K-means maps at the largest K, the chosen kind elsewhere
    want |= {f"prior/{kind}/{vae}_kmeans_K{max(p.ks)}" for vae in p.vaes for kind in p.kinds}
    want |= {f"prior/pixelcnn/grid_kmeans_K{k}" for k in p.ks}
    want |= {f"prior/{CHOICES['prior_' + vae]}/{vae}_{m}_K{max(p.ks)}" for vae in p.vaes for m in p.kmax_methods}
    # notebook 05: the chosen variant at every K, vanilla and the hybrid at the largest, with the GridVAE's kind
    want |= {f"vqvae/ema_restart_K{k}" for k in cfg.vqvae.ks} | {f"vqvae/{v}_K{kmax}" for v in cfg.vqvae.variants}
    want |= {f"prior/pixelcnn/vqvae_ema_restart_K{k}" for k in cfg.vqvae.ks}
    want |= {f"prior/pixelcnn/vqvae_{v}_K{kmax}" for v in compared_variants("ema_restart", cfg.vqvae.variants)}
    # notebook 06: the chosen codebook's priors, the adapted decoders and their control, the curves' samples
    want |= {f"prior/pixelcnn/grid_pullback_vector_K{k}" for k in p.ks}
    want |= {f"adapted/grid_{m}_K{k}" for m in ("kmeans", "pullback_vector") for k in p.ks} | {"adapted/grid_continuous"}
    want |= {f"samples/pixelcnn/{cs.name}" for sets in plan.curve_code_sets(cfg, CHOICES).values() for cs in sets}
    assert want <= set(g.nodes), sorted(want - set(g.nodes))
    # a prior needs its code maps, which need their codebook and VAE; the hybrid needs the chosen codebook
    assert nx.has_path(g, "vae/grid", f"prior/pixelcnn/grid_kmeans_K{kmax}")
    assert set(g.predecessors(f"vqvae/hybrid_K{kmax}")) == {"vae/grid", "pullback/grid_pullback_vector",
                                                            "choice/a_posteriori"}
    assert nx.has_path(g, "choice/a_posteriori", f"adapted/grid_pullback_vector_K{kmax}")
    assert nx.has_path(g, "choice/prior_grid", f"prior/pixelcnn/vqvae_ema_restart_K{min(cfg.vqvae.ks)}")
    # only the comparison trains both kinds on one code set
    both = {key.split("/", 2)[2] for key in g.nodes if key.startswith("prior/transformer/")} & \
        {key.split("/", 2)[2] for key in g.nodes if key.startswith("prior/pixelcnn/")}
    assert both == {f"{vae}_kmeans_K{max(p.ks)}" for vae in p.vaes}


def test_a_choice_already_among_the_priors_adds_no_code_set():
    cfg = resolve("quick")
    known = {s.key for s in graph.stages_of(cfg)}
    added = graph.after_choice("choice/a_posteriori", "kmeans", cfg, known)
    assert {s.kind for s in added} == {"adapted", "vqvae"}  # the adapted decoders and the hybrid
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
    ("prior.lr", 0.001, None),                              # every prior and its samples, nothing else
])
def test_a_changed_config_section_changes_exactly_the_identities_downstream(name, value, root, tmp_home):
    from geohelpers.stages.choices import a_posteriori_candidates, save_choice

    cfg, other = resolve("quick"), resolve("quick", {name: value})
    for c in (cfg, other):  # the hybrid's identity reads the stored choice of its start
        save_choice(c, "a_posteriori", CHOICES["a_posteriori"], a_posteriori_candidates(c))
    g = quick_graph()
    changed = {key for key in g.nodes if not key.startswith("choice/")
               and graph.stage_identity(g.nodes[key]["stage"], cfg) != graph.stage_identity(g.nodes[key]["stage"], other)}
    if root is None:
        assert changed == {key for key in g.nodes if key.startswith(("prior/", "samples/"))}
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
        return True, ({"vqvae": "ema_restart", "a_posteriori": "kmeans", "prior_grid": "pixelcnn"}.get(stage.arg)
                          if stage.kind == "choice" else None)

    monkeypatch.setattr(graph, "_run", fake)
    real = graph.build_graph
    with LocalCluster(n_workers=1, threads_per_worker=2, processes=False, dashboard_address=":0") as cluster, \
            Client(cluster) as client:
        monkeypatch.setattr(graph, "build_graph", lambda *a, **kw: real(*a, **{**kw, "client": client, "progress": False}))
        monkeypatch.setattr(run, "reference_workload", lambda: 0.0)
        written, write = [], run.write_run_record  # run.json after every stage, not only at the end

        def counting(*a, **kw):
            written.append(len(kw["stages"].records) if kw.get("stages") is not None else 0)
            return write(*a, **kw)

        monkeypatch.setattr(run, "write_run_record", counting)
        with pytest.raises(SystemExit) as exit_:
            run.main(["--profile", "quick", "--no-book", "--force"])  # --force: whatever book/executed holds
    assert exit_.value.code not in (0, None)
    assert len(written) > 10 and written[:-1] == list(range(1, len(written)))
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
    assert "prior/transformer/grid_kmeans_K32" in priors and "vae/grid" in priors and "vqvae/ema_K32" not in priors


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


def test_a_stage_that_a_choice_adds_brings_the_stages_it_needs_from_other_notebooks():
    """With ``--only 04`` a stage of notebook 04 that joins after a choice may read a stage only notebook 06
    loads: the graph takes that one too, and leaves out what no stage of 04 needs."""
    from geohelpers.graph import Stage, joining

    new = [Stage("codes/a", ("vae/grid",), "06"), Stage("prior/b", ("codes/a",), "04"), Stage("samples/c", (), "06")]
    assert [s.key for s in joining(new, {"vae/grid"}, ["04"])] == ["codes/a", "prior/b"]
    assert joining(new, {"vae/grid"}, None) == new
    assert [s.key for s in joining(new, {"vae/grid", "codes/a"}, ["04"])] == ["prior/b"]


#: A valid other value of every parameter of the sections a prior or a VQ-VAE reads from, at ``quick``.
OTHER_VALUES = {
    "prior.kinds": ("pixelcnn",), "prior.vaes": ("grid",), "prior.methods": ("kmeans", "w2"),
    "prior.kmax_methods": ("w2",), "prior.ks": (16,), "prior.pixelcnn_channels": 17, "prior.pixelcnn_layers": 7,
    "prior.transformer_dim": 48, "prior.transformer_layers": 3, "prior.transformer_heads": 8,
    "prior.precision": "fp32", "prior.compile": True, "prior.max_epochs": 2, "prior.batch_size": 64, "prior.lr": 0.002,
    "prior.lr_schedule": "cosine", "prior.schedule_epochs": 3, "prior.temperature": 0.5, "prior.n_show": 8,
    "vqvae.ks": (16,), "vqvae.variants": ("ema",), "vqvae.small_k_variants": ("ema",), "vqvae.beta": 0.5,
    "vqvae.decay": 0.9, "vqvae.restart_threshold": 2.0, "vqvae.kmeans_init_batches": 3, "vqvae.max_epochs": 2,
    "vqvae.batch_size": 64, "vqvae.lr": 0.001, "grid_vae.channels": (8, 16), "grid_vae.latent_dim": 4,
    "grid_vae.beta": 0.3, "grid_vae.max_epochs": 2, "grid_vae.lr": 0.001, "grid_vae.batch_size": 64,
}


@pytest.mark.parametrize("name", sorted(OTHER_VALUES))
def test_an_identity_moves_exactly_with_the_parameters_its_training_reads(name, tmp_home):
    """A prior's and a VQ-VAE's identity hash what their training reads (stages/priors.PRIOR_TRAINING and
    PRIOR_ARCHITECTURE, stages/vqvaes.VQVAE_READS): adding a K to a grid, or asking for other samples,
    retrains nothing. The GridVAE's own training moves a prior through its code maps, never directly."""
    from geohelpers.config import flatten
    from geohelpers.stages.codes import code_identity
    from geohelpers.stages.priors import PRIOR_ARCHITECTURE, PRIOR_TRAINING, prior_tag
    from geohelpers.stages.vqvaes import VQVAE_READS, vqvae_tag

    cfg, other = resolve("quick"), resolve("quick", {name: OTHER_VALUES[name]})
    assert flatten(cfg)[name] != flatten(other)[name]
    codes_move = code_identity("grid_kmeans_K32", cfg) != code_identity("grid_kmeans_K32", other)
    for kind in ("pixelcnn", "transformer"):
        reads = name in PRIOR_TRAINING + PRIOR_ARCHITECTURE[kind]
        moved = prior_tag(kind, "grid_kmeans_K32", cfg) != prior_tag(kind, "grid_kmeans_K32", other)
        assert moved == (reads or codes_move), (kind, name)
    assert (vqvae_tag("ema", 32, cfg) != vqvae_tag("ema", 32, other)) == (name in VQVAE_READS), name
