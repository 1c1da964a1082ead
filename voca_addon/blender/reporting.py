"""How errors reach the artist: a user error as its own message, anything else as one line + a log file.

A :class:`~voca_addon.core.errors.VocaError` says what to do and is shown as it is. Any other exception is
a bug of the add-on: its traceback goes to a log file (:mod:`voca_addon.core.errorlog`) and the artist
reads one line naming that file — never Blender's "Python: Traceback…" popup. :func:`guarded` wraps an
operator's ``execute`` / ``invoke`` / ``modal`` so that no exception escapes it.

Contract: main thread (``bpy`` operators). Imports only ``voca_addon.core``.
"""
from __future__ import annotations

import functools
from typing import Callable

from ..core import errorlog
from ..core.errors import VocaError


def poll_by_reason(cls, context) -> bool:
    """An operator's ``poll`` from its ``disabled_reason(context)``: the reason becomes the tooltip of the
    greyed button (``poll_message_set``). Use as ``poll = classmethod(reporting.poll_by_reason)``."""
    reason = cls.disabled_reason(context)
    if reason:
        cls.poll_message_set(reason)
    return reason is None


def run_action(operator, action: Callable[[], object]) -> set:
    """Run ``action()`` (returns what :func:`report_done` reports); a user error or an OS error is
    reported, not raised."""
    try:
        outcome = action()
    except VocaError as exc:
        operator.report({"ERROR"}, str(exc))
        return {"CANCELLED"}
    except OSError as exc:
        operator.report({"ERROR"}, os_error_text(exc))
        return {"CANCELLED"}
    report_done(operator.report, outcome)
    return {"FINISHED"}


def report_done(report: Callable, outcome) -> str:
    """Report a finished action: ``outcome`` is the INFO line, or an object with ``summary()`` (the INFO
    line) and ``warning`` (a WARNING line or None). Returns the INFO line."""
    if isinstance(outcome, str):
        report({"INFO"}, outcome)
        return outcome
    line = outcome.summary()
    report({"INFO"}, line)
    if getattr(outcome, "warning", None):
        report({"WARNING"}, outcome.warning)
    return line


def os_error_text(exc: OSError) -> str:
    """An OS error as the artist reads it: what failed and the file."""
    return f"{exc.strerror or exc}: {exc.filename or ''}".strip(": ")


def report_error(report: Callable, exc: BaseException, what: str) -> None:
    """Report ``exc`` through an operator's ``report(kind_set, message)``."""
    if isinstance(exc, VocaError):
        report({"ERROR"}, str(exc))
        return
    log = errorlog.write_error_log(exc, f"Blender operator: {what}")
    report({"ERROR"}, f"VOCA: {errorlog.one_line(exc, log)}")


def guarded(method: Callable) -> Callable:
    """Decorate an operator method: an exception becomes one reported line and ``{'CANCELLED'}``."""
    def call(self, *args):
        try:
            return method(self, *args)
        except Exception as exc:               # noqa: BLE001 — the whole point: nothing escapes raw
            report_error(self.report, exc, getattr(self, "bl_idname", type(self).__name__))
            return {"CANCELLED"}

    # Blender checks the number of arguments of execute (self, context) / invoke (self, context, event).
    if method.__code__.co_argcount == 3:
        def wrapper(self, context, event):
            return call(self, context, event)
    else:
        def wrapper(self, context):
            return call(self, context)
    return functools.wraps(method)(wrapper)
