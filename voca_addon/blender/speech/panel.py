"""The VOCA tab of the 3D Viewport's sidebar (N panel): one main panel and two sub-panels.

Main: audio file, target head status (+ Add FLAME head), speaking style (one subject or blend sliders),
emotion and intensity, start frame, write mode, Animate from audio (greyed with the operator's
``disabled_reason`` printed under it), the progress bar while a run is going, Remove.
Sub-panels: Emotions (source, add, mark the active shape key, key at a frame or over a range), Living
face (blinks, head motion, eye motion, FLAME rig: ``scene.voca.living``; Mark as blink) and Model files
(the verdicts stored by the preferences' checks).

Drawing reads properties only (no disk access): statuses of model files come from the preferences.

Contract: main thread (``bpy``). Imports ``bpy`` and this package.
"""
from __future__ import annotations

import textwrap

import bpy

from ...core.models import conditions
from ..emotion import writer as emotion_writer
from . import pipeline, properties
from .. import jobs, preferences
from ..emotion.operators import VOCA_OT_add_emotions, VOCA_OT_key_emotion, VOCA_OT_mark_emotion
from ..liveliness.operators import VOCA_OT_mark_blink
from .operators import VOCA_OT_add_flame_head, VOCA_OT_animate_from_audio, VOCA_OT_remove_animation

WRAP = 30                           # characters per label line: what the default sidebar (291 px) shows


def wrapped(layout, text: str, icon: str = "NONE") -> None:
    """``text`` as labels of at most :data:`WRAP` characters, the icon on the first."""
    for i, line in enumerate(textwrap.wrap(text, WRAP) or [""]):
        layout.label(text=line, icon=icon if i == 0 else "BLANK1")


def operator_button(layout, op, context, text=None, icon="NONE"):
    """The operator's button, greyed with its ``disabled_reason`` printed under it; returns its props."""
    reason = op.disabled_reason(context)
    row = layout.row()
    row.enabled = reason is None
    props = row.operator(op.bl_idname, text=text or op.bl_label, icon=icon)
    if reason:
        wrapped(layout, reason, "INFO")
    return props


class _Sidebar:
    """Where every VOCA panel lives: the 3D Viewport's sidebar, tab "VOCA"."""
    bl_space_type = "VIEW_3D"
    bl_region_type = "UI"
    bl_category = "VOCA"


class _SubPanel(_Sidebar):
    """A closed-by-default sub-panel of the main VOCA panel."""
    bl_parent_id = "VIEW3D_PT_voca"
    bl_options = {"DEFAULT_CLOSED"}


class VIEW3D_PT_voca(_Sidebar, bpy.types.Panel):
    bl_label = "VOCA"
    bl_idname = "VIEW3D_PT_voca"

    def draw(self, context):
        layout, props = self.layout, context.scene.voca
        layout.prop(props, "audio_path")
        layout.row().prop(props, "channel", expand=True)
        draw_target(layout, context)
        draw_style(layout.box(), props, context)
        col = layout.column(align=True)
        col.label(text="Emotion (optional):")
        col.prop(props, "emotion", text="", icon="VIEWZOOM")
        sub = col.column(align=True)
        sub.active = bool(props.emotion)
        sub.prop(props, "strength")
        sub.prop(props, "ease_frames")
        col = layout.column(align=True)
        col.prop(props, "use_scene_start")
        sub = col.row()
        sub.enabled = not props.use_scene_start
        sub.prop(props, "start_frame")
        layout.label(text="Write the motion as:")
        layout.row().prop(props, "mode", expand=True)
        if jobs.progress_group(context.scene) == "voca":      # Animate runs here (another job: a grey button)
            layout.progress(factor=props.progress, type="BAR", text=f"{props.progress:.0%} {props.progress_stage}")
            layout.label(text="Esc cancels", icon="CANCEL")
        else:
            operator_button(layout, VOCA_OT_animate_from_audio, context, icon="PLAY_SOUND")
        layout.operator(VOCA_OT_remove_animation.bl_idname, icon="TRASH")



def draw_target(layout, context) -> None:
    """The active object's fitness as the head (or why not) and the Add FLAME head button."""
    box = layout.box()
    obj = context.active_object
    problem = pipeline.target_problem(obj)
    if problem is None:
        box.label(text=f"{obj.name}: {len(obj.data.vertices)} vertices ✓", icon="CHECKMARK")
    else:
        wrapped(box, problem, "ERROR")
    operator_button(box, VOCA_OT_add_flame_head, context, icon="MESH_MONKEY")


def draw_style(box, props, context) -> None:
    """One speaking style or the blend sliders, named after the checkpoint's conditions."""
    box.row().prop(props, "style_mode", expand=True)
    if props.style_mode == "SINGLE":
        box.prop(props, "condition", text="")
        return
    names = properties.condition_names(preferences.model_paths(preferences.addon_preferences(context))["voca"])
    col = box.column(align=True)
    for i, name in enumerate(names[:properties.MAX_BLEND]):
        col.prop(props, "blend_weights", index=i, text=conditions.style_label(i + 1, name), slider=True)


class VOCA_PT_emotions(_SubPanel, bpy.types.Panel):
    bl_label = "Emotions"
    bl_idname = "VOCA_PT_emotions"

    def draw(self, context):
        layout, props = self.layout, context.scene.voca
        col = layout.column(align=True)
        col.prop(props, "emotion_source", text="Source")
        col.prop(props, "emotion_neutral", text="Neutral")
        operator_button(layout, VOCA_OT_add_emotions, context, icon="ADD")
        names = sorted(emotion_writer.emotion_keys(context.active_object))
        if names:
            wrapped(layout, "On this head: " + ", ".join(names), "SHAPEKEY_DATA")
        operator_button(layout, VOCA_OT_mark_emotion, context, icon="BOOKMARKS")
        layout.separator()
        if props.emotion:
            wrapped(layout, f"Key the emotion '{props.emotion}' at intensity {props.strength:.2f}:")
        else:
            wrapped(layout, "Choose an emotion in the VOCA panel above to key it here.")
        reason = VOCA_OT_key_emotion.disabled_reason(context)
        row = layout.row(align=True)
        row.enabled = reason is None
        op = row.operator(VOCA_OT_key_emotion.bl_idname, text="At current frame", icon="KEY_HLT")
        op.value, op.use_range = props.strength, False
        row = layout.row(align=True)
        row.prop(props, "key_frame_start")
        row.prop(props, "key_frame_end")
        row = layout.row()
        row.enabled = reason is None
        op = row.operator(VOCA_OT_key_emotion.bl_idname, text="Over range (eased)", icon="IPO_EASE_IN_OUT")
        op.use_range, op.value, op.ease = True, props.strength, props.ease_frames
        op.frame_start, op.frame_end = props.key_frame_start, props.key_frame_end
        if reason:
            wrapped(layout, reason, "INFO")


BLINK_FROM = {"source": "Blink: the shape file above.", "flame": "Blink: VOCA's blink from the FLAME model.",
              "": properties.NO_BLINK_SHAPE}


class VOCA_PT_living(_SubPanel, bpy.types.Panel):
    """Blinks, head motion, eye motion and a FLAME rig for the next Animate from audio."""
    bl_label = "Living face"
    bl_idname = "VOCA_PT_living"

    def draw(self, context):
        layout, living = self.layout, context.scene.voca.living
        prefs = preferences.addon_preferences(context)
        draw_blinks(layout.column(align=True), living, prefs, context)
        col = layout.column(align=True)
        col.prop(living, "head_motion", icon="ORIENTATION_GIMBAL")
        sub = col.column(align=True)
        sub.active = living.head_motion
        sub.prop(living, "head_strength", slider=True)
        sub.prop(living, "head_smoothness")
        col = layout.column(align=True)
        col.prop(living, "gaze", icon="HIDE_OFF")
        sub = col.column(align=True)
        sub.active = living.gaze
        sub.prop(living, "look_at", icon="EMPTY_AXIS")
        draw_rig(layout.column(align=True), living, prefs)
        layout.prop(living, "seed")
        if living.blinks or living.head_motion or living.gaze or living.rig:
            wrapped(layout, "Animate from audio adds these; Remove VOCA animation takes them away.", "INFO")


def draw_blinks(col, living, prefs, context) -> None:
    """Blinks on/off, the shape's source and where the shape will come from, Mark as blink."""
    col.prop(living, "blinks", icon="HIDE_ON")
    sub = col.column(align=True)
    sub.active = living.blinks
    sub.prop(living, "blink_source", text="Shape")
    obj = context.active_object
    shape = properties.blink_shape_of(living, prefs, obj)
    if living.blinks:
        text = (f"Blink: your key '{properties.marked_blink(obj)}'." if shape == "marked"
                else BLINK_FROM[shape])
        wrapped(sub, text, "INFO" if shape else "ERROR")
    operator_button(sub, VOCA_OT_mark_blink, context, icon="BOOKMARKS")


def draw_rig(col, living, prefs) -> None:
    """FLAME rig on/off, its model (else the preferences'), correctives and face-shape sliders."""
    col.prop(living, "rig", icon="ARMATURE_DATA")
    sub = col.column(align=True)
    sub.active = living.rig
    sub.prop(living, "flame_model", text="Model")
    if living.rig and not properties.flame_model_of(living, prefs):
        wrapped(sub, properties.NO_FLAME_MODEL, "ERROR")
    sub.prop(living, "correctives")
    sub.prop(living, "shape_sliders")
    row = sub.row()
    row.active = living.rig and living.shape_sliders
    row.prop(living, "shape_slider_count")


class VOCA_PT_models(_SubPanel, bpy.types.Panel):
    bl_label = "Model files"
    bl_idname = "VOCA_PT_models"

    def draw(self, context):
        layout = self.layout
        prefs = preferences.addon_preferences(context)
        if prefs is None:
            wrapped(layout, "No preferences entry: model files come from $VOCA_MODEL_DIR or ~/voca_models.",
                    "INFO")
            return
        for which, title in (("voca", "VOCA"), ("deepspeech", "DeepSpeech"), ("template", "Template"),
                             ("flame_model", "FLAME model")):
            ok, status = getattr(prefs, f"{which}_ok"), getattr(prefs, f"{which}_status")
            icon = "QUESTION" if not status else ("CHECKMARK" if ok else "ERROR")
            layout.label(text=title, icon=icon)
            if status and not ok:
                wrapped(layout.box(), status)
        layout.operator(preferences.VOCA_OT_check_model_files.bl_idname, icon="FILE_REFRESH")


CLASSES = (VIEW3D_PT_voca, VOCA_PT_emotions, VOCA_PT_models, VOCA_PT_living)
