"""Outputs are claimed, not just checked: one run at a time writes a destination.

A command run (:func:`claiming`, entered by the CLI's guard) takes each destination it will write
before it computes anything (:func:`claim`, called by :func:`voca_addon.core.outputs.check_output`): an
exclusive create of a small hidden file beside the destination, ``.voca-claim-DIGEST.json``, holding who
claimed it — host name, process id, the process's start time, when, and the command line. A second run
that wants the same destination while the first is alive is refused at once with one line naming the
other run, ``--overwrite`` or not (two runs into one ``--out`` used to both exit 0, the second silently
replacing the first).

Claims of runs that are gone are recognised and cleared: on this host when the process no longer exists
(or another process has its id: the start time differs); from another host — a Dask worker writing to a
shared folder — when the claim has not been renewed for :data:`EXPIRY_S` (a running claimant renews its
claims every :data:`RENEW_S` by touching them). Leaving :func:`claiming` releases every claim this run
took, on every exit path; a ``kill -9`` leaves its claim for the next run to clear.

Outside :func:`claiming` (Blender's operators, library use) :func:`claim` does nothing: Blender's own
undo and the add-on's transactions protect a scene, and one window runs one job per scene. A job inside
a long-lived process that writes shared files (Blender's model download) claims its folder alone with
:func:`holding`, which turns nothing on for the rest of the process.

Contract: stdlib only; thread-safe; raises :class:`~voca_addon.core.errors.InputError`.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import socket
import sys
import threading
import time
from pathlib import Path
from typing import Dict, Iterator, Optional

from . import faults
from .errors import InputError

PREFIX = ".voca-claim-"
EXPIRY_S = 180.0          # a claim from another host not renewed for this long is stale
RENEW_S = 30.0            # how often a running claimant renews (touches) its claims

_lock = threading.Lock()
_active: Optional[Dict[Path, Path]] = None      # destination → claim file, while a run is claiming
_renewer: Optional[threading.Event] = None


def digest(text: str, size: int) -> str:
    """A short hex digest of ``text`` (any name, non-Latin or not) for hidden file names."""
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:size]


HOST_TOKEN = digest(socket.gethostname(), 6)      # this host, in temporary file names


def claim_path(dest: os.PathLike) -> Path:
    """The claim file of ``dest`` (beside it, hidden, a fixed short name per destination name)."""
    dest = Path(os.path.abspath(os.fspath(dest)))
    return dest.with_name(f"{PREFIX}{digest(dest.name, 16)}.json")


def _start_time(pid: int) -> Optional[str]:
    """The process's start time as the kernel counts it (Linux), to tell a reused process id apart."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            return handle.read().rsplit(b")", 1)[1].split()[19].decode()
    except (OSError, IndexError):
        return None


def _me() -> dict:
    return {"host": socket.gethostname(), "pid": os.getpid(), "start": _start_time(os.getpid()),
            "since": time.time(), "command": " ".join(os.path.basename(a) if i == 0 else a
                                                       for i, a in enumerate(sys.argv))[:300]}


def process_gone(pid, start: Optional[str] = None) -> bool:
    """Whether process ``pid`` of this host has ended (or its id now belongs to a process started at
    another time than ``start``). Unknown (not a pid, another user's process): not gone."""
    try:
        pid = int(pid)
    except (TypeError, ValueError):
        return False
    if os.name == "nt":                 # os.kill(pid, 0) would *terminate* it there (TerminateProcess)
        return _windows_process_gone(pid)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except (PermissionError, OSError):
        return False
    started = _start_time(pid)
    return start is not None and started is not None and started != start



def _windows_process_gone(pid: int) -> bool:
    """Windows: ``OpenProcess`` + ``GetExitCodeProcess`` (never a signal). A process id no process has → gone;
    one still running (exit code STILL_ACTIVE) or not ours to ask → not gone."""
    import ctypes
    query, still_active, invalid_parameter = 0x1000, 259, 87     # PROCESS_QUERY_LIMITED_INFORMATION, …
    kernel32 = ctypes.WinDLL("kernel32", use_last_error=True)
    handle = kernel32.OpenProcess(query, False, pid)
    if not handle:
        return ctypes.get_last_error() == invalid_parameter       # no such process (access denied: alive)
    try:
        code = ctypes.c_ulong()
        if not kernel32.GetExitCodeProcess(handle, ctypes.byref(code)):
            return False
        return code.value != still_active
    finally:
        kernel32.CloseHandle(handle)

def _alive(owner: dict) -> bool:
    """Whether the run that wrote ``owner`` may still be running (module docstring)."""
    if owner.get("host") != socket.gethostname():
        return True                                             # judged by the claim's age instead
    return not process_gone(owner.get("pid"), owner.get("start"))


def _stale(path: Path, owner: Optional[dict]) -> bool:
    try:
        age = time.time() - path.stat().st_mtime
    except FileNotFoundError:
        return True
    if owner is None:                                           # unreadable: a half-written claim
        return age > EXPIRY_S
    if owner.get("host") != socket.gethostname():
        return age > EXPIRY_S
    return not _alive(owner)


def _read(path: Path) -> Optional[dict]:
    try:
        owner = json.loads(path.read_text(encoding="utf-8"))
        return owner if isinstance(owner, dict) else None
    except (OSError, ValueError):
        return None


def _describe(owner: Optional[dict], path: Path) -> str:
    if owner is None:
        return f"another run (its claim '{path.name}' is being written)"
    since = time.strftime("%H:%M:%S", time.localtime(float(owner.get("since", 0))))
    return (f"another run: '{owner.get('command', '?')}' (process {owner.get('pid')} on "
            f"{owner.get('host')}, since {since})")


def claim(dest: os.PathLike) -> None:
    """Claim ``dest`` for this run (no-op outside :func:`claiming`, or when this run holds it already).

    Raises
    ------
    InputError
        Another live run holds ``dest``: the message names it and what to do.
    """
    dest = Path(os.path.abspath(os.fspath(dest)))
    with _lock:
        if _active is None or dest in _active:
            return
        _active[dest] = _take(dest)
    faults.point("claim")                                       # taken: the run may be killed from here on


def _take(dest: Path) -> Path:
    """Create ``dest``'s claim file exclusively (a stale one cleared first) → its path; InputError when a live
    run holds it. Called with ``_lock`` held."""
    path = claim_path(dest)
    mine = json.dumps(_me()).encode("utf-8")
    for _ in range(3):
        try:
            handle = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            owner = _read(path)
            if not _stale(path, owner):
                raise InputError(f"'{dest}' is being written by {_describe(owner, path)}. Wait for it to "
                                 "finish, or choose another name.") from None
            with contextlib.suppress(FileNotFoundError):
                path.unlink()                                   # a killed run's claim: cleared
            continue
        except OSError as exc:
            raise InputError(f"cannot write '{dest}': {exc.strerror or exc}.") from None
        try:
            with os.fdopen(handle, "wb") as out:
                out.write(mine)
        except OSError as exc:                                  # a full disk: no half-written claim left
            with contextlib.suppress(OSError):
                path.unlink()
            raise InputError(f"cannot write '{dest}': {exc.strerror or exc} in '{dest.parent}'. Free some "
                             "space there or choose another folder.") from None
        return path
    raise InputError(f"'{dest}' is claimed and released by other runs in turn; try again.")


@contextlib.contextmanager
def holding(dest: os.PathLike) -> Iterator[Path]:
    """``dest`` claimed on its own for the block, in any process and thread (a job inside Blender, which must
    not turn :func:`claiming` on for the whole process): refused like :func:`claim` when another live run
    holds it, renewed every :data:`RENEW_S`, released on every exit path."""
    dest = Path(os.path.abspath(os.fspath(dest)))
    with _lock:
        path = _take(dest)
    faults.point("claim")
    stop = threading.Event()

    def renew():
        while not stop.wait(RENEW_S):
            with contextlib.suppress(OSError):
                os.utime(path)
    threading.Thread(target=renew, name="voca-claim", daemon=True).start()
    try:
        yield dest
    finally:
        stop.set()
        _unlink_if_mine(path)

def held() -> list:
    """The destinations this run has claimed so far (absolute paths, in claim order; empty outside a run)."""
    with _lock:
        return list(_active or ())


def _unlink_if_mine(path: Path) -> None:
    owner = _read(path)
    if owner is not None and owner.get("pid") == os.getpid() and owner.get("host") == socket.gethostname():
        with contextlib.suppress(OSError):
            path.unlink()


def release(dest: os.PathLike) -> None:
    """Give ``dest`` back before the run ends (no-op when this run does not hold it): a run that made the
    folder holding the claim file can then remove that folder again."""
    dest = Path(os.path.abspath(os.fspath(dest)))
    with _lock:
        path = _active.pop(dest, None) if _active is not None else None
    if path is not None:
        _unlink_if_mine(path)


def _release_all() -> None:
    global _active
    with _lock:
        held, _active = _active or {}, None
    for path in held.values():
        _unlink_if_mine(path)


def _renew(stop: threading.Event) -> None:
    while not stop.wait(RENEW_S):
        with _lock:
            held = list((_active or {}).values())
        for path in held:
            with contextlib.suppress(OSError):
                os.utime(path)


@contextlib.contextmanager
def claiming() -> Iterator[None]:
    """Within this block :func:`claim` takes destinations; leaving it releases them all (every exit path)."""
    global _active, _renewer
    with _lock:
        nested = _active is not None
        if not nested:
            _active, _renewer = {}, threading.Event()
            threading.Thread(target=_renew, args=(_renewer,), name="voca-claims", daemon=True).start()
    try:
        yield
    finally:
        if not nested:
            _renewer.set()
            _release_all()
