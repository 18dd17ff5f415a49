"""Writing files so that no reader sees half of one, and reading artifacts only once their bytes are verified.

Every file the book writes (checkpoints, codebooks, code maps, results, the runner's stamps, sweep records)
goes through :func:`atomic_write`: the bytes go to a temporary file of this process in the same folder,
are flushed and ``fsync``-ed, and the temporary file is renamed over the final path with ``os.replace``
(atomic on POSIX). A reader therefore sees the old file or the new one, never a torn one, and two
processes writing the same path (two runs on one clone) never mix their bytes.

An *artifact* (a checkpoint, a codebook, code maps) is written with :func:`write_artifact`, which also
writes a digest file beside it, ``<name>.sha256``: the SHA-256 and size of its bytes and what made it (its
identity); the two are written and read under an advisory lock (``<name>.lock``), so a reader never pairs
one process's bytes with another's digest. :func:`read_artifact` reads the bytes and checks them against that digest *before* anything
parses them (``torch.load`` of a damaged checkpoint can load altered weights without an error, or try to
allocate tens of GB). A file written before digests existed is checked by its zip archive's CRC-32s
(``.pt`` and ``.npz`` files are zip archives). A file that fails the check is *damaged*: it is moved aside
to ``<name>.corrupt`` (its digest file too), a warning names it, what made it and that it will be
rebuilt, and the caller treats it as missing, so a run never loads a damaged file and never fails twice
on the same one.
"""

from __future__ import annotations

import fcntl
import hashlib
import io
import json
import logging
import os
import tempfile
import zipfile
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any, Iterator

log = logging.getLogger("geohelpers")

#: Suffix of the file that holds an artifact's digest, and of a damaged artifact set aside.
DIGEST_SUFFIX = ".sha256"
CORRUPT_SUFFIX = ".corrupt"


class DamagedFileError(RuntimeError):
    """A record the book needs (a results file, the runner's stamps) cannot be read; the message names the
    file and what to do."""


@contextmanager
def atomic_writer(path: str | Path) -> Iterator[IO[bytes]]:
    """Open a binary handle whose bytes replace ``path`` atomically when the block ends without an error
    (per-process temporary file in the same folder, flush, fsync, ``os.replace``); on an error the
    temporary file is removed and ``path`` is left as it was."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o644)  # mkstemp makes the file private; what the book writes is not
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write(path: str | Path, data: bytes | str) -> Path:
    """Write ``data`` (text is UTF-8 encoded) to ``path`` atomically (:func:`atomic_writer`)."""
    with atomic_writer(path) as fh:
        fh.write(data.encode() if isinstance(data, str) else data)
    return Path(path)


def write_json(path: str | Path, payload: Any, **dumps: Any) -> Path:
    """``json.dumps(payload, indent=2, **dumps)`` plus a newline, written atomically."""
    return atomic_write(path, json.dumps(payload, indent=2, **dumps) + "\n")


def read_json(path: str | Path, remedy: str) -> Any:
    """The JSON document in ``path``; :class:`DamagedFileError` naming the file and ``remedy`` when it
    cannot be parsed (e.g. truncated by a kill before atomic writes existed, or edited by hand)."""
    path = Path(path)
    try:
        return json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise DamagedFileError(f"{path} is damaged ({err}): {remedy}") from None


def read_record(path: str | Path, empty: Any, remedy: str, who: str) -> Any:
    """A JSON record that can be rebuilt (the runner's stamps, a sweep's records): its content, or ``empty``
    when it is missing; a damaged one is set aside (:func:`quarantine`), named in a line prefixed ``[who]``
    with ``remedy``, and read as ``empty``, so no later run fails on it again."""
    path = Path(path)
    if not path.exists():
        return empty
    try:
        return read_json(path, remedy)
    except DamagedFileError as err:
        print(f"[{who}] {err} (set aside as {quarantine(path).name})", flush=True)
        return empty


def digest_path(path: str | Path) -> Path:
    path = Path(path)
    return path.with_name(path.name + DIGEST_SUFFIX)


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@contextmanager
def _locked(path: Path, exclusive: bool) -> Iterator[None]:
    """An advisory lock on ``path`` (a ``.lock`` file beside it): writers of an artifact and its digest
    file hold it exclusively, readers shared, so a reader never sees the new bytes with the old digest.
    The lock dies with its process, so a killed writer never blocks anyone."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_name(path.name + ".lock"), "a") as fh:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
        try:
            yield
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


def write_artifact(path: str | Path, data: bytes, made_by: str) -> Path:
    """Write an artifact's bytes atomically, then its digest file (SHA-256, size, ``made_by``), both under
    the artifact's lock. When the stored artifact already has these bytes and this ``made_by`` (by its
    digest file and size), nothing is written: storing the same result again leaves the file untouched."""
    path = Path(path)
    digest = sha256(data)
    with _locked(path, exclusive=True):
        record = _recorded(path)
        if (record and record.get("sha256") == digest and record.get("made_by") == made_by and path.exists()
                and path.stat().st_size == len(data) == record.get("bytes")):
            return path
        atomic_write(path, data)
        write_json(digest_path(path), {"sha256": digest, "bytes": len(data), "made_by": made_by})
    return path


def _zip_intact(data: bytes) -> bool:
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as z:
            return z.testzip() is None
    except (zipfile.BadZipFile, OSError, EOFError, ValueError, NotImplementedError):
        return False


def _recorded(path: Path) -> dict[str, Any] | None:
    """The digest record beside ``path``; ``None`` when there is none; ``{}`` when it is unreadable."""
    side = digest_path(path)
    if not side.exists():
        return None
    try:
        record = json.loads(side.read_text())
        return record if isinstance(record, dict) and "sha256" in record else {}
    except (json.JSONDecodeError, UnicodeDecodeError, OSError):
        return {}


def _verdict(path: Path) -> tuple[bytes | None, str | None, str]:
    """(bytes, None, made_by) when ``path`` is intact; (None, why, made_by) when it is damaged."""
    data = path.read_bytes()
    record = _recorded(path)
    if record is None:  # written before digests existed: the zip archive's own CRC-32s
        return (data, None, "unknown") if _zip_intact(data) else (None, "its zip archive fails its CRC check",
                                                                   "unknown")
    made_by = str(record.get("made_by", "unknown"))
    if not record:
        return None, f"its digest file {digest_path(path).name} is unreadable", made_by
    if len(data) != record.get("bytes") or sha256(data) != record["sha256"]:
        return None, (f"its bytes ({len(data)}) do not match the SHA-256 recorded when it was written "
                      f"({record.get('bytes')} bytes)"), made_by
    return data, None, made_by


def quarantine(path: str | Path) -> Path:
    """Move a damaged file (and its digest file) aside to ``<name>.corrupt``; return the new path."""
    path = Path(path)
    target = path.with_name(path.name + CORRUPT_SUFFIX)
    os.replace(path, target)
    side = digest_path(path)
    if side.exists():
        os.replace(side, digest_path(target))
    return target


def read_artifact(path: str | Path, what: str = "artifact") -> bytes | None:
    """The bytes of the artifact ``path`` once verified (see the module docstring), or ``None`` when it is
    missing or damaged; a damaged one is set aside (:func:`quarantine`) with a warning that names it, what
    made it and that it will be rebuilt. Read under the artifact's lock (:func:`write_artifact`), so a file
    being rewritten by another process is never taken for a damaged one."""
    path = Path(path)
    if not path.exists():
        return None
    with _locked(path, exclusive=False):
        if not path.exists():
            return None
        data, why, made_by = _verdict(path)
    if data is not None:
        return data
    with _locked(path, exclusive=True):  # set aside by one process only, and only if still damaged
        if not path.exists():
            return None
        data, why, made_by = _verdict(path)
        if data is not None:
            return data
        aside = quarantine(path)
    log.warning("%s %s is damaged: %s. It was made as %s; it is set aside as %s and will be rebuilt.",
                what, path, why, made_by, aside.name)
    return None
