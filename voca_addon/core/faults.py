"""Fault injection: named points where a test may kill this process, to prove nothing is ever lost.

The core calls :func:`point` where a run passes a stage that matters for its files:

=============  ==================================================================================
``claim``      a destination was claimed (:func:`voca_addon.core.claims.claim`): before computing
``progress``   each progress step while computing (:class:`voca_addon.core.progress.ProgressPrinter`)
``compute``    each clip of a batch group computed (:func:`voca_addon.core.batch.animate_group`)
``write``      a write into a staged temporary begins (:meth:`voca_addon.core.outputs.Staged.temp`;
               for a ``.blend``: just before Blender saves it)
``npz-block``  a block of an ``.npz`` member was written (the temporary is partly written)
``written``    a temporary is whole (:func:`voca_addon.core.outputs.write_exact`, after the save)
``commit``     every temporary of a run is whole, nothing renamed yet (:meth:`Staged.commit`)
``rename``     just before a temporary is renamed over its final name
``renamed``    just after
=============  ==================================================================================

Nothing happens unless the environment names a point when the core is first imported:

- ``VOCA_FAULT=NAME:NTH:SIGNAL[:DELAY]`` — at the NTH hit of point NAME (1-based, counted per process)
  send SIGNAL (``KILL``, ``INT`` or a number) to this process; with DELAY (seconds) a timer sends it
  that long after the hit, so that it lands inside the C code that follows (Blender's ``.blend`` save).
- ``VOCA_FAULT_LOG=FILE`` — append each hit's name to FILE, one a line (a sweep counts the hits of a
  command with it, then kills at the 1st, 2nd and last of each).

Both variables are removed from the environment once read, so the child processes a run starts (the
phone pass) are not killed in its place. Unset, :func:`point` is one comparison with None.
``tools/fault_sweep.py`` and ``tests/core/test_fault_injection.py`` use it.

Contract: stdlib only; any thread (a signal is delivered to the whole process; SIGINT becomes
``KeyboardInterrupt`` in the main thread).
"""
from __future__ import annotations

import os
import sys
import signal
import threading
from typing import Dict, NamedTuple, Optional

ENV = "VOCA_FAULT"
LOG_ENV = "VOCA_FAULT_LOG"
POINTS = ("claim", "progress", "compute", "write", "npz-block", "written", "commit", "rename", "renamed")


class Plan(NamedTuple):
    """Which hit of which point sends which signal (``delay`` in seconds after the hit)."""
    name: str
    nth: int
    signum: int
    delay: float = 0.0


def parse(text: str) -> Plan:
    """``"write:2:KILL"`` → Plan('write', 2, SIGKILL, 0.0); ValueError for anything else."""
    parts = text.split(":")
    if len(parts) not in (3, 4) or parts[0] not in POINTS:
        raise ValueError(f"{ENV}={text!r}: write NAME:NTH:SIGNAL[:DELAY], NAME one of {', '.join(POINTS)}")
    sig = parts[2].upper().removeprefix("SIG")
    if not (sig.isdigit() or isinstance(getattr(signal, "SIG" + sig, None), int)):
        raise ValueError(f"{ENV}={text!r}: {parts[2]!r} is not a signal (KILL, INT or a number)")
    signum = int(sig) if sig.isdigit() else int(getattr(signal, "SIG" + sig))
    nth = int(parts[1])
    if nth < 1:
        raise ValueError(f"{ENV}={text!r}: NTH counts from 1")
    return Plan(parts[0], nth, signum, float(parts[3]) if len(parts) == 4 else 0.0)


_plan: Optional[Plan] = None
_log: Optional[str] = None
_counts: Dict[str, int] = {}
_lock = threading.Lock()


def _configure(environ=os.environ) -> None:
    """Read (and remove) the two variables. A malformed plan is said in one line and ignored: a stray
    variable must never stop the add-on or a command (``parse`` itself raises, for the tests)."""
    global _plan, _log
    text, log = environ.pop(ENV, None), environ.pop(LOG_ENV, None)
    try:
        _plan = parse(text) if text else None
    except ValueError as exc:
        _plan = None
        print(f"warning: {exc}; no fault is injected", file=sys.stderr)
    _log = log or None


def point(name: str) -> None:
    """A stage named ``name`` is passed: count it, log it, send the planned signal at the planned hit."""
    if _plan is None and _log is None:
        return
    _hit(name)


def _hit(name: str) -> None:
    with _lock:
        count = _counts[name] = _counts.get(name, 0) + 1
    if _log is not None:
        with open(_log, "a", encoding="ascii") as handle:
            handle.write(name + "\n")
    plan = _plan
    if plan is not None and plan.name == name and plan.nth == count:
        if plan.delay > 0:
            timer = threading.Timer(plan.delay, os.kill, (os.getpid(), plan.signum))
            timer.daemon = True
            timer.start()
        else:
            os.kill(os.getpid(), plan.signum)


_configure()
