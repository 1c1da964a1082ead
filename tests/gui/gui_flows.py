"""The GUI suite's scenarios that run (or refuse) Animate from audio, and what follows a run.

Runs INSIDE Blender, after the set-up scenarios of :mod:`gui_scenarios` (the add-on installed, the
models set, a FLAME head active with audio, style and emotion chosen). Every scenario snapshots the
file before and after (:func:`gui_scene.snapshot`) so the pytest side can check what changed.

* refusals: a non-FLAME mesh active (the button is greyed with the reason), a missing model file, and
  an internal error injected by replacing the installed add-on's ``core.engine.run`` with one that
  raises (what a bug in the engine would do);
* Esc pressed with xdotool over the 3D Viewport while the worker runs;
* the full run, watched tick by tick (progress, responsiveness, a mid-run screenshot of the progress
  bar), with the head's evaluated vertices saved at five frames for the comparison with the engine;
* a second run with another style, undone with Ctrl+Z and redone with Ctrl+Shift+Z (keys pressed over the
  viewport); the Emotions sub-panel's buttons; Remove VOCA animation.

Contract: imports ``bpy``, ``numpy`` and the suite's in-Blender modules; main thread only.
"""
from __future__ import annotations

import importlib
import os
import threading
import time

import bpy
import numpy as np

import gui_character
import gui_runs
import gui_scene
import gui_screen as screen
from gui_runs import redraw, scene, wait_until

ADDON = gui_scene.ADDON
HEAD = "FLAME head"
SHARED: dict = {}                   # snapshots handed from one scenario to the next


def _path(config, name: str) -> str:
    return os.path.join(config["out"], name)


def _activate(name: str) -> None:
    layer = screen.window().view_layer
    for obj in layer.objects.selected:
        obj.select_set(False)
    obj = bpy.data.objects[name]
    obj.select_set(True)
    layer.objects.active = obj


def _status_bar_shot(config, name: str):
    """The window and its status bar (where a report appears), the latter cropped to ``name``."""
    yield from redraw(0.4)
    shot = screen.screenshot(_path(config, "window-" + name))
    screen.crop(shot, _path(config, name), screen.banner_rect(shot, screen.status_bar_rect()))


def _parked(config, name: str = "window-parked.png"):
    """The pointer parked over the viewport (nothing hovered), then a screenshot (its path)."""
    screen.xdotool("mousemove", *map(str, screen.centre(screen.rect_of(screen.region("WINDOW")))))
    yield from redraw(0.4)
    return screen.screenshot(_path(config, name))


def _report_shot(config, name: str, before: str, entry: dict):
    """The error report as the artist sees it, pictured to ``name``: Blender 5.x opens it as a popup over
    the window (found as what changed since ``before``, pointer parked again; closed afterwards with Esc, as
    a person does, so it no longer hides the sidebar), 4.x shows it in the status bar (cropped to its
    banner). Records ``entry["popup"]`` (its rectangle or None) and ``entry["popup_closed"]``."""
    after = yield from _parked(config, "window-report-" + name)
    popup = screen.popup_rect(before, after, screen.rect_of(screen.region("UI")))
    entry["popup"] = list(popup) if popup else None
    if popup is None:
        yield from _status_bar_shot(config, name)
        return
    screen.crop(after, _path(config, name), popup)
    screen.press("Escape", screen.centre(screen.rect_of(screen.region("WINDOW"))))
    end = time.monotonic() + 10.0                   # it closes within a few redraws (slower under load)
    while True:
        now = yield from _parked(config)
        entry["popup_closed"] = screen.popup_rect(before, now, screen.rect_of(screen.region("UI"))) is None
        if entry["popup_closed"] or time.monotonic() > end:
            break


def refused_not_flame(config, entry):
    """The default Cube active: the button is greyed, the reason printed under it; a call is refused."""
    _activate("Cube")
    yield from redraw(0.4)
    before = gui_scene.snapshot()
    operators = importlib.import_module(ADDON + ".blender.speech.operators")
    entry["reason"] = operators.VOCA_OT_animate_from_audio.disabled_reason(bpy.context)
    with screen.override("UI"):
        entry["poll"] = bpy.ops.voca.animate_from_audio.poll("INVOKE_DEFAULT")
    entry["invoked"] = gui_runs.invoke_animate()
    ui = screen.rect_of(screen.region("UI"))
    shot = yield from gui_runs.stable_shot(_path(config, "window-not-flame.png"), ui)
    screen.crop(shot, _path(config, "gui-not-flame.png"), (ui[0], ui[1], ui[2], screen.content_height(shot, ui)))
    entry["changes"] = gui_scene.changes(before, gui_scene.snapshot())
    _activate(HEAD)
    yield from redraw(0.2)


def refused_missing_model(config, entry):
    """The VOCA checkpoint path points nowhere: one message in the status bar, nothing changed."""
    prefs = bpy.context.preferences.addons[ADDON].preferences
    kept = prefs.voca_path
    prefs.voca_path = config["missing"]
    entry["check"] = [prefs.voca_ok, prefs.voca_status]
    before = gui_scene.snapshot()
    reports = len(gui_runs.info_reports())
    screen_before = yield from _parked(config, "window-before-" + "gui-error.png")
    entry["clicked"] = yield from gui_runs.click_animate(config["out"])
    yield from _report_shot(config, "gui-error.png", screen_before, entry)
    entry["reports"] = gui_runs.info_reports()[reports:]
    entry.update(running=gui_runs.running(), changes=gui_scene.changes(before, gui_scene.snapshot()))
    prefs.voca_path = kept


def refused_internal_error(config, entry):
    """An unexpected exception inside the engine (worker thread): one readable message, no popup."""
    engine = importlib.import_module(ADDON + ".core.engine")
    real = engine.run

    def broken(*_args, **_kwargs):
        raise RuntimeError("injected by the GUI suite")

    engine.run = broken
    try:
        before = gui_scene.snapshot()
        screen_before = yield from _parked(config, "window-before-gui-internal-error.png")
        yield from gui_runs.watch_run(entry, config["out"], timeout=30.0, scrub=False)
        yield from _report_shot(config, "gui-internal-error.png", screen_before, entry)
        entry["changes"] = gui_scene.changes(before, gui_scene.snapshot())
    finally:
        engine.run = real


def escape(config, entry):
    """Esc pressed over the 3D Viewport (xdotool, like a keyboard) while the networks run; a watcher
    thread times, at 5 ms resolution, when the worker thread ends and when the scene stops running."""
    before = gui_scene.snapshot()
    viewport = screen.centre(screen.rect_of(screen.region("WINDOW")))
    pressed, stops = {}, {}

    engine = importlib.import_module(ADDON + ".core.engine")
    busy = (engine.STAGE_DEEPSPEECH, engine.STAGE_VOCA)          # the networks: most of a run's time

    def press_when_busy(sample) -> bool:
        if sample[2] not in busy:
            return False
        screen.press("Escape", viewport)
        pressed.update(t=time.monotonic(), sample=sample)
        threading.Thread(target=_time_stop, args=(stops,), daemon=True).start()
        return True

    yield from gui_runs.watch_run(entry, config["out"], timeout=60.0, scrub=False, on_tick=press_when_busy)
    yield from wait_until(lambda: len(stops) == 2, 5.0)
    entry["esc"] = pressed.get("sample")
    entry["esc_to_stop"] = {k: round(t - pressed["t"], 3) for k, t in stops.items()} if pressed else None
    times = [s[0] for s in entry["samples"]]        # the event loop's longest pause from the press on
    at = times.index(pressed["sample"][0]) if pressed else len(times)
    entry["stall"] = round(max(np.diff(times[at:] + [entry["seconds"]]), default=0.0), 3)
    entry.update(workers_after=_workers(), changes=gui_scene.changes(before, gui_scene.snapshot()))


def _time_stop(stops: dict, limit: float = 10.0) -> None:
    """In a thread (pure Python, no bpy): when the worker thread ends (``worker``) and when the add-on's
    set of running scenes empties (``ui``: the modal operator has closed the run)."""
    running = importlib.import_module(ADDON + ".blender.jobs")._running    # the one running registry
    end = time.monotonic() + limit
    while len(stops) < 2 and time.monotonic() < end:
        now = time.monotonic()
        if "worker" not in stops and not _workers():
            stops["worker"] = now
        if "ui" not in stops and not running:
            stops["ui"] = now
        time.sleep(0.005)


def _workers() -> list:
    return [t.name for t in threading.enumerate() if t.name == "voca-animate" and t.is_alive()]


SAVE_AT_TICK = 2            # the mid-run save: from the second running tick on (two progress samples taken; a
#                             fast run, 5.2 without PocketSphinx, has only two or three), at the first whose
#                             progress is under way (a slow start, 4.3 on a loaded machine, ticks at 0 twice)


def animate(config, entry):
    """The full run: progress over time with the timeline scrubbed meanwhile, a progress-bar picture,
    then the result (vertices at five frames, sound strip, frame range) and a snapshot."""
    SHARED["before"] = gui_scene.snapshot()
    ui = screen.rect_of(screen.region("UI"))
    grabbed = {}

    def grab_progress(sample) -> bool:
        """A picture at the first tick of the run, replaced by one once past ``picture_after``; a copy of
        the file saved mid-run (as Ctrl-S or an autosave would, from the event loop while the job runs)."""
        if sample[2] in ("", "cancelled"):
            return False
        grabbed["ticks"] = grabbed.get("ticks", 0) + 1
        if ("saved_mid_run" not in entry and grabbed["ticks"] >= SAVE_AT_TICK   # the save stalls the loop
                and 0.0 < sample[1] < 1.0):
            path = _path(config, "mid-run.blend")                            # (seconds): after some samples
            bpy.ops.wm.save_as_mainfile(filepath=path, copy=True)
            entry["saved_mid_run"] = dict(path=path, sample=sample, running=running_now())
        if not grabbed.get("late"):
            late = sample[1] >= config["picture_after"]
            if late or "shot" not in grabbed:
                if "shot" in grabbed:
                    grabbed["shot"].wait(10)
                grabbed["shot"] = screen.screenshot_async(_path(config, "window-progress.png"))
                grabbed["sample"] = sample
            grabbed["late"] = late
        return bool(grabbed.get("late")) and "saved_mid_run" in entry

    yield from gui_runs.watch_run(entry, config["out"], timeout=120.0, on_tick=grab_progress)
    if "shot" in grabbed:
        grabbed["shot"].wait(10)
        height = SHARED.get("main_height") or screen.content_height(_path(config, "window-progress.png"), ui)
        screen.crop(_path(config, "window-progress.png"), _path(config, "gui-progress.png"),
                    (ui[0], ui[1], ui[2], height))
        entry["picture_at"] = grabbed["sample"]
    yield from _status_bar_shot(config, "gui-done.png")
    entry.update(_result(config), changes=gui_scene.changes(SHARED["before"], gui_scene.snapshot()))
    SHARED["after"] = gui_scene.snapshot()
    saved = entry.get("saved_mid_run")
    if saved is not None:                   # what the mid-run copy holds (names only: nothing is loaded)
        with bpy.data.libraries.load(saved["path"]) as (data_from, _data_to):
            saved.update(actions=list(data_from.actions), sounds=list(data_from.sounds),
                         objects=list(data_from.objects))


def running_now() -> bool:
    return bool(importlib.import_module(ADDON + ".blender.jobs")._running)


def _result(config) -> dict:
    """Frames, strips and the head's evaluated vertices at five frames (saved to result.npz)."""
    sc = scene()
    first, last = sc.frame_start, sc.frame_end
    frames = sorted({first, first + 1, first + (last - first) // 3, (first + last) // 2, last})
    head = bpy.data.objects[HEAD]
    vertices = np.stack([gui_scene.evaluated_vertices(HEAD, f) for f in frames])
    key = head.data.shape_keys
    emotion = []
    for f in frames:
        sc.frame_set(f)
        emotion.append(key.key_blocks["EMO " + config["emotion"]].value if key else None)
    np.savez(_path(config, "result.npz"), frames=np.array(frames), vertices=vertices)
    strips = [[s.name, s.type, s.frame_start, s.frame_final_duration, s.channel,
               bpy.path.abspath(s.sound.filepath), s.sound.samplerate]
              for s in gui_scene.compat().all_sequencer_strips(sc.sequence_editor)
              if s.type == "SOUND"] if sc.sequence_editor else []
    return dict(frame_range=[first, last], frames=frames, fps=[sc.render.fps, sc.render.fps_base],
                keys=len(key.key_blocks) if key else 0, emotion_values=emotion, strips=strips)


def undo_redo(config, entry):
    """Run again with another speaking style (it replaces the first run), then Ctrl+Z over the viewport
    removes that whole run and Ctrl+Shift+Z brings it back (no frame scrubbed in between: a frame
    change is an undo step of its own in Blender)."""
    scene().voca.condition = str(config["rerun_condition"])
    with screen.override("WINDOW"):
        bpy.ops.ed.undo_push(message="style changed")         # the artist's edit, as an undo step
    yield from redraw(0.3)
    before = gui_scene.snapshot()
    run = entry.setdefault("run", {})
    yield from gui_runs.watch_run(run, config["out"], timeout=120.0, scrub=False)
    after = gui_scene.snapshot()
    entry["run_changes"] = [c[0] for c in gui_scene.changes(before, after)]
    viewport = screen.centre(screen.rect_of(screen.region("WINDOW")))
    screen.press("ctrl+z", viewport)
    entry["undone"] = yield from wait_until(lambda: gui_scene.snapshot() != after, 15.0, 0.3)
    entry["undo_changes"] = gui_scene.changes(before, gui_scene.snapshot())
    screen.press("ctrl+shift+z", viewport)
    entry["redone"] = yield from wait_until(lambda: gui_scene.snapshot() != before, 15.0, 0.3)
    entry["redo_changes"] = gui_scene.changes(after, gui_scene.snapshot())


# Where each button usually is among the sidebar's enabled buttons (Add FLAME head, Animate, Remove, Add
# emotions, Mark as emotion, At current frame, Over range, …): the search starts there.
LIKELY = {"remove_animation": 2, "add_emotions": 3, "mark_emotion": 4, "key_emotion": 5}


def _click(config, operator: str, *words: str):
    """Click the enabled sidebar button of ``bpy.ops.voca.<operator>`` whose command has ``words``;
    returns the new reports (the operator's result line and its message)."""
    reports = len(gui_runs.info_reports())
    clicked = yield from gui_runs.click_button(
        config["out"], lambda c: f"voca.{operator}(" in c and all(w in c for w in words),
        LIKELY.get(operator, 0))
    yield from redraw(0.4)
    return {"command": clicked["command"], "reports": gui_runs.info_reports()[reports:]}


def _key_value(name: str, frame: int) -> float:
    scene().frame_set(frame)
    return round(bpy.data.objects[HEAD].data.shape_keys.key_blocks[name].value, 6)


def emotion_buttons(config, entry):
    """The Emotions sub-panel's buttons, clicked: Add emotions, Mark as emotion, Key at current frame,
    Over range (eased); their values come from the panel's fields, set first as an artist would."""
    _activate(HEAD)
    props, head = scene().voca, bpy.data.objects[HEAD]
    writer = importlib.import_module(ADDON + ".blender.emotion.writer")
    entry["add"] = yield from _click(config, "add_emotions")
    entry["emotion_keys"] = sorted(writer.emotion_keys(head))
    head.shape_key_add(name="Smirk", from_mix=False)          # an artist's own key, made active
    head.active_shape_key_index = len(head.data.shape_keys.key_blocks) - 1
    entry["mark"] = yield from _click(config, "mark_emotion")
    entry["marked"] = "Smirk" in writer.emotion_keys(head)
    frame = config["start"] + 5
    props.emotion, props.strength = "sad", 0.7
    scene().frame_set(frame)
    entry["key_at"] = yield from _click(config, "key_emotion", "use_range=False")
    entry["key_at_value"] = _key_value("EMO sad", frame)
    a, b = config["start"], config["start"] + 40
    props.emotion, props.strength, props.ease_frames = "Smirk", 0.5, 4
    props.key_frame_start, props.key_frame_end = a, b
    entry["key_range"] = yield from _click(config, "key_emotion", "use_range=True")
    entry["range_values"] = [_key_value("Smirk", f) for f in (a, a + 2, a + 4, a + 20, b - 4, b)]


def remove(config, entry):
    """Remove VOCA animation, clicked: the add-on's keys, curves, action and sound strip go; the
    artist's key stays."""
    _activate(HEAD)
    before = gui_scene.snapshot()
    entry["result"] = yield from _click(config, "remove_animation")
    after = gui_scene.snapshot()
    entry.update(before=before["objects"][HEAD]["keys"], after=after["objects"][HEAD]["keys"],
                 strips=after["strips"], actions=sorted(after["actions"]))


def session_reports(config, entry):
    """Every report of the session, as the Info editor lists them (for the no-traceback check)."""
    entry["reports"] = gui_runs.info_reports()
    yield 0.01


SCENARIOS = [
    ("refused_missing_model", refused_missing_model),
    ("refused_internal_error", refused_internal_error),
    ("escape", escape),
    ("animate", animate),
    ("undo_redo", undo_redo),
    ("character", gui_character.character),              # the head is animated here (the redone run)
    ("emotion_buttons", emotion_buttons),
    ("remove", remove),
    ("session_reports", session_reports),
]
