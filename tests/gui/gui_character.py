"""The GUI suite's Character scenario: Fit / Transfer invoked as a button does, in the real event loop.

Runs INSIDE Blender after the runs of :mod:`gui_flows` (the FLAME head is animated by Animate from
audio). The ARKit reference face (real data) is built from the installed add-on's own reader and made
the target, with its 68 landmark pairs; the animated head is the source. Then:

* **Fit, Esc mid-run** — ``voca.character_fit('INVOKE_DEFAULT')`` starts the modal operator and its
  worker; once the panel's stage says the fit is under way, Esc is pressed over the viewport (xdotool).
  Recorded: how long until the operator had closed and until its worker had ended (NICP stops at its next
  step), the stage after, whether a fit was left on the face, what changed in the file, the reports.
* **Fit, to the end** — invoked again and left to finish: the fit is kept on the face.
* **Transfer from the animated head** — invoked and left to finish; the face's evaluated mesh at three
  frames against the add-on's own reading of the head carried through the core transfer (the exact check
  against the engine is in ``tests/blender/test_character_from_head.py``), the head's frames, the sound
  strip and the frame range unchanged.
* **Guess Landmarks, to the end** — invoked as the button does: its worker guesses, the modal places the
  68 add-on-owned empties ``iBUG_<k>`` and switches Landmarks to Empties.

Contract: imports ``bpy``, ``numpy`` and the suite's in-Blender modules; main thread only.
"""
from __future__ import annotations

import importlib
import os
import threading
import time

import bpy
import numpy as np

import gui_scene
import gui_screen as screen
from gui_runs import info_reports, redraw, scene, wait_until

ADDON = gui_scene.ADDON
HEAD, FACE = "FLAME head", "Face"
WORKER = "voca-voca.character_fit"          # jobs.WorkerJob's thread name for the Fit operator


def _module(name: str):
    return importlib.import_module(f"{ADDON}.{name}")


def _invoke(operator: str) -> list:
    """``bpy.ops.voca.<operator>('INVOKE_DEFAULT')`` from the sidebar; its result set (or the error)."""
    try:
        with screen.override("UI"):
            return sorted(getattr(bpy.ops.voca, operator)("INVOKE_DEFAULT"))
    except RuntimeError as exc:
        return ["CANCELLED", str(exc)]


def _workers() -> list:
    return [t.name for t in threading.enumerate() if t.name == WORKER and t.is_alive()]


def _build_face(config):
    folder = config["arkit"]
    mesh = _module("core.flame.meshio").read_mesh(os.path.join(folder, "ARKit_blendshapes", "Neutral.obj"))
    face = _module("blender.character.writer").build_target(FACE, mesh.vertices, mesh.faces, scene().collection)
    pairs = os.path.join(config["out"], "arkit-pairs.txt")
    _module("core.character.landmarks").write_pairs(
        pairs, np.loadtxt(os.path.join(folder, "FLAME_landmarks.txt"), dtype=int),
        np.loadtxt(os.path.join(folder, "ARKit_landmarks.txt"), dtype=int))
    settings = scene().voca_character
    settings.target, settings.landmarks, settings.pairs_path = face, "FILE", pairs
    settings.source, settings.source_head = "HEAD", bpy.data.objects[HEAD]
    return face


def _fit_escaped(entry, settings, face):
    before, reports = gui_scene.snapshot(), len(info_reports())
    entry["invoked"] = _invoke("character_fit")
    entry["under_way"] = yield from wait_until(lambda: settings.progress_stage.startswith("fitting"), 15.0, 0.02)
    entry["stage_at_esc"] = settings.progress_stage
    pressed = time.monotonic()
    screen.press("Escape", screen.centre(screen.rect_of(screen.region("WINDOW"))))
    last, stall = pressed, 0.0                  # the event loop's longest pause meanwhile (machine load)
    while settings.is_running and time.monotonic() - pressed < 30.0:
        yield 0.02
        now = time.monotonic()
        stall, last = max(stall, now - last), now
    entry["stopped"] = not settings.is_running
    entry["esc_to_stop"], entry["stall"] = round(time.monotonic() - pressed, 3), round(stall, 3)
    entry["stage_after"] = settings.progress_stage
    entry["worker_ended"] = yield from wait_until(lambda: not _workers(), 60.0, 0.02)
    entry["worker_after"] = round(time.monotonic() - pressed, 3)       # NICP stops at its next step
    yield from redraw(0.5)                  # a timer tick after the worker's result: it must stay unused
    entry.update(fit_kept="voca_fit" in face, reports=info_reports()[reports:],
                 changes=gui_scene.changes(before, gui_scene.snapshot()))


def _finish(entry, operator: str, settings, timeout: float = 120.0):
    reports = len(info_reports())
    entry["invoked"] = _invoke(operator)
    started = time.monotonic()
    entry["ended"] = yield from wait_until(lambda: not settings.is_running, timeout, 0.1)
    entry["seconds"] = round(time.monotonic() - started, 3)
    yield from redraw(0.3)
    entry["reports"] = info_reports()[reports:]


def character(config, entry):
    """Fit with Esc mid-run, Fit to the end, Transfer from the animated head, Guess Landmarks (see the module)."""
    face = _build_face(config)
    settings = scene().voca_character
    yield from redraw(0.3)
    yield from _fit_escaped(entry.setdefault("escaped", {}), settings, face)
    fit = entry.setdefault("fit", {})
    yield from _finish(fit, "character_fit", settings)
    fit["fit_kept"] = "voca_fit" in face
    head = bpy.data.objects[HEAD]
    source = _module("blender.character.source").head_animation(head, scene())
    before = gui_scene.snapshot()
    moved = entry.setdefault("transfer", {})
    yield from _finish(moved, "character_transfer", settings)
    after = gui_scene.snapshot()
    moved.update(strips_same=before["strips"] == after["strips"], scene_same=before["scene"] == after["scene"],
                 head_same=before["objects"][HEAD] == after["objects"][HEAD],
                 head_frames=[source.start_frame, source.end_frame])
    io, transfer = _module("blender.character.data"), _module("core.character.transfer")
    vertices, faces = io.mesh_arrays(face)
    template = _module("core.flame.meshio").read_mesh(config["template"])
    expected = transfer.transfer(source.animation, io.load_fit(face, vertices, template.faces), vertices, faces)
    errors = {}
    for i in (0, source.animation.num_frames // 2, source.animation.num_frames - 1):
        got = gui_scene.evaluated_vertices(FACE, source.start_frame + i)
        errors[source.start_frame + i] = float(np.abs(got - expected.vertices([i])[0]).max())
    moved["errors"] = errors
    guessed = entry.setdefault("guess", {})
    yield from _finish(guessed, "character_guess_landmarks", settings)
    owned, artists = _module("blender.character.landmarks").landmark_empties(scene())
    guessed.update(empties=sorted(o.name for o in owned), artists=len(artists), landmarks=settings.landmarks)
