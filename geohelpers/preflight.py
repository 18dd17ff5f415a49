"""What the runner checks about its environment before any work: before the reference workload, the first
stage or the first notebook, so that a fault it can see at once is named at once, with its fix, and never
after an hour of training as a traceback.

- :func:`check_scheduler`: ``--scheduler`` has the form of a Dask scheduler address (``tcp://HOST:PORT``,
  ``tls://HOST:PORT`` or ``HOST:PORT``) and something answers there within a few seconds;
- :func:`check_writable`: every folder the call writes (the results, the store of artifacts under
  ``$GEOVQ_HOME``, the executed book, a sweep's working folders) can be created and written.

Each raises :class:`EnvironmentFault` (a :class:`~geohelpers.config.ConfigError`), whose message names the
thing at fault and the fix; the runner prints it and exits with status 2, as for a bad parameter.
"""

from __future__ import annotations

import os
import socket
import tempfile
from pathlib import Path
from typing import Mapping

from .config import ConfigError

#: Seconds a scheduler has to accept a connection before the runner says that nothing answers.
SCHEDULER_TIMEOUT_S = 3.0
#: The schemes of a Dask scheduler address the runner accepts (a plain ``HOST:PORT`` means ``tcp``).
SCHEMES = ("tcp", "tls")
SCHEDULER_FORM = "a Dask scheduler address, tcp://HOST:PORT (e.g. tcp://127.0.0.1:8786)"


class EnvironmentFault(ConfigError):
    """Something outside the parameters (a folder, a scheduler) stops the call; the message names it and the fix."""


def parse_scheduler(address: str) -> tuple[str, str, int]:
    """``"tcp://10.0.0.5:8786"`` -> ``("tcp", "10.0.0.5", 8786)``; ``HOST:PORT`` is taken as tcp, an IPv6 host
    is written in brackets (``tcp://[::1]:8786``). :class:`EnvironmentFault` naming ``--scheduler`` and the
    expected form for anything else."""
    scheme, sep, rest = address.strip().partition("://")
    if not sep:
        scheme, rest = "tcp", address.strip()
    host, colon, port = rest.rpartition(":")
    host = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    if scheme not in SCHEMES or not colon or not host or "/" in host or not port.isdigit() or not 0 < int(port) < 65536:
        raise EnvironmentFault(f"--scheduler {address!r} is not {SCHEDULER_FORM}; allowed schemes: "
                               f"{', '.join(SCHEMES)}, a port from 1 to 65535, or leave --scheduler out for a "
                               f"LocalCluster on this machine")
    return scheme, host, int(port)


def check_scheduler(address: str, timeout: float = SCHEDULER_TIMEOUT_S) -> None:
    """:func:`parse_scheduler`, then a TCP connection to it within ``timeout`` seconds (a refused or silent
    address is named with what to do; nothing is sent to the scheduler)."""
    _, host, port = parse_scheduler(address)
    try:
        with socket.create_connection((host, port), timeout=timeout):
            pass
    except socket.timeout:
        why = f"nothing answered within {timeout:g} s"
    except OSError as err:  # refused, unknown host, unreachable network
        why = f"the connection failed ({err.strerror or err})"
    else:
        return
    raise EnvironmentFault(f"--scheduler {address!r}: {why}; start a scheduler there (`dask scheduler --port "
                           f"{port}` and its workers) or leave --scheduler out for a LocalCluster on this machine")


def check_writable(folders: Mapping[str, Path]) -> None:
    """Each folder of ``folders`` (what it is -> path) exists or can be made, and a file can be written in it
    (a temporary file, removed at once). :class:`EnvironmentFault` names the first that cannot, with the
    error the system gave and the fix (``$GEOVQ_HOME`` for the store and the results)."""
    for what, folder in folders.items():
        folder = Path(folder)
        try:
            folder.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=".geovq-writable-", dir=folder)
            os.close(fd)
            os.unlink(tmp)
        except OSError as err:
            home = os.environ.get("GEOVQ_HOME")
            if home and folder.resolve().is_relative_to(Path(home).resolve()):
                fix = f"$GEOVQ_HOME is {home!r}: point it at a writable folder, or unset it to use the project folder"
            elif home:
                fix = "make it writable (it is in the project folder, not under $GEOVQ_HOME)"
            else:
                fix = "make it writable, or set $GEOVQ_HOME to a writable folder for the store and the results"
            raise EnvironmentFault(f"{what} {folder} cannot be written ({err.strerror or type(err).__name__}); "
                                   f"{fix}") from None
