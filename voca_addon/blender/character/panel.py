"""The "Character" sub-panel: VOCA's motion on any head mesh (fit, transfer, drive its own keys).

Settings live in ``Scene.voca_character`` (:class:`VOCA_PG_character`): the target object, where the
landmark pairs come from (a pairs file, or empties named ``iBUG_<k>`` on the face, which Guess Landmarks
places as a first guess), the source of the motion (a FLAME sequence file, or a FLAME head in the scene
animated by Animate from audio), the curves file, and the progress of a running Guess / Fit / Transfer /
Drive (:mod:`voca_addon.blender.character.operators`).

Drawing reads properties only (no disk access); a greyed button prints its operator's ``disabled_reason``.

Contract: main thread only (``bpy``).
"""
from __future__ import annotations

import json

import bpy
from bpy.props import BoolProperty, EnumProperty, FloatProperty, PointerProperty, StringProperty

from . import operators as character_operators
from .. import jobs
from ..speech import writer
from .operators import (VOCA_OT_character_drive, VOCA_OT_character_fit, VOCA_OT_character_guess_landmarks,
                        VOCA_OT_character_transfer, residual_text)
from ..speech.panel import _SubPanel, wrapped


def _mesh_poll(_self, obj) -> bool:
    return obj.type == "MESH"


def _head_poll(_self, obj) -> bool:
    return obj.type == "MESH" and len(obj.data.vertices) == writer.FLAME_VERTICES


def _get_running(self) -> bool:
    return jobs.is_running(self.id_data)


class VOCA_PG_character(bpy.types.PropertyGroup):
    """Scene settings of the Character sub-panel."""

    target: PointerProperty(name="Target", type=bpy.types.Object, poll=_mesh_poll,
                            description="The character's head mesh to animate")
    landmarks: EnumProperty(name="Landmarks", items=(
        ("FILE", "Pairs file", "A text file of 'flame_vertex target_vertex' lines"),
        ("EMPTIES", "Empties", "Empties named iBUG_0 … iBUG_67 placed on the target's face")), default="FILE")
    pairs_path: StringProperty(name="Pairs", subtype="FILE_PATH", description="Landmark pairs file")
    source: EnumProperty(name="Source", items=(
        ("FILE", "Sequence file", "A FLAME animation file: an infer .npz, a .npy/.npz of vertices, a folder of frames"),
        ("HEAD", "Animated head", "A FLAME head in this scene animated by Animate from audio: the character "
                                  "is keyed on its frames")), default="FILE")
    source_head: PointerProperty(name="Head", type=bpy.types.Object, poll=_head_poll,
                                 description="The FLAME head Animate from audio animated")
    source_path: StringProperty(name="Sequence", subtype="FILE_PATH",
                                description="FLAME animation to retarget: an infer .npz, a .npy/.npz with "
                                            "vertices [frames, 5023, 3], or a folder of frames")
    curves_path: StringProperty(name="Curves", subtype="FILE_PATH",
                                description="Optional: write the driven keys' curves (.csv Live Link Face, or .json)")
    progress: FloatProperty(name="Progress", min=0.0, max=1.0, subtype="FACTOR")
    progress_stage: StringProperty(name="Stage")
    is_running: BoolProperty(name="Running", get=_get_running)

    @classmethod
    def register(cls):
        bpy.types.Scene.voca_character = PointerProperty(type=cls)

    @classmethod
    def unregister(cls):
        del bpy.types.Scene.voca_character


class VOCA_PT_character(_SubPanel, bpy.types.Panel):
    bl_label = "Character"
    bl_idname = "VOCA_PT_character"

    def draw(self, context):
        layout = self.layout
        settings = context.scene.voca_character
        layout.prop(settings, "target")
        layout.prop(settings, "landmarks", expand=True)
        if settings.landmarks == "FILE":
            layout.prop(settings, "pairs_path")
        if jobs.progress_group(context.scene) == "voca_character":    # a Character job runs on this scene
            layout.progress(factor=settings.progress, type="BAR",
                            text=f"{settings.progress:.0%} {settings.progress_stage}")
            layout.label(text="Esc cancels", icon="CANCEL")
            return
        reason = VOCA_OT_character_fit.disabled_reason(context)          # Guess Landmarks: the same reason
        row = layout.row(align=True)
        row.enabled = reason is None
        row.operator(VOCA_OT_character_guess_landmarks.bl_idname, icon="EMPTY_AXIS")
        row.operator(VOCA_OT_character_fit.bl_idname, icon="MOD_SHRINKWRAP")
        if reason:
            wrapped(layout, reason, "INFO")
        stored = settings.target.get("voca_fit") if settings.target is not None else None
        res = json.loads(stored["residuals"]) if stored is not None else None
        if res:
            wrapped(layout, residual_text(res), "INFO")
        layout.row().prop(settings, "source", expand=True)
        layout.prop(settings, "source_path" if settings.source == "FILE" else "source_head")
        reason = VOCA_OT_character_transfer.disabled_reason(context)
        row = layout.row(align=True)
        row.enabled = reason is None
        row.operator(VOCA_OT_character_transfer.bl_idname, icon="SHAPEKEY_DATA")
        row.operator(VOCA_OT_character_drive.bl_idname, icon="ACTION")
        if reason:
            wrapped(layout, reason, "INFO")
        layout.prop(settings, "curves_path")


CLASSES = (VOCA_PG_character, *character_operators.CLASSES, VOCA_PT_character)
