"""Preferences button "Download public model files": :func:`voca_addon.core.models.fetch.fetch` in Blender.

Honours Blender's "Allow Online Access" (Preferences › System › Network; ``bpy.app.online_access``):
while it is off the button is grey and says why, and nothing connects. The extension manifest declares
the ``network`` permission.

Thread rule (docs/architecture.md): ``invoke`` starts the download in a daemon worker thread that never
touches ``bpy``; it puts ``("PROGRESS", fraction, stage)``, then ``("DONE", lines)`` or
``("ERROR", exception)`` on a queue, which a modal timer drains on the main thread. Esc stops the
download at the next block (the partial file is kept and the next run resumes it). ``execute`` (scripts,
background mode) runs the same download synchronously. When done, the preferences' file checks run
again, so the status lines show the new files.

Contract: main thread for everything but :meth:`_Job.run`.
"""
from __future__ import annotations

import queue
import threading
from typing import Optional

import bpy

from ..core.errors import VocaError
from ..core.models import fetch
from . import preferences, reporting

TIMER_S = 0.2                          # s between queue drains
FILES = fetch.PUBLIC_FILES             # what the button fetches (tests point it at a local server)
OFFLINE_REASON = ("Online access is off: allow it in Preferences › System › Network › Allow Online Access, "
                  "or run 'python -m voca_addon models fetch' in a terminal.")


class Stopped(Exception):
    """The user pressed Esc; raised from the progress callback inside the worker."""


class _Job:
    """One download in a worker thread; results only through :attr:`messages`."""

    def __init__(self, folder):
        self.folder, self.messages, self.stop = folder, queue.Queue(), threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)

    def progress(self, fraction: float, stage: str) -> None:
        if self.stop.is_set():
            raise Stopped()
        self.messages.put(("PROGRESS", fraction, stage))

    def run(self) -> None:
        try:
            self.messages.put(("DONE", fetch.fetch(self.folder, FILES, self.progress)))
        except BaseException as exc:    # noqa: BLE001 — handed to the main thread, which reports it
            self.messages.put(("ERROR", exc))


def _finish(operator, context, outcome) -> set:
    """Report the outcome and re-run the preferences' file checks."""
    prefs = preferences.addon_preferences(context)
    if prefs is not None:
        for which in preferences.CHECKS:
            preferences.refresh(prefs, which)
    if isinstance(outcome, Stopped):
        operator.report({"WARNING"}, "Download stopped; press the button again to resume it.")
        return {"CANCELLED"}
    if isinstance(outcome, VocaError):
        operator.report({"ERROR"}, str(outcome))
        return {"CANCELLED"}
    if isinstance(outcome, BaseException):
        raise outcome
    operator.report({"INFO"}, "; ".join(outcome))
    return {"FINISHED"}


class VOCA_OT_fetch_models(bpy.types.Operator):
    """Download the public model files (DeepSpeech v0.1.0 graph, FLAME template and texture) into the
    model folder ($VOCA_MODEL_DIR or ~/voca_models), resuming interrupted downloads and checking checksums"""

    bl_idname = "voca.fetch_models"
    bl_label = "Download public model files"

    _job: Optional[_Job] = None
    _timer = None

    @classmethod
    def disabled_reason(cls, context) -> Optional[str]:
        if not bpy.app.online_access:
            return OFFLINE_REASON
        return None

    poll = classmethod(reporting.poll_by_reason)

    def execute(self, context):
        try:
            outcome = fetch.fetch(None, FILES)
        except VocaError as exc:
            outcome = exc
        return _finish(self, context, outcome)

    def invoke(self, context, event):
        self._job = _Job(None)
        self._job.thread.start()
        wm = context.window_manager
        self._timer = wm.event_timer_add(TIMER_S, window=context.window)
        wm.modal_handler_add(self)
        wm.progress_begin(0, 100)
        return {"RUNNING_MODAL"}

    def modal(self, context, event):
        if event.type == "ESC":
            self._job.stop.set()
        if event.type != "TIMER":
            return {"PASS_THROUGH"}
        wm = context.window_manager
        while True:
            try:
                message = self._job.messages.get_nowait()
            except queue.Empty:
                return {"RUNNING_MODAL"}
            if message[0] == "PROGRESS":
                wm.progress_update(int(100 * message[1]))
                context.workspace.status_text_set(f"VOCA: {message[2]} {100 * message[1]:.0f}% (Esc stops)")
                continue
            wm.event_timer_remove(self._timer)
            wm.progress_end()
            context.workspace.status_text_set(None)
            return _finish(self, context, message[1])


CLASSES = (VOCA_OT_fetch_models,)
