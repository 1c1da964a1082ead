"""Waiting in the window, and one Animate-from-audio run watched tick by tick.

Runs INSIDE Blender. :func:`wait_until` and :func:`redraw` are generator helpers for scenarios (``yield
from``). :func:`watch_run` clicks **Animate from audio** (found by :func:`tool_buttons`; the modal path)
and, on a short timer of its own, records what the artist would see: the progress fraction and stage,
whether the timer kept firing (its longest gap), and the current frame, which it changes on every tick
by clicking the timeline's frame numbers, like a person scrubbing. :func:`info_reports` reads every
report of the session from the Info editor (what the status bar showed).

Contract: imports ``bpy`` and :mod:`gui_screen`; main thread only.
"""
from __future__ import annotations

import time
from typing import Callable, Optional

import bpy
import numpy as np

import gui_screen as screen

TICK = 0.05                     # s between two looks at a running job
ANIMATE_BUTTON = 1              # Animate from audio: the panel's second operator button
OWN_COMMANDS = ("bpy.ops.ui.copy_python_command_button",)   # the suite's own look-ups, not the artist's
SCRUB_STRIP = 20                # pixels: the timeline's strip of frame numbers, at the top of its region


def wait_until(condition: Callable[[], bool], timeout: float, step: float = TICK):
    """Yield ``step`` until ``condition()`` holds; returns whether it did within ``timeout`` seconds."""
    end = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > end:
            return False
        yield step
    return True


def redraw(seconds: float = 0.3):
    """Tag every area for redraw and let the event loop draw them."""
    for a in screen.window().screen.areas:
        a.tag_redraw()
    yield seconds


def stable_shot(path: str, rect, timeout: float = 6.0):
    """Screenshots until ``rect`` looks the same in two in a row (panels animate when their layout
    changes, and redraws lag under load); returns the path."""
    end, last = time.monotonic() + timeout, None
    while True:
        yield from redraw(0.3)
        now = screen.digest(screen.screenshot(path), rect)
        if now == last or time.monotonic() > end:
            return path
        last = now


def scene():
    return screen.window().scene


def running() -> bool:
    return bool(scene().voca.is_running)


def tool_buttons(out: str, timeout: float = 20.0):
    """Centres (X11 pixels) of the enabled operator buttons in the sidebar, top to bottom, found by
    painting the theme's button colour magenta until two screenshots agree (the redraw can lag under
    load), the pointer parked over the viewport so no button is drawn highlighted."""
    widget = bpy.context.preferences.themes[0].user_interface.wcol_tool
    old = tuple(widget.inner)
    widget.inner = (*screen.MARKER, 1.0)
    screen.xdotool("mousemove", *map(str, screen.centre(screen.rect_of(screen.region("WINDOW")))))
    found, end = None, time.monotonic() + timeout
    try:
        while True:
            yield from redraw(0.4)
            centres = _magenta_buttons(screen.screenshot(out + "/buttons.png"))
            if (centres == found and len(centres) > ANIMATE_BUTTON) or time.monotonic() > end:
                break
            found = centres
    finally:
        widget.inner = old
    yield from redraw(0.2)
    return centres


def _magenta_buttons(shot: str) -> list:
    ui = screen.rect_of(screen.region("UI"))
    px = screen.pixels(shot, ui).astype(np.int16)
    magenta = (np.abs(px - np.array(screen.MARKER) * 255) < 60).all(axis=2)
    centres = []
    for top, height in screen.bands(magenta.mean(axis=1) > 0.3, min_rows=6):
        columns = np.flatnonzero(magenta[top:top + height].any(axis=0))
        centres.append((ui[0] + int(columns.mean()), ui[1] + top + height // 2))
    return centres


def hovered_command(at: tuple):
    """The Python command of the button under the pointer at ``at`` (Blender's own "Copy Python
    Command" of the active button), or "" when there is none."""
    screen.xdotool("mousemove", str(at[0] - 20), str(at[1]))
    yield 0.1
    screen.xdotool("mousemove", str(at[0]), str(at[1]))           # a motion event onto the button
    yield 0.3
    bpy.context.window_manager.clipboard = ""
    try:
        with screen.override("UI"):
            bpy.ops.ui.copy_python_command_button()
    except RuntimeError:                        # no operator button under the pointer
        return ""
    return bpy.context.window_manager.clipboard


def click_button(out: str, wanted: Callable[[str], bool], likely: int = 0):
    """Click the sidebar's button whose Python command (asked from Blender while hovering it)
    satisfies ``wanted``; buttons are tried from index ``likely`` on. Returns what was clicked."""
    buttons = yield from tool_buttons(out)
    order = buttons[likely:] + buttons[:likely]
    tried = []
    for point in order:
        command = yield from hovered_command(point)
        tried.append(command)
        if wanted(command):
            screen.click(point)
            yield 0.05
            return {"clicked": list(point), "buttons": len(buttons), "command": command}
    raise RuntimeError(f"no such button among the sidebar's {len(buttons)} enabled buttons: {tried}")


def click_animate(out: str):
    """Click **Animate from audio** (the button of ``bpy.ops.voca.animate_from_audio()``)."""
    return (yield from click_button(out, lambda c: "voca.animate_from_audio" in c, ANIMATE_BUTTON))


def info_reports() -> list:
    """Every report of this session as the Info editor lists it (the status bar shows the latest),
    less the suite's own button look-ups: the timeline is turned into an Info editor for a moment, its
    reports copied to the clipboard."""
    timeline = screen.area("DOPESHEET_EDITOR")
    kept = timeline.ui_type
    timeline.ui_type = "INFO"
    try:
        with bpy.context.temp_override(window=screen.window(), area=timeline,
                                       region=screen.region("WINDOW", timeline)):
            bpy.ops.info.select_all(action="SELECT")
            bpy.ops.info.report_copy()
        lines = bpy.context.window_manager.clipboard.splitlines()
        return [line for line in lines if line.strip() and not line.startswith(OWN_COMMANDS)]
    finally:
        timeline.ui_type = kept


def timeline_point(i: int) -> tuple:
    """An X11 point on the timeline's scrubbing strip (its top row of frame numbers), ``i``-th of ten
    spread over its width: a click there sets the current frame, as a person scrubs."""
    left, top, width, _ = screen.rect_of(screen.region("WINDOW", screen.area("DOPESHEET_EDITOR")))
    return left + 60 + (i % 10) * (width - 120) // 10, top + SCRUB_STRIP // 2


def invoke_animate() -> dict:
    """``voca.animate_from_audio('INVOKE_DEFAULT')`` from the sidebar; the result set or the error text."""
    try:
        with screen.override("UI"):
            return {"result": sorted(bpy.ops.voca.animate_from_audio("INVOKE_DEFAULT"))}
    except RuntimeError as exc:             # an ERROR report of invoke: bpy.ops raises it
        return {"result": ["CANCELLED"], "raised": str(exc)}


def watch_run(entry: dict, out: str, timeout: float = 60.0, scrub: bool = True,
              on_tick: Optional[Callable[[dict], bool]] = None):
    """Click Animate from audio and watch the run until it ends. ``on_tick(sample)`` may act (e.g.
    press Esc) and returns True when done acting.

    Records into ``entry``: ``clicked``, ``samples`` [[t, progress, stage, frame]], ``max_gap`` (s,
    longest interval between two ticks), ``seconds`` (click → not running), ``ended``.
    """
    start_frame = scene().frame_current
    reports = len(info_reports())
    entry["clicked"] = yield from click_animate(out)
    t0 = time.monotonic()
    samples, last = [], t0
    max_gap = 0.0
    while running() and time.monotonic() - t0 < timeout:
        yield TICK
        now = time.monotonic()
        max_gap, last = max(max_gap, now - last), now
        props = scene().voca
        if scrub:                                   # the timeline stays usable meanwhile
            screen.click(timeline_point(len(samples)))
        sample = [round(now - t0, 3), round(props.progress, 4), props.progress_stage, scene().frame_current]
        samples.append(sample)
        if on_tick is not None and on_tick(sample):
            on_tick = None
    entry.update(samples=samples, max_gap=round(max_gap, 3), seconds=round(time.monotonic() - t0, 3),
                 ended=not running(), stage_after=scene().voca.progress_stage,
                 reports=info_reports()[reports:])
    if scrub:
        scene().frame_set(start_frame)
