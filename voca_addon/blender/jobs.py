"""Long operator work off Blender's main thread: a worker that only computes, a queue, a modal loop.

The pattern of Animate from audio (:mod:`.operators`, :class:`.pipeline.AnimateJob`), for operators whose
work splits in three class methods::

    plan   = Op.prepare(context)                 main thread: reads everything it needs from bpy into
                                                 plain data (arrays, names, paths) and checks it;
                                                 changes nothing
    result = Op.compute(plan, progress)          ANY thread, never touches bpy: numpy + core only;
                                                 progress(fraction, stage) between steps
    line   = Op.apply(scene, plan, result)       main thread: checks the scene again, writes inside
                                                 transaction.all_or_nothing, returns the INFO line

:class:`.worker.WorkerJob` (Animate's protocol) runs ``compute`` in a daemon thread that only puts
``("PROGRESS", fraction, stage)``, ``("DONE", result)`` or ``("ERROR", exception)`` on a queue; its
``cancel`` makes the next progress call raise :class:`.worker.Cancelled`. :class:`JobRun` drains that
queue from the main thread (:meth:`JobRun.step`, also what tests call without a window). :class:`JobOperator` is the operator side:
``execute`` (Python, headless, the redo panel) runs the three synchronously; ``invoke`` in a window
starts a :class:`JobRun` and a 0.1 s timer, ``modal`` shows the progress (the window manager's and the
panel's bar from :data:`PROGRESS_GROUP` of the scene) and applies the result in its last call, so one
undo step holds the whole run. Esc ends the operator at once: nothing is applied and the scene is
untouched (the worker stops at its next progress call; a core step without one finishes in the
background and its result is dropped).

Contract: main thread (``bpy``); the worker (:mod:`.worker`) never touches bpy.
"""
from __future__ import annotations

from typing import Callable, Optional

import bpy

from ..core.errors import VocaError
from . import reporting
from .worker import Cancelled, WorkerJob

TIMER_STEP = 0.1                    # s between two drains of the worker's queue
_running: set = set()               # session_uid of the scenes with a live JobRun


def is_running(scene) -> bool:
    return scene is not None and scene.session_uid in _running


class JobRun:
    """One run of ``op`` (a :class:`JobOperator` subclass) driven from the main thread."""

    def __init__(self, op, context):
        plan = op.prepare(context)                     # raises before anything starts
        self.op, self.plan, self.scene_uid = op, plan, context.scene.session_uid
        self.message: Optional[str] = None
        self.error: Optional[BaseException] = None
        self.job = WorkerJob(lambda progress: op.compute(plan, progress), op.bl_idname)
        _running.add(self.scene_uid)
        try:
            self._status(context.scene, 0.0, "starting")
            self.job.start()                           # may raise ("can't start new thread")
        except BaseException:
            self._close(context.scene, "CANCELLED")    # never a scene left 'running' with no run
            raise

    def cancel(self) -> None:
        self.job.cancel()

    def abort(self) -> None:
        """Close the run as cancelled after an unexpected error in the modal loop (its own scene's bar)."""
        self._close(self.scene(), "CANCELLED")

    def scene(self):
        """The run's scene (found by its session_uid: even renamed), or None once deleted."""
        return next((s for s in bpy.data.scenes if s.session_uid == self.scene_uid), None)

    def _status(self, scene, fraction: float, stage: str) -> None:
        group = getattr(scene, self.op.PROGRESS_GROUP, None) if scene is not None else None
        if group is not None:
            group.progress, group.progress_stage = fraction, stage

    def step(self, context, report: Callable) -> str:
        """Drain the queue; returns 'RUNNING_MODAL', 'FINISHED' (applied) or 'CANCELLED'."""
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
            report({"WARNING"}, f"VOCA {self.op.bl_label}: cancelled; nothing was changed.")
        elif isinstance(exc, OSError) and not isinstance(exc, VocaError):
            report({"ERROR"}, os_error_text(exc))
        else:
            reporting.report_error(report, exc, self.op.bl_idname)
        return "CANCELLED"

    def _apply(self, scene, result, report: Callable) -> str:
        if scene is None:
            return self._failed(VocaError("The scene was deleted while VOCA was working; nothing was written."),
                                report)
        try:
            self.message = self.op.apply(scene, self.plan, result)     # the run's scene, not the window's now
        except Exception as exc:             # noqa: BLE001 — the transaction restored the scene; say why
            return self._failed(exc, report)
        report({"INFO"}, self.message)
        return "FINISHED"

    def _close(self, scene, status: str) -> str:
        _running.discard(self.scene_uid)
        if scene is not None:
            self._status(scene, 1.0 if status == "FINISHED" else 0.0, "" if status == "FINISHED" else "cancelled")
        return status


class ModalRunOperator:
    """Mixin: the modal half of an operator whose work runs in the background (Animate from audio and
    every :class:`JobOperator`). ``run`` has ``step(context, report)`` → 'RUNNING_MODAL' / 'FINISHED' /
    'CANCELLED', ``cancel()`` (Esc) and ``abort()`` (close it as cancelled after an unexpected error)."""

    def run_modal(self, context, run) -> set:
        """Drive ``run`` from a :data:`TIMER_STEP` timer with the window manager's progress bar."""
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


class JobOperator(ModalRunOperator):
    """Mixin for a ``bpy.types.Operator`` defining ``prepare`` / ``compute`` / ``apply`` (see the module)."""

    PROGRESS_GROUP = ""             # the scene's property group with ``progress`` / ``progress_stage``

    @reporting.guarded
    def execute(self, context):
        wm = context.window_manager

        def run() -> str:
            plan = self.prepare(context)
            wm.progress_begin(0.0, 1.0)
            try:
                result = self.compute(plan, lambda fraction, _stage: wm.progress_update(fraction))
            finally:
                wm.progress_end()
            return self.apply(context.scene, plan, result)
        return reporting.run_action(self, run)

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
            self.report({"ERROR"}, os_error_text(exc))
            return {"CANCELLED"}
        return self.run_modal(context, run)



def os_error_text(exc: OSError) -> str:
    return f"{exc.strerror or exc}: {exc.filename or ''}".strip(": ")
