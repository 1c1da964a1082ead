"""Emotion operators: add emotion keys from a source, mark an artist's key as an emotion, key an emotion.

* ``voca.add_emotions`` — emotion keys from a source (rule in :mod:`..speech.pipeline`: FLAME model ``.pkl`` →
  built-in presets, ``.npy`` / ``.npz`` offsets, a folder of target meshes + neutral, or one target +
  neutral). Empty source: ``scene.voca.emotion_source``, then the preferences' FLAME model.
* ``voca.mark_emotion`` — marks (or unmarks) the active shape key as an emotion.
* ``voca.key_emotion`` — keys an emotion at the current frame, or over a frame range with ease in / out.

Each operator has ``disabled_reason(context)`` (properties only); errors are reported and change nothing.

Contract: main thread (``bpy``). Imports ``bpy``, :mod:`voca_addon.core` and this package.
"""
# No ``from __future__ import annotations`` here: Blender evaluates the property annotations of
# registered classes, and string annotations would hide names such as module constants from it.

from typing import Optional

import bpy
from bpy.props import BoolProperty, FloatProperty, IntProperty, StringProperty

from ...core.emotion import sources as emotion_sources
from ...core.errors import VocaError
from . import writer as emotion_writer
from .. import preferences, reporting
from ..speech import writer


def _mesh_problem(context) -> Optional[str]:
    obj = context.active_object
    if obj is None or obj.type != "MESH":
        return "Select the head mesh."
    if obj.mode == "EDIT":
        return f"'{obj.name}' is in Edit Mode; switch to Object Mode."
    return None


def _abspath(path: str) -> Optional[str]:
    return bpy.path.abspath(path) if path else None


class VOCA_OT_add_emotions(bpy.types.Operator):
    """Add emotion shape keys (EMO <name>) to the active mesh from an emotion source"""

    bl_idname = "voca.add_emotions"
    bl_label = "Add emotions"
    bl_options = {"REGISTER", "UNDO"}

    source: StringProperty(name="Source", subtype="FILE_PATH", options={"SKIP_SAVE"},
                           description="FLAME model .pkl, .npy/.npz offsets, or a folder of target meshes "
                                       "(empty: the scene's emotion source, else the preferences' FLAME model)")
    neutral: StringProperty(name="Neutral mesh", subtype="FILE_PATH", options={"SKIP_SAVE"},
                            description="Neutral mesh of target meshes (empty: the scene's, else neutral.* "
                                        "in the folder)")
    names: StringProperty(name="Names", options={"SKIP_SAVE"},
                          description="Comma-separated emotions to add (empty: all the source holds)")
    strength: FloatProperty(name="Scale", min=0.01, max=10.0, default=1.0,
                            description="Scale of the offsets stored in the keys")

    @classmethod
    def disabled_reason(cls, context) -> Optional[str]:
        problem = _mesh_problem(context)
        if problem:
            return problem
        props = context.scene.voca
        prefs = preferences.addon_preferences(context)
        if not (props.emotion_source or (prefs is not None and prefs.flame_model_path)):
            return "Choose an emotion source (or the FLAME model in the preferences)."
        return None

    @classmethod
    def poll(cls, context):
        # The source may come from the operator's own property: only the mesh is required here.
        problem = _mesh_problem(context)
        if problem:
            cls.poll_message_set(problem)
        return problem is None

    @reporting.guarded
    def execute(self, context):
        props, obj = context.scene.voca, context.active_object
        source = _abspath(self.source) or _abspath(props.emotion_source) or \
            preferences.model_paths(preferences.addon_preferences(context))["flame_model"]
        neutral = _abspath(self.neutral) or _abspath(props.emotion_neutral)
        names = [n.strip() for n in self.names.split(",") if n.strip()] or None
        try:
            if not source:
                raise VocaError("Choose an emotion source: a FLAME model (.pkl) for the built-in presets, "
                                "a .npy / .npz file of offsets, or a folder of target meshes with a neutral.")
            emotions = emotion_sources.load_emotions(source, names, neutral)
            created = emotion_writer.add_emotion_keys(obj, emotions, self.strength)
        except VocaError as exc:
            self.report({"ERROR"}, str(exc))
            return {"CANCELLED"}
        self.report({"INFO"}, f"Added {len(created)} emotion keys to '{obj.name}': {', '.join(created)}.")
        return {"FINISHED"}


class VOCA_OT_mark_emotion(bpy.types.Operator):
    """Mark the active shape key as an emotion (VOCA can then key it; it is never deleted)"""

    bl_idname = "voca.mark_emotion"
    bl_label = "Mark as emotion"
    bl_options = {"REGISTER", "UNDO"}

    unmark: BoolProperty(name="Unmark", default=False, options={"SKIP_SAVE"},
                         description="Remove the mark instead (the key stays)")

    @classmethod
    def disabled_reason(cls, context) -> Optional[str]:
        problem = _mesh_problem(context)
        if problem:
            return problem
        obj = context.active_object
        block = obj.active_shape_key
        key = obj.data.shape_keys
        if block is None or key is None:
            return "Select one of your shape keys (Object Data › Shape Keys)."
        if block == key.reference_key:
            return "The Basis cannot be an emotion; select another shape key."
        if block.name in key.get(writer.OWNED_KEYS, []):
            return f"'{block.name}' is one of VOCA's speech keys."
        return None

    poll = classmethod(reporting.poll_by_reason)

    @reporting.guarded
    def execute(self, context):
        obj = context.active_object
        name = obj.active_shape_key.name
        if self.unmark:
            done = emotion_writer.unmark_emotion(obj, name)
            self.report({"INFO"}, f"'{name}' is no longer an emotion." if done else f"'{name}' was not marked.")
            return {"FINISHED"}
        try:
            emotion_writer.mark_as_emotion(obj, name)
        except VocaError as exc:
            self.report({"ERROR"}, str(exc))
            return {"CANCELLED"}
        self.report({"INFO"}, f"'{name}' is marked as an emotion.")
        return {"FINISHED"}


class VOCA_OT_key_emotion(bpy.types.Operator):
    """Key an emotion's value: at the current frame, or over a frame range with ease in and out"""

    bl_idname = "voca.key_emotion"
    bl_label = "Key emotion"
    bl_options = {"REGISTER", "UNDO"}

    emotion: StringProperty(name="Emotion", options={"SKIP_SAVE"},
                            description="Emotion name (empty: the scene's emotion)")
    use_range: BoolProperty(name="Over a range", default=False,
                            description="Key 0 → value → 0 over From … To with eased ramps")
    frame_start: IntProperty(name="From", min=0, max=writer.MAX_FRAME, default=1)
    frame_end: IntProperty(name="To", min=0, max=writer.MAX_FRAME, default=100)
    ease: IntProperty(name="Ease", min=1, max=1000, default=12, description="Frames of each ramp")
    value: FloatProperty(name="Value", min=0.0, max=emotion_writer.SLIDER_MAX, default=1.0)

    @classmethod
    def disabled_reason(cls, context) -> Optional[str]:
        problem = _mesh_problem(context)
        if problem:
            return problem
        if not emotion_writer.emotion_keys(context.active_object):
            return "The head has no emotion keys: add emotions or mark a shape key first."
        return None

    poll = classmethod(reporting.poll_by_reason)

    @reporting.guarded
    def execute(self, context):
        obj, scene = context.active_object, context.scene
        name = self.emotion.strip() or scene.voca.emotion.strip()
        try:
            if not name:
                raise VocaError("Choose an emotion to key.")
            if self.use_range:
                key = emotion_writer.key_emotion(obj, name, self.frame_start, self.frame_end, self.ease,
                                                 self.value)
                where = f"frames {self.frame_start}–{self.frame_end}"
            else:
                key = emotion_writer.key_emotion_at(obj, name, scene.frame_current, self.value)
                where = f"frame {scene.frame_current}"
        except VocaError as exc:
            self.report({"ERROR"}, str(exc))
            return {"CANCELLED"}
        self.report({"INFO"}, f"Keyed '{key}' at {where}.")
        return {"FINISHED"}


CLASSES = (VOCA_OT_add_emotions, VOCA_OT_mark_emotion, VOCA_OT_key_emotion)
