"""The one way the add-on runs long work: a worker that only computes, one running registry, one modal loop.

Every long operator — Animate from audio (:mod:`.speech.operators`), the Character sub-panel's Guess /
Fit / Transfer / Drive (:mod:`.character.operators`) and the preferences' "Download public model files"
(:mod:`.fetch_operator`) — is a :class:`JobOperator` whose work splits in three class methods::

    plan    = Op.prepare(context)                main thread: reads everything it needs from bpy into
                                                 plain data (arrays, names, paths) and checks it;
                                                 changes nothing
    result  = Op.compute(plan, progress)         ANY thread, never touches bpy: numpy + core only;
                                                 progress(fraction, stage) between steps
    outcome = Op.apply(scene, plan, result)      main thread: checks the scene again, writes inside
                                                 transaction.all_or_nothing; returns the INFO line, or an
                                                 object with ``summary()`` and ``warning``

Where a job runs (``SCOPE``): on the context's scene (``SCENE``), or app-wide (``APP``: the download, which
has no scene; ``apply`` then gets ``scene=None``). :data:`_running` is the ONE running registry: a scope key
(the scene's ``session_uid``, or :data:`APP`) → its live :class:`JobRun`. A second job on a busy key is
refused before anything starts (:class:`JobRun` raises, every operator's ``disabled_reason`` names the job
through :func:`busy_reason`); jobs on two scenes run side by side.

:class:`.worker.WorkerJob` runs ``compute`` in a daemon thread that only puts ``("PROGRESS", fraction, stage)``,
``("DONE", result)`` or ``("ERROR", exception)`` on a queue; ``cancel`` makes the next progress call raise
:class:`.worker.Cancelled`. :class:`JobRun` drains that queue from the main thread (:meth:`JobRun.step`, also
what tests call without a window). :class:`JobOperator` is the operator side: ``execute`` (Python, headless,
the redo panel) runs the three synchronously; ``invoke`` in a window starts a :class:`JobRun` and a 0.1 s
timer, ``modal`` shows the progress (the window manager's bar, the panel's bar from the scene's
``PROGRESS_GROUP``, the status bar for app-wide jobs) and applies the result in its last call, so one undo
step holds the whole run. One error path: a user error (:class:`~voca_addon.core.errors.VocaError`) is its
message, an OS error its text, anything else one line + a log file (:mod:`.reporting`); ``execute`` /
``invoke`` / ``modal`` are :func:`.reporting.guarded`. One cancel: Esc, the file being closed, Blender
quitting, the add-on being disabled (:func:`cancel_all`) — nothing is applied and the scene is untouched (the
worker stops at its next progress call; a core step without one finishes in the background and its result
is dropped). Saving the file while a job runs saves the scene as it was before the job: the result is
written in one main-thread call, never between two (a file reopened is never "running": the registry
lives in memory only). An autosave never catches a job half-applied: Blender's autosave timer
(``wm_autosave_timer`` in ``wm_files.cc``) tries again 10 ms later while any window has a modal operator
handler, and a job is one (``modal_handler_add``) until its last ``modal`` call has applied the result.

Contract: main thread (``bpy``); the worker (:mod:`.worker`) never touches bpy.
"""
from __future__ import annotations

from typing import Callable, Optional

import bpy

from ..core.errors import VocaError
from . import reporting
from .worker import Cancelled, WorkerJob

TIMER_STEP = 0.1                    # s between two drains of the worker's queue
SCENE, APP = "SCENE", "APP"         # a job's scope; APP is also the registry key of app-wide jobs
_running: dict = {}                 # scope key (scene session_uid, or APP) -> its live JobRun


def live(scene=None) -> "Optional[JobRun]":
    """The live run on ``scene`` (None: the app-wide one), or None."""
    return _running.get(APP if scene is None else scene.session_uid)


def is_running(scene) -> bool:
    """Whether a job runs on ``scene`` (any kind: Animate, a Character job)."""
    return scene is not None and scene.session_uid in _running


def progress_group(scene) -> str:
    """The ``PROGRESS_GROUP`` of the job running on ``scene`` ('' when none): which panel shows a bar."""
    run = live(scene) if scene is not None else None
    return run.op.PROGRESS_GROUP if run is not None else ""


def busy_reason(scene=None) -> Optional[str]:
    """Why nothing else may start on ``scene`` (None: app-wide): the live job's ``BUSY`` line, or None."""
    run = live(scene) if scene is not None or APP in _running else None
    return run.op.BUSY if run is not None else None


def cancel_all() -> int:
    """Cancel every live job and close it as cancelled (the file is closed, the add-on disabled): nothing is
    applied, no scene stays 'running'. Returns how many were live."""
    runs = list(_running.values())
    for run in runs:
        run.cancel()
        run.abort()
    return len(runs)


class JobRun:
    """One run of ``op`` (a :class:`JobOperator` subclass) driven from the main thread.

    Raises (before anything starts) what ``op.prepare`` raises, and a
    :class:`~voca_addon.core.errors.VocaError` naming the live job when its scope is busy."""

    def __init__(self, op, context):
        key = APP if op.SCOPE == APP else context.scene.session_uid
        if key in _running:
            raise VocaError(_running[key].op.BUSY)
        plan = op.prepare(context)                     # raises before anything starts
        self.op, self.plan, self.key = op, plan, key
        self.scene_uid = None if key == APP else key
        self.message: Optional[str] = None             # the INFO line once applied
        self.outcome = None                            # what op.apply returned
        self.error: Optional[BaseException] = None
        self.fraction, self.stage = 0.0, "starting"
        self.job = op.worker(plan)
        _running[key] = self
        try:
            self._status(self.scene(), 0.0, "starting")
            self.job.start()                           # may raise ("can't start new thread")
        except BaseException:
            self._close(self.scene(), "CANCELLED")     # never a scene left 'running' with no run
            raise

    def cancel(self) -> None:
        self.job.cancel()

    def abort(self) -> None:
        """Close the run as cancelled (an unexpected error in the modal loop, :func:`cancel_all`)."""
        if _running.get(self.key) is self:
            self._close(self.scene(), "CANCELLED")

    def scene(self):
        """The run's scene (found by its session_uid: even renamed), or None once deleted / app-wide."""
        if self.scene_uid is None:
            return None
        return next((s for s in bpy.data.scenes if s.session_uid == self.scene_uid), None)

    def _status(self, scene, fraction: float, stage: str) -> None:
        self.fraction, self.stage = fraction, stage
        group = getattr(scene, self.op.PROGRESS_GROUP, None) if scene is not None and self.op.PROGRESS_GROUP \
            else None
        if group is not None:
            group.progress, group.progress_stage = fraction, stage

    def step(self, context, report: Callable) -> str:
        """Drain the queue; returns 'RUNNING_MODAL', 'FINISHED' (applied) or 'CANCELLED'."""
        if _running.get(self.key) is not self:         # closed already (cancel_all): report once
            return "CANCELLED" if self.message is None else "FINISHED"
        scene = self.scene()
        if self.job.cancelled:
            return self._close(scene, self._failed(Cancelled("cancelled"), report))
        for message in self.job.drain():
            if message[0] == "PROGRESS":
                self._status(scene, message[1], message[2])
                context.window_manager.progress_update(message[1])
            elif message[0] == "ERROR":
                return self._close(scene, self._failed(message[1], report))
            elif message[0] == "DONE":
                return self._close(scene, self._apply(scene, message[1], report))
        return "RUNNING_MODAL"

    def _failed(self, exc: BaseException, report: Callable) -> str:
        self.error = exc
        if isinstance(exc, Cancelled):
            report({"WARNING"}, self.op.cancelled_text())
        elif isinstance(exc, OSError) and not isinstance(exc, VocaError):
            report({"ERROR"}, reporting.os_error_text(exc))
        else:
            reporting.report_error(report, exc, self.op.bl_idname)
        return "CANCELLED"

    def _apply(self, scene, result, report: Callable) -> str:
        if scene is None and self.key != APP:
            return self._failed(VocaError("The scene was deleted while VOCA was working; nothing was written."),
                                report)
        try:
            self.outcome = self.op.apply(scene, self.plan, result)     # the run's scene, not the window's now
        except Exception as exc:             # noqa: BLE001 — the transaction restored the scene; say why
            return self._failed(exc, report)
        self.message = reporting.report_done(report, self.outcome)
        return "FINISHED"

    def _close(self, scene, status: str) -> str:
        if _running.get(self.key) is self:
            del _running[self.key]
        self._status(scene, 1.0 if status == "FINISHED" else 0.0, "" if status == "FINISHED" else "cancelled")
        try:
            self.op.closed(bpy.context)
        except Exception as exc:             # noqa: BLE001 — a follow-up (a refresh) never hides the outcome
            reporting.report_error(lambda *_: None, exc, self.op.bl_idname)
        return status


class JobOperator:
    """Mixin for a ``bpy.types.Operator`` defining ``prepare`` / ``compute`` / ``apply`` (see the module)."""

    PROGRESS_GROUP = ""             # the scene's property group with ``progress`` / ``progress_stage``
    SCOPE = SCENE                   # SCENE: one job per scene; APP: one app-wide (no scene)
    BUSY = "VOCA is working on this scene (Esc cancels)."     # the reason others are refused meanwhile
    CANCELLED = ""                  # the WARNING line of a cancelled run ('' : "VOCA <label>: cancelled; …")

    @classmethod
    def cancelled_text(cls) -> str:
        return cls.CANCELLED or f"VOCA {cls.bl_label}: cancelled; nothing was changed."

    @classmethod
    def worker(cls, plan) -> WorkerJob:
        """The worker thread running ``compute(plan, progress)`` (not started)."""
        return WorkerJob(lambda progress: cls.compute(plan, progress), cls.bl_idname)

    @classmethod
    def closed(cls, context) -> None:
        """Called on the main thread after every run, whatever its outcome (default: nothing)."""

    @reporting.guarded
    def execute(self, context):
        wm = context.window_manager
        reason = busy_reason(None if self.SCOPE == APP else context.scene)
        if reason:
            self.report({"ERROR"}, reason)
            return {"CANCELLED"}

        def run():
            plan = self.prepare(context)
            wm.progress_begin(0.0, 1.0)
            try:
                result = self.compute(plan, lambda fraction, _stage: wm.progress_update(fraction))
            finally:
                wm.progress_end()
            return self.apply(None if self.SCOPE == APP else context.scene, plan, result)
        try:
            return reporting.run_action(self, run)
        finally:
            type(self).closed(context)

    @reporting.guarded
    def invoke(self, context, event):
        if bpy.app.background or context.window is None:
            return self.execute(context)
        try:
            run = JobRun(type(self), context)
        except VocaError as exc:
            self.report({"ERROR"}, str(exc))
            return {"CANCELLED"}
        except OSError as exc:
            self.report({"ERROR"}, reporting.os_error_text(exc))
            return {"CANCELLED"}
        self._run = run
        wm = context.window_manager
        wm.progress_begin(0.0, 1.0)
        self._timer = wm.event_timer_add(TIMER_STEP, window=context.window)
        wm.modal_handler_add(self)
        return {"RUNNING_MODAL"}

    def modal(self, context, event):
        if event.type == "ESC" and event.value == "PRESS":
            self._run.cancel()
        elif event.type != "TIMER":
            return {"PASS_THROUGH"}
        try:
            status = self._run.step(context, self.report)
        except Exception as exc:              # noqa: BLE001 — never a traceback popup, never a stuck timer
            reporting.report_error(self.report, exc, self.bl_idname)
            self._run.cancel()
            self._run.abort()                 # the run's own scene: not running, its bar reset
            status = "CANCELLED"
        if self._run.key == APP and context.workspace is not None and status == "RUNNING_MODAL":
            context.workspace.status_text_set(f"VOCA: {self._run.stage} {self._run.fraction:.0%} (Esc stops)")
        for area in context.screen.areas if context.screen is not None else ():
            if area.type == "VIEW_3D":
                area.tag_redraw()
        if status == "RUNNING_MODAL":
            return {"RUNNING_MODAL"}
        self._end(context)
        return {status}

    def cancel(self, context):          # Blender quits or the file is closed while running
        self._run.cancel()
        self._run.step(context, lambda *_: None)
        self._end(context)

    def _end(self, context) -> None:
        context.window_manager.event_timer_remove(self._timer)
        context.window_manager.progress_end()
        if getattr(self._run, "key", None) == APP and getattr(context, "workspace", None) is not None:
            context.workspace.status_text_set(None)


# ---------------------------------------------------------------------------- file and add-on events

@bpy.app.handlers.persistent
def _file_closing(*_args) -> None:
    """``load_pre``: the open file goes away — cancel the jobs on its scenes (their results would have no
    scene to go to); an app-wide job (the download) goes on."""
    for run in [r for r in _running.values() if r.key != APP]:
        run.cancel()
        run.abort()


def register() -> None:
    if _file_closing not in bpy.app.handlers.load_pre:
        bpy.app.handlers.load_pre.append(_file_closing)


def unregister() -> None:
    """The add-on is disabled: cancel every live job (their operators' classes go away)."""
    while _file_closing in bpy.app.handlers.load_pre:
        bpy.app.handlers.load_pre.remove(_file_closing)
    cancel_all()
