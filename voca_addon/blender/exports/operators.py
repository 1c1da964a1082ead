"""Export the animated head for game engines from the VOCA sidebar: glTF/GLB, FBX, Alembic, USD.

:class:`VOCA_OT_export_animation` asks for a file (the extension follows the chosen format) and calls
:func:`voca_addon.blender.exports.engines.export` on the active object over the scene's frame range. :class:`VOCA_PT_export` is a
sub-panel of the VOCA tab with one button per format, greyed with the reason when the active object
cannot be exported. A user error is reported with its message, a bug as one line naming its log file
(:mod:`..reporting`); nothing is written then.

Contract: main thread (``bpy``). Imports ``bpy`` and this package.
"""
from __future__ import annotations

import os
from typing import Optional

import bpy
from bpy.props import EnumProperty, StringProperty
from bpy_extras.io_utils import ExportHelper

from . import engines as exports
from .. import reporting
from ..speech.panel import _SubPanel, operator_button

FORMAT_ITEMS = (
    ("glb", "glTF Binary (.glb)", "Shape keys as morph targets with a weights animation per action"),
    ("fbx", "FBX (.fbx)", "Shape keys as blend shapes with their baked animation"),
    ("abc", "Alembic (.abc)", "Point cache: every frame's vertex positions"),
    ("usd", "USD (.usd)", "Point cache: every frame's vertex positions"),
)


class VOCA_OT_export_animation(bpy.types.Operator, ExportHelper):
    """Export the active head and its animation over the scene's frame range for a game engine"""

    bl_idname = "voca.export_animation"
    bl_label = "Export Animation"
    bl_options = {"REGISTER"}

    filename_ext = ".glb"
    filter_glob: StringProperty(default="*.glb;*.fbx;*.abc;*.usd", options={"HIDDEN"})
    format: EnumProperty(name="Format", items=FORMAT_ITEMS, default="glb")

    @classmethod
    def disabled_reason(cls, context) -> Optional[str]:
        obj = context.active_object
        if obj is None or obj.type != "MESH":
            return "Select the animated head (a mesh)."
        if obj.mode == "EDIT":
            return f"'{obj.name}' is in Edit Mode; switch to Object Mode."
        key = obj.data.shape_keys
        anim_data = key.animation_data if key is not None else None
        if anim_data is None or not (anim_data.action or len(anim_data.nla_tracks)):
            return f"'{obj.name}' has no shape-key animation to export; animate it first."
        return None

    @classmethod
    def poll(cls, context):
        return cls.disabled_reason(context) is None

    def check(self, context):
        """Keep the file name's extension that of the chosen format."""
        self.filename_ext = f".{self.format}"
        base, ext = os.path.splitext(self.filepath)
        if ext.lower() != self.filename_ext:
            self.filepath = (base if ext.lower() in {f".{f}" for f in exports.FORMATS} else self.filepath) \
                + self.filename_ext
            return True
        return False

    def invoke(self, context, event):
        self.filename_ext = f".{self.format}"
        return ExportHelper.invoke(self, context, event)

    @reporting.guarded
    def execute(self, context):
        path = exports.export(context.scene, context.active_object, self.format, bpy.path.abspath(self.filepath))
        self.report({"INFO"}, f"Wrote {path}")
        return {"FINISHED"}


class VOCA_PT_export(_SubPanel, bpy.types.Panel):
    bl_label = "Export for game engines"
    bl_idname = "VOCA_PT_export"

    def draw(self, context):
        layout = self.layout
        col = layout.column(align=True)
        for index, (fmt, label, _) in enumerate(FORMAT_ITEMS):
            props = operator_button(col, VOCA_OT_export_animation, context, text=label, icon="EXPORT") \
                if index == 0 else col.operator(VOCA_OT_export_animation.bl_idname, text=label, icon="EXPORT")
            props.format = fmt


CLASSES = (VOCA_OT_export_animation, VOCA_PT_export)
