"""The batch's processes: Ctrl-C wherever it lands, and the start of a ``--workers`` process.

Ctrl-C (SIGINT) stops a batch with exit 130 whatever it interrupts. Python raises ``KeyboardInterrupt``
where the main thread is, and some code there catches it: Blender's glTF / FBX operators report it as an
export error (with its traceback), ``bpy``'s start-up prints it and goes on. So SIGINT is *recorded* as it
arrives (:func:`recording_interrupts`), and :func:`stop_if_interrupted` — after each clip's files, between
clips and groups — raises the ``KeyboardInterrupt`` such code swallowed (a Ctrl-C while ``bpy`` loads is held
by :func:`voca_addon.cli.common.import_bpy`); a clip
whose export failed after SIGINT is the interrupt, not a failed clip. A second SIGINT is ignored while the
batch cleans up (a clip's outputs removed, the summary written, the workers stopped).

:func:`init_process` prepares a spawned ``--workers`` process (``sys.path``, warnings, SIGINT).

Contract: stdlib (+ :mod:`voca_addon.cli.common` and the model loader's warning class in
:func:`init_process`); the handlers are installed from the main thread only.
"""
from __future__ import annotations

import contextlib
import io
import os
import signal
import sys
import threading
import warnings

_INTERRUPTED = threading.Event()
_RUNNING = threading.Event()        # a --workers process: a group is being done


def _on_interrupt(signum, frame):
    """SIGINT: remember that it came, then raise as Python's own handler does; a second one is ignored (the
    batch is stopping: its clean-up — a clip's outputs removed, the summary, the workers ended — is not cut
    short; ``timeout -s INT`` and a second Ctrl-C send two)."""
    if not _INTERRUPTED.is_set():
        _INTERRUPTED.set()
        raise KeyboardInterrupt


def _on_worker_interrupt(signum, frame):
    """SIGINT in a ``--workers`` process (Ctrl-C reaches the whole process group, and the batch process
    passes it on): stop the group being done; an idle process only remembers it (its ``KeyboardInterrupt``
    there printed a traceback) and stops the next group it is given before that begins."""
    if _RUNNING.is_set():
        _on_interrupt(signum, frame)
    _INTERRUPTED.set()


@contextlib.contextmanager
def recording_interrupts():
    """While inside, SIGINT is remembered (:func:`interrupted`) before it raises ``KeyboardInterrupt``; the
    previous handler is restored after. Main thread only (elsewhere it does nothing)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    _INTERRUPTED.clear()
    previous = signal.signal(signal.SIGINT, _on_interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def interrupted() -> bool:
    """Whether SIGINT arrived in this process while :func:`recording_interrupts` was on."""
    return _INTERRUPTED.is_set()


def stop_if_interrupted() -> None:
    """``KeyboardInterrupt`` when SIGINT came and something swallowed its exception (Blender's start-up
    loading its add-ons, an exporter): called after each clip's files, between clips and groups."""
    if _INTERRUPTED.is_set():
        raise KeyboardInterrupt


def _shadows_bpy(folder: str) -> bool:
    """A folder holding Blender's Python ``bpy`` package (``bpy/5.0/scripts/modules``), which only runs inside
    Blender (it imports ``_bpy``) and would shadow the ``bpy`` module."""
    return os.path.isfile(os.path.join(folder or ".", "bpy", "__init__.py"))


def init_process(blender: bool = False) -> None:
    """Prepare a spawned ``--workers`` process. Importing the ``bpy`` module puts Blender's script folders at
    the front of ``sys.path`` and a spawned process starts with its parent's ``sys.path``: its own ``import
    bpy`` then found Blender's script package instead of the module (*No module named '_bpy'*, every clip of
    a Blender format failed). The module adds its folders back when imported here. The add-on's warnings
    are one ``warning:`` line, the model file's warning left to the batch process (which said it once), and
    SIGINT is recorded as in the batch process. ``blender``: import ``bpy`` now, before any group (its
    start-up catches a ``KeyboardInterrupt`` and prints it; an idle process ignores SIGINT)."""
    sys.path[:] = [p for p in sys.path if not _shadows_bpy(p)]
    from .. import common
    warnings.showwarning = common.show_warning
    from ...core.models.modelfiles import NonReleaseGraphWarning
    warnings.filterwarnings("ignore", category=NonReleaseGraphWarning)
    _INTERRUPTED.clear()
    signal.signal(signal.SIGINT, _on_worker_interrupt)
    if blender:
        from ...blender.exports import engines  # noqa: F401 - bpy and the exporters, loaded while idle
        from ...blender import compat
        # The bpy module's teardown at exit crashes (4.2) or hangs (4.5) once classes were registered (the
        # exporters register theirs): a worker that hung there kept the batch waiting for it forever. Leave
        # without it, as the command line itself does.
        compat.exit_without_teardown()


@contextlib.contextmanager
def running_group():
    """While inside, this process is doing a group (a ``--workers`` process acts on SIGINT only then)."""
    _RUNNING.set()
    try:
        yield
    finally:
        _RUNNING.clear()


@contextlib.contextmanager
def stderr_unless_interrupted():
    """Hold what is written to ``sys.stderr`` while inside, and show it after unless SIGINT came: Blender's
    exporters print the traceback of every exception they catch, Ctrl-C's ``KeyboardInterrupt`` included
    (the batch then says it in one line). Main thread (the phone passes have ended)."""
    held, saved = io.StringIO(), sys.stderr
    sys.stderr = held
    try:
        yield
    finally:
        sys.stderr = saved
        if held.getvalue() and not interrupted():
            saved.write(held.getvalue())
