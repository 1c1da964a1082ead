"""Game-engine exports of an animated head, one clip's Blender outputs, and the dialogue library.

Exports (:func:`export`, Blender's own exporters on the head alone):

* ``glb`` — glTF 2.0 binary: the head's shape keys become morph targets (the add-on's 50 speech keys, its
  bias key and, when the lips close, the correction keys ``voca_lips_close`` / ``voca_lips_tuck``, which
  Blender stores as sparse accessors: only the lips move), their values a ``weights`` animation sampled at
  every frame, one glTF animation per action, named after it, starting at 0 s (Blender's glTF exporter).
  On a dialogue library, every clip.
* ``fbx`` — the shape keys (correction keys included) as blend shapes with their animation (Blender's FBX
  exporter, baked).
* ``abc`` — Alembic point cache: every frame's evaluated vertex positions over the scene's range (closed
  lips included).
* ``usd`` — USD point cache: every frame's evaluated points (``export_shapekeys`` off, so the result does
  not depend on the reader's blend-shape support).

The destination is checked first (:func:`voca_addon.core.outputs.check_output`: the extension, a missing or
unwritable folder, a folder where the file should be); every file is written under a temporary name beside
the target and renamed when complete. A refused or failed export raises
:class:`~voca_addon.core.errors.InputError` in one line naming the file and the reason (a Python exporter's
traceback reduced to its last line) and leaves no file. Failed or not, the scene is as before: its current
frame (so the head's pose), the head's shape-key values, action and slot, the selection, the active object
and its mode (:func:`kept_scene`; Blender's exporters step through the frames and leave the last one set
when they fail).

:func:`write_clip` is the batch's per-clip Blender step: an empty scene at the animation's rate, a FLAME
head from the template, the animation applied by :func:`..speech.pipeline.apply` (sound strip, speech keys, the
emotion key), the action named after the clip; then ``.blend`` / ``.mp4`` / exports.

:func:`build_library` is the *dialogue library*: every clip on ONE head in one ``.blend``. The head gets
the speech keys once (their slider scale chosen over all clips); each clip becomes an action named after
it (fake user, frames from 1, so the Action editor plays it alone), laid end to end in time on NLA
tracks — one track per clip, named after it, its one strip acting only on its own frames (extrapolation
Nothing); one strip per track is also what Blender's glTF exporter needs to export every action as its
own animation — with a timeline marker and its sound strip at each clip's start. No action is left
active, so the NLA plays the dialogue in order and an animator can pick, move or blend clips.

Contract: main thread only (``bpy``); version differences only through :mod:`..compat`. Units: the
template's (FLAME: metres); frames are scene frames.
"""
from __future__ import annotations

import builtins
import contextlib
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Optional, Sequence

import bpy
import numpy as np

from ...core import outputs
from ...core.animation.shapekeys import ShapeKeyAnimation
from ...core.errors import InputError
from .. import compat, keyframes
from ..speech import writer

FORMATS = ("glb", "fbx", "abc", "usd")
HEAD_NAME = "FLAME head"
LIBRARY_GAP = 30              # frames between clips on the dialogue track
PREFIX = "VOCA"


_PREFIX = re.compile(r"^(?:(?:Error|Warning|Python)\s*:\s*)+")
_EXCEPTION = re.compile(r"([A-Za-z_][\w.]*)\s*:\s*(.*)")
_ERRNO = re.compile(r"\[Errno \d+\]\s*(.*?)(?::\s*'[^']*')?")


def _is_os_error(name: str) -> bool:
    kind = getattr(builtins, name, None)
    return isinstance(kind, type) and issubclass(kind, OSError)


def blender_reason(text: str, what: str = "") -> str:
    """Blender's error text (a failed operator's ``RuntimeError``) as one line: a Python exporter's traceback
    becomes its exception line, an OS error its ``strerror`` alone; Blender's ``Error:`` / ``Python:``
    prefixes, the exporter's own name (``what``) and the ``Location:`` line are dropped."""
    lines = [line for line in text.splitlines() if line.strip() and not line[0].isspace()]
    tracebacks = [i for i, line in enumerate(lines) if "Traceback (most recent call last)" in line]
    if tracebacks:
        lines = lines[tracebacks[-1] + 1:]
    reasons = []
    for line in lines:
        line = _PREFIX.sub("", line.strip())
        if what and line.lower().startswith(what.lower() + ":"):
            line = line[len(what) + 1:].strip()
        found = _EXCEPTION.fullmatch(line)
        if found and _is_os_error(found.group(1)):
            line = found.group(2)
        errno = _ERRNO.fullmatch(line)
        line = " ".join((errno.group(1) if errno else line).split()).rstrip(".")
        if line and not line.startswith("Location:") and line not in reasons:
            reasons.append(line)
    return "; ".join(reasons) or "Blender gave no reason"


def _run(what: str, operator, filepath: str, **kwargs) -> None:
    """Run Blender's exporter ``operator`` into ``filepath``; InputError in one line naming the file when it fails."""
    try:
        result = operator(filepath=filepath, **kwargs)
    except RuntimeError as exc:
        raise InputError(f"{what}: cannot write '{filepath}': {blender_reason(str(exc), what)}.") from None
    if "FINISHED" not in result:
        raise InputError(f"{what}: cannot write '{filepath}': Blender cancelled the export (its reason is in "
                         "the console).")


@contextlib.contextmanager
def kept_scene(scene, obj):
    """Put back, however the block ends, what an export changes: the scene's current frame (and so every
    evaluated pose), ``obj``'s shape-key values, action and slot, the selection, the active object and its
    mode."""
    layer = bpy.context.view_layer
    frame, subframe = scene.frame_current, scene.frame_subframe
    selected = {o.name for o in layer.objects if o.select_get()}
    active = layer.objects.active
    mode = active.mode if active is not None else None
    key = obj.data.shape_keys
    values = [(block, block.value) for block in key.key_blocks] if key is not None else []
    anim = key.animation_data if key is not None else None
    action, slot = (anim.action, compat.slot_identifier(anim)) if anim is not None else (None, None)
    try:
        yield
    finally:
        if anim is not None and (anim.action != action or compat.slot_identifier(anim) != slot):
            anim.action = action
            compat.set_slot(anim, slot)
        scene.frame_set(frame, subframe=subframe)
        for block, value in values:
            if block.value != value:
                block.value = value
        for other in layer.objects:
            if other.select_get() != (other.name in selected):
                other.select_set(other.name in selected)
        layer.objects.active = active
        if active is not None and active.mode != mode:
            with contextlib.suppress(RuntimeError):     # a mode Blender will not enter here: left as it is
                bpy.ops.object.mode_set(mode=mode)


def select_only(obj) -> None:
    """Make ``obj`` the only selected and the active object (an object linked just now needs the update)."""
    bpy.context.view_layer.update()
    if obj.name not in bpy.context.view_layer.objects:
        raise InputError(f"'{obj.name}' is not in the current view layer; include its collection and export again.")
    for other in bpy.context.view_layer.objects:
        other.select_set(other == obj)
    bpy.context.view_layer.objects.active = obj


def _gltf(path, scene):
    compat.forget_gltf_addon_at_exit()
    _run("glTF export", bpy.ops.export_scene.gltf, path, export_format="GLB", use_selection=True,
         export_animations=True, export_animation_mode="ACTIONS", export_morph=True, export_morph_normal=False,
         export_apply=False, export_frame_range=True, export_force_sampling=True, export_anim_slide_to_zero=True)


def _fbx(path, scene):
    _run("FBX export", bpy.ops.export_scene.fbx, path, use_selection=True, bake_anim=True,
         bake_anim_use_all_actions=False, bake_anim_use_nla_strips=False, bake_anim_force_startend_keying=True,
         bake_anim_simplify_factor=0.0, object_types={"MESH"}, use_mesh_modifiers=False)


def _alembic(path, scene):
    _run("Alembic export", bpy.ops.wm.alembic_export, path, start=scene.frame_start,
         end=scene.frame_end, selected=True, uvs=False, normals=True, face_sets=False, as_background_job=False,
         evaluation_mode="RENDER")


def _usd(path, scene):
    _run("USD export", bpy.ops.wm.usd_export, path, selected_objects_only=True, export_animation=True,
         export_shapekeys=False, export_materials=False, export_uvmaps=False, export_normals=False,
         evaluation_mode="RENDER")


_EXPORTERS = {"glb": (_gltf, ".glb"), "fbx": (_fbx, ".fbx"), "abc": (_alembic, ".abc"), "usd": (_usd, ".usd")}


def export(scene, obj, fmt: str, path) -> str:
    """Export the animated ``obj`` over the scene's frame range as ``fmt`` to ``path`` (atomically).

    Parameters
    ----------
    fmt : {'glb', 'fbx', 'abc', 'usd'}
    path : str or PathLike
        Must end in ``.glb`` / ``.fbx`` / ``.abc`` / ``.usd`` (``.usda`` / ``.usdc`` for USD too); its
        folder must exist and be writable. An existing file is replaced.

    Returns
    -------
    str
        The absolute path written.

    Raises
    ------
    InputError
        Before anything changes: an unknown format, a bad destination (:func:`~voca_addon.core.outputs.check_output`),
        no mesh, a head in Edit Mode. After Blender's exporter failed: one line naming the file and the reason;
        no file is left and the scene is as before (:func:`kept_scene`).
    """
    if fmt not in _EXPORTERS:
        raise InputError(f"Unknown export format '{fmt}'; choose one of {', '.join(FORMATS)}.")
    suffixes = (".usd", ".usda", ".usdc") if fmt == "usd" else (_EXPORTERS[fmt][1],)
    flag = f"The {fmt} file"
    out = outputs.check_output(path, flag, suffixes, overwrite=True)
    if obj is None or obj.type != "MESH":
        raise InputError("Select the animated head (a mesh) to export.")
    if obj.mode == "EDIT":
        raise InputError(f"'{obj.name}' is in Edit Mode; switch to Object Mode and export again.")

    def write(temp):                            # same suffix: the USD exporter picks text / binary by it
        _EXPORTERS[fmt][0](str(temp), scene)
        if not os.path.isfile(temp):
            raise InputError(f"{fmt} export: cannot write '{temp}': Blender wrote no file.")
    with kept_scene(scene, obj):
        select_only(obj)
        try:
            outputs.write_exact(out, write)
        except InputError:
            outputs.check_output(out, flag, suffixes, overwrite=True)  # the folder gone or made read-only
            raise                                                       # meanwhile: that is the reason
    return str(out)


# ---------------------------------------------------------------------------- one clip (the batch)

def empty_scene(fps: float):
    bpy.ops.wm.read_factory_settings(use_empty=True)
    scene = bpy.context.scene
    whole = max(1, int(round(fps)))
    scene.render.fps, scene.render.fps_base = whole, whole / float(fps)
    return scene


def write_clip(anim: ShapeKeyAnimation, template, audio_path: str, outputs: Dict[str, str], emotion=None,
               strength: float = 1.0, name: str = "clip", track=None) -> None:
    """One clip's Blender outputs: ``outputs`` maps format (blend, mp4, glb, fbx, abc, usd) → path.

    The open file is replaced by an empty scene (the batch's own process). ``template`` is the
    :class:`~voca_addon.core.flame.meshio.Mesh` the animation was made for; ``emotion`` an
    :class:`~voca_addon.core.emotion.emotions.Emotion` keyed at ``strength``, or None; ``track`` the clip's
    phone track when its lips close (the head gets the correction keys ``voca_lips_close`` /
    ``voca_lips_tuck``, as Animate from audio writes them: every export carries them — glb / fbx as
    morph targets / blend shapes with their curves, abc / usd in the evaluated points), or None.
    """
    from ..speech import pipeline
    from . import render
    from ..articulation.phones import PhoneOutcome
    from ..blendfile import save_blend
    scene = empty_scene(anim.fps)
    head = writer.build_head(HEAD_NAME, template.vertices, template.faces, scene.collection)
    select_only(head)
    settings = pipeline.AnimateSettings(audio_path=audio_path, emotion=emotion.name if emotion else None,
                                        strength=strength, start_frame=1)
    phones = PhoneOutcome(track) if track is not None else None
    pipeline.apply(scene, head, pipeline.ComputeResult(anim.exact(), template, emotion, phones=phones), settings)
    head.data.shape_keys.animation_data.action.name = name
    if "mp4" in outputs:
        render.frame_head(scene, 320, 240, target=head)
    if "blend" in outputs:
        save_blend(bpy, outputs["blend"])
    for fmt in FORMATS:
        if fmt in outputs:
            export(scene, head, fmt, outputs[fmt])
    if "mp4" in outputs:
        render.render_video(scene, outputs["mp4"], target=head)


# ---------------------------------------------------------------------------- the dialogue library

@dataclass(frozen=True)
class LibraryClip:
    """One clip of a dialogue library: its name, animation and (optional) audio file."""
    name: str
    animation: ShapeKeyAnimation
    audio_path: Optional[str] = None


@dataclass(frozen=True)
class LibraryReport:
    """What :func:`build_library` made: the head, its actions (clip order) and each clip's first/last frame."""
    head: object
    actions: tuple
    ranges: tuple


def check_clips(clips: Sequence[LibraryClip]) -> None:
    if not clips:
        raise InputError("The dialogue library needs at least one clip.")
    names = [c.name for c in clips]
    if len(set(names)) != len(names):
        raise InputError("Two clips of the dialogue library have the same name; give every clip its own.")
    first = clips[0].animation
    for c in clips[1:]:
        a = c.animation
        if a.basis.shape != first.basis.shape or not (np.array_equal(a.basis, first.basis)
                                                       and np.array_equal(a.bias, first.bias)):
            raise InputError(f"Clip '{c.name}' was made with another model or template than "
                             f"'{clips[0].name}'; a library holds clips of one head and one model.")


def _stacked(clips: Sequence[LibraryClip], fps: float) -> ShapeKeyAnimation:
    """All clips' weights back to back at ``fps`` (only to create the keys with one slider scale)."""
    parts = [c.animation.resampled(fps) for c in clips]
    a = parts[0]
    return ShapeKeyAnimation(a.basis, a.bias, np.concatenate([p.weights for p in parts]), fps, a.template, a.names)


def _clip_action(key, clip_anim: ShapeKeyAnimation, name: str, key_names: Sequence[str], scales: dict):
    """The clip's action on the head: speech keys (weights / s_k), then the bias held at 1."""
    scale = np.array([scales.get(n, 1.0) for n in key_names[:-1]], np.float32)
    return clip_action(key, name, np.asarray(clip_anim.weights, np.float32) / scale, key_names[:-1],
                       held=key_names[-1:])


def clip_action(key, name: str, weights: np.ndarray, key_names: Sequence[str], held: Sequence[str] = ()):
    """An owned, unassigned action named ``name`` keying ``key_names`` with ``weights`` [F, J] from frame 1
    (LINEAR), and each key of ``held`` at 1 (one CONSTANT key): a clip of a dialogue library."""
    action = compat.new_action(name)
    action[writer.OWNED] = True
    action.use_fake_user = True
    anim_data = key.animation_data or key.animation_data_create()
    compat.assign_action(anim_data, action, "KEY", PREFIX)
    frames = 1.0 + np.arange(len(weights), dtype=np.float64)
    for k, key_name in enumerate(key_names):
        fcurve = compat.new_fcurve(anim_data, keyframes.value_path(key_name), 0, PREFIX)
        keyframes.set_keyframes(fcurve, frames, weights[:, k].astype(np.float32), keyframes.LINEAR)
    for key_name in held:
        fcurve = compat.new_fcurve(anim_data, keyframes.value_path(key_name), 0, PREFIX)
        keyframes.set_keyframes(fcurve, frames[:1], np.ones(1, np.float32), keyframes.CONSTANT)
    action.frame_range = (1.0, max(2.0, float(len(weights))))
    anim_data.action = None
    return action


def build_library(clips: Sequence[LibraryClip], template, path: Optional[str] = None,
                  gap: int = LIBRARY_GAP, head_name: str = HEAD_NAME) -> LibraryReport:
    """Every clip onto one new head in an empty scene: an action per clip, NLA strips, markers, sounds.

    Parameters
    ----------
    clips : sequence of LibraryClip
        Made with one model and template (same basis and bias); unique names.
    template : meshio.Mesh
        The mesh the clips were animated for (the FLAME template, or a character they were transferred to).
    path : str, optional
        Save the scene there (``.blend``, atomically).
    gap : int
        Frames between consecutive clips on the track.
    head_name : str
        The head object's name.
    """
    check_clips(clips)
    scene = empty_scene(clips[0].animation.fps)
    fps = writer.scene_fps(scene)
    head = writer.build_head(head_name, template.vertices, template.faces, scene.collection)
    written = writer.write_animation(head, _stacked(clips, fps), scene, 1)
    key = head.data.shape_keys
    scales = dict(key.get(writer.KEY_SCALES, {}))
    combined = key.animation_data.action                    # only made the keys: the clips get their own
    key.animation_data.action = None
    bpy.data.actions.remove(combined)
    placed = []
    for clip in clips:
        clip_anim = clip.animation.resampled(fps)
        action = _clip_action(key, clip_anim, clip.name, written.key_names, scales)
        placed.append((clip, action, clip_anim.num_frames))
    return lay_out_dialogue(scene, head, placed, path, gap)


def lay_out_dialogue(scene, head, placed, path: Optional[str] = None, gap: int = LIBRARY_GAP) -> LibraryReport:
    """Clips end to end on ``head``'s key NLA: ``placed`` = (LibraryClip, its action, frames) in order.

    One NLA track per clip named after it, its one strip from the clip's start (extrapolation Nothing), a
    timeline marker and the clip's sound at each start; the scene's range covers them all; saved at
    ``path`` when given."""
    from ..blendfile import save_blend
    key = head.data.shape_keys
    start, actions, ranges = 1, [], []
    for clip, action, frames in placed:
        track = key.animation_data.nla_tracks.new()
        track.name = clip.name
        strip = compat.new_nla_strip(track, clip.name, start, action)
        strip.blend_type, strip.extrapolation = "REPLACE", "NOTHING"     # acts on its own frames only
        end = start + frames - 1
        scene.timeline_markers.new(clip.name, frame=start)
        if clip.audio_path and compat.HAS_AUDIO:     # the one sound-strip writer: checked, owned, removable
            writer.add_sound_strip(scene, clip.audio_path, start, clip.name, replace=False)
        actions.append(action)
        ranges.append((start, end))
        start = end + 1 + gap
    writer.set_frame_range(scene, 1, ranges[-1][1])
    if path is not None:
        save_blend(bpy, os.path.abspath(path))
    return LibraryReport(head, tuple(actions), tuple(ranges))
