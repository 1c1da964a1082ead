"""Living-face operators: mark the artist's active shape key as the blink.

* ``voca.mark_blink`` — :func:`voca_addon.blender.liveliness.writer.mark_as_blink` on the active shape key: a run with
  blinks on then keys that key's value (it is never deleted) instead of adding ``VOCA blink``.

``disabled_reason(context)`` reads properties only (``poll`` through :func:`..reporting.poll_by_reason`);
a refused key is reported and changes nothing. The mark cannot move while a blink is keyed on the head
(Remove VOCA animation first): the curve would stay behind on the key that had it.

Contract: main thread (``bpy``). Imports ``bpy`` and this package.
"""
# No ``from __future__ import annotations`` here: Blender evaluates the annotations of registered classes.

from typing import Optional

import bpy

from .. import compat, keyframes, reporting
from . import writer as liveliness_writer
from ..speech import properties, writer


def keyed_blink(obj) -> Optional[str]:
    """The key a blink is keyed on now (an F-curve of the ``VOCA blink`` group in VOCA's action), or None."""
    name = liveliness_writer.blink_key_name(obj)
    anim_data = obj.data.shape_keys.animation_data if name is not None else None
    if anim_data is None or anim_data.action is None:
        return None
    fcurve = compat.find_fcurve(anim_data, keyframes.value_path(name))
    group = fcurve.group if fcurve is not None else None
    return name if group is not None and group.name == liveliness_writer.BLINK_GROUP else None


class VOCA_OT_mark_blink(bpy.types.Operator):
    """Use the active shape key as the blink: runs with Blinks on key its value (the key is never deleted)"""

    bl_idname = "voca.mark_blink"
    bl_label = "Mark as blink"
    bl_options = {"REGISTER", "UNDO"}

    @classmethod
    def disabled_reason(cls, context) -> Optional[str]:
        obj = context.active_object
        if obj is None or obj.type != "MESH":
            return "Select the head mesh."
        if obj.mode == "EDIT":
            return f"'{obj.name}' is in Edit Mode; switch to Object Mode."
        key, block = obj.data.shape_keys, obj.active_shape_key
        if key is None or block is None or block == key.reference_key:
            return "Select your closed-eye shape key (Object Data › Shape Keys); the Basis cannot be."
        if block.name in key.get(writer.OWNED_KEYS, []) or block.name in key.get(liveliness_writer.LIVELY_KEYS, []):
            return f"'{block.name}' is one of VOCA's own keys; select one of yours."
        if properties.marked_blink(obj) == block.name:
            return f"'{block.name}' is the blink already."
        keyed = keyed_blink(obj)
        if keyed is not None:
            return f"The blink is keyed on '{keyed}': Remove VOCA animation first."
        return None

    poll = classmethod(reporting.poll_by_reason)

    @reporting.guarded
    def execute(self, context):
        obj = context.active_object

        def mark() -> str:
            name = obj.active_shape_key.name
            liveliness_writer.mark_as_blink(obj, name)
            return f"'{name}' is the blink of '{obj.name}': runs with Blinks on key it."
        return reporting.run_action(self, mark)


CLASSES = (VOCA_OT_mark_blink,)
