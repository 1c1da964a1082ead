"""Operators: animate from audio (modal with a worker thread, or synchronous), add a FLAME head, remove.

``voca.animate_from_audio``:

* a :class:`..jobs.JobOperator` (the add-on's one job runner): ``invoke`` (a button in the UI) validates on
  the main thread (:func:`prepare`), then a :class:`..jobs.JobRun` starts a :class:`.pipeline.AnimateJob`
  (a worker thread that never touches bpy and only fills a queue, with the phone pass beside it); the
  modal handler drains the queue on a 0.1 s timer, shows progress (``window_manager.progress_update``
  and ``scene.voca.progress``), Esc cancels (the worker's next progress call raises), and the result is
  written in the modal's final call, which returns FINISHED — so Blender pushes exactly ONE undo step for
  the whole run. Without a window (``blender -b``, the bpy module) ``invoke`` runs ``execute``. It is
  refused while any job (a Character one too) runs on the scene.
* ``execute`` (Python, headless, the redo panel): the same pipeline, synchronously.

Undo in background Blender / the bpy module: the undo stack exists only after a first
``bpy.ops.ed.undo_push()``, and operators called from Python push undo steps only when called with
``undo=True`` (``bpy.ops.voca.animate_from_audio('EXEC_DEFAULT', True)``); then ``bpy.ops.ed.undo()``
removes the run (tested).

Every operator has ``disabled_reason(context)`` (reads properties only, no disk access): ``poll`` returns
whether it is None and passes it to ``poll_message_set``, and the panel prints it under a grey button.
User errors are reported with ``self.report({'ERROR'}, message)`` and leave the scene unchanged.

Contract: main thread (``bpy``). Imports ``bpy``, :mod:`voca_addon.core` and this package.
"""
# No ``from __future__ import annotations`` here: Blender evaluates the property annotations of
# registered classes, and string annotations would hide names such as module constants from it.

import dataclasses
from typing import NamedTuple, Optional

import bpy

from ...core.errors import VocaError
from ..emotion import writer as emotion_writer
from . import pipeline, properties, writer
from .. import compat, preferences, reporting, transaction
from .. import jobs
from ..liveliness import writer as liveliness_writer
from ..articulation import operators as articulation_operators, properties as articulation_properties


def prepare(context) -> tuple:
    """(scene, obj, settings) for a run from the context, validated; raises VocaError. Changes nothing."""
    scene, obj = context.scene, context.active_object
    problem = pipeline.target_problem(obj)
    if problem:
        raise VocaError(problem)
    settings = properties.settings_from_scene(scene, preferences.addon_preferences(context), obj)
    settings = dataclasses.replace(settings, phones=articulation_properties.phone_request(scene, obj))
    pipeline.validate_settings(settings)
    pipeline.check_target(scene, obj, settings)
    return scene, obj, settings


class AnimatePlan(NamedTuple):
    """What a run needs from the scene: the head (by session_uid: renaming it meanwhile is fine), settings."""
    object_uid: int
    settings: pipeline.AnimateSettings


def _by_uid(collection, uid: int):
    """The data-block of ``collection`` with this ``session_uid`` (stable across renames), or None."""
    return next((item for item in collection if item.session_uid == uid), None)


class VOCA_OT_animate_from_audio(jobs.JobOperator, bpy.types.Operator):
    """Animate the active FLAME head from the audio file with VOCA (Esc cancels)"""

    bl_idname = "voca.animate_from_audio"
    bl_label = "Animate from audio"
    bl_options = {"REGISTER", "UNDO"}

    PROGRESS_GROUP = "voca"
    BUSY = "VOCA is animating this scene (Esc cancels)."
    CANCELLED = "VOCA: cancelled; nothing was changed."

    @classmethod
    def disabled_reason(cls, context) -> Optional[str]:
        scene = context.scene
        if scene is None or not hasattr(scene, "voca"):
            return "No scene."
        busy = jobs.busy_reason(scene)
        if busy:
            return busy
        if not scene.voca.audio_path:
            return "Choose an audio file."
        return pipeline.target_problem(context.active_object)

    poll = classmethod(reporting.poll_by_reason)

    @classmethod
    def prepare(cls, context) -> AnimatePlan:
        _scene, obj, settings = prepare(context)
        return AnimatePlan(obj.session_uid, settings)

    @classmethod
    def worker(cls, plan: AnimatePlan) -> pipeline.AnimateJob:
        return pipeline.AnimateJob(plan.settings)          # thread 'voca-animate', with its phone pass

    @staticmethod
    def compute(plan: AnimatePlan, progress) -> pipeline.ComputeResult:
        return pipeline.compute(plan.settings, progress)

    @classmethod
    def apply(cls, scene, plan: AnimatePlan, result: pipeline.ComputeResult) -> pipeline.ApplyReport:
        obj = _by_uid(bpy.data.objects, plan.object_uid)
        if obj is None:
            raise VocaError("The head was deleted while VOCA was running; nothing was written.")
        return pipeline.apply(scene, obj, result, plan.settings)


class VOCA_OT_add_flame_head(bpy.types.Operator):
    """Add a FLAME head (the template mesh, vertex order kept) and make it active"""

    bl_idname = "voca.add_flame_head"
    bl_label = "Add FLAME head"
    bl_options = {"REGISTER", "UNDO"}

    filepath: bpy.props.StringProperty(name="Template", subtype="FILE_PATH", options={"SKIP_SAVE"},
                                       description="FLAME template mesh (empty: the preferences' template, "
                                                   "else $VOCA_MODEL_DIR or ~/voca_models)")

    @classmethod
    def disabled_reason(cls, context) -> Optional[str]:
        if context.scene is None:
            return "No scene."
        if context.mode != "OBJECT":
            return "Switch to Object Mode first."
        return None

    poll = classmethod(reporting.poll_by_reason)

    @reporting.guarded
    def execute(self, context):
        path = bpy.path.abspath(self.filepath) if self.filepath else \
            preferences.model_paths(preferences.addon_preferences(context))["template"]
        try:
            obj = pipeline.ensure_head(context, path)
        except VocaError as exc:
            self.report({"ERROR"}, str(exc))
            return {"CANCELLED"}
        self.report({"INFO"}, f"Added '{obj.name}' ({len(obj.data.vertices)} vertices).")
        return {"FINISHED"}


def has_voca_data(obj, scene=None) -> bool:
    """Whether ``obj`` carries anything the add-on wrote (reads properties only): its keys, curves, action,
    driven keys' record, liveliness; with ``scene`` also its sound strip there (one made for it, or the one it
    names) and its word markers (both still there after the artist deleted every shape key). Cheap checks
    first: the panel polls it."""
    if obj is None:
        return False
    if liveliness_writer.has_liveliness(obj):
        return True
    key = obj.data.shape_keys if obj.type == "MESH" else None
    action = key.animation_data.action if key is not None and key.animation_data else None
    if key is not None and (key.get(writer.OWNED_KEYS) or key.get(emotion_writer.OWNED_EMOTIONS)
                            or key.get(writer.DRIVEN_KEYS) or (action is not None and action.get(writer.OWNED))):
        return True
    return scene is not None and obj.type == "MESH" and _has_scene_data(scene, obj)


def _has_scene_data(scene, obj) -> bool:
    """``obj``'s sound strip (one made for this head by name: a strip of no head is no head's here) or its word
    markers (recorded under its name: markers of no head do not offer Remove on every mesh) in ``scene``."""
    editor = scene.sequence_editor
    if editor is not None and any(s.get(writer.OWNED) and writer.made_for(s, obj)
                                  for s in compat.sequencer_strips(editor)):
        return True
    return articulation_operators.has_word_markers(scene, obj, named=True)


def _range_left(scene, obj) -> bool:
    """Animate's frame range is still recorded and only this add-on head is left to give it back."""
    return bool(obj.get(writer.OWNED) and writer.FRAME_RANGE in scene
                and not any(o != obj and has_voca_data(o, scene) for o in scene.objects))


class VOCA_OT_remove_animation(bpy.types.Operator):
    """Remove what VOCA wrote on the active object (your own keys, actions and drivers stay)"""

    bl_idname = "voca.remove_animation"
    bl_label = "Remove VOCA animation"
    bl_options = {"REGISTER", "UNDO"}

    emotions: bpy.props.BoolProperty(name="Emotion keys", default=True,
                                     description="Also remove VOCA's emotion keys and emotion curves")
    sound: bpy.props.BoolProperty(name="Sound strip", default=True,
                                  description="Also remove VOCA's sound strip from the sequencer")

    @classmethod
    def disabled_reason(cls, context) -> Optional[str]:
        obj = context.active_object
        if obj is None or obj.type != "MESH":
            return "Select the animated head."
        if obj.mode == "EDIT":
            return f"'{obj.name}' is in Edit Mode; switch to Object Mode."
        busy = jobs.busy_reason(context.scene) if context.scene is not None else None
        if busy:
            return busy
        if not (has_voca_data(obj, context.scene) or _range_left(context.scene, obj)):
            return f"'{obj.name}' has no VOCA animation."
        return transaction.linked_problem(obj)

    poll = classmethod(reporting.poll_by_reason)

    @reporting.guarded
    def execute(self, context):
        obj = context.active_object
        scene = context.scene
        key = obj.data.shape_keys
        driven = len(writer.driven_keys(key))                # the rig's keys Drive keyed: given back, not removed
        with transaction.all_or_nothing(scene, [obj]):      # a failure half-way changes nothing (see below)
            removed = emotion_writer.remove_emotion_keys(obj) if self.emotions else 0
            removed += articulation_operators.remove_all(scene, obj)   # corrections, word markers
            removed += writer.remove_animation(obj)
            strips = writer.remove_sound_strips(scene, obj) if self.sound else 0
            if not any(o != obj and has_voca_data(o, scene) for o in scene.objects):   # another head's clip may need
                writer.give_back_frame_range(scene)         # the range: the last Remove gives it back
            # last: the rig's objects, which the transaction removes when new but does not re-create when deleted
            removed += liveliness_writer.remove_liveliness(obj)        # blinks, head motion, gaze, rig
        given = f"; {driven} of its own keys given back their values" if driven else ""
        self.report({"INFO"}, f"Removed {removed} shape keys and {strips} sound strip(s) from '{obj.name}'{given}.")
        return {"FINISHED"}


CLASSES = (VOCA_OT_animate_from_audio, VOCA_OT_add_flame_head, VOCA_OT_remove_animation)
