"""The stage graph: every artifact the notebooks will ask for, with its inputs, built in parallel on Dask.

From a resolved configuration, :func:`stages_of` lists the stages notebooks 01-07 load (VAEs, codebooks,
code maps, VQ-VAEs, priors, the classifier, adapted decoders), each with the stages it needs. Four of them
are *choices* made on validation numbers by the functions the notebooks call (:mod:`geohelpers.plan`):
the prior architecture of each VAE kind (notebook 04), the end-to-end VQ-VAE variant (05), trained at every
K, and the a posteriori codebook (05, 06), whose codes get priors at every K, whose decoder is adapted and
from which the hybrid starts. The stages that depend on a choice join the graph when it is made
(:func:`after_choice`).

:func:`build_graph` runs the graph on a Dask cluster (a ``LocalCluster`` of one single-threaded worker
process per core by default, or ``scheduler``'s): a stage is submitted once its inputs are done; every
stage runs on one torch thread in its worker, so its numbers do not depend on the machine's core count.
Each stage calls the same stage function a notebook calls (:mod:`geohelpers.stages`), so it loads what
is up to date and builds the rest, and the notebooks executed afterwards load it. A failing stage is
reported with its inputs; the stages that depend on it are not run, and every other stage still
finishes. The result records each stage's wall time and worker, and the critical path: the longest chain
of dependent stages, which bounds the graph's wall time on any number of cores.
"""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path
import time
import traceback
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping

import networkx as nx

from .artifacts import CodeSet
from .config import PULLBACK_METHODS, Config, resolve

VAE_KINDS = ("flat", "grid")


@dataclass(frozen=True)
class Stage:
    """One artifact's recipe: ``key`` names it (``vae/grid``, ``codebook/grid_kmeans_K64``, ``prior/pixelcnn_
    grid_kmeans_K512``, ...), ``inputs`` are the keys of the stages it needs."""

    key: str
    inputs: tuple[str, ...] = ()
    notebook: str = ""  # the number of the first notebook that loads it ("01" ... "07")

    @property
    def kind(self) -> str:
        return self.key.split("/", 1)[0]

    @property
    def arg(self) -> str:
        return self.key.split("/", 1)[1] if "/" in self.key else ""


def _all_ks(cfg: Config) -> tuple[int, ...]:
    """Every codebook size an a posteriori codebook is fitted at: notebook 02's and 07's, the priors' (04,
    06) and the VQ-VAEs' (05: the hybrid's start, and the a posteriori rows beside the VQ-VAEs)."""
    return tuple(sorted(set(cfg.quantize.ks) | set(cfg.prior.ks) | set(cfg.vqvae.ks)))


def _codebook_key(kind: str, method: str, k: int) -> str:
    """The stage that makes the codebook (``kind``, ``method``, K): K-means and W2 one per K; the geodesic
    ones one per VAE (one graph, every K); the decoder-aware ones one per VAE and method."""
    if method in ("kmeans", "w2"):
        return f"codebook/{kind}_{method}_K{k}"
    if method == "geodesic":
        return f"geodesic/{kind}"
    return f"pullback/{kind}_{'pullback_vector' if method == 'pullback_position' else method}"


def _codes_inputs(cs: CodeSet) -> tuple[str, ...]:
    return (f"vqvae/{cs.method}_K{cs.k}",) if cs.source == "vqvae" else (f"vae/{cs.source}", _codebook_key(cs.source,
                                                                                                         cs.method, cs.k))


def stages_of(cfg: Config, choices: Mapping[str, str] | None = None) -> list[Stage]:
    """Every stage the notebooks of ``cfg``'s profile load that the ``choices`` made so far allow
    (:mod:`geohelpers.plan`; keys ``prior_grid``, ``vqvae``, ...): before any choice, the VAEs, every
    codebook and code map of notebooks 02, 03 and 07, the priors that compare the architectures, the
    VQ-VAEs that compare the variants, the choice stages and the classifier. A stage that depends on a
    choice lists the choice stage (``choice/<name>``) among its inputs."""
    from . import plan

    choices = dict(choices or {})
    p = cfg.prior
    out = [Stage(f"vae/{kind}", (), "01") for kind in VAE_KINDS]
    for kind in VAE_KINDS:
        out += [Stage(f"codebook/{kind}_{m}_K{k}", (f"vae/{kind}",), "02") for m in ("kmeans", "w2") for k in _all_ks(cfg)]
        out.append(Stage(f"geodesic/{kind}", (f"vae/{kind}",), "03"))
        out += [Stage(f"pullback/{kind}_{m}", (f"vae/{kind}",), "07") for m in PULLBACK_METHODS if m != "pullback_position"]
    # notebooks 02 and 03 store the code maps of every K-means, W2 and geodesic codebook
    for kind in VAE_KINDS:
        for method in ("kmeans", "w2", "geodesic"):
            for k in cfg.quantize.ks:
                cs = CodeSet(kind, method, k)
                out.append(Stage(f"codes/{cs.name}", _codes_inputs(cs), "02" if method != "geodesic" else "03"))
    vmax = max(cfg.vqvae.ks)
    for variant, k, need in plan.vqvae_runs(cfg, choices):
        inputs = ("vae/grid", _codebook_key("grid", choices.get("a_posteriori", "kmeans"), k)) \
            if variant == "hybrid" else ()
        out.append(Stage(f"vqvae/{variant}_K{k}", (*inputs, *([f"choice/{need}"] if need else [])), "05"))
    for job in plan.prior_jobs(cfg, choices):
        cs = job.codes
        if cs.source == "vqvae":
            need = next((n for n in job.needs if n in ("vqvae", "a_posteriori")), "")
            out.append(Stage(f"codes/{cs.name}", (*_codes_inputs(cs), *([f"choice/{need}"] if need else [])), "05"))
        else:
            need = "a_posteriori" if "a_posteriori" in job.needs else ""
            out.append(Stage(f"codes/{cs.name}", (*_codes_inputs(cs), *([f"choice/{need}"] if need else [])),
                             job.notebook))
        out.append(Stage(f"prior/{job.kind}/{cs.name}", (f"codes/{cs.name}", *(f"choice/{n}" for n in job.needs)),
                         job.notebook))
        if cs.source in ("grid", "vqvae"):  # notebook 06 samples every prior of the 7x7 grid
            out.append(Stage(f"samples/{job.kind}/{cs.name}", (f"prior/{job.kind}/{cs.name}",), "06"))
    for vae in p.vaes:
        out.append(Stage(f"choice/prior_{vae}", tuple(f"prior/{kind}/{cs.name}" for cs in plan.prior_comparison_sets(cfg)
                                                      if cs.source == vae for kind in p.kinds), "04"))
    out.append(Stage("choice/vqvae", tuple(f"vqvae/{v}_K{vmax}" for v in cfg.vqvae.variants if v != "hybrid"), "05"))
    grid_books = [_codebook_key("grid", m, vmax) for m in ("kmeans", "w2", "geodesic", *PULLBACK_METHODS)]
    out.append(Stage("choice/a_posteriori", tuple(dict.fromkeys(["vae/grid", *grid_books])), "05"))
    for cs in plan.adaptation_sets(cfg, choices):
        out.append(Stage(f"adapted/{cs.name}", ("vae/grid", _codebook_key("grid", cs.method, cs.k),
                                                "choice/a_posteriori"), "06"))
    out.append(Stage("adapted/grid_continuous", ("vae/grid",), "06"))
    out.append(Stage("classifier", (), "06"))
    return list({s.key: s for s in reversed(out)}.values())[::-1]  # a stage listed twice: its first recipe


def after_choice(choice: str, value: str, cfg: Config, known: set[str], choices: Mapping[str, str] | None = None
                 ) -> list[Stage]:
    """The stages that join the graph once ``choice`` (``choice/<name>``) is made with ``value``, given the
    ``choices`` made before it, leaving out those already in it (``known``)."""
    from .plan import CHOICES

    name = choice.removeprefix("choice/")
    if name not in CHOICES:
        raise ValueError(f"parameter 'choice' is {choice!r}; allowed: {', '.join('choice/' + c for c in CHOICES)}")
    return [s for s in stages_of(cfg, {**(choices or {}), name: value}) if s.key not in known]


def joining(new: list[Stage], known: set[str], notebooks: Iterable[str] | None) -> list[Stage]:
    """Of the stages ``new`` that a choice adds (:func:`after_choice`), those the graph of ``notebooks``
    takes (``None``: all), with every stage they need that the graph does not hold yet: with ``--only 04``
    a stage of notebook 04 may read one that only notebook 06 loads, which the graph must then build too."""
    if notebooks is None:
        return new
    by_key = {s.key: s for s in new}
    wanted = [s.key for s in new if s.notebook in notebooks]
    keep: set[str] = set()
    while wanted:
        key = wanted.pop()
        if key in keep or key in known or key not in by_key:
            continue
        keep.add(key)
        wanted += list(by_key[key].inputs)
    return [s for s in new if s.key in keep]


def stage_identity(stage: Stage, cfg: Config) -> tuple[str, ...] | None:
    """The identities (:mod:`geohelpers.artifacts`) of what ``stage`` stores under ``cfg``: a stage is up to
    date when its stored artifacts carry them. ``None`` for a choice that stores nothing."""
    from .stages import adaptation, codebooks, codes, priors, scoring, vaes, vqvaes

    kind, arg = stage.kind, stage.arg
    if kind == "vae":
        return (vaes.vae_tag(arg, cfg),)
    if kind == "codebook":
        cs = CodeSet.parse(arg)
        return (codebooks.codebook_tag(cs.source, cs.method, cs.k, cfg),)
    if kind == "geodesic":
        return tuple(codebooks.codebook_tag(arg, "geodesic", k, cfg) for k in _all_ks(cfg))
    if kind == "pullback":
        vae_kind, method = arg.split("_", 1)
        methods = ("pullback_position", method) if method == "pullback_vector" else (method,)
        return tuple(codebooks.codebook_tag(vae_kind, m, k, cfg) for m in methods for k in _all_ks(cfg))
    if kind == "codes":
        return (codes.code_identity(arg, cfg),)
    if kind == "prior":
        prior_kind, name = arg.split("/", 1)
        return (priors.prior_tag(prior_kind, name, cfg),)
    if kind == "samples":
        from .stages.samples import samples_tag

        prior_kind, name = arg.split("/", 1)
        return (samples_tag(prior_kind, name, cfg),)
    if kind == "vqvae":
        cs = CodeSet.parse(f"vqvae_{arg}")
        return (vqvaes.vqvae_tag(cs.method, cs.k, cfg),)
    if kind == "classifier":
        return (scoring.classifier_tag(cfg),)
    if kind == "adapted":
        if arg.endswith("_continuous"):
            return (adaptation.continuous_tag(arg.removesuffix("_continuous"), cfg),)
        return (adaptation.adapted_tag(CodeSet.parse(arg), cfg),)
    if arg == "a_posteriori":  # the one choice that is stored: the hybrid's identity reads it
        from .stages.choices import a_posteriori_candidates, choice_identity

        return (choice_identity(arg, a_posteriori_candidates(cfg), cfg),)
    return None


def as_graph(stages: list[Stage]) -> nx.DiGraph:
    """The stages as a directed graph, an edge from each input to the stage that needs it; an input that is
    not a stage, or a cycle, raises ``ValueError`` naming it."""
    g = nx.DiGraph()
    for s in stages:
        g.add_node(s.key, stage=s)
    for s in stages:
        for i in s.inputs:
            if i not in g:
                raise ValueError(f"stage {s.key!r} needs {i!r}, which is not a stage")
            g.add_edge(i, s.key)
    if not nx.is_directed_acyclic_graph(g):
        raise ValueError(f"the stage graph has a cycle: {nx.find_cycle(g)}")
    return g


def for_notebooks(g: nx.DiGraph, notebooks: Iterable[str] | None) -> nx.DiGraph:
    """The part of ``g`` that the notebooks numbered ``notebooks`` (``["01", "04"]``; ``None``: all) load:
    the stages they load first, and every stage those need."""
    if notebooks is None:
        return g
    wanted = {str(n)[:2] for n in notebooks}
    keep = {key for key, data in g.nodes(data=True) if data["stage"].notebook in wanted}
    for key in list(keep):
        keep |= nx.ancestors(g, key)
    return g.subgraph(keep).copy()


def full_graph(cfg: Config, choices: Mapping[str, str]) -> nx.DiGraph:
    """The whole graph once the choices are known (``{"vqvae": "ema", ...}``, or keyed ``choice/vqvae``),
    for tests and plans."""
    return as_graph(stages_of(cfg, {k.removeprefix("choice/"): v for k, v in choices.items()}))


# --- what is stored, without building (the runner's --dry-run) ------------------------------------------

def stored_identities(folders: Iterable[str | os.PathLike], damaged: list[tuple[str, str]] | None = None
                      ) -> dict[str, str]:
    """The identity of every artifact stored under ``folders`` (artifacts folders), mapped to its path: the
    ``made_by`` of each digest file (:func:`geohelpers.files.write_artifact`) whose artifact is there, and
    the ``identity`` a stored choice's JSON holds. Nothing is loaded. With a ``damaged`` list, each
    artifact's bytes are checked against its digest as a run checks them before loading
    (:func:`damage`: nothing is moved): a damaged one is left out, to be rebuilt, and
    ``(path, why)`` is appended to the list."""
    from .files import DIGEST_SUFFIX

    found: dict[str, str] = {}
    for root in map(Path, folders):
        for side in sorted(root.rglob("*" + DIGEST_SUFFIX)) if root.is_dir() else []:
            target = side.with_name(side.name.removesuffix(DIGEST_SUFFIX))
            if not target.exists():
                continue
            if damaged is not None:
                why = damage(target)
                if why:
                    damaged.append((str(target), why))
                    continue
            try:
                names = [json.loads(side.read_text()).get("made_by")]
                if target.suffix == ".json":
                    names.append(json.loads(target.read_text()).get("identity"))
            except (OSError, ValueError, AttributeError):
                continue
            for name in names:
                if isinstance(name, str):
                    found.setdefault(name, str(target))
    return found


def damage(path: str | os.PathLike) -> str | None:
    """Why the artifact ``path`` would fail the check :func:`geohelpers.files.read_artifact` makes before
    loading it, or ``None`` when it is intact (or missing); read under its lock, and nothing is set aside:
    what ``--dry-run`` asks of the store, which it never changes."""
    from .files import _locked, _verdict

    path = Path(path)
    with _locked(path, exclusive=False):
        return _verdict(path)[1] if path.exists() else None


def stage_state(stage: Stage, cfg: Config, stored: Mapping[str, str]) -> str:
    """What the graph would do with ``stage`` given the ``stored`` identities (:func:`stored_identities`):
    ``"stored"`` (loaded), ``"resume"`` (a training checkpoint of this identity that its stopping rule has
    not ended: it trains on from its last epoch), ``"build"`` (also when its identity needs a stored choice
    not made yet), or ``"choice"`` (a choice that stores nothing, made from the stages it reads)."""
    import torch

    try:
        ids = stage_identity(stage, cfg)
    except FileNotFoundError:  # its identity reads a stored choice not made yet: nothing of it can be stored
        return "build"
    if ids is None:
        return "choice"
    paths = [stored.get(i) for i in ids]
    if any(p is None for p in paths):
        return "build"
    for p in paths:
        if str(p).endswith(".pt"):
            history = torch.load(p, map_location="cpu", weights_only=False).get("history") or {}
            if "stop_reason" in history and history["stop_reason"] is None:
                return "resume"
    return "stored"


# --- one stage, in a worker ------------------------------------------------------------------------------

_CACHE: dict[tuple, Any] = {}  # per worker process: MNIST, models and latents that several stages load


def _cached(key: tuple, make: Any) -> Any:
    if key not in _CACHE:
        _CACHE[key] = make()
    return _CACHE[key]


def _mnist(cfg: Config) -> Any:
    from .data import load_mnist

    return _cached(("mnist", repr(cfg.data)), lambda: load_mnist(cfg.data))


def _vae(kind: str, cfg: Config) -> Any:
    from .stages.vaes import train_vae, vae_tag

    return _cached(("vae", vae_tag(kind, cfg)), lambda: train_vae(kind, cfg, _mnist(cfg)).model)


def _latents(kind: str, cfg: Config) -> dict[str, Any]:
    from .stages.vaes import encode_splits, vae_tag

    return _cached(("latents", vae_tag(kind, cfg)),
                   lambda: encode_splits({kind: _vae(kind, cfg)}, _mnist(cfg), cfg)[kind])


def _pullback(kind: str, cfg: Config) -> Any:
    from .stages.codebooks import pullback_metrics
    from .stages.vaes import vae_tag

    return _cached(("pullback", vae_tag(kind, cfg), repr(cfg.quantize)),
                   lambda: pullback_metrics(_vae(kind, cfg), _latents(kind, cfg)["train"], cfg))


def _codebook(kind: str, method: str, k: int, cfg: Config) -> Any:
    from .stages.codebooks import fit_codebook, fit_geodesic_codebooks

    train = _latents(kind, cfg)["train"]
    if method == "geodesic":
        return fit_geodesic_codebooks(kind, cfg, train, ks=_all_ks(cfg))[0][k]
    if method == "pullback_geodesic":
        pb = _pullback(kind, cfg)
        return fit_geodesic_codebooks(kind, cfg, train, ks=_all_ks(cfg), method=method, metric=pb.metrics)[0][k]
    if method.startswith("pullback"):
        pb = _pullback(kind, cfg)
        return fit_codebook(kind, method, k, cfg, train, pb.metrics, pb.vectors)[0]
    return fit_codebook(kind, method, k, cfg, train)[0]


def _vqvae(variant: str, k: int, cfg: Config) -> Any:
    from .stages.vqvaes import train_vqvae

    return train_vqvae(variant, k, cfg, _mnist(cfg), _vae("grid", cfg) if variant == "hybrid" else None)


def _run(stage: Stage, cfg: Config) -> tuple[bool, Any]:
    """Load or build one stage; returns whether anything was built, and a choice's value."""
    from . import artifacts, store
    from .stages import adaptation, codebooks, codes, priors, scoring, vaes

    kind, arg = stage.kind, stage.arg
    if kind == "vae":
        t = vaes.train_vae(arg, cfg, _mnist(cfg))
        return t.built_now, None
    if kind == "codebook":
        cs = CodeSet.parse(arg)
        _, built = codebooks.fit_codebook(cs.source, cs.method, cs.k, cfg, _latents(cs.source, cfg)["train"])
        return built, None
    if kind == "geodesic":
        books, seconds, _ = codebooks.fit_geodesic_codebooks(arg, cfg, _latents(arg, cfg)["train"], ks=_all_ks(cfg))
        return bool(seconds), None
    if kind == "pullback":
        vae_kind, method = arg.split("_", 1)
        train, pb = _latents(vae_kind, cfg)["train"], _pullback(vae_kind, cfg)
        if method == "pullback_geodesic":
            _, seconds, _ = codebooks.fit_geodesic_codebooks(vae_kind, cfg, train, ks=_all_ks(cfg), method=method,
                                                             metric=pb.metrics)
            return bool(seconds), None
        built = [codebooks.fit_codebook(vae_kind, method, k, cfg, train, pb.metrics, pb.vectors)[1] for k in _all_ks(cfg)]
        return any(built), None
    if kind == "codes":
        cs = CodeSet.parse(arg)
        try:
            codes.load_codes(cfg, cs.name)
            return False, None  # stored with the identity this configuration gives
        except (FileNotFoundError, artifacts.StaleArtifactError):
            pass
        if cs.source == "vqvae":
            model = _vqvae(cs.method, cs.k, cfg).model
            mnist = _mnist(cfg)
            codes.save_codes(cfg, cs.name, **{s: model.encode_codes(getattr(mnist, f"{s}_x")).numpy()
                                               for s in ("train", "val", "test")})
        else:
            codes.encode_and_save_codes(_codebook(cs.source, cs.method, cs.k, cfg), _vae(cs.source, cfg),
                                        _latents(cs.source, cfg), cs.name, cfg)
        return True, None
    if kind == "prior":
        prior_kind, name = arg.split("/", 1)
        t = priors.train_prior(prior_kind, name, CodeSet.parse(name).k, cfg)
        return t.built_now, None
    if kind == "vqvae":
        cs = CodeSet.parse(f"vqvae_{arg}")
        return _vqvae(cs.method, cs.k, cfg).built_now, None
    if kind == "samples":
        from .stages.samples import sample_codes

        prior_kind, name = arg.split("/", 1)
        path = store.artifacts_dir(cfg.profile) / "samples" / f"{prior_kind}_{name}.npz"
        before = path.stat().st_mtime_ns if path.exists() else None
        sample_codes(prior_kind, name, CodeSet.parse(name).k, cfg)
        return (not path.exists()) or path.stat().st_mtime_ns != before, None
    if kind == "classifier":
        return scoring.train_classifier(cfg, _mnist(cfg)).built_now, None
    if kind == "adapted" and arg.endswith("_continuous"):
        vae_kind = arg.removesuffix("_continuous")
        t = adaptation.adapt_decoder_continuous(vae_kind, _vae(vae_kind, cfg), _latents(vae_kind, cfg), _mnist(cfg), cfg)
        return t.built_now, None
    if kind == "adapted":
        cs = CodeSet.parse(arg)
        t = adaptation.adapt_decoder(_codebook(cs.source, cs.method, cs.k, cfg), cs, _vae(cs.source, cfg),
                                     _latents(cs.source, cfg), _mnist(cfg), cfg)
        return t.built_now, None
    if kind == "choice":
        return False, _choose(arg, cfg)
    raise ValueError(f"stage {stage.key!r}: unknown kind {kind!r}; allowed: {', '.join(sorted(RUNNERS))}")


RUNNERS = ("vae", "codebook", "geodesic", "pullback", "codes", "prior", "samples", "vqvae", "classifier", "adapted",
           "choice")


def _choose(arg: str, cfg: Config) -> str:
    """The book's choices on validation numbers (:mod:`geohelpers.plan`), by the functions the notebooks
    call (:mod:`geohelpers.evaluation`)."""
    from . import evaluation

    if arg.startswith("prior_"):
        return evaluation.choose_prior_kind(arg.removeprefix("prior_"), cfg)[0]
    if arg == "vqvae":
        return evaluation.choose_end_to_end(cfg, _mnist(cfg))[0]
    if arg == "a_posteriori":
        return evaluation.choose_a_posteriori(_vae("grid", cfg), _latents("grid", cfg), _mnist(cfg), cfg,
                                              _pullback("grid", cfg))[0]
    raise ValueError(f"stage 'choice/{arg}': unknown choice; allowed: prior_<vae>, vqvae, a_posteriori")


def run_stage(stage: Stage, profile: str, overrides: Mapping[str, Any], home: str | None = None,
              journal: str | None = None) -> dict[str, Any]:
    """Load or build ``stage`` in this process on one torch thread (a Dask task); returns its record: key,
    status (``built``, ``loaded`` or ``failed``), seconds, worker, and a choice's value or the error.
    ``journal``: a file this call of the graph shares, to which the stage's start (key, process, time) is
    appended first, so that a start whose worker died is known (:func:`restarts`)."""
    import torch

    if home:
        os.environ["GEOVQ_HOME"] = home
    os.environ.setdefault("TQDM_DISABLE", "1")
    torch.set_num_threads(1)
    record: dict[str, Any] = {"key": stage.key, "inputs": list(stage.inputs), "worker": socket.gethostname(),
                              "pid": os.getpid(), "threads": torch.get_num_threads()}
    if journal:
        line = json.dumps({"key": stage.key, "worker": record["worker"], "pid": record["pid"], "started": time.time()})
        with open(journal, "a") as fh:  # one short line in append mode: whole lines, whoever writes beside it
            fh.write(line + "\n")
    t0 = time.perf_counter()
    try:
        built, value = _run(stage, resolve(profile, dict(overrides)))
    except Exception as err:  # reported with the stage and its inputs; the graph goes on without it
        return {**record, "status": "failed", "seconds": round(time.perf_counter() - t0, 2),
                "error": "".join(traceback.format_exception_only(type(err), err)).strip(),
                "traceback": traceback.format_exc(limit=8)}
    return {**record, "status": "built" if built else "loaded", "value": value,
            "seconds": round(time.perf_counter() - t0, 2)}


# --- the graph, on Dask ----------------------------------------------------------------------------------

@dataclass
class GraphReport:
    """What :func:`build_graph` did: every stage's record (in completion order), the stages not run because
    an input failed, the choices made, the workers, the wall time and the critical path."""

    records: list[dict[str, Any]] = field(default_factory=list)
    not_run: dict[str, str] = field(default_factory=dict)  # stage -> the failed input it waited for
    restarts: list[dict[str, Any]] = field(default_factory=list)  # starts lost with their worker (:func:`restarts`)
    choices: dict[str, str] = field(default_factory=dict)
    workers: int = 0
    wall_time_s: float = 0.0
    critical_path: list[str] = field(default_factory=list)
    critical_path_s: float = 0.0
    finished: float = 0.0  # seconds since the epoch when the last stage ended

    @property
    def failed(self) -> list[dict[str, Any]]:
        return [r for r in self.records if r["status"] == "failed"]

    def to_dict(self) -> dict[str, Any]:
        return {"workers": self.workers, "wall_time_s": round(self.wall_time_s, 1), "finished": self.finished,
                "critical_path_s": round(self.critical_path_s, 1), "critical_path": self.critical_path,
                "choices": self.choices, "not_run": self.not_run, "restarts": self.restarts,
                "lost_s": round(sum(r["lost_s"] for r in self.restarts), 1),
                "stages": [{k: v for k, v in r.items() if k != "traceback"} for r in self.records]}


def restarts(journal: str | os.PathLike, records: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The stage starts of ``journal`` (:func:`run_stage`) that did not end in a record: a stage whose worker
    died (killed, out of memory) is started again by Dask on another worker, so its key appears twice.
    Each lost start gives its key, worker, process and ``lost_s``, the seconds from it to the next start of
    the same stage (the work the dead worker took with it); a start still running has no later one and is
    not listed."""
    starts: dict[str, list[dict[str, Any]]] = {}
    try:
        lines = Path(journal).read_text().splitlines()
    except OSError:
        return []
    for line in lines:
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        starts.setdefault(entry["key"], []).append(entry)
    lost = []
    for key, entries in starts.items():
        entries.sort(key=lambda e: e["started"])
        for this, after in zip(entries, entries[1:]):
            lost.append({"key": key, "worker": this["worker"], "pid": this["pid"],
                         "lost_s": round(after["started"] - this["started"], 1)})
    return lost


def critical_path(g: nx.DiGraph, seconds: Mapping[str, float]) -> tuple[list[str], float]:
    """The chain of dependent stages with the largest sum of ``seconds``: no schedule on any number of
    workers finishes the graph sooner than that sum."""
    best: dict[str, tuple[float, list[str]]] = {}
    for node in nx.topological_sort(g):
        here = seconds.get(node, 0.0)
        before = max((best[p] for p in g.predecessors(node)), default=(0.0, []), key=lambda t: t[0])
        best[node] = (before[0] + here, [*before[1], node])
    if not best:
        return [], 0.0
    total, path = max(best.values(), key=lambda t: t[0])
    return path, total


#: The environment of every worker process: one thread for OpenMP, MKL and OpenBLAS, and *not* Dask's
#: default ``MALLOC_TRIM_THRESHOLD_=65536``, under which glibc hands freed memory back to the kernel at every
#: training step: a single-threaded GridVAE step then took about twice as long (50 steps: 11.8-14.4 s against
#: 6.7-6.8 s, side by side on one loaded 2-core machine), most of it in system time.
WORKER_ENVIRON = {"OMP_NUM_THREADS": 1, "MKL_NUM_THREADS": 1, "OPENBLAS_NUM_THREADS": 1}


def local_cluster(n_workers: int) -> Any:
    """A ``LocalCluster`` of ``n_workers`` single-threaded worker processes with :data:`WORKER_ENVIRON`,
    non-daemonic (a stage may fork: the geodesic shortest paths' processes), its dashboard on a free port."""
    import dask
    from distributed import LocalCluster

    with dask.config.set({"distributed.worker.daemon": False, "distributed.nanny.pre-spawn-environ": WORKER_ENVIRON}):
        return LocalCluster(n_workers=n_workers, threads_per_worker=1, processes=True, dashboard_address=":0",
                            silence_logs=40)


def build_graph(cfg: Config, overrides: Mapping[str, Any] | None = None, *, notebooks: Iterable[str] | None = None,
                scheduler: str | None = None, workers: int | None = None, home: str | None = None, client: Any = None,
                progress: bool = True, on_record: Any = None) -> GraphReport:
    """Load or build every stage of ``cfg``'s graph on Dask (see the module docstring); returns the report.

    ``client``: an existing ``distributed.Client`` (the caller closes it); otherwise one is made for
    ``scheduler``, or a ``LocalCluster`` of ``workers`` single-threaded processes (default: one per core).
    ``home``: the ``$GEOVQ_HOME`` the stages read and write (default: this process's). ``notebooks``: only
    what those notebooks load (:func:`for_notebooks`). ``on_record(report)`` is called after every stage
    ends, with the report so far (the runner writes ``run.json`` with it, so a long build that is stopped
    keeps the times of the stages it finished)."""
    from distributed import Client, as_completed
    from tqdm import tqdm

    from .store import home as default_home

    overrides = dict(overrides or {})
    home = str(home or default_home())
    notebooks = None if notebooks is None else [str(n)[:2] for n in notebooks]
    g = for_notebooks(as_graph(stages_of(cfg)), notebooks)
    report = GraphReport()
    own = client is None
    cluster = None
    if own:
        if scheduler:
            client = Client(scheduler)
        else:
            cluster = local_cluster(workers or os.cpu_count() or 1)
            client = Client(cluster)
    t0 = time.perf_counter()
    journal = Path(home) / "artifacts" / cfg.profile / ".stage-journal" / f"{os.getpid()}-{time.time_ns()}.jsonl"
    journal.parent.mkdir(parents=True, exist_ok=True)
    keys: dict[str, str] = {}  # Dask key -> stage key, to name a stage whose task Dask gave up on
    try:
        report.workers = len(client.scheduler_info()["workers"])
        done: dict[str, dict] = {}
        submitted: set[str] = set()
        queue = as_completed()
        bar = tqdm(total=g.number_of_nodes(), desc=f"stages ({cfg.profile})", disable=not progress)

        def submit_ready() -> None:
            for key in nx.topological_sort(g):
                if key in submitted or key in report.not_run:
                    continue
                inputs = list(g.predecessors(key))
                failed = [i for i in inputs if i in report.not_run or done.get(i, {}).get("status") == "failed"]
                if failed:
                    report.not_run[key] = failed[0]
                    bar.update(1)
                    continue
                if all(i in done for i in inputs):
                    submitted.add(key)
                    # a free worker takes the ready stage with the most stages waiting on it: the chain to
                    # the choices and the priors starts first, the leaves fill the gaps
                    task = f"stage-{key}-{time.time_ns()}"
                    keys[task] = key
                    queue.add(client.submit(run_stage, g.nodes[key]["stage"], cfg.profile, overrides, home,
                                            str(journal), key=task, pure=False,
                                            priority=len(nx.descendants(g, key))))

        submit_ready()
        for fut in queue:
            try:
                rec = fut.result()
            except Exception as err:  # Dask gave up on the task (its workers died: KilledWorker), or lost it
                key = keys[fut.key]
                rec = {"key": key, "inputs": list(g.predecessors(key)), "status": "failed", "seconds": 0.0,
                       "error": f"{type(err).__name__}: {err} (the worker process running it died each time "
                                f"Dask started it: out of memory or killed)"}
            done[rec["key"]] = rec
            report.records.append(rec)
            report.restarts = restarts(journal, report.records)
            bar.update(1)
            if on_record is not None:
                report.wall_time_s = time.perf_counter() - t0
                on_record(report)
            if rec["status"] == "failed":
                bar.write(f"[graph] stage {rec['key']} FAILED (inputs: {', '.join(rec['inputs']) or 'none'}): "
                          f"{rec['error']}")
            if rec["key"].startswith("choice/") and rec["status"] != "failed":
                report.choices[rec["key"]] = rec["value"]
                made = {k.removeprefix("choice/"): v for k, v in report.choices.items() if k != rec["key"]}
                new = joining(after_choice(rec["key"], rec["value"], cfg, set(g.nodes), made), set(g.nodes), notebooks)
                for s in new:
                    g.add_node(s.key, stage=s)
                for s in new:
                    for i in s.inputs:
                        g.add_edge(i, s.key)
                bar.total += len(new)
                bar.refresh()
            submit_ready()
        bar.close()
    finally:
        report.wall_time_s = time.perf_counter() - t0
        report.finished = time.time()
        report.restarts = restarts(journal, report.records)
        journal.unlink(missing_ok=True)
        if own:
            client.close()
            if cluster is not None:
                cluster.close()
    report.critical_path, report.critical_path_s = critical_path(g, {r["key"]: r["seconds"] for r in report.records})
    return report
