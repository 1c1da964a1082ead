"""The open .blend of a command-line run: open a scene, set its rate, save it atomically.

- :func:`open_scene` — the ``--scene`` file, else the file Blender was started with, else an empty scene;
- :func:`set_scene_fps` — any rate as ``fps`` / ``fps_base`` (29.97 → 30 / 1.001);
- :func:`save_copy` / :func:`save_blend` — a copy of the open file under a temporary name, renamed into
  place by :mod:`voca_addon.core.outputs` (an existing file is kept as ``.blend1``);
- :func:`bpy_call` — a bpy operator whose ``RuntimeError`` becomes a one-line user error.

Used by the Blender commands (:mod:`voca_addon.cli.animate`, :mod:`voca_addon.cli.sequences`,
:mod:`voca_addon.cli.retarget`) and the batch's Blender outputs (:mod:`.exports.engines`).

Contract: main thread, ``bpy`` passed in (this module imports it not).
"""
from __future__ import annotations

import os
from typing import Optional

from ..core.errors import InputError


def bpy_call(what: str, operator, **kwargs) -> None:
    """Run a bpy operator; its RuntimeError becomes a one-line user error."""
    try:
        result = operator(**kwargs)
    except RuntimeError as exc:
        detail = " ".join(str(exc).replace("Error:", "").split())
        raise InputError(f"{what}: {detail}") from None
    if "FINISHED" not in result:
        raise InputError(f"{what}: Blender cancelled the operation.")


def open_scene(bpy, blend: Optional[str]):
    """Open ``blend``; else keep the file Blender was started with; else an empty scene."""
    if blend:
        if not blend.lower().endswith(".blend") or not os.path.isfile(blend):
            raise InputError(f"'{blend}' is not a .blend file. Choose a scene saved by Blender.")
        bpy_call(f"cannot open '{blend}'", bpy.ops.wm.open_mainfile, filepath=blend, load_ui=False)
        return bpy.context.scene, False
    if bpy.data.filepath:
        return bpy.context.scene, False
    bpy.ops.wm.read_factory_settings(use_empty=True)
    return bpy.context.scene, True


def set_scene_fps(scene, fps: float) -> None:
    """``scene.render.fps`` / ``fps_base`` for any rate (29.97 → 30 / 1.001)."""
    whole = max(1, int(round(fps)))
    scene.render.fps, scene.render.fps_base = whole, whole / float(fps)


def save_copy(bpy, temp, shown: str) -> None:
    """Save the open file as a copy at ``temp``; errors name ``shown`` (the user's path). Blender's own line
    naming the temporary file is dropped (:func:`voca_addon.blender.exports.framewise.silenced`)."""
    from .exports.framewise import silenced
    with silenced():
        bpy_call(f"cannot save '{shown}'", bpy.ops.wm.save_as_mainfile, filepath=str(temp), copy=True,
                  check_existing=False)


def save_blend(bpy, path: str) -> None:
    """Save the open file as a copy at ``path``, atomically; an existing file is kept as ``.blend1``."""
    from pathlib import Path
    from ..core import outputs
    outputs.write_exact(Path(path), lambda temp: save_copy(bpy, temp, path))
