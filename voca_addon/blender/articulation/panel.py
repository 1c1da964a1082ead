"""The "Articulation" sub-panel: lip closures, where the phones come from, the knobs, words as markers.

Top: the phone source for the next Animate from audio (``scene.voca_phones``: alignment file + Import
alignment, transcript text or file) and, when PocketSphinx cannot be used in this Blender's Python, one line
saying so (alignment files still work). Then the active head's *Lip closures* switch and knobs
(``object.voca_articulation``), greyed with the reason when the head has no animation to adjust, its phone
track in one line, and what the last re-application had to say (a hand-edited curve left alone). Last:
Words as markers / Remove word markers.

Drawing reads properties only; the detector's availability is found once and cached
(:func:`voca_addon.blender.articulation.phones.detector_status`).

Contract: main thread (``bpy``). Imports ``bpy`` and this package.
"""
from __future__ import annotations

import bpy

from . import phones as articulation_phones, writer as articulation_writer
from .operators import (VOCA_OT_import_alignment, VOCA_OT_reapply_articulation, VOCA_OT_remove_word_markers,
                        VOCA_OT_word_markers, articulation_reason)
from ..speech.panel import _SubPanel, operator_button, wrapped


class VOCA_PT_articulation(_SubPanel, bpy.types.Panel):
    """Lip closures on p/b/m and f/v, and the articulation knobs of the active head."""
    bl_label = "Articulation"
    bl_idname = "VOCA_PT_articulation"

    def draw(self, context):
        layout = self.layout
        draw_phone_source(layout.column(align=True), context)
        layout.separator()
        obj = context.active_object
        props = getattr(obj, "voca_articulation", None) if obj is not None else None
        if props is None:
            wrapped(layout, "Select the head to adjust its articulation.", "INFO")
            return
        layout.prop(props, "closures", icon="MOD_SMOOTH")
        reason = articulation_reason(context)
        col = layout.column(align=True)
        col.enabled = reason is None
        sub = col.column(align=True)
        sub.active = props.closures
        sub.prop(props, "closure_strength", slider=True)
        col.prop(props, "speech_strength", slider=True)
        col.prop(props, "mouth_close", slider=True)
        col.prop(props, "smoothing_ms")
        if reason:
            wrapped(layout, reason, "INFO")
        else:
            track = articulation_writer.stored_track(obj)
            wrapped(layout, articulation_writer.closure_line(track) if track is not None
                    else "No phone track: import an alignment file for lip closures.",
                    "INFO" if track is not None else "ERROR")
        if props.status:
            wrapped(layout, props.status, "ERROR")
        operator_button(layout, VOCA_OT_reapply_articulation, context, icon="FILE_REFRESH")
        row = layout.row(align=True)
        row.enabled = VOCA_OT_word_markers.disabled_reason(context) is None
        row.operator(VOCA_OT_word_markers.bl_idname, icon="MARKER_HLT")
        sub = row.row(align=True)
        sub.enabled = VOCA_OT_remove_word_markers.disabled_reason(context) is None
        sub.operator(VOCA_OT_remove_word_markers.bl_idname, text="", icon="X")


def draw_phone_source(col, context) -> None:
    """Alignment file + Import, transcript text / file, and the detector's availability in one line."""
    phones = context.scene.voca_phones
    col.label(text="Phones for the next run:")
    row = col.row(align=True)
    row.prop(phones, "alignment_path", text="")
    row.operator(VOCA_OT_import_alignment.bl_idname, text="", icon="IMPORT")
    sub = col.column(align=True)
    sub.active = not phones.alignment_path
    sub.prop(phones, "transcript", text="", icon="TEXT")
    sub.prop(phones, "transcript_path", text="")
    ok, why = articulation_phones.detector_status()
    if not ok and not phones.alignment_path:
        wrapped(col, f"{why} Import an alignment file for lip closures.", "ERROR")


CLASSES = (VOCA_PT_articulation,)
