"""The one place that turns a :class:`~voca_addon.core.animation.shapekeys.ShapeKeyAnimation` into Blender data.

Everything that differs between Blender versions (legacy or slotted actions, F-curve groups, the
sequencer's ``sequences`` / ``strips``) goes through :mod:`..compat`.

What it writes (mode ``'shape_keys'``, the default): on the mesh's Key datablock, ``D`` shape keys (one
per basis shape) plus one *bias* key, relative to the mesh's reference key ("Basis"), and ONE action with
one slot whose F-curves key the ``D`` values per frame (LINEAR; past 18,000 frames, 5 minutes at 60 fps,
the curves are stored as Blender's samples, which evaluate identically in a fifth of the memory, see
:mod:`..keyframes`) and hold the bias key at 1. Blender evaluates a relative key ``k`` of value ``w`` as ``w · (key_k.co − basis.co)``; so key ``k`` holds
``basis.co + s_k · basis[k]`` and its curve ``weights[:, k] / s_k``, the bias key holds ``basis.co + bias``,
and every frame evaluates to ``basis.co + bias + weights[f] · basis``: exactly ``anim.vertices()`` when the
Basis equals ``anim.template`` (float32 rounding, < 1 µm). When the Basis is another head (other
proportions) the motion is added onto it as offsets. The mesh must use the template's units (FLAME:
metres); the object may carry any transform. ``s_k`` is 1 unless a weight exceeds Blender's slider
limit of ±10: then ``s_k`` is the smallest power of two that brings the curve within ±10 (a power of
two, so ``weights / s_k`` and ``basis · s_k`` are exact in binary floating point).

Mode ``'per_frame'`` (the old add-on's compatibility mode): one key per frame holding the full frame,
keyed 0 → 1 → 0 with CONSTANT interpolation. Heavy: ``F · V · 12`` bytes, and Blender resolves every
key's F-curve on each frame change (measured for 60 s at 60 fps: 2.5 s to write, 190 MB .blend,
0.4 s per frame change, against 0.05 s, 6 MB and 1 ms in 'shape_keys' mode); for short clips only.

Ownership: every shape key the add-on creates is listed in the Key's custom property
``voca_owned_keys``; the action, the Basis it had to create, the head objects/meshes and the sound strip
carry ``voca_owned``; the rig's own keys that Drive Its Keys animates are listed with their values from
before in ``voca_driven_keys``. :func:`remove_animation` removes exactly that (a driven key keeps, its curve
gone, its value from before) and never an artist's keys, actions or drivers; :func:`write_animation`
refuses to replace an action it does not own. User errors raise
:class:`~voca_addon.core.errors.VocaError` subclasses before anything is created (the scene is unchanged).

Contract: main thread only (``bpy``). Imports ``bpy``, numpy and ``voca_addon.core``; nothing in ``core``
imports this module. Arrays: float32 [V, 3] in mesh-local coordinates; bulk ``foreach_set`` only.
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass

import bpy
import numpy as np

from ...core.animation.shapekeys import ShapeKeyAnimation
from ...core.errors import AudioError, InputError, MeshError
from .. import compat
from ..keyframes import CONSTANT, LINEAR, set_keyframes, value_path
from ..transaction import plain_value

OWNED = "voca_owned"                # custom property: True on every ID / strip the add-on created
OWNED_KEYS = "voca_owned_keys"      # custom property on the Key datablock: names of the add-on's keys
STRIP_HEAD = "voca_head"            # custom property on the add-on's sound strip: the head it was made for
HEAD_STRIP = "voca_sound_strip"     # custom property on a head: the name of its sound strip
FRAME_RANGE = "voca_frame_range"    # scene custom property: the artist's range before Animate, and Animate's
KEY_SCALES = "voca_key_scales"      # custom property on the Key: {key name: s_k} for rescaled keys
DRIVEN_KEYS = "voca_driven_keys"    # custom property on the Key: {rig key Drive keys: its value before}
MODES = ("shape_keys", "per_frame")
FLAME_VERTICES = 5023               # vertices of a FLAME head (VOCA's topology)
SLIDER_LIMIT = 10.0                 # Blender's hard limit of ShapeKey.slider_min / slider_max
MAX_FRAME = 1048574                 # Blender's MAXFRAME
MAX_CHANNEL = 128                   # sequencer channels
HEAD_ROTATION = (math.pi / 2, 0.0, 0.0)   # radians: FLAME's Y-up frame → Blender's Z-up world
HEAD_SCALE = 10.0                   # FLAME is in metres (head ≈ 0.2 m); ×10 gives a 2-unit head
PER_FRAME_CHUNK = 256               # frames computed at once in 'per_frame' mode (memory bound)


@dataclass(frozen=True)
class WriteReport:
    """What :func:`write_animation` wrote.

    Attributes
    ----------
    mode : str
    frames : int
        Frames written, at ``fps`` (the scene's rate the animation was resampled to).
    fps : float
    frame_start, frame_end : int
        First and last scene frame (inclusive).
    keys_created : int
        Shape keys created, the Basis included when it had to be created.
    key_names : tuple of str
        The add-on's keys in curve order (the bias key last in 'shape_keys' mode).
    action_name : str
    rescaled_keys : tuple of str
        Keys whose shape was scaled by ``s_k`` to keep their values within ±10.
    """

    mode: str
    frames: int
    fps: float
    frame_start: int
    frame_end: int
    keys_created: int
    key_names: tuple
    action_name: str
    rescaled_keys: tuple = ()


def build_head(name: str, vertices: np.ndarray, faces: np.ndarray, collection=None):
    """Create a smooth-shaded mesh object from arrays, vertex order kept exactly.

    The mesh data stays in the template's own coordinates (FLAME: metres, Y up); the object gets
    ``rotation_euler = (π/2, 0, 0)`` so the head stands upright in Blender's Z-up world and a scale of
    10 so it has a workable size (2 units instead of 0.2). Object and mesh are tagged ``voca_owned``.

    Parameters
    ----------
    name : str
        Object and mesh name (Blender may append ``.001``).
    vertices : float [V, 3]
    faces : int [F, 3], 0-based
    collection : bpy.types.Collection, optional
        Where to link the object (default: the active collection).

    Returns
    -------
    bpy.types.Object

    Raises
    ------
    MeshError
        Wrong shapes, non-finite coordinates or face indices outside the vertices.
    """
    verts = np.asarray(vertices, dtype=np.float64)
    tris = np.asarray(faces)
    if verts.ndim != 2 or verts.shape[1] != 3 or len(verts) == 0 or not np.isfinite(verts).all():
        raise MeshError(f"Cannot build '{name}': vertices must be finite [V, 3], got {verts.shape}. "
                        "Choose a valid template mesh.")
    if tris.ndim != 2 or tris.shape[1] != 3 or not np.issubdtype(tris.dtype, np.integer) or (
            tris.size and (tris.min() < 0 or tris.max() >= len(verts))):
        raise MeshError(f"Cannot build '{name}': faces must be [F, 3] indices below {len(verts)}, "
                        f"got {tris.shape}. Choose a valid template mesh.")
    mesh = bpy.data.meshes.new(name)
    mesh.vertices.add(len(verts))
    mesh.loops.add(tris.size)
    mesh.polygons.add(len(tris))
    mesh.vertices.foreach_set("co", verts.astype(np.float32).ravel())
    mesh.loops.foreach_set("vertex_index", tris.astype(np.int32).ravel())
    mesh.polygons.foreach_set("loop_start", np.arange(0, tris.size, 3, dtype=np.int32))
    mesh.polygons.foreach_set("use_smooth", np.ones(len(tris), dtype=bool))
    mesh.update(calc_edges=True)
    mesh.validate(verbose=False)         # drops degenerate faces only; vertices are never touched
    obj = bpy.data.objects.new(name, mesh)
    obj.rotation_euler = HEAD_ROTATION
    obj.scale = (HEAD_SCALE,) * 3
    obj[OWNED] = mesh[OWNED] = True
    if collection is None:
        collection = bpy.context.collection or bpy.context.scene.collection
    collection.objects.link(obj)
    return obj


def scene_fps(scene) -> float:
    """The scene's frame rate in frames per second (``fps / fps_base``)."""
    return scene.render.fps / scene.render.fps_base


def write_animation(obj, anim: ShapeKeyAnimation, scene, start_frame: int, mode: str = "shape_keys",
                    name_prefix: str = "VOCA") -> WriteReport:
    """Write ``anim`` onto ``obj``'s shape keys, resampled to the scene's frame rate.

    A previous VOCA animation on ``obj`` is removed first (a re-run replaces). See the module
    docstring for the exact keys and curves written. The scene's frame range is not changed
    (:func:`set_frame_range`).

    Parameters
    ----------
    obj : bpy.types.Object
        A mesh with ``anim.num_vertices`` vertices in the template's vertex order.
    anim : ShapeKeyAnimation
    scene : bpy.types.Scene
        Gives the frame rate.
    start_frame : int
        Scene frame of the animation's first frame.
    mode : {'shape_keys', 'per_frame'}
    name_prefix : str
        Prefix of the created key and action names.

    Returns
    -------
    WriteReport

    Raises
    ------
    MeshError
        Not a mesh, wrong vertex count, absolute shape keys.
    InputError
        Bad mode / frame, Edit Mode, or the shape keys are animated by an action VOCA did not create.
    """
    _validate_write(obj, anim, start_frame, mode, name_prefix)
    anim = anim.resampled(scene_fps(scene))
    if start_frame + anim.num_frames > MAX_FRAME:
        raise InputError(f"The animation would end after Blender's last frame {MAX_FRAME}; "
                         "choose an earlier start frame.")
    remove_animation(obj, keep_basis=True)
    had_key = obj.data.shape_keys is not None
    created = []                      # names of the keys created so far (for the rollback)
    try:
        return _write(obj, anim, int(start_frame), mode, name_prefix, created)
    except BaseException:
        if obj.data.shape_keys is not None:
            obj.data.shape_keys[OWNED_KEYS] = created
        remove_animation(obj, keep_basis=had_key)     # never leave half an animation behind
        raise


def _validate_write(obj, anim, start_frame, mode, name_prefix) -> None:
    if mode not in MODES:
        raise InputError(f"Unknown mode '{mode}'; choose one of {', '.join(MODES)}.")
    if not name_prefix or len(name_prefix) > 16:
        raise InputError("The name prefix must be 1 to 16 characters long.")
    if obj is None or obj.type != "MESH":
        raise MeshError(f"'{getattr(obj, 'name', None)}' is not a mesh object; select the head mesh.")
    if obj.mode == "EDIT":
        raise InputError(f"'{obj.name}' is in Edit Mode; switch to Object Mode and run again.")
    needed, have = anim.num_vertices, len(obj.data.vertices)
    if have != needed:
        flame = " (a FLAME head in FLAME's vertex order)" if needed == FLAME_VERTICES else ""
        raise MeshError(f"The mesh '{obj.data.name}' has {have} vertices; VOCA needs {needed}{flame} "
                        "— use Add FLAME head.")
    if not (-MAX_FRAME <= int(start_frame) <= MAX_FRAME):
        raise InputError(f"Start frame {start_frame} is outside Blender's frame range.")
    if not np.isfinite(anim.weights).all():
        raise InputError("The animation holds non-finite weights; run the animation again.")
    key = obj.data.shape_keys
    if key is None:
        return
    if not key.use_relative:
        raise MeshError(f"The shape keys of '{obj.name}' are absolute (Relative unchecked); VOCA writes "
                        "relative keys. Enable Relative in the Shape Keys panel or use another mesh.")
    action = key.animation_data.action if key.animation_data else None
    if action is not None and not action.get(OWNED):
        raise InputError(f"The shape keys of '{obj.name}' are animated by the action '{action.name}', "
                         "which VOCA did not create. Unassign it (Shape Key Editor) or push it to the "
                         "NLA, then run again; VOCA never overwrites an artist's action.")


def _write(obj, anim: ShapeKeyAnimation, start: int, mode: str, prefix: str, created: list) -> WriteReport:
    created_basis = obj.data.shape_keys is None
    if created_basis:
        obj.shape_key_add(name="Basis", from_mix=False)
        obj.data.shape_keys[OWNED] = True          # the Key datablock (and its Basis) are ours
    key = obj.data.shape_keys
    ref = key_co(key.reference_key)
    frames = start + np.arange(anim.num_frames, dtype=np.float64)
    if mode == "shape_keys":
        curves, scales = _write_shape_keys(obj, anim, ref, frames, prefix, created)
    else:
        curves, scales = _write_per_frame(obj, anim, ref, frames, prefix, created), {}
    key[OWNED_KEYS] = created
    if scales:
        key[KEY_SCALES] = scales                   # shape of key k = basis[k] · s_k
    action = write_action(key, curves, f"{prefix}_{obj.name}", prefix)
    names = tuple(name for name, *_ in curves)
    return WriteReport(mode, anim.num_frames, float(anim.fps), start, start + anim.num_frames - 1,
                       len(names) + created_basis, names, action.name, tuple(scales))


def key_co(key_block) -> np.ndarray:
    """Coordinates of a shape key, float32 [V, 3]."""
    co = np.empty(len(key_block.data) * 3, dtype=np.float32)
    key_block.data.foreach_get("co", co)
    return co.reshape(-1, 3)


def new_key(obj, name: str, co: np.ndarray, created: list):
    """Add a key relative to the Basis holding ``co`` [V, 3]; its name goes to ``created`` at once."""
    block = obj.shape_key_add(name=name, from_mix=False)
    created.append(block.name)                       # Blender may have renamed it (name clash)
    block.relative_key = obj.data.shape_keys.reference_key
    block.data.foreach_set("co", np.ascontiguousarray(co, dtype=np.float32).ravel())
    return block


def _write_shape_keys(obj, anim, ref, frames, prefix, created):
    """D keys + the bias key → ([(key name, frames, values, interpolation)], {rescaled key: s_k})."""
    curves, scales = [], {}
    for k, name in enumerate(anim.names):
        values = anim.weights[:, k].astype(np.float32)
        scale = _power_of_two_scale(float(np.abs(values).max(initial=0.0)))
        block = new_key(obj, f"{prefix}_{name}", ref + anim.basis[k] * np.float32(scale), created)
        values = values / np.float32(scale)                          # exact: scale is 2**n
        block.slider_max = min(SLIDER_LIMIT, math.ceil(max(1.0, float(values.max(initial=0)))))
        block.slider_min = max(-SLIDER_LIMIT, math.floor(min(0.0, float(values.min(initial=0)))))
        if scale != 1.0:
            scales[block.name] = scale
        curves.append((block.name, frames, values, LINEAR))
    bias = new_key(obj, f"{prefix}_bias", ref + anim.bias, created)
    bias.value = 1.0
    curves.append((bias.name, frames[:1], np.ones(1, np.float32), CONSTANT))
    return curves, scales


def _power_of_two_scale(peak: float) -> float:
    """1, or the smallest power of two ``s`` with ``peak / s <= SLIDER_LIMIT``."""
    if peak <= SLIDER_LIMIT:
        return 1.0
    return 2.0 ** math.ceil(math.log2(peak / SLIDER_LIMIT))


def _write_per_frame(obj, anim, ref, frames, prefix, created) -> list:
    """One key per frame holding the whole frame, keyed 0 → 1 → 0 (CONSTANT)."""
    d, v = anim.basis.shape[:2]
    flat_basis = anim.basis.reshape(d, v * 3)
    pulse = np.array([0.0, 1.0, 0.0], np.float32)
    curves = []
    for lo in range(0, anim.num_frames, PER_FRAME_CHUNK):
        offsets = anim.weights[lo:lo + PER_FRAME_CHUNK].astype(np.float32) @ flat_basis
        offsets = offsets.reshape(-1, v, 3) + anim.bias                # [chunk, V, 3]
        for i, offset in enumerate(offsets, start=lo):
            block = new_key(obj, f"{prefix}_frame_{i:05d}", ref + offset, created)
            curves.append((block.name, frames[i] + np.array([-1.0, 0.0, 1.0]), pulse, CONSTANT))
    return curves


def write_action(key, curves: list, action_name: str, slot_name: str):
    """A curve per key in ONE owned action (slot, layer, keyframe strip), assigned to ``key``.

    An owned action still assigned (it kept an artist's curves) receives the curves; otherwise a new
    one is created.
    """
    anim_data = key.animation_data or key.animation_data_create()
    action = anim_data.action
    if action is None:
        action = compat.new_action(action_name)
        action[OWNED] = True
    compat.assign_action(anim_data, action, "KEY", slot_name)
    for name, frames, values, interpolation in curves:
        fcurve = compat.new_fcurve(anim_data, value_path(name), index=0, group=slot_name)
        set_keyframes(fcurve, frames, values, interpolation)
    return action




def remove_animation(obj, keep_basis: bool = False) -> int:
    """Remove exactly what the add-on wrote on ``obj``: its keys, their F-curves, its action, and the curves
    of the rig's keys it drives (:data:`DRIVEN_KEYS`: each such key gets its value from before back).

    The artist's shape keys, actions, drivers and NLA are never touched. An owned action is deleted
    once none of its F-curves remain; the Key datablock is cleared only if the add-on created it, no
    artist key, driver or NLA track was added since, and ``keep_basis`` is False (a re-run keeps it).

    Returns
    -------
    int
        Number of shape keys removed (driven keys are the rig's: given back, not removed).
    """
    key = obj.data.shape_keys if obj is not None and obj.type == "MESH" else None
    if key is None:
        return 0
    owned = list(key.get(OWNED_KEYS, []))
    driven = driven_keys(key)
    anim_data = key.animation_data
    action = anim_data.action if anim_data else None
    if action is not None and action.get(OWNED):
        if action.users > 1:
            anim_data.action = None          # shared with a duplicated object: it stays theirs
        elif not _remove_owned_curves(action, {value_path(n) for n in [*owned, *driven]}):
            anim_data.action = None
            bpy.data.actions.remove(action)
        # else the artist keyed their own keys into it: it stays assigned with only their curves
    removed = remove_key_blocks(obj, owned)
    _give_back_values(key, driven)
    for prop in (OWNED_KEYS, KEY_SCALES, DRIVEN_KEYS):
        if prop in key:
            del key[prop]
    keep = anim_data is not None and (anim_data.action or anim_data.drivers or anim_data.nla_tracks)
    if key.get(OWNED) and len(key.key_blocks) == 1 and not (keep or keep_basis):
        obj.shape_key_clear()       # only the Basis the add-on created is left
        removed += 1
    return removed


def driven_keys(key) -> dict:
    """{name: value before} of the rig's keys the add-on drives (:data:`DRIVEN_KEYS`), as plain Python."""
    record = key.get(DRIVEN_KEYS) if key is not None else None
    return {str(name): float(value) for name, value in plain_value(record).items()} if record else {}


def _give_back_values(key, values: dict) -> None:
    """Set each still-present key of ``values`` back to its value (their curves are gone: the value sticks)."""
    for name, value in values.items():
        block = key.key_blocks.get(name)
        if block is not None:
            block.value = value


def remove_key_blocks(obj, names) -> int:
    """Remove the shape keys of ``obj`` named in ``names`` (never the Basis); returns how many."""
    key = obj.data.shape_keys
    removed = 0
    for name in names:
        block = key.key_blocks.get(name)
        if block is not None and block != key.reference_key:
            obj.shape_key_remove(block)
            removed += 1
    return removed


def _remove_owned_curves(action, paths: set) -> int:
    """Delete the F-curves of an unshared ``action`` that animate ``paths``; return how many remain.

    When every curve is the add-on's, nothing is deleted one by one (the caller drops the action).
    """
    fcurves = list(compat.action_fcurves(action))
    foreign = sum(fc.data_path not in paths for fc in fcurves)
    if foreign:
        for fcurve in [fc for fc in fcurves if fc.data_path in paths]:
            compat.remove_fcurve(action, fcurve)
    return foreign


def strip_of(strip, head) -> bool:
    """Is the add-on's ``strip`` the one of ``head`` (or of no head in particular: ``head`` None)?

    A strip made for a head carries its name (:data:`STRIP_HEAD`) and the head the strip's name
    (:data:`HEAD_STRIP`): the strip is the head's when it names the head, or names no object any more (the head
    was renamed) and is the strip the head names. Strips made before heads were recorded, or for no head (the
    exports, a sequence import), count as any head's, as they did then."""
    if not strip.get(OWNED):
        return False
    owner = strip.get(STRIP_HEAD)
    if head is None or owner is None or owner == head.name:
        return True
    return owner not in bpy.data.objects and strip.name == head.get(HEAD_STRIP)


def add_sound_strip(scene, audio_path, start_frame: int, name: str = "VOCA audio", replace: bool = True,
                    head=None):
    """Put ``audio_path`` in the sequencer at ``start_frame``, replacing the add-on's previous strip.

    The add-on's one sound-strip writer (Animate, the exports, the dialogue library). The strip goes on the
    lowest channel free over its length; only strips tagged ``voca_owned`` are ever removed (with their
    sound datablock when the add-on created it). ``replace=False`` keeps the add-on's other strips (a
    dialogue: one strip per clip) and places the new one clear of them too. With a ``head`` only that
    head's strip is replaced (:func:`strip_of`): animating a second head keeps the first one's sound.

    Returns
    -------
    bpy.types.SoundStrip

    Raises
    ------
    AudioError
        The file does not exist or Blender cannot read it as audio.
    InputError
        Start frame out of range, or no free channel.
    """
    path = os.path.abspath(os.fspath(audio_path))
    if not os.path.isfile(path):
        raise AudioError(f"Audio file '{path}' was not found. Check the path.")
    if not (-MAX_FRAME <= int(start_frame) <= MAX_FRAME):
        raise InputError(f"Start frame {start_frame} is outside Blender's frame range.")
    had_editor, sounds_before = scene.sequence_editor is not None, set(bpy.data.sounds)
    editor = scene.sequence_editor or scene.sequence_editor_create()
    strip = compat.sequencer_strips(editor).new_sound(name, path, 1, int(start_frame))
    strip[OWNED] = True
    if head is not None:
        strip[STRIP_HEAD] = head.name
    if strip.sound is not None and strip.sound not in sounds_before:
        strip.sound[OWNED] = True
    mine = [s for s in compat.sequencer_strips(editor) if s != strip and strip_of(s, head)] if replace else []
    channel = _free_channel(editor, strip, mine)
    readable = strip.sound is not None and strip.sound.samplerate > 0
    if not readable or channel is None:
        _remove_strips(editor, [strip])
        if not had_editor:
            scene.sequence_editor_clear()
        if not readable:
            raise AudioError(f"Blender cannot read '{path}' as audio. Use a WAV, FLAC, MP3 or OGG file.")
        raise InputError(f"No free sequencer channel at frames {strip.frame_final_start}–"
                         f"{strip.frame_final_end}; free a channel and run again.")
    previous = _previous_strip(mine, head)
    kept = _artist_settings(previous, strip) if previous is not None else {}
    if mine:
        _remove_strips(editor, mine)
    strip.name = name                   # the replaced strip had it: a re-run keeps the name, not name.001
    _give_artist_settings(editor, strip, kept)
    if head is not None:
        head[HEAD_STRIP] = strip.name   # (another head's strip may hold the name: this one is name.001 then)
    return strip


#: What the artist set on the add-on's strip that a re-run keeps (those a version lacks are skipped): the mix
#: always, the trims only for the same file at the same frame (another clip's length makes them meaningless).
KEPT_STRIP_SETTINGS = ("volume", "pan", "mute", "show_waveform", "color_tag")
KEPT_STRIP_TRIMS = ("frame_offset_start", "frame_offset_end")


def made_for(strip, head) -> bool:
    """Was the add-on's ``strip`` made for ``head`` by name: it names the head, or the head names it (unlike
    :func:`strip_of`, a strip of no head is no head's here)."""
    return strip.get(STRIP_HEAD) == head.name or strip.name == head.get(HEAD_STRIP)


def _previous_strip(mine: list, head):
    """The strip whose settings a re-run keeps: for ``head`` the one made for it (:func:`made_for`) — a strip of
    no head (a dialogue library's clip, an export's) is not the head's, though it is replaced as before; without
    a head the only one replaced; else None."""
    if head is not None:
        return next((s for s in mine if made_for(s, head)), None)
    return mine[0] if len(mine) == 1 else None


def _artist_settings(old, new) -> dict:
    """What a re-run's ``new`` strip takes over from the ``old`` one it replaces: :data:`KEPT_STRIP_SETTINGS`,
    the trims where the file and the start frame are the same, the channel, the lock, the artist's own
    custom properties."""
    same_clip = (old.frame_start == new.frame_start and old.sound is not None and new.sound is not None
                 and bpy.path.abspath(old.sound.filepath) == bpy.path.abspath(new.sound.filepath))
    names = KEPT_STRIP_SETTINGS + (KEPT_STRIP_TRIMS if same_clip else ())
    return dict(settings={a: getattr(old, a) for a in names if hasattr(old, a)}, channel=old.channel,
                lock=old.lock, props={k: plain_value(old[k]) for k in old.keys() if k not in (OWNED, STRIP_HEAD)})


def _give_artist_settings(editor, strip, kept: dict) -> None:
    """Put :func:`_artist_settings` on the re-run's strip: the old channel when it is free over the new
    length, else the lowest free one; locked last (a locked strip cannot move)."""
    for name, value in kept.get("settings", {}).items():
        setattr(strip, name, value)
    for name, value in kept.get("props", {}).items():
        strip[name] = value
    channel = kept.get("channel")
    if channel is None or channel in _busy_channels(editor, strip):
        channel = _free_channel(editor, strip)
    strip.channel = channel
    strip.lock = bool(kept.get("lock", False))


def _busy_channels(editor, strip, leaving=()) -> set:
    """Channels where another top-level strip overlaps ``strip``'s frames (but those ``leaving``: the strips it
    replaces)."""
    lo, hi = strip.frame_final_start, strip.frame_final_end
    gone = {s.as_pointer() for s in leaving}
    return {s.channel for s in compat.sequencer_strips(editor)
            if s != strip and s.as_pointer() not in gone and s.frame_final_start < hi and lo < s.frame_final_end}


def _free_channel(editor, strip, leaving=()):
    """Lowest channel where no other top-level strip overlaps ``strip``'s frames (:func:`_busy_channels`), or
    None."""
    busy = _busy_channels(editor, strip, leaving)
    return next((c for c in range(1, MAX_CHANNEL + 1) if c not in busy), None)


def remove_sound_strips(scene, head=None) -> int:
    """Remove the add-on's sound strips — with a ``head``, that head's only (:func:`strip_of`) — and their owned,
    now unused sounds; return how many."""
    editor = scene.sequence_editor
    owned = [s for s in compat.sequencer_strips(editor) if strip_of(s, head)] if editor is not None else []
    if owned:
        _remove_strips(editor, owned)
    if head is not None and HEAD_STRIP in head:
        del head[HEAD_STRIP]
    return len(owned)


def _remove_strips(editor, strips: list) -> None:
    sounds = {s.sound for s in strips if getattr(s, "sound", None) is not None}
    for strip in strips:
        compat.sequencer_strips(editor).remove(strip)
    for sound in sounds:
        if sound.get(OWNED) and sound.users == 0:
            bpy.data.sounds.remove(sound)


def set_clip_range(scene, start: int, end: int) -> None:
    """Animate's frame range: :func:`set_frame_range`, remembering the range the artist had before
    (:data:`FRAME_RANGE`) so that :func:`give_back_frame_range` can put it back. A re-run keeps the first
    record while the range is still the one the add-on set; a range the artist set since is recorded anew."""
    record = scene.get(FRAME_RANGE)
    record = {name: list(record[name]) for name in ("artist", "set")} if record is not None else None
    now = [scene.frame_start, scene.frame_end]
    artist = list(record["artist"]) if record is not None and list(record["set"]) == now else now
    set_frame_range(scene, start, end)
    scene[FRAME_RANGE] = {"artist": artist, "set": [scene.frame_start, scene.frame_end]}


def give_back_frame_range(scene) -> bool:
    """Remove's frame range: the artist's range from before Animate, when the scene still has the range Animate
    set (a range changed since is the artist's and stays). True if the range was given back."""
    record = scene.get(FRAME_RANGE)
    if record is None:
        return False
    record = {name: list(record[name]) for name in ("artist", "set")}    # a copy: deleting frees the group
    del scene[FRAME_RANGE]
    if [scene.frame_start, scene.frame_end] != list(record["set"]):
        return False
    set_frame_range(scene, *record["artist"])
    return True


def set_frame_range(scene, start: int, end: int) -> None:
    """Set the scene's frame range to ``start``–``end`` (inclusive).

    Raises
    ------
    InputError
        ``end < start`` or outside Blender's 0 … 1048574.
    """
    start, end = int(start), int(end)
    if not (0 <= start <= end <= MAX_FRAME):
        raise InputError(f"Frame range {start}–{end} is invalid; Blender needs 0 ≤ start ≤ end ≤ {MAX_FRAME}.")
    scene.frame_start = start
    scene.frame_end = end
