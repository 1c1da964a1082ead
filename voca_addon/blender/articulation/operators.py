"""Articulation operators: import an alignment file, words as timeline markers, re-apply the knobs.

* ``voca.import_alignment`` (file browser): reads a Praat TextGrid, a Rhubarb TSV / JSON or VOCA's JSON
  (:func:`voca_addon.core.phonemes.read_alignment`); a bad file is refused with its one message and changes
  nothing. A good one becomes the scene's alignment (``scene.voca_phones.alignment_path``) for the next run,
  and, when the active head carries a VOCA animation, its phone track at once (the closures are re-applied,
  VOCA is not recomputed; times past the clip's end are refused). A head the knobs would refuse (a shared mesh
  or action, VOCA's action not the active one, another vertex count: :mod:`.checks`) refuses the import too,
  before anything is written: neither the scene's alignment nor the head's track changes.
* ``voca.word_markers``: one timeline marker per word of the head's phone track, at the word's first frame,
  named the word. The markers made are listed in the scene's ``voca_word_markers``, per head (markers carry
  no custom properties): Remove VOCA animation removes exactly that head's still in place, another head's stay
  (a dialogue); ``voca.remove_word_markers`` removes every head's.
* ``voca.reapply_articulation``: apply the knobs again (after an edit elsewhere, e.g. a restored curve).

``disabled_reason(context)`` reads properties only; ``poll`` passes it on (:func:`..reporting.poll_by_reason`).

Contract: main thread (``bpy``). Imports ``bpy``, :mod:`voca_addon.core` and this package.
"""
# No ``from __future__ import annotations``: Blender evaluates the annotations of registered classes.

import json
from typing import Optional

import bpy
from bpy.props import StringProperty

from ...core.errors import InputError, VocaError
from . import phones as articulation_phones, properties as articulation_properties, writer as articulation_writer
from .. import jobs, reporting

WORD_MARKERS = "voca_word_markers"      # scene property: JSON [head name, frame, marker name] of each marker made


def _head_reason(context) -> Optional[str]:
    obj = context.active_object
    if obj is None or obj.type != "MESH":
        return "Select the animated head."
    if obj.mode == "EDIT":
        return f"'{obj.name}' is in Edit Mode; switch to Object Mode."
    scene = context.scene
    busy = jobs.busy_reason(scene) if scene is not None else None
    if busy:
        return busy
    return None


def articulation_reason(context) -> Optional[str]:
    """Why the knobs cannot act on the active object (reads properties only), or None."""
    return _head_reason(context) or articulation_writer.no_knobs_reason(context.active_object)


def words(track, fps: float, start: int) -> list:
    """(scene frame, word) of each word of ``track``: consecutive phones of one non-empty word, in order."""
    out, previous = [], None
    for phone in track.phones:
        if phone.word and phone.word != previous:
            out.append((start + int(round(phone.start * fps)), phone.word))
        previous = phone.word or None
    return out


def add_word_markers(scene, obj) -> int:
    """Markers for the words of ``obj``'s phone track (this head's earlier word markers replaced, another head's
    kept); returns how many."""
    track = articulation_writer.stored_track(obj)
    if track is None:
        raise VocaError(f"'{obj.name}' has no phone track: animate it with Lip closures on, or import an "
                        "alignment file.")
    store = obj.data.shape_keys[articulation_writer.STORE]
    items = words(track, float(store["fps"]), int(store["start"]))
    if not items:
        raise VocaError("The phone track names no words (an alignment without a word tier); import one with "
                        "words to mark them.")
    remove_word_markers(scene, obj)
    # the names as Blender keeps them (a marker name holds 63 bytes: a longer word is cut), so that Remove
    # word markers finds every one
    made = [scene.timeline_markers.new(word, frame=frame) for frame, word in items]
    scene[WORD_MARKERS] = [entry for entry in scene.get(WORD_MARKERS, []) if _head_of(str(entry)) != obj.name] + [
        json.dumps([obj.name, marker.frame, marker.name]) for marker in made]
    return len(items)


def _head_of(entry: str) -> Optional[str]:
    """The head an entry of :data:`WORD_MARKERS` was made for; None for one recorded before heads were (a
    plain "frame\tname")."""
    return json.loads(entry)[0] if entry.startswith("[") else None


def _marker_of(entry: str) -> str:
    """"frame\tname" of an entry of :data:`WORD_MARKERS`."""
    if entry.startswith("["):
        _head, frame, name = json.loads(entry)
        return f"{frame}\t{name}"
    return entry


def _markers_of(entry: str, obj) -> bool:
    """Does this entry go with ``obj``'s markers (every head's: ``obj`` None)? Also one of no head now: recorded
    before heads were, or under a name no object has any more (the head was renamed)."""
    head = _head_of(entry)
    return obj is None or head is None or head == obj.name or head not in bpy.data.objects


def has_word_markers(scene, obj=None, named: bool = False) -> bool:
    """Has the add-on made word markers in ``scene`` (for ``obj``: that head's, or ones no head holds now;
    ``named``: only those recorded under ``obj``'s name)?"""
    entries = [str(entry) for entry in scene.get(WORD_MARKERS, [])]
    if named:
        return obj is not None and any(_head_of(entry) == obj.name for entry in entries)
    return any(_markers_of(entry, obj) for entry in entries)


def remove_word_markers(scene, obj=None) -> int:
    """Remove the word markers the add-on made that are still in place — of head ``obj`` only when given (another
    head's stay) — and return how many.

    Markers carry no owner, so one is the add-on's by its frame and name; an artist's marker of the same name
    on the same frame is kept: no more markers go per (frame, name) than the add-on made, and markers bound
    to a camera (never the add-on's) go last."""
    from collections import Counter
    entries = [str(entry) for entry in scene.get(WORD_MARKERS, [])]
    going = [entry for entry in entries if _markers_of(entry, obj)]
    made = Counter(_marker_of(entry) for entry in going)
    gone = []
    for marker in sorted(scene.timeline_markers, key=lambda m: m.camera is not None):
        entry = f"{marker.frame}\t{marker.name}"
        if made[entry] > 0:
            made[entry] -= 1
            gone.append(marker)
    for marker in gone:
        scene.timeline_markers.remove(marker)
    kept = [entry for entry in entries if entry not in going]
    if kept:
        scene[WORD_MARKERS] = kept
    elif WORD_MARKERS in scene:
        del scene[WORD_MARKERS]
    return len(gone)


def import_alignment(context, path: str) -> str:
    """Read ``path``, make it the scene's alignment and the active head's phone track; the INFO line."""
    obj = context.active_object
    articulated = articulation_writer.has_articulation(obj)
    duration = None
    if articulated:
        store = obj.data.shape_keys[articulation_writer.STORE]
        duration = int(store["frames"]) / float(store["fps"])
    track = articulation_phones.read_alignment(path, duration)        # raises before anything changes
    line = f"{len(track.phones)} phones from '{bpy.path.basename(path)}' ({track.label})" + "".join(
        f"; {w}" for w in track.warnings)          # e.g. a file that holds no phones
    if not articulated:
        context.scene.voca_phones.alignment_path = path
        return line + "; Animate from audio uses them."
    try:
        done = articulation_writer.set_track(obj, context.scene, track)       # every check before a write
    except VocaError as exc:
        raise InputError(f"Alignment not imported: {exc}") from exc
    context.scene.voca_phones.alignment_path = path
    obj.voca_articulation.status = done.status()
    if has_word_markers(context.scene, obj):    # the old track's words on the timeline: the new ones instead
        remove_word_markers(context.scene, obj)
        store = obj.data.shape_keys[articulation_writer.STORE]
        if words(track, float(store["fps"]), int(store["start"])):
            add_word_markers(context.scene, obj)
    return f"{line} on '{obj.name}': " + (articulation_writer.closure_line(track) if done.closures
                                          else "lip closures are off")


class VOCA_OT_import_alignment(bpy.types.Operator):
    """Phones already aligned to the audio (Praat TextGrid, Rhubarb TSV / JSON, VOCA's JSON) for the lip closures"""

    bl_idname = "voca.import_alignment"
    bl_label = "Import alignment"
    bl_options = {"REGISTER", "UNDO"}

    filepath: StringProperty(subtype="FILE_PATH", options={"SKIP_SAVE"})
    filter_glob: StringProperty(default="*.TextGrid;*.textgrid;*.tsv;*.json", options={"HIDDEN"})

    @classmethod
    def disabled_reason(cls, context) -> Optional[str]:
        scene = context.scene
        if scene is None or not hasattr(scene, "voca_phones"):
            return "No scene."
        busy = jobs.busy_reason(scene)
        if busy:
            return busy
        return None

    poll = classmethod(reporting.poll_by_reason)

    def invoke(self, context, _event):
        context.window_manager.fileselect_add(self)
        return {"RUNNING_MODAL"}

    @reporting.guarded
    def execute(self, context):
        if not self.filepath:
            self.report({"ERROR"}, "Choose an alignment file (.TextGrid, .tsv or .json).")
            return {"CANCELLED"}
        return reporting.run_action(self, lambda: import_alignment(context, bpy.path.abspath(self.filepath)))


class VOCA_OT_word_markers(bpy.types.Operator):
    """Mark each word of the head's phone track on the timeline (your own markers stay)"""

    bl_idname = "voca.word_markers"
    bl_label = "Words as markers"
    bl_options = {"REGISTER", "UNDO"}

    @classmethod
    def disabled_reason(cls, context) -> Optional[str]:
        reason = articulation_reason(context)
        if reason is None and not str(context.active_object.data.shape_keys[articulation_writer.STORE]
                                      .get("phones", "")):
            return "The head has no phone track: animate with Lip closures on, or import an alignment."
        return reason

    poll = classmethod(reporting.poll_by_reason)

    @reporting.guarded
    def execute(self, context):
        return reporting.run_action(
            self, lambda: f"{add_word_markers(context.scene, context.active_object)} word markers added.")


class VOCA_OT_remove_word_markers(bpy.types.Operator):
    """Remove the word markers VOCA added (your own markers stay)"""

    bl_idname = "voca.remove_word_markers"
    bl_label = "Remove word markers"
    bl_options = {"REGISTER", "UNDO"}

    @classmethod
    def disabled_reason(cls, context) -> Optional[str]:
        scene = context.scene
        return None if scene is not None and has_word_markers(scene) else "VOCA has added no word markers here."

    poll = classmethod(reporting.poll_by_reason)

    @reporting.guarded
    def execute(self, context):
        return reporting.run_action(self, lambda: f"{remove_word_markers(context.scene)} word markers removed.")


class VOCA_OT_reapply_articulation(bpy.types.Operator):
    """Apply the articulation knobs to the head's animation again (curves you edited by hand stay)"""

    bl_idname = "voca.reapply_articulation"
    bl_label = "Re-apply"
    bl_options = {"REGISTER", "UNDO"}

    disabled_reason = classmethod(lambda cls, context: articulation_reason(context))
    poll = classmethod(reporting.poll_by_reason)

    @reporting.guarded
    def execute(self, context):
        obj = context.active_object
        status = articulation_properties.reapply_head(obj, context.scene, force=True, strict=True)   # refused:
        if status:                      # raised, reported as an error by `guarded`
            self.report({"WARNING"}, status)
        else:
            self.report({"INFO"}, f"Articulation re-applied on '{obj.name}'.")
        return {"FINISHED"}


def remove_all(scene, obj) -> int:
    """What Remove VOCA animation takes of this stage: the corrections, the stored data, the word markers."""
    removed = articulation_writer.remove_articulation(obj)
    remove_word_markers(scene, obj)             # this head's markers (another head's stay)
    if hasattr(obj, "voca_articulation"):
        obj.voca_articulation.status = ""       # nothing left for the knobs to speak of
    return removed


CLASSES = (VOCA_OT_import_alignment, VOCA_OT_word_markers, VOCA_OT_remove_word_markers,
           VOCA_OT_reapply_articulation)

__all__ = ["CLASSES", "add_word_markers", "has_word_markers", "remove_word_markers", "import_alignment", "articulation_reason",
           "remove_all", "words"]
