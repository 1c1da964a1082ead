"""Log files for unexpected (non-user) errors: the traceback goes to a file, the user sees one line.

Used by the command line (:func:`voca_addon.cli.common.run_guarded`) and the Blender operators: a
:class:`~voca_addon.core.errors.VocaError` is the user's to fix and is printed as is; anything else is a
bug of the add-on, so its traceback is written here and the user gets the log's path to attach to a report.

Folder (first that applies): ``$VOCA_LOG_DIR``; Windows ``%LOCALAPPDATA%\\voca_addon\\logs``; macOS
``~/Library/Logs/voca_addon``; else ``$XDG_STATE_HOME/voca_addon/logs`` (default
``~/.local/state/voca_addon/logs``). When that folder cannot be written, the system's temporary folder.
The newest :data:`KEEP_LOGS` logs are kept; older ones are deleted.

Contract: stdlib only; never raises (a log that cannot be written anywhere returns ``None``); safe on
any thread (one file per call, named by time, process and a counter).
"""
from __future__ import annotations

import datetime
import itertools
import os
import platform
import sys
import tempfile
import traceback
from pathlib import Path
from typing import Optional

LOG_PREFIX = "voca-error-"
KEEP_LOGS = 20                       # newest logs kept in the folder
_COUNTER = itertools.count()


def log_dir() -> Path:
    """The per-user folder for error logs (see the module docstring; not created here)."""
    env = os.environ.get("VOCA_LOG_DIR")
    if env:
        return Path(os.path.expanduser(env))
    if sys.platform == "win32" and os.environ.get("LOCALAPPDATA"):
        return Path(os.environ["LOCALAPPDATA"]) / "voca_addon" / "logs"
    if sys.platform == "darwin":
        return Path.home() / "Library" / "Logs" / "voca_addon"
    state = os.environ.get("XDG_STATE_HOME")
    return (Path(state) if state else Path.home() / ".local" / "state") / "voca_addon" / "logs"


def _report_text(exc: BaseException, context: str) -> str:
    lines = [f"time: {datetime.datetime.now().astimezone().isoformat(timespec='seconds')}",
             f"context: {context or '-'}",
             f"argv: {sys.argv!r}",
             f"python: {sys.version.split()[0]} ({platform.platform()})"]
    bpy = sys.modules.get("bpy")
    version = getattr(getattr(bpy, "app", None), "version_string", None)
    if version:
        lines.append(f"blender: {version}")
    trace = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    return "\n".join(lines) + "\n\n" + trace


def _prune(folder: Path) -> None:
    try:
        logs = sorted(folder.glob(LOG_PREFIX + "*.log"), key=lambda p: p.stat().st_mtime)
        for old in logs[:-KEEP_LOGS]:
            old.unlink()
    except OSError:
        pass                                   # pruning is housekeeping only


def write_error_log(exc: BaseException, context: str = "") -> Optional[Path]:
    """Write ``exc``'s traceback (with time, command line, Python/Blender version) to a new log file.

    Parameters
    ----------
    exc : BaseException
        The unexpected error, with its ``__traceback__``.
    context : str
        What was running (e.g. ``"python -m voca_addon infer"``), written at the top of the log.

    Returns
    -------
    Path or None
        The log file written (in :func:`log_dir`, else the temporary folder); None when neither is
        writable.
    """
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    name = f"{LOG_PREFIX}{stamp}-{os.getpid()}-{next(_COUNTER)}.log"
    text = _report_text(exc, context)
    for folder in (log_dir(), Path(tempfile.gettempdir()) / "voca_addon-logs"):
        try:
            folder.mkdir(parents=True, exist_ok=True)
            path = folder / name
            path.write_text(text, encoding="utf-8")
        except OSError:
            continue
        _prune(folder)
        return path
    return None


def one_line(exc: BaseException, log: Optional[Path]) -> str:
    """The single line shown to the user for an unexpected error and its log file."""
    detail = " ".join(str(exc).split())[:200]
    where = f"the details are in {log}" if log else "no log file could be written"
    return (f"internal error ({type(exc).__name__}{': ' + detail if detail else ''}); this is a bug in "
            f"the VOCA add-on, not in your files: {where} (please attach it to a bug report)")
