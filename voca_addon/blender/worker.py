"""A worker thread that only computes, and the queue it reports through: the one protocol of every long
operator (Animate from audio, the Character sub-panel's Fit / Transfer / Drive).

:class:`WorkerJob` runs ``work(progress)`` in a daemon thread. The thread puts only
``("PROGRESS", fraction, stage)`` messages, then one ``("DONE", result)`` or ``("ERROR", exception)``, on
:attr:`WorkerJob.messages`; the main thread :meth:`~WorkerJob.drain`\\ s them on a timer and is the only one
to touch Blender. :meth:`~WorkerJob.cancel` makes the worker's next ``progress`` call raise
:class:`Cancelled` (and a result that comes after a cancel is turned into that error).

Contract: no ``bpy``; any thread.
"""
from __future__ import annotations

import queue
import threading
from typing import Callable, Optional


class Cancelled(Exception):
    """The user cancelled a run (Esc); raised from the progress callback inside the worker."""


class WorkerJob:
    """``work(progress)`` in a daemon thread named ``voca-<name>``; results only through :attr:`messages`."""

    def __init__(self, work: Callable, name: str):
        self.messages: "queue.Queue" = queue.Queue()
        self._work, self._cancel = work, threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"voca-{name}", daemon=True)

    def start(self) -> "WorkerJob":
        self._thread.start()
        return self

    def cancel(self) -> None:
        self._cancel.set()

    @property
    def cancelled(self) -> bool:
        return self._cancel.is_set()

    def is_alive(self) -> bool:
        return self._thread.is_alive()

    def join(self, timeout: Optional[float] = None) -> None:
        self._thread.join(timeout)

    def drain(self) -> list:
        """Every message queued so far (never blocks)."""
        out = []
        while True:
            try:
                out.append(self.messages.get_nowait())
            except queue.Empty:
                return out

    def _progress(self, fraction: float, stage: str) -> None:
        if self._cancel.is_set():
            raise Cancelled("cancelled")
        self.messages.put(("PROGRESS", float(fraction), stage))

    def _run(self) -> None:
        try:
            result = self._work(self._progress)
            if self._cancel.is_set():
                raise Cancelled("cancelled")
        except BaseException as exc:        # handed to the main thread, which reports it
            self.messages.put(("ERROR", exc))
        else:
            self.messages.put(("DONE", result))
