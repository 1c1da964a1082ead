"""The batch's Blender outputs on a character (``batch --target``): one clip's files, and the dialogue library.

:func:`write_character_clip` — an empty scene at the clip's rate, the character built from its mesh
(:func:`voca_addon.blender.character.writer.build_target`), then either the transferred keys written like any VOCA
animation (:func:`..speech.writer.write_animation`: 50 keys + bias, plus the clip's emotion shape when it has one;
its lip closures as keys of their own, :func:`voca_addon.blender.character.writer.write_corrections`) or, with the rig's own keys (``--target-keys``), those keys added and driven by the solved weights
(:func:`voca_addon.blender.character.writer.drive_keys`); the action named after the clip, the clip's sound at frame 1; then
``.blend`` / ``.mp4`` / exports (:func:`voca_addon.blender.exports.engines.export`).

:func:`build_rig_library` — the dialogue library on the character's own keys: one head with the rig's keys,
an action per clip keying those keys with the clip's solved weights, laid out by
:func:`voca_addon.blender.exports.engines.lay_out_dialogue` exactly as the FLAME library (NLA track per clip, markers, sounds). Without
the rig's keys the batch calls :func:`voca_addon.blender.exports.engines.build_library` with the character's mesh.

Contract: main thread only (``bpy``); version differences only through :mod:`..compat`.
"""
from __future__ import annotations

from typing import Dict, Optional, Sequence

import bpy
import numpy as np

from ...core.animation.shapekeys import ShapeKeyAnimation
from ...core.errors import InputError
from ..character import writer as character_writer
from .. import compat
from . import engines as exports
from ..speech import writer


def _character(scene, ch):
    """The character object (its rest mesh, and its own keys when it has them)."""
    target = ch.character.target
    obj = character_writer.build_target(ch.name, target.vertices, target.faces, scene.collection)
    if ch.keys is not None:
        character_writer.add_rig_keys(obj, ch.keys.rest, ch.keys.names, ch.keys.deltas)
    return obj


def write_character_clip(motion: ShapeKeyAnimation, solution, ch, audio_path: Optional[str],
                         outputs: Dict[str, str], name: str = "clip") -> None:
    """One clip's Blender outputs on the character: ``outputs`` maps format (blend, mp4, glb, …) → path.

    ``motion``: the clip on the character (:func:`voca_addon.cli.batch.character.on_character`); ``solution``:
    the rig's key weights (a KeySolution) or None. The open file is replaced by an empty scene.
    """
    from . import render
    from ..blendfile import save_blend
    scene = exports.empty_scene(motion.fps)
    obj = _character(scene, ch)
    exports.select_only(obj)
    if solution is None:
        end = writer.write_animation(obj, motion, scene, 1).frame_end
        character_writer.write_corrections(obj, motion, scene, 1)         # the clip's lip closures, apart
    else:
        weights = character_writer.resample_weights(np.asarray(solution.weights, np.float32), motion.fps,
                                             writer.scene_fps(scene))
        character_writer.drive_keys(obj, solution.names, weights, writer.scene_fps(scene), scene, 1)
        end = len(weights)
    obj.data.shape_keys.animation_data.action.name = name
    writer.set_frame_range(scene, 1, max(1, end))
    if audio_path and compat.HAS_AUDIO:
        writer.add_sound_strip(scene, audio_path, 1)
    if "mp4" in outputs:
        render.frame_head(scene, 320, 240, target=obj)
    if "blend" in outputs:
        save_blend(bpy, outputs["blend"])
    for fmt in exports.FORMATS:
        if fmt in outputs:
            exports.export(scene, obj, fmt, outputs[fmt])
    if "mp4" in outputs:
        render.render_video(scene, outputs["mp4"], target=obj)


def build_rig_library(clips: Sequence[exports.LibraryClip], curves: Sequence[tuple], ch,
                      path: Optional[str] = None, gap: int = exports.LIBRARY_GAP) -> exports.LibraryReport:
    """Every clip on the character's own keys in one ``.blend`` (see the module docstring).

    ``curves``: per clip, (weights [F, J] at the clip's fps, key names) — the solved key weights.
    """
    exports.check_clips(clips)
    scene = exports.empty_scene(clips[0].animation.fps)
    fps = writer.scene_fps(scene)
    obj = _character(scene, ch)
    key = obj.data.shape_keys
    missing = sorted({n for _, names in curves for n in names} - set(key.key_blocks.keys()))
    if missing:
        raise InputError(f"the character has no key named {', '.join(missing[:5])}")
    placed = []
    for clip, (weights, names) in zip(clips, curves):
        values = character_writer.resample_weights(np.asarray(weights, np.float32), clip.animation.fps, fps)
        placed.append((clip, exports.clip_action(key, clip.name, values, names), len(values)))
    return exports.lay_out_dialogue(scene, obj, placed, path, gap)
