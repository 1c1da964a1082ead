"""The GUI suite's scenarios, run in order in one real Blender window by :mod:`gui_driver`.

Each scenario is a generator ``scenario(config, entry)``: it acts on the window as an artist would
(operators invoked with ``INVOKE_DEFAULT`` in the sidebar's context — what a button click does —, keys
pressed with xdotool), yields seconds to let Blender's event loop run, and writes what it saw into
``entry`` (JSON). The pytest side asserts on it; nothing here asserts.

Order: window set-up → install the built zip → preferences → VOCA tab → Add FLAME head and the
settings → panel screenshots → refused runs (non-FLAME mesh, missing model file, injected internal error)
→ Esc mid-run → the full run (progress, responsiveness, result, sound strip) → Undo / Redo → the
emotion sub-panel's buttons → Remove VOCA animation.

Contract: runs inside Blender (``bpy``); imports :mod:`gui_screen`, :mod:`gui_scene`, :mod:`gui_runs`.
"""
from __future__ import annotations

import importlib
import os
import time

import bpy

import gui_flows
import gui_quit
import gui_runs
import gui_scene
import gui_screen as screen
from gui_runs import redraw

ADDON = gui_scene.ADDON
HEAD = "FLAME head"
PAD = 8                         # pixels kept above a sub-panel's header line in its picture


def _shot(config: dict, name: str) -> str:
    return os.path.join(config["out"], name)


def window_setup(config, entry):
    """Close the splash (Esc over it), no region overlap, sidebar open, meshes hidden in the viewport."""
    prefs = bpy.context.preferences
    prefs.filepaths.temporary_directory = config["out"]
    prefs.system.use_region_overlap = False
    win = screen.window()
    screen.press("Escape", screen.centre((0, 0, win.width, win.height)))
    space = screen.area().spaces.active
    space.show_region_ui = True
    space.show_object_viewport_mesh = False         # no FLAME geometry in any picture
    yield from redraw(0.5)
    entry.update(version=bpy.app.version_string, window=[win.width, win.height],
                 sidebar=list(screen.rect_of(screen.region("UI"))), audio=prefs.system.audio_device)


def install(config, entry):
    """Install and enable the built zip as a person does from Preferences › Get Extensions › Install.
    Refused for this Blender's Python version (bundled wheels), the refusal is recorded and the same
    extension without wheels is installed, so that the other scenarios still run. Recorded too: where
    scipy and PocketSphinx come from (the zip's wheels for this Python) and the phoneme detector's verdict."""
    try:
        result = _install(config["zip"])
    except RuntimeError as exc:
        if "incompatible" not in str(exc) or not config.get("zip_fallback"):
            raise
        entry["refused"] = str(exc)
        result = _install(config["zip_fallback"])
    yield 0.2
    package = importlib.import_module(ADDON)
    entry.update(result=sorted(result), enabled=ADDON in bpy.context.preferences.addons,
                 file=package.__file__, version=getattr(package, "__version__", None),
                 operators=[name for name in ("animate_from_audio", "add_flame_head", "remove_animation",
                                              "add_emotions", "mark_emotion", "key_emotion")
                            if hasattr(bpy.ops.voca, name)])
    entry.update(_dependencies())


def _dependencies() -> dict:
    """This Blender's Python, the scipy it imports (version, file), the phoneme detector's verdict
    (available, the one-line reason) with PocketSphinx's file when available, and threadpoolctl's file
    with the BLAS libraries the engine can set the threads of ([internal API, threads] each)."""
    import sys
    import scipy
    import scipy.sparse.linalg   # noqa: F401  (the Character stage's solver: loads scipy's compiled parts)
    import threadpoolctl
    available, reason = importlib.import_module(ADDON + ".core.phonemes.sphinx").detector_available()
    sphinx = importlib.import_module("pocketsphinx").__file__ if available else None
    blas = importlib.import_module(ADDON + ".core.speech.blas").controller()
    return dict(python="%d.%d" % sys.version_info[:2], scipy=[scipy.__version__, scipy.__file__],
                detector=[available, reason], pocketsphinx=sphinx, threadpoolctl=threadpoolctl.__file__,
                blas=[[c.internal_api, c.num_threads] for c in blas.lib_controllers] if blas else [])


def _install(path: str) -> set:
    with screen.override("WINDOW"):
        return bpy.ops.extensions.package_install_files(filepath=path, repo="user_default",
                                                        enable_on_install=True)


def preferences(config, entry):
    """Set the three model paths in the add-on's preferences; each runs its check and stores a verdict."""
    prefs = bpy.context.preferences.addons[ADDON].preferences
    prefs.voca_path, prefs.deepspeech_path = config["voca"], config["deepspeech"]
    prefs.template_path = config["template"]
    yield 0.1
    entry["checks"] = {which: [getattr(prefs, f"{which}_ok"), getattr(prefs, f"{which}_status")]
                       for which in ("voca", "deepspeech", "template", "flame_model")}


def voca_tab(config, entry):
    """Switch the sidebar to the VOCA tab with Ctrl + wheel over its tab column, as a person can (over
    the panels, Ctrl + wheel would change the field under the pointer instead)."""
    ui = screen.region("UI")
    seen = [ui.active_panel_category]
    left, top, width, height = screen.rect_of(ui)
    for _ in range(12):
        if ui.active_panel_category == "VOCA":
            break
        screen.wheel_with_ctrl((left + width - screen.TABS // 2, top + height // 2))
        yield 0.3
        seen.append(screen.region("UI").active_panel_category)
    entry.update(seen=seen, category=screen.region("UI").active_panel_category)
    yield from redraw(0.3)


def settings(config, entry):
    """Add FLAME head, then audio, speaking style, emotion (from a source), intensity and start frame."""
    with screen.override("UI"):
        entry["add_head"] = sorted(bpy.ops.voca.add_flame_head("INVOKE_DEFAULT", True))
    head = screen.window().view_layer.objects.active
    props = gui_runs.scene().voca
    props.audio_path, props.condition = config["audio"], str(config["condition"])
    props.emotion, props.emotion_source = config["emotion"], config["emotion_source"]
    props.strength, props.ease_frames = config["strength"], config["ease"]
    props.use_scene_start, props.start_frame = False, config["start"]
    yield from redraw(0.3)
    entry.update(head=head.name, vertices=len(head.data.vertices), fps=gui_runs.scene().render.fps,
                 condition=props.condition, emotion=props.emotion)


def panel_lines(shot: str) -> list:
    """The VOCA panel's lines of text [(top, height)], pixels from the sidebar's top."""
    ui = screen.rect_of(screen.region("UI"))
    bottom = screen.content_height(shot, ui)
    return [line for line in screen.text_lines(shot, ui) if line[0] < bottom]


PANEL_ANIMATION = 0.6           # s: longer than Blender's panel open/close animation (time-based)


def settled_shot(path: str, before: list, timeout: float = 8.0):
    """Screenshots until the panel's lines differ from ``before`` and hold still (Blender animates a
    panel opening); returns (path, lines). The animation advances only when the event loop turns: a
    loaded machine can stall it mid-way for seconds, and two shots of a stalled animation agree — so the
    first shot waits :data:`PANEL_ANIMATION` and then three more turns of the loop, each redrawing."""
    yield PANEL_ANIMATION
    for _ in range(3):
        yield from redraw(0.05)
    end, last = time.monotonic() + timeout, None
    while True:
        yield from redraw(0.3)
        lines = panel_lines(screen.screenshot(path))
        if (lines != before and lines == last) or time.monotonic() > end:
            return path, lines
        last = lines


def open_subpanel(shot: str, which: int, path: str, attempts: int = 3):
    """Click a closed sub-panel's header (a line of the panel, by index) and wait for it to open; the
    click is repeated when the panel did not change (a click during a redraw can be lost)."""
    ui = screen.rect_of(screen.region("UI"))
    lines = panel_lines(shot)
    top, height = lines[which]
    point = (ui[0] + 60, ui[1] + top + height // 2)
    for _ in range(attempts):
        screen.xdotool("mousemove", str(point[0] + 20), str(point[1]))
        yield 0.2
        screen.click(point)
        shot, after = yield from settled_shot(path, lines)
        if after != lines:
            break
    return shot, lines, after


GUIDE_SUBPANELS = 2      # the first two (Emotions, Model files): the window is not tall enough for more open


def subpanels(guide_only: bool = False) -> list:
    """Labels of the VOCA panel's sub-panels in the order Blender draws them (registration order);
    ``guide_only``: the first :data:`GUIDE_SUBPANELS`, which the user guide pictures (opened, they stay
    open for the Emotions flow later)."""
    classes = importlib.import_module(ADDON + ".blender").CLASSES
    labels = [c.bl_label for c in classes if getattr(c, "bl_parent_id", None) == "VIEW3D_PT_voca"]
    return labels[:GUIDE_SUBPANELS] if guide_only else labels


def picture_name(label: str) -> str:
    return "gui-" + "-".join(label.lower().split()) + ".png"


def panel_pictures(config, entry):
    """Screenshots of the VOCA tab cropped to the sidebar: the panel (sub-panels closed: they are its
    last lines), then each sub-panel, opened in turn by a click on its header."""
    ui = screen.rect_of(screen.region("UI"))
    shot = yield from gui_runs.stable_shot(_shot(config, "window-panel.png"), ui)
    screen.crop(shot, _shot(config, "gui-panel.png"), (ui[0], ui[1], ui[2], screen.content_height(shot, ui)))
    labels, counts, pictures = subpanels(guide_only=True), [len(panel_lines(shot))], ["gui-panel.png"]
    for i, label in enumerate(labels):
        closed = len(subpanels()) - i              # this sub-panel and those after it are still closed
        shot, before, after = yield from open_subpanel(shot, -closed, _shot(config, f"window-sub{i}.png"))
        top = before[-closed][0] - PAD
        gui_flows.SHARED.setdefault("main_height", top)     # where the panel's own rows end
        bottom = after[-(closed - 1)][0] - PAD if closed > 1 else screen.content_height(shot, ui)
        screen.crop(shot, _shot(config, picture_name(label)), (ui[0], ui[1] + top, ui[2], bottom - top))
        counts.append(len(after))
        pictures.append(picture_name(label))
    entry.update(subpanels=labels, pictures=pictures, lines=counts)


SCENARIOS = [
    ("window_setup", window_setup),
    ("install", install),
    ("preferences", preferences),
    ("voca_tab", voca_tab),
    ("settings", settings),
    ("refused_not_flame", gui_flows.refused_not_flame),      # while the sub-panels are still closed
    ("panel_pictures", panel_pictures),
] + gui_flows.SCENARIOS

ON_REQUEST = [                                               # only when named (a window session of its own)
    ("quit_mid_job", gui_quit.quit_mid_job),
]
