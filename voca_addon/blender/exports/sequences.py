"""Mesh sequences in and out of Blender: import per-frame meshes as shape keys, export PC2 / OBJ frames.

* :func:`import_sequence` — a folder of per-frame ``.obj`` / ``.ply`` (numeric frame order, voca#131), a
  ``.npy`` [F, V, 3] or a ``.npz`` with ``vertices`` (+ ``fps``) → the smallest shape-key animation that
  reproduces every frame within 1 µm per coordinate (:func:`voca_addon.core.animation.sequences.import_sequence`),
  written by :func:`~..speech.writer.write_animation` onto a new head built from the template (or a given head),
  with an optional sound strip; the scene's frame range is set to the animation.
* :func:`evaluated_frames` — the head's vertices after its shape keys at given scene frames (mesh-local
  coordinates, modifiers left out: what a point cache must hold so that a Mesh Cache modifier at the top of
  the stack replaces exactly the shape keys).
* :func:`export_pc2` / :func:`export_obj_sequence` — those frames over the scene range to a PC2 point
  cache / one OBJ per frame (atomic writes, :mod:`voca_addon.core.animation.exporters`).
* :func:`add_mesh_cache` — plays a PC2 back with a Mesh Cache modifier.

**Mesh Cache and the shape keys (the choice).** The modifier named ``VOCA Mesh Cache`` is put FIRST in
the stack, in OVERWRITE mode, reading the cache frame by frame from the scene's frame range. The shape
keys the cache was baked from are then **muted, not deleted** (``ShapeKey.mute``; their names are listed in
the Key's custom property ``voca_muted_keys``): the animation plays once, from the cache, while the keys,
curves and action stay for editing — to go back, delete the modifier and unmute the keys
(:func:`remove_mesh_cache` does both). Deleting the keys would lose the editable animation; leaving them
live would make a later switch to INTEGRATE mode apply the motion twice. Exports always evaluate with
those keys unmuted and all modifiers off, so re-exporting gives the same cache; :func:`import_sequence`
onto a head removes an earlier cache (it would hide the new keys).

Operators (``CLASSES``): ``VOCA_OT_import_sequence``, ``VOCA_OT_export_pc2``,
``VOCA_OT_export_obj_sequence``; each reports a user error and leaves the scene unchanged.

Contract: main thread only (``bpy``). Imports ``bpy``, ``bpy_extras``, numpy, ``voca_addon.core`` and the
writer. Arrays float32 [F, V, 3] in mesh-local coordinates (FLAME heads: metres, Y up). User errors raise
:class:`~voca_addon.core.errors.VocaError` subclasses before anything is created or written.
"""
from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from typing import Optional

import bpy
import numpy as np
from bpy.props import BoolProperty, FloatProperty, StringProperty
from bpy_extras.io_utils import ExportHelper, ImportHelper

from ...core import outputs
from ...core.animation import exporters, sequences
from ...core.flame import meshio
from ...core.speech import audio as core_audio
from ...core.models import modelfiles
from ...core.errors import AudioError, InputError, MeshError
from .. import compat, reporting, transaction
from ..speech import writer

MESH_CACHE_NAME = "VOCA Mesh Cache"
MUTED_KEYS = "voca_muted_keys"        # custom property on the Key: keys muted for Mesh Cache playback
HEAD_NAME = "FLAME head"              # the name pipeline.ensure_head gives a new head, too


@dataclass(frozen=True)
class ImportReport:
    """What :func:`import_sequence` did: the head, the writer's report, frames read, shape keys used,
    whether the head was created and whether a sound strip was added."""

    obj: object
    write: writer.WriteReport
    frames_read: int
    rank: int
    created_head: bool
    sound: bool
    articulation: tuple = ()          # lip closures: one line each (what was written, or why not)


def _source_path(path: str) -> str:
    """A picked file inside a folder of frames means the folder; arrays and folders stay as they are."""
    path = os.path.abspath(os.fspath(path))
    if os.path.isfile(path) and path.lower().endswith(sequences.MESH_EXTENSIONS):
        return os.path.dirname(path)
    return path


def import_sequence(scene, source, template_path, audio_path=None, fps: Optional[float] = None,
                    obj=None, start_frame: Optional[int] = None, mode: str = "shape_keys",
                    animation=None, phones=None) -> ImportReport:
    """Import a mesh sequence as a shape-key animation (see the module docstring).

    Parameters
    ----------
    scene : bpy.types.Scene
    source : path
        Folder of per-frame meshes, a ``.npy`` or a ``.npz``.
    template_path : path
        The neutral mesh of the sequence (FLAME_sample.ply for VOCA's output).
    audio_path : path, optional
        Sound to place at ``start_frame``.
    fps : float, optional
        Frame rate of the sequence (default: the ``.npz``'s own, else 60); the writer resamples it to the
        scene's rate.
    obj : bpy.types.Object, optional
        The head to animate (default: a new head built from the template).
    start_frame : int, optional
        Scene frame of the first frame (default ``scene.frame_start``).
    animation : ShapeKeyAnimation, optional
        The animation already read from ``source`` (``import-sequence`` reads an animation ``.npz`` in its
        shape-key form); ``source`` is then not read. Its corrections, if any, are not written as they are:
    phones : PhoneOutcome, optional
        The lip closures' phone track (:mod:`voca_addon.blender.articulation.phones`): the track is stored and the
        correction keys written. VOCA's exact weights are stored either way
        (:func:`voca_addon.blender.articulation.writer.write_articulation`, inside the same transaction): the
        knobs work on the imported head.

    Raises
    ------
    VocaError
        Unreadable source / template / audio, mismatched vertex counts, bad mode; nothing is created.
    """
    anim = animation if animation is not None else sequences.import_sequence(_source_path(source), template_path,
                                                                             fps=fps)
    start = scene.frame_start if start_frame is None else int(start_frame)
    if audio_path is not None:
        check_audio(audio_path)
    created = obj is None
    from ..articulation import writer as articulation_writer
    replaced = articulation_writer.artist_changes(obj) if not created else ((), ())   # the hand edits a re-import
    with transaction.all_or_nothing(scene, [] if created else [obj]):                  # replaces, named after it
        if created:
            template = meshio.read_mesh(template_path)
            obj = writer.build_head(HEAD_NAME, template.vertices, template.faces, scene.collection)
        report = writer.write_animation(obj, anim.exact(), scene, start, mode=mode, name_prefix="SEQ")
        # VOCA's exact weights are stored with or without phones (the knobs work, a re-run names the hand
        # edits it replaced; a stale store of an earlier Animate would name every curve as deleted)
        closures = tuple(articulation_writer.write_articulation(obj, scene, anim.exact(), report, phones, replaced))
        writer.set_frame_range(scene, max(0, report.frame_start), report.frame_end)
        sound = audio_path is not None and compat.HAS_AUDIO
        if sound:
            writer.add_sound_strip(scene, audio_path, start, head=obj)     # another head's strip stays
    remove_mesh_cache(obj)                     # an older cache would hide the new keys
    return ImportReport(obj, report, anim.num_frames, len(anim.names), created, sound, closures)


def check_audio(path) -> None:
    """Raise :class:`AudioError` unless Blender can read ``path`` as sound (nothing is left behind)."""
    path = os.path.abspath(os.fspath(path))
    if not os.path.isfile(path):
        raise AudioError(f"Audio file '{path}' was not found. Check the path.")
    if not compat.HAS_AUDIO:                   # this build cannot load sound: the engine's decoder judges
        core_audio.load_audio(path)
        return
    sound = bpy.data.sounds.load(path, check_existing=False)
    try:
        readable = sound.samplerate > 0
    finally:
        bpy.data.sounds.remove(sound)
    if not readable:
        raise AudioError(f"Blender cannot read '{path}' as audio. Use a WAV, FLAC, MP3 or OGG file.")


# ---------------------------------------------------------------------------- evaluation

def find_head(scene, name: Optional[str] = None):
    """The object to export: ``name``, else the active mesh with shape keys, else the only such mesh.

    Raises
    ------
    InputError
        No such object, not a mesh, or no / several animated meshes to choose from.
    """
    if name:
        obj = scene.objects.get(name)
        if obj is None or obj.type != "MESH":
            meshes = ", ".join(o.name for o in scene.objects if o.type == "MESH") or "none"
            raise InputError(f"The scene has no mesh object '{name}' (meshes: {meshes}).")
        return obj
    active = bpy.context.view_layer.objects.active if bpy.context.scene == scene else None
    if active is not None and active.type == "MESH" and active.data.shape_keys is not None:
        return active
    animated = [o for o in scene.objects if o.type == "MESH" and o.data.shape_keys is not None]
    if len(animated) != 1:
        found = ", ".join(o.name for o in animated) or "none"
        raise InputError(f"Choose the head to export by name (meshes with shape keys: {found}).")
    return animated[0]


@contextlib.contextmanager
def _shape_keys_only(obj):
    """Modifiers off and the keys muted for Mesh Cache playback back on, for the duration."""
    modifiers = [(m, m.show_viewport) for m in obj.modifiers]
    key = obj.data.shape_keys
    muted = [key.key_blocks[n] for n in (key.get(MUTED_KEYS, []) if key else []) if n in key.key_blocks]
    try:
        for modifier, _ in modifiers:
            modifier.show_viewport = False
        for block in muted:
            block.mute = False
        yield
    finally:
        for modifier, shown in modifiers:
            modifier.show_viewport = shown
        for block in muted:
            block.mute = True


def evaluated_frames(scene, obj, frames) -> np.ndarray:
    """``obj``'s vertices after its shape keys at each scene frame: float32 [F, V, 3], mesh-local.

    Modifiers are left out (and keys muted for Mesh Cache playback are evaluated), so the result is what
    the shape keys produce. The scene's current frame is restored.
    """
    if obj is None or obj.type != "MESH":
        raise MeshError(f"'{getattr(obj, 'name', None)}' is not a mesh object; select the animated head.")
    if obj.mode == "EDIT":
        raise InputError(f"'{obj.name}' is in Edit Mode; switch to Object Mode and run again.")
    frames = [int(f) for f in frames]
    out = np.empty((len(frames), len(obj.data.vertices), 3), dtype=np.float32)
    current = scene.frame_current
    layer = scene.view_layers[0]
    try:
        with _shape_keys_only(obj):
            for i, frame in enumerate(frames):
                scene.frame_set(frame)
                evaluated = obj.evaluated_get(layer.depsgraph)
                mesh = evaluated.to_mesh()
                try:
                    mesh.vertices.foreach_get("co", out[i].reshape(-1))
                finally:
                    evaluated.to_mesh_clear()
    finally:
        scene.frame_set(current)
    return out


def _scene_frames(scene) -> range:
    if scene.frame_end < scene.frame_start:
        raise InputError(f"The scene's frame range {scene.frame_start}–{scene.frame_end} is empty.")
    return range(scene.frame_start, scene.frame_end + 1)


def _faces(mesh) -> np.ndarray:
    """The mesh's polygons as 0-based triangles (fan-triangulated), int32 [T, 3]."""
    loops = np.empty(len(mesh.loops), np.int32)
    mesh.loops.foreach_get("vertex_index", loops)
    totals = np.empty(len(mesh.polygons), np.int32)
    starts = np.empty(len(mesh.polygons), np.int32)
    mesh.polygons.foreach_get("loop_total", totals)
    mesh.polygons.foreach_get("loop_start", starts)
    if len(totals) and np.all(totals == 3):
        return loops.reshape(-1, 3)
    tris = [(loops[s], loops[s + k], loops[s + k + 1]) for s, n in zip(starts, totals) for k in range(1, n - 1)]
    return np.array(tris, np.int32).reshape(-1, 3)


# ---------------------------------------------------------------------------- exports

def export_pc2(scene, obj, path, mesh_cache: bool = False) -> str:
    """Write the head's shape-key frames over the scene range to a PC2 cache; optionally play it back.

    The cache's start frame is the scene's first frame and it has one sample per frame; the destination is
    checked first (:func:`voca_addon.core.outputs.check_output`: ``.pc2``, its folder there and writable), an
    existing file replaced. Returns the absolute path written.
    """
    path = str(outputs.check_output(path, "The PC2 file", (".pc2",), overwrite=True))     # before evaluating
    frames = _scene_frames(scene)
    exporters.write_pc2(path, evaluated_frames(scene, obj, frames), start_frame=frames[0], sample_rate=1.0)
    if mesh_cache:
        add_mesh_cache(obj, path, frames[0])
    return path


def add_mesh_cache(obj, pc2_path, frame_start: int):
    """Add (or update) the ``VOCA Mesh Cache`` modifier playing ``pc2_path`` from ``frame_start``, first
    in the stack, and mute the shape keys it replaces (see the module docstring)."""
    modifier = obj.modifiers.get(MESH_CACHE_NAME) or obj.modifiers.new(MESH_CACHE_NAME, "MESH_CACHE")
    modifier.cache_format = "PC2"
    modifier.filepath = os.path.abspath(os.fspath(pc2_path))
    modifier.time_mode, modifier.play_mode, modifier.deform_mode = "FRAME", "SCENE", "OVERWRITE"
    modifier.interpolation = "LINEAR"
    modifier.frame_start, modifier.frame_scale, modifier.factor = float(frame_start), 1.0, 1.0
    modifier.forward_axis, modifier.up_axis = "POS_Y", "POS_Z"       # identity: the cache is mesh-local
    compat.clear_flip_axis(modifier)
    index = list(obj.modifiers).index(modifier)
    if index:
        obj.modifiers.move(index, 0)
    key = obj.data.shape_keys
    if key is not None:
        muted = [b.name for b in key.key_blocks[1:] if not b.mute] + list(key.get(MUTED_KEYS, []))
        for name in muted:
            key.key_blocks[name].mute = True
        key[MUTED_KEYS] = sorted(set(muted))
    return modifier


def remove_mesh_cache(obj) -> bool:
    """Delete the ``VOCA Mesh Cache`` modifier and unmute the keys it muted; True if there was one."""
    key = obj.data.shape_keys
    if key is not None and MUTED_KEYS in key:
        for name in key[MUTED_KEYS]:
            if name in key.key_blocks:
                key.key_blocks[name].mute = False
        del key[MUTED_KEYS]
    modifier = obj.modifiers.get(MESH_CACHE_NAME)
    if modifier is not None:
        obj.modifiers.remove(modifier)
    return modifier is not None


def export_obj_sequence(scene, obj, folder, overwrite: bool = False) -> list:
    """One OBJ per scene frame (``frame_0000.obj`` …, frames numbered from 0), the head's triangles and
    mesh-local coordinates with 6 decimals; the files in frame order are returned. The folder is checked
    before any frame is evaluated: not a file, empty unless ``overwrite``, itself or its parent there and
    writable (:func:`voca_addon.core.outputs.check_output`)."""
    frames = _scene_frames(scene)
    faces = _faces(obj.data) if obj is not None and obj.type == "MESH" else None
    folder = os.path.abspath(os.fspath(folder))
    if os.path.exists(folder) and not os.path.isdir(folder):                  # fail before evaluating
        raise InputError(f"'{folder}' is a file; choose a folder for the OBJ sequence.")
    if os.path.isdir(folder) and os.listdir(folder) and not overwrite:
        raise InputError(f"folder '{folder}' is not empty. Choose an empty or new folder, or allow "
                         "overwriting.")
    outputs.check_output(folder, "The OBJ sequence folder", overwrite=overwrite, folder_output=True)
    return exporters.write_obj_sequence(folder, evaluated_frames(scene, obj, frames), faces,
                                        overwrite=overwrite)


# ---------------------------------------------------------------------------- operators

def _template_pref(context):
    """The template path set in the add-on preferences, or None (then ``~/voca_models``)."""
    from .. import preferences
    return preferences.model_paths(preferences.addon_preferences(context))["template"]


def _active_head(context):
    obj = context.active_object
    return obj if obj is not None and obj.type == "MESH" and len(obj.data.vertices) == writer.FLAME_VERTICES \
        else None


class VOCA_OT_import_sequence(bpy.types.Operator, ImportHelper):
    """Import a mesh sequence (folder of OBJ/PLY frames, .npy or .npz) as shape keys on a FLAME head"""

    bl_idname = "voca.import_sequence"
    bl_label = "Import Mesh Sequence"
    bl_options = {"REGISTER", "UNDO"}

    filter_glob: StringProperty(default="*.npy;*.npz;*.obj;*.ply", options={"HIDDEN"})
    template_path: StringProperty(name="Template", subtype="FILE_PATH",
                                  description="Neutral mesh of the sequence (empty: the preferences' template)")
    audio_path: StringProperty(name="Audio", subtype="FILE_PATH", description="Optional sound to add")
    fps: FloatProperty(name="Sequence FPS", default=0.0, min=0.0, max=1000.0,
                       description="Frame rate of the sequence; 0 = the .npz's own, else 60")
    use_active: BoolProperty(name="Use Active Head", default=True,
                             description="Animate the active 5023-vertex head instead of building a new one")

    @reporting.guarded
    def execute(self, context):
        def action():
            template = modelfiles.resolve_template(bpy.path.abspath(self.template_path) or _template_pref(context))
            audio = bpy.path.abspath(self.audio_path) if self.audio_path else None
            head = _active_head(context) if self.use_active else None
            report = import_sequence(context.scene, self.filepath, template, audio, self.fps or None, head)
            return (f"Imported {report.frames_read} frames as {report.rank} shape keys on "
                    f"'{report.obj.name}' (frames {report.write.frame_start}–{report.write.frame_end}).")
        return reporting.run_action(self, action)


class VOCA_OT_export_pc2(bpy.types.Operator, ExportHelper):
    """Write the active head's animation over the scene's frame range as a PC2 point cache"""

    bl_idname = "voca.export_pc2"
    bl_label = "Export PC2 Point Cache"
    bl_options = {"REGISTER"}

    filename_ext = ".pc2"
    filter_glob: StringProperty(default="*.pc2", options={"HIDDEN"})
    use_mesh_cache: BoolProperty(name="Play Back with Mesh Cache", default=False,
                                 description="Add a Mesh Cache modifier reading the file and mute the "
                                             "shape keys it replaces (they are kept)")

    @classmethod
    def poll(cls, context):
        obj = context.active_object
        return obj is not None and obj.type == "MESH" and obj.mode != "EDIT"

    @reporting.guarded
    def execute(self, context):
        def action():
            obj = context.active_object
            path = export_pc2(context.scene, obj, self.filepath, self.use_mesh_cache)
            return f"Wrote {path}" + (" and added the Mesh Cache modifier" if self.use_mesh_cache else "")
        return reporting.run_action(self, action)


class VOCA_OT_export_obj_sequence(bpy.types.Operator):
    """Write the active head's animation over the scene's frame range as one OBJ per frame"""

    bl_idname = "voca.export_obj_sequence"
    bl_label = "Export OBJ Sequence"
    bl_options = {"REGISTER"}

    directory: StringProperty(name="Folder", subtype="DIR_PATH")
    filter_folder: BoolProperty(default=True, options={"HIDDEN"})
    overwrite: BoolProperty(name="Overwrite", default=False,
                            description="Replace an earlier export's frame_*.obj files in the folder")

    @classmethod
    def poll(cls, context):
        obj = context.active_object
        return obj is not None and obj.type == "MESH" and obj.mode != "EDIT"

    @reporting.guarded
    def invoke(self, context, event):
        context.window_manager.fileselect_add(self)
        return {"RUNNING_MODAL"}

    @reporting.guarded
    def execute(self, context):
        def action():
            if not self.directory:
                raise InputError("Choose a folder for the OBJ sequence.")
            files = export_obj_sequence(context.scene, context.active_object, self.directory, self.overwrite)
            return f"Wrote {len(files)} OBJ files to {self.directory}"
        return reporting.run_action(self, action)


def menu_import(self, context):
    """For ``TOPBAR_MT_file_import.append``."""
    self.layout.operator(VOCA_OT_import_sequence.bl_idname, text="Mesh Sequence as VOCA Shape Keys")


def menu_export(self, context):
    """For ``TOPBAR_MT_file_export.append``."""
    self.layout.operator(VOCA_OT_export_pc2.bl_idname, text="VOCA Head as PC2 Point Cache (.pc2)")
    self.layout.operator(VOCA_OT_export_obj_sequence.bl_idname, text="VOCA Head as OBJ Sequence")


CLASSES = (VOCA_OT_import_sequence, VOCA_OT_export_pc2, VOCA_OT_export_obj_sequence)
