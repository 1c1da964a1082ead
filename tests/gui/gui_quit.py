"""Quitting Blender's real window while Animate from audio runs (issue 19: nothing lost, ever).

Runs INSIDE Blender, in a window session of its own (quitting ends it), after the set-up scenarios. The
file is saved (``config["quit_file"]``); with ``config["quit_change"]`` the artist then moves the head
(G X 0.25 Enter typed over the viewport: the file has an unsaved change). **Animate from audio** is clicked and, as soon as the worker
computes, Ctrl+Q is pressed over the viewport (xdotool, like a keyboard: Blender's own quit, which asks
"save changes?" only when the file has unsaved changes). When that dialog appears it is pictured and
answered as a person does: Return, its default button, Save. Blender then quits.

What it saw goes to ``quit.json`` (rewritten at every step, since Blender may be gone at the next): the
scene before the run (:func:`gui_scene.snapshot`), the stage when Ctrl+Q was pressed, the wall-clock time
of the press and of the answer, and the dialog's rectangle (None: none appeared). The pytest side checks
that Blender ended, then opens the saved file.

Contract: imports ``bpy`` and the suite's in-Blender modules; main thread only.
"""
from __future__ import annotations

import importlib
import json
import os
import time

import bpy

import gui_runs
import gui_scene
import gui_screen as screen
from gui_runs import redraw, scene, wait_until

HEAD = "FLAME head"
MOVE = 0.25                         # m: the artist's unsaved edit (the head moved along X from 0)
KEYS_MOVE = ("0", "period", "2", "5")    # MOVE typed
DIALOG_WAIT = 60.0                  # s: looking for the dialog (or for the end) after Ctrl+Q


def _write(config, entry) -> None:
    path = os.path.join(config["out"], "quit.json")
    with open(path + ".tmp", "w") as handle:
        json.dump(entry, handle, indent=1, default=str)
    os.replace(path + ".tmp", path)


def quit_mid_job(config, entry):
    """Save, (change), click Animate, press Ctrl+Q mid-run, answer the dialog with Save if it appears."""
    path = config["quit_file"]
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with screen.override("WINDOW"):
        bpy.ops.wm.save_as_mainfile(filepath=path)
    if config.get("quit_change"):
        entry["moved"] = yield from _move_head()
    yield from redraw(0.4)
    entry.update(file=path, change=bool(config.get("quit_change")), dirty_before=bpy.data.is_dirty,
                 before=gui_scene.snapshot())
    engine = importlib.import_module(gui_scene.ADDON + ".core.engine")
    busy = (engine.STAGE_AUDIO, engine.STAGE_MFCC, engine.STAGE_DEEPSPEECH, engine.STAGE_VOCA)  # computing
    entry["clicked"] = yield from gui_runs.click_animate(config["out"])
    entry["busy"] = yield from wait_until(lambda: scene().voca.progress_stage in busy, 60.0, 0.02)
    viewport = screen.centre(screen.rect_of(screen.region("WINDOW")))
    before = screen.screenshot(os.path.join(config["out"], "window-before-quit.png"))
    props = scene().voca
    entry.update(at_quit=[round(props.progress, 4), props.progress_stage], running=gui_runs.running(),
                 dirty_at_quit=bpy.data.is_dirty, dialog=None, quit_pressed=time.time())
    _write(config, entry)
    screen.press("ctrl+q", viewport)
    end = time.monotonic() + DIALOG_WAIT
    while time.monotonic() < end:                   # Blender ends meanwhile unless it asks something
        yield 0.5
        shot = screen.screenshot(os.path.join(config["out"], "window-quit.png"))
        dialog = screen.popup_rect(before, shot, screen.rect_of(screen.region("UI")))
        if dialog is not None:
            screen.crop(shot, os.path.join(config["out"], "gui-quit-dialog.png"), dialog)
            entry.update(dialog=list(dialog), running_at_dialog=gui_runs.running(), answered=time.time())
            _write(config, entry)
            screen.press("Return", screen.centre(dialog))    # the dialog's default button: Save
            break
    yield from redraw(DIALOG_WAIT)                  # Blender ends during this wait
    entry["still_open"] = time.time()
    _write(config, entry)
    raise RuntimeError(f"Blender was still open {DIALOG_WAIT:g} s after Ctrl+Q (dialog: {entry['dialog']})")


def _move_head():
    """G X 0.25 Enter typed over the viewport, the head selected and its mesh shown (the suite hides
    meshes in the viewport; a hidden object is not moved); returns the head's X afterwards."""
    head, space = bpy.data.objects[HEAD], screen.area().spaces.active
    head.select_set(True)
    screen.window().view_layer.objects.active = head
    space.show_object_viewport_mesh = True
    yield from redraw(0.3)
    viewport = screen.centre(screen.rect_of(screen.region("WINDOW")))
    for key in ("g", "x", *KEYS_MOVE, "Return"):
        screen.press(key, viewport)
        yield 0.15
    yield from wait_until(lambda: abs(head.location.x - MOVE) < 1e-6, 10.0)
    space.show_object_viewport_mesh = False
    return round(head.location.x, 6)
