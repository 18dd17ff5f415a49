"""The one identity of every artifact: checkpoints, codebooks, code maps and the priors trained on them.

An artifact is reused only when its identity matches the one the current configuration asks for; else it
is rebuilt. The identity is a hash of

- what it is (``kind``, e.g. ``"vae/grid"``, ``"codebook/grid/kmeans/K512"``),
- the config sections that shape it (always with the seed and the stopping rule),
- the source of the modules that make it: the stage module that names it and every module of the package
  it imports, directly or through others (:func:`import_closure`; never one of :data:`NOT_IN_IDENTITY`,
  which run notebooks or draw tables, figures and pages, and which a stage cannot import),
- the versions of the libraries that compute it (:data:`LIBRARIES`),
- the identities of its inputs (the VAE a codebook quantizes, the codebook a code map comes from, the
  code map a prior is trained on).

So a change to ``train.py``, ``data.py`` or ``quantize/kmeans.py``, a new torch, or other code maps
retrain what depends on them, and nothing can pair a prior with another configuration's codebook; a
change to what only *evaluates* artifacts (``evaluation.py``, the notebooks' experiments, the graph)
retrains nothing, so a long build survives an edit of the book's analysis.
"""

from __future__ import annotations

import ast
import hashlib
import json
import subprocess
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import ClassVar, Iterable, Mapping

from .config import Config

#: The one list of what the package's modules shape. Every module not named here shapes artifacts and
#: results, and enters every identity and every notebook's stamp.
#: EXECUTION: runs notebooks and checks the built book; shapes no number (outside identities and stamps).
EXECUTION = frozenset({"run.py", "notebooks.py", "sweep.py", "bookcheck.py", "graph.py"})
#: SWEEP_ANALYSIS: notebook 08's analysis of the sweeps; outside identities and the sweep points' stamps,
#: inside notebook 08's stamp (:func:`geohelpers.notebooks.input_hashes`).
SWEEP_ANALYSIS = frozenset({"sweep_stats.py"})
#: RESULTS_ONLY: the book's decisions over results rows, its tables, figures and sentences; they shape a
#: notebook's results and pages but no artifact (outside identities, inside the notebooks' stamps).
RESULTS_ONLY = frozenset({"selection.py", "prose.py", "tables.py", "plots.py", "studies.py"})
#: VALUES_ONLY: the configuration's source (profiles, parsing, validation, labels). What it shapes enters
#: every identity as the resolved *values* of the sections an artifact reads (:meth:`Config.digest`), so an
#: edit of the parser or of another section's defaults retrains nothing that does not read them.
VALUES_ONLY = frozenset({"config.py"})
#: Modules outside every artifact's identity.
NOT_IN_IDENTITY = EXECUTION | SWEEP_ANALYSIS | RESULTS_ONLY | VALUES_ONLY

#: The package's folder.
PACKAGE_ROOT = Path(__file__).resolve().parent

#: Libraries whose versions enter every identity.
LIBRARIES = ("torch", "numpy", "faiss-cpu", "kmedoids", "scikit-learn", "scikit-learn-extra", "scipy")


@dataclass(frozen=True)
class CodeSet:
    """One set of code maps: its ``source`` (the VAE kind, ``"grid"`` or ``"flat"``, whose codebook made
    them, or ``"vqvae"``), its ``method`` (the codebook method, or the VQ-VAE variant) and ``K``. Its
    :attr:`name` (``grid_kmeans_K512``, ``vqvae_ema_restart_K128``) names the stored maps and their prior."""

    source: str
    method: str
    k: int

    SOURCES: ClassVar[tuple[str, ...]] = ("grid", "flat", "vqvae")

    def __post_init__(self) -> None:
        if self.source not in self.SOURCES or not self.method or int(self.k) < 1:
            raise ValueError(f"a code set is (source, method, K) with source one of {', '.join(self.SOURCES)}, "
                             f"a method and K >= 1; got ({self.source!r}, {self.method!r}, {self.k!r})")

    @property
    def name(self) -> str:
        return f"{self.source}_{self.method}_K{self.k}"

    @classmethod
    def parse(cls, name: str) -> "CodeSet":
        """The code set a stored name stands for (the inverse of :attr:`name`)."""
        head, sep, k = name.rpartition("_K")
        source, _, method = head.partition("_")
        if not sep or not k.isdigit():
            raise ValueError(f"{name!r} is not a code set's name; allowed: <source>_<method>_K<k>, e.g. grid_kmeans_K512")
        return cls(source, method, int(k))

    @classmethod
    def of_quantizer(cls, quantizer: str, k: int, vae: str = "grid") -> "CodeSet":
        """The code set of a quantizer as the comparison names it: ``kmeans`` (a codebook of ``vae``) or
        ``VQ-VAE ema`` (an end-to-end model)."""
        return cls("vqvae", quantizer.removeprefix("VQ-VAE "), k) if quantizer.startswith("VQ-VAE ") else \
            cls(vae, quantizer, k)

    def __str__(self) -> str:
        return self.name


class StaleArtifactError(RuntimeError):
    """A stored artifact was made by another configuration, code or input than the one asked for."""


def package_modules() -> list[Path]:
    """The package's modules: those git tracks when the package lies in a git work tree (a stray file in the
    folder changes no identity and no stamp), else every ``*.py`` file in it. Their content is read from the
    work tree, so an uncommitted edit of a tracked module counts."""
    root = PACKAGE_ROOT
    try:
        out = subprocess.run(["git", "ls-files", "-z", "--", "*.py"], cwd=root, capture_output=True, check=True,
                             timeout=30).stdout.decode()
        tracked = sorted(root / name for name in out.split("\0") if name)
    except (OSError, subprocess.SubprocessError):
        tracked = []
    return [f for f in tracked if f.exists()] or sorted(root.rglob("*.py"))


def modules_digest(exclude: Iterable[str] = NOT_IN_IDENTITY, only: Iterable[str] | None = None) -> str:
    """Hash of the source of the package's modules (:func:`package_modules`), by their path in the
    package, leaving out ``exclude``; with ``only``, just those."""
    root = PACKAGE_ROOT
    exclude, only = set(exclude), set(only) if only is not None else None
    h = hashlib.sha256()
    for f in package_modules():
        rel = f.relative_to(root).as_posix()
        if rel in exclude or (only is not None and rel not in only):
            continue
        h.update(rel.encode())
        h.update(f.read_bytes())
    return h.hexdigest()


def _imported(path: Path) -> set[str]:
    """The package modules (paths relative to the package, ``stages/vaes.py``) that the module at ``path``
    imports anywhere in its source (function-level imports included): ``from .x import y``, ``from . import
    x``, ``from ..models.vae import VAE`` and ``import geohelpers.x``. A package imported as such (``from
    ..models import VAE``) counts as its ``__init__.py``."""
    root = PACKAGE_ROOT
    here = path.relative_to(root).parent
    out: set[str] = set()

    def add(parts: list[str], names: list[str]) -> None:
        base = root.joinpath(*parts)
        if base.with_suffix(".py").is_file():
            out.add(base.with_suffix(".py").relative_to(root).as_posix())
            return
        if not base.is_dir():
            return
        for name in names:  # ``from pkg import module`` or ``from pkg import function``
            if (base / f"{name}.py").is_file():
                out.add((base / f"{name}.py").relative_to(root).as_posix())
            elif (base / name / "__init__.py").is_file():
                out.add((base / name / "__init__.py").relative_to(root).as_posix())
            elif (base / "__init__.py").is_file():
                out.add((base / "__init__.py").relative_to(root).as_posix())

    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            names = [a.name for a in node.names]
            if node.level:
                parts = list(here.parts)[:len(here.parts) - (node.level - 1)] if node.level > 1 else list(here.parts)
                add([*parts, *(node.module.split(".") if node.module else [])], names)
            elif node.module and node.module.split(".")[0] == root.name:
                add(node.module.split(".")[1:], names)
        elif isinstance(node, ast.Import):
            for a in node.names:
                if a.name.split(".")[0] == root.name:
                    add(a.name.split(".")[1:], [])
    return out


def import_closure(module: str) -> list[str]:
    """The package modules whose source shapes what ``module`` (``geohelpers.stages.vaes``, or its path in
    the package, ``stages/vaes.py``) computes: it and every package module it imports, transitively
    (:func:`_imported`), sorted. Modules of :data:`NOT_IN_IDENTITY` never enter it."""
    rel = module if module.endswith(".py") else "/".join(module.split(".")[1:]) + ".py"
    seen: set[str] = set()
    todo = [rel]
    while todo:
        m = todo.pop()
        if m in seen or m in NOT_IN_IDENTITY:
            continue
        seen.add(m)
        todo += sorted(_imported(PACKAGE_ROOT / m) - seen)
    return sorted(seen)


@lru_cache(maxsize=None)
def source_digest(module: str | None = None) -> str:
    """Hash of the source that can shape an artifact: with ``module`` (a stage module), of its import closure
    (:func:`import_closure`); without, of every module but :data:`NOT_IN_IDENTITY`."""
    return modules_digest(only=import_closure(module) if module else None)[:16]


@lru_cache(maxsize=1)
def library_versions() -> dict[str, str]:
    from .store import versions_of

    return versions_of(LIBRARIES)


def identity(kind: str, cfg: Config, sections: Iterable[str] = (), inputs: Mapping[str, str] | None = None, *,
             module: str, **params: object) -> str:
    """The identity of one artifact: ``kind`` plus a hash of its config ``sections`` (with ``seed`` and
    ``training``), extra ``params``, the source of ``module`` (the stage module that makes it, its
    ``__name__``) and of everything it imports (:func:`source_digest`), the library versions and its
    ``inputs``' identities."""
    names = sorted({*sections, "seed", "training"})
    payload = {"kind": kind, "config": cfg.digest(*names), "params": params, "source": source_digest(module),
               "libraries": library_versions(), "inputs": dict(sorted((inputs or {}).items()))}
    digest = hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()[:16]
    return f"{kind}@{digest}"


def check(path: Path, found: str | None, expected: str, rebuild: str) -> None:
    """Raise :class:`StaleArtifactError` when the identity ``found`` in ``path`` is not ``expected``."""
    if found != expected:
        raise StaleArtifactError(f"{path} was made as {found or 'an artifact without identity'}, but this "
                                 f"configuration needs {expected}: {rebuild}")
