"""All or nothing: a write that fails half-way puts the scene back exactly as it was.

:func:`all_or_nothing` snapshots what the add-on's writers may change, runs the block, and on any
exception (a bug, a Blender error, Esc, ``KeyboardInterrupt``) restores:

* the shape keys of the given objects — every key block's name, order, coordinates, value, slider
  range, mute, relative key, vertex group and interpolation, the Key's custom properties (the add-on's
  ownership lists) — and a Key that did not exist is removed again;
* the animation data of those Keys and objects: the assigned action with its exact F-curves (a copy is
  kept for the duration of the block and swapped back in when the action was changed or deleted) and
  the assigned slot, by identifier;
* the objects' transforms and custom properties;
* the sequencer's top-level strips (new ones removed, removed sound strips re-created on their channel
  and frame, with their trims, volume, pan, mute and custom properties), and no sequence editor when
  there was none;
* the objects' active shape key (by name) — kept on success too: the add-on's new keys never become the
  active one;
* the frame range, the timeline markers and the scene's own custom properties;
* and removes every data-block created inside the block (objects, meshes, actions, sounds, cameras,
  lights, armatures, materials, images, collections).

On success the copies are dropped. The snapshot costs one action copy per animated ID and one array
per key block (≈ 60 × 5023 × 3 floats for a FLAME head: a few MB, milliseconds).

Contract: main thread only (``bpy``). Knows nothing of VOCA's data; version differences go through
:mod:`.compat`.
"""
from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from typing import Dict, Iterable, List, Optional

import bpy
import numpy as np

from . import compat
from .keyframes import curve_points

#: ``bpy.data`` collections whose new members a failed block removes (those missing in a version are skipped).
ID_COLLECTIONS = ("objects", "meshes", "actions", "sounds", "cameras", "lights", "armatures", "materials",
                  "images", "collections")
_BLOCK_FIELDS = ("value", "mute", "vertex_group", "interpolation")
#: A removed sound strip's settings put back with it (those a version lacks are skipped); the trims first.
_STRIP_FIELDS = ("frame_offset_start", "frame_offset_end", "volume", "pan", "pitch", "mute", "show_waveform",
                 "color_tag", "lock")


def plain_value(value):
    """A custom-property value as plain Python (ID property arrays and groups copied)."""
    if hasattr(value, "to_dict"):
        return value.to_dict()
    if hasattr(value, "to_list"):
        return value.to_list()
    return value


def _props(idblock, own_only: bool = False) -> dict:
    """The custom properties of ``idblock`` as plain Python; ``own_only``: without the storage of properties
    registered on its type (an object's or a scene's add-on settings, which the snapshot does not restore)."""
    registered = idblock.bl_rna.properties if own_only else ()
    return {name: plain_value(idblock[name]) for name in idblock.keys() if name not in registered}


def _set_props(idblock, props: dict, own_only: bool = False) -> None:
    """Give ``idblock`` back the custom properties ``props`` (from :func:`_props` with the same ``own_only``):
    those added since are deleted, those changed set again, the others left alone."""
    now = _props(idblock, own_only)
    for name in [n for n in now if n not in props]:
        del idblock[name]
    for name, value in props.items():
        if now.get(name) != value:
            idblock[name] = value


def _pointers(collection) -> set:
    return {item.as_pointer() for item in collection}


def _by_pointer(collection, pointer):
    return next((item for item in collection if item.as_pointer() == pointer), None)


def action_digest(action) -> tuple:
    """Everything an action animates, comparable: (path, index, group, keyframes, interpolations)."""
    rows = []
    for fcurve in compat.action_fcurves(action):
        points = fcurve.keyframe_points
        co = curve_points(fcurve)                      # keys, or samples (a long clip)
        interpolation = np.empty(len(points), np.int32)
        points.foreach_get("interpolation", interpolation)
        rows.append((fcurve.data_path, fcurve.array_index, fcurve.group.name if fcurve.group else "",
                     co.tobytes(), interpolation.tobytes()))
    return tuple(sorted(rows))


# ---------------------------------------------------------------------------- per-ID states

@dataclass
class _AnimState:
    """The animation data of one ID: action (pointer, name, a copy) and slot identifier."""

    action_pointer: Optional[int]
    action_name: Optional[str]
    copy: object
    slot: Optional[str]
    digest: tuple

    @classmethod
    def take(cls, idblock) -> Optional["_AnimState"]:
        anim_data = idblock.animation_data
        if anim_data is None:
            return None
        action = anim_data.action
        if action is None:
            return cls(None, None, None, None, ())
        return cls(action.as_pointer(), action.name, action.copy(), compat.slot_identifier(anim_data),
                   action_digest(action))

    def restore(self, idblock) -> None:
        if self.action_pointer is None:
            if idblock.animation_data is not None and idblock.animation_data.action is not None:
                idblock.animation_data.action = None
            return
        anim_data = idblock.animation_data or idblock.animation_data_create()
        action = _by_pointer(bpy.data.actions, self.action_pointer)
        if action is None or action_digest(action) != self.digest:
            if action is not None:
                bpy.data.actions.remove(action)
            action, self.copy = self.copy, None
            action.name = self.action_name
        if anim_data.action != action:
            anim_data.action = action
        compat.set_slot(anim_data, self.slot)

    def drop_copy(self) -> None:
        if self.copy is not None:
            bpy.data.actions.remove(self.copy)
            self.copy = None


@dataclass
class _KeyState:
    """An object's Key: its blocks in order (with coordinates), name, flags and custom properties."""

    name: str
    use_relative: bool
    props: dict
    blocks: List[dict]
    anim: Optional[_AnimState]

    @classmethod
    def take(cls, obj) -> Optional["_KeyState"]:
        key = obj.data.shape_keys if obj.type == "MESH" else None
        if key is None:
            return None
        blocks = []
        for block in key.key_blocks:
            co = np.empty(len(block.data) * 3, np.float32)
            block.data.foreach_get("co", co)
            blocks.append(dict(pointer=block.as_pointer(), name=block.name, co=co,
                               relative=block.relative_key.name, slider=(block.slider_min, block.slider_max),
                               **{f: getattr(block, f) for f in _BLOCK_FIELDS}))
        return cls(key.name, key.use_relative, _props(key), blocks, _AnimState.take(key))

    def restore(self, obj) -> None:
        wanted = {b["pointer"] for b in self.blocks}
        key = obj.data.shape_keys
        if key is not None:
            for block in reversed(list(key.key_blocks)):
                if block.as_pointer() not in wanted:
                    obj.shape_key_remove(block)
        present = {b.as_pointer(): b for b in obj.data.shape_keys.key_blocks} if obj.data.shape_keys else {}
        blocks = [present.get(b["pointer"]) or obj.shape_key_add(name=b["name"], from_mix=False)
                  for b in self.blocks]
        key = obj.data.shape_keys
        _reorder(obj, blocks)
        for i, block in enumerate(blocks):          # two passes: no name clashes on the way back
            block.name = f"\x01voca-restore-{i}"
        for block, state in zip(blocks, self.blocks):
            block.name = state["name"]
            block.data.foreach_set("co", state["co"])
            block.slider_min, block.slider_max = -10.0, 10.0
            block.slider_min, block.slider_max = state["slider"]
            for name in _BLOCK_FIELDS:
                setattr(block, name, state[name])
        for block, state in zip(blocks, self.blocks):
            block.relative_key = key.key_blocks[state["relative"]]
        key.name, key.use_relative = self.name, self.use_relative
        _set_props(key, self.props)
        if self.anim is not None:
            self.anim.restore(key)
        elif key.animation_data is not None:
            key.animation_data_clear()


def _active_key(obj) -> Optional[str]:
    key = obj.data.shape_keys if obj.type == "MESH" else None
    block = obj.active_shape_key if key is not None else None
    return block.name if block is not None else None


def _reorder(obj, blocks: list) -> None:
    """Move the key blocks of ``obj`` into the order of ``blocks`` (shape_key_move, rarely needed)."""
    key_blocks = obj.data.shape_keys.key_blocks
    for target, block in enumerate(blocks):
        index = list(key_blocks).index(block)
        if index == target:
            continue
        with bpy.context.temp_override(object=obj, active_object=obj):
            obj.active_shape_key_index = index
            for _ in range(index - target):
                bpy.ops.object.shape_key_move(type="UP")


_TRANSFORM = ("location", "rotation_euler", "rotation_quaternion", "rotation_axis_angle", "scale")


def _transform(obj) -> dict:
    state = {"rotation_mode": obj.rotation_mode}           # first: setting it converts the rotation
    state.update((name, tuple(getattr(obj, name))) for name in _TRANSFORM)
    return state


@dataclass
class _ObjectState:
    obj: object
    key: Optional[_KeyState]
    anim: Optional[_AnimState]
    transform: dict = field(default_factory=dict)
    active_key: Optional[str] = None       # the active shape key's name (the artist's choice in the list)
    props: dict = field(default_factory=dict)   # the object's own custom properties (the add-on's records)

    def keep_active_key(self) -> None:
        """Make the key that was active before the block active again, if it is still there."""
        key = self.obj.data.shape_keys if self.obj.type == "MESH" else None
        if self.active_key is None or key is None or self.active_key not in key.key_blocks:
            return
        index = key.key_blocks.find(self.active_key)
        if self.obj.active_shape_key_index != index:
            self.obj.active_shape_key_index = index

    def restore(self) -> None:
        obj = self.obj
        if self.key is None:
            if obj.type == "MESH" and obj.data.shape_keys is not None:
                obj.shape_key_clear()
        else:
            self.key.restore(obj)
        if self.anim is not None:
            self.anim.restore(obj)
        elif obj.animation_data is not None:
            obj.animation_data_clear()
        for name, value in self.transform.items():        # as stored: no matrix round trip
            if tuple(getattr(obj, name)) != value if name != "rotation_mode" else obj.rotation_mode != value:
                setattr(obj, name, value)
        self.keep_active_key()
        _set_props(obj, self.props, own_only=True)

    def copies(self) -> list:
        return [s for s in (self.anim, self.key.anim if self.key else None) if s is not None]


# ---------------------------------------------------------------------------- the scene

@dataclass
class Snapshot:
    """What :func:`all_or_nothing` puts back; see the module docstring."""

    scene: object
    objects: List[_ObjectState]
    ids: Dict[str, set]
    frame_range: tuple
    had_editor: bool
    strip_states: List[dict] = field(default_factory=list)
    scene_props: dict = field(default_factory=dict)
    markers: list = field(default_factory=list)         # (name, frame, camera, select) of the timeline markers

    @classmethod
    def take(cls, scene, objects: Iterable = ()) -> "Snapshot":
        ids = {name: _pointers(getattr(bpy.data, name)) for name in ID_COLLECTIONS if hasattr(bpy.data, name)}
        states = [_ObjectState(obj, _KeyState.take(obj), _AnimState.take(obj), _transform(obj), _active_key(obj),
                               _props(obj, own_only=True))
                  for obj in dict.fromkeys(o for o in objects if o is not None)]
        editor = scene.sequence_editor
        strips = [dict(pointer=s.as_pointer(), name=s.name, type=s.type, channel=s.channel,
                       frame_start=s.frame_start, props=_props(s),
                       settings={a: getattr(s, a) for a in _STRIP_FIELDS if hasattr(s, a)},
                       filepath=s.sound.filepath if s.type == "SOUND" and s.sound else None)
                  for s in (compat.sequencer_strips(editor) if editor else ())]
        markers = [(m.name, m.frame, m.camera, m.select) for m in scene.timeline_markers]
        return cls(scene, states, ids, (scene.frame_start, scene.frame_end), editor is not None, strips,
                   _props(scene, own_only=True), markers)

    def _copies(self) -> list:
        return [s for state in self.objects for s in state.copies()]

    def commit(self) -> None:
        for state in self._copies():
            state.drop_copy()
        for state in self.objects:
            try:
                if state.obj.as_pointer() in self.ids["objects"]:
                    state.keep_active_key()
            except ReferenceError:          # the block removed the object: nothing to keep
                continue

    def rollback(self) -> None:
        editor = self.scene.sequence_editor
        if editor is not None:                               # new strips first: their sounds become unused
            strips = compat.sequencer_strips(editor)
            for strip in [s for s in strips if s.as_pointer() not in {x["pointer"] for x in self.strip_states}]:
                strips.remove(strip)
        # New data-blocks next (a new action may hold the name the restored one must get back) …
        self._remove_new_ids({s.copy.as_pointer() for s in self._copies() if s.copy is not None})
        for state in self.objects:                          # … then the objects that were there before.
            if state.obj.as_pointer() in self.ids["objects"]:
                state.restore()
        self._restore_strips()
        self.commit()                                        # copies not swapped back in
        # Blender moves the end up to a start set past it, and the start down to an end set before it: the
        # start first, then the end, gives back any valid range from any other.
        self.scene.frame_start, self.scene.frame_end = self.frame_range
        _set_props(self.scene, self.scene_props, own_only=True)
        self._restore_markers()
        editor = self.scene.sequence_editor
        if not self.had_editor and editor is not None and not len(compat.sequencer_strips(editor)):
            self.scene.sequence_editor_clear()

    def _restore_markers(self) -> None:
        markers = self.scene.timeline_markers
        if [(m.name, m.frame, m.camera, m.select) for m in markers] == self.markers:
            return
        markers.clear()
        for name, frame, camera, select in self.markers:
            marker = markers.new(name, frame=frame)
            marker.camera, marker.select = camera, select

    def _restore_strips(self) -> None:
        editor = self.scene.sequence_editor
        if editor is None:
            return
        strips = compat.sequencer_strips(editor)
        present = _pointers(strips)
        for state in self.strip_states:
            if state["pointer"] in present or state["type"] != "SOUND" or not state["filepath"]:
                continue
            strip = strips.new_sound(state["name"], bpy.path.abspath(state["filepath"]), state["channel"],
                                     int(state["frame_start"]))
            strip.name, strip.channel = state["name"], state["channel"]
            settings = dict(state["settings"])
            lock = settings.pop("lock", False)
            for name, value in settings.items():            # the artist's trims, volume, mute, …
                setattr(strip, name, value)
            strip.channel = state["channel"]                 # where it was, then locked if it was
            strip.lock = lock
            _set_props(strip, state["props"])

    def _remove_new_ids(self, keep: set) -> None:
        for name, before in self.ids.items():
            collection = getattr(bpy.data, name)
            for item in [i for i in collection if i.as_pointer() not in before | keep]:
                collection.remove(item)


def linked_problem(obj) -> Optional[str]:
    """Why ``obj``'s shape keys cannot be written here, or None: the object, its mesh or its Key come from a
    linked library file (edits there are not saved: the file reads the library's data back on open), or the
    mesh is a library override (an override cannot take new shape keys)."""
    data = obj.data if obj is not None else None
    for what, block in (("object", obj), ("mesh", data), ("shape keys", getattr(data, "shape_keys", None))):
        if block is not None and getattr(block, "library", None) is not None:
            return (f"'{obj.name}' uses the {what} '{block.name}' linked from '{block.library.filepath}': linked data "
                    "is read back from that file on open, so nothing written here would stay. Make it local "
                    "(Object › Relations › Make Local › All) or animate it in its own file.")
    if data is not None and getattr(data, "override_library", None) is not None:
        return (f"'{obj.name}''s mesh '{data.name}' is a library override, which cannot take new shape keys. "
                "Make it local (Object › Relations › Make Local › All) or animate it in its own file.")
    return None


@contextlib.contextmanager
def all_or_nothing(scene, objects: Iterable = ()):
    """Run the block; on any exception restore ``scene`` and ``objects`` (see the module docstring).

    Objects created inside the block need not be listed: they are removed. Yields the :class:`Snapshot`.
    """
    snapshot = Snapshot.take(scene, objects)
    try:
        yield snapshot
    except BaseException:
        snapshot.rollback()
        raise
    snapshot.commit()
